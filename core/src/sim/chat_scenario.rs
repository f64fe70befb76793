//! The chat scenario: the core's chat server ([`crate::chat::server`]) and a group of
//! clients over a [`SimNet`], every option and fault drawn from one seed, in virtual
//! time.
//!
//! The clients join and set a nick; once everybody is in, each says its numbered
//! lines in bursts (a few lines at once, then a pause) while reading at its own
//! steady pace, from as fast as it can down to a few bytes a millisecond. In most
//! runs one client stops reading mid-run (it goes on talking): it must be
//! disconnected as too slow, and not before the slow timeout of virtual time, while
//! the room waits for it; the others must go on afterwards. A client quits once it
//! said everything and heard every other client out (all its lines, or its leaving).
//!
//! Checked for every run: every client hears each other client's lines exactly, in
//! order, from the first without a gap, and never its own; two clients that both
//! finish hear all of each other's lines; no client that keeps reading is ever
//! disconnected as too slow; the stalled client goes only after the slow timeout; a
//! client is cut off only in a run with faults, a full server, or for stalling; the
//! selector never reports a socket ready that nobody services.

use crate::sim::SimIo;
use core::time::Duration;

use heapless::Vec;

use super::scenario::NET_BUFFER;
use super::{FAULTS, Rng, SimConfig, SimNet, SimSelector, SimSocket, TraceHash};
use crate::chat::server::{ChatListener, ChatServer, min_out};
use crate::{Observer, Reactor, Recv, Sent, Socket};

/// Most clients a chat run has.
pub const MAX_CHAT_CLIENTS: usize = 8;
/// Passes after which a chat run that has not finished counts as stalled.
pub const MAX_CHAT_PASSES: u32 = 40_000;
/// The longest line the scenario's server takes.
pub const CHAT_LINE: usize = 128;
/// The scenario server's output ring per client: small, so that the room often waits.
pub const CHAT_OUT: usize = 1024;
const PORT: u16 = 6667;
/// Channels the scenario server's map holds (the listener and up to
/// [`MAX_CHAT_CLIENTS`] connections).
pub const CHAT_MAP: usize = 12;
/// Sockets in the simulated network of a chat run: every socket a run can make,
/// the listener and a connection (both ends) per client, for a client connects once.
/// A larger network would run the same (a run never meets a full one).
pub const CHAT_SOCKETS: usize = 1 + 2 * MAX_CHAT_CLIENTS;
/// The period of a paced reader.
const TICK: Duration = Duration::from_millis(20);
/// The longest wait of one pass.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// Slow timeouts a run may have, in milliseconds.
const SLOW_MS: [u64; 4] = [50, 100, 250, 1000];
/// Reading paces, in bytes per [`TICK`] (0: as fast as it can).
const PACES: [usize; 6] = [0, 0, 2048, 512, 128, 64];

const _: () = assert!(CHAT_OUT >= min_out(CHAT_LINE));

/// The shape of one chat run, drawn from the seed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChatParams {
    /// Clients.
    pub clients: usize,
    /// Lines each client says.
    pub lines: usize,
    /// The server's live-connection limit.
    pub max_conns: usize,
    /// The server's slow timeout.
    pub slow: Duration,
    /// The client that stops reading, if any.
    pub staller: Option<usize>,
    /// How long after the first line the staller stops reading.
    pub stall_after: Duration,
}

impl ChatParams {
    /// Parameters drawn from `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0xc4a7_5ce7_a210_0002);
        let clients = rng.range(2, MAX_CHAT_CLIENTS as u64) as usize;
        let max_conns = if rng.below(4) == 0 {
            rng.range(1, clients as u64) as usize
        } else {
            CHAT_MAP - 1
        };
        let lines = rng.range(1, 20) as usize;
        let slow = Duration::from_millis(SLOW_MS[rng.below(SLOW_MS.len() as u64) as usize]);
        let staller =
            (clients >= 3 && rng.below(4) != 0).then(|| rng.below(clients as u64) as usize);
        ChatParams {
            clients,
            lines,
            max_conns,
            slow,
            staller,
            stall_after: Duration::from_millis(rng.range(0, 40)),
        }
    }
}

