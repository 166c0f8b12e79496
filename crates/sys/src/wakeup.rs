//! What the kernel says about wake-ups and failed suspends: the wakeup
//! sources of `class/wakeup`, `power/pm_wakeup_irq`,
//! `kernel/wakeup_reasons/last_resume_reason` and `power/suspend_stats`.
//!
//! All of it is optional: a kernel without one of these files (or a fake
//! tree without it) gives `None` or an empty answer, never an error — the
//! suspend loop records what it can and goes on.
//!
//! The layout (`Documentation/ABI/testing/sysfs-class-wakeup` and
//! `sysfs-power` in the kernel's tree):
//!
//! ```text
//! SYS/class/wakeup/wakeupN/{name,event_count,wakeup_count,…}
//! SYS/power/pm_wakeup_irq                 the IRQ that woke the system (ENODATA: none)
//! SYS/power/suspend_stats/{success,fail,failed_freeze,…,last_failed_dev,
//!                          last_failed_errno,last_failed_step}
//! SYS/kernel/wakeup_reasons/last_resume_reason   (Android kernels only)
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirEntryExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The counts of every wakeup source at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Per source, keyed by its directory (`wakeup0`…) or, in the
    /// simulated kernel, by its name: `(event_count, wakeup_count)`.
    pub counts: BTreeMap<String, (u64, u64)>,
}

/// A wakeup source whose counts moved between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The key of [`Snapshot::counts`].
    pub key: String,
    /// How much `event_count` grew.
    pub events: u64,
    /// How much `wakeup_count` grew (events that aborted or ended a
    /// suspend: the kernel counts these only while the wakeup count is
    /// armed or the system is asleep).
    pub wakeups: u64,
}

impl Snapshot {
    /// Returns the sources whose counts grew from `before` to `self`, the
    /// likeliest cause first: by `wakeup_count` growth, then
    /// `event_count` growth, then key. A source that appeared since
    /// `before` counts from zero.
    pub fn moved_since(&self, before: &Snapshot) -> Vec<Moved> {
        let mut moved: Vec<Moved> = self
            .counts
            .iter()
            .filter_map(|(key, &(ev, wk))| {
                let (ev0, wk0) = before.counts.get(key).copied().unwrap_or((0, 0));
                let m = Moved {
                    key: key.clone(),
                    events: ev.saturating_sub(ev0),
                    wakeups: wk.saturating_sub(wk0),
                };
                (m.events > 0 || m.wakeups > 0).then_some(m)
            })
            .collect();
        moved.sort_by(|a, b| {
            b.wakeups
                .cmp(&a.wakeups)
                .then(b.events.cmp(&a.events))
                .then(a.key.cmp(&b.key))
        });
        moved
    }
}

/// The kernel's own suspend statistics (`power/suspend_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuspendStats {
    /// The numeric counters present (`success`, `fail`, `failed_freeze`…),
    /// in the kernel's order.
    pub counters: Vec<(String, u64)>,
    /// `last_failed_dev`, when not empty.
    pub last_failed_dev: Option<String>,
    /// `last_failed_errno` (the kernel writes it negative, `-16`).
    pub last_failed_errno: Option<i32>,
    /// `last_failed_step`, when not empty.
    pub last_failed_step: Option<String>,
}

/// The counters of `power/suspend_stats`, in the order the kernel lists
/// them; those the running kernel lacks are left out.
pub const SUSPEND_STATS_COUNTERS: &[&str] = &[
    "success",
    "fail",
    "failed_freeze",
    "failed_prepare",
    "failed_suspend",
    "failed_suspend_late",
    "failed_suspend_noirq",
    "failed_resume",
    "failed_resume_early",
    "failed_resume_noirq",
];

impl SuspendStats {
    /// Returns counter `name`, if the kernel has it.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }
}

