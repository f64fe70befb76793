//! What the server examples share, and nothing the library publishes: the command
//! line ([`args`]), listening on an address given as text ([`listen`]: the rules for
//! `unix:PATH` are there), logging that never blocks or panics ([`log`]), and
//! stopping cleanly on SIGINT, SIGTERM or SIGHUP.
//!
//! Each example includes it with `mod common;` (cargo does not build `examples/common/`
//! as an example of its own: it has no `main.rs`). Its unit tests run in
//! `tests/examples_common.rs`, which includes this module by path, so `cargo test
//! --workspace` runs them; `cargo test --examples` runs them too.
#![allow(dead_code)] // each example uses its own subset

pub mod args;
pub mod listen;
pub mod log;

pub use args::ServerArgs;
pub use listen::{Listening, Removal, listen};

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use log::say;

use asyncore::{Dispatcher, PollError, Reactor, Selector, Socket, StdSocket};

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

/// The start every server shares, in this order: SIGINT, SIGTERM and SIGHUP stop it
/// from now on ([`stop_on_signals`]), then it listens on `spec` ([`listen`]).
/// Failures are reported on stderr as `PROGRAM: ...`.
///
/// # Errors
/// The exit code to return (1).
pub fn start(program: &str, spec: &str) -> Result<(Listening, &'static AtomicBool), ExitCode> {
    let stop = stop_on_signals().map_err(|e| {
        say!("{program}: cannot install the signal handlers: {e}");
        ExitCode::FAILURE
    })?;
    let listening = listen(spec, 1024).map_err(|e| {
        say!("{program}: cannot listen on {spec}: {e}");
        ExitCode::FAILURE
    })?;
    Ok((listening, stop))
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

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Makes SIGINT (Ctrl-C), SIGTERM and SIGHUP set a flag instead of killing the
/// process, and returns the flag: the server then stops as for Ctrl-C, closing every
/// connection and removing its socket file. SIGHUP (the terminal went away) stops it
/// too: these servers have no configuration to reload, and dying on it would leave
/// the socket file behind. The handler only stores to an atomic. Install it before
/// creating anything to clean up.
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
