//! TWAMP-Light (RFC 5357 4.1.2, 4.2.1) and STAMP (RFC 8762 4.2.1, 4.3.1, SSID of RFC 8972)
//! test packets, unauthenticated mode.
//!
//! ```text
//! Session-Sender                      Session-Reflector
//!  0..4   sequence number              0..4   sequence number
//!  4..12  timestamp T1                 4..12  timestamp T3 (sent)
//! 12..14  error estimate              12..14  error estimate
//! 14..16  SSID (STAMP) / padding      14..16  SSID (STAMP) / MBZ
//! 16..44  MBZ (STAMP) / padding       16..24  receive timestamp T2
//!                                     24..28  sender sequence number
//!                                     28..36  sender timestamp T1
//!                                     36..38  sender error estimate
//!                                     38..40  MBZ
//!                                     40      sender TTL / hop limit
//!                                     41..44  MBZ (STAMP)
//!                                     44..    copied from the sender's packet
//! ```
//! A TWAMP-Light sender packet is at least 14 bytes, a STAMP one 44; a TWAMP-Light reflector
//! packet at least 41 bytes, a STAMP one 44. Reflectors written to older drafts (twampy) send
//! 38 bytes, so a reply is accepted from 36 bytes on and the fields it lacks are absent.
//! All integers big-endian.

use super::ntp::{ErrorEstimate, Format, Timestamp};
use super::{Error, Result};

mod field {
    pub type Field = std::ops::Range<usize>;
    pub const SEQ: Field = 0..4;
    pub const TIMESTAMP: Field = 4..12;
    pub const ERROR: Field = 12..14;
    pub const SSID: Field = 14..16;
    pub const RECEIVE_TIMESTAMP: Field = 16..24;
    pub const SENDER_SEQ: Field = 24..28;
    pub const SENDER_TIMESTAMP: Field = 28..36;
    pub const SENDER_ERROR: Field = 36..38;
    pub const SENDER_TTL: usize = 40;
}

/// Smallest TWAMP-Light Session-Sender packet.
pub const SENDER_MIN_LEN: usize = 14;
/// Size of the STAMP base packets, sender and reflector.
pub const STAMP_LEN: usize = 44;
/// Smallest RFC 5357 Session-Reflector packet (up to and including the sender TTL).
pub const REFLECTOR_TTL_LEN: usize = 41;
/// Smallest reply a sender accepts: everything up to the sender timestamp.
pub const REPLY_MIN_LEN: usize = field::SENDER_TIMESTAMP.end;
/// How much longer than the request a reflector's answer may be (RFC 8762 4.3: 44 - 14).
pub const MAX_AMPLIFICATION: usize = STAMP_LEN - SENDER_MIN_LEN;

fn u16_at(b: &[u8], r: field::Field) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

fn u32_at(b: &[u8], r: field::Field) -> u32 {
    u32::from_be_bytes(b[r].try_into().unwrap_or_default())
}

fn ts_at(b: &[u8], r: field::Field) -> Timestamp {
    Timestamp::from_bytes(b[r].try_into().unwrap_or_default())
}

/// The fields of a Session-Sender packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderPacket {
    pub seq: u32,
    pub timestamp: Timestamp,
    /// Raw: a reflector copies it unchanged, valid or not.
    pub error: u16,
    /// Bytes 14..16: the SSID in a STAMP packet (44 bytes or more), absent in a shorter one.
    pub ssid: Option<u16>,
}

impl SenderPacket {
    /// Decodes a Session-Sender packet of at least 14 bytes.
    pub fn parse(buf: &[u8]) -> Result<SenderPacket> {
        if buf.len() < SENDER_MIN_LEN {
            return Err(Error::Truncated);
        }
        Ok(SenderPacket {
            seq: u32_at(buf, field::SEQ),
            timestamp: ts_at(buf, field::TIMESTAMP),
            error: u16_at(buf, field::ERROR),
            ssid: (buf.len() >= STAMP_LEN).then(|| u16_at(buf, field::SSID)),
        })
    }

