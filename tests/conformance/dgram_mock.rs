//! The mock datagram harness: `MockSocket::datagram`s whose readiness is scripted
//! after what Linux's `poll(2)` reports for a datagram socket:
//!
//! | situation | mock (= poll) | select |
//! |---|---|---|
//! | a datagram waiting | `READABLE` | same |
//! | a pending error (ICMP port unreachable on a connected socket) | `ERROR`, the next operation returns `ECONNREFUSED` | `READABLE \| WRITABLE` |
//! | room to send | `WRITABLE` | same |
//! | the peer is full | not `WRITABLE`, a send would block | same |
//!
//! Readiness is level-triggered and recomputed from the sockets before every pass.

use std::time::Duration;

use asyncore::mock::{MockSelector, MockSocket};
use asyncore::{Reactor, Readiness, SocketError, Token, errno};

use crate::dgram_harness::{DHarness, DR, Fam};
use crate::harness::Backend;
use crate::spy::Spy;

/// A peer: its id is its address.
#[derive(Debug)]
pub struct MockPeer {
    id: u32,
    /// How many of our socket's sent datagrams it has read.
    read: usize,
}

#[derive(Debug, Default)]
pub struct MockDH {
    next: u32,
}

impl MockDH {
    fn id(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    fn ours(r: &mut DR<Self>, t: Token) -> &mut MockSocket {
        r.get_mut(t).expect("our channel is in the map").socket
    }

    /// What Linux's `poll(2)` reports for each channel now.
    fn sync(r: &mut DR<Self>) {
        let mut levels = Vec::new();
        for c in r.iter_mut() {
            let s = &*c.socket;
            let mut ready = Readiness::EMPTY;
            if s.unread_datagrams() > 0 {
                ready |= Readiness::READABLE;
            }
            if s.pending_error().is_some() {
                ready |= Readiness::ERROR;
            }
            if s.send_room() > 0 {
                ready |= Readiness::WRITABLE;
            }
            levels.push((s.id(), ready));
        }
        for (id, ready) in levels {
            r.selector_mut().inner.set_ready(id, ready);
        }
    }
}

impl DHarness for MockDH {
    const BACKEND: Backend = Backend::Mock;
    type Sock = MockSocket;
    type Inner = MockSelector;
    type Peer = MockPeer;

    fn new() -> Self {
        MockDH::default()
    }

    fn reactor(&mut self) -> DR<Self> {
        Reactor::new(Spy::new(MockSelector::new()))
    }

    fn available(&self, _fam: Fam) -> bool {
        true
    }

    fn bound(&mut self, _fam: Fam) -> (MockSocket, MockPeer) {
        let ours = MockSocket::datagram(self.id());
        (
            ours,
            MockPeer {
                id: self.id(),
                read: 0,
            },
        )
    }

    fn peer_addr(&self, p: &MockPeer) -> u32 {
        p.id
    }

    fn peer_send(&mut self, r: &mut DR<Self>, ours: Token, p: &mut MockPeer, data: &[u8]) {
        assert!(
            Self::ours(r, ours).feed_datagram(p.id, data),
            "mock inbound full"
        );
    }

    fn peer_recv(&mut self, r: &mut DR<Self>, ours: Token, p: &mut MockPeer) -> (Vec<u8>, bool) {
        let s = Self::ours(r, ours);
        let (to, data) = s.sent_datagram(p.read).expect("our side sent a datagram");
        p.read += 1;
        (data.to_vec(), to.is_none_or(|to| to == p.id))
    }

    fn connected_refused(&mut self, _fam: Fam) -> MockSocket {
        let mut s = MockSocket::datagram(self.id());
        s.set_so_error(Some(SocketError::from_errno(errno::ECONNREFUSED)));
        s
    }

    fn pair(&mut self) -> (MockSocket, MockPeer) {
        let ours = MockSocket::datagram(self.id());
        (
            ours,
            MockPeer {
                id: self.id(),
                read: 0,
            },
        )
    }

    fn peer_drain(&mut self, r: &mut DR<Self>, ours: Token, p: &mut MockPeer) -> usize {
        let s = Self::ours(r, ours);
        let n = s.sent_datagrams() - p.read;
        let mut sink = Vec::new();
        s.drain_sent(&mut sink);
        p.read = 0;
        n
    }

    fn pass(&mut self, r: &mut DR<Self>, timeout: Duration) -> usize {
        Self::sync(r);
        r.poll_once(Some(timeout)).expect("pass")
    }
}
