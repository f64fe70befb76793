//! `ChannelMap`: a fixed-capacity slab of channels addressed by generational tokens.
//!
//! Everything that touches a slot lives here: the per-channel record ([`Channel`]),
//! the slot with its generation and free-list link, the slab's bookkeeping
//! ([`SlabBook`]: free list, quarantine, counts), and the lookups by token. The
//! reactor and the handler context reach slots only through these, never by index
//! arithmetic of their own.

use crate::{State, Token};

/// "No slot" in the free lists.
const NIL: u32 = u32::MAX;

/// Per-channel flags the dispatch state machine keeps between callbacks.
#[derive(Copy, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flags(u8);

impl Flags {
    /// The dispatcher asked for the channel to be closed.
    pub(crate) const CLOSE_REQUESTED: u8 = 1 << 0;
    /// A read saw EOF.
    pub(crate) const EOF: u8 = 1 << 1;
    /// An operation saw a disconnect error.
    pub(crate) const DISCONNECTED: u8 = 1 << 2;
    /// `handle_close` was delivered.
    pub(crate) const CLOSE_DELIVERED: u8 = 1 << 3;
    /// A read in the current dispatch returned data (so a hang-up may still have
    /// data behind it: the close waits for EOF).
    pub(crate) const GOT_DATA: u8 = 1 << 4;
    /// Read interest is withheld until the reactor's accept back-off ends (an
    /// accept failed for a reason that passes, e.g. `EMFILE`). Only listeners.
    pub(crate) const READ_PAUSED: u8 = 1 << 5;
    /// When the channel closes, keep its dispatcher in the slot (state `Closed`) until
    /// `Reactor::take_closed` hands it back.
    pub(crate) const KEEP: u8 = 1 << 6;
    /// What a handler can leave behind for the reactor to act on once it returns.
    pub(crate) const PENDING: u8 = Self::CLOSE_REQUESTED | Self::DISCONNECTED | Self::EOF;

    #[inline]
    pub(crate) fn has(self, bits: u8) -> bool {
        self.0 & bits != 0
    }
    #[inline]
    pub(crate) fn set(&mut self, bits: u8) {
        self.0 |= bits;
    }
    #[inline]
    pub(crate) fn clear(&mut self, bits: u8) {
        self.0 &= !bits;
    }
}

/// Whether a channel in `state` with `flags` is open: not closed, no close asked
/// for, and no disconnect or EOF seen that will close it. The one liveness rule of
/// the crate.
#[inline]
pub(crate) fn is_live(state: State, flags: Flags) -> bool {
    state != State::Closed && !flags.has(Flags::PENDING)
}

/// One channel: its socket, its state and its dispatcher.
pub(crate) struct Channel<S, D> {
    pub(crate) socket: S,
    pub(crate) state: State,
    pub(crate) flags: Flags,
    /// When `handle_timeout` is due, in nanoseconds of the selector's clock
    /// ([`NEVER`](crate::time::NEVER): no deadline).
    pub(crate) deadline: u64,
    pub(crate) dispatcher: D,
}

/// A channel's own fields as a handler context holds them: everything but the
/// dispatcher, which the handler runs on.
pub(crate) struct Fields<'a, S> {
    pub(crate) socket: &'a mut S,
    pub(crate) state: &'a mut State,
    pub(crate) flags: &'a mut Flags,
    pub(crate) deadline: &'a mut u64,
}

impl<S, D> Channel<S, D> {
    pub(crate) fn new(socket: S, state: State, dispatcher: D) -> Self {
        Channel {
            socket,
            state,
            flags: Flags::default(),
            deadline: crate::time::NEVER,
            dispatcher,
        }
    }

    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        is_live(self.state, self.flags)
    }

    /// Whether this is a closed channel kept for its dispatcher (no longer counted,
    /// watched or dispatched; only `take_closed` reaches it).
    #[inline]
    pub(crate) fn is_kept(&self) -> bool {
        self.state == State::Closed && self.flags.has(Flags::KEEP)
    }

    /// The dispatcher, and the rest of the channel beside it.
    #[inline]
    pub(crate) fn split(&mut self) -> (&mut D, Fields<'_, S>) {
        let Channel {
            socket,
            state,
            flags,
            deadline,
            dispatcher,
        } = self;
        (
            dispatcher,
            Fields {
                socket,
                state,
                flags,
                deadline,
            },
        )
    }
}