/// The wake-up files under a sysfs root (normally `/sys`).
///
/// The counts of the wakeup sources are read through descriptors kept
/// open from one sample to the next (`pread` at offset 0 makes sysfs
/// produce the value afresh): a sample of 50 sources is then 100 reads
/// and one directory listing, not 100 opens, path walks and closes
/// (issue #16's target: recording the reasons adds less than 1 ms to an
/// attempt). Two descriptors per source stay open. A source that goes is
/// forgotten at the next sample; one whose `class/wakeup` entry was
/// replaced (a device removed and another given its `wakeupN`: a new
/// inode) is opened afresh, and so is one whose read fails.
#[derive(Debug)]
pub struct WakeupFiles {
    root: PathBuf,
    open: Mutex<BTreeMap<String, Counts>>,
    /// The other files read at every attempt (`suspend_stats/*`,
    /// `pm_wakeup_irq`, …), by path under `root`, kept open the same way.
    kept: Mutex<BTreeMap<String, fs::File>>,
}

/// The open `event_count` and `wakeup_count` of one source, and the inode
/// of its `class/wakeup` entry when they were opened.
#[derive(Debug)]
struct Counts {
    ino: u64,
    event: fs::File,
    wakeup: fs::File,
}

impl Counts {
    fn open(dir: &Path, ino: u64) -> Option<Counts> {
        Some(Counts {
            ino,
            event: fs::File::open(dir.join("event_count")).ok()?,
            wakeup: fs::File::open(dir.join("wakeup_count")).ok()?,
        })
    }

    fn read(&self) -> Option<(u64, u64)> {
        Some((pread_u64(&self.event)?, pread_u64(&self.wakeup)?))
    }
}

impl Clone for WakeupFiles {
    /// The same root, with descriptors of its own.
    fn clone(&self) -> WakeupFiles {
        WakeupFiles::new(&self.root)
    }
}

impl WakeupFiles {
    /// Uses the files under `root`.
    pub fn new(root: &Path) -> WakeupFiles {
        WakeupFiles {
            root: root.to_path_buf(),
            open: Mutex::new(BTreeMap::new()),
            kept: Mutex::new(BTreeMap::new()),
        }
    }

