//! The `dispatch` interpreter: arbitrary operations over a simulated network and a
//! reactor running an echo server with scriptable handlers.
//!
//! The reactor holds a listener on port 7, the echo connections it accepts, and
//! outbound clients its handlers may add ([`Action::AddClient`]). Up to [`CLIENTS`]
//! simulated clients outside the reactor connect, send, receive, half-close, close
//! and reset, and send TCP urgent bytes; wakes and signals are raised on an event
//! source in the map, now or later; virtual time and fault rates change under the input's control. Any
//! channel can be given a [`Command`]: an [`Action`] it performs from inside one of
//! its callbacks (close itself, fail, exit, add a client, close another channel,
//! poison another channel's socket, set deadlines, shut down writing).
//!
//! Checked after every operation:
//! * the caller's [`TraceChecker`](crate::sim::TraceChecker) (through
//!   [`CheckHooks`]): no callback on a closed channel, at most one close per
//!   channel, no stale token;
//! * each dispatcher's own life cycle ([`LifeViolation`](super::LifeViolation));
//! * every byte a client (inside or outside the reactor) receives is the next byte of
//!   what it sent: the echo is a prefix of the stream, never more;
//! * no simulated receive buffer holds more than [`NET_BUFFER`] bytes;
//! * the reactor's event source delivers only events that were raised, and every
//!   event raised on it (while it is open) is delivered by the end;
//! * no socket is reported ready [`STALL_WAITS`](crate::sim::STALL_WAITS) waits in a
//!   row with nothing done about it (urgent data left unread, a listener retrying a
//!   failing accept every pass: a real loop would spin);
//! * `handle_timeout` runs only once the deadline last set for the channel (by
//!   itself, another channel or from outside) has passed;
//! * the loop itself never fails.
//!
//! At the end every fault is switched off, every client outside the reactor
//! half-closes and the loop runs until they are served: a client whose connection
//! nothing disturbed (no reset, no refused connect, no command that closes or fails
//! a channel, no full map) must get back exactly what it sent, then EOF.

use crate::sim::SimIo;
use core::cell::Cell;
use core::time::Duration;

use super::script::{self, Script, Scripted};
use super::{CheckHooks, First, Input, LifeFailure};
use crate::sim::{FAULTS, Fault, Rng, SimConfig, SimNet, SimSelector, SimSocket, Stall, Violation};
use crate::{
    AfterEof, BufferPool, Callback, Ctx, Dispatcher, Error, InterestMode, LogLevel, Reactor, Recv,
    SendBuffer, Sent, Socket, SourceEvent, Token,
};

/// Simulated clients outside the reactor.
pub const CLIENTS: usize = 4;
/// Sockets of the simulated network (never reused within a run).
pub const NET_SOCKETS: usize = 48;
/// Receive buffer of each simulated socket.
pub const NET_BUFFER: usize = 256;
/// The echo buffer of each served connection.
pub const ECHO_BUFFER: usize = 128;
/// Channels in the reactor's map.
pub const MAP: usize = 8;
/// Operations decoded from one input at most.
pub const MAX_OPS: usize = 192;
/// Bytes an outbound client (added by a handler) sends.
pub const OUT_BYTES: usize = 48;
/// Passes of the final drain.
pub const DRAIN_PASSES: u32 = 300;

const PORT: u16 = 7;
const NOWHERE: u16 = 9;
const SEED: u64 = 0x0d15_ea5e;

type Net = SimNet<NET_SOCKETS, NET_BUFFER>;
type Sock<'n> = SimSocket<'n, NET_SOCKETS, NET_BUFFER>;
/// Buffers of the reactor's pool, and their size: fewer than the channels, so the
/// pool runs out and channels fall back to their own buffers.
pub const POOL: usize = 2;
/// The size of a pool buffer: above the echo buffer and the network's.
pub const POOL_BUFFER: usize = 384;
type Server<'n> =
    Reactor<SimIo<'n, NET_SOCKETS, NET_BUFFER>, Channel<'n>, MAP, 4, BufferPool<POOL, POOL_BUFFER>>;

/// The callbacks a [`Command`] can wait for (`None`: the first callback of any kind).
pub const HOOKS: [Option<Callback>; 9] = [
    None,
    Some(Callback::Read),
    Some(Callback::Write),
    Some(Callback::Accept),
    Some(Callback::Eof),
    Some(Callback::Close),
    Some(Callback::Timeout),
    Some(Callback::Connect),
    Some(Callback::Error),
];

/// What a channel does, on command, from inside a callback.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `ctx.close()`.
    Close,
    /// Return `Err`; `handle_error` then closes.
    Fail,
    /// `ctx.close()` and return `Err` (no `handle_error` may follow).
    FailAfterClose,
    /// Return `Err`; `handle_error` keeps the channel open.
    FailKeep,
    /// `ctx.exit()`.
    Exit,
    /// Connect a new outbound client to the listener and `ctx.add` it.
    AddClient,
    /// Give another channel (the n-th other, modulo) the command to close itself.
    TellClose(u8),
    /// Close another channel's socket behind the reactor's back.
    PoisonOther(u8),
    /// `ctx.set_deadline` in this many milliseconds.
    SetDeadline(u8),
    /// `ctx.set_deadline_for` another channel, in this many milliseconds.
    DeadlineFor(u8, u8),
    /// `ctx.cancel_deadline()`.
    CancelDeadline,
    /// `ctx.shutdown_write()`.
    ShutdownWrite,
}

