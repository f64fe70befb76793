//! The scripted selector.

use core::time::Duration;

use heapless::Vec;

use crate::{Event, Events, Interest, Readiness, Registrations, Selector, SourceError, Token};

/// The interest one source had in one pass, as recorded by [`MockSelector`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PassRecord {
    /// The pass number, from 1.
    pub pass: u32,
    /// The channel.
    pub token: Token,
    /// Its source.
    pub source: u32,
    /// Its interest.
    pub interest: Interest,
}

/// How many sources a [`MockSelector`] can register, and hold readiness for, unless
/// its type says otherwise (`MockSelector<S>`).
pub const SOURCES: usize = 64;
/// How many [`PassRecord`]s it keeps (the oldest are dropped).
pub const HISTORY: usize = 256;

/// A selector whose readiness the test sets, level-triggered, per source.
///
/// Each wait reports, for every source registered with some interest, in slot order
/// of its token, the source's readiness masked by that interest (error, hang-up and
/// invalid always pass). One-shot readiness set with [`set_once`](Self::set_once) is
/// reported by one wait and then cleared. A wait that reports nothing advances the
/// virtual clock by its timeout.
///
/// It registers up to `S` sources ([`SOURCES`] unless the type says otherwise:
/// [`MockSelector::new`] makes the default one, [`MockSelector::sized`] any). A
/// wait computes the readiness of every source at once; what does not fit in the
/// caller's buffer is kept (one [`Event`] per source at most) and handed out by
/// [`select_more`](Selector::select_more), masked by each source's interest then.
#[derive(Debug, Default)]
pub struct MockSelector<const S: usize = SOURCES> {
    level: Vec<(u32, Readiness), S>,
    once: Vec<(u32, Readiness), S>,
    history: Vec<PassRecord, HISTORY>,
    last: Vec<PassRecord, S>,
    passes: u32,
    waits_with_nothing: u32,
    clock: Duration,
    last_timeout: Option<Option<Duration>>,
    limit: Option<u32>,
    regs: Registrations<u32, S>,
    unknown_deregisters: u32,
    fail_next: bool,
    clockless: bool,
    /// What the last wait found and did not fit (handed out from `pending_at` on).
    pending: Vec<Event, S>,
    pending_at: usize,
}

/// The error of a scripted failed wait.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MockWaitFailed;

impl MockSelector {
    /// Nothing ready; up to [`SOURCES`] sources.
    pub const fn new() -> Self {
        Self::sized()
    }

    /// Nothing ready, and no clock: [`Selector::now`] is `None`, so deadlines and
    /// timers are refused, as on a selector without a clock.
    pub const fn without_clock() -> Self {
        let mut s = Self::new();
        s.clockless = true;
        s
    }
}

impl<const S: usize> MockSelector<S> {
    /// Nothing ready; up to `S` sources (`MockSelector::<256>::sized()`).
    pub const fn sized() -> Self {
        MockSelector {
            level: Vec::new(),
            once: Vec::new(),
            history: Vec::new(),
            last: Vec::new(),
            passes: 0,
            waits_with_nothing: 0,
            clock: Duration::ZERO,
            last_timeout: None,
            limit: None,
            regs: Registrations::new(),
            unknown_deregisters: 0,
            fail_next: false,
            clockless: false,
            pending: Vec::new(),
            pending_at: 0,
        }
    }

    fn put(list: &mut Vec<(u32, Readiness), S>, source: u32, readiness: Readiness) {
        if let Some(e) = list.iter_mut().find(|(s, _)| *s == source) {
            e.1 = readiness;
        } else if !readiness.is_empty() {
            let _ = list.push((source, readiness));
        }
        list.retain(|(_, r)| !r.is_empty());
    }

    /// Sets the level readiness of `source` (it stays until changed).
    pub fn set_ready(&mut self, source: u32, readiness: Readiness) {
        Self::put(&mut self.level, source, readiness);
    }

    /// Clears the readiness of `source`.
    pub fn clear(&mut self, source: u32) {
        Self::put(&mut self.level, source, Readiness::EMPTY);
        Self::put(&mut self.once, source, Readiness::EMPTY);
    }

    /// Adds readiness reported by the next wait only.
    pub fn set_once(&mut self, source: u32, readiness: Readiness) {
        let current = self
            .once
            .iter()
            .find(|(s, _)| *s == source)
            .map_or(Readiness::EMPTY, |e| e.1);
        Self::put(&mut self.once, source, current.add(readiness));
    }

    /// Refuses to register sources ≥ `limit`, like `select(2)` with `FD_SETSIZE`.
    pub fn set_source_limit(&mut self, limit: u32) {
        self.limit = Some(limit);
    }

    /// The next wait fails.
    pub fn fail_next_wait(&mut self) {
        self.fail_next = true;
    }

    /// How many waits ran.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// How many waits reported nothing.
    pub fn idle_waits(&self) -> u32 {
        self.waits_with_nothing
    }

    /// Virtual time: advanced by the timeout of every wait that reports nothing, and
    /// by [`advance`](Self::advance). It is this selector's clock
    /// ([`Selector::now`]).
    pub fn clock(&self) -> Duration {
        self.clock
    }

