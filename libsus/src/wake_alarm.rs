//! Wake alarms: a connection to wakealarmd (`RUN/wakealarm`).
//!
//! ```text
//! WakeAlarm::new(t)   connect, read "0", write "t\n", read the echo "t"
//! poll() / wait()     … "Now\n" arrives: the alarm is due
//!                     suspend stays blocked while the alarm is due …
//! set(t2) or drop     … until it is re-armed or dropped
//! ```
//!
//! From the connect until the time is written, and again from `Now` until
//! the alarm is re-armed or dropped, wakealarmd keeps the machine awake;
//! in between it lets the machine sleep and programs the RTC to wake it
//! for the alarm.
//!
//! wakealarmd keeps no alarms across its own restart (it is restarted with
//! lsusd under systemd: `Requires=lsusd.service`): the connection ends. An
//! end of the connection while the alarm is not due is wakealarmd's way of
//! saying "reconnect": [`WakeAlarm`] then connects again, waiting up to
//! [`WakeAlarm::set_reconnect_timeout`] ([`RECONNECT_TIMEOUT`], 60 s, by
//! default) for the new wakealarmd, and writes its time again, so the alarm
//! still wakes the machine. The socket keeps its descriptor number. An end
//! while the alarm is due is noted; the next [`WakeAlarm::set`] connects
//! again.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lsus_proto::rundir::WAKEALARM;
use lsus_proto::wakealarm::{time_line, Reply, ReplyParser, MAX_TIME};
use nix::poll::{poll, PollFd, PollFlags};

use crate::reconnect::{closed_by_peer, redial};
use crate::{Error, Result};

/// How long wakealarmd may take to greet and to echo a time.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a lost connection to wakealarmd is retried by default: longer
/// than lsused's ([`crate::wake_event::RECONNECT_TIMEOUT`], 10 s), as a
/// restart of lsusd restarts wakealarmd only after the new lsusd is ready,
/// which takes seconds on a slow machine, and an alarm given up is lost.
pub const RECONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// An alarm registered with wakealarmd (the original's `wakealarm_set`).
///
/// It is a pollable object: wait on [`WakeAlarm::as_fd`] for readability
/// in any event loop, then call [`WakeAlarm::poll`]. Simple programs use
/// [`WakeAlarm::wait`]. Once due, the alarm keeps suspend blocked until it
/// is re-armed with [`WakeAlarm::set`] or dropped, so the work it triggers
/// can finish before the machine sleeps again.
///
/// ```no_run
/// use std::time::{Duration, SystemTime};
/// let mut alarm = libsus::WakeAlarm::new(SystemTime::now() + Duration::from_secs(60))?;
/// alarm.wait()?;             // the machine is awake now, and stays so…
/// println!("time to work");
/// drop(alarm);               // … until here
/// # Ok::<(), libsus::Error>(())
/// ```
#[derive(Debug)]
pub struct WakeAlarm {
    path: PathBuf,
    stream: UnixStream,
    replies: ReplyParser,
    when: u64,
    due: bool,
    /// wakealarmd closed the connection (replies read before stay valid).
    closed: bool,
    reconnect_timeout: Duration,
    /// Inside a reconnect: an end of the connection now is final.
    reconnecting: bool,
    reconnects: u64,
}

/// Returns `time` as whole seconds since the epoch, rounded up (an alarm
/// never fires early); a time before the epoch counts as the epoch.
fn epoch_seconds(time: SystemTime) -> u64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() + u64::from(d.subsec_nanos() > 0),
        Err(_) => 0,
    }
}

/// Returns [`epoch_seconds`] of `time`, or the error for a time past the
/// year 9999 (wakealarmd would refuse it too).
fn checked_seconds(time: SystemTime) -> Result<u64> {
    let secs = epoch_seconds(time);
    if secs > MAX_TIME {
        return Err(Error::TimeOutOfRange(secs));
    }
    Ok(secs)
}

