//! The checked-in doc/ is what the generator writes now: regenerate with
//! `cargo run -p lsus-docgen` after changing a command line.

use std::path::{Path, PathBuf};

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn checked_in_man_pages_and_completions_are_up_to_date() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../doc");
    let tmp = tempfile::tempdir().unwrap();
    lsus_docgen::generate(tmp.path()).unwrap();
    let fresh = files(tmp.path());
    assert!(fresh.len() >= 5 + 4 + 1 + 15, "{fresh:?}");
    let stale: Vec<String> = fresh
        .iter()
        .filter(|f| std::fs::read(repo.join(f)).ok() != std::fs::read(tmp.path().join(f)).ok())
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        stale.is_empty(),
        "doc/ is out of date for {stale:?}: run `cargo run -p lsus-docgen`"
    );
    for dir in ["man", "completions"] {
        let extra: Vec<PathBuf> = files(&repo.join(dir))
            .into_iter()
            .map(|f| Path::new(dir).join(f))
            .filter(|f| !fresh.contains(f))
            .collect();
        assert!(
            extra.is_empty(),
            "doc/ has files the generator does not write: {extra:?}"
        );
    }
}

#[test]
fn every_binary_has_a_man_page_and_three_completions() {
    let tmp = tempfile::tempdir().unwrap();
    lsus_docgen::generate(tmp.path()).unwrap();
    for page in [
        "man/man8/lsusd.8",
        "man/man8/lsused.8",
        "man/man8/wakealarmd.8",
        "man/man1/request-suspend.1",
        "man/man1/lsusctl.1",
        "man/man1/lsusctl-status.1",
        "man/man1/lsusctl-block.1",
        "man/man7/lsusd.7",
    ] {
        let text = std::fs::read_to_string(tmp.path().join(page)).unwrap();
        assert!(
            text.starts_with(".TH ") || text.contains("\n.TH "),
            "{page}"
        );
        assert!(text.contains(".SH \"SEE ALSO\""), "{page}");
    }
    let lsusctl = std::fs::read_to_string(tmp.path().join("man/man1/lsusctl.1")).unwrap();
    assert!(lsusctl.contains("\\-\\-run\\-dir") && lsusctl.contains("EXIT STATUS"));
    for bin in [
        "lsusd",
        "lsused",
        "wakealarmd",
        "request-suspend",
        "lsusctl",
    ] {
        for f in [
            format!("completions/bash/{bin}"),
            format!("completions/zsh/_{bin}"),
            format!("completions/fish/{bin}.fish"),
        ] {
            let text = std::fs::read_to_string(tmp.path().join(&f)).unwrap();
            assert!(text.contains("run-dir"), "{f}");
        }
    }
}
