//! `request-suspend --via-logind`: ask systemd-logind to suspend, so that
//! desktop programs are told (delay inhibitors, `PrepareForSleep`, screen
//! locking), and report lsusd's outcome of the attempt.
//!
//! No loop: logind's suspend runs `systemd-suspend.service`, whose drop-in
//! (`install.sh --with-logind`) runs the plain `request-suspend`, never
//! this. logind's `Suspend` returns once the job is queued, so the answer
//! comes from lsusd's outcome record, read after `PrepareForSleep(false)`.
//!
//! logind lets root override block inhibitors without a word; a plain
//! request is refused by them (through lsus-logind), and so is this one:
//! they are checked first, as `systemctl suspend` does.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use lsus_proto::logind::Inhibitor;
use lsus_proto::logind_bus;
use lsus_proto::outcome::Record;
use lsus_proto::rundir::{RunDir, OUTCOME};
use zbus::blocking::{Connection, MessageIterator};

/// What became of the suspend asked of logind.
#[derive(Debug)]
pub enum Answer {
    /// lsusd's record of the attempt the drop-in asked for.
    Attempt(Box<Record>),
    /// Refused before asking logind: these block inhibitors hold sleep.
    Inhibited(Vec<String>),
}

/// Asks logind on the system bus (`DBUS_SYSTEM_BUS_ADDRESS` if set) to
/// suspend and waits, at most `timeout`, for the end of its sequence.
pub fn suspend(run_dir: &Path, timeout: Option<Duration>) -> Result<Answer, String> {
    let run = RunDir::open(run_dir).map_err(|e| format!("{e} (is lsusd running?)"))?;
    // Any record other than this one is the drop-in's (lsusd's `seq`
    // starts again at 1 when it restarts).
    let before = read_record(&run);
    let bus = |e: zbus::Error| format!("cannot ask logind: {e}");
    let conn = Connection::system().map_err(bus)?;
    let manager = logind_bus::manager(&conn).map_err(bus)?;
    let blocking: Vec<String> = logind_bus::list_inhibitors(&manager)
        .map_err(bus)?
        .into_iter()
        .filter(Inhibitor::blocks_sleep)
        .map(|i| i.name())
        .collect();
    if !blocking.is_empty() {
        return Ok(Answer::Inhibited(blocking));
    }

    // Subscribed before the call, so neither signal can be missed; read
    // in a thread of its own, so the wait can end at the time-out.
    let rule = logind_bus::prepare_for_sleep_rule();
    let signals = MessageIterator::for_match_rule(rule.as_str(), &conn, None).map_err(bus)?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for msg in signals.flatten() {
            if let Ok(start) = msg.body().deserialize::<bool>() {
                if tx.send(start).is_err() {
                    return;
                }
            }
        }
    });
    manager
        .call::<_, _, ()>("Suspend", &(false,))
        .map_err(|e| format!("logind refused to suspend: {e}"))?;

    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let mut started = false;
    loop {
        let got = match deadline {
            Some(d) => rx.recv_timeout(d.saturating_duration_since(std::time::Instant::now())),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(true) => started = true,
            Ok(false) if started => break,
            Ok(false) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "logind's suspend did not end within the time-out ({})",
                    if started {
                        "it started"
                    } else {
                        "it did not even start"
                    }
                ))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err("the bus connection ended before logind's suspend did".into())
            }
        }
    }
    match read_record(&run) {
        Some(rec) if Some(&rec) != before.as_ref() => Ok(Answer::Attempt(Box::new(rec))),
        _ => Err(
            "logind suspended, but lsusd recorded no attempt: is the drop-in for \
                  systemd-suspend.service installed (install.sh --with-logind)?"
                .into(),
        ),
    }
}

/// The last outcome record: `RUN/records/outcome`, or `RUN/outcome` from an
/// older lsusd (doc/protocol.md §1.5).
fn read_record(run: &RunDir) -> Option<Record> {
    run.read_published(OUTCOME).ok()??.parse().ok()
}
