//! What the server examples share, and nothing the library publishes: the command
//! line ([`args`]), listening on an address given as text ([`listen`]: the rules for
//! `unix:PATH` are there; [`bind`] for datagram sockets), logging that never blocks
//! or panics ([`log`]), and stopping cleanly on SIGINT, SIGTERM or SIGHUP through the
//! signal source.
//!
//! Each example includes it with `mod common;` (cargo does not build `examples/common/`
//! as an example of its own: it has no `main.rs`). Its unit tests run in
//! `tests/examples_common.rs`, which includes this module by path, so `cargo test
//! --workspace` runs them; `cargo test --examples` runs them too.
#![allow(dead_code)] // each example uses its own subset

pub mod args;
pub mod bind;
pub mod listen;
pub mod log;

pub use args::ServerArgs;
pub use listen::{Listening, Removal, listen};

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use log::{log, say};

use std::os::fd::AsRawFd;

use asyncore::{
    Backend, Dispatcher, FD_SETSIZE, Io, Lend, PollError, Reactor, Refusal, RunEnd, Selector,
    SourceError, StdSocket, Token,
};

/// How a server announces where it listens (`listening on ...`): the bound address
/// for TCP (the port chosen when 0 was asked for), `unix:PATH` for a Unix-domain
/// socket, so the text works as `ADDR` again.
pub fn shown_addr(listener: &StdSocket, spec: &str) -> String {
    match listener.local_addr() {
        Ok(asyncore::Addr::Inet(a)) => a.to_string(),
        Ok(asyncore::Addr::Unix(u)) => match u.as_path() {
            Some(p) => format!("unix:{}", p.display()),
            None => spec.to_string(),
        },
        _ => spec.to_string(),
    }
}

/// The signals that stop a server: Ctrl-C, `kill`, and SIGHUP (the terminal went
/// away). SIGHUP stops it too rather than reloading: these servers have no
/// configuration to reload, and dying on it would leave the socket file behind.
pub const STOP_SIGNALS: [nix::libc::c_int; 3] =
    [nix::libc::SIGINT, nix::libc::SIGTERM, nix::libc::SIGHUP];

/// The start every server shares, in this order: the signal source catches
/// [`STOP_SIGNALS`] from now on (a signal that comes before the loop runs waits in
/// it, so nothing created after this point is left behind), then it listens on
/// `spec` ([`listen`]). The server adds the signal source to its map with a
/// dispatcher that calls `ctx.exit()` on a signal (`Echo::Stop`, for instance), and
/// runs [`serve`]. Failures are reported on stderr as `PROGRAM: ...`.
///
/// # Errors
/// The exit code to return (1).
pub fn start(program: &str, spec: &str) -> Result<(Listening, StdSocket), ExitCode> {
    let signals = StdSocket::signals(&STOP_SIGNALS).map_err(|e| {
        say!("{program}: cannot install the signal handlers: {e}");
        ExitCode::FAILURE
    })?;
    let listening = listen(spec, 1024).map_err(|e| {
        say!("{program}: cannot listen on {spec}: {e}");
        ExitCode::FAILURE
    })?;
    Ok((listening, signals))
}

/// The end every server shares, once its channels are closed: reports a failed
/// loop, removes the socket file if it is still the one this server created, and
/// says how many log lines were dropped. The exit code: 0 unless the loop failed.
pub fn finish(
    program: &str,
    served: Result<(), impl std::fmt::Display>,
    file: Option<listen::SocketFile>,
) -> ExitCode {
    say!("stopping: closed every channel");
    let code = match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("{program}: {e}");
            ExitCode::FAILURE
        }
    };
    if let Some(file) = file {
        let path = file.path().to_path_buf();
        match file.remove() {
            Removal::Removed => {}
            Removal::NotOurs => say!(
                "{program}: {} is no longer the socket this server created; left alone",
                path.display()
            ),
            Removal::Failed(e) => say!("{program}: cannot remove {}: {e}", path.display()),
        }
    }
    log::STDOUT.report_dropped(program);
    log::STDERR.report_dropped(program);
    code
}

/// How many connections a server can serve at once on its backend, and why that is
/// fewer than asked for, if it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdBudget {
    /// The connection limit to use: at most what was asked for.
    pub max_conns: usize,
    /// Why the limit is lower than asked for.
    pub lowered: Option<String>,
}

