#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::lcorrelate::Args>("lcorrelate") {
        Ok(args) => lopa::cli::exit_code("lcorrelate", lopa::lcorrelate::run(args)),
        Err(code) => code,
    }
}
