//! Asking for one suspend: create `request`, wait for lsusd's answer
//! (doc/protocol.md §7).
//!
//! The answer is the outcome record (§6) when lsusd writes one: a
//! "blocked" record comes as soon as lsusd finds the request blocked,
//! every other outcome just before lsusd removes `request`. With an lsusd
//! that keeps no record (the original), the answer is the original's:
//! `request` is removed, and `watching` was replaced if a cycle ran.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::WatchMask;
use lsus_proto::outcome::{Details, Outcome, Record};
use lsus_proto::presence;
use lsus_proto::rundir::{
    Access, RunDir, DISABLED, FORCE, FORCE_REQUEST, OUTCOME, RECORDS, REQUEST, WATCHING,
};
use lsus_sys::dirwatch::DirWatch;
use lsus_sys::lock::{try_lock, LockKind};
use lsus_sys::{process, proclocks};

use crate::{open_run_dir, Error, Result};

/// Options for [`request_suspend_in`].
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// Give up after this long (`None`: wait as long as it takes). The
    /// request is then withdrawn.
    pub timeout: Option<Duration>,
    /// When suspend is blocked, wait until the blockers have gone and
    /// ask again, until an attempt is made (`false`: a blocked request is
    /// answered "blocked" at once).
    pub when_unblocked: bool,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// lsusd's record of the attempt that answered the request, if it
    /// wrote one (an lsusd that keeps no record, like the original, does
    /// not).
    pub outcome: Option<Outcome>,
    /// Whether a whole suspend cycle ran (the original's test: `watching`
    /// was replaced while the request was pending).
    pub cycle_ran: bool,
    /// What lsusd learnt about the attempt (the optional keys of its
    /// record, doc/protocol.md §6); empty without a record.
    pub details: Details,
}

impl Report {
    /// Returns true if and only if the machine suspended and resumed (or,
    /// with lsusd in `--dry-run`, would have). With an lsusd that keeps no
    /// outcome record, true when a cycle ran to the end, which an aborted
    /// attempt also does.
    ///
    /// ```no_run
    /// let report = libsus::request_suspend()?;
    /// println!("{}", if report.suspended() { "slept" } else { "stayed up" });
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn suspended(&self) -> bool {
        match &self.outcome {
            Some(outcome) => outcome.suspended(),
            None => self.cycle_ran,
        }
    }
}

impl std::fmt::Display for Report {
    /// One line per holder for a blocked request, `blocked by PID N
    /// (command)`, with the names `lsusctl status` gives; one line
    /// otherwise.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.outcome, self.cycle_ran) {
            (Some(Outcome::Blocked { pids }), _) if pids.is_empty() => {
                let lockers = &self.details.locker;
                write!(f, "blocked by {}", proclocks::describe_unnamed(lockers))
            }
            (Some(Outcome::Blocked { pids }), _) => {
                for (i, &pid) in pids.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    match process::command(pid) {
                        Some(command) => write!(f, "blocked by PID {pid} ({command})")?,
                        None => write!(f, "blocked by PID {pid} (it has exited since)")?,
                    }
                }
                Ok(())
            }
            (Some(outcome), _) => write!(f, "{outcome}"),
            (None, true) => f.write_str(
                "a suspend cycle ran to the end; this lsusd keeps no outcome record, \
                 so a suspend cannot be told from an aborted attempt",
            ),
            (None, false) => f.write_str("not suspended: the request was refused"),
        }
    }
}

/// Asks lsusd for one suspend in the default run directory and waits for
/// the answer; a blocked request is answered at once.
///
/// ```no_run
/// let report = libsus::request_suspend()?;
/// println!("{report}");
/// # Ok::<(), libsus::Error>(())
/// ```
pub fn request_suspend() -> Result<Report> {
    request_suspend_in(&crate::run_dir(), &RequestOptions::default())
}

