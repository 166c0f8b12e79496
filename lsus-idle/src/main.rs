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
use std::time::Instant;

use lsus_daemon::signals::ShutdownSignals;
use lsus_daemon::Descriptors;
use lsus_proto::idle::LSUS_IDLE_STATUS;
use lsus_proto::rundir::{self, RunDir};

use crate::daemon::Daemon;
use crate::devices::Devices;
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
    let dir = cli.common.run_dir.clone();
    let devices = Devices::new(&cli.input_dir, cli.fake_input)?;
    let status =
        lsus_daemon::status::StatusFile::new(rundir::RunDir::open(&dir)?, LSUS_IDLE_STATUS);
    let mut daemon = Daemon {
        dir: dir.clone(),
        run,
        signals,
        idle: idle::Idle::new(cli.idle, Instant::now()),
        status,
        dry_run: cli.dry_run,
        guard: None,
        ending: None,
        refused: false,
        devices,
    };
    tracing::info!(
        "ready: idle after {} s without input on {} device{} in {}{}",
        cli.idle.as_secs_f64(),
        daemon.devices.count(),
        if daemon.devices.count() == 1 { "" } else { "s" },
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
