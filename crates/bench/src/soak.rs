//! The soak (issue #15, point 2): the three release daemons on one run
//! directory for many suspend cycles, with clients of each churning
//! around every cycle, and a look at each daemon's descriptors, RSS and
//! threads every tenth of the run.
//!
//! One cycle:
//!
//! - a watcher connects and goes (opens `watching`, takes its shared lock,
//!   checks it names the file, closes it), as a client of the original does
//!   when it starts and stops;
//! - an lsused client connects, registers a pipe (`W` with one descriptor,
//!   answered `A`) and disconnects;
//! - a wakealarmd client connects, writes a time an hour away, reads the
//!   greeting and the echo, and disconnects;
//! - every [`BLOCKED_EVERY`]th cycle a request is made while this process
//!   holds a shared lock on `disabled`: lsusd answers `blocked` at once
//!   (the outcome record), its helper thread waits for the lock, and the
//!   request is dropped when the lock goes;
//! - one suspend cycle (request → state written on the FIFO → request
//!   removed, `watching` replaced), which a watcher process, an lsused
//!   client with a readable descriptor (`S` answered `R`) and a wakealarmd
//!   client with a pending alarm all take part in.
//!
//! Nothing sleeps: each step waits for its answer with a deadline. Before
//! each sample the harness waits until the status files say only the
//! long-lived clients are left (`clients=1`, `connections=1`) and no
//! daemon has a descriptor of a replaced file (lsused and wakealarmd, as
//! watchers, close the old `watching` once they have seen the cycle end),
//! so the daemons have closed every churned connection and the counts
//! compare.
//!
//! Targets: descriptors and threads exactly as at the first sample, RSS
//! within [`RSS_SLACK_KIB`] of it. lsusd starts with `log/history` at its
//! 2000-record bound (unless `--empty-history`): while the history fills,
//! lsusd's buffers for it grow with it (it reads the file and writes it
//! again at each attempt), which is bounded, not a leak.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use inotify::{Inotify, WatchMask};
use lsus_proto::rundir::{DISABLED, OUTCOME, REGISTRATION, REQUEST, WAKEALARM, WATCHING};
use lsus_proto::status::{LsusedStatus, WakealarmdStatus, LSUSED_STATUS, WAKEALARMD_STATUS};
use lsus_sys::lock::{self, LockKind};

use crate::bench::{spawn_long_lived_clients, spawn_watchers, Config, CYCLE_DEADLINE};
use crate::clients::WatcherMode;
use crate::env::{wait_readable, Env};
use crate::error::{plumbing, Context, Result};
use crate::procstat;
use crate::report::{Report, Verdict};

/// The daemons sampled, in table order.
const DAEMONS: [&str; 3] = ["lsusd", "lsused", "wakealarmd"];

/// A blocked request every this many cycles.
pub const BLOCKED_EVERY: u64 = 100;

/// How far RSS may move from the first sample.
pub const RSS_SLACK_KIB: i64 = 64;

/// How long one churned client may take.
const STEP_DEADLINE: Duration = Duration::from_secs(10);

/// What the soak is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct SoakArgs {
    /// Suspend cycles in all.
    pub cycles: u64,
    /// Start with an empty history instead of one at its bound.
    pub empty_history: bool,
}

/// One look at one daemon.
#[derive(Debug, Clone, Copy)]
struct Look {
    fds: usize,
    rss_kib: u64,
    threads: u64,
}

