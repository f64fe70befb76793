//! End to end: `Reactor<SelectIo, _, 16>` with an echo server,
//! clients over TCP (IPv4, IPv6) and Unix-domain sockets, a refused connect, a file
//! channel, and a full map.

mod common;

use asyncore_std::SelectIo;
use std::cell::{Cell, RefCell};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use asyncore_core::{
    Ctx, Dispatcher, Error, ErrorKind, Reactor, Recv, RunEnd, Socket, SocketError,
};
use asyncore_std::{SelectSelector, StdSocket};
use common::TempPath;

const ECHO_BUF: usize = 4096;

/// What the test observes.
#[derive(Default)]
struct Shared {
    connects: Cell<usize>,
    done: Cell<usize>,
    target: Cell<usize>,
    failures: RefCell<Vec<SocketError>>,
    refused_extra: Cell<usize>,
}

// The echo buffer is inline on purpose: capacity in the type, no allocation.
#[allow(clippy::large_enum_variant)]
enum Node<'a> {
    Listener,
    Echo {
        buf: [u8; ECHO_BUF],
        len: usize,
    },
    Client {
        shared: &'a Shared,
        msg: Vec<u8>,
        sent: usize,
        got: Vec<u8>,
    },
    Failing {
        shared: &'a Shared,
    },
    /// A listener whose accepted connections go through `ctx.add`, counting refusals.
    CountingListener {
        shared: &'a Shared,
    },
}