/// One slot of the slab.
pub(crate) struct Slot<S, D> {
    generation: u32,
    next: u32,
    channel: Option<Channel<S, D>>,
}

impl<S, D> Slot<S, D> {
    const VACANT: Self = Slot {
        generation: 0,
        next: NIL,
        channel: None,
    };

    #[inline]
    fn get(&self, token: Token) -> Option<&Channel<S, D>> {
        if self.generation == token.generation() {
            self.channel.as_ref()
        } else {
            None
        }
    }

    #[inline]
    fn get_mut(&mut self, token: Token) -> Option<&mut Channel<S, D>> {
        if self.generation == token.generation() {
            self.channel.as_mut()
        } else {
            None
        }
    }
}

/// The slab's bookkeeping, apart from the slots so a dispatch pass can borrow both
/// separately.
pub(crate) struct SlabBook {
    /// Head of the list of free slots that may be reused now.
    free: u32,
    /// Head of the list of slots freed during the current pass.
    quarantine: u32,
    /// Slots `used..N` were never occupied.
    used: u32,
    len: u32,
    capacity: u32,
    in_pass: bool,
}

/// Random access to slots: the whole array, or the slots around the channel being
/// dispatched ([`Others`]).
trait Slots<S, D> {
    fn slot(&mut self, index: usize) -> Option<&mut Slot<S, D>>;
}

impl<S, D> Slots<S, D> for [Slot<S, D>] {
    #[inline]
    fn slot(&mut self, index: usize) -> Option<&mut Slot<S, D>> {
        self.get_mut(index)
    }
}

impl SlabBook {
    const fn new(capacity: usize) -> Self {
        SlabBook {
            free: NIL,
            quarantine: NIL,
            used: 0,
            len: 0,
            capacity: capacity as u32,
            in_pass: false,
        }
    }

    /// Puts `channel` into a free slot, or hands it back.
    fn insert<S, D>(
        &mut self,
        slots: &mut (impl Slots<S, D> + ?Sized),
        channel: Channel<S, D>,
    ) -> Result<Token, Channel<S, D>> {
        let index = if self.free != NIL {
            self.free
        } else if self.used < self.capacity {
            self.used
        } else {
            return Err(channel);
        };
        let Some(slot) = slots.slot(index as usize) else {
            // Unreachable by construction (the free list never holds the current
            // slot), but never panic: refuse instead.
            return Err(channel);
        };
        if index == self.free {
            self.free = slot.next;
        } else {
            self.used += 1;
        }
        slot.next = NIL;
        slot.channel = Some(channel);
        self.len += 1;
        Ok(Token::new(index, slot.generation))
    }

    /// Takes the channel of `token` out of its slot. The slot's generation is bumped
    /// at once (so the token is dead), and the slot is reusable only after the
    /// current pass, if any.
    fn remove<S, D>(
        &mut self,
        slots: &mut (impl Slots<S, D> + ?Sized),
        token: Token,
    ) -> Option<Channel<S, D>> {
        let slot = slots.slot(token.index())?;
        if slot.generation != token.generation() {
            return None;
        }
        let channel = slot.channel.take()?;
        if !channel.is_kept() {
            // A kept channel left the count when it closed.
            self.len -= 1;
        }
        if slot.generation == u32::MAX {
            // Retire the slot: reusing it would let a very old token alias.
            return Some(channel);
        }
        slot.generation += 1;
        let index = token.index() as u32;
        if self.in_pass {
            slot.next = self.quarantine;
            self.quarantine = index;
        } else {
            slot.next = self.free;
            self.free = index;
        }
        Some(channel)
    }
}

impl SlabBook {
    /// See [`MapAccess::keep_closed`].
    fn keep_closed<S, D>(&mut self, slots: &mut (impl Slots<S, D> + ?Sized), token: Token) -> bool {
        let Some(c) = slots.slot(token.index()).and_then(|s| s.get_mut(token)) else {
            return false;
        };
        if c.is_kept() {
            return false;
        }
        c.state = State::Closed;
        c.flags.set(Flags::KEEP);
        c.deadline = crate::time::NEVER;
        self.len -= 1;
        true
    }
}