impl WakeAlarm {
    /// Sets an alarm for `when` with the wakealarmd of the default run
    /// directory ([`crate::run_dir`]).
    ///
    /// Times are whole seconds: a fractional time is rounded up. Returns
    /// once wakealarmd has accepted the time. Fails if wakealarmd is not
    /// running or does not answer within a few seconds.
    ///
    /// ```no_run
    /// use std::time::{Duration, SystemTime};
    /// let alarm = libsus::WakeAlarm::new(SystemTime::now() + Duration::from_secs(3600))?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn new(when: SystemTime) -> Result<WakeAlarm> {
        WakeAlarm::new_in(&crate::run_dir(), when)
    }

    /// Sets an alarm for `when` with the wakealarmd of the run directory
    /// `dir`.
    ///
    /// ```no_run
    /// use std::time::{Duration, SystemTime};
    /// let alarm = libsus::WakeAlarm::new_in(
    ///     std::path::Path::new("/run/suspend"),
    ///     SystemTime::now() + Duration::from_secs(60),
    /// )?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn new_in(dir: &Path, when: SystemTime) -> Result<WakeAlarm> {
        checked_seconds(when)?;
        let path = dir.join(WAKEALARM);
        let stream = crate::wake_event::connect(&path, "wakealarmd")?;
        let mut alarm = WakeAlarm {
            path,
            stream,
            replies: ReplyParser::new(),
            when: 0,
            due: false,
            closed: false,
            reconnect_timeout: RECONNECT_TIMEOUT,
            reconnecting: false,
            reconnects: 0,
        };
        alarm.greet()?;
        alarm.set(when)?;
        Ok(alarm)
    }

    /// Reads wakealarmd's greeting `0` on a new connection.
    fn greet(&mut self) -> Result<()> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        match self.next_reply(deadline)? {
            Reply::Number(0) => Ok(()),
            other => Err(self.unexpected(&other, "the greeting 0")),
        }
    }

    /// Sets how long a lost connection is retried ([`RECONNECT_TIMEOUT`]
    /// by default; zero: never reconnect, an end of the connection is an
    /// error).
    ///
    /// ```no_run
    /// # let mut alarm = libsus::WakeAlarm::new(std::time::SystemTime::now())?;
    /// alarm.set_reconnect_timeout(std::time::Duration::from_secs(30));
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn set_reconnect_timeout(&mut self, timeout: Duration) {
        self.reconnect_timeout = timeout;
    }

    /// Returns how many times the alarm connected to wakealarmd again
    /// after the connection ended.
    ///
    /// ```no_run
    /// # let alarm = libsus::WakeAlarm::new(std::time::SystemTime::now())?;
    /// println!("wakealarmd restarted {} times", alarm.reconnects());
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// wakealarmd closed the connection: connects again (waiting for the
    /// new wakealarmd until the reconnect time-out) and writes `secs`.
    fn reconnect(&mut self, secs: u64) -> Result<()> {
        if self.reconnect_timeout.is_zero() {
            return Err(self.closed_error());
        }
        let (path, fd) = (self.path.clone(), self.stream.as_raw_fd());
        redial(self, "wakealarmd", &path, fd, self.reconnect_timeout, |a| {
            a.replies = ReplyParser::new();
            a.closed = false;
            a.reconnecting = true;
            let result = a.greet().and_then(|()| a.send(secs));
            a.reconnecting = false;
            result
        })?;
        self.reconnects += 1;
        Ok(())
    }

    /// Re-arms the alarm for `when`, replacing the previous time (due or
    /// not). Returns once wakealarmd has accepted it; from then on the
    /// alarm is not due and no longer blocks suspend.
    ///
    /// ```no_run
    /// # use std::time::{Duration, SystemTime};
    /// # let mut alarm = libsus::WakeAlarm::new(SystemTime::now())?;
    /// alarm.wait()?;
    /// alarm.set(SystemTime::now() + Duration::from_secs(300))?; // again in 5 minutes
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn set(&mut self, when: SystemTime) -> Result<()> {
        let secs = checked_seconds(when)?;
        if self.closed {
            return self.reconnect(secs);
        }
        match self.send(secs) {
            // wakealarmd went away (before or while it read the time)
            Err(e) if closed_by_peer(&e) => {
                self.closed = true;
                self.reconnect(secs)
            }
            other => other,
        }
    }

    /// Writes `secs` and waits for its echo.
    fn send(&mut self, secs: u64) -> Result<()> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        self.write_all(time_line(secs).as_bytes(), deadline)?;
        loop {
            match self.next_reply(deadline)? {
                Reply::Number(n) if n == secs => break,
                // The old time came due before wakealarmd read the new one.
                Reply::Now => {}
                other => return Err(self.unexpected(&other, &format!("the echo {secs}"))),
            }
        }
        self.when = secs;
        self.due = false;
        Ok(())
    }

    /// Returns the time the alarm is set for (whole seconds).
    ///
    /// ```no_run
    /// # let alarm = libsus::WakeAlarm::new(std::time::SystemTime::now())?;
    /// println!("{:?}", alarm.when());
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn when(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.when)
    }

    /// Returns true if and only if `Now` has arrived for the current time
    /// (as far as [`WakeAlarm::poll`] or [`WakeAlarm::wait`] have read).
    ///
    /// ```no_run
    /// # let alarm = libsus::WakeAlarm::new(std::time::SystemTime::now())?;
    /// if alarm.is_due() { println!("wake up"); }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn is_due(&self) -> bool {
        self.due
    }

    /// Reads what wakealarmd sent, without blocking, and returns true if
    /// and only if the alarm is due. It stays due (and suspend stays
    /// blocked) until [`WakeAlarm::set`] or drop.
    ///
    /// Call it when [`WakeAlarm::as_fd`] is readable. When wakealarmd
    /// closed the connection before the alarm was due, this connects again
    /// and writes the time again (see the module docs), which blocks until
    /// the new wakealarmd answers; fails if it does not come back within
    /// the reconnect time-out.
    ///
    /// ```no_run
    /// # let mut alarm = libsus::WakeAlarm::new(std::time::SystemTime::now())?;
    /// if alarm.poll()? {
    ///     println!("the time has come");
    /// }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn poll(&mut self) -> Result<bool> {
        self.fill(Some(Instant::now()))?;
        self.take_replies()?;
        if !self.due && self.closed {
            self.reconnect(self.when)?;
            self.take_replies()?;
        }
        Ok(self.due)
    }

    /// Blocks until the alarm is due.
    ///
    /// ```no_run
    /// # let mut alarm = libsus::WakeAlarm::new(std::time::SystemTime::now())?;
    /// alarm.wait()?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<()> {
        while !self.wait_timeout(None)? {}
        Ok(())
    }

    /// Blocks until the alarm is due or `timeout` (`None`: no limit) has
    /// passed; returns true if and only if it is due.
    ///
    /// ```no_run
    /// # let mut alarm = libsus::WakeAlarm::new(std::time::SystemTime::now())?;
    /// let due = alarm.wait_timeout(Some(std::time::Duration::from_secs(5)))?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Option<Duration>) -> Result<bool> {
        // A timeout too long for the clock is no deadline at all.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            self.take_replies()?;
            if self.due {
                return Ok(true);
            }
            if self.closed {
                self.reconnect(self.when)?;
                continue;
            }
            if !self.fill(deadline)? {
                return Ok(false);
            }
        }
    }

    /// Handles every complete reply buffered.
    fn take_replies(&mut self) -> Result<()> {
        while let Some(reply) = self.replies.next_reply() {
            match reply {
                Reply::Now => self.due = true,
                other => return Err(self.unexpected(&other, "Now")),
            }
        }
        Ok(())
    }

    /// Returns the next reply, waiting for it until `deadline`.
    fn next_reply(&mut self, deadline: Instant) -> Result<Reply> {
        loop {
            if let Some(reply) = self.replies.next_reply() {
                return Ok(reply);
            }
            if self.closed {
                return Err(self.closed_error());
            }
            if !self.fill(Some(deadline))? {
                return Err(Error::Timeout(ANSWER_TIMEOUT));
            }
        }
    }

    fn closed_error(&self) -> Error {
        Error::io(
            format!("wakealarmd closed {}", self.path.display()),
            io::ErrorKind::UnexpectedEof.into(),
        )
    }

    /// Waits until the socket is readable (or `deadline`, `None`: forever)
    /// and reads what is there, noting an end of file. Returns false on
    /// time-out.
    fn fill(&mut self, deadline: Option<Instant>) -> Result<bool> {
        if self.closed {
            return Ok(true);
        }
        if !self.wait_for(PollFlags::POLLIN, deadline)? {
            return Ok(false);
        }
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    return Ok(true);
                }
                Ok(n) => self.replies.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("cannot read from wakealarmd", e)),
            }
        }
    }

    fn write_all(&mut self, mut bytes: &[u8], deadline: Instant) -> Result<()> {
        while !bytes.is_empty() {
            match self.stream.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.wait_for(PollFlags::POLLOUT, Some(deadline))? {
                        return Err(Error::Timeout(ANSWER_TIMEOUT));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("cannot write to wakealarmd", e)),
            }
        }
        Ok(())
    }

    /// Polls the socket for `events` until `deadline`; true when ready.
    fn wait_for(&self, events: PollFlags, deadline: Option<Instant>) -> Result<bool> {
        loop {
            let timeout = lsus_sys::dirwatch::poll_timeout(
                deadline.map(|at| at.saturating_duration_since(Instant::now())),
            );
            let mut fds = [PollFd::new(self.stream.as_fd(), events)];
            match poll(&mut fds, timeout) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::io("cannot poll the wakealarm socket", e.into())),
            }
        }
    }

    fn unexpected(&self, reply: &Reply, wanted: &str) -> Error {
        match reply {
            Reply::Error(text) => Error::Protocol(format!("wakealarmd refused the time: {text}")),
            other => Error::Protocol(format!(
                "wakealarmd sent {other:?} where {wanted} was expected"
            )),
        }
    }
}

