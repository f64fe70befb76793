//! The simulated datagram network, beside the stream network of the same
//! [`SimNet`]: datagram sockets bound to ports of their own (UDP's port space, apart
//! from the listeners'), datagrams in flight on a wire of `W` slots ([`WIRE`] unless
//! the network's type says otherwise: `SimNet<S, B, W>`), and seeded
//! faults: loss, duplication, reordering (extra delay), and a "port unreachable" for
//! a datagram that finds no socket, which a *connected* sender sees as a pending
//! `ECONNREFUSED` (as on Linux: an unconnected socket is not told). Nothing is ever
//! corrupted: a datagram arrives whole, with its source, or not at all.
//!
//! * A send copies the datagram onto the wire (`EMSGSIZE` above [`MAX_DATAGRAM`]):
//!   lost at once, or due after the latency (plus a random extra delay for a
//!   reordered one), and maybe duplicated with a delay of its own. A socket has
//!   [`SEND_BUFFER`] datagrams on the wire at most (its send buffer): beyond that a
//!   send would block and the socket is not writable, whatever the others do. A
//!   datagram that finds the whole wire taken is dropped on the way
//!   ([`DgramFault::Congestion`]), as a router's full queue drops.
//! * When it is due (virtual time jumps there, as for connects), it is delivered
//!   into the bound socket's receive buffer, framed with its source and length; a
//!   full buffer drops it (counted as [`DgramFault::Overflow`]); a connected socket
//!   drops datagrams from other ports. No socket there: a port unreachable travels
//!   back to the sender with the same latency.
//! * Readiness: readable while a datagram is buffered, error while an error is
//!   pending, writable while the socket has room in its send buffer.
//!
//! Every send, receive, delivery, drop and error is folded into the network's trace
//! hash, every receive and send counts as progress for the stall check, and every
//! random decision comes from the network's generator: the same seed gives the same
//! run.

use core::fmt;
use core::time::Duration;

use super::net::{Kind, NetState, Sock, err, outcome_code};
use super::{Fault, Maybe, Rng, SimNet, SimSocket};
use crate::{Datagram, Readiness, Received, Recv, Sent, SocketError, errno};

/// The largest datagram the simulated network carries: a larger send is `EMSGSIZE`.
pub const MAX_DATAGRAM: usize = 512;
/// Datagrams in flight at most (network-wide) on a [`SimNet<S, B>`](SimNet), the
/// default of its third parameter `W`: one sent while every slot is taken is dropped
/// (congestion). Each slot holds a whole datagram ([`MAX_DATAGRAM`] bytes).
pub const WIRE: usize = 32;
/// Datagrams one socket may have in flight (its send buffer): one more would block.
pub const SEND_BUFFER: usize = 8;
/// The first port handed out to sockets that do not choose one.
const EPHEMERAL: u16 = 49_152;
/// Frame header in a receive buffer: the source port and the length, little-endian.
const HEADER: usize = 4;

/// The address of a simulated datagram socket: its port.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SimAddr(pub u16);

impl fmt::Display for SimAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sim:{}", self.0)
    }
}

/// Kinds of datagram fault and outcome, counted per run ([`SimNet::dgram_fired`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DgramFault {
    /// A datagram was lost on the way.
    Loss,
    /// A datagram arrived twice.
    Duplicate,
    /// A datagram was held back (a random extra delay), so later ones may pass it.
    Reorder,
    /// A connected socket was told its peer's port is closed (`ECONNREFUSED`).
    Refused,
    /// A datagram arrived at a full receive buffer (or one too small for it) and was
    /// dropped, as a kernel does.
    Overflow,
    /// A datagram found every slot of the wire taken and was dropped on the way.
    Congestion,
}

/// How many [`DgramFault`] kinds there are.
pub const DGRAM_FAULTS: usize = 6;

impl DgramFault {
    /// Every kind.
    pub const ALL: [DgramFault; DGRAM_FAULTS] = [
        DgramFault::Loss,
        DgramFault::Duplicate,
        DgramFault::Reorder,
        DgramFault::Refused,
        DgramFault::Overflow,
        DgramFault::Congestion,
    ];

