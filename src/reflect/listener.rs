//! The listening UDP sockets: their kinds, the options each is opened with, binding.
//!
//! A new kind of UDP listener (e.g. the test sockets a TWAMP-Control server negotiates) is a
//! [`Kind`] variant: [`open`] says which receive options it needs, the serving code which
//! answer it gets. A listener that is not a UDP socket (e.g. TWAMP-Control's TCP one) keeps
//! its own type and registers with the event loop under its own tokens ([`super::event_loop`]).
#![forbid(unsafe_code)]

use super::batch;
use super::stats::SocketStats;
use anyhow::{anyhow, bail, Result};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

/// Receive buffer asked for: room for bursts while a batch is being answered.
const RCVBUF: i32 = 4 << 20;

/// What a listening socket answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// UDP echo (RFC 862, ludp's probes): `--echo`.
    Echo,
    /// TWAMP-Light / STAMP Session-Reflector: `--twamp`.
    Twamp,
}

impl Kind {
    /// The flag that asks for it.
    pub(super) fn flag(self) -> &'static str {
        match self {
            Kind::Echo => "--echo",
            Kind::Twamp => "--twamp",
        }
    }

    /// Its `mode` in `stats` records.
    pub(super) fn mode(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Twamp => "twamp",
        }
    }

    /// Its name on stderr.
    pub(super) fn label(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Twamp => "TWAMP",
        }
    }
}

/// One listening socket.
pub(super) struct Listener {
    pub(super) sock: Socket,
    /// The bound address, as `stats` records name it.
    pub(super) listen: String,
    /// The bound address (a TWAMP session's local address, unless the socket is a wildcard).
    pub(super) local: SocketAddr,
    pub(super) kind: Kind,
    /// Bound to a wildcard address: answers need the local address given explicitly.
    pub(super) wildcard: bool,
    pub(super) stats: SocketStats,
    /// Readable, and not yet drained.
    pub(super) ready: bool,
    /// A test port of `--twamp-control` (not also given as `--twamp`): only the test packets of
    /// granted sessions are answered.
    pub(super) controlled: bool,
    /// Answers to one destination may be coalesced into UDP GSO sends.
    pub(super) gso: bool,
}

impl Listener {
    pub(super) fn is_twamp(&self) -> bool {
        self.kind == Kind::Twamp
    }
}

/// Opens and binds one socket with every receive option the reflector reads.
fn open(addr: SocketAddr, dual: bool, kind: Kind) -> io::Result<Socket> {
    let v6 = addr.is_ipv6();
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )?;
    let fd = sock.as_raw_fd();
    let on = |level, name| crate::net::socket::setsockopt_int(fd, level, name, 1);
    // Timestamping is enabled before the first datagram (the kernel turns it on lazily).
    on(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)?;
    let wildcard = addr.ip().is_unspecified();
    if v6 {
        sock.set_only_v6(!dual)?;
        on(libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS)?;
        if dual {
            // IPv4 clients of a dual-stack socket: the kernel reports their TOS as IP_TOS,
            // and only when asked at the IPv4 level.
            on(libc::IPPROTO_IP, libc::IP_RECVTOS)?;
        }
        if wildcard {
            on(libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)?;
        }
    } else {
        on(libc::IPPROTO_IP, libc::IP_RECVTOS)?;
        if wildcard {
            on(libc::IPPROTO_IP, libc::IP_PKTINFO)?;
        }
    }
    if kind == Kind::Twamp {
        // The TTL or hop limit each request arrived with. IPv4 clients of a dual-stack socket
        // get theirs only from IP_RECVTTL (IPV6_RECVHOPLIMIT says nothing about them). Replies
        // leave with 255, as senders' test packets do, so a sender can count the return path's
        // hops too.
        let set = |level, name, v| crate::net::socket::setsockopt_int(fd, level, name, v);
        if v6 {
            on(libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)?;
            set(libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 255)?;
        }
        if !v6 || dual {
            on(libc::IPPROTO_IP, libc::IP_RECVTTL)?;
            set(libc::IPPROTO_IP, libc::IP_TTL, 255)?;
        }
    }
    // Beyond net.core.rmem_max only with CAP_NET_ADMIN; else the kernel caps the request.
    if crate::net::socket::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF)
        .is_err()
    {
        let _ = crate::net::socket::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF);
    }
    sock.bind(&SockAddr::from(addr))?;
    Ok(sock)
}

/// Whether the kernel takes UDP GSO on this socket. Asked with a segment size of 0 (none by
/// default): a kernel that does not know the option would ignore the per-send one too, and
/// send the coalesced answers as one long datagram.
fn gso_supported(sock: &Socket) -> bool {
    crate::net::socket::setsockopt_int(sock.as_raw_fd(), libc::SOL_UDP, batch::UDP_SEGMENT, 0)
        .is_ok()
}

/// What to do about a bind error, in words.
fn bind_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "; another process has this port (ss -ulpn shows which)",
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "; ports below 1024 need CAP_NET_BIND_SERVICE (the systemd unit grants it)"
        }
        Some(libc::EADDRNOTAVAIL) => "; no interface has this address",
        _ => "",
    }
}

