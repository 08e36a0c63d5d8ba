//! STAMP TLVs (RFC 8972 §4): the extensions that follow the 44-byte base packet, in a
//! Session-Sender's packet and, at the same offset, in the Session-Reflector's answer.
//!
//! ```text
//!  0       1       2       3
//! | Flags | Type  |    Length     |   Length: bytes of Value
//! ~             Value             ~
//! Flags: U (0x80) not understood, M (0x40) malformed, I (0x20) integrity failed
//! ```
//! A Session-Sender sends every TLV with U set and M, I clear; a reflector that processed a
//! TLV clears U, one that did not understand it leaves U set (so a reflector that knows no
//! TLVs, and copies the bytes back, answers with U on every TLV, which tells the sender the
//! figures are not there). At the first malformed TLV (a Length wrong for its type, or more
//! than the bytes left) a reflector sets M on it, stops and copies the rest unchanged.
//!
//! Types handled here (RFC 8972 §4.1-4.5): Extra Padding (1), Location (2, with the Source
//! MAC, Destination IP and Source IP sub-TLVs), Timestamp Information (3), Class of Service (4)
//! and Direct Measurement (5). Every other type is answered with U.
//!
//! The reflector side ([`reflect`]) works in place on the answer; the sender side builds a
//! request ([`Request`]) and reads an answer ([`Answer::parse`]). No function here panics on
//! any input: lengths are checked before every slice.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Not understood by the reflector (set by every sender).
pub const FLAG_U: u8 = 0x80;
/// Malformed.
pub const FLAG_M: u8 = 0x40;
/// Integrity (HMAC) failed.
pub const FLAG_I: u8 = 0x20;
/// Header bytes of a TLV or sub-TLV: flags, type, length.
pub const HEADER: usize = 4;

/// The TLV types of RFC 8972 §5.2 lopa knows.
pub mod kind {
    pub const EXTRA_PADDING: u8 = 1;
    pub const LOCATION: u8 = 2;
    pub const TIMESTAMP_INFO: u8 = 3;
    pub const CLASS_OF_SERVICE: u8 = 4;
    pub const DIRECT_MEASUREMENT: u8 = 5;
}

/// Location sub-TLV types (RFC 8972 §4.2.1).
mod sub {
    pub const SOURCE_MAC: u8 = 1;
    pub const SOURCE_EUI64: u8 = 3;
    pub const DEST_IP: u8 = 4;
    pub const DEST_IPV4: u8 = 5;
    pub const DEST_IPV6: u8 = 6;
    pub const SOURCE_IP: u8 = 7;
    pub const SOURCE_IPV4: u8 = 8;
    pub const SOURCE_IPV6: u8 = 9;
    /// Value bytes of an address sub-TLV, and of a MAC one.
    pub const IP_LEN: usize = 16;
    pub const MAC_LEN: usize = 8;
}

/// Value bytes of the fixed-size TLVs.
const TIMESTAMP_INFO_LEN: usize = 4;
const COS_LEN: usize = 4;
const DIRECT_LEN: usize = 12;
const LOCATION_MIN: usize = 4;

/// Synchronization sources (RFC 8972 §5.3 registry; stamp-suite 1.0.0 sends the same values).
pub mod sync {
    pub const NTP: u8 = 1;
    pub const PTP: u8 = 2;
    pub const SSU_BITS: u8 = 3;
    pub const GNSS: u8 = 4;
    /// A local free-running clock: no external source.
    pub const LOCAL: u8 = 5;

    /// The source's name in records; `None` for 0 (not filled in).
    pub fn name(v: u8) -> Option<&'static str> {
        Some(match v {
            0 => return None,
            NTP => "ntp",
            PTP => "ptp",
            SSU_BITS => "ssu-bits",
            GNSS => "gnss",
            LOCAL => "local",
            _ => "unknown",
        })
    }
}

/// Timestamping methods (RFC 8972 §5.4 registry).
pub mod method {
    pub const HW_ASSIST: u8 = 1;
    pub const SW_LOCAL: u8 = 2;
    pub const CONTROL_PLANE: u8 = 3;

