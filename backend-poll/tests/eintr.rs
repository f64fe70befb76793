//! `EINTR` is retried: a signal sent to the waiting thread (handler installed without
//! `SA_RESTART`, and poll(2) is never restarted anyway) neither fails the wait nor
//! ends it early.
//!
//! Its own test binary: it installs a process-wide SIGUSR1 handler.

mod common;

use common::*;

eintr_tests!(Sel, BACKEND);
