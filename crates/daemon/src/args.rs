//! The options every daemon shares, declared once and flattened into each
//! daemon's command line (`#[command(flatten)]`), so that their names,
//! help, environment variable and defaults are the same everywhere.

use std::path::PathBuf;

use lsus_proto::rundir::{DEFAULT_RUN_DIR, RUN_DIR_ENV};
use lsus_sys::DEFAULT_SYSFS;

/// `--run-dir`, `-v` and `-q`: every daemon takes them.
///
/// ```
/// use clap::Parser;
/// use lsus_daemon::args::CommonArgs;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     common: CommonArgs,
/// }
///
/// let cli = Cli::parse_from(["d", "--run-dir", "/tmp/run", "-vv"]);
/// assert_eq!(cli.common.run_dir, std::path::PathBuf::from("/tmp/run"));
/// assert_eq!((cli.common.verbose, cli.common.quiet), (2, 0));
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Run directory shared with lsusd and its clients.
    #[arg(long, value_name = "DIR", env = RUN_DIR_ENV, default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,

    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (repeat for less).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

/// `--sysfs`, for the daemons that read or write kernel files (lsusd,
/// wakealarmd).
#[derive(Debug, Clone, clap::Args)]
pub struct SysfsArg {
    /// Root of the sysfs tree whose kernel files the daemon reads and
    /// writes (another one for tests and demos).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_SYSFS)]
    pub sysfs: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        sysfs: SysfsArg,
    }

    #[test]
    fn defaults_and_a_bad_flag() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["d", "--run-dir", "/r", "-q"]).unwrap();
        assert_eq!(cli.common.run_dir, PathBuf::from("/r"));
        assert_eq!((cli.common.verbose, cli.common.quiet), (0, 1));
        assert_eq!(cli.sysfs.sysfs, PathBuf::from("/sys"));
        let err = Cli::try_parse_from(["d", "--bogus"]).unwrap_err();
        assert_eq!(err.exit_code(), crate::EXIT_USAGE);
        // An empty value is a usage error, not the current directory.
        let err = Cli::try_parse_from(["d", "--run-dir", ""]).unwrap_err();
        assert_eq!(err.exit_code(), crate::EXIT_USAGE);
    }
}
