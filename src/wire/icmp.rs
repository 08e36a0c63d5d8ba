//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages: echo request/reply, and the errors that
//! quote a probe (destination unreachable, time exceeded, packet too big, parameter problem).

use super::ip::{Ipv4Repr, Ipv6Repr};
use super::{checksum, Error, Result};
use std::net::IpAddr;

mod types;

pub use types::{
    IcmpType, Icmpv4Type, Icmpv4Unreachable, Icmpv6Type, Icmpv6Unreachable, TimeExceeded,
};

mod field {
    pub type Field = std::ops::Range<usize>;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const SEQ: Field = 6..8;
    /// Echo data, or the quoted packet of an error (after 4 unused/MTU/pointer bytes).
    pub const REST: usize = SEQ.end;
    pub const HEADER_LEN: usize = REST;
}

/// Length of the ICMP header (echo and error messages alike).
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// IP protocol numbers of ICMP.
pub const PROTO_ICMPV4: u8 = 1;
pub const PROTO_ICMPV6: u8 = 58;

/// ICMP for IPv4 or ICMPv6 (the type numbers differ): the address family.
pub type Version = super::Family;

impl Version {
    /// The type `icmp_type` means in this version.
    pub fn icmp_type(self, icmp_type: u8) -> IcmpType {
        match self {
            Version::V4 => IcmpType::V4(icmp_type.into()),
            Version::V6 => IcmpType::V6(icmp_type.into()),
        }
    }

    pub fn echo_request(self) -> u8 {
        match self {
            Version::V4 => Icmpv4Type::EchoRequest.into(),
            Version::V6 => Icmpv6Type::EchoRequest.into(),
        }
    }

    pub fn echo_reply(self) -> u8 {
        match self {
            Version::V4 => Icmpv4Type::EchoReply.into(),
            Version::V6 => Icmpv6Type::EchoReply.into(),
        }
    }

    /// Types whose body quotes the offending packet.
    fn is_error(self, icmp_type: u8) -> bool {
        self.icmp_type(icmp_type).is_error()
    }
}

/// An echo request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoRepr<'a> {
    pub ident: u16,
    pub seq: u16,
    pub data: &'a [u8],
}

