//! The `Selector` trait: one wait over many sources.

use core::{fmt, marker::PhantomData, time::Duration};

use crate::{Interest, Readiness, Socket, SourceError, Token};

/// How many events a [`Reactor`](crate::Reactor) dispatches per batch: its event
/// buffer is `EVENT_BATCH` [`Event`]s (4 bytes each), fixed, whatever its capacity
/// `N`, so a channel costs no event bytes. A wait that finds more ready channels is
/// dispatched in several batches within the same pass (see
/// [`Selector::select_more`]). 32 events are 128 bytes; a further batch costs
/// about 20 instructions, under one per event (callgrind, the mock, 1,024 ready:
/// 109.2 instructions per event with batches of 32, 108.6 with 64, 110.4 with 16).
pub const EVENT_BATCH: usize = 32;

/// What one wait found for one channel: the slot of its token
/// ([`Token::index`]) and what it is ready for. Four bytes, the slot in the low 24
/// bits and [`Readiness::bits`] in the high 8: a reactor keeps a fixed batch of them
/// ([`EVENT_BATCH`]), and resolves the slot to the channel there now (a slot's
/// registration always belongs to its current channel: a channel is deregistered
/// when it leaves, and its slot is not reused within the pass).
///
/// A slot is always below [`MAX_SLOTS`](Self::MAX_SLOTS): the slots of a reactor's
/// tokens are below its capacity `N`, which may not exceed it (a reactor with more
/// channels does not compile).
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct Event(u32);

const _: () = assert!(core::mem::size_of::<Event>() == 4);

impl Event {
    /// How many slots an event can name (2^24): the most channels a
    /// [`Reactor`](crate::Reactor) may have. A reactor of a larger capacity `N` does
    /// not compile:
    ///
    /// ```compile_fail,E0080
    /// use asyncore_core::echo::Echo;
    /// use asyncore_core::mock::{MockIo, MockSelector, MockSocket};
    /// use asyncore_core::{Event, Reactor};
    ///
    /// const N: usize = Event::MAX_SLOTS + 1;
    /// let server = Reactor::<MockIo, Echo<MockSocket, 16>, N>::new(MockSelector::new());
    /// # drop(server);
    /// ```
    pub const MAX_SLOTS: usize = 1 << SLOT_BITS;

    /// No readiness: what an unused entry holds.
    pub const EMPTY: Event = Event::new(0, Readiness::EMPTY);

    /// `readiness` for the channel in `slot`. The slot must be below
    /// [`MAX_SLOTS`](Self::MAX_SLOTS), as every slot of a reactor's tokens is; only
    /// its low 24 bits are kept, so a larger one names another slot but never
    /// alters the readiness.
    #[inline]
    pub const fn new(slot: u32, readiness: Readiness) -> Event {
        Event(slot & SLOT_MASK | (readiness.bits() as u32) << SLOT_BITS)
    }

    /// The slot of the channel's token ([`Token::index`]).
    #[inline]
    pub const fn slot(self) -> u32 {
        self.0 & SLOT_MASK
    }

    /// What it is ready for.
    #[inline]
    pub const fn readiness(self) -> Readiness {
        Readiness::from_bits_truncate((self.0 >> SLOT_BITS) as u8)
    }
}

/// The bits of an [`Event`] that hold the slot; the readiness is above them.
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("slot", &self.slot())
            .field("readiness", &self.readiness())
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Event {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Event {{ slot: {=u32}, readiness: {} }}",
            self.slot(),
            self.readiness()
        );
    }
}

/// Where a selector writes what one wait found: a buffer of fixed capacity that the
/// caller lends (a reactor lends [`EVENT_BATCH`] entries, whatever its number of
/// channels). When it fills up, the selector keeps the rest of the wait's results
/// and hands them out with [`Selector::select_more`].
#[derive(Debug)]
pub struct Events<'a> {
    buf: &'a mut [Event],
    len: usize,
}

impl<'a> Events<'a> {
    /// Empty, writing into `buf`.
    pub fn new(buf: &'a mut [Event]) -> Self {
        Events { buf, len: 0 }
    }

    /// Reports `readiness` for the channel `token`. Empty readiness is not recorded
    /// (and counts as done). Returns `false`, recording nothing, when the buffer is
    /// full: a selector then stops and keeps the rest of its wait's results for
    /// [`Selector::select_more`].
    #[inline]
    pub fn push(&mut self, token: Token, readiness: Readiness) -> bool {
        self.push_slot(token.index() as u32, readiness)
    }

