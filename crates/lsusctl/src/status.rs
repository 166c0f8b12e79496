//! `lsusctl status`: why won't this machine sleep?

use std::fmt::Write as _;
use std::io::Read;

use std::collections::HashMap;

use lsus_proto::idle::{IdleStatus, LSUS_IDLE_STATUS};
use lsus_proto::logind::{self, LogindStatus};
use lsus_proto::outcome::Record;
use lsus_proto::rundir::{Access, RunDir, DISABLED, IMMEDIATE, REQUEST, WATCHING, WATCHING_NEXT};
use lsus_proto::status::{LsusedStatus, WakealarmdStatus, LSUSED_STATUS, WAKEALARMD_STATUS};

use crate::error::Error;
use crate::fmt::local_time;
use crate::history;
use crate::procinfo::{self, Holder};

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

/// lsus-idle, when it runs (the holder of `RUN/lsus-idle.pid`).
fn idle_report(run: &RunDir) -> Result<Option<IdleReport>, Error> {
    let Some(pid) = procinfo::daemon_pid(run, "lsus-idle")? else {
        return Ok(None);
    };
    let status: Option<IdleStatus> = read_text(run, LSUS_IDLE_STATUS)?.and_then(|t| t.parse().ok());
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

/// Reads `name` from `run`; `None` if it does not exist.
pub fn read_text(run: &RunDir, name: &str) -> Result<Option<String>, Error> {
    let mut file = match run.open_file(name, Access::READ, None, false) {
        Ok(f) => f,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| Error::Io {
        what: format!("cannot read {}", run.join(name).display()),
        source: e,
    })?;
    Ok(Some(text))
}

/// Opens the run directory; a missing one means lsusd is not running.
pub fn open_run_dir(dir: &std::path::Path) -> Result<RunDir, Error> {
    RunDir::open(dir).map_err(|e| {
        if e.errno() == Some(libc::ENOENT) {
            Error::NotRunning {
                dir: dir.to_path_buf(),
                why: "the run directory does not exist".into(),
            }
        } else {
            e.into()
        }
    })
}

/// Opens the run directory and checks that lsusd serves it; returns its PID.
pub fn open_checked(dir: &std::path::Path) -> Result<(RunDir, u32), Error> {
    let run = open_run_dir(dir)?;
    // Searching the directory needs execute permission; a plain open does not.
    run.stat(DISABLED)?;
    match procinfo::daemon_pid(&run, "lsusd")? {
        Some(pid) => Ok((run, pid)),
        None => Err(Error::NotRunning {
            dir: dir.to_path_buf(),
            why: "nobody holds the lock on lsusd.pid".into(),
        }),
    }
}

fn helper<S: std::str::FromStr>(
    run: &RunDir,
    daemon: &str,
    file: &str,
) -> Result<Helper<S>, Error> {
    let Some(pid) = procinfo::daemon_pid(run, daemon)? else {
        return Ok(Helper::NotRunning);
    };
    let status = read_text(run, file)?.and_then(|t| t.parse().ok());
    Ok(Helper::Running { pid, status })
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

/// Gathers the report for the run directory `dir`.
pub fn gather(dir: &std::path::Path, last: usize) -> Result<Report, Error> {
    let (run, lsusd) = open_checked(dir)?;
    let locks = procinfo::holders(&run, DISABLED)?;
    let entering = locks.iter().any(|h| h.exclusive);
    let mut blockers: Vec<Holder> = locks.into_iter().filter(|h| !h.exclusive).collect();
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
        procinfo::holders(&run, WATCHING)?
            .into_iter()
            .filter(|h| !h.exclusive)
            .collect()
    } else {
        Vec::new()
    };
    let request_pending = run.exists(REQUEST)?;
    let immediate = if run.exists(IMMEDIATE)? {
        Some(procinfo::holders(&run, IMMEDIATE)?)
    } else {
        None
    };
    let mut watchers: Vec<Holder> = procinfo::holders(&run, WATCHING)?
        .into_iter()
        .chain(procinfo::holders(&run, WATCHING_NEXT)?)
        .filter(|h| !h.exclusive)
        .collect();
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
        last: history::read(&run, Some(last))?,
        logind: logind::published(&run),
        stands_for,
        idle: idle_report(&run)?,
    })
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

