//! The integration-test harness: the real binaries on a temp run directory
//! and a fake sysfs tree.
//!
//! Every wait is on a condition with a deadline. When a test fails, the
//! harness prints the daemons' logs and a listing of the run directory, so
//! a failing test explains itself.
#![allow(dead_code)] // each test file uses a different part

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The names of the fake wakeup sources `class/wakeup/wakeup0…`.
pub const WAKEUP_SOURCES: [&str; 3] = ["rtc0", "PNP0C0C:00", "alarmtimer.0.auto"];

/// The default deadline for a condition.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Returns the path of a workspace binary built by `cargo build`.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("LSUS_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    // target/debug/deps/<test> → target/debug/<name>
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests \
         (the README's test command does)",
        path.display()
    );
    path
}

/// Returns true for a daemon's own "ready" line (`… INFO ready: …`), and
/// not for any other line that merely contains the word ("already
/// running").
pub fn is_ready_line(line: &str) -> bool {
    line.split_once(" INFO ")
        .is_some_and(|(_, message)| message.starts_with("ready: "))
}

/// A daemon started by the harness.
pub struct Daemon {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

/// A temp run directory, a fake sysfs tree and the daemons running on them.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub run: PathBuf,
    pub sys: PathBuf,
    pub daemons: Vec<Daemon>,
}

impl Env {
    /// Creates the directories: `RUN` (not yet created, lsusd does) and a
    /// fake `SYS` with `power/{state,wakeup_count}`,
    /// `class/rtc/rtc0/{wakealarm,since_epoch}`, the wakeup sources
    /// [`WAKEUP_SOURCES`] as `class/wakeup/wakeupN/{name,event_count,
    /// wakeup_count,…}` and `power/suspend_stats/*`, as regular files laid
    /// out as the kernel's ABI documents them (sysfs-class-wakeup,
    /// sysfs-power).
    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("lsus-test-")
            .tempdir()
            .expect("tempdir");
        let run = tmp.path().join("run");
        let sys = tmp.path().join("sys");
        fs::create_dir_all(sys.join("power")).unwrap();
        fs::create_dir_all(sys.join("class/rtc/rtc0")).unwrap();
        fs::create_dir_all(tmp.path().join("logs")).unwrap();
        fs::write(sys.join("power/state"), "").unwrap();
        fs::write(sys.join("power/wakeup_count"), "7\n").unwrap();
        fs::write(sys.join("class/rtc/rtc0/wakealarm"), "").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        fs::write(sys.join("class/rtc/rtc0/since_epoch"), format!("{now}\n")).unwrap();
        for (n, name) in WAKEUP_SOURCES.iter().enumerate() {
            let d = sys.join(format!("class/wakeup/wakeup{n}"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("name"), format!("{name}\n")).unwrap();
            for f in [
                "active_count",
                "event_count",
                "wakeup_count",
                "expire_count",
                "active_time_ms",
                "total_time_ms",
                "max_time_ms",
                "last_change_ms",
                "prevent_suspend_time_ms",
            ] {
                fs::write(d.join(f), "0\n").unwrap();
            }
        }
        let stats = sys.join("power/suspend_stats");
        fs::create_dir_all(&stats).unwrap();
        for f in lsus_sys::wakeup::SUSPEND_STATS_COUNTERS {
            fs::write(stats.join(f), "0\n").unwrap();
        }
        fs::write(stats.join("last_failed_dev"), "\n").unwrap();
        fs::write(stats.join("last_failed_errno"), "0\n").unwrap();
        fs::write(stats.join("last_failed_step"), "\n").unwrap();
        Env {
            tmp,
            run,
            sys,
            daemons: Vec::new(),
        }
    }

    /// A wakeup event of the fake wakeup source `wakeupN`: its
    /// `event_count` grows by one, and its `wakeup_count` too when
    /// `wakeup` (an event that aborts or ends a suspend).
    pub fn wakeup_source_event(&self, n: usize, wakeup: bool) {
        let d = self.sys.join(format!("class/wakeup/wakeup{n}"));
        let bump = |f: &str| {
            let p = d.join(f);
            let v: u64 = fs::read_to_string(&p).unwrap().trim().parse().unwrap();
            fs::write(&p, format!("{}\n", v + 1)).unwrap();
        };
        bump("event_count");
        if wakeup {
            bump("wakeup_count");
        }
    }

    /// Sets the fake `power/suspend_stats/NAME` to `value`.
    pub fn set_suspend_stat(&self, name: &str, value: &str) {
        fs::write(
            self.sys.join("power/suspend_stats").join(name),
            format!("{value}\n"),
        )
        .unwrap();
    }

