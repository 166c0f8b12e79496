//! wakealarmd with the real lsusd on a temp run directory and a fake sysfs.
//!
//! Clients here speak the text protocol on raw sockets, as the original's C
//! clients did, except where libsus's `WakeAlarm` or the `alarm_test`
//! example is what is tested. The fake RTC's `wakealarm` is a FIFO that the
//! test reads, so every write wakealarmd makes to it is seen (a regular file
//! would keep only the last one).

mod harness;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::{Env, DEADLINE};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Tests sensitive to timing do not run beside the 2,000-connection test.
static TIMING: Mutex<()> = Mutex::new(());

fn timing_lock() -> std::sync::MutexGuard<'static, ()> {
    TIMING.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rtc_dir(env: &Env) -> PathBuf {
    env.sys.join("class/rtc/rtc0")
}

/// Starts lsusd (really writing the fake `power/state`) and wakealarmd.
fn start(env: &mut Env) {
    env.start_lsusd(&[]);
    env.start_socket_daemon("wakealarmd", "wakealarm", &[]);
}

fn wakealarmd_index(env: &Env) -> usize {
    env.daemons
        .iter()
        .position(|d| d.name == "wakealarmd")
        .expect("wakealarmd was started")
}

/// A client written as a C program against the original would be: one
/// `write()` per message, replies read as they come.
struct Raw {
    s: UnixStream,
}

impl Raw {
    fn connect(env: &Env) -> Raw {
        let s = UnixStream::connect(env.path("wakealarm")).expect("connect to wakealarm");
        Raw { s }
    }

    /// Connects and reads the greeting.
    fn greeted(env: &Env) -> Raw {
        let mut c = Raw::connect(env);
        assert_eq!(c.line(DEADLINE), "0", "the greeting");
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write to wakealarmd");
    }

    /// Reads one line (without its newline), panicking after `timeout`.
    fn line(&mut self, timeout: Duration) -> String {
        self.try_line(timeout)
            .unwrap_or_else(|| panic!("no line from wakealarmd within {timeout:?}"))
    }

    /// Reads one line; `None` on time-out; `"<EOF>"` at end of file.
    fn try_line(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut line = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut b = [0u8; 1];
            match self.s.read(&mut b) {
                Ok(0) if line.is_empty() => return Some("<EOF>".into()),
                Ok(0) => panic!("EOF inside a line: {line:?}"),
                Ok(_) if b[0] == b'\n' => return Some(String::from_utf8(line).unwrap()),
                Ok(_) => line.push(b[0]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return None
                }
                Err(e) => panic!("read from wakealarmd: {e}"),
            }
        }
    }

    /// Waits until wakealarmd has read everything sent so far, so that
    /// what is sent next arrives in a read of its own (the split is
    /// certain, not a matter of timing).
    fn wait_read_by_peer(&self, env: &Env) {
        env.wait_for("wakealarmd read what was sent", DEADLINE, || {
            let mut unread: libc::c_int = 0;
            // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int, the bytes of the
            // socket's send queue not yet read by the peer, to `unread`,
            // which lives across the call; the descriptor is open.
            let r = unsafe { libc::ioctl(self.s.as_raw_fd(), libc::TIOCOUTQ, &mut unread) };
            assert_eq!(r, 0, "ioctl(TIOCOUTQ): {}", std::io::Error::last_os_error());
            unread == 0
        });
    }

    /// Writes `time` as the original's library did and checks the echo.
    fn set(&mut self, time: u64) {
        self.send(format!("{time}\n").as_bytes());
        assert_eq!(self.line(DEADLINE), time.to_string(), "the echo of {time}");
    }
}

/// Replaces the fake RTC's `wakealarm` with a FIFO and opens it read-write
/// (so it never reads EOF between wakealarmd's opens).
fn rtc_fifo(env: &Env) -> fs::File {
    let path = rtc_dir(env).join("wakealarm");
    fs::remove_file(&path).unwrap();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .unwrap()
}

/// Reads `n` lines written to the FIFO, waiting until `timeout`.
fn fifo_lines(env: &Env, fifo: &mut fs::File, n: usize, timeout: Duration) -> Vec<String> {
    let mut text = String::new();
    env.wait_for(&format!("{n} writes to the fake RTC"), timeout, || {
        let mut buf = [0u8; 256];
        while let Ok(k) = fifo.read(&mut buf) {
            if k == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..k]));
        }
        text.lines().count() >= n
    });
    text.lines().map(str::to_string).collect()
}

