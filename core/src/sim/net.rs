//! The simulated network, its sockets and its selector.

use core::cell::RefCell;
use core::time::Duration;

use heapless::Deque;

use super::{FAULTS, Fault, Maybe, Rng, SimConfig, TraceHash, WIRE};
use crate::{
    Events, Interest, Readiness, Recv, Registered, Registrations, Ring, Selector, Sent, Socket,
    SocketError, SourceError, SourceEvent, State, Token, errno,
};

const NONE: u16 = u16::MAX;
const BACKLOG: usize = 16;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Established,
    Failed,
}

#[derive(Debug)]
pub(super) struct Stream {
    peer: u16,
    phase: Phase,
    /// The peer shut down its sending side (or closed): EOF after the buffered data.
    rx_fin: bool,
    /// The connection was reset.
    reset: bool,
    /// We shut down our sending side.
    tx_shut: bool,
    so_error: Option<SocketError>,
    port: u16,
    resolve_at: Duration,
    refuse: bool,
    /// A TCP urgent byte the peer sent, not yet read with `recv_priority`: priority
    /// readiness until it is.
    urgent: Option<u8>,
}

/// `repr(u8)`: [`Kind::Free`] is a tag of 0 (see [`SimNet::empty`]), where the
/// compiler's own layout would mark it with an unused value of a field.
#[derive(Debug)]
#[repr(u8)]
pub(super) enum Kind {
    Free = 0,
    Listener {
        port: u16,
        backlog: Deque<u16, BACKLOG>,
    },
    Stream(Stream),
    /// An event source: its pending events, coalesced as the real sources do, are
    /// framed in its receive buffer ([`EVENT_BYTES`] each), which a source has no
    /// other use for; a socket of any kind is no bigger for it.
    Source,
    /// A datagram socket (see `sim/dgram.rs`); its received datagrams are framed in
    /// its receive buffer.
    Dgram(super::dgram::Dgram),
    Closed,
}

/// Events a simulated source holds at most (if its receive buffer has room for
/// them: see [`SimNet::raise`]), and raises scheduled for later.
const EVENTS: usize = 16;
/// A source's pending event in its receive buffer: a tag and two little-endian
/// 32-bit words (see [`event_record`]).
const EVENT_BYTES: usize = 9;

pub(super) struct Sock<const B: usize> {
    pub(super) kind: Kind,
    pub(super) rx: Ring<B>,
    /// The last wait reported it ready (for more than an injected spurious event).
    reported: bool,
    /// An operation on it made progress since the last wait: data moved, a
    /// connection accepted, an error taken, an EOF or a reset seen, a close.
    progress: bool,
    /// Consecutive waits that reported it ready with no progress in between.
    unserviced: u32,
    /// What the last wait reported it ready for.
    last: Readiness,
    /// What the last wait found it ready for (within its interest, spurious
    /// readiness included) and did not hand out yet: it did not fit, and waits for
    /// [`Selector::select_more`].
    left: Readiness,
}

impl<const B: usize> Sock<B> {
    const FREE: Self = Sock {
        kind: Kind::Free,
        rx: Ring::new(),
        reported: false,
        progress: false,
        unserviced: 0,
        last: Readiness::EMPTY,
        left: Readiness::EMPTY,
    };

    /// Makes it [`FREE`](Self::FREE) again in place (assigning `FREE` could build
    /// a whole socket, buffer and all, on the stack first).
    fn free(&mut self) {
        self.kind = Kind::Free;
        self.rx.clear();
        self.reported = false;
        self.progress = false;
        self.unserviced = 0;
        self.last = Readiness::EMPTY;
        self.left = Readiness::EMPTY;
    }
}

/// Consecutive waits that may report a socket ready while nothing is done about it
/// before [`SimNet::stall`] calls it a stall.
pub const STALL_WAITS: u32 = 32;

/// A socket the selector reported ready [`STALL_WAITS`] waits in a row while no
/// operation on it made progress: a handler left its readiness unconsumed (priority
/// data never read, a listener retrying a failing accept every pass, write interest
/// with nothing to write), so a real loop would spin.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stall {
    /// The socket (its selector source).
    pub socket: u16,
    /// What it was reported ready for the last time.
    pub readiness: Readiness,
    /// Virtual time when it crossed the limit.
    pub at: Duration,
}

pub(super) struct NetState<const S: usize, const B: usize, const W: usize> {
    pub(super) now: Duration,
    pub(super) rng: Rng,
    cfg: SimConfig,
    pub(super) socks: [Sock<B>; S],
    pub(super) used: usize,
    fired: [u32; FAULTS],
    trace: TraceHash,
    ops: u64,
    stall: Maybe<Stall>,
    /// Raises due later: when, which source, what.
    scheduled: Deque<(Duration, u16, SourceEvent), EVENTS>,
    /// The datagram network: datagrams in flight, its options and counters.
    pub(super) wire: super::dgram::Wire<W>,
}

/// A simulated network of up to `S` sockets (listeners and stream ends, never
/// reused within a run) with `B`-byte receive buffers, and `W` datagrams in flight
/// at most ([`WIRE`] unless given: a network that carries only streams may have
/// none, and is 17 KiB smaller for it). See the [module](super) docs.
pub struct SimNet<const S: usize, const B: usize, const W: usize = WIRE> {
    pub(super) st: RefCell<NetState<S, B, W>>,
}

