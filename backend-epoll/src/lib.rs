//! The `epoll(7)` selector for asyncore: [`EpollSelector`], an
//! [`asyncore_core::Selector`] over raw file descriptors, for Linux and Android.
//!
//! The kernel keeps the interest list, so the selector tells it only what changes
//! (`epoll_ctl`) and a wait costs O(ready) rather than O(watched): with thousands of
//! mostly idle connections, `poll(2)` and `select(2)` look at every fd on every pass,
//! `epoll_wait` only at the ready ones. Readiness is **level-triggered**, like the
//! other selectors: a source that is still ready is reported again on the next wait.
//! A reactor takes it as its selector (`Reactor<EpollIo<64>, MyDispatcher, 64>`); used
//! on its own it looks like this:
//!
//! ```
//! use std::{os::fd::AsRawFd, time::Duration};
//!
//! use asyncore_core::{Event, Events, Interest, Readiness, Selector, Token};
//! use asyncore_epoll::EpollSelector;
//! use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
//!
//! let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_NONBLOCK)?;
//! let mut selector = EpollSelector::<8>::new(); // no fd yet: made at the first register
//! let token = Token::new(0, 0);
//! selector.register(token, a.as_raw_fd(), Interest::READABLE)?; // EPOLL_CTL_ADD
//! send(b.as_raw_fd(), b"hi", MsgFlags::MSG_NOSIGNAL)?;
//!
//! let mut buf = [Event::EMPTY; 8];
//! let mut events = Events::new(&mut buf);
//! let n = selector.select(&mut events, Some(Duration::from_secs(5)))?;
//! assert_eq!(n, 1);
//! let slot = token.index() as u32; // what an event names
//! assert_eq!(events.as_slice(), [Event::new(slot, Readiness::READABLE)]);
//! assert_eq!(selector.ctl_calls(), 1); // waiting again calls no epoll_ctl
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Registrations
//!
//! | call | `epoll_ctl` |
//! |---|---|
//! | [`register`](Selector::register) with some interest | `EPOLL_CTL_ADD`, the token in the event's `u64` |
//! | [`register`](Selector::register) with [`Interest::NONE`] | `EPOLL_CTL_ADD` then `EPOLL_CTL_DEL` at once: a probe, so a source epoll cannot watch is refused at `add` whatever the interest; the source is left **out** of the epoll set |
//! | [`reregister`](Selector::reregister) `NONE` → some | `EPOLL_CTL_ADD` |
//! | [`reregister`](Selector::reregister) some → other | `EPOLL_CTL_MOD` |
//! | [`reregister`](Selector::reregister) some → `NONE` | `EPOLL_CTL_DEL` |
//! | [`reregister`](Selector::reregister) with no change | nothing |
//! | [`deregister`](Selector::deregister) after some interest | `EPOLL_CTL_DEL` (`EBADF`/`ENOENT` ignored: the fd may be closed already) |
//! | [`deregister`](Selector::deregister) after `NONE` | nothing |
//!
//! A source with no interest is not in the epoll set at all, because epoll always
//! reports `EPOLLERR` and `EPOLLHUP` for what is in it: the [`Selector`] contract says a
//! source with no interest hears nothing, not even a hang-up. A pass whose interest
//! did not change calls no `epoll_ctl` ([`EpollSelector::ctl_calls`] counts them).
//!
//! Refusals ([`SourceError`]):
//!
//! | `errno` | when | [`SourceError`] |
//! |---|---|---|
//! | – | a negative fd (no system call) | `Invalid` |
//! | `EPERM` | a regular file or a directory (epoll cannot watch what is always ready) | `Invalid` |
//! | `EBADF` | not an open fd | `Invalid` |
//! | `EEXIST` | the fd is already registered (under another token) | `Invalid` |
//! | `ENOENT` | (a change) the fd is not in the set any more: closed behind the loop's back | `Invalid` |
//! | `ENOSPC`, `ENOMEM` | the kernel's limit of watches (`/proc/sys/fs/epoll/max_user_watches`), or memory | `Full` |
//! | `EMFILE`, `ENFILE`, `ENOMEM` | the epoll instance itself could not be made (first registration) | `Full` |
//! | anything else (`EINVAL`, `ELOOP`) | | `Invalid` |
//!
//! [`EpollSelector::last_ctl_error`] keeps the `errno` of the last failed call.
//!
//! # Flags
//!
//! | [`Interest`] | `events` |
//! |---|---|
//! | `READABLE` | `EPOLLIN \| EPOLLPRI` (priority data is tied to readability, as in the original) |
//! | `WRITABLE` | `EPOLLOUT` |
//!
//! `EPOLLRDHUP` is not requested (`poll(2)` does not ask for `POLLRDHUP` either);
//! neither is `EPOLLET`: readiness is level-triggered.
//!
//! | event bit | [`Readiness`] |
//! |---|---|
//! | `EPOLLIN` | `READABLE` |
//! | `EPOLLOUT` | `WRITABLE` |
//! | `EPOLLPRI` | `PRIORITY` |
//! | `EPOLLERR` | `ERROR` |
//! | `EPOLLHUP` | `HANGUP` |
//! | anything else (never requested) | `ERROR` |
//!
//! The kernel reports only the bits that were asked for, plus `EPOLLERR` and
//! `EPOLLHUP`, so readable, priority and writable readiness are already masked by the
//! registration's interest (the [`Selector`] contract; the reactor masks once more).
//! epoll never reports [`Readiness::INVALID`]: see below.
//!
//! # How it differs from `poll(2)`, and why
//!
//! The readiness of a watched socket, pipe or tty is the same as `poll(2)`'s (both
//! ask the file's own poll routine), so the callbacks agree in every situation of the
//! conformance suite (`tests/conformance.rs`) except those the kernel forces:
//!
//! | situation | poll | epoll | callbacks on epoll |
//! |---|---|---|---|
//! | an fd closed behind the loop's back (nothing else holds its file) | `POLLNVAL` → `INVALID` | nothing: closing the file took it out of the epoll set | none: the channel stays silent (its peer sees the connection end) until its interest changes, when `epoll_ctl` fails and the reactor reports it `INVALID` (`handle_close`), or until it is closed |
//! | a regular file or a directory as a channel | always readable and writable | `epoll_ctl` fails with `EPERM` | `add` refuses it: `Rejected(Invalid)`, the socket handed back open |
//! | dispatch order | slot order | the kernel's ready list | same callbacks per channel, another order between channels |
//!
//! A handler that closes its socket itself (rather than `ctx.close()`) is found by
//! the reactor, not the kernel, so it is reported `INVALID` on every backend.
//!
//! **Closing and duplicates.** epoll registers a *file*, named by an fd: closing the fd
//! removes the registration only when no other descriptor (a `dup`, a forked child's
//! copy) still refers to the file. The reactor therefore deregisters a channel
//! *before* it closes its socket. An fd closed behind the loop's back while a
//! duplicate keeps its file open stays in the set under the old token, and nothing
//! can remove it any more (`EPOLL_CTL_DEL` names an fd that no longer refers to that
//! file): its events name the old channel's slot, so the reactor drops them while the
//! slot is empty and hands them to the next channel in that slot as spurious
//! readiness (an operation that would block), and a level-triggered ready file wakes
//! every wait. Closing fds behind the loop's back is a bug on every backend; on
//! epoll it can cost a busy loop.
//!
//! **An fd number reused within a pass.** A handler that closes its socket itself
//! (`ctx.socket().close()`) and then adds a new channel may get the closed number
//! back for the new socket, and the new channel is added to the set (`EPOLL_CTL_ADD`)
//! before the reactor, after the callback, deregisters the old one by that number.
//! An `EPOLL_CTL_DEL` then would remove the *new* channel's registration (the old
//! one went with its file), and the new channel would never hear anything. So the
//! selector remembers the last [`FRESH`] additions since the last wait: it does not
//! delete, nor change (a change is refused: `Invalid`, so the old channel is reported
//! `INVALID`), a number that was added for another token since the last wait. More
//! than [`FRESH`] additions between such a close and the old channel's deregistration
//! in one pass are not covered. `poll(2)` and `select(2)` keep a registration per
//! slot and have no such case.
//!
//! # Waits
//!
//! The selector keeps a fixed array of `E` `epoll_event`s, and a wait asks the kernel
//! for up to `E` events, whatever room the caller's [`Events`] buffer has. What
//! does not fit stays in the array: [`select_more`](Selector::select_more) hands
//! it out in further batches, without another system call, until the next wait
//! (which drops what was left: being level-triggered, it is reported again). A
//! source deregistered since the wait reports nothing from it, and the readiness
//! of one whose interest changed since is masked by the new interest: deregistering
//! a source, or narrowing its interest, while some of a wait's events are left
//! looks through those (at most `E`) for its token. The kernel's ready list
//! rotates: a source reported by a wait goes to the back of the list, and those a
//! full wait left over come first in the next, so a small `E` defers sources but
//! starves none.
//!
//! **Sizing `E`** like the map's `N` (`Reactor<EpollIo<N>, D, N>`, as the facade's
//! `AnySelector<N>` does): one wait can then report every channel, as `poll(2)`
//! does, and a reactor dispatches all of them in the same pass, one batch of its
//! event buffer after another. A smaller `E` bounds the work of one pass (and the
//! selector's size: `E` × 12 bytes on x86_64 and 32-bit x86 glibc, where
//! `epoll_event` is packed, × 16 elsewhere); the rest wait one pass. `E` must be at
//! least 1 (checked at compile time).
//!
//! The timeout is converted to milliseconds **rounded up** ([`timeout_to_millis`]), as
//! the `poll(2)` selector does: a 0.5 ms timeout waits 1 ms instead of turning into a
//! non-blocking wait that makes the loop spin. `None` waits without limit; timeouts
//! beyond `i32::MAX` ms are clamped. With nothing in the set the wait just sleeps.
//!
//! `epoll_wait` is never restarted after a signal handler ran, even with
//! `SA_RESTART`: an `EINTR` is retried with the time that remains until the original
//! deadline, so a signal neither ends a wait early nor makes it longer than asked.
//!
//! # The epoll fd: lazy, close-on-exec, not for a forked child
//!
//! [`EpollSelector::new`] is a `const fn` and makes no system call, so a reactor over
//! it can be a `static`. The epoll instance is created on the first
//! [`register`](Selector::register) or [`select`](Selector::select), with
//! `epoll_create1(EPOLL_CLOEXEC)`; [`EpollSelector::open`] creates it at once for a
//! program that wants the failure (`EMFILE`, `ENFILE`, `ENOMEM`) up front as a typed
//! [`WaitError`]. Dropping the selector closes it.
//!
//! `EPOLL_CLOEXEC`: a program that `exec`s another never hands it the epoll fd. A
//! child made by `fork` without `exec` does share it, and with it the **same** epoll
//! instance and interest list: a child's `epoll_ctl` changes the parent's
//! registrations, and both would receive the same readiness. A forked child must not
//! use the parent's reactor, not even to close it (`close_all`, `close` deregister
//! each channel from the shared instance, for the parent too); it builds its own.
//! And while the child holds copies of the parent's fds, a socket the parent closes
//! without deregistering it first stays in the set (see duplicates above).
//!
//! # Storage and allocation
//!
//! `E` events, the epoll fd, the last [`FRESH`] additions and a few counters; no
//! per-fd state (the kernel holds the registrations, the token rides in each event's
//! `u64`). Nothing allocates after construction; the kernel's own memory for the set
//! is the kernel's.
//!
//! # Why raw `libc::epoll_*` rather than nix's `Epoll`
//!
//! nix's [`Epoll`](https://docs.rs/nix/0.32/nix/sys/epoll/struct.Epoll.html) takes
//! each fd as `AsFd`, i.e. a `BorrowedFd` whose contract is that the fd stays open
//! while borrowed. The selector only has the raw fds the channel map owns, and
//! `EPOLL_CTL_DEL` must be allowed on an fd that was closed behind its back (that is
//! what `EBADF` reports); `BorrowedFd::borrow_raw` would be a lie there (and panics on
//! `-1`). nix's `Epoll` also owns its fd, so it cannot be made in a `const fn`. So the
//! selector calls `libc::epoll_create1`, `epoll_ctl` and `epoll_wait` (`libc` through
//! nix's re-export, no extra dependency or feature) in one `unsafe` block each; nix
//! still provides `Errno`.
#![deny(missing_docs, missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]
#![doc(test(attr(deny(warnings))))]

