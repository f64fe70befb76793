//! The fuzz interpreters (`asyncore::sim::fuzz`) on stable, under plain `cargo test`:
//! every committed corpus file of each target (`fuzz/corpus/<target>/`), plus a fixed
//! set of generated inputs per target. The libFuzzer targets in `fuzz/` call the very
//! same functions.
//!
//! The seed corpus is written by this file too: `ASYNCORE_WRITE_CORPUS=1 cargo test
//! --test fuzz_corpus seed_corpus` regenerates the `seed-*` files from the operation
//! lists below; without the variable the test checks the committed files match them.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::Instant;

use asyncore::chat::Terminator;
use asyncore::sim::fuzz::{CheckHooks, chat_framing, dgram, dispatch, readiness};
use asyncore::sim::{Fault, Rng};
use asyncore::{Callback, Readiness, SocketError};

// The `dgram` target's generator and seeds.
#[path = "fuzz_corpus/dgram.rs"]
mod dgram_inputs;

/// Inputs generated per target.
const GENERATED: u64 = 5_000;

fn hooks() -> CheckHooks {
    asyncore::thread_local_check_hooks!()
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Runs `target`'s interpreter on `data`; on failure, the error and the operations.
fn run_target(target: &str, data: &[u8]) -> Result<String, String> {
    fn explain<E: Debug, O: Debug>(e: E, ops: impl Iterator<Item = O>) -> String {
        let mut s = format!("{e:?}\n  operations:");
        for (i, op) in ops.enumerate().take(200) {
            s += &format!("\n    {i:3}: {op:?}");
        }
        s
    }
    match target {
        "dispatch" => dispatch::run(data, Some(hooks()))
            .map(|r| format!("{r:?}"))
            .map_err(|e| explain(e, dispatch::ops(data))),
        "chat_framing" => chat_framing::run(data)
            .map(|r| format!("{r:?}"))
            .map_err(|e| explain(e, chat_framing::ops(data))),
        "readiness" => readiness::run(data, Some(hooks()))
            .map(|r| format!("{r:?}"))
            .map_err(|e| explain(e, readiness::ops(data))),
        "dgram" => dgram::run(data, Some(hooks()))
            .map(|r| format!("{r:?}"))
            .map_err(|e| explain(e, dgram::ops(data))),
        _ => unreachable!("unknown target {target}"),
    }
}

const TARGETS: [&str; 4] = ["dispatch", "chat_framing", "readiness", "dgram"];

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("corpus of {target}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn committed_corpus() {
    for target in TARGETS {
        let files = corpus_files(target);
        assert!(
            files.len() >= 12,
            "{target}: only {} corpus files",
            files.len()
        );
        for f in &files {
            let data = std::fs::read(f).unwrap();
            if let Err(why) = run_target(target, &data) {
                panic!("{target}: {} failed: {why}", f.display());
            }
        }
    }
}

/// Picks one of `items`.
fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

/// A `dispatch` input: clients that mostly connect, send and read, with faults,
/// handler commands, closes and time going by.
fn gen_dispatch(rng: &mut Rng) -> Vec<u8> {
    use dispatch::{Action, Command, HOOKS, Op};
    let mut out = Vec::new();
    for _ in 0..rng.range(4, 120) {
        let client = rng.below(dispatch::CLIENTS as u64) as u8;
        let ms = rng.below(12) as u8;
        let op = match rng.below(100) {
            0..=9 => Op::Connect { client },
            10..=11 => Op::ConnectNowhere { client },
            12..=27 => Op::Send {
                client,
                len: rng.range(1, 255) as u8,
            },
            28..=39 => Op::Recv { client },
            40..=42 => Op::ShutdownWrite { client },
            43..=44 => Op::Close { client },
            45..=46 => Op::Reset { client },
            47..=49 => Op::Advance {
                ms: rng.below(80) as u8,
            },
            50..=55 => Op::SetFault {
                fault: pick(rng, &Fault::ALL),
                per_mille: pick(rng, &[0, 8, 20, 100, 300, 1000]),
            },
            56..=69 => Op::Pass { timeout_ms: ms },
            70..=79 => Op::Run {
                passes: rng.range(1, 8) as u8,
                timeout_ms: ms,
            },
            80..=89 => {
                let other = rng.byte();
                let action = pick(
                    rng,
                    &[
                        Action::Close,
                        Action::Fail,
                        Action::FailAfterClose,
                        Action::FailKeep,
                        Action::Exit,
                        Action::AddClient,
                        Action::AddClient,
                        Action::TellClose(other),
                        Action::PoisonOther(other),
                        Action::SetDeadline(ms),
                        Action::DeadlineFor(other, ms),
                        Action::CancelDeadline,
                        Action::ShutdownWrite,
                    ],
                );
                Op::Command {
                    channel: rng.byte(),
                    command: Command {
                        on: pick(rng, &HOOKS),
                        action,
                    },
                }
            }
            90..=91 => Op::ReactorClose {
                channel: rng.byte(),
            },
            92..=93 => Op::Listen,
            94..=95 => Op::Timer { after_ms: ms },
            _ => Op::Deadline {
                channel: rng.byte(),
                after_ms: (rng.below(4) != 0).then_some(ms),
            },
        };
        op.encode(|b| out.push(b));
    }
    out
}

fn gen_terminator(rng: &mut Rng) -> Terminator {
    match rng.below(8) {
        0 => Terminator::None,
        1 | 2 => Terminator::Count(rng.range(1, 40) as usize),
        3 => Terminator::CRLF,
        4 => Terminator::LF,
        5 => Terminator::bytes(b"aab").unwrap(),
        _ => {
            let t: Vec<u8> = (0..rng.range(1, 4))
                .map(|_| pick(rng, &chat_framing::SMALL))
                .collect();
            Terminator::bytes(&t).unwrap()
        }
    }
}

/// A `chat_framing` input: a terminator, text over a small alphabet (so terminators
/// and their prefixes are frequent) arriving in chunks, terminator changes from
/// outside and from `found_terminator`, would-blocks, and maybe an end.
fn gen_chat_framing(rng: &mut Rng) -> Vec<u8> {
    use chat_framing::Op;
    let mut out = Vec::new();
    let mut emit = |op: Op<'_>| op.encode(|b| out.push(b));
    emit(Op::Switch {
        term: gen_terminator(rng),
    });
    for _ in 0..rng.range(2, 40) {
        match rng.below(100) {
            0..=29 => {
                let alphabet: &[u8] = pick(rng, &[&b"ab\r\n"[..], b"aab\r\nxyz", b"a\n"]);
                let text: Vec<u8> = (0..rng.below(120)).map(|_| pick(rng, alphabet)).collect();
                emit(Op::Feed { data: &text });
            }
            30..=39 => {
                let raw: Vec<u8> = (0..rng.below(60)).map(|_| rng.byte()).collect();
                emit(Op::FeedSmall { data: &raw });
            }
            40..=51 => emit(Op::Chunk {
                n: rng.range(1, 24) as u8,
            }),
            52..=79 => emit(Op::Pass {
                n: rng.range(1, 4) as u8,
            }),
            80..=86 => emit(Op::Switch {
                term: gen_terminator(rng),
            }),
            87..=94 => emit(Op::OnFound {
                nth: rng.range(1, 10) as u8,
                term: gen_terminator(rng),
            }),
            95..=97 => emit(Op::WouldBlock),
            98 => emit(Op::Reset),
            _ => emit(Op::Eof),
        }
    }
    if rng.below(2) == 0 {
        emit(Op::Eof);
    }
    emit(Op::Pass { n: 4 });
    emit(Op::Pass { n: 4 });
    out
}

/// A `readiness` input: channels of every kind, readiness and scripted results,
/// behaviors, passes, closes from outside.
fn gen_readiness(rng: &mut Rng) -> Vec<u8> {
    use asyncore::mock::{RecvStep, SendStep};
    use readiness::{Behavior, ERRNOS, Kind, Op};
    let mut out = Vec::new();
    let behavior = |rng: &mut Rng| {
        let mut b = rng.next_u64() as u16;
        // Mostly readable, rarely failing everywhere.
        if rng.below(5) != 0 {
            b |= Behavior::READ;
        }
        if rng.below(3) != 0 {
            b &= !(Behavior::FAIL | Behavior::EXIT);
        }
        Behavior(b)
    };
    for _ in 0..rng.range(3, 150) {
        let channel = rng.byte();
        let error = SocketError::from_errno(pick(rng, &ERRNOS));
        let op = match rng.below(100) {
            0..=11 => Op::Add {
                kind: pick(
                    rng,
                    &[
                        Kind::Listener,
                        Kind::Connecting,
                        Kind::Connected,
                        Kind::Open,
                    ],
                ),
                behavior: behavior(rng),
            },
            12..=31 => {
                let bits =
                    Readiness::from_bits_truncate(rng.byte() & pick(rng, &[0x03, 0x1f, 0x3f]));
                Op::Ready {
                    channel,
                    bits,
                    once: rng.below(3) == 0,
                }
            }
            32..=37 => Op::Feed {
                channel,
                len: rng.range(1, 100) as u8,
            },
            38..=40 => Op::FeedEof { channel },
            41..=46 => Op::Recv {
                channel,
                step: pick(
                    rng,
                    &[RecvStep::WouldBlock, RecvStep::Eof, RecvStep::Fail(error)],
                ),
            },
            47..=52 => {
                let short = SendStep::Accept(rng.below(8) as usize);
                Op::Send {
                    channel,
                    step: pick(rng, &[SendStep::WouldBlock, short, SendStep::Fail(error)]),
                }
            }
            53..=57 => Op::SoError {
                channel,
                error: (rng.below(2) == 0).then_some(error),
            },
            58..=59 => Op::FailTakeError { channel, error },
            60..=65 => Op::Pending {
                channel,
                error: (rng.below(3) == 0).then_some(error),
            },
            66..=67 => Op::Priority { channel },
            68..=69 => Op::FailClose { channel, error },
            70..=73 => Op::Behave {
                channel,
                behavior: behavior(rng),
            },
            74..=93 => Op::Pass,
            94..=96 => Op::Close { channel },
            97..=98 => Op::Remove { channel },
            _ => Op::FailWait,
        };
        op.encode(|b| out.push(b));
    }
    out
}

/// Generated input `seed` of `target`.
fn generate(target: &str, seed: u64) -> Vec<u8> {
    let salt = target
        .bytes()
        .fold(0u64, |h, b| h.rotate_left(8) ^ b as u64);
    let mut rng = Rng::new(seed ^ salt);
    if seed % 4 == 3 {
        let len = rng.below(600) as usize;
        return (0..len).map(|_| rng.byte()).collect();
    }
    match target {
        "dispatch" => gen_dispatch(&mut rng),
        "chat_framing" => gen_chat_framing(&mut rng),
        "dgram" => dgram_inputs::generate(&mut rng),
        _ => gen_readiness(&mut rng),
    }
}

/// `GENERATED` inputs per target, seeded: three in four from the target's generator,
/// one in four raw random bytes (which exercise the decoder's corners).
fn generated(target: &str) {
    let start = Instant::now();
    for seed in 0..GENERATED {
        let data = generate(target, seed);
        let r = run_target(target, &data);
        if std::env::var_os("ASYNCORE_FUZZ_VERBOSE").is_some() {
            println!("{seed}: {r:?}");
        }
        if let Err(why) = r {
            panic!(
                "{target}: generated input {seed} failed: {why}\n  input: {data:?}\n  replay: write the bytes to a file and run `cargo +nightly fuzz run {target} <file>`, or shrink it with the `minimize` test"
            );
        }
    }
    println!(
        "{target}: {GENERATED} generated inputs in {:?}",
        start.elapsed()
    );
}

#[test]
fn generated_dispatch() {
    generated("dispatch");
    // The echo channels read through buffers lent by the reactor's pool, and the
    // pool runs out in some runs: both paths are explored.
    let (mut pooled, mut exhausted) = (0, 0);
    for seed in 0..GENERATED {
        if let Ok(report) = dispatch::run(&generate("dispatch", seed), Some(hooks())) {
            pooled += (report.pool_peak > 0) as u64;
            exhausted += (report.pool_peak == dispatch::POOL) as u64;
        }
    }
    println!("dispatch: the pool was used in {pooled} inputs, ran out in {exhausted}");
    assert!(
        pooled > 0 && exhausted > 0,
        "pooled {pooled}, exhausted {exhausted}"
    );
}

#[test]
fn generated_chat_framing() {
    generated("chat_framing");
}

#[test]
fn generated_readiness() {
    generated("readiness");
}

#[test]
fn generated_dgram() {
    // As `generated`, counting what the inputs explored on the way: the network's
    // faults and the refusals of dead ports.
    let start = Instant::now();
    let (mut refused, mut lost, mut echoed) = (0, 0, 0);
    for seed in 0..GENERATED {
        let data = generate("dgram", seed);
        match dgram::run(&data, Some(hooks())) {
            Ok(report) => {
                refused += report.refused as u64;
                lost += report.fired[asyncore::sim::DgramFault::Loss.index()] as u64;
                echoed += report.echoed;
            }
            Err(e) => {
                let why = run_target("dgram", &data).unwrap_err();
                panic!("dgram: generated input {seed} failed: {e:?}\n{why}\n  input: {data:?}");
            }
        }
    }
    println!(
        "dgram: {GENERATED} generated inputs in {:?}: {echoed} echoes verified, \
         {refused} ECONNREFUSED, {lost} datagrams lost",
        start.elapsed()
    );
    assert!(refused > 0 && lost > 0 && echoed > 0);
}

/// Encodes operations back to bytes.
fn encode<O>(ops: &[O], enc: impl Fn(&O, &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        enc(op, &mut out);
    }
    out
}

/// Drops operations, one at a time, while `fails` still holds: a smaller reproducer.
fn shrink<O: Clone>(mut ops: Vec<O>, fails: impl Fn(&[O]) -> bool) -> Vec<O> {
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < ops.len() {
            let mut fewer = ops.clone();
            fewer.remove(i);
            if fails(&fewer) {
                ops = fewer;
                changed = true;
            } else {
                i += 1;
            }
        }
        if !changed {
            return ops;
        }
    }
}

