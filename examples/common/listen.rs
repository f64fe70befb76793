//! Listening on an address given as text, and the rules for `unix:PATH`.
//!
//! A Unix-domain socket lives in the file system, so a server must decide what to do
//! with whatever is already at its path, and who removes the file afterwards:
//!
//! * Nothing at `PATH`: bind.
//! * A socket at `PATH`: connect to it first. If something accepts (or its backlog
//!   is full), a server is alive there: refuse with "address in use" and touch
//!   nothing. If the connection is refused, the socket is stale (its server is
//!   gone): remove it, after checking it is still the same file (device and inode),
//!   and bind.
//! * Anything else at `PATH` (a regular file, a directory, a symbolic link, even one
//!   pointing to a socket): refuse, remove nothing.
//! * On the way out, the server removes the file only if it is still the socket it
//!   created (same device and inode as recorded right after `bind`): a server whose
//!   file was replaced by another server's leaves that one alone.
//!
//! Two servers started at the same instant on the same stale socket can still race
//! between the check and the removal; the inode check makes the window a few system
//! calls wide. Closing it would take a lock file next to the socket.

use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use asyncore::{ErrorKind, SocketError, StdSocket, errno};

/// A listening socket, and for `unix:PATH` the file this server created.
#[derive(Debug)]
pub struct Listening {
    /// The listening socket.
    pub socket: StdSocket,
    /// The socket file (`unix:PATH` only), removed by [`SocketFile::remove`] or when
    /// dropped, if it is still ours.
    pub file: Option<SocketFile>,
}

/// Why [`listen`] failed.
#[derive(Debug)]
pub enum ListenError {
    /// The address is not `HOST:PORT`, `[V6]:PORT` or `unix:PATH`.
    BadAddress,
    /// A server is listening there already (a Unix socket that accepts connections,
    /// or `EADDRINUSE`).
    InUse,
    /// `unix:PATH`: something other than a socket is at `PATH`; it was left alone.
    NotASocket,
    /// `unix:PATH`: a socket is at `PATH`, but connecting to it failed in a way that
    /// does not tell whether a server is alive there (e.g. no permission); it was
    /// left alone.
    Unknown(SocketError),
    /// `unix:PATH`: `PATH` could not be examined or the stale socket not removed.
    Path(io::Error),
    /// The socket could not be set up.
    Socket(SocketError),
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::BadAddress => {
                f.write_str("not an address: expected IP:PORT, [IPV6]:PORT or unix:PATH")
            }
            ListenError::InUse => f.write_str("address in use: a server is listening there"),
            ListenError::NotASocket => {
                f.write_str("something that is not a socket is at that path; left alone")
            }
            ListenError::Unknown(e) => write!(
                f,
                "a socket is at that path and connecting to it failed ({e}): cannot tell \
                 whether a server still uses it; left alone"
            ),
            ListenError::Path(e) => write!(f, "{e}"),
            ListenError::Socket(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ListenError {}

impl From<SocketError> for ListenError {
    fn from(e: SocketError) -> Self {
        if e.kind() == ErrorKind::AddrInUse {
            ListenError::InUse
        } else {
            ListenError::Socket(e)
        }
    }
}

/// A listening socket for `spec`: `HOST:PORT` or `[V6]:PORT` (port 0 picks a free
/// port; reuse-addr is on), or `unix:PATH` (see the module docs for what happens to
/// a file already at `PATH`).
///
/// # Errors
/// A malformed address, a live server or a file that is not a socket at `PATH`, or
/// what the OS reported.
pub fn listen(spec: &str, backlog: u32) -> Result<Listening, ListenError> {
    if let Some(path) = spec.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(ListenError::BadAddress);
        }
        let path = Path::new(path);
        clear_stale(path, false)?;
        let socket = StdSocket::unix_listener(path, backlog)?;
        let file = socket_file(path);
        return Ok(Listening { socket, file });
    }
    let addr: std::net::SocketAddr = spec.parse().map_err(|_| ListenError::BadAddress)?;
    Ok(Listening {
        socket: StdSocket::tcp_listener(addr, backlog)?,
        file: None,
    })
}

/// The socket file a server just bound at `path`: right after bind the file is
/// ours. If it cannot be examined now, it is never removed (better left behind than
/// someone else's removed).
pub(super) fn socket_file(path: &Path) -> Option<SocketFile> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_socket())
        .map(|m| SocketFile {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
            removed: false,
        })
}

/// Makes `path` free for a new socket if it holds a stale one; refuses if it holds a
/// live one or anything else. A datagram server probes with a datagram socket
/// (`datagram`): connecting one to a live datagram socket succeeds, to a stale one
/// is refused.
pub(super) fn clear_stale(path: &Path, datagram: bool) -> Result<(), ListenError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ListenError::Path(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket);
    }
    // A non-blocking connect: a live server with a full backlog answers EAGAIN
    // instead of making us wait.
    let probe = if datagram {
        StdSocket::datagram(asyncore::asyncore_std::Family::Unix).and_then(|mut s| {
            s.connect(&asyncore::Addr::unix(path)?)?;
            Ok(s)
        })
    } else {
        StdSocket::unix_connect(path)
    };
    match probe {
        Ok(probe) => {
            drop(probe);
            Err(ListenError::InUse)
        }
        Err(e) if e.raw_os_error() == Some(errno::EAGAIN) => Err(ListenError::InUse),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            // If another file took its place meanwhile, bind reports it in use.
            remove_if_same(path, meta.dev(), meta.ino())
                .map(|_| ())
                .map_err(ListenError::Path)
        }
        Err(e) => Err(ListenError::Unknown(e)),
    }
}

