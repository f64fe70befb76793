//! A dispatcher that records its callbacks and follows a script.

use core::cell::RefCell;

use heapless::Vec;

use crate::{
    AfterEof, Callback, Ctx, Dispatcher, Error, LogLevel, Recv, Socket, SocketError, Token,
};

/// What a [`Recorder`] does inside a callback.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// Nothing (overrides the default behaviour of the callback).
    Nothing,
    /// Read until would-block or EOF, recording the bytes in the [`CallLog`].
    RecvAll,
    /// Read once, at most this many bytes.
    RecvUpTo(usize),
    /// Send these bytes once.
    Send(&'static [u8]),
    /// `ctx.close()`.
    Close,
    /// `ctx.exit()`.
    Exit,
    /// Return this error.
    Fail(Error),
    /// In `handle_accepted`: add the socket with a new recorder on the same log.
    AddAccepted,
    /// In `handle_eof`: keep writing (half-close).
    KeepWriting,
    /// `ctx.shutdown_write()`.
    ShutdownWrite,
    /// `ctx.close_channel(token)`: close another channel.
    CloseChannel(Token),
}

/// Capacity of the call log.
pub const CALLS: usize = 256;

/// The shared record of what [`Recorder`]s saw: callbacks in order, the errors
/// handed to `handle_error` and `handle_connect_failed`, bytes received, log lines.
#[derive(Debug, Default)]
pub struct CallLog {
    calls: RefCell<Vec<(Token, Callback), CALLS>>,
    errors: RefCell<Vec<(Token, Error), 64>>,
    events: RefCell<Vec<(Token, crate::SourceEvent), 64>>,
    connect_errors: RefCell<Vec<(Token, SocketError), 16>>,
    received: RefCell<Vec<(Token, u8), 2048>>,
    logs: RefCell<Vec<(Token, LogLevel, &'static str), 64>>,
    accepted: RefCell<Vec<Token, 32>>,
}

impl CallLog {
    /// An empty log.
    pub const fn new() -> Self {
        CallLog {
            calls: RefCell::new(Vec::new()),
            errors: RefCell::new(Vec::new()),
            events: RefCell::new(Vec::new()),
            connect_errors: RefCell::new(Vec::new()),
            received: RefCell::new(Vec::new()),
            logs: RefCell::new(Vec::new()),
            accepted: RefCell::new(Vec::new()),
        }
    }

    fn push(&self, token: Token, cb: Callback) {
        let _ = self.calls.borrow_mut().push((token, cb));
    }

    /// Every callback, in order.
    pub fn calls(&self) -> Vec<(Token, Callback), CALLS> {
        self.calls.borrow().clone()
    }

    /// The callbacks of one channel, in order.
    pub fn calls_of(&self, token: Token) -> Vec<Callback, CALLS> {
        self.calls
            .borrow()
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, c)| *c)
            .collect()
    }

    /// How many times `cb` ran on `token`.
    pub fn count(&self, token: Token, cb: Callback) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|(t, c)| *t == token && *c == cb)
            .count()
    }

    /// The errors `handle_error` got on `token`, in order.
    pub fn errors_of(&self, token: Token) -> Vec<Error, 64> {
        self.errors
            .borrow()
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, e)| *e)
            .collect()
    }

    /// The events `handle_event` got on `token`, in order.
    pub fn events_of(&self, token: Token) -> Vec<crate::SourceEvent, 64> {
        self.events
            .borrow()
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, e)| *e)
            .collect()
    }

    /// The errors `handle_connect_failed` got on `token`, in order.
    pub fn connect_errors_of(&self, token: Token) -> Vec<SocketError, 16> {
        self.connect_errors
            .borrow()
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, e)| *e)
            .collect()
    }

    /// Forgets the callbacks seen so far.
    pub fn clear_calls(&self) {
        self.calls.borrow_mut().clear();
    }

    /// The bytes `token` received through [`Action::RecvAll`]/[`Action::RecvUpTo`].
    pub fn received(&self, token: Token) -> Vec<u8, 2048> {
        self.received
            .borrow()
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, b)| *b)
            .collect()
    }

    /// The lines the default handlers logged through `log_info`.
    pub fn logs(&self) -> Vec<(Token, LogLevel, &'static str), 64> {
        self.logs.borrow().clone()
    }

    /// Tokens of channels added by [`Action::AddAccepted`], in order.
    pub fn accepted(&self) -> Vec<Token, 32> {
        self.accepted.borrow().clone()
    }
}

