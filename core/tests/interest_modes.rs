//! The two interest modes on the mock: a channel that asks every pass is asked every
//! pass; a channel that asks on change is asked exactly when something borrowed it
//! mutably (a callback, `ctx.channel`, `ctx.others`, `Reactor::get_mut`,
//! `Reactor::iter_mut`), and its interest still follows every change; the audit
//! reports one whose answer changed behind the reactor's back; a socket closed by
//! its handler is reported `INVALID` on the next pass in both modes.

mod util;

use std::cell::Cell;

use asyncore_core::{Event, InterestMode, Socket, Trace};
use util::*;

/// Counts how often it is asked; wants to write while `queued` is non-zero; asks
/// on change.
#[derive(Default)]
struct Lazy<'a> {
    asked: Option<&'a Cell<u32>>,
    queued: u32,
    /// Read interest comes from here: a `Cell` the reactor cannot see change.
    sneaky: Option<&'a Cell<bool>>,
    /// On a read, queue one byte on this channel too.
    poke: Option<Token>,
    close_socket_on_read: bool,
    /// Ask every pass instead.
    every_pass: bool,
}

impl Dispatcher<MockSocket> for Lazy<'_> {
    type Error = Error;
    fn readable(&self) -> bool {
        if let Some(a) = self.asked {
            a.set(a.get() + 1);
        }
        self.sneaky.is_none_or(Cell::get)
    }
    fn writable(&self) -> bool {
        self.queued > 0
    }
    fn interest_mode(&self) -> InterestMode {
        if self.every_pass {
            InterestMode::EveryPass
        } else {
            InterestMode::OnChange
        }
    }
    fn handle_read(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 8];
        let _ = ctx.recv(&mut buf)?;
        if self.close_socket_on_read {
            let _ = ctx.socket().close();
        }
        if let Some(t) = self.poke
            && let Some(c) = ctx.channel(t)
        {
            c.dispatcher.queued += 1;
        }
        Ok(())
    }
    fn handle_write(&mut self, ctx: &mut Ctx<'_, MockSocket, Self>) -> Result<(), Error> {
        ctx.send(b"x")?;
        self.queued = self.queued.saturating_sub(1);
        Ok(())
    }
}

fn current(r: &Mock<Lazy<'_>>, id: u32) -> Option<Interest> {
    r.selector().interest(id)
}

#[test]
fn an_on_change_channel_is_asked_only_after_a_mutable_borrow() {
    let asked = Cell::new(0);
    let mut r: Mock<Lazy<'_>> = reactor();
    let t = connected(
        &mut r,
        1,
        Lazy {
            asked: Some(&asked),
            ..Lazy::default()
        },
    );
    assert_eq!(asked.get(), 1, "asked once when added");
    assert_eq!(current(&r, 1), Some(Interest::READABLE));
    for _ in 0..5 {
        pass(&mut r);
    }
    assert_eq!(asked.get(), 1, "idle passes ask nothing");

    // A change from outside, through the reactor: asked again, and it shows.
    r.get_mut(t).unwrap().dispatcher.queued = 2;
    pass(&mut r);
    assert_eq!(asked.get(), 2);
    assert_eq!(current(&r, 1), Some(Interest::BOTH));

    // Callbacks change it: asked after each pass that dispatched it.
    ready(&mut r, 1, WRITE);
    pass(&mut r);
    pass(&mut r);
    // The next wait is the first after the queue drained.
    pass(&mut r);
    assert_eq!(current(&r, 1), Some(Interest::READABLE), "queue drained");
    let after = asked.get();
    pass(&mut r);
    pass(&mut r);
    assert_eq!(asked.get(), after, "nothing dispatched, nothing asked");

    // iter_mut lends every channel: each is asked, and the wait watches it for
    // writing too. (It is still writable: the pass writes the byte and, once its
    // callbacks are done, the channel is asked again and wants reading only.)
    for c in r.iter_mut() {
        c.dispatcher.queued = 1;
    }
    pass(&mut r);
    assert_eq!(interest(&r, 1), Some(Interest::BOTH));
    assert_eq!(r.get(t).unwrap().dispatcher.queued, 0, "it wrote");
    assert_eq!(current(&r, 1), Some(Interest::READABLE));
}

