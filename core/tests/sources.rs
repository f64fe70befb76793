//! Event sources (a waker, signals, child exits) and interval timers, on the mock:
//! events reach `handle_event` in order and coalesced, none is lost when it is
//! raised while the loop dispatches, intervals do not drift.

mod util;

use asyncore_core::{ExitStatus, Interest, SourceEvent, TimerError};
use util::*;

const MS: std::time::Duration = std::time::Duration::from_millis(1);

fn source<'a>(r: &mut Rx<'a, 4>, log: &'a CallLog, id: u32) -> Token {
    let t = r
        .add(MockSocket::source(id), Recorder::new(log))
        .expect("add the source");
    assert_eq!(state(r, t), Some(State::Source));
    t
}

#[test]
fn events_reach_handle_event_in_order_and_coalesced() {
    let log = CallLog::new();
    let mut r: Rx<4> = reactor();
    let t = source(&mut r, &log, 1);
    let exit = SourceEvent::Exit {
        pid: 42,
        status: ExitStatus::Code(3),
    };
    for e in [
        SourceEvent::Wake,
        SourceEvent::Signal(15),
        SourceEvent::Wake,
        SourceEvent::Signal(2),
        SourceEvent::Signal(15),
        exit,
    ] {
        assert!(sock(&mut r, t).raise(e));
    }
    assert_eq!(interest(&r, 1), None, "not asked before a pass");
    once(&mut r, 1, READ);
    assert_eq!(pass(&mut r), 1);
    assert_eq!(interest(&r, 1), Some(Interest::READABLE));
    assert_eq!(
        log.events_of(t),
        [
            SourceEvent::Wake,
            SourceEvent::Signal(15),
            SourceEvent::Signal(2),
            exit
        ],
        "a wake and a signal raised twice are delivered once"
    );
    assert_eq!(log.calls_of(t), [C::Event; 4]);
    // Nothing pending: a spurious readiness delivers nothing.
    once(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(log.events_of(t).len(), 4);
}

#[test]
fn an_event_raised_while_the_loop_dispatches_is_not_lost() {
    let log = CallLog::new();
    let mut r: Rx<4> = reactor();
    // The source sits in slot 0: its turn in this pass is over when the stream in
    // slot 1 raises the signal (as a signal handler would, mid-pass).
    let src = source(&mut r, &log, 1);
    let stream = connected(&mut r, 2, Recorder::new(&log).on(C::Read, Action::RecvAll));
    sock(&mut r, stream).feed(b"x");
    once(&mut r, 2, READ);
    pass(&mut r);
    assert!(sock(&mut r, src).raise(SourceEvent::Signal(10)));
    assert!(log.events_of(src).is_empty());
    // The source's readiness comes with the next pass: the signal is there.
    once(&mut r, 1, READ);
    pass(&mut r);
    assert_eq!(log.events_of(src), [SourceEvent::Signal(10)]);
}

#[test]
fn a_closing_source_delivers_nothing_more() {
    let log = CallLog::new();
    let mut r: Rx<4> = reactor();
    let t = add(
        &mut r,
        MockSocket::source(1),
        Recorder::new(&log).on(C::Event, Action::Close),
    );
    for n in 1..=3 {
        sock(&mut r, t).raise(SourceEvent::Signal(n));
    }
    once(&mut r, 1, READ | HUP);
    pass(&mut r);
    assert_eq!(
        log.events_of(t),
        [SourceEvent::Signal(1)],
        "closed by the first"
    );
    assert!(r.get(t).is_none());
}

#[test]
fn intervals_fire_every_period_without_drift() {
    let log = CallLog::new();
    let mut r: Rx<4> = reactor();
    connected(&mut r, 1, Recorder::new(&log));
    assert_eq!(
        r.add_interval(std::time::Duration::ZERO),
        Err(TimerError::ZeroPeriod)
    );
    let every = r.add_interval(10 * MS).unwrap();
    let mut fired_at = Vec::new();
    // Passes of 3 ms: the loop wakes at 3, 6, 9, 10 (due), 13, ...
    while r.selector().clock() < 60 * MS {
        r.poll_once(Some(3 * MS)).unwrap();
        while let Some(id) = r.take_fired_timer() {
            assert_eq!(id, every);
            fired_at.push(r.selector().clock());
        }
    }
    assert_eq!(
        fired_at,
        [10, 20, 30, 40, 50, 60].map(|ms| ms * MS),
        "every 10 ms, each due one period after the last"
    );
    // A loop that sleeps through three periods fires once, and keeps the phase.
    r.selector_mut().advance(35 * MS);
    r.poll_once(Some(std::time::Duration::ZERO)).unwrap();
    assert_eq!(r.take_fired_timer(), Some(every));
    assert_eq!(r.take_fired_timer(), None, "once, not three times");
    r.poll_once(Some(20 * MS)).unwrap();
    assert_eq!(
        r.selector().clock(),
        100 * MS,
        "next due at 100 ms, not 105"
    );
    assert_eq!(r.take_fired_timer(), Some(every));
    assert!(r.cancel_timer(every));
    r.poll_once(Some(30 * MS)).unwrap();
    assert_eq!(r.take_fired_timer(), None, "cancelled");
}

/// Embedding: `timeout()` says how long another loop may sleep (the nearest timer or
/// deadline, `None` with nothing timed, zero once something is due), `interests()`
/// what it must watch; a non-blocking pass then does the work.
#[test]
fn an_embedding_loop_learns_how_long_to_sleep_and_what_to_watch() {
    let log = CallLog::new();
    let mut r: Rx<4> = reactor();
    let a = connected(&mut r, 1, Recorder::new(&log));
    connected(&mut r, 2, Recorder::new(&log));
    assert_eq!(r.timeout(), None, "nothing timed: no limit");
    let mut watch = Vec::new();
    r.interests(|fd, i| watch.push((fd, i)));
    assert_eq!(watch, [(1, Interest::READABLE), (2, Interest::READABLE)]);

    // A timer in 30 ms and a deadline on channel `a` in 20 ms: 20 ms first.
    let timer = r.add_timer(30 * MS).unwrap();
    let now = r.selector().clock();
    assert_eq!(r.set_deadline(a, Some(now + 20 * MS)), Ok(true));
    assert_eq!(r.timeout(), Some(20 * MS));
    // The other loop slept 15 ms: 5 ms are left.
    r.selector_mut().advance(15 * MS);
    assert_eq!(r.timeout(), Some(5 * MS));
    // It overslept: the deadline is due, so zero; the pass runs `handle_timeout`.
    r.selector_mut().advance(10 * MS);
    assert_eq!(r.timeout(), Some(std::time::Duration::ZERO));
    assert_eq!(
        r.poll_once(Some(std::time::Duration::ZERO)).unwrap(),
        1,
        "the deadline fired (nothing else was ready)"
    );
    // Only the timer is left, due 5 ms from now.
    assert_eq!(r.timeout(), Some(5 * MS));
    r.selector_mut().advance(5 * MS);
    r.poll_once(Some(std::time::Duration::ZERO)).unwrap();
    assert_eq!(r.take_fired_timer(), Some(timer));
    assert_eq!(r.timeout(), None, "nothing timed any more");

    // A channel that stops wanting to read leaves the list `interests` gives.
    assert!(r.close(a));
    watch.clear();
    r.interests(|fd, i| watch.push((fd, i)));
    assert_eq!(watch, [(2, Interest::READABLE)]);
}
