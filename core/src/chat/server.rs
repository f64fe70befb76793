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
//! | (connects) | `* welcome guestN` | `* guestN joined` (in turn, see below) |
//! | `/nick NAME` | `* you are now NAME` | `* OLD is now NAME` |
//! | `/nick` with a bad name | `* invalid nick` | |
//! | `/nick` with a taken name | `* nick in use` | |
//! | `/nick guest7` (a default name) | `* nick reserved` | |
//! | `/ping` | `* pong` | |
//! | `/quit` | `* bye`, then the server closes | `* NAME left` |
//! | any other `/word` | `* unknown command` | |
//! | an empty line | nothing | |
//! | a line longer than the limit ([`MAX_LINE`] bytes by default) | `* line too long` | nothing |
//! | any other line | nothing | `NAME: line` (control characters replaced, see below) |
//! | (hangs up, or half-closes) | | `* NAME left` |
//! | (sends nothing for the idle timeout, if one is set) | `* idle timeout`, then the server closes | `* NAME left` |
//! | (connects while the server is full) | `* server full`, then the server closes | |
//! | (the server shuts down: [`ChatServer::shut_down`]) | `* server shutting down` after what was queued for it, then the server closes | |
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
//! (`/ping` will do) within the timeout. A user whose input waits for room (see
//! below) is not idle. A user who sent `/quit` and does not read its last lines is
//! closed at the same deadline.
//!
//! # Limits
//!
//! Everything is fixed memory. A line is at most the listener's limit
//! ([`ChatListener::with_max_line`], [`MAX_LINE`] bytes by default, never more than the
//! server's line capacity `LINE`); an over-long line is answered with
//! `* line too long` (as soon as the limit is crossed when nobody waits for room,
//! otherwise in turn when the line ends), skipped up to its end, and the connection
//! stays. Each connection has a [`CONN_INPUT`]-byte input ring, an `OUT`-byte output
//! ring (at least [`min_out`]`(LINE)`) and a `LINE`-byte line buffer; the number of
//! live connections is limited by the listener's `max_conns` (and the map).
//!
//! # Back-pressure and slow clients
//!
//! Nothing a user says is dropped, and every user gets every other user's lines
//! exactly, in the order each said them. A line goes to all receivers at once or
//! waits: it is queued only when every other user has room for it in its output ring
//! (what its socket takes at once is sent first to make room), with
//! [`NOTICE_RESERVE`] bytes to spare. Otherwise **the room waits**:
//!
//! * The line is held by its sender, whose input is paused
//!   ([`ChatControl::pause_input`]): no read interest, nothing more read or cut into
//!   lines. What it sends meanwhile waits in its input ring and its socket's buffers
//!   (the kernel's flow control then slows the client down). A user who then sends a
//!   line waits too, behind it; so does a new user's `* guestN joined`.
//! * Waiting users go in the order they started waiting (a ticket each), one line
//!   per turn: a user whose turn came sends its held line and, if others wait, queues
//!   its next line behind them. No talker starves another, and a short line cannot
//!   overtake a long one that waits for room.
//! * As soon as every receiver has room for the oldest waiter's line, it goes (woken
//!   through a deadline of "now"), then the next.
//! * A receiver that is short of room while lines wait for it is timed: its output
//!   must make progress (any byte sent) within the **slow timeout**
//!   ([`ChatListener::with_slow_timeout`], [`DEFAULT_SLOW_TIMEOUT`] by default). Each
//!   progress restarts the timer; one that made none for that long is disconnected as
//!   too slow ([`Ctx::close_channel`]: its queued output is discarded, its socket
//!   closed, and what it had said but the room had not yet taken goes with it). The
//!   others get `* NAME left (too slow)`, [`ChatListener::with_left_hook`] reports
//!   [`Leave::TooSlow`], and the room goes on.
//!
//! The trade-off: **the room runs at the pace of its slowest reader**, as long as
//! that reader keeps reading; a stalled reader holds everybody for at most the slow
//! timeout. A reader is never disconnected while it makes progress, however slowly.
//! With a slow timeout of zero, or a selector without a clock (nothing can time a
//! wait), a receiver short of room is disconnected at once instead, and nobody
//! waits.
//!
//! Notices of users leaving cannot wait (the user is gone): they are queued at once,
//! into the reserve if need be, which holds sixteen of them. A receiver that has no
//! room even for a notice (more than sixteen users left while it was not reading) is
//! disconnected as too slow at once. `* NAME left` of a user whose join was never
//! announced is not sent.
//!
//! The memory this costs: a ticket, a few flags and times per user; the reserve in
//! each output ring; no queue of waiters (the oldest is found by a scan, as a
//! broadcast scans every user anyway).

use core::fmt::Write as _;
use core::time::Duration;

use heapless::String;

use super::{AsyncChat, ChatControl, ChatHandler, NoProducer, Overflow, Terminator};
use crate::{
    AfterEof, Ctx, Dispatcher, Error, InterestMode, ListenerHooks, Refusal, Socket, SocketError,
    SourceEvent, Token,
};

/// The longest line a client may send by default, in bytes (its `\r\n` or `\n` not
/// counted), and the default line capacity of [`ChatServer`].
pub const MAX_LINE: usize = 2048;
/// The longest nick, in bytes.
pub const MAX_NICK: usize = 16;
/// The longest line the server sends for a client line of `line` bytes:
/// `NAME: ` + the line + `\n`.
pub const fn message_len(line: usize) -> usize {
    MAX_NICK + 2 + line + 1
}
/// The longest line the server sends with the default line capacity.
pub const MAX_MESSAGE: usize = message_len(MAX_LINE);
/// The longest leave notice: `* NAME left (too slow)\n`.
pub const MAX_LEAVE: usize = 2 + MAX_NICK + b" left (too slow)\n".len();
/// Room every receiver keeps for notices of users leaving, which cannot wait (the
/// user is gone): sixteen of the longest. A line is queued for a receiver only if
/// this much room stays free after it.
pub const NOTICE_RESERVE: usize = 16 * MAX_LEAVE;
/// The longest notice a command broadcasts: `* OLD is now NEW\n` (a join notice is
/// shorter).
const MAX_NOTICE: usize = 2 + MAX_NICK + b" is now ".len() + MAX_NICK + 1;
/// The longest reply to a command: `* you are now NAME\n`.
const MAX_REPLY: usize = b"* you are now ".len() + MAX_NICK + 1;
/// The smallest output ring for lines of up to `line` bytes: the longest message and
/// the notice reserve.
pub const fn min_out(line: usize) -> usize {
    let m = message_len(line);
    (if m > MAX_NOTICE { m } else { MAX_NOTICE }) + NOTICE_RESERVE
}
/// The default output ring of a connection.
pub const DEFAULT_OUT: usize = 4096;
/// The input ring of a connection (bytes per `recv`).
pub const CONN_INPUT: usize = 512;
/// Output queue entries of a connection (data runs coalesce: a few are enough).
pub const CONN_QUEUE: usize = 4;
/// How long the room waits for a receiver whose output makes no progress, by
/// default.
pub const DEFAULT_SLOW_TIMEOUT: Duration = Duration::from_secs(1);