    /// The method's name in records; `None` for 0 (not filled in).
    pub fn name(v: u8) -> Option<&'static str> {
        Some(match v {
            0 => return None,
            HW_ASSIST => "hw",
            SW_LOCAL => "sw",
            CONTROL_PLANE => "control-plane",
            _ => "unknown",
        })
    }
}

/// One TLV as found in a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub flags: u8,
    pub kind: u8,
    pub value: &'a [u8],
}

/// Walks the TLVs of `buf` (the bytes after the base packet). Yields `Err(offset)` for a TLV
/// whose header or value runs past the end, and then stops.
pub fn iter(buf: &[u8]) -> impl Iterator<Item = Result<Tlv<'_>, usize>> {
    let mut at = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || at >= buf.len() {
            return None;
        }
        let Some(h) = buf.get(at..at + HEADER) else {
            done = true;
            return Some(Err(at));
        };
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let Some(value) = buf.get(at + HEADER..at + HEADER + len) else {
            done = true;
            return Some(Err(at));
        };
        let t = Tlv {
            flags: h[0],
            kind: h[1],
            value,
        };
        at += HEADER + len;
        Some(Ok(t))
    })
}

/// What a reflector knows to fill in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReflectorInfo {
    /// The TOS byte (traffic class) the request arrived with.
    pub tos: Option<u8>,
    /// The session's packets received, this one included, and answered, this one's answer
    /// not yet (R_RxC, R_TxC: the answer is not transmitted when they are written); `None` for
    /// a reflector that keeps no sessions.
    pub counters: Option<(u32, u32)>,
    /// Clock synchronization source and timestamping method of T2 and of T3.
    pub sync: u8,
    pub method_in: u8,
    pub method_out: u8,
    /// The request's source and destination, as the reflector received it.
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// What processing the TLVs asks of the answer besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reflected {
    /// A Class of Service TLV asked the answer to leave with this DSCP (DSCP1).
    pub dscp: Option<u8>,
    /// TLVs answered with U (not understood or not supported).
    pub unknown: u32,
    /// A malformed TLV stopped the processing.
    pub malformed: bool,
}

/// Processes the TLVs of an answer in place (`tlvs`: the answer's bytes after the base
/// packet, a copy of the request's), as RFC 8972 §4 asks of a Session-Reflector.
pub fn reflect(tlvs: &mut [u8], info: &ReflectorInfo) -> Reflected {
    let mut out = Reflected::default();
    let mut at = 0usize;
    while at < tlvs.len() {
        let rest = &mut tlvs[at..];
        if rest.len() < HEADER {
            rest[0] = FLAG_M;
            out.malformed = true;
            break;
        }
        let kind = rest[1];
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if rest.len() < HEADER + len {
            rest[0] = FLAG_M;
            out.malformed = true;
            break;
        }
        let (head, tail) = rest.split_at_mut(HEADER);
        let value = &mut tail[..len];
        let flags = match fill(kind, value, info, &mut out) {
            Fill::Done => 0,
            Fill::Unknown => {
                out.unknown += 1;
                FLAG_U
            }
            Fill::Malformed => {
                head[0] = FLAG_M;
                out.malformed = true;
                break;
            }
        };
        // Reserved flag bits are zeroed on transmit (RFC 8972 §4).
        head[0] = flags;
        at += HEADER + len;
    }
    out
}

enum Fill {
    Done,
    Unknown,
    Malformed,
}

