//! The table: one row per measured figure, with its target beside it;
//! printed as Markdown or JSON.

use std::fmt::Write as _;

use serde::{Serialize, Serializer};

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
    /// The case needs an option this run was not given (the result says
    /// which); unlike [`Verdict::Skipped`], never a failure under CI.
    NotAsked,
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
                Verdict::Skipped | Verdict::NotAsked => "skipped",
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

    /// Returns the report as one JSON object (see [`Json`]).
    pub fn json(&self) -> crate::error::Result<String> {
        let doc = Json {
            version: JSON_VERSION,
            rows: self.rows.iter().map(RowJson::from).collect(),
            notes: &self.notes,
        };
        serde_json::to_string_pretty(&doc)
            .map(|j| j + "\n")
            .or_else(|e| crate::error::plumbing(format!("cannot write the report as JSON: {e}")))
    }
}

/// The version of `lsus-bench --json`: it grows when a key changes meaning
/// or goes away.
pub const JSON_VERSION: u32 = 1;

/// `lsus-bench --json`: the rows, then the notes.
#[derive(Serialize)]
struct Json<'a> {
    version: u32,
    rows: Vec<RowJson<'a>>,
    notes: &'a [String],
}

/// A row; `met` is `null` for information and skipped rows, a value that
/// is not a number (NaN, infinity) is `null`.
#[derive(Serialize)]
struct RowJson<'a> {
    bench: &'a str,
    case: &'a str,
    measure: &'a str,
    result: &'a str,
    target: &'a str,
    met: Option<bool>,
    skipped: bool,
    #[serde(serialize_with = "in_order")]
    values: &'a [(&'static str, f64)],
}

impl<'a> From<&'a Row> for RowJson<'a> {
    fn from(r: &'a Row) -> Self {
        RowJson {
            bench: r.bench,
            case: &r.case,
            measure: &r.measure,
            result: &r.result,
            target: &r.target,
            met: match r.verdict {
                Verdict::Met => Some(true),
                Verdict::Missed => Some(false),
                Verdict::Info | Verdict::Skipped | Verdict::NotAsked => None,
            },
            skipped: matches!(r.verdict, Verdict::Skipped | Verdict::NotAsked),
            values: &r.values,
        }
    }
}

/// Writes the values as one object, in their order.
fn in_order<S: Serializer>(v: &[(&'static str, f64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(k, x)| (k, x)))
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
            vec![("p50_ms", 0.5), ("p99_ms", f64::NAN)],
        );
        r.note("a\nb");
        let j = r.json().unwrap();
        assert!(j.starts_with("{\n  \"version\": 1,\n  \"rows\": ["), "{j}");
        assert!(j.contains("\"case\": \"0 \\\"w\\\"\""), "{j}");
        assert!(j.contains("\"met\": false"), "{j}");
        assert!(j.contains("\"p50_ms\": 0.5,"), "{j}");
        assert!(j.contains("\"p99_ms\": null"), "{j}");
        assert!(j.contains("\"a\\nb\""), "{j}");
        assert_eq!(r.missed(), 1);
        assert!(r.markdown().contains("**MISSED**"));
    }
}
