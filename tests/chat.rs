//! asynchat and the chat server on real loopback sockets, with `select(2)`,
//! `poll(2)` and `epoll(7)`:
//!
//! * the asynchat rows of the original's test suite (`test_asynchat.py`): an
//!   [`AsyncChat`] client in our reactor talking to a threaded blocking echo server
//!   that, like the original's, collects until `QUIT\n` and echoes in chunks of 1, 2 or
//!   3 bytes;
//! * the chat server (`asyncore::chat::server`) with several blocking clients: nicks,
//!   broadcast to the others only, over-long lines, `/quit`, the connection limit;
//! * back-pressure under bursts: two talkers burst 5 MiB of 1 KiB lines while one
//!   client reads 4 KiB every 20 ms and one never reads: the slow reader stays and
//!   gets everything in order, the one that never reads is disconnected as too slow,
//!   the talkers stay (the longest gap each reader saw is printed, not asserted);
//! * interoperability: a client written with Python 3.11's own `asynchat`
//!   (`tests/python/chat_client.py`) talking to our chat server.
//!
//! Every socket is on 127.0.0.1 port 0; every wait is bounded by [`SAFETY`], which
//! only turns a hang into a failure (nothing asserts on timing).

#[path = "common/peers.rs"]
#[allow(dead_code)]
mod peers;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use asyncore::chat::server::{ChatServer, MAX_LINE};
use asyncore::chat::{
    AsyncChat, ChatControl, ChatHandler, Producer, SimpleProducer, SliceProducer, Terminator,
    find_prefix_at_end,
};
use asyncore::{AnySelector, Backend, Ctx, Error, Reactor, Socket, StdReactor, StdSocket};

/// A bound on every wait: only there to turn a hang into a failure.
const SAFETY: Duration = Duration::from_secs(30);
const BACKENDS: [Backend; 3] = [Backend::Select, Backend::Poll, Backend::Epoll];
const SERVER_QUIT: &[u8] = b"QUIT\n";

// ---------------------------------------------------------------------------------
// (a) asynchat rows 32-45 against a threaded echo server
// ---------------------------------------------------------------------------------

/// What the original's `echo_client` records: `contents` gets the buffer at each
/// terminator; `collected` is every byte collected.
#[derive(Debug, Default)]
struct Log {
    buffer: Vec<u8>,
    contents: Vec<Vec<u8>>,
    collected: Vec<u8>,
    empty_collects: usize,
    errors: usize,
}

/// The original's `echo_client`, its records shared with the test.
#[derive(Debug)]
struct EchoClient(Rc<RefCell<Log>>);

/// The producers a test queues.
#[derive(Debug)]
enum Prod {
    Simple(SimpleProducer<'static>),
    Slice(SliceProducer<'static>),
}

impl Producer for Prod {
    fn more(&mut self, out: &mut [u8]) -> usize {
        match self {
            Prod::Simple(p) => p.more(out),
            Prod::Slice(p) => p.more(out),
        }
    }
}

impl<S: Socket, M> ChatHandler<S, M> for EchoClient {
    type Producer = Prod;

    fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut log = self.0.borrow_mut();
        if data.is_empty() {
            log.empty_collects += 1;
        }
        log.buffer.extend_from_slice(data);
        log.collected.extend_from_slice(data);
        Ok(())
    }

    fn found_terminator<const OUT: usize, const Q: usize>(
        &mut self,
        _chat: &mut ChatControl<Prod, OUT, Q>,
        _ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), Error> {
        let mut log = self.0.borrow_mut();
        let line = std::mem::take(&mut log.buffer);
        log.contents.push(line);
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, M>, _error: Error) {
        self.0.borrow_mut().errors += 1;
        ctx.close();
    }
}

/// A small input ring (so reads are short too) and room for the test's output.
type Client = AsyncChat<EchoClient, Prod, 64, 1024, 8>;

/// The original's threaded echo server: accepts one connection, collects until
/// `QUIT\n`, removes it, waits for `hold` if given, then echoes the rest in
/// `chunk`-byte sends and closes. Returns what it received (without `QUIT\n`).
fn echo_server(
    chunk: usize,
    hold: Option<mpsc::Receiver<()>>,
) -> (SocketAddr, JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(SAFETY)).unwrap();
        conn.set_nodelay(true).unwrap();
        let mut buffer = Vec::new();
        let mut byte = [0u8; 1];
        while !buffer.ends_with(SERVER_QUIT) {
            match conn.read(&mut byte) {
                Ok(0) | Err(_) => break,
                Ok(_) => buffer.push(byte[0]),
            }
        }
        if buffer.ends_with(SERVER_QUIT) {
            buffer.truncate(buffer.len() - SERVER_QUIT.len());
        }
        if let Some(hold) = hold {
            let _ = hold.recv_timeout(SAFETY);
        }
        for piece in buffer.chunks(chunk) {
            if conn.write_all(piece).is_err() {
                break;
            }
            // Separate sends, as the original's 1 ms sleeps between them.
            thread::sleep(Duration::from_millis(1));
        }
        buffer
    });
    (addr, server)
}

