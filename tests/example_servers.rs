//! The `echo_server` and `chat_server` examples as real processes, the way operators
//! run them: stderr closed or never read, odd option values, `unix:PATH` with
//! something already at the path, stopped by signals. Both backends.
//!
//! The binaries are the ones `cargo test` builds next to this test
//! (`target/<profile>/examples/`); a missing one fails the test with a message. No
//! assertion is about time: the timeouts below only turn a hang into a failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::peers::command;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Against hangs only: a blocking read or a wait that takes this long fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

const BACKENDS: [&str; 3] = ["select", "poll", "epoll"];

/// The example binary `name`, built by `cargo test` next to this test: from
/// `target/<profile>/deps/example_servers-*` to `target/<profile>/examples/<name>`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("examples").join(name))
        .expect("the test runs from target/<profile>/deps");
    assert!(
        bin.is_file(),
        "{} is missing: build the examples first (`cargo test` or `cargo build --examples` \
         with the same profile)",
        bin.display()
    );
    bin
}

/// A temp dir of the test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "asyncore-example-servers-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the temp dir");
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a server listens, as clients reach it.
#[derive(Clone, Debug)]
enum Addr {
    Tcp(String),
    Unix(PathBuf),
}

/// A client stream of either kind, with timeouts so a stuck server fails the test.
enum Client {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Client {
    fn connect(addr: &Addr) -> std::io::Result<Client> {
        let c = match addr {
            Addr::Tcp(a) => Client::Tcp(TcpStream::connect(a.as_str())?),
            Addr::Unix(p) => Client::Unix(UnixStream::connect(p)?),
        };
        match &c {
            Client::Tcp(s) => {
                s.set_read_timeout(Some(PATIENCE))?;
                s.set_write_timeout(Some(PATIENCE))?;
            }
            Client::Unix(s) => {
                s.set_read_timeout(Some(PATIENCE))?;
                s.set_write_timeout(Some(PATIENCE))?;
            }
        }
        Ok(c)
    }
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Client::Tcp(s) => s.read(buf),
            Client::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Client::Tcp(s) => s.write(buf),
            Client::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads one `\n`-terminated line (byte by byte: nothing is read past it).
fn read_line(c: &mut Client) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match c.read(&mut b) {
            Ok(0) => panic!("EOF after {:?}", String::from_utf8_lossy(&line)),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => line.push(b[0]),
            // A signal meant for another test of this process (those that start and
            // signal servers) can interrupt a blocking read: read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "reading a line: {e} after {:?}",
                String::from_utf8_lossy(&line)
            ),
        }
    }
    String::from_utf8(line).expect("UTF-8 from the server")
}

/// How the test treats the server's stderr.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Stderr {
    /// Piped, and the read end closed at once: every write gets EPIPE.
    Closed,
    /// Piped and not read until [`Server::collect_stderr`]: the pipe may fill up.
    Piped,
}

/// A running server; killed (if still running) when dropped.
struct Server {
    child: Child,
    addr: Addr,
    /// The stderr pipe, open and unread until `collect_stderr`.
    stderr: Option<ChildStderr>,
    collected: Option<mpsc::Receiver<String>>,
}

impl Server {
    /// Starts example `name` with `args` and waits for its `listening on ADDR`.
    fn start(name: &str, args: &[&str], stderr: Stderr) -> Server {
        Server::start_holding(name, args, stderr, 0..0)
    }

