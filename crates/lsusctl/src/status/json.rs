//! The [`Report`] as the JSON object of `lsusctl status --json`, in the
//! key order it has always had (README.md, "lsusctl"); the helpers of
//! [`crate::json`] write its seconds and records.

use serde::Serialize;

use lsus_proto::logind::{Inhibitor, LogindStatus};
use lsus_proto::status::{LsusedStatus, WakealarmdStatus};

use super::{Helper, IdleReport, Report};
use crate::error::Error;
use crate::json::{named, opt_millis, to_line, NamedJson, RecordJson, VERSION};
use crate::procinfo::Holder;

/// Writes the report as one JSON object.
pub fn json(r: &Report) -> Result<String, Error> {
    to_line(&Status::from(r))
}

/// `lsusctl status --json` when lsusd is not running.
#[derive(Serialize)]
pub struct NotRunning<'a> {
    version: u32,
    running: bool,
    run_dir: &'a str,
    why: &'a str,
}

impl<'a> NotRunning<'a> {
    /// The document for the run directory `run_dir`, and why lsusd is not
    /// running there.
    pub fn new(run_dir: &'a str, why: &'a str) -> Self {
        NotRunning {
            version: VERSION,
            running: false,
            run_dir,
            why,
        }
    }
}

#[derive(Serialize)]
struct HolderJson<'a> {
    pid: u32,
    uid: Option<u32>,
    user: Option<&'a str>,
    comm: Option<&'a str>,
    cmdline: Option<&'a str>,
    why: Option<&'a str>,
    mode: &'static str,
    locker_pid: Option<u32>,
    /// A timed block's seconds left (doc/protocol.md §13).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_millis")]
    timed_left: Option<f64>,
}

fn holders(hs: &[Holder]) -> Vec<HolderJson<'_>> {
    hs.iter()
        .map(|h| HolderJson {
            pid: h.pid,
            uid: h.uid,
            user: h.user.as_deref(),
            comm: h.comm.as_deref(),
            cmdline: h.cmdline.as_deref(),
            why: h.why.as_deref(),
            mode: if h.exclusive { "exclusive" } else { "shared" },
            locker_pid: h.locker,
            timed_left: h.timed_left.map(|d| d.as_secs_f64()),
        })
        .collect()
}

#[derive(Serialize)]
struct Pid {
    pid: u32,
}

#[derive(Serialize)]
struct Holders<'a> {
    on: bool,
    holders: Vec<HolderJson<'a>>,
}

#[derive(Serialize)]
struct Watchers<'a> {
    count: usize,
    holders: Vec<HolderJson<'a>>,
}

/// lsused: its counts are `null` when it publishes none.
#[derive(Serialize)]
struct LsusedJson<'a> {
    pid: u32,
    clients: Option<usize>,
    descriptors: Option<usize>,
    /// Clients cut by the reply timeout since lsused started.
    tardy_total: Option<u64>,
    /// The clients cut at the most recent reply timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    tardy: Option<Vec<NamedJson<'a>>>,
}

impl<'a> LsusedJson<'a> {
    fn new(pid: u32, s: Option<&'a LsusedStatus>) -> Self {
        LsusedJson {
            pid,
            clients: s.map(|s| s.clients),
            descriptors: s.map(|s| s.descriptors),
            tardy_total: s.map(|s| s.tardy_total),
            tardy: s.filter(|s| !s.tardy.is_empty()).map(|s| named(&s.tardy)),
        }
    }
}

/// wakealarmd: its counts are `null` when it publishes none.
#[derive(Serialize)]
struct WakealarmdJson {
    pid: u32,
    connections: Option<usize>,
    pending: Option<usize>,
    blocking: Option<usize>,
    next: Option<u64>,
}

impl WakealarmdJson {
    fn new(pid: u32, s: Option<&WakealarmdStatus>) -> Self {
        WakealarmdJson {
            pid,
            connections: s.map(|s| s.connections),
            pending: s.map(|s| s.pending),
            blocking: s.map(|s| s.blocking),
            next: s.and_then(|s| s.next),
        }
    }
}

fn helper<'a, S, J>(h: &'a Helper<S>, new: impl Fn(u32, Option<&'a S>) -> J) -> Option<J> {
    match h {
        Helper::NotRunning => None,
        Helper::Running { pid, status } => Some(new(*pid, status.as_ref())),
    }
}

#[derive(Serialize)]
struct InhibitorJson<'a> {
    who: &'a str,
    why: &'a str,
    what: &'a str,
    mode: &'a str,
    pid: u32,
    uid: u32,
    user: String,
    blocks_sleep: bool,
}

impl<'a> From<&'a Inhibitor> for InhibitorJson<'a> {
    fn from(i: &'a Inhibitor) -> Self {
        InhibitorJson {
            who: &i.who,
            why: &i.why,
            what: &i.what,
            mode: &i.mode,
            pid: i.pid,
            uid: i.uid,
            user: i.user(),
            blocks_sleep: i.blocks_sleep(),
        }
    }
}

/// lsus-logind: what it publishes is `null` when it publishes nothing.
#[derive(Serialize)]
struct LogindJson<'a> {
    pid: u32,
    connected: Option<bool>,
    holding: Option<bool>,
    sleeping: Option<bool>,
    inhibitors: Option<Vec<InhibitorJson<'a>>>,
}

