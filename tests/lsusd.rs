//! lsusd, request-suspend and libsus end to end: the real binaries on a
//! temp run directory and a fake sysfs tree, driven by real clients
//! (libsus, flock(1), plain shell).

mod harness;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use harness::{sh_spawn, Env, DEADLINE};
use libsus::{Blocker, WatchEvent, Watcher};

fn exit_code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn request_with_nothing_blocking_writes_mem_and_exits_0() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 0, "{}\n{}", text(&out), env.dump());
    assert_eq!(env.state(), "mem\n");
    assert!(
        text(&out).contains("suspended and resumed"),
        "{}",
        text(&out)
    );
    assert!(!env.path("request").exists());
    env.wait_log(
        "lsusd",
        "suspend (request): suspended and resumed",
        DEADLINE,
    );
}

#[test]
fn state_option_selects_freeze() {
    let mut env = Env::new();
    env.start_lsusd(&["--state", "freeze"]);
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 0, "{}", text(&out));
    assert_eq!(env.state(), "freeze\n");
}

#[test]
fn dry_run_writes_nothing_but_reports_success() {
    let mut env = Env::new();
    env.start_lsusd(&["--dry-run"]);
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 0, "{}", text(&out));
    assert_eq!(env.state(), "");
    assert!(text(&out).contains("dry run"), "{}", text(&out));
    env.wait_log("lsusd", "dry run: not writing", DEADLINE);
}

#[test]
fn flock_shared_on_disabled_blocks_then_next_request_suspends() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // A shell script holding a shared flock(1) on `disabled` for a while.
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut holder = Command::new("flock")
        .args(["--shared"])
        .arg(env.path("disabled"))
        .args(["sh", "-c", "echo locked; read _"])
        .stdin(Stdio::from(std::fs::File::from(r)))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "locked\n");
    let req = env.request_spawn();
    env.wait_log("lsusd", "blocked by PID", DEADLINE);
    env.assert_stays(
        "nothing written while blocked",
        Duration::from_millis(200),
        || env.state().is_empty(),
    );
    drop(w); // the script ends, its lock goes
    holder.wait().unwrap();
    let out = req.wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 1, "{}\n{}", text(&out), env.dump());
    assert!(text(&out).contains("blocked by PID"), "{}", text(&out));
    assert_eq!(env.state(), "", "a blocked request is dropped, not kept");
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 0, "{}", text(&out));
    assert_eq!(env.state(), "mem\n");
}

#[test]
fn reading_disabled_during_notification_aborts() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let run = env.run.clone();
    let mut w = Watcher::open_in(&run).unwrap();
    let watcher = thread::spawn(move || {
        assert_eq!(w.wait().unwrap(), WatchEvent::SuspendImminent);
        // What the original's clients did: read one byte of `disabled`.
        let mut f = fs::File::open(run.join("disabled")).unwrap();
        let mut b = [0u8; 1];
        std::io::Read::read(&mut f, &mut b).unwrap();
        w.ready().unwrap();
        assert_eq!(w.wait().unwrap(), WatchEvent::Resumed);
    });
    let out = env.request(&[]);
    watcher.join().unwrap();
    assert_eq!(exit_code(&out), 1, "{}\n{}", text(&out), env.dump());
    assert!(text(&out).contains("aborted"), "{}", text(&out));
    assert_eq!(env.state(), "");
}

#[test]
fn immediate_held_by_flock_suspends_repeatedly_and_stops_when_released() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // -o: the lock stays with flock(1) itself, so killing it releases it.
    let mut holder = sh_spawn("exec flock -x -o \"$RUN/immediate\" sleep 1000", &env.run);
    env.wait_for("three suspends in immediate mode", DEADLINE, || {
        env.outcome_seq() >= 3
    });
    // lsusd may be between its O_TRUNC and its write of the next cycle.
    env.wait_for("mem written to power/state", DEADLINE, || {
        env.state() == "mem\n"
    });
    holder.kill().unwrap();
    holder.wait().unwrap();
    // lsusd notices the missing owner at its next look and stops.
    env.wait_for("stale immediate removed", DEADLINE, || {
        !env.path("immediate").exists()
    });
    let seq = env.outcome_seq();
    env.assert_stays("no more attempts", Duration::from_millis(300), || {
        env.outcome_seq() == seq
    });
}

