//! The reactor: the loop ([`Reactor::poll_once`], [`Reactor::run`]) over a channel
//! map and a selector.
//!
//! * `mod.rs`: the public type, adding and removing channels, the pass;
//! * `dispatch.rs`: the state machine that turns one channel's readiness into
//!   callbacks;
//! * `timers.rs`: waiting for, and firing, deadlines and one-shot timers; the end of
//!   the accept back-off.
//!
//! What handlers borrow while they run (the registry) and what they reach through
//! (`Ctx`) live beside it, in `registry.rs` and `ctx.rs`.

mod dispatch;
mod timers;

use core::time::Duration;

use heapless::Vec;

use crate::registry::{Registry, Rule};
use crate::time::{TimerId, Timers, to_nanos};

use crate::map::{ChannelMap, ChannelMut, ChannelRef, Flags, MapAccess, OccupantRef};
use crate::pool::{Lend, NoPool};
use crate::trace::{Observer, Trace, Tracer};
use crate::{
    AddError, Dispatcher, EVENT_BATCH, Event, Events, Interest, InterestMode, Io, PollError,
    Readiness, Selector, Socket, SocketError, State, Token,
};

/// Why [`Reactor::run`] returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RunEnd {
    /// The map became (or was) empty.
    Empty,
    /// The requested number of passes ran.
    Count,
    /// A handler called [`Ctx::exit`](crate::Ctx::exit).
    Exit,
    /// A one-shot timer added with [`Reactor::add_timer`] fired.
    Timer(TimerId),
}

/// What a channel wants to be watched for now, asking its dispatcher: the one
/// interest rule. A listener is never asked `writable()` and has no read interest
/// while the accept back-off pauses it; a connecting channel always has write
/// interest (that is how the end of the connect shows); a `ReadClosed` channel has
/// no read interest; a closed one none.
#[inline]
pub(crate) fn wanted<S: Socket, D: Dispatcher<S>>(channel: OccupantRef<'_, S, D>) -> Interest {
    let d = channel.dispatcher;
    match channel.state {
        State::Listening => Interest::from_flags(
            d.readable() && !channel.flags.has(Flags::READ_PAUSED),
            false,
        ),
        State::Connecting => Interest::WRITABLE.add(Interest::from_flags(d.readable(), false)),
        State::Open | State::Connected | State::Datagram => {
            Interest::from_flags(d.readable(), d.writable())
        }
        State::ReadClosed => Interest::from_flags(false, d.writable()),
        State::Source => Interest::from_flags(d.readable(), false),
        State::Closed => Interest::NONE,
    }
}

/// Whether a dispatcher asks for its interest on change.
fn asks_on_change<S: Socket, D: Dispatcher<S>>(d: &D) -> bool {
    d.interest_mode() == InterestMode::OnChange
}

/// A channel map, its selector, and the loop: the original's `socket_map` plus
/// `loop()`, as one explicit value instead of a global.
///
/// `Reactor::new` is `const`, so a reactor can be placed in a `static` (behind
/// whatever cell the target uses for exclusive access). Nothing in it allocates.
///
/// # Dispatch order
///
/// Each pass brings the selector's registrations up to date (asking every channel
/// that asks every pass, in slot order, `readable()` then `writable()` once each,
/// and the on-change channels that were borrowed mutably since the last pass; see
/// [`InterestMode`](crate::InterestMode)), waits, then dispatches the ready
/// channels in the order the selector reports them, [`EVENT_BATCH`] at a time (a
/// wait that found more is dispatched in further batches within the same pass,
/// through [`Selector::select_more`]). Per channel: read → write →
/// priority → close, with liveness re-checked after every callback, so a channel
/// closed by one callback gets no further one. See [`Selector`] for the readiness
/// table, and [`semantics`](crate::semantics) for every rule.
///
/// # In a `static`
///
/// Everything a reactor needs is inside it, sized by `N` (channels) and `T` (one-shot
/// timers), and `new` is `const`, so the whole server can sit in static memory behind
/// whatever lock the platform has (`std::sync::Mutex` here; a critical-section mutex
/// on bare metal). `examples/echo_server.rs` runs this way and allocates nothing once
/// serving.
///
/// ```
/// use std::sync::Mutex;
/// use asyncore_core::echo::Echo;
/// use asyncore_core::mock::{MockIo, MockSelector, MockSocket};
/// use asyncore_core::Reactor;
///
/// type Server = Reactor<MockIo, Echo<MockSocket, 512>, 64>;
/// static SERVER: Mutex<Server> = Mutex::new(Server::new(MockSelector::new()));
///
/// let mut server = SERVER.lock().unwrap();
/// server.add(MockSocket::listener(1), Echo::listener(63)).unwrap();
/// assert_eq!(server.len(), 1);
/// println!("{} bytes of static memory", core::mem::size_of::<Server>());
/// ```
pub struct Reactor<I: Io, D, const N: usize, const T: usize = 4, P: Lend = NoPool> {
    map: ChannelMap<I::Socket, D, N>,
    registry: Registry<I::Selector, N, P>,
    /// The batch being dispatched, or the last one (the first `events_len`
    /// entries): what the selector reported, after the channels reported `INVALID`
    /// by the reactor itself in a pass's first batch. Fixed, whatever `N`.
    events: [Event; EVENT_BATCH],
    events_len: usize,
    timers: Timers<T>,
    fired: Vec<TimerId, T>,
    /// Ask every on-change channel each pass and report those whose answer changed
    /// unannounced (see [`Reactor::set_interest_audit`]).
    audit: bool,
}

