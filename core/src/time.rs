//! Time: channel deadlines, one-shot timers and the accept back-off, on fixed memory.
//!
//! The original had no timers; every server built on it grew its own scheduler. Here
//! the reactor keeps them:
//!
//! * each channel has one **deadline** (an idle or connect timeout) it can set, move
//!   and cancel through its [`Ctx`](crate::Ctx); when it passes, `handle_timeout`
//!   runs. Deadlines live in the channel's slot and in a min-heap of capacity `N`, so
//!   they never run out and a pass costs nothing for channels without one;
//! * **timers** not tied to a channel, one-shot or at an interval, `T` of them
//!   ([`Reactor::add_timer`](crate::Reactor::add_timer),
//!   [`Reactor::add_interval`](crate::Reactor::add_interval)); a full store is
//!   [`TimerError::Full`]. When one fires, [`Reactor::run`](crate::Reactor::run)
//!   returns [`RunEnd::Timer`](crate::RunEnd::Timer) with its [`TimerId`].
//!
//! The loop waits for the sooner of its timeout and the next deadline; a deadline in
//! the past fires on the next pass; the deadline of a closed channel never fires. Time comes
//! from the selector ([`Selector::now`](crate::Selector::now)): the std backends read
//! the monotonic clock, the mock and the simulator a virtual clock tests advance.

use core::time::Duration;

use heapless::binary_heap::{BinaryHeap, Min};

/// Why a timer could not be set.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TimerError {
    /// The selector has no clock ([`Selector::now`](crate::Selector::now) is `None`).
    NoClock,
    /// Every timer slot is taken.
    Full,
    /// An interval of zero.
    ZeroPeriod,
}

impl core::fmt::Display for TimerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TimerError::NoClock => "the selector has no clock",
            TimerError::Full => "the timer store is full",
            TimerError::ZeroPeriod => "an interval must be longer than zero",
        })
    }
}

impl core::error::Error for TimerError {}

/// Names a one-shot timer, to cancel it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimerId(u32);

impl TimerId {
    /// The number behind it: timers are numbered from 0 in the order they were added.
    pub const fn to_u32(self) -> u32 {
        self.0
    }
}

/// No deadline.
pub(crate) const NEVER: u64 = u64::MAX;

/// Time as stored: nanoseconds, saturating below [`NEVER`].
pub(crate) fn to_nanos(t: Duration) -> u64 {
    u64::try_from(t.as_nanos())
        .unwrap_or(NEVER - 1)
        .min(NEVER - 1)
}

/// The channel deadlines, as a min-heap with lazy deletion: an entry whose time no
/// longer matches its channel's deadline is dropped when it surfaces. When the heap
/// is full it is rebuilt from the slots (the truth), so setting a deadline never
/// fails and the heap never holds more than `N` entries.
pub(crate) struct Deadlines<const N: usize> {
    heap: BinaryHeap<Entry, Min, N>,
    /// A push found the heap full: rebuild from the slots before the next use.
    pub(crate) stale: bool,
}

/// One heap entry: a deadline and the slot of its channel, in 12 bytes (three
/// `u32`s rather than a `u64` and a `u32`, which would pad to 16). It is valid while
/// the channel in that slot has this deadline. Ordered by time, then slot.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    hi: u32,
    lo: u32,
    slot: u32,
}

impl Entry {
    fn new(at: u64, slot: u32) -> Self {
        Entry {
            hi: (at >> 32) as u32,
            lo: at as u32,
            slot,
        }
    }

    fn at(self) -> u64 {
        (u64::from(self.hi) << 32) | u64::from(self.lo)
    }
}

impl<const N: usize> Deadlines<N> {
    /// Adds an entry; a full heap is marked for a rebuild from the slots instead.
    pub(crate) fn push(&mut self, at: u64, slot: u32) {
        if self.heap.push(Entry::new(at, slot)).is_err() {
            self.stale = true;
        }
    }

    pub(crate) const fn new() -> Self {
        Deadlines {
            heap: BinaryHeap::new(),
            stale: false,
        }
    }

    /// The earliest entry (possibly stale): its time and slot.
    pub(crate) fn peek(&self) -> Option<(u64, u32)> {
        self.heap.peek().map(|e| (e.at(), e.slot))
    }

    pub(crate) fn pop(&mut self) {
        self.heap.pop();
    }

    /// Rebuilds from `(deadline, slot)` pairs.
    pub(crate) fn rebuild(&mut self, live: impl Iterator<Item = (u64, u32)>) {
        self.heap.clear();
        for (at, slot) in live {
            // At most one per channel, so at most N: cannot fail.
            let _ = self.heap.push(Entry::new(at, slot));
        }
        self.stale = false;
    }
}

