//! `--metrics-file PATH`: lsusd's counters in the Prometheus text format,
//! for node_exporter's textfile collector (README, "Metrics").
//!
//! The counters run from lsusd's start (a restart resets them, which
//! Prometheus' `rate()` and `increase()` take in their stride). The file
//! is replaced atomically after every attempt, and when a blocker's time
//! is known: written beside it as `.NAME.tmp` (node_exporter reads only
//! `*.prom`), mode 0644 whatever the umask, then renamed over it.
//!
//! The label sets are bounded: the first [`LABELS`] wake reasons and
//! blocker commands seen get a label of their own, every later one is
//! counted under `other`. First come rather than top N: a label, once
//! written, never moves into `other`, so each series only ever grows.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use lsus_proto::outcome::{Held, Outcome, Record};

/// How many values a label takes besides `other`.
pub const LABELS: usize = 10;

/// The outcome words, in the order written.
const OUTCOMES: [&str; 7] = lsus_proto::outcome::OUTCOME_WORDS;

/// Values by label, bounded.
#[derive(Debug, Default)]
struct Bounded {
    named: Vec<(String, f64)>,
    other: f64,
}

impl Bounded {
    fn add(&mut self, label: &str, v: f64) {
        if let Some((_, x)) = self.named.iter_mut().find(|(n, _)| n == label) {
            *x += v;
        } else if self.named.len() < LABELS {
            self.named.push((label.to_string(), v));
        } else {
            self.other += v;
        }
    }
}

/// The counters and where they go.
#[derive(Debug)]
pub struct Metrics {
    path: PathBuf,
    attempts: [u64; 7],
    asleep: f64,
    wakeups: Bounded,
    blocked: Bounded,
    last_attempt: f64,
    failing: bool,
}

/// Returns `s` as a Prometheus label value (backslash, quote and newline
/// escaped).
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counters at zero, to be written to `path`.
    pub fn new(path: PathBuf) -> Metrics {
        Metrics {
            path,
            attempts: [0; 7],
            asleep: 0.0,
            wakeups: Bounded::default(),
            blocked: Bounded::default(),
            last_attempt: 0.0,
            failing: false,
        }
    }

    /// Counts the attempt of `record`.
    pub fn add(&mut self, record: &Record) {
        if let Some(i) = OUTCOMES.iter().position(|&w| w == record.outcome.word()) {
            self.attempts[i] += 1;
        }
        self.last_attempt = record
            .time
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if let Outcome::Suspended { seconds } = record.outcome {
            self.asleep += seconds;
            let reason = record
                .details
                .woke
                .as_ref()
                .and_then(|w| w.first())
                .map_or("unknown", String::as_str);
            self.wakeups.add(reason, 1.0);
        }
    }

    /// Counts the time blockers held suspend off.
    pub fn add_held(&mut self, held: &[Held]) {
        for h in held {
            self.blocked.add(&h.command, h.seconds);
        }
    }

    /// Returns the file's text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut head = |name: &str, help: &str, kind: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        head(
            "lsusd_attempts_total",
            "Suspend attempts since lsusd started, by outcome.",
            "counter",
        );
        for (w, n) in OUTCOMES.iter().zip(self.attempts) {
            let _ = writeln!(out, "lsusd_attempts_total{{outcome=\"{w}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP lsusd_asleep_seconds_total Seconds asleep (CLOCK_BOOTTIME across the state write) since lsusd started.\n\
             # TYPE lsusd_asleep_seconds_total counter\n\
             lsusd_asleep_seconds_total {:.3}",
            self.asleep
        );
        let _ = writeln!(
            out,
            "# HELP lsusd_wakeups_total Resumes by wake reason (the wakeup source whose counts moved most), the first {LABELS} reasons by name, the rest as other.\n\
             # TYPE lsusd_wakeups_total counter"
        );
        for (n, v) in &self.wakeups.named {
            let _ = writeln!(out, "lsusd_wakeups_total{{reason=\"{}\"}} {v}", label(n));
        }
        let _ = writeln!(
            out,
            "lsusd_wakeups_total{{reason=\"other\"}} {}",
            self.wakeups.other
        );
        let _ = writeln!(
            out,
            "# HELP lsusd_blocked_seconds_total Seconds blockers held suspend off, by command, the first {LABELS} commands by name, the rest as other.\n\
             # TYPE lsusd_blocked_seconds_total counter"
        );
        for (n, v) in &self.blocked.named {
            let _ = writeln!(
                out,
                "lsusd_blocked_seconds_total{{command=\"{}\"}} {v:.3}",
                label(n)
            );
        }
        let _ = writeln!(
            out,
            "lsusd_blocked_seconds_total{{command=\"other\"}} {:.3}",
            self.blocked.other
        );
        let _ = writeln!(
            out,
            "# HELP lsusd_last_attempt_timestamp_seconds When the last attempt ended (0: none yet).\n\
             # TYPE lsusd_last_attempt_timestamp_seconds gauge\n\
             lsusd_last_attempt_timestamp_seconds {:.3}",
            self.last_attempt
        );
        out
    }

    /// Replaces the file; a failure is logged (once until it works
    /// again), never fatal.
    pub fn write(&mut self) {
        match replace(&self.path, self.text().as_bytes()) {
            Ok(()) => {
                if self.failing {
                    tracing::info!("{}: written again", self.path.display());
                }
                self.failing = false;
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!("cannot write the metrics to {}: {e}", self.path.display());
                }
                self.failing = true;
            }
        }
    }
}

/// Writes `text` to `.NAME.tmp` beside `path` (never through a link left
/// there) and renames it over `path`.
fn replace(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("no file name"))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    // Readable by node_exporter's user whatever lsusd's umask (its unit
    // has UMask=0007).
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    f.write_all(text)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: &str) -> Record {
        line.parse().unwrap()
    }

    #[test]
    fn counters_and_bounded_labels() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("lsusd.prom");
        let mut m = Metrics::new(path.clone());
        m.write();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("lsusd_attempts_total{outcome=\"suspended\"} 0\n"));
        m.add(&rec(
            "seq=1 time=5.000 outcome=suspended seconds=2.500 woke=rtc0,PNP0C0C:00",
        ));
        m.add(&rec(
            "seq=2 time=6.000 outcome=suspended seconds=1.000 woke=unknown",
        ));
        m.add(&rec("seq=3 time=7.000 outcome=wakeup-event source=x"));
        for i in 0..LABELS + 2 {
            m.add_held(&[Held {
                pid: 1,
                seconds: 1.0,
                command: format!("c\"{i}"),
            }]);
        }
        m.write();
        let text = std::fs::read_to_string(&path).unwrap();
        for want in [
            "lsusd_attempts_total{outcome=\"suspended\"} 2\n",
            "lsusd_attempts_total{outcome=\"wakeup-event\"} 1\n",
            "lsusd_asleep_seconds_total 3.500\n",
            "lsusd_wakeups_total{reason=\"rtc0\"} 1\n",
            "lsusd_wakeups_total{reason=\"unknown\"} 1\n",
            "lsusd_wakeups_total{reason=\"other\"} 0\n",
            "lsusd_blocked_seconds_total{command=\"c\\\"0\"} 1.000\n",
            "lsusd_blocked_seconds_total{command=\"other\"} 2.000\n",
            "lsusd_last_attempt_timestamp_seconds 7.000\n",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        assert_eq!(
            text.matches("lsusd_blocked_seconds_total{").count(),
            LABELS + 1
        );
        assert!(!t.path().join(".lsusd.prom.tmp").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}
