#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::lwatch::Args>("lwatch") {
        Ok(args) => lopa::cli::exit_code("lwatch", lopa::lwatch::run(args)),
        Err(code) => code,
    }
}
