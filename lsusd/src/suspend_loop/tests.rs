//! The suspend loop against a simulated kernel, with real clients (libsus)
//! on a temp run directory. Each race is injected at a precise step.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use libsus::{Blocker, Immediate, WatchEvent, Watcher};
use lsus_proto::outcome::Outcome;
use lsus_proto::rundir::{RunDir, REQUEST};
use lsus_sys::power::{SimPower, SimStep, SleepState};

use super::{Config, Stop, Suspender};

struct Rig {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    sim: SimPower,
    s: Suspender<SimPower>,
}

fn rig(cfg: Config) -> Rig {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let run = RunDir::create(&dir, 0o770).unwrap();
    let sim = SimPower::new();
    let s = Suspender::start(run, sim.clone(), cfg, Stop::NEVER).unwrap();
    Rig {
        _tmp: tmp,
        dir,
        sim,
        s,
    }
}

impl Rig {
    fn request(&self) {
        std::fs::write(self.dir.join(REQUEST), b"").unwrap();
    }

    fn cycle(&mut self) -> Outcome {
        self.s.cycle().unwrap().expect("a record").outcome
    }

    /// Starts a watcher thread that runs `at_imminent` before saying ready;
    /// returns once it is registered. The handle yields the events seen.
    fn watcher(
        &self,
        at_imminent: impl FnOnce() + Send + 'static,
    ) -> thread::JoinHandle<Vec<WatchEvent>> {
        let (tx, rx) = mpsc::channel();
        let dir = self.dir.clone();
        let h = thread::spawn(move || {
            let mut w = Watcher::open_in(&dir).unwrap();
            tx.send(()).unwrap();
            let mut seen = vec![w.wait().unwrap()];
            assert_eq!(seen[0], WatchEvent::SuspendImminent);
            at_imminent();
            w.ready().unwrap();
            seen.push(w.wait().unwrap());
            seen
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        h
    }
}

#[test]
fn request_with_nothing_blocking_suspends_once() {
    let mut r = rig(Config::default());
    r.request();
    assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
    assert_eq!(r.sim.entered(), vec![SleepState::Mem]);
    assert!(
        !r.dir.join(REQUEST).exists(),
        "the request is removed after the attempt"
    );
}

#[test]
fn wakeup_event_after_the_count_was_read_never_writes_the_state() {
    // Injected while the watchers are being notified (after step 4) …
    let mut r = rig(Config::default());
    let sim = r.sim.clone();
    let w = r.watcher(move || sim.wakeup_event());
    r.request();
    assert_eq!(r.cycle(), Outcome::WakeupEvent);
    assert_eq!(
        w.join().unwrap(),
        vec![WatchEvent::SuspendImminent, WatchEvent::Resumed]
    );
    // … and just before the count is written back (step 7).
    r.sim.on(SimStep::WriteCount, |k| k.wakeup_event());
    r.request();
    assert_eq!(r.cycle(), Outcome::WakeupEvent);
    assert!(r.sim.entered().is_empty());
    assert!(!r.sim.kernel().calls.contains(&SimStep::EnterState));
}

#[test]
fn wakeup_event_during_the_state_write_fails_the_attempt() {
    let mut r = rig(Config::default());
    r.sim.on(SimStep::EnterState, |k| k.wakeup_event());
    r.request();
    assert_eq!(r.cycle(), Outcome::WriteFailed { errno: libc::EBUSY });
    assert!(r.sim.entered().is_empty());
    // The record says so for request-suspend.
    let text = std::fs::read_to_string(r.dir.join("outcome")).unwrap();
    assert!(text.contains("outcome=write-failed errno=16"), "{text}");
}

#[test]
fn unknown_wakeup_count_still_suspends() {
    let mut r = rig(Config::default());
    r.sim.kernel().count_missing = true;
    r.request();
    assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
    assert!(!r.sim.kernel().calls.contains(&SimStep::WriteCount));
}

#[test]
fn count_is_read_before_watchers_and_written_after_them() {
    let mut r = rig(Config::default());
    let order = Arc::new(Mutex::new(Vec::new()));
    for step in [SimStep::ReadCount, SimStep::WriteCount, SimStep::EnterState] {
        let order = order.clone();
        r.sim.on(step, move |_| {
            order.lock().unwrap().push(format!("{step:?}"))
        });
    }
    let o = order.clone();
    let w = r.watcher(move || o.lock().unwrap().push("watcher".into()));
    r.request();
    assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
    w.join().unwrap();
    assert_eq!(
        *order.lock().unwrap(),
        vec!["ReadCount", "watcher", "WriteCount", "EnterState"]
    );
}

#[test]
fn read_of_disabled_during_notification_aborts() {
    let mut r = rig(Config::default());
    let dir = r.dir.clone();
    let w = r.watcher(move || Blocker::open_in(&dir).unwrap().abort().unwrap());
    r.request();
    assert_eq!(r.cycle(), Outcome::Aborted);
    assert_eq!(
        w.join().unwrap(),
        vec![WatchEvent::SuspendImminent, WatchEvent::Resumed]
    );
    assert!(r.sim.entered().is_empty());
    // A read before the attempt does not abort the next one.
    Blocker::open_in(&r.dir).unwrap().abort().unwrap();
    r.request();
    assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
}

#[test]
fn block_taken_by_a_watcher_prevents_the_write() {
    let mut r = rig(Config::default());
    let dir = r.dir.clone();
    let (tx, rx) = mpsc::channel::<()>();
    let w = r.watcher(move || {
        // Hold a block past the watcher's ready, until the test says; the
        // watcher is ready only once the block is held.
        let (locked_tx, locked_rx) = mpsc::channel::<()>();
        thread::spawn(move || {
            let b = Blocker::open_in(&dir).unwrap();
            let _g = b.block().unwrap();
            locked_tx.send(()).unwrap();
            let _ = rx.recv();
        });
        locked_rx.recv().unwrap();
    });
    r.request();
    assert!(matches!(r.cycle(), Outcome::Blocked { .. }));
    w.join().unwrap();
    tx.send(()).unwrap();
    assert!(r.sim.entered().is_empty());
}

#[test]
fn request_removed_during_notification_is_withdrawn() {
    let mut r = rig(Config::default());
    let req = r.dir.join(REQUEST);
    let w = r.watcher(move || std::fs::remove_file(&req).unwrap());
    r.request();
    assert_eq!(r.cycle(), Outcome::Withdrawn);
    w.join().unwrap();
}

#[test]
fn blocked_request_waits_for_blockers_then_is_dropped() {
    let mut r = rig(Config::default());
    let dir = r.dir.clone();
    let (locked_tx, locked_rx) = mpsc::channel();
    let holder = thread::spawn(move || {
        let b = Blocker::open_in(&dir).unwrap();
        let g = b.block().unwrap();
        locked_tx.send(()).unwrap();
        // Let go once lsusd has answered "blocked" and waits for us.
        let outcome = dir.join(lsus_proto::rundir::OUTCOME);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&outcome).is_ok_and(|t| t.contains(" outcome=blocked")) {
            assert!(std::time::Instant::now() < deadline, "no blocked record");
            thread::sleep(Duration::from_millis(2));
        }
        drop(g);
    });
    locked_rx.recv().unwrap();
    r.request();
    assert!(matches!(r.cycle(), Outcome::Blocked { .. }));
    holder.join().unwrap();
    assert!(
        !r.dir.join(REQUEST).exists(),
        "a blocked request is dropped"
    );
    assert!(r.sim.entered().is_empty());
}

#[test]
fn backoff_grows_in_immediate_mode_and_resets_on_success() {
    let mut r = rig(Config {
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(4),
        ..Config::default()
    });
    let _on = Immediate::enter_in(&r.dir).unwrap();
    r.sim.kernel().fail_state = Some(libc::EIO);
    let mut pauses = Vec::new();
    for _ in 0..4 {
        assert_eq!(r.cycle(), Outcome::WriteFailed { errno: libc::EIO });
        pauses.push(r.s.backoff.current().unwrap().as_millis());
    }
    assert_eq!(pauses, vec![1, 2, 4, 4]);
    r.sim.kernel().fail_state = None;
    assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
    assert_eq!(r.s.backoff.current(), None);
}

#[test]
fn request_is_attempted_at_once_during_a_backoff() {
    let mut r = rig(Config {
        backoff_initial: Duration::from_secs(3600),
        ..Config::default()
    });
    let on = Immediate::enter_in(&r.dir).unwrap();
    r.sim.kernel().fail_state = Some(libc::EIO);
    assert_eq!(r.cycle(), Outcome::WriteFailed { errno: libc::EIO });
    r.sim.kernel().fail_state = None;
    // Immediate mode alone would now wait an hour; a request does not.
    r.request();
    assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
    drop(on);
}

#[test]
fn immediate_mode_suspends_again_and_again_while_held() {
    let mut r = rig(Config::default());
    let on = Immediate::enter_in(&r.dir).unwrap();
    for _ in 0..3 {
        assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
    }
    assert_eq!(r.sim.entered().len(), 3);
    drop(on);
    assert!(!r.dir.join("immediate").exists());
}

#[test]
fn stale_immediate_is_removed_and_young_one_gets_its_grace() {
    let mut r = rig(Config {
        immediate_grace: Duration::from_millis(300),
        ..Config::default()
    });
    // Young and unlocked: not removed; locked within the grace: honoured.
    let path = r.dir.join("immediate");
    let f = std::fs::File::create(&path).unwrap();
    let p2 = path.clone();
    let locker = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        lsus_sys::lock::lock(&f, lsus_sys::lock::LockKind::Exclusive).unwrap();
        assert!(p2.exists(), "removed within the grace period");
        f
    });
    assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
    drop(locker.join().unwrap());
    // Now unlocked and older than the grace: removed, no suspend.
    thread::sleep(Duration::from_millis(350));
    let (tx, rx) = mpsc::channel();
    let dir = r.dir.clone();
    let t = thread::spawn(move || {
        // Once the stale file is gone, ask once so the cycle returns.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while dir.join("immediate").exists() && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        tx.send(!dir.join("immediate").exists()).unwrap();
        std::fs::write(dir.join(REQUEST), b"").unwrap();
    });
    assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
    t.join().unwrap();
    assert!(rx.recv().unwrap(), "stale immediate was not removed");
    assert_eq!(r.sim.entered().len(), 2);
}

