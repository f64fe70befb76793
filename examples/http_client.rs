//! A minimal HTTP/1.0 client (the original documentation's `HTTPClient`): fetches one
//! URL and prints the response body.
//!
//! ```text
//! cargo run --example http_client -- http://127.0.0.1:8000/README.md [--backend select|poll] [--timeout SECS]
//! ```
//!
//! It exits 1 with a clear message when the connection is refused or fails, or the
//! response is not HTTP, and 2 for a usage error: a bad option or URL.
//!
//! **The request.** `Host` carries the port unless it is 80, and an IPv6 address in
//! brackets (`Host: [::1]:8080`).
//!
//! **URLs.** Control characters (CR, LF, tab, NUL, ...) anywhere in the URL are
//! refused before anything is sent: sent as they are, CR and LF would inject header
//! lines, and encoding them would hide a URL that is almost certainly wrong. In the
//! path and query, bytes a request target may not carry (space, `"`, `<`, `>`, `\`,
//! `^`, `` ` ``, `{`, `|`, `}`, `[`, `]`, non-ASCII) are percent-encoded; existing
//! `%XX` escapes are kept. The fragment (`#...`) is not sent. The request must fit in
//! 8 KiB.

#[path = "http_client/protocol.rs"]
mod protocol;

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::Write as _;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use asyncore::{
    AnySelector, Backend, Ctx, Dispatcher, Error, ReadClosed, Recv, SendBuffer, SocketError,
    StdReactor, StdSocket,
};
use protocol::{MAX_REQUEST, Url};

const USAGE: &str =
    "usage: http_client http://HOST[:PORT]/PATH [--backend select|poll] [--timeout SECS]

  --backend       select (default) or poll
  --timeout SECS  give up if the whole exchange takes longer (default 30, at most 86400)

Exit status: 0 for a 2xx response, 1 when the fetch failed (the reason is on stderr),
2 for a usage error.";

/// The largest `--timeout`, in seconds: a day.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

// ------------------------------------------------------------------ command line

/// What the command line asks for.
#[derive(Debug)]
enum Command {
    Help,
    Fetch(Options),
}

#[derive(Debug)]
struct Options {
    url: Url,
    request: Vec<u8>,
    backend: Backend,
    timeout: Duration,
}

/// Parses the arguments (without the program name). The URL is checked and the
/// request built here, so a bad one is a usage error and nothing is sent.
fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut url = None;
    let mut backend = Backend::Select;
    let mut timeout = Duration::from_secs(30);
    let mut args = args.into_iter().map(|a| {
        a.into_string()
            .map_err(|a| format!("argument {a:?} is not valid UTF-8"))
    });
    while let Some(a) = args.next() {
        let a = a?;
        match a.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--backend" => match args.next().transpose()?.map(|v| v.parse::<Backend>()) {
                Some(Ok(b)) => backend = b,
                _ => return Err("--backend needs select or poll".into()),
            },
            "--timeout" => match args.next().transpose()? {
                Some(v) => timeout = parse_timeout(&v)?,
                None => return Err("--timeout needs a number of seconds".into()),
            },
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            s if url.is_none() => url = Some(protocol::parse_url(s)?),
            s => return Err(format!("unexpected argument {s:?}")),
        }
    }
    let url = url.ok_or("no URL given")?;
    let request = protocol::build_request(&url)?;
    Ok(Command::Fetch(Options {
        url,
        request,
        backend,
        timeout,
    }))
}

/// `--timeout`: a number of seconds above 0 and at most [`MAX_TIMEOUT_SECS`].
fn parse_timeout(v: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "--timeout needs a number of seconds above 0 and at most {MAX_TIMEOUT_SECS}, not {v:?}"
        )
    };
    let secs: f64 = v.parse().map_err(|_| bad())?;
    // Written so that NaN fails too.
    if !(secs > 0.0 && secs <= MAX_TIMEOUT_SECS) {
        return Err(bad());
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(bad()),
    }
}
// ------------------------------------------------------------------ the dispatcher

/// The request goes out through a send buffer; the response is streamed to stdout
/// once the header is complete.
struct HttpClient {
    request: SendBuffer<MAX_REQUEST>,
    header: Vec<u8>,
    in_body: bool,
    verdict: Rc<RefCell<Verdict>>,
}

/// What `main` learns once the channel is gone.
#[derive(Default)]
struct Verdict {
    status: Option<u16>,
    failure: Option<String>,
}

impl HttpClient {
    fn body(&mut self, data: &[u8]) {
        let _ = std::io::stdout().write_all(data);
    }

    fn fail(&mut self, why: String) {
        let mut v = self.verdict.borrow_mut();
        if v.status.is_none() && v.failure.is_none() {
            v.failure = Some(why);
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), Error> {
        if self.in_body {
            self.body(data);
            return Ok(());
        }
        self.header.extend_from_slice(data);
        if let Some(end) = self.header.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&self.header[..end]).into_owned();
            let status = head
                .lines()
                .next()
                .filter(|l| l.starts_with("HTTP/"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or(Error::Protocol("not an HTTP response"))?;
            self.verdict.borrow_mut().status = Some(status);
            self.in_body = true;
            let rest = self.header.split_off(end + 4);
            self.body(&rest);
        } else if self.header.len() > 64 * 1024 {
            return Err(Error::Protocol("response header too long"));
        }
        Ok(())
    }
}

/// A socket error in words ("Connection refused (os error 111)").
fn describe(e: SocketError) -> String {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.to_string(),
    }
}

