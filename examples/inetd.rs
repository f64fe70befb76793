//! A tiny inetd: every connection gets a child process running COMMAND, with the
//! connection's bytes on its stdin and its stdout sent back.
//!
//! ```text
//! cargo run --release --example inetd -- ADDR [--backend select|poll|epoll] [--max-conns N] [--quiet] -- COMMAND [ARGS...]
//! cargo run --example inetd -- 127.0.0.1:7000 -- cat        # an echo server
//! ```
//!
//! `ADDR` is `IP:PORT`, `[IPV6]:PORT` or `unix:PATH` (port 0 picks a free port); the
//! server prints `listening on ADDR`. The child's stderr is the server's.
//!
//! How it works: each connection is three channels in one map, beside the listener
//! and the signal source: the client's socket, the write end of the child's stdin
//! and the read end of its stdout (pipes, non-blocking and close-on-exec; the socket
//! is never handed to the child). The connection's channel holds two fixed rings of
//! [`BUF`] bytes, one per direction; each side reads only while its ring has room,
//! so a client that does not read holds the child back (its stdout pipe fills and
//! it blocks), and a child that does not read holds the client back, in fixed
//! memory either way. When the child ends, the signal source reports its exit
//! status (logged to stderr); the connection closes once the child has ended and
//! everything it wrote has been sent. At most `--max-conns` children run at once: a
//! connection beyond that is accepted and closed at once, with a line saying so.
//! A client that hangs up or resets ends its child (`SIGKILL`, reaped). SIGINT,
//! SIGTERM and SIGHUP stop the server: every child is killed and reaped, and it
//! exits with status 0.

mod common;

use std::ffi::OsString;
use std::io::Write as _;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use asyncore::{
    AfterEof, AnySelector, Child, Ctx, Dispatcher, Error, ExitStatus, Recv, Ring, Sent, Socket,
    SourceEvent, StdReactor, StdSocket, Token, dispatcher_enum,
};
use common::ServerArgs;
use common::log::{OUTSIDE_LOOP, STDOUT, log, say};

/// The most connections (children) served at once.
const MAX_CONNS: usize = 128;
/// Channels: the listener, the signal source, and three per connection (the
/// client, the child's stdin, the child's stdout).
const CAPACITY: usize = 2 + 3 * MAX_CONNS;
/// The bytes held per direction per connection (client to child, child to client).
const BUF: usize = 8 * 1024;

type Server = StdReactor<Inetd, CAPACITY>;

/// The whole server state in static memory; `Reactor::new` is `const`.
static REACTOR: Mutex<Server> =
    Mutex::new(Server::new(AnySelector::new(asyncore::Backend::Select)));

const USAGE: &str =
    "usage: inetd ADDR [--backend select|poll|epoll] [--max-conns N] [--quiet] -- COMMAND [ARGS...]

  ADDR           where to listen: IP:PORT, [IPV6]:PORT or unix:PATH
  --backend      select (default), poll or epoll
  --max-conns N  children running at once (1 to 128; default 128); a connection
                 beyond that is closed at once (each takes three fds, and select(2)
                 watches fds below 1024 only: N is lowered at startup if need be)
  --quiet        no line per connection or child exit
  COMMAND        run for each connection, its stdin the bytes the client sends, its
                 stdout sent back to the client";

// ------------------------------------------------------------------ channels

/// Accepts connections and starts a child for each.
struct Listener {
    command: Vec<OsString>,
    max_conns: usize,
    quiet: bool,
}

/// The signal source: a stop signal ends the loop; a child's exit goes to its
/// connection.
struct Signals {
    quiet: bool,
}

/// A client connection and its child.
struct Conn {
    /// Dropping it (the connection closed) kills and reaps the child if it runs.
    child: Child,
    /// The child's stdin channel, while open.
    stdin: Option<Token>,
    /// The child's stdout channel, while open.
    stdout: Option<Token>,
    /// Read from the client, not yet written to the child.
    up: Ring<BUF>,
    /// Read from the child, not yet sent to the client.
    down: Ring<BUF>,
    /// The client finished sending.
    client_eof: bool,
    /// How the child ended, once it did.
    exited: Option<ExitStatus>,
    quiet: bool,
}

/// The write end of a child's stdin. The bytes it writes are in its connection's
/// `up` ring; `pending` says there are some.
struct ToChild {
    conn: Token,
    pending: bool,
}

