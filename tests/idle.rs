//! lsus-idle (idle autosuspend, doc/protocol.md §11) against a real lsusd
//! in `--dry-run`, with its test input: `--fake-input` reads FIFOs in a
//! temp input directory as raw `struct input_event` records, through the
//! same `InputSource` trait as the evdev reader.

mod harness;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use harness::{Env, DEADLINE};
use lsus_proto::idle::IdleStatus;
use lsus_proto::outcome::{Outcome, Record};

/// One `struct input_event` record: a key press (`EV_KEY`, `KEY_A`).
fn key_record() -> Vec<u8> {
    let mut r = vec![0u8; std::mem::size_of::<libc::input_event>()];
    let at = std::mem::size_of::<libc::timeval>();
    r[at..at + 2].copy_from_slice(&1u16.to_ne_bytes());
    r[at + 2..at + 4].copy_from_slice(&30u16.to_ne_bytes());
    r[at + 4..at + 8].copy_from_slice(&1i32.to_ne_bytes());
    r
}

/// A SYN_REPORT record: not activity.
fn syn_record() -> Vec<u8> {
    vec![0u8; std::mem::size_of::<libc::input_event>()]
}

/// Types a key every 100 ms on a thread until stopped.
struct Typist {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Typist {
    fn start(mut to: fs::File) -> Typist {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                to.write_all(&key_record()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Typist { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
    }
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// lsusd `--dry-run` and lsus-idle with `--idle SECS` on a temp input
/// directory holding the FIFO `event0`; returns the directory and a
/// writer of `event0`.
fn start(env: &mut Env, idle: &str) -> (PathBuf, fs::File) {
    env.start_lsusd(&["--dry-run"]);
    start_idle(env, idle)
}

/// lsus-idle alone (lsusd runs); see [`start`].
fn start_idle(env: &mut Env, idle: &str) -> (PathBuf, fs::File) {
    let input = env.tmp.path().join("input");
    fs::create_dir(&input).unwrap();
    mkfifo(&input.join("event0"));
    let run = env.run.display().to_string();
    let dir = input.display().to_string();
    env.spawn(
        "lsus-idle",
        &[
            "--run-dir",
            &run,
            "--idle",
            idle,
            "--input-dir",
            &dir,
            "--fake-input",
        ],
    );
    env.wait_ready();
    let writer = open_writer(env, &input.join("event0"));
    (input, writer)
}

/// Opens the FIFO `path` for writing once lsus-idle reads it (a blocking
/// open would hang the test if lsus-idle never opened it).
pub fn open_writer(env: &Env, path: &Path) -> fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = None;
    env.wait_for(
        &format!("lsus-idle reading {}", path.display()),
        DEADLINE,
        || {
            file = fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
                .ok();
            file.is_some()
        },
    );
    file.unwrap()
}

fn status(env: &Env) -> Option<IdleStatus> {
    fs::read_to_string(env.path("lsus-idle.status"))
        .ok()?
        .parse()
        .ok()
}

fn history(env: &Env) -> Vec<Record> {
    fs::read_to_string(env.path("log/history"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[test]
fn suspends_after_the_idle_time_without_input_and_not_before() {
    let mut env = Env::new();
    let (_input, mut key) = start(&mut env, "2");
    env.wait_for("status: 1 device, not idle", DEADLINE, || {
        status(&env).is_some_and(|s| s.devices == 1 && !s.idle && !s.holding)
    });
    // Input for a while, faster than the idle time: no attempt meanwhile.
    let mut last_input = SystemTime::now();
    for _ in 0..8 {
        key.write_all(&key_record()).unwrap();
        key.write_all(&syn_record()).unwrap();
        last_input = SystemTime::now();
        std::thread::sleep(Duration::from_millis(200));
    }
    // A SYN alone is no activity: it does not restart the count.
    key.write_all(&syn_record()).unwrap();
    env.wait_for("a dry-run suspend in immediate mode", DEADLINE, || {
        history(&env)
            .iter()
            .any(|r| matches!(r.outcome, Outcome::DryRun { .. }))
    });
    // Every attempt came at least the idle time after the last input (the
    // record is written when the attempt ends, later still).
    for r in history(&env) {
        let after = r.time.duration_since(last_input).unwrap_or_default();
        assert!(
            after >= Duration::from_secs(2),
            "attempt {} only {after:?} after the last input\n{}",
            r.seq,
            env.dump()
        );
    }
    env.wait_log(
        "lsus-idle",
        "holding immediate mode until the next input",
        DEADLINE,
    );
    assert!(env.path("immediate").exists());
    env.wait_for("status: idle and holding", DEADLINE, || {
        status(&env).is_some_and(|s| s.idle && s.holding)
    });

    // The next input lets go of immediate mode, and input that goes on
    // (a key every 100 ms, 20 times faster than the idle time) keeps the
    // machine from being idle again: the suspends stop.
    let typist = Typist::start(key.try_clone().unwrap());
    env.wait_log("lsus-idle", "let go of immediate mode", DEADLINE);
    env.wait_for("immediate removed", DEADLINE, || {
        !env.path("immediate").exists()
    });
    env.wait_for("status: not idle", DEADLINE, || {
        status(&env).is_some_and(|s| !s.idle && !s.holding)
    });
    // lsusd may be inside an attempt that started before the input.
    env.wait_for("watching empty (no attempt in progress)", DEADLINE, || {
        fs::metadata(env.path("watching")).is_ok_and(|m| m.len() == 0)
    });
    let seq = env.outcome_seq();
    env.assert_stays(
        "no more attempts while typing",
        Duration::from_millis(1000),
        || env.outcome_seq() == seq && !env.path("immediate").exists(),
    );
    typist.stop();

    // `lsusctl status` shows the idle section.
    let out = std::process::Command::new(harness::bin("lsusctl"))
        .args(["--run-dir", &env.run.display().to_string(), "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("idle: lsus-idle running") && text.contains("of 2 s (1 input device)"),
        "{text}"
    );
}

#[test]
fn input_while_the_attempt_is_imminent_aborts_it() {
    let mut env = Env::new();
    let (_input, mut key) = start(&mut env, "1");
    // A watcher that holds the attempt at "imminent" until told.
    let mut watcher = libsus::Watcher::open_in(&env.run).unwrap();
    let event = watcher.wait_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(
        event,
        Some(libsus::WatchEvent::SuspendImminent),
        "{}",
        env.dump()
    );
    assert!(env.path("immediate").exists());
    key.write_all(&key_record()).unwrap();
    env.wait_log(
        "lsus-idle",
        "input while a suspend is imminent: aborted it",
        DEADLINE,
    );
    watcher.ready().unwrap();
    env.wait_for("the attempt recorded as aborted", DEADLINE, || {
        env.outcome().is_some_and(|r| r.outcome == Outcome::Aborted)
    });
    // Immediate mode went with the end of that attempt, not before.
    env.wait_log("lsus-idle", "the aborted attempt is over", DEADLINE);
    env.wait_for("immediate removed", DEADLINE, || {
        !env.path("immediate").exists()
    });
    assert_eq!(
        history(&env)
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::DryRun { .. }))
            .count(),
        0,
        "{}",
        env.dump()
    );
}

#[test]
fn devices_that_come_go_or_are_no_devices_never_stop_it() {
    let mut env = Env::new();
    let (input, _key) = start(&mut env, "600");
    // Not a FIFO nor a character device: one line, and on it goes.
    fs::write(input.join("event5"), b"junk").unwrap();
    env.wait_log("lsus-idle", "event5: not a character device", DEADLINE);
    mkfifo(&input.join("event1"));
    env.wait_for("status: 2 devices", DEADLINE, || {
        status(&env).is_some_and(|s| s.devices == 2)
    });
    fs::remove_file(input.join("event0")).unwrap();
    env.wait_log("lsus-idle", "event0: it went away", DEADLINE);
    env.wait_for("status: 1 device", DEADLINE, || {
        status(&env).is_some_and(|s| s.devices == 1)
    });
    assert_eq!(env.log_count("lsus-idle", "event5"), 1, "{}", env.dump());
    let i = env.daemons.len() - 1;
    assert!(env.exited(i).is_none(), "{}", env.dump());
    // SIGTERM: it stops and its files go.
    assert!(env.stop(i).success());
    assert!(!env.path("lsus-idle.status").exists());
    assert!(!env.path("lsus-idle.pid").exists());
}

#[test]
fn an_exclusive_holder_of_immediate_never_stops_its_loop() {
    let mut env = Env::new();
    env.start_lsusd(&["--dry-run"]);
    // The original's clients lock `immediate` exclusively; a waiting
    // LOCK_SH would hang lsus-idle until this one lets go.
    let mut holder = harness::sh_spawn("exec flock -x -o \"$RUN/immediate\" sleep 1000", &env.run);
    env.wait_for("the exclusive lock on immediate", DEADLINE, || {
        fs::read_to_string("/proc/locks").is_ok_and(|l| {
            let ino = fs::metadata(env.path("immediate")).map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.ino()
            });
            ino.is_ok_and(|ino| {
                l.lines()
                    .any(|x| x.contains("WRITE") && x.contains(&format!(":{ino} ")))
            })
        })
    });
    let (_input, mut key) = start_idle(&mut env, "1");
    env.wait_log(
        "lsus-idle",
        "another program holds immediate mode exclusively",
        DEADLINE,
    );
    env.wait_for("status: idle, not holding", DEADLINE, || {
        status(&env).is_some_and(|s| s.idle && !s.holding)
    });
    // Still serving its loop: input is read, a signal ends it.
    key.write_all(&key_record()).unwrap();
    env.wait_for("status: not idle after the key", DEADLINE, || {
        status(&env).is_some_and(|s| !s.idle)
    });
    let i = env.daemons.len() - 1;
    assert!(env.stop(i).success(), "{}", env.dump());
    holder.kill().unwrap();
    holder.wait().unwrap();
}
