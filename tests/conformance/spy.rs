//! A selector wrapper that counts waits and records what each one was handed and
//! reported, so every backend's passes, interest sets and readiness bits can be
//! asserted the same way.

use std::time::Duration;

use asyncore::{Events, Interest, Readiness, Selector, SourceError, Token};

/// One registration of the last wait and what the wrapped selector reported for it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Seen<Src> {
    pub token: Token,
    pub source: Src,
    pub interest: Interest,
    pub ready: Readiness,
}

/// Wraps a selector; forwards everything and records each wait.
#[derive(Debug)]
pub struct Spy<S: Selector> {
    pub inner: S,
    passes: u32,
    timeouts: Vec<Option<Duration>>,
    last: Vec<Seen<S::Source>>,
    /// What is registered now, in slot order.
    regs: Vec<(Token, S::Source, Interest)>,
}

impl<S: Selector> Spy<S> {
    pub fn new(inner: S) -> Self {
        Spy {
            inner,
            passes: 0,
            timeouts: Vec::new(),
            last: Vec::new(),
            regs: Vec::new(),
        }
    }

    /// How many waits ran.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// The timeout of the last wait (`None` if none ran).
    pub fn last_timeout(&self) -> Option<Option<Duration>> {
        self.timeouts.last().copied()
    }

    /// The registrations of the last wait with what was reported for each.
    pub fn last(&self) -> &[Seen<S::Source>] {
        &self.last
    }

    /// What the last wait reported for `token` (`None`: not handed over).
    pub fn ready_of(&self, token: Token) -> Option<Readiness> {
        self.last.iter().find(|s| s.token == token).map(|s| s.ready)
    }

    /// The interest `token` had in the last wait (`None`: not handed over).
    pub fn interest_of(&self, token: Token) -> Option<Interest> {
        self.last
            .iter()
            .find(|s| s.token == token)
            .map(|s| s.interest)
    }
}

impl<S: Selector> Selector for Spy<S> {
    type Source = S::Source;
    type Error = S::Error;

    fn now(&self) -> Option<Duration> {
        self.inner.now()
    }

    fn register(
        &mut self,
        token: Token,
        source: S::Source,
        interest: Interest,
    ) -> Result<(), SourceError> {
        self.inner.register(token, source, interest)?;
        self.regs.push((token, source, interest));
        self.regs.sort_by_key(|r| r.0.index());
        Ok(())
    }

    fn reregister(
        &mut self,
        token: Token,
        source: S::Source,
        was: Interest,
        interest: Interest,
    ) -> Result<(), SourceError> {
        self.inner.reregister(token, source, was, interest)?;
        if let Some(r) = self.regs.iter_mut().find(|r| r.0 == token) {
            r.2 = interest;
        }
        Ok(())
    }

    fn deregister(&mut self, token: Token, source: S::Source, was: Interest) {
        self.inner.deregister(token, source, was);
        self.regs.retain(|r| r.0 != token);
    }

    fn select(
        &mut self,
        events: &mut Events<'_>,
        timeout: Option<Duration>,
    ) -> Result<usize, S::Error> {
        self.passes += 1;
        self.timeouts.push(timeout);
        let before = events.len();
        let n = self.inner.select(events, timeout)?;
        self.last = self
            .regs
            .iter()
            .filter(|r| !r.2.is_empty())
            .map(|&(token, source, interest)| Seen {
                token,
                source,
                interest,
                ready: Readiness::EMPTY,
            })
            .collect();
        self.saw(&events.as_slice()[before..]);
        Ok(n)
    }

    /// The rest of the same wait: recorded with what `select` reported.
    fn select_more(&mut self, events: &mut Events<'_>) -> usize {
        let before = events.len();
        let n = self.inner.select_more(events);
        self.saw(&events.as_slice()[before..]);
        n
    }
}

impl<S: Selector> Spy<S> {
    /// Records `reported`, part of what the last wait found.
    fn saw(&mut self, reported: &[asyncore::Event]) {
        for e in reported {
            if let Some(seen) = self
                .last
                .iter_mut()
                .find(|s| s.token.index() == e.slot() as usize)
            {
                seen.ready = e.readiness();
            }
        }
    }
}
