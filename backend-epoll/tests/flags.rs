//! Each readiness bit from a real kernel situation, and the selector's own rules:
//! no interest is out of the set (no hang-up), `epoll_ctl` only on a change, what
//! `epoll_ctl` refuses, what closing an fd does, waits bounded by `E` (what the
//! caller's buffer cannot take handed out by `select_more`), sleeping with nothing
//! registered. The cases both fd selectors
//! share run from `asyncore_backend_tests::cases`.

mod common;

use std::{
    collections::BTreeSet,
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use asyncore_core::{Event, Events, Interest, Readiness, Selector, SourceError, Token};
use asyncore_epoll::EpollSelector;
use common::*;
use nix::{
    errno::Errno,
    unistd::{dup, dup2},
};

// The readiness cases both fd selectors share.
readiness_tests!(Sel, BACKEND);

// A wait handed out in several batches (shared with the select(2) selector).
#[test]
fn batches_report_each_ready_source_once() {
    batches::batches_report_each_ready_source_once(EpollSelector::<16>::new());
}

#[test]
fn changes_between_batches_report_nothing_from_the_wait() {
    batches::changes_between_batches_report_nothing_from_the_wait(EpollSelector::<16>::new());
}

#[test]
fn fresh_socket_is_writable_and_hung_up() {
    let fresh = tcp_socket();
    let mut sel = EpollSelector::<4>::new();
    assert_eq!(
        select_one(&mut sel, fresh.as_raw_fd(), Interest::WRITABLE, ZERO),
        Readiness::WRITABLE | Readiness::HANGUP,
        "as poll(2) reports it"
    );
}

#[test]
fn no_interest_is_out_of_the_set_and_hears_no_hangup() {
    let (a, b) = pair();
    let fd = a.as_raw_fd();
    let mut sel = EpollSelector::<4>::new();
    let t = Token::new(1, 0);
    assert_eq!(sel.register(t, fd, Interest::NONE), Ok(()));
    assert_eq!(sel.ctl_calls(), 2, "the probe: ADD, then DEL at once");
    assert_eq!((sel.registered(), sel.watched()), (1, 0));
    send_all(b.as_raw_fd(), b"data");
    drop(b); // readable, EOF, hang-up: epoll would report HUP for anything in its set
    assert_eq!(wait(&mut sel, 4, Some(Duration::from_millis(20))), []);

    // Interest arrives: ADD, and the state shows at once.
    sel.reregister(t, fd, Interest::NONE, Interest::WRITABLE)
        .unwrap();
    assert_eq!((sel.ctl_calls(), sel.watched()), (3, 1));
    let got = wait(&mut sel, 4, ZERO);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].slot() as usize, t.index());
    assert!(got[0].readiness().contains(Readiness::HANGUP), "{got:?}");
    assert!(
        !got[0].readiness().is_readable(),
        "no read interest: {got:?}"
    );

    // And leaves: DEL, silent again.
    sel.reregister(t, fd, Interest::WRITABLE, Interest::NONE)
        .unwrap();
    assert_eq!((sel.ctl_calls(), sel.watched()), (4, 0));
    assert_eq!(wait(&mut sel, 4, ZERO), []);
    // Deregistering a source with no interest needs no system call.
    sel.deregister(t, fd, Interest::NONE);
    assert_eq!((sel.ctl_calls(), sel.registered()), (4, 0));
}

