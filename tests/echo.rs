//! The core's echo server (`asyncore::Echo`) on real sockets, on `select(2)` and
//! `poll(2)`: 100 concurrent std clients with byte-exact echoes, a full map (the
//! extra client sees a clean close while the others keep working), an fd ≥
//! `FD_SETSIZE` (refused by select, served by poll), and an fd closed behind the
//! loop's back (that channel gets `handle_close`, the others keep echoing).

#[macro_use]
mod common;
#[path = "support/fd_limit.rs"]
mod fd_limit;

use std::cell::RefCell;
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use asyncore::{
    AddErrorKind, Addr, Backend, Callback, Echo, EchoConn, FD_SETSIZE, SourceError, State,
    StdReactor, StdSocket, Token, Trace,
};
use common::{Case, PATIENCE, Peer, pattern, run_until, run_until_within};
use fd_limit::raise_fd_limit;
use nix::fcntl::{FcntlArg, fcntl};
use nix::sys::resource::rlim_t;

/// The echo buffer per connection: small, so long messages go through back-pressure.
const BUF: usize = 1024;

type Server<const N: usize> = StdReactor<Echo<StdSocket, BUF>, N>;

/// A listener of the case's family serving at most `max_conns` connections.
fn echo_server<const N: usize>(case: &Case, max_conns: usize) -> (Server<N>, Token, Addr) {
    let mut r: Server<N> = case.reactor();
    let (socket, addr) = case.listener(true, 128);
    let listener = r
        .add(socket, Echo::listener(max_conns))
        .expect("add the listener");
    (r, listener, addr)
}

/// (accepted, refused) so far.
fn counts<const N: usize>(r: &Server<N>, listener: Token) -> (u64, u64) {
    let l = r
        .get(listener)
        .and_then(|c| c.dispatcher.as_listener())
        .expect("the listener is there");
    (l.accepted(), l.refused())
}

/// A non-blocking std peer connected to `addr`.
fn peer(addr: &Addr) -> Peer {
    let p = Peer::connect(addr).expect("connect");
    p.set_nonblocking(true).unwrap();
    p
}

