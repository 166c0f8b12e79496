//! Before suspend: program the RTC, or keep the machine awake.
//!
//! doc/protocol.md §4: with no connections wakealarmd is ready at once; if the
//! earliest time is more than [`RTC_MARGIN`] seconds away and no connection
//! blocks, it programs the RTC and is ready; otherwise it takes a shared
//! lock on `disabled` before it is ready, and keeps it until no connection
//! blocks any more (and no time is due within the margin).

use std::path::{Path, PathBuf};

use libsus::Blocker;
use lsus_sys::lock::{self, LockKind};

/// An alarm closer than this (seconds) keeps the machine awake instead of
/// being left to the RTC: suspending and resuming takes time too.
pub const RTC_MARGIN: u64 = 4;

/// Why the machine must stay awake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// This many connections block (no time written yet, or `Now` sent).
    Blocking(usize),
    /// The earliest time is within [`RTC_MARGIN`] seconds.
    Soon(u64),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Blocking(1) => write!(f, "a connection blocks suspend"),
            Reason::Blocking(n) => write!(f, "{n} connections block suspend"),
            Reason::Soon(t) => write!(f, "the alarm at {t} is due within {RTC_MARGIN} s"),
        }
    }
}

/// What to do when suspend is imminent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to wake for: ready at once.
    Ready,
    /// Program the RTC for this time, then be ready.
    ProgramRtc(u64),
    /// Take the lock on `disabled`, then be ready.
    StayAwake(Reason),
}

/// Returns why the machine must stay awake at `now`, if it must.
pub fn stay_awake(now: u64, blocking: usize, earliest: Option<u64>) -> Option<Reason> {
    if blocking > 0 {
        return Some(Reason::Blocking(blocking));
    }
    match earliest {
        Some(t) if t <= now.saturating_add(RTC_MARGIN) => Some(Reason::Soon(t)),
        _ => None,
    }
}

/// Decides what to do before suspend, at `now` (seconds since the epoch).
pub fn decide(now: u64, connections: usize, blocking: usize, earliest: Option<u64>) -> Decision {
    if connections == 0 {
        return Decision::Ready;
    }
    if let Some(reason) = stay_awake(now, blocking, earliest) {
        return Decision::StayAwake(reason);
    }
    match earliest {
        Some(t) => Decision::ProgramRtc(t),
        None => Decision::Ready,
    }
}

/// The shared lock on `disabled` that keeps the machine awake.
///
/// The lock is taken on the [`Blocker`]'s own descriptor rather than through
/// a guard, because it must live across many turns of the event loop;
/// dropping the `Blocker` closes the file, which releases it.
#[derive(Debug)]
pub struct AwakeHold {
    run_dir: PathBuf,
    blocker: Option<Blocker>,
}

impl AwakeHold {
    /// Returns a hold on `run_dir`'s `disabled`, not taken.
    pub fn new(run_dir: &Path) -> AwakeHold {
        AwakeHold {
            run_dir: run_dir.to_path_buf(),
            blocker: None,
        }
    }

    /// Takes the lock. Returns `Ok(false)` if it was already held.
    ///
    /// `disabled` is opened afresh each time, so a restarted lsusd's new
    /// file is the one locked.
    pub fn take(&mut self) -> libsus::Result<bool> {
        if self.blocker.is_some() {
            return Ok(false);
        }
        let blocker = Blocker::open_in(&self.run_dir)?;
        // lsusd holds `disabled` exclusively only around the final write to
        // the state file, never while it waits for its watchers, so this
        // does not wait when called before `ready`.
        lock::lock_retrying(&blocker, LockKind::Shared).map_err(|source| libsus::Error::Io {
            what: "cannot lock disabled".into(),
            source,
        })?;
        self.blocker = Some(blocker);
        Ok(true)
    }

    /// Releases the lock. Returns true if it was held.
    pub fn release(&mut self) -> bool {
        self.blocker.take().is_some()
    }

    /// Returns true if and only if the lock is held.
    pub fn is_held(&self) -> bool {
        self.blocker.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_connections_means_ready() {
        assert_eq!(decide(100, 0, 0, None), Decision::Ready);
    }

    #[test]
    fn far_alarm_programs_the_rtc_near_one_keeps_awake() {
        assert_eq!(decide(100, 1, 0, Some(105)), Decision::ProgramRtc(105));
        assert_eq!(
            decide(100, 1, 0, Some(104)),
            Decision::StayAwake(Reason::Soon(104))
        );
        assert_eq!(
            decide(100, 1, 0, Some(90)),
            Decision::StayAwake(Reason::Soon(90))
        );
    }

    #[test]
    fn a_blocking_connection_keeps_awake_whatever_the_times() {
        assert_eq!(
            decide(100, 2, 1, Some(1000)),
            Decision::StayAwake(Reason::Blocking(1))
        );
        assert_eq!(
            decide(100, 1, 1, None),
            Decision::StayAwake(Reason::Blocking(1))
        );
    }

    #[test]
    fn hold_takes_and_releases_a_shared_lock() {
        let t = tempfile::tempdir().unwrap();
        let disabled = t.path().join("disabled");
        std::fs::write(&disabled, b"\0").unwrap();
        let probe = std::fs::File::open(&disabled).unwrap();
        let mut hold = AwakeHold::new(t.path());
        assert!(hold.take().unwrap());
        assert!(!hold.take().unwrap());
        assert!(hold.is_held());
        assert!(!lock::try_lock(&probe, LockKind::Exclusive).unwrap());
        assert!(hold.release());
        assert!(!hold.release());
        assert!(lock::try_lock(&probe, LockKind::Exclusive).unwrap());
    }

    #[test]
    fn hold_without_lsusd_fails_clearly() {
        let t = tempfile::tempdir().unwrap();
        let mut hold = AwakeHold::new(&t.path().join("missing"));
        assert!(matches!(hold.take(), Err(libsus::Error::NotRunning(_))));
        assert!(!hold.is_held());
    }
}
