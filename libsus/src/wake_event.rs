//! Wake events: handling input that arrives around a suspend, through
//! lsused (`RUN/registration`).
//!
//! A program whose input can wake the machine (a modem, a keyboard, a
//! socket) registers those descriptors with lsused. When lsusd is about to
//! suspend, lsused looks at them once: if one is readable, the program is
//! told ([`WakeEvent::SuspendImminent`]) and the suspend waits until it
//! has read its input and called [`WakeEvents::ready`]. After resume it
//! hears [`WakeEvent::Awake`]. A program with nothing readable is not
//! disturbed at all.
//!
//! ```text
//! program                                  lsused
//! connect                           ◄────  A
//! register(&[fd])  W + [fd]         ────►
//!                                   ◄────  A
//!            … suspend imminent, fd readable …
//! poll_event() = SuspendImminent    ◄────  S
//! read fd until empty, then ready() ────►  R
//!            … suspend, resume …
//! poll_event() = Awake              ◄────  A
//! ```
//!
//! The original library made the application drain its descriptors
//! before answering by giving the socket a lower libevent priority; here
//! the application calls [`WakeEvents::ready`] itself once it has.
//!
//! When lsused stops (it is restarted, or lsusd restarts and takes lsused
//! with it) the connection ends, and EOF is lsused's way of saying
//! "reconnect". [`WakeEvents`] then connects again, waiting up to
//! [`WakeEvents::set_reconnect_timeout`] (10 s by default) for the new
//! lsused, and registers the same descriptors again: it keeps a duplicate
//! of each for that purpose. The application notices nothing, except that
//! an `S` still unanswered when the old lsused went away needs no `R` any
//! more.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inotify::WatchMask;
use lsus_sys::dirwatch::DirWatch;

use lsus_proto::registration::{
    send_byte, send_watch, ClientMessage, RegistrationError, ServerMessage, MAX_FDS_PER_WATCH,
};
use lsus_proto::rundir::REGISTRATION;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::event_wait::{self, EventSource};
use crate::reconnect::redial;
use crate::{Error, Result};

