//! The chat server on the mock: nicks, broadcast to the others only, over-long lines,
//! `/quit`, the connection limit and the slow-client policy.

use crate::With;
use crate::sim::SimIo;
use core::cell::RefCell;
use std::string::{String as StdString, ToString};
use std::vec::Vec as StdVec;

use super::*;
use crate::mock::{MockSelector, MockSocket, SendStep, SocketProbe};
use crate::{Reactor, Readiness, SourceError, Token};

/// Lines of up to 256 bytes, and the smallest output ring that allows them with
/// room to spare for a few.
const LINE: usize = 256;
const OUT: usize = 1024;
type Srv = ChatServer<MockSocket, OUT, LINE>;
type R = Reactor<With<MockSelector, MockSocket>, Srv, 8>;

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

struct Chat {
    r: R,
    listener: Token,
}

impl Chat {
    fn new(max_conns: usize) -> Self {
        Self::with_listener(ChatListener::new(max_conns))
    }

    /// A chat server around `listener`, with the recording hooks.
    fn with_listener(listener: ChatListener<MockSocket>) -> Self {
        Self::on(MockSelector::new(), listener)
    }

    /// As [`with_listener`](Self::with_listener), over `selector`.
    fn on(selector: MockSelector, listener: ChatListener<MockSocket>) -> Self {
        let mut r: R = Reactor::new(selector);
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
        self.r.selector_mut()
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

    fn user(&self, t: Token) -> &ChatUser<LINE> {
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

    // Exactly LINE bytes is fine, with or without \r; one more is too long.
    let mut max = std::vec![b'y'; LINE];
    max.push(b'\n');
    c.say(a, &max);
    let mut max_crlf = std::vec![b'z'; LINE];
    max_crlf.extend_from_slice(b"\r\n");
    c.say(a, &max_crlf);
    let mut over = std::vec![b'w'; LINE + 1];
    over.push(b'\n');
    c.say(a, &over);
    let mut over_crlf = std::vec![b'v'; LINE + 1];
    over_crlf.extend_from_slice(b"\r\n");
    c.say(a, &over_crlf);
    c.r.run(None, Some(40)).unwrap();
    let lb = c.lines(b);
    assert_eq!(lb.len(), nb + 3);
    assert_eq!(lb[nb + 1], std::format!("guest1: {}", "y".repeat(LINE)));
    assert_eq!(lb[nb + 2], std::format!("guest1: {}", "z".repeat(LINE)));
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
fn a_stop_source_ends_the_loop_and_shut_down_tells_every_user_then_closes_when_sent() {
    use crate::{RunEnd, SourceEvent};
    let mut c = Chat::new(4);
    let stop = c.r.add(MockSocket::source(2), Srv::Stop).unwrap();
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    c.say(a, b"/nick alice\nhello\n");
    assert!(c.lines(b).ends_with(&["alice: hello".to_string()]));
    // An exit is not a stop; a signal is.
    let exit = SourceEvent::Exit {
        pid: 9,
        status: crate::ExitStatus::Code(0),
    };
    assert!(c.r.get_mut(stop).unwrap().socket.raise(exit));
    c.sel().set_once(2, Readiness::READABLE);
    assert_eq!(c.r.run(None, Some(2)).unwrap(), RunEnd::Count);
    assert!(
        c.r.get_mut(stop)
            .unwrap()
            .socket
            .raise(SourceEvent::Signal(15))
    );
    c.sel().set_once(2, Readiness::READABLE);
    assert_eq!(c.r.run(None, Some(10)).unwrap(), RunEnd::Exit);
    assert_eq!(c.r.len(), 4, "exit leaves the channels to the program");

    // What the program does then: every user is told and drained.
    c.r.get_mut(b)
        .unwrap()
        .socket
        .script_send(SendStep::WouldBlock);
    let mut users = 0;
    for ch in c.r.iter_mut() {
        if ch.dispatcher.shut_down() {
            users += 1;
        }
    }
    assert_eq!(users, 2, "the listener and the stop source are not users");
    assert!(c.user(a).is_quitting());
    // Not read any more: this is never said.
    c.r.get_mut(a).unwrap().socket.feed(b"not said\n");
    c.r.poll_once(None).unwrap();
    assert!(
        c.got(b).ends_with("* server shutting down\n"),
        "queued behind what it had: {:?}",
        c.got(b)
    );
    assert!(c.r.get(b).is_some(), "not closed before it is sent");
    c.settle();
    assert!(
        c.r.get(a).is_none() && c.r.get(b).is_none(),
        "closed once sent"
    );
    assert_eq!(c.r.len(), 2, "the listener and the stop source are left");
    assert_eq!(
        left(),
        [
            ("alice".to_string(), Leave::Shutdown),
            ("guest3".to_string(), Leave::Shutdown)
        ]
    );
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

/// Four 200-byte lines from `alice` while `slowpoke` reads nothing: the third does
/// not fit its ring with the notice reserve. Returns the tokens (alice, slowpoke,
/// another), the lines, and how many lines the other had before.
fn slow_client_setup(c: &mut Chat) -> (Token, Token, Token, StdVec<StdString>, usize) {
    let a = c.connect(10).unwrap();
    let slow = c.connect(11).unwrap();
    let d = c.connect(12).unwrap();
    c.say(a, b"/nick alice\n");
    c.say(slow, b"/nick slowpoke\n");
    // The slow client stops reading: its socket is never writable again (and it has
    // nothing to say, so it is never readable either), and takes nothing more.
    c.sel().clear(11);
    for _ in 0..64 {
        c.r.get_mut(slow)
            .unwrap()
            .socket
            .script_send(SendStep::WouldBlock);
    }
    let nd = c.lines(d).len();
    let mut lines = StdVec::new();
    for i in 0..4u8 {
        let mut l = std::vec![b'm'; 200];
        l[0] = b'0' + i;
        lines.push(StdString::from_utf8(l.clone()).unwrap());
        l.push(b'\n');
        c.r.get_mut(a).unwrap().socket.feed(&l);
        // One pass: alice's line is read and broadcast (or held).
        c.r.poll_once(None).unwrap();
    }
    (a, slow, d, lines, nd)
}

/// The slow client is gone; the others got `before` lines, the notice, the rest.
fn slow_client_is_gone(
    c: &mut Chat,
    (a, slow, d, lines, nd): (Token, Token, Token, StdVec<StdString>, usize),
    before: usize,
) {
    c.settle();
    assert!(c.r.get(slow).is_none());
    let mut want: StdVec<StdString> = lines.iter().map(|l| std::format!("alice: {l}")).collect();
    want.insert(before, "* slowpoke left (too slow)".to_string());
    assert_eq!(c.lines(d)[nd..], want[..], "every line, in order");
    assert_eq!(c.lines(a).last().unwrap(), "* slowpoke left (too slow)");
    assert_eq!(left(), [("slowpoke".to_string(), Leave::TooSlow)]);
    assert!(!c.user(a).is_waiting() && !c.user(d).is_blocking());
    // The writer and the others go on.
    c.say(a, b"still on\n");
    assert_eq!(c.lines(d).last().unwrap(), "alice: still on");
    assert!(c.r.get(a).is_some() && c.r.get(d).is_some());
}

#[test]
fn without_a_clock_a_receiver_without_room_is_disconnected_at_once() {
    // The mock without its clock: no deadlines, as on a selector without one.
    let mut c = Chat::on(MockSelector::without_clock(), ChatListener::new(4));
    let setup = slow_client_setup(&mut c);
    assert!(
        c.r.get(setup.1).is_none(),
        "closed in the pass that found it short: nothing can time it"
    );
    slow_client_is_gone(&mut c, setup, 2);
}

#[test]
fn a_zero_slow_timeout_disconnects_a_receiver_without_room_at_once() {
    let mut c: Chat =
        Chat::with_listener(ChatListener::new(4).with_slow_timeout(core::time::Duration::ZERO));
    assert_eq!(c.listener().slow_timeout(), core::time::Duration::ZERO);
    let setup = slow_client_setup(&mut c);
    assert!(c.r.get(setup.1).is_none());
    slow_client_is_gone(&mut c, setup, 2);
}

#[test]
fn a_receiver_without_room_holds_the_room_for_the_slow_timeout_then_goes() {
    let mut c = Chat::new(4);
    assert_eq!(c.listener().slow_timeout(), DEFAULT_SLOW_TIMEOUT);
    let setup = slow_client_setup(&mut c);
    let (a, slow, d, ref lines, nd) = setup;
    // The third line waits for slowpoke; alice is not read meanwhile.
    assert!(c.r.get(slow).is_some(), "not disconnected yet");
    assert!(c.user(slow).is_blocking());
    assert!(c.user(a).is_waiting());
    let srv = c.r.get(a).unwrap().dispatcher;
    assert!(
        !<Srv as Dispatcher<MockSocket>>::readable(srv),
        "alice is not read"
    );
    assert_eq!(
        c.r.get(a).unwrap().socket.unread(),
        201,
        "the fourth line waits in its socket"
    );
    assert_eq!(
        c.lines(d)[nd..],
        [
            std::format!("alice: {}", lines[0]),
            std::format!("alice: {}", lines[1])
        ]
    );
    assert!(left().is_empty());
    // Nothing changes however often the loop runs before the timeout...
    c.sel()
        .advance(DEFAULT_SLOW_TIMEOUT - core::time::Duration::from_millis(1));
    c.r.poll_once(Some(core::time::Duration::ZERO)).unwrap();
    assert!(c.r.get(slow).is_some() && c.user(a).is_waiting());
    // ... and at the timeout it is gone, and the room goes on.
    c.sel().advance(core::time::Duration::from_millis(1));
    c.r.poll_once(Some(core::time::Duration::ZERO)).unwrap();
    slow_client_is_gone(&mut c, setup, 2);
}

#[test]
fn a_full_ring_is_not_slow_while_the_socket_takes_data() {
    let mut c = Chat::new(4);
    let a = c.connect(10).unwrap();
    let b = c.connect(11).unwrap();
    // No write readiness for b: its ring fills, but its socket still takes data, so a
    // full ring is flushed straight to the socket instead of holding the room.
    c.sel().clear(11);
    let before = c.lines(b).len();
    for i in 0..4u8 {
        let mut l = std::vec![b'0' + i; 200];
        l.push(b'\n');
        c.say(a, &l);
    }
    assert!(!c.user(b).is_blocking() && !c.user(a).is_waiting());
    let got = c.lines(b);
    assert_eq!(got.len(), before + 4, "every line, none dropped");
    let sent = StdString::from_utf8(c.r.get(b).unwrap().socket.sent().to_vec()).unwrap();
    assert!(
        sent.contains(&std::format!("guest1: {}\n", "0".repeat(200))),
        "the first lines went out without a write readiness"
    );
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
        clean_line::<300>(line).to_vec()
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
    // Never longer than the input, so a line of 300 bytes fits.
    let worst = [0xffu8; 300];
    assert_eq!(clean(&worst).len(), 300);
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
    type Server<'n> = Reactor<SimIo<'n, SOCKETS, BUF>, ChatServer<Sock<'n>, OUT, LINE>, 8>;

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

/// Back-pressure on a quiet simulated network, in virtual time: talkers that burst,
/// readers that read at a steady pace, a reader that stops.
mod flow {
    use super::*;
    use crate::sim::{SimConfig, SimNet, SimSelector, SimSocket};
    use crate::{Recv, Sent, Socket};
    use core::time::Duration;
    use std::collections::VecDeque;

    const SOCKETS: usize = 32;
    const BUF: usize = 512;
    type Net = SimNet<SOCKETS, BUF>;
    type Sock<'n> = SimSocket<'n, SOCKETS, BUF>;
    type Server<'n> = Reactor<SimIo<'n, SOCKETS, BUF>, ChatServer<Sock<'n>, OUT, LINE>, 24>;

    const PORT: u16 = 7;
    const SLOW: Duration = Duration::from_millis(1000);

    /// How a peer reads.
    #[derive(Copy, Clone, Debug, PartialEq)]
    enum Reads {
        /// Everything, every pass.
        All,
        /// `bytes` every `every` of virtual time.
        Paced { bytes: usize, every: Duration },
        /// Nothing after the first `n` bytes.
        StopsAfter(usize),
    }

    struct Peer<'n> {
        sock: Sock<'n>,
        reads: Reads,
        next_read: Duration,
        got: StdVec<u8>,
        eof: bool,
        out: VecDeque<u8>,
    }

    impl<'n> Peer<'n> {
        fn new(net: &'n Net, reads: Reads) -> Self {
            Peer {
                sock: net.connect(PORT).unwrap(),
                reads,
                next_read: Duration::ZERO,
                got: StdVec::new(),
                eof: false,
                out: VecDeque::new(),
            }
        }

        fn say(&mut self, data: &[u8]) {
            self.out.extend(data);
        }

        fn pump(&mut self, net: &Net) {
            while !self.out.is_empty() && !self.eof {
                let (a, _) = self.out.as_slices();
                match self.sock.send(a) {
                    Ok(Sent::Bytes(n)) if n > 0 => drop(self.out.drain(..n)),
                    _ => break,
                }
            }
            let mut budget = match self.reads {
                Reads::All => usize::MAX,
                Reads::StopsAfter(n) => n.saturating_sub(self.got.len()),
                Reads::Paced { bytes, every } => {
                    if net.now() < self.next_read {
                        0
                    } else {
                        self.next_read = net.now() + every;
                        bytes
                    }
                }
            };
            let mut buf = [0u8; 256];
            while budget > 0 && !self.eof {
                let want = budget.min(buf.len());
                match self.sock.recv(&mut buf[..want]) {
                    Ok(Recv::Data(n)) => {
                        self.got.extend_from_slice(&buf[..n]);
                        budget -= n;
                    }
                    Ok(Recv::Eof) | Err(_) => self.eof = true,
                    Ok(Recv::WouldBlock) => break,
                }
            }
        }

        fn lines(&self) -> StdVec<StdString> {
            StdString::from_utf8_lossy(&self.got)
                .lines()
                .map(str::to_string)
                .collect()
        }

        /// The line numbers said by `nick` (lines `NICK: <n> ...`), in arrival order.
        fn heard_from(&self, nick: &str) -> StdVec<usize> {
            let prefix = std::format!("{nick}: ");
            self.lines()
                .iter()
                .filter_map(|l| l.strip_prefix(&prefix)?.split(' ').next()?.parse().ok())
                .collect()
        }
    }

    fn server<'n>(net: &'n Net, listener: ChatListener<Sock<'n>>) -> Server<'n> {
        let mut r: Server<'_> = Reactor::new(SimSelector::new(net));
        let listener = listener.with_left_hook(record_left);
        r.add(net.listen(PORT).unwrap(), ChatServer::Listener(listener))
            .unwrap();
        r
    }

    /// Passes (at most 5 ms of virtual time each) until `done`; fails after a bound.
    fn run_until<'n>(
        r: &mut Server<'n>,
        net: &'n Net,
        peers: &mut [Peer<'n>],
        mut done: impl FnMut(&Server<'n>, &[Peer<'n>]) -> bool,
    ) {
        for _ in 0..200_000 {
            if done(r, peers) {
                return;
            }
            r.poll_once(Some(Duration::from_millis(5))).unwrap();
            assert_eq!(net.stall(), None, "a socket was left ready and unserviced");
            for p in peers.iter_mut() {
                p.pump(net);
            }
        }
        panic!("not done after 200,000 passes");
    }

    /// Everybody accepted and announced.
    fn join_all<'n>(r: &mut Server<'n>, net: &'n Net, peers: &mut [Peer<'n>]) {
        let n = peers.len();
        run_until(r, net, peers, |r, _| {
            r.map()
                .iter()
                .filter(|c| c.dispatcher.user().is_some_and(ChatUser::is_announced))
                .count()
                == n
        });
    }

    /// `n` numbered lines of about `len` bytes: `<i> xxxx...`.
    fn burst(n: usize, len: usize) -> StdVec<u8> {
        let mut out = StdVec::new();
        for i in 0..n {
            let mut l = std::format!("{i} ").into_bytes();
            l.resize(len, b'x');
            l.push(b'\n');
            out.extend_from_slice(&l);
        }
        out
    }

    fn waiting(r: &Server<'_>) -> usize {
        r.map()
            .iter()
            .filter(|c| c.dispatcher.user().is_some_and(ChatUser::is_waiting))
            .count()
    }

    /// The longest run of consecutive lines from one sender in what `p` heard.
    fn longest_run(p: &Peer<'_>) -> usize {
        let mut best = 0;
        let mut run = 0;
        let mut last = StdString::new();
        for l in p.lines() {
            let Some((who, _)) = l.split_once(": ") else {
                continue;
            };
            if l.starts_with("* ") {
                continue;
            }
            if who == last {
                run += 1;
            } else {
                run = 1;
                last = who.to_string();
            }
            best = best.max(run);
        }
        best
    }

    #[test]
    fn a_reader_slower_than_the_talkers_slows_the_room_and_is_never_disconnected() {
        let net = Net::new(SimConfig::quiet(11));
        let mut r = server(&net, ChatListener::new(8).with_slow_timeout(SLOW));
        let mut peers = [
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::All),
            // About 6 KB/s: the 80 lines below take longer than the slow timeout.
            Peer::new(
                &net,
                Reads::Paced {
                    bytes: 64,
                    every: Duration::from_millis(10),
                },
            ),
        ];
        join_all(&mut r, &net, &mut peers);
        let start = net.now();
        peers[0].say(&burst(40, 100));
        peers[1].say(&burst(40, 100));
        let mut most_waiting = 0;
        run_until(&mut r, &net, &mut peers, |r, p| {
            most_waiting = most_waiting.max(waiting(r));
            p[2].heard_from("guest1").len() == 40 && p[2].heard_from("guest2").len() == 40
        });
        let took = net.now() - start;
        assert!(most_waiting >= 1, "the room waited for the reader");
        assert!(
            took > SLOW,
            "the reader was slower than the slow timeout in all: {took:?}"
        );
        assert!(left().is_empty(), "nobody was disconnected: {:?}", left());
        let all: StdVec<usize> = (0..40).collect();
        assert_eq!(peers[2].heard_from("guest1"), all, "every line, in order");
        assert_eq!(peers[2].heard_from("guest2"), all);
        run_until(&mut r, &net, &mut peers, |_, p| {
            p[0].heard_from("guest2").len() == 40 && p[1].heard_from("guest1").len() == 40
        });
        assert_eq!(peers[0].heard_from("guest2"), all);
        assert_eq!(peers[1].heard_from("guest1"), all);
        assert!(peers[0].heard_from("guest1").is_empty(), "never its own");
        assert!(peers.iter().all(|p| !p.eof));
        assert_eq!(waiting(&r), 0);
    }

