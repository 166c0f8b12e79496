//! The real-time clock's wake alarm: `SYS/class/rtc/<name>/{wakealarm,since_epoch}`.
//!
//! `since_epoch` is the RTC's own idea of the time, in seconds; it may
//! differ from the system clock (an RTC kept in local time, or one that
//! drifted). `wakealarm` takes an absolute RTC time in seconds, or `0` to
//! clear the alarm; the kernel refuses a new alarm while one is set, so it
//! is always cleared first.
//!
//! wakealarmd converts a wake time (system time) to RTC time with the
//! offset `since_epoch − system time`, and wakes [`WAKE_EARLY`] seconds
//! early so the system is up when the time comes (doc/protocol.md §4).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The RTC used unless configured otherwise.
pub const DEFAULT_RTC: &str = "rtc0";
/// How many seconds before the wake time the RTC alarm is set.
pub const WAKE_EARLY: i64 = 2;

/// An RTC file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RtcError {
    /// Reading a file failed.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A file did not hold a number of seconds.
    #[error("{}: {text:?} is not a number of seconds", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held (trimmed).
        text: String,
    },
    /// Writing a value failed (the kernel rejects a time in the past, and
    /// a second alarm without clearing the first).
    #[error("cannot write {value:?} to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The value, without its newline.
        value: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The wake time cannot be expressed in RTC time.
    #[error("wake time {wake} with RTC offset {offset} s is out of range")]
    Range {
        /// The wake time, seconds since the epoch (system time).
        wake: u64,
        /// The RTC offset used.
        offset: i64,
    },
}

/// What [`Rtc::program`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Programmed {
    /// The value written to `wakealarm` (RTC time).
    pub value: i64,
    /// The RTC offset used: `since_epoch` minus system time, in seconds.
    pub offset: i64,
}

/// One RTC under a sysfs root.
#[derive(Debug, Clone)]
pub struct Rtc {
    dir: PathBuf,
}

/// Returns `time` as whole seconds since the epoch (negative before it).
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Round towards minus infinity, as the seconds a clock shows.
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 {
                -secs - 1
            } else {
                -secs
            }
        }
    }
}

/// Returns the RTC alarm value for `wake` (system time, seconds since the
/// epoch) given the RTC `offset`: `wake + offset − WAKE_EARLY`, or `None`
/// if that does not fit.
///
/// ```
/// assert_eq!(lsus_sys::rtc::alarm_value(1000, 3600), Some(4598));
/// ```
pub fn alarm_value(wake: u64, offset: i64) -> Option<i64> {
    i64::try_from(wake)
        .ok()?
        .checked_add(offset)?
        .checked_sub(WAKE_EARLY)
}

impl Rtc {
    /// Returns the RTC `name` (e.g. `rtc0`) under the sysfs root `sysfs`:
    /// `sysfs/class/rtc/name`. Nothing is opened yet.
    pub fn new(sysfs: &Path, name: &str) -> Rtc {
        Rtc {
            dir: sysfs.join("class/rtc").join(name),
        }
    }

    /// Returns the RTC's sysfs directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the path of the `wakealarm` file.
    pub fn wakealarm_path(&self) -> PathBuf {
        self.dir.join("wakealarm")
    }

    /// Returns the path of the `since_epoch` file.
    pub fn since_epoch_path(&self) -> PathBuf {
        self.dir.join("since_epoch")
    }

    /// Reads the RTC's time, in seconds since the epoch by its own clock.
    ///
    /// Fails if the file is missing, unreadable or not a number.
    pub fn since_epoch(&self) -> Result<i64, RtcError> {
        let path = self.since_epoch_path();
        let text = std::fs::read_to_string(&path).map_err(|source| RtcError::Read {
            path: path.clone(),
            source,
        })?;
        let text = text.trim();
        text.parse().map_err(|_| RtcError::Parse {
            path,
            text: text.to_string(),
        })
    }

    /// Returns the RTC offset at `now`: `since_epoch` minus `now`, in
    /// seconds. Zero for an RTC that keeps UTC and has not drifted.
    pub fn offset(&self, now: SystemTime) -> Result<i64, RtcError> {
        Ok(self.since_epoch()?.saturating_sub(unix_seconds(now)))
    }

    fn write(&self, value: &str) -> Result<(), RtcError> {
        let path = self.wakealarm_path();
        let err = |source| RtcError::Write {
            path: path.clone(),
            value: value.to_string(),
            source,
        };
        // Never create a file in sysfs; non-blocking so that a FIFO with no
        // reader (a test's fake RTC) fails instead of hanging the daemon.
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(err)?;
        // sysfs takes a value in one write(); each value gets its own open,
        // as `echo 0 > wakealarm; echo N > wakealarm` does.
        file.write_all(format!("{value}\n").as_bytes()).map_err(err)
    }

    /// Clears the alarm (writes `0`).
    pub fn clear_alarm(&self) -> Result<(), RtcError> {
        self.write("0")
    }

    /// Sets the alarm to `value`, in RTC time. The alarm must be clear.
    pub fn set_alarm(&self, value: i64) -> Result<(), RtcError> {
        self.write(&value.to_string())
    }

