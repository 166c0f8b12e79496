//! The event loop: one `poll(2)` over the shutdown signals, the alarm
//! timer, the lsusd watcher, the listening socket and every client, each
//! kind with its own handler.
//!
//! After every turn the loop settles: it sends `Now` to every connection
//! whose time has passed, re-arms the timer for the earliest remaining
//! time and lets suspend happen again if nothing needs the machine awake.
//! It sleeps without a timeout unless digits without a newline wait for
//! the end of their write, or accepting rests after running out of
//! descriptors (`lsus_daemon::accept`, as lsused: a spare descriptor
//! refuses connections at once rather than leaving them queued).

use std::collections::{BTreeSet, HashMap};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libsus::{WatchEvent, Watcher};
use lsus_daemon::accept::{self, Acceptor};
use lsus_daemon::status::StatusFile;
use lsus_proto::status::WakealarmdStatus;
use lsus_proto::wakealarm::{error_line, time_line, ParseError, GREETING, NOW, WRITE_GRACE};
use lsus_sys::rtc::Rtc;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::client::Client;
use crate::schedule::{ConnId, Schedule};
use crate::suspend::{self, AwakeHold, Decision};
use crate::timer::{AlarmTimer, Tick};
use lsus_daemon::signals::ShutdownSignals;

/// Connections accepted per turn, so clients already connected are served
/// between bursts of new ones.
const ACCEPTS_PER_TURN: usize = 256;

/// The event loop failed in a way that ends the daemon.
#[derive(Debug)]
pub enum ServerError {
    /// `poll` itself failed.
    Poll(Errno),
    /// The alarm timer or the signal descriptor failed.
    Timer(Errno),
    /// Watching lsusd failed.
    Watcher(libsus::Error),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Poll(e) => write!(f, "poll failed: {e}"),
            ServerError::Timer(e) => write!(f, "the alarm timer failed: {e}"),
            ServerError::Watcher(e) => write!(f, "cannot watch lsusd: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// Everything the daemon works with.
pub struct Server {
    acceptor: Acceptor,
    watcher: Watcher,
    timer: AlarmTimer,
    signals: ShutdownSignals,
    rtc: Rtc,
    /// Log the RTC writes instead of making them.
    dry_run: bool,
    hold: AwakeHold,
    /// Between `SuspendImminent` and `Resumed`: wakealarmd has said ready
    /// and lsusd may write the state file at any moment.
    in_cycle: bool,
    /// The alarm time the RTC was programmed for in this cycle.
    armed_for: Option<u64>,
    clients: HashMap<ConnId, Client>,
    schedule: Schedule,
    next_id: ConnId,
    /// Clients with digits waiting for the end of their write.
    partials: BTreeSet<(Instant, ConnId)>,
    /// `RUN/wakealarmd.status`, for `lsusctl status`.
    status: StatusFile,
}

/// What poll reported for the fixed descriptors and each client.
struct Ready {
    signals: bool,
    timer: bool,
    watcher: bool,
    listener: bool,
    clients: Vec<(ConnId, PollFlags)>,
}

fn unix_now() -> (u64, Duration) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    (since.as_secs(), since)
}

fn readable(flags: Option<PollFlags>) -> bool {
    flags.is_some_and(|f| f.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
}

impl Server {
    /// Assembles the server from its parts (all already open).
    pub fn new(
        acceptor: Acceptor,
        watcher: Watcher,
        timer: AlarmTimer,
        signals: ShutdownSignals,
        rtc: Rtc,
        run_dir: PathBuf,
        status: StatusFile,
    ) -> Server {
        Server {
            acceptor,
            watcher,
            timer,
            signals,
            rtc,
            dry_run: false,
            hold: AwakeHold::new(&run_dir),
            in_cycle: false,
            armed_for: None,
            clients: HashMap::new(),
            schedule: Schedule::new(),
            next_id: 1,
            partials: BTreeSet::new(),
            status,
        }
    }

    /// With `dry_run`, the RTC is never written: what would be written is
    /// logged instead (for demos and tests on a fake sysfs tree).
    pub fn set_dry_run(&mut self, dry_run: bool) {
        self.dry_run = dry_run;
        if dry_run {
            tracing::info!("dry run: RTC writes are logged, not made");
        }
    }

    /// Runs until a shutdown signal; returns its name.
    pub fn run(&mut self) -> Result<&'static str, ServerError> {
        loop {
            self.settle()?;
            self.publish_status();
            let ready = match self.wait() {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(ServerError::Poll(e)),
            };
            if ready.signals {
                if let Some(name) = self.signals.read().map_err(ServerError::Timer)? {
                    return Ok(name);
                }
            }
            if ready.timer {
                self.on_timer()?;
            }
            if ready.watcher {
                // Room for `watching-next`, or the RTC's file, with a full table.
                accept::lending_spare(self, |s| &mut s.acceptor, Self::watcher_events)?;
            }
            if ready.listener {
                self.on_listener();
            }
            for (id, flags) in ready.clients {
                self.on_client(id, flags);
            }
            self.on_write_ends();
        }
    }

    /// Polls every descriptor once and returns what is ready.
    fn wait(&mut self) -> Result<Ready, Errno> {
        let now = Instant::now();
        let timeout = self.poll_timeout(now);
        let mut fds = Vec::with_capacity(4 + self.clients.len());
        fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(self.timer.as_fd(), PollFlags::POLLIN));
        fds.push(PollFd::new(self.watcher.as_fd(), PollFlags::POLLIN));
        let listening = match self.acceptor.pollable(now) {
            Some(listener) => {
                fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
                true
            }
            None => false,
        };
        let fixed = if listening { 4 } else { 3 };
        let mut ids = Vec::with_capacity(self.clients.len());
        for (&id, client) in &self.clients {
            let mut events = PollFlags::POLLIN;
            if client.wants_write() {
                events |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(client.as_fd(), events));
            ids.push(id);
        }
        let n = poll(&mut fds, timeout)?;
        let flags = |i: usize| fds[i].revents().filter(|f| !f.is_empty());
        let mut clients = Vec::new();
        if n > 0 {
            for (i, &id) in ids.iter().enumerate() {
                if let Some(f) = flags(fixed + i) {
                    clients.push((id, f));
                }
            }
        }
        Ok(Ready {
            signals: readable(flags(0)),
            timer: readable(flags(1)),
            watcher: readable(flags(2)),
            listener: listening && readable(flags(3)),
            clients,
        })
    }

