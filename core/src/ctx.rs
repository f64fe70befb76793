//! `Ctx`: what a handler reaches while it runs.

use core::time::Duration;

use crate::map::{ChannelMut, Fields, Flags, MapAccess, Others, is_live};
use crate::pool::{Lease, Lend};
use crate::registry::{Registrar, Registry, Rule};
use crate::time::{NEVER, TimerError, to_nanos};
use crate::trace::{Callback, Tracer};
use crate::{AddError, ErrorKind, Recv, Selector, Sent, Socket, SocketError, State, Token};

/// How many connections the default
/// [`Dispatcher::handle_accept`](crate::Dispatcher::handle_accept) takes per
/// readiness event before returning to the loop, and how many failed ones
/// [`Ctx::accept`] skips at most in one call.
pub const ACCEPT_BATCH: usize = 16;

/// What a handler can reach while it runs: its own channel, the rest of the map, and
/// the loop.
pub struct Ctx<'a, S: Socket, D> {
    token: Token,
    own: Fields<'a, S>,
    others: Others<'a, S, D>,
    registry: &'a mut dyn Registrar<S, D>,
    /// What the registry asks of a dispatcher it adds.
    rule: Rule<S, D>,
    tracer: Tracer,
    /// The time of the pass, as stored times are (a `Duration` only when asked for:
    /// making one divides a `u64`, which is a library call on 32-bit targets).
    now: Option<u64>,
}

