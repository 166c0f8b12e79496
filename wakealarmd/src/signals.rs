//! Shutdown signals as a descriptor.
//!
//! SIGTERM, SIGINT and SIGHUP are blocked and read from a `signalfd`, so
//! the poll loop sees them like any other event and a signal arriving just
//! before `poll` cannot be missed. SIGPIPE is ignored (by the shared
//! handlers): a client that went away is an error on its write.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals that end the daemon.
const SHUTDOWN: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// A readable descriptor for the shutdown signals.
#[derive(Debug)]
pub struct ShutdownSignals {
    fd: SignalFd,
}

impl ShutdownSignals {
    /// Blocks the shutdown signals and opens the descriptor that reports
    /// them. Call before anything else can block on a system call.
    pub fn install() -> nix::Result<ShutdownSignals> {
        lsus_daemon::signals::install_shutdown_handlers()?;
        let mut set = SigSet::empty();
        for sig in SHUTDOWN {
            set.add(sig);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(ShutdownSignals { fd })
    }

    /// Returns the name of a pending shutdown signal, if one arrived.
    pub fn read(&mut self) -> nix::Result<Option<&'static str>> {
        Ok(self
            .fd
            .read_signal()?
            .and_then(|info| i32::try_from(info.ssi_signo).ok())
            .and_then(|n| Signal::try_from(n).ok())
            .map(Signal::as_str))
    }
}

impl AsFd for ShutdownSignals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
