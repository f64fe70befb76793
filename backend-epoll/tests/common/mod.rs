//! Helpers shared by the integration tests: real fds made directly with nix.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::{
    os::fd::{AsRawFd, OwnedFd, RawFd},
    time::{Duration, Instant},
};

use asyncore_core::{Event, Events, Interest, Readiness, Selector, Token};
use asyncore_epoll::EpollSelector;
use nix::{
    errno::Errno,
    sys::socket::{
        AddressFamily, Backlog, MsgFlags, SockFlag, SockType, SockaddrIn, accept4, bind, connect,
        getsockname, listen, recv, send, socket, socketpair,
    },
};

/// Long enough never to be hit on a healthy machine; only bounds a broken test.
pub const PATIENCE: Duration = Duration::from_secs(10);

#[path = "../../../tests/support/waiter.rs"]
mod waiter;
#[allow(unused_imports)]
pub use waiter::{Registration, Waiter, reg};

/// A non-blocking, close-on-exec Unix stream socketpair.
pub fn pair() -> (OwnedFd, OwnedFd) {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair")
}

pub fn send_all(fd: RawFd, data: &[u8]) {
    let n = send(fd, data, MsgFlags::MSG_NOSIGNAL).expect("send");
    assert_eq!(n, data.len(), "short send in a test helper");
}

/// Reads what is there now (non-blocking); empty on would-block.
pub fn recv_now(fd: RawFd) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    match recv(fd, &mut buf, MsgFlags::MSG_DONTWAIT) {
        Ok(n) => buf[..n].to_vec(),
        Err(Errno::EAGAIN) => Vec::new(),
        Err(e) => panic!("recv: {e}"),
    }
}

/// The event a selector reports for `token`: its slot and `readiness`.
pub fn ev(token: Token, readiness: Readiness) -> Event {
    Event {
        slot: token.index() as u32,
        readiness,
    }
}

/// One wait over whatever is registered, into a buffer of `room` events.
pub fn wait<const E: usize>(
    selector: &mut EpollSelector<E>,
    room: usize,
    timeout: Option<Duration>,
) -> Vec<Event> {
    let mut buf = vec![Event::EMPTY; room];
    let mut events = Events::new(&mut buf);
    let n = selector.select(&mut events, timeout).expect("select");
    assert_eq!(n, events.len(), "every pushed event is counted");
    events.as_slice().to_vec()
}

/// One wait on one fd (registered for the wait, then deregistered).
pub fn select_one<const E: usize>(
    selector: &mut EpollSelector<E>,
    fd: RawFd,
    interest: Interest,
    timeout: Option<Duration>,
) -> Readiness {
    let token = Token::new(0, 0);
    selector.register(token, fd, interest).expect("register");
    let events = wait(selector, 1, timeout);
    selector.deregister(token, fd, interest);
    assert!(events.iter().all(|e| e.slot == 0), "{events:?}");
    events.first().map_or(Readiness::EMPTY, |e| e.readiness)
}

/// Waits (repeatedly, up to [`PATIENCE`]) until `fd` reports all of `want`, and
/// returns the readiness of that wait.
pub fn wait_for<const E: usize>(
    selector: &mut EpollSelector<E>,
    fd: RawFd,
    interest: Interest,
    want: Readiness,
) -> Readiness {
    let start = Instant::now();
    loop {
        let r = select_one(selector, fd, interest, Some(Duration::from_millis(100)));
        if r.contains(want) {
            return r;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "fd {fd} never reported {want:?} (last {r:?})"
        );
    }
}

/// A non-blocking TCP socket on 127.0.0.1.
pub fn tcp_socket() -> OwnedFd {
    socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket")
}

/// A non-blocking listener on 127.0.0.1 with an ephemeral port.
pub fn tcp_listener() -> (OwnedFd, SockaddrIn) {
    let fd = tcp_socket();
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind");
    listen(&fd, Backlog::new(64).expect("backlog")).expect("listen");
    let addr = getsockname::<SockaddrIn>(fd.as_raw_fd()).expect("getsockname");
    (fd, addr)
}

/// Starts a non-blocking connect to `addr`; `EINPROGRESS` is expected.
pub fn tcp_connect_start(addr: &SockaddrIn) -> OwnedFd {
    let fd = tcp_socket();
    match connect(fd.as_raw_fd(), addr) {
        Ok(()) | Err(Errno::EINPROGRESS) => fd,
        Err(e) => panic!("connect: {e}"),
    }
}

/// A connected loopback TCP pair: (client, server), both non-blocking.
pub fn tcp_pair() -> (OwnedFd, OwnedFd) {
    let (listener, addr) = tcp_listener();
    let client = tcp_connect_start(&addr);
    let start = Instant::now();
    let server = loop {
        match accept4(&listener, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC) {
            Ok(fd) => break fd,
            Err(Errno::EAGAIN) => {
                assert!(start.elapsed() < PATIENCE, "accept never succeeded");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    let mut sel = EpollSelector::<1>::new();
    wait_for(
        &mut sel,
        client.as_raw_fd(),
        Interest::WRITABLE,
        Readiness::WRITABLE,
    );
    (client, server)
}
