//! Helpers shared by the root package's real-socket integration tests: the test
//! matrix (backend × address family), per-test temp dirs, the fd-number lock, the
//! original harness's `loop_waiting_for_flag`, and std peers.
#![allow(dead_code, unused_macros)] // each test binary uses its own subset

pub mod peers;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use asyncore::asyncore_std::Family;
use asyncore::{Addr, AnySelector, Backend, Dispatcher, Lend, Reactor, StdReactor, StdSocket};

/// Every backend, in the order the matrix runs them.
pub const BACKENDS: [Backend; 3] = [Backend::Select, Backend::Poll, Backend::Epoll];

/// The timeout of one pass in the loops below: the original's `loop(timeout=0.01)`.
pub const PASS: Option<Duration> = Some(Duration::from_millis(10));

/// How many passes a loop may take before the test fails. A healthy run needs a
/// handful; the bound only turns a bug into a failure instead of a hang.
pub const MAX_PASSES: usize = 2_000;

/// A wall-clock bound on any one wait of a test: never a performance assertion, only
/// a way to turn an infinite hang into a failure with a message.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Address families, as the original's test classes run them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fam {
    /// `AF_INET` on 127.0.0.1.
    V4,
    /// `AF_INET6` on ::1.
    V6,
    /// `AF_UNIX` at a path in the test's temp dir.
    Unix,
}

impl Fam {
    /// The family named `ipv4`, `ipv6` or `unix` (the matrix's test names).
    pub fn named(name: &str) -> Fam {
        match name {
            "ipv4" => Fam::V4,
            "ipv6" => Fam::V6,
            "unix" => Fam::Unix,
            other => panic!("unknown family {other}"),
        }
    }

    pub fn family(self) -> Family {
        match self {
            Fam::V4 => Family::Inet,
            Fam::V6 => Family::Inet6,
            Fam::Unix => Family::Unix,
        }
    }

    /// Whether this host can use the family (IPv6 may be disabled). Prints a note
    /// when it cannot.
    pub fn available(self) -> bool {
        static V6: OnceLock<bool> = OnceLock::new();
        if self != Fam::V6 {
            return true;
        }
        let ok = *V6.get_or_init(|| std::net::TcpListener::bind("[::1]:0").is_ok());
        if !ok {
            eprintln!("note: IPv6 loopback is not available here; the IPv6 variant is skipped");
        }
        ok
    }
}

/// The fd-number lock. Tests that close an fd behind its owner's back take it
/// exclusively: no other test may open an fd between that close and the owner's own
/// close, or the owner would close someone else's fd. Every other test holds it
/// shared (the matrix takes it for them).
static FDS: RwLock<()> = RwLock::new(());

pub fn shared_fds() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|e| e.into_inner())
}

pub fn exclusive_fds() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|e| e.into_inner())
}

