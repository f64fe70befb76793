//! The `readiness` interpreter: arbitrary readiness bits and scripted socket results
//! straight into the dispatch state machine, on the mock.
//!
//! A handful of channels — listeners, connecting and connected streams, and
//! accepted streams whose peer is already gone ([`State::Open`](crate::State)) — get
//! any of the six [`Readiness`] bits, level-triggered or for one wait, and scripted
//! results: data in any amount, short writes, EOF, would-block, each errno of
//! [`ERRNOS`] from `recv`, `send`, `accept`, `close` and the `SO_ERROR` query, a
//! pending `SO_ERROR`, priority data, a failing wait. Their dispatchers do what a
//! [`Behavior`] says: read once or until would-block, write, accept and add, close,
//! fail, exit, keep writing after EOF.
//!
//! Checked after every operation:
//! * the caller's [`TraceChecker`](crate::sim::TraceChecker): no callback on a closed
//!   channel, at most one close per channel, no stale token;
//! * each dispatcher's life cycle ([`LifeViolation`]): no
//!   callback after a close, one `handle_close`, `handle_connect_failed` never
//!   followed by `handle_connect`, an `Err` always followed by `handle_error`;
//! * callbacks fit the state and the interest (the readiness table of the README):
//!   `handle_accept` only on a listener that asked to read, `handle_read` only on an
//!   open or connected stream that asked to read (`handle_expt` also after an EOF
//!   in the same pass),
//!   `handle_write` only when `writable()` said yes, `handle_eof` only in
//!   [`State::ReadClosed`](crate::State).

use crate::mock::MockIo;
use core::cell::Cell;
use core::time::Duration;

use super::script;
use super::{CheckHooks, First, Input, Life, LifeFailure, LifeViolation};
use crate::mock::{MockSelector, MockSocket, RecvStep, SendStep};
use crate::sim::Violation;
use crate::{
    AfterEof, Callback, Ctx, Dispatcher, Error, LogLevel, Reactor, Readiness, Recv, Socket,
    SocketError, State, Token, errno,
};

/// Channels in the map.
pub const CHANNELS: usize = 6;
/// Operations decoded from one input at most.
pub const MAX_OPS: usize = 192;
/// Socket ids (selector sources) are reused, like file descriptors, from this range.
pub const IDS: u32 = 16;

/// The error numbers the scripted results draw from.
pub const ERRNOS: [i32; 11] = [
    errno::EPIPE,
    errno::ECONNRESET,
    errno::ECONNABORTED,
    errno::ENOTCONN,
    errno::EINVAL,
    errno::EBADF,
    errno::ENOBUFS,
    errno::EMFILE,
    errno::EINTR,
    errno::ECONNREFUSED,
    errno::ETIMEDOUT,
];

type R<'a> = Reactor<MockIo, Rd<'a>, CHANNELS>;
type C<'a, 'b> = Ctx<'a, MockSocket, Rd<'b>>;

/// What a new channel's socket is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A listening socket.
    Listener,
    /// A non-blocking connect in progress.
    Connecting,
    /// A connected stream.
    Connected,
    /// An accepted stream whose peer reset before the address query: starts
    /// [`State::Open`].
    Open,
}

/// What a dispatcher does in its callbacks: one bit each.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Behavior(pub u16);

