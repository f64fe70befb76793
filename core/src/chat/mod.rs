//! asynchat on fixed memory: terminator-framed input and queued, producer-driven
//! output (the original's `async_chat`, `simple_producer`, `find_prefix_at_end`).
//!
//! An [`AsyncChat`] is a [`Dispatcher`](crate::Dispatcher) that wraps your [`ChatHandler`]: it reads into
//! a fixed input ring, cuts the stream at the current [`Terminator`] and calls
//! [`ChatHandler::collect_incoming_data`] / [`ChatHandler::found_terminator`]; it
//! sends what you [`push`](ChatControl::push) and what your [`Producer`]s make, in
//! order, until the socket would block.
//!
//! Fixes of the original, by design:
//! * bounded everything: input ring `IN`, output ring `OUT`, `Q` queue entries; a full
//!   output is `Err(BufferFull)` or a partial count, never a drop;
//! * back-pressure: no read interest while the input ring is full or the handler
//!   paused input ([`ChatControl::pause_input`]: the records after the current one
//!   wait in the ring, the rest in the socket), write interest only while output is
//!   queued;
//! * a record longer than the limit goes to [`ChatHandler::record_too_long`] instead
//!   of growing without bound;
//! * ring buffers: no quadratic copying;
//! * output is written until would-block, and empty pushes cost nothing;
//! * a default terminator ([`Terminator::None`]) and an explicit one after a count
//!   runs out;
//! * bytes held back as a partial terminator are delivered at EOF, not lost.
//!
//! The rules in full: [`semantics`](crate::semantics), "asynchat".

mod channel;
mod handler;
mod output;
mod producer;
pub mod server;
mod terminator;

pub use channel::AsyncChat;
pub use handler::{ChatHandler, Overflow};
pub use output::{ChatControl, PRODUCER_STAGE, QueueFull};
pub use producer::{NoProducer, Producer, SimpleProducer, SliceProducer};
pub use terminator::{
    InvalidTerminator, MAX_TERMINATOR, TermBytes, Terminator, find_prefix_at_end,
};

#[cfg(test)]
mod tests;
