//! systemd readiness notification (`sd_notify`), without libsystemd.
//!
//! The protocol is one datagram to the socket named by `NOTIFY_SOCKET`
//! (a path, or an abstract name written with a leading `@`).
//!
//! Kept by hand rather than through the `sd-notify` crate (0.5.0, read for
//! issue #18): that crate connects to `NOTIFY_SOCKET` as a path only, so an
//! abstract name, which sd_notify(3) allows, would be looked up as a file
//! called `@…`; it answers `Ok(())` whether or not a manager is listening,
//! where the daemons say "notified" only when one is ([`notify`] returns
//! `Ok(false)` without `NOTIFY_SOCKET`); and it needs Rust 1.82, above the
//! workspace's 1.80. The daemons send `READY=1` and `STOPPING=1` only (no
//! `STATUS=`, no `WATCHDOG=`: the units set no `WatchdogSec=`), which is the
//! one function below. `NOTIFY_SOCKET` is left set, as libsystemd's
//! `sd_notify(0, …)` leaves it: each daemon sends `STOPPING=1` through it
//! at the end, and systemd takes messages from the main process only (the
//! units keep the default `NotifyAccess=main`).

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. `"READY=1"`) to systemd if `NOTIFY_SOCKET` is set.
///
/// Returns `Ok(false)` when not started by systemd with `Type=notify`.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
    let addr = match bytes.split_first() {
        Some((b'@', name)) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
        Some((b'/', _)) => SocketAddr::from_pathname(&path)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither a path nor an abstract name",
            ))
        }
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

/// Tells systemd that start-up is complete, logging (not failing) on error.
pub fn ready() {
    match notify("READY=1") {
        Ok(true) => tracing::debug!("notified systemd: READY=1"),
        Ok(false) => {}
        Err(e) => tracing::warn!("cannot notify systemd of readiness: {e}"),
    }
}

/// Says "ready" both ways a starter may listen: to systemd when it started
/// us (`READY=1`), and, as the original daemons did, by closing standard
/// input (it is replaced by `/dev/null`), so a parent waiting for EOF on a
/// pipe learns that start-up is complete. Failures are logged, not fatal.
pub fn announce_ready() {
    ready();
    match std::fs::File::open("/dev/null") {
        Ok(null) => {
            if let Err(e) = nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) {
                tracing::warn!("cannot close standard input: {e}");
            }
        }
        Err(e) => tracing::warn!("cannot open /dev/null: {e}"),
    }
}

/// Tells systemd that the daemon is stopping.
pub fn stopping() {
    let _ = notify("STOPPING=1");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variable is process-wide: this is the only test that sets it,
    /// and it tries each form of the address in turn.
    #[test]
    fn sends_to_a_path_or_an_abstract_socket_and_nothing_without_one() {
        use std::os::linux::net::SocketAddrExt;
        let mut buf = [0u8; 64];

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(notify("READY=1").unwrap());
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("lsus-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        std::env::set_var("NOTIFY_SOCKET", format!("@{name}"));
        assert!(notify("STOPPING=1").unwrap());
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");

        std::env::set_var("NOTIFY_SOCKET", "relative/name");
        assert_eq!(
            notify("READY=1").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );

        std::env::remove_var("NOTIFY_SOCKET");
        assert!(!notify("READY=1").unwrap());
    }
}
