//! Scripted datagram sockets: [`MockSocket::datagram`] and what a test feeds it and
//! reads back from it.
//!
//! A datagram mock keeps the bytes of the datagrams fed to it in the socket's inbound
//! buffer and those it sent in its outbound record (as a stream mock does), plus
//! their boundaries and addresses. Its address type is `u32` (a peer id). The
//! stream scripts apply to it too: a [`RecvStep`] is consumed before the next
//! receive (`WouldBlock` and `Eof` are "nothing waiting", `Fail` fails it: a pending
//! `ECONNREFUSED`), a [`SendStep`] before the next send (`WouldBlock`, `Fail` with
//! `EMSGSIZE`, `ENOBUFS`, `ECONNREFUSED`..., and `Accept(n)`: a datagram longer than
//! `n` bytes is too large, `EMSGSIZE`). A pending error set with
//! [`MockSocket::set_so_error`] is what Linux keeps after an ICMP error on a connected
//! socket: the next receive or send returns it (and clears it), or `take_error` does.

use heapless::{Deque, Vec};

use super::{MockSocket, RecvStep, SendStep};
use crate::{Datagram, Received, Recv, Sent, SocketError, State, errno};

/// Datagrams a mock socket can hold waiting to be read.
pub const INBOUND_DATAGRAMS: usize = 16;
/// Datagrams a mock socket records as sent (see [`MockSocket::drain_sent`]).
pub const OUTBOUND_DATAGRAMS: usize = 32;

/// The boundaries and addresses of a datagram mock's traffic.
#[derive(Debug)]
pub(super) struct Datagrams {
    /// Waiting to be read: the source and the length of each datagram, whose bytes
    /// are in the socket's inbound buffer.
    inbound: Deque<(u32, u16), INBOUND_DATAGRAMS>,
    /// Sent: the destination (`None`: the connected peer) and the length of each
    /// datagram, whose bytes are in the socket's outbound record.
    outbound: Vec<(Option<u32>, u16), OUTBOUND_DATAGRAMS>,
    /// Sends of more bytes fail with `EMSGSIZE`.
    max_send: usize,
}

impl Datagrams {
    pub(super) const fn new() -> Self {
        Datagrams {
            inbound: Deque::new(),
            outbound: Vec::new(),
            max_send: usize::MAX,
        }
    }

    pub(super) fn clear_sent(&mut self) {
        self.outbound.clear();
    }
}

fn msgsize() -> SocketError {
    SocketError::from_errno(errno::EMSGSIZE)
}

impl MockSocket {
    /// A datagram socket (it starts [`State::Datagram`]); feed it with
    /// [`feed_datagram`](Self::feed_datagram).
    pub fn datagram(id: u32) -> Self {
        let mut s = Self::open(id);
        s.state = State::Datagram;
        s
    }

    /// Makes one datagram from `from` readable. Returns `false` (and queues
    /// nothing) when it does not fit: [`INBOUND_DATAGRAMS`] are waiting, or its bytes
    /// do not fit the inbound buffer (512 bytes for all waiting datagrams).
    pub fn feed_datagram(&mut self, from: u32, data: &[u8]) -> bool {
        let room = super::socket::INBOUND - self.inbound.len();
        let Ok(len) = u16::try_from(data.len()) else {
            return false;
        };
        if data.len() > room || self.dgram.inbound.is_full() {
            return false;
        }
        for &b in data {
            // Cannot fail: checked above.
            let _ = self.inbound.push_back(b);
        }
        let _ = self.dgram.inbound.push_back((from, len));
        true
    }

    /// Datagrams waiting to be read.
    pub fn unread_datagrams(&self) -> usize {
        self.dgram.inbound.len()
    }

    /// The pending error (`SO_ERROR`) the next operation will return, if any.
    pub fn pending_error(&self) -> Option<SocketError> {
        self.so_error
    }

    /// The largest datagram the next send can take before the outbound record is
    /// full (0: full, a send would block; what a kernel reports as not writable).
    pub fn send_room(&self) -> usize {
        if self.dgram.outbound.is_full() {
            0
        } else {
            super::socket::OUTBOUND - self.outbound.len()
        }
    }

