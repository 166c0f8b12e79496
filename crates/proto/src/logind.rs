//! systemd-logind's inhibitors as lsus-logind publishes them, and the one
//! place where a holder of `disabled` that is lsus-logind is named by the
//! inhibitors it stands for.
//!
//! lsus-logind holds a shared lock on `RUN/disabled` while logind has at
//! least one inhibitor in mode `block` whose `what` includes `sleep`.
//! `/proc/locks` then names lsus-logind's PID, which tells a user nothing;
//! so lsus-logind publishes every inhibitor logind lists in
//! `RUN/lsus-logind.status`, written *before* it takes the lock and
//! replaced atomically at each change, and the code that names holders
//! ([`name_holders`]) expands lsus-logind's PID into the inhibitors:
//!
//! ```text
//! logind=connected inhibitors=2 blocking=1 holding=yes sleeping=no
//! inhibitor what=sleep mode=block uid=1000 pid=4321 who=Videos why=Playing%20a%20video
//! inhibitor what=sleep mode=delay uid=0 pid=811 who=lsus-logind why=...
//! ```
//!
//! The first line is the summary: `logind=connected|disconnected`, the
//! counts, `holding` (lsus-logind holds its lock on `disabled` now) and
//! `sleeping` (logind announced a suspend of its own with
//! `PrepareForSleep(true)` and lsus-logind let go until it ends); then
//! one line per inhibitor in the order logind listed them. `who`, `why`,
//! `what` and `mode` are percent-encoded (`%`, `=`, white space and
//! control characters as `%XX`), so every value is one word. Readers
//! ignore unknown keys and lines. Like the other status files, it says
//! nothing unless lsus-logind holds its lock on `RUN/lsus-logind.pid`.

use std::fmt;
use std::str::FromStr;

use crate::rundir::RunDir;
use crate::status::{yes_no, ParseError};
use lsus_sys::proclocks::{self, Mode};

/// The daemon's name: its PID file is `RUN/lsus-logind.pid`.
pub const LSUS_LOGIND: &str = "lsus-logind";
/// lsus-logind's status file.
pub const LSUS_LOGIND_STATUS: &str = "lsus-logind.status";

/// One inhibitor, as logind's `ListInhibitors` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inhibitor {
    /// What it inhibits, colon-separated (`sleep:shutdown:idle`).
    pub what: String,
    /// Who took it (the program's own name for itself).
    pub who: String,
    /// Why, in the program's words.
    pub why: String,
    /// `block`, `delay` (or a mode a later logind adds).
    pub mode: String,
    /// The user who took it.
    pub uid: u32,
    /// The process that took it.
    pub pid: u32,
}

impl Inhibitor {
    /// Returns true if and only if this inhibitor keeps lsusd from
    /// suspending: mode `block` and `sleep` among `what`.
    pub fn blocks_sleep(&self) -> bool {
        self.mode == "block" && self.what.split(':').any(|w| w == "sleep")
    }

    /// Returns the name of its user, or the number when there is none.
    pub fn user(&self) -> String {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.uid))
            .ok()
            .flatten()
            .map_or_else(|| self.uid.to_string(), |u| u.name)
    }

    /// Returns how a blocker is named: `logind inhibitor "WHY" (WHO, PID
    /// N, user U)`.
    pub fn name(&self) -> String {
        format!(
            "logind inhibitor \"{}\" ({}, PID {}, user {})",
            self.why,
            self.who,
            self.pid,
            self.user()
        )
    }
}

/// What lsus-logind publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogindStatus {
    /// lsus-logind is connected to the bus and logind answers.
    pub connected: bool,
    /// lsus-logind holds its shared lock on `disabled` now.
    pub holding: bool,
    /// logind announced a suspend of its own (`PrepareForSleep(true)`),
    /// so lsus-logind has let go until it ends.
    pub sleeping: bool,
    /// Every inhibitor logind listed last, blocking or not.
    pub inhibitors: Vec<Inhibitor>,
}

impl LogindStatus {
    /// Returns the inhibitors that keep lsusd from suspending.
    pub fn blocking(&self) -> impl Iterator<Item = &Inhibitor> {
        self.inhibitors.iter().filter(|i| i.blocks_sleep())
    }
}

