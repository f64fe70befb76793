//! The HTTP/1.1 side of `http_client`, without any I/O: the URL, the request, and the
//! response read incrementally (head, then a body framed by `Content-Length`, by
//! chunked transfer coding, or by the end of the connection).
//!
//! Everything here takes untrusted input (the command line, the server's bytes) and
//! answers with an error, never a panic; every buffer it grows is bounded.

use std::fmt;
use std::net::Ipv6Addr;

/// The most a response head may take (status line and header fields, and any
/// interim `1xx` heads before it). More is an error.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most a chunk-size line (size and extensions, without its CRLF) may take.
pub const MAX_CHUNK_LINE: usize = 1024;
/// The most the trailer section of a chunked body may take (CRLFs included).
pub const MAX_TRAILERS: usize = 64 * 1024;
/// The most the request may take (it goes out through a fixed send buffer).
pub const MAX_REQUEST: usize = 8 * 1024;

// ------------------------------------------------------------------ URL

/// A parsed `http://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The host as written (a name or an IPv4 address), or an IPv6 address without
    /// its brackets.
    pub host: String,
    /// Whether `host` is an IPv6 address (bracketed in the URL and in `Host`).
    pub ipv6: bool,
    /// The port (80 when the URL has none).
    pub port: u16,
    /// The request target: absolute path and query, percent-encoded where needed,
    /// the fragment left out.
    pub target: String,
}

impl Url {
    /// The value of the `Host` header: the port only when it is not 80, an IPv6
    /// address in brackets.
    pub fn host_header(&self) -> String {
        let host = if self.ipv6 {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses an `http://` URL.
///
/// A control character (below 0x20, or 0x7F) anywhere is refused: CR and LF would
/// inject header lines, and none of them belongs in a URL. In the path and query,
/// bytes a request target may not carry (space, `"`, `<`, `>`, `\`, `^`, `` ` ``,
/// `{`, `|`, `}`, `[`, `]`, non-ASCII) are percent-encoded, as is a `%` that does
/// not start an escape; existing `%XX` escapes are kept. The host must be a plain
/// name (letters, digits, `-`, `.`, `_`), an IPv4 address, or an IPv6 address in
/// brackets; user information (`user@`) is refused.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_url(url: &str) -> Result<Url, String> {
    if let Some((at, b)) = url
        .bytes()
        .enumerate()
        .find(|&(_, b)| b < 0x20 || b == 0x7f)
    {
        return Err(format!(
            "the URL contains control character 0x{b:02x} at byte {at}: refused (CR, LF and \
             other control characters would go into the request as they are)"
        ));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url}: not an http:// URL"));
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "{url}: only http:// URLs are supported, not {scheme}://"
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    let path_and_query = match rest.find('#') {
        Some(i) => &rest[..i],
        None => rest,
    };
    if authority.contains('@') {
        return Err(format!(
            "{url}: user information (user@host) is not supported"
        ));
    }
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let (host, ipv6, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((inside, after)) = v6.split_once(']') else {
            return Err(format!("{url}: unclosed [ in the host"));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "{url}: [{inside}] is not an IPv6 address (zone identifiers are not supported)"
            ));
        }
        let port = match after {
            "" => "",
            _ => after.strip_prefix(':').ok_or_else(|| {
                format!("{url}: only :PORT may follow the bracketed IPv6 address")
            })?,
        };
        (inside, true, port)
    } else {
        let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
        if port.contains(':') {
            return Err(format!("{url}: an IPv6 address must be in brackets"));
        }
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        if let Some(c) = host
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
        {
            return Err(format!(
                "{url}: {c:?} is not allowed in a host name (letters, digits, '-', '.', '_')"
            ));
        }
        (host, false, port)
    };
    let port = parse_port(port).map_err(|why| format!("{url}: {why}"))?;
    Ok(Url {
        host: host.to_string(),
        ipv6,
        port,
        target: encode_target(path_and_query),
    })
}

/// The port of a URL: empty means 80; otherwise 1 to 65535 in decimal digits.
fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Ok(80);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad port {port:?}"));
    }
    match port.trim_start_matches('0').parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port {port} is not between 1 and 65535")),
    }
}

/// Whether a byte may appear as it is in a request target (RFC 3986 `pchar`, `/`
/// and `?`; `%` is handled apart).
fn target_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
        )
}

