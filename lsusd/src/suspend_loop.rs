//! The suspend loop of doc/protocol.md §2, top to bottom.
//!
//! 1. remove any `request` (at start-up and after each attempt);
//! 2. wait (inotify) until `request` or a held `immediate` exists;
//! 3. if `disabled` is locked, record "blocked" at once (the requester's
//!    answer), wait for the blockers, drop the request, go to 1;
//! 4. read `wakeup_count`;
//! 5. note the abort marker (reads of `disabled` from here on abort);
//! 6. tell the watchers, wait until they are ready;
//! 7. suspend if `disabled` is free, the trigger stands, nobody read
//!    `disabled`, and the kernel accepts the count — holding `disabled`
//!    exclusively around the write to `power/state`;
//! 8. release `disabled`, tell the watchers it is over, record the outcome.
//!
//! Around steps 4 and 7 the loop samples what the kernel says about
//! wake-ups (`crate::reasons`), and while it waits for blockers it times
//! them (`crate::held`): the record's optional details.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant, SystemTime};

use inotify::{EventMask, WatchMask};
use lsus_daemon::clock::boot_time;
use lsus_proto::logind;
use lsus_proto::outcome::{Details, Held, Named, Outcome, Record};
use lsus_proto::rundir::{
    is_name, Access, RunDir, RunDirError, DISABLED, OUTCOME, RECORDS, REQUEST,
};
use lsus_sys::dirwatch::DirWatch;
use lsus_sys::lock::{self, LockKind};

/// Mode of the outcome record: the run directory's group reads it.
const OUTCOME_MODE: u32 = 0o644;

/// Start-up (doc/protocol.md §1.5): makes `RUN/records`, and `RUN/outcome`
/// a link to `records/outcome` for the readers of the old path, once (an
/// `outcome` file an older lsusd left is published there first). What
/// else stood at either name is moved aside and logged (§1.12).
fn publish_outcome_here(run: &RunDir) -> Result<(), LoopError> {
    match run.prepare_records() {
        Ok(None) => {}
        Ok(Some(planted)) => tracing::warn!(
            "{}: found {planted}; created a directory",
            run.join(RECORDS).display()
        ),
        // Not fatal: the records are then written in RUN itself, as
        // before (and wake its watchers).
        Err(e) => {
            tracing::warn!("{e}; the outcome record is written in the run directory itself");
            return Ok(());
        }
    }
    if let Some(planted) = run.link_published(OUTCOME, OUTCOME_MODE)? {
        tracing::warn!(
            "{}: found {planted}; made it a link to {RECORDS}/{OUTCOME}",
            run.join(OUTCOME).display()
        );
    }
    Ok(())
}
use lsus_sys::power::{CountCheck, Power, SleepState};
use lsus_sys::proclocks;

use crate::backoff::Backoff;
use crate::force::ForceDir;
use crate::held::HeldOff;
use crate::metrics::Metrics;
use crate::reasons::{self, Before};
use crate::trigger::{self, Look, Trigger};
use crate::watchers::{self, Found, NotifyError};

/// How lsusd behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to write to `power/state`.
    pub state: SleepState,
    /// Do everything but the write to `power/state`.
    pub dry_run: bool,
    /// With `dry_run`, how long the "suspend" lasts (holding `disabled`
    /// as a real one does), so immediate mode cannot spin.
    pub dry_run_sleep: Duration,
    /// Kernel files (relative to the sysfs root) missing at start-up;
    /// every dry-run outcome repeats them.
    pub missing: Vec<String>,
    /// First pause after a failed immediate-mode attempt.
    pub backoff_initial: Duration,
    /// Longest pause.
    pub backoff_max: Duration,
    /// How long a young unlocked `immediate` is given to get locked.
    pub immediate_grace: Duration,
    /// Name the watchers that are not ready at this interval (needs the
    /// SIGALRM handler of `lsus_daemon::signals`).
    pub nag_watchers: Option<Duration>,
    /// `--watcher-timeout`: go on without the watchers not ready after
    /// this long, naming them (`None`: wait as long as it takes). Needs
    /// the SIGALRM handler too.
    pub watcher_timeout: Option<Duration>,
    /// Take forced requests in `RUN/force`, a directory of this group
    /// (doc/protocol.md §12); `None`: none (the directory is not made).
    /// Needs the SIGALRM handler too (a forced request ends the wait for
    /// blockers by interrupting its helper thread).
    pub force_gid: Option<u32>,
    /// Write the Prometheus counters here after each attempt.
    pub metrics_file: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state: SleepState::Mem,
            dry_run: false,
            dry_run_sleep: Duration::ZERO,
            missing: Vec::new(),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            immediate_grace: Duration::from_secs(1),
            nag_watchers: None,
            watcher_timeout: None,
            force_gid: None,
            metrics_file: None,
        }
    }
}