/// Sends `msg` from the (non-blocking) peer and runs the server until all of it came
/// back; returns what came back.
fn round_trip<D: asyncore::Dispatcher<StdSocket>, const N: usize, P: asyncore::Lend>(
    r: &mut StdReactor<D, N, P>,
    p: &mut Peer,
    msg: &[u8],
) -> Vec<u8> {
    let mut sent = 0;
    let mut back = Vec::with_capacity(msg.len());
    let mut buf = [0u8; 4096];
    run_until(r, "the echo came back", |_| {
        if sent < msg.len() {
            match p.write(&msg[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
                Err(e) => panic!("peer write: {e}"),
            }
        }
        loop {
            match p.read(&mut buf) {
                Ok(0) => panic!("the server closed during an echo"),
                Ok(n) => back.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == IoErrorKind::WouldBlock => break,
                Err(e) => panic!("peer read: {e}"),
            }
        }
        back.len() >= msg.len()
    });
    back
}

/// Reads what the server sends until it closes (blocking, bounded by a timeout):
/// `Ok(bytes)` for a clean close (EOF), `Err` for a reset or a timeout.
fn read_to_close(p: &mut Peer) -> std::io::Result<Vec<u8>> {
    p.set_nonblocking(false)?;
    p.set_timeouts(PATIENCE)?;
    let mut got = Vec::new();
    p.read_to_end(&mut got)?;
    Ok(got)
}

// ------------------------------------------------------------------ 100 clients

/// Two barriers for the client threads that a failing client cannot leave the
/// others stuck at: a failure counts as having arrived at every gate.
#[derive(Default)]
struct Gates {
    counts: Mutex<GateCounts>,
    changed: Condvar,
}

#[derive(Default)]
struct GateCounts {
    arrived: [usize; 2],
    failed: usize,
}

impl Gates {
    /// Arrives at `gate` and waits until every client arrived there (or failed).
    fn wait(&self, gate: usize) {
        let mut c = self.counts.lock().unwrap();
        c.arrived[gate] += 1;
        self.changed.notify_all();
        let (_c, wait) = self
            .changed
            .wait_timeout_while(c, PATIENCE, |c| c.arrived[gate] + c.failed < CLIENTS)
            .unwrap();
        assert!(!wait.timed_out(), "gate {gate} never opened");
    }

    fn fail(&self) {
        self.counts.lock().unwrap().failed += 1;
        self.changed.notify_all();
    }
}

/// One blocking std client: connects, waits until every client is connected, echoes
/// `ROUNDS` messages of varied sizes (up to 20 KB, far more than the server's 1 KiB
/// buffer), waiting after the first until every client is being served, then
/// half-closes and expects the server's clean close.
fn client(addr: &Addr, id: u64, gates: &Gates) -> Result<u64, String> {
    const ROUNDS: u64 = 4;
    let mut p = Peer::connect(addr).map_err(|e| format!("client {id}: connect: {e}"))?;
    p.set_timeouts(PATIENCE).unwrap();
    gates.wait(0);
    let mut echoed = 0;
    for round in 0..ROUNDS {
        let len = 1 + ((id * 7919 + round * 104_729) % 20_000) as usize;
        let msg = pattern(id * 1000 + round, len);
        p.write_all(&msg)
            .map_err(|e| format!("client {id}: write: {e}"))?;
        let mut back = vec![0u8; len];
        p.read_exact(&mut back)
            .map_err(|e| format!("client {id}: read: {e}"))?;
        if back != msg {
            return Err(format!("client {id}: round {round}: the echo differs"));
        }
        echoed += len as u64;
        if round == 0 {
            gates.wait(1);
        }
    }
    p.shutdown_write().unwrap();
    let mut rest = Vec::new();
    match p.read_to_end(&mut rest) {
        Ok(_) if rest.is_empty() => Ok(echoed),
        Ok(_) => Err(format!("client {id}: {} unexpected bytes", rest.len())),
        Err(e) => Err(format!("client {id}: no clean close: {e}")),
    }
}

const CLIENTS: usize = 100;

matrix!(hundred_clients: ipv4, ipv6, unix);
/// 100 concurrent clients (threads with blocking std sockets), all connected and
/// all being served at the same moment, each echoed byte-exact over several rounds;
/// each half-close ends in the server's clean close; the listener is left alone.
fn hundred_clients(case: &Case) {
    let (mut r, listener, addr) = echo_server::<{ CLIENTS + 8 }>(case, CLIENTS);
    let gates = Arc::new(Gates::default());
    let finished = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..CLIENTS as u64)
        .map(|id| {
            let (gates, finished, errors) = (gates.clone(), finished.clone(), errors.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let result = client(&addr, id, &gates);
                    if let Err(e) = &result {
                        gates.fail();
                        errors.lock().unwrap().push(e.clone());
                    }
                    finished.fetch_add(1, Ordering::AcqRel);
                    result.unwrap_or(0)
                })
                .expect("spawn a client")
        })
        .collect();

    // The work, if every pass found one channel ready: each message goes through
    // the 1 KiB echo buffer in up to 20 reads and as many writes. Measured: 100 to
    // 1,600 passes on select, poll and epoll (epoll's passes are the cheapest, so
    // each finds the fewest events ready); the bound only turns a spin into a failure.
    let work = CLIENTS * 4 * 2 * (20_000 / 1024 + 1);
    let mut peak = 0;
    run_until_within(&mut r, "every client done and closed", work, |r| {
        peak = peak.max(r.len());
        finished.load(Ordering::Acquire) == CLIENTS && r.len() == 1
    });
    let echoed: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} clients failed: {:?}",
        errors.len(),
        &errors[..]
    );
    assert_eq!(
        peak,
        CLIENTS + 1,
        "all clients were served at the same time"
    );
    assert_eq!(counts(&r, listener), (CLIENTS as u64, 0));
    assert_eq!(r.get(listener).unwrap().state, State::Listening);
    assert!(echoed > 0);
}

// ------------------------------------------------------------------ a full map