/// A dispatcher that records every callback into a [`CallLog`] and runs the
/// [`Action`]s configured for it; a callback with no action behaves as the trait's
/// default.
#[derive(Debug, Clone)]
pub struct Recorder<'a> {
    log: &'a CallLog,
    actions: Vec<(Callback, Action), 12>,
    readable: bool,
    writable: bool,
    queries: bool,
}

impl<'a> Recorder<'a> {
    /// A recorder that is readable, not writable, and does the defaults.
    pub fn new(log: &'a CallLog) -> Self {
        Recorder {
            log,
            actions: Vec::new(),
            readable: true,
            writable: false,
            queries: false,
        }
    }

    /// Adds `action` to `cb` (actions run in the order added).
    #[must_use]
    pub fn on(mut self, cb: Callback, action: Action) -> Self {
        self.add_action(cb, action);
        self
    }

    /// Adds `action` to `cb`. Returns `false` when the action list is full.
    pub fn add_action(&mut self, cb: Callback, action: Action) -> bool {
        self.actions.push((cb, action)).is_ok()
    }

    /// What `readable()` answers.
    #[must_use]
    pub fn readable(mut self, yes: bool) -> Self {
        self.readable = yes;
        self
    }

    /// What `writable()` answers.
    #[must_use]
    pub fn writable(mut self, yes: bool) -> Self {
        self.writable = yes;
        self
    }

    /// Changes what `writable()` answers.
    pub fn set_writable(&mut self, yes: bool) {
        self.writable = yes;
    }

    /// Changes what `readable()` answers.
    pub fn set_readable(&mut self, yes: bool) {
        self.readable = yes;
    }

    /// Also records every `readable()`/`writable()` query.
    #[must_use]
    pub fn record_queries(mut self) -> Self {
        self.queries = true;
        self
    }

    fn has_actions(&self, cb: Callback) -> bool {
        self.actions.iter().any(|(c, _)| *c == cb)
    }

    /// Runs the actions of `cb`. `accepted` is the socket of `handle_accepted`.
    fn run<S: Socket>(
        &mut self,
        ctx: &mut Ctx<'_, S, Self>,
        cb: Callback,
        mut accepted: Option<S>,
    ) -> Result<Option<AfterEof>, Error> {
        let token = ctx.token();
        let mut decision = None;
        for i in 0..self.actions.len() {
            let (c, action) = self.actions[i];
            if c != cb {
                continue;
            }
            match action {
                Action::Nothing => {}
                Action::RecvAll | Action::RecvUpTo(_) => {
                    let mut buf = [0u8; 64];
                    let mut budget = match action {
                        Action::RecvUpTo(n) => n,
                        _ => usize::MAX,
                    };
                    while budget > 0 {
                        let want = buf.len().min(budget);
                        match ctx.recv(&mut buf[..want])? {
                            Recv::Data(n) => {
                                let mut r = self.log.received.borrow_mut();
                                for &b in &buf[..n] {
                                    let _ = r.push((token, b));
                                }
                                budget -= n;
                                if n == 0 || matches!(action, Action::RecvUpTo(_)) {
                                    break;
                                }
                            }
                            Recv::Eof | Recv::WouldBlock => break,
                        }
                    }
                }
                Action::Send(data) => {
                    ctx.send(data)?;
                }
                Action::Close => ctx.close(),
                Action::Exit => ctx.exit(),
                Action::Fail(e) => return Err(e),
                Action::AddAccepted => {
                    if let Some(socket) = accepted.take() {
                        let child = Recorder::new(self.log);
                        match ctx.add(socket, child) {
                            Ok(t) => {
                                let _ = self.log.accepted.borrow_mut().push(t);
                            }
                            Err(refused) => {
                                let (mut s, _) = refused.into_inner();
                                let _ = s.close();
                            }
                        }
                    }
                }
                Action::KeepWriting => decision = Some(AfterEof::KeepWriting),
                Action::ShutdownWrite => ctx.shutdown_write()?,
                Action::CloseChannel(other) => {
                    ctx.close_channel(other);
                }
            }
        }
        if let Some(mut s) = accepted {
            let _ = s.close();
        }
        Ok(decision)
    }

