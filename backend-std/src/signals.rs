//! The signal source: `sigaction` handlers that note a signal in a static pending
//! set and write one byte to a self-pipe, whose read end is a channel.
//!
//! Everything here is process-wide (signal dispositions are), so the state lives in
//! statics and there is at most one signal source per process.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering::SeqCst};

use asyncore_core::{ErrorKind, SocketError, SourceEvent};
use nix::errno::Errno;
use nix::libc::{self, c_int};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet};

use crate::error::from_errno;
use crate::{Kind, StdSocket, child};

/// The highest signal number a source watches (Linux's `SIGRTMAX` on every
/// architecture this crate builds for but MIPS).
pub const MAX_SIGNAL: i32 = 64;

/// A source is open.
static OPEN: AtomicBool = AtomicBool::new(false);
/// The self-pipe's write end, `-1` while no source is open.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
/// The process that opened the source: a forked child running our handler writes
/// nothing (it would wake its parent's loop for a signal of its own).
static OWNER: AtomicI32 = AtomicI32::new(0);
/// Handlers running now (any thread): closing waits for them before closing the
/// write end, so no handler writes to a number that was closed and reused.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Signals raised and not yet delivered: bit `n - 1` for signal `n`.
static PENDING: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
/// Signals the source was asked for (delivered as `Signal(n)`); `SIGCHLD` is
/// always handled, for the child table, but delivered only if asked for.
static WATCHED: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
/// The dispositions our handlers replaced, by signal number, put back on close.
static SAVED: Mutex<Saved> = Mutex::new([None; MAX_SIGNAL as usize + 1]);

/// Previous dispositions by signal number.
type Saved = [Option<libc::sigaction>; MAX_SIGNAL as usize + 1];

fn word_bit(signal: c_int) -> (usize, u32) {
    let i = (signal - 1) as usize;
    (i / 32, 1 << (i % 32))
}

fn in_set(set: &[AtomicU32; 2], signal: c_int) -> bool {
    let (w, b) = word_bit(signal);
    set[w].load(SeqCst) & b != 0
}

/// Notes `signal` as pending and makes the pipe readable. Async-signal-safe: two
/// atomic operations and one `write(2)` to a non-blocking pipe (a full pipe is
/// readable anyway).
fn raise(signal: c_int) {
    let (w, b) = word_bit(signal);
    PENDING[w].fetch_or(b, SeqCst);
    notify();
}

/// One byte into the self-pipe, if a source is open.
fn notify() {
    let fd = WRITE_FD.load(SeqCst);
    if fd >= 0 {
        let byte = [1u8];
        // SAFETY: `fd` is the pipe's write end, open while WRITE_FD holds it (closing
        // clears WRITE_FD and waits for running handlers before closing the fd); the
        // buffer is one valid byte. write(2) is async-signal-safe.
        let _ = unsafe { libc::write(fd, byte.as_ptr().cast(), 1) };
    }
}

/// The handler of every watched signal. Only async-signal-safe work: atomics,
/// `getpid(2)`, `write(2)`; `errno` is saved and restored.
extern "C" fn on_signal(signal: c_int) {
    let errno = Errno::last_raw();
    IN_FLIGHT.fetch_add(1, SeqCst);
    if (1..=MAX_SIGNAL).contains(&signal) && nix::unistd::getpid().as_raw() == OWNER.load(SeqCst) {
        raise(signal);
    }
    IN_FLIGHT.fetch_sub(1, SeqCst);
    Errno::set_raw(errno);
}

/// Takes the lowest pending signal off the pending set.
fn take_lowest() -> Option<c_int> {
    for (w, word) in PENDING.iter().enumerate() {
        loop {
            let v = word.load(SeqCst);
            if v == 0 {
                break;
            }
            let bit = 1u32 << v.trailing_zeros();
            if word.fetch_and(!bit, SeqCst) & bit != 0 {
                return Some((w * 32) as c_int + v.trailing_zeros() as c_int + 1);
            }
        }
    }
    None
}

/// Signals a source refuses: those that cannot be caught, and the synchronous fault
/// signals, whose handler must not simply return (the faulting instruction would run
/// again at once).
fn refused(signal: c_int) -> bool {
    !(1..=MAX_SIGNAL).contains(&signal)
        || [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
        ]
        .contains(&signal)
}

fn invalid() -> SocketError {
    SocketError::new(ErrorKind::InvalidInput, libc::EINVAL)
}

/// Whether a signal source is open (children can be spawned).
pub(crate) fn is_open() -> bool {
    OPEN.load(SeqCst)
}

/// Makes the source readable and `SIGCHLD` pending, so the child table is looked at
/// on the next pass: a child that ended before it entered the table is reaped too.
pub(crate) fn raise_sigchld() {
    raise(libc::SIGCHLD);
}