    /// Sends of datagrams longer than `max` bytes fail with `EMSGSIZE` (as a UDP
    /// socket refuses one above 65,507 bytes).
    pub fn set_max_datagram(&mut self, max: usize) {
        self.dgram.max_send = max;
    }

    /// How many datagrams were sent (and not drained since).
    pub fn sent_datagrams(&self) -> usize {
        self.dgram.outbound.len()
    }

    /// The `i`-th datagram sent (since the last drain): its destination (`None`:
    /// the connected peer) and its bytes.
    pub fn sent_datagram(&self, i: usize) -> Option<(Option<u32>, &[u8])> {
        let (to, len) = *self.dgram.outbound.get(i)?;
        let start: usize = self.dgram.outbound[..i]
            .iter()
            .map(|&(_, l)| l as usize)
            .sum();
        Some((to, &self.outbound[start..start + len as usize]))
    }

    /// Takes the next datagram (after the scripted steps) into `buf`.
    fn take_datagram(&mut self, buf: &mut [u8]) -> Result<Option<Received<u32>>, SocketError> {
        if self.is_closed() {
            return Err(Self::closed_error());
        }
        self.recv_calls += 1;
        if let Some(e) = self.so_error.take() {
            return Err(e);
        }
        if let Some(step) = self.recv_script.pop_front() {
            return match step {
                RecvStep::WouldBlock | RecvStep::Eof => Ok(None),
                RecvStep::Fail(e) => Err(e),
            };
        }
        let Some((from, len)) = self.dgram.inbound.pop_front() else {
            return Ok(None);
        };
        let len = len as usize;
        let copied = len.min(buf.len());
        for slot in buf.iter_mut().take(copied) {
            *slot = self.inbound.pop_front().unwrap_or(0);
        }
        // The rest of a truncated datagram is gone.
        for _ in copied..len {
            let _ = self.inbound.pop_front();
        }
        Ok(Some(Received { len, copied, from }))
    }

    /// `Socket::recv` of a datagram mock: one datagram; a longer one than `buf` is
    /// consumed and reported as `EMSGSIZE`.
    pub(super) fn recv_one_datagram(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        match self.take_datagram(buf)? {
            None => Ok(Recv::WouldBlock),
            Some(d) if d.truncated() => Err(msgsize()),
            Some(d) => Ok(Recv::Data(d.copied)),
        }
    }

    /// Sends one datagram to `to` (`None`: the connected peer).
    pub(super) fn send_one_datagram(
        &mut self,
        buf: &[u8],
        to: Option<u32>,
    ) -> Result<Sent, SocketError> {
        if self.is_closed() {
            return Err(Self::closed_error());
        }
        self.send_calls += 1;
        if let Some(e) = self.so_error.take() {
            return Err(e);
        }
        let mut limit = self.dgram.max_send;
        if let Some(step) = self.send_script.pop_front() {
            match step {
                SendStep::Accept(n) => limit = limit.min(n),
                SendStep::WouldBlock => return Ok(Sent::WouldBlock),
                SendStep::Fail(e) => return Err(e),
            }
        }
        if buf.len() > limit {
            return Err(msgsize());
        }
        let room = super::socket::OUTBOUND - self.outbound.len();
        let Ok(len) = u16::try_from(buf.len()) else {
            return Err(msgsize());
        };
        if buf.len() > room || self.dgram.outbound.is_full() {
            // The record is full: back-pressure, as a full send buffer.
            return Ok(Sent::WouldBlock);
        }
        // Cannot fail: checked above.
        let _ = self.outbound.extend_from_slice(buf);
        let _ = self.dgram.outbound.push((to, len));
        Ok(Sent::Bytes(buf.len()))
    }
}

impl Datagram for MockSocket {
    type Addr = u32;

