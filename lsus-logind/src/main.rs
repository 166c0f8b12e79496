//! lsus-logind: systemd-logind's sleep inhibitors block lsusd.
//!
//! A desktop program keeps a systemd machine awake with a logind
//! inhibitor (`what` includes `sleep`, mode `block`); lsusd knows only
//! `flock`s on `RUN/disabled`. lsus-logind holds a shared lock there while
//! at least one such inhibitor exists, and lets go when the last goes and
//! while logind runs a suspend of its own (see `hold.rs` for why). It
//! publishes every inhibitor in `RUN/lsus-logind.status`, so that its PID
//! among the holders of `disabled` is named by the inhibitors it stands
//! for (`lsus_proto::logind::name_holders`).
//!
//! Threads: the main thread waits for a shutdown signal; the D-Bus thread
//! follows logind (`bus.rs`) with its reader; zbus keeps one internal
//! executor thread for the socket. No async runtime of our own.

mod bus;
mod hold;

use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use lsus_daemon::instance::InstanceLock;
use lsus_proto::logind::LSUS_LOGIND;
use lsus_proto::rundir::RunDir;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::hold::Hold;
use lsus_logind_cli::Cli;

type Fatal = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    lsus_daemon::run(LSUS_LOGIND, &cli.common, || try_main(&cli))
}

fn try_main(cli: &Cli) -> Result<(), Fatal> {
    // Before any thread starts: the threads inherit the blocked signals,
    // so a SIGTERM is read here and nowhere else.
    let mut signals = lsus_daemon::signals::ShutdownSignals::install()
        .map_err(|e| format!("cannot set up signal handling: {e}"))?;
    let dir = cli.common.run_dir.clone();
    let run = RunDir::open(&dir).map_err(|e| format!("{e} (is lsusd running?)"))?;
    // Its PID file goes when it stops, as lsused's and wakealarmd's do
    // (doc/protocol.md §1.8).
    let _instance = InstanceLock::acquire(&run, LSUS_LOGIND)?.remove_on_drop(&run, LSUS_LOGIND)?;
    let hold = Arc::new(Mutex::new(Hold::new(run)));

    // A panic in the D-Bus thread must not leave a daemon that holds
    // `disabled` and follows nothing: log it and end the process.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("fatal: {info}");
        default_hook(info);
        std::process::exit(lsus_daemon::EXIT_FAILURE);
    }));

    let address = cli.bus_address.clone();
    let shared = Arc::clone(&hold);
    std::thread::Builder::new()
        .name("dbus".into())
        .spawn(move || {
            bus::run(address.as_deref(), &shared, || {
                tracing::info!("ready: run directory {}", dir.display());
                lsus_daemon::notify::announce_ready();
            })
        })
        .map_err(|e| format!("cannot start the D-Bus thread: {e}"))?;

    let signal = loop {
        let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}").into()),
        }
        if let Some(sig) = signals.read().map_err(|e| format!("signalfd: {e}"))? {
            break sig;
        }
    };
    lsus_daemon::notify::stopping();
    // Under the lock, so the D-Bus thread writes nothing after this.
    bus::lock(&hold).stop();
    tracing::info!("{signal}: exiting");
    // The D-Bus thread is left to the end of the process, which drops our
    // lock on `disabled` and the connection with it.
    Ok(())
}