matrix!(max_conns_reached: ipv4, ipv6, unix);
/// `--max-conns 3`: a fourth client is accepted and closed at once, cleanly (EOF,
/// not a reset); the three keep being served; once one leaves, a new client is
/// served again.
fn max_conns_reached(case: &Case) {
    let (mut r, listener, addr) = echo_server::<8>(case, 3);
    full_map(case, &mut r, listener, &addr, 3);
}

matrix!(map_capacity_reached: ipv4, ipv6, unix);
/// The map's compile-time capacity (the listener and 3 connections) is the limit
/// this time (`ctx.add` reports `Full`): the same clean refusal.
fn map_capacity_reached(case: &Case) {
    let (mut r, listener, addr) = echo_server::<4>(case, 100);
    full_map(case, &mut r, listener, &addr, 3);
}

fn full_map<const N: usize>(
    case: &Case,
    r: &mut Server<N>,
    listener: Token,
    addr: &Addr,
    limit: usize,
) {
    let mut served: Vec<Peer> = (0..limit).map(|_| peer(addr)).collect();
    for (i, p) in served.iter_mut().enumerate() {
        let msg = pattern(i as u64, 100 + i);
        assert_eq!(round_trip(r, p, &msg), msg);
    }
    assert_eq!(counts(r, listener), (limit as u64, 0));

    let mut extra = peer(addr);
    run_until(r, "the extra client refused", |r| {
        counts(r, listener).1 == 1
    });
    match read_to_close(&mut extra) {
        Ok(rest) => assert!(rest.is_empty(), "the refused client got data"),
        Err(e) => panic!("the refused client saw {e} instead of a clean close ({case:?})"),
    }
    assert_eq!(r.len(), limit + 1);

    for (i, p) in served.iter_mut().enumerate() {
        let msg = pattern(100 + i as u64, 5000 + i);
        assert_eq!(round_trip(r, p, &msg), msg, "client {i} still served");
    }

    // One leaves; its slot serves a newcomer.
    let gone = served.remove(0);
    gone.shutdown_write().unwrap();
    drop(gone);
    run_until(r, "the leaver's channel closed", |r| r.len() == limit);
    let mut newcomer = peer(addr);
    let msg = pattern(999, 3000);
    assert_eq!(round_trip(r, &mut newcomer, &msg), msg);
    assert_eq!(counts(r, listener), (limit as u64 + 1, 1));
}

// ------------------------------------------------------------------ FD_SETSIZE

/// The fd number the test places a channel at: above `FD_SETSIZE`.
const HIGH: RawFd = 1500;

/// A connected TCP pair whose server end is a channel socket at an fd ≥ `HIGH`.
fn high_fd_pair() -> (StdSocket, RawFd, Peer) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    let raw = fcntl(&server, FcntlArg::F_DUPFD_CLOEXEC(HIGH)).unwrap();
    assert!(raw as usize >= FD_SETSIZE);
    // SAFETY: fcntl just created this fd and nothing else owns it.
    let high = unsafe { OwnedFd::from_raw_fd(raw) };
    drop(server); // the dup keeps the connection
    let socket = StdSocket::from_owned_file(high).unwrap();
    client.set_nonblocking(true).unwrap();
    (socket, raw, Peer::Tcp(client))
}

backends!(fd_above_fd_setsize);
/// An fd ≥ `FD_SETSIZE`: select refuses the channel when it is added
/// (`Rejected(OutOfRange)`, the socket handed back open) and goes on serving the
/// others; poll and epoll take it and echo through it.
fn fd_above_fd_setsize(case: &Case) {
    if !raise_fd_limit(rlim_t::try_from(HIGH + 100).expect("positive, fits rlim_t")) {
        return;
    }
    let (mut r, listener, addr) = echo_server::<8>(case, 6);
    let mut low = peer(&addr);
    assert_eq!(round_trip(&mut r, &mut low, b"low"), b"low");

    let (socket, raw, mut high_peer) = high_fd_pair();
    match case.backend {
        Backend::Select => {
            let e = r.add(socket, Echo::Conn(EchoConn::new())).unwrap_err();
            assert_eq!(
                e.kind,
                AddErrorKind::Rejected(SourceError::OutOfRange { limit: FD_SETSIZE })
            );
            let (socket, _) = e.into_inner();
            assert_eq!(socket.as_raw_fd(), raw, "handed back untouched");
            assert!(!socket.is_closed());
            assert_eq!(r.len(), 2);
        }
        Backend::Poll | Backend::Epoll => {
            let t = r.add(socket, Echo::Conn(EchoConn::new())).unwrap();
            assert_eq!(r.get(t).unwrap().socket.as_raw_fd(), raw);
            let msg = pattern(1500, 10_000);
            assert_eq!(round_trip(&mut r, &mut high_peer, &msg), msg);
            assert_eq!(r.len(), 3);
        }
    }
    let msg = pattern(7, 5000);
    assert_eq!(round_trip(&mut r, &mut low, &msg), msg, "the others go on");
    assert_eq!(counts(&r, listener), (1, 0));
}

