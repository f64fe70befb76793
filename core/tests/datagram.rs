//! Datagram channels on the mock: the dispatch rules of `State::Datagram` (no socket
//! error closes one; poll's `ERROR` reaches the handlers select would call; an error
//! no operation took goes to `handle_error`), the context operations, and the
//! datagram queue over a socket that pushes back.

mod util;

use std::cell::RefCell;
use std::rc::Rc;

use asyncore_core::DatagramQueue;
use util::*;

/// Records callbacks, the datagrams read and the errors met; what it does is set per
/// test.
#[derive(Clone)]
struct Dg {
    log: Rc<RefCell<Vec<String>>>,
    read: bool,
    write: bool,
    /// `handle_read` receives (until none is waiting).
    receive: bool,
    /// `handle_read` propagates receive errors with `?` (else it logs and goes on).
    propagate: bool,
    /// `handle_error` closes (the default does).
    close_on_error: bool,
    /// `handle_write` sends this to peer 9 once.
    send: Option<&'static [u8]>,
    /// Receive buffer size.
    buf: usize,
}

impl Dg {
    fn new(log: &Rc<RefCell<Vec<String>>>) -> Self {
        Dg {
            log: log.clone(),
            read: true,
            write: false,
            receive: true,
            propagate: false,
            close_on_error: false,
            send: None,
            buf: 64,
        }
    }

    fn note(&self, s: String) {
        self.log.borrow_mut().push(s);
    }
}

impl Dispatcher<MockSocket> for Dg {
    type Error = Error;

    fn readable(&self) -> bool {
        self.read
    }

    fn writable(&self) -> bool {
        self.write
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        self.note("read".into());
        if !self.receive {
            return Ok(());
        }
        let mut buf = vec![0u8; self.buf];
        loop {
            match ctx.recv_from(&mut buf) {
                Ok(Some(d)) => self.note(format!(
                    "got {} from {} len {}{}",
                    String::from_utf8_lossy(d.data(&buf)),
                    d.from,
                    d.len,
                    if d.truncated() { " truncated" } else { "" }
                )),
                Ok(None) => return Ok(()),
                Err(e) if self.propagate => return Err(e.into()),
                Err(e) => self.note(format!("recv error {}", e.raw_os_error().unwrap_or(0))),
            }
        }
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        self.note("write".into());
        if let Some(data) = self.send.take() {
            match ctx.send_to(data, &9) {
                Ok(s) => self.note(format!("sent {s:?}")),
                Err(e) => self.note(format!("send error {}", e.raw_os_error().unwrap_or(0))),
            }
            self.write = false;
        }
        Ok(())
    }

    fn handle_expt(&mut self, _ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        self.note("expt".into());
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        self.note("close".into());
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>, error: Error) {
        self.note(format!("error {error}"));
        if self.close_on_error {
            ctx.close();
        }
    }
}

fn setup(d: impl FnOnce(Dg) -> Dg) -> (Mock<Dg>, Token, Rc<RefCell<Vec<String>>>) {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut r: Mock<Dg> = reactor();
    let t = add(&mut r, MockSocket::datagram(1), d(Dg::new(&log)));
    (r, t, log)
}

fn sock(r: &mut Mock<Dg>, t: Token) -> &mut MockSocket {
    r.get_mut(t).unwrap().socket
}

fn taken(log: &Rc<RefCell<Vec<String>>>) -> Vec<String> {
    std::mem::take(&mut *log.borrow_mut())
}

fn refused() -> SocketError {
    os(errno::ECONNREFUSED)
}

#[test]
fn a_datagram_socket_starts_datagram_and_reads_whole_datagrams() {
    let (mut r, t, log) = setup(|d| Dg { buf: 4, ..d });
    assert_eq!(r.get(t).unwrap().state, State::Datagram);
    assert!(sock(&mut r, t).feed_datagram(3, b"ab"));
    assert!(sock(&mut r, t).feed_datagram(4, b""));
    assert!(sock(&mut r, t).feed_datagram(5, b"abcdef"));
    r.selector_mut().set_ready(1, READ);
    r.poll_once(ZERO).unwrap();
    assert_eq!(
        taken(&log),
        [
            "read",
            "got ab from 3 len 2",
            "got  from 4 len 0",
            "got abcd from 5 len 6 truncated"
        ]
    );
    assert_eq!(r.selector().last_interest(1), Some(Interest::READABLE));
}

