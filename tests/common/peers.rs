//! Peers outside this test binary: `python3` (with the modules a test needs) and its
//! scripts in `tests/python/` ([`script`]), the example binaries (started through
//! the target's runner, see [`command`]), subprocesses run to completion under a
//! guard ([`run`]) and servers that say where they listen ([`Listening`]).
//!
//! A missing peer FAILS the test with a message saying what is missing and how to
//! get it, so a test can never pass without having checked anything. Setting
//! `ASYNCORE_SKIP_INTEROP=1` turns that failure into a skip with a printed note (for
//! a machine that cannot have the peer, e.g. Python 3.12+ without `asyncore`).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The variable that lets a test whose peer is missing skip instead of failing.
pub const SKIP_VAR: &str = "ASYNCORE_SKIP_INTEROP";

/// How long any one subprocess may run before the test kills it and fails.
pub const SUBPROCESS_PATIENCE: Duration = Duration::from_secs(120);

/// A peer is missing: fails the test, or, with [`SKIP_VAR`]`=1`, prints that the test
/// is skipped and returns `None`.
fn missing<T>(what: &str) -> Option<T> {
    if std::env::var_os(SKIP_VAR).is_some_and(|v| v == "1") {
        eprintln!("SKIPPED ({SKIP_VAR}=1): {what}");
        return None;
    }
    panic!("{what}\n(set {SKIP_VAR}=1 to skip the tests that need it instead of failing)");
}

/// `python3`, if it runs and `probe` (Python code, e.g. `import asyncore`) succeeds.
/// Otherwise the test fails (or skips, see [`SKIP_VAR`]).
pub fn python(probe: &str) -> Option<&'static str> {
    let why = match Command::new("python3")
        .args(["-W", "ignore", "-c", probe])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(out) if out.status.success() => return Some("python3"),
        Ok(out) => format!(
            "exits {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("cannot run: {e}"),
    };
    let hint = if probe.contains("asyncore") || probe.contains("asynchat") {
        "; `asyncore` and `asynchat` are in Python 3.11 and older only"
    } else {
        ""
    };
    missing(&format!(
        "python3 with `{probe}` is needed and not available (python3 {why}){hint}"
    ))
}

/// The Python script `tests/python/<name>`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// The example binary `name`, which a plain `cargo test` builds next to the test
/// binaries: from `target/<profile>/deps/<test>-*` to
/// `target/<profile>/examples/<name>`. Fails the test (or skips, see [`SKIP_VAR`])
/// when it is not there, and fails it when it is older than its source (a stale
/// binary would test old code).
pub fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let bin = dir.join("examples").join(name);
    let build = format!(
        "`cargo build --example {name}` builds it (a plain `cargo test` builds every \
         example; `cargo test --test ...` alone does not)"
    );
    let Ok(built) = std::fs::metadata(&bin).and_then(|m| m.modified()) else {
        return missing(&format!(
            "the example binary {} is needed and was not built: {build}",
            bin.display()
        ));
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut sources = vec![root.join(format!("{name}.rs"))];
    if let Ok(dir) = std::fs::read_dir(root.join(name)) {
        sources.extend(dir.filter_map(|e| Some(e.ok()?.path())));
    }
    for source in sources {
        let changed = std::fs::metadata(&source).and_then(|m| m.modified());
        if changed.is_ok_and(|t: SystemTime| t > built) {
            panic!(
                "the example binary {} is older than {}: rebuild it; {build}",
                bin.display(),
                source.display()
            );
        }
    }
    Some(bin)
}

/// The variable that names a command to start the example binaries with, e.g.
/// `qemu-arm -L /usr/arm-linux-gnueabihf`; empty: none. It overrides cargo's
/// `CARGO_TARGET_<TRIPLE>_RUNNER`.
pub const RUNNER_VAR: &str = "ASYNCORE_RUNNER";

