//! One test (or a few) per bug of asyncore that the design removes, named after what
//! it pins (`docs/semantics.md`, "What we changed from the original").

mod util;

use std::cell::{Cell, RefCell};
use std::time::Duration;

use util::*;

const MS: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------------
// fd reuse. Tokens carry a generation; a slot freed during a pass is
// reused only after it.

#[test]
fn closed_channel_token_never_reaches_a_channel_added_in_the_same_pass() {
    let log = CallLog::new();
    let mut r: Rx<'_, 4> = reactor();
    let b = connected(
        &mut r,
        7,
        Recorder::new(&log)
            .writable(true)
            .on(C::Read, Action::Close),
    );
    let l = listener(
        &mut r,
        9,
        Recorder::new(&log).on(C::Accepted, Action::AddAccepted),
    );
    // The accepted socket gets the fd number B just gave up.
    sock(&mut r, l).push_pending(Ok(7));
    once(&mut r, 7, READ | WRITE | PRI | HUP);
    once(&mut r, 9, READ);
    pass(&mut r);

    assert_eq!(log.calls_of(b), [C::Read], "B closed in handle_read");
    let [c] = log.accepted()[..] else {
        panic!("C was added")
    };
    assert_ne!(c, b);
    assert_ne!(
        c.index(),
        b.index(),
        "B's slot is quarantined until the pass ends"
    );
    assert_eq!(sock(&mut r, c).id(), 7);
    assert!(log.calls_of(c).is_empty(), "C got none of B's events");
    assert!(r.get(b).is_none());

    pass(&mut r);
    assert!(log.calls_of(c).is_empty(), "nor later: they were B's");
    once(&mut r, 7, READ);
    pass(&mut r);
    assert_eq!(log.calls_of(c), [C::Read], "C's own events reach C");
}

#[test]
fn slot_freed_during_a_pass_is_reused_after_it_under_a_new_token() {
    static ACCEPTED: SocketProbe = SocketProbe::new();
    let log = CallLog::new();
    let mut r: Rx<'_, 2> = reactor();
    let b = connected(&mut r, 7, Recorder::new(&log).on(C::Read, Action::Close));
    let l = listener(
        &mut r,
        9,
        Recorder::new(&log).on(C::Accepted, Action::AddAccepted),
    );
    sock(&mut r, l).set_accept_probe(&ACCEPTED);
    sock(&mut r, l).push_pending(Ok(7));
    sock(&mut r, l).push_pending(Ok(8));
    once(&mut r, 7, READ);
    once(&mut r, 9, READ);
    pass(&mut r);
    // Both connections were accepted, but the only free slot was B's, still
    // quarantined: both adds were refused and the recorder closed the sockets.
    assert!(log.accepted().is_empty());
    assert_eq!(ACCEPTED.close_calls(), 2);
    assert_eq!(r.len(), 1);

    sock(&mut r, l).push_pending(Ok(7));
    once(&mut r, 9, READ);
    pass(&mut r);
    let [c] = log.accepted()[..] else {
        panic!("C was added")
    };
    assert_eq!(c.index(), b.index(), "the slot is reused after the pass");
    assert_ne!(c, b, "under a new generation");
    assert!(r.get(b).is_none());
    assert!(r.remove(b).is_none());
    assert!(!r.close(b), "a stale token closes nothing");
    assert!(r.get(c).is_some());
}

#[test]
fn stale_token_resolves_to_nothing_inside_handlers() {
    let calls = Calls::default();
    let seen = RefCell::new(Vec::new());
    let target = Cell::new(None);
    let mut r: Mock<Hook> = reactor();
    let b = connected(
        &mut r,
        1,
        Hook::new(&calls).on_read(|ctx| {
            ctx.close();
            Ok(())
        }),
    );
    target.set(Some(b));
    let a = connected(
        &mut r,
        2,
        Hook::new(&calls).on_read(|ctx| {
            let me = ctx.token();
            seen.borrow_mut()
                .push(ctx.channel(target.get().unwrap()).is_none());
            seen.borrow_mut().push(ctx.channel(me).is_none());
            seen.borrow_mut().push(ctx.others().count() == 0);
            Ok(())
        }),
    );
    once(&mut r, 1, READ);
    once(&mut r, 2, READ);
    pass(&mut r);
    assert_eq!(calls_of(&calls, a), [C::Read]);
    assert_eq!(*seen.borrow(), [true, true, true]);
}

// ---------------------------------------------------------------------------------
// Handlers ran on closed channels and handle_close ran twice. Liveness is
// re-checked between steps; handle_close is one-shot.

#[test]
fn close_inside_handle_read_stops_handle_write_for_that_pass() {
    static PROBE: SocketProbe = SocketProbe::new();
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let rec = Recorder::new(&log)
        .writable(true)
        .on(C::Read, Action::Close);
    let t = add(&mut r, MockSocket::connected(1).with_probe(&PROBE), rec);
    ready(&mut r, 1, READ | WRITE | PRI | HUP);
    pass(&mut r);
    assert_eq!(
        log.calls_of(t),
        [C::Read],
        "no write, no expt, no close callback"
    );
    assert!(r.is_empty());
    assert_eq!(PROBE.close_calls(), 1);
}

#[test]
fn rst_with_readable_and_hangup_gives_exactly_one_handle_close() {
    static PROBE: SocketProbe = SocketProbe::new();
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let rec = Recorder::new(&log)
        .writable(true)
        .on(C::Read, Action::RecvAll);
    let t = add(&mut r, MockSocket::connected(1).with_probe(&PROBE), rec);
    sock(&mut r, t).script_recv(RecvStep::Fail(os(errno::ECONNRESET)));
    ready(&mut r, 1, READ | WRITE | ERR | HUP);
    assert_eq!(r.run(ZERO, None), Ok(RunEnd::Empty));
    assert_eq!(log.calls_of(t), [C::Read, C::Close]);
    assert_eq!(PROBE.close_calls(), 1);
}