fn fill(kind: u8, v: &mut [u8], info: &ReflectorInfo, out: &mut Reflected) -> Fill {
    match kind {
        kind::EXTRA_PADDING => Fill::Done,
        kind::LOCATION if v.len() < LOCATION_MIN => Fill::Malformed,
        kind::LOCATION => {
            v[0..2].copy_from_slice(&info.dst.port().to_be_bytes());
            v[2..4].copy_from_slice(&info.src.port().to_be_bytes());
            location(&mut v[LOCATION_MIN..], info);
            Fill::Done
        }
        kind::TIMESTAMP_INFO if v.len() != TIMESTAMP_INFO_LEN => Fill::Malformed,
        kind::TIMESTAMP_INFO => {
            v.copy_from_slice(&[info.sync, info.method_in, info.sync, info.method_out]);
            Fill::Done
        }
        kind::CLASS_OF_SERVICE if v.len() != COS_LEN => Fill::Malformed,
        kind::CLASS_OF_SERVICE => {
            let dscp1 = v[0] >> 2;
            let tos = info.tos.unwrap_or(0);
            let (dscp2, ecn) = (tos >> 2, tos & 0x3);
            // DSCP1 (6) | DSCP2 (6) | ECN (2) | RP (2), then 16 reserved bits. Every DSCP is
            // permitted here, so RP stays 0.
            v[0] = (dscp1 << 2) | (dscp2 >> 4);
            v[1] = ((dscp2 & 0xf) << 4) | (ecn << 2);
            v[2] = 0;
            v[3] = 0;
            out.dscp = Some(dscp1);
            Fill::Done
        }
        kind::DIRECT_MEASUREMENT if v.len() != DIRECT_LEN => Fill::Malformed,
        kind::DIRECT_MEASUREMENT => match info.counters {
            Some((rx, tx)) => {
                v[4..8].copy_from_slice(&rx.to_be_bytes());
                v[8..12].copy_from_slice(&tx.to_be_bytes());
                Fill::Done
            }
            None => Fill::Unknown,
        },
        _ => Fill::Unknown,
    }
}

/// Answers the sub-TLVs of a Location TLV in place: its Source MAC (zeroed: a UDP socket never
/// sees it), Destination IP and Source IP requests. A sub-TLV of another type gets U; one with
/// a wrong length, or that runs past the TLV, gets M and ends the walk.
fn location(subs: &mut [u8], info: &ReflectorInfo) {
    let mut at = 0usize;
    while at < subs.len() {
        let rest = &mut subs[at..];
        let len = match rest.get(2..4) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
            None => {
                rest[0] = FLAG_M;
                return;
            }
        };
        if rest.len() < HEADER + len {
            rest[0] = FLAG_M;
            return;
        }
        let (head, tail) = rest.split_at_mut(HEADER);
        let value = &mut tail[..len];
        let ip = |a: IpAddr, v4: u8, v6: u8| -> (u8, [u8; 16]) {
            let mut b = [0u8; 16];
            match a {
                IpAddr::V4(a) => {
                    b[..4].copy_from_slice(&a.octets());
                    (v4, b)
                }
                IpAddr::V6(a) => (v6, a.octets()),
            }
        };
        let answer = match head[1] {
            sub::SOURCE_MAC if len == sub::MAC_LEN => Some((sub::SOURCE_EUI64, None)),
            sub::DEST_IP if len == sub::IP_LEN => Some(ip(
                info.dst.ip().to_canonical(),
                sub::DEST_IPV4,
                sub::DEST_IPV6,
            ))
            .map(|(t, b)| (t, Some(b))),
            sub::SOURCE_IP if len == sub::IP_LEN => Some(ip(
                info.src.ip().to_canonical(),
                sub::SOURCE_IPV4,
                sub::SOURCE_IPV6,
            ))
            .map(|(t, b)| (t, Some(b))),
            sub::SOURCE_MAC | sub::DEST_IP | sub::SOURCE_IP => {
                head[0] = FLAG_M;
                return;
            }
            _ => None,
        };
        match answer {
            Some((t, bytes)) => {
                head[0] = 0;
                head[1] = t;
                match bytes {
                    Some(b) => value.copy_from_slice(&b),
                    None => value.fill(0),
                }
            }
            None => head[0] = FLAG_U,
        }
        at += HEADER + len;
    }
}

/// The TLVs a Session-Sender asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request {
    pub location: bool,
    pub timestamp: bool,
    /// Class of Service, asking the answer to come back with this DSCP.
    pub cos: Option<u8>,
    pub direct: bool,
    /// An Extra Padding TLV of this many value bytes, last.
    pub padding: Option<usize>,
}

