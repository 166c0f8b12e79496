//! The `--json` documents of `lsusctl`: serde views of the reports, in the
//! key order the documents have always had (README.md, "lsusctl"). Here:
//! the helpers, the records and the lines of `watch`; the objects of
//! `status` and `stats` are in their own modules.
//!
//! Every top-level document (the `status` object, the `stats` object, each
//! line of `watch`, each record of the `history` array) begins with
//! `"version": VERSION`; a record inside another document does not repeat
//! it. Seconds and epoch times are written with 3 decimals (milliseconds,
//! as in the records of doc/protocol.md §6), NaN and infinities as `null`.

use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use lsus_proto::outcome::{Details, Outcome, Record};

use crate::error::Error;
use crate::fmt::epoch;
use crate::record::describe;

/// The version of the JSON documents: it grows when a key changes meaning
/// or goes away (new keys may appear without it).
pub const VERSION: u32 = 1;

/// Returns `doc` as one line of JSON (no newline).
pub fn to_line<T: Serialize>(doc: &T) -> Result<String, Error> {
    serde_json::to_string(doc).map_err(Error::Json)
}

/// Writes seconds with 3 decimals; NaN and infinities as `null`.
pub(crate) fn millis<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if !x.is_finite() {
        return s.serialize_none();
    }
    // `{:.3}` of a finite f64 is a JSON number (no exponent, no `+`).
    RawValue::from_string(format!("{x:.3}"))
        .map_err(S::Error::custom)?
        .serialize(s)
}

/// [`millis`] for an optional value; `None` is `null`.
pub(crate) fn opt_millis<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    millis(&x.unwrap_or(f64::NAN), s)
}

/// Writes pairs as one object, in their order.
pub(crate) fn pairs<K: Serialize, V: Serialize, S: Serializer>(
    v: &[(K, V)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(k, n)| (k, n)))
}

// ---- records (history, status, watch) -------------------------------------

#[derive(Serialize)]
struct HeldJson<'a> {
    pid: u32,
    #[serde(serialize_with = "millis")]
    seconds: f64,
    command: &'a str,
}

/// An outcome record: the keys of doc/protocol.md §6 that are set, plus
/// `description`; lists are arrays (`woke` is `[]` for `woke=unknown`),
/// `held` an array of `{pid, seconds, command}`.
#[derive(Serialize)]
pub struct RecordJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    seq: u64,
    #[serde(serialize_with = "millis")]
    time: f64,
    outcome: &'static str,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_millis")]
    seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pids: Option<&'a [u32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno: Option<i32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    missing: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_millis")]
    awake: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    woke: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wake_irq: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resume_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    source: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_dev: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_errno: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_step: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_success: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_fail: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    held: Vec<HeldJson<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    locker: &'a [u32],
    #[serde(skip_serializing_if = "Option::is_none")]
    tardy: Option<Vec<NamedJson<'a>>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    forced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    overrode: Vec<NamedJson<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    expired: Vec<NamedJson<'a>>,
}

/// A process of `tardy` or `overrode`: `{pid, command}`.
#[derive(Serialize)]
pub(crate) struct NamedJson<'a> {
    pid: u32,
    command: &'a str,
}

pub(crate) fn named(v: &[lsus_proto::outcome::Named]) -> Vec<NamedJson<'_>> {
    v.iter()
        .map(|n| NamedJson {
            pid: n.pid,
            command: &n.command,
        })
        .collect()
}

impl<'a> RecordJson<'a> {
    /// The record as a document of its own (an element of `history --json`).
    pub fn document(r: &'a Record) -> Self {
        RecordJson {
            version: Some(VERSION),
            ..RecordJson::nested(r)
        }
    }

    /// The record inside another document (`status`, `watch`).
    pub fn nested(r: &'a Record) -> Self {
        let Details {
            awake,
            woke,
            wake_irq,
            resume_reason,
            source,
            failed_dev,
            failed_errno,
            failed_step,
            kernel_success,
            kernel_fail,
            held,
            locker,
            tardy,
            forced,
            why,
            by,
            overrode,
            expired,
        } = &r.details;
        RecordJson {
            version: None,
            seq: r.seq,
            time: epoch(r.time),
            outcome: r.outcome.word(),
            description: describe(&r.outcome),
            seconds: match r.outcome {
                Outcome::Suspended { seconds } => Some(seconds),
                _ => None,
            },
            pids: match &r.outcome {
                Outcome::Blocked { pids } => Some(pids),
                _ => None,
            },
            errno: match r.outcome {
                Outcome::WriteFailed { errno } => Some(errno),
                _ => None,
            },
            missing: match &r.outcome {
                Outcome::DryRun { missing } => missing,
                _ => &[],
            },
            awake: *awake,
            woke: woke.as_deref(),
            wake_irq: *wake_irq,
            resume_reason: resume_reason.as_deref(),
            source,
            failed_dev: failed_dev.as_deref(),
            failed_errno: *failed_errno,
            failed_step: failed_step.as_deref(),
            kernel_success: *kernel_success,
            kernel_fail: *kernel_fail,
            held: held
                .iter()
                .map(|h| HeldJson {
                    pid: h.pid,
                    seconds: h.seconds,
                    command: &h.command,
                })
                .collect(),
            locker,
            tardy: tardy.as_deref().map(named),
            forced: *forced,
            why: why.as_deref(),
            by: *by,
            overrode: named(overrode),
            expired: named(expired),
        }
    }
}

