//! The outcome record: one line that lsusd writes to `RUN/outcome` at the
//! end of every attempt, before it removes `request`.
//!
//! This is an addition of the port (the original offered only the inode
//! comparison on `watching`). The format is one line of `key=value` words:
//!
//! ```text
//! seq=17 time=1764067200.125 outcome=suspended seconds=3.201
//! seq=18 time=1764067210.002 outcome=blocked pids=812,1290
//! seq=19 time=1764067220.460 outcome=write-failed errno=16
//! ```
//!
//! `seq` counts attempts, going on across lsusd restarts (a new lsusd
//! continues from the last record); readers ignore unknown keys.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What became of one attempt to suspend.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The machine suspended and resumed after this many seconds.
    Suspended {
        /// Seconds from the state write until it returned.
        seconds: f64,
    },
    /// `--dry-run`: everything happened but the write to `power/state`.
    DryRun {
        /// The kernel files (`power/state`, `power/wakeup_count`, relative
        /// to the sysfs root) that did not exist when lsusd started: a
        /// real suspend would have failed. Key `missing=` in the record.
        missing: Vec<String>,
    },
    /// Something held a shared lock on `disabled`.
    Blocked {
        /// The processes that held it, where `/proc/locks` tells.
        pids: Vec<u32>,
    },
    /// A process read `disabled` while watchers were being notified.
    Aborted,
    /// The request was withdrawn (`request` removed, or `immediate`
    /// released) before the state write.
    Withdrawn,
    /// The kernel rejected the wakeup count: a wakeup event happened.
    WakeupEvent,
    /// Writing the sleep state failed with this `errno`.
    WriteFailed {
        /// The raw `errno` (EBUSY when a wakeup event arrived during it).
        errno: i32,
    },
}

impl Outcome {
    /// Returns the word used for this outcome in the record.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Suspended { .. } => "suspended",
            Outcome::DryRun { .. } => "dry-run",
            Outcome::Blocked { .. } => "blocked",
            Outcome::Aborted => "aborted",
            Outcome::Withdrawn => "withdrawn",
            Outcome::WakeupEvent => "wakeup-event",
            Outcome::WriteFailed { .. } => "write-failed",
        }
    }

    /// Returns true if and only if the machine suspended (or, in a dry
    /// run, would have).
    pub fn suspended(&self) -> bool {
        matches!(self, Outcome::Suspended { .. } | Outcome::DryRun { .. })
    }

    /// Returns true for attempts that reached the point of no return and
    /// failed there (these count towards the immediate-mode backoff).
    pub fn failed_attempt(&self) -> bool {
        matches!(
            self,
            Outcome::Aborted | Outcome::WakeupEvent | Outcome::WriteFailed { .. }
        )
    }
}

impl fmt::Display for Outcome {
    /// Says in words what happened, for logs and `request-suspend`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Suspended { seconds } => {
                write!(f, "suspended and resumed after {seconds:.1} s")
            }
            Outcome::DryRun { missing } if missing.is_empty() => {
                f.write_str("would have suspended (dry run: power/state not written)")
            }
            Outcome::DryRun { missing } => write!(
                f,
                "would have suspended (dry run: power/state not written), but {} \
                 missing under --sysfs: a real suspend would fail",
                missing.join(" and ")
            ),
            Outcome::Blocked { pids } if pids.is_empty() => f.write_str("blocked"),
            Outcome::Blocked { pids } => {
                f.write_str("blocked by PID")?;
                if pids.len() > 1 {
                    f.write_str("s")?;
                }
                for (i, pid) in pids.iter().enumerate() {
                    write!(f, "{}{pid}", if i == 0 { " " } else { ", " })?;
                }
                Ok(())
            }
            Outcome::Aborted => {
                f.write_str("aborted: a process read `disabled` during the attempt")
            }
            Outcome::Withdrawn => f.write_str("request withdrawn before suspend"),
            Outcome::WakeupEvent => {
                f.write_str("wakeup event: the kernel rejected the wakeup count")
            }
            Outcome::WriteFailed { errno } => write!(
                f,
                "writing the sleep state failed: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

/// One line of `RUN/outcome`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Attempts counted from 1, going on across lsusd restarts.
    pub seq: u64,
    /// When the attempt ended.
    pub time: SystemTime,
    /// What happened.
    pub outcome: Outcome,
}

impl fmt::Display for Record {
    /// Formats the record as its one line, newline included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        write!(
            f,
            "seq={} time={}.{:03} outcome={}",
            self.seq,
            t.as_secs(),
            t.subsec_millis(),
            self.outcome.word()
        )?;
        match &self.outcome {
            Outcome::Suspended { seconds } => write!(f, " seconds={seconds:.3}")?,
            Outcome::Blocked { pids } if !pids.is_empty() => {
                let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                write!(f, " pids={}", list.join(","))?
            }
            Outcome::WriteFailed { errno } => write!(f, " errno={errno}")?,
            Outcome::DryRun { missing } if !missing.is_empty() => {
                write!(f, " missing={}", missing.join(","))?
            }
            _ => {}
        }
        f.write_str("\n")
    }
}

