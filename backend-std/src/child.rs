//! Child processes: spawned with their stdio as pipe channels, tracked in a fixed
//! table of pids that the signal source reaps on `SIGCHLD`.

use std::fmt;
use std::os::fd::OwnedFd;
use std::process::Command;
use std::sync::Mutex;

use asyncore_core::{ExitStatus, SocketError, SourceEvent};
use nix::errno::Errno;
use nix::libc::{self, c_int, pid_t};

use crate::error::from_errno;
use crate::{StdSocket, signals};

/// How many children the table tracks at once (running, or ended and not yet
/// dropped): [`Child::spawn`] beyond that is [`SpawnError::Full`].
pub const MAX_CHILDREN: usize = 1024;

/// `repr(u8)` with `Free` as tag 0, so an empty table is all zero bytes and the
/// static lands in `.bss` (a niche-encoded `Free` put 24 KiB of it in `.data`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Entry {
    /// Nobody.
    Free = 0,
    /// Being spawned.
    Reserved = 1,
    /// Spawned and not reaped.
    Running = 2,
    /// Reaped, exit not yet delivered; `seq` orders deliveries.
    Exited { status: ExitStatus, seq: u64 } = 3,
    /// Reaped and delivered.
    Delivered(ExitStatus) = 4,
}

#[derive(Copy, Clone, Debug)]
struct Slot {
    pid: pid_t,
    /// Bumped each time the slot is freed, so a stale handle finds nothing.
    generation: u32,
    entry: Entry,
}

struct Table {
    slots: [Slot; MAX_CHILDREN],
    running: usize,
    queued: usize,
    next_seq: u64,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    slots: [Slot {
        pid: 0,
        generation: 0,
        entry: Entry::Free,
    }; MAX_CHILDREN],
    running: 0,
    queued: 0,
    next_seq: 0,
});

fn table() -> std::sync::MutexGuard<'static, Table> {
    // Nothing panics while holding it; a poisoned table is still consistent.
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

impl Table {
    fn free(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        match slot.entry {
            Entry::Running => self.running -= 1,
            Entry::Exited { .. } => self.queued -= 1,
            _ => {}
        }
        slot.entry = Entry::Free;
        slot.pid = 0;
        slot.generation = slot.generation.wrapping_add(1);
    }

    /// The slot of a handle, if the handle is still its owner.
    fn slot(&mut self, index: usize, generation: u32) -> Option<&mut Slot> {
        self.slots
            .get_mut(index)
            .filter(|s| s.generation == generation && s.entry != Entry::Free)
    }
}

/// The number of children spawned and not reaped.
pub(crate) fn running() -> usize {
    table().running
}

/// How a `waitpid` status reads: an exit code or the signal that ended it.
fn decode(status: c_int) -> Option<ExitStatus> {
    if libc::WIFEXITED(status) {
        Some(ExitStatus::Code(libc::WEXITSTATUS(status)))
    } else if libc::WIFSIGNALED(status) {
        Some(ExitStatus::Signal(libc::WTERMSIG(status)))
    } else {
        None // stopped or continued: not an end
    }
}

/// `waitpid(pid, flags)`, `EINTR` retried: `Ok(Some(status))` once it ended,
/// `Ok(None)` while it runs (with `WNOHANG`).
fn wait(pid: pid_t, flags: c_int) -> Result<Option<ExitStatus>, Errno> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: `status` is a valid, writable int; waitpid takes nothing else by
        // pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        match r {
            0 => return Ok(None),
            r if r == pid => {
                if let Some(s) = decode(status) {
                    return Ok(Some(s));
                }
            }
            -1 if Errno::last() == Errno::EINTR => {}
            -1 => return Err(Errno::last()),
            _ => return Ok(None),
        }
    }
}

