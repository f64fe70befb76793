use super::*;

type Map<const N: usize> = ChannelMap<u8, &'static str, N>;

#[test]
fn insert_get_remove() {
    let mut m: Map<4> = ChannelMap::new();
    assert!(m.is_empty());
    let a = m.insert(1, State::Connected, "a").unwrap();
    let b = m.insert(2, State::Listening, "b").unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(*m.get(a).unwrap().dispatcher, "a");
    assert_eq!(m.get(b).unwrap().state, State::Listening);
    assert_eq!(m.remove(a), Some((1, "a")));
    assert!(m.get(a).is_none());
    assert_eq!(m.remove(a), None, "removing twice finds nothing");
    assert_eq!(m.len(), 1);
}

#[test]
fn full_map_hands_values_back() {
    let mut m: Map<2> = ChannelMap::new();
    m.insert(1, State::Open, "a").unwrap();
    m.insert(2, State::Open, "b").unwrap();
    assert!(m.is_full());
    assert_eq!(m.insert(3, State::Open, "c"), Err((3, "c")));
    assert_eq!(m.len(), 2);
}

#[test]
fn stale_token_never_reaches_the_reused_slot() {
    let mut m: Map<1> = ChannelMap::new();
    let old = m.insert(1, State::Open, "old").unwrap();
    m.remove(old).unwrap();
    let new = m.insert(2, State::Open, "new").unwrap();
    assert_eq!(old.index(), new.index(), "the single slot is reused");
    assert_ne!(old, new);
    assert!(m.get(old).is_none());
    assert!(m.get_mut(old).is_none());
    assert_eq!(m.remove(old), None);
    assert_eq!(*m.get(new).unwrap().dispatcher, "new");
}

#[test]
fn slot_freed_during_pass_is_not_reused_before_it_ends() {
    let mut m: Map<2> = ChannelMap::new();
    let a = m.insert(1, State::Open, "a").unwrap();
    m.insert(2, State::Open, "b").unwrap();
    m.begin_pass();
    m.remove(a).unwrap();
    assert_eq!(
        m.insert(3, State::Open, "c"),
        Err((3, "c")),
        "quarantined slot is not reusable"
    );
    m.end_pass();
    let c = m.insert(3, State::Open, "c").unwrap();
    assert_eq!(c.index(), a.index());
}

#[test]
fn iteration_is_in_slot_order() {
    let mut m: Map<4> = ChannelMap::new();
    let t: [Token; 4] = core::array::from_fn(|i| m.insert(i as u8, State::Open, "x").unwrap());
    m.remove(t[1]).unwrap();
    let again = m.insert(9, State::Open, "y").unwrap();
    assert_eq!(again.index(), 1);
    let order: heapless::Vec<u8, 4> = m.iter().map(|c| *c.socket).collect();
    assert_eq!(&order[..], &[0, 9, 2, 3]);
}

#[test]
fn generation_wrap_retires_the_slot() {
    let mut m: Map<2> = ChannelMap::new();
    let t = m.insert(1, State::Open, "a").unwrap();
    if let Slot::Occupied { generation, .. } = &mut m.slots[t.index()] {
        *generation = u32::MAX;
    }
    let t = Token::new(t.index() as u32, u32::MAX);
    m.remove(t).unwrap();
    let next = m.insert(2, State::Open, "b").unwrap();
    assert_ne!(
        next.index(),
        t.index(),
        "a slot at the last generation is never reused"
    );
}

#[test]
fn const_new_in_static() {
    static MAP: ChannelMap<u8, u8, 8> = ChannelMap::new();
    assert_eq!(MAP.capacity(), 8);
    assert!(MAP.is_empty());
}

#[test]
fn a_slot_adds_eight_bytes_before_the_socket_and_the_dispatcher() {
    // The tag, the state, the flags and the generation share the first 8 bytes.
    assert_eq!(core::mem::size_of::<Slot<[u32; 2], u64>>(), 8 + 8 + 8);
    assert_eq!(core::mem::size_of::<Slot<u64, u64>>(), 8 + 8 + 8);
    assert_eq!(core::mem::size_of::<Slot<u32, u32>>(), 8 + 4 + 4);
    // A 4-byte socket before an 8-aligned dispatcher pads to 8.
    assert_eq!(core::mem::size_of::<Slot<u32, u64>>(), 8 + 8 + 8);
    // A vacant slot's generation and free-list link set the floor.
    assert_eq!(core::mem::size_of::<Slot<(), ()>>(), 12);
}

#[test]
fn more_changed_channels_than_the_stack_holds_are_all_found() {
    const N: usize = 3 * Changed::CAPACITY;
    let mut m: Map<N> = ChannelMap::new();
    let tokens: heapless::Vec<Token, N> = (0..N)
        .map(|i| m.insert(i as u8, State::Open, "x").unwrap())
        .collect();
    for &t in tokens.iter().rev() {
        m.touch(t);
        m.touch(t); // listed once
    }
    let mut seen = [false; N];
    while let Some(t) = m.pop_changed() {
        assert!(!seen[t.index()], "{t:?} twice");
        seen[t.index()] = true;
    }
    assert!(seen.iter().all(|&s| s), "every touched channel is found");
    assert_eq!(m.pop_changed(), None);
    // The flag is clear again: touching lists it anew.
    m.touch(tokens[5]);
    assert_eq!(m.pop_changed(), Some(tokens[5]));
    assert_eq!(m.pop_changed(), None);
}

#[test]
fn a_removed_channel_is_not_reported_changed() {
    let mut m: Map<4> = ChannelMap::new();
    let a = m.insert(1, State::Open, "a").unwrap();
    let b = m.insert(2, State::Open, "b").unwrap();
    m.touch(a);
    m.touch(b);
    m.remove(a).unwrap();
    let c = m.insert(3, State::Open, "c").unwrap();
    assert_eq!(c.index(), a.index(), "the slot is reused");
    assert_eq!(m.pop_changed(), Some(b));
    assert_eq!(m.pop_changed(), None, "the new occupant was not touched");
}
