//! Deterministic simulation of datagram channels: a request/response protocol with
//! retries (`asyncore::sim::dgram_scenario`) over the simulated datagram network,
//! with loss, duplication, reordering and server restarts (`ECONNREFUSED` for the
//! connected clients), for 10,000 seeds. Every request must complete, the server
//! must never execute one twice, no socket may be left ready unserviced, and the
//! event checker must find nothing. A failure prints its seed, every option drawn
//! from it, and the command that replays exactly that run.

#[path = "support/seeded.rs"]
mod seeded;

use std::time::Instant;

use asyncore::sim::dgram_scenario::{DgramFailure, DgramParams, DgramReport, run_dgram};
use asyncore::sim::{DGRAM_FAULTS, DgramConfig, DgramFault, SimConfig};
use seeded::{Scenario, checked, observe, seed_count};

const DGRAM: Scenario = Scenario {
    label: "datagram seed",
    replay: "sim_dgram replay",
    describe: |seed| {
        format!(
            "{}\n  {}\n  {}",
            SimConfig::from_seed(seed),
            DgramConfig::from_seed(seed),
            DgramParams::from_seed(seed)
        )
    },
};

/// One run with a fresh event checker: the scenario's own checks, then the
/// checker's; at the end only the server is left, unless the clients finished while
/// it was down.
fn run_seed(seed: u64) -> Result<DgramReport, String> {
    checked(
        || {
            run_dgram(
                SimConfig::from_seed(seed),
                DgramConfig::from_seed(seed),
                DgramParams::from_seed(seed),
                Some(observe),
            )
        },
        |report: &DgramReport, live| {
            if live != usize::from(report.server_up) {
                return Err(format!(
                    "{live} channels live at the end, expected only the server (up: {})",
                    report.server_up
                ));
            }
            Ok(())
        },
    )
}

#[test]
fn request_response_with_retries_many_seeds() {
    let seeds = seed_count();
    let started = Instant::now();
    let mut fired = [0u64; DGRAM_FAULTS];
    let (mut completed, mut retries, mut refused, mut duplicates, mut cached, mut restarts) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for seed in 0..seeds {
        let r = run_seed(seed).unwrap_or_else(|why| DGRAM.fail(seed, &why));
        for (total, n) in fired.iter_mut().zip(r.fired) {
            *total += n as u64;
        }
        completed += r.completed as u64;
        retries += r.retries as u64;
        refused += r.refused as u64;
        duplicates += r.duplicates as u64;
        cached += r.cached as u64;
        restarts += r.restarts as u64;
    }
    println!(
        "{seeds} datagram seeds in {:?}: {completed} requests completed, {retries} retransmissions, \
         {cached} answered from the server's cache, {duplicates} duplicate answers dropped, \
         {refused} ECONNREFUSED seen, {restarts} server restarts",
        started.elapsed()
    );
    for f in DgramFault::ALL {
        println!("  {:>10}: {}", f.name(), fired[f.index()]);
    }
    // A fault injector that silently did nothing would make every run pass.
    for f in [
        DgramFault::Loss,
        DgramFault::Duplicate,
        DgramFault::Reorder,
        DgramFault::Refused,
    ] {
        assert!(
            fired[f.index()] > 0,
            "{} never happened in {seeds} seeds",
            f.name()
        );
    }
    assert!(
        retries > 0 && refused > 0 && duplicates > 0 && cached > 0 && restarts > 0,
        "every path of the protocol was taken"
    );
}

#[test]
fn same_seed_same_trace() {
    DGRAM.same_twice(&[1, 7, 42, 1234, 99_999], run_seed);
    DGRAM.hashes_vary(run_seed, |r| r.trace_hash);
}

/// The check can fail: a server that forgets what it answered executes
/// retransmitted requests again, and lossy runs catch it.
#[test]
fn a_server_that_executes_twice_is_caught() {
    let mut caught = 0;
    for seed in 0..200 {
        let mut params = DgramParams::from_seed(seed);
        params.forgetful = true;
        match run_dgram(
            SimConfig::from_seed(seed),
            DgramConfig::from_seed(seed),
            params,
            None,
        ) {
            Err(DgramFailure::ExecutedTwice { .. }) => caught += 1,
            Err(other) => panic!("seed {seed}: {other:?}"),
            Ok(_) => {}
        }
    }
    assert!(caught > 20, "only {caught} of 200 lossy runs caught it");
}

/// Replays `ASYNCORE_SEED` (or seed 0), printing every option first.
#[test]
fn replay() {
    DGRAM.replay(run_seed);
}

// ---------------------------------------------------------------------------------
// The stall check covers datagram sockets: a handler that leaves a datagram (or a
// pending error) unread makes a real loop spin, and the simulator says so.

mod stalls {
    use std::time::Duration;

    use asyncore::sim::{STALL_WAITS, SimAddr, SimConfig, SimIo, SimNet, SimSelector, SimSocket};
    use asyncore::{Ctx, Datagram, Dispatcher, Error, Reactor, Readiness};

    type Sock<'n> = SimSocket<'n, 16, 256>;

    struct Lazy {
        read: bool,
        errors: u32,
    }

    impl<'n> Dispatcher<Sock<'n>> for Lazy {
        type Error = Error;
        fn handle_read(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Self>) -> Result<(), Error> {
            if self.read {
                let mut b = [0u8; 8];
                while ctx.recv_from(&mut b)?.is_some() {}
            }
            Ok(())
        }
        fn handle_error(&mut self, _ctx: &mut Ctx<'_, Sock<'n>, Self>, _e: Error) {
            self.errors += 1;
        }
    }

    fn run(read: bool, connected: bool) -> (SimNet<16, 256>, u32) {
        let net: SimNet<16, 256> = SimNet::new(SimConfig::quiet(3));
        let errors;
        {
            let mut r: Reactor<SimIo<'_, 16, 256>, Lazy, 4> = Reactor::new(SimSelector::new(&net));
            let sock = if connected {
                net.connect_dgram(9).unwrap()
            } else {
                net.bind_dgram(5).unwrap()
            };
            let mut peer = net.dgram().unwrap();
            let t = r.add(sock, Lazy { read, errors: 0 }).unwrap();
            if connected {
                r.get_mut(t).unwrap().socket.send_datagram(b"x").unwrap();
            } else {
                peer.send_to(b"hello", &SimAddr(5)).unwrap();
            }
            for _ in 0..2 * STALL_WAITS {
                r.poll_once(Some(Duration::from_millis(1))).unwrap();
            }
            errors = r.get(t).map_or(0, |c| c.dispatcher.errors);
        }
        (net, errors)
    }

    #[test]
    fn an_unread_datagram_is_a_stall() {
        let (net, _) = run(false, false);
        let stall = net.stall().expect("a datagram left unread spins the loop");
        assert_eq!(stall.readiness, Readiness::READABLE);
    }

    #[test]
    fn a_read_datagram_is_not_a_stall() {
        assert_eq!(run(true, false).0.stall(), None);
    }

    #[test]
    fn an_unread_refusal_is_a_stall_like_an_unread_datagram() {
        let (net, errors) = run(false, true);
        let stall = net
            .stall()
            .expect("a pending error left unread spins the loop");
        assert_eq!(stall.readiness, Readiness::ERROR);
        assert_eq!(errors, 0, "left to the handler, which never receives");
    }

    #[test]
    fn a_received_refusal_is_not_a_stall() {
        let (net, errors) = run(true, true);
        assert_eq!(net.stall(), None);
        assert_eq!(
            errors, 1,
            "the receive returned it; handle_read propagated it"
        );
    }
}
