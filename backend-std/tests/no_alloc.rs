//! Once the loop runs, nothing allocates: select passes, accepts, recv/send, closes.
//! A counting global allocator (per thread, so the harness's own threads do not
//! count) watches a reactor serving an echo over real sockets.

use asyncore_std::SelectIo;
use std::time::Duration;

use asyncore_core::{Ctx, Dispatcher, Error, Reactor, Recv, Socket};
use asyncore_std::{SelectSelector, StdSocket};

#[path = "../../tests/support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocs_during;

enum Echo {
    Listener,
    Conn,
}

impl Dispatcher<StdSocket> for Echo {
    type Error = Error;

    fn handle_accepted(
        &mut self,
        ctx: &mut Ctx<'_, StdSocket, Echo>,
        socket: StdSocket,
    ) -> Result<(), Error> {
        if let Err(refused) = ctx.add(socket, Echo::Conn) {
            let (mut s, _) = refused.into_inner();
            s.close()?;
        }
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Echo>) -> Result<(), Error> {
        let mut buf = [0u8; 256];
        if let Recv::Data(n) = ctx.recv(&mut buf)? {
            ctx.send(&buf[..n])?;
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, StdSocket, Echo>) -> Result<(), Error> {
        ctx.close();
        Ok(())
    }
}

#[test]
fn serving_allocates_nothing() {
    let (_, sanity) = allocs_during(|| Box::new(1u8));
    assert!(sanity >= 1, "the counter works");

    let mut reactor: Reactor<SelectIo, Echo, 8> = Reactor::new(SelectSelector::new());
    let listener = StdSocket::tcp_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
    let addr = listener.local_addr().unwrap().as_inet().unwrap();
    reactor.add(listener, Echo::Listener).unwrap();
    // Clients are made before counting (construction is not the loop), and driven
    // without allocating: fixed buffers, StdSocket operations.
    let mut clients: [StdSocket; 4] =
        core::array::from_fn(|_| StdSocket::tcp_connect(addr).unwrap());
    let timeout = Some(Duration::from_millis(10));

    let (echoed, n) = allocs_during(|| {
        let mut buf = [0u8; 64];
        let mut echoed = 0;
        for round in 0..30u8 {
            for c in clients.iter_mut() {
                // Until the connect completes this would block; that is fine.
                let _ = c.send(&[round; 16]);
            }
            for _ in 0..3 {
                reactor.poll_once(timeout).unwrap();
            }
            for c in clients.iter_mut() {
                while let Ok(Recv::Data(k)) = c.recv(&mut buf) {
                    echoed += k;
                }
            }
        }
        for c in clients.iter_mut() {
            c.close().unwrap();
        }
        for _ in 0..5 {
            reactor.poll_once(timeout).unwrap();
        }
        echoed
    });
    assert_eq!(n, 0, "allocations while serving");
    assert!(echoed > 0, "the echo ran");
    assert_eq!(
        reactor.len(),
        1,
        "every connection closed, the listener stays"
    );
}
