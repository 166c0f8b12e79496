//! The event loop: one `poll(2)` on the shutdown signals, the input
//! directory's inotify and every input device, with the idle deadline as
//! its timeout. Nothing else wakes it: no polling, and while input
//! arrives faster than the idle time no timer is set (doc/protocol.md §11).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use inotify::WatchMask;
use libsus::{Blocker, Immediate, ImmediateGuard};
use lsus_daemon::signals::ShutdownSignals;
use lsus_daemon::status::StatusFile;
use lsus_idle_cli::Cli;
use lsus_proto::idle::{IdleStatus, LSUS_IDLE_STATUS};
use lsus_proto::rundir::{RunDir, WATCHING};
use lsus_sys::dirwatch::{poll_timeout, DirWatch};
use nix::poll::{PollFd, PollFlags};

use crate::devices::Devices;
use crate::idle::{Action, Idle};

/// After a failed hold (lsusd gone, run directory unreachable), the next
/// try: the machine is still idle, so try again, but not in a loop.
const RETRY: Duration = Duration::from_secs(10);

/// The daemon's state.
pub struct Daemon {
    dir: PathBuf,
    run: RunDir,
    signals: ShutdownSignals,
    devices: Devices,
    idle: Idle,
    status: StatusFile,
    dry_run: bool,
    /// Immediate mode, while held.
    guard: Option<ImmediateGuard>,
    /// An attempt this daemon aborted: immediate mode is let go only when
    /// it is over (see [`Ending`]).
    ending: Option<Ending>,
    /// The last hold found `immediate` held exclusively by another
    /// program (said once, until a hold succeeds).
    refused: bool,
}

/// Immediate mode kept through the end of an attempt aborted by input.
///
/// lsusd's last checks before the state write look at the trigger first
/// (`withdrawn` if `immediate` is no longer held) and at reads of
/// `disabled` after (`aborted`, doc/protocol.md §2 step 7). Letting go at
/// once would record the attempt as withdrawn, which is not what
/// happened: a person came back. So the read comes first, immediate mode
/// stays until `watching` moves on (the rename that ends every attempt,
/// §1.4), and then goes.
pub struct Ending {
    guard: ImmediateGuard,
    /// Watches RUN for the rename (and the bytes) that end the attempt.
    watch: DirWatch,
    /// The inode of the `watching` that announced the attempt.
    ino: u64,
}

/// What woke the loop.
enum Ready {
    Hotplug,
    Device(OsString),
    Ending,
}

fn monotonic_secs() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| u64::try_from(t.tv_sec()).unwrap_or(0))
        .unwrap_or(0)
}

impl Daemon {
    /// The daemon the command line asks for, on the run directory lsusd
    /// serves (`run`): it opens the input devices and the status file,
    /// and holds nothing yet.
    pub fn new(
        cli: &Cli,
        run: RunDir,
        signals: ShutdownSignals,
    ) -> Result<Daemon, Box<dyn std::error::Error>> {
        let dir = cli.common.run_dir.clone();
        let devices = Devices::new(&cli.input_dir, cli.fake_input)?;
        let status = StatusFile::new(RunDir::open(&dir)?, LSUS_IDLE_STATUS);
        Ok(Daemon {
            dir,
            run,
            signals,
            devices,
            idle: Idle::new(cli.idle, Instant::now()),
            status,
            dry_run: cli.dry_run,
            guard: None,
            ending: None,
            refused: false,
        })
    }

    /// How many input devices it watches.
    pub fn device_count(&self) -> usize {
        self.devices.count()
    }