/// A fatal error of the loop.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The run directory failed us.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// Notifying the watchers failed.
    #[error(transparent)]
    Notify(#[from] NotifyError),
    /// Waiting for changes failed.
    #[error("cannot watch the run directory: {0}")]
    Watch(#[source] std::io::Error),
    /// Locking `disabled` failed.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What lsusd watches in `RUN/force`: a request arriving.
const FORCE_EVENTS: WatchMask = WatchMask::CREATE.union(WatchMask::MOVED_TO);

/// Stops the blockers helper: sets its `cancel` flag, interrupts it with
/// SIGALRM until it says it is done through `done` (a signal that comes
/// just before it enters `flock` is lost, so it is sent again every
/// 20 ms), and joins it. It can then never drop lsusd's lock later.
fn stop_helper(
    cancel: &std::sync::atomic::AtomicBool,
    helper: std::thread::JoinHandle<()>,
    done: &std::os::fd::OwnedFd,
) {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::unix::thread::JoinHandleExt;
    cancel.store(true, std::sync::atomic::Ordering::SeqCst);
    loop {
        if helper.is_finished() {
            break;
        }
        let _ = nix::sys::pthread::pthread_kill(
            helper.as_pthread_t(),
            nix::sys::signal::Signal::SIGALRM,
        );
        let mut fds = [PollFd::new(done.as_fd(), PollFlags::POLLIN)];
        if let Ok(n) = nix::poll::poll(&mut fds, PollTimeout::from(20u16)) {
            if n > 0 {
                break;
            }
        }
    }
    let _ = helper.join();
}

/// Adds the holders `pids` to `overrode`, each once, named now.
fn add_overrode(overrode: &mut Vec<Named>, pids: &[u32]) {
    for &pid in pids {
        if !overrode.iter().any(|n| n.pid == pid) {
            overrode.push(Named {
                pid,
                command: watchers::comm(pid),
            });
        }
    }
}

/// Mode of `disabled` (the original's 0640: the group may block).
const DISABLED_MODE: u32 = 0o640;

/// The suspend loop and everything it holds.
pub struct Suspender<P: Power> {
    run: RunDir,
    power: P,
    cfg: Config,
    events: DirWatch,
    disabled: File,
    backoff: Backoff,
    seq: u64,
    count_unknown_logged: bool,
    stop: Stop,
    /// Blockers being timed for `held=`.
    held: HeldOff,
    /// Boot time of the last resume (of this lsusd), for `awake=`.
    last_resume: Option<Duration>,
    /// `--metrics-file`.
    metrics: Option<Metrics>,
    /// `RUN/force`, when forced requests are taken.
    force: Option<ForceDir>,
    /// `RUN/until`, the timed blocks' declarations (§13).
    until: Option<RunDir>,
    /// The wait for blockers ended for a request made after the timed
    /// blocks expired: it is not dropped.
    keep_request: bool,
}

/// How the loop learns that it should end.
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    /// Returns true once the daemon should stop; asked after every
    /// interrupted wait.
    pub requested: fn() -> bool,
    /// Becomes readable when a stop is requested (so an idle wait ends).
    pub fd: Option<std::os::fd::BorrowedFd<'static>>,
}

impl Stop {
    /// Never stops (tests).
    #[cfg(test)]
    pub const NEVER: Stop = Stop {
        requested: || false,
        fd: None,
    };
}

/// What step 7 needs of the attempt: its trigger, the wakeup count read
/// at step 4 (`None`: unknown) and the wakeup sources sampled then.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    trigger: &'a Trigger,
    count: Option<u64>,
    at_count: &'a Before,
}

/// What the directory watch saw.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    disabled_read: bool,
    overflow: bool,
}

