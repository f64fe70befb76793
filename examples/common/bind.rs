//! Binding a datagram socket to an address given as text: `IP:PORT`, `[IPV6]:PORT`
//! or `unix:PATH`, with the `unix:PATH` rules of [`super::listen`] (a live socket
//! there is "address in use", a stale one is replaced, anything else is refused and
//! kept; the file is removed at the end only if it is still the one we created). A
//! Unix datagram socket is live if a datagram socket can connect to it.

use std::path::Path;

use asyncore::StdSocket;

use super::listen::{ListenError, SocketFile, clear_stale, socket_file};

/// A bound datagram socket, and for `unix:PATH` the file this server created.
#[derive(Debug)]
pub struct Bound {
    /// The socket.
    pub socket: StdSocket,
    /// The socket file (`unix:PATH` only).
    pub file: Option<SocketFile>,
}

/// A datagram socket bound to `spec`: UDP for `IP:PORT`/`[IPV6]:PORT` (port 0 picks
/// a free port), a Unix datagram socket for `unix:PATH`.
///
/// # Errors
/// A malformed address, a live socket or a file that is not a socket at `PATH`, or
/// what the OS reported (`InUse` for `EADDRINUSE`).
pub fn bind_datagram(spec: &str) -> Result<Bound, ListenError> {
    if let Some(path) = spec.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(ListenError::BadAddress);
        }
        let path = Path::new(path);
        clear_stale(path, true)?;
        let socket = StdSocket::unix_datagram_bind(path)?;
        let file = socket_file(path);
        return Ok(Bound { socket, file });
    }
    let addr: std::net::SocketAddr = spec.parse().map_err(|_| ListenError::BadAddress)?;
    Ok(Bound {
        socket: StdSocket::udp_bind(addr)?,
        file: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncore::asyncore_std::Family;
    use asyncore::{Addr, Datagram};

    #[test]
    fn udp_v4_v6_and_unix() {
        let v4 = bind_datagram("127.0.0.1:0").unwrap();
        assert!(v4.socket.is_datagram() && v4.file.is_none());
        if let Ok(v6) = bind_datagram("[::1]:0") {
            assert!(v6.socket.local_addr().unwrap().as_inet().unwrap().is_ipv6());
        }
        assert!(matches!(
            bind_datagram("nonsense"),
            Err(ListenError::BadAddress)
        ));
        assert!(matches!(
            bind_datagram("unix:"),
            Err(ListenError::BadAddress)
        ));
        let port = v4.socket.local_addr().unwrap().as_inet().unwrap().port();
        assert!(matches!(
            bind_datagram(&format!("127.0.0.1:{port}")),
            Err(ListenError::InUse)
        ));
    }

    #[test]
    fn unix_live_stale_and_other_files() {
        let dir = std::env::temp_dir().join(format!("asyncore-bind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.sock");
        let spec = format!("unix:{}", path.display());
        let first = bind_datagram(&spec).unwrap();
        // Live: in use, left alone (a datagram still reaches the first socket).
        assert!(matches!(bind_datagram(&spec), Err(ListenError::InUse)));
        let mut probe = StdSocket::datagram(Family::Unix).unwrap();
        probe.send_to(b"x", &Addr::unix(&path).unwrap()).unwrap();
        // Stale: the socket went away without removing its file.
        drop(first.socket);
        std::mem::forget(first.file);
        assert!(path.exists());
        let second = bind_datagram(&spec).unwrap();
        // A regular file is refused and kept.
        drop(second);
        assert!(!path.exists(), "dropped: removed its file");
        std::fs::write(&path, b"keep").unwrap();
        assert!(matches!(bind_datagram(&spec), Err(ListenError::NotASocket)));
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
