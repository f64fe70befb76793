//! `ChannelMap`: a fixed-capacity slab of channels addressed by generational tokens.
//!
//! Everything that touches a slot lives here: the slot ([`Slot`]: the channel's
//! fields in its occupied variant beside the tag, state, flags and generation; a
//! vacant one's free-list link), the channel as it enters ([`Channel`]) and leaves
//! ([`Removed`]), the views of one in its slot ([`Occupant`], [`OccupantRef`]), the
//! slab's bookkeeping ([`SlabBook`]: free list, quarantine, counts, the changed
//! channels, [`Changed`]), and the lookups by token. The
//! reactor and the handler context reach slots only through these, never by index
//! arithmetic of their own.

use crate::{Interest, State, Token};

/// "No slot": the end of a free list (a link holds a slot number + 1, so an empty
/// map is all zero bytes and a `static` of it lands in `.bss`).
const NIL: u32 = 0;

/// The link to slot `index`.
#[inline]
const fn link(index: u32) -> u32 {
    index + 1
}

/// The slot a link (not [`NIL`]) leads to.
#[inline]
const fn linked(link: u32) -> u32 {
    link - 1
}

/// Per-channel flags the dispatch state machine keeps between callbacks.
#[derive(Copy, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flags(u16);

impl Flags {
    /// The dispatcher asked for the channel to be closed.
    pub(crate) const CLOSE_REQUESTED: u16 = 1 << 2;
    /// A read saw EOF.
    pub(crate) const EOF: u16 = 1 << 3;
    /// An operation saw a disconnect error.
    pub(crate) const DISCONNECTED: u16 = 1 << 4;
    /// `handle_close` was delivered.
    pub(crate) const CLOSE_DELIVERED: u16 = 1 << 5;
    /// A read in the current dispatch returned data (so a hang-up may still have
    /// data behind it: the close waits for EOF).
    pub(crate) const GOT_DATA: u16 = 1 << 6;
    /// Read interest is withheld until the reactor's accept back-off ends (an
    /// accept failed for a reason that passes, e.g. `EMFILE`). Only listeners.
    pub(crate) const READ_PAUSED: u16 = 1 << 7;
    /// When the channel closes, keep its dispatcher in the slot (state `Closed`) until
    /// `Reactor::take_closed` hands it back.
    pub(crate) const KEEP: u16 = 1 << 8;
    /// The dispatcher's interest is asked only when it may have changed
    /// ([`InterestMode::OnChange`](crate::InterestMode::OnChange)): a mutable borrow
    /// of the channel puts it on the map's list of channels to check.
    pub(crate) const ON_CHANGE: u16 = 1 << 9;
    /// The channel's source is gone from the selector (closed under the loop, or the
    /// selector refused an interest change): the next pass reports it `INVALID`.
    pub(crate) const BROKEN: u16 = 1 << 10;
    /// The channel is listed as changed (see [`Changed`]): its source, and if it
    /// asks on change its interest, are checked before the next wait.
    pub(crate) const CHANGED: u16 = 1 << 11;
    /// The interest the selector has for the channel's source now: the two lowest
    /// bits, as [`Interest`] has them (read by a mask, no shift).
    const REGISTERED: u16 = 0b11;
    /// What a handler can leave behind for the reactor to act on once it returns.
    pub(crate) const PENDING: u16 = Self::CLOSE_REQUESTED | Self::DISCONNECTED | Self::EOF;

    #[inline]
    pub(crate) fn has(self, bits: u16) -> bool {
        self.0 & bits != 0
    }
    #[inline]
    pub(crate) fn set(&mut self, bits: u16) {
        self.0 |= bits;
    }
    #[inline]
    pub(crate) fn clear(&mut self, bits: u16) {
        self.0 &= !bits;
    }
    /// The interest the selector has for the channel's source now.
    #[inline]
    pub(crate) fn registered(self) -> Interest {
        Interest::from_bits(self.0 as u8)
    }
    /// Records what the selector has for the channel's source now.
    #[inline]
    pub(crate) fn set_registered(&mut self, interest: Interest) {
        self.0 = (self.0 & !Self::REGISTERED) | (u16::from(interest.bits()) & Self::REGISTERED);
    }
}

