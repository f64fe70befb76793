//! The command line the server examples share, every value checked: a bad one is a
//! message (the program prints it with its usage and exits with status 2), never a
//! panic.

use std::time::Duration;

use asyncore::Backend;

/// The shortest `--idle-timeout`: below a millisecond, every connection would be
/// idle before it could send anything.
pub const MIN_SECS: f64 = 0.001;
/// The longest `--idle-timeout`: a week. Longer is as good as never (leave the option
/// out), and the range keeps `Duration` arithmetic far from overflow.
pub const MAX_SECS: f64 = 7.0 * 24.0 * 3600.0;

/// The options every server example takes: `[ADDR] [--backend select|poll|epoll]
/// [--max-conns N] [--idle-timeout SECS] [--quiet]`, plus whatever options the
/// program adds.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerArgs {
    /// Where to listen (see [`super::listen`]), checked to be well-formed.
    pub addr: String,
    /// `--backend`.
    pub backend: Backend,
    /// `--max-conns`: connections served at once.
    pub max_conns: usize,
    /// `--idle-timeout`: close a connection that sends nothing for this long.
    pub idle: Option<Duration>,
    /// `--quiet`: no line per connection.
    pub quiet: bool,
}

impl ServerArgs {
    /// Parses `args` (without the program name). `default_addr` and `max_conns` (also
    /// the default) set the limits; `extra(option, rest)` is asked about every other
    /// option and returns `Ok(true)` if it took it (pulling any value from `rest`,
    /// e.g. with [`value`]). `Ok(None)` means `-h`/`--help` was asked for.
    ///
    /// # Errors
    /// A message naming the bad argument and what would be accepted.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        default_addr: &str,
        max_conns: usize,
        mut extra: impl FnMut(&str, &mut dyn Iterator<Item = String>) -> Result<bool, String>,
    ) -> Result<Option<ServerArgs>, String> {
        let mut parsed = ServerArgs {
            addr: default_addr.to_string(),
            backend: Backend::Select,
            max_conns,
            idle: None,
            quiet: false,
        };
        let mut it = args.into_iter();
        let mut addr_seen = false;
        while let Some(a) = it.next() {
            match a.as_str() {
                "-h" | "--help" => return Ok(None),
                "--backend" => {
                    let v = value(&a, &mut it)?;
                    parsed.backend = v.parse().map_err(|e| format!("--backend {v}: {e}"))?;
                }
                "--max-conns" => {
                    parsed.max_conns = count(&a, &value(&a, &mut it)?, 1, max_conns)?;
                }
                "--idle-timeout" => parsed.idle = Some(seconds(&a, &value(&a, &mut it)?)?),
                "--quiet" => parsed.quiet = true,
                s if s.starts_with('-') && s.len() > 1 => {
                    if !extra(s, &mut it)? {
                        return Err(format!("unknown option {s}"));
                    }
                }
                s if !addr_seen => {
                    check_addr(s)?;
                    parsed.addr = s.to_string();
                    addr_seen = true;
                }
                s => return Err(format!("unexpected argument {s}")),
            }
        }
        Ok(Some(parsed))
    }
}

/// The value after `option`.
///
/// # Errors
/// There is none.
pub fn value(option: &str, rest: &mut dyn Iterator<Item = String>) -> Result<String, String> {
    rest.next().ok_or_else(|| format!("{option} needs a value"))
}

/// A whole number from `min` to `max` for `option`.
///
/// # Errors
/// Anything else, with the range in the message.
pub fn count(option: &str, v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{option} {v}: must be a whole number from {min} to {max}"
        )),
    }
}

