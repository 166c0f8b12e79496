//! The benchmarks of issue #7, one function each, and the self-test of
//! the harness's deadlines.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::clients::WatcherMode;
use crate::env::{Env, Options, ReadyPipe};
use crate::error::{plumbing, Context, Error, Result};
use crate::limits;
use crate::procstat::{self, Sample};
use crate::report::{Report, Verdict};
use crate::stats::{ms, us, Samples};

/// How the run is configured.
#[derive(Debug, Clone)]
pub struct Config {
    /// Binaries and directories.
    pub opts: Options,
    /// A few-second run (CI) instead of the full one.
    pub quick: bool,
    /// The lsusd to compare the 1000-watcher case with (`--baseline-lsusd`).
    pub baseline_lsusd: Option<std::path::PathBuf>,
}

impl Config {
    fn pick<T>(&self, quick: T, full: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    fn run_arg(env: &Env) -> Vec<String> {
        vec!["--run-dir".into(), env.run.display().to_string()]
    }
}

/// How long one cycle may take before the harness calls it stuck.
pub const CYCLE_DEADLINE: Duration = Duration::from_secs(10);

pub fn progress(msg: impl AsRef<str>) {
    eprintln!("lsus-bench: {}", msg.as_ref());
}

/// Spawns `n` watcher processes in `mode` and waits until all are
/// registered, or fails after `deadline` naming how many never were.
pub fn spawn_watchers(
    env: &mut Env,
    n: usize,
    mode: WatcherMode,
    deadline: Duration,
) -> Result<Vec<u32>> {
    spawn_watchers_with(env, n, mode, deadline, None)
}

/// As [`spawn_watchers`]; with `counts`, watcher I counts its wake-ups
/// and cycles in slot I of that file ([`crate::clients::Counts`]).
fn spawn_watchers_with(
    env: &mut Env,
    n: usize,
    mode: WatcherMode,
    deadline: Duration,
    counts: Option<&std::path::Path>,
) -> Result<Vec<u32>> {
    let mut pipe = ReadyPipe::new()?;
    let mode = match mode {
        WatcherMode::Normal => "normal",
        WatcherMode::MovedToo => "moved-too",
        WatcherMode::NeverRegister => "never-register",
        WatcherMode::Stall => "stall",
    };
    let mut pids = Vec::with_capacity(n);
    for slot in 0..n {
        let mut args = vec!["watcher-proc".to_string(), "--mode".into(), mode.into()];
        if let Some(path) = counts {
            args.extend([
                "--counts".into(),
                path.display().to_string(),
                slot.to_string(),
            ]);
        }
        args.extend(Config::run_arg(env));
        pids.push(env.spawn_client(&args, pipe.stdout()?)?.0);
    }
    pipe.close_write();
    let got = pipe.wait_for(n, Instant::now() + deadline)?;
    if got < n {
        return plumbing(format!(
            "timed out after {deadline:?}: {} of {n} watcher processes never became ready (never registered on RUN/watching)\n{}",
            n - got,
            env.diagnose()
        ));
    }
    Ok(pids)
}

/// Runs `n` cycles; returns their times.
fn cycles(env: &mut Env, n: usize) -> Result<(Samples, Samples)> {
    let mut state = Vec::with_capacity(n);
    let mut complete = Vec::with_capacity(n);
    for _ in 0..n {
        let t = env.cycle(CYCLE_DEADLINE)?;
        state.push(t.to_state);
        complete.push(t.to_complete);
    }
    Ok((Samples::new(state), Samples::new(complete)))
}

fn triple(s: &Samples) -> String {
    format!(
        "{} / {} / {} ms",
        ms(s.pct(50.0)),
        ms(s.pct(90.0)),
        ms(s.pct(99.0))
    )
}

/// CPU per cycle: precise (schedstat) and from the ticks of `stat`.
fn cpu_per_cycle(before: &Sample, after: &Sample, n: usize) -> (String, Vec<(&'static str, f64)>) {
    let d = after.since(before);
    let per = d.cpu / n.max(1) as u32;
    let tick_per = procstat::tick() * d.ticks as u32 / n.max(1) as u32;
    (
        format!(
            "{} µs, {:.1} context switches (stat: {} ticks in {n} cycles = {} µs)",
            us(per),
            d.switches as f64 / n.max(1) as f64,
            d.ticks,
            us(tick_per)
        ),
        vec![
            ("cpu_us_per_cycle", per.as_secs_f64() * 1e6),
            ("stat_ticks", d.ticks as f64),
            ("switches_per_cycle", d.switches as f64 / n.max(1) as f64),
            ("cycles", n as f64),
        ],
    )
}

fn verdict(ok: bool) -> Verdict {
    if ok {
        Verdict::Met
    } else {
        Verdict::Missed
    }
}

/// One case of the lsusd bench: the number of watcher processes, and the
/// targets its rows carry (doc: crates/bench/README.md).
struct Case {
    watchers: usize,
    /// Request → state written, p50.
    state_p50: Option<Duration>,
    /// Request → cycle complete, p50.
    complete_p50: Option<Duration>,
    /// Wake-ups per watcher per cycle (issue #18).
    wakeups: Option<f64>,
    /// Compared with `--baseline-lsusd` (issue #18: request → cycle
    /// complete p50 at least this fraction below the baseline's).
    baseline_below: Option<f64>,
}

/// The lsusd cases, in the order they run.
const CASES: [Case; 5] = [
    Case {
        watchers: 0,
        state_p50: Some(Duration::from_micros(200)),
        complete_p50: None,
        wakeups: None,
        baseline_below: None,
    },
    Case {
        watchers: 1,
        state_p50: None,
        complete_p50: None,
        wakeups: None,
        baseline_below: None,
    },
    Case {
        watchers: 10,
        state_p50: None,
        complete_p50: None,
        wakeups: None,
        baseline_below: None,
    },
    Case {
        watchers: 100,
        state_p50: None,
        complete_p50: None,
        wakeups: None,
        baseline_below: None,
    },
    Case {
        watchers: 1000,
        state_p50: None,
        complete_p50: Some(Duration::from_millis(50)),
        wakeups: Some(2.2),
        baseline_below: Some(0.30),
    },
];

/// What one run of a case measured.
struct Measured {
    state: Samples,
    complete: Samples,
    /// lsusd's CPU per cycle, as text and values.
    cpu: (String, Vec<(&'static str, f64)>),
    /// Wake-ups per watcher per cycle (returns from the watchers' blocking
    /// inotify reads), over all watchers; `None` without watchers.
    wakeups: Option<f64>,
}

/// Reads the watchers' counts: the sums of their wake-ups and of their
/// cycles, and the fewest cycles any one has seen.
fn read_counts(path: &std::path::Path, n: usize) -> Result<(u64, u64, u64)> {
    let bytes = std::fs::read(path).ctx(|| format!("cannot read {}", path.display()))?;
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(w)
    };
    let (mut wakeups, mut cycles, mut fewest) = (0, 0, u64::MAX);
    for slot in 0..n {
        wakeups += word(slot * 2);
        cycles += word(slot * 2 + 1);
        fewest = fewest.min(word(slot * 2 + 1));
    }
    Ok((wakeups, cycles, fewest))
}

/// Waits until every one of the `n` watchers has seen `cycles` cycles to
/// the end (they may run a little behind lsusd's removal of `request`),
/// then returns the sum of their wake-ups.
fn wakeups_after(env: &mut Env, path: &std::path::Path, n: usize, cycles: u64) -> Result<u64> {
    let end = Instant::now() + CYCLE_DEADLINE;
    loop {
        let (wakeups, _, fewest) = read_counts(path, n)?;
        if fewest >= cycles {
            return Ok(wakeups);
        }
        if Instant::now() >= end {
            return plumbing(format!(
                "timed out after {CYCLE_DEADLINE:?}: a watcher saw only {fewest} of {cycles} cycles end\n{}",
                env.diagnose()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `n_cycles` measured cycles (after 3 to warm up) with `n` watchers
/// in `mode` and `lsusd` (the one of the binary directory when `None`).
fn run_case(
    cfg: &Config,
    n: usize,
    n_cycles: usize,
    lsusd: Option<&std::path::Path>,
    mode: WatcherMode,
) -> Result<(Measured, Option<(Sample, Sample)>)> {
    const WARM_UP: usize = 3;
    let mut env = Env::new(&cfg.opts)?;
    env.start_lsusd_from(lsusd)?;
    let counts = env.scratch("watcher-counts");
    std::fs::write(&counts, vec![0u8; n * 16])
        .ctx(|| format!("cannot create {}", counts.display()))?;
    let deadline = Duration::from_secs(10 + n as u64 / 50);
    let pids = spawn_watchers_with(&mut env, n, mode, deadline, Some(&counts))?;
    cycles(&mut env, WARM_UP)?;
    let w_before = wakeups_after(&mut env, &counts, n, WARM_UP as u64)?;
    let before = env.sample("lsusd")?;
    let one_before = pids.first().map(|&p| procstat::sample(p)).transpose()?;
    let (state, complete) = cycles(&mut env, n_cycles)?;
    let after = env.sample("lsusd")?;
    let one_after = pids.first().map(|&p| procstat::sample(p)).transpose()?;
    let w_after = wakeups_after(&mut env, &counts, n, (WARM_UP + n_cycles) as u64)?;
    env.stop();
    let wakeups = (n > 0).then(|| (w_after - w_before) as f64 / (n * n_cycles) as f64);
    let measured = Measured {
        state,
        complete,
        cpu: cpu_per_cycle(&before, &after, n_cycles),
        wakeups,
    };
    Ok((measured, one_before.zip(one_after)))
}

/// A row of p50 / p90 / p99, with its target on the p50 when there is one.
fn triple_row(rep: &mut Report, case: &str, measure: &str, s: &Samples, target: Option<Duration>) {
    let (text, v) = match target {
        Some(t) => (
            format!("p50 < {}", target_text(t)),
            verdict(s.pct(50.0) < t),
        ),
        None => (String::new(), Verdict::Info),
    };
    rep.row(
        "lsusd",
        case,
        format!("{measure}, p50 / p90 / p99"),
        triple(s),
        text,
        v,
        vec![
            ("p50_ms", s.pct(50.0).as_secs_f64() * 1e3),
            ("p90_ms", s.pct(90.0).as_secs_f64() * 1e3),
            ("p99_ms", s.pct(99.0).as_secs_f64() * 1e3),
            ("cycles", s.len() as f64),
        ],
    );
}

/// "0.2 ms", "50 ms".
fn target_text(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{ms} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// The rows of one case.
fn case_rows(
    rep: &mut Report,
    case: &Case,
    m: &Measured,
    one: Option<&(Sample, Sample)>,
    n_cycles: usize,
) {
    let name = format!("{} watchers", case.watchers);
    triple_row(
        rep,
        &name,
        "request → state written",
        &m.state,
        case.state_p50,
    );
    triple_row(
        rep,
        &name,
        "request → cycle complete",
        &m.complete,
        case.complete_p50,
    );
    let (mut text, mut values) = m.cpu.clone();
    if let Some((b, a)) = one {
        let d = a.since(b);
        let per = d.switches as f64 / n_cycles as f64;
        text.push_str(&format!(
            "; one watcher: {} µs, {per:.1} context switches",
            us(d.cpu / n_cycles as u32)
        ));
        values.push(("watcher_switches_per_cycle", per));
        values.push((
            "watcher_cpu_us_per_cycle",
            d.cpu.as_secs_f64() * 1e6 / n_cycles as f64,
        ));
    }
    rep.row(
        "lsusd",
        &name,
        "lsusd CPU per cycle",
        text,
        "",
        Verdict::Info,
        values,
    );
    if let Some(w) = m.wakeups {
        let (target, v) = match case.wakeups {
            Some(t) => (format!("≤ {t}"), verdict(w <= t)),
            None => (String::new(), Verdict::Info),
        };
        rep.row(
            "lsusd",
            &name,
            "wake-ups per watcher per cycle (returns from its blocking inotify read)",
            format!("{w:.2}"),
            target,
            v,
            vec![("wakeups_per_watcher_per_cycle", w)],
        );
    }
}

/// How many times the baseline comparison alternates this build and the
/// baseline (`--baseline-lsusd`): one run of each after the other drifts
/// with whatever else the machine does; rounds of all three, pooled, do not.
const BASELINE_ROUNDS: usize = 3;

/// The rows comparing a case's cycle complete p50 with the baseline
/// (`--baseline-lsusd`), measured in the same run, in
/// [`BASELINE_ROUNDS`] rounds of: this build (today's watchers, IN_MODIFY
/// alone), the baseline as it was (its lsusd, and watchers with IN_MODIFY
/// | IN_MOVED_TO as libsus's then), its lsusd with today's watchers. The
/// second is the target's comparison; the third shows lsusd's share.
fn baseline_row(cfg: &Config, rep: &mut Report, case: &Case, n_cycles: usize) -> Result<()> {
    let Some(below) = case.baseline_below else {
        return Ok(());
    };
    let name = format!("{} watchers", case.watchers);
    let target = format!("≥ {:.0} % below", below * 100.0);
    let Some(bin) = &cfg.baseline_lsusd else {
        rep.row(
            "lsusd",
            name,
            "request → cycle complete p50 vs baseline (same run)",
            "needs --baseline-lsusd PATH (an lsusd built from commit b255591)",
            target,
            Verdict::NotAsked,
            vec![],
        );
        return Ok(());
    };
    let runs = [
        (None, WatcherMode::Normal),
        (Some(bin.as_path()), WatcherMode::MovedToo),
        (Some(bin.as_path()), WatcherMode::Normal),
    ];
    let mut pooled = vec![(Samples::default(), 0.0); runs.len()];
    for round in 1..=BASELINE_ROUNDS {
        for ((lsusd, mode), (samples, wakeups)) in runs.iter().zip(pooled.iter_mut()) {
            progress(format!(
                "lsusd, {name}, baseline round {round}/{BASELINE_ROUNDS}: {n_cycles} cycles with {} ({mode:?} watchers)",
                lsusd.map_or("this build".into(), |p| p.display().to_string())
            ));
            let (m, _) = run_case(cfg, case.watchers, n_cycles, *lsusd, *mode)?;
            *samples = samples.merged(&m.complete);
            *wakeups += m.wakeups.unwrap_or(f64::NAN) / BASELINE_ROUNDS as f64;
        }
    }
    let (ours, our_wakeups) = &pooled[0];
    let comparisons = [
        (
            &pooled[1],
            "request → cycle complete p50 vs baseline: its lsusd and its watchers (IN_MODIFY|IN_MOVED_TO), same run",
            Some(below),
        ),
        (
            &pooled[2],
            "request → cycle complete p50 vs baseline lsusd with today's watchers (IN_MODIFY), same run",
            None,
        ),
    ];
    for ((base, base_wakeups), measure, goal) in comparisons {
        let (a, b) = (ours.pct(50.0), base.pct(50.0));
        let gain = 1.0 - a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        let (target, v) = match goal {
            Some(g) => (target.clone(), verdict(gain >= g)),
            None => (String::new(), Verdict::Info),
        };
        rep.row(
            "lsusd",
            &name,
            measure,
            format!(
                "{} ms vs {} ms: {:.0} % below ({} rounds of {n_cycles} cycles each, alternated; wake-ups per watcher per cycle {our_wakeups:.2} vs {base_wakeups:.2})",
                ms(a),
                ms(b),
                gain * 100.0,
                BASELINE_ROUNDS,
            ),
            target,
            v,
            vec![
                ("p50_ms", a.as_secs_f64() * 1e3),
                ("baseline_p50_ms", b.as_secs_f64() * 1e3),
                ("below_fraction", gain),
                ("wakeups_per_watcher_per_cycle", *our_wakeups),
                ("baseline_wakeups_per_watcher_per_cycle", *base_wakeups),
                ("cycles", ours.len() as f64),
            ],
        );
    }
    Ok(())
}

/// lsusd with 0, 1, 10, 100 and 1000 watcher processes ([`CASES`]).
pub fn lsusd(cfg: &Config, rep: &mut Report) -> Result<()> {
    let n_cycles = cfg.pick(15, 60);
    let mut complete_p50 = Vec::new();
    for case in &CASES {
        let n = case.watchers;
        let name = format!("{n} watchers");
        if let Err(why) = limits::inotify_instances(n + 4) {
            progress(format!("lsusd, {name}: skipped: {why}"));
            rep.row(
                "lsusd",
                name,
                "request → cycle complete",
                why,
                "",
                Verdict::Skipped,
                vec![],
            );
            continue;
        }
        progress(format!("lsusd, {name}: {n_cycles} cycles"));
        let (m, one) = run_case(cfg, n, n_cycles, None, WatcherMode::Normal)?;
        case_rows(rep, case, &m, one.as_ref(), n_cycles);
        baseline_row(cfg, rep, case, n_cycles)?;
        complete_p50.push((n, m.complete.pct(50.0)));
        if n == 0 {
            blocked_answer(cfg, rep)?;
            reasons(cfg, rep, m.state.pct(50.0), m.complete.pct(50.0))?;
        }
    }
    growth_rows(rep, &complete_p50)
}

/// How cycle complete grows from 100 to 1000 watchers, and the kernel's
/// own share of it.
fn growth_rows(rep: &mut Report, complete_p50: &[(usize, Duration)]) -> Result<()> {
    let p = |n| complete_p50.iter().find(|(k, _)| *k == n).map(|&(_, d)| d);
    let (Some(p100), Some(p1000)) = (p(100), p(1000)) else {
        return Ok(());
    };
    let ratio = p1000.as_secs_f64() / p100.as_secs_f64().max(1e-9);
    rep.row(
        "lsusd",
        "100 → 1000 watchers",
        "growth of cycle complete p50",
        format!("×{ratio:.1} for ×10 watchers"),
        "≤ ×10 (linear)",
        verdict(ratio <= 10.0),
        vec![("ratio", ratio)],
    );
    // Where the growth comes from: the kernel's own cost of the lock
    // moves doc/protocol.md §2 asks of every watcher, without lsusd.
    let (f100, f1000) = (flock_moves(100)?, flock_moves(1000)?);
    let per = |d: Duration, n: u32| d.as_secs_f64() * 1e6 / f64::from(n);
    rep.row(
        "lsusd",
        "100 → 1000 watchers",
        "kernel alone: n lock moves on one file (flock LOCK_SH watching-next, LOCK_UN watching)",
        format!(
            "{:.2} → {:.2} ms, {:.2} → {:.2} µs per watcher (×{:.0})",
            f100.as_secs_f64() * 1e3,
            f1000.as_secs_f64() * 1e3,
            per(f100, 100),
            per(f1000, 1000),
            f1000.as_secs_f64() / f100.as_secs_f64().max(1e-9)
        ),
        "",
        Verdict::Info,
        vec![
            ("flock_100_ms", f100.as_secs_f64() * 1e3),
            ("flock_1000_ms", f1000.as_secs_f64() * 1e3),
        ],
    );
    Ok(())
}

/// How many wakeup sources the reasons case puts in the fake tree.
const SOURCES: usize = 50;

/// Lays out `n` wakeup sources (`class/wakeup/wakeupN/{name,event_count,
/// wakeup_count}`) and `power/suspend_stats` under `sys`.
fn wakeup_tree(sys: &std::path::Path, n: usize) -> Result<()> {
    for i in 0..n {
        let d = sys.join(format!("class/wakeup/wakeup{i}"));
        std::fs::create_dir_all(&d).ctx(|| format!("cannot create {}", d.display()))?;
        for (f, v) in [
            ("name", format!("source{i}\n")),
            ("event_count", format!("{}\n", i * 7)),
            ("wakeup_count", format!("{}\n", i)),
        ] {
            std::fs::write(d.join(f), v).ctx(|| format!("cannot write {}", d.display()))?;
        }
    }
    let st = sys.join("power/suspend_stats");
    std::fs::create_dir_all(&st).ctx(|| format!("cannot create {}", st.display()))?;
    for f in lsus_sys::wakeup::SUSPEND_STATS_COUNTERS {
        std::fs::write(st.join(f), "0\n").ctx(|| format!("cannot write {f}"))?;
    }
    for f in ["last_failed_dev", "last_failed_errno", "last_failed_step"] {
        std::fs::write(st.join(f), "\n").ctx(|| format!("cannot write {f}"))?;
    }
    Ok(())
}

/// The cost of recording the wake reasons (issue #16), two ways:
///
/// - in-process, what lsusd's `crate::reasons` reads per suspended
///   attempt with [`SOURCES`] wakeup sources: three samples of
///   `class/wakeup` (step 4, before and after the state write),
///   `suspend_stats/fail`, the name of the source that moved (one is made
///   to move between the second and third sample, outside the timing:
///   on a disk-backed temporary directory that write alone cost 2.9 ms),
///   `pm_wakeup_irq`, `last_resume_reason` and `suspend_stats`;
/// - through the release lsusd: request → state written and request →
///   cycle complete with those sources and a history at its 2000-record
///   bound, against `base_state` and `base_complete`, the same figures of
///   the 0-watcher case (no `class/wakeup`, a short history).
fn reasons(
    cfg: &Config,
    rep: &mut Report,
    base_state: Duration,
    base_complete: Duration,
) -> Result<()> {
    use lsus_sys::wakeup::WakeupFiles;
    let case = format!("{SOURCES} wakeup sources");
    progress(format!("lsusd, {case}: recording the reasons"));
    let tmp = tempfile::Builder::new()
        .prefix("lsus-bench-")
        .tempdir_in(crate::env::temp_base())
        .ctx(|| "cannot create a temporary directory".into())?;
    wakeup_tree(tmp.path(), SOURCES)?;
    let w = WakeupFiles::new(tmp.path());
    let bump = tmp.path().join("class/wakeup/wakeup3/wakeup_count");
    let mut times = Vec::new();
    let mut named = 0usize;
    for i in 0..cfg.pick(300, 3000) {
        let t = Instant::now();
        let a = w.snapshot();
        let fail = w.fail_count();
        let b = w.snapshot();
        let before = t.elapsed();
        // The "kernel" moves a source during the suspend: not lsusd's
        // cost, so outside the timing.
        std::fs::write(&bump, format!("{}\n", 10 + i)).ctx(|| "cannot move a source".into())?;
        let t = Instant::now();
        let c = w.snapshot();
        let (Some(b), Some(c)) = (b, c) else {
            return plumbing("the fake class/wakeup could not be read");
        };
        for m in c.moved_since(&b) {
            std::hint::black_box(w.name(&m.key));
            named += 1;
        }
        let more = (w.wakeup_irq(), w.last_resume_reason(), w.suspend_stats());
        times.push(before + t.elapsed());
        std::hint::black_box((a, fail, more));
    }
    if named != times.len() {
        return plumbing(format!(
            "the moved source was found {named} times in {} samples",
            times.len()
        ));
    }
    let rec = Samples::new(times);
    rep.row(
        "lsusd",
        &case,
        "recording the reasons per attempt (in-process), p50 / p90 / p99",
        triple(&rec),
        "p50 < 1 ms",
        verdict(rec.pct(50.0) < Duration::from_millis(1)),
        vec![
            ("p50_ms", rec.pct(50.0).as_secs_f64() * 1e3),
            ("p90_ms", rec.pct(90.0).as_secs_f64() * 1e3),
            ("p99_ms", rec.pct(99.0).as_secs_f64() * 1e3),
            ("samples", rec.len() as f64),
        ],
    );

    // Through the release lsusd, with a history at its bound.
    let n_cycles = cfg.pick(15, 60);
    progress(format!(
        "lsusd, {case}, 2000-record history: {n_cycles} cycles"
    ));
    let mut env = Env::new(&cfg.opts)?;
    wakeup_tree(&env.sys, SOURCES)?;
    env.start_lsusd()?;
    cycles(&mut env, 3)?;
    // 1999 records of a realistic length (about 180 bytes); lsusd keeps
    // them and appends one at each attempt.
    let line = "outcome=suspended seconds=3600.125 awake=1234.567 woke=PNP0C0C:00 wake_irq=9 kernel_success=1234 kernel_fail=0\n";
    let mut text = String::new();
    for i in 0..1999u64 {
        text.push_str(&format!(
            "seq={} time={}.000 {line}",
            100 + i,
            1_700_000_000 + i
        ));
    }
    let history = env.path("log/history");
    std::fs::write(&history, &text).ctx(|| format!("cannot fill {}", history.display()))?;
    let (state, complete) = cycles(&mut env, n_cycles)?;
    let kept =
        std::fs::read_to_string(&history).ctx(|| format!("cannot read {}", history.display()))?;
    env.stop();
    let lines = kept.lines().count();
    if lines != 2000 {
        return plumbing(format!("the history has {lines} lines, not 2000"));
    }
    let case = format!(
        "{SOURCES} wakeup sources, history of 2000 ({} KiB)",
        kept.len() / 1024
    );
    rep.row(
        "lsusd",
        &case,
        "request → state written, p50 / p90 / p99",
        triple(&state),
        "",
        Verdict::Info,
        vec![
            ("p50_ms", state.pct(50.0).as_secs_f64() * 1e3),
            ("p90_ms", state.pct(90.0).as_secs_f64() * 1e3),
            ("p99_ms", state.pct(99.0).as_secs_f64() * 1e3),
        ],
    );
    rep.row(
        "lsusd",
        &case,
        "request → cycle complete, p50 / p90 / p99",
        triple(&complete),
        "",
        Verdict::Info,
        vec![
            ("p50_ms", complete.pct(50.0).as_secs_f64() * 1e3),
            ("p90_ms", complete.pct(90.0).as_secs_f64() * 1e3),
            ("p99_ms", complete.pct(99.0).as_secs_f64() * 1e3),
        ],
    );
    let d = |a: Duration, b: Duration| a.as_secs_f64() * 1e3 - b.as_secs_f64() * 1e3;
    rep.row(
        "lsusd",
        &case,
        "p50 added to state written / cycle complete (vs 0 watchers)",
        format!(
            "{:+.3} / {:+.3} ms",
            d(state.pct(50.0), base_state),
            d(complete.pct(50.0), base_complete)
        ),
        "",
        Verdict::Info,
        vec![
            ("state_ms", d(state.pct(50.0), base_state)),
            ("complete_ms", d(complete.pct(50.0), base_complete)),
        ],
    );
    Ok(())
}

/// The answer to a blocked request (issue #12): request-suspend, the real
/// binary, against lsusd while a shared lock is held on `disabled`. lsusd
/// writes the `blocked` outcome record as soon as it finds the block and
/// request-suspend exits 1 on it. Two measures per request: from the
/// record's time stamp (taken by lsusd right after its failed try-lock,
/// millisecond resolution) to request-suspend's exit, and from spawning
/// request-suspend to its exit (process start-up included).
fn blocked_answer(cfg: &Config, rep: &mut Report) -> Result<()> {
    use crate::error::Context;
    let n = cfg.pick(10, 50);
    progress(format!("lsusd, blocked: {n} requests"));
    let mut env = Env::new(&cfg.opts)?;
    env.start_lsusd()?;
    let disabled = std::fs::File::open(env.path("disabled"))
        .ctx(|| format!("cannot open {}", env.path("disabled").display()))?;
    lsus_sys::lock::lock(&disabled, lsus_sys::lock::LockKind::Shared)
        .ctx(|| "cannot take a shared lock on disabled".into())?;
    let bin = cfg.opts.bin_dir.join("request-suspend");
    let mut after_check = Vec::with_capacity(n);
    let mut total = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let out = std::process::Command::new(&bin)
            .arg("--run-dir")
            .arg(&env.run)
            .args(["--timeout", "10"])
            .output()
            .ctx(|| format!("cannot run {}", bin.display()))?;
        let (ended, took) = (SystemTime::now(), start.elapsed());
        if out.status.code() != Some(1) {
            return plumbing(format!(
                "request-suspend under a block exited {:?}, not 1: {}{}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                env.diagnose()
            ));
        }
        let record: lsus_proto::outcome::Record = std::fs::read_to_string(env.path("outcome"))
            .ctx(|| "cannot read the outcome record".into())?
            .parse()
            .map_err(|e| Error::Plumbing(format!("{e}")))?;
        after_check.push(ended.duration_since(record.time).unwrap_or_default());
        total.push(took);
    }
    drop(disabled);
    env.stop();
    let (after_check, total) = (Samples::new(after_check), Samples::new(total));
    let under = after_check.pct(99.0) < Duration::from_millis(100);
    rep.row(
        "lsusd",
        "blocked request",
        "lsusd's check (outcome record) → request-suspend exit 1, p50 / p90 / p99",
        triple(&after_check),
        "p99 < 100 ms",
        verdict(under),
        vec![
            ("p50_ms", after_check.pct(50.0).as_secs_f64() * 1e3),
            ("p99_ms", after_check.pct(99.0).as_secs_f64() * 1e3),
            ("requests", after_check.len() as f64),
        ],
    );
    rep.row(
        "lsusd",
        "blocked request",
        "request-suspend start → exit 1 (process start-up included), p50 / p90 / p99",
        triple(&total),
        "",
        Verdict::Info,
        vec![
            ("p50_ms", total.pct(50.0).as_secs_f64() * 1e3),
            ("p99_ms", total.pct(99.0).as_secs_f64() * 1e3),
        ],
    );
    Ok(())
}

/// Measures what the kernel alone spends on the lock moves of `n`
/// watchers: `n` open files of `watching` hold shared locks, then each
/// takes a shared lock on `watching-next` and drops its lock on
/// `watching`, in one process (a `flock` lock belongs to the open file,
/// so this is what `n` processes would ask of the kernel). Linux keeps a
/// file's `flock` locks in one list that each call walks, so the total
/// grows with the square of `n`. Returns the best of a few runs.
fn flock_moves(n: u32) -> Result<Duration> {
    use lsus_sys::lock::{self, LockKind};
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        what: "cannot create a temporary directory".into(),
        source: e,
    })?;
    let open_n = |name: &str| -> Result<Vec<std::fs::File>> {
        let path = dir.path().join(name);
        (0..n)
            .map(|_| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(|e| Error::Io {
                        what: format!("cannot open {}", path.display()),
                        source: e,
                    })
            })
            .collect()
    };
    let io = |e| Error::Io {
        what: "flock".into(),
        source: e,
    };
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (watching, next) = (open_n("watching")?, open_n("watching-next")?);
        for f in &watching {
            lock::lock(f, LockKind::Shared).map_err(io)?;
        }
        let start = Instant::now();
        for (w, x) in watching.iter().zip(&next) {
            lock::lock(x, LockKind::Shared).map_err(io)?;
            lock::unlock(w).map_err(io)?;
        }
        best = best.min(start.elapsed());
    }
    Ok(best)
}

/// lsused with 1, 100 and 1000 registered clients, half of them readable.
pub fn lsused(cfg: &Config, rep: &mut Report) -> Result<()> {
    let n_cycles = cfg.pick(10, 40);
    let warm = 2;
    for n in [1usize, 100, 1000] {
        let readable = n.div_ceil(2);
        let case = format!("{n} clients ({readable} readable)");
        progress(format!("lsused, {case}: {n_cycles} cycles"));
        let mut env = Env::new(&cfg.opts)?;
        env.start_lsusd()?;
        env.start_lsused()?;
        let mut pipe = ReadyPipe::new()?;
        for i in 0..n {
            let mut args = vec!["event-proc".to_string()];
            if i % 2 == 0 {
                args.push("--readable".into());
            }
            args.extend(Config::run_arg(&env));
            env.spawn_client(&args, pipe.stdout()?)?;
        }
        pipe.close_write();
        let deadline = Duration::from_secs(10 + n as u64 / 50);
        let got = pipe.wait_for(n, Instant::now() + deadline)?;
        if got < n {
            return plumbing(format!(
                "timed out after {deadline:?}: {} of {n} lsused clients never registered\n{}",
                n - got,
                env.diagnose()
            ));
        }
        let mut answers = 0;
        for _ in 0..warm {
            env.cycle(CYCLE_DEADLINE)?;
            answers += pipe.drain()?;
        }
        let before = env.sample("lsused")?;
        let mut times = Vec::with_capacity(n_cycles);
        for _ in 0..n_cycles {
            times.push(env.cycle(CYCLE_DEADLINE)?.to_complete);
            answers += pipe.drain()?;
        }
        let after = env.sample("lsused")?;
        let expected = readable * (warm + n_cycles);
        if answers < expected {
            answers +=
                pipe.wait_for(expected - answers, Instant::now() + Duration::from_secs(5))?;
        }
        if answers != expected {
            return plumbing(format!(
                "lsused clients answered S {answers} times, expected {expected} ({readable} readable × {} cycles)\n{}",
                warm + n_cycles,
                env.diagnose()
            ));
        }
        env.stop();
        let s = Samples::new(times);
        let (target, v) = if n == 1000 {
            (
                "p50 < 50 ms",
                verdict(s.pct(50.0) < Duration::from_millis(50)),
            )
        } else {
            ("", Verdict::Info)
        };
        rep.row(
            "lsused",
            &case,
            "cycle (request → complete), p50 / p99",
            format!("{} / {} ms", ms(s.pct(50.0)), ms(s.pct(99.0))),
            target,
            v,
            vec![
                ("p50_ms", s.pct(50.0).as_secs_f64() * 1e3),
                ("p99_ms", s.pct(99.0).as_secs_f64() * 1e3),
                ("cycles", s.len() as f64),
            ],
        );
        let (text, values) = cpu_per_cycle(&before, &after, n_cycles);
        rep.row(
            "lsused",
            &case,
            "lsused CPU per cycle",
            text,
            "",
            Verdict::Info,
            values,
        );
    }
    Ok(())
}

fn unix_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// What an alarm client process reported.
pub enum AlarmLine {
    Registered(i128),
    Late(Option<i128>, bool),
    Done,
    /// End of output: the process is gone.
    Eof,
    /// A line that makes no sense.
    Bad(String),
}

fn parse_alarm_line(line: &str) -> AlarmLine {
    parse_alarm_fields(line).unwrap_or_else(|| AlarmLine::Bad(line.to_string()))
}

fn parse_alarm_fields(line: &str) -> Option<AlarmLine> {
    let mut w = line.split_whitespace();
    match w.next()? {
        "registered" => Some(AlarmLine::Registered(w.next()?.parse().ok()?)),
        "late" => {
            let late = w.next()?;
            let before = w.next()? == "1";
            Some(AlarmLine::Late(late.parse().ok(), before))
        }
        "done" => Some(AlarmLine::Done),
        _ => None,
    }
}

/// Starts alarm client processes for `count` connections; returns the
/// channel their lines arrive on (tagged with the process number).
fn spawn_alarm_clients(
    env: &mut Env,
    procs: usize,
    count: usize,
    first: u64,
    spread: u64,
    grace: u64,
) -> Result<mpsc::Receiver<(usize, AlarmLine)>> {
    let (tx, rx) = mpsc::channel();
    for p in 0..procs {
        let share = count / procs + usize::from(p < count % procs);
        let mut args = vec![
            "alarm-proc".to_string(),
            "--count".into(),
            share.to_string(),
            "--first".into(),
            first.to_string(),
            "--spread".into(),
            spread.to_string(),
            "--grace".into(),
            grace.to_string(),
        ];
        args.extend(Config::run_arg(env));
        let (_, out) = env.spawn_client(&args, Stdio::piped())?;
        let Some(out) = out else {
            return plumbing("no standard output from an alarm client");
        };
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send((p, parse_alarm_line(&line))).is_err() {
                    return;
                }
            }
            // End of output: the process is gone.
            let _ = tx.send((p, AlarmLine::Eof));
        });
    }
    Ok(rx)
}

/// wakealarmd with 10,000 connections, each with its own alarm over 20 s.
pub fn wakealarmd(cfg: &Config, rep: &mut Report) -> Result<()> {
    let count: usize = cfg.pick(1000, 10_000);
    let spread: u64 = cfg.pick(2, 20);
    let procs = cfg.pick(2, 4);
    let margin: u64 = cfg.pick(2, 3);
    let case = format!("{count} connections, alarms over {spread} s");
    progress(format!("wakealarmd, {case}"));
    let mut env = Env::new(&cfg.opts)?;
    env.start_lsusd()?;
    env.start_wakealarmd()?;
    let start_ns = unix_ns();
    let first = (start_ns / 1_000_000_000) as u64 + margin;
    let grace = 10;
    let rx = spawn_alarm_clients(&mut env, procs, count, first, spread, grace)?;
    let end = Instant::now() + Duration::from_secs(margin + spread + grace + 10);
    let mut registered = Vec::new();
    let mut late = Vec::new();
    let mut missing = 0usize;
    let mut excluded = 0usize;
    let mut done = 0;
    let mut finished = Vec::new();
    let mut rss_registered = None;
    while done < procs {
        let left = end.saturating_duration_since(Instant::now());
        let (p, line) = match rx.recv_timeout(left) {
            Ok(m) => m,
            Err(_) => {
                return plumbing(format!(
                    "timed out: {} of {procs} alarm client processes did not finish ({} registered)\n{}",
                    procs - done,
                    registered.len(),
                    env.diagnose()
                ))
            }
        };
        match line {
            AlarmLine::Registered(ns) => {
                if ns < 0 {
                    return plumbing(format!(
                        "alarm client {p}: not every time was echoed by wakealarmd\n{}",
                        env.diagnose()
                    ));
                }
                registered.push(ns);
                if registered.len() == procs {
                    rss_registered = Some(env.sample("wakealarmd")?);
                }
            }
            AlarmLine::Late(ns, before) => match (ns, before) {
                (None, _) => missing += 1,
                (Some(_), false) => excluded += 1,
                (Some(ns), true) => late.push(Duration::from_nanos(ns.max(0) as u64)),
            },
            AlarmLine::Done => {
                done += 1;
                finished.push(p);
            }
            AlarmLine::Eof if finished.contains(&p) => {}
            AlarmLine::Eof => {
                return plumbing(format!(
                    "alarm client {p} exited before it finished\n{}",
                    env.diagnose()
                ))
            }
            AlarmLine::Bad(line) => return plumbing(format!("alarm client {p} wrote {line:?}")),
        }
    }
    let end_sample = env.sample("wakealarmd")?;
    env.stop();
    if missing > 0 {
        return plumbing(format!("{missing} of {count} alarms never got their Now"));
    }
    let reg_time = Duration::from_nanos(
        (registered.iter().copied().max().unwrap_or(start_ns) - start_ns).max(0) as u64,
    );
    rep.row(
        "wakealarmd",
        &case,
        "connect + greeting + time + echo, all connections",
        format!("{:.3} s", reg_time.as_secs_f64()),
        "",
        Verdict::Info,
        vec![("seconds", reg_time.as_secs_f64())],
    );
    let s = Samples::new(late);
    rep.row(
        "wakealarmd",
        &case,
        "lateness of Now, p50 / p99 / max",
        format!(
            "{} / {} / {} ms",
            ms(s.pct(50.0)),
            ms(s.pct(99.0)),
            ms(s.max())
        ),
        "p99 ≤ 50 ms",
        verdict(s.pct(99.0) <= Duration::from_millis(50)),
        vec![
            ("p50_ms", s.pct(50.0).as_secs_f64() * 1e3),
            ("p99_ms", s.pct(99.0).as_secs_f64() * 1e3),
            ("max_ms", s.max().as_secs_f64() * 1e3),
            ("alarms", s.len() as f64),
        ],
    );
    if excluded > 0 {
        rep.note(format!(
            "wakealarmd: {excluded} of {count} alarms were registered only after they were due and are left out of the lateness figures"
        ));
    }
    let rss = rss_registered.unwrap_or(end_sample);
    let peak = end_sample.hwm_kib.max(rss.rss_kib);
    rep.row(
        "wakealarmd",
        &case,
        "RSS with all connections (peak)",
        format!(
            "{:.2} MiB (peak {:.2} MiB)",
            rss.rss_kib as f64 / 1024.0,
            peak as f64 / 1024.0
        ),
        "< 8 MiB",
        verdict(peak < 8 * 1024),
        vec![("rss_kib", rss.rss_kib as f64), ("peak_kib", peak as f64)],
    );
    Ok(())
}

const DAEMONS: [&str; 3] = ["lsusd", "lsused", "wakealarmd"];

/// The channel on which an alarm client's lines arrive.
pub type AlarmLines = mpsc::Receiver<(usize, AlarmLine)>;

/// One client of each socket daemon, so that each cycle goes through
/// lsused's S/R and wakealarmd's RTC programming too: an lsused client
/// with a readable pipe (it writes one byte to the returned pipe per `R`:
/// drain it) and a wakealarmd client with an alarm an hour away. Keep the
/// returned channel: the alarm client reports on it.
pub fn spawn_long_lived_clients(env: &mut Env) -> Result<(ReadyPipe, AlarmLines)> {
    let mut pipe = ReadyPipe::new()?;
    let mut args = vec!["event-proc".to_string(), "--readable".into()];
    args.extend(Config::run_arg(env));
    env.spawn_client(&args, pipe.stdout()?)?;
    pipe.close_write();
    if pipe.wait_for(1, Instant::now() + Duration::from_secs(10))? < 1 {
        return plumbing(format!(
            "the lsused client never registered\n{}",
            env.diagnose()
        ));
    }
    let far = (unix_ns() / 1_000_000_000) as u64 + 3600;
    let rx = spawn_alarm_clients(env, 1, 1, far, 1, 0)?;
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok((_, AlarmLine::Registered(ns))) if ns > 0 => {}
        _ => {
            return plumbing(format!(
                "the wakealarmd client never registered\n{}",
                env.diagnose()
            ))
        }
    }
    Ok((pipe, rx))
}

