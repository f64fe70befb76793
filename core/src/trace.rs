//! The callbacks by name, and what the reactor reports to an observer: each callback
//! about to run, and a channel entering or leaving the map.

use crate::Token;

/// A [`Dispatcher`](crate::Dispatcher) method, by name: what an [`Observer`] hears is
/// about to run, and what test recorders (the mock's included) log.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Callback {
    /// `readable()` (asked each pass; never traced).
    Readable,
    /// `writable()` (asked each pass; never traced).
    Writable,
    /// `handle_connect`.
    Connect,
    /// `handle_connect_failed`.
    ConnectFailed,
    /// `handle_accept`.
    Accept,
    /// `handle_accepted` (called by `handle_accept`, not by the reactor: never traced).
    Accepted,
    /// `handle_read`.
    Read,
    /// `handle_write`.
    Write,
    /// `handle_expt`.
    Expt,
    /// `handle_eof`.
    Eof,
    /// `handle_close`.
    Close,
    /// `handle_timeout`.
    Timeout,
    /// `handle_event`.
    Event,
    /// `handle_error`.
    Error,
}

/// What the reactor did to a channel, as reported to an [`Observer`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Trace {
    /// The channel entered the map.
    Added,
    /// This callback is about to run for the channel.
    Call(Callback),
    /// The channel left the map (closed or removed).
    Removed,
    /// An [`InterestMode::OnChange`](crate::InterestMode::OnChange) channel's
    /// `readable()`/`writable()` changed although nothing borrowed it mutably: it
    /// depends on something besides its own fields and should ask every pass. Only
    /// reported with [`Reactor::set_interest_audit`](crate::Reactor::set_interest_audit).
    StaleInterest,
}

/// A function told of every [`Trace`], for tracing and invariant checks (the
/// simulator's checker uses it). A plain `fn`: it costs one branch when unset.
pub type Observer = fn(Token, Trace);

/// The observer, if any: the one place traces are reported from.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct Tracer(Option<Observer>);

impl Tracer {
    pub(crate) const NONE: Tracer = Tracer(None);

    pub(crate) const fn new(observer: Option<Observer>) -> Self {
        Tracer(observer)
    }

    /// Reports `trace` for `token`.
    #[inline]
    pub(crate) fn trace(self, token: Token, trace: Trace) {
        if let Some(f) = self.0 {
            f(token, trace);
        }
    }

    /// Reports that `callback` is about to run for `token`.
    #[inline]
    pub(crate) fn call(self, token: Token, callback: Callback) {
        self.trace(token, Trace::Call(callback));
    }
}
