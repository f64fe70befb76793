//! [`StdSocket`]: owned-fd sockets and fd channels.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use asyncore_core::{ErrorKind, Recv, Sent, Socket, SocketError, SourceEvent, State};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, Backlog, MsgFlags, Shutdown, SockFlag, SockType, SockaddrStorage, accept4,
    getpeername, getsockname, getsockopt, listen, setsockopt, sockopt,
};

use crate::Addr;
use crate::error::{CLOSED, from_errno};

/// The address family of a socket.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    Inet,
    /// IPv6 (`AF_INET6`).
    Inet6,
    /// Unix domain (`AF_UNIX`).
    Unix,
}

impl Family {
    /// The family of an IP socket address.
    pub fn of(addr: &SocketAddr) -> Family {
        match addr {
            SocketAddr::V4(_) => Family::Inet,
            SocketAddr::V6(_) => Family::Inet6,
        }
    }

    pub(crate) fn address_family(self) -> AddressFamily {
        match self {
            Family::Inet => AddressFamily::Inet,
            Family::Inet6 => AddressFamily::Inet6,
            Family::Unix => AddressFamily::Unix,
        }
    }
}

/// What a [`StdSocket`] wraps.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A stream socket (`SOCK_STREAM`) of this family: listener or connection.
    Socket(Family),
    /// A datagram socket (`SOCK_DGRAM`) of this family: UDP over IPv4 or IPv6, or a
    /// Unix datagram socket. It starts [`State::Datagram`] and implements
    /// [`Datagram`](asyncore_core::Datagram) (see `StdSocket::udp_bind`).
    Datagram(Family),
    /// A file channel: a pipe, tty, stdin or regular file, read with `read(2)` and
    /// written with `write(2)`.
    File,
    /// A waker's channel (an `eventfd`): an event source, see [`StdSocket::waker`].
    Waker,
    /// The process's signal source (the read end of its self-pipe), which also
    /// reports child exits: see [`StdSocket::signals`].
    Signals,
}

/// Where a socket is in its life, as far as this crate has seen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Created (maybe bound), neither listening nor connecting.
    Fresh,
    /// `listen` succeeded.
    Listening,
    /// `connect` started (or finished at once).
    Connecting,
    /// Returned by `accept`: connected unless the peer already went away.
    Accepted,
    /// Connected: a file channel, one end of a socket pair, or an accepted socket
    /// whose peer was still there when it was added.
    Connected,
}

/// A non-blocking file descriptor a channel owns: a TCP or Unix-domain stream or
/// listener, a file channel (pipe, tty, stdin, regular file), or an event source (a
/// [waker](StdSocket::waker), the [signal source](StdSocket::signals)).
///
/// One type for every kind, so listeners, connections, file channels and sources can
/// share one [`Reactor`](asyncore_core::Reactor); it stays 8 bytes (the fd, the kind,
/// where it is in its life). An event source is neither read nor written: `recv`,
/// `send`, `accept` and the rest are `Unsupported` on it, and the reactor takes its
/// events with [`next_event`](Socket::next_event). Sockets are created with `SOCK_NONBLOCK |
/// SOCK_CLOEXEC`; accepted ones with `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`; sends use
/// `MSG_NOSIGNAL`, so a vanished peer gives `EPIPE` rather than `SIGPIPE`. `EINTR` is
/// retried by every operation except `connect` (where it means "in progress") and
/// `close` (where Linux has released the fd anyway).
///
/// It implements the core [`Socket`] trait (`Source = RawFd`), and `embedded-io`'s
/// [`ReadReady`](embedded_io::ReadReady) and [`WriteReady`](embedded_io::WriteReady)
/// (a zero-timeout `poll(2)` on the fd), plus blocking [`Read`](embedded_io::Read) and
/// [`Write`](embedded_io::Write) that wait with `poll(2)` when the fd would block.
///
/// # Closing
///
/// [`close`](Socket::close) is idempotent: the second call does nothing. Dropping an
/// open `StdSocket` closes it (ignoring errors). After a close,
/// [`source`](Socket::source) and [`as_raw_fd`](AsRawFd::as_raw_fd) return `-1`
/// (which every selector refuses), and every operation fails with `EBADF`.
#[derive(Debug)]
pub struct StdSocket {
    pub(crate) fd: Option<OwnedFd>,
    pub(crate) kind: Kind,
    pub(crate) role: Role,
}

