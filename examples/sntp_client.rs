//! An SNTP client (RFC 4330): one request to a time server, and the server's time,
//! the offset of our clock from it, and the round-trip delay.
//!
//! ```text
//! cargo run --example sntp_client -- HOST[:PORT] [--timeout SECS] [--retries N] [--backend select|poll|epoll]
//! ```
//!
//! `HOST` is an IP address (`[V6]:PORT` with a port) or a name (resolved once, before
//! the loop starts); the port is 123 unless given. The request goes on a connected
//! UDP socket, so only the server's datagrams are read, and a closed port answers
//! at once (`ECONNREFUSED`: "no NTP server there"). A request not answered within
//! `--timeout` (default 1 s) is sent again, with a new timestamp and the timeout
//! doubled, up to `--retries` times (default 3); a reply to an earlier request, or
//! any datagram that is not an answer to the current one, is ignored. A
//! kiss-o'-death or an unsynchronized server ends it.
//!
//! Exit status: 0 with the time printed; 1 when no usable answer came (the reason on
//! stderr); 2 for a bad command line.

#[path = "sntp_client/protocol.rs"]
mod protocol;

use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use asyncore::{
    AnySelector, Backend, Ctx, Dispatcher, Error, ErrorKind, Sent, SocketError, StdReactor,
    StdSocket,
};
use protocol::{Refusal, Timestamp};

const USAGE: &str =
    "usage: sntp_client HOST[:PORT] [--timeout SECS] [--retries N] [--backend select|poll|epoll]

  HOST        a time server: an IP address ([IPV6]:PORT with a port) or a name
  --timeout   seconds to wait for an answer before asking again (0.001 to 60,
              default 1); it doubles with each retry
  --retries   how many times to ask again (0 to 10, default 3)
  --backend   select (default), poll or epoll

Prints the server's time, the offset of this machine's clock from it and the round
trip. Exit status 0 on an answer, 1 without one (the reason on stderr), 2 for a bad
command line.";

/// How the exchange ended.
#[derive(Debug)]
enum Outcome {
    /// An answer: the reply and the four timestamps.
    Answer {
        reply: protocol::Reply,
        sent: Timestamp,
        received: Timestamp,
    },
    /// The server said something final (kiss-o'-death, unsynchronized).
    Refused(Refusal),
    /// `ECONNREFUSED`: nothing listens at the server's port.
    PortClosed,
    /// No usable answer to any of the tries.
    NoAnswer { tries: u32 },
    /// The socket failed.
    Failed(SocketError),
}

/// The one channel: a connected UDP socket.
struct Sntp {
    /// Our current request's transmit timestamp (`None`: not sent yet).
    sent: Option<Timestamp>,
    /// The request is to be sent (on the next write readiness).
    due: bool,
    tries: u32,
    retries: u32,
    timeout: Duration,
    /// Datagrams ignored, and why the last one was.
    ignored: u32,
    last_ignored: Option<Refusal>,
    outcome: Option<Outcome>,
}

impl Sntp {
    fn end(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>, outcome: Outcome) {
        self.outcome = Some(outcome);
        ctx.close();
    }
}

impl Dispatcher<StdSocket> for Sntp {
    type Error = Error;

    fn writable(&self) -> bool {
        self.due
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let t1 = Timestamp::now();
        match ctx.send_datagram(&protocol::request(t1)) {
            Ok(Sent::Bytes(_)) => {
                self.sent = Some(t1);
                self.due = false;
                self.tries += 1;
                ctx.set_timeout(self.timeout)
                    .map_err(|_| Error::Protocol("no clock"))?;
            }
            // The socket cannot take it now: write readiness comes back.
            Ok(Sent::WouldBlock) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                self.end(ctx, Outcome::PortClosed)
            }
            Err(e) => self.end(ctx, Outcome::Failed(e)),
        }
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 512];
        loop {
            let got = match ctx.recv_from(&mut buf) {
                Ok(Some(d)) => d,
                Ok(None) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    self.end(ctx, Outcome::PortClosed);
                    return Ok(());
                }
                Err(e) => {
                    self.end(ctx, Outcome::Failed(e));
                    return Ok(());
                }
            };
            let received = Timestamp::now();
            let Some(sent) = self.sent else {
                continue;
            };
            match protocol::parse(got.data(&buf), sent) {
                Ok(reply) => {
                    self.end(
                        ctx,
                        Outcome::Answer {
                            reply,
                            sent,
                            received,
                        },
                    );
                    return Ok(());
                }
                Err(r) if r.is_final() => {
                    self.end(ctx, Outcome::Refused(r));
                    return Ok(());
                }
                Err(r) => {
                    self.ignored += 1;
                    self.last_ignored = Some(r);
                }
            }
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        if self.tries > self.retries {
            let tries = self.tries;
            self.end(ctx, Outcome::NoAnswer { tries });
        } else {
            // Lost (or slow): ask again, waiting twice as long.
            self.timeout = (self.timeout * 2).min(Duration::from_secs(60));
            self.due = true;
        }
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>, error: Error) {
        let e = match error {
            Error::Socket(e) => e,
            _ => SocketError::new(ErrorKind::Other, 0),
        };
        self.end(ctx, Outcome::Failed(e));
    }
}

