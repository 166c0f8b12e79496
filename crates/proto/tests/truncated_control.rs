//! A control message the kernel had to cut (`MSG_CTRUNC`, issue #15 point
//! 1): with the descriptor table nearly full, a `W` with three descriptors
//! arrives with only one of them installed. The receiver must report the
//! loss, close what did arrive and leak nothing.
//!
//! Its own test binary: the descriptor limit is per process.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use lsus_proto::registration::{self, RecvBuffer, RegistrationError};
use nix::sys::resource::{getrlimit, setrlimit, Resource};

fn open_fds() -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

#[test]
fn a_cut_control_message_is_reported_and_nothing_leaks() {
    let (a, b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    let (r, _w) = nix::unistd::pipe().unwrap();
    let three: Vec<OwnedFd> = (0..3).map(|_| r.try_clone().unwrap()).collect();
    registration::send_watch(a.as_fd(), &three).unwrap();
    drop(three);
    let mut rx = RecvBuffer::new();

    // The limit that leaves exactly one free descriptor number: one past
    // the lowest free one, which dup(2) returns (descriptors already open
    // above a limit stay open).
    let open = open_fds();
    let lowest_free = nix::unistd::dup(0).unwrap();
    nix::unistd::close(lowest_free).unwrap();
    let limit = lowest_free as u64 + 1;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, limit, hard).unwrap();
    let got = rx.recv(b.as_fd());
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();

    match got {
        Err(RegistrationError::Truncated { closed }) => assert_eq!(closed, 1),
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert_eq!(open_fds(), open, "the descriptor that arrived was closed");
    assert!(r.as_raw_fd() >= 0);
    // The stream goes on: the next byte arrives whole.
    registration::send_byte(a.as_fd(), b'R').unwrap();
    assert!(matches!(
        rx.recv(b.as_fd()),
        Ok(registration::Received::Byte { byte: b'R', ref fds }) if fds.is_empty()
    ));
}