    #[test]
    fn progress_restarts_the_slow_timeout_of_a_receiver_short_of_room() {
        // Long lines and a reader that takes 16 bytes every 10 ms: room for the next
        // line takes it far longer than the slow timeout to make, but it makes
        // progress all along, so it stays.
        let net = Net::new(SimConfig::quiet(19));
        let slow = Duration::from_millis(50);
        let mut r = server(&net, ChatListener::new(8).with_slow_timeout(slow));
        let mut peers = [
            Peer::new(&net, Reads::All),
            Peer::new(
                &net,
                Reads::Paced {
                    bytes: 16,
                    every: Duration::from_millis(10),
                },
            ),
        ];
        join_all(&mut r, &net, &mut peers);
        peers[0].say(&burst(12, 250));
        let mut short_since: Option<Duration> = None;
        let mut longest = Duration::ZERO;
        run_until(&mut r, &net, &mut peers, |r, p| {
            let blocking = r
                .map()
                .iter()
                .any(|c| c.dispatcher.user().is_some_and(ChatUser::is_blocking));
            match (blocking, short_since) {
                (true, None) => short_since = Some(net.now()),
                (true, Some(t)) => longest = longest.max(net.now() - t),
                (false, _) => short_since = None,
            }
            p[1].eof || p[1].heard_from("guest1").len() == 12
        });
        assert!(!peers[1].eof, "the reader was disconnected: {:?}", left());
        assert!(
            longest > 2 * slow,
            "the reader was short of room for {longest:?} at a stretch"
        );
        assert!(left().is_empty(), "{:?}", left());
        assert_eq!(
            peers[1].heard_from("guest1"),
            (0..12).collect::<StdVec<_>>()
        );
    }