/// Whether a channel in `state` with `flags` is open: not closed, no close asked
/// for, and no disconnect or EOF seen that will close it. The one liveness rule of
/// the crate.
#[inline]
pub(crate) fn is_live(state: State, flags: Flags) -> bool {
    state != State::Closed && !flags.has(Flags::PENDING)
}

/// One channel as it enters or leaves the map: its socket, its state, its flags and
/// its dispatcher. Inside the map the same fields sit directly in the slot (see
/// [`Slot`]); [`Occupant`] and [`OccupantRef`] are views of them there.
pub(crate) struct Channel<S, D> {
    pub(crate) socket: S,
    pub(crate) state: State,
    pub(crate) flags: Flags,
    pub(crate) dispatcher: D,
}

impl<S, D> Channel<S, D> {
    pub(crate) fn new(socket: S, state: State, dispatcher: D) -> Self {
        Channel {
            socket,
            state,
            flags: Flags::default(),
            dispatcher,
        }
    }

    /// A shared view of it, as of a channel in a slot.
    #[inline]
    pub(crate) fn as_ref(&self) -> OccupantRef<'_, S, D> {
        OccupantRef {
            socket: &self.socket,
            state: self.state,
            flags: self.flags,
            dispatcher: &self.dispatcher,
        }
    }
}

/// A channel just taken out of the map: what its slot held, moved out whole (taking
/// the fields apart into a [`Channel`] would copy the dispatcher once more, which an
/// unoptimised build keeps on the stack). Always the occupied variant.
pub(crate) struct Removed<S, D>(Slot<S, D>);

impl<S, D> Removed<S, D> {
    /// The channel's fields (`None` never: a removed slot held a channel).
    #[inline]
    pub(crate) fn occupant(&mut self) -> Option<Occupant<'_, S, D>> {
        self.0.channel_mut()
    }

    /// Whether it is a closed channel kept for its dispatcher.
    #[inline]
    pub(crate) fn is_kept(&self) -> bool {
        self.0.channel().is_some_and(|c| c.is_kept())
    }

    /// Its socket and dispatcher (`None` never).
    #[inline]
    pub(crate) fn into_parts(self) -> Option<(S, D)> {
        match self.0 {
            Slot::Occupied {
                socket, dispatcher, ..
            } => Some((socket, dispatcher)),
            Slot::Vacant { .. } => None,
        }
    }
}

/// A channel in its slot, borrowed mutably: its fields, each by reference.
pub(crate) struct Occupant<'a, S, D> {
    pub(crate) socket: &'a mut S,
    pub(crate) state: &'a mut State,
    pub(crate) flags: &'a mut Flags,
    pub(crate) dispatcher: &'a mut D,
}

/// A channel in its slot, borrowed shared: its state and flags (copied) and its
/// socket and dispatcher.
pub(crate) struct OccupantRef<'a, S, D> {
    pub(crate) socket: &'a S,
    pub(crate) state: State,
    pub(crate) flags: Flags,
    pub(crate) dispatcher: &'a D,
}

/// A channel's own fields as a handler context holds them: everything but the
/// dispatcher, which the handler runs on.
pub(crate) struct Fields<'a, S> {
    pub(crate) socket: &'a mut S,
    pub(crate) state: &'a mut State,
    pub(crate) flags: &'a mut Flags,
}