/// Retries `f` while it fails with `EINTR`.
pub(crate) fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// Errors `accept(2)` passes on from the new connection (see accept(2), "Error
/// handling"): the connection is gone, the listener is fine, nothing is pending.
fn accept_dropped_connection(e: Errno) -> bool {
    matches!(
        e,
        Errno::EPROTO
            | Errno::EPERM
            | Errno::EOPNOTSUPP
            | Errno::ENETDOWN
            | Errno::ENOPROTOOPT
            | Errno::EHOSTDOWN
            | Errno::ENONET
            | Errno::EHOSTUNREACH
            | Errno::ENETUNREACH
    )
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    if !flags.contains(OFlag::O_NONBLOCK) {
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

impl StdSocket {
    // ---------------------------------------------------------------- constructors

    /// A new stream socket of `family`, non-blocking and close-on-exec, neither bound
    /// nor connected: the start of the builder path ([`set_reuse_addr`],
    /// [`bind`], [`listen`], [`connect`]). Added to a reactor as is, it starts
    /// [`State::Open`].
    ///
    /// [`set_reuse_addr`]: StdSocket::set_reuse_addr
    /// [`bind`]: StdSocket::bind
    /// [`listen`]: StdSocket::listen
    /// [`connect`]: StdSocket::connect
    ///
    /// # Errors
    /// What `socket(2)` reports: `EMFILE`/`ENFILE`/`ENOBUFS`/`ENOMEM` (`OutOfMemory`),
    /// `EAFNOSUPPORT` (`Unsupported`, e.g. IPv6 disabled in the kernel), ...
    pub fn new(family: Family) -> Result<StdSocket, SocketError> {
        let fd = nix::sys::socket::socket(
            family.address_family(),
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(from_errno)?;
        Ok(StdSocket {
            fd: Some(fd),
            kind: Kind::Socket(family),
            role: Role::Fresh,
        })
    }

    /// A TCP listener on `addr` (IPv4 or IPv6; port 0 picks a free port, see
    /// [`local_addr`](StdSocket::local_addr)): `SO_REUSEADDR` on, bound, listening
    /// with `backlog` (capped at `SOMAXCONN`). It starts [`State::Listening`].
    ///
    /// # Errors
    /// `AddrInUse` (`EADDRINUSE`) when another socket listens there,
    /// `AddrNotAvailable` (`EADDRNOTAVAIL`) for an address this host does not have,
    /// `PermissionDenied` for a privileged port, and the errors of
    /// [`new`](StdSocket::new). Nothing is left open on failure.
    pub fn tcp_listener(addr: SocketAddr, backlog: u32) -> Result<StdSocket, SocketError> {
        let mut socket = StdSocket::new(Family::of(&addr))?;
        socket.set_reuse_addr()?;
        socket.bind(&Addr::Inet(addr))?;
        socket.listen(backlog)?;
        Ok(socket)
    }

    /// A TCP connection to `addr`, started without blocking. It starts
    /// [`State::Connecting`]: the reactor reports `handle_connect` (or
    /// `handle_connect_failed`) on the first readiness. That holds even when the
    /// kernel completed the connect at once, so `handle_connect` always comes from the
    /// loop, never from inside this call.
    ///
    /// # Errors
    /// A connect that failed at once: `ConnectionRefused`, `AddrNotAvailable`,
    /// `Other` with `ENETUNREACH`/`EHOSTUNREACH`, `EAGAIN` (no free local port), and
    /// the errors of [`new`](StdSocket::new). Nothing is left open on failure, so
    /// there is no channel to register.
    pub fn tcp_connect(addr: SocketAddr) -> Result<StdSocket, SocketError> {
        let mut socket = StdSocket::new(Family::of(&addr))?;
        socket.connect(&Addr::Inet(addr))?;
        Ok(socket)
    }

    /// A Unix-domain stream listener bound to the filesystem path `path`, listening
    /// with `backlog` (capped at `SOMAXCONN`). It starts [`State::Listening`]. An
    /// existing file at `path` is not removed: remove a stale socket file first.
    ///
    /// # Errors
    /// `AddrInUse` (`EADDRINUSE`) when `path` exists, `InvalidInput` when it is too
    /// long for `sun_path` or contains a NUL byte, `NotFound`/`PermissionDenied` for
    /// the directory, and the errors of [`new`](StdSocket::new).
    pub fn unix_listener(path: impl AsRef<Path>, backlog: u32) -> Result<StdSocket, SocketError> {
        let addr = Addr::unix(path)?;
        let mut socket = StdSocket::new(Family::Unix)?;
        socket.bind(&addr)?;
        socket.listen(backlog)?;
        Ok(socket)
    }

    /// A Unix-domain stream connection to the listener at `path`, started without
    /// blocking. It starts [`State::Connecting`] (even though a Unix-domain connect
    /// usually completes at once): `handle_connect` comes from the loop.
    ///
    /// # Errors
    /// `NotFound` (`ENOENT`) when nothing is at `path`, `ConnectionRefused` when no
    /// one listens there, `Other` with `EAGAIN` when the listener's backlog is full
    /// (not "in progress", unlike the original), `InvalidInput` for a bad path, and
    /// the errors of [`new`](StdSocket::new).
    pub fn unix_connect(path: impl AsRef<Path>) -> Result<StdSocket, SocketError> {
        let addr = Addr::unix(path)?;
        let mut socket = StdSocket::new(Family::Unix)?;
        socket.connect(&addr)?;
        Ok(socket)
    }

    /// A connected pair of Unix-domain stream sockets (`socketpair(2)`), both
    /// non-blocking and close-on-exec, both starting [`State::Connected`].
    ///
    /// # Errors
    /// What `socketpair(2)` reports (`EMFILE`, `ENFILE`: `OutOfMemory`).
    pub fn pair() -> Result<(StdSocket, StdSocket), SocketError> {
        let (a, b) = nix::sys::socket::socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        )
        .map_err(from_errno)?;
        let wrap = |fd| StdSocket {
            fd: Some(fd),
            kind: Kind::Socket(Family::Unix),
            role: Role::Connected,
        };
        Ok((wrap(a), wrap(b)))
    }

    /// A file channel over a duplicate of `fd` (the original's `file_wrapper` and
    /// `file_dispatcher`): a pipe, a tty, stdin, a regular file. The duplicate is made
    /// with `F_DUPFD_CLOEXEC`, so the caller keeps (and may close) its own fd. The
    /// channel starts [`State::Connected`]; [`recv`](Socket::recv) is `read(2)`,
    /// [`send`](Socket::send) is `write(2)`, [`take_error`](Socket::take_error) is
    /// always `Ok(None)`, and closing twice is harmless.
    ///
    /// # Shared open file description
    ///
    /// The duplicate is set `O_NONBLOCK`. That flag lives on the *open file
    /// description*, which the duplicate shares with `fd` and with every other
    /// descriptor (in this process or others) that refers to it. Wrapping a terminal's
    /// stdin therefore makes the shell's stdin non-blocking too, and code elsewhere
    /// that reads `fd` expecting blocking behaviour will see `EAGAIN`. The flag is not
    /// cleared on close. Wrap a descriptor of your own (`open` the tty again, or use a
    /// pipe) when that matters.
    ///
    /// Regular files are always reported ready by `select(2)` and `poll(2)`; a
    /// dispatcher that wants write readiness on one is called on every pass. Writing
    /// to a pipe whose reader is gone raises `SIGPIPE` (there is no `MSG_NOSIGNAL`
    /// for `write(2)`); Rust programs ignore it by default and see `EPIPE`.
    ///
    /// # Errors
    /// What `fcntl(2)` reports: `EMFILE` (`OutOfMemory`) when no fd is free, `EBADF`
    /// (`Other`) for a closed `fd`.
    pub fn file(fd: impl AsFd) -> Result<StdSocket, SocketError> {
        let dup = fd.as_fd().try_clone_to_owned().map_err(|e| {
            e.raw_os_error()
                .map_or(SocketError::new(ErrorKind::Other, 0), crate::socket_error)
        })?;
        StdSocket::from_owned_file(dup)
    }

    /// A file channel that takes `fd` over instead of duplicating it (see
    /// [`file`](StdSocket::file) for the behaviour and the `O_NONBLOCK` caveat).
    /// `FD_CLOEXEC` is left as it is.
    ///
    /// # Errors
    /// What `fcntl(2)` reports while setting `O_NONBLOCK`; `fd` is closed then.
    pub fn from_owned_file(fd: OwnedFd) -> Result<StdSocket, SocketError> {
        if let Err(e) = set_nonblocking(fd.as_fd()) {
            // close(2) directly: an fd that is not open must not reach OwnedFd's drop
            // (std's debug builds abort on EBADF there).
            let _ = nix::unistd::close(fd);
            return Err(from_errno(e));
        }
        Ok(StdSocket {
            fd: Some(fd),
            kind: Kind::File,
            role: Role::Connected,
        })
    }

    // ---------------------------------------------------------------- builder

    /// Turns `SO_REUSEADDR` on, so a listener can bind its port again while old
    /// connections linger in `TIME_WAIT`. (It does not let two listeners share a
    /// port.)
    ///
    /// # Errors
    /// What `setsockopt(2)` reports (`Unsupported` with `ENOTSOCK` for a file
    /// channel, `EBADF` once closed).
    pub fn set_reuse_addr(&self) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(from_errno)
    }

    /// Turns Nagle's algorithm off (`TCP_NODELAY`) or back on, for TCP streams: small
    /// writes then leave at once instead of waiting for the previous ones' ACK.
    ///
    /// # Errors
    /// `Unsupported`/`InvalidInput` from the OS for a non-TCP socket, `EBADF` once
    /// closed.
    pub fn set_nodelay(&self, on: bool) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        setsockopt(&fd, sockopt::TcpNoDelay, &on).map_err(from_errno)
    }

    /// Whether `TCP_NODELAY` is on.
    ///
    /// # Errors
    /// As [`set_nodelay`](Self::set_nodelay).
    pub fn nodelay(&self) -> Result<bool, SocketError> {
        let fd = self.borrowed()?;
        getsockopt(&fd, sockopt::TcpNoDelay).map_err(from_errno)
    }

    /// Binds the socket to `addr`.
    ///
    /// # Errors
    /// `AddrInUse` (`EADDRINUSE`) when the address is taken (another listener on the
    /// port, or an existing file for a Unix path), `AddrNotAvailable`,
    /// `PermissionDenied`, `InvalidInput` (`EINVAL`) when the socket is already bound
    /// or `addr` is [`Addr::Unnamed`] or of another family, `EBADF` once closed.
    pub fn bind(&self, addr: &Addr) -> Result<(), SocketError> {
        let raw = self.raw()?;
        addr.with_sockaddr(|sa| nix::sys::socket::bind(raw, sa))
            .map_err(from_errno)
    }

    /// Starts listening, with a queue of `backlog` pending connections (capped at
    /// `SOMAXCONN`, as the kernel does anyway). The socket then starts
    /// [`State::Listening`] when added to a reactor.
    ///
    /// # Errors
    /// What `listen(2)` reports: `AddrInUse` when an unbound socket's automatic port
    /// is taken, `Unsupported` for a file channel, `EBADF` once closed.
    pub fn listen(&mut self, backlog: u32) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        let max = i32::from(Backlog::MAXCONN);
        let backlog = i32::try_from(backlog).unwrap_or(max).min(max);
        let backlog = Backlog::new(backlog).unwrap_or(Backlog::MAXCONN);
        listen(&fd, backlog).map_err(from_errno)?;
        self.role = Role::Listening;
        Ok(())
    }

    /// Starts a non-blocking connect to `addr`. `EINPROGRESS`, `EALREADY` and `EINTR`
    /// (POSIX: the connect goes on asynchronously) mean "in progress"; an immediate
    /// success or `EISCONN` is treated the same way. In every one of these cases the
    /// socket starts [`State::Connecting`] when added to a reactor, and
    /// `handle_connect` (or `handle_connect_failed`) fires from the loop on the first
    /// readiness, after `SO_ERROR` is checked.
    ///
    /// # Errors
    /// Any other errno: the connect failed at once (`ConnectionRefused`, `NotFound`
    /// for a missing Unix path, `Other` with `EAGAIN` for a full Unix-domain backlog
    /// or no free local port, `InvalidInput` for [`Addr::Unnamed`], `EBADF` once
    /// closed). The socket's state is unchanged then; do not add it to a reactor.
    ///
    /// A datagram socket connects at once (nothing is sent): from then on it sends to
    /// and receives from that peer only, and it still starts [`State::Datagram`].
    pub fn connect(&mut self, addr: &Addr) -> Result<(), SocketError> {
        let raw = self.raw()?;
        match addr.with_sockaddr(|sa| nix::sys::socket::connect(raw, sa)) {
            Ok(()) | Err(Errno::EINPROGRESS | Errno::EALREADY | Errno::EINTR | Errno::EISCONN) => {
                self.role = Role::Connecting;
                Ok(())
            }
            Err(e) => Err(from_errno(e)),
        }
    }

    // ---------------------------------------------------------------- queries

    /// The address the socket is bound to (`getsockname(2)`): the port a listener on
    /// port 0 got, [`Addr::Unnamed`] for an unbound Unix-domain socket.
    ///
    /// # Errors
    /// `Unsupported` (`ENOTSOCK`) for a file channel, `EBADF` once closed.
    pub fn local_addr(&self) -> Result<Addr, SocketError> {
        let raw = self.raw()?;
        getsockname::<SockaddrStorage>(raw)
            .map(|ss| Addr::from_storage(&ss))
            .map_err(from_errno)
    }

    /// The address of the peer (`getpeername(2)`).
    ///
    /// # Errors
    /// `NotConnected` (`ENOTCONN`) when not (or no longer) connected, `Unsupported`
    /// for a file channel, `EBADF` once closed.
    pub fn peer_addr(&self) -> Result<Addr, SocketError> {
        let raw = self.raw()?;
        getpeername::<SockaddrStorage>(raw)
            .map(|ss| Addr::from_storage(&ss))
            .map_err(from_errno)
    }

    /// What this wraps: a socket of some family, or a file channel.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether [`listen`](StdSocket::listen) succeeded on this socket.
    pub fn is_listening(&self) -> bool {
        self.role == Role::Listening && self.fd.is_some()
    }

    /// Whether the socket is closed.
    pub fn is_closed(&self) -> bool {
        self.fd.is_none()
    }

    /// The fd, while the socket is open.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }

    /// Gives up the fd without closing it (`None` if already closed). The signal
    /// source cannot give its fd away (its handlers would be left writing to a pipe
    /// nobody owns): it closes as [`close`](Socket::close) does and gives `None`.
    pub fn into_fd(mut self) -> Option<OwnedFd> {
        if self.kind == Kind::Signals {
            let _ = Socket::close(&mut self);
            return None;
        }
        self.fd.take()
    }

    pub(crate) fn borrowed(&self) -> Result<BorrowedFd<'_>, SocketError> {
        self.fd().ok_or(CLOSED)
    }

    pub(crate) fn raw(&self) -> Result<RawFd, SocketError> {
        self.borrowed().map(|fd| fd.as_raw_fd())
    }

    fn is_file(&self) -> bool {
        self.kind == Kind::File
    }

    /// A waker or the signal source: an event source, neither read nor written.
    fn is_source(&self) -> bool {
        matches!(self.kind, Kind::Waker | Kind::Signals)
    }

    /// An event source's channel over `fd` (a waker's eventfd, the signal pipe's
    /// read end).
    pub(crate) fn source_channel(fd: OwnedFd, kind: Kind) -> StdSocket {
        debug_assert!(matches!(kind, Kind::Waker | Kind::Signals));
        StdSocket {
            fd: Some(fd),
            kind,
            role: Role::Connected,
        }
    }

    /// A zero-timeout (`timeout = ZERO`) or blocking (`NONE`) `poll(2)` for `events`;
    /// whether the fd is ready for them or has an error or hang-up pending.
    fn poll_fd(&self, events: PollFlags, timeout: PollTimeout) -> Result<bool, SocketError> {
        let fd = self.borrowed()?;
        let mut fds = [PollFd::new(fd, events)];
        match retry(|| poll(&mut fds, timeout)) {
            Ok(0) => Ok(false),
            Ok(_) => {
                // Bits nix does not know (None) are treated as an error condition.
                let revents = fds[0].revents().unwrap_or(PollFlags::POLLERR);
                if revents.contains(PollFlags::POLLNVAL) {
                    Err(CLOSED)
                } else {
                    Ok(revents.intersects(events | PollFlags::POLLERR | PollFlags::POLLHUP))
                }
            }
            Err(e) => Err(from_errno(e)),
        }
    }
}

