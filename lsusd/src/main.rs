//! lsusd: the Linux SUSpend Daemon. See `suspend_loop` for the loop.

mod backoff;
mod force;
mod held;
mod history;
mod metrics;
mod reasons;
mod suspend_loop;
mod timed;
mod trigger;
mod watchers;

use std::time::Duration;

use clap::Parser;
use lsus_daemon::{instance::InstanceLock, notify, signals, UsageError};
use lsus_proto::rundir::RunDir;
use lsus_sys::power::SysfsPower;
use lsusd_cli as cli;

use crate::suspend_loop::{Config, Stop, Suspender};

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    // A mistake in the options that only shows once they are looked at (a
    // sysfs tree without the kernel files, a run directory whose parent is
    // missing) is a UsageError: exit 2, as for a bad command line.
    lsus_daemon::run("lsusd", &cli.common.clone(), || try_main(cli))
}

/// Returns the kernel files missing under the sysfs root, relative to it
/// (`power/state`, `power/wakeup_count`). Without `--dry-run` any missing
/// one is an error naming its path; with it, a warning.
fn check_sysfs(power: &SysfsPower, dry_run: bool) -> Result<Vec<String>, UsageError> {
    let mut missing = Vec::new();
    for (name, path) in [
        ("power/state", power.state_path()),
        ("power/wakeup_count", power.wakeup_count_path()),
    ] {
        if path.exists() {
            continue;
        }
        if !dry_run {
            return Err(UsageError(format!(
                "{} does not exist: is --sysfs the sysfs root (/sys)?",
                path.display()
            )));
        }
        tracing::warn!(
            "{} does not exist: a real suspend would fail (dry run goes on; \
             every outcome will say so)",
            path.display()
        );
        missing.push(name.to_string());
    }
    Ok(missing)
}

/// A `--metrics-file` must name a file in a directory that exists.
fn check_metrics_file(path: &std::path::Path) -> Result<(), UsageError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if path.file_name().is_none() || !parent.is_dir() {
        return Err(UsageError(format!(
            "--metrics-file {}: {} is not a directory (node_exporter's \
             --collector.textfile.directory, say)",
            path.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// Opens the run directory, creating it only when its parent exists (a
/// misspelt path is refused, not silently made). Returns it and whether it
/// was created.
fn open_run_dir(path: &std::path::Path) -> Result<(RunDir, bool), Box<dyn std::error::Error>> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !parent.is_dir() {
        return Err(Box::new(UsageError(format!(
            "cannot create the run directory {}: {} does not exist (check --run-dir)",
            path.display(),
            parent.display()
        ))));
    }
    let existed = path.symlink_metadata().is_ok();
    let run = RunDir::create(path, 0o770)?;
    Ok((run, !existed))
}

fn try_main(cli: cli::Cli) -> Result<(), Box<dyn std::error::Error>> {
    signals::install_shutdown_handlers()?;
    signals::install_alarm_interrupts()?;
    // The options first: a wrong --sysfs or --run-dir changes nothing.
    let power = SysfsPower::new(&cli.sysfs.sysfs);
    let missing = check_sysfs(&power, cli.dry_run)?;
    if let Some(path) = &cli.metrics_file {
        check_metrics_file(path)?;
    }
    let (run, created) = open_run_dir(&cli.common.run_dir)?;
    let _instance = InstanceLock::acquire(&run, "lsusd")?;
    // Before lsused and wakealarmd stage their status files through it.
    if let Err(e) = run.prepare_staging() {
        tracing::warn!("{e}; files are prepared in the run directory itself");
    }
    let force_gid = match force::resolve_group(&cli.force_group) {
        Some(gid) => gid,
        None => {
            let gid =
                std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(run.path()).map_err(
                    |e| UsageError(format!("cannot stat {}: {e}", run.path().display())),
                )?);
            // Info, not a warning: a test's or a demo's run directory has
            // no such group; sysusers.d makes it on an installed system.
            tracing::info!(
                "group {} does not exist: {}/force gets the run directory's group ({gid}), \
                 whose members may force suspend",
                cli.force_group,
                run.path().display()
            );
            gid
        }
    };
    let cfg = Config {
        state: cli.state,
        dry_run: cli.dry_run,
        dry_run_sleep: cli.dry_run_sleep,
        missing,
        backoff_initial: Duration::from_millis(cli.backoff_initial_ms),
        backoff_max: Duration::from_millis(cli.backoff_max_ms),
        immediate_grace: Duration::from_millis(cli.immediate_grace_ms),
        nag_watchers: Some(Duration::from_secs(5)),
        force_gid: Some(force_gid),
        watcher_timeout: (cli.watcher_timeout > 0)
            .then(|| Duration::from_secs(cli.watcher_timeout)),
        metrics_file: cli.metrics_file.clone(),
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
        "ready: run directory {}{}, state {}{}",
        suspender.run_dir().path().display(),
        if created { " (created)" } else { "" },
        cfg.state,
        if cfg.dry_run {
            format!(" (dry run, each suspend {:?})", cfg.dry_run_sleep)
        } else {
            String::new()
        }
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