impl Dispatcher<StdSocket> for HttpClient {
    type Error = Error;

    fn writable(&self) -> bool {
        self.request.wants_write()
    }

    fn handle_connect(&mut self, _ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        Ok(())
    }

    fn handle_connect_failed(&mut self, _ctx: &mut Ctx<'_, StdSocket, Self>, error: SocketError) {
        self.fail(format!("connection failed: {}", describe(error)));
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        self.request.flush(ctx)?;
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 8192];
        loop {
            match ctx.recv(&mut buf)? {
                Recv::Data(n) => self.feed(&buf[..n])?,
                Recv::Eof | Recv::WouldBlock => return Ok(()),
            }
        }
    }

    fn handle_read_closed(
        &mut self,
        _ctx: &mut Ctx<'_, StdSocket, Self>,
    ) -> Result<ReadClosed, Error> {
        self.fail("the server closed the connection before answering".into());
        Ok(ReadClosed::Close)
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        self.fail("connection reset before an answer".into());
        ctx.close();
        Ok(())
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        self.fail("timed out".into());
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>, error: Error) {
        self.verdict.borrow_mut().failure = Some(format!("{error}"));
        ctx.close();
    }
}

// ------------------------------------------------------------------ main

/// Fetches the URL; `Err` says why it failed.
fn fetch(opts: &Options) -> Result<(), String> {
    let url = &opts.url;
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("cannot resolve {}: no address", url.host))?;
    let mut request = SendBuffer::new();
    request
        .queue_all(&opts.request)
        .map_err(|_| "the request does not fit in the send buffer".to_string())?;
    let verdict = Rc::new(RefCell::new(Verdict::default()));
    let client = HttpClient {
        request,
        header: Vec::new(),
        in_body: false,
        verdict: verdict.clone(),
    };
    let socket = StdSocket::tcp_connect(addr)
        .map_err(|e| format!("cannot connect to {addr}: {}", describe(e)))?;
    let mut reactor: StdReactor<HttpClient, 1> = StdReactor::new(AnySelector::new(opts.backend));
    let token = reactor.add(socket, client).map_err(|e| e.to_string())?;
    let now = reactor.now().ok_or("no clock to time the exchange with")?;
    reactor
        .set_deadline(token, Some(now.saturating_add(opts.timeout)))
        .map_err(|e| format!("cannot set the deadline: {e:?}"))?;
    while reactor.get(token).is_some() {
        reactor
            .poll_once(Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
    }
    let _ = std::io::stdout().flush();
    let verdict = verdict.borrow();
    match (verdict.status, &verdict.failure) {
        (_, Some(failure)) if failure == "timed out" => {
            Err(format!("no complete answer within {:?}", opts.timeout))
        }
        (_, Some(failure)) => Err(failure.clone()),
        (Some(status), None) if (200..300).contains(&status) => Ok(()),
        (Some(status), None) => Err(format!("server answered {status}")),
        (None, None) => Err("no answer".into()),
    }
}

/// A line on stderr; a closed stderr is not worth a panic.
fn complain(message: &str) {
    let _ = writeln!(std::io::stderr(), "http_client: {message}");
}

fn main() -> ExitCode {
    let opts = match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Fetch(opts)) => opts,
        Err(why) => {
            complain(&format!("{why}\n{USAGE}"));
            return ExitCode::from(2);
        }
    };
    match fetch(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            complain(&why);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Command, String> {
        parse_args(list.iter().map(OsString::from))
    }

    #[test]
    fn timeouts_are_range_checked() {
        for ok in ["0.5", "30", "86400", "1e-3"] {
            assert!(parse_timeout(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1e30", "86400.5", "inf", "-inf", "nan", "0", "-0", "-1", "1e-300", "", "x", "1s",
        ] {
            let err = parse_timeout(bad).expect_err(bad);
            assert!(err.contains("at most 86400"), "{bad}: {err}");
        }
    }

    #[test]
    fn command_lines() {
        let Ok(Command::Fetch(o)) = args(&["http://h:81/x", "--backend", "poll", "--timeout", "2"])
        else {
            panic!("a good command line");
        };
        assert_eq!(
            (o.backend, o.timeout),
            (Backend::Poll, Duration::from_secs(2))
        );
        assert!(o.request.starts_with(b"GET /x HTTP/1.0\r\nHost: h:81\r\n"));
        assert!(matches!(args(&["--help"]), Ok(Command::Help)));
        for (line, says) in [
            (&[][..], "no URL"),
            (&["http://h/", "--timeout"], "--timeout needs"),
            (&["http://h/", "--timeout", "1e30"], "at most 86400"),
            (&["http://h/", "--backend", "epoll"], "--backend needs"),
            (&["http://h/", "--backend"], "--backend needs"),
            (&["http://h/", "--verbose"], "unknown option"),
            (&["http://h/", "http://g/"], "unexpected argument"),
            (&["http://h/a\r\nb"], "control character"),
            (&["http://h:0/"], "between 1 and 65535"),
        ] {
            let err = args(line).expect_err(&format!("{line:?}"));
            assert!(err.contains(says), "{line:?}: {err}");
        }
        let not_utf8 = {
            use std::os::unix::ffi::OsStringExt;
            OsString::from_vec(vec![b'h', 0xff])
        };
        let err = parse_args([not_utf8]).unwrap_err();
        assert!(err.contains("not valid UTF-8"), "{err}");
    }
}
