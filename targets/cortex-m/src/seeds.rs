//! What both builds run and print: with the `echo` feature the simulator's echo
//! scenario, with the `chat` feature its chat scenario, for seeds
//! [`FIRST_SEED`]`..`[`FIRST_SEED`]` + `[`SEEDS`]. Each run is checked by the scenario
//! itself and by an [`TraceChecker`] (no callback after close, one close per channel,
//! no stale token, only the listener left at the end), as `tests/sim.rs` checks it,
//! and prints one line: the seed, the trace hash and the report, or why it failed.
//! The firmware and the host print these lines alike, so a `diff` of the two outputs
//! shows any difference between the Cortex-M3 and the host.
//!
//! The firmware runs each scenario on one simulated network in a `static`
//! ([`ECHO_NET`], [`CHAT_NET`]: all zero bytes, so in `.bss`), restarted for every
//! seed ([`SimNet::restart`](asyncore_core::sim::SimNet::restart)) and lent to
//! `run_echo_on` / `run_chat_on`; only the reactor and the scenario's own state are
//! on the stack. The host calls `run_echo` / `run_chat`, which build a new network
//! on the stack for every run: the diff shows a restarted network on the Cortex-M3
//! running each seed as a new one on the host does.

use core::cell::RefCell;
use core::fmt::{self, Debug, Write};

use asyncore_core::Observer;
#[cfg(feature = "chat")]
use asyncore_core::sim::chat_scenario::{ChatFailure, ChatParams, ChatReport};
#[cfg(feature = "echo")]
use asyncore_core::sim::scenario::{EchoFailure, EchoParams, EchoReport};
use asyncore_core::sim::{SimConfig, TraceChecker};
use critical_section::Mutex;

/// The first seed run.
pub const FIRST_SEED: u64 = 0;
/// How many seeds each scenario runs.
pub const SEEDS: u64 = 500;

/// Slots the checker tracks: as many as the larger scenario's reactor has (128 B;
/// the default 256 would take 2 KiB of the board's 64 KiB, which the echo image's
/// stack needs at opt-level 0).
const TRACKED: usize = {
    let (echo, chat) = (
        asyncore_core::sim::scenario::MAP,
        asyncore_core::sim::chat_scenario::CHAT_MAP,
    );
    if echo > chat { echo } else { chat }
};

static CHECK: Mutex<RefCell<TraceChecker<TRACKED>>> = Mutex::new(RefCell::new(TraceChecker::new()));

/// Hands every reactor trace to [`CHECK`]. A closure coerced to the core's observer
/// type, so the trace type is never named here.
const OBSERVE: Observer = |token, trace| {
    critical_section::with(|cs| CHECK.borrow_ref_mut(cs).on_trace(token, trace));
};

/// Passed and failed runs.
#[derive(Copy, Clone, Debug, Default)]
pub struct Tally {
    /// Runs that passed every check.
    pub passed: u64,
    /// Runs that failed one, or whose line could not be printed.
    pub failed: u64,
}

impl Tally {
    fn count(&mut self, passed: Result<bool, fmt::Error>) {
        match passed {
            Ok(true) => self.passed += 1,
            _ => self.failed += 1,
        }
    }
}

/// Runs `scenario` with a fresh trace checker and prints `name seed=N `, then either
/// `report(..)`'s text or `FAILED` and why. Returns whether the run passed.
fn checked<R, E: Debug>(
    out: &mut impl Write,
    name: &str,
    seed: u64,
    scenario: impl FnOnce() -> Result<R, E>,
    report: impl FnOnce(&mut dyn Write, &R) -> fmt::Result,
) -> Result<bool, fmt::Error> {
    critical_section::with(|cs| CHECK.borrow_ref_mut(cs).clear());
    let result = scenario();
    let (violation, live) = critical_section::with(|cs| {
        let check = CHECK.borrow_ref(cs);
        (check.violation(), check.live())
    });
    write!(out, "{name} seed={seed} ")?;
    let passed = match (result, violation) {
        (Err(failure), _) => {
            write!(out, "FAILED {failure:?}")?;
            false
        }
        (Ok(_), Some(v)) => {
            write!(out, "FAILED trace checker: {v:?}")?;
            false
        }
        (Ok(_), None) if live != 1 => {
            write!(out, "FAILED {live} channels live at the end, expected 1")?;
            false
        }
        (Ok(r), None) => {
            report(out, &r)?;
            true
        }
    };
    writeln!(out)?;
    Ok(passed)
}

