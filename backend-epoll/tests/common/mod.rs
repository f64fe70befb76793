//! Helpers shared by the integration tests: what both fd selectors share
//! (`asyncore-backend-tests`: real fds made directly with nix, waits, the shared
//! test bodies in `cases`), with this crate's selector.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::os::fd::OwnedFd;

pub use asyncore_backend_tests::*;
use asyncore_epoll::EpollSelector;

/// The selector the shared cases run on.
pub type Sel = EpollSelector<8>;

/// This selector's statistics, for the shared cases.
pub const BACKEND: Backend<Sel> = Backend {
    wait_call: "epoll_wait",
    waits: Sel::waits,
    interruptions: Sel::interruptions,
    changes: Sel::ctl_calls,
};

/// A connected loopback TCP pair: (client, server), both non-blocking.
pub fn tcp_pair() -> (OwnedFd, OwnedFd) {
    asyncore_backend_tests::tcp_pair::<Sel>()
}
