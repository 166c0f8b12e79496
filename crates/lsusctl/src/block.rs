//! `lsusctl block -- CMD ARGS…`: run a command with suspend blocked.
//!
//! lsusctl takes the shared lock on `RUN/disabled` itself, on a descriptor
//! the command does not inherit (close-on-exec), and keeps it until the
//! command has ended. `lsusctl status` then names this lsusctl, whose
//! command line carries `--why` and the command.
//!
//! Like `system(3)`, lsusctl ignores SIGINT and SIGQUIT while the command
//! runs (a terminal sends them to the command too, and the command decides
//! what they mean); SIGTERM and SIGHUP are passed on to the command.

use std::ffi::OsString;
use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use lsusctl_cli::{EXIT_CANNOT_RUN, EXIT_FAILURE, EXIT_NOT_FOUND};

use crate::error::Error;
use crate::rundir::open_checked;

/// The last SIGTERM or SIGHUP received, to pass on (0: none).
static PASS_ON: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    PASS_ON.store(sig, Ordering::SeqCst);
}

fn set(sig: Signal, handler: SigHandler) -> nix::Result<SigAction> {
    // No SA_RESTART: waitpid returns EINTR and the signal is passed on.
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler only stores to an atomic (async-signal-safe);
    // SIG_IGN needs no handler.
    unsafe { signal::sigaction(sig, &action) }
}

/// Runs `command` with suspend blocked on the run directory `dir`;
/// returns the exit code for lsusctl (the command's own where it has one).
pub fn run(
    dir: &std::path::Path,
    command: &[OsString],
    for_: Option<std::time::Duration>,
) -> Result<u8, Error> {
    let (run, _) = open_checked(dir)?;
    drop(run);
    let blocker = libsus::Blocker::open_in(dir)?;
    if command.is_empty() {
        let Some(span) = for_ else {
            return Ok(EXIT_FAILURE);
        };
        return block_for(&blocker, span);
    }
    let Some((program, args)) = command.split_first() else {
        return Ok(EXIT_FAILURE);
    };
    // Waits while a suspend is being entered: CMD starts on an awake
    // machine. A timed block (--for) lets go by itself at its deadline.
    let (guard, timed) = match for_ {
        Some(span) => (None, Some(blocker.block_for(span)?)),
        None => (Some(blocker.block()?), None),
    };

    let sigs = [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ];
    let mut old = Vec::with_capacity(sigs.len());
    for sig in sigs {
        let handler = match sig {
            Signal::SIGINT | Signal::SIGQUIT => SigHandler::SigIgn,
            _ => SigHandler::Handler(on_signal),
        };
        let prev = set(sig, handler).map_err(|e| Error::Io {
            what: "cannot set up signal handling".into(),
            source: e.into(),
        })?;
        old.push((sig, prev));
    }
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: between fork and exec the closure only calls sigaction, which
    // is async-signal-safe, and allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            // The command gets the dispositions lsusctl had at its start.
            for (sig, prev) in &old {
                signal::sigaction(*sig, prev).map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let name = program.to_string_lossy();
            eprintln!("lsusctl: cannot run {name}: {e}");
            return Ok(match e.kind() {
                io::ErrorKind::NotFound => EXIT_NOT_FOUND,
                _ => EXIT_CANNOT_RUN,
            });
        }
    };
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let code = loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => break u8::try_from(code).unwrap_or(EXIT_FAILURE),
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                break u8::try_from(128 + sig as i32).unwrap_or(EXIT_FAILURE)
            }
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => {
                let sig = PASS_ON.swap(0, Ordering::SeqCst);
                if let Ok(sig) = Signal::try_from(sig) {
                    let _ = signal::kill(pid, sig);
                }
            }
            Err(e) => {
                return Err(Error::Io {
                    what: "cannot wait for the command".into(),
                    source: e.into(),
                })
            }
        }
    };
    // Only now, with the command gone, may the machine sleep.
    drop(guard);
    drop(timed);
    Ok(code)
}

/// `--for SPAN` without a command: blocks until the deadline, or until
/// SIGINT, SIGTERM or SIGHUP (exit 0 either way).
fn block_for(blocker: &libsus::Blocker, span: std::time::Duration) -> Result<u8, Error> {
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set(sig, SigHandler::Handler(on_signal)).map_err(|e| Error::Io {
            what: "cannot set up signal handling".into(),
            source: e.into(),
        })?;
    }
    let timed = blocker.block_for(span)?;
    while !timed.is_over() && PASS_ON.load(Ordering::SeqCst) == 0 {
        // The end of the timer thread, or a signal, is seen within 50 ms.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(timed);
    Ok(0)
}