impl<const S: usize, const B: usize, const W: usize> core::fmt::Debug for SimNet<S, B, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let st = self.st.borrow();
        f.debug_struct("SimNet")
            .field("now", &st.now)
            .field("sockets", &st.used)
            .field("seed", &st.cfg.seed)
            .finish_non_exhaustive()
    }
}

/// One end of a simulated stream, or a simulated listener. Its selector source is its
/// id. It implements [`Socket`]; a test drives the far ends of connections with the
/// same methods.
pub struct SimSocket<'n, const S: usize, const B: usize, const W: usize = WIRE> {
    pub(super) net: &'n SimNet<S, B, W>,
    pub(super) id: u16,
}

impl<const S: usize, const B: usize, const W: usize> core::fmt::Debug for SimSocket<'_, S, B, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SimSocket({})", self.id)
    }
}

/// The selector of a [`SimNet`]: its registrations, in slot order of their tokens,
/// and the network it watches (none for a [`detached`](Self::detached) one).
///
/// A wait computes the readiness of every registration at once (drawing its faults
/// in slot order); what does not fit in the caller's buffer is kept with each
/// socket in the network (so the selector, often on the stack, does not grow) and
/// handed out by [`select_more`](Selector::select_more), in slot order, masked by
/// each source's interest then, with no further draw.
pub struct SimSelector<'n, const S: usize, const B: usize, const W: usize = WIRE> {
    net: Option<&'n SimNet<S, B, W>>,
    regs: Registrations<u32, S>,
    /// The last wait left readiness with some sockets (their `left`).
    more: bool,
}

impl<const S: usize, const B: usize, const W: usize> core::fmt::Debug for SimSelector<'_, S, B, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SimSelector")
    }
}

/// A wait with no timeout found nothing ready and nothing pending: it would never end.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SimStalled;

pub(super) fn err(code: i32) -> SocketError {
    SocketError::from_errno(code)
}

impl<const S: usize, const B: usize, const W: usize> NetState<S, B, W> {
    pub(super) fn fault(&mut self, f: Fault) -> bool {
        let hit = self.rng.chance(self.cfg.rate(f));
        if hit {
            self.fired[f.index()] += 1;
        }
        hit
    }

    pub(super) fn record(&mut self, op: u8, id: u16, result: u64) {
        self.ops += 1;
        self.trace.add(&[op]);
        self.trace.add(&id.to_le_bytes());
        self.trace.add_u64(result);
        self.trace.add_u64(self.now.as_nanos() as u64);
    }

    /// The faults a transfer of up to `len` bytes on `id` may meet, in this order:
    /// would-block although ready (`Ok(None)`; the handler did its part, so it counts
    /// as progress, not a stall), a reset (`ECONNRESET`, both ends), a short count
    /// (`short`). `Ok(Some(n))`: move `n` bytes.
    fn transfer_faults(
        &mut self,
        id: u16,
        len: usize,
        short: Fault,
    ) -> Result<Option<usize>, SocketError> {
        if self.fault(Fault::WouldBlock) {
            self.progressed(id);
            return Ok(None);
        }
        if self.fault(Fault::Reset) {
            self.reset_pair(id);
            return Err(err(errno::ECONNRESET));
        }
        if len > 1 && self.fault(short) {
            return Ok(Some(self.rng.range(1, len as u64 - 1) as usize));
        }
        Ok(Some(len))
    }

    /// Marks progress on `id`.
    pub(super) fn progressed(&mut self, id: u16) {
        if let Some(s) = self.socks.get_mut(id as usize) {
            s.progress = true;
        }
    }

    /// Before a wait: counts the sockets the last wait reported ready that nothing
    /// serviced since, and records the first one past [`STALL_WAITS`].
    fn check_progress(&mut self) {
        let now = self.now;
        for (id, s) in self.socks[..self.used].iter_mut().enumerate() {
            if s.reported && !s.progress {
                s.unserviced += 1;
                if s.unserviced >= STALL_WAITS && self.stall.is_none() {
                    self.stall = Maybe::Some(Stall {
                        socket: id as u16,
                        readiness: s.last,
                        at: now,
                    });
                }
            } else {
                s.unserviced = 0;
            }
            s.reported = false;
            s.progress = false;
        }
    }

    pub(super) fn alloc(&mut self, kind: Kind) -> Result<u16, SocketError> {
        if self.used >= S || self.used >= NONE as usize {
            return Err(err(errno::EMFILE));
        }
        let id = self.used;
        self.used += 1;
        self.socks[id].kind = kind;
        self.socks[id].rx.clear();
        self.socks[id].reported = false;
        self.socks[id].unserviced = 0;
        Ok(id as u16)
    }

    fn stream(&mut self, id: u16) -> Option<&mut Stream> {
        match &mut self.socks.get_mut(id as usize)?.kind {
            Kind::Stream(s) => Some(s),
            _ => None,
        }
    }

    /// The stream `id` for a read or a write: `EBADF` once closed, `ENOTCONN` for a
    /// socket that is not a stream.
    fn stream_for_io(&self, id: u16) -> Result<&Stream, SocketError> {
        match &self.socks[id as usize].kind {
            Kind::Stream(s) => Ok(s),
            Kind::Closed => Err(err(errno::EBADF)),
            _ => Err(err(errno::ENOTCONN)),
        }
    }

    /// Resets the connection of `id` (both ends).
    fn reset_pair(&mut self, id: u16) {
        let peer = self.stream(id).map_or(NONE, |s| {
            s.reset = true;
            s.peer
        });
        if let Some(p) = self.stream(peer) {
            p.reset = true;
        }
    }

