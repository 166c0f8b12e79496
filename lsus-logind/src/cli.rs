//! The command line of `lsus-logind`.
//!
//! A library of its own so that `crates/docgen` can build the man page and
//! the shell completions from the same definition the binary parses.

use clap::Parser;
use lsus_daemon::args::CommonArgs;

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
    // The options every daemon takes: --run-dir, -v, -q.
    #[command(flatten)]
    pub common: CommonArgs,

    /// D-Bus address of the bus logind is on [default: the system bus,
    /// or DBUS_SYSTEM_BUS_ADDRESS]
    #[arg(long, value_name = "ADDRESS")]
    pub bus_address: Option<String>,
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
        assert_eq!(cli.common.verbose, 1);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
