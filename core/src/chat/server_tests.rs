//! The chat server on the mock: nicks, broadcast to the others only, over-long lines,
//! `/quit`, the connection limit and the slow-client policy.

use crate::With;
use crate::sim::SimIo;
use core::cell::RefCell;
use std::string::{String as StdString, ToString};
use std::vec::Vec as StdVec;

use super::*;
use crate::mock::{MockSelector, MockSocket, SendStep, SocketProbe};
use crate::{Events, Interest, Reactor, Readiness, Selector, SourceError, Token};

/// A small output ring: two of the longest messages fit, a third does not.
const OUT: usize = 600;
type Srv = ChatServer<MockSocket, OUT>;
type R<Sel = MockSelector> = Reactor<With<Sel, MockSocket>, Srv, 8>;

/// The mock selector without its clock: no deadlines, as on a selector without one.
#[derive(Debug, Default)]
struct NoClock(MockSelector);

impl Selector for NoClock {
    type Source = u32;
    type Error = <MockSelector as Selector>::Error;
    fn register(
        &mut self,
        token: Token,
        source: u32,
        interest: Interest,
    ) -> Result<(), SourceError> {
        self.0.register(token, source, interest)
    }
    fn reregister(
        &mut self,
        token: Token,
        source: u32,
        was: Interest,
        interest: Interest,
    ) -> Result<(), SourceError> {
        self.0.reregister(token, source, was, interest)
    }
    fn deregister(&mut self, token: Token, source: u32, was: Interest) {
        self.0.deregister(token, source, was);
    }
    fn select(
        &mut self,
        events: &mut Events<'_>,
        timeout: Option<core::time::Duration>,
    ) -> Result<usize, Self::Error> {
        self.0.select(events, timeout)
    }
}

trait Mock: Selector<Source = u32> + Default {
    fn mock(&mut self) -> &mut MockSelector;
}

impl Mock for MockSelector {
    fn mock(&mut self) -> &mut MockSelector {
        self
    }
}

impl Mock for NoClock {
    fn mock(&mut self) -> &mut MockSelector {
        &mut self.0
    }
}

const LISTENER: u32 = 1;

std::thread_local! {
    static LEFT: RefCell<StdVec<(StdString, Leave)>> = const { RefCell::new(StdVec::new()) };
    static REFUSED: RefCell<StdVec<(StdVec<u8>, bool, Refusal)>> =
        const { RefCell::new(StdVec::new()) };
}

fn record_left(_: Token, nick: &str, why: Leave) {
    LEFT.with(|l| l.borrow_mut().push((nick.to_string(), why)));
}

fn record_refused(s: &MockSocket, why: Refusal) {
    REFUSED.with(|r| {
        r.borrow_mut()
            .push((s.sent().to_vec(), s.is_write_shut(), why));
    });
}

fn left() -> StdVec<(StdString, Leave)> {
    LEFT.with(|l| l.borrow().clone())
}

struct Chat<Sel: Mock = MockSelector> {
    r: R<Sel>,
    listener: Token,
}

impl Chat {
    fn new(max_conns: usize) -> Self {
        Self::with_selector(max_conns)
    }
}

impl<Sel: Mock> Chat<Sel> {
    fn with_selector(max_conns: usize) -> Self {
        Self::with_listener(ChatListener::new(max_conns))
    }

    /// A chat server around `listener`, with the recording hooks.
    fn with_listener(listener: ChatListener<MockSocket>) -> Self {
        let mut r: R<Sel> = Reactor::new(Sel::default());
        let hooks = ListenerHooks {
            accepted: |_, _| {},
            refused: record_refused,
        };
        let listener = listener.with_hooks(hooks).with_left_hook(record_left);
        let listener = r
            .add(MockSocket::listener(LISTENER), Srv::Listener(listener))
            .unwrap();
        Chat { r, listener }
    }

    fn listener(&self) -> &ChatListener<MockSocket> {
        self.r
            .get(self.listener)
            .unwrap()
            .dispatcher
            .as_listener()
            .unwrap()
    }

