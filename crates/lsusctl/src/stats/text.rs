//! The [`Summary`] as text, for a person.

use std::fmt::Write as _;

use super::{secs, Summary, TOP};
use crate::fmt::{human, local_time};

impl Summary {
    /// The summary as text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let total: u64 = self.attempts.iter().map(|(_, n)| n).sum();
        let _ = writeln!(
            out,
            "lsusd, the last {} (since {}):",
            human(secs(self.since)),
            local_time(self.from)
        );
        if self.known_from > self.from {
            let _ = writeln!(
                out,
                "  (the history begins at {})",
                local_time(self.known_from)
            );
        }
        let by: Vec<String> = self
            .attempts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(w, n)| format!("{w} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "attempts: {total}{}",
            if by.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.join(", "))
            }
        );
        let awake = (self.known - self.asleep).max(0.0);
        let ratio = if self.known > 0.0 {
            format!(
                " — asleep {:.0}% of {}",
                100.0 * self.asleep / self.known,
                human(self.known)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "suspends: {}, asleep {}, awake {}{ratio}",
            self.count("suspended"),
            human(self.asleep),
            human(awake)
        );
        let list = |v: &[(String, u64)]| -> String {
            if v.is_empty() {
                return "none".into();
            }
            let mut parts: Vec<String> = v
                .iter()
                .take(TOP)
                .map(|(n, c)| format!("{n} {c}"))
                .collect();
            let rest: u64 = v.iter().skip(TOP).map(|(_, c)| c).sum();
            if rest > 0 {
                parts.push(format!("other {rest}"));
            }
            parts.join(", ")
        };
        let _ = writeln!(out, "wake reasons: {}", list(&self.wakes));
        let blockers: Vec<String> = self
            .blockers
            .iter()
            .take(TOP)
            .map(|b| {
                let pids: Vec<String> = b.pids.iter().map(u32::to_string).collect();
                format!(
                    "{} {} (PID {})",
                    b.command,
                    human(b.seconds),
                    pids.join(", ")
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "blockers by time held: {}",
            if blockers.is_empty() {
                "none".into()
            } else {
                blockers.join(", ")
            }
        );
        let _ = writeln!(out, "abort sources: {}", list(&self.aborts));
        let _ = writeln!(
            out,
            "tardy watchers (gone on without): {}",
            list(&self.tardy)
        );
        if self.forced > 0 {
            let _ = writeln!(out, "forced attempts: {}", self.forced);
        }
        match &self.kernel {
            Some(k) => {
                let counters: Vec<String> =
                    k.counters.iter().map(|(n, v)| format!("{n} {v}")).collect();
                let _ = writeln!(
                    out,
                    "kernel suspend_stats (since boot): {}",
                    counters.join(", ")
                );
                if k.last_failed_step.is_some() || k.last_failed_dev.is_some() {
                    let _ = writeln!(
                        out,
                        "  last failure: step {}, device {}, errno {}",
                        k.last_failed_step.as_deref().unwrap_or("?"),
                        k.last_failed_dev.as_deref().unwrap_or("?"),
                        k.last_failed_errno.map_or("?".into(), |e| e.to_string())
                    );
                }
            }
            None => {
                let _ = writeln!(out, "kernel suspend_stats: not available");
            }
        }
        match &self.agreement {
            Some(a) if a.kernel == a.lsusd => {
                let _ = writeln!(
                    out,
                    "the kernel agrees: {} suspends from seq {} to seq {}",
                    a.kernel, a.seqs.0, a.seqs.1
                );
            }
            Some(a) => {
                let _ = writeln!(
                    out,
                    "the kernel disagrees: {} suspends from seq {} to seq {}, lsusd {} \
                     (something else wrote power/state, or lsusd was restarted)",
                    a.kernel, a.seqs.0, a.seqs.1, a.lsusd
                );
            }
            None => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{sample_day, sample_empty};

    #[test]
    fn a_day_in_words() {
        let text = sample_day().text();
        assert!(text.contains("wake reasons: rtc0 1, unknown 1"), "{text}");
        assert!(
            text.contains("blockers by time held: rsync 11m 00s (PID 7)"),
            "{text}"
        );
        assert!(text.contains("the kernel disagrees"), "{text}");
    }

    #[test]
    fn an_empty_history_says_none() {
        assert!(sample_empty().text().contains("wake reasons: none"));
    }
}
