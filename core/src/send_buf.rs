//! `SendBuffer`: the original's `dispatcher_with_send`, on fixed memory.

use crate::{Ctx, Lease, Recv, Ring, Socket, SocketError};

/// A full [`SendBuffer`] (or other fixed buffer) refused data. Its
/// `embedded_io::Error::kind` is `WriteZero`, so `write_all` reports it instead of
/// panicking.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferFull;

impl core::fmt::Display for BufferFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("buffer full")
    }
}

impl core::error::Error for BufferFull {}

impl embedded_io::Error for BufferFull {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::WriteZero
    }
}

impl From<BufferFull> for crate::Error {
    fn from(_: BufferFull) -> Self {
        crate::Error::BufferFull
    }
}

/// An output buffer of `N` bytes any dispatcher can embed: the original's
/// `dispatcher_with_send`, without its unbounded growth.
///
/// Queue with [`queue`](Self::queue) (partial count) or [`queue_all`](Self::queue_all)
/// (all or nothing), or through `embedded_io::Write`; [`send`](Self::send) queues and
/// flushes at once. Call [`flush`](Self::flush) from `handle_write`, and answer
/// `writable()` with [`wants_write`](Self::wants_write): write interest only while
/// data is held. A flush writes until the socket would block (not one send per pass).
///
/// ```
/// use asyncore_core::{Ctx, Dispatcher, Error, Reactor, Readiness, Recv, SendBuffer, Socket};
/// use asyncore_core::mock::{MockIo, MockSelector, MockSocket, SendStep};
///
/// /// Echoes what it reads through a 64-byte send buffer.
/// #[derive(Default)]
/// struct Echo {
///     out: SendBuffer<64>,
/// }
///
/// impl<S: Socket> Dispatcher<S> for Echo {
///     type Error = Error;
///     fn readable(&self) -> bool {
///         self.out.free() > 0 // back-pressure: stop reading while the buffer is full
///     }
///     fn writable(&self) -> bool {
///         self.out.wants_write()
///     }
///     fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
///         let mut buf = [0u8; 64];
///         let room = self.out.free().min(buf.len());
///         if let Recv::Data(n) = ctx.recv(&mut buf[..room])? {
///             self.out.send(ctx, &buf[..n])?;
///         }
///         Ok(())
///     }
///     fn handle_write(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
///         self.out.flush(ctx)?;
///         Ok(())
///     }
/// }
///
/// let mut reactor: Reactor<MockIo, Echo, 4> = Reactor::new(MockSelector::new());
/// let mut sock = MockSocket::connected(7);
/// sock.feed(b"hello");
/// sock.script_send(SendStep::Accept(2)); // a short write
/// let t = reactor.add(sock, Echo::default()).unwrap();
/// reactor.selector_mut().set_ready(7, Readiness::READABLE | Readiness::WRITABLE);
/// reactor.run(None, Some(3)).unwrap();
/// let c = reactor.get(t).unwrap();
/// assert_eq!(c.socket.sent(), b"hello");
/// assert!(!c.dispatcher.out.wants_write());
/// ```
#[derive(Debug, Default)]
pub struct SendBuffer<const N: usize> {
    ring: Ring<N>,
    /// Data older than the ring's, in a buffer the reactor's pool lent to this
    /// channel (see [`BufferPool`](crate::BufferPool)).
    lent: Option<Lent>,
}

/// Bytes `start..end` of a lease are waiting to be sent.
#[derive(Debug)]
struct Lent {
    lease: Lease,
    start: u32,
    end: u32,
}

impl Lent {
    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
}

