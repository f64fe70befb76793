//! Scripted sockets.

use core::sync::atomic::{AtomicU32, Ordering};

use heapless::{Deque, Vec};

use crate::{Recv, Sent, Socket, SocketError, State, errno};

/// One scripted result of [`MockSocket::recv`], consumed before the inbound data.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RecvStep {
    /// Return would-block once.
    WouldBlock,
    /// Return EOF once.
    Eof,
    /// Fail once.
    Fail(SocketError),
}

/// One scripted result of [`MockSocket::send`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendStep {
    /// Accept at most this many bytes on the next send (a short write).
    Accept(usize),
    /// Return would-block once.
    WouldBlock,
    /// Fail once.
    Fail(SocketError),
}

/// What a test can still see of [`MockSocket`]s after the reactor closed and dropped
/// them: how many `close` calls they received in total.
///
/// Attach one with [`MockSocket::with_probe`] (and, for the sockets a listener
/// accepts, [`MockSocket::set_accept_probe`]). A probe is `Sync` and `const`-built, so a
/// test declares its own as a `static`:
///
/// ```
/// use asyncore_core::{Reactor, mock::*};
///
/// static PROBE: SocketProbe = SocketProbe::new();
/// let log = CallLog::new();
/// let mut reactor: Reactor<MockIo, Recorder<'_>, 4> =
///     Reactor::new(MockSelector::new());
/// reactor.add(MockSocket::connected(1).with_probe(&PROBE), Recorder::new(&log)).unwrap();
/// reactor.close_all().unwrap();
/// assert!(PROBE.is_closed());
/// ```
#[derive(Debug, Default)]
pub struct SocketProbe {
    closes: AtomicU32,
}

impl SocketProbe {
    /// A probe that saw nothing.
    pub const fn new() -> Self {
        SocketProbe {
            closes: AtomicU32::new(0),
        }
    }

    /// How many `close` calls the sockets carrying this probe received (a second close
    /// of the same socket counts too).
    pub fn close_calls(&self) -> u32 {
        self.closes.load(Ordering::Relaxed)
    }

    /// Whether any socket carrying this probe was closed.
    pub fn is_closed(&self) -> bool {
        self.close_calls() > 0
    }

    fn record_close(&self) {
        // Load and store rather than `fetch_add`: targets without atomic
        // read-modify-write (thumbv6m) have these, and mock sockets are used from one
        // thread at a time.
        self.closes
            .store(self.close_calls().wrapping_add(1), Ordering::Relaxed);
    }
}

/// A queued result of `accept`: the new socket's id and its peer-address result, or
/// a failure.
type Pending = Result<(u32, Result<u32, SocketError>), SocketError>;

/// Bytes a mock socket can hold waiting to be read.
pub const INBOUND: usize = 512;
/// Bytes a mock socket records as sent.
pub const OUTBOUND: usize = 1024;

/// A socket whose every result is scripted by the test. Its [`Socket::Source`] is the
/// `u32` id given at creation.
#[derive(Debug)]
pub struct MockSocket {
    id: u32,
    pub(super) state: State,
    peer: Result<u32, SocketError>,
    pub(super) inbound: Deque<u8, INBOUND>,
    eof_when_empty: bool,
    chunk: usize,
    pub(super) recv_script: Deque<RecvStep, 16>,
    pub(super) send_script: Deque<SendStep, 16>,
    pub(super) outbound: Vec<u8, OUTBOUND>,
    pub(super) send_calls: u32,
    pub(super) recv_calls: u32,
    priority: Deque<u8, 8>,
    /// Pending connections: the new socket's id and its peer-address result (an
    /// `Err` makes it start `Open`), or an accept failure.
    pending: Deque<Pending, 16>,
    pub(super) so_error: Option<SocketError>,
    take_error_fails: Option<SocketError>,
    close_result: Option<SocketError>,
    closes: u32,
    write_shut: bool,
    probe: Option<&'static SocketProbe>,
    accept_probe: Option<&'static SocketProbe>,
    /// An event source's pending events, coalesced as the real sources do.
    events: Deque<crate::SourceEvent, 16>,
    /// Datagram boundaries and addresses (see `mock/dgram.rs`).
    pub(super) dgram: super::dgram::Datagrams,
}

impl MockSocket {
    fn with_state(id: u32, state: State) -> Self {
        MockSocket {
            id,
            state,
            peer: Ok(0),
            inbound: Deque::new(),
            eof_when_empty: false,
            chunk: usize::MAX,
            recv_script: Deque::new(),
            send_script: Deque::new(),
            outbound: Vec::new(),
            send_calls: 0,
            recv_calls: 0,
            priority: Deque::new(),
            pending: Deque::new(),
            so_error: None,
            take_error_fails: None,
            close_result: None,
            closes: 0,
            events: Deque::new(),
            write_shut: false,
            probe: None,
            accept_probe: None,
            dgram: super::dgram::Datagrams::new(),
        }
    }