/// A served connection: an [`AsyncChat`] around a [`ChatUser`].
pub type ChatConn<const OUT: usize, const LINE: usize = MAX_LINE> =
    AsyncChat<ChatUser<LINE>, NoProducer, CONN_INPUT, OUT, CONN_QUEUE>;

/// Why a user left (see [`ChatListener::with_left_hook`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Leave {
    /// The user sent `/quit`.
    Quit,
    /// The peer hung up, reset, or finished sending.
    Closed,
    /// Lines waited for the user while its output made no progress for the slow
    /// timeout (or more users left than its notice reserve holds): disconnected as
    /// too slow.
    TooSlow,
    /// A socket or handler error ended the connection.
    Error,
    /// The user sent nothing for the idle timeout and was disconnected.
    Idle,
    /// The server shut down ([`ChatServer::shut_down`]).
    Shutdown,
}

/// The listening side: accepts up to `max_conns` live connections; an extra one gets
/// `* server full` and is closed at once while the others are served.
#[derive(Debug)]
pub struct ChatListener<S> {
    max_conns: usize,
    idle: Option<Duration>,
    slow: Duration,
    max_line: usize,
    accepted: u64,
    refused: u64,
    hooks: ListenerHooks<S>,
    left: fn(Token, &str, Leave),
}

impl<S> ChatListener<S> {
    /// A listener serving at most `max_conns` connections at once, lines of up to
    /// [`MAX_LINE`] bytes, slow timeout [`DEFAULT_SLOW_TIMEOUT`], no idle timeout.
    pub fn new(max_conns: usize) -> Self {
        ChatListener {
            max_conns,
            idle: None,
            slow: DEFAULT_SLOW_TIMEOUT,
            max_line: MAX_LINE,
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
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// How long lines may wait for a receiver whose output makes no progress before
    /// it is disconnected as too slow (see the module docs; default
    /// [`DEFAULT_SLOW_TIMEOUT`]). Zero, or a selector without a clock, disconnects
    /// such a receiver at once. Applies to connections accepted from then on.
    #[must_use]
    pub fn with_slow_timeout(mut self, slow: Duration) -> Self {
        self.slow = slow;
        self
    }

    /// The longest line a client may send (default [`MAX_LINE`]); above the server's
    /// line capacity (`LINE` of [`ChatServer`]) it is lowered to it. Applies to
    /// connections accepted from then on.
    #[must_use]
    pub fn with_max_line(mut self, max_line: usize) -> Self {
        self.max_line = max_line;
        self
    }

    /// The idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }

    /// The slow timeout.
    pub fn slow_timeout(&self) -> Duration {
        self.slow
    }

    /// The longest line, as set (connections get at most their line capacity).
    pub fn max_line(&self) -> usize {
        self.max_line
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

/// What a waiting user holds back until the room has room for it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Held {
    /// Its own `* NAME joined` (a new user is announced in turn, like a line).
    Join,
    /// The complete line in its line buffer.
    Line,
    /// The `* line too long` reply to a line that just ended.
    TooLong,
}

/// A user waiting for room: its place in the queue and what it needs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Wait {
    /// Order among the waiters: the lowest goes first.
    ticket: u64,
    held: Held,
    /// Room it needs in its own output ring (a reply).
    own: usize,
    /// Room it needs in every other receiver's ring (a broadcast).
    others: usize,
}

/// A receiver short of room for the oldest waiter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Block {
    /// Since when, without progress (the time of its last progress).
    since: Duration,
    /// Its bytes sent then: progress is any change.
    sent: u64,
    /// The room (reserve included) it must have for the waiter to go.
    need: usize,
}

/// One user's protocol state: nick, the line being read, its place in the room's
/// queue, and how it is leaving. `LINE` is the line capacity.
#[derive(Debug)]
pub struct ChatUser<const LINE: usize = MAX_LINE> {
    nick: String<MAX_NICK>,
    line: heapless::Vec<u8, LINE>,
    /// The byte after `LINE` bytes of a record (a record is at most one longer than
    /// the longest line): the `\r` of a `\r\n`, or proof that the line is too long.
    extra: Option<u8>,
    max_line: usize,
    too_long: bool,
    too_long_told: bool,
    announced: bool,
    quitting: bool,
    /// Told the server is shutting down (quitting too).
    shut_down: bool,
    evicted: bool,
    errored: bool,
    idled: bool,
    gone: bool,
    peer_gone: bool,
    wait: Option<Wait>,
    block: Option<Block>,
    woken: bool,
    room_due: Option<Duration>,
    idle_at: Option<Duration>,
    armed: Option<Duration>,
    said: u64,
    overlong: u64,
    idle: Option<Duration>,
    slow: Duration,
    left_hook: fn(Token, &str, Leave),
}

impl<const LINE: usize> ChatUser<LINE> {
    fn new<S>(l: &ChatListener<S>) -> Self {
        ChatUser {
            nick: String::new(),
            line: heapless::Vec::new(),
            extra: None,
            max_line: l.max_line.min(LINE),
            too_long: false,
            too_long_told: false,
            announced: false,
            quitting: false,
            shut_down: false,
            evicted: false,
            errored: false,
            idled: false,
            gone: false,
            peer_gone: false,
            wait: None,
            block: None,
            woken: false,
            room_due: None,
            idle_at: None,
            armed: None,
            said: 0,
            overlong: 0,
            idle: l.idle,
            slow: l.slow,
            left_hook: l.left,
        }
    }

