//! A line-based multi-user chat server built on [`AsyncChat`], generic over the socket
//! type and on fixed memory. The `chat_server` example runs it on real sockets; the
//! tests and the simulator run the very same code.
//!
//! # Protocol
//!
//! Lines end with `\n`; a `\r` before it is dropped, so `\r\n` clients work too. Lines
//! from the server to a client are either `NAME: text` (what another user said) or
//! start with `* ` (a notice from the server).
//!
//! | the client sends | the client gets | every other client gets |
//! |---|---|---|
//! | (connects) | `* welcome guestN` | `* guestN joined` |
//! | `/nick NAME` | `* you are now NAME` | `* OLD is now NAME` |
//! | `/nick` with a bad name | `* invalid nick` | |
//! | `/nick` with a taken name | `* nick in use` | |
//! | `/nick guest7` (a default name) | `* nick reserved` | |
//! | `/ping` | `* pong` | |
//! | `/quit` | `* bye`, then the server closes | `* NAME left` |
//! | any other `/word` | `* unknown command` | |
//! | an empty line | nothing | |
//! | a line of more than [`MAX_LINE`] bytes | `* line too long` | nothing |
//! | any other line | nothing | `NAME: line` (control characters replaced, see below) |
//! | (hangs up, or half-closes) | | `* NAME left` |
//! | (sends nothing for the idle timeout, if one is set) | `* idle timeout`, then the server closes | `* NAME left` |
//! | (connects while the server is full) | `* server full`, then the server closes | |
//!
//! A nick is 1 to [`MAX_NICK`] printable ASCII characters without spaces; until a
//! client picks one it is `guestN`, N being its slot index (unique among the live
//! connections). `guest` followed by digits only is reserved for those defaults.
//!
//! # What is relayed
//!
//! A line goes to the others as text that cannot pass for anything but that user's
//! line ([`clean_line`]): every control character except tab (C0 controls, a lone
//! `\r` among them, DEL, and the C1 controls U+0080 to U+009F written in UTF-8) and
//! every byte that is not part of valid UTF-8 becomes one `?`. Otherwise a lone `\r`
//! would let a user return to the start of the line and display a line as another
//! user's, and escape sequences would reach the others' terminals. Valid UTF-8 passes
//! unchanged, so does tab. Nothing is dropped silently: the `?` shows where something
//! was.
//!
//! # Idle timeout
//!
//! Off by default. With [`ChatListener::with_idle_timeout`], a client that sends
//! nothing for that long is told `* idle timeout` (if its output ring has room; what
//! its socket takes at once is sent), and disconnected; the others get `* NAME left`
//! as for a `/quit`, and [`ChatListener::with_left_hook`] reports [`Leave::Idle`]. Only what the
//! client *sends* counts as activity, so a user who only reads must say something
//! (`/ping` will do) within the timeout. A user who sent `/quit` and does not read
//! its last lines is closed at the same deadline.
//!
//! # Limits and the slow-client policy
//!
//! Everything is fixed memory: a line is at most [`MAX_LINE`] bytes (an over-long line
//! is answered with an error line and skipped up to its end; the connection stays),
//! each connection has a 512-byte input ring and an `OUT`-byte output ring, and the
//! number of live connections is limited by the listener's `max_conns` (and the map).
//!
//! Nothing is dropped silently. When a message cannot be queued for a client because
//! its output ring is full and its socket takes nothing more right now (its kernel
//! buffers are full too: it does not read as fast as the others write), **that client
//! is disconnected as too slow** and nobody else is affected: its queued output
//! is discarded, its socket's sending side is shut down (the peer sees the end of the
//! stream after what the kernel already holds), it is read no more, and its channel
//! closes on the next pass (through a deadline of "now" when the selector has a clock;
//! otherwise at the write readiness the shut-down sending side brings). The others get
//! `* NAME left (too slow)`, and the [`ChatListener::with_left_hook`] hook reports
//! [`Leave::TooSlow`]. The line that overflowed may reach the slow client cut short,
//! since part of it may already be in the kernel.

use core::fmt::Write as _;

