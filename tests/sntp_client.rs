//! The `sntp_client` example binary against a tiny SNTP responder in Python
//! (`tests/python/sntp_server.py`, on 127.0.0.1 or ::1 and a port it picks), on
//! select, poll and epoll: the time and the offset of a server whose clock is 1000.25 s
//! ahead, lost requests retried with back-off, a kiss-o'-death, an unsynchronized
//! server, a forged reply and garbage ignored, a silent server, a closed port
//! (`ECONNREFUSED`), bad command lines.
//!
//! The example's own unit tests (packets, checks, offset across the 2036 era, dates;
//! options and addresses) run here too.
//!
//! A missing `python3` or example binary fails the tests, unless
//! `ASYNCORE_SKIP_INTEROP=1` (`tests/common/peers.rs`). The binary comes from a plain
//! `cargo test`, or `cargo build --example sntp_client` before
//! `cargo test --test sntp_client`.

mod common;

// The example's pure SNTP module, for its unit tests.
#[allow(dead_code)]
#[path = "../examples/sntp_client/protocol.rs"]
mod protocol;

use std::process::Command;

use common::peers::{Listening, Output, command, example, python, run, script};

/// `tests/python/sntp_server.py MODE --host HOST`, bound; killed when dropped.
struct Responder {
    peer: Listening,
    port: u16,
}

impl Responder {
    fn start(py: &str, mode: &str, host: &str) -> Responder {
        let peer = Listening::start(
            Command::new(py)
                .arg(script("sntp_server.py"))
                .args([mode, "--host", host]),
        )
        .unwrap_or_else(|why| panic!("the responder did not start: {why}"));
        let port = peer.addr.parse().expect("the responder's port");
        Responder { peer, port }
    }

    /// Stops it; what it logged (one `request N` line per request).
    fn requests_log(&mut self) -> String {
        self.peer.finish()
    }

    fn requests(&mut self) -> usize {
        self.requests_log()
            .lines()
            .filter(|l| l.starts_with("request "))
            .count()
    }
}

fn sntp(args: &[&str]) -> Option<(Output, String)> {
    let bin = example("sntp_client")?;
    let out = run(command(&bin).args(args));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Some((out, stdout))
}

const PY: &str = "import socket, struct";

/// The offset the client printed.
fn offset(stdout: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("offset  "))
        .and_then(|l| l.trim_end_matches(" s").parse().ok())
        .unwrap_or_else(|| panic!("no offset in {stdout:?}"))
}

#[test]
fn time_and_offset_on_every_backend_v4_and_v6() {
    let Some(py) = python(PY) else { return };
    for host in ["127.0.0.1", "::1"] {
        if host == "::1" && !common::Fam::V6.available() {
            continue;
        }
        for backend in ["select", "poll", "epoll"] {
            let mut r = Responder::start(py, "ok", host);
            let target = if host.contains(':') {
                format!("[{host}]:{}", r.port)
            } else {
                format!("{host}:{}", r.port)
            };
            // A timeout no slow machine reaches: exactly one request.
            let Some((out, stdout)) = sntp(&[&target, "--backend", backend, "--timeout", "60"])
            else {
                return;
            };
            assert!(out.status.success(), "{backend} {host}: {}", out.stderr);
            // The responder's clock is 1000.25 s ahead: the offset says so, within
            // the round trip (loopback: far below the margin).
            let o = offset(&stdout);
            assert!((o - 1000.25).abs() < 1.0, "{stdout}");
            assert!(stdout.contains("(stratum 2, NTP version 4)"), "{stdout}");
            assert!(stdout.contains(" UTC\n"), "{stdout}");
            assert_eq!(r.requests(), 1);
        }
    }
}

#[test]
fn a_stratum_1_server_names_its_reference() {
    let Some(py) = python(PY) else { return };
    let r = Responder::start(py, "stratum1", "127.0.0.1");
    let Some((out, stdout)) = sntp(&[&format!("127.0.0.1:{}", r.port)]) else {
        return;
    };
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        stdout.contains("(stratum 1 \"GPS\", NTP version 4)"),
        "{stdout}"
    );
}

