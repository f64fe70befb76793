//! Datagram channels: the [`Datagram`] trait a datagram socket implements besides
//! [`Socket`], what a receive reports ([`Received`]), the context methods a handler
//! uses ([`Ctx::recv_from`], [`Ctx::send_to`], [`Ctx::send_datagram`], and with a
//! buffer the reactor lends, [`Ctx::recv_from_leased`], [`Ctx::send_to_leased`]),
//! and a send queue in fixed memory that keeps datagram boundaries and addresses
//! ([`DatagramQueue`]).
//!
//! A datagram channel is a channel whose socket starts in
//! [`State::Datagram`](crate::State::Datagram). It is dispatched like a connected
//! stream (read readiness → `handle_read`, write readiness → `handle_write`) except
//! that it never listens, never connects in the stream sense, never sees EOF, and no
//! socket error closes it: an error such as `ECONNREFUSED` (an ICMP port unreachable
//! answered a datagram sent on a connected socket) is returned by the next operation,
//! typed, or handed to `handle_error`. See the semantics page, "Datagram channels".

use core::fmt;
use core::ops::Range;

use crate::map::Flags;
use crate::{BufferFull, Ctx, Lease, Sent, Socket, SocketError};

/// One datagram a receive took: its true length, how much of it the buffer holds,
/// and who sent it.
///
/// A datagram longer than the buffer is cut to the buffer by the kernel, and the
/// rest is gone; it is reported, never hidden: [`truncated`](Self::truncated) is
/// true and [`len`](Self::len) says how long it was.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Received<A> {
    /// The datagram's true length (more than the buffer when truncated).
    pub len: usize,
    /// How many of its bytes are in the buffer: `min(len, buf.len())`.
    pub copied: usize,
    /// Its source address.
    pub from: A,
}

impl<A> Received<A> {
    /// Whether the datagram was longer than the buffer (its end is lost).
    pub const fn truncated(&self) -> bool {
        self.len > self.copied
    }

    /// The received bytes: the first [`copied`](Self::copied) bytes of the buffer
    /// the receive was given (`buf` must be that buffer).
    pub fn data<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[..self.copied.min(buf.len())]
    }
}

/// A datagram socket: UDP over IPv4 or IPv6, a Unix datagram socket, a simulated or
/// a scripted one. It is a [`Socket`] too, whose
/// [`initial_state`](Socket::initial_state) is
/// [`State::Datagram`](crate::State::Datagram), whose `recv` reads one datagram
/// (reporting one longer than the buffer as `EMSGSIZE`) and whose `send` sends one
/// datagram to the connected peer.
///
/// A socket type may hold streams and datagram sockets both (the std `StdSocket`
/// does, so one reactor can serve a UDP socket and a TCP listener); these operations
/// fail with [`SocketError::UNSUPPORTED`] on the ones that are not datagram sockets.
///
/// Every operation is non-blocking: would-block is an outcome (`Ok(None)`,
/// [`Sent::WouldBlock`]), never an error. A datagram is sent whole or not at all.
/// No error is a disconnect: the socket stays usable after any of them.
pub trait Datagram: Socket {
    /// A peer's address: a fixed-size value, copied freely (an IP address and port, a
    /// Unix-domain path or abstract name held inline, a simulated port).
    type Addr: Copy + Eq + fmt::Debug;

    /// Receives one datagram into `buf`: its true length, how much `buf` holds, its
    /// source. `Ok(None)` when none is waiting. On a connected socket only the
    /// peer's datagrams arrive.
    ///
    /// # Errors
    /// A pending error (`ConnectionRefused` after a datagram sent on a connected
    /// socket met a closed port), or anything else the OS reports; `Unsupported` on
    /// a socket that is not a datagram socket.
    fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<Self::Addr>>, SocketError>;

    /// Sends `buf` as one datagram to `to`: `Ok(Sent::Bytes(buf.len()))`, or
    /// [`Sent::WouldBlock`] when the socket's send buffer is full (nothing was sent).
    ///
    /// # Errors
    /// `EMSGSIZE` for a datagram larger than the socket can send, `ENOBUFS`, a
    /// pending error (`ConnectionRefused`), or anything else the OS reports.
    fn send_to(&mut self, buf: &[u8], to: &Self::Addr) -> Result<Sent, SocketError>;