/// How long connecting and registering wait for lsused's `A`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a lost connection is retried by default.
pub const RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a [`WakeEvents`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeEvent {
    /// `S` arrived: suspend is imminent and one of the registered
    /// descriptors is readable. Drain your descriptors (take a
    /// [`crate::Blocker`] block first if the work goes on for a while),
    /// then call [`WakeEvents::ready`]; the suspend waits until you do.
    ///
    /// ```no_run
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// if events.wait()? == libsus::WakeEvent::SuspendImminent {
    ///     // … read the registered descriptors until they would block …
    ///     events.ready()?;
    /// }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    SuspendImminent,
    /// `A` after a [`WakeEvent::SuspendImminent`]: the suspend attempt is
    /// over (the machine resumed, or the attempt was aborted).
    ///
    /// ```no_run
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// if events.wait()? == libsus::WakeEvent::Awake {
    ///     println!("awake");
    /// }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    Awake,
}

/// A connection to lsused with registered wake-event descriptors (the
/// original's `wakeevent` registration).
///
/// It is a pollable object: wait on [`as_fd`](AsFd::as_fd) for readability
/// in any event loop, next to the registered descriptors themselves, then
/// call [`WakeEvents::poll_event`] until it returns `None`. Simple
/// programs use [`WakeEvents::wait`]. Dropping it closes the connection,
/// which unregisters everything (and, during a suspend, counts as ready).
///
/// ```no_run
/// use libsus::{WakeEvent, WakeEvents};
/// let modem = std::fs::File::open("/dev/ttyUSB0")?;
/// let mut events = WakeEvents::connect()?;
/// events.register(&[&modem])?;
/// loop {
///     match events.wait()? {
///         WakeEvent::SuspendImminent => {
///             // … read everything the modem has to say …
///             events.ready()?;
///         }
///         WakeEvent::Awake => println!("awake"),
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct WakeEvents {
    sock: UnixStream,
    /// The socket's path, to connect again.
    path: PathBuf,
    /// Duplicates of every registered descriptor, to register again.
    registered: Vec<OwnedFd>,
    reconnect_timeout: Duration,
    /// Inside a reconnect: an EOF now is final.
    reconnecting: bool,
    reconnects: u64,
    /// `A`s still owed for a connect or a `W`.
    acks_due: usize,
    /// `SuspendImminent` was reported and `R` not yet sent.
    pending: bool,
    /// Events read but not yet reported (at most a few).
    queue: VecDeque<WakeEvent>,
}

fn closed() -> Error {
    Error::io(
        "lsused closed the connection",
        io::ErrorKind::UnexpectedEof.into(),
    )
}

impl WakeEvents {
    /// Connects to lsused on the default run directory
    /// ([`crate::run_dir`]) and waits for its greeting.
    ///
    /// ```no_run
    /// let events = libsus::WakeEvents::connect()?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn connect() -> Result<WakeEvents> {
        WakeEvents::connect_in(&crate::run_dir())
    }

    /// Connects to lsused on the run directory `dir` and waits for its
    /// greeting (`A`).
    ///
    /// Fails when nothing listens on `dir/registration`, or when lsused
    /// closes the connection (it does when it is out of descriptors).
    ///
    /// ```no_run
    /// let events = libsus::WakeEvents::connect_in(std::path::Path::new("/run/suspend"))?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn connect_in(dir: &Path) -> Result<WakeEvents> {
        let path = dir.join(REGISTRATION);
        let sock = connect(&path, "lsused")?;
        let mut events = WakeEvents {
            sock,
            path,
            registered: Vec::new(),
            reconnect_timeout: RECONNECT_TIMEOUT,
            reconnecting: false,
            reconnects: 0,
            acks_due: 1,
            pending: false,
            queue: VecDeque::new(),
        };
        events.await_acks()?;
        Ok(events)
    }

    /// Registers `fds` with lsused and waits until it has them.
    ///
    /// lsused keeps its own copies, watched for `POLLIN|POLLPRI`: the
    /// caller may close its descriptors afterwards (but then it will not be
    /// able to drain them). This object keeps a duplicate of each too, to
    /// register them again after a reconnect (see the module docs). More
    /// than 253 descriptors go in several messages; an empty slice does
    /// nothing. May be called again at any time to add more.
    ///
    /// ```no_run
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// let keyboard = std::fs::File::open("/dev/input/event0")?;
    /// let modem = std::fs::File::open("/dev/ttyUSB0")?;
    /// events.register(&[&keyboard, &modem])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn register<F: AsFd>(&mut self, fds: &[F]) -> Result<()> {
        let mut dups = Vec::with_capacity(fds.len());
        for fd in fds {
            dups.push(
                fd.as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| Error::io("cannot duplicate a descriptor to register", e))?,
            );
        }
        let first_new = self.registered.len();
        self.registered.extend(dups);
        let sent = self.send_registered(first_new);
        if sent.is_err() {
            // Not registered: not to be registered again either.
            self.registered.truncate(first_new);
        }
        sent
    }

    /// Sends `W` with the kept descriptors from index `from` on, in chunks,
    /// each answered by an `A`.
    fn send_registered(&mut self, from: usize) -> Result<()> {
        let mut start = from;
        while start < self.registered.len() {
            let end = (start + MAX_FDS_PER_WATCH).min(self.registered.len());
            send_watch(self.sock.as_fd(), &self.registered[start..end]).map_err(|e| match e {
                RegistrationError::Io(e) => Error::io("cannot send W to lsused", e),
                other => Error::Protocol(other.to_string()),
            })?;
            self.acks_due += 1;
            self.await_acks()?;
            start = end;
        }
        Ok(())
    }

    /// Sets how long a lost connection is retried before
    /// [`WakeEvents::poll_event`] and the other calls fail
    /// ([`RECONNECT_TIMEOUT`] by default; zero: never reconnect, an EOF
    /// from lsused is an error at once).
    ///
    /// ```no_run
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// events.set_reconnect_timeout(std::time::Duration::from_secs(30));
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn set_reconnect_timeout(&mut self, timeout: Duration) {
        self.reconnect_timeout = timeout;
    }

    /// Returns how many times the connection to lsused was lost and
    /// established again.
    ///
    /// ```no_run
    /// # let events = libsus::WakeEvents::connect()?;
    /// println!("lsused restarted {} times", events.reconnects());
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Returns the next event without blocking, or `None` if there is none.
    ///
    /// Call it when [`as_fd`](AsFd::as_fd) is readable, and again until it
    /// returns `None`. When lsused has gone away this reconnects, which
    /// blocks until the new lsused answers (or the reconnect time-out).
    ///
    /// ```no_run
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// while let Some(event) = events.poll_event()? {
    ///     if event == libsus::WakeEvent::SuspendImminent {
    ///         // … drain the registered descriptors …
    ///         events.ready()?;
    ///     }
    /// }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn poll_event(&mut self) -> Result<Option<WakeEvent>> {
        if self.queue.is_empty() {
            self.read_available()?;
        }
        let event = self.queue.pop_front();
        if event == Some(WakeEvent::SuspendImminent) {
            self.pending = true;
        }
        Ok(event)
    }

    /// Answers `R` after [`WakeEvent::SuspendImminent`]: the input is
    /// handled and the suspend may go on.
    ///
    /// Call it only once the registered descriptors are drained (read until
    /// they would block): input still waiting when the machine sleeps may
    /// not wake it again. Does nothing when no `S` is outstanding.
    ///
    /// ```no_run
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// if events.wait()? == libsus::WakeEvent::SuspendImminent {
    ///     events.ready()?;
    /// }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn ready(&mut self) -> Result<()> {
        if self.pending {
            match send_byte(self.sock.as_fd(), ClientMessage::Ready.byte()) {
                Ok(()) => {}
                // lsused went away: it waits for no `R` any more, and the
                // next read reconnects.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) && !self.reconnect_timeout.is_zero() => {}
                Err(e) => return Err(Error::io("cannot send R to lsused", e)),
            }
            self.pending = false;
        }
        Ok(())
    }

    /// Returns true if and only if [`WakeEvent::SuspendImminent`] was
    /// reported and [`WakeEvents::ready`] not yet called.
    ///
    /// ```no_run
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// if events.is_pending() {
    ///     events.ready()?;
    /// }
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// Blocks until the next event.
    ///
    /// ```no_run
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// let event = events.wait()?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn wait(&mut self) -> Result<WakeEvent> {
        event_wait::wait(self)
    }

    /// Blocks until the next event or until `timeout` passes (`None`: no
    /// limit); returns `None` on time-out.
    ///
    /// ```no_run
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// let event = events.wait_timeout(Some(std::time::Duration::from_secs(1)))?;
    /// # Ok::<(), libsus::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<WakeEvent>> {
        event_wait::wait_timeout(self, timeout)
    }

    /// Reads every byte that is there and turns it into events.
    fn read_available(&mut self) -> Result<()> {
        let mut buf = [0u8; 64];
        loop {
            let n = match self.sock.read(&mut buf) {
                // A reset (lsused exited with our bytes unread) ends the
                // connection as an EOF does.
                Ok(0) if self.reconnecting || self.reconnect_timeout.is_zero() => {
                    return Err(closed())
                }
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionReset
                        && (self.reconnecting || self.reconnect_timeout.is_zero()) =>
                {
                    return Err(closed())
                }
                Ok(0) => return self.reconnect(),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return self.reconnect(),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("cannot read from lsused", e)),
            };
            for &byte in &buf[..n] {
                match ServerMessage::from_byte(byte) {
                    Some(ServerMessage::Suspend) => {
                        self.queue.push_back(WakeEvent::SuspendImminent)
                    }
                    // An `A` answers the oldest connect or `W` still owed
                    // one; any other `A` ends a suspend attempt. (lsused
                    // answers a `W` as soon as it reads it, so the two
                    // cannot be confused in a way that changes the count.)
                    Some(ServerMessage::Ack) if self.acks_due > 0 => self.acks_due -= 1,
                    Some(ServerMessage::Ack) => self.queue.push_back(WakeEvent::Awake),
                    None => {
                        return Err(Error::Protocol(format!(
                            "lsused sent {:?}, which is not part of the protocol",
                            char::from(byte)
                        )))
                    }
                }
            }
        }
    }

    /// lsused closed the connection: connects again (waiting for the new
    /// lsused until the reconnect time-out) and registers everything
    /// again. The socket keeps its descriptor number.
    fn reconnect(&mut self) -> Result<()> {
        let (path, fd) = (self.path.clone(), self.sock.as_raw_fd());
        redial(self, "lsused", &path, fd, self.reconnect_timeout, |w| {
            // The old lsused's attempt is over for us: no `R` is owed to
            // the new one.
            w.pending = false;
            w.queue.clear();
            w.acks_due = 1;
            w.reconnecting = true;
            let result = w.await_acks().and_then(|()| w.send_registered(0));
            w.reconnecting = false;
            result
        })?;
        self.reconnects += 1;
        Ok(())
    }

    /// Waits until every owed `A` has arrived; `S` bytes that come
    /// meanwhile are kept as events.
    fn await_acks(&mut self) -> Result<()> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            self.read_available()?;
            if self.acks_due == 0 {
                return Ok(());
            }
            if !self.wait_readable(Some(deadline))? {
                return Err(Error::Timeout(ANSWER_TIMEOUT));
            }
        }
    }

    /// Waits until the socket is readable or `deadline` passes; returns
    /// true if and only if it is readable. A signal ends the wait early
    /// (returning true, so the caller looks and waits again).
    fn wait_readable(&self, deadline: Option<Instant>) -> Result<bool> {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                lsus_sys::dirwatch::poll_timeout(Some(left))
            }
        };
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(n) => Ok(n > 0),
            Err(nix::errno::Errno::EINTR) => Ok(true),
            Err(e) => Err(Error::io("cannot wait for lsused", e.into())),
        }
    }
}

