//! Wake reasons and statistics through the real binaries on the fake
//! sysfs tree (doc/protocol.md §6): a wakeup source's count moves while
//! lsusd is inside its state write, and the record names it.

mod harness;

use std::fs;

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
}
