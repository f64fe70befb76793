//! The waker: an `eventfd` another thread or a signal handler writes to, whose
//! channel the reactor watches.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use asyncore_core::{SocketError, SourceEvent};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

use crate::error::from_errno;
use crate::{Kind, StdSocket};

/// Wakes a reactor from anywhere: another thread, a signal handler, a callback of the
/// loop itself. Made with [`StdSocket::waker`], whose channel hands each wake to
/// `handle_event` as [`SourceEvent::Wake`].
///
/// * **Coalescing.** Wakes add up in the eventfd's counter; the channel reads the
///   counter once and delivers one `Wake`, however many wakes came since the last one.
///   A wake after that read is a new `Wake`, so none is lost.
/// * **At once.** A wake makes the eventfd readable, which ends a blocked
///   `select(2)`/`poll(2)` (`poll_once(None)` included) right away.
/// * **Anywhere.** `Send + Sync + Clone` (clones share one fd; cloning allocates
///   nothing). [`wake`](Waker::wake) is one `write(2)` and saves and restores `errno`,
///   so it is async-signal-safe: call it from a signal handler (keep the `Waker` in a
///   `static` such as a `OnceLock` set before the handler is installed).
/// * **Its own fd.** The handle owns a duplicate of the eventfd (`F_DUPFD_CLOEXEC`),
///   not the channel's fd: once the channel is closed, wakes go to the eventfd that is
///   still open in the handle, never to whatever file reused the channel's number.
///   Nobody hears them then; they cost nothing.
#[derive(Clone, Debug)]
pub struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// Wakes the channel: it becomes readable and delivers one [`SourceEvent::Wake`]
    /// for this and every other wake not yet delivered. Never blocks, never fails
    /// visibly: the only errors `write(2)` can give here are a counter at its maximum
    /// (`EAGAIN`: the channel is readable anyway) and none that a valid eventfd
    /// reports. Async-signal-safe; `errno` is left as it was.
    pub fn wake(&self) {
        let saved = Errno::last_raw();
        let one = 1u64.to_ne_bytes();
        // An eventfd write is all or nothing; EINTR cannot happen on a non-blocking
        // eventfd, and every other outcome is fine (see above).
        let _ = nix::unistd::write(&*self.fd, &one);
        Errno::set_raw(saved);
    }
}

impl StdSocket {
    /// A waker: its channel (an `eventfd`, non-blocking and close-on-exec, starting
    /// [`State::Source`](asyncore_core::State::Source)) and a [`Waker`] handle to
    /// trigger it. Add the channel to a reactor; its dispatcher's `handle_event` gets
    /// [`SourceEvent::Wake`] after one or more [`Waker::wake`]s. A reactor may hold
    /// several wakers.
    ///
    /// ```
    /// use asyncore_std::StdSocket;
    ///
    /// let (channel, waker) = StdSocket::waker()?;
    /// let other_thread = waker.clone();
    /// std::thread::spawn(move || other_thread.wake()).join().unwrap();
    /// # let _ = channel;
    /// # Ok::<(), asyncore_core::SocketError>(())
    /// ```
    ///
    /// # Errors
    /// `OutOfMemory` when no fd is free (`EMFILE`, `ENFILE`), or what `eventfd(2)`
    /// reports otherwise.
    pub fn waker() -> Result<(StdSocket, Waker), SocketError> {
        // SAFETY: eventfd takes no pointers; the flags are valid for it.
        let raw =
            unsafe { nix::libc::eventfd(0, nix::libc::EFD_NONBLOCK | nix::libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(from_errno(Errno::last()));
        }
        // SAFETY: eventfd just returned this fd and nothing else owns it.
        let channel = unsafe { OwnedFd::from_raw_fd(raw) };
        let handle = fcntl(&channel, FcntlArg::F_DUPFD_CLOEXEC(0)).map_err(from_errno)?;
        // SAFETY: F_DUPFD_CLOEXEC just returned this new fd, owned by nothing else.
        let handle = unsafe { OwnedFd::from_raw_fd(handle) };
        Ok((
            StdSocket::source_channel(channel, Kind::Waker),
            Waker {
                fd: Arc::new(handle),
            },
        ))
    }
}

/// The waker channel's next event: one `Wake` when the counter was not zero (reading
/// it sets it back to zero), `None` when it was (`EAGAIN`) or on any error.
pub(crate) fn next_event(fd: BorrowedFd<'_>) -> Option<SourceEvent> {
    let mut counter = [0u8; 8];
    loop {
        match nix::unistd::read(fd, &mut counter) {
            Ok(8) => return Some(SourceEvent::Wake),
            Err(Errno::EINTR) => continue,
            // EAGAIN: nothing pending. An eventfd read is 8 bytes or an error; the
            // rest cannot happen on a valid eventfd.
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncore_core::{Socket, State};
    use std::os::fd::AsRawFd;

    #[test]
    fn many_wakes_are_one_event_and_a_later_wake_is_another() {
        let (mut channel, waker) = StdSocket::waker().unwrap();
        assert_eq!(channel.initial_state(), State::Source);
        assert_eq!(channel.kind(), Kind::Waker);
        assert_eq!(channel.next_event(), None, "nothing yet");
        for _ in 0..1000 {
            waker.wake();
        }
        assert_eq!(channel.next_event(), Some(SourceEvent::Wake));
        assert_eq!(channel.next_event(), None, "coalesced into one");
        waker.clone().wake();
        assert_eq!(channel.next_event(), Some(SourceEvent::Wake));
        assert_eq!(channel.next_event(), None);
    }

    #[test]
    fn wake_leaves_errno_alone() {
        let (_channel, waker) = StdSocket::waker().unwrap();
        Errno::set_raw(nix::libc::EXDEV);
        waker.wake();
        assert_eq!(Errno::last_raw(), nix::libc::EXDEV);
    }

    #[test]
    fn a_source_is_neither_read_nor_written() {
        let (mut channel, _waker) = StdSocket::waker().unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            channel.recv(&mut buf).unwrap_err(),
            SocketError::UNSUPPORTED
        );
        assert_eq!(channel.send(&buf).unwrap_err(), SocketError::UNSUPPORTED);
        assert!(channel.accept().is_err());
    }

    #[test]
    fn a_wake_after_the_channel_closed_goes_nowhere() {
        let (mut channel, waker) = StdSocket::waker().unwrap();
        let number = channel.as_raw_fd();
        assert_ne!(
            waker.fd.as_raw_fd(),
            number,
            "the handle has an fd of its own"
        );
        channel.close().unwrap();
        // The channel's number now names a pipe's write end (F_DUPFD: the lowest
        // free number from `number` on, so another test's fd is never replaced).
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
        let reused = fcntl(&w, FcntlArg::F_DUPFD_CLOEXEC(number)).unwrap();
        // SAFETY: F_DUPFD_CLOEXEC just returned this fd; nothing else owns it.
        let reused = unsafe { OwnedFd::from_raw_fd(reused) };
        waker.wake();
        let mut buf = [0u8; 8];
        assert_eq!(
            nix::unistd::read(&r, &mut buf),
            Err(Errno::EAGAIN),
            "the wake reached the pipe that reused fd {number}"
        );
        // Only meaningful when no other test took the number in between.
        if reused.as_raw_fd() != number {
            eprintln!("fd {number} was taken by another test; the check above proved less");
        }
        drop((reused, w));
    }

    #[test]
    fn the_channel_stays_eight_bytes() {
        assert_eq!(core::mem::size_of::<StdSocket>(), 8);
    }
}
