//! More than 1,024 and more than 10,000 fds through a real `Reactor` on epoll: every
//! fd in the set, a few pairs passing a byte back and forth, each pass dispatching
//! exactly the ready channels and calling no `epoll_ctl`.
//!
//! Its own test binary: it raises the process's `RLIMIT_NOFILE` soft limit. If the
//! hard limit is too low the tests fail and say so; `ASYNCORE_SKIP_MANY_FDS=1` makes
//! them skip with a note instead (never a silent pass).

use std::{
    os::fd::{AsRawFd, RawFd},
    time::Duration,
};

use asyncore_core::{Ctx, Dispatcher, Error, InterestMode, Reactor, Recv};
use asyncore_epoll::{EpollIo, EpollSelector};
use asyncore_std::StdSocket;
use nix::sys::resource::{Resource, getrlimit, rlim_t, setrlimit};

/// Long enough never to be hit on a healthy machine; only bounds a broken test.
const PATIENCE: Option<Duration> = Some(Duration::from_secs(10));

/// Reads what arrives and sends it back: one byte in a pair bounces between its ends.
/// It asks on change (its interest never changes), so a pass costs O(ready).
#[derive(Debug, Default)]
struct Bounce {
    reads: u32,
}

impl Dispatcher<StdSocket> for Bounce {
    type Error = Error;

    fn interest_mode(&self) -> InterestMode {
        InterestMode::OnChange
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 16];
        if let Recv::Data(n) = ctx.recv(&mut buf)? {
            self.reads += 1;
            assert_eq!(ctx.send(&buf[..n])?, n, "a one-byte send fits");
        }
        Ok(())
    }
}

/// Raises the soft fd limit so `need` fds fit. Returns `false` (with a note) only
/// when it cannot and `ASYNCORE_SKIP_MANY_FDS=1` is set; otherwise it fails.
fn raise_fd_limit(need: usize) -> bool {
    let need = rlim_t::try_from(need).expect("fits rlim_t");
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft >= need {
        return true;
    }
    if hard >= need {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("raise RLIMIT_NOFILE");
        return true;
    }
    let why = format!(
        "RLIMIT_NOFILE hard limit {hard} < {need} fds this test needs: raise it \
         (`ulimit -Hn`, limits.conf, the container's nofile) or set \
         ASYNCORE_SKIP_MANY_FDS=1 to skip"
    );
    if std::env::var_os("ASYNCORE_SKIP_MANY_FDS").is_some_and(|v| v == "1") {
        println!("note: skipped: {why}");
        return false;
    }
    panic!("{why}");
}

