use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::ludp::Args>("ludp") {
        Ok(args) => lopa::cli::exit_code("ludp", lopa::ludp::run(args)),
        Err(code) => code,
    }
}