impl StdSocket {
    /// The process's signal source: from now on, each of `signals` is caught by a
    /// handler that only notes it, and this channel (starting
    /// [`State::Source`](asyncore_core::State::Source)) hands it to `handle_event` as
    /// [`SourceEvent::Signal`] on the loop thread. The same channel reports the exits
    /// of the children [`Child::spawn`](crate::Child::spawn) started, as
    /// [`SourceEvent::Exit`].
    ///
    /// # Design: a self-pipe
    ///
    /// Each handler (installed with `sigaction`, `SA_RESTART`) does only
    /// async-signal-safe work: it sets the signal's bit in a static pending set (one
    /// atomic `fetch_or`), writes one byte to a non-blocking, close-on-exec pipe whose
    /// read end is this channel, and saves and restores `errno`. The loop wakes at
    /// once; the channel empties the pipe and delivers each pending signal **once**,
    /// lowest number first, however often it was raised meanwhile. The pending set
    /// has one bit per signal (1 to [`MAX_SIGNAL`]): fixed memory, nothing lost but
    /// repetitions. A signal raised while the loop is delivering is either taken in
    /// the same pass or leaves a byte in the pipe for the next one. (No `signalfd`:
    /// it only sees signals blocked in every thread, so other code that unblocks them,
    /// and every child, which inherits the mask, would break it.)
    ///
    /// # Children
    ///
    /// `SIGCHLD` is always caught (`SA_NOCLDSTOP`), whether asked for or not: on it
    /// the source calls `waitpid(pid, WNOHANG)` for each child of the table
    /// ([`Child::spawn`](crate::Child::spawn)) that is still running, so one `SIGCHLD`
    /// standing for several exits misses none, and no child stays a zombie. Exits are
    /// delivered after the pending signals, in the order they were reaped.
    /// `Signal(SIGCHLD)` itself is delivered only if `signals` holds it. Children
    /// started otherwise (`std::process::Command` directly) are left to their owner:
    /// the source never waits for any pid but its own.
    ///
    /// # One per process; closing
    ///
    /// Dispositions are process-wide, so a second source while one is open is
    /// `AlreadyExists`. Closing the channel (or dropping it, or the reactor's
    /// `close_all`) puts back every disposition the source replaced, retires the pipe
    /// (waiting for handlers running on other threads to finish first, so none writes
    /// to a reused fd number) and forgets signals still pending. Children keep running:
    /// their [`Child`](crate::Child) handles still kill and reap them when dropped, but
    /// their exits are reported only once a source is open again (opening one looks at
    /// the table at once).
    ///
    /// # Threads
    ///
    /// The kernel runs a handler on any thread that does not block the signal; the
    /// pipe tells the loop thread, wherever the handler ran. Blocking one of these
    /// signals in some threads is fine; blocking it in every thread (or waiting for it
    /// with `sigwait`) keeps it from the source. `SA_RESTART` spares other threads'
    /// blocking calls most `EINTR`s.
    ///
    /// # `fork` and `exec`
    ///
    /// A child inherits the handlers until it calls `exec`, which resets every caught
    /// signal to its default (the pending set and the pipe are ours: the pipe is
    /// close-on-exec). Between `fork` and `exec`, or in a child that never calls
    /// `exec`, the handler sees that it runs in another process and does nothing, so
    /// a child's signal never wakes the parent's loop; such a child that wants the
    /// default behaviour back must reset the dispositions itself. `std::process`
    /// (which [`Child::spawn`](crate::Child::spawn) uses) also empties the child's
    /// signal mask and puts `SIGPIPE` back to its default before `exec`.
    ///
    /// ```no_run
    /// use asyncore_std::StdSocket;
    /// use nix::libc::{SIGINT, SIGTERM};
    ///
    /// let signals = StdSocket::signals(&[SIGINT, SIGTERM])?;
    /// // reactor.add(signals, Stop)...: its handle_event gets Signal(SIGINT), ...
    /// # drop(signals);
    /// # Ok::<(), asyncore_core::SocketError>(())
    /// ```
    ///
    /// # Errors
    /// `AlreadyExists` (`EEXIST`) while another signal source is open;
    /// `InvalidInput` (`EINVAL`) for a number outside 1 to [`MAX_SIGNAL`], for
    /// `SIGKILL` and `SIGSTOP` (they cannot be caught), for the fault signals
    /// `SIGSEGV`, `SIGBUS`, `SIGFPE` and `SIGILL` (a handler that returns would fault
    /// again), and for numbers the C library keeps for itself; `OutOfMemory` when no
    /// fd is free for the pipe. Nothing is changed on failure.
    pub fn signals(signals: &[c_int]) -> Result<StdSocket, SocketError> {
        if signals.iter().any(|&s| refused(s)) {
            return Err(invalid());
        }
        if OPEN.compare_exchange(false, true, SeqCst, SeqCst).is_err() {
            return Err(SocketError::new(ErrorKind::AlreadyExists, libc::EEXIST));
        }
        match open(signals) {
            Ok(socket) => Ok(socket),
            Err(e) => {
                OPEN.store(false, SeqCst);
                Err(e)
            }
        }
    }
}

