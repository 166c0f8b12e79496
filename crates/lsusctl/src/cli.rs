//! The command line of `lsusctl`, and its exit codes.
//!
//! A library of its own so that `crates/docgen` can build the man page
//! and the shell completions from the same definition the binary parses.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use lsus_proto::rundir::{DEFAULT_RUN_DIR, RUN_DIR_ENV};
use lsus_sys::DEFAULT_SYSFS;

/// Exit code: done (for `block`: the command's own status is used).
pub const EXIT_OK: u8 = 0;
/// Exit code: something failed that has no code of its own.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: the command line is wrong (clap's code).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: lsusd is not running on the run directory.
pub const EXIT_NOT_RUNNING: u8 = 3;
/// Exit code: permission denied (not in the run directory's group).
pub const EXIT_PERMISSION: u8 = 4;
/// Exit code of `block`: the command was found but could not be run.
pub const EXIT_CANNOT_RUN: u8 = 126;
/// Exit code of `block`: the command was not found.
pub const EXIT_NOT_FOUND: u8 = 127;

/// lsusctl — why won't this machine sleep?
///
/// Looks at lsusd and its helpers through the run directory: who blocks
/// suspend (`status`), keeps the machine awake while a command runs
/// (`block`), prints suspends and resumes as they happen (`watch`), lists
/// the last outcomes (`history`, `history --timeline`) and sums them up
/// (`stats`): what woke the machine, who kept it awake and for how long. It needs the permissions of a
/// member of the run directory's group (`suspend` when installed with the
/// systemd units).
#[derive(Debug, Parser)]
#[command(name = "lsusctl", version, about, long_about)]
pub struct Cli {
    /// Run directory of lsusd.
    #[arg(
        long,
        value_name = "DIR",
        env = RUN_DIR_ENV,
        default_value = DEFAULT_RUN_DIR,
        global = true
    )]
    pub run_dir: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Is suspend blocked and by whom; immediate mode, watchers, lsused,
    /// wakealarmd and the last outcomes.
    ///
    /// Blockers are the holders of a shared lock on RUN/disabled as
    /// /proc/locks shows them, named by PID, user and command line. When
    /// the process /proc/locks names has exited and the lock lives on in
    /// a descriptor it shared (a shell's `flock --shared 9`), the
    /// processes that hold that descriptor are named instead.
    Status {
        /// One JSON object instead of text; its first key is "version": 1.
        #[arg(long)]
        json: bool,

        /// How many of the last outcomes to show (0 to 2000, what lsusd keeps).
        #[arg(long, value_name = "N", default_value_t = 5,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=2000))]
        last: usize,
    },

    /// Run a command with suspend blocked, and exit with its status.
    ///
    /// Holds a shared lock on RUN/disabled while CMD runs (the equivalent
    /// of systemd-inhibit). If a suspend is being entered, waits until the
    /// machine has resumed before starting CMD. Exits with CMD's status,
    /// 128+N when a signal N ended it, 127 when it was not found, 126 when
    /// it could not be run. SIGTERM and SIGHUP are passed on to CMD.
    ///
    /// With --for SPAN the block ends by itself after SPAN (30s, 10m, 2h)
    /// even if CMD goes on, and without CMD it lasts SPAN or until
    /// interrupted (exit 0). lsusd knows the deadline (RUN/until), so the
    /// block ends then even if lsusctl is stopped; `lsusctl status` shows
    /// the time left.
    Block {
        /// Why suspend is blocked; `lsusctl status` shows it.
        #[arg(long, value_name = "TEXT")]
        why: Option<String>,

        /// Block for this long at most (90s, 30m, 2h; plain seconds).
        #[arg(long = "for", value_name = "SPAN", value_parser = lsus_proto::args::span)]
        for_: Option<std::time::Duration>,

        /// The command and its arguments.
        #[arg(
            value_name = "CMD",
            required_unless_present = "for_",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        command: Vec<OsString>,
    },

    /// Print each suspend and resume as it happens, until interrupted or
    /// lsusd stops.
    ///
    /// Registers as a watcher of lsusd (and answers at once, so it never
    /// delays a suspend). Each line has the local time; a resume line also
    /// the time since the suspend line and, where lsusd recorded it, the
    /// outcome of the attempt.
    Watch {
        /// One JSON object per line instead of text; the first key of each
        /// is "version": 1.
        #[arg(long)]
        json: bool,

        /// When lsusd stops, wait for it to start again and go on watching
        /// (without it, the watch ends with exit status 3).
        #[arg(long)]
        follow: bool,
    },

    /// The last outcomes recorded by lsusd (RUN/log/history), oldest first.
    ///
    /// Each line says what happened and what lsusd learnt from the kernel:
    /// the wakeup source that woke the machine, the one that aborted an
    /// attempt, who held suspend off and for how long.
    History {
        /// One JSON array instead of text: an object per outcome, whose
        /// first key is "version": 1.
        #[arg(long, conflicts_with = "timeline")]
        json: bool,

        /// Only the last N outcomes (1 to 2000, what lsusd keeps).
        #[arg(short = 'n', long, value_name = "N", conflicts_with = "timeline",
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=2000))]
        lines: Option<usize>,

        /// A picture of the last hours in 80 columns: asleep, awake and
        /// blocked as bars on a time axis, each wake marked with its
        /// reason. Plain text when NO_COLOR is set or the output is not a
        /// terminal.
        #[arg(long)]
        timeline: bool,

        /// With --timeline, how far back: 90s, 30m, 8h, 7d [default: 8h].
        #[arg(long, value_name = "SPAN", requires = "timeline",
              value_parser = lsus_proto::args::span)]
        since: Option<std::time::Duration>,
    },

    /// Sums up the outcomes of a span of time: attempts by outcome,
    /// suspends, time asleep and awake, top wake reasons, top blockers by
    /// time held, top abort sources, and the kernel's suspend_stats with
    /// whether they agree with lsusd's count.
    Stats {
        /// How far back: 90s, 30m, 24h, 7d (lsusd keeps 2000 records:
        /// 7 days at 200 suspends a day).
        #[arg(long, value_name = "SPAN", default_value = "24h",
              value_parser = lsus_proto::args::span)]
        since: std::time::Duration,

        /// One JSON object instead of text; its first key is "version": 1.
        #[arg(long)]
        json: bool,

        /// Root of the sysfs tree (power/suspend_stats).
        #[arg(long, value_name = "DIR", default_value = DEFAULT_SYSFS)]
        sysfs: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn block_takes_everything_after_the_command_as_its_arguments() {
        let cli = Cli::try_parse_from([
            "lsusctl", "block", "--why", "backup", "--", "rsync", "-a", "--why", "x",
        ])
        .unwrap();
        let Command::Block { why, command, .. } = cli.command else {
            panic!("not block");
        };
        assert_eq!(why.as_deref(), Some("backup"));
        assert_eq!(command, ["rsync", "-a", "--why", "x"]);
        assert!(Cli::try_parse_from(["lsusctl", "block"]).is_err());
    }
}
