//! ICMP echo probes (lping): datagram ("ping") sockets where allowed, raw sockets otherwise.

use super::sock::ProbeSocket;
use super::trace::{self, Answer, TraceConfig, TracedFlow, Tracer};
use super::{ProbeEvent, ProbeId, ProbeLookup, Prober, SendStamp};
use crate::net::socket::{self, setsockopt_int, IcmpSocketMode, SocketOptions};
use crate::net::Received;
use crate::target::Target;
use crate::wire;
use crate::wire::icmp::{describe, EchoRepr, IcmpRepr, Quoted, Version, HEADER_LEN};
use crate::wire::ip::Ipv4Repr;
use crate::wire::lping_mark::{ProbeMark, MARK_LEN};
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
    /// The echo identifier the probes carry on the wire: ours on a raw socket, the one the
    /// kernel gave a datagram socket (its port) otherwise.
    wire_ident: u16,
}

/// How replies are recognised as ours.
struct Matcher {
    /// Random per process: a reply whose payload lacks it is not ours.
    cookie: u64,
    /// Echo identifier on raw sockets (datagram sockets get one from the kernel).
    ident: u16,
    payload_len: usize,
}

/// Payload bytes that carry the mark and the two bytes that keep the checksum constant.
pub const STABLE_PAYLOAD: usize = MARK_LEN + 2;

/// Offset in the echo message of the two bytes that keep its checksum constant (right after
/// the mark).
const STABLE_AT: usize = HEADER_LEN + MARK_LEN;

/// Sends echo requests and matches echo replies and ICMP errors to probes.
///
/// With room for it in the payload ([`STABLE_PAYLOAD`] bytes), every echo request (probe or
/// trace probe) carries the same identifier and checksum, the flow identity ECMP routers hash
/// (Paris traceroute): two payload bytes after the mark absorb the changing sequence number.
pub struct IcmpProber {
    sockets: Vec<IcmpSocket>,
    matcher: Matcher,
    /// The echo data of the next probe, and the packet built from it.
    payload: Vec<u8>,
    packet: Vec<u8>,
    recv_buf: Vec<u8>,
    /// The checksum every echo request carries, when the payload has room to keep it.
    checksum: Option<u16>,
    /// `--trace-every`: the paths followed.
    followed: Option<trace::Followed>,
    /// Trace rounds so far: each round's probes carry its number.
    round: u32,
    /// What the sockets were opened with: the interface and mark steer the route, so the
    /// source address, of every target.
    opts: SocketOptions,
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
            socket::size_receive_queue(&sock, 4 << 20);
            sockets.push(IcmpSocket {
                probe: ProbeSocket::new(sock, !raw),
                version: if v6 { Version::V6 } else { Version::V4 },
                raw,
                wire_ident: 0,
            });
        }
        let rand = crate::random::random_u64();
        let ident = (rand >> 48) as u16 ^ std::process::id() as u16;
        for s in &mut sockets {
            s.wire_ident = if s.raw {
                ident
            } else {
                datagram_ident(&s.probe.sock, s.version == Version::V6)?
            };
        }
        Ok(IcmpProber {
            sockets,
            matcher: Matcher {
                cookie: rand,
                ident,
                payload_len,
            },
            payload: vec![0; payload_len],
            packet: vec![0; HEADER_LEN + payload_len],
            recv_buf: vec![0; 65_536 + 60],
            // Any value but 0xffff, which no checksum of a non-zero message is.
            checksum: (payload_len >= STABLE_PAYLOAD).then_some((rand >> 16) as u16 % 0xffff),
            followed: None,
            round: 0,
            opts: opts.clone(),
        })
    }

    /// Whether the socket for the family is raw (for diagnostics and tests).
    pub fn is_raw(&self, family: Version) -> Option<bool> {
        self.sockets
            .iter()
            .find(|s| s.version == family)
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
                        syn_retransmits: None,
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
        events.extend(ProbeEvent::from_queued_error(id, version, &err));
    }
}

impl Prober for IcmpProber {
    /// The source the kernel picks for the target: unconnected ICMP sockets have none of
    /// their own (unless bound with `-I ADDR`), so the route's, looked up once per target.
    fn source(&self, target: &Target, _index: usize, _stream: usize) -> Option<IpAddr> {
        socket::record_source(target.socket_addr(0), &self.opts)
    }

