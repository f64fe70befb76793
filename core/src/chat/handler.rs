//! `ChatHandler`: your protocol, as an [`AsyncChat`](super::AsyncChat)(super::AsyncChat) calls it.

use super::{ChatControl, Producer};
use crate::{AfterEof, Ctx, Error, Socket};

/// What to do with a record that outgrew [`AsyncChat::set_max_record`](super::AsyncChat::set_max_record).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Overflow {
    /// Drop the rest of this record: no `collect_incoming_data` until the next
    /// terminator, which is then reported as usual.
    Discard,
    /// Go on collecting (the handler copes).
    Continue,
}

/// Your protocol: what an [`AsyncChat`](super::AsyncChat) calls. `S` is the socket type, `M` the map's
/// dispatcher type (see [`Dispatcher`](crate::Dispatcher)).
pub trait ChatHandler<S: Socket, M>: Sized {
    /// The producer type this chat queues.
    type Producer: Producer;

    /// Data of the current record arrived (never empty). Only the concatenation
    /// between two `found_terminator` calls is meaningful: chunk boundaries depend on
    /// how reads arrive.
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn collect_incoming_data(&mut self, data: &[u8]) -> Result<(), Error>;

    /// The current terminator was found (or the count ran out).
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn found_terminator<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), Error>;

    /// More than the record limit arrived without a terminator. The default ends the
    /// connection with [`Error::Protocol`].
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn record_too_long<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<Overflow, Error> {
        let _ = (chat, ctx);
        Err(Error::Protocol("record too long"))
    }

    /// The connect finished.
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn handle_connect<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), Error> {
        let _ = (chat, ctx);
        Ok(())
    }

    /// The channel's deadline passed (see [`Ctx::set_deadline`]); the default does
    /// nothing.
    ///
    /// # Errors
    /// An `Err` goes to `handle_error` (default: close).
    fn handle_timeout<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> Result<(), Error> {
        let _ = (chat, ctx);
        Ok(())
    }

    /// The connection ended (see [`Dispatcher::handle_close`](crate::Dispatcher::handle_close)).
    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, M>) {
        let _ = ctx;
    }

    /// The peer finished sending; the default closes once queued output is sent.
    fn handle_eof<const OUT: usize, const Q: usize>(
        &mut self,
        chat: &mut ChatControl<Self::Producer, OUT, Q>,
        ctx: &mut Ctx<'_, S, M>,
    ) -> AfterEof {
        let _ = ctx;
        if chat.has_output() && chat.close_when_done().is_ok() {
            AfterEof::KeepWriting
        } else {
            AfterEof::Close
        }
    }

    /// A handler failed; the default closes the channel.
    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, M>, error: Error) {
        let _ = error;
        ctx.close();
    }
}
