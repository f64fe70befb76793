//! What the `poll(2)` and `epoll(7)` selectors (`asyncore-poll`, `asyncore-epoll`)
//! share: the millisecond timeout, the `EINTR`-retrying wait with its counters, and
//! the conversions between [`Interest`]/[`Readiness`] and a kernel's flag bits.
//!
//! The `select(2)` selector here takes a `timeval` and traces `EBADF` itself, so it
//! does not use these.

use core::time::Duration;
use std::time::Instant;

use asyncore_core::{Interest, Readiness};
use nix::{errno::Errno, libc};

/// The `poll(2)`/`epoll_wait` timeout argument for `timeout`: `None` → `-1` (no
/// limit), otherwise the duration in milliseconds **rounded up**, clamped to
/// `i32::MAX`.
///
/// Rounding up differs from CPython's `poll2`, which truncates (`int(timeout*1000)`),
/// so that there a 0.5 ms timeout becomes a non-blocking poll and a loop with a small
/// timeout spins. Here `Duration::ZERO` is the only timeout that gives `0`.
///
/// ```
/// use std::time::Duration;
/// use asyncore_std::wait::timeout_to_millis;
///
/// assert_eq!(timeout_to_millis(None), -1);
/// assert_eq!(timeout_to_millis(Some(Duration::ZERO)), 0);
/// assert_eq!(timeout_to_millis(Some(Duration::from_micros(500))), 1);
/// assert_eq!(timeout_to_millis(Some(Duration::from_millis(30))), 30);
/// assert_eq!(timeout_to_millis(Some(Duration::MAX)), i32::MAX);
/// ```
#[inline]
pub const fn timeout_to_millis(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            if ms > i32::MAX as u128 {
                i32::MAX
            } else {
                ms as i32
            }
        }
    }
}

/// The flag bits for an [`Interest`]: `readable` for `READABLE`, `writable` for
/// `WRITABLE`, both or-ed for both, 0 for none.
#[inline]
pub const fn interest_to_bits(interest: Interest, readable: u32, writable: u32) -> u32 {
    let mut bits = 0;
    if interest.is_readable() {
        bits |= readable;
    }
    if interest.is_writable() {
        bits |= writable;
    }
    bits
}

/// The [`Readiness`] for the flag bits `bits`: each `(bit, readiness)` of `table`
/// whose bit is set adds its readiness, and any bit no entry names adds
/// [`Readiness::ERROR`]; nothing panics.
///
/// ```
/// use asyncore_core::Readiness;
/// use asyncore_std::wait::bits_to_readiness;
///
/// let table = [(1, Readiness::READABLE), (2, Readiness::HANGUP)];
/// assert_eq!(bits_to_readiness(3, &table), Readiness::READABLE | Readiness::HANGUP);
/// assert_eq!(bits_to_readiness(4, &table), Readiness::ERROR);
/// ```
#[inline]
pub const fn bits_to_readiness(bits: u32, table: &[(u32, Readiness)]) -> Readiness {
    let mut readiness = Readiness::EMPTY;
    let mut known = 0;
    let mut i = 0;
    while i < table.len() {
        let (bit, r) = table[i];
        if bits & bit != 0 {
            readiness = readiness.add(r);
        }
        known |= bit;
        i += 1;
    }
    if bits & !known != 0 {
        readiness = readiness.add(Readiness::ERROR);
    }
    readiness
}

/// How many waits a selector made, and how many of them a signal interrupted; and
/// the wait itself ([`WaitCounts::wait`]), which retries `EINTR`.
///
/// Plain counters (all zero when new, so a `static` selector stays in `.bss`); they
/// wrap only after 2⁶⁴ waits.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitCounts {
    /// System calls made, `EINTR` retries included.
    waits: u64,
    /// System calls that ended with `EINTR`.
    interruptions: u64,
}

impl WaitCounts {
    /// No waits yet.
    pub const fn new() -> Self {
        WaitCounts {
            waits: 0,
            interruptions: 0,
        }
    }

    /// How many system calls [`wait`](Self::wait) made, `EINTR` retries included.
    #[inline]
    pub const fn waits(&self) -> u64 {
        self.waits
    }