    fn dropped_local(&self) -> Vec<super::SocketDrops> {
        self.sockets
            .iter()
            .map(|s| super::SocketDrops {
                socket: format!(
                    "the ICMP {} socket ({})",
                    if s.raw { "raw" } else { "datagram" },
                    if s.version == Version::V6 {
                        "IPv6"
                    } else {
                        "IPv4"
                    }
                ),
                count: s.probe.dropped(),
                family: s.version,
                sport: None,
            })
            .collect()
    }

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
        if let Some(c) = self.checksum {
            wire::icmp::set_checksum(version, &mut self.packet[..len], STABLE_AT, c);
        }
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

/// Trace probes carry this bit in the sequence number of their mark (measurement probes count
/// from 1 and never reach it), and the round, TTL and probe in its low 32 bits; the echo
/// sequence number carries them in 16 bits ([`trace::pack`]), for errors that quote only the
/// first 8 bytes of the probe.
const TRACE_SEQ: u64 = 1 << 63;

/// Echo requests as trace probes: flow `i` of the trace is target `targets[i]`.
struct TraceCodec {
    /// (target index, destination, version, raw, identifier on the wire) per flow.
    flows: Vec<(usize, IpAddr, Version, bool, u16)>,
    cookie: u64,
    /// The identifier written into every echo request (a datagram socket's kernel replaces
    /// it, for the probes and the trace probes alike, so their checksums stay equal).
    header_ident: u16,
    payload_len: usize,
    checksum: Option<u16>,
    round: u32,
    payload: Vec<u8>,
}

impl TraceCodec {
    /// The (TTL, probe) of an echo request or reply of this round to flow `flow`'s target.
    fn decode_echo(&self, flow: usize, echo: &EchoRepr) -> Option<(u8, u8)> {
        let &(target, _, _, raw, ident) = self.flows.get(flow)?;
        if raw && echo.ident != ident {
            return None;
        }
        let (round, ttl, n) = trace::unpack(u32::from(echo.seq), 16);
        if !trace::same_round(round, self.round, 16) {
            return None;
        }
        // An error may quote only the echo header; when it quotes the mark, it must agree.
        if echo.data.len() >= MARK_LEN {
            let mark = ProbeMark::parse_ours(echo.data, self.cookie).ok()?;
            let want = TRACE_SEQ | u64::from(trace::pack(self.round, ttl, n, 32));
            if mark.target as usize != target || mark.seq != want {
                return None;
            }
        }
        Some((ttl, n))
    }
}

impl trace::TraceCodec for TraceCodec {
    fn encode(&mut self, flow: usize, ttl: u8, n: u8, buf: &mut Vec<u8>) {
        let (target, _, version, _, _) = self.flows.get(flow).copied().unwrap_or((
            0,
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            Version::V4,
            false,
            0,
        ));
        self.payload.resize(self.payload_len, 0);
        ProbeMark {
            cookie: self.cookie,
            target: target as u32,
            seq: TRACE_SEQ | u64::from(trace::pack(self.round, ttl, n, 32)),
        }
        .fill(&mut self.payload);
        let repr = IcmpRepr::EchoRequest(EchoRepr {
            ident: self.header_ident,
            seq: trace::pack(self.round, ttl, n, 16) as u16,
            data: &self.payload,
        });
        buf.clear();
        buf.resize(repr.buffer_len(), 0);
        let len = repr.emit(version, buf);
        if let Some(c) = self.checksum {
            wire::icmp::set_checksum(version, &mut buf[..len], STABLE_AT, c);
        }
    }

    /// An error-queue entry of a datagram socket: the quoted echo request.
    fn decode(&self, flow: usize, data: &[u8]) -> Option<(u8, u8)> {
        let &(_, _, version, _, _) = self.flows.get(flow)?;
        match IcmpRepr::parse(version, data, false) {
            Ok(IcmpRepr::EchoRequest(e)) => self.decode_echo(flow, &e),
            _ => None,
        }
    }

    fn decode_datagram(
        &self,
        flow: usize,
        data: &[u8],
        from: IpAddr,
        dst: IpAddr,
    ) -> Option<(u8, u8, IpAddr, Answer)> {
        let &(_, _, version, raw, _) = self.flows.get(flow)?;
        let icmp = if raw && version == Version::V4 {
            Ipv4Repr::parse(data).ok()?.1
        } else {
            data
        };
        match IcmpRepr::parse(version, icmp, false).ok()? {
            IcmpRepr::EchoReply(e) if from.to_canonical() == dst.to_canonical() => {
                let (ttl, n) = self.decode_echo(flow, &e)?;
                Some((ttl, n, from, Answer::Destination))
            }
            // A raw socket reads the ICMP errors about its probes itself.
            IcmpRepr::Error {
                icmp_type, quoted, ..
            } if raw => {
                let q = Quoted::parse(version, quoted).ok()?;
                if q.dst.to_canonical() != dst.to_canonical() {
                    return None;
                }
                let (ttl, n) = self.decode_echo(flow, &q.echo(version)?)?;
                Some((
                    ttl,
                    n,
                    from,
                    trace::classify_error(version, icmp_type, from, dst),
                ))
            }
            _ => None,
        }
    }
}

impl Tracer for IcmpProber {
    /// Traces every target with echo requests that keep the probes' identifier and checksum
    /// (Paris traceroute); one `path` per target, `sport` the echo identifier.
    fn trace_flows(&mut self, targets: &[Target], cfg: &TraceConfig) -> Result<Vec<TracedFlow>> {
        let mut ids = Vec::new();
        let mut flows = Vec::new();
        for (t, target) in targets.iter().enumerate() {
            let version = Version::of(&target.addr);
            let Some(s) = self.sockets.iter().find(|s| s.version == version) else {
                continue;
            };
            ids.push((t, target.addr, version, s.raw, s.wire_ident));
            flows.push(trace::TraceFlow {
                sock: &s.probe.sock,
                dst: target.socket_addr(0),
                tos: None,
            });
        }
        self.round = self.round.wrapping_add(1);
        let mut codec = TraceCodec {
            flows: ids.clone(),
            cookie: self.matcher.cookie,
            header_ident: self.matcher.ident,
            payload_len: self.matcher.payload_len,
            checksum: self.checksum,
            round: self.round,
            payload: Vec::new(),
        };
        let results = trace::trace(&flows, &mut codec, cfg)?;
        Ok(ids
            .into_iter()
            .zip(flows)
            .zip(results)
            .map(|(((t, _, _, _, ident), f), result)| {
                // `f.dst` is the target's address, port 0; the source is the probe records'.
                let src = socket::record_source(f.dst, &self.opts);
                TracedFlow::new(t, result, src, f.dst, "icmp", ident)
            })
            .collect())
    }

