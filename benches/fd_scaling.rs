//! fd scaling, in the style of libevent's classic `bench.c`: N socket pairs, A of
//! them active; each read of one byte writes one byte to the next pair, so A bytes
//! circulate for ever. The figure is wall-clock time per event (one read callback)
//! as N grows, for our reactor and for a raw loop on the same system call.
//!
//! On `select(2)` and `poll(2)` the channels ask for their interest every pass (the
//! default, the original's contract); on `epoll(7)` they ask on change
//! (`InterestMode::OnChange`: a `Link` always wants to read), so neither the kernel
//! nor the reactor looks at idle channels and a pass costs O(active).
//!
//! ```text
//! cargo bench --bench fd_scaling                      # the default matrix, ~30 s
//! cargo bench --bench fd_scaling -- --ms 300 --n 100,1000,10000 --active 1,100
//! ```
//!
//! The write ends are moved above `FD_SETSIZE` (`F_DUPFD_CLOEXEC`), so up to ~1,000
//! read ends fit below it for `select(2)`; `RLIMIT_NOFILE` is raised as far as
//! allowed, and sizes that do not fit are skipped (and said so).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use asyncore::{
    Ctx, Dispatcher, EpollSelector, Error, InterestMode, PollSelector, Reactor, Recv,
    SelectSelector, Selector, StdSocket, With,
};
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use nix::sys::resource::{Resource, getrlimit, rlim_t, setrlimit};
use nix::sys::select::{FD_SETSIZE, FdSet};

/// Events (read callbacks) so far.
static EVENTS: AtomicU64 = AtomicU64::new(0);

/// Reads the byte, passes one on to the next pair.
#[derive(Debug)]
struct Link {
    next: RawFd,
    /// Asks for its interest on change only (the epoll rows).
    on_change: bool,
}

fn pass_on(fd: RawFd) {
    // SAFETY: writing one byte from a valid buffer to an fd number; a bad fd only
    // yields an error.
    let _ = unsafe { libc::write(fd, b"e".as_ptr().cast(), 1) };
}

impl Dispatcher<StdSocket> for Link {
    type Error = Error;
    fn interest_mode(&self) -> InterestMode {
        if self.on_change {
            InterestMode::OnChange
        } else {
            InterestMode::EveryPass
        }
    }
    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let mut b = [0u8; 1];
        if let Recv::Data(1) = ctx.recv(&mut b)? {
            EVENTS.fetch_add(1, Ordering::Relaxed);
            pass_on(self.next);
        }
        Ok(())
    }
}

/// N pairs: the read ends (low fds) and the write ends (moved above FD_SETSIZE).
struct Pairs {
    reads: Vec<StdSocket>,
    writes: Vec<OwnedFd>,
}

fn pairs(n: usize) -> Result<Pairs, String> {
    let mut reads = Vec::with_capacity(n);
    let mut writes = Vec::with_capacity(n);
    for _ in 0..n {
        let (r, w) = StdSocket::pair().map_err(|e| format!("socketpair: {e}"))?;
        let w = w.into_fd().ok_or("closed")?;
        let high = fcntl(w.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(FD_SETSIZE as RawFd))
            .map_err(|e| format!("F_DUPFD_CLOEXEC: {e}"))?;
        drop(w);
        // SAFETY: `high` is a fresh fd that nothing else owns.
        writes.push(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high) });
        reads.push(r);
    }
    Ok(Pairs { reads, writes })
}

/// Puts `active` bytes into circulation, evenly spaced.
fn start(writes: &[OwnedFd], active: usize) {
    let space = writes.len() / active;
    for i in 0..active {
        pass_on(writes[i * space].as_raw_fd());
    }
}

/// Runs `pass` until `budget` has elapsed (after a warm-up); returns ns per event and
/// events per pass.
fn measure(budget: Duration, mut pass: impl FnMut()) -> (f64, f64) {
    let warm = Instant::now();
    while warm.elapsed() < budget / 5 {
        pass();
    }
    let e0 = EVENTS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let mut passes = 0u64;
    while t0.elapsed() < budget {
        pass();
        passes += 1;
    }
    let ns = t0.elapsed().as_nanos() as f64;
    let events = (EVENTS.load(Ordering::Relaxed) - e0).max(1) as f64;
    (ns / events, events / passes.max(1) as f64)
}

