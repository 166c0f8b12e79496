//! request-suspend through the real binaries (doc/protocol.md §7): the
//! blocked answer at once with the holders' names, `--wait`, any lsusd
//! (one that keeps no PID file, as the original), lsusd dying while a
//! request waits, and files planted at names lsusd writes.

mod harness;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use harness::{bin, sh_spawn, Env, DEADLINE};
use libsus::Watcher;

fn exit_code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs request-suspend with exactly `args` (no default --timeout).
fn request(env: &Env, args: &[&str]) -> std::process::Output {
    Command::new(bin("request-suspend"))
        .arg("--run-dir")
        .arg(&env.run)
        .args(args)
        .output()
        .unwrap()
}

/// Reads the child's first line of output ("locked").
fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

/// A holder of a block in the shell idiom of doc/protocol.md §1.1:
/// flock(1) locks the shell's descriptor and exits; the shell holds it
/// until its stdin closes.
fn shell_blocker(env: &Env) -> Child {
    let mut c = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 9<"$1"; flock --shared 9 || exit 1; echo locked; read _"#)
        .arg("sh")
        .arg(env.path("disabled"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut c), "locked\n");
    c
}

/// Ends a blocker started with a piped stdin.
fn release(mut c: Child) {
    drop(c.stdin.take());
    c.wait().unwrap();
}

#[test]
fn blocked_request_is_answered_at_once_naming_every_live_holder() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let shell = shell_blocker(&env);
    // A second holder: flock(1) itself, holding while `cat` runs.
    let mut held = Command::new("flock")
        .arg("--shared")
        .arg(env.path("disabled"))
        .args(["sh", "-c", "echo locked; exec cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut held), "locked\n");

    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 1, "{}\n{}", text(&out), env.dump());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let shell_line = format!("blocked by PID {} (sh -c exec 9<", shell.id());
    let flock_line = format!("blocked by PID {} (flock --shared ", held.id());
    assert!(lines.iter().any(|l| l.starts_with(&shell_line)), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with(&flock_line)), "{stdout}");
    // The record was written while the blockers hold: the request is still
    // there, to be dropped when they leave.
    let record = env.outcome().expect("a record");
    assert!(
        matches!(&record.outcome, lsus_proto::outcome::Outcome::Blocked { pids }
            if pids.contains(&shell.id()) && pids.contains(&held.id())),
        "{record:?}"
    );
    assert!(env.path("request").exists(), "{}", env.dump());
    // lsusd's log names the shell too, not the flock(1) that has exited.
    env.wait_log("lsusd", &format!("{} (sh)", shell.id()), DEADLINE);

    release(shell);
    release(held);
    env.wait_for("the blocked request dropped", DEADLINE, || {
        !env.path("request").exists()
    });
    env.assert_stays(
        "a blocked request is never honoured later",
        Duration::from_millis(200),
        || env.state().is_empty() && env.outcome_seq() == record.seq,
    );
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 0, "{}", text(&out));
}

#[test]
fn request_inside_a_block_exits_1_at_once() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // lsusctl block -- request-suspend: it used to wait for itself.
    let out = Command::new(bin("lsusctl"))
        .arg("--run-dir")
        .arg(&env.run)
        .args(["block", "--why", "test", "--"])
        .arg(bin("request-suspend"))
        .arg("--run-dir")
        .arg(&env.run)
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 1, "{}\n{}", text(&out), env.dump());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("lsusctl --run-dir"),
        "{}",
        text(&out)
    );
    // flock -s disabled request-suspend: the same, and a second request
    // while lsusd still waits for the first one's blockers is answered too.
    let mut first = Command::new("flock")
        .arg("-s")
        .arg(env.path("disabled"))
        .args(["sh", "-c"])
        .arg(r#""$0" --run-dir "$1"; echo "exit $?"; exec cat"#)
        .arg(bin("request-suspend"))
        .arg(&env.run)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let said = lines.next().unwrap().unwrap();
    assert!(said.starts_with("blocked by PID "), "{said}");
    assert_eq!(lines.next().unwrap().unwrap(), "exit 1");
    let seq = env.outcome_seq();
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 1, "{}\n{}", text(&out), env.dump());
    assert!(text(&out).contains("blocked by PID"), "{}", text(&out));
    assert!(env.outcome_seq() > seq);
    drop(first.stdin.take());
    first.wait().unwrap();
    assert_eq!(env.state(), "");
}

