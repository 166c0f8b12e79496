//! kill -9 at every step of an attempt (issue #15, point 3), through the
//! real binaries: for each step below and each daemon, the attempt is
//! stopped at that step from outside, the daemon is killed with SIGKILL
//! there and started again, and then:
//!
//! - a block held before the kill is in force after it, on the same
//!   `disabled` inode (a request is refused naming its holder);
//! - the watchers (a libsus `Watcher`, and lsused and wakealarmd, which
//!   are lsusd's watchers) are registered again and hear the next cycle;
//! - no `request` left over is ever honoured: every suspended record after
//!   the kill is one a requester was told of with exit 0;
//! - a `request-suspend` waiting on a killed lsusd exits 2 with one line
//!   (the delay from the kill is printed);
//! - libsus `WakeEvents` and `WakeAlarm`, each driven by its own thread
//!   like a program's event loop, reconnect by themselves and their
//!   registration and alarm are in force again (`lsused.status`,
//!   `wakealarmd.status`);
//! - no temporary file is left (`.staging` empty, no `.NAME.tmp`), and the
//!   outcome record, every history line and the status files parse.
//!
//! How each step is reached, with no test-only code in the daemons (the
//! fake sysfs files are FIFOs where lsusd must wait, as a real kernel
//! file can make it wait):
//!
//! | step | how the attempt is held there |
//! |---|---|
//! | trigger seen, lock test | a shared lock on `disabled`; `request-suspend --wait`; lsusd has answered `blocked` and waits for the blocker |
//! | count read | `power/wakeup_count` is a FIFO: lsusd waits in its open for reading |
//! | imminent written | the libsus watcher holds `watching` after `SuspendImminent` |
//! | watchers ready | the count was served through the FIFO, the watcher is ready: lsusd waits in the open of `wakeup_count` to write the count back, holding `disabled` exclusively |
//! | state write | `power/state` is a FIFO: lsusd waits in its open |
//! | resume | the state was read from the FIFO; `power/pm_wakeup_irq` is a FIFO: lsusd waits in its open (reading the wake reasons after resume) |
//! | end-of-attempt writes | the kill follows inotify's `IN_MOVED_TO` of `outcome` in `RUN/records`: lsusd is then writing the history, replacing `watching`, or removing `request` |
//!
//! lsusd's main thread waiting in the open of a FIFO shows as
//! `wait_for_partner` in `/proc/PID/wchan`. Steps lsusd passes without
//! waiting on anything outside it (the count written back and accepted,
//! the outcome staged in `.staging`) are covered by the simulated-kernel
//! unit tests of `lsusd/src/suspend_loop/tests.rs`.

mod harness;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use harness::{bin, Env, DEADLINE};
use libsus::{WakeAlarm, WakeEvents, WatchEvent, Watcher};
use lsus_proto::status::{LsusedStatus, WakealarmdStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Blocked,
    CountRead,
    Imminent,
    WatchersReady,
    StateWrite,
    Resume,
    EndWrites,
}

const STEPS: [Step; 7] = [
    Step::Blocked,
    Step::CountRead,
    Step::Imminent,
    Step::WatchersReady,
    Step::StateWrite,
    Step::Resume,
    Step::EndWrites,
];

const DAEMONS: [&str; 3] = ["lsusd", "lsused", "wakealarmd"];

/// The libsus watcher's side: counts, and a hold on `SuspendImminent`.
#[derive(Default)]
struct WatchShared {
    imminent: AtomicU64,
    resumed: AtomicU64,
    hold: AtomicBool,
    holding: AtomicBool,
    stop: AtomicBool,
    failed: std::sync::Mutex<Option<String>>,
}

/// The clients a program would have: a watcher, an lsused client and a
/// wake alarm, each in its own thread.
struct Clients {
    watch: Arc<WatchShared>,
    events_reconnects: Arc<AtomicU64>,
    alarm_reconnects: Arc<AtomicU64>,
    alarm_at: u64,
    threads: Vec<JoinHandle<()>>,
}

fn fail(shared: &WatchShared, what: String) {
    *shared.failed.lock().unwrap() = Some(what);
}