/// The slots around the channel being dispatched.
struct Around<'a, S, D> {
    before: &'a mut [Slot<S, D>],
    current: usize,
    after: &'a mut [Slot<S, D>],
}

impl<S, D> Slots<S, D> for Around<'_, S, D> {
    #[inline]
    fn slot(&mut self, index: usize) -> Option<&mut Slot<S, D>> {
        if index < self.current {
            self.before.get_mut(index)
        } else if index > self.current {
            self.after.get_mut(index - self.current - 1)
        } else {
            None
        }
    }
}

/// The map minus the channel being dispatched: the slots around it and the slab's
/// bookkeeping. A handler reaches other channels, adds new ones and closes others
/// through it.
pub(crate) struct Others<'a, S, D> {
    around: Around<'a, S, D>,
    book: &'a mut SlabBook,
}

/// Lookups, insertion and removal over the whole map or over [`Others`]: what the
/// registry needs to add and remove channels whichever of the two it holds.
pub(crate) trait MapAccess<S, D> {
    /// The channel of `token`, unless it is gone or is the one being dispatched.
    fn channel_mut(&mut self, token: Token) -> Option<&mut Channel<S, D>>;
    /// Puts `channel` into a free slot, or hands it back.
    fn insert(&mut self, channel: Channel<S, D>) -> Result<Token, Channel<S, D>>;
    /// Takes the channel of `token` out (see [`ChannelMap::remove`]).
    fn remove(&mut self, token: Token) -> Option<Channel<S, D>>;
    /// Marks the (just closed) channel of `token` kept: it leaves the count but keeps
    /// its slot, state `Closed`, until it is removed.
    fn keep_closed(&mut self, token: Token) -> bool;
    /// How many channels the map holds.
    fn len(&self) -> usize;
    /// Whether every slot is taken.
    fn is_full(&self) -> bool;
}

impl<S, D> MapAccess<S, D> for Others<'_, S, D> {
    #[inline]
    fn channel_mut(&mut self, token: Token) -> Option<&mut Channel<S, D>> {
        self.around.slot(token.index())?.get_mut(token)
    }
    fn insert(&mut self, channel: Channel<S, D>) -> Result<Token, Channel<S, D>> {
        self.book.insert(&mut self.around, channel)
    }
    fn remove(&mut self, token: Token) -> Option<Channel<S, D>> {
        self.book.remove(&mut self.around, token)
    }
    fn keep_closed(&mut self, token: Token) -> bool {
        self.book.keep_closed(&mut self.around, token)
    }
    fn len(&self) -> usize {
        self.book.len as usize
    }
    fn is_full(&self) -> bool {
        self.book.len >= self.book.capacity
    }
}

impl<S, D> Others<'_, S, D> {
    /// Every other open channel, in slot order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = ChannelMut<'_, S, D>> {
        let current = self.around.current;
        let before = self.around.before.iter_mut().enumerate();
        let after = self
            .around
            .after
            .iter_mut()
            .enumerate()
            .map(move |(i, s)| (i + current + 1, s));
        before
            .chain(after)
            .filter_map(|(i, slot)| ChannelMut::of(i, slot))
            .filter(|c| c.state != State::Closed)
    }
}

/// A fixed-capacity map of up to `N` channels, each a socket `S`, a [`State`] and a
/// dispatcher `D`, addressed by [`Token`]s.
///
/// * `const fn new()`: a map can be a `static` and needs no allocation.
/// * A full map refuses a new channel and hands its values back.
/// * A token of a removed channel resolves to nothing, never to the channel that
///   reuses its slot.
/// * Iteration and dispatch run in slot order.
/// * A slot freed during a dispatch pass is not reused before the pass ends.
///
/// A [`Reactor`](crate::Reactor) keeps its channels in one; on its own it is a plain
/// generational slab (nothing is registered with any selector).
pub struct ChannelMap<S, D, const N: usize> {
    slots: [Slot<S, D>; N],
    book: SlabBook,
}

impl<S, D, const N: usize> Default for ChannelMap<S, D, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, D, const N: usize> core::fmt::Debug for ChannelMap<S, D, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChannelMap")
            .field("len", &self.len())
            .field("capacity", &N)
            .finish_non_exhaustive()
    }
}

