//! Deadlines and one-shot timers on the mock, in virtual time: exact firing times and
//! order.

use asyncore_core::mock::MockIo;
use std::cell::RefCell;
use std::time::Duration;

use asyncore_core::mock::{MockSelector, MockSocket};
use asyncore_core::{Ctx, Dispatcher, Error, Reactor, Readiness, Recv, RunEnd, TimerError, Token};

const MS: Duration = Duration::from_millis(1);

/// Records `(token, now)` for every timeout; optionally re-arms, closes on timeout,
/// or treats reads as activity that pushes an idle deadline back.
struct Timed<'a> {
    log: &'a RefCell<Vec<(Token, Duration)>>,
    rearm: Option<Duration>,
    idle: Option<Duration>,
    close_on_timeout: bool,
}

impl<'a> Timed<'a> {
    fn new(log: &'a RefCell<Vec<(Token, Duration)>>) -> Self {
        Timed {
            log,
            rearm: None,
            idle: None,
            close_on_timeout: false,
        }
    }
}

impl Dispatcher<MockSocket> for Timed<'_> {
    type Error = Error;

    fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 16];
        while let Recv::Data(_) = ctx.recv(&mut buf)? {}
        if let Some(idle) = self.idle {
            ctx.set_timeout(idle)
                .map_err(|_| Error::Protocol("no clock"))?;
        }
        Ok(())
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        assert_eq!(
            ctx.deadline(),
            None,
            "the deadline is cleared before the call"
        );
        self.log
            .borrow_mut()
            .push((ctx.token(), ctx.now().unwrap()));
        if let Some(again) = self.rearm {
            ctx.set_timeout(again).unwrap();
        }
        if self.close_on_timeout {
            ctx.close();
        }
        Ok(())
    }
}

type R<'a, const N: usize = 8> = Reactor<MockIo, Timed<'a>, N>;

fn add<'a, const N: usize>(r: &mut R<'a, N>, id: u32, d: Timed<'a>) -> Token {
    r.add(MockSocket::connected(id), d).unwrap()
}