    /// Sends `buf` as one datagram to the peer the socket is connected to, as
    /// [`send_to`](Self::send_to) does.
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to); not connected: `EDESTADDRREQ` (UDP) or
    /// `ENOTCONN` (Unix datagram), which are not disconnects here.
    fn send_datagram(&mut self, buf: &[u8]) -> Result<Sent, SocketError>;
}

/// The datagram operations of a handler's context. Unlike the stream operations, no
/// error here is a disconnect: every error is returned to the handler, typed, and
/// the channel stays open unless the handler (or its `handle_error`) closes it.
impl<S: Datagram, D> Ctx<'_, S, D> {
    /// Receives one datagram into `buf`; `Ok(None)` when none is waiting (a spurious
    /// readiness, or the handler already drained the socket). See
    /// [`Datagram::recv_from`].
    ///
    /// ```
    /// use asyncore_core::mock::{MockIo, MockSelector, MockSocket};
    /// use asyncore_core::{Ctx, Datagram, Dispatcher, Error, Reactor, Readiness};
    ///
    /// /// Answers every datagram with its length, to its sender.
    /// struct Lengths;
    ///
    /// impl<S: Datagram> Dispatcher<S> for Lengths {
    ///     type Error = Error;
    ///     fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
    ///         let mut buf = [0u8; 8];
    ///         while let Some(d) = ctx.recv_from(&mut buf)? {
    ///             // d.truncated(): longer than 8 bytes; d.len says how long.
    ///             let _ = ctx.send_to(&(d.len as u32).to_be_bytes(), &d.from)?;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut sock = MockSocket::datagram(5);
    /// sock.feed_datagram(40, b"hello");
    /// sock.feed_datagram(41, b"a datagram longer than eight bytes");
    /// let mut reactor: Reactor<MockIo, Lengths, 4> = Reactor::new(MockSelector::new());
    /// let t = reactor.add(sock, Lengths).unwrap();
    /// reactor.selector_mut().set_ready(5, Readiness::READABLE);
    /// reactor.poll_once(None).unwrap();
    /// let sent = reactor.get(t).unwrap().socket;
    /// assert_eq!(sent.sent_datagram(0), Some((Some(40), &5u32.to_be_bytes()[..])));
    /// assert_eq!(sent.sent_datagram(1), Some((Some(41), &34u32.to_be_bytes()[..])));
    /// ```
    ///
    /// # Errors
    /// Every error the socket reports (a pending `ConnectionRefused` included).
    pub fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<S::Addr>>, SocketError> {
        let got = self.socket().recv_from(buf)?;
        if got.is_some() {
            self.flags().set(Flags::GOT_DATA);
        }
        Ok(got)
    }

    /// Sends `buf` as one datagram to `to`; [`Sent::WouldBlock`] when the socket
    /// cannot take it now (queue it: [`DatagramQueue`]). See [`Datagram::send_to`].
    ///
    /// # Errors
    /// Every error the socket reports.
    pub fn send_to(&mut self, buf: &[u8], to: &S::Addr) -> Result<Sent, SocketError> {
        self.socket().send_to(buf, to)
    }

    /// Sends `buf` as one datagram to the connected peer. See
    /// [`Datagram::send_datagram`].
    ///
    /// # Errors
    /// Every error the socket reports.
    pub fn send_datagram(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        self.socket().send_datagram(buf)
    }

    /// [`recv_from`](Self::recv_from) into the bytes of `lease` (a buffer the
    /// reactor's pool lent this channel, see [`Ctx::lease`]) from `at` on: a 64 KiB
    /// datagram without 64 KiB in every dispatcher.
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from); `InvalidInput` if this channel does not
    /// hold `lease` or `at` is past its end.
    pub fn recv_from_leased(
        &mut self,
        lease: &Lease,
        at: usize,
    ) -> Result<Option<Received<S::Addr>>, SocketError> {
        let (socket, bytes) = self.socket_and_leased(lease).ok_or(INVALID)?;
        let got = socket.recv_from(bytes.get_mut(at..).ok_or(INVALID)?)?;
        if got.is_some() {
            self.flags().set(Flags::GOT_DATA);
        }
        Ok(got)
    }

    /// [`send_to`](Self::send_to) of the bytes `range` of `lease`.
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to); `InvalidInput` if this channel does not hold
    /// `lease` or `range` is out of its bounds.
    pub fn send_to_leased(
        &mut self,
        lease: &Lease,
        range: Range<usize>,
        to: &S::Addr,
    ) -> Result<Sent, SocketError> {
        let (socket, bytes) = self.socket_and_leased(lease).ok_or(INVALID)?;
        socket.send_to(bytes.get(range).ok_or(INVALID)?, to)
    }
}

