//! Wake reasons and statistics through the real binaries on the fake
//! sysfs tree (doc/protocol.md §6): a wakeup source's count moves while
//! lsusd is inside its state write, and the record names it.

mod harness;

use std::fs;
use std::process::Command;

use harness::{Env, DEADLINE};

/// The history lines lsusd wrote so far.
fn history(env: &Env) -> Vec<lsus_proto::outcome::Record> {
    fs::read_to_string(env.path("log/history"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[test]
fn a_source_that_moves_during_the_state_write_is_the_wake_reason() {
    let mut env = Env::new();
    env.state_fifo();
    env.start_lsusd(&[]);
    // Noise before the attempt: not a wake reason.
    env.wakeup_source_event(1, false);
    let req = env.request_spawn();
    env.wait_in_fifo_open(0);
    // The RTC wakes the machine "during" the suspend.
    env.wakeup_source_event(0, true);
    env.set_suspend_stat("success", "1");
    assert_eq!(env.resume_from_fifo(), "mem\n");
    let out = req.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}\n{}", env.dump());
    let r = env.outcome().expect("an outcome record");
    assert_eq!(
        r.details.woke,
        Some(vec!["rtc0".to_string()]),
        "{}",
        env.dump()
    );
    assert_eq!(r.details.kernel_success, Some(1));
    let h = history(&env);
    assert_eq!(h.last().map(|r| &r.details.woke), Some(&r.details.woke));
    env.wait_log("lsusd", "woken by rtc0", DEADLINE);

    // `lsusctl stats` names it and agrees with the kernel's count.
    let out = lsusctl(&env, &["stats", "--json"]);
    assert!(
        out.contains("\"wake_reasons\":[{\"name\":\"rtc0\",\"count\":1}]"),
        "{out}"
    );
    assert!(out.contains("\"suspends\":1,"), "{out}");
    assert!(
        out.contains("\"kernel_suspends\":1,\"lsusd_suspends\":1,\"agree\":true"),
        "{out}"
    );
    let text = lsusctl(&env, &["stats", "--since", "1h"]);
    assert!(text.contains("wake reasons: rtc0 1"), "{text}");
    assert!(text.contains("the kernel agrees: 1 suspends"), "{text}");
    // The timeline, plain (not a terminal), marks the wake with its reason.
    let pic = lsusctl(&env, &["history", "--timeline", "--since", "1h"]);
    assert!(pic.contains("wakes:  a=rtc0 (1)"), "{pic}");
    assert!(!pic.contains('\x1b'), "{pic}");
    assert!(pic.lines().all(|l| l.chars().count() <= 80), "{pic}");
}

/// Runs `lsusctl ARGS` on the test's run directory and fake sysfs; returns
/// its standard output, after checking it succeeded.
fn lsusctl(env: &Env, args: &[&str]) -> String {
    let mut cmd = Command::new(harness::bin("lsusctl"));
    cmd.arg("--run-dir").arg(&env.run).args(args);
    if args[0] == "stats" {
        cmd.arg("--sysfs").arg(&env.sys);
    }
    let out = cmd.env_remove("NO_COLOR").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "lsusctl {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