impl<'a, S, D> Occupant<'a, S, D> {
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        is_live(*self.state, *self.flags)
    }

    /// Whether this is a closed channel kept for its dispatcher (no longer counted,
    /// watched or dispatched; only `take_closed` reaches it).
    #[inline]
    pub(crate) fn is_kept(&self) -> bool {
        *self.state == State::Closed && self.flags.has(Flags::KEEP)
    }

    /// A shared view of it.
    #[inline]
    pub(crate) fn as_ref(&self) -> OccupantRef<'_, S, D> {
        OccupantRef {
            socket: self.socket,
            state: *self.state,
            flags: *self.flags,
            dispatcher: self.dispatcher,
        }
    }

    /// The dispatcher, and the rest of the channel beside it.
    #[inline]
    pub(crate) fn split(self) -> (&'a mut D, Fields<'a, S>) {
        let Occupant {
            socket,
            state,
            flags,
            dispatcher,
        } = self;
        (
            dispatcher,
            Fields {
                socket,
                state,
                flags,
            },
        )
    }
}

impl<S, D> OccupantRef<'_, S, D> {
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        is_live(self.state, self.flags)
    }

    /// See [`Occupant::is_kept`].
    #[inline]
    pub(crate) fn is_kept(&self) -> bool {
        self.state == State::Closed && self.flags.has(Flags::KEEP)
    }
}

/// One slot of the slab: a channel, or nothing. The channel's fields sit directly in
/// the variant, after the one-byte tag, with the state, the flags and the slot's
/// generation in the 7 bytes beside it: 8 bytes in all before the socket and the
/// dispatcher. (A `Channel` struct inside the variant would start at its own
/// alignment, wasting up to 7 bytes after the tag, and a generation outside the enum
/// would pad to the enum's alignment.) `Vacant` is variant 0 with an explicit tag,
/// rather than the `None` of an `Option` (which Rust encodes in some niche of the
/// channel's fields, a non-zero byte pattern), so a vacant slot is all zero bytes
/// and a `static` map lands in `.bss`.
#[repr(u8)]
enum Slot<S, D> {
    /// No channel; `next` links the free list or the quarantine ([`NIL`] at the
    /// end).
    Vacant { generation: u32, next: u32 } = 0,
    /// A channel.
    Occupied {
        state: State,
        flags: Flags,
        generation: u32,
        socket: S,
        dispatcher: D,
    } = 1,
}

impl<S, D> Slot<S, D> {
    const VACANT: Self = Slot::Vacant {
        generation: 0,
        next: NIL,
    };

    /// The generation: bumped when a channel leaves, so its token goes stale.
    #[inline]
    fn generation(&self) -> u32 {
        match self {
            Slot::Vacant { generation, .. } | Slot::Occupied { generation, .. } => *generation,
        }
    }

    /// Whether a channel is here.
    #[inline]
    fn is_occupied(&self) -> bool {
        matches!(self, Slot::Occupied { .. })
    }

    /// The channel, if the slot holds one.
    #[inline]
    fn channel(&self) -> Option<OccupantRef<'_, S, D>> {
        match self {
            Slot::Occupied {
                state,
                flags,
                socket,
                dispatcher,
                ..
            } => Some(OccupantRef {
                socket,
                state: *state,
                flags: *flags,
                dispatcher,
            }),
            Slot::Vacant { .. } => None,
        }
    }

    /// The channel, if the slot holds one.
    #[inline]
    fn channel_mut(&mut self) -> Option<Occupant<'_, S, D>> {
        match self {
            Slot::Occupied {
                state,
                flags,
                socket,
                dispatcher,
                ..
            } => Some(Occupant {
                socket,
                state,
                flags,
                dispatcher,
            }),
            Slot::Vacant { .. } => None,
        }
    }

    /// The channel's flags, if the slot holds one.
    #[inline]
    fn flags_mut(&mut self) -> Option<&mut Flags> {
        match self {
            Slot::Occupied { flags, .. } => Some(flags),
            Slot::Vacant { .. } => None,
        }
    }

    /// The free-list link of a vacant slot (`NIL` for an occupied one).
    #[inline]
    fn next(&self) -> u32 {
        match self {
            Slot::Vacant { next, .. } => *next,
            Slot::Occupied { .. } => NIL,
        }
    }

    /// Lists this slot (number `index`) as changed unless it is listed already:
    /// something is about to borrow its channel mutably, which may change its
    /// interest or close its socket.
    #[inline]
    fn touch(&mut self, changed: &mut Changed, index: usize) {
        if let Some(flags) = self.flags_mut()
            && !flags.has(Flags::CHANGED)
        {
            flags.set(Flags::CHANGED);
            changed.push(index);
        }
    }

    #[inline]
    fn get(&self, token: Token) -> Option<OccupantRef<'_, S, D>> {
        match self {
            Slot::Occupied {
                state,
                flags,
                generation,
                socket,
                dispatcher,
            } if *generation == token.generation() => Some(OccupantRef {
                socket,
                state: *state,
                flags: *flags,
                dispatcher,
            }),
            _ => None,
        }
    }

    #[inline]
    fn get_mut(&mut self, token: Token) -> Option<Occupant<'_, S, D>> {
        match self {
            Slot::Occupied {
                state,
                flags,
                generation,
                socket,
                dispatcher,
            } if *generation == token.generation() => Some(Occupant {
                socket,
                state,
                flags,
                dispatcher,
            }),
            _ => None,
        }
    }
}

