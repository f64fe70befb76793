//! What the integration tests of the `poll(2)` and `epoll(7)` selectors
//! (`asyncore-poll`, `asyncore-epoll`) share: real fds made directly with nix, waits
//! through any [`Selector`] over raw fds, and, in [`cases`], the test bodies both
//! backends run, generic over the selector ([`batches`], shared with the `select(2)`
//! selector's tests, for waits handed out in several batches).
//!
//! Each backend's test files stay thin: a `#[test]` per case calling the shared body
//! with its own selector type and [`Backend`] description, so both still run every
//! case; where the kernel makes them differ the expectation is a parameter. A dev-
//! dependency only (`publish = false`).

pub mod cases;

use std::{
    fmt,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    time::{Duration, Instant},
};

use asyncore_core::{Event, Events, Interest, Readiness, Selector, Token};
use nix::{
    errno::Errno,
    fcntl::{FcntlArg, fcntl},
    sys::{
        resource::{Resource, getrlimit},
        socket::{
            AddressFamily, Backlog, MsgFlags, SockFlag, SockType, SockaddrIn, accept4, bind,
            connect, getsockname, listen, recv, send, socket, socketpair,
        },
    },
};

#[path = "../../tests/support/waiter.rs"]
mod waiter;
pub use waiter::{Registration, Waiter, reg};

#[path = "../../tests/support/sigusr1.rs"]
pub mod sigusr1;

#[path = "../../tests/support/batches.rs"]
pub mod batches;

/// Long enough never to be hit on a healthy machine; only bounds a broken test.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A wait that does not block.
pub const ZERO: Option<Duration> = Some(Duration::ZERO);

/// What the shared cases need to know of a backend beyond the [`Selector`] trait:
/// its statistics, read through plain function pointers (`PollSelector::waits`, …).
pub struct Backend<S> {
    /// The system call a wait makes, for messages: `"poll(2)"`, `"epoll_wait"`.
    pub wait_call: &'static str,
    /// System calls made by waits, `EINTR` retries included.
    pub waits: fn(&S) -> u64,
    /// Of those, the ones a signal interrupted.
    pub interruptions: fn(&S) -> u64,
    /// Registration changes told to the kernel: `pollfd` entries written
    /// (`PollSelector::writes`) or `epoll_ctl` calls (`EpollSelector::ctl_calls`).
    pub changes: fn(&S) -> u64,
}

impl<S> fmt::Debug for Backend<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("wait_call", &self.wait_call)
            .finish_non_exhaustive()
    }
}

/// The selectors the shared cases run on: over raw fds, and constructible empty.
pub trait FdSelector: Selector<Source = RawFd> + Default {}

impl<S: Selector<Source = RawFd> + Default> FdSelector for S {}

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

/// Sends all of `data` in one `send` (a test helper's data always fits).
pub fn send_all(fd: RawFd, data: &[u8]) {
    let n = send(fd, data, MsgFlags::MSG_NOSIGNAL).expect("send");
    assert_eq!(n, data.len(), "short send in a test helper");
}

/// Sends one byte of TCP urgent data (`MSG_OOB`).
pub fn send_oob(fd: RawFd, byte: u8) {
    let n = send(fd, &[byte], MsgFlags::MSG_OOB | MsgFlags::MSG_NOSIGNAL).expect("send MSG_OOB");
    assert_eq!(n, 1);
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
    Event::new(token.index() as u32, readiness)
}

/// One wait over whatever is registered, into a buffer of `room` events.
pub fn wait<S: Selector>(selector: &mut S, room: usize, timeout: Option<Duration>) -> Vec<Event> {
    let mut buf = vec![Event::EMPTY; room];
    let mut events = Events::new(&mut buf);
    let n = selector.select(&mut events, timeout).expect("select");
    assert_eq!(n, events.len(), "every pushed event is counted");
    events.as_slice().to_vec()
}

