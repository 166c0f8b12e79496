//! The bookkeeping: from logind's inhibitors to a shared lock on
//! `RUN/disabled`, and the status file that names them.
//!
//! The lock is held while at least one inhibitor blocks sleep (mode
//! `block`, `sleep` in `what`) and logind is not running a suspend of its
//! own. The status file is written *before* the lock is taken and after it
//! is released, so whoever finds lsus-logind among the holders of
//! `disabled` finds the inhibitors it stands for in the file.

use std::fs::File;

use lsus_proto::logind::{Inhibitor, LogindStatus, LSUS_LOGIND_STATUS};
use lsus_proto::rundir::{Access, RunDir, DISABLED};
use lsus_sys::lock::{lock_retrying, unlock, LockKind};

/// Mode of the status file: the run directory's group may read it.
const STATUS_MODE: u32 = 0o644;

/// What lsus-logind knows and holds.
#[derive(Debug)]
pub struct Hold {
    run: RunDir,
    status: LogindStatus,
    /// `disabled`, locked shared, while we hold it.
    lock: Option<File>,
    /// Set once the daemon is stopping: nothing is written any more.
    stopped: bool,
    /// Whether `RUN/lsus-logind.status` was made a link to the published
    /// file (at the first write).
    linked: bool,
}

impl Hold {
    /// Starts with no inhibitors known and no lock held.
    pub fn new(run: RunDir) -> Hold {
        Hold {
            run,
            status: LogindStatus::default(),
            lock: None,
            stopped: false,
            linked: false,
        }
    }

    /// logind listed `inhibitors`.
    pub fn inhibitors(&mut self, inhibitors: Vec<Inhibitor>) {
        let before: Vec<String> = self.status.blocking().map(Inhibitor::name).collect();
        self.status.connected = true;
        self.status.inhibitors = inhibitors;
        let after: Vec<String> = self.status.blocking().map(Inhibitor::name).collect();
        if before != after {
            if after.is_empty() {
                tracing::info!("no logind sleep inhibitor blocks any more");
            } else {
                tracing::info!("logind sleep inhibitors: {}", after.join(", "));
            }
        }
        self.apply();
    }

    /// The bus or logind went away (`false`) or came back (`true`). While
    /// it is away the last known inhibitors stay in force: an inhibitor
    /// that was there when logind vanished (a video call, say) is still
    /// wanted, and logind restores its inhibitors when it restarts.
    pub fn connected(&mut self, up: bool) {
        if !up && self.status.connected {
            let n = self.status.blocking().count();
            tracing::warn!(
                "logind is not reachable; keeping the last known state ({n} blocking \
                 inhibitor{}) until it is",
                if n == 1 { "" } else { "s" }
            );
        }
        self.status.connected = up;
        if !up {
            // A logind that comes back is not in the middle of a suspend.
            self.status.sleeping = false;
        }
        self.apply();
    }

    /// logind announced (`true`) or ended (`false`) a suspend of its own.
    /// logind has already decided: either no block inhibitor was there, or
    /// it chose to override them (a lid switch, `systemctl suspend -i`).
    /// Its suspend goes through lsusd (the drop-in runs `request-suspend`),
    /// which must not be refused by our lock for an inhibitor that logind
    /// itself overrode; so the lock goes until the suspend ends.
    pub fn sleeping(&mut self, sleeping: bool) {
        if sleeping != self.status.sleeping {
            if sleeping {
                tracing::info!(
                    "logind is suspending (PrepareForSleep true): letting go of disabled"
                );
            } else {
                tracing::info!("logind's suspend ended (PrepareForSleep false)");
            }
        }
        self.status.sleeping = sleeping;
        self.apply();
    }

