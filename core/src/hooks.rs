//! What the ready-made servers tell a program: connections accepted and refused.

use crate::{AddErrorKind, SourceError, Token};

/// Why a listener closed a connection at once instead of serving it (see
/// [`ListenerHooks::refused`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refusal {
    /// The server is full: it serves its `max_conns` connections, or the map has no
    /// free slot.
    Full,
    /// The selector cannot watch the connection's source, e.g.
    /// [`SourceError::OutOfRange`] for an fd at or above `FD_SETSIZE` under
    /// `select(2)`: the server has room, the selector has not.
    Rejected(SourceError),
}

impl From<AddErrorKind> for Refusal {
    fn from(kind: AddErrorKind) -> Self {
        match kind {
            AddErrorKind::Full => Refusal::Full,
            AddErrorKind::Rejected(e) => Refusal::Rejected(e),
        }
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::Full => f.write_str("server full"),
            Refusal::Rejected(e) => write!(f, "the selector cannot watch it: {e}"),
        }
    }
}

/// What the ready-made servers' listeners ([`echo`](crate::echo),
/// [`chat::server`](crate::chat::server)) tell a program about connections, so it can
/// log them without the core knowing how.
pub struct ListenerHooks<S> {
    /// A connection was accepted and added under this token.
    pub accepted: fn(Token, &S),
    /// A connection was accepted and closed at once, for this reason.
    pub refused: fn(&S, Refusal),
}

impl<S> Clone for ListenerHooks<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for ListenerHooks<S> {}

impl<S> core::fmt::Debug for ListenerHooks<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ListenerHooks")
    }
}

impl<S> Default for ListenerHooks<S> {
    fn default() -> Self {
        ListenerHooks {
            accepted: |_, _| {},
            refused: |_, _| {},
        }
    }
}