const CAP: usize = 10_240;
const WAIT: Option<Duration> = Some(Duration::from_secs(1));

fn ours<Sel, const M: usize>(
    sel: Sel,
    on_change: bool,
    p: Pairs,
    active: usize,
    budget: Duration,
) -> (f64, f64)
where
    Sel: Selector<Source = RawFd>,
    Sel::Error: std::fmt::Debug,
{
    let n = p.reads.len();
    let mut r: Box<Reactor<With<Sel, StdSocket>, Link, M>> = Box::new(Reactor::new(sel));
    let Pairs { reads, writes } = p;
    for (i, s) in reads.into_iter().enumerate() {
        let next = writes[(i + 1) % n].as_raw_fd();
        if r.add(s, Link { next, on_change }).is_err() {
            panic!("cannot add channel {i}");
        }
    }
    start(&writes, active);
    let out = measure(budget, || {
        r.poll_once(WAIT).expect("wait");
    });
    let _ = r.close_all();
    out
}

fn raw_read(fd: RawFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: reading into a valid one-byte buffer.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) == 1 }
}

fn raw_poll(p: Pairs, active: usize, budget: Duration) -> (f64, f64) {
    let n = p.reads.len();
    let mut fds: Vec<libc::pollfd> = p
        .reads
        .iter()
        .map(|s| libc::pollfd {
            fd: s.fd().map_or(-1, |f| f.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let next: Vec<RawFd> = (0..n).map(|i| p.writes[(i + 1) % n].as_raw_fd()).collect();
    start(&p.writes, active);
    measure(budget, || {
        // SAFETY: `fds` is a valid array of `n` pollfds.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), n as libc::nfds_t, 1000) };
        if rc <= 0 {
            return;
        }
        for (i, pfd) in fds.iter_mut().enumerate() {
            if pfd.revents & libc::POLLIN != 0 && raw_read(pfd.fd) {
                EVENTS.fetch_add(1, Ordering::Relaxed);
                pass_on(next[i]);
            }
        }
    })
}

fn raw_select(p: Pairs, active: usize, budget: Duration) -> (f64, f64) {
    let n = p.reads.len();
    let reads: Vec<_> = p.reads.iter().map(|s| s.fd().expect("open")).collect();
    let nfds = reads.iter().map(|f| f.as_raw_fd()).max().unwrap_or(0) + 1;
    let next: Vec<RawFd> = (0..n).map(|i| p.writes[(i + 1) % n].as_raw_fd()).collect();
    start(&p.writes, active);
    measure(budget, || {
        let mut set = FdSet::new();
        for fd in &reads {
            set.insert(*fd);
        }
        let mut tv = nix::sys::time::TimeVal::new(1, 0);
        if nix::sys::select::select(nfds, &mut set, None, None, &mut tv).unwrap_or(0) <= 0 {
            return;
        }
        for (i, fd) in reads.iter().enumerate() {
            if set.contains(*fd) && raw_read(fd.as_raw_fd()) {
                EVENTS.fetch_add(1, Ordering::Relaxed);
                pass_on(next[i]);
            }
        }
    })
}

fn raw_epoll(p: Pairs, active: usize, budget: Duration) -> (f64, f64) {
    let n = p.reads.len();
    // SAFETY: no pointer; a new fd or -1.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(
        epfd >= 0,
        "epoll_create1: {}",
        std::io::Error::last_os_error()
    );
    let reads: Vec<RawFd> = p
        .reads
        .iter()
        .map(|s| s.fd().map_or(-1, |f| f.as_raw_fd()))
        .collect();
    for (i, &fd) in reads.iter().enumerate() {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: `ev` lives on this frame for the call; the kernel copies it.
        let rc = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        assert_eq!(rc, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
    }
    let next: Vec<RawFd> = (0..n).map(|i| p.writes[(i + 1) % n].as_raw_fd()).collect();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; n];
    start(&p.writes, active);
    let out = measure(budget, || {
        // SAFETY: `events` holds `n` initialised entries the kernel may write.
        let rc = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), n as libc::c_int, 1000) };
        for ev in &events[..usize::try_from(rc).unwrap_or(0)] {
            let i = ev.u64 as usize;
            if raw_read(reads[i]) {
                EVENTS.fetch_add(1, Ordering::Relaxed);
                pass_on(next[i]);
            }
        }
    });
    // SAFETY: `epfd` is ours and closed once.
    unsafe { libc::close(epfd) };
    out
}

