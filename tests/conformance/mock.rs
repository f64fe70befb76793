//! The mock harness: `MockSocket`s and `MockSelector` readiness scripted after what
//! Linux reports for the same situation (`docs/semantics.md`, the select/poll table).
//!
//! The mock has no select/poll personality of its own; it is scripted like `poll(2)`,
//! whose report is the richer one. Where `select(2)` differs, the scenario says so and
//! asserts the select harness against the select column:
//!
//! | situation | mock (= poll) | select |
//! |---|---|---|
//! | connect refused | `READABLE \| WRITABLE \| ERROR \| HANGUP`, `SO_ERROR` = `ECONNREFUSED` | `READABLE \| WRITABLE` |
//! | peer sent FIN | `READABLE \| WRITABLE` | same |
//! | RST received | `READABLE \| WRITABLE \| ERROR \| HANGUP`; recv `ECONNRESET`, send `ECONNRESET` (`EPIPE` after our EOF) | `READABLE \| WRITABLE` |
//! | urgent byte pending | `PRIORITY` (not `READABLE`: the urgent byte is not in the stream) | same (except set) |
//! | fd closed behind the loop | `INVALID` | `INVALID` (found after `EBADF`) |
//! | connected, nothing pending | `WRITABLE` | same |
//! | we shut down writing, then the peer's FIN | `READABLE \| WRITABLE \| HANGUP` | `READABLE \| WRITABLE` |
//! | fresh socket, never connected | `WRITABLE \| HANGUP`; recv `ENOTCONN`, send `EPIPE` | `READABLE \| WRITABLE` |
//! | listener, connection pending | `READABLE` | same |
//!
//! Readiness is level-triggered and recomputed from the sockets before every pass, so
//! data the handler drained is no longer reported, as with a real kernel.

use std::collections::HashMap;
use std::time::Duration;

use asyncore::mock::{MockSelector, MockSocket, RecvStep, SendStep, SocketProbe};
use asyncore::{Reactor, Readiness, Recv, RunEnd, Socket, SocketError, State, Token, errno};

use crate::harness::{Backend, Harness, R};
use crate::spy::Spy;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Role {
    Stream,
    Listener,
    /// A connect in progress whose outcome is already decided in the "kernel".
    Connecting {
        refused: bool,
    },
    /// A socket never connected nor listening.
    Fresh,
}

#[derive(Debug)]
struct Model {
    role: Role,
    /// The peer sent FIN.
    fin: bool,
    /// The peer reset the connection.
    rst: bool,
    /// The reset's socket results are scripted on our socket.
    rst_scripted: bool,
    /// The fd was closed behind the loop's back.
    invalid: bool,
    /// Connections waiting in a listener's queue.
    pending: u32,
    /// How much of what our socket sent the peer has read.
    read: usize,
    probe: &'static SocketProbe,
}

impl Model {
    fn new(role: Role) -> Self {
        Model {
            role,
            fin: false,
            rst: false,
            rst_scripted: false,
            invalid: false,
            pending: 0,
            read: 0,
            probe: Box::leak(Box::new(SocketProbe::new())),
        }
    }
}

/// The peer of a mock connection: our socket's id.
#[derive(Debug)]
pub struct MockPeer {
    id: u32,
}

#[derive(Debug, Default)]
pub struct MockH {
    next: u32,
    models: HashMap<u32, Model>,
}

impl MockH {
    fn socket(&mut self, role: Role) -> (u32, &'static SocketProbe) {
        self.next += 1;
        let model = Model::new(role);
        let probe = model.probe;
        self.models.insert(self.next, model);
        (self.next, probe)
    }

    fn model(&mut self, id: u32) -> &mut Model {
        self.models
            .get_mut(&id)
            .expect("a mock socket of this harness")
    }

    fn ours(r: &mut R<Self>, ours: Token) -> &mut MockSocket {
        r.get_mut(ours).expect("our channel is in the map").socket
    }

