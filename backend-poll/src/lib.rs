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
//! use asyncore_core::{Event, Events, Interest, Readiness, Selector, Token};
//! use asyncore_poll::PollSelector;
//! use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
//!
//! let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_NONBLOCK)?;
//! let mut selector = PollSelector::<8>::new();
//! let token = Token::new(0, 0);
//! selector.register(token, a.as_raw_fd(), Interest::READABLE)?;
//! send(b.as_raw_fd(), b"hi", MsgFlags::MSG_NOSIGNAL)?;
//!
//! let mut buf = [Event::EMPTY; 8];
//! let mut events = Events::new(&mut buf);
//! let n = selector.select(&mut events, Some(Duration::from_secs(5)))?;
//! assert_eq!(n, 1);
//! assert_eq!(events.as_slice(), [Event::new(token.index() as u32, Readiness::READABLE)]);
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
//! The `pollfd` array has one entry per channel slot (`N` of them, inside the
//! selector), indexed by the slot of the channel's token. Registering, changing
//! interest and deregistering each write one entry; a slot without a watched source
//! holds fd `-1`, which `poll(2)` skips. A wait hands the kernel the entries up to the
//! highest watched slot and reads back only as many as it reported. Nothing
//! allocates ([`PollSelector::writes`] counts the entry writes).
//!
//! # More ready fds than the caller's buffer holds
//!
//! What a wait found stays in the entries' `revents` until the next wait: when the
//! caller's [`Events`] fills up, the selector remembers the slot where its scan
//! stopped and how many entries with `revents` are left, and
//! [`select_more`](Selector::select_more) goes on from there, without another
//! `poll(2)`. Every write of an entry (registration, interest change,
//! deregistration) clears its `revents`, so a source deregistered or registered
//! since the wait reports nothing from it, and readiness is masked by the entry's
//! interest as it is now.
//!
//! # Why `libc::pollfd` rather than nix's `PollFd`
//!
//! nix's `PollFd<'fd>` borrows a `BorrowedFd<'fd>` and is not `Copy`, so it cannot be
//! kept in the selector between passes: the fds belong to the channel map, and a
//! `'static` borrow made with `BorrowedFd::borrow_raw` would be a lie (an fd may be
//! closed behind the selector's back; reporting exactly that is `POLLNVAL`'s job).
//! Rebuilding a `PollFd` array every pass is what the persistent design avoids. So the
//! selector stores plain `libc::pollfd` values (`repr(C)`, `Copy`, just integers;
//! `libc` through nix's re-export, no extra dependency) and calls `libc::poll` in one
//! `unsafe` block. nix still provides `Errno`.
#![deny(missing_docs, missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]
#![doc(test(attr(deny(warnings))))]

use core::{fmt, time::Duration};
use std::os::fd::RawFd;

use asyncore_core::{Events, Interest, Readiness, Selector, SourceError, Token};
use asyncore_std::wait::{WaitCounts, bits_to_readiness, interest_to_bits};
use nix::{errno::Errno, libc};

/// `poll(2)` over [`StdSocket`](asyncore_std::StdSocket)s, as one
/// [`Io`](asyncore_core::Io): `Reactor<PollIo<N>, D, N>`.
pub type PollIo<const N: usize> = asyncore_core::With<PollSelector<N>, asyncore_std::StdSocket>;

/// `poll(2)` request bits as `libc` spells them (`c_short`).
const POLLIN: libc::c_short = libc::POLLIN;
const POLLPRI: libc::c_short = libc::POLLPRI;
const POLLOUT: libc::c_short = libc::POLLOUT;

/// Each `revents` bit with a [`Readiness`] of its own, as the `u32` that
/// [`bits_to_readiness`] takes.
const REVENTS: [(u32, Readiness); 6] = [
    (libc::POLLIN as u16 as u32, Readiness::READABLE),
    (libc::POLLOUT as u16 as u32, Readiness::WRITABLE),
    (libc::POLLPRI as u16 as u32, Readiness::PRIORITY),
    (libc::POLLERR as u16 as u32, Readiness::ERROR),
    (libc::POLLHUP as u16 as u32, Readiness::HANGUP),
    (libc::POLLNVAL as u16 as u32, Readiness::INVALID),
];

