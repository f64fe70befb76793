//! The datagram scenarios, written once and run on every harness. Each asserts the
//! callbacks, what was received (bytes, source, true length) and the errors the
//! operations met; where the kernel reports a situation differently to `select(2)`
//! and `poll(2)`, it says so and asserts each backend against its own column.

use asyncore::{ErrorKind, Interest, Readiness, SocketError, State, Token, errno};

use crate::dgram_harness::{DHarness, DR, Fam, kernel};
use crate::drec::{Call, DLog, DRec, Got};
use crate::harness::{IDLE, WAIT, fds_shared};

const R_: Readiness = Readiness::READABLE;
const W_: Readiness = Readiness::WRITABLE;
const E_: Readiness = Readiness::ERROR;

type Addr<H> = <<H as DHarness>::Sock as asyncore::Datagram>::Addr;

fn add<H: DHarness>(r: &mut DR<H>, socket: H::Sock, rec: DRec<Addr<H>>) -> Token {
    let t = r
        .add(socket, rec)
        .map_err(|e| e.kind)
        .expect("add a channel");
    assert_eq!(r.get(t).map(|c| c.state), Some(State::Datagram));
    t
}

fn ready<H: DHarness>(r: &DR<H>, t: Token) -> Option<Readiness> {
    r.selector().ready_of(t)
}

fn rec_mut<H: DHarness>(r: &mut DR<H>, t: Token) -> &mut DRec<Addr<H>> {
    r.get_mut(t).expect("channel in the map").dispatcher
}

/// A pass that must dispatch nothing, and no new callback.
fn idle<H: DHarness>(h: &mut H, r: &mut DR<H>, log: &DLog<Addr<H>>) {
    let before = log.calls().len();
    assert_eq!(h.pass(r, IDLE), 0, "an idle pass dispatched something");
    assert_eq!(log.calls()[before..], [], "callbacks in an idle pass");
}

/// Passes until `n` datagrams were received (the kernel may queue a burst over two
/// passes): every callback a `Read`.
fn receive<H: DHarness>(h: &mut H, r: &mut DR<H>, log: &DLog<Addr<H>>, n: usize) {
    for _ in 0..n {
        if log.got().len() >= n {
            break;
        }
        assert!(h.pass(r, WAIT) > 0, "no datagram arrived");
    }
    assert_eq!(log.got().len(), n);
    assert!(
        log.calls().iter().all(|c| *c == Call::Read),
        "{:?}",
        log.calls()
    );
}

fn refused() -> SocketError {
    SocketError::from_errno(errno::ECONNREFUSED)
}

/// Datagrams keep their boundaries (an empty one included: not EOF) and arrive with
/// their sender's address, on IPv4, IPv6 and Unix datagram sockets alike.
fn boundaries_and_sources<H: DHarness>(fam: Fam) {
    let _fds = fds_shared();
    let mut h = H::new();
    if !h.available(fam) {
        eprintln!("skipping {fam:?}: not available here");
        return;
    }
    let log = DLog::new();
    let mut r = h.reactor();
    let (sock, mut peer) = h.bound(fam);
    let t = add::<H>(&mut r, sock, DRec::new(&log));
    assert_eq!(h.pass(&mut r, IDLE), 0);
    assert_eq!(r.selector().interest_of(t), Some(Interest::READABLE));

    for d in [&b"first"[..], b"", b"the third one"] {
        h.peer_send(&mut r, t, &mut peer, d);
    }
    assert!(h.pass(&mut r, WAIT) > 0);
    assert_eq!(ready::<H>(&r, t), Some(R_));
    receive(&mut h, &mut r, &log, 3);
    let from = h.peer_addr(&peer);
    let got = |d: &[u8]| Got {
        data: d.to_vec(),
        from,
        len: d.len(),
        truncated: false,
    };
    assert_eq!(log.got(), [got(b"first"), got(b""), got(b"the third one")]);
    assert_eq!(log.errors(), []);
    idle(&mut h, &mut r, &log);
    assert!(r.get(t).is_some(), "an empty datagram is not an end");
}