impl Clients {
    fn start(env: &Env) -> Clients {
        let watch = Arc::new(WatchShared::default());
        let mut threads = Vec::new();
        let run = env.run.clone();
        let w = Arc::clone(&watch);
        let mut watcher = Watcher::open_in(&run).unwrap();
        threads.push(thread::spawn(move || {
            while !w.stop.load(Ordering::SeqCst) {
                match watcher.wait_timeout(Some(Duration::from_millis(50))) {
                    Ok(Some(WatchEvent::SuspendImminent)) => {
                        w.imminent.fetch_add(1, Ordering::SeqCst);
                        while w.hold.load(Ordering::SeqCst) && !w.stop.load(Ordering::SeqCst) {
                            w.holding.store(true, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(2));
                        }
                        w.holding.store(false, Ordering::SeqCst);
                        if let Err(e) = watcher.ready() {
                            fail(&w, format!("watcher ready: {e}"));
                            return;
                        }
                    }
                    Ok(Some(WatchEvent::Resumed)) => {
                        w.resumed.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        fail(&w, format!("watcher: {e}"));
                        return;
                    }
                }
            }
        }));
        // An lsused client with one pipe registered (never readable, so
        // lsused never asks it), in its own loop.
        let events_reconnects = Arc::new(AtomicU64::new(0));
        let (r, w_end) = nix::unistd::pipe().unwrap();
        let mut events = WakeEvents::connect_in(&run).unwrap();
        events.register(&[&r]).unwrap();
        let (stop, n, shared) = (
            Arc::clone(&watch),
            Arc::clone(&events_reconnects),
            Arc::clone(&watch),
        );
        threads.push(thread::spawn(move || {
            let _keep = (r, w_end);
            while !stop.stop.load(Ordering::SeqCst) {
                match events.wait_timeout(Some(Duration::from_millis(50))) {
                    Ok(_) => n.store(events.reconnects(), Ordering::SeqCst),
                    Err(e) => {
                        fail(&shared, format!("WakeEvents: {e}"));
                        return;
                    }
                }
            }
        }));
        // A wake alarm an hour away, in its own loop.
        let alarm_reconnects = Arc::new(AtomicU64::new(0));
        let when = SystemTime::now() + Duration::from_secs(3600);
        // Whole seconds, rounded up as libsus sends them.
        let alarm_at = when
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            .div_ceil(1000) as u64;
        let mut alarm = WakeAlarm::new_in(&run, when).unwrap();
        let (stop, n) = (Arc::clone(&watch), Arc::clone(&alarm_reconnects));
        threads.push(thread::spawn(move || {
            while !stop.stop.load(Ordering::SeqCst) {
                match alarm.wait_timeout(Some(Duration::from_millis(50))) {
                    Ok(false) => n.store(alarm.reconnects(), Ordering::SeqCst),
                    Ok(true) => {
                        fail(&stop, "the alarm an hour away fired".into());
                        return;
                    }
                    Err(e) => {
                        fail(&stop, format!("WakeAlarm: {e}"));
                        return;
                    }
                }
            }
        }));
        Clients {
            watch,
            events_reconnects,
            alarm_reconnects,
            alarm_at,
            threads,
        }
    }

    fn check(&self, env: &Env) {
        if let Some(e) = self.watch.failed.lock().unwrap().as_ref() {
            panic!("a client failed: {e}\n{}", env.dump());
        }
    }