    /// What Linux's `poll(2)` would report for each channel now (before masking by
    /// interest, which `MockSelector` does), written as level readiness; and the
    /// socket results of a reset, scripted once the reset socket exists (a reset can
    /// hit a connection still waiting to be accepted).
    fn sync(&mut self, r: &mut R<Self>) {
        let mut levels = Vec::new();
        for c in r.iter_mut() {
            let id = c.socket.id();
            let m = self
                .models
                .get_mut(&id)
                .expect("a mock socket of this harness");
            if m.rst && !m.rst_scripted {
                m.rst_scripted = true;
                script_reset(c.socket, c.state);
            }
            // An fd closed behind the loop's back, or by a handler through
            // `ctx.socket()`: POLLNVAL (a closed StdSocket's source is -1, which both
            // real selectors report INVALID).
            let ready = if m.invalid || c.socket.is_closed() {
                Readiness::INVALID
            } else {
                match (m.role, c.state) {
                    (Role::Listener, _) if m.pending > 0 => Readiness::READABLE,
                    (Role::Listener, _) => Readiness::EMPTY,
                    (Role::Connecting { refused: true }, State::Connecting) => {
                        Readiness::READABLE
                            | Readiness::WRITABLE
                            | Readiness::ERROR
                            | Readiness::HANGUP
                    }
                    (Role::Fresh, _) => Readiness::WRITABLE | Readiness::HANGUP,
                    _ => {
                        let mut ready = Readiness::WRITABLE;
                        if c.socket.unread() > 0 || m.fin || m.rst {
                            ready |= Readiness::READABLE;
                        }
                        // An empty buffer peeks without consuming.
                        if c.socket.recv_priority(&mut []) == Ok(Recv::Data(0)) {
                            ready |= Readiness::PRIORITY;
                        }
                        if m.rst {
                            ready |= Readiness::ERROR | Readiness::HANGUP;
                        }
                        // Both directions shut.
                        if m.fin && c.socket.is_write_shut() {
                            ready |= Readiness::HANGUP;
                        }
                        ready
                    }
                }
            };
            levels.push((id, ready));
        }
        let sel = &mut r.selector_mut().inner;
        for (id, ready) in levels {
            sel.set_ready(id, ready);
        }
    }

    /// After a pass: a listener reported readable was drained by `Rec`'s accept loop.
    fn settle(&mut self, r: &R<Self>) {
        for seen in r.selector().last() {
            if seen.ready.is_readable()
                && let Some(m) = self.models.get_mut(&seen.source)
                && m.role == Role::Listener
            {
                m.pending = 0;
            }
        }
    }
}

/// Linux after an RST: the first operation reports it (`ECONNRESET`; `EPIPE` for a
/// socket that had already seen the peer's FIN, i.e. was in `CLOSE_WAIT`), later
/// reads give EOF and later writes `EPIPE`.
fn script_reset(socket: &mut MockSocket, state: State) {
    let first = SocketError::from_errno(if state == State::ReadClosed {
        errno::EPIPE
    } else {
        errno::ECONNRESET
    });
    socket.script_recv(RecvStep::Fail(first));
    socket.feed_eof();
    socket.script_send(SendStep::Fail(first));
    for _ in 0..4 {
        socket.script_send(SendStep::Fail(SocketError::from_errno(errno::EPIPE)));
    }
}

impl Harness for MockH {
    const BACKEND: Backend = Backend::Mock;
    type Sock = MockSocket;
    type Inner = MockSelector;
    type Peer = MockPeer;
    type Listen = u32;

    fn new() -> Self {
        MockH::default()
    }

    fn reactor(&mut self) -> R<Self> {
        Reactor::new(Spy::new(MockSelector::new()))
    }

    fn pair(&mut self) -> (MockSocket, MockPeer) {
        let (id, probe) = self.socket(Role::Stream);
        (MockSocket::connected(id).with_probe(probe), MockPeer { id })
    }

    fn listener(&mut self) -> (MockSocket, u32) {
        let (id, probe) = self.socket(Role::Listener);
        (MockSocket::listener(id).with_probe(probe), id)
    }

    fn connect_client(&mut self, r: &mut R<Self>, l: &u32, listener: Token) -> MockPeer {
        let (id, probe) = self.socket(Role::Stream);
        let sock = Self::ours(r, listener);
        sock.set_accept_probe(probe);
        assert!(sock.push_pending(Ok(id)), "pending queue full");
        self.model(*l).pending += 1;
        MockPeer { id }
    }

