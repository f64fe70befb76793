//! A line-based multi-user chat server on `AsyncChat`.
//!
//! ```text
//! cargo run --release --example chat_server -- [ADDR] [--backend select|poll] [--max-conns N] [--idle-timeout SECS] [--quiet]
//! ```
//!
//! `ADDR` is `127.0.0.1:8081` by default (the echo server's is 8080), `[::1]:8081`
//! for IPv6, `unix:/path` for a Unix-domain socket; port 0 picks a free port. Try it
//! with a few `nc 127.0.0.1 8081`: set a nick with `/nick NAME`, and every other line
//! goes to everybody else as `NAME: line`; `/ping` answers `* pong`; `/quit` leaves.
//! A line longer than 256 bytes gets `* line too long` and is skipped; a client that
//! does not read what it is sent is disconnected as too slow, and nobody else notices
//! but for a `* NAME left (too slow)` line. Control characters other than tab are
//! relayed as `?` (a lone `\r` cannot forge another user's line). With
//! `--idle-timeout`, a client that sends nothing for that long is told
//! `* idle timeout` and disconnected. The full protocol is in
//! `asyncore::chat::server`.
//!
//! The map, the selector and every buffer are sized at compile time and live in a
//! `static`: once it prints `listening on ADDR`, the server allocates nothing. When
//! `--max-conns` clients are connected, a new one is told `* server full` and closed
//! while the others carry on. Ctrl-C, SIGTERM and SIGHUP end it cleanly. Logging
//! never blocks or panics: lines stderr cannot take at once are dropped and counted.

mod common;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use asyncore::chat::server::{ChatListener, ChatServer, Leave};
use asyncore::{AnySelector, Backend, ListenerHooks, StdReactor, StdSocket, Token};
use common::ServerArgs;
use common::log::{OUTSIDE_LOOP, STDOUT, log, say};

/// Channels the map can hold (the listener included).
const CAPACITY: usize = 1024;
/// Output ring per client: about fifteen of the longest lines.
const OUT: usize = 4096;

// The usage text names select's limit.
const _: () = assert!(asyncore::FD_SETSIZE == 1024);

type Server = StdReactor<ChatServer<StdSocket, OUT>, CAPACITY>;

/// The whole server state in static memory; `Reactor::new` is `const`.
static REACTOR: Mutex<Server> = Mutex::new(Server::new(AnySelector::new(Backend::Select)));

const USAGE: &str = "usage: chat_server [ADDR] [--backend select|poll] [--max-conns N] [--idle-timeout SECS] [--quiet]

  ADDR           where to listen: IP:PORT, [IPV6]:PORT or unix:PATH (default 127.0.0.1:8081)
  --backend      select (default) or poll
  --max-conns N  clients connected at once (1 to 1023; default 1023). Each one takes
                 an fd, and select(2) can only watch fds below FD_SETSIZE (1024): with
                 --backend select about 1,020 clients are served; poll has no such
                 limit. Both are bounded by RLIMIT_NOFILE (the soft limit is raised up
                 to the hard one as needed). At startup N is lowered to what the
                 backend can serve, and the server says so; a client over the limit is
                 told `* server full` and closed, with a line on stderr saying why
  --idle-timeout SECS
                 disconnect a client that sends nothing for SECS seconds, with
                 `* idle timeout` (0.001 to 604800, fractions allowed; default: never).
                 Only what a client sends counts: a reader must /ping now and then
  --quiet        no line per connection

Clients send lines: `/nick NAME` sets a nick (1-16 printable ASCII characters, no
spaces), `/ping` answers `* pong`, `/quit` leaves; any other line goes to every other
client as `NAME: line`, with control characters other than tab (and bytes that are
not UTF-8) shown as `?`. Lines are at most 256 bytes.";

fn parse_args() -> Result<Option<ServerArgs>, String> {
    ServerArgs::parse(
        std::env::args().skip(1),
        "127.0.0.1:8081",
        CAPACITY - 1,
        |_, _| Ok(false),
    )
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            // Not serving yet: a plain write, its error ignored (`--help | head`).
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "chat_server: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let (listening, stop) = match common::start("chat_server", &args.addr) {
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
    let mut chat = ChatListener::new(budget.max_conns);
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
    // The line clients wait for: a bounded wait for room, never a panic.
    STDOUT.line_within(format_args!("listening on {shown}"), OUTSIDE_LOOP);
    say!(
        "backend {}, at most {} clients{}",
        args.backend,
        budget.max_conns,
        budget
            .lowered
            .map(|l| format!(" ({l})"))
            .unwrap_or_default()
    );

    let served = common::serve(&mut *reactor, stop, Duration::from_millis(250));
    common::finish("chat_server", served, listening.file)
}