    fn stop(self) {
        self.watch.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

/// Returns the index of the running instance of daemon `name`.
fn current(env: &Env, name: &str) -> usize {
    env.daemons
        .iter()
        .rposition(|d| d.name == name)
        .expect("daemon started")
}

fn pid_of(env: &Env, name: &str) -> u32 {
    env.daemons[current(env, name)].child.id()
}

/// True when `pid`'s main thread waits in the open of a FIFO.
fn in_fifo_open(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/wchan")).is_ok_and(|w| w.trim() == "wait_for_partner")
}

/// The PIDs holding a lock on `name` in the run directory.
fn holders(env: &Env, name: &str) -> Vec<u32> {
    let Ok(meta) = fs::metadata(env.path(name)) else {
        return Vec::new();
    };
    lsus_sys::proclocks::holders(meta.dev(), meta.ino())
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.pid)
        .collect()
}

fn disabled_ino(env: &Env) -> u64 {
    fs::metadata(env.path("disabled")).unwrap().ino()
}

/// A process holding a shared lock on `disabled` (the shell idiom of
/// doc/protocol.md §1.1, with the lock left to `sleep`).
fn spawn_block(env: &Env) -> Child {
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 9<"$RUN/disabled"; flock -s 9; echo locked; exec sleep 600"#)
        .env("RUN", &env.run)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // With lsusd holding `disabled` exclusively the lock comes only when
    // it lets go: the caller waits for "locked" when it needs it.
    child
}

/// Opens a FIFO's read end without waiting for a writer, then makes reads
/// block (until the writer closes).
fn fifo_reader(path: &std::path::Path) -> File {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap();
    nix::fcntl::fcntl(
        f.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )
    .unwrap();
    f
}

/// Opens a FIFO's write end; a reader waits in its open already.
fn fifo_writer(path: &std::path::Path) -> File {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap()
}

fn wait_locked(env: &Env, block: &mut Child) {
    let mut out = block.stdout.take().unwrap();
    let mut buf = [0u8; 7];
    let end = Instant::now() + DEADLINE;
    let mut got = 0;
    while got < buf.len() {
        assert!(
            Instant::now() < end,
            "the block never took its lock\n{}",
            env.dump()
        );
        let n = out.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "the block exited\n{}", env.dump());
        got += n;
    }
    assert_eq!(&buf, b"locked\n");
}

