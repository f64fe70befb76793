//! Each readiness bit from a real kernel situation, plus the selector's own rules
//! (registration, errors, in-place updates, sleeping with no fds). The cases both fd
//! selectors share run from `asyncore_backend_tests::cases`.

mod common;

use std::os::fd::{AsRawFd, OwnedFd};

use asyncore_core::{Event, Events, Interest, Readiness, Selector, SourceError, Token};
use asyncore_poll::{PollSelector, WaitError};
use common::*;
use nix::errno::Errno;

// The readiness cases both fd selectors share.
readiness_tests!(Sel, BACKEND);

// A wait handed out in several batches (shared with the select(2) selector).
#[test]
fn batches_report_each_ready_source_once() {
    batches::batches_report_each_ready_source_once(PollSelector::<16>::new());
}

#[test]
fn changes_between_batches_report_nothing_from_the_wait() {
    batches::changes_between_batches_report_nothing_from_the_wait(PollSelector::<16>::new());
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
    assert_eq!(events.as_slice()[0].readiness(), Readiness::WRITABLE);
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
    let got: Vec<u32> = events.as_slice().iter().map(|e| e.slot()).collect();
    assert_eq!(got, [0, 1], "slot order, up to the buffer's capacity");
}

#[test]
fn no_registrations_sleeps_for_the_timeout() {
    cases::no_registrations_sleeps_for_the_timeout(&BACKEND, &mut Sel::new());
}

#[test]
fn pollfd_entries_are_written_only_when_registrations_change() {
    let (mut sel, pairs) = cases::changes_only_when_registrations_change(&BACKEND);
    let fd = |i: usize| pairs[i].0.as_raw_fd();

    // Two added: two writes.
    let regs = [
        reg(0, fd(0), Interest::BOTH),
        reg(1, fd(1), Interest::READABLE),
        reg(2, fd(2), Interest::READABLE),
        reg(3, fd(3), Interest::WRITABLE),
    ];
    let ready = cases::pass(&mut sel, &regs);
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
    assert!(cases::pass(&mut sel, &[]).is_empty());
    assert_eq!(sel.writes(), 11);
    cases::pass(&mut sel, &regs);
    assert_eq!(sel.writes(), 15);
    cases::pass(&mut sel, &regs);
    assert_eq!(sel.writes(), 15);
}