#[test]
fn wait_suspends_once_the_blocker_leaves() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let shell = shell_blocker(&env);
    let mut req = Command::new(bin("request-suspend"))
        .arg("--run-dir")
        .arg(&env.run)
        .args(["--wait", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.wait_for("the blocked answer", DEADLINE, || {
        env.outcome().is_some_and(|r| r.outcome.word() == "blocked")
    });
    env.assert_stays("--wait waits", Duration::from_millis(300), || {
        req.try_wait().unwrap().is_none()
    });
    release(shell);
    let out = req.wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 0, "{}\n{}", text(&out), env.dump());
    assert_eq!(env.state(), "mem\n");

    // Bounded by --timeout: the request is withdrawn.
    let shell = shell_blocker(&env);
    let out = request(&env, &["--wait", "--timeout", "0.5"]);
    assert_eq!(exit_code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("no answer after"), "{}", text(&out));
    assert!(!env.path("request").exists(), "{}", env.dump());
    release(shell);
}

#[test]
fn lsusd_killed_while_a_request_waits_is_exit_2() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // A watcher that never says ready keeps the attempt going.
    let _stuck = Watcher::open_in(&env.run).unwrap();
    let req = env.request_spawn();
    env.wait_for("the attempt under way", DEADLINE, || {
        fs::metadata(env.path("watching")).is_ok_and(|m| m.len() > 0)
    });
    env.daemons[0].child.kill().unwrap();
    env.daemons[0].child.wait().unwrap();
    let out = req.wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("stopped while the request waited; the request was withdrawn"),
        "{}",
        text(&out)
    );
    assert!(!env.path("request").exists());
}

/// What the original lsusd does with `request`, and nothing more: no PID
/// file, no outcome record. `disabled` and an empty `watching` exist; on a
/// request it tries `disabled`; blocked, it waits for the blockers and
/// drops the request; free, it runs the watcher cycle (one byte, the lock,
/// the rename of `watching-next`, two bytes) and removes `request`.
struct Original {
    stop: Arc<AtomicBool>,
    /// How many requests it found blocked (for the test to synchronise on).
    blocked: Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Original {
    fn start(run: &std::path::Path) -> Original {
        use lsus_sys::lock::{lock, try_lock, unlock, LockKind};
        use std::io::Write;
        fs::create_dir_all(run).unwrap();
        let disabled = fs::File::create(run.join("disabled")).unwrap();
        fs::write(run.join("watching"), b"").unwrap();
        fs::write(run.join("watching-next"), b"").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let blocked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = blocked.clone();
        let run = run.to_path_buf();
        let mut watch =
            lsus_sys::dirwatch::DirWatch::new(&run, inotify::WatchMask::CREATE).unwrap();
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                if !run.join("request").exists() {
                    // (the original's dnotify wait; here with a deadline so
                    // the test can end it)
                    let _ = watch.wait(Some(Duration::from_millis(100)));
                    let _ = watch.drain(|_, _| {});
                    continue;
                }
                if !try_lock(&disabled, LockKind::Exclusive).unwrap() {
                    seen.fetch_add(1, Ordering::SeqCst);
                    lock(&disabled, LockKind::Exclusive).unwrap();
                    unlock(&disabled).unwrap();
                    let _ = fs::remove_file(run.join("request"));
                    continue;
                }
                unlock(&disabled).unwrap();
                let mut w = fs::OpenOptions::new()
                    .write(true)
                    .open(run.join("watching"))
                    .unwrap();
                w.write_all(&[0]).unwrap();
                lock(&w, LockKind::Exclusive).unwrap();
                fs::rename(run.join("watching-next"), run.join("watching")).unwrap();
                w.write_all(&[0, 0]).unwrap();
                drop(w);
                fs::write(run.join("watching-next"), b"").unwrap();
                let _ = fs::remove_file(run.join("request"));
            }
        });
        Original {
            stop,
            blocked,
            thread: Some(thread),
        }
    }
}

impl Drop for Original {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn an_lsusd_without_pid_file_is_served_as_the_original() {
    let env = Env::new();
    let original = Original::start(&env.run);
    assert!(!env.path("lsusd.pid").exists());
    let inode = env.watching_inode();
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 0, "{}\n{}", text(&out), env.dump());
    assert!(
        text(&out).contains("cannot be told from an aborted attempt"),
        "{}",
        text(&out)
    );
    assert_ne!(env.watching_inode(), inode, "a cycle ran");

    // Blocked: refused once the blocker leaves (the original answers then).
    let shell = shell_blocker(&env);
    let req = env.request_spawn();
    env.wait_for("the original to find the request blocked", DEADLINE, || {
        original.blocked.load(Ordering::SeqCst) == 1
    });
    release(shell);
    let out = req.wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 1, "{}\n{}", text(&out), env.dump());
    assert!(text(&out).contains("refused"), "{}", text(&out));

    // --timeout still gives up cleanly.
    let shell = shell_blocker(&env);
    let out = request(&env, &["--timeout", "0.3"]);
    assert_eq!(exit_code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("no answer after"), "{}", text(&out));
    release(shell);
}

