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
//!
//! Besides the outcome, a record may carry what lsusd learnt about the
//! attempt from the kernel ([`Details`]: the wake reason, the source that
//! aborted it, the kernel's failure report, who held suspend off and for
//! how long). Every one of those keys is optional:
//!
//! ```text
//! seq=20 time=1764067290.010 outcome=suspended seconds=61.250 awake=28.004 woke=rtc0 wake_irq=8 kernel_success=12 kernel_fail=0
//! seq=21 time=1764067300.500 outcome=wakeup-event source=PNP0C0C:00
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::epoch::{self, Millis};

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

/// Every outcome's word (see [`Outcome::word`]), in the order of the
/// enum: for summaries and metrics that list them all.
pub const OUTCOME_WORDS: [&str; 7] = [
    "suspended",
    "dry-run",
    "blocked",
    "aborted",
    "withdrawn",
    "wakeup-event",
    "write-failed",
];

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

/// A process that held suspend off, and for how long (`held=`).
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Its PID.
    pub pid: u32,
    /// Seconds from the first blocked attempt that named it until lsusd
    /// saw it let go.
    pub seconds: f64,
    /// Its command (`/proc/PID/comm`), as a [`token`].
    pub command: String,
}

/// A process named in a record as `PID:command` (`tardy=`, `overrode=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// Its PID.
    pub pid: u32,
    /// Its command (`/proc/PID/comm`), as a [`token`]; `?` when unknown.
    pub command: String,
}

impl fmt::Display for Named {
    /// `PID 812 (slowd)`, for log lines and summaries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PID {} ({})", self.pid, self.command)
    }
}