    fn event<S: Socket>(&mut self, ctx: &mut Ctx<'_, S, Self>, cb: Callback) -> Result<(), Error> {
        self.log.push(ctx.token(), cb);
        self.run(ctx, cb, None).map(|_| ())
    }
}

impl<S: Socket> Dispatcher<S> for Recorder<'_> {
    type Error = Error;

    fn readable(&self) -> bool {
        if self.queries {
            self.log
                .push(Token::from_bits(u64::MAX), Callback::Readable);
        }
        self.readable
    }

    fn writable(&self) -> bool {
        if self.queries {
            self.log
                .push(Token::from_bits(u64::MAX), Callback::Writable);
        }
        self.writable
    }

    fn handle_connect(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.event(ctx, Callback::Connect)
    }

    fn handle_connect_failed(&mut self, ctx: &mut Ctx<'_, S, Self>, error: SocketError) {
        let _ = self
            .log
            .connect_errors
            .borrow_mut()
            .push((ctx.token(), error));
        let _ = self.event(ctx, Callback::ConnectFailed);
    }

    fn handle_accept(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.log.push(ctx.token(), Callback::Accept);
        if self.has_actions(Callback::Accept) {
            return self.run(ctx, Callback::Accept, None).map(|_| ());
        }
        // The trait's default: accept and hand over.
        for _ in 0..crate::ACCEPT_BATCH {
            match ctx.accept() {
                Ok(Some(socket)) => self.handle_accepted(ctx, socket)?,
                Ok(None) => break,
                Err(e) if !e.is_fatal_to_listener() => break,
                Err(e) => return Err(e.into()),
            }
            if !ctx.is_open() || ctx.exiting() {
                break;
            }
        }
        Ok(())
    }

    fn handle_accepted(&mut self, ctx: &mut Ctx<'_, S, Self>, socket: S) -> Result<(), Error> {
        self.log.push(ctx.token(), Callback::Accepted);
        self.run(ctx, Callback::Accepted, Some(socket)).map(|_| ())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.event(ctx, Callback::Read)
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.event(ctx, Callback::Write)
    }

    fn handle_expt(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.event(ctx, Callback::Expt)
    }

    fn handle_eof(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<AfterEof, Error> {
        self.log.push(ctx.token(), Callback::Eof);
        Ok(self
            .run(ctx, Callback::Eof, None)?
            .unwrap_or(AfterEof::Close))
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, S, Self>) -> Result<(), Error> {
        self.event(ctx, Callback::Close)
    }

    fn handle_event(
        &mut self,
        ctx: &mut Ctx<'_, S, Self>,
        event: crate::SourceEvent,
    ) -> Result<(), Error> {
        let _ = self.log.events.borrow_mut().push((ctx.token(), event));
        self.event(ctx, Callback::Event)
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, S, Self>, error: Error) {
        self.log.push(ctx.token(), Callback::Error);
        let _ = self.log.errors.borrow_mut().push((ctx.token(), error));
        if self.has_actions(Callback::Error) {
            let _ = self.run(ctx, Callback::Error, None);
        } else {
            ctx.close();
        }
    }

    fn log_info(&mut self, token: Token, level: LogLevel, message: &'static str) {
        let _ = self.log.logs.borrow_mut().push((token, level, message));
    }
}
