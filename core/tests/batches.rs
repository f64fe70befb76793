//! More ready (or broken) channels than a reactor's batch of events
//! ([`EVENT_BATCH`]), on the mock: one pass dispatches every ready channel, batch
//! after batch, each once and in the selector's order; a channel closed by an
//! earlier batch's handler gets nothing from a later one; an exit stops the pass
//! between batches; more broken channels than a batch are all reported `INVALID`
//! over the next passes, and closed. And the simulator's selector, which keeps what
//! did not fit with each socket of its network: each source once per wait, nothing
//! from a source deregistered or narrowed between the batches, the same trace
//! however small the caller's buffer.

use std::cell::RefCell;
use std::time::Duration;

use asyncore_core::mock::{MockSelector, MockSocket};
use asyncore_core::sim::{SimConfig, SimNet, SimSelector, SimSocket};
use asyncore_core::{
    Ctx, Dispatcher, EVENT_BATCH, Error, Event, Events, Interest, InterestMode, Reactor, Readiness,
    Selector, Socket, SourceEvent, Token, With,
};

const ZERO: Option<Duration> = Some(Duration::ZERO);

/// More channels than one batch of events holds, with a partial last batch.
const MANY: usize = 200;
const _: () = assert!(MANY > 3 * EVENT_BATCH && !MANY.is_multiple_of(EVENT_BATCH));

/// What the channels did, in order: (id, callback).
type Log = RefCell<Vec<(u32, &'static str)>>;

/// Logs its reads and its close; on a read, does what it was told once.
struct Chan<'a> {
    id: u32,
    log: &'a Log,
    mode: InterestMode,
    /// Close this other channel.
    close: Option<Token>,
    /// Close its own socket behind the reactor's back (the channel breaks).
    close_socket: bool,
    /// Ask the loop to exit.
    exit: bool,
}

impl Dispatcher<MockSocket> for Chan<'_> {
    type Error = Error;

    fn interest_mode(&self) -> InterestMode {
        self.mode
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        self.log.borrow_mut().push((self.id, "read"));
        if let Some(t) = self.close.take() {
            assert!(ctx.close_channel(t), "closes a live channel");
        }
        if self.close_socket {
            let _ = ctx.socket().close();
        }
        if std::mem::take(&mut self.exit) {
            ctx.exit();
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        self.log.borrow_mut().push((self.id, "close"));
        ctx.close();
        Ok(())
    }
}

/// A reactor over a mock that registers up to 256 sources.
type Big<'a> = Reactor<With<MockSelector<256>, MockSocket>, Chan<'a>, MANY>;

/// A reactor of `n` connected channels, ids (and sources) `0..n`, in slots `0..n`.
fn reactor<'a>(log: &'a Log, n: usize, mode: InterestMode) -> (Box<Big<'a>>, Vec<Token>) {
    let mut r = Box::new(Big::new(MockSelector::sized()));
    let tokens = (0..n as u32)
        .map(|id| {
            let chan = Chan {
                id,
                log,
                mode,
                close: None,
                close_socket: false,
                exit: false,
            };
            r.add(MockSocket::connected(id), chan)
                .map_err(|e| e.kind)
                .expect("room")
        })
        .collect();
    (r, tokens)
}

/// Every id of `0..n` with `what`, in order.
fn all(n: usize, what: &'static str) -> Vec<(u32, &'static str)> {
    (0..n as u32).map(|id| (id, what)).collect()
}

const MODES: [InterestMode; 2] = [InterestMode::EveryPass, InterestMode::OnChange];

#[test]
fn one_pass_dispatches_more_ready_channels_than_a_batch() {
    for mode in MODES {
        let log = Log::default();
        let (mut r, _) = reactor(&log, MANY, mode);
        for id in 0..MANY as u32 {
            r.selector_mut().set_once(id, Readiness::READABLE);
        }
        assert_eq!(r.poll_once(ZERO).unwrap(), MANY, "{mode:?}");
        assert_eq!(*log.borrow(), all(MANY, "read"), "each once, in slot order");
        assert_eq!(r.selector().passes(), 1, "one wait");
        assert_eq!(
            r.events().len(),
            MANY % EVENT_BATCH,
            "events() is the last batch"
        );
        assert_eq!(r.events().last().map(|e| e.slot()), Some(MANY as u32 - 1));
        // Nothing is left over for the next pass.
        assert_eq!(r.poll_once(ZERO).unwrap(), 0, "{mode:?}");
        assert_eq!(log.borrow().len(), MANY);
    }
}

