#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::watch::Args>("lwatch") {
        Ok(args) => lopa::cli::exit_code("lwatch", lopa::watch::run(args)),
        Err(code) => code,
    }
}
