#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::twamp::Args>("ltwamp") {
        Ok(args) => lopa::cli::exit_code("ltwamp", lopa::twamp::run(args)),
        Err(code) => code,
    }
}
