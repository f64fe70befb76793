//! The select, poll and epoll datagram harnesses: `StdSocket` datagram sockets on loopback
//! (UDP over IPv4 and IPv6) and on Unix paths, with `StdSocket` peers.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asyncore::asyncore_std::Family;
use asyncore::{Addr, Datagram, Reactor, StdSocket, Token};
use nix::libc::{self, c_short};

use crate::dgram_harness::{DHarness, DR, Fam};
use crate::harness::Backend;
use crate::real::Kind;
use crate::spy::Spy;

/// Bound on how long a peer action may take to show on a socket: a hang turned into
/// a failure message, never a performance assertion.
const SETTLE: Duration = Duration::from_secs(10);

/// Waits until `poll(2)` on `fd` reports one of `want` (asking for `events`).
fn wait_poll(fd: RawFd, events: c_short, want: c_short, what: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one initialised `pollfd` on the stack for the call; `fd` is open
        // (its socket lives in the caller).
        let n = unsafe { libc::poll(&mut pfd, 1, 10) };
        if n > 0 && pfd.revents & want != 0 {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

fn ip(fam: Fam) -> &'static str {
    match fam {
        Fam::V4 => "127.0.0.1:0",
        _ => "[::1]:0",
    }
}

/// A datagram peer: a `StdSocket` of the same family.
#[derive(Debug)]
pub struct DPeer {
    sock: StdSocket,
}

/// A real-kernel datagram harness over selector kind `K`; removes its socket
/// files when dropped.
#[derive(Debug)]
pub struct RealD<K> {
    paths: Vec<PathBuf>,
    _kind: PhantomData<K>,
}

pub type SelectDH = RealD<crate::real::SelectKind>;
pub type PollDH = RealD<crate::real::PollKind>;
pub type EpollDH = RealD<crate::real::EpollKind>;

impl<K> RealD<K> {
    fn path(&mut self) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "asyncore-dconf-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&p);
        self.paths.push(p.clone());
        p
    }

    fn socket(&mut self, fam: Fam) -> StdSocket {
        match fam {
            Fam::Unix => {
                let p = self.path();
                StdSocket::unix_datagram_bind(p).expect("bind a Unix datagram socket")
            }
            _ => StdSocket::udp_bind(ip(fam).parse().unwrap()).expect("bind a UDP socket"),
        }
    }
}

