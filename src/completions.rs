//! Shell completions, generated from the clap definitions (the same commands as the man pages,
//! [`crate::man::commands`]). `completions/` is checked in and packaged; a test fails when a
//! file differs from what the current definition renders (regenerate with
//! `LOPA_UPDATE_MAN=1 cargo test --test cli completions`).
#![forbid(unsafe_code)]

use clap_complete::Shell;

/// The shells completions are shipped for, and where each one's file goes, as the Debian
/// package installs them: bash-completion loads `completions/<tool>` on demand, zsh's
/// vendor-completions directory wants `_<tool>`, fish's `<tool>.fish`.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The file name of a tool's completion for a shell, under `completions/<shell>/`.
pub fn file_name(shell: Shell, tool: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{tool}"),
        Shell::Fish => format!("{tool}.fish"),
        _ => tool.to_string(),
    }
}

/// A tool's completion script for a shell.
pub fn render(mut cmd: clap::Command, shell: Shell) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}
