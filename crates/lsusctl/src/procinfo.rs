//! Who holds a lock on a file in the run directory, named as
//! `systemd-inhibit --list` names inhibitors: PID, user, command.
//!
//! `/proc/locks` names the process that *took* each lock, which for a
//! `flock` lock need not be the one that holds it: the shell idiom of
//! PROTOCOL.md §1, `exec 9< RUN/disabled; flock --shared 9`, has flock(1)
//! lock the shell's descriptor and exit, and the lock lives on in the
//! shell. The holders are then the processes with a descriptor that
//! carries the lock (`/proc/PID/fdinfo/FD` lists the locks of the open
//! file behind FD), without the children that merely inherited it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use lsus_proto::proclocks::{self, Mode};
use lsus_proto::rundir::RunDir;

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
}

impl Holder {
    /// Returns the holder described from `/proc/PID`.
    pub fn describe(pid: u32, exclusive: bool) -> Holder {
        let uid = real_uid(pid);
        let user = uid.and_then(|u| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u))
                .ok()
                .flatten()
                .map(|u| u.name)
        });
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .map(|c| c.trim_end_matches('\n').to_string());
        let args = cmdline_args(pid);
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
        }
    }

    /// Returns the best short name: the command line, else the command
    /// name, else a note that the process is gone.
    pub fn command(&self) -> &str {
        self.cmdline.as_deref().or(self.comm.as_deref()).unwrap_or(
            "(no such process: the lock lives on in a process that shares its descriptor)",
        )
    }
}

fn real_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cmdline_args(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
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
    let mut out = Vec::new();
    for lock in &locks {
        for pid in owners(Path::new("/proc"), st.st_dev, st.st_ino, lock) {
            if pid == me {
                continue;
            }
            let mut h = Holder::describe(pid, lock.mode == Mode::Exclusive);
            h.locker = (pid != lock.pid).then_some(lock.pid);
            out.push(h);
        }
    }
    out.sort_by_key(|h| (h.pid, h.exclusive));
    out.dedup_by_key(|h| (h.pid, h.exclusive));
    Ok(out)
}

/// Returns the PIDs of the processes that hold `lock` (a line of
/// `/proc/locks` for the file `dev`, `ino`), looking in the `/proc` tree
/// `proc`: the PID the line names if that process still carries the lock
/// or if its descriptors may not be read; else every process with a
/// descriptor that carries it, but for those whose parent has one too;
/// the PID the line names again if there is none we may see.
pub fn owners(proc: &Path, dev: u64, ino: u64, lock: &proclocks::Holder) -> Vec<u32> {
    if carries(proc, lock.pid, dev, ino, lock) != Some(false) {
        return vec![lock.pid];
    }
    let Ok(dir) = std::fs::read_dir(proc) else {
        return vec![lock.pid];
    };
    // (PID, parent); a process whose parent cannot be read any more has
    // exited since (a shell's `sleep` child, say) and holds nothing
    let sharers: Vec<(u32, u32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| carries(proc, pid, dev, ino, lock) == Some(true))
        .filter_map(|pid| Some((pid, parent(proc, pid)?)))
        .collect();
    let mut top: Vec<u32> = sharers
        .iter()
        .filter(|(_, ppid)| !sharers.iter().any(|(pid, _)| pid == ppid))
        .map(|&(pid, _)| pid)
        .collect();
    top.sort_unstable();
    if top.is_empty() {
        vec![lock.pid]
    } else {
        top
    }
}

/// Does a descriptor of process `pid` carry `lock` on the file `dev`,
/// `ino`? `Some(false)` also if there is no such process, `None` if its
/// descriptors may not be read.
fn carries(proc: &Path, pid: u32, dev: u64, ino: u64, lock: &proclocks::Holder) -> Option<bool> {
    let dir = proc.join(pid.to_string());
    let fds = match std::fs::read_dir(dir.join("fd")) {
        Ok(fds) => fds,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(false),
        Err(_) => return None,
    };
    let found = fds.flatten().any(|fd| {
        // stat follows the link to the open file; only then read fdinfo
        let same = std::fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
        same && std::fs::read_to_string(dir.join("fdinfo").join(fd.file_name()))
            .is_ok_and(|info| fdinfo_locks(&info, dev, ino).contains(lock))
    });
    Some(found)
}

/// Returns the locks on the file `dev`, `ino` that the text of
/// `/proc/PID/fdinfo/FD` lists ("lock:" and a line as in `/proc/locks`).
pub fn fdinfo_locks(info: &str, dev: u64, ino: u64) -> Vec<proclocks::Holder> {
    let lines: Vec<&str> = info
        .lines()
        .filter_map(|l| l.strip_prefix("lock:"))
        .collect();
    proclocks::parse(&lines.join("\n"), dev, ino)
}