    /// A connected stream.
    pub fn connected(id: u32) -> Self {
        Self::with_state(id, State::Connected)
    }

    /// A stream whose non-blocking connect is in progress; script the outcome with
    /// [`set_so_error`](Self::set_so_error).
    pub fn connecting(id: u32) -> Self {
        Self::with_state(id, State::Connecting)
    }

    /// A listening socket; queue connections with [`push_pending`](Self::push_pending).
    pub fn listener(id: u32) -> Self {
        Self::with_state(id, State::Listening)
    }

    /// An event source (a waker, signals, child exits): raise its events with
    /// [`raise`](Self::raise); the reactor hands them to `handle_event`.
    pub fn source(id: u32) -> Self {
        Self::with_state(id, State::Source)
    }

    /// Makes an event pending on a [`source`](Self::source), coalesced as the real
    /// sources coalesce: a `Wake` or a `Signal(n)` already pending is not added
    /// again; exits queue. Returns `false` when the queue (16 events) is full.
    pub fn raise(&mut self, event: crate::SourceEvent) -> bool {
        use crate::SourceEvent::{Signal, Wake};
        if matches!(event, Wake | Signal(_)) && self.events.iter().any(|e| *e == event) {
            return true;
        }
        self.events.push_back(event).is_ok()
    }

    /// Events raised and not yet taken.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// A socket that is already closed: a reactor refuses it.
    pub fn closed(id: u32) -> Self {
        Self::with_state(id, State::Closed)
    }

    /// A socket that is neither connected nor listening.
    pub fn open(id: u32) -> Self {
        Self::with_state(id, State::Open)
    }

    /// An accepted stream whose peer address query returns `peer`: `Err` of
    /// `ENOTCONN` or `EINVAL` (a peer that already reset) makes it start
    /// [`State::Open`] instead of connected, as the original's constructor does.
    pub fn accepted(id: u32, peer: Result<u32, SocketError>) -> Self {
        let mut s = Self::with_state(id, State::Connected);
        s.peer = peer;
        s
    }

    /// Records this socket's `close` calls in `probe` too, which outlives the socket.
    #[must_use]
    pub fn with_probe(mut self, probe: &'static SocketProbe) -> Self {
        self.probe = Some(probe);
        self
    }

    /// The sockets this listener accepts from now on record their `close` calls in
    /// `probe`.
    pub fn set_accept_probe(&mut self, probe: &'static SocketProbe) {
        self.accept_probe = Some(probe);
    }

    /// Its id (the selector source).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The scripted peer address.
    pub fn peer_addr(&self) -> Result<u32, SocketError> {
        self.peer
    }

    /// Makes `data` readable. Returns how many bytes fit.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let mut n = 0;
        for &b in data {
            if self.inbound.push_back(b).is_err() {
                break;
            }
            n += 1;
        }
        n
    }

    /// Once the fed data is read, report EOF instead of would-block.
    pub fn feed_eof(&mut self) {
        self.eof_when_empty = true;
    }

    /// Each `recv` returns at most `n` bytes (reads arrive in chunks).
    pub fn set_recv_chunk(&mut self, n: usize) {
        self.chunk = n.max(1);
    }

    /// Queues one scripted recv result. Returns `false` if the script is full.
    pub fn script_recv(&mut self, step: RecvStep) -> bool {
        self.recv_script.push_back(step).is_ok()
    }

    /// Queues one scripted send result. Returns `false` if the script is full.
    pub fn script_send(&mut self, step: SendStep) -> bool {
        self.send_script.push_back(step).is_ok()
    }

    /// Makes priority (out-of-band) data readable.
    pub fn feed_priority(&mut self, data: &[u8]) {
        for &b in data {
            let _ = self.priority.push_back(b);
        }
    }

    /// Queues the result of one `accept`: `Ok(id)` gives a connected socket of that
    /// id, `Err(e)` fails once with `e`. Returns `false` if the queue is full.
    pub fn push_pending(&mut self, result: Result<u32, SocketError>) -> bool {
        self.pending.push_back(result.map(|id| (id, Ok(0)))).is_ok()
    }

    /// Queues a connection whose peer reset before it was accepted: the accepted
    /// socket's peer-address query fails with `ENOTCONN`, so it starts
    /// [`State::Open`] (as on Linux). Returns `false` if the queue is full.
    pub fn push_pending_reset(&mut self, id: u32) -> bool {
        let gone = SocketError::from_errno(errno::ENOTCONN);
        self.pending.push_back(Ok((id, Err(gone)))).is_ok()
    }

    /// The pending `SO_ERROR` (taken by the next [`Socket::take_error`]).
    pub fn set_so_error(&mut self, error: Option<SocketError>) {
        self.so_error = error;
    }

    /// The next `take_error` query itself fails with `error`.
    pub fn fail_take_error(&mut self, error: SocketError) {
        self.take_error_fails = Some(error);
    }

    /// The first `close` reports `error` (the socket is closed anyway).
    pub fn fail_close(&mut self, error: SocketError) {
        self.close_result = Some(error);
    }

    /// Everything sent so far.
    pub fn sent(&self) -> &[u8] {
        &self.outbound
    }

    /// Takes what was sent so far into `out` (appended), making room for more: for
    /// streams longer than the socket's outbound record. On a datagram socket the
    /// record of datagram boundaries is cleared too.
    pub fn drain_sent(&mut self, out: &mut impl Extend<u8>) {
        out.extend(self.outbound.iter().copied());
        self.outbound.clear();
        self.dgram.clear_sent();
    }

    /// How many bytes are still waiting to be read.
    pub fn unread(&self) -> usize {
        self.inbound.len()
    }

    /// How many times `send` was called.
    pub fn send_calls(&self) -> u32 {
        self.send_calls
    }

    /// How many times `recv` was called.
    pub fn recv_calls(&self) -> u32 {
        self.recv_calls
    }

    /// How many times `close` was called.
    pub fn close_calls(&self) -> u32 {
        self.closes
    }

    /// Whether it is closed.
    pub fn is_closed(&self) -> bool {
        self.closes > 0
    }

    /// Whether `shutdown_write` was called.
    pub fn is_write_shut(&self) -> bool {
        self.write_shut
    }

    pub(super) fn closed_error() -> SocketError {
        SocketError::from_errno(errno::EBADF)
    }
}

