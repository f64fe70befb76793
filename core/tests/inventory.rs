//! The mock rows of the original's test suite (`test_asyncore.py`, `test_asynchat.py`): each test
//! is named after the CPython test it ports and asserts the inventory's last column,
//! adapted to this API. Where the design deliberately differs from CPython, the test
//! asserts our behaviour and names what it changes from the original (`docs/semantics.md`,
//! "What we changed from the original").

mod util;

use std::cell::{Cell, RefCell};
use std::sync::Mutex;

use util::*;

/// I/O error: an errno the core gives no meaning to.
const EIO: i32 = 5;

/// A dispatcher with every callback at the trait's default.
struct Plain;

impl Dispatcher<MockSocket> for Plain {
    type Error = Error;
}

// Row 1. HelperFunctionTests.test_readwriteexc: ExitNow propagates out of the loop
// without handle_error; any other error calls handle_error once and the loop goes on.
#[test]
fn test_readwriteexc() {
    let steps = [(READ, C::Read), (WRITE, C::Write), (PRI, C::Expt)];
    for (rd, cb) in steps {
        let log = CallLog::new();
        let mut r: Rx = reactor();
        let rec = Recorder::new(&log).writable(true).on(cb, Action::Exit);
        let t = connected(&mut r, 1, rec);
        let other = connected(&mut r, 2, Recorder::new(&log).writable(true));
        ready(&mut r, 1, rd);
        ready(&mut r, 2, rd);
        assert_eq!(r.run(ZERO, None), Ok(RunEnd::Exit), "{cb:?}");
        assert_eq!(log.calls_of(t), [cb], "exit, no handle_error");
        assert!(log.calls_of(other).is_empty(), "the pass ends at the exit");
        assert!(r.get(t).is_some(), "exit leaves the channel in the map");
        assert_eq!(r.len(), 2);
    }
    for (rd, cb) in steps {
        let log = CallLog::new();
        let mut r: Rx = reactor();
        let t = connected(
            &mut r,
            1,
            Recorder::new(&log)
                .writable(true)
                .on(cb, Action::Fail(BOOM)),
        );
        let other = connected(&mut r, 2, Recorder::new(&log).writable(true));
        ready(&mut r, 1, rd);
        ready(&mut r, 2, rd);
        assert_eq!(pass(&mut r), 2);
        assert_eq!(log.calls_of(t), [cb, C::Error], "handle_error exactly once");
        assert_eq!(log.errors_of(t), [BOOM]);
        assert_eq!(
            log.calls_of(other),
            [cb],
            "dispatch goes on with the next channel"
        );
        assert!(r.get(t).is_none(), "the default handle_error closes");
    }
}

// Row 1, the ExitNow detail: nothing runs after the handler that asked to exit, not
// even the later steps of the same channel (CPython unwinds at once).
#[test]
fn test_readwriteexc_exit_skips_the_remaining_steps() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(
        &mut r,
        1,
        Recorder::new(&log).writable(true).on(C::Read, Action::Exit),
    );
    ready(&mut r, 1, READ | WRITE | PRI | HUP);
    assert_eq!(r.run(ZERO, None), Ok(RunEnd::Exit));
    assert_eq!(log.calls_of(t), [C::Read]);
    assert_eq!(state(&r, t), Some(State::Connected));
}

// Row 1, inside the default accept loop: an exit from handle_accepted ends the batch
// too; the other pending connections wait in the listener's backlog.
#[test]
fn test_readwriteexc_exit_inside_handle_accepted() {
    let calls = Calls::default();
    let mut r: Mock<Hook> = reactor();
    let l = listener(
        &mut r,
        1,
        Hook::new(&calls).on_accepted(|ctx, _| {
            ctx.exit();
            Ok(())
        }),
    );
    for id in 10..13 {
        sock(&mut r, l).push_pending(Ok(id));
    }
    ready(&mut r, 1, READ);
    assert_eq!(r.run(ZERO, None), Ok(RunEnd::Exit));
    assert_eq!(calls_of(&calls, l), [C::Accepted]);
    assert_eq!(r.run(ZERO, Some(1)), Ok(RunEnd::Exit));
    assert_eq!(
        calls_of(&calls, l),
        [C::Accepted, C::Accepted],
        "one per run"
    );
}

