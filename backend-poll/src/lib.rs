//! The `poll(2)` selector for asyncore: [`PollSelector`], an
//! [`asyncore_core::Selector`] over raw file descriptors.
//!
//! This is the original's `use_poll=True` flavour (`asyncore.poll2`), with its flags
//! normalised into the core's [`Readiness`]. A reactor takes it as its selector
//! (`Reactor<PollSelector<64>, MySocket, MyDispatcher, 64>`, with `MySocket::Source =
//! RawFd`); used on its own it looks like this:
//!
//! ```
//! use std::{os::fd::AsRawFd, time::Duration};
//!
//! use asyncore_core::{Interest, Readiness, Registration, Selector, Token};
//! use asyncore_poll::PollSelector;
//! use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
//!
//! let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_NONBLOCK)?;
//! let mut selector = PollSelector::<8>::new();
//! selector.register(a.as_raw_fd())?;
//! send(b.as_raw_fd(), b"hi", MsgFlags::MSG_NOSIGNAL)?;
//!
//! let registrations = [Registration {
//!     token: Token::new(0, 0),
//!     source: a.as_raw_fd(),
//!     interest: Interest::READABLE,
//! }];
//! let mut ready = [Readiness::EMPTY];
//! let n = selector.select(&registrations, &mut ready, Some(Duration::from_secs(5)))?;
//! assert_eq!((n, ready[0]), (1, Readiness::READABLE));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it differs from the `select(2)` selector
//!
//! * **No `FD_SETSIZE` limit.** Any fd ≥ 0 is accepted; a process with thousands of
//!   open files can watch fd 5000. `select(2)` cannot watch fds ≥ 1024 at all.
//! * **It reports hang-up, error and invalid descriptors** (`POLLHUP`, `POLLERR`,
//!   `POLLNVAL`) for every watched fd, whatever the interest. An fd closed behind the
//!   loop's back becomes [`Readiness::INVALID`] for that channel alone, where
//!   `select(2)` fails the whole wait with `EBADF`.
//! * **Cost per pass is linear in the number of watched fds, not in the highest fd.**
//!
//! # Flags
//!
//! Interest → `events`:
//!
//! | [`Interest`] | `events` |
//! |---|---|
//! | `READABLE` | `POLLIN \| POLLPRI` (priority data is tied to readability, as in the original) |
//! | `WRITABLE` | `POLLOUT` |
//!
//! `revents` → [`Readiness`] (see [`revents_to_readiness`]):
//!
//! | `revents` bit | [`Readiness`] |
//! |---|---|
//! | `POLLIN` | `READABLE` |
//! | `POLLOUT` | `WRITABLE` |
//! | `POLLPRI` | `PRIORITY` |
//! | `POLLERR` | `ERROR` |
//! | `POLLHUP` | `HANGUP` |
//! | `POLLNVAL` | `INVALID` |
//! | anything else (e.g. `POLLRDHUP`, never requested) | `ERROR` |
//!
//! Readable, priority and writable bits are then masked by the registration's
//! interest; error, hang-up and invalid always pass (the [`Selector`] contract).
//! A negative fd in a registration (which [`PollSelector::register`] refuses, so only
//! a direct caller can pass one) is reported `INVALID` at once: `poll(2)` itself would
//! silently skip it and the channel would never hear anything again.
//!
//! # Timeouts
//!
//! The timeout is converted to milliseconds **rounded up** ([`timeout_to_millis`]),
//! not truncated as CPython's `poll2` does: a 0.5 ms timeout waits 1 ms instead of
//! turning into a non-blocking poll that makes the loop spin. `None` waits without
//! limit (`-1`); timeouts beyond `i32::MAX` ms (about 24.8 days) are clamped to that.
//! With no registrations, `poll(2)` is still called with an empty set, so the wait
//! just sleeps.
//!
//! # Signals
//!
//! `poll(2)` is never restarted after a signal handler runs, even with `SA_RESTART`.
//! [`PollSelector`] retries an `EINTR` with the time that remains until the original
//! deadline (tracked with [`std::time::Instant`]), so a signal neither ends a wait
//! early nor makes it longer than asked.
//!
//! # Storage and allocation
//!
//! The `pollfd` array is a fixed-capacity `heapless::Vec` of `N` entries inside the
//! selector. It is **updated in place**: each pass compares every registration
//! (fd, events) with the entry at the same index and writes only what changed, then
//! truncates or extends when the count changed. A pass with unchanged interest writes
//! nothing ([`PollSelector::writes`] counts the writes). Nothing allocates.
//!
//! # Why `libc::pollfd` rather than nix's `PollFd`
//!
//! nix's `PollFd<'fd>` borrows a `BorrowedFd<'fd>` and is not `Copy`, so it cannot be
//! kept in the selector between passes: the fds belong to the channel map, and a
//! `'static` borrow made with `BorrowedFd::borrow_raw` would be a lie (an fd may be
//! closed behind the selector's back; reporting exactly that is `POLLNVAL`'s job).
//! Rebuilding a `PollFd` array every pass is what the in-place design avoids. So the
//! selector stores plain `libc::pollfd` values (`repr(C)`, `Copy`, just integers;
//! `libc` through nix's re-export, no extra dependency) and calls `libc::poll` in one
//! `unsafe` block. nix still provides `Errno`.
#![deny(missing_docs, missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]
#![doc(test(attr(deny(warnings))))]