impl Socket for MockSocket {
    type Source = u32;

    fn source(&self) -> u32 {
        // Like a closed fd (-1), a closed mock socket no longer names its source.
        if self.is_closed() { u32::MAX } else { self.id }
    }

    fn initial_state(&mut self) -> State {
        match (self.state, self.peer) {
            (State::Connected, Err(e))
                if matches!(e.raw_os_error(), Some(errno::ENOTCONN | errno::EINVAL)) =>
            {
                State::Open
            }
            (state, _) => state,
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        if self.state == State::Datagram {
            return self.recv_one_datagram(buf);
        }
        if self.is_closed() {
            return Err(Self::closed_error());
        }
        self.recv_calls += 1;
        if let Some(step) = self.recv_script.pop_front() {
            return match step {
                RecvStep::WouldBlock => Ok(Recv::WouldBlock),
                RecvStep::Eof => Ok(Recv::Eof),
                RecvStep::Fail(e) => Err(e),
            };
        }
        if buf.is_empty() {
            return Ok(Recv::Data(0));
        }
        if self.inbound.is_empty() {
            return Ok(if self.eof_when_empty {
                Recv::Eof
            } else {
                Recv::WouldBlock
            });
        }
        let limit = buf.len().min(self.chunk);
        let mut n = 0;
        while n < limit {
            match self.inbound.pop_front() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(Recv::Data(n))
    }

    fn send(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        if self.state == State::Datagram {
            return self.send_one_datagram(buf, None);
        }
        if self.is_closed() {
            return Err(Self::closed_error());
        }
        self.send_calls += 1;
        let mut limit = buf.len();
        if let Some(step) = self.send_script.pop_front() {
            match step {
                SendStep::Accept(n) => limit = limit.min(n),
                SendStep::WouldBlock => return Ok(Sent::WouldBlock),
                SendStep::Fail(e) => return Err(e),
            }
        }
        let room = OUTBOUND - self.outbound.len();
        let n = limit.min(room);
        if n == 0 && !buf.is_empty() {
            return Ok(Sent::WouldBlock);
        }
        // Cannot fail: n <= room.
        let _ = self.outbound.extend_from_slice(&buf[..n]);
        Ok(Sent::Bytes(n))
    }

    fn accept(&mut self) -> Result<Option<Self>, SocketError> {
        match self.pending.pop_front() {
            None => Ok(None),
            Some(Ok((id, peer))) => {
                let mut s = MockSocket::accepted(id, peer);
                s.probe = self.accept_probe;
                Ok(Some(s))
            }
            Some(Err(e)) => Err(e),
        }
    }

    fn take_error(&mut self) -> Result<Option<SocketError>, SocketError> {
        if let Some(e) = self.take_error_fails.take() {
            return Err(e);
        }
        Ok(self.so_error.take())
    }

    fn recv_priority(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        if self.priority.is_empty() {
            return Ok(Recv::WouldBlock);
        }
        let mut n = 0;
        while n < buf.len() {
            match self.priority.pop_front() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        Ok(Recv::Data(n))
    }

    fn next_event(&mut self) -> Option<crate::SourceEvent> {
        if self.is_closed() {
            return None;
        }
        self.events.pop_front()
    }

    fn shutdown_write(&mut self) -> Result<(), SocketError> {
        self.write_shut = true;
        Ok(())
    }

    fn close(&mut self) -> Result<(), SocketError> {
        self.closes += 1;
        if let Some(probe) = self.probe {
            probe.record_close();
        }
        if self.closes > 1 {
            return Ok(());
        }
        match self.close_result.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