#[test]
fn stale_immediate_is_removed_after_the_grace_period_without_suspend() {
    let mut env = Env::new();
    env.start_lsusd(&["--immediate-grace-ms", "300"]);
    fs::write(env.path("immediate"), b"").unwrap();
    env.wait_for("stale immediate removed", DEADLINE, || {
        !env.path("immediate").exists()
    });
    env.wait_log("lsusd", "removed stale immediate", DEADLINE);
    assert_eq!(env.outcome_seq(), 0);
    assert_eq!(env.state(), "");
}

#[test]
fn create_then_lock_of_immediate_never_loses_immediate_mode() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let path = env.path("immediate");
    for round in 0..200u64 {
        let seq = env.outcome_seq();
        // Create, and only then lock, with a varying gap: the window in
        // which lsusd finds the file unlocked.
        let file = fs::File::create(&path).unwrap();
        thread::sleep(Duration::from_micros((round * 97) % 3000));
        lsus_sys::lock::lock(&file, lsus_sys::lock::LockKind::Exclusive).unwrap();
        let same =
            fs::metadata(&path).map(|m| m.ino()).ok() == Some(file.metadata().unwrap().ino());
        assert!(
            same,
            "round {round}: lsusd removed the file before it was locked\n{}",
            env.dump()
        );
        env.wait_for(&format!("round {round}: a suspend"), DEADLINE, || {
            env.outcome_seq() > seq
        });
        fs::remove_file(&path).unwrap();
        drop(file);
    }
}

#[test]
fn slow_watcher_delays_the_state_write_until_ready() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let mut w = Watcher::open_in(&env.run).unwrap();
    let state = env.sys.join("power/state");
    let watcher = thread::spawn(move || {
        assert_eq!(w.wait().unwrap(), WatchEvent::SuspendImminent);
        for _ in 0..30 {
            assert_eq!(
                fs::read_to_string(&state).unwrap(),
                "",
                "written before ready"
            );
            thread::sleep(Duration::from_millis(10));
        }
        w.ready().unwrap();
        assert_eq!(w.wait().unwrap(), WatchEvent::Resumed);
        fs::read_to_string(&state).unwrap()
    });
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 0, "{}", text(&out));
    assert_eq!(
        watcher.join().unwrap(),
        "mem\n",
        "state after the resume signal"
    );
}

/// doc/protocol.md §1.4 byte for byte, as a raw client of the original
/// sees it through its descriptor of `watching`: one 0x00 when suspend is
/// imminent, two more 0x00 after resume, and the new `watching` empty.
#[test]
fn the_old_watching_gets_one_zero_byte_then_two_more() {
    use std::io::{Read, Seek};
    use std::os::fd::AsFd;
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let mut old = fs::File::open(env.path("watching")).unwrap();
    lsus_sys::lock::lock(old.as_fd(), lsus_sys::lock::LockKind::Shared).unwrap();
    let req = env.request_spawn();
    env.wait_for("the imminent byte", DEADLINE, || {
        old.metadata().is_ok_and(|m| m.len() == 1)
    });
    let mut bytes = Vec::new();
    old.read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, [0u8], "suspend imminent: one zero byte");
    // Registered for the next cycle, then ready.
    let next = fs::File::open(env.path("watching-next")).unwrap();
    lsus_sys::lock::lock(next.as_fd(), lsus_sys::lock::LockKind::Shared).unwrap();
    lsus_sys::lock::unlock(old.as_fd()).unwrap();
    let out = req.wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 0, "{}\n{}", text(&out), env.dump());
    old.rewind().unwrap();
    bytes.clear();
    old.read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, [0u8, 0, 0], "after resume: two more zero bytes");
    let now = fs::metadata(env.path("watching")).unwrap();
    assert_eq!(
        now.ino(),
        next.metadata().unwrap().ino(),
        "watching-next became watching"
    );
    assert_eq!(now.len(), 0, "the new watching is empty");
}

