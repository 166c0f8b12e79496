//! Who holds a lock on a file in the run directory, named as
//! `systemd-inhibit --list` names inhibitors: PID, user, command. The
//! holders come from `lsus_sys::proclocks::owners`, which finds the
//! shell behind a lock that flock(1) took on the shell's descriptor.

use std::path::Path;

use lsus_proto::rundir::RunDir;
use lsus_sys::process;
use lsus_sys::proclocks::{self, Mode};

use crate::error::Error;

/// A process holding a lock, as far as `/proc` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The process that holds the lock.
    pub pid: u32,
    /// The process `/proc/locks` names, when it is another one: it took
    /// the lock and has exited (or closed its descriptor) since.
    pub locker: Option<u32>,
    /// Shared or exclusive.
    pub exclusive: bool,
    /// Its real user ID, if the process still exists.
    pub uid: Option<u32>,
    /// The user's name, if known.
    pub user: Option<String>,
    /// `/proc/PID/comm`.
    pub comm: Option<String>,
    /// `/proc/PID/cmdline`, arguments separated by spaces.
    pub cmdline: Option<String>,
    /// For `lsusctl block --why TEXT`: the TEXT.
    pub why: Option<String>,
    /// The process has exited and its lock lives on in a process whose
    /// descriptors this user may not read (`proclocks::hidden_keepers`).
    pub kept_hidden: bool,
    /// For a timed block (doc/protocol.md §13) with a valid declaration:
    /// the time left until its deadline (zero once it has passed).
    pub timed_left: Option<std::time::Duration>,
}

impl Holder {
    /// Returns the holder described from `/proc/PID`.
    pub fn describe(pid: u32, exclusive: bool) -> Holder {
        let uid = process::uid_of(pid);
        let user = uid.and_then(|u| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u))
                .ok()
                .flatten()
                .map(|u| u.name)
        });
        let comm = process::comm(pid);
        let args = process::cmdline_args(pid);
        let why = args.as_deref().and_then(why_of_block);
        let cmdline = args.map(|a| a.join(" ")).filter(|c| !c.is_empty());
        Holder {
            pid,
            locker: None,
            exclusive,
            uid,
            user,
            comm,
            cmdline,
            why,
            kept_hidden: false,
            timed_left: None,
        }
    }

    /// Returns the best short name: the command line, else the command
    /// name, else a note that the process is gone.
    pub fn command(&self) -> &str {
        let gone = if self.kept_hidden {
            "(no such process: the lock lives on in a process this user may not inspect)"
        } else {
            "(no such process: the lock lives on in a process that shares its descriptor)"
        };
        self.cmdline
            .as_deref()
            .or(self.comm.as_deref())
            .unwrap_or(gone)
    }
}

/// Returns the TEXT of `lsusctl … block --why TEXT` (or `--why=TEXT`) in
/// the arguments of a process, if it is such a process.
pub fn why_of_block(args: &[String]) -> Option<String> {
    let name = args.first()?.rsplit('/').next()?;
    if name != "lsusctl" {
        return None;
    }
    let block = args.iter().position(|a| a == "block")?;
    let mut rest = args[block + 1..].iter();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            return None;
        }
        if arg == "--why" {
            return rest.next().cloned();
        }
        if let Some(text) = arg.strip_prefix("--why=") {
            return Some(text.to_string());
        }
        if !arg.starts_with('-') {
            return None; // the command begins
        }
    }
    None
}

/// Returns the holders of locks on `name` in `run` (none if the file does
/// not exist), sorted by PID, without this process.
pub fn holders(run: &RunDir, name: &str) -> Result<Vec<Holder>, Error> {
    let Some(st) = run.stat(name)? else {
        return Ok(Vec::new());
    };
    let locks = proclocks::holders(st.st_dev, st.st_ino).map_err(|e| Error::Io {
        what: "cannot read /proc/locks".into(),
        source: e,
    })?;
    let me = std::process::id();
    let hidden = proclocks::hidden_keepers(st.st_dev, st.st_ino).unwrap_or_default();
    let mut out = Vec::new();
    for lock in &locks {
        for pid in proclocks::owners(Path::new("/proc"), st.st_dev, st.st_ino, lock) {
            if pid == me {
                continue;
            }
            let mut h = Holder::describe(pid, lock.mode == Mode::Exclusive);
            h.locker = (pid != lock.pid).then_some(lock.pid);
            h.kept_hidden = h.comm.is_none() && hidden.contains(&pid);
            out.push(h);
        }
    }
    out.sort_by_key(|h| (h.pid, h.exclusive));
    out.dedup_by_key(|h| (h.pid, h.exclusive));
    Ok(out)
}

/// Returns the PID of the daemon `name` running on `run`: the holder of
/// the exclusive lock on `RUN/<name>.pid`, as `/proc/locks` tells (looking
/// takes no lock, so it cannot disturb a daemon that is starting).
pub fn daemon_pid(run: &RunDir, name: &str) -> Result<Option<u32>, Error> {
    let file = format!("{name}.pid");
    let Some(st) = run.stat(&file)? else {
        return Ok(None);
    };
    let locks = proclocks::holders(st.st_dev, st.st_ino).map_err(|e| Error::Io {
        what: "cannot read /proc/locks".into(),
        source: e,
    })?;
    Ok(locks
        .into_iter()
        .find(|h| h.mode == Mode::Exclusive)
        .map(|h| h.pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn why_is_found_only_in_lsusctl_block() {
        assert_eq!(
            why_of_block(&args(&[
                "/usr/bin/lsusctl",
                "block",
                "--why",
                "backup",
                "--",
                "x"
            ])),
            Some("backup".into())
        );
        assert_eq!(
            why_of_block(&args(&[
                "lsusctl",
                "--run-dir",
                "/r",
                "block",
                "--why=a b",
                "x"
            ])),
            Some("a b".into())
        );
        assert_eq!(
            why_of_block(&args(&["lsusctl", "block", "--", "x", "--why", "no"])),
            None
        );
        assert_eq!(
            why_of_block(&args(&["lsusctl", "block", "x", "--why", "no"])),
            None
        );
        assert_eq!(why_of_block(&args(&["sh", "block", "--why", "no"])), None);
    }

    #[test]
    fn describes_this_process() {
        let h = Holder::describe(std::process::id(), false);
        assert_eq!(h.uid, Some(nix::unistd::getuid().as_raw()));
        assert!(h.comm.is_some() && h.cmdline.is_some(), "{h:?}");
    }
}