impl<I: Io, D, const N: usize, const T: usize, P: Lend> core::fmt::Debug for Reactor<I, D, N, T, P>
where
    I::Selector: core::fmt::Debug,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reactor")
            .field("map", &self.map)
            .field("selector", &self.registry.selector)
            .finish_non_exhaustive()
    }
}

impl<I: Io, D, const N: usize, const T: usize, P: Lend> Reactor<I, D, N, T, P>
where
    D: Dispatcher<I::Socket>,
{
    /// The interest rule, for the registry (see [`Rule`]).
    pub(crate) const RULE: Rule<I::Socket, D> = Rule {
        on_change: asks_on_change::<I::Socket, D>,
        wanted: wanted::<I::Socket, D>,
    };

    /// An empty reactor over `selector`, with an empty buffer pool `P` (see
    /// [`with_pool`](Self::with_pool) for a pool that needs building).
    pub const fn new(selector: I::Selector) -> Self {
        Self::with_pool(selector, P::EMPTY)
    }

    /// An empty reactor over `selector` that lends the buffers of `pool` to its
    /// channels (see [`BufferPool`](crate::BufferPool)).
    pub const fn with_pool(selector: I::Selector, pool: P) -> Self {
        // An event names its channel's slot in 24 bits: N is at most Event::MAX_SLOTS.
        const { assert!(N <= Event::MAX_SLOTS, "N > Event::MAX_SLOTS") };
        Reactor {
            map: ChannelMap::new(),
            registry: Registry::new(selector, pool),
            events: [Event::EMPTY; EVENT_BATCH],
            events_len: 0,
            timers: Timers::new(),
            fired: Vec::new(),
            audit: false,
        }
    }

    /// Adds a channel; its state comes from [`Socket::initial_state`].
    ///
    /// # Errors
    /// The map is full, or the selector cannot watch the socket (e.g. an fd ≥
    /// `FD_SETSIZE` on `select(2)`): the socket and dispatcher come back untouched.
    pub fn add(
        &mut self,
        socket: I::Socket,
        dispatcher: D,
    ) -> Result<Token, AddError<I::Socket, D>> {
        self.registry
            .add(&mut self.map, socket, dispatcher, Self::RULE)
    }

    /// Sets (or clears) the function told of every [`Trace`](crate::Trace).
    pub fn set_observer(&mut self, observer: Option<Observer>) {
        self.registry.tracer = Tracer::new(observer);
    }

    /// Removes a channel without closing its socket, and hands both values back.
    pub fn remove(&mut self, token: Token) -> Option<(I::Socket, D)> {
        self.registry.remove(&mut self.map, token)?.into_parts()
    }

    /// Closes a channel's socket and drops the channel (no `handle_close`; the
    /// dispatcher is kept if the channel asked for that). Returns `false` for a stale
    /// token.
    pub fn close(&mut self, token: Token) -> bool {
        self.registry.close(&mut self.map, token)
    }

    /// Asks to keep the dispatcher of the channel of `token` when it closes (as
    /// [`Ctx::keep_when_closed`](crate::Ctx::keep_when_closed) does from inside).
    /// Returns `false` for a stale token.
    pub fn keep_when_closed(&mut self, token: Token) -> bool {
        match self.map.channel_mut(token) {
            Some(c) if *c.state != State::Closed => {
                c.flags.set(crate::map::Flags::KEEP);
                true
            }
            _ => false,
        }
    }

    /// Hands back the dispatcher of a closed channel that asked to be kept (see
    /// [`Ctx::keep_when_closed`](crate::Ctx::keep_when_closed)), and frees its slot.
    /// `None` while the channel is still open, or for a token of anything else.
    ///
    /// ```
    /// use asyncore_core::mock::{MockIo, MockSelector, MockSocket};
    /// use asyncore_core::{Ctx, Dispatcher, Error, Reactor, Readiness, Recv, Socket};
    ///
    /// /// Counts what it reads until the peer is done.
    /// #[derive(Default)]
    /// struct Fetch {
    ///     got: usize,
    /// }
    ///
    /// impl<S: Socket> Dispatcher<S> for Fetch {
    ///     type Error = Error;
    ///     fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
    ///         let mut buf = [0u8; 16];
    ///         if let Recv::Data(n) = ctx.recv(&mut buf)? {
    ///             self.got += n;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut reactor: Reactor<MockIo, Fetch, 2> = Reactor::new(MockSelector::new());
    /// let mut peer = MockSocket::connected(1);
    /// peer.feed(b"twelve bytes");
    /// peer.feed_eof();
    /// let t = reactor.add(peer, Fetch::default()).unwrap();
    /// reactor.keep_when_closed(t);
    /// reactor.selector_mut().set_ready(1, Readiness::READABLE);
    /// reactor.run(None, None).unwrap(); // until the map is empty: the peer finished
    /// assert_eq!(reactor.take_closed(t).unwrap().got, 12);
    /// ```
    pub fn take_closed(&mut self, token: Token) -> Option<D> {
        if !self.map.channel(token)?.is_kept() {
            return None;
        }
        let (_, dispatcher) = self.registry.remove(&mut self.map, token)?.into_parts()?;
        Some(dispatcher)
    }

    /// Closes every channel (no `handle_close`) and empties the map. Every channel is
    /// closed even if some closes fail; `EBADF` is ignored.
    ///
    /// # Errors
    /// The first other error a close reported.
    pub fn close_all(&mut self) -> Result<(), SocketError> {
        let mut first = Ok(());
        let mut from = 0;
        while let Some(token) = self.map.next_token(from) {
            from = token.index() + 1;
            if let Some((mut socket, _)) = self.remove(token)
                && let Err(e) = socket.close()
                && e.raw_os_error() != Some(crate::errno::EBADF)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// The channels (to look at; add and remove through the reactor, which keeps the
    /// selector in step).
    pub fn map(&self) -> &ChannelMap<I::Socket, D, N> {
        &self.map
    }

    /// Every channel, mutably, in slot order: socket and dispatcher, not membership.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = ChannelMut<'_, I::Socket, D>> {
        self.map.iter_mut()
    }

    /// The buffer pool lent to channels.
    pub fn pool(&self) -> &P {
        &self.registry.pool
    }

    /// The selector.
    pub fn selector(&self) -> &I::Selector {
        &self.registry.selector
    }

    /// The selector.
    pub fn selector_mut(&mut self) -> &mut I::Selector {
        &mut self.registry.selector
    }

    /// One channel: an open one, or a closed one kept for
    /// [`take_closed`](Self::take_closed) (its state is then `Closed`).
    pub fn get(&self, token: Token) -> Option<ChannelRef<'_, I::Socket, D>> {
        self.map.get(token)
    }

    /// One channel.
    pub fn get_mut(&mut self, token: Token) -> Option<ChannelMut<'_, I::Socket, D>> {
        self.map.get_mut(token)
    }

    /// How many channels there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether a handler called [`Ctx::exit`](crate::Ctx::exit) during the last pass.
    pub fn exit_requested(&self) -> bool {
        self.registry.exit
    }

    /// Brings a channel just dispatched in line with what it wants now, if its own
    /// callbacks listed it as changed and nothing was listed after it (then it is
    /// taken off the list: the list stays short however many channels a pass
    /// dispatches). A channel found broken is listed again, to be reported by the
    /// next pass.
    #[inline]
    fn settle(&mut self, token: Token) {
        if let Some(channel) = self.map.settle(token)
            && self.registry.sync(token, channel, wanted)
        {
            self.map.touch(token);
        }
    }

    /// Brings the selector in line with what the channels want, before a wait: every
    /// channel borrowed mutably since the last pass has its source checked (and, if
    /// it asks on change, its interest); then every channel that asks each pass
    /// ([`InterestMode::EveryPass`]) has its interest checked (every on-change one
    /// too, with the audit on). Channels found broken are put first into the events
    /// buffer, as `INVALID`; returns how many (when they fill the buffer, more may
    /// have been found: see [`relist_broken`](Self::relist_broken)).
    fn sync_interest(&mut self) -> usize {
        let mut broken = 0;
        let (map, registry, events) = (&mut self.map, &mut self.registry, &mut self.events);
        let mut report = |token: Token| {
            if let Some(e) = events.get_mut(broken) {
                *e = Event::new(token.index() as u32, Readiness::INVALID);
                broken += 1;
            }
        };
        while let Some(token) = map.pop_changed() {
            let Some(channel) = map.channel_mut(token) else {
                continue;
            };
            // A channel asking every pass is checked (and reported) below.
            if channel.flags.has(Flags::ON_CHANGE) && registry.sync(token, channel, wanted) {
                report(token);
            }
        }
        if registry.every_pass > 0 || self.audit {
            let audit = self.audit;
            map.for_each_mut(|token, channel| {
                if !channel.flags.has(Flags::ON_CHANGE) {
                    if registry.sync(token, channel, wanted) {
                        report(token);
                    }
                } else if audit
                    && *channel.state != State::Closed
                    && !channel.flags.has(Flags::BROKEN)
                    && wanted(channel.as_ref()) != channel.flags.registered()
                {
                    // Its answer changed without a mutable borrow: interior
                    // mutability, a clock or a global. Report it, then fix it.
                    registry.tracer.trace(token, Trace::StaleInterest);
                    if registry.sync(token, channel, wanted) {
                        report(token);
                    }
                }
            });
        }
        broken
    }

    /// One pass: bring interest up to date, wait up to `timeout` (`None`: no limit),
    /// dispatch. Returns how many channels had readiness (in all the batches of the
    /// pass: a wait that found more than [`EVENT_BATCH`] is dispatched in several,
    /// taking the rest from [`Selector::select_more`]), deadlines that fired
    /// included. An empty map returns `Ok(0)` at once without waiting.
    ///
    /// # Errors
    /// The selector failed, or `timeout` is `None` while no channel has interest (the
    /// wait would never end).
    pub fn poll_once(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<usize, PollError<<I::Selector as Selector>::Error>> {
        self.registry.exit = false;
        self.events_len = 0;
        if self.map.is_empty() {
            self.registry.now = self.registry.selector.now().map(to_nanos);
            self.fire_timers();
            return Ok(0);
        }
        let broken = self.sync_interest();
        let mut wait = self.wait_for(timeout);
        if broken > 0 {
            // Something to report already: look, do not wait.
            wait = Some(Duration::ZERO);
        } else if self.registry.watched == 0 && wait.is_none() {
            return Err(PollError::NothingToWaitFor);
        }
        let free = self.events.get_mut(broken..).unwrap_or_default();
        let mut events = Events::new(free);
        self.registry
            .selector
            .select(&mut events, wait)
            .map_err(PollError::Selector)?;
        // The selector filled the buffer: it may have more of this wait.
        let mut more = events.is_full();
        let mut count = broken + events.len();
        self.events_len = count;
        // The time of this pass, as handlers see it: after the wait.
        self.registry.now = self.registry.selector.now().map(to_nanos);
        self.end_backoff();

        let mut dispatched = 0;
        // The reactor's own reports lead the first batch (not masked by the
        // registered interest: there is none); the others are the selector's alone.
        let mut own = broken;
        self.map.begin_pass();
        'batches: loop {
            for i in 0..count {
                let Some(&event) = self.events.get(i) else {
                    break;
                };
                let Some((token, channel)) = self.map.occupant(event.slot()) else {
                    continue; // closed earlier in this pass
                };
                let readiness = if i < own {
                    event.readiness()
                } else {
                    event.readiness().masked_by(channel.flags.registered())
                };
                if readiness.is_empty() {
                    continue;
                }
                dispatched += 1;
                let state = channel.state;
                self.dispatch(token, state, readiness);
                self.settle(token);
                if self.registry.exit {
                    // A broken channel not reached is reported next pass.
                    for j in i + 1..own {
                        if let Some(e) = self.events.get(j) {
                            self.map.touch_slot(e.slot());
                        }
                    }
                    break 'batches;
                }
            }
            if !more {
                break;
            }
            // The next batch of the same wait.
            let mut events = Events::new(&mut self.events);
            self.registry.selector.select_more(&mut events);
            (more, count, own) = (events.is_full(), events.len(), 0);
            if count == 0 {
                break;
            }
            self.events_len = count;
        }
        if !self.registry.exit {
            dispatched += self.fire_deadlines();
        }
        self.map.end_pass();
        if broken == EVENT_BATCH {
            // Perhaps more than were reported: those past the batch left the
            // changed list unreported, so the next pass must find them again.
            self.map.touch_broken();
        }
        self.fire_timers();
        Ok(dispatched)
    }

    /// The last batch the last pass dispatched, in the order it was dispatched: one
    /// [`Event`] per ready channel, by slot (in a pass's first batch, the channels
    /// the reactor found broken come first, as `INVALID`). A pass whose wait found
    /// more than [`EVENT_BATCH`] channels ready dispatched earlier batches too: count
    /// them with [`poll_once`](Self::poll_once)'s result.
    pub fn events(&self) -> &[Event] {
        self.events.get(..self.events_len).unwrap_or_default()
    }

    /// With `on`, every pass also asks each [`InterestMode::OnChange`](crate::InterestMode::OnChange) channel that
    /// nothing borrowed mutably, and reports [`Trace::StaleInterest`] for any whose
    /// answer changed anyway (its `readable()`/`writable()` depend on something other
    /// than its own fields); the interest is then corrected. A check for tests and
    /// simulations: it costs what [`InterestMode::EveryPass`](crate::InterestMode::EveryPass) costs.
    pub fn set_interest_audit(&mut self, on: bool) {
        self.audit = on;
    }

    /// For a loop that embeds this one (a GUI's, a bigger daemon's): how long this
    /// reactor may sleep before its next deadline or timer is due (`None`: as long
    /// as the other loop likes; `Some(ZERO)`: something is due now). Wait on the
    /// sources [`interests`](Self::interests) lists for at most that long, then run
    /// a pass that does not block: `poll_once(Some(Duration::ZERO))`.
    ///
    /// ```
    /// use core::time::Duration;
    /// use asyncore_core::mock::{MockIo, MockSelector, MockSocket};
    /// use asyncore_core::{Dispatcher, Error, Interest, Reactor, Readiness, Socket};
    ///
    /// struct Idle;
    /// impl<S: Socket> Dispatcher<S> for Idle {
    ///     type Error = Error;
    /// }
    ///
    /// let mut reactor: Reactor<MockIo, Idle, 4> = Reactor::new(MockSelector::new());
    /// reactor.add(MockSocket::connected(3), Idle).unwrap();
    /// // What the other loop must watch, and for how long.
    /// let mut watch = Vec::new();
    /// reactor.interests(|fd, interest| watch.push((fd, interest)));
    /// assert_eq!(watch, [(3, Interest::READABLE)]);
    /// assert_eq!(reactor.timeout(), None, "nothing timed: no limit");
    /// // ...the other loop waits, sees fd 3 readable, and lets this one run.
    /// reactor.selector_mut().set_once(3, Readiness::READABLE);
    /// assert_eq!(reactor.poll_once(Some(Duration::ZERO)).unwrap(), 1);
    /// ```
    pub fn timeout(&mut self) -> Option<Duration> {
        self.wait_for(None)
    }

    /// For a loop that embeds this one: calls `f` with each source this reactor
    /// watches and what for, in slot order, after bringing interest up to date as a
    /// pass does. Channels found broken meanwhile are left for the next pass to
    /// report (however many); this clears [`events`](Self::events). See
    /// [`timeout`](Self::timeout).
    pub fn interests(&mut self, mut f: impl FnMut(<I::Socket as Socket>::Source, Interest)) {
        let broken = self.sync_interest();
        self.events_len = 0;
        for i in 0..broken {
            if let Some(e) = self.events.get(i) {
                self.map.touch_slot(e.slot());
            }
        }
        if broken == EVENT_BATCH {
            self.map.touch_broken();
        }
        self.map.for_each(|_, channel| {
            let registered = channel.flags.registered();
            if !registered.is_empty() {
                f(channel.socket.source(), registered);
            }
        });
    }

    /// Runs passes until the map is empty, `count` passes ran (`None`: no limit), a
    /// handler calls [`Ctx::exit`](crate::Ctx::exit), or a one-shot timer fires. `timeout` bounds each
    /// pass, as in the original. `Some(0)` runs nothing.
    ///
    /// # Errors
    /// As [`poll_once`](Self::poll_once); the map is left as it is, so `run` can be
    /// called again.
    pub fn run(
        &mut self,
        timeout: Option<Duration>,
        count: Option<u32>,
    ) -> Result<RunEnd, PollError<<I::Selector as Selector>::Error>> {
        let mut passes = 0u32;
        loop {
            if let Some(id) = self.take_fired_timer() {
                return Ok(RunEnd::Timer(id));
            }
            if self.map.is_empty() {
                return Ok(RunEnd::Empty);
            }
            if count.is_some_and(|c| passes >= c) {
                return Ok(RunEnd::Count);
            }
            self.poll_once(timeout)?;
            passes = passes.saturating_add(1);
            if self.registry.exit {
                return Ok(RunEnd::Exit);
            }
        }
    }
}
