//! What the lsusd daemons share: logging set-up, systemd readiness,
//! shutdown signals, descriptor limits, the single-instance lock, listening
//! sockets and status files.
//!
//! Daemons depend on this crate and on `lsus-proto`, never on each other.

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

/// A daemon's `main` once its command line is parsed: starts logging at
/// the level `-v`/`-q` ask for, runs `body`, and turns an error into the
/// one fatal line of [`logging::fatal`] and [`EXIT_FAILURE`].
pub fn run<E>(
    name: &str,
    verbose: u8,
    quiet: u8,
    body: impl FnOnce() -> Result<(), E>,
) -> std::process::ExitCode
where
    E: Into<Box<dyn std::error::Error>>,
{
    logging::init(verbose, quiet);
    match body() {
        Ok(()) => std::process::ExitCode::from(EXIT_OK as u8),
        Err(e) => {
            logging::fatal(name, &*e.into());
            std::process::ExitCode::from(EXIT_FAILURE as u8)
        }
    }
}
