//! alarm_test — the original's wake-alarm test program.
//!
//! Asks wakealarmd for an alarm SECONDS ahead and prints the time it set;
//! prints `Now` when the alarm arrives (the machine is woken for it if it
//! sleeps), then holds suspend off for a few seconds — the alarm, once due,
//! blocks suspend until it is re-armed or dropped — and exits.
//!
//! ```text
//! alarm_test 30 &          # Alarm set for 1700000030 (in 30 s)
//! request-suspend          # the RTC wakes the machine 2 s early
//!                          # Now / Hold off suspend for 5 s... / OK - done
//! alarm_test --repeat 0 --hold 0 5   # every 5 s, forever
//! alarm_test --reconnect 300 90      # waits up to 300 s for a restarted wakealarmd
//! ```

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::process::ExitCode;

use clap::Parser;
use libsus::WakeAlarm;
use lsus_examples::say;

/// Set a wake alarm SECONDS ahead and report when it fires.
#[derive(Debug, Parser)]
#[command(name = "alarm_test", version)]
struct Cli {
    /// Run directory of lsusd and wakealarmd [default: $LSUSD_RUN_DIR or /run/suspend].
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,

    /// Seconds to hold suspend off after each alarm.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=lsus_examples::MAX_SECS))]
    hold: u64,

    /// Number of alarms, each re-armed SECONDS after the previous one was
    /// handled; 0 repeats forever.
    #[arg(long, value_name = "N", default_value_t = 1)]
    repeat: u64,

    /// How long to wait for a new wakealarmd when the connection ends
    /// before the alarm is due (libsus's `WakeAlarm::set_reconnect_timeout`;
    /// 0: never reconnect) [default: libsus's, 60].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=lsus_examples::MAX_SECS))]
    reconnect: Option<u64>,

    /// How far ahead the alarm is set.
    #[arg(value_parser = clap::value_parser!(u64).range(0..=lsus_examples::MAX_SECS))]
    seconds: u64,
}

fn main() -> ExitCode {
    lsus_examples::exit_status("alarm_test", run(&Cli::parse()))
}

fn seconds_of(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn run(cli: &Cli) -> libsus::Result<()> {
    let ahead = Duration::from_secs(cli.seconds);
    let mut alarm: Option<WakeAlarm> = None;
    let mut n = 0u64;
    while cli.repeat == 0 || n < cli.repeat {
        n += 1;
        let when = SystemTime::now() + ahead;
        let a = match alarm.as_mut() {
            Some(a) => {
                a.set(when)?;
                a
            }
            None => {
                let a = alarm.insert(match &cli.run_dir {
                    Some(dir) => WakeAlarm::new_in(dir, when)?,
                    None => WakeAlarm::new(when)?,
                });
                if let Some(secs) = cli.reconnect {
                    a.set_reconnect_timeout(Duration::from_secs(secs));
                }
                a
            }
        };
        say(&format!(
            "Alarm set for {} (in {} s)",
            seconds_of(a.when()),
            cli.seconds
        ));
        a.wait()?;
        say("Now");
        if a.reconnects() > 0 {
            say(&format!(
                "(wakealarmd restarted: connected again {} times, the alarm set again)",
                a.reconnects()
            ));
        }
        // The alarm is due: while we keep it, suspend stays blocked.
        say(&format!("Hold off suspend for {} s...", cli.hold));
        std::thread::sleep(Duration::from_secs(cli.hold));
    }
    drop(alarm);
    say("OK - done");
    Ok(())
}
