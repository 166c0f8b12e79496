//! The sysfs power interface: `power/wakeup_count` and `power/state`, and
//! what the kernel says about wake-ups around them (`crate::wakeup`).
//!
//! [`Power`] is what the suspend loop needs from the kernel; [`SysfsPower`]
//! is the real thing under a configurable root, [`SimPower`] a simulated
//! kernel whose wakeup events can be injected at any step.
//!
//! The race-free protocol (see `Documentation/ABI/testing/sysfs-power`):
//! read `wakeup_count` (blocks while events are being processed), do the
//! user-space preparation, write the count back — the kernel rejects the
//! write with `EINVAL` if an event happened since the read — then write
//! the state; the kernel aborts the suspend (`EBUSY`) if an event arrives
//! after the count was written.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::wakeup::{Snapshot, SuspendStats, WakeupFiles};

/// A sleep state, as written to `power/state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SleepState {
    /// Suspend to RAM (S3, or whatever `mem_sleep` selects).
    #[default]
    Mem,
    /// Suspend to idle.
    Freeze,
    /// Power-on suspend.
    Standby,
    /// Hibernation.
    Disk,
}

impl SleepState {
    /// Returns the word the kernel expects.
    pub fn as_str(self) -> &'static str {
        match self {
            SleepState::Mem => "mem",
            SleepState::Freeze => "freeze",
            SleepState::Standby => "standby",
            SleepState::Disk => "disk",
        }
    }
}

impl fmt::Display for SleepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SleepState {
    type Err = String;

    fn from_str(s: &str) -> Result<SleepState, String> {
        match s {
            "mem" => Ok(SleepState::Mem),
            "freeze" => Ok(SleepState::Freeze),
            "standby" => Ok(SleepState::Standby),
            "disk" => Ok(SleepState::Disk),
            _ => Err(format!(
                "unknown sleep state {s:?} (mem, freeze, standby, disk)"
            )),
        }
    }
}

/// A kernel file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct PowerError {
    /// The file.
    pub path: PathBuf,
    /// The error; `raw_os_error()` gives the errno.
    #[source]
    pub source: io::Error,
}

impl PowerError {
    /// Returns the errno, or EIO if there is none.
    pub fn errno(&self) -> i32 {
        self.source.raw_os_error().unwrap_or(libc::EIO)
    }
}

/// What writing the wakeup count back said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountCheck {
    /// No wakeup event since the count was read: the kernel will abort the
    /// suspend if one arrives from now on.
    Accepted,
    /// A wakeup event happened since the count was read.
    Rejected,
}

/// What the suspend loop needs from the kernel.
pub trait Power {
    /// Reads `wakeup_count`. May block while wakeup events are processed.
    fn read_wakeup_count(&mut self) -> Result<u64, PowerError>;
    /// Writes `count` back to `wakeup_count`.
    fn write_wakeup_count(&mut self, count: u64) -> Result<CountCheck, PowerError>;
    /// Writes `state` to `power/state`; returns after resume. Fails at once
    /// (typically `EBUSY`) if a wakeup event arrived after the count check.
    fn enter_state(&mut self, state: SleepState) -> Result<(), PowerError>;

    /// Samples the wakeup sources' counts; `None` when the kernel has no
    /// `class/wakeup`.
    fn wakeup_sources(&mut self) -> Option<Snapshot>;
    /// Returns the name of the wakeup source at `key` of a [`Snapshot`].
    fn source_name(&mut self, key: &str) -> String;
    /// Returns `power/pm_wakeup_irq`, when the kernel tells one.
    fn wakeup_irq(&mut self) -> Option<u32>;
    /// Returns `kernel/wakeup_reasons/last_resume_reason`, where present.
    fn last_resume_reason(&mut self) -> Option<String>;
    /// Returns `power/suspend_stats`, where present.
    fn suspend_stats(&mut self) -> Option<SuspendStats>;
    /// Returns `power/suspend_stats/fail` alone, where present.
    fn suspend_fail_count(&mut self) -> Option<u64>;
}

/// The real sysfs power interface under a root (normally `/sys`).
#[derive(Debug, Clone)]
pub struct SysfsPower {
    wakeup_count: PathBuf,
    state: PathBuf,
    wakeups: WakeupFiles,
}

impl SysfsPower {
    /// Uses `ROOT/power/wakeup_count` and `ROOT/power/state`.
    pub fn new(root: &Path) -> SysfsPower {
        SysfsPower {
            wakeup_count: root.join("power/wakeup_count"),
            state: root.join("power/state"),
            wakeups: WakeupFiles::new(root),
        }
    }

