//! The bench environment: a run directory, a fake sysfs tree whose
//! `power/state` is a FIFO read by the harness, the release daemons and
//! the client processes, and one suspend cycle driven from outside.
//!
//! Every wait has a deadline; when one passes, the error names what was
//! awaited, who still holds `watching` or `disabled`, and the tail of the
//! daemons' logs.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use inotify::{Inotify, WatchMask};
use lsus_proto::rundir::{DISABLED, REQUEST, WATCHING};
use lsus_sys::proclocks;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::error::{plumbing, Context, Error, Result};
use crate::procstat::{self, Sample};

/// How long a daemon may take to say "ready".
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Where the binaries are and where to put the run directory and sysfs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding `lsusd`, `lsused` and `wakealarmd`.
    pub bin_dir: PathBuf,
    /// Run directory to use instead of a temporary one.
    pub run_dir: Option<PathBuf>,
    /// Fake sysfs root to use instead of a temporary one.
    pub sysfs: Option<PathBuf>,
}

/// A daemon started by the harness.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// The times of one suspend cycle driven by [`Env::cycle`].
#[derive(Debug, Clone, Copy)]
pub struct CycleTimes {
    /// From the creation of `request` to the write on `power/state`.
    pub to_state: Duration,
    /// From the creation of `request` to its removal, `watching` replaced.
    pub to_complete: Duration,
}

/// A temporary run directory and sysfs tree, and what runs on them.
pub struct Env {
    tmp: tempfile::TempDir,
    /// The run directory.
    pub run: PathBuf,
    /// The fake sysfs root.
    pub sys: PathBuf,
    bin_dir: PathBuf,
    daemons: Vec<Daemon>,
    clients: Vec<Child>,
    fifo: StateFifo,
    dir_events: Option<Inotify>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Returns the time left until `end` as a poll timeout, rounded up to a
/// whole millisecond so that a wait never spins.
pub fn poll_timeout(end: Instant) -> PollTimeout {
    let left = end.saturating_duration_since(Instant::now());
    let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

/// Waits until `fd` is readable or `end` passes; returns true if readable.
pub fn wait_readable(fd: impl AsFd, end: Instant) -> Result<bool> {
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, poll_timeout(end)) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "poll".into()),
        }
    }
}

/// Returns where the temporary directories go: `/dev/shm` when it is a
/// tmpfs (as `/run` and sysfs are in memory on a real system, while
/// `/tmp` may be a disk file system whose truncations cost hundreds of
/// microseconds), else the usual temporary directory.
pub fn temp_base() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if nix::sys::statfs::statfs(shm)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        && nix::unistd::access(shm, nix::unistd::AccessFlags::W_OK).is_ok()
    {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Returns true if and only if `path` lies on a sysfs mount.
fn on_sysfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::SYSFS_MAGIC)
}

/// Creates the fake sysfs tree under `sys`: `power/state` a FIFO,
/// `power/wakeup_count` and the RTC files regular files. Refuses a real
/// sysfs, where the state write would suspend the machine.
fn make_sysfs(sys: &Path) -> Result<()> {
    if on_sysfs(sys) {
        return plumbing(format!(
            "{} is a real sysfs: the benchmark would suspend this machine; give an empty directory",
            sys.display()
        ));
    }
    let rtc = sys.join("class/rtc/rtc0");
    fs::create_dir_all(sys.join("power")).ctx(|| format!("cannot create {}", sys.display()))?;
    fs::create_dir_all(&rtc).ctx(|| format!("cannot create {}", rtc.display()))?;
    let state = sys.join("power/state");
    match fs::symlink_metadata(&state) {
        Ok(m) if m.file_type().is_fifo() => {}
        Ok(_) => {
            return plumbing(format!(
                "{} exists and is not a FIFO; remove it (the harness makes power/state a FIFO)",
                state.display()
            ))
        }
        Err(_) => nix::unistd::mkfifo(&state, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .ctx(|| format!("cannot make the FIFO {}", state.display()))?,
    }
    let write = |path: PathBuf, text: String| {
        fs::write(&path, text).ctx(|| format!("cannot write {}", path.display()))
    };
    write(sys.join("power/wakeup_count"), "7\n".into())?;
    write(rtc.join("wakealarm"), String::new())?;
    write(rtc.join("since_epoch"), format!("{}\n", now_unix()))?;
    Ok(())
}

/// `SYS/power/state` as the harness sees it: a FIFO held open for reading
/// and writing, so lsusd's `open(O_WRONLY|O_TRUNC)` never blocks and its
/// single `write("mem\n")` wakes the harness at that instant.
struct StateFifo {
    file: File,
}

impl StateFifo {
    fn open(path: &Path) -> Result<StateFifo> {
        // O_RDWR on a FIFO (Linux): the open does not wait for a peer, and
        // with a writer always present a read never sees end-of-file.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .ctx(|| format!("cannot open the FIFO {}", path.display()))?;
        Ok(StateFifo { file })
    }

    /// Reads what is buffered; returns it (empty if nothing).
    fn drain(&mut self) -> Result<Vec<u8>> {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => return Ok(all),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(all),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).ctx(|| "cannot read the power/state FIFO".into()),
            }
        }
    }

    /// Waits for a write; returns when it was seen and what was written,
    /// or `None` when `end` passes first.
    fn wait(&mut self, end: Instant) -> Result<Option<(Instant, Vec<u8>)>> {
        loop {
            let data = self.drain()?;
            if !data.is_empty() {
                return Ok(Some((Instant::now(), data)));
            }
            if !wait_readable(&self.file, end)? {
                return Ok(None);
            }
            let at = Instant::now();
            let data = self.drain()?;
            if !data.is_empty() {
                return Ok(Some((at, data)));
            }
        }
    }
}

