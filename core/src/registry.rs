//! The registry: everything of a reactor except its channels' slots — the selector
//! and what is registered with it, the channel deadlines, the accept back-off, the
//! observer, the exit flag and the time of the pass. The reactor owns it; a
//! handler's [`Ctx`](crate::Ctx) borrows it (as a [`Registrar`], without the
//! selector type and the capacity) for the length of one callback. Adding a channel,
//! removing one and setting a deadline each have their one routine here.

use core::time::Duration;

use crate::fmt::debug_;
use crate::map::{Channel, Flags, MapAccess};
use crate::pool::{Lease, Lend};
use crate::time::{AcceptBackoff, Deadlines, NEVER};
use crate::trace::{Trace, Tracer};
use crate::{AddError, AddErrorKind, Selector, Socket, SourceError, State, Token};

pub(crate) struct Registry<Sel: Selector, const N: usize, P> {
    pub(crate) selector: Sel,
    /// The source each slot was registered with: what `deregister` gets, even if a
    /// handler closed the socket (whose source may then read as invalid).
    sources: [Option<Sel::Source>; N],
    pub(crate) deadlines: Deadlines<N>,
    pub(crate) backoff: AcceptBackoff,
    pub(crate) tracer: Tracer,
    /// A handler called `Ctx::exit` during this pass.
    pub(crate) exit: bool,
    /// The time of the current pass (`None`: the selector has no clock).
    pub(crate) now: Option<Duration>,
    /// The buffers lent to channels.
    pub(crate) pool: P,
}

impl<Sel: Selector, const N: usize, P: Lend> Registry<Sel, N, P> {
    pub(crate) const fn new(selector: Sel, pool: P) -> Self {
        Registry {
            selector,
            sources: [None; N],
            deadlines: Deadlines::new(),
            backoff: AcceptBackoff::new(),
            tracer: Tracer::NONE,
            exit: false,
            now: None,
            pool,
        }
    }

    /// Adds a channel: the one routine behind `Reactor::add` and `Ctx::add`. Checks
    /// capacity, registers the source with the selector, refuses a closed socket,
    /// inserts, remembers the registered source, reports `Added`. On any refusal the
    /// selector is left as it was and the values come back.
    pub(crate) fn add<S, D>(
        &mut self,
        map: &mut (impl MapAccess<S, D> + ?Sized),
        mut socket: S,
        dispatcher: D,
    ) -> Result<Token, AddError<S, D>>
    where
        S: Socket<Source = Sel::Source>,
    {
        let refuse = |kind, socket, dispatcher| AddError {
            kind,
            socket,
            dispatcher,
        };
        if map.is_full() {
            return Err(refuse(AddErrorKind::Full, socket, dispatcher));
        }
        let source = socket.source();
        if let Err(e) = self.selector.register(source) {
            return Err(refuse(AddErrorKind::Rejected(e), socket, dispatcher));
        }
        let state = socket.initial_state();
        if state == State::Closed {
            self.selector.deregister(source);
            let kind = AddErrorKind::Rejected(SourceError::Invalid);
            return Err(refuse(kind, socket, dispatcher));
        }
        match map.insert(Channel::new(socket, state, dispatcher)) {
            Ok(token) => {
                if let Some(slot) = self.sources.get_mut(token.index()) {
                    *slot = Some(source);
                }
                self.tracer.trace(token, Trace::Added);
                Ok(token)
            }
            Err(c) => {
                self.selector.deregister(source);
                Err(refuse(AddErrorKind::Full, c.socket, c.dispatcher))
            }
        }
    }

    /// Takes a channel out of the map: the one routine behind every removal and
    /// close. Deregisters the source its slot was registered with and reports
    /// `Removed`; the socket is left open for the caller to close or keep.
    pub(crate) fn remove<S, D>(
        &mut self,
        map: &mut (impl MapAccess<S, D> + ?Sized),
        token: Token,
    ) -> Option<Channel<S, D>>
    where
        S: Socket<Source = Sel::Source>,
    {
        let channel = map.remove(token)?;
        if !channel.is_kept() {
            self.forget(token);
        }
        Some(channel)
    }

