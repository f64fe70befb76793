//! StdSocket on real loopback sockets: flags, bind, connect, accept, recv/send, OOB,
//! addresses, close.

mod common;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use asyncore_core::{ErrorKind, Interest, Recv, Sent, Socket, State, errno};
use asyncore_std::{Addr, Family, Kind, StdSocket};
use common::{TempPath, finish_pair, tcp_pair, unix_pair, wait, wait_fd};
use embedded_io::{Read, ReadReady, Write, WriteReady};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockType, SockaddrLike, SockaddrStorage, getsockname, getsockopt,
    sockopt,
};

fn check_flags(s: &StdSocket, family: AddressFamily) {
    let fd = s.fd().expect("open");
    let fl = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
    assert!(fl.contains(OFlag::O_NONBLOCK), "O_NONBLOCK");
    let fdfl = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
    assert!(fdfl.contains(FdFlag::FD_CLOEXEC), "FD_CLOEXEC");
    assert_eq!(
        getsockopt(&fd, sockopt::SockType).unwrap(),
        SockType::Stream
    );
    let ss: SockaddrStorage = getsockname(fd.as_raw_fd()).unwrap();
    assert_eq!(ss.family(), Some(family));
}

fn check_all_flags(ip: &str, family: AddressFamily, fam: Family) {
    let Some((listener, client, server)) = tcp_pair(ip) else {
        return;
    };
    for s in [&listener, &client, &server] {
        check_flags(s, family);
        assert_eq!(s.kind(), Kind::Socket(fam));
    }
    check_flags(&StdSocket::new(fam).unwrap(), family);
}

#[test]
fn flags_ipv4() {
    check_all_flags("127.0.0.1", AddressFamily::Inet, Family::Inet);
}

#[test]
fn flags_ipv6() {
    check_all_flags("[::1]", AddressFamily::Inet6, Family::Inet6);
}

#[test]
fn flags_unix() {
    let (_path, listener, client, server) = unix_pair("flags");
    for s in [&listener, &client, &server] {
        check_flags(s, AddressFamily::Unix);
        assert_eq!(s.kind(), Kind::Socket(Family::Unix));
    }
    let (a, b) = StdSocket::pair().unwrap();
    check_flags(&a, AddressFamily::Unix);
    check_flags(&b, AddressFamily::Unix);
}

#[test]
fn bind_addr_in_use() {
    let listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 4).unwrap();
    let addr = listener.local_addr().unwrap();
    let other = StdSocket::new(Family::Inet).unwrap();
    other.set_reuse_addr().unwrap(); // even with SO_REUSEADDR
    let err = other.bind(&addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert_eq!(err.raw_os_error(), Some(errno::EADDRINUSE));
    let err = StdSocket::tcp_listener(addr.as_inet().unwrap(), 4).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);

    let (path, _l, _c, _s) = unix_pair("inuse");
    let err = StdSocket::unix_listener(&path.0, 4).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert_eq!(err.raw_os_error(), Some(errno::EADDRINUSE));
}

#[test]
fn set_reuse_addr() {
    let s = StdSocket::new(Family::Inet).unwrap();
    let fd = s.fd().unwrap();
    assert!(!getsockopt(&fd, sockopt::ReuseAddr).unwrap());
    s.set_reuse_addr().unwrap();
    assert!(getsockopt(&fd, sockopt::ReuseAddr).unwrap());
    let listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 4).unwrap();
    assert!(getsockopt(&listener.fd().unwrap(), sockopt::ReuseAddr).unwrap());
}

