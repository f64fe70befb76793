//! The `no_std`, allocation-free core of asyncore: Python's `asyncore` dispatch model
//! for constrained Unix targets, deterministic simulation and fuzzing.
//!
//! * [`Reactor`]: a fixed-capacity [`ChannelMap`] of channels (socket + state +
//!   [`Dispatcher`]), a [`Selector`], and the loop ([`Reactor::poll_once`],
//!   [`Reactor::run`]).
//! * [`Dispatcher`]: the original's callbacks (`readable`, `writable`,
//!   `handle_connect`, `handle_accepted`, `handle_read`, `handle_write`, `handle_expt`,
//!   `handle_close`, `handle_error`) plus `handle_connect_failed` and a half-close hook.
//! * [`Socket`] and [`Selector`]: what backends implement (`asyncore-std` for
//!   `select(2)`, `asyncore-poll` for `poll(2)`, [`mock`] here).
//! * [`Token`]: slot + generation; a stale token never reaches another channel.
//!
//! Nothing here allocates, nothing panics on a full map or a stale token, and there is
//! no `unsafe`.
#![no_std]
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]
#![deny(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

#[cfg(test)]
extern crate std;

// Declared first so its macros are visible everywhere.
mod fmt;

pub mod chat;
mod dispatcher;
pub mod echo;
mod enum_macro;
mod error;
mod interest;
mod map;
pub mod mock;
mod reactor;
mod readiness;
mod ring;
mod selector;
mod send_buf;
mod socket;
mod token;

pub use dispatcher::{ACCEPT_BATCH, Ctx, Dispatcher, Level, ReadClosed};
pub use error::{
    AddError, AddErrorKind, Error, ErrorKind, PollError, SocketError, SourceError, errno,
};
pub use interest::Interest;
pub use map::{ChannelMap, ChannelMut, ChannelRef};
pub use reactor::{Reactor, RunEnd};
pub use readiness::Readiness;
pub use ring::Ring;
pub use selector::{Registration, Selector};
pub use send_buf::{BufferFull, SendBuffer};
pub use socket::{Recv, Sent, Socket, State};
pub use token::Token;

/// A null defmt logger so host tests link with `--features defmt`.
#[cfg(all(test, feature = "defmt"))]
mod defmt_test_logger {
    #[defmt::global_logger]
    struct NullLogger;

    // SAFETY: the logger does nothing, so it upholds every requirement trivially.
    #[allow(unsafe_code)]
    unsafe impl defmt::Logger for NullLogger {
        fn acquire() {}
        unsafe fn flush() {}
        unsafe fn release() {}
        unsafe fn write(_bytes: &[u8]) {}
    }

    defmt::timestamp!("{=u64}", 0);
}
