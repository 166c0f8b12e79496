//! lsused end to end: the real lsusd, lsused and request-suspend on a temp
//! run directory and a fake sysfs tree, with clients speaking through
//! libsus and, as a C client of the original would, raw bytes.

mod harness;

use std::fs::File;
use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use harness::{Env, DEADLINE};
use libsus::{WakeEvent, WakeEvents};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// lsusd and lsused running on a fresh run directory.
fn env_with(lsused_args: &[&str]) -> Env {
    let mut env = Env::new();
    env.start_lsusd(&[]);
    env.start_socket_daemon("lsused", "registration", lsused_args);
    env
}

fn env() -> Env {
    env_with(&[])
}

/// lsused is daemon number 1 (after lsusd).
const LSUSED: usize = 1;

/// A pipe: (read end, write end as a file).
fn pipe() -> (OwnedFd, File) {
    // Close-on-exec: daemons that other tests start at the same time must
    // not inherit the write ends.
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    (r, File::from(w))
}

/// Waits for `child` to exit, at most `timeout`.
fn wait_exit(env: &Env, child: &mut Child, timeout: Duration) -> ExitStatus {
    let mut status = None;
    env.wait_for("request-suspend to exit", timeout, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.expect("exited")
}

fn connect(env: &Env) -> WakeEvents {
    WakeEvents::connect_in(&env.run).expect("connect to lsused")
}

/// Registers a pipe with one byte unread, requests a suspend and waits for
/// the `S`. Returns the client, both ends of the pipe and request-suspend.
fn imminent_with_readable_pipe(env: &Env) -> (WakeEvents, OwnedFd, File, Child) {
    let mut client = connect(env);
    let (r, mut w) = pipe();
    client.register(&[&r]).unwrap();
    w.write_all(b"x").unwrap();
    let request = env.request_spawn();
    assert_eq!(
        client.wait_timeout(Some(DEADLINE)).unwrap(),
        Some(WakeEvent::SuspendImminent)
    );
    (client, r, w, request)
}

/// Raises this process's soft descriptor limit to its hard limit and
/// returns it.
fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    hard
}

// ----- a raw client: the bytes of doc/protocol.md §3, nothing else -------------

/// Connects and reads the greeting `A`, as the original's C clients did.
fn raw_connect(env: &Env) -> UnixStream {
    let sock = UnixStream::connect(env.path("registration")).expect("connect");
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(read_byte(&sock), Some(b'A'), "greeting");
    sock
}

/// Reads one byte (blocking, with the socket's time-out); `None` at EOF.
fn read_byte(mut sock: &UnixStream) -> Option<u8> {
    let mut b = [0u8; 1];
    match sock.read(&mut b) {
        Ok(0) => None,
        Ok(_) => Some(b[0]),
        Err(e) => panic!("reading from lsused: {e}"),
    }
}

/// Returns what is in the socket right now without waiting (after the
/// exchange under test is over: nothing else may have been sent).
fn pending_bytes(mut sock: &UnixStream) -> Vec<u8> {
    sock.set_nonblocking(true).unwrap();
    let mut out = Vec::new();
    let mut b = [0u8; 64];
    loop {
        match sock.read(&mut b) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    sock.set_nonblocking(false).unwrap();
    out
}

/// `sendmsg` of `W` with SCM_RIGHTS, then the `A` that answers it.
fn raw_register(sock: &UnixStream, fds: &[std::os::fd::RawFd]) {
    let cmsg = [ControlMessage::ScmRights(fds)];
    let n = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(b"W")],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .expect("sendmsg W");
    assert_eq!(n, 1);
    assert_eq!(read_byte(sock), Some(b'A'), "answer to W");
}

// ----- the behaviour of doc/protocol.md §3 -------------------------------------

#[test]
fn readable_pipe_gets_s_and_suspend_waits_for_r_then_a() {
    let env = env();
    let (mut client, _r, _w, mut request) = imminent_with_readable_pipe(&env);
    env.assert_stays(
        "no state written while the client's R is awaited",
        Duration::from_millis(400),
        || env.state().is_empty(),
    );
    assert!(
        request.try_wait().unwrap().is_none(),
        "request-suspend waits"
    );

    client.ready().unwrap();
    env.wait_for("the state write", DEADLINE, || env.state() == "mem\n");
    assert!(wait_exit(&env, &mut request, DEADLINE).success());
    assert_eq!(
        client.wait_timeout(Some(DEADLINE)).unwrap(),
        Some(WakeEvent::Awake)
    );
    assert_eq!(
        client.poll_event().unwrap(),
        None,
        "exactly one S and one A"
    );
    env.wait_log("lsused", "sent A to 1 client", DEADLINE);
}

