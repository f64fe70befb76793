//! The `inetd` example as a process, on both backends: `inetd -- cat` is an echo
//! server byte-exact for 1 MiB; `inetd -- sh -c 'exit 3'` logs status 3; a child
//! flooding its stdout reaches a slow client byte-exact while inetd's memory stays
//! put; `--max-conns` refuses extra connections cleanly; a client that resets ends
//! its child; SIGTERM ends every child and exits 0; bad command lines exit 2.
//!
//! The binary is the one `cargo test` builds next to this test, started through the
//! target's runner if there is one (`tests/common/peers.rs`); a missing or stale one
//! fails the test with a message. No assertion is about time: the timeouts only turn a
//! hang into a failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Against hangs only.
const PATIENCE: Duration = Duration::from_secs(60);

const BACKENDS: [&str; 3] = ["select", "poll", "epoll"];

/// The inetd binary `cargo test` builds next to this test (`None`: skipped, with the
/// reason printed; a missing or stale binary fails the test otherwise).
fn inetd_binary() -> Option<PathBuf> {
    common::peers::example("inetd")
}

/// A running inetd; killed (if still running) when dropped.
struct Inetd {
    child: Child,
    port: u16,
    /// Everything it wrote to stderr so far.
    log: Arc<Mutex<String>>,
}

impl Inetd {
    /// `inetd 127.0.0.1:0 --backend BACKEND OPTIONS -- COMMAND`, once it listens
    /// (`None`: the binary is missing and the test is skipped).
    fn start(backend: &str, options: &[&str], command: &[&str]) -> Option<Inetd> {
        let mut child = common::peers::command(&inetd_binary()?)
            .arg("127.0.0.1:0")
            .args(["--backend", backend])
            .args(options)
            .arg("--")
            .args(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start inetd");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .expect("read inetd's stdout");
        let port = first
            .trim_end()
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("expected `listening on 127.0.0.1:PORT`, got {first:?}"));
        Some(Inetd { child, port, log })
    }

    fn connect(&self) -> TcpStream {
        let c = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        c.set_write_timeout(Some(PATIENCE)).unwrap();
        c
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until stderr holds `count` lines containing `needle`; returns them.
    fn wait_lines(&self, needle: &str, count: usize) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines: Vec<String> = self
                .log()
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_string)
                .collect();
            if lines.len() >= count {
                return lines;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "no {count} lines with {needle:?} in inetd's stderr: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The pids of the children started so far (`... child PID` lines).
    fn children(&self, count: usize) -> Vec<i32> {
        self.wait_lines(": child ", count)
            .iter()
            .filter(|l| l.contains(" from "))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    }

    /// The most memory it has held (`VmHWM`, in KiB).
    fn peak_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// SIGTERM, then its exit status.
    fn stop(&mut self) -> ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).expect("kill");
        self.wait()
    }

    fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                return status;
            }
            assert!(start.elapsed() < PATIENCE, "inetd did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Inetd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether process `pid` exists.
fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None) != Err(Errno::ESRCH)
}

