//! What a new user gets wrong (issue #20, points 2, 5, 6 and 8), through
//! the real binaries: numbers out of range, a wrong --sysfs or --run-dir,
//! dry-run immediate mode, and the smaller edges of the command lines.

mod harness;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output};
use std::time::Duration;

use harness::{bin, sh_spawn, Env, DEADLINE};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bin(name))
        .args(args)
        .env("LSUSD_RUN_DIR", "/nonexistent-lsus-test")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"))
}

#[test]
fn numbers_out_of_range_are_usage_errors_not_panics() {
    let cases: &[(&str, &[&str])] = &[
        ("request-suspend", &["--timeout", "99999999999999999999"]),
        ("request-suspend", &["--timeout", "1e20"]),
        ("request-suspend", &["--timeout", "0"]),
        ("request-suspend", &["--timeout", "-1"]),
        ("request-suspend", &["--timeout", "nan"]),
        ("alarm_test", &["18446744073709551615"]),
        ("alarm_test", &["--hold", "18446744073709551615", "5"]),
        ("block_test", &["18446744073709551615"]),
        ("watch_test", &["--delay", "18446744073709551615"]),
        ("watch_test", &["--block-for", "18446744073709551615"]),
        ("lsusd", &["--backoff-initial-ms", "18446744073709551615"]),
        ("lsusd", &["--backoff-max-ms", "0"]),
        ("lsusd", &["--immediate-grace-ms", "99999999999"]),
        ("lsusd", &["--dry-run-sleep", "1e20"]),
        ("lsusd", &["--dry-run-sleep", "0"]),
        ("lsused", &["--reply-timeout", "1e20"]),
        ("lsused", &["--socket-mode", "0"]),
        ("wakealarmd", &["--socket-mode", "0"]),
        ("wakealarmd", &["--socket-mode", "99999999999999999999"]),
        ("lsusctl", &["status", "--last", "18446744073709551615"]),
        ("lsusctl", &["history", "-n", "0"]),
    ];
    for (name, args) in cases {
        let out = run(name, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name} {args:?}: exit {:?}\n{}",
            out.status,
            text(&out)
        );
        assert!(
            !err.contains("panicked")
                && err.lines().next().is_some_and(|l| l.starts_with("error:")),
            "{name} {args:?}: {err}"
        );
    }
}

/// Connects to wakealarmd, reads the greeting, writes `line`, returns the reply.
fn alarm_reply(env: &Env, line: &[u8]) -> String {
    let mut s = UnixStream::connect(env.path("wakealarm")).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    assert_eq!(greeting, "0\n");
    s.write_all(line).unwrap();
    let mut reply = String::new();
    r.read_line(&mut reply).unwrap();
    reply
}

#[test]
fn wakealarmd_refuses_times_past_the_year_9999() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    env.start_socket_daemon("wakealarmd", "wakealarm", &["--dry-run"]);
    let reply = alarm_reply(&env, b"99999999999999999999999\n");
    assert!(reply.starts_with("Error: time out of range"), "{reply:?}");
    let reply = alarm_reply(&env, b"253402300800\n");
    assert!(reply.starts_with("Error: time out of range"), "{reply:?}");
    // The last second of 9999 is a time like any other.
    assert_eq!(alarm_reply(&env, b"253402300799\n"), "253402300799\n");
}

#[test]
fn lsusd_with_a_wrong_sysfs_refuses_to_start_naming_the_path() {
    let env = Env::new();
    let missing = env.tmp.path().join("doesnotexist");
    let out = Command::new(bin("lsusd"))
        .arg("--run-dir")
        .arg(&env.run)
        .arg("--sysfs")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}/power/state does not exist", missing.display())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!env.run.exists(), "nothing is created on a wrong --sysfs");
}

