//! The command line of `request-suspend`.
//!
//! A library of its own so that `crates/docgen` can build the man page and
//! the shell completions from the same definition the binary parses.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use lsus_proto::rundir::{DEFAULT_RUN_DIR, RUN_DIR_ENV};

/// Ask lsusd for one suspend and report what happened.
///
/// Creates RUN/request and waits for lsusd's answer: at once when suspend
/// is blocked (naming every holder of a block), else when the attempt is
/// over. Exits 0 only when the machine really suspended and resumed, 1
/// when it did not, 2 on error. Works with an lsusd that keeps no PID file
/// (the original), which cannot tell a suspend from an aborted attempt.
#[derive(Debug, Parser)]
#[command(name = "request-suspend", version, about, long_about)]
pub struct Cli {
    /// Run directory of lsusd.
    #[arg(long, value_name = "DIR", env = RUN_DIR_ENV, default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,

    /// Give up after SECS seconds (fractions allowed; the request is
    /// withdrawn).
    #[arg(long, value_name = "SECS", value_parser = lsus_proto::args::seconds)]
    pub timeout: Option<Duration>,

    /// Ask systemd-logind to suspend instead (its Suspend call on the
    /// system bus), so desktop programs are told (delay inhibitors,
    /// PrepareForSleep, screen locking); logind's systemd-suspend.service
    /// then asks lsusd, through the drop-in of install.sh --with-logind.
    /// Refused at once while a logind block inhibitor holds sleep. Reports
    /// lsusd's outcome of that attempt.
    #[arg(long)]
    pub via_logind: bool,

    /// While suspend is blocked, wait until the blockers have gone and ask
    /// again, then report that attempt ("suspend as soon as the backup
    /// finishes"). Waits for lsusd's word, never polls; bounded by
    /// --timeout. Not with --via-logind.
    #[arg(long, conflicts_with = "via_logind")]
    pub wait: bool,

    /// Suspend even while suspend is blocked (lid closed in a bag, battery
    /// critical): the watchers are still told and a wakeup event still
    /// aborts the attempt, but the blocks are gone over, and the record
    /// names them. Only root and members of the group suspend-force may
    /// (RUN/force); anyone else is refused with exit 2. Needs --why.
    #[arg(long, requires = "why", conflicts_with_all = ["via_logind", "wait"])]
    pub force: bool,

    /// With --force: the reason, recorded with the attempt (why=) and
    /// shown by lsusctl history and status.
    #[arg(long, value_name = "TEXT", requires = "force")]
    pub why: Option<String>,

    /// Print nothing; the exit status tells.
    #[arg(short, long)]
    pub quiet: bool,
}
