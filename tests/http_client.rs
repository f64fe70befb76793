//! The `http_client` example binary against canned responses, good and broken, from
//! `tests/python/http_fixture.py` (a raw-socket Python server on 127.0.0.1 and a
//! port it picks), each case on select and on poll: exit status, stdout bytes and
//! the message on stderr. Also the exact request it sends (request line, `Host` with
//! the port, IPv6 in brackets, percent-encoding) and that a URL with control
//! characters is refused without a connection.
//!
//! The example's own unit tests (URL parsing, the response reader, the chunked
//! decoder fed at every split point) run here too: `protocol` below is the
//! example's module, so `cargo test` runs them without `--example`.
//!
//! A missing `python3` or example binary fails the tests, unless
//! `ASYNCORE_SKIP_INTEROP=1` (`tests/common/peers.rs`). The binary comes from a plain
//! `cargo test`, or `cargo build --example http_client` before
//! `cargo test --test http_client`.

mod common;

// The example's pure HTTP module, for its unit tests; the example uses the rest.
#[allow(dead_code)]
#[path = "../examples/http_client/protocol.rs"]
mod protocol;

use std::net::TcpListener;
use std::process::Command;

use common::peers::{Listening, Output, command, example, python, run, script};

/// The fixture's N-byte bodies: byte i is (i * 31 + 7) % 256.
fn fixture_pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + 7) % 256) as u8).collect()
}

/// `tests/python/http_fixture.py MODE --host HOST`, listening; killed when dropped.
struct Fixture {
    peer: Listening,
    host: String,
    port: u16,
}

impl Fixture {
    fn start(python: &str, mode: &str, host: &str) -> Fixture {
        let peer = Listening::start(
            Command::new(python)
                .args(["-W", "ignore"])
                .arg(script("http_fixture.py"))
                .args([mode, "--host", host]),
        )
        .unwrap_or_else(|why| panic!("the fixture did not start: {why}"));
        let port = peer.addr.parse().expect("the fixture's port");
        Fixture {
            peer,
            host: host.to_string(),
            port,
        }
    }

    fn url(&self, path: &str) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{path}", self.host, self.port)
        } else {
            format!("http://{}:{}{path}", self.host, self.port)
        }
    }

    /// Stops it; returns what it wrote on stderr (a Python traceback, if any).
    fn finish(&mut self) -> String {
        self.peer.finish()
    }
}

/// One run of the client against one fixture.
struct Case {
    out: Output,
    /// The fixture's port.
    port: u16,
    /// The command, the client's stderr and the fixture's, for failure messages.
    context: String,
}

/// `http_client URL --backend BACKEND ARGS` against a fixture in `mode` on `host`,
/// `URL` being the fixture's address and `path`. `None`: skipped (see `peers`).
fn fetch_on(host: &str, mode: &str, backend: &str, path: &str, args: &[&str]) -> Option<Case> {
    let python = python("import signal, socket, struct")?;
    let bin = example("http_client")?;
    let mut fixture = Fixture::start(python, mode, host);
    let url = fixture.url(path);
    let out = run(command(&bin)
        .arg(&url)
        .args(["--backend", backend])
        .args(args));
    let log = fixture.finish();
    let context = format!(
        "http_client {url:?} --backend {backend} {args:?} against mode {mode}\n\
         exit: {}\nstderr: {}\nfixture stderr: {log}",
        out.status, out.stderr
    );
    Some(Case {
        out,
        port: fixture.port,
        context,
    })
}

fn fetch(mode: &str, backend: &str, args: &[&str]) -> Option<Case> {
    fetch_on("127.0.0.1", mode, backend, "/file", args)
}

/// Exit 0, nothing on stderr, stdout exactly `body`.
fn assert_fetched(case: &Case, body: &[u8]) {
    let c = &case.context;
    assert_eq!(case.out.status.code(), Some(0), "{c}");
    assert_eq!(case.out.stderr, "", "{c}");
    assert_eq!(case.out.stdout.len(), body.len(), "{c}");
    assert!(case.out.stdout == body, "the body differs\n{c}");
}

