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

use lsus_proto::outcome::Named;
use lsus_proto::rundir::{Access, RunDir, RunDirError, WATCHING, WATCHING_NEXT};
use lsus_sys::lock::{self, LockKind};
use lsus_sys::proclocks;

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
    /// When every watcher was ready (or lsusd stopped waiting).
    pub ready_after: Duration,
    /// `Some` when the watcher timeout expired: the watchers lsusd went
    /// on without (empty when none can be named).
    pub tardy: Option<Vec<Named>>,
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
/// named in a log line at that interval. With `timeout` (`--watcher-timeout`),
/// the wait ends when it expires: the watchers still holding `watching`
/// are named in a warning and in [`Notified::tardy`], and the attempt goes
/// on as if they were ready (they see the end of the cycle when they
/// look). Both need the SIGALRM handler of `lsus_daemon::signals`.
pub fn imminent(
    run: &RunDir,
    nag: Option<Duration>,
    timeout: Option<Duration>,
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
    let mut tardy = None;
    if !lock::try_lock(&file, LockKind::Exclusive).map_err(io)? {
        tardy = wait_for_watchers(&file, nag, timeout, stop).map_err(io)?;
    }
    Ok(Notified {
        file,
        ready_after: start.elapsed(),
        tardy,
    })
}

/// Returns the whole seconds (at least 1) from `now` until `then`, for
/// `alarm(2)`.
fn alarm_secs(now: Instant, then: Instant) -> u32 {
    let left = then.saturating_duration_since(now);
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

/// Waits for the exclusive lock on the old `watching`. Returns the tardy
/// watchers when `timeout` expired first, `None` when all were ready (or
/// `stop` ended the wait).
fn wait_for_watchers(
    file: &File,
    nag: Option<Duration>,
    timeout: Option<Duration>,
    stop: &dyn Fn() -> bool,
) -> std::io::Result<Option<Vec<Named>>> {
    let since = Instant::now();
    let deadline = timeout.and_then(|t| since.checked_add(t));
    let mut next_nag = nag.and_then(|every| since.checked_add(every.max(Duration::from_secs(1))));
    loop {
        let wake = match (next_nag, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(wake) = wake {
            // SIGALRM (handled, no SA_RESTART) interrupts the flock.
            nix::unistd::alarm::set(alarm_secs(Instant::now(), wake));
        }
        let result = lock::lock(file, LockKind::Exclusive);
        if wake.is_some() {
            nix::unistd::alarm::cancel();
        }
        match result {
            Ok(()) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                if stop() {
                    return Ok(None);
                }
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    // The last one may have moved in the meantime.
                    if lock::try_lock(file, LockKind::Exclusive)? {
                        return Ok(None);
                    }
                    let meta = file.metadata()?;
                    let tardy = named_holders(&meta);
                    tracing::warn!(
                        "watcher timeout: going on after {:.1} s as if ready without {}",
                        since.elapsed().as_secs_f64(),
                        if tardy.is_empty() {
                            let names = holders(&meta);
                            if names.is_empty() {
                                proclocks::describe_unnamed(&[])
                            } else {
                                names.join(", ")
                            }
                        } else {
                            tardy
                                .iter()
                                .map(|n| format!("{} ({})", n.pid, n.command))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    );
                    return Ok(Some(tardy));
                }
                match (next_nag, nag) {
                    (Some(at), Some(every)) if now >= at => {
                        next_nag = now.checked_add(every.max(Duration::from_secs(1)));
                    }
                    // An early signal (another SIGALRM, a stop that was
                    // not one): wait on.
                    _ => continue,
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
    lsus_sys::process::comm(pid).unwrap_or_else(|| "?".into())
}

/// Names the processes other than lsusd that hold a lock on the file of
/// `meta` (a watcher not ready), as "PID (comm)": the live holders (the
/// shell behind an exited flock(1)), never a PID that has gone. When none
/// can be named because the lock an exited flock(1) took is kept by a
/// process lsusd may not inspect, the one line of doc/protocol.md §1.9
/// that says so. Empty when nobody lsusd can see holds it.
fn holders(meta: &std::fs::Metadata) -> Vec<String> {
    let named: Vec<String> = named_holders(meta)
        .into_iter()
        .map(|n| format!("{} ({})", n.pid, n.command))
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

/// The live holders other than lsusd of a lock on the file of `meta`,
/// with their commands: the ones `holders` names.
fn named_holders(meta: &std::fs::Metadata) -> Vec<Named> {
    proclocks::holding_pids(meta.dev(), meta.ino())
        .unwrap_or_default()
        .into_iter()
        .filter(|&pid| pid != std::process::id())
        .map(|pid| Named {
            pid,
            command: comm(pid),
        })
        .collect()
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
            tardy: None,
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
