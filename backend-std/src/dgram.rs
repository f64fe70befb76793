//! Datagram sockets: UDP over IPv4 and IPv6 and Unix datagram sockets, as
//! [`StdSocket`]s of kind [`Kind::Datagram`], and their [`Datagram`] operations.
//!
//! They are `StdSocket`s like the streams, so one reactor holds a UDP socket, a TCP
//! listener and its connections (a DNS server on both transports, a syslog
//! receiver on UDP and a Unix socket) with one socket type; the datagram operations
//! fail with `Unsupported` on the other kinds.

use std::io::IoSliceMut;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;

use asyncore_core::{Datagram, Received, Recv, Sent, SocketError, errno};
use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{
    IpMembershipRequest, MsgFlags, SockFlag, SockType, SockaddrStorage, recvmsg, sendto,
    setsockopt, sockopt,
};

use crate::error::from_errno;
use crate::socket::{Role, retry};
use crate::{Addr, Family, Kind, StdSocket};

impl StdSocket {
    /// A new datagram socket of `family` (`SOCK_DGRAM`: UDP for [`Family::Inet`] and
    /// [`Family::Inet6`], a Unix datagram socket for [`Family::Unix`]), non-blocking
    /// and close-on-exec, neither bound nor connected: set options
    /// ([`set_only_v6`](Self::set_only_v6), [`set_broadcast`](Self::set_broadcast),
    /// ...), then [`bind`](Self::bind) and/or [`connect`](Self::connect). It starts
    /// [`State::Datagram`](asyncore_core::State::Datagram). A UDP socket sending
    /// before it is bound gets a free port from the kernel; an unbound Unix datagram
    /// socket sends with no address (its peers cannot answer it).
    ///
    /// # Errors
    /// What `socket(2)` reports (`OutOfMemory` for `EMFILE`/`ENFILE`/`ENOBUFS`,
    /// `Unsupported` for `EAFNOSUPPORT`: IPv6 disabled in the kernel).
    pub fn datagram(family: Family) -> Result<StdSocket, SocketError> {
        let fd = nix::sys::socket::socket(
            family.address_family(),
            SockType::Datagram,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(from_errno)?;
        Ok(StdSocket {
            fd: Some(fd),
            kind: Kind::Datagram(family),
            role: Role::Fresh,
        })
    }

    /// A UDP socket bound to `addr` (IPv4 or IPv6; port 0 picks a free port, see
    /// [`local_addr`](Self::local_addr)). An IPv6 wildcard (`[::]:PORT`) also gets
    /// IPv4 traffic unless the system says otherwise (`net.ipv6.bindv6only`): build
    /// with [`datagram`](Self::datagram), [`set_only_v6`](Self::set_only_v6) and
    /// [`bind`](Self::bind) to choose.
    ///
    /// # Errors
    /// `AddrInUse`, `AddrNotAvailable`, `PermissionDenied` (a privileged port), and
    /// the errors of [`datagram`](Self::datagram). Nothing is left open on failure.
    pub fn udp_bind(addr: SocketAddr) -> Result<StdSocket, SocketError> {
        let socket = StdSocket::datagram(Family::of(&addr))?;
        socket.bind(&Addr::Inet(addr))?;
        Ok(socket)
    }

    /// A UDP socket connected to `addr` (bound to a free local port by the kernel):
    /// [`send_datagram`](Datagram::send_datagram) sends there, and only that peer's
    /// datagrams arrive. An ICMP "port unreachable" for one of its datagrams makes the
    /// next operation fail with `ConnectionRefused` (a typed error; the socket stays
    /// usable).
    ///
    /// # Errors
    /// `ENETUNREACH` (`Other`) and the errors of [`datagram`](Self::datagram).
    pub fn udp_connect(addr: SocketAddr) -> Result<StdSocket, SocketError> {
        let mut socket = StdSocket::datagram(Family::of(&addr))?;
        socket.connect(&Addr::Inet(addr))?;
        Ok(socket)
    }

    /// A Unix datagram socket bound to the filesystem path `path` (an existing file
    /// there is not removed: `AddrInUse`). For an abstract name (Linux), bind a
    /// [`datagram`](Self::datagram) socket to
    /// `Addr::Unix(UnixAddr::new_abstract(name)?)`.
    ///
    /// # Errors
    /// `AddrInUse` when `path` exists, `InvalidInput` for a path too long or with a
    /// NUL byte, `NotFound`/`PermissionDenied` for its directory, and the errors of
    /// [`datagram`](Self::datagram).
    pub fn unix_datagram_bind(path: impl AsRef<Path>) -> Result<StdSocket, SocketError> {
        let addr = Addr::unix(path)?;
        let socket = StdSocket::datagram(Family::Unix)?;
        socket.bind(&addr)?;
        Ok(socket)
    }

    /// A connected pair of Unix datagram sockets (`socketpair(2)`), non-blocking and
    /// close-on-exec. Each end's peer address is unnamed.
    ///
    /// # Errors
    /// What `socketpair(2)` reports.
    pub fn unix_datagram_pair() -> Result<(StdSocket, StdSocket), SocketError> {
        let (a, b) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            SockType::Datagram,
            None,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        )
        .map_err(from_errno)?;
        let wrap = |fd| StdSocket {
            fd: Some(fd),
            kind: Kind::Datagram(Family::Unix),
            role: Role::Connected,
        };
        Ok((wrap(a), wrap(b)))
    }

