//! More than 1,024 fds in one map: the core's echo server on `poll(2)` serving 2,000
//! concurrent TCP connections byte-exact, and the same 2,000 connections on
//! `select(2)` refused at registration for every fd ≥ `FD_SETSIZE`, with a typed error
//! and no panic.
//!
//! The clients are non-blocking `StdSocket`s driven from the test thread between
//! reactor passes; no threads. Each test raises `RLIMIT_NOFILE` (or skips with a note
//! when the hard limit is too low) and they run one at a time: each needs about 4,000
//! fds. Every loop is bounded by an iteration count; a generous wall-clock bound only
//! turns a hang into a failure message.

#[path = "support/fd_limit.rs"]
mod fd_limit;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use asyncore::asyncore_std::Family;
use asyncore::{
    AddErrorKind, AnySelector, Backend, Echo, EchoConn, FD_SETSIZE, Recv, Sent, Socket,
    SourceError, StdReactor, StdSocket, Token,
};
use fd_limit::raise_fd_limit;
use nix::sys::resource::rlim_t;

const CLIENTS: usize = 2000;
/// Map capacity: the listener and 2,000 connections fit, with room to spare.
const CAP: usize = 2048;
/// Echo buffer per connection; most messages are longer, so back-pressure is used.
const BUF: usize = 512;
/// Two fds per connection (client and server side), plus slack.
const FDS_NEEDED: rlim_t = 4200;
/// Safety bound for a whole phase: turns a hang into a failure, measures nothing.
const PHASE_LIMIT: Duration = Duration::from_secs(120);
const PASS: Duration = Duration::from_millis(5);

type Server = StdReactor<Echo<StdSocket, BUF>, CAP>;

// A 2,048-slot reactor is over a megabyte: it lives in static memory, as in
// examples/echo_server.rs, not on a test thread's stack.
static POLL: Mutex<Server> = Mutex::new(Server::new(AnySelector::new(Backend::Poll)));
static SELECT: Mutex<Server> = Mutex::new(Server::new(AnySelector::new(Backend::Select)));
/// One test at a time: each holds about 4,000 fds.
static SERIAL: Mutex<()> = Mutex::new(());

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Client `i`'s message: distinct, 16 to about 1,000 bytes.
fn message(i: usize) -> Vec<u8> {
    let head = format!("client {i:04} says:");
    let len = 16 + (i * 37) % 1000;
    let mut m = head.into_bytes();
    m.extend((0..len).map(|k| b'a' + ((i + k) % 26) as u8));
    m.push(b'\n');
    m
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Still exchanging.
    Open,
    /// Everything came back.
    Echoed,
    /// The server closed the connection (EOF or reset).
    Closed,
}

struct Client {
    socket: StdSocket,
    msg: Vec<u8>,
    sent: usize,
    got: Vec<u8>,
    outcome: Outcome,
}

impl Client {
    /// One round of non-blocking I/O; returns whether anything moved.
    fn step(&mut self) -> bool {
        if self.outcome != Outcome::Open {
            return false;
        }
        let mut moved = false;
        if self.sent < self.msg.len() {
            match self.socket.send(&self.msg[self.sent..]) {
                Ok(Sent::Bytes(n)) => {
                    self.sent += n;
                    moved |= n > 0;
                }
                Ok(Sent::WouldBlock) => {}
                Err(e) if e.is_disconnect() => {
                    self.outcome = Outcome::Closed;
                    return true;
                }
                Err(e) => panic!("client send: {e}"),
            }
        }
        let mut buf = [0u8; 2048];
        match self.socket.recv(&mut buf) {
            Ok(Recv::Data(n)) => {
                self.got.extend_from_slice(&buf[..n]);
                moved = true;
            }
            Ok(Recv::WouldBlock) => {}
            Ok(Recv::Eof) => {
                self.outcome = Outcome::Closed;
                return true;
            }
            Err(e) if e.is_disconnect() => {
                self.outcome = Outcome::Closed;
                return true;
            }
            Err(e) => panic!("client recv: {e}"),
        }
        assert!(
            self.msg.starts_with(&self.got),
            "echo is not byte-exact so far"
        );
        if self.got.len() == self.msg.len() {
            self.outcome = Outcome::Echoed;
        }
        moved
    }

