//! `ChannelMap`: a fixed-capacity slab of channels addressed by generational tokens.

use crate::{State, Token};

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
    /// accept failed for a reason that passes, e.g. `EMFILE`).
    pub(crate) const READ_PAUSED: u8 = 1 << 5;

    #[inline]
    pub(crate) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    #[inline]
    pub(crate) fn set(&mut self, bit: u8) {
        self.0 |= bit;
    }
    #[inline]
    pub(crate) fn clear(&mut self, bit: u8) {
        self.0 &= !bit;
    }
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
}

/// One slot of the slab.
pub(crate) struct Slot<S, D> {
    pub(crate) generation: u32,
    next: u32,
    pub(crate) channel: Option<Channel<S, D>>,
}

impl<S, D> Slot<S, D> {
    const VACANT: Self = Slot {
        generation: 0,
        next: NIL,
        channel: None,
    };

    #[inline]
    pub(crate) fn get(&self, token: Token) -> Option<&Channel<S, D>> {
        if self.generation == token.generation() {
            self.channel.as_ref()
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, token: Token) -> Option<&mut Channel<S, D>> {
        if self.generation == token.generation() {
            self.channel.as_mut()
        } else {
            None
        }
    }
}

/// Bookkeeping of the slab, apart from the slots so a dispatch pass can borrow both
/// separately.
pub(crate) struct Meta {
    /// Head of the list of free slots that may be reused now.
    free: u32,
    /// Head of the list of slots freed during the current pass.
    quarantine: u32,
    /// Slots `used..N` were never occupied.
    used: u32,
    len: u32,
    in_pass: bool,
}

/// Random access to slots, implemented by the whole array and by the two halves a
/// dispatch pass leaves around the channel being dispatched.
pub(crate) trait Slots<S, D> {
    fn slot(&mut self, index: usize) -> Option<&mut Slot<S, D>>;
}

impl<S, D> Slots<S, D> for [Slot<S, D>] {
    #[inline]
    fn slot(&mut self, index: usize) -> Option<&mut Slot<S, D>> {
        self.get_mut(index)
    }
}

/// The slots other than the one being dispatched.
pub(crate) struct Split<'a, S, D> {
    pub(crate) before: &'a mut [Slot<S, D>],
    pub(crate) current: usize,
    pub(crate) after: &'a mut [Slot<S, D>],
}

impl<S, D> Slots<S, D> for Split<'_, S, D> {
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

