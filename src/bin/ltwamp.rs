use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::ltwamp::Args>("ltwamp") {
        Ok(args) => lopa::cli::exit_code("ltwamp", lopa::ltwamp::run(args)),
        Err(code) => code,
    }
}
