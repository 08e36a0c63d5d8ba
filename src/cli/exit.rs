//! Arguments in, exit status out: the one way every binary reports a usage error, a failed run
//! and a closed pipe.

use super::pipeline::UNRESOLVED;
use std::process::ExitCode;

/// Exit status: every target answered.
pub const EXIT_OK: u8 = 0;
/// Exit status: some target never answered.
pub const EXIT_NO_REPLY: u8 = 1;
/// Exit status: usage or system error.
pub const EXIT_ERROR: u8 = 2;

/// Parses arguments; a usage error is one line on stderr and exit status 2 (help and
/// version go to stdout with status 0, as usual).
pub fn parse_args<A: clap::Parser>(tool: &str) -> Result<A, ExitCode> {
    match A::try_parse() {
        Ok(a) => Ok(a),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "{tool}: {}",
                one_line_usage_error(tool, &e.render().to_string())
            );
            Err(ExitCode::from(EXIT_ERROR))
        }
    }
}

/// Folds clap's multi-line error into one line, keeping the parts that help: the possible
/// values, the "similar argument" tip, and the arguments a first line ending in ':' lists
/// ("the following required arguments were not provided:").
fn one_line_usage_error(tool: &str, text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut msg = first.strip_prefix("error: ").unwrap_or(first).to_string();
    let mut listing = msg.ends_with(':');
    for line in lines {
        if listing && !line.starts_with("Usage:") && !line.starts_with("For more") {
            msg.push_str(if msg.ends_with(':') { " " } else { ", " });
            msg.push_str(line);
            continue;
        }
        listing = false;
        if line.starts_with("[possible values:") {
            msg.push(' ');
            msg.push_str(line);
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            // clap's "to pass '-1' as a value, use '-- -1'" is wrong for an option's value
            // (`-i -- -1` is "a value is required").
            if tip.starts_with("to pass '") {
                continue;
            }
            msg.push_str("; ");
            msg.push_str(tip);
        }
    }
    let negative = msg
        .strip_prefix("unexpected argument '")
        .and_then(|rest| rest.split('\'').next())
        .is_some_and(|arg| arg.starts_with('-') && arg.parse::<f64>().is_ok());
    if negative {
        msg.push_str(": negative values are not accepted");
    }
    format!("{msg} (see '{tool} --help')")
}

/// Turns a run's result into the exit status: errors are one `tool: cause: cause` line and
/// status 2, except a closed stdout (`| head -1`), which ends quietly with status 0.
pub fn exit_code(tool: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        // Some targets could not be resolved: the run probed the others, and says so.
        Ok(_) if UNRESOLVED.load(std::sync::atomic::Ordering::Relaxed) > 0 => {
            ExitCode::from(EXIT_ERROR)
        }
        Ok(code) => code,
        Err(err) => {
            let broken_pipe = err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("{tool}: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_fold_into_one_line() {
        let text = "error: invalid value 'xml' for '--format <FORMAT>'\n  [possible values: json, influx]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line_usage_error("lping", text),
            "invalid value 'xml' for '--format <FORMAT>' [possible values: json, influx] (see 'lping --help')"
        );
        let text = "error: unexpected argument '--cout' found\n\n  tip: a similar argument exists: '--count'\n\nUsage: lping\n";
        assert_eq!(
            one_line_usage_error("lping", text),
            "unexpected argument '--cout' found; a similar argument exists: '--count' (see 'lping --help')"
        );
        // clap's advice for a negative value is wrong for an option's value: replaced.
        let text = "error: unexpected argument '-1' found\n\n  tip: to pass '-1' as a value, use '-- -1'\n\nUsage: lping\n";
        assert_eq!(
            one_line_usage_error("lping", text),
            "unexpected argument '-1' found: negative values are not accepted (see 'lping --help')"
        );
        let text = "error: the following required arguments were not provided:\n  --twamp <ADDR:PORT>\n  --x <X>\n\nUsage: lreflect --twamp <ADDR:PORT> --stateless\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line_usage_error("lreflect", text),
            "the following required arguments were not provided: --twamp <ADDR:PORT>, --x <X> (see 'lreflect --help')"
        );
    }
}