    /// Events a source holds at most: [`EVENTS`], or fewer if its receive buffer
    /// cannot frame that many.
    const SOURCE_EVENTS: usize = if B / EVENT_BYTES < EVENTS {
        B / EVENT_BYTES
    } else {
        EVENTS
    };

    /// Makes `event` pending on source `id`, coalesced (a `Wake` or a `Signal(n)`
    /// already pending is not added again). `false` if `id` is not an open source
    /// or its queue is full.
    fn raise(&mut self, id: u16, event: SourceEvent) -> bool {
        let Some(sock) = self.socks.get_mut(id as usize) else {
            return false;
        };
        if !matches!(sock.kind, Kind::Source) {
            return false;
        }
        let record = event_record(event);
        let pending = sock.rx.len() / EVENT_BYTES;
        let raised = if matches!(event, SourceEvent::Wake | SourceEvent::Signal(_))
            && (0..pending).any(|k| {
                (0..EVENT_BYTES).all(|j| sock.rx.get(k * EVENT_BYTES + j) == Some(record[j]))
            }) {
            true
        } else if pending < Self::SOURCE_EVENTS {
            sock.rx.push(&record) == EVENT_BYTES
        } else {
            false
        };
        self.record(b'v', id, event_code(event));
        raised
    }

    /// Completes or fails the connects whose time has come, and makes the raises
    /// that came due pending.
    fn resolve(&mut self) {
        while let Some(&(at, id, event)) = self.scheduled.front() {
            if at > self.now {
                break;
            }
            self.scheduled.pop_front();
            self.raise(id, event);
        }
        self.deliver_datagrams();
        for id in 0..self.used {
            let (port, refuse) = match &self.socks[id].kind {
                Kind::Stream(s) if s.phase == Phase::Connecting && s.resolve_at <= self.now => {
                    (s.port, s.refuse)
                }
                _ => continue,
            };
            let listener = (0..self.used).find(|&l| {
                matches!(&self.socks[l].kind, Kind::Listener { port: p, backlog } if *p == port && !backlog.is_full())
            });
            let server = match (listener, refuse) {
                (Some(l), false) => match self.alloc(Kind::Free) {
                    Ok(server) => Some((l, server)),
                    Err(_) => None,
                },
                _ => None,
            };
            match server {
                Some((l, server)) => {
                    self.socks[server as usize].kind = Kind::Stream(Stream {
                        peer: id as u16,
                        phase: Phase::Established,
                        rx_fin: false,
                        reset: false,
                        tx_shut: false,
                        so_error: None,
                        port,
                        resolve_at: self.now,
                        refuse: false,
                        urgent: None,
                    });
                    if let Kind::Listener { backlog, .. } = &mut self.socks[l].kind {
                        let _ = backlog.push_back(server);
                    }
                    if let Some(s) = self.stream(id as u16) {
                        s.peer = server;
                        s.phase = Phase::Established;
                    }
                    self.record(b'c', id as u16, server as u64);
                }
                None => {
                    if let Some(s) = self.stream(id as u16) {
                        s.phase = Phase::Failed;
                        s.so_error = Some(err(errno::ECONNREFUSED));
                    }
                    self.record(b'C', id as u16, 0);
                }
            }
        }
    }

