//! lsus-logind against a fake systemd-logind on a private bus: the test
//! starts its own `dbus-daemon --session`, serves a small
//! `org.freedesktop.login1.Manager` on it with zbus (ListInhibitors,
//! Inhibit, the PropertiesChanged and PrepareForSleep signals), and points
//! the real lsus-logind binary at that bus, beside a real lsusd on a fake
//! sysfs tree.
//!
//! Without dbus-daemon the tests are skipped with a note, except under
//! `CI=true`, where a missing dbus-daemon fails them (.ci/run installs it).

mod harness;

use std::collections::HashMap;
use std::io::BufRead;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use harness::{Env, DEADLINE};
use lsus_sys::lock::{try_lock, LockKind};
use zbus::blocking::Connection;
use zbus::zvariant::Value;

const PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";

type Listed = (String, String, String, String, u32, u32);

/// What the fake logind knows.
#[derive(Default)]
struct Fake {
    inhibitors: Vec<Listed>,
    /// Our ends of the delay inhibitors handed out (a pipe each: the
    /// caller holds the write end; it hung up when it released).
    delays: Vec<OwnedFd>,
    /// The answer to PreparingForSleep.
    preparing: bool,
    /// Where a Suspend call goes (the test plays logind's sequence).
    suspend: Option<std::sync::mpsc::Sender<()>>,
}

struct Manager(Arc<Mutex<Fake>>);

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn list_inhibitors(&self) -> Vec<Listed> {
        self.0.lock().unwrap().inhibitors.clone()
    }

    fn inhibit(
        &self,
        what: String,
        who: String,
        why: String,
        mode: String,
    ) -> zbus::fdo::Result<zbus::zvariant::OwnedFd> {
        let (read, write) =
            nix::unistd::pipe().map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        let mut fake = self.0.lock().unwrap();
        fake.delays.push(read);
        fake.inhibitors.push((what, who, why, mode, 0, 1));
        Ok(write.into())
    }

    fn suspend(&self, _interactive: bool) -> zbus::fdo::Result<()> {
        match &self.0.lock().unwrap().suspend {
            Some(tx) => tx
                .send(())
                .map_err(|_| zbus::fdo::Error::Failed("nobody plays logind".into())),
            None => Err(zbus::fdo::Error::NotSupported("no Suspend here".into())),
        }
    }

    #[zbus(property)]
    fn preparing_for_sleep(&self) -> bool {
        self.0.lock().unwrap().preparing
    }
}

/// A private bus and a fake logind on it.
struct Bus {
    daemon: Child,
    address: String,
    logind: Option<Connection>,
    fake: Arc<Mutex<Fake>>,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Starts `dbus-daemon --session` and the fake logind; `None` (skip) when
/// dbus-daemon is missing outside CI.
fn bus() -> Option<Bus> {
    let daemon = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--nopidfile", "--print-address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut daemon = match daemon {
        Ok(d) => d,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("dbus-daemon cannot be started under CI=true: {e} (install the dbus-daemon package)")
        }
        Err(e) => {
            eprintln!(
                "SKIPPED: dbus-daemon cannot be started ({e}); install the dbus-daemon package"
            );
            return None;
        }
    };
    let mut address = String::new();
    std::io::BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let address = address.trim().to_string();
    assert!(!address.is_empty(), "dbus-daemon printed no address");
    let fake = Arc::new(Mutex::new(Fake::default()));
    let mut bus = Bus {
        daemon,
        address,
        logind: None,
        fake,
    };
    bus.start_logind();
    Some(bus)
}

impl Bus {
    /// Puts the fake logind on the bus (again).
    fn start_logind(&mut self) {
        let conn = zbus::blocking::connection::Builder::address(self.address.as_str())
            .unwrap()
            .name("org.freedesktop.login1")
            .unwrap()
            .serve_at(PATH, Manager(Arc::clone(&self.fake)))
            .unwrap()
            .build()
            .unwrap();
        self.logind = Some(conn);
    }

    /// Takes the fake logind off the bus.
    fn stop_logind(&mut self) {
        if let Some(conn) = self.logind.take() {
            conn.close().unwrap();
        }
    }

    fn conn(&self) -> &Connection {
        self.logind.as_ref().expect("the fake logind is on the bus")
    }