    /// Runs until a shutdown signal; returns its name.
    pub fn run(&mut self) -> Result<&'static str, Box<dyn std::error::Error>> {
        // `Instant` and poll's timeout are CLOCK_MONOTONIC; the published
        // seconds too, measured once here and moved with each input.
        let started = Instant::now();
        let started_secs = monotonic_secs();
        loop {
            let since = self.idle.last_input().saturating_duration_since(started);
            let idle = Instant::now().saturating_duration_since(self.idle.last_input())
                >= self.idle.timeout();
            self.status.publish(
                IdleStatus {
                    timeout: self.idle.timeout(),
                    devices: self.devices.count(),
                    idle,
                    holding: self.guard.is_some(),
                    idle_since: started_secs + since.as_secs(),
                }
                .to_string(),
                Instant::now(),
            );
            let wake = [self.idle.deadline(), self.status.deadline()]
                .into_iter()
                .flatten()
                .min();
            let (signal, ready) = self.wait(wake)?;
            if signal {
                if let Some(name) = self.signals.read()? {
                    return Ok(name);
                }
            }
            let now = Instant::now();
            for r in ready {
                match r {
                    Ready::Hotplug => self.devices.hotplug()?,
                    Ready::Ending => self.check_ending(),
                    Ready::Device(name) => {
                        let n = self.devices.read(&name);
                        if n > 0 {
                            // Off by default (info); the real-kernel
                            // scenario's marker of a key (-v).
                            tracing::debug!("input: {n} events on {}", name.to_string_lossy());
                            let run = &self.run;
                            let actions = self.idle.input(now, || imminent(run));
                            self.act(&actions, now);
                        }
                    }
                }
            }
            if self.idle.deadline().is_some_and(|d| now >= d) {
                if let Some(action) = self.idle.expired(now) {
                    self.act(&[action], now);
                }
            }
        }
    }

    /// Polls until something is ready or `until`; returns whether a
    /// signal came and what else is ready.
    fn wait(
        &self,
        until: Option<Instant>,
    ) -> Result<(bool, Vec<Ready>), Box<dyn std::error::Error>> {
        let names: Vec<OsString> = self.devices.fds().map(|(n, _)| n.to_os_string()).collect();
        let mut fds = Vec::with_capacity(2 + names.len());
        fds.push(PollFd::new(
            std::os::fd::AsFd::as_fd(&self.signals),
            PollFlags::POLLIN,
        ));
        fds.push(PollFd::new(self.devices.hotplug_fd(), PollFlags::POLLIN));
        if let Some(ending) = &self.ending {
            fds.push(PollFd::new(
                std::os::fd::AsFd::as_fd(&ending.watch),
                PollFlags::POLLIN,
            ));
        }
        let first_device = fds.len();
        fds.extend(
            self.devices
                .fds()
                .map(|(_, fd)| PollFd::new(fd, PollFlags::POLLIN)),
        );
        let timeout = poll_timeout(until.map(|t| t.saturating_duration_since(Instant::now())));
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok((false, Vec::new())),
            Err(e) => return Err(format!("poll failed: {e}").into()),
        }
        let readable = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let signal = readable(&fds[0]);
        let mut ready = Vec::new();
        if readable(&fds[1]) {
            ready.push(Ready::Hotplug);
        }
        if first_device == 3 && readable(&fds[2]) {
            ready.push(Ready::Ending);
        }
        for (fd, name) in fds[first_device..].iter().zip(names) {
            // POLLHUP/POLLERR too: the read says why (ENODEV) and drops it.
            if readable(fd) {
                ready.push(Ready::Device(name));
            }
        }
        Ok((signal, ready))
    }

    fn act(&mut self, actions: &[Action], now: Instant) {
        for action in actions {
            match action {
                Action::Hold => self.hold(now),
                Action::Abort => self.abort(),
                Action::Release => self.release(),
            }
        }
    }

    fn hold(&mut self, now: Instant) {
        let secs = self.idle.timeout().as_secs_f64();
        if self.dry_run {
            tracing::info!("idle for {secs} s: would hold immediate mode (--dry-run)");
            return;
        }
        if let Some(ending) = self.ending.take() {
            tracing::info!("idle for {secs} s: holding immediate mode again until the next input");
            self.guard = Some(ending.guard);
            return;
        }
        // Never Immediate::enter_in: an exclusive holder (the original's
        // clients lock with LOCK_EX) would stop this loop until it let go.
        match Immediate::try_enter_in(&self.dir) {
            Ok(Some(guard)) => {
                tracing::info!("idle for {secs} s: holding immediate mode until the next input");
                self.guard = Some(guard);
                self.refused = false;
            }
            Ok(None) => {
                let line = format!(
                    "idle for {secs} s, but another program holds immediate mode exclusively \
                     (so it is on, until that program lets go); trying again every {} s",
                    RETRY.as_secs()
                );
                if self.refused {
                    tracing::debug!("{line}");
                } else {
                    tracing::info!("{line}");
                }
                self.refused = true;
                self.idle.hold_failed(now, RETRY);
            }
            Err(e) => {
                tracing::warn!(
                    "idle for {secs} s, but cannot hold immediate mode ({e}); trying again in {} s",
                    RETRY.as_secs()
                );
                self.idle.hold_failed(now, RETRY);
            }
        }
    }

    fn abort(&mut self) {
        if self.dry_run {
            tracing::info!("input while a suspend is imminent: would abort it (--dry-run)");
            return;
        }
        // Watch first, then read: the end of the attempt cannot slip
        // between the two.
        let watch = match DirWatch::new(&self.dir, WatchMask::MODIFY | WatchMask::MOVED_TO) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("cannot watch {}: {e}", self.dir.display());
                None
            }
        };
        let ino = self.run.stat(WATCHING).ok().flatten().map(|st| st.st_ino);
        match Blocker::open_in(&self.dir).and_then(|b| b.abort()) {
            Ok(()) => {
                tracing::info!("input while a suspend is imminent: aborted it (read disabled)")
            }
            Err(e) => tracing::warn!("input while a suspend is imminent, cannot abort it: {e}"),
        }
        // Keep immediate mode until the attempt is over (`Ending`).
        if let (Some(watch), Some(ino), Some(guard)) = (watch, ino, self.guard.take()) {
            self.ending = Some(Ending { guard, watch, ino });
            self.check_ending();
        }
    }

    fn release(&mut self) {
        if self.dry_run {
            tracing::info!("input: would let go of immediate mode (--dry-run)");
            return;
        }
        if self.guard.take().is_some() {
            tracing::info!("input: let go of immediate mode");
        } else if self.ending.is_some() {
            tracing::info!("input: letting go of immediate mode when the aborted attempt is over");
        }
    }

    /// Lets go of immediate mode kept by [`Ending`] once the aborted
    /// attempt is over: `watching` is another file, or empty again.
    fn check_ending(&mut self) {
        let Some(ending) = &mut self.ending else {
            return;
        };
        if let Err(e) = ending.watch.drain(|_, _| {}) {
            tracing::warn!("cannot read inotify events: {e}");
        }
        let over = match self.run.stat(WATCHING) {
            Ok(Some(st)) => st.st_ino != ending.ino || st.st_size == 0,
            Ok(None) => true,
            Err(_) => true,
        };
        if over {
            self.ending = None;
            tracing::info!("the aborted attempt is over: let go of immediate mode");
        }
    }
}

/// Returns true if and only if lsusd has announced an attempt: `watching`
/// is not empty (doc/protocol.md §1.4).
fn imminent(run: &RunDir) -> bool {
    match run.stat(WATCHING) {
        Ok(Some(st)) => st.st_size > 0,
        Ok(None) => false,
        Err(e) => {
            tracing::warn!("cannot look at {WATCHING}: {e}");
            false
        }
    }
}