/// Each connection takes an fd, and fds are handed out lowest first. With `select(2)`
/// only fds below [`FD_SETSIZE`] can be watched, so a server on `select` serves
/// about `FD_SETSIZE` minus the fds already open, whatever `--max-conns` says; with
/// `poll(2)` there is no such limit. `epoll(7)` has none either, but its instance
/// takes an fd of its own (made when the listener is added, after this runs), and
/// each watched fd counts against the user's `/proc/sys/fs/epoll/max_user_watches`.
/// All are bounded by `RLIMIT_NOFILE`, whose soft limit this raises (up to the hard
/// limit) when `wanted` connections need more; one fd is kept spare so that a
/// connection over the limit can still be accepted and refused rather than left
/// waiting. Call it once the listener is open, before it is added to a reactor.
///
/// # Errors
/// Not a single connection fits.
pub fn fd_budget(
    backend: Backend,
    listener: &StdSocket,
    wanted: usize,
) -> Result<FdBudget, String> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, rlim_t, setrlimit};
    // dup(2) returns the lowest free fd: the first a connection would get.
    let first_free = listener
        .fd()
        .and_then(|fd| nix::unistd::dup(fd).ok())
        .map_or(listener.as_raw_fd() + 1, |dup| dup.as_raw_fd());
    let first_free = usize::try_from(first_free).unwrap_or(0);
    // fds in use: those below `first_free`, and any above it (inherited from the
    // parent, for instance), which count against RLIMIT_NOFILE as well.
    let in_use = open_fds().map_or(first_free, |n| n.max(first_free));
    // fds the backend itself takes once the listener is added: the epoll instance.
    let own = usize::from(backend == Backend::Epoll);
    let (mut soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    // `rlim_t` is 32 bits on 32-bit glibc, 64 elsewhere: never narrower than `usize`
    // on Linux, but say what happens if it were (asking for "unlimited" is then
    // capped at the hard limit below).
    let needed = rlim_t::try_from(
        in_use
            .saturating_add(own)
            .saturating_add(wanted)
            .saturating_add(1),
    )
    .unwrap_or(RLIM_INFINITY);
    if soft < needed {
        let raised = needed.min(hard);
        if raised > soft && setrlimit(Resource::RLIMIT_NOFILE, raised, hard).is_ok() {
            soft = raised;
        }
    }
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    let (by_rlimit, by_backend) =
        limits(backend, first_free, in_use, soft, epoll_max_user_watches());
    let servable = by_rlimit.min(by_backend);
    if servable == 0 {
        return Err(format!(
            "no fd left for a single connection (RLIMIT_NOFILE is {soft}, fds up to {first_free} in use)"
        ));
    }
    if wanted <= servable {
        return Ok(FdBudget {
            max_conns: wanted,
            lowered: None,
        });
    }
    let why = if by_backend <= by_rlimit && backend == Backend::Epoll {
        format!(
            "epoll(7) watches at most /proc/sys/fs/epoll/max_user_watches ({}) fds per user",
            by_backend.saturating_add(1)
        )
    } else if by_backend <= by_rlimit {
        format!(
            "select(2) watches fds below FD_SETSIZE ({FD_SETSIZE}) only; --backend poll or epoll has no such limit"
        )
    } else {
        format!("the fd limit RLIMIT_NOFILE is {soft}")
    };
    Ok(FdBudget {
        max_conns: servable,
        lowered: Some(format!("lowered from {wanted}: {why}")),
    })
}

/// How many connections fit, by the fd limit `soft` and by what `backend` can watch,
/// when the next fd handed out is `first_free`, `in_use` fds are open and the user
/// may have `watches` epoll watches: one fd is kept spare, epoll's instance takes one
/// more fd, and the listener is one of the watches.
fn limits(
    backend: Backend,
    first_free: usize,
    in_use: usize,
    soft: usize,
    watches: Option<usize>,
) -> (usize, usize) {
    let own = usize::from(backend == Backend::Epoll);
    let by_rlimit = soft.saturating_sub(in_use + own + 1);
    let by_backend = match backend {
        Backend::Select => FD_SETSIZE.saturating_sub(first_free),
        Backend::Poll => usize::MAX,
        Backend::Epoll => watches.map_or(usize::MAX, |w| w.saturating_sub(1)),
    };
    (by_rlimit, by_backend)
}

/// How many fds this process has open (`/proc/self/fd`, less the one reading it);
/// `None` where that cannot be read.
fn open_fds() -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.count().saturating_sub(1))
}

/// `/proc/sys/fs/epoll/max_user_watches`: how many fds one user's epoll instances may
/// watch in all (`None` if it cannot be read).
fn epoll_max_user_watches() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/fs/epoll/max_user_watches")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The `accepted` hook of both servers (unless `--quiet`).
pub fn log_accepted(token: Token, socket: &StdSocket) {
    match socket.peer_addr() {
        Ok(peer) => log!("connection {token} from {peer}"),
        Err(_) => log!("connection {token}"),
    }
}

/// The `refused` hook of both servers (unless `--quiet`): one line saying why a
/// connection was closed at once.
pub fn log_refused(socket: &StdSocket, why: Refusal) {
    match why {
        Refusal::Rejected(SourceError::OutOfRange { limit }) => log!(
            "connection refused: its fd {} is beyond what the selector can watch (below {limit}); \
             --backend poll or epoll has no such limit",
            socket.as_raw_fd()
        ),
        why => log!("connection refused: {why}"),
    }
}