impl Behavior {
    /// `readable()` answers yes.
    pub const READ: u16 = 1 << 0;
    /// `writable()` answers yes.
    pub const WRITE: u16 = 1 << 1;
    /// `handle_read` reads until would-block (else once).
    pub const DRAIN: u16 = 1 << 2;
    /// `handle_read` closes the channel afterwards.
    pub const CLOSE_ON_READ: u16 = 1 << 3;
    /// `handle_read` and `handle_write` return `Err`.
    pub const FAIL: u16 = 1 << 4;
    /// Handlers call `ctx.exit()`.
    pub const EXIT: u16 = 1 << 5;
    /// `handle_eof` keeps writing.
    pub const KEEP_WRITING: u16 = 1 << 6;
    /// `handle_error` closes the channel.
    pub const CLOSE_ON_ERROR: u16 = 1 << 7;
    /// Accepted sockets are added to the map (else closed).
    pub const ADD_ACCEPTED: u16 = 1 << 8;
    /// `handle_write` and `handle_connect` send data.
    pub const SEND: u16 = 1 << 9;
    /// `handle_close` returns `Err`.
    pub const FAIL_CLOSE: u16 = 1 << 10;
    /// `handle_connect` returns `Err`.
    pub const FAIL_CONNECT: u16 = 1 << 11;
    /// `handle_expt` reads priority data.
    pub const READ_PRIORITY: u16 = 1 << 12;
    /// `handle_write` closes the channel afterwards.
    pub const CLOSE_ON_WRITE: u16 = 1 << 13;
    /// `handle_write` shuts down writing.
    pub const SHUTDOWN: u16 = 1 << 14;
    /// `handle_eof` closes and returns `Err`.
    pub const FAIL_READ_CLOSED: u16 = 1 << 15;

    /// Whether `bit` is set.
    pub const fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// One operation of the `readiness` interpreter. `channel` picks the n-th live
/// channel, modulo their number.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Adds a channel.
    Add {
        /// Its socket.
        kind: Kind,
        /// Its dispatcher.
        behavior: Behavior,
    },
    /// Sets a channel's readiness.
    Ready {
        /// Which channel.
        channel: u8,
        /// Any of the six bits.
        bits: Readiness,
        /// For the next wait only (else level-triggered, until changed).
        once: bool,
    },
    /// Data arrives.
    Feed {
        /// Which channel.
        channel: u8,
        /// Bytes.
        len: u8,
    },
    /// After the data, EOF.
    FeedEof {
        /// Which channel.
        channel: u8,
    },
    /// A scripted `recv` result.
    Recv {
        /// Which channel.
        channel: u8,
        /// The result.
        step: RecvStep,
    },
    /// A scripted `send` result.
    Send {
        /// Which channel.
        channel: u8,
        /// The result.
        step: SendStep,
    },
    /// The pending `SO_ERROR`.
    SoError {
        /// Which channel.
        channel: u8,
        /// The error (`None`: none).
        error: Option<SocketError>,
    },
    /// The next `SO_ERROR` query itself fails.
    FailTakeError {
        /// Which channel.
        channel: u8,
        /// The error.
        error: SocketError,
    },
    /// A connection (a fresh id) or an error queued for `accept`.
    Pending {
        /// Which channel.
        channel: u8,
        /// `None`: a connection.
        error: Option<SocketError>,
    },
    /// Priority data arrives.
    Priority {
        /// Which channel.
        channel: u8,
    },
    /// The socket's first `close` reports an error.
    FailClose {
        /// Which channel.
        channel: u8,
        /// The error.
        error: SocketError,
    },
    /// A dispatcher changes its behavior.
    Behave {
        /// Which channel.
        channel: u8,
        /// The new behavior.
        behavior: Behavior,
    },
    /// One pass.
    Pass,
    /// `Reactor::close` from outside.
    Close {
        /// Which channel.
        channel: u8,
    },
    /// `Reactor::remove` from outside.
    Remove {
        /// Which channel.
        channel: u8,
    },
    /// The next wait fails.
    FailWait,
}

fn decode_error(i: &mut Input<'_>) -> Option<SocketError> {
    Some(SocketError::from_errno(
        ERRNOS[i.below(ERRNOS.len() as u8)? as usize],
    ))
}

fn encode_error(e: SocketError, put: &mut impl FnMut(u8)) {
    let code = e.raw_os_error().unwrap_or(0);
    put(ERRNOS.iter().position(|&x| x == code).unwrap_or(0) as u8);
}

