//! The `udp_echo` example as a process, against a Python client
//! (`tests/python/udp_client.py`): 10,000 datagrams of random sizes from 0 to 65,507
//! bytes from 20 sockets on IPv4, each echo byte-exact to the socket that sent it
//! (select, poll and epoll); the same on IPv6 and on a Unix datagram socket; a 70,000-byte
//! datagram refused by the client's kernel with the server unaffected; `--max-size`
//! dropping and counting; an unbound Unix sender counted; the counts at exit; bad
//! options; the signals that stop it and the socket file it removes.
//!
//! A missing `python3` or example binary fails the tests, unless
//! `ASYNCORE_SKIP_INTEROP=1` (`tests/common/peers.rs`). The binary comes from a plain
//! `cargo test`, or `cargo build --example udp_echo` before `cargo test --test
//! udp_echo`.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use common::peers::{Listening, command, example, python, run, script};
use common::{Fam, PATIENCE, TestDir};
use nix::sys::signal::Signal;

/// A running `udp_echo`; killed (if still running) when dropped.
struct Server {
    peer: Listening,
    /// What it printed after `listening on `.
    addr: String,
}

impl Server {
    /// Starts `udp_echo` with `args`; `None` if the example binary is missing and
    /// `ASYNCORE_SKIP_INTEROP=1`.
    fn start(args: &[&str]) -> Option<Server> {
        let peer = Listening::start(command(&example("udp_echo")?).args(args))
            .unwrap_or_else(|why| panic!("udp_echo {args:?}: {why}"));
        let addr = peer.addr.clone();
        Some(Server { peer, addr })
    }

    /// Stops it with `signal`; its exit status and its whole stderr.
    fn stop(self, signal: Signal) -> (ExitStatus, String) {
        self.peer.stop(signal)
    }
}

/// Runs the Python client against `addr`; asserts it checked everything. Returns
/// how many datagrams it sent again (the loopback dropped them, or was slow).
fn client(py: &str, addr: &str, sockets: usize, count: usize, tmp: Option<&Path>) -> u64 {
    let mut cmd = Command::new(py);
    cmd.arg(script("udp_client.py")).args([
        "load",
        addr,
        "--sockets",
        &sockets.to_string(),
        "--count",
        &count.to_string(),
        "--seed",
        "17",
    ]);
    if let Some(tmp) = tmp {
        cmd.arg("--tmp").arg(tmp);
    }
    let out = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with(&format!("ok {count} echoed")),
        "client against {addr}: {} {stdout}{}",
        out.status,
        out.stderr
    );
    assert!(stdout.contains("refused EMSGSIZE"), "{stdout}");
    println!("{addr}: {}", stdout.trim());
    stdout
        .split(' ')
        .nth(3)
        .and_then(|n| n.parse().ok())
        .expect("the retransmission count")
}

/// The count the server reported at exit for `what` (e.g. "datagrams").
fn reported(stderr: &str, what: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("echoed "))
        .unwrap_or_else(|| panic!("no counts at exit: {stderr}"));
    let mut words = line.split([' ', ',', '(', ';']);
    let mut prev = None;
    for w in words.by_ref() {
        if w == what {
            break;
        }
        if !w.is_empty() {
            prev = Some(w);
        }
    }
    prev.and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count for {what:?} in {line:?}"))
}

fn ten_thousand_from_twenty(backend: &str) {
    let Some(py) = python("import random; random.Random(1).randbytes(1)") else {
        return;
    };
    let Some(server) = Server::start(&["127.0.0.1:0", "--backend", backend, "--quiet"]) else {
        return;
    };
    let again = client(py, &server.addr, 20, 10_000, None);
    let (status, stderr) = server.stop(Signal::SIGINT);
    assert!(status.success(), "{status}: {stderr}");
    // Every datagram came back; a copy sent again may have been echoed too.
    let echoed = reported(&stderr, "datagrams");
    assert!(
        (10_000..=10_000 + again).contains(&echoed),
        "{echoed}: {stderr}"
    );
    assert_eq!(reported(&stderr, "over"), 0);
}

#[test]
fn python_client_ipv4_select() {
    ten_thousand_from_twenty("select");
}

#[test]
fn python_client_ipv4_poll() {
    ten_thousand_from_twenty("poll");
}

#[test]
fn python_client_ipv4_epoll() {
    ten_thousand_from_twenty("epoll");
}

#[test]
fn python_client_ipv6() {
    if !Fam::V6.available() {
        eprintln!("skipping: no IPv6 loopback here");
        return;
    }
    let Some(py) = python("import random; random.Random(1).randbytes(1)") else {
        return;
    };
    let Some(server) = Server::start(&["[::1]:0", "--backend", "poll", "--quiet"]) else {
        return;
    };
    assert!(server.addr.starts_with("[::1]:"), "{}", server.addr);
    let _ = client(py, &server.addr, 5, 1_000, None);
    let (status, stderr) = server.stop(Signal::SIGTERM);
    assert!(status.success(), "{status}: {stderr}");
}

