//! The ludp probe payload: what ludp sends and an echo service returns byte for byte.
//!
//! ```text
//!  0..4   magic "LOPA"
//!  4      version (1)
//!  5      flags: bit 0 STAMPED (the reflector filled the reflector section),
//!         bit 1 SYNCED (the reflector's clock is synchronized),
//!         bit 2 COUNTED (the reflector filled the counts section),
//!         bit 7 UNCOUNTED, set by the sender: answer and stamp, but leave it out of the
//!         counts (ludp's trace probes, which would otherwise read as lost on the way back)
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
//! -- counts section, in payloads of COUNTED_LEN bytes or more --
//! 52..56  received: this flow's probes the reflector received (answered or refused by its
//!         rate limits), this one included, mod 2^32
//! 56..60  refused: of those, the ones its rate limits refused, mod 2^32
//! 60..    padding (the sender's choice; echoed unchanged)
//! ```
//! All integers big-endian. The base fits in 32 bytes, so the 36-byte datagrams of the LLAMA
//! reflector carry it; only payloads of 52 bytes or more have room for the reflector's stamps,
//! and of 60 bytes or more for its counts. The sender zeroes both sections.
//!
//! A flow is the sender's address and port and the reflector's address and port. Between two
//! answers of a flow, the difference of `received` says how many of the probes in between
//! reached the reflector (so the others were lost on the way there) and the difference of
//! `refused` how many of those the reflector refused: loss placed by direction
//! ([`crate::probe::twamp::direction`]), and the reflector's own refusals apart from the
//! network's loss. The counts section came after version 1 without changing its layout, so the
//! version stays 1: an older lreflect stamps without counting (the flag stays clear) and an
//! older ludp ignores the counts.

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
    pub const RECEIVED: Field = 52..56;
    pub const REFUSED: Field = 56..60;
    pub const COUNTED_LEN: usize = REFUSED.end;
}

pub const MAGIC: [u8; 4] = *b"LOPA";
pub const VERSION: u8 = 1;
/// Smallest payload ludp recognises.
pub const BASE_LEN: usize = field::BASE_LEN;
/// Smallest payload with room for the reflector's stamps.
pub const REFLECTOR_LEN: usize = field::REFLECTOR_LEN;
/// Smallest payload with room for the reflector's counts.
pub const COUNTED_LEN: usize = field::COUNTED_LEN;
pub const FLAG_STAMPED: u8 = 1;
pub const FLAG_SYNCED: u8 = 2;
pub const FLAG_COUNTED: u8 = 4;
pub const FLAG_UNCOUNTED: u8 = 0x80;

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
    /// The flow's counts, when the reflector keeps them and the payload has room.
    pub counts: Option<FlowCounts>,
}

/// A reflector's counts of one flow (see the module documentation), both mod 2^32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowCounts {
    pub received: u32,
    pub refused: u32,
}

fn u32_at(buf: &[u8], r: field::Field) -> u32 {
    u32::from_be_bytes(buf[r].try_into().unwrap_or_default())
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
            cookie: u32_at(buf, field::COOKIE),
            target: u32_at(buf, field::TARGET),
        };
        let flags = buf[field::FLAGS];
        let stamps =
            (flags & FLAG_STAMPED != 0 && buf.len() >= REFLECTOR_LEN).then(|| ReflectorStamps {
                rx_ns: u64_at(buf, field::REFLECTOR_RX_NS),
                tx_ns: u64_at(buf, field::REFLECTOR_TX_NS),
                tos: buf[field::REFLECTOR_TOS],
                synced: flags & FLAG_SYNCED != 0,
                counts: (flags & FLAG_COUNTED != 0 && buf.len() >= COUNTED_LEN).then(|| {
                    FlowCounts {
                        received: u32_at(buf, field::RECEIVED),
                        refused: u32_at(buf, field::REFUSED),
                    }
                }),
            });
        Ok((repr, stamps))
    }

    /// Writes the payload into `buf` (its whole length, at least [`BASE_LEN`]): the base,
    /// zeroed reflector and counts sections as far as there is room, and the padding pattern
    /// (offset mod 256).
    pub fn emit(&self, buf: &mut [u8]) {
        self.emit_flagged(buf, 0);
    }

    /// [`ProbeRepr::emit`] for a probe the reflector must leave out of its counts.
    pub fn emit_uncounted(&self, buf: &mut [u8]) {
        self.emit_flagged(buf, FLAG_UNCOUNTED);
    }

    fn emit_flagged(&self, buf: &mut [u8], flags: u8) {
        for (i, b) in buf.iter_mut().enumerate().skip(BASE_LEN) {
            *b = if i < COUNTED_LEN { 0 } else { i as u8 };
        }
        buf[field::MAGIC].copy_from_slice(&MAGIC);
        buf[field::VERSION] = VERSION;
        buf[field::FLAGS] = flags;
        buf[field::FLOW].copy_from_slice(&self.flow.to_be_bytes());
        buf[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        buf[field::SENT_NS].copy_from_slice(&self.sent_ns.to_be_bytes());
        buf[field::COOKIE].copy_from_slice(&self.cookie.to_be_bytes());
        buf[field::TARGET].copy_from_slice(&self.target.to_be_bytes());
    }
}