/// The first line of a failure: its kind, without the operation listing.
fn first_line(why: &str) -> String {
    why.lines().next().unwrap_or_default().to_string()
}

/// Shrinks the input in `ASYNCORE_FUZZ_INPUT` (a file) for the target in
/// `ASYNCORE_FUZZ_TARGET` to the fewest operations that fail the same way, and
/// prints them and their bytes. `cargo test --test fuzz_corpus minimize -- --ignored
/// --nocapture`.
#[test]
#[ignore = "a tool: needs ASYNCORE_FUZZ_TARGET and ASYNCORE_FUZZ_INPUT"]
fn minimize() {
    let target = std::env::var("ASYNCORE_FUZZ_TARGET").expect("ASYNCORE_FUZZ_TARGET");
    let path = std::env::var("ASYNCORE_FUZZ_INPUT").expect("ASYNCORE_FUZZ_INPUT");
    let data = std::fs::read(&path).unwrap();
    let why = run_target(&target, &data).expect_err("the input does not fail");
    let kind = first_line(&why);
    println!("failure: {kind}");
    let same = |bytes: &[u8]| run_target(&target, bytes).is_err_and(|w| first_line(&w) == kind);
    let small = match target.as_str() {
        "dispatch" => {
            let enc = |o: &dispatch::Op, v: &mut Vec<u8>| o.encode(|b| v.push(b));
            let ops = shrink(dispatch::ops(&data).collect(), |o| same(&encode(o, enc)));
            encode(&ops, enc)
        }
        "chat_framing" => {
            let enc = |o: &chat_framing::Op<'_>, v: &mut Vec<u8>| o.encode(|b| v.push(b));
            let ops = shrink(chat_framing::ops(&data).collect(), |o| {
                same(&encode(o, enc))
            });
            encode(&ops, enc)
        }
        "readiness" => {
            let enc = |o: &readiness::Op, v: &mut Vec<u8>| o.encode(|b| v.push(b));
            let ops = shrink(readiness::ops(&data).collect(), |o| same(&encode(o, enc)));
            encode(&ops, enc)
        }
        "dgram" => {
            let enc = |o: &dgram::Op, v: &mut Vec<u8>| o.encode(|b| v.push(b));
            let ops = shrink(dgram::ops(&data).collect(), |o| same(&encode(o, enc)));
            encode(&ops, enc)
        }
        t => panic!("unknown target {t}"),
    };
    println!("{}", run_target(&target, &small).unwrap_err());
    println!("bytes: {small:?}");
    let out = format!("{path}.min");
    std::fs::write(&out, &small).unwrap();
    println!("written to {out}");
}

