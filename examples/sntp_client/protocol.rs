//! SNTP (RFC 4330, NTP version 4 packets) without I/O: the client's request, the
//! checks a reply must pass, the offset and delay, and UTC dates. Timestamps are
//! NTP's 64-bit fixed point: seconds since 1900 in the high 32 bits, the fraction
//! in the low 32 bits.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The NTP port.
pub const PORT: u16 = 123;
/// An SNTP packet without extensions or authentication.
pub const PACKET: usize = 48;
/// Seconds from 1900-01-01 (NTP's epoch) to 1970-01-01 (Unix's).
pub const UNIX_EPOCH_NTP: u64 = 2_208_988_800;

/// An NTP timestamp: 32.32 fixed-point seconds since 1900 (modulo 2^32 seconds:
/// era 0 ends in 2036).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The timestamp of `t` (era 0 and the eras after it wrap, as NTP does).
    pub fn from_system(t: SystemTime) -> Timestamp {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = since.as_secs().wrapping_add(UNIX_EPOCH_NTP) & 0xffff_ffff;
        let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
        Timestamp((secs << 32) | frac)
    }

    /// Now, on the system clock.
    pub fn now() -> Timestamp {
        Timestamp::from_system(SystemTime::now())
    }

    /// `self − earlier` in seconds, as NTP computes differences: modulo 2^32
    /// seconds, so the result is right across an era boundary as long as the two
    /// are within 68 years of each other.
    pub fn minus(self, earlier: Timestamp) -> f64 {
        (self.0.wrapping_sub(earlier.0) as i64) as f64 / 4_294_967_296.0
    }

    /// Seconds and nanoseconds since the Unix epoch, choosing the era that puts the
    /// time closest to `near` (a timestamp itself does not say which era it is in).
    pub fn to_unix(self, near: SystemTime) -> (i64, u32) {
        let here = Timestamp::from_system(near);
        let offset = self.minus(here);
        let base = near
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let t = base + offset;
        let secs = t.floor();
        let nanos = ((t - secs) * 1e9).round().min(999_999_999.0) as u32;
        (secs as i64, nanos)
    }

    fn read(b: &[u8]) -> Timestamp {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[..8]);
        Timestamp(u64::from_be_bytes(x))
    }
}

/// The request: leap indicator 0, version 4, mode 3 (client), our transmit
/// timestamp (the server echoes it as the originate timestamp, which is how a reply
/// is matched to its request), everything else zero.
pub fn request(transmit: Timestamp) -> [u8; PACKET] {
    let mut p = [0u8; PACKET];
    p[0] = 4 << 3 | 3;
    p[40..48].copy_from_slice(&transmit.0.to_be_bytes());
    p
}

/// A server's reply, as far as a client uses it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Leap indicator (0–2 here: 3 is refused).
    pub leap: u8,
    /// Version.
    pub version: u8,
    /// Stratum, 1 (a reference clock) to 15.
    pub stratum: u8,
    /// The reference identifier (a clock's code, or an address).
    pub reference_id: [u8; 4],
    /// When the request arrived at the server (T2).
    pub receive: Timestamp,
    /// When the reply left the server (T3).
    pub transmit: Timestamp,
}

/// Why a datagram is not an answer to our request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Shorter than an SNTP packet.
    Short(usize),
    /// Not a server's reply (mode 4).
    Mode(u8),
    /// A version this client does not speak (3 and 4 are accepted).
    Version(u8),
    /// Its originate timestamp is not our request's: an answer to an earlier
    /// request, or a forgery.
    NotOurs,
    /// Kiss-o'-death (stratum 0): the server tells us to stop (or go away); the
    /// code is in the reference identifier.
    Kiss(String),
    /// The server's clock is not synchronized (leap indicator 3).
    Unsynchronized,
    /// A stratum above 15, or a zero transmit timestamp.
    Invalid,
}

impl Refusal {
    /// Whether the client should give up (the server told it something final)
    /// rather than ignore this datagram and wait for a better one.
    pub fn is_final(&self) -> bool {
        matches!(self, Refusal::Kiss(_) | Refusal::Unsynchronized)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Short(n) => write!(f, "a {n}-byte datagram, not an SNTP packet"),
            Refusal::Mode(m) => write!(f, "mode {m}, not a server's reply"),
            Refusal::Version(v) => write!(f, "NTP version {v}"),
            Refusal::NotOurs => f.write_str("a reply to another request"),
            Refusal::Kiss(code) => write!(f, "kiss-o'-death {code}: the server says stop"),
            Refusal::Unsynchronized => {
                f.write_str("the server's clock is not synchronized (leap indicator 3)")
            }
            Refusal::Invalid => f.write_str("an invalid reply (stratum or timestamps)"),
        }
    }
}

/// Checks `packet` as the reply to the request sent with transmit timestamp `sent`.
///
/// # Errors
/// What makes it no answer (see [`Refusal`]).
pub fn parse(packet: &[u8], sent: Timestamp) -> Result<Reply, Refusal> {
    if packet.len() < PACKET {
        return Err(Refusal::Short(packet.len()));
    }
    let leap = packet[0] >> 6;
    let version = (packet[0] >> 3) & 7;
    let mode = packet[0] & 7;
    if mode != 4 {
        return Err(Refusal::Mode(mode));
    }
    if !(3..=4).contains(&version) {
        return Err(Refusal::Version(version));
    }
    if Timestamp::read(&packet[24..]) != sent {
        return Err(Refusal::NotOurs);
    }
    let stratum = packet[1];
    let mut reference_id = [0u8; 4];
    reference_id.copy_from_slice(&packet[12..16]);
    if stratum == 0 {
        let code = reference_id
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
            .collect();
        return Err(Refusal::Kiss(code));
    }
    if leap == 3 {
        return Err(Refusal::Unsynchronized);
    }
    let transmit = Timestamp::read(&packet[40..]);
    if stratum > 15 || transmit.0 == 0 {
        return Err(Refusal::Invalid);
    }
    Ok(Reply {
        leap,
        version,
        stratum,
        reference_id,
        receive: Timestamp::read(&packet[32..]),
        transmit,
    })
}

