//! lsusd's side of the watcher protocol (`watching`, `watching-next`).
//!
//! Suspend imminent: create or truncate `watching-next`; truncate
//! `watching` and write one byte 0x00; take `flock(LOCK_EX)` on it, which
//! returns when every watcher has moved its shared lock to `watching-next`.
//! After resume (or an aborted attempt): rename `watching-next` over
//! `watching`, then write two bytes 0x00 0x00 to the old file. Watchers may
//! use either signal.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use lsus_proto::lock::{self, LockKind};
use lsus_proto::proclocks;
use lsus_proto::rundir::{Access, RunDir, RunDirError, WATCHING, WATCHING_NEXT};

/// Mode of `watching` and `watching-next`: watchers need to read them.
const MODE: u32 = 0o644;

/// Why notifying the watchers stopped early.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A file could not be created or written.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// Writing the byte or taking the lock failed.
    #[error("cannot notify watchers through {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The old `watching`, held exclusively between "imminent" and "resumed".
#[derive(Debug)]
pub struct Notified {
    file: File,
    /// When every watcher was ready.
    pub ready_after: Duration,
}

/// Opens `name` for writing, empty (`RunDir::open_regular` truncates only
/// a file that is not empty already, so the usual case raises no event).
fn open_regular(run: &RunDir, name: &str) -> Result<File, RunDirError> {
    let (file, planted) = run.open_regular(name, Access::WRITE, MODE, true)?;
    if let Some(planted) = planted {
        tracing::warn!(
            "{}: found {planted}; created a regular file",
            run.join(name).display()
        );
    }
    Ok(file)
}

/// Tells the watchers that suspend is imminent and waits until all are
/// ready. `stop` is asked whenever the wait is interrupted by a signal;
/// when it returns true the wait ends early (the caller must still call
/// [`resumed`]). With `nag`, the watchers still holding `watching` are
/// named in a log line at that interval.
pub fn imminent(
    run: &RunDir,
    nag: Option<Duration>,
    stop: &dyn Fn() -> bool,
) -> Result<Notified, NotifyError> {
    let start = Instant::now();
    drop(open_regular(run, WATCHING_NEXT)?);
    let mut file = open_regular(run, WATCHING)?;
    let io = |source| NotifyError::Io {
        path: run.join(WATCHING).display().to_string(),
        source,
    };
    file.write_all(&[0]).map_err(io)?;
    if !lock::try_lock(&file, LockKind::Exclusive).map_err(io)? {
        wait_for_watchers(&file, nag, stop).map_err(io)?;
    }
    Ok(Notified {
        file,
        ready_after: start.elapsed(),
    })
}

fn wait_for_watchers(
    file: &File,
    nag: Option<Duration>,
    stop: &dyn Fn() -> bool,
) -> std::io::Result<()> {
    let since = Instant::now();
    loop {
        if let Some(every) = nag {
            // SIGALRM (handled, no SA_RESTART) interrupts the flock.
            nix::unistd::alarm::set(every.as_secs().max(1) as u32);
        }
        let result = lock::lock(file, LockKind::Exclusive);
        if nag.is_some() {
            nix::unistd::alarm::cancel();
        }
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                if stop() {
                    return Ok(());
                }
                let names = holders(&file.metadata()?);
                tracing::warn!(
                    "still waiting after {:.0?} for watchers to be ready: {}",
                    since.elapsed(),
                    if names.is_empty() {
                        proclocks::describe_unnamed(&[])
                    } else {
                        names.join(", ")
                    }
                );
            }
            Err(e) => return Err(e),
        }
    }
}

/// Returns the command name of `pid`, or `?`.
pub fn comm(pid: u32) -> String {
    proclocks::comm(pid).unwrap_or_else(|| "?".into())
}

/// Names the processes other than lsusd that hold a lock on the file of
/// `meta` (a watcher not ready), as "PID (comm)": the live holders (the
/// shell behind an exited flock(1)), never a PID that has gone. When none
/// can be named because the lock an exited flock(1) took is kept by a
/// process lsusd may not inspect, the one line of doc/protocol.md §1.9
/// that says so. Empty when nobody lsusd can see holds it.
fn holders(meta: &std::fs::Metadata) -> Vec<String> {
    let named: Vec<String> = proclocks::holding_pids(meta.dev(), meta.ino())
        .unwrap_or_default()
        .into_iter()
        .filter(|&pid| pid != std::process::id())
        .map(|pid| format!("{pid} ({})", comm(pid)))
        .collect();
    if !named.is_empty() {
        return named;
    }
    let lockers = proclocks::hidden_keepers(meta.dev(), meta.ino()).unwrap_or_default();
    if lockers.is_empty() {
        Vec::new()
    } else {
        vec![proclocks::describe_unnamed(&lockers)]
    }
}