    /// Closes the channel of `token`: the one close routine (a handler's close, the
    /// close after `handle_close` or a failed connect, `Reactor::close`,
    /// `Ctx::close_channel`). Deregisters its source, closes its socket and reports
    /// `Removed`; the dispatcher is dropped, or kept in the slot for
    /// `Reactor::take_closed` if the channel asked for that. `false` for a stale
    /// token or a channel closed already.
    pub(crate) fn close<S, D>(
        &mut self,
        map: &mut (impl MapAccess<S, D> + ?Sized),
        token: Token,
    ) -> bool
    where
        S: Socket<Source = Sel::Source>,
    {
        let Some(c) = map.channel_mut(token) else {
            return false;
        };
        if c.is_kept() {
            return false;
        }
        if c.flags.has(Flags::KEEP) {
            if c.socket.close().is_err() {
                debug_!("{}: close reported an error", token);
            }
            map.keep_closed(token);
            self.forget(token);
        } else if let Some(mut c) = self.remove(map, token) {
            c.state = State::Closed;
            if c.socket.close().is_err() {
                debug_!("{}: close reported an error", token);
            }
        }
        true
    }

    /// Deregisters the source `token`'s slot was registered with, takes back the
    /// buffers it holds, and reports `Removed`: the channel has left the loop.
    fn forget(&mut self, token: Token) {
        self.pool.release(token);
        if let Some(source) = self.sources.get_mut(token.index()).and_then(Option::take) {
            self.selector.deregister(source);
        }
        self.tracer.trace(token, Trace::Removed);
    }

    /// Sets (`Some`, in nanoseconds of the selector's clock) or cancels (`None`) the
    /// deadline of the channel of `token`, whose deadline field is `deadline`: the
    /// one deadline setter.
    #[inline]
    pub(crate) fn set_deadline(&mut self, deadline: &mut u64, token: Token, at: Option<u64>) {
        match at {
            Some(at) => {
                *deadline = at;
                self.deadlines.push(at, token);
            }
            None => *deadline = NEVER,
        }
    }
}

/// What a handler context needs of the [`Registry`], without the selector type and
/// the capacity (so `Ctx` has neither as a type parameter).
pub(crate) trait Registrar<S: Socket, D> {
    fn add(
        &mut self,
        map: &mut dyn MapAccess<S, D>,
        socket: S,
        dispatcher: D,
    ) -> Result<Token, AddError<S, D>>;
    fn close(&mut self, map: &mut dyn MapAccess<S, D>, token: Token) -> bool;
    fn set_deadline(&mut self, deadline: &mut u64, token: Token, at: Option<u64>);
    fn backoff(&mut self) -> &mut AcceptBackoff;
    fn exit(&mut self);
    fn exiting(&self) -> bool;
    fn lease(&mut self, owner: Token) -> Option<Lease>;
    fn leased(&mut self, lease: &Lease, owner: Token) -> Option<&mut [u8]>;
    fn give_back(&mut self, lease: Lease, owner: Token);
    fn lease_size(&self) -> usize;
}

impl<Sel, S, D, const N: usize, P> Registrar<S, D> for Registry<Sel, N, P>
where
    Sel: Selector,
    S: Socket<Source = Sel::Source>,
    P: Lend,
{
    fn add(
        &mut self,
        map: &mut dyn MapAccess<S, D>,
        socket: S,
        dispatcher: D,
    ) -> Result<Token, AddError<S, D>> {
        Registry::add(self, map, socket, dispatcher)
    }
    fn close(&mut self, map: &mut dyn MapAccess<S, D>, token: Token) -> bool {
        Registry::close(self, map, token)
    }
    fn set_deadline(&mut self, deadline: &mut u64, token: Token, at: Option<u64>) {
        Registry::set_deadline(self, deadline, token, at);
    }
    fn backoff(&mut self) -> &mut AcceptBackoff {
        &mut self.backoff
    }
    fn exit(&mut self) {
        self.exit = true;
    }
    fn exiting(&self) -> bool {
        self.exit
    }
    fn lease(&mut self, owner: Token) -> Option<Lease> {
        self.pool.take(owner)
    }
    fn leased(&mut self, lease: &Lease, owner: Token) -> Option<&mut [u8]> {
        self.pool.bytes(lease, owner)
    }
    fn give_back(&mut self, lease: Lease, owner: Token) {
        self.pool.give_back(lease, owner);
    }
    fn lease_size(&self) -> usize {
        P::SIZE
    }
}