impl core::fmt::Display for ChatParams {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "clients={} lines={} max_conns={} slow={:?} staller={:?} stall_after={:?}",
            self.clients, self.lines, self.max_conns, self.slow, self.staller, self.stall_after
        )
    }
}

/// What a finished chat run saw.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChatReport {
    /// Reactor passes.
    pub passes: u32,
    /// Hash of every operation and client step.
    pub trace_hash: u64,
    /// Clients that said everything and got `* bye`.
    pub complete: usize,
    /// Clients cut off (reset, too slow) or turned away.
    pub cut: usize,
    /// Lines heard from others, all verified.
    pub heard: u64,
    /// Passes after which some user waited for room.
    pub waiting_passes: u32,
    /// Stalled clients disconnected as too slow (0 or 1).
    pub evicted: usize,
    /// Virtual time the run took.
    pub elapsed: Duration,
    /// How often each fault fired.
    pub fired: [u32; FAULTS],
}

/// Why a chat run failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChatFailure {
    /// A client heard its own line.
    HeardItself {
        /// The client.
        client: usize,
    },
    /// A client heard another's line out of order, twice, or with a gap.
    OutOfOrder {
        /// The listener.
        client: usize,
        /// The speaker.
        from: usize,
        /// The line number heard.
        line: usize,
        /// The line number expected.
        expected: usize,
    },
    /// Two clients finished, but one did not hear all the other's lines.
    Incomplete {
        /// The listener.
        client: usize,
        /// The speaker.
        from: usize,
        /// Lines heard.
        heard: usize,
    },
    /// A line's text differs from what its speaker said.
    Garbled {
        /// The listener.
        client: usize,
    },
    /// A client that kept reading was disconnected as too slow.
    ReaderEvicted {
        /// The client.
        client: usize,
    },
    /// The stalled client was disconnected before the slow timeout had passed since
    /// it last read anything.
    EvictedEarly {
        /// How long after its last read.
        after: Duration,
    },
    /// A client was cut off in a run with no fault to explain it.
    Unexplained {
        /// The client.
        client: usize,
    },
    /// The run did not finish within [`MAX_CHAT_PASSES`].
    Stalled,
    /// The loop itself failed.
    Loop,
    /// The selector kept reporting a socket ready while nothing serviced it.
    Unserviced(super::Stall),
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Phase {
    Connecting,
    Open,
    Done,
}

struct Client<'n> {
    sock: Option<ChatSocket<'n>>,
    phase: Phase,
    welcomed: bool,
    /// Its nick was confirmed: it is in the room.
    nicked: bool,
    next_line: usize,
    quit_queued: bool,
    bye: bool,
    out: Vec<u8, 160>,
    line: Vec<u8, 400>,
    /// Bytes it reads per tick (0: all), and when it may read next.
    pace: usize,
    next_read: Duration,
    /// Lines per burst, pause between bursts, lines left in this burst, next burst.
    burst: usize,
    pause: Duration,
    burst_left: usize,
    next_burst: Duration,
    /// When it stopped reading, if it did.
    stalled_at: Option<Duration>,
    /// When a read last got data: from then on the server may have sent it nothing
    /// more, so the slow timeout runs from there at the earliest.
    last_read: Duration,
    /// Lines heard from each other client (from line 0 on), and whether it left.
    heard: [usize; MAX_CHAT_CLIENTS],
    left: [bool; MAX_CHAT_CLIENTS],
    /// Others it was told left as too slow.
    too_slow: [bool; MAX_CHAT_CLIENTS],
    complete: bool,
}

impl Client<'_> {
    /// When this client next has something to do of its own accord, if anything: a
    /// paced read of data that waits, or its next burst.
    fn next_event(&self, k: usize, net: &ChatNet, world: &World) -> Option<Duration> {
        if self.phase != Phase::Open {
            return None;
        }
        let sock = self.sock.as_ref()?;
        let read =
            (self.pace > 0 && self.stalled_at.is_none() && net.readiness(sock).is_readable())
                .then_some(self.next_read);
        let burst = (world.started
            && self.nicked
            && self.next_line < world.lines
            && self.burst_left == 0
            && self.out.is_empty())
        .then_some(self.next_burst);
        let stall = (world.staller == Some(k) && self.stalled_at.is_none() && world.started)
            .then_some(world.start + world.stall_after);
        [read, burst, stall].into_iter().flatten().min()
    }
}

