//! The `Dispatcher` trait: the asyncore callbacks, and the context handlers receive.

use crate::ctx::{ACCEPT_BATCH, Ctx};
use crate::fmt::{info_, warn_};
use crate::{Socket, SocketError, Token};

/// The severity of a [`Dispatcher::log_info`] line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LogLevel {
    /// Detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unhandled or unexpected that the loop survives.
    Warning,
    /// A handler error.
    Error,
}

/// When the reactor asks a channel's [`readable`](Dispatcher::readable) and
/// [`writable`](Dispatcher::writable) (see [`Dispatcher::interest_mode`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InterestMode {
    /// Every pass, as the original does: the answers may depend on anything (the
    /// time, other channels, globals). A pass then costs O(channels) in user space.
    #[default]
    EveryPass,
    /// Only when they may have changed: after a callback on the channel, or after
    /// anything borrowed its dispatcher mutably ([`Ctx::channel`], [`Ctx::others`],
    /// [`Reactor::get_mut`](crate::Reactor::get_mut),
    /// [`Reactor::iter_mut`](crate::Reactor::iter_mut)). Right for a dispatcher
    /// whose answers depend only on its own fields (no `Cell`, no clock, no
    /// globals): the reactor sees every change, and a pass with `epoll` costs
    /// O(ready) instead of O(channels).
    OnChange,
}

/// What [`Dispatcher::handle_eof`] decides once the peer finished sending.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AfterEof {
    /// Close the channel: `handle_close` runs, then the channel is removed. This is
    /// the original's behaviour and the default.
    Close,
    /// Keep the channel open for writing (half-close): it moves to
    /// [`State::ReadClosed`](crate::State::ReadClosed), read interest stops, and writes go on until the
    /// dispatcher closes it or the connection breaks.
    KeepWriting,
}

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

    /// Does the channel want read readiness? Asked once per pass, or only when it
    /// may have changed (see [`interest_mode`](Self::interest_mode)).
    fn readable(&self) -> bool {
        true
    }

    /// Does the channel want write readiness? Asked like
    /// [`readable`](Self::readable); never for listeners.
    fn writable(&self) -> bool {
        false
    }

    /// When [`readable`](Self::readable) and [`writable`](Self::writable) are asked:
    /// every pass (the default, the original's contract), or only when they may have
    /// changed ([`InterestMode::OnChange`], for answers that depend on the
    /// dispatcher's own fields alone). Asked once, when the channel is added.
    fn interest_mode(&self) -> InterestMode {
        InterestMode::EveryPass
    }

    /// A non-blocking connect finished (`SO_ERROR` was 0). The state is already
    /// [`State::Connected`](crate::State::Connected), so data sent here leaves at once.
    fn handle_connect(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        self.log_info(ctx.token(), LogLevel::Warning, "unhandled connect event");
        Ok(())
    }

    /// A non-blocking connect failed with `error` (refused, timed out, unreachable).
    /// The channel is closed afterwards.
    fn handle_connect_failed(&mut self, ctx: &mut Ctx<'_, S, M>, error: SocketError) {
        let _ = error;
        self.log_info(ctx.token(), LogLevel::Warning, "connect failed");
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
                        LogLevel::Warning,
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
        self.log_info(ctx.token(), LogLevel::Warning, "unhandled accepted event");
        Ok(())
    }

    /// The channel is readable.
    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        self.log_info(ctx.token(), LogLevel::Warning, "unhandled read event");
        Ok(())
    }

    /// The channel is writable.
    fn handle_write(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        self.log_info(ctx.token(), LogLevel::Warning, "unhandled write event");
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
            LogLevel::Warning,
            "unhandled incoming priority event",
        );
        let mut sink = [0u8; 64];
        let _ = ctx.recv_priority(&mut sink)?;
        Ok(())
    }

    /// The peer finished sending (a read returned EOF). Return
    /// [`AfterEof::KeepWriting`] to go on writing (half-close); the default closes.
    fn handle_eof(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<AfterEof, Self::Error> {
        let _ = ctx;
        Ok(AfterEof::Close)
    }

    /// The connection ended (EOF, reset, hang-up, error, invalid fd). Called at most
    /// once; the channel is closed afterwards.
    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Self::Error> {
        self.log_info(ctx.token(), LogLevel::Warning, "unhandled close event");
        ctx.close();
        Ok(())
    }

    /// An event source (a channel in [`State::Source`](crate::State::Source): a
    /// waker, signals, child exits) holds `event`. The default logs it as unhandled.
    fn handle_event(
        &mut self,
        ctx: &mut Ctx<'_, S, M>,
        event: crate::SourceEvent,
    ) -> Result<(), Self::Error> {
        let _ = event;
        self.log_info(ctx.token(), LogLevel::Warning, "unhandled source event");
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
            LogLevel::Error,
            "uncaptured error, closing channel",
        );
        ctx.close();
    }

    /// Where the default handlers report. The default forwards to the crate's logger
    /// (`defmt` or `log`, whichever feature is on; nothing without either); override
    /// it to capture or filter.
    fn log_info(&mut self, token: Token, level: LogLevel, message: &'static str) {
        match level {
            LogLevel::Debug | LogLevel::Info => info_!("{}: {}", token, message),
            LogLevel::Warning | LogLevel::Error => warn_!("{}: {}", token, message),
        }
    }
}
