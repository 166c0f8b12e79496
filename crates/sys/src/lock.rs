//! `flock(2)` on borrowed descriptors.
//!
//! The whole protocol is built on BSD locks: they belong to the open file
//! description, are dropped by the kernel when the last descriptor closes
//! (so a crashed client never leaves suspend blocked), and never conflict
//! with a process's own other locks on a different description.
//!
//! The calls go through `rustix::fs::flock`, which borrows the descriptor.
//! nix's `Flock<T>` does not fit how lsusd uses its locks: it takes the
//! file by value and unlocks when dropped, but lsusd keeps its descriptors,
//! locks and unlocks through them many times, hands a clone of the same
//! open file description to the thread that waits for blockers (dropping
//! that clone must not release the lock held through the original) and
//! libsus try-locks exclusively a descriptor that already holds a shared
//! lock (to learn whether it is the last holder). nix's plain `flock`
//! function is deprecated and takes a raw descriptor.

use std::io;
use std::os::fd::AsFd;

use rustix::fs::FlockOperation;

/// Which lock to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// `LOCK_SH`: any number of holders.
    Shared,
    /// `LOCK_EX`: a single holder.
    Exclusive,
}

fn flock(fd: impl AsFd, op: FlockOperation) -> io::Result<()> {
    rustix::fs::flock(fd, op).map_err(io::Error::from)
}

fn op(kind: LockKind) -> FlockOperation {
    match kind {
        LockKind::Shared => FlockOperation::LockShared,
        LockKind::Exclusive => FlockOperation::LockExclusive,
    }
}

/// Takes the lock, waiting as long as needed.
///
/// Fails with `ErrorKind::Interrupted` when a signal arrives meanwhile, so a
/// daemon can notice a shutdown request; use [`lock_retrying`] to ignore
/// signals.
pub fn lock(fd: impl AsFd, kind: LockKind) -> io::Result<()> {
    flock(fd, op(kind))
}

/// Takes the lock, waiting as long as needed and retrying after signals.
pub fn lock_retrying(fd: impl AsFd, kind: LockKind) -> io::Result<()> {
    let fd = fd.as_fd();
    loop {
        match flock(fd, op(kind)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Tries to take the lock without waiting.
///
/// Returns `Ok(true)` if and only if the lock is now held through `fd`,
/// `Ok(false)` if a conflicting lock is held elsewhere.
pub fn try_lock(fd: impl AsFd, kind: LockKind) -> io::Result<bool> {
    let op = match kind {
        LockKind::Shared => FlockOperation::NonBlockingLockShared,
        LockKind::Exclusive => FlockOperation::NonBlockingLockExclusive,
    };
    match flock(fd, op) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases any lock held through `fd`.
pub fn unlock(fd: impl AsFd) -> io::Result<()> {
    flock(fd, FlockOperation::Unlock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    /// Two open file descriptions of one new file, and the directory
    /// that holds it.
    fn two_descriptions() -> (tempfile::TempDir, File, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let a = File::create(&path).unwrap();
        let b = File::open(&path).unwrap();
        (dir, a, b)
    }

    #[test]
    fn exclusive_conflicts_with_shared_on_another_description() {
        let (_dir, a, b) = two_descriptions();
        lock(&a, LockKind::Shared).unwrap();
        assert!(!try_lock(&b, LockKind::Exclusive).unwrap());
        assert!(try_lock(&b, LockKind::Shared).unwrap());
        unlock(&a).unwrap();
        unlock(&b).unwrap();
        assert!(try_lock(&b, LockKind::Exclusive).unwrap());
    }

    #[test]
    fn closing_the_descriptor_drops_the_lock() {
        let (_dir, a, b) = two_descriptions();
        lock_retrying(&a, LockKind::Shared).unwrap();
        assert!(!try_lock(&b, LockKind::Exclusive).unwrap());
        drop(a);
        assert!(try_lock(&b, LockKind::Exclusive).unwrap());
    }
}
