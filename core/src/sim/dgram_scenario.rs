//! The datagram scenario: a request/response protocol with retries over the
//! simulated datagram network, every option and fault drawn from one seed.
//!
//! A server on port 53 answers requests; clients (datagram channels in the same
//! reactor, some connected to the server, some not) send requests one at a time and
//! retransmit on a timeout that doubles up to a cap. The network loses, duplicates
//! and reorders datagrams; the server restarts (its socket closed, the port dead for
//! a while, then bound again), so connected clients meet `ECONNREFUSED`. The
//! server executes a request once and answers a retransmission from its cache, so
//! the protocol is exactly-once over a lossy network; the run checks it:
//!
//! * every request completes, with the answer computed from its own payload;
//! * the server never executes a request twice ("nothing is answered twice"), and a
//!   client never accepts two answers for one request (duplicates are recognised
//!   and dropped);
//! * no socket is reported ready [`STALL_WAITS`](super::STALL_WAITS) waits in a row
//!   with nothing done about it, no receive buffer overflows its capacity, the loop
//!   never fails, and the caller's observer sees every reactor event.
//!
//! The simulation tests run it for 10,000 seeds; a failure names its seed.

use core::cell::Cell;
use core::fmt;
use core::time::Duration;

use heapless::Vec;

use super::{
    DGRAM_FAULTS, DgramConfig, Rng, SimAddr, SimConfig, SimIo, SimNet, SimSelector, SimSocket,
    TraceHash,
};
use crate::{
    Ctx, DatagramQueue, Dispatcher, Error, ErrorKind, Observer, Reactor, Received, Sent, Token,
};

/// Most clients a run has.
pub const MAX_CLIENTS: usize = 6;
/// Most requests a client sends.
pub const MAX_REQUESTS: usize = 6;
/// Sockets of the network (the clients, the server and its restarts).
pub const NET_SOCKETS: usize = 16;
/// Receive buffer of each simulated socket: a few datagrams.
pub const NET_BUFFER: usize = 256;
/// Channels in the reactor's map.
pub const MAP: usize = 8;
/// The server's port.
pub const PORT: u16 = 53;
/// Largest request payload.
pub const MAX_PAYLOAD: usize = 48;
/// Passes after which an unfinished run fails.
pub const MAX_PASSES: u32 = 100_000;
/// Virtual time after which an unfinished run fails.
pub const MAX_TIME: Duration = Duration::from_secs(120);
/// The longest retransmission timeout.
pub const MAX_RTO: Duration = Duration::from_millis(250);

/// Request and answer headers: kind, client, sequence number (little-endian).
const HEADER: usize = 4;
const REQUEST: u8 = b'Q';
const ANSWER: u8 = b'A';

type Net = SimNet<NET_SOCKETS, NET_BUFFER>;
type Sock<'n> = SimSocket<'n, NET_SOCKETS, NET_BUFFER>;
type R<'n, 's> = Reactor<SimIo<'n, NET_SOCKETS, NET_BUFFER>, Node<'s>, MAP>;

/// The shape of one run, drawn from the seed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DgramParams {
    /// Clients.
    pub clients: usize,
    /// Requests per client, each.
    pub requests: [u8; MAX_CLIENTS],
    /// Which clients connect their socket to the server (the others use `send_to`).
    pub connected: [bool; MAX_CLIENTS],
    /// The first retransmission timeout.
    pub rto: Duration,
    /// Server restarts: when the server goes down, and for how long.
    pub restarts: [Option<(Duration, Duration)>; 2],
    /// A broken server that forgets what it answered and executes retransmissions
    /// again: never drawn from a seed; the tests use it to show the run catches it.
    pub forgetful: bool,
}

impl DgramParams {
    /// Parameters drawn from `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0xd6a4_5ce7_a410_0017);
        let clients = rng.range(1, MAX_CLIENTS as u64) as usize;
        let mut requests = [0u8; MAX_CLIENTS];
        let mut connected = [false; MAX_CLIENTS];
        for i in 0..clients {
            requests[i] = rng.range(1, MAX_REQUESTS as u64) as u8;
            connected[i] = rng.below(2) == 0;
        }
        let rto = Duration::from_millis(rng.range(2, 40));
        let mut restarts = [None; 2];
        let mut at = Duration::ZERO;
        for r in restarts.iter_mut() {
            if rng.below(3) == 0 {
                at += Duration::from_millis(rng.range(1, 150));
                let down = Duration::from_millis(rng.range(1, 300));
                *r = Some((at, down));
                at += down;
            }
        }
        DgramParams {
            clients,
            requests,
            connected,
            rto,
            restarts,
            forgetful: false,
        }
    }
}