fn list(arg: Option<&String>, default: &[usize]) -> Vec<usize> {
    arg.map_or_else(
        || default.to_vec(),
        |s| s.split(',').filter_map(|x| x.parse().ok()).collect(),
    )
}

/// Raises `RLIMIT_NOFILE` as far as it goes; returns the soft limit in force as a
/// number of fds (`RLIM_INFINITY` and anything past `usize` count as `usize::MAX`).
fn raise_nofile() -> usize {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    let want: rlim_t = 65_536.max(hard);
    let limit = if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        want
    } else if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    usize::try_from(limit).unwrap_or(usize::MAX)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let budget = Duration::from_millis(get("--ms").and_then(|s| s.parse().ok()).unwrap_or(250));
    let sizes = list(get("--n"), &[100, 1000, 2500, 5000, 10_000]);
    let actives = list(get("--active"), &[1, 100]);
    let limit = raise_nofile();
    println!(
        "fd scaling: N socket pairs, A active, one byte passed on per read; {} ms per cell; \
         RLIMIT_NOFILE {limit}",
        budget.as_millis()
    );
    println!();
    println!("| N | A | backend | ours ns/event | raw ns/event | ours/raw | events/pass |");
    println!("|---:|---:|---|---:|---:|---:|---:|");
    for &asked in &sizes {
        // Both ends of every pair, the write ends above FD_SETSIZE, and some room.
        let fits = |n: usize| (2 * n).max(FD_SETSIZE + n) + 64 <= limit;
        let n = if fits(asked) {
            asked
        } else {
            let most = limit.saturating_sub(64) / 2;
            if most < 2 || !fits(most) {
                println!("| {asked} | – | – | skipped: RLIMIT_NOFILE {limit} | | | |");
                continue;
            }
            println!("| {asked} | – | – | RLIMIT_NOFILE {limit}: {most} pairs instead | | | |");
            most
        };
        if n > CAP {
            println!("| {n} | – | – | skipped: above the bench's capacity {CAP} | | | |");
            continue;
        }
        for &a in actives.iter().filter(|&&a| a <= n) {
            // select: only read ends below FD_SETSIZE.
            if n + 16 < FD_SETSIZE {
                let (raw, _) = raw_select(pairs(n).expect("pairs"), a, budget);
                let (us, per) = ours::<_, 1024>(
                    SelectSelector::new(),
                    false,
                    pairs(n).expect("pairs"),
                    a,
                    budget,
                );
                println!(
                    "| {n} | {a} | select | {us:.0} | {raw:.0} | {:.2} | {per:.1} |",
                    us / raw
                );
            }
            let (raw, _) = raw_poll(pairs(n).expect("pairs"), a, budget);
            let (us, per) = ours::<_, CAP>(
                PollSelector::<CAP>::new(),
                false,
                pairs(n).expect("pairs"),
                a,
                budget,
            );
            println!(
                "| {n} | {a} | poll | {us:.0} | {raw:.0} | {:.2} | {per:.1} |",
                us / raw
            );
            let (raw, _) = raw_epoll(pairs(n).expect("pairs"), a, budget);
            let (us, per) = ours::<_, CAP>(
                EpollSelector::<CAP>::new(),
                true,
                pairs(n).expect("pairs"),
                a,
                budget,
            );
            println!(
                "| {n} | {a} | epoll | {us:.0} | {raw:.0} | {:.2} | {per:.1} |",
                us / raw
            );
        }
    }
}
