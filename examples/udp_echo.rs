//! The datagram echo server: every datagram comes back to its sender, unchanged.
//!
//! ```text
//! cargo run --release --example udp_echo -- [ADDR] [--backend select|poll|epoll] [--max-size N] [--quiet]
//! ```
//!
//! `ADDR` is `127.0.0.1:8082` by default (`[::1]:8082` for IPv6, `unix:/path` for a
//! Unix datagram socket; port 0 picks a free port). It prints `listening on ADDR`.
//! A datagram larger than `--max-size` (default 65,507, the largest UDP payload over
//! IPv4) is dropped and counted, with a line on stderr unless `--quiet`; so is one
//! from an unbound Unix socket (there is no address to answer). A reply the socket
//! cannot take at once waits in a fixed queue; when the queue is full it is dropped
//! and counted. Ctrl-C, SIGTERM and SIGHUP end it cleanly with the counts on stderr.
//! Everything lives in a `static`: once it prints `listening on`, the server
//! allocates nothing.

mod common;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use asyncore::{
    Addr, AnySelector, Backend, BufferPool, Ctx, DatagramQueue, Dispatcher, Error, ErrorKind,
    Lease, Sent, StdReactor, StdSocket,
};
use common::ServerArgs;
use common::log::{OUTSIDE_LOOP, STDOUT, log, say};

/// The largest UDP payload over IPv4: 65,535 − 8 (UDP header) − 20 (IP header).
const MAX_UDP: usize = 65_507;
/// The receive buffer, lent by the reactor's pool (so the dispatcher, which the
/// reactor takes by value, stays small): a datagram up to `MAX_UDP` fits whole; a
/// longer one (Unix datagram sockets allow them) is reported with its true length
/// and dropped.
const BUFFER: usize = 65_536;
/// Replies the socket could not take at once wait here: at least one datagram of
/// the largest size.
const QUEUE_BYTES: usize = 128 * 1024;
/// At most this many waiting replies.
const QUEUE_SLOTS: usize = 32;

/// The one channel: the datagram socket.
struct UdpEcho {
    /// The receive buffer, once lent.
    lease: Option<Lease>,
    queue: DatagramQueue<Addr, QUEUE_BYTES, QUEUE_SLOTS>,
}

/// The counts reported at exit.
static ECHOED: AtomicU64 = AtomicU64::new(0);
static ECHOED_BYTES: AtomicU64 = AtomicU64::new(0);
static OVERSIZE: AtomicU64 = AtomicU64::new(0);
static UNNAMED: AtomicU64 = AtomicU64::new(0);
static QUEUE_FULL: AtomicU64 = AtomicU64::new(0);
static SEND_FAILED: AtomicU64 = AtomicU64::new(0);
static RECV_FAILED: AtomicU64 = AtomicU64::new(0);
/// `--max-size`.
static MAX_SIZE: AtomicUsize = AtomicUsize::new(MAX_UDP);
/// `--quiet`.
static QUIET: AtomicBool = AtomicBool::new(false);

fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Dispatcher<StdSocket> for UdpEcho {
    type Error = Error;

    fn writable(&self) -> bool {
        self.queue.wants_write()
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let max = MAX_SIZE.load(Ordering::Relaxed);
        // One channel, one buffer: lent at the first datagram and kept.
        let Some(lease) = self.lease.take().or_else(|| ctx.lease()) else {
            return Err(Error::BufferFull);
        };
        // A bounded batch per readiness, so replies and other work get their turn.
        for _ in 0..64 {
            let got = match ctx.recv_from_leased(&lease, 0) {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    // No error ends a datagram socket; note it and go on.
                    bump(&RECV_FAILED, 1);
                    if !quiet() {
                        log!("receive failed: {e}");
                    }
                    continue;
                }
            };
            if got.len > max {
                bump(&OVERSIZE, 1);
                if !quiet() {
                    log!(
                        "dropped a datagram of {} bytes from {} (over --max-size {max})",
                        got.len,
                        got.from
                    );
                }
                continue;
            }
            if got.from == Addr::Unnamed {
                bump(&UNNAMED, 1);
                if !quiet() {
                    log!("dropped a datagram from an unbound Unix socket: no address to answer");
                }
                continue;
            }
            // Straight back if the socket takes it now; else it waits in the queue
            // (this sender's datagrams may then come back out of order, as UDP may).
            let sent = if self.queue.is_empty() {
                ctx.send_to_leased(&lease, 0..got.len, &got.from)
            } else {
                Ok(Sent::WouldBlock)
            };
            match sent {
                Ok(Sent::Bytes(n)) => {
                    bump(&ECHOED, 1);
                    bump(&ECHOED_BYTES, n as u64);
                }
                Ok(Sent::WouldBlock) => {
                    let data = ctx.leased(&lease).map(|b| &b[..got.len]).unwrap_or(&[]);
                    if self.queue.push_to(data, got.from).is_err() {
                        bump(&QUEUE_FULL, 1);
                        if !quiet() {
                            log!("dropped a reply to {}: the reply queue is full", got.from);
                        }
                    }
                }
                Err(e) => send_failed(&got.from, e),
            }
        }
        self.lease = Some(lease);
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        // The waiting replies, oldest first, until the socket would block.
        while let Some((data, to)) = self.queue.front() {
            let to = to.copied().unwrap_or(Addr::Unnamed);
            match ctx.send_to(data, &to) {
                Ok(Sent::Bytes(n)) => {
                    bump(&ECHOED, 1);
                    bump(&ECHOED_BYTES, n as u64);
                }
                Ok(Sent::WouldBlock) => break,
                // This reply cannot go (its sender is gone, ...): drop it, go on.
                Err(e) => send_failed(&to, e),
            }
            self.queue.pop_front();
        }
        Ok(())
    }
}

