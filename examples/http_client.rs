//! A small HTTP/1.1 client (the original documentation's `HTTPClient`): fetches one
//! `http://` URL and writes the response body to stdout.
//!
//! ```text
//! cargo run --example http_client -- http://127.0.0.1:8000/README.md [--backend select|poll|epoll] [--timeout SECS]
//! ```
//!
//! **Exit status.** 0 only when a complete `2xx` response arrived. 1 when the fetch
//! failed, with a message on stderr: the connection was refused or failed, the
//! server answered with another status, the response is malformed or too large, or
//! the body is incomplete (the server closed or reset the connection before the end
//! of the body, or `--timeout` passed first). 2 for a usage error: a bad option or
//! URL. The body is streamed as it arrives, so after a failure stdout holds what came
//! before it; only the exit status says whether that is the whole body.
//!
//! **The response.** The body ends where `Content-Length` says, with the last chunk
//! of a `Transfer-Encoding: chunked` body (extensions ignored, trailers read and
//! discarded), or, when neither is given, with the connection. Interim `1xx` heads
//! are skipped. Limits: 64 KiB of header, 1 KiB per chunk-size line, 64 KiB of
//! trailers; more, or malformed framing, is an error.
//!
//! **The request** is `GET` in HTTP/1.1 with `Connection: close`. HTTP/1.1 because
//! a server answering 1.0 may end a body of unknown length only by closing the
//! connection, and then a body cut short by a failing server cannot be told from a
//! complete one; answering 1.1 it can send such a body chunked, whose end is marked.
//! Some servers send chunked HTTP/1.1 replies even to 1.0 requests, so the decoder
//! is needed either way. `Connection: close` keeps it one exchange per
//! connection. `Host` carries the port unless it is 80, and an IPv6 address in
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

use std::ffi::OsString;
use std::io::{BufWriter, Stdout, Write as _};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use asyncore::{
    AfterEof, AnySelector, Backend, Ctx, Dispatcher, Error, Recv, SendBuffer, SocketError,
    StdReactor, StdSocket,
};
use protocol::{MAX_REQUEST, Progress, Response, Url};

const USAGE: &str =
    "usage: http_client http://HOST[:PORT]/PATH [--backend select|poll|epoll] [--timeout SECS]

  --backend       select (default), poll or epoll
  --timeout SECS  give up if the whole exchange takes longer (default 30, at most 86400)

Exit status: 0 for a complete 2xx response, 1 when the fetch failed (the reason is on
stderr; stdout then holds the body as far as it came), 2 for a usage error.";

/// The largest `--timeout`, in seconds: a day.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;
/// Reads per read event, so the deadline is checked even when the server sends
/// faster than stdout takes it.
const READS_PER_EVENT: usize = 16;

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
                _ => return Err("--backend needs select, poll or epoll".into()),
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

// ------------------------------------------------------------------ the verdict

/// How the exchange ended, as the dispatcher saw it.
#[derive(Debug)]
enum End {
    /// The whole response was read (the client closes the connection).
    Complete,
    /// The server finished sending (EOF).
    Eof,
    /// The connection was reset or broke.
    Reset,
    /// `--timeout` passed.
    TimedOut,
    /// The connection could not be made.
    ConnectFailed(SocketError),
    /// Anything else (a malformed response, stdout gone, a socket error): why.
    Failed(String),
}

/// What `main` learns once the channel is gone: `Ok` for a complete `2xx` response,
/// or why not. `None` until the dispatcher decided.
type Verdict = Option<Result<(), String>>;

/// The one place that decides whether the fetch succeeded, from how the connection
/// ended and how far the response got. A body cut short is never a success.
fn judge(
    end: End,
    response: &mut Response,
    timeout: Duration,
    addr: SocketAddr,
) -> Result<(), String> {
    let how = match end {
        End::ConnectFailed(e) => return Err(format!("cannot connect to {addr}: {}", describe(e))),
        End::Failed(why) => return Err(why),
        End::Complete => String::new(),
        End::Eof => {
            // A body delimited by the end of the connection is complete now.
            response.end_of_input();
            "the server closed the connection".into()
        }
        End::Reset => "the connection was reset".into(),
        End::TimedOut => format!("timed out (--timeout {}s)", timeout.as_secs_f64()),
    };
    match response.progress() {
        Progress::Done => match response.head() {
            Some(head) if (200..300).contains(&head.status) => Ok(()),
            Some(head) => Err(format!("server answered {} {}", head.status, head.reason)),
            None => Err("no answer".into()),
        },
        Progress::Nothing => Err(format!("{how} before any answer")),
        Progress::Head => Err(format!("{how} in the middle of the response header")),
        Progress::Length { received, total } => Err(format!(
            "{how} after {received} of {total} body bytes: the body is truncated"
        )),
        Progress::Chunked {
            received,
            trailers: false,
        } => Err(format!(
            "{how} before the last chunk, after {received} body bytes: the body is truncated"
        )),
        Progress::Chunked {
            received,
            trailers: true,
        } => Err(format!(
            "{how} in the trailers, after a body of {received} bytes: the response is incomplete"
        )),
        Progress::UntilClose { received } => Err(format!(
            "{how} after {received} body bytes (the server gave no length): the body may be \
             incomplete"
        )),
    }
}

