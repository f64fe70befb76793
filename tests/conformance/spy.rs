//! A selector wrapper that counts waits and records what each one was handed and
//! reported, so every backend's passes, interest sets and readiness bits can be
//! asserted the same way.

use std::time::Duration;

use asyncore::{Interest, Readiness, Registration, Selector, SourceError, Token};

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
}

impl<S: Selector> Spy<S> {
    pub fn new(inner: S) -> Self {
        Spy {
            inner,
            passes: 0,
            timeouts: Vec::new(),
            last: Vec::new(),
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

    fn register(&mut self, source: S::Source) -> Result<(), SourceError> {
        self.inner.register(source)
    }

    fn deregister(&mut self, source: S::Source) {
        self.inner.deregister(source);
    }

    fn select(
        &mut self,
        registrations: &[Registration<S::Source>],
        ready: &mut [Readiness],
        timeout: Option<Duration>,
    ) -> Result<usize, S::Error> {
        self.passes += 1;
        self.timeouts.push(timeout);
        let n = self.inner.select(registrations, ready, timeout)?;
        self.last = registrations
            .iter()
            .zip(ready.iter())
            .map(|(r, &ready)| Seen {
                token: r.token,
                source: r.source,
                interest: r.interest,
                ready,
            })
            .collect();
        Ok(n)
    }
}
