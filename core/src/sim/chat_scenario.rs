//! The chat scenario: the core's chat server ([`crate::chat::server`]) and a group of
//! clients over a [`SimNet`], every option and fault drawn from one seed. Each client
//! sets a nick, says numbered lines and quits; every client checks that what it hears
//! from each other client is exactly that client's lines, in order, with none missing
//! in between and none of its own.

use crate::sim::SimIo;
use core::time::Duration;

use heapless::Vec;

use super::scenario::{NET_BUFFER, NET_SOCKETS};
use super::{FAULTS, Rng, SimConfig, SimNet, SimSelector, SimSocket, TraceHash};
use crate::chat::server::ChatServer;
use crate::{Observer, Reactor, Recv, Sent, Socket};

/// Most clients a chat run has.
pub const MAX_CHAT_CLIENTS: usize = 8;
/// Passes after which a chat run that has not finished counts as stalled.
pub const MAX_CHAT_PASSES: u32 = 20_000;
const PORT: u16 = 6667;
const MAP: usize = 12;

/// The shape of one chat run, drawn from the seed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChatParams {
    /// Clients.
    pub clients: usize,
    /// Lines each client says.
    pub lines: usize,
    /// The server's live-connection limit.
    pub max_conns: usize,
}

impl ChatParams {
    /// Parameters drawn from `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0xc4a7_5ce7_a210_0002);
        let clients = rng.range(2, MAX_CHAT_CLIENTS as u64) as usize;
        let max_conns = if rng.below(4) == 0 {
            rng.range(1, clients as u64) as usize
        } else {
            MAP - 1
        };
        ChatParams {
            clients,
            lines: rng.range(1, 20) as usize,
            max_conns,
        }
    }
}

impl core::fmt::Display for ChatParams {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "clients={} lines={} max_conns={}",
            self.clients, self.lines, self.max_conns
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
    /// A line's text differs from what its speaker said.
    Garbled {
        /// The listener.
        client: usize,
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
    sock: Option<SimSocket<'n, NET_SOCKETS, NET_BUFFER>>,
    phase: Phase,
    welcomed: bool,
    next_line: usize,
    quit_queued: bool,
    bye: bool,
    out: Vec<u8, 96>,
    line: Vec<u8, 400>,
    /// Lines heard from each other client, and the first line number heard.
    heard: [usize; MAX_CHAT_CLIENTS],
    first: [usize; MAX_CHAT_CLIENTS],
    seen: [bool; MAX_CHAT_CLIENTS],
    complete: bool,
}

impl Client<'_> {
    /// The line number expected next from `from`.
    fn heard_next(&self, from: usize) -> usize {
        self.first[from] + self.heard[from]
    }
}

/// Line `j` of client `k`: `m<j>:` and a filler drawn from the seed.
fn line_text(seed: u64, k: usize, j: usize, out: &mut Vec<u8, 96>) {
    let mut r = Rng::new(seed ^ ((k as u64) << 40) ^ ((j as u64) << 8) ^ 0x11);
    let _ = out.push(b'm');
    push_num(out, j);
    let _ = out.push(b':');
    for _ in 0..r.below(40) {
        let _ = out.push(b'a' + (r.byte() % 26));
    }
}

