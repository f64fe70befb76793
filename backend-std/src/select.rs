//! [`SelectSelector`]: the [`Selector`] over `select(2)`.

use core::fmt;
use core::time::Duration;
use std::os::fd::RawFd;
use std::time::Instant;

use asyncore_core::{Events, Interest, Readiness, Selector, SocketError, SourceError, Token};
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
///   inside `select` and killed the loop for every channel), and so is an fd that is
///   registered already. Use a `poll(2)` or `epoll` selector for programs with many
///   fds.
/// * **Sets**: the selector keeps the interest sets between waits and changes one bit
///   when a channel's interest changes. Read interest puts the fd in the read and
///   the except sets (urgent data is tied to reading, as in the original); write
///   interest puts it in the write set. `nfds` is the highest watched fd + 1. Each
///   wait copies the sets (384 bytes) into the three result sets it hands the
///   kernel, and allocates nothing.
/// * **Readiness**: read set → [`READABLE`](Readiness::READABLE), write set →
///   [`WRITABLE`](Readiness::WRITABLE), except set →
///   [`PRIORITY`](Readiness::PRIORITY), reported in fd order. `select(2)` never
///   reports errors or hang-ups as such: a refused connect or a reset shows as
///   readable and writable, and the socket operations then report the error.
/// * **More ready fds than the caller's buffer holds**: the result sets stay in the
///   selector until the next wait, with the fd the scan stopped at, and
///   [`select_more`](Selector::select_more) goes on from there without another
///   `select(2)`. Registering or deregistering an fd clears its bits in the result
///   sets, so it reports nothing from the old wait, and readiness is masked by the
///   fd's interest as it is now.
/// * **`EINTR`** is retried with the time that remains (tracked against a deadline
///   with [`Instant`]), so a signal never ends a wait early.
/// * **`EBADF`** (an fd was closed behind the loop's back) does not fail the wait:
///   each watched fd is probed with `fcntl(F_GETFD)`, the bad ones are reported
///   [`INVALID`](Readiness::INVALID) (the reactor then closes their channels), and
///   the wait is redone at once without them, so the other channels are served in
///   the same pass.
/// * With nothing watched, a wait just sleeps for the timeout; with nothing watched
///   and no timeout it sleeps until the process ends (the reactor never asks for
///   that: it reports [`PollError::NothingToWaitFor`](asyncore_core::PollError)).
///
/// Its state is three interest sets, the three result sets of the last wait and
/// the set of fds it found closed, and the token of each fd: about 9.1 KiB
/// (the result sets, 384 bytes, lived on the stack during a wait before
/// [`select_more`](Selector::select_more)), whatever the number of channels.
pub struct SelectSelector {
    /// Watched for reading (and urgent data).
    read: Set,
    /// Watched for writing.
    write: Set,
    /// Registered, whatever the interest.
    known: Set,
    /// The token each registered fd reports under.
    tokens: [Token; FD_SETSIZE],
    /// The highest watched fd + 1 (an upper bound; lowered when the top fd leaves).
    nfds: RawFd,
    /// What the last wait found: ready for reading, for writing, urgent data. Handed
    /// to `select(2)` (as copies of the interest sets), read back from it.
    found: [Set; 3],
    /// Fds the last wait found closed behind the loop's back (reported `INVALID`).
    bad: Set,
    /// The `nfds` of the last wait: the found sets hold no fd from it on (0: nothing
    /// found, or no wait yet).
    end: RawFd,
    /// Where the scans of the found sets go on: the bad set, then the ready sets.
    next_bad: RawFd,
    next: RawFd,
    /// How many bad fds, and how many bits of the ready sets, the scans have not
    /// reached yet (upper bounds: registering or deregistering clears bits).
    bad_left: u32,
    left: u32,
}

impl fmt::Debug for SelectSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectSelector")
            .field("nfds", &self.nfds)
            .finish_non_exhaustive()
    }
}

impl Default for SelectSelector {
    fn default() -> Self {
        Self::new()
    }
}

impl SelectSelector {
    /// A selector watching nothing. `const`, so a reactor using it can be built in a
    /// `static`.
    pub const fn new() -> SelectSelector {
        SelectSelector {
            read: Set::EMPTY,
            write: Set::EMPTY,
            known: Set::EMPTY,
            tokens: [Token::new(0, 0); FD_SETSIZE],
            nfds: 0,
            found: [Set::EMPTY; 3],
            bad: Set::EMPTY,
            end: 0,
            next_bad: 0,
            next: 0,
            bad_left: 0,
            left: 0,
        }
    }