impl AsRawFd for StdSocket {
    /// The fd, or `-1` once closed (as the original's `fileno()`).
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}

impl Socket for StdSocket {
    type Source = RawFd;

    /// The fd, or `-1` once closed.
    fn source(&self) -> RawFd {
        self.as_raw_fd()
    }

    /// `Source` for a waker and the signal source, `Datagram` for a datagram socket
    /// (whatever was done to it), `Listening` after [`listen`](StdSocket::listen),
    /// `Connecting` after
    /// [`connect`](StdSocket::connect), `Connected` for file channels and socket
    /// pairs, `Open` for a fresh socket, `Closed` once closed. For an accepted socket
    /// it asks `getpeername(2)`: `Connected` when the peer is there, `Open` when it
    /// already went away (`ENOTCONN`, `EINVAL`).
    fn initial_state(&mut self) -> State {
        if self.fd.is_none() {
            return State::Closed;
        }
        if self.is_source() {
            return State::Source;
        }
        if self.is_datagram() {
            return State::Datagram;
        }
        match self.role {
            Role::Fresh => State::Open,
            Role::Listening => State::Listening,
            Role::Connecting => State::Connecting,
            Role::Connected => State::Connected,
            Role::Accepted => match self.peer_addr() {
                Ok(_) => {
                    self.role = Role::Connected;
                    State::Connected
                }
                Err(_) => {
                    self.role = Role::Fresh;
                    State::Open
                }
            },
        }
    }