/// Idle cost of each daemon, and RSS before and after many cycles.
pub fn idle(cfg: &Config, rep: &mut Report) -> Result<()> {
    let idle_for = cfg.pick(Duration::from_secs(2), Duration::from_secs(10));
    let n_cycles: usize = cfg.pick(1000, 10_000);
    let warm = 100;
    progress(format!(
        "idle: {} s idle, then {n_cycles} cycles",
        idle_for.as_secs()
    ));
    let mut env = Env::new(&cfg.opts)?;
    env.start_lsusd()?;
    env.start_lsused()?;
    env.start_wakealarmd()?;
    // Let start-up settle (log writes, first page faults).
    std::thread::sleep(Duration::from_millis(500));
    let s0: Vec<Sample> = DAEMONS
        .iter()
        .map(|d| env.sample(d))
        .collect::<Result<_>>()?;
    std::thread::sleep(idle_for);
    let s1: Vec<Sample> = DAEMONS
        .iter()
        .map(|d| env.sample(d))
        .collect::<Result<_>>()?;
    for (i, name) in DAEMONS.iter().enumerate() {
        let d = s1[i].since(&s0[i]);
        rep.row(
            "idle",
            *name,
            format!(
                "CPU ticks / context switches over {} s idle",
                idle_for.as_secs()
            ),
            format!(
                "{} ticks ({} µs) / {} switches",
                d.ticks,
                us(d.cpu),
                d.switches
            ),
            "0 / 0",
            verdict(d.ticks == 0 && d.switches == 0),
            vec![
                ("ticks", d.ticks as f64),
                ("cpu_us", d.cpu.as_secs_f64() * 1e6),
                ("switches", d.switches as f64),
                ("seconds", idle_for.as_secs_f64()),
            ],
        );
    }
    let (mut pipe, _alarms) = spawn_long_lived_clients(&mut env)?;
    for _ in 0..warm {
        env.cycle(CYCLE_DEADLINE)?;
        pipe.drain()?;
    }
    let s2: Vec<Sample> = DAEMONS
        .iter()
        .map(|d| env.sample(d))
        .collect::<Result<_>>()?;
    for _ in 0..n_cycles {
        env.cycle(CYCLE_DEADLINE)?;
        pipe.drain()?;
    }
    let s3: Vec<Sample> = DAEMONS
        .iter()
        .map(|d| env.sample(d))
        .collect::<Result<_>>()?;
    env.stop();
    for (i, name) in DAEMONS.iter().enumerate() {
        let growth = s3[i].rss_kib as i64 - s2[i].rss_kib as i64;
        rep.row(
            "idle",
            *name,
            format!("RSS after start → after {warm} cycles → after {n_cycles} more"),
            format!(
                "{} → {} → {} KiB",
                s1[i].rss_kib, s2[i].rss_kib, s3[i].rss_kib
            ),
            "flat (≤ 32 KiB growth)",
            verdict(growth <= 32),
            vec![
                ("start_kib", s1[i].rss_kib as f64),
                ("warm_kib", s2[i].rss_kib as f64),
                ("end_kib", s3[i].rss_kib as f64),
                ("cycles", n_cycles as f64),
            ],
        );
    }
    Ok(())
}

