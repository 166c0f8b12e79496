//! Forced requests (doc/protocol.md §12): `RUN/force/request`.
//!
//! `RUN/force` is a directory of mode 2770 (tmpfiles.d; 0770 when lsusd
//! makes it in a run directory without the set-group-ID bit), owned by
//! lsusd's user (root)
//! and the group `suspend-force` (`--force-group`): the kernel lets only
//! root and that group's members create a file in it, so nobody else can
//! force a suspend. A forced request is the file `request` in it, holding
//! the reason given (text, the first [`WHY_MAX`] bytes count). lsusd reads
//! it only through the descriptor of the directory it made, so a member of
//! `suspend` who renames `RUN/force` away and puts a directory of their
//! own in its place forces nothing: lsusd moves that one aside and makes
//! its own again.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use lsus_proto::rundir::{Access, RunDir, RunDirError, FORCE, FORCE_REQUEST};

/// How much of the reason is read.
pub const WHY_MAX: usize = 256;

/// The directory of forced requests.
#[derive(Debug)]
pub struct ForceDir {
    dir: RunDir,
    gid: u32,
}

/// A forced request found in the directory.
#[derive(Debug)]
pub struct Forced {
    /// The reason given (`why=`), trimmed; `?` when empty.
    pub why: String,
    /// The owner of the file: who asked (`by=`).
    pub uid: u32,
    file: File,
}

/// The group `spec` names (a name or a number). A name that does not
/// exist gives `None`.
pub fn resolve_group(spec: &str) -> Option<u32> {
    if let Ok(gid) = spec.parse::<u32>() {
        return Some(gid);
    }
    nix::unistd::Group::from_name(spec)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

impl ForceDir {
    /// Makes `RUN/force` lsusd's own: anything else at the name (a file, a
    /// link, a directory of another user) is moved aside and logged; then
    /// the directory is given group `gid` and the permission bits 0770 (the
    /// set-group-ID bit is inherited from a set-group-ID run directory, or
    /// set by tmpfiles.d). When the group cannot be given (lsusd without
    /// `CAP_CHOWN`, not a member of it) the directory is made 0700: only
    /// root may force. A request left from before is removed, never
    /// honoured.
    pub fn setup(run: &RunDir, gid: u32) -> Result<ForceDir, RunDirError> {
        let euid = nix::unistd::geteuid().as_raw();
        for _ in 0..4 {
            if let Some(st) = run.stat(FORCE)? {
                let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                if !is_dir || st.st_uid != euid {
                    if let Some(planted) = run.move_aside(FORCE)? {
                        tracing::warn!(
                            "{}: found {planted}; made lsusd's own",
                            run.join(FORCE).display()
                        );
                    }
                }
            }
            let (dir, planted) = run.subdir_replacing(FORCE, Some(0o770))?;
            if let Some(planted) = planted {
                tracing::warn!(
                    "{}: found {planted}; made lsusd's own",
                    run.join(FORCE).display()
                );
            }
            let st =
                nix::sys::stat::fstat(dir.fd().as_raw_fd()).map_err(|e| err("stat", run, e))?;
            if st.st_uid != euid {
                // Replaced between the look and the open: again.
                continue;
            }
            if st.st_gid != gid {
                if let Err(e) = nix::unistd::fchown(dir.fd().as_raw_fd(), None, Some(gid.into())) {
                    // Fail closed: without its group the directory is
                    // root's alone (root without CAP_CHOWN may not give a
                    // group it is not in: let tmpfiles.d make it).
                    tracing::warn!(
                        "cannot give {} group {gid} ({e}); only root may force suspend \
                         (mode 0700)",
                        run.join(FORCE).display()
                    );
                    nix::sys::stat::fchmod(
                        dir.fd().as_raw_fd(),
                        nix::sys::stat::Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| err("set the mode of", run, e))?;
                    let force = ForceDir { dir, gid };
                    force.done();
                    return Ok(force);
                }
            }
            // The permission bits only: the set-group-ID bit comes from a
            // set-group-ID run directory, or from tmpfiles.d, and asking
            // for it fails under RestrictSUIDSGID= (systemd/README.md).
            if st.st_mode & 0o777 != 0o770 {
                let keep = st.st_mode & libc::S_ISGID;
                nix::sys::stat::fchmod(
                    dir.fd().as_raw_fd(),
                    nix::sys::stat::Mode::from_bits_truncate(0o770 | keep),
                )
                .map_err(|e| err("set the mode of", run, e))?;
            }
            let force = ForceDir { dir, gid };
            force.done();
            return Ok(force);
        }
        Err(err("make", run, nix::errno::Errno::EAGAIN))
    }

    /// Returns the directory's path.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Returns true if and only if `RUN/force` still names this directory.
    pub fn intact(&self, run: &RunDir) -> bool {
        run.names(FORCE, self.dir.fd()).unwrap_or(false)
    }

    /// Makes the directory again when `RUN/force` no longer names it
    /// (removed or replaced by a member of `suspend`). Returns true when
    /// it did.
    pub fn repair(&mut self, run: &RunDir) -> Result<bool, RunDirError> {
        if self.intact(run) {
            return Ok(false);
        }
        tracing::warn!(
            "{} was removed or replaced; making it again",
            run.join(FORCE).display()
        );
        *self = ForceDir::setup(run, self.gid)?;
        Ok(true)
    }

    /// Returns the forced request, if one is there. Anything at the name
    /// that is not a regular file is removed (moved aside when it cannot
    /// be), and logged.
    pub fn look(&self) -> Option<Forced> {
        let mut file = match self.dir.open_file(FORCE_REQUEST, Access::READ, None, false) {
            Ok(file) => file,
            Err(e) if e.errno() == Some(libc::ENOENT) => return None,
            Err(e) => {
                tracing::warn!("ignoring {}: {e}", self.dir.join(FORCE_REQUEST).display());
                self.done();
                return None;
            }
        };
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            tracing::warn!(
                "ignoring {}: not a regular file",
                self.dir.join(FORCE_REQUEST).display()
            );
            self.done();
            return None;
        }
        let mut buf = Vec::with_capacity(WHY_MAX);
        let _ = (&mut file).take(WHY_MAX as u64).read_to_end(&mut buf);
        let why = String::from_utf8_lossy(&buf).trim().to_string();
        Some(Forced {
            why: if why.is_empty() { "?".into() } else { why },
            uid: meta.uid(),
            file,
        })
    }

    /// Returns true if and only if `forced` is still at its name (not
    /// withdrawn).
    pub fn still_there(&self, forced: &Forced) -> bool {
        self.dir.names(FORCE_REQUEST, &forced.file).unwrap_or(false)
    }

    /// Removes the request (at the end of the attempt, or one left from
    /// before).
    pub fn done(&self) {
        match self.dir.remove_any(FORCE_REQUEST) {
            Ok(None) => {}
            Ok(Some(planted)) => tracing::warn!(
                "{} could not be removed: {planted}",
                self.dir.join(FORCE_REQUEST).display()
            ),
            Err(e) => tracing::error!("{e}"),
        }
    }
}

fn err(op: &'static str, run: &RunDir, e: nix::errno::Errno) -> RunDirError {
    RunDirError {
        op,
        path: run.join(FORCE),
        source: e.into(),
    }
}
