//! What the reactor reports to an observer: one event before each callback, plus a
//! channel entering and leaving the map.

use crate::Token;

/// What the reactor did to a channel, as reported to an [`Observer`]: one event right
/// before each callback, plus `Added` and `Removed`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// The channel entered the map.
    Added,
    /// `handle_connect` is about to run.
    Connect,
    /// `handle_connect_failed` is about to run.
    ConnectFailed,
    /// `handle_accept` is about to run.
    Accept,
    /// `handle_read` is about to run.
    Read,
    /// `handle_write` is about to run.
    Write,
    /// `handle_expt` is about to run.
    Expt,
    /// `handle_read_closed` is about to run.
    ReadClosed,
    /// `handle_close` is about to run.
    Close,
    /// `handle_error` is about to run.
    Error,
    /// `handle_timeout` is about to run.
    Timeout,
    /// The channel left the map (closed or removed).
    Removed,
}

/// A function told of every [`Event`], for tracing and invariant checks (the
/// simulator's checker uses it). A plain `fn`: it costs one branch when unset.
pub type Observer = fn(Token, Event);

/// The observer, if any: the one place events are reported from.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct Tracer(Option<Observer>);

impl Tracer {
    pub(crate) const NONE: Tracer = Tracer(None);

    pub(crate) const fn new(observer: Option<Observer>) -> Self {
        Tracer(observer)
    }

    /// Reports `event` for `token`.
    #[inline]
    pub(crate) fn trace(self, token: Token, event: Event) {
        if let Some(f) = self.0 {
            f(token, event);
        }
    }
}
