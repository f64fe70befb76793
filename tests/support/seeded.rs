//! The harness of the seeded simulation tests (`tests/sim.rs`, `tests/sim_dgram.rs`,
//! each including this file with `#[path]`): a fresh event checker for every run, how
//! many seeds a batch runs, and a [`Scenario`]'s failure message and replay, which
//! print every option a seed derives and the command that replays exactly that run.
#![allow(dead_code)] // each test binary uses its own subset

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Debug;

use asyncore::sim::TraceChecker;
use asyncore::{Token, Trace};

thread_local! {
    static CHECK: RefCell<TraceChecker> = const { RefCell::new(TraceChecker::new()) };
}

/// The observer of every run: feeds the event checker.
pub fn observe(token: Token, event: Trace) {
    CHECK.with(|c| c.borrow_mut().on_trace(token, event));
}

/// Runs one scenario (observed by [`observe`]) with a fresh event checker: the
/// scenario's own checks, then the checker's (no callback after close, one close per
/// channel, no stale token), then `left`, given the report and the channels live at
/// the end.
pub fn checked<R, E: Debug>(
    run: impl FnOnce() -> Result<R, E>,
    left: impl FnOnce(&R, usize) -> Result<(), String>,
) -> Result<R, String> {
    CHECK.with(|c| *c.borrow_mut() = TraceChecker::new());
    let report = run().map_err(|e| format!("{e:?}"))?;
    let (violation, live) = CHECK.with(|c| {
        let c = c.borrow();
        (c.violation(), c.live())
    });
    if let Some(v) = violation {
        return Err(format!("event checker: {v:?}"));
    }
    left(&report, live)?;
    Ok(report)
}

/// How many seeds a batch runs (`ASYNCORE_SEEDS` overrides, e.g. for a longer soak).
pub fn seed_count() -> u64 {
    std::env::var("ASYNCORE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

/// A seeded scenario, as its failures and replays name it.
pub struct Scenario {
    /// What a seed is called in messages: `seed`, `chat seed`, ...
    pub label: &'static str,
    /// The test binary and the test that replays a seed: `sim replay`.
    pub replay: &'static str,
    /// Every option a seed derives.
    pub describe: fn(u64) -> String,
}

impl Scenario {
    /// Fails the test for `seed`: why, every option, and how to replay it.
    pub fn fail(&self, seed: u64, why: &str) -> ! {
        panic!(
            "{} {seed} failed: {why}\n  options: {}\n  replay: ASYNCORE_SEED={seed} cargo test -p asyncore --test {} -- --nocapture",
            self.label,
            (self.describe)(seed),
            self.replay
        );
    }

    /// Replays `ASYNCORE_SEED` (or seed 0) with `run`, printing every option first
    /// and the report after.
    pub fn replay<R: Debug>(&self, run: impl FnOnce(u64) -> Result<R, String>) {
        let seed = std::env::var("ASYNCORE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        println!(
            "replaying {} {seed}\n  options: {}",
            self.label,
            (self.describe)(seed)
        );
        match run(seed) {
            Ok(report) => println!("  {report:?}"),
            Err(why) => self.fail(seed, &why),
        }
    }

    /// Runs each of `seeds` twice with `run`: the two reports are equal.
    pub fn same_twice<R: PartialEq + Debug>(
        &self,
        seeds: &[u64],
        run: impl Fn(u64) -> Result<R, String>,
    ) {
        for &seed in seeds {
            let a = run(seed).unwrap_or_else(|why| self.fail(seed, &why));
            let b = run(seed).unwrap_or_else(|why| self.fail(seed, &why));
            assert_eq!(a, b, "{} {seed}: two runs differ", self.label);
        }
    }

    /// Different seeds give different runs (a constant trace hash would pass
    /// [`same_twice`](Self::same_twice)): over seeds 0 to 19, `hash` of the report
    /// takes more than 15 values.
    pub fn hashes_vary<R>(&self, run: impl Fn(u64) -> Result<R, String>, hash: fn(&R) -> u64) {
        let hashes: HashSet<u64> = (0..20)
            .map(|s| hash(&run(s).unwrap_or_else(|why| self.fail(s, &why))))
            .collect();
        assert!(
            hashes.len() > 15,
            "trace hashes barely vary: {}",
            hashes.len()
        );
    }
}
