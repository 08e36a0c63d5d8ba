//! TCP SYN probes (ltcp --syn): a hand-built SYN from a fixed source port on a raw socket; the
//! SYN-ACK (`open`) or RST (`refused`) answers it, timed by kernel stamps at both ends; a
//! SYN-ACK gets an RST back, so the target keeps no half-open connection. Port 0 works: a host
//! answers RST with no listener at all. Needs CAP_NET_RAW.
#![forbid(unsafe_code)]

use super::sock::ProbeSocket;
use super::tcp::TcpSpread;
use super::trace::{self, TraceConfig, TracedFlow, Tracer};
use super::{ProbeEvent, ProbeId, ProbeLookup, Prober, SendStamp};
use crate::net::socket::{self, SocketOptions};
use crate::net::Received;
use crate::record::Flow;
use crate::target::Target;
use crate::wire::ip::Ipv4Repr;
use crate::wire::tcp::{TcpRepr, ACK, HEADER_LEN, PROTO_TCP, RST, SYN};
use anyhow::{anyhow, Context, Result};
use mio::Token;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

struct RawTcp {
    probe: ProbeSocket,
    v6: bool,
}

/// What a sent SYN expects back.
#[derive(Clone, Copy)]
struct Pending {
    id: ProbeId,
    target: IpAddr,
    dport: u16,
    sport: u16,
}

pub struct SynProber {
    sockets: Vec<RawTcp>,
    spread: TcpSpread,
    sport_base: u16,
    tos: Option<u8>,
    /// The source address each target's SYNs leave from (for the checksum).
    sources: Vec<IpAddr>,
    /// In flight, by the sequence number the answer acknowledges (ours + 1).
    pending: HashMap<u32, Pending>,
    by_probe: HashMap<ProbeId, u32>,
    rng: u64,
    recv_buf: Vec<u8>,
    /// `--trace-every`: the paths followed.
    followed: Option<trace::Followed>,
    /// Trace rounds so far: each round's SYNs carry its number.
    round: u32,
}

impl SynProber {
    pub fn open(
        targets: &[Target],
        spread: TcpSpread,
        sport_base: u16,
        opts: &SocketOptions,
    ) -> Result<SynProber> {
        let mut sockets = Vec::new();
        for v6 in [false, true] {
            if !targets.iter().any(|t| t.addr.is_ipv6() == v6) {
                continue;
            }
            let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
            let sock = Socket::new(domain, Type::RAW, Some(Protocol::TCP)).map_err(|e| {
                if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                    anyhow!(
                        "--syn needs a raw socket, which needs CAP_NET_RAW: run as root or \
                         `setcap cap_net_raw+ep $(command -v ltcp)`"
                    )
                } else {
                    anyhow!("cannot open a raw TCP socket: {e}")
                }
            })?;
            sock.set_nonblocking(true)?;
            socket::enable_ancillary(&sock, v6, false)?;
            socket::apply_options(&sock, v6, opts)?;
            socket::size_receive_queue(&sock, 4 << 20);
            // ICMP errors about the SYNs (a router's time exceeded or unreachable, a
            // firewall's reject) come back on the error queue.
            set_recv_errors(&sock, v6, true)?;
            sockets.push(RawTcp {
                probe: ProbeSocket::new(sock, true),
                v6,
            });
        }
        let sources = targets
            .iter()
            .map(|t| source_for(t, opts))
            .collect::<Result<Vec<_>>>()?;
        Ok(SynProber {
            sockets,
            spread,
            sport_base,
            tos: opts.tos,
            sources,
            pending: HashMap::new(),
            by_probe: HashMap::new(),
            rng: crate::random::random_u64() | 1,
            recv_buf: vec![0; 65_536],
            followed: None,
            round: 0,
        })
    }

    fn next_isn(&mut self) -> u32 {
        // xorshift64: unpredictable enough that stray segments do not match a probe.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 16) as u32
    }

    fn send_segment(
        &mut self,
        v6: bool,
        src: IpAddr,
        dst: IpAddr,
        tcp: TcpRepr,
        id: ProbeId,
    ) -> io::Result<SendStamp> {
        let mut seg = [0u8; HEADER_LEN];
        tcp.emit(src, dst, &mut seg);
        let s = self
            .sockets
            .iter_mut()
            .find(|s| s.v6 == v6)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no socket for this address family",
                )
            })?;
        // An ICMP error left pending on a raw socket fails its next send; the error itself
        // waits on the error queue, for `drain`.
        let _ = s.probe.sock.take_error();
        s.probe.send(&seg, SocketAddr::new(dst, 0), id, None)
    }
}