/// Writes generated input `ASYNCORE_SEED` of `ASYNCORE_FUZZ_TARGET` to
/// `target/fuzz-input-<target>-<seed>`, e.g. to shrink it with `minimize`.
#[test]
#[ignore = "a tool: needs ASYNCORE_FUZZ_TARGET and ASYNCORE_SEED"]
fn write_generated() {
    let target = std::env::var("ASYNCORE_FUZZ_TARGET").expect("ASYNCORE_FUZZ_TARGET");
    let seed: u64 = std::env::var("ASYNCORE_SEED")
        .expect("ASYNCORE_SEED")
        .parse()
        .unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("fuzz-input-{target}-{seed}"));
    std::fs::write(&path, generate(&target, seed)).unwrap();
    println!("{}", path.display());
}

// ---------------------------------------------------------------------------------
// The seed corpus: meaningful inputs, one file each, for libFuzzer to start from.

fn bytes_of<O>(ops: &[O], enc: impl Fn(&O, &mut dyn FnMut(u8))) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        enc(op, &mut |b| out.push(b));
    }
    out
}

fn dispatch_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use dispatch::Op::*;
    use dispatch::{Action, Command, Op};
    let enc = |ops: &[Op]| bytes_of(ops, |o, put| o.encode(put));
    let run = |passes| Run {
        passes,
        timeout_ms: 1,
    };
    let cmd = |channel, on, action| Op::Command {
        channel,
        command: Command { on, action },
    };
    let fault = |fault, per_mille| SetFault { fault, per_mille };
    // Listener = channel 0; the first accepted connection = channel 1.
    let two_clients = [
        Connect { client: 0 },
        Connect { client: 1 },
        run(4),
        Send {
            client: 0,
            len: 200,
        },
        Send { client: 1, len: 40 },
    ];
    vec![
        (
            "echo-two-clients",
            enc(&[
                &two_clients[..],
                &[run(8), Recv { client: 0 }, Recv { client: 1 }],
            ]
            .concat()),
        ),
        (
            "half-close",
            enc(&[
                Connect { client: 2 },
                run(3),
                Send {
                    client: 2,
                    len: 120,
                },
                ShutdownWrite { client: 2 },
                run(8),
                Recv { client: 2 },
            ]),
        ),
        (
            "reset-mid-stream",
            enc(&[
                &two_clients[..],
                &[
                    run(4),
                    Recv { client: 0 },
                    Send {
                        client: 0,
                        len: 100,
                    },
                    Pass { timeout_ms: 1 },
                    Reset { client: 0 },
                    run(6),
                    Recv { client: 0 },
                    Close { client: 1 },
                    run(4),
                ],
            ]
            .concat()),
        ),
        (
            "short-reads-and-writes",
            enc(&[
                &[fault(Fault::ShortRead, 300), fault(Fault::ShortWrite, 300)][..],
                &two_clients,
                &[
                    Send {
                        client: 0,
                        len: 255,
                    },
                    run(8),
                    Recv { client: 0 },
                    run(8),
                    Recv { client: 1 },
                ],
            ]
            .concat()),
        ),
        (
            "would-block-spurious-eintr",
            enc(&[
                &[
                    fault(Fault::WouldBlock, 200),
                    fault(Fault::Spurious, 300),
                    fault(Fault::Eintr, 300),
                ][..],
                &two_clients,
                &[
                    run(8),
                    Recv { client: 0 },
                    Advance { ms: 5 },
                    run(8),
                    Recv { client: 1 },
                ],
            ]
            .concat()),
        ),
        (
            "refused-and-slow-connects",
            enc(&[
                ConnectNowhere { client: 0 },
                fault(Fault::Refused, 1000),
                Connect { client: 1 },
                fault(Fault::Refused, 0),
                fault(Fault::SlowConnect, 1000),
                Connect { client: 2 },
                run(4),
                Send { client: 2, len: 10 },
                Advance { ms: 60 },
                run(4),
                Send { client: 2, len: 10 },
                Recv { client: 0 },
                Recv { client: 1 },
            ]),
        ),
        (
            "accept-faults",
            enc(&[
                fault(Fault::AcceptEmfile, 500),
                fault(Fault::AcceptAborted, 300),
                Connect { client: 0 },
                Connect { client: 1 },
                Connect { client: 2 },
                Connect { client: 3 },
                run(8),
                Send { client: 3, len: 30 },
                run(4),
            ]),
        ),
        (
            // Every accept fails for a while: the listener must pause, not spin.
            "accept-emfile-storm",
            enc(&[
                fault(Fault::AcceptEmfile, 1000),
                Connect { client: 0 },
                Connect { client: 1 },
                run(8),
                run(8),
                Advance { ms: 200 },
                run(8),
                fault(Fault::AcceptEmfile, 0),
                run(8),
                Send { client: 0, len: 9 },
                run(4),
                Recv { client: 0 },
            ]),
        ),
        (
            // Wakes and signals raised now and later, coalesced, none lost.
            "source-events",
            enc(&[
                Connect { client: 0 },
                Raise { event: 0 },
                Raise { event: 2 },
                Raise { event: 2 },
                RaiseLater { ms: 30, event: 15 },
                run(4),
                Send { client: 0, len: 7 },
                RaiseLater { ms: 5, event: 0 },
                Raise { event: 3 },
                run(8),
                Recv { client: 0 },
            ]),
        ),
        (
            // Urgent bytes between the data: consumed, never spun on, not echoed.
            "urgent-data",
            enc(&[
                Connect { client: 0 },
                run(4),
                Urgent { client: 0 },
                Send { client: 0, len: 10 },
                run(8),
                Urgent { client: 0 },
                Urgent { client: 0 },
                run(8),
                Recv { client: 0 },
                Send { client: 0, len: 3 },
                run(8),
                Recv { client: 0 },
            ]),
        ),
        (
            "close-self-on-read",
            enc(&[
                &two_clients[..],
                &[
                    cmd(1, Some(Callback::Read), Action::Close),
                    Send { client: 0, len: 5 },
                    run(4),
                    Recv { client: 0 },
                ],
            ]
            .concat()),
        ),
        (
            "fail-in-read-closed",
            enc(&[
                &two_clients[..],
                &[
                    cmd(1, Some(Callback::Eof), Action::FailAfterClose),
                    cmd(2, Some(Callback::Eof), Action::FailKeep),
                    ShutdownWrite { client: 0 },
                    ShutdownWrite { client: 1 },
                    run(6),
                    Recv { client: 0 },
                    Recv { client: 1 },
                ],
            ]
            .concat()),
        ),
        (
            "fail-and-error-hooks",
            enc(&[
                &two_clients[..],
                &[
                    cmd(1, Some(Callback::Write), Action::Fail),
                    cmd(2, Some(Callback::Error), Action::Close),
                    cmd(2, None, Action::FailKeep),
                    run(6),
                    Recv { client: 1 },
                ],
            ]
            .concat()),
        ),
        (
            "add-clients-tell-close-poison",
            enc(&[
                cmd(0, None, Action::AddClient),
                run(2),
                cmd(0, None, Action::AddClient),
                run(6),
                cmd(1, None, Action::TellClose(1)),
                run(2),
                cmd(0, Some(Callback::Accept), Action::PoisonOther(2)),
                Connect { client: 0 },
                run(6),
                Recv { client: 0 },
            ]),
        ),
        (
            "deadlines-and-timers",
            enc(&[
                &two_clients[..],
                &[
                    cmd(1, None, Action::SetDeadline(5)),
                    cmd(0, Some(Callback::Accept), Action::DeadlineFor(0, 3)),
                    Timer { after_ms: 4 },
                    Deadline {
                        channel: 2,
                        after_ms: Some(2),
                    },
                    Connect { client: 2 },
                    run(3),
                    Advance { ms: 6 },
                    run(4),
                    Deadline {
                        channel: 1,
                        after_ms: None,
                    },
                    cmd(2, Some(Callback::Timeout), Action::CancelDeadline),
                    run(4),
                    Recv { client: 1 },
                ],
            ]
            .concat()),
        ),
        (
            "full-map",
            enc(&[
                cmd(0, None, Action::AddClient),
                run(1),
                cmd(0, None, Action::AddClient),
                run(1),
                cmd(0, None, Action::AddClient),
                run(1),
                Connect { client: 0 },
                Connect { client: 1 },
                Connect { client: 2 },
                Connect { client: 3 },
                run(8),
                Send { client: 3, len: 20 },
                run(8),
                Recv { client: 3 },
            ]),
        ),
        (
            "listener-closed-and-relisten",
            enc(&[
                Connect { client: 0 },
                run(3),
                ReactorClose { channel: 0 },
                Connect { client: 1 },
                run(3),
                Listen,
                Connect { client: 2 },
                run(3),
                Send { client: 2, len: 9 },
                run(3),
                cmd(0, Some(Callback::Accept), Action::ShutdownWrite),
                Connect { client: 3 },
                run(4),
            ]),
        ),
        (
            "exit-and-run",
            enc(&[
                &two_clients[..],
                &[
                    cmd(1, Some(Callback::Read), Action::Exit),
                    cmd(2, None, Action::Exit),
                    Run {
                        passes: 8,
                        timeout_ms: 3,
                    },
                    Recv { client: 0 },
                    Run {
                        passes: 8,
                        timeout_ms: 0,
                    },
                ],
            ]
            .concat()),
        ),
    ]
}

