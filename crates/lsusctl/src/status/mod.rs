//! `lsusctl status`: why won't this machine sleep?
//!
//! [`gather`] reads the run directory and `/proc/locks` into a [`Report`];
//! [`text`] and [`json`] render it.

mod gather;
mod json;
mod text;

use std::collections::HashMap;

use lsus_proto::idle::IdleStatus;
use lsus_proto::logind::LogindStatus;
use lsus_proto::outcome::Record;
use lsus_proto::status::{LsusedStatus, WakealarmdStatus};

use crate::procinfo::Holder;

pub use gather::gather;
pub use json::{json, NotRunning};
pub use text::text;

/// A helper daemon as seen from the run directory.
#[derive(Debug)]
pub enum Helper<S> {
    /// Nobody holds its instance lock.
    NotRunning,
    /// Running with this PID; what its status file says, if readable.
    Running {
        /// The daemon's PID.
        pid: u32,
        /// Its published counts.
        status: Option<S>,
    },
}

/// Everything `status` reports.
#[derive(Debug)]
pub struct Report {
    /// The run directory.
    pub dir: String,
    /// lsusd's PID.
    pub lsusd: u32,
    /// Holders of a shared lock on `disabled`.
    pub blockers: Vec<Holder>,
    /// lsusd holds `disabled` exclusively: a suspend is being entered.
    pub entering: bool,
    /// `watching` is not empty: an attempt is in progress.
    pub in_progress: bool,
    /// `request` exists.
    pub request_pending: bool,
    /// `None` if `immediate` does not exist, else its lock holders.
    pub immediate: Option<Vec<Holder>>,
    /// Holders of shared locks on `watching` and `watching-next`.
    pub watchers: Vec<Holder>,
    /// During an attempt: the watchers still holding the old `watching`
    /// (not ready yet), and how long ago lsusd told them.
    pub not_ready: Vec<Holder>,
    /// Seconds since the attempt was announced (`watching` written).
    pub attempt_seconds: Option<f64>,
    /// lsused.
    pub lsused: Helper<LsusedStatus>,
    /// wakealarmd.
    pub wakealarmd: Helper<WakealarmdStatus>,
    /// The last outcomes, oldest first.
    pub last: Vec<Record>,
    /// lsus-logind, when it runs: its PID and the inhibitors it publishes.
    pub logind: Option<(u32, Option<LogindStatus>)>,
    /// Blockers that stand for others (lsus-logind for logind's
    /// inhibitors): PID → the names of what it stands for.
    pub stands_for: HashMap<u32, Vec<String>>,
    /// lsus-idle, when it runs.
    pub idle: Option<IdleReport>,
}

/// lsus-idle as `status` shows it.
#[derive(Debug)]
pub struct IdleReport {
    /// Its PID.
    pub pid: u32,
    /// What it publishes, if readable.
    pub status: Option<IdleStatus>,
    /// How long the machine has been idle (from the status and
    /// `CLOCK_MONOTONIC` now).
    pub idle_for: std::time::Duration,
}

/// The report that the tests of [`text`] and [`json`] start from: the
/// blocker of doc/protocol.md §1.1 for shell, on a system where the user's
/// name is unknown (no /etc/passwd, as in an initramfs).
#[cfg(test)]
fn sample() -> Report {
    Report {
        dir: "/run/suspend".into(),
        lsusd: 99,
        blockers: vec![Holder {
            pid: 154,
            locker: Some(158),
            exclusive: false,
            uid: Some(0),
            user: None,
            comm: Some("sh".into()),
            cmdline: Some("sh /scenarios/blocker.sh blocker".into()),
            why: None,
            kept_hidden: false,
            timed_left: None,
        }],
        entering: false,
        in_progress: false,
        request_pending: true,
        immediate: None,
        watchers: Vec::new(),
        not_ready: Vec::new(),
        attempt_seconds: None,
        lsused: Helper::NotRunning,
        wakealarmd: Helper::NotRunning,
        last: Vec::new(),
        logind: None,
        stands_for: HashMap::new(),
        idle: None,
    }
}

/// [`sample`] with lsus-logind holding the block for one inhibitor.
#[cfg(test)]
fn sample_with_logind() -> Report {
    let mut r = sample();
    r.blockers[0].locker = None;
    r.stands_for.insert(
        154,
        vec!["logind inhibitor \"Playing\" (Videos, PID 4321, user root)".into()],
    );
    r.logind = Some((
        154,
        Some(LogindStatus {
            connected: true,
            holding: true,
            sleeping: false,
            inhibitors: vec![lsus_proto::logind::Inhibitor {
                what: "sleep:idle".into(),
                who: "Videos".into(),
                why: "Playing".into(),
                mode: "block".into(),
                uid: 0,
                pid: 4321,
            }],
        }),
    ));
    r
}

/// [`sample`] with lsus-idle running, idle for 42.9 s of 300 s: with
/// `holding`, idle and holding immediate mode with 1 input device, else
/// not idle yet with 3.
#[cfg(test)]
fn sample_with_idle(holding: bool) -> Report {
    let mut r = sample();
    r.idle = Some(IdleReport {
        pid: 77,
        status: Some(IdleStatus {
            timeout: std::time::Duration::from_secs(300),
            devices: if holding { 1 } else { 3 },
            idle: holding,
            holding,
            idle_since: 1000,
        }),
        idle_for: std::time::Duration::from_millis(42_900),
    });
    r
}
