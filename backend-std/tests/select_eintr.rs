//! SelectSelector retries EINTR with the remaining time. Signals are sent to the
//! selecting thread itself (pthread_kill), whose handler (installed without
//! SA_RESTART) only counts. Own test binary: it installs a process-wide handler.

#[path = "../../tests/support/sigusr1.rs"]
mod sigusr1;
#[path = "../../tests/support/waiter.rs"]
mod waiter;

use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use asyncore_core::{Interest, Readiness};
use asyncore_std::SelectSelector;
use sigusr1::{Target, handled, install_handler};
use waiter::{Registration, Waiter, reg};

/// Sends SIGUSR1 to the calling thread `times` times, `every` apart, from a helper
/// thread.
fn pester_me(times: usize, every: Duration) -> thread::JoinHandle<()> {
    let me = Target::me();
    thread::spawn(move || {
        for _ in 0..times {
            thread::sleep(every);
            me.signal();
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
    let hits = handled();
    let signals = pester_me(5, Duration::from_millis(50));
    let start = Instant::now();
    let n = sel
        .select(&regs, &mut ready, Some(Duration::from_millis(300)))
        .unwrap();
    let elapsed = start.elapsed();
    signals.join().unwrap();
    assert_eq!(n, 0);
    assert_eq!(ready, [Readiness::EMPTY]);
    assert!(handled() > hits, "signals were delivered");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    // Restarting with the full timeout after each signal would take ≥ 550 ms.
    assert!(elapsed < Duration::from_millis(520), "{elapsed:?}");
}

/// A wait for a pipe with `timeout`, signalled three times 20 ms apart, while
/// another thread writes to the pipe after `write_after`: what it returns.
fn signalled_then_readable(
    timeout: Option<Duration>,
    write_after: Duration,
) -> (usize, [Readiness; 1]) {
    install_handler();
    let (r, w) = nix::unistd::pipe().unwrap();
    let regs = one(r.as_raw_fd());
    let mut ready = [Readiness::EMPTY];
    let mut sel = Waiter::new(SelectSelector::new());
    let signals = pester_me(3, Duration::from_millis(20));
    let writer = thread::spawn(move || -> OwnedFd {
        thread::sleep(write_after);
        nix::unistd::write(&w, b"x").unwrap();
        w
    });
    let n = sel.select(&regs, &mut ready, timeout).unwrap();
    signals.join().unwrap();
    let _w = writer.join().unwrap();
    (n, ready)
}

#[test]
fn eintr_then_readiness() {
    assert_eq!(
        signalled_then_readable(Some(Duration::from_secs(10)), Duration::from_millis(150)),
        (1, [Readiness::READABLE])
    );
}

#[test]
fn eintr_without_timeout_keeps_waiting() {
    assert_eq!(
        signalled_then_readable(None, Duration::from_millis(120)),
        (1, [Readiness::READABLE])
    );
}
