//! Waiting for changes in the run directory with inotify.
//!
//! No polling anywhere: a process that waits for a file to appear, change
//! or go away sleeps in `poll(2)` on an inotify descriptor. A deadline is
//! only used where the protocol itself has one.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// The `poll(2)` timeout for a wait of `t` (`None`: no end), rounded up
/// to the next millisecond: a wait that ended a hair early would only
/// loop. Longer than poll can wait: as long as it can.
pub fn poll_timeout(t: Option<Duration>) -> PollTimeout {
    match t {
        None => PollTimeout::NONE,
        Some(t) => PollTimeout::try_from(
            t.as_millis()
                .saturating_add(u128::from(t.subsec_nanos() % 1_000_000 != 0)),
        )
        .unwrap_or(PollTimeout::MAX),
    }
}

/// An inotify watch on one directory.
#[derive(Debug)]
pub struct DirWatch {
    inotify: Inotify,
    buf: Vec<u8>,
}

impl DirWatch {
    /// Watches `dir` for the events in `mask`.
    pub fn new(dir: &Path, mask: WatchMask) -> io::Result<DirWatch> {
        let inotify = Inotify::init()?;
        inotify.watches().add(dir, mask)?;
        Ok(DirWatch {
            inotify,
            buf: vec![0; 16 * 1024],
        })
    }

    /// Also watches `dir` (another directory) for the events in `mask`,
    /// through the same queue. Returns the watch's descriptor, which
    /// [`DirWatch::drain_from`] passes with each of its events.
    pub fn add(&mut self, dir: &Path, mask: WatchMask) -> io::Result<WatchDescriptor> {
        self.inotify.watches().add(dir, mask)
    }

    /// Stops watching what [`DirWatch::add`] added (a directory already
    /// gone is not an error).
    pub fn remove(&mut self, wd: WatchDescriptor) {
        let _ = self.inotify.watches().remove(wd);
    }

    /// As [`DirWatch::drain`], with the descriptor of the watch each event
    /// came from (`None` for a queue overflow).
    pub fn drain_from(
        &mut self,
        mut f: impl FnMut(Option<&WatchDescriptor>, EventMask, Option<&OsStr>),
    ) -> io::Result<usize> {
        let mut count = 0;
        loop {
            match self.inotify.read_events(&mut self.buf) {
                Ok(events) => {
                    for e in events {
                        count += 1;
                        let wd = (!e.mask.contains(EventMask::Q_OVERFLOW)).then_some(&e.wd);
                        f(wd, e.mask, e.name);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(count),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until an event is queued or `timeout` passes (`None`: no
    /// limit). Returns true if and only if events are queued.
    ///
    /// A signal ends the wait with `ErrorKind::Interrupted`.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        self.wait_or(timeout, None)
    }

    /// As [`DirWatch::wait`], but also ends when `other` becomes readable
    /// (a daemon's shutdown descriptor).
    pub fn wait_or(
        &self,
        timeout: Option<Duration>,
        other: Option<BorrowedFd<'_>>,
    ) -> io::Result<bool> {
        let mut fds = vec![PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = other {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        nix::poll::poll(&mut fds, poll_timeout(timeout)).map_err(io::Error::from)?;
        Ok(fds[0].revents().is_some_and(|r| !r.is_empty()))
    }

    /// Waits until `deadline` at most; see [`DirWatch::wait`].
    pub fn wait_until(&self, deadline: Option<Instant>) -> io::Result<bool> {
        self.wait(deadline.map(|d| d.saturating_duration_since(Instant::now())))
    }

    /// Reads every queued event without blocking and calls `f` with its
    /// mask and name. Returns how many there were. A queue overflow is
    /// passed on as an event with `EventMask::Q_OVERFLOW` and no name.
    pub fn drain(&mut self, mut f: impl FnMut(EventMask, Option<&OsStr>)) -> io::Result<usize> {
        self.drain_from(|_, mask, name| f(mask, name))
    }
}

impl AsFd for DirWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_creation_by_name_and_times_out_when_quiet() {
        let t = tempfile::tempdir().unwrap();
        let mut w = DirWatch::new(t.path(), WatchMask::CREATE).unwrap();
        assert!(!w.wait(Some(Duration::from_millis(10))).unwrap());
        std::fs::write(t.path().join("request"), b"").unwrap();
        assert!(w.wait(Some(Duration::from_secs(5))).unwrap());
        let mut names = Vec::new();
        w.drain(|m, n| {
            assert!(m.contains(EventMask::CREATE));
            names.push(n.unwrap().to_owned());
        })
        .unwrap();
        assert_eq!(names, vec![std::ffi::OsString::from("request")]);
        assert_eq!(w.drain(|_, _| {}).unwrap(), 0);
    }
}