    /// The nick.
    pub fn nick(&self) -> &str {
        &self.nick
    }

    /// The longest line this user may send.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Lines this user said (broadcast to the others).
    pub fn said(&self) -> u64 {
        self.said
    }

    /// Over-long lines this user sent (each answered with `* line too long`).
    pub fn overlong(&self) -> u64 {
        self.overlong
    }

    /// Whether the user was disconnected as too slow.
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

    /// Whether the others have been told this user joined.
    pub fn is_announced(&self) -> bool {
        self.announced
    }

    /// Whether the user waits for room: its next line (or its join notice) is held
    /// back and its input is not read.
    pub fn is_waiting(&self) -> bool {
        self.waiting().is_some()
    }

    /// Whether the room waits for this user's output to make room.
    pub fn is_blocking(&self) -> bool {
        self.block.is_some()
    }

    /// Whether broadcasts are still queued for this user.
    fn receiving(&self) -> bool {
        !(self.gone || self.quitting || self.evicted || self.peer_gone)
    }

    /// Its place in the queue, if it waits.
    fn waiting(&self) -> Option<Wait> {
        self.wait.filter(|_| !(self.gone || self.evicted))
    }

    /// When this channel's deadline should be: the soonest of the idle deadline, the
    /// room's deadline (kept by the oldest waiter) and a wake-up now.
    fn due(&self, now: Duration) -> Option<Duration> {
        [self.idle_at, self.room_due, self.woken.then_some(now)]
            .into_iter()
            .flatten()
            .min()
    }