/// Exit 1, one line on stderr that says each of `says`.
fn assert_failed(case: &Case, says: &[&str]) {
    let c = &case.context;
    assert_eq!(case.out.status.code(), Some(1), "{c}");
    let err = &case.out.stderr;
    assert!(
        err.starts_with("http_client: ") && err.ends_with('\n') && err.lines().count() == 1,
        "{c}"
    );
    for s in says {
        assert!(err.contains(s), "stderr does not say {s:?}\n{c}");
    }
}

/// A prefix of `sent` (what the server sent before failing): what came, nothing else.
fn assert_prefix(case: &Case, sent: &[u8]) {
    let got = &case.out.stdout;
    assert!(
        sent.starts_with(got),
        "stdout ({} bytes) is not a prefix of the {} bytes sent\n{}",
        got.len(),
        sent.len(),
        case.context
    );
}

/// Runs each case on select, poll and epoll.
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[test]
            fn select() {
                super::$case("select");
            }

            #[test]
            fn poll() {
                super::$case("poll");
            }

            #[test]
            fn epoll() {
                super::$case("epoll");
            }
        }
    )*};
}

both_backends!(
    content_length,
    until_close,
    short_body_then_fin,
    reset_mid_body,
    drip_cut_by_timeout,
    chunked,
    chunked_bad_hex,
    chunked_no_crlf_after_data,
    chunked_eof_before_last_chunk,
    chunked_size_line_too_long,
    oversized_header,
    urgent_byte_mid_body,
    request_head,
    request_head_ipv6,
    control_characters_refused_unsent,
);

/// A 100,000-byte body with Content-Length: all of it, exit 0.
fn content_length(backend: &str) {
    let Some(case) = fetch("ok", backend, &[]) else {
        return;
    };
    assert_fetched(&case, &fixture_pattern(100_000));
}

/// No length (HTTP/1.0): the body ends with the connection, exit 0.
fn until_close(backend: &str) {
    let Some(case) = fetch("close", backend, &[]) else {
        return;
    };
    assert_fetched(&case, &fixture_pattern(3000));
}

/// Content-Length 1000, 10 bytes, FIN: the 10 bytes, exit 1, "truncated".
fn short_body_then_fin(backend: &str) {
    let Some(case) = fetch("short", backend, &[]) else {
        return;
    };
    assert_eq!(case.out.stdout, b"0123456789", "{}", case.context);
    assert_failed(
        &case,
        &[
            "the server closed the connection after 10 of 1000 body bytes",
            "the body is truncated",
        ],
    );
}

/// Content-Length 100,000, 5,000 bytes, RST: at most those, exit 1, "reset".
fn reset_mid_body(backend: &str) {
    let Some(case) = fetch("reset", backend, &[]) else {
        return;
    };
    assert_prefix(&case, &fixture_pattern(5000));
    assert_failed(
        &case,
        &[
            "the connection was reset after",
            "of 100000 body bytes",
            "the body is truncated",
        ],
    );
}

/// A body dripping a byte every 50 ms, `--timeout 1`: what came, exit 1, "timed out".
fn drip_cut_by_timeout(backend: &str) {
    let Some(case) = fetch("drip", backend, &["--timeout", "1"]) else {
        return;
    };
    assert_prefix(&case, &fixture_pattern(1000));
    assert_failed(
        &case,
        &[
            "timed out (--timeout 1s) after",
            "of 1000 body bytes",
            "the body is truncated",
        ],
    );
}

/// Chunked with extensions and trailers, the framing arriving in pieces of 1 to 7
/// bytes: the decoded body, exit 0.
fn chunked(backend: &str) {
    let Some(case) = fetch("chunked", backend, &[]) else {
        return;
    };
    let mut body = b"hello, world\n".to_vec();
    body.extend(fixture_pattern(70_000));
    assert_fetched(&case, &body);
}

fn chunked_bad_hex(backend: &str) {
    let Some(case) = fetch("chunked-bad-hex", backend, &[]) else {
        return;
    };
    assert_eq!(case.out.stdout, b"hello", "{}", case.context);
    assert_failed(
        &case,
        &["bad response: malformed chunked body: a chunk size is not a hexadecimal number"],
    );
}

