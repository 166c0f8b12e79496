//! The blocking waits of [`crate::Watcher`] and [`crate::WakeEvents`]: an
//! event that is already there, else sleep until the descriptor may have
//! more or the deadline passes, and look again.

use std::time::{Duration, Instant};

use crate::Result;

/// Events read without blocking, and a way to sleep until there may be
/// more.
pub(crate) trait EventSource {
    /// What is read.
    type Event;

    /// The next event, if one is there (never blocks).
    fn next_event(&mut self) -> Result<Option<Self::Event>>;

    /// Sleeps until more may be there (`true`; a signal counts) or until
    /// `deadline` passes (`false`).
    fn sleep_until(&mut self, deadline: Option<Instant>) -> Result<bool>;
}

/// Blocks until the next event of `source`.
pub(crate) fn wait<S: EventSource>(source: &mut S) -> Result<S::Event> {
    loop {
        if let Some(event) = wait_timeout(source, None)? {
            return Ok(event);
        }
    }
}

/// Blocks until the next event of `source` or until `timeout` passes
/// (`None`: no limit); `None` on time-out.
pub(crate) fn wait_timeout<S: EventSource>(
    source: &mut S,
    timeout: Option<Duration>,
) -> Result<Option<S::Event>> {
    // A timeout too long for the clock is no deadline at all.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        if let Some(event) = source.next_event()? {
            return Ok(Some(event));
        }
        if !source.sleep_until(deadline)? {
            return Ok(None);
        }
    }
}