// Row 2. HelperFunctionTests.test_readwrite: each readiness bit maps to exactly one
// callback; exit and errors behave the same for every bit.
#[test]
fn test_readwrite() {
    let table = [
        (READ, C::Read),
        (WRITE, C::Write),
        (PRI, C::Expt),
        (ERR, C::Close),
        (HUP, C::Close),
        (NVAL, C::Close),
    ];
    for (rd, cb) in table {
        let log = CallLog::new();
        let mut r: Rx = reactor();
        let t = connected(&mut r, 1, Recorder::new(&log).writable(true));
        once(&mut r, 1, rd);
        pass(&mut r);
        assert_eq!(log.calls_of(t), [cb], "{rd:?}");

        let log = CallLog::new();
        let mut r: Rx = reactor();
        let t = connected(
            &mut r,
            1,
            Recorder::new(&log).writable(true).on(cb, Action::Exit),
        );
        ready(&mut r, 1, rd);
        assert_eq!(r.run(ZERO, None), Ok(RunEnd::Exit), "{rd:?}");
        assert_eq!(log.calls_of(t), [cb], "{rd:?}: exit without handle_error");

        let log = CallLog::new();
        let mut r: Rx = reactor();
        let rec = Recorder::new(&log)
            .writable(true)
            .on(cb, Action::Fail(BOOM));
        let t = connected(&mut r, 1, rec);
        once(&mut r, 1, rd);
        pass(&mut r);
        assert_eq!(log.calls_of(t), [cb, C::Error], "{rd:?}");
        assert_eq!(log.errors_of(t), [BOOM]);
        assert!(
            r.get(t).is_none(),
            "{rd:?}: the default handle_error closes"
        );
    }
}

#[test]
fn test_readwrite_combined_flags() {
    // All steps, in the fixed order read, write, priority, close.
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(&mut r, 1, Recorder::new(&log).writable(true));
    once(&mut r, 1, READ | WRITE | PRI | HUP);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Read, C::Write, C::Expt, C::Close]);

    // An error at step 1 skips the rest (the default handle_error closes).
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(
        &mut r,
        1,
        Recorder::new(&log)
            .writable(true)
            .on(C::Read, Action::Fail(BOOM)),
    );
    once(&mut r, 1, READ | WRITE | PRI | HUP);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Read, C::Error]);
    assert_eq!(log.errors_of(t), [BOOM]);

    // A disconnect errno at step 1 gives handle_close, not handle_error, and nothing after.
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(
        &mut r,
        1,
        Recorder::new(&log)
            .writable(true)
            .on(C::Read, Action::RecvAll),
    );
    sock(&mut r, t).script_recv(RecvStep::Fail(os(errno::ECONNRESET)));
    once(&mut r, 1, READ | WRITE | PRI | HUP);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Read, C::Close]);
}

// Row 3. HelperFunctionTests.test_closeall: close_all closes all 10 channels and
// empties the map; EBADF on close is ignored, another error is reported.
#[test]
fn test_closeall() {
    static PROBES: [SocketProbe; 10] = [const { SocketProbe::new() }; 10];
    let log = CallLog::new();
    let mut r: Rx<'_, 10> = reactor();
    for (id, probe) in (1..).zip(&PROBES) {
        add(
            &mut r,
            MockSocket::connected(id).with_probe(probe),
            Recorder::new(&log),
        );
    }
    assert!(r.map().is_full());
    assert_eq!(r.close_all(), Ok(()));
    assert!(
        PROBES.iter().all(|p| p.close_calls() == 1),
        "each closed once"
    );
    assert!(r.is_empty());
    assert_eq!(r.selector().registered(), 0, "every source deregistered");
    assert!(
        log.calls().is_empty(),
        "close_all calls close, not handle_close"
    );
}

