//! Decoding of `recvmsg` control messages, pure over bytes so it is tested like `wire`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `origin` values of `struct sock_extended_err`.
pub const SO_EE_ORIGIN_LOCAL: u8 = 1;
pub const SO_EE_ORIGIN_ICMP: u8 = 2;
pub const SO_EE_ORIGIN_ICMP6: u8 = 3;
pub const SO_EE_ORIGIN_TIMESTAMPING: u8 = 4;

/// An error from the socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedError {
    pub errno: u32,
    pub origin: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub info: u32,
    /// For timestamps (`SO_EE_ORIGIN_TIMESTAMPING`): the key of the send (`OPT_ID`).
    pub data: u32,
    /// The host that sent the ICMP error.
    pub offender: Option<IpAddr>,
}

/// The control messages lopa reads, decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ancillary {
    /// Kernel receive timestamp (`SO_TIMESTAMPNS`, CLOCK_REALTIME).
    pub rx_time: Option<SystemTime>,
    /// TTL (`IP_TTL`) or hop limit (`IPV6_HOPLIMIT`).
    pub ttl: Option<u8>,
    /// TOS (`IP_TOS`) or traffic class (`IPV6_TCLASS`).
    pub tos: Option<u8>,
    pub error: Option<ExtendedError>,
    /// Software stamp of `SCM_TIMESTAMPING` (on the error queue: when the packet left).
    pub timestamping: Option<SystemTime>,
    /// `SO_RXQ_OVFL`: datagrams the kernel had dropped on this socket (receive queue full)
    /// when this one was queued, since the socket opened; the kernel sends it once non-zero.
    pub drops: Option<u32>,
}

const HDR_LEN: usize = std::mem::size_of::<libc::cmsghdr>();

