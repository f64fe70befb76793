//! Creating the epoll fd, registering, changing interest, deregistering and waiting
//! allocate nothing.
//!
//! Its own test binary: it installs a counting global allocator (per thread, so the
//! harness's other threads cannot disturb the count).

mod common;

use common::*;

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs_during;

#[test]
fn waits_do_not_allocate() {
    let sel = cases::waits_do_not_allocate::<Sel>(|f| allocs_during(f).1);
    assert_eq!((sel.registered(), sel.watched()), (0, 0));
}
