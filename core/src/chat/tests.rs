//! The asynchat rows of the reference test inventory (32-45), on the mock, with the
//! echoed data arriving in chunks of 1, 2 and 3 bytes.

use heapless::Vec;

use super::*;
use crate::mock::{MockIo, MockSelector, MockSocket, SendStep};
use crate::{BufferFull, Ctx, Dispatcher, Error, Reactor, Readiness, Socket, Token};

const DATA: &[u8] = b"hello world, I'm not dead yet!\n";

/// The original test client: collect into a buffer, move it to `contents` on each
/// terminator.
#[derive(Debug, Default)]
struct Client {
    buffer: Vec<u8, 256>,
    contents: Vec<Vec<u8, 256>, 8>,
    collects: usize,
    empty_collects: usize,
    collected: Vec<u8, 512>,
}

impl<S: Socket, M> ChatHandler<S, M> for Client {
    type Producer = SimpleProducer<'static>;

    fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error> {
        self.collects += 1;
        if data.is_empty() {
            self.empty_collects += 1;
        }
        self.buffer
            .extend_from_slice(data)
            .map_err(|_| Error::BufferFull)?;
        self.collected
            .extend_from_slice(data)
            .map_err(|_| Error::BufferFull)?;
        Ok(())
    }

    fn found_terminator<const OUT: usize, const Q: usize>(
        &mut self,
        _chat: &mut ChatControl<Self::Producer, OUT, Q>,
        _ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), Error> {
        let line = core::mem::take(&mut self.buffer);
        self.contents.push(line).map_err(|_| Error::BufferFull)
    }
}

type Chat = AsyncChat<Client, SimpleProducer<'static>, 64, 256, 8>;
type R = Reactor<MockIo, Chat, 4>;

/// Runs a client over `input` arriving in reads of `chunk` bytes, with `terminator`.
fn run_client(input: &[u8], chunk: usize, terminator: Terminator) -> (R, Token) {
    let mut r: R = Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    assert_eq!(s.feed(input), input.len());
    s.set_recv_chunk(chunk);
    let t = r
        .add(
            s,
            AsyncChat::new(Client::default()).with_terminator(terminator),
        )
        .unwrap();
    r.selector_mut().set_ready(1, Readiness::READABLE);
    r.run(None, Some(input.len() as u32 + 2)).unwrap();
    (r, t)
}

fn contents(r: &R, t: Token) -> std::vec::Vec<std::vec::Vec<u8>> {
    r.get(t)
        .unwrap()
        .dispatcher
        .handler
        .contents
        .iter()
        .map(|l| l.to_vec())
        .collect()
}

fn line_test(term: &[u8]) {
    let mut input = std::vec::Vec::new();
    input.extend_from_slice(b"hello world");
    input.extend_from_slice(term);
    input.extend_from_slice(b"I'm not dead yet!");
    input.extend_from_slice(term);
    for chunk in 1..=3 {
        let (r, t) = run_client(&input, chunk, Terminator::bytes(term).unwrap());
        assert_eq!(
            contents(&r, t),
            [b"hello world".to_vec(), b"I'm not dead yet!".to_vec()],
            "terminator {term:?}, chunk {chunk}"
        );
        assert_eq!(r.get(t).unwrap().dispatcher.handler.empty_collects, 0);
        assert_eq!(r.get(t).unwrap().dispatcher.buffered_input(), 0);
    }
}

#[test]
fn test_line_terminator1() {
    line_test(b"\n");
}

#[test]
fn test_line_terminator2() {
    line_test(b"\r\n");
}

#[test]
fn test_line_terminator2_keeps_partial_terminator_between_reads() {
    let mut r: R = Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    s.feed(b"ab\r");
    let t = r
        .add(
            s,
            AsyncChat::new(Client::default()).with_terminator(Terminator::CRLF),
        )
        .unwrap();
    r.selector_mut().set_ready(1, Readiness::READABLE);
    r.poll_once(None).unwrap();
    let c = r.get(t).unwrap().dispatcher;
    assert_eq!(&c.handler.collected[..], b"ab");
    assert_eq!(c.buffered_input(), 1, "the \\r is kept");
    assert!(c.handler.contents.is_empty());
    r.get_mut(t).unwrap().socket.feed(b"\ncd\r\nef");
    r.poll_once(None).unwrap();
    assert_eq!(contents(&r, t), [b"ab".to_vec(), b"cd".to_vec()]);
    assert_eq!(&r.get(t).unwrap().dispatcher.handler.buffer[..], b"ef");
}