    /// Sets the inhibitors and tells the bus as logind does.
    fn set_inhibitors(&self, list: &[(&str, &str, &str, &str, u32, u32)]) {
        self.fake.lock().unwrap().inhibitors = list
            .iter()
            .map(|&(what, who, why, mode, uid, pid)| {
                (what.into(), who.into(), why.into(), mode.into(), uid, pid)
            })
            .collect();
        let blocked: Vec<&str> = list
            .iter()
            .filter(|i| i.3 == "block")
            .map(|i| i.0)
            .collect();
        let mut changed: HashMap<&str, Value> = HashMap::new();
        changed.insert("BlockInhibited", Value::from(blocked.join(":")));
        self.conn()
            .emit_signal(
                None::<()>,
                PATH,
                "org.freedesktop.DBus.Properties",
                "PropertiesChanged",
                &(MANAGER, changed, Vec::<&str>::new()),
            )
            .unwrap();
    }

    fn prepare_for_sleep(&self, start: bool) {
        self.fake.lock().unwrap().preparing = start;
        self.conn()
            .emit_signal(None::<()>, PATH, MANAGER, "PrepareForSleep", &start)
            .unwrap();
    }

    /// Sends a PrepareForSleep whose body is not a boolean.
    fn odd_signal(&self) {
        self.conn()
            .emit_signal(None::<()>, PATH, MANAGER, "PrepareForSleep", &("yes", 3u32))
            .unwrap();
    }

    /// Returns how many delay inhibitors were handed out and how many of
    /// them are still held by their caller.
    fn delays(&self) -> (usize, usize) {
        let fake = self.fake.lock().unwrap();
        let held = fake
            .delays
            .iter()
            .filter(|fd| {
                let mut p = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                nix::poll::poll(&mut p, nix::poll::PollTimeout::ZERO).unwrap();
                !p[0]
                    .revents()
                    .unwrap()
                    .contains(nix::poll::PollFlags::POLLHUP)
            })
            .count();
        (fake.delays.len(), held)
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// lsusd's own test: is `disabled` blocked?
fn blocked(env: &Env) -> bool {
    let f = std::fs::File::open(env.path("disabled")).unwrap();
    !try_lock(&f, LockKind::Exclusive).unwrap()
}

fn published(env: &Env) -> String {
    std::fs::read_to_string(env.path("lsus-logind.status")).unwrap_or_default()
}

fn lsusctl_status(env: &Env) -> String {
    let out = Command::new(harness::bin("lsusctl"))
        .arg("--run-dir")
        .arg(&env.run)
        .arg("status")
        .output()
        .unwrap();
    text(&out)
}

/// lsusd and lsus-logind on the bus.
fn start(env: &mut Env, bus: &Bus) -> String {
    env.start_lsusd(&[]);
    let run = env.run.display().to_string();
    env.spawn(
        "lsus-logind",
        &["--run-dir", &run, "--bus-address", &bus.address],
    );
    env.wait_log("lsus-logind", " INFO ready: ", DEADLINE);
    env.wait_for("lsus-logind's first status", DEADLINE, || {
        published(env).starts_with("logind=connected")
    });
    format!(
        "logind inhibitor \"Playing a video\" (Videos, PID 4321, user {})",
        user_of(0)
    )
}

fn user_of(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or(uid.to_string(), |u| u.name)
}

const VIDEO: (&str, &str, &str, &str, u32, u32) =
    ("sleep:idle", "Videos", "Playing a video", "block", 0, 4321);
const DELAY: (&str, &str, &str, &str, u32, u32) =
    ("sleep", "Updates", "Saving state", "delay", 1000, 77);
const SHUTDOWN: (&str, &str, &str, &str, u32, u32) =
    ("shutdown", "Backup", "Writing", "block", 1000, 78);

#[test]
fn a_block_sleep_inhibitor_blocks_lsusd_and_is_named_until_released() {
    let Some(bus) = bus() else { return };
    let mut env = Env::new();
    let name = start(&mut env, &bus);

    // Inhibitors that do not block sleep change nothing.
    bus.set_inhibitors(&[DELAY, SHUTDOWN]);
    env.wait_for("lsus-logind to list 2 inhibitors", DEADLINE, || {
        published(&env).contains("inhibitors=2 ")
    });
    assert!(!blocked(&env), "{}", env.dump());

    bus.set_inhibitors(&[DELAY, VIDEO, SHUTDOWN]);
    env.wait_for("lsus-logind to hold disabled", DEADLINE, || {
        blocked(&env) && published(&env).contains("holding=yes")
    });

    // lsusd finds the block and names the inhibitor, not lsus-logind.
    let mut req = env.request_spawn();
    env.wait_log("lsusd", &format!("blocked by {name}"), DEADLINE);

    // lsusctl status: the holder, what it stands for, and the logind section.
    let st = lsusctl_status(&env);
    assert!(st.contains(&format!("blocked by {name}")), "{st}");
    assert!(
        st.contains("logind: lsus-logind running") && st.contains("1 inhibitor blocks sleep"),
        "{st}"
    );
    for who in ["Videos", "Updates", "Backup"] {
        assert!(st.contains(who), "{who} missing from\n{st}");
    }

    // An lsusd that answers a blocked request at once (#12) has answered
    // by now, and request-suspend named the inhibitor; one that answers
    // when the blockers leave answers below.
    let answered_early = req.try_wait().unwrap().is_some();

    // Released: request-suspend suspends.
    bus.set_inhibitors(&[DELAY]);
    env.wait_for("lsus-logind to let go", DEADLINE, || {
        !blocked(&env) && published(&env).contains("holding=no")
    });
    // The request made while blocked is dropped (lsusd's rule). Answered
    // after the release, the inhibitor is gone from the list by then, and
    // lsus-logind is named as such.
    let out = req.wait_with_output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}\n{}", env.dump());
    let named = said.contains(&format!("blocked by {name}"));
    if answered_early {
        assert!(named, "{said}");
    } else {
        assert!(
            named || said.contains("(lsus-logind, for logind inhibitors)"),
            "{said}"
        );
    }
    assert_eq!(env.state(), "", "nothing written while blocked");
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.dump());
    assert_eq!(env.state(), "mem\n");
}

