//! Timestamps and the Error Estimate of OWAMP/TWAMP/STAMP (RFC 4656 4.1.2, RFC 8186 2.3).
//!
//! ```text
//! timestamp: 0..4 seconds, 4..8 fraction        (8 bytes, big-endian)
//!   NTP (Z = 0): seconds since 1900-01-01, fraction in units of 2^-32 s
//!   PTP (Z = 1): seconds since 1970-01-01 (truncated PTPv2), nanoseconds
//! error estimate: |S|Z| scale (6 bits) | multiplier (8 bits) |
//!   error = multiplier * 2^(scale - 32) seconds; multiplier 0 is invalid
//! ```
//! NTP seconds wrap every 2^32 s (era 1 begins 2036-02-07); [`Timestamp::to_unix_ns`] picks the
//! era that puts the time nearest a reference (the local clock), so a run across the wrap reads
//! right.

use super::{Error, Result};

/// Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
const NS: u64 = 1_000_000_000;
const ERA_NS: i128 = (1i128 << 32) * NS as i128;

/// Which of the two timestamp formats a field is in, from the Z bit of its Error Estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ntp,
    Ptp,
}

impl Format {
    /// The format an Error Estimate field announces (its Z bit), whether the rest of the
    /// estimate is valid or not: the timestamps of a packet are in it either way.
    pub fn of_error_estimate(raw: u16) -> Format {
        if raw & 0x4000 != 0 {
            Format::Ptp
        } else {
            Format::Ntp
        }
    }
}

/// A raw 64-bit timestamp as carried on the wire; its meaning depends on [`Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    pub secs: u32,
    pub frac: u32,
}

impl Timestamp {
    /// Encodes `unix_ns` (ns since the Unix epoch) in `format`.
    pub fn from_unix_ns(unix_ns: u64, format: Format) -> Timestamp {
        let secs = unix_ns / NS;
        let ns = unix_ns % NS;
        match format {
            Format::Ntp => Timestamp {
                secs: (secs + NTP_UNIX_OFFSET) as u32,
                // Round to the nearest 2^-32 s; ns < 1e9 keeps the result below 2^32.
                frac: (((ns as u128) << 32) + NS as u128 / 2).div_euclid(NS as u128) as u32,
            },
            Format::Ptp => Timestamp {
                secs: secs as u32,
                frac: ns as u32,
            },
        }
    }

    /// The time in ns since the Unix epoch, choosing among the 2^32-second eras the one
    /// nearest `reference_ns` (also ns since the Unix epoch). Times before 1970 read as 0.
    pub fn to_unix_ns(self, format: Format, reference_ns: u64) -> u64 {
        let within_era: i128 = match format {
            Format::Ntp => {
                let frac_ns = ((u128::from(self.frac) * NS as u128 + (1 << 31)) >> 32) as i128;
                (i128::from(self.secs) - NTP_UNIX_OFFSET as i128) * NS as i128 + frac_ns
            }
            // Nanoseconds above 999,999,999 are invalid; they still decode to a number.
            Format::Ptp => i128::from(self.secs) * NS as i128 + i128::from(self.frac),
        };
        let reference = reference_ns as i128;
        let era = (reference - within_era + ERA_NS / 2).div_euclid(ERA_NS);
        (within_era + era * ERA_NS).clamp(0, u64::MAX as i128) as u64
    }

    pub fn from_bytes(b: [u8; 8]) -> Timestamp {
        Timestamp {
            secs: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            frac: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.secs.to_be_bytes());
        b[4..].copy_from_slice(&self.frac.to_be_bytes());
        b
    }
}

/// The 16-bit Error Estimate: whether the clock is synchronized to UTC (S), the timestamp
/// format (Z) and the error bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorEstimate {
    pub synced: bool,
    pub format: Format,
    /// 6 bits.
    pub scale: u8,
    /// Never 0 in a valid estimate.
    pub multiplier: u8,
}

impl ErrorEstimate {
    /// Decodes the field; a multiplier of 0 is invalid (RFC 4656 4.1.2).
    pub fn decode(raw: u16) -> Result<ErrorEstimate> {
        let multiplier = raw as u8;
        if multiplier == 0 {
            return Err(Error::BadField);
        }
        Ok(ErrorEstimate {
            synced: raw & 0x8000 != 0,
            format: Format::of_error_estimate(raw),
            scale: ((raw >> 8) & 0x3f) as u8,
            multiplier,
        })
    }

    pub fn encode(self) -> u16 {
        (u16::from(self.synced) << 15)
            | (u16::from(self.format == Format::Ptp) << 14)
            | (u16::from(self.scale & 0x3f) << 8)
            | u16::from(self.multiplier)
    }

    /// The error bound in seconds.
    pub fn seconds(self) -> f64 {
        f64::from(self.multiplier) * 2f64.powi(i32::from(self.scale) - 32)
    }

