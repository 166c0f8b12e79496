//! Time that keeps counting while the machine sleeps.
//!
//! `Instant` is `CLOCK_MONOTONIC`, which stops during suspend: a suspend
//! of a minute would be reported as lasting milliseconds. Durations that
//! span a suspend are measured on `CLOCK_BOOTTIME`.

use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// Returns the time since boot, suspended time included.
pub fn boot_time() -> Duration {
    // CLOCK_BOOTTIME exists on every kernel lsusd supports (2.6.39+);
    // should it fail, the monotonic clock is the next best thing.
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
        .map(Duration::from)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_moves_forward() {
        let a = boot_time();
        std::thread::sleep(Duration::from_millis(2));
        let b = boot_time();
        assert!(b > a && b - a >= Duration::from_millis(2));
    }
}
