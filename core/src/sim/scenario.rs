//! The echo scenario: the core's echo server ([`crate::echo`]) and a crowd of clients
//! over a [`SimNet`], every option and fault drawn from one seed, checked byte for
//! byte. The simulation tests run it for thousands of seeds; the fuzzer drives it
//! from arbitrary bytes.

use crate::sim::SimIo;
use core::fmt;
use core::time::Duration;

use heapless::Vec;

use super::{FAULTS, Fault, Rng, SimConfig, SimNet, SimSelector, SimSocket, TraceHash};
use crate::echo::{Echo, EchoListener};
use crate::{BufferPool, Observer, Reactor, Recv, Sent, Socket};

/// Most clients a run has.
pub const MAX_CLIENTS: usize = 10;
/// Connects a client tries at most (a refused one is retried).
pub const CONNECTS: usize = 3;
/// Sockets in the simulated network of a run: every socket a run can make, the
/// listener and, for each client, each of its connects (both ends). A larger network
/// would run the same (a run never meets a full one).
pub const NET_SOCKETS: usize = 1 + 2 * CONNECTS * MAX_CLIENTS;
/// Receive buffer of each simulated socket.
pub const NET_BUFFER: usize = 512;
/// The echo server's buffer per connection.
pub const ECHO_BUFFER: usize = 256;
/// Channels the server's map holds.
pub const MAP: usize = 16;
/// Passes after which a run that has not finished counts as stalled.
pub const MAX_PASSES: u32 = 20_000;

const PORT: u16 = 7;

/// The shape of one run: how many clients, how much each sends, how the server is
/// limited. Drawn from the seed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EchoParams {
    /// Clients.
    pub clients: usize,
    /// Bytes each client sends at most.
    pub bytes: usize,
    /// Largest single send.
    pub chunk: usize,
    /// The server's live-connection limit (below `clients`: a full server).
    pub max_conns: usize,
}

impl EchoParams {
    /// Parameters drawn from `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0xec40_5ca1_ab1e_0001);
        let clients = rng.range(1, MAX_CLIENTS as u64) as usize;
        let max_conns = if rng.below(4) == 0 {
            rng.range(1, clients as u64) as usize
        } else {
            MAP - 1
        };
        EchoParams {
            clients,
            bytes: rng.range(1, 2048) as usize,
            chunk: rng.range(1, 512) as usize,
            max_conns,
        }
    }
}

impl fmt::Display for EchoParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clients={} bytes={} chunk={} max_conns={}",
            self.clients, self.bytes, self.chunk, self.max_conns
        )
    }
}

/// What a finished run saw.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct EchoReport {
    /// Reactor passes.
    pub passes: u32,
    /// Hash of every network operation and every client step: equal seeds, equal hashes.
    pub trace_hash: u64,
    /// Clients that got their whole echo back.
    pub complete: usize,
    /// Clients cut short by an injected reset.
    pub reset: usize,
    /// Clients turned away: refused connects, or a full server.
    pub refused: usize,
    /// Bytes echoed back to clients, all verified.
    pub echoed: u64,
    /// How often each fault fired, by [`Fault::index`].
    pub fired: [u32; FAULTS],
    /// Virtual time the run took.
    pub elapsed: Duration,
    /// The most buffers of the server's pool lent at once ([`POOL`]: it ran out).
    pub pool_peak: usize,
}

/// Why a run failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EchoFailure {
    /// A client received a byte that differs from what it sent at that position.
    Mismatch {
        /// The client.
        client: usize,
        /// The position in its stream.
        at: usize,
    },
    /// A client received more than it sent.
    TooMuch {
        /// The client.
        client: usize,
    },
    /// A connection ended (EOF) before its echo was complete, with no fault to explain it.
    Truncated {
        /// The client.
        client: usize,
        /// Bytes it had back.
        received: usize,
        /// Bytes it had sent.
        sent: usize,
    },
    /// The run did not finish within [`MAX_PASSES`].
    Stalled,
    /// The server still held connections after every client was done.
    Leaked {
        /// Channels left besides the listener.
        channels: usize,
    },
    /// A receive buffer held more than its capacity.
    Overflow,
    /// The selector kept reporting a socket ready while nothing serviced it.
    Unserviced(super::Stall),
    /// The loop itself failed.
    Loop,
}

