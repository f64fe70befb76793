//! What the interpreters share: the life-cycle check of their dispatchers, the
//! [`Command`]s the `dispatch` and `dgram` dispatchers take and the callback that
//! runs them ([`Scripted::callback`]), and the plumbing of a run (decoding the
//! operations, picking a channel, the checks after every operation).

use core::time::Duration;

use heapless::Vec;

use super::{CheckHooks, Input, LifeFailure, LifeViolation};
use crate::sim::{SimNet, Stall, Violation};
use crate::{AddError, Callback, Ctx, Dispatcher, Error, Io, Lend, Reactor, Socket, Token};

/// A one-shot order for a channel: run `action` in the first callback of kind `on`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Command<A> {
    /// Which callback (an entry of the interpreter's `HOOKS`; `None`: the first
    /// callback of any kind).
    pub on: Option<Callback>,
    /// What to do.
    pub action: A,
}

/// What a channel of an interpreter can be ordered to do: its input bytes, and the
/// callbacks an order can wait for.
pub(crate) trait Action: Copy {
    /// The callbacks a [`Command`] can wait for, as the input numbers them.
    const HOOKS: &'static [Option<Callback>];
    /// Reads one action; `None` when the input runs out.
    fn decode(i: &mut Input<'_>) -> Option<Self>;
    /// Writes the bytes [`decode`](Self::decode) reads back as this action.
    fn encode(&self, put: &mut impl FnMut(u8));
}

/// Reads a command: the hook (an index into [`Action::HOOKS`]), then the action.
pub(crate) fn decode_command<A: Action>(i: &mut Input<'_>) -> Option<Command<A>> {
    Some(Command {
        on: A::HOOKS[i.below(A::HOOKS.len() as u8)? as usize],
        action: A::decode(i)?,
    })
}

/// Writes the bytes [`decode_command`] reads back as `command`.
pub(crate) fn encode_command<A: Action>(command: &Command<A>, put: &mut impl FnMut(u8)) {
    let hook = A::HOOKS.iter().position(|h| *h == command.on).unwrap_or(0);
    put(hook as u8);
    command.action.encode(put);
}

/// The operations `data` stands for: `decode` until the bytes run out, `max` at
/// most.
pub(crate) fn decoded<'a, O: 'a>(
    data: &'a [u8],
    max: usize,
    decode: fn(&mut Input<'a>) -> Option<O>,
) -> impl Iterator<Item = O> + 'a {
    let mut input = Input::new(data);
    core::iter::from_fn(move || decode(&mut input)).take(max)
}

/// The bytes `ops` encode to, one after the other: what [`decoded`] reads back as
/// them. `encode` writes one operation (its `encode`). For the interpreters' tests.
#[cfg(test)]
pub(crate) fn encoded<O>(ops: &[O], encode: impl Fn(&O, &mut dyn FnMut(u8))) -> std::vec::Vec<u8> {
    let mut out = std::vec::Vec::new();
    for op in ops {
        encode(op, &mut |b| out.push(b));
    }
    out
}

/// The life of one channel as its dispatcher sees it; [`Life::enter`] before and
/// [`Life::leave`] after each callback, [`Life::close`] for `ctx.close()`.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct Life {
    closed: bool,
    error_next: bool,
    closes: u8,
    connecting: bool,
    close_requested: bool,
}

impl Life {
    pub(crate) const fn new(connecting: bool) -> Self {
        Life {
            closed: false,
            error_next: false,
            closes: 0,
            connecting,
            close_requested: false,
        }
    }

    /// `ctx.close()`, remembered: no callback may follow the current one.
    pub(crate) fn close<S: Socket, D>(&mut self, ctx: &mut Ctx<'_, S, D>) {
        self.close_requested = true;
        ctx.close();
    }

    /// Whether the dispatcher called [`close`](Self::close).
    pub(crate) fn closing(&self) -> bool {
        self.close_requested
    }

    /// Checks that `event` may run now.
    pub(crate) fn enter(&mut self, event: Callback) -> Result<(), LifeViolation> {
        if self.error_next {
            self.error_next = false;
            return if event == Callback::Error {
                Ok(())
            } else {
                Err(LifeViolation::ErrorNotDelivered(event))
            };
        }
        if self.closed {
            return Err(LifeViolation::CallbackAfterClose(event));
        }
        match event {
            Callback::Error => return Err(LifeViolation::UnexpectedError),
            Callback::Close => {
                self.closes += 1;
                if self.closes > 1 {
                    return Err(LifeViolation::DoubleClose);
                }
            }
            Callback::Connect | Callback::ConnectFailed => {
                if !self.connecting {
                    return Err(LifeViolation::UnexpectedConnect(event));
                }
                self.connecting = false;
            }
            _ => {}
        }
        Ok(())
    }

