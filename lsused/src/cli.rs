//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

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
    /// Run directory shared with lsusd and the clients [default: /run/suspend].
    #[arg(long, value_name = "DIR", env = lsus_proto::rundir::RUN_DIR_ENV)]
    pub run_dir: Option<PathBuf>,

    /// Permissions of RUN/registration, in octal (give a group access with
    /// 0660 and a suitable group on the run directory).
    #[arg(long, value_name = "MODE", default_value = "0660", value_parser = parse_mode)]
    pub socket_mode: u32,

    /// Stop waiting for a client's `R` after this many seconds and let the
    /// suspend go on (default: wait as long as it takes, as the original).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub reply_timeout: Option<Duration>,

    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (repeat for less).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

/// Parses an octal permission mode such as `0660`, `660` or `0o660`.
fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!("{s:?} is not an octal mode like 0660")),
    }
}

/// Parses a positive number of seconds, fractions allowed (`2`, `0.5`).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 => {
            Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
        }
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("0689").is_err());
        assert!(parse_mode("17777").is_err());
        assert!(parse_mode("").is_err());
    }

    #[test]
    fn seconds_may_have_fractions() {
        assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["lsused", "--run-dir", "/tmp/x"]).unwrap();
        assert_eq!(cli.socket_mode, 0o660);
        assert_eq!(cli.reply_timeout, None);
        assert_eq!(cli.run_dir, Some(PathBuf::from("/tmp/x")));
    }
}
