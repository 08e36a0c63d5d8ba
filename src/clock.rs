//! The host clock's synchronization state, for one-way figures.

/// Whether the kernel considers the clock synchronized (an NTP or PTP daemon disciplines it):
/// `adjtimex` does not return `TIME_ERROR` and `STA_UNSYNC` is clear.
pub fn synchronized() -> bool {
    // SAFETY: a zeroed timex with modes 0 only reads the state.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: tx is a valid timex.
    let state = unsafe { libc::adjtimex(&mut tx) };
    state >= 0 && state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0
}
