//! `AsyncChat`: the chat channel, a [`Dispatcher`] that reads records and sends the
//! queued output.

use super::terminator::find;
use super::{
    ChatControl, ChatHandler, InvalidTerminator, Overflow, Producer, QueueFull, Terminator,
    find_prefix_at_end,
};
use crate::{
    AfterEof, BufferFull, Ctx, Dispatcher, Error, InterestMode, Recv, Ring, Socket, SocketError,
    Token,
};

/// A chat channel: your [`ChatHandler`] `H` with an input ring of `IN` bytes, an
/// output ring of `OUT` bytes and room for `Q` queued entries (data runs, producers,
/// close-when-done markers).
pub struct AsyncChat<H, P, const IN: usize, const OUT: usize, const Q: usize> {
    /// Your protocol state.
    pub handler: H,
    pub(super) chat: ChatControl<P, OUT, Q>,
    pub(super) input: Ring<IN>,
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

    /// Bytes waiting in the input ring (at most a partial terminator between reads,
    /// unless input is paused).
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    /// Cuts the records already in the input ring (until input is paused again, see
    /// [`ChatControl::pause_input`]), without reading: what a handler calls after
    /// [`ChatControl::resume_input`], from one of the channel's own callbacks, so the
    /// input that waited is handled at once rather than at the next read readiness
    /// (which may never come if the peer has sent everything).
    ///
    /// # Errors
    /// What the handler's callbacks return.
    pub fn process_buffered<S: Socket, M>(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error>
    where
        H: ChatHandler<S, M, Producer = P>,
    {
        self.process_input(ctx)
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

    /// Cuts the buffered input at terminators (the original's algorithm, on a ring).
    fn process_input<S: Socket, M>(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error>
    where
        H: ChatHandler<S, M, Producer = P>,
    {
        while !self.input.is_empty() && ctx.is_open() && !self.chat.input_paused() {
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
        !self.input.is_full() && !self.chat.input_paused()
    }

    fn writable(&self) -> bool {
        self.chat.has_output()
    }

    /// Both answers come from the channel's own input ring and output queue: the
    /// reactor asks them only after something changed the channel.
    fn interest_mode(&self) -> InterestMode {
        InterestMode::OnChange
    }

    fn handle_connect(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error> {
        self.handler.handle_connect(&mut self.chat, ctx)?;
        self.chat.initiate_send(ctx)?;
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), Error> {
        for _ in 0..READS_PER_EVENT {
            let (spare, _) = self.input.spare_mut();
            // Paused: what the peer sends next stays in the socket (an EOF behind the
            // buffered records is not seen before them).
            if spare.is_empty() || self.chat.input_paused() {
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
