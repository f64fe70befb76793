//! The `chat_framing` interpreter: an input stream, the way it is cut into reads, and
//! terminator changes, fed through [`AsyncChat`] on the mock, against a reference
//! parser.
//!
//! The reference ([`Reference`]) is a line-by-line transliteration of the original's
//! `async_chat.handle_read` over one flat buffer: the
//! terminator is re-read on every turn of the loop; a count that runs out becomes no
//! framing before `found_terminator` runs; a byte terminator not found keeps the
//! longest proper prefix of it that ends the buffer; empty data is never collected;
//! at EOF the bytes held back are collected (this crate's fix of the original, which
//! dropped them).
//!
//! After every pass the interpreter checks:
//! * the bytes collected so far and the positions of the `found_terminator` calls
//!   equal the reference's, given the same bytes have arrived;
//! * `collect_incoming_data` was never called with empty data;
//! * the chat holds exactly the bytes the reference holds back, within its input
//!   ring's capacity, and has the same terminator.
//!
//! Terminators change in two ways: from outside between passes
//! ([`Op::Switch`]), and from inside `found_terminator` ([`Op::OnFound`]: on the n-th
//! record, as protocols do when a header announces a body of known length).

use crate::mock::MockIo;
use core::cell::RefCell;

use heapless::Vec;

use super::Input;
use crate::chat::{AsyncChat, ChatControl, ChatHandler, NoProducer, Terminator};
use crate::mock::{MockSelector, MockSocket, RecvStep};
use crate::{Ctx, Error, Reactor, Readiness, SocketError, errno};

/// The chat's input ring: small, so that records wrap around it.
pub const IN: usize = 16;
/// Bytes one input can feed at most.
pub const MAX_STREAM: usize = 1024;
/// `found_terminator` calls one input can produce at most.
pub const MAX_FOUND: usize = MAX_STREAM;
/// Operations decoded from one input at most.
pub const MAX_OPS: usize = 160;
/// Entries of the `found_terminator` script.
pub const SCRIPT: usize = 16;
/// The alphabet of [`Op::FeedSmall`]: frequent terminators.
pub const SMALL: [u8; 4] = [b'a', b'b', b'\r', b'\n'];

const SOURCE: u32 = 1;

type Chat<'a> = AsyncChat<Handler<'a>, NoProducer, IN, 32, 4>;
type R<'a> = Reactor<MockIo, Chat<'a>, 2>;

/// One operation of the `chat_framing` interpreter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// These bytes arrive at the socket (as much as fits).
    Feed {
        /// The bytes.
        data: &'a [u8],
    },
    /// These bytes, each mapped to [`SMALL`]`[b % 4]`, arrive at the socket.
    FeedSmall {
        /// The bytes before mapping.
        data: &'a [u8],
    },
    /// Reads return at most this many bytes from now on (0 counts as 1).
    Chunk {
        /// Bytes per read.
        n: u8,
    },
    /// `n` passes with the socket readable.
    Pass {
        /// 1 to 4.
        n: u8,
    },
    /// The terminator changes from outside, between reads.
    Switch {
        /// The new terminator.
        term: Terminator,
    },
    /// The handler sets `term` in its `nth` `found_terminator` call (counting from 1).
    OnFound {
        /// Which call.
        nth: u8,
        /// The new terminator.
        term: Terminator,
    },
    /// The next read would block.
    WouldBlock,
    /// Once the data is read, the peer finishes (EOF).
    Eof,
    /// The next read fails with `ECONNRESET`.
    Reset,
}

/// Reads a terminator: none, a count (one byte), or one to four bytes, raw or
/// mapped to [`SMALL`].
fn decode_term(i: &mut Input<'_>) -> Option<Terminator> {
    Some(match i.below(4)? {
        0 => Terminator::None,
        1 => Terminator::Count(i.byte()? as usize),
        kind => {
            let len = i.below(4)? as usize + 1;
            let raw = i.take(len)?;
            let mut t = [0u8; 4];
            for (o, &b) in t.iter_mut().zip(raw) {
                *o = if kind == 3 {
                    SMALL[(b % 4) as usize]
                } else {
                    b
                };
            }
            Terminator::bytes(&t[..len]).ok()?
        }
    })
}

