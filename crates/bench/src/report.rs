//! The table: one row per measured figure, with its target beside it;
//! printed as Markdown or JSON.

use lsus_proto::json::string as quote;
use std::fmt::Write as _;

/// Whether a row meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The target is met.
    Met,
    /// The target is missed.
    Missed,
    /// No target: information only.
    Info,
    /// The case could not run here (see the result).
    Skipped,
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// `lsusd`, `lsused`, `wakealarmd`, `idle`.
    pub bench: &'static str,
    /// The case, e.g. "100 watchers".
    pub case: String,
    /// What is measured.
    pub measure: String,
    /// The figure, formatted.
    pub result: String,
    /// The target, or empty.
    pub target: String,
    /// Met or not.
    pub verdict: Verdict,
    /// The figures as numbers, for `--json`.
    pub values: Vec<(&'static str, f64)>,
}

/// Everything the run produced.
#[derive(Debug, Default)]
pub struct Report {
    /// The rows, in order.
    pub rows: Vec<Row>,
    /// Notes printed under the table.
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a row.
    #[allow(clippy::too_many_arguments)]
    pub fn row(
        &mut self,
        bench: &'static str,
        case: impl Into<String>,
        measure: impl Into<String>,
        result: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
        values: Vec<(&'static str, f64)>,
    ) {
        self.rows.push(Row {
            bench,
            case: case.into(),
            measure: measure.into(),
            result: result.into(),
            target: target.into(),
            verdict,
            values,
        });
    }

    /// Adds a note.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Returns the number of rows whose target is missed.
    pub fn missed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Missed)
            .count()
    }

    /// Returns the Markdown table and the notes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| benchmark | case | measure | result | target | |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let mark = match r.verdict {
                Verdict::Met => "met",
                Verdict::Missed => "**MISSED**",
                Verdict::Info => "",
                Verdict::Skipped => "skipped",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.bench, r.case, r.measure, r.result, r.target, mark
            );
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }

    /// Returns the report as one JSON object.
    pub fn json(&self) -> String {
        let mut out = String::from("{\n  \"rows\": [\n");
        for (i, r) in self.rows.iter().enumerate() {
            let verdict = match r.verdict {
                Verdict::Met => "true",
                Verdict::Missed => "false",
                Verdict::Info | Verdict::Skipped => "null",
            };
            let values: Vec<String> = r
                .values
                .iter()
                .map(|(k, v)| {
                    if v.is_finite() {
                        format!("{}: {v}", quote(k))
                    } else {
                        format!("{}: null", quote(k))
                    }
                })
                .collect();
            let _ = write!(
                out,
                "    {{\"bench\": {}, \"case\": {}, \"measure\": {}, \"result\": {}, \"target\": {}, \"met\": {verdict}, \"skipped\": {}, \"values\": {{{}}}}}",
                quote(r.bench),
                quote(&r.case),
                quote(&r.measure),
                quote(&r.result),
                quote(&r.target),
                r.verdict == Verdict::Skipped,
                values.join(", ")
            );
            out.push_str(if i + 1 < self.rows.len() { ",\n" } else { "\n" });
        }
        out.push_str("  ],\n  \"notes\": [");
        let notes: Vec<String> = self.notes.iter().map(|n| quote(n)).collect();
        out.push_str(&notes.join(", "));
        out.push_str("]\n}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_and_marks_verdicts() {
        let mut r = Report::default();
        r.row(
            "lsusd",
            "0 \"w\"",
            "m",
            "1",
            "t",
            Verdict::Missed,
            vec![("p50_ms", 0.5)],
        );
        r.note("a\nb");
        let j = r.json();
        assert!(j.contains("\"case\": \"0 \\\"w\\\"\""), "{j}");
        assert!(j.contains("\"met\": false"), "{j}");
        assert!(j.contains("\"p50_ms\": 0.5"), "{j}");
        assert!(j.contains("\"a\\nb\""), "{j}");
        assert_eq!(r.missed(), 1);
        assert!(r.markdown().contains("**MISSED**"));
    }
}
