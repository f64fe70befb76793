//! asyncore for Rust, with batteries for std: Python's `asyncore`/`asynchat` dispatch
//! model over `select(2)`, `poll(2)` or `epoll(7)`.
//!
//! This crate re-exports the `no_std` core ([`asyncore_core`]: [`Reactor`],
//! [`Dispatcher`], [`Ctx`], [`chat`], [`SendBuffer`], [`echo`]..., and with the
//! features `mock`, `sim`, `fuzz` the core's test machinery), the std
//! sockets and the `select(2)` selector ([`asyncore_std`]), the `poll(2)` selector
//! ([`asyncore_poll`]), the `epoll(7)` selector ([`asyncore_epoll`]), and adds the
//! original's `use_poll` choice made at run time, widened to three: [`AnySelector`]
//! and [`Backend`].
//!
//! ```no_run
//! use std::time::Duration;
//! use asyncore::{Backend, Echo, StdReactor, StdSocket, AnySelector};
//!
//! // The original's `loop(timeout=30.0, use_poll=True, count=None)`, on an echo server.
//! let mut reactor: StdReactor<Echo<StdSocket, 4096>, 64> =
//!     StdReactor::new(AnySelector::new(Backend::Poll));
//! let listener = StdSocket::tcp_listener("127.0.0.1:8080".parse()?, 128)?;
//! reactor.add(listener, Echo::listener(63)).map_err(|e| e.kind)?;
//! reactor.run(Some(Duration::from_secs(30)), None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs, missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks)]

use core::fmt;
use core::time::Duration;
use std::os::fd::RawFd;
use std::str::FromStr;

pub use asyncore_core::echo::{Echo, EchoConn, EchoListener};
pub use asyncore_core::*;
pub use asyncore_epoll::{self, EpollIo, EpollSelector};
pub use asyncore_poll::{self, PollIo, PollSelector};
pub use asyncore_std::{
    self, Addr, Child, FD_SETSIZE, MAX_CHILDREN, MAX_SIGNAL, SelectIo, SelectSelector, SpawnError,
    Spawned, StdSocket, UnixAddr, Waker,
};

/// Which system call waits: the original's `use_poll` flag, plus `epoll(7)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// `select(2)`: fds must stay below [`FD_SETSIZE`].
    #[default]
    Select,
    /// `poll(2)`: no fd limit; reports hang-up, error and invalid fds.
    Poll,
    /// `epoll(7)`: no fd limit, a wait costs O(ready); reports hang-up and error, but
    /// an fd closed behind the loop's back silently leaves the set, and regular files
    /// cannot be watched (see [`asyncore_epoll`]).
    Epoll,
}

impl FromStr for Backend {
    type Err = UnknownBackend;
    fn from_str(s: &str) -> Result<Self, UnknownBackend> {
        match s {
            "select" => Ok(Backend::Select),
            "poll" => Ok(Backend::Poll),
            "epoll" => Ok(Backend::Epoll),
            _ => Err(UnknownBackend),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Select => "select",
            Backend::Poll => "poll",
            Backend::Epoll => "epoll",
        })
    }
}

/// A backend name other than `select`, `poll` or `epoll`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct UnknownBackend;

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown backend (expected `select`, `poll` or `epoll`)")
    }
}

impl std::error::Error for UnknownBackend {}

/// A selector chosen at run time: `select(2)`, or `poll(2)` or `epoll(7)` with room
/// for `N` fds (poll: a `pollfd` per slot; epoll: up to `N` events per wait, so one
/// wait can report every channel).
///
/// It is as large as its largest variant (`select(2)`'s fd sets and per-fd tokens
/// are about 8.5 KiB; `PollSelector<N>` about 13 bytes per slot; `EpollSelector<N>`
/// 12 or 16 bytes per slot, its `epoll_event`s); it lives inside the reactor, in static
/// memory, so no variant is boxed. [`new`](Self::new) is `const` for every backend
/// (the epoll fd is made on first use), so a reactor over it can be a `static`.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AnySelector<const N: usize> {
    /// `select(2)`.
    Select(SelectSelector),
    /// `poll(2)`.
    Poll(PollSelector<N>),
    /// `epoll(7)`.
    Epoll(EpollSelector<N>),
}