/// Opens the source once `OPEN` is ours.
fn open(signals: &[c_int]) -> Result<StdSocket, SocketError> {
    use nix::fcntl::OFlag;
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(from_errno)?;
    for word in PENDING.iter().chain(WATCHED.iter()) {
        word.store(0, SeqCst);
    }
    for &s in signals {
        let (w, b) = word_bit(s);
        WATCHED[w].fetch_or(b, SeqCst);
    }
    OWNER.store(nix::unistd::getpid().as_raw(), SeqCst);
    WRITE_FD.store(write.as_raw_fd(), SeqCst);
    // The write end now belongs to WRITE_FD until `close_source` closes it.
    let write = into_raw(write);

    let mut saved = SAVED.lock().unwrap_or_else(|p| p.into_inner());
    let mut install = |signal: c_int, flags: SaFlags| -> Result<(), SocketError> {
        if saved[signal as usize].is_some() {
            return Ok(()); // listed twice
        }
        let action = SigAction::new(SigHandler::Handler(on_signal), flags, SigSet::empty());
        saved[signal as usize] = Some(raw_sigaction(signal, &action.into())?);
        Ok(())
    };
    let mut result = install(libc::SIGCHLD, SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP);
    for &s in signals {
        if result.is_err() {
            break;
        }
        result = install(s, SaFlags::SA_RESTART);
    }
    if let Err(e) = result {
        restore(&mut saved);
        drop(saved);
        retire_pipe(write);
        return Err(e);
    }
    drop(saved);
    // Children that ended while no source was open are reaped now.
    if child::running() > 0 {
        raise_sigchld();
    }
    Ok(StdSocket::source_channel(read, Kind::Signals))
}

fn into_raw(fd: OwnedFd) -> RawFd {
    std::os::fd::IntoRawFd::into_raw_fd(fd)
}

/// `sigaction(2)` with the C library's structure, for every signal number (nix's
/// `Signal` does not name the real-time ones): installs `action`, returns the
/// previous one.
fn raw_sigaction(signal: c_int, action: &libc::sigaction) -> Result<libc::sigaction, SocketError> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: both pointers are valid for one `sigaction` each. The handler `action`
    // installs is either `on_signal` (async-signal-safe: atomics, getpid, write,
    // errno saved and restored) or a disposition the kernel returned before, put back
    // as it was.
    let r = unsafe { libc::sigaction(signal, action, old.as_mut_ptr()) };
    if r != 0 {
        return Err(from_errno(Errno::last()));
    }
    // SAFETY: sigaction succeeded, so it wrote the previous action into `old`.
    Ok(unsafe { old.assume_init() })
}

/// Puts back the dispositions saved in `saved`.
fn restore(saved: &mut Saved) {
    for (signal, action) in saved.iter_mut().enumerate() {
        if let Some(previous) = action.take() {
            let _ = raw_sigaction(signal as c_int, &previous);
        }
    }
}

/// Stops handlers from writing to `write`, waits for the ones running, closes it.
fn retire_pipe(write: RawFd) {
    WRITE_FD.store(-1, SeqCst);
    // A handler that incremented IN_FLIGHT before our store may still write; one
    // that increments after it reads -1 (SeqCst orders the two). Handlers are a few
    // instructions long.
    while IN_FLIGHT.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
    // SAFETY: `write` is the pipe's write end, owned by WRITE_FD until now; no
    // handler can use it any more.
    drop(unsafe { OwnedFd::from_raw_fd(write) });
}

/// Closes the source (its read end is closed by the caller afterwards).
pub(crate) fn close_source() {
    if !OPEN.load(SeqCst) {
        return;
    }
    let mut saved = SAVED.lock().unwrap_or_else(|p| p.into_inner());
    restore(&mut saved);
    drop(saved);
    let write = WRITE_FD.load(SeqCst);
    if write >= 0 {
        retire_pipe(write);
    }
    for word in PENDING.iter().chain(WATCHED.iter()) {
        word.store(0, SeqCst);
    }
    OPEN.store(false, SeqCst);
}

/// The pending set's next event: the lowest pending signal that was asked for
/// (a pending `SIGCHLD` reaps the child table on its way), else the oldest exit.
fn take_one() -> Option<SourceEvent> {
    while let Some(signal) = take_lowest() {
        if signal == libc::SIGCHLD {
            child::reap();
        }
        if in_set(&WATCHED, signal) {
            return Some(SourceEvent::Signal(signal));
        }
    }
    child::next_exit()
}

/// The signal source's next event (see [`StdSocket::signals`]).
///
/// The pipe is emptied only when nothing is left to deliver, and the pending set is
/// looked at again afterwards: a signal raised after that look left its byte in the
/// pipe, so the channel is readable again next pass and nothing waits unseen. When
/// the second look finds something, a byte goes back into the pipe, so that events
/// left over by a pass that stops early (64 events, an exit) still make the channel
/// readable.
pub(crate) fn next_event(read: BorrowedFd<'_>) -> Option<SourceEvent> {
    if let Some(event) = take_one() {
        return Some(event);
    }
    let mut sink = [0u8; 64];
    loop {
        match nix::unistd::read(read, &mut sink) {
            Ok(n) if n == sink.len() => continue,
            Err(Errno::EINTR) => continue,
            _ => break, // empty (EAGAIN), a short read, or an error
        }
    }
    let event = take_one();
    if event.is_some() {
        notify();
    }
    event
}