impl<S: Socket, D> core::fmt::Debug for Ctx<'_, S, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ctx")
            .field("token", &self.token)
            .field("state", &*self.own.state)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Socket, D> Ctx<'a, S, D> {
    /// The context of the channel of `token` (its fields `own`, the map around it
    /// `others`) for one callback: the only place a context is built.
    #[inline]
    pub(crate) fn new<Sel, const N: usize, P>(
        token: Token,
        own: Fields<'a, S>,
        others: Others<'a, S, D>,
        registry: &'a mut Registry<Sel, N, P>,
        rule: Rule<S, D>,
    ) -> Self
    where
        Sel: Selector<Source = S::Source>,
        P: Lend,
    {
        Ctx {
            token,
            own,
            others,
            rule,
            tracer: registry.tracer,
            now: registry.now,
            registry,
        }
    }

    /// Reports to the observer that `callback` is about to run for this channel.
    #[inline]
    pub(crate) fn trace(&self, callback: Callback) {
        self.tracer.call(self.token, callback);
    }

    /// The flags the reactor acts on once the handler returns.
    #[inline]
    pub(crate) fn flags(&mut self) -> &mut Flags {
        self.own.flags
    }

    /// Moves the channel to `state`.
    #[inline]
    pub(crate) fn set_state(&mut self, state: State) {
        *self.own.state = state;
    }

    /// The time of this pass on the selector's clock (`None`: no clock).
    pub fn now(&self) -> Option<core::time::Duration> {
        self.now.map(Duration::from_nanos)
    }

    /// Sets this channel's timeout: its deadline becomes `after` from now (replacing
    /// any earlier one), and `handle_timeout` runs once it passes. Use it for idle and
    /// connect timeouts.
    ///
    /// # Errors
    /// [`TimerError::NoClock`] when the selector has no clock.
    pub fn set_timeout(&mut self, after: Duration) -> Result<(), TimerError> {
        let now = self.now.ok_or(TimerError::NoClock)?;
        let at = now.saturating_add(to_nanos(after)).min(NEVER - 1);
        self.registry.set_deadline(self.token, Some(at));
        Ok(())
    }

    /// Sets this channel's deadline to the clock time `at` (see [`now`](Self::now));
    /// one in the past fires on the next pass.
    ///
    /// # Errors
    /// [`TimerError::NoClock`] when the selector has no clock.
    pub fn set_deadline(&mut self, at: Duration) -> Result<(), TimerError> {
        if self.now.is_none() {
            return Err(TimerError::NoClock);
        }
        self.registry.set_deadline(self.token, Some(to_nanos(at)));
        Ok(())
    }

    /// Sets the timeout of another channel: its deadline becomes `after` from now
    /// (e.g. an idle timeout for a connection just accepted, before it has had any
    /// callback). Returns `Ok(false)` for this channel itself or a stale token.
    ///
    /// # Errors
    /// [`TimerError::NoClock`] when the selector has no clock.
    pub fn set_timeout_for(&mut self, token: Token, after: Duration) -> Result<bool, TimerError> {
        let now = self.now.ok_or(TimerError::NoClock)?;
        if self.others.channel_mut(token).is_none() {
            return Ok(false);
        }
        let at = now.saturating_add(to_nanos(after)).min(NEVER - 1);
        self.registry.set_deadline(token, Some(at));
        Ok(true)
    }

    /// Cancels this channel's deadline.
    pub fn cancel_deadline(&mut self) {
        self.registry.set_deadline(self.token, None);
    }

    /// This channel's deadline, if set.
    pub fn deadline(&self) -> Option<Duration> {
        self.registry.deadline(self.token).map(Duration::from_nanos)
    }

    /// This channel's token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// This channel's state.
    pub fn state(&self) -> State {
        *self.own.state
    }

    /// Whether the channel is still open: not closed, not asked to close, and no
    /// disconnect or EOF seen that will close it.
    pub fn is_open(&self) -> bool {
        is_live(*self.own.state, *self.own.flags)
    }

    /// This channel's socket, for operations the context does not wrap.
    pub fn socket(&mut self) -> &mut S {
        self.own.socket
    }

    /// Reads into `buf`. EOF and disconnects return `Ok(Recv::Eof)` and make the
    /// reactor deliver the end of the connection after this handler returns
    /// (`handle_eof` for EOF, `handle_close` for a reset). On a datagram channel it
    /// reads one datagram, and no error is a disconnect (see
    /// [`recv_from`](Self::recv_from)).
    ///
    /// # Errors
    /// OS errors other than would-block and disconnects; on a datagram channel every
    /// error.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        recv_on(&mut self.own, buf)
    }

    /// Writes from `buf` and returns how many bytes went out: 0 when the socket would
    /// block, or when the connection is gone (the reactor then delivers
    /// `handle_close` after this handler returns). On a (connected) datagram channel
    /// it sends `buf` as one datagram, and no error is a disconnect.
    ///
    /// # Errors
    /// OS errors other than would-block and disconnects; on a datagram channel every
    /// error.
    pub fn send(&mut self, buf: &[u8]) -> Result<usize, SocketError> {
        send_on(&mut self.own, buf)
    }

    /// Borrows a buffer from the reactor's pool (see
    /// [`BufferPool`](crate::BufferPool)): it is this channel's until
    /// [`give_back`](Self::give_back), or until the channel closes. `None` when every
    /// buffer is lent, or the reactor has no pool: work through a buffer of your own
    /// then.
    #[inline]
    pub fn lease(&mut self) -> Option<Lease> {
        self.registry.lease(self.token)
    }

    /// The size of the pool's buffers (0 without a pool).
    pub fn lease_size(&self) -> usize {
        self.registry.lease_size()
    }

    /// The bytes of `lease`, to fill or read between I/O calls; `None` if this
    /// channel does not hold it.
    pub fn leased(&mut self, lease: &Lease) -> Option<&mut [u8]> {
        self.registry.leased(lease, self.token)
    }

    /// This channel's socket and the bytes of `lease` at once, for I/O straight
    /// into or out of a lent buffer (the datagram operations use it); `None` if
    /// this channel does not hold `lease`.
    #[inline]
    pub(crate) fn socket_and_leased(&mut self, lease: &Lease) -> Option<(&mut S, &mut [u8])> {
        let bytes = self.registry.leased(lease, self.token)?;
        Some((&mut *self.own.socket, bytes))
    }

    /// [`recv`](Self::recv) into `lease`'s bytes from `at` on.
    ///
    /// # Errors
    /// As [`recv`](Self::recv); `InvalidInput` if this channel does not hold `lease`
    /// or `at` is past its end.
    #[inline]
    pub fn recv_leased(&mut self, lease: &Lease, at: usize) -> Result<Recv, SocketError> {
        let buf = self
            .registry
            .leased(lease, self.token)
            .and_then(|b| b.get_mut(at..))
            .ok_or(SocketError::new(ErrorKind::InvalidInput, 0))?;
        recv_on(&mut self.own, buf)
    }

    /// [`send`](Self::send) from `lease`'s bytes `range`.
    ///
    /// # Errors
    /// As [`send`](Self::send); `InvalidInput` if this channel does not hold `lease`
    /// or `range` is out of its bounds.
    #[inline]
    pub fn send_leased(
        &mut self,
        lease: &Lease,
        range: core::ops::Range<usize>,
    ) -> Result<usize, SocketError> {
        let buf = self
            .registry
            .leased(lease, self.token)
            .and_then(|b| b.get(range))
            .ok_or(SocketError::new(ErrorKind::InvalidInput, 0))?;
        send_on(&mut self.own, buf)
    }

    /// Gives `lease` back to the pool.
    #[inline]
    pub fn give_back(&mut self, lease: Lease) {
        self.registry.give_back(lease, self.token);
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
        if self.own.flags.has(Flags::READ_PAUSED) {
            return Ok(None);
        }
        for _ in 0..ACCEPT_BATCH {
            match self.own.socket.accept() {
                Ok(Some(s)) => {
                    self.registry.backoff().succeed();
                    return Ok(Some(s));
                }
                Ok(None) => return Ok(None),
                Err(e) if e.lost_one_connection() || e.kind() == crate::ErrorKind::Interrupted => {
                    continue;
                }
                Err(e) if e.is_fatal_to_listener() => return Err(e),
                Err(e) => {
                    if let Some(now) = self.now {
                        self.own.flags.set(Flags::READ_PAUSED);
                        self.registry.backoff().fail(now);
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
        self.own.flags.has(Flags::READ_PAUSED)
    }

    /// Reads priority (TCP urgent) data. Nothing pending (a spurious priority event)
    /// is `Ok(Recv::WouldBlock)`; a disconnect is `Ok(Recv::Eof)` and makes the reactor
    /// deliver `handle_close`.
    ///
    /// # Errors
    /// Other OS errors, and `Unsupported` for sockets without priority data.
    pub fn recv_priority(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        match self.own.socket.recv_priority(buf) {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == crate::ErrorKind::InvalidInput => Ok(Recv::WouldBlock),
            Err(e) if e.is_disconnect() => {
                self.own.flags.set(Flags::DISCONNECTED);
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
        self.own.socket.shutdown_write()
    }

    /// Closes this channel once the current handler returns. No further callback runs
    /// for it; `handle_close` is not called.
    pub fn close(&mut self) {
        self.own.flags.set(Flags::CLOSE_REQUESTED);
    }

    /// Ends the loop after the current handler returns (the original's `ExitNow`):
    /// [`Reactor::run`](crate::Reactor::run) returns, every channel stays in the map.
    pub fn exit(&mut self) {
        self.registry.exit();
    }

    /// Whether a handler asked the loop to exit ([`Ctx::exit`]) during this pass; a
    /// handler looping on its own (e.g. accepting) should stop then.
    pub fn exiting(&self) -> bool {
        self.registry.exiting()
    }

    /// Adds a new channel (typically an accepted connection). It takes part from the
    /// next pass on.
    ///
    /// # Errors
    /// The map is full, or the selector cannot watch the socket: the socket and the
    /// dispatcher come back.
    pub fn add(&mut self, socket: S, dispatcher: D) -> Result<Token, AddError<S, D>> {
        self.registry
            .add(&mut self.others, socket, dispatcher, self.rule)
    }

    /// Closes another channel now, with the guarantees of [`close`](Self::close):
    /// its socket is closed and no further callback runs for it (not even
    /// `handle_close`). Its dispatcher is dropped, or kept if it asked for that (see
    /// [`keep_when_closed`](Self::keep_when_closed)). Returns `false` for this
    /// channel itself (use [`close`](Self::close)) or a stale token.
    pub fn close_channel(&mut self, token: Token) -> bool {
        self.registry.close(&mut self.others, token)
    }

    /// Asks the reactor to keep this channel's dispatcher when the channel closes,
    /// however it closes, until [`Reactor::take_closed`](crate::Reactor::take_closed)
    /// hands it back: a one-connection client reads its outcome from it. The closed
    /// channel keeps its slot (it is no longer counted, watched or dispatched), so
    /// take every dispatcher kept this way.
    pub fn keep_when_closed(&mut self) {
        self.own.flags.set(Flags::KEEP);
    }

    /// Another channel of the map, by token. `None` for this channel itself, or a
    /// closed or stale token.
    pub fn channel(&mut self, token: Token) -> Option<ChannelMut<'_, S, D>> {
        let c = self.others.channel_for_handler(token)?;
        Some(ChannelMut::from_channel(token, c))
    }

    /// Every other open channel, in slot order (e.g. to broadcast).
    pub fn others(&mut self) -> impl Iterator<Item = ChannelMut<'_, S, D>> {
        self.others.iter_mut()
    }

    /// How many channels the map holds, this one included.
    pub fn channel_count(&self) -> usize {
        self.others.len()
    }
}

/// Reads on the channel of `own`: would-block is an outcome, EOF and disconnects are
/// remembered for the reactor (see [`Ctx::recv`]).
#[inline]
fn recv_on<S: Socket>(own: &mut Fields<'_, S>, buf: &mut [u8]) -> Result<Recv, SocketError> {
    if own.flags.has(Flags::EOF | Flags::DISCONNECTED) || *own.state == State::ReadClosed {
        return Ok(Recv::Eof);
    }
    match own.socket.recv(buf) {
        Ok(Recv::Eof) => {
            own.flags.set(Flags::EOF);
            Ok(Recv::Eof)
        }
        Ok(Recv::Data(n)) => {
            if n > 0 {
                own.flags.set(Flags::GOT_DATA);
            }
            Ok(Recv::Data(n))
        }
        Ok(r) => Ok(r),
        Err(e) if e.is_disconnect() && *own.state != State::Datagram => {
            own.flags.set(Flags::DISCONNECTED);
            Ok(Recv::Eof)
        }
        Err(e) => Err(e),
    }
}

/// Writes on the channel of `own` (see [`Ctx::send`]).
#[inline]
fn send_on<S: Socket>(own: &mut Fields<'_, S>, buf: &[u8]) -> Result<usize, SocketError> {
    if own.flags.has(Flags::DISCONNECTED | Flags::CLOSE_REQUESTED) {
        return Ok(0);
    }
    match own.socket.send(buf) {
        Ok(Sent::Bytes(n)) => Ok(n),
        Ok(Sent::WouldBlock) => Ok(0),
        Err(e) if e.is_disconnect() && *own.state != State::Datagram => {
            own.flags.set(Flags::DISCONNECTED);
            Ok(0)
        }
        Err(e) => Err(e),
    }
}