/// Writes `PID:command,…`.
fn named_list(v: &[Named]) -> String {
    v.iter()
        .map(|n| format!("{}:{}", n.pid, token(&n.command)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads `PID:command,…` (a bare `PID` has command `?`); parts that are
/// not understood are dropped.
///
/// ```
/// let n = lsus_proto::outcome::parse_named("812:slowd,9");
/// assert_eq!((n[0].pid, n[0].command.as_str()), (812, "slowd"));
/// assert_eq!(n[1].command, "?");
/// ```
pub fn parse_named(value: &str) -> Vec<Named> {
    value
        .split(',')
        .filter_map(|part| {
            let (pid, command) = part.split_once(':').unwrap_or((part, "?"));
            Some(Named {
                pid: pid.parse().ok()?,
                command: token(command),
            })
        })
        .collect()
}

/// What lsusd learnt about an attempt besides its outcome (doc/protocol.md
/// §6). Every field is optional: a kernel file that is missing leaves its
/// key out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Details {
    /// `awake=`: seconds awake (`CLOCK_BOOTTIME`) from the previous resume
    /// until this attempt's state write (or its end, when it did not
    /// suspend).
    pub awake: Option<f64>,
    /// `woke=`: the wakeup sources whose counts moved across the state
    /// write, likeliest first; an empty list is written `woke=unknown`.
    pub woke: Option<Vec<String>>,
    /// `wake_irq=`: `power/pm_wakeup_irq` after the state write.
    pub wake_irq: Option<u32>,
    /// `resume_reason=`: `kernel/wakeup_reasons/last_resume_reason`, as a
    /// [`token`] (lines joined with `;`).
    pub resume_reason: Option<String>,
    /// `source=`: for an attempt that did not suspend, the wakeup sources
    /// whose counts moved during it, likeliest first.
    pub source: Vec<String>,
    /// `failed_dev=`: `suspend_stats/last_failed_dev`, when the state
    /// write failed and the kernel counted the failure.
    pub failed_dev: Option<String>,
    /// `failed_errno=`: `suspend_stats/last_failed_errno` (negative).
    pub failed_errno: Option<i32>,
    /// `failed_step=`: `suspend_stats/last_failed_step`.
    pub failed_step: Option<String>,
    /// `kernel_success=`: `suspend_stats/success` after the state write.
    pub kernel_success: Option<u64>,
    /// `kernel_fail=`: `suspend_stats/fail` after the state write.
    pub kernel_fail: Option<u64>,
    /// `held=`: with `blocked`, each blocker and how long it held suspend
    /// off; added to the history line when the blockers let go.
    pub held: Vec<Held>,
    /// `locker=`: with `blocked` and no `pids`, the processes that took the
    /// lock and have exited since, when the process that keeps it is one
    /// lsusd may not inspect (`lsus_sys::proclocks::hidden_keepers`).
    pub locker: Vec<u32>,
    /// `tardy=`: the watchers lsusd stopped waiting for when
    /// `--watcher-timeout` expired (it went on as if they were ready), as
    /// `PID:command`; an empty list (nobody lsusd can name) is written
    /// `tardy=unknown`.
    pub tardy: Option<Vec<Named>>,
    /// `forced=1`: a forced request (doc/protocol.md §8): `disabled` was
    /// not obeyed.
    pub forced: bool,
    /// `why=`: the reason given with a forced request, as a [`token`].
    pub why: Option<String>,
    /// `by=`: the user ID that made the forced request (the owner of its
    /// file).
    pub by: Option<u32>,
    /// `overrode=`: the holders of `disabled` a forced request went over,
    /// as `PID:command`.
    pub overrode: Vec<Named>,
    /// `expired=`: the timed blocks (doc/protocol.md §13) whose deadline
    /// had passed and that lsusd went over, as `PID:command`.
    pub expired: Vec<Named>,
}

/// Returns `s` fit for a record value: whitespace, control characters
/// and commas become `_`, an empty string `?`.
pub fn token(s: &str) -> String {
    if s.is_empty() {
        return "?".into();
    }
    s.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() || c == ',' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl Details {
    /// Returns true if and only if no key is set.
    pub fn is_empty(&self) -> bool {
        *self == Details::default()
    }

    /// Writes the keys that are set, each preceded by a space.
    fn write_keys(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| v.iter().map(|s| token(s)).collect::<Vec<_>>().join(",");
        if let Some(a) = self.awake {
            write!(f, " awake={a:.3}")?;
        }
        match &self.woke {
            Some(w) if w.is_empty() => f.write_str(" woke=unknown")?,
            Some(w) => write!(f, " woke={}", list(w))?,
            None => {}
        }
        if let Some(irq) = self.wake_irq {
            write!(f, " wake_irq={irq}")?;
        }
        if let Some(r) = &self.resume_reason {
            write!(f, " resume_reason={}", token(r))?;
        }
        if !self.source.is_empty() {
            write!(f, " source={}", list(&self.source))?;
        }
        if let Some(d) = &self.failed_dev {
            write!(f, " failed_dev={}", token(d))?;
        }
        if let Some(e) = self.failed_errno {
            write!(f, " failed_errno={e}")?;
        }
        if let Some(s) = &self.failed_step {
            write!(f, " failed_step={}", token(s))?;
        }
        if let Some(n) = self.kernel_success {
            write!(f, " kernel_success={n}")?;
        }
        if let Some(n) = self.kernel_fail {
            write!(f, " kernel_fail={n}")?;
        }
        if !self.held.is_empty() {
            let parts: Vec<String> = self
                .held
                .iter()
                .map(|h| format!("{}:{:.3}:{}", h.pid, h.seconds, token(&h.command)))
                .collect();
            write!(f, " held={}", parts.join(","))?;
        }
        if !self.locker.is_empty() {
            let pids: Vec<String> = self.locker.iter().map(u32::to_string).collect();
            write!(f, " locker={}", pids.join(","))?;
        }
        match &self.tardy {
            Some(t) if t.is_empty() => f.write_str(" tardy=unknown")?,
            Some(t) => write!(f, " tardy={}", named_list(t))?,
            None => {}
        }
        if self.forced {
            f.write_str(" forced=1")?;
        }
        if let Some(w) = &self.why {
            write!(f, " why={}", token(w))?;
        }
        if let Some(uid) = self.by {
            write!(f, " by={uid}")?;
        }
        if !self.overrode.is_empty() {
            write!(f, " overrode={}", named_list(&self.overrode))?;
        }
        if !self.expired.is_empty() {
            write!(f, " expired={}", named_list(&self.expired))?;
        }
        Ok(())
    }

    /// Takes `key=value` if it is one of the details' keys; a value that
    /// cannot be understood is ignored (the keys are optional).
    fn take(&mut self, key: &str, value: &str) {
        let list = || value.split(',').map(str::to_string).collect::<Vec<_>>();
        match key {
            "awake" => self.awake = value.parse().ok().filter(|x: &f64| x.is_finite()),
            "woke" if value == "unknown" => self.woke = Some(Vec::new()),
            "woke" => self.woke = Some(list()),
            "wake_irq" => self.wake_irq = value.parse().ok(),
            "resume_reason" => self.resume_reason = Some(value.to_string()),
            "source" => self.source = list(),
            "failed_dev" => self.failed_dev = Some(value.to_string()),
            "failed_errno" => self.failed_errno = value.parse().ok(),
            "failed_step" => self.failed_step = Some(value.to_string()),
            "kernel_success" => self.kernel_success = value.parse().ok(),
            "kernel_fail" => self.kernel_fail = value.parse().ok(),
            "locker" => {
                self.locker = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .unwrap_or_default()
            }
            "tardy" if value == "unknown" => self.tardy = Some(Vec::new()),
            "tardy" => self.tardy = Some(parse_named(value)),
            "forced" => self.forced = value == "1",
            "why" => self.why = Some(value.to_string()),
            "by" => self.by = value.parse().ok(),
            "overrode" => self.overrode = parse_named(value),
            "expired" => self.expired = parse_named(value),
            "held" => {
                self.held = value
                    .split(',')
                    .filter_map(|part| {
                        let mut it = part.splitn(3, ':');
                        let pid = it.next()?.parse().ok()?;
                        let seconds = it.next()?.parse().ok().filter(|x: &f64| x.is_finite())?;
                        let command = it.next()?.to_string();
                        Some(Held {
                            pid,
                            seconds,
                            command,
                        })
                    })
                    .collect()
            }
            _ => {}
        }
    }
}

impl fmt::Display for Details {
    /// Says in words what the details tell, for log lines: "woke by rtc0
    /// (IRQ 8), awake 28.0 s before". Empty when there are none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match &self.woke {
            Some(w) if w.is_empty() => parts.push("wake reason unknown".to_string()),
            Some(w) => parts.push(format!("woken by {}", w.join(", "))),
            None => {}
        }
        if let Some(irq) = self.wake_irq {
            parts.push(format!("IRQ {irq}"));
        }
        if let Some(r) = &self.resume_reason {
            parts.push(format!("resume reason {r}"));
        }
        if !self.source.is_empty() {
            parts.push(format!("wakeup source {}", self.source.join(", ")));
        }
        if self.failed_step.is_some() || self.failed_dev.is_some() {
            parts.push(format!(
                "kernel: failed at {} ({}{})",
                self.failed_step.as_deref().unwrap_or("?"),
                self.failed_dev.as_deref().unwrap_or("no device named"),
                self.failed_errno
                    .map(|e| format!(", errno {e}"))
                    .unwrap_or_default()
            ));
        }
        for h in &self.held {
            parts.push(format!(
                "PID {} ({}) held it off for {:.1} s",
                h.pid, h.command, h.seconds
            ));
        }
        if self.forced {
            let mut forced = "forced".to_string();
            if let Some(uid) = self.by {
                forced.push_str(&format!(" by UID {uid}"));
            }
            if let Some(w) = &self.why {
                forced.push_str(&format!(" ({w})"));
            }
            parts.push(forced);
        }
        if !self.overrode.is_empty() {
            let names: Vec<String> = self.overrode.iter().map(Named::to_string).collect();
            parts.push(format!("over the block of {}", names.join(", ")));
        }
        if !self.expired.is_empty() {
            let names: Vec<String> = self.expired.iter().map(Named::to_string).collect();
            parts.push(format!(
                "over the expired timed block of {}",
                names.join(", ")
            ));
        }
        match &self.tardy {
            Some(t) if t.is_empty() => {
                parts.push("went on without tardy watchers lsusd cannot name".to_string())
            }
            Some(t) => {
                let names: Vec<String> = t.iter().map(Named::to_string).collect();
                parts.push(format!(
                    "went on without tardy watchers {}",
                    names.join(", ")
                ));
            }
            None => {}
        }
        if let Some(a) = self.awake {
            parts.push(format!("awake {a:.1} s since the last resume"));
        }
        f.write_str(&parts.join("; "))
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
    /// What else lsusd learnt (all optional).
    pub details: Details,
}

impl fmt::Display for Record {
    /// Formats the record as its one line, newline included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq={} time={} outcome={}",
            self.seq,
            Millis(self.time),
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
        self.details.write_keys(f)?;
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
        let mut details = Details::default();
        for field in line.split_ascii_whitespace() {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| bad("a word without '='"))?;
            match key {
                "seq" => seq = Some(value.parse::<u64>().map_err(|_| bad("a bad seq"))?),
                "time" => {
                    // A hostile file must not make a reader panic: the
                    // value is checked before any arithmetic on it.
                    time = Some(
                        epoch::parse(value)
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
                _ => details.take(key, value), // newer writers may add keys
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
            details,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn round_trip(outcome: Outcome) {
        round_trip_with(outcome, Details::default());
    }

    fn round_trip_with(outcome: Outcome, details: Details) {
        let r = Record {
            seq: 42,
            time: UNIX_EPOCH + Duration::from_millis(1_764_067_200_125),
            outcome,
            details,
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
    fn details_round_trip_and_old_lines_have_none() {
        round_trip_with(
            Outcome::Suspended { seconds: 61.25 },
            Details {
                awake: Some(28.004),
                woke: Some(vec!["rtc0".into(), "PNP0C0C:00".into()]),
                wake_irq: Some(8),
                resume_reason: Some("8_rtc0;_Abort:_x".into()),
                kernel_success: Some(12),
                kernel_fail: Some(0),
                ..Details::default()
            },
        );
        round_trip_with(
            Outcome::WriteFailed { errno: libc::EBUSY },
            Details {
                source: vec!["gpio-keys".into()],
                failed_dev: Some("0000:00:14.0".into()),
                failed_errno: Some(-16),
                failed_step: Some("suspend".into()),
                ..Details::default()
            },
        );
        round_trip_with(
            Outcome::Blocked { pids: vec![7] },
            Details {
                held: vec![Held {
                    pid: 7,
                    seconds: 12.5,
                    command: "rsync:x".into(),
                }],
                ..Details::default()
            },
        );
        round_trip_with(
            Outcome::Blocked { pids: vec![] },
            Details {
                locker: vec![812, 901],
                ..Details::default()
            },
        );
        round_trip_with(
            Outcome::DryRun { missing: vec![] },
            Details {
                tardy: Some(vec![Named {
                    pid: 812,
                    command: "slowd".into(),
                }]),
                forced: true,
                why: Some("lid_closed".into()),
                by: Some(1000),
                overrode: vec![
                    Named {
                        pid: 7,
                        command: "flock".into(),
                    },
                    Named {
                        pid: 9,
                        command: "sh".into(),
                    },
                ],
                ..Details::default()
            },
        );
        round_trip_with(
            Outcome::Aborted,
            Details {
                tardy: Some(vec![]),
                ..Details::default()
            },
        );
        round_trip_with(
            Outcome::Suspended { seconds: 1.0 },
            Details {
                woke: Some(vec![]),
                ..Details::default()
            },
        );
        let old: Record = "seq=1 time=5.5 outcome=suspended seconds=1.000\n"
            .parse()
            .unwrap();
        assert!(old.details.is_empty());
        // A bad detail is dropped, the record kept.
        let r: Record = "seq=1 time=5.5 outcome=suspended awake=x held=1:y:sh woke=a,b"
            .parse()
            .unwrap();
        assert_eq!(r.details.awake, None);
        assert!(r.details.held.is_empty());
        assert_eq!(r.details.woke, Some(vec!["a".into(), "b".into()]));
        assert_eq!(token("a b,c\n"), "a_b_c_");
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
