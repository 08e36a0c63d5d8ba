//! Pure encode/decode of packet formats. No I/O; every decoder takes `&[u8]` and returns a
//! `Result`, never panics (the tests feed them arbitrary bytes).
#![forbid(unsafe_code)]

pub mod icmp;
pub mod ip;
pub mod lping_mark;
pub mod ludp_payload;
pub mod ntp;
pub mod stamp_tlv;
pub mod tcp;
pub mod twamp;
pub mod twamp_control;

use std::fmt;
use std::net::IpAddr;

/// The address family of a packet, a socket or a target: IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    pub fn is_v6(self) -> bool {
        self == Family::V6
    }

    /// "IPv4" or "IPv6", for messages.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// Why a packet was not accepted; used to count drops by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Shorter than its fixed header or than a length field says.
    Truncated,
    /// A length or header-length field that cannot be right.
    BadLength,
    /// The checksum does not verify.
    BadChecksum,
    /// A version, magic or cookie that is not ours.
    NotOurs,
    /// A field with a value its format forbids (e.g. an Error Estimate multiplier of 0).
    BadField,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated",
            Error::BadLength => "bad length",
            Error::BadChecksum => "bad checksum",
            Error::NotOurs => "not ours",
            Error::BadField => "bad field",
        })
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2, complemented 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // A buffer carrying its own checksum sums to zero.
        let mut b = [
            0x45, 0, 0, 0x1c, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&b);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&b), 0);
        assert_eq!(checksum(&[0xff]), !0xff00);
    }
}