/// Operation kinds by weight, in the order of [`Op`]'s variants.
const KINDS: [u8; 64] = super::weights(&[8, 12, 4, 2, 4, 4, 4, 2, 4, 2, 2, 2, 11, 1, 1, 1]);

impl Op {
    /// Reads one operation; `None` when the input runs out.
    pub fn decode(i: &mut Input<'_>) -> Option<Self> {
        Some(match i.kind(&KINDS)? {
            0 => Op::Add {
                kind: [
                    Kind::Listener,
                    Kind::Connecting,
                    Kind::Connected,
                    Kind::Open,
                ][i.below(4)? as usize],
                behavior: Behavior(i.u16()?),
            },
            1 => {
                let channel = i.byte()?;
                let b = i.byte()?;
                Op::Ready {
                    channel,
                    bits: Readiness::from_bits_truncate(b),
                    once: b & 0x40 != 0,
                }
            }
            2 => Op::Feed {
                channel: i.byte()?,
                len: i.byte()?,
            },
            3 => Op::FeedEof { channel: i.byte()? },
            4 => {
                let channel = i.byte()?;
                let step = match i.below(3)? {
                    0 => RecvStep::WouldBlock,
                    1 => RecvStep::Eof,
                    _ => RecvStep::Fail(decode_error(i)?),
                };
                Op::Recv { channel, step }
            }
            5 => {
                let channel = i.byte()?;
                let step = match i.below(3)? {
                    0 => SendStep::WouldBlock,
                    1 => SendStep::Accept(i.byte()? as usize),
                    _ => SendStep::Fail(decode_error(i)?),
                };
                Op::Send { channel, step }
            }
            6 => {
                let channel = i.byte()?;
                let error = if i.flag()? {
                    Some(decode_error(i)?)
                } else {
                    None
                };
                Op::SoError { channel, error }
            }
            7 => Op::FailTakeError {
                channel: i.byte()?,
                error: decode_error(i)?,
            },
            8 => {
                let channel = i.byte()?;
                let error = if i.flag()? {
                    Some(decode_error(i)?)
                } else {
                    None
                };
                Op::Pending { channel, error }
            }
            9 => Op::Priority { channel: i.byte()? },
            10 => Op::FailClose {
                channel: i.byte()?,
                error: decode_error(i)?,
            },
            11 => Op::Behave {
                channel: i.byte()?,
                behavior: Behavior(i.u16()?),
            },
            12 => Op::Pass,
            13 => Op::Close { channel: i.byte()? },
            14 => Op::Remove { channel: i.byte()? },
            _ => Op::FailWait,
        })
    }

    /// Writes the bytes [`decode`](Self::decode) reads back as this operation.
    pub fn encode(&self, put: impl FnMut(u8)) {
        let mut put = super::with_kind(&KINDS, put);
        let put = &mut put;
        match *self {
            Op::Add { kind, behavior } => {
                put(0);
                put(kind as u8);
                behavior.0.to_le_bytes().iter().for_each(|&b| put(b));
            }
            Op::Ready {
                channel,
                bits,
                once,
            } => {
                put(1);
                put(channel);
                put(bits.bits() | if once { 0x40 } else { 0 });
            }
            Op::Feed { channel, len } => {
                put(2);
                put(channel);
                put(len);
            }
            Op::FeedEof { channel } => {
                put(3);
                put(channel);
            }
            Op::Recv { channel, step } => {
                put(4);
                put(channel);
                match step {
                    RecvStep::WouldBlock => put(0),
                    RecvStep::Eof => put(1),
                    RecvStep::Fail(e) => {
                        put(2);
                        encode_error(e, put);
                    }
                }
            }
            Op::Send { channel, step } => {
                put(5);
                put(channel);
                match step {
                    SendStep::WouldBlock => put(0),
                    SendStep::Accept(n) => {
                        put(1);
                        put(n.min(255) as u8);
                    }
                    SendStep::Fail(e) => {
                        put(2);
                        encode_error(e, put);
                    }
                }
            }
            Op::SoError { channel, error } => {
                put(6);
                put(channel);
                match error {
                    None => put(0),
                    Some(e) => {
                        put(1);
                        encode_error(e, put);
                    }
                }
            }
            Op::FailTakeError { channel, error } => {
                put(7);
                put(channel);
                encode_error(error, put);
            }
            Op::Pending { channel, error } => {
                put(8);
                put(channel);
                match error {
                    None => put(0),
                    Some(e) => {
                        put(1);
                        encode_error(e, put);
                    }
                }
            }
            Op::Priority { channel } => {
                put(9);
                put(channel);
            }
            Op::FailClose { channel, error } => {
                put(10);
                put(channel);
                encode_error(error, put);
            }
            Op::Behave { channel, behavior } => {
                put(11);
                put(channel);
                behavior.0.to_le_bytes().iter().for_each(|&b| put(b));
            }
            Op::Pass => put(12),
            Op::Close { channel } => {
                put(13);
                put(channel);
            }
            Op::Remove { channel } => {
                put(14);
                put(channel);
            }
            Op::FailWait => put(15),
        }
    }
}

