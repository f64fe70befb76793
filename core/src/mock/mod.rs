//! A scripted selector, scripted sockets and a recording dispatcher, for deterministic
//! tests of dispatch logic. `no_std`, no allocation.
//!
//! * [`MockSocket`]: every result scripted — data, short counts, EOF, would-block,
//!   any [`SocketError`](crate::SocketError) (see [`errno`](crate::errno)), `SO_ERROR`, peer address,
//!   pending connections for a listener. It records what was sent and how often it was
//!   closed; a [`SocketProbe`] keeps the close count visible after the reactor dropped
//!   the socket. [`MockSocket::datagram`] is a datagram socket (address type `u32`):
//!   datagrams fed with their source, truncation, and through the same scripts any
//!   error (`ECONNREFUSED`, `EMSGSIZE`, `ENOBUFS`), its sent datagrams recorded with
//!   their destination.
//! * [`MockSelector`]: level-triggered readiness per source, set by the test (every
//!   [`Readiness`](crate::Readiness) bit), a record of the interest set handed over
//!   each pass, and a virtual clock that advances by the timeout of waits that find
//!   nothing ready.
//! * [`Recorder`]: a dispatcher that logs every callback into a shared [`CallLog`]
//!   and does what the test tells it in each one.
//!
//! ```
//! use asyncore_core::{Callback, Reactor, Readiness, mock::*};
//!
//! let log = CallLog::new();
//! let mut reactor: Reactor<MockIo, Recorder<'_>, 4> =
//!     Reactor::new(MockSelector::new());
//! let mut sock = MockSocket::connected(1);
//! sock.feed(b"hi");
//! let t = reactor.add(sock, Recorder::new(&log).on(Callback::Read, Action::RecvAll)).unwrap();
//! reactor.selector_mut().set_ready(1, Readiness::READABLE);
//! reactor.poll_once(None).unwrap();
//! assert_eq!(log.calls_of(t), [Callback::Read]);
//! assert_eq!(&log.received(t)[..], b"hi");
//! ```

mod dgram;
mod recorder;
mod selector;
mod socket;

pub use dgram::{INBOUND_DATAGRAMS, OUTBOUND_DATAGRAMS};
pub use recorder::{Action, CallLog, Recorder};
pub use selector::{MockSelector, MockWaitFailed, PassRecord, SOURCES};
pub use socket::{MockSocket, RecvStep, SendStep, SocketProbe};

/// The mock's [`Io`](crate::Io): `Reactor<MockIo, D, N>`.
pub type MockIo = crate::With<MockSelector, MockSocket>;
