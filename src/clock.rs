//! The host clock's synchronization state, for one-way figures.

use crate::wire::ntp::ErrorEstimate;

/// What the kernel says about the clock (`adjtimex`, read only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockState {
    /// An NTP or PTP daemon disciplines the clock: `adjtimex` does not return `TIME_ERROR` and
    /// `STA_UNSYNC` is clear.
    pub synced: bool,
    /// The kernel's estimated error (`esterror`) when synchronized and known, else its maximum
    /// error (`maxerror`, 16 s on a clock nobody disciplines), in seconds; at least 1 µs (the
    /// unit of both fields: 0 means unknown, not perfect).
    pub error_s: f64,
}

impl ClockState {
    /// Reads the state from the kernel; a failing `adjtimex` reads as unsynchronized with an
    /// error of 16 s.
    pub fn read() -> ClockState {
        // SAFETY: timex is plain integers, so all zeroes is a valid value, and with `modes` 0
        // adjtimex only reads the clock's state into it. (nix does not wrap adjtimex.)
        let (state, tx): (libc::c_int, libc::timex) = unsafe {
            let mut tx: libc::timex = std::mem::zeroed();
            (libc::adjtimex(&mut tx), tx)
        };
        if state < 0 {
            return ClockState {
                synced: false,
                error_s: 16.0,
            };
        }
        let synced = state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0;
        // c_long is i64 on 64-bit targets only.
        #[allow(clippy::unnecessary_cast)]
        Self::from_adjtimex(synced, tx.esterror as i64, tx.maxerror as i64)
    }

    /// The state from `adjtimex`'s sync verdict and its `esterror` and `maxerror` (µs).
    pub fn from_adjtimex(synced: bool, esterror_us: i64, maxerror_us: i64) -> ClockState {
        let us = if synced && esterror_us > 0 {
            esterror_us
        } else {
            maxerror_us
        };
        ClockState {
            synced,
            error_s: us.max(1) as f64 * 1e-6,
        }
    }

    /// The TWAMP/STAMP Error Estimate of this clock: S set when synchronized, NTP format, the
    /// smallest scale and multiplier that cover [`ClockState::error_s`].
    pub fn error_estimate(&self) -> ErrorEstimate {
        ErrorEstimate::bounding(self.error_s, self.synced)
    }
}

/// Whether the kernel considers the clock synchronized (an NTP or PTP daemon disciplines it):
/// `adjtimex` does not return `TIME_ERROR` and `STA_UNSYNC` is clear.
pub fn synchronized() -> bool {
    ClockState::read().synced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_estimate_follows_the_kernel_figures() {
        // Unsynchronized: the maximum error, S clear.
        let s = ClockState::from_adjtimex(false, 16_000_000, 16_000_000);
        assert_eq!(s.error_s, 16.0);
        let e = s.error_estimate();
        assert!(
            !e.synced && e.seconds() >= 16.0 && e.seconds() < 16.1,
            "{e:?}"
        );
        // Synchronized with an estimate: the estimate, S set.
        let s = ClockState::from_adjtimex(true, 250, 40_000);
        let e = s.error_estimate();
        assert!(
            e.synced && e.seconds() >= 250e-6 && e.seconds() < 252e-6,
            "{e:?}"
        );
        // Synchronized without an estimate (0 means unknown): the maximum error.
        let e = ClockState::from_adjtimex(true, 0, 40_000).error_estimate();
        assert!(e.seconds() >= 0.04 && e.seconds() < 0.0402, "{e:?}");
        // Nothing known at all: 1 µs, never a perfect clock.
        let e = ClockState::from_adjtimex(true, 0, 0).error_estimate();
        assert!(e.seconds() >= 1e-6 && e.seconds() < 1.01e-6, "{e:?}");
        // The encoded field is valid (multiplier not 0) and round-trips.
        let raw = e.encode();
        assert_eq!(ErrorEstimate::decode(raw), Ok(e));
    }

    #[test]
    fn reading_the_kernel_agrees_with_synchronized() {
        let s = ClockState::read();
        assert_eq!(s.synced, synchronized());
        assert!(s.error_s >= 1e-6);
    }
}