/// Byte `i` of client `c`'s stream: a pure function, so the echo can be verified
/// without storing what was sent.
fn stream_byte(seed: u64, client: usize, i: usize) -> u8 {
    let mut r = Rng::new(seed ^ ((client as u64) << 48) ^ i as u64);
    r.byte()
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Phase {
    Connecting,
    Open,
    Done,
}

struct Client<'n> {
    sock: Option<EchoSocket<'n>>,
    phase: Phase,
    total: usize,
    sent: usize,
    received: usize,
    write_shut: bool,
    attempts: u8,
    outcome: Outcome,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Outcome {
    Pending,
    Complete,
    Reset,
    Refused,
}

/// Buffers the server's pool lends, and their size: fewer than the clients, so
/// some connections echo through a lent buffer and the others through their own.
pub const POOL: usize = 3;
/// The size of a pool buffer.
pub const POOL_BUFFER: usize = 1024;

/// The simulated network of an echo run: [`NET_SOCKETS`] sockets with
/// [`NET_BUFFER`]-byte receive buffers, and no datagram wire (the scenario sends no
/// datagrams).
pub type EchoNet = SimNet<NET_SOCKETS, NET_BUFFER, 0>;

/// A socket of an [`EchoNet`].
pub type EchoSocket<'n> = SimSocket<'n, NET_SOCKETS, NET_BUFFER, 0>;

/// The server of an echo run: the core's echo server ([`ECHO_BUFFER`] bytes per
/// connection) in a reactor of [`MAP`] channels that lends [`POOL`] buffers of
/// [`POOL_BUFFER`] bytes, over an [`EchoNet`].
pub type EchoReactor<'n> = Reactor<
    SimIo<'n, NET_SOCKETS, NET_BUFFER, 0>,
    Echo<EchoSocket<'n>, ECHO_BUFFER>,
    MAP,
    4,
    BufferPool<POOL, POOL_BUFFER>,
>;

/// Runs the echo scenario for `cfg` (network and faults) and `params` (workload),
/// telling `observer` (e.g. an [`TraceChecker`](super::TraceChecker) glue) of every
/// reactor event. It builds its network (an [`EchoNet`]) on the stack; see
/// [`run_echo_on`] for one the caller keeps.
///
/// # Errors
/// The first broken invariant.
pub fn run_echo(
    cfg: SimConfig,
    params: EchoParams,
    observer: Option<Observer>,
) -> Result<EchoReport, EchoFailure> {
    let net = EchoNet::new(cfg);
    run_echo_on(&net, params, observer)
}

/// Runs the echo scenario as [`run_echo`] does, on `net`, which must be fresh:
/// just built ([`SimNet::new`]) or restarted ([`SimNet::restart`]) with the run's
/// configuration. The same configuration and `params` give the same run, trace
/// hash included, as `run_echo`. For a network the caller keeps where it likes: a
/// `static` on a small target, whose stack would not hold one.
///
/// # Errors
/// The first broken invariant.
pub fn run_echo_on(
    net: &EchoNet,
    params: EchoParams,
    observer: Option<Observer>,
) -> Result<EchoReport, EchoFailure> {
    let cfg = net.config();
    let mut trace = TraceHash::new();
    // Built at compile time, then given its network: no temporaries of its parts on
    // the stack on the way (see SimSelector::detached).
    let mut server: EchoReactor<'_> = const { Reactor::new(SimSelector::detached()) };
    *server.selector_mut() = SimSelector::new(net);
    server.set_observer(observer);
    server.set_interest_audit(true);
    let listener = net.listen(PORT).map_err(|_| EchoFailure::Loop)?;
    let listener = server
        .add(
            listener,
            Echo::Listener(EchoListener::new(params.max_conns)),
        )
        .map_err(|_| EchoFailure::Loop)?;

    let mut clients: Vec<Client<'_>, MAX_CLIENTS> = Vec::new();
    for _ in 0..params.clients.min(MAX_CLIENTS) {
        // A client may finish sending early: a half-close.
        let mut total = params.bytes;
        if net.chance(Fault::HalfClose) {
            total = net.below(params.bytes as u64) as usize;
        }
        let _ = clients.push(Client {
            sock: None,
            phase: Phase::Connecting,
            total,
            sent: 0,
            received: 0,
            write_shut: false,
            attempts: 0,
            outcome: Outcome::Pending,
        });
    }
    for c in clients.iter_mut() {
        c.sock = net.connect(PORT).ok();
        if c.sock.is_none() {
            c.phase = Phase::Done;
            c.outcome = Outcome::Refused;
        }
    }

    let seed = cfg.seed;
    let mut passes = 0u32;
    let mut buf = [0u8; 512];
    loop {
        if clients.iter().all(|c| c.phase == Phase::Done) && server.len() <= 1 {
            break;
        }
        if passes >= MAX_PASSES {
            return Err(if clients.iter().all(|c| c.phase == Phase::Done) {
                EchoFailure::Leaked {
                    channels: server.len().saturating_sub(1),
                }
            } else {
                EchoFailure::Stalled
            });
        }
        server
            .poll_once(Some(Duration::from_millis(5)))
            .map_err(|_| EchoFailure::Loop)?;
        passes += 1;
        if net.max_buffered() > NET_BUFFER {
            return Err(EchoFailure::Overflow);
        }
        if let Some(stall) = net.stall() {
            return Err(EchoFailure::Unserviced(stall));
        }
        for (i, c) in clients.iter_mut().enumerate() {
            step_client(net, seed, i, c, &params, &mut buf, &mut trace)?;
        }
        // Nothing pending on the clients' side: let virtual time run so slow
        // connects come due even when the server has nothing to do.
        if server.is_empty() {
            net.advance(Duration::from_millis(5));
        }
    }

    // Connections the full server turned away.
    let turned_away = server
        .get(listener)
        .and_then(|c| c.dispatcher.as_listener().map(|l| l.refused()))
        .unwrap_or(0);
    for _ in 0..turned_away {
        net.note_fault(Fault::MapFull);
    }
    let mut report = EchoReport {
        passes,
        trace_hash: 0,
        complete: 0,
        reset: 0,
        refused: 0,
        echoed: 0,
        fired: net.fired(),
        elapsed: net.now(),
        pool_peak: server.pool().peak(),
    };
    for c in &clients {
        report.echoed += c.received as u64;
        match c.outcome {
            Outcome::Complete => report.complete += 1,
            Outcome::Reset => report.reset += 1,
            Outcome::Refused | Outcome::Pending => report.refused += 1,
        }
    }
    trace.add_u64(net.trace_hash());
    trace.add_u64(passes as u64);
    report.trace_hash = trace.value();
    Ok(report)
}

fn finish(c: &mut Client<'_>, outcome: Outcome, trace: &mut TraceHash, i: usize) {
    if let Some(mut s) = c.sock.take() {
        let _ = s.close();
    }
    c.phase = Phase::Done;
    c.outcome = outcome;
    trace.add(&[b'D', i as u8, outcome as u8]);
}

fn step_client<'n>(
    net: &'n EchoNet,
    seed: u64,
    i: usize,
    c: &mut Client<'n>,
    params: &EchoParams,
    buf: &mut [u8; 512],
    trace: &mut TraceHash,
) -> Result<(), EchoFailure> {
    match c.phase {
        Phase::Done => return Ok(()),
        Phase::Connecting => {
            let Some(sock) = c.sock.as_mut() else {
                finish(c, Outcome::Refused, trace, i);
                return Ok(());
            };
            if net.is_established(sock) {
                c.phase = Phase::Open;
            } else if net.readiness(sock).is_error() {
                let _ = sock.take_error();
                c.attempts += 1;
                if let Some(mut old) = c.sock.take() {
                    let _ = old.close();
                }
                if c.attempts as usize >= CONNECTS {
                    finish(c, Outcome::Refused, trace, i);
                    return Ok(());
                }
                c.sock = net.connect(PORT).ok();
                trace.add(&[b'C', i as u8, c.attempts]);
                return Ok(());
            } else {
                return Ok(());
            }
        }
        Phase::Open => {}
    }
    let Some(sock) = c.sock.as_mut() else {
        return Ok(());
    };

    // Now and then a TCP urgent byte, outside the stream: the server must consume it
    // (its default handle_expt does) or its loop would spin.
    if c.sent < c.total && net.chance(Fault::Urgent) {
        let _ = sock.send_urgent(b'!');
    }
    // Send the next piece of the stream.
    if c.sent < c.total {
        let n = (c.total - c.sent).min(params.chunk).min(buf.len());
        for (j, b) in buf[..n].iter_mut().enumerate() {
            *b = stream_byte(seed, i, c.sent + j);
        }
        match sock.send(&buf[..n]) {
            Ok(Sent::Bytes(k)) => c.sent += k,
            Ok(Sent::WouldBlock) => {}
            Err(e) if e.is_disconnect() => {
                finish(c, Outcome::Reset, trace, i);
                return Ok(());
            }
            Err(_) => return Err(EchoFailure::Loop),
        }
    }
    if c.sent == c.total && !c.write_shut {
        // Done sending: the server sees EOF, echoes the rest, then closes.
        if sock.shutdown_write().is_ok() {
            c.write_shut = true;
            if c.total < params.bytes {
                net.note_fault(Fault::HalfClose);
            }
        }
    }

    // Read and verify the echo.
    loop {
        match sock.recv(&mut buf[..]) {
            Ok(Recv::Data(n)) => {
                for (j, &b) in buf[..n].iter().enumerate() {
                    if b != stream_byte(seed, i, c.received + j) {
                        return Err(EchoFailure::Mismatch {
                            client: i,
                            at: c.received + j,
                        });
                    }
                }
                c.received += n;
                if c.received > c.sent {
                    return Err(EchoFailure::TooMuch { client: i });
                }
                trace.add(&[b'r', i as u8]);
                trace.add_u64(n as u64);
            }
            Ok(Recv::WouldBlock) => return Ok(()),
            Ok(Recv::Eof) => {
                if c.received == c.sent && c.write_shut {
                    finish(c, Outcome::Complete, trace, i);
                } else if c.received == 0 {
                    // Turned away by a full server: a clean close before any echo.
                    finish(c, Outcome::Refused, trace, i);
                } else {
                    return Err(EchoFailure::Truncated {
                        client: i,
                        received: c.received,
                        sent: c.sent,
                    });
                }
                return Ok(());
            }
            Err(e) if e.is_disconnect() => {
                finish(c, Outcome::Reset, trace, i);
                return Ok(());
            }
            Err(_) => return Err(EchoFailure::Loop),
        }
    }
}