    /// Reads the file `rel` under the root through a descriptor kept
    /// open, trimmed; opens it again once if the kept one fails; `None`
    /// when it cannot be read.
    fn read_kept(&self, rel: &str) -> Option<String> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(text) = kept.get(rel).and_then(pread_text) {
            return Some(text);
        }
        kept.remove(rel);
        let file = fs::File::open(self.root.join(rel)).ok()?;
        let text = pread_text(&file)?;
        kept.insert(rel.to_string(), file);
        Some(text)
    }

    fn read_kept_u64(&self, rel: &str) -> Option<u64> {
        self.read_kept(rel)?.parse().ok()
    }

    /// Samples every wakeup source's `event_count` and `wakeup_count`.
    /// Returns `None` when `class/wakeup` cannot be listed (a kernel
    /// without it); a source whose files cannot be read is left out.
    pub fn snapshot(&self) -> Option<Snapshot> {
        let dir = self.root.join("class/wakeup");
        let entries = fs::read_dir(&dir).ok()?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mut kept = BTreeMap::new();
        let mut counts = BTreeMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(key) = name.to_str() else { continue };
            if !key.starts_with("wakeup") {
                continue;
            }
            let ino = entry.ino();
            let cached = open.remove(key).filter(|c| c.ino == ino);
            let sampled = cached.and_then(|c| Some((c.read()?, c))).or_else(|| {
                let c = Counts::open(&entry.path(), ino)?;
                Some((c.read()?, c))
            });
            if let Some((value, c)) = sampled {
                counts.insert(key.to_string(), value);
                kept.insert(key.to_string(), c);
            }
        }
        *open = kept;
        Some(Snapshot { counts })
    }

    /// Returns the `name` of the source at `key` (a directory of
    /// `class/wakeup`), or the key itself when it cannot be read.
    pub fn name(&self, key: &str) -> String {
        read_text(&self.root.join("class/wakeup").join(key).join("name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| key.to_string())
    }

    /// Returns `power/pm_wakeup_irq`: the IRQ that ended the last suspend,
    /// `None` when the file is missing or the kernel has none to tell.
    pub fn wakeup_irq(&self) -> Option<u32> {
        self.read_kept("power/pm_wakeup_irq")?.parse().ok()
    }

    /// Returns `kernel/wakeup_reasons/last_resume_reason` (Android
    /// kernels), its lines joined with `; `, or `None`.
    pub fn last_resume_reason(&self) -> Option<String> {
        let text = self.read_kept("kernel/wakeup_reasons/last_resume_reason")?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        (!lines.is_empty()).then(|| lines.join("; "))
    }

    /// Returns the `fail` counter of `power/suspend_stats` alone (cheap
    /// enough to read just before the state write).
    pub fn fail_count(&self) -> Option<u64> {
        self.read_kept_u64("power/suspend_stats/fail")
    }

    /// Returns `power/suspend_stats`, or `None` when the directory is
    /// missing.
    pub fn suspend_stats(&self) -> Option<SuspendStats> {
        if !self.root.join("power/suspend_stats").is_dir() {
            return None;
        }
        let rel = |n: &str| format!("power/suspend_stats/{n}");
        let counters = SUSPEND_STATS_COUNTERS
            .iter()
            .filter_map(|&n| self.read_kept_u64(&rel(n)).map(|v| (n.to_string(), v)))
            .collect();
        let text = |n: &str| self.read_kept(&rel(n)).filter(|t| !t.is_empty());
        Some(SuspendStats {
            counters,
            last_failed_dev: text("last_failed_dev"),
            last_failed_errno: text("last_failed_errno").and_then(|t| t.parse().ok()),
            last_failed_step: text("last_failed_step"),
        })
    }
}

/// Reads a small text file, trimmed; `None` when it cannot be read.
fn read_text(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|t| t.trim().to_string())
}

/// Reads a small text file through an open descriptor, from offset 0,
/// trimmed (at most 64 KiB: sysfs attributes are one page).
fn pread_text(file: &fs::File) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    if len >= 1 << 16 {
                        return None;
                    }
                    buf.resize(len * 2, 0);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(String::from_utf8_lossy(&buf[..len]).trim().to_string())
}

