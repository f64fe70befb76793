//! Operation interpreters for fuzzing: arbitrary bytes in, a bounded sequence of
//! operations on the dispatch logic out, every step checked. `no_std`, no allocation.
//!
//! Four interpreters, one per cargo-fuzz target under `fuzz/`:
//!
//! * [`dispatch`]: operations over a [`SimNet`](super::SimNet) and a
//!   [`Reactor`](crate::Reactor) running an echo server whose handlers do what the
//!   input commands (close themselves, close or add other channels, exit, fail, set
//!   deadlines), plus simulated clients outside the reactor (connect, send, receive,
//!   half-close, close, reset), virtual time and fault rates.
//! * [`chat_framing`]: an input stream, its chunking and terminator changes fed to
//!   [`AsyncChat`](crate::chat::AsyncChat) on the mock, compared with a reference
//!   parser that transliterates the original's `handle_read`.
//! * [`readiness`]: arbitrary readiness bits and scripted socket results (data, short
//!   counts, EOF, would-block, each errno, `SO_ERROR`) for listeners, connecting and
//!   connected channels, straight into the dispatch state machine.
//! * [`dgram`]: operations over the simulated datagram network and a reactor running
//!   a datagram echo server and datagram clients (connected or not, to live and dead
//!   ports), with loss, duplication, reordering, server restarts, commands and
//!   sockets closed behind the reactor's back.
//!
//! Each returns `Err` with the first broken invariant; none may panic. The same
//! functions run under libFuzzer (nightly, `fuzz/`) and under plain `cargo test`
//! (the root package's `tests/fuzz_corpus.rs`, over the committed corpus and a fixed
//! set of generated inputs), so ordinary CI always exercises them.
//!
//! # Input format
//!
//! Inputs are read by an [`Input`]: each operation is one byte selecting the
//! operation (modulo the number of kinds) followed by its arguments; decoding stops
//! when the bytes run out or after a fixed number of operations. Every operation type
//! has `decode` and `encode`, so a test can write meaningful inputs (the seed corpus)
//! and print a failing input as the operations it stands for.
//!
//! # Checking events
//!
//! The reactor reports events to a plain `fn` ([`Observer`]), so an
//! [`TraceChecker`](super::TraceChecker) must live in a global the caller owns. A
//! caller with `std` gets one per thread from [`thread_local_check_hooks!`](crate::thread_local_check_hooks):
//!
//! ```
//! use asyncore_core::sim::fuzz::dispatch::{self, Op};
//!
//! let hooks = asyncore_core::thread_local_check_hooks!();
//! // Client 0 connects, sends 5 bytes, reads the echo.
//! let mut input = Vec::new();
//! for op in [
//!     Op::Connect { client: 0 },
//!     Op::Run { passes: 4, timeout_ms: 1 },
//!     Op::Send { client: 0, len: 5 },
//!     Op::Run { passes: 4, timeout_ms: 1 },
//!     Op::Recv { client: 0 },
//! ] {
//!     op.encode(|b| input.push(b));
//! }
//! let report = dispatch::run(&input, Some(hooks)).unwrap();
//! assert_eq!((report.echoed, report.complete), (5, 1));
//! ```
//!
//! Besides the event checker, the dispatchers the interpreters put in the map check
//! their own life cycle ([`LifeViolation`]): no callback after a close, at most one
//! `handle_close`, an `Err` always followed by `handle_error` and by nothing else,
//! no `handle_connect` after `handle_connect_failed`. The `dispatch` and `dgram`
//! dispatchers also run the [`Command`]s the input gives them from inside their
//! callbacks; that check, the command machinery and the plumbing of a run are one
//! crate-private module (`script.rs`) the interpreters share.

pub mod chat_framing;
pub mod dgram;
pub mod dispatch;
pub mod readiness;
mod script;

pub use script::Command;

use crate::{Callback, Observer, Token};

pub(crate) use script::{First, Life};

use super::Violation;