fn look(env: &Env, name: &str) -> Result<Look> {
    let pid = env.pid(name)?;
    let s = procstat::sample(pid)?;
    Ok(Look {
        fds: procstat::descriptors(pid)?,
        rss_kib: s.rss_kib,
        threads: s.threads,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads from `sock` until `lines` newlines have come; returns the text.
fn read_lines(sock: &mut UnixStream, lines: usize) -> Result<String> {
    let mut text = Vec::new();
    let mut buf = [0u8; 64];
    while text.iter().filter(|&&b| b == b'\n').count() < lines {
        match sock.read(&mut buf) {
            Ok(0) => {
                return plumbing(format!(
                    "the daemon closed the connection after {:?}",
                    String::from_utf8_lossy(&text)
                ))
            }
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).ctx(|| "cannot read from the daemon".into()),
        }
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

fn read_byte(sock: &mut UnixStream) -> Result<u8> {
    let mut b = [0u8; 1];
    loop {
        match sock.read(&mut b) {
            Ok(0) => return plumbing("lsused closed the connection"),
            Ok(_) => return Ok(b[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).ctx(|| "cannot read from lsused".into()),
        }
    }
}

/// A watcher that registers and goes.
fn churn_watcher(env: &Env) -> Result<()> {
    let path = env.path(WATCHING);
    let file = File::open(&path).ctx(|| format!("cannot open {}", path.display()))?;
    lock::lock_retrying(&file, LockKind::Shared).ctx(|| "cannot lock watching".into())?;
    let held = file.metadata().ctx(|| "fstat".into())?;
    let now = fs::metadata(&path).ctx(|| format!("cannot stat {}", path.display()))?;
    if now.ino() != held.ino() || held.len() != 0 {
        return plumbing("watching changed between two cycles");
    }
    Ok(())
}

/// An lsused client that registers one pipe and goes.
fn churn_lsused(env: &Env) -> Result<()> {
    let path = env.path(REGISTRATION);
    let mut sock =
        UnixStream::connect(&path).ctx(|| format!("cannot connect to {}", path.display()))?;
    sock.set_read_timeout(Some(STEP_DEADLINE))
        .ctx(|| "setsockopt".into())?;
    if read_byte(&mut sock)? != b'A' {
        return plumbing("lsused did not greet with A");
    }
    let (r, _w) = nix::unistd::pipe().ctx(|| "pipe".into())?;
    crate::clients::send_w(&sock, r.as_raw_fd())?;
    if read_byte(&mut sock)? != b'A' {
        return plumbing("lsused did not answer W with A");
    }
    Ok(())
}

/// A wakealarmd client that sets an alarm an hour away and goes.
fn churn_wakealarmd(env: &Env) -> Result<()> {
    let path = env.path(WAKEALARM);
    let mut sock =
        UnixStream::connect(&path).ctx(|| format!("cannot connect to {}", path.display()))?;
    sock.set_read_timeout(Some(STEP_DEADLINE))
        .ctx(|| "setsockopt".into())?;
    let due = unix_now() + 3600;
    sock.write_all(format!("{due}\n").as_bytes())
        .ctx(|| "cannot write a time to wakealarmd".into())?;
    let text = read_lines(&mut sock, 2)?;
    if text != format!("0\n{due}\n") {
        return plumbing(format!("wakealarmd answered {text:?} to {due}"));
    }
    Ok(())
}

/// Waits for an inotify event on `name` matching `mask` in `events`.
fn wait_event(events: &mut Inotify, name: &str, mask: WatchMask, what: &str) -> Result<()> {
    let end = Instant::now() + CYCLE_DEADLINE;
    let mut buf = [0u8; 1024];
    let mask = inotify::EventMask::from_bits_truncate(mask.bits());
    loop {
        match events.read_events(&mut buf) {
            Ok(evs) => {
                let mut seen = false;
                for e in evs {
                    seen |= e.name.is_some_and(|n| n == name) && e.mask.intersects(mask);
                }
                if seen {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !wait_readable(&*events, end)? {
                    return plumbing(format!("timed out after {CYCLE_DEADLINE:?}: {what}"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).ctx(|| "cannot read inotify events".into()),
        }
    }
}

/// A request while this process blocks: answered `blocked` at once, then
/// dropped when the block goes.
fn blocked_request(env: &mut Env, events: &mut Inotify) -> Result<()> {
    let mut buf = [0u8; 1024];
    while events.read_events(&mut buf).is_ok_and(|e| e.count() > 0) {}
    let disabled = File::open(env.path(DISABLED))
        .ctx(|| format!("cannot open {}", env.path(DISABLED).display()))?;
    lock::lock(&disabled, LockKind::Shared).ctx(|| "cannot lock disabled".into())?;
    File::create(env.path(REQUEST)).ctx(|| "cannot create request".into())?;
    if let Err(e) = wait_event(
        events,
        OUTCOME,
        WatchMask::MOVED_TO,
        "lsusd wrote no outcome record for a blocked request",
    ) {
        return plumbing(format!("{e}\n{}", env.diagnose()));
    }
    let record = fs::read_to_string(env.path(OUTCOME)).unwrap_or_default();
    if !record.contains(" outcome=blocked") {
        return plumbing(format!("a request under a block was answered {record:?}"));
    }
    drop(disabled);
    if let Err(e) = wait_event(
        events,
        REQUEST,
        WatchMask::DELETE,
        "lsusd did not drop the blocked request when the block went",
    ) {
        return plumbing(format!("{e}\n{}", env.diagnose()));
    }
    Ok(())
}

/// Returns true when no daemon ran over the status files' 100 ms
/// interval: none has a status write or anything else still pending (a
/// status file may show the final counts while a later write of the same
/// counts waits for its interval).
fn idle(env: &Env) -> Result<bool> {
    let switches = || -> Result<Vec<u64>> {
        DAEMONS
            .iter()
            .map(|d| env.sample(d).map(|s| s.switches()))
            .collect()
    };
    let before = switches()?;
    std::thread::sleep(Duration::from_millis(150));
    Ok(switches()? == before)
}

/// Returns true while process `pid` still has a descriptor of a file that
/// was replaced (`(deleted)`): lsused and wakealarmd, as watchers, close
/// the old `watching` only when they have seen the end of the cycle.
fn holds_replaced_file(pid: u32) -> bool {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    dir.flatten()
        .any(|e| fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().ends_with(" (deleted)")))
}

/// Waits until the status files show only the long-lived clients and no
/// daemon still holds a `watching` of an earlier cycle.
fn settle(env: &mut Env) -> Result<()> {
    let end = Instant::now() + STEP_DEADLINE;
    loop {
        let l: Option<LsusedStatus> = fs::read_to_string(env.path(LSUSED_STATUS))
            .ok()
            .and_then(|t| t.parse().ok());
        let w: Option<WakealarmdStatus> = fs::read_to_string(env.path(WAKEALARMD_STATUS))
            .ok()
            .and_then(|t| t.parse().ok());
        let moved_on = DAEMONS
            .iter()
            .all(|d| env.pid(d).is_ok_and(|p| !holds_replaced_file(p)));
        if l.as_ref()
            .is_some_and(|l| l.clients == 1 && l.descriptors == 1)
            && w.is_some_and(|w| w.connections == 1)
            && moved_on
            && idle(env)?
        {
            return Ok(());
        }
        if Instant::now() >= end {
            return plumbing(format!(
                "the churned clients are still counted after {STEP_DEADLINE:?}: {l:?}, {w:?}\n{}",
                env.diagnose()
            ));
        }
        // The status files are rewritten at most every 100 ms.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Fills `log/history` with 1999 records of a realistic length, so that
/// lsusd's history is at its bound from the first attempt.
fn fill_history(env: &Env) -> Result<()> {
    let dir = env.path("log");
    fs::create_dir_all(&dir).ctx(|| format!("cannot create {}", dir.display()))?;
    let line = "outcome=suspended seconds=3600.125 awake=1234.567 woke=PNP0C0C:00 wake_irq=9 kernel_success=1234 kernel_fail=0\n";
    let mut text = String::new();
    for i in 0..1999u64 {
        text.push_str(&format!(
            "seq={} time={}.000 {line}",
            1 + i,
            1_700_000_000 + i
        ));
    }
    let path = dir.join("history");
    fs::write(&path, text).ctx(|| format!("cannot fill {}", path.display()))
}

/// Runs the soak; adds the table to `rep`. Returns the targets missed,
/// named.
pub fn soak(cfg: &Config, args: SoakArgs, rep: &mut Report) -> Result<Vec<String>> {
    let every = (args.cycles / 10).max(1);
    crate::bench::progress(format!(
        "soak: {} cycles, a sample every {every}",
        args.cycles
    ));
    let mut env = Env::new(&cfg.opts)?;
    fs::create_dir_all(&env.run).ctx(|| format!("cannot create {}", env.run.display()))?;
    if !args.empty_history {
        fill_history(&env)?;
    }
    env.start_lsusd()?;
    env.start_lsused()?;
    env.start_wakealarmd()?;
    spawn_watchers(&mut env, 1, WatcherMode::Normal, STEP_DEADLINE)?;
    let (mut pipe, _alarms) = spawn_long_lived_clients(&mut env)?;
    let mut events = Inotify::init().ctx(|| "cannot create an inotify instance".into())?;
    events
        .watches()
        .add(&env.run, WatchMask::MOVED_TO | WatchMask::DELETE)
        .ctx(|| format!("cannot watch {}", env.run.display()))?;
    // The outcome record is renamed into RUN/records (doc/protocol.md §1.5).
    events
        .watches()
        .add(env.path("records"), WatchMask::MOVED_TO)
        .ctx(|| format!("cannot watch {}", env.path("records").display()))?;
    let start = Instant::now();
    let mut samples: Vec<(u64, Vec<Look>)> = Vec::new();
    for i in 1..=args.cycles {
        let step = (|| -> Result<()> {
            churn_watcher(&env)?;
            churn_lsused(&env)?;
            churn_wakealarmd(&env)?;
            if i % BLOCKED_EVERY == 0 {
                blocked_request(&mut env, &mut events)?;
            }
            env.cycle(CYCLE_DEADLINE)?;
            pipe.drain()?;
            Ok(())
        })();
        if let Err(e) = step {
            return plumbing(format!("soak, cycle {i}: {e}\n{}", env.diagnose()));
        }
        if i % every == 0 || i == args.cycles {
            settle(&mut env)?;
            let looks = DAEMONS
                .iter()
                .map(|d| look(&env, d))
                .collect::<Result<Vec<_>>>()?;
            let rate = i as f64 / start.elapsed().as_secs_f64();
            crate::bench::progress(format!(
                "soak: {i} cycles ({rate:.0}/s): {}",
                DAEMONS
                    .iter()
                    .zip(&looks)
                    .map(|(d, l)| format!(
                        "{d} {} fds, {} KiB, {} threads",
                        l.fds, l.rss_kib, l.threads
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            if samples.last().is_none_or(|(n, _)| *n != i) {
                samples.push((i, looks));
            }
        }
    }
    let took = start.elapsed();
    let blocked = args.cycles / BLOCKED_EVERY;
    env.stop();
    for (n, looks) in &samples {
        for (d, l) in DAEMONS.iter().zip(looks) {
            rep.row(
                "soak",
                format!("after {n} cycles"),
                *d,
                format!(
                    "{} descriptors, {} KiB RSS, {} threads",
                    l.fds, l.rss_kib, l.threads
                ),
                "",
                Verdict::Info,
                vec![
                    ("cycles", *n as f64),
                    ("descriptors", l.fds as f64),
                    ("rss_kib", l.rss_kib as f64),
                    ("threads", l.threads as f64),
                ],
            );
        }
    }
    let mut missed = Vec::new();
    let Some((first_n, first)) = samples.first() else {
        return plumbing("the soak took no sample");
    };
    let Some((last_n, last)) = samples.last() else {
        return plumbing("the soak took no sample");
    };
    for (k, d) in DAEMONS.iter().enumerate() {
        let fds: Vec<usize> = samples.iter().map(|(_, l)| l[k].fds).collect();
        let threads: Vec<u64> = samples.iter().map(|(_, l)| l[k].threads).collect();
        let rss: Vec<i64> = samples
            .iter()
            .map(|(_, l)| l[k].rss_kib as i64 - first[k].rss_kib as i64)
            .collect();
        let fds_flat = fds.iter().all(|&f| f == first[k].fds);
        let threads_flat = threads.iter().all(|&t| t == first[k].threads);
        let worst = rss.iter().copied().map(i64::abs).max().unwrap_or(0);
        let rss_ok = worst <= RSS_SLACK_KIB;
        let verdict = |ok| if ok { Verdict::Met } else { Verdict::Missed };
        let range = |v: Vec<String>| v.join(" → ");
        rep.row(
            "soak",
            format!("{first_n} → {last_n} cycles"),
            format!("{d}: descriptors"),
            range(fds.iter().map(|f| f.to_string()).collect()),
            "exactly flat",
            verdict(fds_flat),
            vec![("first", first[k].fds as f64), ("last", last[k].fds as f64)],
        );
        rep.row(
            "soak",
            format!("{first_n} → {last_n} cycles"),
            format!("{d}: threads"),
            range(threads.iter().map(|t| t.to_string()).collect()),
            "exactly flat",
            verdict(threads_flat),
            vec![
                ("first", first[k].threads as f64),
                ("last", last[k].threads as f64),
            ],
        );
        rep.row(
            "soak",
            format!("{first_n} → {last_n} cycles"),
            format!("{d}: RSS from the first sample"),
            format!(
                "{} KiB, then {} KiB (largest move {worst} KiB)",
                first[k].rss_kib,
                range(rss.iter().skip(1).map(|r| format!("{r:+}")).collect())
            ),
            format!("within {RSS_SLACK_KIB} KiB"),
            verdict(rss_ok),
            vec![
                ("first_kib", first[k].rss_kib as f64),
                ("last_kib", last[k].rss_kib as f64),
                ("largest_move_kib", worst as f64),
            ],
        );
        if !fds_flat {
            missed.push(format!(
                "{d} descriptors not flat ({})",
                range(fds.iter().map(|f| f.to_string()).collect())
            ));
        }
        if !threads_flat {
            missed.push(format!("{d} threads not flat"));
        }
        if !rss_ok {
            missed.push(format!("{d} RSS moved {worst} KiB from the first sample"));
        }
    }
    rep.row(
        "soak",
        format!("{} cycles", args.cycles),
        "rate; churned per cycle: 1 watcher, 1 lsused client, 1 wake alarm",
        format!(
            "{:.0} cycles/s ({:.0} s); {} blocked requests; {} churned clients",
            args.cycles as f64 / took.as_secs_f64(),
            took.as_secs_f64(),
            blocked,
            args.cycles * 3
        ),
        "",
        Verdict::Info,
        vec![
            ("cycles", args.cycles as f64),
            ("seconds", took.as_secs_f64()),
            ("blocked_requests", blocked as f64),
        ],
    );
    rep.note(format!(
        "soak: all three release daemons on one run directory; each cycle a watcher registers and goes, an lsused client registers a pipe and goes, a wakealarmd client sets an alarm an hour away and goes, then one suspend cycle with a watcher process, an lsused client answering S with R and a pending wake alarm; every {BLOCKED_EVERY}th cycle a request under a shared lock on disabled (answered blocked, dropped when the lock goes). Samples after the status files show only the long-lived clients. lsusd's history {}.",
        if args.empty_history {
            "started empty (--empty-history): lsusd's RSS grows while it fills to 2000 records"
        } else {
            "started at its 2000-record bound"
        }
    ));
    Ok(missed)
}
