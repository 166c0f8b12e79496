//! Shutdown signals.
//!
//! SIGTERM, SIGINT and SIGHUP set a flag. The handler is installed without
//! `SA_RESTART`, so a blocking call (a `flock` wait, `poll`, a read) returns
//! `EINTR` and the daemon gets to look at the flag. SIGPIPE is ignored: a
//! client that went away is an error on its write, not the daemon's death.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

static SHUTDOWN: AtomicBool = AtomicBool::new(false);
static LAST: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_shutdown(sig: libc::c_int) {
    // Only async-signal-safe work here: two atomic stores.
    LAST.store(sig, Ordering::SeqCst);
    SHUTDOWN.store(true, Ordering::SeqCst);
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
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        install(sig, SigHandler::Handler(on_shutdown))?;
    }
    install(Signal::SIGPIPE, SigHandler::SigIgn)
}

/// Installs a do-nothing SIGALRM handler, so `alarm(2)` interrupts a
/// blocking call with `EINTR` instead of killing the process.
pub fn install_alarm_interrupts() -> nix::Result<()> {
    install(Signal::SIGALRM, SigHandler::Handler(on_wake))
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

/// Asks for shutdown as a signal would (for tests and fatal paths).
pub fn request_shutdown() {
    SHUTDOWN.store(true, Ordering::SeqCst);
}
