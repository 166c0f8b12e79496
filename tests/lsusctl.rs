//! `lsusctl` against the real daemons on a temp run directory, and what a
//! restart of each daemon leaves behind (SIGTERM, then a new instance).

mod harness;

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::{Env, DEADLINE};
use libsus::{WakeEvent, WakeEvents};

const LSUSD: usize = 0;

fn lsusctl(env: &Env, args: &[&str]) -> Output {
    Command::new(harness::bin("lsusctl"))
        .arg("--run-dir")
        .arg(&env.run)
        .args(args)
        .output()
        .expect("lsusctl")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `flock -s RUN/disabled sleep 30`, started directly (its PID is flock's).
fn flock_blocker(env: &Env) -> Child {
    Command::new("flock")
        .arg("-s")
        .arg(env.path("disabled"))
        .args(["sleep", "30"])
        .stdin(Stdio::null())
        // Its own group, so that `kill` ends the sleep (which inherits the
        // locked descriptor) too.
        .process_group(0)
        .spawn()
        .expect("flock(1)")
}

/// Waits until `lsusctl status` says suspend is blocked.
fn wait_blocked(env: &Env) -> String {
    let mut last = String::new();
    env.wait_for("lsusctl status reports a blocker", DEADLINE, || {
        last = text(&lsusctl(env, &["status"]));
        last.contains("suspend: BLOCKED")
    });
    last
}

/// Kills `child` and its process group (a blocker's lock lives on in its
/// children otherwise).
fn kill(child: &mut Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// A child whose standard output is collected by a thread as it comes.
struct Collected {
    child: Child,
    out: Arc<Mutex<String>>,
}

fn collect(mut child: Child) -> Collected {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let out = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&out);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    Collected { child, out }
}

impl Collected {
    fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }
}

fn watch(env: &Env, json: bool) -> Collected {
    let mut cmd = Command::new(harness::bin("lsusctl"));
    cmd.arg("--run-dir").arg(&env.run).arg("watch");
    if json {
        cmd.arg("--json");
    }
    collect(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("lsusctl watch"),
    )
}

/// The number of watchers `lsusctl status --json` counts.
fn watchers(env: &Env) -> usize {
    let out = lsusctl(env, &["status", "--json"]).stdout;
    serde_json::from_slice::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["watchers"]["count"].as_u64())
        .map_or(0, |n| n as usize)
}

#[test]
fn status_names_the_pid_and_command_of_a_flock_blocker() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    env.start_socket_daemon("lsused", "registration", &[]);
    env.start_socket_daemon("wakealarmd", "wakealarm", &[]);

    let out = lsusctl(&env, &["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("suspend: not blocked"), "{t}");
    assert!(
        t.contains("lsused: running") && t.contains("0 clients"),
        "{t}"
    );
    assert!(
        t.contains("wakealarmd: running") && t.contains("0 connections"),
        "{t}"
    );

    let mut blocker = flock_blocker(&env);
    let t = wait_blocked(&env);
    let pid = blocker.id();
    assert!(t.contains(&format!("PID {pid} ")), "{t}");
    assert!(t.contains("flock -s ") && t.contains("sleep 30"), "{t}");

    let json = text(&lsusctl(&env, &["status", "--json"]));
    assert!(json.contains("\"blocked\":true"), "{json}");
    assert!(json.contains(&format!("\"pid\":{pid},")), "{json}");
    assert!(json.contains("\"comm\":\"flock\""), "{json}");
    let doc: serde_json::Value =
        serde_json::from_slice(&lsusctl(&env, &["status", "--json"]).stdout)
            .expect("status --json is one JSON object");
    assert_eq!(doc["version"], 1, "{doc}");
    assert_eq!(doc["blockers"][0]["pid"], pid, "{doc}");

    // A wake-alarm client without a time blocks too: wakealarmd publishes it.
    let alarm = std::os::unix::net::UnixStream::connect(env.path("wakealarm")).unwrap();
    env.wait_for("wakealarmd counts the connection", DEADLINE, || {
        text(&lsusctl(&env, &["status"])).contains("1 connection, 0 alarms pending")
    });
    drop(alarm);

    kill(&mut blocker);
    env.wait_for("the blocker is gone from status", DEADLINE, || {
        text(&lsusctl(&env, &["status"])).contains("suspend: not blocked")
    });
}

#[test]
fn block_exits_with_the_commands_status_and_shows_why() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    assert_eq!(
        lsusctl(&env, &["block", "--", "true"]).status.code(),
        Some(0)
    );
    assert_eq!(
        lsusctl(&env, &["block", "--", "false"]).status.code(),
        Some(1)
    );
    assert_eq!(
        lsusctl(&env, &["block", "--", "sh", "-c", "exit 7"])
            .status
            .code(),
        Some(7)
    );
    let out = lsusctl(&env, &["block", "--", "/nonexistent/command"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));

    // While the command runs, suspend is blocked by this lsusctl, and
    // status shows why.
    let script = format!(
        "\"{}\" --run-dir \"{}\" status",
        harness::bin("lsusctl").display(),
        env.run.display()
    );
    let out = lsusctl(
        &env,
        &["block", "--why", "unit test", "--", "sh", "-c", &script],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("suspend: BLOCKED by 1 process"), "{t}");
    assert!(t.contains("why: unit test"), "{t}");
    // And not after.
    assert!(text(&lsusctl(&env, &["status"])).contains("suspend: not blocked"));
}