impl script::Action for Action {
    const HOOKS: &'static [Option<Callback>] = &HOOKS;

    fn decode(i: &mut Input<'_>) -> Option<Self> {
        Some(match i.below(Self::KINDS)? {
            0 => Action::Close,
            1 => Action::Fail,
            2 => Action::FailAfterClose,
            3 => Action::FailKeep,
            4 => Action::Exit,
            5 => Action::AddClient,
            6 => Action::TellClose(i.byte()?),
            7 => Action::PoisonOther(i.byte()?),
            8 => Action::SetDeadline(i.byte()?),
            9 => Action::DeadlineFor(i.byte()?, i.byte()?),
            10 => Action::CancelDeadline,
            _ => Action::ShutdownWrite,
        })
    }

    fn encode(&self, put: &mut impl FnMut(u8)) {
        match *self {
            Action::Close => put(0),
            Action::Fail => put(1),
            Action::FailAfterClose => put(2),
            Action::FailKeep => put(3),
            Action::Exit => put(4),
            Action::AddClient => put(5),
            Action::TellClose(o) => {
                put(6);
                put(o);
            }
            Action::PoisonOther(o) => {
                put(7);
                put(o);
            }
            Action::SetDeadline(ms) => {
                put(8);
                put(ms);
            }
            Action::DeadlineFor(o, ms) => {
                put(9);
                put(o);
                put(ms);
            }
            Action::CancelDeadline => put(10),
            Action::ShutdownWrite => put(11),
        }
    }
}

impl Action {
    const KINDS: u8 = 12;

    /// Whether it may legitimately cut some client's echo short.
    fn disrupts(&self) -> bool {
        !matches!(
            self,
            Action::Exit
                | Action::AddClient
                | Action::SetDeadline(_)
                | Action::DeadlineFor(..)
                | Action::CancelDeadline
        )
    }
}

/// A one-shot order for a channel: run `action` in the first callback of kind `on`
/// (an entry of [`HOOKS`]).
pub type Command = super::Command<Action>;

/// One operation of the `dispatch` interpreter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Client `client` (modulo [`CLIENTS`]) connects to the listener's port, if it has
    /// no socket.
    Connect {
        /// Which client.
        client: u8,
    },
    /// The client connects to a port nobody listens on (refused).
    ConnectNowhere {
        /// Which client.
        client: u8,
    },
    /// The client sends the next `len` bytes of its stream.
    Send {
        /// Which client.
        client: u8,
        /// How many bytes.
        len: u8,
    },
    /// The client reads everything available and checks it.
    Recv {
        /// Which client.
        client: u8,
    },
    /// The client shuts down its sending side.
    ShutdownWrite {
        /// Which client.
        client: u8,
    },
    /// The client closes its socket (the slot can connect again).
    Close {
        /// Which client.
        client: u8,
    },
    /// The client's connection is reset.
    Reset {
        /// Which client.
        client: u8,
    },
    /// Virtual time moves on.
    Advance {
        /// Milliseconds.
        ms: u8,
    },
    /// A fault rate changes.
    SetFault {
        /// Which fault.
        fault: Fault,
        /// Its new rate, per mille (a multiple of 4, at most 1000).
        per_mille: u16,
    },
    /// One reactor pass.
    Pass {
        /// Its timeout, in milliseconds.
        timeout_ms: u8,
    },
    /// `Reactor::run` for up to `passes` passes.
    Run {
        /// Passes, 1 to 8.
        passes: u8,
        /// Timeout of each, in milliseconds.
        timeout_ms: u8,
    },
    /// Gives a channel (the n-th live one, modulo) a [`Command`]. One waiting for
    /// any callback or a timeout also gets a deadline of now, so it runs next pass.
    Command {
        /// Which channel.
        channel: u8,
        /// The order.
        command: Command,
    },
    /// `Reactor::close` on a channel from outside.
    ReactorClose {
        /// Which channel.
        channel: u8,
    },
    /// Listens again on port 7 if the listener is gone.
    Listen,
    /// `Reactor::add_timer`.
    Timer {
        /// Milliseconds.
        after_ms: u8,
    },
    /// `Reactor::set_deadline` from outside (`None`: cancel).
    Deadline {
        /// Which channel.
        channel: u8,
        /// Milliseconds from now.
        after_ms: Option<u8>,
    },
    /// The client sends a TCP urgent byte (outside its stream).
    Urgent {
        /// Which client.
        client: u8,
    },
    /// An event is raised on the reactor's event source now: `Wake` for 0,
    /// `Signal(n)` for n in 1 to 8 (the value modulo 9).
    Raise {
        /// Which event.
        event: u8,
    },
    /// The same, `ms` milliseconds of virtual time from now (while the loop waits
    /// or dispatches).
    RaiseLater {
        /// When.
        ms: u8,
        /// Which event.
        event: u8,
    },
}

