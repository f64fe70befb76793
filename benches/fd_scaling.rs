//! fd scaling, in the style of libevent's classic `bench.c`: N socket pairs, A of
//! them active; each read of one byte writes one byte to the next pair, so A bytes
//! circulate for ever. The figures are wall-clock time per pass and per event (one
//! read callback) as N grows, and (under callgrind) user-space instructions per pass,
//! for our reactor on every backend in both interest modes, for a raw loop on each
//! system call, and for mio.
//!
//! The rows, each on fresh pairs:
//!
//! | row | what |
//! |---|---|
//! | `raw-select`, `raw-poll`, `raw-epoll` | a loop written directly on the call: per ready fd read one byte and write one byte, nothing else; it stops looking once it has seen as many ready fds as the call reported, and select's set is built once and copied each pass |
//! | `select-everypass`, `poll-everypass`, `epoll-everypass` | our reactor, every channel asked for its interest every pass (`InterestMode::EveryPass`, the original's contract) |
//! | `select-onchange`, `poll-onchange`, `epoll-onchange` | our reactor, channels asked on change only (`InterestMode::OnChange`: a `Link` always wants to read, so after the first pass nobody is asked) |
//! | `mio` | mio 1.2 as its docs use it: `Poll`, `Events::with_capacity(1024)`, each read end a `mio::net::UnixStream` registered `READABLE` (edge-triggered) with its index as the token, a loop over `poll.poll(&mut events, timeout)` |
//!
//! select rows only run where the read ends fit below `FD_SETSIZE`. The columns:
//! ns/pass and ns/event (wall clock over the row's measured passes: 250 ms by
//! default, `--ms`, after a warm-up of a fifth of that), events/pass (A, unless a byte
//! was lost), and ×raw, the row's ns/event over that of the raw loop on the same call
//! (mio's over raw epoll's). Every wait has a 1 s timeout, so a lost byte would show.
//! The bytes start half a space in (see `start`), so a loop that stops scanning at
//! the last ready fd is not measured in its best case.
//!
//! ```text
//! cargo bench --bench fd_scaling                      # the default matrix, ~15 s
//! cargo bench --bench fd_scaling -- --ms 300 --n 100,1000,10000 --active 1,100
//! cargo bench --bench fd_scaling -- --only raw-poll,poll-onchange
//! benches/fd_scaling_instr.sh                         # instructions per pass, ~40 s
//! ```
//!
//! `--passes K --only ROW --n N --active A` runs exactly K passes of one row after
//! its setup and a short warm-up, each pass through the `#[inline(never)]`
//! `measured_pass`, and prints `instr-run n=.. a=.. row=.. passes=.. events=..`:
//! what `benches/fd_scaling_instr.sh` runs under `valgrind --tool=callgrind
//! --collect-atstart=no --toggle-collect=*measured_pass*`, so that only the passes
//! are counted (not the setup of 10,000 pairs, nor the warm-up).
//!
//! The write ends are moved above `FD_SETSIZE` (`F_DUPFD_CLOEXEC`), so up to ~1,000
//! read ends fit below it for `select(2)`. N pairs need 2N fds (N + 1,024 while
//! N < 1,024) plus 64 of headroom; `RLIMIT_NOFILE` is raised to its hard limit, and
//! a size that does not fit runs with the most pairs that do, and says so (the hard
//! limit, and how many fds the size would need). Raising the hard limit needs
//! `CAP_SYS_RESOURCE`; nothing here works around it. The reactors hold up to
//! `CAP` = 50,048 channels (boxed: 3.6 MiB over poll), so 50,000 pairs run where
//! 100,064 fds are allowed.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use asyncore::{
    Ctx, Dispatcher, EpollSelector, Error, InterestMode, PollSelector, Reactor, Recv,
    SelectSelector, Selector, StdSocket, With,
};
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use nix::sys::resource::{Resource, getrlimit, rlim_t, setrlimit};
use nix::sys::select::FD_SETSIZE;

