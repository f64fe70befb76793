//! An fd ≥ FD_SETSIZE is refused when its channel is added to a select reactor: a
//! typed error with the socket handed back, never a panic, and the loop goes on.
//! Own test binary: it raises the process's RLIMIT_NOFILE soft limit.

#[path = "../../tests/support/fd_limit.rs"]
mod fd_limit;

use asyncore_std::SelectIo;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use asyncore_core::Callback;
use asyncore_core::mock::{Action, CallLog, Recorder};
use asyncore_core::{AddErrorKind, Interest, Reactor, Selector, Socket, SourceError};
use asyncore_std::{FD_SETSIZE, SelectSelector, StdSocket};
use fd_limit::raise_fd_limit;
use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::resource::rlim_t;

const HIGH: RawFd = 1500;

#[test]
fn high_fd_is_refused_at_add_and_the_loop_goes_on() {
    assert_eq!(FD_SETSIZE, 1024);
    if !raise_fd_limit(rlim_t::try_from(HIGH + 100).expect("positive, fits rlim_t")) {
        return;
    }
    let (r, w) = nix::unistd::pipe().unwrap();
    let raw = fcntl(&r, FcntlArg::F_DUPFD_CLOEXEC(HIGH)).unwrap();
    assert!(raw as usize >= FD_SETSIZE);
    // SAFETY: fcntl just created this fd; nothing else owns it.
    let high = unsafe { OwnedFd::from_raw_fd(raw) };
    let high = StdSocket::from_owned_file(high).unwrap();

    let log = CallLog::new();
    let mut reactor: Reactor<SelectIo, Recorder<'_>, 4> = Reactor::new(SelectSelector::new());
    let low = reactor
        .add(
            StdSocket::file(&r).unwrap(),
            Recorder::new(&log).on(Callback::Read, Action::RecvAll),
        )
        .unwrap();

    let err = reactor.add(high, Recorder::new(&log)).unwrap_err();
    assert_eq!(
        err.kind,
        AddErrorKind::Rejected(SourceError::OutOfRange { limit: FD_SETSIZE })
    );
    let (mut high, _) = err.into_inner();
    assert!(!high.is_closed(), "handed back untouched");
    assert_eq!(high.as_raw_fd(), raw);
    assert_eq!(reactor.len(), 1);
    assert_eq!(
        reactor.selector_mut().register(
            asyncore_core::Token::new(9, 0),
            high.source(),
            Interest::READABLE
        ),
        Err(SourceError::OutOfRange { limit: FD_SETSIZE })
    );
    high.close().unwrap();

    nix::unistd::write(&w, b"still here").unwrap();
    reactor.poll_once(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(&log.received(low)[..], b"still here");
}
