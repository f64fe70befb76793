//! Deterministic simulation: the core's echo server and a crowd of clients over the
//! simulated network, with faults, for 10,000 seeds; every run checked by the event
//! checker (no callback after close, one close per channel, no stale token) and byte
//! for byte. A failure prints its seed, every option derived from it, and the command
//! that replays exactly that run.

#[path = "support/seeded.rs"]
mod seeded;

use asyncore::sim::chat_scenario::{ChatNet, ChatParams, ChatReport, run_chat, run_chat_on};
use asyncore::sim::scenario::{EchoNet, EchoParams, EchoReport, run_echo, run_echo_on};
use asyncore::sim::{FAULTS, Fault, SimConfig};
use seeded::{Scenario, checked, observe, seed_count};

const ECHO: Scenario = Scenario {
    label: "seed",
    replay: "sim replay",
    describe: |seed| {
        format!(
            "{}\n  {}",
            SimConfig::from_seed(seed),
            EchoParams::from_seed(seed)
        )
    },
};

const CHAT: Scenario = Scenario {
    label: "chat seed",
    replay: "sim replay_chat",
    describe: |seed| {
        format!(
            "{}\n  {}",
            SimConfig::from_seed(seed),
            ChatParams::from_seed(seed)
        )
    },
};

/// Only the listener is left at the end.
fn only_the_listener<R>(_: &R, live: usize) -> Result<(), String> {
    if live != 1 {
        return Err(format!(
            "{live} channels live at the end, expected only the listener"
        ));
    }
    Ok(())
}

/// One echo run.
fn run_seed(seed: u64) -> Result<EchoReport, String> {
    checked(
        || {
            run_echo(
                SimConfig::from_seed(seed),
                EchoParams::from_seed(seed),
                Some(observe),
            )
        },
        only_the_listener,
    )
}

#[test]
fn echo_over_simulated_network_many_seeds() {
    let seeds = seed_count();
    let mut fired = [0u64; FAULTS];
    let (mut complete, mut reset, mut refused, mut echoed) = (0usize, 0usize, 0usize, 0u64);
    let (mut pooled, mut exhausted) = (0u64, 0u64);
    for seed in 0..seeds {
        let report = run_seed(seed).unwrap_or_else(|why| ECHO.fail(seed, &why));
        pooled += (report.pool_peak > 0) as u64;
        exhausted += (report.pool_peak == asyncore::sim::scenario::POOL) as u64;
        for (total, n) in fired.iter_mut().zip(report.fired) {
            *total += n as u64;
        }
        complete += report.complete;
        reset += report.reset;
        refused += report.refused;
        echoed += report.echoed;
    }
    println!(
        "{seeds} seeds: {complete} clients complete, {reset} reset, {refused} refused, {echoed} bytes echoed"
    );
    for f in Fault::ALL {
        println!("  {:>15}: {}", f.name(), fired[f.index()]);
    }
    // An injector that silently does nothing would make every run above pass: each
    // fault kind must actually have fired.
    for f in Fault::ALL {
        assert!(
            fired[f.index()] > 0,
            "fault {} never fired in {seeds} seeds",
            f.name()
        );
    }
    assert!(
        complete > 0 && reset > 0 && refused > 0,
        "every outcome occurred"
    );
    // The server lends its pool's buffers (large reads with small buffers of its
    // own), and runs out of them in some runs (connections then echo through their
    // own buffers).
    println!("  pool used in {pooled} runs, all lent at once in {exhausted}");
    assert!(
        pooled > seeds / 2,
        "the pool was used in {pooled} runs only"
    );
    assert!(exhausted > 0, "the pool never ran out");
}

#[test]
fn same_seed_same_trace() {
    ECHO.same_twice(&[1, 7, 42, 1234, 99_999], run_seed);
    ECHO.hashes_vary(run_seed, |r| r.trace_hash);
}

/// One network, restarted for each run (as a small target keeps it in a `static`),
/// gives every seed the run a new network gives: reports and trace hashes equal.
#[test]
fn a_restarted_network_runs_each_seed_as_a_new_one() {
    let echo_net = EchoNet::new(SimConfig::quiet(0));
    let chat_net = ChatNet::new(SimConfig::quiet(0));
    for seed in 0..300 {
        let (cfg, echo, chat) = (
            SimConfig::from_seed(seed),
            EchoParams::from_seed(seed),
            ChatParams::from_seed(seed),
        );
        echo_net.restart(cfg);
        assert_eq!(
            run_echo_on(&echo_net, echo, None),
            run_echo(cfg, echo, None),
            "echo seed {seed}"
        );
        chat_net.restart(cfg);
        assert_eq!(
            run_chat_on(&chat_net, chat, None),
            run_chat(cfg, chat, None),
            "chat seed {seed}"
        );
    }
}