fn user(h: &Holder) -> String {
    match (&h.user, h.uid) {
        (Some(name), _) => name.clone(),
        (None, Some(uid)) => uid.to_string(),
        (None, None) => "?".into(),
    }
}

fn short(h: &Holder) -> String {
    format!("PID {} {}", h.pid, h.comm.as_deref().unwrap_or("?"))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Writes the report as text.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lsusd: running, PID {}, run directory {}",
        r.lsusd, r.dir
    );
    if r.blockers.is_empty() {
        out.push_str("suspend: not blocked\n");
    } else {
        let _ = writeln!(
            out,
            "suspend: BLOCKED by {}",
            plural(r.blockers.len(), "process", "processes")
        );
        for h in &r.blockers {
            let _ = writeln!(
                out,
                "  PID {:<7} user {:<10} {}",
                h.pid,
                user(h),
                h.command()
            );
            if let Some(why) = &h.why {
                let _ = writeln!(out, "  {:11} why: {why}", "");
            }
            match h.timed_left {
                Some(left) if !left.is_zero() => {
                    let _ = writeln!(
                        out,
                        "  {:11} timed block: {:.0} s left",
                        "",
                        left.as_secs_f64().ceil()
                    );
                }
                Some(_) => {
                    let _ = writeln!(out, "  {:11} timed block: expired (lsusd goes over it)", "");
                }
                None => {}
            }
            for name in r.stands_for.get(&h.pid).into_iter().flatten() {
                let _ = writeln!(out, "  {:11} blocked by {name}", "");
            }
            if let Some(locker) = h.locker {
                let _ = writeln!(
                    out,
                    "  {:11} lock taken by PID {locker}, which no longer holds it",
                    ""
                );
            }
        }
    }
    if r.entering {
        out.push_str("  (lsusd holds `disabled` now: a suspend is being entered)\n");
    } else if r.in_progress {
        let _ = write!(out, "  (a suspend attempt is in progress");
        if let Some(s) = r.attempt_seconds {
            let _ = write!(out, " for {s:.1} s");
        }
        if r.not_ready.is_empty() {
            out.push_str(": watchers are being told)\n");
        } else {
            let names: Vec<String> = r.not_ready.iter().map(short).collect();
            let _ = writeln!(
                out,
                ": waiting for {} not ready yet: {})",
                plural(r.not_ready.len(), "watcher", "watchers"),
                names.join(", ")
            );
        }
    }
    if r.request_pending {
        out.push_str("request: pending\n");
    }
    match &r.immediate {
        None => out.push_str("immediate mode: off\n"),
        Some(h) if h.is_empty() => {
            out.push_str("immediate mode: off (RUN/immediate exists but nobody holds it)\n")
        }
        Some(h) => {
            let names: Vec<String> = h
                .iter()
                .map(|h| format!("PID {} ({}, {})", h.pid, user(h), h.command()))
                .collect();
            let _ = writeln!(out, "immediate mode: ON, held by {}", names.join(", "));
        }
    }
    let names: Vec<String> = r.watchers.iter().map(short).collect();
    let _ = write!(out, "watchers: {}", r.watchers.len());
    if !names.is_empty() {
        let _ = write!(out, " ({})", names.join(", "));
    }
    out.push('\n');
    match &r.lsused {
        Helper::NotRunning => out.push_str("lsused: not running\n"),
        Helper::Running { pid, status } => {
            let _ = write!(out, "lsused: running, PID {pid}");
            match status {
                Some(s) => {
                    let _ = write!(
                        out,
                        ": {}, {}",
                        plural(s.clients, "client", "clients"),
                        plural(
                            s.descriptors,
                            "registered descriptor",
                            "registered descriptors"
                        )
                    );
                    if s.tardy_total > 0 {
                        let last: Vec<String> = s.tardy.iter().map(|n| n.to_string()).collect();
                        let _ = write!(
                            out,
                            "; {} cut by the reply timeout (last: {})",
                            plural(s.tardy_total as usize, "client", "clients"),
                            if last.is_empty() {
                                "?".to_string()
                            } else {
                                last.join(", ")
                            }
                        );
                    }
                    out.push('\n');
                }
                None => out.push_str(" (no status published)\n"),
            }
        }
    }
    match &r.wakealarmd {
        Helper::NotRunning => out.push_str("wakealarmd: not running\n"),
        Helper::Running { pid, status } => {
            let _ = write!(out, "wakealarmd: running, PID {pid}");
            match status {
                Some(s) => {
                    let _ = write!(
                        out,
                        ": {}, {} pending",
                        plural(s.connections, "connection", "connections"),
                        plural(s.pending, "alarm", "alarms")
                    );
                    if let Some(next) = s.next {
                        // wakealarmd refuses times past 9999; a status file
                        // that says otherwise is shown as it is.
                        let when = std::time::UNIX_EPOCH
                            .checked_add(std::time::Duration::from_secs(next))
                            .map(local_time);
                        match when.as_deref().and_then(|t| t.get(..19)) {
                            Some(t) => {
                                let _ = write!(out, " (next {t})");
                            }
                            None => {
                                let _ = write!(out, " (next @{next})");
                            }
                        }
                    }
                    if s.blocking > 0 {
                        let _ = write!(
                            out,
                            ", {} blocking suspend",
                            plural(s.blocking, "connection", "connections")
                        );
                    }
                    out.push('\n');
                }
                None => out.push_str(" (no status published)\n"),
            }
        }
    }
    if let Some((pid, status)) = &r.logind {
        logind_text(&mut out, *pid, status.as_ref());
    }
    if let Some(idle) = &r.idle {
        idle_text(&mut out, idle);
    }
    if r.last.is_empty() {
        out.push_str("last outcomes: none yet\n");
    } else {
        out.push_str("last outcomes:\n");
        for rec in &r.last {
            let _ = writeln!(out, "  {}", history::line(rec));
        }
    }
    out
}

