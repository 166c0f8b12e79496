//! `RUN/log/history`: the last outcomes, for `lsusctl history` and
//! `status`. It lives in a subdirectory so that writing it wakes none of
//! the watchers of the run directory.
//!
//! The same record lines as `RUN/outcome` (see `lsus_proto::outcome`),
//! oldest first, at most [`LIMIT`] of them. Each attempt rewrites the file
//! atomically (the lines kept plus the new one), so a reader never sees a
//! half-written line and the file stays bounded (600 KiB at most). The
//! history survives a restart of lsusd, and so does `seq`: a new lsusd
//! goes on from the last record ([`last_seq`]).

use std::io::Read;

use lsus_proto::outcome::{Details, Record};
use lsus_proto::rundir::{Access, RunDir, HISTORY, LOG_DIR};

/// How many records the history keeps: `lsusctl stats --since 7d` on a
/// machine that suspends 200 times a day needs 1400; the rest is room for
/// blocked and failed attempts. At 100 to 300 bytes a record the file
/// stays under 600 KiB (doc/protocol.md §6).
pub const LIMIT: usize = 2000;

/// Mode of the file: the run directory's group may read it.
const MODE: u32 = 0o644;

/// Appends `record` to the history in `run`, dropping the oldest lines
/// beyond [`LIMIT`]. Failures are logged, never fatal: the history is a
/// convenience, the outcome file is the protocol.
pub fn append(run: &RunDir, record: &Record) {
    // Readable by the run directory's group, written by lsusd alone; the
    // set-group-ID bit comes from the run directory (see RunDir::subdir).
    let log = match run.subdir_replacing(LOG_DIR, Some(0o750)) {
        Ok((dir, planted)) => {
            if let Some(planted) = planted {
                tracing::warn!("{}: found {planted}", run.join(LOG_DIR).display());
            }
            dir
        }
        Err(e) => {
            tracing::warn!("cannot record the history: {e}");
            return;
        }
    };
    let mut text = String::new();
    match log.open_file(HISTORY, Access::READ, None, false) {
        Ok(mut file) => {
            if let Err(e) = file.read_to_string(&mut text) {
                tracing::warn!(
                    "cannot read {}: {e}; starting it afresh",
                    log.join(HISTORY).display()
                );
                text.clear();
            }
        }
        Err(e) if e.errno() == Some(libc::ENOENT) => {}
        Err(e) => tracing::warn!("{e}; starting the history afresh"),
    }
    let new = record.to_string();
    let kept = keep(&text, LIMIT - 1);
    let mut out = String::with_capacity(kept.len() + new.len());
    out.push_str(kept);
    out.push_str(&new);
    match log.write_atomically(HISTORY, out.as_bytes(), MODE) {
        Ok(None) => {}
        Ok(Some(planted)) => {
            tracing::warn!("{}: found {planted}", log.join(HISTORY).display())
        }
        Err(e) => tracing::warn!("cannot record the history: {e}"),
    }
}

/// Changes the details of record `seq` in the history (the `held=` of a
/// blocked record is known only when the blockers let go). Nothing is
/// done when the line is no longer there; failures are logged.
pub fn amend(run: &RunDir, seq: u64, change: impl FnOnce(&mut Details)) {
    let Ok(log) = run.subdir(LOG_DIR, None) else {
        return;
    };
    let mut text = String::new();
    match log.open_file(HISTORY, Access::READ, None, false) {
        Ok(mut f) => {
            if f.read_to_string(&mut text).is_err() {
                return;
            }
        }
        Err(_) => return,
    }
    let mut change = Some(change);
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        match line.parse::<Record>() {
            Ok(mut r) if r.seq == seq && line.ends_with('\n') => {
                if let Some(change) = change.take() {
                    change(&mut r.details);
                }
                out.push_str(&r.to_string());
            }
            _ => out.push_str(line),
        }
    }
    if change.is_some() {
        return;
    }
    if let Err(e) = log.write_atomically(HISTORY, out.as_bytes(), MODE) {
        tracing::warn!("cannot amend the history: {e}");
    }
}

/// Returns the largest `seq` of the outcome record and the history in
/// `run`, 0 when neither has one: a new lsusd counts on from there.
pub fn last_seq(run: &RunDir) -> u64 {
    let read = |dir: &RunDir, name: &str| -> String {
        let mut text = String::new();
        if let Ok(mut f) = dir.open_file(name, Access::READ, None, false) {
            let _ = f.read_to_string(&mut text);
        }
        text
    };
    // records/outcome, or the RUN/outcome an older lsusd left.
    let mut text = run
        .read_published(lsus_proto::rundir::OUTCOME)
        .ok()
        .flatten()
        .unwrap_or_default();
    if let Ok(log) = run.subdir(LOG_DIR, None) {
        text.push_str(&read(&log, HISTORY));
    }
    text.lines()
        .filter_map(|l| l.parse::<Record>().ok())
        .map(|r| r.seq)
        .max()
        .unwrap_or(0)
}

/// Returns the tail of `text` made of its last `n` complete lines.
fn keep(text: &str, n: usize) -> &str {
    // A line cut short (no newline) is not a record: leave it out.
    let Some(last) = text.rfind('\n') else {
        return "";
    };
    let whole = &text[..=last];
    if n == 0 {
        return "";
    }
    // The newline that ends the line before the n-th one from the end.
    match whole[..last].rmatch_indices('\n').nth(n - 1) {
        Some((i, _)) => &whole[i + 1..],
        None => whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsus_proto::outcome::Outcome;
    use std::time::{Duration, UNIX_EPOCH};

    fn record(seq: u64) -> Record {
        Record {
            seq,
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seq),
            outcome: Outcome::Blocked { pids: vec![7] },
            details: Default::default(),
        }
    }

    #[test]
    fn keep_takes_whole_lines_from_the_end() {
        assert_eq!(keep("", 3), "");
        assert_eq!(keep("a\nb\nc\n", 0), "");
        assert_eq!(keep("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(keep("a\nb\nc\n", 3), "a\nb\nc\n");
        assert_eq!(keep("a\nb\nc\n", 9), "a\nb\nc\n");
        assert_eq!(keep("a\nb\ncut", 1), "b\n");
        assert_eq!(keep("cut", 1), "");
    }

    #[test]
    fn amend_changes_one_record_and_keeps_the_others() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        for seq in 1..=3 {
            append(&run, &record(seq));
        }
        amend(&run, 2, |d| d.awake = Some(1.5));
        amend(&run, 99, |d| d.awake = Some(9.0));
        let text = std::fs::read_to_string(run.join(LOG_DIR).join(HISTORY)).unwrap();
        let recs: Vec<Record> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].details.awake, Some(1.5));
        assert!(recs[0].details.is_empty() && recs[2].details.is_empty());
    }

    #[test]
    fn history_is_bounded_and_oldest_first() {
        let t = tempfile::tempdir().unwrap();
        let run = RunDir::create(t.path().join("run"), 0o770).unwrap();
        for seq in 1..=LIMIT as u64 + 5 {
            append(&run, &record(seq));
        }
        let text = std::fs::read_to_string(run.join(LOG_DIR).join(HISTORY)).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| l.parse::<Record>().unwrap().seq)
            .collect();
        assert_eq!(seqs.len(), LIMIT);
        assert_eq!(seqs.first(), Some(&6));
        assert_eq!(seqs.last(), Some(&(LIMIT as u64 + 5)));
    }
}
