//! The dispatch path allocates nothing: a counting global allocator watches 10,000
//! passes of `Reactor::poll_once` on the mock while a listener accepts a connection
//! every pass and connections end by EOF, reset or hang-up.
//!
//! The counter is thread-local (const-initialised, no destructor, touched with
//! `try_with`), so allocations by the test harness's other threads do not count.

use asyncore_core::mock::MockIo;
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use asyncore_core::mock::{MockSelector, MockSocket, RecvStep};
use asyncore_core::{
    AfterEof, Ctx, Dispatcher, Error, LogLevel, Reactor, Readiness, Recv, Socket, SocketError,
    Token, errno,
};

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs_during;

#[derive(Default)]
struct Stats {
    accepted: Cell<u32>,
    refused: Cell<u32>,
    bytes: Cell<usize>,
    eofs: Cell<u32>,
    closes: Cell<u32>,
    errors: Cell<u32>,
    last_added: Cell<Option<Token>>,
}

fn bump(c: &Cell<u32>) {
    c.set(c.get() + 1);
}

/// A listener that adds every accepted connection, and connections that read until
/// would-block or EOF.
struct Node<'a> {
    stats: &'a Stats,
}

impl Dispatcher<MockSocket> for Node<'_> {
    type Error = Error;

    fn handle_accepted(
        &mut self,
        ctx: &mut Ctx<'_, MockSocket, Self>,
        socket: MockSocket,
    ) -> Result<(), Error> {
        match ctx.add(socket, Node { stats: self.stats }) {
            Ok(t) => {
                bump(&self.stats.accepted);
                self.stats.last_added.set(Some(t));
            }
            Err(refused) => {
                bump(&self.stats.refused);
                let (mut s, _) = refused.into_inner();
                let _ = s.close();
            }
        }
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 16];
        while let Recv::Data(n @ 1..) = ctx.recv(&mut buf)? {
            self.stats.bytes.set(self.stats.bytes.get() + n);
        }
        Ok(())
    }

    fn handle_eof(&mut self, _: &mut Ctx<'_, MockSocket, Self>) -> Result<AfterEof, Error> {
        bump(&self.stats.eofs);
        Ok(AfterEof::Close)
    }

    fn handle_close(&mut self, _: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        bump(&self.stats.closes);
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>, _: Error) {
        bump(&self.stats.errors);
        ctx.close();
    }

    fn log_info(&mut self, _: Token, _: LogLevel, _: &'static str) {}
}

const PASSES: u32 = 10_000;
const LISTENER: u32 = 1;

#[test]
fn counting_allocator_sees_box_new() {
    let (b, n) = allocs_during(|| black_box(Box::new(black_box(7u64))));
    assert_eq!(*b, 7);
    assert!(n >= 1, "the counter works: Box::new counted {n}");
}

#[test]
fn ten_thousand_passes_with_accepts_and_closes_allocate_nothing() {
    let stats = Stats::default();
    let mut r: Reactor<MockIo, Node<'_>, 8> = Reactor::new(MockSelector::new());
    let l = r
        .add(MockSocket::listener(LISTENER), Node { stats: &stats })
        .unwrap();
    let reset = SocketError::from_errno(errno::ECONNRESET);

    let ((), allocs) = allocs_during(|| {
        for i in 0..PASSES {
            // fd numbers come back, as the kernel's do.
            let id = 100 + i % 50;
            r.get_mut(l).unwrap().socket.push_pending(Ok(id));
            r.selector_mut().set_once(LISTENER, Readiness::READABLE);
            r.poll_once(Some(Duration::ZERO)).unwrap();

            // The connection accepted in this pass ends in the next one.
            let t = stats.last_added.take().expect("accepted this pass");
            let s = r.get_mut(t).unwrap().socket;
            let end = match i % 3 {
                0 => {
                    s.feed(b"ping");
                    s.feed_eof();
                    Readiness::READABLE
                }
                1 => {
                    s.script_recv(RecvStep::Fail(reset));
                    Readiness::READABLE | Readiness::ERROR | Readiness::HANGUP
                }
                _ => Readiness::HANGUP,
            };
            r.selector_mut().set_once(id, end);
        }
    });

    assert_eq!(allocs, 0, "the dispatch path allocated");
    assert_eq!(r.selector().passes(), PASSES);
    assert_eq!(stats.accepted.get(), PASSES);
    assert_eq!(stats.refused.get(), 0);
    assert_eq!(stats.errors.get(), 0);
    // Every connection but the last one ended: one handle_close each.
    assert_eq!(stats.closes.get(), PASSES - 1);
    let eof_ends = (0..PASSES - 1).filter(|i| i % 3 == 0).count();
    assert_eq!(stats.eofs.get() as usize, eof_ends);
    assert_eq!(stats.bytes.get(), 4 * eof_ends);
    assert_eq!(r.len(), 2, "the listener and the last connection");
}

