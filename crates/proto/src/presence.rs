//! Is lsusd running on a run directory, and waiting until it is.
//!
//! lsusd holds an exclusive `flock` on `RUN/lsusd.pid` for its whole life
//! (one lsusd per run directory). Whether someone holds it is read from
//! `/proc/locks`, never tested by taking the lock: a probe that held it for
//! a moment could make a starting lsusd believe another one runs.
//!
//! A program started before lsusd (lsused, wakealarmd, `lsusctl watch
//! --follow`) waits with inotify — on the run directory, or on its parent
//! while the run directory does not exist yet — and looks again at every
//! change there: lsusd writes its PID, then creates `watching`.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use inotify::WatchMask;

use crate::rundir::{Access, RunDir, WATCHING};
use lsus_sys::dirwatch::DirWatch;
use lsus_sys::proclocks::{self, Mode};

/// The name of lsusd's PID file in the run directory.
pub const LSUSD_PID: &str = "lsusd.pid";

/// Returns the PID of the lsusd holding its lock on `run`, if one does.
///
/// `Some(0)` when the lock is held but `/proc/locks` cannot be read (or
/// names nobody we can see): lsusd runs, its PID is unknown.
pub fn lsusd_pid(run: &RunDir) -> Option<u32> {
    let file = run.open_file(LSUSD_PID, Access::READ, None, false).ok()?;
    let meta = file.metadata().ok()?;
    match proclocks::holders(meta.dev(), meta.ino()) {
        Ok(holders) => holders
            .iter()
            .find(|h| h.mode == Mode::Exclusive)
            .map(|h| h.pid),
        // No /proc/locks: fall back to the probe (its race is rare).
        Err(_) => match lsus_sys::lock::try_lock(&file, lsus_sys::lock::LockKind::Exclusive) {
            Ok(true) => None,
            _ => Some(0),
        },
    }
}

/// Returns true if and only if lsusd runs on `run` and is ready for
/// watchers: it holds its lock and `watching` exists.
pub fn lsusd_ready(run: &RunDir) -> bool {
    lsusd_pid(run).is_some() && run.exists(WATCHING).unwrap_or(false)
}

/// Why waiting for lsusd failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Neither the run directory nor its parent exists.
    #[error("cannot wait for lsusd: neither {dir} nor {parent} exists", dir = .dir.display(), parent = .parent.display())]
    NoParent {
        /// The run directory.
        dir: PathBuf,
        /// Its parent.
        parent: PathBuf,
    },
    /// inotify or poll failed.
    #[error("cannot wait for lsusd on {}: {source}", .dir.display())]
    Io {
        /// The directory watched.
        dir: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Waits until lsusd is ready on `dir` ([`lsusd_ready`]) and returns the
/// opened run directory, or `None` when `stop` became readable first (a
/// daemon's shutdown descriptor). `waiting` is called once, the first
/// time lsusd is found not ready, so the caller can say so once.
pub fn wait_for_lsusd(
    dir: &Path,
    stop: Option<BorrowedFd<'_>>,
    mut waiting: impl FnMut(),
) -> Result<Option<RunDir>, WaitError> {
    let mut said = false;
    let io = |dir: &Path| {
        let dir = dir.to_path_buf();
        move |source| WaitError::Io { dir, source }
    };
    loop {
        // Watch first, then look: a change between the two is not missed.
        let (watch, run) = match DirWatch::new(
            dir,
            WatchMask::CREATE
                | WatchMask::MOVED_TO
                | WatchMask::MODIFY
                | WatchMask::ATTRIB
                | WatchMask::DELETE_SELF
                | WatchMask::MOVE_SELF,
        ) {
            Ok(w) => (w, RunDir::open(dir).ok()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let parent = dir
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let w = DirWatch::new(parent, WatchMask::CREATE | WatchMask::MOVED_TO).map_err(
                    |source| {
                        if source.raw_os_error() == Some(libc::ENOENT) {
                            WaitError::NoParent {
                                dir: dir.to_path_buf(),
                                parent: parent.to_path_buf(),
                            }
                        } else {
                            WaitError::Io {
                                dir: parent.to_path_buf(),
                                source,
                            }
                        }
                    },
                )?;
                if dir.is_dir() {
                    continue; // created in between: watch it instead
                }
                (w, None)
            }
            Err(e) => return Err(io(dir)(e)),
        };
        if let Some(run) = run {
            if lsusd_ready(&run) {
                return Ok(Some(run));
            }
        }
        if !said {
            said = true;
            waiting();
        }
        let mut watch = watch;
        loop {
            let woke = watch.wait_or(None, stop).or_else(|e| {
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(e)
                }
            });
            let woke = woke.map_err(io(dir))?;
            if let Some(fd) = stop {
                if readable(fd) {
                    return Ok(None);
                }
            }
            if woke {
                let _ = watch.drain(|_, _| {});
                break;
            }
        }
    }
}

/// Returns true if `fd` is readable now.
fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsus_sys::lock::{try_lock, LockKind};

    #[test]
    fn waits_for_the_directory_then_the_lock_and_watching() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("run");
        let d2 = dir.clone();
        // lsusd comes only once the waiter has said that it waits (a
        // condition, not a sleep: under load a sleep let lsusd come first)
        let (waiting, said_it) = std::sync::mpsc::channel::<()>();
        let lsusd = std::thread::spawn(move || {
            said_it.recv().unwrap();
            let run = RunDir::create(&d2, 0o770).unwrap();
            let (pid, _) = run
                .open_regular(LSUSD_PID, Access::READ_WRITE, 0o644, false)
                .unwrap();
            assert!(try_lock(&pid, LockKind::Exclusive).unwrap());
            std::fs::write(d2.join(LSUSD_PID), "1\n").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            std::fs::write(d2.join(WATCHING), "").unwrap();
            pid
        });
        let mut said = 0;
        let run = wait_for_lsusd(&dir, None, || {
            said += 1;
            let _ = waiting.send(());
        })
        .unwrap()
        .unwrap();
        assert_eq!(said, 1);
        assert!(lsusd_ready(&run));
        let pid = lsusd.join().unwrap();
        drop(pid);
        assert!(!lsusd_ready(&run));
        assert_eq!(lsusd_pid(&run), None);
    }

    #[test]
    fn no_parent_is_an_error() {
        let err = wait_for_lsusd(Path::new("/nonexistent-lsus/a/run"), None, || {}).unwrap_err();
        assert!(matches!(err, WaitError::NoParent { .. }), "{err}");
    }
}