/// Line `j` of client `k`: `m<j>:` and a filler drawn from the seed.
fn line_text(seed: u64, k: usize, j: usize, out: &mut Vec<u8, 160>) {
    let mut r = Rng::new(seed ^ ((k as u64) << 40) ^ ((j as u64) << 8) ^ 0x11);
    let _ = out.push(b'm');
    push_num(out, j);
    let _ = out.push(b':');
    for _ in 0..r.below(CHAT_LINE as u64 - 8) {
        let _ = out.push(b'a' + (r.byte() % 26));
    }
}

fn push_num<const N: usize>(out: &mut Vec<u8, N>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let _ = out.extend_from_slice(&digits[i..]);
}

fn parse_num(s: &[u8]) -> Option<(usize, &[u8])> {
    let end = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let mut n = 0usize;
    for &b in &s[..end] {
        n = n.checked_mul(10)?.checked_add((b - b'0') as usize)?;
    }
    Some((n, &s[end..]))
}

/// The simulated network of a chat run: [`CHAT_SOCKETS`] sockets with
/// [`NET_BUFFER`]-byte receive buffers (as the echo scenario's), and no datagram
/// wire (the scenario sends no datagrams).
pub type ChatNet = SimNet<CHAT_SOCKETS, NET_BUFFER, 0>;

/// A socket of a [`ChatNet`].
pub type ChatSocket<'n> = SimSocket<'n, CHAT_SOCKETS, NET_BUFFER, 0>;

/// The server of a chat run: the core's chat server ([`CHAT_OUT`] bytes of output
/// per connection, lines of [`CHAT_LINE`] bytes) in a reactor of [`CHAT_MAP`]
/// channels, over a [`ChatNet`].
pub type ChatReactor<'n> = Reactor<
    SimIo<'n, CHAT_SOCKETS, NET_BUFFER, 0>,
    ChatServer<ChatSocket<'n>, CHAT_OUT, CHAT_LINE>,
    CHAT_MAP,
>;

/// What the harness knows of the run as a whole.
struct World {
    seed: u64,
    lines: usize,
    /// Everybody is in the room (or gone): lines may be said.
    started: bool,
    /// When the first line could be said.
    start: Duration,
    /// Who was in the room when talking started.
    in_room: [bool; MAX_CHAT_CLIENTS],
    staller: Option<usize>,
    stall_after: Duration,
}

/// Runs the chat scenario for `cfg` (network and faults) and `params` (workload),
/// telling `observer` of every reactor event. It builds its network (a [`ChatNet`])
/// on the stack; see [`run_chat_on`] for one the caller keeps.
///
/// # Errors
/// The first broken invariant.
pub fn run_chat(
    cfg: SimConfig,
    params: ChatParams,
    observer: Option<Observer>,
) -> Result<ChatReport, ChatFailure> {
    let net = ChatNet::new(cfg);
    run_chat_on(&net, params, observer)
}