/// Operation kinds by weight, in the order of [`Op`]'s variants.
const KINDS: [u8; 32] = super::weights(&[3, 1, 3, 3, 1, 1, 1, 1, 2, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1]);

impl Op {
    /// Reads one operation; `None` when the input runs out.
    pub fn decode(i: &mut Input<'_>) -> Option<Self> {
        let client = |i: &mut Input<'_>| i.below(CLIENTS as u8);
        Some(match i.kind(&KINDS)? {
            0 => Op::Connect { client: client(i)? },
            1 => Op::ConnectNowhere { client: client(i)? },
            2 => Op::Send {
                client: client(i)?,
                len: i.byte()?,
            },
            3 => Op::Recv { client: client(i)? },
            4 => Op::ShutdownWrite { client: client(i)? },
            5 => Op::Close { client: client(i)? },
            6 => Op::Reset { client: client(i)? },
            7 => Op::Advance { ms: i.byte()? },
            8 => Op::SetFault {
                fault: Fault::ALL[i.below(FAULTS as u8)? as usize],
                per_mille: (i.byte()? as u16 * 4).min(1000),
            },
            9 => Op::Pass {
                timeout_ms: i.byte()?,
            },
            10 => Op::Run {
                passes: i.below(8)? + 1,
                timeout_ms: i.byte()?,
            },
            11 => Op::Command {
                channel: i.byte()?,
                command: script::decode_command(i)?,
            },
            12 => Op::ReactorClose { channel: i.byte()? },
            13 => Op::Listen,
            14 => Op::Timer {
                after_ms: i.byte()?,
            },
            15 => {
                let channel = i.byte()?;
                let after = i.byte()?;
                Op::Deadline {
                    channel,
                    after_ms: (after != 255).then_some(after),
                }
            }
            16 => Op::Urgent { client: client(i)? },
            17 => Op::Raise { event: i.byte()? },
            _ => Op::RaiseLater {
                ms: i.byte()?,
                event: i.byte()?,
            },
        })
    }

    /// Writes the bytes [`decode`](Self::decode) reads back as this operation.
    pub fn encode(&self, put: impl FnMut(u8)) {
        let mut put = super::with_kind(&KINDS, put);
        let put = &mut put;
        match *self {
            Op::Connect { client } => {
                put(0);
                put(client);
            }
            Op::ConnectNowhere { client } => {
                put(1);
                put(client);
            }
            Op::Send { client, len } => {
                put(2);
                put(client);
                put(len);
            }
            Op::Recv { client } => {
                put(3);
                put(client);
            }
            Op::ShutdownWrite { client } => {
                put(4);
                put(client);
            }
            Op::Close { client } => {
                put(5);
                put(client);
            }
            Op::Reset { client } => {
                put(6);
                put(client);
            }
            Op::Advance { ms } => {
                put(7);
                put(ms);
            }
            Op::SetFault { fault, per_mille } => {
                put(8);
                put(fault.index() as u8);
                put((per_mille.min(1000) / 4) as u8);
            }
            Op::Pass { timeout_ms } => {
                put(9);
                put(timeout_ms);
            }
            Op::Run { passes, timeout_ms } => {
                put(10);
                put(passes.clamp(1, 8) - 1);
                put(timeout_ms);
            }
            Op::Command { channel, command } => {
                put(11);
                put(channel);
                script::encode_command(&command, put);
            }
            Op::ReactorClose { channel } => {
                put(12);
                put(channel);
            }
            Op::Listen => put(13),
            Op::Timer { after_ms } => {
                put(14);
                put(after_ms);
            }
            Op::Deadline { channel, after_ms } => {
                put(15);
                put(channel);
                put(after_ms.map_or(255, |ms| ms.min(254)));
            }
            Op::Urgent { client } => {
                put(16);
                put(client);
            }
            Op::Raise { event } => {
                put(17);
                put(event);
            }
            Op::RaiseLater { ms, event } => {
                put(18);
                put(ms);
                put(event);
            }
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
    /// A dispatcher saw its life cycle broken.
    Life(LifeFailure),
    /// A client received a byte that is not the next byte it sent.
    EchoMismatch {
        /// The connection's serial number.
        serial: u32,
        /// The position in its stream.
        at: usize,
    },
    /// A client received more than it sent.
    EchoTooLong {
        /// The connection's serial number.
        serial: u32,
    },
    /// An undisturbed client did not get all of its echo back, then EOF.
    Truncated {
        /// The connection's serial number.
        serial: u32,
        /// Bytes back.
        received: usize,
        /// Bytes sent.
        sent: usize,
        /// Whether it saw EOF.
        eof: bool,
    },
    /// A receive buffer held more than its capacity.
    Overflow {
        /// Bytes held.
        buffered: usize,
    },
    /// `handle_timeout` ran before the channel's deadline, or with none set.
    Deadline {
        /// The channel.
        token: Token,
        /// The time of the pass.
        now: Duration,
        /// The deadline last set (`None`: none, or cancelled).
        deadline: Option<Duration>,
    },
    /// The event source delivered an event nobody raised (or one raised once, twice).
    SpuriousEvent(SourceEvent),
    /// An event raised on the source, still open at the end, was never delivered.
    LostEvent {
        /// The raised and undelivered events: bit 0 `Wake`, bit n `Signal(n)`.
        pending: u32,
    },
    /// The selector kept reporting a socket ready while nothing serviced it: a
    /// handler left readiness unconsumed and a real loop would spin.
    Unserviced(Stall),
    /// A reactor pass failed.
    Loop,
}

script::net_failure!(Failure);

/// What a run did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Operations decoded and run.
    pub ops: usize,
    /// Reactor passes, the drain included.
    pub passes: u32,
    /// Clients checked for a complete echo at the end.
    pub complete: usize,
    /// Bytes echoed back to clients and verified.
    pub echoed: u64,
    /// Commands executed by handlers.
    pub commands: u32,
    /// How often each fault fired.
    pub fired: [u32; FAULTS],
    /// The network's trace hash.
    pub trace_hash: u64,
    /// The most buffers of the reactor's pool lent at once ([`POOL`]: it ran out).
    pub pool_peak: usize,
}

/// State the handlers share with the interpreter.
struct Shared<'n> {
    net: &'n Net,
    failure: First<Failure>,
    /// Bumped by everything that may legitimately cut an echo short.
    epoch: Cell<u32>,
    serial: Cell<u32>,
    commands: Cell<u32>,
    echoed: Cell<u64>,
    /// Events raised on the source now and not yet delivered (bit 0: `Wake`, bit
    /// n: `Signal(n)`).
    pending: Cell<u32>,
    /// Events ever scheduled for later on the source (they may be delivered any
    /// time after).
    scheduled: Cell<u32>,
    /// Channels created.
    created: Cell<u32>,
}