    fn connecting(&mut self) -> (MockSocket, MockPeer) {
        let (id, probe) = self.socket(Role::Connecting { refused: false });
        (
            MockSocket::connecting(id).with_probe(probe),
            MockPeer { id },
        )
    }

    fn fresh(&mut self) -> MockSocket {
        let (id, probe) = self.socket(Role::Fresh);
        let mut s = MockSocket::open(id).with_probe(probe);
        // Linux on a never-connected TCP socket: recv ENOTCONN, send EPIPE.
        s.script_recv(RecvStep::Fail(SocketError::from_errno(errno::ENOTCONN)));
        s.script_send(SendStep::Fail(SocketError::from_errno(errno::EPIPE)));
        s
    }

    fn connecting_refused(&mut self) -> MockSocket {
        let (id, probe) = self.socket(Role::Connecting { refused: true });
        let mut s = MockSocket::connecting(id).with_probe(probe);
        s.set_so_error(Some(SocketError::from_errno(errno::ECONNREFUSED)));
        s
    }

    fn peer_send(&mut self, r: &mut R<Self>, ours: Token, p: &mut MockPeer, data: &[u8]) {
        let _ = p;
        let n = Self::ours(r, ours).feed(data);
        assert_eq!(n, data.len(), "mock inbound buffer full");
    }

    fn peer_shutdown_write(&mut self, r: &mut R<Self>, ours: Token, p: &mut MockPeer) {
        self.model(p.id).fin = true;
        Self::ours(r, ours).feed_eof();
    }

    fn peer_reset(&mut self, r: &mut R<Self>, ours: Token, p: &mut MockPeer) {
        self.peer_reset_pending(p);
        self.await_reset(r, ours);
    }

    fn peer_reset_pending(&mut self, p: &mut MockPeer) {
        // Scripted on our socket by the next sync, once it exists.
        self.model(p.id).rst = true;
    }

    fn await_reset(&mut self, r: &mut R<Self>, ours: Token) {
        let _ = (r, ours);
    }

    fn peer_send_oob(&mut self, r: &mut R<Self>, ours: Token, p: &mut MockPeer, byte: u8) {
        let _ = p;
        Self::ours(r, ours).feed_priority(&[byte]);
    }

    fn peer_recv(&mut self, r: &mut R<Self>, ours: Token, p: &mut MockPeer, n: usize) -> Vec<u8> {
        let from = self.model(p.id).read;
        let sent = Self::ours(r, ours).sent();
        assert!(
            sent.len() >= from + n,
            "our side sent {} bytes, the peer wants {}",
            sent.len() - from,
            n
        );
        let out = sent[from..from + n].to_vec();
        self.model(p.id).read += n;
        out
    }

    fn peer_sees_eof(&mut self, r: &mut R<Self>, p: &mut MockPeer) -> bool {
        let open = r.map().iter().find(|c| c.socket.id() == p.id);
        match open {
            Some(c) => c.socket.is_write_shut() || c.socket.is_closed(),
            None => self.model(p.id).probe.is_closed(),
        }
    }

    fn close_behind_back(&mut self, r: &mut R<Self>, ours: Token) {
        let s = Self::ours(r, ours);
        let id = s.id();
        let ebadf = SocketError::from_errno(errno::EBADF);
        s.script_recv(RecvStep::Fail(ebadf));
        s.script_send(SendStep::Fail(ebadf));
        self.model(id).invalid = true;
    }

    fn pass(&mut self, r: &mut R<Self>, timeout: Duration) -> usize {
        self.sync(r);
        let n = r.poll_once(Some(timeout)).expect("pass");
        self.settle(r);
        n
    }

    fn run(&mut self, r: &mut R<Self>, timeout: Duration, count: Option<u32>) -> RunEnd {
        // Readiness is synced once: scenarios that run several passes keep the
        // readiness level in between (as the kernel would).
        self.sync(r);
        let end = r.run(Some(timeout), count).expect("run");
        self.settle(r);
        end
    }

    fn native_passes(&self, r: &R<Self>) -> Option<u32> {
        Some(r.selector().inner.passes())
    }

    fn virtual_clock(&self, r: &R<Self>) -> Option<Duration> {
        Some(r.selector().inner.clock())
    }
}