// ------------------------------------------------------------------ closed behind the back

thread_local! {
    static EVENTS: RefCell<Vec<(Token, Trace)>> = const { RefCell::new(Vec::new()) };
}

fn record(token: Token, event: Trace) {
    EVENTS.with(|e| e.borrow_mut().push((token, event)));
}

backends!(fd_closed_behind_the_back, exclusive);
/// Three clients served; the fd of one server-side channel is closed behind the
/// loop's back. select's `EBADF` is traced to that fd (poll reports `POLLNVAL`): that
/// channel alone gets `handle_close` and leaves the map, its client sees the
/// connection end, and the other two keep echoing. epoll reports nothing (closing
/// the file took it out of the set): the channel stays, silent, without a callback,
/// until it is closed; its client sees the connection end all the same, and the
/// other two keep echoing. Holds the fd lock exclusively: it closes an fd number the
/// reactor owns.
fn fd_closed_behind_the_back(case: &Case) {
    let (mut r, _listener, addr) = echo_server::<8>(case, 6);
    let mut peers: Vec<Peer> = (0..3).map(|_| peer(&addr)).collect();
    for (i, p) in peers.iter_mut().enumerate() {
        assert_eq!(round_trip(&mut r, p, &[i as u8; 10]), [i as u8; 10]);
    }
    // The server side of peer 1, found by its peer address.
    let victim_addr = peers[1].local_inet().unwrap();
    let (victim, raw) = r
        .map()
        .iter()
        .find(|c| c.socket.peer_addr().ok().and_then(|a| a.as_inet()) == Some(victim_addr))
        .map(|c| (c.token, c.socket.as_raw_fd()))
        .expect("the victim's channel");
    EVENTS.with(|e| e.borrow_mut().clear());
    r.set_observer(Some(record));

    nix::unistd::close(raw).unwrap();
    let victim_events = || -> Vec<Trace> {
        EVENTS.with(|e| {
            e.borrow()
                .iter()
                .filter(|(t, _)| *t == victim)
                .map(|(_, ev)| *ev)
                .collect()
        })
    };
    if case.backend == Backend::Epoll {
        // Nothing to report: the others are served meanwhile, the victim hears
        // nothing and stays in the map.
        for i in [0, 2] {
            let msg = pattern(10 + i as u64, 3000);
            assert_eq!(round_trip(&mut r, &mut peers[i], &msg), msg, "client {i}");
        }
        for _ in 0..5 {
            r.poll_once(Some(std::time::Duration::from_millis(5)))
                .unwrap();
        }
        assert_eq!(victim_events(), [], "epoll reports nothing for it");
        assert!(r.get(victim).is_some(), "silent: still in the map");
        assert_eq!(r.len(), 4);
        // Closing it is clean (EPOLL_CTL_DEL and close(2) find nothing; no callback).
        assert!(r.close(victim));
        assert_eq!(victim_events(), [Trace::Removed]);
    } else {
        run_until(&mut r, "the bad channel closed", |r| {
            r.get(victim).is_none()
        });
        assert_eq!(
            victim_events(),
            [Trace::Call(Callback::Close), Trace::Removed]
        );
    }
    assert_eq!(r.len(), 3, "the listener and two connections");

    for i in [0, 2] {
        let msg = pattern(i as u64, 3000);
        assert_eq!(round_trip(&mut r, &mut peers[i], &msg), msg, "client {i}");
    }
    // The victim's client sees the end of its connection (EOF or reset), not a hang.
    match read_to_close(&mut peers[1]) {
        Ok(rest) => assert!(rest.is_empty()),
        Err(e) => assert_eq!(e.kind(), IoErrorKind::ConnectionReset, "{e}"),
    }
    let others: Vec<Trace> = EVENTS.with(|e| {
        e.borrow()
            .iter()
            .filter(|(t, _)| *t != victim)
            .map(|(_, ev)| *ev)
            .collect()
    });
    assert!(
        !others.iter().any(|e| matches!(
            e,
            Trace::Call(Callback::Close) | Trace::Call(Callback::Error) | Trace::Removed
        )),
        "{others:?}"
    );
}