/// The "idle" section: "idle for 42 s of 300 s (3 input devices)".
fn idle_text(out: &mut String, r: &IdleReport) {
    let _ = write!(out, "idle: lsus-idle running, PID {}", r.pid);
    let Some(s) = &r.status else {
        out.push_str(" (no status published)\n");
        return;
    };
    let _ = write!(
        out,
        ": idle for {} s of {} s ({})",
        r.idle_for.as_secs(),
        s.timeout.as_secs_f64(),
        plural(s.devices, "input device", "input devices")
    );
    if s.holding {
        out.push_str(", holding immediate mode until the next input");
    } else if s.idle {
        out.push_str(
            ", idle (not holding immediate mode: --dry-run, lsusd unreachable, or another program holds it exclusively)",
        );
    }
    out.push('\n');
}

/// The "logind" section: lsus-logind and the inhibitors logind lists,
/// with the columns of `systemd-inhibit --list`.
fn logind_text(out: &mut String, pid: u32, status: Option<&LogindStatus>) {
    let _ = write!(out, "logind: lsus-logind running, PID {pid}");
    let Some(s) = status else {
        out.push_str(" (no status published)\n");
        return;
    };
    let blocking = s.blocking().count();
    let _ = writeln!(
        out,
        ": {}{}, {}{}",
        if s.connected {
            "logind connected"
        } else {
            "logind NOT reachable (last known state kept)"
        },
        if s.sleeping {
            ", logind is suspending (lock let go)"
        } else {
            ""
        },
        plural(blocking, "inhibitor blocks", "inhibitors block"),
        if s.holding {
            " sleep (lsus-logind holds disabled)"
        } else {
            " sleep"
        }
    );
    if s.inhibitors.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  {:<16} {:>6} {:<10} {:>7} {:<20} {:<6} WHY",
        "WHO", "UID", "USER", "PID", "WHAT", "MODE"
    );
    for i in &s.inhibitors {
        let _ = writeln!(
            out,
            "  {:<16} {:>6} {:<10} {:>7} {:<20} {:<6} {}",
            i.who,
            i.uid,
            i.user(),
            i.pid,
            i.what,
            i.mode,
            i.why
        );
    }
}