/// What lsusd found of the watchers' files when it started.
#[derive(Debug)]
pub enum Found {
    /// No `watching` (a fresh run directory): an empty one was created.
    Fresh,
    /// An empty `watching`: no attempt was in progress. Nothing is done,
    /// so the watchers registered with the previous lsusd see nothing.
    Idle,
    /// A non-empty `watching`: a previous lsusd died in the middle of an
    /// attempt. It was ended at once, as after a resume, without waiting
    /// for the watchers of that attempt; these held `watching` then (the
    /// ones not yet ready).
    DeadAttempt {
        /// The watchers that had not said ready, as "PID (comm)" (or the
        /// line that says a process lsusd may not inspect keeps the lock).
        not_ready: Vec<String>,
    },
}

/// Start-up (doc/protocol.md §2): makes sure an empty `watching` exists
/// without running a notification cycle, so that a restart of lsusd is
/// invisible to watchers registered with the previous one. An attempt left
/// announced by a previous lsusd (a non-empty `watching`) is ended as
/// "after resume" does it, without waiting for its watchers: nobody will
/// suspend for it, and a watcher that has not said ready yet sees the end
/// when it does.
pub fn take_over(run: &RunDir) -> Result<Found, NotifyError> {
    let existed = run.exists(WATCHING)?;
    let (mut file, replaced) = run.open_regular(WATCHING, Access::WRITE, MODE, false)?;
    if let Some(what) = replaced {
        tracing::warn!(
            "{} was {what}; replaced it with a regular file",
            run.join(WATCHING).display()
        );
        return Ok(Found::Fresh);
    }
    let io = |source| NotifyError::Io {
        path: run.join(WATCHING).display().to_string(),
        source,
    };
    let meta = file.metadata().map_err(io)?;
    if !existed {
        return Ok(Found::Fresh);
    }
    if meta.len() == 0 {
        return Ok(Found::Idle);
    }
    let not_ready = holders(&meta);
    // The two bytes go after the one of "imminent", as the old lsusd would
    // have written them.
    std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).map_err(io)?;
    resumed(
        run,
        Notified {
            file,
            ready_after: Duration::ZERO,
        },
    );
    Ok(Found::DeadAttempt { not_ready })
}

/// Ends the cycle: `watching-next` becomes `watching`, then two bytes go
/// to the old file. Errors are logged, not returned: the watchers must be
/// released whatever happens.
pub fn resumed(run: &RunDir, notified: Notified) {
    let mut old = notified.file;
    if !run.exists(WATCHING_NEXT).unwrap_or(false) {
        tracing::warn!("watching-next vanished during the attempt; recreating it");
        if let Err(e) = open_regular(run, WATCHING_NEXT) {
            tracing::error!("{e}");
        }
    }
    if let Err(e) = run.rename(WATCHING_NEXT, WATCHING) {
        tracing::error!("{e}");
    }
    if let Err(e) = old.write_all(&[0, 0]) {
        tracing::error!(
            "cannot write to the old {}: {e}",
            run.join(WATCHING).display()
        );
    }
    // Closing the old file drops our exclusive lock on it.
}

#[cfg(test)]
mod tests {
    use super::*;
    use inotify::{Inotify, WatchMask};

    fn events(inotify: &mut Inotify) -> Vec<String> {
        let mut buf = [0u8; 4096];
        match inotify.read_events(&mut buf) {
            Ok(events) => events
                .map(|e| format!("{:?} {:?}", e.mask, e.name))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Vec::new(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn an_empty_file_is_opened_without_an_event_and_a_full_one_is_emptied() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        std::fs::write(run.join(WATCHING_NEXT), b"").unwrap();
        std::fs::write(run.join(WATCHING), b"\0\0\0").unwrap();
        let mut inotify = Inotify::init().unwrap();
        inotify
            .watches()
            .add(run.path(), WatchMask::MODIFY | WatchMask::CREATE)
            .unwrap();

        drop(open_regular(&run, WATCHING_NEXT).unwrap());
        assert_eq!(events(&mut inotify), Vec::<String>::new());

        drop(open_regular(&run, WATCHING).unwrap());
        assert_eq!(std::fs::metadata(run.join(WATCHING)).unwrap().len(), 0);
        assert_eq!(
            events(&mut inotify).len(),
            1,
            "one IN_MODIFY for the truncation"
        );
    }
}
