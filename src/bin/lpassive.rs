#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::passive::Args>("lpassive") {
        Ok(args) => lopa::cli::exit_code("lpassive", lopa::passive::run(args)),
        Err(code) => code,
    }
}