fn encode_term(t: Terminator, put: &mut impl FnMut(u8)) {
    match t {
        Terminator::None => put(0),
        Terminator::Count(n) => {
            put(1);
            put(n.min(255) as u8);
        }
        Terminator::Bytes(b) => {
            let s = &b.as_slice()[..b.as_slice().len().min(4)];
            put(2);
            put(s.len() as u8 - 1);
            for &x in s {
                put(x);
            }
        }
    }
}

/// Operation kinds by weight, in the order of [`Op`]'s variants.
const KINDS: [u8; 32] = super::weights(&[5, 7, 3, 8, 3, 3, 1, 1, 1]);

impl<'a> Op<'a> {
    /// Reads one operation; `None` when the input runs out. A feed longer than the
    /// rest of the input takes the rest.
    pub fn decode(i: &mut Input<'a>) -> Option<Self> {
        Some(match i.kind(&KINDS)? {
            0 => {
                let n = i.byte()? as usize;
                Op::Feed {
                    data: i.take_up_to(n),
                }
            }
            1 => {
                let n = i.byte()? as usize;
                Op::FeedSmall {
                    data: i.take_up_to(n),
                }
            }
            2 => Op::Chunk { n: i.byte()? },
            3 => Op::Pass { n: i.below(4)? + 1 },
            4 => Op::Switch {
                term: decode_term(i)?,
            },
            5 => Op::OnFound {
                nth: i.byte()?,
                term: decode_term(i)?,
            },
            6 => Op::WouldBlock,
            7 => Op::Eof,
            _ => Op::Reset,
        })
    }

    /// Writes the bytes [`decode`](Self::decode) reads back as this operation (feeds
    /// of more than 255 bytes are cut).
    pub fn encode(&self, put: impl FnMut(u8)) {
        let mut put = super::with_kind(&KINDS, put);
        let put = &mut put;
        match *self {
            Op::Feed { data } | Op::FeedSmall { data } => {
                put(if matches!(self, Op::Feed { .. }) {
                    0
                } else {
                    1
                });
                let data = &data[..data.len().min(255)];
                put(data.len() as u8);
                data.iter().for_each(|&b| put(b));
            }
            Op::Chunk { n } => {
                put(2);
                put(n);
            }
            Op::Pass { n } => {
                put(3);
                put(n.clamp(1, 4) - 1);
            }
            Op::Switch { term } => {
                put(4);
                encode_term(term, put);
            }
            Op::OnFound { nth, term } => {
                put(5);
                put(nth);
                encode_term(term, put);
            }
            Op::WouldBlock => put(6),
            Op::Eof => put(7),
            Op::Reset => put(8),
        }
    }
}

/// The operations `data` stands for, as the interpreter reads them.
pub fn ops(data: &[u8]) -> impl Iterator<Item = Op<'_>> + '_ {
    let mut input = Input::new(data);
    core::iter::from_fn(move || Op::decode(&mut input)).take(MAX_OPS)
}

/// The first difference from the reference, or a broken invariant.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The collected bytes differ from the reference's at this position (or one has
    /// more than the other).
    Data {
        /// The first differing position.
        at: usize,
        /// Bytes collected.
        actual: usize,
        /// Bytes the reference collected.
        expected: usize,
    },
    /// `found_terminator` ran at other positions (or a different number of times).
    Records {
        /// The first differing call, from 0.
        index: usize,
        /// Calls made.
        actual: usize,
        /// Calls the reference made.
        expected: usize,
    },
    /// `collect_incoming_data` was called with empty data.
    EmptyCollect,
    /// The chat holds back other bytes than the reference.
    Buffered {
        /// Bytes the chat holds.
        actual: usize,
        /// Bytes the reference holds.
        expected: usize,
    },
    /// The input ring holds more than its capacity.
    RingOverflow,
    /// The chat's terminator differs from the reference's.
    Terminator,
    /// The channel closed without EOF or reset.
    UnexpectedClose,
    /// A pass failed.
    Loop,
}

/// What a run did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Operations decoded and run.
    pub ops: usize,
    /// Bytes that arrived at the chat.
    pub arrived: usize,
    /// `found_terminator` calls.
    pub records: usize,
    /// `collect_incoming_data` calls.
    pub collects: usize,
    /// Whether the stream ended (EOF or reset).
    pub ended: bool,
}

