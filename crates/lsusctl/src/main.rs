//! lsusctl: why won't this machine sleep? See `lsusctl --help` and
//! lsusctl(1).

mod block;
mod error;
mod fmt;
mod history;
mod json;
mod procinfo;
mod record;
mod rundir;
mod stats;
mod status;
mod timeline;
mod watch;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use lsusctl_cli::{Cli, Command, EXIT_FAILURE, EXIT_OK};

use crate::error::Error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match try_main(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lsusctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints `text`; a closed standard output is not an error.
fn print(text: &str) -> Result<u8, Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(EXIT_OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
        Err(e) => {
            eprintln!("lsusctl: cannot write to standard output: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}

fn try_main(cli: Cli) -> Result<u8, Error> {
    let dir = cli.run_dir;
    match cli.command {
        Command::Status { json, last } => {
            let report = match status::gather(&dir, last) {
                // Scripts get their JSON also when lsusd is stopped.
                Err(Error::NotRunning { dir, why }) if json => {
                    let shown = dir.display().to_string();
                    let text = json::to_line(&status::NotRunning::new(&shown, &why))? + "\n";
                    eprintln!("lsusctl: lsusd is not running on {} ({why})", dir.display());
                    print(&text)?;
                    return Ok(lsusctl_cli::EXIT_NOT_RUNNING);
                }
                other => other?,
            };
            if json {
                print(&(status::json(&report)? + "\n"))
            } else {
                print(&status::text(&report))
            }
        }
        Command::Block {
            why: _,
            for_,
            command,
        } => block::run(&dir, &command, for_),
        Command::Watch { json, follow } => watch::run(&dir, json, follow),
        Command::History {
            json,
            lines,
            timeline,
            since,
        } => {
            let span = timeline.then(|| since.unwrap_or(timeline::DEFAULT_SPAN));
            print(&history::run(&dir, json, lines, span)?)
        }
        Command::Stats { since, json, sysfs } => print(&stats::run(&dir, since, json, &sysfs)?),
    }
}