    /// Writes the packet into `buf`, which must hold at least 14 bytes (44 for an SSID); the
    /// rest of `buf` (MBZ or padding) is the caller's and is left as it is.
    pub fn write(&self, buf: &mut [u8]) -> Result<()> {
        let need = if self.ssid.is_some() {
            STAMP_LEN
        } else {
            SENDER_MIN_LEN
        };
        if buf.len() < need {
            return Err(Error::Truncated);
        }
        buf[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        buf[field::TIMESTAMP].copy_from_slice(&self.timestamp.to_bytes());
        buf[field::ERROR].copy_from_slice(&self.error.to_be_bytes());
        if let Some(ssid) = self.ssid {
            buf[field::SSID].copy_from_slice(&ssid.to_be_bytes());
        }
        Ok(())
    }
}

/// The fields of a Session-Reflector packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReflectorPacket {
    pub seq: u32,
    /// T3, when the reflector sent the packet.
    pub timestamp: Timestamp,
    pub error: u16,
    /// Bytes 14..16 (SSID in STAMP, MBZ in TWAMP-Light).
    pub ssid: u16,
    /// T2, when the reflector received the sender's packet.
    pub receive_timestamp: Timestamp,
    pub sender_seq: u32,
    /// T1 as the sender wrote it.
    pub sender_timestamp: Timestamp,
    /// Absent in a reply shorter than 38 bytes.
    pub sender_error: Option<u16>,
    /// TTL or hop limit the sender's packet arrived with; absent under 41 bytes.
    pub sender_ttl: Option<u8>,
}

impl ReflectorPacket {
    /// Decodes a Session-Reflector packet of at least 36 bytes.
    pub fn parse(buf: &[u8]) -> Result<ReflectorPacket> {
        if buf.len() < REPLY_MIN_LEN {
            return Err(Error::Truncated);
        }
        Ok(ReflectorPacket {
            seq: u32_at(buf, field::SEQ),
            timestamp: ts_at(buf, field::TIMESTAMP),
            error: u16_at(buf, field::ERROR),
            ssid: u16_at(buf, field::SSID),
            receive_timestamp: ts_at(buf, field::RECEIVE_TIMESTAMP),
            sender_seq: u32_at(buf, field::SENDER_SEQ),
            sender_timestamp: ts_at(buf, field::SENDER_TIMESTAMP),
            sender_error: (buf.len() >= field::SENDER_ERROR.end)
                .then(|| u16_at(buf, field::SENDER_ERROR)),
            sender_ttl: buf.get(field::SENDER_TTL).copied(),
        })
    }

    /// The reflector's error estimate, when valid.
    pub fn error_estimate(&self) -> Option<ErrorEstimate> {
        ErrorEstimate::decode(self.error).ok()
    }

    /// The format of T2 and T3: the Z bit of the reflector's error estimate (valid or not).
    pub fn timestamp_format(&self) -> Format {
        Format::of_error_estimate(self.error)
    }
}

/// What the Session-Reflector adds to a reply; T3 is written separately, just before sending
/// ([`set_transmit_timestamp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reflection {
    pub seq: u32,
    pub error: u16,
    pub receive_timestamp: Timestamp,
    /// The TTL or hop limit the request arrived with (255 when unknown).
    pub ttl: u8,
}

/// Length of the reply to a request of `request_len` bytes: max(request, 44), so a reply is
/// never more than 30 bytes longer than its request.
pub fn reply_len(request_len: usize) -> usize {
    request_len.max(STAMP_LEN)
}

/// Builds the STAMP reflector reply to `request` in `out` and returns its length. Bytes 0..41
/// follow RFC 5357 (so TWAMP-Light senders read it), the SSID is copied from a STAMP request
/// (zero for a shorter one), MBZ fields are zero and bytes beyond 44 are copied from the
/// request. T3 is left zero. Fails for a request under 14 bytes or an `out` too small.
pub fn reflect(request: &[u8], r: &Reflection, out: &mut [u8]) -> Result<usize> {
    let sender = SenderPacket::parse(request)?;
    let len = reply_len(request.len());
    let out = out.get_mut(..len).ok_or(Error::BadLength)?;
    out[..STAMP_LEN].fill(0);
    out[STAMP_LEN..].copy_from_slice(&request[STAMP_LEN.min(request.len())..]);
    out[field::SEQ].copy_from_slice(&r.seq.to_be_bytes());
    out[field::ERROR].copy_from_slice(&r.error.to_be_bytes());
    out[field::SSID].copy_from_slice(&sender.ssid.unwrap_or(0).to_be_bytes());
    out[field::RECEIVE_TIMESTAMP].copy_from_slice(&r.receive_timestamp.to_bytes());
    out[field::SENDER_SEQ].copy_from_slice(&request[field::SEQ]);
    out[field::SENDER_TIMESTAMP].copy_from_slice(&request[field::TIMESTAMP]);
    out[field::SENDER_ERROR].copy_from_slice(&request[field::ERROR]);
    out[field::SENDER_TTL] = r.ttl;
    Ok(len)
}