    /// Returns the path of `power/state`.
    pub fn state_path(&self) -> &Path {
        &self.state
    }

    /// Returns the path of `power/wakeup_count`.
    pub fn wakeup_count_path(&self) -> &Path {
        &self.wakeup_count
    }
}

fn err(path: &Path) -> impl Fn(io::Error) -> PowerError + '_ {
    move |source| PowerError {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `text` in a single `write(2)`, as sysfs requires.
fn write_once(path: &Path, text: &str) -> Result<(), PowerError> {
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err(path))?;
    loop {
        match file.write(text.as_bytes()) {
            Ok(n) if n == text.len() => return Ok(()),
            Ok(_) => {
                return Err(err(path)(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "short write",
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(path)(e)),
        }
    }
}

impl Power for SysfsPower {
    fn read_wakeup_count(&mut self) -> Result<u64, PowerError> {
        let path = &self.wakeup_count;
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(err(path))?;
        text.trim().parse().map_err(|_| {
            err(path)(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a number: {:?}", text.trim()),
            ))
        })
    }

    fn write_wakeup_count(&mut self, count: u64) -> Result<CountCheck, PowerError> {
        match write_once(&self.wakeup_count, &count.to_string()) {
            Ok(()) => Ok(CountCheck::Accepted),
            Err(e) if e.errno() == libc::EINVAL => Ok(CountCheck::Rejected),
            Err(e) => Err(e),
        }
    }

    fn enter_state(&mut self, state: SleepState) -> Result<(), PowerError> {
        write_once(&self.state, &format!("{state}\n"))
    }

    fn wakeup_sources(&mut self) -> Option<Snapshot> {
        self.wakeups.snapshot()
    }

    fn source_name(&mut self, key: &str) -> String {
        self.wakeups.name(key)
    }

    fn wakeup_irq(&mut self) -> Option<u32> {
        self.wakeups.wakeup_irq()
    }

    fn last_resume_reason(&mut self) -> Option<String> {
        self.wakeups.last_resume_reason()
    }

    fn suspend_stats(&mut self) -> Option<SuspendStats> {
        self.wakeups.suspend_stats()
    }

    fn suspend_fail_count(&mut self) -> Option<u64> {
        self.wakeups.fail_count()
    }
}

/// The steps of the kernel protocol at which [`SimPower`] runs hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimStep {
    /// Just before the count is read.
    ReadCount,
    /// Just before the written count is checked.
    WriteCount,
    /// During the state write, before the kernel decides.
    EnterState,
    /// During the state write, after the kernel suspended and before it
    /// resumes (the moment a wakeup source wakes the machine).
    Asleep,
}

type Hook = Box<dyn FnMut(&mut SimKernel) + Send>;

/// The state of a [`SimPower`] kernel, shared with the test that drives it.
pub struct SimKernel {
    /// Wakeup events so far.
    pub count: u64,
    /// The count was written back and accepted; events now abort suspend.
    pub armed: bool,
    /// An event arrived while armed.
    pub pending: bool,
    /// `wakeup_count` reads fail (missing file).
    pub count_missing: bool,
    /// The state write fails with this errno.
    pub fail_state: Option<i32>,
    /// The states entered, in order.
    pub entered: Vec<SleepState>,
    /// Every call, in order (for assertions on ordering).
    pub calls: Vec<SimStep>,
    /// The wakeup sources by name: `(event_count, wakeup_count)`; `None`
    /// is a kernel without `class/wakeup`.
    pub sources: Option<std::collections::BTreeMap<String, (u64, u64)>>,
    /// `power/pm_wakeup_irq`.
    pub wakeup_irq: Option<u32>,
    /// `power/suspend_stats`; its `success` and `fail` counters follow the
    /// state writes.
    pub stats: Option<SuspendStats>,
    /// Inside the state write, between [`SimStep::EnterState`] and the
    /// return: the machine is asleep.
    pub asleep: bool,
    hooks: Vec<(SimStep, Hook)>,
}

impl fmt::Debug for SimKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimKernel")
            .field("count", &self.count)
            .field("armed", &self.armed)
            .field("pending", &self.pending)
            .field("entered", &self.entered)
            .finish_non_exhaustive()
    }
}

