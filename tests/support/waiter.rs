//! A selector driven the way tests think about one wait: hand it the full list of
//! registrations and get back one readiness per entry. It keeps the selector's
//! persistent registrations in step with the list (registering, changing interest
//! and deregistering what differs from the previous call), as a reactor does.
#![allow(dead_code)]

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use asyncore_core::{Event, Events, Interest, Readiness, Selector, SourceError, Token};

/// One entry of the list a test hands over.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Registration<Src> {
    pub token: Token,
    pub source: Src,
    pub interest: Interest,
}

/// `Registration { token: Token::new(index, 0), source, interest }`.
pub fn reg<Src>(index: u32, source: Src, interest: Interest) -> Registration<Src> {
    Registration {
        token: Token::new(index, 0),
        source,
        interest,
    }
}

/// A selector and what is registered with it.
#[derive(Debug)]
pub struct Waiter<S: Selector> {
    pub sel: S,
    regs: Vec<Registration<S::Source>>,
}

impl<S: Selector> Waiter<S> {
    pub fn new(sel: S) -> Self {
        Waiter {
            sel,
            regs: Vec::new(),
        }
    }

    /// Brings the registrations in line with `list`. A registration the selector
    /// refuses is returned, the rest still applied.
    pub fn sync(&mut self, list: &[Registration<S::Source>]) -> Result<(), SourceError> {
        let mut refused = Ok(());
        let gone: Vec<_> = self
            .regs
            .iter()
            .filter(|r| {
                !list
                    .iter()
                    .any(|l| l.token == r.token && l.source == r.source)
            })
            .copied()
            .collect();
        for r in gone {
            self.sel.deregister(r.token, r.source, r.interest);
            self.regs.retain(|x| x.token != r.token);
        }
        for l in list {
            match self.regs.iter_mut().find(|r| r.token == l.token) {
                Some(r) if r.interest != l.interest => {
                    match self
                        .sel
                        .reregister(l.token, l.source, r.interest, l.interest)
                    {
                        Ok(()) => r.interest = l.interest,
                        Err(e) => refused = Err(e),
                    }
                }
                Some(_) => {}
                None => match self.sel.register(l.token, l.source, l.interest) {
                    Ok(()) => self.regs.push(*l),
                    Err(e) => refused = Err(e),
                },
            }
        }
        refused
    }

    /// One wait over exactly `list` (registrations refused are left out), with what
    /// was reported for each entry written into `ready` at the same index. Returns
    /// how many entries are non-empty.
    pub fn select(
        &mut self,
        list: &[Registration<S::Source>],
        ready: &mut [Readiness],
        timeout: Option<Duration>,
    ) -> Result<usize, S::Error> {
        let _ = self.sync(list);
        let mut buf = vec![Event::EMPTY; list.len().max(1)];
        let mut events = Events::new(&mut buf);
        self.sel.select(&mut events, timeout)?;
        let mut count = 0;
        for (l, out) in list.iter().zip(ready.iter_mut()) {
            *out = events
                .as_slice()
                .iter()
                .find(|e| e.slot() as usize == l.token.index())
                .map_or(Readiness::EMPTY, |e| e.readiness());
            if !out.is_empty() {
                count += 1;
            }
        }
        Ok(count)
    }
}

impl<S: Selector> Deref for Waiter<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.sel
    }
}

impl<S: Selector> DerefMut for Waiter<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.sel
    }
}