#[test]
fn a_handler_changing_another_channel_changes_its_interest() {
    let mut r: Mock<Lazy<'_>> = reactor();
    let quiet = connected(&mut r, 2, Lazy::default());
    let mut talker = MockSocket::connected(1);
    talker.feed(b"hi");
    connected(
        &mut r,
        3,
        Lazy::default(), // a bystander: never touched, never changes
    );
    let t = r
        .add(
            talker,
            Lazy {
                poke: Some(quiet),
                ..Lazy::default()
            },
        )
        .unwrap();
    assert_eq!(current(&r, 2), Some(Interest::READABLE));
    once(&mut r, 1, READ);
    pass(&mut r);
    assert!(r.get(t).is_some());
    pass(&mut r); // interest is brought up to date before each wait
    assert_eq!(
        current(&r, 2),
        Some(Interest::BOTH),
        "the poked channel now wants to write"
    );
    assert_eq!(current(&r, 3), Some(Interest::READABLE));
}

#[test]
fn every_pass_channels_are_asked_every_pass() {
    let log = CallLog::new();
    let mut r: Rx = reactor();
    connected(&mut r, 1, Recorder::new(&log).record_queries());
    log.clear_calls();
    for _ in 0..3 {
        pass(&mut r);
    }
    let queries = log
        .calls()
        .iter()
        .filter(|(_, c)| *c == C::Readable)
        .count();
    assert_eq!(queries, 3);
}

thread_local! {
    static STALE: Cell<u32> = const { Cell::new(0) };
}

fn observe(_: Token, t: Trace) {
    if t == Trace::StaleInterest {
        STALE.with(|s| s.set(s.get() + 1));
    }
}

#[test]
fn the_audit_reports_an_answer_that_changed_unseen() {
    let sneaky = Cell::new(true);
    let mut r: Mock<Lazy<'_>> = reactor();
    r.set_observer(Some(observe));
    connected(
        &mut r,
        1,
        Lazy {
            sneaky: Some(&sneaky),
            ..Lazy::default()
        },
    );
    pass(&mut r);
    sneaky.set(false);
    pass(&mut r);
    assert_eq!(
        current(&r, 1),
        Some(Interest::READABLE),
        "without the audit the change goes unseen"
    );
    assert_eq!(STALE.with(Cell::get), 0);

    r.set_interest_audit(true);
    pass(&mut r);
    assert_eq!(STALE.with(Cell::get), 1, "reported");
    assert_eq!(current(&r, 1), Some(Interest::NONE), "and corrected");
    pass(&mut r);
    assert_eq!(STALE.with(Cell::get), 1, "once");
}

#[test]
fn a_socket_closed_by_its_handler_is_invalid_next_pass_in_both_modes() {
    for every_pass in [false, true] {
        let mut r: Mock<Lazy<'_>> = reactor();
        let mut s = MockSocket::connected(1);
        s.feed(b"x");
        let t = r
            .add(
                s,
                Lazy {
                    close_socket_on_read: true,
                    every_pass,
                    ..Lazy::default()
                },
            )
            .unwrap();
        connected(&mut r, 2, Lazy::default());
        once(&mut r, 1, READ);
        pass(&mut r);
        assert!(r.get(t).is_some(), "only the reactor removes a channel");
        assert_eq!(r.selector().registered(), 1, "but it left the selector");
        assert_eq!(pass(&mut r), 1);
        assert_eq!(r.events(), [Event::new(t.index() as u32, NVAL)]);
        assert!(r.get(t).is_none(), "closed");
        assert_eq!(r.len(), 1);
        assert_eq!(r.selector().unknown_deregisters(), 0);
    }
}