impl<K> Drop for RealD<K> {
    fn drop(&mut self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn our_fd<K: Kind>(r: &DR<RealD<K>>, ours: Token) -> RawFd {
    r.get(ours)
        .expect("our channel is in the map")
        .socket
        .as_raw_fd()
}

impl<K: Kind> DHarness for RealD<K> {
    const BACKEND: Backend = K::BACKEND;
    type Sock = StdSocket;
    type Inner = K::Inner;
    type Peer = DPeer;

    fn new() -> Self {
        RealD {
            paths: Vec::new(),
            _kind: PhantomData,
        }
    }

    fn reactor(&mut self) -> DR<Self> {
        Reactor::new(Spy::new(K::inner()))
    }

    fn available(&self, fam: Fam) -> bool {
        fam != Fam::V6 || StdSocket::udp_bind("[::1]:0".parse().unwrap()).is_ok()
    }

    fn bound(&mut self, fam: Fam) -> (StdSocket, DPeer) {
        let ours = self.socket(fam);
        let peer = self.socket(fam);
        (ours, DPeer { sock: peer })
    }

    fn peer_addr(&self, p: &DPeer) -> Addr {
        p.sock.local_addr().expect("the peer's address")
    }

    fn peer_send(&mut self, r: &mut DR<Self>, ours: Token, p: &mut DPeer, data: &[u8]) {
        let to = r
            .get(ours)
            .expect("our channel")
            .socket
            .local_addr()
            .expect("our address");
        let sent = p.sock.send_to(data, &to).expect("the peer sends");
        assert_eq!(sent, asyncore::Sent::Bytes(data.len()));
        wait_poll(
            our_fd::<K>(r, ours),
            libc::POLLIN,
            libc::POLLIN,
            "the datagram to arrive",
        );
    }

    fn peer_recv(&mut self, r: &mut DR<Self>, ours: Token, p: &mut DPeer) -> (Vec<u8>, bool) {
        wait_poll(
            p.sock.as_raw_fd(),
            libc::POLLIN,
            libc::POLLIN,
            "our datagram at the peer",
        );
        let mut buf = vec![0u8; 65_536];
        let got = p
            .sock
            .recv_from(&mut buf)
            .expect("the peer receives")
            .expect("readable: a datagram is there");
        let ours = r.get(ours).expect("our channel").socket.local_addr();
        (got.data(&buf).to_vec(), ours.ok() == Some(got.from))
    }

    fn connected_refused(&mut self, fam: Fam) -> StdSocket {
        // A port that was free a moment ago: nothing is bound there now.
        let holder = StdSocket::udp_bind(ip(fam).parse().unwrap()).expect("bind");
        let at: SocketAddr = holder.local_addr().unwrap().as_inet().unwrap();
        drop(holder);
        let mut ours = StdSocket::udp_connect(at).expect("connect");
        ours.send_datagram(b"anyone?").expect("send");
        wait_poll(ours.as_raw_fd(), 0, libc::POLLERR, "the port unreachable");
        ours
    }

    fn pair(&mut self) -> (StdSocket, DPeer) {
        let (ours, peer) = StdSocket::unix_datagram_pair().expect("socketpair");
        (ours, DPeer { sock: peer })
    }

    fn peer_drain(&mut self, r: &mut DR<Self>, ours: Token, p: &mut DPeer) -> usize {
        let mut buf = vec![0u8; 4096];
        let mut n = 0;
        while p.sock.recv_from(&mut buf).expect("drain").is_some() {
            n += 1;
        }
        wait_poll(
            our_fd::<K>(r, ours),
            libc::POLLOUT,
            libc::POLLOUT,
            "room again",
        );
        n
    }

    fn pass(&mut self, r: &mut DR<Self>, timeout: Duration) -> usize {
        r.poll_once(Some(timeout)).expect("pass")
    }
}

/// One reactor, one socket type, both transports: a TCP listener and a UDP socket
/// side by side (what a DNS server on both needs), each dispatched by its kind.
pub fn mixed_map<K: Kind>() {
    use asyncore::{Ctx, Dispatcher, Error, Sent, Socket};

    #[derive(Debug, PartialEq)]
    enum Seen {
        Accepted,
        Datagram(Vec<u8>),
    }

    struct Any(std::rc::Rc<std::cell::RefCell<Vec<Seen>>>);

    impl Dispatcher<StdSocket> for Any {
        type Error = Error;
        fn handle_accepted(
            &mut self,
            _: &mut Ctx<'_, StdSocket, Self>,
            mut s: StdSocket,
        ) -> Result<(), Error> {
            self.0.borrow_mut().push(Seen::Accepted);
            s.close()?;
            Ok(())
        }
        fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
            let mut buf = [0u8; 64];
            while let Some(d) = ctx.recv_from(&mut buf)? {
                self.0
                    .borrow_mut()
                    .push(Seen::Datagram(d.data(&buf).to_vec()));
                assert_eq!(ctx.send_to(b"ack", &d.from)?, Sent::Bytes(3));
            }
            Ok(())
        }
    }

    let _fds = crate::harness::fds_shared();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut r: Reactor<asyncore::With<K::Inner, StdSocket>, Any, 4> = Reactor::new(K::inner());
    let tcp = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 8).unwrap();
    let udp = StdSocket::udp_bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let (tcp_at, udp_at) = (tcp.local_addr().unwrap(), udp.local_addr().unwrap());
    let lt = r.add(tcp, Any(seen.clone())).map_err(|e| e.kind).unwrap();
    let ut = r.add(udp, Any(seen.clone())).map_err(|e| e.kind).unwrap();
    assert_eq!(r.get(lt).unwrap().state, asyncore::State::Listening);
    assert_eq!(r.get(ut).unwrap().state, asyncore::State::Datagram);
    let _client = std::net::TcpStream::connect(tcp_at.as_inet().unwrap()).unwrap();
    let mut peer = StdSocket::datagram(Family::Inet).unwrap();
    peer.send_to(b"query", &udp_at).unwrap();
    let deadline = Instant::now() + SETTLE;
    while seen.borrow().len() < 2 {
        assert!(Instant::now() < deadline, "timed out: {:?}", seen.borrow());
        r.poll_once(Some(Duration::from_millis(100))).unwrap();
    }
    let mut got = std::mem::take(&mut *seen.borrow_mut());
    got.sort_by_key(|s| matches!(s, Seen::Datagram(_)));
    assert_eq!(got, [Seen::Accepted, Seen::Datagram(b"query".to_vec())]);
    wait_poll(peer.as_raw_fd(), libc::POLLIN, libc::POLLIN, "the ack");
    let mut buf = [0u8; 8];
    let ack = peer.recv_from(&mut buf).unwrap().unwrap();
    assert_eq!((ack.data(&buf), ack.from), (&b"ack"[..], udp_at));
}
