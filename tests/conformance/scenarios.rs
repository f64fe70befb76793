//! The scenarios, written once and run on every harness. Each asserts the exact
//! callback sequence, and where the kernel reports different readiness to `select(2)`,
//! `poll(2)` and `epoll(7)` it says so and asserts each backend against its own
//! column.

use asyncore::{Interest, PollError, Readiness, RunEnd, Socket, SocketError, State, Token, errno};

use crate::harness::{Backend, CAP, Harness, IDLE, R, WAIT, fds_exclusive, fds_shared, kernel};
use crate::rec::{Call, Log, Rec};

const R_: Readiness = Readiness::READABLE;
const W_: Readiness = Readiness::WRITABLE;
const E_: Readiness = Readiness::ERROR;
const H_: Readiness = Readiness::HANGUP;

fn add<H: Harness>(r: &mut R<H>, socket: H::Sock, rec: Rec) -> Token {
    r.add(socket, rec)
        .map_err(|e| e.kind)
        .expect("add a channel")
}

/// What the last wait reported for `t` (before the reactor's masking).
fn ready<H: Harness>(r: &R<H>, t: Token) -> Option<Readiness> {
    // The reactor's own report (a channel whose source went away) comes first, in
    // the pass's first batch of events: the only one with the few channels of a
    // scenario, so `events()` (the last batch) has it.
    match r.events().iter().find(|e| e.slot() as usize == t.index()) {
        Some(e) => Some(e.readiness()),
        None => r.selector().ready_of(t),
    }
}

fn rec_mut<H: Harness>(r: &mut R<H>, t: Token) -> &mut Rec {
    r.get_mut(t).expect("channel in the map").dispatcher
}

/// A pass that must find nothing to dispatch, and no new callback.
fn idle<H: Harness>(h: &mut H, r: &mut R<H>, log: &Log) {
    let before = log.all().len();
    assert_eq!(h.pass(r, IDLE), 0, "an idle pass dispatched something");
    assert_eq!(log.all()[before..], [], "callbacks in an idle pass");
}

/// A non-blocking connect that succeeds: `Connect`, and nothing spurious after it.
pub fn connect_succeeds<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (sock, mut peer) = h.connecting();
    let t = add::<H>(&mut r, sock, Rec::new(&log));
    assert_eq!(r.get(t).map(|c| c.state), Some(State::Connecting));

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls_of(t), [Call::Connect]);
    // Interest while connecting is read + write; a fresh connection is only writable
    // (select and poll agree), and `writable()` is false, so no Write follows.
    assert_eq!(r.selector().interest_of(t), Some(Interest::BOTH));
    assert_eq!(ready::<H>(&r, t), Some(W_));
    assert_eq!(r.get(t).map(|c| c.state), Some(State::Connected));
    idle(&mut h, &mut r, &log);

    // A working connection.
    h.peer_send(&mut r, t, &mut peer, b"hi");
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls_of(t), [Call::Connect, Call::Read]);
    assert_eq!(log.received(t), b"hi");
}

/// A refused connect: `ConnectFailed(ECONNREFUSED)`, the channel removed, no `Error`,
/// no `Close`.
///
/// Kernel difference: Linux reports a refused connect as `IN|OUT|ERR|HUP` to
/// `poll(2)` but only readable + writable to `select(2)`; both lead to the same
/// `SO_ERROR` check and the same callback.
pub fn connect_refused<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let sock = h.connecting_refused();
    let t = add::<H>(&mut r, sock, Rec::new(&log));

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(
        ready::<H>(&r, t),
        Some(kernel::<H>(R_ | W_ | E_ | H_, R_ | W_))
    );
    assert_eq!(log.calls_of(t), [Call::ConnectFailed]);
    assert_eq!(
        log.connect_errors_of(t),
        [SocketError::from_errno(errno::ECONNREFUSED)]
    );
    assert!(r.get(t).is_none(), "a failed connect removes the channel");
    assert!(r.is_empty());
    assert_eq!(h.run(&mut r, IDLE, Some(1)), RunEnd::Empty);
    assert_eq!(log.all().len(), 1, "nothing after ConnectFailed");
}