#[test]
fn test_line_terminator3() {
    line_test(b"qqq");
}

#[test]
fn split_terminator_prefix_then_mismatch() {
    // Terminator `aab`: reading `xaa` collects `x` and keeps `aa`; reading `ab` then
    // collects `a` and finds the terminator (as the original does).
    let mut r: R = Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    s.feed(b"xaa");
    let t = r
        .add(
            s,
            AsyncChat::new(Client::default()).with_terminator(Terminator::bytes(b"aab").unwrap()),
        )
        .unwrap();
    r.selector_mut().set_ready(1, Readiness::READABLE);
    r.poll_once(None).unwrap();
    assert_eq!(r.get(t).unwrap().dispatcher.buffered_input(), 2);
    r.get_mut(t).unwrap().socket.feed(b"ab");
    r.poll_once(None).unwrap();
    assert_eq!(contents(&r, t), [b"xa".to_vec()]);
}

fn numeric_test(n: usize) {
    for chunk in 1..=3 {
        let (r, t) = run_client(DATA, chunk, Terminator::Count(n));
        assert_eq!(
            contents(&r, t),
            [DATA[..n].to_vec()],
            "count {n}, chunk {chunk}"
        );
        let h = &r.get(t).unwrap().dispatcher.handler;
        assert_eq!(
            &h.collected[..],
            DATA,
            "the rest is collected after the count ran out"
        );
        assert_eq!(r.get(t).unwrap().dispatcher.terminator(), Terminator::None);
    }
}

#[test]
fn test_numeric_terminator1() {
    numeric_test(1);
}

#[test]
fn test_numeric_terminator2() {
    numeric_test(6);
}

#[test]
fn numeric_terminator_counts_down_across_reads() {
    // Count 5: reading `123` collects `123` (2 left); reading `4567` collects `45`,
    // finds, then collects `67`.
    let mut r: R = Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    s.feed(b"123");
    let t = r
        .add(
            s,
            AsyncChat::new(Client::default()).with_terminator(Terminator::Count(5)),
        )
        .unwrap();
    r.selector_mut().set_ready(1, Readiness::READABLE);
    r.poll_once(None).unwrap();
    assert_eq!(
        r.get(t).unwrap().dispatcher.terminator(),
        Terminator::Count(2)
    );
    r.get_mut(t).unwrap().socket.feed(b"4567");
    r.poll_once(None).unwrap();
    assert_eq!(contents(&r, t), [b"12345".to_vec()]);
    assert_eq!(&r.get(t).unwrap().dispatcher.handler.buffer[..], b"67");
}

#[test]
fn test_none_terminator() {
    for chunk in 1..=3 {
        let (r, t) = run_client(DATA, chunk, Terminator::None);
        let h = &r.get(t).unwrap().dispatcher.handler;
        assert!(h.contents.is_empty());
        assert_eq!(&h.collected[..], DATA);
    }
}

#[test]
fn default_terminator_is_none() {
    let chat: Chat = AsyncChat::new(Client::default());
    assert_eq!(chat.terminator(), Terminator::None);
}

/// Sends through the chat's output side with the socket accepting `accept` bytes per
/// send, and returns what the peer received.
fn send_through(setup: impl FnOnce(&mut Chat), accept: usize) -> std::vec::Vec<u8> {
    let mut r: R = Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    for _ in 0..16 {
        s.script_send(SendStep::Accept(accept));
    }
    let mut chat = AsyncChat::new(Client::default());
    setup(&mut chat);
    let t = r.add(s, chat).unwrap();
    r.selector_mut().set_ready(1, Readiness::WRITABLE);
    r.run(None, Some(50)).unwrap();
    let c = r.get(t).unwrap();
    assert!(!c.dispatcher.has_output(), "everything was sent");
    c.socket.sent().to_vec()
}

#[test]
fn test_simple_producer() {
    let data = b"hello world\nI'm not dead yet!\nQUIT\n";
    let sent = send_through(
        |c| {
            c.push_with_producer(SimpleProducer::new(data, 8)).unwrap();
        },
        usize::MAX,
    );
    assert_eq!(&sent[..], data);
}