    /// `recv(2)` (`read(2)` for a file channel). `Ok(0)` from the OS on a non-empty
    /// buffer is [`Recv::Eof`]; an empty buffer gives `Recv::Data(0)` without a system
    /// call; `EAGAIN` is [`Recv::WouldBlock`]; `EINTR` is retried. On a datagram
    /// socket: one datagram (an empty one is `Data(0)`), and one longer than `buf`
    /// is consumed and reported as `EMSGSIZE` (`recv_from` tells its length).
    ///
    /// # Errors
    /// Disconnects (`ConnectionReset`, `NotConnected`, ...: see
    /// [`SocketError::is_disconnect`]), and anything else the OS reports; `EBADF` once
    /// closed.
    fn recv(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        if self.is_datagram() {
            return self.recv_one_datagram(buf);
        }
        let fd = self.borrowed()?;
        if self.is_source() {
            return Err(SocketError::UNSUPPORTED);
        }
        if buf.is_empty() {
            return Ok(Recv::Data(0));
        }
        let result = if self.is_file() {
            retry(|| nix::unistd::read(fd, &mut *buf))
        } else {
            let raw = fd.as_raw_fd();
            retry(|| nix::sys::socket::recv(raw, &mut *buf, MsgFlags::empty()))
        };
        match result {
            Ok(0) => Ok(Recv::Eof),
            Ok(n) => Ok(Recv::Data(n)),
            Err(Errno::EAGAIN) => Ok(Recv::WouldBlock),
            Err(e) => Err(from_errno(e)),
        }
    }

