//! Decoding of `recvmsg` control messages: nix walks the buffer and types each message
//! (`ControlMessageOwned`); this takes what lopa reads from them, pure so it is tested like
//! `wire`. (The reflector's batched reads decode their own buffers: `reflect::batch`.)
#![forbid(unsafe_code)]

use nix::sys::socket::ControlMessageOwned;
use nix::sys::time::TimeSpec;
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

/// Decodes the control messages of one `recvmsg`, as nix read them for the platform's
/// `cmsghdr` layout. Messages lopa did not ask for are skipped; a later message of a kind
/// replaces an earlier one.
pub fn from_messages(msgs: impl IntoIterator<Item = ControlMessageOwned>) -> Ancillary {
    let mut out = Ancillary::default();
    for m in msgs {
        match m {
            ControlMessageOwned::ScmTimestampns(ts) => out.rx_time = system_time(ts),
            // struct scm_timestamping: software, (deprecated), hardware.
            ControlMessageOwned::ScmTimestampsns(ts) => out.timestamping = system_time(ts.system),
            ControlMessageOwned::RxqOvfl(drops) => out.drops = Some(drops),
            ControlMessageOwned::Ipv4Ttl(v) | ControlMessageOwned::Ipv6HopLimit(v) => {
                out.ttl = u8::try_from(v).ok();
            }
            ControlMessageOwned::Ipv4Tos(tos) => out.tos = Some(tos),
            ControlMessageOwned::Ipv6TClass(v) => out.tos = u8::try_from(v).ok(),
            ControlMessageOwned::Ipv4RecvErr(ee, sa) => {
                let offender = sa
                    .filter(|sa| i32::from(sa.sin_family) == libc::AF_INET)
                    .map(|sa| IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))));
                out.error = Some(extended_error(&ee, offender));
            }
            ControlMessageOwned::Ipv6RecvErr(ee, sa) => {
                let offender = sa
                    .filter(|sa| i32::from(sa.sin6_family) == libc::AF_INET6)
                    .map(|sa| IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)).to_canonical());
                out.error = Some(extended_error(&ee, offender));
            }
            _ => {}
        }
    }
    out
}

/// A `struct timespec` (CLOCK_REALTIME); `None` when zero or out of range.
fn system_time(ts: TimeSpec) -> Option<SystemTime> {
    let (sec, nsec) = (ts.tv_sec(), ts.tv_nsec());
    if sec > 0 && (0..1_000_000_000).contains(&nsec) {
        Some(UNIX_EPOCH + Duration::new(sec as u64, nsec as u32))
    } else {
        None
    }
}

/// `struct sock_extended_err` with the host that sent the ICMP error, if any.
fn extended_error(ee: &libc::sock_extended_err, offender: Option<IpAddr>) -> ExtendedError {
    ExtendedError {
        errno: ee.ee_errno,
        origin: ee.ee_origin,
        icmp_type: ee.ee_type,
        icmp_code: ee.ee_code,
        info: ee.ee_info,
        data: ee.ee_data,
        offender,
    }
}

