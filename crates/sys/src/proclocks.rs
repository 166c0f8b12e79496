//! Who holds a lock on a file, from `/proc/locks`.
//!
//! Used to name blockers in log lines and by `lsusctl status`. Waiters
//! (lines marked `->`) are not holders and are skipped.
//!
//! `/proc/locks` names the process that *took* each lock, which for a
//! `flock` lock need not be the one that holds it: the shell idiom of
//! doc/protocol.md §1.1, `exec 9< RUN/disabled; flock --shared 9`, has flock(1)
//! lock the shell's descriptor and exit, and the lock lives on in the
//! shell. [`owners`] then finds the processes with a descriptor that
//! carries the lock (`/proc/PID/fdinfo/FD` lists the locks of the open
//! file behind FD), without the children that merely inherited it.
//!
//! The tables are parsed here by hand, not through a `/proc` crate: such a
//! crate reads the file through its own buffered reader, several `read(2)`
//! calls for a long table, and would lose the single-read snapshot of
//! `/proc/locks` that `read_snapshot` takes (see there why it matters).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The kind of a lock as `/proc/locks` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A shared lock (`READ`).
    Shared,
    /// An exclusive lock (`WRITE`).
    Exclusive,
}

/// One lock held on a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The process that took the lock (as seen in this PID namespace).
    pub pid: u32,
    /// Shared or exclusive.
    pub mode: Mode,
}

/// Returns the `flock` holders of the file with device `dev` and inode
/// `ino`, reading `/proc/locks`.
pub fn holders(dev: u64, ino: u64) -> io::Result<Vec<Holder>> {
    holders_in(Path::new("/proc/locks"), dev, ino)
}

/// As [`holders`], from another copy of `/proc/locks`.
pub fn holders_in(locks: &Path, dev: u64, ino: u64) -> io::Result<Vec<Holder>> {
    Ok(parse(&read_snapshot(locks)?, dev, ino))
}

/// Calls `f` with this system's `/proc` and one snapshot of `/proc/locks`.
fn on_this_system<T>(f: impl FnOnce(&Path, &str) -> io::Result<T>) -> io::Result<T> {
    f(
        Path::new("/proc"),
        &read_snapshot(Path::new("/proc/locks"))?,
    )
}

