//! The run directory as lsusctl reads it: opening it (and checking that
//! lsusd serves it), reading a file of it, and the outcome records lsusd
//! keeps there.

use std::io::Read;
use std::path::Path;

use lsus_proto::outcome::Record;
use lsus_proto::rundir::{Access, RunDir, DISABLED, HISTORY, LOG_DIR, OUTCOME};

use crate::error::Error;
use crate::procinfo;

/// Opens the run directory; a missing one means lsusd is not running.
pub fn open(dir: &Path) -> Result<RunDir, Error> {
    RunDir::open(dir).map_err(|e| {
        if e.errno() == Some(libc::ENOENT) {
            Error::NotRunning {
                dir: dir.to_path_buf(),
                why: "the run directory does not exist".into(),
            }
        } else {
            e.into()
        }
    })
}

/// Opens the run directory and checks that lsusd serves it; returns its PID.
pub fn open_checked(dir: &Path) -> Result<(RunDir, u32), Error> {
    let run = open(dir)?;
    // Searching the directory needs execute permission; a plain open does not.
    run.stat(DISABLED)?;
    match procinfo::daemon_pid(&run, "lsusd")? {
        Some(pid) => Ok((run, pid)),
        None => Err(Error::NotRunning {
            dir: dir.to_path_buf(),
            why: "nobody holds the lock on lsusd.pid".into(),
        }),
    }
}

/// Reads `name` from `run`; `None` if it does not exist.
pub fn read_text(run: &RunDir, name: &str) -> Result<Option<String>, Error> {
    let mut file = match run.open_file(name, Access::READ, None, false) {
        Ok(f) => f,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| Error::Io {
        what: format!("cannot read {}", run.join(name).display()),
        source: e,
    })?;
    Ok(Some(text))
}

/// Returns the last `n` (all if `None`) records, oldest first: from
/// `RUN/log/history`, or from the outcome record when there is no history
/// (an lsusd without one). Lines that cannot be parsed are skipped.
pub fn records(run: &RunDir, n: Option<usize>) -> Result<Vec<Record>, Error> {
    let history = match run.subdir(LOG_DIR, None) {
        Ok(log) => read_text(&log, HISTORY)?,
        Err(e) if e.errno() == Some(libc::ENOENT) => None,
        Err(e) => return Err(e.into()),
    };
    let text = match history {
        Some(t) => t,
        None => run.read_published(OUTCOME)?.unwrap_or_default(),
    };
    let mut records: Vec<Record> = text.lines().filter_map(|l| l.parse().ok()).collect();
    if let Some(n) = n {
        let skip = records.len().saturating_sub(n);
        records.drain(..skip);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_records_and_skips_garbage() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        std::fs::create_dir(run.join(LOG_DIR)).unwrap();
        std::fs::write(
            run.join(LOG_DIR).join(HISTORY),
            "seq=1 time=10.000 outcome=suspended seconds=3.250\n\
             garbage\n\
             seq=2 time=20.000 outcome=blocked pids=7,9\n\
             seq=3 time=30.000 outcome=aborted\n",
        )
        .unwrap();
        let all = records(&run, None).unwrap();
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let two = records(&run, Some(2)).unwrap();
        assert_eq!(two.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn falls_back_to_the_outcome_file() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        assert!(records(&run, None).unwrap().is_empty());
        std::fs::write(run.join(OUTCOME), "seq=9 time=1.000 outcome=dry-run\n").unwrap();
        assert_eq!(records(&run, None).unwrap()[0].seq, 9);
    }
}