/// The slots whose channel may have changed since the interest was last brought up
/// to date (a mutable borrow, a callback on an on-change channel): a slot so listed
/// has [`Flags::CHANGED`] set. The most recent [`Changed::CAPACITY`] are kept in a
/// stack; past that, `overflow` says to look for the flag in every slot instead,
/// which costs no more than what listed them (a scan of the map, a broadcast). No
/// link per slot: the flag is one bit of the channel's flags.
pub(crate) struct Changed {
    stack: [u32; Changed::CAPACITY],
    len: u32,
    /// More were listed than the stack holds: the slots from `scan` on are looked
    /// at for the flag.
    overflow: bool,
    scan: u32,
}

impl Changed {
    /// How many listed slots the stack holds.
    const CAPACITY: usize = 32;

    const fn new() -> Self {
        Changed {
            stack: [0; Changed::CAPACITY],
            len: 0,
            overflow: false,
            scan: 0,
        }
    }

    #[inline]
    fn push(&mut self, index: usize) {
        match self.stack.get_mut(self.len as usize) {
            Some(top) => {
                *top = index as u32;
                self.len += 1;
            }
            None => {
                if !self.overflow {
                    self.overflow = true;
                    self.scan = 0;
                }
            }
        }
    }

    /// Whether `index` is the top of the stack.
    #[inline]
    fn is_top(&self, index: usize) -> bool {
        (self.len as usize)
            .checked_sub(1)
            .and_then(|top| self.stack.get(top))
            .is_some_and(|&s| s as usize == index)
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
    in_pass: bool,
    /// The slots whose channel may have changed since the last interest check.
    changed: Changed,
}

/// Random access to slots: the whole array, or the slots around the channel being
/// dispatched ([`Others`]).
trait Slots<S, D> {
    fn slot(&mut self, index: usize) -> Option<&mut Slot<S, D>>;
    fn slot_ref(&self, index: usize) -> Option<&Slot<S, D>>;
    /// How many slots the map has (`N`).
    fn capacity(&self) -> usize;
}

impl<S, D> Slots<S, D> for [Slot<S, D>] {
    #[inline]
    fn capacity(&self) -> usize {
        self.len()
    }
    #[inline]
    fn slot(&mut self, index: usize) -> Option<&mut Slot<S, D>> {
        self.get_mut(index)
    }
    #[inline]
    fn slot_ref(&self, index: usize) -> Option<&Slot<S, D>> {
        self.get(index)
    }
}

impl SlabBook {
    const fn new() -> Self {
        SlabBook {
            free: NIL,
            quarantine: NIL,
            used: 0,
            len: 0,
            in_pass: false,
            changed: Changed::new(),
        }
    }

