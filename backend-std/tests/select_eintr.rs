//! SelectSelector retries EINTR with the remaining time. Signals are sent to the
//! selecting thread itself (pthread_kill), whose handler (installed without
//! SA_RESTART) only counts. Own test binary: it installs a process-wide handler.

use std::os::fd::AsRawFd;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use asyncore_core::{Interest, Readiness};
use asyncore_std::SelectSelector;

#[path = "../../tests/support/waiter.rs"]
mod waiter;
use nix::sys::pthread::{Pthread, pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use waiter::{Registration, Waiter, reg};

static HITS: AtomicUsize = AtomicUsize::new(0);

/// A thread id handed to another thread for `pthread_kill`. `pthread_t` is an integer
/// on glibc but a pointer on musl, where that makes it `!Send`.
#[derive(Copy, Clone)]
struct Target(Pthread);

// SAFETY: a `pthread_t` is an opaque id that POSIX lets any thread of the process pass
// to `pthread_kill`; it is never dereferenced here, only passed to that call while the
// test thread it names waits for the signaller to be joined.
unsafe impl Send for Target {}

extern "C" fn count_signal(_: nix::libc::c_int) {
    HITS.fetch_add(1, Ordering::SeqCst);
}

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let action = SigAction::new(
            SigHandler::Handler(count_signal),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only increments an atomic, which is async-signal-safe,
        // and no other code in this test binary installs a SIGUSR1 handler.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.unwrap();
    });
}

/// Sends SIGUSR1 to the calling thread `times` times, `every` apart, from a helper
/// thread.
fn pester_me(times: usize, every: Duration) -> thread::JoinHandle<()> {
    let me = Target(pthread_self());
    thread::spawn(move || {
        let me = me; // the whole wrapper, not just its non-`Send` field
        for _ in 0..times {
            thread::sleep(every);
            pthread_kill(me.0, Signal::SIGUSR1).unwrap();
        }
    })
}

fn one(fd: i32) -> [Registration<i32>; 1] {
    [reg(0, fd, Interest::READABLE)]
}

#[test]
fn eintr_waits_out_the_remaining_time() {
    install_handler();
    let (r, _w) = nix::unistd::pipe().unwrap();
    let regs = one(r.as_raw_fd());
    let mut ready = [Readiness::EMPTY];
    let mut sel = Waiter::new(SelectSelector::new());
    let hits = HITS.load(Ordering::SeqCst);
    let signals = pester_me(5, Duration::from_millis(50));
    let start = Instant::now();
    let n = sel
        .select(&regs, &mut ready, Some(Duration::from_millis(300)))
        .unwrap();
    let elapsed = start.elapsed();
    signals.join().unwrap();
    assert_eq!(n, 0);
    assert_eq!(ready, [Readiness::EMPTY]);
    assert!(HITS.load(Ordering::SeqCst) > hits, "signals were delivered");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    // Restarting with the full timeout after each signal would take ≥ 550 ms.
    assert!(elapsed < Duration::from_millis(520), "{elapsed:?}");
}

#[test]
fn eintr_then_readiness() {
    install_handler();
    let (r, w) = nix::unistd::pipe().unwrap();
    let regs = one(r.as_raw_fd());
    let mut ready = [Readiness::EMPTY];
    let mut sel = Waiter::new(SelectSelector::new());
    let signals = pester_me(3, Duration::from_millis(20));
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(150));
        nix::unistd::write(&w, b"x").unwrap();
        w
    });

    let n = sel
        .select(&regs, &mut ready, Some(Duration::from_secs(10)))
        .unwrap();
    signals.join().unwrap();
    let _w = writer.join().unwrap();
    assert_eq!(n, 1);
    assert_eq!(ready, [Readiness::READABLE]);
}

#[test]
fn eintr_without_timeout_keeps_waiting() {
    install_handler();
    let (r, w) = nix::unistd::pipe().unwrap();
    let regs = one(r.as_raw_fd());
    let mut ready = [Readiness::EMPTY];
    let mut sel = Waiter::new(SelectSelector::new());
    let signals = pester_me(3, Duration::from_millis(20));
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(120));
        nix::unistd::write(&w, b"x").unwrap();
        w
    });
    let n = sel.select(&regs, &mut ready, None).unwrap();
    signals.join().unwrap();
    let _w = writer.join().unwrap();
    assert_eq!((n, ready), (1, [Readiness::READABLE]));
}
