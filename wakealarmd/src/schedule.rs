//! Who waits for what: each connection's alarm state and the queue of
//! pending times.
//!
//! The queue is ordered by `(time, connection id)`; ids grow with each
//! accept, so alarms due in the same second fire in the order their
//! connections were made. Every operation is O(log n), so ten thousand
//! pending alarms cost nothing noticeable.

use std::collections::{BTreeSet, HashMap};

/// A connection's number, unique for the daemon's life.
pub type ConnId = u64;

/// Where one connection stands (doc/protocol.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// Connected, no time written yet: blocks suspend.
    Fresh,
    /// Waiting for this time (seconds since the epoch): does not block.
    Pending(u64),
    /// `Now` was sent for this time: blocks suspend until a new time or
    /// the close.
    Fired(u64),
}

impl AlarmState {
    /// Returns true if and only if this state keeps the machine awake.
    pub fn blocks(self) -> bool {
        !matches!(self, AlarmState::Pending(_))
    }
}

/// All connections' alarm states.
#[derive(Debug, Default)]
pub struct Schedule {
    states: HashMap<ConnId, AlarmState>,
    queue: BTreeSet<(u64, ConnId)>,
    blocking: usize,
}

impl Schedule {
    /// Returns an empty schedule.
    pub fn new() -> Schedule {
        Schedule::default()
    }

    fn enter(&mut self, id: ConnId, state: AlarmState) {
        if state.blocks() {
            self.blocking += 1;
        }
        if let AlarmState::Pending(t) = state {
            self.queue.insert((t, id));
        }
        self.states.insert(id, state);
    }

    fn leave(&mut self, id: ConnId) -> Option<AlarmState> {
        let state = self.states.remove(&id)?;
        if state.blocks() {
            self.blocking -= 1;
        }
        if let AlarmState::Pending(t) = state {
            self.queue.remove(&(t, id));
        }
        Some(state)
    }

    /// Adds a new connection, which blocks suspend until it writes a time.
    pub fn add(&mut self, id: ConnId) {
        self.leave(id);
        self.enter(id, AlarmState::Fresh);
    }

    /// Sets (or replaces) the time of connection `id`.
    pub fn set(&mut self, id: ConnId, time: u64) {
        self.leave(id);
        self.enter(id, AlarmState::Pending(time));
    }

    /// Forgets connection `id` (it closed).
    pub fn remove(&mut self, id: ConnId) {
        self.leave(id);
    }

    /// Returns the state of connection `id`.
    #[cfg(test)]
    pub fn state(&self, id: ConnId) -> Option<AlarmState> {
        self.states.get(&id).copied()
    }

    /// Marks every connection whose time is at or before `now` as fired and
    /// returns them in order of time, then connection id.
    pub fn fire_due(&mut self, now: u64) -> Vec<(ConnId, u64)> {
        let mut fired = Vec::new();
        while let Some(&(time, id)) = self.queue.first() {
            if time > now {
                break;
            }
            self.leave(id);
            self.enter(id, AlarmState::Fired(time));
            fired.push((id, time));
        }
        fired
    }

    /// Returns the earliest pending time, if any.
    pub fn earliest(&self) -> Option<u64> {
        self.queue.first().map(|&(t, _)| t)
    }

    /// Returns how many connections block suspend.
    pub fn blocking(&self) -> usize {
        self.blocking
    }

    /// Returns the number of connections.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Returns true if and only if there are no connections.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_and_fired_block_pending_does_not() {
        let mut s = Schedule::new();
        s.add(1);
        s.add(2);
        assert_eq!(s.blocking(), 2);
        s.set(1, 100);
        assert_eq!(s.blocking(), 1);
        assert_eq!(s.state(1), Some(AlarmState::Pending(100)));
        s.set(2, 50);
        assert_eq!(s.blocking(), 0);
        assert_eq!(s.earliest(), Some(50));
        assert_eq!(s.fire_due(99), vec![(2, 50)]);
        assert_eq!(s.blocking(), 1);
        assert_eq!(s.state(2), Some(AlarmState::Fired(50)));
        // A new time after Now unblocks; a close does too.
        s.set(2, 200);
        assert_eq!(s.blocking(), 0);
        s.fire_due(100);
        assert_eq!(s.blocking(), 1);
        s.remove(1);
        assert_eq!(s.blocking(), 0);
        assert_eq!(s.earliest(), Some(200));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn replacing_a_time_moves_it_in_the_queue() {
        let mut s = Schedule::new();
        s.add(1);
        s.set(1, 10);
        s.set(1, 30);
        s.add(2);
        s.set(2, 20);
        assert_eq!(s.earliest(), Some(20));
        assert_eq!(s.fire_due(25), vec![(2, 20)]);
        assert_eq!(s.fire_due(25), vec![]);
        assert_eq!(s.fire_due(30), vec![(1, 30)]);
        assert_eq!(s.earliest(), None);
    }

    #[test]
    fn same_second_fires_in_connection_order() {
        let mut s = Schedule::new();
        for id in [5, 3, 9, 1] {
            s.add(id);
            s.set(id, 7);
        }
        s.add(4);
        s.set(4, 6);
        let order: Vec<_> = s.fire_due(7).into_iter().map(|(id, _)| id).collect();
        assert_eq!(order, vec![4, 1, 3, 5, 9]);
    }

    #[test]
    fn removing_unknown_or_twice_is_harmless() {
        let mut s = Schedule::new();
        s.remove(3);
        s.add(3);
        s.remove(3);
        s.remove(3);
        assert!(s.is_empty());
        assert_eq!(s.blocking(), 0);
    }

    #[test]
    fn ten_thousand_alarms_are_cheap() {
        let mut s = Schedule::new();
        let start = std::time::Instant::now();
        for id in 0..10_000u64 {
            s.add(id);
            s.set(id, 1_000 + (id * 7919) % 10_000);
        }
        let fired = s.fire_due(u64::MAX);
        assert_eq!(fired.len(), 10_000);
        assert!(fired
            .windows(2)
            .all(|w| (w[0].1, w[0].0) < (w[1].1, w[1].0)));
        assert_eq!(s.blocking(), 10_000);
        // Generous for a debug build on a loaded machine; O(n²) would not fit.
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
