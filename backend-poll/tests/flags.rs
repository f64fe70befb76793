//! Each readiness bit from a real kernel situation, plus the selector's own rules
//! (registration, errors, in-place updates, sleeping with no fds).

mod common;

use std::{
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use asyncore_core::{Event, Events, Interest, Readiness, Selector, SourceError, Token};
use asyncore_poll::{PollSelector, WaitError};
use common::*;
use nix::{
    errno::Errno,
    sys::socket::{
        MsgFlags, Shutdown, SockaddrIn, bind, getsockname, getsockopt, recv, send, shutdown,
        sockopt,
    },
};

const ZERO: Option<Duration> = Some(Duration::ZERO);

#[test]
fn nothing_ready_reports_nothing() {
    let (a, _b) = pair();
    let mut sel = PollSelector::<4>::new();
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, ZERO),
        Readiness::EMPTY
    );
}

#[test]
fn readable_after_peer_write() {
    let (a, b) = pair();
    let mut sel = PollSelector::<4>::new();
    send_all(b.as_raw_fd(), b"hello");
    let r = wait_for(
        &mut sel,
        a.as_raw_fd(),
        Interest::READABLE,
        Readiness::READABLE,
    );
    assert_eq!(r, Readiness::READABLE);
    // Level-triggered: still readable until drained.
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, ZERO),
        Readiness::READABLE
    );
    assert_eq!(recv_now(a.as_raw_fd()), b"hello");
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, ZERO),
        Readiness::EMPTY
    );
}

#[test]
fn writable() {
    let (a, _b) = pair();
    let mut sel = PollSelector::<4>::new();
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::WRITABLE, ZERO),
        Readiness::WRITABLE
    );
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::BOTH, ZERO),
        Readiness::WRITABLE
    );
}

#[test]
fn interest_masks_readiness() {
    let (a, b) = pair();
    let mut sel = PollSelector::<4>::new();
    send_all(b.as_raw_fd(), b"x");
    wait_for(
        &mut sel,
        a.as_raw_fd(),
        Interest::READABLE,
        Readiness::READABLE,
    );
    // Readable and writable, but only write interest: only WRITABLE comes back.
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::WRITABLE, ZERO),
        Readiness::WRITABLE
    );
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::BOTH, ZERO),
        Readiness::READABLE | Readiness::WRITABLE
    );
}

#[test]
fn priority_from_tcp_oob_byte() {
    let (client, server) = tcp_pair();
    let mut sel = PollSelector::<4>::new();
    assert_eq!(
        select_one(&mut sel, server.as_raw_fd(), Interest::READABLE, ZERO),
        Readiness::EMPTY
    );
    let n = send(
        client.as_raw_fd(),
        b"!",
        MsgFlags::MSG_OOB | MsgFlags::MSG_NOSIGNAL,
    )
    .expect("send MSG_OOB");
    assert_eq!(n, 1);
    let r = wait_for(
        &mut sel,
        server.as_raw_fd(),
        Interest::READABLE,
        Readiness::PRIORITY,
    );
    assert!(!r.intersects(Readiness::ERROR | Readiness::HANGUP | Readiness::INVALID));
    let mut byte = [0u8; 1];
    assert_eq!(
        recv(server.as_raw_fd(), &mut byte, MsgFlags::MSG_OOB),
        Ok(1)
    );
    assert_eq!(&byte, b"!");
    // Priority is tied to read interest: write interest alone does not see it.
    let n = send(
        client.as_raw_fd(),
        b"?",
        MsgFlags::MSG_OOB | MsgFlags::MSG_NOSIGNAL,
    )
    .expect("send MSG_OOB");
    assert_eq!(n, 1);
    wait_for(
        &mut sel,
        server.as_raw_fd(),
        Interest::READABLE,
        Readiness::PRIORITY,
    );
    assert_eq!(
        select_one(&mut sel, server.as_raw_fd(), Interest::WRITABLE, ZERO),
        Readiness::WRITABLE
    );
}

#[test]
fn hangup_after_peer_close() {
    let (a, b) = pair();
    let mut sel = PollSelector::<4>::new();
    drop(b);
    let r = wait_for(
        &mut sel,
        a.as_raw_fd(),
        Interest::READABLE,
        Readiness::HANGUP,
    );
    // EOF is readable; the peer is gone in both directions: hang-up.
    assert!(r.contains(Readiness::READABLE | Readiness::HANGUP), "{r:?}");
    assert!(!r.is_invalid());
    // Hang-up is reported whatever the interest.
    let r = select_one(&mut sel, a.as_raw_fd(), Interest::WRITABLE, ZERO);
    assert!(r.is_hangup(), "{r:?}");
    assert!(!r.is_readable(), "{r:?}");
}

