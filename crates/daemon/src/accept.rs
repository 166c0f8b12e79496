//! Accepting connections without ever spinning (lsused and wakealarmd).
//!
//! When the descriptor table is full (`EMFILE`, or `ENFILE` system-wide),
//! `accept` fails but the pending connection stays, so the listener stays
//! readable: a naive loop would spin. Like many servers we keep one spare
//! descriptor: on `EMFILE` it is closed, the connection is accepted and
//! closed at once (the client sees EOF instead of hanging), and the spare
//! is opened again. If that does not help either, the listener is left out
//! of the poll set for a moment ([`PAUSE`], or until a client closes:
//! [`Acceptor::descriptor_freed`]).
//!
//! Spares also make room for the files a daemon must open while its table
//! is full: the watcher's `watching-next` when lsusd announces a suspend,
//! and for wakealarmd the run directory and `disabled` too, when it must
//! keep the machine awake ([`lending_spare`], [`Acceptor::with_spares`]).

use std::fs::File;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

/// How long the listener rests when even the spare descriptor cannot help.
pub const PAUSE: Duration = Duration::from_secs(1);

/// What one accept attempt gave.
#[derive(Debug)]
enum Accept {
    /// A new client.
    Client(UnixStream),
    /// Nothing pending.
    Idle,
    /// A connection was refused for lack of descriptors: accepted and
    /// closed. Try again.
    Refused,
    /// Failed and the listener now rests until `pause` passes; the error
    /// says why.
    Paused(io::Error),
    /// A transient failure that concerned one connection only; try again.
    Retry,
}

/// The listening socket and its spare descriptors.
#[derive(Debug)]
pub struct Acceptor {
    listener: UnixListener,
    /// Open spares; at most `wanted`.
    spares: Vec<File>,
    wanted: usize,
    paused_until: Option<Instant>,
    /// Connections refused in the current shortage (0: none).
    refused: u64,
}

fn open_spare() -> Option<File> {
    File::open("/dev/null").ok()
}

