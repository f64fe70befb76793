//! `BufferPool`: large buffers a reactor lends to its channels, so a channel with a
//! small buffer of its own still moves large messages in one read and one write.
//!
//! A server on constrained memory gives each connection a small buffer (2 KiB, say):
//! idle connections then cost little, but a 64 KiB message takes 32 reads, 32 writes
//! and 32 passes through that buffer, where a loop written by hand reads it into one
//! large buffer shared by every connection and writes it back at once. The pool is
//! that large buffer, made safe for callbacks: the reactor owns `COUNT` buffers of
//! `SIZE` bytes; a handler takes one ([`Ctx::lease`](crate::Ctx::lease)), reads
//! into it and writes from it, and gives it back. What the socket did not take stays
//! in the lease, which the channel keeps until it is written out, so nothing read is
//! ever lost; busy channels hold buffers, idle ones hold none. When every buffer is
//! lent, `lease` says no and the channel works through its own buffer, slower but
//! the same. A channel that closes gives its leases back by itself.
//!
//! [`SendBuffer`](crate::SendBuffer) (and so the ready-made echo server) uses the
//! pool on its own when the reactor has one.

use core::num::NonZeroU16;

use crate::Token;

/// A buffer of the reactor's pool lent to one channel (see
/// [`Ctx::lease`](crate::Ctx::lease)): only that channel's context reaches its bytes,
/// and it goes back to the pool when given back or when the channel closes. Not
/// `Clone`: one lease, one holder.
#[derive(Debug, PartialEq, Eq)]
pub struct Lease(NonZeroU16);

impl Lease {
    fn new(index: u16) -> Self {
        // The pool holds fewer than u16::MAX buffers, so index + 1 is never 0 nor wraps.
        Lease(NonZeroU16::new(index.wrapping_add(1)).unwrap_or(NonZeroU16::MAX))
    }

    fn index(&self) -> usize {
        self.0.get() as usize - 1
    }
}

/// The lending side of a pool: what a [`Reactor`](crate::Reactor)'s `P` parameter
/// must be. Implemented by [`BufferPool`]; [`NoPool`] lends nothing.
pub trait Lend: Sized {
    /// The size of each buffer, in bytes.
    const SIZE: usize;

    /// The pool with every buffer free (what [`Reactor::new`](crate::Reactor::new)
    /// starts with).
    const EMPTY: Self;

    /// Lends a free buffer to `owner`, or `None` when every buffer is lent.
    fn take(&mut self, owner: Token) -> Option<Lease>;

    /// The bytes of `lease`, if `owner` holds it.
    fn bytes(&mut self, lease: &Lease, owner: Token) -> Option<&mut [u8]>;

    /// Takes `lease` back from `owner` (nothing happens if `owner` does not hold it).
    fn give_back(&mut self, lease: Lease, owner: Token);

    /// Takes back every buffer `owner` holds (its channel left the reactor).
    fn release(&mut self, owner: Token);

    /// How many buffers are lent now.
    fn lent(&self) -> usize;
}

/// `COUNT` buffers of `SIZE` bytes, lent to channels (see [`Ctx::lease`](crate::Ctx::lease)).
/// `const`-constructible and all zeros when empty, so it can sit in a `static`
/// (in `.bss`), inside its reactor.
pub struct BufferPool<const COUNT: usize, const SIZE: usize> {
    bufs: [[u8; SIZE]; COUNT],
    /// The holder of each buffer, as its token's bits + 1 (0: free).
    owners: [u64; COUNT],
    /// Buffers given back, ready to lend again (a stack).
    free: [u16; COUNT],
    free_len: u16,
    /// Buffers `fresh..COUNT` were never lent.
    fresh: u16,
    lent: u16,
    /// The most buffers lent at once.
    peak: u16,
}

/// A reactor without a pool: [`Ctx::lease`](crate::Ctx::lease) always says no. The
/// default of [`Reactor`](crate::Reactor)'s `P` parameter.
pub type NoPool = BufferPool<0, 0>;