#[test]
fn test_closeall_close_errors() {
    static PROBES: [SocketProbe; 3] = [const { SocketProbe::new() }; 3];
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let mut bad_fd = MockSocket::connected(1).with_probe(&PROBES[0]);
    bad_fd.fail_close(os(errno::EBADF));
    add(&mut r, bad_fd, Recorder::new(&log));
    add(
        &mut r,
        MockSocket::connected(2).with_probe(&PROBES[1]),
        Recorder::new(&log),
    );
    assert_eq!(r.close_all(), Ok(()), "EBADF is ignored");
    assert!(r.is_empty());

    let mut failing = MockSocket::connected(3).with_probe(&PROBES[2]);
    failing.fail_close(os(EIO));
    add(&mut r, failing, Recorder::new(&log));
    add(&mut r, MockSocket::connected(4), Recorder::new(&log));
    assert_eq!(r.close_all(), Err(os(EIO)), "another error is reported");
    assert!(r.is_empty(), "after closing every channel anyway");
    assert!(PROBES.iter().all(SocketProbe::is_closed));
}

// Row 4. HelperFunctionTests.test_closeall_default: there is no global map;
// the closest thing is a reactor in a `static`, which `const fn new` allows.
#[test]
fn test_closeall_default() {
    static DEFAULT: Mutex<Mock<Plain, 4>> = Mutex::new(Reactor::new(MockSelector::new()));
    static PROBES: [SocketProbe; 3] = [const { SocketProbe::new() }; 3];
    let mut guard = DEFAULT.lock().unwrap();
    let r = &mut *guard;
    for (id, probe) in (1..).zip(&PROBES) {
        add(r, MockSocket::connected(id).with_probe(probe), Plain);
    }
    assert_eq!(r.len(), 3);
    assert_eq!(r.close_all(), Ok(()));
    assert!(r.is_empty());
    assert!(PROBES.iter().all(SocketProbe::is_closed));
}

// Row 6. DispatcherTests.test_basic: a fresh dispatcher is readable; it is NOT
// writable by default (the original's `true` spins the loop).
#[test]
fn test_basic() {
    assert!(Dispatcher::<MockSocket>::readable(&Plain));
    assert!(!Dispatcher::<MockSocket>::writable(&Plain));
    let mut r: Mock<Plain> = reactor();
    connected(&mut r, 1, Plain);
    connecting(&mut r, 2, Plain);
    pass(&mut r);
    assert_eq!(interest(&r, 1), Some(Interest::READABLE));
    assert_eq!(
        interest(&r, 2),
        Some(Interest::BOTH),
        "write interest comes from the connect in progress"
    );
}

/// Logs through `log_info` from its handlers and captures what arrives there,
/// dropping levels in `ignore` (the original's `ignore_log_types`).
struct Chatty<'a> {
    lines: &'a Lines,
    ignore: &'static [LogLevel],
    say: &'static [(LogLevel, &'static str)],
}

impl Dispatcher<MockSocket> for Chatty<'_> {
    type Error = Error;

    fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        for &(level, message) in self.say {
            self.log_info(ctx.token(), level, message);
        }
        Ok(())
    }

    fn log_info(&mut self, token: Token, level: LogLevel, message: &'static str) {
        if !self.ignore.contains(&level) {
            self.lines.borrow_mut().push((token, level, message));
        }
    }
}

