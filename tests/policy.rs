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
        .args(["sh", "-c", "echo locked; exec cat >/dev/null"])
        .stdin(Stdio::piped())
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

// ----- 2. forced suspend --------------------------------------------------------

/// Runs `request-suspend --force --why WHY` (as another user when `as_user`
/// gives `(uid, gid, groups)`, through setpriv(1)).
fn force(env: &Env, why: &str, as_user: Option<(u32, u32, &[u32])>) -> Output {
    let mut cmd = match as_user {
        Some((uid, gid, groups)) => {
            let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg(format!("--groups={}", groups.join(",")))
                .arg(harness::bin("request-suspend"));
            c
        }
        None => Command::new(harness::bin("request-suspend")),
    };
    cmd.arg("--run-dir")
        .arg(&env.run)
        .args(["--timeout", "30", "--force", "--why", why])
        .output()
        .expect("request-suspend --force")
}

/// Returns true if and only if a shared lock on `disabled` is held (an
/// exclusive try-lock through a description of our own fails).
fn disabled_is_locked(env: &Env) -> bool {
    let f = std::fs::File::open(env.path("disabled")).unwrap();
    !lsus_sys::lock::try_lock(&f, lsus_sys::lock::LockKind::Exclusive).unwrap()
}

#[test]
fn forced_request_suspends_over_a_flock_block_and_names_what_it_overrode() {
    let mut env = Env::new();
    env.start_lsusd(&["--dry-run", "--dry-run-sleep", "0.1"]);
    let blocker = flock_holder(&env, "-s", "disabled");
    let pid = blocker.0.id();
    // Blocked for a plain request (lsusd now waits for the blocker) …
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out), env.dump());
    assert!(
        text(&out).contains(&format!("blocked by PID {pid} (flock")),
        "{}",
        text(&out)
    );
    // … but not for a forced one, which ends that wait.
    let out = force(&env, "lid closed in a bag", None);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.dump());
    assert!(
        text(&out).contains(&format!("forced over the block of PID {pid} (flock)")),
        "{}",
        text(&out)
    );
    let record = env.outcome().unwrap();
    assert_eq!(record.outcome, Outcome::DryRun { missing: vec![] });
    assert!(record.details.forced);
    assert_eq!(record.details.why.as_deref(), Some("lid_closed_in_a_bag"));
    assert_eq!(record.details.by, Some(0));
    assert_eq!(
        record.details.overrode,
        vec![Named {
            pid,
            command: "flock".into()
        }]
    );
    let raw = std::fs::read_to_string(env.path("outcome")).unwrap();
    assert!(
        raw.contains(&format!(
            "forced=1 why=lid_closed_in_a_bag by=0 overrode={pid}:flock"
        )),
        "{raw}"
    );
    env.wait_log(
        "lsusd",
        "forced request by UID 0 (lid closed in a bag): going over the block of",
        harness::DEADLINE,
    );
    // The blocker was told nothing and still holds its lock; the request
    // is gone.
    assert!(disabled_is_locked(&env));
    assert!(!env.run.join("force/request").exists());
    // History and status show what happened.
    let history = text(&lsusctl(&env, &["history"]));
    assert!(
        history.contains(&format!(
            "forced by UID 0 (lid_closed_in_a_bag); over the block of PID {pid} (flock)"
        )),
        "{history}"
    );
    let status = text(&lsusctl(&env, &["status"]));
    assert!(status.contains("forced by UID 0"), "{status}");
    let json = text(&lsusctl(&env, &["history", "--json"]));
    assert!(
        json.contains(&format!(
            "\"forced\":true,\"why\":\"lid_closed_in_a_bag\",\"by\":0,\"overrode\":[{{\"pid\":{pid},\"command\":\"flock\"}}]"
        )),
        "{json}"
    );
    // Plain requests are blocked again.
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out), env.dump());
    drop(blocker);
}