use core::{fmt, time::Duration};
use std::{os::fd::RawFd, time::Instant};

use asyncore_core::{Interest, Readiness, Registration, Selector, SourceError};
use heapless::Vec;
use nix::{errno::Errno, libc};

/// `poll(2)` over [`StdSocket`](asyncore_std::StdSocket)s, as one
/// [`Io`](asyncore_core::Io): `Reactor<PollIo<N>, D, N>`.
pub type PollIo<const N: usize> = asyncore_core::With<PollSelector<N>, asyncore_std::StdSocket>;

/// `poll(2)` request bits as `libc` spells them (`c_short`).
const POLLIN: libc::c_short = libc::POLLIN;
const POLLPRI: libc::c_short = libc::POLLPRI;
const POLLOUT: libc::c_short = libc::POLLOUT;
const POLLERR: libc::c_short = libc::POLLERR;
const POLLHUP: libc::c_short = libc::POLLHUP;
const POLLNVAL: libc::c_short = libc::POLLNVAL;
/// Every `revents` bit with a [`Readiness`] of its own.
const KNOWN: libc::c_short = POLLIN | POLLPRI | POLLOUT | POLLERR | POLLHUP | POLLNVAL;

/// The `poll(2)` `events` for an [`Interest`]: `READABLE` asks for
/// `POLLIN | POLLPRI`, `WRITABLE` for `POLLOUT`. An empty interest gives 0, for which
/// the kernel still reports `POLLERR`, `POLLHUP` and `POLLNVAL`.
#[inline]
pub const fn interest_to_events(interest: Interest) -> libc::c_short {
    let mut events = 0;
    if interest.is_readable() {
        events |= POLLIN | POLLPRI;
    }
    if interest.is_writable() {
        events |= POLLOUT;
    }
    events
}

/// The [`Readiness`] for a `poll(2)` `revents` value: `POLLIN` → `READABLE`,
/// `POLLOUT` → `WRITABLE`, `POLLPRI` → `PRIORITY`, `POLLERR` → `ERROR`, `POLLHUP` →
/// `HANGUP`, `POLLNVAL` → `INVALID`. Any other bit (e.g. `POLLRDHUP`, which this crate
/// never requests) adds `ERROR`; nothing panics.
#[inline]
pub const fn revents_to_readiness(revents: libc::c_short) -> Readiness {
    let mut readiness = Readiness::EMPTY;
    if revents & POLLIN != 0 {
        readiness = readiness.add(Readiness::READABLE);
    }
    if revents & POLLOUT != 0 {
        readiness = readiness.add(Readiness::WRITABLE);
    }
    if revents & POLLPRI != 0 {
        readiness = readiness.add(Readiness::PRIORITY);
    }
    if revents & POLLERR != 0 {
        readiness = readiness.add(Readiness::ERROR);
    }
    if revents & POLLHUP != 0 {
        readiness = readiness.add(Readiness::HANGUP);
    }
    if revents & POLLNVAL != 0 {
        readiness = readiness.add(Readiness::INVALID);
    }
    if revents & !KNOWN != 0 {
        readiness = readiness.add(Readiness::ERROR);
    }
    readiness
}

/// The `poll(2)` timeout argument for `timeout`: `None` → `-1` (no limit), otherwise
/// the duration in milliseconds **rounded up**, clamped to `i32::MAX`.
///
/// Rounding up differs from CPython's `poll2`, which truncates (`int(timeout*1000)`),
/// so that there a 0.5 ms timeout becomes a non-blocking poll and a loop with a small
/// timeout spins. Here `Duration::ZERO` is the only timeout that gives `0`.
///
/// ```
/// use std::time::Duration;
/// use asyncore_poll::timeout_to_millis;
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