    /// Moves the virtual clock forward by `d`.
    pub fn advance(&mut self, d: Duration) {
        self.clock += d;
    }

    /// The timeout of the last wait (`None` if no wait ran).
    pub fn last_timeout(&self) -> Option<Option<Duration>> {
        self.last_timeout
    }

    /// The interest set of the last wait, in the order handed over.
    pub fn last_pass(&self) -> &[PassRecord] {
        &self.last
    }

    /// The interest sets of recent waits.
    pub fn history(&self) -> &[PassRecord] {
        &self.history
    }

    /// The interest `source` had in the last wait (`None`: not handed over).
    pub fn last_interest(&self, source: u32) -> Option<Interest> {
        self.last
            .iter()
            .find(|r| r.source == source)
            .map(|r| r.interest)
    }

    /// `deregister` calls for a source that was not registered (a reactor bug).
    pub fn unknown_deregisters(&self) -> u32 {
        self.unknown_deregisters
    }

    /// How many sources are registered.
    pub fn registered(&self) -> u32 {
        self.regs.len() as u32
    }

    /// The interest `source` is registered with now (`None`: not registered).
    pub fn interest(&self, source: u32) -> Option<Interest> {
        self.regs.of_source(source).map(|r| r.interest)
    }

    /// Forgets what the last wait found for the slot of `token` and did not hand
    /// out: its registration changed hands (registered or deregistered since).
    fn forget_pending(&mut self, token: Token) {
        let slot = token.index() as u32;
        for e in self.pending.iter_mut().skip(self.pending_at) {
            if e.slot() == slot {
                *e = Event::new(slot, Readiness::EMPTY);
            }
        }
    }
}

impl<const S: usize> Selector for MockSelector<S> {
    type Source = u32;
    type Error = MockWaitFailed;

    fn now(&self) -> Option<Duration> {
        (!self.clockless).then_some(self.clock)
    }

    fn register(
        &mut self,
        token: Token,
        source: u32,
        interest: Interest,
    ) -> Result<(), SourceError> {
        if let Some(limit) = self.limit
            && source >= limit
        {
            return Err(SourceError::OutOfRange {
                limit: limit as usize,
            });
        }
        self.regs.register(token, source, interest)?;
        self.forget_pending(token);
        Ok(())
    }

    fn reregister(
        &mut self,
        token: Token,
        source: u32,
        _was: Interest,
        interest: Interest,
    ) -> Result<(), SourceError> {
        self.regs.reregister(token, source, interest)
    }

    fn deregister(&mut self, token: Token, _source: u32, _was: Interest) {
        if self.regs.deregister(token) {
            self.forget_pending(token);
        } else {
            self.unknown_deregisters += 1;
        }
    }

    fn select(
        &mut self,
        events: &mut Events<'_>,
        timeout: Option<Duration>,
    ) -> Result<usize, MockWaitFailed> {
        self.pending.clear();
        self.pending_at = 0;
        if core::mem::take(&mut self.fail_next) {
            return Err(MockWaitFailed);
        }
        self.passes += 1;
        self.last_timeout = Some(timeout);
        self.last.clear();
        let mut count = 0;
        for reg in self.regs.watched() {
            let record = PassRecord {
                pass: self.passes,
                token: reg.token,
                source: reg.source,
                interest: reg.interest,
            };
            let _ = self.last.push(record);
            if self.history.is_full() {
                self.history.remove(0);
            }
            let _ = self.history.push(record);
            let level = self
                .level
                .iter()
                .find(|(s, _)| *s == reg.source)
                .map_or(Readiness::EMPTY, |e| e.1);
            let once = self
                .once
                .iter()
                .find(|(s, _)| *s == reg.source)
                .map_or(Readiness::EMPTY, |e| e.1);
            let r = level.add(once).masked_by(reg.interest);
            if r.is_empty() {
                continue;
            }
            if events.push(reg.token, r) {
                count += 1;
            } else {
                // One per registration: it fits.
                let _ = self.pending.push(Event::new(reg.token.index() as u32, r));
            }
        }
        for reg in self.regs.watched() {
            Self::put(&mut self.once, reg.source, Readiness::EMPTY);
        }
        if count + self.pending.len() == 0 {
            self.waits_with_nothing += 1;
            if let Some(t) = timeout {
                self.clock += t;
            }
        }
        Ok(count)
    }

    /// Hands out what the last wait found and did not fit, masked by each source's
    /// interest now (nothing for one not watched any more).
    fn select_more(&mut self, events: &mut Events<'_>) -> usize {
        let mut count = 0;
        while let Some(&e) = self.pending.get(self.pending_at) {
            let slot = e.slot() as usize;
            let r = self
                .regs
                .watched()
                .find(|r| r.token.index() == slot)
                .map_or(Readiness::EMPTY, |r| e.readiness().masked_by(r.interest));
            if !events.push_slot(e.slot(), r) {
                break;
            }
            self.pending_at += 1;
            if !r.is_empty() {
                count += 1;
            }
        }
        count
    }
}
