//! The dispatch state machine: one ready channel's readiness → its callbacks.
//!
//! Per channel, in this order: invalid → `handle_close` and nothing else; a
//! listener's read → accept; a connecting channel's first readiness → the connect
//! completes or fails; then read → write → priority → close, with liveness checked
//! again before every step, so a channel closed by one callback gets no further one.
//! After each callback the flags it left (a close request, an EOF, a disconnect) are
//! acted on at once.

use super::Reactor;
use crate::fmt::{debug_, trace_};
use crate::map::{Flags, MapAccess};
use crate::pool::Lend;
use crate::trace::Callback;
use crate::{AfterEof, Ctx, Dispatcher, Io, Readiness, Socket, SocketError, State, Token};

/// The most events one source delivers in one pass.
const EVENTS_PER_PASS: usize = 64;

impl<I: Io, D, const N: usize, const T: usize, P: Lend> Reactor<I, D, N, T, P>
where
    D: Dispatcher<I::Socket>,
{
    /// The dispatch state machine for one ready channel.
    pub(super) fn dispatch(&mut self, token: Token, state: State, mut readiness: Readiness) {
        trace_!("dispatch {} {}", token, readiness.bits());

        if readiness.is_invalid() {
            self.deliver_close(token);
            return;
        }

        match state {
            State::Closed => return,
            State::Source => {
                if readiness.is_readable() {
                    self.deliver_events(token);
                }
                if readiness.intersects(Readiness::ERROR.add(Readiness::HANGUP))
                    && self.proceed(token)
                {
                    self.deliver_close(token);
                }
                return;
            }
            State::Datagram => {
                self.dispatch_datagram(token, readiness);
                return;
            }
            State::Listening => {
                if readiness.is_readable() {
                    self.call(token, Callback::Accept, |d, ctx| d.handle_accept(ctx));
                }
                if self.proceed(token)
                    && readiness.intersects(Readiness::ERROR.add(Readiness::HANGUP))
                {
                    self.deliver_close(token);
                }
                return;
            }
            State::Connecting => {
                let finishing = Readiness::READABLE
                    .add(Readiness::WRITABLE)
                    .add(Readiness::ERROR)
                    .add(Readiness::HANGUP);
                if !readiness.intersects(finishing) {
                    return;
                }
                if !self.finish_connect(token, readiness) {
                    return;
                }
                // The write interest was the reactor's, to see the connect finish: a
                // dispatcher that does not want to write gets no handle_write for it.
                if !self
                    .map
                    .channel(token)
                    .is_some_and(|c| c.dispatcher.writable())
                {
                    readiness = readiness.remove(Readiness::WRITABLE);
                }
            }
            _ => {}
        }

        if readiness.is_readable()
            && !self.registry.exit
            && let Some(c) = self.map.channel_mut(token)
            && c.is_live()
            && *c.state != State::ReadClosed
        {
            c.flags.clear(Flags::GOT_DATA);
            self.call(token, Callback::Read, |d, ctx| d.handle_read(ctx));
        }
        if readiness.is_writable() && self.proceed(token) {
            self.call(token, Callback::Write, |d, ctx| d.handle_write(ctx));
        }
        if readiness.is_priority() && self.proceed(token) {
            let pending = self.with_socket(token, |s| s.take_error());
            match pending {
                Some(Ok(None)) => self.call(token, Callback::Expt, |d, ctx| d.handle_expt(ctx)),
                Some(_) => self.deliver_close(token),
                None => {}
            }
        }
        // A hang-up with data behind it (poll reports IN|HUP once both directions are
        // shut) closes only when a read finds nothing more: data is never dropped, and
        // the EOF path closes as it does under select.
        if readiness.intersects(Readiness::ERROR.add(Readiness::HANGUP)) {
            let drained = !(readiness.is_readable()
                && self.flags(token).is_some_and(|f| f.has(Flags::GOT_DATA)));
            if (readiness.is_error() || (readiness.is_hangup() && drained)) && self.proceed(token) {
                self.deliver_close(token);
            }
        }
    }

    /// Hands the events a source holds to `handle_event`, one at a time, until it
    /// holds no more (or the channel closes, or the loop is asked to exit). At most
    /// [`EVENTS_PER_PASS`] per pass, so a source raised faster than it is served
    /// cannot hold the loop.
    fn deliver_events(&mut self, token: Token) {
        for _ in 0..EVENTS_PER_PASS {
            if !self.proceed(token) {
                return;
            }
            let Some(Some(event)) = self.with_socket(token, Socket::next_event) else {
                return;
            };
            self.call(token, Callback::Event, |d, ctx| d.handle_event(ctx, event));
        }
    }

    /// The state machine of a datagram channel: read → write → priority → hang-up. No
    /// socket error closes it (the socket is still good after one); only an invalid
    /// fd (above) or a hang-up (both directions shut down) does.
    ///
    /// A pending error (`ECONNREFUSED` after an ICMP port unreachable on a connected
    /// socket) is returned by the socket's next operation. `poll(2)` reports it as
    /// `ERROR`, `select(2)` as readable and writable; the reactor delivers `ERROR` the
    /// way select reports it, as read and write readiness within the interest the
    /// channel is watched for, so both backends give the same callbacks and the
    /// handler's own `recv_from`/`send_to` returns the error, typed. A handler that
    /// does not receive leaves it pending, as it would leave a datagram.
    #[inline(never)]
    fn dispatch_datagram(&mut self, token: Token, mut readiness: Readiness) {
        if readiness.is_error()
            && let Some(c) = self.map.channel(token)
        {
            let watched = c.flags.registered();
            if watched.is_readable() {
                readiness = readiness.add(Readiness::READABLE);
            }
            if watched.is_writable() {
                readiness = readiness.add(Readiness::WRITABLE);
            }
        }
        if readiness.is_readable() && self.proceed(token) {
            if let Some(c) = self.map.channel_mut(token) {
                c.flags.clear(Flags::GOT_DATA);
            }
            self.call(token, Callback::Read, |d, ctx| d.handle_read(ctx));
        }
        if readiness.is_writable() && self.proceed(token) {
            self.call(token, Callback::Write, |d, ctx| d.handle_write(ctx));
        }
        // No urgent data on a datagram socket: priority comes with the error queue.
        // A pending error goes to handle_error (not handle_close); without one,
        // handle_expt.
        if readiness.is_priority() && self.proceed(token) {
            match self.with_socket(token, |s| s.take_error()) {
                Some(Ok(None)) => self.call(token, Callback::Expt, |d, ctx| d.handle_expt(ctx)),
                Some(Ok(Some(e))) => self.deliver_error(token, e),
                // The socket cannot even be asked: it is not good any more.
                Some(Err(_)) => self.deliver_close(token),
                None => {}
            }
        }
        if readiness.is_hangup() && self.proceed(token) {
            let drained = !(readiness.is_readable()
                && self.flags(token).is_some_and(|f| f.has(Flags::GOT_DATA)));
            if drained {
                self.deliver_close(token);
            }
        }
    }

    /// Hands a socket error the reactor found (not one a handler returned) to
    /// `handle_error`, then acts on what it left.
    fn deliver_error(&mut self, token: Token, error: SocketError) {
        let flags = self.with_ctx(token, |d, ctx| {
            ctx.trace(Callback::Error);
            d.handle_error(ctx, error.into());
            *ctx.flags()
        });
        if flags.is_some_and(|f| f.has(Flags::PENDING)) {
            self.act_on_flags(token);
        }
    }

    /// Completes a non-blocking connect. Returns whether the channel is connected and
    /// still open.
    fn finish_connect(&mut self, token: Token, readiness: Readiness) -> bool {
        let pending = self.with_socket(token, |s| s.take_error());
        let failure = match pending {
            Some(Ok(None)) => {
                if readiness.intersects(Readiness::ERROR.add(Readiness::HANGUP))
                    && !readiness.intersects(Readiness::READABLE.add(Readiness::WRITABLE))
                {
                    // Hung up without a pending error and without being usable.
                    Some(SocketError::new(
                        crate::ErrorKind::NotConnected,
                        crate::errno::ENOTCONN,
                    ))
                } else {
                    None
                }
            }
            Some(Ok(Some(e))) | Some(Err(e)) => Some(e),
            None => return false,
        };
        if let Some(error) = failure {
            debug_!("{}: connect failed", token);
            self.with_ctx(token, |d, ctx| {
                ctx.trace(Callback::ConnectFailed);
                d.handle_connect_failed(ctx, error);
            });
            self.finish_close(token);
            return false;
        }
        if let Some(c) = self.map.channel_mut(token) {
            *c.state = State::Connected;
        }
        self.call(token, Callback::Connect, |d, ctx| d.handle_connect(ctx));
        self.live(token)
    }

    fn flags(&self, token: Token) -> Option<Flags> {
        self.map.channel(token).map(|c| c.flags)
    }

    /// Whether the channel is there and no close is pending.
    fn live(&self, token: Token) -> bool {
        self.map.channel(token).is_some_and(|c| c.is_live())
    }

    /// Whether the next dispatch step of `token` may run: the channel is live and no
    /// handler asked the loop to exit (like the original's `ExitNow`, an exit ends the
    /// dispatch at once, not after the channel's remaining steps).
    fn proceed(&self, token: Token) -> bool {
        !self.registry.exit && self.live(token)
    }

    fn with_socket<R>(&mut self, token: Token, f: impl FnOnce(&mut I::Socket) -> R) -> Option<R> {
        self.map.channel_mut(token).map(|c| f(c.socket))
    }

    /// Runs `f` with the dispatcher and a context for `token`.
    #[inline(always)]
    fn with_ctx<R>(
        &mut self,
        token: Token,
        f: impl FnOnce(&mut D, &mut Ctx<'_, I::Socket, D>) -> R,
    ) -> Option<R> {
        let (channel, others) = self.map.split(token)?;
        let (dispatcher, own) = channel.split();
        let mut ctx = Ctx::new(token, own, others, &mut self.registry, Self::RULE);
        Some(f(dispatcher, &mut ctx))
    }

    /// Calls one handler, routes its error, and acts on what it left behind: a close
    /// request, an EOF, a disconnect.
    #[inline(always)]
    pub(super) fn call(
        &mut self,
        token: Token,
        callback: Callback,
        f: impl FnOnce(&mut D, &mut Ctx<'_, I::Socket, D>) -> Result<(), D::Error>,
    ) {
        let after = self.with_ctx(token, |d, ctx| {
            ctx.trace(callback);
            let before = ctx.socket().source();
            if let Err(e) = f(d, ctx) {
                Self::route_error(d, ctx, e);
            }
            // A handler that closed its socket itself (rather than `ctx.close()`)
            // took its source away from under the selector.
            let gone = (ctx.socket().source() != before).then_some(before);
            (*ctx.flags(), gone)
        });
        let Some((flags, gone)) = after else {
            return;
        };
        if let Some(source) = gone {
            self.source_gone(token, source);
        }
        // Nothing left to act on (the common case): no second lookup.
        if flags.has(Flags::PENDING) {
            self.act_on_flags(token);
        }
    }

    /// The channel's socket no longer has the source it was registered with: it
    /// leaves the selector now, and the next pass reports it `INVALID`.
    #[cold]
    fn source_gone(&mut self, token: Token, source: <I::Socket as Socket>::Source) {
        if let Some(c) = self.map.channel_mut(token)
            && *c.state != State::Closed
        {
            self.registry.unwatch(token, c.flags, source);
            self.map.touch(token);
        }
    }

    /// Hands a handler's error to `handle_error`, unless the channel is closing
    /// already (no callback after a close).
    #[inline]
    fn route_error(d: &mut D, ctx: &mut Ctx<'_, I::Socket, D>, e: D::Error) {
        if !ctx.flags().has(Flags::CLOSE_REQUESTED) {
            ctx.trace(Callback::Error);
            d.handle_error(ctx, e);
        }
    }

    /// Acts on the flags a handler left: close request first, then disconnect, then EOF.
    fn act_on_flags(&mut self, token: Token) {
        let Some(flags) = self.flags(token) else {
            return;
        };
        if flags.has(Flags::CLOSE_REQUESTED) {
            self.finish_close(token);
        } else if flags.has(Flags::DISCONNECTED) {
            self.deliver_close(token);
        } else if flags.has(Flags::EOF) {
            let decision = self.with_ctx(token, |d, ctx| {
                ctx.set_state(State::ReadClosed);
                ctx.flags().clear(Flags::EOF);
                ctx.trace(Callback::Eof);
                d.handle_eof(ctx).unwrap_or_else(|e| {
                    Self::route_error(d, ctx, e);
                    AfterEof::KeepWriting
                })
            });
            match decision {
                Some(AfterEof::Close) => self.deliver_close(token),
                // The hook (or handle_error) may have closed or broken it meanwhile.
                Some(AfterEof::KeepWriting)
                    if self
                        .flags(token)
                        .is_some_and(|f| f.has(Flags::CLOSE_REQUESTED | Flags::DISCONNECTED)) =>
                {
                    self.act_on_flags(token);
                }
                Some(AfterEof::KeepWriting) => {}
                None => {}
            }
        }
    }

    /// Delivers `handle_close` (at most once per channel), then closes the channel.
    fn deliver_close(&mut self, token: Token) {
        let delivered = self.with_ctx(token, |d, ctx| {
            if ctx
                .flags()
                .has(Flags::CLOSE_DELIVERED | Flags::CLOSE_REQUESTED)
            {
                return;
            }
            ctx.flags().set(Flags::CLOSE_DELIVERED);
            ctx.trace(Callback::Close);
            if let Err(e) = d.handle_close(ctx) {
                Self::route_error(d, ctx, e);
            }
        });
        if delivered.is_some() {
            self.finish_close(token);
        }
    }

    /// Closes the socket and frees the slot (quarantined until the pass ends).
    fn finish_close(&mut self, token: Token) {
        self.registry.close(&mut self.map, token);
    }
}
