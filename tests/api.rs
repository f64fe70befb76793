//! The original's `BaseTestAPI` and friends on real sockets (the rows
//! whose "needs" column says *real*), on `select(2)` and `poll(2)`, for IPv4, IPv6
//! and Unix-domain sockets as the original runs them.
//!
//! Test names are `<row>::<backend>::<family>`. As in the original harness, every
//! test dispatcher fails the test on any callback it does not expect (`Probe`
//! panics: the original's `BaseTestHandler` raised), and `loop_waiting_for_flag`
//! runs bounded passes until the scenario's flag is set.

#[macro_use]
mod common;

use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use asyncore::asyncore_std::Kind;
use asyncore::{
    Addr, Ctx, Dispatcher, Error, ErrorKind, LogLevel, Recv, RunEnd, SendBuffer, Sent, Socket,
    SocketError, State, StdReactor, StdSocket, Token, errno,
};
use common::{Case, Fam, Peer, loop_waiting_for_flag, pattern, run_until};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockType, SockaddrLike, SockaddrStorage, getsockname, getsockopt,
    setsockopt, sockopt,
};

// ------------------------------------------------------------------ the harness

use asyncore::Callback as Cb;

/// Every callback of every test dispatcher, in order, by dispatcher name.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<(&'static str, Cb)>>>);

impl Log {
    fn push(&self, name: &'static str, cb: Cb) {
        self.0.borrow_mut().push((name, cb));
    }

    /// The callbacks `name` saw.
    fn of(&self, name: &str) -> Vec<Cb> {
        self.0
            .borrow()
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, cb)| *cb)
            .collect()
    }
}

/// The original's `self.flag`.
#[derive(Clone, Default)]
struct Flag(Rc<Cell<bool>>);

impl Flag {
    fn set(&self) {
        self.0.set(true);
    }
    fn get(&self) -> bool {
        self.0.get()
    }
}

/// Every kind of channel of these tests, so they share one map.
enum T {
    Probe(Probe),
    AcceptOnly(AcceptOnly),
}

asyncore::dispatcher_enum! {
    impl Dispatcher<StdSocket> for T {
        type Error = Error;
        Probe(Probe),
        AcceptOnly(AcceptOnly),
    }
}