/// A socket error in words ("Connection refused (os error 111)").
fn describe(e: SocketError) -> String {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.to_string(),
    }
}

// ------------------------------------------------------------------ the dispatcher

/// The request goes out through a send buffer; the response is read incrementally
/// and its body streamed to stdout.
struct HttpClient {
    request: SendBuffer<MAX_REQUEST>,
    response: Response,
    out: BufWriter<Stdout>,
    timeout: Duration,
    addr: SocketAddr,
    /// How the exchange ended, once it has: the reactor keeps the dispatcher after
    /// its channel closes and hands it back to `fetch`.
    verdict: Verdict,
}

impl HttpClient {
    /// Records the verdict (the first end only) after writing out the body so far.
    fn conclude(&mut self, end: End) {
        if self.verdict.is_some() {
            return;
        }
        let mut result = judge(end, &mut self.response, self.timeout, self.addr);
        if let Err(e) = self.out.flush()
            && result.is_ok()
        {
            result = Err(format!("cannot write the body to stdout: {e}"));
        }
        self.verdict = Some(result);
    }

    /// Reads `data` into the response and writes its body out. `Some` when the
    /// exchange is over: the response is complete, malformed, or stdout is gone.
    fn take(&mut self, data: &[u8]) -> Option<End> {
        let mut input = data;
        loop {
            match self.response.next_body(&mut input) {
                Ok(Some(body)) => {
                    if let Err(e) = self.out.write_all(body) {
                        return Some(End::Failed(format!("cannot write the body to stdout: {e}")));
                    }
                }
                Ok(None) => return self.response.is_complete().then_some(End::Complete),
                Err(e) => return Some(End::Failed(format!("bad response: {e}"))),
            }
        }
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
        self.conclude(End::ConnectFailed(error));
    }

    fn handle_write(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        self.request.flush(ctx)?;
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..READS_PER_EVENT {
            match ctx.recv(&mut buf)? {
                Recv::Data(n) => {
                    if let Some(end) = self.take(&buf[..n]) {
                        self.conclude(end);
                        ctx.close();
                        return Ok(());
                    }
                }
                // The reactor delivers the end: handle_eof or handle_close.
                Recv::Eof | Recv::WouldBlock => return Ok(()),
            }
        }
        Ok(())
    }

    fn handle_eof(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<AfterEof, Error> {
        self.conclude(End::Eof);
        ctx.close();
        Ok(AfterEof::Close)
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        self.conclude(End::Reset);
        ctx.close();
        Ok(())
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        self.conclude(End::TimedOut);
        ctx.close();
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Ctx<'_, StdSocket, Self>, error: Error) {
        let why = match error {
            Error::Socket(e) => describe(e),
            e => e.to_string(),
        };
        self.conclude(End::Failed(why));
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
    let client = HttpClient {
        request,
        response: Response::default(),
        out: BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        timeout: opts.timeout,
        addr,
        verdict: None,
    };
    let socket = StdSocket::tcp_connect(addr)
        .map_err(|e| format!("cannot connect to {addr}: {}", describe(e)))?;
    let mut reactor: StdReactor<HttpClient, 1> = StdReactor::new(AnySelector::new(opts.backend));
    let token = reactor.add(socket, client).map_err(|e| e.to_string())?;
    reactor.keep_when_closed(token);
    let now = reactor.now().ok_or("no clock to time the exchange with")?;
    reactor
        .set_deadline(token, Some(now.saturating_add(opts.timeout)))
        .map_err(|e| format!("cannot set the deadline: {e:?}"))?;
    let client = loop {
        if let Some(client) = reactor.take_closed(token) {
            break client;
        }
        reactor
            .poll_once(Some(Duration::from_secs(1)))
            .map_err(|e| e.to_string())?;
    };
    client
        .verdict
        .unwrap_or_else(|| Err("the connection ended without a verdict".into()))
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
        let Ok(Command::Fetch(o)) = args(&["http://h/", "--backend", "epoll"]) else {
            panic!("a good command line");
        };
        assert_eq!(o.backend, Backend::Epoll);
        assert!(o.request.starts_with(b"GET /x HTTP/1.1\r\nHost: h:81\r\n"));
        assert!(matches!(args(&["--help"]), Ok(Command::Help)));
        for (line, says) in [
            (&[][..], "no URL"),
            (&["http://h/", "--timeout"], "--timeout needs"),
            (&["http://h/", "--timeout", "1e30"], "at most 86400"),
            (&["http://h/", "--backend", "kqueue"], "--backend needs"),
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
