//! A recording dispatcher, generic over the socket type, so the same scenario body
//! runs on `MockSocket` and on `StdSocket`.
//!
//! Unlike `asyncore::mock::Recorder` it can read priority (OOB) data in `handle_expt`
//! (a real kernel keeps reporting `POLLPRI` until the urgent byte is read), and its
//! log is plain `std` (no capacity limits to reason about in the tests).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use asyncore::{AfterEof, Ctx, Dispatcher, Error, Recv, Socket, SocketError, Token};

/// One callback a [`Rec`] saw.
pub use asyncore::Callback as Call;

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<(Token, Call)>,
    closed_others: Vec<(Token, bool)>,
    connect_errors: Vec<(Token, SocketError)>,
    data: HashMap<Token, Vec<u8>>,
    oob: HashMap<Token, Vec<u8>>,
    accepted: Vec<Token>,
}

/// The shared record of every [`Rec`] of one scenario.
#[derive(Clone, Debug, Default)]
pub struct Log(Rc<RefCell<Inner>>);

impl Log {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&self, token: Token, call: Call) {
        self.0.borrow_mut().calls.push((token, call));
    }

    /// The callbacks of one channel, in order.
    pub fn calls_of(&self, token: Token) -> Vec<Call> {
        self.0
            .borrow()
            .calls
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, c)| *c)
            .collect()
    }

    /// The errors `handle_connect_failed` got on one channel, in order.
    pub fn connect_errors_of(&self, token: Token) -> Vec<SocketError> {
        let inner = self.0.borrow();
        let of = inner.connect_errors.iter().filter(|(t, _)| *t == token);
        of.map(|(_, e)| *e).collect()
    }

    /// What `ctx.close_channel` answered, per channel asked to close, in order.
    pub fn closed_others(&self) -> Vec<(Token, bool)> {
        self.0.borrow().closed_others.clone()
    }

    /// Every callback of every channel, in order.
    pub fn all(&self) -> Vec<(Token, Call)> {
        self.0.borrow().calls.clone()
    }

    /// The bytes `token` read in `handle_read`.
    pub fn received(&self, token: Token) -> Vec<u8> {
        self.0
            .borrow()
            .data
            .get(&token)
            .cloned()
            .unwrap_or_default()
    }

    /// The priority bytes `token` read in `handle_expt`.
    pub fn oob(&self, token: Token) -> Vec<u8> {
        self.0.borrow().oob.get(&token).cloned().unwrap_or_default()
    }

    /// Channels added by `handle_accepted`, in order.
    pub fn accepted(&self) -> Vec<Token> {
        self.0.borrow().accepted.clone()
    }
}

/// A dispatcher that records each callback in a [`Log`] and does a little scripted
/// work: drain reads, send on write, read OOB data, close or exit from a read, keep
/// writing after the peer's FIN. Accepted connections get a fresh `Rec` on the same log.
#[derive(Clone, Debug)]
pub struct Rec {
    log: Log,
    /// What `readable()` answers.
    pub readable: bool,
    /// What `writable()` answers.
    pub writable: bool,
    /// `handle_read` reads until would-block or EOF (else it reads nothing).
    pub drain: bool,
    /// `handle_read` calls `ctx.close()` after reading.
    pub close_on_read: bool,
    /// `handle_read` calls `ctx.exit()` after reading.
    pub exit_on_read: bool,
    /// `handle_read` closes the socket itself (`ctx.socket().close()`), leaving the
    /// channel in the map.
    pub close_socket_on_read: bool,
    /// `handle_write` sends this, each time.
    pub send: Option<&'static [u8]>,
    /// After one `handle_write`, `writable()` turns false.
    pub write_once: bool,
    /// `handle_eof` answers `KeepWriting`.
    pub keep_writing: bool,
    /// `handle_read` closes these channels with `ctx.close_channel`, recording each
    /// result in the log.
    pub close_others: Vec<Token>,
}

impl Rec {
    /// Readable, not writable, drains reads, reads OOB data, closes on EOF.
    pub fn new(log: &Log) -> Self {
        Rec {
            log: log.clone(),
            readable: true,
            writable: false,
            drain: true,
            close_on_read: false,
            exit_on_read: false,
            close_socket_on_read: false,
            send: None,
            write_once: false,
            keep_writing: false,
            close_others: Vec::new(),
        }
    }