struct Args {
    host: String,
    timeout: Duration,
    retries: u32,
    backend: Backend,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut host = None;
    let mut timeout = Duration::from_secs(1);
    let mut retries = 3;
    let mut backend = Backend::Select;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--timeout" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--timeout {v}: not a number"))?;
                if !(0.001..=60.0).contains(&secs) {
                    return Err(format!("--timeout {v}: must be from 0.001 to 60 seconds"));
                }
                timeout = Duration::from_secs_f64(secs);
            }
            "--retries" => {
                let v = value()?;
                retries = match v.parse::<u32>() {
                    Ok(n) if n <= 10 => n,
                    _ => {
                        return Err(format!(
                            "--retries {v}: must be a whole number from 0 to 10"
                        ));
                    }
                };
            }
            "--backend" => {
                let v = value()?;
                backend = v.parse().map_err(|e| format!("--backend {v}: {e}"))?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s if host.is_none() => host = Some(s.to_string()),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let host = host.ok_or("a server is needed: HOST[:PORT]")?;
    Ok(Some(Args {
        host,
        timeout,
        retries,
        backend,
    }))
}

/// `HOST[:PORT]`, `[V6]:PORT`, or a bare IPv6 address: the server's address (a
/// name is resolved here, before the loop).
fn resolve(host: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = host.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, protocol::PORT));
    }
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else {
        format!("{host}:{}", protocol::PORT)
    };
    match with_port.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{host}: the name has no address")),
        Err(e) => Err(format!("cannot resolve {host}: {e}")),
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "sntp_client: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fail = |why: String| {
        let _ = writeln!(std::io::stderr(), "sntp_client: {why}");
        ExitCode::FAILURE
    };
    let server = match resolve(&args.host) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let socket = match StdSocket::udp_connect(server) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot reach {server}: {e}")),
    };
    let mut reactor: StdReactor<Sntp, 1> = StdReactor::new(AnySelector::new(args.backend));
    let sntp = Sntp {
        sent: None,
        due: true,
        tries: 0,
        retries: args.retries,
        timeout: args.timeout,
        ignored: 0,
        last_ignored: None,
        outcome: None,
    };
    let token = match reactor.add(socket, sntp) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot watch the socket: {e}")),
    };
    reactor.keep_when_closed(token);
    if let Err(e) = reactor.run(None, None) {
        return fail(format!("the loop failed: {e}"));
    }
    let Some(done) = reactor.take_closed(token) else {
        return fail("the exchange did not end".into());
    };
    let ignored = match (&done.last_ignored, done.ignored) {
        (Some(why), n) if n > 0 => format!(" ({n} datagrams ignored; the last was {why})"),
        _ => String::new(),
    };
    match done.outcome {
        Some(Outcome::Answer {
            reply,
            sent,
            received,
        }) => {
            let (offset, delay) =
                protocol::offset_and_delay(sent, reply.receive, reply.transmit, received);
            let (secs, nanos) = reply.transmit.to_unix(SystemTime::now());
            let reference = match reply.stratum {
                1 => format!(
                    " {:?}",
                    String::from_utf8_lossy(&reply.reference_id).trim_end_matches('\0')
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                std::io::stdout(),
                "server  {server} (stratum {}{reference}, NTP version {})\n\
                 time    {}\noffset  {offset:+.6} s\ndelay   {delay:.6} s",
                reply.stratum,
                reply.version,
                protocol::format_utc(secs, nanos),
            );
            ExitCode::SUCCESS
        }
        Some(Outcome::Refused(r)) => fail(format!("{server}: {r}")),
        Some(Outcome::PortClosed) => fail(format!(
            "{server} refused the request (ICMP port unreachable): no NTP server there"
        )),
        Some(Outcome::NoAnswer { tries }) => fail(format!(
            "no answer from {server} after {tries} tries (timeout {:?}, doubling){ignored}",
            args.timeout
        )),
        Some(Outcome::Failed(e)) => fail(format!("{server}: {e}")),
        None => fail("the exchange ended without an outcome".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Option<Args>, String> {
        parse_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options() {
        let a = args(&[
            "10.0.0.1",
            "--timeout",
            "0.5",
            "--retries",
            "0",
            "--backend",
            "poll",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (a.host.as_str(), a.timeout, a.retries, a.backend),
            ("10.0.0.1", Duration::from_millis(500), 0, Backend::Poll)
        );
        let a = args(&["x", "--backend", "epoll"]).unwrap().unwrap();
        assert_eq!(a.backend, Backend::Epoll);
        assert!(args(&["--help"]).unwrap().is_none());
        for bad in [
            &["--timeout", "0"][..],
            &["x", "--timeout", "nan"],
            &["x", "--timeout", "61"],
            &["x", "--retries", "11"],
            &["x", "--retries", "-1"],
            &["x", "--backend", "kqueue"],
            &["x", "y"],
            &["x", "--what"],
            &[],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(
            resolve("127.0.0.1").unwrap(),
            "127.0.0.1:123".parse().unwrap()
        );
        assert_eq!(
            resolve("127.0.0.1:1234").unwrap(),
            "127.0.0.1:1234".parse().unwrap()
        );
        assert_eq!(resolve("::1").unwrap(), "[::1]:123".parse().unwrap());
        assert_eq!(resolve("[::1]:9").unwrap(), "[::1]:9".parse().unwrap());
        assert!(resolve("localhost").unwrap().ip().is_loopback());
        assert!(resolve("no-such-host.invalid").is_err());
    }
}
