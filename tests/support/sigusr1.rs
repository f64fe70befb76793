//! A SIGUSR1 handler that only counts, installed once per process without
//! `SA_RESTART` (so an interrupted call fails with `EINTR`), and a thread id that
//! another thread can signal. One copy, included with `#[path]` by the `EINTR` tests
//! of the backends (`backend-std/tests/select_eintr.rs`, and through
//! `asyncore-backend-tests` those of `backend-poll` and `backend-epoll`), each its own
//! test binary: the handler is process-wide.

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::pthread::{Pthread, pthread_kill, pthread_self};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: nix::libc::c_int) {
    // Async-signal-safe: one atomic increment.
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// Installs the counting handler (once).
pub fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let action = SigAction::new(
            SigHandler::Handler(count_signal),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only increments an atomic, which is async-signal-safe,
        // and no other code in these test binaries installs a SIGUSR1 handler.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("sigaction");
    });
}

/// How many SIGUSR1 the handler has counted.
pub fn handled() -> usize {
    HANDLED.load(Ordering::SeqCst)
}

/// A thread id handed to another thread for `pthread_kill`. `pthread_t` is an integer
/// on glibc but a pointer on musl, where that makes it `!Send`.
#[derive(Copy, Clone)]
pub struct Target(Pthread);

// SAFETY: a `pthread_t` is an opaque id that POSIX lets any thread of the process pass
// to `pthread_kill`; it is never dereferenced here, only passed to that call while the
// test thread it names waits for the signaller to be joined.
unsafe impl Send for Target {}

impl Target {
    /// The calling thread.
    pub fn me() -> Target {
        Target(pthread_self())
    }

    /// Sends it SIGUSR1.
    pub fn signal(self) {
        pthread_kill(self.0, Signal::SIGUSR1).expect("pthread_kill");
    }
}
