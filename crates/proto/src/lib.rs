//! The lsusd protocol, shared by the daemons, libsus and the tests.
//!
//! Everything a client of the original lsusd relies on is fixed here in one
//! place: the names of the files in the run directory ([`rundir`]), the
//! outcome record lsusd leaves after each attempt ([`outcome`]), the other
//! records, and the wire formats of the two sockets. How the files are
//! locked, who holds a lock according to `/proc/locks` and how a directory
//! is watched are the kernel's side: [`lsus_sys::lock`],
//! [`lsus_sys::proclocks`] and [`lsus_sys::dirwatch`].
//!
//! ```text
//! RUN/disabled        shared flock = "do not suspend"; a read aborts an attempt
//! RUN/immediate       exists + locked = suspend whenever possible
//! RUN/request         exists = try one suspend; removed when the attempt ends
//! RUN/watching        empty while awake; 1 byte = suspend imminent
//! RUN/watching-next   renamed over `watching` after resume (+2 bytes)
//! RUN/outcome         (port) one line: the outcome of the last attempt
//! RUN/log/history     (port) the last outcomes, one line each, oldest first
//! RUN/.staging/       (port) where replaced files are written before the rename
//! RUN/*.status        (port) counts published by lsused and wakealarmd,
//!                     logind's inhibitors by lsus-logind, idle time by lsus-idle
//! RUN/registration    lsused socket: bytes A W S R
//! RUN/wakealarm       wakealarmd socket: decimal lines, "Now"
//! ```
//!
//! The full contract is `doc/protocol.md` at the top of the repository.

pub mod args;
pub mod epoch;
pub mod idle;
pub mod logind;
#[cfg(feature = "dbus")]
pub mod logind_bus;
pub mod outcome;
pub mod presence;
pub mod registration;
pub mod rundir;
pub mod status;
pub mod until;
pub mod wakealarm;

/// Test support: asserts that no line of `bad` parses as a `T`.
#[cfg(test)]
pub(crate) fn assert_refused<T: std::str::FromStr>(bad: &[&str]) {
    for line in bad {
        assert!(line.parse::<T>().is_err(), "{line:?} was taken");
    }
}
