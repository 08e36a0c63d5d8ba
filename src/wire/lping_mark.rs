//! The mark lping puts at the start of every echo payload, so a reply can be matched to its
//! probe even when the kernel rewrote the echo identifier or another process shares the raw
//! socket's traffic: a per-process random cookie, the target index and the full sequence.

use super::{Error, Result};

mod field {
    pub type Field = std::ops::Range<usize>;
    pub const COOKIE: Field = 0..8;
    pub const TARGET: Field = 8..12;
    pub const SEQ: Field = 12..20;
    pub const LEN: usize = SEQ.end;
}

/// Bytes the mark takes; payloads shorter than this carry none (matching then falls back to
/// address and 16-bit sequence).
pub const MARK_LEN: usize = field::LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeMark {
    pub cookie: u64,
    pub target: u32,
    pub seq: u64,
}

impl ProbeMark {
    pub fn parse(buf: &[u8]) -> Result<ProbeMark> {
        if buf.len() < field::LEN {
            return Err(Error::Truncated);
        }
        let u64_at = |r: field::Field| u64::from_be_bytes(buf[r].try_into().unwrap_or_default());
        Ok(ProbeMark {
            cookie: u64_at(field::COOKIE),
            target: u32::from_be_bytes(buf[field::TARGET].try_into().unwrap_or_default()),
            seq: u64_at(field::SEQ),
        })
    }

    /// Fills `payload`: the mark if it fits, then the byte pattern ping uses (offset mod 256).
    pub fn fill(&self, payload: &mut [u8]) {
        for (i, b) in payload.iter_mut().enumerate() {
            *b = i as u8;
        }
        if payload.len() >= field::LEN {
            payload[field::COOKIE].copy_from_slice(&self.cookie.to_be_bytes());
            payload[field::TARGET].copy_from_slice(&self.target.to_be_bytes());
            payload[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        }
    }

    /// The mark in `buf`, if it carries this cookie.
    pub fn parse_ours(buf: &[u8], cookie: u64) -> Result<ProbeMark> {
        let m = ProbeMark::parse(buf)?;
        if m.cookie == cookie {
            Ok(m)
        } else {
            Err(Error::NotOurs)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_pattern() {
        let m = ProbeMark {
            cookie: 0x0102_0304_0506_0708,
            target: 7,
            seq: 1 << 40,
        };
        let mut buf = [0xa5; 24];
        m.fill(&mut buf);
        assert_eq!(&buf[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&buf[20..], &[20, 21, 22, 23]);
        assert_eq!(ProbeMark::parse_ours(&buf, m.cookie), Ok(m));
        assert_eq!(ProbeMark::parse_ours(&buf, 9), Err(Error::NotOurs));
        assert_eq!(ProbeMark::parse(&buf[..19]), Err(Error::Truncated));
        let mut short = [0xa5; 4];
        m.fill(&mut short);
        assert_eq!(short, [0, 1, 2, 3]);
    }
}
