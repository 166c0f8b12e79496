//! Parsers for the numeric command-line values every program shares, so
//! that a value out of range is a one-line usage error (exit 2) at parse
//! time instead of a panic later in `Duration` or `Instant` arithmetic.

use std::time::Duration;

/// The longest time any option accepts: ten years, in seconds. Far beyond
/// any useful wait, and far below what `Instant` and `SystemTime`
/// arithmetic can take.
pub const MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// The largest wake-alarm time, in seconds since the epoch: the last
/// second of the year 9999 (UTC). Later times are refused where they
/// enter (wakealarmd, libsus), so every date shown is a four-digit year.
pub const MAX_EPOCH_SECONDS: u64 = 253_402_300_799;

/// Parses a number of seconds, fractions allowed (`2`, `0.5`), that is
/// more than 0 and at most [`MAX_SECONDS`].
///
/// ```
/// use std::time::Duration;
/// use lsus_proto::args::seconds;
/// assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
/// assert!(seconds("0").is_err());
/// assert!(seconds("1e20").is_err());
/// ```
pub fn seconds(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{text:?} is not a number of seconds more than 0 and at most {MAX_SECONDS} (ten years)"
        )
    };
    let secs: f64 = text.trim().parse().map_err(|_| bad())?;
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_SECONDS as f64 {
        return Err(bad());
    }
    let d = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

/// Parses a number of seconds like [`seconds`], but also `0`, which the
/// options that take it read as "no limit" (`Duration::ZERO`).
///
/// ```
/// use std::time::Duration;
/// use lsus_proto::args::seconds_or_zero;
/// assert_eq!(seconds_or_zero("0"), Ok(Duration::ZERO));
/// assert_eq!(seconds_or_zero("30"), Ok(Duration::from_secs(30)));
/// assert!(seconds_or_zero("-1").is_err());
/// ```
pub fn seconds_or_zero(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => seconds(text).map_err(|e| format!("{e}, or 0")),
    }
}

/// Parses a span of time: a number with a unit `s`, `m`, `h` or `d`
/// (`90s`, `30m`, `24h`, `7d`, `1.5h`), or plain seconds; more than 0 and
/// at most [`MAX_SECONDS`].
///
/// ```
/// use std::time::Duration;
/// use lsus_proto::args::span;
/// assert_eq!(span("24h"), Ok(Duration::from_secs(86_400)));
/// assert!(span("7y").is_err());
/// ```
pub fn span(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let scale = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        _ => {
            return Err(format!(
                "{text:?} is not a span of time like 90s, 30m, 24h or 7d"
            ))
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a span of time like 90s, 30m, 24h or 7d"))?;
    seconds(&(n * scale).to_string())
}

/// Parses the octal permission mode of a socket (`0660`, `660`, `0o660`).
/// The owner must keep read and write permission (connecting needs write),
/// and only permission bits are allowed: mode `0` would make the socket
/// unusable by anyone but root.
///
/// ```
/// use lsus_proto::args::socket_mode;
/// assert_eq!(socket_mode("0660"), Ok(0o660));
/// assert!(socket_mode("0").is_err());
/// ```
pub fn socket_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if !digits.is_empty() && mode <= 0o777 && mode & 0o600 == 0o600 => Ok(mode),
        Ok(mode) if !digits.is_empty() && mode <= 0o777 => Err(format!(
            "{text:?} leaves the socket's owner without read and write permission \
             (connecting needs them): use a mode like 0660"
        )),
        _ => Err(format!(
            "{text:?} is not an octal permission mode like 0660"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_positive_finite_and_bounded() {
        assert_eq!(seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(
            seconds(&MAX_SECONDS.to_string()),
            Ok(Duration::from_secs(MAX_SECONDS))
        );
        for bad in [
            "0",
            "-1",
            "soon",
            "",
            "nan",
            "inf",
            "1e20",
            "99999999999999999999",
            "1e-12",
        ] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spans_take_a_unit() {
        assert_eq!(span("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(span("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(span("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(span("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(span("5"), Ok(Duration::from_secs(5)));
        for bad in ["", "h", "0h", "-1d", "3w", "1e9d", "nan h"] {
            assert!(span(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn socket_modes_keep_the_owner_in() {
        assert_eq!(socket_mode("0660"), Ok(0o660));
        assert_eq!(socket_mode("600"), Ok(0o600));
        assert_eq!(socket_mode("0o666"), Ok(0o666));
        for bad in ["0", "0400", "0060", "0689", "17777", "04660", ""] {
            assert!(socket_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_largest_time_is_the_end_of_9999() {
        // 10000-01-01T00:00:00Z is 253402300800.
        assert_eq!(MAX_EPOCH_SECONDS + 1, 253_402_300_800);
    }
}