use heapless::{String, Vec};

use super::{AsyncChat, ChatControl, ChatHandler, NoProducer, Overflow, Terminator};
use crate::{AfterEof, Ctx, Dispatcher, Error, ListenerHooks, Refusal, Socket, Token};

/// The longest line a client may send, in bytes (its `\r\n` or `\n` not counted).
pub const MAX_LINE: usize = 256;
/// The longest nick, in bytes.
pub const MAX_NICK: usize = 16;
/// The longest line the server sends: `NAME: ` + a line + `\n`.
pub const MAX_MESSAGE: usize = MAX_NICK + 2 + MAX_LINE + 1;
/// The default output ring of a connection.
pub const DEFAULT_OUT: usize = 4096;
/// The input ring of a connection (bytes per `recv`).
pub const CONN_INPUT: usize = 512;
/// Output queue entries of a connection (data runs coalesce: a few are enough).
pub const CONN_QUEUE: usize = 4;

/// A record may hold the line plus the `\r` of a `\r\n`.
const RECORD: usize = MAX_LINE + 1;

/// A served connection: an [`AsyncChat`] around a [`ChatUser`].
pub type ChatConn<const OUT: usize> = AsyncChat<ChatUser, NoProducer, CONN_INPUT, OUT, CONN_QUEUE>;

/// Why a user left (see [`ChatListener::with_left_hook`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Leave {
    /// The user sent `/quit`.
    Quit,
    /// The peer hung up, reset, or finished sending.
    Closed,
    /// Output to the user backed up: disconnected as too slow.
    TooSlow,
    /// A socket or handler error ended the connection.
    Error,
    /// The user sent nothing for the idle timeout and was disconnected.
    Idle,
}

/// The listening side: accepts up to `max_conns` live connections; an extra one gets
/// `* server full` and is closed at once while the others are served.
#[derive(Debug)]
pub struct ChatListener<S> {
    max_conns: usize,
    idle: Option<core::time::Duration>,
    accepted: u64,
    refused: u64,
    hooks: ListenerHooks<S>,
    left: fn(Token, &str, Leave),
}

impl<S> ChatListener<S> {
    /// A listener serving at most `max_conns` connections at once.
    pub fn new(max_conns: usize) -> Self {
        ChatListener {
            max_conns,
            idle: None,
            accepted: 0,
            refused: 0,
            hooks: ListenerHooks::default(),
            left: |_, _, _| {},
        }
    }

