//! Log lines that never panic, never block the loop and never allocate.
//!
//! `eprintln!` panics when whatever reads stderr has gone away (`2>&1 | head`, a log
//! collector restarting: `EPIPE`), and blocks the whole server when nobody drains the
//! pipe. A [`Sink`] instead formats a line into a fixed buffer on the stack (at most
//! [`LINE`] bytes, cut short with `...` if longer), asks `poll(2)` whether the fd can
//! take data *now* (zero timeout), and if so writes the line with one `write(2)`. A
//! line of at most `PIPE_BUF` bytes goes into a pipe whole or not at all, and a pipe
//! that polls writable has room for it, so the write does not block. A line that
//! cannot go out now (full pipe, closed pipe, any error) is dropped and counted; the
//! servers report the count when they stop ([`Sink::report_dropped`]).
//!
//! Why not `O_NONBLOCK` on fd 2: the flag belongs to the open file description, which
//! the parent shares (often the shell's terminal); setting it would make the parent's
//! own writes fail with `EAGAIN`.
//!
//! What is left: if another process writes to the same pipe between our `poll` and
//! our `write` and fills it, that one write waits until the reader reads (or fails
//! with `EPIPE` if the reader leaves). Our own lines cannot cause it: the servers log
//! from one thread.

use std::fmt::{self, Write as _};
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The longest line written, newline included: POSIX's smallest `PIPE_BUF`, so a line
/// is never split in a pipe (Linux's `PIPE_BUF` is 4096).
pub const LINE: usize = 512;

/// How long the lines written outside the loop (startup, shutdown, the dropped-line
/// count) may wait for room: a full pipe that nobody drains delays the exit by this
/// much at most.
pub const OUTSIDE_LOOP: Duration = Duration::from_millis(200);

/// Which standard stream a [`Sink`] writes to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A standard stream written one whole line at a time, without blocking or
/// panicking; lines it could not write are counted.
#[derive(Debug)]
pub struct Sink {
    stream: Stream,
    dropped: AtomicU64,
}

/// Standard error: the servers' log.
pub static STDERR: Sink = Sink::new(Stream::Stderr);
/// Standard output: the `listening on ADDR` line.
pub static STDOUT: Sink = Sink::new(Stream::Stdout);

/// Writes a line to standard error if it can go out now; drops and counts it
/// otherwise (see [`Sink::line`]). Takes `format!` arguments; the newline is added.
macro_rules! log {
    ($($arg:tt)*) => {{
        $crate::common::log::STDERR.line(format_args!($($arg)*));
    }};
}
pub(crate) use log;

/// Writes a line to standard error, waiting up to [`OUTSIDE_LOOP`] for room: for the
/// few lines written before or after serving. Dropped and counted if it still cannot
/// go out.
macro_rules! say {
    ($($arg:tt)*) => {{
        $crate::common::log::STDERR
            .line_within(format_args!($($arg)*), $crate::common::log::OUTSIDE_LOOP);
    }};
}
pub(crate) use say;

impl Sink {
    const fn new(stream: Stream) -> Sink {
        Sink {
            stream,
            dropped: AtomicU64::new(0),
        }
    }

    /// Writes `args` and a newline if the stream takes it now; otherwise drops the
    /// line and counts it. Returns whether it was written.
    pub fn line(&self, args: fmt::Arguments<'_>) -> bool {
        self.line_within(args, Duration::ZERO)
    }

