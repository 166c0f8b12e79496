//! Output helpers: local time, durations and JSON strings.
//!
//! JSON is written by hand (see [`lsus_proto::json`]).

pub use lsus_proto::json::string as json_str;
use std::time::{SystemTime, UNIX_EPOCH};

/// Returns seconds since the epoch, with fractions.
pub fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Formats `t` as local time, `YYYY-MM-DD HH:MM:SS.mmm`.
pub fn local_time(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = libc::time_t::try_from(since.as_secs()).unwrap_or(libc::time_t::MAX);
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers
    // are valid for the duration of the call and not aliased.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return format!("@{}.{:03}", since.as_secs(), since.subsec_millis());
        }
        tm
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        since.subsec_millis()
    )
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

/// Returns `s` as a JSON string literal, or `null`.
pub fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".into(), json_str)
}

/// Returns a number as JSON (`null` for NaN and infinities).
pub fn json_f64(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_null_and_numbers() {
        assert_eq!(json_opt(None), "null");
        assert_eq!(json_f64(f64::NAN), "null");
        assert_eq!(json_f64(1.5), "1.500");
    }

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
}