    /// The token `fd` reports under.
    fn token_of(&self, fd: RawFd) -> Token {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.tokens.get(i))
            .copied()
            .unwrap_or(Token::new(0, 0))
    }

    /// Forgets what the last wait found for `fd` (registered or deregistered since).
    fn forget_found(&mut self, fd: RawFd) {
        for set in &mut self.found {
            set.remove(fd);
        }
        self.bad.remove(fd);
    }

    /// Pushes what the last wait found, from where the scans stopped: the bad fds
    /// (`INVALID`), then the ready ones, in fd order, while `events` has room; stops
    /// at the first that does not fit, for the next call. Returns how many it
    /// pushed.
    fn push_found(&mut self, events: &mut Events<'_>) -> usize {
        let mut count = 0;
        while self.bad_left > 0 && self.next_bad < self.end {
            let fd = self.next_bad;
            // Still watched (not reregistered for nothing since).
            if self.bad.contains(fd) && (self.read.contains(fd) || self.write.contains(fd)) {
                if !events.push(self.token_of(fd), Readiness::INVALID) {
                    return count;
                }
                self.bad_left -= 1;
                count += 1;
            }
            self.next_bad += 1;
        }
        let [read, write, except] = &self.found;
        while self.left > 0 && self.next < self.end {
            let fd = self.next;
            let mut r = Readiness::EMPTY;
            let mut bits = 0;
            for (set, readiness) in [
                (read, Readiness::READABLE),
                (write, Readiness::WRITABLE),
                (except, Readiness::PRIORITY),
            ] {
                if set.contains(fd) {
                    r |= readiness;
                    bits += 1;
                }
            }
            if bits > 0 {
                // Masked by what the fd is watched for now.
                let interest =
                    Interest::from_flags(self.read.contains(fd), self.write.contains(fd));
                let r = r.masked_by(interest);
                if !events.push(self.token_of(fd), r) {
                    return count;
                }
                self.left = self.left.saturating_sub(bits);
                if !r.is_empty() {
                    count += 1;
                }
            }
            self.next += 1;
        }
        count
    }

    /// Puts `fd` in (or takes it out of) the interest sets for `interest`.
    fn watch(&mut self, fd: RawFd, interest: Interest) {
        self.read.set(fd, interest.is_readable());
        self.write.set(fd, interest.is_writable());
        if !interest.is_empty() {
            self.nfds = self.nfds.max(fd + 1);
        } else {
            while self.nfds > 0
                && !self.read.contains(self.nfds - 1)
                && !self.write.contains(self.nfds - 1)
            {
                self.nfds -= 1;
            }
        }
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
#[derive(Copy, Clone)]
struct Set(libc::fd_set);

impl Set {
    // SAFETY: `fd_set` is plain integers; all zeros is the empty set (FD_ZERO).
    const EMPTY: Set = Set(unsafe { core::mem::zeroed() });

    /// Adds `fd`, which passed [`check_fd`] (0 ≤ fd < `FD_SETSIZE`).
    fn insert(&mut self, fd: RawFd) {
        debug_assert!(check_fd(fd).is_ok());
        if check_fd(fd).is_ok() {
            // SAFETY: `fd` is within the set's range (checked just above) and the
            // pointer is to a live, exclusively borrowed set.
            unsafe { libc::FD_SET(fd, &mut self.0) }
        }
    }

    /// Removes `fd` (nothing for an fd out of range).
    fn remove(&mut self, fd: RawFd) {
        if check_fd(fd).is_ok() {
            // SAFETY: `fd` is within the set's range (checked just above) and the
            // pointer is to a live, exclusively borrowed set.
            unsafe { libc::FD_CLR(fd, &mut self.0) }
        }
    }

    /// Adds or removes `fd`.
    fn set(&mut self, fd: RawFd, member: bool) {
        if member {
            self.insert(fd);
        } else {
            self.remove(fd);
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

impl Selector for SelectSelector {
    type Source = RawFd;
    type Error = SocketError;

    /// The monotonic clock every std selector reads ([`monotonic`](crate::monotonic)).
    fn now(&self) -> Option<Duration> {
        Some(crate::monotonic())
    }

    /// Registers what `select(2)` can watch.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] for a negative fd (a closed [`StdSocket`] reports
    /// `-1`) or one registered already, [`SourceError::OutOfRange`]`{ limit:
    /// FD_SETSIZE }` for an fd ≥ [`FD_SETSIZE`].
    ///
    /// [`StdSocket`]: crate::StdSocket
    fn register(&mut self, token: Token, fd: RawFd, interest: Interest) -> Result<(), SourceError> {
        check_fd(fd)?;
        if self.known.contains(fd) {
            return Err(SourceError::Invalid);
        }
        self.known.insert(fd);
        self.forget_found(fd);
        if let Some(t) = usize::try_from(fd)
            .ok()
            .and_then(|i| self.tokens.get_mut(i))
        {
            *t = token;
        }
        self.watch(fd, interest);
        Ok(())
    }

    /// Changes the bits of `fd` in the interest sets.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] for an fd that is not registered.
    fn reregister(
        &mut self,
        _token: Token,
        fd: RawFd,
        _was: Interest,
        interest: Interest,
    ) -> Result<(), SourceError> {
        if !self.known.contains(fd) {
            return Err(SourceError::Invalid);
        }
        self.watch(fd, interest);
        Ok(())
    }

    /// Takes `fd` out of the sets. An fd that reads as invalid (its socket was
    /// closed from outside the reactor) is found by its token instead.
    fn deregister(&mut self, token: Token, fd: RawFd, _was: Interest) {
        let fd = if self.known.contains(fd) && self.tokens.get(fd as usize) == Some(&token) {
            fd
        } else {
            match (0..self.nfds.max(0))
                .find(|&f| self.known.contains(f) && self.tokens[f as usize] == token)
            {
                Some(f) => f,
                None => return,
            }
        };
        self.known.remove(fd);
        self.forget_found(fd);
        self.watch(fd, Interest::NONE);
    }

    /// One `select(2)` wait (repeated after `EINTR` and `EBADF`); see the type's
    /// documentation. Reports as many of the fds it found as fit;
    /// [`select_more`](Selector::select_more) reports the rest.
    ///
    /// # Errors
    /// What `select(2)` reports other than `EINTR` and `EBADF`: `EINVAL`
    /// (`InvalidInput`), `ENOMEM` (`OutOfMemory`).
    fn select(
        &mut self,
        events: &mut Events<'_>,
        timeout: Option<Duration>,
    ) -> Result<usize, SocketError> {
        // What the last wait left is forgotten.
        (self.end, self.next_bad, self.next, self.bad_left, self.left) = (0, 0, 0, 0, 0);
        // An overflowing deadline is as good as none.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        // The first wait takes the timeout as it is (the deadline was just computed);
        // retries after EINTR or EBADF take what remains until the deadline.
        let mut first = true;
        // Fds found closed behind the loop's back: reported, and left out of the
        // retried wait.
        self.bad = Set::EMPTY;
        let mut invalid = 0;

        loop {
            self.found = [self.read, self.write, self.read];
            if invalid > 0 {
                for fd in 0..self.nfds {
                    if self.bad.contains(fd) {
                        for set in &mut self.found {
                            set.remove(fd);
                        }
                    }
                }
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
            let [read, write, except] = &mut self.found;
            // SAFETY: the three sets are fields of `self` and the timeval a local, all
            // live and exclusively borrowed for the call; `nfds` is at least the
            // highest fd in them + 1 and at most FD_SETSIZE; a null timeval means no
            // limit.
            let r = unsafe {
                libc::select(self.nfds, &mut read.0, &mut write.0, &mut except.0, tv_ptr)
            };
            let result = if r < 0 { Err(Errno::last()) } else { Ok(r) };
            match result {
                Ok(n) => {
                    self.left = u32::try_from(n).unwrap_or(u32::MAX);
                    break;
                }
                // A signal: wait again for what remains (zero once the deadline passed).
                Err(Errno::EINTR) => continue,
                Err(Errno::EBADF) => {
                    let mut found = 0;
                    for fd in 0..self.nfds {
                        let watched = self.read.contains(fd) || self.write.contains(fd);
                        if watched && !self.bad.contains(fd) && is_bad_fd(fd) {
                            self.bad.insert(fd);
                            found += 1;
                        }
                    }
                    if found == 0 {
                        // Nothing bad any more (the fd was reused meanwhile): report
                        // what is known; the next pass starts afresh.
                        self.found = [Set::EMPTY; 3];
                        break;
                    }
                    invalid += found;
                }
                Err(e) => return Err(from_errno(e)),
            }
        }
        (self.end, self.bad_left) = (self.nfds, invalid);
        Ok(self.push_found(events))
    }

    /// Goes on with what the last wait found, from the fd where the last scan
    /// stopped; no system call.
    fn select_more(&mut self, events: &mut Events<'_>) -> usize {
        self.push_found(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_range() {
        let mut s = SelectSelector::new();
        let (t, i) = (Token::new(0, 0), Interest::READABLE);
        assert_eq!(s.register(t, 0, i), Ok(()));
        assert_eq!(s.register(t, 0, i), Err(SourceError::Invalid), "twice");
        assert_eq!(s.register(t, FD_SETSIZE as RawFd - 1, i), Ok(()));
        assert_eq!(s.register(t, -1, i), Err(SourceError::Invalid));
        assert_eq!(
            s.register(t, FD_SETSIZE as RawFd, i),
            Err(SourceError::OutOfRange { limit: FD_SETSIZE })
        );
        assert_eq!(
            s.register(t, RawFd::MAX, i),
            Err(SourceError::OutOfRange { limit: FD_SETSIZE })
        );
        assert_eq!(s.nfds, FD_SETSIZE as RawFd);
        s.deregister(t, FD_SETSIZE as RawFd - 1, i);
        assert_eq!(s.nfds, 1, "the top fd left: nfds comes down");
        assert_eq!(
            s.reregister(t, 5, i, Interest::NONE),
            Err(SourceError::Invalid)
        );
        s.reregister(t, 0, i, Interest::NONE).unwrap();
        assert_eq!(s.nfds, 0);
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
        static SELECTOR: std::sync::Mutex<SelectSelector> =
            std::sync::Mutex::new(SelectSelector::new());
        assert_eq!(SELECTOR.lock().map(|s| s.nfds).ok(), Some(0));
    }
}
