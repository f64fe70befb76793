//! `EINTR` is retried: a signal sent to the polling thread (handler installed
//! without `SA_RESTART`, and poll(2) is never restarted anyway) neither fails the
//! wait nor ends it early.
//!
//! Its own test binary: it installs a process-wide SIGUSR1 handler.

mod common;
#[path = "../../tests/support/sigusr1.rs"]
mod sigusr1;

use std::{
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use asyncore_core::{Interest, Readiness};
use asyncore_poll::PollSelector;
use common::*;
use sigusr1::{Target, handled, install_handler};

/// Sends SIGUSR1 to `target` every `period` until `done`; runs `after(n)` once
/// `n == trigger` signals were sent. Returns how many were sent.
fn signaller(
    target: Target,
    done: Arc<AtomicBool>,
    period: Duration,
    trigger: u32,
    after: impl FnOnce() + Send + 'static,
) -> thread::JoinHandle<u32> {
    thread::spawn(move || {
        let mut sent = 0;
        let mut after = Some(after);
        while !done.load(Ordering::Acquire) {
            target.signal();
            sent += 1;
            if sent == trigger
                && let Some(f) = after.take()
            {
                f();
            }
            thread::sleep(period);
        }
        sent
    })
}

#[test]
fn signals_during_an_unbounded_wait_do_not_end_it() {
    install_handler();
    let (a, b) = pair();
    let mut sel = PollSelector::<4>::new();
    let done = Arc::new(AtomicBool::new(false));
    // After 25 signals (about 50 ms) the peer writes; signals go on until we return.
    // `b` itself stays here: closing it would add a hang-up.
    let peer = b.as_raw_fd();
    let helper = signaller(
        Target::me(),
        done.clone(),
        Duration::from_millis(2),
        25,
        move || send_all(peer, b"x"),
    );
    // `None`: without the retry an EINTR would surface as an error; with a retry
    // that forgot the timeout it could not be told apart, so see the next test.
    let r = select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, None);
    done.store(true, Ordering::Release);
    let sent = helper.join().expect("signaller");
    drop(b);
    assert_eq!(r, Readiness::READABLE);
    println!(
        "{sent} signals sent, {} handled, {} poll calls interrupted",
        handled(),
        sel.interruptions()
    );
    assert_eq!(sel.waits(), sel.interruptions() + 1);
}

#[test]
fn signals_during_a_timed_wait_do_not_shorten_it() {
    install_handler();
    let (a, _b) = pair();
    let mut sel = PollSelector::<4>::new();
    let done = Arc::new(AtomicBool::new(false));
    let helper = signaller(
        Target::me(),
        done.clone(),
        Duration::from_millis(2),
        u32::MAX,
        || {},
    );
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    let r = select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, Some(timeout));
    let elapsed = start.elapsed();
    done.store(true, Ordering::Release);
    let sent = helper.join().expect("signaller");
    println!(
        "{sent} signals sent, {} poll calls interrupted, waited {elapsed:?}",
        sel.interruptions()
    );
    assert_eq!(r, Readiness::EMPTY);
    // The signaller ran throughout a 200 ms sleep in poll(2): some signal hit it.
    assert!(sel.interruptions() >= 1, "no poll(2) call was interrupted");
    assert_eq!(sel.waits(), sel.interruptions() + 1);
}