/// The local address the kernel would send from to `t` (the SYNs carry it, and records show
/// it).
fn source_for(t: &Target, opts: &SocketOptions) -> Result<IpAddr> {
    socket::route_source(t.socket_addr(t.port), opts)
        .with_context(|| format!("no route to {}", t.name))
}

/// Bits of a trace SYN's sequence number that carry the round, TTL and probe
/// ([`trace::pack`]); the bits above are a per-process salt.
const TRACE_BITS: u32 = 18;

/// Hand-built SYNs as trace probes: flow `i` of the trace is `flows[i]`.
struct SynCodec {
    /// (source, destination, source port, destination port) per flow.
    flows: Vec<(IpAddr, IpAddr, u16, u16)>,
    salt: u32,
    round: u32,
}

impl SynCodec {
    fn isn(&self, ttl: u8, n: u8) -> u32 {
        self.salt << TRACE_BITS | trace::pack(self.round, ttl, n, TRACE_BITS)
    }

    /// The (TTL, probe) a sequence number of this round's trace SYNs stands for.
    fn decode_isn(&self, isn: u32) -> Option<(u8, u8)> {
        if isn >> TRACE_BITS != self.salt {
            return None;
        }
        let (round, ttl, n) = trace::unpack(isn & ((1 << TRACE_BITS) - 1), TRACE_BITS);
        trace::same_round(round, self.round, TRACE_BITS).then_some((ttl, n))
    }
}

impl trace::TraceCodec for SynCodec {
    fn encode(&mut self, flow: usize, ttl: u8, n: u8, buf: &mut Vec<u8>) {
        let Some(&(src, dst, sport, dport)) = self.flows.get(flow) else {
            return buf.clear();
        };
        let mut seg = [0u8; HEADER_LEN];
        TcpRepr {
            src_port: sport,
            dst_port: dport,
            seq: self.isn(ttl, n),
            ack: 0,
            flags: SYN,
            window: 64_240,
        }
        .emit(src, dst, &mut seg);
        buf.clear();
        buf.extend_from_slice(&seg);
    }

    /// The SYN as an ICMP error quotes it: its first 8 bytes at least (ports, sequence).
    fn decode(&self, flow: usize, data: &[u8]) -> Option<(u8, u8)> {
        let &(_, _, sport, dport) = self.flows.get(flow)?;
        let u16_at = |i: usize| Some(u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]));
        if u16_at(0)? != sport || u16_at(2)? != dport {
            return None;
        }
        let isn = u32::from_be_bytes(data.get(4..8)?.try_into().ok()?);
        self.decode_isn(isn)
    }

    /// The destination's SYN-ACK or RST, acknowledging a trace SYN.
    fn decode_datagram(
        &self,
        flow: usize,
        data: &[u8],
        from: IpAddr,
        dst: IpAddr,
    ) -> Option<(u8, u8, IpAddr, trace::Answer)> {
        let &(_, _, sport, dport) = self.flows.get(flow)?;
        if from.to_canonical() != dst.to_canonical() {
            return None;
        }
        // IPv4 raw sockets see the IP header; IPv6 ones only the segment.
        let segment = if dst.is_ipv4() {
            let (ip, rest) = Ipv4Repr::parse(data).ok()?;
            (ip.protocol == PROTO_TCP).then_some(rest)?
        } else {
            data
        };
        let tcp = TcpRepr::parse(segment).ok()?;
        if !(tcp.has(ACK) && (tcp.has(SYN) || tcp.has(RST)))
            || tcp.src_port != dport
            || tcp.dst_port != sport
        {
            return None;
        }
        let (ttl, n) = self.decode_isn(tcp.ack.wrapping_sub(1))?;
        Some((ttl, n, from, trace::Answer::Destination))
    }
}

