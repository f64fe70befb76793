//! Fixtures shared by the core's integration tests: a reactor over the mock, one
//! channel per state, readiness shortcuts, and two dispatchers besides the mock's
//! `Recorder`: `Defaults` (every handler at the trait's default, log lines captured)
//! and `Hook` (closures per callback, every callback recorded).
#![allow(dead_code, unused_imports)] // each test crate uses its own subset

use asyncore_core::mock::MockIo;
use std::cell::RefCell;
use std::time::Duration;

pub use asyncore_core::Callback as C;
pub use asyncore_core::mock::{
    Action, CallLog, MockSelector, MockSocket, PassRecord, Recorder, RecvStep, SendStep,
    SocketProbe,
};
pub use asyncore_core::{
    AddErrorKind, AfterEof, Ctx, Dispatcher, Error, Interest, LogLevel, PollError, Reactor,
    Readiness, Recv, RunEnd, SocketError, SourceError, State, Token, errno,
};

pub const READ: Readiness = Readiness::READABLE;
pub const WRITE: Readiness = Readiness::WRITABLE;
pub const PRI: Readiness = Readiness::PRIORITY;
pub const ERR: Readiness = Readiness::ERROR;
pub const HUP: Readiness = Readiness::HANGUP;
pub const NVAL: Readiness = Readiness::INVALID;

pub const ZERO: Option<Duration> = Some(Duration::ZERO);

/// A handler error that is not a socket error.
pub const BOOM: Error = Error::Protocol("boom");

/// A reactor over the mock with dispatcher `D`.
pub type Mock<D, const N: usize = 8> = Reactor<MockIo, D, N>;
/// A reactor of recorders.
pub type Rx<'a, const N: usize = 8> = Mock<Recorder<'a>, N>;

/// An empty reactor over a fresh mock selector.
pub fn reactor<D: Dispatcher<MockSocket>, const N: usize>() -> Mock<D, N> {
    Reactor::new(MockSelector::new())
}

/// The error of errno `code`.
pub fn os(code: i32) -> SocketError {
    SocketError::from_errno(code)
}

/// Adds `socket` with `d`; panics if refused.
pub fn add<D: Dispatcher<MockSocket>, const N: usize>(
    r: &mut Mock<D, N>,
    socket: MockSocket,
    d: D,
) -> Token {
    r.add(socket, d).expect("the map has room")
}

/// A connected stream on source `id`.
pub fn connected<D: Dispatcher<MockSocket>, const N: usize>(
    r: &mut Mock<D, N>,
    id: u32,
    d: D,
) -> Token {
    add(r, MockSocket::connected(id), d)
}

/// A stream on source `id` whose non-blocking connect is in progress.
pub fn connecting<D: Dispatcher<MockSocket>, const N: usize>(
    r: &mut Mock<D, N>,
    id: u32,
    d: D,
) -> Token {
    add(r, MockSocket::connecting(id), d)
}

/// A listening socket on source `id`.
pub fn listener<D: Dispatcher<MockSocket>, const N: usize>(
    r: &mut Mock<D, N>,
    id: u32,
    d: D,
) -> Token {
    add(r, MockSocket::listener(id), d)
}

/// The socket of `t`, to script it after it was added.
pub fn sock<D: Dispatcher<MockSocket>, const N: usize>(
    r: &mut Mock<D, N>,
    t: Token,
) -> &mut MockSocket {
    r.get_mut(t).expect("the channel is open").socket
}

/// The state of `t`, `None` once it is closed.
pub fn state<D: Dispatcher<MockSocket>, const N: usize>(r: &Mock<D, N>, t: Token) -> Option<State> {
    r.get(t).map(|c| c.state)
}

/// Level readiness of source `id`: reported by every wait until changed.
pub fn ready<D: Dispatcher<MockSocket>, const N: usize>(
    r: &mut Mock<D, N>,
    id: u32,
    rd: Readiness,
) {
    r.selector_mut().set_ready(id, rd);
}