fn chunked_no_crlf_after_data(backend: &str) {
    let Some(case) = fetch("chunked-no-crlf", backend, &[]) else {
        return;
    };
    assert_eq!(case.out.stdout, b"hello", "{}", case.context);
    assert_failed(&case, &["chunk data is not followed by CRLF"]);
}

fn chunked_eof_before_last_chunk(backend: &str) {
    let Some(case) = fetch("chunked-eof", backend, &[]) else {
        return;
    };
    assert_eq!(case.out.stdout, b"hello", "{}", case.context);
    assert_failed(
        &case,
        &[
            "the server closed the connection before the last chunk, after 5 body bytes: the body is truncated",
        ],
    );
}

fn chunked_size_line_too_long(backend: &str) {
    let Some(case) = fetch("chunked-long-line", backend, &[]) else {
        return;
    };
    assert_eq!(case.out.stdout, b"", "{}", case.context);
    assert_failed(&case, &["a chunk-size line is longer than 1 KiB"]);
}

/// 70 KiB of header lines: nothing on stdout, exit 1.
fn oversized_header(backend: &str) {
    let Some(case) = fetch("huge-header", backend, &[]) else {
        return;
    };
    assert_eq!(case.out.stdout, b"", "{}", case.context);
    assert_failed(&case, &["the response header is longer than 64 KiB"]);
}

/// A TCP urgent byte in the middle of the body is dropped, not part of it.
fn urgent_byte_mid_body(backend: &str) {
    let Some(case) = fetch("urgent", backend, &[]) else {
        return;
    };
    assert_fetched(&case, b"0123456789");
}

/// The request the fixture received, echoed back as the body.
fn expected_request(target: &str, host: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: asyncore-rs http_client\r\n\
         Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// The exact request: HTTP/1.1, the target percent-encoded (space, non-ASCII,
/// quotes, angle brackets; the fragment left out), `Host` with the port (not 80).
fn request_head(backend: &str) {
    let path = "/dir/a b/caf\u{e9}?q=<x>&r=\"y\"#fragment";
    let Some(case) = fetch_on("127.0.0.1", "echo", backend, path, &[]) else {
        return;
    };
    let expected = expected_request(
        "/dir/a%20b/caf%C3%A9?q=%3Cx%3E&r=%22y%22",
        &format!("127.0.0.1:{}", case.port),
    );
    assert_fetched(&case, &expected);
}

/// Over IPv6: `Host: [::1]:PORT`. Skipped, saying so, when this machine has no ::1.
fn request_head_ipv6(backend: &str) {
    if let Err(e) = TcpListener::bind("[::1]:0") {
        eprintln!("SKIPPED: the IPv6 loopback ::1 is not available here ({e})");
        return;
    }
    let Some(case) = fetch_on("::1", "echo", backend, "/v6", &[]) else {
        return;
    };
    let expected = expected_request("/v6", &format!("[::1]:{}", case.port));
    assert_fetched(&case, &expected);
}

/// CR, LF, tab or another control character in the URL: exit 2, a message, nothing
/// on stdout, and no connection made (a listener of our own has none waiting).
fn control_characters_refused_unsent(backend: &str) {
    let Some(bin) = example("http_client") else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a listener");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    for path in [
        "/a\r\nX-Injected: 1",
        "/a\nb",
        "/a b\r\n\r\nGET /other",
        "/a\tb",
        "/a\x01b",
        "/\x1b[31mred",
        "/a\x7f",
    ] {
        let url = format!("http://127.0.0.1:{port}{path}");
        let out = run(command(&bin).arg(&url).args(["--backend", backend]));
        let context = format!("{url:?}: exit {}, stderr {}", out.status, out.stderr);
        assert_eq!(out.status.code(), Some(2), "{context}");
        assert!(out.stdout.is_empty(), "{context}");
        assert!(
            out.stderr
                .starts_with("http_client: the URL contains control character"),
            "{context}"
        );
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("{url:?}: http_client connected (from {peer})"),
            Err(e) => panic!("accept: {e}"),
        }
    }
}
