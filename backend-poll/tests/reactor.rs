//! End to end: `asyncore_core::Reactor` over `PollSelector`, with a test-only
//! `Socket` over real fds (nix) and a small echo dispatcher.

mod common;

use asyncore_core::With;
use std::{
    cell::RefCell,
    os::fd::{AsRawFd, OwnedFd, RawFd},
    rc::Rc,
    time::{Duration, Instant},
};

use asyncore_core::{
    Ctx, Dispatcher, Error, Reactor, Recv, RunEnd, Sent, Socket, SocketError, State, Token,
};
use asyncore_poll::PollSelector;
use common::*;
use nix::{
    errno::Errno,
    sys::socket::{
        MsgFlags, Shutdown, SockFlag, SockaddrIn, accept4, bind, getsockname, getsockopt, recv,
        send, shutdown, sockopt,
    },
};

/// A non-blocking fd socket: just enough of `asyncore-std` for these tests.
#[derive(Debug)]
struct FdSocket {
    fd: Option<OwnedFd>,
    raw: RawFd,
    state: State,
}

fn os(e: Errno) -> SocketError {
    SocketError::from_errno(e as i32)
}

impl FdSocket {
    fn new(fd: OwnedFd, state: State) -> Self {
        FdSocket {
            raw: fd.as_raw_fd(),
            fd: Some(fd),
            state,
        }
    }

    fn open(&self) -> Result<&OwnedFd, SocketError> {
        self.fd.as_ref().ok_or(os(Errno::EBADF))
    }
}

impl Socket for FdSocket {
    type Source = RawFd;

    fn source(&self) -> RawFd {
        self.raw
    }

    fn initial_state(&mut self) -> State {
        self.state
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        let fd = self.open()?.as_raw_fd();
        if buf.is_empty() {
            return Ok(Recv::Data(0));
        }
        match recv(fd, buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => Ok(Recv::Eof),
            Ok(n) => Ok(Recv::Data(n)),
            Err(Errno::EAGAIN) => Ok(Recv::WouldBlock),
            Err(e) => Err(os(e)),
        }
    }

    fn send(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        let fd = self.open()?.as_raw_fd();
        match send(fd, buf, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => Ok(Sent::Bytes(n)),
            Err(Errno::EAGAIN) => Ok(Sent::WouldBlock),
            Err(e) => Err(os(e)),
        }
    }

    fn accept(&mut self) -> Result<Option<Self>, SocketError> {
        match accept4(
            self.open()?,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        ) {
            Ok(fd) => Ok(Some(FdSocket::new(fd, State::Connected))),
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(os(e)),
        }
    }

    fn take_error(&mut self) -> Result<Option<SocketError>, SocketError> {
        match getsockopt(self.open()?, sockopt::SocketError) {
            Ok(0) => Ok(None),
            Ok(code) => Ok(Some(SocketError::from_errno(code))),
            Err(e) => Err(os(e)),
        }
    }

    fn recv_priority(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        let fd = self.open()?.as_raw_fd();
        match recv(fd, buf, MsgFlags::MSG_OOB | MsgFlags::MSG_DONTWAIT) {
            Ok(n) => Ok(Recv::Data(n)),
            Err(Errno::EAGAIN | Errno::EINVAL) => Ok(Recv::WouldBlock),
            Err(e) => Err(os(e)),
        }
    }

    fn shutdown_write(&mut self) -> Result<(), SocketError> {
        shutdown(self.open()?.as_raw_fd(), Shutdown::Write).map_err(os)
    }

    fn close(&mut self) -> Result<(), SocketError> {
        self.fd = None;
        Ok(())
    }
}

type Log = Rc<RefCell<Vec<String>>>;

/// Listener (adds an echo channel per connection), echo connection, or client.
#[derive(Debug)]
struct Echo {
    name: &'static str,
    buf: Vec<u8>,
    log: Log,
}

impl Echo {
    fn new(name: &'static str, log: &Log) -> Self {
        Echo {
            name,
            buf: Vec::new(),
            log: log.clone(),
        }
    }

    fn note(&self, what: impl std::fmt::Display) {
        self.log.borrow_mut().push(format!("{} {what}", self.name));
    }
}

impl Dispatcher<FdSocket> for Echo {
    type Error = Error;

