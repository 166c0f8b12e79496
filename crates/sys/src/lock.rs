//! `flock(2)` on borrowed descriptors.
//!
//! The whole protocol is built on BSD locks: they belong to the open file
//! description, are dropped by the kernel when the last descriptor closes
//! (so a crashed client never leaves suspend blocked), and never conflict
//! with a process's own other locks on a different description.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Which lock to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// `LOCK_SH`: any number of holders.
    Shared,
    /// `LOCK_EX`: a single holder.
    Exclusive,
}

fn flock(fd: impl AsFd, op: libc::c_int) -> io::Result<()> {
    // SAFETY: flock(2) only reads the integer descriptor, which the borrow
    // keeps open for the duration of the call; no memory is passed.
    let rc = unsafe { libc::flock(fd.as_fd().as_raw_fd(), op) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn op(kind: LockKind) -> libc::c_int {
    match kind {
        LockKind::Shared => libc::LOCK_SH,
        LockKind::Exclusive => libc::LOCK_EX,
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
    match flock(fd, op(kind) | libc::LOCK_NB) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases any lock held through `fd`.
pub fn unlock(fd: impl AsFd) -> io::Result<()> {
    flock(fd, libc::LOCK_UN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn exclusive_conflicts_with_shared_on_another_description() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let a = File::create(&path).unwrap();
        let b = File::open(&path).unwrap();
        lock(&a, LockKind::Shared).unwrap();
        assert!(!try_lock(&b, LockKind::Exclusive).unwrap());
        assert!(try_lock(&b, LockKind::Shared).unwrap());
        unlock(&a).unwrap();
        unlock(&b).unwrap();
        assert!(try_lock(&b, LockKind::Exclusive).unwrap());
    }

    #[test]
    fn closing_the_descriptor_drops_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let a = File::create(&path).unwrap();
        let b = File::open(&path).unwrap();
        lock_retrying(&a, LockKind::Shared).unwrap();
        assert!(!try_lock(&b, LockKind::Exclusive).unwrap());
        drop(a);
        assert!(try_lock(&b, LockKind::Exclusive).unwrap());
    }
}