#[test]
fn simple_producer_chunks() {
    let mut p = SimpleProducer::new(b"abcdefgh", 4);
    let mut out = [0u8; 16];
    assert_eq!(p.more(&mut out), 4);
    assert_eq!(&out[..4], b"abcd");
    assert_eq!(p.more(&mut out), 4);
    assert_eq!(&out[..4], b"efgh");
    assert_eq!(p.more(&mut out), 0);
    assert_eq!(p.more(&mut out), 0);
}

#[test]
fn producer_and_data_keep_their_order_through_short_writes() {
    // The original's `PQRSTUVWXYZ` producer in chunks of 5 through 4-byte sends.
    let sent = send_through(
        |c| {
            c.push(b"01").unwrap();
            c.push_with_producer(SimpleProducer::new(b"PQRSTUVWXYZ", 5))
                .unwrap();
            c.push(b"89").unwrap();
        },
        4,
    );
    assert_eq!(&sent[..], b"01PQRSTUVWXYZ89");
}

#[test]
fn test_string_producer() {
    let mut r: Reactor<MockIo, AsyncChat<Client2, SliceProducer<'static>, 64, 256, 8>, 2> =
        Reactor::new(MockSelector::new());
    let mut chat = AsyncChat::new(Client2);
    chat.push_with_producer(SliceProducer::new(b"a whole slice\n"))
        .unwrap();
    let t = r.add(MockSocket::connected(1), chat).unwrap();
    r.selector_mut().set_ready(1, Readiness::WRITABLE);
    r.run(None, Some(3)).unwrap();
    let c = r.get(t).unwrap();
    assert_eq!(c.socket.sent(), b"a whole slice\n");
    assert!(
        !c.dispatcher.has_output(),
        "the exhausted producer is dropped"
    );
}

#[derive(Debug)]
struct Client2;

impl<S: Socket, M> ChatHandler<S, M> for Client2 {
    type Producer = SliceProducer<'static>;
    fn collect_incoming_data(&mut self, _data: &[u8]) -> Result<(), Error> {
        Ok(())
    }
    fn found_terminator<const OUT: usize, const Q: usize>(
        &mut self,
        _chat: &mut ChatControl<Self::Producer, OUT, Q>,
        _ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), Error> {
        Ok(())
    }
}

#[test]
fn test_empty_line() {
    for chunk in 1..=3 {
        let (r, t) = run_client(b"hello world\n\nI'm not dead yet!\n", chunk, Terminator::LF);
        assert_eq!(
            contents(&r, t),
            [
                b"hello world".to_vec(),
                b"".to_vec(),
                b"I'm not dead yet!".to_vec()
            ]
        );
        assert_eq!(r.get(t).unwrap().dispatcher.handler.empty_collects, 0);
    }
}

#[test]
fn test_push() {
    let sent = send_through(
        |c| {
            let line = b"hello\n";
            for _ in 0..3 {
                c.push(line).unwrap();
            }
        },
        usize::MAX,
    );
    assert_eq!(&sent[..], b"hello\nhello\nhello\n");
}

#[test]
fn empty_push_costs_no_send() {
    let mut chat: Chat = AsyncChat::new(Client::default());
    chat.push(b"").unwrap();
    assert!(!chat.has_output(), "an empty push queues nothing");
}

#[test]
fn full_output_is_an_error_not_a_drop() {
    let mut chat: AsyncChat<Client, SimpleProducer<'static>, 8, 8, 2> =
        AsyncChat::new(Client::default());
    chat.push(b"12345").unwrap();
    assert_eq!(chat.push(b"6789"), Err(BufferFull), "all or nothing");
    assert_eq!(chat.control().push_partial(b"6789"), 3);
    assert_eq!(chat.control().output_free(), 0);
    chat.push_with_producer(SimpleProducer::new(b"x", 1))
        .unwrap();
    assert!(matches!(
        chat.push_with_producer(SimpleProducer::new(b"y", 1)),
        Err(QueueFull(_))
    ));
}

#[test]
fn output_is_written_until_would_block() {
    let mut r: R = Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    for _ in 0..5 {
        s.script_send(SendStep::Accept(2));
    }
    s.script_send(SendStep::WouldBlock);
    let mut chat = AsyncChat::new(Client::default());
    chat.push(b"0123456789ABCD").unwrap();
    let t = r.add(s, chat).unwrap();
    r.selector_mut().set_ready(1, Readiness::WRITABLE);
    r.poll_once(None).unwrap();
    let c = r.get(t).unwrap();
    assert_eq!(
        c.socket.sent(),
        b"0123456789",
        "five sends in one write event"
    );
    assert_eq!(c.socket.send_calls(), 6);
}

