//! The signals that end a run: every tool stops on them the same way, writing what it found.

/// The signals that end a run the way the end of a count does (what was found is written):
/// SIGINT, SIGTERM, and SIGHUP, so a terminal or SSH session that goes away still leaves the
/// summary in the file the output went to; but not SIGHUP when the process started with it
/// ignored (`nohup`), which asked for the run to outlive the terminal.
pub fn end_signals() -> Vec<i32> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = vec![SIGINT, SIGTERM];
    if !ignored_at_start(SIGHUP) {
        signals.push(SIGHUP);
    }
    signals
}

/// Whether `signal`'s disposition is "ignore" (inherited through exec, as nohup sets it).
fn ignored_at_start(signal: i32) -> bool {
    // SAFETY: all zeroes is a valid sigaction, and with a null new action sigaction only
    // reads the current one into `old`, which outlives the call. (nix's sigaction always
    // installs a new action: it cannot only read one.)
    let (rc, old) = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(signal, std::ptr::null(), &mut old), old)
    };
    rc == 0 && old.sa_sigaction == libc::SIG_IGN
}
