//! One input device: the [`InputSource`] trait, its evdev reader and the
//! FIFO reader the tests use behind the same trait.
//!
//! Both are opened read-only and without blocking; an evdev device is
//! never grabbed (`EVIOCGRAB` is never called), so every other reader —
//! the display server, the console — sees all input as before.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use evdev::raw_stream::RawDevice;
use evdev::{EventType, PropType};

/// `EV_KEY`, `EV_REL`, `EV_ABS`, `EV_SW` (linux/input-event-codes.h):
/// the event types that mean somebody did something. Not `EV_SYN` (the
/// end of a packet), `EV_MSC` (scan codes beside a key), nor what the
/// machine sends the device (`EV_LED`, `EV_SND`, `EV_REP`, `EV_FF`).
const ACTIVITY: [u16; 4] = [0x01, 0x02, 0x03, 0x05];

/// At most this many reads per readiness, so one flooding device cannot
/// keep the loop from the others.
const MAX_READS: usize = 64;

/// A source of input events, readable when [`AsFd::as_fd`] polls
/// readable.
pub trait InputSource: AsFd {
    /// Reads everything queued without blocking and returns how many
    /// events were activity (a key, a motion, a switch). An error means
    /// the device is unusable (it went away: `ENODEV`) and is dropped.
    fn read_activity(&mut self) -> io::Result<usize>;

    /// What the device is, for the log ("AT Translated Set 2 keyboard").
    fn describe(&self) -> String;
}

/// Why a directory entry is not watched.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// open(2) or fstat(2) failed (EACCES, ENOENT, ENODEV…).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Neither a character device nor, with `--fake-input`, a FIFO.
    #[error("not a character device")]
    NotDevice,
    /// A character device the evdev ioctls refuse.
    #[error("not an evdev device: {0}")]
    NotEvdev(io::Error),
    /// An accelerometer: it reports the machine's motion, not a person's
    /// input, and would keep the machine awake for ever.
    #[error("an accelerometer, whose events are no person's input")]
    Accelerometer,
}

/// Opens `path` read-only: a character device through evdev; with
/// `fake`, a FIFO as a [`FifoSource`].
pub fn open(path: &Path, fake: bool) -> Result<Box<dyn InputSource>, OpenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_char_device() {
        let fd = OwnedFd::from(file);
        let device = RawDevice::from_fd(fd).map_err(OpenError::NotEvdev)?;
        if device.properties().contains(PropType::ACCELEROMETER) {
            return Err(OpenError::Accelerometer);
        }
        return Ok(Box::new(EvdevSource { device }));
    }
    if fake && kind.is_fifo() {
        return Ok(Box::new(FifoSource::new(file, path)?));
    }
    Err(OpenError::NotDevice)
}

/// An evdev device (`/dev/input/eventN`), read through the evdev crate.
struct EvdevSource {
    device: RawDevice,
}

impl AsFd for EvdevSource {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.device.as_fd()
    }
}