/// Runs the loop, with no timeout and no tick, until a handler calls `ctx.exit()`
/// (the signal source's dispatcher, on a stop signal: the signal's byte in the
/// self-pipe ends the wait at once) or the map empties. The channels are left as
/// they are (see [`serve`]).
///
/// # Errors
/// A pass failed.
pub fn run_until_stopped<I: Io, D, const N: usize, const T: usize, P: Lend>(
    reactor: &mut Reactor<I, D, N, T, P>,
) -> Result<(), PollError<<I::Selector as Selector>::Error>>
where
    D: Dispatcher<I::Socket>,
{
    loop {
        match reactor.run(None, None)? {
            RunEnd::Exit | RunEnd::Empty => return Ok(()),
            // Timers are the server's own business; keep serving.
            RunEnd::Timer(_) | RunEnd::Count => {}
        }
    }
}

/// [`run_until_stopped`], then closes every channel (the signal source too, which
/// puts the default dispositions back).
///
/// # Errors
/// A pass failed; every channel is closed before returning.
pub fn serve<I: Io, D, const N: usize, const T: usize, P: Lend>(
    reactor: &mut Reactor<I, D, N, T, P>,
) -> Result<(), PollError<<I::Selector as Selector>::Error>>
where
    D: Dispatcher<I::Socket>,
{
    let result = run_until_stopped(reactor);
    let _ = reactor.close_all();
    result
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// For a server whose map cannot hold the signal source (`udp_echo`, whose one
/// channel is 128 KiB: a second slot would double it): makes [`STOP_SIGNALS`] set a
/// flag instead, for [`serve_ticking`], and returns the flag. The handler only stores
/// to an atomic. Install it before creating anything to clean up.
///
/// # Errors
/// `sigaction` failed.
pub fn stop_on_signals() -> Result<&'static AtomicBool, nix::errno::Errno> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler is async-signal-safe: it only stores to a static atomic.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(&STOP)
}

/// With [`stop_on_signals`]: runs passes of at most `tick` each until `stop` is set,
/// then closes every channel. The tick bounds how long a stop request waits to be
/// seen.
///
/// # Errors
/// A pass failed; every channel is closed before returning.
pub fn serve_ticking<I: Io, D, const N: usize, const T: usize, P: Lend>(
    reactor: &mut Reactor<I, D, N, T, P>,
    stop: &AtomicBool,
    tick: Duration,
) -> Result<(), PollError<<I::Selector as Selector>::Error>>
where
    D: Dispatcher<I::Socket>,
{
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if let Err(e) = reactor.poll_once(Some(tick)) {
            break Err(e);
        }
    };
    let _ = reactor.close_all();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_serves_fds_below_fd_setsize_only() {
        let l = listen("127.0.0.1:0", 8).unwrap().socket;
        let b = fd_budget(Backend::Select, &l, 5000).unwrap();
        assert!(b.max_conns < FD_SETSIZE, "{b:?}");
        assert!(
            b.lowered.as_deref().unwrap().contains("FD_SETSIZE (1024)"),
            "{b:?}"
        );
        let few = fd_budget(Backend::Select, &l, 5).unwrap();
        assert_eq!(
            few,
            FdBudget {
                max_conns: 5,
                lowered: None
            }
        );
    }

    #[test]
    fn poll_and_epoll_are_bounded_by_the_fd_limit_only() {
        use nix::sys::resource::{Resource, getrlimit};
        let l = listen("127.0.0.1:0", 8).unwrap().socket;
        for backend in [Backend::Poll, Backend::Epoll] {
            let b = fd_budget(backend, &l, 1500).unwrap();
            let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
            match b.lowered {
                None => {
                    assert_eq!(b.max_conns, 1500);
                    assert!(soft > 1500, "the soft limit was raised as needed: {soft}");
                }
                Some(why) => {
                    assert!(b.max_conns < 1500);
                    assert!(why.contains("RLIMIT_NOFILE"), "{why}");
                }
            }
        }
    }

    #[test]
    fn each_backend_limits_what_it_can() {
        // fds 0 to 9 taken, a soft limit of 2,000, 100,000 epoll watches.
        let at = |backend, watches| limits(backend, 10, 10, 2000, watches);
        assert_eq!(at(Backend::Select, None), (1989, FD_SETSIZE - 10));
        assert_eq!(at(Backend::Poll, Some(5)), (1989, usize::MAX));
        // epoll's own fd costs one connection; the listener is one of the watches.
        assert_eq!(at(Backend::Epoll, Some(100_000)), (1988, 99_999));
        assert_eq!(at(Backend::Epoll, Some(500)), (1988, 499));
        assert_eq!(at(Backend::Epoll, None), (1988, usize::MAX));
        // Nothing left: zero, never an underflow.
        assert_eq!(limits(Backend::Epoll, 10, 10, 5, Some(0)), (0, 0));
        // Two fds open above the lowest free one (inherited): two connections fewer
        // by the fd limit; select still counts from the lowest free fd.
        assert_eq!(
            limits(Backend::Select, 10, 12, 2000, None),
            (1987, FD_SETSIZE - 10)
        );
    }
}
