//! What `/proc/PID` tells of one process: its user, its names and its
//! start time. Every program of the workspace reads them here (locks on
//! files and who carries them are [`crate::proclocks`]'s).
//!
//! Each function answers `None` when the process has gone (or its entry
//! may not be read): a PID is only a hint that can be stale by the time
//! it is looked at.

/// Returns the real user ID of `pid`, or `None` when it has gone.
pub fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Returns how a process is named to a person: its command line
/// (arguments separated by spaces), else its command name, else `None`
/// when the process is gone. `lsusctl status`, lsusd's log and
/// `request-suspend` use the same names.
pub fn command(pid: u32) -> Option<String> {
    let args = cmdline_args(pid).unwrap_or_default();
    if !args.is_empty() {
        return Some(args.join(" "));
    }
    comm(pid)
}

/// Returns `/proc/PID/comm` without its newline, or `None`.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end_matches('\n').to_string())
}

/// Returns the arguments in `/proc/PID/cmdline`, or `None`.
pub fn cmdline_args(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Returns the start time of `pid` (`/proc/PID/stat` field 22, clock
/// ticks since boot), or `None` when it has gone. With the PID it names
/// one process for good: a PID reused later has another start time.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command, which may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PID no process has (above the kernel's PID_MAX_LIMIT).
    const GONE: u32 = u32::MAX - 1;

    #[test]
    fn our_own_process_is_read() {
        let me = std::process::id();
        assert_eq!(uid_of(me), Some(nix::unistd::getuid().as_raw()));
        let args = cmdline_args(me).unwrap();
        assert_eq!(args, std::env::args().collect::<Vec<_>>());
        assert_eq!(command(me), Some(args.join(" ")));
        // The name of the executable, cut to 15 bytes by the kernel.
        let name = comm(me).unwrap();
        let exe = std::env::current_exe().unwrap();
        let file = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.is_empty() && file.starts_with(&name),
            "{name:?}, {file:?}"
        );
        let start = start_time(me).unwrap();
        assert_eq!(start_time(me), Some(start));
    }

    #[test]
    fn the_start_time_is_counted_after_the_last_parenthesis() {
        // A shell that names itself `a) b (c`: `/proc/PID/stat` then
        // holds `(a) b (c)`, and field 22 is counted after the last `)`.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "printf 'a) b (c' > /proc/self/comm; read _"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while comm(pid).as_deref() != Some("a) b (c") {
            assert!(std::time::Instant::now() < deadline, "{:?}", comm(pid));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let ours = start_time(std::process::id()).unwrap();
        let theirs = start_time(pid);
        drop(child.stdin.take());
        child.wait().unwrap();
        assert!(theirs.is_some_and(|t| t >= ours), "{theirs:?} < {ours}");
    }

    #[test]
    fn a_process_that_has_gone_is_none() {
        assert_eq!(uid_of(GONE), None);
        assert_eq!(comm(GONE), None);
        assert_eq!(cmdline_args(GONE), None);
        assert_eq!(command(GONE), None);
        assert_eq!(start_time(GONE), None);
    }
}