// ---- watch -----------------------------------------------------------------

/// One line of `lsusctl watch --json`.
#[derive(Serialize)]
pub struct WatchLine<'a> {
    version: u32,
    event: &'static str,
    #[serde(serialize_with = "millis")]
    time: f64,
    #[serde(flatten)]
    resumed: Option<Resumed<'a>>,
}

/// What a resume line adds.
#[derive(Serialize)]
struct Resumed<'a> {
    /// Seconds since the suspend line (`null` when the watch began after it).
    #[serde(serialize_with = "opt_millis")]
    duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<RecordJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suspended: Option<bool>,
}

impl<'a> WatchLine<'a> {
    /// "suspend" at `time` (seconds since the epoch).
    pub fn suspend(time: f64) -> Self {
        WatchLine {
            version: VERSION,
            event: "suspend",
            time,
            resumed: None,
        }
    }

    /// "resume" at `time`, `duration` seconds after the suspend line, with
    /// lsusd's record of the attempt when it came.
    pub fn resume(time: f64, duration: Option<f64>, record: Option<&'a Record>) -> Self {
        WatchLine {
            version: VERSION,
            event: "resume",
            time,
            resumed: Some(Resumed {
                duration,
                outcome: record.map(RecordJson::nested),
                suspended: record.map(|r| r.outcome.suspended()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Secs {
        #[serde(serialize_with = "millis")]
        a: f64,
        #[serde(serialize_with = "millis")]
        b: f64,
        #[serde(serialize_with = "opt_millis")]
        c: Option<f64>,
        #[serde(serialize_with = "pairs")]
        d: Vec<(&'static str, u64)>,
    }

    #[test]
    fn seconds_have_three_decimals_and_nan_is_null() {
        let s = Secs {
            a: 1.5,
            b: f64::INFINITY,
            c: None,
            d: vec![("z", 1), ("a", 2)],
        };
        assert_eq!(
            to_line(&s).unwrap(),
            r#"{"a":1.500,"b":null,"c":null,"d":{"z":1,"a":2}}"#
        );
        let s = Secs {
            a: -0.0004,
            b: 1_764_067_200.125_6,
            c: Some(f64::NAN),
            d: Vec::new(),
        };
        assert_eq!(
            to_line(&s).unwrap(),
            r#"{"a":-0.000,"b":1764067200.126,"c":null,"d":{}}"#
        );
    }

    #[test]
    fn a_history_document_carries_the_details() {
        let r = Record {
            seq: 4,
            time: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1500),
            outcome: Outcome::Blocked { pids: vec![7] },
            details: Default::default(),
        };
        assert_eq!(
            to_line(&RecordJson::document(&r)).unwrap(),
            "{\"version\":1,\"seq\":4,\"time\":1.500,\"outcome\":\"blocked\",\
             \"description\":\"blocked by PID 7\",\"pids\":[7]}"
        );
        let r: Record = "seq=5 time=2.000 outcome=suspended seconds=1.000 woke=rtc0 \
                         held=7:1.500:sh\n"
            .parse()
            .unwrap();
        let j = to_line(&RecordJson::nested(&r)).unwrap();
        assert!(
            j.ends_with(
                ",\"woke\":[\"rtc0\"],\"held\":[{\"pid\":7,\"seconds\":1.500,\"command\":\"sh\"}]}"
            ),
            "{j}"
        );
    }

    #[test]
    fn a_record_has_its_keys_in_the_order_of_the_protocol() {
        // The example of doc/protocol.md §6, "As JSON".
        let r: Record = "seq=20 time=1764067290.010 outcome=suspended seconds=61.250 \
                         awake=28.004 woke=rtc0 wake_irq=8 kernel_success=12 kernel_fail=0\n"
            .parse()
            .unwrap();
        let docs = [RecordJson::document(&r)];
        assert_eq!(
            to_line(&docs).unwrap(),
            r#"[{"version":1,"seq":20,"time":1764067290.010,"outcome":"suspended","description":"suspended for 61.2 s","seconds":61.250,"awake":28.004,"woke":["rtc0"],"wake_irq":8,"kernel_success":12,"kernel_fail":0}]"#
        );
        let r: Record = "seq=3 time=1.000 outcome=dry-run missing=power/state\n"
            .parse()
            .unwrap();
        let j = to_line(&RecordJson::nested(&r)).unwrap();
        assert!(j.ends_with(r#""missing":["power/state"]}"#), "{j}");
    }

    #[test]
    fn a_watch_line_says_suspend_or_resume() {
        assert_eq!(
            to_line(&WatchLine::suspend(2.5)).unwrap(),
            r#"{"version":1,"event":"suspend","time":2.500}"#
        );
        assert_eq!(
            to_line(&WatchLine::resume(4.0, None, None)).unwrap(),
            r#"{"version":1,"event":"resume","time":4.000,"duration":null}"#
        );
    }
}