/// The kernel rejecting the count written back (doc/protocol.md §2 step 7:
/// a wakeup event since the read) on the host, with a real `EINVAL` from
/// the kernel: while lsusd waits for a watcher (the count is read by then),
/// the fake `power/wakeup_count` becomes a symbolic link to
/// `/proc/self/clear_refs`, which for the writing process (lsusd) accepts
/// only 1 to 5 and answers the fake count, 7, with EINVAL, changing
/// nothing. lsusd must record `wakeup-event`, write no state, give the
/// watcher its two zero bytes, and the requester must hear it.
#[test]
fn a_count_the_kernel_rejects_with_einval_is_a_wakeup_event() {
    use std::io::{Read, Seek};
    use std::os::fd::AsFd;
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let mut old = fs::File::open(env.path("watching")).unwrap();
    lsus_sys::lock::lock(old.as_fd(), lsus_sys::lock::LockKind::Shared).unwrap();
    let req = env.request_spawn();
    env.wait_for("suspend imminent (the count is read)", DEADLINE, || {
        old.metadata().is_ok_and(|m| m.len() == 1)
    });
    let count = env.sys.join("power/wakeup_count");
    assert_eq!(fs::read_to_string(&count).unwrap(), "7\n");
    fs::remove_file(&count).unwrap();
    std::os::unix::fs::symlink("/proc/self/clear_refs", &count).unwrap();
    let next = fs::File::open(env.path("watching-next")).unwrap();
    lsus_sys::lock::lock(next.as_fd(), lsus_sys::lock::LockKind::Shared).unwrap();
    lsus_sys::lock::unlock(old.as_fd()).unwrap();
    let out = req.wait_with_output().unwrap();
    let record = env.outcome().expect("an outcome record");
    assert_eq!(
        record.outcome.word(),
        "wakeup-event",
        "{record}\n{}",
        env.dump()
    );
    assert_eq!(env.state(), "", "no state written after a rejected count");
    assert_ne!(exit_code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("wakeup event"),
        "request-suspend says why: {}",
        text(&out)
    );
    old.rewind().unwrap();
    let mut bytes = Vec::new();
    old.read_to_end(&mut bytes).unwrap();
    assert_eq!(
        bytes,
        [0u8, 0, 0],
        "the old watching: imminent, then two zero bytes"
    );
}

#[test]
fn watcher_killed_with_sigkill_does_not_block_suspend() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // A registered watcher (shared lock on `watching`) that never answers.
    let mut stuck = sh_spawn(
        "exec 3< \"$RUN/watching\"; flock -s 3; echo registered; exec sleep 1000",
        &env.run,
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(stuck.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "registered\n");
    let req = env.request_spawn();
    env.wait_for("suspend imminent", DEADLINE, || {
        fs::metadata(env.path("watching")).is_ok_and(|m| m.len() == 1)
    });
    env.assert_stays(
        "waiting for the stuck watcher",
        Duration::from_millis(200),
        || env.state().is_empty(),
    );
    stuck.kill().unwrap();
    stuck.wait().unwrap();
    let out = req.wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 0, "{}\n{}", text(&out), env.dump());
    assert_eq!(env.state(), "mem\n");
}

#[test]
fn symlink_planted_at_watching_next_leaves_its_target_untouched() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let target = env.tmp.path().join("precious");
    fs::write(&target, b"do not truncate").unwrap();
    std::os::unix::fs::symlink(&target, env.path("watching-next")).unwrap();
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 0, "{}", text(&out));
    assert_eq!(fs::read(&target).unwrap(), b"do not truncate");
    assert!(!fs::symlink_metadata(env.path("watching"))
        .unwrap()
        .file_type()
        .is_symlink());
    env.wait_log("lsusd", "found a symbolic link owned by", DEADLINE);
}