#[test]
fn an_unlocked_pid_file_or_no_disabled_is_no_lsusd() {
    let env = Env::new();
    fs::create_dir_all(&env.run).unwrap();
    fs::write(env.path("watching"), b"").unwrap();
    // No `disabled`: nobody serves the directory.
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("lsusd is not running"),
        "{}",
        text(&out)
    );
    // `disabled` and an lsusd.pid nobody locks: ours, and gone.
    fs::write(env.path("disabled"), b"\n").unwrap();
    fs::write(env.path("lsusd.pid"), b"4242\n").unwrap();
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("lsusd is not running"),
        "{}",
        text(&out)
    );
    assert!(!env.path("request").exists());
}

/// Plants a non-empty directory, a FIFO or a socket at `name`.
fn plant(env: &Env, name: &str, kind: &str) -> Option<std::os::unix::net::UnixListener> {
    let path = env.path(name);
    let _ = fs::remove_file(&path);
    match kind {
        "directory" => {
            fs::create_dir(&path).unwrap();
            fs::write(path.join("mine"), b"x").unwrap();
            None
        }
        "fifo" => {
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
            None
        }
        "socket" => Some(std::os::unix::net::UnixListener::bind(&path).unwrap()),
        _ => unreachable!(),
    }
}

#[test]
fn things_planted_at_disabled_are_moved_aside_and_lsusd_goes_on() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let me = nix::unistd::getuid().as_raw();
    for (i, kind) in ["directory", "fifo", "socket"].into_iter().enumerate() {
        let _socket = plant(&env, "disabled", kind);
        let out = env.request(&[]);
        assert_eq!(exit_code(&out), 0, "{kind}: {}\n{}", text(&out), env.dump());
        assert!(fs::metadata(env.path("disabled")).unwrap().is_file());
        let needle = format!("moved aside to disabled.planted-{kind}.");
        env.wait_log_count("lsusd", &needle, 1, DEADLINE);
        let line = env.log("lsusd");
        let line = line.lines().find(|l| l.contains(&needle)).unwrap();
        assert!(line.contains(&format!("uid {me}")), "{line}");
        let aside: Vec<String> = fs::read_dir(&env.run)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("disabled.planted-"))
            .collect();
        assert_eq!(aside.len(), i + 1, "{aside:?}");
        assert!(env.exited(0).is_none());
    }
    let moved = fs::read_dir(&env.run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("disabled.planted-directory."))
        .unwrap();
    assert_eq!(
        fs::read(moved.join("mine")).unwrap(),
        b"x",
        "kept, not deleted"
    );
}

#[test]
fn things_planted_before_start_at_every_name_lsusd_writes_are_moved_aside() {
    let mut env = Env::new();
    fs::create_dir_all(&env.run).unwrap();
    let _a = plant(&env, "disabled", "directory");
    let _b = plant(&env, "watching", "fifo");
    let _c = plant(&env, "watching-next", "socket");
    let _d = plant(&env, "outcome", "directory");
    let _e = plant(&env, "request", "directory");
    let _f = plant(&env, "lsusd.pid", "fifo");
    fs::write(env.path("log"), b"not a directory").unwrap();
    env.start_lsusd(&[]);
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 0, "{}\n{}", text(&out), env.dump());
    for name in [
        "disabled",
        "watching",
        "watching-next",
        "outcome",
        "request",
        "lsusd.pid",
        "log",
    ] {
        let aside = fs::read_dir(&env.run)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .any(|n| n.starts_with(&format!("{name}.planted-")));
        assert!(aside, "{name} not moved aside\n{}", env.dump());
    }
    let log = env.log("lsusd");
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .map_or(String::new(), |u| u.name);
    assert!(log.contains(&format!("owned by {user}")), "{log}");
    assert!(fs::metadata(env.path("log")).unwrap().is_dir());
    assert!(env.path("log/history").exists());
    let ino = fs::metadata(env.path("disabled")).unwrap().ino();
    assert!(ino > 0 && env.exited(0).is_none());
}

#[test]
fn a_watcher_nag_names_the_shell_behind_an_exited_flock() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // A shell watcher whose lock on `watching` was taken by flock(1) on the
    // shell's descriptor: the nag must name the shell.
    let mut shell = sh_spawn(
        r#"exec 8<"$RUN/watching"; flock --shared 8 || exit 1; echo locked; exec sleep 60"#,
        &env.run,
    );
    assert_eq!(first_line(&mut shell), "locked\n");
    let req = env.request_spawn();
    env.wait_log(
        "lsusd",
        &format!("watchers to be ready: {} (sleep)", shell.id()),
        Duration::from_secs(20),
    );
    let _ = shell.kill();
    shell.wait().unwrap();
    let out = req.wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 0, "{}\n{}", text(&out), env.dump());
}
