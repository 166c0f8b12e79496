//! Publishing a status file in the run directory (see
//! `lsus_proto::status`), off the hot path.
//!
//! The daemon hands over its status line once per turn of its event loop.
//! The file is rewritten only when the line changed, and at most once per
//! [`MIN_INTERVAL`]: a change that comes sooner is kept and written when
//! the interval has passed, so the loop must wake up by [`StatusFile::deadline`].
//! A burst of connections therefore costs one write, not one per client.
//! The file is published in `RUN/records` (doc/protocol.md §1.10), where
//! its changes wake no watcher of the run directory; `RUN/NAME` is made a
//! link to it at the first write. Both are removed when the `StatusFile`
//! is dropped.

use std::time::{Duration, Instant};

use lsus_proto::rundir::RunDir;

/// The shortest time between two writes of a status file.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Mode of a status file: the run directory's group may read it.
const MODE: u32 = 0o644;

/// A status file that this daemon owns.
#[derive(Debug)]
pub struct StatusFile {
    run: RunDir,
    name: &'static str,
    /// The line on disk, if any.
    written: Option<String>,
    /// A newer line waiting for the interval to pass.
    waiting: Option<String>,
    last_write: Option<Instant>,
    failing: bool,
    /// Whether `RUN/NAME` was made a link to the published file.
    linked: bool,
}

impl StatusFile {
    /// Prepares the status file `name` in `run`; nothing is written yet.
    pub fn new(run: RunDir, name: &'static str) -> StatusFile {
        StatusFile {
            run,
            name,
            written: None,
            waiting: None,
            last_write: None,
            failing: false,
            linked: false,
        }
    }

    /// Publishes `line` (with its newline) as of `now`: writes it at once
    /// if it differs from the file and the last write is at least
    /// [`MIN_INTERVAL`] old; otherwise keeps it for [`StatusFile::deadline`].
    /// A failed write is logged (once until a write succeeds again) and
    /// never fatal.
    pub fn publish(&mut self, line: String, now: Instant) {
        if self.written.as_deref() == Some(line.as_str()) {
            self.waiting = None;
            return;
        }
        let due = match self.last_write {
            Some(t) => now >= t + MIN_INTERVAL,
            None => true,
        };
        if !due {
            self.waiting = Some(line);
            return;
        }
        self.waiting = None;
        self.last_write = Some(now);
        match self.run.publish(self.name, line.as_bytes(), MODE) {
            Ok(planted) => {
                if let Some(planted) = planted {
                    tracing::warn!("{}: found {planted}", self.run.join(self.name).display());
                }
                self.written = Some(line);
                self.failing = false;
                if !self.linked {
                    self.linked = true;
                    match self.run.link_published(self.name, MODE) {
                        Ok(Some(planted)) => tracing::warn!(
                            "{}: found {planted}; made it a link to the status file",
                            self.run.join(self.name).display()
                        ),
                        Ok(None) => {}
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!("cannot publish the status file: {e}");
                }
                self.failing = true;
                self.written = None;
            }
        }
    }

    /// Returns when the loop must call [`StatusFile::publish`] again to
    /// write a change that is waiting, if one is.
    pub fn deadline(&self) -> Option<Instant> {
        match (&self.waiting, self.last_write) {
            (Some(_), Some(t)) => Some(t + MIN_INTERVAL),
            _ => None,
        }
    }
}

impl Drop for StatusFile {
    /// Removes the file: a stopped daemon publishes nothing.
    fn drop(&mut self) {
        if self.written.is_some() || self.failing || self.linked {
            if let Err(e) = self.run.unpublish(self.name) {
                tracing::warn!("cannot remove the status file: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(dir: &std::path::Path) -> Option<String> {
        std::fs::read_to_string(dir.join("x.status")).ok()
    }

    #[test]
    fn writes_changes_at_most_once_per_interval_and_removes_on_drop() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        let dir = run.path().to_path_buf();
        let mut s = StatusFile::new(run, "x.status");
        let t0 = Instant::now();
        s.publish("n=1\n".into(), t0);
        assert_eq!(read(&dir).as_deref(), Some("n=1\n"));
        assert_eq!(s.deadline(), None);

        // Too soon: kept, not written.
        s.publish("n=2\n".into(), t0 + Duration::from_millis(10));
        assert_eq!(read(&dir).as_deref(), Some("n=1\n"));
        assert_eq!(s.deadline(), Some(t0 + MIN_INTERVAL));

        // Back to what is on disk before the deadline: nothing to do.
        s.publish("n=1\n".into(), t0 + Duration::from_millis(20));
        assert_eq!(s.deadline(), None);

        s.publish("n=3\n".into(), t0 + Duration::from_millis(30));
        s.publish("n=3\n".into(), t0 + MIN_INTERVAL);
        assert_eq!(read(&dir).as_deref(), Some("n=3\n"));
        assert_eq!(s.deadline(), None);

        // Published in records/, read through the link at the old path.
        assert_eq!(
            std::fs::read_to_string(dir.join("records/x.status")).ok(),
            Some("n=3\n".to_string())
        );
        assert!(dir
            .join("x.status")
            .symlink_metadata()
            .unwrap()
            .is_symlink());

        drop(s);
        assert_eq!(read(&dir), None);
        assert!(dir.join("x.status").symlink_metadata().is_err());
        assert!(!dir.join("records/x.status").exists());
    }
}