    /// After our `shutdown_write`: whether the server has closed its side (EOF).
    fn sees_eof(&mut self) -> bool {
        let mut buf = [0u8; 64];
        match self.socket.recv(&mut buf) {
            Ok(Recv::Eof) => true,
            Ok(Recv::WouldBlock) => false,
            Ok(Recv::Data(n)) => panic!("{n} unexpected bytes after the echo"),
            Err(e) => panic!("client recv after shutdown: {e}"),
        }
    }
}

fn listener_stats(reactor: &Server, lt: Token) -> (u64, u64) {
    let l = reactor
        .get(lt)
        .and_then(|c| c.dispatcher.as_listener())
        .expect("the listener is in the map");
    (l.accepted(), l.refused())
}

/// Starts a server on `reactor` and connects `CLIENTS` clients in batches, running
/// passes until the listener has handled every one of them (accepted or refused).
fn connect_all(reactor: &mut Server) -> (Token, Vec<Client>) {
    assert!(reactor.close_all().is_ok());
    let listener =
        StdSocket::tcp_listener(SocketAddr::from(([127, 0, 0, 1], 0)), 4096).expect("listener");
    let addr = listener
        .local_addr()
        .expect("local_addr")
        .as_inet()
        .expect("IP");
    let lt = reactor
        .add(listener, Echo::listener(CAP - 1))
        .map_err(|e| e.kind)
        .expect("add the listener");

    let start = Instant::now();
    let mut clients = Vec::with_capacity(CLIENTS);
    for batch in (0..CLIENTS).collect::<Vec<_>>().chunks(64) {
        for &i in batch {
            let socket = StdSocket::tcp_connect(addr).expect("client connect");
            clients.push(Client {
                socket,
                msg: message(i),
                sent: 0,
                got: Vec::new(),
                outcome: Outcome::Open,
            });
        }
        let mut passes = 0;
        loop {
            let (accepted, refused) = listener_stats(reactor, lt);
            if (accepted + refused) as usize == clients.len() {
                break;
            }
            passes += 1;
            assert!(
                passes < 2000 && start.elapsed() < PHASE_LIMIT,
                "the listener handled only {} of {} connections",
                accepted + refused,
                clients.len()
            );
            reactor.poll_once(Some(PASS)).expect("pass");
        }
    }
    (lt, clients)
}

/// Runs passes and client I/O until no client is `Open`.
fn exchange(reactor: &mut Server, clients: &mut [Client]) {
    let start = Instant::now();
    for round in 0.. {
        let open = clients
            .iter()
            .filter(|c| c.outcome == Outcome::Open)
            .count();
        if open == 0 {
            return;
        }
        assert!(
            round < 20_000 && start.elapsed() < PHASE_LIMIT,
            "{open} clients still waiting for their echo after {round} rounds"
        );
        reactor.poll_once(Some(PASS)).expect("pass");
        for c in clients.iter_mut() {
            c.step();
        }
    }
}

/// Every client shuts down its sending side; the echo connections see EOF, close,
/// and the clients read EOF. Returns once the map holds only the listener.
fn shut_down(reactor: &mut Server, clients: &mut [Client]) {
    for c in clients.iter_mut() {
        c.socket.shutdown_write().expect("shutdown");
    }
    let mut eof = vec![false; clients.len()];
    let start = Instant::now();
    for round in 0.. {
        for (c, seen) in clients.iter_mut().zip(eof.iter_mut()) {
            *seen = *seen || c.sees_eof();
        }
        let waiting = eof.iter().filter(|e| !**e).count();
        if waiting == 0 && reactor.len() == 1 {
            return;
        }
        assert!(
            round < 20_000 && start.elapsed() < PHASE_LIMIT,
            "{waiting} clients without EOF, {} channels left",
            reactor.len()
        );
        reactor.poll_once(Some(PASS)).expect("pass");
    }
}

