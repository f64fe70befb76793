//! Creating the epoll fd, registering, changing interest, deregistering and waiting
//! allocate nothing.
//!
//! Its own test binary: it installs a counting global allocator (per thread, so the
//! harness's other threads cannot disturb the count).

mod common;

use std::{
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use asyncore_core::{Event, Events, Interest, Selector, Token};
use asyncore_epoll::EpollSelector;
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
    let mut sel = EpollSelector::<8>::new();
    let fd = |i: usize| pairs[i].0.as_raw_fd();
    let t = |i: u32| Token::new(i, 0);
    let mut buf = [Event::EMPTY; 8];

    let (results, n) = allocs_during(|| {
        [
            // The first register creates the epoll fd.
            sel.register(t(0), fd(0), Interest::READABLE).is_ok(),
            sel.register(t(1), fd(1), Interest::BOTH).is_ok(),
            sel.register(t(2), fd(2), Interest::NONE).is_ok(),
            sel.register(t(3), fd(3), Interest::WRITABLE).is_ok(),
            sel.select(&mut Events::new(&mut buf), Some(Duration::from_millis(1)))
                .is_ok_and(|n| n == 3),
            sel.select(&mut Events::new(&mut buf), Some(Duration::ZERO))
                .is_ok(),
            sel.reregister(t(1), fd(1), Interest::BOTH, Interest::NONE)
                .is_ok(),
            sel.reregister(t(2), fd(2), Interest::NONE, Interest::READABLE)
                .is_ok(),
            sel.reregister(t(3), fd(3), Interest::WRITABLE, Interest::BOTH)
                .is_ok(),
            {
                sel.deregister(t(2), fd(2), Interest::READABLE);
                true
            },
            sel.select(&mut Events::new(&mut buf), Some(Duration::ZERO))
                .is_ok(),
            sel.select(&mut Events::new(&mut buf[..1]), None).is_ok(),
            // A refusal allocates nothing either.
            sel.register(t(4), fd(0), Interest::READABLE).is_err(),
            {
                sel.deregister(t(0), fd(0), Interest::READABLE);
                sel.deregister(t(3), fd(3), Interest::BOTH);
                sel.deregister(t(1), fd(1), Interest::NONE);
                true
            },
            sel.select(&mut Events::new(&mut buf), Some(Duration::from_micros(10)))
                .is_ok(),
        ]
    });
    assert_eq!(n, 0, "registering or waiting allocated");
    assert!(results.iter().all(|&ok| ok), "{results:?}");
    assert_eq!((sel.registered(), sel.watched()), (0, 0));
}
