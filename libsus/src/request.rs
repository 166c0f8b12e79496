//! Asking for one suspend: create `request`, wait for lsusd to remove it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::WatchMask;
use lsus_proto::dirwatch::DirWatch;
use lsus_proto::lock::{try_lock, LockKind};
use lsus_proto::outcome::{Outcome, Record};
use lsus_proto::rundir::{Access, RunDir, OUTCOME, REQUEST, WATCHING};

use crate::{open_run_dir, Error, Result};

/// Options for [`request_suspend_in`].
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// Give up after this long (`None`: wait as long as lsusd takes; a
    /// request made while suspend is blocked waits for the blockers).
    pub timeout: Option<Duration>,
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// lsusd's record of the attempt that ended the request, if it wrote
    /// one (an lsusd that keeps no record, like the original, does not).
    pub outcome: Option<Outcome>,
    /// Whether a whole suspend cycle ran (the original's test: `watching`
    /// was replaced while the request was pending).
    pub cycle_ran: bool,
}

impl Report {
    /// Returns true if and only if the machine suspended and resumed (or,
    /// with lsusd in `--dry-run`, would have).
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
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.outcome, self.cycle_ran) {
            (Some(outcome), _) => write!(f, "{outcome}"),
            (None, true) => f.write_str("a suspend cycle ran (lsusd left no outcome record)"),
            (None, false) => f.write_str("not suspended: the request was dropped"),
        }
    }
}

/// Asks lsusd for one suspend in the default run directory and waits for
/// the answer.
///
/// ```no_run
/// let report = libsus::request_suspend()?;
/// println!("{report}");
/// # Ok::<(), libsus::Error>(())
/// ```
pub fn request_suspend() -> Result<Report> {
    request_suspend_in(&crate::run_dir(), &RequestOptions::default())
}

fn read_record(run: &RunDir) -> Option<Record> {
    use std::io::Read;
    let mut file = run.open_file(OUTCOME, Access::READ, None, false).ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.parse().ok()
}

/// Returns true if and only if an lsusd holds its instance lock on `run`.
fn lsusd_alive(run: &RunDir) -> bool {
    match run.open_file("lsusd.pid", Access::READ, None, false) {
        Ok(file) => !matches!(try_lock(&file, LockKind::Exclusive), Ok(true)),
        // No PID file: an lsusd of another make; assume it runs.
        Err(e) => e.errno() != Some(libc::ENOENT),
    }
}

/// Removes `request` when dropped, if it is still the file this call made
/// (after a completed attempt lsusd has removed it already).
struct Withdraw<'a> {
    run: &'a RunDir,
    request: &'a std::fs::File,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let _ = self.run.remove_if_names(REQUEST, self.request);
    }
}

/// Asks lsusd on run directory `dir` for one suspend and waits until the
/// attempt is over.
///
/// Fails with [`Error::NotRunning`] when no lsusd serves `dir`, and with
/// [`Error::Timeout`] when `options.timeout` passes first (the request is
/// then withdrawn).
///
/// ```no_run
/// use std::time::Duration;
/// let options = libsus::RequestOptions { timeout: Some(Duration::from_secs(60)) };
/// let report = libsus::request_suspend_in(&libsus::run_dir(), &options)?;
/// # Ok::<(), libsus::Error>(())
/// ```
pub fn request_suspend_in(dir: &Path, options: &RequestOptions) -> Result<Report> {
    let run = open_run_dir(dir)?;
    let not_running = || Error::NotRunning(PathBuf::from(dir));
    let watching = run
        .open_file(WATCHING, Access::READ, None, false)
        .map_err(|e| match e.errno() {
            Some(libc::ENOENT) => not_running(),
            _ => Error::RunDir(e),
        })?;
    if !lsusd_alive(&run) {
        return Err(not_running());
    }
    let mut watch = DirWatch::new(dir, WatchMask::DELETE | WatchMask::MOVED_FROM)
        .map_err(|e| Error::io(format!("cannot watch {}", dir.display()), e))?;
    let before = read_record(&run).map(|r| r.seq);
    let request = match run.open_file(REQUEST, Access::READ, Some(0o644), false) {
        Ok(file) => file,
        Err(e) if e.errno() == Some(libc::ELOOP) => {
            return Err(Error::Protocol(format!(
                "{} is a symbolic link",
                run.join(REQUEST).display()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    // However this call ends early (an error, a panic unwinding through
    // it), the request it made is withdrawn, as --timeout does.
    let _withdraw = Withdraw {
        run: &run,
        request: &request,
    };
    // A timeout too long for the clock is no deadline at all.
    let deadline = options.timeout.and_then(|t| Instant::now().checked_add(t));
    // lsusd's death leaves the request in place; look at it now and then.
    let liveness = Duration::from_secs(1);
    while run.names(REQUEST, &request)? {
        let wait = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = run.remove_if_names(REQUEST, &request);
                    return Err(Error::Timeout(options.timeout.unwrap_or_default()));
                }
                left.min(liveness)
            }
            None => liveness,
        };
        match watch.wait(Some(wait)) {
            Ok(true) => {
                watch
                    .drain(|_, _| {})
                    .map_err(|e| Error::io("cannot read inotify events", e))?;
            }
            Ok(false) => {
                if !lsusd_alive(&run) {
                    let _ = run.remove_if_names(REQUEST, &request);
                    return Err(not_running());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot wait for inotify", e)),
        }
    }
    let cycle_ran = !run.names(WATCHING, &watching)?;
    let outcome = read_record(&run)
        .filter(|r| Some(r.seq) != before)
        .map(|r| r.outcome);
    Ok(Report { outcome, cycle_ran })
}