impl Tracer for SynProber {
    /// Traces every flow to every target with hand-built SYNs from the flow's source port
    /// (only the TTL changes); ICMP errors come back on the raw socket's error queue
    /// (`IP_RECVERR`, on for the trace only), SYN-ACKs and RSTs as datagrams. The local stack
    /// resets the destination's half-open connection itself (no socket has the port).
    fn trace_flows(&mut self, targets: &[Target], cfg: &TraceConfig) -> Result<Vec<TracedFlow>> {
        let salt = (self.next_isn() >> 16) & ((1 << (32 - TRACE_BITS)) - 1);
        self.round = self.round.wrapping_add(1);
        let mut ids = Vec::new();
        let mut flows = Vec::new();
        for (t, target) in targets.iter().enumerate() {
            let v6 = target.addr.is_ipv6();
            let Some(s) = self.sockets.iter().find(|s| s.v6 == v6) else {
                continue;
            };
            for flow in 0..self.spread.flows.max(1) {
                let sport = self.sport_base.wrapping_add(flow);
                ids.push((t, self.sources[t], target.addr, sport, target.port));
                flows.push(trace::TraceFlow {
                    sock: &s.probe.sock,
                    dst: SocketAddr::new(target.addr, 0),
                    tos: self.tos,
                });
            }
        }
        let mut codec = SynCodec {
            flows: ids
                .iter()
                .map(|&(_, s, d, sp, dp)| (s, d, sp, dp))
                .collect(),
            salt,
            round: self.round,
        };
        let results = trace::trace(&flows, &mut codec, cfg);
        for s in &self.sockets {
            // A raw socket's pending error would fail the next send.
            let _ = s.probe.sock.take_error();
        }
        Ok(ids
            .into_iter()
            .zip(results?)
            .map(|((t, src, dst, sport, dport), result)| TracedFlow {
                target: t,
                path: result.to_path(src, dst, "tcp", sport, dport),
                result,
            })
            .collect())
    }

    fn followed(&mut self) -> &mut Option<trace::Followed> {
        &mut self.followed
    }
}

fn set_recv_errors(sock: &Socket, v6: bool, on: bool) -> Result<()> {
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVERR)
    };
    socket::setsockopt_int(
        std::os::fd::AsRawFd::as_raw_fd(sock),
        level,
        name,
        i32::from(on),
    )
    .context("cannot set IP_RECVERR on the raw socket")
}

impl Prober for SynProber {
    fn streams(&self) -> usize {
        usize::from(self.spread.flows.max(1))
    }

    fn flow(&self, target: &Target, _index: usize, stream: usize) -> Option<Flow> {
        Some(TcpSpread::flow(self.sport_base, target, stream, self.tos))
    }

    fn source(&self, _target: &Target, index: usize, _stream: usize) -> Option<IpAddr> {
        self.sources
            .get(index)
            .copied()
            .filter(|ip| !ip.is_unspecified())
    }

