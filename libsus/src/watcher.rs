//! Hearing of suspend and resume: the `watching` / `watching-next` dance.
//!
//! ```text
//! lsusd                               watcher
//! ─────                               ───────
//!                                     open watching, flock SH, check empty
//! create watching-next (empty)
//! write 1 byte to watching      ──►   sees watching non-empty:
//! flock EX watching (waits)           open watching-next, flock SH (next cycle)
//!                                     pre-suspend work …
//!                               ◄──   ready(): unlock watching
//! … suspend, resume …
//! rename watching-next → watching
//! write 2 bytes to old watching ──►   sees the bytes (and the rename): resumed
//! ```

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use inotify::WatchMask;
use lsus_proto::rundir::{Access, RunDir, WATCHING, WATCHING_NEXT};
use lsus_sys::dirwatch::DirWatch;
use lsus_sys::lock::{self, LockKind};

use crate::event_wait::{self, EventSource};
use crate::{open_run_dir, Error, Result};

/// What a [`Watcher`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEvent {
    /// lsusd is about to suspend and waits for this watcher: do the
    /// pre-suspend work (take a [`crate::Blocker`] block first to say "not
    /// now"), then call [`Watcher::ready`].
    SuspendImminent,
    /// The attempt is over: the machine resumed, or the attempt was
    /// aborted (the protocol does not tell these apart).
    Resumed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Holding `current`; waiting for it to become non-empty.
    Awake,
    /// Reported `SuspendImminent`; still holding `current` until `ready`.
    Imminent,
    /// Released `current`; waiting for the rename that ends the cycle.
    Ready,
}

/// A registered watcher of lsusd (the original's `suspend_watch`).
///
/// It is a pollable object: wait on [`Watcher::as_fd`] for readability in
/// any event loop, then call [`Watcher::poll_event`] until it returns
/// `None`. Simple programs use [`Watcher::wait`] instead.
///
/// While registered, the watcher holds a shared lock on `watching`, which
/// delays every suspend until it has called [`Watcher::ready`]: a watcher
/// must answer promptly. Dropping it unregisters.
///
/// ```no_run
/// use libsus::{WatchEvent, Watcher};
/// let mut w = Watcher::open()?;
/// loop {
///     match w.wait()? {
///         WatchEvent::SuspendImminent => {
///             println!("suspending");
///             w.ready()?;
///         }
///         WatchEvent::Resumed => println!("resumed"),
///     }
/// }
/// # Ok::<(), libsus::Error>(())
/// ```
#[derive(Debug)]
pub struct Watcher {
    run: RunDir,
    watch: DirWatch,
    current: File,
    next: Option<File>,
    state: State,
}

fn file_len(file: &File) -> Result<u64> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| Error::io("cannot stat watching", e))
}