/// [`lreflect`] in place, for a reflector that answers from its receive buffer: `buf` holds the
/// request in its first `request_len` bytes and has room for the reply
/// (`reply_len(request_len)` bytes). The reply's first 44 bytes overwrite the request's; bytes
/// beyond 44 are the request's own, so they are copied by staying where they are. Returns the
/// reply's length, or an error (and leaves `buf` as it was) for a request under 14 bytes or a
/// `buf` too small.
pub fn reflect_in_place(buf: &mut [u8], request_len: usize, r: &Reflection) -> Result<usize> {
    if request_len < SENDER_MIN_LEN {
        return Err(Error::Truncated);
    }
    let len = reply_len(request_len);
    if buf.len() < len || buf.len() < request_len {
        return Err(Error::BadLength);
    }
    let n = request_len.min(STAMP_LEN);
    let mut head = [0u8; STAMP_LEN];
    head[..n].copy_from_slice(&buf[..n]);
    reflect(&head[..n], r, &mut buf[..STAMP_LEN])?;
    Ok(len)
}

/// Writes T3 into a reply built by [`lreflect`].
pub fn set_transmit_timestamp(reply: &mut [u8], t3: Timestamp) {
    if let Some(f) = reply.get_mut(field::TIMESTAMP) {
        f.copy_from_slice(&t3.to_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ntp::Format;

    fn stamp_request(seq: u32, ssid: u16, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        SenderPacket {
            seq,
            timestamp: Timestamp {
                secs: 0xe000_0001,
                frac: 0x8000_0000,
            },
            error: 0x8001,
            ssid: (len >= STAMP_LEN).then_some(ssid),
        }
        .write(&mut b)
        .unwrap();
        b
    }

    #[test]
    fn sender_layout_matches_rfc_8762_figure_2() {
        let b = stamp_request(0x0102_0304, 0xabcd, 44);
        // Sequence number, then the timestamp, then the error estimate, then the SSID.
        assert_eq!(&b[0..4], &[1, 2, 3, 4]);
        assert_eq!(&b[4..12], &[0xe0, 0, 0, 1, 0x80, 0, 0, 0]);
        assert_eq!(&b[12..14], &[0x80, 0x01]);
        assert_eq!(&b[14..16], &[0xab, 0xcd]);
        assert!(b[16..44].iter().all(|&x| x == 0), "MBZ");
        let p = SenderPacket::parse(&b).unwrap();
        assert_eq!(p.seq, 0x0102_0304);
        assert_eq!(p.ssid, Some(0xabcd));
        // TWAMP-Light: 14 bytes are enough, and there is no SSID.
        let p = SenderPacket::parse(&b[..14]).unwrap();
        assert_eq!(p.ssid, None);
        assert_eq!(SenderPacket::parse(&b[..13]), Err(Error::Truncated));
    }

    #[test]
    fn reflector_layout_matches_rfc_5357_and_8762() {
        let mut req = stamp_request(7, 0x1234, 60);
        req[44..].copy_from_slice(&[0x5a; 16]);
        let mut out = [0xffu8; 128];
        let t2 = Timestamp {
            secs: 0xe100_0000,
            frac: 0x10,
        };
        let len = reflect(
            &req,
            &Reflection {
                seq: 99,
                error: 0x0001,
                receive_timestamp: t2,
                ttl: 62,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(len, 60);
        set_transmit_timestamp(
            &mut out[..len],
            Timestamp {
                secs: 0xe100_0001,
                frac: 0x20,
            },
        );
        let o = &out[..len];
        assert_eq!(&o[0..4], &99u32.to_be_bytes());
        assert_eq!(&o[4..12], &[0xe1, 0, 0, 1, 0, 0, 0, 0x20]);
        assert_eq!(&o[12..14], &[0, 1]);
        assert_eq!(&o[14..16], &[0x12, 0x34], "SSID copied");
        assert_eq!(&o[16..24], &[0xe1, 0, 0, 0, 0, 0, 0, 0x10]);
        assert_eq!(&o[24..28], &7u32.to_be_bytes());
        assert_eq!(&o[28..36], &req[4..12]);
        assert_eq!(&o[36..38], &[0x80, 0x01]);
        assert_eq!(&o[38..40], &[0, 0], "MBZ");
        assert_eq!(o[40], 62);
        assert_eq!(&o[41..44], &[0, 0, 0], "MBZ");
        assert_eq!(&o[44..], &[0x5a; 16], "beyond 44 copied");
        let p = ReflectorPacket::parse(o).unwrap();
        assert_eq!(p.seq, 99);
        assert_eq!(p.ssid, 0x1234);
        assert_eq!(p.receive_timestamp, t2);
        assert_eq!(p.sender_seq, 7);
        assert_eq!(
            p.sender_timestamp,
            Timestamp {
                secs: 0xe000_0001,
                frac: 0x8000_0000
            }
        );
        assert_eq!(p.sender_error, Some(0x8001));
        assert_eq!(p.sender_ttl, Some(62));
        assert_eq!(p.error_estimate().unwrap().format, Format::Ntp);
        assert_eq!(p.timestamp_format(), Format::Ntp);
        let mut ptp = o.to_vec();
        ptp[12] |= 0x40;
        assert_eq!(
            ReflectorPacket::parse(&ptp).unwrap().timestamp_format(),
            Format::Ptp
        );
    }

    #[test]
    fn reply_length_is_bounded_by_the_request() {
        let mut out = [0u8; 2048];
        for len in 0..200 {
            let req = vec![0x11u8; len];
            let r = Reflection {
                seq: 0,
                error: 1,
                receive_timestamp: Timestamp::default(),
                ttl: 255,
            };
            match reflect(&req, &r, &mut out) {
                Ok(n) => {
                    assert!(len >= SENDER_MIN_LEN);
                    assert_eq!(n, len.max(44));
                    assert!(n <= len + MAX_AMPLIFICATION);
                    if len < STAMP_LEN {
                        assert_eq!(&out[14..16], &[0, 0], "no SSID in a TWAMP-Light request");
                    }
                }
                Err(e) => {
                    assert!(len < SENDER_MIN_LEN);
                    assert_eq!(e, Error::Truncated);
                }
            }
        }
        // An output buffer too small is an error, not a panic.
        assert_eq!(
            reflect(
                &[0u8; 100],
                &Reflection {
                    seq: 0,
                    error: 1,
                    receive_timestamp: Timestamp::default(),
                    ttl: 1
                },
                &mut [0u8; 50]
            ),
            Err(Error::BadLength)
        );
    }

    #[test]
    fn reflecting_in_place_gives_the_same_reply() {
        let r = Reflection {
            seq: 5,
            error: 0x8101,
            receive_timestamp: Timestamp {
                secs: 0xe100_0000,
                frac: 7,
            },
            ttl: 63,
        };
        for len in [14, 20, 41, 43, 44, 45, 100, 1000] {
            let mut req = stamp_request(11, 0xbeef, len);
            for (k, b) in req.iter_mut().enumerate().skip(44) {
                *b = k as u8;
            }
            let mut expected = vec![0u8; reply_len(len)];
            let n = reflect(&req, &r, &mut expected).unwrap();
            // The request in a buffer with room, the rest of it garbage.
            let mut buf = vec![0xa5u8; len.max(44) + 8];
            buf[..len].copy_from_slice(&req);
            assert_eq!(reflect_in_place(&mut buf, len, &r), Ok(n), "{len}");
            assert_eq!(&buf[..n], &expected[..], "{len}");
            assert_eq!(
                &buf[n..],
                &[0xa5; 8],
                "{len}: nothing written past the reply"
            );
        }
        // Too short, or no room: an error, the buffer untouched.
        let mut buf = [0x11u8; 44];
        assert_eq!(reflect_in_place(&mut buf, 13, &r), Err(Error::Truncated));
        assert_eq!(
            reflect_in_place(&mut buf[..43], 20, &r),
            Err(Error::BadLength)
        );
        assert_eq!(reflect_in_place(&mut buf, 45, &r), Err(Error::BadLength));
        assert_eq!(buf, [0x11u8; 44]);
    }

    #[test]
    fn short_replies_have_no_ttl_or_sender_error() {
        let b = [0u8; 38];
        let p = ReflectorPacket::parse(&b).unwrap();
        assert_eq!(p.sender_error, Some(0));
        assert_eq!(p.sender_ttl, None);
        let p = ReflectorPacket::parse(&b[..36]).unwrap();
        assert_eq!(p.sender_error, None);
        assert_eq!(ReflectorPacket::parse(&b[..35]), Err(Error::Truncated));
        // The reflector's error estimate with multiplier 0 is invalid.
        assert_eq!(p.error_estimate(), None);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut out = vec![0u8; 256];
        for _ in 0..20_000 {
            let len = (next() % 200) as usize;
            let buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = SenderPacket::parse(&buf);
            if let Ok(p) = ReflectorPacket::parse(&buf) {
                let _ = p.error_estimate();
                let _ = p.timestamp.to_unix_ns(Format::Ntp, next());
                let _ = p.timestamp.to_unix_ns(Format::Ptp, next());
            }
            let r = Reflection {
                seq: next() as u32,
                error: next() as u16,
                receive_timestamp: Timestamp::default(),
                ttl: next() as u8,
            };
            let cap = (next() % 256) as usize;
            if let Ok(n) = reflect(&buf, &r, &mut out[..cap]) {
                set_transmit_timestamp(&mut out[..n], Timestamp::default());
            }
            let _ = ErrorEstimate::decode(next() as u16);
        }
    }
}