#[test]
fn deadline_fires_at_its_exact_virtual_time() {
    let log = RefCell::new(Vec::new());
    let mut r: R = Reactor::new(MockSelector::new());
    let t = add(&mut r, 1, Timed::new(&log));
    assert_eq!(r.set_deadline(t, Some(100 * MS)), Ok(true));
    // The pass waits for the sooner of its timeout (1 s) and the deadline.
    assert_eq!(r.poll_once(Some(Duration::from_secs(1))), Ok(1));
    assert_eq!(*log.borrow(), [(t, 100 * MS)]);
    assert_eq!(r.selector().clock(), 100 * MS);
    assert_eq!(r.selector().last_timeout(), Some(Some(100 * MS)));
    // Fired once: the next pass waits its full timeout.
    r.poll_once(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(log.borrow().len(), 1);
    assert_eq!(r.selector().clock(), 1100 * MS);
}

#[test]
fn deadlines_fire_in_time_order() {
    let log = RefCell::new(Vec::new());
    let mut r: R = Reactor::new(MockSelector::new());
    let a = add(&mut r, 1, Timed::new(&log));
    let b = add(&mut r, 2, Timed::new(&log));
    let c = add(&mut r, 3, Timed::new(&log));
    r.set_deadline(a, Some(300 * MS)).unwrap();
    r.set_deadline(b, Some(100 * MS)).unwrap();
    r.set_deadline(c, Some(200 * MS)).unwrap();
    // With no timeout, the loop still wakes for each deadline.
    for _ in 0..3 {
        r.poll_once(None).unwrap();
    }
    assert_eq!(*log.borrow(), [(b, 100 * MS), (c, 200 * MS), (a, 300 * MS)]);
    r.poll_once(Some(MS)).unwrap();
    assert_eq!(log.borrow().len(), 3, "each fired once");
}

#[test]
fn same_deadline_fires_in_one_pass_in_token_order() {
    let log = RefCell::new(Vec::new());
    let mut r: R = Reactor::new(MockSelector::new());
    let a = add(&mut r, 1, Timed::new(&log));
    let b = add(&mut r, 2, Timed::new(&log));
    r.set_deadline(b, Some(50 * MS)).unwrap();
    r.set_deadline(a, Some(50 * MS)).unwrap();
    assert_eq!(r.poll_once(None), Ok(2));
    assert_eq!(*log.borrow(), [(a, 50 * MS), (b, 50 * MS)]);
}

#[test]
fn moved_deadline_fires_once_at_its_new_time_and_cancelled_never() {
    let log = RefCell::new(Vec::new());
    let mut r: R = Reactor::new(MockSelector::new());
    let a = add(&mut r, 1, Timed::new(&log));
    let b = add(&mut r, 2, Timed::new(&log));
    r.set_deadline(a, Some(100 * MS)).unwrap();
    r.set_deadline(a, Some(500 * MS)).unwrap();
    r.set_deadline(b, Some(200 * MS)).unwrap();
    r.set_deadline(b, None).unwrap();
    r.run(Some(Duration::from_secs(1)), Some(3)).unwrap();
    assert_eq!(*log.borrow(), [(a, 500 * MS)]);
}

#[test]
fn deadline_in_the_past_fires_on_the_next_pass() {
    let log = RefCell::new(Vec::new());
    let mut r: R = Reactor::new(MockSelector::new());
    let t = add(&mut r, 1, Timed::new(&log));
    r.selector_mut().advance(Duration::from_secs(10));
    r.set_deadline(t, Some(Duration::from_secs(1))).unwrap();
    assert_eq!(r.poll_once(Some(Duration::from_secs(5))), Ok(1));
    assert_eq!(
        *log.borrow(),
        [(t, Duration::from_secs(10))],
        "no waiting for a past deadline"
    );
    assert_eq!(r.selector().last_timeout(), Some(Some(Duration::ZERO)));
}

#[test]
fn timers_of_a_closed_channel_never_fire() {
    let log = RefCell::new(Vec::new());
    let mut r: R = Reactor::new(MockSelector::new());
    let a = add(&mut r, 1, Timed::new(&log));
    let b = add(&mut r, 2, Timed::new(&log));
    r.set_deadline(a, Some(10 * MS)).unwrap();
    r.set_deadline(b, Some(20 * MS)).unwrap();
    assert!(r.close(a));
    // The slot is reused by a new channel: the old deadline must not reach it.
    let c = add(&mut r, 3, Timed::new(&log));
    assert_eq!(c.index(), a.index());
    r.run(Some(100 * MS), Some(3)).unwrap();
    assert_eq!(*log.borrow(), [(b, 20 * MS)]);
}

#[test]
fn rearming_in_handle_timeout_gives_a_periodic_timer() {
    let log = RefCell::new(Vec::new());
    let mut r: R = Reactor::new(MockSelector::new());
    let mut d = Timed::new(&log);
    d.rearm = Some(30 * MS);
    let t = add(&mut r, 1, d);
    r.set_deadline(t, Some(30 * MS)).unwrap();
    r.run(None, Some(4)).unwrap();
    let times: Vec<Duration> = log.borrow().iter().map(|e| e.1).collect();
    assert_eq!(times, [30 * MS, 60 * MS, 90 * MS, 120 * MS]);
}

#[test]
fn idle_timeout_closes_a_quiet_connection_only() {
    let log = RefCell::new(Vec::new());
    let mut r: R = Reactor::new(MockSelector::new());
    let mk = |log| {
        let mut d = Timed::new(log);
        d.idle = Some(100 * MS);
        d.close_on_timeout = true;
        d
    };
    let quiet = add(&mut r, 1, mk(&log));
    let busy = add(&mut r, 2, mk(&log));
    r.set_deadline(quiet, Some(100 * MS)).unwrap();
    r.set_deadline(busy, Some(100 * MS)).unwrap();
    // The busy one reads something every 60 ms, pushing its deadline back.
    for _ in 0..5 {
        r.get_mut(busy).unwrap().socket.feed(b"x");
        r.selector_mut().set_once(2, Readiness::READABLE);
        r.poll_once(Some(60 * MS)).unwrap();
        r.poll_once(Some(60 * MS)).unwrap();
    }
    assert!(r.get(quiet).is_none(), "the quiet connection timed out");
    assert!(r.get(busy).is_some(), "activity kept the busy one open");
    assert_eq!(log.borrow()[0], (quiet, 100 * MS));
}

#[test]
fn many_moves_overflowing_the_heap_still_fire_correctly() {
    // A map of 2 channels: more than 2 deadline moves overflow the heap, which is
    // then rebuilt from the channels.
    let log = RefCell::new(Vec::new());
    let mut r: R<'_, 2> = Reactor::new(MockSelector::new());
    let a = add(&mut r, 1, Timed::new(&log));
    let b = add(&mut r, 2, Timed::new(&log));
    for i in 1..=50u64 {
        r.set_deadline(a, Some(Duration::from_millis(1000 + i)))
            .unwrap();
        r.set_deadline(b, Some(Duration::from_millis(2000 - i)))
            .unwrap();
    }
    r.run(None, Some(2)).unwrap();
    assert_eq!(*log.borrow(), [(a, 1050 * MS), (b, 1950 * MS)]);
}

#[test]
fn one_shot_timers_end_run_with_their_identity() {
    let log = RefCell::new(Vec::new());
    let mut r: Reactor<MockIo, Timed<'_>, 4, 2> = Reactor::new(MockSelector::new());
    r.add(MockSocket::connected(1), Timed::new(&log)).unwrap();
    let late = r.add_timer(80 * MS).unwrap();
    let early = r.add_timer(50 * MS).unwrap();
    assert_ne!(late, early);
    assert_eq!(
        r.add_timer(MS),
        Err(TimerError::Full),
        "a full store is a typed error"
    );
    assert_eq!(r.run(None, None), Ok(RunEnd::Timer(early)));
    assert_eq!(r.selector().clock(), 50 * MS);
    assert!(r.cancel_timer(late));
    assert!(!r.cancel_timer(late), "cancelled already");
    let third = r.add_timer(10 * MS).unwrap();
    assert_eq!(r.run(None, None), Ok(RunEnd::Timer(third)));
    assert_eq!(r.selector().clock(), 60 * MS);
    assert!(!r.cancel_timer(third), "fired already");
    assert_eq!(
        r.run(Some(MS), Some(5)),
        Ok(RunEnd::Count),
        "nothing else pending"
    );
}

#[test]
fn without_a_clock_timers_are_refused() {
    let log = RefCell::new(Vec::new());
    let mut r: Reactor<MockIo, Timed<'_>, 4> = Reactor::new(MockSelector::without_clock());
    let t = r.add(MockSocket::connected(1), Timed::new(&log)).unwrap();
    assert_eq!(r.set_deadline(t, Some(MS)), Err(TimerError::NoClock));
    assert_eq!(r.add_timer(MS), Err(TimerError::NoClock));
    assert_eq!(r.now(), None);
}
