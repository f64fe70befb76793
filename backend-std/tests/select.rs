//! SelectSelector on real fds: readiness mapping, timeouts, out-of-range sources.

mod common;

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use asyncore_core::{
    Event, Events, Interest, Readiness, Selector, Sent, Socket, SourceError, Token,
};
use asyncore_std::{FD_SETSIZE, SelectSelector, StdSocket};
use common::{Waiter, reg, tcp_pair};

#[path = "../../tests/support/batches.rs"]
mod batches;

#[test]
fn batches_report_each_ready_source_once() {
    batches::batches_report_each_ready_source_once(SelectSelector::new());
}

#[test]
fn changes_between_batches_report_nothing_from_the_wait() {
    batches::changes_between_batches_report_nothing_from_the_wait(SelectSelector::new());
}

#[test]
fn readable_and_writable() {
    let (mut a, b) = StdSocket::pair().unwrap();
    let mut sel = Waiter::new(SelectSelector::new());
    let regs = [
        reg(0, a.as_raw_fd(), Interest::BOTH),
        reg(1, b.as_raw_fd(), Interest::READABLE),
    ];
    let mut ready = [Readiness::EMPTY; 2];
    let n = sel
        .select(&regs, &mut ready, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(ready, [Readiness::WRITABLE, Readiness::EMPTY]);

    assert_eq!(a.send(b"x").unwrap(), Sent::Bytes(1));
    let n = sel
        .select(&regs, &mut ready, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(ready, [Readiness::WRITABLE, Readiness::READABLE]);

    // Write interest alone never reports readable (nor priority).
    let regs = [reg(0, b.as_raw_fd(), Interest::WRITABLE)];
    let mut ready = [Readiness::EMPTY];
    sel.select(&regs, &mut ready, Some(Duration::ZERO)).unwrap();
    assert_eq!(ready, [Readiness::WRITABLE]);
}

#[test]
fn timeout_is_honoured() {
    let (a, _b) = StdSocket::pair().unwrap();
    let mut sel = Waiter::new(SelectSelector::new());
    let regs = [reg(0, a.as_raw_fd(), Interest::READABLE)];
    let mut ready = [Readiness::EMPTY];
    let n = sel
        .select(&regs, &mut ready, Some(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(ready, [Readiness::EMPTY]);

    // A zero timeout polls without waiting and still reports nothing.
    assert_eq!(
        sel.select(&regs, &mut ready, Some(Duration::ZERO)).unwrap(),
        0
    );
}

#[test]
fn no_registrations_sleeps() {
    let mut sel = Waiter::new(SelectSelector::new());
    let n = sel
        .select(&[], &mut [], Some(Duration::from_millis(30)))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn out_of_range_and_duplicate_sources_are_refused() {
    let (mut a, b) = StdSocket::pair().unwrap();
    a.send(b"x").unwrap();
    let mut sel = SelectSelector::new();
    let t = |i| Token::new(i, 0);
    let i = Interest::READABLE;
    assert_eq!(sel.register(t(0), -1, i), Err(SourceError::Invalid));
    assert_eq!(
        sel.register(t(2), FD_SETSIZE as RawFd, Interest::BOTH),
        Err(SourceError::OutOfRange { limit: FD_SETSIZE })
    );
    assert_eq!(sel.register(t(1), b.as_raw_fd(), i), Ok(()));
    assert_eq!(
        sel.register(t(3), b.as_raw_fd(), i),
        Err(SourceError::Invalid),
        "one fd, one registration"
    );
    let mut buf = [Event::EMPTY; 4];
    let mut events = Events::new(&mut buf);
    assert_eq!(sel.select(&mut events, Some(Duration::from_secs(5))), Ok(1));
    assert_eq!(events.as_slice(), [Event::new(1, Readiness::READABLE)]);
}

#[test]
fn a_full_events_buffer_keeps_the_rest_for_the_next_wait() {
    let (a, _b) = StdSocket::pair().unwrap();
    let (c, _d) = StdSocket::pair().unwrap();
    let mut sel = SelectSelector::new();
    let (lo, hi) = if a.as_raw_fd() < c.as_raw_fd() {
        (&a, &c)
    } else {
        (&c, &a)
    };
    sel.register(Token::new(5, 0), lo.as_raw_fd(), Interest::WRITABLE)
        .unwrap();
    sel.register(Token::new(1, 0), hi.as_raw_fd(), Interest::WRITABLE)
        .unwrap();
    let mut buf = [Event::EMPTY; 1];
    let mut events = Events::new(&mut buf);
    assert_eq!(sel.select(&mut events, Some(Duration::ZERO)), Ok(1));
    assert_eq!(events.as_slice()[0].slot(), 5, "fd order");
}

#[test]
fn refused_connect_is_readable_and_writable() {
    let l = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 1).unwrap();
    let addr = l.local_addr().unwrap().as_inet().unwrap();
    drop(l);
    let Ok(s) = StdSocket::tcp_connect(addr) else {
        return; // refused at once: nothing to wait for
    };
    let r = common::wait(&s, Interest::BOTH);
    assert!(
        r.contains(Readiness::READABLE | Readiness::WRITABLE),
        "{r:?}"
    );
}

#[test]
fn listener_readable_when_connection_pending() {
    let Some((listener, _c, _s)) = tcp_pair("127.0.0.1") else {
        return;
    };
    let mut sel = Waiter::new(SelectSelector::new());
    let regs = [reg(0, listener.as_raw_fd(), Interest::READABLE)];
    let mut ready = [Readiness::EMPTY];
    assert_eq!(sel.select(&regs, &mut ready, Some(Duration::ZERO)), Ok(0));
    let addr = listener.local_addr().unwrap().as_inet().unwrap();
    let _c2 = StdSocket::tcp_connect(addr).unwrap();
    assert_eq!(
        sel.select(&regs, &mut ready, Some(Duration::from_secs(5))),
        Ok(1)
    );
    assert_eq!(ready, [Readiness::READABLE]);
}
