//! request-suspend: asks lsusd for one suspend and says what happened.
//!
//! Exit status: 0 when the machine suspended and resumed (or, with lsusd
//! in `--dry-run`, would have), 1 when it did not (blocked, aborted,
//! wakeup event, state write refused, request dropped), 2 on error. The
//! original exited 0 for any cycle that reached the watchers, even an
//! aborted one; this is a deliberate difference.

use std::process::ExitCode;

use clap::Parser;
use libsus::{Error, Outcome, Report, RequestOptions};
use lsus_proto::logind::name_holders;
use lsus_proto::rundir::RunDir;
use request_suspend_cli::Cli;

const EXIT_NOT_SUSPENDED: u8 = 1;
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let timeout = cli.timeout;
    match libsus::request_suspend_in(&cli.run_dir, &RequestOptions { timeout }) {
        Ok(report) => {
            if !cli.quiet {
                println!("{}", describe(&report, &cli.run_dir));
            }
            if report.suspended() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NOT_SUSPENDED)
            }
        }
        Err(e) => {
            let hint = match &e {
                // The directory itself is missing: say so, not "pass
                // --run-dir" to someone who did.
                Error::NotRunning(dir) if !dir.exists() => {
                    eprintln!(
                        "request-suspend: lsusd is not running on {}: the run directory \
                         does not exist (lsusd creates it when it starts; is the path right?)",
                        dir.display()
                    );
                    return ExitCode::from(EXIT_ERROR);
                }
                Error::NotRunning(_) => " (start lsusd, or pass --run-dir)",
                Error::Timeout(_) => " (the request was withdrawn)",
                _ => "",
            };
            eprintln!("request-suspend: {e}{hint}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Says what happened; a block by lsus-logind is named by the logind
/// inhibitors it stands for (`blocked by logind inhibitor "WHY" (WHO, PID
/// N, user U)`), read now from lsus-logind's status file.
fn describe(report: &Report, run_dir: &std::path::Path) -> String {
    if let (Some(Outcome::Blocked { pids }), Ok(run)) = (&report.outcome, RunDir::open(run_dir)) {
        let plain = |p: u32| format!("PID {p}");
        let names = name_holders(&run, pids, plain);
        if names.iter().cloned().ne(pids.iter().map(|&p| plain(p))) {
            return format!("blocked by {}", names.join(", "));
        }
    }
    report.to_string()
}
