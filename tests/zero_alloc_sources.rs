//! Zero heap allocations in steady state with a waker and the signal source
//! registered, on `select(2)`, `poll(2)` and `epoll(7)`: after a warm-up, 2,000 rounds of a
//! wake and a real SIGUSR1 (sent to this thread, so its handler runs here and is
//! counted too), each waited for with `poll_once(None)` and delivered to
//! `handle_event`, allocate nothing.
//!
//! Its own test binary (the signal source is process-wide); the counter is per
//! thread, so the harness's threads do not count.

use std::time::Duration;

use asyncore::{AnySelector, Backend, Ctx, Dispatcher, Error, SourceEvent, StdReactor, StdSocket};
use nix::libc::SIGUSR1;
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::Signal;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs_during;

const WARM_UP: usize = 50;
const ROUNDS: usize = 2_000;
/// Passes one round may take before the test fails (it needs one or two).
const MAX_PASSES: usize = 1_000;

/// Counts what the sources deliver.
#[derive(Default)]
struct Count {
    wakes: u64,
    signals: u64,
}

impl Dispatcher<StdSocket> for Count {
    type Error = Error;
    fn handle_event(
        &mut self,
        _: &mut Ctx<'_, StdSocket, Self>,
        event: SourceEvent,
    ) -> Result<(), Error> {
        match event {
            SourceEvent::Wake => self.wakes += 1,
            SourceEvent::Signal(SIGUSR1) => self.signals += 1,
            other => panic!("unexpected {other:?}"),
        }
        Ok(())
    }
}

type R = StdReactor<Count, 8>;

fn total(r: &R) -> (u64, u64) {
    r.map().iter().fold((0, 0), |(w, s), c| {
        (w + c.dispatcher.wakes, s + c.dispatcher.signals)
    })
}

/// One wake and one SIGUSR1, waited for until both are delivered.
fn round(r: &mut R, waker: &asyncore::Waker) {
    let (wakes, signals) = total(r);
    waker.wake();
    pthread_kill(pthread_self(), Signal::SIGUSR1).expect("pthread_kill");
    for _ in 0..MAX_PASSES {
        // A bounded wait only so a lost event fails instead of hanging; the events
        // are pending before the wait starts, so it returns at once.
        r.poll_once(Some(Duration::from_secs(60)))
            .expect("poll_once");
        if total(r) == (wakes + 1, signals + 1) {
            return;
        }
    }
    panic!("a round's wake or signal was not delivered: {:?}", total(r));
}

fn steady_state(backend: Backend) {
    let mut r: R = StdReactor::new(AnySelector::new(backend));
    let (channel, waker) = StdSocket::waker().unwrap();
    r.add(channel, Count::default()).unwrap();
    let signals = StdSocket::signals(&[SIGUSR1]).unwrap();
    r.add(signals, Count::default()).unwrap();
    for _ in 0..WARM_UP {
        round(&mut r, &waker);
    }
    let ((), allocations) = allocs_during(|| {
        for _ in 0..ROUNDS {
            round(&mut r, &waker);
        }
    });
    assert_eq!(
        allocations, 0,
        "{backend}: {allocations} allocations in {ROUNDS} rounds of a wake and a signal"
    );
    assert_eq!(
        total(&r),
        ((WARM_UP + ROUNDS) as u64, (WARM_UP + ROUNDS) as u64)
    );
    r.close_all().unwrap();
}

/// One test for every backend: the signal source is one per process.
#[test]
fn no_allocation_with_a_waker_and_signals_on_select_poll_and_epoll() {
    steady_state(Backend::Select);
    steady_state(Backend::Poll);
    steady_state(Backend::Epoll);
}