/// What the chat's handler saw.
#[derive(Debug)]
struct Log {
    collected: Vec<u8, MAX_STREAM>,
    records: Vec<u16, MAX_FOUND>,
    collects: usize,
    empty_collects: usize,
    script: Vec<(u8, Terminator), SCRIPT>,
    /// Bytes still unread in the socket when the connection ended.
    ended: Option<usize>,
}

impl Log {
    const fn new() -> Self {
        Log {
            collected: Vec::new(),
            records: Vec::new(),
            collects: 0,
            empty_collects: 0,
            script: Vec::new(),
            ended: None,
        }
    }

    /// The terminator the script sets in `found_terminator` call `n` (from 1).
    fn scripted(&self, n: usize) -> Option<Terminator> {
        self.script
            .iter()
            .rev()
            .find(|(k, _)| *k as usize == n)
            .map(|(_, t)| *t)
    }
}

/// The chat's handler: logs what it is given and follows the script.
struct Handler<'a> {
    log: &'a RefCell<Log>,
}

impl<M> ChatHandler<MockSocket, M> for Handler<'_> {
    type Producer = NoProducer;

    fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error> {
        let mut log = self.log.borrow_mut();
        log.collects += 1;
        if data.is_empty() {
            log.empty_collects += 1;
        }
        // Cannot overflow: no more than MAX_STREAM bytes are ever fed.
        let _ = log.collected.extend_from_slice(data);
        Ok(())
    }

    fn found_terminator<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<NoProducer, OUT, Q>,
        _ctx: &mut Ctx<'_, MockSocket, M>,
    ) -> Result<(), Error> {
        let mut log = self.log.borrow_mut();
        let at = log.collected.len() as u16;
        let _ = log.records.push(at);
        if let Some(t) = log.scripted(log.records.len()) {
            chat.set_terminator(t);
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, MockSocket, M>) {
        let unread = ctx.socket().unread();
        self.log.borrow_mut().ended = Some(unread);
    }
}

/// The original's `handle_read` over one flat buffer.
#[derive(Debug)]
pub struct Reference {
    buffer: Vec<u8, MAX_STREAM>,
    terminator: Terminator,
    collected: Vec<u8, MAX_STREAM>,
    records: Vec<u16, MAX_FOUND>,
}

impl Default for Reference {
    fn default() -> Self {
        Self::new()
    }
}

impl Reference {
    /// No data, no framing.
    pub const fn new() -> Self {
        Reference {
            buffer: Vec::new(),
            terminator: Terminator::None,
            collected: Vec::new(),
            records: Vec::new(),
        }
    }

    /// `set_terminator`: takes effect at the next arrival.
    pub fn set_terminator(&mut self, t: Terminator) {
        self.terminator = t;
    }

    /// Everything collected so far.
    pub fn collected(&self) -> &[u8] {
        &self.collected
    }

    /// The position in [`collected`](Self::collected) of each `found_terminator`.
    pub fn records(&self) -> &[u16] {
        &self.records
    }

    /// Bytes held back.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    fn collect(&mut self, n: usize) {
        if n > 0 {
            let _ = self.collected.extend_from_slice(&self.buffer[..n]);
        }
        drop_front(&mut self.buffer, n);
    }

    /// Data arrived (one `recv`): the original's loop. `on_found(k)` is the terminator
    /// the handler sets in the `k`-th `found_terminator` call, if any.
    pub fn arrive(&mut self, data: &[u8], on_found: impl Fn(usize) -> Option<Terminator>) {
        if data.is_empty() {
            return;
        }
        let _ = self.buffer.extend_from_slice(data);
        while !self.buffer.is_empty() {
            let lb = self.buffer.len();
            match self.terminator {
                Terminator::None | Terminator::Count(0) => self.collect(lb),
                Terminator::Count(n) if lb < n => {
                    self.collect(lb);
                    self.terminator = Terminator::Count(n - lb);
                }
                Terminator::Count(n) => {
                    self.collect(n);
                    self.terminator = Terminator::None;
                    self.found(&on_found);
                }
                Terminator::Bytes(t) => {
                    let t = t.as_slice();
                    match self.buffer.windows(t.len()).position(|w| w == t) {
                        Some(i) => {
                            self.collect(i);
                            drop_front(&mut self.buffer, t.len());
                            self.found(&on_found);
                        }
                        None => {
                            // The longest proper prefix of t that ends the buffer.
                            let k = (1..t.len())
                                .rev()
                                .find(|&l| self.buffer.ends_with(&t[..l]))
                                .unwrap_or(0);
                            if k > 0 {
                                self.collect(lb - k);
                                break;
                            }
                            self.collect(lb);
                        }
                    }
                }
            }
        }
    }

    fn found(&mut self, on_found: &impl Fn(usize) -> Option<Terminator>) {
        let _ = self.records.push(self.collected.len() as u16);
        if let Some(t) = on_found(self.records.len()) {
            self.terminator = t;
        }
    }

    /// The peer finished: what is held back is collected.
    pub fn end(&mut self) {
        let n = self.buffer.len();
        self.collect(n);
    }
}

