//! SelectSelector on real fds: readiness mapping, timeouts, out-of-range sources.

mod common;

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use asyncore_core::{Interest, Readiness, Registration, Selector, Sent, Socket, Token};
use asyncore_std::{FD_SETSIZE, SelectSelector, StdSocket};
use common::tcp_pair;

fn reg(i: u32, fd: RawFd, interest: Interest) -> Registration<RawFd> {
    Registration {
        token: Token::new(i, 0),
        source: fd,
        interest,
    }
}

#[test]
fn readable_and_writable() {
    let (mut a, b) = StdSocket::pair().unwrap();
    let mut sel = SelectSelector::new();
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
    let mut sel = SelectSelector::new();
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
    let mut sel = SelectSelector::new();
    let n = sel
        .select(&[], &mut [], Some(Duration::from_millis(30)))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn unregistered_out_of_range_sources_are_invalid() {
    let (mut a, b) = StdSocket::pair().unwrap();
    a.send(b"x").unwrap();
    let mut sel = SelectSelector::new();
    let regs = [
        reg(0, -1, Interest::READABLE),
        reg(1, b.as_raw_fd(), Interest::READABLE),
        reg(2, FD_SETSIZE as RawFd, Interest::BOTH),
    ];
    let mut ready = [Readiness::EMPTY; 3];
    let n = sel
        .select(&regs, &mut ready, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        ready,
        [Readiness::INVALID, Readiness::READABLE, Readiness::INVALID]
    );
}

#[test]
fn mismatched_lengths_do_not_panic() {
    let (a, _b) = StdSocket::pair().unwrap();
    let mut sel = SelectSelector::new();
    let regs = [
        reg(0, a.as_raw_fd(), Interest::WRITABLE),
        reg(1, a.as_raw_fd(), Interest::WRITABLE),
    ];
    let mut one = [Readiness::EMPTY];
    assert_eq!(sel.select(&regs, &mut one, Some(Duration::ZERO)), Ok(1));
    let mut three = [Readiness::READABLE; 3];
    assert_eq!(sel.select(&regs, &mut three, Some(Duration::ZERO)), Ok(2));
    assert_eq!(three[2], Readiness::READABLE, "beyond the registrations");
}

#[test]
fn stale_ready_entries_are_cleared() {
    let (a, _b) = StdSocket::pair().unwrap();
    let mut sel = SelectSelector::new();
    let regs = [reg(0, a.as_raw_fd(), Interest::READABLE)];
    let mut ready = [Readiness::READABLE | Readiness::HANGUP];
    assert_eq!(sel.select(&regs, &mut ready, Some(Duration::ZERO)), Ok(0));
    assert_eq!(ready, [Readiness::EMPTY]);
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
    let mut sel = SelectSelector::new();
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
