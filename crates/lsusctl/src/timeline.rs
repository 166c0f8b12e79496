//! `lsusctl history --timeline`: the last hours in 80 columns — asleep,
//! awake and blocked as bars on a time axis, each wake marked with its
//! reason — so that one look answers "why is the battery empty".
//!
//! ```text
//! lsusd timeline: the last 8h 00m, one column 6m 51s, to 2026-12-01 17:20
//! asleep  |#####   ####################         ##########################|
//! awake   |     ===                    =========                          |
//! blocked |                             BBBB                              |
//! wakes   |     a                      b                                  |
//!          09:20       11:00       13:00       15:00       17:00
//! wakes: a=rtc0 (1)  b=PNP0C0C:00 (1)  !=attempt failed
//! blocked by: rsync (PID 812) 30m 00s
//! ```
//!
//! With colour (a terminal, `NO_COLOR` unset) the bars are coloured
//! blocks instead of `#`, `=` and `B`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, SystemTime};

use lsus_proto::outcome::{Outcome, Record};

use crate::fmt::{epoch, human, local_time};

/// The span drawn when `--since` is not given.
pub const DEFAULT_SPAN: Duration = Duration::from_secs(8 * 3600);

/// Columns of the bars (8 for the label, 2 for the frame: 80 in all).
const COLS: usize = 70;
/// The width of the whole picture.
const WIDTH: usize = 80;

/// Returns true if and only if the output is a terminal and `NO_COLOR`
/// is unset or empty (<https://no-color.org> is the convention's home;
/// doc/protocol.md does not depend on it).
pub fn colour_wanted() -> bool {
    let no_colour = matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty());
    !no_colour && std::io::stdout().is_terminal()
}

/// Returns the local time's offset from UTC at `t`, in seconds.
fn utc_offset(t: SystemTime) -> i64 {
    let secs = libc::time_t::try_from(epoch(t) as i64).unwrap_or(0);
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers
    // are valid for the duration of the call and not aliased.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return 0;
        }
        i64::from(tm.tm_gmtoff as i32)
    }
}

/// Draws `records` (oldest first) over the `span` before `now`.
pub fn draw(records: &[Record], now: SystemTime, span: Duration, colour: bool) -> String {
    let t1 = epoch(now);
    let t0 = t1 - span.as_secs_f64();
    let width = span.as_secs_f64() / COLS as f64;
    let col = |t: f64| -> Option<usize> {
        (t >= t0 && t <= t1).then(|| (((t - t0) / width) as usize).min(COLS - 1))
    };
    let mut asleep = [0.0f64; COLS];
    let mut blocked = [false; COLS];
    let mut marks = [' '; COLS];
    // Where the history begins to know (before that, nothing is drawn).
    let known = crate::record::known_from(records, t0, t1);
    // Wake reasons by count, for their letters.
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for r in records.iter().filter(|r| epoch(r.time) >= t0) {
        if let (Outcome::Suspended { .. }, Some(w)) = (&r.outcome, &r.details.woke) {
            let name = w.first().cloned().unwrap_or_else(|| "unknown".into());
            *reasons.entry(name).or_default() += 1;
        }
    }
    let mut ranked: Vec<(String, u64)> = reasons.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let letter = |name: &str| -> char {
        if name == "unknown" {
            return '?';
        }
        let i = ranked.iter().position(|(n, _)| n == name).unwrap_or(25);
        (b'a' + i.min(25) as u8) as char
    };
    let mut failed = false;
    let mut holders: BTreeMap<(String, u32), f64> = BTreeMap::new();
    for r in records {
        let end = epoch(r.time);
        match &r.outcome {
            Outcome::Suspended { seconds } => {
                let start = end - seconds;
                for (c, cover) in asleep.iter_mut().enumerate() {
                    let (a, b) = (t0 + c as f64 * width, t0 + (c + 1) as f64 * width);
                    *cover += (end.min(b) - start.max(a)).max(0.0);
                }
                if let (Some(c), Some(w)) = (col(end), &r.details.woke) {
                    marks[c] = letter(w.first().map_or("unknown", String::as_str));
                }
            }
            Outcome::Blocked { .. } => {
                let held = r
                    .details
                    .held
                    .iter()
                    .map(|h| h.seconds)
                    .fold(0.0f64, f64::max);
                for (c, b) in blocked.iter_mut().enumerate() {
                    let (a, z) = (t0 + c as f64 * width, t0 + (c + 1) as f64 * width);
                    if end < z && end + held >= a {
                        *b = true;
                    }
                }
                if end >= t0 {
                    for h in &r.details.held {
                        *holders.entry((h.command.clone(), h.pid)).or_default() += h.seconds;
                    }
                }
            }
            o if o.failed_attempt() => {
                if let Some(c) = col(end) {
                    if marks[c] == ' ' {
                        marks[c] = '!';
                        failed = true;
                    }
                }
            }
            _ => {}
        }
    }
    let paint = |on: bool, plain: char, code: &str| -> String {
        match (on, colour) {
            (false, _) => " ".into(),
            (true, false) => plain.to_string(),
            (true, true) => format!("\x1b[{code}m\u{2588}\x1b[0m"),
        }
    };
    let half = width / 2.0;
    let mut out = format!(
        "lsusd timeline: the last {}, one column {}, to {}\n",
        human(span.as_secs_f64()),
        human(width),
        part(&local_time(now), 0, 16)
    );
    let row = |label: &str, cells: String| format!("{label:<8}|{cells}|\n");
    out.push_str(&row(
        "asleep",
        asleep
            .iter()
            .map(|&s| paint(s >= half, '#', "34"))
            .collect(),
    ));
    out.push_str(&row(
        "awake",
        (0..COLS)
            .map(|c| {
                let mid = t0 + (c as f64 + 0.5) * width;
                paint(mid >= known && asleep[c] < half, '=', "32")
            })
            .collect(),
    ));
    out.push_str(&row(
        "blocked",
        blocked.iter().map(|&b| paint(b, 'B', "31")).collect(),
    ));
    out.push_str(&row("wakes", marks.iter().collect()));
    out.push_str(&axis(t0, t1, width, utc_offset(now)));
    // The legends, wrapped at 80 columns.
    let mut items: Vec<String> = ranked
        .iter()
        .map(|(n, c)| format!("{}={n} ({c})", letter(n)))
        .collect();
    if failed {
        items.push("!=attempt failed".into());
    }
    if !items.is_empty() {
        out.push_str(&wrap("wakes:", &items));
    }
    let mut held: Vec<((String, u32), f64)> = holders.into_iter().collect();
    held.sort_by(|a, b| b.1.total_cmp(&a.1));
    let items: Vec<String> = held
        .iter()
        .map(|((cmd, pid), s)| format!("{cmd} (PID {pid}) {}", human(*s)))
        .collect();
    if !items.is_empty() {
        out.push_str(&wrap("blocked by:", &items));
    }
    if known >= t1 {
        out.push_str("no outcomes recorded in this span\n");
    }
    out
}