#[test]
fn hangup_after_shutdown_both_directions() {
    let (a, b) = pair();
    let mut sel = PollSelector::<4>::new();
    shutdown(a.as_raw_fd(), Shutdown::Both).expect("shutdown");
    let r = wait_for(&mut sel, a.as_raw_fd(), Interest::BOTH, Readiness::HANGUP);
    assert!(r.contains(Readiness::READABLE | Readiness::HANGUP), "{r:?}");
    // The peer sees EOF (readable) and, with its own send side shut by ours, hang-up.
    let r = wait_for(
        &mut sel,
        b.as_raw_fd(),
        Interest::READABLE,
        Readiness::READABLE,
    );
    assert!(r.contains(Readiness::READABLE), "{r:?}");
}

#[test]
fn refused_connect_is_error_and_hangup() {
    // A bound socket that never listens: connecting to its port is refused (RST),
    // and keeping it open keeps the port from being reused meanwhile.
    let closed_port = tcp_socket();
    bind(closed_port.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind");
    let addr = getsockname::<SockaddrIn>(closed_port.as_raw_fd()).expect("getsockname");

    let client = tcp_connect_start(&addr);
    let mut sel = PollSelector::<4>::new();
    let r = wait_for(
        &mut sel,
        client.as_raw_fd(),
        Interest::BOTH,
        Readiness::ERROR | Readiness::HANGUP,
    );
    assert!(r.is_writable(), "{r:?}");
    assert!(!r.is_invalid(), "{r:?}");
    // Write interest alone (a connecting channel that is not readable) sees it too.
    let r = select_one(&mut sel, client.as_raw_fd(), Interest::WRITABLE, ZERO);
    assert!(r.contains(Readiness::ERROR | Readiness::HANGUP), "{r:?}");
    assert_eq!(
        getsockopt(&client, sockopt::SocketError),
        Ok(Errno::ECONNREFUSED as i32)
    );
}

#[test]
fn invalid_for_fd_closed_behind_the_selectors_back() {
    let (a, b) = pair();
    let (c, _d) = pair();
    let (e, _f) = pair();
    let victim = high_fd(c);
    let victim_raw = victim.as_raw_fd();
    let mut sel = Waiter::new(PollSelector::<4>::new());
    let regs = [
        reg(0, a.as_raw_fd(), Interest::READABLE),
        reg(1, victim_raw, Interest::READABLE),
        reg(2, e.as_raw_fd(), Interest::READABLE),
    ];
    sel.sync(&regs).expect("register");
    send_all(b.as_raw_fd(), b"data");
    let mut ready = [Readiness::EMPTY; 3];
    while ready[0].is_empty() {
        sel.select(&regs, &mut ready, Some(PATIENCE))
            .expect("select");
    }

    drop(victim); // Closed; the selector still has the number.
    for _ in 0..2 {
        let mut ready = [Readiness::EMPTY; 3];
        let n = sel
            .select(&regs, &mut ready, Some(PATIENCE))
            .expect("select");
        assert_eq!(n, 2);
        assert_eq!(
            ready,
            [Readiness::READABLE, Readiness::INVALID, Readiness::EMPTY]
        );
    }
}

#[test]
fn negative_fd_is_never_registered() {
    let mut sel = PollSelector::<4>::new();
    let t = Token::new(0, 0);
    assert_eq!(
        sel.register(t, -1, Interest::READABLE),
        Err(SourceError::Invalid)
    );
    assert_eq!(sel.registered(), 0);
}

#[test]
fn any_non_negative_fd_registers_no_fd_setsize_limit() {
    let mut sel = PollSelector::<4>::new();
    let t = Token::new(0, 0);
    for fd in [0, 1023, 1024, 65_535, i32::MAX] {
        assert_eq!(sel.register(t, fd, Interest::NONE), Ok(()), "fd {fd}");
        sel.deregister(t, fd, Interest::NONE);
    }
    assert_eq!(sel.registered(), 0);
}

#[test]
fn slots_beyond_capacity_are_refused() {
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    let mut sel = PollSelector::<1>::new();
    let i = Interest::WRITABLE;
    assert_eq!(sel.register(Token::new(0, 0), fd, i), Ok(()));
    assert_eq!(
        sel.register(Token::new(1, 0), fd, i),
        Err(SourceError::Full)
    );
    let mut buf = [Event::EMPTY; 1];
    let mut events = Events::new(&mut buf);
    assert_eq!(sel.select(&mut events, ZERO), Ok(1));
    assert_eq!(events.as_slice()[0].readiness, Readiness::WRITABLE);
    let err: std::io::Error = WaitError::Os(Errno::ENOMEM).into();
    assert_eq!(err.raw_os_error(), Some(Errno::ENOMEM as i32));
}

#[test]
fn a_full_events_buffer_keeps_the_rest_for_the_next_wait() {
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..3).map(|_| pair()).collect();
    let mut sel = PollSelector::<4>::new();
    for (i, (a, _)) in pairs.iter().enumerate() {
        sel.register(Token::new(i as u32, 0), a.as_raw_fd(), Interest::WRITABLE)
            .unwrap();
    }
    let mut buf = [Event::EMPTY; 2];
    let mut events = Events::new(&mut buf);
    assert_eq!(sel.select(&mut events, ZERO), Ok(2));
    let got: Vec<u32> = events.as_slice().iter().map(|e| e.slot).collect();
    assert_eq!(got, [0, 1], "slot order, up to the buffer's capacity");
}

