//! The reactor: a channel map, a selector, and the dispatch state machine.

use core::time::Duration;

use heapless::Vec;

use crate::{
    AddError, ChannelMap, ChannelMut, ChannelRef, Ctx, Dispatcher, Interest, PollError, ReadClosed,
    Readiness, Registration, Selector, Socket, SocketError, State, Token,
    fmt::{debug_, trace_},
    map::{Channel, Flags, Split},
    time::{AcceptBackoff, DeadlineQueue, Deadlines, NEVER, TimerError, TimerId, Timers, to_nanos},
};

/// What the reactor did to a channel, as reported to an [`Observer`]: one event right
/// before each callback, plus `Added` and `Removed`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// The channel entered the map.
    Added,
    /// `handle_connect` is about to run.
    Connect,
    /// `handle_connect_failed` is about to run.
    ConnectFailed,
    /// `handle_accept` is about to run.
    Accept,
    /// `handle_read` is about to run.
    Read,
    /// `handle_write` is about to run.
    Write,
    /// `handle_expt` is about to run.
    Expt,
    /// `handle_read_closed` is about to run.
    ReadClosed,
    /// `handle_close` is about to run.
    Close,
    /// `handle_error` is about to run.
    Error,
    /// `handle_timeout` is about to run.
    Timeout,
    /// The channel left the map (closed or removed).
    Removed,
}

/// A function told of every [`Event`], for tracing and invariant checks (the
/// simulator's checker uses it). A plain `fn`: it costs one branch when unset.
pub type Observer = fn(Token, Event);

/// Why [`Reactor::run`] returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RunEnd {
    /// The map became (or was) empty.
    Empty,
    /// The requested number of passes ran.
    Count,
    /// A handler called [`Ctx::exit`].
    Exit,
    /// A one-shot timer added with [`Reactor::add_timer`] fired; its key.
    Timer(u32),
}

/// A channel map, its selector, and the loop: the original's `socket_map` plus
/// `loop()`, as one explicit value instead of a global.
///
/// `Reactor::new` is `const`, so a reactor can be placed in a `static` (behind
/// whatever cell the target uses for exclusive access). Nothing in it allocates.
///
/// # Dispatch order
///
/// Each pass asks every channel, in slot order, for its interest (`readable()` then
/// `writable()`, once each), hands the non-empty ones to the selector, then
/// dispatches the ready ones in slot order. Per channel: read → write → priority →
/// close, with liveness re-checked after every callback, so a channel closed by one
/// callback gets no further one. See [`Selector`] for the readiness table.
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
/// use asyncore_core::mock::{MockSelector, MockSocket};
/// use asyncore_core::Reactor;
///
/// type Server = Reactor<MockSelector, MockSocket, Echo<MockSocket, 512>, 64>;
/// static SERVER: Mutex<Server> = Mutex::new(Server::new(MockSelector::new()));
///
/// let mut server = SERVER.lock().unwrap();
/// server.add(MockSocket::listener(1), Echo::listener(63)).unwrap();
/// assert_eq!(server.len(), 1);
/// println!("{} bytes of static memory", core::mem::size_of::<Server>());
/// ```
pub struct Reactor<
    Sel: Selector,
    S: Socket<Source = Sel::Source>,
    D,
    const N: usize,
    const T: usize = 4,
> {
    map: ChannelMap<S, D, N>,
    selector: Sel,
    registrations: Vec<Registration<Sel::Source>, N>,
    ready: [Readiness; N],
    /// The source each slot was registered with: what `deregister` gets, even if a
    /// handler closed the socket (whose source may then read as invalid).
    sources: [Option<Sel::Source>; N],
    exit: bool,
    observer: Option<Observer>,
    deadlines: Deadlines<N>,
    timers: Timers<T>,
    fired: Vec<u32, T>,
    /// The time of the current pass (`None`: the selector has no clock).
    now: Option<Duration>,
    backoff: AcceptBackoff,
}