/// Runs `chat` connected to `addr` until its channel is gone.
fn run_client(backend: Backend, addr: SocketAddr, chat: Client) {
    let mut r: StdReactor<Client, 4> = Reactor::new(AnySelector::new(backend));
    let socket = StdSocket::tcp_connect(addr).expect("connect");
    let t = r.add(socket, chat).map_err(|e| e.kind).expect("add");
    let deadline = Instant::now() + SAFETY;
    while r.get(t).is_some() {
        assert!(Instant::now() < deadline, "{backend}: the client hangs");
        r.poll_once(Some(Duration::from_millis(50))).expect("poll");
    }
}

/// A client with terminator `t`; `setup` queues its output. Returns the records and
/// what the server received.
fn echo_exchange(
    backend: Backend,
    chunk: usize,
    t: Terminator,
    setup: impl FnOnce(&mut Client),
) -> (Log, Vec<u8>) {
    let (addr, server) = echo_server(chunk, None);
    let log = Rc::new(RefCell::new(Log::default()));
    let mut chat: Client = AsyncChat::new(EchoClient(log.clone())).with_terminator(t);
    setup(&mut chat);
    run_client(backend, addr, chat);
    let received = server.join().expect("echo server");
    let log = Rc::try_unwrap(log)
        .expect("the client is gone")
        .into_inner();
    assert_eq!(log.errors, 0, "{backend}: no handle_error");
    assert_eq!(log.empty_collects, 0, "{backend}: never an empty collect");
    (log, received)
}

fn line_terminator_check(term: &[u8]) {
    for backend in BACKENDS {
        for chunk in 1..=3 {
            let (log, _) = echo_exchange(backend, chunk, Terminator::bytes(term).unwrap(), |c| {
                c.push(b"hello ").unwrap();
                let mut second = b"world".to_vec();
                second.extend_from_slice(term);
                c.push(&second).unwrap();
                let mut third = b"I'm not dead yet!".to_vec();
                third.extend_from_slice(term);
                c.push(&third).unwrap();
                c.push(SERVER_QUIT).unwrap();
            });
            assert_eq!(
                log.contents,
                [b"hello world".to_vec(), b"I'm not dead yet!".to_vec()],
                "{backend}, terminator {term:?}, chunks of {chunk}"
            );
        }
    }
}

/// Row 32.
#[test]
fn test_line_terminator1() {
    line_terminator_check(b"\n");
}

/// Row 33.
#[test]
fn test_line_terminator2() {
    line_terminator_check(b"\r\n");
}

/// Row 34.
#[test]
fn test_line_terminator3() {
    line_terminator_check(b"qqq");
}

const DATA: &[u8] = b"hello world, I'm not dead yet!\n";

fn numeric_terminator_check(n: usize) {
    for backend in BACKENDS {
        for chunk in 1..=3 {
            let (log, _) = echo_exchange(backend, chunk, Terminator::Count(n), |c| {
                c.push(DATA).unwrap();
                c.push(SERVER_QUIT).unwrap();
            });
            assert_eq!(
                log.contents,
                [DATA[..n].to_vec()],
                "{backend}, chunks of {chunk}"
            );
            assert_eq!(log.collected, DATA, "the rest is collected after the count");
        }
    }
}

/// Row 35.
#[test]
fn test_numeric_terminator1() {
    numeric_terminator_check(1);
}

/// Row 36.
#[test]
fn test_numeric_terminator2() {
    numeric_terminator_check(6);
}

