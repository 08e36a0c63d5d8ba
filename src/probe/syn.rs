//! TCP SYN probes (ltcp --syn): a hand-built SYN from a fixed source port on a raw socket; the
//! SYN-ACK (`open`) or RST (`refused`) answers it, timed by kernel stamps at both ends; a
//! SYN-ACK gets an RST back, so the target keeps no half-open connection. Port 0 works: a host
//! answers RST with no listener at all. Needs CAP_NET_RAW.

use super::sock::ProbeSocket;
use super::tcp::TcpSpread;
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
use std::net::{IpAddr, SocketAddr, UdpSocket};
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
            let _ = sock.set_recv_buffer_size(4 << 20);
            sockets.push(RawTcp {
                probe: ProbeSocket::new(sock, false),
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
            rng: super::icmp::random_u64() | 1,
            recv_buf: vec![0; 65_536],
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
        s.probe.send(&seg, SocketAddr::new(dst, 0), id, None)
    }
}

/// The local address the kernel would send from to `t`: a connected UDP socket tells.
fn source_for(t: &Target, opts: &SocketOptions) -> Result<IpAddr> {
    if let Some(src) = opts.source.filter(|s| s.is_ipv6() == t.addr.is_ipv6()) {
        return Ok(src);
    }
    let any: SocketAddr = if t.addr.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()
    .unwrap_or_else(|_| unreachable!());
    let udp = UdpSocket::bind(any)?;
    if let Some(dev) = &opts.device {
        socket2::SockRef::from(&udp)
            .bind_device(Some(dev.as_bytes()))
            .with_context(|| format!("cannot bind to interface {dev}"))?;
    }
    udp.connect(t.socket_addr(t.port.max(1)))
        .with_context(|| format!("no route to {}", t.name))?;
    Ok(udp.local_addr()?.ip())
}

impl Prober for SynProber {
    fn streams(&self) -> usize {
        usize::from(self.spread.flows.max(1))
    }

    fn flow(&self, target: &Target, _index: usize, stream: usize) -> Option<Flow> {
        Some(TcpSpread::flow(self.sport_base, target, stream, self.tos))
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
        s.probe.drain(
            &mut self.recv_buf,
            events,
            |_, _, _| {},
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
            });
        }
    }
}