    /// Its index in [`DgramFault::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short name.
    pub const fn name(self) -> &'static str {
        match self {
            DgramFault::Loss => "loss",
            DgramFault::Duplicate => "duplicate",
            DgramFault::Reorder => "reorder",
            DgramFault::Refused => "refused",
            DgramFault::Overflow => "overflow",
            DgramFault::Congestion => "congestion",
        }
    }
}

/// The options of the datagram network. [`SimNet::new`] starts with
/// [`DgramConfig::quiet`]; [`SimNet::set_dgram_config`] changes them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DgramConfig {
    /// Probability that a datagram (or a port unreachable) is lost, per mille.
    pub loss: u16,
    /// Probability that a datagram is delivered twice, per mille.
    pub duplicate: u16,
    /// Probability that a datagram is held back by up to [`jitter`](Self::jitter),
    /// per mille.
    pub reorder: u16,
    /// How long a datagram takes.
    pub latency: Duration,
    /// The longest extra delay of a reordered datagram.
    pub jitter: Duration,
}

impl DgramConfig {
    /// No loss, duplication or reordering; 100 µs per datagram.
    pub const fn quiet() -> Self {
        DgramConfig {
            loss: 0,
            duplicate: 0,
            reorder: 0,
            latency: Duration::from_micros(100),
            jitter: Duration::from_millis(5),
        }
    }

    /// Every option drawn from `seed`: about one seed in eight without faults, the
    /// others with loss up to 30 %, duplication and reordering up to 20 %, a latency
    /// from 10 µs to 5 ms and a jitter of up to 20 ms.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0xd6a4_0000_5eed_0017);
        let mut cfg = DgramConfig::quiet();
        cfg.latency = Duration::from_micros(rng.range(10, 5_000));
        cfg.jitter = Duration::from_micros(rng.range(100, 20_000));
        if rng.below(8) == 0 {
            return cfg;
        }
        for (rate, max) in [
            (&mut cfg.loss, 300),
            (&mut cfg.duplicate, 200),
            (&mut cfg.reorder, 200),
        ] {
            if rng.below(3) != 0 {
                *rate = rng.range(1, max) as u16;
            }
        }
        cfg
    }
}

impl fmt::Display for DgramConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dgram: loss={}‰ duplicate={}‰ reorder={}‰ latency={:?} jitter={:?}",
            self.loss, self.duplicate, self.reorder, self.latency, self.jitter
        )
    }
}

/// A datagram socket of the simulated network.
#[derive(Debug)]
pub(super) struct Dgram {
    /// The port it is bound to.
    port: u16,
    /// The port it is connected to: it sends there by default and receives from
    /// there only.
    peer: Option<u16>,
    /// A pending error (`ECONNREFUSED`), returned by the next operation.
    pub(super) so_error: Option<SocketError>,
}

/// One datagram on the wire (or a port unreachable on its way back).
#[derive(Copy, Clone)]
struct Flight {
    at: Duration,
    seq: u32,
    from: u16,
    to: u16,
    /// A port unreachable for a datagram `to` sent to `from`.
    unreachable: bool,
    len: u16,
    bytes: [u8; MAX_DATAGRAM],
}

/// The datagram network's state inside a [`SimNet`]. Its empty state is zero bytes
/// (see [`SimNet::empty`]): no options set means [`DgramConfig::quiet`], and the
/// next ephemeral port is counted from [`EPHEMERAL`].
pub(super) struct Wire<const W: usize> {
    cfg: Maybe<DgramConfig>,
    flights: [Maybe<Flight>; W],
    seq: u32,
    /// The next ephemeral port, less [`EPHEMERAL`].
    next_port: u16,
    fired: [u32; DGRAM_FAULTS],
}

impl<const W: usize> Wire<W> {
    pub(super) const fn new() -> Self {
        Wire {
            cfg: Maybe::None,
            flights: [Maybe::None; W],
            seq: 0,
            next_port: 0,
            fired: [0; DGRAM_FAULTS],
        }
    }

    /// As [`new`](Self::new) builds it, in place.
    pub(super) fn reset(&mut self) {
        self.cfg = Maybe::None;
        for f in self.flights.iter_mut() {
            *f = Maybe::None;
        }
        self.seq = 0;
        self.next_port = 0;
        self.fired = [0; DGRAM_FAULTS];
    }

