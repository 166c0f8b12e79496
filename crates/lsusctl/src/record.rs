//! An outcome record for a person: what happened, in words, and the line
//! that `history`, `status` and `watch` show for it.

use lsus_proto::outcome::{Outcome, Record};

use crate::fmt::{epoch, local_time};

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

/// Where `records` (oldest first, the whole history) begin to know what
/// happened in the span `t0`..`t1` (seconds since the epoch): from `t0`
/// when one is older, else from the start of the first attempt (its
/// suspend and the time awake before it), within the span.
pub fn known_from(records: &[Record], t0: f64, t1: f64) -> f64 {
    let known = if records.iter().any(|r| epoch(r.time) < t0) {
        t0
    } else {
        records.first().map_or(t1, |r| {
            let mut start = epoch(r.time);
            if let Outcome::Suspended { seconds } = r.outcome {
                start -= seconds;
            }
            start - r.details.awake.unwrap_or(0.0)
        })
    };
    known.clamp(t0, t1)
}

/// Records written one a line, for tests (leading blanks ignored).
#[cfg(test)]
pub fn parse_lines(lines: &str) -> Vec<Record> {
    lines.lines().map(|l| l.trim().parse().unwrap()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_in_words() {
        assert_eq!(
            describe(&Outcome::Suspended { seconds: 3.25 }),
            "suspended for 3.2 s"
        );
        assert_eq!(
            describe(&Outcome::Blocked { pids: vec![7, 9] }),
            "blocked by PIDs 7, 9"
        );
    }

    #[test]
    fn details_show_in_the_line() {
        let r: Record = "seq=5 time=2.000 outcome=suspended seconds=1.000 woke=rtc0 \
                         held=7:1.500:sh\n"
            .parse()
            .unwrap();
        assert!(line(&r).ends_with("(woken by rtc0; PID 7 (sh) held it off for 1.5 s)"));
    }
}