#[test]
fn epoll_ctl_only_when_registrations_change() {
    let (mut sel, pairs) = cases::changes_only_when_registrations_change(&BACKEND);
    let fd = |i: usize| pairs[i].0.as_raw_fd();

    // One loses its interest (DEL), one comes with none (ADD + DEL, the probe).
    let regs = [
        reg(0, fd(0), Interest::BOTH),
        reg(1, fd(1), Interest::NONE),
        reg(3, fd(3), Interest::NONE),
    ];
    let ready = cases::pass(&mut sel, &regs);
    assert_eq!(sel.ctl_calls(), 8);
    assert_eq!(
        ready,
        [Readiness::WRITABLE, Readiness::EMPTY, Readiness::EMPTY]
    );
    assert_eq!((sel.registered(), sel.watched()), (3, 1));
    cases::pass(&mut sel, &regs);
    assert_eq!(sel.ctl_calls(), 8);

    // All leave: only the watched one costs a DEL.
    assert!(cases::pass(&mut sel, &[]).is_empty());
    assert_eq!(sel.ctl_calls(), 9);
    assert_eq!((sel.registered(), sel.watched()), (0, 0));
    assert_eq!(sel.last_ctl_error(), None, "nothing failed");
}

#[test]
fn what_epoll_ctl_refuses() {
    let dir = std::env::temp_dir().join(format!("asyncore-epoll-refuses-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("regular");
    std::fs::write(&path, b"always ready").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let directory = std::fs::File::open(&dir).unwrap();
    let mut sel = EpollSelector::<4>::new();
    let t = Token::new(0, 0);

    // Regular files and directories: EPERM, whatever the interest (the probe).
    for fd in [file.as_raw_fd(), directory.as_raw_fd()] {
        for interest in [Interest::READABLE, Interest::BOTH, Interest::NONE] {
            assert_eq!(sel.register(t, fd, interest), Err(SourceError::Invalid));
            assert_eq!(sel.last_ctl_error(), Some(Errno::EPERM));
        }
    }
    assert_eq!((sel.registered(), sel.watched()), (0, 0));
    drop((file, directory));
    std::fs::remove_dir_all(&dir).unwrap();

    // A negative fd: refused without a system call.
    let calls = sel.ctl_calls();
    assert_eq!(
        sel.register(t, -1, Interest::READABLE),
        Err(SourceError::Invalid)
    );
    assert_eq!(sel.ctl_calls(), calls);

    // The same fd under a second token: EEXIST (with or without interest).
    let (a, _b) = pair();
    sel.register(t, a.as_raw_fd(), Interest::READABLE).unwrap();
    for interest in [Interest::READABLE, Interest::NONE] {
        assert_eq!(
            sel.register(Token::new(1, 0), a.as_raw_fd(), interest),
            Err(SourceError::Invalid)
        );
        assert_eq!(sel.last_ctl_error(), Some(Errno::EEXIST));
    }
    assert_eq!((sel.registered(), sel.watched()), (1, 1));
    // The first registration is untouched (nothing to read yet; then writable).
    assert_eq!(wait(&mut sel, 4, ZERO), []);
    sel.reregister(t, a.as_raw_fd(), Interest::READABLE, Interest::WRITABLE)
        .unwrap();
    assert_eq!(wait(&mut sel, 4, ZERO), [ev(t, Readiness::WRITABLE)]);
    // Changing what was never registered: ENOENT.
    let (c, _d) = pair();
    assert_eq!(
        sel.reregister(
            Token::new(2, 0),
            c.as_raw_fd(),
            Interest::READABLE,
            Interest::BOTH
        ),
        Err(SourceError::Invalid)
    );
    assert_eq!(sel.last_ctl_error(), Some(Errno::ENOENT));
}

#[test]
fn an_fd_closed_behind_the_back_leaves_the_set_silently() {
    let (a, b) = pair();
    let (c, d) = pair();
    let mut sel = EpollSelector::<4>::new();
    let (ta, tc) = (Token::new(0, 0), Token::new(1, 0));
    let raw = a.as_raw_fd();
    sel.register(ta, raw, Interest::READABLE).unwrap();
    sel.register(tc, c.as_raw_fd(), Interest::READABLE).unwrap();
    send_all(b.as_raw_fd(), b"unread");
    send_all(d.as_raw_fd(), b"alive");
    let got: BTreeSet<usize> = wait(&mut sel, 4, Some(PATIENCE))
        .iter()
        .map(|e| e.slot() as usize)
        .collect();
    assert_eq!(got, BTreeSet::from([ta.index(), tc.index()]));

    // Closing the only descriptor of its file takes it out of the epoll set: no
    // POLLNVAL-like report, nothing at all, while the others go on.
    drop(a);
    for _ in 0..3 {
        assert_eq!(
            wait(&mut sel, 4, Some(PATIENCE)),
            [ev(tc, Readiness::READABLE)]
        );
    }
    // A change now fails (EBADF; ENOENT if another thread reused the number), so
    // the reactor can report the channel INVALID.
    assert_eq!(
        sel.reregister(ta, raw, Interest::READABLE, Interest::BOTH),
        Err(SourceError::Invalid)
    );
    assert!(
        matches!(sel.last_ctl_error(), Some(Errno::EBADF | Errno::ENOENT)),
        "{:?}",
        sel.last_ctl_error()
    );
    // Deregistering it ignores the error.
    sel.deregister(ta, raw, Interest::READABLE);
    assert_eq!((sel.registered(), sel.watched()), (1, 1));
}

#[test]
fn a_duplicate_keeps_a_closed_fd_reporting() {
    // epoll registers the file: closing one of two descriptors of it leaves the
    // registration, under its old token, and DEL by the closed number cannot reach
    // it. The reactor deregisters before it closes for this reason.
    let (a, b) = pair();
    let mut sel = EpollSelector::<4>::new();
    let t = Token::new(7, 3);
    let raw = a.as_raw_fd();
    sel.register(t, raw, Interest::READABLE).unwrap();
    let duplicate = dup(&a).expect("dup");
    drop(a);
    sel.deregister(t, raw, Interest::READABLE);
    assert!(matches!(
        sel.last_ctl_error(),
        Some(Errno::EBADF | Errno::ENOENT)
    ));
    send_all(b.as_raw_fd(), b"x");
    let got = wait(&mut sel, 4, Some(PATIENCE));
    assert_eq!(got, [ev(t, Readiness::READABLE)], "still in the set");
    // Closing the last descriptor of the file ends it.
    drop(duplicate);
    assert_eq!(wait(&mut sel, 4, ZERO), []);
}

#[test]
fn a_full_events_buffer_keeps_the_rest_for_select_more() {
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..3).map(|_| pair()).collect();
    let mut sel = EpollSelector::<8>::new();
    for (i, (a, _)) in pairs.iter().enumerate() {
        sel.register(Token::new(i as u32, 0), a.as_raw_fd(), Interest::WRITABLE)
            .unwrap();
    }
    // Room for two: the kernel is asked for up to E, and the one that does not fit
    // is handed out by `select_more`, with no other wait.
    let waits = sel.waits();
    let first = wait(&mut sel, 2, ZERO);
    assert_eq!(first.len(), 2);
    let mut buf = [Event::EMPTY; 2];
    let mut events = Events::new(&mut buf);
    assert_eq!(sel.select_more(&mut events), 1);
    assert_eq!(sel.select_more(&mut Events::new(&mut [Event::EMPTY; 2])), 0);
    assert_eq!(sel.waits(), waits + 1, "one epoll_wait");
    let all: BTreeSet<usize> = first
        .iter()
        .chain(events.as_slice())
        .map(|e| e.slot() as usize)
        .collect();
    assert_eq!(all, BTreeSet::from([0, 1, 2]));
    // A buffer already partly used: only its room is filled.
    let mut buf = [Event::EMPTY; 3];
    let mut events = Events::new(&mut buf);
    assert!(events.push(Token::new(99, 0), Readiness::INVALID));
    assert_eq!(sel.select(&mut events, ZERO), Ok(2));
    assert_eq!(events.len(), 3);
    assert_eq!(events.as_slice()[0].slot(), 99);
    // A full one: nothing pushed, nothing lost (all three come from `select_more`).
    let mut full = [Event::EMPTY; 1];
    let mut events = Events::new(&mut full);
    assert!(events.push(Token::new(99, 0), Readiness::INVALID));
    assert_eq!(sel.select(&mut events, ZERO), Ok(0));
    let mut buf = [Event::EMPTY; 8];
    assert_eq!(sel.select_more(&mut Events::new(&mut buf)), 3);
    // A new wait forgets what the last one left.
    assert_eq!(wait(&mut sel, 1, ZERO).len(), 1);
    assert_eq!(wait(&mut sel, 8, ZERO).len(), 3);
    assert_eq!(sel.select_more(&mut Events::new(&mut buf)), 0);
}

#[test]
fn a_small_e_defers_ready_sources_but_starves_none() {
    const READY: usize = 8;
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..READY).map(|_| pair()).collect();
    let mut sel = EpollSelector::<3>::new();
    for (i, (a, _)) in pairs.iter().enumerate() {
        sel.register(Token::new(i as u32, 0), a.as_raw_fd(), Interest::WRITABLE)
            .unwrap();
    }
    let mut seen = BTreeSet::new();
    for round in 0..READY.div_ceil(3) {
        let got = wait(&mut sel, READY, ZERO);
        assert_eq!(got.len(), 3, "round {round}: at most E per wait");
        let distinct: BTreeSet<usize> = got.iter().map(|e| e.slot() as usize).collect();
        assert_eq!(distinct.len(), 3, "round {round}: {got:?}");
        seen.extend(distinct);
    }
    assert_eq!(
        seen,
        (0..READY).collect(),
        "every ready source within 3 waits"
    );
}

