//! The [`Report`] as text, for a person.

use std::fmt::Write as _;

use lsus_proto::idle::IdleStatus;
use lsus_proto::logind::LogindStatus;
use lsus_proto::status::{LsusedStatus, WakealarmdStatus};

use super::{Helper, Report};
use crate::fmt::local_time;
use crate::procinfo::Holder;
use crate::record;

/// Writes the report as text.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lsusd: running, PID {}, run directory {}",
        r.lsusd, r.dir
    );
    blockers_text(&mut out, r);
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
    helper_text(&mut out, "lsused", &r.lsused, lsused_text);
    helper_text(&mut out, "wakealarmd", &r.wakealarmd, wakealarmd_text);
    if let Some((pid, status)) = &r.logind {
        running_text(
            &mut out,
            "logind: lsus-logind running",
            *pid,
            status.as_ref(),
            logind_text,
        );
    }
    if let Some(idle) = &r.idle {
        running_text(
            &mut out,
            "idle: lsus-idle running",
            idle.pid,
            idle.status.as_ref(),
            |out, s| idle_text(out, s, idle.idle_for),
        );
    }
    if r.last.is_empty() {
        out.push_str("last outcomes: none yet\n");
    } else {
        out.push_str("last outcomes:\n");
        for rec in &r.last {
            let _ = writeln!(out, "  {}", record::line(rec));
        }
    }
    out
}

/// "suspend: BLOCKED by …" with each blocker, or "not blocked"; then the
/// attempt in progress, if any.
fn blockers_text(out: &mut String, r: &Report) {
    if r.blockers.is_empty() {
        out.push_str("suspend: not blocked\n");
    } else {
        let _ = writeln!(
            out,
            "suspend: BLOCKED by {}",
            plural(r.blockers.len(), "process", "processes")
        );
        for h in &r.blockers {
            blocker_text(out, h, r.stands_for.get(&h.pid));
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
}

/// One blocker: PID, user and command line, then what more is known of
/// it, each on a line of its own under the command.
fn blocker_text(out: &mut String, h: &Holder, stands_for: Option<&Vec<String>>) {
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
    for name in stands_for.into_iter().flatten() {
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

/// The line of a helper daemon: "NAME: not running", or [`running_text`].
fn helper_text<S>(
    out: &mut String,
    name: &str,
    helper: &Helper<S>,
    published: impl FnOnce(&mut String, &S),
) {
    match helper {
        Helper::NotRunning => {
            let _ = writeln!(out, "{name}: not running");
        }
        Helper::Running { pid, status } => {
            running_text(
                out,
                &format!("{name}: running"),
                *pid,
                status.as_ref(),
                published,
            );
        }
    }
}

/// "HEAD, PID N" ("lsused: running, PID 12"), then what it publishes (`published` writes it,
/// with the end of the line), or " (no status published)".
fn running_text<S>(
    out: &mut String,
    head: &str,
    pid: u32,
    status: Option<&S>,
    published: impl FnOnce(&mut String, &S),
) {
    let _ = write!(out, "{head}, PID {pid}");
    match status {
        Some(s) => published(out, s),
        None => out.push_str(" (no status published)\n"),
    }
}

/// lsused's counts: ": 2 clients, 3 registered descriptors".
fn lsused_text(out: &mut String, s: &LsusedStatus) {
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

/// wakealarmd's counts: ": 1 connection, 1 alarm pending (next …)".
fn wakealarmd_text(out: &mut String, s: &WakealarmdStatus) {
    let _ = write!(
        out,
        ": {}, {} pending",
        plural(s.connections, "connection", "connections"),
        plural(s.pending, "alarm", "alarms")
    );
    if let Some(next) = s.next {
        // wakealarmd refuses times past 9999; a status file that says
        // otherwise is shown as it is.
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

/// lsus-idle's state: ": idle for 42 s of 300 s (3 input devices)".
fn idle_text(out: &mut String, s: &IdleStatus, idle_for: std::time::Duration) {
    let _ = write!(
        out,
        ": idle for {} s of {} s ({})",
        idle_for.as_secs(),
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

/// lsus-logind's state and the inhibitors logind lists, with the columns
/// of `systemd-inhibit --list`.
fn logind_text(out: &mut String, s: &LogindStatus) {
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

#[cfg(test)]
mod tests {
    use super::super::{sample, sample_with_idle, sample_with_logind};
    use super::*;

    #[test]
    fn shows_the_idle_section() {
        let t = text(&sample_with_idle(false));
        assert!(
            t.contains(
                "idle: lsus-idle running, PID 77: idle for 42 s of 300 s (3 input devices)\n"
            ),
            "{t}"
        );
        let mut r = sample_with_idle(true);
        let t = text(&r);
        assert!(
            t.contains("(1 input device), holding immediate mode until the next input\n"),
            "{t}"
        );
        if let Some(idle) = &mut r.idle {
            idle.status = None;
        }
        let t = text(&r);
        assert!(
            t.contains("idle: lsus-idle running, PID 77 (no status published)\n"),
            "{t}"
        );
    }

    #[test]
    fn names_the_holder_its_numeric_uid_and_who_took_the_lock() {
        let t = text(&sample());
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
    fn helpers_say_whether_they_run_and_what_they_publish() {
        let mut r = sample();
        r.lsused = Helper::Running {
            pid: 12,
            status: Some(LsusedStatus {
                clients: 1,
                descriptors: 2,
                ..Default::default()
            }),
        };
        r.wakealarmd = Helper::Running {
            pid: 13,
            status: None,
        };
        let t = text(&r);
        assert!(
            t.contains(
                "lsused: running, PID 12: 1 client, 2 registered descriptors\n\
                 wakealarmd: running, PID 13 (no status published)\n"
            ),
            "{t}"
        );
        r.lsused = Helper::NotRunning;
        assert!(text(&r).contains("lsused: not running\nwakealarmd:"));
    }

    #[test]
    fn expands_lsus_logind_and_lists_loginds_inhibitors() {
        let t = text(&sample_with_logind());
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
    }
}
