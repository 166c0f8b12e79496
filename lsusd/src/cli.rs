//! Command-line options.

use std::path::PathBuf;

use clap::Parser;
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
    /// Run directory shared with the clients.
    #[arg(long, value_name = "DIR", env = "LSUSD_RUN_DIR", default_value = lsus_proto::rundir::DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,

    /// Root of the sysfs tree (power/wakeup_count, power/state).
    #[arg(long, value_name = "DIR", default_value = "/sys")]
    pub sysfs: PathBuf,

    /// Sleep state written to power/state.
    #[arg(long, value_name = "STATE", default_value = "mem", value_parser = parse_state)]
    pub state: SleepState,

    /// Do everything except the write to power/state, which is logged.
    #[arg(long)]
    pub dry_run: bool,

    /// First pause after a failed attempt in immediate mode (milliseconds;
    /// doubles after each further failure).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub backoff_initial_ms: u64,

    /// Longest pause between failed attempts in immediate mode (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub backoff_max_ms: u64,

    /// Grace period for a new, not yet locked, RUN/immediate (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub immediate_grace_ms: u64,

    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (repeat for less).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,
}

fn parse_state(s: &str) -> Result<SleepState, String> {
    s.parse()
}
