//! System limits the big cases need: inotify instances (one per watcher
//! process) and open descriptors.

use std::sync::Mutex;

const MAX_INSTANCES: &str = "/proc/sys/fs/inotify/max_user_instances";

/// The value found before the harness raised it, to put back at exit.
static ORIGINAL: Mutex<Option<u64>> = Mutex::new(None);

fn read_limit() -> Option<u64> {
    std::fs::read_to_string(MAX_INSTANCES)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Makes sure `fs.inotify.max_user_instances` allows `need` more
/// instances than are open now (plus a little room), raising it when
/// running as root. Returns why not otherwise.
pub fn inotify_instances(need: usize) -> Result<(), String> {
    let need = need as u64 + in_use() + 16;
    let Some(now) = read_limit() else {
        return Err(format!("cannot read {MAX_INSTANCES}"));
    };
    if now >= need {
        return Ok(());
    }
    let want = need.max(2048);
    if nix::unistd::geteuid().is_root()
        && std::fs::write(MAX_INSTANCES, format!("{want}\n")).is_ok()
    {
        if let Ok(mut orig) = ORIGINAL.lock() {
            orig.get_or_insert(now);
        }
        eprintln!(
            "lsus-bench: raised fs.inotify.max_user_instances from {now} to {want} for this run (restored at exit)"
        );
        return Ok(());
    }
    Err(format!(
        "fs.inotify.max_user_instances is {now}, this case needs at least {need} (one inotify instance per watcher process): run as root, or `sysctl -w fs.inotify.max_user_instances={want}` first"
    ))
}

/// Returns how many inotify instances are open now, counting the
/// descriptors in `/proc/*/fd` that we can see (all of them as root).
fn in_use() -> u64 {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut n = 0;
    for p in procs.flatten() {
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        n += fds
            .flatten()
            .filter(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify")
            })
            .count() as u64;
    }
    n
}

/// Puts back what [`inotify_instances`] changed.
pub fn restore() {
    let orig = ORIGINAL.lock().ok().and_then(|mut o| o.take());
    if let Some(value) = orig {
        match std::fs::write(MAX_INSTANCES, format!("{value}\n")) {
            Ok(()) => eprintln!("lsus-bench: fs.inotify.max_user_instances restored to {value}"),
            Err(e) => eprintln!(
                "lsus-bench: cannot restore fs.inotify.max_user_instances to {value}: {e}"
            ),
        }
    }
}

/// Raises the soft limit on open descriptors to the hard limit (the
/// client processes inherit it); returns the new soft limit.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}