    /// How many of them a signal interrupted (`EINTR`), each retried with the
    /// remaining time.
    #[inline]
    pub const fn interruptions(&self) -> u64 {
        self.interruptions
    }

    /// Calls `call` with the timeout in milliseconds ([`timeout_to_millis`]) and
    /// returns its non-negative result; a result of -1 is read as the `errno`. An
    /// `EINTR` is retried with the time that remains until the original deadline
    /// (zero left: one last non-blocking call, which still reports what became ready),
    /// so a signal neither ends a wait early nor makes it longer than asked.
    ///
    /// # Errors
    /// The `errno` of the first call that fails with anything but `EINTR`.
    #[inline]
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
        mut call: impl FnMut(libc::c_int) -> libc::c_int,
    ) -> Result<usize, Errno> {
        // Only a finite, non-zero wait needs a clock: `None` stays -1 and zero stays 0
        // on every retry. A deadline too far to represent keeps the clamped timeout.
        let deadline = match timeout {
            Some(d) if !d.is_zero() => Instant::now().checked_add(d),
            _ => None,
        };
        let mut millis = timeout_to_millis(timeout);
        loop {
            self.waits = self.waits.wrapping_add(1);
            match Errno::result(call(millis)) {
                Ok(n) => return Ok(usize::try_from(n).unwrap_or(0)),
                Err(Errno::EINTR) => {
                    self.interruptions = self.interruptions.wrapping_add(1);
                    if let Some(deadline) = deadline {
                        let left = deadline.saturating_duration_since(Instant::now());
                        millis = timeout_to_millis(Some(left));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_rounds_up() {
        let ms = |d| timeout_to_millis(Some(d));
        assert_eq!(timeout_to_millis(None), -1);
        assert_eq!(ms(Duration::ZERO), 0);
        assert_eq!(ms(Duration::from_nanos(1)), 1);
        assert_eq!(ms(Duration::from_micros(500)), 1);
        assert_eq!(ms(Duration::from_micros(999)), 1);
        assert_eq!(ms(Duration::from_millis(1)), 1);
        assert_eq!(ms(Duration::from_micros(1001)), 2);
        assert_eq!(ms(Duration::from_millis(30)), 30);
        assert_eq!(ms(Duration::from_secs_f64(0.0305)), 31);
        assert_eq!(ms(Duration::from_millis(i32::MAX as u64)), i32::MAX);
        assert_eq!(ms(Duration::from_millis(i32::MAX as u64 + 1)), i32::MAX);
        assert_eq!(
            ms(Duration::from_millis(i32::MAX as u64) - Duration::from_nanos(1)),
            i32::MAX
        );
        assert_eq!(ms(Duration::MAX), i32::MAX);
    }

    #[test]
    fn interest_bits() {
        assert_eq!(interest_to_bits(Interest::NONE, 1, 4), 0);
        assert_eq!(interest_to_bits(Interest::READABLE, 1, 4), 1);
        assert_eq!(interest_to_bits(Interest::WRITABLE, 1, 4), 4);
        assert_eq!(interest_to_bits(Interest::BOTH, 1, 4), 5);
    }

    #[test]
    fn wait_retries_eintr_and_counts() {
        let mut counts = WaitCounts::new();
        let mut rcs = [-1, -1, 3].into_iter();
        let mut seen = [0; 3];
        let mut k = 0;
        let r = counts.wait(Some(Duration::ZERO), |ms| {
            seen[k] = ms;
            k += 1;
            let rc = rcs.next().unwrap_or(0);
            if rc < 0 {
                Errno::EINTR.set();
            }
            rc
        });
        assert_eq!(r, Ok(3));
        assert_eq!(seen, [0, 0, 0], "a zero timeout stays zero");
        assert_eq!((counts.waits(), counts.interruptions()), (3, 2));
        let r = counts.wait(None, |ms| {
            assert_eq!(ms, -1);
            Errno::EBADF.set();
            -1
        });
        assert_eq!(r, Err(Errno::EBADF));
        assert_eq!((counts.waits(), counts.interruptions()), (4, 2));
    }
}