    #[test]
    fn a_reader_that_stops_is_disconnected_after_the_slow_timeout_and_the_room_goes_on() {
        let net = Net::new(SimConfig::quiet(12));
        let mut r = server(&net, ChatListener::new(8).with_slow_timeout(SLOW));
        let mut peers = [
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::All),
            Peer::new(
                &net,
                Reads::Paced {
                    bytes: 128,
                    every: Duration::from_millis(10),
                },
            ),
            Peer::new(&net, Reads::StopsAfter(600)),
        ];
        join_all(&mut r, &net, &mut peers);
        let start = net.now();
        peers[0].say(&burst(60, 100));
        peers[1].say(&burst(60, 100));
        let mut gone_at = None;
        let mut most_waiting = 0;
        run_until(&mut r, &net, &mut peers, |r, p| {
            most_waiting = most_waiting.max(waiting(r));
            if gone_at.is_none() && r.len() == 4 {
                gone_at = Some(net.now());
            }
            p[2].heard_from("guest1").len() == 60 && p[2].heard_from("guest2").len() == 60
        });
        let gone_at = gone_at.expect("the stalled reader was disconnected");
        assert!(
            gone_at >= start + SLOW,
            "not before the slow timeout: {:?} after the burst",
            gone_at - start
        );
        assert!(most_waiting >= 1);
        assert_eq!(left(), [("guest4".to_string(), Leave::TooSlow)]);
        let all: StdVec<usize> = (0..60).collect();
        for (k, p) in peers[..3].iter().enumerate() {
            assert!(!p.eof, "peer {k} stays");
            assert!(
                p.lines().iter().any(|l| l == "* guest4 left (too slow)"),
                "peer {k} was told why"
            );
        }
        assert_eq!(peers[2].heard_from("guest1"), all);
        assert_eq!(peers[2].heard_from("guest2"), all);
        // The stalled reader got a prefix of the same stream, then the end.
        for nick in ["guest1", "guest2"] {
            let got = peers[3].heard_from(nick);
            assert_eq!(got, (0..got.len()).collect::<StdVec<_>>());
        }
        peers[3].reads = Reads::All;
        run_until(&mut r, &net, &mut peers, |_, p| p[3].eof);
    }

    #[test]
    fn a_receiver_the_room_waits_for_that_hangs_up_lets_it_go_on_at_once() {
        let net = Net::new(SimConfig::quiet(20));
        let mut r = server(&net, ChatListener::new(8).with_slow_timeout(SLOW));
        let mut peers = [
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::StopsAfter(0)),
        ];
        join_all(&mut r, &net, &mut peers);
        peers[0].say(&burst(40, 100));
        run_until(&mut r, &net, &mut peers, |r, _| waiting(r) == 1);
        let _ = peers[2].sock.close();
        peers[2].eof = true;
        let closed = net.now();
        run_until(&mut r, &net, &mut peers, |_, p| {
            p[1].heard_from("guest1").len() == 40
        });
        assert!(
            net.now() < closed + SLOW / 2,
            "the room went on when it left, not at the slow timeout: {:?}",
            net.now() - closed
        );
        assert_eq!(left(), [("guest3".to_string(), Leave::Closed)]);
        assert!(peers[1].lines().iter().any(|l| l == "* guest3 left"));
    }

    #[test]
    fn under_back_pressure_talkers_take_turns() {
        let net = Net::new(SimConfig::quiet(13));
        let mut r = server(&net, ChatListener::new(8).with_slow_timeout(SLOW));
        let mut peers = [
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::All),
            Peer::new(
                &net,
                Reads::Paced {
                    bytes: 100,
                    every: Duration::from_millis(10),
                },
            ),
        ];
        join_all(&mut r, &net, &mut peers);
        for p in &mut peers[..3] {
            p.say(&burst(50, 100));
        }
        run_until(&mut r, &net, &mut peers, |_, p| {
            ["guest1", "guest2", "guest3"]
                .iter()
                .all(|n| p[3].heard_from(n).len() == 50)
        });
        // Each burst is about 5 KB, far more than the reader's ring: a sender that
        // got the room whenever it had room would send most of its burst in one run.
        // Taken in turns, a run is at most what the rings held when the room first
        // filled.
        let run = longest_run(&peers[3]);
        std::println!("longest run {run}");
        assert!(run <= 8, "a talker kept the room for {run} lines in a row");
        assert!(left().is_empty());
    }

    #[test]
    fn a_user_joining_while_the_room_waits_is_announced_in_turn() {
        let net = Net::new(SimConfig::quiet(14));
        let mut r = server(&net, ChatListener::new(8).with_slow_timeout(SLOW));
        let mut peers = std::vec![
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::StopsAfter(0)),
        ];
        join_all(&mut r, &net, &mut peers);
        peers[0].say(&burst(30, 100));
        run_until(&mut r, &net, &mut peers, |r, _| waiting(r) == 1);
        let heard = peers[1].heard_from("guest1").len();
        assert!(heard < 30, "the room waits for the stalled reader");
        // A newcomer is welcomed at once, but the others hear of it only in turn,
        // after the line that waited before it.
        peers.push(Peer::new(&net, Reads::All));
        run_until(&mut r, &net, &mut peers, |_, p| !p[3].got.is_empty());
        assert_eq!(peers[3].lines(), ["* welcome guest4"]);
        assert!(!peers[1].lines().iter().any(|l| l == "* guest4 joined"));
        peers[3].say(b"hello from the newcomer\n");
        run_until(&mut r, &net, &mut peers, |_, p| {
            p[1].heard_from("guest1").len() == 30
                && p[1].lines().iter().any(|l| l.starts_with("guest4: "))
        });
        let lines = peers[1].lines();
        let pos = |want: &str| lines.iter().position(|l| l == want).unwrap();
        let first = std::format!("guest1: {heard} ");
        let held = lines.iter().position(|l| l.starts_with(&first)).unwrap();
        assert!(
            pos("* guest3 left (too slow)") < held,
            "the room went on once it left"
        );
        assert!(
            held < pos("* guest4 joined"),
            "the newcomer's turn came after"
        );
        assert!(pos("* guest4 joined") < pos("guest4: hello from the newcomer"));
        assert_eq!(peers[0].heard_from("guest4").len(), 0);
        assert!(
            peers[0]
                .lines()
                .iter()
                .any(|l| l == "guest4: hello from the newcomer")
        );
    }

    #[test]
    fn a_client_that_never_reads_its_own_replies_waits_and_is_disconnected_as_too_slow() {
        let net = Net::new(SimConfig::quiet(15));
        let mut r = server(&net, ChatListener::new(8).with_slow_timeout(SLOW));
        let mut peers = [
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::StopsAfter(0)),
        ];
        run_until(&mut r, &net, &mut peers, |r, _| r.len() == 3);
        let start = net.now();
        peers[1].say(&b"/ping\n".repeat(400));
        let mut waited = false;
        let mut gone_at = None;
        run_until(&mut r, &net, &mut peers, |r, p| {
            waited |= waiting(r) == 1;
            if gone_at.is_none() && r.len() == 2 {
                gone_at = Some(net.now());
            }
            p[0].lines().iter().any(|l| l.ends_with(" left (too slow)"))
        });
        assert!(
            waited,
            "its input was paused while its replies could not be queued"
        );
        assert!(gone_at.unwrap() >= start + SLOW);
        assert_eq!(peers[0].lines().last().unwrap(), "* guest2 left (too slow)");
        assert_eq!(left(), [("guest2".to_string(), Leave::TooSlow)]);
    }

    #[test]
    fn a_waiting_talker_is_not_idle() {
        let net = Net::new(SimConfig::quiet(16));
        let idle = Duration::from_millis(300);
        let listener = ChatListener::new(8)
            .with_slow_timeout(SLOW)
            .with_idle_timeout(idle);
        let mut r = server(&net, listener);
        let mut peers = [
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::StopsAfter(0)),
        ];
        join_all(&mut r, &net, &mut peers);
        // Once the talker waits for the stalled reader, the stalled reader says
        // something too: its line waits behind the talker's, so it is not idle
        // either (what it sends is activity, even unread).
        peers[0].say(&burst(30, 100));
        run_until(&mut r, &net, &mut peers, |r, _| waiting(r) == 1);
        peers[1].say(b"me too\n");
        run_until(&mut r, &net, &mut peers, |r, _| waiting(r) == 2);
        run_until(&mut r, &net, &mut peers, |_, p| {
            p[0].lines().iter().any(|l| l.ends_with(" left (too slow)"))
        });
        assert_eq!(left(), [("guest2".to_string(), Leave::TooSlow)], "not idle");
        assert!(!peers[0].eof);
    }

    #[test]
    fn leave_notices_use_the_reserve_of_a_receiver_the_room_waits_for() {
        let net = Net::new(SimConfig::quiet(17));
        let mut r = server(&net, ChatListener::new(16).with_slow_timeout(SLOW));
        let mut peers = std::vec![
            Peer::new(&net, Reads::All),
            Peer::new(&net, Reads::StopsAfter(0)),
        ];
        for _ in 0..6 {
            peers.push(Peer::new(&net, Reads::All));
        }
        join_all(&mut r, &net, &mut peers);
        peers[0].say(&burst(40, 100));
        run_until(&mut r, &net, &mut peers, |r, _| waiting(r) == 1);
        // Six users hang up while the room waits for guest2: their notices cannot
        // wait, and go into guest2's reserve.
        for p in &mut peers[2..] {
            let _ = p.sock.close();
            p.eof = true;
        }
        run_until(&mut r, &net, &mut peers, |r, _| r.len() == 3);
        // guest2 reads again: it gets everything, in order, the notices among it.
        peers[1].reads = Reads::All;
        run_until(&mut r, &net, &mut peers, |_, p| {
            p[1].heard_from("guest1").len() == 40
        });
        assert_eq!(
            peers[1].heard_from("guest1"),
            (0..40).collect::<StdVec<_>>()
        );
        for k in 3..=8 {
            assert!(
                peers[1]
                    .lines()
                    .iter()
                    .any(|l| *l == std::format!("* guest{k} left")),
                "guest2 was told guest{k} left"
            );
        }
        assert!(
            left().iter().all(|(_, why)| *why == Leave::Closed),
            "{:?}",
            left()
        );
    }

    #[test]
    fn max_line_exactly_passes_and_one_more_is_too_long_lf_and_crlf() {
        for (max, ends) in [(100, "\n"), (100, "\r\n"), (LINE, "\n"), (LINE, "\r\n")] {
            let net = Net::new(SimConfig::quiet(18));
            let listener = ChatListener::new(8).with_max_line(max);
            assert_eq!(listener.max_line(), max);
            let mut r = server(&net, listener);
            let mut peers = [Peer::new(&net, Reads::All), Peer::new(&net, Reads::All)];
            join_all(&mut r, &net, &mut peers);
            let fits = "f".repeat(max);
            let over = "o".repeat(max + 1);
            let cr_inside = std::format!("{}\rx", "c".repeat(max - 1));
            for l in [&fits, &over, &cr_inside, &"after".to_string()] {
                peers[0].say(std::format!("{l}{ends}").as_bytes());
            }
            run_until(&mut r, &net, &mut peers, |_, p| {
                p[1].lines().iter().any(|l| l == "guest1: after")
            });
            let said: StdVec<StdString> = peers[1]
                .lines()
                .into_iter()
                .filter(|l| l.starts_with("guest1: "))
                .collect();
            assert_eq!(
                said,
                [std::format!("guest1: {fits}"), "guest1: after".to_string()],
                "max {max}, {ends:?}"
            );
            let replies: StdVec<StdString> = peers[0]
                .lines()
                .into_iter()
                .filter(|l| l == "* line too long")
                .collect();
            assert_eq!(
                replies.len(),
                2,
                "max {max}, {ends:?}: {:?}",
                peers[0].lines()
            );
            let u = r
                .map()
                .iter()
                .find_map(|c| c.dispatcher.user().filter(|u| u.nick() == "guest1"))
                .unwrap();
            assert_eq!((u.max_line(), u.overlong(), u.said()), (max, 2, 2));
        }
        // Above the line capacity, the capacity is the limit.
        let net = Net::new(SimConfig::quiet(19));
        let mut r = server(&net, ChatListener::new(8).with_max_line(LINE * 10));
        let mut peers = [Peer::new(&net, Reads::All)];
        join_all(&mut r, &net, &mut peers);
        let u = r.map().iter().find_map(|c| c.dispatcher.user()).unwrap();
        assert_eq!(u.max_line(), LINE);
    }
}
