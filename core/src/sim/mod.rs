//! A simulated network for deterministic simulation tests and fuzzing: in-memory
//! stream sockets and listeners with finite buffers, a selector over them, a virtual
//! clock that jumps to the next event instead of sleeping, and seeded fault
//! injection. `no_std`, no allocation.
//!
//! * [`SimNet`]: the network. Everything — sockets, buffers, the clock, the fault
//!   generator — lives in it, behind a `RefCell`, and [`SimSocket`]s and the
//!   [`SimSelector`] borrow it. One network can serve run after run:
//!   [`SimNet::restart`] starts it again in place, and [`SimNet::empty`] is one for a
//!   `static` (all zero bytes), for a target whose stack cannot hold a network.
//! * [`SimConfig`]: the seed and every option derived from it (fault rates, latencies);
//!   its `Display` prints them all, so a failing run can be replayed.
//! * Faults ([`Fault`]): short reads and writes, would-block after readiness,
//!   spurious readiness, `EINTR` in the wait, refused and slow connects, resets
//!   mid-stream, accepts failing with `EMFILE` or `ECONNABORTED`; scenarios add
//!   half-closes and full maps. Each injection is counted ([`SimNet::fired`]).
//! * [`SimNet::trace_hash`]: a hash of every operation and result, so the same seed
//!   must give the same hash.
//! * A datagram network beside the streams ([`SimNet::bind_dgram`],
//!   [`SimNet::connect_dgram`], [`SimNet::dgram`]; sockets implement
//!   [`Datagram`](crate::Datagram) with [`SimAddr`] ports): datagrams in flight with
//!   a latency, seeded loss, duplication and reordering ([`DgramConfig`]), a full
//!   receive buffer dropping, and `ECONNREFUSED` for a connected socket whose peer's
//!   port is closed. The [`dgram_scenario`] runs a request/response protocol with
//!   retries over it.
//!
//! Readiness follows Linux: a refused connect is readable, writable, error and
//! hang-up; a reset connection the same; a FIN makes a socket readable; a connection
//! shut both ways hangs up.
//!
//! # Your own dispatcher in the simulator
//!
//! Any dispatcher generic over [`Socket`](crate::Socket) runs here unchanged. A
//! listener that greets each client, and a client driven from the test:
//!
//! ```
//! use core::time::Duration;
//! use asyncore_core::sim::{SimConfig, SimIo, SimNet, SimSelector};
//! use asyncore_core::{Ctx, Dispatcher, Error, Reactor, Recv, Socket};
//!
//! /// Says hello to every connection, then closes it.
//! struct Greeter;
//!
//! impl<S: Socket> Dispatcher<S> for Greeter {
//!     type Error = Error;
//!     fn handle_accepted(&mut self, _ctx: &mut Ctx<'_, S, Self>, mut s: S) -> Result<(), Error> {
//!         let _ = s.send(b"hello\n");
//!         let _ = s.close();
//!         Ok(())
//!     }
//! }
//!
//! // `SimConfig::from_seed(seed)` draws faults from a seed; this run has none.
//! let net: SimNet<16, 256> = SimNet::new(SimConfig::quiet(42));
//! let mut reactor: Reactor<SimIo<'_, 16, 256>, Greeter, 4> =
//!     Reactor::new(SimSelector::new(&net));
//! reactor.add(net.listen(80).unwrap(), Greeter).unwrap();
//!
//! let mut client = net.connect(80).unwrap();
//! let mut got = [0u8; 16];
//! let mut n = 0;
//! for _ in 0..100 {
//!     // Virtual time: a pass with nothing to do jumps to the next event.
//!     reactor.poll_once(Some(Duration::from_millis(10))).unwrap();
//!     match client.recv(&mut got[n..]) {
//!         Ok(Recv::Data(k)) => n += k,
//!         Ok(Recv::Eof) => break,
//!         _ => {} // not connected yet
//!     }
//! }
//! assert_eq!(&got[..n], b"hello\n");
//! println!("{} after {:?} of virtual time", net.config(), net.now());
//! ```

pub mod chat_scenario;
mod check;
mod dgram;
pub mod dgram_scenario;
#[cfg(any(test, feature = "fuzz"))]
#[cfg_attr(docsrs, doc(cfg(feature = "fuzz")))]
pub mod fuzz;
mod net;
mod rng;
pub mod scenario;

pub use check::{TRACKED, TraceChecker, Violation};
pub use dgram::{DGRAM_FAULTS, DgramConfig, DgramFault, MAX_DATAGRAM, SEND_BUFFER, SimAddr, WIRE};
pub use net::{STALL_WAITS, SimNet, SimSelector, SimSocket, SimStalled, Stall};
pub use rng::Rng;

/// The simulator's [`Io`](crate::Io): `Reactor<SimIo<'_, S, B>, D, N>` over a
/// [`SimNet<S, B>`](SimNet) (`SimIo<'_, S, B, W>` over a `SimNet<S, B, W>`).
pub type SimIo<'n, const S: usize, const B: usize, const W: usize = WIRE> =
    crate::With<SimSelector<'n, S, B, W>, SimSocket<'n, S, B, W>>;

use core::fmt;
use core::time::Duration;

/// Kinds of injected fault.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fault {
    /// A read returns fewer bytes than were available.
    ShortRead,
    /// A write takes fewer bytes than it could.
    ShortWrite,
    /// An operation would block although the socket was reported ready.
    WouldBlock,
    /// The selector reports readiness that is not there.
    Spurious,
    /// A wait is interrupted by a signal (the selector retries it).
    Eintr,
    /// A connect is refused although a listener is there.
    Refused,
    /// A connect takes much longer than usual.
    SlowConnect,
    /// A connection is reset in the middle of a transfer.
    Reset,
    /// A peer finishes sending early (scenario-driven).
    HalfClose,
    /// An accept fails with `EMFILE`.
    AcceptEmfile,
    /// An accept fails with `ECONNABORTED` (the peer reset first).
    AcceptAborted,
    /// A channel could not be added because the map was full (scenario-driven).
    MapFull,
    /// A client sends a TCP urgent byte (scenario-driven): the server's default
    /// `handle_expt` must consume it, or the loop would spin on it.
    Urgent,
}

