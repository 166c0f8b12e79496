//! Who held suspend off, and for how long (doc/protocol.md §6, `held=`):
//! from the first blocked attempt that named a blocker until lsusd saw it
//! let go, kept per PID with its command as it was when first seen.

use std::collections::BTreeMap;
use std::time::Duration;

use lsus_proto::outcome::Held;

/// The blockers being timed.
#[derive(Debug, Default)]
pub struct HeldOff {
    since: BTreeMap<u32, (Duration, String)>,
}

impl HeldOff {
    /// Notes `pids` as blocking at boot time `now`; those not yet timed
    /// start now, named by `comm`.
    pub fn saw(&mut self, pids: &[u32], now: Duration, comm: impl Fn(u32) -> String) {
        for &pid in pids {
            self.since.entry(pid).or_insert_with(|| (now, comm(pid)));
        }
    }

    /// Returns how many blockers are being timed.
    pub fn len(&self) -> usize {
        self.since.len()
    }

    /// Ends the time of every blocker not in `still` (all of them when
    /// `still` is empty) at `now`, and returns them.
    pub fn let_go(&mut self, still: &[u32], now: Duration) -> Vec<Held> {
        let gone: Vec<u32> = self
            .since
            .keys()
            .copied()
            .filter(|p| !still.contains(p))
            .collect();
        gone.into_iter()
            .filter_map(|pid| {
                let (start, command) = self.since.remove(&pid)?;
                Some(Held {
                    pid,
                    seconds: now.saturating_sub(start).as_secs_f64(),
                    command,
                })
            })
            .collect()
    }

    /// Forgets every blocker (they let go at a time lsusd did not see).
    pub fn forget(&mut self) {
        self.since.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_blocker_is_timed_from_when_first_seen_until_let_go() {
        let s = Duration::from_secs;
        let mut h = HeldOff::default();
        h.saw(&[7], s(10), |_| "sh".into());
        h.saw(&[7, 9], s(12), |p| format!("c{p}"));
        assert_eq!(h.len(), 2);
        let gone = h.let_go(&[7], s(15));
        assert_eq!(gone.len(), 1);
        assert_eq!((gone[0].pid, gone[0].seconds), (9, 3.0));
        let gone = h.let_go(&[], s(20));
        assert_eq!((gone[0].pid, gone[0].seconds), (7, 10.0));
        assert_eq!(gone[0].command, "sh");
        assert_eq!(h.len(), 0);
    }
}