#[test]
fn eof_and_hangup_in_one_pass_give_one_handle_close() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(&mut r, 1, Recorder::new(&log).on(C::Read, Action::RecvAll));
    sock(&mut r, t).feed(b"last words");
    sock(&mut r, t).feed_eof();
    ready(&mut r, 1, READ | HUP);
    pass(&mut r);
    assert_eq!(&log.received(t)[..], b"last words");
    assert_eq!(log.calls_of(t), [C::Read, C::Eof, C::Close]);
}

#[test]
fn close_inside_handle_connect_runs_nothing_after_it() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connecting(
        &mut r,
        1,
        Recorder::new(&log)
            .writable(true)
            .on(C::Connect, Action::Close),
    );
    ready(&mut r, 1, READ | WRITE | PRI);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Connect]);
    assert!(r.is_empty(), "the close is not overwritten by the connect");
}

#[test]
fn handle_close_closes_the_channel_whatever_the_handler_did() {
    let calls = Calls::default();
    let mut r: Mock<Hook> = reactor();
    // The handler neither closes nor fails: the channel is closed anyway.
    let t = connected(&mut r, 1, Hook::new(&calls));
    // This one sends from handle_close on a dead socket: still one close.
    let u = connected(
        &mut r,
        2,
        Hook::new(&calls).on_close(|ctx| {
            ctx.send(b"bye")?;
            Ok(())
        }),
    );
    sock(&mut r, u).script_send(SendStep::Fail(os(errno::EPIPE)));
    ready(&mut r, 1, HUP);
    ready(&mut r, 2, HUP | ERR | NVAL);
    pass(&mut r);
    assert_eq!(calls_of(&calls, t), [C::Close]);
    assert_eq!(calls_of(&calls, u), [C::Close]);
    assert!(r.is_empty());
    assert_eq!(r.selector().registered(), 0);
}

#[test]
fn error_returned_after_ctx_close_goes_nowhere() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let rec = Recorder::new(&log)
        .on(C::Read, Action::Close)
        .on(C::Read, Action::Fail(BOOM));
    let t = connected(&mut r, 1, rec);
    ready(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Read], "no handle_error after a close");
}

// ---------------------------------------------------------------------------------
// Spurious readiness closed connections. Would-block is an outcome.

#[test]
fn would_block_after_readiness_is_not_an_error() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let reader = connected(&mut r, 1, Recorder::new(&log).on(C::Read, Action::RecvAll));
    sock(&mut r, reader).script_recv(RecvStep::WouldBlock);
    let writer = connected(
        &mut r,
        2,
        Recorder::new(&log)
            .writable(true)
            .on(C::Write, Action::Send(b"x")),
    );
    sock(&mut r, writer).script_send(SendStep::WouldBlock);
    let l = listener(&mut r, 3, Recorder::new(&log));
    ready(&mut r, 1, READ);
    ready(&mut r, 2, WRITE);
    ready(&mut r, 3, READ);
    pass(&mut r);
    assert_eq!(log.calls_of(reader), [C::Read]);
    assert_eq!(log.calls_of(writer), [C::Write]);
    assert_eq!(log.calls_of(l), [C::Accept]);
    assert_eq!(r.len(), 3, "nothing closed");
    assert_eq!(sock(&mut r, reader).recv_calls(), 1);
    assert!(sock(&mut r, writer).sent().is_empty());
    // The data comes later and is read then.
    sock(&mut r, reader).feed(b"late");
    pass(&mut r);
    assert_eq!(&log.received(reader)[..], b"late");
}

// ---------------------------------------------------------------------------------
// The two flavours dispatched differently. One readiness struct, one
// translation: channels in slot order, per channel read → write → priority → close.

#[test]
fn one_dispatch_order_per_channel_in_slot_order() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let a = connected(&mut r, 1, Recorder::new(&log).writable(true));
    let b = connected(&mut r, 2, Recorder::new(&log).writable(true));
    once(&mut r, 2, HUP | PRI | WRITE | READ);
    once(&mut r, 1, HUP | PRI | WRITE | READ);
    pass(&mut r);
    let expected = [
        (a, C::Read),
        (a, C::Write),
        (a, C::Expt),
        (a, C::Close),
        (b, C::Read),
        (b, C::Write),
        (b, C::Expt),
        (b, C::Close),
    ];
    assert_eq!(log.calls(), expected);
}

#[test]
fn invalid_source_gets_handle_close_and_nothing_else() {
    // Also: a bad fd ends only its own channel.
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let bad = connected(&mut r, 1, Recorder::new(&log).writable(true));
    let bad_listener = listener(&mut r, 2, Recorder::new(&log));
    let fine = connected(&mut r, 3, Recorder::new(&log));
    once(&mut r, 1, READ | WRITE | PRI | NVAL);
    once(&mut r, 2, READ | NVAL);
    once(&mut r, 3, READ);
    pass(&mut r);
    assert_eq!(log.calls_of(bad), [C::Close]);
    assert_eq!(log.calls_of(bad_listener), [C::Close]);
    assert_eq!(log.calls_of(fine), [C::Read]);
    assert_eq!(r.len(), 1);
}

#[test]
fn listener_hangup_or_error_gives_handle_close_after_accept() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let l = listener(&mut r, 1, Recorder::new(&log));
    once(&mut r, 1, READ | ERR);
    pass(&mut r);
    assert_eq!(log.calls_of(l), [C::Accept, C::Close]);
    assert!(r.is_empty());
}

