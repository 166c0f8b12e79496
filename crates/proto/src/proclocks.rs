//! Who holds a lock on a file, from `/proc/locks`.
//!
//! Used to name blockers in log lines and by `lsusctl status`. Waiters
//! (lines marked `->`) are not holders and are skipped.

use std::io;
use std::path::Path;

/// The kind of a lock as `/proc/locks` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A shared lock (`READ`).
    Shared,
    /// An exclusive lock (`WRITE`).
    Exclusive,
}

/// One lock held on a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The process that took the lock (as seen in this PID namespace).
    pub pid: u32,
    /// Shared or exclusive.
    pub mode: Mode,
}

/// Returns the `flock` holders of the file with device `dev` and inode
/// `ino`, reading `/proc/locks`.
pub fn holders(dev: u64, ino: u64) -> io::Result<Vec<Holder>> {
    holders_in(Path::new("/proc/locks"), dev, ino)
}

/// As [`holders`], from another copy of `/proc/locks`.
pub fn holders_in(locks: &Path, dev: u64, ino: u64) -> io::Result<Vec<Holder>> {
    Ok(parse(&std::fs::read_to_string(locks)?, dev, ino))
}

/// Parses the text of `/proc/locks`.
pub fn parse(text: &str, dev: u64, ino: u64) -> Vec<Holder> {
    let want_major = libc::major(dev) as u64;
    let want_minor = libc::minor(dev) as u64;
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 00:16:5678 0 EOF"
        if words.len() < 6 || words[1] != "FLOCK" {
            continue;
        }
        let mode = match words[3] {
            "READ" => Mode::Shared,
            "WRITE" => Mode::Exclusive,
            _ => continue,
        };
        let Ok(pid) = words[4].parse::<u32>() else {
            continue;
        };
        let mut id = words[5].split(':');
        let (Some(maj), Some(min), Some(i)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let parsed = (
            u64::from_str_radix(maj, 16),
            u64::from_str_radix(min, 16),
            i.parse::<u64>(),
        );
        if let (Ok(maj), Ok(min), Ok(i)) = parsed {
            if maj == want_major && min == want_minor && i == ino {
                out.push(Holder { pid, mode });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn parses_holders_and_skips_waiters_and_other_files() {
        let dev = libc::makedev(0, 0x1a);
        let text = "\
1: FLOCK  ADVISORY  READ  812 00:1a:77 0 EOF
1: -> FLOCK  ADVISORY  WRITE 900 00:1a:77 0 EOF
2: FLOCK  ADVISORY  WRITE 1290 00:1a:78 0 EOF
3: POSIX  ADVISORY  WRITE 44 00:1a:77 0 EOF
4: FLOCK  ADVISORY  READ  13 00:1a:77 0 EOF
";
        let h = parse(text, dev, 77);
        assert_eq!(
            h,
            vec![
                Holder {
                    pid: 812,
                    mode: Mode::Shared
                },
                Holder {
                    pid: 13,
                    mode: Mode::Shared
                }
            ]
        );
    }

    #[test]
    fn finds_our_own_lock_in_proc_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = std::fs::File::create(&path).unwrap();
        crate::lock::lock(&f, crate::lock::LockKind::Shared).unwrap();
        let md = f.metadata().unwrap();
        let h = holders(md.dev(), md.ino()).unwrap();
        assert!(
            h.contains(&Holder {
                pid: std::process::id(),
                mode: Mode::Shared
            }),
            "{h:?}"
        );
    }
}
