//! `lsusctl watch`: each suspend and resume as it happens.
//!
//! lsusctl registers as a watcher and says "ready" at once, so it never
//! delays a suspend. After a resume it waits briefly for lsusd's record of
//! the attempt (lsusd writes it just after it tells the watchers), so the
//! resume line can say what happened.

use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

use inotify::WatchMask;
use libsus::{WatchEvent, Watcher};
use lsus_proto::dirwatch::DirWatch;
use lsus_proto::outcome::Record;
use lsus_proto::rundir::{RunDir, OUTCOME};

use crate::error::Error;
use crate::fmt::{epoch, json_f64, local_time};
use crate::history;
use crate::status::{open_checked, read_text};

/// How long to wait for lsusd's record after a resume.
const RECORD_WAIT: Duration = Duration::from_millis(500);

fn last_record(run: &RunDir) -> Option<Record> {
    read_text(run, OUTCOME).ok()??.parse().ok()
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

/// Runs `lsusctl watch` until interrupted (or the output is closed).
pub fn run(dir: &std::path::Path, json: bool) -> Result<(), Error> {
    let (run, _) = open_checked(dir)?;
    let mut records =
        DirWatch::new(dir, WatchMask::MOVED_TO | WatchMask::CLOSE_WRITE).map_err(|e| {
            Error::Io {
                what: format!("cannot watch {}", dir.display()),
                source: e,
            }
        })?;
    let mut watcher = Watcher::open_in(dir)?;
    let mut since: Option<(SystemTime, Instant, Option<Record>)> = None;
    loop {
        match watcher.wait()? {
            WatchEvent::SuspendImminent => {
                // The record of the last attempt, read before "ready": lsusd
                // cannot write this attempt's record until every watcher is.
                let before = last_record(&run);
                // Then ready at once: the line can wait, the suspend should not.
                watcher.ready()?;
                let now = SystemTime::now();
                since = Some((now, Instant::now(), before));
                let line = if json {
                    format!(
                        "{{\"event\":\"suspend\",\"time\":{}}}",
                        json_f64(epoch(now))
                    )
                } else {
                    format!("{}  suspend", local_time(now))
                };
                if !emit(&line)? {
                    return Ok(());
                }
            }
            WatchEvent::Resumed => {
                let now = SystemTime::now();
                let (took, before) = match &since {
                    Some((_, at, before)) => (Some(at.elapsed()), before.clone()),
                    None => (None, last_record(&run)),
                };
                since = None;
                let record = new_record(&run, &mut records, before.as_ref());
                let line = if json {
                    let mut s = format!(
                        "{{\"event\":\"resume\",\"time\":{},\"duration\":{}",
                        json_f64(epoch(now)),
                        took.map_or("null".into(), |d| json_f64(d.as_secs_f64()))
                    );
                    if let Some(r) = &record {
                        s.push_str(&format!(",\"outcome\":{}", history::json(r)));
                        s.push_str(&format!(",\"suspended\":{}", r.outcome.suspended()));
                    }
                    s.push('}');
                    s
                } else {
                    let mut s = format!("{}  resume", local_time(now));
                    if let Some(d) = took {
                        s.push_str(&format!(" after {:.3} s", d.as_secs_f64()));
                    }
                    if let Some(r) = &record {
                        s.push_str(&format!(": {}", history::describe(&r.outcome)));
                    }
                    s
                };
                if !emit(&line)? {
                    return Ok(());
                }
            }
        }
    }
}