    /// Returns how long poll may sleep: forever, unless a write end or the
    /// end of an accept pause is awaited.
    fn poll_timeout(&self, now: Instant) -> PollTimeout {
        let write_end = self.partials.first().map(|&(since, _)| since + WRITE_GRACE);
        let accept_pause_end = self.acceptor.pause_left(now).map(|left| now + left);
        let deadline = [write_end, accept_pause_end, self.status.deadline()]
            .into_iter()
            .flatten()
            .min();
        lsus_sys::dirwatch::poll_timeout(deadline.map(|at| at.saturating_duration_since(now)))
    }

    /// Fires what is due, re-arms the timer, releases the hold if possible.
    ///
    /// Inside a suspend cycle (after ready, before resume) the RTC must
    /// match the alarms at every moment lsusd might write the state file:
    /// a time written after ready either takes the hold (due within the
    /// margin) or reprograms the RTC, and the hold taken earlier in the
    /// cycle is let go only after the RTC is programmed for what remains.
    fn settle(&mut self) -> Result<(), ServerError> {
        let (now, _) = unix_now();
        self.fire_due(now);
        self.timer
            .arm(self.schedule.earliest())
            .map_err(ServerError::Timer)?;
        if self.in_cycle {
            self.settle_in_cycle(now);
        } else if self.hold.is_held()
            && suspend::stay_awake(now, self.schedule.blocking(), self.schedule.earliest())
                .is_none()
        {
            self.release_hold();
        }
        Ok(())
    }

    /// What to do about suspend at `now`, given the connections.
    fn decide(&self, now: u64) -> Decision {
        suspend::decide(
            now,
            self.schedule.len(),
            self.schedule.blocking(),
            self.schedule.earliest(),
        )
    }