/// Path and query as a request target: `/` when empty, a leading `/` added before
/// a bare query, every byte not allowed percent-encoded (see [`parse_url`]).
fn encode_target(raw: &str) -> String {
    let raw = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + 1);
    if raw.first() != Some(&b'/') {
        out.push('/');
    }
    for (i, &b) in raw.iter().enumerate() {
        let escape = b == b'%'
            && raw.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && raw.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        if escape || target_byte_ok(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------ request

/// The request for `url`: HTTP/1.1 with `Connection: close`.
///
/// # Errors
/// The request would not fit in [`MAX_REQUEST`] bytes.
pub fn build_request(url: &Url) -> Result<Vec<u8>, String> {
    let text = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: asyncore-rs http_client\r\n\
         Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        url.target,
        url.host_header()
    );
    if text.len() > MAX_REQUEST {
        return Err(format!(
            "the URL is too long: the request would take {} bytes, at most {MAX_REQUEST} fit",
            text.len()
        ));
    }
    Ok(text.into_bytes())
}

// ------------------------------------------------------------------ errors

/// What can be wrong with a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The head grew past [`MAX_HEAD`].
    HeadTooLong,
    /// The first line is not an HTTP status line (shown, made printable).
    NotHttp(String),
    /// An HTTP version other than 1.x.
    Version(String),
    /// A status line with a bad status code.
    BadStatusLine(String),
    /// A header line that is not `name: value`, or that holds a control character.
    BadHeaderLine(String),
    /// A header line that continues the previous one (obsolete line folding).
    FoldedHeader,
    /// A `Content-Length` that is not a decimal number.
    BadContentLength(String),
    /// `Content-Length` values that disagree.
    ConflictingContentLength,
    /// A `Transfer-Encoding` other than `chunked`.
    TransferEncoding(String),
    /// `101 Switching Protocols`, which we never asked for.
    SwitchingProtocols,
    /// Broken chunked framing.
    Chunk(ChunkError),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::HeadTooLong => write!(
                f,
                "the response header is longer than {} KiB",
                MAX_HEAD / 1024
            ),
            HttpError::NotHttp(line) => write!(f, "not an HTTP response (it starts {line:?})"),
            HttpError::Version(v) => write!(f, "unsupported HTTP version {v:?}"),
            HttpError::BadStatusLine(line) => write!(f, "bad status line {line:?}"),
            HttpError::BadHeaderLine(line) => write!(f, "malformed header line {line:?}"),
            HttpError::FoldedHeader => {
                f.write_str("a folded header line (obsolete line folding is not accepted)")
            }
            HttpError::BadContentLength(v) => write!(f, "bad Content-Length {v:?}"),
            HttpError::ConflictingContentLength => {
                f.write_str("Content-Length values that disagree")
            }
            HttpError::TransferEncoding(v) => {
                write!(f, "unsupported Transfer-Encoding {v:?} (only chunked is)")
            }
            HttpError::SwitchingProtocols => {
                f.write_str("the server switched protocols (101) although nobody asked")
            }
            HttpError::Chunk(e) => write!(f, "malformed chunked body: {e}"),
        }
    }
}

impl From<ChunkError> for HttpError {
    fn from(e: ChunkError) -> Self {
        HttpError::Chunk(e)
    }
}

/// Server text made fit for a terminal: printable ASCII kept, anything else `?`, at
/// most 80 characters.
pub fn printable(bytes: &[u8]) -> String {
    let mut s: String = bytes
        .iter()
        .take(80)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > 80 {
        s.push_str("...");
    }
    s
}

// ------------------------------------------------------------------ chunked

/// What can be wrong with chunked framing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk-size line that does not start with a hexadecimal number, or has
    /// something other than an extension after it.
    BadSize,
    /// A chunk size that does not fit in 64 bits.
    SizeOverflow,
    /// A chunk-size line longer than [`MAX_CHUNK_LINE`].
    SizeLineTooLong,
    /// A control character in a chunk extension.
    BadExtension,
    /// A chunk-size or trailer line not ended by CRLF.
    BadLineEnd,
    /// Chunk data not followed by CRLF.
    NoCrlfAfterData,
    /// A trailer section longer than [`MAX_TRAILERS`].
    TrailersTooLong,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkError::BadSize => "a chunk size is not a hexadecimal number",
            ChunkError::SizeOverflow => "a chunk size does not fit in 64 bits",
            ChunkError::SizeLineTooLong => "a chunk-size line is longer than 1 KiB",
            ChunkError::BadExtension => "a chunk extension holds a control character",
            ChunkError::BadLineEnd => "a chunk-size or trailer line does not end in CRLF",
            ChunkError::NoCrlfAfterData => "chunk data is not followed by CRLF",
            ChunkError::TrailersTooLong => "the trailers are longer than 64 KiB",
        })
    }
}

/// Where a [`ChunkDecoder`] is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Chunk {
    /// In a chunk-size line's hexadecimal digits (`digits` of them so far).
    Size { size: u64, digits: u32 },
    /// After the digits: whitespace or an extension, until CR.
    Extension { size: u64 },
    /// CR of a chunk-size line seen; LF next.
    SizeLf { size: u64 },
    /// In a chunk's data.
    Data { left: u64 },
    /// After a chunk's data: CR next.
    DataCr,
    /// After a chunk's data and CR: LF next.
    DataLf,
    /// At the start of a trailer line, or of the empty line that ends the body.
    TrailerStart,
    /// In a trailer line, until CR.
    Trailer,
    /// CR of a trailer line seen; LF next.
    TrailerLf,
    /// CR of the final empty line seen; LF next.
    EndLf,
    /// The whole body, trailers included, has been read.
    Done,
}

/// An incremental decoder of `Transfer-Encoding: chunked`: feed it the bytes as they
/// come, in pieces of any size; it hands back the data, ignores chunk extensions,
/// reads and discards trailers, and stops after the final empty line.
#[derive(Clone, Debug)]
pub struct ChunkDecoder {
    state: Chunk,
    /// Bytes of the current chunk-size line, or of the trailer section so far.
    line: usize,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        ChunkDecoder {
            state: Chunk::Size { size: 0, digits: 0 },
            line: 0,
        }
    }
}

