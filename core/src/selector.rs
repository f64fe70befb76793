//! The `Selector` trait: one wait over many sources.

use core::{fmt, marker::PhantomData, time::Duration};

use crate::{Interest, Readiness, Socket, SourceError, Token};

/// One source handed to a selector for one wait, with the interest its channel has
/// this pass.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Registration<Src> {
    /// The channel.
    pub token: Token,
    /// What to watch.
    pub source: Src,
    /// What to watch it for; never empty.
    pub interest: Interest,
}

/// Waits for readiness on a set of sources: `select(2)`, `poll(2)`, or a mock.
///
/// # Semantics
///
/// * **Level-triggered.** A source that is still ready is reported again on the next
///   wait. Handlers need not drain a socket in one go.
/// * **Spurious readiness is allowed.** A source may be reported ready and then a
///   `recv`/`send`/`accept` would block. Socket operations report that as a
///   would-block outcome, never an error, so a spurious event costs one syscall.
/// * **EINTR** is retried inside the selector with the time that remains; a signal
///   never ends a wait early with an error.
/// * **Interest.** Each [`Registration`] carries a non-empty [`Interest`]; channels
///   with no interest are not handed over at all, and receive no event.
/// * **Readiness bits**, and what the reactor does with them, in this order per
///   channel (liveness is re-checked between steps):
///
/// | bit | select | poll | reactor |
/// |---|---|---|---|
/// | `READABLE` | read set | `POLLIN` | listener: accept → `handle_accepted`; connecting: finish connect; else `handle_read` |
/// | `WRITABLE` | write set | `POLLOUT` | connecting: finish connect; else `handle_write` |
/// | `PRIORITY` | except set | `POLLPRI` | `SO_ERROR` set → `handle_close`; else `handle_expt` (default: read and drop the urgent byte) |
/// | `ERROR` | – | `POLLERR` | `handle_close` (connecting: `handle_connect_failed`) |
/// | `HANGUP` | – | `POLLHUP` | `handle_close` once reads find no more data (connecting: `handle_connect_failed`) |
/// | `INVALID` | fd found bad after `EBADF` | `POLLNVAL` | `handle_close`, nothing else |
///
/// Only `READABLE`/`PRIORITY` (with read interest) and `WRITABLE` (with write
/// interest) may be reported for what was not asked; `ERROR`, `HANGUP` and `INVALID`
/// are always reported.
///
/// # select and poll on Linux
///
/// Both backends go through the same dispatch, so the callbacks agree wherever the
/// kernel lets them. Where it does not (pinned by `tests/conformance.rs`):
///
/// | situation (interest) | poll | select | callbacks |
/// |---|---|---|---|
/// | connect refused | R\|W\|E\|H | R\|W | same: `handle_connect_failed(ECONNREFUSED)` |
/// | peer reset, handler reads | R\|W\|E\|H | R\|W | same: read, close |
/// | peer reset, handler never reads (R) | R\|E\|H | R | poll closes at once; select reports readable until a `recv` sees the reset |
/// | we shut down writing, then peer FIN (W only) | W\|H | W | poll: write, close; select: writable until the channel reads the EOF |
/// | fresh, never-connected socket | W\|H | R\|W | poll: write, close; select: read (`ENOTCONN`), close |
///
/// `HANGUP` therefore also means "never connected", not only "both directions shut".
/// TCP urgent data is `PRIORITY` without `READABLE` on both; an fd closed behind the
/// loop's back is `INVALID` on both (select finds it after `EBADF`).
pub trait Selector {
    /// What is watched: a raw fd, or a mock id.
    type Source: Copy + Eq + fmt::Debug;
    /// Failure of a whole wait.
    type Error: fmt::Debug;

    /// Checks, when a channel is added, that this selector can watch `source`.
    ///
    /// # Errors
    /// [`SourceError::OutOfRange`] for an fd ≥ `FD_SETSIZE` on `select(2)`, and so on.
    fn register(&mut self, source: Self::Source) -> Result<(), SourceError> {
        let _ = source;
        Ok(())
    }

    /// The current time of this selector's monotonic clock, or `None` when it has
    /// none (timers and deadlines then report [`TimerError::NoClock`](crate::TimerError)).
    /// The std backends read `CLOCK_MONOTONIC`; the mock and the simulator a virtual
    /// clock.
    fn now(&self) -> Option<Duration> {
        None
    }

    /// Forgets `source` when its channel is removed.
    fn deregister(&mut self, source: Self::Source) {
        let _ = source;
    }

    /// Waits up to `timeout` (`None`: without limit) for readiness of the
    /// `registrations`, and writes what each one is ready for into the same index of
    /// `ready` (`ready.len() == registrations.len()`; entries start empty). Returns how
    /// many entries are non-empty. With no registrations it just sleeps for `timeout`.
    ///
    /// # Errors
    /// The wait itself failed (not EINTR, which is retried).
    fn select(
        &mut self,
        registrations: &[Registration<Self::Source>],
        ready: &mut [Readiness],
        timeout: Option<Duration>,
    ) -> Result<usize, Self::Error>;
}

/// The I/O a [`Reactor`](crate::Reactor) drives: a selector and the socket type of its
/// channels, which always travel together, so a reactor's type names them once
/// (`Reactor<MockIo, MyDispatcher, 16>`). [`With`] pairs any selector with any socket
/// type that watches the same sources.
pub trait Io {
    /// The socket of every channel.
    type Socket: Socket;
    /// The selector that watches them.
    type Selector: Selector<Source = <Self::Socket as Socket>::Source>;
}

/// A selector `Sel` and a socket type `S` as one [`Io`]: `Reactor<With<PollSelector<64>,
/// MySocket>, D, 64>`. The crates name their usual pairs (`MockIo`, `SimIo`, `StdIo`).
pub struct With<Sel, S>(PhantomData<(Sel, S)>);

impl<Sel, S> fmt::Debug for With<Sel, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("With")
    }
}

impl<Sel, S> Io for With<Sel, S>
where
    Sel: Selector,
    S: Socket<Source = Sel::Source>,
{
    type Socket = S;
    type Selector = Sel;
}