impl Meta {
    const fn new() -> Self {
        Meta {
            free: NIL,
            quarantine: NIL,
            used: 0,
            len: 0,
            in_pass: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Slots `used()..` were never occupied: loops over the channels stop there.
    #[inline]
    pub(crate) fn used(&self) -> usize {
        self.used as usize
    }

    /// Puts `channel` into a free slot, or hands it back.
    pub(crate) fn insert<S, D>(
        &mut self,
        slots: &mut (impl Slots<S, D> + ?Sized),
        capacity: usize,
        channel: Channel<S, D>,
    ) -> Result<Token, Channel<S, D>> {
        let index = if self.free != NIL {
            self.free
        } else if (self.used as usize) < capacity {
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
    pub(crate) fn remove<S, D>(
        &mut self,
        slots: &mut (impl Slots<S, D> + ?Sized),
        token: Token,
    ) -> Option<Channel<S, D>> {
        let index = token.index() as u32;
        let slot = slots.slot(token.index())?;
        if slot.generation != token.generation() {
            return None;
        }
        let channel = slot.channel.take()?;
        self.len -= 1;
        if slot.generation == u32::MAX {
            // Retire the slot: reusing it would let a very old token alias.
            return Some(channel);
        }
        slot.generation += 1;
        if self.in_pass {
            slot.next = self.quarantine;
            self.quarantine = index;
        } else {
            slot.next = self.free;
            self.free = index;
        }
        Some(channel)
    }

    pub(crate) fn begin_pass(&mut self) {
        self.in_pass = true;
    }

    /// Makes the slots freed during the pass reusable.
    pub(crate) fn end_pass<S, D>(&mut self, slots: &mut [Slot<S, D>]) {
        self.in_pass = false;
        while self.quarantine != NIL {
            let index = self.quarantine;
            let slot = &mut slots[index as usize];
            self.quarantine = slot.next;
            slot.next = self.free;
            self.free = index;
        }
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
/// Most programs use it through a [`Reactor`](crate::Reactor), which adds the
/// selector and the loop.
pub struct ChannelMap<S, D, const N: usize> {
    pub(crate) slots: [Slot<S, D>; N],
    pub(crate) meta: Meta,
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

impl<S, D, const N: usize> ChannelMap<S, D, N> {
    const CAPACITY_FITS: () = assert!(N < u32::MAX as usize, "capacity must be below u32::MAX");

    /// An empty map.
    pub const fn new() -> Self {
        let () = Self::CAPACITY_FITS;
        ChannelMap {
            slots: [const { Slot::VACANT }; N],
            meta: Meta::new(),
        }
    }

    /// How many channels it holds.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.meta.len == 0
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
        let channel = Channel::new(socket, state, dispatcher);
        self.meta
            .insert(&mut self.slots[..], N, channel)
            .map_err(|c| (c.socket, c.dispatcher))
    }

    /// Removes the channel of `token` and returns its socket and dispatcher (the socket
    /// is not closed). `None` for a stale or unknown token.
    pub fn remove(&mut self, token: Token) -> Option<(S, D)> {
        self.meta
            .remove(&mut self.slots[..], token)
            .map(|c| (c.socket, c.dispatcher))
    }

    /// Whether `token` names a channel of this map.
    pub fn contains(&self, token: Token) -> bool {
        self.get(token).is_some()
    }

    /// The channel of `token`, if it is still there.
    pub fn get(&self, token: Token) -> Option<ChannelRef<'_, S, D>> {
        let c = self.slots.get(token.index())?.get(token)?;
        Some(ChannelRef {
            token,
            socket: &c.socket,
            state: c.state,
            dispatcher: &c.dispatcher,
        })
    }

    /// The channel of `token`, if it is still there.
    pub fn get_mut(&mut self, token: Token) -> Option<ChannelMut<'_, S, D>> {
        let c = self.slots.get_mut(token.index())?.get_mut(token)?;
        Some(ChannelMut {
            token,
            socket: &mut c.socket,
            state: c.state,
            dispatcher: &mut c.dispatcher,
        })
    }

    /// Every channel, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = ChannelRef<'_, S, D>> {
        let used = self.meta.used();
        self.slots
            .iter()
            .take(used)
            .enumerate()
            .filter_map(|(i, slot)| {
                let c = slot.channel.as_ref()?;
                Some(ChannelRef {
                    token: Token::new(i as u32, slot.generation),
                    socket: &c.socket,
                    state: c.state,
                    dispatcher: &c.dispatcher,
                })
            })
    }

    /// Every channel, in slot order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = ChannelMut<'_, S, D>> {
        let used = self.meta.used();
        self.slots
            .iter_mut()
            .take(used)
            .enumerate()
            .filter_map(|(i, slot)| {
                let generation = slot.generation;
                let c = slot.channel.as_mut()?;
                Some(ChannelMut {
                    token: Token::new(i as u32, generation),
                    socket: &mut c.socket,
                    state: c.state,
                    dispatcher: &mut c.dispatcher,
                })
            })
    }

    /// Every token, in slot order.
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        self.iter().map(|c| c.token)
    }

    pub(crate) fn set_state(&mut self, token: Token, state: State) -> bool {
        match self
            .slots
            .get_mut(token.index())
            .and_then(|s| s.get_mut(token))
        {
            Some(c) => {
                c.state = state;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
