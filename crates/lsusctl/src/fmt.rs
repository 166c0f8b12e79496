//! Output helpers: local time and durations.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::fmt::strtime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Returns seconds since the epoch, with fractions.
pub fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Formats `t` as local time, `YYYY-MM-DD HH:MM:SS.mmm`, in the system
/// time zone (`TZ`, else `/etc/localtime`; UTC when neither says).
pub fn local_time(t: SystemTime) -> String {
    local_time_in(t, TimeZone::system())
}

/// Formats `t` in the time zone `tz`; `@SECONDS.mmm` when it is out of the
/// range of years -9999 to 9999.
fn local_time_in(t: SystemTime, tz: TimeZone) -> String {
    Timestamp::try_from(t)
        .ok()
        .and_then(|ts| strtime::format("%Y-%m-%d %H:%M:%S%.3f", &ts.to_zoned(tz)).ok())
        .unwrap_or_else(|| format!("@{}", lsus_proto::epoch::Millis(t)))
}

/// Formats seconds for a person: `3.2 s`, `12m 05s`, `6h 12m`, `2d 03h`.
pub fn human(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".into();
    }
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let s = secs.round() as u64;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else {
        format!("{m}m {sec:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn human_durations() {
        assert_eq!(human(3.21), "3.2 s");
        assert_eq!(human(725.0), "12m 05s");
        assert_eq!(human(22_320.0), "6h 12m");
        assert_eq!(human(183_600.0), "2d 03h");
        assert_eq!(human(f64::NAN), "?");
    }

    #[test]
    fn local_time_has_date_time_and_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_067_200_125);
        let s = local_time(t);
        assert_eq!(s.len(), "2025-11-25 10:40:00.125".len(), "{s}");
        assert!(s.ends_with(".125"), "{s}");
        assert!(s.starts_with("2025-11-2"), "{s}");
    }

    #[test]
    fn local_time_follows_the_time_zone() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_067_200_125);
        assert_eq!(local_time_in(t, TimeZone::UTC), "2025-11-25 10:40:00.125");
        let paris = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(local_time_in(t, paris), "2025-11-25 11:40:00.125");
        // Before 1970, and past what jiff represents.
        let t = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(local_time_in(t, TimeZone::UTC), "1969-12-31 23:59:58.500");
        let t = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(local_time_in(t, TimeZone::UTC), "@400000000000.000");
    }
}
