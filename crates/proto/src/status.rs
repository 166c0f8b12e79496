//! Status files: the counts lsused and wakealarmd publish in the run
//! directory for `lsusctl status` (an addition of the port).
//!
//! Each is one line of `key=value` words, replaced atomically (written to
//! a temporary file and renamed) when a count changes, at most a few times
//! a second, and removed when the daemon stops:
//!
//! ```text
//! RUN/lsused.status       clients=3 descriptors=5
//! RUN/lsused.status       clients=3 descriptors=5 tardy_total=2 tardy=812:modemd
//! RUN/wakealarmd.status   connections=4 pending=3 blocking=1 next=1764067300
//! ```
//!
//! A status file says nothing about whether its daemon still runs: a
//! daemon that was killed leaves its file behind. Readers check the
//! daemon's instance lock (`RUN/<daemon>.pid`) first. Readers ignore
//! unknown keys, so later versions may add some.

use std::fmt;
use std::str::FromStr;

use crate::outcome::{token, Named};

/// lsused's status file.
pub const LSUSED_STATUS: &str = "lsused.status";
/// wakealarmd's status file.
pub const WAKEALARMD_STATUS: &str = "wakealarmd.status";

/// A status line could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed status line: {0}")]
pub struct ParseError(pub String);

/// Splits a status line into `(key, value)` pairs.
fn fields(line: &str) -> impl Iterator<Item = Result<(&str, &str), ParseError>> {
    line.split_ascii_whitespace().map(move |word| {
        word.split_once('=')
            .ok_or_else(|| ParseError(format!("a word without '=' in {:?}", line.trim_end())))
    })
}

/// Calls `f` with each `(key, value)` pair of a status line; the line must
/// carry `required` (the key every writer puts first). The status lines of
/// lsused, wakealarmd and lsus-idle are read through it.
pub(crate) fn parse_fields<'a>(
    line: &'a str,
    required: &str,
    mut f: impl FnMut(&'a str, &'a str) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let mut seen = false;
    for field in fields(line) {
        let (key, value) = field?;
        seen |= key == required;
        f(key, value)?;
    }
    if !seen {
        return Err(ParseError(format!(
            "no {required}= in {:?}",
            line.trim_end()
        )));
    }
    Ok(())
}

/// Parses `key=value`'s value as a number.
pub(crate) fn number<T: FromStr>(key: &str, value: &str) -> Result<T, ParseError> {
    value
        .parse()
        .map_err(|_| ParseError(format!("{key}={value} is not a number")))
}

/// A flag as the status files write it: `yes` or `no`.
pub(crate) fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// What lsused publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LsusedStatus {
    /// Connected clients.
    pub clients: usize,
    /// Descriptors registered by all clients together.
    pub descriptors: usize,
    /// `tardy_total=`: clients lsused stopped waiting for since it
    /// started (`--reply-timeout`); written only when not 0.
    pub tardy_total: u64,
    /// `tardy=`: the clients cut at the most recent reply timeout, as
    /// `PID:command`; written only when not empty.
    pub tardy: Vec<Named>,
}

impl fmt::Display for LsusedStatus {
    /// Formats the status as its one line, newline included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "clients={} descriptors={}",
            self.clients, self.descriptors
        )?;
        if self.tardy_total > 0 {
            write!(f, " tardy_total={}", self.tardy_total)?;
        }
        if !self.tardy.is_empty() {
            let list: Vec<String> = self
                .tardy
                .iter()
                .map(|n| format!("{}:{}", n.pid, token(&n.command)))
                .collect();
            write!(f, " tardy={}", list.join(","))?;
        }
        writeln!(f)
    }
}

impl FromStr for LsusedStatus {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<LsusedStatus, ParseError> {
        let mut status = LsusedStatus::default();
        parse_fields(line, "clients", |key, value| {
            match key {
                "clients" => status.clients = number(key, value)?,
                "descriptors" => status.descriptors = number(key, value)?,
                "tardy_total" => status.tardy_total = number(key, value)?,
                "tardy" => status.tardy = crate::outcome::parse_named(value),
                _ => {}
            }
            Ok(())
        })?;
        Ok(status)
    }
}

/// What wakealarmd publishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WakealarmdStatus {
    /// Open connections.
    pub connections: usize,
    /// Connections waiting for their time (not blocking suspend).
    pub pending: usize,
    /// Connections that block suspend (no time written yet, or `Now`
    /// sent and no new time since).
    pub blocking: usize,
    /// The earliest pending time, seconds since the epoch.
    pub next: Option<u64>,
}

impl fmt::Display for WakealarmdStatus {
    /// Formats the status as its one line, newline included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections={} pending={} blocking={}",
            self.connections, self.pending, self.blocking
        )?;
        if let Some(next) = self.next {
            write!(f, " next={next}")?;
        }
        writeln!(f)
    }
}

impl FromStr for WakealarmdStatus {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<WakealarmdStatus, ParseError> {
        let mut status = WakealarmdStatus::default();
        parse_fields(line, "connections", |key, value| {
            match key {
                "connections" => status.connections = number(key, value)?,
                "pending" => status.pending = number(key, value)?,
                "blocking" => status.blocking = number(key, value)?,
                "next" => status.next = Some(number(key, value)?),
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
    fn lsused_status_round_trips_and_ignores_unknown_keys() {
        let s = LsusedStatus {
            clients: 3,
            descriptors: 5,
            ..LsusedStatus::default()
        };
        assert_eq!(s.to_string(), "clients=3 descriptors=5\n");
        assert_eq!(s.to_string().parse::<LsusedStatus>(), Ok(s));
        let t = LsusedStatus {
            clients: 3,
            descriptors: 5,
            tardy_total: 4,
            tardy: vec![Named {
                pid: 812,
                command: "modem_d".into(),
            }],
        };
        assert_eq!(
            t.to_string(),
            "clients=3 descriptors=5 tardy_total=4 tardy=812:modem_d\n"
        );
        assert_eq!(t.to_string().parse::<LsusedStatus>(), Ok(t));
        assert_eq!(
            "clients=1 descriptors=2 later=x\n".parse::<LsusedStatus>(),
            Ok(LsusedStatus {
                clients: 1,
                descriptors: 2,
                ..LsusedStatus::default()
            })
        );
        assert!("".parse::<LsusedStatus>().is_err());
        assert!("clients=many".parse::<LsusedStatus>().is_err());
        assert!("clients 3".parse::<LsusedStatus>().is_err());
    }

    #[test]
    fn wakealarmd_status_round_trips_with_and_without_next() {
        for next in [None, Some(1_764_067_300)] {
            let s = WakealarmdStatus {
                connections: 4,
                pending: 3,
                blocking: 1,
                next,
            };
            assert_eq!(s.to_string().parse::<WakealarmdStatus>(), Ok(s));
        }
        assert!("pending=1".parse::<WakealarmdStatus>().is_err());
        assert!("connections=1 next=soon"
            .parse::<WakealarmdStatus>()
            .is_err());
    }
}
