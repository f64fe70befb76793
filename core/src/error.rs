//! Error types of the core.

use core::fmt;

/// Linux `errno` numbers for the errors the core names.
///
/// The mock sockets use these to script failures; backends on other systems build
/// [`SocketError`]s with [`SocketError::new`] and their own numbers.
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Interrupted system call.
    pub const EINTR: i32 = 4;
    /// Bad file descriptor.
    pub const EBADF: i32 = 9;
    /// Try again (would block).
    pub const EAGAIN: i32 = 11;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Too many open files in the system.
    pub const ENFILE: i32 = 23;
    /// Too many open files in the process.
    pub const EMFILE: i32 = 24;
    /// Broken pipe.
    pub const EPIPE: i32 = 32;
    /// Machine is not on the network.
    pub const ENONET: i32 = 64;
    /// Protocol error.
    pub const EPROTO: i32 = 71;
    /// Not a socket.
    pub const ENOTSOCK: i32 = 88;
    /// Destination address required (a datagram sent on an unconnected socket
    /// without one).
    pub const EDESTADDRREQ: i32 = 89;
    /// Message too long: a datagram larger than the socket can send, or (from a
    /// receive) one larger than the buffer.
    pub const EMSGSIZE: i32 = 90;
    /// Protocol not available.
    pub const ENOPROTOOPT: i32 = 92;
    /// Operation not supported.
    pub const EOPNOTSUPP: i32 = 95;
    /// Address already in use.
    pub const EADDRINUSE: i32 = 98;
    /// Cannot assign requested address.
    pub const EADDRNOTAVAIL: i32 = 99;
    /// Network is down.
    pub const ENETDOWN: i32 = 100;
    /// Network is unreachable.
    pub const ENETUNREACH: i32 = 101;
    /// Connection aborted.
    pub const ECONNABORTED: i32 = 103;
    /// Connection reset by peer.
    pub const ECONNRESET: i32 = 104;
    /// No buffer space available.
    pub const ENOBUFS: i32 = 105;
    /// Transport endpoint is not connected.
    pub const ENOTCONN: i32 = 107;
    /// Cannot send after transport endpoint shutdown.
    pub const ESHUTDOWN: i32 = 108;
    /// Connection timed out.
    pub const ETIMEDOUT: i32 = 110;
    /// Connection refused.
    pub const ECONNREFUSED: i32 = 111;
    /// Host is down.
    pub const EHOSTDOWN: i32 = 112;
    /// No route to host.
    pub const EHOSTUNREACH: i32 = 113;
}

pub use embedded_io::ErrorKind;

/// An error from a socket operation, carrying a classification and the OS error number.
///
/// Would-block is never a `SocketError`: socket operations report it as an outcome
/// ([`Recv::WouldBlock`](crate::Recv), [`Sent::WouldBlock`](crate::Sent), `Ok(None)` from
/// accept). [`SocketError::is_disconnect`] tells the errors that mean "the peer is gone"
/// (reset, broken pipe, aborted, not connected): the reactor turns those into
/// `handle_close`, never `handle_error`.
#[derive(Copy, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SocketError {
    kind: ErrorKind,
    code: i32,
}

impl SocketError {
    /// An error of `kind` with the raw OS error number `code` (0 when there is none).
    pub const fn new(kind: ErrorKind, code: i32) -> Self {
        SocketError { kind, code }
    }

    /// Classifies a Linux `errno` (see [`errno`]).
    pub const fn from_errno(code: i32) -> Self {
        use errno::*;
        let kind = match code {
            ECONNRESET => ErrorKind::ConnectionReset,
            EPIPE | ESHUTDOWN => ErrorKind::BrokenPipe,
            ECONNABORTED => ErrorKind::ConnectionAborted,
            ENOTCONN => ErrorKind::NotConnected,
            ECONNREFUSED => ErrorKind::ConnectionRefused,
            ETIMEDOUT => ErrorKind::TimedOut,
            EADDRINUSE => ErrorKind::AddrInUse,
            EADDRNOTAVAIL => ErrorKind::AddrNotAvailable,
            EINVAL => ErrorKind::InvalidInput,
            EINTR => ErrorKind::Interrupted,
            EPERM | EACCES => ErrorKind::PermissionDenied,
            ENOENT => ErrorKind::NotFound,
            ENOMEM | ENOBUFS | EMFILE | ENFILE => ErrorKind::OutOfMemory,
            EOPNOTSUPP | ENOTSOCK => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        };
        SocketError { kind, code }
    }

    /// The operation is not supported by this socket type.
    pub const UNSUPPORTED: SocketError = SocketError::new(ErrorKind::Unsupported, 0);

    /// The classification.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The raw OS error number, if there is one.
    pub const fn raw_os_error(&self) -> Option<i32> {
        if self.code == 0 {
            None
        } else {
            Some(self.code)
        }
    }

