//! The `dgram` interpreter: arbitrary operations over the simulated datagram network
//! and a reactor running a datagram echo server and datagram clients.
//!
//! The reactor holds an echo server bound to port 7 (it echoes every datagram to its
//! sender through a [`DatagramQueue`], reading into its own buffer or one the
//! reactor's pool lends) and datagram clients the input adds
//! ([`Op::AddClient`]: connected to the server or not, or connected to a port nobody
//! is bound to), which send numbered datagrams and check what comes back. Up to
//! [`CLIENTS`] simulated sockets outside the reactor send datagrams of any size
//! (above [`MAX_DATAGRAM`]: `EMSGSIZE`) and read their
//! echoes. The input also changes the network (loss, duplication, reordering,
//! latency), the would-block fault, time, takes the server down and up again, closes
//! channels from outside and gives channels [`Command`]s (close, fail, close another
//! channel's socket behind the reactor's back, send a burst).
//!
//! Checked after every operation:
//! * the caller's [`TraceChecker`](crate::sim::TraceChecker) (through
//!   [`CheckHooks`]): no callback on a closed channel, at most one close, no stale
//!   token;
//! * each dispatcher's life cycle ([`LifeViolation`](super::LifeViolation));
//! * a datagram channel gets `handle_close` only when its socket was closed behind
//!   its back (invalid), never for a socket error; `ECONNREFUSED` reaches only
//!   connected channels, and never closes them;
//! * every echo is, byte for byte and whole, a datagram its receiver sent (the
//!   network may lose, duplicate and reorder, never alter or invent);
//! * no receive buffer over capacity, no socket left ready unserviced
//!   ([`STALL_WAITS`](crate::sim::STALL_WAITS)), the loop never fails.
//!
//! At the end the network is made quiet, the server brought up, and each client
//! outside the reactor sends one last datagram: it must come back.

use core::cell::Cell;
use core::time::Duration;

use heapless::Vec;

use super::script::{self, Script, Scripted};
use super::{CheckHooks, First, Input, LifeFailure};
use crate::sim::{
    DGRAM_FAULTS, DgramConfig, Fault, MAX_DATAGRAM, Rng, SimAddr, SimConfig, SimIo, SimNet,
    SimSelector, SimSocket, Stall, Violation,
};
use crate::{
    BufferPool, Callback, Ctx, Datagram, DatagramQueue, Dispatcher, Error, ErrorKind, LogLevel,
    QueueError, Reactor, Received, Sent, Socket, Token,
};

/// Simulated sockets outside the reactor.
pub const CLIENTS: usize = 4;
/// Sockets of the simulated network (never reused within a run).
pub const NET_SOCKETS: usize = 48;
/// Receive buffer of each simulated socket.
pub const NET_BUFFER: usize = 512;
/// Channels in the reactor's map.
pub const MAP: usize = 8;
/// Operations decoded from one input at most.
pub const MAX_OPS: usize = 192;
/// Passes of the final drain.
pub const DRAIN_PASSES: u32 = 300;
/// The size of the reactor's one lent buffer.
pub const POOL_BUFFER: usize = 512;

const PORT: u16 = 7;
const NOWHERE: u16 = 9;
/// The seed of the network's generator (a constant: the input decides the rest).
const SEED: u64 = 0x0d6a_4f00;

type Net = SimNet<NET_SOCKETS, NET_BUFFER>;
type Sock<'n> = SimSocket<'n, NET_SOCKETS, NET_BUFFER>;
type Server<'n> =
    Reactor<SimIo<'n, NET_SOCKETS, NET_BUFFER>, Chan<'n>, MAP, 4, BufferPool<1, POOL_BUFFER>>;

/// The callbacks a [`Command`] can wait for (`None`: the first callback of any kind).
pub const HOOKS: [Option<Callback>; 4] = [
    None,
    Some(Callback::Read),
    Some(Callback::Write),
    Some(Callback::Error),
];

/// What a channel does, on command, from inside a callback.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `ctx.close()`.
    Close,
    /// Return `Err`; `handle_error` then closes.
    Fail,
    /// Return `Err`; `handle_error` keeps the channel open.
    FailKeep,
    /// Close another channel's socket (the n-th other, modulo) behind the reactor's
    /// back: it becomes invalid and gets `handle_close`.
    Poison(u8),
    /// Queue this many more datagrams (a client) and send what the socket takes.
    Burst(u8),
}

