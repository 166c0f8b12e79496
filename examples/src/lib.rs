//! What the example programs share: live output and the error exit.

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

/// The longest time (seconds) an example's option accepts: ten years.
/// Larger values are refused by the command line (exit 2) rather than
/// overflowing the time arithmetic later.
pub const MAX_SECS: u64 = 10 * 365 * 24 * 3600;

/// Exit status of an example that failed (lsusd not running, an I/O
/// error): 2, as `request-suspend` uses for errors.
pub const EXIT_ERROR: u8 = 2;

/// Prints a line and flushes at once: scripts and tests read it live. A
/// closed standard output is ignored: it must not change what the program
/// does to suspend.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Turns the result of an example's `run` into its exit status: success,
/// or one line `NAME: error` on standard error and [`EXIT_ERROR`].
pub fn exit_status<E: Display>(name: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