fn recv_send_eof(mut client: StdSocket, mut server: StdSocket) {
    let mut buf = [0u8; 64];
    assert_eq!(server.recv(&mut buf).unwrap(), Recv::WouldBlock);
    assert_eq!(server.recv(&mut []).unwrap(), Recv::Data(0));
    assert!(!server.read_ready().unwrap());
    assert!(client.write_ready().unwrap());

    assert_eq!(client.send(b"hello").unwrap(), Sent::Bytes(5));
    assert_eq!(client.send(b"").unwrap(), Sent::Bytes(0));
    assert!(wait(&server, Interest::READABLE).is_readable());
    assert!(server.read_ready().unwrap());
    assert_eq!(server.recv(&mut buf).unwrap(), Recv::Data(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(server.recv(&mut buf).unwrap(), Recv::WouldBlock);

    // Half-close: the server reads EOF and can still write back.
    client.shutdown_write().unwrap();
    assert!(wait(&server, Interest::READABLE).is_readable());
    assert_eq!(server.recv(&mut buf).unwrap(), Recv::Eof);
    assert_eq!(server.recv(&mut buf).unwrap(), Recv::Eof);
    assert_eq!(server.send(b"bye").unwrap(), Sent::Bytes(3));
    wait(&client, Interest::READABLE);
    assert_eq!(client.recv(&mut buf).unwrap(), Recv::Data(3));
    assert_eq!(&buf[..3], b"bye");

    // The client goes away: sending fails with a disconnect, never SIGPIPE.
    client.close().unwrap();
    let mut last = None;
    for _ in 0..100 {
        match server.send(&[0u8; 1024]) {
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    let e = last.expect("send to a closed peer fails");
    assert!(e.is_disconnect(), "{e:?}");
    assert!(matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
    ));
}

#[test]
fn recv_send_eof_ipv4() {
    let (_l, c, s) = tcp_pair("127.0.0.1").unwrap();
    recv_send_eof(c, s);
}

#[test]
fn recv_send_eof_ipv6() {
    if let Some((_l, c, s)) = tcp_pair("[::1]") {
        recv_send_eof(c, s);
    }
}

#[test]
fn recv_send_eof_unix() {
    let (_p, _l, c, s) = unix_pair("rse");
    recv_send_eof(c, s);
}

#[test]
fn recv_send_eof_socketpair() {
    let (a, b) = StdSocket::pair().unwrap();
    recv_send_eof(a, b);
}

/// A port nothing listens on (bound once, then released).
fn free_port_addr() -> SocketAddr {
    let l = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 1).unwrap();
    l.local_addr().unwrap().as_inet().unwrap()
}

#[test]
fn connect_refused_through_take_error() {
    let addr = free_port_addr();
    match StdSocket::tcp_connect(addr) {
        Err(e) => {
            // Allowed: the kernel may refuse at once.
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        }
        Ok(mut s) => {
            assert_eq!(s.initial_state(), State::Connecting);
            let r = wait(&s, Interest::BOTH);
            assert!(r.is_writable(), "{r:?}");
            let e = s.take_error().unwrap().expect("a pending error");
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
            assert_eq!(e.raw_os_error(), Some(errno::ECONNREFUSED));
            assert_eq!(s.take_error().unwrap(), None, "SO_ERROR is cleared");
        }
    }
}

#[test]
fn connect_success_starts_connecting() {
    let (_l, mut client, mut server) = tcp_pair("127.0.0.1").unwrap();
    assert_eq!(server.initial_state(), State::Connected);
    // The client completed its connect, but as built it still reports Connecting so
    // the loop delivers handle_connect.
    assert_eq!(client.initial_state(), State::Connecting);

    let path = TempPath::new("immediate");
    let mut l = StdSocket::unix_listener(&path.0, 4).unwrap();
    let mut c = StdSocket::unix_connect(&path.0).unwrap();
    assert_eq!(c.initial_state(), State::Connecting);
    let (_c, mut s) = finish_pair(&mut l, c);
    assert_eq!(s.initial_state(), State::Connected);
}

#[test]
fn accept_and_addresses() {
    let mut listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 4).unwrap();
    assert!(listener.is_listening());
    assert_eq!(listener.initial_state(), State::Listening);
    assert!(listener.accept().unwrap().is_none(), "nothing pending");
    let laddr = listener.local_addr().unwrap();
    let client = StdSocket::tcp_connect(laddr.as_inet().unwrap()).unwrap();
    let (client, mut server) = finish_pair(&mut listener, client);
    assert_eq!(server.kind(), Kind::Socket(Family::Inet));
    assert_eq!(server.initial_state(), State::Connected);
    assert_eq!(server.local_addr().unwrap(), laddr);
    assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
    assert_eq!(client.peer_addr().unwrap(), laddr);
    assert!(listener.accept().unwrap().is_none());
    let e = listener.peer_addr().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotConnected);
}

