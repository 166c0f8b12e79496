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

use clap::Parser;
use lsus_daemon::wait::Started;
use lsus_proto::idle::LSUS_IDLE_STATUS;
use lsus_proto::rundir;

use crate::daemon::Daemon;
use crate::devices::Devices;
use lsus_idle_cli::Cli;

/// The daemon's name: its PID file is `RUN/lsus-idle.pid`.
const NAME: &str = "lsus-idle";

type Fatal = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    lsus_daemon::run(NAME, &cli.common, || try_main(&cli))
}

fn try_main(cli: &Cli) -> Result<(), Fatal> {
    let dir = cli.common.run_dir.clone();
    let Some(Started {
        signals,
        run,
        instance: _instance,
    }) = lsus_daemon::wait::start(NAME, &dir)?
    else {
        return Ok(());
    };
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