impl Shared<'_> {
    fn disrupt(&self) {
        self.epoch.set(self.epoch.get() + 1);
    }

    /// The source delivered `event`: it must have been raised.
    fn delivered(&self, event: SourceEvent) {
        let bit = event_bit(event);
        if (self.pending.get() | self.scheduled.get()) & bit == 0 {
            self.failure.set(Failure::SpuriousEvent(event));
        }
        self.pending.set(self.pending.get() & !bit);
    }

    fn next_serial(&self) -> u32 {
        let s = self.serial.get();
        self.serial.set(s + 1);
        s
    }
}

/// The event an operation's byte stands for.
fn event_of(b: u8) -> SourceEvent {
    match b % 9 {
        0 => SourceEvent::Wake,
        n => SourceEvent::Signal(n as i32),
    }
}

/// An event's bit in [`Shared::pending`].
fn event_bit(e: SourceEvent) -> u32 {
    match e {
        SourceEvent::Wake => 1,
        SourceEvent::Signal(n) if (1..=8).contains(&n) => 1 << n,
        _ => 1 << 31,
    }
}

/// Byte `i` of connection `serial`'s stream.
fn stream_byte(serial: u32, i: usize) -> u8 {
    Rng::new(((serial as u64) << 32) ^ i as u64 ^ 0xa5a5_0000_0000_0000).byte()
}

/// Checks `data`, received at position `received` of `serial`'s stream of which
/// `sent` bytes went out.
fn verify(serial: u32, received: usize, sent: usize, data: &[u8]) -> Result<(), Failure> {
    if received + data.len() > sent {
        return Err(Failure::EchoTooLong { serial });
    }
    for (j, &b) in data.iter().enumerate() {
        if b != stream_byte(serial, received + j) {
            return Err(Failure::EchoMismatch {
                serial,
                at: received + j,
            });
        }
    }
    Ok(())
}

enum Role {
    Listener,
    /// The reactor's event source.
    Source,
    Echo {
        out: SendBuffer<ECHO_BUFFER>,
        peer_done: bool,
    },
    Out {
        serial: u32,
        sent: usize,
        received: usize,
        write_shut: bool,
    },
}

/// A channel of the interpreter's reactor: listener, echo connection or outbound
/// client, with a pending [`Command`] and a life-cycle check.
struct Channel<'n> {
    role: Role,
    shared: &'n Shared<'n>,
    script: Script<Action>,
    /// The deadline last set for it, by anyone.
    deadline: Option<Duration>,
    /// When its interest is asked: channels alternate between the two modes, so
    /// every script runs both (the reactor audits the on-change ones).
    mode: InterestMode,
}

impl core::fmt::Debug for Channel<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let role = match self.role {
            Role::Listener => "listener",
            Role::Source => "source",
            Role::Echo { .. } => "echo",
            Role::Out { .. } => "out",
        };
        f.debug_struct("Channel")
            .field("role", &role)
            .field("command", &self.script.command)
            .finish_non_exhaustive()
    }
}

type C<'a, 'n> = Ctx<'a, Sock<'n>, Channel<'n>>;

impl<'n> Channel<'n> {
    fn new(role: Role, shared: &'n Shared<'n>, connecting: bool) -> Self {
        Channel {
            role,
            shared,
            script: Script::new(connecting),
            deadline: None,
            mode: if shared
                .created
                .replace(shared.created.get() + 1)
                .is_multiple_of(2)
            {
                InterestMode::OnChange
            } else {
                InterestMode::EveryPass
            },
        }
    }