/// A listener with a pending connection: `Accept`, `Accepted`, and the new channel is
/// in the map and works.
pub fn accept<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (ls, addr) = h.listener();
    let lt = add::<H>(&mut r, ls, Rec::new(&log));
    assert_eq!(r.get(lt).map(|c| c.state), Some(State::Listening));
    idle(&mut h, &mut r, &log);

    let mut peer = h.connect_client(&mut r, &addr, lt);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, lt), Some(R_));
    assert_eq!(log.calls_of(lt), [Call::Accept, Call::Accepted]);
    let children = log.accepted();
    assert_eq!(children.len(), 1, "one channel added");
    let c = children[0];
    assert_eq!(r.len(), 2);
    assert_eq!(r.get(c).map(|c| c.state), Some(State::Connected));
    assert_eq!(log.calls_of(c), []);
    idle(&mut h, &mut r, &log);

    h.peer_send(&mut r, c, &mut peer, b"ping");
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls_of(c), [Call::Read]);
    assert_eq!(log.received(c), b"ping");
    assert_eq!(log.calls_of(lt), [Call::Accept, Call::Accepted]);
}

/// Data from the peer: one `Read` with the bytes, then nothing (drained).
pub fn read<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, mut peer) = h.pair();
    let t = add::<H>(&mut r, s, Rec::new(&log));
    idle(&mut h, &mut r, &log);

    h.peer_send(&mut r, t, &mut peer, b"hello");
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(R_));
    assert_eq!(log.calls_of(t), [Call::Read]);
    assert_eq!(log.received(t), b"hello");
    idle(&mut h, &mut r, &log);
}

/// `Write` exactly when `writable()` is true.
pub fn write<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, mut peer) = h.pair();
    let rec = Rec::new(&log)
        .writable(true)
        .send_on_write(b"pong")
        .write_once();
    let t = add::<H>(&mut r, s, rec);

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(r.selector().interest_of(t), Some(Interest::BOTH));
    assert_eq!(ready::<H>(&r, t), Some(W_));
    assert_eq!(log.calls_of(t), [Call::Write]);
    assert_eq!(h.peer_recv(&mut r, t, &mut peer, 4), b"pong");

    // writable() is now false: the socket stays writable, but no Write.
    idle(&mut h, &mut r, &log);
    assert_eq!(r.selector().interest_of(t), Some(Interest::READABLE));

    rec_mut::<H>(&mut r, t).writable = true;
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls_of(t), [Call::Write, Call::Write]);
    assert_eq!(h.peer_recv(&mut r, t, &mut peer, 4), b"pong");
}

/// The peer sends data and FIN: `Read` (data, then EOF), `ReadClosed`, `Close`.
/// FIN is readable + writable on both kernels' reports.
pub fn peer_fin_closes<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, mut peer) = h.pair();
    // Writable too, so the readiness of a FIN is seen whole; Write does nothing.
    let t = add::<H>(&mut r, s, Rec::new(&log).writable(true));
    h.peer_send(&mut r, t, &mut peer, b"bye");
    h.peer_shutdown_write(&mut r, t, &mut peer);

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(R_ | W_));
    // The close comes from the EOF inside Read; the Write step does not run on the
    // closed channel.
    assert_eq!(log.calls_of(t), [Call::Read, Call::Eof, Call::Close]);
    assert_eq!(log.received(t), b"bye");
    assert!(r.get(t).is_none());
    assert!(h.peer_sees_eof(&mut r, &mut peer));
}

/// Half-close: after the peer's FIN, `ReadClosed` answers `KeepWriting`; writes still
/// work; a later reset by the peer ends it with one `Close` and no `Error`.
///
/// Kernel difference: the reset of a half-closed (`CLOSE_WAIT`) socket is reported as
/// writable + `ERR|HUP` by `poll(2)` (interest: write only) and as writable alone by
/// `select(2)`; on both the `send` in `Write` fails (`EPIPE`), a disconnect, so the
/// callbacks agree.
pub fn peer_fin_keep_writing<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, mut peer) = h.pair();
    let rec = Rec::new(&log).keep_writing().send_on_write(b"after");
    let t = add::<H>(&mut r, s, rec);

    h.peer_shutdown_write(&mut r, t, &mut peer);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(R_));
    assert_eq!(log.calls_of(t), [Call::Read, Call::Eof]);
    assert_eq!(r.get(t).map(|c| c.state), Some(State::ReadClosed));

    // Read-closed and not writable: not handed to the selector at all, so the
    // socket's permanent EOF readability does not spin the loop.
    idle(&mut h, &mut r, &log);
    assert_eq!(r.selector().interest_of(t), None);

    // Writes still work.
    rec_mut::<H>(&mut r, t).writable = true;
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(r.selector().interest_of(t), Some(Interest::WRITABLE));
    assert_eq!(ready::<H>(&r, t), Some(W_));
    assert_eq!(log.calls_of(t), [Call::Read, Call::Eof, Call::Write]);
    assert_eq!(h.peer_recv(&mut r, t, &mut peer, 5), b"after");

    // The peer goes away for good.
    h.peer_reset(&mut r, t, &mut peer);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(kernel::<H>(W_ | E_ | H_, W_)));
    assert_eq!(
        log.calls_of(t),
        [Call::Read, Call::Eof, Call::Write, Call::Write, Call::Close]
    );
    assert!(r.get(t).is_none());
}

