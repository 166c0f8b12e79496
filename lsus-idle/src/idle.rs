//! The idle state machine: input events, timer expiries and lsusd's
//! attempts go in, with the time; what to do comes out. No I/O here, so
//! every rule is tested with a made-up clock.
//!
//! One deadline, re-armed lazily: input only moves `last_input`. When the
//! deadline passes, the machine looks at `last_input`: if input came in
//! the meantime the deadline moves to `last_input + timeout` and the loop
//! sleeps again for the rest; otherwise the machine is idle and lsus-idle
//! holds immediate mode. So input that arrives faster than the idle time
//! never sets a timer of its own.

use std::time::{Duration, Instant};

/// What the daemon must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The machine is idle: take immediate mode (doc/protocol.md §1.2).
    Hold,
    /// An attempt is imminent and input came: abort it by a read of
    /// `disabled` (§1.1), before [`Action::Release`].
    Abort,
    /// Input came: let go of immediate mode.
    Release,
}

/// The idle state of the machine as lsus-idle sees it.
#[derive(Debug, Clone)]
pub struct Idle {
    timeout: Duration,
    /// The last input, or the start.
    last_input: Instant,
    /// The one deadline; moved only when it passes (or after input while
    /// holding, when the count starts again).
    deadline: Instant,
    /// Immediate mode is held.
    holding: bool,
    /// After a failed hold: not again before this.
    not_before: Instant,
}

impl Idle {
    /// Starts counting at `now`: the machine is idle at `now + timeout`
    /// unless input comes.
    pub fn new(timeout: Duration, now: Instant) -> Idle {
        Idle {
            timeout,
            last_input: now,
            deadline: now + timeout,
            holding: false,
            not_before: now,
        }
    }

    /// Input at `now`. While holding: [`Action::Abort`] if `imminent()`
    /// says an attempt is announced (it is asked only then, so a
    /// keystroke while not holding costs nothing), then
    /// [`Action::Release`]. Input while not holding never aborts: that
    /// attempt is somebody else's (a `request-suspend` typed on this
    /// keyboard sees the release of its Enter key while imminent).
    pub fn input(&mut self, now: Instant, imminent: impl FnOnce() -> bool) -> Vec<Action> {
        self.last_input = self.last_input.max(now);
        if !self.holding {
            return Vec::new();
        }
        let mut actions = Vec::with_capacity(2);
        if imminent() {
            actions.push(Action::Abort);
        }
        actions.push(Action::Release);
        self.holding = false;
        self.deadline = self.last_input + self.timeout;
        actions
    }

    /// The deadline has (perhaps) passed at `now`: [`Action::Hold`] if no
    /// input came for the idle time; else the deadline moves to the end
    /// of the idle time counted from the last input.
    pub fn expired(&mut self, now: Instant) -> Option<Action> {
        if self.holding || now < self.deadline {
            return None;
        }
        let due = (self.last_input + self.timeout).max(self.not_before);
        if due > now {
            self.deadline = due;
            return None;
        }
        self.holding = true;
        Some(Action::Hold)
    }

    /// Taking immediate mode failed at `now`: not holding; try again at
    /// `now + retry`, unless input comes first.
    pub fn hold_failed(&mut self, now: Instant, retry: Duration) {
        self.holding = false;
        self.not_before = now + retry;
        self.deadline = self.not_before;
    }

    /// When the loop must call [`Idle::expired`]; `None` while holding
    /// (only input matters then).
    pub fn deadline(&self) -> Option<Instant> {
        (!self.holding).then_some(self.deadline)
    }

    /// Returns true if and only if immediate mode is held.
    #[cfg(test)]
    pub fn holding(&self) -> bool {
        self.holding
    }

    /// The last input (or the start).
    pub fn last_input(&self) -> Instant {
        self.last_input
    }

    /// The idle time.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(300);

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn never() -> bool {
        panic!("watching looked at while not holding")
    }

    #[test]
    fn idle_after_the_timeout_without_input() {
        let t0 = Instant::now();
        let mut idle = Idle::new(T, t0);
        assert_eq!(idle.deadline(), Some(t0 + T));
        assert_eq!(idle.expired(t0 + s(299)), None);
        assert_eq!(idle.expired(t0 + T), Some(Action::Hold));
        assert!(idle.holding());
        assert_eq!(idle.deadline(), None, "no timer while holding");
        assert_eq!(idle.expired(t0 + s(1000)), None, "held once");
    }