/// Returns the value and offset wakealarmd logged for its RTC write.
fn logged_rtc(env: &Env) -> (i64, i64) {
    let log = env.log("wakealarmd");
    let line = log
        .lines()
        .find(|l| l.contains("programmed to wake at"))
        .unwrap_or_else(|| panic!("no RTC line in the log\n{}", env.dump()));
    let num_after = |word: &str| -> i64 {
        let rest = &line[line.find(word).unwrap() + word.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        rest[..end].parse().unwrap()
    };
    (
        num_after("programmed to wake at "),
        num_after("RTC offset "),
    )
}

/// An alarm 10 s away and a request: wakealarmd clears the RTC alarm and
/// programs the alarm time, converted to RTC time, minus 2 s; lsusd then
/// suspends. `rtc_ahead` is how far the fake RTC's clock is ahead.
fn far_alarm_programs_the_rtc(rtc_ahead: i64) {
    let mut env = Env::new();
    let rtc_time = now_secs() as i64 + rtc_ahead;
    fs::write(rtc_dir(&env).join("since_epoch"), format!("{rtc_time}\n")).unwrap();
    let mut fifo = rtc_fifo(&env);
    start(&mut env);

    let mut c = Raw::greeted(&env);
    let wake = now_secs() + 10;
    c.set(wake);
    let before = now_secs() as i64;
    let out = env.request(&[]);
    let after = now_secs() as i64;
    assert_eq!(
        out.status.code(),
        Some(0),
        "request-suspend: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        env.dump()
    );
    assert!(env.state().contains("mem"), "state written\n{}", env.dump());

    let writes = fifo_lines(&env, &mut fifo, 2, DEADLINE);
    assert_eq!(writes[0], "0", "the alarm is cleared first\n{}", env.dump());
    let value: i64 = writes[1].parse().unwrap();
    // The offset is taken while suspend is imminent: between before and after.
    let lowest = wake as i64 + (rtc_time - after) - 2;
    let highest = wake as i64 + (rtc_time - before) - 2;
    assert!(
        (lowest..=highest).contains(&value),
        "RTC value {value} not in {lowest}..={highest}\n{}",
        env.dump()
    );
    assert_eq!(writes.len(), 2, "exactly two writes: {writes:?}");
    let (logged_value, offset) = logged_rtc(&env);
    assert_eq!(logged_value, value);
    assert_eq!(value, wake as i64 + offset - 2, "value = time + offset - 2");
    assert!((offset - rtc_ahead).abs() <= 1, "offset {offset}");
    // The client was not disturbed: its alarm is still pending.
    assert_eq!(c.try_line(Duration::from_millis(100)), None);
}

#[test]
fn far_alarm_programs_the_rtc_then_lsusd_suspends() {
    far_alarm_programs_the_rtc(0);
}

#[test]
fn rtc_an_hour_ahead_is_programmed_in_its_own_time() {
    far_alarm_programs_the_rtc(3600);
}

/// Runs request-suspend and asserts its exit code and the fake state.
fn request_expect(env: &Env, code: i32, suspended: bool) {
    env.clear_state();
    let out = env.request(&[]);
    assert_eq!(
        out.status.code(),
        Some(code),
        "request-suspend said {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        env.dump()
    );
    assert_eq!(env.state().contains("mem"), suspended, "{}", env.dump());
}

/// Checks that a request made now is refused at once because wakealarmd
/// blocks suspend: request-suspend exits 1 naming wakealarmd, and the
/// state file stays untouched.
fn blocked_request(env: &Env) {
    let out = env.request(&[]);
    let pid = env.daemons[wakealarmd_index(env)].child.id();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}{err}\n{}", env.dump());
    assert!(said.contains(&format!("blocked by PID {pid} (")), "{said}");
    assert!(env.state().is_empty(), "{}", env.dump());
}

