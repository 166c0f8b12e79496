//! watch_test — the original's watcher test program.
//!
//! Registers as a watcher of lsusd and prints one line per event, flushed
//! at once: `suspend imminent` before a suspend, `ready` when it lets the
//! suspend go ahead, `resumed` after resume (or after an aborted attempt:
//! the protocol does not tell them apart).
//!
//! ```text
//! watch_test &                   # watching /run/suspend
//! request-suspend                # suspend imminent / ready / resumed
//! watch_test --delay 2000        # a slow watcher: the suspend waits 2 s
//! watch_test --block-for 10      # "not now": keeps the machine up 10 s
//! watch_test --abort             # aborts every attempt
//! ```
//!
//! Exit status: 0 after `--count` cycles, 2 on error (lsusd not running, …).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use libsus::{BlockGuard, Blocker, WatchEvent, Watcher};
use lsus_examples::say;

/// Print a line for each suspend and resume lsusd announces.
#[derive(Debug, Parser)]
#[command(name = "watch_test", version)]
struct Cli {
    /// Run directory of lsusd [default: $LSUSD_RUN_DIR or /run/suspend].
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,

    /// Wait MS milliseconds before saying ready (a slow watcher).
    #[arg(long, value_name = "MS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    delay: u64,

    /// At "suspend imminent", block suspend before saying ready and keep
    /// the block for SECS seconds: the watcher's way to say "not now".
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=lsus_examples::MAX_SECS))]
    block_for: Option<u64>,

    /// At "suspend imminent", read `disabled` before saying ready, which
    /// aborts the attempt.
    #[arg(long)]
    abort: bool,

    /// Exit after N suspend cycles (0: never).
    #[arg(long, value_name = "N", default_value_t = 0)]
    count: u64,
}

fn main() -> ExitCode {
    lsus_examples::exit_status("watch_test", run(&Cli::parse()))
}

fn run(cli: &Cli) -> libsus::Result<()> {
    let dir = cli.run_dir.clone().unwrap_or_else(libsus::run_dir);
    // Open the blocker first: a missing lsusd is reported before anything
    // else, and a block can be taken at once when it is needed.
    let blocker = Blocker::open_in(&dir)?;
    let mut watcher = Watcher::open_in(&dir)?;
    say(&format!("watching {}", dir.display()));
    // The block taken at "suspend imminent" and when it ends.
    let mut held: Option<(BlockGuard<'_>, Instant)> = None;
    let mut cycles = 0u64;
    loop {
        let timeout = held
            .as_ref()
            .map(|(_, until)| until.saturating_duration_since(Instant::now()));
        let event = watcher.wait_timeout(timeout)?;
        if let Some((_, until)) = &held {
            if Instant::now() >= *until {
                held = None;
                say("block released");
            }
        }
        match event {
            None => {}
            Some(WatchEvent::SuspendImminent) => {
                say("suspend imminent");
                if let Some(secs) = cli.block_for {
                    if held.is_none() {
                        held = Some((blocker.block()?, Instant::now()));
                    }
                    if let Some((_, until)) = held.as_mut() {
                        *until = Instant::now() + Duration::from_secs(secs);
                    }
                    say(&format!("holding a block on disabled for {secs} s"));
                }
                if cli.abort {
                    blocker.abort()?;
                    say("read disabled: this attempt is aborted");
                }
                if cli.delay > 0 {
                    std::thread::sleep(Duration::from_millis(cli.delay));
                }
                watcher.ready()?;
                say("ready");
            }
            Some(WatchEvent::Resumed) => {
                say("resumed");
                cycles += 1;
                if cli.count > 0 && cycles >= cli.count {
                    break;
                }
            }
        }
    }
    // Unregister first, then let a block still held run its course.
    drop(watcher);
    if let Some((guard, until)) = held {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        guard.allow();
        say("block released");
    }
    Ok(())
}