impl<P: Power> Suspender<P> {
    /// Opens the run directory's files and runs one notification cycle so
    /// that an empty `watching` exists (doc/protocol.md §2 start-up). `stop`
    /// is asked after every interrupted wait; when it returns true the
    /// loop ends.
    pub fn start(
        run: RunDir,
        power: P,
        cfg: Config,
        stop: Stop,
    ) -> Result<Suspender<P>, LoopError> {
        let events = DirWatch::new(
            run.path(),
            WatchMask::CREATE | WatchMask::MOVED_TO | WatchMask::ACCESS | WatchMask::ATTRIB,
        )
        .map_err(LoopError::Watch)?;
        let disabled = open_disabled(&run)?;
        publish_outcome_here(&run)?;
        let backoff = Backoff::new(cfg.backoff_initial, cfg.backoff_max);
        // `seq` goes on from the last record (of a previous lsusd, too), so
        // a requester that read the record before a restart sees a new one.
        let seq = crate::history::last_seq(&run);
        let metrics = cfg.metrics_file.clone().map(Metrics::new);
        let mut events = events;
        let force = match cfg.force_gid {
            Some(gid) => {
                let force = ForceDir::setup(&run, gid)?;
                events
                    .add(force.path(), FORCE_EVENTS)
                    .map_err(LoopError::Watch)?;
                Some(force)
            }
            None => None,
        };
        let until = match crate::timed::setup(&run) {
            Ok(dir) => Some(dir),
            Err(e) => {
                tracing::warn!("{e}; timed blocks are not gone over at their deadline");
                None
            }
        };
        let mut s = Suspender {
            run,
            power,
            cfg,
            events,
            disabled,
            backoff,
            seq,
            count_unknown_logged: false,
            stop,
            held: HeldOff::default(),
            last_resume: None,
            metrics,
            force,
            until,
            keep_request: false,
        };
        if let Some(m) = &mut s.metrics {
            m.write();
        }
        match watchers::take_over(&s.run)? {
            Found::Fresh => tracing::debug!("created an empty watching"),
            Found::Idle => {
                tracing::debug!("found no attempt in progress; the watchers stay registered")
            }
            Found::DeadAttempt { not_ready } => {
                // Recorded (the requester of that attempt, if still
                // waiting, must not count it as a suspend).
                let record = s.record(Outcome::Withdrawn, Details::default())?;
                tracing::warn!(
                    "found an attempt a previous lsusd left in progress (watchers not ready: {}); \
                     ended it at once without waiting for them, recorded as seq {} withdrawn",
                    if not_ready.is_empty() {
                        "none".to_string()
                    } else {
                        not_ready.join(", ")
                    },
                    record.seq
                );
            }
        }
        // 1. A request from before we started is never honoured.
        s.remove_request()?;
        Ok(s)
    }

    /// Returns the run directory.
    pub fn run_dir(&self) -> &RunDir {
        &self.run
    }

    /// Runs the loop until `stop` says so.
    pub fn run(&mut self) -> Result<(), LoopError> {
        while self.cycle()?.is_some() {}
        Ok(())
    }

    /// Runs steps 2 to 8 once, then step 1 of the next round (so step 1
    /// runs at start-up and after every attempt). Returns the record of
    /// the attempt, or `None` when `stop` ended the wait.
    pub fn cycle(&mut self) -> Result<Option<Record>, LoopError> {
        // 2. Wait for a reason to try.
        let Some(trigger) = self.wait_for_trigger()? else {
            return Ok(None);
        };

        // 3. Blocked? Answer at once, wait for the blockers, then drop the
        // request. A forced request goes over the block (§12).
        self.ensure_disabled()?;
        let mut details = Details::default();
        if let Trigger::Forced(forced) = &trigger {
            details.forced = true;
            details.why = Some(forced.why.clone());
            details.by = Some(forced.uid);
        }
        let mut blocked = self.blocked()?;
        if let (Some(pids), false) = (&blocked, details.forced) {
            if let Some(timed) = self.expired_timed(pids) {
                self.over_expired(&timed, &mut details);
                blocked = None;
            }
        }
        if let (Some(pids), true) = (&blocked, details.forced) {
            tracing::warn!(
                "forced request by UID {} ({}): going over the block of {}",
                details.by.unwrap_or(0),
                details.why.as_deref().unwrap_or("?"),
                describe_blockers(&self.run, pids, &[])
            );
            add_overrode(&mut details.overrode, pids);
        } else if let Some(pids) = blocked {
            let details = self.blocked_details(&pids);
            tracing::info!(
                "suspend ({}) blocked by {}",
                trigger.word(),
                describe_blockers(&self.run, &pids, &details.locker)
            );
            self.held.saw(&pids, boot_time(), watchers::comm);
            // The requester's answer comes now, not when the blockers leave.
            let record = self.record(Outcome::Blocked { pids }, details)?;
            let gone = self.wait_for_blockers(record.seq)?;
            // 1. (next round) The request is dropped, not kept pending;
            // except one made after the timed blocks expired (§13).
            if !std::mem::take(&mut self.keep_request) {
                self.remove_request()?;
            }
            return Ok(gone.then_some(record));
        }

        // Blockers named at step 7 of an earlier attempt let go while
        // lsusd was not looking: their time is not known.
        self.held.forget();

        // 4. Read the wakeup count (this may block while events are
        // processed), with the wakeup sources' counts just before it.
        self.unlock_disabled();
        let at_count = reasons::at_count_read(&mut self.power);
        let count = self.read_wakeup_count();

        // 5. The abort marker: reads of `disabled` from now on abort.
        let _ = self.drain_events()?;

        // 6. Tell the watchers and wait until all are ready.
        let notified = watchers::imminent(
            &self.run,
            self.cfg.nag_watchers,
            self.cfg.watcher_timeout,
            &self.stop.requested,
        )?;
        tracing::debug!("watchers ready after {:.1?}", notified.ready_after);

        // 7. The checks, in this order; then the state write.
        details.tardy = notified.tardy.clone();
        let attempt = Attempt {
            trigger: &trigger,
            count,
            at_count: &at_count,
        };
        let outcome = self.try_suspend(&attempt, &mut details)?;
        if !outcome.suspended() {
            details.awake = self.awake();
        }

        // 8. Release `disabled` (done in try_suspend), record the outcome
        // (before `request` goes, so that a requester finds it), end the
        // cycle for the watchers. The outcome and history writes come just
        // before the rename so that a watcher, woken by any event in the
        // run directory, finds all three in one wake-up instead of being
        // woken again for each.
        self.account(&trigger, &outcome, &details);
        let record = self.record(outcome, details)?;
        watchers::resumed(&self.run, notified);

        // 1. (next round) The request is done; any left over is old and
        // never honoured.
        self.remove_request()?;
        if let (Trigger::Forced(_), Some(force)) = (&trigger, &self.force) {
            force.done();
        }
        Ok(Some(record))
    }

