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
    let prom = env.tmp.path().join("lsusd.prom");
    env.start_lsusd(&["--metrics-file", prom.to_str().unwrap()]);
    let metrics = || fs::read_to_string(&prom).unwrap_or_default();
    assert!(
        metrics().contains("lsusd_attempts_total{outcome=\"suspended\"} 0\n"),
        "written at start-up: {}",
        metrics()
    );
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
        out.starts_with("{\"version\":1,\"since_seconds\":"),
        "{out}"
    );
    assert!(
        out.contains("\"kernel_suspends\":1,\"lsusd_suspends\":1,\"agree\":true"),
        "{out}"
    );
    let text = lsusctl(&env, &["stats", "--since", "1h"]);
    assert!(text.contains("wake reasons: rtc0 1"), "{text}");
    assert!(text.contains("the kernel agrees: 1 suspends"), "{text}");
    // The metrics name it, for node_exporter.
    let m = metrics();
    for want in [
        "lsusd_attempts_total{outcome=\"suspended\"} 1\n",
        "lsusd_wakeups_total{reason=\"rtc0\"} 1\n",
        "lsusd_wakeups_total{reason=\"other\"} 0\n",
    ] {
        assert!(m.contains(want), "{want:?} in\n{m}");
    }
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

#[test]
fn a_blocker_is_timed_in_the_history_stats_and_metrics() {
    let mut env = Env::new();
    let prom = env.tmp.path().join("lsusd.prom");
    env.start_lsusd(&["--metrics-file", prom.to_str().unwrap()]);
    let marker = env.tmp.path().join("locked");
    let mut blocker = harness::sh_spawn(
        &format!(
            "exec flock --shared \"$RUN/disabled\" -c 'touch {}; sleep 0.5'",
            marker.display()
        ),
        &env.run,
    );
    env.wait_for("the blocker holds disabled", DEADLINE, || marker.exists());
    let out = env.request(&[]);
    assert!(!out.status.success(), "blocked: {out:?}");
    blocker.wait().unwrap();
    env.wait_for("held= in the history", DEADLINE, || {
        history(&env).iter().any(|r| !r.details.held.is_empty())
    });
    let h = history(&env);
    let held = &h
        .iter()
        .find(|r| !r.details.held.is_empty())
        .unwrap()
        .details
        .held[0];
    assert!(held.seconds > 0.0 && held.seconds < 20.0, "{held:?}");
    assert!(
        ["flock", "sh", "sleep"].contains(&held.command.as_str()),
        "{held:?}"
    );
    env.wait_log("lsusd", "held suspend off for", DEADLINE);
    let text = lsusctl(&env, &["stats"]);
    assert!(
        text.contains(&format!("blockers by time held: {} ", held.command)),
        "{text}"
    );
    assert!(text.contains("blocked 1"), "{text}");
    let m = fs::read_to_string(&prom).unwrap();
    let want = format!(
        "lsusd_blocked_seconds_total{{command=\"{}\"}} ",
        held.command
    );
    assert!(m.contains(&want), "{want:?} in\n{m}");
    assert!(
        m.contains("lsusd_attempts_total{outcome=\"blocked\"} 1\n"),
        "{m}"
    );
}

#[test]
fn a_metrics_file_in_a_missing_directory_is_a_usage_error() {
    let env = Env::new();
    let out = Command::new(harness::bin("lsusd"))
        .arg("--run-dir")
        .arg(&env.run)
        .arg("--sysfs")
        .arg(&env.sys)
        .args(["--metrics-file", "/nonexistent/lsusd.prom"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--metrics-file /nonexistent/lsusd.prom"),
        "{err}"
    );
    assert!(!env.run.exists(), "nothing was created");
}

/// A state write that fails, through the real lsusd: `power/state` is a
/// FIFO whose buffer the test has filled, so lsusd's write blocks as a
/// real suspend's does; meanwhile the "kernel" counts a failed suspend
/// (suspend_stats) and a wakeup source moves; then the test closes the
/// only reader and the write fails with EPIPE. The record, the history,
/// `lsusctl stats` and the metrics say `write-failed` with the kernel's
/// own report of the failure.
#[test]
fn a_failed_state_write_carries_the_kernels_report() {
    use std::os::fd::AsRawFd;
    let mut env = Env::new();
    env.state_fifo();
    // Reader and writer in one: opening does not wait, and lsusd's open
    // finds a reader at once. Fill the pipe so that lsusd's write blocks.
    let pipe = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(env.sys.join("power/state"))
        .unwrap();
    nix::fcntl::fcntl(
        pipe.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let chunk = [b'x'; 4096];
    while nix::unistd::write(&pipe, &chunk).is_ok() {}
    let prom = env.tmp.path().join("lsusd.prom");
    env.start_lsusd(&["--metrics-file", prom.to_str().unwrap()]);
    let req = env.request_spawn();
    let wchan = format!("/proc/{}/wchan", env.daemons[0].child.id());
    // "pipe_write", or "fifo_pipe_write" on kernels that split it
    env.wait_for("lsusd blocked in its state write", DEADLINE, || {
        fs::read_to_string(&wchan).is_ok_and(|w| w.trim().ends_with("pipe_write"))
    });
    // The kernel's report of a failed suspend, written while it "runs".
    env.set_suspend_stat("fail", "1");
    env.set_suspend_stat("failed_suspend", "1");
    env.set_suspend_stat("last_failed_dev", "serio0");
    env.set_suspend_stat("last_failed_errno", "-16");
    env.set_suspend_stat("last_failed_step", "suspend");
    env.wakeup_source_event(1, true);
    drop(pipe); // no reader left: the blocked write fails with EPIPE

    let out = req.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}\n{}", env.dump());
    let r = env.outcome().expect("an outcome record");
    assert_eq!(
        r.outcome,
        lsus_proto::outcome::Outcome::WriteFailed { errno: libc::EPIPE },
        "{}",
        env.dump()
    );
    assert_eq!(r.details.failed_dev.as_deref(), Some("serio0"));
    assert_eq!(r.details.failed_errno, Some(-16));
    assert_eq!(r.details.failed_step.as_deref(), Some("suspend"));
    assert_eq!(r.details.kernel_fail, Some(1));
    assert_eq!(r.details.source, ["PNP0C0C:00"]);
    assert_eq!(history(&env).last(), Some(&r));
    env.wait_log(
        "lsusd",
        "kernel: failed at suspend (serio0, errno -16)",
        DEADLINE,
    );

    let stats = lsusctl(&env, &["stats", "--json"]);
    assert!(stats.contains("\"write-failed\":1"), "{stats}");
    let m = fs::read_to_string(&prom).unwrap();
    assert!(
        m.contains("lsusd_attempts_total{outcome=\"write-failed\"} 1\n"),
        "{m}"
    );
}
