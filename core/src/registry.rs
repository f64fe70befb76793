//! The registry: everything of a reactor except its channels' slots — the selector
//! and what is registered with it, the channel deadlines, the accept back-off, the
//! observer, the exit flag and the time of the pass. The reactor owns it; a
//! handler's [`Ctx`](crate::Ctx) borrows it (as a [`Registrar`], without the
//! selector type and the capacity) for the length of one callback. Adding a channel,
//! removing one and setting a deadline each have their one routine here.

use crate::fmt::debug_;
use crate::map::{Channel, Flags, MapAccess, Occupant, OccupantRef, Removed};
use crate::pool::{Lease, Lend};
#[cfg(doc)]
use crate::time::to_nanos;
use crate::time::{AcceptBackoff, Deadlines};
use crate::trace::{Trace, Tracer};
use crate::{AddError, AddErrorKind, Interest, Selector, Socket, SourceError, State, Token};

pub(crate) struct Registry<Sel: Selector, const N: usize, P> {
    pub(crate) selector: Sel,
    pub(crate) deadlines: Deadlines<N>,
    pub(crate) backoff: AcceptBackoff,
    pub(crate) tracer: Tracer,
    /// A handler called `Ctx::exit` during this pass.
    pub(crate) exit: bool,
    /// The time of the current pass, as stored times are ([`to_nanos`]; `None`: the
    /// selector has no clock). Not a `Duration`: `Option<Duration>`'s `None` is not
    /// zero bytes, this is, so an empty reactor is all zeros.
    pub(crate) now: Option<u64>,
    /// The buffers lent to channels.
    pub(crate) pool: P,
    /// How many channels ask for their interest every pass
    /// (`InterestMode::EveryPass`): with none, a pass visits only the channels
    /// that changed.
    pub(crate) every_pass: u32,
    /// How many channels the selector watches for something (registered with a
    /// non-empty interest).
    pub(crate) watched: u32,
}

/// What the registry needs to know of a dispatcher: whether it asks for its
/// interest on change, and what a channel wants to be watched for now. The reactor
/// supplies them (they call the [`Dispatcher`](crate::Dispatcher) methods); the
/// registry does not name that trait, which would close a circle of imports
/// (registry → dispatcher → ctx → registry).
pub(crate) struct Rule<S, D> {
    /// Whether the dispatcher asks for its interest on change.
    pub(crate) on_change: fn(&D) -> bool,
    /// What the channel wants to be watched for now.
    pub(crate) wanted: fn(OccupantRef<'_, S, D>) -> Interest,
}

impl<S, D> Clone for Rule<S, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S, D> Copy for Rule<S, D> {}

impl<Sel: Selector, const N: usize, P: Lend> Registry<Sel, N, P> {
    pub(crate) const fn new(selector: Sel, pool: P) -> Self {
        Registry {
            selector,
            deadlines: Deadlines::new(),
            backoff: AcceptBackoff::new(),
            tracer: Tracer::NONE,
            exit: false,
            now: None,
            pool,
            every_pass: 0,
            watched: 0,
        }
    }