/// Row 37.
#[test]
fn test_none_terminator() {
    for backend in BACKENDS {
        for chunk in 1..=3 {
            let (log, _) = echo_exchange(backend, chunk, Terminator::None, |c| {
                c.push(DATA).unwrap();
                c.push(SERVER_QUIT).unwrap();
            });
            assert!(
                log.contents.is_empty(),
                "{backend}: found_terminator never ran"
            );
            assert_eq!(log.collected, DATA, "{backend}, chunks of {chunk}");
        }
    }
}

static PRODUCED: &[u8] = b"hello world\nI'm not dead yet!\nQUIT\n";

/// Row 38.
#[test]
fn test_simple_producer() {
    for backend in BACKENDS {
        let (log, received) = echo_exchange(backend, 1, Terminator::LF, |c| {
            c.push_with_producer(Prod::Simple(SimpleProducer::new(PRODUCED, 8)))
                .unwrap();
        });
        assert_eq!(
            log.contents,
            [b"hello world".to_vec(), b"I'm not dead yet!".to_vec()],
            "{backend}"
        );
        assert_eq!(received, &PRODUCED[..PRODUCED.len() - SERVER_QUIT.len()]);
    }
}

/// Row 39.
#[test]
fn test_string_producer() {
    for backend in BACKENDS {
        let (log, _) = echo_exchange(backend, 1, Terminator::LF, |c| {
            c.push_with_producer(Prod::Slice(SliceProducer::new(PRODUCED)))
                .unwrap();
        });
        assert_eq!(
            log.contents,
            [b"hello world".to_vec(), b"I'm not dead yet!".to_vec()],
            "{backend}"
        );
    }
}

/// Row 40.
#[test]
fn test_empty_line() {
    for backend in BACKENDS {
        let (log, _) = echo_exchange(backend, 1, Terminator::LF, |c| {
            c.push(b"hello world\n\nI'm not dead yet!\n").unwrap();
            c.push(SERVER_QUIT).unwrap();
        });
        assert_eq!(
            log.contents,
            [
                b"hello world".to_vec(),
                b"".to_vec(),
                b"I'm not dead yet!".to_vec()
            ],
            "{backend}"
        );
    }
}

/// Row 41: the queued data and the QUIT are sent, then the client closes before the
/// server echoes anything.
#[test]
fn test_close_when_done() {
    for backend in BACKENDS {
        let (release, hold) = mpsc::channel();
        let (addr, server) = echo_server(1, Some(hold));
        let log = Rc::new(RefCell::new(Log::default()));
        let mut chat: Client =
            AsyncChat::new(EchoClient(log.clone())).with_terminator(Terminator::LF);
        chat.push(b"hello world\nI'm not dead yet!\n").unwrap();
        chat.push(SERVER_QUIT).unwrap();
        chat.close_when_done().unwrap();
        run_client(backend, addr, chat);
        // Only now may the server echo: the client is already closed.
        release.send(()).unwrap();
        let received = server.join().expect("echo server");
        let log = log.borrow();
        assert!(log.contents.is_empty(), "{backend}: closed before any echo");
        assert!(log.collected.is_empty(), "{backend}");
        assert_eq!(
            received, b"hello world\nI'm not dead yet!\n",
            "{backend}: everything queued before the close was sent"
        );
    }
}

/// Row 42: three pushes (of a literal, a `Vec` and an array: the original's bytes,
/// bytearray and memoryview) give three lines.
#[test]
fn test_push() {
    for backend in BACKENDS {
        let (log, _) = echo_exchange(backend, 1, Terminator::LF, |c| {
            let owned: Vec<u8> = "bytearray\n".bytes().collect();
            let array: [u8; 11] = *b"memoryview\n";
            c.push(b"bytes\n").unwrap();
            c.push(&owned).unwrap();
            c.push(&array[..]).unwrap();
            c.push(SERVER_QUIT).unwrap();
        });
        assert_eq!(
            log.contents,
            [
                b"bytes".to_vec(),
                b"bytearray".to_vec(),
                b"memoryview".to_vec()
            ],
            "{backend}"
        );
    }
}

