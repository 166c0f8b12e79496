//! Gathering the [`Report`]: the run directory, `/proc/locks` and what the
//! helper daemons publish.

use std::collections::HashMap;
use std::path::Path;

use lsus_proto::idle::{IdleStatus, LSUS_IDLE_STATUS};
use lsus_proto::logind;
use lsus_proto::rundir::{Access, RunDir, DISABLED, IMMEDIATE, REQUEST, WATCHING, WATCHING_NEXT};
use lsus_proto::status::{LSUSED_STATUS, WAKEALARMD_STATUS};

use super::{Helper, IdleReport, Report};
use crate::error::Error;
use crate::procinfo::{self, Holder};
use crate::rundir;

/// Gathers the report for the run directory `dir`.
pub fn gather(dir: &Path, last: usize) -> Result<Report, Error> {
    let (run, lsusd) = rundir::open_checked(dir)?;
    let locks = procinfo::holders(&run, DISABLED)?;
    let entering = locks.iter().any(|h| h.exclusive);
    let mut blockers = shared(locks);
    timed_left(&run, &mut blockers);
    let watching = run.stat(WATCHING)?;
    let in_progress = watching.is_some_and(|st| st.st_size > 0);
    // The byte of "suspend imminent" is the last write to `watching`.
    let attempt_seconds = watching.filter(|_| in_progress).map(|st| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        (now - (st.st_mtime as f64 + st.st_mtime_nsec as f64 / 1e9)).max(0.0)
    });
    let not_ready: Vec<Holder> = if in_progress {
        shared(procinfo::holders(&run, WATCHING)?)
    } else {
        Vec::new()
    };
    let request_pending = run.exists(REQUEST)?;
    let immediate = if run.exists(IMMEDIATE)? {
        Some(procinfo::holders(&run, IMMEDIATE)?)
    } else {
        None
    };
    let mut watchers = shared(
        procinfo::holders(&run, WATCHING)?
            .into_iter()
            .chain(procinfo::holders(&run, WATCHING_NEXT)?),
    );
    watchers.sort_by_key(|h| h.pid);
    watchers.dedup_by_key(|h| h.pid);
    let stands_for = stands_for(&run, &blockers);
    Ok(Report {
        dir: dir.display().to_string(),
        lsusd,
        blockers,
        entering,
        in_progress,
        request_pending,
        immediate,
        watchers,
        not_ready,
        attempt_seconds,
        lsused: helper(&run, "lsused", LSUSED_STATUS)?,
        wakealarmd: helper(&run, "wakealarmd", WAKEALARMD_STATUS)?,
        last: rundir::records(&run, Some(last))?,
        logind: logind::published(&run),
        stands_for,
        idle: idle_report(&run)?,
    })
}

/// The holders of shared locks among `holders`.
fn shared(holders: impl IntoIterator<Item = Holder>) -> Vec<Holder> {
    holders.into_iter().filter(|h| !h.exclusive).collect()
}

/// The helper daemon `daemon` and its status file `file`.
fn helper<S: std::str::FromStr>(
    run: &RunDir,
    daemon: &str,
    file: &str,
) -> Result<Helper<S>, Error> {
    let Some(pid) = procinfo::daemon_pid(run, daemon)? else {
        return Ok(Helper::NotRunning);
    };
    // RUN/records/NAME (RUN/NAME from an older daemon).
    let status = run.read_published(file)?.and_then(|t| t.parse().ok());
    Ok(Helper::Running { pid, status })
}

/// lsus-idle, when it runs (the holder of `RUN/lsus-idle.pid`).
fn idle_report(run: &RunDir) -> Result<Option<IdleReport>, Error> {
    let Helper::Running { pid, status } = helper::<IdleStatus>(run, "lsus-idle", LSUS_IDLE_STATUS)?
    else {
        return Ok(None);
    };
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(std::time::Duration::from)
        .unwrap_or_default();
    let idle_for = status.map(|s| s.idle_for(now)).unwrap_or_default();
    Ok(Some(IdleReport {
        pid,
        status,
        idle_for,
    }))
}

/// Fills in the time left of each blocker that declared a deadline in
/// `RUN/until` (doc/protocol.md §13) that lsusd would accept.
fn timed_left(run: &RunDir, blockers: &mut [Holder]) {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let Ok(until) = run.subdir(lsus_proto::until::UNTIL_DIR, None) else {
        return;
    };
    let Ok(Some(disabled)) = run.stat(DISABLED) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let lockers: Vec<u32> = blockers.iter().map(|h| h.locker.unwrap_or(h.pid)).collect();
    for h in blockers.iter_mut() {
        let Ok(file) = until.open_file(&h.pid.to_string(), Access::READ, None, false) else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        let mut text = String::new();
        if !meta.is_file() || file.take(256).read_to_string(&mut text).is_err() {
            continue;
        }
        let Ok(declared) = text.parse::<lsus_proto::until::Declaration>() else {
            continue;
        };
        let count = lockers.iter().filter(|&&p| p == h.pid).count();
        if declared.valid_for(h.pid, meta.uid(), disabled.st_ino, count) {
            h.timed_left = Some(declared.left(now));
        }
    }
}

/// What each blocker stands for, named where every holder of `disabled`
/// is named (`lsus_proto::logind::name_holders`): lsus-logind's PID
/// becomes the logind inhibitors it holds the lock for.
fn stands_for(run: &RunDir, blockers: &[Holder]) -> HashMap<u32, Vec<String>> {
    let plain = |p: u32| format!("PID {p}");
    blockers
        .iter()
        .filter_map(|h| {
            let names = logind::name_holders(run, &[h.pid], plain);
            (names != [plain(h.pid)]).then_some((h.pid, names))
        })
        .collect()
}