/// Reads operations and their arguments from fuzzer bytes.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads from `data`.
    pub const fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len()
    }

    /// The next byte.
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    /// The next byte modulo `n` (`n` ≥ 1).
    pub fn below(&mut self, n: u8) -> Option<u8> {
        Some(self.byte()? % n.max(1))
    }

    /// The next byte as a flag (its low bit).
    pub fn flag(&mut self) -> Option<bool> {
        Some(self.byte()? & 1 == 1)
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> Option<u16> {
        let lo = self.byte()?;
        let hi = self.byte()?;
        Some(u16::from_le_bytes([lo, hi]))
    }

    /// The next `n` bytes, or `None` (consuming nothing) when fewer are left.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.data.len() {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }

    /// The next `n` bytes, or all that are left if fewer.
    pub fn take_up_to(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// The next byte looked up in `table` (modulo its length): an operation kind,
    /// chosen with the weights the table was built with (see [`weights`]).
    pub fn kind(&mut self, table: &[u8]) -> Option<u8> {
        Some(table[self.byte()? as usize % table.len()])
    }
}

/// A table of `N` operation kinds in which kind `k` appears `w[k]` times: decoding
/// a byte through it ([`Input::kind`]) picks kinds with those weights. The weights
/// must add up to `N`.
pub const fn weights<const N: usize>(w: &[u8]) -> [u8; N] {
    let mut table = [0u8; N];
    let (mut k, mut i) = (0, 0);
    while k < w.len() {
        let mut n = 0;
        while n < w[k] {
            table[i] = k as u8;
            i += 1;
            n += 1;
        }
        k += 1;
    }
    assert!(i == N, "weights must add up to the table size");
    table
}

/// The byte that [`Input::kind`] decodes as `kind` through `table`.
pub fn kind_byte(table: &[u8], kind: u8) -> u8 {
    table.iter().position(|&k| k == kind).unwrap_or(0) as u8
}

/// Wraps `put` so that the first byte written, an operation kind, becomes its byte in
/// `table` (see [`kind_byte`]).
pub(crate) fn with_kind<'t>(table: &'t [u8], mut put: impl FnMut(u8) + 't) -> impl FnMut(u8) + 't {
    let mut first = true;
    move |b| {
        put(if core::mem::take(&mut first) {
            kind_byte(table, b)
        } else {
            b
        })
    }
}

/// How an interpreter reaches the caller's [`TraceChecker`](super::TraceChecker):
/// `observer` goes to [`Reactor::set_observer`](crate::Reactor::set_observer) and
/// feeds it; `reset` is called once before a run; `verdict` is asked after every
/// pass. Build one with [`thread_local_check_hooks!`](crate::thread_local_check_hooks)
/// or from your own functions.
#[derive(Copy, Clone, Debug)]
pub struct CheckHooks {
    /// Told of every reactor event.
    pub observer: Observer,
    /// Forgets what the checker saw.
    pub reset: fn(),
    /// The checker's first violation so far.
    pub verdict: fn() -> Option<Violation>,
}

/// Builds [`CheckHooks`] over an [`TraceChecker`](crate::sim::TraceChecker) in a
/// `thread_local!` of the calling crate (which needs `std`). Each expansion has its
/// own checker.
#[macro_export]
macro_rules! thread_local_check_hooks {
    () => {{
        ::std::thread_local! {
            static CHECKER: ::core::cell::RefCell<$crate::sim::TraceChecker> =
                const { ::core::cell::RefCell::new($crate::sim::TraceChecker::new()) };
        }
        fn observe(token: $crate::Token, event: $crate::Trace) {
            CHECKER.with(|c| c.borrow_mut().on_trace(token, event));
        }
        fn reset() {
            CHECKER.with(|c| *c.borrow_mut() = $crate::sim::TraceChecker::new());
        }
        fn verdict() -> ::core::option::Option<$crate::sim::Violation> {
            CHECKER.with(|c| c.borrow().violation())
        }
        $crate::sim::fuzz::CheckHooks {
            observer: observe,
            reset,
            verdict,
        }
    }};
}

/// A broken life-cycle rule, seen by a dispatcher of an interpreter from the inside.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LifeViolation {
    /// A callback ran after the channel was closed (by `ctx.close()`,
    /// `handle_close` or `handle_connect_failed`).
    CallbackAfterClose(Callback),
    /// `handle_close` ran a second time.
    DoubleClose,
    /// A handler returned `Err` and the next callback was not `handle_error`.
    ErrorNotDelivered(Callback),
    /// `handle_error` ran without a handler having returned `Err`.
    UnexpectedError,
    /// `handle_connect` after `handle_connect_failed`, or either of them on a channel
    /// that was not connecting.
    UnexpectedConnect(Callback),
    /// A callback the channel's state or interest rules out (e.g. `handle_write`
    /// while `writable()` said no, `handle_accept` on a stream).
    OutOfState(Callback),
}

/// Where a [`LifeViolation`] happened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LifeFailure {
    /// The channel.
    pub token: Token,
    /// What it saw.
    pub violation: LifeViolation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_reads_and_stops() {
        let mut i = Input::new(&[1, 2, 3, 4, 5]);
        assert_eq!(i.byte(), Some(1));
        assert_eq!(i.u16(), Some(0x0302));
        assert_eq!(i.take(3), None);
        assert_eq!(i.take(2), Some(&[4u8, 5][..]));
        assert!(i.is_empty());
        assert_eq!(i.below(3), None);
    }
}
