//! Real file descriptors for [`asyncore_core`]: sockets, fd channels, and the
//! `select(2)` selector.
//!
//! * [`StdSocket`]: one owned-fd type for every channel kind, so they can share one
//!   map: TCP listeners and streams (IPv4 and IPv6), Unix-domain stream listeners and
//!   streams, UDP sockets (IPv4 and IPv6: bind, connect, `SO_BROADCAST`, multicast,
//!   `IPV6_V6ONLY`) and Unix datagram sockets (path, abstract, unbound, pairs), and
//!   file channels (the original's `file_wrapper`/`file_dispatcher`:
//!   pipes, ttys, stdin, regular files). Sockets are created non-blocking and
//!   close-on-exec, sends use `MSG_NOSIGNAL`, accepts use `accept4`. It implements the
//!   core [`Socket`](asyncore_core::Socket) trait with `Source = RawFd`, and
//!   `embedded-io`'s [`ReadReady`](embedded_io::ReadReady),
//!   [`WriteReady`](embedded_io::WriteReady), [`Read`](embedded_io::Read) and
//!   [`Write`](embedded_io::Write). Datagram sockets also implement the core
//!   [`Datagram`](asyncore_core::Datagram) trait (`Addr` is [`Addr`]): `recv_from`
//!   with the source and the true length (`MSG_TRUNC`), `send_to`, connected sends.
//! * Event sources, as `StdSocket`s starting
//!   [`State::Source`](asyncore_core::State::Source), whose events reach
//!   `handle_event`: a **waker** ([`StdSocket::waker`], an `eventfd` and a
//!   [`Waker`] handle any thread or signal handler can trigger), the process's
//!   **signal source** ([`StdSocket::signals`], a self-pipe written by `sigaction`
//!   handlers), and **child processes** ([`Child::spawn`]: stdio as pipe channels,
//!   exits reported by the signal source from a fixed table of pids, a dropped
//!   [`Child`] killed and reaped).
//! * [`Addr`] and [`UnixAddr`]: socket addresses (IP, Unix-domain path or abstract
//!   name, unnamed), stored inline without allocation.
//! * [`SelectSelector`]: the [`Selector`](asyncore_core::Selector) over `select(2)`.
//!   An fd ≥ `FD_SETSIZE` is refused when its channel is added (a typed error, never a
//!   panic), `EINTR` is retried with the remaining time, and an `EBADF` from `select`
//!   is traced to the bad fds, which are reported
//!   [`INVALID`](asyncore_core::Readiness::INVALID) while the others are served.
//! * [`wait`]: what the `poll(2)` and `epoll(7)` selectors (`asyncore-poll`,
//!   `asyncore-epoll`) share: the rounded-up millisecond timeout, the
//!   `EINTR`-retrying wait with its counters, and the flag conversions.
//! * [`socket_error`]: the errno → [`SocketError`](asyncore_core::SocketError)
//!   classification every operation here uses.
//!
//! Nothing here allocates once the loop is running: the `select(2)` fd sets live on the
//! stack, addresses are inline, the signal source's pending set and the child table
//! are fixed-size statics (spawning a child allocates, inside `std::process`).
//!
//! # Example: an echo server
//!
//! ```no_run
//! use asyncore_core::{Ctx, Dispatcher, Error, Reactor, Recv};
//! use asyncore_std::{SelectIo, SelectSelector, StdSocket};
//!
//! enum Echo {
//!     Listener,
//!     Conn,
//! }
//!
//! impl Dispatcher<StdSocket> for Echo {
//!     type Error = Error;
//!
//!     fn handle_accepted(&mut self, ctx: &mut Ctx<'_, StdSocket, Echo>, socket: StdSocket) -> Result<(), Error> {
//!         // A full map hands the socket back; dropping it closes it.
//!         let _ = ctx.add(socket, Echo::Conn);
//!         Ok(())
//!     }
//!
//!     fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Echo>) -> Result<(), Error> {
//!         let mut buf = [0u8; 512];
//!         if let Recv::Data(n) = ctx.recv(&mut buf)? {
//!             ctx.send(&buf[..n])?; // a real server keeps what did not fit
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let listener = StdSocket::tcp_listener("127.0.0.1:8080".parse().unwrap(), 128)?;
//! let mut reactor: Reactor<SelectIo, Echo, 64> = Reactor::new(SelectSelector::new());
//! reactor.add(listener, Echo::Listener).map_err(|e| e.kind).unwrap();
//! reactor.run(None, None).unwrap();
//! # Ok::<(), asyncore_core::SocketError>(())
//! ```
//!
//! # Platform
//!
//! Linux (and Android) only: the crate relies on `SOCK_NONBLOCK`/`SOCK_CLOEXEC`,
//! `accept4`, `MSG_NOSIGNAL` and Linux's `select(2)` semantics.
#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

#[cfg(not(any(target_os = "linux", target_os = "android")))]
compile_error!("asyncore-std supports Linux and Android only");

mod addr;
mod child;
mod clock;
mod dgram;
mod error;
mod select;
mod signals;
mod socket;
pub mod wait;
mod waker;

pub use addr::{Addr, UnixAddr};
pub use child::{Child, MAX_CHILDREN, SpawnError, Spawned};
pub use clock::monotonic;
pub use error::socket_error;
pub use select::{FD_SETSIZE, SelectSelector};
pub use signals::MAX_SIGNAL;
pub use socket::{Family, Kind, StdSocket};
pub use waker::Waker;

/// `select(2)` over [`StdSocket`]s, as one [`Io`](asyncore_core::Io):
/// `Reactor<SelectIo, D, N>`.
pub type SelectIo = asyncore_core::With<SelectSelector, StdSocket>;