#[test]
fn second_lsusd_on_the_same_run_directory_refuses_to_start() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let disabled_before = fs::metadata(env.path("disabled")).unwrap().ino();
    let out = Command::new(harness::bin("lsusd"))
        .arg("--run-dir")
        .arg(&env.run)
        .arg("--sysfs")
        .arg(&env.sys)
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 1);
    assert!(text(&out).contains("already running"), "{}", text(&out));
    assert_eq!(
        fs::metadata(env.path("disabled")).unwrap().ino(),
        disabled_before
    );
    // The first one still works.
    assert_eq!(exit_code(&env.request(&[])), 0);
}

#[test]
fn restarted_lsusd_keeps_a_block_held_across_the_restart() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let ino = fs::metadata(env.path("disabled")).unwrap().ino();
    let blocker = Blocker::open_in(&env.run).unwrap();
    let guard = blocker.block().unwrap();
    env.stop(0);
    env.start_lsusd(&[]);
    assert_eq!(fs::metadata(env.path("disabled")).unwrap().ino(), ino);
    let req = env.request_spawn();
    env.wait_log("lsusd", "blocked by PID", DEADLINE);
    drop(guard);
    let out = req.wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 1, "{}", text(&out));
    assert_eq!(env.state(), "");
}

#[test]
fn request_suspend_without_lsusd_says_so_and_exits_2() {
    let env = Env::new();
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("lsusd is not running"),
        "{}",
        text(&out)
    );
    // A run directory left by an lsusd that is gone.
    let mut env = Env::new();
    env.start_lsusd(&[]);
    env.stop(0);
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("lsusd is not running"),
        "{}",
        text(&out)
    );
}

#[test]
fn request_suspend_timeout_withdraws_the_request() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    // A watcher that never says ready keeps the attempt from ending.
    let stuck = Watcher::open_in(&env.run).unwrap();
    let out = Command::new(harness::bin("request-suspend"))
        .args(["--timeout", "0.3", "--run-dir"])
        .arg(&env.run)
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("no answer after"), "{}", text(&out));
    assert!(!env.path("request").exists());
    drop(stuck);
    // The withdrawn request was not honoured.
    env.wait_for("the attempt ended", DEADLINE, || env.outcome_seq() == 1);
    assert_eq!(env.outcome().unwrap().outcome.word(), "withdrawn");
    assert_eq!(env.state(), "");
}

#[test]
fn idle_lsusd_uses_no_cpu_and_no_context_switches() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    assert_eq!(exit_code(&env.request(&[])), 0);
    let pid = env.daemons[0].child.id();
    let sample = || {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let cpu: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let switches: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
            .sum();
        (cpu, switches)
    };
    // The last cycle is over (its request removed, the record written) and
    // every thread of lsusd sleeps: it is in its wait. Then a quiet period.
    let all_sleeping = || {
        fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| {
            tasks.flatten().all(|t| {
                fs::read_to_string(t.path().join("stat")).is_ok_and(|st| {
                    st.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('S')
                })
            })
        })
    };
    env.wait_for("lsusd idle in its wait", DEADLINE, || {
        !env.path("request").exists() && env.outcome_seq() == 1 && all_sleeping()
    });
    let before = sample();
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        sample(),
        before,
        "(cpu ticks, context switches) changed while idle"
    );
}