    /// Its options.
    fn cfg(&self) -> DgramConfig {
        self.cfg.get().unwrap_or(DgramConfig::quiet())
    }

    /// The datagrams in flight.
    fn flying(&self) -> impl Iterator<Item = &Flight> {
        self.flights.iter().filter_map(|f| match f {
            Maybe::Some(f) => Some(f),
            Maybe::None => None,
        })
    }

    /// When the next datagram is due.
    pub(super) fn next_arrival(&self) -> Option<Duration> {
        self.flying().map(|f| f.at).min()
    }

    fn free_slot(&self) -> Option<usize> {
        self.flights.iter().position(Maybe::is_none)
    }

    fn in_flight(&self) -> usize {
        self.flying().count()
    }

    /// Datagrams port `port` has on the wire (its send buffer's use).
    fn sent_from(&self, port: u16) -> usize {
        self.flying()
            .filter(|f| f.from == port && !f.unreachable)
            .count()
    }

    /// The slot of the datagram due first (ties: sent first).
    fn due(&self, now: Duration) -> Option<usize> {
        let mut best: Option<(Duration, u32, usize)> = None;
        for (i, f) in self.flights.iter().enumerate() {
            if let Maybe::Some(f) = f
                && f.at <= now
                && best.is_none_or(|(at, seq, _)| (f.at, f.seq) < (at, seq))
            {
                best = Some((f.at, f.seq, i));
            }
        }
        best.map(|(_, _, i)| i)
    }

    fn count(&mut self, f: DgramFault) {
        self.fired[f.index()] += 1;
    }
}

fn code(f: DgramFault) -> u64 {
    f.index() as u64
}

impl<const S: usize, const B: usize, const W: usize> NetState<S, B, W> {
    fn dgram(&mut self, id: u16) -> Option<&mut Dgram> {
        match &mut self.socks.get_mut(id as usize)?.kind {
            Kind::Dgram(d) => Some(d),
            _ => None,
        }
    }

    /// The open datagram socket bound to `port`.
    fn bound(&self, port: u16) -> Option<u16> {
        self.socks[..self.used]
            .iter()
            .position(|s| matches!(&s.kind, Kind::Dgram(d) if d.port == port))
            .map(|i| i as u16)
    }

    fn dgram_chance(&mut self, per_mille: u16, f: DgramFault) -> bool {
        let hit = self.rng.chance(per_mille);
        if hit {
            self.wire.count(f);
        }
        hit
    }

    /// Level readiness of datagram socket `sock`.
    pub(super) fn dgram_readiness(&self, sock: &Sock<B>, d: &Dgram) -> Readiness {
        let mut r = Readiness::EMPTY;
        if !sock.rx.is_empty() {
            r |= Readiness::READABLE;
        }
        if d.so_error.is_some() {
            r |= Readiness::ERROR;
        }
        if self.wire.sent_from(d.port) < SEND_BUFFER {
            r |= Readiness::WRITABLE;
        }
        r
    }

    /// Puts a datagram (or a port unreachable) on the wire, due after the latency
    /// (and a jitter when reordered); on a full wire it is dropped (congestion).
    fn launch(&mut self, from: u16, to: u16, data: &[u8], unreachable: bool) {
        let Some(slot) = self.wire.free_slot() else {
            self.wire.count(DgramFault::Congestion);
            self.record(b'Z', from, code(DgramFault::Congestion));
            return;
        };
        let cfg = self.wire.cfg();
        let mut at = self.now + cfg.latency;
        if !unreachable && self.dgram_chance(cfg.reorder, DgramFault::Reorder) {
            let jitter = cfg.jitter.as_nanos().max(1) as u64;
            at += Duration::from_nanos(self.rng.range(1, jitter));
        }
        let mut bytes = [0u8; MAX_DATAGRAM];
        bytes[..data.len()].copy_from_slice(data);
        self.wire.seq = self.wire.seq.wrapping_add(1);
        self.wire.flights[slot] = Maybe::Some(Flight {
            at,
            seq: self.wire.seq,
            from,
            to,
            unreachable,
            len: data.len() as u16,
            bytes,
        });
    }

