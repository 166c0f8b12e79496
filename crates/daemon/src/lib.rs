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