    pub fn readable(mut self, yes: bool) -> Self {
        self.readable = yes;
        self
    }

    pub fn writable(mut self, yes: bool) -> Self {
        self.writable = yes;
        self
    }

    /// `handle_read` does no I/O (like a handler that is not ready to consume).
    pub fn ignore_reads(mut self) -> Self {
        self.drain = false;
        self
    }

    pub fn close_on_read(mut self) -> Self {
        self.close_on_read = true;
        self
    }

    pub fn exit_on_read(mut self) -> Self {
        self.exit_on_read = true;
        self
    }

    pub fn close_socket_on_read(mut self) -> Self {
        self.close_socket_on_read = true;
        self
    }

    pub fn send_on_write(mut self, data: &'static [u8]) -> Self {
        self.send = Some(data);
        self
    }

    pub fn write_once(mut self) -> Self {
        self.write_once = true;
        self
    }

    pub fn keep_writing(mut self) -> Self {
        self.keep_writing = true;
        self
    }

    pub fn close_on_read_too(mut self, other: Token) -> Self {
        self.close_others.push(other);
        self
    }
}

impl<S: Socket> Dispatcher<S> for Rec {
    type Error = Error;

    fn readable(&self) -> bool {
        self.readable
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn handle_connect(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.log.push(ctx.token(), Call::Connect);
        Ok(())
    }

    fn handle_connect_failed(&mut self, ctx: &mut Ctx<'_, S, Self>, error: SocketError) {
        self.log
            .0
            .borrow_mut()
            .connect_errors
            .push((ctx.token(), error));
        self.log.push(ctx.token(), Call::ConnectFailed);
    }

    fn handle_accept(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.log.push(ctx.token(), Call::Accept);
        for _ in 0..64 {
            match ctx.accept() {
                Ok(Some(socket)) => self.handle_accepted(ctx, socket)?,
                Ok(None) => break,
                Err(e) if !e.is_fatal_to_listener() => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn handle_accepted(&mut self, ctx: &mut Ctx<'_, S, Self>, socket: S) -> Result<(), Error> {
        self.log.push(ctx.token(), Call::Accepted);
        match ctx.add(socket, Rec::new(&self.log)) {
            Ok(token) => self.log.0.borrow_mut().accepted.push(token),
            Err(refused) => {
                let (mut socket, _) = refused.into_inner();
                let _ = socket.close();
            }
        }
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        let token = ctx.token();
        self.log.push(token, Call::Read);
        if self.drain {
            let mut buf = [0u8; 4096];
            // Bounded: a test peer never sends more than a few KiB.
            for _ in 0..64 {
                match ctx.recv(&mut buf)? {
                    Recv::Data(n) => {
                        let mut inner = self.log.0.borrow_mut();
                        inner
                            .data
                            .entry(token)
                            .or_default()
                            .extend_from_slice(&buf[..n]);
                    }
                    Recv::Eof | Recv::WouldBlock => break,
                }
            }
        }
        if self.close_socket_on_read {
            ctx.socket().close()?;
        }
        for &other in &self.close_others {
            let closed = ctx.close_channel(other);
            self.log.0.borrow_mut().closed_others.push((other, closed));
        }
        if self.close_on_read {
            ctx.close();
        }
        if self.exit_on_read {
            ctx.exit();
        }
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.log.push(ctx.token(), Call::Write);
        if let Some(data) = self.send {
            ctx.send(data)?;
        }
        if self.write_once {
            self.writable = false;
        }
        Ok(())
    }

    fn handle_expt(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        let token = ctx.token();
        self.log.push(token, Call::Expt);
        let mut buf = [0u8; 8];
        if let Recv::Data(n) = ctx.recv_priority(&mut buf)? {
            let mut inner = self.log.0.borrow_mut();
            inner
                .oob
                .entry(token)
                .or_default()
                .extend_from_slice(&buf[..n]);
        }
        Ok(())
    }

    fn handle_eof(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<AfterEof, Error> {
        self.log.push(ctx.token(), Call::Eof);
        Ok(if self.keep_writing {
            AfterEof::KeepWriting
        } else {
            AfterEof::Close
        })
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.log.push(ctx.token(), Call::Close);
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, Self>, error: Error) {
        let _ = error;
        self.log.push(ctx.token(), Call::Error);
        ctx.close();
    }
}