type R = StdReactor<T, 32>;
type Hook = Box<dyn FnMut(&mut Ctx<'_, StdSocket, T>) -> Result<(), Error>>;
type AcceptedHook = Box<dyn FnMut(&mut Ctx<'_, StdSocket, T>, StdSocket) -> Result<(), Error>>;
type ErrorHook = Box<dyn FnMut(&mut Ctx<'_, StdSocket, T>, Error)>;

/// The original's `BaseTestHandler`: records every callback; `handle_read` and
/// `handle_write` do nothing unless hooked; `handle_connect`, `handle_accepted`,
/// `handle_expt`, `handle_close` and `handle_error` fail the test unless hooked (the
/// original raised, and its `handle_error` re-raised). The default `handle_accept` is
/// the library's own (accept, then `handle_accepted`).
struct Probe {
    name: &'static str,
    log: Log,
    readable: bool,
    writable: bool,
    connect: Option<Hook>,
    accepted: Option<AcceptedHook>,
    read: Option<Hook>,
    write: Option<Hook>,
    expt: Option<Hook>,
    close: Option<Hook>,
    error: Option<ErrorHook>,
}

impl Probe {
    fn new(name: &'static str, log: &Log) -> Probe {
        Probe {
            name,
            log: log.clone(),
            readable: true,
            writable: false,
            connect: None,
            accepted: None,
            read: None,
            write: None,
            expt: None,
            close: None,
            error: None,
        }
    }

    /// The original's `BaseClient`: `handle_connect` is a no-op.
    fn client(log: &Log) -> Probe {
        Probe::new("client", log).on(Cb::Connect, |_| Ok(()))
    }

    fn readable(mut self, yes: bool) -> Self {
        self.readable = yes;
        self
    }
    fn writable(mut self, yes: bool) -> Self {
        self.writable = yes;
        self
    }
    /// Hooks `handle_connect`, `handle_read`, `handle_write`, `handle_expt` or
    /// `handle_close` (`cb`).
    fn on(
        mut self,
        cb: Cb,
        f: impl FnMut(&mut Ctx<'_, StdSocket, T>) -> Result<(), Error> + 'static,
    ) -> Self {
        let slot = match cb {
            Cb::Connect => &mut self.connect,
            Cb::Read => &mut self.read,
            Cb::Write => &mut self.write,
            Cb::Expt => &mut self.expt,
            Cb::Close => &mut self.close,
            _ => panic!("{}: no hook for {cb:?}", self.name),
        };
        *slot = Some(Box::new(f));
        self
    }
    fn on_accepted(
        mut self,
        f: impl FnMut(&mut Ctx<'_, StdSocket, T>, StdSocket) -> Result<(), Error> + 'static,
    ) -> Self {
        self.accepted = Some(Box::new(f));
        self
    }
    fn on_error(mut self, f: impl FnMut(&mut Ctx<'_, StdSocket, T>, Error) + 'static) -> Self {
        self.error = Some(Box::new(f));
        self
    }

    fn unexpected(&self, what: &str) -> ! {
        panic!("{}: {what} not supposed to be called", self.name)
    }
}

/// Runs `hook` if there is one; otherwise `None`.
fn run(hook: &mut Option<Hook>, ctx: &mut Ctx<'_, StdSocket, T>) -> Option<Result<(), Error>> {
    hook.as_mut().map(|f| f(ctx))
}

impl Dispatcher<StdSocket, T> for Probe {
    type Error = Error;

    fn readable(&self) -> bool {
        self.readable
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn handle_connect(&mut self, ctx: &mut Ctx<'_, StdSocket, T>) -> Result<(), Error> {
        self.log.push(self.name, Cb::Connect);
        run(&mut self.connect, ctx).unwrap_or_else(|| self.unexpected("handle_connect"))
    }

    fn handle_connect_failed(&mut self, _ctx: &mut Ctx<'_, StdSocket, T>, error: SocketError) {
        let _ = error;
        self.log.push(self.name, Cb::ConnectFailed);
        self.unexpected("handle_connect_failed")
    }

    fn handle_accepted(
        &mut self,
        ctx: &mut Ctx<'_, StdSocket, T>,
        socket: StdSocket,
    ) -> Result<(), Error> {
        self.log.push(self.name, Cb::Accepted);
        match self.accepted.as_mut() {
            Some(f) => f(ctx, socket),
            None => self.unexpected("handle_accepted"),
        }
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, T>) -> Result<(), Error> {
        self.log.push(self.name, Cb::Read);
        run(&mut self.read, ctx).unwrap_or(Ok(()))
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, StdSocket, T>) -> Result<(), Error> {
        self.log.push(self.name, Cb::Write);
        run(&mut self.write, ctx).unwrap_or(Ok(()))
    }

    fn handle_expt(&mut self, ctx: &mut Ctx<'_, StdSocket, T>) -> Result<(), Error> {
        self.log.push(self.name, Cb::Expt);
        run(&mut self.expt, ctx).unwrap_or_else(|| self.unexpected("handle_expt"))
    }

    fn handle_eof(
        &mut self,
        _ctx: &mut Ctx<'_, StdSocket, T>,
    ) -> Result<asyncore::AfterEof, Error> {
        // Our design's half-close hook; the default (close) is the original's.
        self.log.push(self.name, Cb::Eof);
        Ok(asyncore::AfterEof::Close)
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, StdSocket, T>) -> Result<(), Error> {
        self.log.push(self.name, Cb::Close);
        run(&mut self.close, ctx).unwrap_or_else(|| self.unexpected("handle_close"))
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, StdSocket, T>, error: Error) {
        self.log.push(self.name, Cb::Error);
        match self.error.as_mut() {
            Some(f) => f(ctx, error),
            None => panic!("{}: handle_error: {error}", self.name),
        }
    }

    fn log_info(&mut self, _token: Token, _level: LogLevel, _message: &'static str) {}
}

/// A listener that overrides `handle_accept` (row 19): sets the flag, accepts
/// nothing. Everything else fails the test.
struct AcceptOnly {
    log: Log,
    flag: Flag,
}

impl Dispatcher<StdSocket, T> for AcceptOnly {
    type Error = Error;

    fn handle_accept(&mut self, _ctx: &mut Ctx<'_, StdSocket, T>) -> Result<(), Error> {
        self.log.push("listener", Cb::Accept);
        self.flag.set();
        Ok(())
    }
    fn handle_accepted(
        &mut self,
        _: &mut Ctx<'_, StdSocket, T>,
        _: StdSocket,
    ) -> Result<(), Error> {
        panic!("listener: handle_accepted not supposed to be called")
    }
    fn handle_connect(&mut self, _: &mut Ctx<'_, StdSocket, T>) -> Result<(), Error> {
        panic!("listener: handle_connect not supposed to be called")
    }
    fn handle_expt(&mut self, _: &mut Ctx<'_, StdSocket, T>) -> Result<(), Error> {
        panic!("listener: handle_expt not supposed to be called")
    }
    fn handle_close(&mut self, _: &mut Ctx<'_, StdSocket, T>) -> Result<(), Error> {
        panic!("listener: handle_close not supposed to be called")
    }
    fn handle_error(&mut self, _: &mut Ctx<'_, StdSocket, T>, error: Error) {
        panic!("listener: handle_error: {error}")
    }
    fn log_info(&mut self, _token: Token, _level: LogLevel, _message: &'static str) {}
}

/// The original's `BaseServer`: a listener (`set_reuse_addr`, bind, `listen(5)`)
/// whose `handle_accepted` wraps each connection in what `handler` makes of it
/// (`None`: close it at once). Returns the listener's token and address.
fn base_server(
    case: &Case,
    r: &mut R,
    log: &Log,
    handler: impl FnMut(&mut StdSocket) -> Option<Probe> + 'static,
) -> (Token, Addr) {
    server_on(case.listener(true, 5), r, log, handler)
}

/// A [`base_server`] whose connections are probes named `handler` that expect
/// nothing but reads and writes.
fn idle_server(case: &Case, r: &mut R, log: &Log) -> (Token, Addr) {
    let l = log.clone();
    base_server(case, r, log, move |_| Some(Probe::new("handler", &l)))
}

/// [`base_server`] on a listener of one's own.
fn server_on(
    (socket, addr): (StdSocket, Addr),
    r: &mut R,
    log: &Log,
    mut handler: impl FnMut(&mut StdSocket) -> Option<Probe> + 'static,
) -> (Token, Addr) {
    let server = Probe::new("server", log).on_accepted(move |ctx, mut socket| {
        if let Some(h) = handler(&mut socket) {
            ctx.add(socket, T::Probe(h))
                .expect("room for the accepted connection");
        }
        Ok(())
    });
    let token = r.add(socket, T::Probe(server)).expect("add the server");
    (token, addr)
}

/// Adds a client connecting to `addr`.
fn base_client(case: &Case, r: &mut R, addr: &Addr, client: Probe) -> Token {
    r.add(case.connect(addr), T::Probe(client))
        .expect("add the client")
}

fn state(r: &R, t: Token) -> Option<State> {
    r.get(t).map(|c| c.state)
}

// ------------------------------------------------------------------ rows 18-31

matrix!(handle_connect: ipv4, ipv6, unix);
/// Row 18: `handle_connect` fires (once) after connecting to a listening server,
/// from the loop (also for AF_UNIX, where the kernel connects at once), and the
/// channel is then `Connected`.
fn handle_connect(case: &Case) {
    let log = Log::default();
    let mut r: R = case.reactor();
    let (_, addr) = idle_server(case, &mut r, &log);
    let flag = Flag::default();
    let f = flag.clone();
    let client = Probe::new("client", &log).on(Cb::Connect, move |ctx| {
        assert_eq!(ctx.state(), State::Connected, "already Connected inside");
        f.set();
        Ok(())
    });
    let client = base_client(case, &mut r, &addr, client);
    assert_eq!(state(&r, client), Some(State::Connecting));
    loop_waiting_for_flag(&mut r, || flag.get());
    assert_eq!(log.of("client"), [Cb::Connect]);
    assert_eq!(state(&r, client), Some(State::Connected));
}

matrix!(handle_accept: ipv4, ipv6, unix);
/// Row 19: an overridden `handle_accept` fires on a listener when a client connects.
fn handle_accept(case: &Case) {
    let log = Log::default();
    let mut r: R = case.reactor();
    let (socket, addr) = case.listener(false, 5);
    let flag = Flag::default();
    let listener = r
        .add(
            socket,
            T::AcceptOnly(AcceptOnly {
                log: log.clone(),
                flag: flag.clone(),
            }),
        )
        .unwrap();
    base_client(case, &mut r, &addr, Probe::client(&log));
    loop_waiting_for_flag(&mut r, || flag.get());
    assert_eq!(log.of("listener"), [Cb::Accept]);
    assert_eq!(state(&r, listener), Some(State::Listening));
}

matrix!(handle_accepted: ipv4, ipv6, unix);
/// Row 20: the default `handle_accept` accepts and calls `handle_accepted` with the
/// new connection (of the listener's family).
fn handle_accepted(case: &Case) {
    let log = Log::default();
    let mut r: R = case.reactor();
    let (socket, addr) = case.listener(false, 5);
    let flag = Flag::default();
    let kind = Rc::new(Cell::new(None));
    let (f, k) = (flag.clone(), kind.clone());
    let server = Probe::new("server", &log).on_accepted(move |_ctx, mut socket| {
        k.set(Some(socket.kind()));
        socket.close()?;
        f.set();
        Ok(())
    });
    let listener = r.add(socket, T::Probe(server)).unwrap();
    base_client(case, &mut r, &addr, Probe::client(&log));
    loop_waiting_for_flag(&mut r, || flag.get());
    assert_eq!(log.of("server"), [Cb::Accepted]);
    assert_eq!(kind.get(), Some(Kind::Socket(case.fam.family())));
    assert_eq!(state(&r, listener), Some(State::Listening));
}

matrix!(handle_read: ipv4, ipv6, unix);
/// Row 21: data sent by the accepted side (1024 bytes) triggers the client's
/// `handle_read`.
fn handle_read(case: &Case) {
    let log = Log::default();
    let mut r: R = case.reactor();
    let l = log.clone();
    let (_, addr) = base_server(case, &mut r, &log, move |socket| {
        assert_eq!(socket.send(&[b'x'; 1024]).unwrap(), Sent::Bytes(1024));
        Some(Probe::new("handler", &l))
    });
    let flag = Flag::default();
    let got = Rc::new(RefCell::new(Vec::new()));
    let (f, g) = (flag.clone(), got.clone());
    let client = Probe::client(&log).on(Cb::Read, move |ctx| {
        let mut buf = [0u8; 2048];
        if let Recv::Data(n) = ctx.recv(&mut buf)? {
            g.borrow_mut().extend_from_slice(&buf[..n]);
            f.set();
        }
        Ok(())
    });
    base_client(case, &mut r, &addr, client);
    loop_waiting_for_flag(&mut r, || flag.get());
    let got = got.borrow();
    assert!(!got.is_empty() && got.len() <= 1024, "{} bytes", got.len());
    assert!(got.iter().all(|&b| b == b'x'));
    assert_eq!(log.of("client")[..2], [Cb::Connect, Cb::Read]);
}

matrix!(handle_write: ipv4, ipv6, unix);
/// Row 22: a connected client that wants to write gets `handle_write` (after
/// `handle_connect`).
fn handle_write(case: &Case) {
    let log = Log::default();
    let mut r: R = case.reactor();
    let (_, addr) = idle_server(case, &mut r, &log);
    let flag = Flag::default();
    let f = flag.clone();
    let client = Probe::client(&log).writable(true).on(Cb::Write, move |_| {
        f.set();
        Ok(())
    });
    base_client(case, &mut r, &addr, client);
    loop_waiting_for_flag(&mut r, || flag.get());
    assert_eq!(log.of("client"), [Cb::Connect, Cb::Write]);
}

matrix!(handle_close: ipv4, ipv6, unix);
/// Row 23: the peer closes; the client's `recv` sees EOF, which (our design) calls
/// `handle_eof` and then `handle_close`, once; the channel leaves the map.
fn handle_close(case: &Case) {
    let log = Log::default();
    let mut r: R = case.reactor();
    // The original's handler closes itself in its constructor.
    let (_, addr) = base_server(case, &mut r, &log, |_| None);
    let flag = Flag::default();
    let f = flag.clone();
    let client = Probe::client(&log)
        .on(Cb::Read, |ctx| {
            ctx.recv(&mut [0u8; 1024])?;
            Ok(())
        })
        .on(Cb::Close, move |ctx| {
            f.set();
            ctx.close();
            Ok(())
        });
    let client = base_client(case, &mut r, &addr, client);
    loop_waiting_for_flag(&mut r, || flag.get());
    assert_eq!(
        log.of("client"),
        [Cb::Connect, Cb::Read, Cb::Eof, Cb::Close]
    );
    assert_eq!(state(&r, client), None, "closed and removed");
}

matrix!(handle_close_after_conn_broken: ipv4, ipv6, unix);
/// Row 24 (bpo-5661, bpo-11265): the client keeps sending after the peer read once
/// and closed; the broken connection (EPIPE, ECONNRESET, or HUP/ERR under poll)
/// ends in `handle_close` (or `handle_expt`), never `handle_error`.
fn handle_close_after_conn_broken(case: &Case) {
    const DATA: [u8; 128] = [0; 128];
    let log = Log::default();
    let mut r: R = case.reactor();
    let l = log.clone();
    let (_, addr) = base_server(case, &mut r, &log, move |_| {
        let handler = Probe::new("handler", &l).on(Cb::Read, |ctx| {
            ctx.recv(&mut [0u8; DATA.len()])?;
            ctx.close();
            Ok(())
        });
        Some(handler)
    });
    let flag = Flag::default();
    let (f1, f2) = (flag.clone(), flag.clone());
    let client = Probe::client(&log)
        .writable(true)
        .on(Cb::Write, |ctx| {
            ctx.send(&DATA)?;
            Ok(())
        })
        .on(Cb::Close, move |ctx| {
            f1.set();
            ctx.close();
            Ok(())
        })
        .on(Cb::Expt, move |ctx| {
            f2.set();
            ctx.close();
            Ok(())
        });
    base_client(case, &mut r, &addr, client);
    loop_waiting_for_flag(&mut r, || flag.get());
    let calls = log.of("client");
    assert!(
        matches!(calls.last(), Some(Cb::Close | Cb::Expt)),
        "{calls:?}"
    );
    assert!(!calls.contains(&Cb::Error), "{calls:?}");
    assert!(calls.contains(&Cb::Write));
    assert_eq!(log.of("handler")[0], Cb::Read);
}

matrix!(handle_expt: ipv4, ipv6);
/// Row 25: one byte of TCP out-of-band data triggers the client's `handle_expt`
/// (select's except set, poll's POLLPRI), where `recv_priority` reads it. Not for
/// AF_UNIX, as in the original.
fn handle_expt(case: &Case) {
    let log = Log::default();
    let mut r: R = case.reactor();
    let l = log.clone();
    let (_, addr) = base_server(case, &mut r, &log, move |socket| {
        let n = nix::sys::socket::send(socket.as_raw_fd(), &[244], MsgFlags::MSG_OOB).unwrap();
        assert_eq!(n, 1);
        Some(Probe::new("handler", &l))
    });
    let flag = Flag::default();
    let urgent = Rc::new(RefCell::new(Vec::new()));
    let (f, u) = (flag.clone(), urgent.clone());
    let client = Probe::client(&log).on(Cb::Expt, move |ctx| {
        let mut buf = [0u8; 16];
        if let Recv::Data(n) = ctx.recv_priority(&mut buf)? {
            u.borrow_mut().extend_from_slice(&buf[..n]);
            f.set();
        }
        Ok(())
    });
    base_client(case, &mut r, &addr, client);
    loop_waiting_for_flag(&mut r, || flag.get());
    assert_eq!(*urgent.borrow(), [244]);
    let calls = log.of("client");
    assert_eq!(calls[0], Cb::Connect);
    assert!(calls.contains(&Cb::Expt));
    assert!(
        calls
            .iter()
            .all(|c| matches!(c, Cb::Connect | Cb::Read | Cb::Expt)),
        "{calls:?}"
    );
}

matrix!(handle_error: ipv4, ipv6, unix);
/// Row 26: an error returned by `handle_write` reaches `handle_error`, which receives
/// exactly that error; a `handle_error` that does not close leaves the channel open.
fn handle_error(case: &Case) {
    const BOOM: Error = Error::Protocol("division by zero");
    let log = Log::default();
    let mut r: R = case.reactor();
    let (_, addr) = idle_server(case, &mut r, &log);
    let flag = Flag::default();
    let f = flag.clone();
    let client = Probe::client(&log)
        .writable(true)
        .on(Cb::Write, |_| Err(BOOM))
        .on_error(move |_ctx, e| {
            assert_eq!(e, BOOM);
            f.set();
        });
    let client = base_client(case, &mut r, &addr, client);
    loop_waiting_for_flag(&mut r, || flag.get());
    assert_eq!(log.of("client"), [Cb::Connect, Cb::Write, Cb::Error]);
    assert_eq!(state(&r, client), Some(State::Connected), "still open");
}

matrix!(connection_attributes: ipv4, ipv6, unix);
/// Row 27: the listener stays `Listening` throughout; the client goes from
/// `Connecting` to `Connected`; the accepted side is `Connected`; closing the client
/// removes it and leaves the server alone; closing the server removes it.
fn connection_attributes(case: &Case) {
    let log = Log::default();
    let mut r: R = case.reactor();
    let (server, addr) = idle_server(case, &mut r, &log);
    let client = base_client(case, &mut r, &addr, Probe::client(&log));
    assert_eq!(state(&r, server), Some(State::Listening));
    assert_eq!(state(&r, client), Some(State::Connecting));

    run_until(&mut r, "client connected and accepted", |r| {
        state(r, client) == Some(State::Connected) && r.len() == 3
    });
    r.run(common::PASS, Some(5)).unwrap();
    assert_eq!(state(&r, server), Some(State::Listening));
    assert_eq!(state(&r, client), Some(State::Connected));
    let accepted: Vec<State> = r
        .map()
        .iter()
        .filter(|c| c.token != server && c.token != client)
        .map(|c| c.state)
        .collect();
    assert_eq!(accepted, [State::Connected]);

    assert!(r.close(client));
    assert_eq!(state(&r, client), None);
    assert_eq!(state(&r, server), Some(State::Listening));
    assert!(!r.close(client), "a stale token closes nothing");

    assert!(r.close(server));
    assert_eq!(state(&r, server), None);
    assert_eq!(r.len(), 1, "only the accepted side is left");
    assert_eq!(log.of("client"), [Cb::Connect]);
}

matrix!(create_socket: ipv4, ipv6, unix);
/// Row 28: a new socket is a non-blocking, close-on-exec stream socket of the
/// family asked for; added to a reactor as is, it is `Open`.
fn create_socket(case: &Case) {
    let s = case.socket();
    let fd = s.fd().expect("open");
    let fl = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
    assert!(fl.contains(OFlag::O_NONBLOCK), "O_NONBLOCK");
    let fdfl = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
    assert!(fdfl.contains(FdFlag::FD_CLOEXEC), "FD_CLOEXEC");
    assert_eq!(
        getsockopt(&fd, sockopt::SockType).unwrap(),
        SockType::Stream
    );
    let ss: SockaddrStorage = getsockname(fd.as_raw_fd()).unwrap();
    let family = match case.fam {
        Fam::V4 => AddressFamily::Inet,
        Fam::V6 => AddressFamily::Inet6,
        Fam::Unix => AddressFamily::Unix,
    };
    assert_eq!(ss.family(), Some(family));
    assert_eq!(s.kind(), Kind::Socket(case.fam.family()));

    let mut r: R = case.reactor();
    let log = Log::default();
    let t = r.add(s, T::Probe(Probe::new("fresh", &log))).unwrap();
    assert_eq!(state(&r, t), Some(State::Open));
    assert!(r.close(t));
    assert!(r.is_empty());
}

matrix!(bind: ipv4, ipv6);
/// Row 29: binding a second socket to the port of a bound, listening one fails with
/// `EADDRINUSE`. Not for AF_UNIX, as in the original.
fn bind(case: &Case) {
    let mut s1 = case.socket();
    s1.bind(&case.bind_addr()).unwrap();
    s1.listen(5).unwrap();
    let addr = s1.local_addr().unwrap();
    assert_ne!(addr.as_inet().unwrap().port(), 0);

    let s2 = case.socket();
    let e = s2.bind(&addr).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    assert_eq!(e.raw_os_error(), Some(errno::EADDRINUSE));

    // The first one is a listener the loop accepts.
    let mut r: R = case.reactor();
    let log = Log::default();
    let t = r.add(s1, T::Probe(Probe::new("s1", &log))).unwrap();
    assert_eq!(state(&r, t), Some(State::Listening));
}

matrix!(set_reuse_addr: ipv4, ipv6);
/// Row 30: `SO_REUSEADDR` is off on a plain socket and on after `set_reuse_addr`.
/// Not for AF_UNIX, as in the original.
fn set_reuse_addr(case: &Case) {
    let s = case.socket();
    let fd = s.fd().unwrap();
    assert!(!getsockopt(&fd, sockopt::ReuseAddr).unwrap());
    s.set_reuse_addr().unwrap();
    assert!(getsockopt(&fd, sockopt::ReuseAddr).unwrap());
    // The listener constructor sets it too.
    let listener = StdSocket::tcp_listener(case.bind_addr().as_inet().unwrap(), 5).unwrap();
    assert!(getsockopt(&listener.fd().unwrap(), sockopt::ReuseAddr).unwrap());
    let mut r: R = case.reactor();
    let log = Log::default();
    let t = r.add(listener, T::Probe(Probe::new("l", &log))).unwrap();
    assert_eq!(state(&r, t), Some(State::Listening));
}

matrix!(quick_connect: ipv4, ipv6);
/// Row 31 (bpo-10340): clients connect and reset at once (`SO_LINGER` 0) while the
/// server loop runs. Nothing panics, no `handle_error` (the probes would fail the
/// test), every accepted connection ends in `handle_close`, the listener stays, and
/// the server then serves a well-behaved client. Not for AF_UNIX, as in the
/// original.
fn quick_connect(case: &Case) {
    const QUICK: usize = 20;
    let log = Log::default();
    let mut r: R = case.reactor();
    let accepted = Rc::new(Cell::new(0usize));
    let closed = Rc::new(Cell::new(0usize));
    let received = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let (a, c, rx) = (accepted.clone(), closed.clone(), received.clone());
    // A backlog that holds every quick client: with the original's 5, SYNs beyond
    // it are dropped and retried a second later, which only makes the test slow.
    let listener = case.listener(true, 64);
    let (server, addr) = server_on(listener, &mut r, &log, move |_| {
        a.set(a.get() + 1);
        let (c, rx) = (c.clone(), rx.clone());
        let handler = Probe::new("handler", &l)
            .on(Cb::Read, move |ctx| {
                let mut buf = [0u8; 256];
                while let Recv::Data(n) = ctx.recv(&mut buf)? {
                    rx.borrow_mut().extend_from_slice(&buf[..n]);
                }
                Ok(())
            })
            .on(Cb::Close, move |ctx| {
                c.set(c.get() + 1);
                ctx.close();
                Ok(())
            });
        Some(handler)
    });
    let sa = addr.as_inet().unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let resetter = std::thread::spawn(move || {
        let linger = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        let mut connected = 0;
        for _ in 0..QUICK {
            if let Ok(s) = TcpStream::connect_timeout(&sa, Duration::from_secs(5)) {
                setsockopt(&s, sockopt::Linger, &linger).unwrap();
                connected += 1;
                drop(s); // RST
            }
        }
        d.store(true, Ordering::Release);
        connected
    });
    run_until(&mut r, "every reset connection accepted and closed", |r| {
        done.load(Ordering::Acquire) && accepted.get() == QUICK && r.len() == 1
    });
    assert_eq!(resetter.join().unwrap(), QUICK);
    assert_eq!(
        closed.get(),
        QUICK,
        "each reset connection got handle_close"
    );
    assert_eq!(state(&r, server), Some(State::Listening));
    let handler_calls = log.of("handler");
    assert!(
        handler_calls
            .iter()
            .all(|c| matches!(c, Cb::Read | Cb::Eof | Cb::Close)),
        "{handler_calls:?}"
    );
    assert!(received.borrow().is_empty());

    // The server keeps serving.
    let mut peer = Peer::connect(&addr).unwrap();
    peer.write_all(b"ping").unwrap();
    run_until(&mut r, "the well-behaved client served", |_| {
        received.borrow().as_slice() == b"ping"
    });
    assert_eq!(accepted.get(), QUICK + 1);
    assert_eq!(r.len(), 2);
}

// ------------------------------------------------------------------ row 12

/// The original's `dispatcher_with_send` client: a [`SendBuffer`] queued before the
/// connect finishes, then a bulk stream refilled as the buffer drains. Closes once
/// everything went out.
struct Sender {
    out: SendBuffer<4096>,
    bulk: Vec<u8>,
    next: usize,
    connected: bool,
    writes: usize,
}

impl Sender {
    fn done(&self) -> bool {
        self.out.is_empty() && self.next == self.bulk.len()
    }
}

impl Dispatcher<StdSocket> for Sender {
    type Error = Error;

    fn readable(&self) -> bool {
        false
    }

    fn writable(&self) -> bool {
        !self.done()
    }

    fn handle_connect(&mut self, _ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        self.connected = true;
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        assert!(self.connected, "handle_write before handle_connect");
        self.writes += 1;
        loop {
            self.next += self.out.queue(&self.bulk[self.next..]);
            let sent = self.out.flush(ctx)?;
            if self.done() {
                ctx.close();
                break;
            }
            if sent == 0 {
                break; // would block: wait for the next write readiness
            }
        }
        Ok(())
    }

    fn handle_close(&mut self, _ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        panic!("sender: handle_close not supposed to be called")
    }

    fn handle_error(&mut self, _ctx: &mut Ctx<'_, StdSocket, Self>, error: Error) {
        panic!("sender: handle_error: {error}")
    }
}

/// A blocking std server (a thread) that captures everything one client sends.
fn capture_server(case: &Case) -> (Addr, std::thread::JoinHandle<Vec<u8>>) {
    fn capture(mut s: impl std::io::Read) -> Vec<u8> {
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("capture");
        got
    }
    match case.bind_addr() {
        Addr::Inet(sa) => {
            let l = std::net::TcpListener::bind(sa).unwrap();
            let addr = Addr::Inet(l.local_addr().unwrap());
            let t = std::thread::spawn(move || {
                let (s, _) = l.accept().unwrap();
                s.set_read_timeout(Some(common::PATIENCE)).unwrap();
                capture(s)
            });
            (addr, t)
        }
        Addr::Unix(u) => {
            let path = u.as_path().unwrap().to_owned();
            let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
            let t = std::thread::spawn(move || {
                let (s, _) = l.accept().unwrap();
                s.set_read_timeout(Some(common::PATIENCE)).unwrap();
                capture(s)
            });
            (Addr::unix(path).unwrap(), t)
        }
        Addr::Unnamed => unreachable!(),
    }
}

matrix!(dispatcher_with_send: ipv4, ipv6, unix);
/// Row 12: bytes queued in a [`SendBuffer`] before the connect finishes go out once
/// it does; a 256 KiB stream through the 4 KiB buffer (partial sends, would-block)
/// arrives byte-exact; the buffer ends empty and stops asking to write.
fn dispatcher_with_send(case: &Case) {
    const DATA: &[u8] = b"Suppose there isn't a 16-ton weight?";
    let (addr, server) = capture_server(case);
    let mut sender = Sender {
        out: SendBuffer::new(),
        bulk: pattern(12, 256 * 1024),
        next: 0,
        connected: false,
        writes: 0,
    };
    // The original's three `send`s, made before the connection exists.
    sender.out.queue_all(DATA).unwrap();
    sender.out.queue_all(DATA).unwrap();
    sender.out.queue_all(b"\n").unwrap();
    let mut expected = [DATA, DATA, b"\n"].concat();
    expected.extend_from_slice(&sender.bulk);

    let mut r: StdReactor<Sender, 2> = case.reactor();
    let t = r.add(case.connect(&addr), sender).unwrap();
    run_until(&mut r, "everything sent", |r| {
        r.get(t).is_none_or(|c| c.dispatcher.done())
    });
    if let Some(c) = r.get(t) {
        assert!(c.dispatcher.out.is_empty() && !c.dispatcher.writable());
        assert!(c.dispatcher.writes > 1, "the buffer was refilled");
    }
    run_until(&mut r, "the sender closed", |r| r.is_empty());
    let got = server.join().unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the capture differs from what was sent");
}

// ------------------------------------------------------------------ rows 13-17

const FILE_DATA: &[u8] = b"It's not dead, it's sleeping!";

/// epoll cannot watch a regular file (`epoll_ctl` fails with `EPERM`: a file is
/// always ready), so on epoll `add` refuses a file channel over one: `Rejected(Invalid)`,
/// the socket handed back open and usable, the map untouched, no callback. Returns
/// whether it was refused (on epoll), so a file test stops there.
fn epoll_refuses_a_regular_file(
    case: &Case,
    r: &mut R,
    wrapper: StdSocket,
    log: &Log,
) -> Option<StdSocket> {
    if case.backend != asyncore::Backend::Epoll {
        return Some(wrapper);
    }
    let raw = wrapper.as_raw_fd();
    let e = r
        .add(wrapper, T::Probe(Probe::new("file", log)))
        .unwrap_err();
    assert_eq!(
        e.kind,
        asyncore::AddErrorKind::Rejected(asyncore::SourceError::Invalid)
    );
    let (mut wrapper, _) = e.into_inner();
    assert_eq!(wrapper.as_raw_fd(), raw, "handed back untouched");
    assert!(!wrapper.is_closed());
    assert!(r.is_empty());
    assert_eq!(log.of("file"), []);
    // Still usable without the loop.
    let mut buf = [0u8; 4];
    assert!(wrapper.recv(&mut buf).is_ok() || wrapper.send(b"x").is_ok());
    None
}

backends!(file_wrapper_recv);
/// Row 13: the file channel holds a duplicate of the fd; reads from the loop are
/// sequential; a read after close fails with `EBADF`.
fn file_wrapper_recv(case: &Case) {
    let path = case.dir.file("data");
    std::fs::write(&path, FILE_DATA).unwrap();
    let file = File::open(&path).unwrap();
    let wrapper = StdSocket::file(&file).unwrap();
    assert_ne!(wrapper.as_raw_fd(), file.as_raw_fd(), "a dup");
    drop(file); // the caller may close its own fd

    let log = Log::default();
    let chunks = Rc::new(RefCell::new(Vec::<Vec<u8>>::new()));
    let c = chunks.clone();
    let probe = Probe::new("file", &log).on(Cb::Read, move |ctx| {
        let size = match c.borrow().len() {
            0 => 13,
            1 => 6,
            _ => return Ok(()),
        };
        let mut buf = [0u8; 13];
        if let Recv::Data(n) = ctx.recv(&mut buf[..size])? {
            c.borrow_mut().push(buf[..n].to_vec());
        }
        Ok(())
    });
    let mut r: R = case.reactor();
    let Some(wrapper) = epoll_refuses_a_regular_file(case, &mut r, wrapper, &Log::default()) else {
        return;
    };
    let t = r.add(wrapper, T::Probe(probe)).unwrap();
    assert_eq!(state(&r, t), Some(State::Connected));
    run_until(&mut r, "two reads", |_| chunks.borrow().len() == 2);
    assert_eq!(*chunks.borrow(), [&b"It's not dead"[..], b", it's"]);

    let (mut wrapper, _) = r.remove(t).unwrap();
    wrapper.close().unwrap();
    let e = wrapper.recv(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EBADF));
    assert_eq!(wrapper.source(), -1);
}

backends!(file_wrapper_send);
/// Row 14: writes from the loop to an `O_APPEND` file land after its content.
fn file_wrapper_send(case: &Case) {
    const D1: &[u8] = b"\nbacon";
    const D2: &[u8] = b"\neggs";
    let path = case.dir.file("append");
    std::fs::write(&path, FILE_DATA).unwrap();
    let file = OpenOptions::new().append(true).open(&path).unwrap();
    let wrapper = StdSocket::file(&file).unwrap();
    drop(file);

    let log = Log::default();
    let step = Rc::new(Cell::new(0));
    let s = step.clone();
    let probe = Probe::new("file", &log)
        .readable(false)
        .writable(true)
        .on(Cb::Write, move |ctx| {
            let data = match s.get() {
                0 => D1,
                1 => D2,
                _ => {
                    ctx.close();
                    return Ok(());
                }
            };
            assert_eq!(ctx.send(data)?, data.len());
            s.set(s.get() + 1);
            Ok(())
        });
    let mut r: R = case.reactor();
    let Some(wrapper) = epoll_refuses_a_regular_file(case, &mut r, wrapper, &Log::default()) else {
        return;
    };
    r.add(wrapper, T::Probe(probe)).unwrap();
    run_until(&mut r, "both writes and the close", |r| r.is_empty());
    assert_eq!(step.get(), 2);
    assert_eq!(log.of("file"), [Cb::Write, Cb::Write, Cb::Write]);
    assert_eq!(std::fs::read(&path).unwrap(), [FILE_DATA, D1, D2].concat());
}

/// A file channel that reads `chunk` bytes per `handle_read` into `data`, and
/// closes on `handle_close`.
fn file_reader(log: &Log, chunk: usize, data: &Rc<RefCell<Vec<u8>>>) -> T {
    let d = data.clone();
    let probe = Probe::new("file", log)
        .on(Cb::Read, move |ctx| {
            let mut buf = vec![0u8; chunk];
            if let Recv::Data(n) = ctx.recv(&mut buf)? {
                d.borrow_mut().extend_from_slice(&buf[..n]);
            }
            Ok(())
        })
        .on(Cb::Close, |ctx| {
            ctx.close();
            Ok(())
        });
    T::Probe(probe)
}

backends!(file_dispatcher);
/// Row 15: a file channel over a 29-byte regular file, `run(count=2)`: the first
/// pass reads the whole file, the second sees EOF and closes; the map is empty.
fn file_dispatcher(case: &Case) {
    let path = case.dir.file("data");
    std::fs::write(&path, FILE_DATA).unwrap();
    let file = File::open(&path).unwrap();
    let log = Log::default();
    let data = Rc::new(RefCell::new(Vec::new()));
    let mut r: R = case.reactor();
    let Some(wrapper) =
        epoll_refuses_a_regular_file(case, &mut r, StdSocket::file(&file).unwrap(), &log)
    else {
        return;
    };
    r.add(wrapper, file_reader(&log, 29, &data)).unwrap();
    drop(file);
    assert_eq!(r.run(common::PASS, Some(2)).unwrap(), RunEnd::Empty);
    assert_eq!(*data.borrow(), FILE_DATA);
    assert_eq!(log.of("file"), [Cb::Read, Cb::Read, Cb::Eof, Cb::Close]);
    assert!(r.is_empty());
}

backends!(pipe_dispatcher);
/// Row 15 over a pipe taken over with `from_owned_file`: everything the writer wrote
/// before closing its end is read, then the channel closes and the map is empty.
fn pipe_dispatcher(case: &Case) {
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let mut writer = File::from(wr);
    let log = Log::default();
    let data = Rc::new(RefCell::new(Vec::new()));
    let mut r: R = case.reactor();
    r.add(
        StdSocket::from_owned_file(rd).unwrap(),
        file_reader(&log, 29, &data),
    )
    .unwrap();
    // Nothing yet: a pass times out with nothing to do.
    assert_eq!(r.poll_once(Some(Duration::from_millis(1))).unwrap(), 0);
    writer.write_all(FILE_DATA).unwrap();
    run_until(&mut r, "the data read", |_| data.borrow().len() == 29);
    drop(writer);
    run_until(&mut r, "EOF closes the channel", |r| r.is_empty());
    assert_eq!(*data.borrow(), FILE_DATA);
    let calls = log.of("file");
    assert_eq!(calls.last(), Some(&Cb::Close));
    assert_eq!(calls.iter().filter(|c| **c == Cb::Close).count(), 1);
}

backends!(file_wrapper_close_twice, exclusive);
/// Row 17: a file channel whose fd someone else closed: the first `close` reports
/// `EBADF` and marks it closed (`-1`); the second is a silent no-op. In the loop, the
/// same situation ends in `handle_close` for that channel (select probes the
/// `EBADF`, poll reports `POLLNVAL`); epoll refuses the file channel at `add` (an fd
/// closed behind epoll's back is `tests/echo.rs`, `fd_closed_behind_the_back`). Holds
/// the fd lock exclusively: it closes fd numbers it does not own.
fn file_wrapper_close_twice(case: &Case) {
    let path = case.dir.file("data");
    std::fs::write(&path, FILE_DATA).unwrap();
    let file = File::open(&path).unwrap();

    let mut wrapper = StdSocket::file(&file).unwrap();
    nix::unistd::close(wrapper.as_raw_fd()).unwrap();
    let e = wrapper.close().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EBADF));
    assert!(wrapper.is_closed());
    assert_eq!(wrapper.as_raw_fd(), -1);
    wrapper.close().unwrap();

    // The same under the loop (not on epoll, which refuses a regular file at `add`).
    let log = Log::default();
    let mut r: R = case.reactor();
    let Some(wrapper) =
        epoll_refuses_a_regular_file(case, &mut r, StdSocket::file(&file).unwrap(), &log)
    else {
        return;
    };
    drop(wrapper);
    let (a, b) = StdSocket::pair().unwrap();
    let closed = Flag::default();
    let c = closed.clone();
    let probe = Probe::new("file", &log).on(Cb::Close, move |ctx| {
        c.set();
        ctx.close();
        Ok(())
    });
    let wrapper = StdSocket::file(&file).unwrap();
    let raw = wrapper.as_raw_fd();
    let t = r.add(wrapper, T::Probe(probe)).unwrap();
    let other = r.add(b, T::Probe(Probe::new("other", &log))).unwrap();
    nix::unistd::close(raw).unwrap();
    run_until(&mut r, "the bad channel closed", |r| r.get(t).is_none());
    assert!(closed.get());
    assert_eq!(log.of("file"), [Cb::Close]);
    assert_eq!(state(&r, other), Some(State::Connected), "the other stays");
    drop(a);
}

// ------------------------------------------------------------------ hang-up with data

/// A reader taking 1 KiB per `handle_read` on `socket`; `feed(len)` writes `len`
/// bytes from the other end and closes it before the loop runs. Everything must be
/// read before the channel closes, on both backends.
fn hangup_keeps_unread_data(case: &Case, socket: StdSocket, feed: impl FnOnce(usize)) {
    const LEN: usize = 48 * 1024;
    let log = Log::default();
    let data = Rc::new(RefCell::new(Vec::new()));
    let mut r: R = case.reactor();
    r.add(socket, file_reader(&log, 1024, &data)).unwrap();
    feed(LEN);
    run_until(&mut r, "the channel closed", |r| r.is_empty());
    assert_eq!(
        data.borrow().len(),
        LEN,
        "bytes the peer sent before closing were read before the close ({:?})",
        case.backend
    );
    assert_eq!(*data.borrow(), pattern(15, LEN));
}

backends!(pipe_hangup_keeps_unread_data);
/// A pipe whose writer wrote 48 KiB and exited (`cmd | ours`), read 1 KiB per
/// `handle_read`: everything arrives, then EOF closes. (The original's poll flavour
/// closed on `POLLHUP` after the first read and dropped the rest; so did ours before
/// ff8108e.)
fn pipe_hangup_keeps_unread_data(case: &Case) {
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let socket = StdSocket::from_owned_file(rd).unwrap();
    hangup_keeps_unread_data(case, socket, |len| {
        let mut w = File::from(wr);
        w.write_all(&pattern(15, len)).unwrap();
    });
}

backends!(unix_peer_close_keeps_unread_data);
/// The same for an AF_UNIX stream whose peer wrote 48 KiB and closed (Linux reports
/// `POLLHUP` as soon as the peer is gone, with the data still queued).
fn unix_peer_close_keeps_unread_data(case: &Case) {
    let (ours, theirs) = StdSocket::pair().unwrap();
    hangup_keeps_unread_data(case, ours, |len| {
        let mut peer = std::os::unix::net::UnixStream::from(theirs.into_fd().unwrap());
        peer.set_nonblocking(false).unwrap();
        peer.write_all(&pattern(15, len)).unwrap();
    });
}