    /// Sets the hooks told of accepted and refused connections (a refused one was
    /// sent `* server full` first: to the client the server has no room for it,
    /// whether it is full or the selector cannot watch the socket).
    #[must_use]
    pub fn with_hooks(mut self, hooks: ListenerHooks<S>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Sets the hook told when a user (token, nick) leaves, and why.
    #[must_use]
    pub fn with_left_hook(mut self, left: fn(Token, &str, Leave)) -> Self {
        self.left = left;
        self
    }

    /// Disconnects a user who sends nothing for `idle` (see the module docs). Needs
    /// a selector with a clock. Applies to connections accepted from then on.
    #[must_use]
    pub fn with_idle_timeout(mut self, idle: core::time::Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// The idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<core::time::Duration> {
        self.idle
    }

    /// The connection limit.
    pub fn max_conns(&self) -> usize {
        self.max_conns
    }

    /// Changes the connection limit; connections already served stay.
    pub fn set_max_conns(&mut self, max_conns: usize) {
        self.max_conns = max_conns;
    }

    /// Connections accepted and served so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Connections refused (told `* server full` and closed) so far: the server was
    /// full, or the selector could not watch them.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

/// One user's protocol state: nick, the line being read, and how it is leaving.
#[derive(Debug)]
pub struct ChatUser {
    nick: String<MAX_NICK>,
    line: Vec<u8, RECORD>,
    too_long: bool,
    quitting: bool,
    evicted: bool,
    close_scheduled: bool,
    errored: bool,
    idled: bool,
    gone: bool,
    said: u64,
    overlong: u64,
    idle: Option<core::time::Duration>,
    left_hook: fn(Token, &str, Leave),
}

impl ChatUser {
    fn new(left_hook: fn(Token, &str, Leave), idle: Option<core::time::Duration>) -> Self {
        ChatUser {
            nick: String::new(),
            line: Vec::new(),
            too_long: false,
            quitting: false,
            evicted: false,
            close_scheduled: false,
            errored: false,
            idled: false,
            gone: false,
            said: 0,
            overlong: 0,
            idle,
            left_hook,
        }
    }

    /// The nick.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// Lines this user said (broadcast to the others).
    pub fn said(&self) -> u64 {
        self.said
    }

    /// Over-long lines this user sent (each answered with `* line too long`).
    pub fn overlong(&self) -> u64 {
        self.overlong
    }

    /// Whether the user was disconnected as too slow (its channel closes on the next
    /// pass).
    pub fn is_evicted(&self) -> bool {
        self.evicted
    }

    /// Whether the user sent `/quit`.
    pub fn is_quitting(&self) -> bool {
        self.quitting
    }

    /// Whether the user left (the others were told); the channel may still be
    /// flushing its last output.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Whether broadcasts are still queued for this user.
    fn receiving(&self) -> bool {
        !(self.gone || self.quitting || self.evicted)
    }

    fn reason(&self) -> Leave {
        if self.evicted {
            Leave::TooSlow
        } else if self.quitting {
            Leave::Quit
        } else if self.idled {
            Leave::Idle
        } else if self.errored {
            Leave::Error
        } else {
            Leave::Closed
        }
    }
}

/// A message of at most [`MAX_MESSAGE`] bytes, built from parts.
fn message(parts: &[&[u8]]) -> Vec<u8, MAX_MESSAGE> {
    let mut m = Vec::new();
    for p in parts {
        // Callers stay within MAX_MESSAGE; a longer message would be cut, never
        // overflow.
        let room = MAX_MESSAGE - m.len();
        let _ = m.extend_from_slice(&p[..p.len().min(room)]);
    }
    m
}

/// Whether `name` is a valid nick: 1 to [`MAX_NICK`] printable ASCII characters, no
/// spaces.
pub fn valid_nick(name: &[u8]) -> bool {
    (1..=MAX_NICK).contains(&name.len()) && name.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// `line` as it is relayed to the others: each control character but tab (C0, DEL,
/// C1 in UTF-8) and each maximal run of bytes that is not valid UTF-8 becomes `?`;
/// the rest, valid UTF-8, is kept. Never longer than `line`.
pub fn clean_line<const N: usize>(line: &[u8]) -> Vec<u8, N> {
    let mut out = Vec::new();
    // The output is never longer than the input: each replaced piece is at least one
    // byte. A line longer than N is cut (callers pass at most N bytes).
    let mut push = |bytes: &[u8]| {
        let room = N - out.len();
        let _ = out.extend_from_slice(&bytes[..bytes.len().min(room)]);
    };
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\t' {
                push(b"?");
            } else {
                push(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
        }
        if !chunk.invalid().is_empty() {
            push(b"?");
        }
    }
    out
}

/// Whether `name` has the form of a default nick (`guest` and digits).
fn reserved_nick(name: &[u8]) -> bool {
    name.len() > 5 && name.starts_with(b"guest") && name[5..].iter().all(u8::is_ascii_digit)
}

/// Queues `msg` for `chat`'s user. When its output ring is full, what its socket
/// takes now is sent first; if that does not make room, the user is too slow and is
/// disconnected.
fn deliver<S: Socket, const OUT: usize>(chat: &mut ChatConn<OUT>, socket: &mut S, msg: &[u8]) {
    if chat.push(msg).is_ok() {
        return;
    }
    match chat.control().flush_to(socket) {
        Ok(_) if chat.push(msg).is_ok() => {}
        // The peer is gone: its channel closes at its next event, with the others
        // told; nobody is there to deliver to.
        Err(e) if e.is_disconnect() => {}
        _ => evict(chat, socket),
    }
}

/// The slow-client policy: drop the user's output, stop reading it, shut its sending
/// side down (which also makes it writable), and close it at its next callback: the
/// deadline [`schedule_evictions`] sets, or that write readiness.
fn evict<S: Socket, const OUT: usize>(chat: &mut ChatConn<OUT>, socket: &mut S) {
    chat.handler.evicted = true;
    chat.control().discard_output();
    // Cannot fail: the queue was just emptied.
    let _ = chat.close_when_done();
    let _ = socket.shutdown_write();
}

/// Queues `msg` for every other user still receiving, except `except`. Users it
/// evicts get a deadline of now, so they close on the next pass.
fn broadcast<S: Socket, const OUT: usize>(
    ctx: &mut Ctx<'_, S, ChatServer<S, OUT>>,
    except: Option<Token>,
    msg: &[u8],
) {
    let mut evicted = false;
    for c in ctx.others() {
        if Some(c.token) == except {
            continue;
        }
        if let ChatServer::Conn(chat) = c.dispatcher
            && chat.handler.receiving()
        {
            deliver(chat, c.socket, msg);
            evicted |= chat.handler.evicted;
        }
    }
    if evicted {
        schedule_evictions(ctx);
    }
}

/// Gives every evicted user a deadline of now: its channel then closes on the next
/// pass even if its socket never turns writable. Without a clock, the write
/// readiness that the shut-down sending side brings does it.
fn schedule_evictions<S: Socket, const OUT: usize>(ctx: &mut Ctx<'_, S, ChatServer<S, OUT>>) {
    if ctx.now().is_none() {
        return;
    }
    loop {
        let next = ctx.others().find_map(|c| match c.dispatcher {
            ChatServer::Conn(chat) if chat.handler.evicted && !chat.handler.close_scheduled => {
                chat.handler.close_scheduled = true;
                Some(c.token)
            }
            _ => None,
        });
        let Some(token) = next else { break };
        let _ = ctx.set_timeout_for(token, core::time::Duration::ZERO);
    }
}

/// After a callback of `chat`: if its channel is closing (or `closing`), tell the
/// others the user left, once.
fn settle_leave<S: Socket, const OUT: usize>(
    chat: &mut ChatConn<OUT>,
    ctx: &mut Ctx<'_, S, ChatServer<S, OUT>>,
    closing: bool,
) {
    let user = &mut chat.handler;
    if user.gone || (ctx.is_open() && !closing) {
        return;
    }
    user.gone = true;
    let reason = user.reason();
    let nick = user.nick.clone();
    let tail: &[u8] = if reason == Leave::TooSlow {
        b" left (too slow)\n"
    } else {
        b" left\n"
    };
    broadcast(ctx, None, &message(&[b"* ", nick.as_bytes(), tail]));
    (user.left_hook)(ctx.token(), &nick, reason);
}

impl ChatUser {
    /// Queues a reply for this user. If its own output is full and its socket takes
    /// nothing more now, it is too slow: it is closed at once.
    fn reply<S: Socket, M, const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<NoProducer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
        msg: &[u8],
    ) {
        if chat.push(msg).is_ok() {
            return;
        }
        // Full: send what the socket takes now, then try again.
        if chat.initiate_send(ctx).is_err() {
            self.errored = true;
            chat.discard_output();
            ctx.close();
        } else if !ctx.is_open() {
            // The peer is gone: the loop ends the channel, the others are told.
        } else if chat.push(msg).is_err() {
            self.evicted = true;
            chat.discard_output();
            ctx.close();
        }
    }

    fn command<S: Socket, const SOUT: usize, const OUT: usize, const Q: usize>(
        &mut self,
        line: &[u8],
        chat: &mut ChatControl<NoProducer, OUT, Q>,
        ctx: &mut Ctx<'_, S, ChatServer<S, SOUT>>,
    ) {
        let (cmd, arg) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], line[i + 1..].trim_ascii()),
            None => (line, &b""[..]),
        };
        match cmd {
            b"/nick" => self.set_nick(arg, chat, ctx),
            b"/ping" => self.reply(chat, ctx, b"* pong\n"),
            b"/quit" => {
                self.reply(chat, ctx, b"* bye\n");
                if ctx.is_open() {
                    self.quitting = true;
                    // Cannot fail: data runs coalesce, so one entry is in use at most.
                    if chat.close_when_done().is_err() {
                        ctx.close();
                    }
                }
            }
            _ => self.reply(chat, ctx, b"* unknown command\n"),
        }
    }

    fn set_nick<S: Socket, const SOUT: usize, const OUT: usize, const Q: usize>(
        &mut self,
        name: &[u8],
        chat: &mut ChatControl<NoProducer, OUT, Q>,
        ctx: &mut Ctx<'_, S, ChatServer<S, SOUT>>,
    ) {
        if !valid_nick(name) {
            return self.reply(chat, ctx, b"* invalid nick\n");
        }
        if name == self.nick.as_bytes() {
            return self.reply(chat, ctx, &message(&[b"* you are now ", name, b"\n"]));
        }
        if reserved_nick(name) {
            return self.reply(chat, ctx, b"* nick reserved\n");
        }
        let taken = ctx.others().any(|c| {
            matches!(c.dispatcher, ChatServer::Conn(other)
                if !other.handler.gone && other.handler.nick.as_bytes() == name)
        });
        if taken {
            return self.reply(chat, ctx, b"* nick in use\n");
        }
        let old = core::mem::take(&mut self.nick);
        for &b in name {
            // Cannot fail: validated above (ASCII, at most MAX_NICK bytes).
            let _ = self.nick.push(b as char);
        }
        self.reply(chat, ctx, &message(&[b"* you are now ", name, b"\n"]));
        let notice = message(&[b"* ", old.as_bytes(), b" is now ", name, b"\n"]);
        broadcast(ctx, None, &notice);
    }
}

