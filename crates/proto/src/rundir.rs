//! The run directory: where lsusd and its clients meet.
//!
//! Every file is opened relative to a descriptor of the directory and never
//! through a symbolic link, so a link planted in the run directory cannot
//! make a daemon running as root write somewhere else.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::UnlinkatFlags;

/// The default run directory (the original's `/var/run/suspend`).
pub const DEFAULT_RUN_DIR: &str = "/run/suspend";
/// Environment variable naming the run directory, for daemons and clients.
pub const RUN_DIR_ENV: &str = "LSUSD_RUN_DIR";

/// A shared lock on it blocks suspend; a read of it aborts an attempt.
pub const DISABLED: &str = "disabled";
/// Exists and locked: suspend whenever nothing blocks.
pub const IMMEDIATE: &str = "immediate";
/// Exists: try one suspend.
pub const REQUEST: &str = "request";
/// The watchers' file for the current awake cycle.
pub const WATCHING: &str = "watching";
/// The watchers' file for the next awake cycle.
pub const WATCHING_NEXT: &str = "watching-next";
/// The outcome of the last attempt (an addition of the port).
pub const OUTCOME: &str = "outcome";
/// The last outcomes, oldest first, one record line each (an addition of
/// the port, bounded; see `lsusctl history`), in [`LOG_DIR`].
pub const HISTORY: &str = "history";
/// lsused's socket.
pub const REGISTRATION: &str = "registration";
/// wakealarmd's socket.
pub const WAKEALARM: &str = "wakealarm";
/// Subdirectory where files are prepared before they are renamed into
/// the run directory (see [`RunDir::write_atomically`]).
pub const STAGING: &str = ".staging";
/// Subdirectory for records that readers look up now and then (the
/// history): changes there wake no watcher of the run directory.
pub const LOG_DIR: &str = "log";
/// Subdirectory where the daemons publish what they report: the outcome
/// record and the status files (see [`RunDir::publish`]). A change there
/// wakes no watcher of the run directory; `RUN/NAME` is a symbolic link to
/// `records/NAME` for the readers of the old paths (see
/// [`RunDir::link_published`]).
pub const RECORDS: &str = "records";
/// Mode of [`RECORDS`]: every daemon of the group writes its files there
/// (lsused runs as a user of its own), as in [`STAGING`].
pub const RECORDS_MODE: u32 = 0o770;

/// Subdirectory for forced requests (doc/protocol.md §12): mode 2770,
/// owned by root and the group `suspend-force`, so that the kernel lets
/// only root and that group's members create a file in it.
pub const FORCE: &str = "force";
/// In [`FORCE`]: exists = suspend once even over a block; holds the
/// reason given, as text.
pub const FORCE_REQUEST: &str = "request";
/// The group whose members may force suspend (sysusers.d).
pub const FORCE_GROUP: &str = "suspend-force";

/// Returns the run directory to use: `flag` if given, else `$LSUSD_RUN_DIR`
/// if set and not empty, else [`DEFAULT_RUN_DIR`].
pub fn resolve(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    match std::env::var_os(RUN_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_RUN_DIR),
    }
}

/// An operation on the run directory failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}: {source}", path.display())]
pub struct RunDirError {
    /// What was being done ("open", "create", "rename", …).
    pub op: &'static str,
    /// The path concerned.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl RunDirError {
    /// Returns the `errno` behind the error, if any.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

/// What stood at a name where a regular file (or a directory) was
/// expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// A symbolic link (never followed).
    Symlink,
    /// A directory.
    Directory,
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
    /// A device node.
    Device,
    /// A regular file (where a directory was expected).
    File,
}

impl Replaced {
    /// Returns the kind of file that `st_mode` describes.
    pub fn of(mode: u32) -> Replaced {
        match SFlag::from_bits_truncate(mode) & SFlag::S_IFMT {
            SFlag::S_IFLNK => Replaced::Symlink,
            SFlag::S_IFDIR => Replaced::Directory,
            SFlag::S_IFIFO => Replaced::Fifo,
            SFlag::S_IFSOCK => Replaced::Socket,
            SFlag::S_IFREG => Replaced::File,
            _ => Replaced::Device,
        }
    }

    /// Returns one word for the kind, as used in a moved-aside name.
    pub fn word(self) -> &'static str {
        match self {
            Replaced::Symlink => "symlink",
            Replaced::Directory => "directory",
            Replaced::Fifo => "fifo",
            Replaced::Socket => "socket",
            Replaced::Device => "device",
            Replaced::File => "file",
        }
    }
}

impl std::fmt::Display for Replaced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Replaced::Symlink => "a symbolic link",
            Replaced::Directory => "a directory",
            Replaced::Fifo => "a FIFO",
            Replaced::Socket => "a socket",
            Replaced::Device => "a device node",
            Replaced::File => "a regular file",
        })
    }
}

/// Something that stood at a name a daemon writes, and was moved aside
/// (renamed to `NAME.planted-KIND.EPOCH`, never followed, never deleted:
/// its owner may want it back, and an administrator may want to know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    /// What it was.
    pub kind: Replaced,
    /// Who owned it.
    pub uid: u32,
    /// Its name now, in the same directory.
    pub moved_to: String,
}

