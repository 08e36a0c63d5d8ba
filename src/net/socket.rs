//! Socket creation, options, `sendmsg` and `recvmsg`: nix where it has the call or option,
//! `libc` (with its `unsafe`) for the rest: a `sendmsg` with control messages nix has no
//! type for (`SCM_TS_OPT_ID`, a per-send `SO_TIMESTAMPING`), `SO_MEMINFO`, and integer
//! options nix does not name ([`setsockopt_int`]).

use super::cmsg::{self, Ancillary};
use nix::sys::socket::{self as nixsock, sockopt, MsgFlags, SockaddrStorage};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

/// Which kind of ICMP socket to use (`--socket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IcmpSocketMode {
    /// Datagram ("ping") socket when `net.ipv4.ping_group_range` allows it, else raw.
    #[default]
    Auto,
    /// Unprivileged ICMP datagram socket only.
    Dgram,
    /// Raw socket only (needs CAP_NET_RAW).
    Raw,
}

/// Options applied to every probe socket.
#[derive(Debug, Clone, Default)]
pub struct SocketOptions {
    pub ttl: Option<u8>,
    /// TOS byte (IPv4) or traffic class (IPv6).
    pub tos: Option<u8>,
    pub mark: Option<u32>,
    /// `SO_BINDTODEVICE`.
    pub device: Option<String>,
    /// Source address to bind.
    pub source: Option<IpAddr>,
}

fn domain(v6: bool) -> Domain {
    if v6 {
        Domain::IPV6
    } else {
        Domain::IPV4
    }
}

/// Opens an ICMP socket for the family; returns it and whether it is raw.
pub fn open_icmp(v6: bool, mode: IcmpSocketMode) -> io::Result<(Socket, bool)> {
    let proto = if v6 {
        Protocol::ICMPV6
    } else {
        Protocol::ICMPV4
    };
    let dgram = || Socket::new(domain(v6), Type::DGRAM, Some(proto));
    let raw = || Socket::new(domain(v6), Type::RAW, Some(proto));
    match mode {
        IcmpSocketMode::Dgram => dgram().map(|s| (s, false)),
        IcmpSocketMode::Raw => raw().map(|s| (s, true)),
        IcmpSocketMode::Auto => match dgram() {
            Ok(s) => Ok((s, false)),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
                raw().map(|s| (s, true))
            }
            Err(e) => Err(e),
        },
    }
}