    /// Connects a client whose socket is `id`; it is then ready to read and write.
    fn connect(&mut self, id: u32) -> Option<Token> {
        self.r
            .get_mut(self.listener)
            .unwrap()
            .socket
            .push_pending(Ok(id));
        self.sel().set_once(LISTENER, Readiness::READABLE);
        self.r.poll_once(None).unwrap();
        let t = self
            .r
            .map()
            .iter()
            .find(|c| c.socket.id() == id)
            .map(|c| c.token)?;
        self.sel()
            .set_ready(id, Readiness::READABLE | Readiness::WRITABLE);
        self.settle();
        Some(t)
    }

    fn sel(&mut self) -> &mut MockSelector {
        self.r.selector_mut().mock()
    }

    fn settle(&mut self) {
        self.r.run(None, Some(4)).unwrap();
    }

    /// `data` arrives from the client `t`.
    fn say(&mut self, t: Token, data: &[u8]) {
        let fed = self.r.get_mut(t).unwrap().socket.feed(data);
        assert_eq!(fed, data.len(), "the mock socket holds it all");
        self.settle();
    }

    fn user(&self, t: Token) -> &ChatUser {
        self.r.get(t).unwrap().dispatcher.user().unwrap()
    }

    /// Everything client `t` was sent, plus what is still queued for it.
    fn got(&self, t: Token) -> StdString {
        let c = self.r.get(t).unwrap();
        let mut all = c.socket.sent().to_vec();
        let (a, b) = c.dispatcher.as_conn().unwrap().chat.out.as_slices();
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        StdString::from_utf8(all).unwrap()
    }

    fn lines(&self, t: Token) -> StdVec<StdString> {
        self.got(t).lines().map(str::to_string).collect()
    }
}

#[test]
fn welcome_and_join_notices_with_default_nicks() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    assert_eq!(c.user(a).nick(), "guest1", "the listener holds slot 0");
    assert_eq!(c.user(b).nick(), "guest2");
    assert_eq!(c.lines(a), ["* welcome guest1", "* guest2 joined"]);
    assert_eq!(c.lines(b), ["* welcome guest2"]);
    assert_eq!(c.listener().accepted(), 2);
}

#[test]
fn nick_is_validated_unique_and_announced() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    c.say(a, b"/nick alice\n");
    assert_eq!(c.user(a).nick(), "alice");
    assert_eq!(c.lines(a)[2..], ["* you are now alice"]);
    assert_eq!(c.lines(b)[1..], ["* guest1 is now alice"]);

    let sixteen = [b'x'; MAX_NICK];
    let mut ok = b"/nick ".to_vec();
    ok.extend_from_slice(&sixteen);
    ok.push(b'\n');
    let mut too_long = b"/nick y".to_vec();
    too_long.extend_from_slice(&sixteen);
    too_long.push(b'\n');
    for bad in [
        &b"/nick\n"[..],
        b"/nick   \n",
        b"/nick two words\n",
        &too_long,
        "/nick café\n".as_bytes(),
        b"/nick tab\there\n",
    ] {
        c.say(b, bad);
        assert_eq!(
            c.lines(b).last().unwrap(),
            "* invalid nick",
            "{:?}",
            StdString::from_utf8_lossy(bad)
        );
        assert_eq!(c.user(b).nick(), "guest2");
    }
    c.say(b, b"/nick alice\n");
    assert_eq!(c.lines(b).last().unwrap(), "* nick in use");
    c.say(b, b"/nick guest7\n");
    assert_eq!(c.lines(b).last().unwrap(), "* nick reserved");
    assert_eq!(c.user(b).nick(), "guest2");
    // Surrounding spaces and a \r\n line end are not part of the nick; 16 is fine.
    c.say(b, b"/nick   bob  \r\n");
    assert_eq!(c.user(b).nick(), "bob");
    c.say(b, &ok);
    assert_eq!(c.user(b).nick(), "x".repeat(MAX_NICK));
    assert_eq!(
        c.lines(a).last().unwrap(),
        &std::format!("* bob is now {}", "x".repeat(MAX_NICK))
    );
    // Taking one's own nick again is not "in use", and tells nobody.
    let before = c.lines(a).len();
    let nb = c.lines(b).len();
    c.say(a, b"/nick alice\n");
    assert_eq!(c.lines(a).last().unwrap(), "* you are now alice");
    assert_eq!(c.lines(b).len(), nb, "no notice for a no-op rename");
    assert_eq!(c.lines(a).len(), before + 1);
}

