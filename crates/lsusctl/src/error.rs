//! What can go wrong, and the exit code each failure gives.

use std::io;
use std::path::PathBuf;

use lsus_proto::rundir::RunDirError;
use lsusctl_cli::{EXIT_FAILURE, EXIT_NOT_RUNNING, EXIT_PERMISSION};

/// An error of `lsusctl`, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No lsusd serves the run directory.
    #[error("lsusd is not running on {} ({why})", dir.display())]
    NotRunning {
        /// The run directory.
        dir: PathBuf,
        /// What shows it.
        why: String,
    },
    /// The run directory or one of its files may not be used by us.
    #[error(
        "permission denied on {}: only root and members of the run directory's group \
         (`suspend` with the systemd units) may use it",
        .0.display()
    )]
    Permission(PathBuf),
    /// A file in the run directory failed us.
    #[error(transparent)]
    RunDir(RunDirError),
    /// libsus failed.
    #[error(transparent)]
    Libsus(libsus::Error),
    /// A report could not be written as JSON.
    #[error("cannot write JSON: {0}")]
    Json(serde_json::Error),
    /// Some other system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn is_permission(errno: Option<i32>) -> bool {
    matches!(errno, Some(libc::EACCES) | Some(libc::EPERM))
}

impl From<RunDirError> for Error {
    fn from(e: RunDirError) -> Error {
        if is_permission(e.errno()) {
            Error::Permission(e.path)
        } else {
            Error::RunDir(e)
        }
    }
}

impl From<libsus::Error> for Error {
    fn from(e: libsus::Error) -> Error {
        match e {
            libsus::Error::NotRunning(dir) => Error::NotRunning {
                dir,
                why: "its files are missing".into(),
            },
            libsus::Error::RunDir(e) => e.into(),
            other => Error::Libsus(other),
        }
    }
}

impl Error {
    /// Returns the exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotRunning { .. } => EXIT_NOT_RUNNING,
            Error::Permission(_) => EXIT_PERMISSION,
            _ => EXIT_FAILURE,
        }
    }
}