#[cfg(not(any(target_os = "linux", target_os = "android")))]
compile_error!("asyncore-epoll supports Linux and Android only");

use core::{fmt, time::Duration};
use std::os::fd::RawFd;

use asyncore_core::{Events, Interest, Readiness, Selector, SourceError, Token};
use asyncore_std::wait::{WaitCounts, bits_to_readiness, interest_to_bits};
use nix::{errno::Errno, libc};

/// `epoll(7)` over [`StdSocket`](asyncore_std::StdSocket)s, as one
/// [`Io`](asyncore_core::Io): `Reactor<EpollIo<N>, D, N>`.
pub type EpollIo<const E: usize> = asyncore_core::With<EpollSelector<E>, asyncore_std::StdSocket>;

/// `epoll_event.events` request bits as `libc` spells them, as the kernel's `u32`.
const EPOLLIN: u32 = libc::EPOLLIN as u32;
const EPOLLPRI: u32 = libc::EPOLLPRI as u32;
const EPOLLOUT: u32 = libc::EPOLLOUT as u32;

/// Each event bit with a [`Readiness`] of its own.
const EVENTS: [(u32, Readiness); 5] = [
    (EPOLLIN, Readiness::READABLE),
    (EPOLLOUT, Readiness::WRITABLE),
    (EPOLLPRI, Readiness::PRIORITY),
    (libc::EPOLLERR as u32, Readiness::ERROR),
    (libc::EPOLLHUP as u32, Readiness::HANGUP),
];