#[test]
fn logind_s_own_suspend_is_not_refused_by_an_inhibitor_it_overrode() {
    let Some(bus) = bus() else { return };
    let mut env = Env::new();
    start(&mut env, &bus);
    env.wait_for("lsus-logind's delay inhibitor", DEADLINE, || {
        bus.delays() == (1, 1)
    });
    bus.set_inhibitors(&[VIDEO]);
    env.wait_for("lsus-logind to hold disabled", DEADLINE, || blocked(&env));

    // An odd signal is ignored.
    bus.odd_signal();
    // logind decided to suspend anyway (a lid switch): PrepareForSleep(true).
    // lsus-logind lets go of disabled, then of its delay inhibitor.
    bus.prepare_for_sleep(true);
    env.wait_for("the delay inhibitor to be released", DEADLINE, || {
        bus.delays() == (1, 0)
    });
    assert!(!blocked(&env), "let go before the delay\n{}", env.dump());
    assert!(published(&env).contains("sleeping=yes"));
    // What the drop-in in systemd-suspend.service runs.
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.dump());
    assert_eq!(env.state(), "mem\n");

    // Resumed: the block is back, and a new delay inhibitor.
    bus.prepare_for_sleep(false);
    env.wait_for("lsus-logind to hold disabled again", DEADLINE, || {
        blocked(&env) && bus.delays() == (2, 1)
    });
    assert!(
        env.log("lsus-logind").contains("odd body"),
        "{}",
        env.dump()
    );
}

