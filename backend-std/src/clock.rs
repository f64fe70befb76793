//! The monotonic clock of the std selectors.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Time since the first reading in this process, from the monotonic clock
/// (`CLOCK_MONOTONIC`, through `std::time::Instant`): what every std selector
/// answers to [`Selector::now`](asyncore_core::Selector::now), so deadlines and timers
/// agree whichever selector a program picks.
pub fn monotonic() -> Duration {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}