#[test]
fn disconnect_errors_give_handle_close_never_handle_error() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let codes = [
        errno::ECONNRESET,
        errno::EPIPE,
        errno::ESHUTDOWN,
        errno::ECONNABORTED,
        errno::ENOTCONN,
    ];
    let mut tokens = Vec::new();
    for (id, code) in (1..).zip(codes) {
        let t = connected(&mut r, id, Recorder::new(&log).on(C::Read, Action::RecvAll));
        sock(&mut r, t).script_recv(RecvStep::Fail(os(code)));
        ready(&mut r, id, READ);
        tokens.push(t);
    }
    pass(&mut r);
    for t in tokens {
        assert_eq!(log.calls_of(t), [C::Read, C::Close]);
    }
    assert!(r.is_empty());
}

// ---------------------------------------------------------------------------------
// Busy loops. No write interest by default, nothing handed over for a
// channel without interest, an empty map or no interest never spins or hangs.

#[test]
fn default_writable_is_false_so_an_idle_connection_does_not_spin() {
    let lines = Lines::default();
    let mut r: Mock<Defaults> = reactor();
    connected(&mut r, 1, Defaults::new(&lines));
    ready(&mut r, 1, WRITE);
    assert_eq!(r.run(Some(MS), Some(5)), Ok(RunEnd::Count));
    assert_eq!(interest(&r, 1), Some(Interest::READABLE));
    assert_eq!(
        r.selector().idle_waits(),
        5,
        "every wait found nothing to do"
    );
    assert!(lines.borrow().is_empty(), "no unhandled write event");
}

#[test]
fn channel_with_no_interest_is_not_handed_to_the_selector() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let idle = connected(&mut r, 1, Recorder::new(&log).readable(false));
    let busy = connected(&mut r, 2, Recorder::new(&log));
    ready(&mut r, 1, READ | WRITE | HUP | ERR);
    pass(&mut r);
    let handed: Vec<u32> = r.selector().last_pass().iter().map(|p| p.source).collect();
    assert_eq!(handed, [2]);
    assert_eq!(interest(&r, 1), None);
    assert!(log.calls_of(idle).is_empty(), "not even a hang-up");
    assert_eq!(state(&r, idle), Some(State::Connected));

    // Interest comes back: the channel takes part again.
    r.get_mut(idle).unwrap().dispatcher.set_readable(true);
    pass(&mut r);
    assert_eq!(interest(&r, 1), Some(Interest::READABLE));
    assert_eq!(log.calls_of(idle), [C::Read, C::Close]);
    assert!(log.calls_of(busy).is_empty());
}

#[test]
fn listener_never_gets_write_interest() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    listener(&mut r, 1, Recorder::new(&log).writable(true));
    let quiet = listener(
        &mut r,
        2,
        Recorder::new(&log).readable(false).writable(true),
    );
    pass(&mut r);
    assert_eq!(interest(&r, 1), Some(Interest::READABLE));
    assert_eq!(
        interest(&r, 2),
        None,
        "a listener that is not readable is not watched"
    );
    ready(&mut r, 2, READ | WRITE | HUP);
    pass(&mut r);
    assert!(log.calls_of(quiet).is_empty());
}

// The original's default handle_expt only logged, leaving the urgent byte in place:
// priority readiness is level-triggered, so one `send(MSG_OOB)` from any client woke
// every pass until that client left (100 % CPU). The default now reads and drops it.
#[test]
fn default_handle_expt_consumes_the_urgent_data() {
    let lines = Lines::default();
    let mut r: Mock<Defaults> = reactor();
    let t = connected(&mut r, 1, Defaults::new(&lines));
    sock(&mut r, t).feed_priority(b"!");
    once(&mut r, 1, PRI);
    pass(&mut r);
    let mut rest = [0u8; 4];
    assert_eq!(
        asyncore_core::Socket::recv_priority(sock(&mut r, t), &mut rest),
        Ok(Recv::WouldBlock),
        "the urgent byte was read by the default handler"
    );
    assert_eq!(
        *lines.borrow(),
        [(t, LogLevel::Warning, "unhandled incoming priority event")]
    );
    assert_eq!(state(&r, t), Some(State::Connected));
}

#[test]
fn priority_interest_is_tied_to_readable() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(
        &mut r,
        1,
        Recorder::new(&log).readable(false).writable(true),
    );
    ready(&mut r, 1, PRI | WRITE);
    pass(&mut r);
    assert_eq!(interest(&r, 1), Some(Interest::WRITABLE));
    assert_eq!(
        log.calls_of(t),
        [C::Write],
        "no handle_expt without read interest"
    );
    r.get_mut(t).unwrap().dispatcher.set_readable(true);
    pass(&mut r);
    assert_eq!(interest(&r, 1), Some(Interest::BOTH));
    assert_eq!(log.calls_of(t), [C::Write, C::Write, C::Expt]);
}

#[test]
fn connecting_channel_always_wants_write() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    connecting(&mut r, 1, Recorder::new(&log).readable(false));
    connecting(&mut r, 2, Recorder::new(&log));
    pass(&mut r);
    assert_eq!(interest(&r, 1), Some(Interest::WRITABLE));
    assert_eq!(interest(&r, 2), Some(Interest::BOTH));
}

#[test]
fn interest_is_asked_once_per_pass_readable_first() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    connected(&mut r, 1, Recorder::new(&log).record_queries());
    listener(&mut r, 2, Recorder::new(&log).record_queries());
    let queries: Vec<C> = log.calls().iter().map(|(_, c)| *c).collect();
    // Asked once when added (to register with the interest it has), then once per
    // pass; the listener is never asked writable().
    assert_eq!(queries, [C::Readable, C::Writable, C::Readable]);
    log.clear_calls();
    pass(&mut r);
    let queries: Vec<C> = log.calls().iter().map(|(_, c)| *c).collect();
    assert_eq!(queries, [C::Readable, C::Writable, C::Readable]);
}