#[test]
fn lines_are_broadcast_to_the_others_only() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    let d = c.connect(12).unwrap();
    c.say(a, b"/nick alice\n");
    let (na, nb, nd) = (c.lines(a).len(), c.lines(b).len(), c.lines(d).len());
    c.say(a, b"hello\n");
    c.say(a, b"over \r\n");
    c.say(a, b"\n");
    c.say(a, b"\r\n");
    assert_eq!(c.lines(b)[nb..], ["alice: hello", "alice: over "]);
    assert_eq!(c.lines(d)[nd..], ["alice: hello", "alice: over "]);
    assert_eq!(c.lines(a).len(), na, "the sender gets nothing back");
    assert_eq!(c.user(a).said(), 2, "empty lines are not said");
    c.say(a, b"/ping\n");
    assert_eq!(c.lines(a)[na..], ["* pong"]);
    c.say(a, b"/frobnicate now\n");
    assert_eq!(c.lines(a).last().unwrap(), "* unknown command");
    assert_eq!(c.lines(b).len(), nb + 2, "commands are not broadcast");
}

#[test]
fn a_line_split_across_reads_is_one_message() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    c.r.get_mut(a).unwrap().socket.set_recv_chunk(1);
    c.r.get_mut(a).unwrap().socket.feed(b"one\r\ntwo\n");
    c.r.run(None, Some(20)).unwrap();
    assert_eq!(c.lines(b)[1..], ["guest1: one", "guest1: two"]);
}

#[test]
fn over_long_line_gets_an_error_and_nothing_else_happens() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    let nb = c.lines(b).len();
    c.r.get_mut(a).unwrap().socket.set_recv_chunk(7);
    let mut long = StdVec::new();
    long.extend_from_slice(&[b'x'; 300]);
    long.extend_from_slice(b"\nafter\n");
    c.say(a, &long);
    c.r.run(None, Some(80)).unwrap();
    assert!(c.r.get(a).is_some(), "still connected");
    assert_eq!(c.lines(a)[2..], ["* line too long"], "one error line");
    assert_eq!(c.user(a).overlong(), 1);
    assert_eq!(
        c.lines(b)[nb..],
        ["guest1: after"],
        "no part of the long line"
    );

    // Exactly MAX_LINE bytes is fine, with or without \r; one more is too long.
    let mut max = std::vec![b'y'; MAX_LINE];
    max.push(b'\n');
    c.say(a, &max);
    let mut max_crlf = std::vec![b'z'; MAX_LINE];
    max_crlf.extend_from_slice(b"\r\n");
    c.say(a, &max_crlf);
    let mut over = std::vec![b'w'; MAX_LINE + 1];
    over.push(b'\n');
    c.say(a, &over);
    let mut over_crlf = std::vec![b'v'; MAX_LINE + 1];
    over_crlf.extend_from_slice(b"\r\n");
    c.say(a, &over_crlf);
    c.r.run(None, Some(40)).unwrap();
    let lb = c.lines(b);
    assert_eq!(lb.len(), nb + 3);
    assert_eq!(lb[nb + 1], std::format!("guest1: {}", "y".repeat(MAX_LINE)));
    assert_eq!(lb[nb + 2], std::format!("guest1: {}", "z".repeat(MAX_LINE)));
    assert_eq!(
        c.lines(a)[2..],
        ["* line too long", "* line too long", "* line too long"]
    );
    assert_eq!(c.user(a).overlong(), 3);
}