/// Asks lsusd for one suspend in the default run directory as soon as
/// nothing blocks it: while suspend is blocked, waits (without polling)
/// until the blockers have gone, and asks again. Returns the report of
/// the attempt that was made.
///
/// "Suspend as soon as the backup finishes":
///
/// ```no_run
/// // … the backup holds a block on `disabled` …
/// let report = libsus::request_suspend_when_unblocked()?;
/// println!("{report}");
/// # Ok::<(), libsus::Error>(())
/// ```
pub fn request_suspend_when_unblocked() -> Result<Report> {
    let options = RequestOptions {
        when_unblocked: true,
        ..RequestOptions::default()
    };
    request_suspend_in(&crate::run_dir(), &options)
}

/// The last outcome record: `RUN/records/outcome`, or `RUN/outcome` from an
/// older lsusd (doc/protocol.md §1.5).
fn read_record(run: &RunDir) -> Option<Record> {
    run.read_published(OUTCOME).ok()??.parse().ok()
}

/// Watches RUN with `mask` and, when it exists, `RUN/records` for a new
/// outcome record (`IN_MOVED_TO`; an older lsusd renames it into RUN,
/// which `mask` must then cover).
fn watch_run(run: &RunDir, dir: &Path, mask: WatchMask) -> Result<DirWatch> {
    let mut watch = DirWatch::new(dir, mask)
        .map_err(|e| Error::io(format!("cannot watch {}", dir.display()), e))?;
    let records = run.join(RECORDS);
    if run.subdir(RECORDS, None).is_ok() {
        watch
            .add(&records, WatchMask::MOVED_TO)
            .map_err(|e| Error::io(format!("cannot watch {}", records.display()), e))?;
    }
    Ok(watch)
}

/// Which lsusd serves the run directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lsusd {
    /// One that holds its lock on `RUN/lsusd.pid` (this implementation),
    /// with its PID (0: unknown, `/proc/locks` names nobody we can see).
    Locked(u32),
    /// One that keeps no PID file (the original): its life cannot be
    /// checked.
    NoPidFile,
}

impl Lsusd {
    /// Finds the lsusd of `run`, or fails with [`Error::NotRunning`].
    fn find(run: &RunDir, dir: &Path) -> Result<Lsusd> {
        match run.open_file("lsusd.pid", Access::READ, None, false) {
            Ok(file) => match try_lock(&file, LockKind::Exclusive) {
                // Nobody holds it: the lsusd that wrote it is gone.
                Ok(true) => Err(Error::NotRunning(dir.to_path_buf())),
                _ => Ok(Lsusd::Locked(presence::lsusd_pid(run).unwrap_or(0))),
            },
            Err(e) if e.errno() == Some(libc::ENOENT) => {
                if run.exists(DISABLED)? {
                    Ok(Lsusd::NoPidFile)
                } else {
                    Err(Error::NotRunning(dir.to_path_buf()))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Returns false once this lsusd is known to be gone: nobody holds
    /// its lock, or another lsusd does (it was restarted).
    fn alive(self, run: &RunDir) -> bool {
        match self {
            Lsusd::Locked(pid) => match run.open_file("lsusd.pid", Access::READ, None, false) {
                Ok(file) => {
                    !matches!(try_lock(&file, LockKind::Exclusive), Ok(true))
                        && (pid == 0 || presence::lsusd_pid(run).is_none_or(|p| p == 0 || p == pid))
                }
                Err(_) => false,
            },
            Lsusd::NoPidFile => run.exists(DISABLED).unwrap_or(false),
        }
    }
}

/// Removes `request` when dropped, if it is still the file this call made
/// (after a completed attempt lsusd has removed it already), unless
/// disarmed: however the call ends early (an error, a panic unwinding
/// through it), the request it made is withdrawn, as --timeout does. A
/// blocked answer disarms it: lsusd drops that request itself when the
/// blockers leave.
struct Withdraw<'a> {
    /// The directory of the request: RUN, or RUN/force.
    run: &'a RunDir,
    /// Its name there.
    name: &'static str,
    request: &'a File,
    armed: bool,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.run.remove_if_names(self.name, self.request);
        }
    }
}

/// One request in flight.
struct Pending<'a> {
    run: &'a RunDir,
    /// The directory of the request (RUN, or RUN/force) and its name.
    req: (&'a RunDir, &'static str),
    dir: &'a Path,
    lsusd: Lsusd,
    watch: DirWatch,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
}