    /// `send(2)` with `MSG_NOSIGNAL` (`write(2)` for a file channel). An empty buffer
    /// gives `Sent::Bytes(0)` without a system call (on a datagram socket it is sent:
    /// an empty datagram); `EAGAIN` (also: still connecting) is [`Sent::WouldBlock`];
    /// `EINTR` is retried. On a datagram socket, `buf` goes as one datagram to the
    /// connected peer.
    ///
    /// # Errors
    /// Disconnects (`BrokenPipe` for `EPIPE`, `ConnectionReset`, ...), and anything
    /// else the OS reports; `EBADF` once closed.
    fn send(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        if self.is_datagram() {
            return self.send_one_datagram(buf);
        }
        let fd = self.borrowed()?;
        if self.is_source() {
            return Err(SocketError::UNSUPPORTED);
        }
        if buf.is_empty() {
            return Ok(Sent::Bytes(0));
        }
        let result = if self.is_file() {
            retry(|| nix::unistd::write(fd, buf))
        } else {
            let raw = fd.as_raw_fd();
            retry(|| nix::sys::socket::send(raw, buf, MsgFlags::MSG_NOSIGNAL))
        };
        match result {
            Ok(n) => Ok(Sent::Bytes(n)),
            Err(Errno::EAGAIN) => Ok(Sent::WouldBlock),
            Err(e) => Err(from_errno(e)),
        }
    }