/// The `epoll_event.events` for an [`Interest`]: `READABLE` asks for
/// `EPOLLIN | EPOLLPRI`, `WRITABLE` for `EPOLLOUT`, `NONE` for nothing (such a source
/// is kept out of the set: the kernel would still report `EPOLLERR` and `EPOLLHUP`).
///
/// ```
/// use asyncore_core::Interest;
/// use asyncore_epoll::interest_to_events;
/// use nix::libc;
///
/// assert_eq!(interest_to_events(Interest::NONE), 0);
/// assert_eq!(interest_to_events(Interest::WRITABLE), libc::EPOLLOUT as u32);
/// ```
#[inline]
pub const fn interest_to_events(interest: Interest) -> u32 {
    interest_to_bits(interest, EPOLLIN | EPOLLPRI, EPOLLOUT)
}

/// The [`Readiness`] for an `epoll_event.events` value: `EPOLLIN` → `READABLE`,
/// `EPOLLOUT` → `WRITABLE`, `EPOLLPRI` → `PRIORITY`, `EPOLLERR` → `ERROR`, `EPOLLHUP` →
/// `HANGUP`. Any other bit (e.g. `EPOLLRDHUP`, which this crate never requests) adds
/// `ERROR`; nothing panics.
///
/// ```
/// use asyncore_core::Readiness;
/// use asyncore_epoll::events_to_readiness;
/// use nix::libc;
///
/// let events = (libc::EPOLLIN | libc::EPOLLHUP) as u32;
/// assert_eq!(events_to_readiness(events), Readiness::READABLE | Readiness::HANGUP);
/// ```
#[inline]
pub const fn events_to_readiness(events: u32) -> Readiness {
    bits_to_readiness(events, &EVENTS)
}