/// Events (read callbacks) so far.
static EVENTS: AtomicU64 = AtomicU64::new(0);

/// How many channels our reactors (and `PollSelector`, `EpollSelector`) hold: room
/// for 50,000 pairs.
const CAP: usize = 50_048;

/// Fds kept free beyond the pairs (stdio, an epoll fd, valgrind's own).
const HEADROOM: usize = 64;

/// The longest any wait may block: a lost byte would show as a 1 s pass.
const WAIT: Option<Duration> = Some(Duration::from_secs(1));
const WAIT_MS: libc::c_int = 1000;

/// Reads the byte, passes one on to the next pair.
#[derive(Debug)]
struct Link {
    next: RawFd,
    /// Asks for its interest on change only.
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

impl Pairs {
    fn new(n: usize) -> Result<Pairs, String> {
        let mut reads = Vec::with_capacity(n);
        let mut writes = Vec::with_capacity(n);
        for _ in 0..n {
            let (r, w) = StdSocket::pair().map_err(|e| format!("socketpair: {e}"))?;
            let w = w.into_fd().ok_or("closed")?;
            let high = fcntl(w.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(FD_SETSIZE as RawFd))
                .map_err(|e| format!("F_DUPFD_CLOEXEC: {e}"))?;
            drop(w);
            // SAFETY: `high` is a fresh fd that nothing else owns.
            writes.push(unsafe { OwnedFd::from_raw_fd(high) });
            reads.push(r);
        }
        Ok(Pairs { reads, writes })
    }

    /// The read ends' fd numbers.
    fn read_fds(&self) -> Vec<RawFd> {
        self.reads
            .iter()
            .map(|s| s.fd().map_or(-1, |f| f.as_raw_fd()))
            .collect()
    }

