//! One suspend attempt as lsused sees it, from "suspend imminent" to
//! "resumed": who was sent `S`, who still owes an `R`, when to nag about
//! the laggards and when to give up on them.
//!
//! Pure bookkeeping, no I/O: the server does the sending and the logging.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::client::ClientId;

/// How often the clients that owe an `R` are named in the log.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// What a moment in time means for a cycle that waits for answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    /// Nothing to do yet.
    Wait,
    /// Still waiting: name these clients in the log.
    Report(Vec<ClientId>),
    /// `--reply-timeout` passed: go on without these clients.
    GiveUp(Vec<ClientId>),
}

/// A suspend attempt in progress.
#[derive(Debug)]
pub struct Cycle {
    started: Instant,
    /// `started` on the boot-time clock, which counts the time asleep
    /// (`Instant` does not).
    started_boot: Duration,
    sent: Vec<ClientId>,
    awaiting: BTreeSet<ClientId>,
    answered: usize,
    vanished: usize,
    released: Option<Instant>,
    next_report: Instant,
    deadline: Option<Instant>,
}

impl Cycle {
    /// Starts a cycle at `now` in which `sent` were sent `S`.
    ///
    /// `reply_timeout` bounds the wait for their answers (`None`: wait as
    /// long as it takes).
    pub fn start(now: Instant, sent: Vec<ClientId>, reply_timeout: Option<Duration>) -> Cycle {
        let awaiting = sent.iter().copied().collect();
        Cycle {
            started: now,
            started_boot: lsus_daemon::clock::boot_time(),
            sent,
            awaiting,
            answered: 0,
            vanished: 0,
            released: None,
            next_report: now + REPORT_EVERY,
            deadline: reply_timeout.map(|t| now + t),
        }
    }

    /// Returns true if and only if every client sent `S` has answered (or
    /// gone, or been given up on).
    pub fn is_complete(&self) -> bool {
        self.awaiting.is_empty()
    }

    /// Returns true if and only if lsusd has been told "ready".
    pub fn is_released(&self) -> bool {
        self.released.is_some()
    }

    /// Notes that lsusd was told "ready" at `now`.
    pub fn release(&mut self, now: Instant) {
        self.released.get_or_insert(now);
    }

    /// Notes an `R` from `id`. Returns true if and only if it was awaited
    /// (an `R` at any other time means nothing).
    pub fn answered(&mut self, id: ClientId) -> bool {
        let was = self.awaiting.remove(&id);
        self.answered += usize::from(was);
        was
    }

    /// Notes that `id` disconnected. Returns true if and only if its `R`
    /// was awaited: it now counts as ready (the original waited forever).
    pub fn vanished(&mut self, id: ClientId) -> bool {
        self.sent.retain(|&c| c != id);
        let was = self.awaiting.remove(&id);
        self.vanished += usize::from(was);
        was
    }

