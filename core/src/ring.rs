//! `Ring`: a fixed-capacity byte ring with slice access on both ends, so data moves
//! with `memcpy` and never by shifting (the original's `buffer = buffer[n:]` copies).

use core::fmt;

/// A byte ring of capacity `N`.
pub struct Ring<const N: usize> {
    buf: [u8; N],
    // u32, not usize: a ring holds less than 4 GiB, and the slot of a small-buffer
    // channel is 8 bytes smaller on 64-bit targets.
    head: u32,
    len: u32,
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for Ring<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("len", &self.len)
            .field("capacity", &N)
            .finish()
    }
}

impl<const N: usize> Ring<N> {
    const CAPACITY_FITS: () = assert!(N <= u32::MAX as usize, "a ring holds less than 4 GiB");

    /// An empty ring.
    pub const fn new() -> Self {
        let () = Self::CAPACITY_FITS;
        Ring {
            buf: [0; N],
            head: 0,
            len: 0,
        }
    }

    /// Bytes held.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it holds nothing.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it is full.
    pub const fn is_full(&self) -> bool {
        self.len as usize == N
    }

    /// `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Room left.
    pub const fn free(&self) -> usize {
        N - self.len as usize
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Appends as much of `data` as fits and returns how much that was.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        let (a, b) = self.spare_mut();
        let first = n.min(a.len());
        a[..first].copy_from_slice(&data[..first]);
        b[..n - first].copy_from_slice(&data[first..n]);
        self.len += n as u32;
        n
    }

    /// The held bytes, oldest first, as at most two slices.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        if N == 0 {
            return (&[], &[]);
        }
        let head = self.head as usize;
        let end = head + self.len as usize;
        if end <= N {
            (&self.buf[head..end], &[])
        } else {
            (&self.buf[head..], &self.buf[..end - N])
        }
    }

    /// The free space, in order, as at most two slices: write into them, then
    /// [`commit`](Self::commit).
    pub fn spare_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        if N == 0 {
            return (&mut [], &mut []);
        }
        let tail = (self.head as usize + self.len as usize) % N;
        let free = self.free();
        if tail + free <= N {
            (&mut self.buf[tail..tail + free], &mut [])
        } else {
            let (front, back) = self.buf.split_at_mut(tail);
            let wrap = free - back.len();
            (back, &mut front[..wrap])
        }
    }

    /// Marks `n` bytes written into [`spare_mut`](Self::spare_mut) as held (clamped to
    /// the free space).
    pub fn commit(&mut self, n: usize) {
        self.len += n.min(self.free()) as u32;
    }

    /// Drops the `n` oldest bytes (clamped to what is held).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len as usize);
        if N != 0 {
            self.head = ((self.head as usize + n) % N) as u32;
        }
        self.len -= n as u32;
        if self.len == 0 {
            self.head = 0;
        }
    }

    /// Copies up to `out.len()` of the oldest bytes into `out` without consuming them.
    pub fn peek(&self, out: &mut [u8]) -> usize {
        let (a, b) = self.as_slices();
        let first = out.len().min(a.len());
        out[..first].copy_from_slice(&a[..first]);
        let second = (out.len() - first).min(b.len());
        out[first..first + second].copy_from_slice(&b[..second]);
        first + second
    }

    /// Byte `i` from the oldest, if held.
    pub fn get(&self, i: usize) -> Option<u8> {
        if i < self.len() {
            Some(self.buf[(self.head as usize + i) % N])
        } else {
            None
        }
    }

    /// Moves the held bytes to the front so they form one slice, and returns it.
    pub fn make_contiguous(&mut self) -> &[u8] {
        let (head, len) = (self.head as usize, self.len as usize);
        if head + len > N {
            self.buf.rotate_left(head);
            self.head = 0;
            return &self.buf[..len];
        }
        &self.buf[head..head + len]
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn wraps_around_and_keeps_order() {
        let mut r: Ring<8> = Ring::new();
        assert_eq!(r.push(b"abcdef"), 6);
        r.consume(4);
        assert_eq!(r.push(b"ghijkl"), 6);
        assert!(r.is_full());
        assert_eq!(r.push(b"x"), 0, "a full ring takes nothing");
        let (a, b) = r.as_slices();
        let mut all = std::vec::Vec::new();
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        assert_eq!(all, b"efghijkl");
        assert_eq!(r.get(0), Some(b'e'));
        assert_eq!(r.get(8), None);
        assert_eq!(r.make_contiguous(), b"efghijkl");
    }

    #[test]
    fn spare_and_commit() {
        let mut r: Ring<4> = Ring::new();
        r.push(b"ab");
        r.consume(1);
        let (a, b) = r.spare_mut();
        assert_eq!(a.len() + b.len(), 3);
        a[0] = b'c';
        r.commit(1);
        let mut out = [0u8; 4];
        assert_eq!(r.peek(&mut out), 2);
        assert_eq!(&out[..2], b"bc");
        r.commit(100);
        assert!(r.is_full(), "commit is clamped to the free space");
    }

    #[test]
    fn zero_capacity_is_harmless() {
        let mut r: Ring<0> = Ring::new();
        assert_eq!(r.push(b"abc"), 0);
        r.consume(3);
        r.commit(3);
        assert!(r.is_empty());
        assert_eq!(r.as_slices(), (&[][..], &[][..]));
    }
}
