//! [`SelectSelector`]: the [`Selector`] over `select(2)`.

use core::time::Duration;
use std::os::fd::RawFd;
use std::time::Instant;

use asyncore_core::{Readiness, Registration, Selector, SocketError, SourceError};
use nix::errno::Errno;
use nix::libc;
use nix::sys::time::{TimeVal, TimeValLike};

use crate::error::from_errno;

/// The number of fds a `select(2)` set holds (1024 on Linux): fds from this value up
/// cannot be watched by [`SelectSelector`].
pub const FD_SETSIZE: usize = nix::sys::select::FD_SETSIZE;

/// The longest single `select(2)` wait; longer timeouts wait again for the rest. It
/// fits a 32-bit `time_t` (32-bit glibc and musl targets).
const MAX_WAIT_SECS: i32 = i32::MAX;

/// The [`Selector`] over `select(2)`, the original's default loop.
///
/// * **Registration** ([`Selector::register`], called when a channel is added): a
///   negative fd is refused with [`SourceError::Invalid`], an fd ≥ [`FD_SETSIZE`]
///   with [`SourceError::OutOfRange`]`{ limit: FD_SETSIZE }`: the reactor hands the
///   socket back instead of panicking later in the loop (the original raised from
///   inside `select` and killed the loop for every channel). Use a `poll(2)`
///   selector for programs with many fds.
/// * **Sets**: read interest puts the fd in the read and the except sets (urgent data
///   is tied to reading, as in the original); write interest puts it in the write
///   set. `nfds` is the highest fd + 1. The three sets live on the stack: a wait
///   allocates nothing.
/// * **Readiness**: read set → [`READABLE`](Readiness::READABLE), write set →
///   [`WRITABLE`](Readiness::WRITABLE), except set →
///   [`PRIORITY`](Readiness::PRIORITY). `select(2)` never reports errors or hang-ups
///   as such: a refused connect or a reset shows as readable and writable, and the
///   socket operations then report the error.
/// * **`EINTR`** is retried with the time that remains (tracked against a deadline
///   with [`Instant`]), so a signal never ends a wait early.
/// * **`EBADF`** (an fd was closed behind the loop's back) does not fail the wait:
///   each registered fd is probed with `fcntl(F_GETFD)`, the bad ones are reported
///   [`INVALID`](Readiness::INVALID) (the reactor then closes their channels), and
///   the wait is redone at once without them, so the other channels are served in
///   the same pass.
/// * A registration whose fd is out of range (never registered) is reported
///   `INVALID` rather than handed to `select`.
/// * With no registrations, a wait just sleeps for the timeout; with no registrations
///   and no timeout it sleeps until the process ends (the reactor never asks for that:
///   it reports [`PollError::NothingToWaitFor`](asyncore_core::PollError)).
///
/// The selector keeps no state: registration is a range check.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectSelector {
    _private: (),
}

impl SelectSelector {
    /// A selector. `const`, so a reactor using it can be built in a `static`.
    pub const fn new() -> SelectSelector {
        SelectSelector { _private: () }
    }
}

/// Whether `select(2)` can watch `fd`.
fn check_fd(fd: RawFd) -> Result<(), SourceError> {
    match usize::try_from(fd) {
        Err(_) => Err(SourceError::Invalid),
        Ok(fd) if fd >= FD_SETSIZE => Err(SourceError::OutOfRange { limit: FD_SETSIZE }),
        Ok(_) => Ok(()),
    }
}

/// One `select(2)` fd set, holding fds as plain numbers.
///
/// nix's `FdSet` takes `BorrowedFd`s, which promise an open descriptor; a registered
/// fd may have been closed behind the loop's back (reporting exactly that is the
/// `EBADF` path's job), so this set never pretends otherwise: it stores numbers that
/// passed [`check_fd`] and hands the raw set to `select(2)`.
struct Set(libc::fd_set);

impl Set {
    fn new() -> Self {
        // SAFETY: `fd_set` is plain integers; all zeros is the empty set (FD_ZERO).
        Set(unsafe { core::mem::zeroed() })
    }

    /// Adds `fd`, which passed [`check_fd`] (0 ≤ fd < `FD_SETSIZE`).
    fn insert(&mut self, fd: RawFd) {
        debug_assert!(check_fd(fd).is_ok());
        if check_fd(fd).is_ok() {
            // SAFETY: `fd` is within the set's range (checked just above) and the
            // pointer is to a live, exclusively borrowed set.
            unsafe { libc::FD_SET(fd, &mut self.0) }
        }
    }