    /// For each pair, the write end of the next one.
    fn nexts(&self) -> Vec<RawFd> {
        let n = self.writes.len();
        (0..n)
            .map(|i| self.writes[(i + 1) % n].as_raw_fd())
            .collect()
    }
}

/// Puts `active` bytes into circulation, evenly spaced (each advances one pair per
/// pass, so no read end ever holds two), the first half a space in: a loop that stops
/// looking once it has seen every ready fd (ours, the raw ones) scans up to the last
/// byte, and a run too short for the bytes to go round (200 passes over 10,000
/// pairs) would otherwise measure only the best case of one byte near the start.
fn start(writes: &[OwnedFd], active: usize) {
    let space = writes.len() / active;
    for i in 0..active {
        pass_on(writes[i * space + space / 2].as_raw_fd());
    }
}

fn raw_read(fd: RawFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: reading into a valid one-byte buffer.
    unsafe { libc::read(fd, b.as_mut_ptr().cast(), 1) == 1 }
}

/// One loop over N pairs, set up with its bytes in circulation.
trait Row {
    /// One pass: one wait, then every ready read end read and passed on.
    fn pass(&mut self);
}

/// The pass that is timed and, under callgrind, counted (`--toggle-collect`): the
/// rows' `pass` is `#[inline(always)]`, so this is the whole pass.
#[inline(never)]
fn measured_pass<R: Row>(row: &mut R) {
    row.pass();
}

/// `select(2)` on every read end: a set built once, copied each pass.
struct RawSelect {
    set: libc::fd_set,
    reads: Vec<RawFd>,
    nfds: libc::c_int,
    next: Vec<RawFd>,
    _pairs: Pairs,
}

impl RawSelect {
    fn new(p: Pairs, active: usize) -> Result<RawSelect, String> {
        let reads = p.read_fds();
        let high = reads.iter().copied().max().unwrap_or(0);
        if reads
            .iter()
            .any(|&fd| usize::try_from(fd).map_or(true, |fd| fd >= FD_SETSIZE))
        {
            return Err(format!("read end {high} is not below FD_SETSIZE"));
        }
        // SAFETY: an all-zero `fd_set` is an empty one; every fd is in
        // 0..FD_SETSIZE (checked above), so FD_SET stays inside the set.
        let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
        for &fd in &reads {
            // SAFETY: as above.
            unsafe { libc::FD_SET(fd, &mut set) };
        }
        start(&p.writes, active);
        Ok(RawSelect {
            set,
            reads,
            nfds: high + 1,
            next: p.nexts(),
            _pairs: p,
        })
    }
}

impl Row for RawSelect {
    #[inline(always)]
    fn pass(&mut self) {
        let mut set = self.set;
        let mut tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: `set` and `tv` are valid for the call; `nfds` bounds the set.
        let rc = unsafe {
            libc::select(
                self.nfds,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            )
        };
        let mut left = rc;
        for (i, &fd) in self.reads.iter().enumerate() {
            if left <= 0 {
                break;
            }
            // SAFETY: `fd` is in 0..FD_SETSIZE (checked in `new`).
            if unsafe { libc::FD_ISSET(fd, &set) } {
                left -= 1;
                if raw_read(fd) {
                    EVENTS.fetch_add(1, Ordering::Relaxed);
                    pass_on(self.next[i]);
                }
            }
        }
    }
}

/// `poll(2)` on one `pollfd` array, built once.
struct RawPoll {
    fds: Vec<libc::pollfd>,
    next: Vec<RawFd>,
    _pairs: Pairs,
}

impl RawPoll {
    fn new(p: Pairs, active: usize) -> RawPoll {
        let fds = p
            .read_fds()
            .into_iter()
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        start(&p.writes, active);
        RawPoll {
            fds,
            next: p.nexts(),
            _pairs: p,
        }
    }
}

impl Row for RawPoll {
    #[inline(always)]
    fn pass(&mut self) {
        let n = self.fds.len() as libc::nfds_t;
        // SAFETY: `fds` is a valid array of `n` pollfds.
        let rc = unsafe { libc::poll(self.fds.as_mut_ptr(), n, WAIT_MS) };
        let mut left = rc;
        for (i, pfd) in self.fds.iter().enumerate() {
            if left <= 0 {
                break;
            }
            if pfd.revents != 0 {
                left -= 1;
                if pfd.revents & libc::POLLIN != 0 && raw_read(pfd.fd) {
                    EVENTS.fetch_add(1, Ordering::Relaxed);
                    pass_on(self.next[i]);
                }
            }
        }
    }
}

/// `epoll(7)`, level-triggered, each read end added once with its index.
struct RawEpoll {
    epfd: OwnedFd,
    events: Vec<libc::epoll_event>,
    reads: Vec<RawFd>,
    next: Vec<RawFd>,
    _pairs: Pairs,
}

impl RawEpoll {
    fn new(p: Pairs, active: usize) -> Result<RawEpoll, String> {
        // SAFETY: no pointer; a new fd or -1.
        let rc = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if rc < 0 {
            return Err(format!(
                "epoll_create1: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `rc` is a fresh fd that nothing else owns.
        let epfd = unsafe { OwnedFd::from_raw_fd(rc) };
        let reads = p.read_fds();
        for (i, &fd) in reads.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: `ev` lives on this frame for the call; the kernel copies it.
            let rc = unsafe { libc::epoll_ctl(epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
            if rc != 0 {
                return Err(format!("epoll_ctl: {}", std::io::Error::last_os_error()));
            }
        }
        start(&p.writes, active);
        Ok(RawEpoll {
            epfd,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; reads.len()],
            reads,
            next: p.nexts(),
            _pairs: p,
        })
    }
}

impl Row for RawEpoll {
    #[inline(always)]
    fn pass(&mut self) {
        let room = libc::c_int::try_from(self.events.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `events` holds `room` or more initialised entries the kernel may
        // write.
        let rc = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                room,
                WAIT_MS,
            )
        };
        for ev in &self.events[..usize::try_from(rc).unwrap_or(0)] {
            let i = ev.u64 as usize;
            if raw_read(self.reads[i]) {
                EVENTS.fetch_add(1, Ordering::Relaxed);
                pass_on(self.next[i]);
            }
        }
    }
}

/// Our reactor over `Sel`, boxed (it is `CAP` channels wide).
struct Ours<Sel: Selector<Source = RawFd>, const M: usize> {
    reactor: Box<Reactor<With<Sel, StdSocket>, Link, M>>,
    _writes: Vec<OwnedFd>,
}

impl<Sel: Selector<Source = RawFd>, const M: usize> Ours<Sel, M> {
    fn new(sel: Sel, on_change: bool, p: Pairs, active: usize) -> Result<Self, String> {
        let next = p.nexts();
        let mut reactor: Box<Reactor<With<Sel, StdSocket>, Link, M>> = Box::new(Reactor::new(sel));
        for (i, s) in p.reads.into_iter().enumerate() {
            let link = Link {
                next: next[i],
                on_change,
            };
            if reactor.add(s, link).is_err() {
                return Err(format!("cannot add channel {i}"));
            }
        }
        start(&p.writes, active);
        Ok(Ours {
            reactor,
            _writes: p.writes,
        })
    }
}

impl<Sel: Selector<Source = RawFd>, const M: usize> Row for Ours<Sel, M> {
    #[inline(always)]
    fn pass(&mut self) {
        if self.reactor.poll_once(WAIT).is_err() {
            panic!("poll_once failed");
        }
    }
}

impl<Sel: Selector<Source = RawFd>, const M: usize> Drop for Ours<Sel, M> {
    fn drop(&mut self) {
        let _ = self.reactor.close_all();
    }
}

/// mio as its docs show it: one `Poll`, `Events::with_capacity(1024)`, every read
/// end a `mio::net::UnixStream` registered `READABLE` (edge-triggered) with its
/// index as the token.
struct Mio {
    poll: mio::Poll,
    events: mio::Events,
    streams: Vec<mio::net::UnixStream>,
    next: Vec<RawFd>,
    _writes: Vec<OwnedFd>,
}

impl Mio {
    fn new(p: Pairs, active: usize) -> Result<Mio, String> {
        let poll = mio::Poll::new().map_err(|e| format!("mio::Poll::new: {e}"))?;
        let next = p.nexts();
        let mut streams = Vec::with_capacity(p.reads.len());
        for (i, s) in p.reads.into_iter().enumerate() {
            let fd = s.into_fd().ok_or("closed")?;
            // Already non-blocking (`StdSocket::pair`), as `from_std` requires.
            let mut stream =
                mio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(fd));
            poll.registry()
                .register(&mut stream, mio::Token(i), mio::Interest::READABLE)
                .map_err(|e| format!("register: {e}"))?;
            streams.push(stream);
        }
        start(&p.writes, active);
        Ok(Mio {
            poll,
            events: mio::Events::with_capacity(1024),
            streams,
            next,
            _writes: p.writes,
        })
    }
}

impl Row for Mio {
    #[inline(always)]
    fn pass(&mut self) {
        if self.poll.poll(&mut self.events, WAIT).is_err() {
            return;
        }
        for ev in &self.events {
            let i = ev.token().0;
            // Edge-triggered: the socket must be drained. A read shorter than the
            // buffer drains it (as `examples/mio_echo.rs` reads), so one read does:
            // a read end holds one byte.
            let mut b = [0u8; 64];
            if let Ok(n @ 1..) = (&self.streams[i]).read(&mut b) {
                EVENTS.fetch_add(1, Ordering::Relaxed);
                // SAFETY: writing `n` bytes of a valid buffer to an fd number.
                let _ = unsafe { libc::write(self.next[i], b.as_ptr().cast(), n) };
            }
        }
    }
}

/// The rows, in the order printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    RawSelect,
    SelectEvery,
    SelectChange,
    RawPoll,
    PollEvery,
    PollChange,
    RawEpoll,
    EpollEvery,
    EpollChange,
    Mio,
}

const KINDS: [Kind; 10] = [
    Kind::RawSelect,
    Kind::SelectEvery,
    Kind::SelectChange,
    Kind::RawPoll,
    Kind::PollEvery,
    Kind::PollChange,
    Kind::RawEpoll,
    Kind::EpollEvery,
    Kind::EpollChange,
    Kind::Mio,
];

impl Kind {
    /// The row's name (`--only`, the tables).
    fn name(self) -> &'static str {
        match self {
            Kind::RawSelect => "raw-select",
            Kind::SelectEvery => "select-everypass",
            Kind::SelectChange => "select-onchange",
            Kind::RawPoll => "raw-poll",
            Kind::PollEvery => "poll-everypass",
            Kind::PollChange => "poll-onchange",
            Kind::RawEpoll => "raw-epoll",
            Kind::EpollEvery => "epoll-everypass",
            Kind::EpollChange => "epoll-onchange",
            Kind::Mio => "mio",
        }
    }