impl ChunkDecoder {
    /// Decodes from the front of `input`, advancing it, until it has a piece of data
    /// to hand back (`Some`, a part of `input`) or `input` is used up or the body
    /// ends (`None`). Nothing after the end of the body is consumed.
    ///
    /// # Errors
    /// Broken framing; the decoder must not be used afterwards.
    pub fn decode<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, ChunkError> {
        loop {
            match self.state {
                Chunk::Done => return Ok(None),
                _ if input.is_empty() => return Ok(None),
                Chunk::Data { left } => {
                    let n = usize::try_from(left).map_or(input.len(), |l| l.min(input.len()));
                    let (data, rest) = input.split_at(n);
                    *input = rest;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data { left }
                    };
                    return Ok(Some(data));
                }
                _ => {
                    let b = input[0];
                    *input = &input[1..];
                    self.step(b)?;
                }
            }
        }
    }

    /// Whether the body has ended (last chunk and trailers read).
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Whether the decoder is in the trailers (all the data has come).
    pub fn in_trailers(&self) -> bool {
        matches!(
            self.state,
            Chunk::TrailerStart | Chunk::Trailer | Chunk::TrailerLf | Chunk::EndLf
        )
    }

    /// One framing byte.
    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        self.state = match self.state {
            Chunk::Size { size, digits } => {
                if let Some(d) = char::from(b).to_digit(16) {
                    self.count_size_line()?;
                    let size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(d)))
                        .ok_or(ChunkError::SizeOverflow)?;
                    Chunk::Size {
                        size,
                        digits: digits + 1,
                    }
                } else if digits == 0 {
                    return Err(ChunkError::BadSize);
                } else if b == b'\r' {
                    Chunk::SizeLf { size }
                } else if matches!(b, b';' | b' ' | b'\t') {
                    self.count_size_line()?;
                    Chunk::Extension { size }
                } else if b == b'\n' {
                    return Err(ChunkError::BadLineEnd);
                } else {
                    return Err(ChunkError::BadSize);
                }
            }
            Chunk::Extension { size } => match b {
                b'\r' => Chunk::SizeLf { size },
                b'\n' => return Err(ChunkError::BadLineEnd),
                b'\t' => {
                    self.count_size_line()?;
                    Chunk::Extension { size }
                }
                0..0x20 | 0x7f => return Err(ChunkError::BadExtension),
                _ => {
                    self.count_size_line()?;
                    Chunk::Extension { size }
                }
            },
            Chunk::SizeLf { size } => {
                if b != b'\n' {
                    return Err(ChunkError::BadLineEnd);
                }
                self.line = 0;
                if size == 0 {
                    Chunk::TrailerStart
                } else {
                    Chunk::Data { left: size }
                }
            }
            Chunk::DataCr if b == b'\r' => Chunk::DataLf,
            Chunk::DataLf if b == b'\n' => Chunk::Size { size: 0, digits: 0 },
            Chunk::DataCr | Chunk::DataLf => return Err(ChunkError::NoCrlfAfterData),
            Chunk::TrailerStart => {
                self.count_trailer()?;
                match b {
                    b'\r' => Chunk::EndLf,
                    b'\n' => return Err(ChunkError::BadLineEnd),
                    _ => Chunk::Trailer,
                }
            }
            Chunk::Trailer => {
                self.count_trailer()?;
                match b {
                    b'\r' => Chunk::TrailerLf,
                    b'\n' => return Err(ChunkError::BadLineEnd),
                    _ => Chunk::Trailer,
                }
            }
            Chunk::TrailerLf | Chunk::EndLf if b != b'\n' => return Err(ChunkError::BadLineEnd),
            Chunk::TrailerLf => {
                self.count_trailer()?;
                Chunk::TrailerStart
            }
            Chunk::EndLf => Chunk::Done,
            // `decode` handles these without calling here.
            Chunk::Data { .. } | Chunk::Done => self.state,
        };
        Ok(())
    }

    fn count_size_line(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_CHUNK_LINE {
            return Err(ChunkError::SizeLineTooLong);
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_TRAILERS {
            return Err(ChunkError::TrailersTooLong);
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ response

/// The parts of a response head the client acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The reason phrase, made printable.
    pub reason: String,
    /// `Content-Length`, if given.
    pub content_length: Option<u64>,
    /// Whether the body is chunked.
    pub chunked: bool,
}

/// Parses a complete head (status line and header lines, without the empty line
/// that ends it).
fn parse_head(raw: &[u8]) -> Result<Head, HttpError> {
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty());
    let status_line = lines.next().unwrap_or_default();
    let (status, reason) = parse_status_line(status_line)?;
    let mut head = Head {
        status,
        reason,
        content_length: None,
        chunked: false,
    };
    let mut codings: Vec<String> = Vec::new();
    for line in lines {
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(HttpError::FoldedHeader);
        }
        let bad = || HttpError::BadHeaderLine(printable(line));
        if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(bad());
        }
        let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad());
        }
        let value = value.trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            for v in value.split(|&b| b == b',') {
                let v = v.trim_ascii();
                let n = parse_decimal(v)
                    .ok_or_else(|| HttpError::BadContentLength(printable(value)))?;
                if head.content_length.is_some_and(|m| m != n) {
                    return Err(HttpError::ConflictingContentLength);
                }
                head.content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            codings.extend(
                value
                    .split(|&b| b == b',')
                    .map(|c| c.trim_ascii())
                    .filter(|c| !c.is_empty())
                    .map(|c| printable(c).to_ascii_lowercase()),
            );
        }
    }
    match codings.as_slice() {
        [] => {}
        [c] if c == "chunked" => head.chunked = true,
        _ => return Err(HttpError::TransferEncoding(codings.join(", "))),
    }
    Ok(head)
}

/// `HTTP/1.x SSS reason` → (status, printable reason).
fn parse_status_line(line: &[u8]) -> Result<(u16, String), HttpError> {
    let Some(rest) = line.strip_prefix(b"HTTP/") else {
        return Err(HttpError::NotHttp(printable(line)));
    };
    let (version, rest) = rest.split_at(rest.iter().position(|&b| b == b' ').unwrap_or(rest.len()));
    if !matches!(version, [b'1', b'.', d] if d.is_ascii_digit()) {
        return Err(HttpError::Version(printable(version)));
    }
    let bad = || HttpError::BadStatusLine(printable(line));
    let rest = rest.strip_prefix(b" ").ok_or_else(bad)?;
    let (code, reason) = match rest.get(3) {
        None => (rest, &b""[..]),
        Some(b' ') => (&rest[..3], &rest[4..]),
        Some(_) => return Err(bad()),
    };
    let status = match code {
        [a @ b'1'..=b'5', b, c] if b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(bad()),
    };
    if reason
        .iter()
        .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(bad());
    }
    Ok((status, printable(reason)))
}

