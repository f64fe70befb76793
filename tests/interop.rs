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

use std::net::{SocketAddr, TcpListener};
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

/// A loopback port nothing listened on a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `python3 -m http.server` serving a directory on 127.0.0.1; killed when dropped.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    /// Starts it on a free port, retrying on another port if it fails to start (the
    /// port was taken between the probe and the server's bind).
    fn start(python: &str, dir: &Path) -> HttpServer {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(python)
                .args(["-W", "ignore", "-m", "http.server", &port.to_string()])
                .args(["--bind", "127.0.0.1", "--directory"])
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn python3 -m http.server");
            // Waiting for another process to start listening: polling is all there
            // is. Bounded; an early exit means "try another port".
            let start = Instant::now();
            while child.try_wait().unwrap().is_none() {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return HttpServer { child, port };
                }
                if start.elapsed() > PATIENCE {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("http.server did not listen within {PATIENCE:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("http.server failed to start on five ports");
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
    let out = run(command(&bin)
        .arg(format!("http://127.0.0.1:{}/", free_port()))
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