/// Reaps every child of the table that ended (the signal source calls it on
/// `SIGCHLD`): one `waitpid(pid, WNOHANG)` per running child.
pub(crate) fn reap() {
    let mut t = table();
    if t.running == 0 {
        return;
    }
    for i in 0..MAX_CHILDREN {
        let slot = t.slots[i];
        if slot.entry != Entry::Running {
            continue;
        }
        let status = match wait(slot.pid, libc::WNOHANG) {
            Ok(Some(status)) => status,
            Ok(None) => continue,
            // ECHILD: someone else reaped it (a `waitpid(-1)` elsewhere in the
            // process); its status is lost. It still ends, as `Unknown`.
            Err(_) => ExitStatus::Unknown,
        };
        let seq = t.next_seq;
        t.next_seq += 1;
        t.slots[i].entry = Entry::Exited { status, seq };
        t.running -= 1;
        t.queued += 1;
    }
}

/// The oldest reaped exit not yet delivered.
pub(crate) fn next_exit() -> Option<SourceEvent> {
    let mut t = table();
    if t.queued == 0 {
        return None;
    }
    let (index, status) = t
        .slots
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s.entry {
            Entry::Exited { status, seq } => Some((seq, i, status)),
            _ => None,
        })
        .min_by_key(|(seq, _, _)| *seq)
        .map(|(_, i, status)| (i, status))?;
    t.slots[index].entry = Entry::Delivered(status);
    t.queued -= 1;
    Some(SourceEvent::Exit {
        pid: t.slots[index].pid as u32,
        status,
    })
}