/// A header field name character (RFC 9110 `tchar`).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `1*DIGIT` as a u64; `None` when empty, not all digits, or too large.
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// How the body of a response is delimited.
#[derive(Clone, Debug)]
enum Body {
    /// By `Content-Length`: this many bytes are still to come.
    Length { left: u64, total: u64 },
    /// By chunked transfer coding.
    Chunked(ChunkDecoder),
    /// By the end of the connection.
    UntilClose,
}

/// Where a [`Response`] is.
#[derive(Clone, Debug)]
enum Phase {
    /// Reading a head: the bytes so far, and where the current line starts.
    Head { bytes: Vec<u8>, line_start: usize },
    /// Reading the body.
    Body(Body),
    /// The response is complete.
    Done,
}

/// How far a response got, for the verdict when the connection ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not one byte yet.
    Nothing,
    /// In the head.
    Head,
    /// In a body of `total` bytes; `received` so far.
    Length { received: u64, total: u64 },
    /// In a chunked body; `received` bytes of data so far; `trailers`: all the data
    /// came, the trailers did not end.
    Chunked { received: u64, trailers: bool },
    /// In a body that ends with the connection; `received` bytes so far.
    UntilClose { received: u64 },
    /// Complete.
    Done,
}

/// A response read incrementally: the head (interim `1xx` heads skipped), then the
/// body handed back piece by piece as parts of the input.
#[derive(Clone, Debug)]
pub struct Response {
    phase: Phase,
    /// Head bytes read so far, interim heads included (bounded by [`MAX_HEAD`]).
    head_bytes: usize,
    /// The final head, once read.
    head: Option<Head>,
    /// Body bytes handed back so far.
    received: u64,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            phase: Phase::Head {
                bytes: Vec::new(),
                line_start: 0,
            },
            head_bytes: 0,
            head: None,
            received: 0,
        }
    }
}

impl Response {
    /// Reads from the front of `input`, advancing it, until it has a piece of body to
    /// hand back (`Some`, a part of `input`) or `input` is used up or the response is
    /// complete (`None`; see [`is_complete`](Response::is_complete)). Bytes after the
    /// end of the response are left in `input`.
    ///
    /// # Errors
    /// A malformed or oversized response; the reader must not be used afterwards.
    pub fn next_body<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, HttpError> {
        loop {
            let piece = match &mut self.phase {
                Phase::Done => return Ok(None),
                Phase::Head { .. } if input.is_empty() => return Ok(None),
                Phase::Head { bytes, line_start } => {
                    let Some(head) = read_head(bytes, line_start, &mut self.head_bytes, input)?
                    else {
                        continue;
                    };
                    let head = parse_head(&head)?;
                    self.phase = match head.status {
                        101 => return Err(HttpError::SwitchingProtocols),
                        100..=199 => Phase::Head {
                            bytes: Vec::new(),
                            line_start: 0,
                        },
                        204 | 304 => Phase::Done,
                        _ if head.chunked => Phase::Body(Body::Chunked(ChunkDecoder::default())),
                        _ => match head.content_length {
                            Some(0) => Phase::Done,
                            Some(n) => Phase::Body(Body::Length { left: n, total: n }),
                            None => Phase::Body(Body::UntilClose),
                        },
                    };
                    if head.status >= 200 {
                        self.head = Some(head);
                    }
                    continue;
                }
                Phase::Body(Body::Length { left, .. }) => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                    *left -= n as u64;
                    if *left == 0 {
                        self.phase = Phase::Done;
                    }
                    let (piece, rest) = input.split_at(n);
                    *input = rest;
                    piece
                }
                Phase::Body(Body::Chunked(decoder)) => match decoder.decode(input)? {
                    Some(piece) => piece,
                    None if decoder.is_done() => {
                        self.phase = Phase::Done;
                        return Ok(None);
                    }
                    None => return Ok(None),
                },
                Phase::Body(Body::UntilClose) => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    std::mem::take(input)
                }
            };
            self.received += piece.len() as u64;
            return Ok(Some(piece));
        }
    }

    /// The peer finished sending: a body delimited by the end of the connection is
    /// complete now. Returns whether the response is complete.
    pub fn end_of_input(&mut self) -> bool {
        if matches!(self.phase, Phase::Body(Body::UntilClose)) {
            self.phase = Phase::Done;
        }
        self.is_complete()
    }

    /// Whether the whole response has been read.
    pub fn is_complete(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// The final head, once read.
    pub fn head(&self) -> Option<&Head> {
        self.head.as_ref()
    }

    /// How far the response got.
    pub fn progress(&self) -> Progress {
        let received = self.received;
        match &self.phase {
            Phase::Head { .. } if self.head_bytes == 0 => Progress::Nothing,
            Phase::Head { .. } => Progress::Head,
            Phase::Body(Body::Length { total, .. }) => Progress::Length {
                received,
                total: *total,
            },
            Phase::Body(Body::Chunked(d)) => Progress::Chunked {
                received,
                trailers: d.in_trailers(),
            },
            Phase::Body(Body::UntilClose) => Progress::UntilClose { received },
            Phase::Done => Progress::Done,
        }
    }
}

