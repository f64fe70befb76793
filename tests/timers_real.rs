//! Deadlines on real sockets, select, poll and epoll: only ordering and "fired / did not
//! fire" are asserted, never how long anything took.

mod common;

use std::cell::RefCell;
use std::io::Read;
use std::time::Duration;

use asyncore::{
    AnySelector, Backend, Callback, Ctx, Dispatcher, Echo, EchoListener, Error, StdReactor,
    StdSocket, Token, Trace,
};

thread_local! {
    static TIMEOUTS: RefCell<Vec<Token>> = const { RefCell::new(Vec::new()) };
}

fn observe(token: Token, event: Trace) {
    if event == Trace::Call(Callback::Timeout) {
        TIMEOUTS.with(|t| t.borrow_mut().push(token));
    }
}

/// Closes its channel when its deadline passes.
struct Expiring;

impl Dispatcher<StdSocket> for Expiring {
    type Error = Error;
    fn readable(&self) -> bool {
        false
    }
    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        ctx.close();
        Ok(())
    }
}

fn deadlines_fire_in_order(backend: Backend) {
    TIMEOUTS.with(|t| t.borrow_mut().clear());
    let mut r: StdReactor<Expiring, 8> = StdReactor::new(AnySelector::new(backend));
    r.set_observer(Some(observe));
    let mut pairs = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let (a, b) = StdSocket::pair().unwrap();
        tokens.push(r.add(a, Expiring).unwrap());
        pairs.push(b);
    }
    let now = r.now().expect("real selectors have a clock");
    r.set_deadline(tokens[0], Some(now + Duration::from_millis(60)))
        .unwrap();
    r.set_deadline(tokens[1], Some(now + Duration::from_millis(20)))
        .unwrap();
    r.set_deadline(tokens[2], Some(now + Duration::from_millis(40)))
        .unwrap();
    // A fourth channel whose deadline is cancelled never fires.
    let (c, d) = StdSocket::pair().unwrap();
    let cancelled = r.add(c, Expiring).unwrap();
    pairs.push(d);
    r.set_deadline(cancelled, Some(now + Duration::from_millis(10)))
        .unwrap();
    r.set_deadline(cancelled, None).unwrap();

    let mut passes = 0;
    while tokens.iter().any(|&t| r.get(t).is_some()) {
        r.poll_once(Some(Duration::from_secs(5))).unwrap();
        passes += 1;
        assert!(passes < 100, "deadlines never fired");
    }
    let fired = TIMEOUTS.with(|t| t.borrow().clone());
    assert_eq!(
        fired,
        [tokens[1], tokens[2], tokens[0]],
        "{backend}: earliest first"
    );
    assert!(
        r.get(cancelled).is_some(),
        "{backend}: the cancelled deadline did not fire"
    );
}

#[test]
fn deadlines_fire_in_order_select() {
    deadlines_fire_in_order(Backend::Select);
}

#[test]
fn deadlines_fire_in_order_poll() {
    deadlines_fire_in_order(Backend::Poll);
}

#[test]
fn deadlines_fire_in_order_epoll() {
    deadlines_fire_in_order(Backend::Epoll);
}

/// The echo server's idle timeout closes a client that sends nothing (it sees EOF),
/// while a listener (no deadline) stays.
fn idle_timeout_closes_quiet_client(backend: Backend) {
    let mut r: StdReactor<Echo<StdSocket, 256>, 8> = StdReactor::new(AnySelector::new(backend));
    let listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 8).unwrap();
    let addr = listener.local_addr().unwrap().as_inet().unwrap();
    let lt = r
        .add(
            listener,
            Echo::Listener(EchoListener::new(4).with_idle_timeout(Duration::from_millis(50))),
        )
        .unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut passes = 0;
    // Accept, then wait for the idle close.
    while r.len() < 2 {
        r.poll_once(Some(Duration::from_millis(100))).unwrap();
        passes += 1;
        assert!(passes < 200, "never accepted");
    }
    while r.len() > 1 {
        r.poll_once(Some(Duration::from_secs(1))).unwrap();
        passes += 1;
        assert!(passes < 200, "idle connection never closed");
    }
    let mut buf = [0u8; 4];
    assert_eq!(
        client.read(&mut buf).unwrap(),
        0,
        "{backend}: the client sees EOF"
    );
    assert!(
        r.get(lt).is_some(),
        "{backend}: the listener has no deadline and stays"
    );
}

#[test]
fn idle_timeout_closes_quiet_client_select() {
    idle_timeout_closes_quiet_client(Backend::Select);
}

#[test]
fn idle_timeout_closes_quiet_client_poll() {
    idle_timeout_closes_quiet_client(Backend::Poll);
}

#[test]
fn idle_timeout_closes_quiet_client_epoll() {
    idle_timeout_closes_quiet_client(Backend::Epoll);
}

/// `http_client --timeout` gives up on a server that never answers, with a clear
/// message and a non-zero exit.
#[test]
fn http_client_timeout_gives_up() {
    let Some(bin) = common::peers::example("http_client") else {
        return;
    };
    // Accepts (the kernel completes the handshake) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let out = common::peers::command(&bin)
        .args([
            format!("http://127.0.0.1:{port}/"),
            "--timeout".into(),
            "0.2".into(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(
        stderr.contains("timed out (--timeout 0.2s) before any answer"),
        "stderr: {stderr}"
    );
    drop(silent);
}