impl fmt::Display for DgramParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clients={} requests={:?} connected={:?} rto={:?} restarts={:?}",
            self.clients,
            &self.requests[..self.clients],
            &self.connected[..self.clients],
            self.rto,
            self.restarts
        )
    }
}

/// What a finished run saw.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DgramReport {
    /// Reactor passes.
    pub passes: u32,
    /// Hash of every network operation and of the run's own steps.
    pub trace_hash: u64,
    /// Requests completed (all of them, or the run failed).
    pub completed: u32,
    /// Retransmissions.
    pub retries: u32,
    /// `ECONNREFUSED` seen by connected clients.
    pub refused: u32,
    /// Answers a client recognised as duplicates (or stale) and dropped.
    pub duplicates: u32,
    /// Retransmitted requests the server answered from its cache.
    pub cached: u32,
    /// Server restarts.
    pub restarts: u32,
    /// Whether the server was up at the end (the clients may all finish while it is
    /// down): the one channel left in the reactor.
    pub server_up: bool,
    /// Datagram faults, by [`DgramFault::index`](super::DgramFault::index).
    pub fired: [u32; DGRAM_FAULTS],
    /// Virtual time the run took.
    pub elapsed: Duration,
}

/// Why a run failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DgramFailure {
    /// The server executed a request a second time.
    ExecutedTwice {
        /// The client.
        client: u8,
        /// The request.
        seq: u16,
    },
    /// An answer's payload is not what its request asked for.
    WrongAnswer {
        /// The client.
        client: u8,
        /// The request.
        seq: u16,
    },
    /// A datagram that is neither a request nor an answer of this protocol, or one
    /// that reached the wrong end.
    Garbled {
        /// Its length.
        len: usize,
    },
    /// A client's channel met an error other than `ECONNREFUSED`, or was closed
    /// before its requests were done.
    ClientFailed {
        /// The client.
        client: u8,
    },
    /// The run did not finish within [`MAX_PASSES`] or [`MAX_TIME`].
    Incomplete {
        /// Requests completed.
        completed: u32,
        /// Requests in the run.
        total: u32,
    },
    /// The selector kept reporting a socket ready while nothing serviced it.
    Unserviced(super::Stall),
    /// A receive buffer held more than its capacity.
    Overflow,
    /// The loop itself failed.
    Loop,
}

/// Byte `i` of request `seq` of client `c`: a pure function of the seed.
fn payload_byte(seed: u64, c: u8, seq: u16, i: usize) -> u8 {
    Rng::new(seed ^ ((c as u64) << 40) ^ ((seq as u64) << 20) ^ i as u64).byte()
}

/// The length of request `seq` of client `c`.
fn payload_len(seed: u64, c: u8, seq: u16) -> usize {
    Rng::new(seed ^ 0x1e4 ^ ((c as u64) << 40) ^ ((seq as u64) << 20)).below(MAX_PAYLOAD as u64 + 1)
        as usize
}

/// What the server computes from a request's payload: each byte turned, and a
/// checksum byte.
fn answer_of(payload: &[u8], out: &mut [u8]) -> usize {
    let mut sum = 0u8;
    for (o, &b) in out.iter_mut().zip(payload) {
        *o = b.rotate_left(3) ^ 0x5a;
        sum = sum.wrapping_add(b);
    }
    out[payload.len()] = sum;
    payload.len() + 1
}

/// The first failure of a run (later ones are consequences).
struct First(Cell<Option<DgramFailure>>);

impl First {
    const fn new() -> Self {
        First(Cell::new(None))
    }

    fn set(&self, f: DgramFailure) {
        if self.0.get().is_none() {
            self.0.set(Some(f));
        }
    }

    fn get(&self) -> Option<DgramFailure> {
        self.0.get()
    }
}

/// What the run's dispatchers share with it.
struct Shared {
    seed: u64,
    failure: First,
    /// Bit `seq` of client `c`: the server executed that request.
    executed: [Cell<u64>; MAX_CLIENTS],
    completed: Cell<u32>,
    retries: Cell<u32>,
    refused: Cell<u32>,
    duplicates: Cell<u32>,
    cached: Cell<u32>,
}