impl Action {
    const KINDS: u8 = 5;
}

impl script::Action for Action {
    const HOOKS: &'static [Option<Callback>] = &HOOKS;

    fn decode(i: &mut Input<'_>) -> Option<Self> {
        Some(match i.below(Self::KINDS)? {
            0 => Action::Close,
            1 => Action::Fail,
            2 => Action::FailKeep,
            3 => Action::Poison(i.byte()?),
            _ => Action::Burst(i.byte()?),
        })
    }

    fn encode(&self, put: &mut impl FnMut(u8)) {
        match *self {
            Action::Close => put(0),
            Action::Fail => put(1),
            Action::FailKeep => put(2),
            Action::Poison(n) => {
                put(3);
                put(n);
            }
            Action::Burst(n) => {
                put(4);
                put(n);
            }
        }
    }
}

/// A one-shot order for a channel: run `action` in the first callback of kind `on`
/// (an entry of [`HOOKS`]).
pub type Command = super::Command<Action>;

/// One operation of the `dgram` interpreter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Client `client` (modulo [`CLIENTS`]) sends a datagram of `len` bytes to the
    /// server's port (a socket is made for it if it has none).
    Send {
        /// Which client.
        client: u8,
        /// Its length (above the network's largest: refused with `EMSGSIZE`).
        len: u16,
    },
    /// The client reads everything waiting and checks it.
    Recv {
        /// Which client.
        client: u8,
    },
    /// The client closes its socket; its next send uses a new one (a new port).
    Reopen {
        /// Which client.
        client: u8,
    },
    /// Virtual time moves on.
    Advance {
        /// Milliseconds.
        ms: u8,
    },
    /// The network changes.
    Network {
        /// Loss, per mille / 4.
        loss: u8,
        /// Duplication, per mille / 4.
        duplicate: u8,
        /// Reordering, per mille / 4.
        reorder: u8,
        /// Latency in units of 50 µs (0: 10 µs).
        latency: u8,
    },
    /// The rate of would-block after readiness, per mille / 4.
    WouldBlock {
        /// The rate.
        rate: u8,
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
    /// The server's channel is closed from outside (its port goes dead).
    ServerDown,
    /// A new server is bound to the port, if none is.
    ServerUp,
    /// A datagram client channel joins the reactor and sends `count` datagrams.
    AddClient {
        /// Connected (it hears of a closed port) or not.
        connected: bool,
        /// To a port nobody is bound to.
        dead: bool,
        /// Datagrams to send.
        count: u8,
    },
    /// Gives a channel (the n-th live one, modulo) a [`Command`].
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
}

/// Operation kinds by weight, in the order of [`Op`]'s variants.
const KINDS: [u8; 32] = super::weights(&[6, 4, 1, 2, 2, 1, 4, 3, 1, 1, 2, 3, 2]);

impl Op {
    /// Reads one operation; `None` when the input runs out.
    pub fn decode(i: &mut Input<'_>) -> Option<Self> {
        let client = |i: &mut Input<'_>| i.below(CLIENTS as u8);
        Some(match i.kind(&KINDS)? {
            0 => Op::Send {
                client: client(i)?,
                len: i.u16()? % 640,
            },
            1 => Op::Recv { client: client(i)? },
            2 => Op::Reopen { client: client(i)? },
            3 => Op::Advance { ms: i.byte()? },
            4 => Op::Network {
                loss: i.byte()?,
                duplicate: i.byte()?,
                reorder: i.byte()?,
                latency: i.byte()?,
            },
            5 => Op::WouldBlock { rate: i.byte()? },
            6 => Op::Pass {
                timeout_ms: i.byte()?,
            },
            7 => Op::Run {
                passes: i.below(8)? + 1,
                timeout_ms: i.byte()?,
            },
            8 => Op::ServerDown,
            9 => Op::ServerUp,
            10 => {
                let b = i.byte()?;
                Op::AddClient {
                    connected: b & 1 == 1,
                    dead: b & 2 == 2,
                    count: i.byte()? % 32,
                }
            }
            11 => Op::Command {
                channel: i.byte()?,
                command: script::decode_command(i)?,
            },
            _ => Op::ReactorClose { channel: i.byte()? },
        })
    }