// Row 8. DispatcherTests.test_log: no stderr; lines go through `log_info`, in order,
// with the channel's token.
#[test]
fn test_log() {
    let lines = Lines::default();
    let mut r: Mock<Chatty> = reactor();
    let say = &[(LogLevel::Info, "hit log"), (LogLevel::Info, "hit log 2")];
    let t = connected(
        &mut r,
        1,
        Chatty {
            lines: &lines,
            ignore: &[],
            say,
        },
    );
    once(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(
        *lines.borrow(),
        [
            (t, LogLevel::Info, "hit log"),
            (t, LogLevel::Info, "hit log 2")
        ]
    );
}

// Row 9. DispatcherTests.test_log_info: levels are an enum, not free strings; every
// level reaches `log_info` in order and the override filters.
#[test]
fn test_log_info() {
    assert!(LogLevel::Debug < LogLevel::Info && LogLevel::Info < LogLevel::Warning);
    assert!(
        LogLevel::Warning < LogLevel::Error,
        "a minimum level can filter"
    );
    let lines = Lines::default();
    let mut r: Mock<Chatty> = reactor();
    let say = &[
        (LogLevel::Info, "EGGS"),
        (LogLevel::Warning, "SPAM"),
        (LogLevel::Error, "HAM"),
        (LogLevel::Debug, "TOAST"),
    ];
    let t = connected(
        &mut r,
        1,
        Chatty {
            lines: &lines,
            ignore: &[LogLevel::Warning],
            say,
        },
    );
    once(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(
        *lines.borrow(),
        [
            (t, LogLevel::Info, "EGGS"),
            (t, LogLevel::Error, "HAM"),
            (t, LogLevel::Debug, "TOAST")
        ]
    );
}

// Row 10. DispatcherTests.test_unhandled: the default handlers emit their warnings, in
// order; with warnings ignored nothing is emitted.
#[test]
fn test_unhandled() {
    let lines = Lines::default();
    let mut r: Mock<Defaults> = reactor();
    let t = connecting(&mut r, 1, Defaults::new(&lines).writable());
    once(&mut r, 1, READ | WRITE | PRI);
    pass(&mut r);
    assert_eq!(
        *lines.borrow(),
        [
            (t, LogLevel::Warning, "unhandled connect event"),
            (t, LogLevel::Warning, "unhandled read event"),
            (t, LogLevel::Warning, "unhandled write event"),
            (t, LogLevel::Warning, "unhandled incoming priority event"),
        ]
    );

    let lines = Lines::default();
    let mut r: Mock<Defaults> = reactor();
    connecting(
        &mut r,
        1,
        Defaults::new(&lines).writable().min(LogLevel::Error),
    );
    once(&mut r, 1, READ | WRITE | PRI);
    pass(&mut r);
    assert!(lines.borrow().is_empty());
}

// Row 10, our extra callbacks: default handle_accepted, handle_close,
// handle_connect_failed and handle_error also report through `log_info`.
#[test]
fn test_unhandled_accepted_close_connect_failed_error() {
    static ACCEPTED: SocketProbe = SocketProbe::new();
    let lines = Lines::default();
    let mut r: Mock<Defaults> = reactor();
    let l = listener(&mut r, 1, Defaults::new(&lines));
    sock(&mut r, l).set_accept_probe(&ACCEPTED);
    sock(&mut r, l).push_pending(Ok(10));
    let c = connected(&mut r, 2, Defaults::new(&lines));
    let f = connecting(&mut r, 3, Defaults::new(&lines));
    sock(&mut r, f).set_so_error(Some(os(errno::ECONNREFUSED)));
    once(&mut r, 1, READ);
    once(&mut r, 2, HUP);
    once(&mut r, 3, WRITE | ERR);
    pass(&mut r);
    assert_eq!(
        ACCEPTED.close_calls(),
        1,
        "the default handle_accepted closes the socket"
    );
    assert_eq!(
        *lines.borrow(),
        [
            (l, LogLevel::Warning, "unhandled accepted event"),
            (c, LogLevel::Warning, "unhandled close event"),
            (f, LogLevel::Warning, "connect failed"),
        ]
    );
    assert_eq!(r.len(), 1, "only the listener is left");

    // handle_error's default logs at Error level and closes.
    lines.borrow_mut().clear();
    let mut r: Mock<Defaults> = reactor();
    let t = listener(&mut r, 1, Defaults::new(&lines));
    sock(&mut r, t).push_pending(Err(os(errno::EINVAL)));
    once(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(
        *lines.borrow(),
        [(t, LogLevel::Error, "uncaptured error, closing channel")]
    );
    assert!(r.is_empty());
}

// Row 11. DispatcherTests.test_strerror: no strerror in no_std; errors carry the errno
// and a classification, and always display as something.
#[test]
fn test_strerror() {
    let e = os(errno::EPERM);
    assert_eq!(e.raw_os_error(), Some(errno::EPERM));
    assert_eq!(e.kind(), asyncore_core::ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("errno 1"), "{e}");
    let unknown = os(-1);
    assert_eq!(unknown.kind(), asyncore_core::ErrorKind::Other);
    assert!(unknown.to_string().contains("-1"), "{unknown}");
    // The original's _DISCONNECTED set (less EBADF: a bad fd is our bug, reported as
    // INVALID readiness, not a peer that left).
    for code in [
        errno::ECONNRESET,
        errno::ENOTCONN,
        errno::ESHUTDOWN,
        errno::ECONNABORTED,
        errno::EPIPE,
    ] {
        assert!(os(code).is_disconnect(), "{code}");
    }
    for code in [
        errno::EBADF,
        errno::EINVAL,
        errno::ECONNREFUSED,
        errno::EMFILE,
        errno::EPERM,
    ] {
        assert!(!os(code).is_disconnect(), "{code}");
    }
    for code in [errno::EMFILE, errno::ENFILE, errno::ENOBUFS, errno::ENOMEM] {
        assert!(os(code).is_transient(), "{code}");
    }
    assert!(!os(errno::ECONNRESET).is_transient());
}

/// The original's `dispatcher_with_send` on our `SendBuffer`.
#[derive(Default)]
struct WithSend {
    out: asyncore_core::SendBuffer<64>,
}

impl Dispatcher<MockSocket> for WithSend {
    type Error = Error;

    fn writable(&self) -> bool {
        self.out.wants_write()
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        self.out.flush(ctx)?;
        Ok(())
    }
}

// Row 12. DispatcherWithSendTests.test_send, mock twin: short writes and would-block
// spread the data over several write events; the peer gets exactly the concatenation,
// then the buffer is empty and write interest stops.
#[test]
fn test_send() {
    let mut r: Mock<WithSend> = reactor();
    let mut d = WithSend::default();
    for chunk in [&b"data"[..], b"data", b"\n"] {
        d.out.queue_all(chunk).unwrap();
    }
    let t = connected(&mut r, 1, d);
    for step in [
        SendStep::Accept(3),
        SendStep::WouldBlock,
        SendStep::Accept(2),
        SendStep::WouldBlock,
    ] {
        sock(&mut r, t).script_send(step);
    }
    ready(&mut r, 1, WRITE);
    let mut write_events = 0;
    while r.get(t).unwrap().dispatcher.out.wants_write() {
        pass(&mut r);
        write_events += 1;
        assert!(write_events <= 10, "the buffer drains");
    }
    assert_eq!(write_events, 3);
    let c = r.get(t).unwrap();
    assert_eq!(c.socket.sent(), b"datadata\n");
    assert!(c.dispatcher.out.is_empty());
    assert!(!Dispatcher::<MockSocket>::writable(c.dispatcher));
    pass(&mut r);
    assert_eq!(
        interest(&r, 1),
        Some(Interest::READABLE),
        "no write interest once drained"
    );
}

// Row 15. FileWrapperTest.test_dispatcher, mock twin: the first read gets the 29 bytes,
// the second EOF, which closes the channel and empties the map, ending `run`.
#[test]
fn test_dispatcher() {
    const DATA: &[u8] = b"It's not dead, it's sleeping!";
    assert_eq!(DATA.len(), 29);
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(
        &mut r,
        1,
        Recorder::new(&log).on(C::Read, Action::RecvUpTo(64)),
    );
    sock(&mut r, t).feed(DATA);
    sock(&mut r, t).feed_eof();
    ready(&mut r, 1, READ);
    assert_eq!(r.run(ZERO, None), Ok(RunEnd::Empty));
    assert_eq!(r.selector().passes(), 2);
    assert_eq!(&log.received(t)[..], DATA);
    // EOF first asks the half-close hook, whose default closes.
    assert_eq!(log.calls_of(t), [C::Read, C::Read, C::Eof, C::Close]);
    assert!(r.is_empty());
}

// Row 17. FileWrapperTest.test_close_twice, mock close: the first close reports the
// error but counts as closed; the second is a silent no-op.
#[test]
fn test_close_twice() {
    use asyncore_core::Socket;
    let mut s = MockSocket::connected(1);
    s.fail_close(os(errno::EBADF));
    assert_eq!(s.close(), Err(os(errno::EBADF)));
    assert!(s.is_closed());
    assert_eq!(s.close(), Ok(()));
    let mut buf = [0u8; 4];
    assert_eq!(
        s.recv(&mut buf),
        Err(os(errno::EBADF)),
        "a read after close fails"
    );

    // Through the reactor: a failing close still removes the channel, and closing the
    // same token again does nothing.
    static PROBE: SocketProbe = SocketProbe::new();
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let mut s = MockSocket::connected(1).with_probe(&PROBE);
    s.fail_close(os(errno::EBADF));
    let t = add(&mut r, s, Recorder::new(&log));
    assert!(r.close(t));
    assert!(!r.close(t));
    assert_eq!(PROBE.close_calls(), 1);
    assert!(r.is_empty());
}

// Row 18. BaseTestAPI.test_handle_connect, mock twin: a connecting channel's first
// write event with SO_ERROR 0 fires handle_connect once, then handle_write.
#[test]
fn test_handle_connect() {
    let calls = Calls::default();
    let seen = RefCell::new(Vec::new());
    let mut r: Mock<Hook> = reactor();
    let h = Hook::new(&calls)
        .writable()
        .on_connect(|ctx| {
            seen.borrow_mut().push(ctx.state());
            ctx.send(b"hello")?;
            Ok(())
        })
        .on_write(|ctx| {
            seen.borrow_mut().push(ctx.state());
            Ok(())
        });
    let t = connecting(&mut r, 1, h);
    assert_eq!(state(&r, t), Some(State::Connecting));
    ready(&mut r, 1, WRITE);
    pass(&mut r);
    assert_eq!(calls_of(&calls, t), [C::Connect, C::Write]);
    // CPython still says "connecting" inside handle_connect; we switch first, so data
    // sent there leaves at once (either order would do).
    assert_eq!(*seen.borrow(), [State::Connected, State::Connected]);
    assert_eq!(sock(&mut r, t).sent(), b"hello");
    assert_eq!(state(&r, t), Some(State::Connected));
    pass(&mut r);
    assert_eq!(
        calls_of(&calls, t),
        [C::Connect, C::Write, C::Write],
        "connect fires once"
    );
}

#[test]
fn test_handle_connect_from_read_and_write_together() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connecting(&mut r, 1, Recorder::new(&log).writable(true));
    once(&mut r, 1, READ | WRITE);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Connect, C::Read, C::Write]);
}