    /// The earliest pending connect or scheduled raise.
    fn next_event(&self) -> Option<Duration> {
        let connect = self.socks[..self.used]
            .iter()
            .filter_map(|s| match &s.kind {
                Kind::Stream(st) if st.phase == Phase::Connecting => Some(st.resolve_at),
                _ => None,
            })
            .min();
        let raise = self.scheduled.iter().map(|s| s.0).min();
        let first = match (connect, raise) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (first, self.wire.next_arrival()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Level readiness of `id`.
    fn readiness(&self, id: u16) -> Readiness {
        let Some(sock) = self.socks.get(id as usize) else {
            return Readiness::INVALID;
        };
        match &sock.kind {
            Kind::Free | Kind::Closed => Readiness::INVALID,
            Kind::Listener { backlog, .. } => {
                if backlog.is_empty() {
                    Readiness::EMPTY
                } else {
                    Readiness::READABLE
                }
            }
            Kind::Source => {
                if sock.rx.is_empty() {
                    Readiness::EMPTY
                } else {
                    Readiness::READABLE
                }
            }
            Kind::Dgram(d) => self.dgram_readiness(sock, d),
            Kind::Stream(s) => match s.phase {
                Phase::Connecting => Readiness::EMPTY,
                Phase::Failed => {
                    Readiness::READABLE | Readiness::WRITABLE | Readiness::ERROR | Readiness::HANGUP
                }
                Phase::Established if s.reset => {
                    Readiness::READABLE | Readiness::WRITABLE | Readiness::ERROR | Readiness::HANGUP
                }
                Phase::Established => {
                    let mut r = Readiness::EMPTY;
                    if !sock.rx.is_empty() || s.rx_fin {
                        r |= Readiness::READABLE;
                    }
                    let peer_room = match self.socks.get(s.peer as usize) {
                        Some(p) if matches!(p.kind, Kind::Stream(_)) => p.rx.free() > 0,
                        // The peer is gone: a write would fail at once.
                        _ => true,
                    };
                    if !s.tx_shut && peer_room {
                        r |= Readiness::WRITABLE;
                    }
                    if s.rx_fin && s.tx_shut {
                        r |= Readiness::HANGUP;
                    }
                    if s.urgent.is_some() {
                        r |= Readiness::PRIORITY;
                    }
                    r
                }
            },
        }
    }
}

impl<const S: usize, const B: usize, const W: usize> SimNet<S, B, W> {
    /// A network configured by `cfg`, at virtual time zero.
    pub const fn new(cfg: SimConfig) -> Self {
        SimNet {
            st: RefCell::new(NetState {
                now: Duration::ZERO,
                rng: Rng::new(cfg.seed),
                cfg,
                socks: [const { Sock::FREE }; S],
                used: 0,
                fired: [0; FAULTS],
                trace: TraceHash::new(),
                ops: 0,
                stall: Maybe::None,
                scheduled: Deque::new(),
                wire: super::dgram::Wire::new(),
            }),
        }
    }

    /// A network for a `static`, to be [`restart`](Self::restart)ed with each run's
    /// configuration: [`new`](Self::new) of seed 0 with no faults and no connect
    /// latency (connects complete at once). Every byte of it is zero, so a
    /// `static` of it takes no room in a program's image (it lands in `.bss`), while
    /// one built by `new` is stored there whole (a connect latency is not zero).
    pub const fn empty() -> Self {
        Self::new(SimConfig {
            seed: 0,
            rates: [0; FAULTS],
            latency: Duration::ZERO,
            slow_latency: Duration::ZERO,
        })
    }

    /// Starts the network again, configured by `cfg`: afterwards it behaves exactly
    /// as [`SimNet::new(cfg)`](Self::new) would (same sockets, same faults, same
    /// trace hash), but no network is built for it, so one network (a `static`, say)
    /// can serve run after run where building one, as large as it is, on the stack
    /// would not fit. Sockets of the previous run name sockets of the new one: drop
    /// them (and the reactor that held them) first. (Not to be confused with
    /// [`reset`](Self::reset), which resets one connection.)
    pub fn restart(&self, cfg: SimConfig) {
        let mut guard = self.st.borrow_mut();
        let st = &mut *guard;
        st.now = Duration::ZERO;
        st.rng = Rng::new(cfg.seed);
        st.cfg = cfg;
        for s in st.socks.iter_mut() {
            s.free();
        }
        st.used = 0;
        st.fired = [0; FAULTS];
        st.trace = TraceHash::new();
        st.ops = 0;
        st.stall = Maybe::None;
        st.scheduled.clear();
        st.wire.reset();
    }

    /// The configuration.
    pub fn config(&self) -> SimConfig {
        self.st.borrow().cfg
    }

    /// Changes the rate of one fault from now on.
    pub fn set_rate(&self, f: Fault, per_mille: u16) {
        self.st.borrow_mut().cfg.set_rate(f, per_mille);
    }

    /// Virtual time.
    pub fn now(&self) -> Duration {
        self.st.borrow().now
    }

    /// Moves virtual time forward by `d` and completes what came due.
    pub fn advance(&self, d: Duration) {
        let mut st = self.st.borrow_mut();
        st.now += d;
        st.resolve();
    }

    /// How often each fault fired, indexed by [`Fault::index`].
    pub fn fired(&self) -> [u32; FAULTS] {
        self.st.borrow().fired
    }

    /// Counts a scenario-level fault ([`Fault::HalfClose`], [`Fault::MapFull`]).
    pub fn note_fault(&self, f: Fault) {
        self.st.borrow_mut().fired[f.index()] += 1;
    }

    /// Draws from the network's generator, for scenario decisions (so they follow
    /// the seed too).
    pub fn chance(&self, f: Fault) -> bool {
        self.st.borrow_mut().fault(f)
    }

    /// Draws a number in `0..n` from the network's generator.
    pub fn below(&self, n: u64) -> u64 {
        self.st.borrow_mut().rng.below(n)
    }

    /// The hash of every operation and result so far.
    pub fn trace_hash(&self) -> u64 {
        self.st.borrow().trace.value()
    }

    /// How many socket operations ran.
    pub fn ops(&self) -> u64 {
        self.st.borrow().ops
    }

    /// Sockets created so far.
    pub fn sockets(&self) -> usize {
        self.st.borrow().used
    }

    /// A listener on `port`.
    ///
    /// # Errors
    /// `EADDRINUSE` if one is there already, `EMFILE` when the network is full.
    pub fn listen(&self, port: u16) -> Result<SimSocket<'_, S, B, W>, SocketError> {
        let mut st = self.st.borrow_mut();
        let taken = st.socks[..st.used]
            .iter()
            .any(|s| matches!(&s.kind, Kind::Listener { port: p, .. } if *p == port));
        if taken {
            return Err(err(errno::EADDRINUSE));
        }
        let id = st.alloc(Kind::Listener {
            port,
            backlog: Deque::new(),
        })?;
        st.record(b'l', id, port as u64);
        Ok(SimSocket { net: self, id })
    }

    /// An event source (a simulated waker, signal or child-exit source): its socket
    /// is in [`State::Source`]; make events pending on it with
    /// [`raise`](Self::raise) or [`raise_at`](Self::raise_at).
    ///
    /// # Errors
    /// `EMFILE` when the network is full.
    pub fn source(&self) -> Result<SimSocket<'_, S, B, W>, SocketError> {
        let mut st = self.st.borrow_mut();
        let id = st.alloc(Kind::Source)?;
        st.record(b'q', id, 0);
        Ok(SimSocket { net: self, id })
    }