/// Runs the chat scenario as [`run_chat`] does, on `net`, which must be fresh:
/// just built ([`SimNet::new`]) or restarted ([`SimNet::restart`]) with the run's
/// configuration. The same configuration and `params` give the same run, trace
/// hash included, as `run_chat`.
///
/// # Errors
/// The first broken invariant.
pub fn run_chat_on(
    net: &ChatNet,
    params: ChatParams,
    observer: Option<Observer>,
) -> Result<ChatReport, ChatFailure> {
    let cfg = net.config();
    // Built at compile time, then given its network: no temporaries of its parts on
    // the stack on the way (see SimSelector::detached).
    let mut server: ChatReactor<'_> = const { Reactor::new(SimSelector::detached()) };
    *server.selector_mut() = SimSelector::new(net);
    server.set_observer(observer);
    server.set_interest_audit(true);
    let listener = net.listen(PORT).map_err(|_| ChatFailure::Loop)?;
    let chat = ChatListener::new(params.max_conns).with_slow_timeout(params.slow);
    server
        .add(listener, ChatServer::Listener(chat))
        .map_err(|_| ChatFailure::Loop)?;
    let mut trace = TraceHash::new();
    let mut rng = Rng::new(cfg.seed ^ 0x5107_ba11_e7ed_0003);
    let mut clients: Vec<Client<'_>, MAX_CHAT_CLIENTS> = Vec::new();
    for _ in 0..params.clients.min(MAX_CHAT_CLIENTS) {
        let sock = net.connect(PORT).ok();
        let phase = if sock.is_some() {
            Phase::Connecting
        } else {
            Phase::Done
        };
        let _ = clients.push(Client {
            sock,
            phase,
            welcomed: false,
            nicked: false,
            next_line: 0,
            quit_queued: false,
            bye: false,
            out: Vec::new(),
            line: Vec::new(),
            pace: PACES[rng.below(PACES.len() as u64) as usize],
            next_read: Duration::ZERO,
            burst: rng.range(1, 8) as usize,
            pause: Duration::from_millis(rng.range(0, 20)),
            burst_left: 0,
            next_burst: Duration::ZERO,
            stalled_at: None,
            last_read: Duration::ZERO,
            heard: [0; MAX_CHAT_CLIENTS],
            left: [false; MAX_CHAT_CLIENTS],
            too_slow: [false; MAX_CHAT_CLIENTS],
            complete: false,
        });
    }
    let mut world = World {
        seed: cfg.seed,
        lines: params.lines,
        started: false,
        start: Duration::ZERO,
        in_room: [false; MAX_CHAT_CLIENTS],
        staller: params.staller.filter(|&s| s < clients.len()),
        stall_after: params.stall_after,
    };
    let staller_nick = world.staller.map(|s| {
        let mut nick: Vec<u8, 8> = Vec::new();
        let _ = nick.push(b'c');
        push_num(&mut nick, s);
        nick
    });
    let mut passes = 0;
    let mut waiting_passes = 0;
    let mut evicted_at: Option<Duration> = None;
    loop {
        if clients.iter().all(|c| c.phase == Phase::Done) && server.len() <= 1 {
            break;
        }
        if passes >= MAX_CHAT_PASSES {
            return Err(ChatFailure::Stalled);
        }
        // Wait at most until some client has something to do at a time of its own
        // (its next paced read, its next burst); the rest wakes through the network.
        let now = net.now();
        let wait = clients
            .iter()
            .enumerate()
            .filter_map(|(k, c)| c.next_event(k, net, &world))
            .map(|at| at.saturating_sub(now))
            .min()
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT);
        server
            .poll_once(Some(wait))
            .map_err(|_| ChatFailure::Loop)?;
        passes += 1;
        if let Some(stall) = net.stall() {
            return Err(ChatFailure::Unserviced(stall));
        }
        // What the server holds: who waits, and whether the staller is still there.
        let mut staller_there = false;
        let mut someone_waits = false;
        for c in server.map().iter() {
            if let Some(u) = c.dispatcher.user() {
                someone_waits |= u.is_waiting();
                staller_there |= staller_nick
                    .as_ref()
                    .is_some_and(|n| u.nick().as_bytes() == &n[..]);
            }
        }
        waiting_passes += someone_waits as u32;
        if let Some(s) = world.staller
            && evicted_at.is_none()
            && clients[s].stalled_at.is_some()
            && clients[s].phase != Phase::Done
            && !staller_there
        {
            evicted_at = Some(net.now());
        }
        if !world.started {
            world.started = clients.iter().all(|c| c.phase == Phase::Done || c.nicked);
            if world.started {
                world.start = net.now();
                for (k, c) in clients.iter().enumerate() {
                    world.in_room[k] = c.nicked && c.phase != Phase::Done;
                }
            }
        }
        for k in 0..clients.len() {
            step(net, &world, k, &mut clients, &mut trace)?;
        }
    }
    let faults = cfg.rates.iter().any(|&r| r > 0) || params.max_conns < params.clients;
    let mut report = ChatReport {
        passes,
        trace_hash: 0,
        complete: 0,
        cut: 0,
        heard: 0,
        waiting_passes,
        evicted: 0,
        elapsed: net.now(),
        fired: net.fired(),
    };
    for (k, c) in clients.iter().enumerate() {
        report.heard += c.heard.iter().sum::<usize>() as u64;
        if c.complete {
            report.complete += 1;
        } else {
            report.cut += 1;
            let stalled = world.staller == Some(k) && c.stalled_at.is_some();
            if !faults && !stalled {
                return Err(ChatFailure::Unexplained { client: k });
            }
        }
    }
    // Both finished: each heard all of the other's lines.
    for (k, c) in clients.iter().enumerate() {
        for (j, other) in clients.iter().enumerate() {
            if j != k
                && c.complete
                && other.complete
                && world.in_room[j]
                && c.heard[j] != params.lines
            {
                return Err(ChatFailure::Incomplete {
                    client: k,
                    from: j,
                    heard: c.heard[j],
                });
            }
        }
    }
    // The staller's channel went while it was still connected, and the others were
    // told it was too slow (it may also have been cut by a fault).
    let evicted_at = evicted_at.filter(|_| {
        world
            .staller
            .is_some_and(|s| clients.iter().any(|c| c.too_slow[s]))
    });
    if let (Some(s), Some(at)) = (world.staller, evicted_at) {
        let last_read = clients[s].last_read;
        if at < last_read + params.slow {
            return Err(ChatFailure::EvictedEarly {
                after: at.saturating_sub(last_read),
            });
        }
        report.evicted = 1;
    }
    trace.add_u64(net.trace_hash());
    report.trace_hash = trace.value();
    Ok(report)
}

