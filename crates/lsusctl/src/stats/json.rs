//! The [`Summary`] as the JSON object of `lsusctl stats --json`, in the
//! key order it has always had; the helpers of [`crate::json`] write its
//! seconds.

use serde::ser::SerializeMap as _;
use serde::{Serialize, Serializer};

use lsus_sys::wakeup::SuspendStats;

use super::{Agreement, Blocker, Summary};
use crate::error::Error;
use crate::fmt::epoch;
use crate::json::{millis, opt_millis, pairs, to_line, VERSION};

/// Writes the summary as one JSON object.
pub fn json(s: &Summary) -> Result<String, Error> {
    to_line(&Stats::from(s))
}

#[derive(Serialize)]
struct Ranked<'a> {
    name: &'a str,
    count: u64,
}

fn ranked(v: &[(String, u64)]) -> Vec<Ranked<'_>> {
    v.iter()
        .map(|(name, count)| Ranked {
            name,
            count: *count,
        })
        .collect()
}

#[derive(Serialize)]
struct BlockerJson<'a> {
    command: &'a str,
    #[serde(serialize_with = "millis")]
    seconds: f64,
    pids: &'a [u32],
}

impl<'a> From<&'a Blocker> for BlockerJson<'a> {
    fn from(b: &'a Blocker) -> Self {
        BlockerJson {
            command: &b.command,
            seconds: b.seconds,
            pids: &b.pids,
        }
    }
}

/// The kernel's `suspend_stats`: its counters, then the last failure.
struct KernelJson<'a>(&'a SuspendStats);

impl Serialize for KernelJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let k = self.0;
        let mut map = s.serialize_map(Some(k.counters.len() + 3))?;
        for (name, n) in &k.counters {
            map.serialize_entry(name, n)?;
        }
        map.serialize_entry("last_failed_dev", &k.last_failed_dev)?;
        map.serialize_entry("last_failed_errno", &k.last_failed_errno)?;
        map.serialize_entry("last_failed_step", &k.last_failed_step)?;
        map.end()
    }
}

#[derive(Serialize)]
struct AgreementJson {
    from_seq: u64,
    to_seq: u64,
    kernel_suspends: u64,
    lsusd_suspends: u64,
    agree: bool,
}

impl From<&Agreement> for AgreementJson {
    fn from(a: &Agreement) -> Self {
        AgreementJson {
            from_seq: a.seqs.0,
            to_seq: a.seqs.1,
            kernel_suspends: a.kernel,
            lsusd_suspends: a.lsusd,
            agree: a.kernel == a.lsusd,
        }
    }
}

/// `lsusctl stats --json`.
#[derive(Serialize)]
struct Stats<'a> {
    version: u32,
    #[serde(serialize_with = "millis")]
    since_seconds: f64,
    #[serde(serialize_with = "millis")]
    from: f64,
    #[serde(serialize_with = "millis")]
    to: f64,
    #[serde(serialize_with = "millis")]
    known_from: f64,
    #[serde(serialize_with = "pairs")]
    attempts: &'a [(&'static str, u64)],
    suspends: u64,
    #[serde(serialize_with = "millis")]
    asleep_seconds: f64,
    #[serde(serialize_with = "millis")]
    awake_seconds: f64,
    /// `null` when the history knows no time of the span.
    #[serde(serialize_with = "opt_millis")]
    asleep_ratio: Option<f64>,
    wake_reasons: Vec<Ranked<'a>>,
    blockers: Vec<BlockerJson<'a>>,
    abort_sources: Vec<Ranked<'a>>,
    tardy_watchers: Vec<Ranked<'a>>,
    forced: u64,
    kernel: Option<KernelJson<'a>>,
    agreement: Option<AgreementJson>,
}

impl<'a> From<&'a Summary> for Stats<'a> {
    fn from(s: &'a Summary) -> Self {
        Stats {
            version: VERSION,
            since_seconds: s.since.as_secs_f64(),
            from: epoch(s.from),
            to: epoch(s.to),
            known_from: epoch(s.known_from),
            attempts: &s.attempts,
            suspends: s.count("suspended"),
            asleep_seconds: s.asleep,
            awake_seconds: (s.known - s.asleep).max(0.0),
            asleep_ratio: (s.known > 0.0).then(|| s.asleep / s.known),
            wake_reasons: ranked(&s.wakes),
            blockers: s.blockers.iter().map(BlockerJson::from).collect(),
            abort_sources: ranked(&s.aborts),
            tardy_watchers: ranked(&s.tardy),
            forced: s.forced,
            kernel: s.kernel.as_ref().map(KernelJson),
            agreement: s.agreement.as_ref().map(AgreementJson::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{sample_day, sample_empty};
    use super::*;

    #[test]
    fn a_day_as_json() {
        let j = json(&sample_day()).unwrap();
        assert!(j.contains("\"suspends\":2,"), "{j}");
        assert!(
            j.contains("\"wake_reasons\":[{\"name\":\"rtc0\",\"count\":1}"),
            "{j}"
        );
        assert!(j.contains("\"agree\":false"), "{j}");
    }

    #[test]
    fn an_empty_history_has_no_ratio() {
        let j = json(&sample_empty()).unwrap();
        assert!(j.contains("\"asleep_ratio\":null"), "{j}");
    }
}