#[test]
fn dry_run_with_a_wrong_sysfs_warns_and_every_outcome_repeats_it() {
    let mut env = Env::new();
    let missing = env.tmp.path().join("doesnotexist");
    let m = missing.display().to_string();
    let run = env.run.display().to_string();
    let args = [
        "--run-dir",
        &run,
        "--sysfs",
        &m,
        "--dry-run",
        "--dry-run-sleep",
        "0.05",
    ];
    env.spawn("lsusd", &args);
    env.wait_log("lsusd", "ready", DEADLINE);
    assert!(env
        .log("lsusd")
        .contains(&format!("{m}/power/state does not exist")));
    for _ in 0..2 {
        let out = env.request(&[]);
        let said = text(&out);
        assert!(
            said.contains("power/state and power/wakeup_count missing under --sysfs"),
            "{said}"
        );
    }
    assert_eq!(
        env.log_count("lsusd", "missing under --sysfs: a real suspend would fail"),
        2,
        "{}",
        env.dump()
    );
}

#[test]
fn a_failed_state_write_names_the_path() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let state = env.sys.join("power/state");
    fs::remove_file(&state).unwrap();
    fs::create_dir(&state).unwrap();
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    env.wait_log(
        "lsusd",
        &format!("cannot write \"mem\" to {}", state.display()),
        DEADLINE,
    );
}

#[test]
fn dry_run_immediate_mode_suspends_at_a_machines_pace() {
    let mut env = Env::new();
    env.start_lsusd(&["--dry-run", "--dry-run-sleep", "0.3"]);
    let mut holder = sh_spawn("exec flock -x -o \"$RUN/immediate\" sleep 1000", &env.run);
    let history = env.path("log/history");
    let records = || -> Vec<lsus_proto::outcome::Record> {
        fs::read_to_string(&history)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    env.wait_for("four dry-run suspends in immediate mode", DEADLINE, || {
        records().len() >= 4
    });
    let _ = holder.kill();
    let _ = holder.wait();
    let got = records();
    // Each "suspend" lasts --dry-run-sleep: the records (millisecond
    // times) are at least that far apart, never a spin.
    for pair in got.windows(2) {
        let gap = pair[1]
            .time
            .duration_since(pair[0].time)
            .unwrap_or_default();
        assert!(
            gap >= Duration::from_millis(290),
            "records {} and {} only {gap:?} apart\n{}",
            pair[0].seq,
            pair[1].seq,
            env.dump()
        );
        assert!(pair[1].outcome.suspended(), "{:?}", pair[1]);
    }
}

#[test]
fn request_suspend_on_a_missing_run_directory_says_it_does_not_exist() {
    let env = Env::new();
    let nope = env.tmp.path().join("nope");
    let out = Command::new(bin("request-suspend"))
        .arg("--run-dir")
        .arg(&nope)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "lsusd is not running on {}: the run directory does not exist",
            nope.display()
        )),
        "{err}"
    );
    assert!(!err.contains("pass --run-dir"), "{err}");
}

#[test]
fn lsusd_creates_a_run_directory_only_in_an_existing_parent_and_says_so() {
    let mut env = Env::new();
    let misspelt = env.tmp.path().join("rnu/suspend");
    let out = Command::new(bin("lsusd"))
        .arg("--run-dir")
        .arg(&misspelt)
        .arg("--sysfs")
        .arg(&env.sys)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} does not exist",
            misspelt.parent().unwrap().display()
        )),
        "{err}"
    );
    assert!(!misspelt.parent().unwrap().exists());
    // The harness's run directory does not exist yet; its parent does.
    env.start_lsusd(&[]);
    env.wait_log("lsusd", "(created)", DEADLINE);
    // Started again on the directory that now exists: not "(created)".
    env.stop(0);
    env.start_lsusd(&[]);
    assert_eq!(env.log_count("lsusd", "(created)"), 1, "{}", env.dump());
}

#[test]
fn each_example_has_its_own_help_description() {
    let mut firsts = Vec::new();
    for name in ["alarm_test", "block_test", "event_test", "watch_test"] {
        let out = run(name, &["--help"]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let first = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            !first.contains("Example programs for libsus"),
            "{name}: {first}"
        );
        assert!(!firsts.contains(&first), "{name} repeats {first:?}");
        firsts.push(first);
    }
}