/// The heart of the datagram rules: `ECONNREFUSED` on a connected socket is a typed
/// error the handler's own receive returns (which clears it, as on Linux), and the
/// channel stays open: no `handle_close`, no `handle_error`.
#[test]
fn a_refused_datagram_is_a_typed_error_never_a_close() {
    let (mut r, t, log) = setup(|d| d);
    sock(&mut r, t).set_so_error(Some(refused()));
    // poll(2): ERROR only (no datagram waiting); delivered as select reports it.
    r.selector_mut().set_once(1, ERR);
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["read", "recv error 111"]);
    assert!(r.get(t).is_some(), "the channel stays open");
    // A datagram after it is read as usual.
    sock(&mut r, t).feed_datagram(4, b"ok");
    r.selector_mut().set_once(1, READ);
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["read", "got ok from 4 len 2"]);
}

#[test]
fn an_error_is_left_to_the_handlers_called_for_it() {
    // A handler that does not receive when readable: the error stays pending (the
    // reactor does not take it from under the handler), as an unread datagram
    // would stay, and is reported again.
    let (mut r, t, log) = setup(|d| Dg {
        receive: false,
        ..d
    });
    sock(&mut r, t).set_so_error(Some(refused()));
    r.selector_mut().set_ready(1, ERR);
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["read"]);
    assert_eq!(sock(&mut r, t).pending_error(), Some(refused()));
    r.get_mut(t).unwrap().dispatcher.receive = true;
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["read", "recv error 111"]);
    assert!(r.get(t).is_some());
}

#[test]
fn a_propagated_receive_error_reaches_handle_error_once() {
    let (mut r, t, log) = setup(|d| Dg {
        propagate: true,
        ..d
    });
    sock(&mut r, t).set_so_error(Some(refused()));
    r.selector_mut().set_once(1, ERR);
    r.poll_once(ZERO).unwrap();
    assert_eq!(
        taken(&log),
        ["read", "error socket error ConnectionRefused (errno 111)"]
    );
    assert!(r.get(t).is_some());
}

#[test]
fn error_readiness_reaches_a_writer() {
    let (mut r, t, log) = setup(|d| Dg {
        read: false,
        write: true,
        send: Some(b"x"),
        ..d
    });
    sock(&mut r, t).set_so_error(Some(refused()));
    r.selector_mut().set_once(1, ERR);
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["write", "send error 111"]);
    assert!(r.get(t).is_some());
}

#[test]
fn disconnect_errors_do_not_close_a_datagram_channel() {
    // ENOTCONN (a Unix datagram send without a peer) and ECONNRESET are disconnects
    // for a stream; on a datagram channel they are errors like any other.
    for code in [errno::ENOTCONN, errno::ECONNRESET, errno::EPIPE] {
        let log = Rc::new(RefCell::new(Vec::new()));
        struct Plain(Rc<RefCell<Vec<String>>>);
        impl Dispatcher<MockSocket> for Plain {
            type Error = Error;
            fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
                let mut b = [0u8; 4];
                let r = ctx.recv(&mut b);
                let s = ctx.send(b"x");
                self.0.borrow_mut().push(format!("{r:?} {s:?}"));
                Ok(())
            }
            fn handle_close(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
                self.0.borrow_mut().push("close".into());
                ctx.close();
                Ok(())
            }
        }
        let mut r: Mock<Plain> = reactor();
        let mut s = MockSocket::datagram(1);
        s.script_recv(RecvStep::Fail(os(code)));
        s.script_send(SendStep::Fail(os(code)));
        let t = add(&mut r, s, Plain(log.clone()));
        r.selector_mut().set_once(1, READ);
        r.poll_once(ZERO).unwrap();
        assert_eq!(
            log.borrow()[..],
            [format!("Err({:?}) Err({:?})", os(code), os(code))]
        );
        assert!(r.get(t).is_some(), "errno {code}");
    }
}