#[test]
fn a_channel_closed_by_an_earlier_batch_gets_nothing_from_a_later_one() {
    let log = Log::default();
    let (mut r, tokens) = reactor(&log, MANY, InterestMode::EveryPass);
    let victim = tokens[MANY - 10];
    r.get_mut(tokens[0]).unwrap().dispatcher.close = Some(victim);
    for id in 0..MANY as u32 {
        r.selector_mut().set_ready(id, Readiness::READABLE);
    }
    assert_eq!(r.poll_once(ZERO).unwrap(), MANY - 1);
    let mut expected = all(MANY, "read");
    expected.retain(|&(id, _)| id as usize != victim.index());
    assert_eq!(*log.borrow(), expected);
    assert!(r.get(victim).is_none(), "closed");
    assert_eq!(r.selector().registered(), MANY as u32 - 1);
    assert_eq!(r.selector().unknown_deregisters(), 0);
}

#[test]
fn an_exit_stops_the_pass_between_batches() {
    let log = Log::default();
    let (mut r, tokens) = reactor(&log, MANY, InterestMode::OnChange);
    // In the second batch.
    let quitter = EVENT_BATCH + 5;
    r.get_mut(tokens[quitter]).unwrap().dispatcher.exit = true;
    for id in 0..MANY as u32 {
        r.selector_mut().set_ready(id, Readiness::READABLE);
    }
    assert_eq!(r.poll_once(ZERO).unwrap(), quitter + 1);
    assert!(r.exit_requested());
    assert_eq!(*log.borrow(), all(quitter + 1, "read"));
    // Level-triggered: the next pass dispatches them all again.
    log.borrow_mut().clear();
    assert_eq!(r.poll_once(ZERO).unwrap(), MANY);
    assert_eq!(*log.borrow(), all(MANY, "read"));
    assert_eq!(r.selector().passes(), 2);
}

#[test]
fn more_broken_channels_than_a_batch_are_all_reported_and_closed() {
    const BROKEN: usize = 150;
    const _: () = assert!(BROKEN > 2 * EVENT_BATCH);
    for mode in MODES {
        let log = Log::default();
        let (mut r, tokens) = reactor(&log, BROKEN, mode);
        for (id, &t) in tokens.iter().enumerate() {
            r.get_mut(t).unwrap().dispatcher.close_socket = true;
            r.selector_mut().set_once(id as u32, Readiness::READABLE);
        }
        // Each handler closes its own socket: found after its callback, each
        // channel leaves the selector and is broken.
        assert_eq!(r.poll_once(ZERO).unwrap(), BROKEN, "{mode:?}");
        assert_eq!(r.selector().registered(), 0, "{mode:?}");
        assert_eq!(r.len(), BROKEN);
        log.borrow_mut().clear();

        // Reported INVALID (and closed), a batch per pass, none lost.
        let mut passes = 0;
        while !r.is_empty() {
            let n = r.poll_once(ZERO).unwrap();
            assert_eq!(
                n,
                (BROKEN - passes * EVENT_BATCH).min(EVENT_BATCH),
                "{mode:?}"
            );
            assert!(
                r.events()
                    .iter()
                    .all(|e| e.readiness() == Readiness::INVALID),
                "{mode:?}: {:?}",
                r.events()
            );
            assert_eq!(r.events().len(), n);
            passes += 1;
            assert!(
                passes <= BROKEN.div_ceil(EVENT_BATCH),
                "{mode:?}: lost some"
            );
        }
        let mut closed = log.borrow().clone();
        closed.sort_unstable();
        assert_eq!(closed, all(BROKEN, "close"), "{mode:?}: each closed once");
        assert_eq!(r.selector().unknown_deregisters(), 0);
    }
}