impl<S: Socket, const SOUT: usize> ChatHandler<S, ChatServer<S, SOUT>> for ChatUser {
    type Producer = NoProducer;

    fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error> {
        // The record limit keeps a line within RECORD bytes.
        self.line
            .extend_from_slice(data)
            .map_err(|_| Error::BufferFull)
    }

    fn found_terminator<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<NoProducer, OUT, Q>,
        ctx: &mut Ctx<'_, S, ChatServer<S, SOUT>>,
    ) -> Result<(), Error> {
        let too_long = core::mem::take(&mut self.too_long);
        let mut line = core::mem::take(&mut self.line);
        if too_long || self.quitting || self.evicted {
            return Ok(());
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > MAX_LINE {
            self.overlong += 1;
            self.reply(chat, ctx, b"* line too long\n");
            return Ok(());
        }
        if line.is_empty() {
            return Ok(());
        }
        if line[0] == b'/' {
            self.command(&line, chat, ctx);
        } else {
            self.said += 1;
            let clean: Vec<u8, RECORD> = clean_line(&line);
            let msg = message(&[self.nick.as_bytes(), b": ", &clean, b"\n"]);
            broadcast(ctx, None, &msg);
        }
        Ok(())
    }

    fn handle_timeout<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<NoProducer, OUT, Q>,
        ctx: &mut Ctx<'_, S, ChatServer<S, SOUT>>,
    ) -> Result<(), Error> {
        // Evictions have their own deadline, handled before this is called; the
        // only other deadline is the idle timeout.
        if self.idle.is_none() || self.gone {
            return Ok(());
        }
        if !self.quitting {
            // Idle: a last line if it fits and the socket takes it now, then close.
            self.idled = true;
            if chat.push(b"* idle timeout\n").is_ok() {
                let _ = chat.initiate_send(ctx);
            }
        }
        // A quitting user who does not read its last lines is closed too.
        chat.discard_output();
        ctx.close();
        Ok(())
    }

    fn record_too_long<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<NoProducer, OUT, Q>,
        ctx: &mut Ctx<'_, S, ChatServer<S, SOUT>>,
    ) -> Result<Overflow, Error> {
        self.line.clear();
        if !self.too_long && !self.quitting && !self.evicted {
            self.too_long = true;
            self.overlong += 1;
            self.reply(chat, ctx, b"* line too long\n");
        }
        Ok(Overflow::Discard)
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, ChatServer<S, SOUT>>, error: Error) {
        let _ = error;
        self.errored = true;
        ctx.close();
    }
}