#[test]
fn near_alarm_blocks_suspend_until_fired_and_closed() {
    let mut env = Env::new();
    let mut fifo = rtc_fifo(&env);
    start(&mut env);
    let mut c = Raw::greeted(&env);
    c.set(now_secs() + 2);
    // The alarm is too close for the RTC: wakealarmd takes its block before
    // it is ready, so this attempt is refused.
    request_expect(&env, 1, false);
    env.wait_log("wakealarmd", "keeping the system awake", DEADLINE);
    // While the block is kept, a new request is refused, naming wakealarmd…
    blocked_request(&env);
    assert_eq!(c.line(DEADLINE), "Now");
    // … also after Now: the connection blocks until it closes.
    blocked_request(&env);
    drop(c);
    env.wait_log("wakealarmd", "suspend allowed", DEADLINE);
    // The blockers are gone: lsusd dropped the requests made while blocked.
    env.wait_for("the blocked requests dropped", DEADLINE, || {
        !env.path("request").exists()
    });
    assert!(env.state().is_empty(), "no suspend\n{}", env.dump());
    // The RTC was left alone: the alarm was too close.
    let mut buf = [0u8; 16];
    assert!(fifo.read(&mut buf).is_err(), "nothing written to the RTC");
    // With no connection left, nothing stops the next request.
    request_expect(&env, 0, true);
}

#[test]
fn fresh_connection_blocks_suspend_until_it_writes_a_time() {
    let mut env = Env::new();
    start(&mut env);
    let mut c = Raw::greeted(&env);
    request_expect(&env, 1, false);
    env.wait_log("wakealarmd", "a connection blocks suspend", DEADLINE);
    blocked_request(&env);
    // A time far away unblocks: lsusd drops the request made while blocked.
    c.set(now_secs() + 60);
    env.wait_for("the blocked request dropped", DEADLINE, || {
        !env.path("request").exists()
    });
    assert!(env.state().is_empty());
    // The next request suspends, with the RTC programmed.
    request_expect(&env, 0, true);
    let wake = fs::read_to_string(rtc_dir(&env).join("wakealarm")).unwrap();
    assert!(wake.trim().parse::<u64>().unwrap() > now_secs(), "{wake:?}");
}

/// The race the real-kernel suite met (busybox scenario 3, a suspend the
/// host had to wake): wakealarmd keeps the machine awake for an alarm due
/// within the margin and says ready; the alarm fires and its owner writes
/// the next time while lsusd still waits for another watcher. wakealarmd
/// must program the RTC for that time before it lets go of `disabled`, or
/// lsusd suspends in the same attempt with no wake-up set.
#[test]
fn a_time_written_during_the_attempt_programs_the_rtc_before_suspend_is_allowed() {
    let _t = timing_lock();
    let mut env = Env::new();
    let mut fifo = rtc_fifo(&env);
    start(&mut env);
    // Registered before the request, so lsusd waits for it in this attempt.
    let mut slow = libsus::Watcher::open_in(&env.run).unwrap();
    let mut c = Raw::greeted(&env);
    c.set(now_secs() + 2);
    let req = env.request_spawn();
    assert_eq!(slow.wait().unwrap(), libsus::WatchEvent::SuspendImminent);
    env.wait_log("wakealarmd", "keeping the system awake", DEADLINE);
    // The alarm fires while the attempt is still open; the owner asks for
    // the next one, far enough for the RTC.
    assert_eq!(c.line(DEADLINE), "Now");
    let next = now_secs() + 30;
    c.set(next);
    env.wait_log("wakealarmd", "suspend allowed", DEADLINE);
    let writes = fifo_lines(&env, &mut fifo, 2, DEADLINE);
    assert_eq!(writes[0], "0", "the alarm is cleared first\n{}", env.dump());
    let value: i64 = writes[1].parse().unwrap();
    let (logged_value, offset) = logged_rtc(&env);
    assert_eq!(value, logged_value, "{}", env.dump());
    assert_eq!(
        value,
        next as i64 + offset - 2,
        "programmed for the new time"
    );
    let log = env.log("wakealarmd");
    assert!(log.contains(&format!("for the alarm at {next}")), "{log}");
    let programmed = log.find("programmed to wake at").unwrap();
    let allowed = log.find("suspend allowed").unwrap();
    assert!(programmed < allowed, "RTC first, then the lock goes\n{log}");
    // Now lsusd may go on: the same attempt suspends.
    slow.ready().unwrap();
    let out = req.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        env.dump()
    );
    assert!(env.state().contains("mem"), "{}", env.dump());
    assert_eq!(slow.wait().unwrap(), libsus::WatchEvent::Resumed);
}

