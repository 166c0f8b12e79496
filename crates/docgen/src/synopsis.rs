//! The SYNOPSIS section, written here rather than by clap_mangen: its
//! synopsis drops the value names (`[--run-dir]` for `--run-dir DIR`) and
//! the `--` before a trailing command (`lsusctl block -- CMD...`), which
//! are what a reader of a synopsis needs.

use clap::{Arg, ArgAction, Command};

/// Escapes text for roff: a backslash and a minus sign.
fn esc(text: &str) -> String {
    text.replace('\\', "\\\\").replace('-', "\\-")
}

fn bold(text: &str) -> String {
    format!("\\fB{}\\fR", esc(text))
}

fn italic(text: &str) -> String {
    format!("\\fI{}\\fR", esc(text))
}

/// Whether `arg` takes a value on the command line.
fn takes_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

fn value_name(arg: &Arg) -> String {
    arg.get_value_names()
        .and_then(|v| v.first())
        .map(|s| s.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
}

/// One option: `[-n|--lines N]`, `[--json]`, `[-v|--verbose]...`.
fn option(arg: &Arg) -> String {
    let mut names = Vec::new();
    if let Some(s) = arg.get_short() {
        names.push(bold(&format!("-{s}")));
    }
    if let Some(l) = arg.get_long() {
        names.push(bold(&format!("--{l}")));
    }
    let mut out = names.join("|");
    if takes_value(arg) {
        out.push(' ');
        out.push_str(&italic(&value_name(arg)));
    }
    let repeats = matches!(arg.get_action(), ArgAction::Count | ArgAction::Append);
    let mut out = if arg.is_required_set() {
        out
    } else {
        format!("[{out}]")
    };
    if repeats {
        out.push_str("...");
    }
    out
}

/// One positional argument: `CMD...` after `--` when it takes the rest of
/// the line, `[SECS]` when optional.
fn positional(arg: &Arg) -> String {
    let name = italic(&value_name(arg));
    let many = matches!(arg.get_action(), ArgAction::Append)
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
    let mut out = if arg.is_trailing_var_arg_set() || arg.is_last_set() {
        format!("[{}] {name}", bold("--"))
    } else {
        name
    };
    if many {
        out.push_str("...");
    }
    if arg.is_required_set() {
        out
    } else {
        format!("[{out}]")
    }
}

/// Returns the SYNOPSIS section of `cmd` (built), as roff.
pub fn section(cmd: &Command) -> String {
    // A subcommand's display name is "lsusctl-block"; the synopsis shows
    // how it is typed, "lsusctl block".
    let name = match cmd.get_display_name() {
        Some(d) if d != cmd.get_name() => match d.strip_suffix(cmd.get_name()) {
            Some(parent) => format!("{} {}", parent.trim_end_matches('-'), cmd.get_name()),
            None => d.to_string(),
        },
        _ => cmd.get_name().to_string(),
    };
    let mut parts = vec![bold(&name)];
    let visible = || cmd.get_arguments().filter(|a| !a.is_hide_set());
    parts.extend(visible().filter(|a| !a.is_positional()).map(option));
    parts.extend(visible().filter(|a| a.is_positional()).map(positional));
    if cmd.has_subcommands() {
        parts.push(italic("COMMAND"));
    }
    format!(".SH SYNOPSIS\n{}\n", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn built(cmd: Command) -> Command {
        let mut cmd = cmd;
        cmd.build();
        cmd
    }

    #[test]
    fn value_names_and_the_double_dash_stay() {
        let cmd = built(lsusctl_cli::Cli::command());
        let block = cmd.find_subcommand("block").unwrap();
        let s = section(block);
        assert!(s.contains(r"[\fB\-\-run\-dir\fR \fIDIR\fR]"), "{s}");
        assert!(s.contains(r"[\fB\-\-why\fR \fITEXT\fR]"), "{s}");
        assert!(s.contains(r"[\fB\-\-\fR] \fICMD\fR..."), "{s}");
        let s = section(&built(lsusd_cli::Cli::command()));
        assert!(s.contains(r"[\fB\-\-backoff\-max\-ms\fR \fIMS\fR]"), "{s}");
        assert!(s.contains(r"[\fB\-\-dry\-run\fR]"), "{s}");
        assert!(s.contains(r"[\fB\-v\fR|\fB\-\-verbose\fR]..."), "{s}");
    }
}
