//! The HTTP side of `http_client`, without any I/O: the URL and the request.
//!
//! Everything here takes untrusted input (the command line) and answers with an
//! error, never a panic.

use std::net::Ipv6Addr;

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

/// The request for `url`: HTTP/1.0 with `Connection: close`.
///
/// # Errors
/// The request would not fit in [`MAX_REQUEST`] bytes.
pub fn build_request(url: &Url) -> Result<Vec<u8>, String> {
    let text = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: asyncore-rs http_client\r\n\
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

// ------------------------------------------------------------------ tests

#[cfg(test)]
mod tests {
    use super::*;

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
            req.starts_with("GET /a%20b HTTP/1.0\r\nHost: [::1]:8080\r\n"),
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
}