#[test]
fn now_arrives_on_time_and_an_idle_daemon_sleeps() {
    let _t = timing_lock();
    let mut env = Env::new();
    start(&mut env);
    let base = now_secs();
    let mut clients: Vec<(Raw, u64)> = (1..=3)
        .map(|k| {
            let mut c = Raw::greeted(&env);
            c.set(base + k);
            (c, base + k)
        })
        .collect();
    for (c, due) in &mut clients {
        assert_eq!(c.line(Duration::from_secs(5)), "Now");
        let late = SystemTime::now()
            .duration_since(UNIX_EPOCH + Duration::from_secs(*due))
            .unwrap_or_else(|e| panic!("Now {:?} early", e.duration()));
        // Correctness, not speed: the alarm timer (not a poll timeout or
        // the next event) sent it. How late it is in practice is the
        // bench's figure, never asserted here.
        assert!(late < Duration::from_secs(1), "Now {late:?} late");
    }
    // With one alarm an hour away, the daemon does not wake up at all.
    clients[0].0.set(now_secs() + 3600);
    drop(clients.split_off(1));
    let pid = env.daemons[wakealarmd_index(&env)].child.id();
    let switches = || {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("voluntary_ctxt_switches"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap()
    };
    // Let the last changes settle first: the status file is rewritten at
    // most every 100 ms, and its rename is seen by the daemon's own watch
    // of the run directory once.
    let settle = Instant::now() + Duration::from_secs(10);
    let mut last = switches();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = switches();
        if now == last {
            break;
        }
        assert!(Instant::now() < settle, "wakealarmd never went idle");
        last = now;
    }
    let before = switches();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(switches(), before, "wakealarmd woke up while idle");
}

#[test]
fn malformed_input_gets_an_error_line_and_other_clients_are_unaffected() {
    let _t = timing_lock();
    let mut env = Env::new();
    start(&mut env);
    let mut good = Raw::greeted(&env);
    let due = now_secs() + 2;
    good.set(due);
    let bad: [&[u8]; 5] = [
        b"tomorrow\n",
        b"-5\n",
        b"99999999999999999999\n",
        b"123456789012345678901",
        b"12 34\n",
    ];
    for input in bad {
        let mut c = Raw::greeted(&env);
        c.send(input);
        let reply = c.line(DEADLINE);
        assert!(
            reply.starts_with("Error: "),
            "{:?} got {reply:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(c.line(DEADLINE), "<EOF>", "closed after the error");
    }
    // A new client is served as usual, and the good one gets its Now.
    let mut other = Raw::greeted(&env);
    other.set(due);
    assert_eq!(good.line(Duration::from_secs(5)), "Now");
    assert_eq!(other.line(Duration::from_secs(5)), "Now");
    let late = SystemTime::now()
        .duration_since(UNIX_EPOCH + Duration::from_secs(due))
        .unwrap();
    // Correctness, not speed (see above).
    assert!(late < Duration::from_secs(1), "{late:?}");
}

#[test]
fn raw_socket_speaks_the_original_text_protocol() {
    let mut env = Env::new();
    start(&mut env);
    let mut c = Raw::connect(&env);
    // Exactly the bytes the original sent and its clients expect.
    let mut greeting = [0u8; 2];
    c.s.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"0\n");
    let far = now_secs() + 1000;
    c.send(format!("{far}\n").as_bytes());
    let mut echo = vec![0u8; far.to_string().len() + 1];
    c.s.read_exact(&mut echo).unwrap();
    assert_eq!(echo, format!("{far}\n").as_bytes());
    // Without a newline, in one write: the end of the write ends the time.
    c.send((far + 1).to_string().as_bytes());
    assert_eq!(c.line(DEADLINE), (far + 1).to_string());
    // Split across writes, with the newline at the end: one time.
    c.send(b"17000");
    c.wait_read_by_peer(&env);
    c.send(b"00000\n");
    assert_eq!(c.line(DEADLINE), "1700000000");
    // That time is long past: Now at once, after the echo.
    assert_eq!(c.line(DEADLINE), "Now");
    // Re-arming after Now, and blank lines are ignored.
    c.send(format!("\n{far}\n").as_bytes());
    assert_eq!(c.line(DEADLINE), far.to_string());
    assert_eq!(c.try_line(Duration::from_millis(200)), None);
    drop(c);

    // SIGTERM: a clean exit, and the socket is gone.
    let i = wakealarmd_index(&env);
    let status = env.stop(i);
    assert!(status.success(), "{status:?}\n{}", env.dump());
    assert!(!env.path("wakealarm").exists());
    assert!(env.log("wakealarmd").contains("SIGTERM"));
}