impl EventSource for WakeEvents {
    type Event = WakeEvent;

    fn next_event(&mut self) -> Result<Option<WakeEvent>> {
        self.poll_event()
    }

    fn sleep_until(&mut self, deadline: Option<Instant>) -> Result<bool> {
        self.wait_readable(deadline)
    }
}

/// Connects to the socket of `daemon` (lsused, wakealarmd) at `path`, in
/// non-blocking mode.
pub(crate) fn connect(path: &Path, daemon: &str) -> Result<UnixStream> {
    let sock = UnixStream::connect(path).map_err(|e| {
        Error::io(
            format!(
                "cannot connect to {} (is {daemon} running?)",
                path.display()
            ),
            e,
        )
    })?;
    sock.set_nonblocking(true)
        .map_err(|e| Error::io(format!("cannot make the {daemon} socket non-blocking"), e))?;
    Ok(sock)
}

/// Connects to `path`, waiting until `deadline` for a server that is not
/// there yet (no socket, or one that refuses: `daemon` is restarting).
pub(crate) fn connect_until(path: &Path, deadline: Instant, daemon: &str) -> Result<UnixStream> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // The socket's creation ends a wait early.
    let mut watch = DirWatch::new(dir, WatchMask::CREATE).ok();
    loop {
        let err = match connect(path, daemon) {
            Ok(sock) => return Ok(sock),
            Err(e) => e,
        };
        let retry = matches!(&err, Error::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOENT) | Some(libc::ECONNREFUSED)));
        let left = deadline.saturating_duration_since(Instant::now());
        if !retry || left.is_zero() {
            return Err(err);
        }
        let pause = left.min(crate::reconnect::RECONNECT_RETRY);
        match watch.as_mut() {
            Some(w) => {
                if matches!(w.wait(Some(pause)), Ok(true)) {
                    let _ = w.drain(|_, _| {});
                }
            }
            None => std::thread::sleep(pause),
        }
    }
}

