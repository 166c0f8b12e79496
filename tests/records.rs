//! What a watcher of the run directory sees of a cycle (issue #18), and the
//! records' old paths (doc/protocol.md §1.4, §1.5, §1.10): the real
//! daemons on a temp run directory and a fake sysfs tree.

mod harness;

use std::fs;
use std::time::{Duration, SystemTime};

use harness::{Env, DEADLINE};
use inotify::{Inotify, WatchMask};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every event queued on `inotify` now, as "MASK NAME".
fn drain(inotify: &mut Inotify) -> Vec<String> {
    let mut buf = [0u8; 65536];
    let mut all = Vec::new();
    loop {
        match inotify.read_events(&mut buf) {
            Ok(events) => {
                let before = all.len();
                all.extend(events.map(|e| {
                    let mask = format!("{:?}", e.mask);
                    let mask = mask.trim_start_matches("EventMask(").trim_end_matches(')');
                    let name = e.name.map_or(String::new(), |n| n.to_string_lossy().into());
                    format!("{mask} {name}")
                }));
                if all.len() == before {
                    return all;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return all,
            Err(e) => panic!("cannot read inotify events: {e}"),
        }
    }
}

/// The status file `name` as published, once it contains `word`.
fn wait_status(env: &Env, name: &str, word: &str) {
    let path = env.path("records").join(name);
    env.wait_for(&format!("{name} to say {word}"), DEADLINE, || {
        fs::read_to_string(&path).is_ok_and(|t| t.split_whitespace().any(|w| w == word))
    });
}

/// A raw watcher of RUN with IN_MODIFY | IN_MOVED_TO sees of each cycle
/// exactly what the protocol needs: the byte written to `watching`
/// (suspend imminent), then `watching-next` renamed over `watching` and
/// the two bytes written to the old file (the end of the attempt), so a
/// watcher with IN_MODIFY alone, as the original's clients (dnotify
/// DN_MODIFY) and libsus's `Watcher` watch it, gets the two writes only:
/// two wake-ups a cycle. Nothing of the outcome record, the
/// history, or the status files of lsused and wakealarmd, though their
/// counts change during the cycles (a client of lsused connects and goes,
/// an alarm is set and cancelled).
#[test]
fn a_watcher_of_run_sees_only_watching_change_during_cycles() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    env.start_socket_daemon("lsused", "registration", &[]);
    env.start_socket_daemon("wakealarmd", "wakealarm", &[]);
    wait_status(&env, "lsused.status", "clients=0");
    wait_status(&env, "wakealarmd.status", "connections=0");
    let mut inotify = Inotify::init().unwrap();
    inotify
        .watches()
        .add(&env.run, WatchMask::MODIFY | WatchMask::MOVED_TO)
        .unwrap();
    const CYCLES: usize = 3;
    let cycle = [
        "MODIFY watching",   // suspend imminent: the byte
        "MOVED_TO watching", // the end: watching-next renamed over watching,
        "MODIFY watching",   // and the two bytes to the old file
    ];

    for n in 1..=CYCLES {
        let client = libsus::WakeEvents::connect_in(&env.run).expect("connect to lsused");
        let far = SystemTime::now() + Duration::from_secs(3600);
        let alarm = libsus::WakeAlarm::new_in(&env.run, far).expect("an alarm");
        wait_status(&env, "lsused.status", "clients=1");
        wait_status(&env, "wakealarmd.status", "pending=1");
        drop(client);
        let out = env.request(&[]);
        assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.dump());
        drop(alarm);
        wait_status(&env, "lsused.status", "clients=0");
        wait_status(&env, "wakealarmd.status", "pending=0");
        // Read after each cycle: the kernel merges an event with the
        // unread one before it when both are the same (the two bytes of
        // one cycle and the byte of the next).
        let seen = drain(&mut inotify);
        assert_eq!(seen, cycle, "cycle {n}\n{}", env.dump());
    }
    // The records were written meanwhile, in RUN/records.
    let record = env.outcome().expect("an outcome record");
    assert_eq!(record.seq, CYCLES as u64, "{}", env.dump());
}

/// Whoever reads the old paths reads the same bytes: `RUN/outcome` and the
/// status files are links to the files in `RUN/records`.
#[test]
fn the_old_paths_read_the_records() {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    env.start_socket_daemon("lsused", "registration", &[]);
    wait_status(&env, "lsused.status", "clients=0");
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for name in ["outcome", "lsused.status"] {
        let old = env.path(name);
        assert!(
            fs::symlink_metadata(&old).unwrap().is_symlink(),
            "{name}: {}",
            env.dump()
        );
        assert_eq!(
            fs::read_link(&old).unwrap(),
            std::path::Path::new("records").join(name)
        );
        let new = fs::read(env.path("records").join(name)).unwrap();
        assert_eq!(fs::read(&old).unwrap(), new, "{name}");
    }
    let shell = harness::sh("cat \"$RUN/outcome\"", &env.run);
    assert_eq!(
        String::from_utf8_lossy(&shell.stdout),
        fs::read_to_string(env.path("records/outcome")).unwrap()
    );
    assert!(String::from_utf8_lossy(&shell.stdout).starts_with("seq=1 "));
    // A daemon that stops takes its status file and its link away.
    let i = env.daemons.len() - 1;
    env.stop(i);
    assert!(fs::symlink_metadata(env.path("lsused.status")).is_err());
    assert!(!env.path("records/lsused.status").exists());
}

/// An `outcome` file an older lsusd left is published in `RUN/records` and
/// replaced by the link; `seq` goes on from it. A restart with the link in
/// place leaves it alone.
#[test]
fn an_outcome_file_from_an_older_lsusd_becomes_the_record() {
    let mut env = Env::new();
    fs::create_dir_all(&env.run).unwrap();
    let old = "seq=41 time=1764067200.125 outcome=suspended seconds=3.201\n";
    fs::write(env.path("outcome"), old).unwrap();
    env.start_lsusd(&[]);
    assert!(fs::symlink_metadata(env.path("outcome"))
        .unwrap()
        .is_symlink());
    assert_eq!(
        fs::read_to_string(env.path("records/outcome")).unwrap(),
        old
    );
    assert_eq!(fs::read_to_string(env.path("outcome")).unwrap(), old);
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.outcome().unwrap().seq, 42, "{}", env.dump());

    // Restarted: the link stays the same file, nothing is moved aside.
    let link = fs::symlink_metadata(env.path("outcome")).unwrap();
    env.stop(0);
    env.daemons.clear();
    env.start_lsusd(&[]);
    let again = fs::symlink_metadata(env.path("outcome")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(again.ino(), link.ino());
    assert!(!env.log("lsusd").contains("moved aside"), "{}", env.dump());
}

/// Something else planted at `RUN/outcome` (here a directory) is moved
/// aside, logged, and the link made.
#[test]
fn a_directory_planted_at_outcome_is_moved_aside_for_the_link() {
    let mut env = Env::new();
    fs::create_dir_all(env.run.join("outcome")).unwrap();
    fs::write(env.run.join("outcome/keep"), b"x").unwrap();
    env.start_lsusd(&[]);
    assert!(fs::symlink_metadata(env.path("outcome"))
        .unwrap()
        .is_symlink());
    env.wait_log("lsusd", "outcome: found a directory owned by", DEADLINE);
    let moved: Vec<_> = fs::read_dir(&env.run)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("outcome.planted-directory."))
        .collect();
    assert_eq!(moved.len(), 1, "{}", env.dump());
    assert!(env.run.join(&moved[0]).join("keep").exists());
}