/// Row 43 (bpo-16133), on real sockets: two channels over the same connection (dup'd
/// fds) are both reported readable for one byte; the second finds nothing to read
/// (EAGAIN) and returns quietly: no error, no close.
#[test]
fn test_blockingioerror() {
    for backend in BACKENDS {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        let log = Rc::new(RefCell::new(Log::default()));
        let mut r: StdReactor<Client, 4> = Reactor::new(AnySelector::new(backend));
        let mut tokens = Vec::new();
        for _ in 0..2 {
            let chat = AsyncChat::new(EchoClient(log.clone())).with_terminator(Terminator::LF);
            let socket = StdSocket::file(&ours).expect("dup");
            tokens.push(r.add(socket, chat).map_err(|e| e.kind).unwrap());
        }
        peer.write_all(b"x").unwrap();
        // Wait (bounded) until the byte is there, so one wait sees both fds ready.
        ours.set_read_timeout(Some(SAFETY)).unwrap();
        let mut probe = [0u8; 1];
        assert_eq!(ours.peek(&mut probe).unwrap(), 1);
        let ready = r.poll_once(Some(SAFETY)).unwrap();
        assert_eq!(ready, 2, "{backend}: both channels were ready");
        let log = log.borrow();
        assert_eq!(log.collected, b"x", "{backend}: one of them read it");
        assert_eq!(log.errors, 0, "{backend}: EAGAIN is not an error");
        for t in tokens {
            assert!(r.get(t).is_some(), "{backend}: and not a close");
        }
    }
}

/// Row 44.
#[test]
fn test_find_prefix_at_end() {
    assert_eq!(find_prefix_at_end(b"qwerty\r", b"\r\n"), 1);
    assert_eq!(find_prefix_at_end(b"qwertydkjf", b"\r\n"), 0);
}

/// Row 45: a count cannot be negative (`usize`); empty and over-long byte terminators
/// are refused.
#[test]
fn test_disallow_negative_terminator() {
    assert!(Terminator::bytes(b"").is_err());
    assert!(Terminator::bytes(&[b'q'; 17]).is_err());
    assert_eq!(Terminator::Count(0), Terminator::Count(usize::MIN));
}

// ---------------------------------------------------------------------------------
// (b) the chat server with several clients
// ---------------------------------------------------------------------------------

/// Capacity of the test server's map.
const CAP: usize = 16;
type ChatReactor = StdReactor<ChatServer<StdSocket>, CAP>;

/// Our chat server on a thread, on 127.0.0.1 port 0; stopped and joined when dropped.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(backend: Backend, max_conns: usize) -> Server {
        let listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 64).expect("listen");
        let addr = listener.local_addr().unwrap().as_inet().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            let mut r: Box<ChatReactor> = Box::new(Reactor::new(AnySelector::new(backend)));
            r.add(listener, ChatServer::listener(max_conns))
                .map_err(|e| e.kind)
                .expect("add the listener");
            while !stopping.load(Ordering::Relaxed) {
                r.poll_once(Some(Duration::from_millis(20))).expect("poll");
            }
            let _ = r.close_all();
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let result = t.join();
            if !thread::panicking() {
                result.expect("the server thread");
            }
        }
    }
}

/// A blocking line client.
struct Peer {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    nick: String,
}

impl Peer {
    /// Connects and reads the welcome; the nick is the default one it announces.
    fn join(addr: SocketAddr) -> Peer {
        let mut p = Peer::connect(addr);
        let welcome = p.line();
        p.nick = welcome
            .strip_prefix("* welcome ")
            .unwrap_or_else(|| panic!("expected a welcome, got {welcome:?}"))
            .to_string();
        p
    }

    fn connect(addr: SocketAddr) -> Peer {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(SAFETY)).unwrap();
        stream.set_nodelay(true).unwrap();
        Peer {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            nick: String::new(),
        }
    }

    fn send(&mut self, data: &[u8]) {
        self.writer.write_all(data).expect("send");
    }

    /// The next line, without its `\n`; fails on EOF or after [`SAFETY`].
    fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("{}: unexpected EOF", self.nick),
            Ok(_) => {}
            Err(e) => panic!("{}: no line ({e})", self.nick),
        }
        assert!(line.ends_with('\n'), "{}: cut line {line:?}", self.nick);
        line.pop();
        line
    }

    fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want, "{} expected another line", self.nick);
    }

    /// Sends `/ping` and returns the lines that came before the pong: everything the
    /// server queued for this client before it read the ping.
    fn ping(&mut self) -> Vec<String> {
        self.send(b"/ping\n");
        let mut before = Vec::new();
        loop {
            let l = self.line();
            if l == "* pong" {
                return before;
            }
            before.push(l);
        }
    }

    /// Sets the nick; notices of others joining or renaming may come first.
    fn nick(&mut self, nick: &str) {
        self.send(format!("/nick {nick}\n").as_bytes());
        let want = format!("* you are now {nick}");
        loop {
            let l = self.line();
            if l == want {
                break;
            }
            assert!(
                l.ends_with(" joined") || l.contains(" is now "),
                "{}: unexpected {l:?} before the nick reply",
                self.nick
            );
        }
        self.nick = nick.to_string();
    }

    /// Reads until the server closes; returns what came before.
    fn expect_eof(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => rest,
            Err(e) => panic!("{}: no EOF ({e})", self.nick),
        }
    }
}