/// Percent-encodes what would split or end a word.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '%' || c == '=' || c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Undoes [`encode`]; a malformed escape is an error.
fn decode(key: &str, value: &str) -> Result<String, ParseError> {
    let bad = || ParseError(format!("{key}={value}: malformed %-escape"));
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

impl fmt::Display for LogindStatus {
    /// Formats the whole file, newline included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "logind={} inhibitors={} blocking={} holding={} sleeping={}",
            if self.connected {
                "connected"
            } else {
                "disconnected"
            },
            self.inhibitors.len(),
            self.blocking().count(),
            yes_no(self.holding),
            yes_no(self.sleeping)
        )?;
        for i in &self.inhibitors {
            writeln!(
                f,
                "inhibitor what={} mode={} uid={} pid={} who={} why={}",
                encode(&i.what),
                encode(&i.mode),
                i.uid,
                i.pid,
                encode(&i.who),
                encode(&i.why)
            )?;
        }
        Ok(())
    }
}

impl FromStr for LogindStatus {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<LogindStatus, ParseError> {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        let mut status = LogindStatus::default();
        let mut seen = false;
        for word in first.split_ascii_whitespace() {
            match word.split_once('=') {
                Some(("logind", v)) => {
                    status.connected = v == "connected";
                    seen = true;
                }
                Some(("holding", v)) => status.holding = v == "yes",
                Some(("sleeping", v)) => status.sleeping = v == "yes",
                _ => {}
            }
        }
        if !seen {
            return Err(ParseError(format!("no logind= in {first:?}")));
        }
        for line in lines {
            let Some(rest) = line.strip_prefix("inhibitor ") else {
                continue;
            };
            let mut i = Inhibitor {
                what: String::new(),
                who: String::new(),
                why: String::new(),
                mode: String::new(),
                uid: 0,
                pid: 0,
            };
            for word in rest.split_ascii_whitespace() {
                let (key, value) = word
                    .split_once('=')
                    .ok_or_else(|| ParseError(format!("a word without '=' in {line:?}")))?;
                let number = |v: &str| {
                    v.parse::<u32>()
                        .map_err(|_| ParseError(format!("{key}={v} is not a number")))
                };
                match key {
                    "what" => i.what = decode(key, value)?,
                    "mode" => i.mode = decode(key, value)?,
                    "who" => i.who = decode(key, value)?,
                    "why" => i.why = decode(key, value)?,
                    "uid" => i.uid = number(value)?,
                    "pid" => i.pid = number(value)?,
                    _ => {}
                }
            }
            status.inhibitors.push(i);
        }
        Ok(status)
    }
}

/// Returns the PID of lsus-logind on `run` and what it publishes, or
/// `None` when it does not run (nobody holds `RUN/lsus-logind.pid`
/// exclusively). The status is `None` when the file is missing or
/// unreadable.
pub fn published(run: &RunDir) -> Option<(u32, Option<LogindStatus>)> {
    let st = run.stat(&format!("{LSUS_LOGIND}.pid")).ok()??;
    let pid = proclocks::holders(st.st_dev, st.st_ino)
        .ok()?
        .into_iter()
        .find(|h| h.mode == Mode::Exclusive)?
        .pid;
    let status = run
        .read_published(LSUS_LOGIND_STATUS)
        .ok()
        .flatten()
        .and_then(|text| text.parse().ok());
    Some((pid, status))
}