#[test]
fn run_returns_on_empty_map_after_count_passes_and_on_exit() {
    let log = CallLog::new();

    let mut r: Rx = reactor();
    assert_eq!(r.run(None, None), Ok(RunEnd::Empty), "empty map: at once");
    assert_eq!(r.selector().passes(), 0);

    connected(&mut r, 1, Recorder::new(&log));
    assert_eq!(r.run(Some(MS), Some(3)), Ok(RunEnd::Count));
    assert_eq!(r.selector().passes(), 3);
    assert_eq!(
        r.selector().clock(),
        3 * MS,
        "each idle pass waited its timeout"
    );

    let mut r: Rx = reactor();
    connected(&mut r, 1, Recorder::new(&log));
    let t = connected(&mut r, 2, Recorder::new(&log).on(C::Read, Action::Exit));
    r.get_mut(t).unwrap().socket.feed(b"x");
    once(&mut r, 2, READ);
    assert_eq!(r.run(Some(MS), None), Ok(RunEnd::Exit));
    assert!(r.exit_requested());
    assert_eq!(r.len(), 2, "exit keeps every channel");
    assert_eq!(
        r.run(Some(MS), Some(1)),
        Ok(RunEnd::Count),
        "and run can resume"
    );
    assert!(!r.exit_requested());

    let mut r: Rx = reactor();
    connected(&mut r, 1, Recorder::new(&log));
    once(&mut r, 1, HUP);
    assert_eq!(r.run(None, None), Ok(RunEnd::Empty), "the map emptied");
    assert_eq!(r.selector().passes(), 1);
}

#[test]
fn run_with_count_zero_runs_nothing() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(&mut r, 1, Recorder::new(&log).record_queries());
    ready(&mut r, 1, READ);
    log.clear_calls();
    assert_eq!(r.run(None, Some(0)), Ok(RunEnd::Count));
    assert_eq!(r.selector().passes(), 0);
    assert!(log.calls().is_empty(), "not even readable() was asked");
    assert!(r.get(t).is_some());
}

#[test]
fn poll_once_on_an_empty_map_does_not_call_the_selector() {
    let mut r: Rx = reactor();
    r.selector_mut().fail_next_wait();
    assert_eq!(r.poll_once(None), Ok(0), "a wait would have failed");
    assert_eq!(r.selector().passes(), 0);
    assert_eq!(r.selector().last_timeout(), None);
}

#[test]
fn timeout_none_with_no_interest_is_an_error_not_a_hang() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    connected(&mut r, 1, Recorder::new(&log).readable(false));
    assert_eq!(r.poll_once(None), Err(PollError::NothingToWaitFor));
    assert_eq!(r.run(None, None), Err(PollError::NothingToWaitFor));
    assert_eq!(r.selector().passes(), 0);
    // With a timeout, the wait happens through the selector (no separate sleep).
    assert_eq!(r.poll_once(Some(MS)), Ok(0));
    assert_eq!(r.selector().passes(), 1);
    assert_eq!(r.selector().last_timeout(), Some(Some(MS)));
    assert!(r.selector().last_pass().is_empty());
    assert_eq!(r.selector().clock(), MS);
}

#[test]
fn failed_wait_leaves_the_map_for_another_run() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(&mut r, 1, Recorder::new(&log));
    ready(&mut r, 1, READ);
    r.selector_mut().fail_next_wait();
    assert!(matches!(r.run(ZERO, None), Err(PollError::Selector(_))));
    assert!(log.calls_of(t).is_empty());
    assert_eq!(r.run(ZERO, Some(1)), Ok(RunEnd::Count));
    assert_eq!(log.calls_of(t), [C::Read]);
}

// ---------------------------------------------------------------------------------
// No half-close. EOF asks handle_eof; KeepWriting keeps writing.

#[test]
fn half_close_keeps_writing_then_one_handle_close_on_hangup() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let rec = Recorder::new(&log)
        .writable(true)
        .on(C::Read, Action::RecvAll)
        .on(C::Eof, Action::KeepWriting)
        .on(C::Write, Action::Send(b"ok"));
    let t = connected(&mut r, 1, rec);
    sock(&mut r, t).feed(b"request");
    sock(&mut r, t).feed_eof();
    once(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(&log.received(t)[..], b"request");
    assert_eq!(log.calls_of(t), [C::Read, C::Eof]);
    assert_eq!(state(&r, t), Some(State::ReadClosed));

    ready(&mut r, 1, READ | WRITE);
    pass(&mut r);
    assert_eq!(
        interest(&r, 1),
        Some(Interest::WRITABLE),
        "read interest stops"
    );
    assert_eq!(log.calls_of(t), [C::Read, C::Eof, C::Write]);
    assert_eq!(sock(&mut r, t).sent(), b"ok");

    ready(&mut r, 1, WRITE | HUP);
    pass(&mut r);
    pass(&mut r);
    assert_eq!(
        log.calls_of(t),
        [C::Read, C::Eof, C::Write, C::Write, C::Close]
    );
    assert!(r.is_empty());
}

#[test]
fn half_close_with_write_in_the_same_pass() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let rec = Recorder::new(&log)
        .writable(true)
        .on(C::Read, Action::RecvAll)
        .on(C::Eof, Action::KeepWriting)
        .on(C::Write, Action::Send(b"reply"));
    let t = connected(&mut r, 1, rec);
    sock(&mut r, t).feed_eof();
    once(&mut r, 1, READ | WRITE);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Read, C::Eof, C::Write]);
    assert_eq!(sock(&mut r, t).sent(), b"reply");
}

