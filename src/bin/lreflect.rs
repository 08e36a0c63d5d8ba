#![forbid(unsafe_code)]
use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::reflect::Args>("lreflect") {
        Ok(args) => lopa::cli::exit_code("lreflect", lopa::reflect::run(args)),
        Err(code) => code,
    }
}