/// Removes the socket at `path` if it is still the file `dev`/`ino`. `Ok(true)` if it
/// removed it, `Ok(false)` if something else (or nothing) is there now.
fn remove_if_same(path: &Path, dev: u64, ino: u64) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() && m.dev() == dev && m.ino() == ino => {
            match std::fs::remove_file(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The socket file a server created at `unix:PATH`: its path, and the device and
/// inode it had right after `bind`.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    removed: bool,
}

/// What [`SocketFile::remove`] did.
#[derive(Debug)]
pub enum Removal {
    /// The file was ours and is gone.
    Removed,
    /// Something else is at the path now (another server's socket, a file), or
    /// nothing: left alone.
    NotOurs,
    /// Removing failed.
    Failed(io::Error),
}

impl SocketFile {
    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file if it is still the socket this server created.
    pub fn remove(mut self) -> Removal {
        self.removed = true;
        match remove_if_same(&self.path, self.dev, self.ino) {
            Ok(true) => Removal::Removed,
            Ok(false) => Removal::NotOurs,
            Err(e) => Removal::Failed(e),
        }
    }
}

impl Drop for SocketFile {
    /// A server leaving early (an error after `listen`) removes its file too.
    fn drop(&mut self) {
        if !self.removed {
            let _ = remove_if_same(&self.path, self.dev, self.ino);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temp dir of the test's own, removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let p =
                std::env::temp_dir().join(format!("asyncore-listen-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }

        fn spec(&self, file: &str) -> (PathBuf, String) {
            let p = self.0.join(file);
            let spec = format!("unix:{}", p.display());
            (p, spec)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn listen_parses_every_form() {
        let v4 = listen("127.0.0.1:0", 8).unwrap();
        assert!(v4.socket.local_addr().unwrap().as_inet().unwrap().port() != 0);
        assert!(v4.file.is_none());
        assert!(matches!(
            listen("nonsense", 8),
            Err(ListenError::BadAddress)
        ));
        assert!(matches!(listen("unix:", 8), Err(ListenError::BadAddress)));
    }

    #[test]
    fn tcp_address_in_use() {
        let first = listen("127.0.0.1:0", 8).unwrap();
        let port = first.socket.local_addr().unwrap().as_inet().unwrap().port();
        // SO_REUSEADDR does not let two listeners share a port.
        let e = listen(&format!("127.0.0.1:{port}"), 8).unwrap_err();
        assert!(matches!(e, ListenError::InUse), "{e:?}");
        assert!(e.to_string().starts_with("address in use"));
    }

    #[test]
    fn a_stale_socket_is_replaced_and_removed_at_the_end() {
        let dir = Dir::new("stale");
        let (path, spec) = dir.spec("sock");
        // A listener that went away without removing its file.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let l = listen(&spec, 8).unwrap();
        let file = l.file.unwrap();
        assert_eq!(file.path(), path);
        assert!(matches!(file.remove(), Removal::Removed));
        assert!(!path.exists());
    }

    #[test]
    fn a_live_socket_is_in_use_and_left_alone() {
        let dir = Dir::new("live");
        let (path, spec) = dir.spec("sock");
        let first = listen(&spec, 8).unwrap();
        let e = listen(&spec, 8).unwrap_err();
        assert!(matches!(e, ListenError::InUse), "{e:?}");
        // The first one is still reachable at its path.
        std::os::unix::net::UnixStream::connect(&path).expect("the first server");
        drop(first);
        assert!(!path.exists(), "dropped: the first server removed its file");
    }

    #[test]
    fn anything_but_a_socket_is_refused_and_kept() {
        let dir = Dir::new("other");
        let (file, spec) = dir.spec("regular");
        std::fs::write(&file, b"precious").unwrap();
        assert!(matches!(listen(&spec, 8), Err(ListenError::NotASocket)));
        assert_eq!(std::fs::read(&file).unwrap(), b"precious");

        let (sub, spec) = dir.spec("directory");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(listen(&spec, 8), Err(ListenError::NotASocket)));
        assert!(sub.is_dir());

        // A symbolic link to a stale socket: the link is not a socket.
        let (target, _) = dir.spec("target");
        drop(std::os::unix::net::UnixListener::bind(&target).unwrap());
        let (link, spec) = dir.spec("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(listen(&spec, 8), Err(ListenError::NotASocket)));
        assert!(link.symlink_metadata().is_ok() && target.exists());
    }

    #[test]
    fn a_replaced_file_is_not_removed() {
        let dir = Dir::new("replaced");
        let (path, spec) = dir.spec("sock");
        let first = listen(&spec, 8).unwrap();
        // Someone removes the first server's file and a second server binds there.
        std::fs::remove_file(&path).unwrap();
        let second = listen(&spec, 8).unwrap();
        assert!(matches!(first.file.unwrap().remove(), Removal::NotOurs));
        std::os::unix::net::UnixStream::connect(&path).expect("the second server");
        assert!(matches!(second.file.unwrap().remove(), Removal::Removed));
        assert!(!path.exists());
    }
}
