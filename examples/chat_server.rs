//! A line-based multi-user chat server on `AsyncChat`.
//!
//! ```text
//! cargo run --release --example chat_server -- [ADDR] [--backend select|poll|epoll] [--max-conns N] [--max-line N] [--slow-timeout SECS] [--idle-timeout SECS] [--quiet]
//! ```
//!
//! `ADDR` is `127.0.0.1:8081` by default (the echo server's is 8080), `[::1]:8081`
//! for IPv6, `unix:/path` for a Unix-domain socket; port 0 picks a free port. Try it
//! with a few `nc 127.0.0.1 8081`: set a nick with `/nick NAME`, and every other line
//! goes to everybody else as `NAME: line`; `/ping` answers `* pong`; `/quit` leaves.
//! A line longer than `--max-line` (2048 bytes by default, at most [`LINE`]) gets
//! `* line too long` and is skipped. Control characters other than tab are relayed
//! as `?` (a lone `\r` cannot forge another user's line). With `--idle-timeout`, a
//! client that sends nothing for that long is told `* idle timeout` and disconnected.
//!
//! Under bursts the room waits for its slowest reader rather than drop anything: a
//! talker whose line does not fit some reader's buffer is not read until it does. A
//! reader whose output makes no progress for `--slow-timeout` (1 s by default) while
//! lines wait for it is disconnected as too slow (`* NAME left (too slow)`); a reader
//! that keeps reading, however slowly, stays. The full protocol and policy are in
//! `asyncore::chat::server`.
//!
//! The map, the selector and every buffer are sized at compile time and live in a
//! `static`: once it prints `listening on ADDR`, the server allocates nothing.
//! `--help` prints what a connection costs and the server's whole static memory.
//! When `--max-conns` clients are connected, a new one is told `* server full` and
//! closed while the others carry on. Ctrl-C, SIGTERM and SIGHUP end it cleanly and
//! at once (the signal source in its map wakes the loop; there is no periodic
//! tick): every user is told `* server shutting down` and gets what was queued for
//! it before that, for at most [`DRAIN`]; a second signal cuts that short.
//! Logging never blocks or panics: lines stderr cannot take at once are dropped and
//! counted.

mod common;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use asyncore::chat::server::{
    CONN_INPUT, ChatListener, ChatServer, DEFAULT_SLOW_TIMEOUT, Leave, MAX_LINE, NOTICE_RESERVE,
    min_out,
};
use asyncore::{AnySelector, Backend, ListenerHooks, RunEnd, StdReactor, StdSocket, Token};
use common::ServerArgs;
use common::args::{count, seconds, value};
use common::log::{OUTSIDE_LOOP, STDOUT, log, say};

/// Channels the map can hold (the listener and the signal source included).
const CAPACITY: usize = 1024;
/// How long a stopping server waits for its users to receive what was queued for
/// them and `* server shutting down`.
const DRAIN: Duration = Duration::from_secs(1);
/// The longest line `--max-line` may allow: every connection has a buffer this size.
const LINE: usize = 4096;
/// Output ring per client: two of the longest lines (so a reader that keeps up is
/// seldom short of room for the next), the notice reserve included.
const OUT: usize = 8192;

// The usage text names select's limit and the defaults.
const _: () = assert!(asyncore::FD_SETSIZE == 1024);
const _: () = assert!(MAX_LINE == 2048 && MAX_LINE <= LINE && OUT >= min_out(LINE));

type Conn = ChatServer<StdSocket, OUT, LINE>;
type Server = StdReactor<Conn, CAPACITY>;

/// The whole server state in static memory; `Reactor::new` is `const`.
static REACTOR: Mutex<Server> = Mutex::new(Server::new(AnySelector::new(Backend::Select)));

/// What a connection costs: its slot in the map and its share of the loop's
/// per-channel arrays (from the difference of two capacities, so padding counts).
const PER_CONNECTION: usize =
    (size_of::<StdReactor<Conn, 2048>>() - size_of::<StdReactor<Conn, 1024>>()) / 1024;

/// `--max-line` and `--slow-timeout`, beside the shared options.
#[derive(Debug)]
struct ChatArgs {
    server: ServerArgs,
    max_line: usize,
    slow: Duration,
}

fn usage() -> String {
    let kib = |n: usize| format!("{:.1} KiB", n as f64 / 1024.0);
    let mib = |n: usize| format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0));
    format!(
        "{USAGE}

Memory: each connection takes {PER_CONNECTION} bytes ({}): an output ring of {OUT}
bytes ({NOTICE_RESERVE} of them kept for notices), a line buffer of {LINE} bytes, an
input ring of {CONN_INPUT} bytes, and its share of the loop. The whole server is {}
bytes ({}) of static memory for {CAPACITY} channels; it allocates nothing once serving.",
        kib(PER_CONNECTION),
        size_of::<Server>(),
        mib(size_of::<Server>()),
    )
}