/// A forced attempt still honours the `wakeup_count` handshake, on the
/// host with a real `EINVAL` from the kernel (as tests/lsusd.rs does for a
/// plain request): while a watcher holds the forced attempt at "imminent"
/// (the count is read by then), the fake `power/wakeup_count` becomes a
/// link to `/proc/self/clear_refs`, which answers the count 7 with EINVAL.
/// The attempt ends `wakeup-event`, nothing is written to `power/state`,
/// and the blocker it went over still holds its lock.
#[test]
fn a_forced_attempt_still_ends_on_a_count_the_kernel_rejects() {
    use std::os::fd::AsFd;
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let blocker = flock_holder(&env, "-s", "disabled");
    let old = std::fs::File::open(env.path("watching")).unwrap();
    lsus_sys::lock::lock(old.as_fd(), lsus_sys::lock::LockKind::Shared).unwrap();
    let forced = Command::new(harness::bin("request-suspend"))
        .arg("--run-dir")
        .arg(&env.run)
        .args(["--timeout", "30", "--force", "--why", "battery critical"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("request-suspend --force");
    env.wait_for("the forced attempt at imminent", harness::DEADLINE, || {
        old.metadata().is_ok_and(|m| m.len() == 1)
    });
    let count = env.sys.join("power/wakeup_count");
    std::fs::remove_file(&count).unwrap();
    std::os::unix::fs::symlink("/proc/self/clear_refs", &count).unwrap();
    let next = std::fs::File::open(env.path("watching-next")).unwrap();
    lsus_sys::lock::lock(next.as_fd(), lsus_sys::lock::LockKind::Shared).unwrap();
    lsus_sys::lock::unlock(old.as_fd()).unwrap();
    let out = forced.wait_with_output().unwrap();
    let record = env.outcome().expect("an outcome record");
    assert_eq!(
        record.outcome,
        Outcome::WakeupEvent,
        "{record}\n{}\n{}",
        text(&out),
        env.dump()
    );
    assert!(record.details.forced, "{record}");
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.state(), "", "no state written after a rejected count");
    assert!(disabled_is_locked(&env), "the blocker still holds its lock");
    drop(blocker);
}

#[test]
fn force_is_refused_to_a_member_of_suspend_alone_by_the_kernel() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but not root: the permission check of --force cannot run"
        );
        eprintln!("note: not root: the permission check of --force is not run");
        return;
    }
    // Group 64242 plays `suspend` (the run directory's), 64243
    // `suspend-force`; user 65534 is a member of the first, then of both.
    const SUSPEND: u32 = 64242;
    const FORCE: u32 = 64243;
    let mut env = Env::new();
    std::fs::set_permissions(env.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The run directory as tmpfiles.d makes it, before lsusd starts: what
    // lsusd makes in it (records/, where the member reads the outcome)
    // gets its group.
    std::fs::create_dir(&env.run).unwrap();
    nix::unistd::chown(&env.run, None, Some(SUSPEND.into())).unwrap();
    std::fs::set_permissions(&env.run, std::fs::Permissions::from_mode(0o2770)).unwrap();
    env.start_lsusd(&[
        "--dry-run",
        "--dry-run-sleep",
        "0.1",
        "--force-group",
        "64243",
    ]);
    let meta = std::fs::metadata(env.run.join("force")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (0, FORCE, 0o770)
    );

    let out = force(&env, "x", Some((65534, SUSPEND, &[SUSPEND])));
    assert_eq!(out.status.code(), Some(2), "{}\n{}", text(&out), env.dump());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "request-suspend: not permitted to force suspend: not root and not in group \
         suspend-force\n"
    );
    assert!(!env.run.join("force/request").exists());
    assert_eq!(env.outcome_seq(), 0, "no attempt\n{}", env.dump());

    // A member of both may.
    let out = force(&env, "battery", Some((65534, SUSPEND, &[SUSPEND, FORCE])));
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.dump());
    let record = env.outcome().unwrap();
    assert!(record.details.forced);
    assert_eq!(record.details.by, Some(65534));
}

// ----- 3. timed blocks ------------------------------------------------------------

/// Reads the deadline `pid` declared in `RUN/until`.
fn declared_deadline(env: &Env, pid: u32) -> Option<std::time::SystemTime> {
    let text = std::fs::read_to_string(env.run.join(format!("until/{pid}"))).ok()?;
    Some(
        text.parse::<lsus_proto::until::Declaration>()
            .ok()?
            .deadline,
    )
}