#[test]
fn replaced_disabled_is_recreated_at_the_next_cycle() {
    let mut r = rig(Config::default());
    std::fs::remove_file(r.dir.join("disabled")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", r.dir.join("disabled")).unwrap();
    r.request();
    assert!(matches!(r.cycle(), Outcome::Suspended { .. }));
    let meta = std::fs::symlink_metadata(r.dir.join("disabled")).unwrap();
    assert!(meta.file_type().is_file() && meta.len() == 1);
}

#[test]
fn blocked_answer_is_recorded_before_the_blockers_leave() {
    let mut r = rig(Config::default());
    let dir = r.dir.clone();
    let (locked_tx, locked_rx) = mpsc::channel();
    let holder = thread::spawn(move || {
        let b = Blocker::open_in(&dir).unwrap();
        let g = b.block().unwrap();
        locked_tx.send(()).unwrap();
        // The record is there while we still hold the block.
        let outcome = dir.join("outcome");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut seen = String::new();
        while std::time::Instant::now() < deadline {
            seen = std::fs::read_to_string(&outcome).unwrap_or_default();
            if seen.contains("outcome=blocked") {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        // A second request during the wait gets its own answer at once.
        let before = seen.clone();
        std::fs::remove_file(dir.join(REQUEST)).unwrap();
        std::fs::write(dir.join(REQUEST), b"").unwrap();
        let mut second = String::new();
        while std::time::Instant::now() < deadline {
            second = std::fs::read_to_string(&outcome).unwrap_or_default();
            if second != before {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        drop(g);
        (seen, second)
    });
    locked_rx.recv().unwrap();
    r.request();
    let record = r.s.cycle().unwrap().expect("a record");
    let (seen, second) = holder.join().unwrap();
    assert!(matches!(record.outcome, Outcome::Blocked { .. }));
    assert!(
        seen.starts_with("seq=1 ") && seen.contains("outcome=blocked"),
        "{seen}"
    );
    assert!(
        second.starts_with("seq=2 ") && second.contains("outcome=blocked"),
        "{second}"
    );
    assert!(!r.dir.join(REQUEST).exists(), "every request is dropped");
    assert!(r.sim.entered().is_empty());
}

#[test]
fn a_blocker_gone_between_try_lock_and_proc_locks_is_not_a_block() {
    use super::blocked_by;
    // try-lock fails, /proc/locks names nobody, the lock is free now.
    let mut tries = vec![false, true].into_iter();
    let got: Result<_, ()> = blocked_by(|| Ok(tries.next().unwrap()), Vec::new);
    assert_eq!(got, Ok(None));
    // Named at once.
    let got: Result<_, ()> = blocked_by(|| Ok(false), || vec![7]);
    assert_eq!(got, Ok(Some(vec![7])));
    // Named on the second look.
    let mut looks = vec![vec![], vec![9]].into_iter();
    let got: Result<_, ()> = blocked_by(|| Ok(false), || looks.next().unwrap());
    assert_eq!(got, Ok(Some(vec![9])));
    // Taken and never named (a holder in another PID namespace): blocked,
    // without a PID, after a few looks, not a spin.
    let mut n = 0;
    let got: Result<_, ()> = blocked_by(
        || {
            n += 1;
            Ok(false)
        },
        Vec::new,
    );
    assert_eq!(got, Ok(Some(vec![])));
    assert_eq!(n, 3);
}

#[test]
fn the_record_names_the_wakeup_source_that_woke_the_machine() {
    let mut r = rig(Config::default());
    r.sim.kernel().source_event("PNP0C0C:00"); // before: not a wake
    r.sim.on(SimStep::Asleep, |k| k.source_event("rtc0"));
    r.sim.kernel().wakeup_irq = Some(8);
    r.request();
    let first = r.s.cycle().unwrap().unwrap();
    assert!(matches!(first.outcome, Outcome::Suspended { .. }));
    assert_eq!(first.details.woke, Some(vec!["rtc0".to_string()]));
    assert_eq!(first.details.wake_irq, Some(8));
    assert_eq!(first.details.kernel_success, Some(1));
    assert_eq!(first.details.awake, None, "no resume before the first");
    r.request();
    let second = r.s.cycle().unwrap().unwrap();
    assert!(second.details.awake.is_some_and(|a| a >= 0.0));
    let text = std::fs::read_to_string(r.dir.join("outcome")).unwrap();
    assert!(text.contains(" woke=rtc0 wake_irq=8 "), "{text}");
    let history = std::fs::read_to_string(r.dir.join("log/history")).unwrap();
    assert_eq!(history.matches("woke=rtc0").count(), 2, "{history}");
}

#[test]
fn nothing_moved_is_woke_unknown_and_no_class_wakeup_is_no_key() {
    let mut r = rig(Config::default());
    r.request();
    let rec = r.s.cycle().unwrap().unwrap();
    assert_eq!(rec.details.woke, Some(vec![]));
    assert!(rec.to_string().contains(" woke=unknown"));
    r.sim.kernel().sources = None;
    r.sim.kernel().stats = None;
    r.request();
    let rec = r.s.cycle().unwrap().unwrap();
    assert_eq!(rec.details.woke, None);
    assert_eq!(rec.details.kernel_success, None);
    assert!(!rec.to_string().contains("woke="));
}

#[test]
fn a_refused_count_names_the_source_that_moved() {
    let mut r = rig(Config::default());
    r.sim.on(SimStep::WriteCount, |k| {
        if k.calls
            .iter()
            .filter(|s| **s == SimStep::WriteCount)
            .count()
            == 1
        {
            k.source_event("PNP0C0C:00");
        }
    });
    r.request();
    let rec = r.s.cycle().unwrap().unwrap();
    assert_eq!(rec.outcome, Outcome::WakeupEvent);
    assert_eq!(rec.details.source, ["PNP0C0C:00"]);
    assert!(rec.to_string().contains(" source=PNP0C0C:00"));
}

#[test]
fn a_failed_state_write_carries_the_kernels_report() {
    let mut r = rig(Config::default());
    r.sim
        .on(SimStep::EnterState, |k| k.source_event("gpio-keys.0"));
    r.request();
    let rec = r.s.cycle().unwrap().unwrap();
    assert_eq!(rec.outcome, Outcome::WriteFailed { errno: libc::EBUSY });
    assert_eq!(rec.details.source, ["gpio-keys.0"]);
    assert_eq!(rec.details.failed_errno, Some(-libc::EBUSY));
    assert_eq!(rec.details.failed_step.as_deref(), Some("freeze"));
    assert_eq!(rec.details.kernel_fail, Some(1));
}

#[test]
fn a_blocker_is_timed_until_it_lets_go_in_the_history() {
    let mut r = rig(Config::default());
    let marker = r.dir.join("../held");
    // A process of its own (lsusd leaves its own PID out of the blockers).
    let mut child = std::process::Command::new("flock")
        .arg("--shared")
        .arg(r.dir.join("disabled"))
        .arg("-c")
        .arg(format!("touch {}; sleep 0.3", marker.display()))
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(std::time::Instant::now() < deadline, "flock never ran");
        thread::sleep(Duration::from_millis(5));
    }
    r.request();
    let rec = r.s.cycle().unwrap().unwrap();
    child.wait().unwrap();
    assert!(matches!(rec.outcome, Outcome::Blocked { .. }));
    let history = std::fs::read_to_string(r.dir.join("log/history")).unwrap();
    let line: lsus_proto::outcome::Record = history.lines().last().unwrap().parse().unwrap();
    assert_eq!(line.seq, rec.seq);
    assert!(!line.details.held.is_empty(), "{history}");
    let h = &line.details.held[0];
    assert!(h.seconds > 0.0 && h.seconds < 10.0, "{history}");
    assert!(
        ["flock", "sh", "sleep"].contains(&h.command.as_str()),
        "{history}"
    );
}

// ----- forced requests (doc/protocol.md §12) ---------------------------------

/// A rig that takes forced requests (RUN/force of this process's group).
fn forcing_rig() -> Rig {
    rig(Config {
        force_gid: Some(nix::unistd::getegid().as_raw()),
        ..Config::default()
    })
}

/// A `flock -s -o RUN/disabled` child (a blocker lsusd can name: not this
/// process), once it holds the lock.
fn flock_blocker(dir: &std::path::Path) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new("flock")
        .args(["-s", "-o"])
        .arg(dir.join("disabled"))
        .args(["sh", "-c", "echo locked; exec cat >/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "locked\n");
    child
}

fn force_request(r: &Rig, why: &str) {
    std::fs::write(r.dir.join("force/request"), why).unwrap();
}

#[test]
fn forced_request_goes_over_a_block_and_the_record_names_it() {
    let mut r = forcing_rig();
    let mut blocker = flock_blocker(&r.dir);
    force_request(&r, "battery at 2 %\n");
    let record = r.s.cycle().unwrap().unwrap();
    assert!(matches!(record.outcome, Outcome::Suspended { .. }));
    assert_eq!(r.sim.entered(), vec![SleepState::Mem]);
    assert!(record.details.forced);
    assert_eq!(record.details.why.as_deref(), Some("battery at 2 %"));
    assert_eq!(record.details.overrode.len(), 1);
    assert_eq!(record.details.overrode[0].pid, blocker.id());
    assert!(!r.dir.join("force/request").exists());
    // The blocker still holds its lock.
    let f = std::fs::File::open(r.dir.join("disabled")).unwrap();
    assert!(!lsus_sys::lock::try_lock(&f, lsus_sys::lock::LockKind::Exclusive).unwrap());
    let _ = blocker.kill();
    let _ = blocker.wait();
}

#[test]
fn a_wakeup_event_still_aborts_a_forced_attempt() {
    let mut r = forcing_rig();
    let mut blocker = flock_blocker(&r.dir);
    // Just before the count is written back (step 7) …
    r.sim.on(SimStep::WriteCount, |k| k.wakeup_event());
    force_request(&r, "lid");
    let record = r.s.cycle().unwrap().unwrap();
    assert_eq!(record.outcome, Outcome::WakeupEvent);
    assert!(record.details.forced);
    assert!(r.sim.entered().is_empty());
    // … and while the watchers are told (after step 4).
    let sim = r.sim.clone();
    let w = r.watcher(move || sim.wakeup_event());
    force_request(&r, "lid");
    assert_eq!(r.s.cycle().unwrap().unwrap().outcome, Outcome::WakeupEvent);
    w.join().unwrap();
    assert!(r.sim.entered().is_empty());
    let _ = blocker.kill();
    let _ = blocker.wait();
}

#[test]
fn a_request_left_in_force_from_before_is_never_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(dir.join("force")).unwrap();
    std::fs::write(dir.join("force/request"), "old").unwrap();
    let run = RunDir::create(&dir, 0o770).unwrap();
    let cfg = Config {
        force_gid: Some(nix::unistd::getegid().as_raw()),
        ..Config::default()
    };
    let _s = Suspender::start(run, SimPower::new(), cfg, Stop::NEVER).unwrap();
    assert!(!dir.join("force/request").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("force"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o770);
}
