//! The examples against the real daemons: `block_test` and `watch_test`,
//! the shell functions of `examples/block.sh` (flock(1)), the Python client
//! `examples/suspend.py`, and `examples/demo.sh` end to end.

mod harness;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use harness::{Env, DEADLINE};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Returns the path of a file under `examples/`.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// lsusd writing the fake `power/state` (no dry run), so a suspend shows.
fn env() -> Env {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    env
}

/// A client started by a test; its stdout and stderr go to one file.
struct Client {
    child: Child,
    out: PathBuf,
}

impl Client {
    /// Starts `cmd` in its own process group (so that a shell and the
    /// `sleep` it runs, which shares its locked descriptor, end together).
    fn spawn(env: &Env, name: &str, cmd: &mut Command) -> Client {
        let out = env.tmp.path().join(format!("{name}.out"));
        let file = File::create(&out).unwrap();
        let child = cmd
            .env("LSUSD_RUN_DIR", &env.run)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Client { child, out }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn wait_output(&self, env: &Env, needle: &str) {
        env.wait_for(
            &format!("{:?} in {}", needle, self.out.display()),
            DEADLINE,
            || self.output().contains(needle),
        );
    }

    /// Kills the whole process group.
    fn kill_group(&mut self, signal: Signal) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), signal);
    }

    fn wait_exit(&mut self, env: &Env) -> ExitStatus {
        wait_exit(env, &mut self.child)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.kill_group(Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn wait_exit(env: &Env, child: &mut Child) -> ExitStatus {
    let mut status = None;
    env.wait_for("a client to exit", DEADLINE, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.expect("exited")
}

fn python(args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(example("suspend.py")).args(args);
    cmd
}

fn bin(name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(harness::bin(name));
    cmd.args(args);
    cmd
}

/// Returns the position of `needle` in `text`, panicking with `text`.
fn pos(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"))
}

/// Starts a request, waits until lsusd reports it blocked, then runs
/// `release`; checks that request-suspend exited 1 without a suspend and
/// returns what it printed.
fn request_while_blocked(env: &Env, release: impl FnOnce()) -> String {
    let blocked_before = env.log_count("lsusd", "blocked by");
    let mut request = env.request_spawn();
    env.wait_log_count("lsusd", "blocked by", blocked_before + 1, DEADLINE);
    assert!(env.state().is_empty(), "{}", env.dump());
    release();
    let status = wait_exit(env, &mut request);
    let out = request.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(status.code(), Some(1), "{out}\n{}", env.dump());
    assert!(env.state().is_empty(), "{}", env.dump());
    // The answer came at once (doc/protocol.md §2 step 3), not at the
    // release: the blocker may still be dying. lsusd drops the request
    // when the blockers have gone; only then may the next one suspend.
    env.wait_for("the blocked request dropped", DEADLINE, || {
        !env.path("request").exists()
    });
    out
}

/// Starts watch_test with `args` and waits until it watches.
fn watch_test(env: &Env, args: &[&str]) -> Client {
    let watcher = Client::spawn(env, "watch_test", &mut bin("watch_test", args));
    watcher.wait_output(env, "watching");
    watcher
}

/// The request under way suspends: request-suspend exits 0, `mem` is
/// written.
fn request_suspended(env: &Env, request: &mut Child) {
    assert_eq!(wait_exit(env, request).code(), Some(0), "{}", env.dump());
    assert_eq!(env.state(), "mem\n");
}

/// The next request suspends: request-suspend exits 0, `mem` is written.
fn next_request_suspends(env: &Env) {
    assert_eq!(env.request(&[]).status.code(), Some(0), "{}", env.dump());
    assert_eq!(env.state(), "mem\n");
}

// ---------------------------------------------------------------- Python

#[test]
fn python_watcher_sees_suspend_then_resumed() {
    let env = env();
    let mut watcher = Client::spawn(&env, "py-watch", &mut python(&["watch", "--count", "1"]));
    watcher.wait_output(&env, "watching");
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", env.dump());
    assert_eq!(env.state(), "mem\n");
    assert!(watcher.wait_exit(&env).success(), "{}", watcher.output());
    let text = watcher.output();
    assert!(
        pos(&text, "suspend imminent") < pos(&text, "ready"),
        "{text}"
    );
    assert!(pos(&text, "ready") < pos(&text, "resumed"), "{text}");
}

#[test]
fn python_request_reports_the_outcome() {
    let env = env();
    let out = python(&["request"])
        .env("LSUSD_RUN_DIR", &env.run)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text.contains("suspended and resumed"), "{text}");
    assert_eq!(env.state(), "mem\n");
}

#[test]
fn python_block_refuses_a_request() {
    let env = env();
    let mut blocker = Client::spawn(&env, "py-block", &mut python(&["block", "30"]));
    blocker.wait_output(&env, "suspend blocked");
    let out = request_while_blocked(&env, || blocker.kill_group(Signal::SIGTERM));
    assert!(out.contains("blocked"), "{out}");
}

#[test]
fn python_block_then_allow_lets_the_next_request_suspend() {
    let env = env();
    block_then_allow(&env, python(&["block", "0"]).env("LSUSD_RUN_DIR", &env.run));
}

/// Runs a client that blocks suspend and allows it again before it exits
/// (saying so in that order); the next request then suspends.
fn block_then_allow(env: &Env, client: &mut Command) {
    let out = client.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(pos(&text, "suspend blocked") < pos(&text, "suspend allowed"));
    next_request_suspends(env);
}

#[test]
fn python_immediate_suspends_repeatedly_then_stops() {
    let env = env();
    let mut holder = Client::spawn(&env, "py-immediate", &mut python(&["immediate", "2"]));
    holder.wait_output(&env, "immediate mode for");
    env.wait_log_count("lsusd", "suspend (immediate mode)", 3, DEADLINE);
    // lsusd may be between its O_TRUNC and its write of the next cycle.
    env.wait_for("mem written to power/state", DEADLINE, || {
        env.state() == "mem\n"
    });
    assert!(holder.wait_exit(&env).success(), "{}", holder.output());
    assert!(holder.output().contains("immediate mode off"));
    // The owner removed the file on leaving; nothing starts another cycle.
    assert!(!env.path("immediate").exists(), "{}", env.dump());
    // An attempt that was being prepared when the owner left may still
    // end, but none starts after it.
    let n = env.log_count("lsusd", "suspend (immediate mode)");
    env.assert_stays(
        "no further immediate suspends",
        Duration::from_millis(500),
        || env.log_count("lsusd", "suspend (immediate mode)") <= n + 1,
    );
}

// ---------------------------------------------------------------- shell

#[test]
fn test_block_sh_blocks_a_request() {
    let env = env();
    let mut script = Client::spawn(
        &env,
        "test_block",
        Command::new("sh").arg(example("test_block.sh")).arg("30"),
    );
    script.wait_output(&env, "suspend blocked for 30 s");
    let shell = script.child.id();
    let out = request_while_blocked(&env, || script.kill_group(Signal::SIGTERM));
    // The shell holds the lock that flock(1), long gone, took on its
    // descriptor: it is the one named, in the outcome and in the log.
    assert!(
        out.contains(&format!("blocked by PID {shell}")),
        "{out}\n{}",
        env.dump()
    );
    assert!(
        env.log_count("lsusd", &format!("blocked by PID {shell} (sh)")) > 0,
        "{}",
        env.dump()
    );
    // The script's lock went with it: the next request suspends.
    next_request_suspends(&env);
}

#[test]
fn block_sh_functions_under_each_shell() {
    let env = env();
    let block_sh = example("block.sh");
    let script = r#"
        . "$BLOCK_SH"
        suspend_block || exit 3
        # While blocked, lsusd's own test for blockers fails.
        if flock -n -x "$LSUSD_RUN_DIR/disabled" true; then echo "NOT BLOCKED"; fi
        suspend_allow
        flock -n -x "$LSUSD_RUN_DIR/disabled" true && echo "allowed again"
        suspend_abort && echo "abort read ok"
    "#;
    let mut shells = vec![vec!["sh"]];
    for extra in [vec!["bash"], vec!["dash"], vec!["busybox", "sh"]] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {} >/dev/null", extra[0]))
            .status()
            .is_ok_and(|s| s.success());
        if found {
            shells.push(extra);
        } else {
            // .ci/run installs them; under CI a missing one fails.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but {} is not installed: block.sh is not tried with it",
                extra[0]
            );
            eprintln!(
                "note: {} not installed: block.sh is not tried with it",
                extra[0]
            );
        }
    }
    for shell in shells {
        let out = Command::new(shell[0])
            .args(&shell[1..])
            .arg("-c")
            .arg(script)
            .env("BLOCK_SH", &block_sh)
            .env("LSUSD_RUN_DIR", &env.run)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell:?}: {out:?}");
        assert!(!text.contains("NOT BLOCKED"), "{shell:?}: {text}");
        assert!(text.contains("allowed again"), "{shell:?}: {text}");
        assert!(text.contains("abort read ok"), "{shell:?}: {text}");
    }
}