/// Why a [`PollSelector`] wait failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// `poll(2)` failed with this error (never `EINTR`, which is retried): `ENOMEM`,
    /// `EINVAL` (more fds than `RLIMIT_NOFILE`), `EFAULT`.
    Os(Errno),
    /// More registrations were handed over than the selector's capacity `N`.
    CapacityExceeded {
        /// How many registrations were handed over.
        registrations: usize,
        /// The selector's capacity.
        capacity: usize,
    },
    /// `ready` and `registrations` had different lengths.
    LengthMismatch {
        /// `registrations.len()`.
        registrations: usize,
        /// `ready.len()`.
        ready: usize,
    },
}

impl WaitError {
    /// The OS error number, for [`WaitError::Os`].
    pub const fn errno(&self) -> Option<Errno> {
        match self {
            WaitError::Os(e) => Some(*e),
            _ => None,
        }
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Os(e) => write!(f, "poll(2) failed: {e}"),
            WaitError::CapacityExceeded {
                registrations,
                capacity,
            } => write!(
                f,
                "{registrations} registrations for a poll selector of capacity {capacity}"
            ),
            WaitError::LengthMismatch {
                registrations,
                ready,
            } => write!(
                f,
                "{registrations} registrations but {ready} readiness entries"
            ),
        }
    }
}

impl std::error::Error for WaitError {}

impl From<WaitError> for std::io::Error {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Os(errno) => errno.into(),
            other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other),
        }
    }
}

/// A [`Selector`] over `poll(2)` for raw fds, with room for `N` watched fds.
///
/// Size `N` like the reactor's channel map (`Reactor<PollSelector<N>, S, D, N>`):
/// [`register`](Selector::register) refuses more than `N` sources with
/// [`SourceError::Full`], and a wait with more than `N` registrations fails with
/// [`WaitError::CapacityExceeded`]. See the [crate docs](crate) for the flag mapping,
/// timeout rounding and `EINTR` handling.
///
/// The statistics ([`writes`](Self::writes), [`waits`](Self::waits),
/// [`interruptions`](Self::interruptions)) exist so tests can observe the in-place
/// update and the `EINTR` retry; they are plain counters, cost nothing noticeable, and
/// wrap only after 2⁶⁴ events.
pub struct PollSelector<const N: usize> {
    /// The `pollfd` array handed to the kernel, parallel to the last registrations.
    fds: Vec<libc::pollfd, N>,
    /// How many sources `register` accepted and `deregister` has not released.
    registered: usize,
    /// `pollfd` entries written (changed or appended) since creation.
    writes: u64,
    /// `poll(2)` calls, `EINTR` retries included.
    waits: u64,
    /// `poll(2)` calls that ended with `EINTR`.
    interruptions: u64,
}

impl<const N: usize> PollSelector<N> {
    /// An empty selector. `const`, so it can live in a `static`.
    pub const fn new() -> Self {
        PollSelector {
            fds: Vec::new(),
            registered: 0,
            writes: 0,
            waits: 0,
            interruptions: 0,
        }
    }

    /// How many fds one wait can watch: `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many sources are registered (accepted by
    /// [`register`](Selector::register) and not yet deregistered).
    #[inline]
    pub const fn registered(&self) -> usize {
        self.registered
    }

    /// How many `pollfd` entries have been written since creation: one per entry whose
    /// fd or events changed from the previous pass, or that was appended. A pass with
    /// the same registrations as the previous one adds nothing; dropping entries from
    /// the end (fewer registrations) writes nothing either.
    #[inline]
    pub const fn writes(&self) -> u64 {
        self.writes
    }

    /// How many times `poll(2)` was called, `EINTR` retries included.
    #[inline]
    pub const fn waits(&self) -> u64 {
        self.waits
    }

    /// How many `poll(2)` calls a signal interrupted (`EINTR`), each retried with the
    /// remaining time.
    #[inline]
    pub const fn interruptions(&self) -> u64 {
        self.interruptions
    }

