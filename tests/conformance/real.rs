//! The select, poll and epoll harnesses: `StdSocket`s on TCP loopback, with
//! `std::net::TcpStream` peers.

use std::io::{ErrorKind as IoKind, Read, Write};
use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use asyncore::{
    Addr, EpollSelector, PollSelector, Reactor, RunEnd, SelectSelector, Selector, Socket,
    StdSocket, Token, asyncore_std::Family,
};
use nix::libc::{self, c_short};
use nix::sys::socket::{MsgFlags, recv, send, setsockopt, sockopt};

use crate::harness::{Backend, CAP, Harness, R};
use crate::spy::Spy;

/// Bound on how long a peer action may take to show on our socket: a hang turned
/// into a failure message, never a performance assertion.
const SETTLE: Duration = Duration::from_secs(10);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Polls `f` until it returns `Some`, or panics after [`SETTLE`].
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until `poll(2)` on `fd` reports one of `want` (asking for `events`).
///
/// A raw `libc::poll`: nix's `PollFd::revents` drops a report with a bit it does not
/// name, such as `POLLRDHUP`.
fn wait_poll(fd: BorrowedFd<'_>, events: c_short, want: c_short, what: &str) {
    until(what, || {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one initialised `pollfd` on the stack, borrowed for the call only;
        // `fd` is open for the borrow's lifetime.
        let n = unsafe { libc::poll(&mut pfd, 1, 10) };
        (n > 0 && pfd.revents & want != 0).then_some(())
    });
}

/// Bytes queued for reading on `fd` (a `MSG_PEEK`, so nothing is consumed).
fn queued(fd: RawFd) -> usize {
    let mut buf = vec![0u8; 1 << 16];
    recv(fd, &mut buf, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT).unwrap_or(0)
}

/// Which real selector a [`Real`] harness uses.
pub trait Kind {
    const BACKEND: Backend;
    type Inner: Selector<Source = RawFd>;
    fn inner() -> Self::Inner;
}

#[derive(Debug)]
pub struct SelectKind;
impl Kind for SelectKind {
    const BACKEND: Backend = Backend::Select;
    type Inner = SelectSelector;
    fn inner() -> SelectSelector {
        SelectSelector::new()
    }
}

#[derive(Debug)]
pub struct PollKind;
impl Kind for PollKind {
    const BACKEND: Backend = Backend::Poll;
    type Inner = PollSelector<CAP>;
    fn inner() -> PollSelector<CAP> {
        PollSelector::new()
    }
}

#[derive(Debug)]
pub struct EpollKind;
impl Kind for EpollKind {
    const BACKEND: Backend = Backend::Epoll;
    type Inner = EpollSelector<CAP>;
    fn inner() -> EpollSelector<CAP> {
        EpollSelector::new()
    }
}

/// A real-kernel harness over selector kind `K`.
#[derive(Debug)]
pub struct Real<K> {
    /// Sockets that must stay open for the scenario (the bound, non-listening socket
    /// whose port refuses connections).
    keep: Vec<StdSocket>,
    _kind: PhantomData<K>,
}

pub type SelectH = Real<SelectKind>;
pub type PollH = Real<PollKind>;
pub type EpollH = Real<EpollKind>;

/// The peer end of a TCP connection.
#[derive(Debug)]
pub struct TcpPeer {
    stream: Option<TcpStream>,
}

impl TcpPeer {
    fn new(stream: TcpStream) -> Self {
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream.set_read_timeout(Some(SETTLE)).expect("read timeout");
        TcpPeer {
            stream: Some(stream),
        }
    }

    fn stream(&mut self) -> &mut TcpStream {
        self.stream.as_mut().expect("the peer is already gone")
    }
}

fn our_fd<K: Kind>(r: &R<Real<K>>, ours: Token) -> BorrowedFd<'_> {
    r.get(ours)
        .expect("our channel is in the map")
        .socket
        .fd()
        .expect("our socket is open")
}

impl<K: Kind> Harness for Real<K> {
    const BACKEND: Backend = K::BACKEND;
    type Sock = StdSocket;
    type Inner = K::Inner;
    type Peer = TcpPeer;
    type Listen = SocketAddr;

    fn new() -> Self {
        Real {
            keep: Vec::new(),
            _kind: PhantomData,
        }
    }

    fn reactor(&mut self) -> R<Self> {
        Reactor::new(Spy::new(K::inner()))
    }

    fn pair(&mut self) -> (StdSocket, TcpPeer) {
        let (mut listener, addr) = self.listener();
        let peer = TcpStream::connect(addr).expect("connect the peer");
        let ours = until("the accept of the peer", || {
            listener.accept().expect("accept")
        });
        (ours, TcpPeer::new(peer))
    }

    fn listener(&mut self) -> (StdSocket, SocketAddr) {
        let l = StdSocket::tcp_listener(loopback(), 16).expect("listener");
        let addr = l
            .local_addr()
            .expect("local_addr")
            .as_inet()
            .expect("an IP address");
        (l, addr)
    }