/// A shared view of one channel.
#[derive(Debug)]
pub struct ChannelRef<'a, S, D> {
    /// Its token.
    pub token: Token,
    /// Its socket.
    pub socket: &'a S,
    /// Its state.
    pub state: State,
    /// Its dispatcher.
    pub dispatcher: &'a D,
}

impl<'a, S, D> ChannelRef<'a, S, D> {
    #[inline]
    fn of(index: usize, slot: &'a Slot<S, D>) -> Option<Self> {
        let c = slot.channel.as_ref()?;
        Some(ChannelRef {
            token: Token::new(index as u32, slot.generation),
            socket: &c.socket,
            state: c.state,
            dispatcher: &c.dispatcher,
        })
    }
}

/// An exclusive view of one channel.
#[derive(Debug)]
pub struct ChannelMut<'a, S, D> {
    /// Its token.
    pub token: Token,
    /// Its socket.
    pub socket: &'a mut S,
    /// Its state.
    pub state: State,
    /// Its dispatcher.
    pub dispatcher: &'a mut D,
}

impl<'a, S, D> ChannelMut<'a, S, D> {
    #[inline]
    fn of(index: usize, slot: &'a mut Slot<S, D>) -> Option<Self> {
        let generation = slot.generation;
        let c = slot.channel.as_mut()?;
        Some(Self::from_channel(Token::new(index as u32, generation), c))
    }

    #[inline]
    pub(crate) fn from_channel(token: Token, c: &'a mut Channel<S, D>) -> Self {
        ChannelMut {
            token,
            socket: &mut c.socket,
            state: c.state,
            dispatcher: &mut c.dispatcher,
        }
    }
}

impl<S, D, const N: usize> ChannelMap<S, D, N> {
    const CAPACITY_FITS: () = assert!(N < u32::MAX as usize, "capacity must be below u32::MAX");

    /// An empty map.
    pub const fn new() -> Self {
        let () = Self::CAPACITY_FITS;
        ChannelMap {
            slots: [const { Slot::VACANT }; N],
            book: SlabBook::new(N),
        }
    }

    /// How many channels it holds.
    pub fn len(&self) -> usize {
        self.book.len as usize
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.book.len == 0
    }

