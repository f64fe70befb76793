//! The reactor's side of time: how long a pass may wait, firing channel deadlines and
//! one-shot timers, ending the accept back-off, and the timer API.

use core::time::Duration;

use super::Reactor;
use crate::map::{Flags, MapAccess};
use crate::pool::Lend;
use crate::time::{NEVER, TimerError, TimerId, to_nanos};
use crate::trace::Callback;
use crate::{Dispatcher, Io, Selector, Token};

impl<I: Io, D, const N: usize, const T: usize, P: Lend> Reactor<I, D, N, T, P>
where
    D: Dispatcher<I::Socket>,
{
    /// How long this pass may wait: `timeout`, cut short by the next deadline, timer
    /// or end of the accept back-off (the clock is read only when there is one: a
    /// pass without deadlines reads it once, after the wait).
    pub(super) fn wait_for(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        let next = self
            .next_deadline()
            .min(self.timers.next())
            .min(self.registry.backoff.resume_at());
        match next {
            NEVER => timeout,
            at => match self.registry.selector.now() {
                Some(now) => {
                    let until = Duration::from_nanos(at.saturating_sub(to_nanos(now)));
                    Some(timeout.map_or(until, |t| t.min(until)))
                }
                None => timeout,
            },
        }
    }

    /// Gives paused listeners their read interest back once the accept back-off is
    /// over (they take part from the next pass on).
    pub(super) fn end_backoff(&mut self) {
        let resume = self.registry.backoff.resume_at();
        if resume == NEVER || self.registry.now.is_some_and(|now| now < resume) {
            return;
        }
        self.registry.backoff.resumed();
        for flags in self.map.flags_mut() {
            flags.clear(Flags::READ_PAUSED);
        }
    }

    /// The earliest channel deadline (the heap holds only those of live channels:
    /// a channel's entry leaves with it).
    #[inline]
    fn next_deadline(&self) -> u64 {
        self.registry.deadlines.peek().map_or(NEVER, |(at, _)| at)
    }

    /// Runs `handle_timeout` for every channel whose deadline has passed, earliest
    /// first (slot order among equal times). Returns how many ran.
    pub(super) fn fire_deadlines(&mut self) -> usize {
        let Some(now) = self.registry.now else {
            return 0;
        };
        let mut fired = 0;
        while !self.registry.exit {
            let Some((at, slot)) = self.registry.deadlines.peek() else {
                break;
            };
            if at > now {
                break;
            }
            self.registry.deadlines.cancel(slot);
            let Some((token, _)) = self.map.occupant(slot as u32) else {
                continue; // never: an entry leaves with its channel
            };
            fired += 1;
            self.call(token, Callback::Timeout, |d, ctx| d.handle_timeout(ctx));
        }
        fired
    }

    /// Moves due one-shot timers to the fired list.
    pub(super) fn fire_timers(&mut self) {
        if self.timers.len() == 0 {
            // Nothing pending: no need to read the clock.
            return;
        }
        let Some(now) = self.registry.selector.now().map(to_nanos) else {
            return;
        };
        while let Some(id) = self.timers.pop_due(now) {
            // An interval not yet reported since it last fired is reported once.
            // Cannot fail: at most T distinct timers exist.
            if !self.fired.contains(&id) {
                let _ = self.fired.push(id);
            }
        }
    }

    /// The selector's clock now (`None`: it has none).
    pub fn now(&self) -> Option<Duration> {
        self.registry.selector.now()
    }

    /// Sets (`Some`) or cancels (`None`) the deadline of a channel, as
    /// [`Ctx::set_deadline`](crate::Ctx::set_deadline) does from inside. Returns `Ok(false)` for a stale token.
    ///
    /// # Errors
    /// [`TimerError::NoClock`] when the selector has no clock.
    pub fn set_deadline(&mut self, token: Token, at: Option<Duration>) -> Result<bool, TimerError> {
        if self.registry.selector.now().is_none() {
            return Err(TimerError::NoClock);
        }
        if self.map.channel_mut(token).is_none() {
            return Ok(false);
        }
        self.registry.set_deadline(token, at.map(to_nanos));
        Ok(true)
    }

    /// Adds a one-shot timer `after` from now, not tied to any channel, and returns
    /// its identity. When it fires, [`run`](Self::run) returns
    /// [`RunEnd::Timer`](crate::RunEnd::Timer) with that identity (after
    /// [`poll_once`](Self::poll_once), see [`take_fired_timer`](Self::take_fired_timer)).
    ///
    /// # Errors
    /// [`TimerError::Full`] when `T` timers are pending; [`TimerError::NoClock`].
    pub fn add_timer(&mut self, after: Duration) -> Result<TimerId, TimerError> {
        self.add_timer_every(after, 0)
    }

    /// Adds a timer that fires every `period`, the first time `period` from now. It
    /// does not drift: each firing is due one period after the previous one was due,
    /// however late the loop got to it (periods the loop slept through entirely fire
    /// once, not once each). It reports like a one-shot timer (see
    /// [`add_timer`](Self::add_timer)), once per pass at most, until cancelled.
    ///
    /// # Errors
    /// [`TimerError::ZeroPeriod`], [`TimerError::Full`], [`TimerError::NoClock`].
    pub fn add_interval(&mut self, period: Duration) -> Result<TimerId, TimerError> {
        if period.is_zero() {
            return Err(TimerError::ZeroPeriod);
        }
        self.add_timer_every(period, to_nanos(period))
    }

    fn add_timer_every(&mut self, after: Duration, period: u64) -> Result<TimerId, TimerError> {
        let now = self.registry.selector.now().ok_or(TimerError::NoClock)?;
        // Timers fired and not yet reported still count: their identities are
        // reported later.
        let reported_later = self
            .fired
            .iter()
            .filter(|id| !self.timers.contains(**id))
            .count();
        if self.timers.len() + reported_later >= T {
            return Err(TimerError::Full);
        }
        self.timers.add(to_nanos(now.saturating_add(after)), period)
    }

    /// Cancels a pending timer (one-shot or interval); `false` if it already fired
    /// (one-shot), was cancelled or never was.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// A fired timer not yet reported, oldest first.
    pub fn take_fired_timer(&mut self) -> Option<TimerId> {
        if self.fired.is_empty() {
            None
        } else {
            Some(self.fired.remove(0))
        }
    }
}