#[test]
fn libsus_wake_alarm_and_the_alarm_test_example() {
    let mut env = Env::new();
    start(&mut env);
    let mut alarm =
        libsus::WakeAlarm::new_in(&env.run, SystemTime::now() + Duration::from_secs(1)).unwrap();
    assert!(!alarm.poll().unwrap());
    assert!(alarm.wait_timeout(Some(Duration::from_secs(5))).unwrap());
    // Due: it blocks suspend until re-armed.
    request_expect(&env, 1, false);
    env.wait_log("wakealarmd", "a connection blocks suspend", DEADLINE);
    alarm
        .set(SystemTime::now() + Duration::from_secs(600))
        .unwrap();
    assert!(!alarm.is_due());
    env.wait_log("wakealarmd", "suspend allowed", DEADLINE);
    request_expect(&env, 0, true);
    drop(alarm);

    let out = Command::new(harness::bin("alarm_test"))
        .args(["--run-dir"])
        .arg(&env.run)
        .args(["--hold", "0", "--repeat", "2", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("Alarm set for "), "{text}");
    assert_eq!(lines.iter().filter(|l| **l == "Now").count(), 2, "{text}");
    assert_eq!(lines.last(), Some(&"OK - done"), "{text}");
}

/// wakealarmd keeps no alarms across its own restart (systemd restarts it
/// with lsusd): libsus's `WakeAlarm`, waiting for its alarm, connects to
/// the new wakealarmd and writes its time again, so the next suspend is
/// still woken for it (the RTC is programmed) and `Now` still comes.
#[test]
fn a_wake_alarm_survives_a_restart_of_wakealarmd() {
    let _t = timing_lock();
    let mut env = Env::new();
    let mut fifo = rtc_fifo(&env);
    start(&mut env);
    let wake = now_secs() + 12;
    let mut alarm =
        libsus::WakeAlarm::new_in(&env.run, UNIX_EPOCH + Duration::from_secs(wake)).unwrap();
    let waiter = std::thread::spawn(move || {
        let due = alarm.wait_timeout(Some(Duration::from_secs(30)));
        (due.map_err(|e| e.to_string()), alarm.reconnects())
    });
    env.wait_for("the alarm counted by wakealarmd", DEADLINE, || {
        fs::read_to_string(env.path("wakealarmd.status")).is_ok_and(|s| s.contains("pending=1"))
    });
    // The restart: the old wakealarmd stops, a new one starts.
    let i = wakealarmd_index(&env);
    env.stop(i);
    env.start_socket_daemon("wakealarmd", "wakealarm", &[]);
    env.wait_for(
        "the alarm set again with the new wakealarmd",
        DEADLINE,
        || fs::read_to_string(env.path("wakealarmd.status")).is_ok_and(|s| s.contains("pending=1")),
    );
    let out = env.request(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "request-suspend: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        env.dump()
    );
    let writes = fifo_lines(&env, &mut fifo, 2, DEADLINE);
    assert_eq!(writes[0], "0", "the alarm is cleared first\n{}", env.dump());
    let (value, offset) = logged_rtc(&env);
    assert_eq!(writes[1], value.to_string());
    assert_eq!(
        value,
        wake as i64 + offset - 2,
        "programmed for the alarm set before the restart"
    );
    let (due, reconnects) = waiter.join().unwrap();
    assert_eq!(due, Ok(true), "Now came\n{}", env.dump());
    assert_eq!(reconnects, 1);
}

/// alarm_test --reconnect SECS (libsus's `WakeAlarm::set_reconnect_timeout`,
/// used by the systemd guest's restart scenario, where a restart may take
/// longer than libsus's 60 s): 0 ends the client when wakealarmd stops; a
/// window lets it follow a restart, set its time again and say so after
/// `Now`.
#[test]
fn alarm_test_reconnect_option() {
    let _t = timing_lock();
    let mut env = Env::new();
    start(&mut env);
    env.spawn("alarm_test", &["--hold", "0", "--reconnect", "0", "600"]);
    let gone = env.daemons.len() - 1;
    env.spawn("alarm_test", &["--hold", "0", "--reconnect", "30", "3"]);
    let kept = env.daemons.len() - 1;
    env.wait_for("both alarms pending", DEADLINE, || {
        fs::read_to_string(env.path("wakealarmd.status")).is_ok_and(|s| s.contains("pending=2"))
    });
    let i = wakealarmd_index(&env);
    env.stop(i);
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = env.exited(gone) {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alarm_test --reconnect 0 still runs\n{}",
            env.dump()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!status.success(), "{status:?}\n{}", env.dump());
    assert!(
        env.log_count("alarm_test", "alarm_test: wakealarmd closed") == 1,
        "{}",
        env.dump()
    );
    env.start_socket_daemon("wakealarmd", "wakealarm", &[]);
    env.wait_log(
        "alarm_test",
        "(wakealarmd restarted: connected again 1 times, the alarm set again)",
        DEADLINE,
    );
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = env.exited(kept) {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{}", env.dump());
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}\n{}", env.dump());
}

/// Raises this process's descriptor limit so it can hold `n` sockets.
fn allow_descriptors(n: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(hard >= n, "the hard descriptor limit {hard} is below {n}");
    if soft < n {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
}

fn open_files_limit(pid: u32) -> (String, String) {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let mut f = line.split_whitespace().skip(3);
    (f.next().unwrap().into(), f.next().unwrap().into())
}

#[test]
fn two_thousand_connections_each_with_an_alarm_all_fire_in_order() {
    const N: usize = 2000;
    let _t = timing_lock();
    let mut env = Env::new();
    start(&mut env);
    let pid = env.daemons[wakealarmd_index(&env)].child.id();
    let (soft, hard) = open_files_limit(pid);
    assert_eq!(soft, hard, "wakealarmd raised its soft descriptor limit");
    allow_descriptors(N as u64 + 200);

    // Connect all, then write all times, then read all replies: few round
    // trips, as N independent clients would.
    let mut conns: Vec<UnixStream> = (0..N)
        .map(|_| UnixStream::connect(env.path("wakealarm")).unwrap())
        .collect();
    let base = now_secs() + 2;
    let due = |i: usize| base + (i % 3) as u64;
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(format!("{}\n", due(i)).as_bytes()).unwrap();
    }
    let mut got = vec![String::new(); N];
    let mut fired_at: Vec<Option<SystemTime>> = vec![None; N];
    let deadline = Instant::now() + Duration::from_secs(15);
    while fired_at.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "not all fired\n{}", env.dump());
        let mut fds: Vec<PollFd> = conns
            .iter()
            .enumerate()
            .filter(|(i, _)| fired_at[*i].is_none())
            .map(|(_, s)| PollFd::new(s.as_fd(), PollFlags::POLLIN))
            .collect();
        let idx: Vec<usize> = (0..N).filter(|i| fired_at[*i].is_none()).collect();
        poll(&mut fds, PollTimeout::from(1000u16)).unwrap();
        let ready: Vec<usize> = fds
            .iter()
            .zip(&idx)
            .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, &i)| i)
            .collect();
        drop(fds);
        let now = SystemTime::now();
        for i in ready {
            let mut buf = [0u8; 64];
            let n = conns[i].read(&mut buf).unwrap();
            assert!(n > 0, "connection {i} closed\n{}", env.dump());
            got[i].push_str(std::str::from_utf8(&buf[..n]).unwrap());
            if got[i].ends_with("Now\n") {
                fired_at[i] = Some(now);
            }
        }
    }
    let mut worst = Duration::ZERO;
    for i in 0..N {
        assert_eq!(got[i], format!("0\n{}\nNow\n", due(i)), "connection {i}");
        let at = fired_at[i].unwrap();
        let late = at
            .duration_since(UNIX_EPOCH + Duration::from_secs(due(i)))
            .unwrap_or_else(|e| panic!("connection {i}: Now {:?} early", e.duration()));
        worst = worst.max(late);
    }
    eprintln!("2,000 alarms: the latest Now arrived {worst:?} after its time");
    // A correctness bound, not a speed target (the bench's lateness row
    // is that): an alarm's Now comes within its own second.
    assert!(
        worst < Duration::from_secs(1),
        "a Now came {worst:?} after its time: in a later second than its own"
    );

    // wakealarmd fired them in order of time, then of connection.
    let log = env.log("wakealarmd");
    let fired: Vec<(u64, u64)> = log
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("connection ")? + "connection ".len()..];
            let (id, rest) = rest.split_once(": alarm for ")?;
            let (time, _) = rest.split_once(" fired")?;
            Some((time.parse().ok()?, id.parse().ok()?))
        })
        .collect();
    assert_eq!(fired.len(), N, "one fired line per connection");
    assert!(fired.windows(2).all(|w| w[0] < w[1]), "fired out of order");
}

