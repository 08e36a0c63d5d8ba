//! ICMP echo probes (lping): datagram ("ping") sockets where allowed, raw sockets otherwise.

use super::sock::ProbeSocket;
use super::{ProbeEvent, ProbeId, ProbeLookup, Prober, SendStamp};
use crate::net::socket::{self, setsockopt_int, IcmpSocketMode, SocketOptions};
use crate::net::Received;
use crate::target::Target;
use crate::wire::icmp::{describe, EchoRepr, IcmpRepr, Quoted, Version, HEADER_LEN};
use crate::wire::ip::Ipv4Repr;
use crate::wire::payload::{ProbeMark, MARK_LEN};
use anyhow::{anyhow, Result};
use mio::Token;
use socket2::Socket;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Largest echo payload: 65535 minus IPv4 and ICMP headers.
pub const MAX_PAYLOAD: usize = 65_507;

/// The address family and kind of an ICMP socket: what decoding a datagram depends on.
#[derive(Clone, Copy)]
struct SocketKind {
    version: Version,
    raw: bool,
}

struct IcmpSocket {
    probe: ProbeSocket,
    version: Version,
    raw: bool,
}

/// How replies are recognised as ours.
struct Matcher {
    /// Random per process: a reply whose payload lacks it is not ours.
    cookie: u64,
    /// Echo identifier on raw sockets (datagram sockets get one from the kernel).
    ident: u16,
    payload_len: usize,
}

/// Sends echo requests and matches echo replies and ICMP errors to probes.
pub struct IcmpProber {
    sockets: Vec<IcmpSocket>,
    matcher: Matcher,
    /// The echo data of the next probe, and the packet built from it.
    payload: Vec<u8>,
    packet: Vec<u8>,
    recv_buf: Vec<u8>,
}

impl IcmpProber {
    /// Opens one socket per address family the targets need, with the options applied.
    pub fn open(
        targets: &[Target],
        mode: IcmpSocketMode,
        payload_len: usize,
        opts: &SocketOptions,
    ) -> Result<IcmpProber> {
        let mut sockets = Vec::new();
        for v6 in [false, true] {
            if !targets.iter().any(|t| t.addr.is_ipv6() == v6) {
                continue;
            }
            let (sock, raw) =
                socket::open_icmp(v6, mode).map_err(|e| socket_refused(e, v6, mode))?;
            sock.set_nonblocking(true)?;
            socket::enable_ancillary(&sock, v6, !raw)?;
            socket::apply_options(&sock, v6, opts)?;
            if raw {
                install_raw_filter(&sock, v6)?;
            }
            // Room for bursts: many targets answer at once.
            let _ = sock.set_recv_buffer_size(4 << 20);
            sockets.push(IcmpSocket {
                probe: ProbeSocket::new(sock, !raw),
                version: if v6 { Version::V6 } else { Version::V4 },
                raw,
            });
        }
        let rand = random_u64();
        Ok(IcmpProber {
            sockets,
            matcher: Matcher {
                cookie: rand,
                ident: (rand >> 48) as u16 ^ std::process::id() as u16,
                payload_len,
            },
            payload: vec![0; payload_len],
            packet: vec![0; HEADER_LEN + payload_len],
            recv_buf: vec![0; 65_536 + 60],
        })
    }

    /// Whether the socket for the family is raw (for diagnostics and tests).
    pub fn is_raw(&self, v6: bool) -> Option<bool> {
        self.sockets
            .iter()
            .find(|s| (s.version == Version::V6) == v6)
            .map(|s| s.raw)
    }
}

impl Matcher {
    /// Matches an echo (reply, or the request quoted by an error) to a probe.
    fn match_echo(
        &self,
        echo: &EchoRepr,
        addr: IpAddr,
        lookup: &dyn ProbeLookup,
    ) -> Option<ProbeId> {
        if self.payload_len >= MARK_LEN {
            let mark = ProbeMark::parse_ours(echo.data, self.cookie).ok()?;
            Some(ProbeId {
                target: mark.target as usize,
                seq: mark.seq,
            })
        } else {
            lookup.by_addr_seq16(addr, echo.seq)
        }
    }

    fn handle(
        &self,
        kind: SocketKind,
        data: &[u8],
        rx: &Received,
        rx_mono: Instant,
        lookup: &dyn ProbeLookup,
        events: &mut Vec<ProbeEvent>,
    ) {
        let Some(from) = rx.from else { return };
        let mut ttl = rx.anc.ttl;
        let mut tos = rx.anc.tos;
        let icmp = if kind.raw && kind.version == Version::V4 {
            match Ipv4Repr::parse(data) {
                Ok((ip, rest)) => {
                    ttl = Some(ip.ttl);
                    tos = Some(ip.tos);
                    rest
                }
                Err(e) => return events.push(ProbeEvent::Malformed(e)),
            }
        } else {
            data
        };
        let msg = match IcmpRepr::parse(kind.version, icmp, kind.raw) {
            Ok(m) => m,
            Err(e) => return events.push(ProbeEvent::Malformed(e)),
        };
        match msg {
            IcmpRepr::EchoReply(echo) => {
                // A raw socket sees every echo reply on the host: keep only ours.
                if kind.raw && echo.ident != self.ident {
                    return;
                }
                if let Some(id) = self.match_echo(&echo, from, lookup) {
                    events.push(ProbeEvent::Reply {
                        id,
                        from,
                        rx_wall: rx.anc.rx_time,
                        rx_mono,
                        ttl,
                        size: Some(icmp.len()),
                        tos,
                        reflector: None,
                        result: None,
                    });
                }
            }
            IcmpRepr::Error {
                icmp_type,
                code,
                quoted,
            } if kind.raw => {
                let Ok(q) = Quoted::parse(kind.version, quoted) else {
                    return;
                };
                let Some(echo) = q.echo(kind.version) else {
                    return;
                };
                if echo.ident != self.ident {
                    return;
                }
                if let Some(id) = self.match_echo(&echo, q.dst, lookup) {
                    events.push(ProbeEvent::Error {
                        id,
                        from: Some(from),
                        icmp_type: Some(icmp_type),
                        icmp_code: Some(code),
                        reason: describe(kind.version, icmp_type, code),
                    });
                }
            }
            _ => {}
        }
    }