impl SimKernel {
    /// A wakeup event: the count goes up; an armed suspend will be aborted.
    pub fn wakeup_event(&mut self) {
        self.count += 1;
        if self.armed {
            self.pending = true;
        }
    }

    /// A wakeup event from source `name` (created if new): its
    /// `event_count` goes up, and its `wakeup_count` too when the event
    /// aborts or ends a suspend (armed, or asleep), as in the kernel.
    pub fn source_event(&mut self, name: &str) {
        let counts_wakeup = self.armed || self.asleep;
        let sources = self.sources.get_or_insert_with(Default::default);
        let entry = sources.entry(name.to_string()).or_insert((0, 0));
        entry.0 += 1;
        if counts_wakeup {
            entry.1 += 1;
        }
        if !self.asleep {
            self.wakeup_event();
        }
    }

    fn stat_bump(&mut self, name: &str) {
        if let Some(stats) = &mut self.stats {
            match stats.counters.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => *v += 1,
                None => stats.counters.push((name.to_string(), 1)),
            }
        }
    }

    fn run_hooks(&mut self, step: SimStep) {
        self.calls.push(step);
        let mut hooks = std::mem::take(&mut self.hooks);
        for (at, hook) in hooks.iter_mut() {
            if *at == step {
                hook(self);
            }
        }
        hooks.append(&mut self.hooks);
        self.hooks = hooks;
    }
}

/// A simulated kernel: a shared handle, clone it to drive it from a test.
#[derive(Debug, Clone)]
pub struct SimPower {
    kernel: Arc<Mutex<SimKernel>>,
}

impl Default for SimPower {
    fn default() -> Self {
        SimPower::new()
    }
}

impl SimPower {
    /// A kernel with a wakeup count of 0 and no hooks.
    pub fn new() -> SimPower {
        SimPower {
            kernel: Arc::new(Mutex::new(SimKernel {
                count: 0,
                armed: false,
                pending: false,
                count_missing: false,
                fail_state: None,
                entered: Vec::new(),
                calls: Vec::new(),
                sources: Some(Default::default()),
                wakeup_irq: None,
                stats: Some(SuspendStats {
                    counters: vec![("success".into(), 0), ("fail".into(), 0)],
                    ..SuspendStats::default()
                }),
                asleep: false,
                hooks: Vec::new(),
            })),
        }
    }

    /// Locks the kernel's state for inspection or change.
    pub fn kernel(&self) -> MutexGuard<'_, SimKernel> {
        // A panicking test thread poisons the lock; the data is still fine.
        self.kernel.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `hook` every time the loop reaches `step`.
    pub fn on(&self, step: SimStep, hook: impl FnMut(&mut SimKernel) + Send + 'static) {
        self.kernel().hooks.push((step, Box::new(hook)));
    }

    /// Injects a wakeup event now.
    pub fn wakeup_event(&self) {
        self.kernel().wakeup_event();
    }

    /// Returns the states entered so far.
    pub fn entered(&self) -> Vec<SleepState> {
        self.kernel().entered.clone()
    }

    fn fail(&self, what: &str, errno: i32) -> PowerError {
        PowerError {
            path: PathBuf::from(format!("sim/power/{what}")),
            source: io::Error::from_raw_os_error(errno),
        }
    }
}

impl Power for SimPower {
    fn read_wakeup_count(&mut self) -> Result<u64, PowerError> {
        let mut k = self.kernel();
        k.run_hooks(SimStep::ReadCount);
        if k.count_missing {
            drop(k);
            return Err(self.fail("wakeup_count", libc::ENOENT));
        }
        Ok(k.count)
    }

    fn write_wakeup_count(&mut self, count: u64) -> Result<CountCheck, PowerError> {
        let mut k = self.kernel();
        k.run_hooks(SimStep::WriteCount);
        if count != k.count {
            return Ok(CountCheck::Rejected);
        }
        k.armed = true;
        k.pending = false;
        Ok(CountCheck::Accepted)
    }

    fn enter_state(&mut self, state: SleepState) -> Result<(), PowerError> {
        let mut k = self.kernel();
        k.run_hooks(SimStep::EnterState);
        let armed = std::mem::replace(&mut k.armed, false);
        let failure = if armed && std::mem::replace(&mut k.pending, false) {
            Some(libc::EBUSY)
        } else {
            k.fail_state
        };
        match failure {
            Some(errno) => {
                k.stat_bump("fail");
                k.stat_bump("failed_freeze");
                if let Some(stats) = &mut k.stats {
                    stats.last_failed_errno = Some(-errno);
                    stats.last_failed_step = Some("freeze".into());
                }
                drop(k);
                Err(self.fail("state", errno))
            }
            None => {
                k.asleep = true;
                k.run_hooks(SimStep::Asleep);
                k.asleep = false;
                k.stat_bump("success");
                k.entered.push(state);
                Ok(())
            }
        }
    }