    /// `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.len() == N
    }

    /// Adds a channel in `state`.
    ///
    /// # Errors
    /// When the map is full, the socket and dispatcher come back unchanged.
    pub fn insert(&mut self, socket: S, state: State, dispatcher: D) -> Result<Token, (S, D)> {
        MapAccess::insert(self, Channel::new(socket, state, dispatcher))
            .map_err(|c| (c.socket, c.dispatcher))
    }

    /// Removes the channel of `token` and returns its socket and dispatcher (the socket
    /// is not closed). `None` for a stale or unknown token.
    pub fn remove(&mut self, token: Token) -> Option<(S, D)> {
        MapAccess::remove(self, token).map(|c| (c.socket, c.dispatcher))
    }

    /// Whether `token` names a channel of this map.
    pub fn contains(&self, token: Token) -> bool {
        self.channel(token).is_some()
    }

    /// The channel of `token`, if it is still there.
    pub fn get(&self, token: Token) -> Option<ChannelRef<'_, S, D>> {
        let c = self.channel(token)?;
        Some(ChannelRef {
            token,
            socket: &c.socket,
            state: c.state,
            dispatcher: &c.dispatcher,
        })
    }

    /// The channel of `token`, if it is still there.
    pub fn get_mut(&mut self, token: Token) -> Option<ChannelMut<'_, S, D>> {
        let c = self.channel_mut(token)?;
        Some(ChannelMut::from_channel(token, c))
    }

    /// Every open channel, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = ChannelRef<'_, S, D>> {
        self.occupied_slots()
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| ChannelRef::of(i, slot))
            .filter(|c| c.state != State::Closed)
    }

    /// Every open channel, in slot order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = ChannelMut<'_, S, D>> {
        let used = self.book.used as usize;
        self.slots
            .iter_mut()
            .take(used)
            .enumerate()
            .filter_map(|(i, slot)| ChannelMut::of(i, slot))
            .filter(|c| c.state != State::Closed)
    }

    /// Every token, in slot order.
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.iter().map(|c| c.token)
    }

    // ------------------------------------------------------------ crate-private

    /// The slots ever occupied (slots past them were never used: loops over the
    /// channels stop there).
    #[inline]
    fn occupied_slots(&self) -> &[Slot<S, D>] {
        self.slots
            .get(..self.book.used as usize)
            .unwrap_or_default()
    }

    /// Calls `f` with every channel and its token, in slot order (the interest pass:
    /// a plain loop, which compiles tighter than an iterator chain here).
    #[inline]
    pub(crate) fn for_each(&self, mut f: impl FnMut(Token, &Channel<S, D>)) {
        for (slot, i) in self.occupied_slots().iter().zip(0u32..) {
            if let Some(channel) = &slot.channel {
                f(Token::new(i, slot.generation), channel);
            }
        }
    }

    /// Every channel with its token, in slot order.
    #[inline]
    pub(crate) fn channels(&self) -> impl Iterator<Item = (Token, &Channel<S, D>)> {
        self.occupied_slots()
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                let c = slot.channel.as_ref()?;
                Some((Token::new(i as u32, slot.generation), c))
            })
    }

    /// Every channel, mutably, in slot order.
    pub(crate) fn channels_mut(&mut self) -> impl Iterator<Item = &mut Channel<S, D>> {
        let used = self.book.used as usize;
        self.slots
            .iter_mut()
            .take(used)
            .filter_map(|slot| slot.channel.as_mut())
    }

    /// The token of the first channel (kept ones included) at slot `from` or later.
    pub(crate) fn next_token(&self, from: usize) -> Option<Token> {
        let slots = self.occupied_slots().get(from..)?;
        slots.iter().enumerate().find_map(|(i, slot)| {
            slot.channel
                .as_ref()
                .map(|_| Token::new((from + i) as u32, slot.generation))
        })
    }

    /// The channel of `token`, if it is still there.
    #[inline]
    pub(crate) fn channel(&self, token: Token) -> Option<&Channel<S, D>> {
        self.slots.get(token.index())?.get(token)
    }

    /// The channel of `token`, and the rest of the map beside it.
    #[allow(clippy::type_complexity)]
    pub(crate) fn split(&mut self, token: Token) -> Option<(&mut Channel<S, D>, Others<'_, S, D>)> {
        let index = token.index();
        if index >= N {
            return None;
        }
        let (before, rest) = self.slots.split_at_mut(index);
        let (current, after) = rest.split_first_mut()?;
        let channel = current.get_mut(token)?;
        Some((
            channel,
            Others {
                around: Around {
                    before,
                    current: index,
                    after,
                },
                book: &mut self.book,
            },
        ))
    }

    /// A dispatch pass begins: slots freed from now on are quarantined.
    pub(crate) fn begin_pass(&mut self) {
        self.book.in_pass = true;
    }

    /// The pass ended: the slots freed during it become reusable.
    pub(crate) fn end_pass(&mut self) {
        self.book.in_pass = false;
        while self.book.quarantine != NIL {
            let index = self.book.quarantine;
            let Some(slot) = self.slots.get_mut(index as usize) else {
                break;
            };
            self.book.quarantine = slot.next;
            slot.next = self.book.free;
            self.book.free = index;
        }
    }
}

impl<S, D, const N: usize> MapAccess<S, D> for ChannelMap<S, D, N> {
    #[inline]
    fn channel_mut(&mut self, token: Token) -> Option<&mut Channel<S, D>> {
        self.slots.get_mut(token.index())?.get_mut(token)
    }
    fn insert(&mut self, channel: Channel<S, D>) -> Result<Token, Channel<S, D>> {
        self.book.insert(&mut self.slots[..], channel)
    }
    fn remove(&mut self, token: Token) -> Option<Channel<S, D>> {
        self.book.remove(&mut self.slots[..], token)
    }
    fn keep_closed(&mut self, token: Token) -> bool {
        self.book.keep_closed(&mut self.slots[..], token)
    }
    fn len(&self) -> usize {
        self.book.len as usize
    }
    fn is_full(&self) -> bool {
        self.book.len as usize >= N
    }
}

#[cfg(test)]
mod tests;