    /// Delivers every datagram (and port unreachable) that is due, oldest first.
    pub(super) fn deliver_datagrams(&mut self) {
        while let Some(slot) = self.wire.due(self.now) {
            let Some(f) = self.wire.flights[slot].take() else {
                return;
            };
            if f.unreachable {
                // Only a socket connected to the closed port hears of it.
                let refused = self.bound(f.to).and_then(|id| {
                    let d = self.dgram(id)?;
                    (d.peer == Some(f.from)).then(|| {
                        d.so_error = Some(err(errno::ECONNREFUSED));
                        id
                    })
                });
                if let Some(id) = refused {
                    self.wire.count(DgramFault::Refused);
                    self.record(b'I', id, f.from as u64);
                }
                continue;
            }
            let len = f.len as usize;
            let Some(id) = self.bound(f.to) else {
                // A closed port answers with a port unreachable, which may be lost.
                let lost = self.dgram_chance(self.wire.cfg().loss, DgramFault::Loss);
                if !lost {
                    self.launch(f.to, f.from, &[], true);
                }
                self.record(b'U', f.to, f.from as u64);
                continue;
            };
            let accepts = self
                .dgram(id)
                .is_some_and(|d| d.peer.is_none_or(|p| p == f.from));
            let rx = &mut self.socks[id as usize].rx;
            if !accepts {
                self.record(b'Z', id, f.from as u64);
                continue;
            }
            if rx.free() < HEADER + len {
                self.wire.count(DgramFault::Overflow);
                self.record(b'Z', id, u64::MAX);
                continue;
            }
            let [a, b] = f.from.to_le_bytes();
            let [c, d] = f.len.to_le_bytes();
            rx.push(&[a, b, c, d]);
            rx.push(&f.bytes[..len]);
            self.record(b'Y', id, len as u64);
        }
    }

    /// One datagram from `id`'s receive buffer (after a pending error, and the
    /// would-block fault).
    fn take_datagram(
        &mut self,
        id: u16,
        buf: &mut [u8],
    ) -> Result<Option<Received<SimAddr>>, SocketError> {
        match self.socks.get(id as usize).map(|s| &s.kind) {
            Some(Kind::Dgram(_)) => {}
            Some(Kind::Closed) => return Err(err(errno::EBADF)),
            _ => return Err(SocketError::UNSUPPORTED),
        }
        if let Some(e) = self.dgram(id).and_then(|d| d.so_error.take()) {
            return Err(e);
        }
        let rx = &self.socks[id as usize].rx;
        if rx.is_empty() {
            return Ok(None);
        }
        if self.fault(Fault::WouldBlock) {
            return Ok(None);
        }
        let rx = &mut self.socks[id as usize].rx;
        let mut header = [0u8; HEADER];
        rx.peek(&mut header);
        rx.consume(HEADER);
        let from = u16::from_le_bytes([header[0], header[1]]);
        let len = u16::from_le_bytes([header[2], header[3]]) as usize;
        let copied = len.min(buf.len());
        rx.peek(&mut buf[..copied]);
        rx.consume(len);
        Ok(Some(Received {
            len,
            copied,
            from: SimAddr(from),
        }))
    }

    /// Sends one datagram from `id` to `to` (`None`: its peer).
    fn send_datagram(
        &mut self,
        id: u16,
        data: &[u8],
        to: Option<u16>,
    ) -> Result<Sent, SocketError> {
        let (port, peer) = match self.socks.get_mut(id as usize).map(|s| &mut s.kind) {
            Some(Kind::Dgram(d)) => {
                if let Some(e) = d.so_error.take() {
                    return Err(e);
                }
                (d.port, d.peer)
            }
            Some(Kind::Closed) => return Err(err(errno::EBADF)),
            _ => return Err(SocketError::UNSUPPORTED),
        };
        let Some(to) = to.or(peer) else {
            return Err(err(errno::EDESTADDRREQ));
        };
        if data.len() > MAX_DATAGRAM {
            return Err(err(errno::EMSGSIZE));
        }
        if self.wire.sent_from(port) >= SEND_BUFFER {
            return Ok(Sent::WouldBlock);
        }
        if self.fault(Fault::WouldBlock) {
            // Would-block although writable: the handler did its part, so it counts
            // as progress, not a stall (as for streams).
            self.progressed(id);
            return Ok(Sent::WouldBlock);
        }
        let cfg = self.wire.cfg();
        if self.dgram_chance(cfg.loss, DgramFault::Loss) {
            self.record(b'Z', id, code(DgramFault::Loss));
            return Ok(Sent::Bytes(data.len()));
        }
        self.launch(port, to, data, false);
        if self.dgram_chance(cfg.duplicate, DgramFault::Duplicate) {
            self.launch(port, to, data, false);
        }
        Ok(Sent::Bytes(data.len()))
    }