    /// Whether this is a datagram socket ([`Kind::Datagram`]).
    pub fn is_datagram(&self) -> bool {
        matches!(self.kind, Kind::Datagram(_))
    }

    /// Allows (or forbids) sending to broadcast addresses (`SO_BROADCAST`).
    ///
    /// # Errors
    /// What `setsockopt(2)` reports; `EBADF` once closed.
    pub fn set_broadcast(&self, on: bool) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        setsockopt(&fd, sockopt::Broadcast, &on).map_err(from_errno)
    }

    /// Whether `SO_BROADCAST` is on.
    ///
    /// # Errors
    /// As [`set_broadcast`](Self::set_broadcast).
    pub fn broadcast(&self) -> Result<bool, SocketError> {
        let fd = self.borrowed()?;
        nix::sys::socket::getsockopt(&fd, sockopt::Broadcast).map_err(from_errno)
    }

    /// `IPV6_V6ONLY`: an IPv6 socket bound to the wildcard gets IPv6 traffic only
    /// (`true`) or IPv4 too, as v4-mapped addresses (`false`). Set it before
    /// [`bind`](Self::bind).
    ///
    /// # Errors
    /// `InvalidInput` once bound, `ENOPROTOOPT` (`Other`) on a socket that is not
    /// IPv6; `EBADF` once closed.
    pub fn set_only_v6(&self, on: bool) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        setsockopt(&fd, sockopt::Ipv6V6Only, &on).map_err(from_errno)
    }

    /// Whether `IPV6_V6ONLY` is on.
    ///
    /// # Errors
    /// As [`set_only_v6`](Self::set_only_v6).
    pub fn only_v6(&self) -> Result<bool, SocketError> {
        let fd = self.borrowed()?;
        nix::sys::socket::getsockopt(&fd, sockopt::Ipv6V6Only).map_err(from_errno)
    }

    /// Joins the IPv4 multicast group `group` on the interface whose address is
    /// `interface` (`Ipv4Addr::UNSPECIFIED`: the one the routing table picks).
    ///
    /// # Errors
    /// `InvalidInput` for an address that is not multicast, `AddrNotAvailable`/
    /// `ENODEV` for an interface that cannot join, `AddrInUse` when already joined.
    pub fn join_multicast_v4(
        &self,
        group: Ipv4Addr,
        interface: Ipv4Addr,
    ) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        let req = IpMembershipRequest::new(group, Some(interface));
        setsockopt(&fd, sockopt::IpAddMembership, &req).map_err(from_errno)
    }

    /// Leaves an IPv4 multicast group joined with
    /// [`join_multicast_v4`](Self::join_multicast_v4).
    ///
    /// # Errors
    /// `AddrNotAvailable` when not a member.
    pub fn leave_multicast_v4(
        &self,
        group: Ipv4Addr,
        interface: Ipv4Addr,
    ) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        let req = IpMembershipRequest::new(group, Some(interface));
        setsockopt(&fd, sockopt::IpDropMembership, &req).map_err(from_errno)
    }

    /// Joins the IPv6 multicast group `group` on the interface of index `interface`
    /// (0: the one the routing table picks).
    ///
    /// # Errors
    /// `InvalidInput` for an address that is not multicast, `ENODEV` for an unknown
    /// interface, `AddrInUse` when already joined.
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> Result<(), SocketError> {
        self.ipv6_membership(libc::IPV6_ADD_MEMBERSHIP, group, interface)
    }

    /// Leaves an IPv6 multicast group joined with
    /// [`join_multicast_v6`](Self::join_multicast_v6).
    ///
    /// # Errors
    /// `AddrNotAvailable` when not a member.
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> Result<(), SocketError> {
        self.ipv6_membership(libc::IPV6_DROP_MEMBERSHIP, group, interface)
    }

    /// `IPV6_ADD_MEMBERSHIP`/`IPV6_DROP_MEMBERSHIP` with an interface index (nix's
    /// request type has no interface).
    fn ipv6_membership(
        &self,
        option: libc::c_int,
        group: &Ipv6Addr,
        interface: u32,
    ) -> Result<(), SocketError> {
        let req = libc::ipv6_mreq {
            ipv6mr_multiaddr: libc::in6_addr {
                s6_addr: group.octets(),
            },
            ipv6mr_interface: interface,
        };
        self.set_raw_option(libc::IPPROTO_IPV6, option, &req)
    }

    /// `setsockopt(2)` with a plain C value, for options nix has no type for.
    fn set_raw_option<T: Copy>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: &T,
    ) -> Result<(), SocketError> {
        let raw = self.raw()?;
        let len = libc::socklen_t::try_from(core::mem::size_of::<T>())
            .map_err(|_| SocketError::from_errno(errno::EINVAL))?;
        // SAFETY: `value` points to an initialised `T` (a C option value: `c_int`,
        // `ipv6_mreq`) that lives for the call, passed with its exact size; the
        // kernel only reads it. `raw` is this socket's open fd.
        let rc = unsafe { libc::setsockopt(raw, level, name, (value as *const T).cast(), len) };
        if rc == 0 {
            Ok(())
        } else {
            Err(from_errno(Errno::last()))
        }
    }

    /// Whether this socket receives the IPv4 multicast datagrams it sends
    /// (`IP_MULTICAST_LOOP`, on by default).
    ///
    /// # Errors
    /// What `setsockopt(2)` reports.
    pub fn set_multicast_loop_v4(&self, on: bool) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        setsockopt(&fd, sockopt::IpMulticastLoop, &on).map_err(from_errno)
    }

    /// Whether this socket receives the IPv6 multicast datagrams it sends
    /// (`IPV6_MULTICAST_LOOP`, on by default).
    ///
    /// # Errors
    /// What `setsockopt(2)` reports.
    pub fn set_multicast_loop_v6(&self, on: bool) -> Result<(), SocketError> {
        let value = libc::c_int::from(on);
        self.set_raw_option(libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &value)
    }

    /// The TTL of IPv4 multicast datagrams sent (`IP_MULTICAST_TTL`, 1 by default:
    /// the local network only).
    ///
    /// # Errors
    /// What `setsockopt(2)` reports.
    pub fn set_multicast_ttl_v4(&self, ttl: u8) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        setsockopt(&fd, sockopt::IpMulticastTtl, &ttl).map_err(from_errno)
    }

    /// The size of the kernel's receive buffer (`SO_RCVBUF`; Linux doubles the value
    /// asked for and caps it at `net.core.rmem_max`). Datagrams that arrive while it
    /// is full are dropped by the kernel.
    ///
    /// # Errors
    /// What `setsockopt(2)` reports.
    pub fn set_recv_buffer_size(&self, bytes: usize) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        setsockopt(&fd, sockopt::RcvBuf, &bytes).map_err(from_errno)
    }

    /// The size of the kernel's send buffer (`SO_SNDBUF`, as
    /// [`set_recv_buffer_size`](Self::set_recv_buffer_size)).
    ///
    /// # Errors
    /// What `setsockopt(2)` reports.
    pub fn set_send_buffer_size(&self, bytes: usize) -> Result<(), SocketError> {
        let fd = self.borrowed()?;
        setsockopt(&fd, sockopt::SndBuf, &bytes).map_err(from_errno)
    }

    /// One `recvmsg(2)` with `MSG_TRUNC` (the return value is the datagram's true
    /// length): its length and its source. `None` on `EAGAIN`.
    fn receive(&self, buf: &mut [u8]) -> Result<Option<(usize, Addr)>, SocketError> {
        let raw = self.raw()?;
        if !self.is_datagram() {
            return Err(SocketError::UNSUPPORTED);
        }
        let mut iov = [IoSliceMut::new(buf)];
        // A Unix-domain source is read as nix's `UnixAddr`, which takes its length
        // from the kernel; `SockaddrStorage` would not record it for one.
        let got = if self.kind == Kind::Datagram(Family::Unix) {
            retry(|| {
                recvmsg::<nix::sys::socket::UnixAddr>(raw, &mut iov, None, MsgFlags::MSG_TRUNC).map(
                    |m| {
                        (
                            m.bytes,
                            m.address.map_or(Addr::Unnamed, |a| Addr::from_unix(&a)),
                        )
                    },
                )
            })
        } else {
            retry(|| {
                recvmsg::<SockaddrStorage>(raw, &mut iov, None, MsgFlags::MSG_TRUNC).map(|m| {
                    (
                        m.bytes,
                        m.address.map_or(Addr::Unnamed, |a| Addr::from_storage(&a)),
                    )
                })
            })
        };
        match got {
            Ok(got) => Ok(Some(got)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(from_errno(e)),
        }
    }

    /// `Socket::recv` of a datagram socket: one datagram; one longer than `buf` is
    /// consumed and reported as `EMSGSIZE`.
    pub(crate) fn recv_one_datagram(&self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        let cap = buf.len();
        match self.receive(buf)? {
            None => Ok(Recv::WouldBlock),
            Some((len, _)) if len > cap => Err(SocketError::from_errno(errno::EMSGSIZE)),
            Some((len, _)) => Ok(Recv::Data(len)),
        }
    }

    /// `Socket::send` of a datagram socket: `buf` as one datagram (an empty one
    /// too) to the connected peer.
    pub(crate) fn send_one_datagram(&self, buf: &[u8]) -> Result<Sent, SocketError> {
        let raw = self.raw()?;
        if !self.is_datagram() {
            return Err(SocketError::UNSUPPORTED);
        }
        match retry(|| nix::sys::socket::send(raw, buf, MsgFlags::MSG_NOSIGNAL)) {
            Ok(n) => Ok(Sent::Bytes(n)),
            Err(Errno::EAGAIN) => Ok(Sent::WouldBlock),
            Err(e) => Err(from_errno(e)),
        }
    }
}

