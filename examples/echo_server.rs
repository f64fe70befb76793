//! The echo server: every byte a client sends comes back.
//!
//! ```text
//! cargo run --release --example echo_server -- [ADDR] [--backend select|poll|epoll] [--max-conns N] [--idle-timeout SECS] [--quiet] [--nodelay]
//! # a bigger map, chosen when it is built (here 20,480 channels), in its own target dir:
//! ASYNCORE_ECHO_CAPACITY=20480 cargo build --release --example echo_server --target-dir target/cap20k
//! ```
//!
//! `ADDR` is `127.0.0.1:8080` by default (`[::1]:8080` for IPv6, `unix:/path` for a
//! Unix-domain socket; port 0 picks a free port). The map, the selector and every
//! buffer are sized at compile time and live in a `static`, as on a constrained
//! target: once it prints `listening on ADDR`, the server allocates nothing. When
//! `--max-conns` connections are being served, a new one is accepted and closed at
//! once while the others carry on. Ctrl-C, SIGTERM and SIGHUP end it cleanly and at
//! once: the signal source in its map wakes the loop (there is no periodic tick).
//! Logging never blocks or panics: lines stderr cannot take at once are dropped and
//! counted.
//!
//! The map holds 2,048 channels (2,046 connections) unless the build sets
//! `ASYNCORE_ECHO_CAPACITY` to another number of channels (3 to 65,536, digits only;
//! anything else fails the build with a message saying so): the static memory, the
//! `--max-conns` bound and the memory `--help` prints all follow it. Cargo rebuilds
//! the example when the variable changes, so a separate `--target-dir` keeps the
//! default build as it is.

mod common;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Mutex;

use asyncore::{
    AnySelector, Backend, BufferPool, Echo, EchoListener, ListenerHooks, StdReactor, StdSocket,
    Token,
};
use common::ServerArgs;
use common::log::{OUTSIDE_LOOP, STDOUT, say};

/// Channels the map can hold (the listener and the signal source included): 2,048 by
/// default, enough for 2,000 clients on poll or epoll; a build with
/// `ASYNCORE_ECHO_CAPACITY=N` in its environment holds `N` (see [`capacity`]).
const CAPACITY: usize = capacity(option_env!("ASYNCORE_ECHO_CAPACITY"));
/// The capacity without `ASYNCORE_ECHO_CAPACITY`.
const DEFAULT_CAPACITY: usize = 2048;
/// The largest `ASYNCORE_ECHO_CAPACITY`: 65,536 channels are a static of about 140 MiB.
const MAX_CAPACITY: usize = 65_536;

/// The map's capacity from the build-time `ASYNCORE_ECHO_CAPACITY` (`None`: unset):
/// decimal digits only, from 3 (the listener, the signal source and one connection)
/// to [`MAX_CAPACITY`]. Evaluated at compile time, so a bad value fails the build
/// with the message below.
const fn capacity(value: Option<&str>) -> usize {
    let Some(text) = value else {
        return DEFAULT_CAPACITY;
    };
    let digits = text.as_bytes();
    if digits.is_empty() {
        panic!("ASYNCORE_ECHO_CAPACITY is empty: give a number of channels from 3 to 65536");
    }
    let mut n = 0usize;
    let mut i = 0;
    while i < digits.len() {
        let d = digits[i];
        if !d.is_ascii_digit() {
            panic!(
                "ASYNCORE_ECHO_CAPACITY must be decimal digits only (a number of channels from 3 to 65536)"
            );
        }
        n = n * 10 + (d - b'0') as usize;
        if n > MAX_CAPACITY {
            panic!("ASYNCORE_ECHO_CAPACITY is above 65536 channels");
        }
        i += 1;
    }
    if n < 3 {
        panic!(
            "ASYNCORE_ECHO_CAPACITY is below 3 channels (the listener, the signal source and one connection)"
        );
    }
    n
}

// The parser, checked when this is built.
const _: () = assert!(capacity(None) == DEFAULT_CAPACITY);
const _: () = assert!(capacity(Some("20480")) == 20_480 && capacity(Some("3")) == 3);
const _: () = assert!(capacity(Some("065536")) == MAX_CAPACITY);
/// Echo buffer per connection.
const BUFFER: usize = 2048;
/// Large buffers the reactor lends to busy connections: a message up to
/// `POOL_BUFFER` bytes is read in one `recv` and echoed in one `send`, whatever
/// `BUFFER` is; idle connections hold none.
const POOL: usize = 16;
/// Size of each lent buffer: a read as large as a hand-written loop's.
const POOL_BUFFER: usize = 64 * 1024;

// The usage text names select's limit.
const _: () = assert!(asyncore::FD_SETSIZE == 1024);

type Server = StdReactor<Echo<StdSocket, BUFFER>, CAPACITY, BufferPool<POOL, POOL_BUFFER>>;

/// The whole server state in static memory; `Reactor::new` is `const`.
static REACTOR: Mutex<Server> = Mutex::new(Server::new(AnySelector::new(Backend::Select)));