impl Request {
    /// Bytes of the TLVs without padding.
    pub fn len_without_padding(&self) -> usize {
        let t = |on: bool, n: usize| if on { HEADER + n } else { 0 };
        t(self.location, LOCATION_MIN + 2 * (HEADER + sub::IP_LEN))
            + t(self.timestamp, TIMESTAMP_INFO_LEN)
            + t(self.cos.is_some(), COS_LEN)
            + t(self.direct, DIRECT_LEN)
    }

    /// Bytes of the TLVs.
    pub fn len(&self) -> usize {
        self.len_without_padding() + self.padding.map_or(0, |p| HEADER + p)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the TLVs to `out`, every one with U set and its fields for the reflector
    /// zeroed; returns where in `out` the fields a sender sets per packet are.
    pub fn write(&self, out: &mut Vec<u8>) -> Offsets {
        let head = |out: &mut Vec<u8>, kind: u8, len: usize| {
            out.extend_from_slice(&[FLAG_U, kind]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        };
        if self.location {
            head(
                out,
                kind::LOCATION,
                LOCATION_MIN + 2 * (HEADER + sub::IP_LEN),
            );
            out.extend_from_slice(&[0; LOCATION_MIN]);
            for t in [sub::DEST_IP, sub::SOURCE_IP] {
                head(out, t, sub::IP_LEN);
                out.extend_from_slice(&[0; sub::IP_LEN]);
            }
        }
        if self.timestamp {
            head(out, kind::TIMESTAMP_INFO, TIMESTAMP_INFO_LEN);
            out.extend_from_slice(&[0; TIMESTAMP_INFO_LEN]);
        }
        let mut cos = None;
        if let Some(dscp) = self.cos {
            head(out, kind::CLASS_OF_SERVICE, COS_LEN);
            cos = Some(out.len());
            out.extend_from_slice(&[(dscp & 0x3f) << 2, 0, 0, 0]);
        }
        let mut s_txc = None;
        if self.direct {
            head(out, kind::DIRECT_MEASUREMENT, DIRECT_LEN);
            s_txc = Some(out.len());
            out.extend_from_slice(&[0; DIRECT_LEN]);
        }
        if let Some(p) = self.padding {
            head(out, kind::EXTRA_PADDING, p);
            out.resize(out.len() + p, 0);
        }
        Offsets { s_txc, cos }
    }
}

/// Where the per-packet fields of a request's TLVs are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offsets {
    /// The Direct Measurement TLV's S_TxC (four bytes).
    pub s_txc: Option<usize>,
    /// The Class of Service TLV's first value byte (DSCP1 in its top six bits).
    pub cos: Option<usize>,
}

/// Sets DSCP1 of the Class of Service TLV at `at` (an [`Offsets::cos`]).
pub fn set_dscp1(buf: &mut [u8], at: usize, dscp: u8) {
    if let Some(b) = buf.get_mut(at) {
        *b = (dscp & 0x3f) << 2;
    }
}

/// Sets S_TxC of the Direct Measurement TLV at `at` (an [`Offsets::s_txc`]).
pub fn set_s_txc(buf: &mut [u8], at: usize, count: u32) {
    if let Some(b) = buf.get_mut(at..at + 4) {
        b.copy_from_slice(&count.to_be_bytes());
    }
}

/// A Class of Service TLV as answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cos {
    /// The DSCP asked for the answer.
    pub dscp1: u8,
    /// The DSCP and ECN the request arrived with at the reflector.
    pub dscp2: u8,
    pub ecn: u8,
    /// Reverse path: non-zero when the reflector would not answer with DSCP1 (it used DSCP2).
    pub rp: u8,
}

impl Cos {
    /// The DSCP the reflector answered with.
    pub fn answered_with(&self) -> u8 {
        if self.rp == 0 {
            self.dscp1
        } else {
            self.dscp2
        }
    }
}

/// A Timestamp Information TLV as answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampInfo {
    pub sync_in: u8,
    pub method_in: u8,
    pub sync_out: u8,
    pub method_out: u8,
}

