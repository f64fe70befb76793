//! Zero heap allocations in steady state for datagram channels, on real sockets, on
//! `select(2)`, `poll(2)` and `epoll(7)`: one reactor holds a UDP echo on IPv4, one on IPv6
//! (where the host has it) and a Unix datagram echo, all receiving into and sending
//! from one 64 KiB buffer the reactor's pool lends each for one read, with a
//! `DatagramQueue` for
//! replies that would block; and a connected UDP channel whose peer's port is
//! closed, meeting `ECONNREFUSED` on every round. Clients are non-blocking
//! `StdSocket`s driven between passes in the same thread, under a counting global
//! allocator. After a warm-up, 3,000 round trips per echo (0 B to 65,507 B) and 500
//! refusals allocate nothing.
//!
//! The counter is per thread, so the test harness's own threads do not count.

use std::net::SocketAddr;
use std::time::Duration;

use asyncore::{
    Addr, AnySelector, Backend, BufferPool, Ctx, Datagram, DatagramQueue, Dispatcher, Error,
    ErrorKind, Sent, StdReactor, StdSocket,
};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs_during;

const MAX: usize = 65_507;
const SIZES: [usize; 5] = [0, 1, 512, 9_000, MAX];
const WARM_UP: usize = 50;
const ROUND_TRIPS: usize = 3_000;
const REFUSALS: usize = 500;
/// Passes one round trip may take before the test fails (it needs one or two).
const MAX_PASSES: usize = 1_000;
const PASS: Option<Duration> = Some(Duration::from_millis(10));

// Fixed memory, no box: the echoes' queues make that variant the large one.
#[allow(clippy::large_enum_variant)]
enum Node {
    /// Echoes every datagram to its sender.
    Echo {
        queue: DatagramQueue<Addr, 65_536, 4>,
    },
    /// Connected to a closed port: sends when told, counts the refusals it reads.
    Refused { send: bool, refusals: usize },
}

impl Dispatcher<StdSocket> for Node {
    type Error = Error;

