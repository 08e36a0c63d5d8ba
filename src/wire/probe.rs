//! The ludp probe payload: what ludp sends and an echo service returns byte for byte.
//!
//! ```text
//!  0..4   magic "LOPA"
//!  4      version (1)
//!  5      flags: bit 0 STAMPED (the reflector filled the reflector section),
//!         bit 1 SYNCED (the reflector's clock is synchronized)
//!  6..8   flow id
//!  8..16  sequence number
//! 16..24  sender's send time, ns since the Unix epoch
//! 24..28  sender's cookie (random per process)
//! 28..32  target index in the sender
//! -- reflector section, in payloads of REFLECTOR_LEN bytes or more --
//! 32..40  reflector receive time, ns since the Unix epoch
//! 40..48  reflector send time, ns since the Unix epoch
//! 48      TOS byte the probe arrived with at the reflector
//! 49..52  reserved, zero
//! 52..    padding (the sender's choice; echoed unchanged)
//! ```
//! All integers big-endian. The base fits in 32 bytes, so the 36-byte datagrams of the LLAMA
//! reflector carry it; only payloads of 52 bytes or more have room for the reflector's stamps.

use super::{Error, Result};

mod field {
    pub type Field = std::ops::Range<usize>;
    pub const MAGIC: Field = 0..4;
    pub const VERSION: usize = 4;
    pub const FLAGS: usize = 5;
    pub const FLOW: Field = 6..8;
    pub const SEQ: Field = 8..16;
    pub const SENT_NS: Field = 16..24;
    pub const COOKIE: Field = 24..28;
    pub const TARGET: Field = 28..32;
    pub const BASE_LEN: usize = TARGET.end;
    pub const REFLECTOR_RX_NS: Field = 32..40;
    pub const REFLECTOR_TX_NS: Field = 40..48;
    pub const REFLECTOR_TOS: usize = 48;
    pub const RESERVED: Field = 49..52;
    pub const REFLECTOR_LEN: usize = RESERVED.end;
}

pub const MAGIC: [u8; 4] = *b"LOPA";
pub const VERSION: u8 = 1;
/// Smallest payload ludp recognises.
pub const BASE_LEN: usize = field::BASE_LEN;
/// Smallest payload with room for the reflector's stamps.
pub const REFLECTOR_LEN: usize = field::REFLECTOR_LEN;
pub const FLAG_STAMPED: u8 = 1;
pub const FLAG_SYNCED: u8 = 2;

/// What the sender writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRepr {
    pub flow: u16,
    pub seq: u64,
    pub sent_ns: u64,
    pub cookie: u32,
    pub target: u32,
}

/// What a stamping reflector adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReflectorStamps {
    pub rx_ns: u64,
    pub tx_ns: u64,
    pub tos: u8,
    pub synced: bool,
}

fn u64_at(buf: &[u8], r: field::Field) -> u64 {
    u64::from_be_bytes(buf[r].try_into().unwrap_or_default())
}

/// Whether `buf` starts like a ludp payload (magic and version), long enough for the base.
pub fn is_probe(buf: &[u8]) -> bool {
    buf.len() >= BASE_LEN && buf[field::MAGIC] == MAGIC && buf[field::VERSION] == VERSION
}

impl ProbeRepr {
    /// Parses a payload (as echoed back) and, if a reflector stamped it, its stamps.
    pub fn parse(buf: &[u8]) -> Result<(ProbeRepr, Option<ReflectorStamps>)> {
        if buf.len() < BASE_LEN {
            return Err(Error::Truncated);
        }
        if !is_probe(buf) {
            return Err(Error::NotOurs);
        }
        let repr = ProbeRepr {
            flow: u16::from_be_bytes([buf[6], buf[7]]),
            seq: u64_at(buf, field::SEQ),
            sent_ns: u64_at(buf, field::SENT_NS),
            cookie: u32::from_be_bytes(buf[field::COOKIE].try_into().unwrap_or_default()),
            target: u32::from_be_bytes(buf[field::TARGET].try_into().unwrap_or_default()),
        };
        let flags = buf[field::FLAGS];
        let stamps =
            (flags & FLAG_STAMPED != 0 && buf.len() >= REFLECTOR_LEN).then(|| ReflectorStamps {
                rx_ns: u64_at(buf, field::REFLECTOR_RX_NS),
                tx_ns: u64_at(buf, field::REFLECTOR_TX_NS),
                tos: buf[field::REFLECTOR_TOS],
                synced: flags & FLAG_SYNCED != 0,
            });
        Ok((repr, stamps))
    }