/// A number of seconds from [`MIN_SECS`] to [`MAX_SECS`] for `option` (a fraction is
/// fine: `0.5`).
///
/// # Errors
/// Anything else (not a number, infinite, NaN, out of range), with the range in the
/// message.
pub fn seconds(option: &str, v: &str) -> Result<Duration, String> {
    let bad = || format!("{option} {v}: must be a number of seconds from {MIN_SECS} to {MAX_SECS}");
    let secs: f64 = v.parse().map_err(|_| bad())?;
    // NaN fails both comparisons.
    if !(MIN_SECS..=MAX_SECS).contains(&secs) {
        return Err(bad());
    }
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// Checks that `spec` is `HOST:PORT` (an IP address), `[V6]:PORT` or `unix:PATH`
/// with a path that fits a Unix-domain address.
///
/// # Errors
/// A message saying which forms are accepted.
pub fn check_addr(spec: &str) -> Result<(), String> {
    let ok = match spec.strip_prefix("unix:") {
        Some(path) => !path.is_empty() && asyncore::Addr::unix(path).is_ok(),
        None => spec.parse::<std::net::SocketAddr>().is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{spec}: not an address (expected IP:PORT, [IPV6]:PORT or unix:PATH, a path of \
             at most 107 bytes)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn none(_: &str, _: &mut dyn Iterator<Item = String>) -> Result<bool, String> {
        Ok(false)
    }

    fn parse(v: &[&str]) -> Result<Option<ServerArgs>, String> {
        ServerArgs::parse(args(v), "127.0.0.1:1", 10, none)
    }

    #[test]
    fn server_args() {
        let a = parse(&[
            "[::1]:9",
            "--backend",
            "poll",
            "--max-conns",
            "5",
            "--idle-timeout",
            "0.5",
            "--quiet",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            a,
            ServerArgs {
                addr: "[::1]:9".into(),
                backend: Backend::Poll,
                max_conns: 5,
                idle: Some(Duration::from_millis(500)),
                quiet: true,
            }
        );
        assert_eq!(parse(&["--help"]), Ok(None));
        let d = parse(&[]).unwrap().unwrap();
        assert_eq!((d.max_conns, d.idle, d.quiet), (10, None, false));
        for (name, backend) in [
            ("select", Backend::Select),
            ("poll", Backend::Poll),
            ("epoll", Backend::Epoll),
        ] {
            let a = parse(&["--backend", name]).unwrap().unwrap();
            assert_eq!(a.backend, backend);
        }
        let e = parse(&["--backend", "kqueue"]).unwrap_err();
        assert!(e.contains("`select`, `poll` or `epoll`"), "{e}");
        assert!(parse(&["--what"]).is_err());
        assert!(parse(&["127.0.0.1:1", "127.0.0.1:2"]).is_err());
        let mut nodelay = false;
        let a = ServerArgs::parse(args(&["--nodelay"]), "x:1", 10, |o, _| {
            nodelay = o == "--nodelay";
            Ok(nodelay)
        })
        .unwrap()
        .unwrap();
        assert!(nodelay);
        assert_eq!(a.max_conns, 10);
    }

    #[test]
    fn every_number_is_range_checked() {
        for bad in [
            "1e20", "1e30", "inf", "-inf", "nan", "NaN", "0", "-1", "0.0009", "1e-300", "604801",
            "garbage", "", "1s", " 1",
        ] {
            let e = parse(&["--idle-timeout", bad]).unwrap_err();
            assert!(
                e.starts_with("--idle-timeout") && e.contains("0.001 to 604800"),
                "{bad}: {e}"
            );
        }
        for good in ["0.001", "1", "2.5", "604800", "1e2"] {
            assert!(parse(&["--idle-timeout", good]).is_ok(), "{good}");
        }
        for bad in [
            "0",
            "-1",
            "11",
            "1e20",
            "1e30",
            "99999999999999999999999",
            "inf",
            "nan",
            "x",
            "",
            "2.5",
        ] {
            let e = parse(&["--max-conns", bad]).unwrap_err();
            assert!(
                e.starts_with("--max-conns") && e.contains("from 1 to 10"),
                "{bad}: {e}"
            );
        }
        for option in ["--max-conns", "--idle-timeout", "--backend"] {
            assert_eq!(
                parse(&[option]).unwrap_err(),
                format!("{option} needs a value")
            );
        }
    }

    #[test]
    fn addresses_are_checked_when_parsed() {
        for good in ["127.0.0.1:0", "[::1]:8080", "unix:/tmp/x.sock", "unix:rel"] {
            assert!(parse(&[good]).is_ok(), "{good}");
        }
        let long = format!("unix:/{}", "x".repeat(200));
        for bad in [
            "nonsense",
            "unix:",
            "localhost:80",
            "127.0.0.1",
            "127.0.0.1:70000",
            "::1:80",
            long.as_str(),
        ] {
            let e = parse(&[bad]).unwrap_err();
            assert!(e.contains("not an address"), "{bad}: {e}");
        }
    }
}
