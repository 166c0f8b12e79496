//! Property tests of what lsusd reads from the kernel (issue #15, point 1):
//! `power/wakeup_count` and the wakeup sources' files, whatever a fake or
//! broken tree holds, end in a value or a clear error, never a panic; the
//! lock lines of `/proc/locks` and `/proc/PID/fdinfo` name only what they
//! should.
//!
//! `tests/fuzz/run --long` sets `PROPTEST_CASES`.

use std::fs;
use std::path::PathBuf;

use lsus_sys::power::{Power, SysfsPower};
use lsus_sys::proclocks::{self, Mode};
use lsus_sys::wakeup::WakeupFiles;
use proptest::prelude::*;

fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        "[ \t\n]{0,2}\\+?[0-9]{1,22}[ \t\n]{0,2}".prop_map(String::into_bytes),
        any::<u64>().prop_map(|n| format!("{n}\n").into_bytes()),
    ]
}

thread_local! {
    /// One temporary tree per test thread, reused by every case: a fresh
    /// directory per case (mkdir, then removing it all) cost more than the
    /// property itself, which the 1,000,000-case run could not afford.
    static TREE: tempfile::TempDir = tempfile::tempdir().unwrap();
}

/// Returns this thread's tree, with `sub` emptied (removed and created
/// again) for the case.
fn fresh(sub: &str) -> PathBuf {
    let root = TREE.with(|t| t.path().to_path_buf());
    let dir = root.join(sub);
    match fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty {}: {e}", dir.display()),
    }
    fs::create_dir_all(&dir).unwrap();
    root
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Every case writes a small tree to a temp directory: fewer cases
        // than the pure parsers unless PROPTEST_CASES says otherwise.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    /// `wakeup_count` reads as the number it holds, or as an error naming
    /// the file.
    #[test]
    fn wakeup_count_is_its_number_or_an_error(text in contents()) {
        let root = fresh("power");
        let path = root.join("power/wakeup_count");
        fs::write(&path, &text).unwrap();
        let expected = std::str::from_utf8(&text).ok().and_then(|s| s.trim().parse::<u64>().ok());
        match SysfsPower::new(&root).read_wakeup_count() {
            Ok(n) => prop_assert_eq!(Some(n), expected),
            Err(e) => {
                prop_assert_eq!(expected, None);
                prop_assert!(e.to_string().contains("wakeup_count"), "{}", e);
            }
        }
    }

    /// Wakeup sources with any contents: a snapshot leaves out what it
    /// cannot read, and two snapshots of the same tree show nothing moved.
    #[test]
    fn wakeup_sources_with_any_contents(
        sources in proptest::collection::vec((contents(), contents(), contents()), 0..6),
    ) {
        let root = fresh("class/wakeup");
        let dir = root.join("class/wakeup");
        let mut readable = 0;
        for (i, (name, ev, wk)) in sources.iter().enumerate() {
            let d = dir.join(format!("wakeup{i}"));
            fs::create_dir(&d).unwrap();
            fs::write(d.join("name"), name).unwrap();
            fs::write(d.join("event_count"), ev).unwrap();
            fs::write(d.join("wakeup_count"), wk).unwrap();
            let num = |b: &[u8]| std::str::from_utf8(b).ok().and_then(|s| s.trim().parse::<u64>().ok());
            if num(ev).is_some() && num(wk).is_some() {
                readable += 1;
            }
        }
        let files = WakeupFiles::new(&root);
        let a = files.snapshot().unwrap();
        let b = files.snapshot().unwrap();
        prop_assert_eq!(a.counts.len(), readable);
        prop_assert!(b.moved_since(&a).is_empty());
        for key in a.counts.keys() {
            let _ = files.name(key);
        }
    }
}

proptest! {
    /// `/proc/locks` text: only well-formed FLOCK lines on the file count.
    #[test]
    fn proc_locks_lines_name_only_the_file_asked_for(
        lines in proptest::collection::vec(prop_oneof![
            (1u32..99, prop_oneof![Just("FLOCK"), Just("POSIX"), Just("OFDLCK")],
             prop_oneof![Just("READ"), Just("WRITE"), Just("UNLCK")],
             any::<u32>(), 0u64..3, 0u64..3, 0u64..4, any::<bool>())
                .prop_map(|(n, kind, mode, pid, maj, min, ino, arrow)| format!(
                    "{n}: {}{kind}  ADVISORY  {mode} {pid} {maj:02x}:{min:02x}:{ino} 0 EOF",
                    if arrow { "-> " } else { "" })),
            "\\PC{0,60}",
        ], 0..20),
    ) {
        let text = lines.join("\n");
        let dev = libc::makedev(1, 2);
        let holders = proclocks::parse(&text, dev, 3);
        let expected: Vec<(u32, Mode)> = lines.iter().filter_map(|l| {
            let w: Vec<&str> = l.split_ascii_whitespace().collect();
            (w.len() >= 6 && w[1] == "FLOCK" && w[5] == "01:02:3")
                .then(|| w[4].parse::<u32>().ok())
                .flatten()
                .and_then(|pid| match w[3] {
                    "READ" => Some((pid, Mode::Shared)),
                    "WRITE" => Some((pid, Mode::Exclusive)),
                    _ => None,
                })
        }).collect();
        let got: Vec<(u32, Mode)> = holders.iter().map(|h| (h.pid, h.mode)).collect();
        prop_assert_eq!(got, expected);
    }

    /// `fdinfo` text never makes the reader panic.
    #[test]
    fn fdinfo_text_never_panics(text in "\\PC{0,200}") {
        let _ = proclocks::fdinfo_locks(&text, libc::makedev(1, 2), 3);
    }
}