    /// The smallest estimate (multiplier 1..=255, scale 0..=63) not below `seconds`, with the
    /// given sync state, NTP format. Bounds above the largest expressible saturate.
    pub fn bounding(seconds: f64, synced: bool) -> ErrorEstimate {
        let mut best = ErrorEstimate {
            synced,
            format: Format::Ntp,
            scale: 63,
            multiplier: 255,
        };
        for scale in 0..64u8 {
            let unit = 2f64.powi(i32::from(scale) - 32);
            let m = (seconds / unit).ceil().max(1.0);
            if m <= 255.0 {
                best.scale = scale;
                best.multiplier = m as u8;
                break;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000 * NS; // 2026-11

    #[test]
    fn ntp_epoch_offset_matches_rfc_5905() {
        // RFC 5905 figure 4: 1970-01-01 is NTP 2,208,988,800.
        let t = Timestamp::from_unix_ns(0, Format::Ntp);
        assert_eq!(
            t,
            Timestamp {
                secs: 2_208_988_800,
                frac: 0
            }
        );
        assert_eq!(t.to_unix_ns(Format::Ntp, NOW), 0);
        // Half a second is fraction 2^31.
        let half = Timestamp::from_unix_ns(NS / 2, Format::Ntp);
        assert_eq!(half.frac, 1 << 31);
        assert_eq!(half.to_bytes(), [0x83, 0xaa, 0x7e, 0x80, 0x80, 0, 0, 0]);
    }

    #[test]
    fn ntp_round_trip_is_within_a_nanosecond() {
        for ns in [NOW, NOW + 1, NOW + 999_999_999, NOW + 123_456_789, 1] {
            let back = Timestamp::from_unix_ns(ns, Format::Ntp).to_unix_ns(Format::Ntp, NOW);
            assert!(back.abs_diff(ns) <= 1, "{ns} came back as {back}");
            let ptp = Timestamp::from_unix_ns(ns, Format::Ptp).to_unix_ns(Format::Ptp, NOW);
            assert_eq!(ptp, ns);
        }
    }

    #[test]
    fn era_wrap_in_2036_reads_right() {
        // Era 0 ends at 2036-02-07T06:28:16Z = Unix 2,085,978,496.
        let wrap_unix = (1u64 << 32) - NTP_UNIX_OFFSET;
        assert_eq!(wrap_unix, 2_085_978_496);
        let before = (wrap_unix - 1) * NS;
        let after = (wrap_unix + 1) * NS;
        let t_before = Timestamp::from_unix_ns(before, Format::Ntp);
        let t_after = Timestamp::from_unix_ns(after, Format::Ntp);
        assert_eq!(t_before.secs, u32::MAX);
        assert_eq!(t_after.secs, 1);
        // Read with the local clock on either side of the wrap, both decode right.
        for reference in [before, after] {
            assert_eq!(t_before.to_unix_ns(Format::Ntp, reference), before);
            assert_eq!(t_after.to_unix_ns(Format::Ntp, reference), after);
        }
        // Far into era 1, still right.
        let later = (wrap_unix + 40 * 365 * 86_400) * NS;
        let t = Timestamp::from_unix_ns(later, Format::Ntp);
        assert_eq!(t.to_unix_ns(Format::Ntp, later + 3_600 * NS), later);
    }

    #[test]
    fn error_estimate_layout_and_value() {
        // S=1, Z=0, scale=0x3f... RFC 4656: multiplier*2^-32*2^scale seconds.
        let e = ErrorEstimate::decode(0x8001).unwrap();
        assert!(e.synced);
        assert_eq!(e.format, Format::Ntp);
        assert_eq!((e.scale, e.multiplier), (0, 1));
        assert_eq!(e.seconds(), 2f64.powi(-32));
        let e = ErrorEstimate::decode(0x7f_ff).unwrap();
        assert!(!e.synced);
        assert_eq!(e.format, Format::Ptp);
        assert_eq!((e.scale, e.multiplier), (63, 255));
        assert_eq!(e.encode(), 0x7fff);
        assert_eq!(ErrorEstimate::decode(0x8100), Err(Error::BadField));
        // The Z bit holds even where the estimate is invalid (multiplier 0).
        assert_eq!(Format::of_error_estimate(0x4000), Format::Ptp);
        assert_eq!(Format::of_error_estimate(0xbfff), Format::Ntp);
        assert_eq!(ErrorEstimate::decode(0), Err(Error::BadField));
        for raw in 0..=u16::MAX {
            if let Ok(e) = ErrorEstimate::decode(raw) {
                assert_eq!(e.encode(), raw);
            }
        }
    }

    #[test]
    fn bounding_estimate_covers_the_bound_tightly() {
        for s in [1e-9, 1e-6, 1e-3, 0.5, 1.0, 100.0] {
            let e = ErrorEstimate::bounding(s, true);
            assert!(e.seconds() >= s, "{s}: {e:?}");
            assert!(e.multiplier > 0);
            // One step smaller would not cover it.
            if e.multiplier > 1 {
                let smaller = ErrorEstimate {
                    multiplier: e.multiplier - 1,
                    ..e
                };
                assert!(smaller.seconds() < s);
            }
        }
    }
}
