//! Channel tokens: a slot index and a generation packed in one integer.

use core::fmt;

/// Identifies one channel of a [`Reactor`](crate::Reactor) for the whole of its life.
///
/// A token packs the channel's slot index (low 32 bits) and the slot's generation (high
/// 32 bits) into one `u64`. Every time a slot is freed its generation is bumped, so a
/// token kept after its channel closed never resolves to the channel that later reuses
/// the slot: lookups compare both halves. A slot whose generation would wrap around is
/// retired instead of reused, so the guarantee is absolute, not probabilistic.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Token(u64);

const INDEX_BITS: u32 = 32;
const _: () = assert!(INDEX_BITS + u32::BITS == u64::BITS);

impl Token {
    /// Builds a token from a slot index and a generation.
    #[inline]
    pub const fn new(index: u32, generation: u32) -> Self {
        Token(((generation as u64) << INDEX_BITS) | index as u64)
    }

    /// The slot index, which is also the channel's position in dispatch order.
    #[inline]
    pub const fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    /// The slot generation this token was issued for.
    #[inline]
    pub const fn generation(self) -> u32 {
        (self.0 >> INDEX_BITS) as u32
    }

    /// The packed representation.
    #[inline]
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// Rebuilds a token from [`Token::to_bits`].
    #[inline]
    pub const fn from_bits(bits: u64) -> Self {
        Token(bits)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}#{})", self.index(), self.generation())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.index(), self.generation())
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn packs_and_unpacks() {
        let t = Token::new(7, 0xdead_beef);
        assert_eq!(t.index(), 7);
        assert_eq!(t.generation(), 0xdead_beef);
        assert_eq!(Token::from_bits(t.to_bits()), t);
        assert_ne!(Token::new(7, 1), Token::new(7, 2));
        assert_ne!(Token::new(1, 7), Token::new(2, 7));
    }
}