/// The operations `data` stands for, as the interpreter reads them.
pub fn ops(data: &[u8]) -> impl Iterator<Item = Op> + '_ {
    script::decoded(data, MAX_OPS, Op::decode)
}

/// The first broken invariant of a run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The event checker objected.
    Checker(Violation),
    /// A dispatcher saw its life cycle or the readiness table broken.
    Life(LifeFailure),
}

/// What a run did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Operations decoded and run.
    pub ops: usize,
    /// Passes.
    pub passes: u32,
    /// Callbacks run.
    pub callbacks: u32,
    /// Channels added (by the input and by accepting).
    pub added: u32,
}

struct Shared {
    failure: First<Failure>,
    callbacks: Cell<u32>,
    added: Cell<u32>,
    next_id: Cell<u32>,
}

/// A dispatcher doing what its [`Behavior`] says, checking its life cycle.
struct Rd<'a> {
    behavior: Behavior,
    shared: &'a Shared,
    life: Life,
}

impl core::fmt::Debug for Rd<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Rd")
            .field("behavior", &self.behavior)
            .finish_non_exhaustive()
    }
}

const PAYLOAD: &[u8] = b"0123456789abcdef";

impl<'a> Rd<'a> {
    fn new(behavior: Behavior, shared: &'a Shared, connecting: bool) -> Self {
        Rd {
            behavior,
            shared,
            life: Life::new(connecting),
        }
    }

    fn has(&self, bit: u16) -> bool {
        self.behavior.has(bit)
    }

    fn close(&mut self, ctx: &mut C<'_, 'a>) {
        self.life.close(ctx);
    }

    fn violation(&self, ctx: &C<'_, 'a>, violation: LifeViolation) {
        self.shared.failure.set(Failure::Life(LifeFailure {
            token: ctx.token(),
            violation,
        }));
    }

    /// Whether `event` fits the channel's state and interest.
    fn fits(&self, ctx: &C<'_, 'a>, event: Callback) -> bool {
        let state = ctx.state();
        let read = self.has(Behavior::READ);
        let write = self.has(Behavior::WRITE);
        let stream = matches!(state, State::Open | State::Connected);
        match event {
            Callback::Accept => state == State::Listening && read,
            Callback::Read => stream && read,
            // Urgent data and EOF may arrive in the same wait: the read step may have
            // moved the channel to ReadClosed before the priority step.
            Callback::Expt => (stream || state == State::ReadClosed) && read,
            Callback::Write => (stream || state == State::ReadClosed) && write,
            Callback::Eof => state == State::ReadClosed,
            Callback::Connect => state == State::Connected,
            _ => true,
        }
    }