/// Moves bytes from `input` into the head being read, up to and including the empty
/// line that ends it (LF, or CRLF). Returns the head once complete.
fn read_head(
    bytes: &mut Vec<u8>,
    line_start: &mut usize,
    total: &mut usize,
    input: &mut &[u8],
) -> Result<Option<Vec<u8>>, HttpError> {
    while let Some((&b, rest)) = input.split_first() {
        *input = rest;
        *total += 1;
        if *total > MAX_HEAD {
            return Err(HttpError::HeadTooLong);
        }
        bytes.push(b);
        if b == b'\n' {
            let line = &bytes[*line_start..bytes.len() - 1];
            if line.is_empty() || line == b"\r" {
                return Ok(Some(std::mem::take(bytes)));
            }
            *line_start = bytes.len();
        }
    }
    Ok(None)
}

// ------------------------------------------------------------------ tests

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in the pieces `cuts` makes; returns the data or the error.
    fn decode_split(wire: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, bool, usize), ChunkError> {
        let mut d = ChunkDecoder::default();
        let mut out = Vec::new();
        let mut left_over = 0;
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&wire.len())) {
            let mut input = &wire[from..to];
            while let Some(piece) = d.decode(&mut input)? {
                out.extend_from_slice(piece);
            }
            left_over += input.len();
            from = to;
        }
        Ok((out, d.is_done(), left_over))
    }

    /// Every way to cut `wire` in two and in three, and one byte at a time: each gives
    /// `expect` (data, done, bytes left after the end).
    fn check_every_split(wire: &[u8], expect: &Result<(Vec<u8>, bool, usize), ChunkError>) {
        assert_eq!(&decode_split(wire, &[]), expect, "whole");
        for i in 0..=wire.len() {
            assert_eq!(&decode_split(wire, &[i]), expect, "cut at {i}");
            for j in i..=wire.len() {
                assert_eq!(&decode_split(wire, &[i, j]), expect, "cut at {i}, {j}");
            }
        }
        let bytes: Vec<usize> = (1..wire.len()).collect();
        assert_eq!(&decode_split(wire, &bytes), expect, "one byte at a time");
    }

    #[test]
    fn chunked_with_extensions_and_trailers_at_every_split() {
        let wire = b"5;name=value\r\nhello\r\n7 ; a=\"b;c\"\t\r\n, world\r\n\
                     00\r\nExpires: never\r\nX-Checksum: 1\r\n\r\nNEXT";
        check_every_split(wire, &Ok((b"hello, world".to_vec(), true, 4)));
    }

    #[test]
    fn chunked_hex_sizes_and_no_trailers() {
        let data: Vec<u8> = (0..=255u8).cycle().take(0x1a + 0xFF).collect();
        let mut wire = b"1a\r\n".to_vec();
        wire.extend_from_slice(&data[..0x1a]);
        wire.extend_from_slice(b"\r\nFf\r\n");
        wire.extend_from_slice(&data[0x1a..]);
        wire.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(decode_split(&wire, &[]), Ok((data.clone(), true, 0)));
        let bytes: Vec<usize> = (1..wire.len()).collect();
        assert_eq!(decode_split(&wire, &bytes), Ok((data, true, 0)));
    }

    #[test]
    fn malformed_chunked_at_every_split() {
        let cases: [(&[u8], ChunkError); 11] = [
            (b"xyz\r\n", ChunkError::BadSize),
            (b"\r\nhello", ChunkError::BadSize),
            (b"5x\r\nhello\r\n", ChunkError::BadSize),
            (b";ext\r\n", ChunkError::BadSize),
            (b"5\r\nhelloX\r\n0\r\n\r\n", ChunkError::NoCrlfAfterData),
            (b"5\r\nhello\rX0\r\n\r\n", ChunkError::NoCrlfAfterData),
            (b"5\nhello\r\n", ChunkError::BadLineEnd),
            (b"5\rhello\r\n", ChunkError::BadLineEnd),
            (b"5;a\x00b\r\nhello\r\n", ChunkError::BadExtension),
            (b"0\r\nTrailer: x\n\r\n", ChunkError::BadLineEnd),
            (b"10000000000000000\r\n", ChunkError::SizeOverflow),
        ];
        for (wire, err) in cases {
            check_every_split(wire, &Err(err));
        }
    }

    #[test]
    fn chunk_size_line_is_bounded() {
        // Exactly the limit is fine (leading zeros count).
        let mut wire = vec![b'0'; MAX_CHUNK_LINE - 1];
        wire.extend_from_slice(b"3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(decode_split(&wire, &[]), Ok((b"abc".to_vec(), true, 0)));
        // One more, in digits or in an extension, is not.
        let mut wire = vec![b'0'; MAX_CHUNK_LINE];
        wire.extend_from_slice(b"3\r\nabc\r\n");
        assert_eq!(decode_split(&wire, &[]), Err(ChunkError::SizeLineTooLong));
        let mut wire = b"3;".to_vec();
        wire.resize(MAX_CHUNK_LINE + 1, b'x');
        wire.extend_from_slice(b"\r\nabc\r\n");
        assert_eq!(decode_split(&wire, &[]), Err(ChunkError::SizeLineTooLong));
        // The limit is per line: many short lines are fine.
        let wire = b"1;aaaa\r\na\r\n".repeat(MAX_CHUNK_LINE);
        let (data, done, _) = decode_split(&wire, &[]).unwrap();
        assert_eq!((data.len(), done), (MAX_CHUNK_LINE, false));
    }

    #[test]
    fn trailers_are_bounded() {
        let mut wire = b"0\r\n".to_vec();
        while wire.len() < MAX_TRAILERS + 100 {
            wire.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(decode_split(&wire, &[]), Err(ChunkError::TrailersTooLong));
    }

    #[test]
    fn chunked_cut_short_is_not_done() {
        for wire in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r\n",
            b"5\r\nhello\r\n0\r\n",
            b"5\r\nhello\r\n0\r\nTrailer: x\r\n",
            b"5\r\nhello\r\n0\r\n\r",
        ] {
            let (_, done, _) = decode_split(wire, &[]).unwrap();
            assert!(!done, "{wire:?}");
        }
    }

    /// Reads `wire` through a [`Response`] in the pieces `cuts` makes.
    fn read_split(wire: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, bool), HttpError> {
        let mut r = Response::default();
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&wire.len())) {
            let mut input = &wire[from..to];
            while let Some(piece) = r.next_body(&mut input)? {
                out.extend_from_slice(piece);
            }
            from = to;
        }
        Ok((out, r.is_complete()))
    }

    fn read_every_split(wire: &[u8]) -> Result<(Vec<u8>, bool), HttpError> {
        let whole = read_split(wire, &[]);
        for i in 0..=wire.len() {
            assert_eq!(read_split(wire, &[i]), whole, "cut at {i}");
        }
        let bytes: Vec<usize> = (1..wire.len()).collect();
        assert_eq!(read_split(wire, &bytes), whole, "one byte at a time");
        whole
    }

    #[test]
    fn response_with_content_length() {
        let wire = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhelloEXTRA";
        assert_eq!(read_every_split(wire), Ok((b"hello".to_vec(), true)));
        let mut r = Response::default();
        let mut input = &wire[..];
        while r.next_body(&mut input).unwrap().is_some() {}
        assert_eq!(input, b"EXTRA", "nothing after the response is consumed");
        let head = r.head().unwrap();
        assert_eq!((head.status, head.reason.as_str()), (200, "OK"));
    }

    #[test]
    fn response_chunked_after_interim_heads() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                     HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Length: 99\r\n\r\n\
                     3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(read_every_split(wire), Ok((b"abc".to_vec(), true)));
    }

    #[test]
    fn response_until_close_and_bare_lf_heads() {
        let wire = b"HTTP/1.0 200 OK\nServer: x\n\nbody";
        let (body, done) = read_every_split(wire).unwrap();
        assert_eq!((body.as_slice(), done), (&b"body"[..], false));
        let mut r = Response::default();
        let mut input = &wire[..];
        while r.next_body(&mut input).unwrap().is_some() {}
        assert_eq!(r.progress(), Progress::UntilClose { received: 4 });
        assert!(r.end_of_input());
    }

    #[test]
    fn responses_without_body() {
        for wire in [
            &b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"[..],
            b"HTTP/1.1 304 Not Modified\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert_eq!(read_every_split(wire), Ok((Vec::new(), true)), "{wire:?}");
        }
    }

    #[test]
    fn progress_tells_how_far() {
        let mut r = Response::default();
        assert_eq!(r.progress(), Progress::Nothing);
        let mut input = &b"HTTP/1.1 200 OK\r\nContent-"[..];
        assert_eq!(r.next_body(&mut input), Ok(None));
        assert_eq!(r.progress(), Progress::Head);
        let mut input = &b"Length: 1000\r\n\r\n0123456789"[..];
        while r.next_body(&mut input).unwrap().is_some() {}
        assert_eq!(
            r.progress(),
            Progress::Length {
                received: 10,
                total: 1000
            }
        );
        assert!(!r.end_of_input());
        let mut r = Response::default();
        let mut input =
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n"[..];
        while r.next_body(&mut input).unwrap().is_some() {}
        assert_eq!(
            r.progress(),
            Progress::Chunked {
                received: 2,
                trailers: true
            }
        );
    }

    #[test]
    fn malformed_responses() {
        let cases: [(&[u8], HttpError); 14] = [
            (
                b"SSH-2.0-OpenSSH\r\n\r\n",
                HttpError::NotHttp("SSH-2.0-OpenSSH".into()),
            ),
            (b"\r\n\r\n", HttpError::NotHttp(String::new())),
            (b"HTTP/2 200\r\n\r\n", HttpError::Version("2".into())),
            (
                b"HTTP/1.1 20 OK\r\n\r\n",
                HttpError::BadStatusLine("HTTP/1.1 20 OK".into()),
            ),
            (
                b"HTTP/1.1 200OK\r\n\r\n",
                HttpError::BadStatusLine("HTTP/1.1 200OK".into()),
            ),
            (
                b"HTTP/1.1 700 X\r\n\r\n",
                HttpError::BadStatusLine("HTTP/1.1 700 X".into()),
            ),
            (
                b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
                HttpError::BadHeaderLine("No colon".into()),
            ),
            (
                b"HTTP/1.1 200 OK\r\nA b: c\r\n\r\n",
                HttpError::BadHeaderLine("A b: c".into()),
            ),
            (
                b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
                HttpError::BadHeaderLine("A: b?c".into()),
            ),
            (
                b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
                HttpError::FoldedHeader,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                HttpError::BadContentLength("-1".into()),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                HttpError::ConflictingContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                HttpError::TransferEncoding("gzip, chunked".into()),
            ),
            (
                b"HTTP/1.1 101 Switching\r\n\r\n",
                HttpError::SwitchingProtocols,
            ),
        ];
        for (wire, err) in cases {
            assert_eq!(read_every_split(wire), Err(err), "{wire:?}");
        }
        // A Content-Length past u64 is an error, not a wrap-around.
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n";
        assert!(matches!(
            read_split(wire, &[]),
            Err(HttpError::BadContentLength(_))
        ));
        // A repeated, equal Content-Length is accepted.
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(read_split(wire, &[]), Ok((b"ab".to_vec(), true)));
        // Broken chunked framing comes through.
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(
            read_split(wire, &[]),
            Err(HttpError::Chunk(ChunkError::BadSize))
        );
    }

    /// A small xorshift generator: the same inputs on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A response as a server might send it: a random framing (length, chunked with
    /// extensions and trailers, until close, interim heads first) and body.
    fn generate_response(rng: &mut Rng) -> Vec<u8> {
        let mut wire = Vec::new();
        if rng.below(5) == 0 {
            wire.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        wire.extend_from_slice(
            [&b"HTTP/1.1 200 OK\r\n"[..], b"HTTP/1.0 404 Nope\r\n"][rng.below(2)],
        );
        let body: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
        let eol = |rng: &mut Rng| [&b"\r\n"[..], b"\n"][usize::from(rng.below(8) == 0)];
        for _ in 0..rng.below(3) {
            wire.extend_from_slice(b"X-Other: value");
            wire.extend_from_slice(eol(rng));
        }
        match rng.below(3) {
            0 => {
                wire.extend_from_slice(format!("Content-Length: {}", body.len()).as_bytes());
                wire.extend_from_slice(eol(rng));
                wire.extend_from_slice(eol(rng));
                wire.extend_from_slice(&body);
            }
            1 => {
                wire.extend_from_slice(b"Transfer-Encoding: chunked");
                wire.extend_from_slice(eol(rng));
                wire.extend_from_slice(eol(rng));
                let mut rest = &body[..];
                while !rest.is_empty() {
                    let n = 1 + rng.below(rest.len());
                    let ext = [&b""[..], b";a=b", b" ; q=\"x;y\""][rng.below(3)];
                    wire.extend_from_slice(format!("{n:x}").as_bytes());
                    wire.extend_from_slice(ext);
                    wire.extend_from_slice(b"\r\n");
                    wire.extend_from_slice(&rest[..n]);
                    wire.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                wire.extend_from_slice(b"0\r\n");
                for _ in 0..rng.below(3) {
                    wire.extend_from_slice(b"Trailer: t\r\n");
                }
                wire.extend_from_slice(b"\r\n");
            }
            _ => {
                wire.extend_from_slice(eol(rng));
                wire.extend_from_slice(&body);
            }
        }
        wire
    }

    /// Damages a response: a byte changed to one the framing cares about, a byte
    /// removed, or the end cut off.
    fn damage(rng: &mut Rng, wire: &mut Vec<u8>) {
        if wire.is_empty() {
            return;
        }
        let at = rng.below(wire.len());
        match rng.below(3) {
            0 => {
                let framing = b"\r\n;: 0fzX\x00\xff";
                wire[at] = framing[rng.below(framing.len())];
            }
            1 => {
                wire.remove(at);
            }
            _ => wire.truncate(at),
        }
    }

    /// Thousands of generated responses, well-formed and damaged: none panics, and
    /// each gives the same body, completion and error whether fed whole, cut at
    /// random points, or one byte at a time.
    #[test]
    fn generated_responses_read_the_same_however_cut() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut complete = 0;
        for i in 0..4000 {
            let mut wire = generate_response(&mut rng);
            if i % 2 == 1 {
                for _ in 0..1 + rng.below(2) {
                    damage(&mut rng, &mut wire);
                }
            }
            let whole = read_split(&wire, &[]);
            if i % 2 == 0 {
                // Undamaged: complete, unless the body runs until the close.
                let mut r = Response::default();
                let mut input = &wire[..];
                while r.next_body(&mut input).unwrap().is_some() {}
                assert!(r.end_of_input(), "{wire:?}");
                complete += 1;
            }
            let mut cuts: Vec<usize> = (0..rng.below(5))
                .map(|_| rng.below(wire.len() + 1))
                .collect();
            cuts.sort_unstable();
            assert_eq!(read_split(&wire, &cuts), whole, "{wire:?} cut at {cuts:?}");
            let bytes: Vec<usize> = (1..wire.len()).collect();
            assert_eq!(read_split(&wire, &bytes), whole, "{wire:?} byte by byte");
        }
        assert_eq!(complete, 2000);
    }

    /// Generated URLs, mostly well-formed, some with characters that must be encoded
    /// or refused: parsing never panics, and what it accepts yields a request line
    /// and `Host` header of printable ASCII with no space but the separators.
    #[test]
    fn generated_urls_never_make_unsafe_requests() {
        const HOSTS: [&str; 6] = ["h", "127.0.0.1", "[::1]", "[2001:db8::7]", "a-b.c_d", "h o"];
        const PORTS: [&str; 6] = ["", ":", ":80", ":8080", ":0", ":x"];
        const PATH: [&str; 16] = [
            "/", "a", "?", "#", "%", "%41", "%4", " ", "\u{e9}", "\u{2603}", "\"", "<>", "\r\n",
            "\t", "\x1b", "[]",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for _ in 0..5000 {
            let mut url = format!("http://{}{}", HOSTS[rng.below(6)], PORTS[rng.below(6)]);
            for _ in 0..rng.below(8) {
                url.push_str(PATH[rng.below(PATH.len())]);
            }
            let Ok(parsed) = parse_url(&url) else {
                continue;
            };
            accepted += 1;
            let request = build_request(&parsed).unwrap();
            let mut lines = request.split(|&b| b == b'\n');
            let line = lines.next().unwrap().strip_suffix(b"\r").unwrap();
            let host = lines.next().unwrap().strip_suffix(b"\r").unwrap();
            for part in [line, host] {
                assert!(
                    part.iter().all(|&b| (0x20..0x7f).contains(&b)),
                    "{url:?}: {part:?}"
                );
            }
            assert_eq!(line.iter().filter(|&&b| b == b' ').count(), 2, "{url:?}");
            assert_eq!(host.iter().filter(|&&b| b == b' ').count(), 1, "{url:?}");
        }
        assert!(
            accepted > 500,
            "only {accepted} URLs accepted: the generator is off"
        );
    }

    #[test]
    fn head_is_bounded() {
        let mut wire = b"HTTP/1.1 200 OK\r\n".to_vec();
        while wire.len() <= MAX_HEAD {
            wire.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(read_split(&wire, &[]), Err(HttpError::HeadTooLong));
        // One endless line too.
        let wire = vec![b'H'; MAX_HEAD + 1];
        assert_eq!(read_split(&wire, &[]), Err(HttpError::HeadTooLong));
        // Interim heads count towards the same limit.
        let wire = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_HEAD / 25 + 1);
        assert_eq!(read_split(&wire, &[]), Err(HttpError::HeadTooLong));
    }

    #[test]
    fn urls() {
        let u = parse_url("http://example.com").unwrap();
        assert_eq!(
            u,
            Url {
                host: "example.com".into(),
                ipv6: false,
                port: 80,
                target: "/".into()
            }
        );
        assert_eq!(u.host_header(), "example.com");
        let u = parse_url("HTTP://127.0.0.1:8080/a/b?c=d#frag").unwrap();
        assert_eq!((u.port, u.target.as_str()), (8080, "/a/b?c=d"));
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        assert_eq!(parse_url("http://h:80/x").unwrap().host_header(), "h");
        assert_eq!(parse_url("http://h:/x").unwrap().port, 80);
        assert_eq!(parse_url("http://h:00080/").unwrap().port, 80);
        assert_eq!(parse_url("http://h?q=1").unwrap().target, "/?q=1");
        let u = parse_url("http://[::1]:8080/x").unwrap();
        assert_eq!((u.host.as_str(), u.ipv6), ("::1", true));
        assert_eq!(u.host_header(), "[::1]:8080");
        assert_eq!(parse_url("http://[::1]/").unwrap().host_header(), "[::1]");
        assert_eq!(
            parse_url("http://[2001:db8::1]:65535")
                .unwrap()
                .host_header(),
            "[2001:db8::1]:65535"
        );
    }

    #[test]
    fn targets_are_percent_encoded() {
        let target = |url: &str| parse_url(url).unwrap().target;
        assert_eq!(target("http://h/a b"), "/a%20b");
        assert_eq!(
            target("http://h/caf\u{e9}?q=\u{2603}"),
            "/caf%C3%A9?q=%E2%98%83"
        );
        assert_eq!(
            target("http://h/\"<>\\^`{|}[]"),
            "/%22%3C%3E%5C%5E%60%7B%7C%7D%5B%5D"
        );
        assert_eq!(target("http://h/50%25/%zz/%"), "/50%25/%25zz/%25");
        assert_eq!(
            target("http://h/-._~!$&'()*+,;=:@/?/?"),
            "/-._~!$&'()*+,;=:@/?/?"
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for (url, says) in [
            ("http://h/a\r\nX-Injected: 1", "control character 0x0d"),
            ("http://h/a\nb", "control character 0x0a"),
            ("http://h/a\tb", "control character 0x09"),
            ("http://h/a\x7f", "control character 0x7f"),
            ("http://h\r\n/", "control character"),
            ("https://h/", "only http://"),
            ("ftp://h/", "only http://"),
            ("h/", "not an http:// URL"),
            ("http://", "no host"),
            ("http:///x", "no host"),
            ("http://:80/", "no host"),
            ("http://u:p@h/", "user information"),
            ("http://h:0/", "not between 1 and 65535"),
            ("http://h:65536/", "not between 1 and 65535"),
            ("http://h:99999999999999999999/", "not between 1 and 65535"),
            ("http://h:+80/", "bad port"),
            ("http://h:8a/", "bad port"),
            ("http://::1/", "in brackets"),
            ("http://[::1/", "unclosed ["),
            ("http://[::1]x/", "only :PORT"),
            ("http://[::g]/", "not an IPv6 address"),
            ("http://[fe80::1%25eth0]/", "not an IPv6 address"),
            ("http://h o/", "not allowed in a host name"),
            ("http://h\u{e9}/", "not allowed in a host name"),
            ("http://h%41/", "not allowed in a host name"),
        ] {
            let err = parse_url(url).expect_err(url);
            assert!(err.contains(says), "{url:?}: {err}");
        }
    }

    #[test]
    fn requests() {
        let url = parse_url("http://[::1]:8080/a b").unwrap();
        let req = String::from_utf8(build_request(&url).unwrap()).unwrap();
        assert!(
            req.starts_with("GET /a%20b HTTP/1.1\r\nHost: [::1]:8080\r\n"),
            "{req}"
        );
        assert!(req.ends_with("Connection: close\r\n\r\n"), "{req}");
        assert_eq!(
            req.matches("\r\n").count(),
            7,
            "six header lines and the end: {req}"
        );
        let long = format!("http://h/{}", "a".repeat(MAX_REQUEST));
        let err = build_request(&parse_url(&long).unwrap()).unwrap_err();
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn printable_strips_terminal_controls() {
        assert_eq!(printable(b"OK\x1b[31m\xff"), "OK?[31m?");
        assert_eq!(printable(&[b'a'; 100]), format!("{}...", "a".repeat(80)));
    }
}
