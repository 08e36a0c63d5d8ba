#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::correlate::Args>("lcorrelate") {
        Ok(args) => lopa::cli::exit_code("lcorrelate", lopa::correlate::run(args)),
        Err(code) => code,
    }
}