fn chat_framing_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use chat_framing::Op::{self, *};
    let enc = |ops: &[Op<'_>]| bytes_of(ops, |o, put| o.encode(put));
    let term = |t: &[u8]| Switch {
        term: Terminator::bytes(t).unwrap(),
    };
    let lines = b"hello world\r\nI'm not dead yet!\r\n\r\nlast";
    vec![
        ("crlf-lines-chunk-1", enc(&[term(b"\r\n"), Chunk { n: 1 }, Feed { data: lines }, Pass { n: 4 }, Pass { n: 4 }, Pass { n: 4 }, Pass { n: 4 }, Pass { n: 4 }])),
        ("crlf-lines-chunk-3", enc(&[term(b"\r\n"), Chunk { n: 3 }, Feed { data: lines }, Pass { n: 4 }, Pass { n: 4 }, Eof, Pass { n: 2 }])),
        (
            "lf-long-records-wrap-the-ring",
            enc(&[term(b"\n"), Chunk { n: 7 }, Feed { data: b"a record much longer than the sixteen byte input ring\nand another one, also long\nx\n" }, Pass { n: 4 }, Pass { n: 4 }, Pass { n: 4 }]),
        ),
        (
            "header-then-counted-body",
            enc(&[
                term(b"\r\n"),
                OnFound { nth: 1, term: Terminator::Count(11) },
                OnFound { nth: 2, term: Terminator::CRLF },
                OnFound { nth: 3, term: Terminator::Count(3) },
                Chunk { n: 5 },
                Feed { data: b"LENGTH 11\r\nhello\r\nworld\r\nabcdefg" },
                Pass { n: 4 },
                Pass { n: 4 },
                Eof,
                Pass { n: 2 },
            ]),
        ),
        (
            "aab-partial-prefixes",
            enc(&[term(b"aab"), Chunk { n: 2 }, Feed { data: b"xaaaabaabaaab" }, Pass { n: 1 }, Feed { data: b"aa" }, Pass { n: 1 }, Feed { data: b"aab" }, Pass { n: 4 }]),
        ),
        (
            "small-alphabet-4-byte-terminator",
            enc(&[term(b"ab\r\n"), Chunk { n: 3 }, FeedSmall { data: &[0, 1, 2, 3, 0, 0, 1, 2, 3, 1, 0, 1, 2, 2, 3, 0, 1, 2, 3, 3, 0, 1, 0, 1, 2, 3] }, Pass { n: 4 }, Pass { n: 4 }, Pass { n: 4 }]),
        ),
        (
            "switch-from-outside",
            enc(&[term(b"\r\n"), Chunk { n: 4 }, Feed { data: b"one\r\ntwo\r" }, Pass { n: 4 }, term(b"\n"), Feed { data: b"\nthree\nfour" }, Pass { n: 4 }, Switch { term: Terminator::Count(3) }, Feed { data: b"fivesix" }, Pass { n: 4 }, Switch { term: Terminator::None }, Feed { data: b"\n\n" }, Pass { n: 2 }]),
        ),
        (
            "eof-with-held-back-prefix",
            enc(&[term(b"\r\n"), Feed { data: b"line\r\ntail\r" }, Pass { n: 2 }, Eof, Pass { n: 2 }]),
        ),
        (
            "reset-mid-record",
            enc(&[term(b"xyz"), Chunk { n: 2 }, Feed { data: b"abcxyzdefx" }, Pass { n: 2 }, Reset, Feed { data: b"yzghi" }, Pass { n: 4 }]),
        ),
        (
            "would-block-between-reads",
            enc(&[term(b"\n"), Chunk { n: 1 }, Feed { data: b"ab\ncd\n" }, WouldBlock, Pass { n: 1 }, WouldBlock, WouldBlock, Pass { n: 2 }, Pass { n: 4 }]),
        ),
        (
            "none-then-lines",
            enc(&[Feed { data: b"unframed bytes" }, Pass { n: 2 }, term(b"\r\n"), Feed { data: b"then\r\nlines\r\n" }, Pass { n: 2 }]),
        ),
        (
            "count-zero-is-no-framing",
            enc(&[Switch { term: Terminator::Count(0) }, Feed { data: b"all of it" }, Pass { n: 1 }, Switch { term: Terminator::Count(4) }, OnFound { nth: 1, term: Terminator::Count(0) }, Feed { data: b"1234567" }, Pass { n: 2 }]),
        ),
        (
            "empty-records",
            enc(&[term(b"\r\n"), Chunk { n: 2 }, Feed { data: b"\r\n\r\n\r\na\r\n\r\n" }, Pass { n: 4 }, Pass { n: 4 }]),
        ),
    ]
}

