//! The `dgram` target's inputs for `tests/fuzz_corpus.rs`: the generator of random
//! but meaningful operation lists, and the seed corpus.

use asyncore::Callback;
use asyncore::sim::Rng;
use asyncore::sim::fuzz::dgram::{self, Action, Command, HOOKS, Op};

use super::{bytes_of, pick};

/// A `dgram` input: clients that mostly send and read, a network that loses,
/// duplicates and reorders, the server going down and up, clients in the reactor
/// (connected or not, to live and dead ports), commands and closes.
pub fn generate(rng: &mut Rng) -> Vec<u8> {
    let mut ops = Vec::new();
    let n = rng.range(5, 80);
    for _ in 0..n {
        let client = rng.below(dgram::CLIENTS as u64) as u8;
        let op = match rng.below(20) {
            0..=5 => Op::Send {
                client,
                len: if rng.below(10) == 0 {
                    rng.range(500, 639) as u16
                } else {
                    rng.below(300) as u16
                },
            },
            6..=8 => Op::Recv { client },
            9 => Op::Reopen { client },
            10 => Op::Advance {
                ms: rng.below(50) as u8,
            },
            11 => Op::Network {
                loss: rng.below(80) as u8,
                duplicate: rng.below(80) as u8,
                reorder: rng.below(80) as u8,
                latency: rng.below(40) as u8,
            },
            12 => Op::WouldBlock {
                rate: rng.below(60) as u8,
            },
            13 | 14 => Op::Run {
                passes: rng.range(1, 8) as u8,
                timeout_ms: rng.below(20) as u8,
            },
            15 => {
                if rng.below(2) == 0 {
                    Op::ServerDown
                } else {
                    Op::ServerUp
                }
            }
            16 | 17 => Op::AddClient {
                connected: rng.below(2) == 0,
                dead: rng.below(4) == 0,
                count: rng.below(20) as u8,
            },
            18 => Op::Command {
                channel: rng.byte(),
                command: Command {
                    on: pick(rng, &HOOKS),
                    action: match rng.below(5) {
                        0 => Action::Close,
                        1 => Action::Fail,
                        2 => Action::FailKeep,
                        3 => Action::Poison(rng.byte()),
                        _ => Action::Burst(rng.below(16) as u8),
                    },
                },
            },
            _ => Op::ReactorClose {
                channel: rng.byte(),
            },
        };
        ops.push(op);
    }
    bytes_of(&ops, |o: &Op, put| o.encode(put))
}