#[test]
fn hangup_and_invalid_close() {
    let (mut r, t, log) = setup(|d| d);
    r.selector_mut().set_once(1, HUP);
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["close"]);
    assert!(r.get(t).is_none());

    // A hang-up with a datagram still waiting: read it first, close once drained.
    let (mut r, t, log) = setup(|d| d);
    sock(&mut r, t).feed_datagram(2, b"last");
    r.selector_mut().set_ready(1, READ | HUP);
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["read", "got last from 2 len 4"]);
    r.selector_mut().set_ready(1, HUP);
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["close"]);
    assert!(r.get(t).is_none());

    let (mut r, t, log) = setup(|d| d);
    r.selector_mut().set_once(1, NVAL | READ);
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["close"]);
    assert!(r.get(t).is_none());
}

#[test]
fn priority_checks_the_pending_error_first() {
    let (mut r, t, log) = setup(|d| d);
    sock(&mut r, t).set_so_error(Some(refused()));
    r.selector_mut().set_once(1, PRI);
    r.poll_once(ZERO).unwrap();
    assert_eq!(
        taken(&log),
        ["error socket error ConnectionRefused (errno 111)"]
    );
    r.selector_mut().set_once(1, PRI);
    r.poll_once(ZERO).unwrap();
    assert_eq!(taken(&log), ["expt"]);
    assert!(r.get(t).is_some());
}

/// A queue that meets would-block keeps its datagrams, whole and in order, and a
/// failure keeps the datagram that met it at the front.
#[test]
fn queue_flush_back_pressure_and_errors() {
    struct Q {
        q: DatagramQueue<u32, 64, 8>,
        last: Option<Result<usize, SocketError>>,
    }
    impl Dispatcher<MockSocket> for Q {
        type Error = Error;
        fn readable(&self) -> bool {
            false
        }
        fn writable(&self) -> bool {
            self.q.wants_write()
        }
        fn handle_write(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
            self.last = Some(self.q.flush(ctx));
            Ok(())
        }
    }
    let mut r: Mock<Q> = reactor();
    let mut s = MockSocket::datagram(1);
    s.script_send(SendStep::WouldBlock);
    let mut q = Q {
        q: DatagramQueue::new(),
        last: None,
    };
    for (i, d) in [&b"one"[..], b"", b"three"].iter().enumerate() {
        q.q.push_to(d, i as u32).unwrap();
    }
    q.q.push(b"connected").unwrap();
    let t = add(&mut r, s, q);
    r.selector_mut().set_ready(1, WRITE);
    r.poll_once(ZERO).unwrap();
    let c = r.get_mut(t).unwrap();
    assert_eq!(c.dispatcher.last, Some(Ok(0)));
    assert_eq!(c.dispatcher.q.len(), 4);
    c.socket.script_send(SendStep::Accept(100));
    c.socket.script_send(SendStep::Fail(os(errno::ENOBUFS)));
    r.poll_once(ZERO).unwrap();
    let c = r.get_mut(t).unwrap();
    assert_eq!(c.dispatcher.last, Some(Err(os(errno::ENOBUFS))));
    assert_eq!(c.dispatcher.q.front(), Some((&b""[..], Some(&1))));
    r.poll_once(ZERO).unwrap();
    let c = r.get(t).unwrap();
    assert_eq!(c.dispatcher.last, Some(Ok(3)));
    assert!(!c.dispatcher.q.wants_write());
    let sent: Vec<_> = (0..c.socket.sent_datagrams())
        .map(|i| c.socket.sent_datagram(i).unwrap())
        .collect();
    assert_eq!(
        sent,
        [
            (Some(0), &b"one"[..]),
            (Some(1), b""),
            (Some(2), b"three"),
            (None, b"connected")
        ]
    );
    // No write interest once empty.
    r.poll_once(ZERO).unwrap();
    assert_eq!(r.selector().last_interest(1), None);
}