impl Datagram for StdSocket {
    type Addr = Addr;

    /// `recvmsg(2)` with `MSG_TRUNC`: one datagram, its true length (a truncated one
    /// is reported, its rest is gone) and its source: an IP address and port, a Unix
    /// path or abstract name, or [`Addr::Unnamed`] from an unbound Unix socket (which
    /// cannot be answered). `EAGAIN` is `Ok(None)`; `EINTR` is retried. Nothing is
    /// allocated.
    ///
    /// # Errors
    /// A pending error: `ConnectionRefused` after an ICMP port unreachable on a
    /// connected socket (the error is cleared by this report); `Unsupported` on a
    /// stream socket or file channel; `EBADF` once closed.
    fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<Addr>>, SocketError> {
        let cap = buf.len();
        Ok(self.receive(buf)?.map(|(len, from)| Received {
            len,
            copied: len.min(cap),
            from,
        }))
    }

    /// `sendto(2)` with `MSG_NOSIGNAL`: `buf` as one datagram to `to`. On an IPv6
    /// socket an IPv4 `to` is sent to its v4-mapped address (`::ffff:a.b.c.d`), so a
    /// dual-stack socket answers both families. `EAGAIN` is [`Sent::WouldBlock`]
    /// (nothing sent); `EINTR` is retried.
    ///
    /// # Errors
    /// `EMSGSIZE` (`Other`) for a datagram above 65,507 bytes (UDP over IPv4) or the
    /// socket's send buffer, `ConnectionRefused` (a pending error), `ENOBUFS`
    /// (`OutOfMemory`), `InvalidInput` for [`Addr::Unnamed`] or an address of
    /// another family, `NotFound`/`ConnectionRefused` for a Unix path with nothing
    /// bound there, `Unsupported` on a stream socket or file channel.
    fn send_to(&mut self, buf: &[u8], to: &Addr) -> Result<Sent, SocketError> {
        let raw = self.raw()?;
        if !self.is_datagram() {
            return Err(SocketError::UNSUPPORTED);
        }
        let mapped;
        let to = match (self.kind, to) {
            (Kind::Datagram(Family::Inet6), Addr::Inet(SocketAddr::V4(v4))) => {
                mapped = Addr::Inet(SocketAddr::V6(SocketAddrV6::new(
                    v4.ip().to_ipv6_mapped(),
                    v4.port(),
                    0,
                    0,
                )));
                &mapped
            }
            _ => to,
        };
        let sent = retry(|| to.with_sockaddr(|sa| sendto(raw, buf, sa, MsgFlags::MSG_NOSIGNAL)));
        match sent {
            Ok(n) => Ok(Sent::Bytes(n)),
            Err(Errno::EAGAIN) => Ok(Sent::WouldBlock),
            Err(e) => Err(from_errno(e)),
        }
    }

    /// `send(2)` to the connected peer, as [`send_to`](Self::send_to).
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to); `EDESTADDRREQ` (UDP) or `NotConnected` (Unix)
    /// when not connected.
    fn send_datagram(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        self.send_one_datagram(buf)
    }
}
