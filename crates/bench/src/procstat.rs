//! What `/proc` says about a daemon: CPU time, context switches, memory.

use std::time::Duration;

use crate::error::{Context, Result};

/// One look at a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// `utime + stime` from `/proc/PID/stat`, in clock ticks.
    pub ticks: u64,
    /// Time on the CPU from `/proc/PID/schedstat`, in nanoseconds (the
    /// same time as `ticks`, without the 10 ms granularity).
    pub cpu_ns: u64,
    /// `voluntary_ctxt_switches` from `/proc/PID/status`.
    pub voluntary: u64,
    /// `nonvoluntary_ctxt_switches` from `/proc/PID/status`.
    pub nonvoluntary: u64,
    /// `VmRSS`, in KiB.
    pub rss_kib: u64,
    /// `VmHWM` (peak RSS), in KiB.
    pub hwm_kib: u64,
    /// `Threads` from `/proc/PID/status`.
    pub threads: u64,
}

impl Sample {
    /// Returns the context switches of both kinds.
    pub fn switches(&self) -> u64 {
        self.voluntary + self.nonvoluntary
    }

    /// Returns what happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Sample) -> Delta {
        Delta {
            ticks: self.ticks.saturating_sub(earlier.ticks),
            cpu: Duration::from_nanos(self.cpu_ns.saturating_sub(earlier.cpu_ns)),
            switches: self.switches().saturating_sub(earlier.switches()),
        }
    }
}

/// The difference between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delta {
    /// Clock ticks of CPU time (`/proc/PID/stat`).
    pub ticks: u64,
    /// CPU time (`/proc/PID/schedstat`).
    pub cpu: Duration,
    /// Context switches, voluntary and not.
    pub switches: u64,
}

/// Returns the clock tick length (`sysconf(_SC_CLK_TCK)`, normally 10 ms).
pub fn tick() -> Duration {
    // SAFETY: sysconf only reads a configuration value; no memory is passed.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        Duration::from_nanos(1_000_000_000 / hz as u64)
    } else {
        Duration::from_millis(10)
    }
}

/// Reads the sample of process `pid`.
pub fn sample(pid: u32) -> Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ctx(|| format!("cannot read /proc/{pid}/stat (did the daemon die?)"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ctx(|| format!("cannot read /proc/{pid}/status"))?;
    let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap_or_default();
    let mut s = Sample {
        ticks: parse_ticks(&stat),
        cpu_ns: schedstat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        ..Sample::default()
    };
    if s.cpu_ns == 0 {
        // No schedstat: fall back to the ticks.
        s.cpu_ns = s.ticks * tick().as_nanos() as u64;
    }
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || {
            value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match key {
            "voluntary_ctxt_switches" => s.voluntary = number(),
            "nonvoluntary_ctxt_switches" => s.nonvoluntary = number(),
            "VmRSS" => s.rss_kib = number(),
            "VmHWM" => s.hwm_kib = number(),
            "Threads" => s.threads = number(),
            _ => {}
        }
    }
    Ok(s)
}

/// Returns how many descriptors process `pid` has open (the entries of
/// `/proc/PID/fd`).
pub fn descriptors(pid: u32) -> Result<usize> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).ctx(|| format!("cannot list {dir}"))?;
    Ok(entries.filter(|e| e.is_ok()).count())
}

/// Returns `utime + stime` from the text of `/proc/PID/stat`. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// from the last `)`: field 3 is the first after it, utime is field 14.
fn parse_ticks(stat: &str) -> u64 {
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_counted_after_the_command_name() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 99 1000 200";
        assert_eq!(parse_ticks(line), 12);
    }

    #[test]
    fn own_process_can_be_sampled() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
        assert!(s.cpu_ns > 0);
        assert!(s.threads >= 1);
        let before = descriptors(std::process::id()).unwrap();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(descriptors(std::process::id()).unwrap(), before + 1);
        drop(f);
    }
}
