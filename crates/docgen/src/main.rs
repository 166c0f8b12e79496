//! Writes the man pages and shell completions: `cargo run -p lsus-docgen
//! [-- OUTDIR]` (default: `doc` at the top of the workspace).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let out = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../doc"),
    };
    match lsus_docgen::generate(&out) {
        Ok(files) => {
            println!("wrote {} files under {}", files.len(), out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lsus-docgen: cannot write {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