/// Readiness of source `id` reported by the next wait only.
pub fn once<D: Dispatcher<MockSocket>, const N: usize>(r: &mut Mock<D, N>, id: u32, rd: Readiness) {
    r.selector_mut().set_once(id, rd);
}

/// One non-blocking pass; returns how many channels had readiness.
pub fn pass<D: Dispatcher<MockSocket>, const N: usize>(r: &mut Mock<D, N>) -> usize {
    r.poll_once(ZERO).expect("the pass succeeds")
}

/// The interest source `id` was handed over with in the last wait.
pub fn interest<D: Dispatcher<MockSocket>, const N: usize>(
    r: &Mock<D, N>,
    id: u32,
) -> Option<Interest> {
    r.selector().last_interest(id)
}

/// Captured `log_info` lines.
pub type Lines = RefCell<Vec<(Token, LogLevel, &'static str)>>;

/// A dispatcher whose every handler is the trait's default; only `log_info` is
/// overridden, to capture lines at `min` level or above (the original's
/// `ignore_log_types`).
pub struct Defaults<'a> {
    pub lines: &'a Lines,
    pub min: LogLevel,
    pub writable: bool,
}

impl<'a> Defaults<'a> {
    pub fn new(lines: &'a Lines) -> Self {
        Defaults {
            lines,
            min: LogLevel::Debug,
            writable: false,
        }
    }

    pub fn writable(mut self) -> Self {
        self.writable = true;
        self
    }

    pub fn min(mut self, min: LogLevel) -> Self {
        self.min = min;
        self
    }
}

impl Dispatcher<MockSocket> for Defaults<'_> {
    type Error = Error;

    fn writable(&self) -> bool {
        self.writable
    }

    fn log_info(&mut self, token: Token, level: LogLevel, message: &'static str) {
        if level >= self.min {
            self.lines.borrow_mut().push((token, level, message));
        }
    }
}

/// Every callback a `Hook` saw, in order.
pub type Calls = RefCell<Vec<(Token, C)>>;

type Hx<'c, 'a> = Ctx<'c, MockSocket, Hook<'a>>;
type On<'a> = Box<dyn FnMut(&mut Hx<'_, 'a>) -> Result<(), Error> + 'a>;
type OnAccepted<'a> = Box<dyn FnMut(&mut Hx<'_, 'a>, MockSocket) -> Result<(), Error> + 'a>;
type OnReadClosed<'a> = Box<dyn FnMut(&mut Hx<'_, 'a>) -> Result<AfterEof, Error> + 'a>;

/// A dispatcher that records every callback (but `handle_accept`, left at the trait's
/// default so `handle_accepted` is reached through it) into `calls` and runs the
/// closure given for it. Without a closure a callback does nothing;
/// `handle_eof` then answers `Close` and `handle_error` closes, as the
/// defaults do.
pub struct Hook<'a> {
    pub calls: &'a Calls,
    pub tag: u32,
    pub readable: bool,
    pub writable: bool,
    connect: Option<On<'a>>,
    read: Option<On<'a>>,
    write: Option<On<'a>>,
    close: Option<On<'a>>,
    accepted: Option<OnAccepted<'a>>,
    read_closed: Option<OnReadClosed<'a>>,
}

impl<'a> Hook<'a> {
    pub fn new(calls: &'a Calls) -> Self {
        Hook {
            calls,
            tag: 0,
            readable: true,
            writable: false,
            connect: None,
            read: None,
            write: None,
            close: None,
            accepted: None,
            read_closed: None,
        }
    }

    /// A value to tell this dispatcher apart when it is handed back.
    pub fn tag(mut self, tag: u32) -> Self {
        self.tag = tag;
        self
    }

    pub fn writable(mut self) -> Self {
        self.writable = true;
        self
    }

    pub fn on_connect(mut self, f: impl FnMut(&mut Hx<'_, 'a>) -> Result<(), Error> + 'a) -> Self {
        self.connect = Some(Box::new(f));
        self
    }