    /// Makes the fake `power/state` a FIFO: lsusd's state write then
    /// blocks (in its open) until [`Env::resume_from_fifo`] reads it.
    pub fn state_fifo(&self) {
        let p = self.sys.join("power/state");
        fs::remove_file(&p).unwrap();
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    /// Waits until daemon `i` is blocked opening a FIFO with no reader
    /// (its main thread's `/proc/PID/wchan` is `wait_for_partner`): with
    /// [`Env::state_fifo`], lsusd is inside its state write.
    pub fn wait_in_fifo_open(&self, i: usize) {
        let wchan = format!("/proc/{}/wchan", self.daemons[i].child.id());
        self.wait_for("lsusd blocked in the state write", DEADLINE, || {
            fs::read_to_string(&wchan).is_ok_and(|w| w.trim() == "wait_for_partner")
        });
    }

    /// Lets the state write blocked on the FIFO `power/state` go on, and
    /// returns what lsusd wrote.
    pub fn resume_from_fifo(&self) -> String {
        let mut text = String::new();
        fs::File::open(self.sys.join("power/state"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    /// Returns the path of `name` in the run directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.run.join(name)
    }

    /// Starts binary `name` with `args`; its stderr and stdout go to a log.
    pub fn spawn(&mut self, name: &str, args: &[&str]) -> &mut Daemon {
        self.spawn_with(name, args, |_| {})
    }

    /// Like [`Env::spawn`], with `configure` applied to the command first
    /// (say, a `pre_exec` that sandboxes the daemon).
    pub fn spawn_with(
        &mut self,
        name: &str,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> &mut Daemon {
        let n = self.daemons.iter().filter(|d| d.name == name).count();
        let log = self.tmp.path().join(format!("logs/{name}.{n}.log"));
        let out = fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin(name));
        configure(&mut cmd);
        let child = cmd
            .args(args)
            .env("LSUSD_RUN_DIR", &self.run)
            .env(
                "RUST_LOG",
                std::env::var("LSUS_TEST_LOG").unwrap_or("debug".into()),
            )
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push(Daemon {
            name: name.to_string(),
            child,
            log,
        });
        self.daemons.last_mut().unwrap()
    }

    /// Starts lsusd on the run directory and fake sysfs and waits until it
    /// is ready (an empty `watching` exists).
    pub fn start_lsusd(&mut self, extra: &[&str]) {
        let run = self.run.display().to_string();
        let sys = self.sys.display().to_string();
        let mut args = vec!["--run-dir", &run, "--sysfs", &sys];
        args.extend_from_slice(extra);
        self.spawn("lsusd", &args);
        self.wait_ready();
    }

    /// Starts a socket daemon (`lsused`, `wakealarmd`) and waits until its
    /// socket accepts connections.
    pub fn start_socket_daemon(&mut self, name: &str, socket: &str, extra: &[&str]) {
        let run = self.run.display().to_string();
        let sys = self.sys.display().to_string();
        let mut args = vec!["--run-dir", run.as_str()];
        if name == "wakealarmd" {
            args.extend(["--sysfs", sys.as_str()]);
        }
        args.extend_from_slice(extra);
        self.spawn(name, &args);
        let path = self.path(socket);
        self.wait_for(&format!("{name} listening on {socket}"), DEADLINE, || {
            std::os::unix::net::UnixStream::connect(&path).is_ok()
        });
        self.wait_ready();
    }

    /// Waits until the daemon started last logs that it is ready.
    pub fn wait_ready(&self) {
        let d = self.daemons.last().expect("a daemon was started");
        self.wait_for(
            &format!("{} ({}) ready", d.name, d.log.display()),
            DEADLINE,
            || fs::read_to_string(&d.log).is_ok_and(|l| l.lines().any(is_ready_line)),
        );
    }

    /// Runs `request-suspend` with `args` and returns its output.
    pub fn request(&self, args: &[&str]) -> Output {
        Command::new(bin("request-suspend"))
            .arg("--run-dir")
            .arg(&self.run)
            .args(["--timeout", "30"])
            .args(args)
            .output()
            .expect("request-suspend")
    }

    /// Starts `request-suspend` without waiting for it.
    pub fn request_spawn(&self) -> Child {
        Command::new(bin("request-suspend"))
            .arg("--run-dir")
            .arg(&self.run)
            .args(["--timeout", "30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("request-suspend")
    }

    /// Returns what was written to the fake `power/state`.
    pub fn state(&self) -> String {
        use std::os::unix::fs::FileTypeExt;
        let path = self.sys.join("power/state");
        // Reading a FIFO (Env::state_fifo) would take lsusd's write, or
        // wait for one: a failing test's dump must not hang.
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_fifo()) {
            return "(a FIFO, not read)".into();
        }
        fs::read_to_string(path).unwrap_or_default()
    }

    /// Empties the fake `power/state`.
    pub fn clear_state(&self) {
        fs::write(self.sys.join("power/state"), "").unwrap();
    }

    /// Returns the daemon `name`'s log so far (all its instances).
    pub fn log(&self, name: &str) -> String {
        let mut all = String::new();
        for d in self.daemons.iter().filter(|d| d.name == name) {
            all.push_str(&fs::read_to_string(&d.log).unwrap_or_default());
        }
        all
    }

    /// Returns how many lines of `name`'s log contain `needle`.
    pub fn log_count(&self, name: &str, needle: &str) -> usize {
        self.log(name)
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until `name`'s log contains `needle`.
    pub fn wait_log(&self, name: &str, needle: &str, timeout: Duration) {
        self.wait_for(&format!("{name} logs {needle:?}"), timeout, || {
            self.log(name).contains(needle)
        });
    }

    /// Waits until `name`'s log contains `needle` at least `n` times.
    pub fn wait_log_count(&self, name: &str, needle: &str, n: usize, timeout: Duration) {
        self.wait_for(
            &format!("{name} logs {needle:?} {n} times"),
            timeout,
            || self.log_count(name, needle) >= n,
        );
    }

    /// Waits until `cond` holds, checking every few milliseconds; panics
    /// with the harness dump when `timeout` passes first.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for: {what}\n{}",
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Asserts that `cond` stays true for `period` (used to show that
    /// something does NOT happen, e.g. no state write while blocked).
    pub fn assert_stays(&self, what: &str, period: Duration, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + period;
        while Instant::now() < end {
            assert!(cond(), "no longer true: {what}\n{}", self.dump());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Returns the outcome record lsusd left in the run directory
    /// (`RUN/records/outcome`, doc/protocol.md §1.5).
    pub fn outcome(&self) -> Option<lsus_proto::outcome::Record> {
        fs::read_to_string(self.path("records/outcome"))
            .ok()?
            .parse()
            .ok()
    }

    /// Returns the sequence number of the last outcome (0 if none).
    pub fn outcome_seq(&self) -> u64 {
        self.outcome().map_or(0, |r| r.seq)
    }

    /// Returns the inode now at `watching`.
    pub fn watching_inode(&self) -> u64 {
        fs::metadata(self.path("watching")).map_or(0, |m| m.ino())
    }

    /// Returns true if and only if daemon number `i` has exited.
    pub fn exited(&mut self, i: usize) -> Option<ExitStatus> {
        self.daemons[i].child.try_wait().unwrap()
    }

    /// A readable account of the run: run directory listing and logs.
    pub fn dump(&self) -> String {
        let mut out = format!("--- run directory {}:\n", self.run.display());
        if let Ok(entries) = fs::read_dir(&self.run) {
            let mut names: Vec<_> = entries.flatten().collect();
            names.sort_by_key(|e| e.file_name());
            for e in names {
                let meta = e.metadata().ok();
                out.push_str(&format!(
                    "  {:<16} size={:<4} ino={}\n",
                    e.file_name().to_string_lossy(),
                    meta.as_ref().map_or(0, |m| m.len()),
                    meta.as_ref().map_or(0, |m| m.ino()),
                ));
            }
        }
        out.push_str(&format!("--- power/state: {:?}\n", self.state()));
        for d in &self.daemons {
            let mut text = String::new();
            if let Ok(mut f) = fs::File::open(&d.log) {
                let _ = f.read_to_string(&mut text);
            }
            let tail: Vec<&str> = text.lines().rev().take(80).collect();
            out.push_str(&format!("--- {} log ({}):\n", d.name, d.log.display()));
            for line in tail.into_iter().rev() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Sends SIGTERM to daemon number `i` and waits for it to exit.
    pub fn stop(&mut self, i: usize) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.daemons[i].child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.daemons[i].child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not stop on SIGTERM\n{}",
                    self.daemons[i].name,
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.child.kill();
            let _ = d.child.wait();
        }
    }
}

/// Runs a shell command line (`sh -c`), returning its output.
pub fn sh(script: &str, run: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("RUN", run)
        .env("LSUSD_RUN_DIR", run)
        .output()
        .expect("sh")
}

/// Starts a shell command line in the background.
pub fn sh_spawn(script: &str, run: &Path) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("RUN", run)
        .env("LSUSD_RUN_DIR", run)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh")
}