#[test]
fn block_sh_without_lsusd_fails_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg(example("test_block.sh"))
        .arg("0")
        .env("LSUSD_RUN_DIR", tmp.path().join("none"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is lsusd running?"), "{err}");
}

#[test]
fn flock_shared_on_disabled_via_flock_1_blocks_a_request() {
    let env = env();
    let disabled = env.path("disabled");
    let mut holder = Client::spawn(
        &env,
        "flock",
        Command::new("flock").arg("-s").arg(&disabled).args([
            "sh",
            "-c",
            "echo held; exec sleep 30",
        ]),
    );
    holder.wait_output(&env, "held");
    request_while_blocked(&env, || holder.kill_group(Signal::SIGTERM));
    next_request_suspends(&env);
}

// ---------------------------------------------------------------- Rust

#[test]
fn block_test_blocks_and_allows() {
    let env = env();
    let run = env.run.display().to_string();
    let mut blocker = Client::spawn(&env, "block_test", &mut bin("block_test", &["30"]));
    blocker.wait_output(&env, "suspend blocked for 30 s");
    let out = request_while_blocked(&env, || blocker.kill_group(Signal::SIGKILL));
    assert!(out.contains("blocked by PID"), "{out}");

    // Run to the end with --run-dir instead of the environment.
    block_then_allow(
        &env,
        bin("block_test", &["--run-dir", &run, "0"]).env_remove("LSUSD_RUN_DIR"),
    );
}

#[test]
fn block_test_abort_aborts_the_attempt_a_slow_watcher_holds() {
    let env = env();
    let mut watcher = watch_test(&env, &["--delay", "1000", "--count", "1"]);
    let mut request = env.request_spawn();
    watcher.wait_output(&env, "suspend imminent");
    let out = bin("block_test", &["--abort"])
        .env("LSUSD_RUN_DIR", &env.run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        wait_exit(&env, &mut request).code(),
        Some(1),
        "{}",
        env.dump()
    );
    let out = request.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("aborted"));
    assert!(env.state().is_empty());
    // Watchers hear "resumed" after an aborted attempt too.
    assert!(watcher.wait_exit(&env).success());
    assert!(watcher.output().contains("resumed"));
}

