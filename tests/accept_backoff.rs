//! A listener whose accepts fail with `EMFILE` (no descriptor left) stays readable:
//! the loop used to retry `accept` on every pass, at 37,000 failures a second and
//! 100 % CPU. Now the listener's reads pause for a back-off (10 ms, doubling up to
//! 500 ms): on real sockets, select, poll and epoll, under a low `RLIMIT_NOFILE`, the
//! failed accepts stay few, and once descriptors are free again every connection
//! waiting in the backlog is served.
//!
//! Its own test binary: lowering `RLIMIT_NOFILE` affects every thread of the
//! process, so nothing else may run beside it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asyncore::{AnySelector, Backend, Callback, Echo, StdReactor, StdSocket, Token, Trace};
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Clients waiting in the backlog.
const CLIENTS: usize = 12;
/// Descriptors left for accepted connections while the limit is low.
const SPARE: usize = 3;
/// How long the server is starved of descriptors.
const STARVED: Duration = Duration::from_millis(400);

static ACCEPT_CALLS: AtomicUsize = AtomicUsize::new(0);

fn count_accepts(_: Token, event: Trace) {
    if event == Trace::Call(Callback::Accept) {
        ACCEPT_CALLS.fetch_add(1, Ordering::SeqCst);
    }
}

/// The lowest descriptor number the next open would get.
fn lowest_free_fd() -> usize {
    let probe: OwnedFd = std::fs::File::open("/dev/null")
        .expect("open /dev/null")
        .into();
    probe.as_raw_fd() as usize
}

/// Accepted so far by the echo listener.
fn accepted(r: &StdReactor<Echo<StdSocket, 256>, 64>, listener: Token) -> u64 {
    r.get(listener)
        .and_then(|c| c.dispatcher.as_listener().map(|l| l.accepted()))
        .expect("the listener is still there")
}

/// The most handler calls on the listener a starved period of `elapsed` allows:
/// one failing accept per back-off (10, 20, 40 ... 500 ms), plus the calls that
/// accepted the connections that fit, plus slack for one pass of each kind.
fn bound(elapsed: Duration) -> usize {
    let mut t = 0u128;
    let mut delay = 10u128;
    let mut failures = 1;
    while t + delay <= elapsed.as_millis() {
        t += delay;
        delay = (delay * 2).min(500);
        failures += 1;
    }
    failures + SPARE + 2
}

fn starve(backend: Backend) {
    let mut r: StdReactor<Echo<StdSocket, 256>, 64> = StdReactor::new(AnySelector::new(backend));
    r.set_observer(Some(count_accepts));
    let socket = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = socket.local_addr().unwrap().as_inet().unwrap();
    let listener = r.add(socket, Echo::listener(CLIENTS)).unwrap();

    // Every client connects first (the kernel completes them in the backlog).
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    for c in &clients {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }

    // Then the process runs short of descriptors: room for SPARE more.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let low = (lowest_free_fd() + SPARE) as _;
    setrlimit(Resource::RLIMIT_NOFILE, low, hard).expect("lower RLIMIT_NOFILE");
    ACCEPT_CALLS.store(0, Ordering::SeqCst);
    let start = Instant::now();
    while start.elapsed() < STARVED {
        r.poll_once(Some(Duration::from_millis(50))).unwrap();
    }
    let elapsed = start.elapsed();
    let calls = ACCEPT_CALLS.load(Ordering::SeqCst);
    let served = accepted(&r, listener);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("restore RLIMIT_NOFILE");

    assert!(
        served as usize <= SPARE,
        "{backend}: {served} accepted with room for {SPARE}"
    );
    assert!(
        calls <= bound(elapsed),
        "{backend}: {calls} accept calls in {elapsed:?} of EMFILE (at most {} with the back-off)",
        bound(elapsed)
    );
    assert!(
        calls >= 2,
        "{backend}: {calls} accept calls: the listener was never retried"
    );

    // Descriptors are free again: every waiting client is served, in the end.
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted(&r, listener) < CLIENTS as u64 {
        assert!(
            Instant::now() < deadline,
            "{backend}: only {} of {CLIENTS} accepted after the limit was lifted",
            accepted(&r, listener)
        );
        r.poll_once(Some(Duration::from_millis(50))).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let msg = format!("client {i}");
        c.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        let mut got = 0;
        while got < back.len() {
            r.poll_once(Some(Duration::from_millis(10))).unwrap();
            c.set_nonblocking(true).unwrap();
            match c.read(&mut back[got..]) {
                Ok(0) => panic!("{backend}: client {i} closed"),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{backend}: client {i}: {e}"),
            }
        }
        assert_eq!(back, msg.as_bytes(), "{backend}: client {i}");
    }
    r.set_observer(None);
    let _ = r.close_all();
}

#[test]
fn emfile_pauses_the_listener_and_the_backlog_is_served_later() {
    // One backend after the other: the descriptor limit is process-wide.
    starve(Backend::Select);
    starve(Backend::Poll);
    starve(Backend::Epoll);
}
