//! A tool started in the background whose stdout is read line by line as it writes it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};

/// A running process: its stdout's lines arrive on `lines` (a thread reads them, so the
/// process never blocks on a full pipe), and its stderr, when the command piped it, is read
/// whole by another thread.
pub struct Streamed {
    pub child: Child,
    pub lines: Receiver<String>,
    pub stderr: Option<JoinHandle<String>>,
}

/// Starts `cmd` with stdin closed and stdout piped (stderr as the caller set it: piped stderr
/// is collected, see [`Streamed::stderr_text`]).
pub fn spawn_streamed(cmd: &mut Command) -> Streamed {
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = child.stderr.take().map(|mut stderr| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        })
    });
    Streamed {
        child,
        lines,
        stderr,
    }
}

impl Streamed {
    /// Everything the process wrote to stderr (waits for it to close); empty when not piped.
    pub fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .map(|t| t.join().expect("stderr reader"))
            .unwrap_or_default()
    }
}
