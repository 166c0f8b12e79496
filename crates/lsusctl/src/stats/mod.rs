//! `lsusctl stats`: the history of a span of time summed up — why the
//! battery is empty.
//!
//! [`summarize`] sums the records up into a [`Summary`]; [`text`] and
//! [`json`] render it.

mod json;
mod text;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use lsus_proto::outcome::{Outcome, Record};
use lsus_sys::wakeup::{SuspendStats, WakeupFiles};

use crate::error::Error;
use crate::fmt::epoch;

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

pub(crate) fn secs(d: Duration) -> f64 {
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
    let known_from = crate::record::known_from(records, t0, t1);
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
}

/// Runs `lsusctl stats`.
pub fn run(dir: &Path, since: Duration, json: bool, sysfs: &Path) -> Result<String, Error> {
    // Like the history, the statistics do not need lsusd running.
    let run = crate::rundir::open(dir)?;
    let records = crate::rundir::records(&run, None)?;
    let kernel = WakeupFiles::new(sysfs).suspend_stats();
    let s = summarize(&records, SystemTime::now(), since, kernel);
    if json {
        Ok(json::json(&s)? + "\n")
    } else {
        Ok(s.text())
    }
}

/// The summary of a day that the tests of [`text`] and [`json`] check too:
/// suspends, blockers, an abort, and a kernel count that disagrees.
#[cfg(test)]
fn sample_day() -> Summary {
    let now = std::time::UNIX_EPOCH + Duration::from_secs(100_000);
    let records = crate::record::parse_lines(
        "seq=1 time=10000.000 outcome=suspended seconds=100.000 woke=rtc0 kernel_success=4
         seq=2 time=20000.000 outcome=suspended seconds=3000.000 awake=10.000 woke=rtc0 kernel_success=5
         seq=3 time=30000.000 outcome=blocked pids=7 held=7:600.000:rsync,9:10.000:sh
         seq=4 time=40000.000 outcome=wakeup-event source=PNP0C0C:00
         seq=5 time=50000.000 outcome=suspended seconds=5000.000 woke=unknown kernel_success=7
         seq=6 time=60000.000 outcome=blocked pids=7 held=7:60.000:rsync",
    );
    summarize(&records, now, Duration::from_secs(86_400), None)
}

/// The summary of an hour with no history.
#[cfg(test)]
fn sample_empty() -> Summary {
    let now = std::time::UNIX_EPOCH + Duration::from_secs(100_000);
    summarize(&[], now, Duration::from_secs(3600), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn a_day_summed_up() {
        let s = sample_day();
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
    }

    #[test]
    fn an_empty_history_is_an_empty_summary() {
        let s = sample_empty();
        assert_eq!(s.count("suspended"), 0);
        assert_eq!(s.known, 0.0);
    }
}
