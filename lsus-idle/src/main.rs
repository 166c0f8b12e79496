//! lsus-idle: idle autosuspend for lsusd (doc/protocol.md §11).
//!
//! Counts the machine idle after `--idle SECS` without input on the input
//! devices it watches, then holds immediate mode (§1.2) until the next
//! input; input while an attempt it caused is imminent aborts that
//! attempt (a read of `disabled`, §1.1).

mod daemon;
mod devices;
mod idle;
mod input;

use std::process::ExitCode;

use lsus_daemon::signals::ShutdownSignals;
use lsus_daemon::Descriptors;
use lsus_proto::rundir::RunDir;

use crate::daemon::Daemon;
use lsus_idle_cli::Cli;

fn main() -> ExitCode {
    lsus_daemon::run_after_lsusd("lsus-idle", Descriptors::Few, serve)
}

/// lsus-idle once lsusd is ready: watches the input devices and holds
/// immediate mode while the machine is idle, until a shutdown signal.
fn serve(
    cli: &Cli,
    signals: ShutdownSignals,
    run: RunDir,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut daemon = Daemon::new(cli, run, signals)?;
    let count = daemon.device_count();
    tracing::info!(
        "ready: idle after {} s without input on {} device{} in {}{}",
        cli.idle.as_secs_f64(),
        count,
        if count == 1 { "" } else { "s" },
        cli.input_dir.display(),
        if cli.dry_run { " (--dry-run)" } else { "" }
    );
    lsus_daemon::notify::announce_ready();
    let result = daemon.run();
    lsus_daemon::notify::stopping();
    let signal = result?;
    tracing::info!("{signal}: exiting");
    Ok(())
}