// Row 19. BaseTestAPI.test_handle_accept, mock twin: a read event on a listener calls
// handle_accept, never handle_read; a listener never gets write interest.
#[test]
fn test_handle_accept() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let l = listener(
        &mut r,
        1,
        Recorder::new(&log)
            .writable(true)
            .on(C::Accept, Action::Nothing),
    );
    ready(&mut r, 1, READ | WRITE | PRI);
    pass(&mut r);
    assert_eq!(log.calls_of(l), [C::Accept]);
    assert_eq!(interest(&r, 1), Some(Interest::READABLE));
    pass(&mut r);
    assert_eq!(log.calls_of(l), [C::Accept, C::Accept]);
    assert_eq!(state(&r, l), Some(State::Listening));
}

// Row 20. BaseTestAPI.test_handle_accepted, mock twin: the default handle_accept hands
// each accepted socket to handle_accepted; nothing pending (would-block) and a peer
// that reset first (ECONNABORTED) mean no call and no error.
#[test]
fn test_handle_accepted() {
    let calls = Calls::default();
    let got = RefCell::new(Vec::new());
    let mut r: Mock<Hook> = reactor();
    let h = Hook::new(&calls).on_accepted(|_, s| {
        got.borrow_mut().push((s.id(), s.peer_addr().is_ok()));
        Ok(())
    });
    let l = listener(&mut r, 1, h);
    sock(&mut r, l).push_pending(Ok(10));
    ready(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(calls_of(&calls, l), [C::Accepted]);
    assert_eq!(*got.borrow(), [(10, true)]);

    pass(&mut r); // spurious: nothing pending
    sock(&mut r, l).push_pending(Err(os(errno::ECONNABORTED)));
    pass(&mut r);
    assert_eq!(calls_of(&calls, l), [C::Accepted], "no call, no error");
    assert_eq!(state(&r, l), Some(State::Listening));

    // Several pending connections are taken in one event.
    for id in 11..14 {
        sock(&mut r, l).push_pending(Ok(id));
    }
    pass(&mut r);
    assert_eq!(
        *got.borrow(),
        [(10, true), (11, true), (12, true), (13, true)]
    );
}

// Row 21. BaseTestAPI.test_handle_read, mock twin.
#[test]
fn test_handle_read() {
    let data: Vec<u8> = (0..=255).cycle().take(512).collect();
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(&mut r, 1, Recorder::new(&log).on(C::Read, Action::RecvAll));
    assert_eq!(sock(&mut r, t).feed(&data), 512);
    ready(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Read]);
    assert_eq!(&log.received(t)[..], &data[..]);
}