    fn callback(
        &mut self,
        ctx: &mut C<'_, 'a>,
        event: Callback,
        body: impl FnOnce(&mut Self, &mut C<'_, 'a>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let shared = self.shared;
        shared.callbacks.set(shared.callbacks.get() + 1);
        if let Err(v) = self.life.enter(event) {
            self.violation(ctx, v);
        } else if !self.fits(ctx, event) {
            self.violation(ctx, LifeViolation::OutOfState(event));
        }
        let result = body(self, ctx);
        if self.has(Behavior::EXIT) {
            ctx.exit();
        }
        self.life.leave(event, result.is_err());
        result
    }

    fn read(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        let mut buf = [0u8; 32];
        for _ in 0..16 {
            match ctx.recv(&mut buf)? {
                Recv::Data(_) if self.has(Behavior::DRAIN) => {}
                _ => break,
            }
        }
        if self.has(Behavior::CLOSE_ON_READ) {
            self.close(ctx);
        }
        if self.has(Behavior::FAIL) {
            return Err(Error::Protocol("fuzz: read failed"));
        }
        Ok(())
    }

    fn write(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        if self.has(Behavior::SEND) {
            ctx.send(PAYLOAD)?;
        }
        if self.has(Behavior::SHUTDOWN) {
            ctx.shutdown_write()?;
        }
        if self.has(Behavior::CLOSE_ON_WRITE) {
            self.close(ctx);
        }
        if self.has(Behavior::FAIL) {
            return Err(Error::Protocol("fuzz: write failed"));
        }
        Ok(())
    }

    fn accept(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        for _ in 0..4 {
            let mut socket = match ctx.accept() {
                Ok(Some(s)) => s,
                Ok(None) => break,
                Err(e) if !e.is_fatal_to_listener() => break,
                Err(e) => return Err(e.into()),
            };
            if self.has(Behavior::ADD_ACCEPTED) {
                let child = Rd::new(self.behavior, self.shared, false);
                if script::added(ctx.add(socket, child)).is_some() {
                    self.shared.added.set(self.shared.added.get() + 1);
                }
            } else {
                let _ = socket.close();
            }
            if !ctx.is_open() || ctx.exiting() {
                break;
            }
        }
        Ok(())
    }
}

impl<'a> Dispatcher<MockSocket> for Rd<'a> {
    type Error = Error;

    fn readable(&self) -> bool {
        self.has(Behavior::READ)
    }

    fn writable(&self) -> bool {
        self.has(Behavior::WRITE)
    }

    fn handle_connect(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        self.callback(ctx, Callback::Connect, |me, ctx| {
            if me.has(Behavior::SEND) {
                ctx.send(PAYLOAD)?;
            }
            if me.has(Behavior::FAIL_CONNECT) {
                return Err(Error::Protocol("fuzz: connect failed"));
            }
            Ok(())
        })
    }

    fn handle_connect_failed(&mut self, ctx: &mut C<'_, 'a>, error: SocketError) {
        let _ = error;
        let _ = self.callback(ctx, Callback::ConnectFailed, |_, _| Ok(()));
    }

    fn handle_accept(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        self.callback(ctx, Callback::Accept, |me, ctx| me.accept(ctx))
    }

    fn handle_read(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        self.callback(ctx, Callback::Read, |me, ctx| me.read(ctx))
    }

    fn handle_write(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        self.callback(ctx, Callback::Write, |me, ctx| me.write(ctx))
    }

    fn handle_expt(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        self.callback(ctx, Callback::Expt, |me, ctx| {
            if me.has(Behavior::READ_PRIORITY) {
                let mut buf = [0u8; 8];
                ctx.recv_priority(&mut buf)?;
            }
            Ok(())
        })
    }