    /// Makes `event` pending on `source` now, coalesced as the real sources do (a
    /// `Wake` or a `Signal(n)` already pending is not added again). `false` if it is
    /// not an open source or its queue is full: a source holds 16 events, framed in
    /// its receive buffer at 9 bytes each (fewer if `B` is below 144 bytes).
    pub fn raise(&self, source: &SimSocket<'_, S, B, W>, event: SourceEvent) -> bool {
        self.st.borrow_mut().raise(source.id, event)
    }

    /// Makes `event` pending on `source` at virtual time `at` (a signal that arrives
    /// while the loop waits or dispatches). `false` when 16 raises are scheduled
    /// already.
    pub fn raise_at(
        &self,
        source: &SimSocket<'_, S, B, W>,
        at: Duration,
        event: SourceEvent,
    ) -> bool {
        let mut st = self.st.borrow_mut();
        // Kept in time order, so the earliest is at the front.
        let mut later: Deque<(Duration, u16, SourceEvent), EVENTS> = Deque::new();
        while let Some(e) = st.scheduled.pop_back() {
            if e.0 <= at {
                let _ = st.scheduled.push_back(e);
                break;
            }
            let _ = later.push_front(e);
        }
        let ok = st.scheduled.push_back((at, source.id, event)).is_ok();
        while let Some(e) = later.pop_front() {
            let _ = st.scheduled.push_back(e);
        }
        ok
    }

    /// Starts a non-blocking connect to `port`; it completes (or is refused) after the
    /// configured latency, when the clock gets there.
    ///
    /// # Errors
    /// `EMFILE` when the network is full.
    pub fn connect(&self, port: u16) -> Result<SimSocket<'_, S, B, W>, SocketError> {
        let mut st = self.st.borrow_mut();
        let refuse = st.fault(Fault::Refused);
        let latency = if st.fault(Fault::SlowConnect) {
            st.cfg.slow_latency
        } else {
            st.cfg.latency
        };
        let resolve_at = st.now + latency;
        let id = st.alloc(Kind::Stream(Stream {
            peer: NONE,
            phase: Phase::Connecting,
            rx_fin: false,
            reset: false,
            tx_shut: false,
            so_error: None,
            port,
            resolve_at,
            refuse,
            urgent: None,
        }))?;
        st.record(b'o', id, port as u64);
        Ok(SimSocket { net: self, id })
    }

    /// Whether `socket`'s connect has completed.
    pub fn is_established(&self, socket: &SimSocket<'_, S, B, W>) -> bool {
        matches!(&self.st.borrow().socks[socket.id as usize].kind, Kind::Stream(s) if s.phase == Phase::Established)
    }

    /// The readiness the selector would report for `socket` now.
    pub fn readiness(&self, socket: &SimSocket<'_, S, B, W>) -> Readiness {
        self.st.borrow().readiness(socket.id)
    }

    /// Resets `socket`'s connection from outside (both ends see it).
    pub fn reset(&self, socket: &SimSocket<'_, S, B, W>) {
        let mut st = self.st.borrow_mut();
        st.reset_pair(socket.id);
        st.record(b'R', socket.id, 0);
    }

    /// The first socket the selector kept reporting ready while nothing serviced it
    /// (see [`Stall`]), if any. Scenarios and the fuzz interpreters fail a run that
    /// has one.
    pub fn stall(&self) -> Option<Stall> {
        self.st.borrow().stall.get()
    }

    /// Bytes in the largest receive buffer: never above `B`.
    pub fn max_buffered(&self) -> usize {
        let st = self.st.borrow();
        st.socks[..st.used]
            .iter()
            .map(|s| s.rx.len())
            .max()
            .unwrap_or(0)
    }
}

impl<const S: usize, const B: usize, const W: usize> SimSocket<'_, S, B, W> {
    /// Its id (the selector source).
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Sends one TCP urgent byte (`send(MSG_OOB)`): the peer sees priority readiness
    /// until it reads the byte with `recv_priority`. A newer urgent byte replaces one
    /// not yet read, as TCP's single urgent mark does.
    ///
    /// # Errors
    /// `ENOTCONN` unless the connection is established, `EPIPE` once this side shut
    /// down writing, `ECONNRESET` after a reset.
    pub fn send_urgent(&self, byte: u8) -> Result<(), SocketError> {
        let mut st = self.net.st.borrow_mut();
        let id = self.id;
        let peer = match st.stream(id) {
            Some(s) if s.phase != Phase::Established => return Err(err(errno::ENOTCONN)),
            Some(s) if s.reset => return Err(err(errno::ECONNRESET)),
            Some(s) if s.tx_shut => return Err(err(errno::EPIPE)),
            Some(s) => s.peer,
            None => return Err(err(errno::ENOTCONN)),
        };
        if let Some(p) = st.stream(peer) {
            p.urgent = Some(byte);
        }
        st.record(b'u', id, byte as u64);
        Ok(())
    }
}

impl<'n, const S: usize, const B: usize, const W: usize> Socket for SimSocket<'n, S, B, W> {
    type Source = u32;

    fn source(&self) -> u32 {
        self.id as u32
    }

