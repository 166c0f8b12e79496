//! A small markup for the hand-written sections, turned into roff.
//!
//! ```text
//! # SECTION            .SH SECTION
//! ## Subsection        .SS Subsection
//! (blank line)         a new paragraph
//! * term               .TP with the term in bold; the indented lines
//!   body                 that follow are its body
//! - item               a bulleted item (indented lines continue it)
//!     verbatim         four spaces: kept as is, in a no-fill block
//! `code`               bold
//! ```

/// Escapes text for roff: backslashes, hyphens (so they stay ASCII
/// hyphens) and a leading dot or quote.
fn escape(text: &str) -> String {
    let mut out = text.replace('\\', "\\e").replace('-', "\\-");
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// Escapes `text` and turns `code` spans into bold.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("\\fB");
            out.push_str(&escape(part).replace("\\&", ""));
            out.push_str("\\fR");
        } else {
            out.push_str(&escape(part));
        }
    }
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// Renders the markup to roff.
pub fn render(markup: &str) -> String {
    let mut out = String::new();
    let mut verbatim = false;
    let mut para = false;
    for line in markup.lines() {
        if let Some(code) = line.strip_prefix("    ") {
            if !verbatim {
                out.push_str(".PP\n.RS 4\n.nf\n");
                verbatim = true;
            }
            out.push_str(&escape(code));
            out.push('\n');
            continue;
        }
        if verbatim {
            out.push_str(".fi\n.RE\n");
            verbatim = false;
            para = true;
        }
        if line.trim().is_empty() {
            para = true;
            continue;
        }
        if let Some(h) = line.strip_prefix("## ") {
            out.push_str(&format!(".SS \"{}\"\n", escape(h)));
            para = false;
        } else if let Some(h) = line.strip_prefix("# ") {
            out.push_str(&format!(".SH \"{}\"\n", escape(h)));
            para = false;
        } else if let Some(term) = line.strip_prefix("* ") {
            out.push_str(&format!(".TP\n\\fB{}\\fR\n", inline(term)));
            para = false;
        } else if let Some(item) = line.strip_prefix("- ") {
            out.push_str(&format!(".IP \\(bu 2\n{}\n", inline(item)));
            para = false;
        } else {
            if para {
                out.push_str(".PP\n");
                para = false;
            }
            out.push_str(&inline(line.trim_start()));
            out.push('\n');
        }
    }
    if verbatim {
        out.push_str(".fi\n.RE\n");
    }
    out
}

/// Renders a whole page: the title line, then the markup.
pub fn page(title: &str, section: &str, markup: &str) -> String {
    format!(
        ".TH {title} {section} \"\" \"lsusd {}\" \"lsusd manual\"\n{}",
        env!("CARGO_PKG_VERSION"),
        render(markup)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_becomes_roff() {
        let roff = render(
            "# FILES\n* RUN/disabled\n  A `flock -s` blocks.\n\n.dot-led\n- one\n    $ echo \\x\n",
        );
        assert_eq!(
            roff,
            ".SH \"FILES\"\n.TP\n\\fBRUN/disabled\\fR\nA \\fBflock \\-s\\fR blocks.\n\
             .PP\n\\&.dot\\-led\n.IP \\(bu 2\none\n.PP\n.RS 4\n.nf\n$ echo \\ex\n.fi\n.RE\n"
        );
    }
}
