//! Time: channel deadlines, one-shot timers and the accept back-off, on fixed memory.
//!
//! The original had no timers; every server built on it grew its own scheduler. Here
//! the reactor keeps them:
//!
//! * each channel has one **deadline** (an idle or connect timeout) it can set, move
//!   and cancel through its [`Ctx`](crate::Ctx); when it passes, `handle_timeout`
//!   runs. Deadlines live in a min-heap of capacity `N` that knows where each
//!   channel's entry is, so they never run out, moving one is `O(log N)`, and a pass
//!   costs nothing for channels without one;
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

/// The channel deadlines: a binary min-heap of `(time, slot)` entries with, per
/// slot, the position of its entry, so a channel has at most one entry and setting,
/// moving or cancelling its deadline is `O(log N)` in place. The heap is the only
/// record of a deadline (the slot keeps none), holds at most one entry per slot, so
/// `N` entries never run out, and is ordered by time, then slot (a deterministic
/// order for deadlines due together). Zero bytes when empty, like everything in a
/// reactor.
pub(crate) struct Deadlines<const N: usize> {
    heap: [Entry; N],
    /// Per slot: the index of its entry in `heap` plus one; 0 when it has none.
    pos: [u32; N],
    len: u32,
}

/// One heap entry: a deadline and the slot of its channel, in 12 bytes (three
/// `u32`s rather than a `u64` and a `u32`, which would pad to 16). Ordered by time,
/// then slot.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    hi: u32,
    lo: u32,
    slot: u32,
}

impl Entry {
    const EMPTY: Entry = Entry {
        hi: 0,
        lo: 0,
        slot: 0,
    };

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
    pub(crate) const fn new() -> Self {
        Deadlines {
            heap: [Entry::EMPTY; N],
            pos: [0; N],
            len: 0,
        }
    }

    /// The deadline of `slot`, if it has one.
    #[inline]
    pub(crate) fn get(&self, slot: usize) -> Option<u64> {
        let at = self.pos.get(slot).copied().unwrap_or(0);
        let i = at.checked_sub(1)? as usize;
        self.heap.get(i).map(|e| e.at())
    }

    /// Sets the deadline of `slot` (below `N`) to `at`, replacing the one it had.
    pub(crate) fn set(&mut self, slot: usize, at: u64) {
        let Some(&p) = self.pos.get(slot) else {
            return;
        };
        let entry = Entry::new(at, slot as u32);
        if p == 0 {
            let i = self.len as usize;
            let Some(e) = self.heap.get_mut(i) else {
                return; // unreachable: one entry per slot, N slots
            };
            *e = entry;
            self.len += 1;
            self.place(i);
            self.up(i);
        } else {
            let i = p as usize - 1;
            let Some(e) = self.heap.get_mut(i) else {
                return;
            };
            let old = core::mem::replace(e, entry);
            if entry < old {
                self.up(i);
            } else {
                self.down(i);
            }
        }
    }

    /// Removes the deadline of `slot`, if it has one.
    pub(crate) fn cancel(&mut self, slot: usize) {
        let Some(p) = self.pos.get_mut(slot) else {
            return;
        };
        let Some(i) = p.checked_sub(1) else {
            return;
        };
        *p = 0;
        let i = i as usize;
        self.len -= 1;
        let last = self.len as usize;
        if i == last {
            return;
        }
        let (Some(&moved), Some(_)) = (self.heap.get(last), self.heap.get(i)) else {
            return;
        };
        let old = core::mem::replace(&mut self.heap[i], moved);
        self.place(i);
        if moved < old {
            self.up(i);
        } else {
            self.down(i);
        }
    }

    /// The earliest deadline: its time and slot.
    #[inline]
    pub(crate) fn peek(&self) -> Option<(u64, usize)> {
        if self.len == 0 {
            return None;
        }
        self.heap.first().map(|e| (e.at(), e.slot as usize))
    }

    /// Records that the entry at heap index `i` is there.
    #[inline]
    fn place(&mut self, i: usize) {
        if let Some(e) = self.heap.get(i)
            && let Some(p) = self.pos.get_mut(e.slot as usize)
        {
            *p = i as u32 + 1;
        }
    }

    /// Moves the entry at `i` up while it is earlier than its parent.
    fn up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i] >= self.heap[parent] {
                break;
            }
            self.heap.swap(i, parent);
            self.place(i);
            self.place(parent);
            i = parent;
        }
    }

    /// Moves the entry at `i` down while a child is earlier.
    fn down(&mut self, mut i: usize) {
        let len = self.len as usize;
        loop {
            let left = 2 * i + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right] < self.heap[left] {
                right
            } else {
                left
            };
            if self.heap[child] >= self.heap[i] {
                break;
            }
            self.heap.swap(i, child);
            self.place(i);
            self.place(child);
            i = child;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift), so the test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// The heap's invariants: every entry is no earlier than its parent, and each
    /// slot's position leads to its own entry.
    fn check<const N: usize>(d: &Deadlines<N>) {
        let len = d.len as usize;
        for i in 1..len {
            assert!(d.heap[(i - 1) / 2] <= d.heap[i], "heap order at {i}");
        }
        let mut listed = 0;
        for (slot, &p) in d.pos.iter().enumerate() {
            if p != 0 {
                listed += 1;
                assert_eq!(
                    d.heap[p as usize - 1].slot as usize,
                    slot,
                    "position of {slot}"
                );
            }
        }
        assert_eq!(listed, len, "one entry per slot with a deadline");
    }

    #[test]
    fn deadlines_agree_with_a_plain_table() {
        const N: usize = 37;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut d = Deadlines::<N>::new();
        let mut model: [Option<u64>; N] = [None; N];
        for step in 0..20_000 {
            let slot = (rng.next() % N as u64) as usize;
            match rng.next() % 4 {
                // Few distinct times, so ties (ordered by slot) are common.
                0 | 1 => {
                    let at = rng.next() % 64;
                    d.set(slot, at);
                    model[slot] = Some(at);
                }
                2 => {
                    d.cancel(slot);
                    model[slot] = None;
                }
                _ => {
                    let want = model
                        .iter()
                        .enumerate()
                        .filter_map(|(s, at)| at.map(|at| (at, s)))
                        .min();
                    assert_eq!(d.peek(), want, "step {step}");
                    if let Some((_, s)) = want {
                        d.cancel(s);
                        model[s] = None;
                    }
                }
            }
            check(&d);
            for (s, at) in model.iter().enumerate() {
                assert_eq!(d.get(s), *at, "step {step}, slot {s}");
            }
        }
    }

    #[test]
    fn out_of_range_slots_are_ignored() {
        let mut d = Deadlines::<2>::new();
        d.set(2, 5);
        d.cancel(7);
        assert_eq!(d.peek(), None);
        assert_eq!(d.get(9), None);
        d.set(1, u64::MAX - 1);
        assert_eq!(d.peek(), Some((u64::MAX - 1, 1)));
    }
}