/// The server's memory of each client: the last request it executed and its
/// answer, so a retransmission gets the same answer without executing it again.
#[derive(Clone, Copy)]
struct Seen {
    seq: Option<u16>,
    answer: [u8; HEADER + MAX_PAYLOAD + 1],
    len: usize,
}

/// The server: it survives restarts (the reactor keeps it when its channel closes).
struct Server {
    forgetful: bool,
    seen: [Seen; MAX_CLIENTS],
    out: DatagramQueue<SimAddr, 512, 8>,
}

/// A client: requests one at a time, a timeout per try.
struct Client {
    id: u8,
    connected: bool,
    requests: u16,
    /// The request waiting for its answer (`requests`: all done).
    seq: u16,
    rto: Duration,
    first_rto: Duration,
    /// The current request could not be sent (the wire was full): send on write.
    unsent: bool,
}

// One server among a few clients, in fixed memory: no box to even them out.
#[allow(clippy::large_enum_variant)]
enum Role {
    Server(Server),
    Client(Client),
}

/// The scenario's dispatcher.
struct Node<'s> {
    role: Role,
    shared: &'s Shared,
}

impl Client {
    /// Sends (or resends) the current request; arms the retransmission timeout.
    fn send<'n>(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Node<'_>>, seed: u64) -> Result<(), Error> {
        let mut buf = [0u8; HEADER + MAX_PAYLOAD];
        let len = payload_len(seed, self.id, self.seq);
        buf[0] = REQUEST;
        buf[1] = self.id;
        buf[2..4].copy_from_slice(&self.seq.to_le_bytes());
        for (i, b) in buf[HEADER..HEADER + len].iter_mut().enumerate() {
            *b = payload_byte(seed, self.id, self.seq, i);
        }
        let data = &buf[..HEADER + len];
        let sent = if self.connected {
            ctx.send_datagram(data)
        } else {
            ctx.send_to(data, &SimAddr(PORT))
        };
        match sent {
            Ok(Sent::Bytes(_)) => self.unsent = false,
            Ok(Sent::WouldBlock) => self.unsent = true,
            // The answer to an earlier datagram: the server's port was closed. The
            // timeout below retries.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e.into()),
        }
        ctx.set_timeout(self.rto)
            .map_err(|_| Error::Protocol("no clock"))?;
        Ok(())
    }

    fn done(&self) -> bool {
        self.seq >= self.requests
    }
}

impl<'n, 's> Dispatcher<Sock<'n>> for Node<'s> {
    type Error = Error;

