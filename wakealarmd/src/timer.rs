//! The one timer: a `timerfd` on the realtime clock, armed for the earliest
//! pending time.
//!
//! It is armed with an absolute time (`TFD_TIMER_ABSTIME`), so it expires
//! when the wall clock reaches the alarm whatever happened to the clock
//! meanwhile, and with `TFD_TIMER_CANCEL_ON_SET`, so a `date -s` or an NTP
//! step makes it readable at once (the read fails with `ECANCELED`) and the
//! daemon looks at the schedule again. While no alarm is pending it is
//! disarmed: an idle daemon never wakes up.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// Why the timer became readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// The armed time was reached.
    Expired,
    /// The realtime clock was set: times must be looked at again.
    ClockSet,
    /// Nothing (a spurious wake-up, or already handled).
    Nothing,
}

/// The alarm timer.
#[derive(Debug)]
pub struct AlarmTimer {
    fd: TimerFd,
    armed: Option<u64>,
}

impl AlarmTimer {
    /// Creates the timer, disarmed.
    pub fn new() -> nix::Result<AlarmTimer> {
        let fd = TimerFd::new(
            ClockId::CLOCK_REALTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(AlarmTimer { fd, armed: None })
    }

    /// Arms the timer for `time` (seconds since the epoch), or disarms it
    /// for `None`. Does nothing if it is already armed so.
    pub fn arm(&mut self, time: Option<u64>) -> nix::Result<()> {
        if time == self.armed {
            return Ok(());
        }
        match time {
            Some(t) => {
                // Times above time_t's maximum were refused by the parser.
                let secs = i64::try_from(t).unwrap_or(i64::MAX);
                self.fd.set(
                    Expiration::OneShot(TimeSpec::new(secs, 0)),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME
                        | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
                )?;
            }
            None => self.fd.unset()?,
        }
        self.armed = time;
        Ok(())
    }

    /// Reads the timer after poll said it is readable.
    ///
    /// After [`Tick::ClockSet`] the timer is disarmed by the kernel; the
    /// caller re-arms it (through [`AlarmTimer::arm`], which knows that).
    pub fn read(&mut self) -> nix::Result<Tick> {
        let mut buf = [0u8; 8];
        match nix::unistd::read(self.fd.as_fd().as_raw_fd(), &mut buf) {
            Ok(_) => {
                self.armed = None;
                Ok(Tick::Expired)
            }
            Err(Errno::ECANCELED) => {
                self.armed = None;
                Ok(Tick::ClockSet)
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(Tick::Nothing),
            Err(e) => Err(e),
        }
    }

    /// Returns the time the timer is armed for.
    #[cfg(test)]
    pub fn armed(&self) -> Option<u64> {
        self.armed
    }
}

impl AsFd for AlarmTimer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn readable(t: &AlarmTimer, ms: u16) -> bool {
        let mut fds = [PollFd::new(t.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::from(ms)).unwrap() == 1
    }

    #[test]
    fn a_past_time_expires_at_once_and_disarm_is_silent() {
        let mut t = AlarmTimer::new().unwrap();
        assert_eq!(t.read().unwrap(), Tick::Nothing);
        t.arm(Some(1)).unwrap();
        assert!(readable(&t, 1000));
        assert_eq!(t.read().unwrap(), Tick::Expired);
        assert_eq!(t.armed(), None);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        t.arm(Some(now + 3600)).unwrap();
        t.arm(None).unwrap();
        assert!(!readable(&t, 50));
    }

    #[test]
    fn expires_at_the_next_second() {
        let mut t = AlarmTimer::new().unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let next = now.as_secs() + 1;
        t.arm(Some(next)).unwrap();
        assert!(readable(&t, 2000));
        let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(at.as_secs() >= next, "{at:?} < {next}");
        assert!(at.as_secs_f64() - (next as f64) < 0.05, "late: {at:?}");
        assert_eq!(t.read().unwrap(), Tick::Expired);
    }
}
