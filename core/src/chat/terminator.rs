//! Terminators: how an [`AsyncChat`](super::AsyncChat) cuts its input into records.

/// The longest byte terminator.
pub const MAX_TERMINATOR: usize = 16;

/// Where input records end.
#[derive(Copy, Clone, PartialEq, Eq)]
pub enum Terminator {
    /// No framing: everything received is collected, `found_terminator` never runs.
    None,
    /// Deliver exactly this many more bytes, then call `found_terminator`; the
    /// terminator then becomes [`Terminator::None`] unless the handler sets another.
    /// `Count(0)` means the same as [`Terminator::None`].
    Count(usize),
    /// Deliver data up to each occurrence of these bytes (not delivered themselves).
    Bytes(TermBytes),
}

/// A byte terminator of 1 to [`MAX_TERMINATOR`] bytes.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct TermBytes {
    bytes: [u8; MAX_TERMINATOR],
    len: u8,
}

impl TermBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A terminator that cannot be used: empty, or longer than [`MAX_TERMINATOR`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InvalidTerminator;

impl core::fmt::Display for InvalidTerminator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "terminator must be 1 to {MAX_TERMINATOR} bytes")
    }
}

impl core::error::Error for InvalidTerminator {}

impl Terminator {
    /// A byte terminator.
    ///
    /// # Errors
    /// [`InvalidTerminator`] for an empty slice or one longer than [`MAX_TERMINATOR`].
    pub fn bytes(t: &[u8]) -> Result<Self, InvalidTerminator> {
        if t.is_empty() || t.len() > MAX_TERMINATOR {
            return Err(InvalidTerminator);
        }
        let mut bytes = [0; MAX_TERMINATOR];
        bytes[..t.len()].copy_from_slice(t);
        Ok(Terminator::Bytes(TermBytes {
            bytes,
            len: t.len() as u8,
        }))
    }

    /// `\r\n`.
    pub const CRLF: Terminator = {
        let mut bytes = [0; MAX_TERMINATOR];
        bytes[0] = b'\r';
        bytes[1] = b'\n';
        Terminator::Bytes(TermBytes { bytes, len: 2 })
    };

    /// `\n`.
    pub const LF: Terminator = {
        let mut bytes = [0; MAX_TERMINATOR];
        bytes[0] = b'\n';
        Terminator::Bytes(TermBytes { bytes, len: 1 })
    };
}

impl core::fmt::Debug for Terminator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Terminator::None => f.write_str("None"),
            Terminator::Count(n) => write!(f, "Count({n})"),
            Terminator::Bytes(b) => write!(f, "Bytes({:?})", b.as_slice()),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Terminator {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Terminator::None => defmt::write!(f, "None"),
            Terminator::Count(n) => defmt::write!(f, "Count({})", n),
            Terminator::Bytes(b) => defmt::write!(f, "Bytes({=[u8]})", b.as_slice()),
        }
    }
}

/// The length of the longest proper prefix of `needle` that ends `haystack`: how many
/// trailing bytes must be kept because they may start a terminator split across
/// reads. The caller knows `needle` does not occur in `haystack`.
///
/// ```
/// use asyncore_core::chat::find_prefix_at_end;
/// assert_eq!(find_prefix_at_end(b"qwerty\r", b"\r\n"), 1);
/// assert_eq!(find_prefix_at_end(b"qwertydkjf", b"\r\n"), 0);
/// assert_eq!(find_prefix_at_end(b"xaa", b"aab"), 2);
/// ```
pub fn find_prefix_at_end(haystack: &[u8], needle: &[u8]) -> usize {
    let max = needle.len().saturating_sub(1).min(haystack.len());
    (1..=max)
        .rev()
        .find(|&l| haystack.ends_with(&needle[..l]))
        .unwrap_or(0)
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return haystack.iter().position(|&b| b == needle[0]);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