pub fn boundaries_and_sources_v4<H: DHarness>() {
    boundaries_and_sources::<H>(Fam::V4);
}

pub fn boundaries_and_sources_v6<H: DHarness>() {
    boundaries_and_sources::<H>(Fam::V6);
}

pub fn boundaries_and_sources_unix<H: DHarness>() {
    boundaries_and_sources::<H>(Fam::Unix);
}

/// A datagram longer than the buffer is reported truncated with its true length;
/// the next one is whole.
pub fn truncation_reported<H: DHarness>() {
    let _fds = fds_shared();
    let (log, mut h) = (DLog::new(), H::new());
    let mut r = h.reactor();
    let (sock, mut peer) = h.bound(Fam::V4);
    let mut rec = DRec::new(&log);
    rec.buf = 16;
    let t = add::<H>(&mut r, sock, rec);
    let long: Vec<u8> = (0..100u8).collect();
    h.peer_send(&mut r, t, &mut peer, &long);
    h.peer_send(&mut r, t, &mut peer, b"short");
    receive(&mut h, &mut r, &log, 2);
    let got = log.got();
    assert_eq!(
        (got[0].len, got[0].truncated, &got[0].data[..]),
        (100, true, &long[..16])
    );
    assert_eq!(
        (got[1].len, got[1].truncated, &got[1].data[..]),
        (5, false, &b"short"[..])
    );
}

/// Write readiness exactly when `writable()` says so; a datagram sent to the peer's
/// address arrives whole, from our address.
pub fn write_readiness<H: DHarness>() {
    for fam in [Fam::V4, Fam::Unix] {
        let _fds = fds_shared();
        let (log, mut h) = (DLog::new(), H::new());
        let mut r = h.reactor();
        let (sock, mut peer) = h.bound(fam);
        let mut rec = DRec::new(&log);
        rec.writable = true;
        rec.send = vec![(b"reply".to_vec(), Some(h.peer_addr(&peer)))];
        let t = add::<H>(&mut r, sock, rec);
        assert_eq!(h.pass(&mut r, WAIT), 1);
        assert_eq!(r.selector().interest_of(t), Some(Interest::BOTH));
        assert_eq!(ready::<H>(&r, t), Some(W_));
        assert_eq!(log.calls(), [Call::Write]);
        assert_eq!(h.peer_recv(&mut r, t, &mut peer), (b"reply".to_vec(), true));
        // writable() is false now: the socket stays writable, but no Write.
        idle(&mut h, &mut r, &log);
        assert_eq!(r.selector().interest_of(t), Some(Interest::READABLE));
    }
}

/// A connected socket whose peer's port is closed: the ICMP port unreachable is a
/// pending `ECONNREFUSED`, which the handler's own receive returns, typed. No
/// `Close`, no `Error`: the socket is still good and the channel stays open.
///
/// Kernel difference: `poll(2)` reports the pending error as `ERROR` alone (no
/// datagram is waiting), `select(2)` as readable; the reactor delivers `ERROR` as
/// read readiness, so the callbacks agree.
pub fn connected_refused<H: DHarness>() {
    for fam in [Fam::V4, Fam::V6] {
        let _fds = fds_shared();
        let (log, mut h) = (DLog::new(), H::new());
        if !h.available(fam) {
            continue;
        }
        let mut r = h.reactor();
        let sock = h.connected_refused(fam);
        let t = add::<H>(&mut r, sock, DRec::new(&log));
        assert_eq!(h.pass(&mut r, WAIT), 1);
        assert_eq!(ready::<H>(&r, t), Some(kernel::<H>(E_, R_)));
        assert_eq!(log.calls(), [Call::Read]);
        assert_eq!(log.errors(), [refused()]);
        assert_eq!(log.errors()[0].kind(), ErrorKind::ConnectionRefused);
        assert!(r.get(t).is_some(), "the channel stays open");
        idle(&mut h, &mut r, &log);
    }
}