impl AsFd for WakeAlarm {
    /// The socket to poll for readability.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn times_past_9999_are_refused_before_connecting() {
        let t = tempfile::tempdir().unwrap();
        let when = UNIX_EPOCH + Duration::from_secs(MAX_TIME + 1);
        // No server: the range is checked first.
        let err = WakeAlarm::new_in(t.path(), when).unwrap_err();
        assert!(
            matches!(err, Error::TimeOutOfRange(s) if s == MAX_TIME + 1),
            "{err}"
        );
        assert!(err.to_string().starts_with("time out of range"));
        assert_eq!(
            checked_seconds(UNIX_EPOCH + Duration::from_secs(MAX_TIME)).unwrap(),
            MAX_TIME
        );
    }

    #[test]
    fn seconds_round_up_and_clamp_at_the_epoch() {
        assert_eq!(epoch_seconds(UNIX_EPOCH + Duration::from_millis(1001)), 2);
        assert_eq!(epoch_seconds(UNIX_EPOCH + Duration::from_secs(7)), 7);
        assert_eq!(epoch_seconds(UNIX_EPOCH - Duration::from_secs(7)), 0);
    }

    /// A scripted wakealarmd: reads one line per step and answers it.
    fn fake_server(dir: &Path, script: Vec<&'static [u8]>) -> std::thread::JoinHandle<Vec<u8>> {
        let listener = UnixListener::bind(dir.join(WAKEALARM)).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"0\n").unwrap();
            let mut got = Vec::new();
            for answer in script {
                let mut byte = [0u8; 1];
                loop {
                    s.read_exact(&mut byte).unwrap();
                    got.push(byte[0]);
                    if byte[0] == b'\n' {
                        break;
                    }
                }
                s.write_all(answer).unwrap();
            }
            got
        })
    }

    #[test]
    fn set_reads_the_echo_and_poll_sees_now() {
        let t = tempfile::tempdir().unwrap();
        let server = fake_server(t.path(), vec![b"100\nNow\n", b"Now\n200\n"]);
        let mut alarm = WakeAlarm::new_in(t.path(), UNIX_EPOCH + Duration::from_secs(100)).unwrap();
        assert!(alarm.wait_timeout(Some(Duration::from_secs(5))).unwrap());
        assert!(alarm.poll().unwrap());
        // A Now for the old time before the echo is not the new alarm's.
        alarm.set(UNIX_EPOCH + Duration::from_secs(200)).unwrap();
        assert!(!alarm.is_due());
        assert_eq!(alarm.when(), UNIX_EPOCH + Duration::from_secs(200));
        assert_eq!(server.join().unwrap(), b"100\n200\n");
        // The server is gone (and reconnecting is off): that is an error,
        // not a Now.
        alarm.set_reconnect_timeout(Duration::ZERO);
        assert!(alarm.poll().is_err());
    }

    #[test]
    fn a_closed_connection_is_made_again_with_the_same_time() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join(WAKEALARM);
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            // the first wakealarmd: greets, echoes the time, then stops
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"0\n").unwrap();
            let mut line = [0u8; 4];
            s.read_exact(&mut line).unwrap();
            s.write_all(b"100\n").unwrap();
            drop(s);
            // the next one: the same time written again, then due
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"0\n").unwrap();
            let mut again = [0u8; 4];
            s.read_exact(&mut again).unwrap();
            s.write_all(b"100\nNow\n").unwrap();
            (line, again, s)
        });
        let mut alarm = WakeAlarm::new_in(t.path(), UNIX_EPOCH + Duration::from_secs(100)).unwrap();
        let fd = alarm.as_fd().as_raw_fd();
        assert!(alarm.wait_timeout(Some(Duration::from_secs(5))).unwrap());
        let (line, again, _s) = server.join().unwrap();
        assert_eq!(&line, b"100\n");
        assert_eq!(&again, b"100\n");
        assert_eq!(alarm.reconnects(), 1);
        assert_eq!(
            alarm.as_fd().as_raw_fd(),
            fd,
            "the descriptor keeps its number"
        );
    }

    #[test]
    fn an_error_line_is_reported() {
        let t = tempfile::tempdir().unwrap();
        let _server = fake_server(t.path(), vec![b"Error: nope\n"]);
        let err = WakeAlarm::new_in(t.path(), UNIX_EPOCH).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn no_daemon_is_a_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let err = WakeAlarm::new_in(t.path(), UNIX_EPOCH).unwrap_err();
        assert!(err.to_string().contains("is wakealarmd running"), "{err}");
    }
}