/// Reads a count through an open descriptor, from offset 0.
fn pread_u64(file: &fs::File) -> Option<u64> {
    let mut buf = [0u8; 32];
    let n = loop {
        match file.read_at(&mut buf, 0) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    };
    if n == buf.len() {
        return None; // longer than any count
    }
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(root: &Path, n: u32, name: &str, ev: u64, wk: u64) {
        let d = root.join(format!("class/wakeup/wakeup{n}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("name"), format!("{name}\n")).unwrap();
        fs::write(d.join("event_count"), format!("{ev}\n")).unwrap();
        fs::write(d.join("wakeup_count"), format!("{wk}\n")).unwrap();
    }

    #[test]
    fn moved_sources_are_found_and_named_wakeups_first() {
        let t = tempfile::tempdir().unwrap();
        let w = WakeupFiles::new(t.path());
        assert_eq!(w.snapshot(), None, "no class/wakeup: no snapshot");
        source(t.path(), 0, "rtc0", 3, 1);
        source(t.path(), 1, "PNP0C0C:00", 9, 0);
        source(t.path(), 2, "alarmtimer.0.auto", 0, 0);
        let before = w.snapshot().unwrap();
        assert_eq!(before.counts.len(), 3);
        source(t.path(), 1, "PNP0C0C:00", 12, 0);
        source(t.path(), 0, "rtc0", 4, 2);
        source(t.path(), 3, "new", 1, 0);
        let after = w.snapshot().unwrap();
        let moved = after.moved_since(&before);
        let keys: Vec<&str> = moved.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, ["wakeup0", "wakeup1", "wakeup3"]);
        assert_eq!(w.name("wakeup0"), "rtc0");
        assert_eq!(w.name("wakeup9"), "wakeup9");
        assert!(after.moved_since(&after).is_empty());
    }

    /// The descriptors kept open between samples follow the tree: a
    /// count rewritten in place is read afresh, a source removed is
    /// forgotten, a `wakeupN` given to another device (a new directory)
    /// is opened again, and the descriptors are not duplicated.
    #[test]
    fn kept_descriptors_follow_sources_that_change_go_and_come() {
        let t = tempfile::tempdir().unwrap();
        source(t.path(), 0, "rtc0", 1, 0);
        source(t.path(), 1, "gone", 5, 0);
        let w = WakeupFiles::new(t.path());
        // our descriptors into this tree (tests run in parallel threads)
        let fds = || {
            fs::read_dir("/proc/self/fd")
                .unwrap()
                .flatten()
                .filter(|e| fs::read_link(e.path()).is_ok_and(|l| l.starts_with(t.path())))
                .count()
        };
        let first = w.snapshot().unwrap();
        let open_after_first = fds();
        assert_eq!(open_after_first, 4, "two per source, kept open");
        source(t.path(), 0, "rtc0", 2, 1); // the same inode, rewritten
        let d1 = t.path().join("class/wakeup/wakeup1");
        fs::remove_dir_all(&d1).unwrap();
        let second = w.snapshot().unwrap();
        assert_eq!(second.counts.get("wakeup0"), Some(&(2, 1)));
        assert_eq!(second.counts.get("wakeup1"), None);
        assert_eq!(
            fds(),
            open_after_first - 2,
            "the gone source's descriptors closed"
        );
        source(t.path(), 1, "new device", 0, 0);
        let third = w.snapshot().unwrap();
        assert_eq!(third.counts.get("wakeup1"), Some(&(0, 0)));
        assert_eq!(fds(), open_after_first);
        assert_eq!(w.name("wakeup1"), "new device");
        assert_eq!(first.counts.get("wakeup1"), Some(&(5, 0)));
    }

    #[test]
    fn optional_files_are_none_when_missing() {
        let t = tempfile::tempdir().unwrap();
        let w = WakeupFiles::new(t.path());
        assert_eq!(w.wakeup_irq(), None);
        assert_eq!(w.last_resume_reason(), None);
        assert_eq!(w.suspend_stats(), None);
        assert_eq!(w.fail_count(), None);
        fs::create_dir_all(t.path().join("power/suspend_stats")).unwrap();
        fs::create_dir_all(t.path().join("kernel/wakeup_reasons")).unwrap();
        fs::write(t.path().join("power/pm_wakeup_irq"), "8\n").unwrap();
        fs::write(
            t.path().join("kernel/wakeup_reasons/last_resume_reason"),
            "8 rtc0\n\n",
        )
        .unwrap();
        for (n, v) in [
            ("success", "5"),
            ("fail", "2"),
            ("failed_freeze", "1"),
            ("last_failed_dev", "\n"),
            ("last_failed_errno", "-16\n"),
            ("last_failed_step", "freeze\n"),
        ] {
            fs::write(t.path().join("power/suspend_stats").join(n), v).unwrap();
        }
        assert_eq!(w.wakeup_irq(), Some(8));
        assert_eq!(w.last_resume_reason().as_deref(), Some("8 rtc0"));
        let s = w.suspend_stats().unwrap();
        assert_eq!(s.counter("success"), Some(5));
        assert_eq!(s.counter("failed_resume"), None);
        assert_eq!(s.last_failed_dev, None);
        assert_eq!(s.last_failed_errno, Some(-16));
        assert_eq!(s.last_failed_step.as_deref(), Some("freeze"));
        assert_eq!(w.fail_count(), Some(2));
    }
}