/// Sets an integer socket option that nix has no type for (`ICMP_FILTER`, `UDP_SEGMENT`,
/// `NETLINK_ADD_MEMBERSHIP`, `SO_TIMESTAMPING` with `OPT_RX_FILTER`…).
pub fn setsockopt_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed exactly.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks for everything `recv_msg` decodes: kernel receive timestamps (enabled now, before the
/// first probe, because the kernel turns timestamping on lazily), TTL/hop limit, TOS/traffic
/// class and, when `errors`, ICMP errors on the error queue.
pub fn enable_ancillary(sock: &Socket, v6: bool, errors: bool) -> io::Result<()> {
    nixsock::setsockopt(sock, sockopt::ReceiveTimestampns, &true)?;
    if v6 {
        nixsock::setsockopt(sock, sockopt::Ipv6RecvHopLimit, &true)?;
        nixsock::setsockopt(sock, sockopt::Ipv6RecvTClass, &true)?;
        if errors {
            nixsock::setsockopt(sock, sockopt::Ipv6RecvErr, &true)?;
        }
    } else {
        nixsock::setsockopt(sock, sockopt::Ipv4RecvTtl, &true)?;
        nixsock::setsockopt(sock, sockopt::IpRecvTos, &true)?;
        if errors {
            nixsock::setsockopt(sock, sockopt::Ipv4RecvErr, &true)?;
        }
    }
    Ok(())
}

/// Asks the kernel to say, with every datagram, how many it dropped on this socket because its
/// receive queue was full (`SO_RXQ_OVFL`): answers lost on this host, not on the network.
pub fn enable_drop_count(sock: &Socket) -> io::Result<()> {
    Ok(nixsock::setsockopt(sock, sockopt::RxqOvfl, &1)?)
}

/// The datagrams the kernel dropped on this socket so far (`SO_MEMINFO`'s drop count, the
/// figure `/proc/net/udp` and `/proc/net/raw` show): the count as of now, where `SO_RXQ_OVFL`
/// tells it only with the next datagram queued.
pub fn dropped_so_far(sock: &Socket) -> Option<u32> {
    // SK_MEMINFO_VARS is 9 on Linux 4.x and later; room for more.
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes and `len` is updated by the kernel.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    const SK_MEMINFO_DROPS: usize = 8;
    let words = len as usize / std::mem::size_of::<u32>();
    (rc == 0 && words > SK_MEMINFO_DROPS).then(|| info[SK_MEMINFO_DROPS])
}

/// Sizes a probing socket's receive queue for bursts of answers: `bytes` (beyond
/// `net.core.rmem_max` where the process may: `SO_RCVBUFFORCE` needs CAP_NET_ADMIN, which a
/// root run has before it drops privileges). `LOPA_TEST_RCVBUF` (bytes) overrides it: the
/// tests use it to make the queue overflow.
pub fn size_receive_queue(sock: &Socket, bytes: usize) {
    let bytes = std::env::var("LOPA_TEST_RCVBUF")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(bytes);
    let value = bytes.min(i32::MAX as usize);
    if nixsock::setsockopt(sock, sockopt::RcvBufForce, &value).is_err() {
        let _ = sock.set_recv_buffer_size(bytes);
    }
}

/// `SCM_TS_OPT_ID` (Linux 6.13): the key of a send's timestamp, given per `sendmsg`.
const SCM_TS_OPT_ID: i32 = 81;

/// Asks the kernel for a software timestamp of every sent packet, reported on the error queue
/// without a copy of the packet (`OPT_TSONLY`) and with the key each send gives (`OPT_ID`).
/// `OPT_RX_FILTER` keeps these flags from adding a second stamp to received datagrams (nix's
/// `TimestampingFlag` has no `OPT_RX_FILTER`, hence the plain integer).
pub fn enable_tx_timestamps(sock: &Socket) -> io::Result<()> {
    let flags = libc::SOF_TIMESTAMPING_TX_SOFTWARE
        | libc::SOF_TIMESTAMPING_SOFTWARE
        | libc::SOF_TIMESTAMPING_OPT_ID
        | libc::SOF_TIMESTAMPING_OPT_TSONLY
        | libc::SOF_TIMESTAMPING_OPT_RX_FILTER;
    setsockopt_int(
        sock.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPING,
        flags as i32,
    )
}

/// Sends a datagram to `to` (port 0 for ICMP) with `sendmsg`. `tx_key` sets the key of its
/// transmit timestamp (`SCM_TS_OPT_ID`; kernels before 6.13 refuse it with `EINVAL`); `tos`
/// sets this datagram's TOS byte (IPv4) or traffic class (IPv6).
pub fn send_msg(
    sock: &Socket,
    buf: &[u8],
    to: SocketAddr,
    tx_key: Option<u32>,
    tos: Option<u8>,
) -> io::Result<usize> {
    send_msg_ttl(sock, buf, to, tx_key, tos, None)
}

/// [`send_msg`] that may also set this datagram's TTL (IPv4) or hop limit (IPv6), so probes
/// of many TTLs can leave one socket back to back (path tracing).
pub fn send_msg_ttl(
    sock: &Socket,
    buf: &[u8],
    to: SocketAddr,
    tx_key: Option<u32>,
    tos: Option<u8>,
    ttl: Option<u8>,
) -> io::Result<usize> {
    let mut cmsgs: Vec<(i32, i32, u32)> = Vec::with_capacity(3);
    if let Some(key) = tx_key {
        cmsgs.push((libc::SOL_SOCKET, SCM_TS_OPT_ID, key));
    }
    push_tos_ttl(&mut cmsgs, to, tos, ttl);
    send_with(sock, buf, to, &cmsgs)
}

/// Sends a trace probe: [`send_msg_ttl`] with no transmit stamp, whatever the socket asked for
/// (a per-send `SO_TIMESTAMPING` of no flags), so a trace leaves no stamp on the error queue
/// that the socket's probes, keyed from 0, could take for theirs.
pub fn send_unstamped(
    sock: &Socket,
    buf: &[u8],
    to: SocketAddr,
    tos: Option<u8>,
    ttl: Option<u8>,
) -> io::Result<usize> {
    let mut cmsgs: Vec<(i32, i32, u32)> = vec![(libc::SOL_SOCKET, libc::SO_TIMESTAMPING, 0)];
    push_tos_ttl(&mut cmsgs, to, tos, ttl);
    send_with(sock, buf, to, &cmsgs)
}

fn push_tos_ttl(
    cmsgs: &mut Vec<(i32, i32, u32)>,
    to: SocketAddr,
    tos: Option<u8>,
    ttl: Option<u8>,
) {
    if let Some(tos) = tos {
        cmsgs.push(if to.is_ipv4() {
            (libc::IPPROTO_IP, libc::IP_TOS, u32::from(tos))
        } else {
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS, u32::from(tos))
        });
    }
    if let Some(ttl) = ttl {
        cmsgs.push(if to.is_ipv4() {
            (libc::IPPROTO_IP, libc::IP_TTL, u32::from(ttl))
        } else {
            (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT, u32::from(ttl))
        });
    }
}