/// The time axis: `HH:MM` (or `MM-DD` over more than two days) at round
/// local times, under the bars.
fn axis(t0: f64, t1: f64, width: f64, offset: i64) -> String {
    const STEPS: [u64; 12] = [
        60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800,
    ];
    let span = t1 - t0;
    // A label every 12 columns at most.
    let step = STEPS
        .iter()
        .copied()
        .find(|&s| s as f64 / width >= 12.0)
        .unwrap_or(172_800) as f64;
    let mut line = vec![' '; WIDTH];
    let off = offset as f64;
    let mut t = ((t0 + off) / step).ceil() * step - off;
    while t <= t1 {
        let c = 9 + ((t - t0) / width) as usize;
        let text = {
            let s = local_time(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(t.max(0.0)));
            if span > 2.0 * 86_400.0 {
                part(&s, 5, 10)
            } else {
                part(&s, 11, 16)
            }
        };
        let start = c.saturating_sub(2);
        if start + text.len() <= WIDTH
            && line[start..start + text.len()].iter().all(|&ch| ch == ' ')
        {
            for (i, ch) in text.chars().enumerate() {
                line[start + i] = ch;
            }
        }
        t += step;
    }
    let s: String = line.into_iter().collect();
    format!("{}\n", s.trim_end())
}

/// Returns bytes `a..b` of `s`, or all of it when shorter (a time that
/// could not be made local is `@SECONDS`).
fn part(s: &str, a: usize, b: usize) -> String {
    s.get(a..b).unwrap_or(s).to_string()
}

/// Lays out `items` after `head`, two spaces apart, in lines of 80.
fn wrap(head: &str, items: &[String]) -> String {
    let mut out = String::new();
    let mut line = head.to_string();
    for item in items {
        if line.len() + 2 + item.len() > WIDTH && line.len() > head.len() {
            out.push_str(&line);
            out.push('\n');
            line = " ".repeat(head.len());
        }
        line.push_str("  ");
        line.push_str(item);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn plain_picture_fits_80_columns_and_marks_the_wakes() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = |s: u64| 1_000_000 - 8 * 3600 + s;
        let records = crate::record::parse_lines(&format!(
            "seq=1 time={}.000 outcome=suspended seconds=3600.000 awake=600.000 woke=rtc0
             seq=2 time={}.000 outcome=blocked pids=812 held=812:1800.000:rsync
             seq=3 time={}.000 outcome=wakeup-event source=PNP0C0C:00
             seq=4 time={}.000 outcome=suspended seconds=7200.000 woke=PNP0C0C:00",
            t(5000),
            t(9000),
            t(12_000),
            t(20_000),
        ));
        let pic = draw(&records, now, DEFAULT_SPAN, false);
        for line in pic.lines() {
            assert!(line.chars().count() <= 80, "{line:?}\n{pic}");
            assert!(!line.contains('\x1b'), "{pic}");
        }
        let rows: Vec<&str> = pic.lines().collect();
        assert!(
            rows[1].starts_with("asleep  |") && rows[1].contains('#'),
            "{pic}"
        );
        assert!(
            rows[2].starts_with("awake   |") && rows[2].contains('='),
            "{pic}"
        );
        assert!(
            rows[3].starts_with("blocked |") && rows[3].contains('B'),
            "{pic}"
        );
        assert!(rows[4].contains('a') && rows[4].contains('b') && rows[4].contains('!'));
        // Before the first attempt's start (600 s awake, then 3600 asleep),
        // nothing is known: the first columns of awake stay blank.
        assert!(rows[2][9..].starts_with(' '), "{pic}");
        assert!(
            pic.contains("wakes:  a=PNP0C0C:00 (1)  b=rtc0 (1)  !=attempt failed"),
            "{pic}"
        );
        assert!(
            pic.contains("blocked by:  rsync (PID 812) 30m 00s"),
            "{pic}"
        );
        let coloured = draw(&records, now, DEFAULT_SPAN, true);
        assert!(coloured.contains("\x1b[34m"), "{coloured}");
    }

    #[test]
    fn nothing_recorded_says_so() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let pic = draw(&[], now, DEFAULT_SPAN, false);
        assert!(
            pic.ends_with("no outcomes recorded in this span\n"),
            "{pic}"
        );
    }
}