#[test]
fn unix_addresses() {
    let (path, listener, client, server) = unix_pair("addr");
    let bound = Addr::unix(&path.0).unwrap();
    assert_eq!(listener.local_addr().unwrap(), bound);
    assert_eq!(server.local_addr().unwrap(), bound);
    assert_eq!(client.peer_addr().unwrap(), bound);
    assert_eq!(client.local_addr().unwrap(), Addr::Unnamed);
    assert_eq!(server.peer_addr().unwrap(), Addr::Unnamed);
    assert_eq!(
        bound.as_unix().unwrap().as_path(),
        Some(path.0.as_path()),
        "{bound}"
    );
}

#[test]
fn unix_abstract() {
    let name = format!("asyncore-std-test-{}", std::process::id());
    let addr = Addr::Unix(asyncore_std::UnixAddr::new_abstract(name.as_bytes()).unwrap());
    let mut l = StdSocket::new(Family::Unix).unwrap();
    l.bind(&addr).unwrap();
    l.listen(4).unwrap();
    assert_eq!(l.local_addr().unwrap(), addr);
    let mut c = StdSocket::new(Family::Unix).unwrap();
    c.connect(&addr).unwrap();
    let (c, _s) = finish_pair(&mut l, c);
    assert_eq!(c.peer_addr().unwrap(), addr);
}

#[test]
fn accepted_after_reset_is_open_or_aborted() {
    let mut listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 4).unwrap();
    let addr = listener.local_addr().unwrap().as_inet().unwrap();
    let client = StdSocket::tcp_connect(addr).unwrap();
    assert!(wait(&client, Interest::WRITABLE).is_writable());
    // Reset the connection before it is accepted (linger 0 → RST on close).
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(&client.fd().unwrap(), sockopt::Linger, &linger).unwrap();
    drop(client);
    std::thread::sleep(Duration::from_millis(20));
    wait(&listener, Interest::READABLE);
    match listener.accept() {
        Ok(Some(mut s)) => {
            assert_eq!(s.initial_state(), State::Open);
            let mut buf = [0u8; 8];
            let e = s.recv(&mut buf).unwrap_err();
            assert!(e.is_disconnect(), "{e:?}");
        }
        Ok(None) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionAborted),
    }
}

#[test]
fn oob_byte() {
    let (_l, client, mut server) = tcp_pair("127.0.0.1").unwrap();
    let mut buf = [0u8; 8];
    let e = server.recv_priority(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "no urgent data yet");
    nix::sys::socket::send(client.as_raw_fd(), b"!", MsgFlags::MSG_OOB).unwrap();
    let r = wait(&server, Interest::READABLE);
    assert!(r.is_priority(), "{r:?}");
    assert_eq!(server.recv_priority(&mut buf).unwrap(), Recv::Data(1));
    assert_eq!(buf[0], b'!');
    assert_eq!(server.recv_priority(&mut []).unwrap(), Recv::Data(0));
    let r = wait_fd(
        server.as_raw_fd(),
        Interest::READABLE,
        Duration::from_millis(10),
    );
    assert!(!r.is_priority(), "urgent byte consumed: {r:?}");

    // Unix-domain streams: no urgent data pending (or none supported) → EINVAL.
    let (mut a, _b) = StdSocket::pair().unwrap();
    assert!(a.recv_priority(&mut buf).is_err());
}

