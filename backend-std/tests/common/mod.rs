//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asyncore_core::{Event, Events, Interest, Readiness, Selector, Socket, Token};
use asyncore_std::{Addr, SelectSelector, StdSocket};

#[path = "../../../tests/support/waiter.rs"]
mod waiter;
#[allow(unused_imports)]
pub use waiter::{Registration, Waiter, reg};

/// A fresh path for a Unix-domain socket, removed when dropped.
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(tag: &str) -> TempPath {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "asyncore-std-{}-{}-{}.sock",
            std::process::id(),
            tag,
            n
        ));
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One `select` on one fd, up to `timeout`.
pub fn wait_fd(fd: RawFd, interest: Interest, timeout: Duration) -> Readiness {
    let mut selector = SelectSelector::new();
    let token = Token::new(0, 0);
    selector.register(token, fd, interest).expect("register");
    let mut buf = [Event::EMPTY; 1];
    let mut events = Events::new(&mut buf);
    selector.select(&mut events, Some(timeout)).expect("select");
    events
        .as_slice()
        .first()
        .map_or(Readiness::EMPTY, |e| e.readiness())
}

/// Waits (up to 5 s) until `socket` shows some of `interest`.
pub fn wait(socket: &StdSocket, interest: Interest) -> Readiness {
    let r = wait_fd(socket.as_raw_fd(), interest, Duration::from_secs(5));
    assert!(!r.is_empty(), "timed out waiting for {interest:?}");
    r
}

/// A listener on `ip` (port 0) and a connected pair (client, server) through it,
/// with the client's connect completed. `None` when the address family is not
/// available here (no IPv6, for example).
pub fn tcp_pair(ip: &str) -> Option<(StdSocket, StdSocket, StdSocket)> {
    let addr: SocketAddr = format!("{ip}:0").parse().unwrap();
    let mut listener = match StdSocket::tcp_listener(addr, 16) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipping {ip}: {e}");
            return None;
        }
    };
    let Addr::Inet(bound) = listener.local_addr().unwrap() else {
        panic!("listener has no IP address")
    };
    let client = StdSocket::tcp_connect(bound).expect("connect");
    let (client, server) = finish_pair(&mut listener, client);
    Some((listener, client, server))
}

/// A Unix-domain listener at a temp path and a connected pair (client, server)
/// through it.
pub fn unix_pair(tag: &str) -> (TempPath, StdSocket, StdSocket, StdSocket) {
    let path = TempPath::new(tag);
    let mut listener = StdSocket::unix_listener(&path.0, 16).unwrap();
    let client = StdSocket::unix_connect(&path.0).expect("connect");
    let (client, server) = finish_pair(&mut listener, client);
    (path, listener, client, server)
}

/// Completes `client`'s connect and accepts its server end from `listener`.
pub fn finish_pair(listener: &mut StdSocket, mut client: StdSocket) -> (StdSocket, StdSocket) {
    assert!(wait(&client, Interest::WRITABLE).is_writable());
    assert_eq!(client.take_error().unwrap(), None);
    assert!(wait(listener, Interest::READABLE).is_readable());
    let server = listener.accept().unwrap().expect("a pending connection");
    (client, server)
}