#[test]
fn error_in_handle_eof_goes_to_handle_error() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let closes = Recorder::new(&log)
        .writable(true)
        .on(C::Read, Action::RecvAll)
        .on(C::Eof, Action::Fail(BOOM));
    let t = connected(&mut r, 1, closes);
    let keeps = Recorder::new(&log)
        .writable(true)
        .on(C::Read, Action::RecvAll)
        .on(C::Eof, Action::Fail(BOOM))
        .on(C::Error, Action::Nothing);
    let u = connected(&mut r, 2, keeps);
    sock(&mut r, t).feed_eof();
    sock(&mut r, u).feed_eof();
    once(&mut r, 1, READ | WRITE);
    once(&mut r, 2, READ | WRITE);
    pass(&mut r);
    // The default handle_error closes: no write, no handle_close.
    assert_eq!(log.calls_of(t), [C::Read, C::Eof, C::Error]);
    assert_eq!(log.errors_of(t), [BOOM]);
    assert!(r.get(t).is_none());
    // A handle_error that keeps the channel leaves it half-closed, still writing.
    assert_eq!(log.calls_of(u), [C::Read, C::Eof, C::Error, C::Write]);
    assert_eq!(log.errors_of(u), [BOOM]);
    assert_eq!(state(&r, u), Some(State::ReadClosed));
}

// ---------------------------------------------------------------------------------
// An accept error killed the server. Resource shortages leave the
// listener open and accepting; and a listener that stays readable while accepts fail
// must not make every pass retry (it spun at 100 % CPU under `EMFILE`): its reads
// pause for a back-off that doubles while failures go on.

/// A listener (source 1) with the default handlers, ready to read, whose accepts
/// give `pending` in order (connections by id, or failures); `accepted`, if any,
/// counts the accepted sockets' closes.
fn accepting<'a>(
    lines: &'a Lines,
    accepted: Option<&'static SocketProbe>,
    pending: impl IntoIterator<Item = Result<u32, SocketError>>,
) -> (Mock<Defaults<'a>>, Token) {
    let mut r: Mock<Defaults> = reactor();
    let l = listener(&mut r, 1, Defaults::new(lines));
    if let Some(probe) = accepted {
        sock(&mut r, l).set_accept_probe(probe);
    }
    for p in pending {
        sock(&mut r, l).push_pending(p);
    }
    ready(&mut r, 1, READ);
    (r, l)
}

/// Nothing was logged at `Error` level.
fn no_error_logged(lines: &Lines) -> bool {
    lines
        .borrow()
        .iter()
        .all(|(_, lv, _)| *lv != LogLevel::Error)
}

#[test]
fn accept_resource_shortage_does_not_close_the_listener() {
    static ACCEPTED: SocketProbe = SocketProbe::new();
    let lines = Lines::default();
    let pending = [
        Ok(10),
        Err(os(errno::EMFILE)),
        Ok(11),
        Err(os(errno::ENOBUFS)),
        Ok(12),
        Err(os(errno::ENFILE)),
        Ok(13),
    ];
    let (mut r, l) = accepting(&lines, Some(&ACCEPTED), pending);
    // Each pass may wait up to a second of virtual time: a paused listener is not
    // watched, and the wait ends when the back-off does.
    r.run(Some(Duration::from_secs(1)), Some(8)).unwrap();
    assert_eq!(ACCEPTED.close_calls(), 4, "every connection was accepted");
    assert_eq!(state(&r, l), Some(State::Listening));
    let retries = lines
        .borrow()
        .iter()
        .filter(|(_, lv, m)| {
            *lv == LogLevel::Warning && *m == "accept failed, paused for a back-off"
        })
        .count();
    assert_eq!(retries, 3);
    assert!(no_error_logged(&lines));
    // After each failure one pass left the listener out (paused), then it was
    // watched again.
    let passes = r.selector().passes();
    let watched = (1..=passes)
        .filter(|p| {
            r.selector()
                .history()
                .iter()
                .any(|rec| rec.pass == *p && rec.source == 1)
        })
        .count() as u32;
    assert_eq!(passes - watched, 3, "one paused pass per failure");
}

#[test]
fn accept_back_off_doubles_while_failures_go_on_and_resets_on_success() {
    let lines = Lines::default();
    let emfile = Err(os(errno::EMFILE));
    let pending = [emfile, emfile, emfile, emfile, Ok(10), emfile, emfile];
    let (mut r, l) = accepting(&lines, None, pending);
    let mut failed_at = Vec::new();
    for _ in 0..12 {
        let before = lines.borrow().len();
        r.poll_once(Some(Duration::from_secs(5))).unwrap();
        if lines.borrow().len() > before {
            failed_at.push(r.selector().clock());
        }
    }
    let gaps: Vec<u128> = failed_at
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    // 10, 20, 40, 80 ms between the first five failures (the fifth right after the
    // success that ended the 80 ms pause); that success reset the delay, so the
    // sixth follows 10 ms later, not 160.
    assert_eq!(gaps, [10, 20, 40, 80, 10], "{failed_at:?}");
    assert_eq!(state(&r, l), Some(State::Listening));
}

#[test]
fn accept_failures_of_one_connection_or_unknown_never_close_the_listener() {
    static ACCEPTED: SocketProbe = SocketProbe::new();
    let lines = Lines::default();
    // A connection refused by a firewall rule or lost before the accept is skipped
    // for the next one; an error without a better name pauses like a shortage.
    let pending = [
        Err(os(errno::EPERM)),
        Ok(10),
        Err(os(errno::EOPNOTSUPP)),
        Ok(11),
        Err(os(errno::EPROTO)),
        Ok(12),
        Err(os(1234)),
        Ok(13),
    ];
    let (mut r, l) = accepting(&lines, Some(&ACCEPTED), pending);
    r.run(Some(Duration::from_secs(1)), Some(6)).unwrap();
    assert_eq!(ACCEPTED.close_calls(), 4, "every connection was accepted");
    assert_eq!(state(&r, l), Some(State::Listening));
    assert!(no_error_logged(&lines));
}

