//! libsus — the client library of lsusd, the Linux SUSpend Daemon.
//!
//! lsusd alone decides when the machine sleeps; every other process talks
//! to it through files in the run directory (`/run/suspend`, or
//! `$LSUSD_RUN_DIR`) and two sockets. This crate speaks that protocol
//! byte for byte as the original C library did, so programs using it mix
//! freely with shell scripts holding `flock` and with the original's
//! clients.
//!
//! | want to…                                   | use |
//! |--------------------------------------------|-----|
//! | keep the machine awake for a while         | [`Blocker`] |
//! | abort a suspend that is being prepared     | [`Blocker::abort`] |
//! | hear of suspend and resume                 | [`Watcher`] |
//! | ask for one suspend                        | [`request_suspend`] |
//! | suspend as soon as nothing blocks          | [`request_suspend_when_unblocked`] |
//! | suspend whenever nothing blocks            | [`Immediate`] |
//! | be awake at a given time                   | [`WakeAlarm`] |
//! | handle input before the machine sleeps     | [`WakeEvents`] |
//!
//! ```no_run
//! let blocker = libsus::Blocker::open()?;
//! let guard = blocker.block()?;      // the machine stays awake…
//! // … do work …
//! drop(guard);                       // … until here
//! # Ok::<(), libsus::Error>(())
//! ```

mod blocker;
mod error;
mod event_wait;
mod immediate;
mod reconnect;
mod request;
mod wake_alarm;
mod wake_event;
mod watcher;

pub use blocker::{BlockGuard, Blocker, TimedBlock};
pub use error::{Error, Result};
pub use immediate::{Immediate, ImmediateGuard};
pub use lsus_proto::outcome::Outcome;
pub use request::{
    request_suspend, request_suspend_forced, request_suspend_forced_in, request_suspend_in,
    request_suspend_when_unblocked, Report, RequestOptions,
};
pub use wake_alarm::WakeAlarm;
pub use wake_event::{WakeEvent, WakeEvents};
pub use watcher::{WatchEvent, Watcher};

use std::path::{Path, PathBuf};

/// Returns the run directory libsus uses by default: `$LSUSD_RUN_DIR` if
/// set, else `/run/suspend`.
///
/// ```
/// let dir = libsus::run_dir();
/// assert!(dir.is_absolute() || std::env::var_os("LSUSD_RUN_DIR").is_some());
/// ```
pub fn run_dir() -> PathBuf {
    lsus_proto::rundir::resolve(None)
}

pub(crate) fn open_run_dir(dir: &Path) -> Result<lsus_proto::rundir::RunDir> {
    lsus_proto::rundir::RunDir::open(dir).map_err(|e| {
        if e.errno() == Some(libc::ENOENT) {
            Error::NotRunning(dir.to_path_buf())
        } else {
            Error::RunDir(e)
        }
    })
}