/// A Direct Measurement TLV as answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Direct {
    pub sender_tx: u32,
    pub reflector_rx: u32,
    pub reflector_tx: u32,
}

/// A Location TLV as answered: the ports and addresses the request had at the reflector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub dst_port: u16,
    pub src_port: u16,
    pub dst: Option<IpAddr>,
    pub src: Option<IpAddr>,
}

/// What a Session-Reflector's answer says in its TLVs (RFC 8972 §4, the sender's side: a TLV
/// with U set is skipped, one with M ends the reading, I discards them all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub cos: Option<Cos>,
    pub timestamp: Option<TimestampInfo>,
    pub direct: Option<Direct>,
    pub location: Option<Location>,
    /// Types the reflector did not process (answered with U), in order.
    pub unsupported: Vec<u8>,
    /// A malformed TLV (M set by the reflector, a length that cannot be right, or one that
    /// runs past the packet) ended the reading.
    pub malformed: bool,
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

impl Answer {
    /// Reads the TLVs of an answer (its bytes after the base packet).
    pub fn parse(buf: &[u8]) -> Answer {
        let mut a = Answer::default();
        for t in iter(buf) {
            let Ok(t) = t else {
                a.malformed = true;
                break;
            };
            if t.flags & FLAG_I != 0 {
                return Answer {
                    malformed: true,
                    ..Answer::default()
                };
            }
            if t.flags & FLAG_M != 0 {
                a.malformed = true;
                break;
            }
            if t.flags & FLAG_U != 0 {
                a.unsupported.push(t.kind);
                continue;
            }
            let v = t.value;
            let ok = match t.kind {
                kind::EXTRA_PADDING => true,
                kind::TIMESTAMP_INFO if v.len() == TIMESTAMP_INFO_LEN => {
                    a.timestamp = Some(TimestampInfo {
                        sync_in: v[0],
                        method_in: v[1],
                        sync_out: v[2],
                        method_out: v[3],
                    });
                    true
                }
                kind::CLASS_OF_SERVICE if v.len() == COS_LEN => {
                    a.cos = Some(Cos {
                        dscp1: v[0] >> 2,
                        dscp2: ((v[0] & 0x3) << 4) | (v[1] >> 4),
                        ecn: (v[1] >> 2) & 0x3,
                        rp: v[1] & 0x3,
                    });
                    true
                }
                kind::DIRECT_MEASUREMENT if v.len() == DIRECT_LEN => {
                    a.direct = Some(Direct {
                        sender_tx: be32(v, 0),
                        reflector_rx: be32(v, 4),
                        reflector_tx: be32(v, 8),
                    });
                    true
                }
                kind::LOCATION if v.len() >= LOCATION_MIN => {
                    a.location = Some(read_location(v));
                    true
                }
                kind::TIMESTAMP_INFO
                | kind::CLASS_OF_SERVICE
                | kind::DIRECT_MEASUREMENT
                | kind::LOCATION => false,
                // A type we never send, answered as understood: nothing to read.
                _ => true,
            };
            if !ok {
                a.malformed = true;
                break;
            }
        }
        a
    }
}