/// A reactor built at compile time over a detached selector serves once it is given
/// its network; a detached selector knows no time and its wait fails at once.
#[test]
fn a_reactor_built_at_compile_time_serves_once_given_its_network() {
    use asyncore::echo::Echo;
    use asyncore::sim::{SimIo, SimNet, SimSelector, SimSocket, SimStalled};
    use asyncore::{Event, Events, Reactor, Recv, Selector, Socket};
    type Server<'n> = Reactor<SimIo<'n, 8, 256>, Echo<SimSocket<'n, 8, 256>, 64>, 4>;

    let mut detached = SimSelector::<8, 256>::detached();
    assert_eq!(detached.now(), None);
    let mut slots = [Event::EMPTY; 4];
    assert_eq!(
        detached.select(&mut Events::new(&mut slots), None),
        Err(SimStalled)
    );

    let net: SimNet<8, 256> = SimNet::new(SimConfig::quiet(5));
    let mut server: Server<'_> = const { Reactor::new(SimSelector::detached()) };
    *server.selector_mut() = SimSelector::new(&net);
    server
        .add(net.listen(7).unwrap(), Echo::listener(3))
        .unwrap();
    let mut client = net.connect(7).unwrap();
    let (mut sent, mut got) = (false, Vec::new());
    for _ in 0..50 {
        server
            .poll_once(Some(std::time::Duration::from_millis(1)))
            .unwrap();
        if net.is_established(&client) && !sent {
            sent = client.send(b"echo me").is_ok();
        }
        let mut buf = [0u8; 16];
        if let Ok(Recv::Data(n)) = client.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, b"echo me");
}

/// Replays `ASYNCORE_SEED` (or seed 0), printing every option first.
#[test]
fn replay() {
    ECHO.replay(run_seed);
}

/// One chat run.
fn run_chat_seed(seed: u64) -> Result<ChatReport, String> {
    checked(
        || {
            run_chat(
                SimConfig::from_seed(seed),
                ChatParams::from_seed(seed),
                Some(observe),
            )
        },
        only_the_listener,
    )
}

/// Bursty talkers, readers of varied steady paces, and in most runs one reader that
/// stops: every line heard exactly and in order, no reader that keeps reading
/// disconnected, the stalled one disconnected as too slow but not before the slow
/// timeout (see `asyncore::sim::chat_scenario`).
#[test]
fn chat_over_simulated_network_many_seeds() {
    let seeds = seed_count();
    let (mut complete, mut cut, mut heard) = (0usize, 0usize, 0u64);
    let (mut passes, mut waiting, mut evicted, mut stallers) = (0u64, 0u64, 0usize, 0usize);
    let mut virtual_time = std::time::Duration::ZERO;
    for seed in 0..seeds {
        let r = run_chat_seed(seed).unwrap_or_else(|why| CHAT.fail(seed, &why));
        complete += r.complete;
        cut += r.cut;
        heard += r.heard;
        passes += r.passes as u64;
        waiting += r.waiting_passes as u64;
        evicted += r.evicted;
        virtual_time += r.elapsed;
        stallers += ChatParams::from_seed(seed).staller.is_some() as usize;
    }
    println!(
        "{seeds} chat seeds: {complete} clients complete, {cut} cut off, {heard} lines heard and verified; \
         {passes} passes, {waiting} with a user waiting for room; {evicted} of {stallers} stalled readers \
         disconnected as too slow (the others were cut by a fault or had nothing left to wait for); \
         {virtual_time:?} of virtual time"
    );
    assert!(
        complete > 0 && cut > 0 && heard > 0,
        "every outcome occurred"
    );
    // A scenario where the room never waited, or no stalled reader was ever
    // disconnected, would pass the checks above without testing back-pressure.
    assert!(waiting > 0, "the room never waited");
    assert!(evicted > 0, "no stalled reader was disconnected");
}

#[test]
fn chat_same_seed_same_trace() {
    CHAT.same_twice(&[3, 77, 4242], run_chat_seed);
}