    /// The slot the next [`insert`](Self::insert) takes, in a map of `capacity`.
    fn next_index(&self, capacity: usize) -> Option<u32> {
        if self.free != NIL {
            Some(linked(self.free))
        } else if (self.used as usize) < capacity {
            Some(self.used)
        } else {
            None
        }
    }

    /// The token the next [`insert`](Self::insert) returns.
    fn vacant<S, D>(&self, slots: &(impl Slots<S, D> + ?Sized)) -> Option<Token> {
        let index = self.next_index(slots.capacity())?;
        let slot = slots.slot_ref(index as usize)?;
        Some(Token::new(index, slot.generation()))
    }

    /// Puts `channel` into a free slot, or hands it back. Never inlined: a channel
    /// moving into its slot may pass through a temporary of its size, which inlined
    /// into a caller holding a reactor would stay in that caller's frame (2 KB more
    /// stack for the Cortex-M chat run at opt-level `z`).
    #[inline(never)]
    fn insert<S, D>(
        &mut self,
        slots: &mut (impl Slots<S, D> + ?Sized),
        channel: Channel<S, D>,
    ) -> Result<Token, Channel<S, D>> {
        let Some(index) = self.next_index(slots.capacity()) else {
            return Err(channel);
        };
        let from_free = self.free != NIL;
        let Some(slot) = slots.slot(index as usize) else {
            // Unreachable by construction (the free list never holds the current
            // slot), but never panic: refuse instead.
            return Err(channel);
        };
        if from_free {
            self.free = slot.next();
        } else {
            self.used += 1;
        }
        let generation = slot.generation();
        // Fields moved straight into the slot (no whole-channel temporary: in an
        // unoptimised build each would be a frame's worth of stack).
        *slot = Slot::Occupied {
            state: channel.state,
            flags: channel.flags,
            generation,
            socket: channel.socket,
            dispatcher: channel.dispatcher,
        };
        self.len += 1;
        Ok(Token::new(index, generation))
    }

    /// Takes the channel of `token` out of its slot. The slot's generation is bumped
    /// at once (so the token is dead), and the slot is reusable only after the
    /// current pass, if any. Never inlined, as [`insert`](Self::insert).
    #[inline(never)]
    fn remove<S, D>(
        &mut self,
        slots: &mut (impl Slots<S, D> + ?Sized),
        token: Token,
    ) -> Option<Removed<S, D>> {
        let slot = slots.slot(token.index())?;
        let generation = slot.generation();
        let kept = match slot.get_mut(token) {
            Some(c) => {
                c.flags.clear(Flags::CHANGED);
                c.is_kept()
            }
            None => return None,
        };
        let index = token.index() as u32;
        let retire = generation == u32::MAX;
        let next = if retire {
            // Retire the slot (on no list): reusing it would let a very old token
            // alias.
            NIL
        } else if self.in_pass {
            core::mem::replace(&mut self.quarantine, link(index))
        } else {
            core::mem::replace(&mut self.free, link(index))
        };
        // A retired slot keeps its last generation, which no live token has.
        let generation = if retire { generation } else { generation + 1 };
        let removed = Removed(core::mem::replace(slot, Slot::Vacant { generation, next }));
        if !kept {
            // A kept channel left the count when it closed.
            self.len -= 1;
        }
        Some(removed)
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
        *c.state = State::Closed;
        c.flags.set(Flags::KEEP);
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
    fn capacity(&self) -> usize {
        self.before.len() + 1 + self.after.len()
    }
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
    #[inline]
    fn slot_ref(&self, index: usize) -> Option<&Slot<S, D>> {
        if index < self.current {
            self.before.get(index)
        } else if index > self.current {
            self.after.get(index - self.current - 1)
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
    fn channel_mut(&mut self, token: Token) -> Option<Occupant<'_, S, D>>;
    /// The token the next [`insert`](Self::insert) will return (`None`: full).
    fn vacant(&self) -> Option<Token>;
    /// Puts `channel` into a free slot, or hands it back.
    fn insert(&mut self, channel: Channel<S, D>) -> Result<Token, Channel<S, D>>;
    /// Takes the channel of `token` out (see [`ChannelMap::remove`]).
    fn remove(&mut self, token: Token) -> Option<Removed<S, D>>;
    /// Marks the (just closed) channel of `token` kept: it leaves the count but keeps
    /// its slot, state `Closed`, until it is removed.
    fn keep_closed(&mut self, token: Token) -> bool;
    /// How many channels the map holds.
    fn len(&self) -> usize;
}

impl<S, D> MapAccess<S, D> for Others<'_, S, D> {
    #[inline]
    fn channel_mut(&mut self, token: Token) -> Option<Occupant<'_, S, D>> {
        self.around.slot(token.index())?.get_mut(token)
    }
    fn vacant(&self) -> Option<Token> {
        self.book.vacant(&self.around)
    }
    fn insert(&mut self, channel: Channel<S, D>) -> Result<Token, Channel<S, D>> {
        self.book.insert(&mut self.around, channel)
    }
    fn remove(&mut self, token: Token) -> Option<Removed<S, D>> {
        self.book.remove(&mut self.around, token)
    }
    fn keep_closed(&mut self, token: Token) -> bool {
        self.book.keep_closed(&mut self.around, token)
    }
    fn len(&self) -> usize {
        self.book.len as usize
    }
}

impl<S, D> Others<'_, S, D> {
    /// The channel of `token` for a handler to change (so listed for a check before
    /// the next wait), unless it is gone or is the one being dispatched.
    pub(crate) fn channel_for_handler(&mut self, token: Token) -> Option<Occupant<'_, S, D>> {
        let slot = self.around.slot(token.index())?;
        if slot.generation() == token.generation() {
            slot.touch(&mut self.book.changed, token.index());
        }
        slot.get_mut(token)
    }