/// Why [`Child::spawn`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// No signal source is open ([`StdSocket::signals`]): nobody would learn of the
    /// child's exit or reap it.
    NoSignalSource,
    /// The child table holds [`MAX_CHILDREN`] children already.
    Full,
    /// Starting the command failed (`fork`, `exec`: e.g. `NotFound` for a missing
    /// program), or making its pipes non-blocking did (the child is killed and
    /// reaped then).
    Io(std::io::Error),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NoSignalSource => {
                f.write_str("no signal source is open: child exits could not be reaped")
            }
            SpawnError::Full => write!(f, "the child table is full ({MAX_CHILDREN} children)"),
            SpawnError::Io(e) => write!(f, "cannot start the command: {e}"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A spawned child and the channels of its piped stdio.
#[derive(Debug)]
pub struct Spawned {
    /// The child: dropping it kills and reaps the process.
    pub child: Child,
    /// The write end of its stdin, if the command had `Stdio::piped()` there: a
    /// non-blocking file channel (closing it is the child's EOF).
    pub stdin: Option<StdSocket>,
    /// The read end of its stdout, if piped: a non-blocking file channel.
    pub stdout: Option<StdSocket>,
    /// The read end of its stderr, if piped: a non-blocking file channel.
    pub stderr: Option<StdSocket>,
}

/// A child process in the table: the signal source reports its exit
/// ([`SourceEvent::Exit`] with its [`pid`](Child::pid)) and reaps it; dropping the
/// handle before that kills it (`SIGKILL`) and reaps it, so no child outlives its
/// handle as a process or a zombie. Keep it in the dispatcher that owns the child's
/// channels: closing those channels (or the reactor's `close_all`) then ends the
/// child too.
#[derive(Debug)]
pub struct Child {
    pid: u32,
    index: usize,
    generation: u32,
}

impl Child {
    /// Starts `command` and puts the child in the table. Its stdin, stdout and
    /// stderr are whatever `command` says (inherited by default): the ones set to
    /// `Stdio::piped()` come back as non-blocking, close-on-exec file channels to add
    /// to a reactor. Every fd this crate opens is close-on-exec, so none of ours leaks
    /// into the child. A [signal source](StdSocket::signals) must be open: it reports
    /// the exit.
    ///
    /// Spawning allocates (`std::process::Command` does); the table does not.
    ///
    /// ```no_run
    /// use std::process::{Command, Stdio};
    /// use asyncore_std::{Child, StdSocket};
    ///
    /// let signals = StdSocket::signals(&[])?; // exits only
    /// let spawned = Child::spawn(Command::new("date").stdout(Stdio::piped()))?;
    /// let stdout = spawned.stdout.expect("piped"); // a channel for the reactor
    /// // ... handle_event(Exit { pid, status }) with pid == spawned.child.pid()
    /// # drop((signals, stdout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SpawnError::NoSignalSource`], [`SpawnError::Full`], or
    /// [`SpawnError::Io`] from `fork`/`exec`.
    pub fn spawn(command: &mut Command) -> Result<Spawned, SpawnError> {
        if !signals::is_open() {
            return Err(SpawnError::NoSignalSource);
        }
        let (index, generation) = {
            let mut t = table();
            let index = t
                .slots
                .iter()
                .position(|s| s.entry == Entry::Free)
                .ok_or(SpawnError::Full)?;
            t.slots[index].entry = Entry::Reserved;
            (index, t.slots[index].generation)
        };
        let mut std_child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                table().free(index);
                return Err(SpawnError::Io(e));
            }
        };
        let pid = std_child.id();
        {
            let mut t = table();
            t.slots[index].pid = pid as pid_t;
            t.slots[index].entry = Entry::Running;
            t.running += 1;
        }
        // It may have ended before it was in the table: look at the table next pass.
        signals::raise_sigchld();
        let child = Child {
            pid,
            index,
            generation,
        };
        // From here on, an error drops `child`, which kills and reaps the process.
        let stdin = std_child.stdin.take().map(OwnedFd::from);
        let stdout = std_child.stdout.take().map(OwnedFd::from);
        let stderr = std_child.stderr.take().map(OwnedFd::from);
        // std's handle only holds the pid now (no pidfd): dropping it neither waits
        // nor kills.
        drop(std_child);
        let channel = |fd: Option<OwnedFd>| {
            fd.map(StdSocket::from_owned_file)
                .transpose()
                .map_err(|e| SpawnError::Io(socket_to_io(e)))
        };
        Ok(Spawned {
            stdin: channel(stdin)?,
            stdout: channel(stdout)?,
            stderr: channel(stderr)?,
            child,
        })
    }

    /// Its process id (what [`SourceEvent::Exit`] reports).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How it ended, once the signal source reaped it (`None` while it runs).
    pub fn status(&self) -> Option<ExitStatus> {
        let mut t = table();
        match t.slot(self.index, self.generation)?.entry {
            Entry::Exited { status, .. } | Entry::Delivered(status) => Some(status),
            _ => None,
        }
    }

    /// Sends `signal` to the child while it has not been reaped (a child that
    /// ended but was not reaped yet is still ours to signal: its pid cannot be
    /// reused before the reaping).
    ///
    /// # Errors
    /// `ESRCH` (`Other`) once it has been reaped; `InvalidInput` for a bad signal
    /// number.
    pub fn kill(&self, signal: c_int) -> Result<(), SocketError> {
        let mut t = table();
        let slot = t
            .slot(self.index, self.generation)
            .ok_or_else(|| from_errno(Errno::ESRCH))?;
        if slot.entry != Entry::Running {
            return Err(from_errno(Errno::ESRCH));
        }
        // SAFETY: kill takes no pointers. The pid is our unreaped child (the table
        // lock keeps the signal source from reaping it meanwhile), so it names no
        // other process.
        if unsafe { libc::kill(slot.pid, signal) } != 0 {
            return Err(from_errno(Errno::last()));
        }
        Ok(())
    }
}

impl Drop for Child {
    /// A child still running is killed (`SIGKILL`) and reaped (a blocking
    /// `waitpid`, as long as the kernel takes to end it: a process in uninterruptible
    /// sleep delays it). Its exit is not reported then: its owner is gone. A child
    /// already reaped just leaves the table.
    fn drop(&mut self) {
        let mut t = table();
        let Some(slot) = t.slot(self.index, self.generation) else {
            return;
        };
        let (pid, running) = (slot.pid, slot.entry == Entry::Running);
        t.free(self.index);
        drop(t);
        if running {
            // Out of the table now, so the signal source no longer waits for it: the
            // pid stays ours (a zombie at worst) until this waitpid.
            // SAFETY: kill takes no pointers; the pid is our unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = wait(pid, 0);
        }
    }
}

fn socket_to_io(e: SocketError) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::other(e.to_string()),
    }
}