#[test]
fn quit_says_bye_closes_when_sent_and_tells_the_others() {
    static PROBE: SocketProbe = SocketProbe::new();
    let mut c = Chat::new(4);
    c.r.get_mut(c.listener)
        .unwrap()
        .socket
        .set_accept_probe(&PROBE);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    c.say(a, b"/nick alice\n");
    let nb = c.lines(b).len();
    // The bye waits for the socket: the channel stays until it is sent.
    c.r.get_mut(a)
        .unwrap()
        .socket
        .script_send(SendStep::WouldBlock);
    c.r.get_mut(a)
        .unwrap()
        .socket
        .feed(b"/quit\nnot said\n/nick zed\n");
    c.r.poll_once(None).unwrap();
    assert!(c.user(a).is_quitting());
    assert!(c.got(a).ends_with("* bye\n"));
    assert_eq!(c.lines(b).len(), nb, "not gone until the bye is out");
    c.settle();
    assert!(c.r.get(a).is_none(), "closed once the bye was sent");
    assert_eq!(PROBE.close_calls(), 1);
    assert_eq!(
        c.lines(b)[nb..],
        ["* alice left"],
        "nothing after /quit was said"
    );
    assert_eq!(left(), [("alice".to_string(), Leave::Quit)]);
}

#[test]
fn hang_up_and_half_close_are_leaving() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    let d = c.connect(12).unwrap();
    let nd = c.lines(d).len();
    // Half-close after a last line: the line goes out, then the user has left.
    c.r.get_mut(a).unwrap().socket.feed(b"last words\n");
    c.r.get_mut(a).unwrap().socket.feed_eof();
    c.settle();
    assert!(c.r.get(a).is_none());
    c.r.get_mut(b).unwrap().socket.feed_eof();
    c.settle();
    assert!(c.r.get(b).is_none());
    assert_eq!(
        c.lines(d)[nd..],
        ["guest1: last words", "* guest1 left", "* guest2 left"]
    );
    assert_eq!(
        left(),
        [
            ("guest1".to_string(), Leave::Closed),
            ("guest2".to_string(), Leave::Closed)
        ]
    );
}

#[test]
fn a_connection_the_selector_cannot_watch_is_refused_with_that_reason() {
    let mut c = Chat::new(4);
    // Sources from 20 on are beyond the selector, as fds >= FD_SETSIZE for select(2).
    c.sel().set_source_limit(20);
    let a = c.connect(10).unwrap();
    assert!(c.connect(20).is_none(), "refused");
    assert_eq!(
        REFUSED.with(|r| r.borrow().clone()),
        [(
            b"* server full\n".to_vec(),
            true,
            Refusal::Rejected(SourceError::OutOfRange { limit: 20 })
        )],
    );
    assert_eq!((c.listener().accepted(), c.listener().refused()), (1, 1));
    assert_eq!(c.lines(a), ["* welcome guest1"], "nobody heard of it");
    assert!(c.connect(11).is_some(), "a watchable one is served");
}

#[test]
fn extra_connections_get_an_error_line_and_are_closed_while_others_are_served() {
    static PROBE: SocketProbe = SocketProbe::new();
    let mut c = Chat::new(2);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    c.r.get_mut(c.listener)
        .unwrap()
        .socket
        .set_accept_probe(&PROBE);
    assert!(c.connect(12).is_none(), "refused");
    assert_eq!(PROBE.close_calls(), 1);
    assert_eq!(
        REFUSED.with(|r| r.borrow().clone()),
        [(b"* server full\n".to_vec(), true, Refusal::Full)],
        "an error line, then the sending side shut before the close"
    );
    assert_eq!((c.listener().accepted(), c.listener().refused()), (2, 1));
    assert_eq!(c.r.len(), 3);
    c.say(a, b"still here\n");
    assert_eq!(c.lines(b).last().unwrap(), "guest1: still here");
    assert!(
        !c.lines(a)
            .iter()
            .chain(c.lines(b).iter())
            .any(|l| l.contains("guest3")),
        "nobody heard of the refused one"
    );

    // The limit is on live connections: once one leaves, a new one is served.
    c.r.get_mut(a).unwrap().socket.feed_eof();
    c.settle();
    let d = c.connect(13).expect("served after a slot freed");
    assert_eq!(c.lines(d), ["* welcome guest1"]);
    assert_eq!(
        c.lines(b)[c.lines(b).len() - 2..],
        ["* guest1 left", "* guest1 joined"]
    );

    // A live change of the limit applies to the next accept.
    c.r.get_mut(c.listener)
        .unwrap()
        .dispatcher
        .as_listener_mut()
        .unwrap()
        .set_max_conns(3);
    assert!(c.connect(14).is_some());
}