/// Names the holders of `disabled` with PIDs `pids`: each PID as `plain`
/// names it, except lsus-logind's, which becomes one name per blocking
/// inhibitor ([`Inhibitor::name`]). This is the one place where that
/// expansion happens; lsusd's log, `request-suspend` and `lsusctl status`
/// all go through it.
pub fn name_holders(run: &RunDir, pids: &[u32], plain: impl Fn(u32) -> String) -> Vec<String> {
    let logind = if pids.is_empty() {
        None
    } else {
        published(run)
    };
    let mut names = Vec::new();
    for &pid in pids {
        match &logind {
            Some((lsus_logind, status)) if *lsus_logind == pid => {
                let expanded: Vec<String> = status
                    .iter()
                    .flat_map(|s| s.blocking())
                    .map(Inhibitor::name)
                    .collect();
                if expanded.is_empty() {
                    // Between two changes: the lock is still held, the
                    // list says nobody any more (or is unreadable).
                    names.push(format!(
                        "{} (lsus-logind, for logind inhibitors)",
                        plain(pid)
                    ));
                } else {
                    names.extend(expanded);
                }
            }
            _ => names.push(plain(pid)),
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundir::Access;

    fn inhibitor(what: &str, mode: &str, who: &str, why: &str) -> Inhibitor {
        Inhibitor {
            what: what.into(),
            who: who.into(),
            why: why.into(),
            mode: mode.into(),
            uid: 0,
            pid: 4321,
        }
    }

    #[test]
    fn only_block_sleep_inhibitors_block() {
        assert!(inhibitor("sleep", "block", "a", "b").blocks_sleep());
        assert!(inhibitor("shutdown:sleep:idle", "block", "a", "b").blocks_sleep());
        assert!(!inhibitor("sleep", "delay", "a", "b").blocks_sleep());
        assert!(!inhibitor("shutdown:idle", "block", "a", "b").blocks_sleep());
        assert!(!inhibitor("handle-lid-switch", "block", "a", "b").blocks_sleep());
        assert!(!inhibitor("sleepy", "block", "a", "b").blocks_sleep());
    }

    /// lsus-logind connected and holding (awake), with `inhibitors`.
    fn holding(inhibitors: Vec<Inhibitor>) -> LogindStatus {
        LogindStatus {
            connected: true,
            holding: true,
            sleeping: false,
            inhibitors,
        }
    }

    #[test]
    fn status_round_trips_odd_text() {
        let s = holding(vec![
            inhibitor("sleep", "block", "Videos", "Playing a video"),
            inhibitor("sleep", "delay", "x=y %20", "tab\there\nnewline é"),
            inhibitor("", "", "", ""),
        ]);
        let text = s.to_string();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(
            text.starts_with("logind=connected inhibitors=3 blocking=1 holding=yes sleeping=no\n")
        );
        assert!(
            text.contains("who=Videos why=Playing%20a%20video\n"),
            "{text}"
        );
        assert_eq!(text.parse::<LogindStatus>(), Ok(s));
        let off = LogindStatus::default();
        assert_eq!(off.to_string().parse::<LogindStatus>(), Ok(off));
    }

    #[test]
    fn malformed_status_is_an_error_and_unknown_lines_are_ignored() {
        crate::assert_refused::<LogindStatus>(&[
            "",
            "logind=connected\ninhibitor pid=x\n",
            "logind=connected\ninhibitor why=%4\n",
            "logind=connected\ninhibitor why=%ff\n",
        ]);
        let s: LogindStatus = "logind=connected later=1\nsomething else\ninhibitor what=sleep mode=block pid=7 new=1\n"
            .parse()
            .unwrap();
        assert_eq!(s.inhibitors.len(), 1);
        assert_eq!(s.inhibitors[0].pid, 7);
        assert_eq!(s.blocking().count(), 1);
    }

    #[test]
    fn names_a_blocker_like_systemd_does() {
        let mut i = inhibitor("sleep", "block", "Videos", "Playing a video");
        i.uid = 0;
        assert_eq!(
            i.name(),
            "logind inhibitor \"Playing a video\" (Videos, PID 4321, user root)"
        );
    }

    #[test]
    fn holders_are_expanded_only_while_lsus_logind_holds_its_lock() {
        use lsus_sys::lock::{try_lock, LockKind};
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        let plain = |pid: u32| format!("PID {pid}");
        let me = std::process::id();
        let status = holding(vec![
            inhibitor("sleep", "block", "Videos", "Playing"),
            inhibitor("sleep", "delay", "lsus-logind", "x"),
        ]);
        run.publish(LSUS_LOGIND_STATUS, status.to_string().as_bytes(), 0o644)
            .unwrap();
        // No lock on the PID file: a leftover status file says nothing.
        assert_eq!(
            name_holders(&run, &[me, 12], plain),
            ["PID ".to_string() + &me.to_string(), "PID 12".into()]
        );
        let (pidfile, _) = run
            .open_regular("lsus-logind.pid", Access::READ_WRITE, 0o644, false)
            .unwrap();
        assert!(try_lock(&pidfile, LockKind::Exclusive).unwrap());
        assert_eq!(
            name_holders(&run, &[12, me], plain),
            [
                "PID 12".to_string(),
                "logind inhibitor \"Playing\" (Videos, PID 4321, user root)".into()
            ]
        );
        run.publish(LSUS_LOGIND_STATUS, b"logind=connected\n", 0o644)
            .unwrap();
        assert_eq!(
            name_holders(&run, &[me], plain),
            [format!("PID {me} (lsus-logind, for logind inhibitors)")]
        );
    }
}
