//! The `Dispatcher` trait: the asyncore callbacks, and the context handlers receive.

use crate::{
    AddError, AddErrorKind, ChannelMut, Recv, Sent, Socket, SocketError, State, Token,
    fmt::{info_, warn_},
    map::{Channel, Flags, Meta, Split},
    selector::Registrar,
};

/// The severity of a [`Dispatcher::log_info`] line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Level {
    /// Detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unhandled or unexpected that the loop survives.
    Warning,
    /// A handler error.
    Error,
}

/// What to do when the peer finished sending (EOF).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReadClosed {
    /// Close the channel: `handle_close` runs, then the channel is removed. This is
    /// the original's behaviour and the default.
    Close,
    /// Keep the channel open for writing (half-close): it moves to
    /// [`State::ReadClosed`], read interest stops, and writes go on until the
    /// dispatcher closes it or the connection breaks.
    KeepWriting,
}

/// How many connections the default [`Dispatcher::handle_accept`] takes per readiness
/// event before returning to the loop.
pub const ACCEPT_BATCH: usize = 16;

/// The callbacks of one channel: the original's `dispatcher` class.
///
/// Every method has a default. `S` is the socket type; `M` is the dispatcher type stored
/// in the map, `Self` unless `Self` is one variant of a user enum (see
/// [`dispatcher_enum!`](crate::dispatcher_enum)).
///
/// Handlers get a [`Ctx`]: their own socket and state, `close()`, `add()` for new
/// channels, access to other channels by token, and `exit()`. They return `Result`; an
/// `Err` goes to [`handle_error`](Dispatcher::handle_error).
///
/// Differences from the original, by design:
/// * `writable()` defaults to `false` (the original's `true` made every idle connection
///   spin the loop); the reactor asks for write readiness on its own while a connect is
///   in progress, and never for a listener.
/// * `handle_close` is delivered at most once, only when the peer or the OS ended the
///   connection (EOF, reset, hang-up, error, invalid fd); after it the channel is
///   closed whatever the handler did. [`Ctx::close`] does not call it.
/// * A refused or failed connect calls `handle_connect_failed`, not `handle_error`.
pub trait Dispatcher<S: Socket, M = Self>: Sized {
    /// What handlers return on failure.
    type Error: From<SocketError>;

    /// Asked once per pass: does the channel want read readiness?
    fn readable(&self) -> bool {
        true
    }

    /// Asked once per pass: does the channel want write readiness? Never asked for
    /// listeners.
    fn writable(&self) -> bool {
        false
    }

    /// A non-blocking connect finished (`SO_ERROR` was 0). The state is already
    /// [`State::Connected`], so data sent here leaves at once.
    fn handle_connect(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        self.log_info(ctx.token(), Level::Warning, "unhandled connect event");
        Ok(())
    }

    /// A non-blocking connect failed with `error` (refused, timed out, unreachable).
    /// The channel is closed afterwards.
    fn handle_connect_failed(&mut self, ctx: &mut Ctx<'_, S, M>, error: SocketError) {
        let _ = error;
        self.log_info(ctx.token(), Level::Warning, "connect failed");
    }

    /// A listener is readable. The default accepts up to [`ACCEPT_BATCH`] connections
    /// and hands each to [`handle_accepted`](Dispatcher::handle_accepted). An accept
    /// failure that passes (`EMFILE`, `ENOBUFS`, ...: see [`Ctx::accept`]) is logged
    /// and the listener stays open, its reads paused for a back-off; only an error
    /// that means the listening socket itself is unusable
    /// ([`SocketError::is_fatal_to_listener`]) goes to `handle_error`.
    fn handle_accept(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        for _ in 0..ACCEPT_BATCH {
            match ctx.accept() {
                Ok(Some(socket)) => self.handle_accepted(ctx, socket)?,
                Ok(None) => break,
                Err(e) if !e.is_fatal_to_listener() => {
                    self.log_info(
                        ctx.token(),
                        Level::Warning,
                        "accept failed, paused for a back-off",
                    );
                    break;
                }
                Err(e) => return Err(e.into()),
            }
            if !ctx.is_open() || ctx.exiting() {
                break;
            }
        }
        Ok(())
    }

