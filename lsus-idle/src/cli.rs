//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use lsus_daemon::args::CommonArgs;

/// The default idle time: five minutes.
pub const DEFAULT_IDLE_SECS: &str = "300";

/// The default directory of the input devices.
pub const DEFAULT_INPUT_DIR: &str = "/dev/input";

/// lsus-idle: idle autosuspend for lsusd.
///
/// Watches the input devices (INPUT_DIR/event*, read-only, never grabbed,
/// following hotplug). When none has been used for the idle time it holds
/// lsusd's immediate mode, so the machine suspends whenever nothing
/// blocks, until the next input; input while an attempt it caused is
/// imminent aborts that attempt.
#[derive(Debug, Parser)]
#[command(name = "lsus-idle", version, about, long_about)]
pub struct Cli {
    // The options every daemon takes: --run-dir, -v, -q.
    #[command(flatten)]
    pub common: CommonArgs,

    /// Seconds without input after which the machine is idle.
    #[arg(long, value_name = "SECS", default_value = DEFAULT_IDLE_SECS, value_parser = lsus_proto::args::seconds)]
    pub idle: Duration,

    /// Directory of the input devices; its event* entries are watched.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_INPUT_DIR)]
    pub input_dir: PathBuf,

    /// Test hook: an event* entry of INPUT_DIR that is a FIFO is read as a
    /// stream of raw 24-byte `struct input_event` records (the evdev
    /// ioctls do not work on a FIFO). Character devices are read through
    /// evdev as always.
    #[arg(long)]
    pub fake_input: bool,

    /// Log when the machine becomes idle and when input ends it, but
    /// neither hold immediate mode nor abort an attempt.
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["lsus-idle", "--run-dir", "/r"]).unwrap();
        assert_eq!(cli.idle, Duration::from_secs(300));
        assert_eq!(cli.input_dir, PathBuf::from("/dev/input"));
        assert!(!cli.fake_input && !cli.dry_run);
    }

    #[test]
    fn idle_must_be_a_positive_number_of_seconds() {
        for bad in ["0", "-1", "x", "1e20"] {
            let err = Cli::try_parse_from(["lsus-idle", "--idle", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let cli = Cli::try_parse_from(["lsus-idle", "--idle", "2.5"]).unwrap();
        assert_eq!(cli.idle, Duration::from_millis(2500));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