    fn new_dgram(&mut self, port: Option<u16>, peer: Option<u16>) -> Result<u16, SocketError> {
        let port = match port {
            Some(p) if self.bound(p).is_some() => return Err(err(errno::EADDRINUSE)),
            Some(p) => p,
            None => loop {
                let p = EPHEMERAL + self.wire.next_port;
                self.wire.next_port = p.checked_add(1).map_or(0, |next| next - EPHEMERAL);
                if self.bound(p).is_none() {
                    break p;
                }
            },
        };
        let id = self.alloc(Kind::Dgram(Dgram {
            port,
            peer,
            so_error: None,
        }))?;
        self.record(b'B', id, ((peer.unwrap_or(0) as u64) << 16) | port as u64);
        Ok(id)
    }
}

impl<const S: usize, const B: usize, const W: usize> SimNet<S, B, W> {
    /// A datagram socket bound to `port`.
    ///
    /// # Errors
    /// `EADDRINUSE` when a datagram socket is bound there, `EMFILE` when the network
    /// is full.
    pub fn bind_dgram(&self, port: u16) -> Result<SimSocket<'_, S, B, W>, SocketError> {
        let id = self.st.borrow_mut().new_dgram(Some(port), None)?;
        Ok(SimSocket { net: self, id })
    }

    /// A datagram socket on a port of the network's choosing (from 49152 up).
    ///
    /// # Errors
    /// `EMFILE` when the network is full.
    pub fn dgram(&self) -> Result<SimSocket<'_, S, B, W>, SocketError> {
        let id = self.st.borrow_mut().new_dgram(None, None)?;
        Ok(SimSocket { net: self, id })
    }

    /// A datagram socket on a port of the network's choosing, connected to `port`:
    /// it sends there with [`Datagram::send_datagram`], hears only from there, and
    /// learns (`ECONNREFUSED` from its next operation) when nothing is bound there.
    ///
    /// # Errors
    /// `EMFILE` when the network is full.
    pub fn connect_dgram(&self, port: u16) -> Result<SimSocket<'_, S, B, W>, SocketError> {
        let id = self.st.borrow_mut().new_dgram(None, Some(port))?;
        Ok(SimSocket { net: self, id })
    }

    /// The datagram network's options.
    pub fn dgram_config(&self) -> DgramConfig {
        self.st.borrow().wire.cfg()
    }

    /// Changes the datagram network's options from now on (datagrams in flight keep
    /// their arrival time).
    pub fn set_dgram_config(&self, cfg: DgramConfig) {
        self.st.borrow_mut().wire.cfg = Maybe::Some(cfg);
    }

    /// How often each datagram fault and outcome happened, by [`DgramFault::index`].
    pub fn dgram_fired(&self) -> [u32; DGRAM_FAULTS] {
        self.st.borrow().wire.fired
    }

    /// Datagrams (and port unreachables) in flight.
    pub fn in_flight(&self) -> usize {
        self.st.borrow().wire.in_flight()
    }
}