/// The `poll(2)` `events` for an [`Interest`]: `READABLE` asks for
/// `POLLIN | POLLPRI`, `WRITABLE` for `POLLOUT`. An empty interest gives 0, for which
/// the kernel still reports `POLLERR`, `POLLHUP` and `POLLNVAL`.
#[inline]
pub const fn interest_to_events(interest: Interest) -> libc::c_short {
    let readable = (POLLIN | POLLPRI) as u16 as u32;
    let writable = POLLOUT as u16 as u32;
    interest_to_bits(interest, readable, writable) as u16 as libc::c_short
}

/// The [`Readiness`] for a `poll(2)` `revents` value: `POLLIN` → `READABLE`,
/// `POLLOUT` → `WRITABLE`, `POLLPRI` → `PRIORITY`, `POLLERR` → `ERROR`, `POLLHUP` →
/// `HANGUP`, `POLLNVAL` → `INVALID`. Any other bit (e.g. `POLLRDHUP`, which this crate
/// never requests) adds `ERROR`; nothing panics.
#[inline]
pub const fn revents_to_readiness(revents: libc::c_short) -> Readiness {
    bits_to_readiness(revents as u16 as u32, &REVENTS)
}

// The `poll(2)` timeout argument, shared with the `epoll(7)` selector.
pub use asyncore_std::wait::timeout_to_millis;

/// Why a [`PollSelector`] wait failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// `poll(2)` failed with this error (never `EINTR`, which is retried): `ENOMEM`,
    /// `EINVAL` (more fds than `RLIMIT_NOFILE`), `EFAULT`.
    Os(Errno),
}

impl WaitError {
    /// The OS error number, for [`WaitError::Os`].
    pub const fn errno(&self) -> Option<Errno> {
        match self {
            WaitError::Os(e) => Some(*e),
        }
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Os(e) => write!(f, "poll(2) failed: {e}"),
        }
    }
}

impl std::error::Error for WaitError {}

impl From<WaitError> for std::io::Error {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Os(errno) => errno.into(),
        }
    }
}

/// A [`Selector`] over `poll(2)` for raw fds, for channels in slots `0..N`.
///
/// Size `N` like the reactor's channel map (`Reactor<PollIo<N>, D, N>`):
/// [`register`](Selector::register) refuses a token whose slot is `N` or more with
/// [`SourceError::Full`]. See the [crate docs](crate) for the flag mapping, timeout
/// rounding and `EINTR` handling.
///
/// It keeps one `pollfd` (8 bytes) per slot and nothing else per channel: events
/// are reported by slot.
///
/// The statistics ([`writes`](Self::writes), [`waits`](Self::waits),
/// [`interruptions`](Self::interruptions)) exist so tests can observe the
/// registrations and the `EINTR` retry; they are plain counters, cost nothing
/// noticeable, and wrap only after 2⁶⁴ events.
pub struct PollSelector<const N: usize> {
    /// The `pollfd` array handed to the kernel, one entry per slot (fd -1: nothing
    /// watched there).
    fds: [libc::pollfd; N],
    /// One past the highest slot with a watched fd: what a wait hands the kernel.
    high: usize,
    /// How many sources are registered.
    registered: usize,
    /// Where the scan of the last wait's `revents` goes on
    /// ([`select_more`](Selector::select_more)).
    next: usize,
    /// How many entries the last wait found with `revents` that the scan has not
    /// reached yet (an upper bound: an entry written since has none any more).
    left: usize,
    /// `pollfd` entries written since creation.
    writes: u64,
    /// `poll(2)` calls, and those that ended with `EINTR`.
    counts: WaitCounts,
}

/// A slot with nothing watched.
const UNWATCHED: libc::pollfd = libc::pollfd {
    fd: -1,
    events: 0,
    revents: 0,
};

/// A slot never handed to the kernel yet (beyond `high`).
const ZEROED: libc::pollfd = libc::pollfd {
    fd: 0,
    events: 0,
    revents: 0,
};

impl<const N: usize> PollSelector<N> {
    /// An empty selector. `const`, so it can live in a `static`.
    pub const fn new() -> Self {
        PollSelector {
            // All zero bytes, so a `static` selector (and a reactor holding one) sits
            // in `.bss`; entries are set to `UNWATCHED` as `high` grows over them.
            fds: [ZEROED; N],
            high: 0,
            registered: 0,
            next: 0,
            left: 0,
            writes: 0,
            counts: WaitCounts::new(),
        }
    }

