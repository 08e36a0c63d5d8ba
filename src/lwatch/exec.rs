//! `--exec CMD`: `sh -c CMD` once per record, the record's JSON line on its stdin, one command
//! at a time in record order (a webhook sees changes in the order they happened).
//!
//! The commands run on their own thread behind a bounded queue, so a slow or hung command
//! never holds up the watch loop: when the queue is full the record is not handed to a
//! command, and the count of those is reported on stderr.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread;
use std::time::Duration;

/// Records waiting for their command, at most.
const QUEUE: usize = 10_000;

/// How long the end of the run waits for queued commands.
const DRAIN: Duration = Duration::from_secs(5);

pub struct Exec {
    tx: Option<SyncSender<Vec<u8>>>,
    done: Receiver<()>,
    dropped: u64,
    quiet: bool,
}

impl Exec {
    pub fn start(cmd: String, quiet: bool) -> Exec {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let (done_tx, done) = mpsc::channel();
        thread::spawn(move || {
            for line in rx {
                run(&cmd, &line, quiet);
            }
            let _ = done_tx.send(());
        });
        Exec {
            tx: Some(tx),
            done,
            dropped: 0,
            quiet,
        }
    }

    /// Queues one record (its JSON line, newline included); never blocks.
    pub fn send(&mut self, line: Vec<u8>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped += 1;
                if !self.quiet && self.dropped.is_power_of_two() {
                    eprintln!(
                        "lwatch: --exec is {QUEUE} records behind: {} records not handed to it",
                        self.dropped
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Lets the queued commands run, for a few seconds at most (a hung command must not keep
    /// lwatch from ending).
    pub fn finish(mut self) {
        self.tx = None;
        if let Err(RecvTimeoutError::Timeout) = self.done.recv_timeout(DRAIN) {
            if !self.quiet {
                eprintln!("lwatch: --exec commands still running after {DRAIN:?}; not waiting");
            }
        }
    }
}

fn run(cmd: &str, line: &[u8], quiet: bool) {
    // The command's output goes to stderr: stdout is the record stream.
    let stdout = match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    };
    let child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            if !quiet {
                eprintln!("lwatch: --exec: cannot run sh: {e}");
            }
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its stdin is fine: the write fails, it still runs.
        let _ = stdin.write_all(line);
    }
    match child.wait() {
        Ok(s) if !s.success() && !quiet => eprintln!("lwatch: --exec: {cmd:?} ended with {s}"),
        Err(e) if !quiet => eprintln!("lwatch: --exec: {e}"),
        _ => {}
    }
}
