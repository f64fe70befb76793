//! A daemon skeleton: a TCP echo listener, the signal source, and a child process.
use asyncore::{AnySelector, Backend, Child, Ctx, Dispatcher, Error, Recv, SourceEvent};
use asyncore::{StdReactor, StdSocket};
use nix::libc::{SIGHUP, SIGINT, SIGTERM};
use std::process::Command;

enum Daemon {
    Listener,
    Client,
    Signals(Option<Child>), // the signal source, and the child it reports on
}
type C<'a, 'b> = &'a mut Ctx<'b, StdSocket, Daemon>;
impl Dispatcher<StdSocket> for Daemon {
    type Error = Error;
    fn handle_accepted(&mut self, ctx: C<'_, '_>, s: StdSocket) -> Result<(), Error> {
        let _ = ctx.add(s, Daemon::Client); // a full map hands it back: dropped, closed
        Ok(())
    }
    fn handle_read(&mut self, ctx: C<'_, '_>) -> Result<(), Error> {
        let mut buf = [0u8; 4096];
        if let Recv::Data(n) = ctx.recv(&mut buf)? {
            ctx.send(&buf[..n])?; // an echo (a real one keeps what did not fit)
        }
        Ok(())
    }
    fn handle_event(&mut self, ctx: C<'_, '_>, event: SourceEvent) -> Result<(), Error> {
        match (self, event) {
            // SIGHUP runs `uptime`, one at a time (its stdio could be pipe channels).
            (Daemon::Signals(child @ None), SourceEvent::Signal(SIGHUP)) => {
                match Child::spawn(&mut Command::new("uptime")) {
                    Ok(spawned) => *child = Some(spawned.child), // killed if dropped
                    Err(e) => eprintln!("uptime: {e}"),
                }
            }
            (Daemon::Signals(child), SourceEvent::Exit { pid, status }) => {
                eprintln!("child {pid}: {status}"); // reaped already: no zombie
                *child = None;
            }
            (_, SourceEvent::Signal(SIGINT | SIGTERM)) => ctx.exit(),
            _ => {}
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Signals first: one that comes before the loop runs waits in the source.
    let sig = StdSocket::signals(&[SIGINT, SIGTERM, SIGHUP])?;
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7070".into());
    let listener = StdSocket::tcp_listener(addr.parse()?, 128)?;
    println!("listening on {}", listener.local_addr()?);
    let mut reactor: StdReactor<Daemon, 64> = StdReactor::new(AnySelector::new(Backend::Poll));
    for (socket, d) in [(listener, Daemon::Listener), (sig, Daemon::Signals(None))] {
        reactor.add(socket, d).map_err(|e| e.kind)?;
    }
    reactor.run(None, None)?; // until SIGINT or SIGTERM: no timeout, no tick
    reactor.close_all()?; // a child still running is killed and reaped here
    Ok(())
}
