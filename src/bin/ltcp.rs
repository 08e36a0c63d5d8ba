use std::process::ExitCode;

fn main() -> ExitCode {
    match lopa::cli::parse_args::<lopa::ltcp::Args>("ltcp") {
        Ok(args) => lopa::cli::exit_code("ltcp", lopa::ltcp::run(args)),
        Err(code) => code,
    }
}