    /// The raw loop this row is compared with.
    fn raw(self) -> Kind {
        match self {
            Kind::RawSelect | Kind::SelectEvery | Kind::SelectChange => Kind::RawSelect,
            Kind::RawPoll | Kind::PollEvery | Kind::PollChange => Kind::RawPoll,
            _ => Kind::RawEpoll,
        }
    }

    /// Whether it runs on `select(2)` (read ends below FD_SETSIZE only).
    fn is_select(self) -> bool {
        self.raw() == Kind::RawSelect
    }
}

/// How a row is run.
#[derive(Clone, Copy)]
enum Mode {
    /// For this long, after a warm-up of a fifth of it.
    Time(Duration),
    /// Exactly this many measured passes, after a short warm-up.
    Passes(u64),
}

/// What one row did in its measured passes.
struct Outcome {
    passes: u64,
    events: u64,
    ns: f64,
}

impl Outcome {
    fn ns_per_pass(&self) -> f64 {
        self.ns / self.passes.max(1) as f64
    }
    fn ns_per_event(&self) -> f64 {
        self.ns / self.events.max(1) as f64
    }
    fn events_per_pass(&self) -> f64 {
        self.events as f64 / self.passes.max(1) as f64
    }
}

fn drive<R: Row>(mut row: R, mode: Mode) -> Outcome {
    let (warm, budget, count) = match mode {
        Mode::Time(b) => (b / 5, b, u64::MAX),
        Mode::Passes(k) => (Duration::ZERO, Duration::MAX, k),
    };
    let t = Instant::now();
    while t.elapsed() < warm {
        row.pass();
    }
    if let Mode::Passes(_) = mode {
        for _ in 0..16 {
            row.pass();
        }
    }
    let e0 = EVENTS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let mut passes = 0u64;
    while passes < count && (count != u64::MAX || t0.elapsed() < budget) {
        measured_pass(&mut row);
        passes += 1;
    }
    let ns = t0.elapsed().as_nanos() as f64;
    let events = EVENTS.load(Ordering::Relaxed) - e0;
    drop(row);
    Outcome { passes, events, ns }
}