/// How long a wait goes on before lsusd's lock is checked again: a dead
/// lsusd raises no event in the run directory.
const LIVENESS: Duration = Duration::from_secs(1);

impl<'a> Pending<'a> {
    /// A request just made as `req` (its directory and name) on `run`,
    /// waited for through `watch`, bounded by `options.timeout` from now.
    fn new(
        run: &'a RunDir,
        req: (&'a RunDir, &'static str),
        dir: &'a Path,
        lsusd: Lsusd,
        watch: DirWatch,
        options: &RequestOptions,
    ) -> Pending<'a> {
        Pending {
            run,
            req,
            dir,
            lsusd,
            watch,
            // A timeout too long for the clock is no deadline at all.
            deadline: options.timeout.and_then(|t| Instant::now().checked_add(t)),
            timeout: options.timeout,
        }
    }

    /// The error for an lsusd that went away while the request waited.
    fn stopped(&self) -> Error {
        Error::Stopped {
            dir: PathBuf::from(self.dir),
            pid: match self.lsusd {
                Lsusd::Locked(pid) => pid,
                Lsusd::NoPidFile => 0,
            },
        }
    }

    /// Creates `request`, or touches the one that exists (so that lsusd,
    /// if it is waiting for blockers, sees a new request and answers it).
    fn create(&self) -> Result<File> {
        let existed = self.run.exists(REQUEST)?;
        match self
            .run
            .open_file(REQUEST, Access::READ, Some(0o664), false)
        {
            Ok(file) => {
                if existed {
                    // Touching raises IN_ATTRIB: a new request to lsusd
                    // even though the file was there. Not allowed on
                    // another user's file without write permission: lsusd
                    // then answers when it answers that request.
                    let _ = nix::sys::stat::futimens(
                        file.as_raw_fd(),
                        &nix::sys::time::TimeSpec::UTIME_NOW,
                        &nix::sys::time::TimeSpec::UTIME_NOW,
                    );
                }
                // No chmod of a file just made (to undo the umask): it
                // raises IN_ATTRIB, which lsusd, while it waits for
                // blockers, takes for a second request.
                Ok(file)
            }
            Err(e) if e.errno() == Some(libc::ELOOP) => Err(Error::Protocol(format!(
                "{} is a symbolic link",
                self.run.join(REQUEST).display()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until `request` no longer names `request`, or `answered`
    /// gives an answer. Returns that answer, `None` when the request went.
    fn wait(
        &mut self,
        request: &File,
        mut answered: impl FnMut() -> Option<Record>,
    ) -> Result<Option<Record>> {
        loop {
            if !self.req.0.names(self.req.1, request)? {
                return Ok(None);
            }
            if let Some(record) = answered() {
                return Ok(Some(record));
            }
            let wait = match self.deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let _ = self.req.0.remove_if_names(self.req.1, request);
                        return Err(Error::Timeout(self.timeout.unwrap_or_default()));
                    }
                    left.min(LIVENESS)
                }
                None => LIVENESS,
            };
            match self.watch.wait(Some(wait)) {
                Ok(true) => {
                    self.watch
                        .drain(|_, _| {})
                        .map_err(|e| Error::io("cannot read inotify events", e))?;
                }
                Ok(false) => {
                    if !self.lsusd.alive(self.run) {
                        let _ = self.req.0.remove_if_names(self.req.1, request);
                        return Err(self.stopped());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("cannot wait for inotify", e)),
            }
        }
    }
}

/// Asks lsusd on run directory `dir` for one suspend and waits for the
/// answer: at once when suspend is blocked (unless
/// `options.when_unblocked`), else when the attempt is over.
///
/// Works with an lsusd that keeps no PID file and no outcome record (the
/// original): then a blocked request is answered only when the blockers
/// have gone, and a cycle that ran counts as a suspend (an aborted attempt
/// cannot be told apart there).
///
/// Fails with [`Error::NotRunning`] when no lsusd serves `dir` (no run
/// directory, no `disabled`, or an unlocked `RUN/lsusd.pid`) or lsusd
/// stops while the request waits, and with [`Error::Timeout`] when
/// `options.timeout` passes first (the request is then withdrawn).
///
/// ```no_run
/// use std::time::Duration;
/// let options = libsus::RequestOptions {
///     timeout: Some(Duration::from_secs(60)),
///     ..Default::default()
/// };
/// let report = libsus::request_suspend_in(&libsus::run_dir(), &options)?;
/// # Ok::<(), libsus::Error>(())
/// ```
pub fn request_suspend_in(dir: &Path, options: &RequestOptions) -> Result<Report> {
    let run = open_run_dir(dir)?;
    let not_running = || Error::NotRunning(PathBuf::from(dir));
    let lsusd = Lsusd::find(&run, dir)?;
    // DELETE and MOVED_FROM: `request` goes; MOVED_TO: a new `outcome`.
    let watch = watch_run(
        &run,
        dir,
        WatchMask::DELETE | WatchMask::MOVED_FROM | WatchMask::MOVED_TO,
    )?;
    let mut pending = Pending::new(&run, (&run, REQUEST), dir, lsusd, watch, options);
    loop {
        let watching = run
            .open_file(WATCHING, Access::READ, None, false)
            .map_err(|e| match e.errno() {
                Some(libc::ENOENT) => not_running(),
                _ => Error::RunDir(e),
            })?;
        let before = read_record(&run);
        let request = pending.create()?;
        let mut withdraw = Withdraw {
            run: &run,
            name: REQUEST,
            request: &request,
            armed: true,
        };
        let new_record = || read_record(&run).filter(|r| Some(r) != before.as_ref());
        let blocked_now = || new_record().filter(|r| matches!(r.outcome, Outcome::Blocked { .. }));
        if let Some(blocked) = pending.wait(&request, blocked_now)? {
            if !options.when_unblocked {
                // lsusd drops the request when the blockers leave.
                withdraw.armed = false;
                return Ok(Report {
                    outcome: Some(blocked.outcome),
                    cycle_ran: false,
                    details: blocked.details,
                });
            }
            // lsusd removes `request` when the blockers have gone: that
            // is the moment to ask again.
            pending.wait(&request, || None)?;
            continue;
        }
        let cycle_ran = !run.names(WATCHING, &watching)?;
        let (outcome, details) = match new_record() {
            Some(r) => (Some(r.outcome), r.details),
            None => (None, Details::default()),
        };
        // A new lsusd that found our attempt left in progress by the one
        // we asked ended it as `withdrawn` (doc/protocol.md §2, start-up):
        // that lsusd stopped while the request waited.
        if matches!(outcome, Some(Outcome::Withdrawn)) && !pending.lsusd.alive(&run) {
            return Err(pending.stopped());
        }
        let refused = match &outcome {
            Some(o) => matches!(o, Outcome::Blocked { .. }),
            None => !cycle_ran,
        };
        // Our lsusd answers every request it sees, with a record or a
        // cycle. A request that went without either was dropped unseen:
        // made as the blockers left (lsusd removes `request` then), or
        // removed by another client, or by an lsusd restarting. Nothing
        // happened; ask again.
        let unanswered =
            outcome.is_none() && !cycle_ran && matches!(pending.lsusd, Lsusd::Locked(_));
        if unanswered || (options.when_unblocked && refused) {
            // Asking again: of the lsusd that runs now, if it was restarted.
            if unanswered && !pending.lsusd.alive(&run) {
                pending.lsusd = Lsusd::find(&run, dir)?;
            }
            continue;
        }
        return Ok(Report {
            outcome,
            cycle_ran,
            details,
        });
    }
}

/// How much of a forced request's reason lsusd reads (doc/protocol.md
/// §12); the rest is cut here.
const WHY_MAX: usize = 256;

/// Asks lsusd for one suspend **even while suspend is blocked**, in the
/// default run directory, giving `why` (doc/protocol.md §12): for a
/// machine that must sleep now (the lid closed in a bag, the battery at
/// 2 %). The watchers are still told (and waited for, up to lsusd's
/// `--watcher-timeout`), and a wakeup event still aborts the attempt; the
/// holders of blocks are told nothing, but the record names them
/// (`Report::details.overrode`) with `forced`, `why` and `by`.
///
/// Only root and members of the group `suspend-force` may: for anyone
/// else the kernel refuses the directory `RUN/force`, and this fails with
/// [`Error::ForceNotPermitted`].
///
/// ```no_run
/// let report = libsus::request_suspend_forced("battery at 2 %")?;
/// println!("{report}");
/// for n in &report.details.overrode {
///     println!("went over the block of PID {} ({})", n.pid, n.command);
/// }
/// # Ok::<(), libsus::Error>(())
/// ```
pub fn request_suspend_forced(why: &str) -> Result<Report> {
    request_suspend_forced_in(&crate::run_dir(), why, &RequestOptions::default())
}

/// As [`request_suspend_forced`], on run directory `dir`; of `options`
/// only `timeout` counts (a forced request is never answered "blocked").
/// Fails with [`Error::ForceNotPermitted`] when the kernel refuses
/// `RUN/force`, and with [`Error::Protocol`] when the lsusd takes no forced
/// requests (no `RUN/force`: an older lsusd, or the original).
///
/// ```no_run
/// use std::time::Duration;
/// let options = libsus::RequestOptions {
///     timeout: Some(Duration::from_secs(120)),
///     ..Default::default()
/// };
/// let report = libsus::request_suspend_forced_in(&libsus::run_dir(), "lid closed", &options)?;
/// # Ok::<(), libsus::Error>(())
/// ```
pub fn request_suspend_forced_in(
    dir: &Path,
    why: &str,
    options: &RequestOptions,
) -> Result<Report> {
    let run = open_run_dir(dir)?;
    let lsusd = Lsusd::find(&run, dir)?;
    let refused = |e: lsus_proto::rundir::RunDirError| match e.errno() {
        Some(libc::EACCES | libc::EPERM) => Error::ForceNotPermitted,
        Some(libc::ENOENT) => Error::Protocol(format!(
            "this lsusd takes no forced requests ({} does not exist)",
            run.join(FORCE).display()
        )),
        _ => Error::RunDir(e),
    };
    let force = run.subdir(FORCE, None).map_err(refused)?;
    // Written whole under a name of our own, then renamed to `request`:
    // lsusd never reads half a reason.
    let tmp = format!(".request.{}", std::process::id());
    let mut file = force
        .open_file(&tmp, Access::WRITE, Some(0o640), true)
        .map_err(refused)?;
    let mut text = why.as_bytes();
    if text.len() > WHY_MAX {
        let mut end = WHY_MAX;
        while !why.is_char_boundary(end) {
            end -= 1;
        }
        text = &text[..end];
    }
    let written = std::io::Write::write_all(&mut file, text);
    if let Err(e) = written.and_then(|()| {
        force
            .rename(&tmp, FORCE_REQUEST)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }) {
        let _ = force.remove(&tmp);
        return Err(Error::io(
            format!("cannot make {}", force.join(FORCE_REQUEST).display()),
            e,
        ));
    }
    // MOVED_TO in RUN/records (or RUN): a new `outcome`; DELETE and
    // MOVED_FROM in RUN/force: the request goes.
    let mut watch = watch_run(&run, dir, WatchMask::MOVED_TO)?;
    watch
        .add(force.path(), WatchMask::DELETE | WatchMask::MOVED_FROM)
        .map_err(|e| Error::io(format!("cannot watch {}", force.path().display()), e))?;
    let before = read_record(&run);
    let mut withdraw = Withdraw {
        run: &force,
        name: FORCE_REQUEST,
        request: &file,
        armed: true,
    };
    let mut pending = Pending::new(&run, (&force, FORCE_REQUEST), dir, lsusd, watch, options);
    pending.wait(&file, || None)?;
    withdraw.armed = false;
    let record = read_record(&run).filter(|r| Some(r) != before.as_ref());
    if record.is_none() && !pending.lsusd.alive(&run) {
        return Err(pending.stopped());
    }
    Ok(match record {
        Some(r) => Report {
            outcome: Some(r.outcome),
            cycle_ran: true,
            details: r.details,
        },
        None => Report {
            outcome: None,
            cycle_ran: false,
            details: Details::default(),
        },
    })
}