    fn dropped_local(&self) -> Vec<super::SocketDrops> {
        self.sockets
            .iter()
            .map(|s| super::SocketDrops {
                socket: format!(
                    "the raw TCP socket ({})",
                    if s.v6 { "IPv6" } else { "IPv4" }
                ),
                count: s.probe.dropped(),
                family: crate::wire::Family::from_v6(s.v6),
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
        let flow = ((id.seq - 1) % self.streams() as u64) as u16;
        let sport = self.sport_base.wrapping_add(flow);
        let isn = self.next_isn();
        let syn = TcpRepr {
            src_port: sport,
            dst_port: target.port,
            seq: isn,
            ack: 0,
            flags: SYN,
            window: 64_240,
        };
        let src = self.sources[id.target];
        let stamp = self.send_segment(target.addr.is_ipv6(), src, target.addr, syn, id)?;
        let expect = isn.wrapping_add(1);
        self.pending.insert(
            expect,
            Pending {
                id,
                target: target.addr,
                dport: target.port,
                sport,
            },
        );
        self.by_probe.insert(id, expect);
        Ok(stamp)
    }

    fn expired(&mut self, id: ProbeId) {
        if let Some(key) = self.by_probe.remove(&id) {
            self.pending.remove(&key);
        }
    }

    fn drain(&mut self, token: usize, _lookup: &dyn ProbeLookup, events: &mut Vec<ProbeEvent>) {
        let Some(s) = self.sockets.get_mut(token) else {
            return;
        };
        let v6 = s.v6;
        let mut answers: Vec<(Received, Instant, TcpRepr, Option<u8>)> = Vec::new();
        // ICMP errors, with the SYN they quote: its ports and sequence number.
        let mut errors = Vec::new();
        s.probe.drain(
            &mut self.recv_buf,
            events,
            |data, rx, _| {
                let u16_at =
                    |i: usize| Some(u16::from_be_bytes(data.get(i..i + 2)?.try_into().ok()?));
                let quoted = (|| {
                    let isn = u32::from_be_bytes(data.get(4..8)?.try_into().ok()?);
                    Some((u16_at(0)?, u16_at(2)?, isn))
                })();
                if let (Some(err), Some(q)) = (rx.anc.error, quoted) {
                    errors.push((err, rx.from, q));
                }
            },
            |data, rx, rx_mono, events| {
                // IPv4 raw sockets see the IP header; IPv6 ones only the segment.
                let (segment, ttl) = if v6 {
                    (data, rx.anc.ttl)
                } else {
                    match Ipv4Repr::parse(data) {
                        Ok((ip, rest)) if ip.protocol == PROTO_TCP => (rest, Some(ip.ttl)),
                        Ok(_) => return,
                        Err(e) => return events.push(ProbeEvent::Malformed(e)),
                    }
                };
                match TcpRepr::parse(segment) {
                    // Only answers to a SYN: SYN-ACK or RST, acknowledging a sequence number.
                    Ok(tcp) if tcp.has(ACK) && (tcp.has(SYN) || tcp.has(RST)) => {
                        answers.push((*rx, rx_mono, tcp, ttl))
                    }
                    Ok(_) => {}
                    Err(e) => events.push(ProbeEvent::Malformed(e)),
                }
            },
        );
        for (err, dst, (sport, dport, isn)) in errors {
            let key = isn.wrapping_add(1);
            let Some(p) = self.pending.get(&key).copied() else {
                continue;
            };
            // The quoted SYN must be the probe's, to the probe's destination.
            let to_target = dst.is_none_or(|d| d.to_canonical() == p.target.to_canonical());
            if !to_target || sport != p.sport || dport != p.dport {
                continue;
            }
            if let Some(event) =
                ProbeEvent::from_queued_error(p.id, crate::wire::Family::from_v6(v6), &err)
            {
                self.pending.remove(&key);
                self.by_probe.remove(&p.id);
                events.push(event);
            }
        }
        for (rx, rx_mono, tcp, ttl) in answers {
            let Some(p) = self.pending.get(&tcp.ack).copied() else {
                continue;
            };
            let Some(from) = rx.from else { continue };
            // The 4-tuple must be the probe's, reversed.
            if from != p.target || tcp.src_port != p.dport || tcp.dst_port != p.sport {
                continue;
            }
            self.pending.remove(&tcp.ack);
            self.by_probe.remove(&p.id);
            let open = tcp.has(SYN);
            if open {
                // Close the half-open connection on the target at once.
                let rst = TcpRepr {
                    src_port: p.sport,
                    dst_port: p.dport,
                    seq: tcp.ack,
                    ack: 0,
                    flags: RST,
                    window: 0,
                };
                let src = self.sources[p.id.target];
                let _ = self.send_segment(v6, src, from, rst, p.id);
            }
            events.push(ProbeEvent::Reply {
                id: p.id,
                from,
                rx_wall: rx.anc.rx_time,
                rx_mono,
                ttl,
                size: None,
                tos: rx.anc.tos,
                reflector: None,
                result: Some(if open { "open" } else { "refused" }),
                // One SYN per probe, never sent again.
                syn_retransmits: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::trace::TraceCodec as _;

    #[test]
    fn trace_syns_are_known_by_ports_salt_and_round() {
        let src: IpAddr = "fd10:1:1::1".parse().unwrap();
        let dst: IpAddr = "fd10:2:1::1".parse().unwrap();
        let mut c = SynCodec {
            flows: vec![(src, dst, 45000, 80), (src, dst, 45001, 80)],
            salt: 0x2abc,
            round: 77,
        };
        let mut seg = Vec::new();
        c.encode(1, 30, 3, &mut seg);
        let syn = TcpRepr::parse(&seg).unwrap();
        assert!(syn.has(SYN) && !syn.has(ACK));
        assert_eq!(
            c.decode(1, &seg[..8]),
            Some((30, 3)),
            "the 8 bytes an error quotes"
        );
        assert_eq!(c.decode(0, &seg[..8]), None, "another flow's ports");
        // The destination's RST, acknowledging the SYN (IPv6: the segment alone).
        let mut rst = [0u8; HEADER_LEN];
        TcpRepr {
            src_port: 80,
            dst_port: 45001,
            seq: 0,
            ack: syn.seq.wrapping_add(1),
            flags: RST | ACK,
            window: 0,
        }
        .emit(dst, src, &mut rst);
        assert_eq!(
            c.decode_datagram(1, &rst, dst, dst),
            Some((30, 3, dst, trace::Answer::Destination))
        );
        c.round = 78;
        assert_eq!(c.decode(1, &seg[..8]), None, "the round before");
        assert_eq!(c.decode_datagram(1, &rst, dst, dst), None);
        c.round = 77;
        c.salt = 1;
        assert_eq!(c.decode(1, &seg[..8]), None, "another run's SYN");
    }
}