#[test]
fn poll_echo_serves_2000_concurrent_connections_byte_exact() {
    let _serial = lock(&SERIAL);
    if !raise_fd_limit(FDS_NEEDED) {
        return;
    }
    let mut reactor = lock(&POLL);
    let (lt, mut clients) = connect_all(&mut reactor);

    // All 2,000 are in one map at once, many of them above FD_SETSIZE.
    assert_eq!(listener_stats(&reactor, lt), (CLIENTS as u64, 0));
    assert_eq!(reactor.len(), CLIENTS + 1);
    let fds: Vec<i32> = reactor.map().iter().map(|c| c.socket.as_raw_fd()).collect();
    let high = fds.iter().filter(|&&fd| fd as usize >= FD_SETSIZE).count();
    assert!(
        high > CLIENTS / 4,
        "only {high} of the map's fds are ≥ FD_SETSIZE ({FD_SETSIZE})"
    );

    exchange(&mut reactor, &mut clients);
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(c.outcome, Outcome::Echoed, "client {i}");
        assert!(c.got == c.msg, "client {i}: echo differs");
    }
    let echoed: u64 = reactor
        .map()
        .iter()
        .filter_map(|c| c.dispatcher.as_conn().map(EchoConn::echoed))
        .sum();
    let total: usize = clients.iter().map(|c| c.msg.len()).sum();
    assert_eq!(echoed, total as u64);
    assert_eq!(reactor.len(), CLIENTS + 1, "nobody was closed");
    println!(
        "poll: {CLIENTS} connections in one map, {high} fds ≥ {FD_SETSIZE} (highest {}), {total} bytes echoed",
        fds.iter().max().copied().unwrap_or(-1)
    );

    shut_down(&mut reactor, &mut clients);
    assert!(reactor.close_all().is_ok());
}

#[test]
fn select_refuses_fds_at_or_above_fd_setsize_at_registration() {
    let _serial = lock(&SERIAL);
    if !raise_fd_limit(FDS_NEEDED) {
        return;
    }
    let mut reactor = lock(&SELECT);
    let (lt, mut clients) = connect_all(&mut reactor);

    // Every fd below FD_SETSIZE is in use now, so a new socket's is not.
    let mut high = StdSocket::new(Family::Inet).expect("socket");
    let fd = high.as_raw_fd();
    assert!(fd as usize >= FD_SETSIZE, "fd {fd} is below FD_SETSIZE");
    let refused = reactor
        .add(high, Echo::Conn(EchoConn::new()))
        .expect_err("select cannot watch this fd");
    assert_eq!(
        refused.kind,
        AddErrorKind::Rejected(SourceError::OutOfRange { limit: FD_SETSIZE })
    );
    high = refused.into_inner().0;
    assert_eq!(high.as_raw_fd(), fd, "the socket comes back, still open");
    assert!(!high.is_closed());
    drop(high);

    // Through the echo listener: each accepted fd ≥ FD_SETSIZE was refused at
    // `ctx.add` and closed at once; the others are served.
    let (accepted, turned_away) = listener_stats(&reactor, lt);
    assert_eq!((accepted + turned_away) as usize, CLIENTS);
    assert!(turned_away > 0, "some connections got an fd ≥ FD_SETSIZE");
    assert!(accepted > 0);
    assert_eq!(reactor.len() as u64, accepted + 1);
    for c in reactor.map().iter() {
        assert!(
            (c.socket.as_raw_fd() as usize) < FD_SETSIZE,
            "fd {} in a select map",
            c.socket.as_raw_fd()
        );
    }

    exchange(&mut reactor, &mut clients);
    let served = clients
        .iter()
        .filter(|c| c.outcome == Outcome::Echoed)
        .count();
    let closed = clients
        .iter()
        .filter(|c| c.outcome == Outcome::Closed)
        .count();
    assert_eq!(served as u64, accepted);
    assert_eq!(closed as u64, turned_away);
    for c in clients.iter().filter(|c| c.outcome == Outcome::Echoed) {
        assert!(c.got == c.msg, "echo differs");
    }
    for c in clients.iter().filter(|c| c.outcome == Outcome::Closed) {
        assert!(c.got.is_empty(), "a refused connection echoed something");
    }

    println!(
        "select: {accepted} connections served, {turned_away} refused at registration (fd ≥ {FD_SETSIZE})"
    );
    let mut served: Vec<Client> = clients
        .into_iter()
        .filter(|c| c.outcome == Outcome::Echoed)
        .collect();
    shut_down(&mut reactor, &mut served);
    assert!(reactor.close_all().is_ok());
}
