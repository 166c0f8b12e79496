//! Blocking suspend: a shared `flock` on `RUN/disabled`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use lsus_proto::rundir::{Access, DISABLED};
use lsus_sys::lock::{self, LockKind};

use crate::{open_run_dir, Error, Result};

/// A handle on `RUN/disabled`, the file whose shared lock keeps the
/// machine awake (the original's `suspend_open`).
///
/// Each `Blocker` has its own open file, so two blockers in one process
/// block independently. The kernel drops the lock when the process dies,
/// so a crash never leaves suspend blocked.
///
/// ```no_run
/// let blocker = libsus::Blocker::open()?;
/// {
///     let _awake = blocker.block()?;
///     // suspend cannot start here
/// }
/// // suspend may start again
/// # Ok::<(), libsus::Error>(())
/// ```
#[derive(Debug)]
pub struct Blocker {
    file: File,
    /// The run directory, for [`Blocker::block_for`].
    dir: std::path::PathBuf,
    // Guards alive: the lock is per open file, so only the last one unlocks.
    guards: std::cell::Cell<usize>,
}

/// Suspend stays blocked while this guard lives; dropping it allows suspend
/// again, unless another guard of the same [`Blocker`] or another process
/// still blocks.
#[derive(Debug)]
#[must_use = "suspend is allowed again as soon as the guard is dropped"]
pub struct BlockGuard<'a> {
    blocker: &'a Blocker,
}

impl Blocker {
    /// Opens `disabled` in the default run directory ([`crate::run_dir`]).
    ///
    /// Fails with [`Error::NotRunning`] if lsusd has not created it.
    ///
    /// ```no_run
    /// let blocker = libsus::Blocker::open()?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn open() -> Result<Blocker> {
        Blocker::open_in(&crate::run_dir())
    }

    /// Opens `disabled` in the run directory `dir`.
    ///
    /// ```no_run
    /// let blocker = libsus::Blocker::open_in(std::path::Path::new("/run/suspend"))?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn open_in(dir: &Path) -> Result<Blocker> {
        let run = open_run_dir(dir)?;
        let file = run
            .open_file(DISABLED, Access::READ, None, false)
            .map_err(|e| match e.errno() {
                Some(libc::ENOENT) => Error::NotRunning(dir.to_path_buf()),
                _ => Error::RunDir(e),
            })?;
        Ok(Blocker {
            file,
            dir: dir.to_path_buf(),
            guards: std::cell::Cell::new(0),
        })
    }

    /// Blocks suspend until the returned guard is dropped.
    ///
    /// If a suspend is being entered right now this waits until the
    /// machine has resumed (lsusd holds `disabled` exclusively only around
    /// the final write), so when it returns the machine is awake and stays
    /// so.
    ///
    /// ```no_run
    /// # let blocker = libsus::Blocker::open()?;
    /// let guard = blocker.block()?;
    /// guard.allow();
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn block(&self) -> Result<BlockGuard<'_>> {
        lock::lock_retrying(&self.file, LockKind::Shared)
            .map_err(|e| Error::io("cannot lock disabled", e))?;
        self.guards.set(self.guards.get() + 1);
        Ok(BlockGuard { blocker: self })
    }

    /// Aborts the suspend attempt in progress, if any, by reading
    /// `disabled` (lsusd notices the read). Without an attempt in progress
    /// this does nothing.
    ///
    /// A watcher that must not let this particular suspend happen, but
    /// does not want to hold a block, calls this before it is ready.
    ///
    /// ```no_run
    /// # let blocker = libsus::Blocker::open()?;
    /// blocker.abort()?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn abort(&self) -> Result<()> {
        let mut byte = [0u8; 1];
        self.file
            .read_at(&mut byte, 0)
            .map_err(|e| Error::io("cannot read disabled", e))?;
        Ok(())
    }

    fn release(&self) {
        let left = self.guards.get().saturating_sub(1);
        self.guards.set(left);
        if left == 0 {
            // Unlocking a file we hold open cannot fail in a way we could act on.
            let _ = lock::unlock(&self.file);
        }
    }
}

impl BlockGuard<'_> {
    /// Allows suspend again (the same as dropping the guard).
    pub fn allow(self) {}
}

impl Drop for BlockGuard<'_> {
    fn drop(&mut self) {
        self.blocker.release();
    }
}