/// The read end of a child's stdout. It reads into its connection's `down` ring;
/// `room` says the ring has room.
struct FromChild {
    conn: Token,
    room: bool,
    /// The child ended: a read that finds nothing means its output is complete (a
    /// grandchild may still hold the pipe open; we do not wait for it).
    child_exited: bool,
}

/// Every channel of the server. Every slot of the map is the size of the largest
/// variant, the connection with its two rings: fixed memory, with no allocation per
/// connection (boxing the rings would allocate), at the cost of pipe channels as
/// large as connections.
#[allow(clippy::large_enum_variant)]
enum Inetd {
    Listener(Listener),
    Signals(Signals),
    Conn(Conn),
    ToChild(ToChild),
    FromChild(FromChild),
}

dispatcher_enum! {
    impl Dispatcher<StdSocket> for Inetd {
        type Error = Error;
        Listener(Listener),
        Signals(Signals),
        Conn(Conn),
        ToChild(ToChild),
        FromChild(FromChild),
    }
}

type C<'a, 'b> = &'a mut Ctx<'b, StdSocket, Inetd>;

/// The connection of `token`, if it is still open (and is not the running channel).
fn conn_of<'a>(ctx: C<'a, '_>, token: Token) -> Option<&'a mut Conn> {
    match ctx.channel(token)?.dispatcher {
        Inetd::Conn(c) => Some(c),
        _ => None,
    }
}

/// Closes another connection and its pipes (its child, if still running, is
/// killed and reaped as its `Child` is dropped).
fn close_conn(ctx: C<'_, '_>, token: Token) {
    if let Some(c) = conn_of(ctx, token) {
        let pipes = [c.stdin.take(), c.stdout.take()];
        for t in pipes.into_iter().flatten() {
            ctx.close_channel(t);
        }
        ctx.close_channel(token);
    }
}

// ------------------------------------------------------------------ listener

impl Dispatcher<StdSocket, Inetd> for Listener {
    type Error = Error;

