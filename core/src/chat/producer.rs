//! Producers: output made on demand, a piece per write readiness.

/// Something that makes output on demand (the original's producer protocol).
pub trait Producer {
    /// Writes the next chunk into `out` and returns its length; `0` means exhausted
    /// (the producer is then dropped from the queue).
    fn more(&mut self, out: &mut [u8]) -> usize;
}

/// A producer over a byte slice: sends all of it.
#[derive(Debug, Clone)]
pub struct SliceProducer<'a> {
    data: &'a [u8],
}

impl<'a> SliceProducer<'a> {
    /// Produces `data`.
    pub const fn new(data: &'a [u8]) -> Self {
        SliceProducer { data }
    }
}

impl Producer for SliceProducer<'_> {
    fn more(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        n
    }
}

/// The original's `simple_producer`: hands out `data` in chunks of at most
/// `buffer_size` bytes.
#[derive(Debug, Clone)]
pub struct SimpleProducer<'a> {
    data: &'a [u8],
    buffer_size: usize,
}

impl<'a> SimpleProducer<'a> {
    /// Chunks of `buffer_size` (at least 1; the original's default is 512).
    pub const fn new(data: &'a [u8], buffer_size: usize) -> Self {
        let buffer_size = if buffer_size == 0 { 1 } else { buffer_size };
        SimpleProducer { data, buffer_size }
    }
}

impl Producer for SimpleProducer<'_> {
    fn more(&mut self, out: &mut [u8]) -> usize {
        let n = self.buffer_size.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        n
    }
}

/// A producer type for chats that never use producers.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProducer;

impl Producer for NoProducer {
    fn more(&mut self, _out: &mut [u8]) -> usize {
        0
    }
}
