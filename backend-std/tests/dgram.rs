//! Datagram sockets on the real kernel: UDP over IPv4 and IPv6 and Unix datagram
//! sockets (path, abstract, unbound, pairs); boundaries, sources and true lengths;
//! the flags every socket is made with; the options (broadcast, multicast, v6-only);
//! ECONNREFUSED as a typed error that leaves the socket usable; a full receiver
//! pushing back.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use asyncore_core::{Datagram, ErrorKind, Interest, Received, Recv, Sent, Socket, State, errno};
use asyncore_std::{Addr, Family, Kind, StdSocket, UnixAddr};
use common::{TempPath, wait};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

fn udp(ip: &str) -> Option<StdSocket> {
    match StdSocket::udp_bind(format!("{ip}:0").parse().unwrap()) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipping {ip}: {e}");
            None
        }
    }
}

fn addr_of(s: &StdSocket) -> Addr {
    s.local_addr().unwrap()
}

/// Waits until `s` has a datagram (or an error) waiting, then receives it.
fn recv(s: &mut StdSocket, buf: &mut [u8]) -> Result<Received<Addr>, asyncore_core::SocketError> {
    wait(s, Interest::READABLE);
    Ok(s.recv_from(buf)?.expect("readable: a datagram is waiting"))
}

fn check_flags(s: &StdSocket) {
    let fd = s.fd().unwrap();
    let fl = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
    assert!(fl.contains(OFlag::O_NONBLOCK));
    let fdfl = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap());
    assert!(fdfl.contains(FdFlag::FD_CLOEXEC));
}

#[test]
fn udp_boundaries_sources_and_true_lengths() {
    for ip in ["127.0.0.1", "[::1]"] {
        let (Some(mut a), Some(mut b)) = (udp(ip), udp(ip)) else {
            continue;
        };
        for s in [&a, &b] {
            check_flags(s);
            assert!(s.is_datagram());
        }
        let family = if ip.starts_with('[') {
            Family::Inet6
        } else {
            Family::Inet
        };
        assert_eq!(a.kind(), Kind::Datagram(family));
        assert_eq!(a.initial_state(), State::Datagram);
        let (to_b, from_a) = (addr_of(&b), addr_of(&a));
        for d in [&b"first"[..], b"", b"third, longer than the buffer"] {
            assert_eq!(a.send_to(d, &to_b), Ok(Sent::Bytes(d.len())));
        }
        let mut buf = [0u8; 8];
        let r = recv(&mut b, &mut buf).unwrap();
        assert_eq!(
            (r.data(&buf), r.from, r.truncated()),
            (&b"first"[..], from_a, false)
        );
        let r = recv(&mut b, &mut buf).unwrap();
        assert_eq!(
            (r.len, r.copied, r.from),
            (0, 0, from_a),
            "an empty datagram"
        );
        let r = recv(&mut b, &mut buf).unwrap();
        assert_eq!((r.len, r.copied, r.truncated()), (29, 8, true));
        assert_eq!(r.data(&buf), b"third, l");
        assert_eq!(b.recv_from(&mut buf), Ok(None), "the rest is gone");

        // Socket::recv reads one datagram too; a truncated one is EMSGSIZE.
        a.send_to(b"0123456789", &to_b).unwrap();
        a.send_to(b"", &to_b).unwrap();
        wait(&b, Interest::READABLE);
        let e = b.recv(&mut buf).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(errno::EMSGSIZE));
        wait(&b, Interest::READABLE);
        assert_eq!(b.recv(&mut buf), Ok(Recv::Data(0)), "empty is not EOF");
        assert_eq!(b.recv(&mut buf), Ok(Recv::WouldBlock));
    }
}