    fn writable(&self) -> bool {
        match &self.role {
            Role::Server(s) => s.out.wants_write(),
            Role::Client(c) => c.unsent,
        }
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Self>) -> Result<(), Error> {
        let shared = self.shared;
        let mut buf = [0u8; 128];
        loop {
            let got = match ctx.recv_from(&mut buf) {
                Ok(Some(d)) => d,
                Ok(None) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    shared.refused.set(shared.refused.get() + 1);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match &mut self.role {
                Role::Server(s) => s.request(ctx, shared, &buf, got)?,
                Role::Client(c) => {
                    if c.answer(shared, &buf, got) {
                        if c.done() {
                            ctx.cancel_deadline();
                            ctx.close();
                            return Ok(());
                        }
                        c.rto = c.first_rto;
                        c.send(ctx, shared.seed)?;
                    }
                }
            }
        }
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Self>) -> Result<(), Error> {
        match &mut self.role {
            Role::Server(s) => {
                s.out.flush(ctx)?;
            }
            Role::Client(c) => c.send(ctx, self.shared.seed)?,
        }
        Ok(())
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Self>) -> Result<(), Error> {
        if let Role::Client(c) = &mut self.role {
            self.shared.retries.set(self.shared.retries.get() + 1);
            c.rto = (c.rto * 2).min(MAX_RTO);
            c.send(ctx, self.shared.seed)?;
        }
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Self>, error: Error) {
        let _ = error;
        let client = match &self.role {
            Role::Client(c) => c.id,
            Role::Server(_) => u8::MAX,
        };
        self.shared
            .failure
            .set(DgramFailure::ClientFailed { client });
        ctx.close();
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Self>) -> Result<(), Error> {
        self.handle_error(ctx, Error::Protocol("closed"));
        Ok(())
    }
}

impl Server {
    fn request<'n>(
        &mut self,
        ctx: &mut Ctx<'_, Sock<'n>, Node<'_>>,
        shared: &Shared,
        buf: &[u8],
        got: Received<SimAddr>,
    ) -> Result<(), Error> {
        let data = got.data(buf);
        if got.truncated() || data.len() < HEADER || data[0] != REQUEST {
            shared.failure.set(DgramFailure::Garbled { len: got.len });
            return Ok(());
        }
        let client = data[1];
        let seq = u16::from_le_bytes([data[2], data[3]]);
        let Some(seen) = self.seen.get_mut(client as usize) else {
            shared.failure.set(DgramFailure::Garbled { len: got.len });
            return Ok(());
        };
        let fresh = self.forgetful || seen.seq.is_none_or(|last| seq == last.wrapping_add(1));
        if fresh {
            // Execute it: once per request, which the run checks independently.
            let bit = 1u64 << (seq % 64);
            let done = &shared.executed[client as usize];
            if done.get() & bit != 0 {
                shared
                    .failure
                    .set(DgramFailure::ExecutedTwice { client, seq });
            }
            done.set(done.get() | bit);
            seen.seq = Some(seq);
            seen.answer[..HEADER].copy_from_slice(&[ANSWER, client, data[2], data[3]]);
            seen.len = HEADER + answer_of(&data[HEADER..], &mut seen.answer[HEADER..]);
        } else if seen.seq != Some(seq) {
            // An old request, already answered: its client has moved on.
            return Ok(());
        } else {
            shared.cached.set(shared.cached.get() + 1);
        }
        let answer = &seen.answer[..seen.len];
        match self.out.send_to(ctx, answer, got.from) {
            Ok(_) => Ok(()),
            // No room to queue it: the client will ask again.
            Err(crate::QueueError::Full) => Ok(()),
            Err(crate::QueueError::Socket(e)) => Err(e.into()),
        }
    }
}

impl Client {
    /// Checks an answer; `true` if it answers the current request (accepted).
    fn answer(&mut self, shared: &Shared, buf: &[u8], got: Received<SimAddr>) -> bool {
        let data = got.data(buf);
        if got.truncated() || data.len() < HEADER || data[0] != ANSWER || data[1] != self.id {
            shared.failure.set(DgramFailure::Garbled { len: got.len });
            return false;
        }
        let seq = u16::from_le_bytes([data[2], data[3]]);
        if self.done() || seq != self.seq {
            // A duplicate, or the answer to a retransmission of an earlier request.
            shared.duplicates.set(shared.duplicates.get() + 1);
            return false;
        }
        let mut payload = [0u8; MAX_PAYLOAD];
        let len = payload_len(shared.seed, self.id, seq);
        for (i, b) in payload[..len].iter_mut().enumerate() {
            *b = payload_byte(shared.seed, self.id, seq, i);
        }
        let mut want = [0u8; MAX_PAYLOAD + 1];
        let n = answer_of(&payload[..len], &mut want);
        if data[HEADER..] != want[..n] {
            shared.failure.set(DgramFailure::WrongAnswer {
                client: self.id,
                seq,
            });
            return false;
        }
        shared.completed.set(shared.completed.get() + 1);
        self.seq += 1;
        true
    }
}