#[test]
fn no_registrations_sleeps_for_the_timeout() {
    let mut sel = Sel::new();
    assert_eq!(sel.epoll_fd(), None);
    cases::no_registrations_sleeps_for_the_timeout(&BACKEND, &mut sel);
    let fd = sel.epoll_fd().expect("made by the first wait");
    assert_eq!(sel.open(), Ok(fd), "open() is idempotent");
}

#[test]
fn a_number_added_for_another_token_in_this_pass_is_not_deleted_nor_changed() {
    // Channel 0 watches fd X; X then names another socket (dup2 closes the first
    // socket's only descriptor, which takes it out of the set, atomically, so no
    // other thread can take the number in between) and channel 1 registers it.
    let (mut x, _x_peer) = pair();
    let mut sel = EpollSelector::<4>::new();
    let (t0, t1) = (Token::new(0, 0), Token::new(1, 0));
    let raw = x.as_raw_fd();
    sel.register(t0, raw, Interest::READABLE).unwrap();
    let (c, d) = pair();
    dup2(&c, &mut x).expect("dup2");
    drop(c);
    sel.register(t1, raw, Interest::READABLE).unwrap();
    let calls = sel.ctl_calls();

    // Channel 0's change would change channel 1's registration: refused, no call.
    assert_eq!(
        sel.reregister(t0, raw, Interest::READABLE, Interest::BOTH),
        Err(SourceError::Invalid)
    );
    // Its deregistration would delete channel 1's: skipped.
    sel.deregister(t0, raw, Interest::READABLE);
    assert_eq!(sel.ctl_calls(), calls, "no epoll_ctl for channel 0");
    assert_eq!((sel.registered(), sel.watched()), (1, 1));

    send_all(d.as_raw_fd(), b"for channel 1");
    assert_eq!(
        wait(&mut sel, 4, Some(PATIENCE)),
        [ev(t1, Readiness::READABLE)]
    );
    // A wait settles the pass: channel 1 changes and leaves as usual.
    sel.reregister(t1, raw, Interest::READABLE, Interest::BOTH)
        .unwrap();
    sel.deregister(t1, raw, Interest::BOTH);
    assert_eq!(sel.ctl_calls(), calls + 2);
    assert_eq!(sel.last_ctl_error(), None);
    assert_eq!(wait(&mut sel, 4, ZERO), []);
}