    fn writable(&self) -> bool {
        match self {
            Node::Echo { queue, .. } => queue.wants_write(),
            Node::Refused { send, .. } => *send,
        }
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        match self {
            Node::Echo { queue } => {
                // One 64 KiB buffer for every echo: borrowed for this read only.
                let Some(l) = ctx.lease() else {
                    return Err(Error::BufferFull);
                };
                while let Some(d) = ctx.recv_from_leased(&l, 0)? {
                    assert!(!d.truncated());
                    let sent = if queue.is_empty() {
                        ctx.send_to_leased(&l, 0..d.len, &d.from)?
                    } else {
                        Sent::WouldBlock
                    };
                    if sent == Sent::WouldBlock {
                        let bytes = ctx.leased(&l).expect("held");
                        queue.push_to(&bytes[..d.len], d.from)?;
                    }
                }
                ctx.give_back(l);
            }
            Node::Refused { refusals, .. } => {
                let mut buf = [0u8; 16];
                loop {
                    match ctx.recv_from(&mut buf) {
                        Ok(Some(_)) => panic!("nothing answers"),
                        Ok(None) => break,
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => *refusals += 1,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        match self {
            Node::Echo { queue, .. } => {
                queue.flush(ctx)?;
            }
            Node::Refused { send, .. } => {
                if ctx.send_datagram(b"anyone?")? != Sent::WouldBlock {
                    *send = false;
                }
            }
        }
        Ok(())
    }
}

type Server = StdReactor<Node, 8, BufferPool<1, 65_536>>;

fn echo() -> Node {
    Node::Echo {
        queue: DatagramQueue::new(),
    }
}

/// One round trip through the echo at `to`: `client` sends a datagram derived from
/// `n`, the server runs until it is back, and it is checked byte for byte.
/// Allocates nothing itself.
fn round_trip(server: &mut Server, client: &mut StdSocket, to: &Addr, n: usize) {
    let len = SIZES[n % SIZES.len()];
    let mut msg = [0u8; MAX];
    for (i, b) in msg[..len].iter_mut().enumerate() {
        *b = (n.wrapping_mul(131) ^ i ^ (i >> 8)) as u8;
    }
    let mut back = [0u8; 65_536];
    loop {
        match client.send_to(&msg[..len], to).expect("client send") {
            Sent::Bytes(_) => break,
            Sent::WouldBlock => {
                server.poll_once(PASS).expect("pass");
            }
        }
    }
    for _ in 0..MAX_PASSES {
        server.poll_once(PASS).expect("pass");
        if let Some(d) = client.recv_from(&mut back).expect("client receive") {
            assert_eq!(
                d.from, *to,
                "round trip {n}: the echo comes from the server"
            );
            assert!(
                d.data(&back) == &msg[..len],
                "round trip {n} ({len} B) differs"
            );
            return;
        }
    }
    panic!("round trip {n} did not finish");
}

fn tmp_path(tag: &str, backend: Backend) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "asyncore-za-dgram-{}-{tag}-{backend}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

fn steady_state(backend: Backend) {
    let mut server: Server = StdReactor::new(AnySelector::new(backend));
    // The echoes and their clients: (client, the echo's address).
    let mut pairs: Vec<(StdSocket, Addr)> = Vec::new();
    for ip in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(sock) = StdSocket::udp_bind(ip.parse::<SocketAddr>().unwrap()) else {
            eprintln!("skipping {ip}: not available");
            continue;
        };
        let at = sock.local_addr().unwrap();
        server.add(sock, echo()).map_err(|e| e.kind).unwrap();
        let client = StdSocket::udp_bind(ip.parse::<SocketAddr>().unwrap()).unwrap();
        pairs.push((client, at));
    }
    let (sp, cp) = (tmp_path("s", backend), tmp_path("c", backend));
    let sock = StdSocket::unix_datagram_bind(&sp).unwrap();
    let at = sock.local_addr().unwrap();
    server.add(sock, echo()).map_err(|e| e.kind).unwrap();
    pairs.push((StdSocket::unix_datagram_bind(&cp).unwrap(), at));

    // Prepared before counting: the vector of pairs above, and these.
    for n in 0..WARM_UP {
        for (client, to) in pairs.iter_mut() {
            round_trip(&mut server, client, to, n);
        }
    }
    let ((), allocs) = allocs_during(|| {
        for n in 0..ROUND_TRIPS {
            for (client, to) in pairs.iter_mut() {
                round_trip(&mut server, client, to, n);
            }
        }
    });
    assert_eq!(
        allocs,
        0,
        "{backend}: {allocs} allocations in {} datagram round trips",
        ROUND_TRIPS * pairs.len()
    );
    println!(
        "{backend}: {} datagram round trips of 0 B to 65,507 B (UDP v4{}, Unix), 0 allocations",
        ROUND_TRIPS * pairs.len(),
        if pairs.len() == 3 { ", v6" } else { "" }
    );

    // Refusals: a connected socket whose peer's port is closed.
    let holder = StdSocket::udp_bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = holder.local_addr().unwrap().as_inet().unwrap();
    drop(holder);
    let t = server
        .add(
            StdSocket::udp_connect(closed).unwrap(),
            Node::Refused {
                send: false,
                refusals: 0,
            },
        )
        .map_err(|e| e.kind)
        .unwrap();
    let refusals = |s: &Server| match s.get(t).map(|c| c.dispatcher) {
        Some(Node::Refused { refusals, .. }) => *refusals,
        _ => panic!("the refused channel is gone"),
    };
    let refuse = |server: &mut Server, want: usize| {
        if let Some(c) = server.get_mut(t)
            && let Node::Refused { send, .. } = c.dispatcher
        {
            *send = true;
        }
        for _ in 0..MAX_PASSES {
            server.poll_once(PASS).expect("pass");
            if refusals(server) >= want {
                return;
            }
        }
        panic!("refusal {want} never came");
    };
    for i in 1..=WARM_UP {
        refuse(&mut server, i);
    }
    let ((), allocs) = allocs_during(|| {
        for i in 1..=REFUSALS {
            refuse(&mut server, WARM_UP + i);
        }
    });
    assert_eq!(
        allocs, 0,
        "{backend}: {allocs} allocations in {REFUSALS} refusals"
    );
    assert!(server.get(t).is_some(), "refusals never close the channel");
    println!("{backend}: {REFUSALS} ECONNREFUSED on a connected channel, 0 allocations");
    let _ = std::fs::remove_file(sp);
    let _ = std::fs::remove_file(cp);
}

/// Runs `steady_state` on a thread with room for the reactor on its stack (eight
/// channels with a 64 KiB reply queue each, and the test's 64 KiB buffers).
fn on_big_stack(backend: Backend) {
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || steady_state(backend))
        .expect("spawn")
        .join()
        .expect("the steady-state run failed");
}

#[test]
fn select_steady_state_allocates_nothing() {
    on_big_stack(Backend::Select);
}

#[test]
fn poll_steady_state_allocates_nothing() {
    on_big_stack(Backend::Poll);
}

#[test]
fn epoll_steady_state_allocates_nothing() {
    on_big_stack(Backend::Epoll);
}

#[test]
fn the_counter_counts() {
    let (b, n) = allocs_during(|| std::hint::black_box(Box::new(7u64)));
    assert_eq!(*b, 7);
    assert!(n >= 1, "a Box allocation was not counted");
}