/// `DatagramQueue::send_to`: straight out while nothing waits, behind the others
/// once one had to wait, so the order is kept.
#[test]
fn queue_send_to_goes_at_once_or_waits_in_order() {
    struct Echo {
        q: DatagramQueue<u32, 64, 8>,
        at_once: Vec<bool>,
    }
    impl Dispatcher<MockSocket> for Echo {
        type Error = Error;
        fn writable(&self) -> bool {
            self.q.wants_write()
        }
        fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
            let mut buf = [0u8; 16];
            while let Some(d) = ctx.recv_from(&mut buf)? {
                let went = self.q.send_to(ctx, d.data(&buf), d.from)?;
                self.at_once.push(went);
            }
            Ok(())
        }
        fn handle_write(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
            self.q.flush(ctx)?;
            Ok(())
        }
    }
    let mut r: Mock<Echo> = reactor();
    let mut s = MockSocket::datagram(1);
    for (from, d) in [(1, &b"a"[..]), (2, b"bb"), (3, b"ccc")] {
        s.feed_datagram(from, d);
    }
    s.script_send(SendStep::Accept(100));
    s.script_send(SendStep::WouldBlock);
    let t = add(
        &mut r,
        s,
        Echo {
            q: DatagramQueue::new(),
            at_once: Vec::new(),
        },
    );
    r.selector_mut().set_once(1, READ);
    r.poll_once(ZERO).unwrap();
    let c = r.get(t).unwrap();
    // The first went at once, the second met would-block, the third waited behind it
    // although the socket would have taken it.
    assert_eq!(c.dispatcher.at_once, [true, false, false]);
    assert_eq!(c.dispatcher.q.len(), 2);
    r.selector_mut().set_ready(1, WRITE);
    r.poll_once(ZERO).unwrap();
    let c = r.get(t).unwrap();
    assert!(c.dispatcher.q.is_empty());
    let sent: Vec<_> = (0..c.socket.sent_datagrams())
        .map(|i| c.socket.sent_datagram(i).unwrap())
        .collect();
    assert_eq!(
        sent,
        [(Some(1), &b"a"[..]), (Some(2), b"bb"), (Some(3), b"ccc")]
    );
}

/// A datagram received into, and echoed from, a buffer the reactor lends: the
/// dispatcher itself holds no datagram-sized buffer.
#[test]
fn leased_receive_and_send() {
    use asyncore_core::mock::MockIo;
    use asyncore_core::{BufferPool, Lease};

    struct Echo {
        lease: Option<Lease>,
        got: Vec<(usize, bool)>,
    }
    impl Dispatcher<MockSocket> for Echo {
        type Error = Error;
        fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
            let lease = match self.lease.take().or_else(|| ctx.lease()) {
                Some(l) => l,
                None => return Err(Error::BufferFull),
            };
            while let Some(d) = ctx.recv_from_leased(&lease, 0)? {
                self.got.push((d.len, d.truncated()));
                ctx.send_to_leased(&lease, 0..d.copied, &d.from)?;
            }
            // Out of bounds: refused, typed.
            assert_eq!(
                ctx.recv_from_leased(&lease, 9999).unwrap_err().kind(),
                asyncore_core::ErrorKind::InvalidInput
            );
            assert!(ctx.send_to_leased(&lease, 0..9999, &1).is_err());
            self.lease = Some(lease);
            Ok(())
        }
    }
    let mut r: Reactor<MockIo, Echo, 2, 4, BufferPool<1, 32>> = Reactor::new(MockSelector::new());
    let mut s = MockSocket::datagram(1);
    s.feed_datagram(7, b"lent");
    s.feed_datagram(8, &[5u8; 40]);
    let t = add_any(
        &mut r,
        s,
        Echo {
            lease: None,
            got: Vec::new(),
        },
    );
    r.selector_mut().set_once(1, READ);
    r.poll_once(ZERO).unwrap();
    let c = r.get(t).unwrap();
    assert_eq!(c.dispatcher.got, [(4, false), (40, true)]);
    assert_eq!(c.socket.sent_datagram(0), Some((Some(7), &b"lent"[..])));
    assert_eq!(c.socket.sent_datagram(1), Some((Some(8), &[5u8; 32][..])));
    assert_eq!(r.pool().peak(), 1);
}

fn add_any<D: Dispatcher<MockSocket>, const N: usize, P: asyncore_core::Lend>(
    r: &mut Reactor<asyncore_core::mock::MockIo, D, N, 4, P>,
    s: MockSocket,
    d: D,
) -> Token {
    r.add(s, d).map_err(|e| e.kind).expect("room")
}
