//! The monotonic clock of the std backends.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use asyncore_core::Clock;

/// Time since the first reading in this process, from the monotonic clock.
pub(crate) fn monotonic() -> Duration {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// The monotonic clock ([`Clock`] over `CLOCK_MONOTONIC` through `std::time::Instant`),
/// as [`SelectSelector`](crate::SelectSelector) uses it. Its origin is the first
/// reading in the process.
#[derive(Copy, Clone, Debug, Default)]
pub struct StdClock;

impl Clock for StdClock {
    fn now(&self) -> Duration {
        monotonic()
    }
}