    pub fn on_read(mut self, f: impl FnMut(&mut Hx<'_, 'a>) -> Result<(), Error> + 'a) -> Self {
        self.read = Some(Box::new(f));
        self
    }

    pub fn on_write(mut self, f: impl FnMut(&mut Hx<'_, 'a>) -> Result<(), Error> + 'a) -> Self {
        self.write = Some(Box::new(f));
        self
    }

    pub fn on_close(mut self, f: impl FnMut(&mut Hx<'_, 'a>) -> Result<(), Error> + 'a) -> Self {
        self.close = Some(Box::new(f));
        self
    }

    pub fn on_accepted(
        mut self,
        f: impl FnMut(&mut Hx<'_, 'a>, MockSocket) -> Result<(), Error> + 'a,
    ) -> Self {
        self.accepted = Some(Box::new(f));
        self
    }

    pub fn on_eof(
        mut self,
        f: impl FnMut(&mut Hx<'_, 'a>) -> Result<AfterEof, Error> + 'a,
    ) -> Self {
        self.read_closed = Some(Box::new(f));
        self
    }

    fn record(&self, token: Token, cb: C) {
        self.calls.borrow_mut().push((token, cb));
    }

    fn run(f: &mut Option<On<'a>>, ctx: &mut Hx<'_, 'a>) -> Result<(), Error> {
        match f {
            Some(f) => f(ctx),
            None => Ok(()),
        }
    }
}

/// The callbacks of `t` a `Hook` recorded.
pub fn calls_of(calls: &Calls, t: Token) -> Vec<C> {
    calls
        .borrow()
        .iter()
        .filter(|(tk, _)| *tk == t)
        .map(|(_, c)| *c)
        .collect()
}

impl<'a> Dispatcher<MockSocket> for Hook<'a> {
    type Error = Error;

    fn readable(&self) -> bool {
        self.readable
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn handle_connect(&mut self, ctx: &mut Hx<'_, 'a>) -> Result<(), Error> {
        self.record(ctx.token(), C::Connect);
        Self::run(&mut self.connect, ctx)
    }

    fn handle_connect_failed(&mut self, ctx: &mut Hx<'_, 'a>, error: SocketError) {
        let _ = error;
        self.record(ctx.token(), C::ConnectFailed);
    }

    fn handle_accepted(
        &mut self,
        ctx: &mut Hx<'_, 'a>,
        mut socket: MockSocket,
    ) -> Result<(), Error> {
        self.record(ctx.token(), C::Accepted);
        match &mut self.accepted {
            Some(f) => f(ctx, socket),
            None => {
                let _ = asyncore_core::Socket::close(&mut socket);
                Ok(())
            }
        }
    }

    fn handle_read(&mut self, ctx: &mut Hx<'_, 'a>) -> Result<(), Error> {
        self.record(ctx.token(), C::Read);
        Self::run(&mut self.read, ctx)
    }

    fn handle_write(&mut self, ctx: &mut Hx<'_, 'a>) -> Result<(), Error> {
        self.record(ctx.token(), C::Write);
        Self::run(&mut self.write, ctx)
    }

    fn handle_expt(&mut self, ctx: &mut Hx<'_, 'a>) -> Result<(), Error> {
        self.record(ctx.token(), C::Expt);
        Ok(())
    }

    fn handle_eof(&mut self, ctx: &mut Hx<'_, 'a>) -> Result<AfterEof, Error> {
        self.record(ctx.token(), C::Eof);
        match &mut self.read_closed {
            Some(f) => f(ctx),
            None => Ok(AfterEof::Close),
        }
    }

    fn handle_close(&mut self, ctx: &mut Hx<'_, 'a>) -> Result<(), Error> {
        self.record(ctx.token(), C::Close);
        Self::run(&mut self.close, ctx)
    }

    fn handle_error(&mut self, ctx: &mut Hx<'_, 'a>, error: Error) {
        let _ = error;
        self.record(ctx.token(), C::Error);
        ctx.close();
    }
}