/// A channel of a chat server: the listener or a user's connection. `OUT` is each
/// connection's output ring (at least [`MAX_MESSAGE`]).
///
/// The variants differ in size by design: map slots are fixed-size and nothing is
/// boxed, so every slot is as large as a connection anyway.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ChatServer<S, const OUT: usize = DEFAULT_OUT> {
    /// The listening socket.
    Listener(ChatListener<S>),
    /// A user's connection.
    Conn(ChatConn<OUT>),
}

impl<S, const OUT: usize> ChatServer<S, OUT> {
    const OUT_FITS_A_MESSAGE: () = assert!(
        OUT >= MAX_MESSAGE,
        "the output ring must hold the longest message"
    );

    /// A listener serving at most `max_conns` connections.
    pub fn listener(max_conns: usize) -> Self {
        ChatServer::Listener(ChatListener::new(max_conns))
    }

    /// A listener with logging hooks.
    pub fn listener_with_hooks(max_conns: usize, hooks: ListenerHooks<S>) -> Self {
        ChatServer::Listener(ChatListener::new(max_conns).with_hooks(hooks))
    }

    fn conn(l: &ChatListener<S>) -> ChatConn<OUT> {
        let () = Self::OUT_FITS_A_MESSAGE;
        let user = ChatUser::new(l.left, l.idle);
        let mut chat = AsyncChat::new(user).with_terminator(Terminator::LF);
        chat.set_max_record(RECORD);
        chat
    }