// The `epoll_wait` timeout argument, shared with the `poll(2)` selector.
pub use asyncore_std::wait::timeout_to_millis;

/// The [`SourceError`] for a failed `epoll_ctl` (see the [crate docs](crate)):
/// `ENOSPC` and `ENOMEM` are `Full`, anything else `Invalid`.
#[inline]
pub const fn ctl_error(errno: Errno) -> SourceError {
    match errno {
        Errno::ENOSPC | Errno::ENOMEM => SourceError::Full,
        _ => SourceError::Invalid,
    }
}

/// Why an [`EpollSelector`] wait (or [`EpollSelector::open`]) failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// `epoll_create1` failed: `EMFILE` (the process's fd limit), `ENFILE` (the
    /// system's), `ENOMEM`.
    Create(Errno),
    /// `epoll_wait` failed with this error (never `EINTR`, which is retried): `EBADF`,
    /// `EFAULT`, `EINVAL`.
    Os(Errno),
}

impl WaitError {
    /// The OS error number.
    pub const fn errno(&self) -> Option<Errno> {
        match self {
            WaitError::Create(e) | WaitError::Os(e) => Some(*e),
        }
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Create(e) => write!(f, "epoll_create1(2) failed: {e}"),
            WaitError::Os(e) => write!(f, "epoll_wait(2) failed: {e}"),
        }
    }
}

impl std::error::Error for WaitError {}

impl From<WaitError> for std::io::Error {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Create(errno) | WaitError::Os(errno) => errno.into(),
        }
    }
}

/// An unused `epoll_event`.
const NO_EVENT: libc::epoll_event = libc::epoll_event { events: 0, u64: 0 };

/// A level-triggered [`Selector`] over `epoll(7)` for raw fds, reporting up to `E`
/// ready sources per wait.
///
/// `const`-constructible ([`new`](Self::new)); the epoll fd is made on first use. See
/// the [crate docs](crate) for the `epoll_ctl` calls, the flag mapping, sizing `E`,
/// the kernel-forced differences from `poll(2)`, timeouts, `EINTR`, and fork.
///
/// The statistics ([`ctl_calls`](Self::ctl_calls), [`waits`](Self::waits),
/// [`interruptions`](Self::interruptions)) exist so tests can observe that
/// `epoll_ctl` is called only on a change and that `EINTR` is retried; they are plain
/// counters and wrap only after 2⁶⁴ events.
pub struct EpollSelector<const E: usize> {
    /// The epoll instance's fd plus one; 0 until it is created. Plus one, and plain
    /// integers below rather than `Option`s, so that a new selector is all zero bytes
    /// (and has no niche an enclosing enum could use): a `static` reactor over it
    /// lands in `.bss`.
    epfd1: RawFd,
    /// What one `epoll_wait` writes.
    buf: [libc::epoll_event; E],
    /// How many events the last `epoll_wait` wrote into `buf`.
    got: usize,
    /// Of those, how many were handed out (the rest are for
    /// [`select_more`](Selector::select_more)).
    taken: usize,
    /// Sources registered and not yet deregistered.
    registered: usize,
    /// Of those, how many are in the epoll set (some interest).
    watched: usize,
    /// `epoll_ctl` calls, failed ones included.
    ctl_calls: u64,
    /// `epoll_wait` calls, and those that ended with `EINTR`.
    counts: WaitCounts,
    /// The raw `errno` of the last failed `epoll_ctl`; 0 for none.
    last_errno: i32,
    /// The latest [`FRESH`] additions to the set since the last wait (fd, token),
    /// oldest first from `fresh_count % FRESH`: see "An fd number reused within a
    /// pass" in the crate docs.
    fresh: [(RawFd, Token); FRESH],
    /// Additions since the last wait.
    fresh_count: usize,
}

/// How many additions to the set since the last wait the selector remembers.
pub const FRESH: usize = 16;