    fn initial_state(&mut self) -> State {
        match &self.net.st.borrow().socks[self.id as usize].kind {
            Kind::Listener { .. } => State::Listening,
            Kind::Source => State::Source,
            Kind::Dgram(_) => State::Datagram,
            Kind::Stream(s) if s.phase == Phase::Established => State::Connected,
            Kind::Stream(_) => State::Connecting,
            Kind::Free | Kind::Closed => State::Open,
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        if self.is_datagram() {
            return self.recv_one_datagram(buf);
        }
        let mut guard = self.net.st.borrow_mut();
        let st = &mut *guard;
        let id = self.id;
        let result = (|| {
            let s = st.stream_for_io(id)?;
            if s.phase != Phase::Established {
                return if s.phase == Phase::Connecting {
                    Ok(Recv::WouldBlock)
                } else {
                    Err(err(errno::ENOTCONN))
                };
            }
            if s.reset {
                return Err(err(errno::ECONNRESET));
            }
            if buf.is_empty() {
                return Ok(Recv::Data(0));
            }
            let rx_fin = s.rx_fin;
            if st.socks[id as usize].rx.is_empty() {
                return Ok(if rx_fin { Recv::Eof } else { Recv::WouldBlock });
            }
            let Some(want) = st.transfer_faults(id, buf.len(), Fault::ShortRead)? else {
                return Ok(Recv::WouldBlock);
            };
            let n = st.socks[id as usize].rx.peek(&mut buf[..want]);
            st.socks[id as usize].rx.consume(n);
            Ok(Recv::Data(n))
        })();
        if matches!(result, Ok(Recv::Data(1..)) | Ok(Recv::Eof) | Err(_)) {
            st.progressed(id);
        }
        st.record(
            b'r',
            id,
            outcome_code(&result.map(|r| match r {
                Recv::Data(n) => n as u64,
                Recv::Eof => u64::MAX - 1,
                Recv::WouldBlock => u64::MAX - 2,
            })),
        );
        result
    }

    fn send(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        if self.is_datagram() {
            return self.send_datagram_to(buf, None);
        }
        let mut guard = self.net.st.borrow_mut();
        let st = &mut *guard;
        let id = self.id;
        let result = (|| {
            let s = st.stream_for_io(id)?;
            match s.phase {
                Phase::Connecting => return Ok(Sent::WouldBlock),
                Phase::Failed => return Err(err(errno::EPIPE)),
                Phase::Established => {}
            }
            if s.reset {
                return Err(err(errno::ECONNRESET));
            }
            if s.tx_shut {
                return Err(err(errno::EPIPE));
            }
            let peer = s.peer as usize;
            if !matches!(st.socks.get(peer).map(|p| &p.kind), Some(Kind::Stream(_))) {
                // The peer closed: like TCP, the write draws a reset.
                st.reset_pair(id);
                return Err(err(errno::EPIPE));
            }
            if buf.is_empty() {
                return Ok(Sent::Bytes(0));
            }
            let Some(want) = st.transfer_faults(id, buf.len(), Fault::ShortWrite)? else {
                return Ok(Sent::WouldBlock);
            };
            let n = st.socks[peer].rx.push(&buf[..want]);
            Ok(if n == 0 {
                Sent::WouldBlock
            } else {
                Sent::Bytes(n)
            })
        })();
        if matches!(result, Ok(Sent::Bytes(1..)) | Err(_)) {
            st.progressed(id);
        }
        st.record(
            b's',
            id,
            outcome_code(&result.map(|r| match r {
                Sent::Bytes(n) => n as u64,
                Sent::WouldBlock => u64::MAX - 2,
            })),
        );
        result
    }

    fn accept(&mut self) -> Result<Option<Self>, SocketError> {
        let mut guard = self.net.st.borrow_mut();
        let st = &mut *guard;
        let id = self.id;
        let pending = match &st.socks[id as usize].kind {
            Kind::Listener { backlog, .. } => !backlog.is_empty(),
            Kind::Closed => return Err(err(errno::EBADF)),
            _ => return Err(err(errno::EINVAL)),
        };
        if !pending {
            st.record(b'a', id, u64::MAX - 2);
            return Ok(None);
        }
        if st.fault(Fault::AcceptEmfile) {
            st.record(b'a', id, u64::MAX - 3);
            return Err(err(errno::EMFILE));
        }
        let Kind::Listener { backlog, .. } = &mut st.socks[id as usize].kind else {
            return Ok(None);
        };
        let Some(conn) = backlog.pop_front() else {
            return Ok(None);
        };
        if st.fault(Fault::AcceptAborted) {
            // The client reset before we accepted.
            st.reset_pair(conn);
            st.socks[conn as usize].kind = Kind::Closed;
            st.progressed(id);
            st.record(b'a', id, u64::MAX - 4);
            return Err(err(errno::ECONNABORTED));
        }
        st.progressed(id);
        st.record(b'a', id, conn as u64);
        Ok(Some(SimSocket {
            net: self.net,
            id: conn,
        }))
    }

    fn take_error(&mut self) -> Result<Option<SocketError>, SocketError> {
        let mut st = self.net.st.borrow_mut();
        let id = self.id;
        let e = match &mut st.socks[id as usize].kind {
            Kind::Stream(s) => {
                if s.reset && s.so_error.is_none() && s.phase == Phase::Established {
                    Some(err(errno::ECONNRESET))
                } else {
                    s.so_error.take()
                }
            }
            Kind::Dgram(d) => d.so_error.take(),
            _ => None,
        };
        if e.is_some() {
            st.progressed(id);
        }
        st.record(
            b'e',
            id,
            e.map_or(0, |e| e.raw_os_error().unwrap_or(0) as u64),
        );
        Ok(e)
    }

    fn shutdown_write(&mut self) -> Result<(), SocketError> {
        let mut st = self.net.st.borrow_mut();
        let id = self.id;
        let peer = match st.stream(id) {
            Some(s) if s.phase == Phase::Established => {
                s.tx_shut = true;
                s.peer
            }
            _ => return Err(err(errno::ENOTCONN)),
        };
        if let Some(p) = st.stream(peer) {
            p.rx_fin = true;
        }
        st.progressed(id);
        st.record(b'h', id, 0);
        Ok(())
    }

    fn next_event(&mut self) -> Option<SourceEvent> {
        let mut guard = self.net.st.borrow_mut();
        let st = &mut *guard;
        let id = self.id;
        let sock = &mut st.socks[id as usize];
        let event = match sock.kind {
            Kind::Source if sock.rx.len() >= EVENT_BYTES => {
                let mut record = [0u8; EVENT_BYTES];
                sock.rx.peek(&mut record);
                sock.rx.consume(EVENT_BYTES);
                event_of_record(record)
            }
            _ => None,
        };
        if event.is_some() {
            st.progressed(id);
        }
        st.record(b'n', id, event.map_or(0, event_code));
        event
    }

    fn recv_priority(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        let mut st = self.net.st.borrow_mut();
        let id = self.id;
        let result = match st.stream(id) {
            Some(_) if buf.is_empty() => Ok(Recv::Data(0)),
            Some(s) => match s.urgent.take() {
                Some(b) => {
                    buf[0] = b;
                    Ok(Recv::Data(1))
                }
                // Linux: no urgent data pending is EINVAL.
                None => Err(err(errno::EINVAL)),
            },
            None => Err(err(errno::ENOTCONN)),
        };
        if matches!(result, Ok(Recv::Data(1))) {
            st.progressed(id);
        }
        st.record(
            b'p',
            id,
            outcome_code(&result.map(|r| match r {
                Recv::Data(n) => n as u64,
                _ => u64::MAX - 2,
            })),
        );
        result
    }

    fn close(&mut self) -> Result<(), SocketError> {
        let mut guard = self.net.st.borrow_mut();
        let st = &mut *guard;
        let id = self.id;
        let kind = core::mem::replace(&mut st.socks[id as usize].kind, Kind::Closed);
        match kind {
            Kind::Closed | Kind::Free => {
                st.socks[id as usize].kind = kind;
                return Ok(());
            }
            Kind::Stream(s) => {
                // Unread data makes TCP answer a close with a reset.
                let unread = !st.socks[id as usize].rx.is_empty();
                if let Some(p) = st.stream(s.peer) {
                    if unread {
                        p.reset = true
                    } else {
                        p.rx_fin = true
                    }
                }
            }
            // Pending events go with it; datagrams on their way to a closed socket
            // draw a "port unreachable".
            Kind::Source | Kind::Dgram(_) => {}
            Kind::Listener { mut backlog, .. } => {
                // Pending connections are reset.
                while let Some(c) = backlog.pop_front() {
                    st.reset_pair(c);
                    st.socks[c as usize].kind = Kind::Closed;
                }
            }
        }
        st.socks[id as usize].rx.clear();
        st.progressed(id);
        st.record(b'x', id, 0);
        Ok(())
    }
}

/// A source's pending event as framed in its receive buffer: a tag, then two
/// little-endian 32-bit words.
fn event_record(e: SourceEvent) -> [u8; EVENT_BYTES] {
    let (tag, a, b) = match e {
        SourceEvent::Wake => (0u8, 0u32, 0u32),
        SourceEvent::Signal(n) => (1, n as u32, 0),
        SourceEvent::Exit { pid, status } => match status {
            crate::ExitStatus::Code(c) => (2, pid, c as u32),
            crate::ExitStatus::Signal(n) => (3, pid, n as u32),
            crate::ExitStatus::Unknown => (4, pid, 0),
        },
    };
    let [a0, a1, a2, a3] = a.to_le_bytes();
    let [b0, b1, b2, b3] = b.to_le_bytes();
    [tag, a0, a1, a2, a3, b0, b1, b2, b3]
}

/// The event [`event_record`] framed (`None` for a tag it never writes).
fn event_of_record(r: [u8; EVENT_BYTES]) -> Option<SourceEvent> {
    let a = u32::from_le_bytes([r[1], r[2], r[3], r[4]]);
    let b = u32::from_le_bytes([r[5], r[6], r[7], r[8]]);
    Some(match r[0] {
        0 => SourceEvent::Wake,
        1 => SourceEvent::Signal(a as i32),
        2 => SourceEvent::Exit {
            pid: a,
            status: crate::ExitStatus::Code(b as i32),
        },
        3 => SourceEvent::Exit {
            pid: a,
            status: crate::ExitStatus::Signal(b as i32),
        },
        4 => SourceEvent::Exit {
            pid: a,
            status: crate::ExitStatus::Unknown,
        },
        _ => return None,
    })
}

/// An event, as a number for the trace.
fn event_code(e: SourceEvent) -> u64 {
    match e {
        SourceEvent::Wake => 1,
        SourceEvent::Signal(n) => 0x100 | n as u32 as u64,
        SourceEvent::Exit { pid, status } => {
            let s = match status {
                crate::ExitStatus::Code(c) => c as u32 as u64,
                crate::ExitStatus::Signal(n) => 0x1_0000_0000 | n as u32 as u64,
                crate::ExitStatus::Unknown => 0x2_0000_0000,
            };
            (2 << 60) | ((pid as u64) << 33) ^ s
        }
    }
}

pub(super) fn outcome_code(r: &Result<u64, SocketError>) -> u64 {
    match r {
        Ok(x) => *x,
        Err(e) => 0x8000_0000_0000_0000 | e.raw_os_error().unwrap_or(0) as u64,
    }
}

impl<'n, const S: usize, const B: usize, const W: usize> SimSelector<'n, S, B, W> {
    /// The selector of `net`.
    pub const fn new(net: &'n SimNet<S, B, W>) -> Self {
        SimSelector {
            net: Some(net),
            regs: Registrations::new(),
            more: false,
        }
    }

