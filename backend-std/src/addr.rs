//! Socket addresses, stored inline (no allocation).

use core::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::Path;

use asyncore_core::SocketError;
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage};

use crate::Family;
use crate::error::from_errno;

/// The address of a socket: where to bind or connect, or what
/// [`StdSocket::local_addr`](crate::StdSocket::local_addr) and
/// [`StdSocket::peer_addr`](crate::StdSocket::peer_addr) report.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A Unix-domain path or abstract name.
    Unix(UnixAddr),
    /// No address: an unbound Unix-domain socket (for example the client end of a
    /// connection, or either end of a `socketpair`).
    Unnamed,
}

impl Addr {
    /// The Unix-domain address of `path`.
    ///
    /// # Errors
    /// `InvalidInput` (`ENAMETOOLONG`) when the path does not fit in `sun_path`
    /// (108 bytes on Linux, terminating NUL included), or `InvalidInput` (`EINVAL`)
    /// when it contains a NUL byte.
    pub fn unix(path: impl AsRef<Path>) -> Result<Addr, SocketError> {
        UnixAddr::new(path).map(Addr::Unix)
    }

    /// The address family this address belongs to; `None` for [`Addr::Unnamed`].
    pub fn family(&self) -> Option<Family> {
        match self {
            Addr::Inet(SocketAddr::V4(_)) => Some(Family::Inet),
            Addr::Inet(SocketAddr::V6(_)) => Some(Family::Inet6),
            Addr::Unix(_) => Some(Family::Unix),
            Addr::Unnamed => None,
        }
    }

    /// The IP address and port, if this is one.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            Addr::Inet(a) => Some(*a),
            _ => None,
        }
    }

    /// The Unix-domain address, if this is one.
    pub fn as_unix(&self) -> Option<&UnixAddr> {
        match self {
            Addr::Unix(a) => Some(a),
            _ => None,
        }
    }

    /// Converts what the kernel reported (`getsockname`/`getpeername`).
    pub(crate) fn from_storage(ss: &SockaddrStorage) -> Addr {
        match ss.family() {
            Some(AddressFamily::Inet) => match ss.as_sockaddr_in() {
                Some(sin) => Addr::Inet(SocketAddr::V4((*sin).into())),
                None => Addr::Unnamed,
            },
            Some(AddressFamily::Inet6) => match ss.as_sockaddr_in6() {
                Some(sin6) => Addr::Inet(SocketAddr::V6((*sin6).into())),
                None => Addr::Unnamed,
            },
            Some(AddressFamily::Unix) => match ss.as_unix_addr() {
                Some(un) if !un.is_unnamed() => Addr::Unix(UnixAddr(*un)),
                _ => Addr::Unnamed,
            },
            _ => Addr::Unnamed,
        }
    }

    /// Converts a Unix-domain address the kernel reported (`recvmsg`): unnamed when
    /// it has no path or name.
    pub(crate) fn from_unix(un: &nix::sys::socket::UnixAddr) -> Addr {
        // A `socketpair` peer reports no address at all (length 0), an unbound
        // socket just the family (length 2); nix's accessors assume at least 2.
        let family_only = core::mem::size_of::<nix::libc::sa_family_t>();
        if (un.len() as usize) <= family_only || un.is_unnamed() {
            Addr::Unnamed
        } else {
            Addr::Unix(UnixAddr(*un))
        }
    }

    /// Runs `f` with the C form of this address.
    ///
    /// # Errors
    /// `InvalidInput` (`EINVAL`) for [`Addr::Unnamed`], which cannot be bound to or
    /// connected to; otherwise what `f` returns.
    pub(crate) fn with_sockaddr<R>(
        &self,
        f: impl FnOnce(&dyn SockaddrLike) -> nix::Result<R>,
    ) -> Result<R, Errno> {
        match self {
            Addr::Inet(a) => f(&SockaddrStorage::from(*a)),
            Addr::Unix(a) => f(&a.0),
            Addr::Unnamed => Err(Errno::EINVAL),
        }
    }
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        Addr::Inet(a)
    }
}

