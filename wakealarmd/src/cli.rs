//! The command line.

use clap::Parser;
use lsus_daemon::args::{CommonArgs, SysfsArg};
use lsus_sys::rtc::DEFAULT_RTC;

/// wakealarmd: wake alarms for lsusd.
///
/// Clients connect to RUN/wakealarm and write a time (seconds since the
/// epoch); wakealarmd answers "Now" when it arrives, keeps the machine
/// awake around it and programs the RTC to wake a suspended machine.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    // The options every daemon takes: --run-dir, -v, -q.
    #[command(flatten)]
    pub common: CommonArgs,

    // --sysfs, as every daemon that reads kernel files takes it.
    #[command(flatten)]
    pub sysfs: SysfsArg,

    /// Name of the RTC under SYSFS/class/rtc
    #[arg(long, value_name = "NAME", default_value = DEFAULT_RTC)]
    pub rtc: String,

    /// Permissions of the socket RUN/wakealarm, in octal
    #[arg(long, value_name = "MODE", default_value = "0660", value_parser = lsus_proto::args::socket_mode)]
    pub socket_mode: u32,

    /// Log the RTC writes instead of making them (everything else happens)
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn defaults_and_octal_mode() {
        let cli = Cli::try_parse_from(["wakealarmd", "--run-dir", "/r"]).unwrap();
        assert_eq!(cli.sysfs.sysfs, PathBuf::from("/sys"));
        assert_eq!(cli.rtc, "rtc0");
        assert_eq!(cli.socket_mode, 0o660);
        assert!(!cli.dry_run);
        let cli = Cli::try_parse_from(["wakealarmd", "--dry-run"]).unwrap();
        assert!(cli.dry_run);
        let cli =
            Cli::try_parse_from(["wakealarmd", "--socket-mode", "0600", "--rtc", "rtc1"]).unwrap();
        assert_eq!(cli.socket_mode, 0o600);
        assert_eq!(cli.rtc, "rtc1");
        assert!(Cli::try_parse_from(["wakealarmd", "--socket-mode", "0999"]).is_err());
        assert!(Cli::try_parse_from(["wakealarmd", "--socket-mode", "77777"]).is_err());
        assert!(Cli::try_parse_from(["wakealarmd", "--socket-mode", "0"]).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