#[test]
fn chat_nicks_and_broadcast_to_the_others_only() {
    for backend in BACKENDS {
        let server = Server::start(backend, 8);
        let mut a = Peer::join(server.addr);
        let mut b = Peer::join(server.addr);
        a.expect(&format!("* {} joined", b.nick));
        let old = a.nick.clone();
        a.nick("alice");
        b.expect(&format!("* {old} is now alice"));
        let mut c = Peer::join(server.addr);
        a.expect(&format!("* {} joined", c.nick));
        b.expect(&format!("* {} joined", c.nick));

        // Bad and taken nicks.
        for bad in ["/nick\n", "/nick two words\n", "/nick seventeen_chars_x\n"] {
            b.send(bad.as_bytes());
            b.expect("* invalid nick");
        }
        b.send(b"/nick alice\n");
        b.expect("* nick in use");
        b.send(b"/nick guest9\n");
        b.expect("* nick reserved");
        let old = b.nick.clone();
        b.send(b"/nick bob\r\n");
        b.expect("* you are now bob");
        b.nick = "bob".into();
        a.expect(&format!("* {old} is now bob"));
        c.expect(&format!("* {old} is now bob"));

        // Broadcast: everybody else, in order; never the sender.
        a.send(b"hello everyone\n");
        a.send(b"second line\r\n");
        b.expect("alice: hello everyone");
        b.expect("alice: second line");
        c.expect("alice: hello everyone");
        c.expect("alice: second line");
        assert_eq!(
            a.ping(),
            Vec::<String>::new(),
            "{backend}: no echo to the sender"
        );
        c.send(b"hi from c\n");
        a.expect(&format!("{}: hi from c", c.nick));
        b.expect(&format!("{}: hi from c", c.nick));
        assert!(c.ping().is_empty());
        a.send(b"/dance\n");
        a.expect("* unknown command");
        assert!(b.ping().is_empty(), "{backend}: commands are not broadcast");
    }
}

#[test]
fn chat_over_long_line_gets_an_error_line_and_nobody_is_disconnected() {
    for backend in BACKENDS {
        let server = Server::start(backend, 8);
        let mut a = Peer::join(server.addr);
        let mut b = Peer::join(server.addr);
        let mut c = Peer::join(server.addr);
        a.nick("alice");
        assert!(
            !b.ping().is_empty() && !c.ping().is_empty(),
            "the join notices"
        );

        // One write: an over-long line, then a short one.
        let mut data = vec![b'x'; MAX_LINE + 44];
        data.extend_from_slice(b"\nshort\n");
        a.send(&data);
        a.expect("* line too long");
        b.expect("alice: short");
        c.expect("alice: short");
        // A line far larger than the input ring, in pieces.
        for _ in 0..40 {
            a.send(&[b'z'; 256]);
        }
        a.send(b"\n");
        a.expect("* line too long");
        // The longest allowed line goes through; everybody is still here.
        let max = "m".repeat(MAX_LINE);
        a.send(format!("{max}\r\n").as_bytes());
        b.expect(&format!("alice: {max}"));
        c.expect(&format!("alice: {max}"));
        assert!(
            a.ping().is_empty(),
            "{backend}: exactly the two error lines"
        );
        b.send(b"still here\n");
        a.expect(&format!("{}: still here", b.nick));
        c.expect(&format!("{}: still here", b.nick));
    }
}