#[test]
fn accept_failure_that_is_not_a_shortage_goes_to_handle_error() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let l = listener(&mut r, 1, Recorder::new(&log));
    sock(&mut r, l).push_pending(Err(os(errno::EINVAL)));
    ready(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(log.calls_of(l), [C::Accept, C::Error]);
    assert_eq!(log.errors_of(l), [Error::Socket(os(errno::EINVAL))]);
}

// ---------------------------------------------------------------------------------
// Connect edge cases. A failed connect is its own callback.

#[test]
fn refused_connect_calls_handle_connect_failed_only() {
    static PROBE: SocketProbe = SocketProbe::new();
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let mut s = MockSocket::connecting(1).with_probe(&PROBE);
    s.set_so_error(Some(os(errno::ECONNREFUSED)));
    let t = add(&mut r, s, Recorder::new(&log).writable(true));
    // What Linux reports for a refused non-blocking connect.
    ready(&mut r, 1, READ | WRITE | ERR | HUP);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::ConnectFailed]);
    assert_eq!(log.connect_errors_of(t), [os(errno::ECONNREFUSED)]);
    assert!(r.is_empty());
    assert_eq!(PROBE.close_calls(), 1);
}

#[test]
fn hangup_without_socket_error_fails_the_connect() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connecting(&mut r, 1, Recorder::new(&log));
    ready(&mut r, 1, HUP);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::ConnectFailed]);
    assert_eq!(log.connect_errors_of(t), [os(errno::ENOTCONN)]);
    assert!(r.is_empty());
}

#[test]
fn failed_socket_error_query_fails_the_connect() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connecting(&mut r, 1, Recorder::new(&log));
    sock(&mut r, t).fail_take_error(os(errno::EBADF));
    ready(&mut r, 1, WRITE);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::ConnectFailed]);
    assert_eq!(log.connect_errors_of(t), [os(errno::EBADF)]);
}

#[test]
fn error_in_handle_connect_never_fires_it_again() {
    // CPython updates the flags only after handle_connect returns, so a raising
    // handle_connect whose handle_error keeps the channel fires again on the next
    // event. Here the state is Connected before the callback.
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let rec = Recorder::new(&log)
        .on(C::Connect, Action::Fail(BOOM))
        .on(C::Error, Action::Nothing);
    let t = connecting(&mut r, 1, rec);
    ready(&mut r, 1, READ);
    r.run(ZERO, Some(2)).unwrap();
    assert_eq!(log.calls_of(t), [C::Connect, C::Error, C::Read, C::Read]);
    assert_eq!(log.errors_of(t), [BOOM]);
    assert_eq!(state(&r, t), Some(State::Connected));

    // With the default handle_error the channel is closed, and nothing runs after.
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connecting(
        &mut r,
        1,
        Recorder::new(&log).on(C::Connect, Action::Fail(BOOM)),
    );
    ready(&mut r, 1, READ | WRITE);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Connect, C::Error]);
    assert_eq!(log.errors_of(t), [BOOM]);
    assert!(r.is_empty());
}

#[test]
fn priority_alone_does_not_finish_a_connect() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connecting(&mut r, 1, Recorder::new(&log));
    once(&mut r, 1, PRI);
    pass(&mut r);
    assert!(log.calls_of(t).is_empty());
    assert_eq!(state(&r, t), Some(State::Connecting));
}

// ---------------------------------------------------------------------------------
// recv(0) was EOF.

#[test]
fn recv_into_an_empty_buffer_is_not_eof() {
    let calls = Calls::default();
    let outcomes = RefCell::new(Vec::new());
    let mut r: Mock<Hook> = reactor();
    let t = connected(
        &mut r,
        1,
        Hook::new(&calls).on_read(|ctx| {
            outcomes.borrow_mut().push(ctx.recv(&mut [])?);
            Ok(())
        }),
    );
    sock(&mut r, t).feed(b"x");
    sock(&mut r, t).feed_eof();
    ready(&mut r, 1, READ);
    pass(&mut r);
    pass(&mut r);
    assert_eq!(*outcomes.borrow(), [Recv::Data(0), Recv::Data(0)]);
    assert_eq!(calls_of(&calls, t), [C::Read, C::Read], "no EOF, no close");
    assert_eq!(state(&r, t), Some(State::Connected));
    assert_eq!(sock(&mut r, t).unread(), 1);
}

// ---------------------------------------------------------------------------------
// The map: a full map hands values back, adds from handlers take part from the next
// pass, close_all closes everything (in the original an early error left channels open).

#[test]
fn full_map_hands_the_socket_and_dispatcher_back_from_reactor_add() {
    let calls = Calls::default();
    let mut r: Mock<Hook, 1> = reactor();
    connected(&mut r, 1, Hook::new(&calls));
    let refused = r
        .add(MockSocket::connected(2), Hook::new(&calls).tag(42))
        .unwrap_err();
    assert_eq!(refused.kind, AddErrorKind::Full);
    let (s, d) = refused.into_inner();
    assert_eq!((s.id(), s.is_closed(), d.tag), (2, false, 42));
    assert_eq!(
        r.selector().registered(),
        1,
        "nothing registered for the refused one"
    );

    let mut r: Mock<Hook, 4> = reactor();
    r.selector_mut().set_source_limit(10);
    let refused = r
        .add(MockSocket::connected(10), Hook::new(&calls).tag(7))
        .unwrap_err();
    assert_eq!(
        refused.kind,
        AddErrorKind::Rejected(SourceError::OutOfRange { limit: 10 })
    );
    let (s, d) = refused.into_inner();
    assert_eq!((s.id(), s.is_closed(), d.tag), (10, false, 7));
    assert!(r.is_empty());
    assert_eq!(r.selector().registered(), 0);
}

