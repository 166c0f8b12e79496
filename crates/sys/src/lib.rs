//! The kernel at the edge.
//!
//! Each kernel interface the daemons use is one small type with a
//! configurable sysfs root, so tests run against a fake tree and the
//! suspend logic runs in-process against a simulated kernel. Beside them:
//! advisory locks on run-directory files ([`lock`]), who holds them
//! according to `/proc/locks` ([`proclocks`]), what `/proc/PID` tells of a
//! process ([`process`]) and inotify watches of a directory with a deadline
//! ([`dirwatch`]). This crate knows nothing of the
//! protocol (`lsus-proto` depends on it, never the other way round).

pub mod dirwatch;
pub mod lock;
pub mod power;
pub mod process;
pub mod proclocks;
pub mod rtc;
pub mod wakeup;

/// The sysfs root of a real machine, the default of every `--sysfs`.
pub const DEFAULT_SYSFS: &str = "/sys";