    /// Writes the bytes [`decode`](Self::decode) reads back as this operation.
    pub fn encode(&self, put: impl FnMut(u8)) {
        let mut put = super::with_kind(&KINDS, put);
        let put = &mut put;
        match *self {
            Op::Send { client, len } => {
                put(0);
                put(client);
                let [lo, hi] = (len % 640).to_le_bytes();
                put(lo);
                put(hi);
            }
            Op::Recv { client } => {
                put(1);
                put(client);
            }
            Op::Reopen { client } => {
                put(2);
                put(client);
            }
            Op::Advance { ms } => {
                put(3);
                put(ms);
            }
            Op::Network {
                loss,
                duplicate,
                reorder,
                latency,
            } => {
                put(4);
                put(loss);
                put(duplicate);
                put(reorder);
                put(latency);
            }
            Op::WouldBlock { rate } => {
                put(5);
                put(rate);
            }
            Op::Pass { timeout_ms } => {
                put(6);
                put(timeout_ms);
            }
            Op::Run { passes, timeout_ms } => {
                put(7);
                put(passes.clamp(1, 8) - 1);
                put(timeout_ms);
            }
            Op::ServerDown => put(8),
            Op::ServerUp => put(9),
            Op::AddClient {
                connected,
                dead,
                count,
            } => {
                put(10);
                put(u8::from(connected) | (u8::from(dead) << 1));
                put(count % 32);
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
    /// A datagram came back that its receiver never sent (altered, cut, invented).
    Invented {
        /// The receiver's serial number.
        serial: u32,
        /// The datagram's length.
        len: usize,
    },
    /// A datagram channel got `handle_close` though its socket was good.
    Closed {
        /// The channel.
        token: Token,
    },
    /// `ECONNREFUSED` reached a socket that is not connected.
    RefusedUnconnected {
        /// The channel.
        token: Token,
    },
    /// A datagram operation failed with an error it should not meet.
    Unexpected {
        /// The channel (or a default token for a client outside the reactor).
        token: Token,
        /// The error kind.
        kind: ErrorKind,
    },
    /// A client's last datagram did not come back on a quiet network.
    Lost {
        /// The client's serial number.
        serial: u32,
    },
    /// A receive buffer held more than its capacity.
    Overflow {
        /// Bytes held.
        buffered: usize,
    },
    /// The selector kept reporting a socket ready while nothing serviced it.
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
    /// Echoes received and verified (outside and inside the reactor).
    pub echoed: u64,
    /// `ECONNREFUSED` seen by connected channels.
    pub refused: u32,
    /// Echoes the server dropped because its reply queue was full.
    pub dropped: u32,
    /// Datagram faults, by [`DgramFault::index`](crate::sim::DgramFault::index).
    pub fired: [u32; DGRAM_FAULTS],
    /// The network's trace hash.
    pub trace_hash: u64,
}

/// State the handlers share with the interpreter.
struct Shared<'n> {
    net: &'n Net,
    failure: First<Failure>,
    serial: Cell<u32>,
    echoed: Cell<u64>,
    refused: Cell<u32>,
    dropped: Cell<u32>,
}

impl Shared<'_> {
    fn next_serial(&self) -> u32 {
        let s = self.serial.get();
        self.serial.set(s + 1);
        s
    }
}

/// Byte `i` of datagram `seq` of sender `serial`.
fn pattern(serial: u32, seq: u32, i: usize) -> u8 {
    Rng::new(((serial as u64) << 40) ^ ((seq as u64) << 20) ^ i as u64 ^ 0xd6).byte()
}

/// Datagram `seq` of `serial`, `len` bytes, into `buf`: a 4-byte header (the
/// sequence number) when it has room, then the pattern.
fn fill(serial: u32, seq: u32, len: usize, buf: &mut [u8]) -> usize {
    let len = len.min(buf.len());
    for (i, b) in buf[..len].iter_mut().enumerate() {
        *b = pattern(serial, seq, i);
    }
    if len >= 4 {
        buf[..4].copy_from_slice(&seq.to_le_bytes());
    }
    len
}

/// Whether `data` is, whole, one of the datagrams `serial` sent: of those with its
/// length, the one its header names (or, below 4 bytes, any of them).
fn sent_by(serial: u32, lens: &[u16], data: &[u8]) -> bool {
    let is = |seq: usize| {
        lens.get(seq).is_some_and(|&l| l as usize == data.len())
            && data
                .iter()
                .enumerate()
                .all(|(i, &b)| i < 4 || b == pattern(serial, seq as u32, i))
            && (data.len() < 4 || data[..4] == (seq as u32).to_le_bytes())
    };
    if data.len() >= 4 {
        is(u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize)
    } else {
        (0..lens.len()).any(|seq| {
            lens[seq] as usize == data.len()
                && data
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == pattern(serial, seq as u32, i))
        })
    }
}

