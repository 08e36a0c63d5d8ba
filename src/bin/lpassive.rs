#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::lpassive::Args>("lpassive") {
        Ok(args) => lopa::cli::exit_code("lpassive", lopa::lpassive::run(args)),
        Err(code) => code,
    }
}