fn end(c: &mut Client<'_>, trace: &mut TraceHash, k: usize) {
    if let Some(mut s) = c.sock.take() {
        let _ = s.close();
    }
    c.phase = Phase::Done;
    trace.add(&[b'E', k as u8, c.complete as u8]);
}

/// Whether client `k` heard every other client in the room out: all its lines, or
/// that it left.
fn heard_everyone(world: &World, k: usize, c: &Client<'_>) -> bool {
    (0..MAX_CHAT_CLIENTS)
        .all(|j| j == k || !world.in_room[j] || c.left[j] || c.heard[j] == world.lines)
}

fn step<'n>(
    net: &'n ChatNet,
    world: &World,
    k: usize,
    clients: &mut [Client<'n>],
    trace: &mut TraceHash,
) -> Result<(), ChatFailure> {
    let others_done = clients
        .iter()
        .enumerate()
        .all(|(j, o)| j == k || o.phase == Phase::Done);
    let c = &mut clients[k];
    match c.phase {
        Phase::Done => return Ok(()),
        Phase::Connecting => {
            let Some(sock) = c.sock.as_mut() else {
                return Ok(());
            };
            if net.is_established(sock) {
                c.phase = Phase::Open;
            } else if net.readiness(sock).is_error() {
                end(c, trace, k);
                return Ok(());
            } else {
                return Ok(());
            }
        }
        Phase::Open => {}
    }
    let now = net.now();
    let stalling = world.staller == Some(k);
    if stalling && world.started && c.stalled_at.is_none() && now >= world.start + world.stall_after
    {
        c.stalled_at = Some(now);
        trace.add(&[b'S', k as u8]);
    }
    if c.stalled_at.is_some() && others_done {
        // Nobody is left to talk to: it hangs up.
        end(c, trace, k);
        return Ok(());
    }
    // Say the next thing: the nick once welcomed; lines in bursts once everybody is
    // in; /quit once it said everything and heard everybody out.
    if c.out.is_empty() && world.started && c.nicked && !c.quit_queued {
        if c.next_line < world.lines {
            if c.burst_left == 0 && now >= c.next_burst {
                c.burst_left = c.burst;
                c.next_burst = now + c.pause;
            }
            if c.burst_left > 0 {
                line_text(world.seed, k, c.next_line, &mut c.out);
                let _ = c.out.push(b'\n');
                c.next_line += 1;
                c.burst_left -= 1;
            }
        } else if !stalling && heard_everyone(world, k, c) {
            let _ = c.out.extend_from_slice(b"/quit\n");
            c.quit_queued = true;
        }
    }
    let Some(sock) = c.sock.as_mut() else {
        return Ok(());
    };
    if !c.out.is_empty() {
        match sock.send(&c.out) {
            Ok(Sent::Bytes(n)) => {
                let rest = c.out.len() - n;
                c.out.copy_within(n.., 0);
                c.out.truncate(rest);
            }
            Ok(Sent::WouldBlock) => {}
            Err(_) => {
                end(c, trace, k);
                return Ok(());
            }
        }
    }
    // Read at its pace (a stalled client reads nothing more).
    if c.stalled_at.is_some() || now < c.next_read {
        return Ok(());
    }
    let mut budget = if c.pace == 0 { usize::MAX } else { c.pace };
    let mut buf = [0u8; 256];
    while budget > 0 {
        let sock = match c.sock.as_mut() {
            Some(s) => s,
            None => return Ok(()),
        };
        let want = budget.min(buf.len());
        match sock.recv(&mut buf[..want]) {
            Ok(Recv::Data(n)) => {
                budget -= n;
                c.last_read = now;
                // Its pace: this tick's bytes are read (a read that found nothing,
                // even one that would block by a fault, is tried again next pass).
                if c.pace > 0 {
                    c.next_read = now + TICK;
                }
                trace.add(&[b'r', k as u8]);
                trace.add_u64(n as u64);
                for &b in &buf[..n] {
                    if b == b'\n' {
                        let line = core::mem::take(&mut c.line);
                        hear(world, k, c, &line)?;
                    } else if c.line.push(b).is_err() {
                        return Err(ChatFailure::Garbled { client: k });
                    }
                }
            }
            Ok(Recv::WouldBlock) => return Ok(()),
            Ok(Recv::Eof) | Err(_) => {
                c.complete = c.bye;
                end(c, trace, k);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// `c<K>` at the start of `s`, and the rest.
fn client_nick(s: &[u8]) -> Option<(usize, &[u8])> {
    parse_num(s.strip_prefix(b"c")?).filter(|&(k, _)| k < MAX_CHAT_CLIENTS)
}

fn hear(world: &World, k: usize, c: &mut Client<'_>, line: &[u8]) -> Result<(), ChatFailure> {
    if let Some(notice) = line.strip_prefix(b"* ") {
        if notice.starts_with(b"welcome ") && !c.welcomed {
            c.welcomed = true;
            let _ = c.out.extend_from_slice(b"/nick c");
            push_num(&mut c.out, k);
            let _ = c.out.push(b'\n');
        } else if notice.starts_with(b"you are now ") {
            c.nicked = true;
        } else if notice == b"bye" {
            c.bye = true;
        } else if let Some((j, rest)) = client_nick(notice) {
            if rest == b" left (too slow)" {
                if world.staller != Some(j) {
                    return Err(ChatFailure::ReaderEvicted { client: j });
                }
                c.left[j] = true;
                c.too_slow[j] = true;
            } else if rest == b" left" {
                c.left[j] = true;
            }
        }
        return Ok(());
    }
    // `c<B>: m<j>:<filler>`
    let Some((from, rest)) = client_nick(line) else {
        return Err(ChatFailure::Garbled { client: k });
    };
    let Some(text) = rest.strip_prefix(b": ") else {
        return Err(ChatFailure::Garbled { client: k });
    };
    if from == k {
        return Err(ChatFailure::HeardItself { client: k });
    }
    let Some((j, _)) = text.strip_prefix(b"m").and_then(parse_num) else {
        return Err(ChatFailure::Garbled { client: k });
    };
    // Everybody was in the room before the first line: from line 0, no gap.
    if j != c.heard[from] {
        return Err(ChatFailure::OutOfOrder {
            client: k,
            from,
            line: j,
            expected: c.heard[from],
        });
    }
    let mut expected: Vec<u8, 160> = Vec::new();
    line_text(world.seed, from, j, &mut expected);
    if text != &expected[..] {
        return Err(ChatFailure::Garbled { client: k });
    }
    c.heard[from] += 1;
    Ok(())
}
