//! The `DHarness` trait: one backend (mock, select, poll or epoll) as the datagram
//! scenarios see it: our datagram sockets (bound on IPv4, IPv6 or a Unix path, or
//! connected to a closed port, or one end of a Unix pair whose peer does not read),
//! the test-driven peers that talk to them, and passes.
//!
//! The real harnesses wait after each peer action until the kernel shows its effect
//! on our socket (`poll(2)` on our fd), so the next pass sees a settled state. The
//! mock harness scripts `MockSocket` results and `MockSelector` readiness to what
//! Linux reports for the same situation (`docs/semantics.md`, "Datagram channels").

use std::fmt::Debug;
use std::time::Duration;

use asyncore::{Datagram, Reactor, Readiness, Selector, Socket, Token, With};

use crate::drec::DRec;
use crate::harness::{Backend, CAP};
use crate::spy::Spy;

/// A family of datagram socket.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fam {
    /// UDP over IPv4.
    V4,
    /// UDP over IPv6.
    V6,
    /// A Unix datagram socket bound to a path.
    Unix,
}

/// The reactor every datagram scenario runs.
pub type DR<H> = Reactor<
    With<Spy<<H as DHarness>::Inner>, <H as DHarness>::Sock>,
    DRec<<<H as DHarness>::Sock as Datagram>::Addr>,
    CAP,
>;

/// One backend, as the datagram scenarios drive it.
pub trait DHarness: Sized {
    const BACKEND: Backend;
    type Sock: Socket + Datagram<Addr: Debug + Clone + Eq>;
    type Inner: Selector<Source = <Self::Sock as Socket>::Source>;
    /// A test-driven peer.
    type Peer;

    fn new() -> Self;
    fn reactor(&mut self) -> DR<Self>;

    /// Whether `fam` can be had here (no IPv6 on some hosts).
    fn available(&self, fam: Fam) -> bool;
    /// Our bound datagram socket of `fam`, and a peer of the same family.
    fn bound(&mut self, fam: Fam) -> (Self::Sock, Self::Peer);
    /// The address our socket sees for `p`'s datagrams.
    fn peer_addr(&self, p: &Self::Peer) -> <Self::Sock as Datagram>::Addr;
    /// The peer sends `data` as one datagram to our channel `ours`; returns once it
    /// is queued on our socket.
    fn peer_send(&mut self, r: &mut DR<Self>, ours: Token, p: &mut Self::Peer, data: &[u8]);
    /// The next datagram the peer received from our channel (waiting for it), and
    /// whether it came from our socket's address.
    fn peer_recv(&mut self, r: &mut DR<Self>, ours: Token, p: &mut Self::Peer) -> (Vec<u8>, bool);
    /// Our socket of `fam`, connected to a port where nothing is bound, after it sent
    /// one datagram there and the refusal came back (pending on it).
    fn connected_refused(&mut self, fam: Fam) -> Self::Sock;
    /// Our end of a connected Unix datagram pair, and the other end, which reads only
    /// when told ([`peer_drain`](Self::peer_drain)).
    fn pair(&mut self) -> (Self::Sock, Self::Peer);
    /// The peer of a [`pair`](Self::pair) reads everything queued for it; returns how
    /// many datagrams.
    fn peer_drain(&mut self, r: &mut DR<Self>, ours: Token, p: &mut Self::Peer) -> usize;

    /// One `poll_once(Some(timeout))`; panics if the pass fails.
    fn pass(&mut self, r: &mut DR<Self>, timeout: Duration) -> usize;
}

/// What the kernel reports for one situation: `poll` for the mock, poll and epoll
/// harnesses (epoll asks the socket's own poll routine too), `select` for the select
/// harness.
pub fn kernel<H: DHarness>(poll: Readiness, select: Readiness) -> Readiness {
    match H::BACKEND {
        Backend::Select => select,
        Backend::Mock | Backend::Poll | Backend::Epoll => poll,
    }
}
