//! The output side of a chat: the terminator it reads by, the output ring, the
//! queue of data runs, producers and close markers, and the one routine that drains
//! it into a socket.

use heapless::Deque;

use super::{Producer, Terminator};
use crate::{BufferFull, Ctx, Ring, Sent, Socket, SocketError};

/// The output queue is full: the value comes back.
#[derive(Debug, PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

pub(super) enum Entry<P> {
    Data(usize),
    Producer(P),
    Close,
}

/// Size of the staging area for producer output.
pub const PRODUCER_STAGE: usize = 128;

/// The terminator and the output side of a chat: what handlers control.
pub struct ChatControl<P, const OUT: usize, const Q: usize> {
    pub(super) terminator: Terminator,
    pub(super) out: Ring<OUT>,
    queue: Deque<Entry<P>, Q>,
    stage: [u8; PRODUCER_STAGE],
    stage_start: usize,
    stage_end: usize,
    input_paused: bool,
    sent: u64,
}

impl<P, const OUT: usize, const Q: usize> core::fmt::Debug for ChatControl<P, OUT, Q> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChatControl")
            .field("terminator", &self.terminator)
            .field("queued_bytes", &self.out.len())
            .field("entries", &self.queue.len())
            .field("input_paused", &self.input_paused)
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
            stage: [0; PRODUCER_STAGE],
            stage_start: 0,
            stage_end: 0,
            input_paused: false,
            sent: 0,
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

    /// Bytes queued in the output ring, not yet sent.
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Bytes sent so far (by every drain: write readiness, `initiate_send`,
    /// [`flush_to`](Self::flush_to)): a receiver makes progress while it grows.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Stops cutting input into records: the record being handled is the last one
    /// until [`resume_input`](Self::resume_input). The rest stays in the input ring,
    /// the channel asks for no read readiness and reads no more, so the peer's further
    /// input waits in the socket's buffers (back-pressure on a sender: nothing is
    /// dropped). Records already buffered are cut again by
    /// [`AsyncChat::process_buffered`](super::AsyncChat::process_buffered), which the
    /// owner calls once it resumed input.
    pub fn pause_input(&mut self) {
        self.input_paused = true;
    }

    /// Ends a [`pause_input`](Self::pause_input): reading and cutting records go on
    /// (buffered records wait for the next read or for
    /// [`AsyncChat::process_buffered`](super::AsyncChat::process_buffered)).
    pub fn resume_input(&mut self) {
        self.input_paused = false;
    }

    /// Whether input is paused.
    pub fn input_paused(&self) -> bool {
        self.input_paused
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
        self.drain(|data| {
            Ok(match socket.send(data)? {
                Sent::Bytes(n) => n,
                Sent::WouldBlock => 0,
            })
        })
        .map(|(sent, _)| sent)
    }

    /// Sends queued output through the channel's own context until it is all sent
    /// or the socket would block, and acts on a `close_when_done` marker.
    pub(super) fn initiate_send<S: Socket, M>(
        &mut self,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), SocketError> {
        let (_, close_next) =
            self.drain(|data| if ctx.is_open() { ctx.send(data) } else { Ok(0) })?;
        if close_next && ctx.is_open() {
            self.queue.pop_front();
            ctx.close();
        }
        Ok(())
    }

    /// The one drain routine: hands queued output to `send` (which returns how much
    /// it took, 0 when it would block) until `send` takes nothing, the queue is
    /// empty, or a close marker is next. Returns the bytes sent and whether a close
    /// marker is next.
    fn drain(
        &mut self,
        mut send: impl FnMut(&[u8]) -> Result<usize, SocketError>,
    ) -> Result<(usize, bool), SocketError> {
        let mut total = 0;
        while let Some(head) = self.queue.front_mut() {
            let n = match head {
                Entry::Data(len) => {
                    let (a, _) = self.out.as_slices();
                    let n = send(&a[..a.len().min(*len)])?;
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
                        self.stage_end = n.min(PRODUCER_STAGE);
                    }
                    let n = send(&self.stage[self.stage_start..self.stage_end])?;
                    self.stage_start += n;
                    n
                }
                Entry::Close => return Ok((total, true)),
            };
            if n == 0 {
                break;
            }
            total += n;
            self.sent += n as u64;
        }
        Ok((total, false))
    }
}