/// Binds every `--echo` and `--twamp` address. IPv6 wildcards are dual-stack unless an IPv4
/// address on the same port is listed too (both would want the IPv4 side of the port).
pub(super) fn bind_all(addrs: &[(SocketAddr, Kind)], gso: bool) -> Result<Vec<Listener>> {
    let mut out = Vec::with_capacity(addrs.len());
    for (k, &(addr, kind)) in addrs.iter().enumerate() {
        if let Some(e) = given_before(&addrs[..k], addr, kind) {
            bail!(e);
        }
        let sock = open(addr, dual_stack(addr, addrs), kind)
            .map_err(|e| anyhow!("cannot listen on {addr}: {e}{}", bind_hint(&e)))?;
        let local = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(addr);
        out.push(Listener {
            gso: gso && gso_supported(&sock),
            sock,
            listen: local.to_string(),
            local,
            kind,
            wildcard: addr.ip().is_unspecified(),
            stats: SocketStats::default(),
            ready: false,
            controlled: false,
        });
    }
    Ok(out)
}

/// The error when `addr` is among the addresses listed before it.
fn given_before(before: &[(SocketAddr, Kind)], addr: SocketAddr, kind: Kind) -> Option<String> {
    let &(_, other) = before.iter().find(|(a, _)| *a == addr)?;
    Some(if other == kind {
        format!("{} {addr} is given twice", kind.flag())
    } else {
        format!(
            "{addr} is given both as {} and as {}",
            other.flag(),
            kind.flag()
        )
    })
}

/// Whether `addr` gets a dual-stack socket: an IPv6 wildcard with no IPv4 address listed on
/// its port, or an IPv4-mapped IPv6 address.
fn dual_stack(addr: SocketAddr, all: &[(SocketAddr, Kind)]) -> bool {
    let v4_same_port = all
        .iter()
        .any(|(o, _)| o.is_ipv4() && o.port() == addr.port());
    match addr.ip() {
        IpAddr::V6(ip) => (ip.is_unspecified() && !v4_same_port) || ip.to_ipv4_mapped().is_some(),
        IpAddr::V4(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_wildcards_are_dual_stack_unless_ipv4_has_the_port() {
        let alone = [(a("[::]:8081"), Kind::Echo)];
        assert!(dual_stack(a("[::]:8081"), &alone));
        let with_v4 = [
            (a("[::]:8081"), Kind::Echo),
            (a("10.0.0.1:8081"), Kind::Echo),
        ];
        assert!(!dual_stack(a("[::]:8081"), &with_v4));
        // An IPv4 address on another port leaves the wildcard dual-stack.
        let other_port = [
            (a("[::]:8081"), Kind::Echo),
            (a("10.0.0.1:862"), Kind::Twamp),
        ];
        assert!(dual_stack(a("[::]:8081"), &other_port));
        assert!(dual_stack(a("[::ffff:10.0.0.1]:8081"), &with_v4));
        assert!(!dual_stack(a("[fd00::1]:8081"), &alone));
        assert!(!dual_stack(a("10.0.0.1:8081"), &alone));
    }

    #[test]
    fn an_address_given_twice_is_named_with_its_flags() {
        let before = [(a("[::]:8081"), Kind::Echo), (a("[::]:862"), Kind::Twamp)];
        assert_eq!(given_before(&before, a("10.0.0.1:8081"), Kind::Echo), None);
        assert_eq!(
            given_before(&before, a("[::]:8081"), Kind::Echo).unwrap(),
            "--echo [::]:8081 is given twice"
        );
        assert_eq!(
            given_before(&before, a("[::]:862"), Kind::Echo).unwrap(),
            "[::]:862 is given both as --twamp and as --echo"
        );
    }

    #[test]
    fn bind_errors_say_what_to_do() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert!(bind_hint(&e(libc::EADDRINUSE)).contains("ss -ulpn"));
        assert!(bind_hint(&e(libc::EACCES)).contains("CAP_NET_BIND_SERVICE"));
        assert!(bind_hint(&e(libc::EPERM)).contains("CAP_NET_BIND_SERVICE"));
        assert!(bind_hint(&e(libc::EADDRNOTAVAIL)).contains("no interface"));
        assert_eq!(bind_hint(&e(libc::EINVAL)), "");
    }

    #[test]
    fn bound_listeners_keep_kind_and_port() {
        let addrs = [(a("127.0.0.1:0"), Kind::Echo), (a("[::1]:0"), Kind::Twamp)];
        let ls = bind_all(&addrs, false).unwrap();
        assert_eq!(ls.len(), 2);
        assert_eq!(ls[0].kind, Kind::Echo);
        assert!(ls[1].is_twamp());
        assert_ne!(ls[0].local.port(), 0, "the bound port, not the asked-for 0");
        assert_eq!(ls[0].listen, ls[0].local.to_string());
        assert!(!ls[0].wildcard && !ls[0].gso);
    }
}