#[test]
fn lost_requests_are_retried_with_back_off() {
    let Some(py) = python(PY) else { return };
    for backend in ["select", "poll", "epoll"] {
        let mut r = Responder::start(py, "drop:2", "127.0.0.1");
        let target = format!("127.0.0.1:{}", r.port);
        let Some((out, stdout)) = sntp(&[
            &target,
            "--timeout",
            "0.05",
            "--retries",
            "3",
            "--backend",
            backend,
        ]) else {
            return;
        };
        assert!(out.status.success(), "{backend}: {}", out.stderr);
        assert!((offset(&stdout) - 1000.25).abs() < 1.0, "{stdout}");
        // Two lost, the third answered (a fourth only if the machine is so slow that
        // the third's answer took longer than its timeout; that answer is then
        // ignored as not ours, and the fourth's is used).
        assert!(r.requests() >= 3, "two lost, then answered");
    }
}

#[test]
fn no_answer_after_the_retries() {
    let Some(py) = python(PY) else { return };
    let mut r = Responder::start(py, "silent", "127.0.0.1");
    let target = format!("127.0.0.1:{}", r.port);
    let Some((out, stdout)) = sntp(&[&target, "--timeout", "0.02", "--retries", "2"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(stdout, "");
    assert!(
        out.stderr
            .contains(&format!("no answer from {target} after 3 tries")),
        "{}",
        out.stderr
    );
    assert_eq!(r.requests(), 3);
}

#[test]
fn a_forged_reply_and_garbage_are_ignored() {
    let Some(py) = python(PY) else { return };
    let r = Responder::start(py, "spoof", "127.0.0.1");
    let Some((out, stdout)) = sntp(&[&format!("127.0.0.1:{}", r.port)]) else {
        return;
    };
    assert!(out.status.success(), "{}", out.stderr);
    assert!((offset(&stdout) - 1000.25).abs() < 1.0, "{stdout}");
}

#[test]
fn kiss_of_death_and_unsynchronized_end_it() {
    let Some(py) = python(PY) else { return };
    for (mode, says) in [
        ("kiss", "kiss-o'-death RATE: the server says stop"),
        ("unsync", "not synchronized (leap indicator 3)"),
    ] {
        let mut r = Responder::start(py, mode, "127.0.0.1");
        let target = format!("127.0.0.1:{}", r.port);
        let Some((out, stdout)) = sntp(&[&target, "--retries", "5", "--timeout", "60"]) else {
            return;
        };
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", out.stderr);
        assert_eq!(stdout, "");
        assert!(out.stderr.contains(says), "{mode}: {}", out.stderr);
        assert_eq!(r.requests(), 1, "{mode}: no retry after a final answer");
    }
}

#[test]
fn a_closed_port_is_refused_at_once() {
    // A port that was free a moment ago: the ICMP port unreachable comes back as
    // ECONNREFUSED on the connected socket.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for backend in ["select", "poll", "epoll"] {
        let Some((out, _)) = sntp(&[
            &format!("127.0.0.1:{port}"),
            "--backend",
            backend,
            "--retries",
            "10",
        ]) else {
            return;
        };
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr
                .contains("refused the request (ICMP port unreachable)"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn bad_command_lines_exit_2() {
    for args in [
        &[][..],
        &["127.0.0.1", "--timeout", "0"],
        &["127.0.0.1", "--retries", "11"],
        &["127.0.0.1", "--backend", "kqueue"],
        &["127.0.0.1", "extra"],
        &["--nope"],
    ] {
        let Some((out, _)) = sntp(args) else { return };
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("usage: sntp_client"), "{args:?}");
    }
    let Some((out, _)) = sntp(&["no-such-host.invalid"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("cannot resolve no-such-host.invalid"),
        "{}",
        out.stderr
    );
}
