//! The echo load generator: a closed-loop client (each connection has one message in
//! flight; the next leaves when the echo is complete), over loopback only, bounded in
//! time, that reports round trips/s, p50/p99 latency and the server's CPU time per
//! round trip; and a connect-churn mode (connect, one echo, close).
//!
//! ```text
//! # the whole matrix (servers × connections × message sizes, then churn), as a table:
//! cargo build --release --examples && target/release/examples/loadgen matrix
//! #   [--secs 2] [--warmup 0.5] [--conns 1,10,100,1000] [--sizes 64,4096]
//! #   [--servers raw-poll,ours-poll,raw-select,ours-select,raw-epoll,ours-epoll,mio] [--repeat 1]
//! #   [--churn-secs 1.5] [--churn-conc 10] [--no-churn] [--no-pin] [--callgrind]
//! #   [--idle N] [--echo-server PATH]
//! # 100 active connections among 10,000 (9,900 idle), and 1,000 all active:
//! target/release/examples/loadgen matrix --conns 100+9900,1000 --sizes 64 --no-churn \
//!     --servers raw-poll,ours-poll,raw-epoll,ours-epoll,mio --echo-server target/cap20k/release/examples/echo_server
//! # one run against a server already listening (its PID for the CPU figure):
//! target/release/examples/loadgen echo 127.0.0.1:8080 --conns 100 [--idle 9900] --size 64 --secs 2 [--pid PID]
//! target/release/examples/loadgen churn 127.0.0.1:8080 --conc 10 --secs 2 [--pid PID]
//! # as many connections as the fd limits allow on one echo_server --backend epoll, every byte checked:
//! target/release/examples/loadgen many --echo-server target/cap20k/release/examples/echo_server [--conns N] [--rounds 3]
//! ```
//!
//! A `--conns` item `A+I` (or `A` with `--idle I`) opens `I` idle connections before
//! the `A` active ones: each is connected and makes one 1-byte round trip (so the
//! server has accepted and served it), in batches of 128, then sends nothing until
//! the cell ends. The table's conns column then reads `A + I idle`. Both processes
//! need an fd per connection: the cell is refused if `A + I` and a few more do not
//! fit in `RLIMIT_NOFILE`. `--echo-server PATH` runs that binary for `ours-*`: the
//! default `echo_server` holds 2,046 connections; one built with
//! `ASYNCORE_ECHO_CAPACITY=20480` holds 20,478 (`benches/echo_load.sh conns` builds
//! it into `target/cap20k`).
//!
//! `matrix` starts each server itself from the binaries next to its own
//! (`echo_server --quiet --nodelay --backend poll|select|epoll`,
//! `raw_echo --backend poll|select|epoll`,
//! `mio_echo`, all on `127.0.0.1:0`), waits for `listening on ADDR`, pins the server
//! to CPU 0 and itself to CPU 1 (`sched_setaffinity`; not on a one-CPU machine),
//! raises `RLIMIT_NOFILE` to its hard limit (the servers inherit it), and stops
//! each server with `SIGTERM` after its cell. In every cell the raw loop on a system call runs right before our
//! server on the same call, and ratios are ours ÷ raw (mio ÷ raw epoll: both wait
//! on epoll).
//!
//! Server CPU is utime + stime from `/proc/PID/stat` (clock ticks, 10 ms) read before
//! and after the measured window; the window follows a warm-up with every connection
//! open. The load generator's own CPU share over the window is reported too: near
//! 100 % it is the bottleneck (a 2-CPU machine at 10+ connections), and then the
//! server's CPU time per round trip is the meaningful figure, not the rate.
//!
//! `--callgrind` runs every server under `valgrind --tool=callgrind`, counting only
//! during the window (`callgrind_control --instr=on/off`), and adds the servers'
//! user-space instructions per round trip: exact on a noisy machine, but blind to the
//! kernel, which is most of a round trip, and the servers run slower under it.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use nix::libc;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::resource::{Resource, getrlimit, rlim_t, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

// ------------------------------------------------------------------ measurement

/// utime + stime of `pid`, in seconds.
fn cpu_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); `rest` starts at field 3.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// This process's user + system CPU time, in seconds.
fn own_cpu() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// One measured window of a server.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    /// Round trips (or connections) per second.
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    /// Server CPU µs per round trip (or connection); NaN without a PID.
    cpu_us: f64,
    /// The load generator's CPU share of the window, in %.
    gen_cpu: f64,
    count: u64,
    errors: u64,
    /// User-space instructions per round trip (`--callgrind`), NaN otherwise.
    instr: f64,
}

struct Window {
    pid: Option<u32>,
    /// The server runs under callgrind: count its instructions in the window only.
    callgrind: bool,
    t0: Instant,
    cpu0: f64,
    own0: f64,
}

impl Window {
    fn open(pid: Option<u32>) -> Window {
        let callgrind = CALLGRIND.load(Ordering::Relaxed);
        if callgrind && let Some(pid) = pid {
            callgrind_control("--instr=on", pid);
        }
        Window {
            pid,
            callgrind,
            cpu0: pid.and_then(cpu_of).unwrap_or(f64::NAN),
            own0: own_cpu(),
            t0: Instant::now(),
        }
    }