    fn handle_accepted(&mut self, ctx: C<'_, '_>, mut socket: StdSocket) -> Result<(), Error> {
        let running = ctx
            .others()
            .filter(|c| matches!(c.dispatcher, Inetd::Conn(_)))
            .count();
        if running >= self.max_conns {
            if !self.quiet {
                log!("connection refused: {running} children running (--max-conns)");
            }
            let _ = socket.close();
            return Ok(());
        }
        let mut command = Command::new(&self.command[0]);
        command
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let spawned = match Child::spawn(&mut command) {
            Ok(s) => s,
            Err(e) => {
                log!("connection refused: {e}");
                let _ = socket.close();
                return Ok(());
            }
        };
        let (Some(stdin), Some(stdout)) = (spawned.stdin, spawned.stdout) else {
            return Ok(()); // piped above: cannot happen; the child is killed
        };
        let pid = spawned.child.pid();
        let peer = socket.peer_addr().ok();
        let conn = Conn {
            child: spawned.child,
            stdin: None,
            stdout: None,
            up: Ring::new(),
            down: Ring::new(),
            client_eof: false,
            exited: None,
            quiet: self.quiet,
        };
        // A refused add hands the values back; dropping them closes the fds and
        // kills the child.
        let token = match ctx.add(socket, conn.into()) {
            Ok(t) => t,
            Err(e) => {
                log!("connection refused: {}", e.kind);
                return Ok(());
            }
        };
        let to = ctx.add(
            stdin,
            ToChild {
                conn: token,
                pending: false,
            }
            .into(),
        );
        let from = ctx.add(
            stdout,
            FromChild {
                conn: token,
                room: true,
                child_exited: false,
            }
            .into(),
        );
        match (to, from) {
            (Ok(to), Ok(from)) => {
                if let Some(c) = conn_of(ctx, token) {
                    c.stdin = Some(to);
                    c.stdout = Some(from);
                }
                if !self.quiet {
                    match peer {
                        Some(peer) => log!("connection {token} from {peer}: child {pid}"),
                        None => log!("connection {token}: child {pid}"),
                    }
                }
            }
            (to, from) => {
                log!("connection {token} refused: the child's pipes cannot be watched");
                for t in [to.ok(), from.ok()].into_iter().flatten() {
                    ctx.close_channel(t);
                }
                ctx.close_channel(token);
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ signals

impl Dispatcher<StdSocket, Inetd> for Signals {
    type Error = Error;

    fn handle_event(&mut self, ctx: C<'_, '_>, event: SourceEvent) -> Result<(), Error> {
        match event {
            SourceEvent::Exit { pid, status } => self.child_ended(ctx, pid, status),
            // SIGINT, SIGTERM, SIGHUP: stop; `serve` closes every channel, which
            // kills and reaps every child.
            _ => ctx.exit(),
        }
        Ok(())
    }
}

impl Signals {
    fn child_ended(&mut self, ctx: C<'_, '_>, pid: u32, status: ExitStatus) {
        let Some(token) = ctx.others().find_map(|c| match c.dispatcher {
            Inetd::Conn(conn) if conn.child.pid() == pid => Some(c.token),
            _ => None,
        }) else {
            return; // its connection already closed
        };
        let Some(c) = conn_of(ctx, token) else {
            return;
        };
        if !self.quiet {
            log!("connection {token}: child {pid} ended: {status}");
        }
        c.exited = Some(status);
        // Nobody reads its stdin any more.
        c.up.clear();
        let (stdin, stdout, drained) = (c.stdin.take(), c.stdout, c.down.is_empty());
        if let Some(t) = stdin {
            ctx.close_channel(t);
        }
        match stdout {
            Some(t) => {
                // Read what is left in the pipe next pass, even if no readiness
                // comes (a grandchild holding the pipe open).
                if let Some(Inetd::FromChild(f)) = ctx.channel(t).map(|c| c.dispatcher) {
                    f.child_exited = true;
                }
                let _ = ctx.set_timeout_for(t, Duration::ZERO);
            }
            None if drained => close_conn(ctx, token),
            None => {} // the connection sends the rest, then closes
        }
    }
}

// ------------------------------------------------------------------ the client

impl Conn {
    /// Writes `up` into the child's stdin until the pipe is full.
    fn push_up(&mut self, ctx: C<'_, '_>) {
        let Some(t) = self.stdin else {
            self.up.clear();
            return;
        };
        let Some(ch) = ctx.channel(t) else {
            self.stdin = None;
            return;
        };
        let mut broken = false;
        while !self.up.is_empty() {
            let (a, _) = self.up.as_slices();
            match ch.socket.send(a) {
                Ok(Sent::Bytes(n)) => self.up.consume(n),
                Ok(Sent::WouldBlock) => break,
                Err(_) => {
                    broken = true; // the child closed its stdin
                    break;
                }
            }
        }
        if let Inetd::ToChild(to) = ch.dispatcher {
            to.pending = !self.up.is_empty();
        }
        if broken || (self.client_eof && self.up.is_empty()) {
            // EOF for the child, or it stopped reading.
            ctx.close_channel(t);
            self.stdin = None;
            self.up.clear();
        }
    }

    /// Sends `down` to the client until its socket is full; then tells the stdout
    /// channel whether there is room, and closes the connection if it is done.
    fn flush_down(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        while !self.down.is_empty() {
            let (a, _) = self.down.as_slices();
            let n = ctx.send(a)?;
            if n == 0 {
                break;
            }
            self.down.consume(n);
        }
        if let Some(t) = self.stdout {
            match ctx.channel(t).map(|c| c.dispatcher) {
                Some(Inetd::FromChild(f)) => {
                    f.room = self.down.free() > 0;
                    if f.child_exited && f.room {
                        // Read the rest even if no readiness comes (see FromChild).
                        let _ = ctx.set_timeout_for(t, Duration::ZERO);
                    }
                }
                _ => self.stdout = None, // closed after an error
            }
        }
        if self.exited.is_some() && self.stdout.is_none() && self.down.is_empty() {
            self.close(ctx);
        }
        Ok(())
    }

    /// Closes this connection and its pipes.
    fn close(&mut self, ctx: C<'_, '_>) {
        for t in [self.stdin.take(), self.stdout.take()]
            .into_iter()
            .flatten()
        {
            ctx.close_channel(t);
        }
        ctx.close();
    }
}

impl Dispatcher<StdSocket, Inetd> for Conn {
    type Error = Error;

    fn readable(&self) -> bool {
        // Without a stdin to feed, what the client sends is read and dropped, so
        // its EOF or reset is still seen.
        !self.client_eof && (self.up.free() > 0 || self.stdin.is_none())
    }

    fn writable(&self) -> bool {
        !self.down.is_empty()
    }

    fn handle_read(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        if self.stdin.is_none() {
            // A bounded helping per pass, so a client sending fast cannot hold the
            // loop.
            let mut sink = [0u8; 4096];
            for _ in 0..4 {
                if !matches!(ctx.recv(&mut sink)?, Recv::Data(n) if n > 0) {
                    break;
                }
            }
            return Ok(());
        }
        while self.up.free() > 0 {
            let (spare, _) = self.up.spare_mut();
            match ctx.recv(spare)? {
                Recv::Data(n) => self.up.commit(n),
                Recv::WouldBlock | Recv::Eof => break,
            }
        }
        self.push_up(ctx);
        Ok(())
    }

    fn handle_eof(&mut self, ctx: C<'_, '_>) -> Result<AfterEof, Error> {
        // The client finished sending: the child gets EOF once it has the rest.
        self.client_eof = true;
        self.push_up(ctx);
        Ok(AfterEof::KeepWriting)
    }

    fn handle_write(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        self.flush_down(ctx)
    }

    fn handle_close(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        // The client is gone: so is its child (killed and reaped with `child`).
        if self.exited.is_none() && !self.quiet {
            log!(
                "connection {}: the client left; child {} killed",
                ctx.token(),
                self.child.pid()
            );
        }
        self.close(ctx);
        Ok(())
    }

    fn handle_error(&mut self, ctx: C<'_, '_>, error: Error) {
        log!(
            "connection {}: {error}; child {} killed",
            ctx.token(),
            self.child.pid()
        );
        self.close(ctx);
    }
}

// ------------------------------------------------------------------ the child's pipes

impl Dispatcher<StdSocket, Inetd> for ToChild {
    type Error = Error;

    fn readable(&self) -> bool {
        false
    }

    fn writable(&self) -> bool {
        self.pending
    }

    fn handle_write(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        let mut buf = [0u8; BUF];
        let Some(c) = conn_of(ctx, self.conn) else {
            ctx.close();
            return Ok(());
        };
        let n = c.up.peek(&mut buf);
        let sent = ctx.send(&buf[..n])?;
        let Some(c) = conn_of(ctx, self.conn) else {
            ctx.close();
            return Ok(());
        };
        c.up.consume(sent);
        self.pending = !c.up.is_empty();
        if c.client_eof && c.up.is_empty() {
            c.stdin = None;
            ctx.close(); // EOF for the child
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        // The child closed its stdin (or ended): what the client sends is dropped.
        if let Some(c) = conn_of(ctx, self.conn) {
            c.stdin = None;
            c.up.clear();
        }
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, ctx: C<'_, '_>, error: Error) {
        log!("connection {}: writing to the child: {error}", self.conn);
        let _ = self.handle_close(ctx);
    }
}

impl FromChild {
    /// Reads the child's output into the connection's ring and sends it on to the
    /// client at once, while the ring has room.
    fn pump(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        let mut buf = [0u8; BUF];
        loop {
            let Some(c) = conn_of(ctx, self.conn) else {
                ctx.close();
                return Ok(());
            };
            let room = c.down.free();
            if room == 0 {
                self.room = false;
                return Ok(());
            }
            match ctx.recv(&mut buf[..room])? {
                Recv::Data(n) => {
                    if !self.forward(ctx, &buf[..n]) {
                        return Ok(());
                    }
                }
                // The reactor closes the channel (handle_close) once this returns.
                Recv::Eof => return Ok(()),
                Recv::WouldBlock if self.child_exited => return self.done(ctx),
                Recv::WouldBlock => return Ok(()),
            }
        }
    }

    /// Appends `data` to the connection's ring and sends what the client takes
    /// now. `false` when the connection closed meanwhile.
    fn forward(&mut self, ctx: C<'_, '_>, data: &[u8]) -> bool {
        let conn = self.conn;
        let Some(ch) = ctx.channel(conn) else {
            ctx.close();
            return false;
        };
        let Inetd::Conn(c) = ch.dispatcher else {
            return false;
        };
        c.down.push(data);
        let mut gone = false;
        while !c.down.is_empty() {
            let (a, _) = c.down.as_slices();
            match ch.socket.send(a) {
                Ok(Sent::Bytes(n)) => c.down.consume(n),
                Ok(Sent::WouldBlock) => break,
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
        self.room = c.down.free() > 0;
        if gone {
            // The client went away: the connection's own close path would see it
            // next pass; end it now, child included.
            close_conn(ctx, conn);
            ctx.close();
            return false;
        }
        true
    }

    /// The child's output is complete: this channel closes; so does the
    /// connection if the child ended and everything was sent.
    fn done(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        if let Some(c) = conn_of(ctx, self.conn) {
            c.stdout = None;
            if c.exited.is_some() && c.down.is_empty() {
                close_conn(ctx, self.conn);
            }
        }
        ctx.close();
        Ok(())
    }
}

impl Dispatcher<StdSocket, Inetd> for FromChild {
    type Error = Error;

    fn readable(&self) -> bool {
        self.room
    }

    fn handle_read(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        self.pump(ctx)
    }

    /// Set to now when the child ended: read what it left.
    fn handle_timeout(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        self.pump(ctx)
    }

    fn handle_eof(&mut self, _: C<'_, '_>) -> Result<AfterEof, Error> {
        Ok(AfterEof::Close) // then handle_close
    }

    /// EOF, or (poll) the hang-up of an empty pipe whose writer is gone.
    fn handle_close(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        self.done(ctx)
    }

    fn handle_error(&mut self, ctx: C<'_, '_>, error: Error) {
        log!("connection {}: reading from the child: {error}", self.conn);
        let _ = self.done(ctx);
    }
}

// ------------------------------------------------------------------ main

struct Args {
    common: ServerArgs,
    command: Vec<OsString>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut all: Vec<OsString> = std::env::args_os().skip(1).collect();
    let split = all.iter().position(|a| a == "--");
    let command = match split {
        Some(i) => all.split_off(i).into_iter().skip(1).collect::<Vec<_>>(),
        None => Vec::new(),
    };
    let options = all
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("{}: not UTF-8", a.to_string_lossy()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let Some(common) = ServerArgs::parse(options, "", MAX_CONNS, |_, _| Ok(false))? else {
        return Ok(None);
    };
    if common.addr.is_empty() {
        return Err("ADDR is missing".into());
    }
    if common.idle.is_some() {
        return Err("--idle-timeout is not an inetd option".into());
    }
    if command.is_empty() {
        return Err("COMMAND is missing (after --)".into());
    }
    Ok(Some(Args { common, command }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "inetd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let (listening, signals) = match common::start("inetd", &args.common.addr) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let shown = common::shown_addr(&listening.socket, &args.common.addr);
    // Three fds per connection, and a few spare for spawning (the child's pipes
    // exist in this process for a moment, and std's exec-error pipe).
    const SPAWN_FDS: usize = 4;
    let wanted = 3 * args.common.max_conns + SPAWN_FDS;
    let budget = match common::fd_budget(args.common.backend, &listening.socket, wanted) {
        Ok(b) if b.max_conns > SPAWN_FDS + 2 => b,
        Ok(_) => {
            say!("inetd: not enough fds for a single connection");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            say!("inetd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let max_conns = ((budget.max_conns - SPAWN_FDS) / 3).min(args.common.max_conns);

    let mut reactor = REACTOR.lock().unwrap_or_else(|p| p.into_inner());
    *reactor.selector_mut() = AnySelector::new(args.common.backend);
    let listener = Listener {
        command: args.command,
        max_conns,
        quiet: args.common.quiet,
    };
    if let Err(e) = reactor.add(listening.socket, listener.into()) {
        say!("inetd: cannot watch the listener: {e}");
        return ExitCode::FAILURE;
    }
    let stop = Signals {
        quiet: args.common.quiet,
    };
    if let Err(e) = reactor.add(signals, stop.into()) {
        say!("inetd: cannot watch the signal source: {e}");
        return ExitCode::FAILURE;
    }
    STDOUT.line_within(format_args!("listening on {shown}"), OUTSIDE_LOOP);
    say!(
        "backend {}, at most {max_conns} children{}",
        args.common.backend,
        budget
            .lowered
            .map(|l| format!(" (fds: {l})"))
            .unwrap_or_default()
    );

    let served = common::serve(&mut *reactor);
    common::finish("inetd", served, listening.file)
}