impl<'a> Node<'a> {
    fn echo() -> Node<'a> {
        Node::Echo {
            buf: [0; ECHO_BUF],
            len: 0,
        }
    }

    fn client(shared: &'a Shared, msg: Vec<u8>) -> Node<'a> {
        Node::Client {
            shared,
            msg,
            sent: 0,
            got: Vec::new(),
        }
    }

    fn flush(&mut self, ctx: &mut Ctx<'_, StdSocket, Node<'a>>) -> Result<(), Error> {
        match self {
            Node::Echo { buf, len } => {
                let n = ctx.send(&buf[..*len])?;
                buf.copy_within(n..*len, 0);
                *len -= n;
            }
            Node::Client { msg, sent, .. } => {
                while *sent < msg.len() {
                    let n = ctx.send(&msg[*sent..])?;
                    if n == 0 {
                        break;
                    }
                    *sent += n;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl<'a> Dispatcher<StdSocket> for Node<'a> {
    type Error = Error;

    fn readable(&self) -> bool {
        match self {
            Node::Echo { len, .. } => *len < ECHO_BUF,
            Node::Failing { .. } => false,
            _ => true,
        }
    }

    fn writable(&self) -> bool {
        match self {
            Node::Echo { len, .. } => *len > 0,
            Node::Client { msg, sent, .. } => *sent < msg.len(),
            _ => false,
        }
    }

    fn handle_accepted(
        &mut self,
        ctx: &mut Ctx<'_, StdSocket, Node<'a>>,
        socket: StdSocket,
    ) -> Result<(), Error> {
        if let Err(refused) = ctx.add(socket, Node::echo()) {
            if let Node::CountingListener { shared } = self {
                shared.refused_extra.set(shared.refused_extra.get() + 1);
            }
            let (mut socket, _) = refused.into_inner();
            socket.close()?;
        }
        Ok(())
    }

    fn handle_connect(&mut self, ctx: &mut Ctx<'_, StdSocket, Node<'a>>) -> Result<(), Error> {
        if let Node::Client { shared, .. } = self {
            shared.connects.set(shared.connects.get() + 1);
        }
        self.flush(ctx)
    }

    fn handle_connect_failed(&mut self, _ctx: &mut Ctx<'_, StdSocket, Node<'a>>, e: SocketError) {
        if let Node::Failing { shared } | Node::Client { shared, .. } = self {
            shared.failures.borrow_mut().push(e);
        }
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Node<'a>>) -> Result<(), Error> {
        match self {
            Node::Echo { buf, len } => {
                if let Recv::Data(n) = ctx.recv(&mut buf[*len..])? {
                    *len += n;
                }
                self.flush(ctx)
            }
            Node::Client {
                shared, msg, got, ..
            } => {
                let mut chunk = [0u8; 8192];
                while let Recv::Data(n) = ctx.recv(&mut chunk)? {
                    got.extend_from_slice(&chunk[..n]);
                }
                if got.len() >= msg.len() {
                    assert_eq!(got, msg, "byte-exact echo");
                    shared.done.set(shared.done.get() + 1);
                    ctx.close();
                    if shared.done.get() == shared.target.get() {
                        ctx.exit();
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, StdSocket, Node<'a>>) -> Result<(), Error> {
        self.flush(ctx)
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, StdSocket, Node<'a>>) -> Result<(), Error> {
        ctx.close();
        Ok(())
    }
}

type EchoReactor<'a> = Reactor<SelectIo, Node<'a>, 16>;

fn message(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn echo_to_blocking_std_clients() {
    let mut reactor: EchoReactor<'_> = Reactor::new(SelectSelector::new());
    let listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = listener.local_addr().unwrap().as_inet().unwrap();
    reactor.add(listener, Node::Listener).unwrap();

    let clients: Vec<_> = (0..8u8)
        .map(|i| {
            std::thread::spawn(move || {
                let msg = message(i, 64 * 1024);
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut reader = s.try_clone().unwrap();
                let expected = msg.clone();
                let read = std::thread::spawn(move || {
                    let mut got = vec![0u8; expected.len()];
                    reader.read_exact(&mut got).unwrap();
                    got == expected
                });
                s.write_all(&msg).unwrap();
                let ok = read.join().unwrap();
                drop(s);
                ok
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(30);
    while !clients.iter().all(|c| c.is_finished()) {
        assert!(Instant::now() < deadline, "echo timed out");
        reactor.poll_once(Some(Duration::from_millis(20))).unwrap();
    }
    for c in clients {
        assert!(c.join().unwrap(), "byte-exact echo");
    }
    // The server side sees every EOF and closes; only the listener stays.
    while reactor.len() > 1 {
        assert!(Instant::now() < deadline, "closes timed out");
        reactor.poll_once(Some(Duration::from_millis(20))).unwrap();
    }
}

#[test]
fn echo_to_reactor_clients_over_tcp_and_unix() {
    let shared = Shared::default();
    let mut reactor: EchoReactor<'_> = Reactor::new(SelectSelector::new());

    let path = TempPath::new("e2e");
    reactor
        .add(
            StdSocket::unix_listener(&path.0, 16).unwrap(),
            Node::Listener,
        )
        .unwrap();
    let mut targets: Vec<Option<SocketAddr>> = vec![None]; // None: the Unix path
    for ip in ["127.0.0.1:0", "[::1]:0"] {
        match StdSocket::tcp_listener(ip.parse().unwrap(), 16) {
            Ok(l) => {
                targets.push(Some(l.local_addr().unwrap().as_inet().unwrap()));
                reactor.add(l, Node::Listener).unwrap();
            }
            Err(e) => eprintln!("skipping {ip}: {e}"),
        }
    }

    let mut n = 0;
    for (i, target) in targets.iter().enumerate() {
        for j in 0..2u8 {
            let socket = match target {
                None => StdSocket::unix_connect(&path.0).unwrap(),
                Some(addr) => StdSocket::tcp_connect(*addr).unwrap(),
            };
            let msg = message(i as u8 * 2 + j, 256 * 1024);
            reactor.add(socket, Node::client(&shared, msg)).unwrap();
            n += 1;
        }
    }
    shared.target.set(n);

    let end = reactor
        .run(Some(Duration::from_secs(5)), Some(100_000))
        .unwrap();
    assert_eq!(end, RunEnd::Exit);
    assert_eq!(shared.connects.get(), n, "handle_connect once per client");
    assert_eq!(shared.done.get(), n);
    assert!(shared.failures.borrow().is_empty());
}

#[test]
fn refused_connect_reaches_handle_connect_failed() {
    let l = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 1).unwrap();
    let addr = l.local_addr().unwrap().as_inet().unwrap();
    drop(l);
    let shared = Shared::default();
    let mut reactor: EchoReactor<'_> = Reactor::new(SelectSelector::new());
    match StdSocket::tcp_connect(addr) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
        Ok(socket) => {
            reactor
                .add(socket, Node::Failing { shared: &shared })
                .unwrap();
            let end = reactor
                .run(Some(Duration::from_secs(5)), Some(100))
                .unwrap();
            assert_eq!(end, RunEnd::Empty);
            let failures = shared.failures.borrow();
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].kind(), ErrorKind::ConnectionRefused);
            assert_eq!(shared.connects.get(), 0);
        }
    }
}

#[test]
fn file_channel_reads_to_eof_then_closes() {
    use asyncore_core::Callback;
    use asyncore_core::mock::{Action, CallLog, Recorder};

    let path = TempPath::new("filedisp").0.with_extension("txt");
    std::fs::write(&path, b"It's not dead, it's sleeping!").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let log = CallLog::new();
    let mut reactor: Reactor<SelectIo, Recorder<'_>, 16> = Reactor::new(SelectSelector::new());
    let t = reactor
        .add(
            StdSocket::file(&file).unwrap(),
            Recorder::new(&log).on(Callback::Read, Action::RecvAll),
        )
        .unwrap();
    let end = reactor.run(Some(Duration::from_secs(1)), Some(10)).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(end, RunEnd::Empty);
    assert_eq!(&log.received(t)[..], b"It's not dead, it's sleeping!");
    assert!(log.calls_of(t).contains(&Callback::Read));
}

#[test]
fn full_map_closes_the_extra_connection_cleanly() {
    let shared = Shared::default();
    // Room for the listener and one connection only.
    let mut reactor: Reactor<SelectIo, Node<'_>, 2> = Reactor::new(SelectSelector::new());
    let listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
    let addr = listener.local_addr().unwrap().as_inet().unwrap();
    reactor
        .add(listener, Node::CountingListener { shared: &shared })
        .unwrap();

    let mut first = TcpStream::connect(addr).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reactor.len() < 2 {
        assert!(Instant::now() < deadline);
        reactor.poll_once(Some(Duration::from_millis(20))).unwrap();
    }

    let mut extra = TcpStream::connect(addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while shared.refused_extra.get() == 0 {
        assert!(Instant::now() < deadline);
        reactor.poll_once(Some(Duration::from_millis(20))).unwrap();
    }
    let mut buf = [0u8; 8];
    assert_eq!(extra.read(&mut buf).unwrap(), 0, "a clean close (EOF)");

    // The first connection is still served.
    first.write_all(b"ping").unwrap();
    let server = std::thread::spawn(move || {
        let mut got = [0u8; 4];
        first.read_exact(&mut got).unwrap();
        got
    });
    while !server.is_finished() {
        assert!(Instant::now() < deadline);
        reactor.poll_once(Some(Duration::from_millis(20))).unwrap();
    }
    assert_eq!(&server.join().unwrap(), b"ping");
}