/// The command prefix that runs binaries built for the target these tests were built
/// for: [`RUNNER_VAR`] if it is set, else cargo's `CARGO_TARGET_<TRIPLE>_RUNNER` for
/// that triple (the runner cargo started this test with when it comes from the
/// environment), else none. Split at whitespace, as cargo splits it. A runner set
/// only in a `.cargo/config.toml` is not seen: set the variable.
///
/// Python peers are host programs and never go through it.
pub fn runner() -> Vec<String> {
    if let Some(ours) = std::env::var_os(RUNNER_VAR) {
        return ours
            .to_string_lossy()
            .split_whitespace()
            .map(String::from)
            .collect();
    }
    let target = env!("ASYNCORE_BUILD_TARGET");
    let var = format!(
        "CARGO_TARGET_{}_RUNNER",
        target.to_ascii_uppercase().replace(['-', '.'], "_")
    );
    std::env::var(var)
        .map(|r| r.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// A [`Command`] that starts the binary `bin` built for the tests' target (an example
/// from [`example`]), through [`runner`] when there is one. Every test that starts an
/// example binary goes through this, so the suite runs under emulation (`qemu-arm`)
/// as it runs natively.
pub fn command(bin: &Path) -> Command {
    let mut prefix = runner().into_iter();
    match prefix.next() {
        None => Command::new(bin),
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(prefix).arg(bin);
            cmd
        }
    }
}

/// Starts `cmd` with stdin closed and stdout and stderr piped.
fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

/// What a finished subprocess left.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `cmd` to completion with stdin closed, reading its output as it goes (so a
/// large output never blocks it). Kills it and fails the test after
/// [`SUBPROCESS_PATIENCE`]: a hang becomes a failure, never a timed assertion.
pub fn run(cmd: &mut Command) -> Output {
    let mut child = spawn_piped(cmd);
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()));
    let status = match rx.recv_timeout(SUBPROCESS_PATIENCE) {
        Ok(status) => status.expect("wait for the subprocess"),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("{cmd:?} still running after {SUBPROCESS_PATIENCE:?}; killed");
        }
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    }
}

/// A running server a test talks to (a Python peer, an example binary) that says where
/// it listens: the first line it writes on stdout is `listening on ADDR`. A thread
/// reads its stderr as it goes, so it never blocks on a full pipe. Killed (if still
/// running) when dropped.
pub struct Listening {
    child: Child,
    /// What its first line said after `listening on `.
    pub addr: String,
    stderr: Option<mpsc::Receiver<String>>,
}

impl Listening {
    /// Starts `cmd` with stdin closed and stdout and stderr piped, and waits up to
    /// [`SUBPROCESS_PATIENCE`] for its first line. `Err` (the process killed) says
    /// what came instead of `listening on ADDR`, and its stderr.
    pub fn start(cmd: &mut Command) -> Result<Listening, String> {
        let mut child = spawn_piped(cmd);
        let mut err = child.stderr.take().unwrap();
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            let _ = etx.send(s);
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = Listening {
            child,
            addr: String::new(),
            stderr: Some(erx),
        };
        let line = rx.recv_timeout(SUBPROCESS_PATIENCE).unwrap_or_default();
        match line.trim_end().strip_prefix("listening on ") {
            Some(addr) => {
                server.addr = addr.to_string();
                Ok(server)
            }
            None => Err(format!(
                "expected `listening on ADDR` within {:?}, got {line:?}; stderr: {}",
                SUBPROCESS_PATIENCE,
                server.finish()
            )),
        }
    }

    /// Its whole stderr, once it has exited (waiting up to [`SUBPROCESS_PATIENCE`]);
    /// empty after the first call.
    pub fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|rx| rx.recv_timeout(SUBPROCESS_PATIENCE).ok())
            .unwrap_or_default()
    }

    /// Kills it; its whole stderr.
    pub fn finish(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr_text()
    }

    /// Stops it with `signal` and waits for it to exit (failing after
    /// [`SUBPROCESS_PATIENCE`]); its exit status and its whole stderr.
    pub fn stop(mut self, signal: Signal) -> (ExitStatus, String) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("kill(2)");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("waitpid") {
                break s;
            }
            assert!(
                start.elapsed() < SUBPROCESS_PATIENCE,
                "{signal} did not stop it"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        (status, self.stderr_text())
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
