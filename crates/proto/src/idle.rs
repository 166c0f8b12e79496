//! `RUN/lsus-idle.status`: what lsus-idle (idle autosuspend) publishes for
//! `lsusctl status` (an addition of the port; doc/protocol.md §11).
//!
//! ```text
//! timeout=300 devices=3 idle=no holding=no idle_since=81234
//! ```
//!
//! `idle_since` is the last input (or lsus-idle's start) on
//! `CLOCK_MONOTONIC`, in whole seconds: the clock that stops while the
//! machine sleeps, as lsus-idle's count does, and that a reader on the same
//! machine reads too (`idle for NOW - idle_since`). Whole seconds, so that
//! input arriving all the time changes the file at most once a second.
//! Readers ignore unknown keys.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::status::{number, parse_fields, yes_no, ParseError};

/// lsus-idle's status file.
pub const LSUS_IDLE_STATUS: &str = "lsus-idle.status";

/// What lsus-idle publishes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct IdleStatus {
    /// The idle time (`--idle`).
    pub timeout: Duration,
    /// Input devices watched.
    pub devices: usize,
    /// No input for the idle time: the machine is idle.
    pub idle: bool,
    /// lsus-idle holds immediate mode (idle, and not `--dry-run`).
    pub holding: bool,
    /// The last input, or the start: `CLOCK_MONOTONIC` seconds.
    pub idle_since: u64,
}

impl IdleStatus {
    /// How long the machine has been idle when `CLOCK_MONOTONIC` reads
    /// `now` (zero for a `now` before `idle_since`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s: lsus_proto::idle::IdleStatus = "timeout=300 devices=1 idle_since=100".parse().unwrap();
    /// assert_eq!(s.idle_for(Duration::from_secs(142)), Duration::from_secs(42));
    /// ```
    pub fn idle_for(&self, now: Duration) -> Duration {
        now.saturating_sub(Duration::from_secs(self.idle_since))
    }
}

impl fmt::Display for IdleStatus {
    /// Formats the status as its one line, newline included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "timeout={} devices={} idle={} holding={} idle_since={}",
            self.timeout.as_secs_f64(),
            self.devices,
            yes_no(self.idle),
            yes_no(self.holding),
            self.idle_since
        )
    }
}

fn flag(key: &str, value: &str) -> Result<bool, ParseError> {
    match value {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(ParseError(format!("{key}={value} is neither yes nor no"))),
    }
}

/// Parses `timeout=`'s seconds (fractions allowed).
fn seconds(key: &str, value: &str) -> Result<Duration, ParseError> {
    let secs: f64 = number(key, value)?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| ParseError(format!("{key}={value} is not a number")))
}

impl FromStr for IdleStatus {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<IdleStatus, ParseError> {
        let mut status = IdleStatus::default();
        parse_fields(line, "timeout", |key, value| {
            match key {
                "timeout" => status.timeout = seconds(key, value)?,
                "devices" => status.devices = number(key, value)?,
                "idle" => status.idle = flag(key, value)?,
                "holding" => status.holding = flag(key, value)?,
                "idle_since" => status.idle_since = number(key, value)?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_keys() {
        let s = IdleStatus {
            timeout: Duration::from_millis(2500),
            devices: 3,
            idle: true,
            holding: true,
            idle_since: 81234,
        };
        let line = s.to_string();
        assert_eq!(
            line,
            "timeout=2.5 devices=3 idle=yes holding=yes idle_since=81234\n"
        );
        assert_eq!(line.parse::<IdleStatus>(), Ok(s));
        let later: IdleStatus = "timeout=300 devices=1 idle=no holding=no idle_since=5 new=1"
            .parse()
            .unwrap();
        assert_eq!(later.timeout, Duration::from_secs(300));
        for (bad, why) in [
            ("devices=1\n", "no timeout= in \"devices=1\""),
            ("timeout=x", "timeout=x is not a number"),
            ("timeout=-1", "timeout=-1 is not a number"),
            ("timeout=1 idle_since=", "idle_since= is not a number"),
            (
                "timeout=1 holding=maybe",
                "holding=maybe is neither yes nor no",
            ),
            ("timeout=1 what", "a word without '=' in \"timeout=1 what\""),
        ] {
            assert_eq!(bad.parse::<IdleStatus>(), Err(ParseError(why.into())));
        }
    }
}