    /// Step 2: waits until `request` exists or `immediate` is held (and
    /// any backoff has passed). Returns `None` on shutdown.
    fn wait_for_trigger(&mut self) -> Result<Option<Trigger>, LoopError> {
        loop {
            if (self.stop.requested)() {
                return Ok(None);
            }
            let _ = self.drain_events()?;
            self.repair_force()?;
            let timeout =
                match trigger::look(&self.run, self.force.as_ref(), self.cfg.immediate_grace)? {
                    Look::Go(t) => return Ok(Some(t)),
                    Look::Held(file) => match self.backoff.remaining(Instant::now()) {
                        None => return Ok(Some(Trigger::Immediate(file))),
                        Some(wait) => Some(wait),
                    },
                    Look::Grace(wait) => Some(wait),
                    Look::Idle => None,
                };
            match self.events.wait_or(timeout, self.stop.fd) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LoopError::Watch(e)),
            }
        }
    }

    /// Step 7. Returns with `disabled` released; fills in `details` what
    /// the kernel says about the attempt.
    fn try_suspend(
        &mut self,
        a: &Attempt<'_>,
        details: &mut Details,
    ) -> Result<Outcome, LoopError> {
        if (self.stop.requested)() {
            return Ok(Outcome::Withdrawn);
        }
        if let Some(pids) = self.blocked()? {
            if details.forced {
                // Over the block: `disabled` is not ours to hold around
                // the write; its holders are named in the record.
                add_overrode(&mut details.overrode, &pids);
            } else if let Some(timed) = self.expired_timed(&pids) {
                self.over_expired(&timed, details);
            } else {
                self.held.saw(&pids, boot_time(), watchers::comm);
                details.locker = self.blocked_details(&pids).locker;
                return Ok(Outcome::Blocked { pids });
            }
        }
        let outcome = self.checks_then_write(a, details);
        self.unlock_disabled();
        if let Ok(Outcome::Aborted | Outcome::WakeupEvent) = outcome {
            // Which wakeup source moved around the count check.
            reasons::after_refusal(&mut self.power, a.at_count, details);
        }
        outcome
    }

    /// The checks after `disabled` is held exclusively, then the write.
    fn checks_then_write(
        &mut self,
        a: &Attempt<'_>,
        details: &mut Details,
    ) -> Result<Outcome, LoopError> {
        let Attempt {
            trigger,
            count,
            at_count,
        } = *a;
        if !trigger::still_valid(&self.run, self.force.as_ref(), trigger)? {
            return Ok(Outcome::Withdrawn);
        }
        let seen = self.drain_events()?;
        if details.forced {
            // A read of `disabled` is a blocker's word, which a forced
            // request overrides like the lock (§12); the wakeup count
            // below still stands.
            if seen.disabled_read {
                tracing::info!("forced request: going over a read of disabled");
            }
        } else if seen.overflow {
            tracing::warn!("inotify queue overflowed; treating the attempt as aborted");
            return Ok(Outcome::Aborted);
        }
        if seen.disabled_read {
            return Ok(Outcome::Aborted);
        }
        if let Some(count) = count {
            match self.power.write_wakeup_count(count) {
                Ok(CountCheck::Accepted) => {}
                Ok(CountCheck::Rejected) => return Ok(Outcome::WakeupEvent),
                Err(e) => tracing::warn!(
                    "cannot write the wakeup count back ({e}); going on without the check"
                ),
            }
        }
        if self.cfg.dry_run {
            tracing::info!(
                "dry run: not writing {:?} to power/state; \"suspended\" for {:?}",
                self.cfg.state.as_str(),
                self.cfg.dry_run_sleep
            );
            details.awake = self.awake();
            self.dry_run_sleep();
            self.last_resume = Some(boot_time());
            return Ok(Outcome::DryRun {
                missing: self.cfg.missing.clone(),
            });
        }
        // The wakeup sources just before the write, to compare after it.
        let before = reasons::at_state_write(&mut self.power);
        details.awake = self.awake();
        // The boot-time clock counts the time asleep; Instant does not.
        let start = boot_time();
        match self.power.enter_state(self.cfg.state) {
            Ok(()) => {
                let end = boot_time();
                self.last_resume = Some(end);
                reasons::after_resume(&mut self.power, &before, details);
                Ok(Outcome::Suspended {
                    seconds: end.saturating_sub(start).as_secs_f64(),
                })
            }
            Err(e) => {
                // The path says which tree (a wrong --sysfs shows here).
                tracing::warn!("cannot write {:?} to {e}", self.cfg.state.as_str());
                reasons::after_failed_write(&mut self.power, at_count, &before, details);
                Ok(Outcome::WriteFailed { errno: e.errno() })
            }
        }
    }

    /// The dry run's "suspend": `dry_run_sleep`, cut short by a stop.
    fn dry_run_sleep(&self) {
        let end = Instant::now().checked_add(self.cfg.dry_run_sleep);
        loop {
            if (self.stop.requested)() {
                return;
            }
            let now = Instant::now();
            let left = match end {
                Some(end) if end <= now => return,
                Some(end) => end - now,
                None => Duration::from_secs(3600),
            };
            // At most an hour per wait: poll takes an i32 of milliseconds.
            let left = left.min(Duration::from_secs(3600));
            match self.stop.fd {
                Some(fd) => {
                    let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
                    let timeout =
                        lsus_sys::dirwatch::poll_timeout(Some(left.max(Duration::from_millis(1))));
                    // EINTR: look at the stop flag again.
                    let _ = nix::poll::poll(&mut fds, timeout);
                }
                None => std::thread::sleep(left),
            }
        }
    }

    /// Step 4: the count, or `None` when unknown (logged once).
    fn read_wakeup_count(&mut self) -> Option<u64> {
        loop {
            match self.power.read_wakeup_count() {
                Ok(n) => {
                    self.count_unknown_logged = false;
                    return Some(n);
                }
                // The kernel returns EINTR when a signal is pending.
                Err(e) if e.errno() == libc::EINTR && !(self.stop.requested)() => continue,
                Err(e) => {
                    if !self.count_unknown_logged {
                        tracing::warn!(
                            "wakeup count unknown ({e}); suspending without the race check"
                        );
                        self.count_unknown_logged = true;
                    }
                    return None;
                }
            }
        }
    }

    /// Returns `awake=`: seconds since the last resume, when known.
    fn awake(&self) -> Option<f64> {
        self.last_resume
            .map(|r| boot_time().saturating_sub(r).as_secs_f64())
    }

    /// The details of a record that is about nothing but the time awake.
    fn awake_only(&self) -> Details {
        Details {
            awake: self.awake(),
            ..Details::default()
        }
    }

    /// The details of a blocked answer: the time awake and, when no holder
    /// could be named, the lockers whose lock a process lsusd may not
    /// inspect keeps (`locker=`, doc/protocol.md §1.9).
    fn blocked_details(&self, pids: &[u32]) -> Details {
        let locker = match self.disabled.metadata() {
            Ok(meta) if pids.is_empty() => {
                proclocks::hidden_keepers(meta.dev(), meta.ino()).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        Details {
            locker,
            ..self.awake_only()
        }
    }

    /// Immediate-mode backoff bookkeeping and the attempt's log line.
    fn account(&mut self, trigger: &Trigger, outcome: &Outcome, details: &Details) {
        if outcome.suspended() {
            self.backoff.reset();
        } else if outcome.failed_attempt() && matches!(trigger, Trigger::Immediate(_)) {
            let pause = self.backoff.fail(Instant::now());
            tracing::info!("immediate mode: next attempt in {pause:.1?} at the earliest");
        }
        let more = details.to_string();
        let more = if more.is_empty() {
            more
        } else {
            format!(" ({more})")
        };
        match outcome {
            Outcome::Blocked { pids } => tracing::info!(
                "suspend ({}): blocked by {} during the attempt{more}",
                trigger.word(),
                describe_blockers(&self.run, pids, &details.locker)
            ),
            Outcome::Suspended { .. } | Outcome::DryRun { .. } => {
                tracing::info!("suspend ({}): {outcome}{more}", trigger.word())
            }
            _ => tracing::warn!("suspend ({}): {outcome}{more}", trigger.word()),
        }
    }

    /// Writes the outcome record.
    fn record(&mut self, outcome: Outcome, details: Details) -> Result<Record, LoopError> {
        self.seq += 1;
        let record = Record {
            seq: self.seq,
            time: SystemTime::now(),
            outcome,
            details,
        };
        // In RUN/records: a watcher of RUN sees nothing of it (§1.5).
        match self
            .run
            .publish(OUTCOME, record.to_string().as_bytes(), OUTCOME_MODE)
        {
            Ok(None) => {}
            Ok(Some(planted)) => tracing::warn!(
                "{}: found {planted}; wrote the outcome there",
                self.run.join(RECORDS).join(OUTCOME).display()
            ),
            Err(e) => tracing::error!("cannot record the outcome: {e}"),
        }
        crate::history::append(&self.run, &record);
        if let Some(m) = &mut self.metrics {
            m.add(&record);
            m.write();
        }
        Ok(record)
    }

    /// When every holder `pids` of `disabled` is a timed block whose
    /// deadline has passed (§13), returns them.
    fn expired_timed(&self, pids: &[u32]) -> Option<Vec<crate::timed::Timed>> {
        let until = self.until.as_ref()?;
        let meta = self.disabled.metadata().ok()?;
        let timed = crate::timed::all_timed(until, meta.dev(), meta.ino(), pids)?;
        let now = SystemTime::now();
        timed
            .iter()
            .all(|t| t.declared.deadline <= now)
            .then_some(timed)
    }

    /// Logs and records going over expired timed blocks.
    fn over_expired(&self, timed: &[crate::timed::Timed], details: &mut Details) {
        for t in timed {
            if details.expired.iter().any(|n| n.pid == t.pid) {
                continue;
            }
            let command = watchers::comm(t.pid);
            tracing::info!(
                "timed block of PID {} ({command}) expired at {:.3} (seconds since the epoch); \
                 going over it",
                t.pid,
                t.declared
                    .deadline
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
            );
            details.expired.push(Named {
                pid: t.pid,
                command,
            });
        }
    }

    /// Makes `RUN/force` again when it was removed or replaced, and
    /// watches the new one.
    fn repair_force(&mut self) -> Result<(), LoopError> {
        if let Some(force) = &mut self.force {
            if force.repair(&self.run)? {
                self.events
                    .add(force.path(), FORCE_EVENTS)
                    .map_err(LoopError::Watch)?;
            }
        }
        Ok(())
    }

    /// Step 1: removes any `request` (a directory that is not empty is
    /// moved aside, and the log says whose it was).
    fn remove_request(&self) -> Result<(), LoopError> {
        if let Some(planted) = self.run.remove_any(REQUEST)? {
            tracing::warn!(
                "{} could not be removed: {planted}",
                self.run.join(REQUEST).display()
            );
        }
        Ok(())
    }

    /// Reads queued directory events; notes reads of `disabled`.
    fn drain_events(&mut self) -> Result<Seen, LoopError> {
        let mut seen = Seen::default();
        self.events
            .drain(|mask, name| {
                if mask.contains(EventMask::Q_OVERFLOW) {
                    seen.overflow = true;
                } else if mask.contains(EventMask::ACCESS) && is_name(name, DISABLED) {
                    seen.disabled_read = true;
                }
            })
            .map_err(LoopError::Watch)?;
        Ok(seen)
    }

    /// Recreates `disabled` if it was removed or replaced behind our back.
    fn ensure_disabled(&mut self) -> Result<(), LoopError> {
        if !self.run.names(DISABLED, &self.disabled)? {
            tracing::warn!(
                "{} was removed or replaced; recreating it",
                self.run.join(DISABLED).display()
            );
            self.disabled = open_disabled(&self.run)?;
        }
        Ok(())
    }

    fn try_lock_disabled(&self) -> Result<bool, LoopError> {
        lock::try_lock(&self.disabled, LockKind::Exclusive)
            .map_err(|source| self.lock_error(source))
    }

    /// Steps 3 and 7: `None` when nothing blocks (and `disabled` is then
    /// held exclusively), else the holders of `disabled`, for the record.
    fn blocked(&self) -> Result<Option<Vec<u32>>, LoopError> {
        blocked_by(|| self.try_lock_disabled(), || self.blockers())
    }

    fn unlock_disabled(&self) {
        if let Err(e) = lock::unlock(&self.disabled) {
            tracing::error!("{}", self.lock_error(e));
        }
    }

    fn lock_error(&self, source: std::io::Error) -> LoopError {
        LoopError::Lock {
            path: self.run.join(DISABLED).display().to_string(),
            source,
        }
    }

    /// Waits until nothing blocks. Returns false on shutdown. The
    /// blockers are timed meanwhile; their times go into the history line
    /// of record `seq` when they let go (or lsusd stops).
    ///
    /// A lock's release raises no event, so a helper thread waits in a
    /// blocking `flock(LOCK_EX)` (then releases it at once) and says so
    /// through a pipe, while this thread keeps watching the run directory:
    /// a `request` created (or touched) meanwhile gets its "blocked"
    /// answer at once too, instead of waiting for the blockers with the
    /// first one. As before, every such request is dropped when the
    /// blockers leave.
    ///
    /// A forced request (§12) ends the wait too: the helper is stopped
    /// first (a SIGALRM interrupts its `flock`), so that it never takes
    /// and drops a lock through lsusd's description later, and the
    /// blockers' time so far goes into `held=`.
    fn wait_for_blockers(&mut self, seq: u64) -> Result<bool, LoopError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout};
        use std::sync::atomic::{AtomicBool, Ordering};
        // The same open file description as ours: we take no lock on it
        // until the helper is done, so the two never meet. On shutdown the
        // helper is left waiting; it ends with the process.
        let probe = self.disabled.try_clone().map_err(|e| self.lock_error(e))?;
        let (done_rx, done_tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| LoopError::Watch(e.into()))?;
        let cancel = std::sync::Arc::new(AtomicBool::new(false));
        let cancelled = cancel.clone();
        let helper = std::thread::Builder::new()
            .name("blockers".into())
            .spawn(move || loop {
                match lock::lock(&probe, LockKind::Exclusive) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        if cancelled.load(Ordering::SeqCst) {
                            let _ = nix::unistd::write(&done_tx, &[0]);
                            return;
                        }
                    }
                    _ => {
                        let _ = lock::unlock(&probe);
                        let _ = nix::unistd::write(&done_tx, &[1]);
                        return;
                    }
                }
            })
            .map_err(LoopError::Watch)?;
        let mut ended = Vec::new();
        loop {
            if (self.stop.requested)() {
                self.all_gone(seq, ended);
                return Ok(false);
            }
            // With several blockers, a look at /proc/locks each second
            // times each one; the last one's release ends the wait.
            let mut timeout = if self.held.len() > 1 {
                PollTimeout::from(1000u16)
            } else {
                PollTimeout::NONE
            };
            // Timed blocks (§13): wake up when the last one expires.
            if let Some(until) = &self.until {
                let pids = self.blockers();
                let meta = self.disabled.metadata().map_err(|e| self.lock_error(e))?;
                if let Some(timed) = crate::timed::all_timed(until, meta.dev(), meta.ino(), &pids) {
                    let left = crate::timed::last_deadline(&timed)
                        .and_then(|d| d.duration_since(SystemTime::now()).ok())
                        .unwrap_or_default();
                    if left.is_zero() {
                        tracing::info!("the timed blocks have expired: no longer waiting for them");
                        stop_helper(&cancel, helper, &done_rx);
                        self.all_gone(seq, ended);
                        return Ok(true);
                    }
                    let t = lsus_sys::dirwatch::poll_timeout(Some(left));
                    timeout = if timeout == PollTimeout::NONE {
                        t
                    } else {
                        timeout.min(t)
                    };
                }
            }
            let mut fds = vec![
                PollFd::new(done_rx.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.events.as_fd(), PollFlags::POLLIN),
            ];
            if let Some(fd) = self.stop.fd {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(LoopError::Watch(e.into())),
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                drop(fds);
                self.all_gone(seq, ended);
                return Ok(true);
            }
            drop(fds);
            if self.force.as_ref().and_then(ForceDir::look).is_some() {
                tracing::info!("a forced request: no longer waiting for the blockers");
                stop_helper(&cancel, helper, &done_rx);
                self.all_gone(seq, ended);
                return Ok(true);
            }
            if self.held.len() > 1 {
                // Nobody named: all let go (the helper says so next) or
                // the holder is invisible; either way, no change.
                let still = self.blockers();
                if !still.is_empty() {
                    ended.extend(self.held.let_go(&still, boot_time()));
                }
            }
            let mut asked = false;
            self.events
                .drain(|mask, name| {
                    asked |= mask.contains(EventMask::Q_OVERFLOW)
                        || (is_name(name, REQUEST)
                            && mask.intersects(
                                EventMask::CREATE | EventMask::MOVED_TO | EventMask::ATTRIB,
                            ));
                })
                .map_err(LoopError::Watch)?;
            if asked && self.run.exists(REQUEST)? {
                // Made after the timed blocks expired: honoured (§13).
                if self.expired_timed(&self.blockers()).is_some() {
                    tracing::info!(
                        "the timed blocks have expired: a new request ends the wait for them"
                    );
                    stop_helper(&cancel, helper, &done_rx);
                    self.all_gone(seq, ended);
                    self.keep_request = true;
                    return Ok(true);
                }
                if let Some(pids) = self.blocked_while_waiting()? {
                    let details = self.blocked_details(&pids);
                    tracing::info!(
                        "suspend (request) blocked by {}",
                        describe_blockers(&self.run, &pids, &details.locker)
                    );
                    self.held.saw(&pids, boot_time(), watchers::comm);
                    self.record(Outcome::Blocked { pids }, details)?;
                }
            }
        }
    }

    /// Every blocker has let go (or lsusd stops waiting for them): their
    /// hold ends now, besides those in `ended`.
    fn all_gone(&mut self, seq: u64, mut ended: Vec<Held>) {
        ended.extend(self.held.let_go(&[], boot_time()));
        self.end_hold(seq, ended);
    }

    /// Logs how long each blocker held suspend off and adds `held=` to the
    /// history line of record `seq`.
    fn end_hold(&mut self, seq: u64, ended: Vec<Held>) {
        if ended.is_empty() {
            return;
        }
        for h in &ended {
            tracing::info!(
                "PID {} ({}) held suspend off for {:.1} s",
                h.pid,
                h.command,
                h.seconds
            );
        }
        if let Some(m) = &mut self.metrics {
            m.add_held(&ended);
            m.write();
        }
        crate::history::amend(&self.run, seq, |d| d.held = ended);
    }

    /// During the wait for the blockers, a new request's answer. The
    /// helper thread may have taken its lock by now (the blockers just
    /// left): then the answer is left to its word, and the request is
    /// dropped with the others.
    fn blocked_while_waiting(&self) -> Result<Option<Vec<u32>>, LoopError> {
        let pids = self.blockers();
        if !pids.is_empty() {
            return Ok(Some(pids));
        }
        // Nobody named: look at the lock itself. Our own description
        // cannot conflict with the helper's (it is the same one), so ask
        // through a description of our own.
        let probe = self
            .run
            .open_file(DISABLED, Access::READ, None, false)
            .map_err(LoopError::RunDir)?;
        let free = lock::try_lock(&probe, LockKind::Exclusive).map_err(|e| self.lock_error(e))?;
        Ok((!free).then_some(pids))
    }

    /// The PIDs holding `disabled`, where `/proc/locks` tells.
    fn blockers(&self) -> Vec<u32> {
        let Ok(meta) = self.disabled.metadata() else {
            return Vec::new();
        };
        // The live holders, not merely who took the lock: flock(1) on a
        // shell's descriptor exits at once and leaves the lock with the
        // shell. `/proc/locks` is read in one call, one consistent view; a
        // blocker that let go since the failed try-lock is not named (see
        // `blocked_by` for what is made of that).
        let mut pids = proclocks::holding_pids(meta.dev(), meta.ino()).unwrap_or_default();
        pids.retain(|&p| p != std::process::id());
        pids
    }
}

