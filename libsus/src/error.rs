//! The one error type of libsus.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use lsus_proto::rundir::RunDirError;

/// Everything that can go wrong in a libsus call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// lsusd is not running on this run directory (its files are missing
    /// or nobody holds its instance lock).
    #[error("lsusd is not running on {}", .0.display())]
    NotRunning(PathBuf),
    /// The lsusd that was asked stopped while the request waited (killed,
    /// crashed, or restarted: another lsusd may run now); the request is
    /// withdrawn and did not suspend.
    #[error("lsusd (PID {pid}) on {} stopped while the request waited; the request was withdrawn", .dir.display())]
    Stopped {
        /// The run directory.
        dir: PathBuf,
        /// The PID of that lsusd (0: unknown).
        pid: u32,
    },
    /// A file in the run directory could not be used.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The daemon did not answer in time.
    #[error("no answer after {0:?}")]
    Timeout(Duration),
    /// A wake-alarm time after the end of the year 9999 (seconds since
    /// the epoch), refused before anything is sent.
    #[error("time out of range (after the year 9999): {0} s since the epoch")]
    TimeOutOfRange(u64),
    /// A forced request (`request_suspend_forced`) was refused by the
    /// kernel: the caller is neither root nor a member of the group
    /// `suspend-force`, which `RUN/force` belongs to.
    #[error("not permitted to force suspend: not root and not in group suspend-force")]
    ForceNotPermitted,
    /// The daemon sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// The result type of libsus.
pub type Result<T> = std::result::Result<T, Error>;