    /// As [`start`](Self::start), with the fds in `hold` open in the server (on
    /// /dev/null) before it starts, as if it had inherited them.
    fn start_holding(
        name: &str,
        args: &[&str],
        stderr: Stderr,
        hold: std::ops::Range<i32>,
    ) -> Server {
        let mut cmd = command(&example(name));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !hold.is_empty() {
            use std::os::unix::process::CommandExt;
            // SAFETY: the closure runs in the child between fork and exec, and only
            // calls dup2(2), which is async-signal-safe; it allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    for fd in hold.clone() {
                        // stdin is /dev/null by now.
                        if nix::libc::dup2(0, fd) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let pipe = child.stderr.take().expect("piped stderr");
        let kept = match stderr {
            Stderr::Closed => {
                drop(pipe);
                None
            }
            Stderr::Piped => Some(pipe),
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Server {
            child,
            addr: Addr::Tcp(String::new()),
            stderr: kept,
            collected: None,
        };
        let line = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("{name} {args:?}: no `listening on` line"));
        let shown = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                server.collect_stderr();
                let status = server.wait();
                panic!(
                    "{name} {args:?}: expected `listening on ADDR`, got {line:?} ({status:?}); \
                     stderr: {}",
                    server.stderr_text()
                )
            });
        server.addr = match shown.strip_prefix("unix:") {
            Some(p) => Addr::Unix(PathBuf::from(p)),
            None => Addr::Tcp(shown.to_string()),
        };
        server
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("waitpid").is_none()
    }

    fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("kill(2)");
    }

    /// Waits for the exit (failing after [`PATIENCE`]).
    fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                return status;
            }
            assert!(start.elapsed() < PATIENCE, "the server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// From now on, a thread reads stderr to the end (see [`stderr_text`]).
    fn collect_stderr(&mut self) {
        let Some(pipe) = self.stderr.take() else {
            return;
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut all = String::new();
            let _ = BufReader::new(pipe).read_to_string(&mut all);
            let _ = tx.send(all);
        });
        self.collected = Some(rx);
    }

    /// What [`collect_stderr`] read, once the server has exited.
    fn stderr_text(&mut self) -> String {
        match &self.collected {
            Some(rx) => rx.recv_timeout(PATIENCE).unwrap_or_default(),
            None => String::from("(not collected)"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One echo round trip on a fresh connection.
fn echo_once(addr: &Addr, msg: &[u8]) {
    let mut c = Client::connect(addr).expect("connect to the echo server");
    c.write_all(msg).expect("send");
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back).expect("the echo");
    assert_eq!(back, msg);
}

/// A chat client joins (reads its welcome), pings, and hangs up. Between the two it
/// may hear the previous client leave.
fn chat_once(addr: &Addr) {
    let mut c = Client::connect(addr).expect("connect to the chat server");
    let welcome = read_line(&mut c);
    assert!(welcome.starts_with("* welcome guest"), "got {welcome:?}");
    c.write_all(b"/ping\n").expect("send");
    for _ in 0..4 {
        let line = read_line(&mut c);
        if line == "* pong" {
            return;
        }
        assert!(
            line.starts_with("* guest") && (line.ends_with(" left") || line.ends_with(" joined")),
            "got {line:?}"
        );
    }
    panic!("no `* pong`");
}

fn assert_clean_exit(server: &mut Server, signal: Signal) {
    assert!(server.is_running(), "the server died before {signal}");
    server.signal(signal);
    let status = server.wait();
    assert!(status.success(), "exit after {signal}: {status:?}");
}

// ------------------------------------------------------------------ stderr

/// With the read end of its stderr closed, a server that logs every connection
/// keeps serving, and stops cleanly (status 0, its socket file removed).
fn closed_stderr_keeps_serving(name: &str, backend: &str) {
    // With --quiet, the first line written is the one at shutdown.
    for quiet in [false, true] {
        let dir = TempDir::new(&format!("closed-{name}-{backend}-{quiet}"));
        let path = dir.join("sock");
        let spec = format!("unix:{}", path.display());
        let mut args = vec![spec.as_str(), "--backend", backend];
        if quiet {
            args.push("--quiet");
        }
        let mut server = Server::start(name, &args, Stderr::Closed);
        let addr = server.addr.clone();
        for i in 0..100u32 {
            if name == "echo_server" {
                echo_once(&addr, format!("line {i}\n").as_bytes());
            } else {
                chat_once(&addr);
            }
        }
        assert!(server.is_running(), "the server died with stderr closed");
        assert_clean_exit(&mut server, Signal::SIGTERM);
        assert!(!path.exists(), "the socket file was left behind");
    }
}

#[test]
fn echo_server_closed_stderr_select() {
    closed_stderr_keeps_serving("echo_server", "select");
}

#[test]
fn echo_server_closed_stderr_poll() {
    closed_stderr_keeps_serving("echo_server", "poll");
}

#[test]
fn echo_server_closed_stderr_epoll() {
    closed_stderr_keeps_serving("echo_server", "epoll");
}

#[test]
fn chat_server_closed_stderr_select() {
    closed_stderr_keeps_serving("chat_server", "select");
}

#[test]
fn chat_server_closed_stderr_poll() {
    closed_stderr_keeps_serving("chat_server", "poll");
}

#[test]
fn chat_server_closed_stderr_epoll() {
    closed_stderr_keeps_serving("chat_server", "epoll");
}

/// Nobody reads the server's stderr: the pipe fills after a few hundred connections
/// (chat_server used to freeze after about 845), yet 2,000 connect/close cycles are
/// all served. Once stderr is read again, the server stops cleanly and says how
/// many lines it dropped.
fn undrained_stderr_keeps_serving(name: &str, backend: &str) {
    let mut server = Server::start(name, &["127.0.0.1:0", "--backend", backend], Stderr::Piped);
    let addr = server.addr.clone();
    for i in 0..2_000u32 {
        if name == "echo_server" {
            echo_once(&addr, format!("cycle {i}\n").as_bytes());
        } else {
            chat_once(&addr);
        }
    }
    server.collect_stderr();
    assert_clean_exit(&mut server, Signal::SIGTERM);
    let stderr = server.stderr_text();
    assert!(
        stderr.contains(&format!("{name}: ")) && stderr.contains("to stderr dropped"),
        "no dropped-line count in stderr's last lines: {}",
        &stderr[stderr.len().saturating_sub(500)..]
    );
}

#[test]
fn echo_server_undrained_stderr() {
    for backend in BACKENDS {
        undrained_stderr_keeps_serving("echo_server", backend);
    }
}

#[test]
fn chat_server_undrained_stderr() {
    for backend in BACKENDS {
        undrained_stderr_keeps_serving("chat_server", backend);
    }
}

// ------------------------------------------------------------------ fd limits

/// The hard `RLIMIT_NOFILE`: how far a server may raise its soft limit.
fn hard_fd_limit() -> nix::sys::resource::rlim_t {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(_, hard)| hard)
}

/// With `--backend select`, a connection whose fd is FD_SETSIZE or more cannot be
/// watched: it is refused, and the server says why on stderr (not under `--quiet`),
/// while the others are served. The server is started with fds 10 to 1023 taken, so
/// the signal source's self-pipe gets fds 3 and 4, its listener 5, its connections
/// 6 to 9 and then 1024: the fifth is refused. With poll and epoll they are all served (with
/// epoll its own fd takes one of those numbers, so 1024 comes one connection earlier).
fn fd_beyond_select(name: &str, backend: &str, quiet: bool) {
    // The fds the server opens before its listener: the signal source's self-pipe.
    let before_listener = 2;
    let below_1024 = 6 - before_listener;
    if hard_fd_limit() < 1100 {
        println!("note: RLIMIT_NOFILE's hard limit is below 1100: fd 1024 cannot be had; skipped");
        return;
    }
    let mut args = vec!["127.0.0.1:0", "--backend", backend];
    if quiet {
        args.push("--quiet");
    }
    let mut server = Server::start_holding(name, &args, Stderr::Piped, 10..1024);
    server.collect_stderr();
    let addr = server.addr.clone();
    // Kept open, so each takes the next fd in the server.
    let mut clients = Vec::new();
    for i in 0..=below_1024 {
        let mut c = Client::connect(&addr).expect("connect");
        let served = if name == "echo_server" {
            c.write_all(b"ping\n").expect("send");
            let mut back = [0u8; 5];
            c.read_exact(&mut back).is_ok() && &back == b"ping\n"
        } else {
            read_line(&mut c).starts_with("* welcome")
        };
        let refused = backend == "select" && i == below_1024;
        assert_eq!(served, !refused, "{name} {backend}: connection {i}");
        clients.push(c);
    }
    assert_clean_exit(&mut server, Signal::SIGTERM);
    let stderr = server.stderr_text();
    let said = stderr.contains(
        "connection refused: its fd 1024 is beyond what the selector can watch (below 1024)",
    );
    assert_eq!(
        said,
        backend == "select" && !quiet,
        "{name} {backend} quiet={quiet}: {stderr}"
    );
    if backend == "select" {
        let first = 4 + before_listener;
        assert!(
            stderr.contains(&format!("at most {} ", 1024 - first)),
            "the startup line counts fds from {first} to 1023: {stderr}"
        );
    }
}

#[test]
fn echo_server_says_when_select_cannot_watch_an_fd() {
    for backend in BACKENDS {
        fd_beyond_select("echo_server", backend, false);
    }
    fd_beyond_select("echo_server", "select", true);
}

#[test]
fn chat_server_says_when_select_cannot_watch_an_fd() {
    for backend in BACKENDS {
        fd_beyond_select("chat_server", backend, false);
    }
    fd_beyond_select("chat_server", "select", true);
}

/// `--max-conns` above what select can watch is lowered at startup, and the server
/// says so; poll and epoll keep it.
#[test]
fn max_conns_beyond_select_is_lowered_at_startup() {
    for name in SERVERS {
        for backend in BACKENDS {
            let mut server = Server::start(
                name,
                &["127.0.0.1:0", "--backend", backend, "--max-conns", "1022"],
                Stderr::Piped,
            );
            server.collect_stderr();
            assert_clean_exit(&mut server, Signal::SIGTERM);
            let stderr = server.stderr_text();
            let lowered = stderr.contains(
                "(lowered from 1022: select(2) watches fds below FD_SETSIZE (1024) only; \
                 --backend poll or epoll has no such limit)",
            );
            assert_eq!(lowered, backend == "select", "{name} {backend}: {stderr}");
            if backend != "select" && hard_fd_limit() >= 1100 {
                assert!(stderr.contains("at most 1022 "), "{name}: {stderr}");
            }
        }
    }
}

// ------------------------------------------------------------------ options

/// Runs example `name` with `args` to completion (it must exit by itself).
fn run_to_exit(name: &str, args: &[&str]) -> (ExitStatus, String) {
    let out = command(&example(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Out-of-range, non-finite and malformed numbers are refused with status 2 and a
/// message naming the option, never a panic.
fn bad_options_exit_2(name: &str, options: &[(&str, &[&str])]) {
    for &(option, values) in options {
        for value in values {
            let (status, stderr) = run_to_exit(name, &[option, value]);
            assert_eq!(
                status.code(),
                Some(2),
                "{name} {option} {value}: {status:?}, stderr: {stderr}"
            );
            assert!(
                stderr.starts_with(&format!("{name}: {option} {value}: must be ")),
                "{name} {option} {value}: stderr: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

const BAD_SECONDS: &[&str] = &[
    "1e20",
    "1e30",
    "inf",
    "-inf",
    "nan",
    "0",
    "-1",
    "0.0000001",
    "garbage",
    "",
];
const BAD_COUNTS: &[&str] = &[
    "0",
    "-1",
    "1e20",
    "1e30",
    "inf",
    "nan",
    "garbage",
    "",
    "99999999999999999999999",
];

#[test]
fn echo_server_bad_options() {
    bad_options_exit_2(
        "echo_server",
        &[("--idle-timeout", BAD_SECONDS), ("--max-conns", BAD_COUNTS)],
    );
    let (status, stderr) = run_to_exit("echo_server", &["--max-conns", "2047"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("from 1 to 2046"), "{stderr}");
}

#[test]
fn chat_server_bad_options() {
    bad_options_exit_2(
        "chat_server",
        &[
            ("--idle-timeout", BAD_SECONDS),
            ("--slow-timeout", BAD_SECONDS),
            ("--max-conns", BAD_COUNTS),
            ("--max-line", BAD_COUNTS),
        ],
    );
    let (status, stderr) = run_to_exit("chat_server", &["--max-conns", "1023"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("from 1 to 1022"), "{stderr}");
    let (status, stderr) = run_to_exit("chat_server", &["--max-line", "4097"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("from 1 to 4096"), "{stderr}");
}

/// `--help` states what a connection costs and the whole static memory.
#[test]
fn chat_server_help_states_its_memory() {
    let out = command(&example("chat_server"))
        .arg("--help")
        .output()
        .expect("run chat_server --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "--max-line N",
        "--slow-timeout SECS",
        "each connection takes",
        "bytes (",
        "of static memory for 1024 channels",
    ] {
        assert!(text.contains(want), "no {want:?} in: {text}");
    }
}

/// The default build (no `ASYNCORE_ECHO_CAPACITY`): 2,048 channels, 2,046
/// connections, and the memory line says so.
#[test]
fn echo_server_help_states_its_capacity_and_memory() {
    let out = command(&example("echo_server"))
        .arg("--help")
        .output()
        .expect("run echo_server --help");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "(1 to 2046; default 2046)",
        "ASYNCORE_ECHO_CAPACITY=N",
        "this build: 2048",
        "Memory, all static and fixed at compile time: ",
        "2048 channels of ",
    ] {
        assert!(text.contains(want), "no {want:?} in: {text}");
    }
}

#[test]
fn bad_addresses_exit_2() {
    for name in ["echo_server", "chat_server"] {
        for addr in ["nonsense", "unix:", "127.0.0.1:70000", "localhost:80"] {
            let (status, stderr) = run_to_exit(name, &[addr]);
            assert_eq!(status.code(), Some(2), "{name} {addr}: {stderr}");
            assert!(stderr.contains("not an address"), "{name} {addr}: {stderr}");
        }
    }
}

#[test]
fn help_into_a_closed_pipe_does_not_panic() {
    for name in ["echo_server", "chat_server"] {
        // A pipe whose reader is gone before the program starts: writing gets EPIPE.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = command(&example(name))
            .arg("--help")
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        assert!(out.status.success(), "{name} --help: {:?}", out.status);
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ------------------------------------------------------------------ unix:PATH

fn round_trip(name: &str, addr: &Addr) {
    if name == "echo_server" {
        echo_once(addr, b"still there?\n");
    } else {
        chat_once(addr);
    }
}

const SERVERS: [&str; 2] = ["echo_server", "chat_server"];

/// SIGTERM, SIGINT and SIGHUP each stop a server cleanly: status 0, its socket file
/// removed.
#[test]
fn signals_stop_cleanly_and_remove_the_socket_file() {
    for name in SERVERS {
        for backend in BACKENDS {
            for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
                let dir = TempDir::new(&format!("signal-{name}-{backend}-{signal}"));
                let path = dir.join("sock");
                let spec = format!("unix:{}", path.display());
                let mut server =
                    Server::start(name, &[&spec, "--backend", backend], Stderr::Closed);
                round_trip(name, &server.addr);
                assert!(path.exists());
                assert_clean_exit(&mut server, signal);
                assert!(
                    !path.exists(),
                    "{name} {backend} {signal}: file left behind"
                );
            }
        }
    }
}

/// A stopping chat server tells every connected user, and each gets what was queued
/// for it before that: a line said just before the signal, then
/// `* server shutting down`, then EOF (a clean close, not a reset); the server exits
/// 0. A third client that reads nothing is told too (its buffers take it).
#[test]
fn chat_server_tells_its_users_it_is_shutting_down() {
    for backend in BACKENDS {
        let mut server = Server::start(
            "chat_server",
            &["127.0.0.1:0", "--backend", backend],
            Stderr::Piped,
        );
        server.collect_stderr();
        let addr = server.addr.clone();
        let mut alice = Client::connect(&addr).unwrap();
        assert!(read_line(&mut alice).starts_with("* welcome"));
        let mut bob = Client::connect(&addr).unwrap();
        assert!(read_line(&mut bob).starts_with("* welcome"));
        assert!(read_line(&mut alice).ends_with(" joined"));
        // A third that reads nothing at all, its receive buffer left to fill.
        let mute = Client::connect(&addr).unwrap();
        alice.write_all(b"/nick alice\nlast words\n").unwrap();
        loop {
            let line = read_line(&mut alice);
            if line == "* you are now alice" {
                break;
            }
            assert!(line.ends_with(" joined"), "{backend}: {line:?}");
        }
        // Bob has seen the line: it was queued before the signal.
        loop {
            let line = read_line(&mut bob);
            if line == "alice: last words" {
                break;
            }
            assert!(line.starts_with("* "), "{backend}: {line:?}");
        }
        assert_clean_exit(&mut server, Signal::SIGTERM);
        for (who, c) in [("alice", &mut alice), ("bob", &mut bob)] {
            let mut rest = String::new();
            c.read_to_string(&mut rest)
                .unwrap_or_else(|e| panic!("{backend} {who}: {e} after {rest:?}"));
            assert!(
                rest.ends_with("* server shutting down\n"),
                "{backend} {who}: {rest:?}"
            );
        }
        drop(mute);
        let stderr = server.stderr_text();
        assert!(
            stderr.contains("stopping: told 3 users"),
            "{backend}: {stderr}"
        );
        assert!(
            stderr.contains("alice left (server shutting down)"),
            "{backend}: {stderr}"
        );
    }
}

/// A regular file (or a directory) at PATH is refused and left intact.
#[test]
fn unix_path_holding_a_file_is_refused_and_kept() {
    for name in SERVERS {
        let dir = TempDir::new(&format!("file-{name}"));
        let path = dir.join("data");
        std::fs::write(&path, b"precious").unwrap();
        let (status, stderr) = run_to_exit(name, &[&format!("unix:{}", path.display())]);
        assert_eq!(status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("not a socket"), "{name}: {stderr}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");

        let sub = dir.join("directory");
        std::fs::create_dir(&sub).unwrap();
        let (status, stderr) = run_to_exit(name, &[&format!("unix:{}", sub.display())]);
        assert_eq!(status.code(), Some(1), "{name}: {stderr}");
        assert!(sub.is_dir());
    }
}

/// A second instance on a live server's socket refuses with "address in use"; the
/// first stays reachable after the second has exited, and still removes its file
/// at the end.
#[test]
fn unix_path_of_a_live_server_is_in_use() {
    for name in SERVERS {
        let dir = TempDir::new(&format!("live-{name}"));
        let path = dir.join("sock");
        let spec = format!("unix:{}", path.display());
        let mut first = Server::start(name, &[&spec, "--backend", "select"], Stderr::Closed);
        let (status, stderr) = run_to_exit(name, &[&spec, "--backend", "poll"]);
        assert_eq!(status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("address in use"), "{name}: {stderr}");
        assert!(
            path.exists(),
            "{name}: the second instance removed the file"
        );
        round_trip(name, &first.addr);
        assert_clean_exit(&mut first, Signal::SIGTERM);
        assert!(!path.exists());
    }
}

/// A socket file whose server is gone (connecting is refused) is replaced.
#[test]
fn unix_path_with_a_stale_socket_is_replaced() {
    for name in SERVERS {
        for backend in BACKENDS {
            let dir = TempDir::new(&format!("stale-{name}-{backend}"));
            let path = dir.join("sock");
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
            assert!(path.exists(), "a stale socket file");
            let spec = format!("unix:{}", path.display());
            let mut server = Server::start(name, &[&spec, "--backend", backend], Stderr::Closed);
            round_trip(name, &server.addr);
            assert_clean_exit(&mut server, Signal::SIGTERM);
            assert!(!path.exists());
        }
    }
}

/// A server removes its socket file only if it is still the one it created: when
/// its file was removed and another server bound the path, stopping the first
/// leaves the second reachable.
#[test]
fn unix_socket_file_is_removed_only_by_its_creator() {
    for name in SERVERS {
        let dir = TempDir::new(&format!("creator-{name}"));
        let path = dir.join("sock");
        let spec = format!("unix:{}", path.display());
        let mut first = Server::start(name, &[&spec], Stderr::Piped);
        std::fs::remove_file(&path).unwrap();
        let mut second = Server::start(name, &[&spec], Stderr::Closed);
        first.collect_stderr();
        assert_clean_exit(&mut first, Signal::SIGTERM);
        assert!(
            first.stderr_text().contains("left alone"),
            "{name}: the first server says why it left the file"
        );
        assert!(
            path.exists(),
            "{name}: the first server removed the second's file"
        );
        round_trip(name, &second.addr);
        assert_clean_exit(&mut second, Signal::SIGTERM);
        assert!(!path.exists());
    }
}

// ------------------------------------------------------------------ chat

/// Reads lines until one that is not a join/leave notice.
fn next_said(c: &mut Client) -> String {
    loop {
        let line = read_line(c);
        if !(line.starts_with("* guest") && (line.ends_with(" joined") || line.ends_with(" left")))
        {
            return line;
        }
    }
}

/// Control characters other than tab reach the others as `?`: a lone CR cannot
/// forge a line that displays as another user's.
#[test]
fn chat_server_replaces_control_characters() {
    for backend in BACKENDS {
        let server = Server::start(
            "chat_server",
            &["127.0.0.1:0", "--backend", backend],
            Stderr::Closed,
        );
        let mut a = Client::connect(&server.addr).expect("connect");
        assert!(read_line(&mut a).starts_with("* welcome"));
        let mut b = Client::connect(&server.addr).expect("connect");
        assert!(read_line(&mut b).starts_with("* welcome"));
        a.write_all(b"/nick mallory\n").unwrap();
        assert_eq!(next_said(&mut a), "* you are now mallory");
        a.write_all(b"hi\ralice: I owe mallory\x1b[8m\tok \xc3\xa9\n")
            .unwrap();
        assert_eq!(next_said(&mut b), "* guest2 is now mallory");
        assert_eq!(
            next_said(&mut b),
            "mallory: hi?alice: I owe mallory?[8m\tok é"
        );
    }
}

/// `--idle-timeout`: a client that sends nothing is told and disconnected. (Real
/// time, short: nothing is asserted about when, only what.)
#[test]
fn chat_server_idle_timeout_disconnects_a_silent_client() {
    for backend in BACKENDS {
        let mut server = Server::start(
            "chat_server",
            &["127.0.0.1:0", "--backend", backend, "--idle-timeout", "0.2"],
            Stderr::Piped,
        );
        server.collect_stderr();
        let mut c = Client::connect(&server.addr).expect("connect");
        assert!(read_line(&mut c).starts_with("* welcome"));
        assert_eq!(read_line(&mut c), "* idle timeout");
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).expect("then EOF");
        assert!(rest.is_empty(), "{rest:?}");
        assert_clean_exit(&mut server, Signal::SIGTERM);
        let stderr = server.stderr_text();
        assert!(
            stderr.contains(": guest2 left (idle timeout, disconnected)"),
            "{stderr}"
        );
    }
}

/// `--max-line N`: a line of exactly N bytes is relayed, one of N + 1 gets
/// `* line too long` and reaches nobody; LF and CRLF line ends; also at the bound.
#[test]
fn chat_server_max_line_n_passes_and_n_plus_one_is_too_long() {
    for (backend, max) in [
        ("select", 100),
        ("poll", 100),
        ("epoll", 100),
        ("poll", 4096),
    ] {
        let server = Server::start(
            "chat_server",
            &[
                "127.0.0.1:0",
                "--backend",
                backend,
                "--max-line",
                &max.to_string(),
            ],
            Stderr::Closed,
        );
        let mut a = Client::connect(&server.addr).expect("connect");
        assert!(read_line(&mut a).starts_with("* welcome"));
        let mut b = Client::connect(&server.addr).expect("connect");
        assert!(read_line(&mut b).starts_with("* welcome"));
        for end in ["\n", "\r\n"] {
            let fits = "f".repeat(max);
            let over = "o".repeat(max + 1);
            a.write_all(format!("{fits}{end}{over}{end}/ping{end}").as_bytes())
                .unwrap();
            assert_eq!(
                next_said(&mut a),
                "* line too long",
                "{backend} {max} {end:?}"
            );
            assert_eq!(next_said(&mut a), "* pong");
            assert_eq!(
                next_said(&mut b),
                format!("guest2: {fits}"),
                "{backend} {max} {end:?}"
            );
        }
        // Nothing of the over-long lines reached b: the next thing it hears is this.
        a.write_all(b"after\n").unwrap();
        assert_eq!(next_said(&mut b), "guest2: after", "{backend} {max}");
    }
}

/// `--slow-timeout`: a client that never reads while another talks is disconnected
/// as too slow, the others are told, and the server logs why. (Real time, short:
/// nothing is asserted about when.)
#[test]
fn chat_server_slow_timeout_disconnects_a_client_that_never_reads() {
    for backend in BACKENDS {
        let mut server = Server::start(
            "chat_server",
            &["127.0.0.1:0", "--backend", backend, "--slow-timeout", "0.2"],
            Stderr::Piped,
        );
        server.collect_stderr();
        let mut mute = Client::connect(&server.addr).expect("connect");
        mute.write_all(b"/nick mute\n").unwrap();
        let mut talker = Client::connect(&server.addr).expect("connect");
        assert!(read_line(&mut talker).starts_with("* welcome"));
        loop {
            if read_line(&mut talker).ends_with(" is now mute") {
                break;
            }
        }
        // The talker reads on its own thread while it talks, until told.
        let Client::Tcp(stream) = &talker else {
            panic!("TCP")
        };
        let mut reading = Client::Tcp(stream.try_clone().unwrap());
        let heard = std::thread::spawn(move || {
            loop {
                let l = read_line(&mut reading);
                if l.contains(" left") {
                    return l;
                }
            }
        });
        let line = format!("{}\n", "t".repeat(999));
        let mut sent = 0;
        while !heard.is_finished() {
            assert!(
                sent < 100_000,
                "{backend}: the mute one was never disconnected"
            );
            talker.write_all(line.repeat(100).as_bytes()).unwrap();
            sent += 100;
        }
        assert_eq!(heard.join().unwrap(), "* mute left (too slow)", "{backend}");
        assert_clean_exit(&mut server, Signal::SIGTERM);
        let stderr = server.stderr_text();
        assert!(
            stderr.contains(": mute left (too slow, disconnected)"),
            "{backend}: {stderr}"
        );
    }
}