impl<const E: usize> EpollSelector<E> {
    /// `E` is at least 1: `epoll_wait` needs room for one event.
    const ROOM: () = assert!(E > 0, "EpollSelector<E> needs E >= 1");

    /// An empty selector, with no epoll fd yet (no system call). `const`, so it can
    /// live in a `static`.
    pub const fn new() -> Self {
        let () = Self::ROOM;
        EpollSelector {
            epfd1: 0,
            buf: [NO_EVENT; E],
            got: 0,
            taken: 0,
            registered: 0,
            watched: 0,
            ctl_calls: 0,
            counts: WaitCounts::new(),
            last_errno: 0,
            // Entries from `fresh_count` on are never read.
            fresh: [(0, Token::new(0, 0)); FRESH],
            fresh_count: 0,
        }
    }

    /// Creates the epoll instance now if it does not exist yet
    /// (`epoll_create1(EPOLL_CLOEXEC)`), and returns its fd. Otherwise the first
    /// [`register`](Selector::register) or [`select`](Selector::select) creates it.
    ///
    /// # Errors
    /// [`WaitError::Create`]: `EMFILE`, `ENFILE`, `ENOMEM`.
    pub fn open(&mut self) -> Result<RawFd, WaitError> {
        if self.epfd1 > 0 {
            return Ok(self.epfd());
        }
        // SAFETY: `epoll_create1` takes a flags integer and no pointer; it returns a
        // new fd, or -1 with `errno` set. The fd is owned by `self` from here on and
        // closed once, in `Drop`.
        let rc = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        let fd = Errno::result(rc).map_err(WaitError::Create)?;
        // An fd is below `RLIMIT_NOFILE`, far below `i32::MAX`.
        self.epfd1 = fd.saturating_add(1);
        Ok(fd)
    }

    /// The epoll fd, once created.
    #[inline]
    pub const fn epoll_fd(&self) -> Option<RawFd> {
        if self.epfd1 > 0 {
            Some(self.epfd())
        } else {
            None
        }
    }

