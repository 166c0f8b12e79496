//! Immediate (opportunistic) mode: suspend whenever nothing blocks.

use std::fs::File;
use std::path::Path;

use lsus_proto::rundir::{Access, RunDir, IMMEDIATE};
use lsus_sys::lock::{self, LockKind};

use crate::{open_run_dir, Error, Result};

/// Entry point for immediate mode.
///
/// ```no_run
/// let guard = libsus::Immediate::enter()?;
/// // lsusd now suspends whenever nothing blocks …
/// drop(guard); // … and stops when the guard goes
/// # Ok::<(), libsus::Error>(())
/// ```
#[derive(Debug)]
pub struct Immediate;

/// Immediate mode stays on while this guard lives.
#[derive(Debug)]
#[must_use = "immediate mode ends as soon as the guard is dropped"]
pub struct ImmediateGuard {
    run: RunDir,
    file: File,
}

impl Immediate {
    /// Turns immediate mode on in the default run directory.
    ///
    /// ```no_run
    /// let _on = libsus::Immediate::enter()?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn enter() -> Result<ImmediateGuard> {
        Immediate::enter_in(&crate::run_dir())
    }

    /// Turns immediate mode on in the run directory `dir`.
    ///
    /// Creates `immediate`, refreshes its time stamps (lsusd gives a young
    /// unlocked file a grace period before treating it as stale), takes a
    /// shared lock on it, and then checks that the path still names the
    /// file it locked — if lsusd removed a stale file in between, it starts
    /// again. A shared lock lets several programs hold immediate mode at
    /// once; lsusd's `LOCK_EX|LOCK_NB` test sees any holder, and a shell
    /// script's `flock -x` works alongside.
    ///
    /// ```no_run
    /// let _on = libsus::Immediate::enter_in(std::path::Path::new("/run/suspend"))?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn enter_in(dir: &Path) -> Result<ImmediateGuard> {
        let run = open_run_dir(dir)?;
        loop {
            let file = open_touched(&run)?;
            lock::lock_retrying(&file, LockKind::Shared)
                .map_err(|e| Error::io("cannot lock immediate", e))?;
            if run.names(IMMEDIATE, &file)? {
                return Ok(ImmediateGuard { run, file });
            }
        }
    }

    /// As [`Immediate::enter_in`], but never waits for the lock: returns
    /// `Ok(None)` when another program holds `immediate` exclusively (the
    /// original's clients take `LOCK_EX`), which would make
    /// [`Immediate::enter_in`] wait until it lets go. Immediate mode is on
    /// meanwhile, but it is that program's: it ends when that program
    /// lets go. For event loops that must not block (lsus-idle).
    ///
    /// lsusd's own look at `immediate` is an exclusive try-lock of a
    /// moment; a conflict is tried again three times, 5 ms apart, before
    /// it counts as another holder.
    ///
    /// ```no_run
    /// match libsus::Immediate::try_enter_in(std::path::Path::new("/run/suspend"))? {
    ///     Some(_on) => { /* immediate mode is ours until `_on` goes */ }
    ///     None => { /* held exclusively by another program: try later */ }
    /// }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn try_enter_in(dir: &Path) -> Result<Option<ImmediateGuard>> {
        let run = open_run_dir(dir)?;
        let mut conflicts = 0;
        loop {
            let file = open_touched(&run)?;
            if !lock::try_lock(&file, LockKind::Shared)
                .map_err(|e| Error::io("cannot lock immediate", e))?
            {
                conflicts += 1;
                if conflicts > 3 {
                    return Ok(None);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            if run.names(IMMEDIATE, &file)? {
                return Ok(Some(ImmediateGuard { run, file }));
            }
        }
    }
}

/// The mode of an `immediate` this process owns: lsusd must open it to
/// test its lock, and under its unit lsusd is root without capabilities,
/// to which another user's file is open only through the "other" bits.
/// (The run directory, 2770, keeps everybody else out anyway.)
const MODE: u32 = 0o644;

/// Opens (creating it if needed) `immediate`, makes one this process owns
/// readable by lsusd ([`MODE`], whatever the umask took away), and
/// refreshes its time stamps, so that lsusd's grace period for a young
/// unlocked file starts now.
fn open_touched(run: &RunDir) -> Result<File> {
    let (file, _) = run.open_regular(IMMEDIATE, Access::READ, MODE, false)?;
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&file))
        .map_err(|e| Error::io("cannot stat immediate", e.into()))?;
    if st.st_uid == nix::unistd::geteuid().as_raw() && st.st_mode & 0o777 != MODE {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(MODE))
            .map_err(|e| Error::io("cannot make immediate readable by lsusd", e))?;
    }
    nix::sys::stat::futimens(
        std::os::fd::AsRawFd::as_raw_fd(&file),
        &nix::sys::time::TimeSpec::UTIME_NOW,
        &nix::sys::time::TimeSpec::UTIME_NOW,
    )
    .or_else(|e| {
        if e == nix::errno::Errno::EPERM {
            Ok(())
        } else {
            Err(e)
        }
    })
    .map_err(|e| Error::io("cannot touch immediate", e.into()))?;
    Ok(file)
}

impl ImmediateGuard {
    /// Leaves immediate mode (the same as dropping the guard).
    pub fn leave(self) {}
}

impl Drop for ImmediateGuard {
    fn drop(&mut self) {
        // Remove the file only if nobody else holds immediate mode.
        if let Ok(true) = lock::try_lock(&self.file, LockKind::Exclusive) {
            let _ = self.run.remove_if_names(IMMEDIATE, &self.file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_enter_gives_way_to_an_exclusive_holder_and_shares_with_others() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(IMMEDIATE);
        let other = File::create(&path).unwrap();
        lock::lock(&other, LockKind::Exclusive).unwrap();
        assert!(Immediate::try_enter_in(t.path()).unwrap().is_none());
        assert!(path.exists(), "the other holder's file stays");

        lock::unlock(&other).unwrap();
        lock::lock(&other, LockKind::Shared).unwrap();
        let guard = Immediate::try_enter_in(t.path())
            .unwrap()
            .expect("shared with a LOCK_SH holder");
        drop(other);
        // The last holder leaving removes the file.
        drop(guard);
        assert!(!path.exists());
    }
}