impl<const COUNT: usize, const SIZE: usize> BufferPool<COUNT, SIZE> {
    const COUNT_FITS: () = assert!(COUNT < u16::MAX as usize, "at most 65,534 buffers");

    /// A pool with every buffer free.
    pub const fn new() -> Self {
        let () = Self::COUNT_FITS;
        BufferPool {
            bufs: [[0; SIZE]; COUNT],
            owners: [0; COUNT],
            free: [0; COUNT],
            free_len: 0,
            fresh: 0,
            lent: 0,
            peak: 0,
        }
    }

    /// `COUNT`.
    pub const fn capacity(&self) -> usize {
        COUNT
    }

    /// The most buffers that were lent at the same time.
    pub fn peak(&self) -> usize {
        self.peak as usize
    }

    fn key(owner: Token) -> u64 {
        // Token bits never reach u64::MAX: the slot index is below u32::MAX.
        owner.to_bits().wrapping_add(1)
    }
}

impl<const COUNT: usize, const SIZE: usize> Default for BufferPool<COUNT, SIZE> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const COUNT: usize, const SIZE: usize> core::fmt::Debug for BufferPool<COUNT, SIZE> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BufferPool")
            .field("count", &COUNT)
            .field("size", &SIZE)
            .field("lent", &self.lent)
            .field("peak", &self.peak)
            .finish()
    }
}

impl<const COUNT: usize, const SIZE: usize> Lend for BufferPool<COUNT, SIZE> {
    const SIZE: usize = SIZE;
    const EMPTY: Self = Self::new();

    #[inline]
    fn take(&mut self, owner: Token) -> Option<Lease> {
        let index = if self.free_len > 0 {
            self.free_len -= 1;
            self.free[self.free_len as usize]
        } else if (self.fresh as usize) < COUNT {
            self.fresh += 1;
            self.fresh - 1
        } else {
            return None;
        };
        self.owners[index as usize] = Self::key(owner);
        self.lent += 1;
        self.peak = self.peak.max(self.lent);
        Some(Lease::new(index))
    }

    #[inline]
    fn bytes(&mut self, lease: &Lease, owner: Token) -> Option<&mut [u8]> {
        let i = lease.index();
        if *self.owners.get(i)? != Self::key(owner) {
            return None;
        }
        self.bufs.get_mut(i).map(|b| &mut b[..])
    }

    #[inline]
    fn give_back(&mut self, lease: Lease, owner: Token) {
        let i = lease.index();
        if self.owners.get(i) != Some(&Self::key(owner)) {
            return;
        }
        self.owners[i] = 0;
        self.free[self.free_len as usize] = i as u16;
        self.free_len += 1;
        self.lent -= 1;
    }

    fn release(&mut self, owner: Token) {
        if self.lent == 0 {
            return;
        }
        let key = Self::key(owner);
        for i in 0..self.fresh {
            if self.owners[i as usize] == key {
                self.give_back(Lease::new(i), owner);
            }
        }
    }

    fn lent(&self) -> usize {
        self.lent as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lends_each_buffer_once_and_only_to_its_holder() {
        let mut p: BufferPool<2, 8> = BufferPool::new();
        let (a, b) = (Token::new(0, 0), Token::new(1, 0));
        let la = p.take(a).unwrap();
        let lb = p.take(b).unwrap();
        assert!(p.take(a).is_none(), "both lent");
        assert!(p.bytes(&la, a).is_some());
        assert!(p.bytes(&la, b).is_none(), "not b's");
        p.give_back(la, b);
        assert_eq!(p.lent(), 2, "b cannot give back a's lease");
        p.release(a);
        assert_eq!(p.lent(), 1);
        let again = p.take(b).unwrap();
        assert!(p.bytes(&again, b).is_some());
        assert!(p.bytes(&lb, b).is_some());
        assert_eq!(p.peak(), 2);
        let none: NoPool = BufferPool::new();
        let mut none = none;
        assert!(none.take(a).is_none());
    }

    #[test]
    fn a_static_pool() {
        static POOL: BufferPool<4, 64> = BufferPool::new();
        assert_eq!(POOL.capacity(), 4);
        assert_eq!(POOL.lent(), 0);
    }
}