#[test]
fn connected_udp_sends_to_its_peer_and_refused_is_a_typed_error() {
    for ip in ["127.0.0.1", "[::1]"] {
        let Some(mut server) = udp(ip) else { continue };
        let Addr::Inet(at) = addr_of(&server) else {
            panic!()
        };
        let mut client = StdSocket::udp_connect(at).unwrap();
        check_flags(&client);
        assert_eq!(client.initial_state(), State::Datagram);
        assert_eq!(client.send_datagram(b"ping"), Ok(Sent::Bytes(4)));
        assert_eq!(client.send(b""), Ok(Sent::Bytes(0)), "an empty datagram");
        let mut buf = [0u8; 16];
        let r = recv(&mut server, &mut buf).unwrap();
        assert_eq!((r.data(&buf), r.from), (&b"ping"[..], addr_of(&client)));
        assert_eq!(recv(&mut server, &mut buf).unwrap().len, 0);
        server.send_to(b"pong", &r.from).unwrap();
        let got = recv(&mut client, &mut buf).unwrap();
        assert_eq!((got.data(&buf), got.from), (&b"pong"[..], Addr::Inet(at)));

        // The server goes away: the next datagram draws an ICMP port unreachable,
        // which the next operation reports as ConnectionRefused, once.
        drop(server);
        client.send_datagram(b"anyone?").unwrap();
        let r = wait(&client, Interest::READABLE);
        assert!(r.is_readable(), "select reports the pending error readable");
        let e = client.recv_from(&mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        assert!(!e.is_disconnect());
        assert_eq!(client.take_error(), Ok(None), "reported once, then cleared");
        assert_eq!(client.recv_from(&mut buf), Ok(None));
        // Still usable: a new server on the same port gets the next datagram.
        let Ok(mut again) = StdSocket::udp_bind(at) else {
            continue; // the port was taken meanwhile
        };
        client.send_datagram(b"back").unwrap();
        let r = recv(&mut again, &mut buf).unwrap();
        assert_eq!(r.data(&buf), b"back");
    }
}

#[test]
fn a_datagram_too_large_for_udp_is_emsgsize() {
    let mut a = udp("127.0.0.1").unwrap();
    let to = addr_of(&a);
    let big = vec![7u8; 70_000];
    let e = a.send_to(&big, &to).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EMSGSIZE));
    // The largest UDP payload over IPv4 goes, and arrives whole.
    let max = vec![9u8; 65_507];
    assert_eq!(a.send_to(&max, &to), Ok(Sent::Bytes(65_507)));
    let mut buf = vec![0u8; 65_536];
    let r = recv(&mut a, &mut buf).unwrap();
    assert_eq!((r.len, r.truncated()), (65_507, false));
    assert!(r.data(&buf).iter().all(|&b| b == 9));
}