    #[test]
    fn input_moves_no_timer_and_the_deadline_is_rearmed_lazily() {
        let t0 = Instant::now();
        let mut idle = Idle::new(T, t0);
        // Input every second for 10 minutes, the loop waking only at the
        // deadline: it moves twice (at 300 s and 599 s), never with input.
        let mut deadlines = vec![idle.deadline().unwrap()];
        for n in 1..600 {
            let now = t0 + s(n);
            if idle.deadline().is_some_and(|d| now >= d) {
                assert_eq!(idle.expired(now), None, "input came at {n}");
                deadlines.push(idle.deadline().unwrap());
            }
            let before = idle.deadline();
            assert!(idle.input(now, never).is_empty());
            assert_eq!(idle.deadline(), before, "input moved the deadline");
        }
        assert_eq!(
            deadlines,
            vec![t0 + T, t0 + s(299) + T, t0 + s(598) + T],
            "each expiry re-arms for the rest after the last input"
        );
        // The last input at 599 s: at 898 s the deadline re-arms for 899 s.
        assert_eq!(idle.expired(t0 + s(898)), None);
        assert_eq!(idle.deadline(), Some(t0 + s(599) + T));
        // Not a moment before 300 s after the last input.
        assert_eq!(
            idle.expired(t0 + s(599) + T - Duration::from_millis(1)),
            None
        );
        assert_eq!(idle.expired(t0 + s(599) + T), Some(Action::Hold));
    }

    #[test]
    fn input_while_holding_releases_and_counts_again() {
        let t0 = Instant::now();
        let mut idle = Idle::new(T, t0);
        assert_eq!(idle.expired(t0 + T), Some(Action::Hold));
        assert_eq!(idle.input(t0 + s(400), || false), vec![Action::Release]);
        assert!(!idle.holding());
        assert_eq!(idle.deadline(), Some(t0 + s(700)));
        assert!(idle.input(t0 + s(401), never).is_empty(), "released once");
        assert_eq!(idle.expired(t0 + s(700)), None);
        assert_eq!(idle.expired(t0 + s(701)), Some(Action::Hold));
    }

    #[test]
    fn input_during_an_imminent_attempt_aborts_it_once() {
        let t0 = Instant::now();
        let mut idle = Idle::new(T, t0);
        assert_eq!(idle.expired(t0 + T), Some(Action::Hold));
        assert_eq!(
            idle.input(t0 + s(301), || true),
            vec![Action::Abort, Action::Release]
        );
        // More input in the same attempt: nothing (not holding any more).
        assert!(idle.input(t0 + s(302), || true).is_empty());
        // Held again later, a new attempt, input: aborted again.
        assert_eq!(idle.expired(t0 + s(602)), Some(Action::Hold));
        assert_eq!(
            idle.input(t0 + s(603), || true),
            vec![Action::Abort, Action::Release]
        );
    }

    #[test]
    fn input_during_an_attempt_not_ours_does_not_abort_nor_look() {
        // Somebody's request-suspend typed on this keyboard: the release
        // of Enter comes while the attempt is imminent. Not holding, so
        // not ours to abort, and `watching` is not even looked at.
        let t0 = Instant::now();
        let mut idle = Idle::new(T, t0);
        assert!(idle
            .input(t0 + s(1), || panic!("asked while not holding"))
            .is_empty());
    }

    #[test]
    fn a_failed_hold_is_tried_again_after_the_retry() {
        let t0 = Instant::now();
        let mut idle = Idle::new(T, t0);
        assert_eq!(idle.expired(t0 + T), Some(Action::Hold));
        idle.hold_failed(t0 + T, s(10));
        assert_eq!(idle.deadline(), Some(t0 + s(310)));
        assert_eq!(idle.expired(t0 + s(309)), None);
        assert_eq!(idle.expired(t0 + s(310)), Some(Action::Hold));
        // Input before the retry: counts from the input.
        idle.hold_failed(t0 + s(310), s(10));
        assert!(idle.input(t0 + s(315), never).is_empty());
        assert_eq!(idle.expired(t0 + s(320)), None);
        assert_eq!(idle.deadline(), Some(t0 + s(615)));
    }

    #[test]
    fn input_stamped_before_the_last_one_does_not_move_time_back() {
        let t0 = Instant::now();
        let mut idle = Idle::new(T, t0);
        idle.input(t0 + s(10), never);
        idle.input(t0 + s(5), never);
        assert_eq!(idle.last_input(), t0 + s(10));
    }
}