/// Returns the parent of process `pid` (`PPid:` in its status).
fn parent(proc: &Path, pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(proc.join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
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

    /// The `maj:min:ino` of a file as `/proc/locks` writes it.
    fn lock_id(md: &std::fs::Metadata) -> String {
        format!(
            "{:02x}:{:02x}:{}",
            libc::major(md.dev()),
            libc::minor(md.dev()),
            md.ino()
        )
    }

    #[test]
    fn fdinfo_lists_the_locks_of_the_open_file() {
        let dev = libc::makedev(0, 0x1a);
        let info = "pos:\t0\nflags:\t0100000\nmnt_id:\t27\nino:\t77\n\
                    lock:\t1: FLOCK  ADVISORY  READ 158 00:1a:77 0 EOF\n";
        let lock = proclocks::Holder {
            pid: 158,
            mode: Mode::Shared,
        };
        assert_eq!(fdinfo_locks(info, dev, 77), [lock]);
        assert!(fdinfo_locks(info, dev, 78).is_empty());
        assert!(fdinfo_locks("pos:\t0\nflags:\t02\n", dev, 77).is_empty());
    }

    /// A fake /proc: `disabled` locked by PID 158, gone, through the
    /// descriptor of the shell 154 (and of its child 160, which inherited
    /// it, and of 165, which has exited since); 170 has the file open without a lock; 180 carries another lock
    /// on it, taken by 181; 190 took its own lock and holds it.
    #[test]
    fn owners_of_a_lock_whose_locker_is_gone_share_its_descriptor() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("disabled");
        let other = t.path().join("other");
        std::fs::write(&file, "\n").unwrap();
        std::fs::write(&other, "").unwrap();
        let md = std::fs::metadata(&file).unwrap();
        let id = lock_id(&md);
        let proc = t.path().join("proc");
        let process = |pid: u32, ppid: u32, fds: &[(u32, &Path, Option<u32>)]| {
            let dir = proc.join(pid.to_string());
            std::fs::create_dir_all(dir.join("fd")).unwrap();
            std::fs::create_dir_all(dir.join("fdinfo")).unwrap();
            std::fs::write(dir.join("status"), format!("Name:\tx\nPPid:\t{ppid}\n")).unwrap();
            for &(fd, target, locker) in fds {
                std::os::unix::fs::symlink(target, dir.join("fd").join(fd.to_string())).unwrap();
                let lock = locker.map_or(String::new(), |l| {
                    format!("lock:\t1: FLOCK  ADVISORY  READ {l} {id} 0 EOF\n")
                });
                std::fs::write(
                    dir.join("fdinfo").join(fd.to_string()),
                    format!("pos:\t0\nflags:\t0100000\n{lock}"),
                )
                .unwrap();
            }
        };
        process(154, 1, &[(0, &other, None), (9, &file, Some(158))]);
        process(160, 154, &[(9, &file, Some(158))]);
        // another child, gone before its status was read
        process(165, 154, &[(9, &file, Some(158))]);
        std::fs::remove_file(proc.join("165/status")).unwrap();
        process(170, 1, &[(3, &file, None)]);
        process(180, 1, &[(4, &file, Some(181))]);
        process(190, 1, &[(5, &file, Some(190))]);
        std::fs::create_dir_all(proc.join("sys")).unwrap();
        let shared = |pid| proclocks::Holder {
            pid,
            mode: Mode::Shared,
        };
        let (dev, ino) = (md.dev(), md.ino());
        // the shell, not the child that inherited the descriptor
        assert_eq!(owners(&proc, dev, ino, &shared(158)), [154]);
        assert_eq!(owners(&proc, dev, ino, &shared(181)), [180]);
        // the locker still holds it: no search
        assert_eq!(owners(&proc, dev, ino, &shared(190)), [190]);
        // an exclusive lock is another lock
        let exclusive = proclocks::Holder {
            pid: 158,
            mode: Mode::Exclusive,
        };
        assert_eq!(owners(&proc, dev, ino, &exclusive), [158]);
        // nobody to be found: the PID /proc/locks gives
        assert_eq!(owners(&proc, dev, ino, &shared(170)), [170]);
        assert_eq!(owners(&proc, dev, ino, &shared(999)), [999]);
        assert_eq!(parent(&proc, 160), Some(154));
    }

    /// PROTOCOL.md §1 for shell, on the real /proc: flock(1) takes the
    /// lock on the shell's descriptor and exits; the shell holds it (and
    /// its child `sleep`, which inherited the descriptor, is not named).
    #[test]
    fn the_shell_that_ran_flock_on_its_descriptor_holds_the_lock() {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};

        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("disabled");
        std::fs::write(&file, "\n").unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 9<"$1"; flock --shared 9 || exit 1; sleep 30 & echo locked; wait"#)
            .arg("sh")
            .arg(&file)
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("sh");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let md = std::fs::metadata(&file).unwrap();
        let locks = proclocks::holders(md.dev(), md.ino()).unwrap();
        let owners: Vec<Vec<u32>> = locks
            .iter()
            .map(|l| owners(Path::new("/proc"), md.dev(), md.ino(), l))
            .collect();
        let shell = child.id();
        let pgid = nix::unistd::Pid::from_raw(shell as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        assert_eq!(line, "locked\n", "flock(1) failed");
        assert_eq!(locks.len(), 1, "{locks:?}");
        assert_ne!(locks[0].pid, shell, "flock(1) took the lock, not the shell");
        assert_eq!(owners, [[shell]]);
    }

    #[test]
    fn describes_this_process() {
        let h = Holder::describe(std::process::id(), false);
        assert_eq!(h.uid, Some(nix::unistd::getuid().as_raw()));
        assert!(h.comm.is_some() && h.cmdline.is_some(), "{h:?}");
    }
}