/// The clock offset (how far the server's clock is ahead of ours) and the round-trip
/// delay, in seconds, from T1 (request sent), T2 (received by the server), T3
/// (answer sent) and T4 (answer received).
pub fn offset_and_delay(t1: Timestamp, t2: Timestamp, t3: Timestamp, t4: Timestamp) -> (f64, f64) {
    let offset = (t2.minus(t1) + t3.minus(t4)) / 2.0;
    let delay = t4.minus(t1) - t3.minus(t2);
    (offset, delay)
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM:SS.ffffff UTC`.
pub fn format_utc(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06} UTC",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        nanos / 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(sent: Timestamp) -> [u8; PACKET] {
        let mut p = [0u8; PACKET];
        p[0] = 4 << 3 | 4;
        p[1] = 2;
        p[12..16].copy_from_slice(b"GPS\0");
        p[24..32].copy_from_slice(&sent.0.to_be_bytes());
        p[32..40].copy_from_slice(&(sent.0 + (1 << 32)).to_be_bytes());
        p[40..48].copy_from_slice(&(sent.0 + (1 << 32) + (1 << 31)).to_be_bytes());
        p
    }

    #[test]
    fn the_request() {
        let t = Timestamp(0x0123_4567_89ab_cdef);
        let p = request(t);
        assert_eq!(p[0], 0x23, "LI 0, version 4, mode 3");
        assert!(p[1..40].iter().all(|&b| b == 0));
        assert_eq!(&p[40..], &t.0.to_be_bytes());
    }

    #[test]
    fn a_good_reply_and_every_refusal() {
        let sent = Timestamp::now();
        let good = reply(sent);
        let r = parse(&good, sent).unwrap();
        assert_eq!((r.stratum, r.version, &r.reference_id), (2, 4, b"GPS\0"));
        assert_eq!(parse(&good[..47], sent), Err(Refusal::Short(47)));
        assert_eq!(parse(&good, Timestamp(sent.0 + 1)), Err(Refusal::NotOurs));
        let mut p = good;
        p[0] = 4 << 3 | 3;
        assert_eq!(parse(&p, sent), Err(Refusal::Mode(3)));
        p[0] = 2 << 3 | 4;
        assert_eq!(parse(&p, sent), Err(Refusal::Version(2)));
        p[0] = 3 << 6 | 4 << 3 | 4;
        assert_eq!(parse(&p, sent), Err(Refusal::Unsynchronized));
        let mut p = good;
        p[1] = 0;
        p[12..16].copy_from_slice(b"RATE");
        assert_eq!(parse(&p, sent), Err(Refusal::Kiss("RATE".into())));
        assert!(Refusal::Kiss("RATE".into()).is_final());
        assert!(!Refusal::NotOurs.is_final());
        let mut p = good;
        p[1] = 16;
        assert_eq!(parse(&p, sent), Err(Refusal::Invalid));
        let mut p = good;
        p[40..48].fill(0);
        assert_eq!(parse(&p, sent), Err(Refusal::Invalid));
        // Longer (extension fields) is fine.
        let mut long = good.to_vec();
        long.extend_from_slice(&[0; 20]);
        assert!(parse(&long, sent).is_ok());
    }

    #[test]
    fn offset_and_delay_across_an_era() {
        // The server is 10.5 s ahead; the trip takes 0.2 s each way; the server
        // holds the request 0.1 s; the client's clock crosses the 2036 rollover.
        let s = |x: f64| (x * 4_294_967_296.0) as i64 as u64;
        let t1 = Timestamp(u64::MAX - s(0.3) + 1);
        let t2 = Timestamp(t1.0.wrapping_add(s(10.5 + 0.2)));
        let t3 = Timestamp(t2.0.wrapping_add(s(0.1)));
        let t4 = Timestamp(t3.0.wrapping_sub(s(10.5)).wrapping_add(s(0.2)));
        let (offset, delay) = offset_and_delay(t1, t2, t3, t4);
        assert!((offset - 10.5).abs() < 1e-6, "{offset}");
        assert!((delay - 0.4).abs() < 1e-6, "{delay}");
    }

    #[test]
    fn dates() {
        assert_eq!(format_utc(0, 0), "1970-01-01 00:00:00.000000 UTC");
        assert_eq!(
            format_utc(951_782_400, 5_000),
            "2000-02-29 00:00:00.000005 UTC"
        );
        assert_eq!(
            format_utc(2_085_978_496, 0),
            "2036-02-07 06:28:16.000000 UTC"
        );
        assert_eq!(
            format_utc(-1, 999_999_999),
            "1969-12-31 23:59:59.999999 UTC"
        );
        let near = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let t = Timestamp::from_system(near + Duration::from_millis(1500));
        let (secs, nanos) = t.to_unix(near);
        assert_eq!(secs, 1_700_000_001);
        assert!((nanos as i64 - 500_000_000).abs() < 10, "{nanos}");
    }
}