// ------------------------------------------------------------------ TCP urgent data

/// `send(MSG_OOB)` from the peer.
fn send_urgent(p: &Peer, byte: u8) {
    let Peer::Tcp(s) = p else {
        panic!("urgent data needs TCP")
    };
    let sent = nix::sys::socket::send(s.as_raw_fd(), &[byte], nix::sys::socket::MsgFlags::MSG_OOB)
        .expect("send MSG_OOB");
    assert_eq!(sent, 1);
}

static EXPT: AtomicUsize = AtomicUsize::new(0);

fn count_expt(_: Token, event: Trace) {
    if event == Trace::Call(Callback::Expt) {
        EXPT.fetch_add(1, Ordering::SeqCst);
    }
}

/// One urgent byte used to make priority readiness stick (level-triggered; the kernel
/// clears it only once the byte is read or normal reads move past it): every pass
/// woke again until the client sent more or left, 100 % CPU. The default
/// `handle_expt` now reads it: an idle pass afterwards finds nothing ready, and the
/// data around it is echoed.
fn urgent_byte_does_not_spin(case: &Case) {
    let (mut r, _listener, addr) = echo_server::<8>(case, 4);
    r.set_observer(Some(count_expt));
    EXPT.store(0, Ordering::SeqCst);
    let mut p = peer(&addr);
    run_until(&mut r, "accepted", |r| r.len() == 2);
    assert_eq!(round_trip(&mut r, &mut p, b"before"), b"before");
    // The urgent byte is the last thing sent: nothing after it for a normal read
    // to move past.
    send_urgent(&p, b'!');
    run_until(&mut r, "handle_expt ran", |_| {
        EXPT.load(Ordering::SeqCst) > 0
    });
    for _ in 0..10 {
        let ready = r.poll_once(Some(std::time::Duration::ZERO)).unwrap();
        assert_eq!(
            ready, 0,
            "an idle pass found a channel ready: stale priority readiness"
        );
    }
    assert_eq!(round_trip(&mut r, &mut p, b"after"), b"after");
    assert_eq!(
        EXPT.load(Ordering::SeqCst),
        1,
        "one handle_expt per urgent byte"
    );
    r.set_observer(None);
}
backends!(urgent_byte_does_not_spin, exclusive);

/// A dispatcher that handles urgent data itself gets the byte, in its place among
/// the other callbacks, and the stream around it intact.
fn urgent_byte_reaches_a_handler_that_reads_it(case: &Case) {
    use asyncore::{Ctx, Dispatcher, Error, Recv};

    #[derive(Default)]
    struct Oob {
        data: Vec<u8>,
        urgent: Vec<u8>,
    }
    impl Dispatcher<StdSocket> for Oob {
        type Error = Error;
        fn handle_accepted(
            &mut self,
            ctx: &mut Ctx<'_, StdSocket, Self>,
            s: StdSocket,
        ) -> Result<(), Error> {
            ctx.add(s, Oob::default())
                .map_err(|_| Error::Protocol("map full"))?;
            Ok(())
        }
        fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
            let mut buf = [0u8; 256];
            if let Recv::Data(n) = ctx.recv(&mut buf)? {
                self.data.extend_from_slice(&buf[..n]);
            }
            Ok(())
        }
        fn handle_expt(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
            let mut b = [0u8; 4];
            if let Recv::Data(n) = ctx.recv_priority(&mut b)? {
                self.urgent.extend_from_slice(&b[..n]);
            }
            Ok(())
        }
    }

    let mut r: StdReactor<Oob, 4> = case.reactor();
    let (socket, addr) = case.listener(true, 8);
    r.add(socket, Oob::default()).unwrap();
    let mut p = peer(&addr);
    p.write_all(b"abc").unwrap();
    send_urgent(&p, b'U');
    p.write_all(b"def").unwrap();
    run_until(&mut r, "data and urgent byte received", |r| {
        r.map()
            .iter()
            .any(|c| c.dispatcher.data == b"abcdef" && c.dispatcher.urgent == b"U")
    });
    for _ in 0..5 {
        assert_eq!(r.poll_once(Some(std::time::Duration::ZERO)).unwrap(), 0);
    }
}
backends!(urgent_byte_reaches_a_handler_that_reads_it);