    fn reason(&self) -> Leave {
        if self.shut_down {
            Leave::Shutdown
        } else if self.evicted {
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

/// Whether `name` is a valid nick: 1 to [`MAX_NICK`] printable ASCII characters, no
/// spaces.
pub fn valid_nick(name: &[u8]) -> bool {
    (1..=MAX_NICK).contains(&name.len()) && name.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// Cleans `line` in place as [`clean_line`] does and returns its new length (never
/// more than before).
pub fn clean_in_place(line: &mut [u8]) -> usize {
    let (mut r, mut w) = (0, 0);
    while r < line.len() {
        let (valid, bad) = match core::str::from_utf8(&line[r..]) {
            Ok(s) => (s.len(), 0),
            // An incomplete sequence at the end is one bad run.
            Err(e) => (
                e.valid_up_to(),
                e.error_len().unwrap_or(line.len() - r - e.valid_up_to()),
            ),
        };
        let end = r + valid;
        while r < end {
            let b = line[r];
            let n = match b {
                0x00..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            // C0 but tab, DEL; C1 (U+0080 to U+009F) is 0xc2 0x80..=0x9f.
            let control = match n {
                1 => (b < 0x20 && b != b'\t') || b == 0x7f,
                2 => b == 0xc2 && line[r + 1] < 0xa0,
                _ => false,
            };
            if control {
                line[w] = b'?';
                w += 1;
            } else {
                line.copy_within(r..r + n, w);
                w += n;
            }
            r += n;
        }
        if bad > 0 {
            line[w] = b'?';
            w += 1;
            r += bad;
        }
    }
    w
}

/// `line` as it is relayed to the others: each control character but tab (C0, DEL,
/// C1 in UTF-8) and each maximal run of bytes that is not valid UTF-8 becomes `?`;
/// the rest, valid UTF-8, is kept. Never longer than `line`; cut to `N` bytes.
pub fn clean_line<const N: usize>(line: &[u8]) -> heapless::Vec<u8, N> {
    let mut out = heapless::Vec::new();
    // Cut first: the cut may split a character, which then shows as one `?`.
    let _ = out.extend_from_slice(&line[..line.len().min(N)]);
    let n = clean_in_place(&mut out);
    out.truncate(n);
    out
}

/// Whether `name` has the form of a default nick (`guest` and digits).
fn reserved_nick(name: &[u8]) -> bool {
    name.len() > 5 && name.starts_with(b"guest") && name[5..].iter().all(u8::is_ascii_digit)
}

// ---------------------------------------------------------------------------------
// The room: who waits, who is short of room, who goes next.

/// The map's dispatcher type, seen from a chat server's callbacks.
type Room<'c, S, const OUT: usize, const LINE: usize> = Ctx<'c, S, ChatServer<S, OUT, LINE>>;

/// The connection a routine runs for (its own channel is not among
/// [`Ctx::others`]): its user and its output.
struct Me<'a, const O: usize, const Q: usize, const L: usize> {
    user: &'a mut ChatUser<L>,
    out: &'a mut ChatControl<NoProducer, O, Q>,
}

/// The type of "no connection" for the listener's calls.
type NoMe<'a, const OUT: usize, const LINE: usize> = Me<'a, OUT, CONN_QUEUE, LINE>;

/// What a receiver's room says about the oldest waiter.
enum Fit {
    /// Room enough (or no need).
    Fits,
    /// Short of room, progress possible until this time.
    Short(Duration),
    /// Short of room for the slow timeout without progress (or at once, without a
    /// timed policy): to be disconnected.
    Expired,
}

/// Checks that `out` has `need` bytes (plus the notice reserve) free, sending what
/// its socket takes first (`flush`) if not. Keeps `user`'s block mark: set when it
/// is first found short, renewed when it made progress.
fn check_room<const O: usize, const Q: usize, const L: usize>(
    user: &mut ChatUser<L>,
    out: &mut ChatControl<NoProducer, O, Q>,
    need: usize,
    timed: Option<Duration>,
    flush: impl FnOnce(&mut ChatControl<NoProducer, O, Q>) -> Result<(), SocketError>,
) -> Fit {
    if need == 0 {
        return Fit::Fits;
    }
    let want = need + NOTICE_RESERVE;
    if out.output_free() < want
        && let Err(e) = flush(out)
        && e.is_disconnect()
    {
        // Nobody is there to deliver to: its channel closes at its next event,
        // with the others told.
        user.peer_gone = true;
        user.block = None;
        return Fit::Fits;
    }
    if out.output_free() >= want {
        user.block = None;
        return Fit::Fits;
    }
    let Some(now) = timed else {
        return Fit::Expired;
    };
    let sent = out.bytes_sent();
    match &mut user.block {
        Some(b) if b.sent == sent => {
            b.need = want;
            let due = b.since.saturating_add(user.slow);
            if due <= now {
                Fit::Expired
            } else {
                Fit::Short(due)
            }
        }
        b => {
            *b = Some(Block {
                since: now,
                sent,
                need: want,
            });
            Fit::Short(now.saturating_add(user.slow))
        }
    }
}

/// The next ticket: after every waiter's.
fn next_ticket<S: Socket, const OUT: usize, const LINE: usize>(
    ctx: &mut Room<'_, S, OUT, LINE>,
) -> u64 {
    let last = ctx
        .others()
        .filter_map(|c| match c.dispatcher {
            ChatServer::Conn(chat) => chat.handler.waiting().map(|w| w.ticket),
            ChatServer::Listener(_) | ChatServer::Stop => None,
        })
        .max();
    last.unwrap_or(0).saturating_add(1)
}

/// Whether nobody waits for room.
fn nobody_waits<S: Socket, const OUT: usize, const LINE: usize>(
    ctx: &mut Room<'_, S, OUT, LINE>,
) -> bool {
    !ctx.others()
        .any(|c| matches!(c.dispatcher, ChatServer::Conn(chat) if chat.handler.waiting().is_some()))
}

/// Sets another channel's deadline from its user's state after `f` changed it.
fn arm_other<S: Socket, const OUT: usize, const LINE: usize>(
    ctx: &mut Room<'_, S, OUT, LINE>,
    token: Token,
    f: impl FnOnce(&mut ChatUser<LINE>),
) {
    let now = ctx.now();
    let after = match ctx.channel(token) {
        Some(c) => match c.dispatcher {
            ChatServer::Conn(chat) => {
                let u = &mut chat.handler;
                f(u);
                match now.and_then(|now| u.due(now).map(|at| (now, at))) {
                    Some((now, at)) if u.armed != Some(at) => {
                        u.armed = Some(at);
                        Some(at.saturating_sub(now))
                    }
                    _ => None,
                }
            }
            ChatServer::Listener(_) | ChatServer::Stop => None,
        },
        None => None,
    };
    if let Some(after) = after {
        let _ = ctx.set_timeout_for(token, after);
    }
}

/// Sets this channel's deadline from its user's state.
fn arm_self<S: Socket, M, const LINE: usize>(user: &mut ChatUser<LINE>, ctx: &mut Ctx<'_, S, M>) {
    let Some(now) = ctx.now() else {
        return;
    };
    let want = user.due(now);
    if want == user.armed {
        return;
    }
    match want {
        Some(at) => {
            let _ = ctx.set_deadline(at);
        }
        None => ctx.cancel_deadline(),
    }
    user.armed = want;
}

/// Queues the message made of `parts` (`len` bytes in all) for `out`, sending what
/// the socket takes first if it does not fit. All or nothing: `false` when it does
/// not fit.
fn push_parts<const O: usize, const Q: usize>(
    out: &mut ChatControl<NoProducer, O, Q>,
    parts: &[&[u8]],
    len: usize,
    flush: impl FnOnce(&mut ChatControl<NoProducer, O, Q>) -> Result<(), SocketError>,
) -> Result<bool, SocketError> {
    if out.output_free() < len {
        flush(out)?;
        if out.output_free() < len {
            return Ok(false);
        }
    }
    for p in parts {
        // Cannot fail: the room was checked, and a receiver's queue holds data runs
        // only, which coalesce.
        if out.push(p).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Queues the message made of `parts` for every receiving user but `except`, and
/// for `me` if it receives. A receiver without room even after a flush is marked
/// evicted (only notices of users leaving can meet one: lines wait for room);
/// returns whether any other was. `me` evicted is closed at once.
fn push_all<S: Socket, const OUT: usize, const LINE: usize, const O: usize, const Q: usize>(
    ctx: &mut Room<'_, S, OUT, LINE>,
    except: Option<Token>,
    me: Option<&mut Me<'_, O, Q, LINE>>,
    parts: &[&[u8]],
) -> bool {
    let len = parts.iter().map(|p| p.len()).sum();
    let mut flagged = false;
    for c in ctx.others() {
        if Some(c.token) == except {
            continue;
        }
        let ChatServer::Conn(chat) = c.dispatcher else {
            continue;
        };
        if !chat.handler.receiving() {
            continue;
        }
        let socket = c.socket;
        match push_parts(&mut chat.chat, parts, len, |o| {
            o.flush_to(socket).map(|_| ())
        }) {
            Ok(true) => {}
            Err(e) if e.is_disconnect() => chat.handler.peer_gone = true,
            _ => {
                chat.handler.evicted = true;
                chat.chat.discard_output();
                flagged = true;
            }
        }
    }
    if let Some(me) = me
        && me.user.receiving()
    {
        let ok = push_parts(me.out, parts, len, |o| o.initiate_send(ctx));
        if !matches!(ok, Ok(true)) && ctx.is_open() {
            me.user.evicted = true;
            me.out.discard_output();
            ctx.close();
        }
    }
    flagged
}

/// Disconnects every other user marked evicted, at once ([`Ctx::close_channel`]: no
/// callback of theirs runs again), telling the others and the hook. A notice that
/// finds a receiver without room marks it in turn; it goes in the same loop.
fn evict_marked<S: Socket, const OUT: usize, const LINE: usize, const O: usize, const Q: usize>(
    ctx: &mut Room<'_, S, OUT, LINE>,
    mut me: Option<&mut Me<'_, O, Q, LINE>>,
) {
    loop {
        let found = ctx.others().find_map(|c| match c.dispatcher {
            ChatServer::Conn(chat) if chat.handler.evicted && !chat.handler.gone => {
                let u = &mut chat.handler;
                u.gone = true;
                Some((c.token, u.nick.clone(), u.announced, u.left_hook))
            }
            _ => None,
        });
        let Some((token, nick, announced, hook)) = found else {
            return;
        };
        ctx.close_channel(token);
        if announced {
            let parts: [&[u8]; 3] = [b"* ", nick.as_bytes(), b" left (too slow)\n"];
            push_all(ctx, None, me.as_deref_mut(), &parts);
        }
        hook(token, &nick, Leave::TooSlow);
    }
}

/// Announces the waiting new user of `token` for it (a join needs nothing of the
/// joiner's own context).
fn announce<S: Socket, const OUT: usize, const LINE: usize, const O: usize, const Q: usize>(
    ctx: &mut Room<'_, S, OUT, LINE>,
    token: Token,
    me: Option<&mut Me<'_, O, Q, LINE>>,
) {
    let nick = match ctx.channel(token) {
        Some(c) => match c.dispatcher {
            ChatServer::Conn(chat) => {
                chat.handler.wait = None;
                chat.handler.announced = true;
                chat.chat.resume_input();
                chat.handler.nick.clone()
            }
            ChatServer::Listener(_) | ChatServer::Stop => return,
        },
        None => return,
    };
    let parts: [&[u8]; 3] = [b"* ", nick.as_bytes(), b" joined\n"];
    if push_all(ctx, Some(token), me, &parts) {
        // Not expected: the room was checked.
        evict_marked::<S, OUT, LINE, O, Q>(ctx, None);
    }
}

/// The heart of the back-pressure: finds the oldest waiter and checks every receiver
/// it needs room in. If all have room, it goes: `true` when that is `me` (the caller
/// acts on what it holds), otherwise it is woken (a deadline of now: it acts in its
/// own callback) or, for a join, announced right here. If some are short, each
/// is marked with the time it became short (renewed on progress) and the waiter's
/// deadline is set to the first moment one of them has been short for the slow
/// timeout; a receiver past it, or any short receiver without a timed policy, is
/// disconnected as too slow, and the room is looked at again.
fn settle_room<S: Socket, const OUT: usize, const LINE: usize, const O: usize, const Q: usize>(
    ctx: &mut Room<'_, S, OUT, LINE>,
    mut me: Option<&mut Me<'_, O, Q, LINE>>,
    slow: Duration,
) -> bool {
    let timed = ctx.now().filter(|_| !slow.is_zero());
    loop {
        // `me` closing has nothing more to do here (a channel that is leaving calls
        // this without `me`, from its closing context).
        if me.is_some() && !ctx.is_open() {
            return false;
        }
        // The oldest waiter (None: `me`).
        let mut head: Option<(Option<Token>, Wait)> = me
            .as_deref()
            .and_then(|m| m.user.waiting())
            .map(|w| (None, w));
        for c in ctx.others() {
            if let ChatServer::Conn(chat) = c.dispatcher
                && let Some(w) = chat.handler.waiting()
                && head.is_none_or(|(_, h)| w.ticket < h.ticket)
            {
                head = Some((Some(c.token), w));
            }
        }
        let Some((head_token, w)) = head else {
            return false;
        };
        // Room for it in every receiver.
        let mut due: Option<Duration> = None;
        let mut expired = false;
        for c in ctx.others() {
            let ChatServer::Conn(chat) = c.dispatcher else {
                continue;
            };
            let need = if Some(c.token) == head_token {
                w.own
            } else if chat.handler.receiving() {
                w.others
            } else {
                0
            };
            let socket = c.socket;
            match check_room(&mut chat.handler, &mut chat.chat, need, timed, |o| {
                o.flush_to(socket).map(|_| ())
            }) {
                Fit::Fits => {}
                Fit::Short(at) => due = Some(due.map_or(at, |d| d.min(at))),
                Fit::Expired => {
                    chat.handler.evicted = true;
                    chat.chat.discard_output();
                    expired = true;
                }
            }
        }
        if let Some(m) = me.as_deref_mut() {
            let need = if head_token.is_none() {
                w.own
            } else if m.user.receiving() {
                w.others
            } else {
                0
            };
            match check_room(m.user, m.out, need, timed, |o| o.initiate_send(ctx)) {
                Fit::Fits => {}
                Fit::Short(at) => due = Some(due.map_or(at, |d| d.min(at))),
                Fit::Expired => {
                    m.user.evicted = true;
                    m.out.discard_output();
                    ctx.close();
                }
            }
        }
        if expired {
            evict_marked(ctx, me.as_deref_mut());
            continue;
        }
        if me.is_some() && !ctx.is_open() {
            return false;
        }
        match (head_token, due) {
            (None, Some(at)) => {
                if let Some(m) = me.as_deref_mut() {
                    m.user.room_due = Some(at);
                }
                return false;
            }
            (Some(t), Some(at)) => {
                arm_other(ctx, t, |u| u.room_due = Some(at));
                return false;
            }
            (None, None) => return true,
            (Some(t), None) if w.held == Held::Join => announce(ctx, t, me.as_deref_mut()),
            (Some(t), None) => {
                arm_other(ctx, t, |u| {
                    u.woken = true;
                    u.room_due = None;
                });
                return false;
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// One user's lines.

impl<const LINE: usize> ChatUser<LINE> {
    /// Queues a reply for this user: the room was checked, so it fits; should it not,
    /// the user is disconnected as too slow rather than the reply dropped.
    fn reply<S: Socket, M, const O: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<NoProducer, O, Q>,
        ctx: &mut Ctx<'_, S, M>,
        msg: &[u8],
    ) {
        if chat.push(msg).is_ok() {
            return;
        }
        if chat.initiate_send(ctx).is_err() {
            self.errored = true;
            chat.discard_output();
            ctx.close();
        } else if ctx.is_open() && chat.push(msg).is_err() {
            self.evicted = true;
            chat.discard_output();
            ctx.close();
        }
    }

    /// What the held item needs: room in its own ring, room in every other's.
    fn needs(&self, held: Held) -> (usize, usize) {
        match held {
            Held::Join => (0, MAX_NOTICE),
            Held::TooLong => (b"* line too long\n".len(), 0),
            Held::Line if self.line.first() == Some(&b'/') => (MAX_REPLY, MAX_NOTICE),
            Held::Line => (0, self.nick.len() + 2 + self.line.len() + 1),
        }
    }

    /// Queues `held` (behind every waiter) and asks the room; `true` when it may act
    /// now, otherwise it waits with its input paused.
    fn queue<S: Socket, const SOUT: usize, const O: usize, const Q: usize>(
        &mut self,
        held: Held,
        chat: &mut ChatControl<NoProducer, O, Q>,
        ctx: &mut Room<'_, S, SOUT, LINE>,
    ) -> bool {
        let (own, others) = self.needs(held);
        self.wait = Some(Wait {
            ticket: next_ticket(ctx),
            held,
            own,
            others,
        });
        let slow = self.slow;
        let mut me = Me {
            user: self,
            out: chat,
        };
        if settle_room(ctx, Some(&mut me), slow) {
            self.wait = None;
            self.room_due = None;
            true
        } else {
            if ctx.is_open() {
                chat.pause_input();
            }
            false
        }
    }

    /// Acts on what it held, now that the room has room for it.
    fn act<S: Socket, const SOUT: usize, const O: usize, const Q: usize>(
        &mut self,
        held: Held,
        chat: &mut ChatControl<NoProducer, O, Q>,
        ctx: &mut Room<'_, S, SOUT, LINE>,
    ) {
        match held {
            Held::Join => {
                self.announced = true;
                let nick = self.nick.clone();
                self.broadcast(chat, ctx, &[b"* ", nick.as_bytes(), b" joined\n"]);
            }
            Held::TooLong => self.reply(chat, ctx, b"* line too long\n"),
            Held::Line => {
                let line = core::mem::take(&mut self.line);
                if line.first() == Some(&b'/') {
                    self.command(&line, chat, ctx);
                } else {
                    self.said += 1;
                    let nick = self.nick.clone();
                    self.broadcast(chat, ctx, &[nick.as_bytes(), b": ", &line, b"\n"]);
                }
            }
        }
    }

    /// Sends a message to every other receiving user (the room was checked).
    fn broadcast<S: Socket, const SOUT: usize, const O: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<NoProducer, O, Q>,
        ctx: &mut Room<'_, S, SOUT, LINE>,
        parts: &[&[u8]],
    ) {
        if push_all::<S, SOUT, LINE, O, Q>(ctx, None, None, parts) {
            let mut me = Me {
                user: self,
                out: chat,
            };
            evict_marked(ctx, Some(&mut me));
        }
    }

    fn command<S: Socket, const SOUT: usize, const O: usize, const Q: usize>(
        &mut self,
        line: &[u8],
        chat: &mut ChatControl<NoProducer, O, Q>,
        ctx: &mut Room<'_, S, SOUT, LINE>,
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

    fn set_nick<S: Socket, const SOUT: usize, const O: usize, const Q: usize>(
        &mut self,
        name: &[u8],
        chat: &mut ChatControl<NoProducer, O, Q>,
        ctx: &mut Room<'_, S, SOUT, LINE>,
    ) {
        if !valid_nick(name) {
            return self.reply(chat, ctx, b"* invalid nick\n");
        }
        if name == self.nick.as_bytes() {
            let mut msg: String<MAX_REPLY> = String::new();
            let _ = writeln!(msg, "* you are now {}", self.nick);
            return self.reply(chat, ctx, msg.as_bytes());
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
        let mut msg: String<MAX_REPLY> = String::new();
        let _ = writeln!(msg, "* you are now {}", self.nick);
        self.reply(chat, ctx, msg.as_bytes());
        let new = self.nick.clone();
        self.broadcast(
            chat,
            ctx,
            &[b"* ", old.as_bytes(), b" is now ", new.as_bytes(), b"\n"],
        );
    }
}

impl<S: Socket, const SOUT: usize, const LINE: usize> ChatHandler<S, ChatServer<S, SOUT, LINE>>
    for ChatUser<LINE>
{
    type Producer = NoProducer;

    fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error> {
        // The record limit (the longest line and one byte) keeps a record within the
        // buffer and `extra`.
        let room = LINE - self.line.len();
        let (fits, rest) = data.split_at(data.len().min(room));
        let _ = self.line.extend_from_slice(fits);
        match rest {
            [] => {}
            [b] if self.extra.is_none() => self.extra = Some(*b),
            _ => self.too_long = true,
        }
        Ok(())
    }

    fn found_terminator<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<NoProducer, OUT, Q>,
        ctx: &mut Room<'_, S, SOUT, LINE>,
    ) -> Result<(), Error> {
        let too_long = core::mem::take(&mut self.too_long);
        let told = core::mem::take(&mut self.too_long_told);
        let extra = self.extra.take();
        if self.quitting || self.evicted || self.gone {
            self.line.clear();
            return Ok(());
        }
        let mut over = too_long || extra.is_some_and(|b| b != b'\r');
        if extra.is_none() && self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        over |= self.line.len() > self.max_line;
        if over {
            self.line.clear();
            if told {
                return Ok(());
            }
            if !too_long {
                self.overlong += 1;
            }
            if self.queue(Held::TooLong, chat, ctx) {
                self.act(Held::TooLong, chat, ctx);
            }
            return Ok(());
        }
        if self.line.is_empty() {
            return Ok(());
        }
        if self.line[0] != b'/' {
            let n = clean_in_place(&mut self.line);
            self.line.truncate(n);
        }
        if self.queue(Held::Line, chat, ctx) {
            self.act(Held::Line, chat, ctx);
        }
        Ok(())
    }

    fn handle_timeout<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<NoProducer, OUT, Q>,
        ctx: &mut Room<'_, S, SOUT, LINE>,
    ) -> Result<(), Error> {
        // Only the idle deadline is acted on here; the room's are the server's.
        let (Some(idle), Some(now)) = (self.idle, ctx.now()) else {
            return Ok(());
        };
        if self.gone || self.idle_at.is_none_or(|at| at > now) {
            return Ok(());
        }
        if self.waiting().is_some() || chat.input_paused() {
            // Its input waits for the room: not idle.
            self.idle_at = Some(now.saturating_add(idle));
            return Ok(());
        }
        self.idle_at = None;
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
        ctx: &mut Room<'_, S, SOUT, LINE>,
    ) -> Result<Overflow, Error> {
        self.line.clear();
        self.extra = None;
        if !self.too_long && !self.quitting && !self.evicted {
            self.too_long = true;
            self.overlong += 1;
            // Told at once if the room is free; otherwise in turn when the line ends.
            let reply = b"* line too long\n";
            if chat.output_free() >= reply.len() + NOTICE_RESERVE && nobody_waits(ctx) {
                self.too_long_told = true;
                self.reply(chat, ctx, reply);
            }
        }
        Ok(Overflow::Discard)
    }

    fn handle_error(&mut self, ctx: &mut Room<'_, S, SOUT, LINE>, error: Error) {
        let _ = error;
        self.errored = true;
        ctx.close();
    }
}

/// After a callback of `chat`: if its channel is closing (or `closing`), tell the
/// others the user left, once, and let the room go on without it. Returns whether
/// the user is gone.
fn settle_leave<S: Socket, const OUT: usize, const LINE: usize>(
    chat: &mut ChatConn<OUT, LINE>,
    ctx: &mut Room<'_, S, OUT, LINE>,
    closing: bool,
) -> bool {
    let user = &mut chat.handler;
    if user.gone {
        return true;
    }
    if ctx.is_open() && !closing {
        return false;
    }
    user.gone = true;
    user.wait = None;
    user.block = None;
    user.woken = false;
    user.room_due = None;
    let reason = user.reason();
    let nick = user.nick.clone();
    let slow = user.slow;
    if user.announced {
        let tail: &[u8] = if reason == Leave::TooSlow {
            b" left (too slow)\n"
        } else {
            b" left\n"
        };
        let parts: [&[u8]; 3] = [b"* ", nick.as_bytes(), tail];
        if push_all::<S, OUT, LINE, OUT, CONN_QUEUE>(ctx, None, None, &parts) {
            evict_marked::<S, OUT, LINE, OUT, CONN_QUEUE>(ctx, None);
        }
    }
    (user.left_hook)(ctx.token(), &nick, reason);
    // It may have been what the room waited for, or the one waiting.
    settle_room::<S, OUT, LINE, OUT, CONN_QUEUE>(ctx, None, slow);
    true
}

/// Lets `chat`'s user act on what it holds for as long as it is the oldest waiter
/// and the room has room; then wakes the next waiter if it can go.
fn run_turns<S: Socket, const OUT: usize, const LINE: usize>(
    chat: &mut ChatConn<OUT, LINE>,
    ctx: &mut Room<'_, S, OUT, LINE>,
) -> Result<(), Error> {
    let slow = chat.handler.slow;
    while ctx.is_open() && !chat.handler.gone {
        let go = {
            let mut me = Me {
                user: &mut chat.handler,
                out: &mut chat.chat,
            };
            settle_room(ctx, Some(&mut me), slow)
        };
        if !go {
            return Ok(());
        }
        let Some(w) = chat.handler.wait.take() else {
            return Ok(());
        };
        chat.handler.woken = false;
        chat.handler.room_due = None;
        chat.handler.act(w.held, &mut chat.chat, ctx);
        if ctx.is_open() {
            chat.chat.resume_input();
            chat.process_buffered(ctx)?;
        }
    }
    Ok(())
}

/// After any callback of a connection: a user leaving is settled; a receiver the
/// room waited for that made room lets the room go on; the deadline is set.
fn after<S: Socket, const OUT: usize, const LINE: usize>(
    chat: &mut ChatConn<OUT, LINE>,
    ctx: &mut Room<'_, S, OUT, LINE>,
    closing: bool,
) -> Result<(), Error> {
    let mut result = Ok(());
    if !closing && ctx.is_open() && !chat.handler.gone {
        let sent = chat.chat.bytes_sent();
        let free = chat.chat.output_free();
        if let Some(b) = &mut chat.handler.block
            && b.sent != sent
        {
            if free >= b.need {
                chat.handler.block = None;
                result = run_turns(chat, ctx);
            } else if let Some(now) = ctx.now() {
                // Progress: the slow timeout starts again.
                b.since = now;
                b.sent = sent;
            }
        }
    }
    if !settle_leave(chat, ctx, closing) {
        arm_self(&mut chat.handler, ctx);
    }
    result
}

/// A channel of a chat server: the listener or a user's connection. `OUT` is each
/// connection's output ring (at least [`min_out`]`(LINE)`), `LINE` the line
/// capacity (the longest line a listener may allow).
///
/// The variants differ in size by design: map slots are fixed-size and nothing is
/// boxed, so every slot is as large as a connection anyway.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ChatServer<S, const OUT: usize = DEFAULT_OUT, const LINE: usize = MAX_LINE> {
    /// The listening socket.
    Listener(ChatListener<S>),
    /// A user's connection.
    Conn(ChatConn<OUT, LINE>),
    /// An event source (a signal source, a waker) whose signals and wakes end the
    /// loop at once ([`Ctx::exit`]); the program then shuts the room down
    /// ([`shut_down`](Self::shut_down)) and drains it. Child exits are ignored.
    Stop,
}

impl<S, const OUT: usize, const LINE: usize> ChatServer<S, OUT, LINE> {
    const OUT_FITS: () = assert!(
        OUT >= min_out(LINE),
        "the output ring must hold the longest message and the notice reserve"
    );

    /// A listener serving at most `max_conns` connections.
    pub fn listener(max_conns: usize) -> Self {
        ChatServer::Listener(ChatListener::new(max_conns))
    }

    /// A listener with logging hooks.
    pub fn listener_with_hooks(max_conns: usize, hooks: ListenerHooks<S>) -> Self {
        ChatServer::Listener(ChatListener::new(max_conns).with_hooks(hooks))
    }

    /// A new connection, paused until its join is announced.
    fn conn(l: &ChatListener<S>, ticket: u64) -> ChatConn<OUT, LINE> {
        let () = Self::OUT_FITS;
        let mut user = ChatUser::new(l);
        let max_line = user.max_line;
        user.wait = Some(Wait {
            ticket,
            held: Held::Join,
            own: 0,
            others: MAX_NOTICE,
        });
        let mut chat = AsyncChat::new(user).with_terminator(Terminator::LF);
        chat.set_max_record(max_line + 1);
        chat.control().pause_input();
        chat
    }

    /// The listener, if this is one.
    pub fn as_listener(&self) -> Option<&ChatListener<S>> {
        match self {
            ChatServer::Listener(l) => Some(l),
            ChatServer::Conn(_) | ChatServer::Stop => None,
        }
    }

    /// The listener, mutably, if this is one.
    pub fn as_listener_mut(&mut self) -> Option<&mut ChatListener<S>> {
        match self {
            ChatServer::Listener(l) => Some(l),
            ChatServer::Conn(_) | ChatServer::Stop => None,
        }
    }

    /// The connection, if this is one.
    pub fn as_conn(&self) -> Option<&ChatConn<OUT, LINE>> {
        match self {
            ChatServer::Conn(c) => Some(c),
            ChatServer::Listener(_) | ChatServer::Stop => None,
        }
    }

    /// The user of a connection.
    pub fn user(&self) -> Option<&ChatUser<LINE>> {
        self.as_conn().map(|c| &c.handler)
    }

    /// Shuts this channel down, for a program that stops serving (after a
    /// [`Stop`](Self::Stop) source ended the loop). A user's connection is told
    /// `* server shutting down` (if its output ring has room for it), is no longer
    /// read and no longer gets lines, and closes once everything queued for it was
    /// sent; its user leaves with [`Leave::Shutdown`]. Returns `true` for such a
    /// connection: run the loop until they are all gone, bounded by a timer (a client
    /// that does not read would hold it). Returns `false` for the listener and a
    /// stop source, which the program closes (or keeps, to hear a second signal).
    pub fn shut_down(&mut self) -> bool {
        let ChatServer::Conn(chat) = self else {
            return false;
        };
        let user = &mut chat.handler;
        if user.gone || user.shut_down {
            return true;
        }
        user.shut_down = true;
        user.quitting = true;
        chat.control().pause_input();
        // All or nothing: a full ring gets no notice but still closes when drained.
        let _ = chat.push(b"* server shutting down\n");
        // A full queue cannot mark the end: the program's timer closes it then.
        let _ = chat.close_when_done();
        true
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

impl<S: Socket, const OUT: usize, const LINE: usize> ChatServer<S, OUT, LINE> {
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
        let ticket = next_ticket(ctx);
        let token = match ctx.add(socket, ChatServer::Conn(Self::conn(l, ticket))) {
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
        let now = ctx.now();
        let mut nick: String<MAX_NICK> = String::new();
        // Cannot fail: "guest" and at most 10 digits.
        let _ = write!(nick, "guest{}", token.index());
        if let Some(c) = ctx.channel(token) {
            (l.hooks.accepted)(token, c.socket);
            if let ChatServer::Conn(chat) = c.dispatcher {
                // Its ring is empty: the welcome fits.
                let _ = chat.push(b"* welcome ");
                let _ = chat.push(nick.as_bytes());
                let _ = chat.push(b"\n");
                chat.handler.nick = nick;
                if let (Some(idle), Some(now)) = (l.idle, now) {
                    chat.handler.idle_at = Some(now.saturating_add(idle));
                }
            }
        }
        // Announced now if nobody waits and every receiver has room; else in turn.
        settle_room::<S, OUT, LINE, OUT, CONN_QUEUE>(ctx, None::<&mut NoMe<'_, OUT, LINE>>, l.slow);
        arm_other(ctx, token, |_| {});
        Ok(())
    }
}

impl<S: Socket, const OUT: usize, const LINE: usize> Dispatcher<S> for ChatServer<S, OUT, LINE> {
    type Error = Error;

    fn readable(&self) -> bool {
        match self {
            ChatServer::Listener(_) | ChatServer::Stop => true,
            ChatServer::Conn(c) => {
                !c.handler.evicted && <ChatConn<OUT, LINE> as Dispatcher<S, Self>>::readable(c)
            }
        }
    }

    fn writable(&self) -> bool {
        match self {
            ChatServer::Listener(_) | ChatServer::Stop => false,
            ChatServer::Conn(c) => <ChatConn<OUT, LINE> as Dispatcher<S, Self>>::writable(c),
        }
    }

    /// Every answer depends on the channel's own fields (a broadcast reaches the
    /// other channels through `ctx.others()`, which the reactor sees).
    fn interest_mode(&self) -> InterestMode {
        InterestMode::OnChange
    }

    fn handle_accepted(&mut self, ctx: &mut Ctx<'_, S, Self>, mut socket: S) -> Result<(), Error> {
        match self {
            ChatServer::Listener(l) => Self::accept_one(l, ctx, socket),
            ChatServer::Conn(_) | ChatServer::Stop => {
                let _ = socket.close();
                Ok(())
            }
        }
    }

    fn handle_connect(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        match self {
            ChatServer::Listener(_) | ChatServer::Stop => Ok(()),
            ChatServer::Conn(c) => {
                let r = c.handle_connect(ctx);
                after(c, ctx, false).and(r)
            }
        }
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        match self {
            ChatServer::Listener(_) | ChatServer::Stop => Ok(()),
            ChatServer::Conn(c) => {
                if let (Some(idle), Some(now)) = (c.handler.idle, ctx.now())
                    && c.handler.receiving()
                {
                    // Activity: the idle deadline moves.
                    c.handler.idle_at = Some(now.saturating_add(idle));
                }
                let r = c.handle_read(ctx);
                after(c, ctx, false).and(r)
            }
        }
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        match self {
            ChatServer::Listener(_) | ChatServer::Stop => Ok(()),
            ChatServer::Conn(c) => {
                let r = c.handle_write(ctx);
                after(c, ctx, false).and(r)
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
            ChatServer::Listener(_) | ChatServer::Stop => Ok(()),
            ChatServer::Conn(c) => {
                // The deadline fired: nothing is set any more.
                c.handler.armed = None;
                c.handler.woken = false;
                if let Some(now) = ctx.now()
                    && c.handler.room_due.is_some_and(|at| at <= now)
                {
                    c.handler.room_due = None;
                }
                let mut r = c.handle_timeout(ctx);
                if r.is_ok() && ctx.is_open() {
                    // Its turn, or the room's deadline: look at the room.
                    r = run_turns(c, ctx);
                }
                after(c, ctx, false).and(r)
            }
        }
    }

    fn handle_eof(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<AfterEof, Error> {
        match self {
            ChatServer::Listener(_) | ChatServer::Stop => Ok(AfterEof::Close),
            ChatServer::Conn(c) => {
                // The peer finished sending: it has left; what is queued still goes
                // out, then the channel closes.
                settle_leave(c, ctx, true);
                c.handle_eof(ctx)
            }
        }
    }

    fn handle_event(
        &mut self,
        ctx: &mut Ctx<'_, S, Self>,
        event: SourceEvent,
    ) -> Result<(), Error> {
        if let (ChatServer::Stop, SourceEvent::Signal(_) | SourceEvent::Wake) = (self, event) {
            ctx.exit();
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        match self {
            ChatServer::Listener(_) | ChatServer::Stop => {}
            ChatServer::Conn(c) => {
                settle_leave(c, ctx, true);
            }
        }
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, Self>, error: Error) {
        match self {
            ChatServer::Listener(_) | ChatServer::Stop => {
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
