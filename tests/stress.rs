//! Peer stress (issue #15, point 4), through the real lsusd: 10 threads ×
//! 10,000 block/unblock through libsus, 4 shell `flock -s` loops, requests
//! and an immediate-mode holder, all at once, with `power/state` a FIFO so
//! that every state write stops until the test has looked at `/proc/locks`.
//!
//! Shown: lsusd holds its exclusive lock on `disabled` during every state
//! write (so no block can be held then), nothing deadlocks (everything ends
//! within the deadline once the churn stops), every request ends 0 or 1.
//! `LSUS_STRESS_ITERATIONS` changes the 10,000.

mod harness;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use harness::{sh_spawn, Env};
use libsus::{Blocker, Immediate};
use lsus_sys::proclocks::{self, Mode};

const THREADS: usize = 10;
const SHELL_LOOPS: usize = 4;

fn iterations() -> u64 {
    std::env::var("LSUS_STRESS_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// The state of lsusd's main thread is "blocked opening the FIFO".
fn in_state_write(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan"))
        .is_ok_and(|w| w.trim() == "wait_for_partner")
}

#[test]
fn blockers_requests_and_immediate_mode_never_meet_a_state_write() {
    let mut env = Env::new();
    env.state_fifo();
    env.start_lsusd(&[]);
    let lsusd = env.daemons[0].child.id();
    let disabled = std::fs::metadata(env.path("disabled")).unwrap();
    let (dev, ino) = (disabled.dev(), disabled.ino());
    let n = iterations();
    let churning = Arc::new(AtomicBool::new(true));
    let started = Instant::now();

    // 10 threads × n block/unblock, each through its own Blocker, holding
    // for a moment and letting go for a moment (so that lsusd finds gaps).
    let blockers: Vec<_> = (0..THREADS)
        .map(|t| {
            let run = env.run.clone();
            thread::spawn(move || {
                let b = Blocker::open_in(&run).unwrap();
                for i in 0..n {
                    let guard = b.block().unwrap();
                    if (i + t as u64).is_multiple_of(7) {
                        thread::yield_now();
                    }
                    drop(guard);
                    if (i + t as u64).is_multiple_of(5) {
                        thread::sleep(Duration::from_micros(50));
                    }
                }
            })
        })
        .collect();

    // 4 shell loops taking the lock as the original's scripts do.
    let mut shells: Vec<_> = (0..SHELL_LOOPS)
        .map(|_| {
            sh_spawn(
                "while :; do flock -s \"$RUN/disabled\" true; done",
                &env.run,
            )
        })
        .collect();

    // Immediate mode held throughout, and a stream of requests.
    let immediate = Immediate::enter_in(&env.run).unwrap();
    let answers = Arc::new(AtomicU64::new(0));
    let requester = {
        let run = env.run.clone();
        let churning = churning.clone();
        let answers = answers.clone();
        thread::spawn(move || {
            let mut codes = Vec::new();
            while churning.load(Ordering::Relaxed) {
                let out = Command::new(harness::bin("request-suspend"))
                    .arg("--run-dir")
                    .arg(&run)
                    .args(["--timeout", "60"])
                    .output()
                    .unwrap();
                codes.push((
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                ));
                answers.fetch_add(1, Ordering::Relaxed);
            }
            codes
        })
    };

    // Serve the FIFO: every state write is looked at before it goes on.
    let mut writes = 0u64;
    let mut violations = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut blockers = Some(blockers);
    loop {
        if in_state_write(lsusd) {
            let locks = std::fs::read_to_string("/proc/locks").unwrap();
            let holders = proclocks::parse(&locks, dev, ino);
            if holders
                != [proclocks::Holder {
                    pid: lsusd,
                    mode: Mode::Exclusive,
                }]
            {
                violations.push(format!("state write #{writes} with holders {holders:?}"));
            }
            let written = env.resume_from_fifo();
            assert_eq!(written, "mem\n");
            writes += 1;
        }
        if blockers
            .as_ref()
            .is_some_and(|b| b.iter().all(|t| t.is_finished()))
        {
            for t in blockers.take().unwrap() {
                t.join().expect("a blocker thread panicked");
            }
            churning.store(false, Ordering::Relaxed);
        }
        if blockers.is_none() && requester.is_finished() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no end after 600 s\n{}",
            env.dump()
        );
        thread::sleep(Duration::from_millis(1));
    }
    let churn = started.elapsed();
    let codes = requester.join().unwrap();
    for s in &mut shells {
        let _ = s.kill();
        let _ = s.wait();
    }
    // With the churn over, one more immediate-mode suspend goes through.
    let before = writes;
    while writes == before {
        if in_state_write(lsusd) {
            let locks = std::fs::read_to_string("/proc/locks").unwrap();
            assert_eq!(
                proclocks::parse(&locks, dev, ino),
                [proclocks::Holder {
                    pid: lsusd,
                    mode: Mode::Exclusive
                }]
            );
            env.resume_from_fifo();
            writes += 1;
        }
        assert!(
            Instant::now() < deadline,
            "no suspend after the churn\n{}",
            env.dump()
        );
        thread::sleep(Duration::from_millis(1));
    }
    drop(immediate);

    let bad: Vec<_> = codes
        .iter()
        .filter(|(c, _)| !matches!(c, Some(0 | 1)))
        .collect();
    assert!(
        bad.is_empty(),
        "requests that ended neither 0 nor 1: {bad:?}"
    );
    assert!(violations.is_empty(), "{violations:?}\n{}", env.dump());
    let zero = codes.iter().filter(|(c, _)| *c == Some(0)).count();
    println!(
        "stress: {THREADS} threads x {n} block/unblock + {SHELL_LOOPS} flock loops + immediate mode \
         + {} requests ({zero} suspended, {} blocked) in {churn:.1?}: {writes} state writes, \
         each under lsusd's exclusive lock",
        codes.len(),
        codes.len() - zero
    );
    assert!(writes > 0);
}

/// A holder killed with SIGABRT frees suspend: lsusd, waiting for the
/// blockers after a refused request, sees the lock go and drops the
/// request, and the next request suspends. The delay is printed (Android's
/// SystemSuspend targets 200 ms); the test asserts the order of things, not
/// a time.
#[test]
fn a_holder_killed_with_sigabrt_frees_suspend() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // flock -o: the lock is flock(1)'s alone, not its child's.
    let mut holder = Command::new("flock")
        .args(["-s", "-o"])
        .arg(env.path("disabled"))
        .args(["sleep", "1000"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = holder.id();
    let disabled = std::fs::metadata(env.path("disabled")).unwrap();
    env.wait_for("the holder's lock", harness::DEADLINE, || {
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        proclocks::parse(&locks, disabled.dev(), disabled.ino()).contains(&proclocks::Holder {
            pid,
            mode: Mode::Shared,
        })
    });
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", env.dump());
    // lsusd now waits for the blockers, the refused request still there.
    assert!(env.path("request").exists(), "{}", env.dump());
    let t0 = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGABRT).unwrap();
    env.wait_for(
        "the request dropped as the blocker went",
        harness::DEADLINE,
        || !env.path("request").exists(),
    );
    let freed = t0.elapsed();
    let _ = holder.wait();
    let _ = kill(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", env.dump());
    assert_eq!(env.state(), "mem\n");
    println!("stress: a holder killed with SIGABRT freed suspend after {freed:.1?}");
}
