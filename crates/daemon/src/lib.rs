//! What the lsusd daemons share: the options they all take, logging
//! set-up, systemd readiness, shutdown signals, descriptor limits, the
//! single-instance lock, listening sockets and status files.
//!
//! Daemons depend on this crate and on `lsus-proto`, never on each other.

pub mod accept;
pub mod args;
pub mod clock;
pub mod instance;
pub mod limits;
pub mod listener;
pub mod logging;
pub mod notify;
pub mod signals;
pub mod status;
pub mod wait;

/// Exit code: everything went well.
pub const EXIT_OK: i32 = 0;
/// Exit code: the daemon could not start or hit a fatal error.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: bad command line (clap's own code).
pub const EXIT_USAGE: i32 = 2;

/// A mistake in the options that only shows once they are looked at (a
/// sysfs tree without the kernel files, a run directory whose parent is
/// missing): [`run`] exits with [`EXIT_USAGE`], like a usage error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A daemon's `main` once its command line is parsed: starts logging at
/// the level `-v`/`-q` ask for, runs `body`, and turns an error into the
/// one fatal line of [`logging::fatal`] and [`EXIT_FAILURE`] (or
/// [`EXIT_USAGE`] for a [`UsageError`]). A bad command line never gets
/// here: clap prints its message and exits with [`EXIT_USAGE`].
pub fn run<E>(
    name: &str,
    common: &args::CommonArgs,
    body: impl FnOnce() -> Result<(), E>,
) -> std::process::ExitCode
where
    E: Into<Box<dyn std::error::Error>>,
{
    logging::init(common.verbose, common.quiet);
    match body() {
        Ok(()) => std::process::ExitCode::from(EXIT_OK as u8),
        Err(e) => {
            let e = e.into();
            logging::fatal(name, &*e);
            let code = if e.is::<UsageError>() {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            };
            std::process::ExitCode::from(code as u8)
        }
    }
}

/// How many descriptors a daemon may need: [`run_after_lsusd`] raises the
/// limit for those that hold one per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Descriptors {
    /// The soft limit will do.
    Few,
    /// One per client (and per descriptor a client registers): the soft
    /// limit is raised to the hard one first
    /// ([`limits::raise_descriptor_limit_or_warn`]).
    PerClient,
}

/// The `main` of lsused, wakealarmd and lsus-idle, which serve lsusd or
/// its clients: parses the daemon's command line `C` (as `C::parse()`
/// does; `C` flattens [`args::CommonArgs`]), then [`run`] with
/// [`wait::start`] first. `serve` gets the command line, the shutdown
/// signals and the run directory once lsusd is ready; the instance lock
/// is held until it returns (its PID file goes before an error is
/// logged). A shutdown signal while waiting for lsusd ends the daemon
/// with [`EXIT_OK`].
pub fn run_after_lsusd<C, E>(
    name: &str,
    descriptors: Descriptors,
    serve: impl FnOnce(&C, signals::ShutdownSignals, lsus_proto::rundir::RunDir) -> Result<(), E>,
) -> std::process::ExitCode
where
    C: clap::Parser,
    E: Into<Box<dyn std::error::Error>>,
{
    let matches = C::command().get_matches();
    let (cli, common) = C::from_arg_matches(&matches)
        .and_then(|cli| {
            Ok((
                cli,
                <args::CommonArgs as clap::FromArgMatches>::from_arg_matches(&matches)?,
            ))
        })
        .unwrap_or_else(|e| e.format(&mut C::command()).exit());
    run(
        name,
        &common,
        || -> Result<(), Box<dyn std::error::Error>> {
            if descriptors == Descriptors::PerClient {
                limits::raise_descriptor_limit_or_warn();
            }
            let Some(wait::Started {
                signals,
                run,
                instance,
            }) = wait::start(name, &common.run_dir)?
            else {
                return Ok(());
            };
            let result = serve(&cli, signals, run).map_err(Into::into);
            drop(instance);
            result
        },
    )
}
