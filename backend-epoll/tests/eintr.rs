//! `EINTR` is retried: a signal sent to the waiting thread (handler installed without
//! `SA_RESTART`, and `epoll_wait` is never restarted anyway) neither fails the wait
//! nor ends it early.
//!
//! Its own test binary: it installs a process-wide SIGUSR1 handler.

mod common;

use std::{
    os::fd::AsRawFd,
    sync::{
        Arc, Once,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    thread,
    time::Duration,
};

use asyncore_core::{Interest, Readiness};
use asyncore_epoll::EpollSelector;
use common::*;
use nix::sys::{
    pthread::{Pthread, pthread_kill, pthread_self},
    signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction},
};

static HANDLED: AtomicU32 = AtomicU32::new(0);

/// A thread id handed to another thread for `pthread_kill`. `pthread_t` is an integer
/// on glibc but a pointer on musl, where that makes it `!Send`.
#[derive(Copy, Clone)]
struct Target(Pthread);

// SAFETY: a `pthread_t` is an opaque id that POSIX lets any thread of the process pass
// to `pthread_kill`; it is never dereferenced here, only passed to that call while the
// test thread it names waits for the signaller to be joined.
unsafe impl Send for Target {}

extern "C" fn on_sigusr1(_: nix::libc::c_int) {
    // Async-signal-safe: one atomic increment.
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // No SA_RESTART: interrupted calls fail with EINTR.
        let action = SigAction::new(
            SigHandler::Handler(on_sigusr1),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only performs an atomic increment, which is
        // async-signal-safe, and it is installed once before any SIGUSR1 is sent.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction");
    });
}

/// Sends SIGUSR1 to `target` every `period` until `done`; runs `after()` once
/// `trigger` signals were sent. Returns how many were sent.
fn signaller(
    target: Pthread,
    done: Arc<AtomicBool>,
    period: Duration,
    trigger: u32,
    after: impl FnOnce() + Send + 'static,
) -> thread::JoinHandle<u32> {
    let target = Target(target);
    thread::spawn(move || {
        let target = target; // the whole wrapper, not just its non-`Send` field
        let mut sent = 0;
        let mut after = Some(after);
        while !done.load(Ordering::Acquire) {
            pthread_kill(target.0, Signal::SIGUSR1).expect("pthread_kill");
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
    let mut sel = EpollSelector::<4>::new();
    let done = Arc::new(AtomicBool::new(false));
    // After 25 signals (about 50 ms) the peer writes; signals go on until we return.
    // `b` itself stays here: closing it would add a hang-up.
    let peer = b.as_raw_fd();
    let helper = signaller(
        pthread_self(),
        done.clone(),
        Duration::from_millis(2),
        25,
        move || send_all(peer, b"x"),
    );
    // `None`: without the retry an EINTR would surface as an error.
    let r = select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, None);
    done.store(true, Ordering::Release);
    let sent = helper.join().expect("signaller");
    drop(b);
    assert_eq!(r, Readiness::READABLE);
    println!(
        "{sent} signals sent, {} handled, {} epoll_wait calls interrupted",
        HANDLED.load(Ordering::Relaxed),
        sel.interruptions()
    );
    assert_eq!(sel.waits(), sel.interruptions() + 1);
}

#[test]
fn signals_during_a_timed_wait_do_not_shorten_it() {
    install_handler();
    let (a, _b) = pair();
    let mut sel = EpollSelector::<4>::new();
    let done = Arc::new(AtomicBool::new(false));
    let helper = signaller(
        pthread_self(),
        done.clone(),
        Duration::from_millis(2),
        u32::MAX,
        || {},
    );
    let r = select_one(
        &mut sel,
        a.as_raw_fd(),
        Interest::READABLE,
        Some(Duration::from_millis(200)),
    );
    done.store(true, Ordering::Release);
    let sent = helper.join().expect("signaller");
    println!(
        "{sent} signals sent, {} epoll_wait calls interrupted",
        sel.interruptions()
    );
    assert_eq!(r, Readiness::EMPTY);
    // The signaller ran throughout a 200 ms sleep in epoll_wait: some signal hit it,
    // and every interrupted call was retried until the timeout was used up.
    assert!(
        sel.interruptions() >= 1,
        "no epoll_wait call was interrupted"
    );
    assert_eq!(sel.waits(), sel.interruptions() + 1);
}