    /// Whether `fd` is in the set (`false` for an fd out of range).
    fn contains(&self, fd: RawFd) -> bool {
        // SAFETY: `fd` is within the set's range and the pointer is to a live set.
        check_fd(fd).is_ok() && unsafe { libc::FD_ISSET(fd, &self.0) }
    }
}

/// Whether `fd` is not an open descriptor: `fcntl(F_GETFD)` fails with `EBADF`. Only
/// the number is used, whatever it names now.
fn is_bad_fd(fd: RawFd) -> bool {
    // SAFETY: F_GETFD takes no pointer and changes nothing; any int is a valid
    // argument (a bad one just fails with EBADF).
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    r == -1 && Errno::last() == Errno::EBADF
}

/// `remaining` as a `select(2)` timeout: rounded up to whole microseconds (so a short
/// wait never becomes a busy zero-timeout poll), capped at [`MAX_WAIT_SECS`].
fn timeval(remaining: Duration) -> TimeVal {
    let mut secs = remaining.as_secs();
    let mut micros = remaining.subsec_nanos().div_ceil(1000);
    if micros >= 1_000_000 {
        secs = secs.saturating_add(1);
        micros = 0;
    }
    let secs = match i32::try_from(secs) {
        Ok(s) if s < MAX_WAIT_SECS => s,
        _ => {
            micros = 0;
            MAX_WAIT_SECS
        }
    };
    // `time_t` and `suseconds_t` are 32 or 64 bits depending on the target, and libc
    // deprecates naming them on musl (its 64-bit `time_t` switch is pending), so nix
    // picks the field types: it takes microseconds as `i64` and accepts any whole
    // number of seconds up to `i32::MAX` on every target (it panics beyond what the
    // target's `time_t` holds; `secs` is at most `MAX_WAIT_SECS` here).
    TimeVal::microseconds(i64::from(secs) * 1_000_000 + i64::from(micros))
}

/// Probes each registration not yet marked invalid with `fcntl(F_GETFD)` and marks
/// the closed ones [`Readiness::INVALID`]. Returns how many it marked.
fn mark_bad_fds(registrations: &[Registration<RawFd>], ready: &mut [Readiness]) -> usize {
    let mut found = 0;
    for (reg, out) in registrations.iter().zip(ready.iter_mut()) {
        if out.is_invalid() {
            continue;
        }
        if is_bad_fd(reg.source) {
            *out = Readiness::INVALID;
            found += 1;
        }
    }
    found
}

impl Selector for SelectSelector {
    type Source = RawFd;
    type Error = SocketError;

    /// The monotonic clock every std selector reads ([`monotonic`](crate::monotonic)).
    fn now(&self) -> Option<Duration> {
        Some(crate::monotonic())
    }

    /// Refuses what `select(2)` cannot watch.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] for a negative fd (a closed [`StdSocket`] reports
    /// `-1`), [`SourceError::OutOfRange`]`{ limit: FD_SETSIZE }` for an fd ≥
    /// [`FD_SETSIZE`].
    ///
    /// [`StdSocket`]: crate::StdSocket
    fn register(&mut self, source: RawFd) -> Result<(), SourceError> {
        check_fd(source)
    }