enum Role {
    /// The echo server.
    Echo {
        queue: DatagramQueue<SimAddr, 1024, 4>,
    },
    /// A datagram client in the reactor.
    Client {
        serial: u32,
        /// The lengths of the datagrams it sent (index: sequence number).
        lens: Vec<u16, 64>,
        /// Datagrams still to send.
        to_send: u8,
        connected: bool,
        /// Where an unconnected client sends.
        to: SimAddr,
        queue: DatagramQueue<SimAddr, 1024, 4>,
    },
}

/// A channel of the interpreter's reactor.
struct Chan<'n> {
    role: Role,
    shared: &'n Shared<'n>,
    script: Script<Action>,
    /// Its socket was closed behind its back (then `handle_close` is expected).
    poisoned: &'n Cell<u64>,
}

impl core::fmt::Debug for Chan<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let role = match self.role {
            Role::Echo { .. } => "echo",
            Role::Client { .. } => "client",
        };
        f.debug_struct("Chan")
            .field("role", &role)
            .finish_non_exhaustive()
    }
}

type C<'a, 'n> = Ctx<'a, Sock<'n>, Chan<'n>>;

impl<'n> Chan<'n> {
    fn new(role: Role, shared: &'n Shared<'n>, poisoned: &'n Cell<u64>) -> Self {
        Chan {
            role,
            shared,
            script: Script::new(false),
            poisoned,
        }
    }

    fn error(&self, ctx: &C<'_, 'n>, e: crate::SocketError, connected: bool) {
        report(self.shared, self.poisoned, ctx, e, connected);
    }

