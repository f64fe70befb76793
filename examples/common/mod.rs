//! What the server examples share, and nothing the library publishes: the command
//! line, listening on an address given as text, and stopping cleanly on Ctrl-C.
//!
//! Each example includes it with `mod common;` (cargo does not build `examples/common/`
//! as an example of its own: it has no `main.rs`). Its unit tests run in
//! `tests/examples_common.rs`, which includes this module by path, so `cargo test
//! --workspace` runs them; `cargo test --examples` runs them too.
#![allow(dead_code)] // each example uses its own subset

pub mod args;
pub mod log;

pub use args::ServerArgs;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use asyncore::{Dispatcher, PollError, Reactor, Selector, Socket, SocketError, StdSocket};

/// Why [`listen`] failed.
#[derive(Debug)]
pub enum ListenError {
    /// The address is not `HOST:PORT`, `[V6]:PORT` or `unix:PATH`.
    BadAddress(String),
    /// The socket could not be set up.
    Socket(SocketError),
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenError::BadAddress(_) => {
                f.write_str("not an address: expected HOST:PORT, [V6]:PORT or unix:PATH")
            }
            ListenError::Socket(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ListenError {}

/// A listening socket for `spec`: `HOST:PORT` or `[V6]:PORT` (port 0 picks a free
/// port; reuse-addr is on), or `unix:PATH` (a stale socket file at `PATH` is removed
/// first).
///
/// # Errors
/// A malformed address, or what the OS reported.
pub fn listen(spec: &str, backlog: u32) -> Result<StdSocket, ListenError> {
    if let Some(path) = spec.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(ListenError::BadAddress(spec.to_string()));
        }
        let _ = std::fs::remove_file(path);
        return StdSocket::unix_listener(path, backlog).map_err(ListenError::Socket);
    }
    let addr: std::net::SocketAddr = spec
        .parse()
        .map_err(|_| ListenError::BadAddress(spec.to_string()))?;
    StdSocket::tcp_listener(addr, backlog).map_err(ListenError::Socket)
}

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

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Makes SIGINT (Ctrl-C) and SIGTERM set a flag instead of killing the process, and
/// returns the flag. The handler only stores to an atomic.
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
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler is async-signal-safe: it only stores to a static atomic.
        unsafe { sigaction(signal, &action) }?;
    }
    Ok(&STOP)
}

/// Runs passes of at most `tick` each until `stop` is set, then closes every channel.
/// The tick bounds how long a stop request waits to be seen (signals do not cut a
/// wait short: selectors retry `EINTR`).
///
/// # Errors
/// A pass failed; every channel is closed before returning.
pub fn serve<Sel, S, D, const N: usize, const T: usize>(
    reactor: &mut Reactor<Sel, S, D, N, T>,
    stop: &AtomicBool,
    tick: Duration,
) -> Result<(), PollError<Sel::Error>>
where
    Sel: Selector,
    S: Socket<Source = Sel::Source>,
    D: Dispatcher<S>,
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
    fn listen_parses_every_form() {
        let v4 = listen("127.0.0.1:0", 8).unwrap();
        assert!(v4.local_addr().unwrap().as_inet().unwrap().port() != 0);
        assert!(matches!(
            listen("nonsense", 8),
            Err(ListenError::BadAddress(_))
        ));
        assert!(matches!(
            listen("unix:", 8),
            Err(ListenError::BadAddress(_))
        ));
        let path = std::env::temp_dir().join(format!("asyncore-listen-{}", std::process::id()));
        let spec = format!("unix:{}", path.display());
        let first = listen(&spec, 8).unwrap();
        drop(first);
        // A stale socket file is removed, so listening again works.
        let again = listen(&spec, 8).unwrap();
        drop(again);
        let _ = std::fs::remove_file(path);
    }
}
