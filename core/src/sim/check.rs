//! An invariant checker over the reactor's [`Trace`]s (see
//! [`Reactor::set_observer`](crate::Reactor::set_observer)).

use super::Maybe;
use crate::{Callback, Token, Trace};

/// How many slot indices a checker tracks unless told otherwise (its `T`).
pub const TRACKED: usize = 256;

/// What went wrong, first violation only.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Violation {
    /// A callback for a channel that is not (or no longer) in the map.
    CallbackOnClosed(Token, Trace),
    /// A token of an earlier channel in the slot reached the channel there now.
    StaleToken(Token, Trace),
    /// `handle_close` ran twice for one channel.
    DoubleClose(Token),
    /// A channel was added into a slot whose channel was never removed.
    SlotReusedWhileLive(Token),
    /// A slot index beyond what the checker tracks.
    Untracked(Token),
    /// An on-change channel's interest changed unannounced (see
    /// [`Trace::StaleInterest`]).
    StaleInterest(Token),
}

#[derive(Copy, Clone, Default)]
struct SlotState {
    live: bool,
    generation: u32,
    closes: u8,
}

/// Checks, event by event: no callback on a closed channel; exactly one `handle_close`
/// at most per channel; a stale token never reaches a live channel; a slot is reused
/// only after its channel left. Feed it every event with [`on_event`](Self::on_trace).
///
/// It tracks slots `0..T` (a reactor of capacity `N` needs `T >= N`; a slot past
/// them is [`Violation::Untracked`]): 8 bytes each, so a firmware with few channels
/// keeps a small one (`TraceChecker<16>`: 128 bytes instead of 2 KiB).
pub struct TraceChecker<const T: usize = TRACKED> {
    slots: [SlotState; T],
    events: u64,
    closes: u64,
    violation: Maybe<Violation>,
}

impl<const T: usize> core::fmt::Debug for TraceChecker<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TraceChecker")
            .field("events", &self.events)
            .field("violation", &self.violation.get())
            .finish_non_exhaustive()
    }
}

impl<const T: usize> Default for TraceChecker<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const T: usize> TraceChecker<T> {
    /// A checker that has seen nothing.
    pub const fn new() -> Self {
        TraceChecker {
            slots: [SlotState {
                live: false,
                generation: 0,
                closes: 0,
            }; T],
            events: 0,
            closes: 0,
            violation: Maybe::None,
        }
    }

    /// Forgets everything, as [`new`](Self::new) builds it, in place: the checker of
    /// a small target can be a `static` (all zero bytes: in `.bss`) cleared for each
    /// run, where building a new one would put its 2 KiB on the stack first.
    pub fn clear(&mut self) {
        for s in self.slots.iter_mut() {
            *s = SlotState::default();
        }
        self.events = 0;
        self.closes = 0;
        self.violation = Maybe::None;
    }

    fn fail(&mut self, v: Violation) {
        if self.violation.is_none() {
            self.violation = Maybe::Some(v);
        }
    }

    /// Checks one event.
    pub fn on_trace(&mut self, token: Token, event: Trace) {
        self.events += 1;
        let Some(slot) = self.slots.get_mut(token.index()) else {
            self.fail(Violation::Untracked(token));
            return;
        };
        match event {
            Trace::Added => {
                if slot.live {
                    self.fail(Violation::SlotReusedWhileLive(token));
                    return;
                }
                *slot = SlotState {
                    live: true,
                    generation: token.generation(),
                    closes: 0,
                };
            }
            Trace::Removed => {
                if !slot.live || slot.generation != token.generation() {
                    self.fail(Violation::CallbackOnClosed(token, event));
                    return;
                }
                slot.live = false;
            }
            Trace::StaleInterest => self.fail(Violation::StaleInterest(token)),
            _ => {
                if !slot.live {
                    self.fail(Violation::CallbackOnClosed(token, event));
                    return;
                }
                if slot.generation != token.generation() {
                    self.fail(Violation::StaleToken(token, event));
                    return;
                }
                if event == Trace::Call(Callback::Close) {
                    slot.closes += 1;
                    self.closes += 1;
                    if slot.closes > 1 {
                        self.fail(Violation::DoubleClose(token));
                    }
                }
            }
        }
    }

    /// The first violation seen.
    pub fn violation(&self) -> Option<Violation> {
        self.violation.get()
    }

    /// Traces seen.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// `handle_close` deliveries seen.
    pub fn closes(&self) -> u64 {
        self.closes
    }

    /// Channels still in the map as far as the events tell.
    pub fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.live).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleared_checker_is_a_new_one() {
        let a = Token::new(3, 0);
        let mut c: TraceChecker = TraceChecker::new();
        c.on_trace(a, Trace::Added);
        c.on_trace(a, Trace::Call(Callback::Close));
        c.on_trace(a, Trace::Call(Callback::Close));
        assert_eq!((c.live(), c.closes()), (1, 2));
        assert!(c.violation().is_some());
        c.clear();
        assert_eq!(
            (c.events(), c.closes(), c.live(), c.violation()),
            (0, 0, 0, None)
        );
        // The slot is free again: adding there is no reuse of a live slot.
        c.on_trace(a, Trace::Added);
        assert_eq!((c.live(), c.violation()), (1, None));
    }

    #[test]
    fn catches_each_violation() {
        let a = Token::new(0, 0);
        let a2 = Token::new(0, 1);
        let mut c: TraceChecker = TraceChecker::new();
        c.on_trace(a, Trace::Added);
        c.on_trace(a, Trace::Call(Callback::Read));
        c.on_trace(a, Trace::Call(Callback::Close));
        c.on_trace(a, Trace::Removed);
        c.on_trace(a2, Trace::Added);
        assert_eq!(c.violation(), None);
        c.on_trace(a, Trace::Call(Callback::Write));
        assert_eq!(
            c.violation(),
            Some(Violation::StaleToken(a, Trace::Call(Callback::Write)))
        );

        let mut c: TraceChecker = TraceChecker::new();
        c.on_trace(a, Trace::Added);
        c.on_trace(a, Trace::Call(Callback::Close));
        c.on_trace(a, Trace::Call(Callback::Close));
        assert_eq!(c.violation(), Some(Violation::DoubleClose(a)));

        let mut c: TraceChecker = TraceChecker::new();
        c.on_trace(a, Trace::Added);
        c.on_trace(a, Trace::Removed);
        c.on_trace(a, Trace::Call(Callback::Read));
        assert_eq!(
            c.violation(),
            Some(Violation::CallbackOnClosed(a, Trace::Call(Callback::Read)))
        );

        let mut c: TraceChecker = TraceChecker::new();
        c.on_trace(a, Trace::Added);
        c.on_trace(a2, Trace::Added);
        assert_eq!(c.violation(), Some(Violation::SlotReusedWhileLive(a2)));
    }
}
