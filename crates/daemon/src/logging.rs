//! Log set-up for the daemons.
//!
//! On a terminal: human-readable lines with a timestamp. Under systemd
//! (`JOURNAL_STREAM` names our standard error): each line starts with a
//! syslog priority prefix (`<3>` … `<7>`) and carries no timestamp, so
//! `journalctl -p warning -u lsusd` works. `-v`/`-q` move the level;
//! `RUST_LOG` overrides it.

use std::fmt;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Returns the default level for `verbose` minus `quiet` steps from INFO.
pub fn level(verbose: u8, quiet: u8) -> Level {
    match i16::from(verbose) - i16::from(quiet) {
        i16::MIN..=-2 => Level::ERROR,
        -1 => Level::WARN,
        0 => Level::INFO,
        1 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Returns true if and only if standard error is connected to the journal
/// (systemd sets `JOURNAL_STREAM=dev:ino` of the stream it connected).
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Formats events as `<prio>message key=value…` for the journal.
struct JournalFormat;

fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(verbose: u8, quiet: u8) {
    let filter = EnvFilter::builder()
        .with_default_directive(level(verbose, quiet).into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second init (tests) is harmless: the first subscriber stays.
    if stderr_is_journal() {
        let _ = builder
            .with_ansi(false)
            .event_format(JournalFormat)
            .try_init();
    } else {
        let ansi = nix::unistd::isatty(2).unwrap_or(false);
        let _ = builder.with_ansi(ansi).try_init();
    }
}

/// Reports the error that ends the daemon: one line, through the journal
/// when under systemd (so it carries priority 3), else on standard error.
pub fn fatal(name: &str, error: &dyn std::error::Error) {
    if stderr_is_journal() {
        tracing::error!("{error}");
    } else {
        eprintln!("{name}: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_moves_the_level() {
        assert_eq!(level(0, 0), Level::INFO);
        assert_eq!(level(1, 0), Level::DEBUG);
        assert_eq!(level(3, 0), Level::TRACE);
        assert_eq!(level(0, 1), Level::WARN);
        assert_eq!(level(0, 5), Level::ERROR);
    }

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
    }
}