/// `sendmsg` with up to three control messages of a 4-byte value each. Plain `libc`: nix's
/// `ControlMessage` has no `SCM_TS_OPT_ID` and no per-send `SO_TIMESTAMPING`.
fn send_with(
    sock: &Socket,
    buf: &[u8],
    to: SocketAddr,
    cmsgs: &[(i32, i32, u32)],
) -> io::Result<usize> {
    let addr = SockAddr::from(to);
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // Room for three cmsgs of a 4-byte value: 3 × CMSG_SPACE(4) = 72 bytes, u64-aligned.
    let mut control = [0u64; 9];
    let cmsgs = &cmsgs[..cmsgs.len().min(3)];
    // SAFETY: an all-zero msghdr is valid (no name, no data, no control); every pointer set
    // in it (address, iovec over `buf`, `control`) outlives the sendmsg call, which only
    // reads them. The control buffer holds CMSG_SPACE(4) bytes for each of at most three
    // cmsgs and is aligned for cmsghdr, so CMSG_FIRSTHDR/CMSG_NXTHDR stay within
    // msg_controllen and every header and 4-byte value written lies inside it.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = addr.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = addr.len();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !cmsgs.is_empty() {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as usize * cmsgs.len();
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            for &(level, kind, value) in cmsgs {
                (*cmsg).cmsg_level = level;
                (*cmsg).cmsg_type = kind;
                (*cmsg).cmsg_len = libc::CMSG_LEN(4) as usize;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>(), value);
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        libc::sendmsg(sock.as_raw_fd(), &msg, 0)
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Applies TTL, TOS, mark, device and source address; each failure names the option.
pub fn apply_options(sock: &Socket, v6: bool, opts: &SocketOptions) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(ttl) = opts.ttl {
        if v6 {
            sock.set_unicast_hops_v6(u32::from(ttl))
        } else {
            sock.set_ttl_v4(u32::from(ttl))
        }
        .context("cannot set the TTL")?;
    }
    if let Some(tos) = opts.tos {
        if v6 {
            sock.set_tclass_v6(u32::from(tos))
        } else {
            sock.set_tos_v4(u32::from(tos))
        }
        .context("cannot set the TOS")?;
    }
    if let Some(mark) = opts.mark {
        sock.set_mark(mark)
            .context("cannot set the socket mark (SO_MARK needs CAP_NET_ADMIN)")?;
    }
    if let Some(dev) = &opts.device {
        sock.bind_device(Some(dev.as_bytes()))
            .with_context(|| format!("cannot bind to interface {dev}"))?;
    }
    if let Some(src) = opts.source {
        if src.is_ipv6() == v6 {
            sock.bind(&SockAddr::from(SocketAddr::new(src, 0)))
                .with_context(|| format!("cannot bind to source address {src}"))?;
        }
    }
    Ok(())
}