/// Starts wakealarmd alone with a hard descriptor limit of `limit`.
/// A wakealarmd started outside the harness, killed when dropped (also
/// when the test fails, so that it does not outlive it).
struct Limited(std::process::Child);

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wakealarmd_with_limit(env: &Env, limit: u64) -> Limited {
    use std::os::unix::process::CommandExt;
    let log = fs::File::create(env.tmp.path().join("logs/limited.log")).unwrap();
    let mut cmd = Command::new(harness::bin("wakealarmd"));
    cmd.arg("--run-dir")
        .arg(&env.run)
        .arg("--sysfs")
        .arg(&env.sys)
        .env("RUST_LOG", "debug")
        .stdin(std::process::Stdio::null())
        .stderr(log);
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls setrlimit(2), which is async-signal-safe; it touches no locks
    // or allocations of the parent.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, limit, limit)
                .map_err(std::io::Error::from)
        });
    }
    Limited(cmd.spawn().unwrap())
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// As lsused (tests/lsused.rs): the spare descriptor of
/// `lsus_daemon::accept` refuses what the table cannot take.
#[test]
fn out_of_descriptors_refuses_connections_without_spinning_and_recovers() {
    let _t = timing_lock();
    let mut env = Env::new();
    env.start_lsusd(&[]);
    let mut daemon = wakealarmd_with_limit(&env, 32);
    let log = env.tmp.path().join("logs/limited.log");
    let logged = |needle: &str| fs::read_to_string(&log).is_ok_and(|l| l.contains(needle));
    let sock = env.path("wakealarm");
    env.wait_for("wakealarmd listening", DEADLINE, || {
        UnixStream::connect(&sock).is_ok()
    });
    // More clients than descriptors: those the table cannot take are
    // accepted and closed at once (EOF), none is left waiting.
    let (mut served, mut refused) = (Vec::new(), 0);
    for _ in 0..40 {
        let mut c = Raw::connect(&env);
        match c.line(DEADLINE).as_str() {
            "0" => served.push(c),
            "<EOF>" => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        !served.is_empty() && refused > 0,
        "{} served, {refused} refused",
        served.len()
    );
    env.wait_for("the refusals logged", DEADLINE, || {
        logged("out of descriptors: refusing new connections")
    });
    let pid = daemon.0.id();
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(1000));
    let used = cpu_ticks(pid) - before;
    // A spinning loop would use the whole second (100 ticks).
    assert!(
        used <= 10,
        "wakealarmd used {used} ticks while out of descriptors"
    );
    // A suspend attempt with a full table: wakealarmd's watcher opens
    // `watching-next`, and its served clients, which have not written a
    // time yet, block suspend: it opens the run directory and `disabled`
    // too and holds the lock (three spare descriptors lent), so the
    // request is answered "blocked" by wakealarmd; and it survives it.
    let out = env.request(&[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}\n{}", env.dump());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("blocked by PID {}", daemon.0.id())),
        "{out:?}\n{}",
        env.dump()
    );
    assert!(
        !logged("cannot keep the system awake"),
        "{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(daemon.0.try_wait().unwrap().is_none(), "{}", env.dump());
    // Closing served clients frees descriptors: clients are served again.
    drop(served);
    env.wait_for("a connection served again", DEADLINE, || {
        Raw::connect(&env).try_line(Duration::from_secs(1)) == Some("0".into())
    });
    env.wait_for("the recovery logged", DEADLINE, || {
        logged("descriptors available again after refusing")
    });
    assert!(daemon.0.try_wait().unwrap().is_none(), "{}", env.dump());
}