    /// Brings the `pollfd` array in line with `registrations`, writing only entries
    /// that differ. Returns whether any fd is negative. The caller has checked that
    /// `registrations.len() <= N`.
    fn update(&mut self, registrations: &[Registration<RawFd>]) -> bool {
        let mut negative = false;
        let keep = self.fds.len().min(registrations.len());
        self.fds.truncate(registrations.len());
        for (i, reg) in registrations.iter().enumerate() {
            let fd = reg.source;
            let events = interest_to_events(reg.interest);
            negative |= fd < 0;
            if i < keep {
                let entry = &mut self.fds[i];
                if entry.fd != fd || entry.events != events {
                    entry.fd = fd;
                    entry.events = events;
                    self.writes = self.writes.wrapping_add(1);
                }
            } else {
                let entry = libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                };
                // Cannot fail: the caller checked `registrations.len() <= N`.
                if self.fds.push(entry).is_ok() {
                    self.writes = self.writes.wrapping_add(1);
                }
            }
        }
        negative
    }

    /// Calls `poll(2)` on the current array, retrying `EINTR` until `deadline`.
    /// Returns how many entries have `revents` set.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<usize, WaitError> {
        // Only a finite, non-zero wait needs a clock: `None` stays -1 and zero stays 0
        // on every retry. A deadline too far to represent keeps the clamped timeout.
        let deadline = match timeout {
            Some(d) if !d.is_zero() => Instant::now().checked_add(d),
            _ => None,
        };
        let mut millis = timeout_to_millis(timeout);
        loop {
            self.waits = self.waits.wrapping_add(1);
            // `nfds_t` is an unsigned long on Linux; `len() <= N` fits.
            let nfds = self.fds.len() as libc::nfds_t;
            // SAFETY: `fds` points to `nfds` initialised, properly aligned
            // `libc::pollfd` values owned exclusively by `self` (a `heapless::Vec`
            // keeps its elements contiguous; with `nfds == 0` the kernel reads
            // nothing). `poll` only writes the `revents` field of those entries and
            // keeps no pointer after it returns. The fds themselves are plain
            // integers to the kernel: a closed or foreign fd yields `POLLNVAL` or
            // readiness, never memory unsafety.
            let rc = unsafe { libc::poll(self.fds.as_mut_ptr(), nfds, millis) };
            match Errno::result(rc) {
                Ok(n) => return Ok(usize::try_from(n).unwrap_or(0)),
                Err(Errno::EINTR) => {
                    self.interruptions = self.interruptions.wrapping_add(1);
                    if let Some(deadline) = deadline {
                        let left = deadline.saturating_duration_since(Instant::now());
                        // Zero left: one last non-blocking poll still reports what
                        // became ready.
                        millis = timeout_to_millis(Some(left));
                    }
                }
                Err(e) => return Err(WaitError::Os(e)),
            }
        }
    }
}

impl<const N: usize> Default for PollSelector<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for PollSelector<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollSelector")
            .field("capacity", &N)
            .field("entries", &self.fds.len())
            .field("registered", &self.registered)
            .field("writes", &self.writes)
            .field("waits", &self.waits)
            .field("interruptions", &self.interruptions)
            .finish()
    }
}

impl<const N: usize> Selector for PollSelector<N> {
    type Source = RawFd;
    type Error = WaitError;

    /// The monotonic clock every std selector reads ([`asyncore_std::monotonic`]).
    fn now(&self) -> Option<Duration> {
        Some(asyncore_std::monotonic())
    }

    /// Accepts any fd ≥ 0 (there is no `FD_SETSIZE` limit), up to `N` sources.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] for a negative fd; [`SourceError::Full`] when `N`
    /// sources are already registered.
    fn register(&mut self, source: RawFd) -> Result<(), SourceError> {
        if source < 0 {
            return Err(SourceError::Invalid);
        }
        if self.registered >= N {
            return Err(SourceError::Full);
        }
        self.registered += 1;
        Ok(())
    }

    /// Releases one registration. The `pollfd` array needs nothing: the next wait
    /// follows the registrations it is handed.
    ///
    /// The count drops whatever `source` is now: every `deregister` pairs with a
    /// successful [`register`](Selector::register), and a socket that a handler
    /// closed itself reports `-1` by the time its channel is removed. Ignoring that
    /// `-1` would leak one of the `N` registrations per such channel until every add
    /// failed with [`SourceError::Full`].
    fn deregister(&mut self, source: RawFd) {
        let _ = source;
        self.registered = self.registered.saturating_sub(1);
    }