    /// Adds a channel: the one routine behind `Reactor::add` and `Ctx::add`. Checks
    /// capacity, refuses a closed socket, registers the source with the selector
    /// (under the token the channel will have, with the interest it has now),
    /// inserts, reports `Added`. On any refusal the selector is left as it was and
    /// the values come back. Never inlined (nor are `remove` and `close`): a
    /// channel passes through it by value, and a caller that holds a reactor (a
    /// firmware's main loop) would otherwise keep that temporary in its own frame.
    #[inline(never)]
    pub(crate) fn add<S, D>(
        &mut self,
        map: &mut (impl MapAccess<S, D> + ?Sized),
        mut socket: S,
        dispatcher: D,
        rule: Rule<S, D>,
    ) -> Result<Token, AddError<S, D>>
    where
        S: Socket<Source = Sel::Source>,
    {
        let refuse = |kind, socket, dispatcher| AddError {
            kind,
            socket,
            dispatcher,
        };
        let Some(token) = map.vacant() else {
            return Err(refuse(AddErrorKind::Full, socket, dispatcher));
        };
        let state = socket.initial_state();
        if state == State::Closed {
            let kind = AddErrorKind::Rejected(SourceError::Invalid);
            return Err(refuse(kind, socket, dispatcher));
        }
        let mut channel = Channel::new(socket, state, dispatcher);
        let on_change = (rule.on_change)(&channel.dispatcher);
        if on_change {
            channel.flags.set(Flags::ON_CHANGE);
        }
        let interest = (rule.wanted)(channel.as_ref());
        let source = channel.socket.source();
        if let Err(e) = self.selector.register(token, source, interest) {
            let kind = AddErrorKind::Rejected(e);
            return Err(refuse(kind, channel.socket, channel.dispatcher));
        }
        channel.flags.set_registered(interest);
        match map.insert(channel) {
            Ok(token) => {
                // A slot's deadline left with its channel (`forget`); this is for
                // certain.
                self.deadlines.cancel(token.index());
                if !on_change {
                    self.every_pass += 1;
                }
                if !interest.is_empty() {
                    self.watched += 1;
                }
                self.tracer.trace(token, Trace::Added);
                Ok(token)
            }
            Err(c) => {
                // Unreachable (the map had room a moment ago), but never panic.
                self.selector.deregister(token, source, interest);
                Err(refuse(AddErrorKind::Full, c.socket, c.dispatcher))
            }
        }
    }