#[test]
fn watch_test_prints_suspend_then_resumed() {
    let env = env();
    let mut watcher = watch_test(&env, &["--count", "2"]);
    for _ in 0..2 {
        assert_eq!(env.request(&[]).status.code(), Some(0), "{}", env.dump());
    }
    assert!(watcher.wait_exit(&env).success(), "{}", watcher.output());
    let text = watcher.output();
    let events: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("suspend") || l.contains("resumed"))
        .collect();
    assert_eq!(
        events,
        ["suspend imminent", "resumed", "suspend imminent", "resumed"],
        "{text}"
    );
}

#[test]
fn slow_watch_test_delays_the_state_write_until_ready() {
    let env = env();
    let watcher = watch_test(&env, &["--delay", "500"]);
    let mut request = env.request_spawn();
    watcher.wait_output(&env, "suspend imminent");
    // The watcher sleeps 500 ms before it is ready; lsusd must wait, and
    // its own measure of the wait says so (certain, whatever the load:
    // the watcher cannot be ready sooner).
    request_suspended(&env, &mut request);
    let log = env.log("lsusd");
    let waited = log
        .lines()
        .find_map(|l| l.split_once("watchers ready after ").map(|(_, d)| d.trim()))
        .unwrap_or_else(|| panic!("no \"watchers ready after\" line\n{log}"));
    assert!(
        debug_duration(waited) >= Duration::from_millis(500),
        "lsusd waited only {waited}\n{log}"
    );
    watcher.wait_output(&env, "resumed");
    let text = watcher.output();
    assert!(
        pos(&text, "suspend imminent") < pos(&text, "ready"),
        "{text}"
    );
}

#[test]
fn watch_test_killed_with_sigkill_does_not_block_suspend() {
    let env = env();
    let mut watcher = watch_test(&env, &["--delay", "60000"]);
    let mut request = env.request_spawn();
    watcher.wait_output(&env, "suspend imminent");
    assert!(env.state().is_empty());
    watcher.kill_group(Signal::SIGKILL);
    request_suspended(&env, &mut request);
}