    fn read(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        let shared = self.shared;
        let mut buf = [0u8; MAX_DATAGRAM];
        for _ in 0..16 {
            // Echo channels with an even slot read through the reactor's lent
            // buffer when it is free.
            let lease = match self.role {
                Role::Echo { .. } if ctx.token().index().is_multiple_of(2) => ctx.lease(),
                _ => None,
            };
            let got = match &lease {
                Some(l) => ctx.recv_from_leased(l, 0),
                None => ctx.recv_from(&mut buf),
            };
            if let (Some(l), Ok(Some(d))) = (&lease, &got)
                && let Some(bytes) = ctx.leased(l)
            {
                buf[..d.copied].copy_from_slice(&bytes[..d.copied]);
            }
            if let Some(l) = lease {
                ctx.give_back(l);
            }
            let connected = matches!(
                self.role,
                Role::Client {
                    connected: true,
                    ..
                }
            );
            let d: Received<SimAddr> = match got {
                Ok(Some(d)) => d,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.error(ctx, e, connected);
                    continue;
                }
            };
            if d.truncated() {
                shared.failure.set(Failure::Invented {
                    serial: u32::MAX,
                    len: d.len,
                });
            }
            match &mut self.role {
                Role::Echo { queue } => match queue.send_to(ctx, d.data(&buf), d.from) {
                    Ok(_) => {}
                    Err(QueueError::Full) => shared.dropped.set(shared.dropped.get() + 1),
                    Err(QueueError::Socket(e)) => self.error(ctx, e, false),
                },
                Role::Client { serial, lens, .. } => {
                    if sent_by(*serial, lens, d.data(&buf)) {
                        shared.echoed.set(shared.echoed.get() + 1);
                    } else {
                        shared.failure.set(Failure::Invented {
                            serial: *serial,
                            len: d.len,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn write(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        let connected = matches!(
            self.role,
            Role::Client {
                connected: true,
                ..
            }
        );
        let (shared, poisoned) = (self.shared, self.poisoned);
        let queue = match &mut self.role {
            Role::Echo { queue } => queue,
            Role::Client {
                serial,
                lens,
                to_send,
                connected,
                to,
                queue,
            } => {
                // Queue what is due, while there is room; the queue keeps order.
                let mut buf = [0u8; 200];
                while *to_send > 0 && !lens.is_full() {
                    let seq = lens.len() as u32;
                    let len = (pattern(*serial, seq, 999) as usize * 3) % 200;
                    if !queue.fits(len) {
                        break;
                    }
                    let n = fill(*serial, seq, len, &mut buf);
                    let pushed = if *connected {
                        queue.push(&buf[..n])
                    } else {
                        queue.push_to(&buf[..n], *to)
                    };
                    if pushed.is_err() {
                        break;
                    }
                    let _ = lens.push(n as u16);
                    *to_send -= 1;
                }
                queue
            }
        };
        loop {
            match queue.flush(ctx) {
                Ok(_) => return Ok(()),
                Err(e) => {
                    // The datagram that met it stays at the front: give up on it.
                    queue.pop_front();
                    report(shared, poisoned, ctx, e, connected);
                }
            }
        }
    }
}

impl<'n> Scripted<Sock<'n>> for Chan<'n> {
    type Action = Action;

    fn script(&mut self) -> &mut Script<Action> {
        &mut self.script
    }

    fn broken(&self, failure: LifeFailure) {
        self.shared.failure.set(Failure::Life(failure));
    }

    fn perform(&mut self, ctx: &mut C<'_, 'n>, action: Action) -> Result<(), Error> {
        match action {
            Action::Close => self.script.life.close(ctx),
            Action::Fail => return self.script.fail(false),
            Action::FailKeep => return self.script.fail(true),
            Action::Poison(n) => {
                if let Some(t) = script::nth::<MAP>(ctx.others().map(|c| c.token), n)
                    && let Some(c) = ctx.channel(t)
                {
                    let _ = c.socket.close();
                    self.poisoned
                        .set(self.poisoned.get() | 1 << (t.index() % 64));
                }
            }
            Action::Burst(n) => {
                if let Role::Client { to_send, .. } = &mut self.role {
                    *to_send = to_send.saturating_add(n % 16);
                }
            }
        }
        Ok(())
    }
}

/// A datagram operation's error: `ECONNREFUSED` is counted (only connected sockets
/// may see it); anything else is not expected in this network.
fn report(
    shared: &Shared<'_>,
    poisoned: &Cell<u64>,
    ctx: &C<'_, '_>,
    e: crate::SocketError,
    connected: bool,
) {
    let bit = 1u64 << (ctx.token().index() % 64);
    if poisoned.get() & bit != 0 && e.raw_os_error() == Some(crate::errno::EBADF) {
        // Its socket was closed behind its back earlier in this pass: the
        // reactor has not seen it invalid yet.
        return;
    }
    if e.kind() == ErrorKind::ConnectionRefused {
        if connected {
            shared.refused.set(shared.refused.get() + 1);
        } else {
            shared
                .failure
                .set(Failure::RefusedUnconnected { token: ctx.token() });
        }
    } else {
        shared.failure.set(Failure::Unexpected {
            token: ctx.token(),
            kind: e.kind(),
        });
    }
}

impl<'n> Dispatcher<Sock<'n>> for Chan<'n> {
    type Error = Error;

    fn writable(&self) -> bool {
        match &self.role {
            Role::Echo { queue } => queue.wants_write(),
            Role::Client {
                queue,
                to_send,
                lens,
                ..
            } => queue.wants_write() || (*to_send > 0 && !lens.is_full()),
        }
    }

    fn handle_read(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        self.callback(ctx, Callback::Read, |me, ctx| me.read(ctx))
    }

    fn handle_write(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        self.callback(ctx, Callback::Write, |me, ctx| me.write(ctx))
    }

    fn handle_close(&mut self, ctx: &mut C<'_, 'n>) -> Result<(), Error> {
        let bit = 1u64 << (ctx.token().index() % 64);
        if self.poisoned.get() & bit == 0 {
            self.shared
                .failure
                .set(Failure::Closed { token: ctx.token() });
        }
        self.callback(ctx, Callback::Close, |_, _| Ok(()))
    }

    fn handle_error(&mut self, ctx: &mut C<'_, 'n>, error: Error) {
        let _ = error;
        self.on_error(ctx);
    }

    fn log_info(&mut self, token: Token, level: LogLevel, message: &'static str) {
        let _ = (token, level, message);
    }
}

/// A simulated socket outside the reactor.
struct Client<'n> {
    sock: Option<Sock<'n>>,
    serial: u32,
    lens: Vec<u16, MAX_OPS>,
}

impl<'n> Client<'n> {
    const EMPTY: Self = Client {
        sock: None,
        serial: 0,
        lens: Vec::new(),
    };

    fn send(&mut self, shared: &Shared<'n>, len: usize) -> Result<(), Failure> {
        if self.sock.is_none() {
            match shared.net.dgram() {
                Ok(s) => {
                    *self = Client {
                        sock: Some(s),
                        serial: shared.next_serial(),
                        lens: Vec::new(),
                    };
                }
                Err(_) => return Ok(()),
            }
        }
        let Some(sock) = self.sock.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; 640];
        let seq = self.lens.len() as u32;
        let n = fill(self.serial, seq, len, &mut buf);
        if self.lens.is_full() {
            return Ok(());
        }
        match sock.send_to(&buf[..n], &SimAddr(PORT)) {
            Ok(Sent::Bytes(_)) => {
                let _ = self.lens.push(n as u16);
            }
            Ok(Sent::WouldBlock) => {}
            Err(e) if n > MAX_DATAGRAM && e.raw_os_error() == Some(crate::errno::EMSGSIZE) => {}
            Err(e) => {
                return Err(Failure::Unexpected {
                    token: Token::new(u32::MAX, 0),
                    kind: e.kind(),
                });
            }
        }
        Ok(())
    }

    /// Reads everything waiting; whether the datagram `last` (a sequence number)
    /// was among it.
    fn recv(&mut self, shared: &Shared<'n>, last: Option<u32>) -> Result<bool, Failure> {
        let Some(sock) = self.sock.as_mut() else {
            return Ok(false);
        };
        let mut buf = [0u8; MAX_DATAGRAM];
        let mut seen = false;
        for _ in 0..64 {
            match sock.recv_from(&mut buf) {
                Ok(Some(d)) => {
                    let data = d.data(&buf);
                    if d.truncated() || !sent_by(self.serial, &self.lens, data) {
                        return Err(Failure::Invented {
                            serial: self.serial,
                            len: d.len,
                        });
                    }
                    shared.echoed.set(shared.echoed.get() + 1);
                    if data.len() >= 4
                        && Some(u32::from_le_bytes([data[0], data[1], data[2], data[3]])) == last
                    {
                        seen = true;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::Unexpected {
                        token: Token::new(u32::MAX, 0),
                        kind: e.kind(),
                    });
                }
            }
        }
        Ok(seen)
    }
}

fn add_server<'n>(
    r: &mut Server<'n>,
    shared: &'n Shared<'n>,
    poisoned: &'n Cell<u64>,
) -> Option<Token> {
    let sock = shared.net.bind_dgram(PORT).ok()?;
    let chan = Chan::new(
        Role::Echo {
            queue: DatagramQueue::new(),
        },
        shared,
        poisoned,
    );
    let t = script::added(r.add(sock, chan))?;
    poisoned.set(poisoned.get() & !(1u64 << (t.index() % 64)));
    Some(t)
}

/// The token of the `n`-th channel, modulo their number.
fn nth(r: &Server<'_>, n: u8) -> Option<Token> {
    script::nth::<MAP>(r.map().tokens(), n)
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
        serial: Cell::new(0),
        echoed: Cell::new(0),
        refused: Cell::new(0),
        dropped: Cell::new(0),
    };
    let poisoned = Cell::new(0u64);
    let mut r: Server<'_> = Reactor::new(SimSelector::new(&net));
    script::watch(&mut r, hooks);
    let mut server = add_server(&mut r, &shared, &poisoned);
    let mut clients: [Client<'_>; CLIENTS] = [const { Client::EMPTY }; CLIENTS];
    let mut passes = 0u32;
    let mut count = 0;
    let check = || script::check(hooks, &shared.failure, &net);

    for op in ops(data) {
        count += 1;
        match op {
            Op::Send { client, len } => clients[client as usize].send(&shared, len as usize)?,
            Op::Recv { client } => {
                clients[client as usize].recv(&shared, None)?;
            }
            Op::Reopen { client } => {
                if let Some(mut s) = clients[client as usize].sock.take() {
                    let _ = s.close();
                }
            }
            Op::Advance { ms } => net.advance(Duration::from_millis(ms as u64)),
            Op::Network {
                loss,
                duplicate,
                reorder,
                latency,
            } => {
                let per_mille = |b: u8| (b as u16 * 4).min(1000);
                let mut cfg = net.dgram_config();
                cfg.loss = per_mille(loss);
                cfg.duplicate = per_mille(duplicate);
                cfg.reorder = per_mille(reorder);
                cfg.latency = Duration::from_micros(10 + 50 * latency as u64);
                net.set_dgram_config(cfg);
            }
            Op::WouldBlock { rate } => {
                net.set_rate(Fault::WouldBlock, (rate as u16 * 4).min(1000));
            }
            Op::Pass { timeout_ms } => script::drive(&mut r, &mut passes, None, timeout_ms)?,
            Op::Run {
                passes: n,
                timeout_ms,
            } => script::drive(&mut r, &mut passes, Some(n), timeout_ms)?,
            Op::ServerDown => {
                if let Some(t) = server.take() {
                    r.close(t);
                }
            }
            Op::ServerUp => {
                if server.is_none_or(|t| r.get(t).is_none()) {
                    server = add_server(&mut r, &shared, &poisoned);
                }
            }
            Op::AddClient {
                connected,
                dead,
                count: n,
            } => {
                let port = if dead { NOWHERE } else { PORT };
                let sock = if connected {
                    net.connect_dgram(port)
                } else {
                    net.dgram()
                };
                if let Ok(sock) = sock {
                    let chan = Chan::new(
                        Role::Client {
                            serial: shared.next_serial(),
                            lens: Vec::new(),
                            to_send: n,
                            connected,
                            to: SimAddr(port),
                            queue: DatagramQueue::new(),
                        },
                        &shared,
                        &poisoned,
                    );
                    if let Some(t) = script::added(r.add(sock, chan)) {
                        poisoned.set(poisoned.get() & !(1u64 << (t.index() % 64)));
                    }
                }
            }
            Op::Command { channel, command } => {
                if let Some(t) = nth(&r, channel)
                    && let Some(c) = r.get_mut(t)
                {
                    c.dispatcher.script.command = Some(command);
                }
            }
            Op::ReactorClose { channel } => {
                if let Some(t) = nth(&r, channel) {
                    r.close(t);
                }
            }
        }
        check()?;
    }

    // The end: the clients in the reactor leave, the network goes quiet, what is in
    // flight lands, the server is up; then one last datagram from every client
    // outside the reactor, which must come back.
    let others: Vec<Token, MAP> = r
        .map()
        .iter()
        .map(|c| c.token)
        .filter(|t| Some(*t) != server)
        .collect();
    for t in others {
        r.close(t);
    }
    net.set_dgram_config(DgramConfig::quiet());
    net.set_rate(Fault::WouldBlock, 0);
    // No server, or one whose socket was closed behind its back (the reactor has
    // not seen it yet): a new one.
    let usable = server
        .and_then(|t| r.get(t))
        .is_some_and(|c| !net.readiness(c.socket).is_invalid());
    if !usable {
        if let Some(t) = server.take() {
            r.close(t);
        }
        server = add_server(&mut r, &shared, &poisoned);
    }
    // A command still pending would close or fail the server during the drain.
    if let Some(c) = server.and_then(|t| r.get_mut(t)) {
        c.dispatcher.script.command = None;
    }
    // Idle: nothing on the wire, nothing queued or unread at the server.
    let idle = |r: &Server<'_>| {
        net.in_flight() == 0
            && server.and_then(|t| r.get(t)).is_none_or(|c| {
                !net.readiness(c.socket).is_readable()
                    && matches!(&c.dispatcher.role, Role::Echo { queue } if queue.is_empty())
            })
    };
    for _ in 0..DRAIN_PASSES {
        if idle(&r) {
            break;
        }
        script::drive(&mut r, &mut passes, None, 5)?;
        check()?;
        for c in clients.iter_mut() {
            c.recv(&shared, None)?;
        }
    }
    let mut waiting: [Option<u32>; CLIENTS] = [None; CLIENTS];
    if server.is_some() {
        for (c, w) in clients.iter_mut().zip(waiting.iter_mut()) {
            if c.sock.is_none() || c.lens.is_full() {
                continue;
            }
            c.recv(&shared, None)?;
            let seq = c.lens.len() as u32;
            c.send(&shared, 16)?;
            if c.lens.len() as u32 == seq + 1 {
                *w = Some(seq);
            }
        }
    }
    for _ in 0..DRAIN_PASSES {
        if waiting.iter().all(Option::is_none) {
            break;
        }
        script::drive(&mut r, &mut passes, None, 5)?;
        check()?;
        for (c, w) in clients.iter_mut().zip(waiting.iter_mut()) {
            if w.is_some() && c.recv(&shared, *w)? {
                *w = None;
            }
        }
    }
    if let Some((c, _)) = clients.iter().zip(waiting).find(|(_, w)| w.is_some()) {
        return Err(Failure::Lost { serial: c.serial });
    }
    check()?;
    Ok(Report {
        ops: count,
        passes,
        echoed: shared.echoed.get(),
        refused: shared.refused.get(),
        dropped: shared.dropped.get(),
        fired: net.dgram_fired(),
        trace_hash: net.trace_hash(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_is_a_datagram_its_receiver_sent_whole() {
        let mut buf = [0u8; 64];
        let mut lens: std::vec::Vec<u16> = std::vec::Vec::new();
        for (seq, len) in [10usize, 2, 0, 33].into_iter().enumerate() {
            fill(5, seq as u32, len, &mut buf);
            lens.push(len as u16);
        }
        let n = fill(5, 3, 33, &mut buf);
        assert!(sent_by(5, &lens, &buf[..n]));
        assert!(!sent_by(6, &lens, &buf[..n]), "another sender's");
        assert!(!sent_by(5, &lens, &buf[..n - 1]), "cut");
        buf[20] ^= 1;
        assert!(!sent_by(5, &lens, &buf[..n]), "altered");
        let n = fill(5, 1, 2, &mut buf);
        assert!(sent_by(5, &lens, &buf[..n]));
        assert!(sent_by(5, &lens, &[]), "the empty one");
        assert!(!sent_by(5, &lens, &[1, 2, 3]), "never sent");
        // Seq 4 was never sent.
        let n = fill(5, 4, 10, &mut buf);
        assert!(!sent_by(5, &lens, &buf[..n]));
    }

    #[test]
    fn operations_round_trip() {
        let ops = [
            Op::Send {
                client: 1,
                len: 513,
            },
            Op::Network {
                loss: 1,
                duplicate: 2,
                reorder: 3,
                latency: 4,
            },
            Op::AddClient {
                connected: true,
                dead: true,
                count: 7,
            },
            Op::Command {
                channel: 3,
                command: Command {
                    on: Some(Callback::Error),
                    action: Action::Poison(9),
                },
            },
            Op::Run {
                passes: 3,
                timeout_ms: 5,
            },
            Op::ServerDown,
        ];
        let mut bytes = std::vec::Vec::new();
        for op in ops {
            op.encode(|b| bytes.push(b));
        }
        let back: std::vec::Vec<Op> = super::ops(&bytes).collect();
        assert_eq!(back, ops);
    }
}