#[test]
fn initial_states() {
    assert_eq!(
        StdSocket::new(Family::Inet).unwrap().initial_state(),
        State::Open
    );
    let (mut a, _b) = StdSocket::pair().unwrap();
    assert_eq!(a.initial_state(), State::Connected);
    a.close().unwrap();
    assert_eq!(a.initial_state(), State::Closed);
}

#[test]
fn close_is_idempotent() {
    let (_l, mut client, _server) = tcp_pair("127.0.0.1").unwrap();
    let fd = client.source();
    assert!(fd >= 0);
    client.close().unwrap();
    assert!(client.is_closed());
    assert_eq!(client.source(), -1);
    assert_eq!(client.as_raw_fd(), -1);
    client.close().unwrap();
    let mut buf = [0u8; 4];
    for e in [
        client.recv(&mut buf).unwrap_err(),
        client.send(b"x").unwrap_err(),
        client.accept().map(|_| ()).unwrap_err(),
        client.take_error().unwrap_err(),
        client.shutdown_write().unwrap_err(),
        client.local_addr().unwrap_err(),
        client.read_ready().unwrap_err(),
    ] {
        assert_eq!(e.raw_os_error(), Some(errno::EBADF));
    }
    assert!(client.into_fd().is_none());
}

#[test]
fn unix_connect_errors() {
    let path = TempPath::new("missing");
    let e = StdSocket::unix_connect(&path.0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // A socket file nobody listens on any more.
    let l = StdSocket::unix_listener(&path.0, 1).unwrap();
    drop(l);
    let e = StdSocket::unix_connect(&path.0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);

    let long = "x".repeat(200);
    assert_eq!(
        StdSocket::unix_connect(long).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let mut s = StdSocket::new(Family::Unix).unwrap();
    assert_eq!(
        s.connect(&Addr::Unnamed).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn unix_full_backlog_is_an_error_not_in_progress() {
    let path = TempPath::new("backlog");
    let _l = StdSocket::unix_listener(&path.0, 0).unwrap();
    let mut clients = Vec::new();
    let mut refused = None;
    for _ in 0..64 {
        match StdSocket::unix_connect(&path.0) {
            Ok(c) => clients.push(c),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("the backlog fills up");
    assert_eq!(e.raw_os_error(), Some(errno::EAGAIN), "{e:?}");
    assert!(!clients.is_empty());
}

#[test]
fn embedded_io_blocking_roundtrip() {
    let (mut a, mut b) = StdSocket::pair().unwrap();
    let writer = std::thread::spawn(move || {
        let data = vec![7u8; 1 << 20];
        a.write_all(&data).unwrap();
        a.flush().unwrap();
        a
    });
    let mut total = 0;
    let mut buf = [0u8; 4096];
    while total < 1 << 20 {
        let n = b.read(&mut buf).unwrap();
        assert!(n > 0);
        assert!(buf[..n].iter().all(|&x| x == 7));
        total += n;
    }
    let mut a = writer.join().unwrap();
    a.close().unwrap();
    assert_eq!(b.read(&mut buf).unwrap(), 0, "EOF");
    assert_eq!(b.write(&[]).unwrap(), 0);
}

#[test]
fn listen_backlog_is_capped() {
    let mut s = StdSocket::new(Family::Inet).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    s.listen(u32::MAX).unwrap();
    assert!(s.is_listening());
}

#[test]
fn nodelay_toggles_on_tcp_and_is_refused_on_unix() {
    let l = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 4).unwrap();
    let addr = l.local_addr().unwrap().as_inet().unwrap();
    let c = StdSocket::tcp_connect(addr).unwrap();
    assert!(!c.nodelay().unwrap(), "off by default");
    c.set_nodelay(true).unwrap();
    assert!(c.nodelay().unwrap());
    c.set_nodelay(false).unwrap();
    assert!(!c.nodelay().unwrap());
    let (u, _v) = StdSocket::pair().unwrap();
    assert!(u.set_nodelay(true).is_err(), "not a TCP socket");
}