impl std::os::fd::AsFd for Blocker {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.file)
    }
}

/// A block that ends by itself at its deadline ([`Blocker::block_for`]).
///
/// The lock is held through an open file of its own; a timer thread lets
/// go of it at the deadline, or when the guard is dropped, whichever comes
/// first. Since a stopped process (SIGSTOP) cannot run that thread either,
/// the deadline is also declared to lsusd in `RUN/until/PID`
/// (doc/protocol.md §13), and lsusd goes over the block once it has passed.
#[derive(Debug)]
#[must_use = "the block ends as soon as the guard is dropped"]
pub struct TimedBlock {
    deadline: std::time::SystemTime,
    stop: Option<std::sync::mpsc::Sender<()>>,
    timer: Option<std::thread::JoinHandle<()>>,
}

impl TimedBlock {
    /// Returns when the block ends (or ended) by itself.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let blocker = libsus::Blocker::open()?;
    /// let block = blocker.block_for(Duration::from_secs(30))?;
    /// println!("awake until {:?}", block.deadline());
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn deadline(&self) -> std::time::SystemTime {
        self.deadline
    }

    /// Returns true once the block has ended (the deadline passed).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let blocker = libsus::Blocker::open()?;
    /// let block = blocker.block_for(Duration::from_secs(1))?;
    /// std::thread::sleep(Duration::from_secs(2));
    /// assert!(block.is_over());
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn is_over(&self) -> bool {
        self.timer.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for TimedBlock {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the timer, which lets go.
        drop(self.stop.take());
        if let Some(t) = self.timer.take() {
            let _ = t.join();
        }
    }
}

/// Returns `/proc/self/stat`'s start time of this process.
fn own_start_time() -> Result<u64> {
    lsus_sys::process::start_time(std::process::id())
        .ok_or_else(|| Error::Protocol("cannot read /proc/self/stat".into()))
}

impl Blocker {
    /// Blocks suspend for `duration` at most: returns a guard that lets go
    /// when dropped or at the deadline, whichever comes first, even if the
    /// calling thread is stuck (a timer thread lets go), and even if the
    /// whole process is stopped (lsusd reads the deadline declared in
    /// `RUN/until`, doc/protocol.md §13). Independent of this blocker's
    /// [`Blocker::block`]: the timed block has an open file of its own.
    /// One timed block per process at a time: a process that holds two
    /// locks on `disabled` is never gone over by lsusd.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let blocker = libsus::Blocker::open()?;
    /// let _awake = blocker.block_for(Duration::from_secs(30))?;
    /// // suspend cannot start for 30 s, or until `_awake` is dropped
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn block_for(&self, duration: std::time::Duration) -> Result<TimedBlock> {
        use lsus_proto::until::{Declaration, UNTIL_DIR};
        use std::os::unix::fs::MetadataExt;
        let run = open_run_dir(&self.dir)?;
        let file = run.open_file(DISABLED, Access::READ, None, false)?;
        let deadline = std::time::SystemTime::now()
            .checked_add(duration)
            .ok_or_else(|| Error::Protocol(format!("a duration too long: {duration:?}")))?;
        let until = run.subdir(UNTIL_DIR, None)?;
        let ino = file
            .metadata()
            .map_err(|e| Error::io("cannot stat disabled", e))?
            .ino();
        let name = std::process::id().to_string();
        let declared = Declaration {
            deadline,
            start: own_start_time()?,
            ino,
        };
        lock::lock_retrying(&file, LockKind::Shared)
            .map_err(|e| Error::io("cannot lock disabled", e))?;
        // Whole or not at all: lsusd never reads half a declaration.
        until.write_atomically(&name, declared.to_string().as_bytes(), 0o644)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let timer = std::thread::Builder::new()
            .name("libsus-timed-block".into())
            .spawn(move || {
                // A message never comes: a disconnect (the guard dropped)
                // or the deadline ends the wait.
                let left = deadline
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                let _ = stopped.recv_timeout(left);
                let _ = until.remove(&name);
                drop(file); // the lock goes with the last descriptor
            })
            .map_err(|e| Error::io("cannot start the timer thread", e))?;
        Ok(TimedBlock {
            deadline,
            stop: Some(stop),
            timer: Some(timer),
        })
    }
}