/// Whether the reflector should count `buf` in its flow's counts: a ludp payload with room
/// for them that its sender did not mark uncounted.
pub fn is_countable(buf: &[u8]) -> bool {
    is_probe(buf) && buf.len() >= COUNTED_LEN && buf[field::FLAGS] & FLAG_UNCOUNTED == 0
}

/// The reflector's side: stamps a ludp payload in place, if it is one and has room, with the
/// counts where `stamps` has them and there is room. Returns whether it stamped. `tx_ns` is
/// written as late as the caller can (right before sending).
pub fn stamp(buf: &mut [u8], stamps: &ReflectorStamps) -> bool {
    if !is_probe(buf) || buf.len() < REFLECTOR_LEN {
        return false;
    }
    let mut flags = FLAG_STAMPED | if stamps.synced { FLAG_SYNCED } else { 0 };
    if let Some(c) = stamps.counts.filter(|_| buf.len() >= COUNTED_LEN) {
        flags |= FLAG_COUNTED;
        buf[field::RECEIVED].copy_from_slice(&c.received.to_be_bytes());
        buf[field::REFUSED].copy_from_slice(&c.refused.to_be_bytes());
    }
    buf[field::FLAGS] = flags;
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
        assert_eq!(
            &buf[32..56],
            &[0; 24],
            "reflector and counts sections zeroed"
        );
        assert_eq!(ProbeRepr::parse(&buf), Ok((repr(), None)));
        let mut buf = [0xa5u8; 64];
        repr().emit_uncounted(&mut buf);
        assert_eq!(buf[5], 0x80);
        assert_eq!(&buf[52..60], &[0; 8], "counts section zeroed");
        assert_eq!(&buf[60..], &[60, 61, 62, 63], "padding pattern");
        assert!(!is_countable(&buf), "the sender said uncounted");
        repr().emit(&mut buf);
        assert!(is_countable(&buf));
        assert!(!is_countable(&buf[..59]), "no room for the counts");
    }

    #[test]
    fn counts_round_trip_only_with_room() {
        let s = ReflectorStamps {
            rx_ns: 10,
            tx_ns: 20,
            tos: 0,
            synced: false,
            counts: Some(FlowCounts {
                received: 0x0102_0304,
                refused: 5,
            }),
        };
        let mut buf = [0u8; 64];
        repr().emit(&mut buf);
        assert!(stamp(&mut buf, &s));
        assert_eq!(buf[5], FLAG_STAMPED | FLAG_COUNTED);
        assert_eq!(&buf[52..60], &[1, 2, 3, 4, 0, 0, 0, 5]);
        assert_eq!(ProbeRepr::parse(&buf), Ok((repr(), Some(s))));
        // 56 bytes: stamps, no counts, and the padding left alone.
        let mut short = [0u8; 56];
        repr().emit(&mut short);
        assert!(stamp(&mut short, &s));
        assert_eq!(&short[52..], &[0; 4]);
        let (_, got) = ProbeRepr::parse(&short).unwrap();
        assert_eq!(got.unwrap().counts, None);
        // A reflector that does not count: the flag stays clear, the zeros read as nothing.
        let mut old = [0u8; 64];
        repr().emit(&mut old);
        assert!(stamp(&mut old, &ReflectorStamps { counts: None, ..s }));
        assert_eq!(ProbeRepr::parse(&old).unwrap().1.unwrap().counts, None);
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
            counts: None,
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
                synced: false,
                counts: None,
            }
        ));
        let mut v2 = [0u8; 40];
        repr().emit(&mut v2);
        v2[4] = 2;
        assert_eq!(ProbeRepr::parse(&v2), Err(Error::NotOurs));
    }
}
