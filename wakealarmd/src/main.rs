//! wakealarmd: wake alarms for lsusd (doc/protocol.md §4).
//!
//! Clients connect to `RUN/wakealarm` and write a time; wakealarmd answers
//! `Now` when it comes, keeps the machine awake around it, and before a
//! suspend programs the RTC so a sleeping machine wakes up for it.

mod client;
mod schedule;
mod server;
mod suspend;
mod timer;

use std::process::ExitCode;

use lsus_daemon::signals::ShutdownSignals;
use lsus_daemon::Descriptors;
use lsus_proto::rundir::{RunDir, WAKEALARM};
use lsus_proto::status::WAKEALARMD_STATUS;
use lsus_sys::rtc::Rtc;

use crate::server::Server;
use wakealarmd_cli::Cli;

type Fatal = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    lsus_daemon::run_after_lsusd("wakealarmd", Descriptors::PerClient, serve)
}

/// wakealarmd once lsusd is ready: serves `RUN/wakealarm` until a
/// shutdown signal.
fn serve(cli: &Cli, signals: ShutdownSignals, run: RunDir) -> Result<(), Fatal> {
    let dir = cli.common.run_dir.clone();
    let watcher = libsus::Watcher::open_in(&dir)?;
    let timer = timer::AlarmTimer::new().map_err(|e| format!("cannot create a timer: {e}"))?;
    let rtc = Rtc::new(&cli.sysfs.sysfs, &cli.rtc);
    if let Err(e) = rtc.offset(std::time::SystemTime::now()) {
        // Alarms still work while awake; only waking from suspend needs it.
        tracing::warn!("RTC not usable, a suspended system will not wake for alarms: {e}");
    }
    let (listener, socket) = lsus_daemon::listener::bind(&run.join(WAKEALARM), cli.socket_mode)?;
    let status = lsus_daemon::status::StatusFile::new(run, WAKEALARMD_STATUS);
    // Three spares: with a full table, suspend imminent opens
    // `watching-next`, and keeping the machine awake the run directory and
    // `disabled` (libsus's Blocker) at the same time.
    let acceptor = lsus_daemon::accept::Acceptor::with_spares(listener, 3);
    let mut server = Server::new(acceptor, watcher, timer, signals, rtc, dir, status);
    server.set_dry_run(cli.dry_run);
    tracing::info!("ready: listening on {}", socket.path().display());
    lsus_daemon::notify::announce_ready();
    let result = server.run();
    lsus_daemon::notify::stopping();
    // Removed if it is still ours (a successor may have replaced it).
    drop(socket);
    let signal = result?;
    tracing::info!("{signal}: exiting");
    Ok(())
}
