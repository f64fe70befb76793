//! The `Socket` trait: what a channel's socket-like value must do.

use core::fmt;

use crate::SocketError;

/// What a channel is, as the dispatch state machine sees it.
///
/// The original kept three independent flags (`connected`, `connecting`,
/// `accepting`); an enum removes their impossible combinations.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// A socket that is neither connected nor listening (e.g. an accepted socket whose
    /// peer already reset, or a fresh socket).
    Open,
    /// A listening socket: read readiness means accept.
    Listening,
    /// A non-blocking connect in progress: the first read or write readiness completes
    /// it (`handle_connect`) or fails it (`handle_connect_failed`).
    Connecting,
    /// A connected stream (or any fd channel).
    Connected,
    /// The peer finished sending (EOF) and the dispatcher chose to keep writing.
    ReadClosed,
    /// An event source (a waker, signals, child exits): read readiness means its
    /// events ([`Socket::next_event`]) go to `handle_event`; it is never written.
    Source,
    /// A datagram socket (UDP, Unix datagram), bound, connected or neither: read
    /// readiness means a datagram (or a pending error) is there, write readiness that
    /// one can be sent. It never listens, never connects in the stream sense, never
    /// sees EOF, and no socket error closes it (see
    /// [`Datagram`](crate::Datagram)).
    Datagram,
    /// Closed: no callback runs any more.
    Closed,
}

/// Outcome of [`Socket::recv`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Recv {
    /// This many bytes were read. Zero only when the buffer was empty (or, on a
    /// datagram socket, the datagram was): an empty read is not EOF.
    Data(usize),
    /// The peer finished sending (or, from a [`Ctx`](crate::Ctx), the connection is
    /// gone and the reactor will deliver the close).
    Eof,
    /// Nothing to read now: not an error.
    WouldBlock,
}

/// Outcome of [`Socket::send`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Sent {
    /// This many bytes were accepted (possibly fewer than offered).
    Bytes(usize),
    /// No room now: not an error.
    WouldBlock,
}

/// A socket-like value a channel owns: a TCP or Unix stream, a listener, a pipe, a
/// file, or a simulated socket.
///
/// Implementations are non-blocking. Would-block is an outcome, never an error. Errors
/// that mean the peer is gone (reset, broken pipe, aborted, not connected) are
/// classified by [`SocketError::is_disconnect`]; the reactor turns them into
/// `handle_close`.
pub trait Socket {
    /// What the selector watches: a raw fd for POSIX backends, an id for the mock.
    type Source: Copy + Eq + fmt::Debug;

    /// The source the selector watches.
    fn source(&self) -> Self::Source;

    /// The state the channel starts in when this socket is added to a reactor:
    /// `Listening` after `listen`, `Connecting` after a non-blocking connect (also
    /// when it completed at once: `handle_connect` then fires on the first pass),
    /// `Connected` for accepted streams and fd channels, `Datagram` for datagram
    /// sockets, `Open` otherwise.
    fn initial_state(&mut self) -> State;

    /// Reads into `buf`. An empty `buf` gives `Ok(Recv::Data(0))`, never EOF. On a
    /// datagram socket it reads one datagram (an empty one is `Data(0)`); one longer
    /// than `buf` is consumed and reported as an `EMSGSIZE` error, never cut silently
    /// ([`Datagram::recv_from`](crate::Datagram::recv_from) tells its true length).
    ///
    /// # Errors
    /// Any OS error other than would-block.
    fn recv(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError>;

    /// Writes from `buf`.
    ///
    /// # Errors
    /// Any OS error other than would-block.
    fn send(&mut self, buf: &[u8]) -> Result<Sent, SocketError>;

    /// Accepts one pending connection; `Ok(None)` when none is pending.
    ///
    /// # Errors
    /// `ConnectionAborted` (the peer reset before accept), or a resource shortage
    /// ([`SocketError::is_transient`]), or anything else the OS reports.
    fn accept(&mut self) -> Result<Option<Self>, SocketError>
    where
        Self: Sized,
    {
        Err(SocketError::UNSUPPORTED)
    }

    /// Reads and clears the pending socket error (`SO_ERROR`): `Ok(None)` when there
    /// is none. This is how a non-blocking connect is finished.
    ///
    /// # Errors
    /// The query itself failed.
    fn take_error(&mut self) -> Result<Option<SocketError>, SocketError> {
        Ok(None)
    }

    /// Reads priority (TCP urgent) data.
    ///
    /// # Errors
    /// `Unsupported` by default.
    fn recv_priority(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        let _ = buf;
        Err(SocketError::UNSUPPORTED)
    }

    /// Shuts down the sending direction (the peer sees EOF); reading goes on.
    ///
    /// # Errors
    /// `Unsupported` by default.
    fn shutdown_write(&mut self) -> Result<(), SocketError> {
        Err(SocketError::UNSUPPORTED)
    }

    /// For an event source (a socket whose [`initial_state`](Self::initial_state)
    /// is [`State::Source`]): the next event it holds, `None` once it holds no more
    /// for now. The reactor asks after each read readiness, until `None`. Streams
    /// never have events: the default is `None`.
    fn next_event(&mut self) -> Option<crate::SourceEvent> {
        None
    }

    /// Closes the socket. Closing twice is harmless: the second call does nothing.
    ///
    /// # Errors
    /// What the OS reported on the first close (the socket counts as closed anyway).
    fn close(&mut self) -> Result<(), SocketError>;
}
