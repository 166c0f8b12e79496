//! Connecting again when lsused or wakealarmd restarts, for
//! [`crate::WakeEvents`] and [`crate::WakeAlarm`] alike: wait for the new
//! daemon's socket, put the new connection on the old descriptor number
//! (a poll loop holding it needs no change), and let the client say again
//! what it had said (its registrations, its time).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::wake_event::connect_until;
use crate::{Error, Result};

/// Longest pause between two connection attempts while the daemon is
/// away (the socket's creation ends a pause early; a socket that exists
/// but does not accept yet, or a connection closed at once, is tried
/// again after this).
pub(crate) const RECONNECT_RETRY: Duration = Duration::from_millis(100);

/// Whether `e` says the daemon closed the connection (an EOF, a reset, a
/// broken pipe): the case for connecting again.
pub(crate) fn closed_by_peer(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if matches!(
        source.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    ))
}

/// Connects to `daemon` at `path` again, until `timeout` has passed: the
/// new connection replaces descriptor `fd`, then `resume` says again what
/// the client had said. A connection closed (or reset) at once is tried
/// again.
pub(crate) fn redial<C>(
    client: &mut C,
    daemon: &str,
    path: &Path,
    fd: RawFd,
    timeout: Duration,
    mut resume: impl FnMut(&mut C) -> Result<()>,
) -> Result<()> {
    // A time-out too long for the clock: as good as none (a century).
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400));
    let gone = |e: &dyn std::fmt::Display| {
        Error::io(
            format!("{daemon} closed the connection and did not come back within {timeout:?}"),
            io::Error::other(e.to_string()),
        )
    };
    loop {
        let fresh = connect_until(path, deadline, daemon).map_err(|e| gone(&e))?;
        nix::unistd::dup3(fresh.as_raw_fd(), fd, nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::io(format!("cannot replace the {daemon} socket"), e.into()))?;
        drop(fresh);
        match resume(client) {
            Ok(()) => return Ok(()),
            // Closed again at once: the old daemon's listener was still
            // there when we connected (or the new one is short of
            // descriptors). Try again a moment later. A connection queued
            // on the listener of a daemon killed with SIGKILL is reset
            // instead (or a write to it fails): the same case.
            Err(e) if closed_by_peer(&e) && Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(RECONNECT_RETRY));
            }
            Err(e) => return Err(gone(&e)),
        }
    }
}