/// The peer resets: exactly one `Close`, no `Error`.
///
/// Kernel difference: an RST is `IN|OUT|ERR|HUP` to `poll(2)` and readable + writable
/// to `select(2)`. Here the `Read` step comes first on both and its `recv` fails with
/// `ECONNRESET`, so the callbacks agree (see `peer_reset_idle_reader` for where they
/// do not).
pub fn peer_reset<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, mut peer) = h.pair();
    let t = add::<H>(&mut r, s, Rec::new(&log).writable(true));
    h.peer_reset(&mut r, t, &mut peer);

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(
        ready::<H>(&r, t),
        Some(kernel::<H>(R_ | W_ | E_ | H_, R_ | W_))
    );
    assert_eq!(log.calls_of(t), [Call::Read, Call::Close]);
    assert!(r.get(t).is_none());
    assert!(r.is_empty());
}

/// The peer resets while our handler reads nothing.
///
/// Kernel difference (the real one between the backends): `poll(2)` reports
/// `ERR|HUP`, so the reactor closes the channel in the same pass (`Read`, `Close`);
/// `select(2)` reports only readable, so the reset is seen only through a socket
/// operation: `Read` again on every pass until the handler calls `recv`, which fails
/// with `ECONNRESET` and gives the one `Close`.
pub fn peer_reset_idle_reader<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, mut peer) = h.pair();
    let t = add::<H>(&mut r, s, Rec::new(&log).ignore_reads());
    h.peer_reset(&mut r, t, &mut peer);

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(kernel::<H>(R_ | E_ | H_, R_)));
    if H::BACKEND == Backend::Select {
        assert_eq!(log.calls_of(t), [Call::Read]);
        assert!(r.get(t).is_some(), "select cannot see the reset yet");
        assert_eq!(h.pass(&mut r, WAIT), 1);
        assert_eq!(log.calls_of(t), [Call::Read, Call::Read]);
        rec_mut::<H>(&mut r, t).drain = true;
        assert_eq!(h.pass(&mut r, WAIT), 1);
        assert_eq!(
            log.calls_of(t),
            [Call::Read, Call::Read, Call::Read, Call::Close]
        );
    } else {
        assert_eq!(log.calls_of(t), [Call::Read, Call::Close]);
    }
    assert!(r.get(t).is_none());
    assert!(r.is_empty());
}

/// One byte of TCP urgent data: `Expt` (priority only: the urgent byte is not in the
/// normal stream, so no `Read`), and the stream goes on intact afterwards.
pub fn out_of_band<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, mut peer) = h.pair();
    let t = add::<H>(&mut r, s, Rec::new(&log));
    h.peer_send_oob(&mut r, t, &mut peer, b'!');

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(Readiness::PRIORITY));
    assert_eq!(log.calls_of(t), [Call::Expt]);
    assert_eq!(log.oob(t), b"!");
    // Read with MSG_OOB, the urgent byte is no longer reported.
    idle(&mut h, &mut r, &log);

    h.peer_send(&mut r, t, &mut peer, b"data");
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls_of(t), [Call::Expt, Call::Read]);
    assert_eq!(log.received(t), b"data");
}

