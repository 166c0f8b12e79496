//! One error type for the whole harness: every failure becomes one clear
//! line and a non-zero exit.

use std::io;

/// Why a benchmark (or the harness itself) could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The harness's own plumbing failed: a deadline passed, a client
    /// misbehaved, a daemon died.
    #[error("{0}")]
    Plumbing(String),
}

/// The harness's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds "what was being done" to I/O errors.
pub trait Context<T> {
    /// Maps the error to [`Error::Io`] with `what` as its description.
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Io {
            what: what(),
            source: io::Error::from(e),
        })
    }
}

/// Returns a plumbing error with `msg`.
pub fn plumbing<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::Plumbing(msg.into()))
}
