//! errno → [`SocketError`] classification.

use asyncore_core::{ErrorKind, SocketError};
use nix::errno::Errno;

/// Classifies an OS error number into a [`SocketError`], keeping the raw number.
///
/// | errno | kind |
/// |---|---|
/// | `ECONNRESET` | `ConnectionReset` |
/// | `EPIPE`, `ESHUTDOWN` | `BrokenPipe` |
/// | `ECONNABORTED` | `ConnectionAborted` |
/// | `ENOTCONN` | `NotConnected` |
/// | `ECONNREFUSED` | `ConnectionRefused` |
/// | `ETIMEDOUT` | `TimedOut` |
/// | `EADDRINUSE` | `AddrInUse` |
/// | `EADDRNOTAVAIL` | `AddrNotAvailable` |
/// | `EINVAL`, `ENAMETOOLONG` | `InvalidInput` |
/// | `EINTR` | `Interrupted` |
/// | `EPERM`, `EACCES` | `PermissionDenied` |
/// | `ENOENT` | `NotFound` |
/// | `EEXIST` | `AlreadyExists` |
/// | `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM` | `OutOfMemory` (see [`SocketError::is_transient`]) |
/// | `EOPNOTSUPP`, `EAFNOSUPPORT`, `EPROTONOSUPPORT`, `ENOTSOCK` | `Unsupported` |
/// | anything else (`EBADF`, `EAGAIN`, `EHOSTUNREACH`, ...) | `Other` |
///
/// The first four rows are what [`SocketError::is_disconnect`] recognises; the reactor
/// turns them into `handle_close`. `EAGAIN` never reaches a caller of this crate's
/// socket operations as an error (it is a would-block outcome), except from a connect,
/// where it means a full Unix-domain backlog or no free local port.
pub fn socket_error(code: i32) -> SocketError {
    from_errno(Errno::from_raw(code))
}

/// Classifies `errno` (see [`socket_error`]).
pub(crate) fn from_errno(errno: Errno) -> SocketError {
    let kind = match errno {
        Errno::ECONNRESET => ErrorKind::ConnectionReset,
        Errno::EPIPE | Errno::ESHUTDOWN => ErrorKind::BrokenPipe,
        Errno::ECONNABORTED => ErrorKind::ConnectionAborted,
        Errno::ENOTCONN => ErrorKind::NotConnected,
        Errno::ECONNREFUSED => ErrorKind::ConnectionRefused,
        Errno::ETIMEDOUT => ErrorKind::TimedOut,
        Errno::EADDRINUSE => ErrorKind::AddrInUse,
        Errno::EADDRNOTAVAIL => ErrorKind::AddrNotAvailable,
        Errno::EINVAL | Errno::ENAMETOOLONG => ErrorKind::InvalidInput,
        Errno::EINTR => ErrorKind::Interrupted,
        Errno::EPERM | Errno::EACCES => ErrorKind::PermissionDenied,
        Errno::ENOENT => ErrorKind::NotFound,
        Errno::EEXIST => ErrorKind::AlreadyExists,
        Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM => ErrorKind::OutOfMemory,
        Errno::EOPNOTSUPP | Errno::EAFNOSUPPORT | Errno::EPROTONOSUPPORT | Errno::ENOTSOCK => {
            ErrorKind::Unsupported
        }
        _ => ErrorKind::Other,
    };
    SocketError::new(kind, errno as i32)
}

/// The error of an operation on a socket that is already closed: `EBADF`.
pub(crate) const CLOSED: SocketError = SocketError::new(ErrorKind::Other, Errno::EBADF as i32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disconnects_are_disconnects() {
        for e in [
            Errno::ECONNRESET,
            Errno::EPIPE,
            Errno::ESHUTDOWN,
            Errno::ECONNABORTED,
            Errno::ENOTCONN,
        ] {
            let err = from_errno(e);
            assert!(err.is_disconnect(), "{e:?}");
            assert_eq!(err.raw_os_error(), Some(e as i32));
        }
        for e in [
            Errno::EBADF,
            Errno::ECONNREFUSED,
            Errno::EINVAL,
            Errno::EAGAIN,
        ] {
            assert!(!from_errno(e).is_disconnect(), "{e:?}");
        }
    }

    #[test]
    fn table() {
        let cases = [
            (Errno::ECONNRESET, ErrorKind::ConnectionReset),
            (Errno::EPIPE, ErrorKind::BrokenPipe),
            (Errno::ESHUTDOWN, ErrorKind::BrokenPipe),
            (Errno::ECONNABORTED, ErrorKind::ConnectionAborted),
            (Errno::ENOTCONN, ErrorKind::NotConnected),
            (Errno::ECONNREFUSED, ErrorKind::ConnectionRefused),
            (Errno::EMFILE, ErrorKind::OutOfMemory),
            (Errno::ENFILE, ErrorKind::OutOfMemory),
            (Errno::ENOBUFS, ErrorKind::OutOfMemory),
            (Errno::ENOMEM, ErrorKind::OutOfMemory),
            (Errno::EADDRINUSE, ErrorKind::AddrInUse),
            (Errno::EADDRNOTAVAIL, ErrorKind::AddrNotAvailable),
            (Errno::ETIMEDOUT, ErrorKind::TimedOut),
            (Errno::EINVAL, ErrorKind::InvalidInput),
            (Errno::EBADF, ErrorKind::Other),
            (Errno::EAGAIN, ErrorKind::Other),
            (Errno::ENOENT, ErrorKind::NotFound),
            (Errno::EACCES, ErrorKind::PermissionDenied),
        ];
        for (e, kind) in cases {
            let err = socket_error(e as i32);
            assert_eq!(err.kind(), kind, "{e:?}");
            assert_eq!(err.raw_os_error(), Some(e as i32), "{e:?}");
        }
        for e in [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM] {
            assert!(from_errno(e).is_transient(), "{e:?}");
        }
        assert_eq!(CLOSED.raw_os_error(), Some(asyncore_core::errno::EBADF));
    }
}
