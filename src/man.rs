//! Man pages, generated from the clap definitions. `man/<tool>.1` is checked in; a test fails
//! when it differs from what the current definition renders (regenerate with
//! `LOPA_UPDATE_MAN=1 cargo test --test cli man_pages`).
#![forbid(unsafe_code)]

use clap::CommandFactory;
use std::io::Write;

/// Every tool's clap command.
pub fn commands() -> Vec<clap::Command> {
    vec![
        crate::lping::Args::command(),
        crate::ludp::Args::command(),
        crate::ltcp::Args::command(),
        crate::ltwamp::Args::command(),
        crate::lcorrelate::Args::command(),
        crate::lreflect::Args::command(),
        crate::lpassive::Args::command(),
        crate::lwatch::Args::command(),
    ]
}

/// The roff source of a tool's man page: clap_mangen's sections, then EXAMPLES (the
/// `after_help` text, kept verbatim so its columns stay aligned) and EXIT STATUS.
pub fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let name = cmd.get_name().to_string();
    let examples = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let man = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    let (examples, exit_status) = match examples.split_once("\nExit status: ") {
        Some((ex, st)) => (ex.to_string(), Some(st.to_string())),
        None => (examples, None),
    };
    let examples = examples.trim_start_matches("Examples:\n");
    if !examples.trim().is_empty() {
        writeln!(out, ".SH EXAMPLES\n.nf")?;
        for line in examples.lines() {
            writeln!(out, "{}", roff_escape(line))?;
        }
        writeln!(out, ".fi")?;
    }
    if let Some(status) = exit_status {
        writeln!(out, ".SH \"EXIT STATUS\"\n{}", roff_escape(status.trim()))?;
    }
    // The man page is the flags' reference; the behaviour in depth is in docs/, which the
    // Debian package installs.
    writeln!(
        out,
        ".SH \"SEE ALSO\"\nThe full reference: /usr/share/doc/lopa/docs/{name}.md (docs/{name}.md in \
         the source); the records: /usr/share/doc/lopa/docs/records.md."
    )?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// Escapes text for roff: backslashes, leading dots and quotes, hyphens.
fn roff_escape(line: &str) -> String {
    let mut s = line.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        s.insert_str(0, "\\&");
    }
    s
}