/// A lease this channel does not hold, or a range outside it.
const INVALID: SocketError = SocketError::new(crate::ErrorKind::InvalidInput, 0);

/// One queued datagram: its length and its destination (`None`: the connected peer).
#[derive(Copy, Clone, Debug)]
struct Entry<A> {
    len: u32,
    to: Option<A>,
}

/// Queued output for a datagram channel, in fixed memory: up to `SLOTS` datagrams
/// holding up to `BYTES` bytes together, each kept whole with its destination.
/// A datagram is queued whole or not at all, and leaves whole, in order.
///
/// Queue with [`push_to`](Self::push_to) (or [`push`](Self::push) for the connected
/// peer), call [`flush`](Self::flush) from `handle_write`, and answer `writable()`
/// with [`wants_write`](Self::wants_write). [`send_to`](Self::send_to) tries the
/// socket first and queues only what it would not take.
///
/// Bytes sit in one linear buffer; when a datagram does not fit behind the last one,
/// what is queued moves to the front of the buffer first (at most `BYTES` bytes
/// copied), so every datagram is contiguous and leaves with one `send_to` straight
/// from the queue.
///
/// ```
/// use asyncore_core::DatagramQueue;
///
/// let mut q: DatagramQueue<u32, 64, 4> = DatagramQueue::new();
/// q.push_to(b"one", 7).unwrap();
/// q.push_to(b"", 8).unwrap(); // an empty datagram is a datagram
/// assert_eq!(q.len(), 2);
/// assert_eq!(q.front(), Some((&b"one"[..], Some(&7))));
/// q.pop_front();
/// assert_eq!(q.front(), Some((&b""[..], Some(&8))));
/// assert!(q.push_to(&[0u8; 65], 9).is_err()); // never fits: larger than the queue
/// ```
pub struct DatagramQueue<A, const BYTES: usize, const SLOTS: usize> {
    bytes: [u8; BYTES],
    /// The queued bytes are `bytes[head..tail]`, datagram after datagram.
    head: usize,
    tail: usize,
    entries: heapless::Deque<Entry<A>, SLOTS>,
}

impl<A: fmt::Debug, const BYTES: usize, const SLOTS: usize> fmt::Debug
    for DatagramQueue<A, BYTES, SLOTS>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramQueue")
            .field("datagrams", &self.entries.len())
            .field("bytes", &(self.tail - self.head))
            .finish_non_exhaustive()
    }
}

