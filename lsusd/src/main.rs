//! lsusd: the Linux SUSpend Daemon. See `suspend_loop` for the loop.

mod backoff;
mod history;
mod suspend_loop;
mod trigger;
mod watchers;

use std::time::Duration;

use clap::Parser;
use lsus_daemon::{instance::InstanceLock, logging, notify, signals, EXIT_FAILURE, EXIT_OK};
use lsus_proto::rundir::RunDir;
use lsus_sys::power::SysfsPower;
use lsusd_cli as cli;

use crate::suspend_loop::{Config, Stop, Suspender};

fn main() {
    let cli = cli::Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    std::process::exit(match try_main(cli) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            lsus_daemon::logging::fatal("lsusd", &*e);
            EXIT_FAILURE
        }
    });
}

fn try_main(cli: cli::Cli) -> Result<(), Box<dyn std::error::Error>> {
    signals::install_shutdown_handlers()?;
    signals::install_alarm_interrupts()?;
    let run = RunDir::create(&cli.run_dir, 0o770)?;
    let _instance = InstanceLock::acquire(&run, "lsusd")?;
    // Before lsused and wakealarmd stage their status files through it.
    if let Err(e) = run.prepare_staging() {
        tracing::warn!("{e}; files are prepared in the run directory itself");
    }
    let power = SysfsPower::new(&cli.sysfs);
    for path in [power.wakeup_count_path(), power.state_path()] {
        if !path.exists() {
            tracing::warn!("{} does not exist", path.display());
        }
    }
    let cfg = Config {
        state: cli.state,
        dry_run: cli.dry_run,
        backoff_initial: Duration::from_millis(cli.backoff_initial_ms),
        backoff_max: Duration::from_millis(cli.backoff_max_ms),
        immediate_grace: Duration::from_millis(cli.immediate_grace_ms),
        nag_watchers: Some(Duration::from_secs(5)),
    };
    let mut suspender = Suspender::start(
        run,
        power,
        cfg.clone(),
        Stop {
            requested: signals::shutdown_requested,
            fd: signals::shutdown_fd(),
        },
    )?;
    tracing::info!(
        "ready: run directory {}, state {}{}",
        suspender.run_dir().path().display(),
        cfg.state,
        if cfg.dry_run { " (dry run)" } else { "" }
    );
    notify::announce_ready();
    suspender.run()?;
    notify::stopping();
    tracing::info!(
        "stopping on {}",
        signals::last_signal().unwrap_or("request")
    );
    Ok(())
}