impl<const N: usize> AnySelector<N> {
    /// The selector for `backend`. No system call: the epoll fd is made by the first
    /// registration or wait.
    pub const fn new(backend: Backend) -> Self {
        match backend {
            Backend::Select => AnySelector::Select(SelectSelector::new()),
            Backend::Poll => AnySelector::Poll(PollSelector::new()),
            Backend::Epoll => AnySelector::Epoll(EpollSelector::new()),
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            AnySelector::Select(_) => Backend::Select,
            AnySelector::Poll(_) => Backend::Poll,
            AnySelector::Epoll(_) => Backend::Epoll,
        }
    }
}

/// Why an [`AnySelector`] wait failed.
#[derive(Debug)]
pub enum AnyWaitError {
    /// From `select(2)`.
    Select(<SelectSelector as Selector>::Error),
    /// From `poll(2)`.
    Poll(<PollSelector<0> as Selector>::Error),
    /// From `epoll(7)`: creating the epoll fd, or `epoll_wait`.
    Epoll(asyncore_epoll::WaitError),
}

impl fmt::Display for AnyWaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyWaitError::Select(e) => write!(f, "select failed: {e:?}"),
            AnyWaitError::Poll(e) => write!(f, "poll failed: {e:?}"),
            AnyWaitError::Epoll(e) => write!(f, "epoll failed: {e}"),
        }
    }
}

impl std::error::Error for AnyWaitError {}

impl<const N: usize> Selector for AnySelector<N> {
    type Source = RawFd;
    type Error = AnyWaitError;

    fn now(&self) -> Option<Duration> {
        match self {
            AnySelector::Select(s) => s.now(),
            AnySelector::Poll(s) => s.now(),
            AnySelector::Epoll(s) => s.now(),
        }
    }

    fn register(
        &mut self,
        token: Token,
        source: RawFd,
        interest: Interest,
    ) -> Result<(), SourceError> {
        match self {
            AnySelector::Select(s) => s.register(token, source, interest),
            AnySelector::Poll(s) => s.register(token, source, interest),
            AnySelector::Epoll(s) => s.register(token, source, interest),
        }
    }

    fn reregister(
        &mut self,
        token: Token,
        source: RawFd,
        was: Interest,
        interest: Interest,
    ) -> Result<(), SourceError> {
        match self {
            AnySelector::Select(s) => s.reregister(token, source, was, interest),
            AnySelector::Poll(s) => s.reregister(token, source, was, interest),
            AnySelector::Epoll(s) => s.reregister(token, source, was, interest),
        }
    }

    fn deregister(&mut self, token: Token, source: RawFd, was: Interest) {
        match self {
            AnySelector::Select(s) => s.deregister(token, source, was),
            AnySelector::Poll(s) => s.deregister(token, source, was),
            AnySelector::Epoll(s) => s.deregister(token, source, was),
        }
    }

    fn select(
        &mut self,
        events: &mut Events<'_>,
        timeout: Option<Duration>,
    ) -> Result<usize, AnyWaitError> {
        match self {
            AnySelector::Select(s) => s.select(events, timeout).map_err(AnyWaitError::Select),
            AnySelector::Poll(s) => s.select(events, timeout).map_err(AnyWaitError::Poll),
            AnySelector::Epoll(s) => s.select(events, timeout).map_err(AnyWaitError::Epoll),
        }
    }

    fn select_more(&mut self, events: &mut Events<'_>) -> usize {
        match self {
            AnySelector::Select(s) => s.select_more(events),
            AnySelector::Poll(s) => s.select_more(events),
            AnySelector::Epoll(s) => s.select_more(events),
        }
    }
}

/// A reactor over real fds with the backend chosen at run time; `P` is the buffer
/// pool it lends its channels ([`BufferPool`], none by default).
pub type StdReactor<D, const N: usize, P = NoPool> = Reactor<StdIo<N>, D, N, 4, P>;

/// [`AnySelector`] over [`StdSocket`]s, as one [`Io`].
pub type StdIo<const N: usize> = With<AnySelector<N>, StdSocket>;