    /// A connection was accepted. Usually: `ctx.add(socket, NewDispatcher)`. The
    /// default closes it.
    fn handle_accepted(
        &mut self,
        ctx: &mut Ctx<'_, S, M>,
        mut socket: S,
    ) -> Result<(), Self::Error> {
        let _ = socket.close();
        self.log_info(ctx.token(), Level::Warning, "unhandled accepted event");
        Ok(())
    }

    /// The channel is readable.
    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        self.log_info(ctx.token(), Level::Warning, "unhandled read event");
        Ok(())
    }

    /// The channel is writable.
    fn handle_write(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        self.log_info(ctx.token(), Level::Warning, "unhandled write event");
        Ok(())
    }

    /// Priority (TCP urgent) data arrived.
    ///
    /// The default logs the original's warning, then reads the urgent data and drops
    /// it. Priority readiness is
    /// level-triggered and stays set until the urgent byte is read, so a handler that
    /// leaves it there is woken again on every pass: an override must read it with
    /// [`Ctx::recv_priority`] (or turn read interest off).
    fn handle_expt(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        // TCP keeps one urgent byte; other socket types may hold a little more.
        self.log_info(
            ctx.token(),
            Level::Warning,
            "unhandled incoming priority event",
        );
        let mut sink = [0u8; 64];
        let _ = ctx.recv_priority(&mut sink)?;
        Ok(())
    }

    /// The peer finished sending (a read returned EOF). Return
    /// [`ReadClosed::KeepWriting`] to go on writing (half-close); the default closes.
    fn handle_read_closed(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<ReadClosed, Self::Error> {
        let _ = ctx;
        Ok(ReadClosed::Close)
    }

    /// The connection ended (EOF, reset, hang-up, error, invalid fd). Called at most
    /// once; the channel is closed afterwards.
    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        self.log_info(ctx.token(), Level::Warning, "unhandled close event");
        ctx.close();
        Ok(())
    }

    /// The channel's deadline passed (see [`Ctx::set_deadline`]). The deadline is
    /// cleared first; set it again to repeat. The default does nothing.
    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        let _ = ctx;
        Ok(())
    }

    /// A handler returned `Err(error)`. The default logs and closes the channel.
    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, M>, error: Self::Error) {
        let _ = error;
        self.log_info(
            ctx.token(),
            Level::Error,
            "uncaptured error, closing channel",
        );
        ctx.close();
    }

    /// Where the default handlers report. The default forwards to the crate's logger
    /// (`defmt` when enabled, nothing otherwise); override it to capture or filter.
    fn log_info(&mut self, token: Token, level: Level, message: &'static str) {
        match level {
            Level::Debug | Level::Info => info_!("{}: {}", token, message),
            Level::Warning | Level::Error => warn_!("{}: {}", token, message),
        }
    }
}

/// What a handler can reach while it runs: its own channel, the rest of the map, and
/// the loop.
pub struct Ctx<'a, S: Socket, D> {
    pub(crate) token: Token,
    pub(crate) socket: &'a mut S,
    pub(crate) state: &'a mut State,
    pub(crate) flags: &'a mut Flags,
    pub(crate) others: Split<'a, S, D>,
    pub(crate) meta: &'a mut Meta,
    pub(crate) capacity: usize,
    pub(crate) registrar: &'a mut dyn Registrar<S::Source>,
    pub(crate) sources: &'a mut [Option<S::Source>],
    pub(crate) exit: &'a mut bool,
    pub(crate) observer: Option<crate::reactor::Observer>,
    pub(crate) deadline: &'a mut u64,
    pub(crate) deadlines: &'a mut dyn crate::time::DeadlineQueue,
    pub(crate) now: Option<core::time::Duration>,
    pub(crate) backoff: &'a mut crate::time::AcceptBackoff,
}