/// Three 200-byte lines from `alice` while `slowpoke` reads nothing: the third does not
/// fit in its ring. Returns the tokens (alice, slowpoke, another), the lines, and how
/// many lines the other had before.
fn slow_client_setup<Sel: Mock>(
    c: &mut Chat<Sel>,
) -> (Token, Token, Token, StdVec<StdString>, usize) {
    let a = c.connect(10).unwrap();
    let slow = c.connect(11).unwrap();
    let d = c.connect(12).unwrap();
    c.say(a, b"/nick alice\n");
    c.say(slow, b"/nick slowpoke\n");
    // The slow client stops reading: its socket is never writable again (and it has
    // nothing to say, so it is never readable either), and takes nothing more.
    c.sel().clear(11);
    for _ in 0..16 {
        c.r.get_mut(slow)
            .unwrap()
            .socket
            .script_send(SendStep::WouldBlock);
    }
    let nd = c.lines(d).len();
    let mut lines = StdVec::new();
    for i in 0..3u8 {
        let mut l = std::vec![b'm'; 200];
        l[0] = b'0' + i;
        lines.push(StdString::from_utf8(l.clone()).unwrap());
        l.push(b'\n');
        c.r.get_mut(a).unwrap().socket.feed(&l);
        // One pass: alice's line is read and broadcast.
        c.r.poll_once(None).unwrap();
    }
    (a, slow, d, lines, nd)
}

fn slow_client_is_gone<Sel: Mock>(
    c: &mut Chat<Sel>,
    (a, slow, d, lines, nd): (Token, Token, Token, StdVec<StdString>, usize),
) {
    c.settle();
    assert!(c.r.get(slow).is_none());
    // Everybody else got every line, then the notice.
    let mut want: StdVec<StdString> = lines.iter().map(|l| std::format!("alice: {l}")).collect();
    want.push("* slowpoke left (too slow)".to_string());
    assert_eq!(c.lines(d)[nd..], want[..]);
    assert_eq!(c.lines(a).last().unwrap(), "* slowpoke left (too slow)");
    assert_eq!(left(), [("slowpoke".to_string(), Leave::TooSlow)]);
    // The writer and the others go on.
    c.say(a, b"still on\n");
    assert_eq!(c.lines(d).last().unwrap(), "alice: still on");
    assert!(c.r.get(a).is_some() && c.r.get(d).is_some());
}

#[test]
fn a_slow_client_is_disconnected_and_nobody_else_is_affected() {
    let mut c = Chat::new(4);
    let setup = slow_client_setup(&mut c);
    // With a clock, a deadline of "now" closes it at once, though its socket never
    // turned writable.
    assert!(c.r.get(setup.1).is_none(), "closed in the evicting pass");
    slow_client_is_gone(&mut c, setup);
}

#[test]
fn without_a_clock_the_slow_client_closes_when_its_shut_socket_turns_writable() {
    let mut c: Chat<NoClock> = Chat::with_selector(4);
    let setup = slow_client_setup(&mut c);
    let slow = setup.1;
    c.settle();
    // Two lines fit in its 600-byte ring; the third does not: evicted, not dropped.
    let s =
        c.r.get(slow)
            .expect("no deadline: it waits for write readiness");
    assert!(s.dispatcher.user().unwrap().is_evicted());
    assert!(s.socket.is_write_shut(), "its sending side is shut down");
    assert!(
        !StdString::from_utf8_lossy(s.socket.sent()).contains("alice: "),
        "it got none of the three lines"
    );
    assert!(
        !<Srv as Dispatcher<MockSocket>>::readable(s.dispatcher),
        "read no more"
    );
    assert!(
        <Srv as Dispatcher<MockSocket>>::writable(s.dispatcher),
        "waits to close"
    );
    // A socket whose sending side is shut down reports writable.
    c.sel().set_ready(11, Readiness::WRITABLE);
    slow_client_is_gone(&mut c, setup);
}

