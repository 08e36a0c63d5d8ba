//! The TCP header (RFC 9293), as far as a SYN probe needs it: build a SYN or RST, read the
//! SYN-ACK or RST that answers it.

use super::{checksum, Error, Result};
use std::net::IpAddr;

mod field {
    pub type Field = std::ops::Range<usize>;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    /// Data offset (high nibble, in 32-bit words) and reserved bits.
    pub const OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
    pub const HEADER_LEN: usize = URGENT.end;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::HEADER_LEN;
pub const PROTO_TCP: u8 = 6;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// The fields of a TCP segment header that a SYN probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

impl TcpRepr {
    /// Parses the header at the start of `buf` (options are skipped).
    pub fn parse(buf: &[u8]) -> Result<TcpRepr> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let offset = usize::from(buf[field::OFFSET] >> 4) * 4;
        if offset < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if buf.len() < offset {
            return Err(Error::Truncated);
        }
        let u16_at = |r: field::Field| u16::from_be_bytes([buf[r.start], buf[r.start + 1]]);
        let u32_at = |r: field::Field| u32::from_be_bytes(buf[r].try_into().unwrap_or_default());
        Ok(TcpRepr {
            src_port: u16_at(field::SRC_PORT),
            dst_port: u16_at(field::DST_PORT),
            seq: u32_at(field::SEQ),
            ack: u32_at(field::ACK),
            flags: buf[field::FLAGS],
            window: u16_at(field::WINDOW),
        })
    }

    /// Writes a 20-byte header (no options, no data) with its checksum over the pseudo-header
    /// of `src` and `dst` (RFC 9293 3.1; RFC 8200 8.1 for IPv6).
    pub fn emit(&self, src: IpAddr, dst: IpAddr, buf: &mut [u8; HEADER_LEN]) {
        buf[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        buf[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        buf[field::ACK].copy_from_slice(&self.ack.to_be_bytes());
        buf[field::OFFSET] = ((HEADER_LEN / 4) as u8) << 4;
        buf[field::FLAGS] = self.flags;
        buf[field::WINDOW].copy_from_slice(&self.window.to_be_bytes());
        buf[field::CHECKSUM].fill(0);
        buf[field::URGENT].fill(0);
        let c = checksum(&pseudo_header_and(src, dst, buf));
        buf[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    pub fn has(&self, flags: u8) -> bool {
        self.flags & flags == flags
    }
}

/// The pseudo-header followed by the segment, for the checksum.
fn pseudo_header_and(src: IpAddr, dst: IpAddr, segment: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(40 + segment.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
            v.extend_from_slice(&[0, PROTO_TCP]);
            v.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        }
        (s, d) => {
            let six = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            v.extend_from_slice(&six(s));
            v.extend_from_slice(&six(d));
            v.extend_from_slice(&(segment.len() as u32).to_be_bytes());
            v.extend_from_slice(&[0, 0, 0, PROTO_TCP]);
        }
    }
    v.extend_from_slice(segment);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_agrees_with_etherparse() {
        let src: IpAddr = "10.0.0.1".parse().unwrap();
        let dst: IpAddr = "10.0.0.2".parse().unwrap();
        let syn = TcpRepr {
            src_port: 42000,
            dst_port: 443,
            seq: 0x0102_0304,
            ack: 0,
            flags: SYN,
            window: 64240,
        };
        let mut buf = [0xa5; HEADER_LEN];
        syn.emit(src, dst, &mut buf);
        assert_eq!(TcpRepr::parse(&buf), Ok(syn));
        let theirs = etherparse::TcpHeaderSlice::from_slice(&buf).unwrap();
        assert_eq!(
            (theirs.source_port(), theirs.destination_port()),
            (42000, 443)
        );
        assert!(theirs.syn() && !theirs.ack() && !theirs.rst());
        assert_eq!(theirs.sequence_number(), 0x0102_0304);
        let header = theirs.to_header();
        let expect = header
            .calc_checksum_ipv4_raw([10, 0, 0, 1], [10, 0, 0, 2], &[])
            .unwrap();
        assert_eq!(theirs.checksum(), expect);
        let src6: IpAddr = "fd00::1".parse().unwrap();
        let dst6: IpAddr = "fd00::2".parse().unwrap();
        syn.emit(src6, dst6, &mut buf);
        let theirs = etherparse::TcpHeaderSlice::from_slice(&buf).unwrap();
        let a = |ip: IpAddr| match ip {
            IpAddr::V6(a) => a.octets(),
            _ => unreachable!(),
        };
        let expect = theirs
            .to_header()
            .calc_checksum_ipv6_raw(a(src6), a(dst6), &[])
            .unwrap();
        assert_eq!(theirs.checksum(), expect);
    }

    #[test]
    fn lying_offsets_are_errors() {
        let mut buf = [0u8; 24];
        buf[12] = 0x40; // 16 bytes < 20
        assert_eq!(TcpRepr::parse(&buf), Err(Error::BadLength));
        buf[12] = 0x70; // 28 bytes > buffer
        assert_eq!(TcpRepr::parse(&buf), Err(Error::Truncated));
        assert_eq!(TcpRepr::parse(&buf[..19]), Err(Error::Truncated));
        buf[12] = 0x60;
        buf[13] = SYN | ACK;
        assert!(TcpRepr::parse(&buf).unwrap().has(SYN | ACK));
    }
}
