//! The harness's own plumbing: `selftest` must prove within seconds that
//! a watcher that never becomes ready ends in a clear error, not a hang;
//! a broken set-up must end in one clear line and a non-zero exit.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn bench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lsus-bench"))
}

/// The daemons built beside the bench binary (target/<profile>).
fn bin_dir() -> PathBuf {
    let dir = bench().parent().expect("target/<profile>").to_path_buf();
    assert!(
        dir.join("lsusd").exists(),
        "{} is missing: run `cargo build --workspace --bins` before the tests",
        dir.join("lsusd").display()
    );
    dir
}

#[test]
fn selftest_catches_a_watcher_that_never_becomes_ready() {
    let start = Instant::now();
    let out = Command::new(bench())
        .arg("selftest")
        .arg("--bin-dir")
        .arg(bin_dir())
        .output()
        .expect("run lsus-bench");
    let err = String::from_utf8_lossy(&out.stderr);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "selftest failed:\n{err}\n{table}");
    assert!(err.contains("never registers is caught"), "{err}");
    assert!(err.contains("never becomes ready is caught"), "{err}");
    assert!(table.contains("| harness | selftest |"), "{table}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "selftest took {:?}",
        start.elapsed()
    );
}

#[test]
fn missing_daemons_end_in_one_clear_line_and_exit_1() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(bench())
        .args(["lsusd", "--quick", "--bin-dir"])
        .arg(empty.path())
        .output()
        .expect("run lsus-bench");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("lsusd is missing"), "{err}");
}

#[test]
fn a_real_sysfs_is_refused() {
    if !std::path::Path::new("/sys/power").exists() {
        return;
    }
    let out = Command::new(bench())
        .args(["lsusd", "--quick", "--sysfs", "/sys", "--bin-dir"])
        .arg(bin_dir())
        .output()
        .expect("run lsus-bench");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("real sysfs"), "{err}");
}
