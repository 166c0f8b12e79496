//! `lsusctl stats`: the history of a span of time summed up — why the
//! battery is empty.
//!
//! The JSON document is [`crate::json::Stats`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use lsus_proto::outcome::{Outcome, Record};
use lsus_sys::wakeup::{SuspendStats, WakeupFiles};

use crate::error::Error;
use crate::fmt::{epoch, human, local_time};

/// The outcome words in the order the summary lists them.
const OUTCOMES: [&str; 7] = lsus_proto::outcome::OUTCOME_WORDS;

/// How many names each "top" list shows.
const TOP: usize = 5;

/// One blocker's total, by command.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocker {
    /// Its command.
    pub command: String,
    /// Seconds it held suspend off in the span.
    pub seconds: f64,
    /// The PIDs it had.
    pub pids: Vec<u32>,
}

/// The kernel's count of suspends against lsusd's, over the records that
/// carry `kernel_success`.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    /// The first and last such record.
    pub seqs: (u64, u64),
    /// How much `suspend_stats/success` grew over them.
    pub kernel: u64,
    /// How many of them say `suspended`.
    pub lsusd: u64,
}

/// The summary of a span.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The span asked for.
    pub since: Duration,
    /// Its start and end (now).
    pub from: SystemTime,
    /// Its end.
    pub to: SystemTime,
    /// Where the history begins to know, when later than `from`.
    pub known_from: SystemTime,
    /// Attempts by outcome word (every word, zeros included).
    pub attempts: Vec<(&'static str, u64)>,
    /// Seconds asleep in the span.
    pub asleep: f64,
    /// Seconds from `known_from` to `to`.
    pub known: f64,
    /// Wake reasons with counts, most first (`unknown` included).
    pub wakes: Vec<(String, u64)>,
    /// Blockers by time held, most first.
    pub blockers: Vec<Blocker>,
    /// Sources that aborted attempts, most first.
    pub aborts: Vec<(String, u64)>,
    /// Watchers lsusd went on without (`tardy=`), by command, most first
    /// (`unknown` for an attempt whose tardy watchers it could not name).
    pub tardy: Vec<(String, u64)>,
    /// Attempts made by a forced request (`forced=1`).
    pub forced: u64,
    /// `suspend_stats/success` growth against lsusd's suspends.
    pub agreement: Option<Agreement>,
    /// The kernel's counters now (since boot).
    pub kernel: Option<SuspendStats>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn at(t: SystemTime) -> f64 {
    epoch(t)
}

/// Counts names, most first (then by name).
fn ranked(counts: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Sums up `records` (oldest first, the whole history) over the `since`
/// before `now`.
pub fn summarize(
    records: &[Record],
    now: SystemTime,
    since: Duration,
    kernel: Option<SuspendStats>,
) -> Summary {
    let from = now.checked_sub(since).unwrap_or(SystemTime::UNIX_EPOCH);
    let (t0, t1) = (at(from), at(now));
    let inside: Vec<&Record> = records.iter().filter(|r| at(r.time) >= t0).collect();
    // The history knows the whole span when it has a record from before;
    // else from the start of its first attempt.
    let known_from = if records.iter().any(|r| at(r.time) < t0) {
        t0
    } else {
        inside.first().map_or(t1, |r| {
            let mut start = at(r.time);
            if let Outcome::Suspended { seconds } = r.outcome {
                start -= seconds;
            }
            start - r.details.awake.unwrap_or(0.0)
        })
    }
    .clamp(t0, t1);
    let mut attempts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut asleep = 0.0;
    let mut wakes = BTreeMap::new();
    let mut aborts = BTreeMap::new();
    let mut tardy = BTreeMap::new();
    let mut forced = 0;
    let mut blockers: BTreeMap<String, Blocker> = BTreeMap::new();
    for r in &inside {
        *attempts.entry(r.outcome.word()).or_default() += 1;
        if let Outcome::Suspended { seconds } = r.outcome {
            let end = at(r.time);
            asleep += (end - (end - seconds).max(t0)).max(0.0);
            match &r.details.woke {
                Some(w) if w.is_empty() => *wakes.entry("unknown".to_string()).or_default() += 1,
                // The likeliest source is the wake reason.
                Some(w) => *wakes.entry(w[0].clone()).or_default() += 1,
                None => {}
            }
        }
        if let Some(first) = r.details.source.first() {
            *aborts.entry(first.clone()).or_default() += 1;
        }
        match &r.details.tardy {
            Some(t) if t.is_empty() => *tardy.entry("unknown".to_string()).or_default() += 1,
            Some(t) => {
                for n in t {
                    *tardy.entry(n.command.clone()).or_default() += 1;
                }
            }
            None => {}
        }
        forced += u64::from(r.details.forced);
        for h in &r.details.held {
            let b = blockers
                .entry(h.command.clone())
                .or_insert_with(|| Blocker {
                    command: h.command.clone(),
                    seconds: 0.0,
                    pids: Vec::new(),
                });
            b.seconds += h.seconds;
            if !b.pids.contains(&h.pid) {
                b.pids.push(h.pid);
            }
        }
    }
    let mut blockers: Vec<Blocker> = blockers.into_values().collect();
    blockers.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    Summary {
        since,
        from,
        to: now,
        known_from: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(known_from.max(0.0)),
        attempts: OUTCOMES
            .iter()
            .map(|&w| (w, attempts.get(w).copied().unwrap_or(0)))
            .collect(),
        asleep,
        known: t1 - known_from,
        wakes: ranked(wakes),
        blockers,
        aborts: ranked(aborts),
        tardy: ranked(tardy),
        forced,
        agreement: agreement(&inside),
        kernel,
    }
}

/// The kernel's `success` growth over the records that carry it, against
/// lsusd's suspends among them. The first record's own suspend is in
/// its `kernel_success` already, so the count starts just before it.
fn agreement(inside: &[&Record]) -> Option<Agreement> {
    let with: Vec<&&Record> = inside
        .iter()
        .filter(|r| r.details.kernel_success.is_some())
        .collect();
    let (first, last) = (with.first()?, with.last()?);
    let lsusd = inside
        .iter()
        .filter(|r| r.seq >= first.seq && r.seq <= last.seq && r.outcome.suspended())
        .count() as u64;
    let before = first.details.kernel_success? - u64::from(first.outcome.suspended());
    Some(Agreement {
        seqs: (first.seq, last.seq),
        kernel: last.details.kernel_success?.saturating_sub(before),
        lsusd,
    })
}

impl Summary {
    /// Returns how many attempts had outcome `word`.
    pub fn count(&self, word: &str) -> u64 {
        self.attempts
            .iter()
            .find(|(w, _)| *w == word)
            .map_or(0, |&(_, n)| n)
    }

    /// The summary as text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let total: u64 = self.attempts.iter().map(|(_, n)| n).sum();
        let _ = writeln!(
            out,
            "lsusd, the last {} (since {}):",
            human(secs(self.since)),
            local_time(self.from)
        );
        if self.known_from > self.from {
            let _ = writeln!(
                out,
                "  (the history begins at {})",
                local_time(self.known_from)
            );
        }
        let by: Vec<String> = self
            .attempts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(w, n)| format!("{w} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "attempts: {total}{}",
            if by.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.join(", "))
            }
        );
        let awake = (self.known - self.asleep).max(0.0);
        let ratio = if self.known > 0.0 {
            format!(
                " — asleep {:.0}% of {}",
                100.0 * self.asleep / self.known,
                human(self.known)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "suspends: {}, asleep {}, awake {}{ratio}",
            self.count("suspended"),
            human(self.asleep),
            human(awake)
        );
        let list = |v: &[(String, u64)]| -> String {
            if v.is_empty() {
                return "none".into();
            }
            let mut parts: Vec<String> = v
                .iter()
                .take(TOP)
                .map(|(n, c)| format!("{n} {c}"))
                .collect();
            let rest: u64 = v.iter().skip(TOP).map(|(_, c)| c).sum();
            if rest > 0 {
                parts.push(format!("other {rest}"));
            }
            parts.join(", ")
        };
        let _ = writeln!(out, "wake reasons: {}", list(&self.wakes));
        let blockers: Vec<String> = self
            .blockers
            .iter()
            .take(TOP)
            .map(|b| {
                let pids: Vec<String> = b.pids.iter().map(u32::to_string).collect();
                format!(
                    "{} {} (PID {})",
                    b.command,
                    human(b.seconds),
                    pids.join(", ")
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "blockers by time held: {}",
            if blockers.is_empty() {
                "none".into()
            } else {
                blockers.join(", ")
            }
        );
        let _ = writeln!(out, "abort sources: {}", list(&self.aborts));
        let _ = writeln!(
            out,
            "tardy watchers (gone on without): {}",
            list(&self.tardy)
        );
        if self.forced > 0 {
            let _ = writeln!(out, "forced attempts: {}", self.forced);
        }
        match &self.kernel {
            Some(k) => {
                let counters: Vec<String> =
                    k.counters.iter().map(|(n, v)| format!("{n} {v}")).collect();
                let _ = writeln!(
                    out,
                    "kernel suspend_stats (since boot): {}",
                    counters.join(", ")
                );
                if k.last_failed_step.is_some() || k.last_failed_dev.is_some() {
                    let _ = writeln!(
                        out,
                        "  last failure: step {}, device {}, errno {}",
                        k.last_failed_step.as_deref().unwrap_or("?"),
                        k.last_failed_dev.as_deref().unwrap_or("?"),
                        k.last_failed_errno.map_or("?".into(), |e| e.to_string())
                    );
                }
            }
            None => {
                let _ = writeln!(out, "kernel suspend_stats: not available");
            }
        }
        match &self.agreement {
            Some(a) if a.kernel == a.lsusd => {
                let _ = writeln!(
                    out,
                    "the kernel agrees: {} suspends from seq {} to seq {}",
                    a.kernel, a.seqs.0, a.seqs.1
                );
            }
            Some(a) => {
                let _ = writeln!(
                    out,
                    "the kernel disagrees: {} suspends from seq {} to seq {}, lsusd {} \
                     (something else wrote power/state, or lsusd was restarted)",
                    a.kernel, a.seqs.0, a.seqs.1, a.lsusd
                );
            }
            None => {}
        }
        out
    }
}

/// Runs `lsusctl stats`.
pub fn run(dir: &Path, since: Duration, json: bool, sysfs: &Path) -> Result<String, Error> {
    // Like the history, the statistics do not need lsusd running.
    let run = crate::rundir::open(dir)?;
    let records = crate::rundir::records(&run, None)?;
    let kernel = WakeupFiles::new(sysfs).suspend_stats();
    let s = summarize(&records, SystemTime::now(), since, kernel);
    if json {
        Ok(crate::json::to_line(&crate::json::Stats::from(&s))? + "\n")
    } else {
        Ok(s.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn recs(lines: &str) -> Vec<Record> {
        lines.lines().map(|l| l.trim().parse().unwrap()).collect()
    }

    #[test]
    fn a_day_summed_up() {
        let now = UNIX_EPOCH + Duration::from_secs(100_000);
        let records = recs(
            "seq=1 time=10000.000 outcome=suspended seconds=100.000 woke=rtc0 kernel_success=4
             seq=2 time=20000.000 outcome=suspended seconds=3000.000 awake=10.000 woke=rtc0 kernel_success=5
             seq=3 time=30000.000 outcome=blocked pids=7 held=7:600.000:rsync,9:10.000:sh
             seq=4 time=40000.000 outcome=wakeup-event source=PNP0C0C:00
             seq=5 time=50000.000 outcome=suspended seconds=5000.000 woke=unknown kernel_success=7
             seq=6 time=60000.000 outcome=blocked pids=7 held=7:60.000:rsync",
        );
        let s = summarize(&records, now, Duration::from_secs(86_400), None);
        // seq 1 is outside the day: the history knows all of it.
        assert_eq!(s.known_from, UNIX_EPOCH + Duration::from_secs(13_600));
        assert_eq!(s.count("suspended"), 2);
        assert_eq!(s.count("blocked"), 2);
        assert_eq!(s.count("wakeup-event"), 1);
        // seq 2 began before the day: only its part inside counts.
        assert_eq!(s.asleep, 8000.0);
        assert_eq!(
            s.wakes,
            [("rtc0".to_string(), 1), ("unknown".to_string(), 1)]
        );
        assert_eq!(s.blockers[0].command, "rsync");
        assert_eq!(s.blockers[0].seconds, 660.0);
        assert_eq!(s.blockers[1].command, "sh");
        assert_eq!(s.aborts, [("PNP0C0C:00".to_string(), 1)]);
        // kernel 5 → 7 with seq 2 suspended: 3 suspends, lsusd 2.
        let a = s.agreement.clone().unwrap();
        assert_eq!((a.kernel, a.lsusd, a.seqs), (3, 2, (2, 5)));
        let text = s.text();
        assert!(text.contains("wake reasons: rtc0 1, unknown 1"), "{text}");
        assert!(
            text.contains("blockers by time held: rsync 11m 00s (PID 7)"),
            "{text}"
        );
        assert!(text.contains("the kernel disagrees"), "{text}");
        let j = crate::json::to_line(&crate::json::Stats::from(&s)).unwrap();
        assert!(j.contains("\"suspends\":2,"), "{j}");
        assert!(
            j.contains("\"wake_reasons\":[{\"name\":\"rtc0\",\"count\":1}"),
            "{j}"
        );
        assert!(j.contains("\"agree\":false"), "{j}");
    }

    #[test]
    fn an_empty_history_is_an_empty_summary() {
        let now = UNIX_EPOCH + Duration::from_secs(100_000);
        let s = summarize(&[], now, Duration::from_secs(3600), None);
        assert_eq!(s.count("suspended"), 0);
        assert_eq!(s.known, 0.0);
        assert!(s.text().contains("wake reasons: none"));
        let j = crate::json::to_line(&crate::json::Stats::from(&s)).unwrap();
        assert!(j.contains("\"asleep_ratio\":null"), "{j}");
    }
}