// Row 22. BaseTestAPI.test_handle_write, mock twin.
#[test]
fn test_handle_write() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(
        &mut r,
        1,
        Recorder::new(&log)
            .writable(true)
            .on(C::Write, Action::Send(b"x")),
    );
    ready(&mut r, 1, WRITE);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Write]);
    assert_eq!(sock(&mut r, t).sent(), b"x");
}

// Row 23. BaseTestAPI.test_handle_close, mock twin: a read that returns EOF calls
// handle_close once, and the read reports EOF to the handler.
#[test]
fn test_handle_close() {
    static PROBE: SocketProbe = SocketProbe::new();
    let calls = Calls::default();
    let outcomes = RefCell::new(Vec::new());
    let mut r: Mock<Hook> = reactor();
    let h = Hook::new(&calls).on_read(|ctx| {
        let mut buf = [0u8; 16];
        outcomes.borrow_mut().push(ctx.recv(&mut buf)?);
        outcomes.borrow_mut().push(ctx.recv(&mut buf)?);
        Ok(())
    });
    let mut s = MockSocket::connected(1).with_probe(&PROBE);
    s.feed_eof();
    let t = add(&mut r, s, h);
    ready(&mut r, 1, READ | HUP);
    pass(&mut r);
    assert_eq!(*outcomes.borrow(), [Recv::Eof, Recv::Eof], "EOF sticks");
    assert_eq!(calls_of(&calls, t), [C::Read, C::Eof, C::Close]);
    assert!(r.is_empty());
    assert_eq!(PROBE.close_calls(), 1);
}