    /// Records how `event` ended: whether it returned `Err`.
    pub(crate) fn leave(&mut self, event: Callback, failed: bool) {
        if self.close_requested {
            self.closed = true;
            return;
        }
        if failed && event != Callback::Error {
            self.error_next = true;
        }
        if matches!(event, Callback::Close | Callback::ConnectFailed) {
            self.closed = true;
        }
    }
}

/// The first of several failures: keeps the earliest.
#[derive(Debug)]
pub(crate) struct First<F: Copy>(core::cell::Cell<Option<F>>);

impl<F: Copy> First<F> {
    pub(crate) const fn new() -> Self {
        First(core::cell::Cell::new(None))
    }

    pub(crate) fn set(&self, f: F) {
        if self.0.get().is_none() {
            self.0.set(Some(f));
        }
    }

    pub(crate) fn get(&self) -> Option<F> {
        self.0.get()
    }
}

/// A scripted dispatcher's own state: its [`Life`], the [`Command`] it waits to run,
/// and whether `handle_error` closes it.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Script<A> {
    pub(crate) life: Life,
    /// The pending order.
    pub(crate) command: Option<Command<A>>,
    close_on_error: bool,
}

impl<A: Copy> Script<A> {
    pub(crate) const fn new(connecting: bool) -> Self {
        Script {
            life: Life::new(connecting),
            command: None,
            close_on_error: true,
        }
    }

    /// The pending command's action, taken, if it waits for `event`.
    fn due(&mut self, event: Callback) -> Option<A> {
        let cmd = self.command?;
        if cmd.on.is_some_and(|on| on != event) {
            return None;
        }
        self.command = None;
        Some(cmd.action)
    }

    /// A commanded failure: `handle_error` then closes the channel, or keeps it
    /// open (`keep`).
    pub(crate) fn fail(&mut self, keep: bool) -> Result<(), Error> {
        self.close_on_error = !keep;
        Err(Error::Protocol("fuzz: commanded failure"))
    }
}

/// A dispatcher that runs [`Command`]s from inside its callbacks and checks its
/// [`Life`]: each callback goes through [`callback`](Self::callback).
pub(crate) trait Scripted<S: Socket>: Sized {
    /// What its commands do.
    type Action: Copy;

    /// Its state.
    fn script(&mut self) -> &mut Script<Self::Action>;

    /// Reports a broken life-cycle rule (the run keeps the first failure).
    fn broken(&self, failure: LifeFailure);