/// The address of a `sockaddr_in` / `sockaddr_in6` as bytes (family in host order, address in
/// network order); `None` for `AF_UNSPEC` or a short buffer. For `reflect::batch`, whose
/// `recvmmsg` fills plain buffers.
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
    use nix::sys::socket::Timestamps;

    fn sock_err(errno: i32, origin: u8, kind: u8, code: u8, data: u32) -> libc::sock_extended_err {
        libc::sock_extended_err {
            ee_errno: errno as u32,
            ee_origin: origin,
            ee_type: kind,
            ee_code: code,
            ee_pad: 0,
            ee_info: 0,
            ee_data: data,
        }
    }

    #[test]
    fn decodes_timestamp_ttl_and_tos() {
        let a = from_messages([
            ControlMessageOwned::ScmTimestampns(TimeSpec::new(1_795_341_600, 123_456_789)),
            ControlMessageOwned::Ipv4Ttl(63),
            ControlMessageOwned::Ipv4Tos(0xb8),
        ]);
        assert_eq!(
            a.rx_time,
            Some(UNIX_EPOCH + Duration::new(1_795_341_600, 123_456_789))
        );
        assert_eq!((a.ttl, a.tos), (Some(63), Some(0xb8)));
        // IPv6: hop limit and traffic class are ints.
        let a = from_messages([
            ControlMessageOwned::Ipv6HopLimit(64),
            ControlMessageOwned::Ipv6TClass(0x20),
        ]);
        assert_eq!((a.ttl, a.tos), (Some(64), Some(0x20)));
    }

    #[test]
    fn out_of_range_values_read_as_absent() {
        let a = from_messages([
            ControlMessageOwned::ScmTimestampns(TimeSpec::new(0, 0)),
            ControlMessageOwned::Ipv6HopLimit(-1),
            ControlMessageOwned::Ipv6TClass(256),
        ]);
        assert_eq!(a, Ancillary::default());
    }

    #[test]
    fn decodes_the_sockets_drop_count() {
        let a = from_messages([
            ControlMessageOwned::Ipv4Ttl(63),
            ControlMessageOwned::RxqOvfl(64_712),
        ]);
        assert_eq!((a.drops, a.ttl), (Some(64_712), Some(63)));
    }

    #[test]
    fn decodes_icmp_error_with_offender() {
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::new(10, 0, 1, 254)).to_be(),
            },
            sin_zero: [0; 8],
        };
        let ee = sock_err(libc::EHOSTUNREACH, SO_EE_ORIGIN_ICMP, 3, 1, 0);
        let e = from_messages([ControlMessageOwned::Ipv4RecvErr(ee, Some(sa))])
            .error
            .unwrap();
        assert_eq!(
            (e.errno, e.origin, e.icmp_type, e.icmp_code),
            (libc::EHOSTUNREACH as u32, SO_EE_ORIGIN_ICMP, 3, 1)
        );
        assert_eq!(e.offender, Some("10.0.1.254".parse().unwrap()));
    }

    #[test]
    fn an_ipv6_offender_of_an_ipv4_packet_reads_as_ipv4() {
        let sa = libc::sockaddr_in6 {
            sin6_family: libc::AF_INET6 as libc::sa_family_t,
            sin6_port: 0,
            sin6_flowinfo: 0,
            sin6_addr: libc::in6_addr {
                s6_addr: "::ffff:10.0.1.254".parse::<Ipv6Addr>().unwrap().octets(),
            },
            sin6_scope_id: 0,
        };
        let ee = sock_err(libc::EHOSTUNREACH, SO_EE_ORIGIN_ICMP6, 1, 0, 0);
        let e = from_messages([ControlMessageOwned::Ipv6RecvErr(ee, Some(sa))])
            .error
            .unwrap();
        assert_eq!(e.offender, Some("10.0.1.254".parse().unwrap()));
    }

    #[test]
    fn decodes_tx_timestamp_with_its_key() {
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_UNSPEC as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr { s_addr: 0 },
            sin_zero: [0; 8],
        };
        let ee = sock_err(libc::ENOMSG, SO_EE_ORIGIN_TIMESTAMPING, 0, 0, 1000);
        let a = from_messages([
            ControlMessageOwned::ScmTimestampsns(Timestamps {
                system: TimeSpec::new(1_795_341_600, 42),
                hw_trans: TimeSpec::new(0, 0),
                hw_raw: TimeSpec::new(0, 0),
            }),
            ControlMessageOwned::Ipv4RecvErr(ee, Some(sa)),
        ]);
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
    fn sockaddr_bytes_of_both_families() {
        let mut sa = vec![0u8; 28];
        sa[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        sa[4..8].copy_from_slice(&[10, 0, 1, 254]);
        assert_eq!(parse_sockaddr_ip(&sa), Some("10.0.1.254".parse().unwrap()));
        sa[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        sa[8..24].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(parse_sockaddr_ip(&sa), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(parse_sockaddr_ip(&sa[..20]), None);
        assert_eq!(parse_sockaddr_ip(&[0; 28]), None);
    }
}
