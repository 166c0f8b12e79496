//! lsused — wake-event registration daemon for lsusd (doc/protocol.md §3).

mod client;
mod cycle;
mod server;

use lsus_daemon::accept::Acceptor;
use lsus_daemon::listener::{self, ListenError};
use lsus_daemon::signals::ShutdownSignals;
use lsus_daemon::status::StatusFile;
use lsus_daemon::{notify, Descriptors};
use lsus_proto::rundir::{self, RunDir, RunDirError};
use lsus_proto::status::LSUSED_STATUS;

use crate::server::{Server, Stop};
use lsused_cli::Cli;

/// lsused could not start, or its loop failed.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0} (is lsusd running?)")]
    RunDir(#[source] RunDirError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("cannot register as a watcher of lsusd: {0}")]
    Watcher(#[source] libsus::Error),
    #[error(transparent)]
    Loop(#[from] server::LoopError),
}

fn main() -> std::process::ExitCode {
    lsus_daemon::run_after_lsusd("lsused", Descriptors::PerClient, serve)
}

/// lsused once lsusd is ready: serves `RUN/registration` until a shutdown
/// signal.
fn serve(cli: &Cli, signals: ShutdownSignals, run: RunDir) -> Result<(), Error> {
    let path = run.join(rundir::REGISTRATION);
    let (listener, socket_file) = listener::bind(&path, cli.socket_mode)?;
    // Blocks while a suspend is in progress: we join for the next one.
    let watcher = libsus::Watcher::open_in(run.path()).map_err(Error::Watcher)?;

    notify::announce_ready();
    tracing::info!(
        "ready: listening on {}, watching lsusd on {}{}",
        socket_file.path().display(),
        run.path().display(),
        if cli.reply_timeout.is_zero() {
            ", no reply timeout".to_string()
        } else {
            format!(", reply timeout {:?}", cli.reply_timeout)
        }
    );
    let status = StatusFile::new(
        RunDir::open(run.path()).map_err(Error::RunDir)?,
        LSUSED_STATUS,
    );
    let mut server = Server::new(
        signals,
        watcher,
        Acceptor::new(listener),
        (!cli.reply_timeout.is_zero()).then_some(cli.reply_timeout),
        status,
    );
    let Stop::Signal(name) = server.run()?;
    notify::stopping();
    tracing::info!("{name}: shutting down");
    drop(socket_file);
    Ok(())
}