fn is_fd_shortage(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

impl Acceptor {
    /// Wraps a non-blocking listener and opens one spare descriptor.
    pub fn new(listener: UnixListener) -> Acceptor {
        Acceptor::with_spares(listener, 1)
    }

    /// Wraps a non-blocking listener and opens `wanted` spare descriptors
    /// (at least one): as many as the daemon opens at the most while it
    /// handles lsusd's announcement ([`lending_spare`]).
    pub fn with_spares(listener: UnixListener, wanted: usize) -> Acceptor {
        let mut acceptor = Acceptor {
            listener,
            spares: Vec::new(),
            wanted: wanted.max(1),
            paused_until: None,
            refused: 0,
        };
        acceptor.restore_spare();
        acceptor
    }

    /// Returns the listener to poll, or `None` while it rests.
    pub fn pollable(&mut self, now: Instant) -> Option<&UnixListener> {
        if self.paused_until.is_some_and(|until| now < until) {
            return None;
        }
        self.paused_until = None;
        Some(&self.listener)
    }

    /// Returns how long the listener still rests, if it does.
    pub fn pause_left(&self, now: Instant) -> Option<Duration> {
        self.paused_until
            .map(|until| until.saturating_duration_since(now))
    }

    /// Accepts up to `max` connections (non-blocking) and returns them,
    /// fewer when no more are pending or the listener rests. The shortage
    /// is logged here: once when it begins to refuse connections, once
    /// when a connection is accepted again, and each rest.
    pub fn accept_some(&mut self, max: usize) -> Vec<UnixStream> {
        let mut clients = Vec::new();
        for _ in 0..max {
            match self.accept(Instant::now()) {
                Accept::Client(stream) => {
                    if self.refused > 0 {
                        tracing::warn!(
                            "descriptors available again after refusing {} connection(s)",
                            self.refused
                        );
                        self.refused = 0;
                    }
                    clients.push(stream);
                }
                Accept::Idle => break,
                Accept::Retry => {}
                Accept::Refused => {
                    if self.refused == 1 {
                        tracing::warn!(
                            "out of descriptors: refusing new connections (accepted and \
                             closed at once) until some are free"
                        );
                    }
                }
                Accept::Paused(e) => {
                    tracing::warn!("cannot accept connections ({e}); not listening for {PAUSE:?}");
                    break;
                }
            }
        }
        clients
    }

    /// A client closed: its descriptor is free, so the listener need not
    /// rest any longer, and the spares can be opened again if they could
    /// not.
    pub fn descriptor_freed(&mut self) {
        self.paused_until = None;
        self.restore_spare();
    }

    /// Accepts one connection (non-blocking).
    fn accept(&mut self, now: Instant) -> Accept {
        match self.listener.accept() {
            Ok((stream, _)) => Accept::Client(stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Accept::Idle,
            Err(e) if is_fd_shortage(&e) => self.refuse_one(now, e),
            // The peer gave up before we got to it, or a signal.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNABORTED) | Some(libc::EINTR) | Some(libc::EPROTO)
                ) =>
            {
                Accept::Retry
            }
            // ENOBUFS, ENOMEM…: the system is short; rest instead of spin.
            Err(e) => self.pause(now, e),
        }
    }

    fn refuse_one(&mut self, now: Instant, e: io::Error) -> Accept {
        let Some(spare) = self.spares.pop() else {
            return self.pause(now, e);
        };
        drop(spare);
        let outcome = match self.listener.accept() {
            Ok((stream, _)) => {
                drop(stream);
                self.refused += 1;
                Accept::Refused
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Accept::Idle,
            Err(e) => self.pause(now, e),
        };
        self.restore_spare();
        outcome
    }

    /// Closes the spare descriptors so that someone else can open files
    /// even when the table is full; [`Acceptor::restore_spare`] takes them
    /// back.
    fn lend_spare(&mut self) {
        self.spares.clear();
    }

    /// Opens spare descriptors again, up to the number wanted, as far as
    /// the table has room (the others at the next chance).
    fn restore_spare(&mut self) {
        while self.spares.len() < self.wanted {
            match open_spare() {
                Some(f) => self.spares.push(f),
                None => break,
            }
        }
    }

    fn pause(&mut self, now: Instant, e: io::Error) -> Accept {
        self.paused_until = Some(now + PAUSE);
        Accept::Paused(e)
    }
}

/// Runs `handle` on `server` with the spare descriptors of its acceptor
/// (`acceptor` reaches it) lent, and takes them back afterwards, whatever
/// `handle` returned. The daemons lend them while they handle lsusd's
/// announcement: the watcher opens `watching-next` when a suspend is
/// imminent (with a table full of clients' descriptors that open would
/// fail and end the daemon), and wakealarmd may open the run directory and
/// `disabled` to keep the machine awake.
pub fn lending_spare<S, T>(
    server: &mut S,
    acceptor: fn(&mut S) -> &mut Acceptor,
    handle: impl FnOnce(&mut S) -> T,
) -> T {
    acceptor(server).lend_spare();
    let result = handle(server);
    acceptor(server).restore_spare();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// An acceptor on a non-blocking listener, its path and the
    /// directory that holds it.
    fn listening() -> (tempfile::TempDir, PathBuf, Acceptor) {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        (t, path, Acceptor::new(listener))
    }

    #[test]
    fn accepts_then_idles() {
        let (_t, path, mut acc) = listening();
        let now = Instant::now();
        assert!(matches!(acc.accept(now), Accept::Idle));
        let _c = UnixStream::connect(&path).unwrap();
        assert!(matches!(acc.accept(now), Accept::Client(_)));
        assert!(matches!(acc.accept(now), Accept::Idle));
        assert!(acc.pollable(now).is_some());
        let lent = lending_spare(&mut acc, |a| a, |a| a.spares.is_empty());
        assert!(lent && !acc.spares.is_empty());
    }

    #[test]
    fn accept_some_takes_at_most_max_and_a_freed_descriptor_ends_a_pause() {
        let (_t, path, mut acc) = listening();
        let _c: Vec<UnixStream> = (0..3)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        assert_eq!(acc.accept_some(2).len(), 2);
        assert_eq!(acc.accept_some(2).len(), 1);
        assert!(acc.accept_some(2).is_empty());
        let now = Instant::now();
        acc.pause(now, io::Error::from_raw_os_error(libc::ENOBUFS));
        acc.lend_spare();
        assert!(acc.pollable(now).is_none());
        acc.descriptor_freed();
        assert!(acc.pollable(now).is_some() && !acc.spares.is_empty());
    }

    #[test]
    fn pause_hides_the_listener_for_a_moment() {
        let t = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(t.path().join("s")).unwrap();
        let mut acc = Acceptor::new(listener);
        let now = Instant::now();
        assert!(matches!(
            acc.pause(now, io::Error::from_raw_os_error(libc::ENOBUFS)),
            Accept::Paused(_)
        ));
        assert!(acc.pollable(now).is_none());
        assert_eq!(acc.pause_left(now), Some(PAUSE));
        assert!(acc.pollable(now + PAUSE).is_some());
        assert_eq!(acc.pause_left(now + PAUSE), None);
    }
}