    fn handle_eof(&mut self, ctx: &mut C<'_, 'a>) -> Result<AfterEof, Error> {
        let mut decision = AfterEof::Close;
        self.callback(ctx, Callback::Eof, |me, ctx| {
            if me.has(Behavior::FAIL_READ_CLOSED) {
                me.close(ctx);
                return Err(Error::Protocol("fuzz: read-closed failed"));
            }
            if me.has(Behavior::KEEP_WRITING) {
                decision = AfterEof::KeepWriting;
            }
            Ok(())
        })?;
        Ok(decision)
    }

    fn handle_close(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        self.callback(ctx, Callback::Close, |me, _| {
            if me.has(Behavior::FAIL_CLOSE) {
                return Err(Error::Protocol("fuzz: close failed"));
            }
            Ok(())
        })
    }

    fn handle_timeout(&mut self, ctx: &mut C<'_, 'a>) -> Result<(), Error> {
        self.callback(ctx, Callback::Timeout, |_, _| Ok(()))
    }

    fn handle_error(&mut self, ctx: &mut C<'_, 'a>, error: Error) {
        let _ = error;
        let _ = self.callback(ctx, Callback::Error, |me, ctx| {
            if me.has(Behavior::CLOSE_ON_ERROR) {
                me.close(ctx);
            }
            Ok(())
        });
    }