#[test]
fn watch_prints_one_suspend_and_one_resume_and_history_lists_the_outcomes() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let mut text_watch = watch(&env, false);
    let mut json_watch = watch(&env, true);
    env.wait_for("both lsusctl watch registered", DEADLINE, || {
        watchers(&env) == 2
    });

    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", env.dump());
    env.wait_for("both watchers printed the resume", DEADLINE, || {
        text_watch.text().contains("resume") && json_watch.text().contains("\"resume\"")
    });
    // Nothing more comes for one request: a second request's two lines
    // follow the first's directly (anything spurious from the first cycle
    // would come between them).
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", env.dump());
    env.wait_for("both watchers printed the second resume", DEADLINE, || {
        text_watch.text().matches("resume").count() >= 2
            && json_watch.text().matches("\"resume\"").count() >= 2
    });
    let t = text_watch.text();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4, "{t}");
    assert!(lines[2].ends_with("  suspend"), "{t}");
    assert!(lines[3].contains("  resume after "), "{t}");
    assert!(lines[0].ends_with("  suspend"), "{t}");
    assert!(lines[1].contains("  resume after "), "{t}");
    assert!(lines[1].contains("suspended for"), "{t}");
    let j = json_watch.text();
    let lines: Vec<&str> = j.lines().collect();
    assert_eq!(lines.len(), 4, "{j}");
    assert!(
        lines[0].starts_with("{\"version\":1,\"event\":\"suspend\",\"time\":"),
        "{j}"
    );
    assert!(
        lines[1].starts_with("{\"version\":1,\"event\":\"resume\",\"time\":"),
        "{j}"
    );
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        assert_eq!(v["version"], 1, "{line}");
    }
    assert!(lines[1].contains("\"outcome\":{\"seq\":"), "{j}");
    assert!(lines[1].contains("\"suspended\":true"), "{j}");
    kill(&mut text_watch.child);
    kill(&mut json_watch.child);

    // A blocked request, for the history.
    let mut blocker = flock_blocker(&env);
    let pid = blocker.id();
    wait_blocked(&env);
    let mut req = env.request_spawn();
    env.wait_log("lsusd", "blocked by", DEADLINE);
    kill(&mut blocker);
    assert_eq!(req.wait().unwrap().code(), Some(1));

    let out = lsusctl(&env, &["history"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 3, "{t}");
    assert!(lines[0].contains("suspended for"), "{t}");
    assert!(lines[1].contains("suspended for"), "{t}");
    assert!(lines[2].contains(&format!("blocked by PID {pid}")), "{t}");
    let out = lsusctl(&env, &["history", "--json", "-n", "1"]);
    let j = text(&out);
    assert!(
        j.starts_with("[{\"version\":1,\"seq\":3,") && j.contains("\"outcome\":\"blocked\""),
        "{j}"
    );
    assert!(j.contains(&format!("\"pids\":[{pid}]")), "{j}");
    // status shows the same last outcomes.
    let t = text(&lsusctl(&env, &["status"]));
    assert!(
        t.contains("last outcomes:") && t.contains("suspended for"),
        "{t}"
    );
}