impl From<SocketAddrV4> for Addr {
    fn from(a: SocketAddrV4) -> Addr {
        Addr::Inet(a.into())
    }
}

impl From<SocketAddrV6> for Addr {
    fn from(a: SocketAddrV6) -> Addr {
        Addr::Inet(a.into())
    }
}

impl From<UnixAddr> for Addr {
    fn from(a: UnixAddr) -> Addr {
        Addr::Unix(a)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Inet(a) => fmt::Display::fmt(a, f),
            Addr::Unix(a) => fmt::Display::fmt(a, f),
            Addr::Unnamed => f.write_str("<unnamed>"),
        }
    }
}

/// A Unix-domain socket address: a filesystem path or (Linux) an abstract name, held
/// inline in a `sockaddr_un`.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct UnixAddr(nix::sys::socket::UnixAddr);

impl UnixAddr {
    /// The address of the filesystem path `path`.
    ///
    /// # Errors
    /// `InvalidInput` (`ENAMETOOLONG`) when the path does not fit in `sun_path`, or
    /// `InvalidInput` (`EINVAL`) when it contains a NUL byte.
    pub fn new(path: impl AsRef<Path>) -> Result<UnixAddr, SocketError> {
        nix::sys::socket::UnixAddr::new(path.as_ref())
            .map(UnixAddr)
            .map_err(from_errno)
    }

    /// An abstract-namespace address (Linux): `name` without the leading NUL. Abstract
    /// sockets leave nothing in the filesystem and vanish with their last socket.
    ///
    /// # Errors
    /// `InvalidInput` (`ENAMETOOLONG`) when the name does not fit in `sun_path`.
    pub fn new_abstract(name: &[u8]) -> Result<UnixAddr, SocketError> {
        nix::sys::socket::UnixAddr::new_abstract(name)
            .map(UnixAddr)
            .map_err(from_errno)
    }

    /// The filesystem path, if this is a path address.
    pub fn as_path(&self) -> Option<&Path> {
        self.0.path()
    }

    /// The abstract name (without the leading NUL), if this is an abstract address.
    pub fn as_abstract(&self) -> Option<&[u8]> {
        self.0.as_abstract()
    }
}

impl fmt::Debug for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.as_path(), self.as_abstract()) {
            (Some(p), _) => f.debug_tuple("UnixAddr").field(&p).finish(),
            (None, Some(name)) => write!(f, "UnixAddr(@\"{}\")", name.escape_ascii()),
            (None, None) => f.write_str("UnixAddr(<unnamed>)"),
        }
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncore_core::ErrorKind;

    #[test]
    fn unix_paths() {
        let a = Addr::unix("/tmp/x.sock").unwrap();
        assert_eq!(a.family(), Some(Family::Unix));
        assert_eq!(
            a.as_unix().unwrap().as_path(),
            Some(Path::new("/tmp/x.sock"))
        );
        assert_eq!(a.to_string(), "/tmp/x.sock");
        let long = "x".repeat(200);
        assert_eq!(
            Addr::unix(long).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let abs = UnixAddr::new_abstract(b"asyncore").unwrap();
        assert_eq!(abs.as_abstract(), Some(&b"asyncore"[..]));
        assert_eq!(abs.as_path(), None);
        assert!(format!("{abs:?}").contains("asyncore"));
    }

    #[test]
    fn inet() {
        let sa: SocketAddr = "[::1]:80".parse().unwrap();
        let a = Addr::from(sa);
        assert_eq!(a.family(), Some(Family::Inet6));
        assert_eq!(a.as_inet(), Some(sa));
        assert_eq!(a.to_string(), "[::1]:80");
        let round = Addr::from_storage(&SockaddrStorage::from(sa));
        assert_eq!(round, a);
        assert_eq!(Addr::Unnamed.family(), None);
        assert_eq!(Addr::Unnamed.with_sockaddr(|_| Ok(())), Err(Errno::EINVAL));
    }
}
