//! The signal source and the child table, without a reactor: signals raised for
//! real (`kill(getpid())`) come out of `next_event` once each, lowest first; closing
//! puts the previous dispositions back; children's exits come out with their
//! statuses; a dropped `Child` is killed and reaped; none of our fds reaches a child.
//!
//! Its own test binary, every test holding one lock: signal dispositions and the
//! signal source are process-wide. The waits below only turn a hang into a failure.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use asyncore_core::{ErrorKind, ExitStatus, Interest, Socket, SourceEvent, State};
use asyncore_std::{Child, Kind, SpawnError, StdSocket};
use common::wait_fd;
use nix::libc::{self, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::{Pid, getpid};

/// Against hangs only.
const PATIENCE: Duration = Duration::from_secs(60);

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Raises `signal` at the process (`kill(getpid())`): any thread that does not block
/// it may take it, perhaps after this returns. A test raises each signal once this
/// way and waits until it came out: an instance still in flight when the test ends
/// would meet the default disposition and end the test process.
fn raise(signal: i32) {
    kill(getpid(), Signal::try_from(signal).unwrap()).expect("kill");
}

/// Raises `signal` at this thread, which does not block it: its handler has run
/// when this returns.
fn raise_here(signal: Signal) {
    nix::sys::pthread::pthread_kill(nix::sys::pthread::pthread_self(), signal).unwrap();
}

/// Waits until the source is readable, then takes every event it holds.
fn next_events(source: &mut StdSocket) -> Vec<SourceEvent> {
    let ready = wait_fd(source.as_raw_fd(), Interest::READABLE, PATIENCE);
    assert!(
        ready.is_readable(),
        "the signal source never became readable"
    );
    std::iter::from_fn(|| source.next_event()).collect()
}

/// Waits for the events of `source` until `done` says enough was collected.
fn collect_until(
    source: &mut StdSocket,
    done: impl Fn(&[SourceEvent]) -> bool,
) -> Vec<SourceEvent> {
    let mut events = Vec::new();
    while !done(&events) {
        events.extend(next_events(source));
    }
    events
}

#[test]
fn a_raised_signal_comes_out_once_and_in_order() {
    let _serial = serial();
    let mut source = StdSocket::signals(&[SIGUSR2, SIGUSR1, SIGHUP]).unwrap();
    assert_eq!(source.initial_state(), State::Source);
    assert_eq!(source.kind(), Kind::Signals);
    assert_eq!(source.next_event(), None, "nothing raised yet");
    // Each once (a signal raised again before it is taken is one signal, tested with
    // thread-directed signals below; raised again after, a late instance could reach
    // the default disposition once this test closed the source).
    raise(SIGUSR2);
    raise(SIGUSR1);
    raise(SIGHUP);
    // kill(getpid()) delivers before it returns when this thread can take the
    // signal, but another thread may take it instead: collect until all are in.
    let events = collect_until(&mut source, |e| {
        [SIGUSR2, SIGUSR1, SIGHUP]
            .iter()
            .all(|s| e.contains(&SourceEvent::Signal(*s)))
    });
    let mut signals: Vec<i32> = events
        .iter()
        .map(|e| match e {
            SourceEvent::Signal(s) => *s,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let delivered = signals.clone();
    signals.sort_unstable();
    signals.dedup();
    assert_eq!(
        signals,
        [SIGHUP, SIGUSR1, SIGUSR2],
        "each once: {delivered:?}"
    );
    assert_eq!(source.next_event(), None);
}

#[test]
fn pending_signals_are_delivered_lowest_first() {
    let _serial = serial();
    let mut source = StdSocket::signals(&[SIGUSR2, SIGUSR1, SIGHUP]).unwrap();
    // Block them in this thread while raising, so they are all pending before any
    // is taken... process-directed signals may still go to another thread, so
    // raise them at this thread only.
    let set = {
        let mut set = SigSet::empty();
        for s in [Signal::SIGUSR2, Signal::SIGUSR1, Signal::SIGHUP] {
            set.add(s);
        }
        set
    };
    set.thread_block().unwrap();
    for s in [
        Signal::SIGUSR2,
        Signal::SIGUSR2,
        Signal::SIGUSR1,
        Signal::SIGHUP,
    ] {
        raise_here(s);
    }
    // Unblocking runs the three handlers (pending thread-directed signals are
    // delivered before pthread_sigmask returns), all before the first next_event.
    set.thread_unblock().unwrap();
    assert_eq!(
        next_events(&mut source),
        [
            SourceEvent::Signal(SIGHUP),
            SourceEvent::Signal(SIGUSR1),
            SourceEvent::Signal(SIGUSR2)
        ]
    );
}

static OLD_HANDLER_RAN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn old_handler(_: libc::c_int) {
    OLD_HANDLER_RAN.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn closing_puts_the_previous_disposition_back_and_forgets_pending_signals() {
    let _serial = serial();
    let old = SigAction::new(
        SigHandler::Handler(old_handler),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only increments an atomic.
    let before = unsafe { sigaction(Signal::SIGUSR2, &old) }.unwrap();

    let mut source = StdSocket::signals(&[SIGUSR2]).unwrap();
    let ran = OLD_HANDLER_RAN.load(Ordering::SeqCst);
    // At this thread: the handler has run when the call returns, so no instance is
    // in flight across the dispositions this test changes.
    raise_here(Signal::SIGUSR2);
    assert_eq!(
        OLD_HANDLER_RAN.load(Ordering::SeqCst),
        ran,
        "the source's handler replaced the old one"
    );
    assert_eq!(source.next_event(), Some(SourceEvent::Signal(SIGUSR2)));
    source.close().unwrap();
    assert!(source.is_closed());
    raise_here(Signal::SIGUSR2);
    assert_eq!(
        OLD_HANDLER_RAN.load(Ordering::SeqCst),
        ran + 1,
        "the old handler is back"
    );
    // A new source starts with nothing pending.
    let mut again = StdSocket::signals(&[SIGUSR2]).unwrap();
    assert_eq!(again.next_event(), None, "nothing from before the close");
    drop(again);
    // SAFETY: puts back what the process had before this test.
    unsafe { sigaction(Signal::SIGUSR2, &before) }.unwrap();
}

#[test]
fn one_source_per_process() {
    let _serial = serial();
    let first = StdSocket::signals(&[SIGUSR1]).unwrap();
    let second = StdSocket::signals(&[SIGUSR2]).unwrap_err();
    assert_eq!(second.kind(), ErrorKind::AlreadyExists);
    drop(first);
    let third = StdSocket::signals(&[SIGUSR2]).expect("free again once closed");
    drop(third);
}

#[test]
fn signals_that_cannot_be_handled_are_refused() {
    let _serial = serial();
    for bad in [
        0,
        -1,
        65,
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
    ] {
        let e = StdSocket::signals(&[SIGUSR1, bad]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "signal {bad}");
    }
    // Nothing was left behind: a source opens.
    drop(StdSocket::signals(&[SIGUSR1]).unwrap());
}

#[test]
fn a_real_time_signal_is_delivered_too() {
    let _serial = serial();
    let rt = libc::SIGRTMIN() + 2;
    let mut source = StdSocket::signals(&[rt]).unwrap();
    // SAFETY: kill takes no pointers.
    assert_eq!(unsafe { libc::kill(libc::getpid(), rt) }, 0);
    assert_eq!(
        collect_until(&mut source, |e| !e.is_empty()),
        [SourceEvent::Signal(rt)]
    );
}

#[test]
fn into_fd_of_the_signal_source_closes_it() {
    let _serial = serial();
    let source = StdSocket::signals(&[SIGUSR1]).unwrap();
    assert!(source.into_fd().is_none());
    drop(StdSocket::signals(&[SIGUSR1]).expect("the source was closed"));
}

#[test]
fn spawning_needs_a_signal_source() {
    let _serial = serial();
    let e = Child::spawn(&mut Command::new("true")).unwrap_err();
    assert!(matches!(e, SpawnError::NoSignalSource), "{e}");
}

/// Spawns `sh -c script`.
fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

#[test]
fn exits_come_with_their_status_and_sigchld_only_when_asked_for() {
    let _serial = serial();
    let mut source = StdSocket::signals(&[]).unwrap();
    let code = Child::spawn(&mut sh("exit 7")).unwrap().child;
    let killed = Child::spawn(&mut sh("kill -TERM $$")).unwrap().child;
    let events = collect_until(&mut source, |e| e.len() >= 2);
    let mut got: HashMap<u32, ExitStatus> = HashMap::new();
    for e in events {
        match e {
            SourceEvent::Exit { pid, status } => {
                assert!(got.insert(pid, status).is_none(), "{pid} reported twice");
            }
            other => panic!("SIGCHLD was not asked for, yet {other:?}"),
        }
    }
    assert_eq!(got[&code.pid()], ExitStatus::Code(7));
    assert_eq!(got[&killed.pid()], ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(code.status(), Some(ExitStatus::Code(7)));
    assert!(
        code.kill(libc::SIGTERM).is_err(),
        "reaped: no longer ours to signal"
    );
    drop(source);

    let mut source = StdSocket::signals(&[SIGCHLD]).unwrap();
    let child = Child::spawn(&mut sh("exit 0")).unwrap().child;
    let events = collect_until(&mut source, |e| {
        e.iter().any(|e| matches!(e, SourceEvent::Exit { .. }))
    });
    assert!(events.contains(&SourceEvent::Exit {
        pid: child.pid(),
        status: ExitStatus::Code(0)
    }));
    assert!(
        events.contains(&SourceEvent::Signal(SIGCHLD)),
        "asked for: {events:?}"
    );
}

#[test]
fn a_child_that_ended_while_no_source_was_open_is_reaped_when_one_opens() {
    let _serial = serial();
    let source = StdSocket::signals(&[]).unwrap();
    let mut spawned = Child::spawn(sh("read x; exit 4").stdin(Stdio::piped())).unwrap();
    drop(source);
    drop(spawned.stdin.take()); // EOF: it ends now, unseen
    std::thread::sleep(Duration::from_millis(50));
    let mut source = StdSocket::signals(&[]).unwrap();
    let events = collect_until(&mut source, |e| !e.is_empty());
    assert_eq!(
        events,
        [SourceEvent::Exit {
            pid: spawned.child.pid(),
            status: ExitStatus::Code(4)
        }]
    );
}

#[test]
fn a_dropped_child_is_killed_and_reaped() {
    let _serial = serial();
    let _source = StdSocket::signals(&[]).unwrap();
    let spawned = Child::spawn(Command::new("sleep").arg("1000")).unwrap();
    let pid = Pid::from_raw(spawned.child.pid() as i32);
    drop(spawned);
    // Reaped: no longer our child (a zombie would still be waitable).
    assert_eq!(
        nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
        Err(nix::errno::Errno::ECHILD)
    );
}

#[test]
fn none_of_our_fds_reaches_a_child() {
    let _serial = serial();
    // What this process inherited without close-on-exec (a test runner's fds) is
    // the runner's business: those reach the child whatever we do.
    let inherited = inheritable_fds();
    // Every kind of fd this crate opens, open while the child starts.
    let _source = StdSocket::signals(&[SIGUSR1]).unwrap();
    let (_waker_channel, _waker) = StdSocket::waker().unwrap();
    let _listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 1).unwrap();
    let (_a, _b) = StdSocket::pair().unwrap();
    let _file = StdSocket::file(std::io::stdin()).unwrap();
    // `ls` lists its own fds: 0, 1, 2 and the directory it reads.
    let spawned = Child::spawn(
        Command::new("ls")
            .arg("/proc/self/fd")
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let fd = spawned.stdout.unwrap().into_fd().unwrap();
    let mut out = String::new();
    let mut file = std::fs::File::from(fd);
    // The pipe is non-blocking: wait for each chunk.
    loop {
        let ready = wait_fd(file.as_raw_fd(), Interest::READABLE, PATIENCE);
        assert!(ready.is_readable(), "ls wrote nothing");
        let mut chunk = [0u8; 4096];
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.push_str(std::str::from_utf8(&chunk[..n]).unwrap()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    let fds: Vec<i32> = out.split_whitespace().map(|f| f.parse().unwrap()).collect();
    let extra: Vec<i32> = fds
        .iter()
        .copied()
        .filter(|f| *f > 2 && !inherited.contains(f))
        .collect();
    // One extra: the directory `ls` reads.
    assert_eq!(
        extra.len(),
        1,
        "the child had more than stdio, its own directory and what this process \
         inherited ({inherited:?}) open: {fds:?}"
    );
}

/// The fds of this process above 2 without `FD_CLOEXEC`.
fn inheritable_fds() -> Vec<i32> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let fd: i32 = entry
            .unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // SAFETY: F_GETFD takes no pointer; a number that is no longer open (the
        // directory being read) just fails.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if fd > 2 && flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            fds.push(fd);
        }
    }
    fds
}