/// Sets up `kind` on `n` fresh pairs, `active` of them active, and runs it.
fn run(kind: Kind, n: usize, active: usize, mode: Mode) -> Result<Outcome, String> {
    let p = Pairs::new(n)?;
    Ok(match kind {
        Kind::RawSelect => drive(RawSelect::new(p, active)?, mode),
        Kind::SelectEvery | Kind::SelectChange => drive(
            Ours::<_, FD_SETSIZE>::new(
                SelectSelector::new(),
                kind == Kind::SelectChange,
                p,
                active,
            )?,
            mode,
        ),
        Kind::RawPoll => drive(RawPoll::new(p, active), mode),
        Kind::PollEvery | Kind::PollChange => drive(
            Ours::<_, CAP>::new(
                PollSelector::<CAP>::new(),
                kind == Kind::PollChange,
                p,
                active,
            )?,
            mode,
        ),
        Kind::RawEpoll => drive(RawEpoll::new(p, active)?, mode),
        Kind::EpollEvery | Kind::EpollChange => drive(
            Ours::<_, CAP>::new(
                EpollSelector::<CAP>::new(),
                kind == Kind::EpollChange,
                p,
                active,
            )?,
            mode,
        ),
        Kind::Mio => drive(Mio::new(p, active)?, mode),
    })
}