/// The same with write interest too: both handlers run (poll: `W|E` delivered as
/// `R|W`, select: `R|W`); the receive takes the error, the send then goes.
pub fn connected_refused_writer<H: DHarness>() {
    let _fds = fds_shared();
    let (log, mut h) = (DLog::new(), H::new());
    let mut r = h.reactor();
    let sock = h.connected_refused(Fam::V4);
    let mut rec = DRec::new(&log);
    rec.writable = true;
    rec.send = vec![(b"again".to_vec(), None)];
    let t = add::<H>(&mut r, sock, rec);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(kernel::<H>(W_ | E_, R_ | W_)));
    assert_eq!(log.calls(), [Call::Read, Call::Write]);
    assert_eq!(log.errors(), [refused()]);
    assert!(r.get(t).is_some());
}

/// A handler that propagates the receive error with `?`: `handle_error` gets it (and
/// here keeps the channel open); still no `Close`.
pub fn connected_refused_propagated<H: DHarness>() {
    let _fds = fds_shared();
    let (log, mut h) = (DLog::new(), H::new());
    let mut r = h.reactor();
    let sock = h.connected_refused(Fam::V4);
    let mut rec = DRec::new(&log);
    rec.propagate = true;
    let t = add::<H>(&mut r, sock, rec);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls(), [Call::Read, Call::Error]);
    assert_eq!(log.errors(), [refused()]);
    assert!(r.get(t).is_some());
    idle(&mut h, &mut r, &log);
}

/// A handler that does not receive while an error is pending: the channel is
/// readable on every pass (as with an unread datagram) until the handler receives,
/// which returns the error. On both backends: poll's `ERROR` goes to `Read` as
/// select's readable does, and the reactor does not take the error from under a
/// handler that was called for it.
pub fn refused_unread<H: DHarness>() {
    let _fds = fds_shared();
    let (log, mut h) = (DLog::new(), H::new());
    let mut r = h.reactor();
    let sock = h.connected_refused(Fam::V4);
    let mut rec = DRec::new(&log);
    rec.receive = false;
    let t = add::<H>(&mut r, sock, rec);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls(), [Call::Read]);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(kernel::<H>(E_, R_)));
    assert_eq!(log.calls(), [Call::Read, Call::Read]);
    rec_mut::<H>(&mut r, t).receive = true;
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls(), [Call::Read, Call::Read, Call::Read]);
    assert_eq!(log.errors(), [refused()]);
    assert!(r.get(t).is_some());
    idle(&mut h, &mut r, &log);
}

/// A full receiver pushes back: a connected Unix datagram socket whose peer does not
/// read sends until the socket would block, is then not reported writable, and is
/// again once the peer has read.
pub fn full_buffer_back_pressure<H: DHarness>() {
    let _fds = fds_shared();
    let (log, mut h) = (DLog::new(), H::new());
    let mut r = h.reactor();
    let (sock, mut peer) = h.pair();
    let mut rec = DRec::new(&log);
    rec.writable = true;
    rec.flood = Some(256);
    let t = add::<H>(&mut r, sock, rec);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(log.calls(), [Call::Write]);
    let first = log.flooded();
    assert!(first > 0, "some datagrams went");
    assert_eq!(log.blocked(), 1, "then the socket would block");
    // Not writable while the peer is full: write interest, no event.
    assert_eq!(h.pass(&mut r, IDLE), 0);
    assert_eq!(r.selector().interest_of(t), Some(Interest::BOTH));
    assert_eq!(log.calls(), [Call::Write]);

    assert_eq!(h.peer_drain(&mut r, t, &mut peer), first);
    assert_eq!(h.pass(&mut r, WAIT), 1);
    assert_eq!(ready::<H>(&r, t), Some(W_));
    assert_eq!(log.calls(), [Call::Write, Call::Write]);
    assert!(log.flooded() > first);
    assert_eq!(log.blocked(), 2);
    assert_eq!(log.errors(), []);
}