    /// Writes the payload into `buf` (its whole length, at least [`BASE_LEN`]): the base, a
    /// zeroed reflector section if there is room, and the padding pattern (offset mod 256).
    pub fn emit(&self, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate().skip(BASE_LEN) {
            *b = if i < REFLECTOR_LEN { 0 } else { i as u8 };
        }
        buf[field::MAGIC].copy_from_slice(&MAGIC);
        buf[field::VERSION] = VERSION;
        buf[field::FLAGS] = 0;
        buf[field::FLOW].copy_from_slice(&self.flow.to_be_bytes());
        buf[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        buf[field::SENT_NS].copy_from_slice(&self.sent_ns.to_be_bytes());
        buf[field::COOKIE].copy_from_slice(&self.cookie.to_be_bytes());
        buf[field::TARGET].copy_from_slice(&self.target.to_be_bytes());
    }
}

/// The reflector's side: stamps a ludp payload in place, if it is one and has room. Returns
/// whether it stamped. `tx_ns` is written as late as the caller can (right before sending).
pub fn stamp(buf: &mut [u8], stamps: &ReflectorStamps) -> bool {
    if !is_probe(buf) || buf.len() < REFLECTOR_LEN {
        return false;
    }
    buf[field::FLAGS] = FLAG_STAMPED | if stamps.synced { FLAG_SYNCED } else { 0 };
    buf[field::REFLECTOR_RX_NS].copy_from_slice(&stamps.rx_ns.to_be_bytes());
    buf[field::REFLECTOR_TX_NS].copy_from_slice(&stamps.tx_ns.to_be_bytes());
    buf[field::REFLECTOR_TOS] = stamps.tos;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> ProbeRepr {
        ProbeRepr {
            flow: 3,
            seq: 0x0102_0304_0506_0708,
            sent_ns: 1_795_341_600_000_000_001,
            cookie: 0xdead_beef,
            target: 9,
        }
    }

    #[test]
    fn layout_is_byte_exact() {
        let mut buf = [0xa5u8; 56];
        repr().emit(&mut buf);
        assert_eq!(&buf[..8], b"LOPA\x01\x00\x00\x03");
        assert_eq!(&buf[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&buf[24..32], &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 9]);
        assert_eq!(&buf[32..52], &[0; 20], "reflector section zeroed");
        assert_eq!(&buf[52..], &[52, 53, 54, 55], "padding pattern");
        assert_eq!(ProbeRepr::parse(&buf), Ok((repr(), None)));
    }

    #[test]
    fn reflector_stamps_round_trip_only_with_room() {
        let mut buf = [0u8; 64];
        repr().emit(&mut buf);
        let s = ReflectorStamps {
            rx_ns: 10,
            tx_ns: 20,
            tos: 0xb8,
            synced: true,
        };
        assert!(stamp(&mut buf, &s));
        assert_eq!(ProbeRepr::parse(&buf), Ok((repr(), Some(s))));
        let mut llama = [0u8; 36];
        repr().emit(&mut llama);
        assert!(!stamp(&mut llama, &s), "36 bytes: no room, echoed as is");
        assert_eq!(ProbeRepr::parse(&llama), Ok((repr(), None)));
    }

    #[test]
    fn foreign_and_short_payloads_are_errors() {
        let mut buf = [0u8; 40];
        repr().emit(&mut buf);
        assert_eq!(ProbeRepr::parse(&buf[..31]), Err(Error::Truncated));
        buf[0] = b'X';
        assert_eq!(ProbeRepr::parse(&buf), Err(Error::NotOurs));
        assert!(!stamp(
            &mut buf,
            &ReflectorStamps {
                rx_ns: 1,
                tx_ns: 2,
                tos: 0,
                synced: false
            }
        ));
        let mut v2 = [0u8; 40];
        repr().emit(&mut v2);
        v2[4] = 2;
        assert_eq!(ProbeRepr::parse(&v2), Err(Error::NotOurs));
    }
}
