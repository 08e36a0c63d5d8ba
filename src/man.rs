//! Man pages, generated from the clap definitions. `man/<tool>.1` is checked in; a test fails
//! when it differs from what the current definition renders (regenerate with
//! `LOPA_UPDATE_MAN=1 cargo test --test cli man_pages`).

use clap::CommandFactory;

/// Every tool's clap command, by name.
pub fn commands() -> Vec<clap::Command> {
    vec![crate::ping::Args::command()]
}

/// The roff source of a tool's man page.
pub fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(out)
}