    /// Stops: the lock goes with the process, the status file now.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.lock = None;
        if let Err(e) = self.run.unpublish(LSUS_LOGIND_STATUS) {
            tracing::warn!("cannot remove the status file: {e}");
        }
    }

    /// Takes or releases the lock as the state says, and publishes.
    fn apply(&mut self) {
        if self.stopped {
            return;
        }
        let want = !self.status.sleeping && self.status.blocking().next().is_some();
        match (want, self.lock.is_some()) {
            (true, false) => {
                self.status.holding = true;
                self.publish();
                match self.take() {
                    Ok(file) => {
                        self.lock = Some(file);
                        tracing::info!("holding a shared lock on disabled: lsusd will not suspend");
                    }
                    Err(e) => {
                        tracing::error!("cannot block lsusd: {e}");
                        self.status.holding = false;
                        self.publish();
                    }
                }
            }
            (false, true) => {
                if let Some(file) = self.lock.take() {
                    if let Err(e) = unlock(&file) {
                        // Closing the file drops the lock all the same.
                        tracing::warn!("cannot unlock disabled ({e}); closing it");
                    }
                }
                self.status.holding = false;
                tracing::info!("released disabled");
                self.publish();
            }
            _ => self.publish(),
        }
    }

    /// Opens `disabled` afresh (lsusd recreates it when it was replaced,
    /// and a lock on a file that is no longer there blocks nobody) and
    /// takes a shared lock on it; waits while lsusd holds it exclusively
    /// (it is writing the sleep state: the machine is going down).
    fn take(&self) -> Result<File, String> {
        let file = self
            .run
            .open_file(DISABLED, Access::READ, None, false)
            .map_err(|e| format!("{e} (is lsusd running?)"))?;
        let st = file
            .metadata()
            .map_err(|e| format!("cannot stat disabled: {e}"))?;
        if !st.is_file() {
            return Err("disabled is not a regular file".into());
        }
        lock_retrying(&file, LockKind::Shared).map_err(|e| format!("cannot lock disabled: {e}"))?;
        Ok(file)
    }

    /// Writes the status file if anything changed; a failure is logged and
    /// never fatal.
    fn publish(&mut self) {
        let text = self.status.to_string();
        if let Err(e) = self
            .run
            .publish(LSUS_LOGIND_STATUS, text.as_bytes(), STATUS_MODE)
        {
            tracing::warn!("cannot publish the status file: {e}");
            return;
        }
        // RUN/lsus-logind.status, for the readers of the old path.
        if !self.linked {
            self.linked = true;
            match self.run.link_published(LSUS_LOGIND_STATUS, STATUS_MODE) {
                Ok(Some(planted)) => tracing::warn!(
                    "{}: found {planted}; made it a link to the status file",
                    self.run.join(LSUS_LOGIND_STATUS).display()
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!("{e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsus_sys::lock::try_lock;

    fn inhibitor(what: &str, mode: &str, who: &str) -> Inhibitor {
        Inhibitor {
            what: what.into(),
            who: who.into(),
            why: "because".into(),
            mode: mode.into(),
            uid: 1000,
            pid: 42,
        }
    }

    struct Fixture {
        _t: tempfile::TempDir,
        dir: std::path::PathBuf,
        hold: Hold,
    }

    fn fixture() -> Fixture {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("run");
        let run = RunDir::create(&dir, 0o770).unwrap();
        std::fs::write(dir.join(DISABLED), "\n").unwrap();
        Fixture {
            _t: t,
            dir,
            hold: Hold::new(run),
        }
    }

    impl Fixture {
        /// Is `disabled` blocked (lsusd's own test)?
        fn blocked(&self) -> bool {
            let f = File::open(self.dir.join(DISABLED)).unwrap();
            let free = try_lock(&f, LockKind::Exclusive).unwrap();
            !free
        }

        fn published(&self) -> LogindStatus {
            std::fs::read_to_string(self.dir.join(LSUS_LOGIND_STATUS))
                .unwrap()
                .parse()
                .unwrap()
        }
    }

    #[test]
    fn holds_disabled_while_a_block_sleep_inhibitor_exists() {
        let mut f = fixture();
        f.hold.inhibitors(vec![
            inhibitor("sleep", "delay", "a"),
            inhibitor("shutdown", "block", "b"),
            inhibitor("idle:handle-lid-switch", "block", "c"),
        ]);
        assert!(!f.blocked(), "no inhibitor blocks sleep");
        assert!(!f.published().holding);
        assert_eq!(f.published().inhibitors.len(), 3);

        f.hold.inhibitors(vec![
            inhibitor("sleep", "delay", "a"),
            inhibitor("shutdown:sleep", "block", "video"),
        ]);
        assert!(f.blocked());
        let p = f.published();
        assert!(p.holding && p.connected);
        assert_eq!(p.blocking().next().unwrap().who, "video");

        // A second one, then the first goes: still held.
        f.hold.inhibitors(vec![
            inhibitor("shutdown:sleep", "block", "video"),
            inhibitor("sleep", "block", "call"),
        ]);
        f.hold.inhibitors(vec![inhibitor("sleep", "block", "call")]);
        assert!(f.blocked());
        // The last goes.
        f.hold.inhibitors(vec![inhibitor("sleep", "delay", "a")]);
        assert!(!f.blocked());
        assert!(!f.published().holding);
    }

    #[test]
    fn lets_go_while_logind_suspends_and_keeps_state_while_logind_is_away() {
        let mut f = fixture();
        f.hold
            .inhibitors(vec![inhibitor("sleep", "block", "video")]);
        assert!(f.blocked());
        f.hold.sleeping(true);
        assert!(!f.blocked(), "logind's own suspend must not be refused");
        assert!(f.published().sleeping);
        f.hold.sleeping(false);
        assert!(f.blocked());

        f.hold.connected(false);
        assert!(f.blocked(), "the last known inhibitors stay in force");
        assert!(!f.published().connected);
        f.hold.inhibitors(Vec::new());
        assert!(!f.blocked());
        assert!(f.published().connected);
    }

    #[test]
    fn a_recreated_disabled_is_locked_afresh_and_stop_removes_the_status() {
        let mut f = fixture();
        std::fs::remove_file(f.dir.join(DISABLED)).unwrap();
        f.hold
            .inhibitors(vec![inhibitor("sleep", "block", "video")]);
        assert!(!f.published().holding, "no disabled: nothing to hold");
        std::fs::write(f.dir.join(DISABLED), "\n").unwrap();
        f.hold
            .inhibitors(vec![inhibitor("sleep", "block", "video2")]);
        assert!(f.blocked());
        f.hold.stop();
        assert!(!f.blocked());
        assert!(!f.dir.join(LSUS_LOGIND_STATUS).exists());
        f.hold.inhibitors(Vec::new());
        assert!(
            !f.dir.join(LSUS_LOGIND_STATUS).exists(),
            "nothing after stop"
        );
    }
}