/// How many [`Fault`] kinds there are.
pub const FAULTS: usize = 13;

impl Fault {
    /// Every fault kind.
    pub const ALL: [Fault; FAULTS] = [
        Fault::ShortRead,
        Fault::ShortWrite,
        Fault::WouldBlock,
        Fault::Spurious,
        Fault::Eintr,
        Fault::Refused,
        Fault::SlowConnect,
        Fault::Reset,
        Fault::HalfClose,
        Fault::AcceptEmfile,
        Fault::AcceptAborted,
        Fault::MapFull,
        Fault::Urgent,
    ];

    /// Its index in [`Fault::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short name.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::ShortRead => "short_read",
            Fault::ShortWrite => "short_write",
            Fault::WouldBlock => "would_block",
            Fault::Spurious => "spurious",
            Fault::Eintr => "eintr",
            Fault::Refused => "refused",
            Fault::SlowConnect => "slow_connect",
            Fault::Reset => "reset",
            Fault::HalfClose => "half_close",
            Fault::AcceptEmfile => "accept_emfile",
            Fault::AcceptAborted => "accept_aborted",
            Fault::MapFull => "map_full",
            Fault::Urgent => "urgent",
        }
    }
}

/// The options of one simulated run, all derived from its seed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The seed.
    pub seed: u64,
    /// Probability of each fault, per mille, indexed by [`Fault::index`].
    pub rates: [u16; FAULTS],
    /// How long a connect takes.
    pub latency: Duration,
    /// How long a slow connect takes.
    pub slow_latency: Duration,
}

impl SimConfig {
    /// A run with no faults at all.
    pub const fn quiet(seed: u64) -> Self {
        SimConfig {
            seed,
            rates: [0; FAULTS],
            latency: Duration::from_micros(100),
            slow_latency: Duration::from_millis(50),
        }
    }

    /// Every option drawn from `seed`: about one seed in eight runs without faults,
    /// the others with each fault at a rate of up to a few percent.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5eed_cafe_f00d_d00d);
        let mut cfg = SimConfig::quiet(seed);
        if rng.below(8) == 0 {
            return cfg;
        }
        // Upper bounds per kind, per mille.
        const MAX: [u16; FAULTS] = [300, 300, 100, 100, 100, 150, 150, 15, 150, 100, 100, 0, 50];
        for (rate, max) in cfg.rates.iter_mut().zip(MAX) {
            // Half the kinds off in a given run, the others anywhere up to the bound.
            if rng.below(2) == 0 {
                *rate = rng.range(1, max as u64) as u16;
            }
        }
        cfg.latency = Duration::from_micros(rng.range(10, 2_000));
        cfg.slow_latency = Duration::from_millis(rng.range(20, 500));
        cfg
    }

    /// The rate of one fault, per mille.
    pub fn rate(&self, f: Fault) -> u16 {
        self.rates[f.index()]
    }

    /// Sets the rate of one fault, per mille.
    pub fn set_rate(&mut self, f: Fault, per_mille: u16) {
        self.rates[f.index()] = per_mille.min(1000);
    }
}

impl fmt::Display for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed={} latency={:?} slow_latency={:?}",
            self.seed, self.latency, self.slow_latency
        )?;
        for k in Fault::ALL {
            write!(f, " {}={}‰", k.name(), self.rate(k))?;
        }
        Ok(())
    }
}

/// An optional value whose absence is a zero byte, for the state of a network or a
/// checker that may be a `static`: an `Option<T>` marks `None` with a value `T`
/// cannot take when it has one (a `Duration`'s nanoseconds past a second, an enum's
/// unused tag), which is not zero, and one non-zero byte stores a whole `static` in
/// the program's image (`.data`) instead of `.bss`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Maybe<T> {
    /// Nothing: a tag of 0.
    None = 0,
    /// A value.
    Some(T) = 1,
}

impl<T: Copy> Maybe<T> {
    /// As an `Option`.
    pub(crate) const fn get(&self) -> Option<T> {
        match self {
            Maybe::None => None,
            Maybe::Some(v) => Some(*v),
        }
    }

    /// Whether it holds nothing.
    pub(crate) const fn is_none(&self) -> bool {
        matches!(self, Maybe::None)
    }

    /// Takes the value out, leaving nothing.
    pub(crate) fn take(&mut self) -> Option<T> {
        let v = self.get();
        *self = Maybe::None;
        v
    }
}

/// The FNV-1a offset basis: the hash of nothing.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits: folds events into a trace hash. Held as the hash XOR the offset
/// basis, so the empty trace is zero bytes (see [`SimNet::empty`]).
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct TraceHash(u64);

impl fmt::Debug for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TraceHash").field(&self.value()).finish()
    }
}

impl Default for TraceHash {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceHash {
    /// The empty trace.
    pub const fn new() -> Self {
        TraceHash(0)
    }

    /// Folds `bytes` in.
    pub fn add(&mut self, bytes: &[u8]) {
        let mut h = self.0 ^ FNV_OFFSET;
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h ^ FNV_OFFSET;
    }

    /// Folds a number in.
    pub fn add_u64(&mut self, x: u64) {
        self.add(&x.to_le_bytes());
    }

    /// The hash so far.
    pub const fn value(&self) -> u64 {
        self.0 ^ FNV_OFFSET
    }
}
