//! A ready-made echo server: a listener and echoing connections, generic over the
//! socket type, on fixed memory. The `echo_server` example runs it on real sockets;
//! the tests, the simulator and the benchmarks run the very same code.

use crate::{
    Ctx, Dispatcher, Error, InterestMode, ListenerHooks, LogLevel, Recv, Refusal, SendBuffer,
    Socket, SocketError, SourceEvent, Token,
};

/// The listening side: accepts connections up to `max_conns` live connections and
/// closes the extra ones cleanly at once, so the served ones are never disturbed.
#[derive(Debug)]
pub struct EchoListener<S> {
    max_conns: usize,
    others: usize,
    /// The idle timeout as seconds and nanoseconds (an `Option` of plain integers is
    /// all zero bytes when `None`; an `Option<Duration>` is not, which would keep a
    /// static out of `.bss`; and no 64-bit division to rebuild it, unlike nanoseconds
    /// in one `u64`).
    idle: Option<(u64, u32)>,
    accepted: u64,
    refused: u64,
    hooks: ListenerHooks<S>,
}

impl<S> EchoListener<S> {
    /// A listener that serves at most `max_conns` connections at once.
    pub fn new(max_conns: usize) -> Self {
        EchoListener {
            max_conns,
            others: 0,
            idle: None,
            accepted: 0,
            refused: 0,
            hooks: ListenerHooks::default(),
        }
    }

    /// Says that the map holds `others` channels besides the listener and its
    /// connections (an [`Echo::Stop`] source, say), so they do not count against
    /// `max_conns`.
    #[must_use]
    pub fn with_other_channels(mut self, others: usize) -> Self {
        self.others = others;
        self
    }