    /// As [`push`](Self::push), for a selector that knows the slot of the token
    /// (its [`Token::index`]) rather than the token. The slot is one of a registered
    /// token's, so below [`Event::MAX_SLOTS`] (see [`Event::new`]).
    #[inline]
    pub fn push_slot(&mut self, slot: u32, readiness: Readiness) -> bool {
        if readiness.is_empty() {
            return true;
        }
        match self.buf.get_mut(self.len) {
            Some(entry) => {
                *entry = Event::new(slot, readiness);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// How many events were recorded.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none were.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether no more fit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// How many fit in all.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The events recorded so far, in the order they were pushed.
    #[inline]
    pub fn as_slice(&self) -> &[Event] {
        &self.buf[..self.len]
    }
}

/// Waits for readiness on a set of sources: `select(2)`, `poll(2)`, `epoll(7)`, or a
/// mock.
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
/// * **Registrations persist.** A channel's source is registered once, when it is
///   added ([`register`](Selector::register)), with the token that names it in
///   events; its interest changes only through [`reregister`](Selector::reregister)
///   (the reactor calls it when, and only when, the interest differs from what is
///   registered); [`deregister`](Selector::deregister) forgets it when the channel
///   leaves. A wait reports events for registered sources only, so its cost can be
///   O(ready) (`epoll`) rather than O(registered) (`select`, `poll`).
/// * **Interest.** A source registered with no interest ([`Interest::NONE`]) is not
///   watched at all and receives no event, not even an error or hang-up.
/// * **Batches.** One wait may find more ready sources than the caller's
///   [`Events`] holds: [`select`](Selector::select) pushes what fits and keeps the
///   rest, [`select_more`](Selector::select_more) hands it out, batch after batch,
///   without waiting again; each source is reported once per wait. A reactor's
///   buffer is [`EVENT_BATCH`] events, whatever its number of channels.
/// * **Readiness bits**, and what the reactor does with them, in this order per
///   channel (liveness is re-checked between steps):
///
/// | bit | select | poll | epoll | reactor |
/// |---|---|---|---|---|
/// | `READABLE` | read set | `POLLIN` | `EPOLLIN` | listener: accept → `handle_accepted`; connecting: finish connect; else `handle_read` |
/// | `WRITABLE` | write set | `POLLOUT` | `EPOLLOUT` | connecting: finish connect; else `handle_write` |
/// | `PRIORITY` | except set | `POLLPRI` | `EPOLLPRI` | `SO_ERROR` set → `handle_close`; else `handle_expt` (default: read and drop the urgent byte) |
/// | `ERROR` | – | `POLLERR` | `EPOLLERR` | `handle_close` (connecting: `handle_connect_failed`) |
/// | `HANGUP` | – | `POLLHUP` | `EPOLLHUP` | `handle_close` once reads find no more data (connecting: `handle_connect_failed`) |
/// | `INVALID` | fd found bad after `EBADF` | `POLLNVAL` | – (the reactor's own: a source gone, a change refused) | `handle_close`, nothing else |
///
/// Only `READABLE`/`PRIORITY` (with read interest) and `WRITABLE` (with write
/// interest) may be reported for what was not asked; `ERROR`, `HANGUP` and `INVALID`
/// are always reported.
///
/// # select, poll and epoll on Linux
///
/// The backends go through the same dispatch, so the callbacks agree wherever the
/// kernel lets them. Where it does not (pinned by `tests/conformance.rs`; epoll
/// reports what poll reports, both asking the socket's own poll routine):
///
/// | situation (interest) | poll, epoll | select | callbacks |
/// |---|---|---|---|
/// | connect refused | R\|W\|E\|H | R\|W | same: `handle_connect_failed(ECONNREFUSED)` |
/// | peer reset, handler reads | R\|W\|E\|H | R\|W | same: read, close |
/// | peer reset, handler never reads (R) | R\|E\|H | R | poll and epoll close at once; select reports readable until a `recv` sees the reset |
/// | we shut down writing, then peer FIN (W only) | W\|H | W | poll, epoll: write, close; select: writable until the channel reads the EOF |
/// | fresh, never-connected socket | W\|H | R\|W | poll, epoll: write, close; select: read (`ENOTCONN`), close |
///
/// `HANGUP` therefore also means "never connected", not only "both directions shut".
/// TCP urgent data is `PRIORITY` without `READABLE` on all three.
///
/// What only epoll does differently (the kernel's choice, not ours):
///
/// | situation | select, poll | epoll |
/// |---|---|---|
/// | an fd closed behind the loop's back | `INVALID` (select after `EBADF`, poll `POLLNVAL`): `handle_close` | nothing: closing the file took it out of the set; the channel stays silent until its interest changes (`epoll_ctl` fails: `INVALID`, `handle_close`) or it is closed |
/// | a regular file or a directory | always readable and writable | refused at `add` (`EPERM`: `Rejected(Invalid)`) |
/// | dispatch order | fd order (select), slot order (poll) | the kernel's ready list |
///
/// A handler that closes its socket itself is found by the reactor, not the kernel:
/// `INVALID` on every backend.
pub trait Selector {
    /// What is watched: a raw fd, or a mock id.
    type Source: Copy + Eq + fmt::Debug;
    /// Failure of a whole wait.
    type Error: fmt::Debug;

    /// Starts watching `source`, the source of the channel `token`, for `interest`
    /// (which may be empty: registered, not watched). Called when a channel is added,
    /// before it takes part in any wait; every later event for the source carries
    /// `token`.
    ///
    /// # Errors
    /// The selector cannot watch `source`: [`SourceError::OutOfRange`] for an fd ≥
    /// `FD_SETSIZE` on `select(2)`, [`SourceError::Full`] when its storage is full,
    /// [`SourceError::Invalid`] for a source it refuses. Nothing stays registered.
    fn register(
        &mut self,
        token: Token,
        source: Self::Source,
        interest: Interest,
    ) -> Result<(), SourceError>;

    /// Changes what the registered `source` of `token` is watched for, from `was` to
    /// `interest` (the reactor calls it only when they differ).
    ///
    /// # Errors
    /// The change could not be made (`epoll_ctl` refused it, e.g. the fd was closed
    /// behind the loop's back): the reactor then treats the channel as
    /// [`INVALID`](Readiness::INVALID), deregisters it and closes it.
    fn reregister(
        &mut self,
        token: Token,
        source: Self::Source,
        was: Interest,
        interest: Interest,
    ) -> Result<(), SourceError>;

    /// Forgets the registered `source` of `token`, which was watched for `was`. Called
    /// once per successful [`register`](Self::register), when the channel leaves the
    /// map; the source may already be closed.
    fn deregister(&mut self, token: Token, source: Self::Source, was: Interest);

    /// The current time of this selector's monotonic clock, or `None` when it has
    /// none (timers and deadlines then report [`TimerError::NoClock`](crate::TimerError)).
    /// The std backends read `CLOCK_MONOTONIC`; the mock and the simulator a virtual
    /// clock.
    fn now(&self) -> Option<Duration> {
        None
    }

    /// Waits up to `timeout` (`None`: without limit) until a registered source is
    /// ready, and pushes one [`Event`] per ready source into `events` (readable,
    /// priority and writable bits only within the source's interest; error, hang-up
    /// and invalid always): what fits. When `events` fills up, the selector keeps
    /// the rest of this wait's results, for [`select_more`](Self::select_more);
    /// whatever the last wait left is forgotten first. Returns how many it pushed.
    /// With nothing watched it just sleeps for `timeout`.
    ///
    /// # Errors
    /// The wait itself failed (not EINTR, which is retried).
    fn select(
        &mut self,
        events: &mut Events<'_>,
        timeout: Option<Duration>,
    ) -> Result<usize, Self::Error>;

    /// Pushes more of what the last [`select`](Self::select) found, without
    /// waiting, after `events` filled up: into `events` (usually emptied since),
    /// again what fits, keeping the rest for the next call. Returns how many it
    /// pushed; 0 when nothing is left (or no wait ran). Each source the wait found
    /// ready is reported once per wait, by `select` or by one `select_more`; a new
    /// `select` starts over and forgets what was left.
    ///
    /// The readiness pushed is masked by the source's interest as it is now, not as
    /// it was at the wait (error, hang-up and invalid pass, unless the source has
    /// no interest now: it is not watched, and reports nothing): a source
    /// deregistered since reports nothing, and so does one registered since (its
    /// registration was not part of the wait).
    ///
    /// The provided method pushes nothing: right for a selector whose wait never
    /// finds more than its callers' buffers hold.
    fn select_more(&mut self, events: &mut Events<'_>) -> usize {
        let _ = events;
        0
    }
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

#[cfg(test)]
mod tests {
    use std::format;

    use super::*;

    const ALL: Readiness = Readiness::from_bits_truncate(0xff);

    #[test]
    fn an_event_keeps_its_slot_and_readiness() {
        for slot in [0, 1, 63, 1 << 16, (Event::MAX_SLOTS - 1) as u32] {
            for readiness in [
                Readiness::EMPTY,
                Readiness::READABLE,
                Readiness::INVALID,
                ALL,
            ] {
                let e = Event::new(slot, readiness);
                assert_eq!((e.slot(), e.readiness()), (slot, readiness));
            }
        }
        assert_eq!(Event::EMPTY, Event::new(0, Readiness::EMPTY));
        assert_eq!(
            Event::EMPTY.0,
            0,
            "all zero bytes: a static reactor stays in .bss"
        );
    }

    #[test]
    fn a_slot_out_of_range_never_alters_the_readiness() {
        let e = Event::new(u32::MAX, Readiness::WRITABLE);
        assert_eq!(e.readiness(), Readiness::WRITABLE);
        assert_eq!(e.slot(), (Event::MAX_SLOTS - 1) as u32);
        assert_eq!(
            Event::new(Event::MAX_SLOTS as u32 + 5, Readiness::EMPTY).slot(),
            5
        );
    }

    #[test]
    fn debug_shows_the_fields() {
        assert_eq!(
            format!(
                "{:?}",
                Event::new(7, Readiness::READABLE | Readiness::HANGUP)
            ),
            "Event { slot: 7, readiness: READABLE | HANGUP }"
        );
    }
}
