//! A wait allocates nothing: neither the first pass (entries appended), nor later
//! ones (entries compared, rewritten or truncated), nor an EINTR-free timed wait.
//!
//! Its own test binary: it installs a counting global allocator (per thread, so the
//! harness's other threads cannot disturb the count).

mod common;

use std::{
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use asyncore_core::{Interest, Readiness, Selector};
use asyncore_poll::PollSelector;
use common::*;

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs_during;

#[test]
fn waits_do_not_allocate() {
    // The counter works.
    let (_, n) = allocs_during(|| std::hint::black_box(Box::new(1u64)));
    assert!(n >= 1);

    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..4).map(|_| pair()).collect();
    send_all(pairs[0].1.as_raw_fd(), b"x");
    let mut sel = PollSelector::<8>::new();
    let all = [
        reg(0, pairs[0].0.as_raw_fd(), Interest::READABLE),
        reg(1, pairs[1].0.as_raw_fd(), Interest::BOTH),
        reg(2, pairs[2].0.as_raw_fd(), Interest::READABLE),
        reg(3, pairs[3].0.as_raw_fd(), Interest::WRITABLE),
    ];
    let changed = [all[3], all[0], all[2]];
    let mut ready = [Readiness::EMPTY; 4];

    let (results, n) = allocs_during(|| {
        [
            sel.select(&all, &mut ready, Some(Duration::from_millis(1))),
            sel.select(&all, &mut ready, Some(Duration::ZERO)),
            sel.select(&changed, &mut ready[..3], Some(Duration::ZERO)),
            sel.select(&all[..1], &mut ready[..1], None),
            sel.select(&[], &mut [], Some(Duration::from_micros(10))),
        ]
    });
    assert_eq!(n, 0, "a wait allocated");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}
