//! `lsusctl watch`: each suspend and resume as it happens.
//!
//! lsusctl registers as a watcher and says "ready" at once, so it never
//! delays a suspend. After a resume it reads lsusd's record of the attempt
//! (lsusd writes it just before it tells the watchers; an older one wrote
//! it after, so it waits briefly for it), so the resume line can say what
//! happened.

use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use inotify::WatchMask;
use libsus::{WatchEvent, Watcher};
use lsus_proto::outcome::Record;
use lsus_proto::presence;
use lsus_proto::rundir::{RunDir, OUTCOME, RECORDS};
use lsus_sys::dirwatch::DirWatch;
use lsusctl_cli::{EXIT_NOT_RUNNING, EXIT_OK};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::error::Error;
use crate::fmt::{epoch, local_time};
use crate::json::{to_line, WatchLine};
use crate::record;
use crate::rundir::open_checked;

/// How long to wait for lsusd's record after a resume.
const RECORD_WAIT: Duration = Duration::from_millis(500);

fn last_record(run: &RunDir) -> Option<Record> {
    run.read_published(OUTCOME).ok()??.parse().ok()
}

/// Waits up to [`RECORD_WAIT`] for an outcome record other than `before`.
fn new_record(run: &RunDir, watch: &mut DirWatch, before: Option<&Record>) -> Option<Record> {
    let deadline = Instant::now() + RECORD_WAIT;
    loop {
        let _ = watch.drain(|_, _| {});
        if let Some(r) = last_record(run) {
            if Some(&r) != before {
                return Some(r);
            }
        }
        match watch.wait_until(Some(deadline)) {
            Ok(true) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
}

/// Writes a line; a closed output (`lsusctl watch | head`) ends the watch.
fn emit(line: &str) -> Result<bool, Error> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::Io {
            what: "cannot write to standard output".into(),
            source: e,
        }),
    }
}

/// Where the watch stands between events.
struct Watching {
    json: bool,
    since: Option<(SystemTime, Instant, Option<Record>)>,
}

/// Prints the line of one event; returns false when the output is closed.
fn handle(
    event: WatchEvent,
    st: &mut Watching,
    watcher: &mut Watcher,
    run: &RunDir,
    records: &mut DirWatch,
) -> Result<bool, Error> {
    let json = st.json;
    match event {
        WatchEvent::SuspendImminent => {
            // The record of the last attempt, read before "ready": lsusd
            // cannot write this attempt's record until every watcher is.
            let before = last_record(run);
            // Then ready at once: the line can wait, the suspend should not.
            watcher.ready()?;
            let now = SystemTime::now();
            st.since = Some((now, Instant::now(), before));
            let line = if json {
                to_line(&WatchLine::suspend(epoch(now)))?
            } else {
                format!("{}  suspend", local_time(now))
            };
            emit(&line)
        }
        WatchEvent::Resumed => {
            let now = SystemTime::now();
            let (took, before) = match &st.since {
                Some((_, at, before)) => (Some(at.elapsed()), before.clone()),
                None => (None, last_record(run)),
            };
            st.since = None;
            let record = new_record(run, records, before.as_ref());
            let line = if json {
                to_line(&WatchLine::resume(
                    epoch(now),
                    took.map(|d| d.as_secs_f64()),
                    record.as_ref(),
                ))?
            } else {
                let mut s = format!("{}  resume", local_time(now));
                if let Some(d) = took {
                    s.push_str(&format!(" after {:.3} s", d.as_secs_f64()));
                }
                if let Some(r) = &record {
                    s.push_str(&format!(": {}", record::describe(&r.outcome)));
                }
                s
            };
            emit(&line)
        }
    }
}

/// A descriptor that becomes readable when lsusd exits (`pidfd_open(2)`),
/// so the watch learns of lsusd's death without polling; `None` where the
/// kernel lacks it (before 5.3) or the PID is unknown.
fn death_of(pid: u32) -> Option<OwnedFd> {
    if pid == 0 {
        return None;
    }
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    let fd = i32::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: the descriptor was just returned to us and nobody else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs `lsusctl watch` until interrupted, the output is closed (exit 0)
/// or lsusd stops (exit 3; with `follow`, waits for the next lsusd).
pub fn run(dir: &std::path::Path, json: bool, follow: bool) -> Result<u8, Error> {
    let (run, mut lsusd) = open_checked(dir)?;
    // The record is renamed into RUN/records (by an older lsusd, into RUN).
    let io = |path: &std::path::Path| {
        let what = format!("cannot watch {}", path.display());
        move |source| Error::Io { what, source }
    };
    let mut records =
        DirWatch::new(dir, WatchMask::MOVED_TO | WatchMask::CLOSE_WRITE).map_err(io(dir))?;
    if run.subdir(RECORDS, None).is_ok() {
        let path = run.join(RECORDS);
        records.add(&path, WatchMask::MOVED_TO).map_err(io(&path))?;
    }
    let mut watcher = Watcher::open_in(dir)?;
    let mut death = death_of(lsusd);
    let mut st = Watching { json, since: None };
    loop {
        while let Some(event) = watcher.poll_event()? {
            if !handle(event, &mut st, &mut watcher, &run, &mut records)? {
                return Ok(EXIT_OK);
            }
        }
        let mut fds = vec![PollFd::new(watcher.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = &death {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        // Without a pidfd, look at lsusd's lock once a second.
        let timeout = if death.is_some() {
            PollTimeout::NONE
        } else {
            PollTimeout::from(1000u16)
        };
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(Error::Io {
                    what: "cannot wait for lsusd".into(),
                    source: e.into(),
                })
            }
        }
        let gone = match &death {
            Some(_) => fds[1].revents().is_some_and(|r| !r.is_empty()),
            None => presence::lsusd_pid(&run).is_none(),
        };
        if !gone {
            continue;
        }
        if !follow {
            eprintln!("lsusctl: lsusd (PID {lsusd}) stopped; the watch ends");
            return Ok(EXIT_NOT_RUNNING);
        }
        eprintln!("lsusctl: lsusd (PID {lsusd}) stopped; waiting for it to start again (--follow)");
        // Let go of the old registration now: a new lsusd that keeps the
        // same `watching` would count its lock as a watcher, and wait in
        // its first attempt for a watcher that is not listening.
        drop(watcher);
        let Some(back) = presence::wait_for_lsusd(dir, None, || {}).map_err(|e| Error::Io {
            what: e.to_string(),
            source: std::io::Error::other("wait"),
        })?
        else {
            return Ok(EXIT_NOT_RUNNING);
        };
        lsusd = presence::lsusd_pid(&back).unwrap_or(0);
        death = death_of(lsusd);
        watcher = Watcher::open_in(dir)?;
        eprintln!("lsusctl: lsusd is back (PID {lsusd})");
    }
}