#[test]
fn sigterm_ends_lsusd_cleanly_when_idle_blocked_or_waiting_for_watchers() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    assert!(env.stop(0).success(), "idle\n{}", env.dump());

    // While it waits for a blocker to go.
    env.start_lsusd(&[]);
    let blocker = Blocker::open_in(&env.run).unwrap();
    let guard = blocker.block().unwrap();
    let mut req = env.request_spawn();
    env.wait_log("lsusd", "blocked by PID", DEADLINE);
    assert!(env.stop(1).success(), "blocked\n{}", env.dump());
    drop(guard);
    req.kill().unwrap();
    req.wait().unwrap();

    // While it waits for a watcher that never answers: the watcher is
    // released (the cycle is ended for it) and lsusd exits.
    env.start_lsusd(&[]);
    let mut w = Watcher::open_in(&env.run).unwrap();
    let mut req = env.request_spawn();
    assert_eq!(w.wait().unwrap(), WatchEvent::SuspendImminent);
    assert!(env.stop(2).success(), "watchers\n{}", env.dump());
    w.ready().unwrap();
    assert_eq!(
        w.wait_timeout(Some(DEADLINE)).unwrap(),
        Some(WatchEvent::Resumed)
    );
    req.kill().unwrap();
    req.wait().unwrap();
    assert_eq!(env.state(), "", "no suspend on the way out");
}

/// Compiles tests/c/original_client.c (a client written like the
/// original's C clients) into the test's temp directory.
fn original_client(env: &Env) -> std::path::PathBuf {
    let out = env.tmp.path().join("original_client");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/original_client.c");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .expect("a C compiler (cc) is needed for this test");
    assert!(status.success(), "cc failed");
    out
}

#[test]
fn c_client_of_the_original_blocks_watches_aborts_and_requests() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let client = original_client(&env);
    let c = |args: &[&str]| {
        let mut cmd = Command::new(&client);
        cmd.arg(&env.run).args(args);
        cmd
    };
    // A C watcher sees one whole cycle, requested by the C client.
    let mut watcher = c(&["watch", "1"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = std::io::BufReader::new(watcher.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "watching\n");
    let req = c(&["request"]).output().unwrap();
    assert_eq!(text(&req), "request done\n");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!(rest, "suspend\nresumed\n");
    assert!(watcher.wait().unwrap().success());
    assert_eq!(env.state(), "mem\n");
    assert!(matches!(
        env.outcome().unwrap().outcome,
        libsus::Outcome::Suspended { .. }
    ));

    // A C blocker holding LOCK_SH makes request-suspend report "blocked".
    env.clear_state();
    let mut blocker = c(&["block", "1"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(blocker.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "blocked\n");
    let out = env.request(&[]);
    assert_eq!(exit_code(&out), 1, "{}", text(&out));
    blocker.wait().unwrap();
    assert_eq!(env.state(), "");

    // A C client reading `disabled` while a watcher is notified aborts.
    let mut w = Watcher::open_in(&env.run).unwrap();
    let abort = c(&["abort"]);
    let t = thread::spawn(move || {
        let mut abort = abort;
        assert_eq!(w.wait().unwrap(), WatchEvent::SuspendImminent);
        assert!(abort.status().unwrap().success());
        w.ready().unwrap();
        w.wait().unwrap()
    });
    let out = env.request(&[]);
    assert_eq!(t.join().unwrap(), WatchEvent::Resumed);
    assert_eq!(exit_code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("aborted"), "{}", text(&out));
    assert_eq!(env.state(), "");
}

#[test]
fn hostile_entries_in_the_run_directory_do_not_stop_lsusd() {
    let mut env = Env::new();
    env.start_lsusd(&["--immediate-grace-ms", "100"]);
    // A directory as `request`: one attempt, then it is removed.
    fs::create_dir(env.path("request")).unwrap();
    env.wait_for("directory request handled", DEADLINE, || {
        !env.path("request").exists() && env.outcome_seq() == 1
    });
    // A directory and a FIFO as `immediate`: removed, no attempt.
    fs::create_dir(env.path("immediate")).unwrap();
    env.wait_for("directory immediate removed", DEADLINE, || {
        !env.path("immediate").exists()
    });
    nix::unistd::mkfifo(
        &env.path("immediate"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    env.wait_for("FIFO immediate removed", DEADLINE, || {
        !env.path("immediate").exists()
    });
    assert_eq!(env.outcome_seq(), 1);
    // Still serving.
    assert_eq!(exit_code(&env.request(&[])), 0);
    assert!(env.exited(0).is_none());
}
