//! Regressions the fuzz interpreters found, each named after the bug it pins and
//! reproduced directly on the mock (the reproducing inputs are also in
//! `fuzz/corpus/<target>/regress-*`).

use asyncore::Callback;
use asyncore::mock::MockIo;
use asyncore::mock::{Action, CallLog, MockSelector, MockSocket, Recorder};
use asyncore::{Error, Reactor, Readiness};

/// Found by `dispatch` and `readiness` (`regress-error-after-close-in-read-closed`):
/// a `handle_eof` that calls `ctx.close()` and then returns `Err` still gets
/// `handle_error`, although `Ctx::close` promises that no further callback runs (and
/// every other callback's error is dropped once a close was requested).
///
/// Cause: `Reactor::settle` (core/src/reactor.rs, the EOF branch) called
/// `handle_error` for an `Err` of `handle_eof` without checking
/// `Flags::CLOSE_REQUESTED`, unlike `Reactor::call` and `Reactor::deliver_close`.
/// Fixed in 992630e.
#[test]
fn regression_no_handle_error_after_close_in_handle_eof() {
    let log = CallLog::new();
    let mut r: Reactor<MockIo, Recorder<'_>, 2> = Reactor::new(MockSelector::new());
    let mut socket = MockSocket::connected(1);
    socket.feed_eof();
    let recorder = Recorder::new(&log)
        .on(Callback::Read, Action::RecvAll)
        .on(Callback::Eof, Action::Close)
        .on(Callback::Eof, Action::Fail(Error::Protocol("boom")));
    let t = r.add(socket, recorder).unwrap();
    r.selector_mut().set_ready(1, Readiness::READABLE);
    r.poll_once(None).unwrap();
    assert!(r.get(t).is_none(), "closed");
    assert_eq!(
        log.calls_of(t),
        [Callback::Read, Callback::Eof],
        "no handle_error after ctx.close()"
    );
}