    /// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`: the new connection, of the listener's
    /// family; its [`initial_state`](Socket::initial_state) checks that the peer is
    /// still there. `Ok(None)` when nothing is pending (`EAGAIN`); `EINTR` is retried.
    ///
    /// # Errors
    /// `ConnectionAborted` when the peer reset before the accept (`ECONNABORTED`, and
    /// the network errors accept(2) passes on from the new connection: `EPROTO`,
    /// `EPERM` (a firewall rule), `EOPNOTSUPP`, `ENETDOWN`, `EHOSTUNREACH`, ...; the
    /// raw errno is kept). The reactor's context
    /// turns it into "nothing pending". `OutOfMemory` for `EMFILE`/`ENFILE`/
    /// `ENOBUFS`/`ENOMEM` ([`SocketError::is_transient`]: the listener stays open).
    /// `InvalidInput` when not listening, `Unsupported` for a file channel, `EBADF`
    /// once closed.
    fn accept(&mut self) -> Result<Option<StdSocket>, SocketError> {
        let fd = self.borrowed()?;
        if self.is_file() || self.is_source() {
            return Err(SocketError::UNSUPPORTED);
        }
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        match retry(|| accept4(fd, flags)) {
            Ok(conn) => Ok(Some(StdSocket {
                fd: Some(conn),
                kind: self.kind,
                role: Role::Accepted,
            })),
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) if accept_dropped_connection(e) => {
                Err(SocketError::new(ErrorKind::ConnectionAborted, e as i32))
            }
            Err(e) => Err(from_errno(e)),
        }
    }

    /// Reads and clears `SO_ERROR`: `Ok(None)` when no error is pending, which after a
    /// non-blocking connect means it succeeded. Always `Ok(None)` for a file channel.
    ///
    /// # Errors
    /// The query itself failed (`EBADF` once closed).
    fn take_error(&mut self) -> Result<Option<SocketError>, SocketError> {
        let fd = self.borrowed()?;
        if self.is_file() || self.is_source() {
            return Ok(None);
        }
        match getsockopt(&fd, sockopt::SocketError).map_err(from_errno)? {
            0 => Ok(None),
            code => Ok(Some(crate::socket_error(code))),
        }
    }

    /// Reads TCP urgent data (`recv(2)` with `MSG_OOB`). An empty buffer gives
    /// `Recv::Data(0)`; `EAGAIN` (the urgent byte is announced but not there yet) is
    /// [`Recv::WouldBlock`]; `Ok(0)` from the OS is [`Recv::Eof`].
    ///
    /// # Errors
    /// `InvalidInput` (`EINVAL`) when no urgent data is pending (none sent, already
    /// read, or `SO_OOBINLINE` is on; also what Unix-domain sockets report);
    /// `Unsupported` for a file channel; `EBADF` once closed.
    fn recv_priority(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        let raw = self.raw()?;
        if self.is_file() || self.is_source() {
            return Err(SocketError::UNSUPPORTED);
        }
        if buf.is_empty() {
            return Ok(Recv::Data(0));
        }
        match retry(|| nix::sys::socket::recv(raw, &mut *buf, MsgFlags::MSG_OOB)) {
            Ok(0) => Ok(Recv::Eof),
            Ok(n) => Ok(Recv::Data(n)),
            Err(Errno::EAGAIN) => Ok(Recv::WouldBlock),
            Err(e) => Err(from_errno(e)),
        }
    }

    /// `shutdown(SHUT_WR)`: the peer reads EOF; reading goes on.
    ///
    /// # Errors
    /// `NotConnected` when not connected, `Unsupported` for a file channel, `EBADF`
    /// once closed.
    fn shutdown_write(&mut self) -> Result<(), SocketError> {
        let raw = self.raw()?;
        if self.is_file() || self.is_source() {
            return Err(SocketError::UNSUPPORTED);
        }
        nix::sys::socket::shutdown(raw, Shutdown::Write).map_err(from_errno)
    }

    /// The next event of a waker (one [`Wake`](SourceEvent::Wake) for every wake
    /// since the last one) or of the signal source (pending signals, lowest number
    /// first, then child exits in the order they were reaped). `None` for every other
    /// kind, once closed, and once the source holds nothing more for now.
    fn next_event(&mut self) -> Option<SourceEvent> {
        let fd = self.fd.as_ref()?.as_fd();
        match self.kind {
            Kind::Waker => crate::waker::next_event(fd),
            Kind::Signals => crate::signals::next_event(fd),
            Kind::Socket(_) | Kind::Datagram(_) | Kind::File => None,
        }
    }

    /// Closes the fd. The signal source also puts back the dispositions its signals
    /// had before (see [`StdSocket::signals`]). The socket counts as closed afterwards
    /// whatever `close(2)` said, so a second call is a no-op that returns `Ok(())`. `EINTR` is not an
    /// error (Linux has released the fd).
    ///
    /// # Errors
    /// What the first `close(2)` reported, e.g. `EBADF` (`Other`) when someone closed
    /// the fd behind this socket's back, or `EIO` from a file.
    fn close(&mut self) -> Result<(), SocketError> {
        let Some(fd) = self.fd.take() else {
            return Ok(());
        };
        if self.kind == Kind::Signals {
            // Handlers restored and the pipe's write end retired before its read end
            // goes: see `StdSocket::signals`.
            crate::signals::close_source();
        }
        // nix's close takes the fd by value and calls close(2) directly, so an fd
        // closed behind our back gives EBADF here instead of aborting in OwnedFd's
        // drop (std's debug builds check that).
        match nix::unistd::close(fd) {
            Ok(()) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(from_errno(e)),
        }
    }
}