/// One wait on one fd (registered in slot 0 for the wait, then deregistered).
pub fn select_one<S: Selector<Source = RawFd>>(
    selector: &mut S,
    fd: RawFd,
    interest: Interest,
    timeout: Option<Duration>,
) -> Readiness {
    let token = Token::new(0, 0);
    selector.register(token, fd, interest).expect("register");
    let events = wait(selector, 1, timeout);
    selector.deregister(token, fd, interest);
    assert!(events.iter().all(|e| e.slot() == 0), "{events:?}");
    events.first().map_or(Readiness::EMPTY, |e| e.readiness())
}

/// Waits (repeatedly, up to [`PATIENCE`]) until `fd` reports all of `want`, and
/// returns the readiness of that wait.
pub fn wait_for<S: Selector<Source = RawFd>>(
    selector: &mut S,
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

/// A connected loopback TCP pair: (client, server), both non-blocking; the client's
/// connection is waited for with an `S`.
pub fn tcp_pair<S: FdSelector>() -> (OwnedFd, OwnedFd) {
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
    wait_for(
        &mut S::default(),
        client.as_raw_fd(),
        Interest::WRITABLE,
        Readiness::WRITABLE,
    );
    (client, server)
}

/// Moves `fd` to a number ≥ `min(900, soft RLIMIT_NOFILE - 32)`, far above what other
/// tests running in parallel allocate (the kernel hands out the lowest free number),
/// so closing it behind a selector's back cannot race with a reuse of the number.
pub fn high_fd(fd: OwnedFd) -> OwnedFd {
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let floor = soft.saturating_sub(32).min(900) as RawFd;
    let raw = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(floor)).expect("F_DUPFD_CLOEXEC");
    // SAFETY: `fcntl(F_DUPFD_CLOEXEC)` just returned `raw` as a new descriptor that
    // nothing else owns.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// Defines one `#[test]` per readiness case of [`cases`] both fd selectors run, on
/// the selector type `$sel` with its [`Backend`] `$backend`: invoke it once in a test
/// file (with [`cases`] in scope through this crate).
#[macro_export]
macro_rules! readiness_tests {
    ($sel:ty, $backend:expr) => {
        #[test]
        fn nothing_ready_reports_nothing() {
            $crate::cases::nothing_ready_reports_nothing::<$sel>();
        }

        #[test]
        fn readable_after_peer_write() {
            $crate::cases::readable_after_peer_write::<$sel>(&$backend);
        }

        #[test]
        fn writable() {
            $crate::cases::writable::<$sel>();
        }

        #[test]
        fn interest_masks_readiness() {
            $crate::cases::interest_masks_readiness::<$sel>();
        }

        #[test]
        fn priority_from_tcp_oob_byte() {
            $crate::cases::priority_from_tcp_oob_byte::<$sel>();
        }

        #[test]
        fn hangup_after_peer_close() {
            $crate::cases::hangup_after_peer_close::<$sel>();
        }

        #[test]
        fn hangup_after_shutdown_both_directions() {
            $crate::cases::hangup_after_shutdown_both_directions::<$sel>();
        }

        #[test]
        fn refused_connect_is_error_and_hangup() {
            $crate::cases::refused_connect_is_error_and_hangup::<$sel>();
        }
    };
}

/// Defines the two `EINTR` `#[test]`s of [`cases`] on the selector type `$sel` with
/// its [`Backend`] `$backend`. They install a process-wide SIGUSR1 handler: invoke it
/// in a test binary of its own.
#[macro_export]
macro_rules! eintr_tests {
    ($sel:ty, $backend:expr) => {
        #[test]
        fn signals_during_an_unbounded_wait_do_not_end_it() {
            $crate::cases::signals_during_an_unbounded_wait_do_not_end_it::<$sel>(&$backend);
        }

        #[test]
        fn signals_during_a_timed_wait_do_not_shorten_it() {
            $crate::cases::signals_during_a_timed_wait_do_not_shorten_it::<$sel>(&$backend);
        }
    };
}