impl AsFd for WakeEvents {
    /// The socket to poll for readability; then call
    /// [`WakeEvents::poll_event`].
    ///
    /// ```no_run
    /// use std::os::fd::AsFd;
    /// use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    /// # let mut events = libsus::WakeEvents::connect()?;
    /// let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLIN)];
    /// poll(&mut fds, PollTimeout::NONE)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsus_proto::registration::{Received, RecvBuffer};
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    /// A fake lsused: a listener in a temp run directory.
    fn fake() -> (tempfile::TempDir, UnixListener) {
        let t = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(t.path().join(REGISTRATION)).unwrap();
        (t, listener)
    }

    fn recv(server: &UnixStream) -> Received {
        let mut fds = [PollFd::new(server.as_fd(), PollFlags::POLLIN)];
        nix::poll::poll(&mut fds, PollTimeout::from(5000u16)).unwrap();
        RecvBuffer::new().recv(server.as_fd()).unwrap()
    }

    #[test]
    fn connect_fails_clearly_without_lsused() {
        let t = tempfile::tempdir().unwrap();
        let err = WakeEvents::connect_in(t.path()).unwrap_err();
        assert!(err.to_string().contains("is lsused running?"), "{err}");
    }

    #[test]
    fn full_exchange_with_a_fake_lsused() {
        let (t, listener) = fake();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"A").unwrap();
            let Received::Byte { byte: b'W', fds } = recv(&s) else {
                panic!("expected W");
            };
            assert_eq!(fds.len(), 2);
            // An S may overtake the A for a W.
            s.write_all(b"SA").unwrap();
            let Received::Byte { byte: b'R', .. } = recv(&s) else {
                panic!("expected R");
            };
            s.write_all(b"A").unwrap();
            assert!(matches!(recv(&s), Received::Eof));
        });
        let mut ev = WakeEvents::connect_in(t.path()).unwrap();
        assert_eq!(ev.poll_event().unwrap(), None);
        let (r, w) = nix::unistd::pipe().unwrap();
        ev.register(&[&r, &w]).unwrap();
        assert!(!ev.is_pending());
        ev.ready().unwrap(); // nothing outstanding: no R is sent
        assert_eq!(ev.wait().unwrap(), WakeEvent::SuspendImminent);
        assert!(ev.is_pending());
        ev.ready().unwrap();
        assert!(!ev.is_pending());
        assert_eq!(
            ev.wait_timeout(Some(Duration::from_secs(5))).unwrap(),
            Some(WakeEvent::Awake)
        );
        assert_eq!(
            ev.wait_timeout(Some(Duration::from_millis(20))).unwrap(),
            None
        );
        drop(ev);
        server.join().unwrap();
    }

    #[test]
    fn many_descriptors_go_in_several_messages() {
        let (t, listener) = fake();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"A").unwrap();
            let mut counts = Vec::new();
            loop {
                match recv(&s) {
                    Received::Byte { byte: b'W', fds } => {
                        counts.push(fds.len());
                        s.write_all(b"A").unwrap();
                    }
                    Received::Byte { byte, .. } => panic!("unexpected {byte}"),
                    Received::Eof => return counts,
                }
            }
        });
        let pipes: Vec<_> = (0..150).map(|_| nix::unistd::pipe().unwrap()).collect();
        let fds: Vec<BorrowedFd<'_>> = pipes
            .iter()
            .flat_map(|(r, w)| [r.as_fd(), w.as_fd()])
            .collect();
        let mut ev = WakeEvents::connect_in(t.path()).unwrap();
        ev.register(&fds).unwrap();
        let none: [BorrowedFd<'_>; 0] = [];
        ev.register(&none).unwrap();
        drop(ev);
        assert_eq!(
            server.join().unwrap(),
            vec![MAX_FDS_PER_WATCH, 300 - MAX_FDS_PER_WATCH]
        );
    }

    #[test]
    fn garbage_and_hang_up_from_the_server_are_errors() {
        let (t, listener) = fake();
        let (go, closing) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"A?").unwrap();
            let (mut s2, _) = listener.accept().unwrap();
            s2.write_all(b"A").unwrap();
            closing.recv().unwrap();
            drop(s2);
            s
        });
        assert!(matches!(
            WakeEvents::connect_in(t.path()),
            Err(Error::Protocol(_))
        ));
        let mut ev = WakeEvents::connect_in(t.path()).unwrap();
        ev.set_reconnect_timeout(Duration::ZERO);
        go.send(()).unwrap();
        let _s = server.join().unwrap();
        let err = ev.wait_timeout(Some(Duration::from_secs(5))).unwrap_err();
        assert!(err.to_string().contains("closed the connection"), "{err}");
    }

    #[test]
    fn a_restarted_lsused_gets_the_descriptors_again() {
        let (t, listener) = fake();
        let path = t.path().join(REGISTRATION);
        let server = std::thread::spawn(move || {
            // The first lsused: greets, takes the descriptors, stops.
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"A").unwrap();
            let Received::Byte { byte: b'W', fds } = recv(&s) else {
                panic!("expected W");
            };
            assert_eq!(fds.len(), 2);
            s.write_all(b"A").unwrap();
            drop(s);
            drop(listener);
            std::fs::remove_file(&path).unwrap();
            // A moment later a new one listens on the same path.
            std::thread::sleep(Duration::from_millis(150));
            let listener = UnixListener::bind(&path).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"A").unwrap();
            let Received::Byte { byte: b'W', fds } = recv(&s) else {
                panic!("expected W again");
            };
            s.write_all(b"A").unwrap();
            s.write_all(b"S").unwrap();
            let Received::Byte { byte: b'R', .. } = recv(&s) else {
                panic!("expected R");
            };
            fds.len()
        });
        let mut ev = WakeEvents::connect_in(t.path()).unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        ev.register(&[&r, &w]).unwrap();
        let fd = ev.as_fd().as_raw_fd();
        drop((r, w)); // the duplicates kept by WakeEvents are what is sent again
        assert_eq!(
            ev.wait_timeout(Some(Duration::from_secs(5))).unwrap(),
            Some(WakeEvent::SuspendImminent)
        );
        assert_eq!(ev.reconnects(), 1);
        assert_eq!(ev.as_fd().as_raw_fd(), fd, "the descriptor number is kept");
        ev.ready().unwrap();
        assert_eq!(server.join().unwrap(), 2);
    }

    #[test]
    fn reconnect_gives_up_after_the_timeout() {
        let (t, listener) = fake();
        let (go, stop) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"A").unwrap();
            stop.recv().unwrap();
            // The listener goes with the thread; its socket file stays and
            // refuses connections, like a crashed lsused's.
        });
        let mut ev = WakeEvents::connect_in(t.path()).unwrap();
        ev.set_reconnect_timeout(Duration::from_millis(300));
        go.send(()).unwrap();
        server.join().unwrap();
        let start = Instant::now();
        let err = ev.wait_timeout(Some(Duration::from_secs(5))).unwrap_err();
        assert!(err.to_string().contains("did not come back"), "{err}");
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(start.elapsed() < Duration::from_secs(4));
        assert_eq!(ev.reconnects(), 0);
    }
}