    /// Updates the `pollfd` array in place from `registrations`, calls `poll(2)`
    /// (retrying `EINTR` with the remaining time), and writes each entry's
    /// [`Readiness`] into `ready`. With no registrations it sleeps for `timeout`
    /// (`None`: forever).
    ///
    /// # Errors
    /// [`WaitError::Os`] if `poll(2)` fails; [`WaitError::CapacityExceeded`] for more
    /// than `N` registrations; [`WaitError::LengthMismatch`] if `ready` is not as long
    /// as `registrations`. `ready` is untouched on error.
    fn select(
        &mut self,
        registrations: &[Registration<RawFd>],
        ready: &mut [Readiness],
        timeout: Option<Duration>,
    ) -> Result<usize, WaitError> {
        if ready.len() != registrations.len() {
            return Err(WaitError::LengthMismatch {
                registrations: registrations.len(),
                ready: ready.len(),
            });
        }
        if registrations.len() > N {
            return Err(WaitError::CapacityExceeded {
                registrations: registrations.len(),
                capacity: N,
            });
        }
        let negative = self.update(registrations);
        // A negative fd is reported INVALID at once, so do not block.
        let mut left = self.wait(if negative {
            Some(Duration::ZERO)
        } else {
            timeout
        })?;

        let mut count = 0;
        for (i, ((entry, reg), slot)) in self
            .fds
            .iter()
            .zip(registrations)
            .zip(ready.iter_mut())
            .enumerate()
        {
            let readiness = if entry.fd < 0 {
                Readiness::INVALID
            } else if entry.revents == 0 {
                Readiness::EMPTY
            } else {
                left = left.saturating_sub(1);
                revents_to_readiness(entry.revents).masked_by(reg.interest)
            };
            *slot = readiness;
            if !readiness.is_empty() {
                count += 1;
            }
            // Every entry poll(2) counted is seen (and no negative fd needs INVALID):
            // the rest have no events.
            if left == 0 && !negative {
                ready[i + 1..].fill(Readiness::EMPTY);
                break;
            }
        }
        Ok(count)
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
    fn interest_mapping() {
        assert_eq!(interest_to_events(Interest::NONE), 0);
        assert_eq!(
            interest_to_events(Interest::READABLE),
            libc::POLLIN | libc::POLLPRI
        );
        assert_eq!(interest_to_events(Interest::WRITABLE), libc::POLLOUT);
        assert_eq!(
            interest_to_events(Interest::BOTH),
            libc::POLLIN | libc::POLLPRI | libc::POLLOUT
        );
    }

    #[test]
    fn revents_mapping() {
        let cases = [
            (0, Readiness::EMPTY),
            (libc::POLLIN, Readiness::READABLE),
            (libc::POLLOUT, Readiness::WRITABLE),
            (libc::POLLPRI, Readiness::PRIORITY),
            (libc::POLLERR, Readiness::ERROR),
            (libc::POLLHUP, Readiness::HANGUP),
            (libc::POLLNVAL, Readiness::INVALID),
            (
                libc::POLLIN | libc::POLLOUT | libc::POLLERR | libc::POLLHUP,
                Readiness::READABLE | Readiness::WRITABLE | Readiness::ERROR | Readiness::HANGUP,
            ),
            (libc::POLLRDHUP as libc::c_short, Readiness::ERROR),
            (
                libc::POLLIN | libc::POLLRDNORM,
                Readiness::READABLE | Readiness::ERROR,
            ),
            (-1, {
                Readiness::READABLE
                    | Readiness::WRITABLE
                    | Readiness::PRIORITY
                    | Readiness::ERROR
                    | Readiness::HANGUP
                    | Readiness::INVALID
            }),
        ];
        for (revents, expected) in cases {
            assert_eq!(revents_to_readiness(revents), expected, "{revents:#x}");
        }
        // Every single bit maps to something non-empty, and nothing panics.
        for bit in 0..16 {
            let revents = (1u16 << bit) as libc::c_short;
            assert!(!revents_to_readiness(revents).is_empty(), "bit {bit}");
        }
    }

    #[test]
    fn register_bookkeeping() {
        let mut sel = PollSelector::<2>::new();
        assert_eq!(sel.capacity(), 2);
        assert_eq!(sel.register(-1), Err(SourceError::Invalid));
        assert_eq!(sel.register(5000), Ok(()));
        assert_eq!(sel.register(3), Ok(()));
        assert_eq!(sel.register(4), Err(SourceError::Full));
        assert_eq!(sel.registered(), 2);
        sel.deregister(3);
        assert_eq!(sel.registered(), 1);
        assert_eq!(sel.register(4), Ok(()));
        sel.deregister(4);
        sel.deregister(5000);
        sel.deregister(5000);
        assert_eq!(sel.registered(), 0);
    }

    #[test]
    fn deregister_of_a_source_closed_since_releases_its_registration() {
        let mut sel = PollSelector::<1>::new();
        assert_eq!(sel.register(7), Ok(()));
        // The socket was closed by its handler: the reactor passes its source, -1.
        sel.deregister(-1);
        assert_eq!(sel.registered(), 0);
        assert_eq!(sel.register(8), Ok(()));
    }

    #[test]
    fn static_selector() {
        static SEL: std::sync::Mutex<PollSelector<4>> = std::sync::Mutex::new(PollSelector::new());
        assert_eq!(SEL.lock().map(|s| s.capacity()).ok(), Some(4));
    }
}