    fn log_info(&mut self, token: Token, level: LogLevel, message: &'static str) {
        let _ = (token, level, message);
    }
}

/// The `n`-th live channel, modulo their number.
fn nth(r: &R<'_>, n: u8) -> Option<Token> {
    script::nth::<CHANNELS>(r.map().tokens(), n)
}

/// The lowest id no live channel uses, like the kernel's lowest free descriptor.
fn free_id(r: &R<'_>, shared: &Shared) -> u32 {
    (1..=IDS)
        .find(|&id| !r.map().iter().any(|c| c.socket.id() == id))
        .unwrap_or_else(|| {
            let id = shared.next_id.get();
            shared.next_id.set(id + 1);
            id
        })
}

/// Runs the operations `data` stands for (see [`ops`]), checking after each one.
///
/// # Errors
/// The first broken invariant.
pub fn run(data: &[u8], hooks: Option<CheckHooks>) -> Result<Report, Failure> {
    let shared = Shared {
        failure: First::new(),
        callbacks: Cell::new(0),
        added: Cell::new(0),
        next_id: Cell::new(IDS + 1),
    };
    let mut r: R<'_> = Reactor::new(MockSelector::new());
    script::watch(&mut r, hooks);
    let mut passes = 0;
    let mut count = 0;
    for op in ops(data) {
        count += 1;
        let target = |channel: u8| nth(&r, channel);
        match op {
            Op::Add { kind, behavior } => {
                let id = free_id(&r, &shared);
                let socket = match kind {
                    Kind::Listener => MockSocket::listener(id),
                    Kind::Connecting => MockSocket::connecting(id),
                    Kind::Connected => MockSocket::connected(id),
                    Kind::Open => {
                        MockSocket::accepted(id, Err(SocketError::from_errno(errno::ENOTCONN)))
                    }
                };
                let rd = Rd::new(behavior, &shared, kind == Kind::Connecting);
                if r.add(socket, rd).is_ok() {
                    shared.added.set(shared.added.get() + 1);
                }
            }
            Op::Ready {
                channel,
                bits,
                once,
            } => {
                if let Some(id) = target(channel)
                    .and_then(|t| r.get(t))
                    .map(|c| c.socket.id())
                {
                    if once {
                        r.selector_mut().set_once(id, bits);
                    } else {
                        r.selector_mut().set_ready(id, bits);
                    }
                }
            }
            Op::Pass => {
                passes += 1;
                // A scripted failing wait is an outcome, not a broken invariant.
                let _ = r.poll_once(Some(Duration::ZERO));
            }
            Op::Close { channel } => {
                if let Some(t) = target(channel) {
                    r.close(t);
                }
            }
            Op::Remove { channel } => {
                if let Some(t) = target(channel) {
                    r.remove(t);
                }
            }
            Op::FailWait => r.selector_mut().fail_next_wait(),
            Op::Pending { channel, error } => {
                let id = free_id(&r, &shared);
                if let Some(c) = target(channel).and_then(|t| r.get_mut(t)) {
                    c.socket.push_pending(error.map_or(Ok(id), Err));
                }
            }
            Op::Feed { channel, .. }
            | Op::FeedEof { channel }
            | Op::Recv { channel, .. }
            | Op::Send { channel, .. }
            | Op::SoError { channel, .. }
            | Op::FailTakeError { channel, .. }
            | Op::Priority { channel }
            | Op::FailClose { channel, .. }
            | Op::Behave { channel, .. } => {
                let Some(c) = target(channel).and_then(|t| r.get_mut(t)) else {
                    continue;
                };
                let s = c.socket;
                match op {
                    Op::Feed { len, .. } => {
                        let data = [b'x'; 255];
                        s.feed(&data[..len as usize]);
                    }
                    Op::FeedEof { .. } => s.feed_eof(),
                    Op::Recv { step, .. } => {
                        s.script_recv(step);
                    }
                    Op::Send { step, .. } => {
                        s.script_send(step);
                    }
                    Op::SoError { error, .. } => s.set_so_error(error),
                    Op::FailTakeError { error, .. } => s.fail_take_error(error),
                    Op::Priority { .. } => s.feed_priority(b"!"),
                    Op::FailClose { error, .. } => s.fail_close(error),
                    Op::Behave { behavior, .. } => c.dispatcher.behavior = behavior,
                    _ => {}
                }
            }
        }
        if let Some(v) = script::verdict(hooks) {
            return Err(Failure::Checker(v));
        }
        if let Some(f) = shared.failure.get() {
            return Err(f);
        }
    }
    let _ = r.close_all();
    if let Some(v) = script::verdict(hooks) {
        return Err(Failure::Checker(v));
    }
    Ok(Report {
        ops: count,
        passes,
        callbacks: shared.callbacks.get(),
        added: shared.added.get(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(ops: &[Op]) -> std::vec::Vec<u8> {
        crate::sim::fuzz::script::encoded(ops, |op, put| op.encode(put))
    }

    #[test]
    fn ops_round_trip() {
        let ops = [
            Op::Add {
                kind: Kind::Connecting,
                behavior: Behavior(Behavior::READ | Behavior::SEND),
            },
            Op::Ready {
                channel: 0,
                bits: Readiness::WRITABLE | Readiness::HANGUP,
                once: true,
            },
            Op::Recv {
                channel: 0,
                step: RecvStep::Fail(SocketError::from_errno(errno::ENOBUFS)),
            },
            Op::Send {
                channel: 3,
                step: SendStep::Accept(7),
            },
            Op::SoError {
                channel: 1,
                error: Some(SocketError::from_errno(errno::ECONNREFUSED)),
            },
            Op::Pending {
                channel: 2,
                error: None,
            },
            Op::Pass,
            Op::FailWait,
        ];
        let bytes = encode(&ops);
        let back: std::vec::Vec<Op> = super::ops(&bytes).collect();
        assert_eq!(back, ops);
    }

    #[test]
    fn a_refused_connect_fails_once_and_closes() {
        let ops = [
            Op::Add {
                kind: Kind::Connecting,
                behavior: Behavior(Behavior::READ),
            },
            Op::SoError {
                channel: 0,
                error: Some(SocketError::from_errno(errno::ECONNREFUSED)),
            },
            Op::Ready {
                channel: 0,
                bits: Readiness::READABLE
                    | Readiness::WRITABLE
                    | Readiness::ERROR
                    | Readiness::HANGUP,
                once: false,
            },
            Op::Pass,
            Op::Pass,
        ];
        let report = run(&encode(&ops), None).unwrap();
        assert_eq!(report.callbacks, 1, "only handle_connect_failed");
    }
}