#[test]
fn a_full_ring_is_not_slow_while_the_socket_takes_data() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    // No write readiness for b: its ring fills, but its socket still takes data, so a
    // full ring is flushed straight to the socket instead of evicting b.
    c.sel().clear(11);
    let before = c.lines(b).len();
    for i in 0..6u8 {
        let mut l = std::vec![b'0' + i; 200];
        l.push(b'\n');
        c.say(a, &l);
    }
    assert!(!c.user(b).is_evicted());
    let got = c.lines(b);
    assert_eq!(got.len(), before + 6, "every line, none dropped");
    let sent = StdString::from_utf8(c.r.get(b).unwrap().socket.sent().to_vec()).unwrap();
    assert!(
        sent.contains(&std::format!("guest1: {}\n", "0".repeat(200))),
        "the first lines went out without a write readiness"
    );
}

#[test]
fn a_client_that_never_reads_its_own_replies_is_closed_as_too_slow() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    // Readable only: replies go out only from the read handler, until the mock
    // socket's 1 KiB send side is full; then they pile up in the output ring.
    c.sel().set_ready(10, Readiness::READABLE);
    let pings = b"/ping\n".repeat(80);
    for _ in 0..3 {
        if c.r.get(a).is_none() {
            break;
        }
        c.say(a, &pings);
    }
    assert!(
        c.r.get(a).is_none(),
        "closed once its replies no longer fit"
    );
    assert_eq!(c.lines(b).last().unwrap(), "* guest1 left (too slow)");
    assert_eq!(left(), [("guest1".to_string(), Leave::TooSlow)]);
}

#[test]
fn a_socket_error_ends_only_that_user() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    c.r.get_mut(a)
        .unwrap()
        .socket
        .script_recv(crate::mock::RecvStep::Fail(crate::SocketError::from_errno(
            crate::errno::ENOMEM,
        )));
    c.settle();
    assert!(c.r.get(a).is_none());
    assert_eq!(c.lines(b).last().unwrap(), "* guest1 left");
    assert_eq!(left(), [("guest1".to_string(), Leave::Error)]);
}

#[test]
fn a_reset_is_a_leave() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    c.sel().set_ready(10, Readiness::HANGUP);
    c.settle();
    assert!(c.r.get(a).is_none());
    assert_eq!(c.lines(b).last().unwrap(), "* guest1 left");
    assert_eq!(left(), [("guest1".to_string(), Leave::Closed)]);
}

#[test]
fn nick_rules() {
    assert!(valid_nick(b"a"));
    assert!(valid_nick(b"!~{}[]|-_0123456"));
    assert!(!valid_nick(b""));
    assert!(!valid_nick(b"with space"));
    assert!(!valid_nick(&[b'a'; MAX_NICK + 1]));
    assert!(!valid_nick(b"nul\0"));
    assert!(!valid_nick(b"del\x7f"));
    assert!(reserved_nick(b"guest0"));
    assert!(reserved_nick(b"guest123"));
    assert!(!reserved_nick(b"guest"));
    assert!(!reserved_nick(b"guestx1"));
    assert!(!reserved_nick(b"Guest1"));
}

#[test]
fn clean_line_replaces_controls_and_bad_utf8_and_keeps_the_rest() {
    fn clean(line: &[u8]) -> StdVec<u8> {
        clean_line::<RECORD>(line).to_vec()
    }
    assert_eq!(clean(b"plain text"), b"plain text");
    assert_eq!(clean(b"tab\tkept"), b"tab\tkept");
    assert_eq!(clean(b"hi\rbob: forged"), b"hi?bob: forged");
    assert_eq!(clean(b"\x1b[2J\x1b[Hx"), b"?[2J?[Hx");
    assert_eq!(clean(b"\x00\x07\x08\x0b\x0c\x1f\x7f"), b"???????");
    assert_eq!(clean("héllo ✓ 日本".as_bytes()), "héllo ✓ 日本".as_bytes());
    // C1 controls in UTF-8 (U+009B is CSI on some terminals): two bytes, one `?`.
    assert_eq!(clean("a\u{9b}b\u{85}c".as_bytes()), b"a?b?c");
    // Bytes that are not UTF-8: one `?` per maximal bad run, valid text around kept.
    assert_eq!(clean(b"a\xffb\xfe\xfec"), b"a?b??c");
    assert_eq!(clean(b"cut \xe2\x9c"), b"cut ?");
    assert_eq!(clean(b"\x9b"), b"?");
    // Never longer than the input, so a line of RECORD bytes fits.
    let worst = [0xffu8; RECORD];
    assert_eq!(clean(&worst).len(), RECORD);
}