    /// An entry of a datagram socket's error queue: the kernel hands back our echo request
    /// with the ICMP error (or local error) that answered it.
    fn handle_queued_error(
        &self,
        version: Version,
        data: &[u8],
        rx: &Received,
        lookup: &dyn ProbeLookup,
        events: &mut Vec<ProbeEvent>,
    ) {
        let Some(err) = rx.anc.error else { return };
        let Ok(IcmpRepr::EchoRequest(echo)) = IcmpRepr::parse(version, data, false) else {
            return;
        };
        let Some(dst) = rx.from else { return };
        let Some(id) = self.match_echo(&echo, dst, lookup) else {
            return;
        };
        events.extend(ProbeEvent::from_queued_error(
            id,
            version == Version::V6,
            &err,
        ));
    }
}

impl Prober for IcmpProber {
    fn register(&mut self, registry: &mio::Registry, first: usize) -> io::Result<usize> {
        for (i, s) in self.sockets.iter().enumerate() {
            s.probe.register(registry, Token(first + i))?;
        }
        Ok(self.sockets.len())
    }

    fn send(&mut self, target: &Target, id: ProbeId) -> io::Result<SendStamp> {
        let version = Version::of(&target.addr);
        let mark = ProbeMark {
            cookie: self.matcher.cookie,
            target: id.target as u32,
            seq: id.seq,
        };
        mark.fill(&mut self.payload);
        let repr = IcmpRepr::EchoRequest(EchoRepr {
            ident: self.matcher.ident,
            seq: id.seq as u16,
            data: &self.payload,
        });
        let len = repr.emit(version, &mut self.packet);
        let s = self
            .sockets
            .iter_mut()
            .find(|s| s.version == version)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no socket for this address family",
                )
            })?;
        s.probe
            .send(&self.packet[..len], target.socket_addr(0), id, None)
    }

    fn drain(&mut self, token: usize, lookup: &dyn ProbeLookup, events: &mut Vec<ProbeEvent>) {
        let Some(s) = self.sockets.get_mut(token) else {
            return;
        };
        let (version, raw) = (s.version, s.raw);
        let matcher = &self.matcher;
        s.probe.drain(
            &mut self.recv_buf,
            events,
            |data, rx, events| matcher.handle_queued_error(version, data, rx, lookup, events),
            |data, rx, rx_mono, events| {
                matcher.handle(
                    SocketKind { version, raw },
                    data,
                    rx,
                    rx_mono,
                    lookup,
                    events,
                )
            },
        );
    }
}

/// Lets only echo replies and the errors that quote a probe reach a raw socket, so other
/// ICMP traffic (neighbour discovery, router advertisements) does not wake the loop.
fn install_raw_filter(sock: &Socket, v6: bool) -> io::Result<()> {
    let fd = sock.as_raw_fd();
    if v6 {
        // struct icmp6_filter: 256 bits, a set bit blocks the type (linux/icmpv6.h).
        const ICMP6_FILTER: i32 = 1;
        let mut filter = [u32::MAX; 8];
        for t in [1u8, 2, 3, 4, 129] {
            filter[usize::from(t >> 5)] &= !(1 << (t & 31));
        }
        // SAFETY: filter is 32 bytes, the size of struct icmp6_filter.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_ICMPV6,
                ICMP6_FILTER,
                filter.as_ptr().cast(),
                32,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    } else {
        // ICMP_FILTER (SOL_RAW): a set bit blocks the type.
        let pass: u32 = [0u32, 3, 4, 5, 11, 12].iter().map(|t| 1 << t).sum();
        const SOL_RAW: i32 = 255;
        const ICMP_FILTER: i32 = 1;
        setsockopt_int(fd, SOL_RAW, ICMP_FILTER, !pass as i32)
    }
}

fn socket_refused(e: io::Error, v6: bool, mode: IcmpSocketMode) -> anyhow::Error {
    let family = if v6 { "ICMPv6" } else { "ICMP" };
    match (e.raw_os_error(), mode) {
        (Some(libc::EACCES) | Some(libc::EPERM), IcmpSocketMode::Dgram) => anyhow!(
            "cannot open an {family} datagram socket: not allowed by net.ipv4.ping_group_range; \
             run `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` or use --socket raw"
        ),
        (Some(libc::EACCES) | Some(libc::EPERM), _) => anyhow!(
            "cannot open an {family} socket: ping sockets are not allowed (net.ipv4.ping_group_range) \
             and raw sockets need CAP_NET_RAW; run `sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"` \
             or `setcap cap_net_raw+ep $(command -v lping)`"
        ),
        (Some(libc::EAFNOSUPPORT), _) => anyhow!("cannot open an {family} socket: this host has no {} support", if v6 { "IPv6" } else { "IPv4" }),
        _ => anyhow!("cannot open an {family} socket: {e}"),
    }
}

/// 64 random bits from the kernel (falls back to time and pid if getrandom fails).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: b is 8 writable bytes.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 8, 0) };
    if n == 8 {
        u64::from_ne_bytes(b)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ (u64::from(std::process::id()) << 32)
    }
}