    fn close(&mut self, ctx: &mut C<'_, 'n>) {
        self.script.life.close(ctx);
    }

    fn accept(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        for _ in 0..crate::ACCEPT_BATCH {
            let socket = match ctx.accept() {
                Ok(Some(s)) => s,
                Ok(None) => break,
                Err(e) if !e.is_fatal_to_listener() => break,
                Err(e) => return Err(e.into()),
            };
            let conn = Channel::new(
                Role::Echo {
                    out: SendBuffer::new(),
                    peer_done: false,
                },
                self.shared,
                false,
            );
            if script::added(ctx.add(socket, conn)).is_none() {
                // A full map: the client is turned away.
                self.shared.disrupt();
            }
            if !ctx.is_open() || ctx.exiting() {
                break;
            }
        }
        Ok(())
    }

    fn read(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        let shared = self.shared;
        match &mut self.role {
            Role::Listener | Role::Source => Ok(()),
            Role::Echo { out, .. } if ctx.token().index().is_multiple_of(2) => {
                // Straight into the send buffer: through a buffer of the reactor's
                // pool when one is free, else into its own ring.
                while out.free() > 0 {
                    match out.recv_from(ctx)?.0 {
                        Recv::Data(_) => {}
                        Recv::Eof | Recv::WouldBlock => break,
                    }
                }
                self.flush(ctx)
            }
            Role::Echo { out, .. } => {
                let mut buf = [0u8; ECHO_BUFFER];
                while out.free() > 0 {
                    let room = out.free();
                    match ctx.recv(&mut buf[..room])? {
                        Recv::Data(n) => {
                            out.queue(&buf[..n]);
                        }
                        Recv::Eof | Recv::WouldBlock => break,
                    }
                }
                self.flush(ctx)
            }
            Role::Out {
                serial,
                sent,
                received,
                ..
            } => {
                let mut buf = [0u8; 64];
                loop {
                    match ctx.recv(&mut buf)? {
                        Recv::Data(n) => {
                            if let Err(f) = verify(*serial, *received, *sent, &buf[..n]) {
                                shared.failure.set(f);
                            }
                            *received += n;
                            shared.echoed.set(shared.echoed.get() + n as u64);
                        }
                        Recv::Eof | Recv::WouldBlock => return Ok(()),
                    }
                }
            }
        }
    }

    fn flush(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        match &mut self.role {
            Role::Echo { out, peer_done } => {
                out.flush(ctx)?;
                if *peer_done && out.is_empty() {
                    self.close(ctx);
                }
            }
            Role::Out {
                serial,
                sent,
                write_shut,
                ..
            } => {
                let mut buf = [0u8; OUT_BYTES];
                let n = OUT_BYTES - *sent;
                for (j, b) in buf[..n].iter_mut().enumerate() {
                    *b = stream_byte(*serial, *sent + j);
                }
                if n > 0 {
                    *sent += ctx.send(&buf[..n])?;
                }
                if *sent == OUT_BYTES && !*write_shut {
                    *write_shut = true;
                    let _ = ctx.shutdown_write();
                }
            }
            Role::Listener | Role::Source => {}
        }
        Ok(())
    }
}

impl<'n> Scripted<Sock<'n>> for Channel<'n> {
    type Action = Action;

    fn script(&mut self) -> &mut Script<Action> {
        &mut self.script
    }

    fn broken(&self, failure: LifeFailure) {
        self.shared.failure.set(Failure::Life(failure));
    }

    fn perform(&mut self, ctx: &mut C<'_, 'n>, action: Action) -> Result<(), Error> {
        let shared = self.shared;
        shared.commands.set(shared.commands.get() + 1);
        if action.disrupts() {
            shared.disrupt();
        }
        let now = ctx.now().unwrap_or_default();
        match action {
            Action::Close => self.close(ctx),
            Action::Fail => return self.script.fail(false),
            Action::FailAfterClose => {
                self.close(ctx);
                return self.script.fail(false);
            }
            Action::FailKeep => return self.script.fail(true),
            Action::Exit => ctx.exit(),
            Action::AddClient => {
                if let Ok(socket) = shared.net.connect(PORT) {
                    let out = Channel::new(
                        Role::Out {
                            serial: shared.next_serial(),
                            sent: 0,
                            received: 0,
                            write_shut: false,
                        },
                        shared,
                        true,
                    );
                    script::added(ctx.add(socket, out));
                }
            }
            Action::TellClose(n) => {
                if let Some(t) = other(ctx, n) {
                    let set = ctx.set_timeout_for(t, Duration::ZERO) == Ok(true);
                    if let Some(c) = ctx.channel(t) {
                        c.dispatcher.script.command = Some(Command {
                            on: None,
                            action: Action::Close,
                        });
                        if set {
                            c.dispatcher.deadline = Some(now);
                        }
                    }
                }
            }
            Action::PoisonOther(n) => {
                if let Some(c) = other(ctx, n).and_then(|t| ctx.channel(t)) {
                    let _ = c.socket.close();
                }
            }
            Action::SetDeadline(ms) => {
                let after = Duration::from_millis(ms as u64);
                if ctx.set_timeout(after).is_ok() {
                    self.deadline = Some(now + after);
                }
            }
            Action::DeadlineFor(n, ms) => {
                let after = Duration::from_millis(ms as u64);
                if let Some(t) = other(ctx, n)
                    && ctx.set_timeout_for(t, after) == Ok(true)
                    && let Some(c) = ctx.channel(t)
                {
                    c.dispatcher.deadline = Some(now + after);
                }
            }
            Action::CancelDeadline => {
                ctx.cancel_deadline();
                self.deadline = None;
            }
            Action::ShutdownWrite => {
                let _ = ctx.shutdown_write();
            }
        }
        Ok(())
    }
}

