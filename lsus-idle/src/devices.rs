//! The input devices of a directory (`/dev/input/event*`), followed
//! through hotplug with inotify on the directory.
//!
//! A device appears (`IN_CREATE`, `IN_MOVED_TO`) or gets its permissions
//! from udev after it appeared (`IN_ATTRIB`: the node is created root-only
//! and then given its group): it is opened. It goes (`IN_DELETE`,
//! `IN_MOVED_FROM`), or a read fails (`ENODEV` after unplugging): it is
//! dropped, with one log line. A device that cannot be opened is said
//! once per reason; the daemon goes on with the others.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use inotify::{EventMask, WatchMask};
use lsus_sys::dirwatch::DirWatch;

use crate::input::{self, InputSource};

/// The prefix of the names watched: `event0`, `event1`, …
const PREFIX: &str = "event";

/// The devices watched in one directory.
pub struct Devices {
    dir: PathBuf,
    fake: bool,
    watch: DirWatch,
    open: BTreeMap<OsString, Box<dyn InputSource>>,
    /// Entries that could not be opened, with the reason last logged.
    refused: BTreeMap<OsString, String>,
}

fn wanted(name: &OsStr) -> bool {
    name.to_str().is_some_and(|n| n.starts_with(PREFIX))
}

impl Devices {
    /// Watches `dir` and opens every `event*` in it. With `fake`, FIFOs
    /// are read as raw records (the test hook of `--fake-input`).
    pub fn new(dir: &Path, fake: bool) -> io::Result<Devices> {
        let watch = DirWatch::new(
            dir,
            WatchMask::CREATE
                | WatchMask::MOVED_TO
                | WatchMask::ATTRIB
                | WatchMask::DELETE
                | WatchMask::MOVED_FROM
                | WatchMask::ONLYDIR,
        )
        .map_err(|e| io::Error::new(e.kind(), format!("cannot watch {}: {e}", dir.display())))?;
        let mut devices = Devices {
            dir: dir.to_path_buf(),
            fake,
            watch,
            open: BTreeMap::new(),
            refused: BTreeMap::new(),
        };
        devices.scan()?;
        Ok(devices)
    }

    /// Opens every `event*` entry not open yet.
    fn scan(&mut self) -> io::Result<()> {
        let mut names: Vec<OsString> = std::fs::read_dir(&self.dir)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot list {}: {e}", self.dir.display()))
            })?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .filter(|n| wanted(n))
            .collect();
        names.sort();
        for name in names {
            self.add(&name);
        }
        Ok(())
    }

    /// How many devices are watched.
    pub fn count(&self) -> usize {
        self.open.len()
    }

    /// The inotify descriptor: readable when the directory changed.
    pub fn hotplug_fd(&self) -> BorrowedFd<'_> {
        self.watch.as_fd()
    }

    /// The devices' names and descriptors, to poll.
    pub fn fds(&self) -> impl Iterator<Item = (&OsStr, BorrowedFd<'_>)> {
        self.open.iter().map(|(n, d)| (n.as_os_str(), d.as_fd()))
    }

    fn add(&mut self, name: &OsStr) {
        if self.open.contains_key(name) {
            return;
        }
        let path = self.dir.join(name);
        match input::open(&path, self.fake) {
            Ok(device) => {
                tracing::info!("watching {} ({})", path.display(), device.describe());
                self.refused.remove(name);
                self.open.insert(name.to_os_string(), device);
            }
            // Gone before we looked: its IN_DELETE follows.
            Err(input::OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let why = e.to_string();
                if self.refused.get(name) != Some(&why) {
                    tracing::warn!("not watching {}: {why}", path.display());
                } else {
                    tracing::debug!("not watching {}: {why}", path.display());
                }
                self.refused.insert(name.to_os_string(), why);
            }
        }
    }

    fn drop_device(&mut self, name: &OsStr, why: &str) {
        if self.open.remove(name).is_some() {
            tracing::info!("dropped {}: {why}", self.dir.join(name).display());
        }
        self.refused.remove(name);
    }

    /// Follows what changed in the directory.
    pub fn hotplug(&mut self) -> io::Result<()> {
        let mut changes: Vec<(EventMask, Option<OsString>)> = Vec::new();
        self.watch
            .drain(|mask, name| changes.push((mask, name.map(OsStr::to_os_string))))?;
        for (mask, name) in changes {
            if mask.contains(EventMask::Q_OVERFLOW) {
                tracing::warn!(
                    "inotify queue overflowed on {}: looking again",
                    self.dir.display()
                );
                let gone: Vec<OsString> = self
                    .open
                    .keys()
                    .filter(|n| !self.dir.join(n).exists())
                    .cloned()
                    .collect();
                for name in gone {
                    self.drop_device(&name, "it went away");
                }
                self.scan()?;
                continue;
            }
            let Some(name) = name.filter(|n| wanted(n)) else {
                continue;
            };
            if mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM) {
                self.drop_device(&name, "it went away");
            } else if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                // A new node at a known name is another device.
                self.drop_device(&name, "replaced");
                self.add(&name);
            } else if mask.contains(EventMask::ATTRIB) {
                self.add(&name);
            }
        }
        Ok(())
    }

    /// Reads what device `name` has queued; returns how many events were
    /// activity. A device whose read fails is dropped (one log line).
    pub fn read(&mut self, name: &OsStr) -> usize {
        let Some(device) = self.open.get_mut(name) else {
            return 0;
        };
        match device.read_activity() {
            Ok(n) => n,
            Err(e) => {
                let why = if e.raw_os_error() == Some(libc::ENODEV) {
                    "it went away (ENODEV)".to_string()
                } else {
                    format!("read failed: {e}")
                };
                self.drop_device(name, &why);
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mkfifo(p: &Path) {
        nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    fn wait_hotplug(d: &mut Devices) {
        let mut fds = [nix::poll::PollFd::new(
            d.hotplug_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
        d.hotplug().unwrap();
    }

    #[test]
    fn follows_devices_that_come_and_go_and_skips_what_is_no_device() {
        let t = tempfile::tempdir().unwrap();
        mkfifo(&t.path().join("event0"));
        std::fs::write(t.path().join("event9"), b"").unwrap();
        mkfifo(&t.path().join("mouse0")); // not event*: not looked at
        let mut d = Devices::new(t.path(), true).unwrap();
        assert_eq!(d.count(), 1);

        mkfifo(&t.path().join("event1"));
        wait_hotplug(&mut d);
        assert_eq!(d.count(), 2);

        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(t.path().join("event1"))
            .unwrap();
        w.write_all(&input::record(1, 30, 1)).unwrap();
        assert_eq!(d.read(OsStr::new("event1")), 1);

        std::fs::remove_file(t.path().join("event0")).unwrap();
        wait_hotplug(&mut d);
        assert_eq!(d.count(), 1);
        assert_eq!(
            d.read(OsStr::new("event0")),
            0,
            "a dropped device reads nothing"
        );
    }
}
