//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use lsus_daemon::args::{CommonArgs, SysfsArg};
use lsus_sys::power::SleepState;

/// lsusd — the Linux SUSpend Daemon.
///
/// The one process that decides when the machine sleeps. Clients block
/// suspend with a shared flock on RUN/disabled, watch it through
/// RUN/watching, ask for it by creating RUN/request, or turn on immediate
/// mode by holding a lock on RUN/immediate.
#[derive(Debug, Parser)]
#[command(name = "lsusd", version, about, long_about)]
pub struct Cli {
    // The options every daemon takes: --run-dir, -v, -q.
    #[command(flatten)]
    pub common: CommonArgs,

    // --sysfs, as every daemon that reads kernel files takes it.
    #[command(flatten)]
    pub sysfs: SysfsArg,

    /// Sleep state written to power/state.
    #[arg(long, value_name = "STATE", default_value = "mem", value_parser = parse_state)]
    pub state: SleepState,

    /// Do everything except the write to power/state, which is logged;
    /// the "suspend" then lasts --dry-run-sleep.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run, how long each "suspend" lasts (seconds, fractions
    /// allowed), so that immediate mode runs at a machine's pace instead
    /// of spinning.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = lsus_proto::args::seconds)]
    pub dry_run_sleep: Duration,

    /// First pause after a failed attempt in immediate mode (milliseconds,
    /// 1 to 3600000; doubles after each further failure).
    #[arg(long, value_name = "MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub backoff_initial_ms: u64,

    /// Longest pause between failed attempts in immediate mode
    /// (milliseconds, 1 to 86400000).
    #[arg(long, value_name = "MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub backoff_max_ms: u64,

    /// Grace period for a new, not yet locked, RUN/immediate (milliseconds,
    /// 0 to 60000).
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub immediate_grace_ms: u64,

    /// Stop waiting for watchers after this many seconds (0 to 86400; 0
    /// waits as long as it takes, as the original): the attempt goes on
    /// as if the tardy ones were ready, and the log and the outcome record
    /// (`tardy=`) name each. A watcher that is merely slow but ready
    /// within the limit is never cut short.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub watcher_timeout: u64,

    /// The group whose members (with root) may force a suspend over a
    /// block (`request-suspend --force`): RUN/force gets this group and
    /// mode 2770. A name or a number; a name that does not exist gives
    /// the run directory's group (logged).
    #[arg(long, value_name = "GROUP", default_value = lsus_proto::rundir::FORCE_GROUP)]
    pub force_group: String,

    /// After every attempt, write lsusd's counters to this file in the
    /// Prometheus text format (atomically), for node_exporter's textfile
    /// collector: attempts by outcome, seconds asleep, wake-ups by reason,
    /// seconds blocked by command.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

fn parse_state(s: &str) -> Result<SleepState, String> {
    s.parse()
}
