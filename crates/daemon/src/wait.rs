//! Waiting for lsusd at start-up: lsused, wakealarmd and lsus-idle are
//! its watchers or clients and may be started first (`lsusd & lsused &
//! wakealarmd &`, or while lsusd restarts). They wait with inotify, say so
//! in one line, and go on when lsusd is ready (`lsus_proto::presence`).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use lsus_proto::presence::{self, WaitError};
use lsus_proto::rundir::{RunDir, RunDirError};

use crate::instance::{InstanceError, InstanceLock};
use crate::signals::ShutdownSignals;

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

/// A daemon that may begin its work: lsusd is ready and no other instance
/// of it runs.
#[derive(Debug)]
pub struct Started {
    /// The shutdown signals, installed before anything else.
    pub signals: ShutdownSignals,
    /// The run directory lsusd serves.
    pub run: RunDir,
    /// The instance lock; the PID file goes when it is dropped.
    pub instance: InstanceLock,
}

/// [`start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The shutdown signals could not be set up.
    #[error("cannot set up signal handling: {0}")]
    Signals(#[source] nix::Error),
    /// Waiting for lsusd failed.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// Another instance runs, or the PID file could not be written.
    #[error(transparent)]
    Instance(#[from] InstanceError),
    /// The run directory could not be used.
    #[error("{0} (is lsusd running?)")]
    RunDir(#[source] RunDirError),
}

/// The start of lsused, wakealarmd and lsus-idle: installs the shutdown
/// signals, waits for lsusd on `dir` (said once, in the log) and takes the
/// instance lock of `name`, whose PID file goes when the daemon ends.
/// Returns `None` when a shutdown signal came while waiting (logged).
pub fn start(name: &str, dir: &Path) -> Result<Option<Started>, StartError> {
    let signals = ShutdownSignals::install().map_err(StartError::Signals)?;
    let Some(run) = for_lsusd(dir, signals.as_fd())? else {
        tracing::info!("stopped while waiting for lsusd");
        return Ok(None);
    };
    let instance = InstanceLock::acquire(&run, name)?
        .remove_on_drop(&run, name)
        .map_err(StartError::RunDir)?;
    Ok(Some(Started {
        signals,
        run,
        instance,
    }))
}
