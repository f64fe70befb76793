//! Dispatch cost with no system calls: the reactor over a mock selector.
//!
//! ```text
//! cargo bench --bench dispatch            # criterion runs, then a summary table
//! cargo bench --bench dispatch -- --quick # shorter
//! ```
//!
//! N channels are registered, all readable; a mock selector reports K of them ready
//! per pass (K spread evenly over the slots). Each iteration is one
//! `Reactor::poll_once`: bringing interest up to date, the selector, and K
//! dispatches into `handle_read`. With the channels asking every pass
//! ([`InterestMode::EveryPass`], the default) the first step asks all N channels
//! `readable()`/`writable()`; with [`InterestMode::OnChange`] it asks only the K that
//! were dispatched. Derived figures (printed at the end, per mode):
//!
//! * **ns per channel per pass** (interest query) = t(N, K=0) / N;
//! * **ns per dispatched event** = (t(N, K) − t(N, 0)) / K.
//!
//! The selector is defined here rather than `asyncore_core::mock::MockSelector`: that
//! one is a test recorder (it keeps a history of every registration of every pass and
//! looks readiness up in a list of 64 sources), so its own bookkeeping would be
//! measured. This one honours the same [`Selector`] contract and costs O(K) per wait.
//! The socket and the dispatcher are just as small, so what is measured is the
//! reactor.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use asyncore::{
    Ctx, Dispatcher, Error, Events, Interest, InterestMode, Reactor, Readiness, Recv, Selector,
    Sent, Socket, SocketError, SourceError, State, Token, With,
};
use criterion::{BenchmarkId, Criterion, Throughput};

/// A socket that never makes a system call.
#[derive(Debug)]
struct NullSocket(u32);

impl Socket for NullSocket {
    type Source = u32;
    fn source(&self) -> u32 {
        self.0
    }
    fn initial_state(&mut self) -> State {
        State::Connected
    }
    fn recv(&mut self, _buf: &mut [u8]) -> Result<Recv, SocketError> {
        Ok(Recv::WouldBlock)
    }
    fn send(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        Ok(Sent::Bytes(buf.len()))
    }
    fn close(&mut self) -> Result<(), SocketError> {
        Ok(())
    }
}

/// Counts its reads; always wants to read, never to write (an idle server connection).
#[derive(Debug)]
struct Counter {
    reads: u64,
    mode: InterestMode,
}

impl Dispatcher<NullSocket> for Counter {
    type Error = Error;
    fn readable(&self) -> bool {
        true
    }
    fn writable(&self) -> bool {
        false
    }
    fn interest_mode(&self) -> InterestMode {
        self.mode
    }
    fn handle_read(&mut self, _ctx: &mut Ctx<'_, NullSocket, Self>) -> Result<(), Error> {
        self.reads += 1;
        Ok(())
    }
}

/// Reports every `stride`-th registered channel readable, `k` of them; no clock, no
/// system call. More than the reactor's batch ([`asyncore::EVENT_BATCH`]) are handed
/// out by `select_more`, from where the last batch stopped.
#[derive(Debug)]
struct StrideSelector {
    k: usize,
    stride: usize,
    /// The registered tokens, by slot.
    tokens: Vec<Option<Token>>,
    /// How many of the `k` the last wait handed out, and the slot it goes on at.
    pushed: usize,
    at: usize,
}

impl StrideSelector {
    /// Pushes the rest of this wait's `k` while `events` has room.
    fn push_found(&mut self, events: &mut Events<'_>) -> usize {
        let mut n = 0;
        while self.pushed < self.k && self.at < self.tokens.len() {
            if let Some(token) = self.tokens[self.at] {
                if !events.push(token, Readiness::READABLE) {
                    break;
                }
                self.pushed += 1;
                n += 1;
            }
            self.at += self.stride;
        }
        n
    }
}

impl Selector for StrideSelector {
    type Source = u32;
    type Error = ();
    fn register(&mut self, token: Token, _: u32, _: Interest) -> Result<(), SourceError> {
        if self.tokens.len() <= token.index() {
            self.tokens.resize(token.index() + 1, None);
        }
        self.tokens[token.index()] = Some(token);
        Ok(())
    }
    fn reregister(
        &mut self,
        _: Token,
        _: u32,
        _: Interest,
        _: Interest,
    ) -> Result<(), SourceError> {
        Ok(())
    }
    fn deregister(&mut self, token: Token, _: u32, _: Interest) {
        self.tokens[token.index()] = None;
    }
    fn select(&mut self, events: &mut Events<'_>, _timeout: Option<Duration>) -> Result<usize, ()> {
        (self.pushed, self.at) = (0, 0);
        Ok(self.push_found(events))
    }
    fn select_more(&mut self, events: &mut Events<'_>) -> usize {
        self.push_found(events)
    }
}