    fn followed(&mut self) -> &mut Option<trace::Followed> {
        &mut self.followed
    }
}

/// The identifier the kernel gives a datagram ICMP socket's echo requests: its port, given at
/// bind (bound here to the wildcard address unless `-I` bound it already).
fn datagram_ident(sock: &Socket, v6: bool) -> Result<u16> {
    let port = |s: &Socket| {
        s.local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or(0, |a| a.port())
    };
    if port(sock) == 0 {
        let any: std::net::SocketAddr = if v6 { "[::]:0" } else { "0.0.0.0:0" }
            .parse()
            .unwrap_or_else(|_| unreachable!());
        sock.bind(&any.into())
            .map_err(|e| anyhow!("cannot bind the ICMP socket: {e}"))?;
    }
    Ok(port(sock))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::trace::TraceCodec as _;

    fn codec(raw: bool) -> TraceCodec {
        let dst: IpAddr = "10.2.1.1".parse().unwrap();
        TraceCodec {
            flows: vec![
                (0, dst, Version::V4, raw, 0x4242),
                (1, dst, Version::V4, raw, 0x4242),
            ],
            cookie: 99,
            header_ident: 0x4242,
            payload_len: 56,
            checksum: Some(0x1234),
            round: 3,
            payload: Vec::new(),
        }
    }

    #[test]
    fn trace_probes_keep_the_checksum_and_are_known_by_round() {
        let mut c = codec(false);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        c.encode(0, 1, 0, &mut a);
        c.encode(0, 9, 2, &mut b);
        assert_eq!(&a[..6], &b[..6], "type, code, checksum and identifier");
        assert_ne!(a[6..8], b[6..8], "sequence numbers differ");
        assert_eq!(wire::checksum(&b), 0);
        assert_eq!(c.decode(0, &b), Some((9, 2)));
        assert_eq!(c.decode(1, &b), None, "another target's mark");
        assert_eq!(c.decode(0, &b[..8]), Some((9, 2)), "quoted header only");
        c.round = 4;
        assert_eq!(c.decode(0, &b), None, "the round before");
        assert_eq!(c.decode(0, &b[..8]), None, "the round before, header only");
    }

    #[test]
    fn raw_sockets_read_time_exceeded_and_echo_replies() {
        let mut c = codec(true);
        let mut probe = Vec::new();
        c.encode(0, 2, 1, &mut probe);
        let dst: IpAddr = "10.2.1.1".parse().unwrap();
        let router: IpAddr = "10.1.1.254".parse().unwrap();
        // IPv4 header + time exceeded quoting the probe's IP header and first 8 bytes.
        let ip = |src: [u8; 4], dst: [u8; 4], proto: u8, len: usize| {
            let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
            h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
            h.extend_from_slice(&src);
            h.extend_from_slice(&dst);
            h
        };
        let mut quoted = ip([10, 1, 1, 1], [10, 2, 1, 1], 1, probe.len());
        quoted.extend_from_slice(&probe[..8]);
        let mut err = vec![11, 0, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&quoted);
        let mut dgram = ip([10, 1, 1, 254], [10, 1, 1, 1], 1, err.len());
        dgram.extend_from_slice(&err);
        assert_eq!(
            c.decode_datagram(0, &dgram, router, dst),
            Some((2, 1, router, Answer::Hop))
        );
        let other: IpAddr = "10.9.9.9".parse().unwrap();
        assert_eq!(
            c.decode_datagram(0, &dgram, router, other),
            None,
            "to elsewhere"
        );
        // The echo reply of the destination.
        let mut reply = probe.clone();
        reply[0] = 0;
        let mut dgram = ip([10, 2, 1, 1], [10, 1, 1, 1], 1, reply.len());
        dgram.extend_from_slice(&reply);
        assert_eq!(
            c.decode_datagram(0, &dgram, dst, dst),
            Some((2, 1, dst, Answer::Destination))
        );
        c.flows[0].4 = 1;
        assert_eq!(
            c.decode_datagram(0, &dgram, dst, dst),
            None,
            "another identifier"
        );
    }
}