/// Sends 128 bytes twice per write event, recording what each send reported.
fn sender<'a>(calls: &'a Calls, sent: &'a RefCell<Vec<usize>>) -> Hook<'a> {
    Hook::new(calls).writable().on_write(move |ctx| {
        sent.borrow_mut().push(ctx.send(&[0u8; 128])?);
        sent.borrow_mut().push(ctx.send(&[0u8; 128])?);
        Ok(())
    })
}

// Row 24. BaseTestAPI.test_handle_close_after_conn_broken, mock twin: EPIPE and
// ECONNRESET from send/recv, and hang-up/error readiness, lead to handle_close, never
// handle_error; the send reports 0 bytes.
#[test]
fn test_handle_close_after_conn_broken() {
    let calls = Calls::default();
    let sent = RefCell::new(Vec::new());
    let mut r: Mock<Hook> = reactor();
    let epipe = connected(&mut r, 1, sender(&calls, &sent));
    sock(&mut r, epipe).script_send(SendStep::Fail(os(errno::EPIPE)));
    let reset = connected(&mut r, 2, sender(&calls, &sent));
    sock(&mut r, reset).script_send(SendStep::Fail(os(errno::ECONNRESET)));
    let reader = connected(
        &mut r,
        3,
        Hook::new(&calls).on_read(|ctx| {
            ctx.recv(&mut [0u8; 16])?;
            Ok(())
        }),
    );
    sock(&mut r, reader).script_recv(RecvStep::Fail(os(errno::ECONNRESET)));
    let hup = connected(&mut r, 4, Hook::new(&calls));
    ready(&mut r, 1, WRITE);
    ready(&mut r, 2, WRITE);
    ready(&mut r, 3, READ);
    ready(&mut r, 4, HUP | ERR);
    pass(&mut r);
    assert_eq!(
        *sent.borrow(),
        [0, 0, 0, 0],
        "a broken send reports 0 and sends no more"
    );
    assert_eq!(calls_of(&calls, epipe), [C::Write, C::Close]);
    assert_eq!(calls_of(&calls, reset), [C::Write, C::Close]);
    assert_eq!(calls_of(&calls, reader), [C::Read, C::Close]);
    assert_eq!(calls_of(&calls, hup), [C::Close]);
    assert!(r.is_empty());
}

// Row 25. BaseTestAPI.test_handle_expt, mock twin: priority readiness with no pending
// socket error calls handle_expt; with one it calls handle_close.
#[test]
fn test_handle_expt() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let t = connected(&mut r, 1, Recorder::new(&log));
    let broken = connected(&mut r, 2, Recorder::new(&log));
    sock(&mut r, broken).set_so_error(Some(os(errno::ECONNRESET)));
    once(&mut r, 1, PRI);
    once(&mut r, 2, PRI);
    pass(&mut r);
    assert_eq!(log.calls_of(t), [C::Expt]);
    assert_eq!(log.calls_of(broken), [C::Close]);
    assert!(r.get(broken).is_none());
    assert_eq!(state(&r, t), Some(State::Connected));
}

