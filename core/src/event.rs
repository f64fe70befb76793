//! Events that come from sources other than streams: a waker, signals, child
//! processes. A channel whose socket is such a source is in
//! [`State::Source`](crate::State::Source); its read readiness hands each event
//! to [`Dispatcher::handle_event`](crate::Dispatcher::handle_event).

use core::fmt;

/// One event of a source channel (see [`Socket::next_event`](crate::Socket::next_event)).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SourceEvent {
    /// A waker was triggered, once or many times since the last `Wake`: wakes
    /// coalesce into one event.
    Wake,
    /// This signal was raised, once or many times since it was last delivered:
    /// each pending signal is delivered once, in increasing number.
    Signal(i32),
    /// A child process ended.
    Exit {
        /// Its process id.
        pid: u32,
        /// How it ended.
        status: ExitStatus,
    },
}

/// How a child process ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal (this number) ended it.
    Signal(i32),
    /// It ended, but how is not known: something else in the process reaped it
    /// first (a `waitpid(-1)` elsewhere, `SIGCHLD` set to be ignored).
    Unknown,
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit status {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
            ExitStatus::Unknown => f.write_str("ended, status unknown (reaped elsewhere)"),
        }
    }
}