/// The token of the `n`-th other channel, modulo their number.
fn other(ctx: &mut C<'_, '_>, n: u8) -> Option<Token> {
    script::nth::<MAP>(ctx.others().map(|c| c.token), n)
}

impl<'n> Dispatcher<Sock<'n>> for Channel<'n> {
    type Error = Error;

    fn readable(&self) -> bool {
        match &self.role {
            Role::Listener | Role::Source | Role::Out { .. } => true,
            Role::Echo { out, peer_done } => !*peer_done && out.free() > 0,
        }
    }

    fn interest_mode(&self) -> InterestMode {
        self.mode
    }

    fn writable(&self) -> bool {
        match &self.role {
            Role::Listener | Role::Source => false,
            Role::Echo { out, .. } => out.wants_write(),
            Role::Out {
                sent, write_shut, ..
            } => *sent < OUT_BYTES || !*write_shut,
        }
    }

    fn handle_connect(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        self.callback(ctx, Callback::Connect, |me, ctx| me.flush(ctx))
    }

    fn handle_connect_failed(&mut self, ctx: &mut C<'_, 'n>, error: crate::SocketError) {
        let _ = error;
        let _ = self.callback(ctx, Callback::ConnectFailed, |_, _| Ok(()));
    }

    fn handle_accept(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        self.callback(ctx, Callback::Accept, |me, ctx| me.accept(ctx))
    }

    fn handle_read(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        self.callback(ctx, Callback::Read, |me, ctx| me.read(ctx))
    }

    fn handle_write(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        self.callback(ctx, Callback::Write, |me, ctx| me.flush(ctx))
    }

    fn handle_expt(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        self.callback(ctx, Callback::Expt, |_, ctx| {
            let mut urgent = [0u8; 1];
            ctx.recv_priority(&mut urgent)?;
            Ok(())
        })
    }

    fn handle_eof(&mut self, ctx: &mut C<'_, 'n>) -> Result<AfterEof, Error> {
        let mut decision = AfterEof::Close;
        self.callback(ctx, Callback::Eof, |me, ctx| {
            if let Role::Echo { peer_done, .. } = &mut me.role {
                // Send back what is still buffered, then close.
                *peer_done = true;
                decision = AfterEof::KeepWriting;
                me.flush(ctx)?;
            }
            Ok(())
        })?;
        Ok(decision)
    }

    fn handle_close(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        self.callback(ctx, Callback::Close, |_, _| Ok(()))
    }

    fn handle_event(&mut self, ctx: &mut C<'_, 'n>, event: SourceEvent) -> Result<(), Error> {
        self.shared.delivered(event);
        self.callback(ctx, Callback::Event, |_, _| Ok(()))
    }

    fn handle_timeout(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        // Due, and due now: the deadline is cleared before the call.
        let now = ctx.now().unwrap_or_default();
        match self.deadline.take() {
            Some(at) if at <= now => {}
            deadline => self.shared.failure.set(Failure::Deadline {
                token: ctx.token(),
                now,
                deadline,
            }),
        }
        self.callback(ctx, Callback::Timeout, |_, _| Ok(()))
    }

    fn handle_error(&mut self, ctx: &mut C<'_, 'n>, error: Error) {
        let _ = error;
        self.on_error(ctx);
    }

    fn log_info(&mut self, token: Token, level: LogLevel, message: &'static str) {
        let _ = (token, level, message);
    }
}

/// A simulated client outside the reactor.
struct Client<'n> {
    sock: Option<Sock<'n>>,
    serial: u32,
    sent: usize,
    received: usize,
    write_shut: bool,
    eof: bool,
    broken: bool,
    epoch: u32,
}

impl<'n> Client<'n> {
    const EMPTY: Self = Client {
        sock: None,
        serial: 0,
        sent: 0,
        received: 0,
        write_shut: false,
        eof: false,
        broken: false,
        epoch: 0,
    };

    fn connect(&mut self, shared: &Shared<'n>, port: u16) {
        if self.sock.is_some() {
            return;
        }
        if let Ok(s) = shared.net.connect(port) {
            *self = Client {
                sock: Some(s),
                serial: shared.next_serial(),
                epoch: shared.epoch.get(),
                broken: port != PORT,
                ..Client::EMPTY
            };
        }
    }

