//! What a channel asks the selector to watch.

use core::{fmt, ops};

/// The readiness a channel wants to hear about in one pass.
///
/// `READABLE` also covers priority (out-of-band) data, as in the original, where
/// `POLLPRI` and the `select` except set are tied to readability. An empty interest
/// means the channel is not handed to the selector at all in that pass.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Interest(u8);

impl Interest {
    /// Nothing: the channel is not watched this pass.
    pub const NONE: Interest = Interest(0);
    /// Readable and priority data.
    pub const READABLE: Interest = Interest(0b01);
    /// Writable.
    pub const WRITABLE: Interest = Interest(0b10);
    /// Both.
    pub const BOTH: Interest = Interest(0b11);

    /// Whether read (and priority) readiness is wanted.
    #[inline]
    pub const fn is_readable(self) -> bool {
        self.0 & Self::READABLE.0 != 0
    }

    /// Whether write readiness is wanted.
    #[inline]
    pub const fn is_writable(self) -> bool {
        self.0 & Self::WRITABLE.0 != 0
    }

    /// Whether nothing is wanted.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Adds `other`.
    #[inline]
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// Removes `other`.
    #[inline]
    #[must_use]
    pub const fn remove(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }

    /// Interest built from two flags.
    #[inline]
    pub const fn from_flags(readable: bool, writable: bool) -> Interest {
        Interest((readable as u8) | ((writable as u8) << 1))
    }

    /// The two bits behind it (readable 0b01, writable 0b10), as packed into a
    /// channel's flags.
    #[inline]
    pub(crate) const fn bits(self) -> u8 {
        self.0
    }

    /// The interest of these two bits (others are ignored).
    #[inline]
    pub(crate) const fn from_bits(bits: u8) -> Interest {
        Interest(bits & 0b11)
    }
}

impl ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.add(rhs)
    }
}

impl ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, rhs: Interest) {
        *self = self.add(rhs);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (false, false) => f.write_str("NONE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (true, true) => f.write_str("READABLE | WRITABLE"),
        }
    }
}
