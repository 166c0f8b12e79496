//! `lsusctl history`: the outcomes lsusd recorded in `RUN/log/history`.

use lsus_proto::outcome::{Outcome, Record};
use lsus_proto::rundir::{RunDir, HISTORY, LOG_DIR, OUTCOME};

use crate::error::Error;
use crate::fmt::local_time;
use crate::json::{to_line, RecordJson};
use crate::status::read_text;

/// Returns the last `n` (all if `None`) records, oldest first: from
/// `RUN/log/history`, or from `RUN/outcome` when there is no history (an
/// lsusd without one). Lines that cannot be parsed are skipped.
pub fn read(run: &RunDir, n: Option<usize>) -> Result<Vec<Record>, Error> {
    let history = match run.subdir(LOG_DIR, None) {
        Ok(log) => read_text(&log, HISTORY)?,
        Err(e) if e.errno() == Some(libc::ENOENT) => None,
        Err(e) => return Err(e.into()),
    };
    let text = match history {
        Some(t) => t,
        None => read_text(run, OUTCOME)?.unwrap_or_default(),
    };
    let mut records: Vec<Record> = text.lines().filter_map(|l| l.parse().ok()).collect();
    if let Some(n) = n {
        let skip = records.len().saturating_sub(n);
        records.drain(..skip);
    }
    Ok(records)
}

/// Describes an outcome for a person: "suspended for 3.2 s", "blocked by
/// PID 812"…
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Suspended { seconds } => format!("suspended for {seconds:.1} s"),
        other => other.to_string(),
    }
}

/// Formats one record as a line of text (no newline), with what lsusd
/// learnt from the kernel in parentheses.
pub fn line(r: &Record) -> String {
    let more = r.details.to_string();
    if more.is_empty() {
        format!("{}  {}", local_time(r.time), describe(&r.outcome))
    } else {
        format!("{}  {} ({more})", local_time(r.time), describe(&r.outcome))
    }
}

/// Runs `lsusctl history`; with `timeline`, draws the last `timeline`
/// span instead of listing.
pub fn run(
    dir: &std::path::Path,
    json_out: bool,
    n: Option<usize>,
    timeline: Option<std::time::Duration>,
) -> Result<String, Error> {
    // The history outlives lsusd; reading it does not need lsusd running.
    let run = crate::status::open_run_dir(dir)?;
    let records = read(&run, n)?;
    if let Some(span) = timeline {
        return Ok(crate::timeline::draw(
            &records,
            std::time::SystemTime::now(),
            span,
            crate::timeline::colour_wanted(),
        ));
    }
    if json_out {
        let docs: Vec<RecordJson> = records.iter().map(RecordJson::document).collect();
        return Ok(to_line(&docs)? + "\n");
    }
    if records.is_empty() {
        return Ok(format!(
            "no outcomes recorded yet in {}\n",
            dir.join(LOG_DIR).join(HISTORY).display()
        ));
    }
    let mut out = String::new();
    for r in &records {
        out.push_str(&line(r));
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
        let all = read(&run, None).unwrap();
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let two = read(&run, Some(2)).unwrap();
        assert_eq!(two.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(describe(&all[0].outcome), "suspended for 3.2 s");
        assert_eq!(describe(&all[1].outcome), "blocked by PIDs 7, 9");
    }

    #[test]
    fn json_carries_the_details() {
        let r = Record {
            seq: 4,
            time: UNIX_EPOCH + Duration::from_millis(1500),
            outcome: Outcome::Blocked { pids: vec![7] },
            details: Default::default(),
        };
        assert_eq!(
            to_line(&RecordJson::document(&r)).unwrap(),
            "{\"version\":1,\"seq\":4,\"time\":1.500,\"outcome\":\"blocked\",\
             \"description\":\"blocked by PID 7\",\"pids\":[7]}"
        );
    }

    #[test]
    fn details_show_in_lines_and_json() {
        let r: Record = "seq=5 time=2.000 outcome=suspended seconds=1.000 woke=rtc0 \
                         held=7:1.500:sh\n"
            .parse()
            .unwrap();
        assert!(line(&r).ends_with("(woken by rtc0; PID 7 (sh) held it off for 1.5 s)"));
        let j = to_line(&RecordJson::nested(&r)).unwrap();
        assert!(
            j.ends_with(
                ",\"woke\":[\"rtc0\"],\"held\":[{\"pid\":7,\"seconds\":1.500,\"command\":\"sh\"}]}"
            ),
            "{j}"
        );
    }

    #[test]
    fn falls_back_to_the_outcome_file() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        assert!(read(&run, None).unwrap().is_empty());
        std::fs::write(run.join(OUTCOME), "seq=9 time=1.000 outcome=dry-run\n").unwrap();
        assert_eq!(read(&run, None).unwrap()[0].seq, 9);
    }
}