#[test]
fn test_blockingioerror() {
    let mut r: R = Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    s.script_recv(crate::mock::RecvStep::WouldBlock);
    let t = r
        .add(
            s,
            AsyncChat::new(Client::default()).with_terminator(Terminator::LF),
        )
        .unwrap();
    r.selector_mut().set_ready(1, Readiness::READABLE);
    r.poll_once(None).unwrap();
    let c = r.get(t).expect("no error, no close");
    assert_eq!(c.dispatcher.handler.collects, 0);
    assert_eq!(c.dispatcher.buffered_input(), 0);
}

#[test]
fn test_find_prefix_at_end() {
    assert_eq!(find_prefix_at_end(b"qwerty\r", b"\r\n"), 1);
    assert_eq!(find_prefix_at_end(b"qwertydkjf", b"\r\n"), 0);
    assert_eq!(find_prefix_at_end(b"xaa", b"aab"), 2);
    assert_eq!(find_prefix_at_end(b"a", b"aab"), 1);
    assert_eq!(find_prefix_at_end(b"aaaa", b"a"), 0, "one-byte needle");
    assert_eq!(find_prefix_at_end(b"", b"ab"), 0);
}

#[test]
fn test_disallow_negative_terminator() {
    // Counts are unsigned: a negative count cannot be expressed. Empty and over-long
    // byte terminators are refused instead.
    assert_eq!(Terminator::bytes(b""), Err(InvalidTerminator));
    assert_eq!(
        Terminator::bytes(&[b'x'; MAX_TERMINATOR + 1]),
        Err(InvalidTerminator)
    );
    assert!(Terminator::bytes(&[b'x'; MAX_TERMINATOR]).is_ok());
}

#[test]
fn found_terminator_may_change_the_terminator_mid_buffer() {
    /// Reads a 1-line header, then switches to a byte count of 3.
    #[derive(Debug, Default)]
    struct Switch {
        records: Vec<Vec<u8, 16>, 4>,
        cur: Vec<u8, 16>,
    }
    impl<S: Socket, M> ChatHandler<S, M> for Switch {
        type Producer = NoProducer;
        fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error> {
            self.cur
                .extend_from_slice(data)
                .map_err(|_| Error::BufferFull)
        }
        fn found_terminator<const OUT: usize, const Q: usize>(
            &mut self,
            chat: &mut ChatControl<NoProducer, OUT, Q>,
            _ctx: &mut Ctx<'_, S, M>,
        ) -> Result<(), Error> {
            let rec = core::mem::take(&mut self.cur);
            self.records.push(rec).map_err(|_| Error::BufferFull)?;
            if self.records.len() == 1 {
                chat.set_terminator(Terminator::Count(3));
            } else {
                chat.set_terminator(Terminator::LF);
            }
            Ok(())
        }
    }
    let mut r: Reactor<MockIo, AsyncChat<Switch, NoProducer, 32, 32, 2>, 2> =
        Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    s.feed(b"HDR\nabcdef\n");
    let t = r
        .add(
            s,
            AsyncChat::new(Switch::default()).with_terminator(Terminator::LF),
        )
        .unwrap();
    r.selector_mut().set_ready(1, Readiness::READABLE);
    r.poll_once(None).unwrap();
    let recs: std::vec::Vec<&[u8]> = r
        .get(t)
        .unwrap()
        .dispatcher
        .handler
        .records
        .iter()
        .map(|v| &v[..])
        .collect();
    assert_eq!(recs, [&b"HDR"[..], b"abc", b"def"]);
}

