use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::lping::Args>("lping") {
        Ok(args) => lopa::cli::exit_code("lping", lopa::lping::run(args)),
        Err(code) => code,
    }
}