/// Replays `ASYNCORE_SEED` (or seed 0) of the chat scenario, printing every option first.
#[test]
fn replay_chat() {
    CHAT.replay(run_chat_seed);
}

// ---------------------------------------------------------------------------------
// The stall checker: a handler that leaves readiness unconsumed makes a real loop
// spin; the simulator catches it, and the core's defaults never trip it.

mod stalls {
    use std::time::Duration;

    use asyncore::sim::{STALL_WAITS, SimConfig, SimIo, SimNet, SimSelector, SimSocket};
    use asyncore::{Ctx, Dispatcher, Error, Reactor, Readiness, Socket};

    type Sock<'n> = SimSocket<'n, 16, 256>;

    /// Accepts and keeps connections; with `raw_accept` it calls the socket's own
    /// `accept` (no back-off), and with `ignore_urgent` its `handle_expt` does nothing.
    struct Server {
        raw_accept: bool,
        ignore_urgent: bool,
    }

    impl<'n> Dispatcher<Sock<'n>> for Server {
        type Error = Error;
        fn handle_accept(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Self>) -> Result<(), Error> {
            if self.raw_accept {
                if let Ok(Some(s)) = ctx.socket().accept() {
                    let _ = ctx.add(
                        s,
                        Server {
                            raw_accept: false,
                            ignore_urgent: self.ignore_urgent,
                        },
                    );
                }
                return Ok(());
            }
            while let Ok(Some(s)) = ctx.accept() {
                let _ = ctx.add(
                    s,
                    Server {
                        raw_accept: false,
                        ignore_urgent: self.ignore_urgent,
                    },
                );
            }
            Ok(())
        }
        fn handle_read(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Self>) -> Result<(), Error> {
            let mut buf = [0u8; 64];
            let _ = ctx.recv(&mut buf)?;
            Ok(())
        }
        fn handle_expt(&mut self, ctx: &mut Ctx<'_, Sock<'n>, Self>) -> Result<(), Error> {
            if self.ignore_urgent {
                return Ok(());
            }
            let mut b = [0u8; 1];
            let _ = ctx.recv_priority(&mut b)?;
            Ok(())
        }
    }

    /// Runs `passes` passes with one client connected that sent an urgent byte (if
    /// `urgent`); with `emfile`, a second client waits while every accept fails with
    /// `EMFILE`.
    fn run(server: Server, urgent: bool, emfile: bool, passes: u32) -> SimNet<16, 256> {
        let net: SimNet<16, 256> = SimNet::new(SimConfig::quiet(7));
        {
            let mut r: Reactor<SimIo<'_, 16, 256>, Server, 4> =
                Reactor::new(SimSelector::new(&net));
            r.add(net.listen(80).unwrap(), server).unwrap();
            let client = net.connect(80).unwrap();
            for _ in 0..5 {
                r.poll_once(Some(Duration::from_millis(1))).unwrap();
            }
            assert!(net.is_established(&client));
            if urgent {
                client.send_urgent(b'!').unwrap();
            }
            let _second = emfile.then(|| {
                net.set_rate(asyncore::sim::Fault::AcceptEmfile, 1000);
                net.connect(80).unwrap()
            });
            for _ in 0..passes {
                r.poll_once(Some(Duration::from_millis(1))).unwrap();
            }
        }
        net
    }

    #[test]
    fn ignored_urgent_data_is_a_stall() {
        let net = run(
            Server {
                raw_accept: false,
                ignore_urgent: true,
            },
            true,
            false,
            2 * STALL_WAITS,
        );
        let stall = net.stall().expect("an ignored urgent byte spins the loop");
        assert!(stall.readiness.is_priority(), "{stall:?}");
    }

    #[test]
    fn consumed_urgent_data_is_not_a_stall() {
        let net = run(
            Server {
                raw_accept: false,
                ignore_urgent: false,
            },
            true,
            false,
            4 * STALL_WAITS,
        );
        assert_eq!(net.stall(), None);
    }

    #[test]
    fn a_listener_retrying_a_failing_accept_every_pass_is_a_stall() {
        let net = run(
            Server {
                raw_accept: true,
                ignore_urgent: false,
            },
            false,
            true,
            2 * STALL_WAITS,
        );
        let stall = net
            .stall()
            .expect("accept failing every pass spins the loop");
        assert_eq!(stall.readiness, Readiness::READABLE);
    }