#[test]
fn python_client_unix_datagram() {
    let Some(py) = python("import random; random.Random(1).randbytes(1)") else {
        return;
    };
    let dir = TestDir::new("udp-echo-unix");
    let path = dir.file("echo.sock");
    let spec = format!("unix:{}", path.display());
    let Some(server) = Server::start(&[&spec, "--backend", "select", "--quiet"]) else {
        return;
    };
    assert_eq!(server.addr, spec);
    let _ = client(py, &spec, 20, 2_000, Some(dir.path()));
    let (status, stderr) = server.stop(Signal::SIGHUP);
    assert!(status.success(), "{status}: {stderr}");
    assert!(!path.exists(), "the socket file is removed at exit");
}

/// Waits for one datagram on `s` (bounded by PATIENCE: a hang becomes a failure).
fn recv_one(s: &std::net::UdpSocket) -> Vec<u8> {
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = vec![0u8; 70_000];
    let n = s.recv(&mut buf).expect("an echo");
    buf.truncate(n);
    buf
}

#[test]
fn max_size_drops_and_counts() {
    for backend in ["select", "poll", "epoll"] {
        let Some(server) =
            Server::start(&["127.0.0.1:0", "--backend", backend, "--max-size", "100"])
        else {
            return;
        };
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect(&server.addr).unwrap();
        c.send(&[1u8; 101]).unwrap();
        c.send(&[2u8; 100]).unwrap();
        c.send(b"").unwrap();
        // The 101-byte one is dropped: the first echo is the 100-byte one.
        assert_eq!(recv_one(&c), [2u8; 100]);
        assert_eq!(recv_one(&c), b"");
        let (status, stderr) = server.stop(Signal::SIGINT);
        assert!(status.success(), "{status}: {stderr}");
        assert!(
            stderr.contains("dropped a datagram of 101 bytes from 127.0.0.1:")
                && stderr.contains("(over --max-size 100)"),
            "{stderr}"
        );
        assert_eq!(reported(&stderr, "datagrams"), 2, "{stderr}");
        assert_eq!(reported(&stderr, "over"), 1, "{stderr}");
    }
}

#[test]
fn an_unbound_unix_sender_is_counted_and_others_served() {
    let dir = TestDir::new("udp-echo-unbound");
    let path = dir.file("echo.sock");
    let spec = format!("unix:{}", path.display());
    let Some(server) = Server::start(&[&spec, "--backend", "poll"]) else {
        return;
    };
    let anon = UnixDatagram::unbound().unwrap();
    anon.send_to(b"who am I", &path).unwrap();
    let client_path = dir.file("client.sock");
    let named = UnixDatagram::bind(&client_path).unwrap();
    named.set_read_timeout(Some(PATIENCE)).unwrap();
    named.send_to(b"hello", &path).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = named.recv_from(&mut buf).expect("an echo");
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(from.as_pathname(), Some(path.as_path()));
    let (status, stderr) = server.stop(Signal::SIGTERM);
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("from an unbound Unix socket"), "{stderr}");
    assert_eq!(reported(&stderr, "from"), 1, "{stderr}");
    assert!(!path.exists());
}

#[test]
fn bad_options_exit_2() {
    let Some(bin) = example("udp_echo") else {
        return;
    };
    for (args, says) in [
        (&["--max-size", "65508"][..], "from 0 to 65507"),
        (&["--max-size", "-1"], "from 0 to 65507"),
        (&["--max-conns", "5"], "not an option of udp_echo"),
        (&["--idle-timeout", "5"], "not an option of udp_echo"),
        (&["nonsense"], "not an address"),
        (&["--backend", "kqueue"], "unknown backend"),
    ] {
        let out = run(command(&bin).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    let out = run(command(&bin).arg("--help"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--max-size N"));
}

#[test]
fn a_live_unix_socket_is_in_use_and_a_file_is_kept() {
    let dir = TestDir::new("udp-echo-inuse");
    let path: PathBuf = dir.file("echo.sock");
    let spec = format!("unix:{}", path.display());
    let Some(first) = Server::start(&[&spec]) else {
        return;
    };
    let Some(bin) = example("udp_echo") else {
        return;
    };
    let out = run(command(&bin).arg(&spec));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("address in use"), "{}", out.stderr);
    let (status, _) = first.stop(Signal::SIGINT);
    assert!(status.success());
    std::fs::write(&path, b"precious").unwrap();
    let out = run(command(&bin).arg(&spec));
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}
