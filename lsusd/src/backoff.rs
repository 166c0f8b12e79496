//! Backoff after consecutive failed attempts in immediate mode.
//!
//! The original retried at once when `power/state` kept failing, spinning a
//! core. Here each failure doubles the pause (from `initial` up to `max`);
//! a successful suspend resets it. A new `request` does not wait for it.

use std::time::{Duration, Instant};

/// The pause before the next immediate-mode attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Option<Duration>,
    until: Option<Instant>,
}

impl Backoff {
    /// A backoff starting at `initial`, doubling, capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            current: None,
            until: None,
        }
    }

    /// Records a failed attempt at `now`; returns the new pause.
    pub fn fail(&mut self, now: Instant) -> Duration {
        let next = match self.current {
            None => self.initial,
            Some(d) => d.saturating_mul(2).min(self.max),
        };
        self.current = Some(next);
        self.until = Some(now + next);
        next
    }

    /// Records a successful suspend: the next failure starts afresh.
    pub fn reset(&mut self) {
        self.current = None;
        self.until = None;
    }

    /// Returns the pause set by the last failure, if any since the reset.
    #[cfg(test)]
    pub fn current(&self) -> Option<Duration> {
        self.current
    }

    /// Returns how long to wait from `now` before the next attempt, or
    /// `None` when an attempt may start.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until
            .map(|u| u.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubling_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(700));
        let t = Instant::now();
        assert_eq!(b.remaining(t), None);
        let steps: Vec<u128> = (0..5).map(|_| b.fail(t).as_millis()).collect();
        assert_eq!(steps, vec![100, 200, 400, 700, 700]);
        assert_eq!(b.remaining(t), Some(Duration::from_millis(700)));
        assert_eq!(b.remaining(t + Duration::from_secs(1)), None);
        b.reset();
        assert_eq!(b.remaining(t), None);
        assert_eq!(b.fail(t), Duration::from_millis(100));
    }
}