#[test]
fn over_long_record_goes_to_the_handler_and_can_be_discarded() {
    #[derive(Debug, Default)]
    struct Limited {
        cur: Vec<u8, 8>,
        lines: Vec<Vec<u8, 8>, 4>,
        too_long: usize,
    }
    impl<S: Socket, M> ChatHandler<S, M> for Limited {
        type Producer = NoProducer;
        fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error> {
            self.cur
                .extend_from_slice(data)
                .map_err(|_| Error::BufferFull)
        }
        fn found_terminator<const OUT: usize, const Q: usize>(
            &mut self,
            chat: &mut ChatControl<NoProducer, OUT, Q>,
            _ctx: &mut Ctx<'_, S, M>,
        ) -> Result<(), Error> {
            let line = core::mem::take(&mut self.cur);
            self.lines.push(line).map_err(|_| Error::BufferFull)?;
            let _ = chat;
            Ok(())
        }
        fn record_too_long<const OUT: usize, const Q: usize>(
            &mut self,
            chat: &mut ChatControl<NoProducer, OUT, Q>,
            _ctx: &mut Ctx<'_, S, M>,
        ) -> Result<Overflow, Error> {
            self.too_long += 1;
            self.cur.clear();
            chat.push(b"ERR too long\n")
                .map_err(|_| Error::BufferFull)?;
            Ok(Overflow::Discard)
        }
    }
    let mut r: Reactor<MockIo, AsyncChat<Limited, NoProducer, 16, 64, 4>, 2> =
        Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    s.feed(b"ok\nthis line is far too long for eight bytes\nfine\n");
    s.set_recv_chunk(5);
    let mut chat = AsyncChat::new(Limited::default()).with_terminator(Terminator::LF);
    chat.set_max_record(8);
    let t = r.add(s, chat).unwrap();
    r.selector_mut()
        .set_ready(1, Readiness::READABLE | Readiness::WRITABLE);
    r.run(None, Some(30)).unwrap();
    let c = r.get(t).expect("the connection survives an over-long line");
    let lines: std::vec::Vec<&[u8]> = c.dispatcher.handler.lines.iter().map(|v| &v[..]).collect();
    assert_eq!(
        lines,
        [&b"ok"[..], b"", b"fine"],
        "the long record is reported empty, then framing resumes"
    );
    assert_eq!(c.dispatcher.handler.too_long, 1);
    assert_eq!(c.socket.sent(), b"ERR too long\n");
}

#[test]
fn partial_terminator_held_at_eof_is_delivered() {
    let mut r: R = Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    s.feed(b"last\r");
    s.feed_eof();
    let t = r
        .add(
            s,
            AsyncChat::new(Client::default()).with_terminator(Terminator::CRLF),
        )
        .unwrap();
    r.selector_mut().set_ready(1, Readiness::READABLE);
    // Keep the channel to look at it: the handler closes on EOF by default, so watch
    // the data arrive pass by pass.
    r.poll_once(None).unwrap();
    assert!(r.get(t).is_none(), "EOF with nothing queued closes");
    // The same with output queued keeps the channel until it is sent.
    let mut s = MockSocket::connected(2);
    s.feed(b"last\r");
    s.feed_eof();
    s.script_send(SendStep::WouldBlock);
    let mut chat = AsyncChat::new(Client::default()).with_terminator(Terminator::CRLF);
    chat.push(b"bye\n").unwrap();
    let t = r.add(s, chat).unwrap();
    r.selector_mut()
        .set_ready(2, Readiness::READABLE | Readiness::WRITABLE);
    r.poll_once(None).unwrap();
    let c = r.get(t).expect("kept open to send the queued output");
    assert_eq!(
        &c.dispatcher.handler.collected[..],
        b"last\r",
        "the held \\r is not lost"
    );
    r.poll_once(None).unwrap();
    assert!(r.get(t).is_none(), "closed once the output went out");
}

#[test]
fn back_pressure_when_input_ring_is_full() {
    // A handler that refuses to collect more than 4 bytes leaves the input ring full:
    // the chat then stops asking for read readiness.
    type Small = AsyncChat<Client, SimpleProducer<'static>, 4, 8, 2>;
    let mut chat: Small = AsyncChat::new(Client::default());
    assert!(<Small as Dispatcher<MockSocket, Small>>::readable(&chat));
    chat.input.push(b"abcd");
    assert!(!<Small as Dispatcher<MockSocket, Small>>::readable(&chat));
    assert!(
        !<Small as Dispatcher<MockSocket, Small>>::writable(&chat),
        "no output, no write interest"
    );
    chat.push(b"x").unwrap();
    assert!(<Small as Dispatcher<MockSocket, Small>>::writable(&chat));
}

#[test]
fn count_zero_terminator_is_no_framing() {
    // The original treats every falsy terminator (None, 0, b"") alike: everything is
    // collected and found_terminator never runs.
    for chunk in 1..=3 {
        let (r, t) = run_client(DATA, chunk, Terminator::Count(0));
        let h = &r.get(t).unwrap().dispatcher.handler;
        assert!(h.contents.is_empty(), "chunk {chunk}: no found_terminator");
        assert_eq!(&h.collected[..], DATA);
    }
}

