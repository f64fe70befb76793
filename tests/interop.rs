//! Interoperability with peers nobody here wrote:
//!
//! * a client written on CPython 3.11's own `asyncore` module
//!   (`tests/python/asyncore_echo_client.py`) against the core's echo server, run
//!   in-process on a thread on select, poll and epoll;
//! * our `http_client` example fetching a file from `python3 -m http.server`, on
//!   select, poll and epoll, plus a 404 and a refused connection.
//!
//! A missing peer (`python3`, its `asyncore` module, the `http_client` example
//! binary) fails the test with a message saying what to install or build, unless
//! `ASYNCORE_SKIP_INTEROP=1` asks to skip such tests (`tests/common/peers.rs`).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use asyncore::{AnySelector, Backend, Echo, Reactor, StdReactor, StdSocket};
use common::peers::{SUBPROCESS_PATIENCE, command, example, python, run};
use common::{PATIENCE, TestDir, pattern};

// ------------------------------------------------------------------ CPython's asyncore

/// The core's echo server on a thread, on `backend`, listening on 127.0.0.1:0.
struct EchoThread {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(u64, u64, usize)>>,
}

impl EchoThread {
    fn start(backend: Backend) -> EchoThread {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut r: StdReactor<Echo<StdSocket, 4096>, 16> =
                Reactor::new(AnySelector::new(backend));
            let listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
            tx.send(listener.local_addr().unwrap().as_inet().unwrap())
                .unwrap();
            let lt = r.add(listener, Echo::listener(8)).unwrap();
            let start = Instant::now();
            while !s.load(Ordering::Acquire) && start.elapsed() < SUBPROCESS_PATIENCE {
                r.poll_once(Some(Duration::from_millis(20))).unwrap();
            }
            let l = r.get(lt).unwrap().dispatcher.as_listener().unwrap();
            (l.accepted(), l.refused(), r.len())
        });
        let addr = rx.recv_timeout(PATIENCE).expect("the server started");
        EchoThread {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the loop; returns (accepted, refused, channels left).
    fn stop(mut self) -> (u64, u64, usize) {
        self.stop.store(true, Ordering::Release);
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("the server thread")
    }
}

impl Drop for EchoThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// CPython's asyncore client (its `select` or `poll` loop) against our echo server
/// on `backend`: every message echoed byte-exact (the script checks and exits 0),
/// the half-close answered by the server's close, and the server left with only its
/// listener.
fn python_asyncore_client(backend: Backend, flavour: &str) {
    let Some(python) = python("import asyncore") else {
        return;
    };
    let server = EchoThread::start(backend);
    let out = run(Command::new(python)
        .args(["-W", "ignore"])
        .arg(script("asyncore_echo_client.py"))
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .arg(flavour));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python client failed ({}): {}{stdout}",
        out.status,
        out.stderr
    );
    assert!(stdout.contains("echoed 5 messages"), "{stdout}");
    // The script saw the server's close, so the server had removed the channel
    // before: only the listener is left.
    let (accepted, refused, left) = server.stop();
    assert_eq!((accepted, refused), (1, 0));
    assert_eq!(left, 1, "the connection closed, the listener stays");
}

mod python_asyncore_client {
    #[test]
    fn select() {
        super::python_asyncore_client(asyncore::Backend::Select, "select");
    }

    #[test]
    fn poll() {
        super::python_asyncore_client(asyncore::Backend::Poll, "poll");
    }

    #[test]
    fn epoll() {
        super::python_asyncore_client(asyncore::Backend::Epoll, "epoll");
    }
}

// ------------------------------------------------------------------ http_client

/// A loopback port that refuses connections while the returned socket lives: it is
/// bound (so no other test's server can take the port) but never listens.
fn refusing_port() -> (std::os::fd::OwnedFd, u16) {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, getsockname, socket,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, 0),
    )
    .expect("bind 127.0.0.1:0");
    let addr: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).expect("getsockname");
    (fd, addr.port())
}

/// `python3 -m http.server` serving a directory on 127.0.0.1; killed when dropped.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    /// Starts it on a port the kernel picks (port 0) and reads which from its
    /// `Serving HTTP on 127.0.0.1 port N` line: no port is probed first, so no other
    /// test's server can be mistaken for this one.
    fn start(python: &str, dir: &Path) -> HttpServer {
        let mut child = Command::new(python)
            .args(["-u", "-W", "ignore", "-m", "http.server", "0"])
            .args(["--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn python3 -m http.server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(PATIENCE).unwrap_or_default();
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("http.server did not say where it listens within {PATIENCE:?}: {line:?}");
        };
        HttpServer { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http_client --backend <backend>` fetches a 200 KB binary file from
/// `python3 -m http.server`: the body it prints is the file, byte for byte, and it
/// exits 0; a missing file gives a non-zero exit and says 404.
fn http_fetch(backend: &str) {
    let Some(python) = python("import http.server") else {
        return;
    };
    let Some(bin) = example("http_client") else {
        return;
    };
    let dir = TestDir::new(&format!("http-fetch-{backend}"));
    let body = pattern(80, 200_000);
    std::fs::write(dir.path().join("payload.bin"), &body).unwrap();
    let server = HttpServer::start(python, dir.path());

    let out = run(command(&bin)
        .arg(server.url("payload.bin"))
        .args(["--backend", backend]));
    assert!(
        out.status.success(),
        "http_client failed ({}): {}",
        out.status,
        out.stderr
    );
    assert_eq!(out.stdout.len(), body.len(), "{}", out.stderr);
    assert!(out.stdout == body, "the body differs from the file");

    let out = run(command(&bin)
        .arg(server.url("missing.bin"))
        .args(["--backend", backend]));
    assert!(!out.status.success(), "a 404 is a failure");
    assert!(out.stderr.contains("404"), "{}", out.stderr);
}

/// `http_client` to a port nobody listens on: a non-zero exit, nothing on stdout,
/// and a message on stderr that says the connection was refused.
fn http_refused(backend: &str) {
    let Some(bin) = example("http_client") else {
        return;
    };
    let (_reserved, port) = refusing_port();
    let out = run(command(&bin)
        .arg(format!("http://127.0.0.1:{port}/"))
        .args(["--backend", backend]));
    assert!(!out.status.success(), "a refused connection is a failure");
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.starts_with("http_client: ") && out.stderr.to_lowercase().contains("refused"),
        "{}",
        out.stderr
    );
}

mod http_client_fetches_from_python_http_server {
    #[test]
    fn select() {
        super::http_fetch("select");
    }

    #[test]
    fn poll() {
        super::http_fetch("poll");
    }

    #[test]
    fn epoll() {
        super::http_fetch("epoll");
    }
}

mod http_client_refused {
    #[test]
    fn select() {
        super::http_refused("select");
    }

    #[test]
    fn poll() {
        super::http_refused("poll");
    }

    #[test]
    fn epoll() {
        super::http_refused("epoll");
    }
}
