//! Start-up order and restarts (issue #20, points 3 and 4), through the
//! real binaries: watcher daemons started before lsusd, lsusd restarted
//! (cleanly and with SIGKILL mid-attempt) under attached watchers.

mod harness;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command};

use harness::{bin, Env, DEADLINE};
use libsus::{WatchEvent, Watcher};

/// The PIDs holding a lock on `watching` (the registered watchers).
fn watchers(env: &Env) -> Vec<u32> {
    let Ok(meta) = fs::metadata(env.path("watching")) else {
        return Vec::new();
    };
    lsus_sys::proclocks::holders(meta.dev(), meta.ino())
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.pid)
        .collect()
}

fn spawn_watch(env: &Env) -> (Child, std::path::PathBuf) {
    let out = env.tmp.path().join("watch.out");
    let child = Command::new(bin("lsusctl"))
        .arg("--run-dir")
        .arg(&env.run)
        .args(["watch", "--follow"])
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(env.tmp.path().join("watch.err")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    env.wait_for("lsusctl watch registered", DEADLINE, || {
        watchers(env).contains(&pid)
    });
    (child, out)
}

#[test]
fn watcher_daemons_started_before_lsusd_wait_for_it_and_register() {
    // Seven rounds of `lsusd & lsused & wakealarmd &`, the daemons started
    // in the worst order, on a run directory that exists after round one.
    for round in 0..7 {
        let mut env = Env::new();
        if round > 0 {
            fs::create_dir(&env.run).unwrap();
        }
        let run = env.run.display().to_string();
        let sys = env.sys.display().to_string();
        env.spawn("lsused", &["--run-dir", &run]);
        env.spawn("wakealarmd", &["--run-dir", &run, "--sysfs", &sys]);
        if round % 2 == 0 {
            // Give them time to find lsusd missing (said once, then wait).
            env.wait_log("lsused", "waiting for it", DEADLINE);
            env.wait_log("wakealarmd", "waiting for it", DEADLINE);
        }
        env.spawn("lsusd", &["--run-dir", &run, "--sysfs", &sys]);
        env.wait_log("lsusd", "ready", DEADLINE);
        env.wait_log("lsused", "ready", DEADLINE);
        env.wait_log("wakealarmd", "ready", DEADLINE);
        assert!(env.log_count("lsused", "waiting for it") <= 1);
        assert!(env.log_count("wakealarmd", "waiting for it") <= 1);
        let (lsused, wakealarmd) = (env.daemons[0].child.id(), env.daemons[1].child.id());
        env.wait_for("both registered as watchers", DEADLINE, || {
            let w = watchers(&env);
            w.contains(&lsused) && w.contains(&wakealarmd)
        });
        let out = env.request(&[]);
        assert_eq!(out.status.code(), Some(0), "{}", env.dump());
        // Stopped, they leave no PID file behind.
        env.stop(0);
        env.stop(1);
        assert!(!env.path("lsused.pid").exists(), "{}", env.dump());
        assert!(!env.path("wakealarmd.pid").exists(), "{}", env.dump());
    }
}

#[test]
fn watcher_daemons_leave_no_pid_file_on_an_early_exit() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    env.start_socket_daemon("lsused", "registration", &[]);
    // A second lsused is refused; the first one's PID file stays.
    let out = Command::new(bin("lsused"))
        .arg("--run-dir")
        .arg(&env.run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    assert!(env.path("lsused.pid").exists());
    // A wakealarmd that fails after taking its lock (its socket path is
    // a directory it cannot replace): it exits, and its PID file goes.
    fs::create_dir(env.path("wakealarm")).unwrap();
    fs::write(env.path("wakealarm/keep"), "").unwrap();
    let out = Command::new(bin("wakealarmd"))
        .arg("--run-dir")
        .arg(&env.run)
        .arg("--sysfs")
        .arg(&env.sys)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!env.path("wakealarmd.pid").exists(), "{}", env.dump());
    // Waiting on a run directory whose parent does not exist: refused.
    let out = Command::new(bin("lsused"))
        .arg("--run-dir")
        .arg(env.tmp.path().join("no/such/run"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither"));
}

#[test]
fn a_clean_restart_of_lsusd_is_invisible_to_watchers_and_seq_goes_on() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let (mut watch, out) = spawn_watch(&env);
    assert_eq!(env.request(&[]).status.code(), Some(0));
    let seq = env.outcome_seq();
    env.wait_for("the first resume line", DEADLINE, || {
        fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("resume")
    });
    // A libsus watcher registered with the old lsusd, too.
    let mut w = Watcher::open_in(&env.run).unwrap();
    env.stop(0);
    env.start_lsusd(&[]);
    assert_eq!(
        w.wait_timeout(Some(std::time::Duration::ZERO)).unwrap(),
        None,
        "the restart told the watcher nothing"
    );
    // `watch --follow` registers again with the new lsusd: after it says
    // so, since until it has seen the old lsusd go its old registration
    // still holds the same `watching` (and is then dropped).
    let pid = watch.id();
    let err = env.tmp.path().join("watch.err");
    env.wait_for("lsusctl watch says lsusd is back", DEADLINE, || {
        fs::read_to_string(&err).is_ok_and(|t| t.contains("lsusd is back"))
    });
    env.wait_for("lsusctl watch registered again", DEADLINE, || {
        watchers(&env).contains(&pid)
    });
    let req = env.request_spawn();
    assert_eq!(w.wait().unwrap(), WatchEvent::SuspendImminent);
    w.ready().unwrap();
    assert_eq!(w.wait().unwrap(), WatchEvent::Resumed);
    let req = req.wait_with_output().unwrap();
    assert_eq!(req.status.code(), Some(0), "{req:?}");
    assert_eq!(env.outcome_seq(), seq + 1, "seq goes on across the restart");
    assert!(
        String::from_utf8_lossy(&req.stdout).contains("suspended and resumed"),
        "{req:?}"
    );
    env.wait_for("the second resume line", DEADLINE, || {
        fs::read_to_string(&out)
            .unwrap_or_default()
            .matches("resume")
            .count()
            >= 2
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let text = fs::read_to_string(&out).unwrap();
    // Two requests, two suspends: the restart added nothing.
    assert_eq!(text.matches("  suspend").count(), 2, "{text}");
    assert_eq!(text.matches("  resume").count(), 2, "{text}");
}

/// As systemd does it (Restart=on-failure, RestartSec=100ms): lsusd is
/// killed in the middle of an attempt and a new one starts at once, before
/// request-suspend's once-a-second look at the lock. The waiting
/// request-suspend must still say that its lsusd stopped (exit 2, one
/// line), not report the new lsusd's `withdrawn` end of that attempt as an
/// answer, nor wait on as if the new lsusd were the one it asked.
#[test]
fn lsusd_killed_and_restarted_at_once_ends_the_waiting_request_with_exit_2() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let mut slow = Watcher::open_in(&env.run).unwrap();
    let req = env.request_spawn();
    assert_eq!(slow.wait().unwrap(), WatchEvent::SuspendImminent);
    let old = env.daemons[0].child.id();
    let pid = nix::unistd::Pid::from_raw(old as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = env.daemons[0].child.wait();
    env.start_lsusd(&[]);
    let out = req.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}\n{}", env.dump());
    assert_eq!(
        stderr.trim_end(),
        format!(
            "request-suspend: lsusd (PID {old}) on {} stopped while the request waited; \
             the request was withdrawn",
            env.run.display()
        ),
        "{}",
        env.dump()
    );
    assert!(!env.path("request").exists(), "{}", env.dump());
    // The new lsusd serves the next request.
    slow.ready().unwrap();
    assert_eq!(slow.wait().unwrap(), WatchEvent::Resumed);
    let req = env.request_spawn();
    assert_eq!(slow.wait().unwrap(), WatchEvent::SuspendImminent);
    slow.ready().unwrap();
    assert_eq!(slow.wait().unwrap(), WatchEvent::Resumed);
    let out = req.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn lsusd_killed_mid_attempt_is_replaced_without_waiting_for_the_old_watchers() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // A watcher that will not say ready while lsusd is killed.
    let mut slow = Watcher::open_in(&env.run).unwrap();
    let before = env.outcome_seq();
    let req = env.request_spawn();
    assert_eq!(slow.wait().unwrap(), WatchEvent::SuspendImminent);
    let pid = nix::unistd::Pid::from_raw(env.daemons[0].child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = env.daemons[0].child.wait();
    let out = req.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // The new lsusd says what it found and is ready at once.
    env.start_lsusd(&[]);
    let me = std::process::id().to_string();
    let line = env
        .log("lsusd")
        .lines()
        .find(|l| l.contains("found an attempt a previous lsusd left in progress"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no take-over line\n{}", env.dump()));
    assert!(line.contains(&me), "names the watcher not ready: {line}");
    assert!(
        !env.log("lsusd").contains("still waiting"),
        "{}",
        env.dump()
    );
    assert_eq!(env.outcome_seq(), before + 1, "{}", env.dump());
    assert!(matches!(
        env.outcome().unwrap().outcome,
        libsus::Outcome::Withdrawn
    ));
    // The old watcher, once ready, sees the end of that attempt, then
    // follows the next one like any other.
    slow.ready().unwrap();
    assert_eq!(slow.wait().unwrap(), WatchEvent::Resumed);
    let req = env.request_spawn();
    assert_eq!(slow.wait().unwrap(), WatchEvent::SuspendImminent);
    slow.ready().unwrap();
    assert_eq!(slow.wait().unwrap(), WatchEvent::Resumed);
    let out = req.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(env.outcome_seq(), before + 2);
}
