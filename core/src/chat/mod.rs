//! asynchat on fixed memory: terminator-framed input and queued, producer-driven
//! output (the original's `async_chat`, `simple_producer`, `find_prefix_at_end`).
//!
//! An [`AsyncChat`] is a [`Dispatcher`] that wraps your [`ChatHandler`]: it reads into
//! a fixed input ring, cuts the stream at the current [`Terminator`] and calls
//! [`ChatHandler::collect_incoming_data`] / [`ChatHandler::found_terminator`]; it
//! sends what you [`push`](ChatControl::push) and what your [`Producer`]s make, in
//! order, until the socket would block.
//!
//! Fixes of the original, by design:
//! * bounded everything: input ring `IN`, output ring `OUT`, `Q` queue entries; a full
//!   output is `Err(BufferFull)` or a partial count, never a drop (§5.11);
//! * back-pressure: no read interest while the input ring is full, write interest only
//!   while output is queued (§5.11);
//! * a record longer than the limit goes to [`ChatHandler::record_too_long`] instead
//!   of growing without bound (§5.11);
//! * ring buffers: no quadratic copying (§5.12);
//! * output is written until would-block, and empty pushes cost nothing (§5.13);
//! * a default terminator ([`Terminator::None`]) and an explicit one after a count
//!   runs out (§5.20);
//! * bytes held back as a partial terminator are delivered at EOF, not lost (§5.15).

use heapless::Deque;

use crate::{
    AfterEof, BufferFull, Ctx, Dispatcher, Error, Recv, Ring, Sent, Socket, SocketError, Token,
};

pub mod server;

/// The longest byte terminator.
pub const MAX_TERMINATOR: usize = 16;

/// Where input records end.
#[derive(Copy, Clone, PartialEq, Eq)]
pub enum Terminator {
    /// No framing: everything received is collected, `found_terminator` never runs.
    None,
    /// Deliver exactly this many more bytes, then call `found_terminator`; the
    /// terminator then becomes [`Terminator::None`] unless the handler sets another.
    /// `Count(0)` means the same as [`Terminator::None`].
    Count(usize),
    /// Deliver data up to each occurrence of these bytes (not delivered themselves).
    Bytes(TermBytes),
}

/// A byte terminator of 1 to [`MAX_TERMINATOR`] bytes.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct TermBytes {
    bytes: [u8; MAX_TERMINATOR],
    len: u8,
}

impl TermBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A terminator that cannot be used: empty, or longer than [`MAX_TERMINATOR`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InvalidTerminator;

impl core::fmt::Display for InvalidTerminator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "terminator must be 1 to {MAX_TERMINATOR} bytes")
    }
}

impl core::error::Error for InvalidTerminator {}

impl Terminator {
    /// A byte terminator.
    ///
    /// # Errors
    /// [`InvalidTerminator`] for an empty slice or one longer than [`MAX_TERMINATOR`].
    pub fn bytes(t: &[u8]) -> Result<Self, InvalidTerminator> {
        if t.is_empty() || t.len() > MAX_TERMINATOR {
            return Err(InvalidTerminator);
        }
        let mut bytes = [0; MAX_TERMINATOR];
        bytes[..t.len()].copy_from_slice(t);
        Ok(Terminator::Bytes(TermBytes {
            bytes,
            len: t.len() as u8,
        }))
    }

    /// `\r\n`.
    pub const CRLF: Terminator = {
        let mut bytes = [0; MAX_TERMINATOR];
        bytes[0] = b'\r';
        bytes[1] = b'\n';
        Terminator::Bytes(TermBytes { bytes, len: 2 })
    };

    /// `\n`.
    pub const LF: Terminator = {
        let mut bytes = [0; MAX_TERMINATOR];
        bytes[0] = b'\n';
        Terminator::Bytes(TermBytes { bytes, len: 1 })
    };
}