fn readiness_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use asyncore::errno::*;
    use asyncore::mock::{RecvStep, SendStep};
    use readiness::Op::{self, *};
    use readiness::{Behavior as B, Kind};
    let enc = |ops: &[Op]| bytes_of(ops, |o, put| o.encode(put));
    let e = SocketError::from_errno;
    let add = |kind, bits| Add {
        kind,
        behavior: B(bits),
    };
    let ready = |channel, bits| Ready {
        channel,
        bits,
        once: false,
    };
    let once = |channel, bits| Ready {
        channel,
        bits,
        once: true,
    };
    let rw = B::READ | B::WRITE | B::DRAIN | B::SEND;
    let r = Readiness::READABLE;
    let w = Readiness::WRITABLE;
    let all_bad = Readiness::ERROR | Readiness::HANGUP;
    let recv_errors: Vec<Op> = readiness::ERRNOS
        .iter()
        .flat_map(|&code| {
            [
                add(Kind::Connected, B::READ | B::DRAIN | B::CLOSE_ON_ERROR),
                Recv {
                    channel: 0,
                    step: RecvStep::Fail(e(code)),
                },
                ready(0, r),
                Pass,
            ]
        })
        .collect();
    let send_errors: Vec<Op> = readiness::ERRNOS
        .iter()
        .flat_map(|&code| {
            [
                add(Kind::Connected, B::WRITE | B::SEND | B::CLOSE_ON_ERROR),
                Send {
                    channel: 0,
                    step: SendStep::Fail(e(code)),
                },
                ready(0, w),
                Pass,
            ]
        })
        .collect();
    vec![
        (
            "refused-connect",
            enc(&[
                add(Kind::Connecting, B::READ),
                SoError {
                    channel: 0,
                    error: Some(e(ECONNREFUSED)),
                },
                ready(0, r | w | all_bad),
                Pass,
                Pass,
            ]),
        ),
        (
            "connect-then-read-write",
            enc(&[
                add(Kind::Connecting, rw),
                once(0, w),
                Pass,
                Feed {
                    channel: 0,
                    len: 40,
                },
                Send {
                    channel: 0,
                    step: SendStep::Accept(3),
                },
                ready(0, r | w),
                Pass,
                Pass,
                FeedEof { channel: 0 },
                Pass,
            ]),
        ),
        (
            "listener-accepts-and-errors",
            enc(&[
                add(Kind::Listener, B::READ | B::ADD_ACCEPTED),
                Pending {
                    channel: 0,
                    error: None,
                },
                Pending {
                    channel: 0,
                    error: Some(e(EMFILE)),
                },
                Pending {
                    channel: 0,
                    error: None,
                },
                Pending {
                    channel: 0,
                    error: Some(e(ECONNABORTED)),
                },
                Pending {
                    channel: 0,
                    error: None,
                },
                Pending {
                    channel: 0,
                    error: Some(e(EINVAL)),
                },
                ready(0, r),
                Pass,
                Pass,
                Pass,
                once(0, all_bad),
                Pass,
            ]),
        ),
        (
            "hangup-and-error-on-streams",
            enc(&[
                add(Kind::Connected, rw),
                add(Kind::Connected, B::READ),
                add(Kind::Open, rw),
                ready(0, r | Readiness::HANGUP),
                ready(1, Readiness::ERROR),
                ready(2, w | all_bad),
                Pass,
                Pass,
            ]),
        ),
        (
            "invalid-on-each-kind",
            enc(&[
                add(Kind::Listener, B::READ),
                add(Kind::Connecting, B::READ),
                add(Kind::Connected, rw),
                add(Kind::Open, B::READ),
                ready(0, Readiness::INVALID),
                ready(1, Readiness::INVALID | r),
                ready(2, Readiness::INVALID | w),
                ready(3, Readiness::INVALID),
                Pass,
                Pass,
            ]),
        ),
        (
            "priority-with-and-without-so-error",
            enc(&[
                add(Kind::Connected, B::READ | B::READ_PRIORITY),
                add(Kind::Connected, B::READ),
                Priority { channel: 0 },
                ready(0, Readiness::PRIORITY),
                ready(1, Readiness::PRIORITY | r),
                SoError {
                    channel: 1,
                    error: Some(e(ECONNRESET)),
                },
                Pass,
                FailTakeError {
                    channel: 0,
                    error: e(EBADF),
                },
                Pass,
                Pass,
            ]),
        ),
        ("recv-errors-each-errno", enc(&recv_errors)),
        ("send-errors-each-errno", enc(&send_errors)),
        (
            "eof-keep-writing-then-close",
            enc(&[
                add(Kind::Connected, rw | B::KEEP_WRITING | B::SHUTDOWN),
                Feed {
                    channel: 0,
                    len: 10,
                },
                FeedEof { channel: 0 },
                ready(0, r | w),
                Pass,
                Pass,
                Behave {
                    channel: 0,
                    behavior: B(B::WRITE | B::CLOSE_ON_WRITE),
                },
                Pass,
                Pass,
            ]),
        ),
        (
            "read-closed-close-and-fail",
            enc(&[
                add(Kind::Connected, B::READ | B::FAIL_READ_CLOSED),
                FeedEof { channel: 0 },
                ready(0, r),
                Pass,
                Pass,
            ]),
        ),
        (
            "close-and-fail-in-handlers",
            enc(&[
                add(Kind::Connected, B::READ | B::CLOSE_ON_READ | B::FAIL),
                add(
                    Kind::Connected,
                    B::READ | B::WRITE | B::FAIL | B::CLOSE_ON_ERROR,
                ),
                add(Kind::Connected, B::READ | B::FAIL_CLOSE),
                add(Kind::Connecting, B::READ | B::FAIL_CONNECT | B::EXIT),
                ready(0, r),
                ready(1, r | w),
                ready(2, Readiness::HANGUP),
                ready(3, w),
                Pass,
                Pass,
                Pass,
            ]),
        ),
        (
            "descriptor-reuse",
            enc(&[
                add(Kind::Connected, B::READ),
                add(Kind::Connected, rw),
                ready(0, r | w),
                ready(1, r | w),
                FeedEof { channel: 0 },
                Pass,
                Close { channel: 0 },
                add(Kind::Connected, rw),
                Remove { channel: 1 },
                add(Kind::Listener, B::READ | B::ADD_ACCEPTED),
                Pending {
                    channel: 1,
                    error: None,
                },
                Pass,
                Pass,
            ]),
        ),
        (
            "failing-wait-and-close",
            enc(&[
                add(Kind::Connected, rw),
                FailClose {
                    channel: 0,
                    error: e(EINTR),
                },
                FailWait,
                ready(0, r | w),
                Pass,
                Pass,
                once(0, all_bad),
                Pass,
            ]),
        ),
    ]
}