    /// Brings the selector in line with the channel of `token`: asks what it wants
    /// (`wanted`) and re-registers when that differs from what the selector has.
    /// Returns whether the channel is broken (to be reported `INVALID`): the selector
    /// refused the change, or an earlier check found its source gone. The per-pass
    /// path: one interest query and one comparison when nothing changed.
    #[inline]
    pub(crate) fn sync<S, D>(
        &mut self,
        token: Token,
        channel: Occupant<'_, S, D>,
        wanted: impl Fn(OccupantRef<'_, S, D>) -> Interest,
    ) -> bool
    where
        S: Socket<Source = Sel::Source>,
    {
        // The view is taken by value and only its fields go on, so on this path it
        // stays in registers (a `&mut` to it would be built in memory per channel).
        if channel.flags.has(Flags::BROKEN) {
            // Reported until it closes (a kept, closed channel is not reported).
            return *channel.state != State::Closed;
        }
        let want = wanted(channel.as_ref());
        if want == channel.flags.registered() {
            return false;
        }
        self.change(token, channel.socket, channel.flags, want)
    }

    /// Re-registers the channel of `token` for `want`; see [`sync`](Self::sync).
    fn change<S>(&mut self, token: Token, socket: &S, flags: &mut Flags, want: Interest) -> bool
    where
        S: Socket<Source = Sel::Source>,
    {
        // The socket's source is the registered one: a handler that closed its
        // socket was caught after its callback (and the channel is broken, never
        // here). A socket closed from outside, through `Reactor::get_mut`, reads as
        // invalid and the selector refuses it, which breaks the channel.
        let source = socket.source();
        let was = flags.registered();
        match self.selector.reregister(token, source, was, want) {
            Ok(()) => {
                flags.set_registered(want);
                match (was.is_empty(), want.is_empty()) {
                    (true, false) => self.watched += 1,
                    (false, true) => self.watched = self.watched.saturating_sub(1),
                    _ => {}
                }
                false
            }
            Err(_) => {
                debug_!("{}: the selector refused an interest change", token);
                self.unwatch(token, flags, source);
                true
            }
        }
    }

    /// Deregisters a channel that stays in the map but whose source (registered as
    /// `source`) is gone, and marks it broken: the next pass reports it `INVALID`.
    pub(crate) fn unwatch(&mut self, token: Token, flags: &mut Flags, source: Sel::Source) {
        if flags.has(Flags::BROKEN) {
            return;
        }
        let was = flags.registered();
        flags.set_registered(Interest::NONE);
        if !was.is_empty() {
            self.watched = self.watched.saturating_sub(1);
        }
        self.selector.deregister(token, source, was);
        flags.set(Flags::BROKEN);
    }

    /// Takes a channel out of the map: the one routine behind every removal and
    /// close. Deregisters the source its slot was registered with and reports
    /// `Removed`; the socket is left open for the caller to close or keep.
    #[inline(never)]
    pub(crate) fn remove<S, D>(
        &mut self,
        map: &mut (impl MapAccess<S, D> + ?Sized),
        token: Token,
    ) -> Option<Removed<S, D>>
    where
        S: Socket<Source = Sel::Source>,
    {
        let mut channel = map.remove(token)?;
        if !channel.is_kept()
            && let Some(mut c) = channel.occupant()
        {
            self.forget(token, &mut c);
        }
        Some(channel)
    }

    /// Closes the channel of `token`: the one close routine (a handler's close, the
    /// close after `handle_close` or a failed connect, `Reactor::close`,
    /// `Ctx::close_channel`). Deregisters its source, then closes its socket (in
    /// that order: `epoll` must drop an fd before it closes, or a duplicate of it
    /// would keep reporting) and reports `Removed`; the dispatcher is dropped, or kept
    /// in the slot for `Reactor::take_closed` if the channel asked for that. `false`
    /// for a stale token or a channel closed already.
    #[inline(never)]
    pub(crate) fn close<S, D>(
        &mut self,
        map: &mut (impl MapAccess<S, D> + ?Sized),
        token: Token,
    ) -> bool
    where
        S: Socket<Source = Sel::Source>,
    {
        let Some(mut c) = map.channel_mut(token) else {
            return false;
        };
        if c.is_kept() {
            return false;
        }
        if c.flags.has(Flags::KEEP) {
            self.forget(token, &mut c);
            if c.socket.close().is_err() {
                debug_!("{}: close reported an error", token);
            }
            map.keep_closed(token);
        } else if let Some(mut removed) = self.remove(map, token)
            && let Some(c) = removed.occupant()
        {
            *c.state = State::Closed;
            if c.socket.close().is_err() {
                debug_!("{}: close reported an error", token);
            }
        }
        true
    }

    /// Deregisters the source `token`'s slot was registered with, takes back the
    /// buffers it holds, and reports `Removed`: the channel has left the loop.
    fn forget<S, D>(&mut self, token: Token, channel: &mut Occupant<'_, S, D>)
    where
        S: Socket<Source = Sel::Source>,
    {
        self.pool.release(token);
        self.deadlines.cancel(token.index());
        let was = channel.flags.registered();
        channel.flags.set_registered(Interest::NONE);
        if !was.is_empty() {
            self.watched = self.watched.saturating_sub(1);
        }
        if !channel.flags.has(Flags::ON_CHANGE) {
            self.every_pass = self.every_pass.saturating_sub(1);
        }
        // A broken channel left the selector already. Otherwise its socket is still
        // open (the reactor closes it after this), with the registered source.
        if !channel.flags.has(Flags::BROKEN) {
            self.selector
                .deregister(token, channel.socket.source(), was);
        }
        channel.flags.set(Flags::BROKEN);
        self.tracer.trace(token, Trace::Removed);
    }

    /// Sets (`Some`, in nanoseconds of the selector's clock) or cancels (`None`) the
    /// deadline of the channel of `token` (live: the caller checked): the one
    /// deadline setter.
    #[inline]
    pub(crate) fn set_deadline(&mut self, token: Token, at: Option<u64>) {
        match at {
            Some(at) => self.deadlines.set(token.index(), at),
            None => self.deadlines.cancel(token.index()),
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
        rule: Rule<S, D>,
    ) -> Result<Token, AddError<S, D>>;
    fn close(&mut self, map: &mut dyn MapAccess<S, D>, token: Token) -> bool;
    fn set_deadline(&mut self, token: Token, at: Option<u64>);
    fn deadline(&self, token: Token) -> Option<u64>;
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
        rule: Rule<S, D>,
    ) -> Result<Token, AddError<S, D>> {
        Registry::add(self, map, socket, dispatcher, rule)
    }
    fn close(&mut self, map: &mut dyn MapAccess<S, D>, token: Token) -> bool {
        Registry::close(self, map, token)
    }
    fn set_deadline(&mut self, token: Token, at: Option<u64>) {
        Registry::set_deadline(self, token, at);
    }
    fn deadline(&self, token: Token) -> Option<u64> {
        self.deadlines.get(token.index())
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
