//! The `Harness` trait: one backend (mock, select, poll or epoll) as the scenarios see
//! it.
//!
//! A harness makes a reactor, sockets for it (a connected stream whose other end the
//! test drives, a listener and clients for it, connecting sockets), performs the
//! peer's actions, and runs passes. The real harnesses wait after each peer action
//! until the kernel shows its effect on our socket (data queued, FIN, RST or urgent
//! data visible to `poll(2)`), so the next pass sees a settled state and the callback
//! sequences are exact. The mock harness scripts `MockSocket` results and
//! `MockSelector` readiness to what Linux reports for the same situation
//! (`docs/semantics.md`, the select/poll table, poll column).

use asyncore::With;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use asyncore::{Reactor, Readiness, RunEnd, Selector, Socket, Token};

use crate::rec::Rec;
use crate::spy::Spy;

/// Channels per scenario reactor.
pub const CAP: usize = 16;
/// The timeout of a pass that expects an event: a safety bound only (a pass returns
/// as soon as something is ready).
pub const WAIT: Duration = Duration::from_secs(10);
/// The timeout of a pass that expects nothing.
pub const IDLE: Duration = Duration::from_millis(20);

/// Which backend a harness drives.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `MockSelector` + `MockSocket`, scripted like Linux's `poll(2)`.
    Mock,
    /// `SelectSelector` + `StdSocket` on TCP loopback.
    Select,
    /// `PollSelector` + `StdSocket` on TCP loopback.
    Poll,
    /// `EpollSelector` + `StdSocket` on TCP loopback.
    Epoll,
}

/// The reactor every scenario runs.
pub type R<H> = Reactor<With<Spy<<H as Harness>::Inner>, <H as Harness>::Sock>, Rec, CAP>;

/// One backend, as the scenarios drive it.
pub trait Harness: Sized {
    const BACKEND: Backend;
    type Sock: Socket;
    type Inner: Selector<Source = <Self::Sock as Socket>::Source>;
    /// The test-driven end of a connection.
    type Peer;
    /// What clients need to connect to a listener of ours.
    type Listen;

    fn new() -> Self;
    fn reactor(&mut self) -> R<Self>;

    /// A connected stream for the reactor, and its peer.
    fn pair(&mut self) -> (Self::Sock, Self::Peer);
    /// A listening socket for the reactor.
    fn listener(&mut self) -> (Self::Sock, Self::Listen);
    /// A client connects to our listener `listener`; returns once the connection is
    /// pending on it.
    fn connect_client(&mut self, r: &mut R<Self>, l: &Self::Listen, listener: Token) -> Self::Peer;
    /// A socket whose non-blocking connect to a peer's listener has completed in the
    /// kernel (not yet seen by the loop), and that peer.
    fn connecting(&mut self) -> (Self::Sock, Self::Peer);
    /// A fresh TCP socket, neither connected nor listening (it starts `State::Open`).
    fn fresh(&mut self) -> Self::Sock;
    /// A socket whose non-blocking connect was refused (RST received, not yet seen by
    /// the loop).
    fn connecting_refused(&mut self) -> Self::Sock;

    /// The peer sends `data` to our channel `ours`.
    fn peer_send(&mut self, r: &mut R<Self>, ours: Token, p: &mut Self::Peer, data: &[u8]);
    /// The peer shuts down its sending side (FIN).
    fn peer_shutdown_write(&mut self, r: &mut R<Self>, ours: Token, p: &mut Self::Peer);
    /// The peer resets the connection (`SO_LINGER` 0, close: RST).
    fn peer_reset(&mut self, r: &mut R<Self>, ours: Token, p: &mut Self::Peer);
    /// A client whose connection is still pending on our listener resets it (RST
    /// before our accept); see [`await_reset`](Self::await_reset).
    fn peer_reset_pending(&mut self, p: &mut Self::Peer);
    /// Returns once the peer's reset shows on our channel `ours`.
    fn await_reset(&mut self, r: &mut R<Self>, ours: Token);
    /// The peer sends one byte of TCP urgent data (`MSG_OOB`).
    fn peer_send_oob(&mut self, r: &mut R<Self>, ours: Token, p: &mut Self::Peer, byte: u8);
    /// The next `n` bytes our side sent to the peer.
    fn peer_recv(&mut self, r: &mut R<Self>, ours: Token, p: &mut Self::Peer, n: usize) -> Vec<u8>;
    /// Whether the peer reads the end of our side's stream: EOF (our side shut down
    /// its sending side, or closed) or a reset.
    fn peer_sees_eof(&mut self, r: &mut R<Self>, p: &mut Self::Peer) -> bool;
    /// Closes the fd of `ours` behind the reactor's back.
    fn close_behind_back(&mut self, r: &mut R<Self>, ours: Token);

    /// One `poll_once(Some(timeout))`; panics if the pass fails.
    fn pass(&mut self, r: &mut R<Self>, timeout: Duration) -> usize;
    /// `run(Some(timeout), count)`; panics if it fails.
    fn run(&mut self, r: &mut R<Self>, timeout: Duration, count: Option<u32>) -> RunEnd;

    /// The wrapped selector's own pass count, where it keeps one (the mock).
    fn native_passes(&self, r: &R<Self>) -> Option<u32> {
        let _ = r;
        None
    }
    /// Virtual time spent in idle waits, where there is a virtual clock (the mock).
    fn virtual_clock(&self, r: &R<Self>) -> Option<Duration> {
        let _ = r;
        None
    }
}

/// What the kernel reports for one situation: `poll` for the mock, poll and epoll
/// harnesses (epoll asks the same poll routine of the socket), `select` for the
/// select harness (the mock is scripted after `poll(2)`).
pub fn kernel<H: Harness>(poll: Readiness, select: Readiness) -> Readiness {
    match H::BACKEND {
        Backend::Select => select,
        Backend::Mock | Backend::Poll | Backend::Epoll => poll,
    }
}

/// Tests in this binary take this lock shared; the one that closes an fd behind the
/// loop's back takes it exclusively, so no other test can be handed that fd number
/// between the close and the reactor noticing it (which closes it once more).
static FDS: RwLock<()> = RwLock::new(());

pub fn fds_shared() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|e| e.into_inner())
}

pub fn fds_exclusive() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|e| e.into_inner())
}