    /// The listener, if this is one.
    pub fn as_listener(&self) -> Option<&ChatListener<S>> {
        match self {
            ChatServer::Listener(l) => Some(l),
            ChatServer::Conn(_) => None,
        }
    }

    /// The listener, mutably, if this is one.
    pub fn as_listener_mut(&mut self) -> Option<&mut ChatListener<S>> {
        match self {
            ChatServer::Listener(l) => Some(l),
            ChatServer::Conn(_) => None,
        }
    }

    /// The connection, if this is one.
    pub fn as_conn(&self) -> Option<&ChatConn<OUT>> {
        match self {
            ChatServer::Conn(c) => Some(c),
            ChatServer::Listener(_) => None,
        }
    }

    /// The user of a connection.
    pub fn user(&self) -> Option<&ChatUser> {
        self.as_conn().map(|c| &c.handler)
    }
}

/// Closes a refused connection after a short error line: it was just accepted, so
/// its send buffer has room. Shutting the sending side down first and reading what
/// the client already sent lets the close end with a FIN rather than a reset.
fn refuse<S: Socket>(mut socket: S, hook: fn(&S, Refusal), why: Refusal) {
    let _ = socket.send(b"* server full\n");
    let _ = socket.shutdown_write();
    hook(&socket, why);
    let mut sink = [0u8; 256];
    for _ in 0..4 {
        match socket.recv(&mut sink) {
            Ok(crate::Recv::Data(n)) if n > 0 => {}
            _ => break,
        }
    }
    let _ = socket.close();
}

impl<S: Socket, const OUT: usize> ChatServer<S, OUT> {
    fn accept_one(
        l: &mut ChatListener<S>,
        ctx: &mut Ctx<'_, S, Self>,
        socket: S,
    ) -> Result<(), Error> {
        let live = ctx
            .others()
            .filter(|c| matches!(c.dispatcher, ChatServer::Conn(_)))
            .count();
        if live >= l.max_conns {
            l.refused += 1;
            refuse(socket, l.hooks.refused, Refusal::Full);
            return Ok(());
        }
        let token = match ctx.add(socket, ChatServer::Conn(Self::conn(l))) {
            Ok(token) => token,
            Err(e) => {
                let why = Refusal::from(e.kind);
                let (socket, _) = e.into_inner();
                l.refused += 1;
                refuse(socket, l.hooks.refused, why);
                return Ok(());
            }
        };
        l.accepted += 1;
        if let Some(idle) = l.idle {
            let _ = ctx.set_timeout_for(token, idle);
        }
        let mut nick: String<MAX_NICK> = String::new();
        // Cannot fail: "guest" and at most 10 digits.
        let _ = write!(nick, "guest{}", token.index());
        if let Some(c) = ctx.channel(token) {
            (l.hooks.accepted)(token, c.socket);
            if let ChatServer::Conn(chat) = c.dispatcher {
                chat.handler.nick = nick.clone();
                deliver(
                    chat,
                    c.socket,
                    &message(&[b"* welcome ", nick.as_bytes(), b"\n"]),
                );
            }
        }
        broadcast(
            ctx,
            Some(token),
            &message(&[b"* ", nick.as_bytes(), b" joined\n"]),
        );
        Ok(())
    }
}