fn seeds(target: &str) -> Vec<(&'static str, Vec<u8>)> {
    match target {
        "dispatch" => dispatch_seeds(),
        "chat_framing" => chat_framing_seeds(),
        "dgram" => dgram_inputs::seeds(),
        _ => readiness_seeds(),
    }
}

/// The `seed-*` files of the corpus are exactly what the lists above encode
/// (`ASYNCORE_WRITE_CORPUS=1` rewrites them), and each of them passes.
#[test]
fn seed_corpus() {
    let write = std::env::var_os("ASYNCORE_WRITE_CORPUS").is_some();
    for target in TARGETS {
        let dir = corpus_dir(target);
        let seeds = seeds(target);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            for f in corpus_files(target) {
                if f.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
                {
                    std::fs::remove_file(f).unwrap();
                }
            }
        }
        for (name, data) in &seeds {
            match run_target(target, data) {
                Err(why) => panic!("{target}: seed {name} fails: {why}"),
                Ok(report) => println!("{target}: seed {name}: {report}"),
            }
            let path = dir.join(format!("seed-{name}"));
            if write {
                std::fs::write(&path, data).unwrap();
            } else {
                let committed = std::fs::read(&path).unwrap_or_else(|e| {
                    panic!(
                        "{}: {e}; regenerate with ASYNCORE_WRITE_CORPUS=1",
                        path.display()
                    )
                });
                assert_eq!(
                    &committed,
                    data,
                    "{} is stale; regenerate with ASYNCORE_WRITE_CORPUS=1",
                    path.display()
                );
            }
        }
        let on_disk = corpus_files(target)
            .iter()
            .filter(|f| {
                f.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
            })
            .count();
        assert_eq!(on_disk, seeds.len(), "{target}: stray seed-* files");
    }
}