/// Reads a `/proc` table in as few `read(2)` calls as it takes. The kernel
/// builds `/proc/locks` afresh for every `read` call, resuming at the
/// position of the last one: locks taken or dropped between two calls
/// shift the list, so a line can be skipped. One call with a buffer large
/// enough for the whole table is one consistent walk of it.
fn read_snapshot(path: &Path) -> io::Result<String> {
    use std::io::Read;
    const CHUNK: usize = 1 << 20;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    buf.resize(len + CHUNK, 0);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Parses the text of `/proc/locks`.
pub fn parse(text: &str, dev: u64, ino: u64) -> Vec<Holder> {
    let want_major = libc::major(dev) as u64;
    let want_minor = libc::minor(dev) as u64;
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 00:16:5678 0 EOF"
        if words.len() < 6 || words[1] != "FLOCK" {
            continue;
        }
        let mode = match words[3] {
            "READ" => Mode::Shared,
            "WRITE" => Mode::Exclusive,
            _ => continue,
        };
        let Ok(pid) = words[4].parse::<u32>() else {
            continue;
        };
        let mut id = words[5].split(':');
        let (Some(maj), Some(min), Some(i)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let parsed = (
            u64::from_str_radix(maj, 16),
            u64::from_str_radix(min, 16),
            i.parse::<u64>(),
        );
        if let (Ok(maj), Ok(min), Ok(i)) = parsed {
            if maj == want_major && min == want_minor && i == ino {
                out.push(Holder { pid, mode });
            }
        }
    }
    out
}

/// Returns the PIDs of the processes that hold a `flock` lock on the file
/// `dev`, `ino` (see [`owners`]), sorted, without duplicates, and only
/// those that are alive and carry the lock (or whose descriptors may not
/// be read): never the PID of a locker that has exited, nor a process
/// that took over its PID since.
///
/// The list may be empty although the file is locked. When it is, the
/// lock is held by nobody this process can see: a process in another PID
/// namespace (the kernel leaves its locks out of this namespace's
/// `/proc/locks`), or one behind a descriptor whose locker has exited and
/// whose sharers' descriptors may not be read; or the lock was released
/// between the caller's failed try-lock and this read. The caller decides
/// what to make of that (lsusd tries the lock again, see its step 3).
pub fn holding_pids(dev: u64, ino: u64) -> io::Result<Vec<u32>> {
    on_this_system(|proc, locks| holding_pids_in(proc, locks, dev, ino))
}

/// As [`holding_pids`], with the text of `/proc/locks` and a `/proc` tree.
pub fn holding_pids_in(proc: &Path, locks: &str, dev: u64, ino: u64) -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = parse(locks, dev, ino)
        .iter()
        .flat_map(|lock| {
            owners(proc, dev, ino, lock)
                .into_iter()
                .filter(move |&pid| carries(proc, pid, dev, ino, lock) != Some(false))
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Returns the lockers of the file `dev`, `ino` whose lock is kept by a
/// process this one may not inspect: a locker `/proc/locks` names that has
/// exited (or no longer carries the lock), when no process whose
/// descriptors may be read carries it and some process's descriptors may
/// not be read.
///
/// That is the shell idiom of doc/protocol.md §1.1 (`flock --shared 9`
/// on the shell's descriptor, flock(1) exits) run by another user, or by
/// a process with capabilities this one lacks: reading its
/// `/proc/PID/fd` needs ptrace access (CAP_SYS_PTRACE across users), which
/// lsusd under its hardened unit deliberately does not have. The keeper
/// cannot be named then; the locker's PID, and the fact, can. Called only
/// when [`holding_pids`] names nobody.
pub fn hidden_keepers(dev: u64, ino: u64) -> io::Result<Vec<u32>> {
    on_this_system(|proc, locks| hidden_keepers_in(proc, locks, dev, ino))
}

/// As [`hidden_keepers`], with the text of `/proc/locks` and a `/proc` tree.
pub fn hidden_keepers_in(proc: &Path, locks: &str, dev: u64, ino: u64) -> io::Result<Vec<u32>> {
    let locks = parse(locks, dev, ino);
    if locks.is_empty() || !some_descriptors_hidden(proc) {
        return Ok(Vec::new());
    }
    let mut pids: Vec<u32> = locks
        .iter()
        .filter(|lock| {
            carries(proc, lock.pid, dev, ino, lock) == Some(false)
                && owners(proc, dev, ino, lock) == [lock.pid]
        })
        .map(|lock| lock.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Is there a process in `proc` whose descriptors may not be read (see
/// [`carries`])?
fn some_descriptors_hidden(proc: &Path) -> bool {
    let Ok(dir) = std::fs::read_dir(proc) else {
        return false;
    };
    let hidden = |pid: u32| match std::fs::read_dir(proc.join(pid.to_string()).join("fd")) {
        Ok(mut fds) => fds.next().is_some_and(|fd| {
            fd.is_ok_and(|fd| {
                std::fs::metadata(fd.path())
                    .is_err_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
            })
        }),
        Err(e) => e.kind() != io::ErrorKind::NotFound && e.raw_os_error() != Some(libc::ESRCH),
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .any(hidden)
}

/// How a blocked answer names what lsusd could not name: the lockers
/// whose lock a process lsusd may not inspect keeps ([`hidden_keepers`]),
/// else a holder invisible to it altogether. lsusd's log line and
/// request-suspend use these words.
pub fn describe_unnamed(lockers: &[u32]) -> String {
    if lockers.is_empty() {
        return "a process lsusd cannot see (in another PID namespace?)".into();
    }
    let pids: Vec<String> = lockers.iter().map(|p| format!("PID {p}")).collect();
    format!(
        "a lock that {} took before it exited, kept by a process lsusd may not inspect \
         (another user's, or one with more privileges)",
        pids.join(" and ")
    )
}

/// Returns the PIDs of the processes that hold `lock` (a line of
/// `/proc/locks` for the file `dev`, `ino`), looking in the `/proc` tree
/// `proc`: the PID the line names if that process still carries the lock
/// or if its descriptors may not be read; else every process with a
/// descriptor that carries it, but for those whose parent has one too;
/// the PID the line names again if there is none we may see.
pub fn owners(proc: &Path, dev: u64, ino: u64, lock: &Holder) -> Vec<u32> {
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
/// descriptors may not be read: another user's process (its `fd`
/// directory may not be listed), or one of the same user with
/// capabilities the reader lacks (the directory lists, but every link is
/// refused: following it takes ptrace access).
fn carries(proc: &Path, pid: u32, dev: u64, ino: u64, lock: &Holder) -> Option<bool> {
    let dir = proc.join(pid.to_string());
    let fds = match std::fs::read_dir(dir.join("fd")) {
        Ok(fds) => fds,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(false),
        Err(_) => return None,
    };
    for fd in fds.flatten() {
        // stat follows the link to the open file; only then read fdinfo
        match std::fs::metadata(fd.path()) {
            Ok(m) if m.dev() == dev && m.ino() == ino => {
                match std::fs::read_to_string(dir.join("fdinfo").join(fd.file_name())) {
                    Ok(info) if fdinfo_locks(&info, dev, ino).contains(lock) => return Some(true),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return None,
                    Err(_) => {} // closed since
                }
            }
            Ok(_) => {}
            // The access check is per process: one refused, all are.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return None,
            Err(_) => {} // closed since
        }
    }
    Some(false)
}

/// Returns the locks on the file `dev`, `ino` that the text of
/// `/proc/PID/fdinfo/FD` lists ("lock:" and a line as in `/proc/locks`).
pub fn fdinfo_locks(info: &str, dev: u64, ino: u64) -> Vec<Holder> {
    let lines: Vec<&str> = info
        .lines()
        .filter_map(|l| l.strip_prefix("lock:"))
        .collect();
    parse(&lines.join("\n"), dev, ino)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_holders_and_skips_waiters_and_other_files() {
        let dev = libc::makedev(0, 0x1a);
        let text = "\
1: FLOCK  ADVISORY  READ  812 00:1a:77 0 EOF
1: -> FLOCK  ADVISORY  WRITE 900 00:1a:77 0 EOF
2: FLOCK  ADVISORY  WRITE 1290 00:1a:78 0 EOF
3: POSIX  ADVISORY  WRITE 44 00:1a:77 0 EOF
4: FLOCK  ADVISORY  READ  13 00:1a:77 0 EOF
";
        let h = parse(text, dev, 77);
        assert_eq!(
            h,
            vec![
                Holder {
                    pid: 812,
                    mode: Mode::Shared
                },
                Holder {
                    pid: 13,
                    mode: Mode::Shared
                }
            ]
        );
    }

    #[test]
    fn finds_our_own_lock_in_proc_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = std::fs::File::create(&path).unwrap();
        crate::lock::lock(&f, crate::lock::LockKind::Shared).unwrap();
        let md = f.metadata().unwrap();
        let h = holders(md.dev(), md.ino()).unwrap();
        assert!(
            h.contains(&Holder {
                pid: std::process::id(),
                mode: Mode::Shared
            }),
            "{h:?}"
        );
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
        let lock = Holder {
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
        let shared = |pid| Holder {
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
        let exclusive = Holder {
            pid: 158,
            mode: Mode::Exclusive,
        };
        assert_eq!(owners(&proc, dev, ino, &exclusive), [158]);
        // nobody to be found: the PID /proc/locks gives
        assert_eq!(owners(&proc, dev, ino, &shared(170)), [170]);
        assert_eq!(owners(&proc, dev, ino, &shared(999)), [999]);
        assert_eq!(parent(&proc, 160), Some(154));

        // holding_pids names only processes that carry a lock: never the
        // dead locker 999, nor 170, which has the file open but no lock
        // (a PID taken over by an unrelated process).
        let locks = format!(
            "1: FLOCK  ADVISORY  READ  158 {id} 0 EOF\n\
             2: FLOCK  ADVISORY  READ  190 {id} 0 EOF\n\
             3: FLOCK  ADVISORY  READ  999 {id} 0 EOF\n\
             4: FLOCK  ADVISORY  READ  170 {id} 0 EOF\n"
        );
        assert_eq!(
            holding_pids_in(&proc, &locks, dev, ino).unwrap(),
            [154, 190]
        );
    }

    /// The shell idiom run by a process whose descriptors may not be read
    /// (here a `fd` that is no directory; on a real system another user's
    /// process, or one with capabilities the reader lacks): the locker has
    /// exited and nobody visible carries the lock, so the locker is
    /// reported as kept by a hidden process. Not when a visible process
    /// carries it, nor when every process may be read (then the lock went
    /// between two looks), nor for a locker still alive.
    #[test]
    fn a_lock_kept_by_a_process_that_may_not_be_read_names_its_locker() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("disabled");
        std::fs::write(&file, "\n").unwrap();
        let md = std::fs::metadata(&file).unwrap();
        let id = lock_id(&md);
        let (dev, ino) = (md.dev(), md.ino());
        let proc = t.path().join("proc");
        let visible = |pid: u32, locker: u32| {
            let dir = proc.join(pid.to_string());
            std::fs::create_dir_all(dir.join("fd")).unwrap();
            std::fs::create_dir_all(dir.join("fdinfo")).unwrap();
            std::fs::write(dir.join("status"), "PPid:\t1\n").unwrap();
            std::os::unix::fs::symlink(&file, dir.join("fd/9")).unwrap();
            std::fs::write(
                dir.join("fdinfo/9"),
                format!("lock:\t1: FLOCK  ADVISORY  READ {locker} {id} 0 EOF\n"),
            )
            .unwrap();
        };
        visible(100, 100);
        let locks = |lockers: &[u32]| {
            lockers
                .iter()
                .map(|l| format!("1: FLOCK  ADVISORY  READ  {l} {id} 0 EOF\n"))
                .collect::<String>()
        };
        // every process may be read: no hidden keeper
        assert!(hidden_keepers_in(&proc, &locks(&[158]), dev, ino)
            .unwrap()
            .is_empty());
        let hidden = proc.join("200");
        std::fs::create_dir_all(&hidden).unwrap();
        std::fs::write(hidden.join("fd"), "").unwrap(); // read_dir fails: ENOTDIR
        assert_eq!(
            hidden_keepers_in(&proc, &locks(&[158]), dev, ino).unwrap(),
            [158]
        );
        assert!(holding_pids_in(&proc, &locks(&[158]), dev, ino)
            .unwrap()
            .is_empty());
        // a locker alive and carrying its lock is named, not hidden
        assert!(hidden_keepers_in(&proc, &locks(&[100]), dev, ino)
            .unwrap()
            .is_empty());
        // a visible sharer carries 160's lock: it is named instead
        visible(101, 160);
        assert!(hidden_keepers_in(&proc, &locks(&[160]), dev, ino)
            .unwrap()
            .is_empty());
        assert_eq!(
            holding_pids_in(&proc, &locks(&[160]), dev, ino).unwrap(),
            [101]
        );
        assert_eq!(
            describe_unnamed(&[158]),
            "a lock that PID 158 took before it exited, kept by a process lsusd may not \
             inspect (another user's, or one with more privileges)"
        );
        assert_eq!(
            describe_unnamed(&[]),
            "a process lsusd cannot see (in another PID namespace?)"
        );
    }

    /// doc/protocol.md §1.1 for shell, on the real /proc: flock(1) takes the
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
        let locks = holders(md.dev(), md.ino()).unwrap();
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
}
