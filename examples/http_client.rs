//! A minimal HTTP/1.0 client (the original documentation's `HTTPClient`): fetches one
//! URL and prints the response body.
//!
//! ```text
//! cargo run --example http_client -- http://127.0.0.1:8000/README.md [--backend select|poll] [--timeout SECS]
//! ```
//!
//! It exits non-zero with a clear message when the URL is bad, the connection is
//! refused or fails, or the response is not HTTP.

use std::cell::RefCell;
use std::io::Write as _;
use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use asyncore::{
    AnySelector, Backend, Ctx, Dispatcher, Error, ReadClosed, Recv, SendBuffer, SocketError,
    StdReactor, StdSocket,
};

const USAGE: &str =
    "usage: http_client http://HOST[:PORT]/PATH [--backend select|poll] [--timeout SECS]

  --timeout SECS  give up if the whole exchange takes longer (default 30)";

/// The request goes out through a send buffer; the response is streamed to stdout
/// once the header is complete.
struct HttpClient {
    request: SendBuffer<1024>,
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
    fn new(host: &str, path: &str, verdict: Rc<RefCell<Verdict>>) -> Result<Self, String> {
        let mut request = SendBuffer::new();
        let text = format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: asyncore-rs\r\nConnection: close\r\n\r\n"
        );
        request
            .queue_all(text.as_bytes())
            .map_err(|_| "URL too long".to_string())?;
        Ok(HttpClient {
            request,
            header: Vec::new(),
            in_body: false,
            verdict,
        })
    }

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

impl Dispatcher<StdSocket> for HttpClient {
    type Error = Error;

    fn writable(&self) -> bool {
        self.request.wants_write()
    }

    fn handle_connect(&mut self, _ctx: &mut Ctx<'_, StdSocket, Self>) -> Result<(), Error> {
        Ok(())
    }

    fn handle_connect_failed(&mut self, _ctx: &mut Ctx<'_, StdSocket, Self>, error: SocketError) {
        self.fail(format!("connection failed: {error}"));
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

/// Splits `http://host[:port]/path` into (host, port, path).
fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| format!("{url}: unclosed [ in host"))?;
        let port = &v6[end + 1..];
        (v6[..end].to_string(), port.strip_prefix(':').unwrap_or(""))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (authority.to_string(), ""),
        }
    };
    let port = if port.is_empty() {
        80
    } else {
        port.parse()
            .map_err(|_| format!("{url}: bad port {port}"))?
    };
    Ok((host, port, path.to_string()))
}

fn main() -> ExitCode {
    let mut url = None;
    let mut backend = Backend::Select;
    let mut timeout = Duration::from_secs(30);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--backend" => match args.next().map(|v| v.parse::<Backend>()) {
                Some(Ok(b)) => backend = b,
                _ => {
                    eprintln!("http_client: --backend needs select or poll\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--timeout" => match args.next().and_then(|v| v.parse::<f64>().ok()) {
                Some(secs) if secs.is_finite() && secs > 0.0 => {
                    timeout = Duration::from_secs_f64(secs)
                }
                _ => {
                    eprintln!("http_client: --timeout needs a positive number of seconds\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            s if s.starts_with('-') => {
                eprintln!("http_client: unknown option {s}\n{USAGE}");
                return ExitCode::from(2);
            }
            s if url.is_none() => url = Some(s.to_string()),
            s => {
                eprintln!("http_client: unexpected argument {s}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!("http_client: no URL given\n{USAGE}");
        return ExitCode::from(2);
    };
    let (host, port, path) = match parse_url(&url) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("http_client: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = match (host.as_str(), port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(a)) => a,
        _ => {
            eprintln!("http_client: cannot resolve {host}");
            return ExitCode::FAILURE;
        }
    };
    let verdict = Rc::new(RefCell::new(Verdict::default()));
    let client = match HttpClient::new(&host, &path, verdict.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("http_client: {e}");
            return ExitCode::from(2);
        }
    };
    let socket = match StdSocket::tcp_connect(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("http_client: cannot connect to {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reactor: StdReactor<HttpClient, 1> = StdReactor::new(AnySelector::new(backend));
    let token = match reactor.add(socket, client) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("http_client: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(now) = reactor.now() {
        let _ = reactor.set_deadline(token, Some(now + timeout));
    }
    while reactor.get(token).is_some() {
        if let Err(e) = reactor.poll_once(Some(Duration::from_secs(1))) {
            eprintln!("http_client: {e}");
            return ExitCode::FAILURE;
        }
    }
    let _ = std::io::stdout().flush();
    let verdict = verdict.borrow();
    match (verdict.status, &verdict.failure) {
        (_, Some(failure)) if failure == "timed out" => {
            eprintln!("http_client: no complete answer within {timeout:?}");
            ExitCode::FAILURE
        }
        (_, Some(failure)) => {
            eprintln!("http_client: {failure}");
            ExitCode::FAILURE
        }
        (Some(status), None) if (200..300).contains(&status) => ExitCode::SUCCESS,
        (Some(status), None) => {
            eprintln!("http_client: server answered {status}");
            ExitCode::FAILURE
        }
        (None, None) => {
            eprintln!("http_client: no answer");
            ExitCode::FAILURE
        }
    }
}