/// The seed corpus: one file per list.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use Op::*;
    let enc = |ops: &[Op]| bytes_of(ops, |o: &Op, put| o.encode(put));
    let run = |passes| Run {
        passes,
        timeout_ms: 5,
    };
    let lossy = Network {
        loss: 50,
        duplicate: 50,
        reorder: 50,
        latency: 20,
    };
    vec![
        (
            "echo-sizes",
            enc(&[
                Send { client: 0, len: 0 },
                Send { client: 0, len: 3 },
                Send {
                    client: 1,
                    len: 200,
                },
                Send {
                    client: 2,
                    len: 512,
                },
                Send {
                    client: 3,
                    len: 513,
                },
                run(4),
                Recv { client: 0 },
                Recv { client: 1 },
                Recv { client: 2 },
            ]),
        ),
        (
            "lossy-network",
            enc(&[
                lossy,
                Send { client: 0, len: 40 },
                Send { client: 0, len: 41 },
                Send { client: 1, len: 42 },
                run(8),
                Recv { client: 0 },
                Recv { client: 1 },
                Advance { ms: 30 },
                run(8),
                Recv { client: 0 },
            ]),
        ),
        (
            "server-restart-refused",
            enc(&[
                AddClient {
                    connected: true,
                    dead: false,
                    count: 6,
                },
                run(3),
                ServerDown,
                Command {
                    channel: 0,
                    command: dgram::Command {
                        on: None,
                        action: Action::Burst(4),
                    },
                },
                run(8),
                ServerUp,
                run(8),
            ]),
        ),
        (
            "dead-port-clients",
            enc(&[
                AddClient {
                    connected: true,
                    dead: true,
                    count: 5,
                },
                AddClient {
                    connected: false,
                    dead: true,
                    count: 5,
                },
                run(8),
                Advance { ms: 10 },
                run(8),
            ]),
        ),
        (
            "full-wire-would-block",
            enc(&[
                WouldBlock { rate: 60 },
                AddClient {
                    connected: false,
                    dead: false,
                    count: 31,
                },
                AddClient {
                    connected: true,
                    dead: false,
                    count: 31,
                },
                Send {
                    client: 0,
                    len: 300,
                },
                Send {
                    client: 1,
                    len: 300,
                },
                run(8),
                Recv { client: 0 },
                run(8),
            ]),
        ),
        (
            "poison-and-fail",
            enc(&[
                AddClient {
                    connected: true,
                    dead: false,
                    count: 3,
                },
                Command {
                    channel: 1,
                    command: dgram::Command {
                        on: Some(Callback::Write),
                        action: Action::Poison(0),
                    },
                },
                run(4),
                Command {
                    channel: 0,
                    command: dgram::Command {
                        on: Some(Callback::Read),
                        action: Action::FailKeep,
                    },
                },
                Send { client: 2, len: 10 },
                run(4),
                ServerUp,
                Command {
                    channel: 0,
                    command: dgram::Command {
                        on: None,
                        action: Action::Fail,
                    },
                },
                Send { client: 2, len: 10 },
                run(4),
            ]),
        ),
        (
            "duplicates-only",
            enc(&[
                Network {
                    loss: 0,
                    duplicate: 250,
                    reorder: 0,
                    latency: 2,
                },
                Send { client: 0, len: 30 },
                Send { client: 1, len: 2 },
                Send { client: 1, len: 2 },
                run(6),
                Recv { client: 0 },
                Recv { client: 1 },
            ]),
        ),
        (
            "reorder-only",
            enc(&[
                Network {
                    loss: 0,
                    duplicate: 0,
                    reorder: 250,
                    latency: 40,
                },
                Send { client: 0, len: 10 },
                Send { client: 0, len: 11 },
                Send { client: 0, len: 12 },
                Send { client: 0, len: 13 },
                Advance { ms: 30 },
                run(8),
                Recv { client: 0 },
            ]),
        ),
        (
            "fail-in-error-hook",
            enc(&[
                AddClient {
                    connected: true,
                    dead: true,
                    count: 2,
                },
                Command {
                    channel: 1,
                    command: dgram::Command {
                        on: Some(Callback::Read),
                        action: Action::FailKeep,
                    },
                },
                run(4),
                Command {
                    channel: 1,
                    command: dgram::Command {
                        on: Some(Callback::Error),
                        action: Action::Close,
                    },
                },
                Command {
                    channel: 1,
                    command: dgram::Command {
                        on: Some(Callback::Write),
                        action: Action::Fail,
                    },
                },
                Command {
                    channel: 1,
                    command: dgram::Command {
                        on: None,
                        action: Action::Burst(3),
                    },
                },
                run(6),
            ]),
        ),
        (
            "close-everything",
            enc(&[
                AddClient {
                    connected: false,
                    dead: false,
                    count: 4,
                },
                AddClient {
                    connected: true,
                    dead: false,
                    count: 4,
                },
                run(2),
                ReactorClose { channel: 0 },
                ReactorClose { channel: 0 },
                ReactorClose { channel: 0 },
                run(2),
                ServerUp,
                Send { client: 3, len: 64 },
                run(4),
                Recv { client: 3 },
            ]),
        ),
        (
            "busy-server",
            enc(&[
                Send {
                    client: 0,
                    len: 250,
                },
                Send {
                    client: 1,
                    len: 250,
                },
                Send {
                    client: 2,
                    len: 250,
                },
                Send {
                    client: 3,
                    len: 250,
                },
                Send {
                    client: 0,
                    len: 250,
                },
                Send {
                    client: 1,
                    len: 250,
                },
                WouldBlock { rate: 120 },
                run(8),
                Recv { client: 0 },
                Recv { client: 1 },
                Recv { client: 2 },
                Recv { client: 3 },
            ]),
        ),
        (
            "reopen-and-close",
            enc(&[
                Send { client: 0, len: 20 },
                Reopen { client: 0 },
                Send { client: 0, len: 21 },
                ReactorClose { channel: 0 },
                run(2),
                ServerUp,
                Send { client: 0, len: 22 },
                run(4),
                Recv { client: 0 },
            ]),
        ),
    ]
}