impl Drop for StdSocket {
    fn drop(&mut self) {
        let _ = Socket::close(self);
    }
}

impl embedded_io::ErrorType for StdSocket {
    type Error = SocketError;
}

impl embedded_io::ReadReady for StdSocket {
    /// Whether a read would not block: data, EOF, or an error is pending (for a
    /// listener: a connection is pending). A zero-timeout `poll(2)`.
    ///
    /// # Errors
    /// `EBADF` once closed, or what `poll(2)` reports.
    fn read_ready(&mut self) -> Result<bool, SocketError> {
        self.poll_fd(PollFlags::POLLIN, PollTimeout::ZERO)
    }
}

impl embedded_io::WriteReady for StdSocket {
    /// Whether a write would not block (or would fail at once). A zero-timeout
    /// `poll(2)`.
    ///
    /// # Errors
    /// `EBADF` once closed, or what `poll(2)` reports.
    fn write_ready(&mut self) -> Result<bool, SocketError> {
        self.poll_fd(PollFlags::POLLOUT, PollTimeout::ZERO)
    }
}

impl embedded_io::Read for StdSocket {
    /// A blocking read, as `embedded-io` requires: when the fd would block it waits
    /// with `poll(2)`. Returns `Ok(0)` at EOF (or for an empty buffer). Gate it with
    /// [`read_ready`](embedded_io::ReadReady::read_ready) inside a loop.
    ///
    /// # Errors
    /// As [`Socket::recv`].
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, SocketError> {
        loop {
            match Socket::recv(self, buf)? {
                Recv::Data(n) => return Ok(n),
                Recv::Eof => return Ok(0),
                Recv::WouldBlock => {
                    self.poll_fd(PollFlags::POLLIN, PollTimeout::NONE)?;
                }
            }
        }
    }
}

impl embedded_io::Write for StdSocket {
    /// A blocking write, as `embedded-io` requires: when the fd would block it waits
    /// with `poll(2)`. Gate it with
    /// [`write_ready`](embedded_io::WriteReady::write_ready) inside a loop.
    ///
    /// # Errors
    /// As [`Socket::send`]; `WriteZero` if the OS accepted nothing from a non-empty
    /// buffer.
    fn write(&mut self, buf: &[u8]) -> Result<usize, SocketError> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match Socket::send(self, buf)? {
                Sent::Bytes(0) => return Err(SocketError::new(ErrorKind::WriteZero, 0)),
                Sent::Bytes(n) => return Ok(n),
                Sent::WouldBlock => {
                    self.poll_fd(PollFlags::POLLOUT, PollTimeout::NONE)?;
                }
            }
        }
    }

    /// Nothing is buffered here: `Ok(())` (`EBADF` once closed).
    ///
    /// # Errors
    /// `EBADF` once closed.
    fn flush(&mut self) -> Result<(), SocketError> {
        self.borrowed().map(|_| ())
    }
}
