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