impl<S: Socket, D> core::fmt::Debug for Ctx<'_, S, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ctx")
            .field("token", &self.token)
            .field("state", &*self.state)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Socket, D> Ctx<'a, S, D> {
    #[inline]
    pub(crate) fn notify(&self, event: crate::reactor::Event) {
        if let Some(f) = self.observer {
            f(self.token, event);
        }
    }

    /// The time of this pass on the selector's clock (`None`: no clock).
    pub fn now(&self) -> Option<core::time::Duration> {
        self.now
    }

    /// Sets this channel's deadline `after` from now (replacing any earlier one):
    /// `handle_timeout` runs once it passes. Use it for idle and connect timeouts.
    ///
    /// # Errors
    /// [`TimerError::NoClock`](crate::TimerError) when the selector has no clock.
    pub fn set_deadline(&mut self, after: core::time::Duration) -> Result<(), crate::TimerError> {
        let now = self.now.ok_or(crate::TimerError::NoClock)?;
        self.set_deadline_at(now.saturating_add(after))
    }

    /// Sets this channel's deadline to the clock time `at`; one in the past fires on
    /// the next pass.
    ///
    /// # Errors
    /// [`TimerError::NoClock`](crate::TimerError) when the selector has no clock.
    pub fn set_deadline_at(&mut self, at: core::time::Duration) -> Result<(), crate::TimerError> {
        if self.now.is_none() {
            return Err(crate::TimerError::NoClock);
        }
        let at = crate::time::to_nanos(at);
        *self.deadline = at;
        self.deadlines.push(at, self.token);
        Ok(())
    }

    /// Sets the deadline of another channel `after` from now (e.g. an idle timeout for
    /// a connection just accepted, before it has had any callback). Returns `Ok(false)`
    /// for this channel itself or a stale token.
    ///
    /// # Errors
    /// [`TimerError::NoClock`](crate::TimerError) when the selector has no clock.
    pub fn set_deadline_for(
        &mut self,
        token: Token,
        after: core::time::Duration,
    ) -> Result<bool, crate::TimerError> {
        use crate::map::Slots;
        let now = self.now.ok_or(crate::TimerError::NoClock)?;
        let Some(c) = self
            .others
            .slot(token.index())
            .and_then(|s| s.get_mut(token))
        else {
            return Ok(false);
        };
        let at = crate::time::to_nanos(now.saturating_add(after));
        c.deadline = at;
        self.deadlines.push(at, token);
        Ok(true)
    }

    /// Cancels this channel's deadline.
    pub fn cancel_deadline(&mut self) {
        *self.deadline = crate::time::NEVER;
    }

    /// This channel's deadline, if set.
    pub fn deadline(&self) -> Option<core::time::Duration> {
        (*self.deadline != crate::time::NEVER)
            .then(|| core::time::Duration::from_nanos(*self.deadline))
    }

    /// This channel's token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// This channel's state.
    pub fn state(&self) -> State {
        *self.state
    }

    /// Whether the channel is still open: not closed, not asked to close, and no
    /// disconnect or EOF seen that will close it.
    pub fn is_open(&self) -> bool {
        *self.state != State::Closed
            && !self
                .flags
                .has(Flags::CLOSE_REQUESTED | Flags::DISCONNECTED | Flags::EOF)
    }

    /// This channel's socket, for operations the context does not wrap.
    pub fn socket(&mut self) -> &mut S {
        self.socket
    }

    /// Reads into `buf`. EOF and disconnects return `Ok(Recv::Eof)` and make the
    /// reactor deliver the end of the connection after this handler returns
    /// (`handle_read_closed` for EOF, `handle_close` for a reset).
    ///
    /// # Errors
    /// OS errors other than would-block and disconnects.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        if self.flags.has(Flags::EOF | Flags::DISCONNECTED) || *self.state == State::ReadClosed {
            return Ok(Recv::Eof);
        }
        match self.socket.recv(buf) {
            Ok(Recv::Eof) => {
                self.flags.set(Flags::EOF);
                Ok(Recv::Eof)
            }
            Ok(Recv::Data(n)) => {
                if n > 0 {
                    self.flags.set(Flags::GOT_DATA);
                }
                Ok(Recv::Data(n))
            }
            Ok(r) => Ok(r),
            Err(e) if e.is_disconnect() => {
                self.flags.set(Flags::DISCONNECTED);
                Ok(Recv::Eof)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes from `buf` and returns how many bytes went out: 0 when the socket would
    /// block, or when the connection is gone (the reactor then delivers
    /// `handle_close` after this handler returns).
    ///
    /// # Errors
    /// OS errors other than would-block and disconnects.
    pub fn send(&mut self, buf: &[u8]) -> Result<usize, SocketError> {
        if self.flags.has(Flags::DISCONNECTED | Flags::CLOSE_REQUESTED) {
            return Ok(0);
        }
        match self.socket.send(buf) {
            Ok(Sent::Bytes(n)) => Ok(n),
            Ok(Sent::WouldBlock) => Ok(0),
            Err(e) if e.is_disconnect() => {
                self.flags.set(Flags::DISCONNECTED);
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Accepts one pending connection; `Ok(None)` when none is pending.
    ///
    /// A connection that failed before it could be accepted (the peer reset:
    /// `ECONNABORTED`, and the network errors `accept(2)` passes on from it) is
    /// skipped for the next one, and an interrupted accept is retried.
    ///
    /// Any other failure except the listening socket being unusable pauses this
    /// channel's read interest for a back-off (10 ms, doubling while failures go on,
    /// up to 500 ms; a successful accept resets it), so a listener that stays
    /// readable while accepts fail (`EMFILE`: no descriptor left) does not make
    /// every pass retry: connections wait in the backlog and are served once the
    /// back-off ends and descriptors are free again. While paused, `accept` returns
    /// `Ok(None)` without asking the OS. A selector without a clock cannot time a
    /// back-off: the error is returned and nothing is paused.
    ///
    /// # Errors
    /// The failure that paused the listener (resource shortages:
    /// [`SocketError::is_transient`]), or one that means the listening socket is
    /// unusable ([`SocketError::is_fatal_to_listener`]: `EBADF`, `ENOTSOCK`, ...).
    pub fn accept(&mut self) -> Result<Option<S>, SocketError> {
        if self.flags.has(Flags::READ_PAUSED) {
            return Ok(None);
        }
        for _ in 0..ACCEPT_BATCH {
            match self.socket.accept() {
                Ok(Some(s)) => {
                    self.backoff.succeed();
                    return Ok(Some(s));
                }
                Ok(None) => return Ok(None),
                Err(e) if e.lost_one_connection() || e.kind() == crate::ErrorKind::Interrupted => {
                    continue;
                }
                Err(e) if e.is_fatal_to_listener() => return Err(e),
                Err(e) => {
                    if let Some(now) = self.now {
                        self.flags.set(Flags::READ_PAUSED);
                        self.backoff.fail(crate::time::to_nanos(now));
                    }
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// Whether this channel's reads are paused by the accept back-off (see
    /// [`accept`](Self::accept)).
    pub fn read_paused(&self) -> bool {
        self.flags.has(Flags::READ_PAUSED)
    }

    /// Reads priority (TCP urgent) data. Nothing pending (a spurious priority event)
    /// is `Ok(Recv::WouldBlock)`; a disconnect is `Ok(Recv::Eof)` and makes the reactor
    /// deliver `handle_close`.
    ///
    /// # Errors
    /// Other OS errors, and `Unsupported` for sockets without priority data.
    pub fn recv_priority(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        match self.socket.recv_priority(buf) {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == crate::ErrorKind::InvalidInput => Ok(Recv::WouldBlock),
            Err(e) if e.is_disconnect() => {
                self.flags.set(Flags::DISCONNECTED);
                Ok(Recv::Eof)
            }
            Err(e) => Err(e),
        }
    }

    /// Shuts down the sending direction: the peer sees EOF, reading goes on.
    ///
    /// # Errors
    /// What the socket reports.
    pub fn shutdown_write(&mut self) -> Result<(), SocketError> {
        self.socket.shutdown_write()
    }

    /// Closes this channel once the current handler returns. No further callback runs
    /// for it; `handle_close` is not called.
    pub fn close(&mut self) {
        self.flags.set(Flags::CLOSE_REQUESTED);
    }

    /// Ends the loop after the current handler returns (the original's `ExitNow`):
    /// [`Reactor::run`](crate::Reactor::run) returns, every channel stays in the map.
    pub fn exit(&mut self) {
        *self.exit = true;
    }

    /// Whether a handler asked the loop to exit ([`Ctx::exit`]) during this pass; a
    /// handler looping on its own (e.g. accepting) should stop then.
    pub fn exiting(&self) -> bool {
        *self.exit
    }

    /// Adds a new channel (typically an accepted connection). It takes part from the
    /// next pass on.
    ///
    /// # Errors
    /// The map is full, or the selector cannot watch the socket: the socket and the
    /// dispatcher come back.
    pub fn add(&mut self, socket: S, dispatcher: D) -> Result<Token, AddError<S, D>> {
        add_channel(
            self.meta,
            &mut self.others,
            self.capacity,
            &mut *self.registrar,
            self.sources,
            self.observer,
            socket,
            dispatcher,
        )
    }

    /// Another channel of the map, by token. `None` for this channel itself, or a
    /// closed or stale token.
    pub fn channel(&mut self, token: Token) -> Option<ChannelMut<'_, S, D>> {
        use crate::map::Slots;
        let c = self.others.slot(token.index())?.get_mut(token)?;
        Some(ChannelMut {
            token,
            socket: &mut c.socket,
            state: c.state,
            dispatcher: &mut c.dispatcher,
        })
    }

    /// Every other open channel, in slot order (e.g. to broadcast).
    pub fn others(&mut self) -> impl Iterator<Item = ChannelMut<'_, S, D>> {
        let current = self.others.current;
        let before = self.others.before.iter_mut().enumerate();
        let after = self
            .others
            .after
            .iter_mut()
            .enumerate()
            .map(move |(i, s)| (i + current + 1, s));
        before.chain(after).filter_map(|(i, slot)| {
            let generation = slot.generation;
            let c = slot.channel.as_mut()?;
            if c.state == State::Closed {
                return None;
            }
            Some(ChannelMut {
                token: Token::new(i as u32, generation),
                socket: &mut c.socket,
                state: c.state,
                dispatcher: &mut c.dispatcher,
            })
        })
    }

    /// How many channels the map holds, this one included.
    pub fn channel_count(&self) -> usize {
        self.meta.len()
    }
}

/// Adds a channel: the one routine behind [`Reactor::add`](crate::Reactor::add) and
/// [`Ctx::add`]. Checks capacity, registers the source with the selector, refuses a
/// closed socket, inserts, remembers the registered source, reports `Added`; on any
/// refusal the selector is left as it was and the values come back.
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_channel<S: Socket, D>(
    meta: &mut Meta,
    slots: &mut (impl crate::map::Slots<S, D> + ?Sized),
    capacity: usize,
    registrar: &mut dyn Registrar<S::Source>,
    sources: &mut [Option<S::Source>],
    observer: Option<crate::reactor::Observer>,
    mut socket: S,
    dispatcher: D,
) -> Result<Token, AddError<S, D>> {
    if meta.len() >= capacity {
        return Err(AddError {
            kind: AddErrorKind::Full,
            socket,
            dispatcher,
        });
    }
    let source = socket.source();
    if let Err(e) = registrar.register(source) {
        return Err(AddError {
            kind: AddErrorKind::Rejected(e),
            socket,
            dispatcher,
        });
    }
    let state = socket.initial_state();
    if state == State::Closed {
        registrar.deregister(source);
        return Err(AddError {
            kind: AddErrorKind::Rejected(crate::SourceError::Invalid),
            socket,
            dispatcher,
        });
    }
    match meta.insert(slots, capacity, Channel::new(socket, state, dispatcher)) {
        Ok(token) => {
            if let Some(slot) = sources.get_mut(token.index()) {
                *slot = Some(source);
            }
            if let Some(f) = observer {
                f(token, crate::reactor::Event::Added);
            }
            Ok(token)
        }
        Err(c) => {
            registrar.deregister(source);
            Err(AddError {
                kind: AddErrorKind::Full,
                socket: c.socket,
                dispatcher: c.dispatcher,
            })
        }
    }
}