impl std::fmt::Display for Planted {
    /// "a directory owned by alice (uid 1000), moved aside to
    /// disabled.planted-directory.1764067200"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.uid))
            .ok()
            .flatten()
            .map(|u| u.name);
        write!(f, "{} owned by ", self.kind)?;
        match user {
            Some(name) => write!(f, "{name} (uid {})", self.uid)?,
            None => write!(f, "uid {}", self.uid)?,
        }
        write!(f, ", moved aside to {}", self.moved_to)
    }
}

/// How to open a file in the run directory.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    flags: OFlag,
}

impl Access {
    /// Read only.
    pub const READ: Access = Access {
        flags: OFlag::O_RDONLY,
    };
    /// Write only.
    pub const WRITE: Access = Access {
        flags: OFlag::O_WRONLY,
    };
    /// Read and write.
    pub const READ_WRITE: Access = Access {
        flags: OFlag::O_RDWR,
    };
}

/// An open run directory.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    dir: OwnedFd,
    /// Whether [`RunDir::write_atomically`] prepares files in [`STAGING`]:
    /// in the run directory itself, which lsusd's watchers watch; not in
    /// a subdirectory, which nobody watches.
    staged: bool,
}

fn io_err(op: &'static str, path: PathBuf, errno: Errno) -> RunDirError {
    RunDirError {
        op,
        path,
        source: io::Error::from_raw_os_error(errno as i32),
    }
}

/// Writes all of `contents` to `file` (named `path` in errors).
fn write_all(mut file: impl io::Write, contents: &[u8], path: PathBuf) -> Result<(), RunDirError> {
    file.write_all(contents).map_err(|source| RunDirError {
        op: "write",
        path,
        source,
    })
}