    fn connect_client(&mut self, r: &mut R<Self>, l: &SocketAddr, listener: Token) -> TcpPeer {
        let peer = TcpStream::connect(l).expect("connect a client");
        wait_poll(
            our_fd::<K>(r, listener),
            libc::POLLIN,
            libc::POLLIN,
            "the pending connection",
        );
        TcpPeer::new(peer)
    }

    fn connecting(&mut self) -> (StdSocket, TcpPeer) {
        let listener = TcpListener::bind(loopback()).expect("peer listener");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local_addr");
        let ours = StdSocket::tcp_connect(addr).expect("start connect");
        let (peer, _) = until("the peer's accept", || match listener.accept() {
            Ok(c) => Some(c),
            Err(e) if e.kind() == IoKind::WouldBlock => None,
            Err(e) => panic!("accept: {e}"),
        });
        peer.set_nonblocking(false).expect("blocking peer");
        wait_poll(
            ours.fd().expect("open"),
            libc::POLLOUT,
            libc::POLLOUT,
            "the connect to complete",
        );
        (ours, TcpPeer::new(peer))
    }

    fn fresh(&mut self) -> StdSocket {
        StdSocket::new(Family::Inet).expect("socket")
    }

    fn connecting_refused(&mut self) -> StdSocket {
        // A bound socket that does not listen: its port answers SYN with RST, and
        // it stays reserved (nobody else can listen there) while the test runs.
        let holder = StdSocket::new(Family::Inet).expect("socket");
        holder.bind(&Addr::Inet(loopback())).expect("bind");
        let addr = holder
            .local_addr()
            .expect("local_addr")
            .as_inet()
            .expect("IP");
        self.keep.push(holder);
        let ours = StdSocket::tcp_connect(addr).expect("a loopback connect is in progress");
        wait_poll(
            ours.fd().expect("open"),
            0,
            libc::POLLERR | libc::POLLHUP,
            "the refusal",
        );
        ours
    }

    fn peer_send(&mut self, r: &mut R<Self>, ours: Token, p: &mut TcpPeer, data: &[u8]) {
        let fd = our_fd::<K>(r, ours);
        let before = queued(fd.as_raw_fd());
        p.stream().write_all(data).expect("peer send");
        until("the data to arrive", || {
            (queued(fd.as_raw_fd()) >= before + data.len()).then_some(())
        });
    }

    fn peer_shutdown_write(&mut self, r: &mut R<Self>, ours: Token, p: &mut TcpPeer) {
        p.stream().shutdown(Shutdown::Write).expect("peer shutdown");
        wait_poll(
            our_fd::<K>(r, ours),
            libc::POLLRDHUP,
            libc::POLLRDHUP,
            "the FIN to arrive",
        );
    }

    fn peer_reset(&mut self, r: &mut R<Self>, ours: Token, p: &mut TcpPeer) {
        self.peer_reset_pending(p);
        self.await_reset(r, ours);
    }

    fn peer_reset_pending(&mut self, p: &mut TcpPeer) {
        let stream = p.stream.take().expect("the peer is already gone");
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        setsockopt(&stream.as_fd(), sockopt::Linger, &linger).expect("SO_LINGER 0");
        drop(stream);
    }

    fn await_reset(&mut self, r: &mut R<Self>, ours: Token) {
        wait_poll(
            our_fd::<K>(r, ours),
            0,
            libc::POLLERR | libc::POLLHUP,
            "the RST to arrive",
        );
    }

    fn peer_send_oob(&mut self, r: &mut R<Self>, ours: Token, p: &mut TcpPeer, byte: u8) {
        let n = send(
            p.stream().as_raw_fd(),
            &[byte],
            MsgFlags::MSG_OOB | MsgFlags::MSG_NOSIGNAL,
        )
        .expect("send MSG_OOB");
        assert_eq!(n, 1);
        wait_poll(
            our_fd::<K>(r, ours),
            libc::POLLPRI,
            libc::POLLPRI,
            "the urgent byte to arrive",
        );
    }

    fn peer_recv(&mut self, _r: &mut R<Self>, _ours: Token, p: &mut TcpPeer, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        p.stream().read_exact(&mut buf).expect("peer read");
        buf
    }

    fn peer_sees_eof(&mut self, _r: &mut R<Self>, p: &mut TcpPeer) -> bool {
        let mut byte = [0u8; 1];
        match p.stream().read(&mut byte) {
            Ok(0) => true,
            Err(e) => e.kind() == IoKind::ConnectionReset,
            Ok(_) => false,
        }
    }

    fn close_behind_back(&mut self, r: &mut R<Self>, ours: Token) {
        let fd = our_fd::<K>(r, ours).as_raw_fd();
        nix::unistd::close(fd).expect("close behind the loop's back");
    }

    fn pass(&mut self, r: &mut R<Self>, timeout: Duration) -> usize {
        r.poll_once(Some(timeout)).expect("pass")
    }

    fn run(&mut self, r: &mut R<Self>, timeout: Duration, count: Option<u32>) -> RunEnd {
        r.run(Some(timeout), count).expect("run")
    }
}
