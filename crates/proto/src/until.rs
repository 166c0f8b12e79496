//! Timed blocks (doc/protocol.md §13): `RUN/until/PID`, a blocker's
//! declaration that its block on `disabled` ends at a deadline.
//!
//! A process that holds a shared lock on `disabled` and means to let go by
//! a deadline writes one line to `RUN/until/PID` (its own PID, written
//! under another name and renamed):
//!
//! ```text
//! deadline=1764067290.010 start=123456 ino=9876
//! ```
//!
//! `deadline` is seconds since the epoch; `start` the process's start time
//! (field 22 of `/proc/PID/stat`, clock ticks since boot), so that a
//! declaration of a PID that has gone and been reused is never taken for
//! the new process's; `ino` the inode of the `disabled` it locked. lsusd
//! goes on over a block only when **every** holder has a valid declaration
//! whose deadline has passed ([`Declaration::valid_for`]): its owner is the
//! holder's user (or root), its `start` and `ino` match, and the holder
//! holds exactly one lock on `disabled` (a process that holds a timed and
//! an untimed block at once is never gone over). So a stopped process
//! (SIGSTOP), whose own timer cannot run, stops blocking at its deadline,
//! and a stale or forged declaration never lets lsusd ignore a real
//! untimed block.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lsus_sys::process;

use crate::epoch::{self, Millis};

/// The subdirectory of the run directory holding the declarations.
pub const UNTIL_DIR: &str = "until";

/// One declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// When the block ends.
    pub deadline: SystemTime,
    /// The declaring process's start time (`/proc/PID/stat` field 22).
    pub start: u64,
    /// The inode of `disabled`.
    pub ino: u64,
}

impl fmt::Display for Declaration {
    /// The one line, newline included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "deadline={} start={} ino={}",
            Millis(self.deadline),
            self.start,
            self.ino
        )
    }
}

impl std::str::FromStr for Declaration {
    type Err = String;

    /// Parses the line; every key is needed, unknown keys are ignored.
    fn from_str(line: &str) -> Result<Declaration, String> {
        let (mut deadline, mut start, mut ino) = (None, None, None);
        for word in line.split_ascii_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                return Err(format!("a word without '=' in {line:?}"));
            };
            match key {
                "deadline" => {
                    // Exactly (epoch::parse), and at most 12 digits of
                    // seconds.
                    let bad = || format!("bad deadline {value:?}");
                    let secs_digits = value.split('.').next().map_or(0, str::len);
                    let since = epoch::parse(value).filter(|_| secs_digits <= 12);
                    deadline = Some(
                        since
                            .and_then(|d| UNIX_EPOCH.checked_add(d))
                            .ok_or_else(bad)?,
                    );
                }
                "start" => start = value.parse().ok(),
                "ino" => ino = value.parse().ok(),
                _ => {}
            }
        }
        Ok(Declaration {
            deadline: deadline.ok_or("no deadline")?,
            start: start.ok_or("no start")?,
            ino: ino.ok_or("no ino")?,
        })
    }
}

impl Declaration {
    /// Returns true if and only if this declaration, read from a file
    /// owned by `owner`, speaks for `pid` now: `pid` runs with the start
    /// time declared, is `owner`'s (or `owner` is root), the inode is that
    /// of `disabled` (`ino`), and `locks` — the number of locks `pid`
    /// holds on `disabled` — is exactly 1.
    pub fn valid_for(&self, pid: u32, owner: u32, ino: u64, locks: usize) -> bool {
        self.ino == ino
            && locks == 1
            && process::start_time(pid) == Some(self.start)
            && (owner == 0 || process::uid_of(pid) == Some(owner))
    }

    /// Returns the time left until the deadline at `now` (zero once it
    /// has passed).
    pub fn left(&self, now: SystemTime) -> Duration {
        self.deadline.duration_since(now).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_reads_back_and_garbage_is_refused() {
        let d = Declaration {
            deadline: UNIX_EPOCH + Duration::from_millis(1_764_067_290_010),
            start: 123,
            ino: 9,
        };
        assert_eq!(d.to_string(), "deadline=1764067290.010 start=123 ino=9\n");
        assert_eq!(d.to_string().parse::<Declaration>(), Ok(d));
        crate::assert_refused::<Declaration>(&[
            "deadline=x start=1 ino=1",
            "deadline=1 ino=1",
            "deadline=-1 start=1 ino=1",
            // At most 12 digits of seconds.
            "deadline=1234567890123 start=1 ino=1",
        ]);
        let far: Declaration = "deadline=123456789012.5 start=1 ino=1".parse().unwrap();
        assert_eq!(
            far.deadline,
            UNIX_EPOCH + Duration::from_millis(123_456_789_012_500)
        );
    }

    #[test]
    fn valid_only_for_the_process_that_declared_it() {
        let me = std::process::id();
        let d = Declaration {
            deadline: SystemTime::now(),
            start: process::start_time(me).unwrap(),
            ino: 7,
        };
        let uid = process::uid_of(me).unwrap();
        assert!(d.valid_for(me, uid, 7, 1));
        assert!(!d.valid_for(me, uid, 8, 1), "another disabled");
        assert!(!d.valid_for(me, uid, 7, 2), "a second, untimed lock");
        assert!(!d.valid_for(me, uid + 1, 7, 1), "another user's file");
        let reused = Declaration {
            start: d.start + 1,
            ..d.clone()
        };
        assert!(!reused.valid_for(me, uid, 7, 1), "PID reused");
        assert!(!d.valid_for(u32::MAX - 1, 0, 7, 1), "PID gone");
    }
}