#[test]
fn nothing_readable_sends_nothing_and_suspend_proceeds_at_once() {
    let env = env();
    let client = raw_connect(&env);
    let (r, _w) = pipe();
    raw_register(&client, &[r.as_raw_fd()]);

    let started = Instant::now();
    let out = env.request(&[]);
    assert!(out.status.success(), "{out:?}\n{}", env.dump());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "suspend took {:?}",
        started.elapsed()
    );
    assert_eq!(env.state(), "mem\n");
    env.wait_log(
        "lsused",
        "none of 1 registered descriptor readable",
        DEADLINE,
    );
    assert_eq!(pending_bytes(&client), b"", "no message to the client");
}

#[test]
fn client_that_disconnects_while_awaited_counts_as_ready() {
    let env = env();
    let (client, _r, _w, mut request) = imminent_with_readable_pipe(&env);
    assert!(env.state().is_empty());
    drop(client);
    assert!(wait_exit(&env, &mut request, DEADLINE).success());
    assert_eq!(env.state(), "mem\n");
    env.wait_log("lsused", "went away while its R was awaited", DEADLINE);
}

#[test]
fn garbage_byte_drops_only_that_client() {
    let mut env = env();
    let mut good = connect(&env);
    let (r1, _w1) = pipe();
    good.register(&[&r1]).unwrap();

    let bad = raw_connect(&env);
    let (rb, _wb) = pipe();
    raw_register(&bad, &[rb.as_raw_fd()]);
    (&bad).write_all(b"x").unwrap();
    assert_eq!(read_byte(&bad), None, "the garbage client is disconnected");
    env.wait_log(
        "lsused",
        "which is not part of the protocol: dropped",
        DEADLINE,
    );

    // The other client is untouched: it registers more and gets its S.
    let (r2, mut w2) = pipe();
    good.register(&[&r2]).unwrap();
    w2.write_all(b"y").unwrap();
    let mut request = env.request_spawn();
    assert_eq!(
        good.wait_timeout(Some(DEADLINE)).unwrap(),
        Some(WakeEvent::SuspendImminent)
    );
    good.ready().unwrap();
    assert!(wait_exit(&env, &mut request, DEADLINE).success());
    assert_eq!(
        good.wait_timeout(Some(DEADLINE)).unwrap(),
        Some(WakeEvent::Awake)
    );
    assert!(env.exited(LSUSED).is_none(), "lsused still runs");
}

#[test]
fn five_hundred_clients_one_cycle_one_s_each() {
    const CLIENTS: usize = 500;
    let hard = raise_nofile();
    assert!(
        hard >= 4 * CLIENTS as u64,
        "RLIMIT_NOFILE hard limit {hard} too low"
    );
    let env = env();

    // Every other client gets a readable pipe.
    let mut clients = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let mut client = connect(&env);
        let (r, mut w) = pipe();
        client.register(&[&r]).unwrap();
        drop(r); // lsused holds its own copy
        if i % 2 == 0 {
            w.write_all(b"!").unwrap();
        }
        clients.push((client, w, i % 2 == 0));
    }
    env.wait_log_count("lsused", "registered 1 descriptor", CLIENTS, DEADLINE);

    let started = Instant::now();
    let mut request = env.request_spawn();
    for (client, _, readable) in clients.iter_mut().filter(|(_, _, r)| *r) {
        assert_eq!(
            client.wait_timeout(Some(DEADLINE)).unwrap(),
            Some(WakeEvent::SuspendImminent)
        );
        assert!(env.state().is_empty(), "state written before every R");
        client.ready().unwrap();
        assert!(*readable);
    }
    assert!(wait_exit(&env, &mut request, DEADLINE).success());
    let cycle = started.elapsed();
    eprintln!("500 clients (250 readable): cycle completed in {cycle:?}");
    assert_eq!(env.state(), "mem\n");

    for (client, _, readable) in &mut clients {
        if *readable {
            assert_eq!(
                client.wait_timeout(Some(DEADLINE)).unwrap(),
                Some(WakeEvent::Awake)
            );
        }
        // Nothing more: exactly one S (and its A) for a readable client,
        // nothing at all for the others.
        assert_eq!(client.poll_event().unwrap(), None);
    }
    env.wait_log("lsused", "sent S to 250 clients", DEADLINE);
    env.wait_log("lsused", "sent A to 250 clients", DEADLINE);
}