    /// How many ready sources one wait can report: `E`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        E
    }

    /// How many sources are registered (accepted by [`register`](Selector::register)
    /// and not yet deregistered), whatever their interest.
    #[inline]
    pub const fn registered(&self) -> usize {
        self.registered
    }

    /// How many registered sources are in the epoll set (registered with some
    /// interest); a source with no interest is not.
    #[inline]
    pub const fn watched(&self) -> usize {
        self.watched
    }

    /// How many `epoll_ctl` calls were made since creation, failed ones included: one
    /// per registration (two for one with no interest: the probe), one per interest
    /// change, one per deregistration of a watched source. A pass whose interest did
    /// not change makes none.
    #[inline]
    pub const fn ctl_calls(&self) -> u64 {
        self.ctl_calls
    }

    /// How many times `epoll_wait` was called, `EINTR` retries included.
    #[inline]
    pub const fn waits(&self) -> u64 {
        self.counts.waits()
    }

    /// How many `epoll_wait` calls a signal interrupted (`EINTR`), each retried with
    /// the remaining time.
    #[inline]
    pub const fn interruptions(&self) -> u64 {
        self.counts.interruptions()
    }

    /// The `errno` of the last `epoll_ctl` that failed, including those
    /// [`deregister`](Selector::deregister) ignores (`EBADF`, `ENOENT`): what a
    /// [`SourceError`] does not say.
    #[inline]
    pub fn last_ctl_error(&self) -> Option<Errno> {
        (self.last_errno != 0).then(|| Errno::from_raw(self.last_errno))
    }

    /// The epoll fd, or -1 before it is created (which `epoll_ctl` and `epoll_wait`
    /// refuse with `EBADF`).
    #[inline]
    const fn epfd(&self) -> RawFd {
        self.epfd1 - 1
    }

    /// Remembers that `fd` was added to the set for `token` in this pass.
    fn note_fresh(&mut self, fd: RawFd, token: Token) {
        self.fresh[self.fresh_count % FRESH] = (fd, token);
        self.fresh_count = self.fresh_count.wrapping_add(1);
    }

    /// The slot in `fresh` of the latest addition of `fd` in this pass.
    fn fresh_slot(&self, fd: RawFd) -> Option<usize> {
        (0..self.fresh_count.min(FRESH))
            .map(|k| self.fresh_count.wrapping_sub(1 + k) % FRESH)
            .find(|&i| self.fresh[i].0 == fd)
    }

    /// Whether `fd` was added to the set in this pass for a token other than `token`:
    /// then the kernel's entry for the number is that token's, and `token`'s own
    /// registration of the number is gone (its file was closed).
    fn taken_by_another(&self, fd: RawFd, token: Token) -> bool {
        self.fresh_slot(fd)
            .is_some_and(|i| self.fresh[i].1 != token)
    }

    /// Forgets `token`'s addition of `fd` in this pass, if it is the latest.
    fn forget_fresh(&mut self, fd: RawFd, token: Token) {
        if let Some(i) = self.fresh_slot(fd)
            && self.fresh[i].1 == token
        {
            self.fresh[i].0 = -1;
        }
    }

    /// One `epoll_ctl(op, fd)` with `events` and `token` as the event.
    fn ctl(&mut self, op: libc::c_int, fd: RawFd, events: u32, token: Token) -> Result<(), Errno> {
        self.ctl_calls = self.ctl_calls.wrapping_add(1);
        let mut event = libc::epoll_event {
            events,
            u64: token.to_bits(),
        };
        // SAFETY: `event` is an initialised `epoll_event` on this stack frame, valid
        // for the whole call; the kernel copies it (and ignores it for
        // `EPOLL_CTL_DEL`) and keeps no pointer. `self.epfd()` and `fd` are plain
        // integers to the kernel: a closed, foreign or negative fd is `EBADF` (or
        // another errno), never memory unsafety.
        let rc = unsafe { libc::epoll_ctl(self.epfd(), op, fd, &mut event) };
        match Errno::result(rc) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.last_errno = e as i32;
                Err(e)
            }
        }
    }

    /// The events of the last wait not handed out yet.
    fn left_mut(&mut self) -> &mut [libc::epoll_event] {
        let (taken, got) = (self.taken, self.got);
        self.buf.get_mut(taken..got).unwrap_or_default()
    }

    /// Masks what the last wait found for `token` and is not handed out yet by
    /// `interest`, its interest now (with none, it reports nothing, not even an
    /// error or hang-up: it is not watched).
    fn mask_left(&mut self, token: Token, interest: Interest) {
        let data = token.to_bits();
        let keep = if interest.is_empty() {
            0
        } else {
            !(EPOLLIN | EPOLLPRI | EPOLLOUT) | interest_to_events(interest)
        };
        for event in self.left_mut() {
            // By value: `epoll_event` is packed on x86_64.
            if { event.u64 } == data {
                event.events &= keep;
            }
        }
    }

    /// Pushes the events of the last wait not handed out yet, in the kernel's
    /// order, while `events` has room. Returns how many it pushed.
    fn push_found(&mut self, events: &mut Events<'_>) -> usize {
        let mut count = 0;
        while self.taken < self.got {
            let Some(event) = self.buf.get(self.taken) else {
                break;
            };
            // By value: `epoll_event` is packed on x86_64.
            let (bits, data) = (event.events, event.u64);
            let readiness = events_to_readiness(bits);
            if !events.push(Token::from_bits(data), readiness) {
                break;
            }
            self.taken += 1;
            if !readiness.is_empty() {
                count += 1;
            }
        }
        count
    }

    /// Calls `epoll_wait` for at most `E` events, retrying `EINTR` until the
    /// deadline. Returns how many it wrote into `buf`.
    fn wait(&mut self, timeout: Option<Duration>) -> Result<usize, WaitError> {
        let max = E.min(libc::c_int::MAX as usize);
        let epfd = self.epfd();
        let buf = &mut self.buf;
        let n = self
            .counts
            .wait(timeout, |millis| {
                // SAFETY: `buf` holds `E` initialised `epoll_event`s owned
                // exclusively by `self` (borrowed mutably for the call), and `max` is
                // at least 1 (`ROOM`) and at most `E`, so the kernel writes only
                // inside the array; it keeps no pointer after returning. `epfd` is
                // the epoll fd this selector created (a bad one is `EBADF`, never
                // memory unsafety).
                unsafe { libc::epoll_wait(epfd, buf.as_mut_ptr(), max as libc::c_int, millis) }
            })
            .map_err(WaitError::Os)?;
        Ok(n.min(max))
    }
}

impl<const E: usize> Default for EpollSelector<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const E: usize> Drop for EpollSelector<E> {
    fn drop(&mut self) {
        if self.epfd1 > 0 {
            // SAFETY: `self.epfd()` is the fd `epoll_create1` returned to this selector,
            // which owns it and closes it here only (then forgets it).
            let _ = unsafe { libc::close(self.epfd()) };
            self.epfd1 = 0;
        }
    }
}

impl<const E: usize> fmt::Debug for EpollSelector<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpollSelector")
            .field("capacity", &E)
            .field("epoll_fd", &self.epoll_fd())
            .field("registered", &self.registered)
            .field("watched", &self.watched)
            .field("ctl_calls", &self.ctl_calls)
            .field("waits", &self.waits())
            .field("interruptions", &self.interruptions())
            .field("last_ctl_error", &self.last_ctl_error())
            .finish()
    }
}

impl<const E: usize> Selector for EpollSelector<E> {
    type Source = RawFd;
    type Error = WaitError;

    /// The monotonic clock every std selector reads ([`asyncore_std::monotonic`]).
    fn now(&self) -> Option<Duration> {
        Some(asyncore_std::monotonic())
    }