const MAX: usize = 4096;
const SIZES: [usize; 5] = [16, 64, 256, 1024, 4096];

type R = Reactor<With<StrideSelector, NullSocket>, Counter, MAX>;

/// A reactor with `n` channels in `mode`, `k` of them reported ready per pass.
fn reactor(n: usize, k: usize, mode: InterestMode) -> Box<R> {
    let mut r: Box<R> = Box::new(Reactor::new(StrideSelector {
        k,
        stride: (n / k.max(1)).max(1),
        tokens: Vec::with_capacity(MAX),
        pushed: 0,
        at: 0,
    }));
    for i in 0..n {
        r.add(NullSocket(i as u32), Counter { reads: 0, mode })
            .expect("room for every channel");
    }
    r
}

/// The two interest modes, with the name their results are filed under.
const MODES: [(&str, InterestMode); 2] = [
    ("dispatch", InterestMode::EveryPass),
    ("dispatch-on-change", InterestMode::OnChange),
];

fn ks(n: usize) -> [usize; 3] {
    [0, (n / 16).max(1), n]
}

fn bench(c: &mut Criterion) {
    for (name, mode) in MODES {
        let mut group = c.benchmark_group(name);
        for n in SIZES {
            for k in ks(n) {
                let mut r = reactor(n, k, mode);
                group.throughput(Throughput::Elements(n as u64));
                group.bench_with_input(BenchmarkId::new(format!("n{n}"), k), &k, |b, _| {
                    b.iter(|| black_box(r.poll_once(Some(Duration::ZERO)).unwrap()));
                });
            }
        }
        group.finish();
    }
}

/// The mean of one criterion result, in ns.
fn mean_ns(
    dir: &std::path::Path,
    group: &str,
    since: SystemTime,
    n: usize,
    k: usize,
) -> Option<f64> {
    let path = dir
        .join(group)
        .join(format!("n{n}"))
        .join(k.to_string())
        .join("new")
        .join("estimates.json");
    // Only results of this run (a filtered or `--test` run leaves old ones alone).
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let mean = &text[text.find("\"mean\"")?..];
    let v = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = v.find([',', '}'])?;
    v[..end].trim().parse().ok()
}

fn summary(dir: &std::path::Path, since: SystemTime) {
    for (group, mode) in MODES {
        println!();
        println!("{mode:?}:");
        println!("| N | pass, none ready | ns/channel/pass | ns/event (K=N/16) | ns/event (K=N) |");
        println!("|---:|---:|---:|---:|---:|");
        for n in SIZES {
            let [k0, k1, k2] = ks(n);
            let (Some(t0), Some(t1), Some(t2)) = (
                mean_ns(dir, group, since, n, k0),
                mean_ns(dir, group, since, n, k1),
                mean_ns(dir, group, since, n, k2),
            ) else {
                continue;
            };
            println!(
                "| {n} | {t0:.0} ns | {:.2} | {:.2} | {:.2} |",
                t0 / n as f64,
                (t1 - t0) / k1 as f64,
                (t2 - t0) / k2 as f64,
            );
        }
    }
}

/// `DISPATCH_PASSES=N,K,PASSES`: run only that many passes, no criterion (for
/// `valgrind --tool=callgrind`, whose instruction counts do not care about a busy
/// machine); `DISPATCH_MODE=on-change` for channels in [`InterestMode::OnChange`].
fn passes_only(spec: &str) {
    let v: Vec<usize> = spec.split(',').filter_map(|x| x.parse().ok()).collect();
    let &[n, k, passes] = v.as_slice() else {
        panic!("DISPATCH_PASSES=N,K,PASSES");
    };
    let mode = match std::env::var("DISPATCH_MODE").as_deref() {
        Ok("on-change") => InterestMode::OnChange,
        _ => InterestMode::EveryPass,
    };
    let mut r = reactor(n, k, mode);
    for _ in 0..passes {
        black_box(r.poll_once(Some(Duration::ZERO)).unwrap());
    }
}

fn main() {
    if let Ok(spec) = std::env::var("DISPATCH_PASSES") {
        return passes_only(&spec);
    }
    let since = SystemTime::now();
    // target/<profile>/deps/dispatch-HASH → target/criterion-dispatch
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.parent()?.join("criterion-dispatch")))
        .unwrap_or_else(|| PathBuf::from("target/criterion-dispatch"));
    let mut c = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    summary(&dir, since);
}