impl<const S: usize, const B: usize, const W: usize> SimSocket<'_, S, B, W> {
    /// Whether this is a datagram socket.
    pub fn is_datagram(&self) -> bool {
        matches!(
            self.net.st.borrow().socks[self.id as usize].kind,
            Kind::Dgram(_)
        )
    }

    /// The address of a datagram socket (`None` for other sockets).
    pub fn local_addr(&self) -> Option<SimAddr> {
        match &self.net.st.borrow().socks[self.id as usize].kind {
            Kind::Dgram(d) => Some(SimAddr(d.port)),
            _ => None,
        }
    }

    /// Receives one datagram, with the trace and the progress mark.
    fn recv_datagram(&mut self, buf: &mut [u8]) -> Result<Option<Received<SimAddr>>, SocketError> {
        let mut st = self.net.st.borrow_mut();
        let id = self.id;
        let result = st.take_datagram(id, buf);
        // Would-block after readiness (the fault) is the handler doing its part too.
        st.progressed(id);
        let code = outcome_code(&result.map(|r| r.map_or(u64::MAX - 2, |d| d.len as u64)));
        st.record(b'Q', id, code);
        result
    }

    /// `Socket::recv` of a datagram socket: one datagram; one longer than `buf` is
    /// consumed and reported as `EMSGSIZE`.
    pub(super) fn recv_one_datagram(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        match self.recv_datagram(buf)? {
            None => Ok(Recv::WouldBlock),
            Some(d) if d.truncated() => Err(err(errno::EMSGSIZE)),
            Some(d) => Ok(Recv::Data(d.copied)),
        }
    }

    /// Sends one datagram to `to` (`None`: the connected peer).
    pub(super) fn send_datagram_to(
        &mut self,
        buf: &[u8],
        to: Option<u16>,
    ) -> Result<Sent, SocketError> {
        let mut st = self.net.st.borrow_mut();
        let id = self.id;
        let result = st.send_datagram(id, buf, to);
        if !matches!(result, Ok(Sent::WouldBlock)) {
            st.progressed(id);
        }
        let code = outcome_code(&result.map(|r| match r {
            Sent::Bytes(n) => n as u64,
            Sent::WouldBlock => u64::MAX - 2,
        }));
        st.record(b'G', id, ((to.unwrap_or(0) as u64) << 32) | code);
        result
    }
}