// Row 26. BaseTestAPI.test_handle_error: handle_error receives exactly the error the
// handler returned; the loop carries on.
#[test]
fn test_handle_error() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let keep = Recorder::new(&log)
        .writable(true)
        .on(C::Write, Action::Fail(BOOM))
        .on(C::Error, Action::Nothing);
    let t = connected(&mut r, 1, keep);
    let full = Error::BufferFull;
    let u = connected(
        &mut r,
        2,
        Recorder::new(&log)
            .writable(true)
            .on(C::Write, Action::Fail(full)),
    );
    ready(&mut r, 1, WRITE);
    ready(&mut r, 2, WRITE);
    assert_eq!(r.run(ZERO, Some(3)), Ok(RunEnd::Count));
    assert_eq!(log.calls_of(u), [C::Write, C::Error]);
    assert_eq!(log.errors_of(u), [full]);
    assert_eq!(
        log.calls_of(t).len(),
        6,
        "three passes: write, error each time"
    );
    assert!(log.calls_of(t).chunks(2).all(|p| p == [C::Write, C::Error]));
    assert_eq!(log.errors_of(t), [BOOM; 3]);
    assert!(r.get(u).is_none(), "the default handle_error closes");
    assert!(
        r.get(t).is_some(),
        "a handle_error that keeps the channel open is obeyed"
    );
}

// Row 27. BaseTestAPI.test_connection_attributes, mock twin: Listening stays
// Listening; Connecting becomes Connected; closing the client removes it from the map
// and leaves the server alone; closing the server too.
#[test]
fn test_connection_attributes() {
    let calls = Calls::default();
    let open_after_close = Cell::new(None);
    let mut r: Mock<Hook> = reactor();
    let server = listener(&mut r, 1, Hook::new(&calls));
    let client = connecting(
        &mut r,
        2,
        Hook::new(&calls).on_read(|ctx| {
            ctx.close();
            open_after_close.set(Some(ctx.is_open()));
            Ok(())
        }),
    );
    ready(&mut r, 2, WRITE);
    r.run(ZERO, Some(100)).unwrap();
    assert_eq!(state(&r, server), Some(State::Listening));
    assert_eq!(state(&r, client), Some(State::Connected));

    ready(&mut r, 2, READ);
    pass(&mut r);
    assert_eq!(open_after_close.get(), Some(false));
    assert_eq!(state(&r, client), None, "closed: out of the map");
    assert_eq!(state(&r, server), Some(State::Listening));
    assert!(r.close(server));
    assert!(r.is_empty());
    assert!(
        !calls_of(&calls, client).contains(&C::Close),
        "close() is not handle_close"
    );
}

// Row 31. BaseTestAPI.test_quick_connect, mock twin: a peer that resets before accept
// is no error; an accepted socket whose peer address is already gone starts Open, not
// Connected; a later reset gives handle_close.
#[test]
fn test_quick_connect() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    let l = listener(
        &mut r,
        1,
        Recorder::new(&log).on(C::Accepted, Action::AddAccepted),
    );
    sock(&mut r, l).push_pending(Err(os(errno::ECONNABORTED)));
    once(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(log.calls_of(l), [C::Accept]);
    assert!(log.accepted().is_empty());

    for peer in [errno::ENOTCONN, errno::EINVAL] {
        let t = add(
            &mut r,
            MockSocket::accepted(5, Err(os(peer))),
            Recorder::new(&log),
        );
        assert_eq!(state(&r, t), Some(State::Open), "{peer}");
        once(&mut r, 5, HUP | ERR);
        pass(&mut r);
        assert_eq!(log.calls_of(t), [C::Close]);
        assert!(r.get(t).is_none());
    }
    let t = add(&mut r, MockSocket::accepted(6, Ok(99)), Recorder::new(&log));
    assert_eq!(state(&r, t), Some(State::Connected));
    assert!(
        log.calls().iter().all(|(_, c)| *c != C::Error),
        "no error anywhere"
    );
}
