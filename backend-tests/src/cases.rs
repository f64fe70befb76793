//! The test bodies both fd selectors run, each generic over the selector: a backend's
//! test file calls them from its own `#[test]`s. Where the kernel makes the backends
//! differ, the case takes the expectation (or the rest of the test stays in the
//! backend's file, after the shared part).

use std::{
    os::fd::{AsRawFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use asyncore_core::{Event, Events, Interest, Readiness, Selector, Token};
use nix::{
    errno::Errno,
    sys::socket::{
        MsgFlags, Shutdown, SockaddrIn, bind, getsockname, getsockopt, recv, shutdown, sockopt,
    },
};

use crate::{
    Backend, FdSelector, PATIENCE, Registration, Waiter, ZERO, ev, pair, recv_now, reg, select_one,
    send_all, send_oob, sigusr1, tcp_connect_start, tcp_pair, tcp_socket, wait, wait_for,
};

/// A socket with nothing to read reports nothing.
pub fn nothing_ready_reports_nothing<S: FdSelector>() {
    let (a, _b) = pair();
    let mut sel = S::default();
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, ZERO),
        Readiness::EMPTY
    );
}

/// Data from the peer makes a registered socket readable, level-triggered (again on
/// every wait until drained), under its token's slot; the registration is told to the
/// kernel once however many waits follow.
pub fn readable_after_peer_write<S: FdSelector>(backend: &Backend<S>) {
    let (a, b) = pair();
    let mut sel = S::default();
    let t = Token::new(3, 9);
    sel.register(t, a.as_raw_fd(), Interest::READABLE).unwrap();
    send_all(b.as_raw_fd(), b"hello");
    let got = wait(&mut sel, 4, Some(PATIENCE));
    assert_eq!(
        got,
        [ev(t, Readiness::READABLE)],
        "the slot of the token comes back"
    );
    // Level-triggered: still readable until drained.
    assert_eq!(wait(&mut sel, 4, ZERO), got);
    assert_eq!(wait(&mut sel, 4, ZERO), got);
    assert_eq!(recv_now(a.as_raw_fd()), b"hello");
    assert_eq!(wait(&mut sel, 4, ZERO), []);
    assert_eq!(
        (backend.changes)(&sel),
        1,
        "one registration, however many waits"
    );
}

/// A connected socket is writable, with or without read interest.
pub fn writable<S: FdSelector>() {
    let (a, _b) = pair();
    let mut sel = S::default();
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::WRITABLE, ZERO),
        Readiness::WRITABLE
    );
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::BOTH, ZERO),
        Readiness::WRITABLE
    );
}

/// Readable and writable readiness come only for the interest asked for, also
/// through a change of a persistent registration.
pub fn interest_masks_readiness<S: FdSelector>() {
    let (a, b) = pair();
    let mut sel = S::default();
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
        select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, ZERO),
        Readiness::READABLE
    );
    assert_eq!(
        select_one(&mut sel, a.as_raw_fd(), Interest::BOTH, ZERO),
        Readiness::READABLE | Readiness::WRITABLE
    );
    // The same through a change of a persistent registration.
    let t = Token::new(0, 0);
    sel.register(t, a.as_raw_fd(), Interest::BOTH).unwrap();
    sel.reregister(t, a.as_raw_fd(), Interest::BOTH, Interest::WRITABLE)
        .unwrap();
    assert_eq!(wait(&mut sel, 1, ZERO)[0].readiness(), Readiness::WRITABLE);
    sel.reregister(t, a.as_raw_fd(), Interest::WRITABLE, Interest::READABLE)
        .unwrap();
    assert_eq!(wait(&mut sel, 1, ZERO)[0].readiness(), Readiness::READABLE);
}