fn drop_front<const N: usize>(v: &mut Vec<u8, N>, n: usize) {
    let n = n.min(v.len());
    v.copy_within(n.., 0);
    v.truncate(v.len() - n);
}

/// Runs the operations `data` stands for (see [`ops`]), comparing with the
/// [`Reference`] after every pass.
///
/// # Errors
/// The first difference or broken invariant.
pub fn run(data: &[u8]) -> Result<Report, Failure> {
    let log = RefCell::new(Log::new());
    let mut r: R<'_> = Reactor::new(MockSelector::new());
    let token = r
        .add(
            MockSocket::connected(SOURCE),
            AsyncChat::new(Handler { log: &log }),
        )
        .map_err(|_| Failure::Loop)?;
    let mut reference = Reference::new();
    let mut fed: Vec<u8, MAX_STREAM> = Vec::new();
    // Bytes of `fed` the reference has been given.
    let mut given = 0usize;
    let mut ended = false;
    let mut count = 0;

    for op in ops(data) {
        count += 1;
        let Some(c) = r.get_mut(token) else {
            continue;
        };
        match op {
            Op::Feed { data } | Op::FeedSmall { data } => {
                let small = matches!(op, Op::FeedSmall { .. });
                for &b in data {
                    let b = if small { SMALL[(b % 4) as usize] } else { b };
                    if fed.is_full() || c.socket.feed(&[b]) == 0 {
                        break;
                    }
                    let _ = fed.push(b);
                }
            }
            Op::Chunk { n } => c.socket.set_recv_chunk(n as usize),
            Op::Switch { term } => {
                c.dispatcher.set_terminator(term);
                reference.set_terminator(term);
            }
            Op::OnFound { nth, term } => {
                let mut log = log.borrow_mut();
                if log.script.is_full() {
                    log.script.remove(0);
                }
                let _ = log.script.push((nth, term));
            }
            Op::WouldBlock => {
                c.socket.script_recv(RecvStep::WouldBlock);
            }
            Op::Eof => c.socket.feed_eof(),
            Op::Reset => {
                c.socket
                    .script_recv(RecvStep::Fail(SocketError::from_errno(errno::ECONNRESET)));
            }
            Op::Pass { n } => {
                for _ in 0..n {
                    r.selector_mut().set_ready(SOURCE, Readiness::READABLE);
                    r.poll_once(Some(core::time::Duration::ZERO))
                        .map_err(|_| Failure::Loop)?;
                    // What arrived at the chat: fed, minus what the socket still holds.
                    let unread = match r.get(token) {
                        Some(c) => c.socket.unread(),
                        None => log.borrow().ended.ok_or(Failure::UnexpectedClose)?,
                    };
                    let arrived = fed.len() - unread;
                    {
                        let log = log.borrow();
                        reference.arrive(&fed[given..arrived], |k| log.scripted(k));
                    }
                    given = arrived;
                    if r.get(token).is_none() && !ended {
                        ended = true;
                        reference.end();
                    }
                    compare(&r, token, &log.borrow(), &reference)?;
                    if ended {
                        break;
                    }
                }
            }
        }
    }
    let log = log.borrow();
    Ok(Report {
        ops: count,
        arrived: given,
        records: log.records.len(),
        collects: log.collects,
        ended,
    })
}