/// Step 3's (and step 7's) question, asked through `try_lock` (true: the
/// lock is ours, nothing blocks) and `holders` (the live holders of the
/// lock, from `/proc/locks`). Returns `None` when nothing blocks, else the
/// holders.
///
/// The failed try-lock and the read of `/proc/locks` are two looks at a
/// moving target: a blocker that lets go between them leaves the lock
/// free and `/proc/locks` naming nobody. That case is not "blocked by an
/// unknown process" — nothing blocks any more — so the lock is tried
/// again. Only when the lock stays taken and still nobody is named, after
/// a few looks, is the answer "blocked" without a PID: the holder is
/// invisible to lsusd (a process in another PID namespace, whose locks
/// the kernel leaves out of this namespace's `/proc/locks`), or blockers
/// come and go faster than lsusd looks.
pub(crate) fn blocked_by<E>(
    mut try_lock: impl FnMut() -> Result<bool, E>,
    mut holders: impl FnMut() -> Vec<u32>,
) -> Result<Option<Vec<u32>>, E> {
    const LOOKS: usize = 3;
    let mut pids = Vec::new();
    for _ in 0..LOOKS {
        if try_lock()? {
            return Ok(None);
        }
        pids = holders();
        if !pids.is_empty() {
            break;
        }
    }
    Ok(Some(pids))
}