    fn send(&mut self, len: usize) {
        let Some(sock) = self.sock.as_mut() else {
            return;
        };
        if self.write_shut || self.broken {
            return;
        }
        let mut buf = [0u8; 256];
        let len = len.min(buf.len());
        for (j, b) in buf[..len].iter_mut().enumerate() {
            *b = stream_byte(self.serial, self.sent + j);
        }
        match sock.send(&buf[..len]) {
            Ok(Sent::Bytes(n)) => self.sent += n,
            Ok(Sent::WouldBlock) => {}
            Err(_) => self.broken = true,
        }
    }

    fn recv(&mut self, shared: &Shared<'n>) -> Result<(), Failure> {
        let Some(sock) = self.sock.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; 128];
        for _ in 0..64 {
            match sock.recv(&mut buf) {
                Ok(Recv::Data(n)) => {
                    verify(self.serial, self.received, self.sent, &buf[..n])?;
                    self.received += n;
                    shared.echoed.set(shared.echoed.get() + n as u64);
                }
                Ok(Recv::Eof) => {
                    self.eof = true;
                    break;
                }
                Ok(Recv::WouldBlock) => break,
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Whether the final drain still waits for it.
    fn draining(&self) -> bool {
        self.sock.is_some() && !self.broken && !self.eof
    }
}

/// Runs the operations `data` stands for (see [`ops`]), checking after each one.
///
/// # Errors
/// The first broken invariant.
pub fn run(data: &[u8], hooks: Option<CheckHooks>) -> Result<Report, Failure> {
    let net: Net = SimNet::new(SimConfig::quiet(SEED));
    let shared = Shared {
        net: &net,
        failure: First::new(),
        epoch: Cell::new(0),
        serial: Cell::new(0),
        commands: Cell::new(0),
        echoed: Cell::new(0),
        pending: Cell::new(0),
        scheduled: Cell::new(0),
        created: Cell::new(0),
    };
    let mut r: Server<'_> = Reactor::new(SimSelector::new(&net));
    script::watch(&mut r, hooks);
    r.set_interest_audit(true);
    let mut listener = add_listener(&mut r, &shared, None);
    let source = add_source(&mut r, &shared);
    let mut clients: [Client<'_>; CLIENTS] = [const { Client::EMPTY }; CLIENTS];
    let mut passes = 0u32;
    let mut count = 0;
    let check = || script::check(hooks, &shared.failure, &net);

    for op in ops(data) {
        count += 1;
        match op {
            Op::Connect { client } => clients[client as usize].connect(&shared, PORT),
            Op::ConnectNowhere { client } => clients[client as usize].connect(&shared, NOWHERE),
            Op::Send { client, len } => clients[client as usize].send(len as usize),
            Op::Recv { client } => clients[client as usize].recv(&shared)?,
            Op::ShutdownWrite { client } => {
                let c = &mut clients[client as usize];
                if let Some(s) = c.sock.as_mut()
                    && !c.write_shut
                    && s.shutdown_write().is_ok()
                {
                    c.write_shut = true;
                }
            }
            Op::Close { client } => {
                let c = &mut clients[client as usize];
                if let Some(mut s) = c.sock.take() {
                    let _ = s.close();
                }
            }
            Op::Reset { client } => {
                let c = &mut clients[client as usize];
                if let Some(s) = c.sock.as_ref() {
                    net.reset(s);
                    c.broken = true;
                }
            }
            Op::Advance { ms } => net.advance(Duration::from_millis(ms as u64)),
            Op::SetFault { fault, per_mille } => net.set_rate(fault, per_mille),
            Op::Pass { timeout_ms } => script::drive(&mut r, &mut passes, None, timeout_ms)?,
            Op::Run {
                passes: n,
                timeout_ms,
            } => script::drive(&mut r, &mut passes, Some(n), timeout_ms)?,
            Op::Command { channel, command } => {
                if let Some(t) = nth(&r, channel) {
                    let now = r.now().unwrap_or_default();
                    let wake = matches!(command.on, None | Some(Callback::Timeout))
                        && r.set_deadline(t, Some(now)) == Ok(true);
                    if let Some(c) = r.get_mut(t) {
                        c.dispatcher.script.command = Some(command);
                        if wake {
                            c.dispatcher.deadline = Some(now);
                        }
                    }
                }
            }
            Op::ReactorClose { channel } => {
                if let Some(t) = nth(&r, channel) {
                    shared.disrupt();
                    r.close(t);
                }
            }
            Op::Listen => {
                if r.get(listener).is_none() {
                    listener = add_listener(&mut r, &shared, Some(listener));
                }
            }
            Op::Timer { after_ms } => {
                let _ = r.add_timer(Duration::from_millis(after_ms as u64));
                let _ = r.take_fired_timer();
            }
            Op::Urgent { client } => {
                let c = &clients[client as usize];
                if let Some(s) = c.sock.as_ref().filter(|_| !c.write_shut && !c.broken) {
                    let _ = s.send_urgent(b'!');
                }
            }
            Op::Raise { event } => {
                let event = event_of(event);
                if let Some(src) = source.and_then(|t| r.get(t))
                    && net.raise(src.socket, event)
                {
                    shared.pending.set(shared.pending.get() | event_bit(event));
                }
            }
            Op::RaiseLater { ms, event } => {
                let event = event_of(event);
                let at = net.now() + Duration::from_millis(ms as u64);
                if let Some(src) = source.and_then(|t| r.get(t))
                    && net.raise_at(src.socket, at, event)
                {
                    shared
                        .scheduled
                        .set(shared.scheduled.get() | event_bit(event));
                }
            }
            Op::Deadline { channel, after_ms } => {
                if let Some(t) = nth(&r, channel) {
                    let at = after_ms
                        .map(|ms| r.now().unwrap_or_default() + Duration::from_millis(ms as u64));
                    if r.set_deadline(t, at) == Ok(true)
                        && let Some(c) = r.get_mut(t)
                    {
                        c.dispatcher.deadline = at;
                    }
                }
            }
        }
        check()?;
    }

    // The drain: no more faults; every client half-closes and waits for its echo.
    for f in Fault::ALL {
        net.set_rate(f, 0);
    }
    for _ in 0..DRAIN_PASSES {
        if !clients.iter().any(Client::draining) {
            break;
        }
        script::drive(&mut r, &mut passes, None, 10)?;
        check()?;
        for c in clients.iter_mut() {
            let Some(sock) = c.sock.as_mut() else {
                continue;
            };
            if !net.is_established(sock) {
                if net.readiness(sock).is_error() {
                    c.broken = true;
                }
                continue;
            }
            if !c.write_shut && sock.shutdown_write().is_ok() {
                c.write_shut = true;
            }
            c.recv(&shared)?;
        }
        if r.is_empty() {
            net.advance(Duration::from_millis(10));
        }
    }
    // Every event raised on a source still open is delivered once time passes the
    // last scheduled raise.
    if source.is_some_and(|t| r.get(t).is_some()) {
        for _ in 0..4 {
            net.advance(Duration::from_millis(256));
            r.poll_once(Some(Duration::ZERO))
                .map_err(|_| Failure::Loop)?;
            check()?;
        }
        if source.is_some_and(|t| r.get(t).is_some()) && shared.pending.get() != 0 {
            return Err(Failure::LostEvent {
                pending: shared.pending.get(),
            });
        }
    }
    let mut complete = 0;
    for c in clients.iter() {
        if c.sock.is_none() || c.broken || c.epoch != shared.epoch.get() {
            continue;
        }
        if !c.eof || c.received != c.sent {
            return Err(Failure::Truncated {
                serial: c.serial,
                received: c.received,
                sent: c.sent,
                eof: c.eof,
            });
        }
        complete += 1;
    }
    let _ = r.close_all();
    check()?;
    Ok(Report {
        ops: count,
        passes,
        complete,
        echoed: shared.echoed.get(),
        commands: shared.commands.get(),
        fired: net.fired(),
        trace_hash: net.trace_hash(),
        pool_peak: r.pool().peak(),
    })
}

/// The `n`-th live channel, modulo their number.
fn nth(r: &Server<'_>, n: u8) -> Option<Token> {
    script::nth::<MAP>(r.map().tokens(), n)
}

/// Adds the reactor's event source; `None` if it could not be.
fn add_source<'n>(r: &mut Server<'n>, shared: &'n Shared<'n>) -> Option<Token> {
    let socket = shared.net.source().ok()?;
    r.add(socket, Channel::new(Role::Source, shared, false))
        .ok()
}

/// Listens on the port and adds the listener; returns its token (or `old` if that
/// failed).
fn add_listener<'n>(r: &mut Server<'n>, shared: &'n Shared<'n>, old: Option<Token>) -> Token {
    let fallback = old.unwrap_or(Token::new(u32::MAX, 0));
    let Ok(socket) = shared.net.listen(PORT) else {
        return fallback;
    };
    script::added(r.add(socket, Channel::new(Role::Listener, shared, false))).unwrap_or(fallback)
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
            Op::Connect { client: 1 },
            Op::Send {
                client: 1,
                len: 200,
            },
            Op::SetFault {
                fault: Fault::Reset,
                per_mille: 40,
            },
            Op::Run {
                passes: 3,
                timeout_ms: 5,
            },
            Op::Command {
                channel: 2,
                command: Command {
                    on: Some(Callback::Eof),
                    action: Action::DeadlineFor(1, 9),
                },
            },
            Op::Deadline {
                channel: 0,
                after_ms: None,
            },
            Op::Listen,
        ];
        let bytes = encode(&ops);
        let back: std::vec::Vec<Op> = super::ops(&bytes).collect();
        assert_eq!(back, ops);
    }

    #[test]
    fn a_plain_echo_completes() {
        let ops = [
            Op::Connect { client: 0 },
            Op::Connect { client: 1 },
            Op::Run {
                passes: 4,
                timeout_ms: 1,
            },
            Op::Send {
                client: 0,
                len: 100,
            },
            Op::Send {
                client: 1,
                len: 255,
            },
            Op::Run {
                passes: 8,
                timeout_ms: 1,
            },
            Op::Recv { client: 0 },
        ];
        let report = run(&encode(&ops), None).unwrap();
        assert_eq!(report.complete, 2);
        assert_eq!(report.echoed, 355);
    }
}
