//! block_test — the original's blocking test program.
//!
//! Blocks suspend (a shared `flock` on `RUN/disabled`), holds the block for
//! SECS seconds, allows suspend again and exits. With `--abort` it instead
//! aborts the suspend attempt in progress, if any, by reading `disabled`.
//!
//! ```text
//! block_test 10 &          # suspend blocked for 10 s
//! request-suspend          # exits 1: blocked by PID …
//! block_test --abort       # aborts an attempt whose watchers are still busy
//! ```
//!
//! Exit status: 0 on success, 2 on error (lsusd not running, …).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use libsus::Blocker;
use lsus_examples::say;

/// Block suspend for SECS seconds, or abort a suspend in progress.
#[derive(Debug, Parser)]
#[command(name = "block_test", version)]
struct Cli {
    /// Run directory of lsusd [default: $LSUSD_RUN_DIR or /run/suspend].
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,

    /// Abort the suspend attempt in progress (if any) instead of blocking.
    #[arg(long, conflicts_with = "seconds")]
    abort: bool,

    /// How long to keep suspend blocked.
    #[arg(value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=lsus_examples::MAX_SECS))]
    seconds: u64,
}

fn main() -> ExitCode {
    lsus_examples::exit_status("block_test", run(&Cli::parse()))
}

fn run(cli: &Cli) -> libsus::Result<()> {
    let blocker = match &cli.run_dir {
        Some(dir) => Blocker::open_in(dir)?,
        None => Blocker::open()?,
    };
    if cli.abort {
        blocker.abort()?;
        say("aborted the suspend attempt in progress (if there was one)");
        return Ok(());
    }
    let guard = blocker.block()?;
    say(&format!("suspend blocked for {} s", cli.seconds));
    std::thread::sleep(Duration::from_secs(cli.seconds));
    guard.allow();
    say("suspend allowed");
    Ok(())
}