fn push_num(out: &mut Vec<u8, 96>, mut n: usize) {
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

type Server<'n> = Reactor<
    SimIo<'n, NET_SOCKETS, NET_BUFFER>,
    ChatServer<SimSocket<'n, NET_SOCKETS, NET_BUFFER>>,
    MAP,
>;

/// Runs the chat scenario.
///
/// # Errors
/// The first broken invariant.
pub fn run_chat(
    cfg: SimConfig,
    params: ChatParams,
    observer: Option<Observer>,
) -> Result<ChatReport, ChatFailure> {
    let net: SimNet<NET_SOCKETS, NET_BUFFER> = SimNet::new(cfg);
    let mut server: Server<'_> = Reactor::new(SimSelector::new(&net));
    server.set_observer(observer);
    let listener = net.listen(PORT).map_err(|_| ChatFailure::Loop)?;
    server
        .add(listener, ChatServer::listener(params.max_conns))
        .map_err(|_| ChatFailure::Loop)?;
    let mut trace = TraceHash::new();
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
            next_line: 0,
            quit_queued: false,
            bye: false,
            out: Vec::new(),
            line: Vec::new(),
            heard: [0; MAX_CHAT_CLIENTS],
            first: [0; MAX_CHAT_CLIENTS],
            seen: [false; MAX_CHAT_CLIENTS],
            complete: false,
        });
    }
    let seed = cfg.seed;
    let mut passes = 0;
    loop {
        if clients.iter().all(|c| c.phase == Phase::Done) && server.len() <= 1 {
            break;
        }
        if passes >= MAX_CHAT_PASSES {
            return Err(ChatFailure::Stalled);
        }
        server
            .poll_once(Some(Duration::from_millis(5)))
            .map_err(|_| ChatFailure::Loop)?;
        passes += 1;
        if let Some(stall) = net.stall() {
            return Err(ChatFailure::Unserviced(stall));
        }
        for k in 0..clients.len() {
            step(&net, seed, k, &mut clients[k], params.lines, &mut trace)?;
        }
    }
    let faults = cfg.rates.iter().any(|&r| r > 0) || params.max_conns < params.clients;
    let mut report = ChatReport {
        passes,
        trace_hash: 0,
        complete: 0,
        cut: 0,
        heard: 0,
        fired: net.fired(),
    };
    for (k, c) in clients.iter().enumerate() {
        report.heard += c.heard.iter().sum::<usize>() as u64;
        if c.complete {
            report.complete += 1;
        } else {
            report.cut += 1;
            if !faults {
                return Err(ChatFailure::Unexplained { client: k });
            }
        }
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

fn step<'n>(
    net: &'n SimNet<NET_SOCKETS, NET_BUFFER>,
    seed: u64,
    k: usize,
    c: &mut Client<'n>,
    lines: usize,
    trace: &mut TraceHash,
) -> Result<(), ChatFailure> {
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
    let Some(sock) = c.sock.as_mut() else {
        return Ok(());
    };
    // Say the next thing once welcomed: the nick, the lines, then /quit.
    if c.welcomed && c.out.is_empty() && !c.quit_queued {
        if c.next_line < lines {
            line_text(seed, k, c.next_line, &mut c.out);
            let _ = c.out.push(b'\n');
            c.next_line += 1;
        } else {
            let _ = c.out.extend_from_slice(b"/quit\n");
            c.quit_queued = true;
        }
    }
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
    let mut buf = [0u8; 256];
    loop {
        let sock = match c.sock.as_mut() {
            Some(s) => s,
            None => return Ok(()),
        };
        match sock.recv(&mut buf) {
            Ok(Recv::Data(n)) => {
                trace.add(&[b'r', k as u8]);
                trace.add_u64(n as u64);
                for &b in &buf[..n] {
                    if b == b'\n' {
                        let line = core::mem::take(&mut c.line);
                        hear(seed, k, c, &line)?;
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
}

fn hear(seed: u64, k: usize, c: &mut Client<'_>, line: &[u8]) -> Result<(), ChatFailure> {
    if let Some(notice) = line.strip_prefix(b"* ") {
        if notice.starts_with(b"welcome ") && !c.welcomed {
            c.welcomed = true;
            let _ = c.out.extend_from_slice(b"/nick c");
            push_num(&mut c.out, k);
            let _ = c.out.push(b'\n');
        } else if notice == b"bye" {
            c.bye = true;
        }
        return Ok(());
    }
    // `c<B>: m<j>:<filler>`
    let Some(rest) = line.strip_prefix(b"c") else {
        return Err(ChatFailure::Garbled { client: k });
    };
    let Some((from, rest)) = parse_num(rest) else {
        return Err(ChatFailure::Garbled { client: k });
    };
    let Some(text) = rest.strip_prefix(b": ") else {
        return Err(ChatFailure::Garbled { client: k });
    };
    if from == k {
        return Err(ChatFailure::HeardItself { client: k });
    }
    if from >= MAX_CHAT_CLIENTS {
        return Err(ChatFailure::Garbled { client: k });
    }
    let Some((j, _)) = text.strip_prefix(b"m").and_then(parse_num) else {
        return Err(ChatFailure::Garbled { client: k });
    };
    if c.seen[from] && j != c.heard_next(from) {
        return Err(ChatFailure::OutOfOrder {
            client: k,
            from,
            line: j,
            expected: c.heard_next(from),
        });
    }
    let mut expected: Vec<u8, 96> = Vec::new();
    line_text(seed, from, j, &mut expected);
    if text != &expected[..] {
        return Err(ChatFailure::Garbled { client: k });
    }
    if !c.seen[from] {
        c.seen[from] = true;
        c.heard[from] = 0;
        c.first[from] = j;
    }
    c.heard[from] += 1;
    Ok(())
}