    /// Whether this error means the connection is gone: reset, broken pipe (or shut
    /// down), aborted, or not connected.
    pub const fn is_disconnect(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::ConnectionReset
                | ErrorKind::BrokenPipe
                | ErrorKind::ConnectionAborted
                | ErrorKind::NotConnected
        )
    }

    /// Whether this is a resource shortage that passes (`EMFILE`, `ENFILE`, `ENOBUFS`,
    /// `ENOMEM`): an accept that fails with it must not close the listener.
    pub const fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::OutOfMemory | ErrorKind::Interrupted)
    }

    /// Whether an `accept` that failed with this error lost one connection, not the
    /// listener: the peer reset first (`ECONNABORTED`), or one of the network errors
    /// `accept(2)` passes on from the new connection (`EPROTO`, `EPERM` for a
    /// firewall rule, `EOPNOTSUPP`, `ENETDOWN`, `ENOPROTOOPT`, `EHOSTDOWN`, `ENONET`,
    /// `EHOSTUNREACH`, `ENETUNREACH`). The next pending connection may be fine.
    pub(crate) const fn lost_one_connection(&self) -> bool {
        use errno::*;
        matches!(self.kind, ErrorKind::ConnectionAborted)
            || matches!(
                self.code,
                EPROTO
                    | EPERM
                    | EOPNOTSUPP
                    | ENETDOWN
                    | ENOPROTOOPT
                    | EHOSTDOWN
                    | ENONET
                    | EHOSTUNREACH
                    | ENETUNREACH
            )
    }

    /// Whether an `accept` that failed with this error means the listening socket
    /// itself is unusable: closed or not a descriptor (`EBADF`), not a socket
    /// (`ENOTSOCK`), not listening (`EINVAL`), a bad address (`EFAULT`), or a socket
    /// type without accept ([`SocketError::UNSUPPORTED`]). Every other accept failure
    /// passes (a resource shortage, a connection that failed before it was accepted,
    /// an error the OS had no better name for): it never closes the listener.
    pub const fn is_fatal_to_listener(&self) -> bool {
        use errno::*;
        match self.code {
            EBADF | ENOTSOCK | EINVAL | EFAULT => true,
            0 => matches!(self.kind, ErrorKind::Unsupported | ErrorKind::InvalidInput),
            _ => false,
        }
    }
}

impl embedded_io::Error for SocketError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Debug for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SocketError({:?}, errno {})", self.kind, self.code)
    }
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket error {:?} (errno {})", self.kind, self.code)
    }
}

impl core::error::Error for SocketError {}

/// A ready-made error type for dispatchers: socket failures, full buffers and protocol
/// violations. Any type that is `From<SocketError>` can serve instead.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A socket operation failed (not a disconnect: those become `handle_close`).
    Socket(SocketError),
    /// A fixed-capacity buffer could not take the data.
    BufferFull,
    /// The peer broke the protocol.
    Protocol(&'static str),
}

impl From<SocketError> for Error {
    fn from(e: SocketError) -> Self {
        Error::Socket(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Socket(e) => write!(f, "{e}"),
            Error::BufferFull => f.write_str("buffer full"),
            Error::Protocol(what) => write!(f, "protocol error: {what}"),
        }
    }
}

impl core::error::Error for Error {}

impl embedded_io::Error for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Socket(e) => e.kind(),
            Error::BufferFull => ErrorKind::WriteZero,
            Error::Protocol(_) => ErrorKind::InvalidData,
        }
    }
}

/// Why a selector refused to watch a source.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SourceError {
    /// The source is outside what the selector can watch, e.g. an fd ≥ `FD_SETSIZE`
    /// for `select(2)`; `limit` is the first value that cannot be watched.
    OutOfRange {
        /// The first value the selector cannot watch.
        limit: usize,
    },
    /// The source is not valid at all (e.g. a negative fd).
    Invalid,
    /// The selector's own fixed storage is full.
    Full,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::OutOfRange { limit } => {
                write!(f, "source out of range for this selector (limit {limit})")
            }
            SourceError::Invalid => f.write_str("invalid source"),
            SourceError::Full => f.write_str("selector storage full"),
        }
    }
}

impl core::error::Error for SourceError {}

/// Why [`Reactor::add`](crate::Reactor::add) refused a channel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AddErrorKind {
    /// Every slot of the map is taken.
    Full,
    /// The selector cannot watch this socket's source.
    Rejected(SourceError),
}

impl fmt::Display for AddErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddErrorKind::Full => f.write_str("channel map is full"),
            AddErrorKind::Rejected(e) => write!(f, "selector rejected the channel: {e}"),
        }
    }
}

impl core::error::Error for AddErrorKind {}

/// A refused [`Reactor::add`](crate::Reactor::add): the reason, and the socket and
/// dispatcher handed back untouched.
pub struct AddError<S, D> {
    /// Why the channel was refused.
    pub kind: AddErrorKind,
    /// The socket, handed back.
    pub socket: S,
    /// The dispatcher, handed back.
    pub dispatcher: D,
}

impl<S, D> AddError<S, D> {
    /// The socket and dispatcher.
    pub fn into_inner(self) -> (S, D) {
        (self.socket, self.dispatcher)
    }
}

impl<S, D> fmt::Debug for AddError<S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<S, D> fmt::Display for AddError<S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AddErrorKind::Full => f.write_str("channel map is full"),
            AddErrorKind::Rejected(e) => write!(f, "selector rejected the channel: {e}"),
        }
    }
}

impl<S, D> core::error::Error for AddError<S, D> {}

/// Why a pass of the loop failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PollError<E> {
    /// The selector's wait failed.
    Selector(E),
    /// No channel wants any readiness and no timeout was given: waiting would never end.
    NothingToWaitFor,
}

impl<E: fmt::Debug> fmt::Display for PollError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::Selector(e) => write!(f, "selector failed: {e:?}"),
            PollError::NothingToWaitFor => {
                f.write_str("no channel has interest and no timeout was given")
            }
        }
    }
}

impl<E: fmt::Debug> core::error::Error for PollError<E> {}