#[test]
fn chat_quit_says_bye_and_closes() {
    for backend in BACKENDS {
        let server = Server::start(backend, 8);
        let mut a = Peer::join(server.addr);
        let mut b = Peer::join(server.addr);
        a.expect(&format!("* {} joined", b.nick));
        let old = a.nick.clone();
        a.nick("alice");
        b.expect(&format!("* {old} is now alice"));
        a.send(b"/quit\n");
        a.expect("* bye");
        assert!(
            a.expect_eof().is_empty(),
            "{backend}: nothing after the bye"
        );
        b.expect("* alice left");
        // A hang-up is a leave too.
        let c = Peer::join(server.addr);
        b.expect(&format!("* {} joined", c.nick));
        let nick = c.nick.clone();
        drop(c);
        b.expect(&format!("* {nick} left"));
        assert!(b.ping().is_empty());
    }
}

#[test]
fn chat_extra_connections_get_an_error_line_while_the_others_are_served() {
    for backend in BACKENDS {
        let server = Server::start(backend, 2);
        let mut a = Peer::join(server.addr);
        let mut b = Peer::join(server.addr);
        a.expect(&format!("* {} joined", b.nick));
        let mut refused = Peer::connect(server.addr);
        refused.expect("* server full");
        assert!(refused.expect_eof().is_empty(), "{backend}: then closed");
        a.send(b"still served\n");
        b.expect(&format!("{}: still served", a.nick));
        assert!(
            a.ping().is_empty() && b.ping().is_empty(),
            "nobody heard of it"
        );
        // The limit is on live connections.
        b.send(b"/quit\n");
        b.expect("* bye");
        b.expect_eof();
        a.expect(&format!("* {} left", b.nick));
        let c = Peer::join(server.addr);
        a.expect(&format!("* {} joined", c.nick));
    }
}

// ---------------------------------------------------------------------------------
// (b') bursts: back-pressure, a slow reader, a client that never reads

/// Lines each talker bursts, of [`BURST_LINE`] bytes with the newline: 2.5 MiB each,
/// 5 MiB in all.
const BURST_LINES: usize = 2560;
const BURST_LINE: usize = 1024;
/// The slow reader takes at most this much every [`SLOW_READ_EVERY`]: 200 KiB/s.
const SLOW_READ: usize = 4096;
const SLOW_READ_EVERY: Duration = Duration::from_millis(20);

/// Line `i` of `nick`, without its newline: `<i> ` and a filler that depends on both.
fn burst_line(nick: &str, i: usize) -> String {
    let mut l = format!("{i} ");
    let fill = (b'a' + (i % 26) as u8) as char;
    let tag = nick.as_bytes()[nick.len() - 1] as char;
    while l.len() < BURST_LINE - 1 {
        l.push(if l.len() % 64 == 0 { tag } else { fill });
    }
    l
}

/// A TCP connection to `addr` whose receive buffer is as small as the kernel allows
/// (`SO_RCVBUF` set before the connect, so the window is small from the start).
fn connect_small_rcvbuf(addr: SocketAddr) -> TcpStream {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, connect, setsockopt, socket, sockopt,
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .expect("socket");
    setsockopt(&fd, sockopt::RcvBuf, &1024).expect("SO_RCVBUF");
    let SocketAddr::V4(v4) = addr else {
        panic!("the test server listens on IPv4")
    };
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(v4)).expect("connect");
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(SAFETY)).unwrap();
    s
}

/// Lines as they arrived.
type Heard = Vec<(Instant, String)>;

/// Reads lines from `r` until `done` says so (or EOF, which fails), recording each
/// with the time it arrived; `pace` limits reads to `SLOW_READ` bytes every
/// `SLOW_READ_EVERY`.
fn read_lines(
    mut r: BufReader<TcpStream>,
    who: String,
    pace: bool,
    mut done: impl FnMut(&str) -> bool + Send + 'static,
) -> JoinHandle<(BufReader<TcpStream>, Heard)> {
    thread::spawn(move || {
        let mut lines = Vec::new();
        let mut partial = Vec::new();
        let mut buf = vec![0u8; SLOW_READ];
        let guard = Instant::now() + Duration::from_secs(600);
        loop {
            assert!(Instant::now() < guard, "{who}: the burst never ended");
            let n = if pace {
                thread::sleep(SLOW_READ_EVERY);
                r.get_mut().read(&mut buf)
            } else {
                r.read(&mut buf)
            }
            .unwrap_or_else(|e| panic!("{who}: {e}"));
            assert!(n > 0, "{who}: unexpected EOF");
            let now = Instant::now();
            partial.extend_from_slice(&buf[..n]);
            while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                let line = String::from_utf8(line[..end].to_vec()).expect("UTF-8");
                let stop = done(&line);
                lines.push((now, line));
                if stop {
                    assert!(partial.is_empty(), "{who}: nothing was sent after the end");
                    return (r, lines);
                }
            }
        }
    })
}

