//! Shutdown signals.
//!
//! SIGTERM, SIGINT and SIGHUP set a flag and make a descriptor readable.
//! The handler is installed without `SA_RESTART`, so a blocking call (a
//! `flock` wait, a read) returns `EINTR` and the daemon gets to look at the
//! flag; a `poll` also watches [`shutdown_fd`], so a signal that arrives
//! just before the `poll` starts is not missed (the self-pipe trick).
//! SIGPIPE is ignored: a client that went away is an error on its write,
//! not the daemon's death.

use std::os::fd::{AsFd, BorrowedFd, IntoRawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals that end a daemon.
const SHUTDOWN_SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

static SHUTDOWN: AtomicBool = AtomicBool::new(false);
static LAST: AtomicI32 = AtomicI32::new(0);
/// The self-pipe: read end polled by the daemon, write end used by the
/// handler; -1 until installed. Both live as long as the process.
static PIPE_READ: AtomicI32 = AtomicI32::new(-1);
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_shutdown(sig: libc::c_int) {
    // Only async-signal-safe work here: atomic stores and write(2).
    LAST.store(sig, Ordering::SeqCst);
    SHUTDOWN.store(true, Ordering::SeqCst);
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the buffer is a static
        // byte; the descriptor is never closed. A full pipe (EAGAIN) is
        // fine: it is readable already.
        unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
    }
}

extern "C" fn on_wake(_: libc::c_int) {}

fn install(sig: Signal, handler: SigHandler) -> nix::Result<()> {
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    // SAFETY: the handlers only store to atomics (async-signal-safe), and
    // SIG_IGN needs no handler at all.
    unsafe { sigaction(sig, &action) }.map(drop)
}

/// Installs the shutdown handlers and ignores SIGPIPE.
pub fn install_shutdown_handlers() -> nix::Result<()> {
    if PIPE_READ.load(Ordering::SeqCst) < 0 {
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        PIPE_WRITE.store(w.into_raw_fd(), Ordering::SeqCst);
        PIPE_READ.store(r.into_raw_fd(), Ordering::SeqCst);
    }
    for sig in SHUTDOWN_SIGNALS {
        install(sig, SigHandler::Handler(on_shutdown))?;
    }
    install(Signal::SIGPIPE, SigHandler::SigIgn)
}

/// Installs a do-nothing SIGALRM handler, so `alarm(2)` interrupts a
/// blocking call with `EINTR` instead of killing the process.
pub fn install_alarm_interrupts() -> nix::Result<()> {
    install(Signal::SIGALRM, SigHandler::Handler(on_wake))
}

/// Returns a descriptor that becomes readable (and stays so) once a
/// shutdown signal has arrived, for `poll`; `None` before
/// [`install_shutdown_handlers`].
pub fn shutdown_fd() -> Option<BorrowedFd<'static>> {
    let fd = PIPE_READ.load(Ordering::SeqCst);
    // SAFETY: the read end is never closed once stored, so it outlives
    // any borrow.
    (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Returns true once a shutdown signal has arrived.
pub fn shutdown_requested() -> bool {
    SHUTDOWN.load(Ordering::SeqCst)
}

/// Returns the name of the last shutdown signal received, if any.
pub fn last_signal() -> Option<&'static str> {
    Signal::try_from(LAST.load(Ordering::SeqCst))
        .ok()
        .map(Signal::as_str)
}

/// The shutdown signals as a descriptor, for the event-loop daemons.
///
/// SIGTERM, SIGINT and SIGHUP are blocked and read from a `signalfd`, so
/// `poll` sees them like any other event and a signal arriving just before
/// `poll` cannot be missed.
#[derive(Debug)]
pub struct ShutdownSignals {
    fd: SignalFd,
}

impl ShutdownSignals {
    /// Installs the handlers (SIGPIPE ignored), blocks the shutdown signals
    /// and opens the descriptor that reports them. Call before anything
    /// else can block on a system call. A signal that arrived before the
    /// mask was in place is raised again, so it is read from the descriptor.
    pub fn install() -> nix::Result<ShutdownSignals> {
        install_shutdown_handlers()?;
        let mut set = SigSet::empty();
        for sig in SHUTDOWN_SIGNALS {
            set.add(sig);
        }
        set.thread_block()?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        if shutdown_requested() {
            nix::sys::signal::raise(Signal::SIGTERM)?;
        }
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