#[test]
fn relayed_lines_have_control_characters_replaced() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    c.say(a, b"/nick mallory\n");
    // A lone CR would return to the start of the line on b's terminal and show
    // "alice: I owe mallory" as alice's line.
    c.say(a, b"hi\ralice: I owe mallory\r\n");
    c.say(a, b"\x1b[31mred\x1b[0m\tand \xc3\xa9t\xc3\xa9 \xff\n");
    c.say(a, b"/ping\x07\n");
    let got = c.lines(b);
    assert_eq!(
        got[got.len() - 2..],
        [
            "mallory: hi?alice: I owe mallory",
            "mallory: ?[31mred?[0m\tand été ?",
        ]
    );
    assert!(
        !c.got(b).contains('\r') && !c.got(b).contains('\x1b'),
        "no control character but tab and the line ends"
    );
    assert_eq!(c.user(a).said(), 2);
    assert_eq!(
        c.lines(a).last().unwrap(),
        "* unknown command",
        "a command with a control character is not a known command"
    );
}

/// A quiet simulated network: the client side sees what the server sent, also after
/// the server closed, and time is virtual.
mod idle {
    use super::*;
    use crate::sim::{SimConfig, SimNet, SimSelector, SimSocket};
    use crate::{Recv, Socket};
    use core::time::Duration;

    const SOCKETS: usize = 8;
    const BUF: usize = 2048;
    type Net = SimNet<SOCKETS, BUF>;
    type Sock<'n> = SimSocket<'n, SOCKETS, BUF>;
    type Server<'n> = Reactor<SimIo<'n, SOCKETS, BUF>, ChatServer<Sock<'n>, OUT>, 8>;

    const PORT: u16 = 7;
    const IDLE: Duration = Duration::from_secs(10);