impl<const N: usize> SendBuffer<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        SendBuffer {
            ring: Ring::new(),
            lent: None,
        }
    }

    /// Bytes waiting to be sent.
    pub fn len(&self) -> usize {
        self.ring.len() + self.lent.as_ref().map_or(0, Lent::len)
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some of what is waiting is in a buffer lent by the reactor's pool.
    pub fn is_lent(&self) -> bool {
        self.lent.as_ref().is_some_and(|l| l.len() > 0)
    }

    /// Room left.
    pub fn free(&self) -> usize {
        self.ring.free()
    }

    /// `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// What `writable()` should answer: true while data is held.
    pub fn wants_write(&self) -> bool {
        !self.is_empty()
    }

    /// Queues as much of `data` as fits; returns how much that was.
    pub fn queue(&mut self, data: &[u8]) -> usize {
        self.ring.push(data)
    }

    /// Receives from the channel's socket into this buffer, for data that goes back
    /// out as it came (an echo, a relay), with no copy through a stack buffer: into a
    /// buffer lent by the reactor's pool when this buffer is empty and the pool has
    /// one (a large message then arrives in one read, however small `N`), otherwise
    /// straight into the free space (its first contiguous part). Returns the outcome
    /// and how many bytes were offered: `Data(n)` with `n` below that means the
    /// socket had no more for now. Nothing read is ever dropped: what the socket does
    /// not take when flushed stays queued, the lent buffer with it.
    ///
    /// # Errors
    /// As [`Ctx::recv`].
    pub fn recv_from<S: Socket, D>(
        &mut self,
        ctx: &mut Ctx<'_, S, D>,
    ) -> Result<(Recv, usize), SocketError> {
        if self.is_empty() {
            self.give_back(ctx);
            if let Some(lease) = ctx.lease() {
                let room = ctx.lease_size();
                let r = ctx.recv_leased(&lease, 0);
                match r {
                    Ok(Recv::Data(n)) if n > 0 => {
                        self.lent = Some(Lent {
                            lease,
                            start: 0,
                            end: n as u32,
                        });
                    }
                    _ => ctx.give_back(lease),
                }
                return Ok((r?, room));
            }
        }
        let (spare, _) = self.ring.spare_mut();
        let room = spare.len();
        let r = ctx.recv(spare)?;
        if let Recv::Data(n) = r {
            self.ring.commit(n);
        }
        Ok((r, room))
    }

    /// Gives an emptied lease back to the pool.
    fn give_back<S: Socket, D>(&mut self, ctx: &mut Ctx<'_, S, D>) {
        if self.lent.as_ref().is_some_and(|l| l.len() == 0)
            && let Some(lent) = self.lent.take()
        {
            ctx.give_back(lent.lease);
        }
    }

    /// Queues all of `data`, or nothing.
    ///
    /// # Errors
    /// [`BufferFull`] when it does not all fit; nothing is queued then.
    pub fn queue_all(&mut self, data: &[u8]) -> Result<(), BufferFull> {
        if data.len() > self.ring.free() {
            return Err(BufferFull);
        }
        self.ring.push(data);
        Ok(())
    }

    /// Forgets what is queued (a lent buffer goes back to the pool at the next
    /// flush, or when the channel closes).
    pub fn clear(&mut self) {
        self.ring.clear();
        if let Some(lent) = &mut self.lent {
            lent.start = lent.end;
        }
    }

    /// Writes queued bytes until the buffer is empty or the socket would block.
    /// Returns how many bytes went out. A disconnect stops it (the reactor delivers
    /// `handle_close`); the unsent bytes stay queued.
    ///
    /// # Errors
    /// Socket errors other than would-block and disconnects.
    pub fn flush<S: Socket, D>(&mut self, ctx: &mut Ctx<'_, S, D>) -> Result<usize, SocketError> {
        let mut total = 0;
        if let Some(lent) = &mut self.lent {
            while lent.len() > 0 {
                let n = ctx.send_leased(&lent.lease, lent.start as usize..lent.end as usize)?;
                if n == 0 {
                    return Ok(total);
                }
                lent.start += n as u32;
                total += n;
            }
            self.give_back(ctx);
        }
        while !self.ring.is_empty() {
            let n = ctx.send(self.ring.as_slices().0)?;
            if n == 0 {
                break;
            }
            self.ring.consume(n);
            total += n;
        }
        Ok(total)
    }

    /// The original's `send`: queues all of `data` (or nothing) and flushes at once.
    /// Returns how many bytes went out now.
    ///
    ///
    /// Data that does not fit goes, when nothing is queued, into a buffer lent by the
    /// reactor's pool (if it has one free and big enough), so a large reply needs no
    /// large buffer of the channel's own.
    ///
    /// # Errors
    /// [`crate::Error::BufferFull`] when `data` does not fit (nothing is queued), or a
    /// socket error from the flush.
    pub fn send<S: Socket, D>(
        &mut self,
        ctx: &mut Ctx<'_, S, D>,
        data: &[u8],
    ) -> Result<usize, crate::Error> {
        if data.len() > self.ring.free() && self.is_empty() && data.len() <= ctx.lease_size() {
            self.give_back(ctx);
            if let Some(lease) = ctx.lease() {
                if let Some(bytes) = ctx.leased(&lease) {
                    bytes[..data.len()].copy_from_slice(data);
                }
                self.lent = Some(Lent {
                    lease,
                    start: 0,
                    end: data.len() as u32,
                });
                return Ok(self.flush(ctx)?);
            }
        }
        self.queue_all(data)?;
        Ok(self.flush(ctx)?)
    }
}

impl<const N: usize> embedded_io::ErrorType for SendBuffer<N> {
    type Error = BufferFull;
}

impl<const N: usize> embedded_io::Write for SendBuffer<N> {
    /// Queues as much as fits. A full buffer is `Err(BufferFull)` (kind `WriteZero`),
    /// never `Ok(0)`, for a non-empty `buf`.
    fn write(&mut self, buf: &[u8]) -> Result<usize, BufferFull> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.ring.push(buf) {
            0 => Err(BufferFull),
            n => Ok(n),
        }
    }

    /// Queuing has nothing to flush; sending happens in [`SendBuffer::flush`].
    fn flush(&mut self) -> Result<(), BufferFull> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_io::{Error as _, Write};

    #[test]
    fn embedded_io_write_reports_full_as_write_zero() {
        let mut b: SendBuffer<4> = SendBuffer::new();
        assert_eq!(b.write(b"abc"), Ok(3));
        assert_eq!(b.write(b"def"), Ok(1));
        let e = b.write(b"g").unwrap_err();
        assert_eq!(e.kind(), embedded_io::ErrorKind::WriteZero);
        assert!(
            b.write_all(b"h").is_err(),
            "write_all errs instead of panicking"
        );
        assert_eq!(b.len(), 4);
    }

    #[test]
    fn queue_all_is_all_or_nothing() {
        let mut b: SendBuffer<4> = SendBuffer::new();
        assert_eq!(b.queue_all(b"abcde"), Err(BufferFull));
        assert!(b.is_empty());
        assert_eq!(b.queue(b"abcde"), 4);
        assert!(b.wants_write());
    }
}