    /// Returns how long the event loop may sleep before [`Cycle::tick`] has
    /// something to do; `None` when no answer is awaited.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        if self.awaiting.is_empty() {
            return None;
        }
        let next = match self.deadline {
            Some(deadline) => deadline.min(self.next_report),
            None => self.next_report,
        };
        Some(next.saturating_duration_since(now))
    }

    /// Looks at the clock: time to name the laggards, or to give up on them.
    pub fn tick(&mut self, now: Instant) -> Tick {
        if self.awaiting.is_empty() {
            return Tick::Wait;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            let late: Vec<ClientId> = std::mem::take(&mut self.awaiting).into_iter().collect();
            return Tick::GiveUp(late);
        }
        if now >= self.next_report {
            // Catch up without a burst after a long stall.
            while self.next_report <= now {
                self.next_report += REPORT_EVERY;
            }
            return Tick::Report(self.awaiting.iter().copied().collect());
        }
        Tick::Wait
    }

    /// Returns how long the cycle has run at `now`.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// Returns how long it took until lsusd was told "ready", if it was.
    pub fn time_to_release(&self) -> Option<Duration> {
        self.released
            .map(|r| r.saturating_duration_since(self.started))
    }

    /// Returns how many of the clients sent `S` answered `R` in time.
    pub fn answered_count(&self) -> usize {
        self.answered
    }

    /// Returns how many disconnected while their `R` was awaited.
    pub fn vanished_count(&self) -> usize {
        self.vanished
    }

    /// Returns how long the cycle lasted until now, time asleep included.
    pub fn took(&self) -> Duration {
        lsus_daemon::clock::boot_time().saturating_sub(self.started_boot)
    }

    /// Ends the cycle (the system is awake again) and returns the clients
    /// that were sent `S` and are still connected: each gets an `A`.
    pub fn finish(self) -> Vec<ClientId> {
        self.sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn complete_when_every_s_has_its_r_and_stray_r_is_ignored() {
        let t = Instant::now();
        let mut c = Cycle::start(t, vec![1, 2], None);
        assert!(!c.is_complete());
        assert!(!c.answered(3), "R from a client not sent S");
        assert!(c.answered(1));
        assert!(!c.answered(1), "a second R counts once");
        assert!(!c.is_complete());
        assert!(c.answered(2));
        assert!(c.is_complete());
        assert_eq!(c.answered_count(), 2);
        assert_eq!(c.finish(), vec![1, 2]);
    }

    #[test]
    fn a_client_that_vanishes_counts_as_ready_and_gets_no_a() {
        let t = Instant::now();
        let mut c = Cycle::start(t, vec![1, 2], None);
        assert!(c.answered(2));
        assert!(c.vanished(1));
        assert!(c.is_complete());
        assert_eq!(c.vanished_count(), 1);
        assert!(!c.vanished(5));
        assert_eq!(c.finish(), vec![2]);
    }

    #[test]
    fn nothing_sent_is_complete_at_once_with_no_timer() {
        let t = Instant::now();
        let c = Cycle::start(t, vec![], Some(ms(100)));
        assert!(c.is_complete());
        assert_eq!(c.timeout(t), None);
    }

    #[test]
    fn laggards_are_reported_every_few_seconds_without_end() {
        let t = Instant::now();
        let mut c = Cycle::start(t, vec![4, 3], None);
        assert_eq!(c.timeout(t), Some(REPORT_EVERY));
        assert_eq!(c.tick(t + ms(10)), Tick::Wait);
        assert_eq!(c.tick(t + REPORT_EVERY), Tick::Report(vec![3, 4]));
        assert_eq!(c.timeout(t + REPORT_EVERY), Some(REPORT_EVERY));
        c.answered(3);
        // A long stall yields one report, not a burst.
        assert_eq!(c.tick(t + REPORT_EVERY * 5), Tick::Report(vec![4]));
        assert_eq!(c.tick(t + REPORT_EVERY * 5 + ms(1)), Tick::Wait);
        assert!(!c.is_complete());
    }

    #[test]
    fn reply_timeout_gives_up_and_late_r_is_ignored_but_a_still_sent() {
        let t = Instant::now();
        let mut c = Cycle::start(t, vec![1, 2], Some(ms(1500)));
        assert_eq!(c.timeout(t), Some(ms(1500)));
        c.answered(1);
        assert_eq!(c.tick(t + ms(1499)), Tick::Wait);
        assert_eq!(c.tick(t + ms(1500)), Tick::GiveUp(vec![2]));
        assert!(c.is_complete());
        assert_eq!(c.timeout(t + ms(1500)), None);
        assert!(!c.answered(2), "R after the time-out");
        c.release(t + ms(1500));
        assert_eq!(c.time_to_release(), Some(ms(1500)));
        assert_eq!(c.finish(), vec![1, 2]);
    }

    #[test]
    fn report_comes_before_a_later_deadline() {
        let t = Instant::now();
        let c = Cycle::start(t, vec![1], Some(REPORT_EVERY * 3));
        assert_eq!(c.timeout(t), Some(REPORT_EVERY));
    }
}