    fn readable(&self) -> bool {
        self.buf.len() < 64 * 1024
    }

    fn writable(&self) -> bool {
        !self.buf.is_empty()
    }

    fn handle_connect(&mut self, _ctx: &mut Ctx<'_, FdSocket, Self>) -> Result<(), Error> {
        self.note("connect");
        Ok(())
    }

    fn handle_connect_failed(&mut self, _ctx: &mut Ctx<'_, FdSocket, Self>, error: SocketError) {
        self.note(format_args!("connect_failed {:?}", error.kind()));
    }

    fn handle_accepted(
        &mut self,
        ctx: &mut Ctx<'_, FdSocket, Self>,
        socket: FdSocket,
    ) -> Result<(), Error> {
        self.note("accepted");
        if ctx.add(socket, Echo::new("conn", &self.log)).is_err() {
            self.note("add failed");
        }
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, FdSocket, Self>) -> Result<(), Error> {
        let mut chunk = [0u8; 1024];
        if let Recv::Data(n) = ctx.recv(&mut chunk)? {
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, FdSocket, Self>) -> Result<(), Error> {
        let n = ctx.send(&self.buf)?;
        self.buf.drain(..n);
        Ok(())
    }

    fn handle_expt(&mut self, ctx: &mut Ctx<'_, FdSocket, Self>) -> Result<(), Error> {
        let mut byte = [0u8; 1];
        if let Recv::Data(1) = ctx.socket().recv_priority(&mut byte)? {
            self.note(format_args!("expt {}", byte[0] as char));
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, FdSocket, Self>) -> Result<(), Error> {
        self.note("close");
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, FdSocket, Self>, error: Error) {
        self.note(format_args!("error {error}"));
        ctx.close();
    }
}

type EchoReactor = Reactor<With<PollSelector<16>, FdSocket>, Echo, 16>;

const PASS: Option<Duration> = Some(Duration::from_millis(20));

fn reactor() -> EchoReactor {
    Reactor::new(PollSelector::new())
}

/// Runs passes until `done()` holds.
fn run_until(reactor: &mut EchoReactor, mut done: impl FnMut(&mut EchoReactor) -> bool) {
    let start = Instant::now();
    while !done(reactor) {
        reactor.poll_once(PASS).expect("poll_once");
        assert!(start.elapsed() < PATIENCE, "condition never reached");
    }
}

/// Sends `data` from `peer`, runs the reactor until it comes back, returns it.
fn echo_through(reactor: &mut EchoReactor, peer: RawFd, data: &[u8]) -> Vec<u8> {
    send_all(peer, data);
    let mut back = Vec::new();
    run_until(reactor, |_| {
        back.extend(recv_now(peer));
        back.len() >= data.len()
    });
    back
}

fn log_of(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

#[test]
fn socketpair_echo_then_peer_close() {
    let log = Log::default();
    let (a, b) = pair();
    let mut r = reactor();
    r.add(FdSocket::new(a, State::Connected), Echo::new("echo", &log))
        .expect("add");
    assert_eq!(r.selector().registered(), 1);

    assert_eq!(echo_through(&mut r, b.as_raw_fd(), b"hello"), b"hello");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(echo_through(&mut r, b.as_raw_fd(), &big), big);

    drop(b);
    assert_eq!(r.run(PASS, Some(500)), Ok(RunEnd::Empty));
    assert_eq!(log_of(&log), ["echo close"]);
    assert_eq!(r.selector().registered(), 0);
}

#[test]
fn steady_interest_does_not_rewrite_the_pollfd_array() {
    let log = Log::default();
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..3).map(|_| pair()).collect();
    let mut r = reactor();
    let mut peers = Vec::new();
    for (a, b) in pairs {
        r.add(FdSocket::new(a, State::Connected), Echo::new("echo", &log))
            .expect("add");
        peers.push(b);
    }
    r.poll_once(Some(Duration::ZERO)).expect("poll_once");
    let writes = r.selector().writes();
    assert_eq!(writes, 3);
    for _ in 0..5 {
        r.poll_once(Some(Duration::ZERO)).expect("poll_once");
    }
    assert_eq!(r.selector().writes(), writes);
    // An echo makes one channel writable for a while, then read-only again: that
    // entry alone is rewritten (twice), the others never.
    assert_eq!(echo_through(&mut r, peers[1].as_raw_fd(), b"x"), b"x");
    r.poll_once(Some(Duration::ZERO)).expect("poll_once");
    assert_eq!(r.selector().writes(), writes + 2);
    assert!(log_of(&log).is_empty());
}

#[test]
fn tcp_listener_accepts_and_echoes() {
    let log = Log::default();
    let (listener, addr) = tcp_listener();
    let mut r = reactor();
    let lt = r
        .add(
            FdSocket::new(listener, State::Listening),
            Echo::new("listener", &log),
        )
        .expect("add");

    let client = tcp_connect_start(&addr);
    run_until(&mut r, |r| r.len() == 2);
    assert_eq!(log_of(&log), ["listener accepted"]);

    let mut sel = PollSelector::<1>::new();
    wait_for(
        &mut sel,
        client.as_raw_fd(),
        asyncore_core::Interest::WRITABLE,
        asyncore_core::Readiness::WRITABLE,
    );
    assert_eq!(echo_through(&mut r, client.as_raw_fd(), b"ping"), b"ping");

    drop(client);
    run_until(&mut r, |r| r.len() == 1);
    assert_eq!(log_of(&log), ["listener accepted", "conn close"]);
    assert!(r.get(lt).is_some(), "the listener stays");
    assert_eq!(r.selector().registered(), 1);
}

#[test]
fn priority_data_reaches_handle_expt() {
    let log = Log::default();
    let (client, server) = tcp_pair();
    let mut r = reactor();
    r.add(
        FdSocket::new(server, State::Connected),
        Echo::new("echo", &log),
    )
    .expect("add");
    send_oob(client.as_raw_fd(), b'!');
    run_until(&mut r, |_| !log.borrow().is_empty());
    assert_eq!(log_of(&log), ["echo expt !"]);
}

#[test]
fn refused_connect_reaches_handle_connect_failed() {
    let log = Log::default();
    let closed_port = tcp_socket();
    bind(closed_port.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind");
    let addr = getsockname::<SockaddrIn>(closed_port.as_raw_fd()).expect("getsockname");

    let mut r = reactor();
    r.add(
        FdSocket::new(tcp_connect_start(&addr), State::Connecting),
        Echo::new("client", &log),
    )
    .expect("add");
    assert_eq!(r.run(PASS, Some(500)), Ok(RunEnd::Empty));
    assert_eq!(log_of(&log), ["client connect_failed ConnectionRefused"]);
}

#[test]
fn successful_connect_reaches_handle_connect() {
    let log = Log::default();
    let (listener, addr) = tcp_listener();
    let mut r = reactor();
    let client = r
        .add(
            FdSocket::new(tcp_connect_start(&addr), State::Connecting),
            Echo::new("client", &log),
        )
        .expect("add");
    run_until(&mut r, |_| !log.borrow().is_empty());
    assert_eq!(log_of(&log), ["client connect"]);
    assert_eq!(r.get(client).map(|c| c.state), Some(State::Connected));
    drop(listener);
}

#[test]
fn fd_closed_behind_the_reactors_back_closes_only_that_channel() {
    let log = Log::default();
    let (a1, _b1) = pair();
    let (a2, b2) = pair();
    let mut r = reactor();
    let t1: Token = r
        .add(
            FdSocket::new(high_fd(a1), State::Connected),
            Echo::new("one", &log),
        )
        .expect("add");
    let t2 = r
        .add(FdSocket::new(a2, State::Connected), Echo::new("two", &log))
        .expect("add");
    r.poll_once(Some(Duration::ZERO)).expect("poll_once");

    // Close channel one's fd without telling the reactor.
    let stolen = r.get_mut(t1).and_then(|c| c.socket.fd.take());
    drop(stolen.expect("fd"));

    r.poll_once(PASS).expect("poll_once");
    assert_eq!(log_of(&log), ["one close"]);
    assert!(r.get(t1).is_none());
    assert!(r.get(t2).is_some());
    assert_eq!(
        echo_through(&mut r, b2.as_raw_fd(), b"still here"),
        b"still here"
    );
    assert_eq!(log_of(&log), ["one close"]);
}
