//! A handler closes its socket itself and adds a new channel whose socket gets the
//! closed fd number: the new channel must be watched (its registration must survive
//! the old channel's deregistration by the same number), and the old one is reported
//! `INVALID` and closed.
//!
//! Its own test binary with a single test: the kernel hands out the lowest free fd
//! number, and no other test may take the closed one first.

use std::{
    cell::RefCell,
    os::fd::{AsRawFd, RawFd},
    rc::Rc,
    time::Duration,
};

use asyncore_core::{Callback, Ctx, Dispatcher, Error, Reactor, Recv, Socket, Token, Trace};
use asyncore_epoll::{EpollIo, EpollSelector};
use asyncore_std::StdSocket;

/// Where the replacement's peer and the two fd numbers go.
#[derive(Debug, Default)]
struct Swap {
    peer: Option<StdSocket>,
    numbers: Option<(RawFd, RawFd)>,
    added: Option<Token>,
}

#[derive(Debug)]
struct Conn {
    /// Replace the socket on the first read.
    swap: Option<Rc<RefCell<Swap>>>,
    got: Vec<u8>,
}

impl Dispatcher<StdSocket> for Conn {
    type Error = Error;

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 16];
        if let Recv::Data(n) = ctx.recv(&mut buf)? {
            self.got.extend_from_slice(&buf[..n]);
        }
        if let Some(swap) = self.swap.take() {
            let old = ctx.socket().as_raw_fd();
            ctx.socket().close().expect("close");
            let (ours, theirs) = StdSocket::pair().expect("socketpair");
            let mut swap = swap.borrow_mut();
            swap.numbers = Some((old, ours.as_raw_fd()));
            swap.peer = Some(theirs);
            let conn = Conn {
                swap: None,
                got: Vec::new(),
            };
            swap.added = ctx.add(ours, conn).ok();
        }
        Ok(())
    }
}

thread_local! {
    static TRACE: RefCell<Vec<(Token, Trace)>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn a_new_channel_on_a_reused_number_is_watched() {
    let mut r: Reactor<EpollIo<8>, Conn, 8> = Reactor::new(EpollSelector::new());
    r.set_observer(Some(|t, e| TRACE.with(|l| l.borrow_mut().push((t, e)))));
    let swap = Rc::new(RefCell::new(Swap::default()));
    let (ours, mut theirs) = StdSocket::pair().expect("socketpair");
    let old = r
        .add(
            ours,
            Conn {
                swap: Some(swap.clone()),
                got: Vec::new(),
            },
        )
        .map_err(|e| e.kind)
        .expect("add");
    theirs.send(b"first").expect("send");
    assert_eq!(r.poll_once(Some(Duration::from_secs(10))).expect("pass"), 1);

    let (closed, reused) = swap.borrow().numbers.expect("the handler swapped");
    assert_eq!(
        closed, reused,
        "precondition: the new socket got the closed number"
    );
    let new = swap.borrow().added.expect("the new channel was added");
    let mut peer = swap.borrow_mut().peer.take().expect("its peer");
    assert_eq!(r.len(), 2);
    assert_eq!(
        r.selector().watched(),
        1,
        "the new one; the old one was taken out"
    );

    // The old channel: INVALID, then its one Close, gone.
    r.poll_once(Some(Duration::ZERO)).expect("pass");
    assert!(r.get(old).is_none());
    let old_trace: Vec<Trace> = TRACE.with(|l| {
        l.borrow()
            .iter()
            .filter(|(t, _)| *t == old)
            .map(|(_, e)| *e)
            .collect()
    });
    assert_eq!(
        old_trace,
        [
            Trace::Added,
            Trace::Call(Callback::Read),
            Trace::Call(Callback::Close),
            Trace::Removed
        ]
    );

    // The new one hears its peer.
    peer.send(b"second").expect("send");
    assert_eq!(r.poll_once(Some(Duration::from_secs(10))).expect("pass"), 1);
    assert_eq!(
        r.get(new).expect("the new channel").dispatcher.got,
        b"second"
    );
    assert_eq!(r.selector().watched(), 1);
    r.close_all().expect("close_all");
    assert_eq!(r.selector().watched(), 0);
}