#[test]
fn raw_client_speaks_the_original_bytes() {
    let env = env();
    let sock = raw_connect(&env);
    // One W with 250 descriptors; the 200th is the one that gets input.
    let pipes: Vec<_> = (0..250).map(|_| pipe()).collect();
    let fds: Vec<_> = pipes.iter().map(|(r, _)| r.as_raw_fd()).collect();
    raw_register(&sock, &fds);
    env.wait_log(
        "lsused",
        "registered 250 descriptors (250 in all)",
        DEADLINE,
    );
    // An R outside a cycle is ignored, not a reason to drop.
    (&sock).write_all(b"R").unwrap();
    env.wait_log("lsused", "sent R while none was awaited; ignored", DEADLINE);

    (&pipes[199].1).write_all(b"ring").unwrap();
    // The descriptor stays readable (never drained): one S per attempt.
    for round in 1..=2 {
        let mut request = env.request_spawn();
        assert_eq!(read_byte(&sock), Some(b'S'), "round {round}");
        assert!(request.try_wait().unwrap().is_none());
        (&sock).write_all(b"R").unwrap();
        assert!(wait_exit(&env, &mut request, DEADLINE).success());
        assert_eq!(read_byte(&sock), Some(b'A'), "round {round}");
        assert_eq!(pending_bytes(&sock), b"", "round {round}");
        env.clear_state();
    }

    // Half-closing the socket is an EOF: lsused drops the client.
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_byte(&sock), None);
    env.wait_log("lsused", "disconnected (250 descriptors closed)", DEADLINE);
    let out = env.request(&[]);
    assert!(out.status.success(), "{out:?}\n{}", env.dump());
}

#[test]
fn silent_client_is_named_and_reply_timeout_lets_suspend_go_on() {
    let mut env = env_with(&["--reply-timeout", "6"]);
    let (mut client, _r, _w, mut request) = imminent_with_readable_pipe(&env);
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let me = format!("(pid {} {})", std::process::id(), comm.trim_end());
    // Named while lsused waits (every few seconds)…
    env.wait_log("lsused", "suspend waits 5 s for R from #", DEADLINE);
    assert!(env.log("lsused").contains(&me), "{}", env.dump());
    assert!(env.state().is_empty());
    // … and given up on when the time-out passes.
    assert!(wait_exit(&env, &mut request, DEADLINE).success());
    env.wait_log("lsused", "reply timeout: no R after 6.0 s", DEADLINE);
    assert_eq!(env.state(), "mem\n");
    // RUN/lsused.status names it (#17), and so does lsusctl status.
    let named = format!(
        "tardy_total=1 tardy={}:{}",
        std::process::id(),
        lsus_proto::outcome::token(comm.trim_end())
    );
    env.wait_for("lsused.status names the tardy client", DEADLINE, || {
        std::fs::read_to_string(env.path("lsused.status")).is_ok_and(|s| s.contains(&named))
    });
    let status = std::process::Command::new(harness::bin("lsusctl"))
        .arg("--run-dir")
        .arg(&env.run)
        .arg("status")
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(&format!(
            "1 client cut by the reply timeout (last: PID {} (",
            std::process::id()
        )),
        "{status}"
    );
    // It was sent S, so it hears A; its late R is ignored.
    assert_eq!(
        client.wait_timeout(Some(DEADLINE)).unwrap(),
        Some(WakeEvent::Awake)
    );
    client.ready().unwrap();
    assert!(env.exited(LSUSED).is_none());
}