    /// How many channel slots it covers: `N`.
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

    /// How many `pollfd` entries have been written since creation: one per
    /// registration, interest change and deregistration. A pass whose interest did
    /// not change writes nothing.
    #[inline]
    pub const fn writes(&self) -> u64 {
        self.writes
    }

    /// How many times `poll(2)` was called, `EINTR` retries included.
    #[inline]
    pub const fn waits(&self) -> u64 {
        self.counts.waits()
    }

    /// How many `poll(2)` calls a signal interrupted (`EINTR`), each retried with the
    /// remaining time.
    #[inline]
    pub const fn interruptions(&self) -> u64 {
        self.counts.interruptions()
    }

    /// Writes slot `index`'s entry: `fd` watched for `interest` (fd -1 when nothing
    /// is watched), with no `revents` (what the last wait found for the slot is
    /// forgotten), and keeps `high` in step.
    fn put(&mut self, index: usize, fd: RawFd, interest: Interest) {
        let Some(entry) = self.fds.get_mut(index) else {
            return;
        };
        let watched = !interest.is_empty();
        *entry = if watched {
            libc::pollfd {
                fd,
                events: interest_to_events(interest),
                revents: 0,
            }
        } else {
            UNWATCHED
        };
        self.writes = self.writes.wrapping_add(1);
        if watched {
            if index >= self.high {
                // Entries between the old top and this one were never written.
                for e in self.fds.iter_mut().take(index).skip(self.high) {
                    *e = UNWATCHED;
                }
                self.high = index + 1;
            }
        } else {
            while self.high > 0 && self.fds[self.high - 1].fd < 0 {
                self.high -= 1;
            }
        }
    }

    /// Calls `poll(2)` on the current array, retrying `EINTR` until the deadline.
    /// Returns how many entries have `revents` set.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<usize, WaitError> {
        let fds = &mut self.fds[..self.high.min(N)];
        // `nfds_t` is an unsigned long on Linux; `len() <= N` fits.
        let nfds = fds.len() as libc::nfds_t;
        self.counts
            .wait(timeout, |millis| {
                // SAFETY: `fds` points to `nfds` initialised, properly aligned
                // `libc::pollfd` values owned exclusively by `self` (with `nfds == 0`
                // the kernel reads nothing). `poll` only writes the `revents` field of
                // those entries and keeps no pointer after it returns. The fds
                // themselves are plain integers to the kernel: a closed or foreign fd
                // yields `POLLNVAL` or readiness, a negative one is skipped, never
                // memory unsafety.
                unsafe { libc::poll(fds.as_mut_ptr(), nfds, millis) }
            })
            .map_err(WaitError::Os)
    }

    /// Pushes the readiness of the entries with `revents`, from slot `next` on,
    /// while some are left and `events` has room; stops at the first that does not
    /// fit, for the next call. Returns how many it pushed.
    fn push_found(&mut self, events: &mut Events<'_>) -> usize {
        let mut count = 0;
        let high = self.high.min(N);
        let mut left = self.left;
        let mut next = high;
        let from = self.next.min(high);
        let entries = self.fds.get(from..high).unwrap_or_default();
        for (index, entry) in (from..).zip(entries) {
            if left == 0 {
                next = index;
                break;
            }
            if entry.revents == 0 {
                continue;
            }
            // Masked by what the entry is watched for now (the same as at the wait,
            // unless it was written since, which cleared `revents`).
            let interest = events_to_interest(entry.events);
            let readiness = revents_to_readiness(entry.revents).masked_by(interest);
            if !events.push_slot(index as u32, readiness) {
                // No room: this entry is the first of the next call.
                next = index;
                break;
            }
            left -= 1;
            if !readiness.is_empty() {
                count += 1;
            }
        }
        if next >= high {
            left = 0;
        }
        (self.next, self.left) = (next, left);
        count
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
            .field("high", &self.high)
            .field("registered", &self.registered)
            .field("writes", &self.writes)
            .field("waits", &self.waits())
            .field("interruptions", &self.interruptions())
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

    /// Registers any fd ≥ 0 (there is no `FD_SETSIZE` limit) in the slot of
    /// `token`.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] for a negative fd; [`SourceError::Full`] for a slot
    /// `N` or beyond.
    fn register(&mut self, token: Token, fd: RawFd, interest: Interest) -> Result<(), SourceError> {
        if fd < 0 {
            return Err(SourceError::Invalid);
        }
        let index = token.index();
        if index >= N {
            return Err(SourceError::Full);
        }
        self.registered += 1;
        self.put(index, fd, interest);
        Ok(())
    }

    /// Rewrites the slot's entry.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] for a slot beyond `N`, or a negative fd (a socket
    /// closed since). The selector keeps no record of which token holds a slot: the
    /// reactor registers each slot's channel once and deregisters it when it leaves.
    fn reregister(
        &mut self,
        token: Token,
        fd: RawFd,
        _was: Interest,
        interest: Interest,
    ) -> Result<(), SourceError> {
        if fd < 0 || token.index() >= N {
            return Err(SourceError::Invalid);
        }
        self.put(token.index(), fd, interest);
        Ok(())
    }

    /// Clears the slot's entry.
    fn deregister(&mut self, token: Token, _fd: RawFd, _was: Interest) {
        if token.index() < N {
            self.registered = self.registered.saturating_sub(1);
            self.put(token.index(), -1, Interest::NONE);
        }
    }

    /// Calls `poll(2)` over the watched slots (retrying `EINTR` with the remaining
    /// time) and reports each entry with `revents`, in slot order, as many as fit;
    /// [`select_more`](Selector::select_more) reports the rest. With nothing
    /// watched it sleeps for `timeout` (`None`: forever).
    ///
    /// # Errors
    /// [`WaitError::Os`] if `poll(2)` fails.
    fn select(
        &mut self,
        events: &mut Events<'_>,
        timeout: Option<Duration>,
    ) -> Result<usize, WaitError> {
        (self.next, self.left) = (0, 0);
        self.left = self.wait(timeout)?;
        Ok(self.push_found(events))
    }

    /// Goes on with the entries the last wait found with `revents`, from the slot
    /// where the last scan stopped; no system call.
    fn select_more(&mut self, events: &mut Events<'_>) -> usize {
        self.push_found(events)
    }
}