/// `pairs` socket pairs, both ends channels of one reactor of `N` slots over
/// `EpollSelector<E>`; the highest fd must reach `above`. A byte bounces in
/// `bouncing` of the pairs (the first, the last, and others spread between).
fn bounce_through_a_reactor<const N: usize, const E: usize>(
    pairs: usize,
    above: RawFd,
    bouncing: usize,
) {
    assert!((2..=pairs).contains(&bouncing) && bouncing <= E);
    assert!(2 * pairs <= N);
    if !raise_fd_limit(2 * pairs + 256) {
        return;
    }
    let mut r: Box<Reactor<EpollIo<E>, Bounce, N>> = Box::new(Reactor::new(EpollSelector::new()));
    let mut tokens = Vec::with_capacity(pairs);
    let mut highest = 0;
    for _ in 0..pairs {
        let (a, b) = StdSocket::pair().expect("socketpair");
        highest = highest.max(a.as_raw_fd()).max(b.as_raw_fd());
        let ta = r
            .add(a, Bounce::default())
            .map_err(|e| e.kind)
            .expect("add");
        let tb = r
            .add(b, Bounce::default())
            .map_err(|e| e.kind)
            .expect("add");
        tokens.push((ta, tb));
    }
    assert!(
        highest > above,
        "highest fd {highest}, wanted above {above}"
    );
    let channels = 2 * pairs;
    assert_eq!(r.len(), channels);
    assert_eq!(r.selector().registered(), channels);
    assert_eq!(
        r.selector().watched(),
        channels,
        "every fd in the epoll set"
    );
    assert_eq!(r.selector().ctl_calls(), channels as u64, "one ADD each");

    // Nothing to read anywhere.
    assert_eq!(r.poll_once(Some(Duration::ZERO)).expect("pass"), 0);

    // A byte into the first, the last (it has the highest fds) and pairs spread
    // between.
    let active: Vec<usize> = (0..bouncing)
        .map(|i| i * (pairs - 1) / (bouncing - 1))
        .collect();
    for &p in &active {
        let fd = r.get(tokens[p].0).expect("channel").socket.as_raw_fd();
        let sent = nix::sys::socket::send(fd, b"!", nix::sys::socket::MsgFlags::MSG_NOSIGNAL)
            .expect("send");
        assert_eq!(sent, 1);
    }
    // Each pass: exactly one end of each active pair holds the byte, so exactly
    // `active.len()` channels are ready among thousands, and only they are reported
    // (more than a reactor's batch of events when `bouncing` > 64: in several
    // batches of the same pass).
    const PASSES: usize = 40;
    let waits = r.selector().waits();
    let total_reads = |r: &Reactor<EpollIo<E>, Bounce, N>| -> u32 {
        tokens
            .iter()
            .flat_map(|&(ta, tb)| [ta, tb])
            .map(|t| r.get(t).expect("channel").dispatcher.reads)
            .sum()
    };
    for pass in 0..PASSES {
        let before = total_reads(&r);
        let n = r.poll_once(PATIENCE).expect("pass");
        // Counted over every batch of the pass, not only the last one `events()`
        // shows: each active pair's ready end is dispatched, and nothing else.
        assert_eq!(n, active.len(), "pass {pass}");
        assert_eq!(total_reads(&r) - before, active.len() as u32, "pass {pass}");
        for e in r.events() {
            assert!(
                active.iter().any(|&p| [tokens[p].0, tokens[p].1]
                    .iter()
                    .any(|t| t.index() == e.slot() as usize)),
                "pass {pass}: {e:?} is not an active pair's"
            );
        }
    }
    assert_eq!(r.selector().waits(), waits + PASSES as u64);
    assert_eq!(
        r.selector().ctl_calls(),
        channels as u64,
        "no epoll_ctl while interest stays the same"
    );

    for (p, &(ta, tb)) in tokens.iter().enumerate() {
        let reads = |t| r.get(t).expect("channel").dispatcher.reads;
        let (ra, rb) = (reads(ta), reads(tb));
        if active.contains(&p) {
            // The byte went a → b first: b read on passes 1, 3, ..., a on 2, 4, ...
            assert_eq!((ra, rb), (PASSES as u32 / 2, PASSES as u32 / 2), "pair {p}");
        } else {
            assert_eq!((ra, rb), (0, 0), "pair {p} was never written to");
        }
    }

    // Closing every channel deregisters each (one DEL) before closing its fd.
    r.close_all().expect("close_all");
    assert!(r.is_empty());
    assert_eq!(r.selector().registered(), 0);
    assert_eq!(r.selector().watched(), 0);
    assert_eq!(r.selector().ctl_calls(), 2 * channels as u64);
    assert_eq!(
        r.selector().last_ctl_error(),
        None,
        "every DEL found its fd"
    );
}

/// Runs `f` on a thread with room for a large reactor built on the stack first
/// (debug builds construct `Box::new`'s argument there).
fn with_big_stack(f: fn()) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the test thread panicked");
}

#[test]
fn more_than_1024_fds() {
    // 1,200 fds: above FD_SETSIZE, which select(2) cannot watch at all.
    // 100 pairs bounce: more ready channels per pass than one batch of events.
    with_big_stack(|| bounce_through_a_reactor::<1200, 1200>(600, 1024, 100));
}

#[test]
fn more_than_10000_fds() {
    // 10,200 fds, in a set of which 3 are ready per pass; E = 64 < N: the set is
    // far larger than what one wait may report.
    with_big_stack(|| bounce_through_a_reactor::<10_200, 64>(5_100, 10_000, 3));
}
