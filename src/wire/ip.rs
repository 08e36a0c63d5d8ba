//! The IPv4 and IPv6 headers, as far as lopa reads them: in raw-socket receives (IPv4) and in
//! the packet an ICMP error quotes.

use super::{Error, Result};
use std::net::{Ipv4Addr, Ipv6Addr};

mod field {
    pub type Field = std::ops::Range<usize>;
    pub const V4_VER_IHL: usize = 0;
    pub const V4_TOS: usize = 1;
    pub const V4_TOTAL_LEN: Field = 2..4;
    pub const V4_TTL: usize = 8;
    pub const V4_PROTOCOL: usize = 9;
    pub const V4_SRC: Field = 12..16;
    pub const V4_DST: Field = 16..20;
    pub const V4_MIN_HEADER: usize = V4_DST.end;

    pub const V6_NEXT_HEADER: usize = 6;
    pub const V6_HOP_LIMIT: usize = 7;
    pub const V6_SRC: Field = 8..24;
    pub const V6_DST: Field = 24..40;
    pub const V6_HEADER: usize = V6_DST.end;
}

/// What lopa needs of an IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub tos: u8,
    /// Header length in bytes (IHL × 4).
    pub header_len: usize,
    /// The total length field.
    pub total_len: usize,
}

impl Ipv4Repr {
    /// Parses the header at the start of `buf` and returns it with the bytes after it. A quoted
    /// header (inside an ICMP error) may be followed by fewer bytes than `total_len` says, so
    /// the payload is whatever is present, cut at `total_len`.
    pub fn parse(buf: &[u8]) -> Result<(Ipv4Repr, &[u8])> {
        if buf.len() < field::V4_MIN_HEADER {
            return Err(Error::Truncated);
        }
        if buf[field::V4_VER_IHL] >> 4 != 4 {
            return Err(Error::NotOurs);
        }
        let header_len = usize::from(buf[field::V4_VER_IHL] & 0x0f) * 4;
        let total_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if header_len < field::V4_MIN_HEADER || total_len < header_len {
            return Err(Error::BadLength);
        }
        if buf.len() < header_len {
            return Err(Error::Truncated);
        }
        let _ = field::V4_TOTAL_LEN;
        let end = buf.len().min(total_len);
        let octets = |r: field::Field| -> Ipv4Addr {
            let b: [u8; 4] = buf[r].try_into().unwrap_or_default();
            Ipv4Addr::from(b)
        };
        Ok((
            Ipv4Repr {
                src: octets(field::V4_SRC),
                dst: octets(field::V4_DST),
                protocol: buf[field::V4_PROTOCOL],
                ttl: buf[field::V4_TTL],
                tos: buf[field::V4_TOS],
                header_len,
                total_len,
            },
            &buf[header_len..end],
        ))
    }
}

/// What lopa needs of an IPv6 header (extension headers are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
}

impl Ipv6Repr {
    pub fn parse(buf: &[u8]) -> Result<(Ipv6Repr, &[u8])> {
        if buf.len() < field::V6_HEADER {
            return Err(Error::Truncated);
        }
        if buf[0] >> 4 != 6 {
            return Err(Error::NotOurs);
        }
        let octets = |r: field::Field| -> Ipv6Addr {
            let b: [u8; 16] = buf[r].try_into().unwrap_or_default();
            Ipv6Addr::from(b)
        };
        Ok((
            Ipv6Repr {
                src: octets(field::V6_SRC),
                dst: octets(field::V6_DST),
                next_header: buf[field::V6_NEXT_HEADER],
                hop_limit: buf[field::V6_HOP_LIMIT],
            },
            &buf[field::V6_HEADER..],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The IPv4 header of an ICMP packet 10.0.0.2 -> 10.0.0.1, TTL 64, 4 payload bytes.
    const V4: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x4a, 0x1b, 0x00, 0x00, 0x40, 0x01, 0x1c, 0xc8, 10, 0, 0, 2, 10, 0,
        0, 1, 0, 0, 0xff, 0xff,
    ];

    #[test]
    fn parses_ipv4_header() {
        let (ip, rest) = Ipv4Repr::parse(&V4).unwrap();
        assert_eq!(ip.src, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(ip.dst, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            (ip.ttl, ip.protocol, ip.header_len, ip.total_len),
            (64, 1, 20, 24)
        );
        assert_eq!(rest, &[0, 0, 0xff, 0xff]);
        assert_eq!(crate::wire::checksum(&V4[..20]), 0);
        // etherparse reads the same fields.
        let theirs = etherparse::Ipv4HeaderSlice::from_slice(&V4).unwrap();
        assert_eq!((theirs.ttl(), theirs.protocol().0), (ip.ttl, ip.protocol));
        assert_eq!(theirs.source_addr(), ip.src);
        assert_eq!(
            theirs.header_checksum(),
            theirs.to_header().calc_header_checksum()
        );
    }

    #[test]
    fn rejects_lying_lengths() {
        assert_eq!(Ipv4Repr::parse(&V4[..19]), Err(Error::Truncated));
        let mut b = V4;
        b[0] = 0x44; // IHL 4 words < 20 bytes
        assert_eq!(Ipv4Repr::parse(&b), Err(Error::BadLength));
        let mut b = V4;
        b[0] = 0x4f; // IHL 60 bytes > buffer
        b[3] = 0x40;
        assert_eq!(Ipv4Repr::parse(&b), Err(Error::Truncated));
        let mut b = V4;
        b[3] = 0x10; // total length 16 < header
        assert_eq!(Ipv4Repr::parse(&b), Err(Error::BadLength));
        let mut b = V4;
        b[0] = 0x65;
        assert_eq!(Ipv4Repr::parse(&b), Err(Error::NotOurs));
        assert_eq!(Ipv6Repr::parse(&[0x60; 39]), Err(Error::Truncated));
    }

    #[test]
    fn quoted_header_payload_is_cut_at_total_length() {
        let mut b = V4.to_vec();
        b.extend_from_slice(&[9, 9]); // trailing bytes past total length
        let (_, rest) = Ipv4Repr::parse(&b).unwrap();
        assert_eq!(rest.len(), 4);
    }
}