/// The line numbers heard from `nick`, checking each line's text.
fn burst_heard(lines: &[(Instant, String)], nick: &str) -> Vec<usize> {
    let prefix = format!("{nick}: ");
    lines
        .iter()
        .filter_map(|(_, l)| l.strip_prefix(&prefix))
        .filter(|l| *l != "done")
        .map(|l| {
            let i: usize = l
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .expect("a numbered line");
            assert_eq!(l, burst_line(nick, i), "{nick}'s line {i} arrived intact");
            i
        })
        .collect()
}

/// The longest time between two consecutive lines of the burst.
fn longest_gap(lines: &[(Instant, String)]) -> Duration {
    let times: Vec<Instant> = lines
        .iter()
        .filter(|(_, l)| !l.starts_with("* "))
        .map(|(t, _)| *t)
        .collect();
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

/// Two talkers burst 5 MiB of 1 KiB lines while one client reads 4 KiB every 20 ms
/// and one never reads (small receive buffer). The slow reader stays and gets every
/// line in order; the one that never reads is disconnected as too slow; the talkers
/// stay. Nothing is asserted about time: the gaps the readers saw are printed.
fn bursts_on(backend: Backend) -> String {
    let server = Server::start(backend, 8);
    let mut talk_a = Peer::join(server.addr);
    let mut talk_b = Peer::join(server.addr);
    let mut slow = Peer::join(server.addr);
    let mute = connect_small_rcvbuf(server.addr);
    talk_a.nick("talka");
    talk_b.nick("talkb");
    slow.nick("slowreader");
    (&mute).write_all(b"/nick mute\n").unwrap();
    // Everybody knows everybody before the burst (the mute one reads nothing).
    for p in [&mut talk_a, &mut talk_b, &mut slow] {
        loop {
            let l = p.line();
            if l.ends_with(" is now mute") {
                break;
            }
        }
        assert!(p.ping().iter().all(|l| l.starts_with("* ")), "{backend}");
    }

    let both_done = |mut seen: usize| {
        move |l: &str| {
            seen += (l == "talka: done" || l == "talkb: done") as usize;
            seen == 2
        }
    };
    let readers = [
        read_lines(talk_a.reader, "talka".into(), false, |l| l == "talkb: done"),
        read_lines(talk_b.reader, "talkb".into(), false, |l| l == "talka: done"),
        read_lines(slow.reader, "slowreader".into(), true, both_done(0)),
    ];
    let talkers: Vec<JoinHandle<TcpStream>> = [(talk_a.writer, "talka"), (talk_b.writer, "talkb")]
        .into_iter()
        .map(|(mut w, nick)| {
            thread::spawn(move || {
                w.set_write_timeout(Some(Duration::from_secs(600))).unwrap();
                let mut chunk = Vec::with_capacity(64 * BURST_LINE);
                for i in 0..BURST_LINES {
                    chunk.extend_from_slice(burst_line(nick, i).as_bytes());
                    chunk.push(b'\n');
                    if chunk.len() >= 64 * BURST_LINE {
                        w.write_all(&chunk).expect("burst");
                        chunk.clear();
                    }
                }
                chunk.extend_from_slice(b"done\n");
                w.write_all(&chunk).expect("burst");
                w
            })
        })
        .collect();
    let writers: Vec<TcpStream> = talkers
        .into_iter()
        .map(|t| t.join().expect("a talker"))
        .collect();
    let [a, b, s] = readers.map(|r| r.join().expect("a reader"));

    // The slow reader got every line of both, in order, and was never cut off.
    let all: Vec<usize> = (0..BURST_LINES).collect();
    for nick in ["talka", "talkb"] {
        assert_eq!(
            burst_heard(&s.1, nick),
            all,
            "{backend}: slowreader heard all of {nick}"
        );
    }
    assert_eq!(
        burst_heard(&a.1, "talkb"),
        all,
        "{backend}: talka heard all of talkb"
    );
    assert_eq!(
        burst_heard(&b.1, "talka"),
        all,
        "{backend}: talkb heard all of talka"
    );
    // The mute one was disconnected as too slow, and nobody else left.
    for (who, lines) in [("talka", &a.1), ("talkb", &b.1), ("slowreader", &s.1)] {
        let left: Vec<&String> = lines
            .iter()
            .map(|(_, l)| l)
            .filter(|l| l.contains(" left"))
            .collect();
        assert_eq!(
            left,
            ["* mute left (too slow)"],
            "{backend}: what {who} was told"
        );
    }
    // Everybody else is still served.
    for (reader, writer, nick) in [
        (a.0, &writers[0], "talka"),
        (b.0, &writers[1], "talkb"),
        (s.0, &slow.writer, "slowreader"),
    ] {
        let mut p = Peer {
            reader,
            writer: writer.try_clone().unwrap(),
            nick: nick.to_string(),
        };
        assert!(p.ping().is_empty(), "{backend}: {nick} is still served");
    }
    // The mute one got a prefix of the burst (at most what the buffers held), then
    // the end of the stream.
    let mut got = Vec::new();
    let _ = (&mute).read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    let mut whole: Vec<&str> = text.split('\n').collect();
    whole.pop();
    for nick in ["talka", "talkb"] {
        let prefix = format!("{nick}: ");
        let heard: Vec<usize> = whole
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix)?.split(' ').next()?.parse().ok())
            .collect();
        assert_eq!(
            heard,
            (0..heard.len()).collect::<Vec<_>>(),
            "{backend}: a prefix"
        );
        assert!(
            heard.len() < BURST_LINES,
            "{backend}: the mute one did not get everything"
        );
    }
    format!(
        "{backend}: longest gap between two lines: slow reader {:?}, talkers {:?} and {:?}",
        longest_gap(&s.1),
        longest_gap(&a.1),
        longest_gap(&b.1)
    )
}