    /// Every other open channel, in slot order (each listed for a check before the
    /// next wait). Like [`ChannelMap::iter_mut`], it stops at the last slot ever
    /// used: a scan from a handler does not touch (and, for a map in a `static`, page
    /// in) the rest of a large map.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = ChannelMut<'_, S, D>> {
        let current = self.around.current;
        let used = self.book.used as usize;
        let before = self.around.before.iter_mut().enumerate();
        let after = self
            .around
            .after
            .iter_mut()
            .take(used.saturating_sub(current + 1))
            .enumerate()
            .map(move |(i, s)| (i + current + 1, s));
        let changed = &mut self.book.changed;
        before
            .chain(after)
            .filter(|(_, slot)| slot.channel().is_some_and(|c| c.state != State::Closed))
            .filter_map(move |(i, slot)| {
                slot.touch(changed, i);
                ChannelMut::of(i, slot)
            })
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
        let generation = slot.generation();
        let c = slot.channel()?;
        Some(ChannelRef {
            token: Token::new(index as u32, generation),
            socket: c.socket,
            state: c.state,
            dispatcher: c.dispatcher,
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
        let generation = slot.generation();
        let c = slot.channel_mut()?;
        Some(Self::from_channel(Token::new(index as u32, generation), c))
    }

    #[inline]
    pub(crate) fn from_channel(token: Token, c: Occupant<'a, S, D>) -> Self {
        ChannelMut {
            token,
            socket: c.socket,
            state: *c.state,
            dispatcher: c.dispatcher,
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
            book: SlabBook::new(),
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
        MapAccess::remove(self, token)?.into_parts()
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
            socket: c.socket,
            state: c.state,
            dispatcher: c.dispatcher,
        })
    }