/// The usage text; the `--max-conns` bound follows [`CAPACITY`].
fn usage() -> String {
    format!(
        "usage: echo_server [ADDR] [--backend select|poll|epoll] [--max-conns N] [--idle-timeout SECS] [--quiet] [--nodelay]

  ADDR           where to listen: IP:PORT, [IPV6]:PORT or unix:PATH (default 127.0.0.1:8080)
  --backend      select (default), poll, or epoll (Linux's epoll(7): a wait costs
                 what is ready, not what is watched)
  --max-conns N  connections served at once (1 to {max}; default {max}). Each one takes
                 an fd, and select(2) can only watch fds below FD_SETSIZE (1024): with
                 --backend select about 1,020 connections are served whatever N says;
                 poll and epoll have no such limit. All are bounded by RLIMIT_NOFILE
                 (the soft limit is raised up to the hard one as needed; epoll's own
                 fd takes one more). At startup N is lowered
                 to what the backend can serve, and the server says so; a connection
                 over the limit is accepted and closed at once, with a line saying why
  --idle-timeout SECS
                 close connections that send nothing for SECS seconds (0.001 to
                 604800, fractions allowed; default: never)
  --quiet        no line per accepted or refused connection (for load tests)
  --nodelay      TCP_NODELAY on accepted connections (an echo larger than the buffer
                 leaves in pieces; without it, Nagle holds the later ones back)

Built with ASYNCORE_ECHO_CAPACITY=N in the environment (cargo build), the map holds N
channels (3 to 65536; this build: {CAPACITY}) and --max-conns goes up to N - 2.",
        max = CAPACITY - 2
    )
}

/// What `--help` adds after the usage: the memory the server holds, all of it
/// static (nothing is allocated once it serves).
fn memory() -> String {
    let total = core::mem::size_of::<Mutex<Server>>();
    let pool = POOL * POOL_BUFFER;
    format!(
        "Memory, all static and fixed at compile time: {total} bytes ({:.1} MiB):\n  \
         {CAPACITY} channels of {} bytes each (a {BUFFER}-byte echo buffer, the socket\n  \
         and the reactor's bookkeeping), and {POOL} buffers of {POOL_BUFFER} bytes\n  \
         ({pool} bytes) lent to connections while they move a large message.",
        total as f64 / (1024.0 * 1024.0),
        (total - pool) / CAPACITY,
    )
}

struct Args {
    common: ServerArgs,
    nodelay: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut nodelay = false;
    let common = ServerArgs::parse(
        std::env::args().skip(1),
        "127.0.0.1:8080",
        // The listener and the signal source take a channel each.
        CAPACITY - 2,
        |option, _| {
            nodelay |= option == "--nodelay";
            Ok(option == "--nodelay")
        },
    )?;
    Ok(common.map(|common| Args { common, nodelay }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            // Not serving yet: a plain write, its error ignored (`--help | head`).
            let _ = writeln!(std::io::stdout(), "{}\n\n{}", usage(), memory());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "echo_server: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };

    let (listening, signals) = match common::start("echo_server", &args.common.addr) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let shown = common::shown_addr(&listening.socket, &args.common.addr);
    let budget = match common::fd_budget(
        args.common.backend,
        &listening.socket,
        args.common.max_conns,
    ) {
        Ok(budget) => budget,
        Err(e) => {
            say!("echo_server: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut reactor = REACTOR.lock().unwrap_or_else(|p| p.into_inner());
    *reactor.selector_mut() = AnySelector::new(args.common.backend);
    fn no_delay(s: &StdSocket) {
        // Unix sockets have no Nagle: the error is expected there.
        let _ = s.set_nodelay(true);
    }

    let hooks = match (args.common.quiet, args.nodelay) {
        (true, false) => ListenerHooks::default(),
        (true, true) => ListenerHooks {
            accepted: |_, s: &StdSocket| no_delay(s),
            refused: |_, _| {},
        },
        (false, nodelay) => ListenerHooks {
            accepted: if nodelay {
                |token: Token, s: &StdSocket| {
                    no_delay(s);
                    common::log_accepted(token, s);
                }
            } else {
                common::log_accepted
            },
            refused: common::log_refused,
        },
    };
    let mut echo = EchoListener::new(budget.max_conns)
        .with_other_channels(1) // the signal source
        .with_hooks(hooks);
    if let Some(idle) = args.common.idle {
        echo = echo.with_idle_timeout(idle);
    }
    if let Err(e) = reactor.add(listening.socket, Echo::Listener(echo)) {
        say!("echo_server: cannot watch the listener: {e}");
        return ExitCode::FAILURE;
    }
    // The line clients wait for: a bounded wait for room, never a panic.
    STDOUT.line_within(format_args!("listening on {shown}"), OUTSIDE_LOOP);
    say!(
        "backend {}, at most {} connections{}",
        args.common.backend,
        budget.max_conns,
        budget
            .lowered
            .map(|l| format!(" ({l})"))
            .unwrap_or_default()
    );

    // SIGINT, SIGTERM and SIGHUP end the loop at once (no tick).
    if let Err(e) = reactor.add(signals, Echo::Stop) {
        say!("echo_server: cannot watch the signal source: {e}");
        return ExitCode::FAILURE;
    }
    let served = common::serve(&mut *reactor);
    common::finish("echo_server", served, listening.file)
}