    /// One `select(2)` wait (repeated after `EINTR` and `EBADF`); see the type's
    /// documentation. Entries of `ready` beyond `registrations.len()` (or the other
    /// way round) are ignored.
    ///
    /// # Errors
    /// What `select(2)` reports other than `EINTR` and `EBADF`: `EINVAL`
    /// (`InvalidInput`), `ENOMEM` (`OutOfMemory`).
    fn select(
        &mut self,
        registrations: &[Registration<RawFd>],
        ready: &mut [Readiness],
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        let n = registrations.len().min(ready.len());
        let (registrations, ready) = (&registrations[..n], &mut ready[..n]);
        let mut invalid = 0;
        for (reg, out) in registrations.iter().zip(ready.iter_mut()) {
            *out = if check_fd(reg.source).is_ok() {
                Readiness::EMPTY
            } else {
                invalid += 1;
                Readiness::INVALID
            };
        }
        // An overflowing deadline is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // The first wait takes the timeout as it is (the deadline was just computed);
        // retries after EINTR or EBADF take what remains until the deadline.
        let mut first = true;

        loop {
            let mut read = Set::new();
            let mut write = Set::new();
            let mut except = Set::new();
            let mut nfds = 0;
            for (reg, out) in registrations.iter().zip(ready.iter()) {
                if out.is_invalid() {
                    continue;
                }
                let fd = reg.source;
                if reg.interest.is_readable() {
                    read.insert(fd);
                    except.insert(fd);
                }
                if reg.interest.is_writable() {
                    write.insert(fd);
                }
                nfds = nfds.max(reg.source + 1);
            }
            let mut tv = if invalid > 0 {
                // Something to report already: just look, do not wait.
                Some(TimeVal::new(0, 0))
            } else if first {
                timeout.filter(|_| deadline.is_some()).map(timeval)
            } else {
                deadline.map(|d| timeval(d.saturating_duration_since(Instant::now())))
            };
            first = false;

            let tv_ptr = tv.as_mut().map_or(core::ptr::null_mut(), |t| {
                AsMut::<libc::timeval>::as_mut(t) as *mut _
            });
            // SAFETY: the three sets and the timeval are live locals, exclusively
            // borrowed for the call; `nfds` is the highest fd in them + 1 (≤
            // FD_SETSIZE); a null timeval means no limit.
            let r = unsafe { libc::select(nfds, &mut read.0, &mut write.0, &mut except.0, tv_ptr) };
            let result = if r < 0 { Err(Errno::last()) } else { Ok(r) };
            match result {
                Ok(_) => {
                    let mut count = invalid;
                    for (reg, out) in registrations.iter().zip(ready.iter_mut()) {
                        if out.is_invalid() {
                            continue;
                        }
                        let fd = reg.source;
                        let mut r = Readiness::EMPTY;
                        if read.contains(fd) {
                            r |= Readiness::READABLE;
                        }
                        if write.contains(fd) {
                            r |= Readiness::WRITABLE;
                        }
                        if except.contains(fd) {
                            r |= Readiness::PRIORITY;
                        }
                        *out = r;
                        if !r.is_empty() {
                            count += 1;
                        }
                    }
                    return Ok(count);
                }
                // A signal: wait again for what remains (zero once the deadline passed).
                Err(Errno::EINTR) => continue,
                Err(Errno::EBADF) => {
                    let found = mark_bad_fds(registrations, ready);
                    if found == 0 {
                        // Nothing bad any more (the fd was reused meanwhile): report
                        // what is known; the next pass starts afresh.
                        return Ok(invalid);
                    }
                    invalid += found;
                }
                Err(e) => return Err(from_errno(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_range() {
        let mut s = SelectSelector::new();
        assert_eq!(s.register(0), Ok(()));
        assert_eq!(s.register(FD_SETSIZE as RawFd - 1), Ok(()));
        assert_eq!(s.register(-1), Err(SourceError::Invalid));
        assert_eq!(
            s.register(FD_SETSIZE as RawFd),
            Err(SourceError::OutOfRange { limit: FD_SETSIZE })
        );
        assert_eq!(
            s.register(RawFd::MAX),
            Err(SourceError::OutOfRange { limit: FD_SETSIZE })
        );
    }

    #[test]
    fn timevals() {
        let tv = timeval(Duration::from_nanos(1));
        assert_eq!((tv.tv_sec(), tv.tv_usec()), (0, 1));
        let tv = timeval(Duration::new(2, 999_999_001));
        assert_eq!((tv.tv_sec(), tv.tv_usec()), (3, 0));
        let tv = timeval(Duration::from_millis(1500));
        assert_eq!((tv.tv_sec(), tv.tv_usec()), (1, 500_000));
        let tv = timeval(Duration::ZERO);
        assert_eq!((tv.tv_sec(), tv.tv_usec()), (0, 0));
        let tv = timeval(Duration::MAX);
        let cap = i64::from(MAX_WAIT_SECS) * 1_000_000;
        assert_eq!(tv.num_microseconds(), cap);
        // Rounded up into the cap, and just below it.
        let just_below = Duration::from_secs(MAX_WAIT_SECS as u64) - Duration::from_nanos(999);
        assert_eq!(timeval(just_below).num_microseconds(), cap);
        let below = Duration::from_secs(MAX_WAIT_SECS as u64) - Duration::from_nanos(1000);
        assert_eq!(timeval(below).num_microseconds(), cap - 1);
    }

    #[test]
    fn const_new() {
        static SELECTOR: SelectSelector = SelectSelector::new();
        assert_eq!(SELECTOR, SelectSelector::default());
    }
}