    fn close(self, count: u64, lat: &mut [u32], errors: u64) -> Outcome {
        let secs = self.t0.elapsed().as_secs_f64();
        if self.callgrind
            && let Some(pid) = self.pid
        {
            callgrind_control("--instr=off", pid);
        }
        let cpu = self.pid.and_then(cpu_of).unwrap_or(f64::NAN) - self.cpu0;
        let own = own_cpu() - self.own0;
        lat.sort_unstable();
        let pct = |p: f64| {
            if lat.is_empty() {
                f64::NAN
            } else {
                lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
            }
        };
        Outcome {
            rate: count as f64 / secs,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            cpu_us: cpu * 1e6 / count.max(1) as f64,
            gen_cpu: own * 100.0 / secs,
            count,
            errors,
            instr: f64::NAN,
        }
    }
}

/// `--callgrind`: servers run under `valgrind --tool=callgrind` with collection off
/// except during the measured window, and the table adds user-space instructions per
/// round trip (a figure a busy machine does not disturb; kernel time is not in it).
static CALLGRIND: AtomicBool = AtomicBool::new(false);

fn callgrind_control(arg: &str, pid: u32) {
    let _ = Command::new("callgrind_control")
        .args([arg, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The total instruction count of a callgrind output file.
fn callgrind_total(path: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    field("totals:").or_else(|| field("summary:"))
}

// ------------------------------------------------------------------ closed-loop echo

struct Client {
    stream: TcpStream,
    sent_at: Instant,
    got: usize,
    unsent: usize,
}

fn send_rest(c: &mut Client, msg: &[u8]) -> std::io::Result<()> {
    while c.unsent > 0 {
        match c.stream.write(&msg[msg.len() - c.unsent..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => c.unsent -= n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Idle connections are opened this many at a time: each batch is connected, then
/// every one of them makes its round trip, so the listen backlog never holds more.
const IDLE_BATCH: usize = 128;

/// Opens `n` connections that stay idle: each is connected and makes one 1-byte
/// round trip, so the server has accepted it and served it once before the warm-up;
/// then it sends nothing until it is dropped.
fn open_idle(addr: SocketAddr, n: usize) -> Result<Vec<std::net::TcpStream>, String> {
    let mut idle: Vec<std::net::TcpStream> = Vec::with_capacity(n);
    let mut byte = [0u8; 1];
    while idle.len() < n {
        let first = idle.len();
        for i in first..n.min(first + IDLE_BATCH) {
            let mut s = std::net::TcpStream::connect(addr)
                .map_err(|e| format!("idle connection #{i}: connect: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            s.write_all(b"i")
                .map_err(|e| format!("idle connection #{i}: write: {e}"))?;
            idle.push(s);
        }
        for (i, s) in idle.iter_mut().enumerate().skip(first) {
            match s.read(&mut byte) {
                Ok(1) if byte[0] == b'i' => {}
                Ok(0) => {
                    return Err(format!(
                        "the server closed idle connection #{i} (it holds fewer connections: \
                         its capacity or RLIMIT_NOFILE)"
                    ));
                }
                Ok(_) => return Err(format!("idle connection #{i}: wrong echo {byte:?}")),
                Err(e) => return Err(format!("idle connection #{i}: no echo: {e}")),
            }
        }
    }
    Ok(idle)
}

/// `s` as a non-blocking mio stream registered with `poll` for both directions
/// under `Token(i)`.
fn mio_stream(poll: &Poll, s: std::net::TcpStream, i: usize) -> Result<TcpStream, String> {
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut stream = TcpStream::from_std(s);
    poll.registry()
        .register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// `idle` idle connections (see [`open_idle`]), then `conns` connections, each with
/// one `size`-byte message in flight, for `warmup` then a measured `secs`; the idle
/// ones stay open until the window closes.
#[allow(clippy::too_many_arguments)]
fn echo_run(
    addr: SocketAddr,
    conns: usize,
    idle: usize,
    size: usize,
    warmup: Duration,
    secs: Duration,
    pid: Option<u32>,
) -> Result<Outcome, String> {
    let idle = open_idle(addr, idle)?;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        let s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect #{i}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let stream = mio_stream(&poll, s, i)?;
        clients.push(Client {
            stream,
            sent_at: Instant::now(),
            got: 0,
            unsent: 0,
        });
    }
    let msg = vec![b'e'; size];
    let mut scratch = vec![0u8; 64 * 1024];
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    for c in &mut clients {
        c.sent_at = start;
        c.unsent = size;
        send_rest(c, &msg).map_err(|e| e.to_string())?;
    }
    let mut window: Option<Window> = None;
    let mut count = 0u64;
    let mut errors = 0u64;
    let warm_end = start + warmup;
    let end = warm_end + secs;
    loop {
        let now = Instant::now();
        if window.is_none() && now >= warm_end {
            window = Some(Window::open(pid));
            count = 0;
            lat.clear();
        }
        if now >= end {
            break;
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .or_else(|e| {
                if e.kind() == ErrorKind::Interrupted {
                    Ok(())
                } else {
                    Err(e.to_string())
                }
            })?;
        for ev in &events {
            let Some(c) = clients.get_mut(ev.token().0) else {
                continue;
            };
            if ev.is_writable() && c.unsent > 0 && send_rest(c, &msg).is_err() {
                errors += 1;
            }
            if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            loop {
                match c.stream.read(&mut scratch) {
                    Ok(0) => return Err("the server closed a connection".into()),
                    Ok(n) => {
                        c.got += n;
                        if n < scratch.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
            while c.got >= size {
                c.got -= size;
                let now = Instant::now();
                count += 1;
                if window.is_some() {
                    lat.push((now - c.sent_at).as_nanos().min(u32::MAX as u128) as u32);
                }
                c.sent_at = now;
                c.unsent = size;
                if send_rest(c, &msg).is_err() {
                    errors += 1;
                }
            }
        }
    }
    let w = window.ok_or("the window never opened")?;
    let out = w.close(count, &mut lat, errors);
    drop(idle);
    Ok(out)
}

// ------------------------------------------------------------------ connect churn

struct Churner {
    stream: TcpStream,
    connected: bool,
    got: usize,
    started: Instant,
}

const CHURN_MSG: usize = 64;

fn churn_connect(poll: &Poll, addr: SocketAddr, i: usize) -> std::io::Result<Churner> {
    let mut stream = TcpStream::connect(addr)?;
    poll.registry().register(
        &mut stream,
        Token(i),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    Ok(Churner {
        stream,
        connected: false,
        got: 0,
        started: Instant::now(),
    })
}

/// `conc` clients, each: connect, send 64 bytes, read them back, close; again.
fn churn_run(
    addr: SocketAddr,
    conc: usize,
    warmup: Duration,
    secs: Duration,
    pid: Option<u32>,
) -> Result<Outcome, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut slots: Vec<Churner> = (0..conc)
        .map(|i| churn_connect(&poll, addr, i))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("connect: {e}"))?;
    let msg = [b'c'; CHURN_MSG];
    let mut scratch = [0u8; 4096];
    let mut events = Events::with_capacity(1024);
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 20);
    let start = Instant::now();
    let (warm_end, end) = (start + warmup, start + warmup + secs);
    let mut window: Option<Window> = None;
    let (mut count, mut errors) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        if window.is_none() && now >= warm_end {
            window = Some(Window::open(pid));
            count = 0;
            lat.clear();
        }
        if now >= end {
            break;
        }
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(50)))
            && e.kind() != ErrorKind::Interrupted
        {
            return Err(e.to_string());
        }
        for ev in &events {
            let i = ev.token().0;
            let Some(c) = slots.get_mut(i) else { continue };
            let mut done = false;
            let mut failed = ev.is_error();
            if !failed && !c.connected && ev.is_writable() {
                match c.stream.peer_addr() {
                    Ok(_) => {
                        c.connected = true;
                        let _ = c.stream.set_nodelay(true);
                        match c.stream.write(&msg) {
                            Ok(n) if n == CHURN_MSG => {}
                            _ => failed = true,
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::NotConnected => {}
                    Err(_) => failed = true,
                }
            }
            if !failed && c.connected && (ev.is_readable() || ev.is_read_closed()) {
                loop {
                    match c.stream.read(&mut scratch) {
                        Ok(0) => {
                            failed = c.got < CHURN_MSG;
                            break;
                        }
                        Ok(n) => c.got += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            failed = true;
                            break;
                        }
                    }
                }
                done = c.got >= CHURN_MSG;
            }
            if done || failed {
                if done {
                    count += 1;
                    if window.is_some() {
                        let ns = c.started.elapsed().as_nanos().min(u32::MAX as u128);
                        lat.push(ns as u32);
                    }
                } else {
                    errors += 1;
                }
                let _ = poll.registry().deregister(&mut c.stream);
                // Dropping the old stream closes it.
                *c = churn_connect(&poll, addr, i).map_err(|e| format!("connect: {e}"))?;
            }
        }
    }
    let w = window.ok_or("the window never opened")?;
    Ok(w.close(count, &mut lat, errors))
}

// ------------------------------------------------------------------ servers

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    RawPoll,
    OursPoll,
    RawSelect,
    OursSelect,
    RawEpoll,
    OursEpoll,
    Mio,
}

impl Server {
    const ALL: [Server; 7] = [
        Server::RawPoll,
        Server::OursPoll,
        Server::RawSelect,
        Server::OursSelect,
        Server::RawEpoll,
        Server::OursEpoll,
        Server::Mio,
    ];

    fn name(self) -> &'static str {
        match self {
            Server::RawPoll => "raw-poll",
            Server::OursPoll => "ours-poll",
            Server::RawSelect => "raw-select",
            Server::OursSelect => "ours-select",
            Server::RawEpoll => "raw-epoll",
            Server::OursEpoll => "ours-epoll",
            Server::Mio => "mio",
        }
    }

    fn parse(s: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The raw loop this server is compared with.
    fn reference(self) -> Server {
        match self {
            Server::OursSelect | Server::RawSelect => Server::RawSelect,
            Server::OursEpoll | Server::RawEpoll | Server::Mio => Server::RawEpoll,
            _ => Server::RawPoll,
        }
    }

    /// The command that starts this server: the binary next to ours, or `echo`
    /// (`--echo-server PATH`) for our servers.
    fn command(self, dir: &std::path::Path, echo: Option<&std::path::Path>) -> Command {
        let (bin, args): (&str, &[&str]) = match self {
            Server::RawPoll => ("raw_echo", &["--backend", "poll"]),
            Server::RawSelect => ("raw_echo", &["--backend", "select"]),
            Server::RawEpoll => ("raw_echo", &["--backend", "epoll"]),
            Server::OursPoll => (
                "echo_server",
                &["--quiet", "--nodelay", "--backend", "poll"],
            ),
            Server::OursSelect => (
                "echo_server",
                &["--quiet", "--nodelay", "--backend", "select"],
            ),
            Server::OursEpoll => (
                "echo_server",
                &["--quiet", "--nodelay", "--backend", "epoll"],
            ),
            Server::Mio => ("mio_echo", &[]),
        };
        let path = match echo {
            Some(path) if bin == "echo_server" => path.to_path_buf(),
            _ => dir.join(bin),
        };
        let mut c = if let Some(out) = callgrind_out(self) {
            let mut c = Command::new("valgrind");
            c.args(["--tool=callgrind", "--instr-atstart=no"])
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(path);
            c
        } else {
            Command::new(path)
        };
        c.arg("127.0.0.1:0").args(args);
        c
    }
}

/// Where a server's callgrind output goes (`--callgrind`).
fn callgrind_out(server: Server) -> Option<PathBuf> {
    if !CALLGRIND.load(Ordering::Relaxed) {
        return None;
    }
    let dir = std::env::temp_dir().join("loadgen-callgrind");
    let _ = std::fs::create_dir_all(&dir);
    Some(dir.join(format!("{}.out", server.name())))
}

struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Running {
    fn start(
        server: Server,
        dir: &std::path::Path,
        echo: Option<&std::path::Path>,
        pin: Option<usize>,
    ) -> Result<Running, String> {
        let mut child = server
            .command(dir, echo)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e} (cargo build --release --examples?)", server.name()))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("{}: unexpected first line {line:?}", server.name()))?;
        if let Some(cpu) = pin {
            let _ = pin_to(Pid::from_raw(child.id() as i32), cpu);
        }
        Ok(Running { child, addr })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pin_to(pid: Pid, cpu: usize) -> nix::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(pid, &set)
}

fn raise_nofile() -> rlim_t {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

// ------------------------------------------------------------------ the matrix

/// One cell's connections: `active` with a message in flight, `idle` connected and
/// silent (written `ACTIVE` or `ACTIVE+IDLE` on the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Conns {
    active: usize,
    idle: usize,
}

impl Conns {
    fn parse(s: &str, idle: usize) -> Result<Conns, String> {
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad connection count {s} (ACTIVE or ACTIVE+IDLE)"))
        };
        Ok(match s.split_once('+') {
            Some((a, i)) => Conns {
                active: num(a)?,
                idle: num(i)?,
            },
            None => Conns {
                active: num(s)?,
                idle,
            },
        })
    }

    /// The table's conns column: `100`, or `100 + 9900 idle`.
    fn label(self) -> String {
        if self.idle == 0 {
            self.active.to_string()
        } else {
            format!("{} + {} idle", self.active, self.idle)
        }
    }

    /// Checks the counts, and that this process and the server (which inherits
    /// our limit) each have an fd for every connection and a few more.
    fn check(self, nofile: rlim_t) -> Result<(), String> {
        if !(1..=10_000).contains(&self.active) {
            return Err(format!(
                "{}: active connections must be 1..=10000",
                self.label()
            ));
        }
        let total = self.active.saturating_add(self.idle);
        let needed = rlim_t::try_from(total.saturating_add(FD_SLACK)).unwrap_or(rlim_t::MAX);
        if needed > nofile {
            return Err(format!(
                "{}: {total} connections and {FD_SLACK} other fds do not fit in RLIMIT_NOFILE ({nofile})",
                self.label()
            ));
        }
        Ok(())
    }
}

/// fds besides the connections, in this process or a server: stdio, the listener,
/// the poll instance, pipes, signals.
const FD_SLACK: usize = 32;

struct Opts {
    secs: Duration,
    warmup: Duration,
    conns: Vec<Conns>,
    sizes: Vec<usize>,
    servers: Vec<Server>,
    repeat: usize,
    churn_secs: Duration,
    churn_conc: usize,
    churn: bool,
    pin: bool,
    callgrind: bool,
    /// `--echo-server PATH`: the echo_server our servers run (a bigger build).
    echo: Option<PathBuf>,
}

fn median(mut v: Vec<Outcome>) -> Outcome {
    v.sort_by(|a, b| a.cpu_us.total_cmp(&b.cpu_us));
    v[v.len() / 2]
}

/// The median over repeats of `mine ÷ theirs` (server CPU per round trip, and rate),
/// each run divided by its reference's run of the same repeat: the two ran one
/// right after the other, so a slow spell of the machine affects both alike.
fn paired_ratios(mine: &[Option<Outcome>], theirs: &[Option<Outcome>]) -> (f64, f64) {
    let mut cpu = Vec::new();
    let mut rate = Vec::new();
    for (x, y) in mine
        .iter()
        .zip(theirs)
        .filter_map(|(x, y)| Some((*x.as_ref()?, *y.as_ref()?)))
    {
        cpu.push(x.cpu_us / y.cpu_us);
        rate.push(x.rate / y.rate);
    }
    let mid = |mut v: Vec<f64>| {
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (mid(cpu), mid(rate))
}

fn fmt_us(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn matrix(o: &Opts) -> Result<(), String> {
    let dir: PathBuf = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .ok_or("no exe dir")?
        .to_path_buf();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = o.pin && cpus >= 2;
    if pin {
        let _ = pin_to(Pid::from_raw(0), 1);
    }
    let nofile = raise_nofile();
    for c in &o.conns {
        c.check(nofile)?;
    }
    // Order: each raw loop right before the servers compared with it.
    let mut order: Vec<Server> = Vec::new();
    for s in &o.servers {
        if !order.contains(&s.reference()) {
            order.push(s.reference());
        }
        if !order.contains(s) {
            order.push(*s);
        }
    }
    println!(
        "echo load: closed loop, loopback; warm-up {:.1} s, window {:.1} s per cell, median of {} \
         (ratios: the median of each run over its reference's run of the same repeat, \
         the servers taking turns); server pinned to CPU 0, load generator to CPU 1: {}; RLIMIT_NOFILE {nofile}; {cpus} CPUs",
        o.warmup.as_secs_f64(),
        o.secs.as_secs_f64(),
        o.repeat,
        if pin { "yes" } else { "no" },
    );
    if let Some(echo) = &o.echo {
        println!("our servers: {}", echo.display());
    }
    if o.callgrind {
        println!(
            "servers under callgrind: their rates and CPU times are valgrind's, not theirs; \
             only the instruction columns count"
        );
    }
    println!();
    println!(
        "| conns | msg | server | round trips/s | p50 µs | p99 µs | server CPU µs/RT | CPU ÷ raw | rate ÷ raw | loadgen CPU % |{}",
        if o.callgrind {
            " user instr/RT | instr − raw |"
        } else {
            ""
        }
    );
    println!(
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|{}",
        if o.callgrind { "---:|---:|" } else { "" }
    );
    for &size in &o.sizes {
        for &conns in &o.conns {
            let mut results: Vec<(Server, Outcome)> = Vec::new();
            // Per server, one entry per repeat (`None`: that run failed), so a run
            // can be paired with its reference's run of the same repeat.
            let mut runs: Vec<(Server, Vec<Option<Outcome>>)> =
                order.iter().map(|s| (*s, Vec::new())).collect();
            for _ in 0..o.repeat {
                for (server, outs) in &mut runs {
                    if let Some(f) = callgrind_out(*server) {
                        let _ = std::fs::remove_file(f);
                    }
                    let r = Running::start(*server, &dir, o.echo.as_deref(), pin.then_some(0))?;
                    let out = echo_run(
                        r.addr,
                        conns.active,
                        conns.idle,
                        size,
                        o.warmup,
                        o.secs,
                        Some(r.pid()),
                    );
                    r.stop();
                    let out = out.map(|mut x| {
                        if let Some(total) =
                            callgrind_out(*server).and_then(|f| callgrind_total(&f))
                        {
                            x.instr = total as f64 / x.count.max(1) as f64;
                        }
                        x
                    });
                    match out {
                        Ok(x) => outs.push(Some(x)),
                        Err(e) => {
                            eprintln!("{} {}×{size}: {e}", server.name(), conns.label());
                            outs.push(None);
                        }
                    }
                }
            }
            for (s, outs) in &runs {
                let ok: Vec<Outcome> = outs.iter().flatten().copied().collect();
                if !ok.is_empty() {
                    results.push((*s, median(ok)));
                }
            }
            for (s, x) in &results {
                if !o.servers.contains(s)
                    && !matches!(s, Server::RawPoll | Server::RawSelect | Server::RawEpoll)
                {
                    continue;
                }
                let reference = results.iter().find(|(r, _)| *r == s.reference());
                let (cpu_ratio, rate_ratio) = match reference {
                    Some((r, _)) if r != s => {
                        let mine = &runs.iter().find(|(k, _)| k == s).expect("ran").1;
                        let theirs = &runs.iter().find(|(k, _)| k == r).expect("ran").1;
                        let (cpu, rate) = paired_ratios(mine, theirs);
                        (format!("{cpu:.2}"), format!("{rate:.2}"))
                    }
                    _ => ("1".into(), "1".into()),
                };
                let instr = if o.callgrind {
                    let extra = reference.map_or(f64::NAN, |(_, y)| x.instr - y.instr);
                    format!(" {:.0} | {:+.0} |", x.instr, extra)
                } else {
                    String::new()
                };
                println!(
                    "| {} | {size} B | {} | {:.0} | {} | {} | {} | {cpu_ratio} | {rate_ratio} | {:.0} |{instr}{}",
                    conns.label(),
                    s.name(),
                    x.rate,
                    fmt_us(x.p50_us),
                    fmt_us(x.p99_us),
                    fmt_us(x.cpu_us),
                    x.gen_cpu,
                    if x.errors > 0 {
                        format!(" {} errors", x.errors)
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    if !o.churn {
        return Ok(());
    }
    println!();
    println!(
        "connect churn: {} clients, each connect → {CHURN_MSG} B echo → close, {:.1} s window",
        o.churn_conc,
        o.churn_secs.as_secs_f64()
    );
    println!();
    println!(
        "| server | connections/s | p50 µs | p99 µs | server CPU µs/conn | CPU ÷ raw | rate ÷ raw | loadgen CPU % |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut results: Vec<(Server, Outcome)> = Vec::new();
    for s in &order {
        let r = Running::start(*s, &dir, o.echo.as_deref(), pin.then_some(0))?;
        let out = churn_run(r.addr, o.churn_conc, o.warmup, o.churn_secs, Some(r.pid()));
        r.stop();
        match out {
            Ok(x) => results.push((*s, x)),
            Err(e) => eprintln!("{} churn: {e}", s.name()),
        }
    }
    for (s, x) in &results {
        let reference = results.iter().find(|(r, _)| *r == s.reference());
        let (cpu_ratio, rate_ratio) = match reference {
            Some((r, y)) if r != s => (
                format!("{:.2}", x.cpu_us / y.cpu_us),
                format!("{:.2}", x.rate / y.rate),
            ),
            _ => ("1".into(), "1".into()),
        };
        println!(
            "| {} | {:.0} | {} | {} | {} | {cpu_ratio} | {rate_ratio} | {:.0} |{}",
            s.name(),
            x.rate,
            fmt_us(x.p50_us),
            fmt_us(x.p99_us),
            fmt_us(x.cpu_us),
            x.gen_cpu,
            if x.errors > 0 {
                format!(" {} errors", x.errors)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ many connections

/// `many`'s message sizes: connection `i` sends `MANY_SIZES[(i + round) % 4]` bytes
/// in `round`, so every size is on a quarter of the connections in every round.
const MANY_SIZES: [usize; 4] = [1, 100, 4096, 64 * 1024];
/// The longest `many` waits without a byte moving before it gives up.
const MANY_STALL: Duration = Duration::from_secs(20);

/// 64 KiB of pseudo-random bytes, twice over, so any 64 KiB window is contiguous.
fn many_pattern() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut p: Vec<u8> = (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    p.extend_from_within(..);
    p
}

/// Where connection `conn`'s message of `round` starts in the pattern: a message
/// echoed on another connection, or from another round, differs from the one
/// expected.
fn many_offset(conn: usize, round: usize) -> usize {
    let mut x = ((conn as u64) << 20 | round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    (x & 0xFFFF) as usize
}

struct ManyConn {
    stream: TcpStream,
    round: usize,
    size: usize,
    offset: usize,
    sent: usize,
    got: usize,
    /// All rounds echoed, or failed.
    done: bool,
}

impl ManyConn {
    fn start_round(&mut self, conn: usize, round: usize) {
        self.round = round;
        self.size = MANY_SIZES[(conn + round) % MANY_SIZES.len()];
        self.offset = many_offset(conn, round);
        self.sent = 0;
        self.got = 0;
    }

    /// Sends what the socket takes of this round's message.
    fn send(&mut self, pattern: &[u8]) -> std::io::Result<()> {
        while self.sent < self.size {
            let msg = &pattern[self.offset + self.sent..self.offset + self.size];
            match self.stream.write(msg) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// How many fds this process has open (`/proc/self/fd`, less the one reading it).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(3, |d| d.count().saturating_sub(1))
}

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `loadgen many`: as many connections as the fd limits allow on one
/// `echo_server --backend epoll`, every one echoing its own pattern, every byte
/// checked; then the server's memory.
fn many(echo: &std::path::Path, want: Option<usize>, rounds: usize) -> Result<(), String> {
    let nofile = raise_nofile();
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| e.to_string())?;
    let help = Command::new(echo)
        .arg("--help")
        .output()
        .map_err(|e| format!("{}: {e}", echo.display()))?;
    let help = String::from_utf8_lossy(&help.stdout);
    let static_bytes = help
        .lines()
        .find_map(|l| l.strip_prefix("Memory, all static and fixed at compile time: "))
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok());
    let mut child = Command::new(echo)
        .args(["127.0.0.1:0", "--backend", "epoll", "--quiet", "--nodelay"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", echo.display()))?;
    let pid = child.id();
    let result = many_against(&mut child, nofile, hard, want, rounds, static_bytes);
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    let _ = child.wait();
    result
}

fn many_against(
    child: &mut Child,
    nofile: rlim_t,
    hard: rlim_t,
    want: Option<usize>,
    rounds: usize,
    static_bytes: Option<u64>,
) -> Result<(), String> {
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("echo_server: unexpected first line {line:?}"))?;
    // "backend epoll, at most N connections[ (lowered from M: why)]"
    let mut err = BufReader::new(child.stderr.take().ok_or("no stderr")?);
    line.clear();
    err.read_line(&mut line).map_err(|e| e.to_string())?;
    let said = line.trim().to_owned();
    let server_max: usize = said
        .split_once("at most ")
        .and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("echo_server: unexpected line {said:?}"))?;
    // What is left to us: the poll instance and one probe over the server's limit.
    let room = (nofile as usize).saturating_sub(open_fds() + 2);
    let by_limits = server_max.min(room);
    let count = want.map_or(by_limits, |w| w.min(by_limits));
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    println!(
        "many: one echo_server --backend epoll on {addr} (pid {pid}); RLIMIT_NOFILE {nofile} (hard {hard}) in each process"
    );
    println!("  the server: {said}");
    println!(
        "  the server's fds besides connections: {} ({open_fds} open now: stdio, the signal \
         source's pipe, the listener, the epoll instance, anything inherited; and one kept \
         spare to accept and refuse a connection over the limit)",
        (nofile as usize).saturating_sub(server_max)
    );
    println!("  this process has room for {room} connections and one over the server's limit");
    if count < 20_000 && count == by_limits {
        println!(
            "  connecting {count}, not 20000: every fd counts against RLIMIT_NOFILE ({nofile}), \
             whose hard limit only CAP_SYS_RESOURCE can raise"
        );
    } else {
        println!("  connecting {count}");
    }

    let t = Instant::now();
    let opened = open_idle(addr, count)?;
    let connect_secs = t.elapsed().as_secs_f64();
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut conns: Vec<ManyConn> = Vec::with_capacity(count);
    for (i, s) in opened.into_iter().enumerate() {
        let stream = mio_stream(&poll, s, i)?;
        conns.push(ManyConn {
            stream,
            round: 0,
            size: 0,
            offset: 0,
            sent: 0,
            got: 0,
            done: false,
        });
    }
    println!(
        "  {count} connected and each served one 1-byte round trip in {connect_secs:.1} s; \
         server VmRSS {} kB",
        status_kb(pid, "VmRSS").unwrap_or(0)
    );

    let pattern = many_pattern();
    let mut scratch = vec![0u8; 64 * 1024];
    let mut failures: Vec<String> = Vec::new();
    let (mut messages, mut bytes) = (0u64, 0u64);
    let t = Instant::now();
    for (i, c) in conns.iter_mut().enumerate() {
        c.start_round(i, 0);
        if let Err(e) = c.send(&pattern) {
            failures.push(format!("#{i} round 0: send: {e}"));
            c.done = true;
        }
    }
    let mut left = conns.iter().filter(|c| !c.done).count();
    let mut events = Events::with_capacity(1024);
    let mut last_progress = Instant::now();
    while left > 0 {
        if last_progress.elapsed() > MANY_STALL {
            for (i, c) in conns.iter().enumerate().filter(|(_, c)| !c.done) {
                if failures.len() < 20 {
                    failures.push(format!(
                        "#{i} round {}: stalled at {} of {} bytes echoed",
                        c.round, c.got, c.size
                    ));
                }
            }
            failures.push(format!("{left} connections stalled for {MANY_STALL:?}"));
            break;
        }
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(100)))
            && e.kind() != ErrorKind::Interrupted
        {
            return Err(e.to_string());
        }
        for ev in &events {
            let i = ev.token().0;
            let Some(c) = conns.get_mut(i) else { continue };
            if c.done {
                continue;
            }
            let mut failed: Option<String> = None;
            if ev.is_writable()
                && let Err(e) = c.send(&pattern)
            {
                failed = Some(format!("send: {e}"));
            }
            while failed.is_none() && !c.done {
                match c.stream.read(&mut scratch) {
                    Ok(0) => failed = Some("the server closed the connection".into()),
                    Ok(n) => {
                        last_progress = Instant::now();
                        let want = c.size - c.got;
                        let expected = &pattern[c.offset + c.got..c.offset + c.size];
                        let n_ok = n.min(want);
                        if let Some(at) = (0..n_ok).find(|&k| scratch[k] != expected[k]) {
                            failed = Some(format!(
                                "byte {} of {}: {:#04x}, expected {:#04x}",
                                c.got + at,
                                c.size,
                                scratch[at],
                                expected[at]
                            ));
                        } else if n > want {
                            failed =
                                Some(format!("{} bytes more than the {} sent", n - want, c.size));
                        } else {
                            c.got += n;
                            bytes += n as u64;
                            if c.got == c.size {
                                messages += 1;
                                if c.round + 1 == rounds {
                                    c.done = true;
                                    left -= 1;
                                } else {
                                    c.start_round(i, c.round + 1);
                                    if let Err(e) = c.send(&pattern) {
                                        failed = Some(format!("send: {e}"));
                                    }
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => failed = Some(format!("read: {e}")),
                }
            }
            if let Some(why) = failed {
                failures.push(format!("#{i} round {}: {why}", c.round));
                c.done = true;
                left -= 1;
            }
        }
    }
    let echo_secs = t.elapsed().as_secs_f64();
    let rss = status_kb(pid, "VmRSS");
    let hwm = status_kb(pid, "VmHWM");
    println!(
        "  {rounds} rounds on every connection (sizes {MANY_SIZES:?} B, by connection and round): \
         {messages} messages, {bytes} bytes echoed in {echo_secs:.1} s, every byte checked"
    );

    // One over the server's limit: accepted and closed at once.
    if count == server_max {
        let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("probe: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let _ = s.write_all(b"x");
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => println!(
                "  connection {}: accepted and closed at once (the server is full)",
                count + 1
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                println!(
                    "  connection {}: accepted and reset at once (the server is full)",
                    count + 1
                )
            }
            other => failures.push(format!(
                "connection {} over the limit: {other:?}",
                count + 1
            )),
        }
    }
    let kb = |x: Option<u64>| {
        x.map_or("?".into(), |k| {
            format!("{k} kB ({:.1} MiB)", k as f64 / 1024.0)
        })
    };
    println!(
        "  server memory with {count} connections open: VmRSS {}, VmHWM {}; static {}",
        kb(rss),
        kb(hwm),
        static_bytes.map_or("?".into(), |b| format!(
            "{b} bytes ({:.1} MiB, --help)",
            b as f64 / 1048576.0
        ))
    );
    if failures.is_empty() {
        println!("  byte-exact: yes, 0 failures on {count} connections");
        Ok(())
    } else {
        for f in failures.iter().take(20) {
            println!("  FAILED {f}");
        }
        Err(format!("{} connections failed", failures.len()))
    }
}

// ------------------------------------------------------------------ arguments

const USAGE: &str = "usage:
  loadgen matrix [--secs S] [--warmup S] [--conns 1,10,100,1000] [--idle N] [--sizes 64,4096]
                 [--servers raw-poll,ours-poll,raw-select,ours-select,raw-epoll,ours-epoll,mio] [--repeat R]
                 [--churn-secs S] [--churn-conc C] [--no-churn] [--no-pin] [--callgrind]
                 [--echo-server PATH]
  loadgen echo ADDR [--conns C] [--idle N] [--size B] [--secs S] [--warmup S] [--pid PID]
  loadgen churn ADDR [--conc C] [--secs S] [--warmup S] [--pid PID]
  loadgen many --echo-server PATH [--conns N] [--rounds R]

  --conns A or A+I  A connections with a message in flight (1 to 10000), and I more
                    connected, served one 1-byte round trip, then idle through the
                    window (--idle N: I for every item without its own)
  --echo-server     the echo_server binary our servers run (default: the one next to
                    loadgen), e.g. one built with ASYNCORE_ECHO_CAPACITY=20480
  many              starts PATH --backend epoll --quiet, connects as many connections
                    as it and this process can hold (RLIMIT_NOFILE), echoes a distinct
                    pattern on each (1 B to 64 KiB) for R rounds (default 3), checks
                    every byte, and reports the server's memory; exit status 2 on any
                    mismatch";

fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .map(|x| x.trim().parse().map_err(|_| format!("bad list item {x}")))
        .collect()
}

fn secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0 && *x <= 600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("bad duration {s} (seconds, at most 600)"))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().ok_or(USAGE)?.as_str();
    let mut o = Opts {
        secs: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        conns: [1, 10, 100, 1000]
            .map(|active| Conns { active, idle: 0 })
            .to_vec(),
        sizes: vec![64, 4096],
        servers: Server::ALL.to_vec(),
        repeat: 1,
        churn_secs: Duration::from_millis(1500),
        churn_conc: 10,
        churn: true,
        pin: true,
        callgrind: false,
        echo: None,
    };
    let mut addr: Option<SocketAddr> = None;
    let (mut conns, mut size, mut pid) = (1usize, 64usize, None::<u32>);
    let (mut idle, mut conn_list, mut rounds) = (0usize, None::<String>, 3usize);
    let mut many_conns: Option<usize> = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--secs" => o.secs = secs(&val()?)?,
            "--warmup" => o.warmup = secs(&val()?)?,
            "--conns" if mode == "matrix" => conn_list = Some(val()?),
            "--conns" if mode == "many" => {
                many_conns = Some(val()?.parse().map_err(|_| "bad --conns")?);
            }
            "--conns" | "--conc" => conns = val()?.parse().map_err(|_| "bad --conns")?,
            "--idle" => idle = val()?.parse().map_err(|_| "bad --idle")?,
            "--rounds" => rounds = val()?.parse().map_err(|_| "bad --rounds")?,
            "--echo-server" => o.echo = Some(PathBuf::from(val()?)),
            "--sizes" => o.sizes = list(&val()?)?,
            "--size" => size = val()?.parse().map_err(|_| "bad --size")?,
            "--servers" => {
                o.servers = val()?
                    .split(',')
                    .map(|s| Server::parse(s).ok_or(format!("unknown server {s}")))
                    .collect::<Result<_, _>>()?;
            }
            "--repeat" => o.repeat = val()?.parse().map_err(|_| "bad --repeat")?,
            "--churn-secs" => o.churn_secs = secs(&val()?)?,
            "--churn-conc" => o.churn_conc = val()?.parse().map_err(|_| "bad --churn-conc")?,
            "--no-churn" => o.churn = false,
            "--no-pin" => o.pin = false,
            "--callgrind" => o.callgrind = true,
            "--pid" => pid = Some(val()?.parse().map_err(|_| "bad --pid")?),
            s if !s.starts_with('-') && addr.is_none() => {
                addr = Some(s.parse().map_err(|_| format!("bad address {s}"))?);
            }
            s => return Err(format!("unknown argument {s}\n{USAGE}")),
        }
    }
    let bounded = |n: usize, what: &str| {
        if (1..=10_000).contains(&n) {
            Ok(())
        } else {
            Err(format!("{what} must be 1..=10000"))
        }
    };
    match mode {
        "matrix" => {
            CALLGRIND.store(o.callgrind, Ordering::Relaxed);
            o.conns = match conn_list {
                Some(l) => l
                    .split(',')
                    .map(|c| Conns::parse(c, idle))
                    .collect::<Result<_, _>>()?,
                None => o.conns.iter().map(|c| Conns { idle, ..*c }).collect(),
            };
            bounded(o.churn_conc, "--churn-conc")?;
            o.repeat = o.repeat.clamp(1, 9);
            matrix(&o)
        }
        "echo" | "churn" => {
            let addr = addr.ok_or(USAGE)?;
            if !addr.ip().is_loopback() {
                return Err("loopback addresses only".into());
            }
            bounded(conns, "--conns")?;
            let nofile = raise_nofile();
            let x = if mode == "echo" {
                Conns {
                    active: conns,
                    idle,
                }
                .check(nofile)?;
                echo_run(
                    addr,
                    conns,
                    idle,
                    size.clamp(1, 1 << 20),
                    o.warmup,
                    o.secs,
                    pid,
                )?
            } else {
                churn_run(addr, conns, o.warmup, o.secs, pid)?
            };
            println!(
                "{mode}: {} per s over {} ({} errors), p50 {} µs, p99 {} µs, server CPU {} µs each, \
                 load generator CPU {:.0} %",
                x.rate.round(),
                x.count,
                x.errors,
                fmt_us(x.p50_us),
                fmt_us(x.p99_us),
                fmt_us(x.cpu_us),
                x.gen_cpu
            );
            Ok(())
        }
        "many" => {
            let echo = o.echo.ok_or("many needs --echo-server PATH")?;
            many(&echo, many_conns, rounds.clamp(1, 100))
        }
        _ => Err(USAGE.into()),
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