/// An fd closed behind the loop's back: `INVALID` (poll: `POLLNVAL`; select: `EBADF`,
/// then the bad fd is found), one `Close` for it, the other channel served in the
/// same pass and afterwards.
///
/// Kernel difference: epoll has no `POLLNVAL`. Closing the fd (the only descriptor of
/// its socket) took the socket out of the epoll set, so nothing at all is reported
/// for it: the other channel is served, the closed one gets no callback and stays in
/// the map. The reactor finds out when its interest next changes: `epoll_ctl` fails
/// (`EBADF`), the channel is reported `INVALID`, and it gets its one `Close`.
pub fn fd_closed_under_loop<H: Harness>() {
    let _fds = fds_exclusive();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (sa, _pa) = h.pair();
    let (sb, mut pb) = h.pair();
    let ta = add::<H>(&mut r, sa, Rec::new(&log));
    let tb = add::<H>(&mut r, sb, Rec::new(&log));
    h.peer_send(&mut r, tb, &mut pb, b"alive");
    h.close_behind_back(&mut r, ta);

    if H::BACKEND == Backend::Epoll {
        assert_eq!(h.pass(&mut r, WAIT), 1);
        assert_eq!(
            ready::<H>(&r, ta),
            Some(Readiness::EMPTY),
            "watched, silent"
        );
        assert_eq!(log.calls_of(ta), []);
        assert_eq!(log.calls_of(tb), [Call::Read]);
        assert!(r.get(ta).is_some(), "nothing told the reactor");
        idle(&mut h, &mut r, &log);
        assert_eq!(log.calls_of(ta), []);

        // Its interest changes (read → none): EPOLL_CTL_DEL fails, INVALID, Close.
        rec_mut::<H>(&mut r, ta).readable = false;
        assert_eq!(h.pass(&mut r, WAIT), 1);
        assert_eq!(ready::<H>(&r, ta), Some(Readiness::INVALID));
        assert_eq!(log.calls_of(ta), [Call::Close]);
    } else {
        assert_eq!(h.pass(&mut r, WAIT), 2);
        assert_eq!(ready::<H>(&r, ta), Some(Readiness::INVALID));
        assert_eq!(log.calls_of(ta), [Call::Close]);
        assert_eq!(log.calls_of(tb), [Call::Read]);
    }
    assert_eq!(log.received(tb), b"alive");
    assert!(r.get(ta).is_none());
    assert_eq!(r.len(), 1);

    h.peer_send(&mut r, tb, &mut pb, b" still");
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls_of(tb), [Call::Read, Call::Read]);
    assert_eq!(log.received(tb), b"alive still");
    assert_eq!(log.calls_of(ta), [Call::Close]);
}

/// `readable()` and `writable()` both false: the channel is not handed to the
/// selector, gets no event, and a pass with a timeout returns 0 (no busy loop); with
/// no timeout the pass refuses to wait forever.
pub fn no_interest_no_events<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, mut peer) = h.pair();
    let t = add::<H>(&mut r, s, Rec::new(&log).readable(false));
    h.peer_send(&mut r, t, &mut peer, b"wait");

    let passes = r.selector().passes();
    idle(&mut h, &mut r, &log);
    assert_eq!(r.selector().passes(), passes + 1, "one wait per pass");
    assert_eq!(r.selector().last(), [], "nothing handed to the selector");
    assert!(matches!(
        r.poll_once(None),
        Err(PollError::NothingToWaitFor)
    ));
    assert_eq!(h.run(&mut r, IDLE, Some(3)), RunEnd::Count);
    assert_eq!(log.all(), []);

    rec_mut::<H>(&mut r, t).readable = true;
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls_of(t), [Call::Read]);
    assert_eq!(log.received(t), b"wait");
}

/// A listener never asks for write readiness, whatever `writable()` says.
pub fn listener_never_writable<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (ls, addr) = h.listener();
    let lt = add::<H>(&mut r, ls, Rec::new(&log).writable(true));

    idle(&mut h, &mut r, &log);
    assert_eq!(r.selector().interest_of(lt), Some(Interest::READABLE));

    let _peer = h.connect_client(&mut r, &addr, lt);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(r.selector().interest_of(lt), Some(Interest::READABLE));
    assert_eq!(log.calls_of(lt), [Call::Accept, Call::Accepted]);

    // Not readable: no interest left at all, so not handed over.
    rec_mut::<H>(&mut r, lt).readable = false;
    idle(&mut h, &mut r, &log);
    assert_eq!(r.selector().interest_of(lt), None);
    assert_eq!(log.calls_of(lt), [Call::Accept, Call::Accepted]);
}

