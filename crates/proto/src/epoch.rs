//! Times in the protocol's files: a record's `time=` (doc/protocol.md §6)
//! and a timed block's `deadline=` (§13) are seconds since the epoch,
//! written with 3 decimals and read back exactly.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Writes a time as seconds since the epoch with 3 decimals
/// (`1764067290.010`); a time before the epoch as `0.000`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use lsus_proto::epoch::Millis;
/// let t = UNIX_EPOCH + Duration::from_millis(1_764_067_290_010);
/// assert_eq!(Millis(t).to_string(), "1764067290.010");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Millis(pub SystemTime);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        write!(f, "{}.{:03}", t.as_secs(), t.subsec_millis())
    }
}

/// Parses seconds since the epoch with an optional decimal fraction,
/// exactly (through `f64` a time of 2038 read back a millisecond early, so
/// a record printed again drifted). Digits past nanoseconds are cut.
/// `None` for anything but digits with at most one `.` between them.
///
/// ```
/// use std::time::Duration;
/// use lsus_proto::epoch::parse;
/// assert_eq!(parse("12.5"), Some(Duration::from_millis(12_500)));
/// assert_eq!(parse("12"), Some(Duration::from_secs(12)));
/// assert_eq!(parse("-1"), None);
/// ```
pub fn parse(value: &str) -> Option<Duration> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if secs.is_empty() || !all_digits(secs) || !all_digits(frac) {
        return None;
    }
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    Some(Duration::new(secs.parse().ok()?, nanos))
}