#[test]
fn flush_to_sends_data_and_producers_and_stops_at_a_close_marker() {
    let mut chat: Chat = AsyncChat::new(Client::default());
    chat.push(b"ab").unwrap();
    chat.push_with_producer(SimpleProducer::new(b"cdef", 3))
        .unwrap();
    chat.push(b"gh").unwrap();
    chat.close_when_done().unwrap();
    chat.push(b"never").unwrap();
    let mut s = MockSocket::connected(1);
    s.script_send(SendStep::Accept(1));
    assert_eq!(chat.control().flush_to(&mut s), Ok(8));
    assert_eq!(s.sent(), b"abcdefgh");
    assert!(chat.has_output(), "the close marker and what follows stay");
    assert!(!s.is_closed(), "only the channel's own handlers close");
    // Would-block stops it with nothing lost.
    let mut chat: Chat = AsyncChat::new(Client::default());
    chat.push(b"xyz").unwrap();
    let mut s = MockSocket::connected(2);
    s.script_send(SendStep::WouldBlock);
    assert_eq!(chat.control().flush_to(&mut s), Ok(0));
    assert_eq!(chat.control().flush_to(&mut s), Ok(3));
    assert!(!chat.has_output());
}

#[test]
fn handle_timeout_reaches_the_chat_handler() {
    #[derive(Debug, Default)]
    struct Pinger {
        timeouts: usize,
    }
    impl<S: Socket, M> ChatHandler<S, M> for Pinger {
        type Producer = NoProducer;
        fn collect_incoming_data(&mut self, _data: &[u8]) -> Result<(), Error> {
            Ok(())
        }
        fn found_terminator<const OUT: usize, const Q: usize>(
            &mut self,
            _chat: &mut ChatControl<NoProducer, OUT, Q>,
            _ctx: &mut Ctx<'_, S, M>,
        ) -> Result<(), Error> {
            Ok(())
        }
        fn handle_timeout<const OUT: usize, const Q: usize>(
            &mut self,
            chat: &mut ChatControl<NoProducer, OUT, Q>,
            _ctx: &mut Ctx<'_, S, M>,
        ) -> Result<(), Error> {
            self.timeouts += 1;
            chat.push(b"PING\n").map_err(Error::from)
        }
    }
    let mut r: Reactor<MockIo, AsyncChat<Pinger, NoProducer, 16, 64, 4>, 2> =
        Reactor::new(MockSelector::new());
    let t = r
        .add(MockSocket::connected(1), AsyncChat::new(Pinger::default()))
        .unwrap();
    r.set_deadline(t, Some(core::time::Duration::from_millis(5)))
        .unwrap();
    r.run(Some(core::time::Duration::from_millis(10)), Some(2))
        .unwrap();
    let c = r.get(t).unwrap();
    assert_eq!(c.dispatcher.handler.timeouts, 1);
    assert_eq!(
        c.socket.sent(),
        b"PING\n",
        "queued in handle_timeout and sent at once"
    );
}

/// A handler that pauses input after every record, and a dispatcher around its chat
/// that resumes (and cuts what is buffered) at each deadline.
mod pause {
    use super::*;
    use crate::AfterEof;

    #[derive(Debug, Default)]
    pub(super) struct Pauser {
        pub(super) line: Vec<u8, 16>,
        pub(super) lines: Vec<Vec<u8, 16>, 8>,
        pub(super) eofs: usize,
    }

    impl<S: Socket, M> ChatHandler<S, M> for Pauser {
        type Producer = NoProducer;
        fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error> {
            self.line
                .extend_from_slice(data)
                .map_err(|_| Error::BufferFull)
        }
        fn found_terminator<const OUT: usize, const Q: usize>(
            &mut self,
            chat: &mut ChatControl<NoProducer, OUT, Q>,
            _ctx: &mut Ctx<'_, S, M>,
        ) -> Result<(), Error> {
            let line = core::mem::take(&mut self.line);
            self.lines.push(line).map_err(|_| Error::BufferFull)?;
            chat.pause_input();
            Ok(())
        }
        fn handle_eof<const OUT: usize, const Q: usize>(
            &mut self,
            _chat: &mut ChatControl<NoProducer, OUT, Q>,
            _ctx: &mut Ctx<'_, S, M>,
        ) -> AfterEof {
            self.eofs += 1;
            AfterEof::Close
        }
    }