    /// A selector that watches no network yet: it knows no time, and a wait fails
    /// at once ([`SimStalled`]: nothing could ever be ready). Needing no network, it
    /// can be built at compile time, and with it a whole reactor:
    /// `const { Reactor::new(SimSelector::detached()) }` is a reactor that costs no
    /// stack to build beyond its own size (a reactor built at run time may pass
    /// through temporaries of its parts first, more of them the less the code is
    /// optimized), to be given its network with
    /// [`Reactor::selector_mut`](crate::Reactor::selector_mut) and
    /// [`new`](Self::new) before it is used.
    pub const fn detached() -> Self {
        SimSelector {
            net: None,
            regs: Registrations::new(),
            more: false,
        }
    }

    /// Forgets what the last wait found for `source` and did not hand out: it was
    /// registered or deregistered since.
    fn forget_left(&mut self, source: u32) {
        if self.more
            && let Some(net) = self.net
            && let Some(sock) = net.st.borrow_mut().socks.get_mut(source as usize)
        {
            sock.left = Readiness::EMPTY;
        }
    }
}

impl<const S: usize, const B: usize, const W: usize> Selector for SimSelector<'_, S, B, W> {
    type Source = u32;
    type Error = SimStalled;

    fn now(&self) -> Option<Duration> {
        self.net.map(SimNet::now)
    }

