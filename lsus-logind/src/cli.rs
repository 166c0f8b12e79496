//! The command line of `lsus-logind`.
//!
//! A library of its own so that `crates/docgen` can build the man page and
//! the shell completions from the same definition the binary parses.

use std::path::PathBuf;

use clap::Parser;

/// lsus-logind: systemd-logind's sleep inhibitors block lsusd.
///
/// While logind has an inhibitor in mode "block" whose "what" includes
/// "sleep", lsus-logind holds a shared lock on RUN/disabled, so lsusd does
/// not suspend; it lets go when the last one goes, and while logind runs a
/// suspend of its own (between PrepareForSleep true and false). It
/// publishes logind's inhibitors in RUN/lsus-logind.status, so that
/// request-suspend and lsusctl name them.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// Run directory shared with lsusd [default: /run/suspend]
    #[arg(long, value_name = "DIR", env = "LSUSD_RUN_DIR")]
    pub run_dir: Option<PathBuf>,

    /// D-Bus address of the bus logind is on [default: the system bus,
    /// or DBUS_SYSTEM_BUS_ADDRESS]
    #[arg(long, value_name = "ADDRESS")]
    pub bus_address: Option<String>,

    /// Log more (repeat for even more)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log less (repeat for even less)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bus_address() {
        let cli = Cli::try_parse_from(["lsus-logind"]).unwrap();
        assert_eq!(cli.bus_address, None);
        let cli =
            Cli::try_parse_from(["lsus-logind", "--bus-address", "unix:path=/x", "-v"]).unwrap();
        assert_eq!(cli.bus_address.as_deref(), Some("unix:path=/x"));
        assert_eq!(cli.verbose, 1);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
