//! `lsusctl history`: the outcomes lsusd recorded in `RUN/log/history`.

use std::fmt::Write as _;

use lsus_proto::outcome::{Details, Outcome, Record};
use lsus_proto::rundir::{RunDir, HISTORY, LOG_DIR, OUTCOME};

use crate::error::Error;
use crate::fmt::{epoch, json_f64, json_str, local_time};
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

/// Formats one record as a JSON object.
pub fn json(r: &Record) -> String {
    let mut out = format!(
        "{{\"seq\":{},\"time\":{},\"outcome\":{},\"description\":{}",
        r.seq,
        json_f64(epoch(r.time)),
        json_str(r.outcome.word()),
        json_str(&describe(&r.outcome))
    );
    match &r.outcome {
        Outcome::Suspended { seconds } => {
            let _ = write!(out, ",\"seconds\":{}", json_f64(*seconds));
        }
        Outcome::Blocked { pids } => {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            let _ = write!(out, ",\"pids\":[{}]", list.join(","));
        }
        Outcome::WriteFailed { errno } => {
            let _ = write!(out, ",\"errno\":{errno}");
        }
        _ => {}
    }
    details_json(&mut out, &r.details);
    out.push('}');
    out
}

/// Appends the details that are set as JSON members (doc/protocol.md §6
/// names them; `woke` is `[]` for `woke=unknown`).
fn details_json(out: &mut String, d: &Details) {
    let strings = |v: &[String]| {
        let parts: Vec<String> = v.iter().map(|s| json_str(s)).collect();
        format!("[{}]", parts.join(","))
    };
    if let Some(a) = d.awake {
        let _ = write!(out, ",\"awake\":{}", json_f64(a));
    }
    if let Some(w) = &d.woke {
        let _ = write!(out, ",\"woke\":{}", strings(w));
    }
    if let Some(irq) = d.wake_irq {
        let _ = write!(out, ",\"wake_irq\":{irq}");
    }
    if let Some(r) = &d.resume_reason {
        let _ = write!(out, ",\"resume_reason\":{}", json_str(r));
    }
    if !d.source.is_empty() {
        let _ = write!(out, ",\"source\":{}", strings(&d.source));
    }
    if let Some(v) = &d.failed_dev {
        let _ = write!(out, ",\"failed_dev\":{}", json_str(v));
    }
    if let Some(v) = d.failed_errno {
        let _ = write!(out, ",\"failed_errno\":{v}");
    }
    if let Some(v) = &d.failed_step {
        let _ = write!(out, ",\"failed_step\":{}", json_str(v));
    }
    if let Some(v) = d.kernel_success {
        let _ = write!(out, ",\"kernel_success\":{v}");
    }
    if let Some(v) = d.kernel_fail {
        let _ = write!(out, ",\"kernel_fail\":{v}");
    }
    if !d.held.is_empty() {
        let parts: Vec<String> = d
            .held
            .iter()
            .map(|h| {
                format!(
                    "{{\"pid\":{},\"seconds\":{},\"command\":{}}}",
                    h.pid,
                    json_f64(h.seconds),
                    json_str(&h.command)
                )
            })
            .collect();
        let _ = write!(out, ",\"held\":[{}]", parts.join(","));
    }
    if !d.locker.is_empty() {
        let list: Vec<String> = d.locker.iter().map(u32::to_string).collect();
        let _ = write!(out, ",\"locker\":[{}]", list.join(","));
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
        let parts: Vec<String> = records.iter().map(json).collect();
        return Ok(format!("[{}]\n", parts.join(",\n")));
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
            json(&r),
            "{\"seq\":4,\"time\":1.500,\"outcome\":\"blocked\",\
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
        let j = json(&r);
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
