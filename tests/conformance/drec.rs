//! A recording datagram dispatcher, generic over the socket (`MockSocket` or
//! `StdSocket`): what it received (bytes, source, true length), the errors its
//! operations met, and each callback.

use std::cell::RefCell;
use std::fmt::Debug;
use std::rc::Rc;

use asyncore::{Ctx, Datagram, Dispatcher, Error, Sent, SocketError};

pub use asyncore::Callback as Call;

/// One datagram a [`DRec`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Got<A> {
    pub data: Vec<u8>,
    pub from: A,
    pub len: usize,
    pub truncated: bool,
}

#[derive(Debug)]
struct Inner<A> {
    calls: Vec<Call>,
    got: Vec<Got<A>>,
    errors: Vec<SocketError>,
    /// Datagrams a flood sent, and how often it met would-block.
    flooded: usize,
    blocked: usize,
}

/// The shared record of one [`DRec`] (one channel per scenario).
#[derive(Clone, Debug)]
pub struct DLog<A>(Rc<RefCell<Inner<A>>>);

impl<A: Clone> DLog<A> {
    pub fn new() -> Self {
        DLog(Rc::new(RefCell::new(Inner {
            calls: Vec::new(),
            got: Vec::new(),
            errors: Vec::new(),
            flooded: 0,
            blocked: 0,
        })))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.0.borrow().calls.clone()
    }

    pub fn got(&self) -> Vec<Got<A>> {
        self.0.borrow().got.clone()
    }

    /// Errors the handlers' operations met (returned inline, not propagated).
    pub fn errors(&self) -> Vec<SocketError> {
        self.0.borrow().errors.clone()
    }

    pub fn flooded(&self) -> usize {
        self.0.borrow().flooded
    }

    pub fn blocked(&self) -> usize {
        self.0.borrow().blocked
    }
}

/// Records every callback; `handle_read` receives until none is waiting (into a
/// buffer of `buf` bytes), logging errors or propagating them; `handle_write` sends
/// what it was given, or floods until would-block.
pub struct DRec<A> {
    log: DLog<A>,
    pub readable: bool,
    pub writable: bool,
    /// `handle_read` receives (else it does nothing).
    pub receive: bool,
    /// Receive errors go to `handle_error` (`?`) instead of the log.
    pub propagate: bool,
    pub buf: usize,
    /// `handle_write` sends these (to the address, or the connected peer), then
    /// turns `writable` off.
    pub send: Vec<(Vec<u8>, Option<A>)>,
    /// `handle_write` sends datagrams of this size to the connected peer until the
    /// socket would block, then waits for the next write readiness.
    pub flood: Option<usize>,
}

impl<A: Clone> DRec<A> {
    pub fn new(log: &DLog<A>) -> Self {
        DRec {
            log: log.clone(),
            readable: true,
            writable: false,
            receive: true,
            propagate: false,
            buf: 4096,
            send: Vec::new(),
            flood: None,
        }
    }
}

impl<S> Dispatcher<S> for DRec<S::Addr>
where
    S: Datagram<Addr: Debug + Clone>,
{
    type Error = Error;

    fn readable(&self) -> bool {
        self.readable
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.log.0.borrow_mut().calls.push(Call::Read);
        if !self.receive {
            return Ok(());
        }
        let mut buf = vec![0u8; self.buf];
        // Bounded: a test peer sends a handful of datagrams.
        for _ in 0..64 {
            match ctx.recv_from(&mut buf) {
                Ok(Some(d)) => self.log.0.borrow_mut().got.push(Got {
                    data: d.data(&buf).to_vec(),
                    from: d.from,
                    len: d.len,
                    truncated: d.truncated(),
                }),
                Ok(None) => break,
                Err(e) if self.propagate => return Err(e.into()),
                Err(e) => self.log.0.borrow_mut().errors.push(e),
            }
        }
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.log.0.borrow_mut().calls.push(Call::Write);
        if let Some(size) = self.flood {
            let data = vec![0x42u8; size];
            for _ in 0..100_000 {
                match ctx.send_datagram(&data)? {
                    Sent::Bytes(_) => self.log.0.borrow_mut().flooded += 1,
                    Sent::WouldBlock => {
                        self.log.0.borrow_mut().blocked += 1;
                        return Ok(());
                    }
                }
            }
            return Ok(());
        }
        for (data, to) in std::mem::take(&mut self.send) {
            let sent = match &to {
                Some(to) => ctx.send_to(&data, to),
                None => ctx.send_datagram(&data),
            };
            match sent {
                Ok(Sent::Bytes(n)) => assert_eq!(n, data.len(), "a datagram goes whole"),
                Ok(Sent::WouldBlock) => panic!("a test send would block"),
                Err(e) => self.log.0.borrow_mut().errors.push(e),
            }
        }
        self.writable = false;
        Ok(())
    }

    fn handle_expt(&mut self, _ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.log.0.borrow_mut().calls.push(Call::Expt);
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.log.0.borrow_mut().calls.push(Call::Close);
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, Self>, error: Error) {
        let mut inner = self.log.0.borrow_mut();
        inner.calls.push(Call::Error);
        if let Error::Socket(e) = error {
            inner.errors.push(e);
        }
        // Kept open: the socket is still good after a datagram error.
        let _ = ctx;
    }
}