fn read_location(v: &[u8]) -> Location {
    let mut l = Location {
        dst_port: u16::from_be_bytes([v[0], v[1]]),
        src_port: u16::from_be_bytes([v[2], v[3]]),
        dst: None,
        src: None,
    };
    for s in iter(&v[LOCATION_MIN..]) {
        let Ok(s) = s else { break };
        if s.flags & (FLAG_U | FLAG_M) != 0 || s.value.len() != sub::IP_LEN {
            continue;
        }
        let v4 = || {
            IpAddr::from(Ipv4Addr::new(
                s.value[0], s.value[1], s.value[2], s.value[3],
            ))
        };
        let v6 = || {
            IpAddr::from(Ipv6Addr::from(
                <[u8; 16]>::try_from(s.value).unwrap_or([0; 16]),
            ))
        };
        match s.kind {
            sub::DEST_IPV4 => l.dst = Some(v4()),
            sub::DEST_IPV6 => l.dst = Some(v6()),
            sub::SOURCE_IPV4 => l.src = Some(v4()),
            sub::SOURCE_IPV6 => l.src = Some(v6()),
            _ => {}
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ReflectorInfo {
        ReflectorInfo {
            tos: Some(0xb8 | 0x1), // EF, ECT(1)
            counters: Some((7, 5)),
            sync: sync::NTP,
            method_in: method::SW_LOCAL,
            method_out: method::SW_LOCAL,
            src: "10.0.1.1:40000".parse().unwrap(),
            dst: "10.0.2.1:862".parse().unwrap(),
        }
    }

    fn all() -> Request {
        Request {
            location: true,
            timestamp: true,
            cos: Some(10),
            direct: true,
            padding: Some(3),
        }
    }

    #[test]
    fn requests_have_the_rfc_8972_layouts() {
        let mut b = Vec::new();
        let at = all().write(&mut b);
        let s_txc = at.s_txc.unwrap();
        assert_eq!(at.cos, Some(60));
        assert_eq!(b.len(), all().len());
        // Location: U set, type 2, length 4 + 2 × 20, ports zero, then the two sub-TLVs.
        assert_eq!(&b[0..8], &[0x80, 2, 0, 44, 0, 0, 0, 0]);
        assert_eq!(&b[8..12], &[0x80, 4, 0, 16]);
        assert_eq!(&b[28..32], &[0x80, 7, 0, 16]);
        // Timestamp Information: length 4, zero.
        assert_eq!(&b[48..56], &[0x80, 3, 0, 4, 0, 0, 0, 0]);
        // Class of Service: DSCP1 in the top six bits.
        assert_eq!(&b[56..64], &[0x80, 4, 0, 4, 10 << 2, 0, 0, 0]);
        // Direct Measurement: length 12, S_TxC first.
        assert_eq!(&b[64..68], &[0x80, 5, 0, 12]);
        assert_eq!(s_txc, 68);
        assert_eq!(&b[80..87], &[0x80, 1, 0, 3, 0, 0, 0]);
    }

    #[test]
    fn a_reflector_fills_what_it_knows_and_clears_u() {
        let mut b = Vec::new();
        all().write(&mut b);
        let r = reflect(&mut b, &info());
        assert_eq!(
            r,
            Reflected {
                dscp: Some(10),
                unknown: 0,
                malformed: false
            }
        );
        let a = Answer::parse(&b);
        assert!(a.unsupported.is_empty() && !a.malformed, "{a:?}");
        assert_eq!(
            a.cos,
            Some(Cos {
                dscp1: 10,
                dscp2: 46,
                ecn: 1,
                rp: 0
            })
        );
        // DSCP2 straddles the first two value bytes: 46 = 0b101110.
        assert_eq!(&b[60..62], &[(10 << 2) | 0b10, (0b1110 << 4) | (1 << 2)]);
        assert_eq!(
            a.direct,
            Some(Direct {
                sender_tx: 0,
                reflector_rx: 7,
                reflector_tx: 5
            })
        );
        assert_eq!(
            a.timestamp,
            Some(TimestampInfo {
                sync_in: 1,
                method_in: 2,
                sync_out: 1,
                method_out: 2
            })
        );
        assert_eq!(
            a.location,
            Some(Location {
                dst_port: 862,
                src_port: 40000,
                dst: Some("10.0.2.1".parse().unwrap()),
                src: Some("10.0.1.1".parse().unwrap()),
            })
        );
        // IPv4 answers: Destination IPv4 (5), Source IPv4 (8), the address then zeros.
        assert_eq!(&b[8..16], &[0, 5, 0, 16, 10, 0, 2, 1]);
        assert!(b[16..28].iter().all(|&x| x == 0));
        assert_eq!(&b[28..30], &[0, 8]);
    }

    #[test]
    fn ipv6_and_mapped_addresses_answer_as_their_family() {
        let mut i = info();
        i.src = "[::ffff:10.0.1.1]:1".parse().unwrap();
        i.dst = "[fd00::2]:862".parse().unwrap();
        let mut b = Vec::new();
        Request {
            location: true,
            ..Request::default()
        }
        .write(&mut b);
        reflect(&mut b, &i);
        let l = Answer::parse(&b).location.unwrap();
        assert_eq!(l.dst, Some("fd00::2".parse().unwrap()));
        assert_eq!(l.src, Some("10.0.1.1".parse().unwrap()));
        assert_eq!(b[9], 6);
        assert_eq!(b[29], 8);
    }

    #[test]
    fn unknown_types_get_u_and_a_stateless_reflector_has_no_counters() {
        let mut b = vec![0x80, 9, 0, 2, 0xaa, 0xbb];
        Request {
            direct: true,
            ..Request::default()
        }
        .write(&mut b);
        let mut i = info();
        i.counters = None;
        let r = reflect(&mut b, &i);
        assert_eq!(r.unknown, 2);
        assert_eq!(b[0], FLAG_U);
        assert_eq!(&b[4..6], &[0xaa, 0xbb], "unknown value copied");
        assert_eq!(Answer::parse(&b).unsupported, vec![9, 5]);
        // Type 0 (zero padding from a TWAMP-Light sender) too.
        let mut z = vec![0u8; 8];
        assert_eq!(reflect(&mut z, &info()).unknown, 2);
        assert_eq!(z, [0x80, 0, 0, 0, 0x80, 0, 0, 0]);
    }

    #[test]
    fn malformed_tlvs_get_m_and_stop_the_processing() {
        // A Class of Service TLV of length 3, then a Direct Measurement one left untouched.
        let mut b = vec![0x80, 4, 0, 3, 0, 0, 0];
        Request {
            direct: true,
            ..Request::default()
        }
        .write(&mut b);
        let before = b.clone();
        let r = reflect(&mut b, &info());
        assert!(r.malformed);
        assert_eq!(b[0], FLAG_M);
        assert_eq!(&b[1..], &before[1..], "the rest copied as it came");
        let a = Answer::parse(&b);
        assert!(a.malformed && a.direct.is_none());
        // A length past the end.
        let mut b = vec![0x80, 5, 0, 12, 0, 0];
        assert!(reflect(&mut b, &info()).malformed);
        assert_eq!(b[0], FLAG_M);
        // A header cut short.
        let mut b = vec![0x80, 1];
        assert!(reflect(&mut b, &info()).malformed);
        assert_eq!(b, [FLAG_M, 1]);
    }

    #[test]
    fn reserved_flag_bits_are_cleared_and_i_discards_everything() {
        let mut b = vec![0x9f, 1, 0, 0];
        reflect(&mut b, &info());
        assert_eq!(b[0], 0);
        let mut b = Vec::new();
        all().write(&mut b);
        reflect(&mut b, &info());
        b[0] |= FLAG_I;
        let a = Answer::parse(&b);
        assert!(a.malformed && a.cos.is_none() && a.direct.is_none());
    }

    #[test]
    fn a_reflector_that_copies_the_bytes_answers_u_on_every_tlv() {
        let mut b = Vec::new();
        all().write(&mut b);
        let a = Answer::parse(&b);
        assert_eq!(a.unsupported, vec![2, 3, 4, 5, 1]);
        assert!(a.cos.is_none() && a.direct.is_none() && !a.malformed);
    }

    #[test]
    fn garbage_never_panics() {
        // Every short buffer of a few byte values, both directions.
        let vals = [0u8, 1, 2, 3, 4, 5, 12, 16, 0x40, 0x80, 0xff];
        let mut buf = Vec::new();
        for len in 0..9 {
            let combos = vals.len().pow(len as u32).min(20_000);
            for mut n in 0..combos {
                buf.clear();
                for _ in 0..len {
                    buf.push(vals[n % vals.len()]);
                    n /= vals.len();
                }
                let _ = Answer::parse(&buf);
                let _ = iter(&buf).count();
                let mut m = buf.clone();
                let _ = reflect(&mut m, &info());
                assert_eq!(m.len(), buf.len());
            }
        }
    }
}
