//! Generates the man pages and the shell completions of every binary from
//! its clap definition, plus the hand-written sections clap does not know
//! (files, signals, exit status, examples) and the protocol page lsusd(7).
//!
//! ```text
//! cargo run -p lsus-docgen            # writes doc/man and doc/completions
//! cargo run -p lsus-docgen -- OUTDIR  # writes OUTDIR/man and OUTDIR/completions
//! ```
//!
//! The output is deterministic (no dates, no environment), so a test can
//! check that the checked-in files are up to date.

mod pages;
mod roff;
mod synopsis;

use std::io;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use clap_complete::Shell;

/// One binary: its command, man section and hand-written sections.
struct Binary {
    cmd: Command,
    section: &'static str,
    extra: &'static str,
}

fn binaries() -> Vec<Binary> {
    vec![
        Binary {
            cmd: lsusd_cli::Cli::command(),
            section: "8",
            extra: pages::LSUSD_8,
        },
        Binary {
            cmd: lsused_cli::Cli::command(),
            section: "8",
            extra: pages::LSUSED_8,
        },
        Binary {
            cmd: wakealarmd_cli::Cli::command(),
            section: "8",
            extra: pages::WAKEALARMD_8,
        },
        Binary {
            cmd: lsus_logind_cli::Cli::command(),
            section: "8",
            extra: pages::LSUS_LOGIND_8,
        },
        Binary {
            cmd: lsus_idle_cli::Cli::command(),
            section: "8",
            extra: pages::LSUS_IDLE_8,
        },
        Binary {
            cmd: request_suspend_cli::Cli::command(),
            section: "1",
            extra: pages::REQUEST_SUSPEND_1,
        },
        Binary {
            cmd: lsusctl_cli::Cli::command(),
            section: "1",
            extra: pages::LSUSCTL_1,
        },
    ]
}

/// Prepares a command for documentation: no environment values (they
/// would make the output depend on the shell it was generated in) and no
/// `help` subcommand.
fn prepare(cmd: Command) -> Command {
    let mut cmd = cmd
        .disable_help_subcommand(true)
        .mut_args(|a| a.hide_env_values(true));
    // The NAME line reads "lsused - lsused: lets programs…" otherwise.
    let prefix = format!("{}: ", cmd.get_name());
    if let Some(about) = cmd.get_about().map(|a| a.to_string()) {
        if let Some(rest) = about.strip_prefix(&prefix) {
            let rest = rest.to_string();
            cmd = cmd.about(rest);
        }
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |s| s.mut_args(|a| a.hide_env_values(true)));
    }
    cmd.build();
    cmd
}

/// Renders one man page: clap's sections, then `extra` (in the markup of
/// [`roff::render`]).
fn man_page(cmd: &Command, section: &str, extra: &str) -> io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone())
        .section(section)
        .manual("lsusd manual")
        .source(format!(
            "lsusd {}",
            cmd.get_version().unwrap_or(env!("CARGO_PKG_VERSION"))
        ));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    out.extend_from_slice(synopsis::section(cmd).as_bytes());
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }
    out.extend_from_slice(roff::render(extra).as_bytes());
    Ok(out)
}

fn write(path: &Path, bytes: &[u8], written: &mut Vec<PathBuf>) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)?;
    written.push(path.to_path_buf());
    Ok(())
}

/// Writes every man page to `out/man/manN/` and every completion to
/// `out/completions/{bash,zsh,fish}/`; returns the files written.
pub fn generate(out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for b in binaries() {
        let cmd = prepare(b.cmd);
        let name = cmd.get_name().to_string();
        let page = man_page(&cmd, b.section, b.extra)?;
        let dir = out.join(format!("man/man{}", b.section));
        write(
            &dir.join(format!("{name}.{}", b.section)),
            &page,
            &mut written,
        )?;
        for sub in cmd.get_subcommands() {
            let title = sub.get_display_name().unwrap_or(sub.get_name()).to_string();
            let extra = pages::subcommand(&name, sub.get_name());
            let page = man_page(sub, b.section, &extra)?;
            write(
                &dir.join(format!("{title}.{}", b.section)),
                &page,
                &mut written,
            )?;
        }
        for (shell, file) in [
            (Shell::Bash, format!("bash/{name}")),
            (Shell::Zsh, format!("zsh/_{name}")),
            (Shell::Fish, format!("fish/{name}.fish")),
        ] {
            let mut buf = Vec::new();
            let mut c = cmd.clone();
            clap_complete::generate(shell, &mut c, name.clone(), &mut buf);
            write(&out.join("completions").join(file), &buf, &mut written)?;
        }
    }
    write(
        &out.join("man/man7/lsusd.7"),
        roff::page("LSUSD", "7", pages::LSUSD_7).as_bytes(),
        &mut written,
    )?;
    Ok(written)
}