    fn register(
        &mut self,
        token: Token,
        source: u32,
        interest: Interest,
    ) -> Result<(), SourceError> {
        if source as usize >= S {
            return Err(SourceError::OutOfRange { limit: S });
        }
        self.regs.register(token, source, interest)?;
        self.forget_left(source);
        Ok(())
    }

    fn reregister(
        &mut self,
        token: Token,
        source: u32,
        _was: Interest,
        interest: Interest,
    ) -> Result<(), SourceError> {
        self.regs.reregister(token, source, interest)
    }

    fn deregister(&mut self, token: Token, source: u32, _was: Interest) {
        if self.regs.deregister(token) {
            self.forget_left(source);
        }
    }

    fn select(
        &mut self,
        events: &mut Events<'_>,
        timeout: Option<Duration>,
    ) -> Result<usize, SimStalled> {
        let Some(net) = self.net else {
            return Err(SimStalled);
        };
        let mut st = net.st.borrow_mut();
        if core::mem::take(&mut self.more) {
            // What the last wait left is forgotten.
            let used = st.used;
            for sock in st.socks.iter_mut().take(used) {
                sock.left = Readiness::EMPTY;
            }
        }
        st.check_progress();
        let deadline = timeout.map(|t| st.now + t);
        let mut interrupted = false;
        loop {
            st.resolve();
            let mut count = 0;
            let mut left = 0;
            for &Registered {
                token,
                source,
                interest,
            } in self.regs.watched()
            {
                let real = st.readiness(source as u16).masked_by(interest);
                let mut r = real;
                if st.fault(Fault::Spurious) {
                    r |= if interest.is_readable() {
                        Readiness::READABLE
                    } else {
                        Readiness::WRITABLE
                    };
                }
                let r = r.masked_by(interest);
                let pushed = r.is_empty() || events.push(token, r);
                if !r.is_empty() {
                    if pushed {
                        count += 1;
                    } else {
                        left += 1;
                    }
                }
                if let Some(sock) = st.socks.get_mut(source as usize) {
                    sock.reported = !real.is_empty();
                    sock.last = real;
                    sock.left = if pushed { Readiness::EMPTY } else { r };
                }
            }
            self.more = left > 0;
            // All of what was found, as one record (the same as `count` when all of
            // it fits).
            let found = count + left;
            if found > 0 {
                st.record(b'w', found as u16, 1);
                return Ok(count);
            }
            // Nothing ready: block until the next event or the deadline.
            if !interrupted && st.fault(Fault::Eintr) {
                // A signal: the wait is retried with the time that remains.
                interrupted = true;
                continue;
            }
            let next = st.next_event();
            let target = match (next, deadline) {
                (Some(n), Some(d)) => n.min(d),
                (Some(n), None) => n,
                (None, Some(d)) => d,
                (None, None) => return Err(SimStalled),
            };
            if target <= st.now {
                if deadline.is_some_and(|d| d <= st.now) {
                    st.record(b'w', 0, 0);
                    return Ok(0);
                }
                // An event is due now: resolve it and look again.
                continue;
            }
            st.now = target;
        }
    }

    /// Hands out what the last wait found and did not fit, in slot order, masked by
    /// each source's interest now (nothing for one not watched any more); no fault
    /// is drawn and nothing recorded.
    fn select_more(&mut self, events: &mut Events<'_>) -> usize {
        let Some(net) = self.net.filter(|_| self.more) else {
            return 0;
        };
        let mut st = net.st.borrow_mut();
        let mut count = 0;
        for reg in self.regs.watched() {
            let Some(sock) = st.socks.get_mut(reg.source as usize) else {
                continue;
            };
            let r = sock.left.masked_by(reg.interest);
            if !events.push(reg.token, r) {
                return count;
            }
            sock.left = Readiness::EMPTY;
            if !r.is_empty() {
                count += 1;
            }
        }
        self.more = false;
        count
    }
}