    /// `EPOLL_CTL_ADD` with `interest` and `token`; with no interest, an
    /// `EPOLL_CTL_ADD` and an `EPOLL_CTL_DEL` at once (the source stays out of the set,
    /// but one epoll cannot watch is refused now). Creates the epoll fd first if
    /// needed.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] for a negative fd, and what the [crate docs](crate)
    /// list (`EPERM` for a regular file or a directory, `EBADF`, `EEXIST`);
    /// [`SourceError::Full`] for `ENOSPC`/`ENOMEM`, or when the epoll fd cannot be
    /// created ([`open`](Self::open) says why).
    fn register(&mut self, token: Token, fd: RawFd, interest: Interest) -> Result<(), SourceError> {
        if fd < 0 {
            return Err(SourceError::Invalid);
        }
        if let Err(e) = self.open() {
            self.last_errno = e.errno().map_or(0, |e| e as i32);
            return Err(SourceError::Full);
        }
        let events = interest_to_events(interest);
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
            .map_err(ctl_error)?;
        if interest.is_empty() {
            // The probe: out again before any wait can see it.
            let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, token);
        } else {
            self.watched += 1;
            self.note_fresh(fd, token);
        }
        self.registered += 1;
        Ok(())
    }

    /// `EPOLL_CTL_ADD` (from no interest), `EPOLL_CTL_MOD` (from some to other) or
    /// `EPOLL_CTL_DEL` (to none); nothing when `was == interest`.
    ///
    /// # Errors
    /// What `epoll_ctl` reported, mapped as in the [crate docs](crate): for a source
    /// closed behind the loop's back, `Invalid` (`EBADF`, or `ENOENT` once the fd
    /// number is reused), and the reactor reports the channel `INVALID`.
    fn reregister(
        &mut self,
        token: Token,
        fd: RawFd,
        was: Interest,
        interest: Interest,
    ) -> Result<(), SourceError> {
        if was == interest {
            return Ok(());
        }
        if !was.remove(interest).is_empty() || interest.is_empty() {
            // Narrower: what the last wait found for it may not pass any more.
            self.mask_left(token, interest);
        }
        if !was.is_empty() && self.taken_by_another(fd, token) {
            // The number now names another channel's file: changing it would
            // change that channel's registration.
            return Err(SourceError::Invalid);
        }
        let events = interest_to_events(interest);
        match (was.is_empty(), interest.is_empty()) {
            (true, _) => {
                self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
                    .map_err(ctl_error)?;
                self.watched += 1;
                self.note_fresh(fd, token);
            }
            (false, false) => self
                .ctl(libc::EPOLL_CTL_MOD, fd, events, token)
                .map_err(ctl_error)?,
            (false, true) => {
                self.ctl(libc::EPOLL_CTL_DEL, fd, 0, token)
                    .map_err(ctl_error)?;
                self.watched = self.watched.saturating_sub(1);
                self.forget_fresh(fd, token);
            }
        }
        Ok(())
    }

    /// `EPOLL_CTL_DEL` if `was` is some interest; any error (`EBADF`, `ENOENT`: the
    /// fd is closed already) is ignored, and kept in
    /// [`last_ctl_error`](Self::last_ctl_error).
    fn deregister(&mut self, token: Token, fd: RawFd, was: Interest) {
        self.registered = self.registered.saturating_sub(1);
        self.mask_left(token, Interest::NONE);
        if !was.is_empty() {
            self.watched = self.watched.saturating_sub(1);
            // Not when the number was added for another channel in this pass: that
            // DEL would remove the other channel's registration (this one's went
            // with its file).
            if fd >= 0 && !self.taken_by_another(fd, token) {
                let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, token);
                self.forget_fresh(fd, token);
            }
        }
    }

    /// One `epoll_wait` for at most `E` events, retrying `EINTR` with the
    /// remaining time; reports them in the kernel's order, as many as fit, and
    /// keeps the rest for [`select_more`](Selector::select_more). With nothing in
    /// the set it sleeps for `timeout` (`None`: forever). Creates the epoll fd
    /// first if needed.
    ///
    /// # Errors
    /// [`WaitError::Create`] if the epoll fd cannot be created, [`WaitError::Os`] if
    /// `epoll_wait` fails.
    fn select(
        &mut self,
        events: &mut Events<'_>,
        timeout: Option<Duration>,
    ) -> Result<usize, WaitError> {
        (self.got, self.taken) = (0, 0);
        self.open()?;
        // A new pass starts: the numbers added in the last one are settled.
        self.fresh_count = 0;
        self.got = self.wait(timeout)?;
        Ok(self.push_found(events))
    }

    /// Hands out more of what the last `epoll_wait` wrote, from where the last
    /// batch stopped; no system call.
    fn select_more(&mut self, events: &mut Events<'_>) -> usize {
        self.push_found(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_mapping() {
        assert_eq!(interest_to_events(Interest::NONE), 0);
        assert_eq!(
            interest_to_events(Interest::READABLE),
            (libc::EPOLLIN | libc::EPOLLPRI) as u32
        );
        assert_eq!(
            interest_to_events(Interest::WRITABLE),
            libc::EPOLLOUT as u32
        );
        assert_eq!(
            interest_to_events(Interest::BOTH),
            (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLOUT) as u32
        );
    }

    #[test]
    fn events_mapping() {
        let cases = [
            (0, Readiness::EMPTY),
            (libc::EPOLLIN, Readiness::READABLE),
            (libc::EPOLLOUT, Readiness::WRITABLE),
            (libc::EPOLLPRI, Readiness::PRIORITY),
            (libc::EPOLLERR, Readiness::ERROR),
            (libc::EPOLLHUP, Readiness::HANGUP),
            (
                libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP,
                Readiness::READABLE | Readiness::WRITABLE | Readiness::ERROR | Readiness::HANGUP,
            ),
            (libc::EPOLLRDHUP, Readiness::ERROR),
            (
                libc::EPOLLIN | libc::EPOLLRDNORM,
                Readiness::READABLE | Readiness::ERROR,
            ),
            (-1, {
                Readiness::READABLE
                    | Readiness::WRITABLE
                    | Readiness::PRIORITY
                    | Readiness::ERROR
                    | Readiness::HANGUP
            }),
        ];
        for (events, expected) in cases {
            let events = events as u32;
            assert_eq!(events_to_readiness(events), expected, "{events:#x}");
        }
        // Every single bit maps to something non-empty, never INVALID, no panic.
        for bit in 0..32 {
            let r = events_to_readiness(1u32 << bit);
            assert!(!r.is_empty() && !r.is_invalid(), "bit {bit}");
        }
    }

    #[test]
    fn ctl_errors() {
        assert_eq!(ctl_error(Errno::ENOSPC), SourceError::Full);
        assert_eq!(ctl_error(Errno::ENOMEM), SourceError::Full);
        for e in [
            Errno::EPERM,
            Errno::EBADF,
            Errno::EEXIST,
            Errno::ENOENT,
            Errno::EINVAL,
            Errno::ELOOP,
        ] {
            assert_eq!(ctl_error(e), SourceError::Invalid, "{e}");
        }
        let err: std::io::Error = WaitError::Os(Errno::EINVAL).into();
        assert_eq!(err.raw_os_error(), Some(Errno::EINVAL as i32));
        assert_eq!(
            WaitError::Create(Errno::EMFILE).errno(),
            Some(Errno::EMFILE)
        );
    }

    #[test]
    fn new_makes_no_fd_and_bookkeeping_needs_none() {
        let mut sel = EpollSelector::<4>::new();
        assert_eq!(sel.epoll_fd(), None);
        assert_eq!(sel.capacity(), 4);
        // A negative fd is refused before anything is created.
        assert_eq!(
            sel.register(Token::new(0, 0), -1, Interest::READABLE),
            Err(SourceError::Invalid)
        );
        assert_eq!((sel.epoll_fd(), sel.ctl_calls()), (None, 0));
        // No change, or a deregistration without interest: no system call at all.
        assert_eq!(
            sel.reregister(Token::new(0, 0), 5, Interest::NONE, Interest::NONE),
            Ok(())
        );
        sel.deregister(Token::new(0, 0), 5, Interest::NONE);
        assert_eq!((sel.epoll_fd(), sel.ctl_calls()), (None, 0));
        assert!(format!("{sel:?}").contains("epoll_fd: None"));
    }

    #[test]
    fn fresh_additions_are_remembered_until_the_next_wait() {
        let mut sel = EpollSelector::<1>::new();
        let t = |i: u32| Token::new(i, 0);
        sel.note_fresh(5, t(0));
        sel.note_fresh(5, t(1));
        assert!(sel.taken_by_another(5, t(0)), "the latest addition decides");
        assert!(!sel.taken_by_another(5, t(1)));
        assert!(!sel.taken_by_another(6, t(0)), "never added");
        sel.forget_fresh(5, t(0));
        assert!(sel.taken_by_another(5, t(0)), "not the latest: kept");
        sel.forget_fresh(5, t(1));
        assert!(
            !sel.taken_by_another(5, t(0)),
            "the older one is the latest now"
        );
        // Only the last FRESH additions are remembered.
        for i in 0..=FRESH as u32 {
            sel.note_fresh(100 + i as RawFd, t(i));
        }
        assert!(!sel.taken_by_another(100, t(99)), "the oldest is forgotten");
        assert!(sel.taken_by_another(101, t(99)));
        assert!(sel.taken_by_another(100 + FRESH as RawFd, t(99)));
        // A wait forgets them all.
        let mut buf = [asyncore_core::Event::EMPTY; 1];
        sel.select(&mut Events::new(&mut buf), Some(Duration::ZERO))
            .unwrap();
        assert!(!sel.taken_by_another(101, t(99)));
    }

    #[test]
    fn static_selector() {
        static SEL: std::sync::Mutex<EpollSelector<4>> =
            std::sync::Mutex::new(EpollSelector::new());
        assert_eq!(SEL.lock().map(|s| s.capacity()).ok(), Some(4));
    }
}
