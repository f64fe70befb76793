//! Raising the process's `RLIMIT_NOFILE` soft limit, for the tests that need many
//! fds or a high fd number (one copy, included with `#[path]` by
//! `tests/many_conns_poll.rs`, `tests/echo.rs`, `backend-poll/tests/many_fds.rs`
//! and `backend-std/tests/fd_setsize.rs`).

use nix::sys::resource::{Resource, getrlimit, rlim_t, setrlimit};

/// Raises the soft fd limit to at least `need` (the hard limit stays); `false`, with
/// a note that the test is skipped, when the hard limit does not allow it.
pub fn raise_fd_limit(need: rlim_t) -> bool {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            println!("note: getrlimit failed ({e}); skipping");
            return false;
        }
    };
    if soft >= need {
        return true;
    }
    if hard < need {
        println!("note: RLIMIT_NOFILE hard limit {hard} < {need}; skipping");
        return false;
    }
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, need, hard) {
        println!("note: cannot raise RLIMIT_NOFILE to {need}: {e}; skipping");
        return false;
    }
    true
}