/// A handler that closes its channel stops every later callback for it in that pass
/// (no `Write`, no `ReadClosed`, no `Close`, though the same readiness and the EOF it
/// read would call for them); other channels are still served in the pass.
pub fn close_in_handler_stops_callbacks<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (sa, mut pa) = h.pair();
    let (sb, mut pb) = h.pair();
    let ta = add::<H>(&mut r, sa, Rec::new(&log).writable(true).close_on_read());
    let tb = add::<H>(
        &mut r,
        sb,
        Rec::new(&log)
            .readable(false)
            .writable(true)
            .send_on_write(b"b")
            .write_once(),
    );
    h.peer_send(&mut r, ta, &mut pa, b"x");
    h.peer_shutdown_write(&mut r, ta, &mut pa);

    assert_eq!(h.pass(&mut r, WAIT), 2);
    assert_eq!(ready::<H>(&r, ta), Some(R_ | W_));
    assert_eq!(log.calls_of(ta), [Call::Read]);
    assert_eq!(log.received(ta), b"x");
    assert!(r.get(ta).is_none());
    assert!(h.peer_sees_eof(&mut r, &mut pa));
    assert_eq!(log.calls_of(tb), [Call::Write]);
    assert_eq!(h.peer_recv(&mut r, tb, &mut pb, 1), b"b");
}

/// A handler closes another channel with `ctx.close_channel`: that channel's socket
/// is closed at once (its peer reads EOF), it gets no further callback although it is
/// ready in the same pass, and it is gone from the map; the handler's own channel, a
/// stale token and itself are refused (`false`), and the other channels are served.
pub fn close_other_channel<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (sa, mut pa) = h.pair();
    let (sb, mut pb) = h.pair();
    let (sc, mut pc) = h.pair();
    let ta = add::<H>(&mut r, sa, Rec::new(&log));
    let tb = add::<H>(&mut r, sb, Rec::new(&log));
    let tc = add::<H>(&mut r, sc, Rec::new(&log));
    let stale = Token::new(tb.index() as u32, tb.generation().wrapping_add(7));
    if let Some(a) = r.get_mut(ta) {
        *a.dispatcher = a
            .dispatcher
            .clone()
            .close_on_read_too(tb)
            .close_on_read_too(ta)
            .close_on_read_too(stale)
            .close_on_read_too(tb);
    }
    // `ta` must be dispatched before `tb` for `tb` to be closed while it is still
    // ready in the pass: slot order on the mock, select and poll; on epoll, the order
    // in which the sockets became ready, so `ta`'s data goes first.
    h.peer_send(&mut r, ta, &mut pa, b"a");
    h.peer_send(&mut r, tb, &mut pb, b"b");
    h.peer_send(&mut r, tc, &mut pc, b"c");

    h.pass(&mut r, WAIT);
    assert_eq!(ready::<H>(&r, tb), Some(R_), "tb was ready in this pass");
    assert_eq!(
        log.closed_others(),
        [(tb, true), (ta, false), (stale, false), (tb, false)]
    );
    assert_eq!(log.calls_of(ta), [Call::Read]);
    assert!(log.calls_of(tb).is_empty(), "no callback after the close");
    assert!(r.get(tb).is_none());
    assert!(h.peer_sees_eof(&mut r, &mut pb));
    assert_eq!(log.calls_of(tc), [Call::Read]);
    assert_eq!(log.received(tc), b"c");
    assert_eq!(r.len(), 2);
}

/// `exit()` ends `run` at once (`RunEnd::Exit`), the rest of the pass undispatched and
/// every channel left in the map; `run` resumes later.
pub fn exit_ends_run<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (sa, mut pa) = h.pair();
    let (sb, mut pb) = h.pair();
    let ta = add::<H>(&mut r, sa, Rec::new(&log).exit_on_read());
    let tb = add::<H>(&mut r, sb, Rec::new(&log));
    h.peer_send(&mut r, ta, &mut pa, b"a");
    h.peer_send(&mut r, tb, &mut pb, b"b");

    let passes = r.selector().passes();
    assert_eq!(h.run(&mut r, WAIT, None), RunEnd::Exit);
    assert_eq!(r.selector().passes(), passes + 1);
    assert_eq!(ready::<H>(&r, tb), Some(R_), "tb was ready");
    assert_eq!(log.calls_of(ta), [Call::Read]);
    assert_eq!(log.calls_of(tb), [], "the pass ended at the exit");
    assert_eq!(r.len(), 2);

    rec_mut::<H>(&mut r, ta).exit_on_read = false;
    assert_eq!(h.run(&mut r, WAIT, Some(1)), RunEnd::Count);
    assert_eq!(log.calls_of(tb), [Call::Read]);
    assert_eq!(log.received(tb), b"b");
    assert_eq!(log.calls_of(ta), [Call::Read]);
}

