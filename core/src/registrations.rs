//! [`Registrations`]: the bookkeeping of a selector that scans its sources.

use heapless::Vec;

use crate::{Interest, SourceError, Token};

/// One registered source.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Registered<Src> {
    /// The channel it reports for.
    pub token: Token,
    /// What is watched.
    pub source: Src,
    /// What it is watched for (possibly nothing).
    pub interest: Interest,
}

/// Up to `CAP` registrations kept in slot order of their tokens: what a selector
/// that looks at each of its sources on every wait (the mock, the simulator, a
/// device's readiness registers) needs to implement
/// [`Selector::register`](crate::Selector::register),
/// [`reregister`](crate::Selector::reregister) and
/// [`deregister`](crate::Selector::deregister), then scan
/// [`watched`](Self::watched) in each wait.
#[derive(Debug)]
pub struct Registrations<Src, const CAP: usize> {
    list: Vec<Registered<Src>, CAP>,
}

impl<Src, const CAP: usize> Default for Registrations<Src, CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Src, const CAP: usize> Registrations<Src, CAP> {
    /// None.
    pub const fn new() -> Self {
        Registrations { list: Vec::new() }
    }

    /// How many sources are registered.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Every registration, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Registered<Src>> {
        self.list.iter()
    }

    /// The registrations with some interest, in slot order: what a wait looks at.
    pub fn watched(&self) -> impl Iterator<Item = &Registered<Src>> {
        self.list.iter().filter(|r| !r.interest.is_empty())
    }
}

impl<Src: Copy + Eq, const CAP: usize> Registrations<Src, CAP> {
    /// Registers `source` for `token`.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] if `token` is registered already;
    /// [`SourceError::Full`] when `CAP` are.
    pub fn register(
        &mut self,
        token: Token,
        source: Src,
        interest: Interest,
    ) -> Result<(), SourceError> {
        if self.list.iter().any(|r| r.token == token) {
            return Err(SourceError::Invalid);
        }
        let at = self
            .list
            .iter()
            .position(|r| r.token.index() > token.index())
            .unwrap_or(self.list.len());
        let reg = Registered {
            token,
            source,
            interest,
        };
        self.list.insert(at, reg).map_err(|_| SourceError::Full)
    }

    /// Changes the interest of `token`'s registration of `source`.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] if there is no such registration.
    pub fn reregister(
        &mut self,
        token: Token,
        source: Src,
        interest: Interest,
    ) -> Result<(), SourceError> {
        let r = self
            .list
            .iter_mut()
            .find(|r| r.token == token && r.source == source)
            .ok_or(SourceError::Invalid)?;
        r.interest = interest;
        Ok(())
    }

    /// Forgets `token`'s registration. Returns whether there was one.
    pub fn deregister(&mut self, token: Token) -> bool {
        match self.list.iter().position(|r| r.token == token) {
            Some(i) => {
                self.list.remove(i);
                true
            }
            None => false,
        }
    }

    /// The registration of `source`, if any.
    pub fn of_source(&self, source: Src) -> Option<&Registered<Src>> {
        self.list.iter().find(|r| r.source == source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_order_and_errors() {
        let mut r: Registrations<u32, 3> = Registrations::new();
        let t = |i| Token::new(i, 0);
        r.register(t(5), 50, Interest::READABLE).unwrap();
        r.register(t(1), 10, Interest::NONE).unwrap();
        r.register(t(3), 30, Interest::WRITABLE).unwrap();
        assert_eq!(
            r.register(t(3), 31, Interest::NONE),
            Err(SourceError::Invalid)
        );
        assert_eq!(r.register(t(7), 70, Interest::NONE), Err(SourceError::Full));
        let order: std::vec::Vec<u32> = r.iter().map(|x| x.source).collect();
        assert_eq!(order, [10, 30, 50]);
        let watched: std::vec::Vec<u32> = r.watched().map(|x| x.source).collect();
        assert_eq!(watched, [30, 50]);
        assert_eq!(
            r.reregister(t(1), 11, Interest::BOTH),
            Err(SourceError::Invalid),
            "wrong source"
        );
        r.reregister(t(1), 10, Interest::BOTH).unwrap();
        assert_eq!(r.of_source(10).map(|x| x.interest), Some(Interest::BOTH));
        assert!(r.deregister(t(3)));
        assert!(!r.deregister(t(3)));
        assert_eq!(r.len(), 2);
    }
}