    /// Does what a command due now orders; an `Err` is the callback's result.
    fn perform(&mut self, ctx: &mut Ctx<'_, S, Self>, action: Self::Action) -> Result<(), Error>;

    /// Runs one callback: the life-cycle check, the pending command if it waits for
    /// `event`, then `body` (unless the command failed or the channel closed itself).
    fn callback(
        &mut self,
        ctx: &mut Ctx<'_, S, Self>,
        event: Callback,
        body: impl FnOnce(&mut Self, &mut Ctx<'_, S, Self>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if let Err(violation) = self.script().life.enter(event) {
            self.broken(LifeFailure {
                token: ctx.token(),
                violation,
            });
        }
        let result = match self.script().due(event) {
            Some(action) => self.perform(ctx, action),
            None => Ok(()),
        }
        .and_then(|()| {
            if self.script().life.closing() {
                Ok(())
            } else {
                body(self, ctx)
            }
        });
        self.script().life.leave(event, result.is_err());
        result
    }

    /// `handle_error`: closes the channel unless the failure was commanded to keep
    /// it open.
    fn on_error(&mut self, ctx: &mut Ctx<'_, S, Self>) {
        let _ = self.callback(ctx, Callback::Error, |me, ctx| {
            let script = me.script();
            if script.close_on_error {
                script.life.close(ctx);
            }
            script.close_on_error = true;
            Ok(())
        });
    }
}

/// The `n`-th of `tokens` (at most `N`), modulo their number.
pub(crate) fn nth<const N: usize>(tokens: impl Iterator<Item = Token>, n: u8) -> Option<Token> {
    let tokens: Vec<Token, N> = tokens.collect();
    if tokens.is_empty() {
        return None;
    }
    Some(tokens[n as usize % tokens.len()])
}

/// The token of a channel added, or `None` with its socket closed if it was refused.
pub(crate) fn added<S: Socket, D>(added: Result<Token, AddError<S, D>>) -> Option<Token> {
    match added {
        Ok(t) => Some(t),
        Err(refused) => {
            let (mut s, _) = refused.into_inner();
            let _ = s.close();
            None
        }
    }
}

/// Starts a run: the caller's checker forgets what it saw and watches `r`.
pub(crate) fn watch<I: Io, D, const N: usize, const T: usize, P: Lend>(
    r: &mut Reactor<I, D, N, T, P>,
    hooks: Option<CheckHooks>,
) where
    D: Dispatcher<I::Socket>,
{
    if let Some(h) = hooks {
        (h.reset)();
    }
    r.set_observer(hooks.map(|h| h.observer));
}

/// The caller's checker's first violation, if it has one.
pub(crate) fn verdict(hooks: Option<CheckHooks>) -> Option<Violation> {
    hooks.and_then(|h| (h.verdict)())
}

/// The failures of an interpreter over the simulated network that the shared checks
/// report.
pub(crate) trait NetFailure: Copy {
    /// The caller's checker objected.
    fn checker(v: Violation) -> Self;
    /// A receive buffer held `buffered` bytes, more than its capacity.
    fn overflow(buffered: usize) -> Self;
    /// A socket was left ready with nothing done about it.
    fn unserviced(stall: Stall) -> Self;
    /// A reactor pass failed.
    fn looped() -> Self;
}

/// Implements [`NetFailure`] for an interpreter's `Failure`, whose variants
/// `Checker(Violation)`, `Overflow { buffered }`, `Unserviced(Stall)` and `Loop` say
/// those failures.
macro_rules! net_failure {
    ($failure:ident) => {
        impl $crate::sim::fuzz::script::NetFailure for $failure {
            fn checker(v: $crate::sim::Violation) -> Self {
                $failure::Checker(v)
            }

            fn overflow(buffered: usize) -> Self {
                $failure::Overflow { buffered }
            }

            fn unserviced(stall: $crate::sim::Stall) -> Self {
                $failure::Unserviced(stall)
            }

            fn looped() -> Self {
                $failure::Loop
            }
        }
    };
}
pub(crate) use net_failure;

/// The checks after every operation over the simulated network: the caller's
/// checker, then the first failure the handlers saw, then no receive buffer over
/// its capacity and no socket left ready unserviced.
pub(crate) fn check<F: NetFailure, const S: usize, const B: usize>(
    hooks: Option<CheckHooks>,
    failure: &First<F>,
    net: &SimNet<S, B>,
) -> Result<(), F> {
    if let Some(v) = verdict(hooks) {
        return Err(F::checker(v));
    }
    if let Some(f) = failure.get() {
        return Err(f);
    }
    let buffered = net.max_buffered();
    if buffered > B {
        return Err(F::overflow(buffered));
    }
    if let Some(stall) = net.stall() {
        return Err(F::unserviced(stall));
    }
    Ok(())
}

/// One reactor pass (`passes`: `None`) or `Reactor::run` for `passes`, each waiting
/// up to `timeout_ms`; adds the passes to `count`.
pub(crate) fn drive<F: NetFailure, I: Io, D, const N: usize, const T: usize, P: Lend>(
    r: &mut Reactor<I, D, N, T, P>,
    count: &mut u32,
    passes: Option<u8>,
    timeout_ms: u8,
) -> Result<(), F>
where
    D: Dispatcher<I::Socket>,
{
    let timeout = Some(Duration::from_millis(timeout_ms as u64));
    let done = match passes {
        None => {
            *count += 1;
            r.poll_once(timeout).map(drop)
        }
        Some(n) => {
            *count += n as u32;
            r.run(timeout, Some(n as u32)).map(drop)
        }
    };
    done.map_err(|_| F::looped())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn life_rules() {
        let mut l = Life::new(true);
        assert_eq!(l.enter(Callback::Connect), Ok(()));
        assert_eq!(
            l.enter(Callback::Connect),
            Err(LifeViolation::UnexpectedConnect(Callback::Connect))
        );
        let mut l = Life::new(false);
        l.enter(Callback::Read).unwrap();
        l.leave(Callback::Read, true);
        assert_eq!(
            l.enter(Callback::Write),
            Err(LifeViolation::ErrorNotDelivered(Callback::Write))
        );
        let mut l = Life::new(false);
        l.enter(Callback::Read).unwrap();
        l.close_requested = true;
        l.leave(Callback::Read, true);
        assert_eq!(
            l.enter(Callback::Error),
            Err(LifeViolation::CallbackAfterClose(Callback::Error))
        );
        let mut l = Life::new(false);
        l.enter(Callback::Eof).unwrap();
        l.close_requested = true;
        l.leave(Callback::Eof, true);
        assert_eq!(
            l.enter(Callback::Error),
            Err(LifeViolation::CallbackAfterClose(Callback::Error))
        );
        assert_eq!(
            l.enter(Callback::Error),
            Err(LifeViolation::CallbackAfterClose(Callback::Error))
        );
        let mut l = Life::new(false);
        l.enter(Callback::Close).unwrap();
        l.leave(Callback::Close, true);
        assert_eq!(l.enter(Callback::Error), Ok(()));
        l.leave(Callback::Error, false);
        assert_eq!(
            l.enter(Callback::Timeout),
            Err(LifeViolation::CallbackAfterClose(Callback::Timeout))
        );
        let mut l = Life::new(true);
        l.enter(Callback::ConnectFailed).unwrap();
        l.leave(Callback::ConnectFailed, false);
        assert_eq!(
            l.enter(Callback::Connect),
            Err(LifeViolation::CallbackAfterClose(Callback::Connect))
        );
    }
}