impl RunDir {
    /// Opens an existing run directory.
    ///
    /// Fails if `path` does not exist, is not a directory or cannot be read.
    pub fn open(path: impl Into<PathBuf>) -> Result<RunDir, RunDirError> {
        let path = path.into();
        let fd = nix::fcntl::open(
            &path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open run directory", path.clone(), e))?;
        // SAFETY: `open` just returned this descriptor and nothing else owns it.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RunDir {
            path,
            dir,
            staged: true,
        })
    }

    /// Opens the subdirectory `name`, never through a symbolic link. With
    /// `create`, a missing one is made with those permission bits (see
    /// [`give_mode`]: the set-group-ID bit is never asked for, a
    /// subdirectory of a set-group-ID directory inherits it), and anything
    /// else standing at the name is moved aside first (see
    /// [`RunDir::subdir_replacing`]); without, a missing one is an `ENOENT`
    /// error.
    pub fn subdir(&self, name: &str, create: Option<u32>) -> Result<RunDir, RunDirError> {
        self.subdir_replacing(name, create).map(|(dir, _)| dir)
    }

    /// As [`RunDir::subdir`], and returns what was moved aside, if anything,
    /// so that the caller can log it.
    pub fn subdir_replacing(
        &self,
        name: &str,
        create: Option<u32>,
    ) -> Result<(RunDir, Option<Planted>), RunDirError> {
        let mut planted = None;
        let fd = match (self.subdir_fd(name, create), create) {
            (Err(e), Some(_)) if matches!(e.errno(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                planted = self.move_aside(name)?;
                self.subdir_fd(name, create)
            }
            (other, _) => other,
        }?;
        let dir = RunDir {
            path: self.join(name),
            dir: fd,
            staged: false,
        };
        Ok((dir, planted))
    }

    fn subdir_fd(&self, name: &str, create: Option<u32>) -> Result<OwnedFd, RunDirError> {
        let open = || {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = nix::fcntl::openat(self.raw(), name, flags, Mode::empty())
                .map_err(|e| io_err("open", self.join(name), e))?;
            // SAFETY: `openat` just returned this descriptor and nothing else owns it.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        // Usually it exists: one openat, no mkdirat, on this hot path.
        let missing: RunDirError = match open() {
            Ok(fd) => return Ok(fd),
            Err(e) => e,
        };
        let (Some(libc::ENOENT), Some(mode)) = (missing.errno(), create) else {
            return Err(missing);
        };
        match nix::sys::stat::mkdirat(self.raw(), name, perm_bits(mode)) {
            Ok(()) => {
                let fd = open()?;
                if let Err(e) = give_mode(fd.as_fd(), mode) {
                    // Leave no directory with the wrong mode behind: the
                    // next call tries again.
                    let _ = nix::unistd::unlinkat(self.raw(), name, UnlinkatFlags::RemoveDir);
                    return Err(io_err("set the mode of", self.join(name), e));
                }
                Ok(fd)
            }
            Err(Errno::EEXIST) => open(),
            Err(e) => Err(io_err("create", self.join(name), e)),
        }
    }

    /// Creates the run directory (and its parents) if needed, with `mode`
    /// on the last component when it is created, then opens it.
    pub fn create(path: impl Into<PathBuf>, mode: u32) -> Result<RunDir, RunDirError> {
        use std::os::unix::fs::DirBuilderExt;
        let path = path.into();
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|source| RunDirError {
                    op: "create",
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
        }
        match std::fs::DirBuilder::new().mode(mode & 0o777).create(&path) {
            Ok(()) => {
                // The umask may have narrowed the mode; the group needs it.
                let dir = RunDir::open(&path)?;
                give_mode(dir.fd(), mode)
                    .map_err(|e| io_err("set the mode of", path.clone(), e))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(RunDirError {
                    op: "create",
                    path,
                    source,
                })
            }
        }
        RunDir::open(path)
    }

    /// Returns the directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the path of `name` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn raw(&self) -> Option<i32> {
        Some(self.dir.as_raw_fd())
    }

    /// Opens `name` without following a symbolic link.
    ///
    /// With `create`, a missing file is created with that mode. The open is
    /// non-blocking, so a FIFO planted at the name cannot hang the caller.
    /// Returns the raw error (ELOOP for a link, ENOENT when missing…).
    pub fn open_file(
        &self,
        name: &str,
        access: Access,
        create: Option<u32>,
        truncate: bool,
    ) -> Result<File, RunDirError> {
        let mut flags = access.flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        if create.is_some() {
            flags |= OFlag::O_CREAT;
        }
        if truncate {
            flags |= OFlag::O_TRUNC;
        }
        self.openat(name, flags, create.unwrap_or(0))
    }

    fn openat(&self, name: &str, flags: OFlag, mode: u32) -> Result<File, RunDirError> {
        let fd = loop {
            match nix::fcntl::openat(self.raw(), name, flags, Mode::from_bits_truncate(mode)) {
                Err(Errno::EINTR) => continue,
                other => break other,
            }
        }
        .map_err(|e| io_err("open", self.join(name), e))?;
        // SAFETY: `openat` just returned this descriptor and nothing else owns it.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Opens `name` as a regular file, creating it with `mode` if missing.
    ///
    /// Whatever else stands at the name (a symbolic link, a directory, a
    /// FIFO, a socket…) is moved aside first (see [`RunDir::move_aside`])
    /// and a fresh regular file is created; what was moved is returned so
    /// the caller can log it. A link's target is never touched.
    pub fn open_regular(
        &self,
        name: &str,
        access: Access,
        mode: u32,
        truncate: bool,
    ) -> Result<(File, Option<Planted>), RunDirError> {
        let mut planted = None;
        for _ in 0..4 {
            // Never O_TRUNC: on a file that is empty already it is still an
            // IN_MODIFY in the run directory, which wakes every watcher.
            match self.open_file(name, access, Some(mode), false) {
                Ok(file) => {
                    let st = nix::sys::stat::fstat(file.as_raw_fd())
                        .map_err(|e| io_err("stat", self.join(name), e))?;
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG {
                        if truncate && st.st_size > 0 {
                            nix::unistd::ftruncate(&file, 0)
                                .map_err(|e| io_err("truncate", self.join(name), e))?;
                        }
                        return Ok((file, planted));
                    }
                    planted = self.move_aside(name)?.or(planted);
                }
                // A link (ELOOP), a directory (EISDIR), a FIFO without a
                // reader or a socket (ENXIO).
                Err(e) if matches!(e.errno(), Some(libc::ELOOP | libc::EISDIR | libc::ENXIO)) => {
                    planted = self.move_aside(name)?.or(planted);
                }
                Err(e) => return Err(e),
            }
        }
        Err(io_err("replace", self.join(name), Errno::EAGAIN))
    }

    /// Renames whatever stands at `name` to `NAME.planted-KIND.EPOCH` (with
    /// `-N` added if that is taken), in the same directory, never
    /// replacing anything. Returns what was moved, or `None` if nothing
    /// stands at `name`.
    ///
    /// Used for anything that is not what a daemon expects at a name it
    /// writes: a non-empty directory cannot be removed at all, and deleting
    /// another user's FIFO, socket or files would destroy what may be
    /// evidence or somebody's work. The new name says what happened.
    pub fn move_aside(&self, name: &str) -> Result<Option<Planted>, RunDirError> {
        let Some(st) = self.stat(name)? else {
            return Ok(None);
        };
        let kind = Replaced::of(st.st_mode);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for n in 0..100u32 {
            let new = match n {
                0 => format!("{name}.planted-{}.{stamp}", kind.word()),
                n => format!("{name}.planted-{}.{stamp}-{n}", kind.word()),
            };
            let flags = nix::fcntl::RenameFlags::RENAME_NOREPLACE;
            match nix::fcntl::renameat2(self.raw(), name, self.raw(), new.as_str(), flags) {
                Ok(()) => {
                    return Ok(Some(Planted {
                        kind,
                        uid: st.st_uid,
                        moved_to: new,
                    }))
                }
                Err(Errno::EEXIST | Errno::ENOTEMPTY) => continue,
                Err(Errno::ENOENT) => return Ok(None),
                Err(e) => return Err(io_err("move aside", self.join(name), e)),
            }
        }
        Err(io_err("move aside", self.join(name), Errno::EEXIST))
    }

    /// Returns the status of `name` (not following a link), or `None` if
    /// it does not exist.
    pub fn stat(&self, name: &str) -> Result<Option<FileStat>, RunDirError> {
        match nix::sys::stat::fstatat(self.raw(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(io_err("stat", self.join(name), e)),
        }
    }

    /// Returns true if and only if `name` exists (of any type).
    pub fn exists(&self, name: &str) -> Result<bool, RunDirError> {
        Ok(self.stat(name)?.is_some())
    }

    /// Returns true if and only if the path `name` still names the file
    /// open at `file` (same device and inode) and that file has links.
    pub fn names(&self, name: &str, file: impl AsFd) -> Result<bool, RunDirError> {
        let open = nix::sys::stat::fstat(file.as_fd().as_raw_fd())
            .map_err(|e| io_err("stat", self.join(name), e))?;
        Ok(match self.stat(name)? {
            Some(at) => open.st_nlink > 0 && at.st_dev == open.st_dev && at.st_ino == open.st_ino,
            None => false,
        })
    }

    /// Removes the file `name`. Returns false if it did not exist.
    pub fn remove(&self, name: &str) -> Result<bool, RunDirError> {
        match nix::unistd::unlinkat(self.raw(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(io_err("remove", self.join(name), e)),
        }
    }

    /// Removes `name` if it still names `file` (so a file created anew by
    /// someone else in the meantime is left alone). Returns true if removed.
    pub fn remove_if_names(&self, name: &str, file: impl AsFd) -> Result<bool, RunDirError> {
        if self.names(name, file)? {
            self.remove(name)
        } else {
            Ok(false)
        }
    }

    /// Removes `name` whatever it is (file, link, FIFO, socket, empty
    /// directory). Missing is fine. A directory that is not empty cannot be
    /// removed: it is moved aside ([`RunDir::move_aside`]) and returned, so
    /// the caller can log it.
    pub fn remove_any(&self, name: &str) -> Result<Option<Planted>, RunDirError> {
        match nix::unistd::unlinkat(self.raw(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(None),
            Err(Errno::EISDIR) | Err(Errno::EPERM) => {
                match nix::unistd::unlinkat(self.raw(), name, UnlinkatFlags::RemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => Ok(None),
                    Err(Errno::ENOTEMPTY | Errno::EEXIST) => self.move_aside(name),
                    Err(e) => Err(io_err("remove", self.join(name), e)),
                }
            }
            Err(e) => Err(io_err("remove", self.join(name), e)),
        }
    }

    /// Atomically renames `from` over `to`.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), RunDirError> {
        nix::fcntl::renameat(self.raw(), from, self.raw(), to)
            .map_err(|e| io_err("rename", self.join(from), e))
    }

    /// Writes `contents` to `name` atomically: a temporary file is written
    /// and renamed over `name`, so a reader sees the old or the new content.
    ///
    /// In the run directory, the temporary file is written in the
    /// subdirectory [`STAGING`], out of sight of the inotify watches on it, so its watchers
    /// see one `IN_MOVED_TO` and no `IN_MODIFY`: every event in the run
    /// directory wakes every watcher of lsusd. Where the subdirectory cannot
    /// be used (something else stands at its name), the temporary file is
    /// written in the run directory itself. A stale temporary file is
    /// removed first and never written through.
    ///
    /// A directory standing at `name` (a rename cannot replace it) is moved
    /// aside ([`RunDir::move_aside`]) and returned, so the caller can log
    /// it; a FIFO, socket or link there is replaced by the rename itself.
    pub fn write_atomically(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<Option<Planted>, RunDirError> {
        let staging = self.staging();
        let staging = staging.as_ref().map(|fd| (fd.as_fd(), self.join(STAGING)));
        self.write_staged(staging, name, contents, mode)
    }

    /// As [`RunDir::write_atomically`], with the temporary file in
    /// `staging` (a directory on the same file system, and its path for
    /// errors), or in this directory when `None`.
    fn write_staged(
        &self,
        staging: Option<(BorrowedFd<'_>, PathBuf)>,
        name: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<Option<Planted>, RunDirError> {
        let tmp = format!(".{name}.tmp");
        let (dir, dir_path) = match &staging {
            Some((fd, path)) => (Some(fd.as_raw_fd()), path.clone()),
            None => (self.raw(), self.path.clone()),
        };
        let path = || dir_path.join(&tmp);
        match nix::unistd::unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(io_err("remove", path(), e)),
        }
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(dir, tmp.as_str(), flags, Mode::from_bits_truncate(mode))
            .map_err(|e| io_err("create", path(), e))?;
        // SAFETY: `openat` just returned this descriptor and nothing else owns it.
        let file = unsafe { File::from_raw_fd(fd) };
        write_all(file, contents, path())?;
        let rename = || nix::fcntl::renameat(dir, tmp.as_str(), self.raw(), name);
        match rename() {
            Ok(()) => Ok(None),
            Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST) => {
                let planted = self.move_aside(name)?;
                rename().map_err(|e| io_err("rename", path(), e))?;
                Ok(planted)
            }
            Err(e) => Err(io_err("rename", path(), e)),
        }
    }

    /// Opens [`RECORDS`], making it (mode [`RECORDS_MODE`]) when this
    /// process owns the run directory, as for [`STAGING`]; `None` when it
    /// is missing and not ours to make (an older lsusd, which publishes in
    /// the run directory itself) or something else stands there.
    fn records(&self) -> Option<RunDir> {
        let ours = nix::sys::stat::fstat(self.dir.as_raw_fd())
            .is_ok_and(|st| st.st_uid == nix::unistd::geteuid().as_raw());
        let fd = self.subdir_fd(RECORDS, ours.then_some(RECORDS_MODE)).ok()?;
        Some(RunDir {
            path: self.join(RECORDS),
            dir: fd,
            staged: false,
        })
    }

    /// Makes [`RECORDS`] now (lsusd at start, before the daemons that
    /// publish there run), moving aside whatever else stands at the name.
    pub fn prepare_records(&self) -> Result<Option<Planted>, RunDirError> {
        self.subdir_replacing(RECORDS, Some(RECORDS_MODE))
            .map(|(_, planted)| planted)
    }

    /// Publishes `contents` as `records/NAME` (doc/protocol.md §1.5,
    /// §1.10), atomically: written in [`STAGING`] and renamed into
    /// [`RECORDS`], so that a watcher of the run directory sees nothing of
    /// it and a watcher of `records` one `IN_MOVED_TO`. Without a
    /// [`RECORDS`] directory (an older lsusd runs) the file is written in
    /// the run directory itself, as before ([`RunDir::write_atomically`]).
    pub fn publish(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<Option<Planted>, RunDirError> {
        let Some(records) = self.records() else {
            return self.write_atomically(name, contents, mode);
        };
        let staging = self.staging();
        let staging = staging.as_ref().map(|fd| (fd.as_fd(), self.join(STAGING)));
        records.write_staged(staging, name, contents, mode)
    }

    /// Reads the published file `name`: `records/NAME`, else a regular
    /// `RUN/NAME` (written by an older daemon); `None` when neither
    /// exists. The link of [`RunDir::link_published`] is never followed.
    pub fn read_published(&self, name: &str) -> Result<Option<String>, RunDirError> {
        match self.subdir(RECORDS, None) {
            Ok(records) => {
                if let Some(text) = records.read_to_string(name)? {
                    return Ok(Some(text));
                }
            }
            Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => {}
            Err(e) => return Err(e),
        }
        self.read_to_string(name)
    }

    /// Reads the regular file `name` whole; `None` when it is missing or
    /// is a symbolic link (never followed).
    pub fn read_to_string(&self, name: &str) -> Result<Option<String>, RunDirError> {
        use std::io::Read;
        let mut file = match self.open_file(name, Access::READ, None, false) {
            Ok(file) => file,
            Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::ELOOP)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|source| RunDirError {
                op: "read",
                path: self.join(name),
                source,
            })?;
        Ok(Some(text))
    }

    /// Removes the published file `name` (`records/NAME`, and a regular
    /// `RUN/NAME` an older version of the daemon left) and the link
    /// [`RunDir::link_published`] made: a daemon that stops publishes
    /// nothing. Returns true if anything was removed.
    pub fn unpublish(&self, name: &str) -> Result<bool, RunDirError> {
        let mut removed = match self.subdir(RECORDS, None) {
            Ok(records) => records.remove(name)?,
            Err(_) => false,
        };
        let ours = match self.stat(name)? {
            Some(st) => match Replaced::of(st.st_mode) {
                Replaced::Symlink => self.links_to_record(name),
                Replaced::File => true,
                _ => false,
            },
            None => false,
        };
        if ours {
            removed |= self.remove(name)?;
        }
        Ok(removed)
    }

    /// Returns true if `RUN/NAME` is the link [`RunDir::link_published`]
    /// makes.
    fn links_to_record(&self, name: &str) -> bool {
        nix::fcntl::readlinkat(self.raw(), name)
            .is_ok_and(|t| t.as_bytes() == record_link(name).as_bytes())
    }

    /// Makes `RUN/NAME` a symbolic link to `records/NAME` (doc/protocol.md
    /// §1.5), so that whoever reads the old path reads the published file;
    /// a daemon calls it once, at start-up. A link that is right already is
    /// left alone (no event in the run directory). A regular file (from an
    /// older daemon) is replaced atomically by the link, its content first
    /// published when `records/NAME` does not exist yet. Anything else
    /// there (another link, a directory, a FIFO…) is moved aside
    /// ([`RunDir::move_aside`]) and returned, so that the caller can log
    /// it. Without a [`RECORDS`] directory nothing is done.
    pub fn link_published(&self, name: &str, mode: u32) -> Result<Option<Planted>, RunDirError> {
        let Some(records) = self.records() else {
            return Ok(None);
        };
        let target = record_link(name);
        let mut planted = None;
        match self.stat(name)? {
            None => {}
            Some(st) if Replaced::of(st.st_mode) == Replaced::Symlink => {
                if self.links_to_record(name) {
                    return Ok(None);
                }
                planted = self.move_aside(name)?;
            }
            Some(st) if Replaced::of(st.st_mode) == Replaced::File => {
                let text = match records.stat(name)? {
                    None => self.read_to_string(name)?,
                    Some(_) => None,
                };
                if let Some(text) = text {
                    self.publish(name, text.as_bytes(), mode)?;
                }
            }
            Some(_) => planted = self.move_aside(name)?,
        }
        // Made under a temporary name and renamed: a reader of the old
        // path never finds it missing.
        let tmp = format!(".{name}.link");
        let staging = self.staging();
        let dir = staging.as_ref().map_or(self.raw(), |d| Some(d.as_raw_fd()));
        let path = || match &staging {
            Some(_) => self.join(STAGING).join(&tmp),
            None => self.join(&tmp),
        };
        match nix::unistd::unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(io_err("remove", path(), e)),
        }
        nix::unistd::symlinkat(target.as_str(), dir, tmp.as_str())
            .map_err(|e| io_err("create", path(), e))?;
        let rename = || nix::fcntl::renameat(dir, tmp.as_str(), self.raw(), name);
        match rename() {
            Ok(()) => Ok(planted),
            Err(Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST) => {
                planted = self.move_aside(name)?.or(planted);
                rename().map_err(|e| io_err("rename", path(), e))?;
                Ok(planted)
            }
            Err(e) => {
                let _ = nix::unistd::unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
                Err(io_err("rename", path(), e))
            }
        }
    }

    /// Opens (creating it if need be) the subdirectory [`STAGING`]; `None`
    /// if something else stands there, it cannot be made, or this is not
    /// a directory that needs it.
    fn staging(&self) -> Option<OwnedFd> {
        if !self.staged {
            return None;
        }
        // Made by the owner of the run directory only (lsusd): a staging
        // directory made by another user (lsused) would be that user's,
        // and lsusd, root without CAP_DAC_OVERRIDE under its unit, could
        // not write in it. Group-writable like the run directory: lsused,
        // running as another user of its group, writes its status file
        // through it.
        let ours = nix::sys::stat::fstat(self.dir.as_raw_fd())
            .is_ok_and(|st| st.st_uid == nix::unistd::geteuid().as_raw());
        self.subdir_fd(STAGING, ours.then_some(0o770)).ok()
    }

    /// Makes the subdirectory [`STAGING`] now if it is missing (lsusd calls
    /// it at start, before the daemons that stage their files through it
    /// run). Failing is not fatal: [`RunDir::write_atomically`] then
    /// prepares its files in the run directory itself.
    pub fn prepare_staging(&self) -> Result<(), RunDirError> {
        self.subdir_fd(STAGING, Some(0o770)).map(drop)
    }

    /// Borrows the directory's descriptor (for `inotify` or `fstat`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

/// The permission bits of `mode` (`rwx` for owner, group, others): what
/// `mkdirat` is given. Never the set-user-ID, set-group-ID or sticky bit:
/// under systemd's `RestrictSUIDSGID=yes` any `mkdir`, `chmod` or `open`
/// whose mode carries S_ISUID or S_ISGID fails with EPERM, and a directory
/// made in a set-group-ID directory (the run directory) inherits S_ISGID
/// from it anyway, by the kernel's own rule.
fn perm_bits(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode & 0o777)
}

/// Gives the directory just made at `fd` the permission bits of `mode`,
/// which the umask may have narrowed. Nothing is changed (no `fchmod` at
/// all) when the bits are right already. Otherwise, since `chmod` sets
/// S_ISGID on a directory exactly as given, the bit the directory
/// inherited is passed along so it is not cleared; under
/// `RestrictSUIDSGID=yes` that `fchmod` fails with EPERM, so a unit whose
/// `UMask=` narrows what lsusd asks for cannot work (systemd/README.md).
fn give_mode(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    let want = mode & 0o777;
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    let have = st.st_mode & 0o7777;
    if have & 0o777 == want {
        return Ok(());
    }
    let keep = have & libc::S_ISGID;
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(want | keep))
}

/// The target of the link `RUN/NAME`: `records/NAME`, relative, so that it
/// holds wherever the run directory is (also seen from a container).
fn record_link(name: &str) -> String {
    format!("{RECORDS}/{name}")
}

/// Returns true if and only if `name` (an inotify event name) is `wanted`.
pub fn is_name(name: Option<&OsStr>, wanted: &str) -> bool {
    name.is_some_and(|n| n.as_bytes() == wanted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn dir() -> (tempfile::TempDir, RunDir) {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        (t, run)
    }

    #[test]
    fn resolve_prefers_flag_then_env_then_default() {
        assert_eq!(resolve(Some(Path::new("/x"))), PathBuf::from("/x"));
        // The environment is process-wide; only read it here.
        let expected = match std::env::var_os(RUN_DIR_ENV) {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => PathBuf::from(DEFAULT_RUN_DIR),
        };
        assert_eq!(resolve(None), expected);
    }

    #[test]
    fn create_sets_mode_despite_umask() {
        use std::os::unix::fs::PermissionsExt;
        let (_t, run) = dir();
        let mode = std::fs::metadata(run.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o770);
    }

    #[test]
    fn symlink_is_replaced_and_its_target_untouched() {
        let (t, run) = dir();
        let target = t.path().join("precious");
        std::fs::write(&target, b"keep me").unwrap();
        std::os::unix::fs::symlink(&target, run.join("watching-next")).unwrap();
        let (mut f, replaced) = run
            .open_regular("watching-next", Access::READ_WRITE, 0o644, true)
            .unwrap();
        assert_eq!(replaced.map(|p| p.kind), Some(Replaced::Symlink));
        f.write_all(b"x").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
        assert!(!std::fs::symlink_metadata(run.join("watching-next"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn fifo_socket_and_full_directory_are_moved_aside_with_their_owner() {
        let (_t, run) = dir();
        nix::unistd::mkfifo(&run.join("a"), Mode::from_bits_truncate(0o600)).unwrap();
        std::fs::create_dir(run.join("b")).unwrap();
        std::fs::write(run.join("b").join("inside"), b"x").unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(run.join("c")).unwrap();
        let me = nix::unistd::getuid().as_raw();
        for (name, kind) in [
            ("a", Replaced::Fifo),
            ("b", Replaced::Directory),
            ("c", Replaced::Socket),
        ] {
            let (_, p) = run.open_regular(name, Access::WRITE, 0o644, false).unwrap();
            let p = p.unwrap();
            assert_eq!((p.kind, p.uid), (kind, me));
            assert!(p
                .moved_to
                .starts_with(&format!("{name}.planted-{}.", kind.word())));
            assert!(run.stat(&p.moved_to).unwrap().is_some(), "{p}");
            assert!(p.to_string().contains(&format!("uid {me}")), "{p}");
            assert!(std::fs::metadata(run.join(name)).unwrap().is_file());
        }
        // the directory's content is kept
        let moved: Vec<_> = std::fs::read_dir(run.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("b.planted-directory."))
            .collect();
        assert_eq!(moved.len(), 1);
        assert!(run.join(&moved[0]).join("inside").exists());
        // a second planting gets a name of its own
        std::fs::remove_file(run.join("b")).unwrap();
        std::fs::create_dir(run.join("b")).unwrap();
        std::fs::write(run.join("b").join("inside"), b"y").unwrap();
        let (_, p) = run.open_regular("b", Access::WRITE, 0o644, false).unwrap();
        assert_ne!(p.unwrap().moved_to, moved[0]);
    }

    #[test]
    fn remove_any_and_write_atomically_move_a_full_directory_aside() {
        let (_t, run) = dir();
        std::fs::create_dir(run.join("request")).unwrap();
        std::fs::write(run.join("request").join("x"), b"").unwrap();
        let p = run.remove_any("request").unwrap().unwrap();
        assert_eq!(p.kind, Replaced::Directory);
        assert!(!run.exists("request").unwrap());
        assert_eq!(run.remove_any("request").unwrap(), None);
        std::fs::create_dir(run.join("outcome")).unwrap();
        std::fs::write(run.join("outcome").join("x"), b"").unwrap();
        let p = run.write_atomically("outcome", b"one\n", 0o644).unwrap();
        assert_eq!(p.map(|p| p.kind), Some(Replaced::Directory));
        assert_eq!(std::fs::read(run.join("outcome")).unwrap(), b"one\n");
    }

    #[test]
    fn names_detects_replacement() {
        let (_t, run) = dir();
        let (f, _) = run.open_regular("x", Access::READ, 0o644, false).unwrap();
        assert!(run.names("x", &f).unwrap());
        run.remove("x").unwrap();
        assert!(!run.names("x", &f).unwrap());
        run.open_regular("x", Access::READ, 0o644, false).unwrap();
        assert!(!run.names("x", &f).unwrap());
        assert!(!run.remove_if_names("x", &f).unwrap());
        assert!(run.exists("x").unwrap());
    }

    #[test]
    fn write_atomically_replaces_content() {
        let (_t, run) = dir();
        run.write_atomically("outcome", b"one\n", 0o644).unwrap();
        run.write_atomically("outcome", b"two\n", 0o644).unwrap();
        let mut s = String::new();
        run.open_file("outcome", Access::READ, None, false)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "two\n");
    }

    /// What a watcher of lsusd (MODIFY and MOVED_TO on the directory) sees
    /// of an atomic write: the rename alone. A link planted as the
    /// temporary file is replaced, its target untouched.
    #[test]
    fn write_atomically_wakes_a_watcher_once() {
        use inotify::{Inotify, WatchMask};
        let (t, run) = dir();
        let target = t.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::create_dir(run.join(STAGING)).unwrap();
        std::os::unix::fs::symlink(&target, run.join(STAGING).join(".outcome.tmp")).unwrap();
        let mut inotify = Inotify::init().unwrap();
        inotify
            .watches()
            .add(run.path(), WatchMask::MODIFY | WatchMask::MOVED_TO)
            .unwrap();
        run.write_atomically("outcome", b"one\n", 0o644).unwrap();
        let mut buf = [0u8; 4096];
        let events: Vec<String> = inotify
            .read_events(&mut buf)
            .unwrap()
            .map(|e| format!("{:?} {:?}", e.mask, e.name))
            .collect();
        assert_eq!(events, ["EventMask(MOVED_TO) Some(\"outcome\")"]);
        assert_eq!(std::fs::read(run.join("outcome")).unwrap(), b"one\n");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert!(!run.join(STAGING).join(".outcome.tmp").exists());
    }

    /// A record published in `records/` is read there, never through the
    /// link at the old path; a regular file at the old path (an older
    /// daemon's) is read when `records/` has none.
    #[test]
    fn published_records_are_read_in_records_and_else_at_the_old_path() {
        let (_t, run) = dir();
        assert_eq!(run.read_published(OUTCOME).unwrap(), None);
        std::fs::write(run.join(OUTCOME), b"old\n").unwrap();
        assert_eq!(
            run.read_published(OUTCOME).unwrap().as_deref(),
            Some("old\n")
        );
        run.prepare_records().unwrap();
        // The older daemon's file moves to records/, the link replaces it.
        assert_eq!(run.link_published(OUTCOME, 0o644).unwrap(), None);
        assert!(std::fs::symlink_metadata(run.join(OUTCOME))
            .unwrap()
            .is_symlink());
        assert_eq!(
            std::fs::read(run.join("records/outcome")).unwrap(),
            b"old\n"
        );
        run.publish(OUTCOME, b"new\n", 0o644).unwrap();
        assert_eq!(
            run.read_published(OUTCOME).unwrap().as_deref(),
            Some("new\n")
        );
        assert_eq!(std::fs::read(run.join(OUTCOME)).unwrap(), b"new\n");
        // Not through the link: without records/outcome, nothing.
        std::fs::remove_file(run.join("records/outcome")).unwrap();
        assert_eq!(run.read_published(OUTCOME).unwrap(), None);
        assert_eq!(run.read_to_string(OUTCOME).unwrap(), None);
    }

    /// What a watcher of RUN sees of a publication: nothing; a right link
    /// is left alone; another link is moved aside, its target untouched.
    #[test]
    fn publishing_is_invisible_in_run_and_links_are_made_once() {
        use inotify::{Inotify, WatchMask};
        let (t, run) = dir();
        run.prepare_staging().unwrap();
        run.prepare_records().unwrap();
        run.link_published("x.status", 0o644).unwrap();
        let mut inotify = Inotify::init().unwrap();
        inotify
            .watches()
            .add(
                run.path(),
                WatchMask::ALL_EVENTS - WatchMask::OPEN - WatchMask::CLOSE_NOWRITE,
            )
            .unwrap();
        run.publish("x.status", b"n=1\n", 0o644).unwrap();
        run.publish("x.status", b"n=2\n", 0o644).unwrap();
        assert_eq!(run.link_published("x.status", 0o644).unwrap(), None);
        let mut buf = [0u8; 4096];
        let events: Vec<String> = match inotify.read_events(&mut buf) {
            Ok(events) => events
                .map(|e| format!("{:?} {:?}", e.mask, e.name))
                .collect(),
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                Vec::new()
            }
        };
        assert_eq!(events, Vec::<String>::new());
        assert_eq!(std::fs::read(run.join("x.status")).unwrap(), b"n=2\n");
        // A link elsewhere is moved aside, never followed.
        let target = t.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        std::fs::remove_file(run.join("x.status")).unwrap();
        std::os::unix::fs::symlink(&target, run.join("x.status")).unwrap();
        let planted = run.link_published("x.status", 0o644).unwrap().unwrap();
        assert_eq!(planted.kind, Replaced::Symlink);
        assert_eq!(std::fs::read(run.join("x.status")).unwrap(), b"n=2\n");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        // Unpublished: the file and our link go, nothing else.
        assert!(run.unpublish("x.status").unwrap());
        assert!(std::fs::symlink_metadata(run.join("x.status")).is_err());
        assert!(run.stat(&planted.moved_to).unwrap().is_some());
    }

    #[test]
    fn without_records_a_daemon_publishes_in_run_as_before() {
        let (_t, run) = dir();
        std::fs::write(run.join(RECORDS), b"not a directory").unwrap();
        // Publishing neither moves it nor fails: the file goes to RUN, and
        // no link is made.
        run.publish("y.status", b"n=1\n", 0o644).unwrap();
        assert_eq!(run.link_published("y.status", 0o644).unwrap(), None);
        assert!(std::fs::metadata(run.join("y.status")).unwrap().is_file());
        assert_eq!(
            run.read_published("y.status").unwrap().as_deref(),
            Some("n=1\n")
        );
        // lsusd moves it aside at start.
        let planted = run.prepare_records().unwrap().unwrap();
        assert_eq!(planted.kind, Replaced::File);
        assert!(run.join(RECORDS).is_dir());
    }

    #[test]
    fn write_atomically_without_its_staging_directory_still_works() {
        let (_t, run) = dir();
        std::fs::write(run.join(STAGING), b"not a directory").unwrap();
        run.write_atomically("outcome", b"one\n", 0o644).unwrap();
        assert_eq!(std::fs::read(run.join("outcome")).unwrap(), b"one\n");
        assert!(!run.exists(".outcome.tmp").unwrap());
    }

    #[test]
    fn the_staging_directory_is_group_writable_despite_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let (_t, run) = dir();
        // A set-group-ID run directory, as tmpfiles.d makes it.
        std::fs::set_permissions(run.path(), std::fs::Permissions::from_mode(0o2770)).unwrap();
        let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o027));
        let result = run.write_atomically("outcome", b"one\n", 0o644);
        nix::sys::stat::umask(old);
        result.unwrap();
        let mode = std::fs::metadata(run.join(STAGING))
            .unwrap()
            .permissions()
            .mode();
        // g+w given back, the inherited S_ISGID kept (chmod would clear it).
        assert_eq!(mode & 0o7777, 0o2770);
    }

    #[test]
    fn subdirs_inherit_the_set_group_id_bit_and_never_invent_it() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let (_t, plain) = dir();
        plain.subdir("log", Some(0o750)).unwrap();
        plain.prepare_staging().unwrap();
        assert_eq!(mode(plain.join("log")), 0o750);
        assert_eq!(mode(plain.join(STAGING)), 0o770);

        let (_t2, run) = dir();
        std::fs::set_permissions(run.path(), std::fs::Permissions::from_mode(0o2770)).unwrap();
        run.subdir("log", Some(0o750)).unwrap();
        run.prepare_staging().unwrap();
        assert_eq!(mode(run.join("log")), 0o2750);
        assert_eq!(mode(run.join(STAGING)), 0o2770);
    }

    #[test]
    fn subdir_is_made_never_followed_and_replaces_what_stands_there() {
        let (t, run) = dir();
        // Without `create`, a missing one is ENOENT.
        let e = run.subdir("log", None).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT));
        // A link planted at the name is removed, its target untouched.
        let target = t.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, run.join("log")).unwrap();
        let log = run.subdir("log", Some(0o750)).unwrap();
        assert!(!std::fs::symlink_metadata(run.join("log"))
            .unwrap()
            .is_symlink());
        log.write_atomically("history", b"x\n", 0o644).unwrap();
        assert_eq!(std::fs::read(run.join("log/history")).unwrap(), b"x\n");
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
        // Nothing staged in a subdirectory: nobody watches it.
        assert!(!run.join("log").join(STAGING).exists());
        // A plain file at the name is replaced too.
        std::fs::remove_dir_all(run.join("log")).unwrap();
        std::fs::write(run.join("log"), b"file").unwrap();
        run.subdir("log", Some(0o750)).unwrap();
        assert!(run.join("log").is_dir());
    }
}