    pub(super) type PChat = AsyncChat<Pauser, NoProducer, 64, 64, 4>;

    #[derive(Debug)]
    pub(super) struct Resumer(pub(super) PChat);

    impl<S: Socket> Dispatcher<S> for Resumer {
        type Error = Error;
        fn readable(&self) -> bool {
            <PChat as Dispatcher<S, Self>>::readable(&self.0)
        }
        fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
            self.0.handle_read(ctx)
        }
        fn handle_eof(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<AfterEof, Error> {
            self.0.handle_eof(ctx)
        }
        fn handle_timeout(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
            self.0.control().resume_input();
            self.0.process_buffered(ctx)
        }
    }
}

#[test]
fn paused_input_stays_buffered_unread_and_resumes_in_order() {
    use core::time::Duration;
    use pause::{PChat, Resumer};
    let mut r: Reactor<MockIo, Resumer, 2> = Reactor::new(MockSelector::new());
    let mut s = MockSocket::connected(1);
    s.feed(b"one\ntwo\nthree\n");
    s.set_recv_chunk(9);
    s.feed_eof();
    let t = r
        .add(
            s,
            Resumer(AsyncChat::new(Default::default()).with_terminator(Terminator::LF)),
        )
        .unwrap();
    r.selector_mut().set_ready(1, Readiness::READABLE);
    r.poll_once(None).unwrap();
    let lines = |r: &Reactor<MockIo, Resumer, 2>| -> std::vec::Vec<std::vec::Vec<u8>> {
        r.get(t).map_or_else(std::vec::Vec::new, |c| {
            c.dispatcher
                .0
                .handler
                .lines
                .iter()
                .map(|l| l.to_vec())
                .collect()
        })
    };
    let c = r.get(t).unwrap();
    assert_eq!(
        lines(&r),
        [b"one".to_vec()],
        "paused after the first record"
    );
    assert_eq!(
        c.dispatcher.0.buffered_input(),
        5,
        "`two\\nt` waits in the ring"
    );
    assert!(c.dispatcher.0.chat.input_paused());
    assert!(!<PChat as Dispatcher<MockSocket, Resumer>>::readable(
        &c.dispatcher.0
    ));
    assert_eq!(c.socket.unread(), 5, "`hree\\n` waits in the socket");
    // Paused: no read interest, so nothing more is read however often it polls.
    r.run(Some(Duration::ZERO), Some(3)).unwrap();
    assert_eq!(lines(&r), [b"one".to_vec()]);
    // Resumed from a callback: the buffered record is cut at once, without a read.
    r.set_deadline(t, Some(Duration::ZERO)).unwrap();
    r.poll_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(lines(&r), [b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(r.get(t).unwrap().socket.unread(), 5, "still not read");
    // Resumed again: the ring is empty, so the next read fetches `three`; the EOF
    // behind it is seen only after it.
    r.set_deadline(t, Some(Duration::ZERO)).unwrap();
    r.poll_once(Some(Duration::ZERO)).unwrap();
    r.poll_once(None).unwrap();
    assert_eq!(
        lines(&r),
        [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    assert_eq!(
        r.get(t).unwrap().dispatcher.0.handler.eofs,
        0,
        "no EOF before `three`"
    );
    r.set_deadline(t, Some(Duration::ZERO)).unwrap();
    r.poll_once(Some(Duration::ZERO)).unwrap();
    r.poll_once(None).unwrap();
    assert!(r.get(t).is_none(), "then the EOF, and the channel closes");
}

#[test]
fn bytes_sent_counts_every_drain() {
    let mut chat: Chat = AsyncChat::new(Client::default());
    chat.push(b"abcdef").unwrap();
    let mut s = MockSocket::connected(1);
    s.script_send(SendStep::Accept(2));
    s.script_send(SendStep::WouldBlock);
    assert_eq!(chat.control().flush_to(&mut s), Ok(2));
    assert_eq!(chat.control().bytes_sent(), 2);
    assert_eq!(chat.control().output_len(), 4);
    assert_eq!(chat.control().flush_to(&mut s), Ok(4));
    assert_eq!(chat.control().bytes_sent(), 6);
    assert_eq!(chat.control().output_len(), 0);
}
