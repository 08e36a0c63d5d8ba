#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::ping::Args>("lping") {
        Ok(args) => lopa::cli::exit_code("lping", lopa::ping::run(args)),
        Err(code) => code,
    }
}