// ------------------------------------------------------------------ large messages through the pool

/// An echo server whose connections have a 1 KiB buffer of their own and borrow
/// 64 KiB ones from the reactor's pool.
type Pooled = StdReactor<Echo<StdSocket, 1024>, 8, asyncore::BufferPool<2, 65536>>;

fn pooled_server(case: &Case) -> (Pooled, Addr) {
    let mut r: Pooled = Pooled::new(asyncore::AnySelector::new(case.backend));
    let (socket, addr) = case.listener(true, 16);
    r.add(socket, Echo::listener(4)).expect("add the listener");
    (r, addr)
}

/// Messages from 1 byte to 1 MiB come back byte-exact, one after the other on one
/// connection, whether they go through a lent buffer or the connection's own.
fn large_messages_come_back_byte_exact(case: &Case) {
    let (mut r, addr) = pooled_server(case);
    let mut p = peer(&addr);
    run_until(&mut r, "accepted", |r| r.len() == 2);
    for (i, len) in [
        1,
        1023,
        1024,
        1025,
        4096,
        65_535,
        65_536,
        65_537,
        300_000,
        1 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let msg = pattern(i as u64 + 77, len);
        assert!(round_trip(&mut r, &mut p, &msg) == msg, "{len} bytes");
    }
    use asyncore::Lend;
    assert!(r.pool().peak() >= 1, "the pool was used");
    assert_eq!(r.pool().lent(), 0, "every lease came back");
}
matrix!(large_messages_come_back_byte_exact: ipv4, unix);

/// A peer that sends and never reads: the server stops reading it once the lent
/// buffer's rest and the connection's own buffer are full, whatever else arrives.
fn a_peer_that_does_not_read_bounds_what_we_read(case: &Case) {
    let (mut r, addr) = pooled_server(case);
    let mut p = peer(&addr);
    run_until(&mut r, "accepted", |r| r.len() == 2);
    let chunk = vec![5u8; 64 * 1024];
    let mut sent = 0usize;
    // Send until the kernel takes nothing more, running the server meanwhile.
    let mut stalled = 0;
    while stalled < 50 {
        match p.write(&chunk) {
            Ok(n) => {
                sent += n;
                stalled = 0;
            }
            Err(e) if e.kind() == IoErrorKind::WouldBlock => stalled += 1,
            Err(e) => panic!("peer write: {e}"),
        }
        r.poll_once(Some(std::time::Duration::from_millis(2)))
            .unwrap();
    }
    let conn = |r: &Pooled| {
        let c = r
            .map()
            .iter()
            .find(|c| c.dispatcher.as_conn().is_some())
            .unwrap();
        let e = c.dispatcher.as_conn().unwrap();
        (e.pending(), e.echoed())
    };
    let (pending, echoed) = conn(&r);
    assert!(pending <= 65_536 + 1024, "{pending} bytes held");
    // More passes read nothing more: the connection has no read interest.
    for _ in 0..20 {
        r.poll_once(Some(std::time::Duration::ZERO)).unwrap();
    }
    assert_eq!(conn(&r), (pending, echoed), "nothing more was read");
    assert!(
        sent > pending + echoed as usize,
        "the rest waits in the kernel"
    );
}
backends!(a_peer_that_does_not_read_bounds_what_we_read);