#[test]
fn clear_errors_and_exit_codes_without_lsusd_or_permission() {
    let mut env = Env::new();
    let out = lsusctl(&env, &["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("lsusd is not running"),
        "{}",
        text(&out)
    );

    env.start_lsusd(&[]);
    assert_eq!(env.stop(LSUSD).code(), Some(0));
    // The files are left, but nobody holds lsusd.pid.
    for args in [&["status"][..], &["watch"], &["block", "--", "true"]] {
        let out = lsusctl(&env, args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("nobody holds the lock on lsusd.pid"),
            "{}",
            text(&out)
        );
    }

    if !nix::unistd::geteuid().is_root() {
        // Running as another user needs root; CI runs as root, so there a
        // missing check is a failure, not a silent skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but not root: the 'permission denied' check of lsusctl status cannot run"
        );
        eprintln!("note: not root: the 'permission denied' check of lsusctl status is not run");
    } else {
        env.start_lsusd(&[]);
        let out = Command::new(harness::bin("lsusctl"))
            .arg("--run-dir")
            .arg(&env.run)
            .arg("status")
            .uid(65534)
            .gid(65534)
            .output()
            .expect("lsusctl as nobody");
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        assert!(text(&out).contains("permission denied"), "{}", text(&out));
    }
}

#[test]
fn flock_on_disabled_survives_a_restart_of_lsusd() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let inode = std::fs::metadata(env.path("disabled")).unwrap().ino();
    let mut blocker = flock_blocker(&env);
    let pid = blocker.id();
    wait_blocked(&env);

    assert_eq!(env.stop(LSUSD).code(), Some(0), "{}", env.dump());
    env.start_lsusd(&[]);
    assert_eq!(
        std::fs::metadata(env.path("disabled")).unwrap().ino(),
        inode,
        "the restarted lsusd must reuse disabled\n{}",
        env.dump()
    );
    let t = wait_blocked(&env);
    assert!(t.contains(&format!("PID {pid} ")), "{t}");

    // The block is in force: a request waits, nothing is written.
    let mut req = env.request_spawn();
    env.wait_log_count("lsusd", "blocked by", 1, DEADLINE);
    env.assert_stays(
        "no suspend while the old lock is held",
        Duration::from_millis(300),
        || env.state().is_empty(),
    );
    kill(&mut blocker);
    assert_eq!(req.wait().unwrap().code(), Some(1), "{}", env.dump());
    assert!(env.state().is_empty());
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(env.state().trim_end(), "mem");
}

#[test]
fn restarted_lsused_and_wakealarmd_take_over_and_clients_reconnect() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    env.start_socket_daemon("lsused", "registration", &[]);
    env.start_socket_daemon("wakealarmd", "wakealarm", &[]);
    const LSUSED: usize = 1;
    const WAKEALARMD: usize = 2;

    let mut client = WakeEvents::connect_in(&env.run).expect("connect to lsused");
    let (r, w) = nix::unistd::pipe().unwrap();
    client.register(&[&r]).unwrap();
    env.wait_for("lsused publishes the client", DEADLINE, || {
        text(&lsusctl(&env, &["status"])).contains("1 client, 1 registered descriptor")
    });

    // SIGTERM: clean exit, socket and status file gone, pid file left.
    for (i, socket, status) in [
        (LSUSED, "registration", "lsused.status"),
        (WAKEALARMD, "wakealarm", "wakealarmd.status"),
    ] {
        assert_eq!(env.stop(i).code(), Some(0), "{}", env.dump());
        assert!(!env.path(socket).exists(), "{}", env.dump());
        assert!(!env.path(status).exists(), "{}", env.dump());
    }
    let t = text(&lsusctl(&env, &["status"]));
    assert!(
        t.contains("lsused: not running") && t.contains("wakealarmd: not running"),
        "{t}"
    );

    env.start_socket_daemon("lsused", "registration", &[]);
    env.start_socket_daemon("wakealarmd", "wakealarm", &[]);
    // The client hears EOF, connects again and registers its pipe again.
    assert_eq!(
        client
            .wait_timeout(Some(Duration::from_millis(300)))
            .unwrap(),
        None
    );
    assert_eq!(client.reconnects(), 1);
    env.wait_for(
        "the new lsused has the client and its descriptor",
        DEADLINE,
        || text(&lsusctl(&env, &["status"])).contains("1 client, 1 registered descriptor"),
    );

    // And the descriptor works: readable input holds the suspend until R.
    nix::unistd::write(&w, b"x").unwrap();
    let mut req = env.request_spawn();
    assert_eq!(
        client.wait_timeout(Some(DEADLINE)).unwrap(),
        Some(WakeEvent::SuspendImminent),
        "{}",
        env.dump()
    );
    client.ready().unwrap();
    assert_eq!(req.wait().unwrap().code(), Some(0), "{}", env.dump());

    // The new wakealarmd serves alarms.
    let when = std::time::SystemTime::now() + Duration::from_secs(3600);
    let _alarm = libsus::WakeAlarm::new_in(&env.run, when).expect("an alarm from wakealarmd");
    env.wait_for("the new wakealarmd publishes the alarm", DEADLINE, || {
        text(&lsusctl(&env, &["status"])).contains("1 connection, 1 alarm pending (next ")
    });
}

