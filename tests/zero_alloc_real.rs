//! Zero heap allocations in steady state, on real loopback sockets, on `select(2)`,
//! `poll(2)` and `epoll(7)`: the core's echo server and its clients run in the same thread
//! (non-blocking `StdSocket` clients driven between passes) under a counting global
//! allocator. After a warm-up, 5,000 echo round trips of 64 B, 4 KiB and 64 KiB
//! messages (the large ones through buffers lent by the reactor's pool), then
//! connection churn (connect, echo, close, 200 times), allocate nothing.
//!
//! The counter is per thread, so the test harness's own threads do not count.

use std::net::SocketAddr;
use std::time::Duration;

use asyncore::{AnySelector, Backend, Echo, Reactor, Recv, Sent, Socket, StdReactor, StdSocket};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs_during;

#[test]
fn the_counter_counts() {
    let (b, n) = allocs_during(|| std::hint::black_box(Box::new(7u64)));
    assert_eq!(*b, 7);
    assert!(n >= 1, "a Box allocation was not counted");
    let (v, n) = allocs_during(|| {
        let mut v: Vec<u8> = Vec::with_capacity(1);
        v.extend_from_slice(&[0; 100]); // grows: realloc
        v
    });
    assert_eq!(v.len(), 100);
    assert!(n >= 2, "alloc + realloc: {n}");
}

const CLIENTS: usize = 4;
/// The longest message; round trips cycle through 64 B, 4 KiB and this.
const MSG: usize = 64 * 1024;
const SIZES: [usize; 3] = [64, 4096, MSG];
const WARM_UP: usize = 100;
const ROUND_TRIPS: usize = 5_000;
const CHURN: usize = 200;
/// Passes one round trip may take before the test fails (it needs one or two).
const MAX_PASSES: usize = 10_000;
const PASS: Option<Duration> = Some(Duration::from_millis(10));

/// Connections with a 1 KiB buffer of their own and two 64 KiB buffers to borrow
/// from the reactor's pool, as large messages need.
type Server = StdReactor<Echo<StdSocket, 1024>, 8, asyncore::BufferPool<2, MSG>>;

/// One round trip: `client` sends a message derived from `n` (of one of `SIZES`),
/// the server runs until it is all back, and it is checked. Allocates nothing itself;
/// a failure panics (which allocates, but then the test has failed anyway).
fn round_trip(server: &mut Server, client: &mut StdSocket, n: usize) {
    let len = SIZES[n % SIZES.len()];
    let mut msg = [0u8; MSG];
    for (i, b) in msg[..len].iter_mut().enumerate() {
        *b = (n.wrapping_mul(31) ^ i ^ (i >> 8)) as u8;
    }
    let (msg, mut back) = (&msg[..len], [0u8; MSG]);
    let back = &mut back[..len];
    let mut sent = 0;
    let mut got = 0;
    for _ in 0..MAX_PASSES {
        if sent < len {
            match client.send(&msg[sent..]).expect("client send") {
                Sent::Bytes(k) => sent += k,
                Sent::WouldBlock => {}
            }
        }
        server.poll_once(PASS).expect("poll_once");
        while got < len {
            match client.recv(&mut back[got..]).expect("client recv") {
                Recv::Data(k) => got += k,
                Recv::WouldBlock => break,
                Recv::Eof => panic!("the server closed during an echo"),
            }
        }
        if got == len {
            assert!(
                back == msg,
                "round trip {n} ({len} bytes): the echo differs"
            );
            return;
        }
    }
    panic!("round trip {n}: no echo after {MAX_PASSES} passes");
}

/// Closes `client` and runs the server until it has closed its side too (the map
/// holds `left` channels again).
fn close(server: &mut Server, mut client: StdSocket, left: usize) {
    client.close().expect("client close");
    for _ in 0..MAX_PASSES {
        if server.len() == left {
            return;
        }
        server.poll_once(PASS).expect("poll_once");
    }
    panic!("the server did not close its side");
}

fn steady_state(backend: Backend) {
    let mut server: Server = Reactor::new(AnySelector::new(backend));
    let listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap().as_inet().unwrap();
    server.add(listener, Echo::listener(6)).unwrap();
    let mut clients: [StdSocket; CLIENTS] =
        core::array::from_fn(|_| StdSocket::tcp_connect(addr).expect("connect"));

    // Warm-up: every connection accepted and echoing, every lazy initialisation done.
    for n in 0..WARM_UP {
        round_trip(&mut server, &mut clients[n % CLIENTS], n);
    }
    assert_eq!(server.len(), CLIENTS + 1);

    let ((), allocations) = allocs_during(|| {
        for n in 0..ROUND_TRIPS {
            round_trip(&mut server, &mut clients[n % CLIENTS], n);
        }
    });
    assert_eq!(
        allocations, 0,
        "{backend}: allocations during {ROUND_TRIPS} echo round trips"
    );

    // Churn: connect, accept, echo, close, over and over.
    let ((), allocations) = allocs_during(|| {
        for n in 0..CHURN {
            let mut c = StdSocket::tcp_connect(addr).expect("connect");
            round_trip(&mut server, &mut c, n);
            close(&mut server, c, CLIENTS + 1);
        }
    });
    assert_eq!(
        allocations, 0,
        "{backend}: allocations during {CHURN} connect/echo/close cycles"
    );

    for c in clients {
        let left = server.len() - 1;
        close(&mut server, c, left);
    }
    assert_eq!(server.len(), 1, "only the listener is left");
}

#[test]
fn select_steady_state_allocates_nothing() {
    steady_state(Backend::Select);
}

#[test]
fn poll_steady_state_allocates_nothing() {
    steady_state(Backend::Poll);
}

#[test]
fn epoll_steady_state_allocates_nothing() {
    steady_state(Backend::Epoll);
}