/// `run(_, Some(n))` does exactly `n` passes, whether something is ready or not.
pub fn count_respected<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, _peer) = h.pair();
    // Always writable, Write does nothing: ready on every pass.
    let t = add::<H>(&mut r, s, Rec::new(&log).writable(true));

    assert_eq!(h.run(&mut r, WAIT, Some(3)), RunEnd::Count);
    assert_eq!(r.selector().passes(), 3);
    if let Some(native) = h.native_passes(&r) {
        assert_eq!(native, 3);
    }
    assert_eq!(log.calls_of(t), [Call::Write, Call::Write, Call::Write]);

    rec_mut::<H>(&mut r, t).writable = false;
    assert_eq!(h.run(&mut r, IDLE, Some(2)), RunEnd::Count);
    assert_eq!(r.selector().passes(), 5);
    assert_eq!(h.run(&mut r, IDLE, Some(0)), RunEnd::Count);
    assert_eq!(r.selector().passes(), 5);
    if let Some(native) = h.native_passes(&r) {
        assert_eq!(native, 5);
    }
    assert_eq!(log.calls_of(t).len(), 3);
}

/// A pass with nothing ready returns `Ok(0)` once the timeout has passed (its length
/// is not measured); an empty map returns at once without waiting at all.
pub fn timeout_respected<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    assert_eq!(h.pass(&mut r, WAIT), 0);
    assert_eq!(r.selector().passes(), 0, "an empty map does not wait");

    let (s, _peer) = h.pair();
    let _t = add::<H>(&mut r, s, Rec::new(&log));
    assert_eq!(h.pass(&mut r, IDLE), 0);
    assert_eq!(r.selector().passes(), 1);
    assert_eq!(r.selector().last_timeout(), Some(Some(IDLE)));
    if let Some(clock) = h.virtual_clock(&r) {
        assert_eq!(clock, IDLE);
    }
    assert_eq!(log.all(), []);
}

/// A connect that completes with the peer's data and FIN already there: `Connect`,
/// then `Read`, `ReadClosed`, `Close` in the same pass.
pub fn connect_then_peer_closes<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (sock, mut peer) = h.connecting();
    let t = add::<H>(&mut r, sock, Rec::new(&log));
    h.peer_send(&mut r, t, &mut peer, b"hi");
    h.peer_shutdown_write(&mut r, t, &mut peer);

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(R_ | W_));
    assert_eq!(
        log.calls_of(t),
        [Call::Connect, Call::Read, Call::Eof, Call::Close]
    );
    assert_eq!(log.received(t), b"hi");
    assert!(r.get(t).is_none());
}

/// A client that resets its connection before we accept it: the accept still hands
/// it over, and the new channel gets one `Close` (no `Error`) on its first pass.
///
/// Kernel difference: the reset connection is readable + `ERR|HUP` to `poll(2)`,
/// readable to `select(2)` (interest: read); on both `Read`'s `recv` fails with
/// `ECONNRESET` first, so the callbacks agree. On the real kernels the accepted
/// socket starts `State::Open` (`getpeername` fails: the peer is gone); the mock's
/// `accept` can only produce a connected socket, so the state is not compared there.
pub fn client_resets_before_accept<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (ls, addr) = h.listener();
    let lt = add::<H>(&mut r, ls, Rec::new(&log));
    let mut peer = h.connect_client(&mut r, &addr, lt);
    h.peer_reset_pending(&mut peer);

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls_of(lt), [Call::Accept, Call::Accepted]);
    let c = log.accepted()[0];
    if H::BACKEND != Backend::Mock {
        assert_eq!(r.get(c).map(|c| c.state), Some(State::Open));
    }
    h.await_reset(&mut r, c);

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, c), Some(kernel::<H>(R_ | E_ | H_, R_)));
    assert_eq!(log.calls_of(c), [Call::Read, Call::Close]);
    assert!(r.get(c).is_none());
    assert_eq!(r.len(), 1, "the listener stays");
    assert_eq!(log.calls_of(lt), [Call::Accept, Call::Accepted]);
}