    /// [`Server::settle`] between ready and resume.
    fn settle_in_cycle(&mut self, now: u64) {
        match self.decide(now) {
            Decision::StayAwake(reason) => {
                if !self.hold.is_held() {
                    self.take_hold(reason, "during the suspend attempt");
                }
            }
            Decision::ProgramRtc(time) => {
                if self.hold.is_held() || self.armed_for != Some(time) {
                    self.program_rtc(time);
                }
                self.release_hold();
            }
            Decision::Ready => self.release_hold(),
        }
    }

    /// Takes the hold on `disabled`, logging why.
    fn take_hold(&mut self, reason: suspend::Reason, when: &str) {
        match self.hold.take() {
            Ok(true) => tracing::info!("{when}: {reason}: keeping the system awake"),
            Ok(false) => tracing::debug!("{when}, already keeping awake: {reason}"),
            Err(e) => tracing::error!("{reason}, but cannot keep the system awake: {e}"),
        }
    }

    /// Lets go of the hold on `disabled`, if held.
    fn release_hold(&mut self) {
        if self.hold.release() {
            tracing::info!("no alarm needs the system awake any more: suspend allowed");
        }
    }

    /// Hands the counts to the status file (written only when they
    /// changed, and rate-limited).
    fn publish_status(&mut self) {
        let blocking = self.schedule.blocking();
        let status = WakealarmdStatus {
            connections: self.schedule.len(),
            pending: self.schedule.len().saturating_sub(blocking),
            blocking,
            next: self.schedule.earliest(),
        };
        self.status.publish(status.to_string(), Instant::now());
    }

    /// Sends `Now` to every connection whose time is at or before `now`.
    fn fire_due(&mut self, now: u64) {
        for (id, time) in self.schedule.fire_due(now) {
            let (_, precise) = unix_now();
            let late = precise.saturating_sub(Duration::from_secs(time));
            tracing::debug!(
                "connection {id}: alarm for {time} fired ({} ms after it was due)",
                late.as_millis()
            );
            self.send(id, NOW);
        }
    }

    fn on_timer(&mut self) -> Result<(), ServerError> {
        match self.timer.read().map_err(ServerError::Timer)? {
            Tick::ClockSet => {
                tracing::info!("the system clock was set: looking at the alarms again")
            }
            Tick::Expired | Tick::Nothing => {}
        }
        // `settle` fires what is due and re-arms.
        Ok(())
    }

    fn watcher_events(&mut self) -> Result<(), ServerError> {
        while let Some(event) = self.watcher.poll_event().map_err(ServerError::Watcher)? {
            match event {
                WatchEvent::SuspendImminent => {
                    self.in_cycle = true;
                    self.armed_for = None;
                    self.before_suspend();
                    self.watcher.ready().map_err(ServerError::Watcher)?;
                }
                WatchEvent::Resumed => {
                    tracing::debug!("resumed (or the attempt ended)");
                    self.in_cycle = false;
                    self.armed_for = None;
                    let (now, _) = unix_now();
                    self.fire_due(now);
                }
            }
        }
        Ok(())
    }

    /// The pre-suspend work (doc/protocol.md §4); the caller then says ready.
    fn before_suspend(&mut self) {
        let (now, _) = unix_now();
        // Whatever is due gets its Now first, and then blocks.
        self.fire_due(now);
        match self.decide(now) {
            Decision::Ready => tracing::debug!("suspend imminent: no alarms"),
            Decision::ProgramRtc(time) => self.program_rtc(time),
            Decision::StayAwake(reason) => self.take_hold(reason, "suspend imminent"),
        }
    }

