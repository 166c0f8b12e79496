//! Blocking suspend: a shared `flock` on `RUN/disabled`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use lsus_proto::lock::{self, LockKind};
use lsus_proto::rundir::{Access, DISABLED};

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