    /// Programs the RTC to wake the system for `wake` (system time, seconds
    /// since the epoch): reads the offset at `now`, clears the alarm, then
    /// writes `wake + offset − WAKE_EARLY`. Returns what was written.
    pub fn program(&self, wake: u64, now: SystemTime) -> Result<Programmed, RtcError> {
        let planned = self.plan(wake, now)?;
        self.clear_alarm()?;
        self.set_alarm(planned.value)?;
        Ok(planned)
    }

    /// Returns what [`Rtc::program`] would write for `wake` at `now`,
    /// reading the offset but writing nothing (a dry run).
    ///
    /// Fails if `since_epoch` cannot be read or the value is out of range.
    pub fn plan(&self, wake: u64, now: SystemTime) -> Result<Programmed, RtcError> {
        let offset = self.offset(now)?;
        let value = alarm_value(wake, offset).ok_or(RtcError::Range { wake, offset })?;
        Ok(Programmed { value, offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fake(since_epoch: &str) -> (tempfile::TempDir, Rtc) {
        let t = tempfile::tempdir().unwrap();
        let rtc = Rtc::new(t.path(), DEFAULT_RTC);
        std::fs::create_dir_all(rtc.dir()).unwrap();
        std::fs::write(rtc.since_epoch_path(), since_epoch).unwrap();
        std::fs::write(rtc.wakealarm_path(), "").unwrap();
        (t, rtc)
    }

    #[test]
    fn paths_follow_the_sysfs_root_and_name() {
        let rtc = Rtc::new(Path::new("/x"), "rtc1");
        assert_eq!(
            rtc.wakealarm_path(),
            Path::new("/x/class/rtc/rtc1/wakealarm")
        );
        assert_eq!(
            rtc.since_epoch_path(),
            Path::new("/x/class/rtc/rtc1/since_epoch")
        );
    }

    #[test]
    fn offset_is_rtc_minus_system_time() {
        let now = UNIX_EPOCH + Duration::from_millis(1_000_000_000_700);
        let (_t, rtc) = fake("1000003600\n");
        assert_eq!(rtc.offset(now).unwrap(), 3600);
        let (_t, rtc) = fake("999999000");
        assert_eq!(rtc.offset(now).unwrap(), -1000);
    }

    #[test]
    fn plan_writes_nothing_and_program_writes_the_rtc_time_two_seconds_early() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let (_t, rtc) = fake("1000003600\n");
        let read = || std::fs::read_to_string(rtc.wakealarm_path()).unwrap();
        let expected = Programmed {
            value: 1_000_003_608,
            offset: 3600,
        };
        std::fs::write(rtc.wakealarm_path(), "untouched").unwrap();
        assert_eq!(rtc.plan(1_000_000_010, now).unwrap(), expected);
        assert_eq!(read(), "untouched");
        assert_eq!(rtc.program(1_000_000_010, now).unwrap(), expected);
        // A regular file keeps the last write only (truncated each time).
        assert_eq!(read(), "1000003608\n");
    }

    #[test]
    fn a_fifo_sees_zero_then_the_value() {
        use std::io::Read;
        let now = UNIX_EPOCH + Duration::from_secs(500);
        let (_t, rtc) = fake("500");
        std::fs::remove_file(rtc.wakealarm_path()).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(rtc.wakealarm_path())
            .status()
            .unwrap();
        assert!(made.success());
        // Without a reader the write fails instead of hanging.
        assert!(matches!(rtc.clear_alarm(), Err(RtcError::Write { .. })));
        // Read-write keeps a reader and a writer, so no EOF between opens.
        let mut reader = OpenOptions::new()
            .read(true)
            .write(true)
            .open(rtc.wakealarm_path())
            .unwrap();
        rtc.program(600, now).unwrap();
        let mut buf = [0u8; 16];
        let n = reader.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"0\n598\n");
    }

    #[test]
    fn errors_carry_the_path() {
        let t = tempfile::tempdir().unwrap();
        let rtc = Rtc::new(t.path(), "rtc9");
        let e = rtc.since_epoch().unwrap_err().to_string();
        assert!(e.contains("class/rtc/rtc9/since_epoch"), "{e}");
        let e = rtc.clear_alarm().unwrap_err().to_string();
        assert!(e.contains("class/rtc/rtc9/wakealarm"), "{e}");
        let (_t, rtc) = fake("soon");
        let e = rtc.since_epoch().unwrap_err().to_string();
        assert!(e.contains("\"soon\""), "{e}");
    }

    #[test]
    fn out_of_range_is_refused_before_touching_the_alarm() {
        let (_t, rtc) = fake("9223372036854775000");
        let err = rtc.program(u64::MAX, UNIX_EPOCH).unwrap_err();
        assert!(matches!(err, RtcError::Range { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(rtc.wakealarm_path()).unwrap(), "");
    }

    #[test]
    fn unix_seconds_rounds_down() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1500)), 1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1500)), -2);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(3)), -3);
    }
}