/// Sets `PR_SET_PDEATHSIG` so a process dies with the harness. Only
/// async-signal-safe calls: usable between fork and exec.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes integers only and is
    // async-signal-safe.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A pipe whose write end the client processes share as their standard
/// output: each writes one byte when registered (and, for lsused clients,
/// one per `R` sent). The harness counts bytes with a deadline.
pub struct ReadyPipe {
    read: File,
    write: Option<OwnedFd>,
}

impl ReadyPipe {
    /// Creates the pipe.
    pub fn new() -> Result<ReadyPipe> {
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .ctx(|| "cannot create a pipe".into())?;
        // Only our end is non-blocking: clients' writes may wait.
        nix::fcntl::fcntl(
            w.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
        )
        .ctx(|| "fcntl on a pipe".into())?;
        Ok(ReadyPipe {
            read: File::from(r),
            write: Some(w),
        })
    }

    /// Returns a standard output for one more client.
    pub fn stdout(&self) -> Result<Stdio> {
        match &self.write {
            Some(w) => Ok(Stdio::from(w.try_clone().ctx(|| "dup".into())?)),
            None => plumbing("the ready pipe is already closed"),
        }
    }

    /// Closes the harness's copy of the write end (after the last spawn),
    /// so that end-of-file means every client is gone.
    pub fn close_write(&mut self) {
        self.write = None;
    }

    /// Reads whatever is there without waiting; returns how many bytes.
    pub fn drain(&mut self) -> Result<usize> {
        let mut n = 0;
        let mut buf = [0u8; 4096];
        loop {
            match self.read.read(&mut buf) {
                Ok(0) => return Ok(n),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).ctx(|| "cannot read the ready pipe".into()),
            }
        }
    }

    /// Waits until `n` bytes came or `end` passes; returns how many came.
    pub fn wait_for(&mut self, n: usize, end: Instant) -> Result<usize> {
        let mut got = 0;
        let mut buf = [0u8; 4096];
        while got < n {
            match self.read.read(&mut buf[..(n - got).min(4096)]) {
                Ok(0) => return Ok(got), // every client has exited
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !wait_readable(&self.read, end)? {
                        return Ok(got);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).ctx(|| "cannot read the ready pipe".into()),
            }
        }
        Ok(got)
    }
}

impl Env {
    /// Makes the run directory (not yet created: lsusd does) and the fake
    /// sysfs tree.
    pub fn new(opts: &Options) -> Result<Env> {
        let tmp = tempfile::Builder::new()
            .prefix("lsus-bench-")
            .tempdir_in(temp_base())
            .ctx(|| "cannot create a temporary directory".into())?;
        let run = opts
            .run_dir
            .clone()
            .unwrap_or_else(|| tmp.path().join("run"));
        let sys = opts.sysfs.clone().unwrap_or_else(|| tmp.path().join("sys"));
        fs::create_dir_all(tmp.path().join("logs"))
            .ctx(|| format!("cannot create {}/logs", tmp.path().display()))?;
        make_sysfs(&sys)?;
        let fifo = StateFifo::open(&sys.join("power/state"))?;
        Ok(Env {
            tmp,
            run,
            sys,
            bin_dir: opts.bin_dir.clone(),
            daemons: Vec::new(),
            clients: Vec::new(),
            fifo,
            dir_events: None,
        })
    }