fn align(len: usize) -> usize {
    let a = std::mem::size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

fn int_at(data: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(data.get(..4)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes a control buffer as filled by `recvmsg` (`msg_controllen` bytes). Unknown or
/// malformed messages are skipped; decoding stops at the first header that does not fit.
pub fn parse(buf: &[u8]) -> Ancillary {
    let mut out = Ancillary::default();
    let mut at = 0;
    while at + HDR_LEN <= buf.len() {
        let len = usize::from_ne_bytes(buf[at..at + 8].try_into().unwrap_or_default());
        let level = i32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap_or_default());
        let kind = i32::from_ne_bytes(buf[at + 12..at + 16].try_into().unwrap_or_default());
        // A length that overflows or runs past the buffer ends the walk (found by fuzzing:
        // `at + len` wrapped and the slice below panicked).
        let end = match at.checked_add(len) {
            Some(end) if len >= HDR_LEN && end <= buf.len() => end,
            _ => break,
        };
        let data = &buf[at + HDR_LEN..end];
        match (level, kind) {
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => out.rx_time = timespec(data),
            // struct scm_timestamping: software, (deprecated), hardware.
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING) => out.timestamping = timespec(data),
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => out.drops = u32_at(data, 0),
            (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                out.ttl = int_at(data).and_then(|v| u8::try_from(v).ok());
            }
            (libc::IPPROTO_IP, libc::IP_TOS) => out.tos = data.first().copied(),
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => {
                out.tos = int_at(data).and_then(|v| u8::try_from(v).ok());
            }
            (libc::IPPROTO_IP, libc::IP_RECVERR) | (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) => {
                out.error = parse_extended_error(data);
            }
            _ => {}
        }
        at += align(len);
    }
    out
}

/// A `struct timespec` (CLOCK_REALTIME); `None` when zero or malformed.
fn timespec(data: &[u8]) -> Option<SystemTime> {
    let sec = i64::from_ne_bytes(data.get(..8)?.try_into().ok()?);
    let nsec = i64::from_ne_bytes(data.get(8..16)?.try_into().ok()?);
    if sec > 0 && (0..1_000_000_000).contains(&nsec) {
        Some(UNIX_EPOCH + Duration::new(sec as u64, nsec as u32))
    } else {
        None
    }
}

/// `struct sock_extended_err` (16 bytes) followed by the offender's `sockaddr`.
fn parse_extended_error(data: &[u8]) -> Option<ExtendedError> {
    let errno = u32_at(data, 0)?;
    let (origin, icmp_type, icmp_code) = (*data.get(4)?, *data.get(5)?, *data.get(6)?);
    let info = u32_at(data, 8)?;
    Some(ExtendedError {
        errno,
        origin,
        icmp_type,
        icmp_code,
        info,
        data: u32_at(data, 12)?,
        offender: data.get(16..).and_then(parse_sockaddr_ip),
    })
}

/// The address of a `sockaddr_in` / `sockaddr_in6` (family in host order, address in network
/// order); `None` for `AF_UNSPEC` or a short buffer.
pub fn parse_sockaddr_ip(sa: &[u8]) -> Option<IpAddr> {
    let family = i32::from(u16::from_ne_bytes(sa.get(..2)?.try_into().ok()?));
    match family {
        libc::AF_INET => {
            let b: [u8; 4] = sa.get(4..8)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        libc::AF_INET6 => {
            let b: [u8; 16] = sa.get(8..24)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)).to_canonical())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzzer's find: a second header whose length is `usize::MAX` made `at + len` wrap
    /// (a panic in debug builds, a slice out of order in release). It ends the walk instead.
    #[test]
    fn a_length_that_overflows_ends_the_walk() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(HDR_LEN as u64).to_ne_bytes());
        buf.extend_from_slice(&[0xbe; 8]);
        buf.extend_from_slice(&u64::MAX.to_ne_bytes());
        buf.extend_from_slice(&[0, 0, 0, 0xbe, 0xbe, 0xbe, 0xbe, 0xbe, 0xbe]);
        let out = parse(&buf);
        assert!(out.error.is_none() && out.ttl.is_none() && out.rx_time.is_none());
    }

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let len = HDR_LEN + data.len();
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(align(len), 0);
        v
    }

    #[test]
    fn decodes_timestamp_ttl_and_tos() {
        let mut ts = Vec::new();
        ts.extend_from_slice(&1_795_341_600i64.to_ne_bytes());
        ts.extend_from_slice(&123_456_789i64.to_ne_bytes());
        let mut buf = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &ts);
        buf.extend(cmsg(libc::IPPROTO_IP, libc::IP_TTL, &63i32.to_ne_bytes()));
        buf.extend(cmsg(libc::IPPROTO_IP, libc::IP_TOS, &[0xb8]));
        let a = parse(&buf);
        assert_eq!(
            a.rx_time,
            Some(UNIX_EPOCH + Duration::new(1_795_341_600, 123_456_789))
        );
        assert_eq!((a.ttl, a.tos), (Some(63), Some(0xb8)));
    }

    #[test]
    fn decodes_the_sockets_drop_count() {
        let mut buf = cmsg(libc::IPPROTO_IP, libc::IP_TTL, &63i32.to_ne_bytes());
        buf.extend(cmsg(
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            &64_712u32.to_ne_bytes(),
        ));
        let a = parse(&buf);
        assert_eq!((a.drops, a.ttl), (Some(64_712), Some(63)));
        // Too short for its u32: ignored.
        assert_eq!(
            parse(&cmsg(libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &[1, 2])).drops,
            None
        );
    }

    #[test]
    fn decodes_icmp_error_with_offender() {
        let mut ee = Vec::new();
        ee.extend_from_slice(&(libc::EHOSTUNREACH as u32).to_ne_bytes());
        ee.extend_from_slice(&[SO_EE_ORIGIN_ICMP, 3, 1, 0]);
        ee.extend_from_slice(&0u32.to_ne_bytes());
        ee.extend_from_slice(&0u32.to_ne_bytes());
        let mut sa = vec![0u8; 16];
        sa[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        sa[4..8].copy_from_slice(&[10, 0, 1, 254]);
        ee.extend_from_slice(&sa);
        let a = parse(&cmsg(libc::IPPROTO_IP, libc::IP_RECVERR, &ee));
        let e = a.error.unwrap();
        assert_eq!(
            (e.origin, e.icmp_type, e.icmp_code),
            (SO_EE_ORIGIN_ICMP, 3, 1)
        );
        assert_eq!(e.offender, Some("10.0.1.254".parse().unwrap()));
    }

    #[test]
    fn decodes_tx_timestamp_with_its_key() {
        let mut ts = Vec::new();
        for (sec, nsec) in [(1_795_341_600i64, 42i64), (0, 0), (0, 0)] {
            ts.extend_from_slice(&sec.to_ne_bytes());
            ts.extend_from_slice(&nsec.to_ne_bytes());
        }
        let mut ee = Vec::new();
        ee.extend_from_slice(&(libc::ENOMSG as u32).to_ne_bytes());
        ee.extend_from_slice(&[SO_EE_ORIGIN_TIMESTAMPING, 0, 0, 0]);
        ee.extend_from_slice(&0u32.to_ne_bytes());
        ee.extend_from_slice(&1000u32.to_ne_bytes());
        let mut buf = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, &ts);
        buf.extend(cmsg(libc::IPPROTO_IP, libc::IP_RECVERR, &ee));
        let a = parse(&buf);
        assert_eq!(
            a.timestamping,
            Some(UNIX_EPOCH + Duration::new(1_795_341_600, 42))
        );
        let e = a.error.unwrap();
        assert_eq!(
            (e.origin, e.data, e.offender),
            (SO_EE_ORIGIN_TIMESTAMPING, 1000, None)
        );
    }

    #[test]
    fn ipv6_hop_limit_and_lying_lengths() {
        let buf = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &64i32.to_ne_bytes(),
        );
        assert_eq!(parse(&buf).ttl, Some(64));
        let mut bad = buf.clone();
        bad[..8].copy_from_slice(&1000usize.to_ne_bytes());
        assert_eq!(parse(&bad), Ancillary::default());
        assert_eq!(parse(&buf[..10]), Ancillary::default());
        let mut tiny = buf;
        tiny[..8].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(parse(&tiny), Ancillary::default());
    }
}