/// Waits until `pid` is gone.
fn wait_gone(pid: i32) {
    let start = Instant::now();
    while alive(pid) {
        assert!(start.elapsed() < PATIENCE, "child {pid} still exists");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn cat_is_an_echo_server_byte_exact_for_one_mib() {
    for backend in BACKENDS {
        let Some(mut inetd) = Inetd::start(backend, &[], &["cat"]) else {
            return;
        };
        let client = inetd.connect();
        let msg = pattern(1 << 20);
        // Write and read at once: inetd holds only a few KiB per direction.
        let mut writer = client.try_clone().unwrap();
        let sent = msg.clone();
        let sender = std::thread::spawn(move || {
            writer.write_all(&sent).expect("send 1 MiB");
            writer.shutdown(Shutdown::Write).expect("shutdown");
        });
        let mut back = Vec::new();
        (&client)
            .read_to_end(&mut back)
            .expect("read the echo to EOF");
        sender.join().unwrap();
        assert!(
            back == msg,
            "{backend}: {} bytes back, differing",
            back.len()
        );
        inetd.wait_lines("ended: exit status 0", 1);
        assert!(inetd.stop().success(), "{backend}");
    }
}

#[test]
fn exit_status_3_is_logged() {
    for backend in BACKENDS {
        let Some(mut inetd) = Inetd::start(backend, &[], &["sh", "-c", "exit 3"]) else {
            return;
        };
        let mut client = inetd.connect();
        let mut rest = Vec::new();
        client
            .read_to_end(&mut rest)
            .expect("the connection closes once the child ended");
        assert!(rest.is_empty(), "{backend}: {rest:?}");
        let line = &inetd.wait_lines("ended:", 1)[0];
        assert!(line.ends_with("ended: exit status 3"), "{backend}: {line}");
        assert!(inetd.stop().success(), "{backend}");
    }
}

#[test]
fn a_flooding_child_reaches_a_slow_client_byte_exact_in_bounded_memory() {
    const LINE: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const TOTAL: usize = 32 << 20;
    for backend in BACKENDS {
        let script = format!("yes {LINE} | head -c {TOTAL}");
        let Some(mut inetd) = Inetd::start(backend, &[], &["sh", "-c", &script]) else {
            return;
        };
        let before = inetd.peak_kib();
        let mut client = inetd.connect();
        let line = format!("{LINE}\n").into_bytes();
        let mut got = 0usize;
        let mut buf = [0u8; 8192];
        let mut reads = 0u64;
        loop {
            let n = client.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                assert_eq!(b, line[got % line.len()], "{backend}: byte {got}");
                got += 1;
            }
            reads += 1;
            // A slow reader: the child outruns it and is held back.
            if reads.is_multiple_of(16) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(got, TOTAL, "{backend}: every byte");
        let after = inetd.peak_kib();
        assert!(
            after.saturating_sub(before) < 4096,
            "{backend}: inetd's peak memory grew from {before} KiB to {after} KiB while \
             relaying {} MiB",
            TOTAL >> 20
        );
        assert!(inetd.stop().success(), "{backend}");
    }
}

#[test]
fn extra_connections_are_refused_cleanly() {
    for backend in BACKENDS {
        let Some(mut inetd) = Inetd::start(backend, &["--max-conns", "1"], &["cat"]) else {
            return;
        };
        let mut first = inetd.connect();
        first.write_all(b"one\n").unwrap();
        let mut back = [0u8; 4];
        first.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"one\n");
        // The limit is reached: the next one is closed at once...
        let mut second = inetd.connect();
        let mut rest = Vec::new();
        second.read_to_end(&mut rest).expect("closed, not reset");
        assert!(rest.is_empty(), "{backend}");
        inetd.wait_lines("connection refused: 1 children running", 1);
        // ...while the first is still served.
        first.write_all(b"two\n").unwrap();
        first.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"two\n");
        // Once the first is done, a new one is served.
        first.shutdown(Shutdown::Write).unwrap();
        first.read_to_end(&mut rest).unwrap();
        inetd.wait_lines("ended: exit status 0", 1);
        let mut third = inetd.connect();
        third.write_all(b"six\n").unwrap();
        third.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"six\n", "{backend}");
        assert!(inetd.stop().success(), "{backend}");
    }
}

#[test]
fn a_client_that_resets_ends_its_child() {
    for backend in BACKENDS {
        let Some(mut inetd) = Inetd::start(backend, &[], &["sleep", "1000"]) else {
            return;
        };
        let client = inetd.connect();
        let pid = inetd.children(1)[0];
        assert!(alive(pid));
        // SO_LINGER 0: close sends a reset.
        nix::sys::socket::setsockopt(
            &client,
            nix::sys::socket::sockopt::Linger,
            &nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        )
        .unwrap();
        drop(client);
        inetd.wait_lines("the client left; child", 1);
        wait_gone(pid);
        assert!(inetd.stop().success(), "{backend}");
    }
}

#[test]
fn sigterm_ends_every_child_and_exits_0() {
    for backend in BACKENDS {
        let Some(mut inetd) = Inetd::start(backend, &[], &["sleep", "1000"]) else {
            return;
        };
        let clients: Vec<TcpStream> = (0..3).map(|_| inetd.connect()).collect();
        let pids = inetd.children(3);
        assert_eq!(pids.len(), 3, "{backend}: {}", inetd.log());
        assert!(pids.iter().all(|&p| alive(p)));
        let status = inetd.stop();
        assert!(status.success(), "{backend}: {status:?}");
        for pid in pids {
            // inetd killed and reaped it before exiting: not even a zombie was
            // left to be re-parented (which would still answer kill(pid, 0) until
            // its new parent reaped it).
            assert!(!alive(pid), "{backend}: child {pid} outlived inetd");
        }
        drop(clients);
    }
}

#[test]
fn a_command_that_cannot_start_refuses_the_connection_and_inetd_goes_on() {
    let Some(mut inetd) = Inetd::start("poll", &[], &["/nonexistent/command"]) else {
        return;
    };
    // Natively, exec's failure reaches the spawn; under an emulator that runs the
    // child through itself (qemu-user), the child exits 127 instead.
    let failed = |log: &str| {
        log.lines()
            .filter(|l| {
                l.contains("connection refused: cannot start") && l.contains("No such file")
                    || l.ends_with("ended: exit status 127")
            })
            .count()
    };
    for n in 1..=2 {
        let mut client = inetd.connect();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        let start = Instant::now();
        while failed(&inetd.log()) < n {
            assert!(start.elapsed() < PATIENCE, "{}", inetd.log());
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(inetd.stop().success());
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &["127.0.0.1:0"][..],
        &["127.0.0.1:0", "--"],
        &["--", "cat"],
        &["127.0.0.1:0", "--max-conns", "0", "--", "cat"],
        &["127.0.0.1:0", "--max-conns", "129", "--", "cat"],
        &["127.0.0.1:0", "--idle-timeout", "1", "--", "cat"],
        &["not-an-address", "--", "cat"],
    ] {
        let Some(bin) = inetd_binary() else {
            return;
        };
        let out = common::peers::run(common::peers::command(&bin).args(args));
        let stderr = out.stderr;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("inetd: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
