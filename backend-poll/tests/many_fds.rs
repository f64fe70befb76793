//! More than 1,024 fds in one wait: `poll(2)` has no `FD_SETSIZE` limit.
//!
//! Its own test binary: it raises the process's `RLIMIT_NOFILE` soft limit.

mod common;
#[path = "../../tests/support/fd_limit.rs"]
mod fd_limit;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use asyncore_core::{Interest, Readiness};
use asyncore_poll::PollSelector;
use common::*;
use fd_limit::raise_fd_limit;
use nix::sys::resource::rlim_t;

const PAIRS: usize = 600;
const FDS: usize = 2 * PAIRS;

#[test]
fn more_than_1024_fds_in_one_wait() {
    // 1,400 fits every platform's `rlim_t` (32 bits on 32-bit glibc).
    if !raise_fd_limit(rlim_t::try_from(FDS + 200).expect("fits rlim_t")) {
        return;
    }
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..PAIRS).map(|_| pair()).collect();
    let fds: Vec<RawFd> = pairs
        .iter()
        .flat_map(|(a, b)| [a.as_raw_fd(), b.as_raw_fd()])
        .collect();
    let highest = fds.iter().copied().max().unwrap_or(0);
    assert!(highest >= 1024, "highest fd {highest}");

    let mut sel = Waiter::new(PollSelector::<FDS>::new());
    let regs: Vec<Registration<RawFd>> = fds
        .iter()
        .enumerate()
        .map(|(i, &fd)| reg(i as u32, fd, Interest::READABLE))
        .collect();
    sel.sync(&regs).expect("register");
    assert_eq!(sel.registered(), FDS);
    let mut ready = vec![Readiness::EMPTY; FDS];
    assert_eq!(
        sel.select(&regs, &mut ready, Some(std::time::Duration::ZERO)),
        Ok(0)
    );
    assert_eq!(sel.writes(), FDS as u64);

    // Write into the first, a middle and the last pair (the last has the highest
    // fds, above 1,024): exactly the other ends become readable.
    let chosen = [0, PAIRS / 2, PAIRS - 1];
    for &p in &chosen {
        send_all(pairs[p].1.as_raw_fd(), b"ping");
    }
    let expected: Vec<usize> = chosen.iter().map(|&p| 2 * p).collect();
    let start = std::time::Instant::now();
    loop {
        ready.fill(Readiness::EMPTY);
        let n = sel
            .select(
                &regs,
                &mut ready,
                Some(std::time::Duration::from_millis(100)),
            )
            .expect("select");
        let got: Vec<usize> = ready
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(n, got.len());
        assert!(got.iter().all(|&i| ready[i] == Readiness::READABLE));
        if got == expected {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "ready {got:?}");
    }
    assert!(fds[2 * (PAIRS - 1)] >= 1024);
    // Same registrations on every pass: the array was never rewritten.
    assert_eq!(sel.writes(), FDS as u64);
    for &p in &chosen {
        assert_eq!(recv_now(pairs[p].0.as_raw_fd()), b"ping");
    }
}