    #[test]
    fn a_listener_paused_by_the_accept_back_off_is_not_a_stall() {
        let net = run(
            Server {
                raw_accept: false,
                ignore_urgent: false,
            },
            false,
            true,
            20 * STALL_WAITS,
        );
        assert_eq!(net.stall(), None);
    }
}

// ---------------------------------------------------------------------------------
// Event sources in the simulator: scripted, deterministic, coalesced, never lost.

mod sources {
    use std::cell::RefCell;
    use std::time::Duration;

    use asyncore::sim::{SimConfig, SimIo, SimNet, SimSelector, SimSocket};
    use asyncore::{Ctx, Dispatcher, Error, Reactor, SourceEvent};

    type Sock<'n> = SimSocket<'n, 8, 64>;

    thread_local! {
        static GOT: RefCell<Vec<(Duration, SourceEvent)>> = const { RefCell::new(Vec::new()) };
    }

    struct Events;

    impl<'n> Dispatcher<Sock<'n>> for Events {
        type Error = Error;
        fn handle_event(
            &mut self,
            ctx: &mut Ctx<'_, Sock<'n>, Self>,
            event: SourceEvent,
        ) -> Result<(), Error> {
            let now = ctx.now().unwrap();
            GOT.with(|g| g.borrow_mut().push((now, event)));
            Ok(())
        }
    }

    fn run(seed: u64) -> (Vec<(Duration, SourceEvent)>, u64) {
        GOT.with(|g| g.borrow_mut().clear());
        let net: SimNet<8, 64> = SimNet::new(SimConfig::quiet(seed));
        let mut r: Reactor<SimIo<'_, 8, 64>, Events, 4> = Reactor::new(SimSelector::new(&net));
        let src = net.source().unwrap();
        // Raised before the loop runs: coalesced.
        for e in [
            SourceEvent::Signal(15),
            SourceEvent::Signal(2),
            SourceEvent::Signal(15),
            SourceEvent::Wake,
            SourceEvent::Wake,
        ] {
            assert!(net.raise(&src, e));
        }
        // Raised while the loop waits: the wait ends then.
        assert!(net.raise_at(&src, Duration::from_millis(30), SourceEvent::Signal(10)));
        assert!(net.raise_at(&src, Duration::from_millis(30), SourceEvent::Signal(10)));
        assert!(net.raise_at(&src, Duration::from_millis(20), SourceEvent::Wake));
        r.add(src, Events).unwrap();
        for _ in 0..4 {
            r.poll_once(Some(Duration::from_secs(1))).unwrap();
        }
        (GOT.with(|g| g.borrow().clone()), net.trace_hash())
    }

    #[test]
    fn events_are_coalesced_delivered_in_order_and_never_lost() {
        let (got, hash) = run(3);
        let ms = Duration::from_millis;
        assert_eq!(
            got,
            [
                (ms(0), SourceEvent::Signal(15)),
                (ms(0), SourceEvent::Signal(2)),
                (ms(0), SourceEvent::Wake),
                (ms(20), SourceEvent::Wake),
                (ms(30), SourceEvent::Signal(10)),
            ]
        );
        assert_eq!(run(3), (got, hash), "same seed, same run");
    }

    /// Raises distinct events (never coalesced) until one is refused, then takes them
    /// all back through the socket: what was accepted comes out whole, in order.
    fn fill<const B: usize>() -> usize {
        use asyncore::{ExitStatus, Socket};
        let net: SimNet<4, B> = SimNet::new(SimConfig::quiet(1));
        let mut src = net.source().unwrap();
        let event = |k: u32| match k % 3 {
            0 => SourceEvent::Signal(-(k as i32)),
            1 => SourceEvent::Exit {
                pid: u32::MAX - k,
                status: ExitStatus::Code(-7),
            },
            _ => SourceEvent::Exit {
                pid: k,
                status: ExitStatus::Signal(i32::MIN),
            },
        };
        let mut held = 0;
        while net.raise(&src, event(held)) {
            held += 1;
            assert!(held <= 16, "a source holds 16 events at most");
        }
        for k in 0..held {
            assert_eq!(src.next_event(), Some(event(k)));
        }
        assert_eq!(src.next_event(), None);
        held as usize
    }

    #[test]
    fn a_source_holds_sixteen_events_or_as_many_as_its_buffer_frames() {
        assert_eq!(fill::<512>(), 16);
        assert_eq!(fill::<144>(), 16);
        assert_eq!(fill::<64>(), 7);
        assert_eq!(fill::<8>(), 0);
    }
}