impl<S: Socket, const OUT: usize> Dispatcher<S> for ChatServer<S, OUT> {
    type Error = Error;

    fn readable(&self) -> bool {
        match self {
            ChatServer::Listener(_) => true,
            ChatServer::Conn(c) => {
                !c.handler.evicted && <ChatConn<OUT> as Dispatcher<S, Self>>::readable(c)
            }
        }
    }

    fn writable(&self) -> bool {
        match self {
            ChatServer::Listener(_) => false,
            ChatServer::Conn(c) => <ChatConn<OUT> as Dispatcher<S, Self>>::writable(c),
        }
    }

    fn handle_accepted(&mut self, ctx: &mut Ctx<'_, S, Self>, mut socket: S) -> Result<(), Error> {
        match self {
            ChatServer::Listener(l) => Self::accept_one(l, ctx, socket),
            ChatServer::Conn(_) => {
                let _ = socket.close();
                Ok(())
            }
        }
    }

    fn handle_connect(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        match self {
            ChatServer::Listener(_) => Ok(()),
            ChatServer::Conn(c) => {
                let r = c.handle_connect(ctx);
                settle_leave(c, ctx, false);
                r
            }
        }
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        match self {
            ChatServer::Listener(_) => Ok(()),
            ChatServer::Conn(c) => {
                if let Some(idle) = c.handler.idle
                    && c.handler.receiving()
                {
                    // Activity: push the idle deadline back (not for a user already
                    // leaving: an eviction's deadline of now must stand).
                    let _ = ctx.set_timeout(idle);
                }
                let r = c.handle_read(ctx);
                settle_leave(c, ctx, false);
                r
            }
        }
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        match self {
            ChatServer::Listener(_) => Ok(()),
            ChatServer::Conn(c) => {
                let r = c.handle_write(ctx);
                settle_leave(c, ctx, false);
                r
            }
        }
    }

    fn handle_expt(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        // Urgent data means nothing to this protocol: read and drop it.
        let mut sink = [0u8; 16];
        let _ = ctx.recv_priority(&mut sink)?;
        Ok(())
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        match self {
            ChatServer::Listener(_) => Ok(()),
            ChatServer::Conn(c) if c.handler.evicted => {
                ctx.close();
                settle_leave(c, ctx, true);
                Ok(())
            }
            ChatServer::Conn(c) => {
                let r = c.handle_timeout(ctx);
                settle_leave(c, ctx, false);
                r
            }
        }
    }

    fn handle_eof(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<AfterEof, Error> {
        match self {
            ChatServer::Listener(_) => Ok(AfterEof::Close),
            ChatServer::Conn(c) => {
                // The peer finished sending: it has left; what is queued still goes
                // out, then the channel closes.
                settle_leave(c, ctx, true);
                c.handle_eof(ctx)
            }
        }
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        match self {
            ChatServer::Listener(_) => {}
            ChatServer::Conn(c) => {
                settle_leave(c, ctx, true);
            }
        }
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, Self>, error: Error) {
        match self {
            ChatServer::Listener(_) => {
                // An accept error that is not transient: as the default, close.
                let _ = error;
                ctx.close();
            }
            ChatServer::Conn(c) => {
                c.handle_error(ctx, error);
                settle_leave(c, ctx, true);
            }
        }
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
