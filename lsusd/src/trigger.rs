//! What makes lsusd try: a `request`, or an `immediate` held by its owner.
//!
//! `immediate` counts only while some process holds a lock on it (lsusd
//! tests with `LOCK_EX|LOCK_NB`: success means no owner). A client creates
//! the file and only then locks it, so an unlocked `immediate` younger than
//! the grace period is "not yet valid" rather than stale; lsusd looks again
//! when the grace ends. An older unlocked one is removed.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lsus_proto::rundir::{Access, RunDir, RunDirError, IMMEDIATE, REQUEST};
use lsus_sys::lock::{self, LockKind};

use crate::force::{ForceDir, Forced};

/// Why an attempt starts.
#[derive(Debug)]
pub enum Trigger {
    /// `request` exists.
    Request,
    /// `immediate` exists and is held; the file is kept open to check
    /// later that its owner still holds it.
    Immediate(File),
    /// `force/request` exists (doc/protocol.md §12): suspend even over a
    /// block.
    Forced(Forced),
}

impl Trigger {
    /// A word for log lines.
    pub fn word(&self) -> &'static str {
        match self {
            Trigger::Request => "request",
            Trigger::Immediate(_) => "immediate mode",
            Trigger::Forced(_) => "forced request",
        }
    }
}

/// What the run directory says right now.
#[derive(Debug)]
pub enum Look {
    /// Start an attempt.
    Go(Trigger),
    /// `immediate` is held, but not to be acted on before the given time
    /// has passed (backoff is decided by the caller).
    Held(File),
    /// An unlocked young `immediate`: look again after this long.
    Grace(Duration),
    /// Nothing to do: wait for the directory to change.
    Idle,
}

/// Looks for a forced request (in `force`, when lsusd takes them), then
/// `request` and `immediate`.
pub fn look(run: &RunDir, force: Option<&ForceDir>, grace: Duration) -> Result<Look, RunDirError> {
    if let Some(forced) = force.and_then(ForceDir::look) {
        return Ok(Look::Go(Trigger::Forced(forced)));
    }
    if run.exists(REQUEST)? {
        return Ok(Look::Go(Trigger::Request));
    }
    loop {
        let file = match run.open_file(IMMEDIATE, Access::READ, None, false) {
            Ok(file) => file,
            Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(Look::Idle),
            Err(e) if e.errno() == Some(libc::EACCES) => {
                // A regular file lsusd may not open (root without
                // capabilities under its unit opens another user's file
                // through the "other" bits only). Its creator may be about
                // to make it readable (libsus does, just after creating
                // it): a young one gets the same grace as an unlocked one,
                // and its chmod (IN_ATTRIB) makes lsusd look again.
                if let Some(wait) = unreadable_grace(run, grace)? {
                    return Ok(Look::Grace(wait));
                }
                tracing::warn!(
                    "ignoring and removing {}: {e} (lsusd must be able to open it to test its \
                     lock: a client makes it readable by others, mode 0644; doc/protocol.md §1.2)",
                    run.join(IMMEDIATE).display()
                );
                remove(run)?;
                return Ok(Look::Idle);
            }
            Err(e) => {
                // A link or something odd: not a valid immediate request.
                tracing::warn!(
                    "ignoring and removing {}: {e}",
                    run.join(IMMEDIATE).display()
                );
                remove(run)?;
                return Ok(Look::Idle);
            }
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            tracing::warn!(
                "removing {}: not a regular file",
                run.join(IMMEDIATE).display()
            );
            remove(run)?;
            return Ok(Look::Idle);
        }
        let lock_err = |source| RunDirError {
            op: "lock",
            path: run.join(IMMEDIATE),
            source,
        };
        if !lock::try_lock(&file, LockKind::Exclusive).map_err(lock_err)? {
            return Ok(Look::Held(file));
        }
        lock::unlock(&file).map_err(lock_err)?;
        let age = age(&file).map_err(|source| RunDirError {
            op: "stat",
            path: run.join(IMMEDIATE),
            source,
        })?;
        if age < grace {
            return Ok(Look::Grace(grace - age));
        }
        if run.remove_if_names(IMMEDIATE, &file)? {
            tracing::info!("removed stale immediate (nobody holds it)");
            return Ok(Look::Idle);
        }
        // Replaced meanwhile: look at the new one.
    }
}

/// Removes whatever stands at `immediate`; a directory that is not empty
/// is moved aside, and the log says whose it was.
fn remove(run: &RunDir) -> Result<(), RunDirError> {
    if let Some(planted) = run.remove_any(IMMEDIATE)? {
        tracing::warn!(
            "{} could not be removed: {planted}",
            run.join(IMMEDIATE).display()
        );
    }
    Ok(())
}

/// For an `immediate` lsusd may not open: how long until its grace ends,
/// when it is a regular file younger than `grace`; `None` otherwise.
fn unreadable_grace(run: &RunDir, grace: Duration) -> Result<Option<Duration>, RunDirError> {
    let Some(st) = run.stat(IMMEDIATE)? else {
        return Ok(None);
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(None);
    }
    let age = since(
        (st.st_ctime, st.st_ctime_nsec),
        (st.st_mtime, st.st_mtime_nsec),
    );
    Ok((age < grace).then(|| grace - age))
}

/// Returns how long ago the file was created or last touched.
fn age(file: &File) -> std::io::Result<Duration> {
    let meta = file.metadata()?;
    Ok(since(
        (meta.ctime(), meta.ctime_nsec()),
        (meta.mtime(), meta.mtime_nsec()),
    ))
}

/// Time since the later of a change time and a modification time
/// (seconds, nanoseconds).
fn since(changed: (i64, i64), modified: (i64, i64)) -> Duration {
    let at = |(secs, nsec): (i64, i64)| {
        UNIX_EPOCH + Duration::new(secs.max(0) as u64, nsec.clamp(0, 999_999_999) as u32)
    };
    let latest = at(changed).max(at(modified));
    SystemTime::now()
        .duration_since(latest)
        .unwrap_or(Duration::ZERO)
}

/// Returns true if and only if the trigger still stands: `request` still
/// exists, or the `immediate` file is still in place and held, or the
/// forced request is still in `force`.
pub fn still_valid(
    run: &RunDir,
    force: Option<&ForceDir>,
    trigger: &Trigger,
) -> Result<bool, RunDirError> {
    match trigger {
        Trigger::Request => run.exists(REQUEST),
        Trigger::Forced(forced) => Ok(force.is_some_and(|f| f.still_there(forced))),
        Trigger::Immediate(file) => {
            if !run.names(IMMEDIATE, file)? {
                return Ok(false);
            }
            let lock_err = |source| RunDirError {
                op: "lock",
                path: run.join(IMMEDIATE),
                source,
            };
            if lock::try_lock(file, LockKind::Exclusive).map_err(lock_err)? {
                lock::unlock(file).map_err(lock_err)?;
                return Ok(false);
            }
            Ok(true)
        }
    }
}