/// A network of `n` event sources, each with an event pending (readable).
fn sim_sources(net: &SimNet<16, 256>, n: usize) -> Vec<SimSocket<'_, 16, 256>> {
    (0..n)
        .map(|_| {
            let s = net.source().expect("room");
            assert!(net.raise(&s, SourceEvent::Wake));
            s
        })
        .collect()
}

/// What `select` and then `select_more` hand out through a buffer of `room`
/// events, until nothing is left; `between` runs after the first batch.
fn batches<S: Selector>(
    sel: &mut S,
    room: usize,
    between: impl FnOnce(&mut S, &[Event]),
) -> Vec<(u32, Readiness)> {
    let mut buf = vec![Event::EMPTY; room];
    let mut events = Events::new(&mut buf);
    sel.select(&mut events, ZERO).expect("select");
    let mut all: Vec<Event> = events.as_slice().to_vec();
    between(sel, &all);
    loop {
        let mut events = Events::new(&mut buf);
        let n = sel.select_more(&mut events);
        assert_eq!(n, events.len());
        all.extend_from_slice(events.as_slice());
        if n == 0 {
            break;
        }
    }
    let mut v: Vec<_> = all.iter().map(|e| (e.slot(), e.readiness())).collect();
    v.sort_unstable_by_key(|&(slot, _)| slot);
    v
}

#[test]
fn the_simulators_selector_hands_out_a_wait_in_batches() {
    const READY: usize = 10;
    let net: SimNet<16, 256> = SimNet::new(SimConfig::quiet(7));
    let sources = sim_sources(&net, READY);
    let mut sel = SimSelector::new(&net);
    for (slot, s) in sources.iter().enumerate() {
        sel.register(Token::new(slot as u32, 1), s.source(), Interest::READABLE)
            .unwrap();
    }
    let all: Vec<(u32, Readiness)> = (0..READY as u32)
        .map(|slot| (slot, Readiness::READABLE))
        .collect();
    // Each source once per wait, however small the buffer; a new wait starts over.
    for room in [READY, 3, 1] {
        assert_eq!(batches(&mut sel, room, |_, _| {}), all, "room {room}");
    }

    // Between the batches: one deregistered, one narrowed to no interest, and a new
    // source registered (ready too): none of them reports anything from the wait.
    let fresh = sim_sources(&net, 1);
    let (mut gone, mut narrowed) = (0, 0);
    let got = batches(&mut sel, 3, |sel, first| {
        let later: Vec<usize> = (0..READY)
            .filter(|&slot| first.iter().all(|e| e.slot() as usize != slot))
            .collect();
        (gone, narrowed) = (later[0], later[1]);
        let t = |slot: usize| Token::new(slot as u32, 1);
        sel.deregister(t(gone), sources[gone].source(), Interest::READABLE);
        sel.reregister(
            t(narrowed),
            sources[narrowed].source(),
            Interest::READABLE,
            Interest::NONE,
        )
        .unwrap();
        sel.register(
            Token::new(READY as u32, 0),
            fresh[0].source(),
            Interest::READABLE,
        )
        .unwrap();
    });
    let mut expected = all.clone();
    expected.retain(|&(slot, _)| ![gone, narrowed].contains(&(slot as usize)));
    assert_eq!(got, expected);
}

#[test]
fn the_simulators_trace_does_not_depend_on_the_batch() {
    // The same waits through buffers of different sizes: the same draws and records.
    let hash = |room: usize| {
        let net: SimNet<16, 256> = SimNet::new(SimConfig::from_seed(11));
        let sources = sim_sources(&net, 12);
        let mut sel = SimSelector::new(&net);
        for (slot, s) in sources.iter().enumerate() {
            sel.register(Token::new(slot as u32, 0), s.source(), Interest::READABLE)
                .unwrap();
        }
        let got: Vec<_> = (0..5).map(|_| batches(&mut sel, room, |_, _| {})).collect();
        (got, net.trace_hash())
    };
    assert_eq!(hash(2), hash(16));
}