    /// The channel of `token`, if it is still there.
    pub fn get_mut(&mut self, token: Token) -> Option<ChannelMut<'_, S, D>> {
        self.touch(token);
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
        let changed = &mut self.book.changed;
        self.slots
            .iter_mut()
            .take(used)
            .enumerate()
            .filter(|(_, slot)| slot.channel().is_some_and(|c| c.state != State::Closed))
            .filter_map(move |(i, slot)| {
                slot.touch(changed, i);
                ChannelMut::of(i, slot)
            })
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
    pub(crate) fn for_each(&self, mut f: impl FnMut(Token, OccupantRef<'_, S, D>)) {
        for (slot, i) in self.occupied_slots().iter().zip(0u32..) {
            if let Some(channel) = slot.channel() {
                f(Token::new(i, slot.generation()), channel);
            }
        }
    }

    /// Calls `f` with every channel and its token, in slot order (not listing any as
    /// changed).
    #[inline]
    pub(crate) fn for_each_mut(&mut self, mut f: impl FnMut(Token, Occupant<'_, S, D>)) {
        let used = self.book.used as usize;
        for (slot, i) in self.slots.iter_mut().take(used).zip(0u32..) {
            if let Slot::Occupied {
                state,
                flags,
                generation,
                socket,
                dispatcher,
            } = slot
            {
                let channel = Occupant {
                    socket,
                    state,
                    flags,
                    dispatcher,
                };
                f(Token::new(i, *generation), channel);
            }
        }
    }

    /// Every channel's flags, mutably, in slot order (each listed as changed).
    pub(crate) fn flags_mut(&mut self) -> impl Iterator<Item = &mut Flags> {
        let used = self.book.used as usize;
        let changed = &mut self.book.changed;
        self.slots
            .iter_mut()
            .take(used)
            .enumerate()
            .filter_map(move |(i, slot)| {
                slot.touch(changed, i);
                slot.flags_mut()
            })
    }

    /// Takes the next slot off the list of channels that may have changed (most
    /// recently listed first, then, if more were listed than the stack holds, the
    /// rest in slot order) and clears its flag. Returns its channel's current token,
    /// or `None` when none is left.
    pub(crate) fn pop_changed(&mut self) -> Option<Token> {
        let changed = &mut self.book.changed;
        while let Some(top) = (changed.len as usize).checked_sub(1) {
            changed.len -= 1;
            let index = changed.stack.get(top).copied().unwrap_or(u32::MAX);
            if let Some(slot) = self.slots.get_mut(index as usize)
                && let Some(flags) = slot.flags_mut()
                && flags.has(Flags::CHANGED)
            {
                flags.clear(Flags::CHANGED);
                return Some(Token::new(index, slot.generation()));
            }
        }
        if changed.overflow {
            let used = self.book.used as usize;
            while (changed.scan as usize) < used {
                let index = changed.scan;
                changed.scan += 1;
                if let Some(slot) = self.slots.get_mut(index as usize)
                    && let Some(flags) = slot.flags_mut()
                    && flags.has(Flags::CHANGED)
                {
                    flags.clear(Flags::CHANGED);
                    return Some(Token::new(index, slot.generation()));
                }
            }
            changed.overflow = false;
        }
        None
    }

    /// The channel of `token` was just dispatched: if it is the last one listed as
    /// changed (by its own callbacks), takes it off the list and clears its flag, so
    /// the reactor checks it now instead of before the next wait (which keeps the
    /// list short however many channels a pass dispatches). Returns whether it did.
    #[inline]
    pub(crate) fn settle(&mut self, token: Token) -> Option<Occupant<'_, S, D>> {
        // The common case first, from the stack alone: the channel is not on top (it
        // asks every pass, so its callbacks list nothing, or something listed
        // another channel after it, which leaves it for the next wait's check).
        if !self.book.changed.is_top(token.index()) {
            return None;
        }
        let slot = self.slots.get_mut(token.index())?;
        let c = slot.get_mut(token)?;
        if !c.flags.has(Flags::CHANGED) {
            return None;
        }
        self.book.changed.len -= 1;
        c.flags.clear(Flags::CHANGED);
        Some(c)
    }

    /// The channel in slot `slot` and its token, if there is one.
    #[inline]
    pub(crate) fn occupant(&self, slot: u32) -> Option<(Token, OccupantRef<'_, S, D>)> {
        let s = self.slots.get(slot as usize)?;
        Some((Token::new(slot, s.generation()), s.channel()?))
    }

    /// Puts the channel in slot `slot` (if any) on the list of channels to check
    /// before the next wait.
    #[inline]
    pub(crate) fn touch_slot(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            s.touch(&mut self.book.changed, slot as usize);
        }
    }

