//! The `no_std`, allocation-free core of asyncore: Python's `asyncore`/`asynchat`
//! dispatch model for constrained Unix targets, deterministic simulation and fuzzing.
//!
//! * [`Reactor`]: a fixed-capacity [`ChannelMap`] of channels (socket + [`State`] +
//!   [`Dispatcher`]), a [`Selector`], and the loop ([`Reactor::poll_once`],
//!   [`Reactor::run`], [`Reactor::close_all`]). Its type names the [`Io`] it drives
//!   (a selector and its socket type) once: `Reactor<MockIo, MyDispatcher, 16>`.
//! * [`Dispatcher`]: the original's callbacks (`readable`, `writable`,
//!   `handle_connect`, `handle_accepted`, `handle_read`, `handle_write`, `handle_expt`,
//!   `handle_close`, `handle_error`) plus `handle_connect_failed`, `handle_eof` (a
//!   half-close hook) and `handle_timeout`; handlers get a [`Ctx`] (own socket,
//!   `close`, `add`, `close_channel`, other channels, timeouts, `exit`).
//! * [`Socket`] and [`Selector`]: what backends implement (`asyncore-std` for
//!   `select(2)`, `asyncore-poll` for `poll(2)`, [`mock`](#features) here).
//! * [`Token`]: slot + generation; a stale token never reaches another channel.
//! * [`SendBuffer`] (the original's `dispatcher_with_send`) and [`chat`] (asynchat) on
//!   fixed rings; [`echo`] and [`chat::server`], ready-made servers generic over the
//!   socket, which the simulator, the fuzzers, the benchmarks and the examples all
//!   run.
//! * [`semantics`]: the rules in full (dispatch order, the readiness table, closing,
//!   half-close, errors, accepting, urgent data, time, `select` vs `poll`, asynchat)
//!   and what we changed from the original, and why.
//!
//! Nothing here allocates, nothing panics on a full map or a stale token, and there is
//! no `unsafe`.
//!
//! # Features
//!
//! The default build is the runtime only. Test machinery comes with features:
//!
//! | feature | brings |
//! |---|---|
//! | `mock` | `mock`: a scripted selector and sockets, a recording dispatcher |
//! | `sim` | `sim`: a simulated network with a virtual clock and seeded faults, its trace checker, the echo and chat scenarios |
//! | `fuzz` | `sim::fuzz` (and `mock`, `sim`): the interpreters behind the cargo-fuzz targets |
//! | `defmt` | logging through `defmt` (bare metal) |
//! | `log` | logging through the `log` crate (std); with `defmt` too, `defmt` is used |
//!
//! # Example
//!
//! A complete program: a dispatcher that shouts back what it reads, driven by the
//! mock selector. On real file descriptors the same dispatcher runs unchanged with
//! `asyncore_std::SelectSelector` or `asyncore_poll::PollSelector`.
//!
//! ```
//! use asyncore_core::mock::{MockIo, MockSelector, MockSocket};
//! use asyncore_core::{Ctx, Dispatcher, Error, Reactor, Readiness, Recv, RunEnd, Socket};
//!
//! /// Upper-cases what it reads and sends it back; closes when the peer is done.
//! struct Shout;
//!
//! impl<S: Socket> Dispatcher<S> for Shout {
//!     type Error = Error;
//!
//!     fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
//!         let mut buf = [0u8; 64];
//!         // Would-block is an outcome, not an error; EOF makes the reactor call
//!         // handle_eof (default: close) after this handler returns.
//!         if let Recv::Data(n) = ctx.recv(&mut buf)? {
//!             buf[..n].make_ascii_uppercase();
//!             ctx.send(&buf[..n])?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! // Up to 8 channels, all in fixed memory: this could be a `static`.
//! let mut reactor: Reactor<MockIo, Shout, 8> = Reactor::new(MockSelector::new());
//!
//! // A scripted peer: sends "hello", then finishes.
//! let mut peer = MockSocket::connected(3);
//! peer.feed(b"hello");
//! peer.feed_eof();
//! let token = reactor.add(peer, Shout).unwrap();
//! reactor.selector_mut().set_ready(3, Readiness::READABLE);
//!
//! // One pass reads and answers.
//! reactor.poll_once(None).unwrap();
//! assert_eq!(reactor.get(token).unwrap().socket.sent(), b"HELLO");
//!
//! // The next sees EOF and closes; the map is then empty, so `run` returns.
//! assert_eq!(reactor.run(None, None).unwrap(), RunEnd::Empty);
//! ```
#![no_std]
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]
#![deny(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(test)]
extern crate std;

// Declared first so its macros are visible everywhere.
mod fmt;

pub mod chat;
mod ctx;
mod datagram;
mod dispatcher;
pub mod echo;
mod enum_macro;
mod error;
mod event;
mod hooks;
mod interest;
mod map;
#[cfg(any(test, feature = "mock"))]
#[cfg_attr(docsrs, doc(cfg(feature = "mock")))]
pub mod mock;
mod pool;
mod reactor;
mod readiness;
mod registrations;
mod registry;
mod ring;
mod selector;
#[doc = include_str!("../../docs/semantics.md")]
pub mod semantics {}
mod send_buf;
#[cfg(any(test, feature = "sim"))]
#[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
pub mod sim;
mod socket;
mod time;
mod token;
mod trace;

pub use ctx::{ACCEPT_BATCH, Ctx};
pub use datagram::{Datagram, DatagramQueue, QueueError, Received};
pub use dispatcher::{AfterEof, Dispatcher, InterestMode, LogLevel};
pub use error::{
    AddError, AddErrorKind, Error, ErrorKind, PollError, SocketError, SourceError, errno,
};
pub use event::{ExitStatus, SourceEvent};
pub use hooks::{ListenerHooks, Refusal};
pub use interest::Interest;
pub use map::{ChannelMap, ChannelMut, ChannelRef};
pub use pool::{BufferPool, Lease, Lend, NoPool};
pub use reactor::{Reactor, RunEnd};
pub use readiness::Readiness;
pub use registrations::{Registered, Registrations};
pub use ring::Ring;
pub use selector::{EVENT_BATCH, Event, Events, Io, Selector, With};
pub use send_buf::{BufferFull, SendBuffer};
pub use socket::{Recv, Sent, Socket, State};
pub use time::{TimerError, TimerId};
pub use token::Token;
pub use trace::{Callback, Observer, Trace};

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