impl<A: Copy, const BYTES: usize, const SLOTS: usize> Default for DatagramQueue<A, BYTES, SLOTS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Copy, const BYTES: usize, const SLOTS: usize> DatagramQueue<A, BYTES, SLOTS> {
    /// An empty queue.
    pub const fn new() -> Self {
        DatagramQueue {
            bytes: [0; BYTES],
            head: 0,
            tail: 0,
            entries: heapless::Deque::new(),
        }
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes queued, all datagrams together.
    pub fn bytes(&self) -> usize {
        self.tail - self.head
    }

    /// Whether a datagram of `len` bytes would be queued now.
    pub fn fits(&self, len: usize) -> bool {
        !self.entries.is_full() && len <= BYTES - self.bytes()
    }

    /// The largest datagram the queue can ever hold: `BYTES`.
    pub const fn max_datagram(&self) -> usize {
        BYTES
    }

    /// Whether there is something to send: answer `writable()` with it.
    pub fn wants_write(&self) -> bool {
        !self.is_empty()
    }

    /// Queues `data` as one datagram for `to`.
    ///
    /// # Errors
    /// [`BufferFull`] when it does not fit now ([`fits`](Self::fits)): every slot is
    /// taken, or the bytes are not there. Nothing is queued then. A datagram larger
    /// than `BYTES` never fits.
    pub fn push_to(&mut self, data: &[u8], to: A) -> Result<(), BufferFull> {
        self.push_entry(data, Some(to))
    }

    /// Queues `data` as one datagram for the connected peer (sent with
    /// [`Datagram::send_datagram`]).
    ///
    /// # Errors
    /// As [`push_to`](Self::push_to).
    pub fn push(&mut self, data: &[u8]) -> Result<(), BufferFull> {
        self.push_entry(data, None)
    }

    fn push_entry(&mut self, data: &[u8], to: Option<A>) -> Result<(), BufferFull> {
        if !self.fits(data.len()) {
            return Err(BufferFull);
        }
        let len = u32::try_from(data.len()).map_err(|_| BufferFull)?;
        if BYTES - self.tail < data.len() {
            // Room only in front of the queued bytes: move them there.
            self.bytes.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        self.bytes[self.tail..self.tail + data.len()].copy_from_slice(data);
        self.tail += data.len();
        // Cannot fail: `fits` checked for a free slot.
        let _ = self.entries.push_back(Entry { len, to });
        Ok(())
    }

    /// The oldest datagram and its destination (`None`: the connected peer).
    pub fn front(&self) -> Option<(&[u8], Option<&A>)> {
        let e = self.entries.front()?;
        let data = &self.bytes[self.head..self.head + e.len as usize];
        Some((data, e.to.as_ref()))
    }

    /// Drops the oldest datagram (sent, or given up on); `false` if there was none.
    pub fn pop_front(&mut self) -> bool {
        let Some(e) = self.entries.pop_front() else {
            return false;
        };
        self.head += e.len as usize;
        if self.entries.is_empty() {
            self.head = 0;
            self.tail = 0;
        }
        true
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.head = 0;
        self.tail = 0;
    }

    /// Sends queued datagrams, oldest first, until the queue is empty or the socket
    /// would block; returns how many left. A datagram leaves the queue only once
    /// the socket took it.
    ///
    /// # Errors
    /// The first error a send met. The datagram that met it stays at the front, so
    /// nothing is lost: call [`pop_front`](Self::pop_front) to give up on it (an
    /// `EMSGSIZE` will never pass), or leave it for the next write readiness (a
    /// pending `ConnectionRefused` belonged to an earlier datagram; an `ENOBUFS`
    /// passes).
    pub fn flush<S, D>(&mut self, ctx: &mut Ctx<'_, S, D>) -> Result<usize, SocketError>
    where
        S: Datagram<Addr = A>,
    {
        let mut sent = 0;
        while let Some(e) = self.entries.front() {
            let data = &self.bytes[self.head..self.head + e.len as usize];
            let outcome = match &e.to {
                Some(to) => ctx.send_to(data, to)?,
                None => ctx.send_datagram(data)?,
            };
            match outcome {
                Sent::Bytes(_) => {
                    self.pop_front();
                    sent += 1;
                }
                Sent::WouldBlock => break,
            }
        }
        Ok(sent)
    }

    /// Sends `data` to `to` now if nothing is queued before it and the socket takes
    /// it; otherwise queues it behind the others (order is kept). Returns whether it
    /// went out at once.
    ///
    /// # Errors
    /// The socket's error (nothing queued then), or [`QueueError::Full`] when the
    /// datagram had to wait and does not fit.
    pub fn send_to<S, D>(
        &mut self,
        ctx: &mut Ctx<'_, S, D>,
        data: &[u8],
        to: A,
    ) -> Result<bool, QueueError>
    where
        S: Datagram<Addr = A>,
    {
        if self.is_empty() && ctx.send_to(data, &to)? != Sent::WouldBlock {
            return Ok(true);
        }
        self.push_to(data, to).map_err(|_| QueueError::Full)?;
        Ok(false)
    }
}

/// Why [`DatagramQueue::send_to`] could neither send nor queue a datagram.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QueueError {
    /// The socket failed (nothing was queued).
    Socket(SocketError),
    /// The socket could not take it now and the queue has no room for it.
    Full,
}

impl From<SocketError> for QueueError {
    fn from(e: SocketError) -> Self {
        QueueError::Socket(e)
    }
}

impl From<QueueError> for crate::Error {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Socket(e) => crate::Error::Socket(e),
            QueueError::Full => crate::Error::BufferFull,
        }
    }
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Socket(e) => write!(f, "{e}"),
            QueueError::Full => f.write_str("datagram queue full"),
        }
    }
}