impl<const S: usize, const B: usize, const W: usize> Datagram for SimSocket<'_, S, B, W> {
    type Addr = SimAddr;

    /// The next datagram delivered to this socket, with its source port and true
    /// length (one longer than `buf` is truncated and reported so).
    ///
    /// # Errors
    /// A pending `ECONNREFUSED` (reported once); `EBADF` once closed;
    /// `Unsupported` for a stream socket or listener.
    fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<SimAddr>>, SocketError> {
        self.recv_datagram(buf)
    }

    /// Puts `buf` on the wire to port `to.0`.
    ///
    /// # Errors
    /// `EMSGSIZE` above [`MAX_DATAGRAM`], a pending `ECONNREFUSED`, `EBADF` once
    /// closed, `Unsupported` for a stream socket or listener.
    fn send_to(&mut self, buf: &[u8], to: &SimAddr) -> Result<Sent, SocketError> {
        self.send_datagram_to(buf, Some(to.0))
    }

    /// Puts `buf` on the wire to the connected port.
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to); `EDESTADDRREQ` when not connected.
    fn send_datagram(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        self.send_datagram_to(buf, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{STALL_WAITS, SimConfig};
    use crate::{Event, Events, Interest, Selector, Socket, State, Token};

    type Net = SimNet<16, 256>;

    /// One wait of the network's selector on `socks` (read interest): virtual time
    /// jumps to the next arrival.
    fn wait(net: &Net, socks: &[&SimSocket<'_, 16, 256>]) {
        let mut sel = crate::sim::SimSelector::new(net);
        for s in socks {
            let token = Token::new(s.id() as u32, 0);
            sel.register(token, s.id() as u32, Interest::READABLE)
                .unwrap();
        }
        let mut buf = [Event::EMPTY; 8];
        let mut events = Events::new(&mut buf);
        sel.select(&mut events, Some(Duration::from_secs(1)))
            .unwrap();
    }

    #[test]
    fn datagrams_arrive_whole_with_their_source_after_the_latency() {
        let net = Net::new(SimConfig::quiet(1));
        let mut server = net.bind_dgram(53).unwrap();
        assert_eq!(server.initial_state(), State::Datagram);
        assert_eq!(
            net.bind_dgram(53).unwrap_err().raw_os_error(),
            Some(errno::EADDRINUSE)
        );
        let mut client = net.dgram().unwrap();
        let from = client.local_addr().unwrap();
        assert_eq!(client.send_to(b"hello", &SimAddr(53)), Ok(Sent::Bytes(5)));
        assert_eq!(client.send_to(b"", &SimAddr(53)), Ok(Sent::Bytes(0)));
        let mut buf = [0u8; 3];
        assert_eq!(server.recv_from(&mut buf), Ok(None), "not there yet");
        wait(&net, &[&server]);
        assert_eq!(net.now(), Duration::from_micros(100));
        let d = server.recv_from(&mut buf).unwrap().unwrap();
        assert_eq!(
            (d.from, d.len, d.copied, d.data(&buf)),
            (from, 5, 3, &b"hel"[..])
        );
        let d = server.recv_from(&mut buf).unwrap().unwrap();
        assert_eq!((d.len, d.truncated()), (0, false));
        assert_eq!(server.recv_from(&mut buf), Ok(None));
        assert_eq!(
            client.send_to(&[0u8; MAX_DATAGRAM + 1], &SimAddr(53)),
            Err(err(errno::EMSGSIZE))
        );
    }

    #[test]
    fn a_closed_port_refuses_connected_senders_only() {
        let net = Net::new(SimConfig::quiet(2));
        let mut connected = net.connect_dgram(99).unwrap();
        let mut loose = net.dgram().unwrap();
        connected.send_datagram(b"x").unwrap();
        loose.send_to(b"x", &SimAddr(99)).unwrap();
        wait(&net, &[&connected, &loose]);
        net.advance(Duration::from_millis(1));
        assert!(net.readiness(&connected).is_error());
        assert!(!net.readiness(&loose).is_error());
        let mut buf = [0u8; 4];
        assert_eq!(connected.recv_from(&mut buf), Err(err(errno::ECONNREFUSED)));
        assert_eq!(connected.recv_from(&mut buf), Ok(None), "reported once");
        assert_eq!(net.dgram_fired()[DgramFault::Refused.index()], 1);
        // A server appears: the connected socket's datagrams reach it.
        let mut server = net.bind_dgram(99).unwrap();
        connected.send_datagram(b"hi").unwrap();
        wait(&net, &[&server]);
        assert_eq!(server.recv_from(&mut buf).unwrap().unwrap().len, 2);
        // A connected socket hears only from its peer.
        loose
            .send_to(b"no", &connected.local_addr().unwrap())
            .unwrap();
        server
            .send_to(b"yes", &connected.local_addr().unwrap())
            .unwrap();
        wait(&net, &[&connected]);
        let d = connected.recv_from(&mut buf).unwrap().unwrap();
        assert_eq!((d.data(&buf), d.from), (&b"yes"[..], SimAddr(99)));
        assert_eq!(connected.recv_from(&mut buf), Ok(None));
    }

    #[test]
    fn a_full_send_buffer_pushes_back_a_full_wire_and_a_full_buffer_drop() {
        let net = Net::new(SimConfig::quiet(3));
        let _server = net.bind_dgram(7).unwrap();
        let mut c = net.dgram().unwrap();
        for _ in 0..SEND_BUFFER {
            assert_eq!(c.send_to(&[1; 100], &SimAddr(7)), Ok(Sent::Bytes(100)));
        }
        // Its own send buffer is full: not writable, a send would block.
        assert!(!net.readiness(&c).is_writable());
        assert_eq!(c.send_to(b"x", &SimAddr(7)), Ok(Sent::WouldBlock));
        // Others still send; once the wire is full, what they send is dropped.
        let mut others: std::vec::Vec<_> = (0..4).map(|_| net.dgram().unwrap()).collect();
        for o in others.iter_mut() {
            assert!(net.readiness(o).is_writable());
            for _ in 0..SEND_BUFFER {
                assert_eq!(o.send_to(&[2; 10], &SimAddr(7)), Ok(Sent::Bytes(10)));
            }
        }
        assert_eq!(net.in_flight(), WIRE);
        assert_eq!(
            net.dgram_fired()[DgramFault::Congestion.index()],
            (4 * SEND_BUFFER + SEND_BUFFER - WIRE) as u32
        );
        net.advance(Duration::from_millis(1));
        // 256-byte buffer: two 104-byte frames fit, then three 14-byte ones; the
        // rest overflowed.
        assert_eq!(
            net.dgram_fired()[DgramFault::Overflow.index()],
            WIRE as u32 - 5
        );
        assert!(net.readiness(&c).is_writable());
        assert!(net.max_buffered() <= 256);
    }

    #[test]
    fn a_network_without_a_wire_drops_every_datagram_as_congestion() {
        let net: SimNet<4, 256, 0> = SimNet::new(SimConfig::quiet(4));
        let mut server = net.bind_dgram(7).unwrap();
        let mut c = net.dgram().unwrap();
        assert!(net.readiness(&c).is_writable());
        assert_eq!(c.send_to(b"lost", &SimAddr(7)), Ok(Sent::Bytes(4)));
        assert_eq!(net.in_flight(), 0);
        assert_eq!(net.dgram_fired()[DgramFault::Congestion.index()], 1);
        net.advance(Duration::from_millis(1));
        let mut buf = [0u8; 8];
        assert_eq!(server.recv_from(&mut buf), Ok(None));
    }

    /// Streams, a source, datagrams and a stall on `net`, left dirty (datagrams in
    /// flight, events pending and scheduled, a stall recorded); what it saw.
    fn dirty_run(net: &Net) -> impl PartialEq + core::fmt::Debug + use<> {
        use crate::SourceEvent;
        let ms = Duration::from_millis;
        net.set_dgram_config(DgramConfig {
            loss: 200,
            duplicate: 200,
            reorder: 300,
            ..DgramConfig::quiet()
        });
        let mut server = net.bind_dgram(53).unwrap();
        let mut c = net.dgram().unwrap();
        let mut listener = net.listen(80).unwrap();
        let mut s = net.connect(80).unwrap();
        let src = net.source().unwrap();
        net.raise(&src, SourceEvent::Wake);
        net.raise_at(&src, ms(3), SourceEvent::Signal(1));
        net.raise_at(&src, ms(900), SourceEvent::Signal(2));
        let mut got = std::vec::Vec::new();
        let mut buf = [0u8; 64];
        for i in 0..20u8 {
            let _ = c.send_to(&[i; 40], &SimAddr(53));
            let _ = s.send(&[i; 30]);
            wait(net, &[&server, &listener]);
            while let Ok(Some(d)) = server.recv_from(&mut buf) {
                got.push((d.len, buf[0]));
            }
            if let Ok(Some(mut conn)) = listener.accept() {
                let _ = conn.recv(&mut buf);
            }
        }
        for _ in 0..2 * STALL_WAITS {
            wait(net, &[&src]);
        }
        let _ = c.send_to(b"in flight", &SimAddr(53));
        (
            got,
            c.local_addr(),
            net.trace_hash(),
            net.ops(),
            net.now(),
            net.fired(),
            net.dgram_fired(),
            net.sockets(),
            net.in_flight(),
            net.stall(),
        )
    }

    #[test]
    fn a_restarted_network_runs_as_a_new_one() {
        for seed in 0..20 {
            let cfg = SimConfig::from_seed(seed);
            let fresh = dirty_run(&Net::new(cfg));
            let net = Net::new(SimConfig::from_seed(seed + 100));
            let before = dirty_run(&net);
            net.restart(cfg);
            assert_eq!(net.dgram_config(), DgramConfig::quiet());
            assert_eq!(dirty_run(&net), fresh, "seed {seed}");
            assert_ne!(before, fresh, "seed {seed}: the two runs differ");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let run = |seed| {
            let net = Net::new(SimConfig::quiet(seed));
            let mut cfg = DgramConfig::from_seed(seed);
            (cfg.loss, cfg.duplicate, cfg.reorder) = (300, 200, 200);
            net.set_dgram_config(cfg);
            let mut server = net.bind_dgram(1).unwrap();
            let mut c = net.dgram().unwrap();
            let mut got = std::vec::Vec::new();
            for i in 0..200u8 {
                let _ = c.send_to(&[i], &SimAddr(1));
                net.advance(Duration::from_micros(300));
                let mut b = [0u8; 1];
                while let Ok(Some(_)) = server.recv_from(&mut b) {
                    got.push(b[0]);
                }
            }
            (got, net.trace_hash(), net.dgram_fired())
        };
        let (a, b) = (run(5), run(5));
        assert_eq!(a, b);
        let fired = a.2;
        for f in [DgramFault::Loss, DgramFault::Duplicate, DgramFault::Reorder] {
            assert!(fired[f.index()] > 0, "{}", f.name());
        }
        let mut sorted = a.0.clone();
        sorted.sort();
        assert_ne!(a.0, sorted, "reordered");
        assert_ne!(run(6).1, a.1);
    }
}