impl core::fmt::Debug for Terminator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Terminator::None => f.write_str("None"),
            Terminator::Count(n) => write!(f, "Count({n})"),
            Terminator::Bytes(b) => write!(f, "Bytes({:?})", b.as_slice()),
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Terminator {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Terminator::None => defmt::write!(f, "None"),
            Terminator::Count(n) => defmt::write!(f, "Count({})", n),
            Terminator::Bytes(b) => defmt::write!(f, "Bytes({=[u8]})", b.as_slice()),
        }
    }
}

/// The length of the longest proper prefix of `needle` that ends `haystack`: how many
/// trailing bytes must be kept because they may start a terminator split across
/// reads. The caller knows `needle` does not occur in `haystack`.
///
/// ```
/// use asyncore_core::chat::find_prefix_at_end;
/// assert_eq!(find_prefix_at_end(b"qwerty\r", b"\r\n"), 1);
/// assert_eq!(find_prefix_at_end(b"qwertydkjf", b"\r\n"), 0);
/// assert_eq!(find_prefix_at_end(b"xaa", b"aab"), 2);
/// ```
pub fn find_prefix_at_end(haystack: &[u8], needle: &[u8]) -> usize {
    let max = needle.len().saturating_sub(1).min(haystack.len());
    (1..=max)
        .rev()
        .find(|&l| haystack.ends_with(&needle[..l]))
        .unwrap_or(0)
}