/// A TCP urgent byte is `PRIORITY` alone, seen only with read interest, and gone
/// once read.
pub fn priority_from_tcp_oob_byte<S: FdSelector>() {
    let (client, server) = tcp_pair::<S>();
    let mut sel = S::default();
    assert_eq!(
        select_one(&mut sel, server.as_raw_fd(), Interest::READABLE, ZERO),
        Readiness::EMPTY
    );
    send_oob(client.as_raw_fd(), b'!');
    let r = wait_for(
        &mut sel,
        server.as_raw_fd(),
        Interest::READABLE,
        Readiness::PRIORITY,
    );
    assert_eq!(r, Readiness::PRIORITY, "urgent data alone is not READABLE");
    // Priority is tied to read interest: write interest alone does not see it.
    assert_eq!(
        select_one(&mut sel, server.as_raw_fd(), Interest::WRITABLE, ZERO),
        Readiness::WRITABLE
    );
    let mut byte = [0u8; 1];
    assert_eq!(
        recv(server.as_raw_fd(), &mut byte, MsgFlags::MSG_OOB),
        Ok(1)
    );
    assert_eq!(&byte, b"!");
    assert_eq!(
        select_one(&mut sel, server.as_raw_fd(), Interest::READABLE, ZERO),
        Readiness::EMPTY
    );
    // A second urgent byte is reported again.
    send_oob(client.as_raw_fd(), b'?');
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

/// A peer's close is readable (EOF) and a hang-up, the hang-up whatever the interest.
pub fn hangup_after_peer_close<S: FdSelector>() {
    let (a, b) = pair();
    let mut sel = S::default();
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

/// Shutting both directions is a hang-up here and EOF at the peer.
pub fn hangup_after_shutdown_both_directions<S: FdSelector>() {
    let (a, b) = pair();
    let mut sel = S::default();
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

/// A refused connect is readable, writable, an error and a hang-up (never invalid),
/// and write interest alone sees the error and the hang-up.
pub fn refused_connect_is_error_and_hangup<S: FdSelector>() {
    // A bound socket that never listens: connecting to its port is refused (RST),
    // and keeping it open keeps the port from being reused meanwhile.
    let closed_port = tcp_socket();
    bind(closed_port.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).expect("bind");
    let addr = getsockname::<SockaddrIn>(closed_port.as_raw_fd()).expect("getsockname");

    let client = tcp_connect_start(&addr);
    let mut sel = S::default();
    let r = wait_for(
        &mut sel,
        client.as_raw_fd(),
        Interest::BOTH,
        Readiness::ERROR | Readiness::HANGUP,
    );
    assert_eq!(
        r,
        Readiness::READABLE | Readiness::WRITABLE | Readiness::ERROR | Readiness::HANGUP
    );
    // Write interest alone (a connecting channel that is not readable) sees it too.
    let r = select_one(&mut sel, client.as_raw_fd(), Interest::WRITABLE, ZERO);
    assert!(r.contains(Readiness::ERROR | Readiness::HANGUP), "{r:?}");
    assert_eq!(
        getsockopt(&client, sockopt::SocketError),
        Ok(Errno::ECONNREFUSED as i32)
    );
}

/// One wait through a [`Waiter`] over `regs`: the readiness of each.
pub fn pass<S: Selector>(sel: &mut Waiter<S>, regs: &[Registration<S::Source>]) -> Vec<Readiness> {
    let mut ready = vec![Readiness::EMPTY; regs.len()];
    sel.select(regs, &mut ready, ZERO).expect("select");
    ready
}

/// Registration changes reach the kernel only when there is one: three
/// registrations, passes without change, one interest change, one leaving. Returns
/// the waiter (now with slots 0 and 1 registered, `BOTH` and `READABLE`, over the
/// first two pairs) and the four pairs, for the backend's own continuation.
pub fn changes_only_when_registrations_change<S: FdSelector>(
    backend: &Backend<S>,
) -> (Waiter<S>, Vec<(OwnedFd, OwnedFd)>) {
    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..4).map(|_| pair()).collect();
    let fd = |i: usize| pairs[i].0.as_raw_fd();
    let changes = |sel: &Waiter<S>| (backend.changes)(&sel.sel);
    let mut sel = Waiter::new(S::default());
    assert_eq!(changes(&sel), 0);

    // First pass: three registrations.
    let regs = [
        reg(0, fd(0), Interest::READABLE),
        reg(1, fd(1), Interest::READABLE),
        reg(2, fd(2), Interest::WRITABLE),
    ];
    let ready = pass(&mut sel, &regs);
    assert_eq!(changes(&sel), 3);
    assert_eq!(
        ready,
        [Readiness::EMPTY, Readiness::EMPTY, Readiness::WRITABLE]
    );

    // Same registrations, new readiness: no change told, results still right.
    send_all(pairs[1].1.as_raw_fd(), b"x");
    wait_for(
        &mut S::default(),
        fd(1),
        Interest::READABLE,
        Readiness::READABLE,
    );
    for _ in 0..3 {
        let ready = pass(&mut sel, &regs);
        assert_eq!(
            ready,
            [Readiness::EMPTY, Readiness::READABLE, Readiness::WRITABLE]
        );
    }
    assert_eq!(changes(&sel), 3);
    assert_eq!((backend.waits)(&sel.sel), 4);

    // One interest changes: one change.
    let regs = [
        reg(0, fd(0), Interest::BOTH),
        reg(1, fd(1), Interest::READABLE),
        reg(2, fd(2), Interest::WRITABLE),
    ];
    let ready = pass(&mut sel, &regs);
    assert_eq!(changes(&sel), 4);
    assert_eq!(
        ready,
        [
            Readiness::WRITABLE,
            Readiness::READABLE,
            Readiness::WRITABLE
        ]
    );

    // The last one leaves: one change.
    let ready = pass(&mut sel, &regs[..2]);
    assert_eq!(changes(&sel), 5);
    assert_eq!(ready, [Readiness::WRITABLE, Readiness::READABLE]);
    (sel, pairs)
}

/// With nothing registered a wait sleeps for the timeout (one system call), and a
/// sub-millisecond timeout sleeps too (rounded up to 1 ms rather than a non-blocking
/// wait; the rounding itself is checked on `timeout_to_millis`, no clock is read
/// here).
pub fn no_registrations_sleeps_for_the_timeout<S: FdSelector>(backend: &Backend<S>, sel: &mut S) {
    let mut buf = [Event::EMPTY; 1];
    let timeout = Duration::from_millis(20);
    assert_eq!(
        sel.select(&mut Events::new(&mut buf), Some(timeout))
            .expect("select"),
        0
    );
    assert_eq!((backend.waits)(sel), 1);
    assert_eq!(
        sel.select(&mut Events::new(&mut buf), Some(Duration::from_micros(300)))
            .expect("select"),
        0
    );
    assert_eq!((backend.waits)(sel), 2);
}

/// Registering (with and without interest), changing interest, deregistering, a
/// refused registration and waiting allocate nothing. `allocs_during` runs the
/// closure it is given and returns how many allocations this thread made in it (the
/// test binary's counting allocator). Returns the selector, everything deregistered.
pub fn waits_do_not_allocate<S: FdSelector>(
    allocs_during: impl Fn(&mut dyn FnMut()) -> usize,
) -> S {
    // The counter works.
    let n = allocs_during(&mut || {
        std::hint::black_box(Box::new(1u64));
    });
    assert!(n >= 1);

    let pairs: Vec<(OwnedFd, OwnedFd)> = (0..4).map(|_| pair()).collect();
    send_all(pairs[0].1.as_raw_fd(), b"x");
    let mut sel = S::default();
    let fd = |i: usize| pairs[i].0.as_raw_fd();
    let t = |i: u32| Token::new(i, 0);
    let mut buf = [Event::EMPTY; 8];

    let mut results = [false; 16];
    let n = allocs_during(&mut || {
        results = [
            // The first register may create kernel state (the epoll fd).
            sel.register(t(0), fd(0), Interest::READABLE).is_ok(),
            sel.register(t(1), fd(1), Interest::BOTH).is_ok(),
            sel.register(t(2), fd(2), Interest::NONE).is_ok(),
            sel.register(t(3), fd(3), Interest::WRITABLE).is_ok(),
            sel.select(&mut Events::new(&mut buf), Some(Duration::from_millis(1)))
                .is_ok_and(|n| n == 3),
            sel.select(&mut Events::new(&mut buf), Some(Duration::ZERO))
                .is_ok(),
            sel.reregister(t(1), fd(1), Interest::BOTH, Interest::NONE)
                .is_ok(),
            sel.reregister(t(2), fd(2), Interest::NONE, Interest::READABLE)
                .is_ok(),
            sel.reregister(t(3), fd(3), Interest::WRITABLE, Interest::BOTH)
                .is_ok(),
            {
                sel.deregister(t(2), fd(2), Interest::READABLE);
                true
            },
            sel.select(&mut Events::new(&mut buf), Some(Duration::ZERO))
                .is_ok(),
            sel.select(&mut Events::new(&mut buf[..1]), None).is_ok(),
            // A refusal allocates nothing either: slot 8 is beyond an 8-slot poll
            // selector, and the fd is in the epoll set already (`EEXIST`).
            sel.register(t(8), fd(0), Interest::READABLE).is_err(),
            {
                sel.deregister(t(0), fd(0), Interest::READABLE);
                sel.deregister(t(3), fd(3), Interest::BOTH);
                sel.deregister(t(1), fd(1), Interest::NONE);
                true
            },
            sel.select(&mut Events::new(&mut buf), Some(Duration::from_micros(10)))
                .is_ok(),
            true,
        ];
    });
    assert_eq!(n, 0, "registering or waiting allocated");
    assert!(results.iter().all(|&ok| ok), "{results:?}");
    sel
}

/// Sends SIGUSR1 to `target` every `period` until `done`; runs `after()` once
/// `trigger` signals were sent. Returns how many were sent.
fn signaller(
    target: sigusr1::Target,
    done: Arc<AtomicBool>,
    period: Duration,
    trigger: u32,
    after: impl FnOnce() + Send + 'static,
) -> thread::JoinHandle<u32> {
    thread::spawn(move || {
        let mut sent = 0;
        let mut after = Some(after);
        while !done.load(Ordering::Acquire) {
            target.signal();
            sent += 1;
            if sent == trigger
                && let Some(f) = after.take()
            {
                f();
            }
            thread::sleep(period);
        }
        sent
    })
}

/// `EINTR` is retried: signals sent every 2 ms to a thread in a wait without limit
/// (handler installed without `SA_RESTART`) neither fail the wait nor end it before
/// the peer writes. Installs a process-wide SIGUSR1 handler: run it in a test binary
/// of its own.
pub fn signals_during_an_unbounded_wait_do_not_end_it<S: FdSelector>(backend: &Backend<S>) {
    sigusr1::install_handler();
    let (a, b) = pair();
    let mut sel = S::default();
    let done = Arc::new(AtomicBool::new(false));
    // After 25 signals (about 50 ms) the peer writes; signals go on until we return.
    // `b` itself stays here: closing it would add a hang-up.
    let peer = b.as_raw_fd();
    let helper = signaller(
        sigusr1::Target::me(),
        done.clone(),
        Duration::from_millis(2),
        25,
        move || send_all(peer, b"x"),
    );
    // `None`: without the retry an EINTR would surface as an error; with a retry
    // that forgot the timeout it could not be told apart, so see the next case.
    let r = select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, None);
    done.store(true, Ordering::Release);
    let sent = helper.join().expect("signaller");
    drop(b);
    assert_eq!(r, Readiness::READABLE);
    let interrupted = (backend.interruptions)(&sel);
    println!(
        "{sent} signals sent, {} handled, {interrupted} {} calls interrupted",
        sigusr1::handled(),
        backend.wait_call,
    );
    assert_eq!((backend.waits)(&sel), interrupted + 1);
}

/// `EINTR` is retried with the time that remains: signals throughout a 200 ms wait
/// interrupt it at least once, and every interrupted call is retried until the
/// timeout is used up. Installs a process-wide SIGUSR1 handler: run it in a test
/// binary of its own.
pub fn signals_during_a_timed_wait_do_not_shorten_it<S: FdSelector>(backend: &Backend<S>) {
    sigusr1::install_handler();
    let (a, _b) = pair();
    let mut sel = S::default();
    let done = Arc::new(AtomicBool::new(false));
    let helper = signaller(
        sigusr1::Target::me(),
        done.clone(),
        Duration::from_millis(2),
        u32::MAX,
        || {},
    );
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    let r = select_one(&mut sel, a.as_raw_fd(), Interest::READABLE, Some(timeout));
    let elapsed = start.elapsed();
    done.store(true, Ordering::Release);
    let sent = helper.join().expect("signaller");
    let interrupted = (backend.interruptions)(&sel);
    println!(
        "{sent} signals sent, {interrupted} {} calls interrupted, waited {elapsed:?}",
        backend.wait_call,
    );
    assert_eq!(r, Readiness::EMPTY);
    // The signaller ran throughout a 200 ms sleep: some signal hit it.
    assert!(
        interrupted >= 1,
        "no {} call was interrupted",
        backend.wait_call
    );
    assert_eq!((backend.waits)(&sel), interrupted + 1);
}
