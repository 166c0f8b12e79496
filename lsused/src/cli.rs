//! Command-line options.

use std::time::Duration;

use clap::Parser;
use lsus_daemon::args::CommonArgs;

/// lsused — wake-event registration for lsusd.
///
/// Programs register descriptors (a modem, a keyboard, a socket) on
/// RUN/registration. When lsusd is about to suspend, lsused looks at them
/// once: a program whose descriptor has input waiting is sent `S` and the
/// suspend waits until it answers `R`, so that input is handled before the
/// machine sleeps again.
#[derive(Debug, Parser)]
#[command(name = "lsused", version, about, long_about)]
pub struct Cli {
    // The options every daemon takes: --run-dir, -v, -q.
    #[command(flatten)]
    pub common: CommonArgs,

    /// Permissions of RUN/registration, in octal (give a group access with
    /// 0660 and a suitable group on the run directory).
    #[arg(long, value_name = "MODE", default_value = "0660", value_parser = lsus_proto::args::socket_mode)]
    pub socket_mode: u32,

    /// Stop waiting for a client's `R` after this many seconds and let the
    /// suspend go on, naming the tardy clients in the log and in
    /// RUN/lsused.status (`tardy=`); 0 waits as long as it takes, as the
    /// original.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = lsus_proto::args::seconds_or_zero)]
    pub reply_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn modes_and_seconds_are_checked() {
        for bad in [
            &["--socket-mode", "0"][..],
            &["--socket-mode", "0689"],
            &["--reply-timeout", "-1"],
            &["--reply-timeout", "1e20"],
        ] {
            let args = [&["lsused"][..], bad].concat();
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        let cli = Cli::try_parse_from(["lsused", "--reply-timeout", "0.25"]).unwrap();
        assert_eq!(cli.reply_timeout, Duration::from_millis(250));
        let cli = Cli::try_parse_from(["lsused", "--reply-timeout", "0"]).unwrap();
        assert_eq!(cli.reply_timeout, Duration::ZERO);
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["lsused", "--run-dir", "/tmp/x"]).unwrap();
        assert_eq!(cli.socket_mode, 0o660);
        assert_eq!(cli.reply_timeout, Duration::from_secs(30));
        assert_eq!(cli.common.run_dir, PathBuf::from("/tmp/x"));
    }
}