    fn wakeup_sources(&mut self) -> Option<Snapshot> {
        let counts = self.kernel().sources.clone()?;
        Some(Snapshot { counts })
    }

    fn source_name(&mut self, key: &str) -> String {
        key.to_string()
    }

    fn wakeup_irq(&mut self) -> Option<u32> {
        self.kernel().wakeup_irq
    }

    fn last_resume_reason(&mut self) -> Option<String> {
        None
    }

    fn suspend_stats(&mut self) -> Option<SuspendStats> {
        self.kernel().stats.clone()
    }

    fn suspend_fail_count(&mut self) -> Option<u64> {
        self.kernel().stats.as_ref()?.counter("fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_states_parse_and_print() {
        for s in ["mem", "freeze", "standby", "disk"] {
            assert_eq!(s.parse::<SleepState>().unwrap().to_string(), s);
        }
        assert!("hibernate".parse::<SleepState>().is_err());
    }

    #[test]
    fn sim_rejects_a_stale_count_and_aborts_on_an_armed_event() {
        let mut p = SimPower::new();
        let n = p.read_wakeup_count().unwrap();
        p.wakeup_event();
        assert_eq!(p.write_wakeup_count(n).unwrap(), CountCheck::Rejected);
        let n = p.read_wakeup_count().unwrap();
        assert_eq!(p.write_wakeup_count(n).unwrap(), CountCheck::Accepted);
        p.wakeup_event();
        assert_eq!(
            p.enter_state(SleepState::Mem).unwrap_err().errno(),
            libc::EBUSY
        );
        let n = p.read_wakeup_count().unwrap();
        p.write_wakeup_count(n).unwrap();
        p.enter_state(SleepState::Mem).unwrap();
        assert_eq!(p.entered(), vec![SleepState::Mem]);
    }

    #[test]
    fn hooks_run_at_their_step() {
        let mut p = SimPower::new();
        p.on(SimStep::EnterState, |k| k.wakeup_event());
        let n = p.read_wakeup_count().unwrap();
        p.write_wakeup_count(n).unwrap();
        assert!(p.enter_state(SleepState::Freeze).is_err());
        assert_eq!(
            p.kernel().calls,
            vec![SimStep::ReadCount, SimStep::WriteCount, SimStep::EnterState]
        );
    }

    #[test]
    fn sim_sources_move_at_any_step_and_stats_follow() {
        let mut p = SimPower::new();
        p.on(SimStep::Asleep, |k| k.source_event("rtc0"));
        let n = p.read_wakeup_count().unwrap();
        p.write_wakeup_count(n).unwrap();
        let before = p.wakeup_sources().unwrap();
        p.enter_state(SleepState::Mem).unwrap();
        let moved = p.wakeup_sources().unwrap().moved_since(&before);
        assert_eq!(moved.len(), 1);
        assert_eq!((moved[0].key.as_str(), moved[0].wakeups), ("rtc0", 1));
        assert_eq!(p.suspend_stats().unwrap().counter("success"), Some(1));
        // Before the count check, an event is counted but is no wakeup.
        p.kernel().source_event("PNP0C0C:00");
        assert_eq!(p.kernel().sources.as_ref().unwrap()["PNP0C0C:00"], (1, 0));
        assert_eq!(p.write_wakeup_count(n).unwrap(), CountCheck::Rejected);
    }

    #[test]
    fn sysfs_power_on_a_fake_tree() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("power")).unwrap();
        std::fs::write(t.path().join("power/wakeup_count"), "17\n").unwrap();
        std::fs::write(t.path().join("power/state"), "").unwrap();
        let mut p = SysfsPower::new(t.path());
        assert_eq!(p.read_wakeup_count().unwrap(), 17);
        assert_eq!(p.write_wakeup_count(17).unwrap(), CountCheck::Accepted);
        p.enter_state(SleepState::Freeze).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("power/state")).unwrap(),
            "freeze\n"
        );
        std::fs::remove_file(t.path().join("power/wakeup_count")).unwrap();
        assert_eq!(p.read_wakeup_count().unwrap_err().errno(), libc::ENOENT);
    }
}
