//! The daemon's event sources in a reactor, on `select(2)`, `poll(2)` and `epoll(7)`: another
//! thread's wake ends a `poll_once(None)`; a real `kill(getpid(), SIGUSR1)` reaches
//! `handle_event`; 50 children ending together are all reaped with their statuses;
//! a child flooding its stdout is read byte-exact through a pipe channel while the
//! reader holds it back.
//!
//! Its own test binary, each test holding one lock: the signal source and signal
//! dispositions are process-wide. Nothing here asserts how long anything took; a
//! watchdog turns a hang into a failure.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use asyncore::{
    AfterEof, AnySelector, Backend, Child, Ctx, Dispatcher, Error, ExitStatus, Recv, SourceEvent,
    State, StdReactor, StdSocket,
};
use nix::libc::{SIGUSR1, SIGUSR2};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getpid};

const BACKENDS: [Backend; 3] = [Backend::Select, Backend::Poll, Backend::Epoll];

/// Against hangs only: a test still running after this fails.
const PATIENCE: Duration = Duration::from_secs(120);

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Ends the process with a failure if not dropped within [`PATIENCE`]: a blocked
/// `poll_once(None)` cannot be interrupted otherwise.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn new(what: &'static str) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(PATIENCE) {
                eprintln!("watchdog: {what} hung for {PATIENCE:?}");
                std::process::exit(101);
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take()); // disconnects: the watchdog thread ends quietly
    }
}

/// Every channel of these tests: sources record their events; a child's stdout is
/// read (at most `per_pass` bytes a pass) and checked against the expected pattern.
enum Probe {
    Source(Vec<SourceEvent>),
    Stdout(Flood),
}

struct Flood {
    pattern: &'static [u8],
    checked: u64,
    per_pass: usize,
    /// EOF or hang-up: the writer is gone.
    ended: bool,
}

impl Dispatcher<StdSocket> for Probe {
    type Error = Error;

    fn handle_event(
        &mut self,
        _: &mut Ctx<'_, StdSocket, Self>,
        e: SourceEvent,
    ) -> Result<(), Error> {
        if let Probe::Source(events) = self {
            events.push(e);
        }
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let Probe::Stdout(f) = self else {
            return Ok(());
        };
        let mut buf = [0u8; 4096];
        let want = f.per_pass.min(buf.len());
        if let Recv::Data(n) = ctx.recv(&mut buf[..want])? {
            for &b in &buf[..n] {
                let expected = f.pattern[(f.checked % f.pattern.len() as u64) as usize];
                assert_eq!(
                    b, expected,
                    "byte {} of the child's output differs",
                    f.checked
                );
                f.checked += 1;
            }
        }
        Ok(())
    }

    fn handle_eof(&mut self, _: &mut Ctx<'_, StdSocket, Self>) -> Result<AfterEof, Error> {
        if let Probe::Stdout(f) = self {
            f.ended = true;
        }
        Ok(AfterEof::Close)
    }

    /// poll(2) reports the writer's close of an empty pipe as a hang-up: that ends
    /// it without a read that sees EOF.
    fn handle_close(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        if let Probe::Stdout(f) = self {
            f.ended = true;
        }
        ctx.close();
        Ok(())
    }
}

type R = StdReactor<Probe, 64>;

fn events(r: &R, token: asyncore::Token) -> &[SourceEvent] {
    match &r.get(token).expect("the source is open").dispatcher {
        Probe::Source(e) => e,
        Probe::Stdout(_) => unreachable!(),
    }
}

#[test]
fn another_threads_wake_ends_an_unbounded_wait() {
    let _serial = serial();
    for backend in BACKENDS {
        let mut r: R = StdReactor::new(AnySelector::new(backend));
        let (channel, waker) = StdSocket::waker().unwrap();
        let t = r.add(channel, Probe::Source(Vec::new())).unwrap();
        let _watchdog = Watchdog::new("poll_once(None) after a wake");
        let (started, go) = mpsc::channel();
        let other = thread::spawn(move || {
            go.recv().unwrap();
            // However early this lands (even before the wait starts), the loop
            // must see it.
            waker.wake();
            waker.wake();
        });
        started.send(()).unwrap();
        // No timeout, nothing timed: only the wake can end this wait.
        let dispatched = r.poll_once(None).expect("poll_once");
        assert_eq!(dispatched, 1, "{backend}");
        other.join().unwrap();
        // Both wakes may have landed before the read, or one after it: one or two
        // Wakes, never more, never none.
        while events(&r, t).len() < 2 && r.poll_once(Some(Duration::ZERO)).unwrap() > 0 {}
        let got = events(&r, t);
        assert!(
            !got.is_empty() && got.len() <= 2 && got.iter().all(|e| *e == SourceEvent::Wake),
            "{backend}: {got:?}"
        );
    }
}