impl InputSource for EvdevSource {
    fn read_activity(&mut self) -> io::Result<usize> {
        let mut activity = 0;
        for _ in 0..MAX_READS {
            let events = match self.device.fetch_events() {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut any = false;
            for event in events {
                any = true;
                if is_activity(event.event_type()) {
                    activity += 1;
                }
            }
            if !any {
                break;
            }
        }
        Ok(activity)
    }

    fn describe(&self) -> String {
        self.device.name().unwrap_or("unnamed device").to_string()
    }
}

fn is_activity(kind: EventType) -> bool {
    ACTIVITY.contains(&kind.0)
}

/// The size of `struct input_event`: a `timeval` (24 bytes in all on a
/// 64-bit machine), then type and code (2 bytes each) and value (4 bytes).
pub const RECORD: usize = std::mem::size_of::<libc::input_event>();

/// Where the type of an event starts in its record.
const TYPE_AT: usize = std::mem::size_of::<libc::timeval>();

/// Test hook (`--fake-input`): a FIFO carrying raw `struct input_event`
/// records, as a test writes them. The evdev ioctls do not work on a
/// FIFO, so this reads the records itself.
pub struct FifoSource {
    file: File,
    /// A write end kept open, so that the FIFO never reports a hang-up
    /// when the test's writer closes (poll would then spin).
    _keeper: File,
    /// Bytes of a record split across reads.
    partial: Vec<u8>,
}

impl FifoSource {
    fn new(file: File, path: &Path) -> io::Result<FifoSource> {
        // We are a reader, so this open neither blocks nor fails ENXIO.
        let keeper = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        Ok(FifoSource {
            file,
            _keeper: keeper,
            partial: Vec::new(),
        })
    }
}

impl AsFd for FifoSource {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl InputSource for FifoSource {
    fn read_activity(&mut self) -> io::Result<usize> {
        let mut buf = [0u8; RECORD * 64];
        let mut activity = 0;
        for _ in 0..MAX_READS {
            let n = match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.partial.extend_from_slice(&buf[..n]);
            let whole = self.partial.len() / RECORD * RECORD;
            activity += self.partial[..whole]
                .chunks_exact(RECORD)
                .filter(|r| {
                    is_activity(EventType(u16::from_ne_bytes([r[TYPE_AT], r[TYPE_AT + 1]])))
                })
                .count();
            self.partial.drain(..whole);
        }
        Ok(activity)
    }

    fn describe(&self) -> String {
        "FIFO of raw input_event records (--fake-input)".into()
    }
}

/// Encodes one `struct input_event` record as [`FifoSource`] reads it
/// (for the tests).
#[cfg(test)]
pub fn record(kind: u16, code: u16, value: i32) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[TYPE_AT..TYPE_AT + 2].copy_from_slice(&kind.to_ne_bytes());
    r[TYPE_AT + 2..TYPE_AT + 4].copy_from_slice(&code.to_ne_bytes());
    r[TYPE_AT + 4..TYPE_AT + 8].copy_from_slice(&value.to_ne_bytes());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fifo(dir: &Path) -> std::path::PathBuf {
        let p = dir.join("event0");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        p
    }

    #[test]
    fn fifo_counts_activity_not_syn_and_joins_split_records() {
        let t = tempfile::tempdir().unwrap();
        let p = fifo(t.path());
        let mut src = open(&p, true).unwrap();
        let mut w = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        // A key press and its SYN_REPORT, then a motion split in two writes.
        w.write_all(&record(1, 30, 1)).unwrap();
        w.write_all(&record(0, 0, 0)).unwrap();
        let motion = record(2, 0, 5);
        w.write_all(&motion[..10]).unwrap();
        assert_eq!(src.read_activity().unwrap(), 1);
        w.write_all(&motion[10..]).unwrap();
        w.write_all(&record(4, 4, 30)).unwrap(); // EV_MSC: not activity
        assert_eq!(src.read_activity().unwrap(), 1);
        // The writer goes: no error, no spin, nothing to read.
        drop(w);
        assert_eq!(src.read_activity().unwrap(), 0);
    }

    #[test]
    fn a_fifo_without_the_test_hook_and_a_regular_file_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = fifo(t.path());
        assert!(matches!(open(&p, false), Err(OpenError::NotDevice)));
        let f = t.path().join("event1");
        std::fs::write(&f, b"x").unwrap();
        assert!(matches!(open(&f, true), Err(OpenError::NotDevice)));
        let gone = t.path().join("event2");
        assert!(matches!(open(&gone, true), Err(OpenError::Io(_))));
    }

    #[test]
    fn a_character_device_that_is_not_evdev_is_refused() {
        // /dev/null is a character device; EVIOCGBIT fails on it.
        assert!(matches!(
            open(Path::new("/dev/null"), false),
            Err(OpenError::NotEvdev(_))
        ));
    }
}