/// The echo scenario's network on the firmware, restarted for every seed.
#[cfg(all(feature = "echo", target_os = "none"))]
pub static ECHO_NET: Mutex<asyncore_core::sim::scenario::EchoNet> =
    Mutex::new(asyncore_core::sim::scenario::EchoNet::empty());

/// The chat scenario's network on the firmware, restarted for every seed.
#[cfg(all(feature = "chat", target_os = "none"))]
pub static CHAT_NET: Mutex<asyncore_core::sim::chat_scenario::ChatNet> =
    Mutex::new(asyncore_core::sim::chat_scenario::ChatNet::empty());

/// One echo run: on [`ECHO_NET`] on the firmware (inside one critical section for
/// the whole run, which masks interrupts: the firmware takes none), on a new network
/// on the host.
#[cfg(feature = "echo")]
fn run_echo(seed: u64) -> Result<EchoReport, EchoFailure> {
    let (cfg, params) = (SimConfig::from_seed(seed), EchoParams::from_seed(seed));
    #[cfg(target_os = "none")]
    return critical_section::with(|cs| {
        let net = ECHO_NET.borrow(cs);
        net.restart(cfg);
        asyncore_core::sim::scenario::run_echo_on(net, params, Some(OBSERVE))
    });
    #[cfg(not(target_os = "none"))]
    asyncore_core::sim::scenario::run_echo(cfg, params, Some(OBSERVE))
}

/// One chat run: on [`CHAT_NET`] on the firmware, on a new network on the host.
#[cfg(feature = "chat")]
fn run_chat(seed: u64) -> Result<ChatReport, ChatFailure> {
    let (cfg, params) = (SimConfig::from_seed(seed), ChatParams::from_seed(seed));
    #[cfg(target_os = "none")]
    return critical_section::with(|cs| {
        let net = CHAT_NET.borrow(cs);
        net.restart(cfg);
        asyncore_core::sim::chat_scenario::run_chat_on(net, params, Some(OBSERVE))
    });
    #[cfg(not(target_os = "none"))]
    asyncore_core::sim::chat_scenario::run_chat(cfg, params, Some(OBSERVE))
}

/// Every echo seed, a line each. Never inlined, like [`chat`]: the two scenarios'
/// frames must not add up in the caller's.
#[cfg(feature = "echo")]
#[inline(never)]
pub fn echo(out: &mut impl Write, tally: &mut Tally) {
    for seed in FIRST_SEED..FIRST_SEED + SEEDS {
        tally.count(checked(
            out,
            "echo",
            seed,
            || run_echo(seed),
            |out, r| {
                write!(
                    out,
                    "hash={:016x} passes={} complete={} reset={} refused={} echoed={} \
                     virtual_us={}",
                    r.trace_hash,
                    r.passes,
                    r.complete,
                    r.reset,
                    r.refused,
                    r.echoed,
                    r.elapsed.as_micros()
                )
            },
        ));
    }
}

/// Every chat seed, a line each.
#[cfg(feature = "chat")]
#[inline(never)]
pub fn chat(out: &mut impl Write, tally: &mut Tally) {
    for seed in FIRST_SEED..FIRST_SEED + SEEDS {
        tally.count(checked(
            out,
            "chat",
            seed,
            || run_chat(seed),
            |out, r| {
                write!(
                    out,
                    "hash={:016x} passes={} complete={} cut={} heard={}",
                    r.trace_hash, r.passes, r.complete, r.cut, r.heard
                )
            },
        ));
    }
}

/// The closing line, `N passed, N failed`. Returns whether every run passed.
pub fn close(out: &mut impl Write, tally: Tally) -> bool {
    writeln!(out, "{} passed, {} failed", tally.passed, tally.failed).is_ok() && tally.failed == 0
}