#[test]
fn no_registrations_sleeps_for_the_timeout() {
    let mut sel = PollSelector::<4>::new();
    let mut buf = [Event::EMPTY; 1];
    let timeout = Duration::from_millis(20);
    assert_eq!(sel.select(&mut Events::new(&mut buf), Some(timeout)), Ok(0));
    assert_eq!(sel.waits(), 1);
    // Sub-millisecond timeouts round up to 1 ms instead of a non-blocking poll (the
    // rounding itself is checked on `timeout_to_millis`; no clock is read here).
    assert_eq!(
        sel.select(&mut Events::new(&mut buf), Some(Duration::from_micros(300))),
        Ok(0)
    );
    assert_eq!(sel.waits(), 2);
}

#[test]
fn pollfd_entries_are_written_only_when_registrations_change() {
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..4).map(|_| pair()).collect();
    let fd = |i: usize| pairs[i].0.as_raw_fd();
    let mut sel = Waiter::new(PollSelector::<8>::new());
    assert_eq!(sel.writes(), 0);

    let pass = |sel: &mut Waiter<PollSelector<8>>, regs: &[_]| {
        let mut ready = vec![Readiness::EMPTY; regs.len()];
        sel.select(regs, &mut ready, ZERO).expect("select");
        ready
    };

    // First pass: three registrations.
    let regs = [
        reg(0, fd(0), Interest::READABLE),
        reg(1, fd(1), Interest::READABLE),
        reg(2, fd(2), Interest::WRITABLE),
    ];
    let ready = pass(&mut sel, &regs);
    assert_eq!(sel.writes(), 3);
    assert_eq!(
        ready,
        [Readiness::EMPTY, Readiness::EMPTY, Readiness::WRITABLE]
    );

    // Same registrations: nothing rewritten, results still right.
    send_all(pairs[1].1.as_raw_fd(), b"x");
    wait_for(
        &mut PollSelector::<1>::new(),
        fd(1),
        Interest::READABLE,
        Readiness::READABLE,
    );
    let ready = pass(&mut sel, &regs);
    assert_eq!(sel.writes(), 3);
    assert_eq!(
        ready,
        [Readiness::EMPTY, Readiness::READABLE, Readiness::WRITABLE]
    );

    // One interest changes: one write.
    let regs = [
        reg(0, fd(0), Interest::BOTH),
        reg(1, fd(1), Interest::READABLE),
        reg(2, fd(2), Interest::WRITABLE),
    ];
    let ready = pass(&mut sel, &regs);
    assert_eq!(sel.writes(), 4);
    assert_eq!(
        ready,
        [
            Readiness::WRITABLE,
            Readiness::READABLE,
            Readiness::WRITABLE
        ]
    );

    // The last one leaves: one write.
    let ready = pass(&mut sel, &regs[..2]);
    assert_eq!(sel.writes(), 5);
    assert_eq!(ready, [Readiness::WRITABLE, Readiness::READABLE]);

    // Two added: two writes.
    let regs = [
        reg(0, fd(0), Interest::BOTH),
        reg(1, fd(1), Interest::READABLE),
        reg(2, fd(2), Interest::READABLE),
        reg(3, fd(3), Interest::WRITABLE),
    ];
    let ready = pass(&mut sel, &regs);
    assert_eq!(sel.writes(), 7);
    assert_eq!(
        ready,
        [
            Readiness::WRITABLE,
            Readiness::READABLE,
            Readiness::EMPTY,
            Readiness::WRITABLE
        ]
    );

    // All leave, then come back.
    assert!(pass(&mut sel, &[]).is_empty());
    assert_eq!(sel.writes(), 11);
    pass(&mut sel, &regs);
    assert_eq!(sel.writes(), 15);
    pass(&mut sel, &regs);
    assert_eq!(sel.writes(), 15);
}