impl Watcher {
    /// Registers a watcher on the default run directory.
    ///
    /// If a suspend is in progress this waits until it is over.
    ///
    /// ```no_run
    /// let w = libsus::Watcher::open()?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn open() -> Result<Watcher> {
        Watcher::open_in(&crate::run_dir())
    }

    /// Registers a watcher on the run directory `dir`.
    ///
    /// ```no_run
    /// let w = libsus::Watcher::open_in(std::path::Path::new("/run/suspend"))?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn open_in(dir: &Path) -> Result<Watcher> {
        let run = open_run_dir(dir)?;
        let watch = DirWatch::new(
            dir,
            // The byte written to `watching` (imminent) and the two bytes
            // written to the old file (the end; the rename comes before
            // them): two wake-ups a cycle, as the original's clients, which
            // watched RUN with dnotify DN_MODIFY alone. IN_MOVED_TO would
            // add a third for the rename (doc/protocol.md §1.4).
            WatchMask::MODIFY,
        )
        .map_err(|e| Error::io(format!("cannot watch {}", dir.display()), e))?;
        let mut watch = watch;
        let current = register(&run, &mut watch)?;
        Ok(Watcher {
            run,
            watch,
            current,
            next: None,
            state: State::Awake,
        })
    }

    /// Looks at the files and returns the next event, without blocking.
    ///
    /// Call it when [`Watcher::as_fd`] is readable, and again until it
    /// returns `None` (one wake-up can carry a resume and the next
    /// suspend).
    ///
    /// ```no_run
    /// # let mut w = libsus::Watcher::open()?;
    /// while let Some(event) = w.poll_event()? {
    ///     println!("{event:?}");
    /// #   if event == libsus::WatchEvent::SuspendImminent { w.ready()?; }
    /// }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn poll_event(&mut self) -> Result<Option<WatchEvent>> {
        self.watch
            .drain(|_, _| {})
            .map_err(|e| Error::io("cannot read inotify events", e))?;
        match self.state {
            State::Awake => {
                if file_len(&self.current)? > 0 {
                    // Registration for the next cycle comes before anything
                    // else: lsusd cannot rename while we hold `current`.
                    let next = self
                        .run
                        .open_file(WATCHING_NEXT, Access::READ, None, false)?;
                    lock::lock_retrying(&next, LockKind::Shared)
                        .map_err(|e| Error::io("cannot lock watching-next", e))?;
                    self.next = Some(next);
                    self.state = State::Imminent;
                    return Ok(Some(WatchEvent::SuspendImminent));
                }
                if !self.run.names(WATCHING, &self.current)? {
                    // lsusd restarted on a fresh directory: register anew.
                    self.current = register(&self.run, &mut self.watch)?;
                }
                Ok(None)
            }
            State::Imminent => Ok(None),
            State::Ready => {
                let Some(next) = self.next.as_ref() else {
                    return Err(Error::Protocol("no watching-next held".into()));
                };
                // Resumed when `watching` is now our `watching-next`, or
                // when lsusd wrote its two bytes to the old file.
                if self.run.names(WATCHING, next)? || file_len(&self.current)? >= 3 {
                    if let Some(next) = self.next.take() {
                        self.current = next;
                    }
                    self.state = State::Awake;
                    return Ok(Some(WatchEvent::Resumed));
                }
                Ok(None)
            }
        }
    }

    /// Says "ready for suspend" after [`WatchEvent::SuspendImminent`].
    ///
    /// Does nothing at other times.
    ///
    /// ```no_run
    /// # let mut w = libsus::Watcher::open()?;
    /// if w.wait()? == libsus::WatchEvent::SuspendImminent {
    ///     w.ready()?;
    /// }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn ready(&mut self) -> Result<()> {
        if self.state == State::Imminent {
            lock::unlock(&self.current).map_err(|e| Error::io("cannot unlock watching", e))?;
            self.state = State::Ready;
        }
        Ok(())
    }

    /// Returns true if and only if [`WatchEvent::SuspendImminent`] was
    /// reported and [`Watcher::ready`] not yet called.
    pub fn is_pending(&self) -> bool {
        self.state == State::Imminent
    }

    /// Blocks until the next event.
    ///
    /// ```no_run
    /// # let mut w = libsus::Watcher::open()?;
    /// let event = w.wait()?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<WatchEvent> {
        event_wait::wait(self)
    }

    /// Blocks until the next event or until `timeout` (`None`: no limit)
    /// passes; returns `None` on time-out.
    ///
    /// ```no_run
    /// # let mut w = libsus::Watcher::open()?;
    /// let event = w.wait_timeout(Some(std::time::Duration::from_secs(1)))?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<WatchEvent>> {
        event_wait::wait_timeout(self, timeout)
    }
}

impl EventSource for Watcher {
    type Event = WatchEvent;

    fn next_event(&mut self) -> Result<Option<WatchEvent>> {
        self.poll_event()
    }

    fn sleep_until(&mut self, deadline: Option<Instant>) -> Result<bool> {
        match self.watch.wait_until(deadline) {
            Ok(ready) => Ok(ready),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(Error::io("cannot wait for inotify", e)),
        }
    }
}

impl std::os::fd::AsFd for Watcher {
    /// The descriptor to poll for readability (an inotify descriptor).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.watch.as_fd()
    }
}

/// Opens `watching`, locks it shared and checks it is still the empty file
/// at that path; retries (after the next change in the directory) if not.
fn register(run: &RunDir, watch: &mut DirWatch) -> Result<File> {
    loop {
        let file = run
            .open_file(WATCHING, Access::READ, None, false)
            .map_err(|e| match e.errno() {
                Some(libc::ENOENT) => Error::NotRunning(run.path().to_path_buf()),
                _ => Error::RunDir(e),
            })?;
        lock::lock_retrying(&file, LockKind::Shared)
            .map_err(|e| Error::io("cannot lock watching", e))?;
        if run.names(WATCHING, &file)? && file_len(&file)? == 0 {
            return Ok(file);
        }
        // A suspend is in progress: wait for the directory to change (the
        // rename that ends it) rather than spin.
        drop(file);
        let _ = watch.wait(Some(Duration::from_millis(200)));
        let _ = watch.drain(|_, _| {});
    }
}