/// The local address probes to `dst` leave from, for records (`src`): `opts.source` when it has
/// `dst`'s family, else the source the kernel picks for the route to `dst`, which a throwaway UDP
/// socket with the same interface and mark, connected to `dst` (no packet leaves), tells.
pub fn route_source(dst: SocketAddr, opts: &SocketOptions) -> anyhow::Result<IpAddr> {
    let v6 = dst.is_ipv6();
    let sock = Socket::new(domain(v6), Type::DGRAM, Some(Protocol::UDP))?;
    // Only what steers the route choice: the interface, the mark (policy routing), the source.
    let steer = SocketOptions {
        ttl: None,
        tos: None,
        ..opts.clone()
    };
    apply_options(&sock, v6, &steer)?;
    let mut dst = dst;
    dst.set_port(dst.port().max(1));
    sock.connect(&SockAddr::from(dst))?;
    sock.local_addr()?
        .as_socket()
        .map(|a| a.ip())
        .ok_or_else(|| anyhow::anyhow!("no local address for {dst}"))
}

/// [`route_source`] for records: `None` when there is no route, or when the route has no usable
/// address (a prefix routed to `lo`) and the kernel leaves the choice to the moment a packet
/// leaves.
pub fn record_source(dst: SocketAddr, opts: &SocketOptions) -> Option<IpAddr> {
    route_source(dst, opts)
        .ok()
        .filter(|ip| !ip.is_unspecified())
}

/// One datagram (or error-queue entry) read by [`recv_msg`].
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Bytes of the datagram (may exceed the buffer if `truncated`).
    pub len: usize,
    pub truncated: bool,
    pub from: Option<IpAddr>,
    pub anc: Ancillary,
}

/// Control buffer size: timestamp, TTL, TOS and an extended error with its offender, each
/// with its header, with room to spare (a short buffer truncates messages).
const CONTROL_LEN: usize = 512;

/// The control buffer, aligned for `cmsghdr` as nix's decoder reads headers in place.
#[repr(C, align(8))]
struct ControlBuf([u8; CONTROL_LEN]);

/// `recvmsg` on a non-blocking socket; `errqueue` reads the error queue (`MSG_ERRQUEUE`).
/// The control messages are nix's (`ControlMessageOwned`), decoded for the platform's
/// `cmsghdr` layout.
pub fn recv_msg(fd: RawFd, buf: &mut [u8], errqueue: bool) -> io::Result<Received> {
    let mut control = ControlBuf([0; CONTROL_LEN]);
    let buf_len = buf.len();
    let mut iov = [IoSliceMut::new(buf)];
    let mut flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC;
    if errqueue {
        flags |= MsgFlags::MSG_ERRQUEUE;
    }
    let msg = nixsock::recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control.0), flags)?;
    // The IP stacks (UDP, ping, raw sockets and their error queues) always write the
    // sender's address.
    let from = msg.address.as_ref().and_then(sockaddr_ip);
    // A truncated control buffer (MSG_CTRUNC) cannot be walked safely: nothing is decoded.
    let anc = msg.cmsgs().map(cmsg::from_messages).unwrap_or_default();
    Ok(Received {
        len: msg.bytes,
        truncated: msg.bytes > buf_len,
        from,
        anc,
    })
}

/// The address of an IPv4 or IPv6 socket address (IPv4-mapped IPv6 as IPv4).
fn sockaddr_ip(sa: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = sa.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    sa.as_sockaddr_in6()
        .map(|v6| IpAddr::V6(v6.ip()).to_canonical())
}