fn list(arg: Option<&String>, default: &[usize]) -> Vec<usize> {
    arg.map_or_else(
        || default.to_vec(),
        |s| s.split(',').filter_map(|x| x.parse().ok()).collect(),
    )
}

/// `RLIMIT_NOFILE` after raising the soft limit as far as it goes.
struct Limit {
    /// The soft limit in force, in fds (`RLIM_INFINITY` and anything past `usize`
    /// count as `usize::MAX`).
    soft: usize,
    /// The hard limit, likewise.
    hard: usize,
}

/// Raises `RLIMIT_NOFILE` as far as it goes (the soft limit to the hard one; the hard
/// one too if the process may, which needs `CAP_SYS_RESOURCE`).
fn raise_nofile() -> Limit {
    let fds = |l: rlim_t| usize::try_from(l).unwrap_or(usize::MAX);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    // Enough for CAP pairs.
    let want: rlim_t = rlim_t::try_from(2 * CAP + HEADROOM)
        .unwrap_or(rlim_t::MAX)
        .max(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return Limit {
            soft: fds(want),
            hard: fds(want),
        };
    }
    let soft = if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    Limit {
        soft: fds(soft),
        hard: fds(hard),
    }
}

/// How many fds N pairs need: both ends (the write ends above FD_SETSIZE) and
/// [`HEADROOM`].
fn needed(n: usize) -> usize {
    (2 * n).max(FD_SETSIZE + n) + HEADROOM
}

/// `1,234,567`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    // The reactors are built on the stack before `Box::new` moves them (in debug
    // builds at least): a thread with room for them.
    let t = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(bench)
        .expect("spawn");
    if t.join().is_err() {
        std::process::exit(1);
    }
}

fn bench() {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let kinds: Vec<Kind> = match get("--only") {
        None => KINDS.to_vec(),
        Some(names) => names
            .split(',')
            .map(|name| {
                KINDS
                    .into_iter()
                    .find(|k| k.name() == name)
                    .unwrap_or_else(|| {
                        let all: Vec<_> = KINDS.iter().map(|k| k.name()).collect();
                        eprintln!("unknown row {name}; rows: {}", all.join(", "));
                        std::process::exit(2)
                    })
            })
            .collect(),
    };
    let limit = raise_nofile();
    if let Some(k) = get("--passes") {
        let k: u64 = k.parse().expect("--passes K");
        let n = list(get("--n"), &[1000])[0];
        let a = list(get("--active"), &[1])[0];
        instr_run(&kinds, n, a, k, &limit);
        return;
    }
    let budget = Duration::from_millis(get("--ms").and_then(|s| s.parse().ok()).unwrap_or(250));
    let sizes = list(get("--n"), &[1000, 10_000, 50_000]);
    let actives = list(get("--active"), &[1, 100]);
    let reactor = std::mem::size_of::<Reactor<With<PollSelector<CAP>, StdSocket>, Link, CAP>>();
    println!(
        "fd scaling: N socket pairs, A active, one byte passed on per read; {} ms per row \
         after a {} ms warm-up; RLIMIT_NOFILE {} (hard {}); reactors of {} channels \
         ({:.1} MiB over poll, boxed)",
        budget.as_millis(),
        (budget / 5).as_millis(),
        thousands(limit.soft),
        thousands(limit.hard),
        thousands(CAP),
        reactor as f64 / f64::from(1 << 20),
    );
    println!();
    println!("| N | A | row | ns/pass | ns/event | events/pass | ×raw |");
    println!("|---:|---:|---|---:|---:|---:|---:|");
    let mut done = Vec::new();
    for &asked in &sizes {
        let (n, why) = fit(asked, &limit);
        let again = n.is_some_and(|n| done.contains(&n));
        if let Some(why) = why {
            let again = if again { ", measured above" } else { "" };
            println!("| {asked} | – | – | {why}{again} | | | |");
        }
        let Some(n) = n.filter(|_| !again) else {
            continue;
        };
        done.push(n);
        for &a in actives.iter().filter(|&&a| a >= 1 && a <= n) {
            let mut raws: Vec<(Kind, f64)> = Vec::new();
            for &kind in &kinds {
                if kind.is_select() && !select_fits(n) {
                    continue;
                }
                let o = match run(kind, n, a, Mode::Time(budget)) {
                    Ok(o) => o,
                    Err(e) => {
                        println!("| {n} | {a} | {} | failed: {e} | | | |", kind.name());
                        continue;
                    }
                };
                if kind == kind.raw() {
                    raws.push((kind, o.ns_per_event()));
                }
                let ratio = raws.iter().find(|(k, _)| *k == kind.raw()).map_or_else(
                    || "–".to_string(),
                    |(_, raw)| format!("{:.2}", o.ns_per_event() / raw),
                );
                println!(
                    "| {n} | {a} | {} | {:.0} | {:.0} | {:.1} | {ratio} |",
                    kind.name(),
                    o.ns_per_pass(),
                    o.ns_per_event(),
                    o.events_per_pass(),
                );
            }
        }
    }
}