#[test]
fn status_names_the_watchers_not_ready_and_for_how_long() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let mut slow = libsus::Watcher::open_in(&env.run).unwrap();
    let req = env.request_spawn();
    assert_eq!(slow.wait().unwrap(), libsus::WatchEvent::SuspendImminent);
    let me = std::process::id();
    let out = lsusctl(&env, &["status"]);
    let t = text(&out);
    assert!(t.contains("a suspend attempt is in progress for "), "{t}");
    assert!(
        t.contains(&format!("waiting for 1 watcher not ready yet: PID {me} ")),
        "{t}"
    );
    let out = lsusctl(&env, &["status", "--json"]);
    let t = text(&out);
    assert!(t.contains(&format!("\"not_ready\":[{{\"pid\":{me}")), "{t}");
    assert!(t.contains("\"running\":true"), "{t}");
    slow.ready().unwrap();
    let out = req.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn status_json_with_lsusd_stopped_says_running_false_and_history_says_when_empty() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let out = lsusctl(&env, &["history"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("no outcomes recorded yet"),
        "{}",
        text(&out)
    );
    env.stop(0);
    let out = lsusctl(&env, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("{\"version\":1,\"running\":false,\"run_dir\":"),
        "{stdout}"
    );
}

#[test]
fn watch_says_when_lsusd_stops_and_follow_waits_for_the_next_one() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let run = env.run.clone();
    let spawn = |args: &[&str]| {
        Command::new(harness::bin("lsusctl"))
            .arg("--run-dir")
            .arg(&run)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let plain = spawn(&["watch"]);
    let mut follow = spawn(&["watch", "--follow"]);
    let watching = env.path("watching");
    let registered = move |pid: u32| {
        let meta = std::fs::metadata(&watching).unwrap();
        lsus_sys::proclocks::holders(meta.dev(), meta.ino())
            .unwrap_or_default()
            .iter()
            .any(|h| h.pid == pid)
    };
    let (p1, p2) = (plain.id(), follow.id());
    env.wait_for("both watches registered", DEADLINE, || {
        registered(p1) && registered(p2)
    });
    env.stop(0);
    let out = plain.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("stopped; the watch ends"),
        "{}",
        text(&out)
    );
    // --follow lets go of the old registration while it waits: a new
    // lsusd that keeps this `watching` would take the stale lock for a
    // watcher and wait for it in its first attempt (the request below
    // then timed out: exit 2, seen once in CI).
    env.wait_for("the follower let go of the old watching", DEADLINE, || {
        !registered(p2)
    });
    // --follow waits, then watches the new lsusd.
    env.start_lsusd(&[]);
    env.wait_for("the follower registered again", DEADLINE, || registered(p2));
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.dump());
    let mut stdout = follow.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("resume") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "follower ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let _ = follow.kill();
    let out = follow.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("waiting for it to start again"), "{err}");
    assert!(seen.contains("suspend"), "{seen}");
}
