//! Policy beyond the original (issue #17): bounded waits for watchers,
//! forced suspend, timed blocks. The real binaries on a temp run
//! directory and a fake sysfs tree.

mod harness;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use harness::Env;
use lsus_proto::outcome::{Named, Outcome};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn lsusctl(env: &Env, args: &[&str]) -> Output {
    Command::new(harness::bin("lsusctl"))
        .arg("--run-dir")
        .arg(&env.run)
        .args(args)
        .output()
        .expect("lsusctl")
}

/// A child that is killed when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `flock(1)` with a lock of `mode` (`-s` or `-x`) on `file` in the
/// run directory, `-o` (the lock is flock's own, not its command's), and
/// waits until it holds the lock (its command says so). Returns it; its
/// PID is the lock's holder.
fn flock_holder(env: &Env, mode: &str, file: &str) -> Reaped {
    let mut child = Command::new("flock")
        .args([mode, "-o"])
        .arg(env.path(file))
        .args(["sh", "-c", "echo locked; exec sleep 600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("flock(1)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("flock's command says it holds the lock");
    assert_eq!(line, "locked\n");
    Reaped(child)
}

// ----- 1. bounded waits for watchers ------------------------------------------

#[test]
fn watcher_that_never_answers_is_cut_at_the_timeout_and_named() {
    let mut env = Env::new();
    env.start_lsusd(&[
        "--dry-run",
        "--dry-run-sleep",
        "0.1",
        "--watcher-timeout",
        "3",
    ]);
    // A watcher of the original's kind that never moves its lock.
    let stuck = flock_holder(&env, "-s", "watching");
    let stuck_pid = stuck.0.id();
    // And one that is slow, but ready well inside the limit.
    let mut slow = libsus::Watcher::open_in(&env.run).unwrap();
    let slow_thread = std::thread::spawn(move || {
        assert_eq!(slow.wait().unwrap(), libsus::WatchEvent::SuspendImminent);
        std::thread::sleep(Duration::from_secs(1));
        slow.ready().unwrap();
        slow
    });

    let out = env.request(&[]);
    assert!(out.status.success(), "{}\n{}", text(&out), env.dump());
    slow_thread.join().unwrap();
    let record = env.outcome().expect("an outcome record");
    assert_eq!(record.outcome, Outcome::DryRun { missing: vec![] });
    // Named: the stuck one, and only it (the slow one was not cut).
    assert_eq!(
        record.details.tardy,
        Some(vec![Named {
            pid: stuck_pid,
            command: "flock".into()
        }]),
        "{}",
        env.dump()
    );
    let log = env.log("lsusd");
    let cut = log
        .lines()
        .find(|l| l.contains("watcher timeout: going on after"))
        .unwrap_or_else(|| panic!("no watcher-timeout line\n{}", env.dump()));
    assert!(cut.contains(&format!("{stuck_pid} (flock)")), "{cut}");
    assert!(
        !cut.contains(&format!("{} (", std::process::id())),
        "the slow watcher was named: {cut}"
    );
    assert!(
        env.log("lsusd").contains("tardy watchers PID"),
        "{}",
        env.dump()
    );
    let raw = std::fs::read_to_string(env.path("outcome")).unwrap();
    assert!(raw.contains(&format!(" tardy={stuck_pid}:flock")), "{raw}");

    // lsusctl shows it: history, its JSON, stats.
    let history = text(&lsusctl(&env, &["history"]));
    assert!(
        history.contains(&format!(
            "went on without tardy watchers PID {stuck_pid} (flock)"
        )),
        "{history}"
    );
    let json = text(&lsusctl(&env, &["history", "--json"]));
    assert!(
        json.contains(&format!(
            "\"tardy\":[{{\"pid\":{stuck_pid},\"command\":\"flock\"}}]"
        )),
        "{json}"
    );
    let stats = text(&lsusctl(&env, &["stats"]));
    assert!(
        stats.contains("tardy watchers (gone on without): flock 1"),
        "{stats}"
    );
    let stats = text(&lsusctl(&env, &["stats", "--json"]));
    assert!(
        stats.contains("\"tardy_watchers\":[{\"name\":\"flock\",\"count\":1}]"),
        "{stats}"
    );
    drop(stuck);
}

#[test]
fn watcher_slow_within_the_limit_is_waited_for_and_not_named() {
    let mut env = Env::new();
    env.start_lsusd(&[
        "--dry-run",
        "--dry-run-sleep",
        "0.1",
        "--watcher-timeout",
        "4",
    ]);
    let mut slow = libsus::Watcher::open_in(&env.run).unwrap();
    let slow_thread = std::thread::spawn(move || {
        assert_eq!(slow.wait().unwrap(), libsus::WatchEvent::SuspendImminent);
        std::thread::sleep(Duration::from_millis(1500));
        let at = std::time::Instant::now();
        slow.ready().unwrap();
        at
    });
    let out = env.request(&[]);
    let done = std::time::Instant::now();
    assert!(out.status.success(), "{}\n{}", text(&out), env.dump());
    let ready_at = slow_thread.join().unwrap();
    // The attempt waited for it: it ended after the watcher said ready.
    assert!(done > ready_at);
    let record = env.outcome().unwrap();
    assert_eq!(record.details.tardy, None, "{}", env.dump());
    assert!(
        !env.log("lsusd").contains("watcher timeout"),
        "{}",
        env.dump()
    );
}
