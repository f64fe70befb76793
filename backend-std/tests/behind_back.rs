//! fds closed behind the back of their owner: the file wrapper's close, the select
//! selector's EBADF probing, and the reactor serving the other channels.
//!
//! These tests close fd numbers they do not own; another test opening an fd at the
//! same moment could be handed that number. They therefore live in their own test
//! binary and run one at a time under `SERIAL`.

use asyncore_std::SelectIo;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::Mutex;
use std::time::Duration;

use asyncore_core::Callback;
use asyncore_core::mock::{Action, CallLog, Recorder};
use asyncore_core::{Interest, Reactor, Readiness, Socket, Token, errno};
use asyncore_std::{SelectSelector, StdSocket};

#[path = "../../tests/support/waiter.rs"]
mod waiter;
use waiter::{Registration, Waiter};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn file_wrapper_close_after_someone_else_closed_it() {
    let _g = serial();
    let (r, _w) = nix::unistd::pipe().unwrap();
    let mut wrapper = StdSocket::file(&r).unwrap();
    nix::unistd::close(wrapper.as_raw_fd()).unwrap();
    let e = wrapper.close().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EBADF));
    assert!(
        wrapper.is_closed(),
        "marked closed even though close(2) failed"
    );
    wrapper.close().unwrap();
    drop(wrapper); // no second close(2), no abort
}

#[test]
fn select_reports_the_bad_fd_invalid_and_serves_the_others() {
    let _g = serial();
    let (r1, w1) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&w1, b"x").unwrap();
    let (r2, _w2) = nix::unistd::pipe().unwrap();
    let (_r3, w3) = nix::unistd::pipe().unwrap();
    // Closed last, so no fd created above reuses its number.
    let bad = r2.into_raw_fd();
    nix::unistd::close(bad).unwrap();

    let mut sel = Waiter::new(SelectSelector::new());
    let regs = [
        Registration {
            token: Token::new(0, 0),
            source: bad,
            interest: Interest::READABLE,
        },
        Registration {
            token: Token::new(1, 0),
            source: r1.as_raw_fd(),
            interest: Interest::READABLE,
        },
        Registration {
            token: Token::new(2, 0),
            source: w3.as_raw_fd(),
            interest: Interest::WRITABLE,
        },
    ];
    let mut ready = [Readiness::EMPTY; 3];
    let n = sel
        .select(&regs, &mut ready, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        ready,
        [Readiness::INVALID, Readiness::READABLE, Readiness::WRITABLE]
    );

    // The bad fd alone: reported at once, nothing else.
    let mut one = [Readiness::EMPTY];
    let n = sel
        .select(&regs[..1], &mut one, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!((n, one), (1, [Readiness::INVALID]));
}

#[test]
fn reactor_closes_the_bad_channel_and_serves_the_others() {
    let _g = serial();
    let log = CallLog::new();
    let mut reactor: Reactor<SelectIo, Recorder<'_>, 4> = Reactor::new(SelectSelector::new());

    let (r, _w) = nix::unistd::pipe().unwrap();
    let file = StdSocket::file(&r).unwrap();
    let bad = file.as_raw_fd();
    let tf = reactor
        .add(
            file,
            Recorder::new(&log).on(Callback::Read, Action::RecvAll),
        )
        .unwrap();
    let (mut a, b) = StdSocket::pair().unwrap();
    a.send(b"hello").unwrap();
    let tb = reactor
        .add(b, Recorder::new(&log).on(Callback::Read, Action::RecvAll))
        .unwrap();

    nix::unistd::close(bad).unwrap();
    let n = reactor.poll_once(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(n, 2);
    assert_eq!(&log.calls_of(tf)[..], [Callback::Close]);
    assert_eq!(&log.calls_of(tb)[..], [Callback::Read]);
    assert_eq!(&log.received(tb)[..], b"hello");
    assert_eq!(reactor.len(), 1);
    assert!(reactor.get(tf).is_none());

    // The loop goes on for the survivor.
    a.send(b" again").unwrap();
    reactor.poll_once(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(&log.received(tb)[..], b"hello again");
}
