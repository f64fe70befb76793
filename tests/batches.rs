//! More ready channels than a reactor's batch of events ([`EVENT_BATCH`]) on the
//! real backends: 150 socket pairs with a byte waiting, and one pass on `select(2)`,
//! `poll(2)` and `epoll(7)` dispatches every one of them, once (the selector hands
//! out what its one wait found in several batches).

use std::os::fd::AsRawFd;
use std::time::Duration;

use asyncore::{
    AnySelector, Backend, Ctx, Dispatcher, EVENT_BATCH, Error, Recv, Sent, Socket, StdReactor,
    StdSocket,
};

/// Long enough never to be hit on a healthy machine; only bounds a broken test.
const PATIENCE: Option<Duration> = Some(Duration::from_secs(10));

const PAIRS: usize = 150;
const _: () = assert!(PAIRS > 2 * EVENT_BATCH);

/// Counts the reads that found data.
#[derive(Debug, Default)]
struct Reader {
    reads: u32,
}

impl Dispatcher<StdSocket> for Reader {
    type Error = Error;

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 8];
        if let Recv::Data(_) = ctx.recv(&mut buf)? {
            self.reads += 1;
        }
        Ok(())
    }
}

#[test]
fn one_pass_dispatches_every_ready_channel_on_every_backend() {
    for backend in [Backend::Select, Backend::Poll, Backend::Epoll] {
        let mut r: Box<StdReactor<Reader, 160>> =
            Box::new(StdReactor::new(AnySelector::new(backend)));
        let mut peers = Vec::with_capacity(PAIRS);
        let mut tokens = Vec::with_capacity(PAIRS);
        for _ in 0..PAIRS {
            let (a, mut b) = StdSocket::pair().expect("socketpair");
            assert!(a.as_raw_fd() < 1024, "{backend}: select(2) can watch it");
            assert_eq!(b.send(b"!").expect("send"), Sent::Bytes(1));
            let t = r
                .add(a, Reader::default())
                .map_err(|e| e.kind)
                .expect("add");
            tokens.push(t);
            peers.push(b);
        }
        assert_eq!(r.poll_once(PATIENCE).expect("pass"), PAIRS, "{backend}");
        for &t in &tokens {
            assert_eq!(
                r.get(t).expect("channel").dispatcher.reads,
                1,
                "{backend}: {t:?}"
            );
        }
        // All drained: nothing is ready, nothing was left over.
        assert_eq!(r.poll_once(Some(Duration::ZERO)).expect("pass"), 0);
        r.close_all().expect("close_all");
    }
}
