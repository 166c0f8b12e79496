//! `lsusctl history`: the outcomes lsusd recorded in `RUN/log/history`.

use lsus_proto::rundir::{HISTORY, LOG_DIR};

use crate::error::Error;
use crate::json::{to_line, RecordJson};
use crate::{record, rundir};

/// Runs `lsusctl history`; with `timeline`, draws the last `timeline`
/// span instead of listing.
pub fn run(
    dir: &std::path::Path,
    json_out: bool,
    n: Option<usize>,
    timeline: Option<std::time::Duration>,
) -> Result<String, Error> {
    // The history outlives lsusd; reading it does not need lsusd running.
    let run = rundir::open(dir)?;
    let records = rundir::records(&run, n)?;
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
        out.push_str(&record::line(r));
        out.push('\n');
    }
    Ok(out)
}