/// Bytes a send took; would-block is 0.
fn sent(s: Sent) -> usize {
    match s {
        Sent::Bytes(n) => n,
        Sent::WouldBlock => 0,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return haystack.iter().position(|&b| b == needle[0]);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

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

/// The output queue is full: the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

/// What to do with a record that outgrew [`AsyncChat::set_max_record`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Overflow {
    /// Drop the rest of this record: no `collect_incoming_data` until the next
    /// terminator, which is then reported as usual.
    Discard,
    /// Go on collecting (the handler copes).
    Continue,
}

enum Entry<P> {
    Data(usize),
    Producer(P),
    Close,
}

/// Size of the staging area for producer output.
pub const STAGE: usize = 128;

/// The terminator and the output side of a chat: what handlers control.
pub struct ChatControl<P, const OUT: usize, const Q: usize> {
    terminator: Terminator,
    out: Ring<OUT>,
    queue: Deque<Entry<P>, Q>,
    stage: [u8; STAGE],
    stage_start: usize,
    stage_end: usize,
}

impl<P, const OUT: usize, const Q: usize> core::fmt::Debug for ChatControl<P, OUT, Q> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChatControl")
            .field("terminator", &self.terminator)
            .field("queued_bytes", &self.out.len())
            .field("entries", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl<P: Producer, const OUT: usize, const Q: usize> Default for ChatControl<P, OUT, Q> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Producer, const OUT: usize, const Q: usize> ChatControl<P, OUT, Q> {
    /// Empty output, terminator [`Terminator::None`].
    pub const fn new() -> Self {
        ChatControl {
            terminator: Terminator::None,
            out: Ring::new(),
            queue: Deque::new(),
            stage: [0; STAGE],
            stage_start: 0,
            stage_end: 0,
        }
    }

    /// Sets where records end. Takes effect for the rest of the current input too.
    pub fn set_terminator(&mut self, t: Terminator) {
        self.terminator = t;
    }

    /// The current terminator.
    pub fn terminator(&self) -> Terminator {
        self.terminator
    }

    fn tail_is_data(&mut self) -> bool {
        matches!(self.queue.back(), Some(Entry::Data(_)))
    }

    fn account(&mut self, n: usize) {
        if let Some(Entry::Data(len)) = self.queue.back_mut() {
            *len += n;
        } else {
            // The caller checked there is room.
            let _ = self.queue.push_back(Entry::Data(n));
        }
    }

    /// Queues all of `data` (or nothing). Empty data queues nothing.
    ///
    /// # Errors
    /// [`BufferFull`] when the output ring or the queue has no room; nothing is queued.
    pub fn push(&mut self, data: &[u8]) -> Result<(), BufferFull> {
        if data.is_empty() {
            return Ok(());
        }
        if data.len() > self.out.free() || (!self.tail_is_data() && self.queue.is_full()) {
            return Err(BufferFull);
        }
        self.out.push(data);
        self.account(data.len());
        Ok(())
    }

    /// Queues as much of `data` as fits; returns how much that was.
    pub fn push_partial(&mut self, data: &[u8]) -> usize {
        if data.is_empty() || (!self.tail_is_data() && self.queue.is_full()) {
            return 0;
        }
        let n = self.out.push(data);
        if n > 0 {
            self.account(n);
        }
        n
    }

    /// Queues a producer; its output goes out after everything queued before it.
    ///
    /// # Errors
    /// The queue is full: the producer comes back.
    pub fn push_with_producer(&mut self, p: P) -> Result<(), QueueFull<P>> {
        self.queue
            .push_back(Entry::Producer(p))
            .map_err(|e| match e {
                Entry::Producer(p) => QueueFull(p),
                _ => unreachable!("push_back hands back what it was given"),
            })
    }

    /// Closes the channel once everything queued so far is sent.
    ///
    /// # Errors
    /// The queue is full.
    pub fn close_when_done(&mut self) -> Result<(), QueueFull<()>> {
        self.queue
            .push_back(Entry::Close)
            .map_err(|_| QueueFull(()))
    }

    /// Drops all queued output (and a pending `close_when_done`).
    pub fn discard_output(&mut self) {
        self.out.clear();
        self.queue.clear();
        self.stage_start = 0;
        self.stage_end = 0;
    }

    /// Bytes of room in the output ring.
    pub fn output_free(&self) -> usize {
        self.out.free()
    }

    /// Whether anything is queued.
    pub fn has_output(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Sends queued output straight to `socket` until it would block, the queue is
    /// empty, or a [`close_when_done`](Self::close_when_done) marker is next (only the
    /// channel's own handlers act on that). For a handler that reaches another
    /// channel's chat (e.g. through [`Ctx::others`]) and wants its output to drain now
    /// rather than at that channel's next write readiness. Returns how many bytes went
    /// out.
    ///
    /// # Errors
    /// What the socket reports, disconnects included; the channel itself learns of
    /// them at its next event.
    pub fn flush_to<S: Socket>(&mut self, socket: &mut S) -> Result<usize, SocketError> {
        let mut total = 0;
        while let Some(head) = self.queue.front_mut() {
            let n = match head {
                Entry::Data(len) => {
                    let (a, _) = self.out.as_slices();
                    let n = sent(socket.send(&a[..a.len().min(*len)])?);
                    self.out.consume(n);
                    *len -= n;
                    if *len == 0 {
                        self.queue.pop_front();
                    }
                    n
                }
                Entry::Producer(p) => {
                    if self.stage_start == self.stage_end {
                        let n = p.more(&mut self.stage);
                        if n == 0 {
                            self.queue.pop_front();
                            continue;
                        }
                        self.stage_start = 0;
                        self.stage_end = n.min(STAGE);
                    }
                    let n = sent(socket.send(&self.stage[self.stage_start..self.stage_end])?);
                    self.stage_start += n;
                    n
                }
                Entry::Close => break,
            };
            if n == 0 {
                break;
            }
            total += n;
        }
        Ok(total)
    }

    /// Sends queued output until it is all sent or the socket would block. Returns
    /// whether the channel was closed by a `close_when_done`.
    fn initiate_send<S: Socket, M>(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), SocketError> {
        while ctx.is_open() {
            let Some(head) = self.queue.front_mut() else {
                break;
            };
            match head {
                Entry::Data(len) => {
                    let (a, _) = self.out.as_slices();
                    let chunk = &a[..a.len().min(*len)];
                    let n = ctx.send(chunk)?;
                    if n == 0 {
                        break;
                    }
                    self.out.consume(n);
                    *len -= n;
                    if *len == 0 {
                        self.queue.pop_front();
                    }
                }
                Entry::Producer(p) => {
                    if self.stage_start == self.stage_end {
                        let n = p.more(&mut self.stage);
                        if n == 0 {
                            self.queue.pop_front();
                            continue;
                        }
                        self.stage_start = 0;
                        self.stage_end = n.min(STAGE);
                    }
                    let n = ctx.send(&self.stage[self.stage_start..self.stage_end])?;
                    if n == 0 {
                        break;
                    }
                    self.stage_start += n;
                }
                Entry::Close => {
                    self.queue.pop_front();
                    ctx.close();
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Your protocol: what an [`AsyncChat`] calls. `S` is the socket type, `M` the map's
/// dispatcher type (see [`Dispatcher`]).
pub trait ChatHandler<S: Socket, M>: Sized {
    /// The producer type this chat queues.
    type Producer: Producer;

    /// Data of the current record arrived (never empty). Only the concatenation
    /// between two `found_terminator` calls is meaningful: chunk boundaries depend on
    /// how reads arrive.
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error>;

    /// The current terminator was found (or the count ran out).
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn found_terminator<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), Error>;

    /// More than the record limit arrived without a terminator. The default ends the
    /// connection with [`Error::Protocol`].
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn record_too_long<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<Overflow, Error> {
        let _ = (chat, ctx);
        Err(Error::Protocol("record too long"))
    }

    /// The connect finished.
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn handle_connect<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), Error> {
        let _ = (chat, ctx);
        Ok(())
    }

    /// The channel's deadline passed (see [`Ctx::set_deadline`]); the default does
    /// nothing.
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn handle_timeout<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), Error> {
        let _ = (chat, ctx);
        Ok(())
    }

    /// The connection ended (see [`Dispatcher::handle_close`]).
    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, M>) {
        let _ = ctx;
    }

    /// The peer finished sending; the default closes once queued output is sent.
    fn handle_eof<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> AfterEof {
        let _ = ctx;
        if chat.has_output() && chat.close_when_done().is_ok() {
            AfterEof::KeepWriting
        } else {
            AfterEof::Close
        }
    }

    /// A handler failed; the default closes the channel.
    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, M>, error: Error) {
        let _ = error;
        ctx.close();
    }
}

/// A chat channel: your [`ChatHandler`] `H` with an input ring of `IN` bytes, an
/// output ring of `OUT` bytes and room for `Q` queued entries (data runs, producers,
/// close-when-done markers).
pub struct AsyncChat<H, P, const IN: usize, const OUT: usize, const Q: usize> {
    /// Your protocol state.
    pub handler: H,
    chat: ChatControl<P, OUT, Q>,
    input: Ring<IN>,
    record: RecordState,
}

/// How much of the current record was collected, against the limit.
#[derive(Debug)]
struct RecordState {
    max: usize,
    len: usize,
    discarding: bool,
}

impl<H, P, const IN: usize, const OUT: usize, const Q: usize> core::fmt::Debug
    for AsyncChat<H, P, IN, OUT, Q>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncChat")
            .field("chat", &self.chat)
            .field("input", &self.input)
            .finish_non_exhaustive()
    }
}

impl<H, P: Producer, const IN: usize, const OUT: usize, const Q: usize>
    AsyncChat<H, P, IN, OUT, Q>
{
    /// A chat around `handler`, terminator [`Terminator::None`], no record limit.
    pub const fn new(handler: H) -> Self {
        AsyncChat {
            handler,
            chat: ChatControl::new(),
            input: Ring::new(),
            record: RecordState {
                max: usize::MAX,
                len: 0,
                discarding: false,
            },
        }
    }

    /// The same with a terminator.
    #[must_use]
    pub fn with_terminator(mut self, t: Terminator) -> Self {
        self.chat.set_terminator(t);
        self
    }

    /// Limits a record (the bytes collected between two terminators) to `max` bytes;
    /// more goes to [`ChatHandler::record_too_long`].
    pub fn set_max_record(&mut self, max: usize) {
        self.record.max = max;
    }

    /// The control half: terminator and output.
    pub fn control(&mut self) -> &mut ChatControl<P, OUT, Q> {
        &mut self.chat
    }

    /// Sets the terminator.
    pub fn set_terminator(&mut self, t: Terminator) {
        self.chat.set_terminator(t);
    }

    /// The terminator.
    pub fn terminator(&self) -> Terminator {
        self.chat.terminator()
    }

    /// Queues data (see [`ChatControl::push`]); it is sent on the next write readiness.
    ///
    /// # Errors
    /// [`BufferFull`]; nothing is queued then.
    pub fn push(&mut self, data: &[u8]) -> Result<(), BufferFull> {
        self.chat.push(data)
    }

    /// Queues a producer.
    ///
    /// # Errors
    /// The queue is full: the producer comes back.
    pub fn push_with_producer(&mut self, p: P) -> Result<(), QueueFull<P>> {
        self.chat.push_with_producer(p)
    }

    /// Closes once everything queued is sent.
    ///
    /// # Errors
    /// The queue is full.
    pub fn close_when_done(&mut self) -> Result<(), QueueFull<()>> {
        self.chat.close_when_done()
    }

    /// Drops buffered input and queued output (and a pending close-when-done).
    pub fn discard_buffers(&mut self) {
        self.input.clear();
        self.chat.discard_output();
        self.record.len = 0;
        self.record.discarding = false;
    }

    /// Bytes waiting in the input ring (at most a partial terminator between reads).
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    /// Whether output is queued.
    pub fn has_output(&self) -> bool {
        self.chat.has_output()
    }

    /// Sends queued output now, until would-block (normally done on write readiness).
    ///
    /// # Errors
    /// Socket errors other than would-block and disconnects.
    pub fn initiate_send<S: Socket, M>(
        &mut self,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), SocketError> {
        self.chat.initiate_send(ctx)
    }
}

impl<H, P: Producer, const IN: usize, const OUT: usize, const Q: usize>
    AsyncChat<H, P, IN, OUT, Q>
{
    fn found<S: Socket, M>(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error>
    where
        H: ChatHandler<S, M, Producer = P>,
    {
        self.record.len = 0;
        self.record.discarding = false;
        self.handler.found_terminator(&mut self.chat, ctx)
    }

    /// Cuts the buffered input at terminators (reference §3.3, on a ring).
    fn process_input<S: Socket, M>(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error>
    where
        H: ChatHandler<S, M, Producer = P>,
    {
        while !self.input.is_empty() && ctx.is_open() {
            match self.chat.terminator {
                // A count of 0 is falsy in the original, like None: no framing.
                Terminator::None | Terminator::Count(0) => {
                    let n = self.input.len();
                    self.collect_front(ctx, n)?;
                }
                Terminator::Count(n) => {
                    let take = n.min(self.input.len());
                    self.collect_front(ctx, take)?;
                    let left = n - take;
                    if left == 0 {
                        self.chat.terminator = Terminator::None;
                        self.found(ctx)?;
                    } else {
                        self.chat.terminator = Terminator::Count(left);
                    }
                }
                Terminator::Bytes(t) => {
                    let t = t.as_slice();
                    let hay = self.input.make_contiguous();
                    match find(hay, t) {
                        Some(i) => {
                            self.collect_front(ctx, i)?;
                            self.input.consume(t.len());
                            self.found(ctx)?;
                        }
                        None => {
                            let keep = find_prefix_at_end(hay, t);
                            let n = self.input.len() - keep;
                            self.collect_front(ctx, n)?;
                            break;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Collects and consumes the `n` oldest input bytes.
    fn collect_front<S: Socket, M>(
        &mut self,
        ctx: &mut Ctx<'_, S, M>,
        n: usize,
    ) -> Result<(), Error>
    where
        H: ChatHandler<S, M, Producer = P>,
    {
        let mut left = n;
        while left > 0 {
            let (a, _) = self.input.as_slices();
            let k = a.len().min(left);
            let result = collect(
                &mut self.handler,
                &mut self.chat,
                &mut self.record,
                ctx,
                &a[..k],
            );
            self.input.consume(k);
            left -= k;
            result?;
        }
        Ok(())
    }
}

/// Hands `data` to the handler, enforcing the record limit.
fn collect<S, M, H, P, const OUT: usize, const Q: usize>(
    handler: &mut H,
    chat: &mut ChatControl<P, OUT, Q>,
    record: &mut RecordState,
    ctx: &mut Ctx<'_, S, M>,
    data: &[u8],
) -> Result<(), Error>
where
    S: Socket,
    H: ChatHandler<S, M, Producer = P>,
    P: Producer,
{
    if data.is_empty() || record.discarding {
        return Ok(());
    }
    let room = record.max.saturating_sub(record.len);
    if data.len() <= room {
        record.len += data.len();
        return handler.collect_incoming_data(data);
    }
    // Deliver what fits, then ask.
    if room > 0 {
        handler.collect_incoming_data(&data[..room])?;
    }
    record.len = record.max;
    match handler.record_too_long(chat, ctx)? {
        Overflow::Discard => record.discarding = true,
        Overflow::Continue => {
            record.len = data.len() - room;
            handler.collect_incoming_data(&data[room..])?;
        }
    }
    Ok(())
}

/// How many reads one read event may do before yielding to other channels.
const READS_PER_EVENT: usize = 8;

impl<S, M, H, P, const IN: usize, const OUT: usize, const Q: usize> Dispatcher<S, M>
    for AsyncChat<H, P, IN, OUT, Q>
where
    S: Socket,
    H: ChatHandler<S, M, Producer = P>,
    P: Producer,
{
    type Error = Error;

    fn readable(&self) -> bool {
        !self.input.is_full()
    }

    fn writable(&self) -> bool {
        self.chat.has_output()
    }

    fn handle_connect(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error> {
        self.handler.handle_connect(&mut self.chat, ctx)?;
        self.chat.initiate_send(ctx)?;
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error> {
        for _ in 0..READS_PER_EVENT {
            let (spare, _) = self.input.spare_mut();
            if spare.is_empty() {
                break;
            }
            match ctx.recv(spare)? {
                Recv::Data(n) => {
                    self.input.commit(n);
                    self.process_input(ctx)?;
                }
                Recv::Eof => {
                    // Bytes held back as a possible terminator prefix are data after
                    // all: deliver them rather than lose them.
                    let n = self.input.len();
                    self.collect_front(ctx, n)?;
                    break;
                }
                Recv::WouldBlock => break,
            }
            if !ctx.is_open() {
                break;
            }
        }
        if self.chat.has_output() {
            self.chat.initiate_send(ctx)?;
        }
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error> {
        self.chat.initiate_send(ctx)?;
        Ok(())
    }

    fn handle_eof(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<AfterEof, Error> {
        Ok(self.handler.handle_eof(&mut self.chat, ctx))
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error> {
        self.handler.handle_timeout(&mut self.chat, ctx)?;
        if self.chat.has_output() {
            self.chat.initiate_send(ctx)?;
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error> {
        self.handler.handle_close(ctx);
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, M>, error: Error) {
        self.handler.handle_error(ctx, error);
    }

    fn log_info(&mut self, token: Token, level: crate::LogLevel, message: &'static str) {
        let _ = (token, level, message);
    }
}

impl From<InvalidTerminator> for Error {
    fn from(_: InvalidTerminator) -> Self {
        Error::Protocol("invalid terminator")
    }
}

impl<T> From<QueueFull<T>> for Error {
    fn from(_: QueueFull<T>) -> Self {
        Error::BufferFull
    }
}

#[cfg(test)]
mod tests;
