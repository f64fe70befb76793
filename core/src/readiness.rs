//! What the selector reports for one source.

use core::{fmt, ops};

/// Readiness of one source after a wait, normalised from `select(2)` sets or `poll(2)`
/// flags. See [`Selector`](crate::Selector) for what each bit means and which
/// `handle_*` callback it leads to.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Readiness(u8);

impl Readiness {
    /// Nothing ready.
    pub const EMPTY: Readiness = Readiness(0);
    /// Data (or a pending connection, or EOF) can be read: `POLLIN`, select's read set.
    pub const READABLE: Readiness = Readiness(1 << 0);
    /// A write would not block: `POLLOUT`, select's write set.
    pub const WRITABLE: Readiness = Readiness(1 << 1);
    /// Priority (TCP urgent) data: `POLLPRI`, select's except set.
    pub const PRIORITY: Readiness = Readiness(1 << 2);
    /// An error condition: `POLLERR`. Never reported by select.
    pub const ERROR: Readiness = Readiness(1 << 3);
    /// Hang-up, `POLLHUP`: both directions shut, or never connected (see
    /// [`Selector`](crate::Selector)). Never reported by select.
    pub const HANGUP: Readiness = Readiness(1 << 4);
    /// The source is not an open descriptor: `POLLNVAL`, or an fd the select backend
    /// found bad after `EBADF`.
    pub const INVALID: Readiness = Readiness(1 << 5);

    const NAMES: [(Readiness, &'static str); 6] = [
        (Self::READABLE, "READABLE"),
        (Self::WRITABLE, "WRITABLE"),
        (Self::PRIORITY, "PRIORITY"),
        (Self::ERROR, "ERROR"),
        (Self::HANGUP, "HANGUP"),
        (Self::INVALID, "INVALID"),
    ];

    /// Whether all bits of `other` are set.
    #[inline]
    pub const fn contains(self, other: Readiness) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    #[inline]
    pub const fn intersects(self, other: Readiness) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no bit is set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Readable bit.
    #[inline]
    pub const fn is_readable(self) -> bool {
        self.intersects(Self::READABLE)
    }

    /// Writable bit.
    #[inline]
    pub const fn is_writable(self) -> bool {
        self.intersects(Self::WRITABLE)
    }

    /// Priority bit.
    #[inline]
    pub const fn is_priority(self) -> bool {
        self.intersects(Self::PRIORITY)
    }

    /// Error bit.
    #[inline]
    pub const fn is_error(self) -> bool {
        self.intersects(Self::ERROR)
    }

    /// Hang-up bit.
    #[inline]
    pub const fn is_hangup(self) -> bool {
        self.intersects(Self::HANGUP)
    }

    /// Invalid bit.
    #[inline]
    pub const fn is_invalid(self) -> bool {
        self.intersects(Self::INVALID)
    }

    /// Union.
    #[inline]
    #[must_use]
    pub const fn add(self, other: Readiness) -> Readiness {
        Readiness(self.0 | other.0)
    }

    /// Difference.
    #[inline]
    #[must_use]
    pub const fn remove(self, other: Readiness) -> Readiness {
        Readiness(self.0 & !other.0)
    }

    /// The raw bits (stable: the constants above).
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Builds readiness from raw bits; unknown bits are dropped.
    #[inline]
    pub const fn from_bits_truncate(bits: u8) -> Readiness {
        Readiness(bits & 0b11_1111)
    }

    /// Keeps only what a selector may report for `interest`: readable and priority
    /// need read interest, writable needs write interest; error, hang-up and invalid
    /// are always reported.
    #[inline]
    #[must_use]
    pub const fn masked_by(self, interest: crate::Interest) -> Readiness {
        let mut keep = Self::ERROR.0 | Self::HANGUP.0 | Self::INVALID.0;
        if interest.is_readable() {
            keep |= Self::READABLE.0 | Self::PRIORITY.0;
        }
        if interest.is_writable() {
            keep |= Self::WRITABLE.0;
        }
        Readiness(self.0 & keep)
    }
}

impl ops::BitOr for Readiness {
    type Output = Readiness;
    fn bitor(self, rhs: Readiness) -> Readiness {
        self.add(rhs)
    }
}

impl ops::BitOrAssign for Readiness {
    fn bitor_assign(&mut self, rhs: Readiness) {
        *self = self.add(rhs);
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("EMPTY");
        }
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.contains(bit) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}