    /// Returns the path of `name` in the run directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.run.join(name)
    }

    /// Returns the path of `name` in the harness's own temporary directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn spawn_daemon(&mut self, name: &'static str, args: &[&str]) -> Result<()> {
        let bin = self.bin_dir.join(name);
        self.spawn_daemon_from(name, bin, args)
    }

    fn spawn_daemon_from(&mut self, name: &'static str, bin: PathBuf, args: &[&str]) -> Result<()> {
        if !bin.exists() {
            return plumbing(format!(
                "{} is missing: build the daemons first (cargo build --release --workspace --bins) or give --bin-dir",
                bin.display()
            ));
        }
        let log = self.tmp.path().join(format!("logs/{name}.log"));
        let out = File::create(&log).ctx(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone().ctx(|| "dup".into())?;
        let mut cmd = Command::new(&bin);
        cmd.args(args)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LSUSD_RUN_DIR")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: the closure runs between fork and exec and calls only
        // prctl, which is async-signal-safe; it touches no shared state.
        unsafe {
            cmd.pre_exec(die_with_parent);
        }
        let child = cmd
            .spawn()
            .ctx(|| format!("cannot start {}", bin.display()))?;
        self.daemons.push(Daemon { name, child, log });
        let end = Instant::now() + START_DEADLINE;
        loop {
            let d = self
                .daemons
                .last_mut()
                .ok_or_else(|| Error::Plumbing("no daemon".into()))?;
            // The daemon's own ready line, not any line with the word
            // ("already running").
            let ready = |line: &str| {
                line.split_once(" INFO ")
                    .is_some_and(|(_, message)| message.starts_with("ready: "))
            };
            if fs::read_to_string(&d.log)
                .unwrap_or_default()
                .lines()
                .any(ready)
            {
                return Ok(());
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                return plumbing(format!(
                    "{name} exited at start-up ({status})\n{}",
                    self.log_tail(name, 20)
                ));
            }
            if Instant::now() >= end {
                return plumbing(format!(
                    "{name} did not log \"ready\" within {START_DEADLINE:?}\n{}",
                    self.log_tail(name, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts lsusd on the run directory and the fake sysfs, waits until
    /// it is ready, and starts watching the run directory for the removal
    /// of `request`.
    pub fn start_lsusd(&mut self) -> Result<()> {
        self.start_lsusd_from(None)
    }

    /// As [`Env::start_lsusd`], with the lsusd binary `bin` when given
    /// (another build to compare with) instead of the one in the binary
    /// directory.
    pub fn start_lsusd_from(&mut self, bin: Option<&Path>) -> Result<()> {
        let run = self.run.display().to_string();
        let sys = self.sys.display().to_string();
        let bin = bin.map_or_else(|| self.bin_dir.join("lsusd"), Path::to_path_buf);
        self.spawn_daemon_from("lsusd", bin, &["--run-dir", &run, "--sysfs", &sys])?;
        let ino = Inotify::init().ctx(|| "cannot create an inotify instance".into())?;
        ino.watches()
            .add(&self.run, WatchMask::DELETE)
            .ctx(|| format!("cannot watch {}", self.run.display()))?;
        self.dir_events = Some(ino);
        Ok(())
    }

    /// Starts lsused (lsusd must run) and waits until it is ready.
    pub fn start_lsused(&mut self) -> Result<()> {
        let run = self.run.display().to_string();
        self.spawn_daemon("lsused", &["--run-dir", &run])
    }

    /// Starts wakealarmd (lsusd must run) and waits until it is ready.
    pub fn start_wakealarmd(&mut self) -> Result<()> {
        let run = self.run.display().to_string();
        let sys = self.sys.display().to_string();
        self.spawn_daemon("wakealarmd", &["--run-dir", &run, "--sysfs", &sys])
    }

    /// Returns the PID of daemon `name`.
    pub fn pid(&self, name: &str) -> Result<u32> {
        self.daemons
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.child.id())
            .ok_or_else(|| Error::Plumbing(format!("{name} is not running")))
    }

    /// Samples daemon `name` in `/proc`.
    pub fn sample(&self, name: &str) -> Result<Sample> {
        procstat::sample(self.pid(name)?)
    }

    /// Starts this harness binary as a client process with `args`; its
    /// standard output is `stdout`, its errors go to the clients' log.
    pub fn spawn_client(
        &mut self,
        args: &[String],
        stdout: Stdio,
    ) -> Result<(u32, Option<std::process::ChildStdout>)> {
        let exe = std::env::current_exe().ctx(|| "cannot find the harness binary".into())?;
        let log = self.tmp.path().join("logs/clients.log");
        let err = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .ctx(|| format!("cannot open {}", log.display()))?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(err)
            .spawn()
            .ctx(|| format!("cannot start a client process ({})", args.join(" ")))?;
        let pid = child.id();
        let out = child.stdout.take();
        self.clients.push(child);
        Ok((pid, out))
    }

    /// Kills every client process and waits for them.
    pub fn kill_clients(&mut self) {
        for c in &mut self.clients {
            let _ = c.kill();
        }
        for mut c in self.clients.drain(..) {
            let _ = c.wait();
        }
    }

    /// Returns the last `n` lines of `name`'s log ("clients" for the
    /// client processes), indented, with a heading.
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let path = self.tmp.path().join(format!("logs/{name}.log"));
        let text = fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(n)..];
        let mut out = format!("--- last lines of {}:\n", path.display());
        for l in tail {
            out.push_str("    ");
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// Describes why a cycle may be stuck: who holds `watching` and
    /// `disabled`, which daemons died, and their logs.
    pub fn diagnose(&mut self) -> String {
        let mut out = String::new();
        let own: Vec<u32> = self.daemons.iter().map(|d| d.child.id()).collect();
        for (file, role) in [(WATCHING, "not ready"), (DISABLED, "blocking")] {
            let Ok(meta) = fs::metadata(self.path(file)) else {
                continue;
            };
            let holders = proclocks::holders(meta.dev(), meta.ino()).unwrap_or_default();
            let named: Vec<String> = holders
                .iter()
                .filter(|h| !own.contains(&h.pid) || file == DISABLED)
                .map(|h| format!("{} ({})", h.pid, comm(h.pid)))
                .collect();
            if !named.is_empty() {
                out.push_str(&format!(
                    "holding RUN/{file} ({role}): PID {}\n",
                    named.join(", ")
                ));
            }
        }
        let names: Vec<&'static str> = self.daemons.iter().map(|d| d.name).collect();
        for d in &mut self.daemons {
            if let Ok(Some(status)) = d.child.try_wait() {
                out.push_str(&format!("{} has exited ({status})\n", d.name));
            }
        }
        for name in names {
            out.push_str(&self.log_tail(name, 8));
        }
        out.push_str(&self.log_tail("clients", 8));
        out
    }

    /// Drives one suspend cycle: creates `request`, waits for the write on
    /// `power/state` and for the removal of `request`, and checks that
    /// `watching` was replaced. Fails with a diagnosis after `deadline`.
    pub fn cycle(&mut self, deadline: Duration) -> Result<CycleTimes> {
        let mut buf = [0u8; 1024];
        let Some(mut events) = self.dir_events.take() else {
            return plumbing("lsusd is not running");
        };
        let result = (|| {
            // Nothing left over from an earlier cycle.
            while events.read_events(&mut buf).is_ok_and(|e| e.count() > 0) {}
            let leftover = self.fifo.drain()?;
            if !leftover.is_empty() {
                return plumbing(format!(
                    "unexpected write on power/state between cycles: {:?}",
                    String::from_utf8_lossy(&leftover)
                ));
            }
            let before = fs::metadata(self.path(WATCHING))
                .ctx(|| format!("cannot stat {}", self.path(WATCHING).display()))?
                .ino();
            let start = Instant::now();
            let end = start + deadline;
            File::create(self.path(REQUEST))
                .ctx(|| format!("cannot create {}", self.path(REQUEST).display()))?;
            let Some((state_at, written)) = self.fifo.wait(end)? else {
                return plumbing(format!(
                    "timed out after {deadline:?}: lsusd did not write power/state (a watcher never became ready?)\n{}",
                    self.diagnose()
                ));
            };
            if written != b"mem\n" {
                return plumbing(format!(
                    "lsusd wrote {:?} to power/state, expected \"mem\\n\" once",
                    String::from_utf8_lossy(&written)
                ));
            }
            let complete_at = loop {
                match events.read_events(&mut buf) {
                    Ok(evs) => {
                        let at = Instant::now();
                        let mut seen = false;
                        for e in evs {
                            seen |= e.name.is_some_and(|n| n == REQUEST);
                        }
                        if seen {
                            break at;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if !wait_readable(&events, end)? {
                            return plumbing(format!(
                                "timed out after {deadline:?}: lsusd wrote power/state but did not remove RUN/request\n{}",
                                self.diagnose()
                            ));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).ctx(|| "cannot read inotify events".into()),
                }
            };
            let after = fs::metadata(self.path(WATCHING)).map_or(0, |m| m.ino());
            if after == before {
                return plumbing(format!(
                    "the cycle ended but RUN/watching was not replaced\n{}",
                    self.diagnose()
                ));
            }
            Ok(CycleTimes {
                to_state: state_at - start,
                to_complete: complete_at - start,
            })
        })();
        self.dir_events = Some(events);
        result
    }

    /// Stops the daemons (SIGTERM, then SIGKILL after a second) and the
    /// clients.
    pub fn stop(&mut self) {
        self.kill_clients();
        for d in self.daemons.iter().rev() {
            let pid = nix::unistd::Pid::from_raw(d.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(1);
        for mut d in self.daemons.drain(..).rev() {
            loop {
                match d.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < end => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Ok(None) => {
                        let _ = d.child.kill();
                        let _ = d.child.wait();
                        break;
                    }
                }
            }
        }
        self.dir_events = None;
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Returns the command name of `pid`, or `?`.
pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Writes one byte to standard output (a client's "I am registered").
pub fn say(byte: u8) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(&[byte])?;
    out.flush()
}
