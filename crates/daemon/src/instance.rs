//! One daemon of each kind per run directory.
//!
//! Each daemon holds an exclusive `flock` on `RUN/<name>.pid` for its whole
//! life and writes its PID there. A second one fails to take the lock and
//! refuses to start before touching any other file. The lock dies with the
//! process, so a crash never leaves a stale lock behind.

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use lsus_proto::rundir::{Access, RunDir, RunDirError};
use lsus_sys::lock::{try_lock, LockKind};

/// The daemon could not claim the run directory.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Another instance holds the lock.
    #[error("another {name} is already running on {dir} (PID {pid}); stop it first")]
    Running {
        /// The daemon's name.
        name: String,
        /// The run directory.
        dir: String,
        /// The PID recorded by the running instance, or "unknown".
        pid: String,
    },
    /// The PID file could not be opened.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// The PID file could not be locked or written.
    #[error("cannot lock {path}: {source}")]
    Io {
        /// The PID file.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Proof that this process is the only `name` daemon on the run directory.
#[derive(Debug)]
pub struct InstanceLock {
    file: File,
    /// With [`InstanceLock::remove_on_drop`]: the run directory and the
    /// file's name, to remove it when the lock is dropped.
    remove: Option<(RunDir, String)>,
}

/// Returns the PID file's name for daemon `name`.
pub fn pid_file(name: &str) -> String {
    format!("{name}.pid")
}

impl InstanceLock {
    /// Takes the lock for `name` on `run`, writing our PID into the file.
    pub fn acquire(run: &RunDir, name: &str) -> Result<InstanceLock, InstanceError> {
        let file_name = pid_file(name);
        let path = run.join(&file_name).display().to_string();
        let io = |source| InstanceError::Io {
            path: path.clone(),
            source,
        };
        // A previous instance removes its file on the way out (see
        // `remove_on_drop`): a lock taken on a file no longer at the name
        // proves nothing, so look again.
        let mut file = loop {
            let (file, planted) = run.open_regular(&file_name, Access::READ_WRITE, 0o644, false)?;
            if let Some(planted) = planted {
                tracing::warn!("{path}: found {planted}; created a regular file");
            }
            if !try_lock(&file, LockKind::Exclusive).map_err(io)? || run.names(&file_name, &file)? {
                break file;
            }
        };
        if !try_lock(&file, LockKind::Exclusive).map_err(io)? {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(InstanceError::Running {
                name: name.to_string(),
                dir: run.path().display().to_string(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.into()
                },
            });
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(InstanceLock { file, remove: None })
    }

    /// Makes the PID file go when the lock is dropped (at the end of
    /// `main`, also after an error), so that a stopped daemon leaves no
    /// PID file behind. lsusd keeps its own: clients read an unlocked
    /// `lsusd.pid` as "lsusd stopped", a missing one as "an lsusd of
    /// another make".
    pub fn remove_on_drop(mut self, run: &RunDir, name: &str) -> Result<Self, RunDirError> {
        self.remove = Some((RunDir::open(run.path())?, pid_file(name)));
        Ok(self)
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        if let Some((run, name)) = &self.remove {
            // Still ours (we hold its lock), so no other instance uses it;
            // removed before the lock goes with the descriptor.
            if run.names(name, &self.file).unwrap_or(false) {
                let _ = run.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_instance_is_refused_with_the_first_pid() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        let first = InstanceLock::acquire(&run, "lsusd").unwrap();
        let err = InstanceLock::acquire(&run, "lsusd").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("already running") && msg.contains(&std::process::id().to_string()),
            "{msg}"
        );
        // Another daemon kind is independent.
        let _other = InstanceLock::acquire(&run, "lsused").unwrap();
        drop(first);
        InstanceLock::acquire(&run, "lsusd").unwrap();
    }
}