fn compare(
    r: &R<'_>,
    token: crate::Token,
    log: &Log,
    reference: &Reference,
) -> Result<(), Failure> {
    if log.empty_collects > 0 {
        return Err(Failure::EmptyCollect);
    }
    let (a, e) = (&log.collected[..], reference.collected());
    if a != e {
        let at = a.iter().zip(e).take_while(|(x, y)| x == y).count();
        return Err(Failure::Data {
            at,
            actual: a.len(),
            expected: e.len(),
        });
    }
    let (a, e) = (&log.records[..], reference.records());
    if a != e {
        let index = a.iter().zip(e).take_while(|(x, y)| x == y).count();
        return Err(Failure::Records {
            index,
            actual: a.len(),
            expected: e.len(),
        });
    }
    if let Some(c) = r.get(token) {
        let held = c.dispatcher.buffered_input();
        if held > IN {
            return Err(Failure::RingOverflow);
        }
        if held != reference.buffered() {
            return Err(Failure::Buffered {
                actual: held,
                expected: reference.buffered(),
            });
        }
        if c.dispatcher.terminator() != reference.terminator {
            return Err(Failure::Terminator);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(ops: &[Op<'_>]) -> std::vec::Vec<u8> {
        crate::sim::fuzz::script::encoded(ops, |op, put| op.encode(put))
    }

    #[test]
    fn reference_matches_the_worked_examples() {
        // The original: with \r\n, "ab\r" collects "ab" and keeps "\r"; "\ncd\r\nef" then
        // finds twice and collects "cd", "ef".
        let mut r = Reference::new();
        r.set_terminator(Terminator::CRLF);
        r.arrive(b"ab\r", |_| None);
        assert_eq!((r.collected(), r.buffered()), (&b"ab"[..], 1));
        r.arrive(b"\ncd\r\nef", |_| None);
        assert_eq!(r.collected(), b"abcdef");
        assert_eq!(r.records(), [2, 4]);
        // With aab: "xaa" collects "x" and keeps "aa"; "ab" collects "a" and finds.
        let mut r = Reference::new();
        r.set_terminator(Terminator::bytes(b"aab").unwrap());
        r.arrive(b"xaa", |_| None);
        assert_eq!((r.collected(), r.buffered()), (&b"x"[..], 2));
        r.arrive(b"ab", |_| None);
        assert_eq!((r.collected(), r.records()), (&b"xa"[..], &[2u16][..]));
        // With 5: "123" then "4567": found once after "12345", then no framing.
        let mut r = Reference::new();
        r.set_terminator(Terminator::Count(5));
        r.arrive(b"123", |_| None);
        r.arrive(b"4567", |_| None);
        assert_eq!((r.collected(), r.records()), (&b"1234567"[..], &[5u16][..]));
    }

    #[test]
    fn ops_round_trip() {
        let ops = [
            Op::Switch {
                term: Terminator::CRLF,
            },
            Op::Feed { data: b"hello\r\n" },
            Op::Chunk { n: 3 },
            Op::OnFound {
                nth: 1,
                term: Terminator::Count(4),
            },
            Op::Pass { n: 2 },
            Op::Eof,
        ];
        let bytes = encode(&ops);
        let back: std::vec::Vec<Op<'_>> = super::ops(&bytes).collect();
        assert_eq!(back, ops);
    }

    #[test]
    fn lines_then_a_counted_body() {
        let ops = [
            Op::Switch {
                term: Terminator::CRLF,
            },
            Op::OnFound {
                nth: 1,
                term: Terminator::Count(5),
            },
            Op::OnFound {
                nth: 2,
                term: Terminator::CRLF,
            },
            Op::Chunk { n: 3 },
            Op::Feed {
                data: b"LEN 5\r\nhello\r\nbye\r",
            },
            Op::Pass { n: 4 },
            Op::Feed { data: b"\nrest" },
            Op::Eof,
            Op::Pass { n: 4 },
        ];
        let report = run(&encode(&ops)).unwrap();
        assert_eq!(report.records, 4, "LEN 5 | hello | (empty) | bye");
        assert!(report.ended);
    }
}