#[test]
fn timed_block_of_a_stopped_holder_blocks_until_its_deadline_then_not() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let mut env = Env::new();
    env.start_lsusd(&["--dry-run", "--dry-run-sleep", "0.1"]);
    let holder = Reaped(
        Command::new(harness::bin("lsusctl"))
            .arg("--run-dir")
            .arg(&env.run)
            .args(["block", "--for", "4s", "--why", "timed"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = holder.0.id();
    env.wait_for(
        "lsusctl block --for declared its deadline",
        harness::DEADLINE,
        || declared_deadline(&env, pid).is_some() && disabled_is_locked(&env),
    );
    let deadline = declared_deadline(&env, pid).unwrap();
    // Stopped: its own timer thread cannot let go.
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    // Before the deadline it blocks, and lsusctl status shows the time left.
    let status = text(&lsusctl(&env, &["status"]));
    assert!(
        status.contains("timed block: ") && status.contains(" s left"),
        "{status}"
    );
    let out = env.request(&[]);
    assert!(
        std::time::SystemTime::now() < deadline,
        "the machine was too slow to ask before the deadline"
    );
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out), env.dump());
    assert!(
        text(&out).contains(&format!("blocked by PID {pid}")),
        "{}",
        text(&out)
    );
    // After it, a request suspends (dry run) over the block, which the
    // stopped holder still holds.
    env.wait_for("the deadline to pass", harness::DEADLINE, || {
        std::time::SystemTime::now() > deadline
    });
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.dump());
    let record = env.outcome().unwrap();
    assert_eq!(record.outcome, Outcome::DryRun { missing: vec![] });
    assert_eq!(
        record.details.expired,
        vec![Named {
            pid,
            command: "lsusctl".into()
        }]
    );
    assert!(!record.details.forced);
    env.wait_log(
        "lsusd",
        &format!("timed block of PID {pid} (lsusctl) expired at"),
        harness::DEADLINE,
    );
    assert!(
        disabled_is_locked(&env),
        "the stopped holder still holds it"
    );
    let status = text(&lsusctl(&env, &["status"]));
    assert!(status.contains("timed block: expired"), "{status}");
    // Woken, it lets go by itself (its timer's deadline has passed).
    kill(Pid::from_raw(pid as i32), Signal::SIGCONT).unwrap();
    env.wait_for("the holder lets go", harness::DEADLINE, || {
        !disabled_is_locked(&env)
    });
    drop(holder);
}

#[test]
fn a_stale_declaration_never_lets_lsusd_go_over_an_untimed_block() {
    use std::os::unix::fs::MetadataExt;
    let mut env = Env::new();
    env.start_lsusd(&["--dry-run", "--dry-run-sleep", "0.1"]);
    let blocker = flock_holder(&env, "-s", "disabled");
    let pid = blocker.0.id();
    let ino = std::fs::metadata(env.path("disabled")).unwrap().ino();
    let start = lsus_sys::process::start_time(pid).unwrap();
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    // Left by an earlier process with the same PID (another start time),
    // or for another `disabled`: both expired long ago.
    for (start, ino) in [(start + 1, ino), (start, ino + 1)] {
        let d = lsus_proto::until::Declaration {
            deadline: past,
            start,
            ino,
        };
        std::fs::write(env.run.join(format!("until/{pid}")), d.to_string()).unwrap();
        let out = env.request(&[]);
        assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out), env.dump());
    }
    assert!(
        !env.log("lsusd").contains("timed block of"),
        "{}",
        env.dump()
    );
    drop(blocker);
}

#[test]
fn block_for_lets_go_at_the_deadline_while_the_guard_lives_or_at_drop() {
    let mut env = Env::new();
    env.start_lsusd(&["--dry-run", "--dry-run-sleep", "0.1"]);
    let blocker = libsus::Blocker::open_in(&env.run).unwrap();
    // The caller's thread keeps the guard (as if stuck) …
    let timed = blocker.block_for(Duration::from_millis(500)).unwrap();
    assert!(disabled_is_locked(&env));
    assert!(env
        .run
        .join(format!("until/{}", std::process::id()))
        .exists());
    env.wait_for(
        "the timed block to end by itself",
        harness::DEADLINE,
        || !disabled_is_locked(&env),
    );
    // The timer thread ends just after it let go.
    env.wait_for("the timer to end", harness::DEADLINE, || timed.is_over());
    assert!(!env
        .run
        .join(format!("until/{}", std::process::id()))
        .exists());
    drop(timed);
    // … or drops it first.
    let timed = blocker.block_for(Duration::from_secs(3600)).unwrap();
    assert!(disabled_is_locked(&env));
    drop(timed);
    // The drop lets go at once, but a child another test thread of this
    // process is spawning (fork, then exec) holds a copy of every
    // descriptor until its exec closes it: wait for that, do not assert.
    env.wait_for("the lock to go with the guard", harness::DEADLINE, || {
        !disabled_is_locked(&env)
    });
    assert!(!env
        .run
        .join(format!("until/{}", std::process::id()))
        .exists());
}