/// Runs the datagram scenario for `cfg` and `dcfg` (network and faults) and
/// `params` (workload), telling `observer` of every reactor event.
///
/// # Errors
/// The first broken invariant.
pub fn run_dgram(
    cfg: SimConfig,
    dcfg: DgramConfig,
    params: DgramParams,
    observer: Option<Observer>,
) -> Result<DgramReport, DgramFailure> {
    let net: Net = SimNet::new(cfg);
    net.set_dgram_config(dcfg);
    let shared = Shared {
        seed: cfg.seed,
        failure: First::new(),
        executed: [const { Cell::new(0) }; MAX_CLIENTS],
        completed: Cell::new(0),
        retries: Cell::new(0),
        refused: Cell::new(0),
        duplicates: Cell::new(0),
        cached: Cell::new(0),
    };
    let mut trace = TraceHash::new();
    let mut reactor: R<'_, '_> = Reactor::new(SimSelector::new(&net));
    reactor.set_observer(observer);

    let server = Node {
        role: Role::Server(Server {
            forgetful: params.forgetful,
            seen: [Seen {
                seq: None,
                answer: [0; HEADER + MAX_PAYLOAD + 1],
                len: 0,
            }; MAX_CLIENTS],
            out: DatagramQueue::new(),
        }),
        shared: &shared,
    };
    let sock = net.bind_dgram(PORT).map_err(|_| DgramFailure::Loop)?;
    let mut server_token = Some(reactor.add(sock, server).map_err(|_| DgramFailure::Loop)?);
    let mut down: Option<(Node<'_>, Duration)> = None;

    let clients = params.clients.min(MAX_CLIENTS);
    let mut tokens: Vec<Token, MAX_CLIENTS> = Vec::new();
    let mut total = 0u32;
    for i in 0..clients {
        let sock = if params.connected[i] {
            net.connect_dgram(PORT)
        } else {
            net.dgram()
        }
        .map_err(|_| DgramFailure::Loop)?;
        let requests = params.requests[i] as u16;
        total += requests as u32;
        let client = Client {
            id: i as u8,
            connected: params.connected[i],
            requests,
            seq: 0,
            rto: params.rto,
            first_rto: params.rto,
            unsent: true,
        };
        let t = reactor
            .add(
                sock,
                Node {
                    role: Role::Client(client),
                    shared: &shared,
                },
            )
            .map_err(|_| DgramFailure::Loop)?;
        let _ = tokens.push(t);
    }

    let mut restarts = params.restarts.iter().flatten().copied();
    let mut next_restart = restarts.next();
    let mut restarted = 0u32;
    let mut passes = 0u32;
    loop {
        if let Some(f) = shared.failure.get() {
            return Err(f);
        }
        let clients_left = tokens.iter().filter(|&&t| reactor.get(t).is_some()).count();
        if clients_left == 0 {
            break;
        }
        if passes >= MAX_PASSES || net.now() >= MAX_TIME {
            return Err(DgramFailure::Incomplete {
                completed: shared.completed.get(),
                total,
            });
        }
        // The server goes down, and comes back on the same port with its memory.
        let now = net.now();
        if let (Some((at, down_for)), Some(t)) = (next_restart, server_token)
            && now >= at
        {
            reactor.keep_when_closed(t);
            reactor.close(t);
            let node = reactor.take_closed(t).ok_or(DgramFailure::Loop)?;
            down = Some((node, now + down_for));
            server_token = None;
            next_restart = restarts.next();
            trace.add(b"D");
        }
        if let Some((_, until)) = &down
            && now >= *until
            && let Some((node, _)) = down.take()
        {
            let sock = net.bind_dgram(PORT).map_err(|_| DgramFailure::Loop)?;
            server_token = Some(reactor.add(sock, node).map_err(|_| DgramFailure::Loop)?);
            restarted += 1;
            trace.add(b"U");
        }
        reactor
            .poll_once(Some(Duration::from_millis(20)))
            .map_err(|_| DgramFailure::Loop)?;
        passes += 1;
        if net.max_buffered() > NET_BUFFER {
            return Err(DgramFailure::Overflow);
        }
        if let Some(stall) = net.stall() {
            return Err(DgramFailure::Unserviced(stall));
        }
    }
    if let Some(f) = shared.failure.get() {
        return Err(f);
    }
    let completed = shared.completed.get();
    if completed != total {
        return Err(DgramFailure::Incomplete { completed, total });
    }
    // Every request executed exactly once: `completed` answers came from executed
    // requests, and no execution was repeated (checked as it happened).
    for (i, e) in shared.executed.iter().enumerate().take(clients) {
        let want = params.requests[i] as u32;
        if e.get().count_ones() != want {
            return Err(DgramFailure::Incomplete {
                completed: e.get().count_ones(),
                total: want,
            });
        }
    }
    trace.add_u64(net.trace_hash());
    trace.add_u64(passes as u64);
    Ok(DgramReport {
        passes,
        trace_hash: trace.value(),
        completed,
        retries: shared.retries.get(),
        refused: shared.refused.get(),
        duplicates: shared.duplicates.get(),
        cached: shared.cached.get(),
        restarts: restarted,
        server_up: server_token.is_some(),
        fired: net.dgram_fired(),
        elapsed: net.now(),
    })
}