impl<'a> LogindJson<'a> {
    fn new(pid: u32, s: Option<&'a LogindStatus>) -> Self {
        LogindJson {
            pid,
            connected: s.map(|s| s.connected),
            holding: s.map(|s| s.holding),
            sleeping: s.map(|s| s.sleeping),
            inhibitors: s.map(|s| s.inhibitors.iter().map(InhibitorJson::from).collect()),
        }
    }
}

/// lsus-idle: its numbers are `null` when it publishes none.
#[derive(Serialize)]
struct IdleJson {
    pid: u32,
    #[serde(serialize_with = "opt_millis")]
    timeout: Option<f64>,
    devices: Option<usize>,
    #[serde(serialize_with = "opt_millis")]
    idle_seconds: Option<f64>,
    idle: Option<bool>,
    holding: Option<bool>,
}

impl IdleJson {
    fn new(r: &IdleReport) -> Self {
        let s = r.status.as_ref();
        IdleJson {
            pid: r.pid,
            timeout: s.map(|s| s.timeout.as_secs_f64()),
            devices: s.map(|s| s.devices),
            idle_seconds: s.map(|_| r.idle_for.as_secs_f64()),
            idle: s.map(|s| s.idle),
            holding: s.map(|s| s.holding),
        }
    }
}

/// `lsusctl status --json` (lsusd running).
#[derive(Serialize)]
struct Status<'a> {
    version: u32,
    running: bool,
    run_dir: &'a str,
    lsusd: Pid,
    blocked: bool,
    blockers: Vec<HolderJson<'a>>,
    entering: bool,
    in_progress: bool,
    #[serde(serialize_with = "opt_millis")]
    attempt_seconds: Option<f64>,
    not_ready: Vec<HolderJson<'a>>,
    request_pending: bool,
    immediate: Holders<'a>,
    watchers: Watchers<'a>,
    lsused: Option<LsusedJson<'a>>,
    wakealarmd: Option<WakealarmdJson>,
    logind: Option<LogindJson<'a>>,
    idle: Option<IdleJson>,
    last: Vec<RecordJson<'a>>,
}

impl<'a> From<&'a Report> for Status<'a> {
    fn from(r: &'a Report) -> Self {
        Status {
            version: VERSION,
            running: true,
            run_dir: &r.dir,
            lsusd: Pid { pid: r.lsusd },
            blocked: !r.blockers.is_empty(),
            blockers: holders(&r.blockers),
            entering: r.entering,
            in_progress: r.in_progress,
            attempt_seconds: r.attempt_seconds,
            not_ready: holders(&r.not_ready),
            request_pending: r.request_pending,
            immediate: Holders {
                on: r.immediate.as_ref().is_some_and(|h| !h.is_empty()),
                holders: holders(r.immediate.as_deref().unwrap_or_default()),
            },
            watchers: Watchers {
                count: r.watchers.len(),
                holders: holders(&r.watchers),
            },
            lsused: helper(&r.lsused, LsusedJson::new),
            wakealarmd: helper(&r.wakealarmd, WakealarmdJson::new),
            logind: r
                .logind
                .as_ref()
                .map(|(pid, s)| LogindJson::new(*pid, s.as_ref())),
            idle: r.idle.as_ref().map(IdleJson::new),
            last: r.last.iter().map(RecordJson::nested).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{sample, sample_with_idle, sample_with_logind};
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let j = to_line(&NotRunning::new("/run/a\"b\n", "\u{1}")).unwrap();
        assert_eq!(
            j,
            r#"{"version":1,"running":false,"run_dir":"/run/a\"b\n","why":"\u0001"}"#
        );
    }

    #[test]
    fn names_the_holder_and_who_took_the_lock() {
        let j = json(&sample()).unwrap();
        assert!(
            j.contains(
                "\"blocked\":true,\"blockers\":[{\"pid\":154,\"uid\":0,\"user\":null,\
                 \"comm\":\"sh\",\"cmdline\":\"sh /scenarios/blocker.sh blocker\",\
                 \"why\":null,\"mode\":\"shared\",\"locker_pid\":158}]"
            ),
            "{j}"
        );
    }

    #[test]
    fn has_the_idle_object() {
        let r = sample_with_idle(true);
        let j = json(&r).unwrap();
        assert!(
            j.contains("\"idle\":{\"pid\":77,\"timeout\":300.000,\"devices\":1,\"idle_seconds\":42.900,\"idle\":true,\"holding\":true}"),
            "{j}"
        );
    }

    #[test]
    fn lists_loginds_inhibitors() {
        let j = json(&sample_with_logind()).unwrap();
        assert!(
            j.contains("\"logind\":{\"pid\":154,\"connected\":true,\"holding\":true,\"sleeping\":false,\"inhibitors\":[{\"who\":\"Videos\",\"why\":\"Playing\",\"what\":\"sleep:idle\",\"mode\":\"block\",\"pid\":4321,\"uid\":0,\"user\":\"root\",\"blocks_sleep\":true}]}"),
            "{j}"
        );
    }
}