#[test]
fn full_map_hands_the_socket_and_dispatcher_back_from_ctx_add() {
    let calls = Calls::default();
    let refusals = RefCell::new(Vec::new());
    let mut r: Mock<Hook, 2> = reactor();
    let adder = Hook::new(&calls).on_accepted(|ctx, socket| {
        match ctx.add(
            socket,
            Hook::new(&calls).tag(socket_tag(ctx.channel_count())),
        ) {
            Ok(_) => refusals.borrow_mut().push(None),
            Err(e) => {
                let kind = e.kind;
                let (s, d) = e.into_inner();
                refusals
                    .borrow_mut()
                    .push(Some((kind, s.id(), s.is_closed(), d.tag)));
            }
        }
        Ok(())
    });
    let l = listener(&mut r, 1, adder);
    sock(&mut r, l).push_pending(Ok(20));
    sock(&mut r, l).push_pending(Ok(21));
    once(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(
        *refusals.borrow(),
        [None, Some((AddErrorKind::Full, 21, false, 102))]
    );
    assert_eq!(r.len(), 2);

    r.close_all().unwrap();
    refusals.borrow_mut().clear();
    let l = listener(
        &mut r,
        1,
        Hook::new(&calls).on_accepted(|ctx, socket| {
            let e = ctx.add(socket, Hook::new(&calls).tag(5)).unwrap_err();
            refusals.borrow_mut().push(Some((
                e.kind,
                e.socket.id(),
                e.socket.is_closed(),
                e.dispatcher.tag,
            )));
            Ok(())
        }),
    );
    r.selector_mut().set_source_limit(30);
    sock(&mut r, l).push_pending(Ok(30));
    once(&mut r, 1, READ);
    pass(&mut r);
    let rejected = AddErrorKind::Rejected(SourceError::OutOfRange { limit: 30 });
    assert_eq!(*refusals.borrow(), [Some((rejected, 30, false, 5))]);
    assert_eq!(r.len(), 1);
}

/// A tag telling the dispatchers a handler adds apart: 100 + the channel count then.
fn socket_tag(count: usize) -> u32 {
    100 + count as u32
}

#[test]
fn channel_added_inside_a_handler_takes_part_from_the_next_pass() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let l = listener(
        &mut r,
        1,
        Recorder::new(&log).on(C::Accepted, Action::AddAccepted),
    );
    sock(&mut r, l).push_pending(Ok(5));
    ready(&mut r, 5, READ); // the new connection is readable at once
    once(&mut r, 1, READ);
    pass(&mut r);
    let [c] = log.accepted()[..] else {
        panic!("added")
    };
    assert_eq!(state(&r, c), Some(State::Connected));
    assert!(log.calls_of(c).is_empty(), "not in the pass that added it");
    assert_eq!(interest(&r, 5), None, "not in that pass's interest set");

    pass(&mut r);
    assert_eq!(log.calls_of(c), [C::Read]);
    let first = r
        .selector()
        .history()
        .iter()
        .find(|p| p.token == c)
        .map(|p| p.pass);
    assert_eq!(first, Some(2));
}

#[test]
fn close_all_closes_every_channel_even_if_one_close_fails() {
    static PROBES: [SocketProbe; 4] = [const { SocketProbe::new() }; 4];
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let codes = [
        None,
        Some(errno::EBADF),
        Some(errno::EINVAL),
        Some(errno::EPERM),
    ];
    for ((id, probe), code) in (1..).zip(&PROBES).zip(codes) {
        let mut s = MockSocket::connected(id).with_probe(probe);
        if let Some(code) = code {
            s.fail_close(os(code));
        }
        add(&mut r, s, Recorder::new(&log));
    }
    assert_eq!(
        r.close_all(),
        Err(os(errno::EINVAL)),
        "the first error that is not EBADF"
    );
    assert!(PROBES.iter().all(|p| p.close_calls() == 1));
    assert!(r.is_empty());
    assert_eq!(r.selector().registered(), 0);
    assert!(log.calls().is_empty(), "no handle_close");
}

// The reactor's own write interest while connecting must not turn into a
// handle_write for a dispatcher that does not want to write.
#[test]
fn connect_completion_does_not_force_handle_write() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connecting(&mut r, 1, Recorder::new(&log).writable(false));
    ready(&mut r, 1, WRITE);
    pass(&mut r);
    assert_eq!(
        interest(&r, 1),
        Some(Interest::BOTH),
        "write interest while connecting"
    );
    assert_eq!(log.calls_of(t), [C::Connect], "no handle_write");
    assert_eq!(state(&r, t), Some(State::Connected));
    pass(&mut r);
    assert_eq!(
        interest(&r, 1),
        Some(Interest::READABLE),
        "no write interest once connected"
    );
}

// A socket that is already closed is refused at add, with its values handed back.
#[test]
fn closed_socket_is_refused_at_add() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let err = r
        .add(MockSocket::closed(4), Recorder::new(&log))
        .unwrap_err();
    assert_eq!(err.kind, AddErrorKind::Rejected(SourceError::Invalid));
    assert_eq!(err.socket.id(), 4, "the socket comes back");
    assert!(r.is_empty());
    assert_eq!(r.selector().registered(), 0, "nothing left registered");
}