const USAGE: &str = "usage: chat_server [ADDR] [--backend select|poll|epoll] [--max-conns N] [--max-line N] [--slow-timeout SECS] [--idle-timeout SECS] [--quiet]

  ADDR           where to listen: IP:PORT, [IPV6]:PORT or unix:PATH (default 127.0.0.1:8081)
  --backend      select (default), poll, or epoll (Linux's epoll(7): a wait costs
                 what is ready, not what is watched)
  --max-conns N  clients connected at once (1 to 1022; default 1022). Each one takes
                 an fd, and select(2) can only watch fds below FD_SETSIZE (1024): with
                 --backend select about 1,020 clients are served; poll and epoll have
                 no such limit. All are bounded by RLIMIT_NOFILE (the soft limit is
                 raised up to the hard one as needed; epoll's own fd takes one more).
                 At startup N is lowered to what the
                 backend can serve, and the server says so; a client over the limit is
                 told `* server full` and closed, with a line on stderr saying why
  --max-line N   the longest line a client may send, in bytes (1 to 4096; default
                 2048); a longer one is answered `* line too long` and skipped
  --slow-timeout SECS
                 disconnect a client as too slow when lines wait for it and its
                 output makes no progress for SECS seconds (0.001 to 604800,
                 fractions allowed; default 1). Until then the room waits for it:
                 talkers are not read while a line does not fit some reader's
                 buffer, so the room runs at the pace of its slowest reader
  --idle-timeout SECS
                 disconnect a client that sends nothing for SECS seconds, with
                 `* idle timeout` (0.001 to 604800, fractions allowed; default: never).
                 Only what a client sends counts: a reader must /ping now and then
  --quiet        no line per connection

Clients send lines: `/nick NAME` sets a nick (1-16 printable ASCII characters, no
spaces), `/ping` answers `* pong`, `/quit` leaves; any other line goes to every other
client as `NAME: line`, with control characters other than tab (and bytes that are
not UTF-8) shown as `?`.";

fn parse_args() -> Result<Option<ChatArgs>, String> {
    let mut max_line = MAX_LINE;
    let mut slow = DEFAULT_SLOW_TIMEOUT;
    let server = ServerArgs::parse(
        std::env::args().skip(1),
        "127.0.0.1:8081",
        // The listener and the signal source take a channel each.
        CAPACITY - 2,
        |option, rest| {
            match option {
                "--max-line" => max_line = count(option, &value(option, rest)?, 1, LINE)?,
                "--slow-timeout" => slow = seconds(option, &value(option, rest)?)?,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(server.map(|server| ChatArgs {
        server,
        max_line,
        slow,
    }))
}

fn main() -> ExitCode {
    let (args, max_line, slow) = match parse_args() {
        Ok(Some(a)) => (a.server, a.max_line, a.slow),
        Ok(None) => {
            // Not serving yet: a plain write, its error ignored (`--help | head`).
            let _ = writeln!(std::io::stdout(), "{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "chat_server: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };

    let (listening, signals) = match common::start("chat_server", &args.addr) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let shown = common::shown_addr(&listening.socket, &args.addr);
    let budget = match common::fd_budget(args.backend, &listening.socket, args.max_conns) {
        Ok(budget) => budget,
        Err(e) => {
            say!("chat_server: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut reactor = REACTOR.lock().unwrap_or_else(|p| p.into_inner());
    *reactor.selector_mut() = AnySelector::new(args.backend);
    let mut chat = ChatListener::new(budget.max_conns)
        .with_max_line(max_line)
        .with_slow_timeout(slow);
    if !args.quiet {
        chat = chat
            .with_hooks(ListenerHooks {
                accepted: common::log_accepted,
                refused: common::log_refused,
            })
            .with_left_hook(|token: Token, nick: &str, why: Leave| {
                let why = match why {
                    Leave::Quit => "quit",
                    Leave::Closed => "hung up",
                    Leave::TooSlow => "too slow, disconnected",
                    Leave::Error => "error",
                    Leave::Idle => "idle timeout, disconnected",
                    Leave::Shutdown => "server shutting down",
                };
                log!("connection {token}: {nick} left ({why})");
            });
    }
    if let Some(idle) = args.idle {
        chat = chat.with_idle_timeout(idle);
    }
    if let Err(e) = reactor.add(listening.socket, ChatServer::Listener(chat)) {
        say!("chat_server: cannot watch the listener: {e}");
        return ExitCode::FAILURE;
    }
    // SIGINT, SIGTERM and SIGHUP end the loop at once (no tick).
    if let Err(e) = reactor.add(signals, ChatServer::Stop) {
        say!("chat_server: cannot watch the signal source: {e}");
        return ExitCode::FAILURE;
    }
    // The line clients wait for: a bounded wait for room, never a panic.
    STDOUT.line_within(format_args!("listening on {shown}"), OUTSIDE_LOOP);
    say!(
        "backend {}, at most {} clients{}, lines of up to {max_line} bytes, slow timeout {slow:?}",
        args.backend,
        budget.max_conns,
        budget
            .lowered
            .map(|l| format!(" ({l})"))
            .unwrap_or_default()
    );

    let served = common::run_until_stopped(&mut *reactor).and_then(|()| drain(&mut reactor));
    let _ = reactor.close_all();
    common::finish("chat_server", served, listening.file)
}

/// Stops serving gracefully: the listener closes, every user is told the server is
/// shutting down, and the loop runs until each has received what was queued for it
/// (its connection then closes), for at most [`DRAIN`] or until another stop signal.
fn drain(reactor: &mut Server) -> Result<(), asyncore::PollError<asyncore::AnyWaitError>> {
    let mut users = 0;
    let mut listener = None;
    for c in reactor.iter_mut() {
        if c.dispatcher.shut_down() {
            users += 1;
        } else if c.dispatcher.as_listener().is_some() {
            listener = Some(c.token);
        }
    }
    if let Some(t) = listener {
        reactor.close(t);
    }
    say!("stopping: told {users} users, waiting up to {DRAIN:?} for them to get it");
    let connected = |r: &Server| r.map().iter().any(|c| c.dispatcher.as_conn().is_some());
    // The real selectors have a clock: the timer cannot fail.
    let timer = reactor.add_timer(DRAIN).ok();
    while connected(reactor) {
        match reactor.run(None, Some(1))? {
            // The drain timed out, or a second stop signal.
            RunEnd::Timer(_) | RunEnd::Exit => break,
            RunEnd::Count | RunEnd::Empty => {}
        }
    }
    if let Some(t) = timer {
        reactor.cancel_timer(t);
    }
    Ok(())
}