/// Replaces the file at `path` by a regular file with `text` (renamed
/// over it, so a FIFO there is gone at once for any later open).
fn regular_over(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("reg");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn kill9(env: &mut Env, name: &str) -> Instant {
    let i = current(env, name);
    let pid = nix::unistd::Pid::from_raw(env.daemons[i].child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let at = Instant::now();
    let _ = env.daemons[i].child.wait();
    at
}

fn restart(env: &mut Env, name: &str) {
    match name {
        "lsusd" => env.start_lsusd(&[]),
        "lsused" => env.start_socket_daemon("lsused", "registration", &[]),
        _ => env.start_socket_daemon("wakealarmd", "wakealarm", &[]),
    }
}

/// Every record of the history, oldest first; each line must parse.
fn history(env: &Env) -> Vec<lsus_proto::outcome::Record> {
    let text = fs::read_to_string(env.path("log/history")).unwrap_or_default();
    text.lines()
        .map(|l| {
            l.parse()
                .unwrap_or_else(|e| panic!("history line {l:?}: {e}\n{}", env.dump()))
        })
        .collect()
}

fn suspended_after(env: &Env, seq: u64) -> usize {
    history(env)
        .iter()
        .filter(|r| r.seq > seq && matches!(r.outcome, libsus::Outcome::Suspended { .. }))
        .count()
}

fn wait_exit(
    env: &Env,
    child: &mut Child,
    what: &str,
) -> (std::process::ExitStatus, String, String) {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            if let Some(mut o) = child.stdout.take() {
                o.read_to_string(&mut out).unwrap();
            }
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err).unwrap();
            }
            return (status, out, err);
        }
        assert!(
            Instant::now() < end,
            "{what} did not exit within {DEADLINE:?}\n{}",
            env.dump()
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// One round: reach `step`, kill `victim`, restart it, check everything.
/// Returns the delay from the kill to the waiting request's exit 2 when
/// the victim is lsusd.
fn round(step: Step, victim: &str) -> Option<Duration> {
    let mut env = Env::new();
    let sys = env.sys.clone();
    let count = sys.join("power/wakeup_count");
    let irq = sys.join("power/pm_wakeup_irq");
    if matches!(step, Step::CountRead | Step::WatchersReady) {
        fs::remove_file(&count).unwrap();
        nix::unistd::mkfifo(&count, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }
    if matches!(step, Step::StateWrite | Step::Resume) {
        env.state_fifo();
    }
    // A second name of the pm_wakeup_irq FIFO, to open it after the
    // first name has become a regular file.
    let irq_fifo = sys.join("power/pm_wakeup_irq.fifo");
    if step == Step::Resume {
        nix::unistd::mkfifo(&irq, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        fs::hard_link(&irq, &irq_fifo).unwrap();
    }
    env.start_lsusd(&[]);
    env.start_socket_daemon("lsused", "registration", &[]);
    env.start_socket_daemon("wakealarmd", "wakealarm", &[]);
    let clients = Clients::start(&env);
    let me = std::process::id();
    env.wait_for("every watcher registered", DEADLINE, || {
        let h = holders(&env, "watching");
        h.contains(&me)
            && h.contains(&pid_of(&env, "lsused"))
            && h.contains(&pid_of(&env, "wakealarmd"))
    });
    let ino = disabled_ino(&env);
    let lsusd = pid_of(&env, "lsusd");
    let mut block = None;
    if step == Step::Blocked {
        let mut b = spawn_block(&env);
        wait_locked(&env, &mut b);
        block = Some(b);
    }
    if matches!(step, Step::Imminent | Step::EndWrites) {
        clients.watch.hold.store(true, Ordering::SeqCst);
    }
    let seq0 = env.outcome_seq();
    // The outcome record is renamed into RUN/records (doc/protocol.md §1.5).
    let mut ino_events = inotify::Inotify::init().unwrap();
    ino_events
        .watches()
        .add(env.path("records"), inotify::WatchMask::MOVED_TO)
        .unwrap();
    let mut req = Command::new(bin("request-suspend"))
        .arg("--run-dir")
        .arg(&env.run)
        .args(["--timeout", "60"])
        .args(if step == Step::Blocked {
            &["--wait"][..]
        } else {
            &[][..]
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Reach the step.
    let mut state_reader = None;
    match step {
        Step::Blocked => env.wait_for("the blocked answer", DEADLINE, || {
            env.outcome().is_some_and(|r| {
                r.seq > seq0 && matches!(r.outcome, libsus::Outcome::Blocked { .. })
            })
        }),
        Step::CountRead => {
            env.wait_for("lsusd in the count read", DEADLINE, || in_fifo_open(lsusd))
        }
        Step::Imminent | Step::EndWrites => {
            env.wait_for("the watcher told and holding", DEADLINE, || {
                clients.watch.holding.load(Ordering::SeqCst)
            })
        }
        Step::WatchersReady => {
            env.wait_for("lsusd in the count read", DEADLINE, || in_fifo_open(lsusd));
            fifo_writer(&count).write_all(b"7\n").unwrap();
            env.wait_for("the watcher told", DEADLINE, || {
                clients.watch.imminent.load(Ordering::SeqCst) == 1
            });
            env.wait_for("lsusd in the count write-back", DEADLINE, || {
                in_fifo_open(lsusd)
            });
        }
        Step::StateWrite => {
            env.wait_for("lsusd in the state write", DEADLINE, || in_fifo_open(lsusd))
        }
        Step::Resume => {
            env.wait_for("lsusd in the state write", DEADLINE, || in_fifo_open(lsusd));
            let state = sys.join("power/state");
            let reader = thread::spawn(move || {
                let mut text = String::new();
                File::open(&state)
                    .unwrap()
                    .read_to_string(&mut text)
                    .unwrap();
                text
            });
            env.wait_for("the state written", DEADLINE, || reader.is_finished());
            state_reader = Some(reader);
            env.wait_for("lsusd reading the wake reasons", DEADLINE, || {
                in_fifo_open(lsusd)
            });
        }
    }
    // A block taken now (lsusd passed step 3); where lsusd holds
    // `disabled` exclusively it comes when lsusd lets go.
    if step == Step::EndWrites {
        let mut b = spawn_block(&env);
        wait_locked(&env, &mut b);
        block = Some(b);
        clients.watch.hold.store(false, Ordering::SeqCst);
        // Kill as soon as the outcome (blocked, at step 7) is renamed in.
        let mut buf = [0u8; 4096];
        let end = Instant::now() + DEADLINE;
        'wait: loop {
            assert!(Instant::now() < end, "no outcome record\n{}", env.dump());
            for e in ino_events.read_events_blocking(&mut buf).unwrap() {
                if e.name.is_some_and(|n| n == "outcome") {
                    break 'wait;
                }
            }
        }
    } else if block.is_none() {
        let mut b = spawn_block(&env);
        if matches!(step, Step::CountRead | Step::Imminent) {
            // `disabled` is free here: the block is held before the kill.
            wait_locked(&env, &mut b);
        }
        block = Some(b);
    }
    let seq_kill = env.outcome_seq();
    let killed_at = kill9(&mut env, victim);
    let mut delay = None;
    if victim == "lsusd" {
        let (status, out, err) = wait_exit(&env, &mut req, "request-suspend");
        if step == Step::EndWrites {
            // Answered by the record (blocked at step 7) before the kill.
            assert_eq!(status.code(), Some(1), "{out}{err}\n{}", env.dump());
        } else {
            // The waiting requester gives up with one line, exit 2.
            delay = Some(killed_at.elapsed());
            assert_eq!(status.code(), Some(2), "{out}{err}\n{}", env.dump());
            assert_eq!(err.lines().count(), 1, "one line: {err:?}");
            assert!(err.contains("stopped while the request waited"), "{err}");
        }
        // What lsusd waited on is gone; the new one finds plain files.
        regular_over(&count, "7\n");
        regular_over(&sys.join("power/state"), "");
        if irq.exists() {
            regular_over(&irq, "8\n");
        }
        if let Some(r) = state_reader.take() {
            assert_eq!(r.join().unwrap(), "mem\n");
        }
        clients.watch.hold.store(false, Ordering::SeqCst);
        restart(&mut env, "lsusd");
        assert!(
            !env.path("request").exists(),
            "the old request is gone at start-up"
        );
    } else {
        // Let lsusd's attempt go on from where it waits. The victim starts
        // again after that: a watcher daemon started during an attempt
        // joins for the next one, before it says "ready".
        match step {
            Step::CountRead => {
                let mut w = fifo_writer(&count);
                regular_over(&count, "7\n");
                w.write_all(b"7\n").unwrap();
            }
            Step::WatchersReady => {
                let mut r = fifo_reader(&count);
                regular_over(&count, "7\n");
                let mut text = String::new();
                r.read_to_string(&mut text).unwrap();
                assert_eq!(text, "7", "the count written back");
            }
            Step::StateWrite => {
                let state = sys.join("power/state");
                let mut r = fifo_reader(&state);
                regular_over(&state, "");
                let mut text = String::new();
                r.read_to_string(&mut text).unwrap();
                assert_eq!(text, "mem\n");
            }
            Step::Resume => {
                // lsusd keeps the file open and reads it with pread, which
                // a FIFO refuses: it opens the name again, so the name is
                // a regular file before its open of the FIFO returns.
                regular_over(&irq, "8\n");
                let mut w = fifo_writer(&irq_fifo);
                let _ = w.write_all(b"8\n");
                drop(w);
                assert_eq!(state_reader.take().unwrap().join().unwrap(), "mem\n");
                regular_over(&sys.join("power/state"), "");
            }
            Step::Imminent => clients.watch.hold.store(false, Ordering::SeqCst),
            Step::Blocked | Step::EndWrites => {}
        }
        if step != Step::Blocked {
            let (status, out, err) = wait_exit(&env, &mut req, "request-suspend");
            // Refused when the block came before step 7's checks,
            // suspended when it came during the state write.
            let want = match step {
                Step::CountRead | Step::Imminent | Step::EndWrites => 1,
                _ => 0,
            };
            assert_eq!(status.code(), Some(want), "{out}{err}\n{}", env.dump());
        }
        restart(&mut env, victim);
    }
    let mut block = block.unwrap();
    if matches!(step, Step::WatchersReady | Step::StateWrite | Step::Resume) {
        // Taken when lsusd let go of `disabled` (or died holding it).
        wait_locked(&env, &mut block);
    }

    // The block held before the kill is in force, on the same inode.
    assert_eq!(disabled_ino(&env), ino, "disabled was replaced");
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}\n{}", env.dump());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("blocked by PID {}", block.id())),
        "{said}\n{}",
        env.dump()
    );
    let _ = block.kill();
    let _ = block.wait();
    let mut told_suspended = 0;
    if step == Step::Blocked && victim != "lsusd" {
        // The --wait request suspends once the block has gone.
        let (status, out, err) = wait_exit(&env, &mut req, "request-suspend --wait");
        assert_eq!(status.code(), Some(0), "{out}{err}\n{}", env.dump());
        told_suspended += 1;
    }
    if matches!(step, Step::WatchersReady | Step::StateWrite | Step::Resume) && victim != "lsusd" {
        told_suspended += 1;
    }

    // The clients reconnected by themselves; everything is registered.
    clients.check(&env);
    env.wait_for("lsused counts the client again", DEADLINE, || {
        fs::read_to_string(env.path("lsused.status"))
            .ok()
            .and_then(|t| t.parse::<LsusedStatus>().ok())
            .is_some_and(|s| s.clients == 1 && s.descriptors == 1)
    });
    env.wait_for("wakealarmd has the alarm again", DEADLINE, || {
        fs::read_to_string(env.path("wakealarmd.status"))
            .ok()
            .and_then(|t| t.parse::<WakealarmdStatus>().ok())
            .is_some_and(|s| {
                s.connections == 1 && s.pending == 1 && s.next == Some(clients.alarm_at)
            })
    });
    if victim == "lsused" {
        env.wait_for("WakeEvents reconnected", DEADLINE, || {
            clients.events_reconnects.load(Ordering::SeqCst) >= 1
        });
    }
    if victim == "wakealarmd" {
        env.wait_for("WakeAlarm reconnected", DEADLINE, || {
            clients.alarm_reconnects.load(Ordering::SeqCst) >= 1
        });
    }
    env.wait_for("every watcher registered again", DEADLINE, || {
        let h = holders(&env, "watching");
        h.contains(&me)
            && h.contains(&pid_of(&env, "lsused"))
            && h.contains(&pid_of(&env, "wakealarmd"))
    });
    // The next cycle: heard by the watcher.
    env.wait_for("the watcher idle", DEADLINE, || {
        clients.watch.imminent.load(Ordering::SeqCst)
            == clients.watch.resumed.load(Ordering::SeqCst)
    });
    let heard = clients.watch.resumed.load(Ordering::SeqCst);
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", env.dump());
    told_suspended += 1;
    env.wait_for("the watcher heard the cycle", DEADLINE, || {
        clients.watch.resumed.load(Ordering::SeqCst) == heard + 1
    });
    clients.check(&env);

    // No request left over was honoured: every suspend after the kill is
    // one a requester was told of.
    assert_eq!(
        suspended_after(&env, seq_kill),
        told_suspended,
        "suspends after the kill\n{}",
        env.dump()
    );
    assert!(!env.path("request").exists());
    // No temporary file left; everything readable.
    let staging: Vec<String> = fs::read_dir(env.path(".staging"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(staging.is_empty(), "left in .staging: {staging:?}");
    let tmp: Vec<String> = fs::read_dir(&env.run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "temporary files: {tmp:?}");
    assert!(env.outcome().is_some(), "{}", env.dump());
    let _ = history(&env);
    clients.stop();
    let _ = req.kill();
    let _ = req.wait();
    delay
}

#[test]
fn every_daemon_killed_at_every_step_comes_back_with_nothing_lost() {
    let started = Instant::now();
    let mut delays = Vec::new();
    for step in STEPS {
        for victim in DAEMONS {
            let t = Instant::now();
            let d = round(step, victim);
            eprintln!(
                "kill -9 {victim} at {step:?}: checked in {:.2} s{}",
                t.elapsed().as_secs_f64(),
                d.map_or(String::new(), |d| format!(
                    "; the waiting request-suspend exited 2 {:.0} ms after the kill",
                    d.as_secs_f64() * 1e3
                ))
            );
            delays.extend(d);
        }
    }
    let worst = delays.iter().max().copied().unwrap_or_default();
    eprintln!(
        "kill -9: {} rounds in {:.1} s; request-suspend exit 2 after lsusd's kill: worst {:.0} ms",
        STEPS.len() * DAEMONS.len(),
        started.elapsed().as_secs_f64(),
        worst.as_secs_f64() * 1e3
    );
}
