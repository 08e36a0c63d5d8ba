#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::lreflect::Args>("lreflect") {
        Ok(args) => lopa::cli::exit_code("lreflect", lopa::lreflect::run(args)),
        Err(code) => code,
    }
}