/// We shut down our sending side, then the peer does too, while our channel only
/// wants to write.
///
/// Kernel difference: with both directions shut, `poll(2)` reports `HANGUP` (even
/// without read interest), so the channel gets `Write`, then `Close`. `select(2)` has
/// no hang-up: the channel is only writable and gets `Write` on every pass; the EOF is
/// seen once it reads again (`Read`, `ReadClosed`, `Close`).
pub fn both_directions_shut<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let (s, mut peer) = h.pair();
    let t = add::<H>(&mut r, s, Rec::new(&log).readable(false).writable(true));
    r.get_mut(t)
        .expect("channel")
        .socket
        .shutdown_write()
        .expect("our shutdown");
    assert!(h.peer_sees_eof(&mut r, &mut peer));
    h.peer_shutdown_write(&mut r, t, &mut peer);

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(kernel::<H>(W_ | H_, W_)));
    if H::BACKEND == Backend::Select {
        assert_eq!(log.calls_of(t), [Call::Write]);
        rec_mut::<H>(&mut r, t).readable = true;
        assert_eq!(h.pass(&mut r, WAIT), 1);
        assert_eq!(ready::<H>(&r, t), Some(R_ | W_));
        assert_eq!(
            log.calls_of(t),
            [Call::Write, Call::Read, Call::Eof, Call::Close]
        );
    } else {
        assert_eq!(log.calls_of(t), [Call::Write, Call::Close]);
    }
    assert!(r.get(t).is_none());
}

/// A fresh socket, never connected nor listening, added as is (`State::Open`).
///
/// Kernel difference (`docs/semantics.md`, the select/poll table): Linux reports such a socket
/// `OUT|HUP` to `poll(2)` and readable + writable to `select(2)`. Poll: `Write`, then
/// `Close` for the hang-up. Select: `Read`, whose `recv` fails with `ENOTCONN` (a
/// disconnect), then `Close`. One `Close` and no `Error` on both; the first callback
/// differs.
pub fn fresh_socket<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    let s = h.fresh();
    let t = add::<H>(&mut r, s, Rec::new(&log).writable(true));
    assert_eq!(r.get(t).map(|c| c.state), Some(State::Open));

    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(kernel::<H>(W_ | H_, R_ | W_)));
    if H::BACKEND == Backend::Select {
        assert_eq!(log.calls_of(t), [Call::Read, Call::Close]);
    } else {
        assert_eq!(log.calls_of(t), [Call::Write, Call::Close]);
    }
    assert!(r.get(t).is_none());
}

/// A handler closes its socket itself (`ctx.socket().close()`) instead of asking the
/// reactor (`ctx.close()`): the channel stays until the next pass, which reports it
/// `INVALID` (its source is gone) and delivers one `Close`. Done more times than the
/// map has slots, every add must still succeed: the selector's registration
/// bookkeeping must not leak a slot per such channel.
pub fn handler_closes_its_socket<H: Harness>() {
    let _fds = fds_shared();
    let (log, mut h) = (Log::new(), H::new());
    let mut r = h.reactor();
    for round in 0..CAP + 4 {
        let (s, mut peer) = h.pair();
        let t = r
            .add(s, Rec::new(&log).close_socket_on_read())
            .map_err(|e| e.kind)
            .unwrap_or_else(|e| panic!("round {round}: add refused: {e:?}"));
        h.peer_send(&mut r, t, &mut peer, b"x");
        assert_eq!(h.pass(&mut r, WAIT), 1);
        assert_eq!(log.calls_of(t), [Call::Read]);
        assert!(r.get(t).is_some(), "only the reactor removes a channel");
        assert!(h.peer_sees_eof(&mut r, &mut peer));

        assert_eq!(h.pass(&mut r, WAIT), 1);
        assert_eq!(ready::<H>(&r, t), Some(Readiness::INVALID));
        assert_eq!(log.calls_of(t), [Call::Read, Call::Close]);
        assert!(r.is_empty());
    }
}