/// A connection with an idle deadline that every read pushes back, and that closes
/// when it passes; the listener also re-arms a one-shot timer each time it fires.
struct Idle;

impl Dispatcher<MockSocket> for Idle {
    type Error = Error;
    fn handle_accepted(
        &mut self,
        ctx: &mut Ctx<'_, MockSocket, Self>,
        s: MockSocket,
    ) -> Result<(), Error> {
        match ctx.add(s, Idle) {
            Ok(t) => {
                let _ = ctx.set_timeout_for(t, Duration::from_millis(30));
            }
            Err(e) => {
                let _ = e.into_inner().0.close();
            }
        }
        Ok(())
    }
    fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 8];
        while let Recv::Data(_) = ctx.recv(&mut buf)? {}
        ctx.set_timeout(Duration::from_millis(30))
            .map_err(|_| Error::Protocol("clock"))?;
        Ok(())
    }
    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        ctx.close();
        Ok(())
    }
}

thread_local! {
    static TIMEOUTS: Cell<u32> = const { Cell::new(0) };
}

fn count_timeouts(_: Token, e: asyncore_core::Trace) {
    if e == asyncore_core::Trace::Call(asyncore_core::Callback::Timeout) {
        TIMEOUTS.with(|t| t.set(t.get() + 1));
    }
}

#[test]
fn timers_and_deadlines_allocate_nothing() {
    let mut r: Reactor<MockIo, Idle, 16, 4> = Reactor::new(MockSelector::new());
    let mut l = MockSocket::listener(0);
    for id in 1..=8 {
        l.push_pending(Ok(id));
    }
    r.add(l, Idle).unwrap();
    let run = |passes: u32, r: &mut Reactor<MockIo, Idle, 16, 4>| {
        let mut timers_fired = 0;
        for i in 0..passes {
            // A new connection every 8 passes, so idle timeouts keep happening.
            if i % 8 == 0 {
                let lt = r.map().tokens().next().unwrap();
                r.get_mut(lt)
                    .unwrap()
                    .socket
                    .push_pending(Ok(1 + (i / 8) % 8));
            }
            // Feed one connection now and then; the others go idle and time out.
            if let Some(c) = r.iter_mut().find(|c| c.socket.id() == 1 + i % 8) {
                c.socket.feed(b"x");
            }
            // Every other pass nothing is ready, so virtual time moves on.
            // The listener is readable every other pass; connections of id 1 now and
            // then (a read pushes their deadline back); all go idle and time out.
            if i % 2 == 0 {
                r.selector_mut().set_once(0, Readiness::READABLE);
            }
            if i % 4 == 1 {
                r.selector_mut().set_once(1, Readiness::READABLE);
            }
            if i % 16 == 0 {
                let _ = r.add_timer(Duration::from_millis(7));
            }
            r.poll_once(Some(Duration::from_millis(10))).unwrap();
            while r.take_fired_timer().is_some() {
                timers_fired += 1;
            }
        }
        timers_fired
    };
    r.set_observer(Some(count_timeouts));
    run(100, &mut r); // warm up
    let before = TIMEOUTS.with(Cell::get);
    let (fired, allocs) = allocs_during(|| run(10_000, &mut r));
    let timeouts = TIMEOUTS.with(Cell::get) - before;
    assert_eq!(allocs, 0, "deadlines and timers allocated");
    assert!(fired > 100, "one-shot timers fired ({fired})");
    assert!(timeouts > 100, "idle deadlines fired ({timeouts})");
    assert!(
        black_box(r.selector().clock()) > Duration::from_secs(10),
        "virtual time went on"
    );
}