    fn program_rtc(&mut self, time: u64) {
        // Also on failure: settle must not retry (and log) every turn.
        self.armed_for = Some(time);
        let now = SystemTime::now();
        if self.dry_run {
            match self.rtc.plan(time, now) {
                Ok(p) => tracing::info!(
                    "suspend imminent: dry run: not writing \"0\" then \"{}\" to {} (the wake time for the alarm at {time}, RTC offset {} s)",
                    p.value,
                    self.rtc.wakealarm_path().display(),
                    p.offset
                ),
                Err(e) => tracing::error!(
                    "suspend imminent: dry run: cannot plan the RTC alarm for {time}: {e}"
                ),
            }
            return;
        }
        match self.rtc.program(time, now) {
            Ok(p) => tracing::info!(
                "suspend imminent: RTC {} programmed to wake at {} for the alarm at {time} (RTC offset {} s)",
                self.rtc.dir().display(),
                p.value,
                p.offset
            ),
            // As the original: suspend goes ahead; the alarm fires on the
            // next resume, whenever that is.
            Err(e) => tracing::error!(
                "suspend imminent: cannot program the RTC for the alarm at {time}: {e}"
            ),
        }
    }

    fn on_listener(&mut self) {
        for stream in self.acceptor.accept_some(ACCEPTS_PER_TURN) {
            if let Err(e) = stream.set_nonblocking(true) {
                tracing::warn!("cannot make a new connection non-blocking: {e}");
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            self.clients.insert(id, Client::new(id, stream));
            self.schedule.add(id);
            tracing::debug!("connection {id}: accepted ({} open)", self.clients.len());
            self.send(id, GREETING);
        }
    }

    fn on_client(&mut self, id: ConnId, flags: PollFlags) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if flags.contains(PollFlags::POLLOUT) {
            if let Err(e) = client.flush() {
                tracing::debug!("connection {id}: cannot write: {}", e.0);
                self.close(id);
                return;
            }
        }
        if !readable(Some(flags)) {
            return;
        }
        let now = Instant::now();
        let before = client.partial_since();
        let input = client.read_input(now);
        let after = client.partial_since();
        if before != after {
            if let Some(t) = before {
                self.partials.remove(&(t, id));
            }
            if let Some(t) = after {
                self.partials.insert((t, id));
            }
        }
        for time in input.times {
            self.set_time(id, time);
        }
        if let Some(e) = input.error {
            self.reject(id, &e);
        } else if input.closed {
            self.close(id);
        }
    }

    /// Completes times without a newline whose writer has been silent for
    /// the grace period.
    fn on_write_ends(&mut self) {
        let now = Instant::now();
        while let Some(&(since, id)) = self.partials.first() {
            if since + WRITE_GRACE > now {
                break;
            }
            self.partials.remove(&(since, id));
            let Some(client) = self.clients.get_mut(&id) else {
                continue;
            };
            match client.end_of_write() {
                Some(Ok(time)) => self.set_time(id, time),
                Some(Err(e)) => self.reject(id, &e),
                None => {}
            }
        }
    }

    fn set_time(&mut self, id: ConnId, time: u64) {
        if !self.clients.contains_key(&id) {
            return;
        }
        self.schedule.set(id, time);
        let (now, _) = unix_now();
        if time > now {
            tracing::debug!(
                "connection {id}: alarm set for {time} (in {} s)",
                time - now
            );
        } else {
            tracing::debug!("connection {id}: alarm set for {time}, already due");
        }
        // A time already due gets its Now when the loop settles, after
        // this echo.
        self.send(id, time_line(time).as_bytes());
    }

    /// Replies with the error and closes that connection only.
    fn reject(&mut self, id: ConnId, error: &ParseError) {
        tracing::warn!("connection {id}: invalid input, closing: {error}");
        if let Some(client) = self.clients.get_mut(&id) {
            client.send_last(error_line(error).as_bytes());
        }
        self.close(id);
    }

    fn send(&mut self, id: ConnId, bytes: &[u8]) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if let Err(e) = client.send(bytes) {
            tracing::debug!("connection {id}: cannot write: {}", e.0);
            self.close(id);
        }
    }

    fn close(&mut self, id: ConnId) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        if let Some(since) = client.partial_since() {
            self.partials.remove(&(since, id));
        }
        self.schedule.remove(id);
        self.acceptor.descriptor_freed();
        tracing::debug!(
            "connection {}: closed ({} open)",
            client.id(),
            self.clients.len()
        );
    }
}