    /// Puts the channel of `token` on the list of channels to check before the next
    /// wait.
    #[inline]
    pub(crate) fn touch(&mut self, token: Token) {
        if let Some(slot) = self.slots.get_mut(token.index())
            && slot.generation() == token.generation()
        {
            slot.touch(&mut self.book.changed, token.index());
        }
    }

    /// Lists every channel flagged [`Flags::BROKEN`] and not closed as changed, in
    /// one walk of the slots.
    pub(crate) fn touch_broken(&mut self) {
        let used = self.book.used as usize;
        let changed = &mut self.book.changed;
        for (i, slot) in self.slots.iter_mut().take(used).enumerate() {
            if slot
                .channel()
                .is_some_and(|c| c.flags.has(Flags::BROKEN) && c.state != State::Closed)
            {
                slot.touch(changed, i);
            }
        }
    }

    /// The token of the first channel (kept ones included) at slot `from` or later.
    pub(crate) fn next_token(&self, from: usize) -> Option<Token> {
        let slots = self.occupied_slots().get(from..)?;
        slots.iter().enumerate().find_map(|(i, slot)| {
            slot.is_occupied()
                .then(|| Token::new((from + i) as u32, slot.generation()))
        })
    }

    /// The channel of `token`, if it is still there.
    #[inline]
    pub(crate) fn channel(&self, token: Token) -> Option<OccupantRef<'_, S, D>> {
        self.slots.get(token.index())?.get(token)
    }

    /// The channel of `token`, and the rest of the map beside it.
    #[allow(clippy::type_complexity)]
    #[inline(always)]
    pub(crate) fn split(&mut self, token: Token) -> Option<(Occupant<'_, S, D>, Others<'_, S, D>)> {
        let index = token.index();
        if index >= N {
            return None;
        }
        let (before, rest) = self.slots.split_at_mut(index);
        let (current, after) = rest.split_first_mut()?;
        let channel = current.get_mut(token)?;
        // Only a channel asking on change is listed for a callback (the reactor
        // checks the source after every callback, and asks the others every pass).
        if channel.flags.has(Flags::ON_CHANGE) && !channel.flags.has(Flags::CHANGED) {
            channel.flags.set(Flags::CHANGED);
            self.book.changed.push(index);
        }
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
            let head = self.book.quarantine;
            let Some(slot) = self.slots.get_mut(linked(head) as usize) else {
                break;
            };
            let Slot::Vacant { next, .. } = slot else {
                break; // unreachable: only vacant slots are quarantined
            };
            self.book.quarantine = core::mem::replace(next, self.book.free);
            self.book.free = head;
        }
    }
}

impl<S, D, const N: usize> MapAccess<S, D> for ChannelMap<S, D, N> {
    #[inline]
    fn channel_mut(&mut self, token: Token) -> Option<Occupant<'_, S, D>> {
        self.slots.get_mut(token.index())?.get_mut(token)
    }
    fn vacant(&self) -> Option<Token> {
        self.book.vacant(&self.slots[..])
    }
    fn insert(&mut self, channel: Channel<S, D>) -> Result<Token, Channel<S, D>> {
        self.book.insert(&mut self.slots[..], channel)
    }
    fn remove(&mut self, token: Token) -> Option<Removed<S, D>> {
        self.book.remove(&mut self.slots[..], token)
    }
    fn keep_closed(&mut self, token: Token) -> bool {
        self.book.keep_closed(&mut self.slots[..], token)
    }
    fn len(&self) -> usize {
        self.book.len as usize
    }
}

#[cfg(test)]
mod tests;