#[test]
fn a_real_sigusr1_reaches_handle_event() {
    let _serial = serial();
    for backend in BACKENDS {
        let mut r: R = StdReactor::new(AnySelector::new(backend));
        let signals = StdSocket::signals(&[SIGUSR1, SIGUSR2]).unwrap();
        let t = r.add(signals, Probe::Source(Vec::new())).unwrap();
        let _watchdog = Watchdog::new("waiting for SIGUSR1");
        kill(getpid(), Signal::SIGUSR1).expect("kill");
        while events(&r, t).is_empty() {
            r.poll_once(None).expect("poll_once");
        }
        assert_eq!(events(&r, t), [SourceEvent::Signal(SIGUSR1)], "{backend}");
        r.close_all().unwrap(); // the source closes: the next backend opens its own
    }
}

#[test]
fn fifty_children_ending_together_are_all_reaped_with_their_statuses() {
    let _serial = serial();
    const CHILDREN: usize = 50;
    for backend in BACKENDS {
        let mut r: R = StdReactor::new(AnySelector::new(backend));
        let signals = StdSocket::signals(&[]).unwrap();
        let t = r.add(signals, Probe::Source(Vec::new())).unwrap();
        let _watchdog = Watchdog::new("waiting for 50 exits");
        // Each child waits for EOF on its stdin, then exits with its own status.
        let mut children = Vec::new();
        let mut stdins = Vec::new();
        let mut expected = HashMap::new();
        for i in 0..CHILDREN {
            let mut spawned = Child::spawn(
                Command::new("sh")
                    .arg("-c")
                    .arg(format!("read _; exit {i}"))
                    .stdin(Stdio::piped()),
            )
            .expect("spawn");
            expected.insert(spawned.child.pid(), ExitStatus::Code(i as i32));
            stdins.push(spawned.stdin.take().unwrap());
            children.push(spawned.child);
        }
        // All fifty end at once: their SIGCHLDs coalesce.
        drop(stdins);
        while events(&r, t).len() < CHILDREN {
            r.poll_once(None).expect("poll_once");
        }
        let mut got = HashMap::new();
        for e in events(&r, t) {
            let SourceEvent::Exit { pid, status } = *e else {
                panic!("{backend}: unexpected {e:?}");
            };
            assert!(got.insert(pid, status).is_none(), "{backend}: {pid} twice");
        }
        assert_eq!(got, expected, "{backend}");
        // No zombie: every one is reaped (no longer waitable) while its handle lives.
        for c in &children {
            assert_eq!(
                nix::sys::wait::waitpid(
                    Pid::from_raw(c.pid() as i32),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG)
                ),
                Err(nix::errno::Errno::ECHILD),
                "{backend}: child {} not reaped",
                c.pid()
            );
        }
        r.close_all().unwrap();
    }
}

#[test]
fn a_child_flooding_stdout_is_read_byte_exact_under_back_pressure() {
    let _serial = serial();
    const LINE: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n";
    const TOTAL: u64 = 8 << 20;
    for backend in BACKENDS {
        let mut r: R = StdReactor::new(AnySelector::new(backend));
        let signals = StdSocket::signals(&[]).unwrap();
        let t = r.add(signals, Probe::Source(Vec::new())).unwrap();
        let _watchdog = Watchdog::new("reading a flood");
        // `yes` writes as fast as the pipe takes it; we read 1 KiB a pass, so the
        // pipe stays full and the child blocks (back-pressure) most of the time.
        let spawned = Child::spawn(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "yes {} | head -c {TOTAL}",
                    std::str::from_utf8(&LINE[..LINE.len() - 1]).unwrap()
                ))
                .stdout(Stdio::piped()),
        )
        .expect("spawn");
        let out = r
            .add(
                spawned.stdout.unwrap(),
                Probe::Stdout(Flood {
                    pattern: LINE,
                    checked: 0,
                    per_pass: 1024,
                    ended: false,
                }),
            )
            .unwrap();
        r.keep_when_closed(out);
        let pid = spawned.child.pid();
        while !events(&r, t)
            .iter()
            .any(|e| matches!(e, SourceEvent::Exit { .. }))
            || r.get(out).is_some_and(|c| c.state != State::Closed)
        {
            r.poll_once(None).expect("poll_once");
        }
        let Some(Probe::Stdout(f)) = r.take_closed(out) else {
            panic!("{backend}: the stdout channel's dispatcher was not kept");
        };
        assert!(f.ended, "{backend}: closed without EOF or hang-up");
        assert_eq!(f.checked, TOTAL, "{backend}: every byte, in order");
        assert_eq!(
            events(&r, t),
            [SourceEvent::Exit {
                pid,
                status: ExitStatus::Code(0)
            }],
            "{backend}"
        );
        r.close_all().unwrap();
    }
}