    /// As [`line`](Self::line), but waits up to `patience` for room: for the few
    /// lines written outside the loop.
    pub fn line_within(&self, args: fmt::Arguments<'_>, patience: Duration) -> bool {
        let mut line = LineBuf::new();
        // LineBuf never fails: what does not fit is cut.
        let _ = line.write_fmt(args);
        let written = self.write_whole(line.finish(), patience);
        if !written {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        written
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// If lines were dropped, says how many on standard error (waiting up to
    /// [`OUTSIDE_LOOP`] for room). Returns whether nothing was dropped or the count
    /// was written.
    pub fn report_dropped(&self, program: &str) -> bool {
        let n = self.dropped();
        if n == 0 {
            return true;
        }
        let stream = match self.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        let s = if n == 1 { "" } else { "s" };
        STDERR.line_within(
            format_args!("{program}: {n} line{s} to {stream} dropped (it was full or closed)"),
            OUTSIDE_LOOP,
        )
    }

    /// One `write(2)` of `bytes` (at most [`LINE`]) once `poll(2)` says the stream
    /// takes data, waiting at most `patience` for that. Whether all of it went out.
    fn write_whole(&self, bytes: &[u8], patience: Duration) -> bool {
        match self.stream {
            Stream::Stdout => write_when_ready(io::stdout().as_fd(), bytes, patience),
            Stream::Stderr => write_when_ready(io::stderr().as_fd(), bytes, patience),
        }
    }
}

/// A signal may interrupt `poll` or `write` (the servers catch SIGTERM); a few
/// retries, never a loop without end.
const EINTR_RETRIES: usize = 4;

fn write_when_ready(fd: std::os::fd::BorrowedFd<'_>, bytes: &[u8], patience: Duration) -> bool {
    let timeout = PollTimeout::try_from(patience).unwrap_or(PollTimeout::MAX);
    let mut ready = false;
    for _ in 0..EINTR_RETRIES {
        let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
        match poll(&mut fds, timeout) {
            Ok(_) => {
                let revents = fds[0].revents().unwrap_or(PollFlags::empty());
                // With the reader gone, a pipe polls POLLERR: the write would only
                // fail with EPIPE.
                ready = revents.contains(PollFlags::POLLOUT)
                    && !revents.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL);
                break;
            }
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if !ready {
        return false;
    }
    for _ in 0..EINTR_RETRIES {
        match nix::unistd::write(fd, bytes) {
            // A short write cannot happen for a line within PIPE_BUF on a pipe; if
            // some other kind of file takes only part, the line counts as lost.
            Ok(n) => return n == bytes.len(),
            Err(Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// A line being formatted, on the stack.
struct LineBuf {
    buf: [u8; LINE],
    len: usize,
    cut: bool,
}

impl LineBuf {
    fn new() -> LineBuf {
        LineBuf {
            buf: [0; LINE],
            len: 0,
            cut: false,
        }
    }

    /// The line with its newline; `...` marks a line that was cut.
    fn finish(&mut self) -> &[u8] {
        if self.cut {
            // Room for "...\n" was kept free.
            self.buf[self.len..self.len + 3].copy_from_slice(b"...");
            self.len += 3;
        }
        self.buf[self.len] = b'\n';
        &self.buf[..=self.len]
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.cut {
            return Ok(());
        }
        // Keep room for the newline, and for "..." should the line be cut.
        let room = LINE - 1 - self.len;
        if s.len() <= room {
            self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
            return Ok(());
        }
        let mut take = room.saturating_sub(3);
        // Cut on a character boundary so the line stays valid UTF-8.
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        self.cut = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(args: fmt::Arguments<'_>) -> Vec<u8> {
        let mut line = LineBuf::new();
        line.write_fmt(args).unwrap();
        line.finish().to_vec()
    }

    #[test]
    fn a_line_gets_its_newline() {
        assert_eq!(
            formatted(format_args!("connection {} of {}", 3, 9)),
            b"connection 3 of 9\n"
        );
        assert_eq!(formatted(format_args!("")), b"\n");
    }

    #[test]
    fn a_long_line_is_cut_with_a_mark_and_stays_within_line() {
        let long = "é".repeat(LINE);
        let out = formatted(format_args!("x{long}"));
        assert_eq!(
            out.len(),
            LINE - 1,
            "cut on a character boundary below LINE"
        );
        assert!(out.ends_with(b"...\n"));
        assert!(std::str::from_utf8(&out).is_ok());
        let exact = "a".repeat(LINE - 1);
        let out = formatted(format_args!("{exact}"));
        assert_eq!(out.len(), LINE, "exactly LINE - 1 bytes fit uncut");
        assert!(out.ends_with(b"a\n"));
        let over = "a".repeat(LINE);
        let out = formatted(format_args!("{over}"));
        assert_eq!(out.len(), LINE);
        assert!(out.ends_with(b"...\n"));
    }

    fn pipe() -> (io::PipeWriter, io::PipeReader) {
        let (r, w) = io::pipe().expect("pipe(2)");
        (w, r)
    }

    #[test]
    fn a_full_pipe_drops_the_line_without_blocking() {
        use std::io::Read;
        let (w, mut r) = pipe();
        nix::fcntl::fcntl(
            &w,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        // Fill it (the test's own pipe: O_NONBLOCK only to fill it here).
        let chunk = [b'x'; 4096];
        while nix::unistd::write(&w, &chunk).is_ok() {}
        nix::fcntl::fcntl(
            &w,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
        )
        .unwrap();
        assert!(!write_when_ready(w.as_fd(), b"dropped\n", Duration::ZERO));
        // Drained, it takes the next line whole.
        let mut sink = vec![0u8; 1 << 20];
        let mut drained = 0;
        while drained < 4096 {
            drained += r.read(&mut sink).unwrap();
        }
        assert!(write_when_ready(w.as_fd(), b"written\n", Duration::ZERO));
    }

    #[test]
    fn a_pipe_without_reader_drops_the_line_without_panicking() {
        let (w, r) = pipe();
        drop(r);
        // SIGPIPE is ignored by the Rust runtime: the write would get EPIPE.
        assert!(!write_when_ready(w.as_fd(), b"nobody\n", Duration::ZERO));
        assert!(!write_when_ready(
            w.as_fd(),
            b"nobody\n",
            Duration::from_millis(10)
        ));
    }
}