#[test]
fn dual_stack_and_v6_only() {
    // IPV6_V6ONLY off: a v4 client reaches the v6 wildcard socket and is seen as a
    // v4-mapped address, which the socket answers (a v4 address is mapped on send).
    let Ok(dual) = StdSocket::datagram(Family::Inet6) else {
        return;
    };
    let mut dual = dual;
    dual.set_only_v6(false).unwrap();
    assert!(!dual.only_v6().unwrap());
    if dual.bind(&Addr::Inet("[::]:0".parse().unwrap())).is_err() {
        return;
    }
    let port = addr_of(&dual).as_inet().unwrap().port();
    let mut v4 = udp("127.0.0.1").unwrap();
    v4.send_to(
        b"from v4",
        &Addr::Inet(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
    )
    .unwrap();
    let mut buf = [0u8; 16];
    let r = recv(&mut dual, &mut buf).unwrap();
    let SocketAddr::V6(mapped) = r.from.as_inet().unwrap() else {
        panic!("{:?}", r.from)
    };
    assert_eq!(mapped.ip().to_ipv4_mapped(), Some(Ipv4Addr::LOCALHOST));
    dual.send_to(b"to mapped", &r.from).unwrap();
    dual.send_to(b"to v4", &addr_of(&v4)).unwrap();
    assert_eq!(recv(&mut v4, &mut buf).unwrap().data(&buf), b"to mapped");
    assert_eq!(recv(&mut v4, &mut buf).unwrap().data(&buf), b"to v4");

    // IPV6_V6ONLY on: the same v4 datagram finds no socket.
    let only = StdSocket::datagram(Family::Inet6).unwrap();
    only.set_only_v6(true).unwrap();
    assert!(only.only_v6().unwrap());
    only.bind(&Addr::Inet("[::]:0".parse().unwrap())).unwrap();
    let port = addr_of(&only).as_inet().unwrap().port();
    let mut c = StdSocket::udp_connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).unwrap();
    c.send_datagram(b"x").unwrap();
    wait(&c, Interest::READABLE);
    assert_eq!(
        c.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    // Once bound, the option is fixed.
    assert_eq!(
        only.set_only_v6(false).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn broadcast_needs_so_broadcast() {
    let mut s = udp("127.0.0.1").unwrap();
    assert!(!s.broadcast().unwrap());
    let everyone = Addr::Inet(SocketAddr::from((Ipv4Addr::BROADCAST, 9)));
    let e = s.send_to(b"hello all", &everyone).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    s.set_broadcast(true).unwrap();
    assert!(s.broadcast().unwrap());
    // Allowed now; whether it leaves depends on the host's routes.
    if let Err(e) = s.send_to(b"hello all", &everyone) {
        assert_ne!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    }
}

#[test]
fn multicast_join_and_leave() {
    let group = Ipv4Addr::new(239, 255, 42, 99);
    let mut r = udp("0.0.0.0").unwrap();
    r.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    // Joining twice is an error the OS names; leaving works once.
    assert!(r.join_multicast_v4(group, Ipv4Addr::LOCALHOST).is_err());
    assert!(
        r.join_multicast_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST)
            .is_err(),
        "not a multicast address"
    );
    r.set_multicast_loop_v4(true).unwrap();
    r.set_multicast_ttl_v4(1).unwrap();
    let port = addr_of(&r).as_inet().unwrap().port();
    // Loopback delivery of multicast needs a route for it on `lo`; where the host has
    // one (as here), the datagram comes back through the group.
    let mut t = udp("127.0.0.1").unwrap();
    let to = Addr::Inet(SocketAddr::from((group, port)));
    if t.send_to(b"to the group", &to).is_ok() {
        let ready = common::wait_fd(
            r.as_raw_fd(),
            Interest::READABLE,
            std::time::Duration::from_secs(2),
        );
        if ready.is_readable() {
            let mut buf = [0u8; 32];
            let got = r.recv_from(&mut buf).unwrap().unwrap();
            assert_eq!(got.data(&buf), b"to the group");
        } else {
            eprintln!("no multicast route on loopback here: delivery not checked");
        }
    }
    r.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    assert!(r.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).is_err());
    let _ = &mut t;

    let Some(r6) = udp("[::]") else { return };
    let group6: Ipv6Addr = "ff02::1:ff00:4299".parse().unwrap();
    let lo = nix::net::if_::if_nametoindex("lo").unwrap();
    r6.join_multicast_v6(&group6, lo).unwrap();
    assert!(r6.join_multicast_v6(&group6, lo).is_err());
    r6.set_multicast_loop_v6(false).unwrap();
    r6.leave_multicast_v6(&group6, lo).unwrap();
    assert!(r6.leave_multicast_v6(&group6, lo).is_err());
    assert!(
        r6.join_multicast_v6(&Ipv6Addr::LOCALHOST, 0).is_err(),
        "not a multicast address"
    );
}

#[test]
fn unix_datagram_paths_abstract_unbound_and_pairs() {
    let path = TempPath::new("dgram");
    let mut server = StdSocket::unix_datagram_bind(&path.0).unwrap();
    check_flags(&server);
    assert_eq!(server.kind(), Kind::Datagram(Family::Unix));
    let server_addr = addr_of(&server);
    assert_eq!(server_addr, Addr::unix(&path.0).unwrap());
    // A second bind on the path: in use.
    assert_eq!(
        StdSocket::unix_datagram_bind(&path.0).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );

    // An unbound client: its datagrams come from nobody (Addr::Unnamed).
    let mut anon = StdSocket::datagram(Family::Unix).unwrap();
    anon.send_to(b"anonymous", &server_addr).unwrap();
    let mut buf = [0u8; 64];
    let r = recv(&mut server, &mut buf).unwrap();
    assert_eq!((r.data(&buf), r.from), (&b"anonymous"[..], Addr::Unnamed));
    assert_eq!(
        server.send_to(b"?", &Addr::Unnamed).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // Not connected: a plain send is an error, not a disconnect.
    let e = anon.send_datagram(b"to whom").unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::NotConnected), "{e:?}");

    // An abstract client: answered at its name.
    let name = format!("asyncore-dgram-{}", std::process::id());
    let mut abs = StdSocket::datagram(Family::Unix).unwrap();
    abs.bind(&Addr::Unix(
        UnixAddr::new_abstract(name.as_bytes()).unwrap(),
    ))
    .unwrap();
    abs.send_to(b"abstract", &server_addr).unwrap();
    let r = recv(&mut server, &mut buf).unwrap();
    assert_eq!(
        r.from.as_unix().unwrap().as_abstract(),
        Some(name.as_bytes())
    );
    server.send_to(b"reply", &r.from).unwrap();
    let back = recv(&mut abs, &mut buf).unwrap();
    assert_eq!((back.data(&buf), back.from), (&b"reply"[..], server_addr));

    // Truncation is reported on Unix datagram sockets too.
    abs.send_to(&[1u8; 100], &server_addr).unwrap();
    let r = recv(&mut server, &mut buf).unwrap();
    assert_eq!((r.len, r.copied), (100, 64));

    // Nothing at a path: NotFound; a path whose socket is gone: ConnectionRefused.
    let gone = TempPath::new("gone");
    drop(StdSocket::unix_datagram_bind(&gone.0).unwrap());
    let e = abs
        .send_to(b"x", &Addr::unix(&gone.0).unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e:?}");
    let _ = std::fs::remove_file(&gone.0);
    let e = abs
        .send_to(b"x", &Addr::unix(&gone.0).unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // A pair: connected both ways.
    let (mut p, mut q) = StdSocket::unix_datagram_pair().unwrap();
    check_flags(&p);
    p.send_datagram(b"one").unwrap();
    p.send_datagram(b"").unwrap();
    let r = recv(&mut q, &mut buf).unwrap();
    assert_eq!((r.data(&buf), r.from), (&b"one"[..], Addr::Unnamed));
    assert_eq!(recv(&mut q, &mut buf).unwrap().len, 0);
}

/// A connected Unix datagram socket whose peer does not read fills the peer's
/// queue: the next send would block (back-pressure), and write readiness comes back
/// once the peer reads.
#[test]
fn a_full_unix_receiver_pushes_back() {
    let (mut p, mut q) = StdSocket::unix_datagram_pair().unwrap();
    let mut sent = 0;
    loop {
        match p.send_datagram(&[sent as u8; 512]).unwrap() {
            Sent::Bytes(512) => sent += 1,
            Sent::WouldBlock => break,
            other => panic!("{other:?}"),
        }
        assert!(sent < 100_000, "never pushed back");
    }
    assert!(sent > 0);
    let r = common::wait_fd(
        p.as_raw_fd(),
        Interest::WRITABLE,
        std::time::Duration::from_millis(0),
    );
    assert!(!r.is_writable(), "not writable while the peer is full");
    let mut buf = [0u8; 512];
    for i in 0..sent {
        let r = q.recv_from(&mut buf).unwrap().expect("queued");
        assert_eq!((r.len, buf[0]), (512, i as u8));
    }
    assert!(wait(&p, Interest::WRITABLE).is_writable());
    assert_eq!(p.send_datagram(b"again"), Ok(Sent::Bytes(5)));
}

#[test]
fn datagram_operations_on_other_kinds_are_unsupported() {
    let (mut a, _b) = StdSocket::pair().unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(
        a.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        a.send_to(b"x", &Addr::Unnamed).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        a.send_datagram(b"x").unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    let mut closed = StdSocket::datagram(Family::Inet).unwrap();
    closed.close().unwrap();
    assert_eq!(closed.initial_state(), State::Closed);
    assert_eq!(
        closed.recv_from(&mut buf).unwrap_err().raw_os_error(),
        Some(errno::EBADF)
    );
}