#[test]
fn logind_or_the_bus_going_away_keeps_the_last_state_and_never_ends_lsus_logind() {
    let Some(mut bus) = bus() else { return };
    let mut env = Env::new();
    start(&mut env, &bus);
    bus.set_inhibitors(&[VIDEO]);
    env.wait_for("lsus-logind to hold disabled", DEADLINE, || blocked(&env));

    // logind leaves the bus: the last known state stays in force.
    bus.stop_logind();
    env.wait_for("lsus-logind to notice", DEADLINE, || {
        published(&env).starts_with("logind=disconnected")
    });
    assert!(blocked(&env));
    env.wait_log("lsus-logind", "logind left the bus", DEADLINE);

    // It comes back with nothing: lsus-logind lists again and lets go.
    bus.fake.lock().unwrap().inhibitors.clear();
    bus.start_logind();
    env.wait_for("lsus-logind to let go", DEADLINE, || {
        !blocked(&env) && published(&env).starts_with("logind=connected")
    });

    // The bus itself dies: lsus-logind says so and keeps running.
    bus.set_inhibitors(&[VIDEO]);
    env.wait_for("lsus-logind to hold disabled", DEADLINE, || blocked(&env));
    let _ = bus.daemon.kill();
    let _ = bus.daemon.wait();
    env.wait_log("lsus-logind", "connecting again", DEADLINE);
    env.wait_for("the status to say so", DEADLINE, || {
        published(&env).starts_with("logind=disconnected")
    });
    assert!(blocked(&env), "the last known state stays in force");
    assert!(env.exited(1).is_none(), "lsus-logind ended\n{}", env.dump());

    // SIGTERM: a clean end, the status and PID files gone, the lock with
    // them.
    assert!(env.path("lsus-logind.pid").exists());
    let status = env.stop(1);
    assert!(status.success(), "{status:?}\n{}", env.dump());
    assert!(!env.path("lsus-logind.status").exists());
    assert!(!env.path("lsus-logind.pid").exists(), "{}", env.dump());
    assert!(!blocked(&env));
}

#[test]
fn request_suspend_via_logind_runs_logind_s_sequence_and_reports_lsusd_s_outcome() {
    let Some(bus) = bus() else { return };
    let mut env = Env::new();
    let name = start(&mut env, &bus);

    // logind's sequence, as systemd-suspend.service with the drop-in runs
    // it: PrepareForSleep(true), the plain request-suspend, (false).
    let (tx, rx) = std::sync::mpsc::channel();
    bus.fake.lock().unwrap().suspend = Some(tx);
    let conn = bus.conn().clone();
    let run = env.run.clone();
    let logind = std::thread::spawn(move || {
        let mut results = Vec::new();
        for () in rx {
            let emit = |start: bool| {
                conn.emit_signal(None::<()>, PATH, MANAGER, "PrepareForSleep", &start)
                    .unwrap()
            };
            emit(true);
            let out = Command::new(harness::bin("request-suspend"))
                .arg("--run-dir")
                .arg(&run)
                .output()
                .unwrap();
            emit(false);
            results.push(out);
        }
        results
    });
    let via_spawn = |env: &Env| {
        Command::new(harness::bin("request-suspend"))
            .arg("--run-dir")
            .arg(&env.run)
            .args(["--via-logind", "--timeout", "30"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let via = |env: &Env| via_spawn(env).wait_with_output().unwrap();

    // A block inhibitor: refused at once, logind not asked.
    bus.set_inhibitors(&[VIDEO]);
    env.wait_for("lsus-logind to hold disabled", DEADLINE, || blocked(&env));
    let out = via(&env);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out), env.dump());
    assert!(
        text(&out).contains(&format!("blocked by {name}")),
        "{}",
        text(&out)
    );

    // None: logind's sequence runs, lsusd suspends, exit 0.
    bus.set_inhibitors(&[DELAY]);
    env.wait_for("lsus-logind to let go", DEADLINE, || !blocked(&env));
    let out = via(&env);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), env.dump());
    assert!(
        text(&out).contains("suspended and resumed"),
        "{}",
        text(&out)
    );
    assert_eq!(env.state(), "mem\n");

    // An lsusd blocker refuses logind's attempt: exit 1, with lsusd's reason.
    let mut holder = harness::sh_spawn(
        r#"exec 9<"$RUN/disabled"; flock --shared 9; echo locked; exec sleep 30"#,
        &env.run,
    );
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let req = via_spawn(&env);
    env.wait_log("lsusd", "blocked by PID", DEADLINE);
    // (An lsusd that answers when the blockers leave answers now.)
    let _ = holder.kill();
    let _ = holder.wait();
    let out = req.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out), env.dump());
    assert!(text(&out).contains("blocked by PID"), "{}", text(&out));

    // Without logind's Suspend: exit 2, with logind's error.
    bus.fake.lock().unwrap().suspend = None;
    let out = via(&env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("logind refused to suspend"),
        "{}",
        text(&out)
    );
    let results = logind.join().unwrap();
    assert_eq!(results.len(), 2, "the inhibited call must not reach logind");
    assert_eq!(results[0].status.code(), Some(0));
    assert_eq!(results[1].status.code(), Some(1));
}