    /// Sets the logging hooks.
    #[must_use]
    pub fn with_hooks(mut self, hooks: ListenerHooks<S>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Closes connections idle (nothing received) for `idle`. Needs a selector with
    /// a clock.
    #[must_use]
    pub fn with_idle_timeout(mut self, idle: core::time::Duration) -> Self {
        self.idle = Some((idle.as_secs(), idle.subsec_nanos()));
        self
    }

    /// Connections accepted and served so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Connections refused (closed at once): the server was full, or the selector
    /// could not watch them.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

/// One echoing connection with a `B`-byte buffer. It reads only while the buffer has
/// room (back-pressure) and wants write readiness only while it holds data. When the
/// peer finishes sending, it sends what is left and then closes.
#[derive(Debug, Default)]
pub struct EchoConn<const B: usize> {
    out: SendBuffer<B>,
    echoed: u64,
    peer_done: bool,
    /// The idle timeout (see `EchoListener::idle`).
    idle: Option<(u64, u32)>,
}

impl<const B: usize> EchoConn<B> {
    /// A connection with an empty buffer.
    pub const fn new() -> Self {
        EchoConn {
            out: SendBuffer::new(),
            echoed: 0,
            peer_done: false,
            idle: None,
        }
    }

    /// Bytes echoed so far.
    pub fn echoed(&self) -> u64 {
        self.echoed
    }

    /// Bytes read but not yet written back.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Reads into the buffer while it has room, until the socket would block, EOF,
    /// or (with `stop_short`) a read shorter than the room offered. Returns whether
    /// it stopped at such a short read.
    fn read_some<S: Socket, M>(
        &mut self,
        ctx: &mut Ctx<'_, S, M>,
        stop_short: bool,
    ) -> Result<bool, SocketError> {
        while self.out.free() > 0 {
            match self.out.recv_from(ctx)? {
                (Recv::Data(n), room) if n < room && stop_short => return Ok(true),
                // A lent buffer filled up: echo it before reading on, as a loop
                // with one large buffer does. Reading into the small buffer now
                // would mostly hear "would block" (a whole message fits a lent
                // buffer); if more is waiting, the next pass reports it.
                (Recv::Data(_), _) if stop_short && self.out.is_lent() => return Ok(false),
                (Recv::Data(_), _) => {}
                (Recv::Eof | Recv::WouldBlock, _) => break,
            }
        }
        Ok(false)
    }

    fn flush<S: Socket, M>(&mut self, ctx: &mut Ctx<'_, S, M>) -> Result<(), SocketError> {
        self.echoed += self.out.flush(ctx)? as u64;
        if self.peer_done && self.out.is_empty() {
            ctx.close();
        }
        Ok(())
    }
}

/// A channel of an echo server: the listener, a connection, or an event source
/// that stops it.
#[derive(Debug)]
pub enum Echo<S, const B: usize> {
    /// The listening socket.
    Listener(EchoListener<S>),
    /// A served connection.
    Conn(EchoConn<B>),
    /// An event source (a signal source, a waker) whose signals and wakes stop the
    /// server: the first one calls [`Ctx::exit`], which ends
    /// [`Reactor::run`](crate::Reactor::run) with
    /// [`RunEnd::Exit`](crate::RunEnd::Exit) at once; the program then closes the
    /// channels. Child exits are ignored (an echo server has no children).
    Stop,
}

impl<S, const B: usize> Echo<S, B> {
    /// A listener serving at most `max_conns` connections.
    pub fn listener(max_conns: usize) -> Self {
        Echo::Listener(EchoListener::new(max_conns))
    }

    /// The listener, if this is one.
    pub fn as_listener(&self) -> Option<&EchoListener<S>> {
        match self {
            Echo::Listener(l) => Some(l),
            Echo::Conn(_) | Echo::Stop => None,
        }
    }

    /// The connection, if this is one.
    pub fn as_conn(&self) -> Option<&EchoConn<B>> {
        match self {
            Echo::Conn(c) => Some(c),
            Echo::Listener(_) | Echo::Stop => None,
        }
    }
}

impl<S: Socket, const B: usize> Dispatcher<S> for Echo<S, B> {
    type Error = Error;

    fn readable(&self) -> bool {
        match self {
            Echo::Listener(_) | Echo::Stop => true,
            Echo::Conn(c) => !c.peer_done && c.out.free() > 0,
        }
    }

    fn writable(&self) -> bool {
        match self {
            Echo::Listener(_) | Echo::Stop => false,
            Echo::Conn(c) => c.out.wants_write(),
        }
    }

    /// Both answers depend on the channel's own fields only: the reactor asks them
    /// only after something changed the channel, so a pass over thousands of idle
    /// connections costs nothing for them.
    fn interest_mode(&self) -> InterestMode {
        InterestMode::OnChange
    }

    fn handle_accepted(&mut self, ctx: &mut Ctx<'_, S, Self>, socket: S) -> Result<(), Error> {
        let Echo::Listener(l) = self else {
            return Ok(());
        };
        // The listener itself is one of the channels, and so are the others.
        let full = ctx.channel_count() > l.max_conns + l.others;
        let refused = if full {
            Some((socket, Refusal::Full))
        } else {
            let mut conn = EchoConn::new();
            conn.idle = l.idle;
            match ctx.add(socket, Echo::Conn(conn)) {
                Ok(token) => {
                    l.accepted += 1;
                    if let Some((secs, nanos)) = l.idle {
                        let _ = ctx.set_timeout_for(token, core::time::Duration::new(secs, nanos));
                    }
                    if let Some(c) = ctx.channel(token) {
                        (l.hooks.accepted)(token, c.socket);
                    }
                    None
                }
                Err(e) => {
                    let why = Refusal::from(e.kind);
                    Some((e.into_inner().0, why))
                }
            }
        };
        if let Some((mut socket, why)) = refused {
            l.refused += 1;
            (l.hooks.refused)(&socket, why);
            let _ = socket.close();
        }
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        let Echo::Conn(c) = self else { return Ok(()) };
        if let Some((secs, nanos)) = c.idle {
            // Activity: push the idle deadline back.
            let _ = ctx.set_timeout(core::time::Duration::new(secs, nanos));
        }
        // Read straight into the buffer while there is room. A read shorter than the
        // room offered emptied the socket: echo at once rather than spend a system
        // call to hear "would block" (readiness is level-triggered, so anything that
        // arrives later, EOF included, is reported on the next pass).
        let drained = c.read_some(ctx, true)?;
        c.flush(ctx)?;
        if drained && !c.out.is_empty() {
            // The peer is not taking the echo: the loop comes back for the write
            // anyway, so read on now to fill the buffer (and see an EOF) meanwhile.
            c.read_some(ctx, false)?;
        }
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        if let Echo::Conn(c) = self {
            c.flush(ctx)?;
        }
        Ok(())
    }

    fn handle_eof(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<crate::AfterEof, Error> {
        let Echo::Conn(c) = self else {
            return Ok(crate::AfterEof::Close);
        };
        // Half-close: send back what is still buffered, then close.
        c.peer_done = true;
        c.flush(ctx)?;
        Ok(crate::AfterEof::KeepWriting)
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        ctx.close();
        Ok(())
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        // Idle too long.
        ctx.close();
        Ok(())
    }

    fn handle_event(
        &mut self,
        ctx: &mut Ctx<'_, S, Self>,
        event: SourceEvent,
    ) -> Result<(), Error> {
        if let (Echo::Stop, SourceEvent::Signal(_) | SourceEvent::Wake) = (self, event) {
            ctx.exit();
        }
        Ok(())
    }

    fn log_info(&mut self, token: Token, level: LogLevel, message: &'static str) {
        // Unhandled events are expected here (e.g. priority data): log at debug only.
        let _ = (token, level, message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{MockIo, MockSelector, MockSocket, SendStep};
    use crate::{AddErrorKind, Lend, Reactor, Readiness, SourceError, State};

    type R = Reactor<MockIo, Echo<MockSocket, 16>, 4>;

    #[test]
    fn serves_up_to_max_conns_and_refuses_the_rest_cleanly() {
        let mut r: R = Reactor::new(MockSelector::new());
        let mut l = MockSocket::listener(1);
        for id in 10..13 {
            l.push_pending(Ok(id));
        }
        let lt = r.add(l, Echo::listener(2)).unwrap();
        r.selector_mut().set_once(1, Readiness::READABLE);
        r.poll_once(None).unwrap();
        assert_eq!(r.len(), 3, "listener + 2 connections");
        let l = r.get(lt).unwrap().dispatcher.as_listener().unwrap();
        assert_eq!((l.accepted(), l.refused()), (2, 1));
        let conns: std::vec::Vec<_> = r
            .map()
            .iter()
            .filter(|c| c.state == State::Connected)
            .collect();
        assert_eq!(conns.len(), 2);
    }

    std::thread_local! {
        static REFUSALS: core::cell::RefCell<std::vec::Vec<(u32, Refusal)>> =
            const { core::cell::RefCell::new(std::vec::Vec::new()) };
    }

    fn record_refusal(s: &MockSocket, why: Refusal) {
        REFUSALS.with(|r| r.borrow_mut().push((s.id(), why)));
    }

    #[test]
    fn the_refused_hook_tells_full_from_rejected_by_the_selector() {
        let mut r: R = Reactor::new(MockSelector::new());
        // Sources from 20 on are beyond what the selector can watch.
        r.selector_mut().set_source_limit(20);
        let mut l = MockSocket::listener(1);
        for id in [10, 20, 11, 12] {
            l.push_pending(Ok(id));
        }
        let hooks = ListenerHooks {
            accepted: |_, _| {},
            refused: record_refusal,
        };
        let lt = r
            .add(l, Echo::Listener(EchoListener::new(2).with_hooks(hooks)))
            .unwrap();
        r.selector_mut().set_once(1, Readiness::READABLE);
        r.poll_once(None).unwrap();
        let served: std::vec::Vec<u32> = r
            .map()
            .iter()
            .filter(|c| c.state == State::Connected)
            .map(|c| c.socket.id())
            .collect();
        assert_eq!(served, [10, 11]);
        let l = r.get(lt).unwrap().dispatcher.as_listener().unwrap();
        assert_eq!((l.accepted(), l.refused()), (2, 2));
        assert_eq!(
            REFUSALS.with(|r| r.borrow().clone()),
            [
                (20, Refusal::Rejected(SourceError::OutOfRange { limit: 20 })),
                (12, Refusal::Full),
            ]
        );
    }

    #[test]
    fn a_refusal_reads_as_its_reason() {
        use std::string::ToString;
        assert_eq!(Refusal::Full.to_string(), "server full");
        assert_eq!(
            Refusal::from(AddErrorKind::Rejected(SourceError::OutOfRange {
                limit: 1024
            }))
            .to_string(),
            "the selector cannot watch it: source out of range for this selector (limit 1024)"
        );
        assert_eq!(Refusal::from(AddErrorKind::Full), Refusal::Full);
    }

    #[test]
    fn echoes_through_short_writes_and_closes_after_half_close() {
        let mut r: R = Reactor::new(MockSelector::new());
        let mut s = MockSocket::connected(5);
        s.feed(b"0123456789abcdefXYZ");
        s.set_recv_chunk(7);
        s.script_send(SendStep::Accept(3));
        s.script_send(SendStep::WouldBlock);
        let t = r.add(s, Echo::Conn(EchoConn::new())).unwrap();
        r.selector_mut()
            .set_ready(5, Readiness::READABLE | Readiness::WRITABLE);
        r.run(None, Some(10)).unwrap();
        let c = r.get_mut(t).unwrap();
        assert_eq!(c.socket.sent(), b"0123456789abcdefXYZ");
        // The peer finishes sending with data still in flight: it is echoed, then
        // the channel closes.
        c.socket.feed(b"tail");
        c.socket.feed_eof();
        c.socket.script_send(SendStep::WouldBlock);
        c.socket.script_send(SendStep::WouldBlock);
        let mut passes = 0;
        let mut saw_half_closed = false;
        while r.get(t).is_some() && passes < 20 {
            if passes == 1 {
                let c = r.get(t).unwrap();
                assert_eq!(
                    c.state,
                    State::ReadClosed,
                    "half-closed while data is pending"
                );
                assert_eq!(c.dispatcher.as_conn().unwrap().pending(), 4);
                saw_half_closed = true;
            }
            r.poll_once(None).unwrap();
            passes += 1;
        }
        assert!(saw_half_closed);
        assert!(r.get(t).is_none(), "closed once everything was echoed");
    }

    #[test]
    fn everything_sent_comes_back_byte_exact() {
        let mut r: R = Reactor::new(MockSelector::new());
        let mut s = MockSocket::connected(5);
        s.feed(b"the quick brown fox jumps");
        s.set_recv_chunk(5);
        s.script_send(SendStep::Accept(2));
        let t = r.add(s, Echo::Conn(EchoConn::new())).unwrap();
        r.selector_mut()
            .set_ready(5, Readiness::READABLE | Readiness::WRITABLE);
        r.run(None, Some(10)).unwrap();
        let c = r.get(t).unwrap();
        assert_eq!(c.socket.sent(), b"the quick brown fox jumps");
        assert_eq!(c.dispatcher.as_conn().unwrap().echoed(), 25);
    }

    #[test]
    fn idle_connections_are_closed_after_the_idle_timeout() {
        let mut r: R = Reactor::new(MockSelector::new());
        let mut l = MockSocket::listener(1);
        l.push_pending(Ok(10));
        l.push_pending(Ok(11));
        let idle = core::time::Duration::from_millis(100);
        r.add(
            l,
            Echo::Listener(EchoListener::new(3).with_idle_timeout(idle)),
        )
        .unwrap();
        r.selector_mut().set_once(1, Readiness::READABLE);
        r.poll_once(Some(core::time::Duration::ZERO)).unwrap();
        assert_eq!(r.len(), 3);
        let busy = r.map().iter().find(|c| c.socket.id() == 11).unwrap().token;
        // The busy connection sends something every 60 ms; the quiet one never.
        for _ in 0..4 {
            r.get_mut(busy).unwrap().socket.feed(b"x");
            r.selector_mut().set_once(11, Readiness::READABLE);
            r.poll_once(Some(core::time::Duration::from_millis(60)))
                .unwrap();
            r.poll_once(Some(core::time::Duration::from_millis(60)))
                .unwrap();
        }
        let ids: std::vec::Vec<u32> = r.map().iter().map(|c| c.socket.id()).collect();
        assert_eq!(
            ids,
            [1, 11],
            "the quiet connection timed out, the busy one stays"
        );
    }

    /// Feeds `len` bytes of a pattern through an echo connection in pieces, with the
    /// socket taking short writes and would-blocks in turn, and returns what came
    /// back. `POOL` buffers of 4 KiB are lent by the reactor (0: none).
    fn stream<const POOL: usize>(len: usize) -> std::vec::Vec<u8> {
        type Conn = Echo<MockSocket, 16>;
        let mut r: Reactor<MockIo, Conn, 2, 4, crate::BufferPool<POOL, 4096>> =
            Reactor::new(MockSelector::new());
        let t = r
            .add(MockSocket::connected(5), Echo::Conn(EchoConn::new()))
            .unwrap();
        let byte = |i: usize| (i * 7 + i / 251) as u8;
        let (mut fed, mut back) = (0, std::vec::Vec::with_capacity(len));
        let steps = [
            SendStep::Accept(1),
            SendStep::Accept(3),
            SendStep::WouldBlock,
            SendStep::Accept(1000),
            SendStep::Accept(17),
        ];
        let mut round = 0usize;
        while back.len() < len {
            round += 1;
            assert!(round < 10 * len + 1000, "stuck at {} of {len}", back.len());
            let c = r.get_mut(t).unwrap();
            let chunk: std::vec::Vec<u8> = (fed..len.min(fed + 512)).map(byte).collect();
            fed += c.socket.feed(&chunk);
            c.socket.set_recv_chunk(1 + round % 700);
            c.socket.script_send(steps[round % steps.len()]);
            r.selector_mut()
                .set_ready(5, Readiness::READABLE | Readiness::WRITABLE);
            r.poll_once(None).unwrap();
            r.get_mut(t).unwrap().socket.drain_sent(&mut back);
            assert!(r.pool().lent() <= POOL);
        }
        assert!(
            back.iter().enumerate().all(|(i, &b)| b == byte(i)),
            "{len} bytes"
        );
        back
    }

    #[test]
    fn streams_of_every_size_come_back_byte_exact_with_and_without_a_pool() {
        for len in [
            1,
            2,
            15,
            16,
            17,
            511,
            512,
            513,
            4095,
            4096,
            4097,
            65_536,
            1 << 20,
        ] {
            assert_eq!(stream::<1>(len).len(), len);
            assert_eq!(stream::<0>(len).len(), len);
        }
    }

    #[test]
    fn a_large_read_goes_into_a_lent_buffer_in_one_recv_and_the_lease_comes_back() {
        type Conn = Echo<MockSocket, 16>;
        let mut r: Reactor<MockIo, Conn, 2, 4, crate::BufferPool<1, 4096>> =
            Reactor::new(MockSelector::new());
        let t = r
            .add(MockSocket::connected(5), Echo::Conn(EchoConn::new()))
            .unwrap();
        let c = r.get_mut(t).unwrap();
        assert_eq!(c.socket.feed(&[7u8; 500]), 500);
        r.selector_mut().set_once(5, Readiness::READABLE);
        r.poll_once(None).unwrap();
        let c = r.get(t).unwrap();
        assert_eq!(
            c.socket.sent(),
            &[7u8; 500][..],
            "one pass: all 500 bytes back"
        );
        assert_eq!(c.socket.recv_calls(), 1, "one read, not 500 / 16");
        assert_eq!((r.pool().lent(), r.pool().peak()), (0, 1), "given back");
        // A peer that stops reading: the lease stays with the connection while it
        // holds unsent bytes, the echo buffer fills, then reading stops.
        let c = r.get_mut(t).unwrap();
        c.socket.feed(&[1u8; 300]);
        c.socket.script_send(SendStep::Accept(10));
        for _ in 0..15 {
            c.socket.script_send(SendStep::WouldBlock);
        }
        r.selector_mut()
            .set_ready(5, Readiness::READABLE | Readiness::WRITABLE);
        r.poll_once(None).unwrap();
        assert_eq!(r.pool().lent(), 1, "held while its bytes wait");
        let c = r.get_mut(t).unwrap();
        c.socket.feed(&[2u8; 100]);
        for _ in 0..4 {
            r.poll_once(None).unwrap();
        }
        let conn = r.get(t).unwrap().dispatcher.as_conn().unwrap();
        assert_eq!(
            conn.pending(),
            290 + 16,
            "the lease's rest and a full echo buffer"
        );
        assert!(!<Conn as Dispatcher<MockSocket>>::readable(
            r.get(t).unwrap().dispatcher
        ));
        // Closing the connection gives its lease back.
        r.close(t);
        assert_eq!(r.pool().lent(), 0);
    }

    /// A message that fills the lent buffer exactly: one read, one send, and no
    /// second read to hear "would block" (as a loop with one 64 KiB buffer does);
    /// what follows comes on the next pass, nothing lost.
    #[test]
    fn a_full_lent_buffer_is_echoed_before_reading_on() {
        type Conn = Echo<MockSocket, 16>;
        let mut r: Reactor<MockIo, Conn, 2, 4, crate::BufferPool<1, 512>> =
            Reactor::new(MockSelector::new());
        let t = r
            .add(MockSocket::connected(5), Echo::Conn(EchoConn::new()))
            .unwrap();
        let c = r.get_mut(t).unwrap();
        let message: std::vec::Vec<u8> = (0..512u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(
            c.socket.feed(&message),
            512,
            "the mock's receive buffer holds 512"
        );
        r.selector_mut().set_ready(5, Readiness::READABLE);
        r.poll_once(None).unwrap();
        let c = r.get(t).unwrap();
        assert_eq!(c.socket.sent(), &message[..], "the whole message back");
        assert_eq!(
            c.socket.recv_calls(),
            1,
            "one read, no read that would block"
        );
        assert_eq!(c.socket.send_calls(), 1, "one send");
        assert_eq!(r.pool().lent(), 0, "given back");
        // More arrives (or was waiting): the next pass takes it.
        let c = r.get_mut(t).unwrap();
        c.socket.feed(&[9u8; 10]);
        r.poll_once(None).unwrap();
        let c = r.get(t).unwrap();
        assert_eq!(&c.socket.sent()[512..], &[9u8; 10][..]);
        assert_eq!(c.socket.recv_calls(), 2);
    }

    #[test]
    fn a_stop_source_ends_run_on_a_signal_or_a_wake_and_ignores_exits() {
        use crate::{ExitStatus, RunEnd};
        let mut r: R = Reactor::new(MockSelector::new());
        r.add(MockSocket::listener(1), Echo::listener(2)).unwrap();
        let stop = r.add(MockSocket::source(2), Echo::Stop).unwrap();
        // An exit is not a stop.
        let exit = SourceEvent::Exit {
            pid: 7,
            status: ExitStatus::Code(0),
        };
        assert!(r.get_mut(stop).unwrap().socket.raise(exit));
        r.selector_mut().set_once(2, Readiness::READABLE);
        assert_eq!(r.run(None, Some(2)).unwrap(), RunEnd::Count);
        for event in [SourceEvent::Signal(15), SourceEvent::Wake] {
            assert!(r.get_mut(stop).unwrap().socket.raise(event));
            r.selector_mut().set_once(2, Readiness::READABLE);
            assert_eq!(r.run(None, Some(10)).unwrap(), RunEnd::Exit, "{event:?}");
            assert_eq!(r.len(), 2, "exit leaves the channels to the program");
        }
    }
}