/// A directory of its own for one test (`$TMP/asyncore-<pid>-<name>`), removed when
/// dropped.
#[derive(Debug)]
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!("asyncore-{}-{}", std::process::id(), name));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test's temp dir");
        TestDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A fresh path in the directory (for a Unix socket or a file).
    pub fn file(&self, stem: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        self.0
            .join(format!("{stem}{}", N.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A hold on the fd-number lock.
pub enum FdGuard {
    Shared(RwLockReadGuard<'static, ()>),
    Exclusive(RwLockWriteGuard<'static, ()>),
}

/// One cell of the matrix: a backend, a family, a temp dir, and a hold on the fd
/// lock (shared unless the scenario closes fds behind their owners' backs).
pub struct Case {
    pub name: String,
    pub backend: Backend,
    pub fam: Fam,
    pub dir: TestDir,
    _fds: FdGuard,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Case {
    pub fn new(scenario: &str, backend: Backend, fam: Fam) -> Case {
        Case::with_guard(scenario, backend, fam, FdGuard::Shared(shared_fds()))
    }

    /// A case that holds the fd lock exclusively.
    pub fn exclusive(scenario: &str, backend: Backend, fam: Fam) -> Case {
        Case::with_guard(scenario, backend, fam, FdGuard::Exclusive(exclusive_fds()))
    }

    fn with_guard(scenario: &str, backend: Backend, fam: Fam, fds: FdGuard) -> Case {
        let name = format!("{scenario}-{backend}-{fam:?}");
        Case {
            dir: TestDir::new(&name),
            name,
            backend,
            fam,
            _fds: fds,
        }
    }

    /// An empty reactor on this case's backend.
    pub fn reactor<D: Dispatcher<StdSocket>, const N: usize>(&self) -> StdReactor<D, N> {
        Reactor::new(AnySelector::new(self.backend))
    }

    /// Where a server of this family can listen: port 0 on loopback, or a fresh path
    /// in the temp dir.
    pub fn bind_addr(&self) -> Addr {
        match self.fam {
            Fam::V4 => Addr::Inet("127.0.0.1:0".parse().unwrap()),
            Fam::V6 => Addr::Inet("[::1]:0".parse().unwrap()),
            Fam::Unix => Addr::unix(self.dir.file("sock")).expect("a short enough path"),
        }
    }

    /// A fresh stream socket of this family (the original's `create_socket`).
    pub fn socket(&self) -> StdSocket {
        StdSocket::new(self.fam.family()).expect("socket(2)")
    }

    /// The original's `BaseServer` socket: created, `set_reuse_addr` if asked,
    /// bound, listening with a backlog of `backlog`. Returns it and its address.
    pub fn listener(&self, reuse: bool, backlog: u32) -> (StdSocket, Addr) {
        let mut s = self.socket();
        if reuse {
            s.set_reuse_addr().expect("SO_REUSEADDR");
        }
        s.bind(&self.bind_addr()).expect("bind");
        s.listen(backlog).expect("listen");
        let addr = s.local_addr().expect("getsockname");
        (s, addr)
    }

    /// The original's `BaseClient` socket: created and connecting (non-blocking).
    pub fn connect(&self, addr: &Addr) -> StdSocket {
        let mut s = self.socket();
        s.connect(addr).expect("connect");
        s
    }
}

/// Generates the matrix for one scenario: `mod $scenario { mod select { fn ipv4 ...
/// } mod poll { ... } mod epoll { ... } }`, each test calling `$scenario(&Case)`
/// (skipped with a note when the family is unavailable).
macro_rules! matrix {
    ($scenario:ident: $($fam:ident),+ $(,)?) => {
        mod $scenario {
            mod select {
                $(
                    #[test]
                    fn $fam() {
                        $crate::common::run_case(
                            stringify!($scenario),
                            asyncore::Backend::Select,
                            stringify!($fam),
                            super::super::$scenario,
                        );
                    }
                )+
            }
            mod poll {
                $(
                    #[test]
                    fn $fam() {
                        $crate::common::run_case(
                            stringify!($scenario),
                            asyncore::Backend::Poll,
                            stringify!($fam),
                            super::super::$scenario,
                        );
                    }
                )+
            }
            mod epoll {
                $(
                    #[test]
                    fn $fam() {
                        $crate::common::run_case(
                            stringify!($scenario),
                            asyncore::Backend::Epoll,
                            stringify!($fam),
                            super::super::$scenario,
                        );
                    }
                )+
            }
        }
    };
}

/// Generates `mod $scenario { #[test] fn select; #[test] fn poll; #[test] fn epoll }`
/// for a scenario with no address family (file channels, or one family only), each
/// calling `$scenario(&Case)`. With `exclusive`, the case holds the fd lock exclusively.
macro_rules! backends {
    ($scenario:ident $(, $exclusive:ident)?) => {
        mod $scenario {
            #[test]
            fn select() {
                $crate::common::run_backend_case(
                    stringify!($scenario),
                    asyncore::Backend::Select,
                    stringify!($($exclusive)?) == "exclusive",
                    super::$scenario,
                );
            }
            #[test]
            fn poll() {
                $crate::common::run_backend_case(
                    stringify!($scenario),
                    asyncore::Backend::Poll,
                    stringify!($($exclusive)?) == "exclusive",
                    super::$scenario,
                );
            }
            #[test]
            fn epoll() {
                $crate::common::run_backend_case(
                    stringify!($scenario),
                    asyncore::Backend::Epoll,
                    stringify!($($exclusive)?) == "exclusive",
                    super::$scenario,
                );
            }
        }
    };
}

pub fn run_case(scenario: &str, backend: Backend, fam: &str, f: fn(&Case)) {
    let fam = Fam::named(fam);
    if !fam.available() {
        return;
    }
    f(&Case::new(scenario, backend, fam));
}

/// A case for [`backends!`]: the family is IPv4 where one is needed.
pub fn run_backend_case(scenario: &str, backend: Backend, exclusive: bool, f: fn(&Case)) {
    let case = if exclusive {
        Case::exclusive(scenario, backend, Fam::V4)
    } else {
        Case::new(scenario, backend, Fam::V4)
    };
    f(&case);
}

/// The original's `loop_waiting_for_flag`: passes of at most 10 ms until `flag()`
/// holds. Fails if the map empties first, or after [`MAX_PASSES`] passes, or (only
/// against a hang) after [`PATIENCE`].
pub fn loop_waiting_for_flag<D: Dispatcher<StdSocket>, const N: usize, P: Lend>(
    reactor: &mut StdReactor<D, N, P>,
    mut flag: impl FnMut() -> bool,
) {
    let start = Instant::now();
    for _ in 0..MAX_PASSES {
        assert!(
            !reactor.is_empty(),
            "the map emptied before the flag was set"
        );
        reactor.poll_once(PASS).expect("poll_once");
        if flag() {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "flag not set after {PATIENCE:?}"
        );
    }
    panic!("flag not set after {MAX_PASSES} passes");
}

/// Runs passes until `done(reactor)` holds (checked before each pass). Fails after
/// [`MAX_PASSES`] passes, or (only against a hang) after [`PATIENCE`].
pub fn run_until<D: Dispatcher<StdSocket>, const N: usize, P: Lend>(
    reactor: &mut StdReactor<D, N, P>,
    what: &str,
    done: impl FnMut(&mut StdReactor<D, N, P>) -> bool,
) {
    run_until_within(reactor, what, MAX_PASSES, done);
}

/// [`run_until`] for a scenario whose work takes more than [`MAX_PASSES`] passes when
/// each pass finds little ready (a fast selector under many client threads): fails
/// after `max_passes` passes, or after [`PATIENCE`].
pub fn run_until_within<D: Dispatcher<StdSocket>, const N: usize, P: Lend>(
    reactor: &mut StdReactor<D, N, P>,
    what: &str,
    max_passes: usize,
    mut done: impl FnMut(&mut StdReactor<D, N, P>) -> bool,
) {
    let start = Instant::now();
    for _ in 0..max_passes {
        if done(reactor) {
            return;
        }
        reactor.poll_once(PASS).expect("poll_once");
        assert!(start.elapsed() < PATIENCE, "{what}: not after {PATIENCE:?}");
    }
    assert!(done(reactor), "{what}: not after {max_passes} passes");
}

/// A std peer (not our code): a TCP or Unix-domain stream.
#[derive(Debug)]
pub enum Peer {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Peer {
    /// A blocking connection to `addr`.
    pub fn connect(addr: &Addr) -> io::Result<Peer> {
        match addr {
            Addr::Inet(sa) => TcpStream::connect(sa).map(Peer::Tcp),
            Addr::Unix(u) => UnixStream::connect(u.as_path().expect("a path")).map(Peer::Unix),
            Addr::Unnamed => Err(io::Error::other("cannot connect to an unnamed address")),
        }
    }

    pub fn set_nonblocking(&self, yes: bool) -> io::Result<()> {
        match self {
            Peer::Tcp(s) => s.set_nonblocking(yes),
            Peer::Unix(s) => s.set_nonblocking(yes),
        }
    }

    /// Read and write timeouts, so a broken server fails a blocking peer instead of
    /// hanging it.
    pub fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        match self {
            Peer::Tcp(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
            Peer::Unix(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
        }
    }

    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Peer::Tcp(s) => s.shutdown(Shutdown::Write),
            Peer::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// The local address, for TCP peers.
    pub fn local_inet(&self) -> Option<SocketAddr> {
        match self {
            Peer::Tcp(s) => s.local_addr().ok(),
            Peer::Unix(_) => None,
        }
    }
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Peer::Tcp(s) => s.read(buf),
            Peer::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Peer::Tcp(s) => s.write(buf),
            Peer::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `len` bytes that differ per `seed`, so a misrouted or reordered echo shows.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