fn send_failed(to: &Addr, e: asyncore::SocketError) {
    bump(&SEND_FAILED, 1);
    if !quiet() {
        let why = if e.kind() == ErrorKind::ConnectionRefused {
            " (nothing is bound there any more)".to_string()
        } else {
            String::new()
        };
        log!("reply to {to} failed: {e}{why}");
    }
}

type Server = StdReactor<UdpEcho, 1, BufferPool<1, BUFFER>>;

/// The whole server in static memory; `Reactor::new` and the queue are `const`.
static REACTOR: Mutex<Server> = Mutex::new(Server::new(AnySelector::new(Backend::Select)));
const USAGE: &str = "usage: udp_echo [ADDR] [--backend select|poll|epoll] [--max-size N] [--quiet]

  ADDR           where to bind: IP:PORT, [IPV6]:PORT or unix:PATH (a Unix datagram
                 socket; default 127.0.0.1:8082)
  --backend      select (default), poll or epoll
  --max-size N   the largest datagram echoed, 0 to 65507 bytes (default 65507, the
                 largest UDP payload over IPv4); a larger one is dropped and counted,
                 with a line on stderr unless --quiet
  --quiet        no line per dropped datagram or failed reply

Each datagram goes back to its sender unchanged. A reply the socket cannot take at
once waits in a fixed queue of 32 replies (128 KiB); when it is full the reply is
dropped and counted. Datagrams from an unbound Unix socket cannot be answered and are
dropped and counted. Ctrl-C, SIGTERM and SIGHUP stop it; the counts go to stderr.";

fn memory() -> String {
    format!(
        "Memory, all static and fixed at compile time: {} bytes (the reactor with its \
         one channel and its reply queue, and the {BUFFER}-byte receive buffer its pool \
         lends the channel).",
        core::mem::size_of::<Mutex<Server>>()
    )
}

fn parse_args() -> Result<Option<(ServerArgs, usize)>, String> {
    let mut max = MAX_UDP;
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The stream servers' connection options mean nothing here.
    for a in &args {
        if a == "--max-conns" || a == "--idle-timeout" {
            return Err(format!(
                "{a}: not an option of udp_echo (there are no connections)"
            ));
        }
    }
    let parsed = ServerArgs::parse(args, "127.0.0.1:8082", 1, |option, rest| {
        if option == "--max-size" {
            let v = common::args::value(option, rest)?;
            max = common::args::count(option, &v, 0, MAX_UDP)?;
            return Ok(true);
        }
        Ok(false)
    })?;
    Ok(parsed.map(|a| (a, max)))
}

fn main() -> ExitCode {
    let (args, max) = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}\n\n{}", memory());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "udp_echo: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    MAX_SIZE.store(max, Ordering::Relaxed);
    QUIET.store(args.quiet, Ordering::Relaxed);

    let stop = match common::stop_on_signals() {
        Ok(stop) => stop,
        Err(e) => {
            say!("udp_echo: cannot install the signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bound = match common::bind::bind_datagram(&args.addr) {
        Ok(b) => b,
        Err(e) => {
            say!("udp_echo: cannot bind {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    let shown = common::shown_addr(&bound.socket, &args.addr);

    let mut reactor = REACTOR.lock().unwrap_or_else(|p| p.into_inner());
    *reactor.selector_mut() = AnySelector::new(args.backend);
    let echo = UdpEcho {
        lease: None,
        queue: DatagramQueue::new(),
    };
    if let Err(e) = reactor.add(bound.socket, echo) {
        say!("udp_echo: cannot watch the socket: {e}");
        return ExitCode::FAILURE;
    }
    STDOUT.line_within(format_args!("listening on {shown}"), OUTSIDE_LOOP);
    say!("backend {}, datagrams up to {max} bytes", args.backend);

    let served = common::serve_ticking(&mut *reactor, stop, Duration::from_millis(250));
    say!(
        "echoed {} datagrams ({} bytes); dropped {} over --max-size, {} from unbound \
         senders, {} with the reply queue full; {} replies failed, {} receives failed",
        ECHOED.load(Ordering::Relaxed),
        ECHOED_BYTES.load(Ordering::Relaxed),
        OVERSIZE.load(Ordering::Relaxed),
        UNNAMED.load(Ordering::Relaxed),
        QUEUE_FULL.load(Ordering::Relaxed),
        SEND_FAILED.load(Ordering::Relaxed),
        RECV_FAILED.load(Ordering::Relaxed),
    );
    common::finish("udp_echo", served, bound.file)
}