/// Writes the report as one JSON object (see [`crate::json`]).
pub fn json(r: &Report) -> Result<String, Error> {
    crate::json::to_line(&crate::json::Status::from(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocker of doc/protocol.md §1.1 for shell, on a system where the
    /// user's name is unknown (no /etc/passwd, as in an initramfs).
    fn report() -> Report {
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

    #[test]
    fn text_shows_the_idle_section() {
        let mut r = report();
        r.idle = Some(IdleReport {
            pid: 77,
            status: Some(IdleStatus {
                timeout: std::time::Duration::from_secs(300),
                devices: 3,
                idle: false,
                holding: false,
                idle_since: 1000,
            }),
            idle_for: std::time::Duration::from_millis(42_900),
        });
        let t = text(&r);
        assert!(
            t.contains(
                "idle: lsus-idle running, PID 77: idle for 42 s of 300 s (3 input devices)\n"
            ),
            "{t}"
        );
        if let Some(IdleReport {
            status: Some(s), ..
        }) = &mut r.idle
        {
            s.idle = true;
            s.holding = true;
            s.devices = 1;
        }
        let t = text(&r);
        assert!(
            t.contains("(1 input device), holding immediate mode until the next input\n"),
            "{t}"
        );
        let j = json(&r).unwrap();
        assert!(
            j.contains("\"idle\":{\"pid\":77,\"timeout\":300.000,\"devices\":1,\"idle_seconds\":42.900,\"idle\":true,\"holding\":true}"),
            "{j}"
        );
    }

    #[test]
    fn text_names_the_holder_its_numeric_uid_and_who_took_the_lock() {
        let t = text(&report());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[1..5],
            [
                "suspend: BLOCKED by 1 process",
                "  PID 154     user 0          sh /scenarios/blocker.sh blocker",
                "              lock taken by PID 158, which no longer holds it",
                "request: pending",
            ],
            "{t}"
        );
    }

    #[test]
    fn json_names_the_holder_and_who_took_the_lock() {
        let j = json(&report()).unwrap();
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
    fn text_expands_lsus_logind_and_lists_loginds_inhibitors() {
        let mut r = report();
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
                inhibitors: vec![logind::Inhibitor {
                    what: "sleep:idle".into(),
                    who: "Videos".into(),
                    why: "Playing".into(),
                    mode: "block".into(),
                    uid: 0,
                    pid: 4321,
                }],
            }),
        ));
        let t = text(&r);
        assert!(
            t.contains(
                "  PID 154     user 0          sh /scenarios/blocker.sh blocker\n              \
                 blocked by logind inhibitor \"Playing\" (Videos, PID 4321, user root)\n"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "logind: lsus-logind running, PID 154: logind connected, 1 inhibitor blocks \
                 sleep (lsus-logind holds disabled)\n"
            ),
            "{t}"
        );
        assert!(t.contains("  WHO                 UID USER"), "{t}");
        assert!(
            t.contains("  Videos                0 root          4321 sleep:idle           block  Playing\n"),
            "{t}"
        );
        let j = json(&r).unwrap();
        assert!(
            j.contains("\"logind\":{\"pid\":154,\"connected\":true,\"holding\":true,\"sleeping\":false,\"inhibitors\":[{\"who\":\"Videos\",\"why\":\"Playing\",\"what\":\"sleep:idle\",\"mode\":\"block\",\"pid\":4321,\"uid\":0,\"user\":\"root\",\"blocks_sleep\":true}]}"),
            "{j}"
        );
    }
}