/// Names the blockers for log lines: "PID 812 (sh), PID 1290 (rsync)";
/// lsus-logind's PID becomes the logind inhibitors it stands for
/// (`lsus_proto::logind::name_holders`). With no PID, the words of
/// `proclocks::describe_unnamed` for the `lockers` whose keeper lsusd may
/// not inspect, or for a holder it cannot see at all.
fn describe_blockers(run: &RunDir, pids: &[u32], lockers: &[u32]) -> String {
    if pids.is_empty() {
        return proclocks::describe_unnamed(lockers);
    }
    let named = logind::name_holders(run, pids, |p| format!("PID {p} ({})", watchers::comm(p)));
    named.join(", ")
}

/// Opens `disabled`, creating it if needed, never truncating it (a lock
/// held on it across an lsusd restart stays in force). It keeps one byte
/// so that a client's read raises inotify `IN_ACCESS`.
fn open_disabled(run: &RunDir) -> Result<File, LoopError> {
    let (mut file, planted) =
        run.open_regular(DISABLED, Access::READ_WRITE, DISABLED_MODE, false)?;
    if let Some(planted) = planted {
        tracing::warn!(
            "{}: found {planted}; created a regular file",
            run.join(DISABLED).display()
        );
    }
    let io = |source| RunDirError {
        op: "write",
        path: run.join(DISABLED),
        source,
    };
    if file.metadata().map_err(io)?.len() == 0 {
        file.write_all(b"\n").map_err(io)?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests;