/// Whether N pairs' read ends fit below FD_SETSIZE (with stdio and some room).
fn select_fits(n: usize) -> bool {
    n + 16 < FD_SETSIZE
}

/// The number of pairs to run for `asked`: `asked`, or the most that fit, or `None`
/// if too few fit; and in the last two cases why.
fn fit(asked: usize, limit: &Limit) -> (Option<usize>, Option<String>) {
    if asked > CAP {
        let why = format!("skipped: above the bench's capacity of {CAP} pairs");
        return (None, Some(why));
    }
    if needed(asked) <= limit.soft {
        return (Some(asked), None);
    }
    let why = if limit.hard < needed(asked) {
        format!(
            "{} pairs need {} fds; RLIMIT_NOFILE's hard limit is {} (raising it needs \
             CAP_SYS_RESOURCE)",
            thousands(asked),
            thousands(needed(asked)),
            thousands(limit.hard),
        )
    } else {
        format!(
            "{} pairs need {} fds; RLIMIT_NOFILE is {} and could not be raised to its \
             hard limit {}",
            thousands(asked),
            thousands(needed(asked)),
            thousands(limit.soft),
            thousands(limit.hard),
        )
    };
    let most = (limit.soft.saturating_sub(HEADROOM) / 2).min(asked);
    if most < 2 || needed(most) > limit.soft {
        return (None, Some(format!("skipped: {why}")));
    }
    (
        Some(most),
        Some(format!("{why}: {} pairs instead", thousands(most))),
    )
}

/// `--passes K`: one row, exactly K measured passes, for callgrind.
fn instr_run(kinds: &[Kind], asked: usize, a: usize, k: u64, limit: &Limit) {
    let [kind] = kinds else {
        eprintln!("--passes needs exactly one row in --only");
        std::process::exit(2);
    };
    let (n, why) = fit(asked, limit);
    if let Some(why) = why {
        eprintln!("N = {asked}: {why}");
    }
    let Some(n) = n else {
        std::process::exit(1);
    };
    if kind.is_select() && !select_fits(n) {
        println!(
            "instr-run n={n} a={a} row={} skipped: above FD_SETSIZE",
            kind.name()
        );
        return;
    }
    match run(*kind, n, a.clamp(1, n), Mode::Passes(k)) {
        Ok(o) => println!(
            "instr-run n={n} a={a} row={} passes={} events={}",
            kind.name(),
            o.passes,
            o.events
        ),
        Err(e) => {
            eprintln!("{}: {e}", kind.name());
            std::process::exit(1);
        }
    }
}