/// The interest an entry's `events` stand for.
#[inline]
const fn events_to_interest(events: libc::c_short) -> Interest {
    Interest::from_flags(events & POLLIN != 0, events & POLLOUT != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (a, b, c) = (Token::new(0, 0), Token::new(1, 0), Token::new(2, 0));
        let i = Interest::READABLE;
        assert_eq!(sel.capacity(), 2);
        assert_eq!(sel.register(a, -1, i), Err(SourceError::Invalid));
        assert_eq!(sel.register(a, 5000, i), Ok(()));
        assert_eq!(sel.register(b, 3, Interest::NONE), Ok(()));
        assert_eq!(sel.register(c, 4, i), Err(SourceError::Full));
        assert_eq!(
            (sel.registered(), sel.high),
            (2, 1),
            "slot 1 is not watched"
        );
        sel.reregister(b, 3, Interest::NONE, i).unwrap();
        assert_eq!(sel.high, 2);
        sel.deregister(b, 3, i);
        assert_eq!((sel.registered(), sel.high), (1, 1));
        assert_eq!(
            sel.reregister(a, -1, i, Interest::BOTH),
            Err(SourceError::Invalid),
            "a socket closed since"
        );
        assert_eq!(
            sel.reregister(c, 4, i, Interest::BOTH),
            Err(SourceError::Invalid),
            "beyond the slots"
        );
        sel.deregister(a, 5000, i);
        assert_eq!((sel.registered(), sel.high), (0, 0));
    }

    #[test]
    fn deregister_of_a_source_closed_since_releases_its_registration() {
        let mut sel = PollSelector::<1>::new();
        let t = Token::new(0, 0);
        assert_eq!(sel.register(t, 7, Interest::READABLE), Ok(()));
        // The socket was closed by its handler: its source may read -1 by now.
        sel.deregister(t, -1, Interest::READABLE);
        assert_eq!(sel.registered(), 0);
        assert_eq!(
            sel.register(Token::new(0, 1), 8, Interest::READABLE),
            Ok(())
        );
    }

    #[test]
    fn static_selector() {
        static SEL: std::sync::Mutex<PollSelector<4>> = std::sync::Mutex::new(PollSelector::new());
        assert_eq!(SEL.lock().map(|s| s.capacity()).ok(), Some(4));
    }
}