/// A line of `RUN/outcome` could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed outcome record: {0}")]
pub struct ParseError(pub String);

impl std::str::FromStr for Record {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<Record, ParseError> {
        let bad = |why: &str| ParseError(format!("{why} in {:?}", line.trim_end()));
        let mut seq = None;
        let mut time = None;
        let mut word = None;
        let mut seconds = None;
        let mut pids = Vec::new();
        let mut errno = None;
        let mut missing = Vec::new();
        for field in line.split_ascii_whitespace() {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| bad("a word without '='"))?;
            match key {
                "seq" => seq = Some(value.parse::<u64>().map_err(|_| bad("a bad seq"))?),
                "time" => {
                    // A hostile file must not make a reader panic: the
                    // value is checked before any arithmetic on it.
                    let secs: f64 = value.parse().map_err(|_| bad("a bad time"))?;
                    time = Some(
                        Duration::try_from_secs_f64(secs)
                            .ok()
                            .and_then(|d| UNIX_EPOCH.checked_add(d))
                            .ok_or_else(|| bad("a bad time"))?,
                    );
                }
                "outcome" => word = Some(value),
                "seconds" => seconds = Some(value.parse::<f64>().map_err(|_| bad("bad seconds"))?),
                "pids" => {
                    pids = value
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .map_err(|_| bad("bad pids"))?
                }
                "missing" => missing = value.split(',').map(str::to_string).collect(),
                "errno" => errno = Some(value.parse::<i32>().map_err(|_| bad("a bad errno"))?),
                _ => {} // newer writers may add keys
            }
        }
        let outcome = match word.ok_or_else(|| bad("no outcome"))? {
            "suspended" => Outcome::Suspended {
                seconds: seconds.unwrap_or(0.0),
            },
            "dry-run" => Outcome::DryRun { missing },
            "blocked" => Outcome::Blocked { pids },
            "aborted" => Outcome::Aborted,
            "withdrawn" => Outcome::Withdrawn,
            "wakeup-event" => Outcome::WakeupEvent,
            "write-failed" => Outcome::WriteFailed {
                errno: errno.unwrap_or(0),
            },
            _ => return Err(bad("an unknown outcome")),
        };
        Ok(Record {
            seq: seq.ok_or_else(|| bad("no seq"))?,
            time: time.ok_or_else(|| bad("no time"))?,
            outcome,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(outcome: Outcome) {
        let r = Record {
            seq: 42,
            time: UNIX_EPOCH + Duration::from_millis(1_764_067_200_125),
            outcome,
        };
        let line = r.to_string();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let back: Record = line.parse().unwrap();
        assert_eq!(back, r, "{line}");
    }

    #[test]
    fn every_outcome_round_trips() {
        round_trip(Outcome::Suspended { seconds: 3.25 });
        round_trip(Outcome::DryRun { missing: vec![] });
        round_trip(Outcome::DryRun {
            missing: vec!["power/state".into(), "power/wakeup_count".into()],
        });
        round_trip(Outcome::Blocked { pids: vec![] });
        round_trip(Outcome::Blocked {
            pids: vec![12, 345],
        });
        round_trip(Outcome::Aborted);
        round_trip(Outcome::Withdrawn);
        round_trip(Outcome::WakeupEvent);
        round_trip(Outcome::WriteFailed { errno: libc::EBUSY });
    }

    #[test]
    fn unknown_keys_are_ignored_and_garbage_rejected() {
        let r: Record = "seq=1 time=5.5 outcome=aborted by=someone\n"
            .parse()
            .unwrap();
        assert_eq!(r.outcome, Outcome::Aborted);
        assert!("".parse::<Record>().is_err());
        assert!("seq=x time=1 outcome=aborted".parse::<Record>().is_err());
        assert!("seq=1 time=1 outcome=exploded".parse::<Record>().is_err());
        assert!("seq=1 time=-1 outcome=aborted".parse::<Record>().is_err());
        assert!("seq=1 outcome aborted".parse::<Record>().is_err());
    }

    #[test]
    fn words_describe_the_outcome() {
        assert_eq!(
            Outcome::Blocked { pids: vec![7, 9] }.to_string(),
            "blocked by PIDs 7, 9"
        );
        assert_eq!(
            Outcome::Suspended { seconds: 2.04 }.to_string(),
            "suspended and resumed after 2.0 s"
        );
        assert!(Outcome::WriteFailed { errno: libc::EBUSY }
            .to_string()
            .contains("busy"));
    }
}