/// Returns the CPU time (user + system, in clock ticks) used by `pid`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 (1-based), 12 and 13 here.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_descriptors_refuses_connections_without_spinning() {
    let mut env = env();
    let pid = env.daemons[LSUSED].child.id();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    // Room for three more descriptors, then the table is full.
    let limit = libc::rlimit {
        rlim_cur: open + 3,
        rlim_max: open + 3,
    };
    // SAFETY: prlimit only reads `limit`, which lives across the call; the
    // old-limit pointer may be null.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());

    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        let sock = UnixStream::connect(env.path("registration")).unwrap();
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        match read_byte(&sock) {
            Some(b'A') => accepted.push(sock),
            None => refused += 1,
            Some(other) => panic!("unexpected byte {other}"),
        }
    }
    assert!(
        !accepted.is_empty() && refused > 0,
        "{} / {refused}",
        accepted.len()
    );
    env.wait_log(
        "lsused",
        "out of descriptors: refusing new connections",
        DEADLINE,
    );

    // Idle with a full table: no spinning.
    let before = cpu_ticks(pid);
    env.assert_stays("lsused alive", Duration::from_millis(500), || {
        std::fs::metadata(format!("/proc/{pid}")).is_ok()
    });
    let used = cpu_ticks(pid) - before;
    assert!(
        used < 20,
        "lsused used {used} ticks in 0.5 s while out of descriptors"
    );

    // A suspend attempt still works with a full table (the watcher needs
    // to open a file when it is notified), and lsused survives it.
    let out = env.request(&[]);
    assert!(out.status.success(), "{out:?}\n{}", env.dump());
    assert!(env.exited(LSUSED).is_none(), "{}", env.dump());

    // Descriptors freed: clients are served again.
    accepted.clear();
    let mut client = None;
    env.wait_for("a connection accepted again", DEADLINE, || {
        client = WakeEvents::connect_in(&env.run).ok();
        client.is_some()
    });
    let mut client = client.unwrap();
    let (r, _w) = pipe();
    client.register(&[&r]).unwrap();
    env.wait_log(
        "lsused",
        "descriptors available again after refusing",
        DEADLINE,
    );
    assert!(env.exited(LSUSED).is_none());
    assert_eq!(env.stop(LSUSED).code(), Some(0));
}

#[test]
fn second_instance_is_refused_and_sigterm_removes_the_socket() {
    let mut env = env();
    let out = Command::new(harness::bin("lsused"))
        .arg("--run-dir")
        .arg(&env.run)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
    assert!(env.path("registration").exists());

    let status = env.stop(LSUSED);
    assert_eq!(status.code(), Some(0), "{}", env.dump());
    assert!(!env.path("registration").exists(), "{}", env.dump());
    env.wait_log("lsused", "SIGTERM: shutting down", DEADLINE);
}

#[test]
fn stale_socket_left_by_a_killed_lsused_is_replaced() {
    let mut env = env();
    env.daemons[LSUSED].child.kill().unwrap();
    env.daemons[LSUSED].child.wait().unwrap();
    assert!(
        env.path("registration").exists(),
        "SIGKILL leaves the socket"
    );
    env.start_socket_daemon("lsused", "registration", &[]);
    env.wait_log("lsused", "replacing stale socket", DEADLINE);
    let mut client = connect(&env);
    let (r, _w) = pipe();
    client.register(&[&r]).unwrap();
}

#[test]
fn event_test_prints_input_then_handles_the_wake_event() {
    let env = env();
    let fifo = env.tmp.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out_path = env.tmp.path().join("event_test.out");
    let mut child = Command::new(harness::bin("event_test"))
        .arg("--run-dir")
        .arg(&env.run)
        .arg(&fifo)
        .stdout(File::create(&out_path).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let output = || std::fs::read_to_string(&out_path).unwrap_or_default();
    env.wait_for("event_test registered", DEADLINE, || {
        output().contains("registered")
    });

    // Input while running is printed at once.
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writer.write_all(b"hello\n").unwrap();
    env.wait_for("event_test read hello", DEADLINE, || {
        output().contains(r#"read 6 bytes: "hello\n""#)
    });

    // Input that is still unread when suspend is imminent is a wake event:
    // stop the program so the input waits, and let it go once S is sent.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    writer.write_all(b"ring\n").unwrap();
    let mut request = env.request_spawn();
    env.wait_log("lsused", "sent S to 1 client", DEADLINE);
    assert!(env.state().is_empty());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(wait_exit(&env, &mut request, DEADLINE).success());
    env.wait_for("event_test awake", DEADLINE, || output().contains("awake"));
    let text = output();
    let read = text.find(r#""ring\n""#).expect("ring printed");
    let suspend = text
        .find("suspend: handling wake event")
        .expect("S printed");
    let awake = text.find("awake").expect("A printed");
    assert!(read < suspend && suspend < awake, "{text}");
    let _ = child.kill();
    let _ = child.wait();
}