    /// The next fed datagram, after the scripted receive steps.
    ///
    /// # Errors
    /// A scripted failure; `EBADF` once closed; `Unsupported` unless the socket was
    /// made with [`MockSocket::datagram`].
    fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<u32>>, SocketError> {
        if self.state != State::Datagram {
            return Err(SocketError::UNSUPPORTED);
        }
        self.take_datagram(buf)
    }

    /// Records the datagram and its destination, after the scripted send steps.
    ///
    /// # Errors
    /// A scripted failure; `EMSGSIZE` above [`set_max_datagram`](MockSocket::set_max_datagram);
    /// `EBADF` once closed; `Unsupported` unless the socket was made with
    /// [`MockSocket::datagram`].
    fn send_to(&mut self, buf: &[u8], to: &u32) -> Result<Sent, SocketError> {
        if self.state != State::Datagram {
            return Err(SocketError::UNSUPPORTED);
        }
        self.send_one_datagram(buf, Some(*to))
    }

    /// As [`send_to`](Self::send_to), recorded with no destination.
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to).
    fn send_datagram(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        if self.state != State::Datagram {
            return Err(SocketError::UNSUPPORTED);
        }
        self.send_one_datagram(buf, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Socket;

    #[test]
    fn fed_datagrams_come_out_whole_with_their_source() {
        let mut s = MockSocket::datagram(1);
        assert_eq!(s.initial_state(), State::Datagram);
        assert!(s.feed_datagram(7, b"hello"));
        assert!(s.feed_datagram(8, b""));
        assert!(s.feed_datagram(9, b"0123456789"));
        let mut buf = [0u8; 8];
        let d = s.recv_from(&mut buf).unwrap().unwrap();
        assert_eq!(
            (d.from, d.data(&buf), d.truncated()),
            (7, &b"hello"[..], false)
        );
        let d = s.recv_from(&mut buf).unwrap().unwrap();
        assert_eq!((d.from, d.len, d.copied), (8, 0, 0));
        let d = s.recv_from(&mut buf).unwrap().unwrap();
        assert_eq!((d.len, d.copied, d.truncated()), (10, 8, true));
        assert_eq!(d.data(&buf), b"01234567");
        assert_eq!(s.recv_from(&mut buf), Ok(None));
        assert_eq!(s.unread(), 0, "the truncated rest is gone");
    }

    #[test]
    fn scripts_and_limits() {
        let mut s = MockSocket::datagram(1);
        let refused = SocketError::from_errno(errno::ECONNREFUSED);
        s.script_recv(RecvStep::Fail(refused));
        s.feed_datagram(3, b"abc");
        let mut buf = [0u8; 2];
        assert_eq!(s.recv_from(&mut buf), Err(refused));
        // Socket::recv: one datagram; a truncated one is an error.
        assert_eq!(
            Socket::recv(&mut s, &mut buf).unwrap_err().raw_os_error(),
            Some(errno::EMSGSIZE)
        );
        assert_eq!(Socket::recv(&mut s, &mut buf), Ok(Recv::WouldBlock));

        s.set_max_datagram(4);
        assert_eq!(s.send_to(b"12345", &1), Err(msgsize()));
        s.script_send(SendStep::WouldBlock);
        s.script_send(SendStep::Fail(SocketError::from_errno(errno::ENOBUFS)));
        assert_eq!(s.send_to(b"1", &1), Ok(Sent::WouldBlock));
        assert!(s.send_to(b"1", &1).is_err());
        assert_eq!(s.send_to(b"1234", &2), Ok(Sent::Bytes(4)));
        assert_eq!(Socket::send(&mut s, b""), Ok(Sent::Bytes(0)));
        assert_eq!(s.sent_datagrams(), 2);
        assert_eq!(s.sent_datagram(0), Some((Some(2), &b"1234"[..])));
        assert_eq!(s.sent_datagram(1), Some((None, &b""[..])));
        let mut all = std::vec::Vec::new();
        s.drain_sent(&mut all);
        assert_eq!((all.len(), s.sent_datagrams()), (4, 0));

        let mut stream = MockSocket::connected(2);
        assert_eq!(stream.recv_from(&mut buf), Err(SocketError::UNSUPPORTED));
    }
}