    /// A client: its socket, everything it received, and whether it saw EOF (and
    /// when, in virtual time).
    struct Client<'n> {
        sock: Sock<'n>,
        got: StdVec<u8>,
        eof_at: Option<Duration>,
    }

    impl<'n> Client<'n> {
        fn new(net: &'n Net) -> Self {
            Client {
                sock: net.connect(PORT).unwrap(),
                got: StdVec::new(),
                eof_at: None,
            }
        }

        fn read(&mut self, net: &Net) {
            let mut buf = [0u8; 256];
            while self.eof_at.is_none() {
                match self.sock.recv(&mut buf) {
                    Ok(Recv::Data(n)) => self.got.extend_from_slice(&buf[..n]),
                    Ok(Recv::Eof) => self.eof_at = Some(net.now()),
                    Ok(Recv::WouldBlock) | Err(_) => break,
                }
            }
        }

        fn say(&mut self, line: &[u8]) {
            assert!(matches!(self.sock.send(line), Ok(crate::Sent::Bytes(n)) if n == line.len()));
        }

        fn lines(&self) -> StdVec<StdString> {
            StdString::from_utf8(self.got.clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    fn server(net: &Net) -> Server<'_> {
        let mut r: Server<'_> = Reactor::new(SimSelector::new(net));
        let listener = ChatListener::new(4)
            .with_left_hook(record_left)
            .with_idle_timeout(IDLE);
        assert_eq!(listener.idle_timeout(), Some(IDLE));
        r.add(net.listen(PORT).unwrap(), ChatServer::Listener(listener))
            .unwrap();
        r
    }

    /// Passes of at most 100 ms of virtual time until `done`; fails after a bound.
    fn run_until(
        r: &mut Server<'_>,
        net: &Net,
        clients: &mut [&mut Client<'_>],
        mut done: impl FnMut(&[&mut Client<'_>]) -> bool,
    ) {
        for _ in 0..10_000 {
            if done(clients) {
                return;
            }
            r.poll_once(Some(Duration::from_millis(100))).unwrap();
            for c in clients.iter_mut() {
                c.read(net);
            }
        }
        panic!("not done after 10,000 passes");
    }

    #[test]
    fn an_idle_client_is_told_and_disconnected_and_the_others_see_it_leave() {
        let net = Net::new(SimConfig::quiet(1));
        let mut r = server(&net);
        let mut a = Client::new(&net);
        let mut b = Client::new(&net);
        run_until(&mut r, &net, &mut [&mut a, &mut b], |c| {
            c.iter().all(|c| !c.lines().is_empty())
        });
        let start = net.now();
        assert_eq!(b.lines(), ["* welcome guest2"]);
        // a says something every 3 s; b says nothing.
        let mut next_ping = start;
        for _ in 0..10_000 {
            if b.eof_at.is_some() {
                break;
            }
            if net.now() >= next_ping {
                a.say(b"/ping\n");
                next_ping += Duration::from_secs(3);
            }
            r.poll_once(Some(Duration::from_millis(100))).unwrap();
            a.read(&net);
            b.read(&net);
        }
        let eof = b.eof_at.expect("the idle client was disconnected");
        assert!(eof >= start + IDLE, "not before the idle timeout: {eof:?}");
        assert_eq!(b.lines(), ["* welcome guest2", "* idle timeout"]);
        // The others hear of it (on a's next write readiness).
        run_until(&mut r, &net, &mut [&mut a], |c| {
            c[0].lines().iter().any(|l| l.ends_with(" left"))
        });
        assert!(a.eof_at.is_none(), "the active client stays");
        let heard: StdVec<StdString> = a.lines().into_iter().filter(|l| l != "* pong").collect();
        assert_eq!(
            heard,
            ["* welcome guest1", "* guest2 joined", "* guest2 left"]
        );
        assert_eq!(left(), [("guest2".to_string(), Leave::Idle)]);
        assert_eq!(r.len(), 2, "the listener and a");

        // Once a falls silent too, it goes the same way.
        let silent = net.now();
        run_until(&mut r, &net, &mut [&mut a], |c| c[0].eof_at.is_some());
        assert!(a.eof_at.unwrap() >= silent + IDLE - Duration::from_secs(3));
        assert_eq!(a.lines().last().unwrap(), "* idle timeout");
        assert_eq!(
            left(),
            [
                ("guest2".to_string(), Leave::Idle),
                ("guest1".to_string(), Leave::Idle)
            ]
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn without_an_idle_timeout_a_silent_client_stays() {
        let net = Net::new(SimConfig::quiet(2));
        let mut r: Server<'_> = Reactor::new(SimSelector::new(&net));
        r.add(net.listen(PORT).unwrap(), ChatServer::listener(4))
            .unwrap();
        let mut a = Client::new(&net);
        run_until(&mut r, &net, &mut [&mut a], |c| !c[0].got.is_empty());
        let start = net.now();
        run_until(&mut r, &net, &mut [&mut a], |_| {
            net.now() >= start + 10 * IDLE
        });
        assert!(a.eof_at.is_none());
        assert_eq!(r.len(), 2);
    }
}

#[test]
fn a_quitting_client_that_does_not_read_is_closed_at_the_idle_deadline() {
    let mut c: Chat = Chat::with_listener(
        ChatListener::new(4).with_idle_timeout(core::time::Duration::from_secs(10)),
    );
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    // b stops reading: nothing it is sent goes out any more.
    c.sel().clear(11);
    for _ in 0..64 {
        c.r.get_mut(b)
            .unwrap()
            .socket
            .script_send(SendStep::WouldBlock);
    }
    c.r.get_mut(b).unwrap().socket.feed(b"/quit\n");
    c.sel().set_once(11, Readiness::READABLE);
    c.r.poll_once(None).unwrap();
    assert!(c.user(b).is_quitting());
    assert!(c.r.get(b).is_some(), "still flushing its `* bye`");
    assert!(left().is_empty());
    c.sel().advance(core::time::Duration::from_secs(11));
    c.r.poll_once(None).unwrap();
    assert!(c.r.get(b).is_none(), "closed at the deadline");
    assert_eq!(left(), [("guest2".to_string(), Leave::Quit)]);
    assert_eq!(c.lines(a).last().unwrap(), "* guest2 left");
}