#[test]
fn chat_bursts_a_slow_reader_stays_and_a_client_that_never_reads_is_disconnected() {
    // Every backend at once: each run takes as long as the slow reader needs for
    // 5 MiB (about 26 s).
    let runs: Vec<JoinHandle<String>> = BACKENDS
        .into_iter()
        .map(|b| thread::spawn(move || bursts_on(b)))
        .collect();
    for r in runs {
        println!("{}", r.join().expect("a backend's run"));
    }
}

// ---------------------------------------------------------------------------------
// (c) a Python asynchat client against our chat server
// ---------------------------------------------------------------------------------

#[test]
fn python_asynchat_client_talks_to_our_chat_server() {
    // A missing peer fails the test (ASYNCORE_SKIP_INTEROP=1 skips it instead).
    if peers::python("import asynchat, asyncore").is_none() {
        return;
    }
    let script = peers::script("chat_client.py");
    for backend in BACKENDS {
        let server = Server::start(backend, 8);
        let mut rust = Peer::join(server.addr);
        rust.nick("rusty");
        let mut python = std::process::Command::new("python3")
            .args(["-W", "ignore"])
            .arg(&script)
            .args([&server.addr.port().to_string(), "rusty"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        // The Rust client sees the Python one join, pick its nick and speak.
        let joined = rust.line();
        let guest = joined
            .strip_prefix("* ")
            .and_then(|l| l.strip_suffix(" joined"))
            .unwrap_or_else(|| panic!("expected a join notice, got {joined:?}"))
            .to_string();
        rust.expect(&format!("* {guest} is now pyclient"));
        rust.expect("pyclient: hello from python");
        rust.send(b"hello from rust\n");
        rust.expect("* pyclient left");
        // Python's exit, bounded.
        let deadline = Instant::now() + SAFETY;
        let status = loop {
            if let Some(status) = python.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = python.kill();
                panic!("{backend}: the Python client hangs");
            }
            thread::sleep(Duration::from_millis(10));
        };
        let mut out = String::new();
        python
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let mut err = String::new();
        python
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(status.success(), "{backend}: python failed:\n{out}\n{err}");
        for step in [
            "WELCOME",
            "NICK OK",
            "TOO LONG OK",
            "GOT BROADCAST",
            "BYE",
            "CLOSED BY SERVER",
            "OK",
        ] {
            assert!(
                out.lines().any(|l| l == step),
                "{backend}: python did not report {step}:\n{out}"
            );
        }
        assert!(
            rust.ping().is_empty(),
            "{backend}: nothing else for the Rust client"
        );
        rust.writer.shutdown(Shutdown::Both).ok();
    }
}
