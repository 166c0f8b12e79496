//! Waiting for lsusd at start-up: lsused and wakealarmd are its watchers
//! and may be started first (`lsusd & lsused & wakealarmd &`, or while
//! lsusd restarts). They wait with inotify, say so in one line, and go on
//! when lsusd is ready (`lsus_proto::presence`).

use std::os::fd::BorrowedFd;
use std::path::Path;

use lsus_proto::presence::{self, WaitError};
use lsus_proto::rundir::RunDir;

/// Waits until lsusd is ready on `dir`; returns the run directory, or
/// `None` when a shutdown signal (readable on `stop`) came first.
pub fn for_lsusd(dir: &Path, stop: BorrowedFd<'_>) -> Result<Option<RunDir>, WaitError> {
    let run = presence::wait_for_lsusd(dir, Some(stop), || {
        tracing::info!(
            "lsusd is not running on {} yet; waiting for it (inotify, no polling)",
            dir.display()
        )
    })?;
    Ok(run)
}
