//! Ctrl-C (SIGINT), SIGTERM and SIGHUP withdraw the request.
//!
//! The handler does what `--timeout` does, with async-signal-safe calls
//! only: it removes `RUN/request` (through a descriptor of the run
//! directory opened beforehand, `unlinkat(2)`), says so on standard error
//! (`write(2)`) and exits 128 + the signal's number (`_exit(2)`). lsusd then
//! finds the request gone before the state write (doc/protocol.md §2 step
//! 7) and records the attempt as withdrawn. Before this, a signal killed
//! request-suspend and left `request` behind: the machine suspended anyway.

use std::os::fd::IntoRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// A descriptor of the run directory for the handler; -1 when it could
/// not be opened (then no request was made either).
static RUN_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let (msg, code): (&[u8], i32) = match sig {
        libc::SIGINT => (
            b"request-suspend: interrupted (SIGINT): the request was withdrawn\n",
            130,
        ),
        libc::SIGTERM => (
            b"request-suspend: terminated (SIGTERM): the request was withdrawn\n",
            143,
        ),
        _ => (
            b"request-suspend: hung up (SIGHUP): the request was withdrawn\n",
            129,
        ),
    };
    let fd = RUN_FD.load(Ordering::SeqCst);
    // SAFETY: unlinkat(2), write(2) and _exit(2) are async-signal-safe;
    // the name is a static C string, the buffer a static byte string, and
    // the descriptor is never closed once stored.
    unsafe {
        if fd >= 0 {
            libc::unlinkat(fd, c"request".as_ptr(), 0);
        }
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(code);
    }
}

/// Opens the run directory for the handler and installs it for SIGINT,
/// SIGTERM and SIGHUP. Call before the request is made.
pub fn withdraw_on_signals(run_dir: &Path) -> nix::Result<()> {
    if let Ok(dir) = std::fs::File::open(run_dir) {
        RUN_FD.store(dir.into_raw_fd(), Ordering::SeqCst);
    }
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only makes async-signal-safe calls.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}