impl core::error::Error for QueueError {}

#[cfg(test)]
mod tests {
    use super::*;

    type Q = DatagramQueue<u8, 16, 4>;

    fn drain(q: &mut Q) -> std::vec::Vec<(std::vec::Vec<u8>, Option<u8>)> {
        let mut out = std::vec::Vec::new();
        while let Some((d, to)) = q.front() {
            out.push((d.to_vec(), to.copied()));
            q.pop_front();
        }
        out
    }

    #[test]
    fn boundaries_and_addresses_kept() {
        let mut q = Q::new();
        q.push_to(b"abc", 1).unwrap();
        q.push(b"").unwrap();
        q.push_to(b"defgh", 3).unwrap();
        assert_eq!((q.len(), q.bytes()), (3, 8));
        assert_eq!(
            drain(&mut q),
            [
                (b"abc".to_vec(), Some(1)),
                (b"".to_vec(), None),
                (b"defgh".to_vec(), Some(3))
            ]
        );
        assert!(q.is_empty() && !q.pop_front());
    }

    #[test]
    fn all_or_nothing_and_limits() {
        let mut q = Q::new();
        assert_eq!(q.push_to(&[0; 17], 1), Err(BufferFull));
        q.push_to(&[1; 16], 1).unwrap();
        assert_eq!(q.push_to(b"x", 2), Err(BufferFull));
        assert!(q.fits(0));
        q.push_to(b"", 2).unwrap();
        q.pop_front();
        for i in 0..3 {
            q.push_to(b"", i).unwrap();
        }
        // Four slots taken (one empty datagram left from before).
        assert_eq!(q.len(), 4);
        assert_eq!(q.push_to(b"", 9), Err(BufferFull));
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn moves_bytes_to_the_front_when_the_end_is_full() {
        let mut q = Q::new();
        q.push_to(b"0123456789", 1).unwrap();
        q.push_to(b"abc", 2).unwrap();
        q.pop_front(); // 10 bytes free at the front, 3 at the end
        q.push_to(b"ABCDEFG", 3).unwrap();
        assert_eq!(q.bytes(), 10);
        assert_eq!(
            drain(&mut q),
            [(b"abc".to_vec(), Some(2)), (b"ABCDEFG".to_vec(), Some(3))]
        );
    }

    /// Against a model, every operation in a random order: the queue is a FIFO of
    /// whole datagrams that refuses exactly what does not fit.
    #[test]
    fn matches_a_model() {
        let mut rng = crate::sim::Rng::new(17);
        for _ in 0..200 {
            let mut q = Q::new();
            let mut model: std::collections::VecDeque<(std::vec::Vec<u8>, u8)> = Default::default();
            for step in 0..200u32 {
                if rng.below(3) == 0 {
                    let popped = q.front().map(|(d, to)| (d.to_vec(), *to.unwrap()));
                    assert_eq!(popped, model.pop_front());
                    q.pop_front();
                } else {
                    let len = rng.below(18) as usize;
                    let data: std::vec::Vec<u8> =
                        (0..len).map(|i| (step as u8) ^ i as u8).collect();
                    let room = model.len() < 4
                        && len + model.iter().map(|(d, _)| d.len()).sum::<usize>() <= 16;
                    assert_eq!(q.push_to(&data, step as u8).is_ok(), room);
                    if room {
                        model.push_back((data, step as u8));
                    }
                }
                assert_eq!(q.len(), model.len());
            }
        }
    }
}