// poll reports IN|HUP once both directions are shut, with data possibly still
// buffered: a handler that reads a little at a time still gets all of it, then one
// close (the original closed at the HUP and dropped the rest).
#[test]
fn hangup_with_data_behind_it_loses_nothing() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(
        &mut r,
        1,
        Recorder::new(&log).on(C::Read, Action::RecvUpTo(4)),
    );
    sock(&mut r, t).feed(b"0123456789");
    sock(&mut r, t).feed_eof();
    ready(&mut r, 1, READ | HUP);
    for _ in 0..10 {
        if r.get(t).is_none() {
            break;
        }
        pass(&mut r);
    }
    assert!(r.get(t).is_none(), "closed in the end");
    assert_eq!(&log.received(t)[..], b"0123456789", "nothing dropped");
    assert_eq!(log.count(t, C::Close), 1);
}

// A handler that closes its socket itself (the fd then reads as invalid) must still
// have its channel deregistered under the source it was registered with.
#[test]
fn deregister_uses_the_registered_source_even_after_the_socket_closed() {
    struct Closer;
    impl Dispatcher<MockSocket> for Closer {
        type Error = Error;
        fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
            asyncore_core::Socket::close(ctx.socket())?;
            ctx.close();
            Ok(())
        }
    }
    let mut r: Mock<Closer> = reactor();
    for round in 0..20u32 {
        let t = r.add(MockSocket::connected(round), Closer).unwrap();
        ready(&mut r, round, READ);
        pass(&mut r);
        assert!(r.get(t).is_none());
    }
    assert_eq!(
        r.selector().registered(),
        0,
        "every registration was released"
    );
    assert_eq!(
        r.selector().unknown_deregisters(),
        0,
        "never with a wrong source"
    );
}

// A connection whose peer reset before it was accepted starts `Open`, not `Connected`
// (the original's constructor: getpeername gives ENOTCONN), with no error.
#[test]
fn accepted_after_peer_reset_starts_open() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let mut l = MockSocket::listener(1);
    assert!(l.push_pending_reset(7));
    assert!(l.push_pending(Ok(8)));
    r.add(l, Recorder::new(&log).on(C::Accepted, Action::AddAccepted))
        .unwrap();
    ready(&mut r, 1, READ);
    pass(&mut r);
    let accepted = log.accepted();
    assert_eq!(accepted.len(), 2);
    assert_eq!(state(&r, accepted[0]), Some(State::Open));
    assert_eq!(state(&r, accepted[1]), Some(State::Connected));
    assert!(log.calls().iter().all(|(_, c)| *c != C::Error));
}

// ---------------------------------------------------------------------------------
// The original dropped a dispatcher with its channel, so a program that ran one
// connection to its end had to share state with it (`Rc<RefCell>`) to learn how it
// ended. A channel may ask for its dispatcher to be kept when it closes, and the
// reactor hands it back.

#[test]
fn a_kept_dispatcher_is_handed_back_after_its_channel_closed() {
    let log = CallLog::new();
    let mut r: Rx<2> = reactor();
    let t = connected(&mut r, 1, Recorder::new(&log).on(C::Read, Action::RecvAll));
    assert!(r.keep_when_closed(t));
    assert!(r.take_closed(t).is_none(), "not while it is open");
    sock(&mut r, t).feed(b"bye");
    sock(&mut r, t).feed_eof();
    ready(&mut r, 1, READ);
    // The map counts only open channels: run ends once the peer is done.
    assert_eq!(r.run(ZERO, Some(4)), Ok(RunEnd::Empty));
    assert_eq!(r.len(), 0);
    assert!(
        r.map().iter().next().is_none(),
        "a kept channel is not listed"
    );
    assert_eq!(
        state(&r, t),
        Some(State::Closed),
        "its token still names it"
    );
    assert_eq!(log.calls_of(t), [C::Read, C::Eof, C::Close]);
    // Its slot is not reused until it is taken: the map of 2 holds one more channel.
    connected(&mut r, 2, Recorder::new(&log));
    assert!(
        r.add(MockSocket::connected(3), Recorder::new(&log))
            .is_err()
    );
    let kept = r.take_closed(t).expect("the dispatcher comes back");
    assert_eq!(log.received(t), b"bye");
    drop(kept);
    assert!(r.take_closed(t).is_none(), "once");
    assert!(r.get(t).is_none(), "the token is dead now");
    assert!(r.add(MockSocket::connected(3), Recorder::new(&log)).is_ok());
}

#[test]
fn every_kind_of_close_keeps_a_dispatcher_that_asked() {
    let log = CallLog::new();
    let mut r: Rx<4> = reactor();
    // Closed by its own handler, by another channel's handler, and from outside.
    let own = connected(&mut r, 1, Recorder::new(&log).on(C::Read, Action::Close));
    let other = connected(&mut r, 2, Recorder::new(&log));
    let outside = connected(&mut r, 3, Recorder::new(&log));
    for t in [own, other, outside] {
        assert!(r.keep_when_closed(t));
    }
    let closer = connected(
        &mut r,
        4,
        Recorder::new(&log).on(C::Read, Action::CloseChannel(other)),
    );
    once(&mut r, 1, READ);
    once(&mut r, 4, READ);
    pass(&mut r);
    assert!(r.close(outside));
    assert!(!r.close(outside), "closed once");
    assert_eq!(r.len(), 1, "only the closer is open");
    for t in [own, other, outside] {
        assert!(r.take_closed(t).is_some(), "{t:?}");
    }
    assert!(r.get(closer).is_some());
}

#[test]
fn close_all_frees_kept_dispatchers_too() {
    let log = CallLog::new();
    let mut r: Rx<2> = reactor();
    let t = connected(&mut r, 1, Recorder::new(&log));
    r.keep_when_closed(t);
    assert!(r.close(t));
    r.close_all().unwrap();
    assert!(r.take_closed(t).is_none());
    connected(&mut r, 1, Recorder::new(&log));
    connected(&mut r, 2, Recorder::new(&log));
    assert_eq!(r.len(), 2, "both slots are free again");
}