/// The accept back-off: when an accept fails for a reason that passes (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, `ENOMEM`, or an error without a better name), the listener's
/// read interest is withheld until `resume_at`, so a listener that stays readable
/// does not make every pass retry a doomed accept. The delay starts at
/// [`BACKOFF_MIN`](Self::BACKOFF_MIN) and doubles with every failure up to
/// [`BACKOFF_MAX`](Self::BACKOFF_MAX); a successful accept resets it. Resource
/// shortages are process-wide, so one resume time serves every paused channel.
#[derive(Debug)]
pub(crate) struct AcceptBackoff {
    /// When paused channels get their read interest back; 0: none paused (a resume
    /// time is at least one delay after the clock's start, never 0). Zero when
    /// empty, like everything in a reactor, so a `static` one sits in `.bss`.
    resume: u64,
    /// How many times the delay doubled since the last success.
    doublings: u32,
}

impl AcceptBackoff {
    /// The first pause: 10 ms.
    pub(crate) const BACKOFF_MIN: u64 = 10_000_000;
    /// The longest pause: 500 ms.
    pub(crate) const BACKOFF_MAX: u64 = 500_000_000;

    pub(crate) const fn new() -> Self {
        AcceptBackoff {
            resume: 0,
            doublings: 0,
        }
    }

    /// When paused channels get their read interest back ([`NEVER`]: none paused).
    #[inline]
    pub(crate) fn resume_at(&self) -> u64 {
        if self.resume == 0 { NEVER } else { self.resume }
    }

    /// The pause is over.
    #[inline]
    pub(crate) fn resumed(&mut self) {
        self.resume = 0;
    }

    /// The next pause, in nanoseconds.
    fn delay(&self) -> u64 {
        Self::BACKOFF_MIN
            .checked_shl(self.doublings)
            .map_or(Self::BACKOFF_MAX, |d| d.min(Self::BACKOFF_MAX))
    }

    /// A failure at `now`: the pause ends after the current delay, which doubles.
    pub(crate) fn fail(&mut self, now: u64) {
        let at = now.saturating_add(self.delay()).min(NEVER - 1);
        self.resume = self.resume_at().min(at);
        if self.delay() < Self::BACKOFF_MAX {
            self.doublings += 1;
        }
    }

    /// An accept succeeded: the next failure pauses for the shortest time again.
    #[inline]
    pub(crate) fn succeed(&mut self) {
        self.doublings = 0;
    }
}

/// The one-shot timers: few, so a plain array scanned per pass.
pub(crate) struct Timers<const T: usize> {
    /// Due time, identity, period (0: one-shot).
    entries: heapless::Vec<(u64, TimerId, u64), T>,
    next_id: u32,
}

impl<const T: usize> Timers<T> {
    pub(crate) const fn new() -> Self {
        Timers {
            entries: heapless::Vec::new(),
            next_id: 0,
        }
    }

    /// A timer due at `at`, then every `period` nanoseconds after (0: once).
    pub(crate) fn add(&mut self, at: u64, period: u64) -> Result<TimerId, TimerError> {
        let id = TimerId(self.next_id);
        self.entries
            .push((at, id, period))
            .map_err(|_| TimerError::Full)?;
        self.next_id = self.next_id.wrapping_add(1);
        Ok(id)
    }

    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        match self.entries.iter().position(|e| e.1 == id) {
            Some(i) => {
                self.entries.swap_remove(i);
                true
            }
            None => false,
        }
    }

    pub(crate) fn contains(&self, id: TimerId) -> bool {
        self.entries.iter().any(|e| e.1 == id)
    }

    pub(crate) fn next(&self) -> u64 {
        self.entries.iter().map(|e| e.0).min().unwrap_or(NEVER)
    }

    /// The earliest timer due at `now`: a one-shot one is removed, an interval is
    /// due again one period after the time it was due (not after `now`: it does not
    /// drift), skipping the periods already past.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<TimerId> {
        let (i, _) = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.0 <= now)
            .min_by_key(|(_, e)| (e.0, e.1.0))?;
        let (at, id, period) = self.entries[i];
        match (now - at).checked_div(period) {
            // A one-shot timer (period 0) is done.
            None => {
                self.entries.swap_remove(i);
            }
            Some(missed) => {
                self.entries[i].0 = at
                    .saturating_add(period.saturating_mul(missed.saturating_add(1)))
                    .min(NEVER - 1);
            }
        }
        Some(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
