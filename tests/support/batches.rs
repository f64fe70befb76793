//! A wait that finds more ready sources than the caller's buffer holds: `select`
//! pushes what fits, `select_more` the rest, batch after batch, each source once per
//! wait; a source deregistered, narrowed or registered between the batches reports
//! nothing from that wait. Generic over a selector of raw fds: the `poll(2)` and
//! `epoll(7)` selectors run these through `asyncore-backend-tests`, the `select(2)`
//! one from `backend-std`'s tests.
#![allow(dead_code)]

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use asyncore_core::{Event, Events, Interest, Readiness, Selector, Token};

/// Long enough never to be hit on a healthy machine; only bounds a broken test.
const PATIENCE: Option<Duration> = Some(Duration::from_secs(10));

/// How many sources are ready, and how many events the caller's buffer holds.
const READY: usize = 10;
const ROOM: usize = 3;

/// The generation of the tokens registered first.
const GEN: u32 = 7;

/// `n` Unix stream pairs, each with a byte waiting at its first end.
fn readable_pairs(n: usize) -> Vec<(UnixStream, UnixStream)> {
    (0..n)
        .map(|_| {
            let (a, mut b) = UnixStream::pair().expect("socketpair");
            b.write_all(b"!").expect("write");
            (a, b)
        })
        .collect()
}

/// The token of slot `slot` as first registered.
fn token(slot: usize) -> Token {
    Token::new(slot as u32, GEN)
}

/// Registers the first end of each pair, for reading, in slots `0..`.
fn register_all<S: Selector<Source = RawFd>>(sel: &mut S, pairs: &[(UnixStream, UnixStream)]) {
    for (slot, (a, _)) in pairs.iter().enumerate() {
        sel.register(token(slot), a.as_raw_fd(), Interest::READABLE)
            .expect("register");
    }
}

/// One wait into a buffer of [`ROOM`] events: what it pushed (a full buffer).
fn first_batch<S: Selector>(sel: &mut S) -> Vec<Event> {
    let mut buf = [Event::EMPTY; ROOM];
    let mut events = Events::new(&mut buf);
    let n = sel.select(&mut events, PATIENCE).expect("select");
    assert_eq!(n, events.len(), "every pushed event is counted");
    assert!(events.is_full(), "more are ready than fit: {events:?}");
    events.as_slice().to_vec()
}

/// `select_more` into a buffer of [`ROOM`] events until it pushes nothing: all it
/// pushed. Every batch but the last is full.
fn the_rest<S: Selector>(sel: &mut S) -> Vec<Event> {
    let mut all = Vec::new();
    let mut buf = [Event::EMPTY; ROOM];
    loop {
        let mut events = Events::new(&mut buf);
        let n = sel.select_more(&mut events);
        assert_eq!(n, events.len(), "every pushed event is counted");
        all.extend_from_slice(events.as_slice());
        if !events.is_full() {
            break;
        }
    }
    let mut buf = [Event::EMPTY; ROOM];
    assert_eq!(
        sel.select_more(&mut Events::new(&mut buf)),
        0,
        "nothing is left, however often asked"
    );
    all
}

/// The slots of `events`, sorted, each with its readiness.
fn by_slot(events: &[Event]) -> Vec<(u32, Readiness)> {
    let mut v: Vec<_> = events.iter().map(|e| (e.slot(), e.readiness())).collect();
    v.sort_unstable_by_key(|&(slot, _)| slot);
    v
}

/// `READY` (10) readable sources and a buffer of `ROOM` (3): `select` fills it, then
/// `select_more` hands out the rest of the same wait, each source exactly once; a
/// new `select` starts over (level-triggered: all again), and forgets what the last
/// one left.
pub fn batches_report_each_ready_source_once<S: Selector<Source = RawFd>>(mut sel: S) {
    let pairs = readable_pairs(READY);
    register_all(&mut sel, &pairs);
    // And one with nothing to read.
    let (idle, _idle_peer) = UnixStream::pair().expect("socketpair");
    sel.register(token(READY), idle.as_raw_fd(), Interest::READABLE)
        .expect("register");
    let all: Vec<(u32, Readiness)> = (0..READY as u32)
        .map(|slot| (slot, Readiness::READABLE))
        .collect();

    for round in 0..2 {
        let mut seen = first_batch(&mut sel);
        seen.extend(the_rest(&mut sel));
        assert_eq!(seen.len(), READY, "round {round}: {seen:?}");
        assert_eq!(by_slot(&seen), all, "round {round}");
    }

    // A wait whose rest is never asked for: the next wait starts over.
    first_batch(&mut sel);
    let mut seen = first_batch(&mut sel);
    seen.extend(the_rest(&mut sel));
    assert_eq!(
        by_slot(&seen),
        all,
        "the last wait's leftovers are forgotten"
    );
}

/// Between `select` and `select_more`, a source not reported yet is deregistered,
/// one is narrowed to write interest, one is deregistered and its slot registered
/// again for another fd, and a new source is registered in a new slot: none reports
/// anything from the wait; every other source is reported once. The next wait sees
/// the registrations as they are.
pub fn changes_between_batches_report_nothing_from_the_wait<S: Selector<Source = RawFd>>(
    mut sel: S,
) {
    let pairs = readable_pairs(READY);
    register_all(&mut sel, &pairs);
    let first = first_batch(&mut sel);
    let later: Vec<usize> = (0..READY)
        .filter(|&slot| first.iter().all(|e| e.slot() as usize != slot))
        .collect();
    assert_eq!(later.len(), READY - ROOM);
    let fd = |slot: usize| pairs[slot].0.as_raw_fd();

    let gone = later[0];
    sel.deregister(token(gone), fd(gone), Interest::READABLE);
    let narrowed = later[1];
    sel.reregister(
        token(narrowed),
        fd(narrowed),
        Interest::READABLE,
        Interest::WRITABLE,
    )
    .expect("reregister");
    // The slot changes hands: a new channel there, with a writable (and readable)
    // fd of its own.
    let moved = later[2];
    sel.deregister(token(moved), fd(moved), Interest::READABLE);
    let newcomer = readable_pairs(2);
    let moved_token = Token::new(moved as u32, GEN + 1);
    sel.register(moved_token, newcomer[0].0.as_raw_fd(), Interest::BOTH)
        .expect("register");
    // And a new slot, readable too.
    let fresh = Token::new(READY as u32, 0);
    sel.register(fresh, newcomer[1].0.as_raw_fd(), Interest::READABLE)
        .expect("register");

    let rest = the_rest(&mut sel);
    let expected: Vec<(u32, Readiness)> = later[3..]
        .iter()
        .map(|&slot| (slot as u32, Readiness::READABLE))
        .collect();
    assert_eq!(by_slot(&rest), expected, "{rest:?}");

    // A new wait: the registrations as they are now.
    let mut buf = [Event::EMPTY; 2 * READY];
    let mut events = Events::new(&mut buf);
    sel.select(&mut events, PATIENCE).expect("select");
    let now = by_slot(events.as_slice());
    let of = |slot: usize| now.iter().find(|e| e.0 as usize == slot).map(|e| e.1);
    assert_eq!(of(gone), None, "deregistered");
    assert_eq!(of(narrowed), Some(Readiness::WRITABLE));
    assert_eq!(of(moved), Some(Readiness::READABLE | Readiness::WRITABLE));
    assert_eq!(of(fresh.index()), Some(Readiness::READABLE));
    assert_eq!(now.len(), READY, "{now:?}");
}
