//! request-suspend: asks lsusd for one suspend and says what happened.
//!
//! Exit status: 0 when the machine suspended and resumed (or, with lsusd
//! in `--dry-run`, would have), 1 when it did not (blocked, aborted,
//! wakeup event, state write refused, request dropped), 2 on error. The
//! original exited 0 for any cycle that reached the watchers, even an
//! aborted one; this is a deliberate difference.

mod interrupt;
mod via_logind;

use std::process::ExitCode;

use clap::Parser;
use libsus::{Error, Outcome, Report, RequestOptions};
use lsus_proto::logind::name_holders;
use lsus_proto::rundir::RunDir;
use lsus_sys::process;
use request_suspend_cli::Cli;

const EXIT_NOT_SUSPENDED: u8 = 1;
const EXIT_ERROR: u8 = 2;

/// The one error line, `request-suspend: MESSAGE`, and exit 2 (as every
/// program here: one clear line, non-zero).
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("request-suspend: {message}");
    ExitCode::from(EXIT_ERROR)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.via_logind {
        return through_logind(&cli);
    }
    if cli.force {
        return forced(&cli);
    }
    // Ctrl-C, SIGTERM, SIGHUP: withdraw the request, as --timeout does.
    if let Err(e) = interrupt::withdraw_on_signals(&cli.run_dir) {
        return fail(format_args!("cannot set up signal handling: {e}"));
    }
    let options = RequestOptions {
        timeout: cli.timeout,
        when_unblocked: cli.wait,
    };
    match libsus::request_suspend_in(&cli.run_dir, &options) {
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
                    return fail(format_args!(
                        "lsusd is not running on {}: the run directory does not exist \
                         (lsusd creates it when it starts; is the path right?)",
                        dir.display()
                    ));
                }
                Error::NotRunning(_) => " (start lsusd, or pass --run-dir)",
                Error::Timeout(_) => " (the request was withdrawn)",
                _ => "",
            };
            fail(format_args!("{e}{hint}"))
        }
    }
}

/// `--force`: a forced request (doc/protocol.md §12).
fn forced(cli: &Cli) -> ExitCode {
    // Ctrl-C, SIGTERM, SIGHUP: withdraw it (from RUN/force).
    let force_dir = cli.run_dir.join(lsus_proto::rundir::FORCE);
    if let Err(e) = interrupt::withdraw_on_signals(&force_dir) {
        return fail(format_args!("cannot set up signal handling: {e}"));
    }
    let options = RequestOptions {
        timeout: cli.timeout,
        when_unblocked: false,
    };
    let why = cli.why.as_deref().unwrap_or("?");
    match libsus::request_suspend_forced_in(&cli.run_dir, why, &options) {
        Ok(report) => {
            if !cli.quiet {
                let mut line = describe(&report, &cli.run_dir);
                if !report.details.overrode.is_empty() {
                    let names: Vec<String> = report
                        .details
                        .overrode
                        .iter()
                        .map(|n| n.to_string())
                        .collect();
                    line.push_str(&format!(" (forced over the block of {})", names.join(", ")));
                }
                println!("{line}");
            }
            if report.suspended() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NOT_SUSPENDED)
            }
        }
        Err(e) => fail(e),
    }
}

/// Says what happened. A blocked request gets one line per holder,
/// `blocked by PID N (command)` (the names `lsusctl status` gives), except
/// that lsus-logind is named by the logind inhibitors it stands for
/// (`blocked by logind inhibitor "WHY" (WHO, PID N, user U)`), read now
/// from lsus-logind's status file.
fn describe(report: &Report, run_dir: &std::path::Path) -> String {
    if let (Some(Outcome::Blocked { pids }), Ok(run)) = (&report.outcome, RunDir::open(run_dir)) {
        if !pids.is_empty() {
            let named = |p: u32| match process::command(p) {
                Some(command) => format!("PID {p} ({command})"),
                None => format!("PID {p} (it has exited since)"),
            };
            let lines: Vec<String> = name_holders(&run, pids, named)
                .into_iter()
                .map(|n| format!("blocked by {n}"))
                .collect();
            return lines.join("\n");
        }
    }
    report.to_string()
}

/// `--via-logind`: logind's sequence, then lsusd's attempt (the drop-in).
fn through_logind(cli: &Cli) -> ExitCode {
    let say = |text: String| {
        if !cli.quiet {
            println!("{text}");
        }
    };
    match via_logind::suspend(&cli.run_dir, cli.timeout) {
        Ok(via_logind::Answer::Inhibited(names)) => {
            say(format!("blocked by {}", names.join(", ")));
            ExitCode::from(EXIT_NOT_SUSPENDED)
        }
        Ok(via_logind::Answer::Attempt(record)) => {
            let report = Report {
                outcome: Some(record.outcome.clone()),
                cycle_ran: true,
                details: record.details.clone(),
            };
            say(describe(&report, &cli.run_dir));
            if record.outcome.suspended() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_NOT_SUSPENDED)
            }
        }
        Err(e) => fail(e),
    }
}