/// An ICMP message as lopa sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpRepr<'a> {
    EchoRequest(EchoRepr<'a>),
    EchoReply(EchoRepr<'a>),
    /// An error message; `quoted` is the start of the packet that caused it.
    Error {
        icmp_type: u8,
        code: u8,
        quoted: &'a [u8],
    },
    /// Any other message (router advertisements, neighbour discovery, …).
    Other {
        icmp_type: u8,
        code: u8,
    },
}

impl<'a> IcmpRepr<'a> {
    /// Parses an ICMP message. `verify` checks the ICMPv4 checksum (the kernel has already
    /// verified ICMPv6, whose checksum covers a pseudo-header).
    pub fn parse(version: Version, buf: &'a [u8], verify: bool) -> Result<IcmpRepr<'a>> {
        if buf.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if verify && version == Version::V4 && !cfg!(fuzzing) && checksum(buf) != 0 {
            return Err(Error::BadChecksum);
        }
        let icmp_type = buf[field::TYPE];
        let code = buf[field::CODE];
        let echo = || EchoRepr {
            ident: u16::from_be_bytes([buf[4], buf[5]]),
            seq: u16::from_be_bytes([buf[6], buf[7]]),
            data: &buf[field::REST..],
        };
        Ok(if icmp_type == version.echo_request() {
            IcmpRepr::EchoRequest(echo())
        } else if icmp_type == version.echo_reply() {
            IcmpRepr::EchoReply(echo())
        } else if version.is_error(icmp_type) {
            IcmpRepr::Error {
                icmp_type,
                code,
                quoted: &buf[field::REST..],
            }
        } else {
            IcmpRepr::Other { icmp_type, code }
        })
    }

    /// Bytes needed to emit this message.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN
            + match self {
                IcmpRepr::EchoRequest(e) | IcmpRepr::EchoReply(e) => e.data.len(),
                IcmpRepr::Error { quoted, .. } => quoted.len(),
                IcmpRepr::Other { .. } => 0,
            }
    }

    /// Writes the message into `buf` (of [`buffer_len`](Self::buffer_len) bytes or more) and
    /// returns its length. The checksum is filled for ICMPv4; for ICMPv6 it is left zero,
    /// since the kernel computes it over the pseudo-header on every ICMPv6 socket.
    pub fn emit(&self, version: Version, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let buf = &mut buf[..len];
        buf[..field::HEADER_LEN].fill(0);
        match *self {
            IcmpRepr::EchoRequest(e) | IcmpRepr::EchoReply(e) => {
                buf[field::TYPE] = if matches!(self, IcmpRepr::EchoRequest(_)) {
                    version.echo_request()
                } else {
                    version.echo_reply()
                };
                buf[field::IDENT].copy_from_slice(&e.ident.to_be_bytes());
                buf[field::SEQ].copy_from_slice(&e.seq.to_be_bytes());
                buf[field::REST..].copy_from_slice(e.data);
            }
            IcmpRepr::Error {
                icmp_type,
                code,
                quoted,
            } => {
                buf[field::TYPE] = icmp_type;
                buf[field::CODE] = code;
                buf[field::REST..].copy_from_slice(quoted);
            }
            IcmpRepr::Other { icmp_type, code } => {
                buf[field::TYPE] = icmp_type;
                buf[field::CODE] = code;
            }
        }
        if version == Version::V4 {
            let c = checksum(buf);
            buf[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        }
        len
    }
}

/// Sets the two bytes at `at` (an even offset into the data of the echo message `msg`) so that
/// the message's checksum is `checksum` whatever its identifier, sequence number and other
/// data: the Paris traceroute way of keeping an ICMP flow's first four bytes (type, code,
/// checksum), which ECMP routers may hash like ports, the same for every probe. ICMPv4 gets
/// the checksum written; ICMPv6 leaves it zero for the kernel, whose checksum over the
/// pseudo-header is then constant per destination too. A kernel that rewrites the identifier
/// (ICMP datagram sockets) shifts the checksum by the same amount for every probe. `checksum`
/// must not be 0xffff (no Internet checksum of a non-zero message is).
pub fn set_checksum(version: Version, msg: &mut [u8], at: usize, checksum: u16) {
    if at % 2 != 0 || at < field::REST || at + 2 > msg.len() {
        return;
    }
    msg[field::CHECKSUM].fill(0);
    msg[at..at + 2].fill(0);
    // With the word w, the sum becomes sum0 + w (ones' complement); the checksum is its
    // complement, so w = !checksum - sum0 = !checksum + checksum(msg without w).
    let c0 = super::checksum(msg);
    let w = ones_add(!checksum, c0);
    msg[at..at + 2].copy_from_slice(&w.to_be_bytes());
    if version == Version::V4 {
        msg[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }
}

fn ones_add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The probe an ICMP error quotes: where it was going and, if it was an echo request, its
/// identifier, sequence number and the data bytes the error carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    /// The IP payload as far as it was quoted (at least 8 bytes by RFC 792).
    pub payload: &'a [u8],
}

impl<'a> Quoted<'a> {
    pub fn parse(version: Version, quoted: &'a [u8]) -> Result<Quoted<'a>> {
        match version {
            Version::V4 => {
                let (ip, payload) = Ipv4Repr::parse(quoted)?;
                Ok(Quoted {
                    src: ip.src.into(),
                    dst: ip.dst.into(),
                    protocol: ip.protocol,
                    payload,
                })
            }
            Version::V6 => {
                let (ip, payload) = Ipv6Repr::parse(quoted)?;
                Ok(Quoted {
                    src: ip.src.into(),
                    dst: ip.dst.into(),
                    protocol: ip.next_header,
                    payload,
                })
            }
        }
    }

    /// The quoted echo request, when the probe was one.
    pub fn echo(&self, version: Version) -> Option<EchoRepr<'a>> {
        let proto = match version {
            Version::V4 => PROTO_ICMPV4,
            Version::V6 => PROTO_ICMPV6,
        };
        if self.protocol != proto {
            return None;
        }
        match IcmpRepr::parse(version, self.payload, false) {
            Ok(IcmpRepr::EchoRequest(e)) => Some(e),
            _ => None,
        }
    }
}

/// The meaning of an ICMP error type and code, in the words of RFC 792 / RFC 4443.
pub fn describe(version: Version, icmp_type: u8, code: u8) -> String {
    use {Icmpv4Type as V4, Icmpv4Unreachable as U4, Icmpv6Type as V6, Icmpv6Unreachable as U6};
    let s = match version.icmp_type(icmp_type) {
        IcmpType::V4(V4::DstUnreachable) => match U4::from(code) {
            U4::NetUnreachable => "network unreachable",
            U4::HostUnreachable => "host unreachable",
            U4::ProtoUnreachable => "protocol unreachable",
            U4::PortUnreachable => "port unreachable",
            U4::FragRequired => "fragmentation needed",
            U4::SrcRouteFailed => "source route failed",
            U4::DstNetUnknown => "destination network unknown",
            U4::DstHostUnknown => "destination host unknown",
            U4::NetProhibited => "network administratively prohibited",
            U4::HostProhibited => "host administratively prohibited",
            U4::NetUnreachToS => "network unreachable for TOS",
            U4::HostUnreachToS => "host unreachable for TOS",
            U4::CommProhibited => "communication administratively prohibited",
            U4::HostPrecedenceViolation => "host precedence violation",
            U4::PrecedenceCutoff => "precedence cutoff in effect",
            U4::Unknown(_) => "destination unreachable",
        },
        IcmpType::V4(V4::SourceQuench) => "source quench",
        IcmpType::V4(V4::Redirect) => "redirect",
        IcmpType::V4(V4::TimeExceeded) => match TimeExceeded::from(code) {
            TimeExceeded::InTransit => "time exceeded in transit",
            _ => "fragment reassembly time exceeded",
        },
        IcmpType::V4(V4::ParamProblem) => "parameter problem",
        IcmpType::V6(V6::DstUnreachable) => match U6::from(code) {
            U6::NoRoute => "no route to destination",
            U6::AdminProhibited => "communication administratively prohibited",
            U6::BeyondScope => "beyond scope of source address",
            U6::AddrUnreachable => "address unreachable",
            U6::PortUnreachable => "port unreachable",
            U6::FailedPolicy => "source address failed ingress/egress policy",
            U6::RejectRoute => "reject route to destination",
            U6::Unknown(_) => "destination unreachable",
        },
        IcmpType::V6(V6::PktTooBig) => "packet too big",
        IcmpType::V6(V6::TimeExceeded) => match TimeExceeded::from(code) {
            TimeExceeded::InTransit => "hop limit exceeded in transit",
            _ => "fragment reassembly time exceeded",
        },
        IcmpType::V6(V6::ParamProblem) => "parameter problem",
        _ => return format!("icmp type {icmp_type} code {code}"),
    };
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_checksum_keeps_the_checksum_whatever_the_sequence() {
        for (len, want) in [(30usize, 0x1234u16), (31, 0xfffe), (64, 0), (33, 0x8000)] {
            for seq in [0u16, 1, 0x7fff, 0xffff] {
                let data: Vec<u8> = (0..len - HEADER_LEN)
                    .map(|i| (i as u8) ^ seq as u8)
                    .collect();
                let mut msg = vec![0; len];
                IcmpRepr::EchoRequest(EchoRepr {
                    ident: 0xbeef,
                    seq,
                    data: &data,
                })
                .emit(Version::V4, &mut msg);
                set_checksum(Version::V4, &mut msg, HEADER_LEN + 20, want);
                assert_eq!(u16::from_be_bytes([msg[2], msg[3]]), want);
                assert_eq!(checksum(&msg), 0, "a valid checksum (len {len}, seq {seq})");
                assert!(IcmpRepr::parse(Version::V4, &msg, true).is_ok());
                // A kernel that puts another identifier in keeps it constant too.
                let mut other = msg.clone();
                other[4..6].copy_from_slice(&0x0102u16.to_be_bytes());
                other[2..4].fill(0);
                let c = checksum(&other);
                let mut again = msg.clone();
                again[6..8].copy_from_slice(&seq.wrapping_add(7).to_be_bytes());
                set_checksum(Version::V4, &mut again, HEADER_LEN + 20, want);
                again[4..6].copy_from_slice(&0x0102u16.to_be_bytes());
                again[2..4].fill(0);
                assert_eq!(checksum(&again), c);
            }
        }
        let mut v6 = vec![0u8; 40];
        v6[0] = 128;
        set_checksum(Version::V6, &mut v6, 28, 0x4321);
        assert_eq!(&v6[2..4], &[0, 0], "ICMPv6: the kernel writes it");
        assert_eq!(checksum(&v6), 0x4321, "and the message sums to a constant");
    }

    /// An echo request (id 0x1234, seq 1, 8 data bytes); checksum computed by hand per RFC 1071
    /// and confirmed by etherparse below.
    const PING_REQUEST: [u8; 16] = [
        0x08, 0x00, 0xd9, 0xba, 0x12, 0x34, 0x00, 0x01, 0, 1, 2, 3, 4, 5, 6, 7,
    ];

    #[test]
    fn emits_echo_request_byte_for_byte() {
        let data = [0u8, 1, 2, 3, 4, 5, 6, 7];
        let repr = IcmpRepr::EchoRequest(EchoRepr {
            ident: 0x1234,
            seq: 1,
            data: &data,
        });
        let mut buf = [0xa5; 16];
        assert_eq!(repr.emit(Version::V4, &mut buf), 16);
        assert_eq!(buf, PING_REQUEST);
        assert_eq!(IcmpRepr::parse(Version::V4, &buf, true).unwrap(), repr);
        let theirs = etherparse::Icmpv4Slice::from_slice(&PING_REQUEST).unwrap();
        assert_eq!(
            theirs.checksum(),
            theirs.header().icmp_type.calc_checksum(theirs.payload())
        );
    }

    #[test]
    fn agrees_with_etherparse() {
        use etherparse::{Icmpv4Slice, Icmpv4Type, Icmpv6Slice, Icmpv6Type};
        let data = b"lopa lping payload";
        let repr = IcmpRepr::EchoRequest(EchoRepr {
            ident: 0xbeef,
            seq: 65535,
            data,
        });
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(Version::V4, &mut buf);
        let theirs = Icmpv4Slice::from_slice(&buf).unwrap();
        match theirs.icmp_type() {
            Icmpv4Type::EchoRequest(h) => assert_eq!((h.id, h.seq), (0xbeef, 65535)),
            other => panic!("{other:?}"),
        }
        assert_eq!(theirs.payload(), data);
        assert_eq!(
            theirs.checksum(),
            theirs.header().icmp_type.calc_checksum(data)
        );
        repr.emit(Version::V6, &mut buf);
        match Icmpv6Slice::from_slice(&buf).unwrap().icmp_type() {
            Icmpv6Type::EchoRequest(h) => assert_eq!((h.id, h.seq), (0xbeef, 65535)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_checksum_and_truncation_are_errors() {
        let mut b = PING_REQUEST;
        b[9] ^= 1;
        assert_eq!(
            IcmpRepr::parse(Version::V4, &b, true),
            Err(Error::BadChecksum)
        );
        assert!(IcmpRepr::parse(Version::V4, &b, false).is_ok());
        assert_eq!(
            IcmpRepr::parse(Version::V4, &b[..7], false),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn error_quotes_the_probe() {
        // Host unreachable from a router, quoting our echo request to 10.99.0.1.
        let mut quoted = vec![
            0x45, 0, 0, 36, 0, 0, 0x40, 0, 63, 1, 0, 0, 10, 0, 1, 1, 10, 99, 0, 1,
        ];
        quoted.extend_from_slice(&PING_REQUEST);
        let mut msg = vec![3, 1, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&quoted);
        let c = checksum(&msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        let IcmpRepr::Error {
            icmp_type,
            code,
            quoted,
        } = IcmpRepr::parse(Version::V4, &msg, true).unwrap()
        else {
            panic!("not an error")
        };
        assert_eq!((icmp_type, code), (3, 1));
        assert_eq!(describe(Version::V4, icmp_type, code), "host unreachable");
        let q = Quoted::parse(Version::V4, quoted).unwrap();
        assert_eq!(q.dst, "10.99.0.1".parse::<IpAddr>().unwrap());
        let e = q.echo(Version::V4).unwrap();
        assert_eq!((e.ident, e.seq, e.data.len()), (0x1234, 1, 8));
    }

    #[test]
    fn icmpv6_types() {
        assert_eq!(describe(Version::V6, 3, 0), "hop limit exceeded in transit");
        assert_eq!(describe(Version::V4, 42, 1), "icmp type 42 code 1");
        let b = [135u8, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            IcmpRepr::parse(Version::V6, &b, true).unwrap(),
            IcmpRepr::Other {
                icmp_type: 135,
                code: 0
            }
        );
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes() {
        // A deterministic sweep of short inputs and random long ones.
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..20_000 {
            let len = (next() % 120) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len > 0 && next() % 2 == 0 {
                buf[0] = [0u8, 3, 8, 11, 1, 129][(next() % 6) as usize];
            }
            if len > 8 && next() % 2 == 0 {
                buf[8] = 0x45;
            }
            for v in [Version::V4, Version::V6] {
                if let Ok(IcmpRepr::Error { quoted, .. }) = IcmpRepr::parse(v, &buf, false) {
                    if let Ok(q) = Quoted::parse(v, quoted) {
                        let _ = q.echo(v);
                    }
                }
                let _ = crate::wire::lping_mark::ProbeMark::parse(&buf);
                let _ = crate::wire::ludp_payload::ProbeRepr::parse(&buf);
                let mut copy = buf.clone();
                let stamps = crate::wire::ludp_payload::ReflectorStamps {
                    rx_ns: 1,
                    tx_ns: 2,
                    tos: 3,
                    synced: true,
                    counts: Some(crate::wire::ludp_payload::FlowCounts {
                        received: 4,
                        refused: 5,
                    }),
                };
                crate::wire::ludp_payload::stamp(&mut copy, &stamps);
                let _ = crate::wire::ludp_payload::is_countable(&copy);
            }
        }
    }
}