/// Proves that the harness's deadlines work: a watcher that never
/// registers and one that never becomes ready must each end in a clear
/// error, not a hang; then a normal watcher must complete a cycle.
pub fn selftest(cfg: &Config, rep: &mut Report) -> Result<()> {
    let deadline = Duration::from_secs(1);
    let started = Instant::now();

    let mut env = Env::new(&cfg.opts)?;
    env.start_lsusd()?;
    match spawn_watchers(&mut env, 1, WatcherMode::NeverRegister, deadline) {
        Err(Error::Plumbing(msg)) if msg.contains("never became ready") => {
            progress(format!(
                "selftest: a watcher that never registers is caught: {}",
                first_line(&msg)
            ));
            rep.row(
                "harness",
                "selftest",
                "a watcher that never registers",
                format!("clear error after {:.1?}", started.elapsed()),
                "error, no hang",
                Verdict::Met,
                vec![("seconds", started.elapsed().as_secs_f64())],
            );
        }
        Err(e) => {
            return plumbing(format!(
                "selftest: unexpected error for a never-registering watcher: {e}"
            ))
        }
        Ok(_) => return plumbing("selftest: a watcher that never registered was reported ready"),
    }
    env.stop();

    let mut env = Env::new(&cfg.opts)?;
    env.start_lsusd()?;
    spawn_watchers(&mut env, 1, WatcherMode::Stall, Duration::from_secs(10))?;
    let t = Instant::now();
    match env.cycle(deadline) {
        Err(Error::Plumbing(msg))
            if msg.contains("timed out") && msg.contains("holding RUN/watching") =>
        {
            progress(format!(
                "selftest: a watcher that never becomes ready is caught after {:.1?}: {}",
                t.elapsed(),
                first_line(&msg)
            ));
            rep.row(
                "harness",
                "selftest",
                "a watcher that never becomes ready",
                format!("clear error after {:.1?}", t.elapsed()),
                "error, no hang",
                Verdict::Met,
                vec![("seconds", t.elapsed().as_secs_f64())],
            );
        }
        Err(e) => {
            return plumbing(format!(
                "selftest: unexpected error for a stalled watcher: {e}"
            ))
        }
        Ok(_) => {
            return plumbing("selftest: a cycle completed although its watcher never became ready")
        }
    }
    env.stop();

    let mut env = Env::new(&cfg.opts)?;
    env.start_lsusd()?;
    spawn_watchers(&mut env, 1, WatcherMode::Normal, Duration::from_secs(10))?;
    let times = env.cycle(Duration::from_secs(5))?;
    env.stop();
    progress(format!(
        "selftest: ok in {:.1?} (a normal cycle took {} ms)",
        started.elapsed(),
        ms(times.to_complete)
    ));
    rep.note(format!(
        "harness self-test: a watcher that never registers and one that never becomes ready each end in a clear error after the {deadline:?} deadline; a normal cycle then completes"
    ));
    Ok(())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// A lock holder killed with SIGABRT (issue #15, point 4; Android's
/// SystemSuspend frees its lock within 200 ms): a process holds a shared
/// lock on `disabled`, a request is refused (the `blocked` record), and
/// lsusd waits for the blockers; the harness sends SIGABRT and times until
/// lsusd drops the request (inotify `IN_DELETE`), which it does exactly
/// when it has seen the lock go. Then one cycle must suspend.
pub fn holder(cfg: &Config, rep: &mut Report) -> Result<()> {
    use inotify::{Inotify, WatchMask};
    use nix::sys::signal::{kill, Signal};
    let tries = cfg.pick(10, 100);
    progress(format!("holder: {tries} holders killed with SIGABRT"));
    let mut env = Env::new(&cfg.opts)?;
    env.start_lsusd()?;
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
    let mut freed = Vec::with_capacity(tries);
    for _ in 0..tries {
        let mut pipe = ReadyPipe::new()?;
        let mut args = vec!["holder-proc".to_string()];
        args.extend(Config::run_arg(&env));
        let (pid, _) = env.spawn_client(&args, pipe.stdout()?)?;
        pipe.close_write();
        if pipe.wait_for(1, Instant::now() + Duration::from_secs(10))? < 1 {
            return plumbing(format!("the holder never locked\n{}", env.diagnose()));
        }
        let mut buf = [0u8; 1024];
        while events.read_events(&mut buf).is_ok_and(|e| e.count() > 0) {}
        std::fs::File::create(env.path("request")).ctx(|| "cannot create request".into())?;
        wait_name(&mut events, "outcome", &mut env)?;
        let record = std::fs::read_to_string(env.path("outcome")).unwrap_or_default();
        if !record.contains(" outcome=blocked") {
            return plumbing(format!(
                "a request under the holder's lock was answered {record:?}"
            ));
        }
        let t0 = Instant::now();
        kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGABRT)
            .ctx(|| "cannot send SIGABRT".into())?;
        wait_name(&mut events, "request", &mut env)?;
        freed.push(t0.elapsed());
        env.kill_clients();
        env.cycle(CYCLE_DEADLINE)?;
    }
    env.stop();
    let s = Samples::new(freed);
    rep.row(
        "holder",
        "lock holder killed with SIGABRT",
        "SIGABRT → lsusd drops the refused request (suspend free), p50 / p90 / p99",
        triple(&s),
        "p99 < 200 ms",
        verdict(s.pct(99.0) < Duration::from_millis(200)),
        vec![
            ("p50_ms", s.pct(50.0).as_secs_f64() * 1e3),
            ("p90_ms", s.pct(90.0).as_secs_f64() * 1e3),
            ("p99_ms", s.pct(99.0).as_secs_f64() * 1e3),
            ("tries", s.len() as f64),
        ],
    );
    Ok(())
}

/// Waits for an inotify event naming `name` in the run directory.
fn wait_name(events: &mut inotify::Inotify, name: &str, env: &mut Env) -> Result<()> {
    let end = Instant::now() + CYCLE_DEADLINE;
    let mut buf = [0u8; 1024];
    loop {
        match events.read_events(&mut buf) {
            Ok(evs) => {
                let mut seen = false;
                for e in evs {
                    seen |= e.name.is_some_and(|n| n == name);
                }
                if seen {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !crate::env::wait_readable(&*events, end)? {
                    return plumbing(format!(
                        "timed out after {CYCLE_DEADLINE:?} waiting for RUN/{name}\n{}",
                        env.diagnose()
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).ctx(|| "cannot read inotify events".into()),
        }
    }
}
