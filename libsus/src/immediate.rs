//! Immediate (opportunistic) mode: suspend whenever nothing blocks.

use std::fs::File;
use std::path::Path;

use lsus_proto::lock::{self, LockKind};
use lsus_proto::rundir::{Access, RunDir, IMMEDIATE};

use crate::{open_run_dir, Error, Result};

/// Entry point for immediate mode.
///
/// ```no_run
/// let guard = libsus::Immediate::enter()?;
/// // lsusd now suspends whenever nothing blocks …
/// drop(guard); // … and stops when the guard goes
/// # Ok::<(), libsus::Error>(())
/// ```
#[derive(Debug)]
pub struct Immediate;

/// Immediate mode stays on while this guard lives.
#[derive(Debug)]
#[must_use = "immediate mode ends as soon as the guard is dropped"]
pub struct ImmediateGuard {
    run: RunDir,
    file: File,
}

impl Immediate {
    /// Turns immediate mode on in the default run directory.
    ///
    /// ```no_run
    /// let _on = libsus::Immediate::enter()?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn enter() -> Result<ImmediateGuard> {
        Immediate::enter_in(&crate::run_dir())
    }

    /// Turns immediate mode on in the run directory `dir`.
    ///
    /// Creates `immediate`, refreshes its time stamps (lsusd gives a young
    /// unlocked file a grace period before treating it as stale), takes a
    /// shared lock on it, and then checks that the path still names the
    /// file it locked — if lsusd removed a stale file in between, it starts
    /// again. A shared lock lets several programs hold immediate mode at
    /// once; lsusd's `LOCK_EX|LOCK_NB` test sees any holder, and a shell
    /// script's `flock -x` works alongside.
    ///
    /// ```no_run
    /// let _on = libsus::Immediate::enter_in(std::path::Path::new("/run/suspend"))?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn enter_in(dir: &Path) -> Result<ImmediateGuard> {
        let run = open_run_dir(dir)?;
        loop {
            let (file, _) = run.open_regular(IMMEDIATE, Access::READ, 0o644, false)?;
            // Refresh the time stamps so lsusd's grace period starts now.
            nix::sys::stat::futimens(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                &nix::sys::time::TimeSpec::UTIME_NOW,
                &nix::sys::time::TimeSpec::UTIME_NOW,
            )
            .or_else(|e| {
                if e == nix::errno::Errno::EPERM {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| Error::io("cannot touch immediate", e.into()))?;
            lock::lock_retrying(&file, LockKind::Shared)
                .map_err(|e| Error::io("cannot lock immediate", e))?;
            if run.names(IMMEDIATE, &file)? {
                return Ok(ImmediateGuard { run, file });
            }
        }
    }
}

impl ImmediateGuard {
    /// Leaves immediate mode (the same as dropping the guard).
    pub fn leave(self) {}
}

impl Drop for ImmediateGuard {
    fn drop(&mut self) {
        // Remove the file only if nobody else holds immediate mode.
        if let Ok(true) = lock::try_lock(&self.file, LockKind::Exclusive) {
            let _ = self.run.remove_if_names(IMMEDIATE, &self.file);
        }
    }
}
