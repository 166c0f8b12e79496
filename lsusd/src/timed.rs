//! Timed blocks (doc/protocol.md §13): the declarations in `RUN/until`,
//! read when `disabled` is locked.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

use lsus_proto::rundir::{Access, RunDir, RunDirError};
use lsus_proto::until::{Declaration, UNTIL_DIR};
use lsus_sys::proclocks;

/// A holder of `disabled` with a valid declaration.
#[derive(Debug, Clone)]
pub struct Timed {
    /// The holder.
    pub pid: u32,
    /// Its declaration.
    pub declared: Declaration,
}

/// Makes `RUN/until` (permission bits 0770: the group's members declare
/// there; the set-group-ID bit comes from the run directory).
pub fn setup(run: &RunDir) -> Result<RunDir, RunDirError> {
    let (dir, planted) = run.subdir_replacing(UNTIL_DIR, Some(0o770))?;
    if let Some(planted) = planted {
        tracing::warn!(
            "{}: found {planted}; made a directory",
            run.join(UNTIL_DIR).display()
        );
    }
    Ok(dir)
}

/// Reads `until/PID`: the declaration and the file's owner. Anything
/// that is not a regular file of a few bytes is no declaration.
fn read(until: &RunDir, pid: u32) -> Option<(Declaration, u32)> {
    let file = until
        .open_file(&pid.to_string(), Access::READ, None, false)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(256).read_to_string(&mut text).ok()?;
    Some((text.parse().ok()?, meta.uid()))
}

/// Returns the holders `pids` of `disabled` (device `dev`, inode `ino`)
/// with their declarations when **every** one has a valid declaration
/// (`Declaration::valid_for`), else `None`: one untimed holder, or one
/// lsusd cannot name (`pids` empty), keeps the block.
pub fn all_timed(until: &RunDir, dev: u64, ino: u64, pids: &[u32]) -> Option<Vec<Timed>> {
    if pids.is_empty() {
        return None;
    }
    let locks = proclocks::holders(dev, ino).ok()?;
    pids.iter()
        .map(|&pid| {
            let (declared, owner) = read(until, pid)?;
            let count = locks.iter().filter(|h| h.pid == pid).count();
            declared
                .valid_for(pid, owner, ino, count)
                .then_some(Timed { pid, declared })
        })
        .collect()
}

/// Returns when the last of `timed` expires.
pub fn last_deadline(timed: &[Timed]) -> Option<SystemTime> {
    timed.iter().map(|t| t.declared.deadline).max()
}