impl<Sel, S, D, const N: usize, const T: usize> core::fmt::Debug for Reactor<Sel, S, D, N, T>
where
    Sel: Selector + core::fmt::Debug,
    S: Socket<Source = Sel::Source>,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reactor")
            .field("map", &self.map)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl<Sel, S, D, const N: usize, const T: usize> Reactor<Sel, S, D, N, T>
where
    Sel: Selector,
    S: Socket<Source = Sel::Source>,
    D: Dispatcher<S>,
{
    /// An empty reactor over `selector`.
    pub const fn new(selector: Sel) -> Self {
        Reactor {
            map: ChannelMap::new(),
            selector,
            registrations: Vec::new(),
            ready: [Readiness::EMPTY; N],
            sources: [None; N],
            exit: false,
            observer: None,
            deadlines: Deadlines::new(),
            timers: Timers::new(),
            fired: Vec::new(),
            now: None,
            backoff: AcceptBackoff::new(),
        }
    }

    /// Adds a channel; its state comes from [`Socket::initial_state`].
    ///
    /// # Errors
    /// The map is full, or the selector cannot watch the socket (e.g. an fd ≥
    /// `FD_SETSIZE` on `select(2)`): the socket and dispatcher come back untouched.
    pub fn add(&mut self, socket: S, dispatcher: D) -> Result<Token, AddError<S, D>> {
        crate::dispatcher::add_channel(
            &mut self.map.meta,
            &mut self.map.slots[..],
            N,
            &mut self.selector,
            &mut self.sources,
            self.observer,
            socket,
            dispatcher,
        )
    }

    /// Sets (or clears) the function told of every [`Event`].
    pub fn set_observer(&mut self, observer: Option<Observer>) {
        self.observer = observer;
    }

    /// Deregisters the source `token`'s slot was registered with.
    fn forget_source(&mut self, token: Token) {
        if let Some(source) = self.sources.get_mut(token.index()).and_then(Option::take) {
            self.selector.deregister(source);
        }
    }

    #[inline]
    fn notify(&self, token: Token, event: Event) {
        if let Some(f) = self.observer {
            f(token, event);
        }
    }

    /// Removes a channel without closing its socket, and hands both values back.
    pub fn remove(&mut self, token: Token) -> Option<(S, D)> {
        let (socket, dispatcher) = self.map.remove(token)?;
        self.forget_source(token);
        self.notify(token, Event::Removed);
        Some((socket, dispatcher))
    }

    /// Closes a channel's socket and drops the channel (no `handle_close`). Returns
    /// `false` for a stale token.
    pub fn close(&mut self, token: Token) -> bool {
        match self.remove(token) {
            Some((mut socket, _)) => {
                let _ = socket.close();
                true
            }
            None => false,
        }
    }

    /// Closes every channel (no `handle_close`) and empties the map. Every channel is
    /// closed even if some closes fail; `EBADF` is ignored.
    ///
    /// # Errors
    /// The first other error a close reported.
    pub fn close_all(&mut self) -> Result<(), SocketError> {
        let mut first = Ok(());
        for i in 0..N {
            let slot = &self.map.slots[i];
            if slot.channel.is_none() {
                continue;
            }
            let token = Token::new(i as u32, slot.generation);
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

    /// The channels.
    pub fn map(&self) -> &ChannelMap<S, D, N> {
        &self.map
    }

    /// The channels.
    pub fn map_mut(&mut self) -> &mut ChannelMap<S, D, N> {
        &mut self.map
    }

    /// The selector.
    pub fn selector(&self) -> &Sel {
        &self.selector
    }

    /// The selector.
    pub fn selector_mut(&mut self) -> &mut Sel {
        &mut self.selector
    }

    /// One channel.
    pub fn get(&self, token: Token) -> Option<ChannelRef<'_, S, D>> {
        self.map.get(token)
    }

    /// One channel.
    pub fn get_mut(&mut self, token: Token) -> Option<ChannelMut<'_, S, D>> {
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

    /// Whether a handler called [`Ctx::exit`] during the last pass.
    pub fn exit_requested(&self) -> bool {
        self.exit
    }

    /// The interest of one channel this pass, asking its dispatcher.
    fn interest(channel: &Channel<S, D>) -> Interest {
        let d = &channel.dispatcher;
        match channel.state {
            // A listener paused by the accept back-off gets no read interest (only
            // listeners accept, so only they are ever paused).
            State::Listening => Interest::from_flags(
                d.readable() && !channel.flags.has(Flags::READ_PAUSED),
                false,
            ),
            State::Connecting => Interest::WRITABLE.add(Interest::from_flags(d.readable(), false)),
            State::Open | State::Connected => Interest::from_flags(d.readable(), d.writable()),
            State::ReadClosed => Interest::from_flags(false, d.writable()),
            State::Closed => Interest::NONE,
        }
    }

    /// One pass: compute interest, wait up to `timeout` (`None`: no limit), dispatch.
    /// Returns how many channels had readiness. An empty map returns `Ok(0)` at once
    /// without waiting.
    ///
    /// # Errors
    /// The selector failed, or `timeout` is `None` while no channel has interest (the
    /// wait would never end).
    pub fn poll_once(&mut self, timeout: Option<Duration>) -> Result<usize, PollError<Sel::Error>> {
        self.exit = false;
        if self.map.is_empty() {
            self.now = self.selector.now();
            self.fire_timers();
            return Ok(0);
        }
        self.registrations.clear();
        // Slots past `used` were never occupied: a large, sparsely used map costs
        // nothing for its empty tail.
        let used = self.map.meta.used();
        let occupied = self.map.slots.get(..used).unwrap_or_default();
        for (i, slot) in occupied.iter().enumerate() {
            let Some(channel) = &slot.channel else {
                continue;
            };
            let interest = Self::interest(channel);
            if interest.is_empty() {
                continue;
            }
            let registration = Registration {
                token: Token::new(i as u32, slot.generation),
                source: channel.socket.source(),
                interest,
            };
            // Cannot fail: at most one registration per slot.
            let _ = self.registrations.push(registration);
        }
        // Wait no longer than the next deadline or timer (the clock is read only when
        // there is one: a pass without deadlines reads it once, after the wait).
        let next = self
            .next_deadline()
            .min(self.timers.next())
            .min(self.backoff.resume_at);
        let wait = match next {
            NEVER => timeout,
            at => match self.selector.now() {
                Some(now) => {
                    let until = Duration::from_nanos(at.saturating_sub(to_nanos(now)));
                    Some(timeout.map_or(until, |t| t.min(until)))
                }
                None => timeout,
            },
        };
        if self.registrations.is_empty() && wait.is_none() {
            return Err(PollError::NothingToWaitFor);
        }
        let count = self.registrations.len();
        let ready = &mut self.ready[..count];
        ready.fill(Readiness::EMPTY);
        self.selector
            .select(&self.registrations, ready, wait)
            .map_err(PollError::Selector)?;
        // The time of this pass, as handlers see it: after the wait.
        self.now = self.selector.now();
        self.end_backoff();

        let mut dispatched = 0;
        self.map.meta.begin_pass();
        for i in 0..count {
            if self.ready[i].is_empty() {
                continue;
            }
            let reg = self.registrations[i];
            let readiness = self.ready[i].masked_by(reg.interest);
            if readiness.is_empty() {
                continue;
            }
            dispatched += 1;
            self.dispatch(reg.token, readiness);
            if self.exit {
                break;
            }
        }
        if !self.exit {
            dispatched += self.fire_deadlines();
        }
        self.map.meta.end_pass(&mut self.map.slots);
        self.fire_timers();
        Ok(dispatched)
    }

    /// Gives paused channels their read interest back once the accept back-off is
    /// over (they take part from the next pass on).
    fn end_backoff(&mut self) {
        if self.backoff.resume_at == NEVER
            || self
                .now
                .is_some_and(|now| to_nanos(now) < self.backoff.resume_at)
        {
            return;
        }
        self.backoff.resume_at = NEVER;
        let used = self.map.meta.used();
        for slot in self.map.slots.iter_mut().take(used) {
            if let Some(c) = &mut slot.channel {
                c.flags.clear(Flags::READ_PAUSED);
            }
        }
    }

    /// The earliest live channel deadline, dropping stale heap entries on the way.
    fn next_deadline(&mut self) -> u64 {
        if self.deadlines.stale {
            let slots = &self.map.slots;
            self.deadlines
                .rebuild(slots.iter().enumerate().filter_map(|(i, slot)| {
                    let c = slot.channel.as_ref()?;
                    (c.deadline != NEVER)
                        .then(|| (c.deadline, Token::new(i as u32, slot.generation)))
                }));
        }
        while let Some((at, token)) = self.deadlines.peek() {
            let live = self
                .map
                .slots
                .get(token.index())
                .and_then(|s| s.get(token))
                .is_some_and(|c| c.deadline == at);
            if live {
                return at;
            }
            self.deadlines.pop();
        }
        NEVER
    }

    /// Runs `handle_timeout` for every channel whose deadline has passed. Returns how
    /// many ran.
    fn fire_deadlines(&mut self) -> usize {
        let Some(now) = self.now.map(to_nanos) else {
            return 0;
        };
        let mut fired = 0;
        loop {
            let at = self.next_deadline();
            if at == NEVER || at > now || self.exit {
                return fired;
            }
            let Some((_, token)) = self.deadlines.peek() else {
                return fired;
            };
            self.deadlines.pop();
            if let Some(c) = self
                .map
                .slots
                .get_mut(token.index())
                .and_then(|s| s.get_mut(token))
            {
                c.deadline = NEVER;
            }
            fired += 1;
            self.call(token, Event::Timeout, |d, ctx| d.handle_timeout(ctx));
        }
    }

    /// Moves due one-shot timers to the fired list.
    fn fire_timers(&mut self) {
        if self.timers.len() == 0 {
            // Nothing pending: no need to read the clock.
            return;
        }
        let Some(now) = self.selector.now().map(to_nanos) else {
            return;
        };
        while let Some(key) = self.timers.pop_due(now) {
            // Cannot fail: at most T timers exist.
            let _ = self.fired.push(key);
        }
    }

    /// The selector's clock now (`None`: it has none).
    pub fn now(&self) -> Option<Duration> {
        self.selector.now()
    }

    /// Sets (`Some`) or cancels (`None`) the deadline of a channel, as
    /// [`Ctx::set_deadline_at`] does from inside. Returns `Ok(false)` for a stale token.
    ///
    /// # Errors
    /// [`TimerError::NoClock`] when the selector has no clock.
    pub fn set_deadline(&mut self, token: Token, at: Option<Duration>) -> Result<bool, TimerError> {
        if self.selector.now().is_none() {
            return Err(TimerError::NoClock);
        }
        let Some(c) = self
            .map
            .slots
            .get_mut(token.index())
            .and_then(|s| s.get_mut(token))
        else {
            return Ok(false);
        };
        match at {
            Some(at) => {
                let at = to_nanos(at);
                c.deadline = at;
                self.deadlines.push(at, token);
            }
            None => c.deadline = NEVER,
        }
        Ok(true)
    }

    /// Adds a one-shot timer `after` from now, not tied to any channel. When it fires,
    /// [`run`](Self::run) returns [`RunEnd::Timer`]`(key)` (after [`poll_once`](Self::poll_once),
    /// see [`take_fired_timer`](Self::take_fired_timer)).
    ///
    /// # Errors
    /// [`TimerError::Full`] when `T` timers are pending; [`TimerError::NoClock`].
    pub fn add_timer(&mut self, after: Duration, key: u32) -> Result<TimerId, TimerError> {
        let now = self.selector.now().ok_or(TimerError::NoClock)?;
        if self.timers.len() + self.fired.len() >= T {
            return Err(TimerError::Full);
        }
        self.timers.add(to_nanos(now.saturating_add(after)), key)
    }

    /// Cancels a pending one-shot timer; `false` if it already fired or never was.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// The key of a fired one-shot timer not yet reported, oldest first.
    pub fn take_fired_timer(&mut self) -> Option<u32> {
        if self.fired.is_empty() {
            None
        } else {
            Some(self.fired.remove(0))
        }
    }

    /// Runs passes until the map is empty, `count` passes ran (`None`: no limit), a
    /// handler calls [`Ctx::exit`], or a one-shot timer fires. `timeout` bounds each
    /// pass, as in the original. `Some(0)` runs nothing.
    ///
    /// # Errors
    /// As [`poll_once`](Self::poll_once); the map is left as it is, so `run` can be
    /// called again.
    pub fn run(
        &mut self,
        timeout: Option<Duration>,
        count: Option<u32>,
    ) -> Result<RunEnd, PollError<Sel::Error>> {
        let mut passes = 0u32;
        loop {
            if let Some(key) = self.take_fired_timer() {
                return Ok(RunEnd::Timer(key));
            }
            if self.map.is_empty() {
                return Ok(RunEnd::Empty);
            }
            if count.is_some_and(|c| passes >= c) {
                return Ok(RunEnd::Count);
            }
            self.poll_once(timeout)?;
            passes = passes.saturating_add(1);
            if self.exit {
                return Ok(RunEnd::Exit);
            }
        }
    }

    /// The dispatch state machine for one ready channel.
    fn dispatch(&mut self, token: Token, mut readiness: Readiness) {
        let index = token.index();
        let state = match self.map.slots.get(index).and_then(|s| s.get(token)) {
            Some(c) => c.state,
            None => return, // stale: closed earlier in this pass
        };
        trace_!("dispatch {} {}", token, readiness.bits());

        if readiness.is_invalid() {
            self.deliver_close(token);
            return;
        }

        match state {
            State::Closed => return,
            State::Listening => {
                if readiness.is_readable() {
                    self.call(token, Event::Accept, |d, ctx| d.handle_accept(ctx));
                }
                if self.proceed(token)
                    && readiness.intersects(Readiness::ERROR.add(Readiness::HANGUP))
                {
                    self.deliver_close(token);
                }
                return;
            }
            State::Connecting => {
                let finishing = Readiness::READABLE
                    .add(Readiness::WRITABLE)
                    .add(Readiness::ERROR)
                    .add(Readiness::HANGUP);
                if !readiness.intersects(finishing) {
                    return;
                }
                if !self.finish_connect(token, readiness) {
                    return;
                }
                // The write interest was the reactor's, to see the connect finish: a
                // dispatcher that does not want to write gets no handle_write for it.
                if !self.map.get(token).is_some_and(|c| c.dispatcher.writable()) {
                    readiness = readiness.remove(Readiness::WRITABLE);
                }
            }
            _ => {}
        }

        if readiness.is_readable()
            && !self.exit
            && let Some(c) = self.map.slots.get_mut(index).and_then(|s| s.get_mut(token))
            && Self::is_live(c)
            && c.state != State::ReadClosed
        {
            c.flags.clear(Flags::GOT_DATA);
            self.call(token, Event::Read, |d, ctx| d.handle_read(ctx));
        }
        if readiness.is_writable() && self.proceed(token) {
            self.call(token, Event::Write, |d, ctx| d.handle_write(ctx));
        }
        if readiness.is_priority() && self.proceed(token) {
            let pending = self.with_socket(token, |s| s.take_error());
            match pending {
                Some(Ok(None)) => self.call(token, Event::Expt, |d, ctx| d.handle_expt(ctx)),
                Some(_) => self.deliver_close(token),
                None => {}
            }
        }
        // A hang-up with data behind it (poll reports IN|HUP once both directions are
        // shut) closes only when a read finds nothing more: data is never dropped, and
        // the EOF path closes as it does under select.
        if readiness.intersects(Readiness::ERROR.add(Readiness::HANGUP)) {
            let drained = !(readiness.is_readable()
                && self.flags(token).is_some_and(|f| f.has(Flags::GOT_DATA)));
            if (readiness.is_error() || (readiness.is_hangup() && drained)) && self.proceed(token) {
                self.deliver_close(token);
            }
        }
    }

    /// Completes a non-blocking connect. Returns whether the channel is connected and
    /// still open.
    fn finish_connect(&mut self, token: Token, readiness: Readiness) -> bool {
        let pending = self.with_socket(token, |s| s.take_error());
        let failure = match pending {
            Some(Ok(None)) => {
                if readiness.intersects(Readiness::ERROR.add(Readiness::HANGUP))
                    && !readiness.intersects(Readiness::READABLE.add(Readiness::WRITABLE))
                {
                    // Hung up without a pending error and without being usable.
                    Some(SocketError::new(
                        crate::ErrorKind::NotConnected,
                        crate::errno::ENOTCONN,
                    ))
                } else {
                    None
                }
            }
            Some(Ok(Some(e))) | Some(Err(e)) => Some(e),
            None => return false,
        };
        if let Some(error) = failure {
            debug_!("{}: connect failed", token);
            self.notify(token, Event::ConnectFailed);
            self.with_ctx(token, |d, ctx| d.handle_connect_failed(ctx, error));
            self.finish_close(token);
            return false;
        }
        self.map.set_state(token, State::Connected);
        self.call(token, Event::Connect, |d, ctx| d.handle_connect(ctx));
        self.live(token)
    }

    fn flags(&self, token: Token) -> Option<Flags> {
        self.map
            .slots
            .get(token.index())?
            .get(token)
            .map(|c| c.flags)
    }

    /// Whether the channel is there and no close is pending.
    fn live(&self, token: Token) -> bool {
        self.map
            .slots
            .get(token.index())
            .and_then(|s| s.get(token))
            .is_some_and(Self::is_live)
    }

    /// Whether no close is pending for `c`.
    #[inline]
    fn is_live(c: &Channel<S, D>) -> bool {
        c.state != State::Closed
            && !c
                .flags
                .has(Flags::CLOSE_REQUESTED | Flags::DISCONNECTED | Flags::EOF)
    }

    /// Whether the next dispatch step of `token` may run: the channel is live and no
    /// handler asked the loop to exit (like the original's `ExitNow`, an exit ends the
    /// dispatch at once, not after the channel's remaining steps).
    fn proceed(&self, token: Token) -> bool {
        !self.exit && self.live(token)
    }

    fn with_socket<R>(&mut self, token: Token, f: impl FnOnce(&mut S) -> R) -> Option<R> {
        let c = self.map.slots.get_mut(token.index())?.get_mut(token)?;
        Some(f(&mut c.socket))
    }

    /// Runs `f` with the dispatcher and a context for `token`.
    fn with_ctx<R>(
        &mut self,
        token: Token,
        f: impl FnOnce(&mut D, &mut Ctx<'_, S, D>) -> R,
    ) -> Option<R> {
        let index = token.index();
        if index >= N {
            return None;
        }
        let (before, rest) = self.map.slots.split_at_mut(index);
        let (current, after) = rest.split_first_mut()?;
        let channel = current.get_mut(token)?;
        let Channel {
            socket,
            state,
            flags,
            deadline,
            dispatcher,
        } = channel;
        let mut ctx = Ctx {
            token,
            socket,
            state,
            flags,
            others: Split {
                before,
                current: index,
                after,
            },
            meta: &mut self.map.meta,
            capacity: N,
            registrar: &mut self.selector,
            sources: &mut self.sources,
            exit: &mut self.exit,
            observer: self.observer,
            deadline,
            deadlines: &mut self.deadlines,
            now: self.now,
            backoff: &mut self.backoff,
        };
        Some(f(dispatcher, &mut ctx))
    }

    /// Calls one handler, routes its error, and acts on what it left behind: a close
    /// request, an EOF, a disconnect.
    fn call(
        &mut self,
        token: Token,
        event: Event,
        f: impl FnOnce(&mut D, &mut Ctx<'_, S, D>) -> Result<(), D::Error>,
    ) {
        let flags = self.with_ctx(token, |d, ctx| {
            ctx.notify(event);
            match f(d, ctx) {
                Ok(()) => {}
                Err(e) => {
                    if ctx.flags.has(Flags::CLOSE_REQUESTED) {
                        // Closing already: no callback after a close.
                    } else {
                        ctx.notify(Event::Error);
                        d.handle_error(ctx, e);
                    }
                }
            }
            *ctx.flags
        });
        // Nothing left to act on (the common case): no second lookup.
        if flags.is_some_and(|f| f.has(Flags::CLOSE_REQUESTED | Flags::DISCONNECTED | Flags::EOF)) {
            self.settle(token);
        }
    }

    /// Acts on the flags a handler left: close request first, then disconnect, then EOF.
    fn settle(&mut self, token: Token) {
        let Some(flags) = self.flags(token) else {
            return;
        };
        if flags.has(Flags::CLOSE_REQUESTED) {
            self.finish_close(token);
        } else if flags.has(Flags::DISCONNECTED) {
            self.deliver_close(token);
        } else if flags.has(Flags::EOF) {
            let decision = self.with_ctx(token, |d, ctx| {
                *ctx.state = State::ReadClosed;
                ctx.flags.clear(Flags::EOF);
                ctx.notify(Event::ReadClosed);
                match d.handle_read_closed(ctx) {
                    Ok(decision) => decision,
                    // Closing already: no callback after a close.
                    Err(_) if ctx.flags.has(Flags::CLOSE_REQUESTED) => ReadClosed::KeepWriting,
                    Err(e) => {
                        ctx.notify(Event::Error);
                        d.handle_error(ctx, e);
                        ReadClosed::KeepWriting
                    }
                }
            });
            match decision {
                Some(ReadClosed::Close) => self.deliver_close(token),
                // The hook (or handle_error) may have closed or broken it meanwhile.
                Some(ReadClosed::KeepWriting)
                    if self
                        .flags(token)
                        .is_some_and(|f| f.has(Flags::CLOSE_REQUESTED | Flags::DISCONNECTED)) =>
                {
                    self.settle(token);
                }
                Some(ReadClosed::KeepWriting) => {}
                None => {}
            }
        }
    }

    /// Delivers `handle_close` (at most once per channel), then closes the channel.
    fn deliver_close(&mut self, token: Token) {
        let delivered = self.with_ctx(token, |d, ctx| {
            if ctx
                .flags
                .has(Flags::CLOSE_DELIVERED | Flags::CLOSE_REQUESTED)
            {
                return;
            }
            ctx.flags.set(Flags::CLOSE_DELIVERED);
            ctx.notify(Event::Close);
            if let Err(e) = d.handle_close(ctx)
                && !ctx.flags.has(Flags::CLOSE_REQUESTED)
            {
                ctx.notify(Event::Error);
                d.handle_error(ctx, e);
            }
        });
        if delivered.is_some() {
            self.finish_close(token);
        }
    }

    /// Closes the socket and frees the slot (quarantined until the pass ends).
    fn finish_close(&mut self, token: Token) {
        if let Some(mut channel) = self.map.meta.remove(&mut self.map.slots[..], token) {
            channel.state = State::Closed;
            self.forget_source(token);
            if channel.socket.close().is_err() {
                debug_!("{}: close reported an error", token);
            }
            self.notify(token, Event::Removed);
        }
    }
}