#[test]
fn watch_test_block_for_says_not_now() {
    let env = env();
    let mut watcher = watch_test(&env, &["--block-for", "30"]);
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}\n{}", env.dump());
    assert!(env.state().is_empty());
    watcher.wait_output(&env, "holding a block on disabled for 30 s");
    watcher.wait_output(&env, "resumed");
    // The block outlives the cycle: a new request is refused while it lasts.
    request_while_blocked(&env, || watcher.kill_group(Signal::SIGKILL));
    next_request_suspends(&env);
}

#[test]
fn examples_without_lsusd_print_one_error_line_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let none = tmp.path().join("none");
    let none = none.to_str().unwrap();
    let cases: Vec<(&str, Command)> = vec![
        ("block_test", bin("block_test", &["--run-dir", none, "1"])),
        (
            "block_test --abort",
            bin("block_test", &["--run-dir", none, "--abort"]),
        ),
        ("watch_test", bin("watch_test", &["--run-dir", none])),
        (
            "event_test",
            bin("event_test", &["--run-dir", none, "/dev/null"]),
        ),
        ("alarm_test", bin("alarm_test", &["--run-dir", none, "5"])),
        ("suspend.py watch", python(&["--run-dir", none, "watch"])),
        (
            "suspend.py block",
            python(&["--run-dir", none, "block", "1"]),
        ),
        (
            "suspend.py request",
            python(&["--run-dir", none, "request"]),
        ),
        (
            "suspend.py immediate",
            python(&["--run-dir", none, "immediate", "1"]),
        ),
    ];
    for (what, mut cmd) in cases {
        let out = cmd.env_remove("LSUSD_RUN_DIR").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {out:?}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        // "lsusd is not running", "is lsused running?"
        assert!(err.contains("running"), "{what}: {err}");
    }
}

// ---------------------------------------------------------------- demo

#[test]
fn demo_runs_end_to_end() {
    let lsusd = harness::bin("lsusd");
    let bin_dir = lsusd.parent().expect("binary directory");
    let out = Command::new("sh")
        .arg(example("demo.sh"))
        .env("LSUS_BIN_DIR", bin_dir)
        .env_remove("LSUSD_RUN_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{text}\n{err}");
    for needle in [
        "watch_test| suspend imminent",
        "watch_test| resumed",
        "request-suspend| blocked by PID",
        "request-suspend| aborted",
        "suspend.py watch| resumed",
        "event_test| suspend: handling wake event",
        "wakealarmd| suspend imminent: dry run: not writing",
        "lsusd| suspend (immediate mode)",
        "All 8 steps behaved as described",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}

// ---------------------------------------------------------------- wakealarmd

#[test]
fn wakealarmd_dry_run_logs_the_rtc_writes_instead_of_making_them() {
    let mut env = env();
    env.start_socket_daemon("wakealarmd", "wakealarm", &["--dry-run"]);
    let rtc = env.sys.join("class/rtc/rtc0/wakealarm");
    std::fs::write(&rtc, "untouched").unwrap();
    let when = std::time::SystemTime::now() + Duration::from_secs(60);
    let alarm = libsus::WakeAlarm::new_in(&env.run, when).unwrap();
    let wake = alarm
        .when()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(env.request(&[]).status.code(), Some(0), "{}", env.dump());
    env.wait_log("wakealarmd", "dry run: not writing", DEADLINE);
    let log = env.log("wakealarmd");
    // The fake RTC keeps the system's time (offset 0, or -1 if a second
    // ticked since it was written); the alarm is two seconds early.
    let line = log
        .lines()
        .find(|l| l.contains("dry run: not writing"))
        .unwrap();
    let number_after = |marker: &str| -> i64 {
        let rest = &line[pos(line, marker) + marker.len()..];
        let end = rest
            .find(|c: char| c != '-' && !c.is_ascii_digit())
            .unwrap_or(rest.len());
        rest[..end].parse().unwrap()
    };
    let value = number_after("\"0\" then \"");
    let offset = number_after("RTC offset ");
    assert!((-1..=0).contains(&offset), "{line}");
    assert_eq!(value, wake as i64 + offset - 2, "{line}");
    assert_eq!(std::fs::read_to_string(&rtc).unwrap(), "untouched");
}

/// Parses a `Duration` as `{:.1?}` prints it ("512.3ms", "1.2s", "850.0µs").
fn debug_duration(text: &str) -> Duration {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().unwrap_or_else(|_| panic!("{text:?}"));
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "µs" | "us" => 1e-6,
        "ns" => 1e-9,
        _ => panic!("unit of {text:?}"),
    };
    Duration::from_secs_f64(n * scale)
}