/// An OS error in words, as a record's `reason`: "no route to host", without the errno suffix
/// that `io::Error` appends.
pub fn error_reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::cmsg::{
        SO_EE_ORIGIN_ICMP as SO_EE_ORIGIN_ICMP_V4, SO_EE_ORIGIN_ICMP6 as SO_EE_ORIGIN_ICMP_V6,
    };
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn udp(addr: IpAddr, errors: bool) -> Socket {
        let sock = Socket::new(domain(addr.is_ipv6()), Type::DGRAM, Some(Protocol::UDP)).unwrap();
        sock.bind(&SockAddr::from(SocketAddr::new(addr, 0)))
            .unwrap();
        enable_ancillary(&sock, addr.is_ipv6(), errors).unwrap();
        sock.set_nonblocking(true).unwrap();
        sock
    }

    /// Reads one datagram (or error-queue entry), waiting for it to arrive.
    fn recv_waiting(sock: &Socket, buf: &mut [u8], errqueue: bool) -> Received {
        for _ in 0..2000 {
            match recv_msg(sock.as_raw_fd(), buf, errqueue) {
                Ok(r) => return r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("recvmsg: {e}"),
            }
        }
        panic!("nothing arrived");
    }

    /// A real datagram over loopback: nix's control messages give the TTL and TOS it was
    /// sent with (per datagram, through `send_msg_ttl`'s own cmsgs), a kernel timestamp and
    /// the sender; a short buffer shows as truncated, with the datagram's real length.
    #[test]
    fn recv_msg_reads_what_the_kernel_says_of_a_datagram() {
        for (addr, tos) in [
            (IpAddr::V4(Ipv4Addr::LOCALHOST), 0x20),
            (IpAddr::V6(Ipv6Addr::LOCALHOST), 0x28),
        ] {
            let rx = udp(addr, false);
            let tx = udp(addr, false);
            let to = rx.local_addr().unwrap().as_socket().unwrap();
            let before = std::time::SystemTime::now();
            send_msg_ttl(&tx, &[7; 100], to, None, Some(tos), Some(33)).unwrap();
            let mut buf = [0u8; 64];
            let r = recv_waiting(&rx, &mut buf, false);
            assert_eq!(
                (r.len, r.truncated, r.from),
                (100, true, Some(addr)),
                "{addr}"
            );
            assert_eq!((r.anc.ttl, r.anc.tos), (Some(33), Some(tos)), "{addr}");
            assert!(r.anc.rx_time.unwrap() >= before - std::time::Duration::from_secs(1));
            assert_eq!(r.anc.error, None);
        }
    }

    /// A datagram to a closed port: the ICMP port unreachable comes back on the error queue
    /// as an extended error with the offender's address.
    #[test]
    fn recv_msg_reads_an_icmp_error_from_the_error_queue() {
        for (addr, icmp) in [
            (
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                (SO_EE_ORIGIN_ICMP_V4, 3, 3),
            ),
            (
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                (SO_EE_ORIGIN_ICMP_V6, 1, 4),
            ),
        ] {
            let closed = udp(addr, false);
            let to = closed.local_addr().unwrap().as_socket().unwrap();
            drop(closed);
            let tx = udp(addr, true);
            send_msg(&tx, &[1; 20], to, None, None).unwrap();
            let mut buf = [0u8; 64];
            let r = recv_waiting(&tx, &mut buf, true);
            let e = r.anc.error.expect("an extended error");
            assert_eq!((e.origin, e.icmp_type, e.icmp_code), icmp, "{addr}");
            assert_eq!(e.errno, libc::ECONNREFUSED as u32);
            assert_eq!(e.offender, Some(addr));
            assert_eq!(r.from, Some(addr));
        }
    }

    #[test]
    fn reasons_read_like_words() {
        let e = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        assert_eq!(error_reason(&e), "no route to host");
        let e = io::Error::other("Custom");
        assert_eq!(error_reason(&e), "custom");
    }
}
