//! The per-flow UDP sockets of ludp and ltwamp: one socket per flow and address family, each
//! bound to its own source port (consecutive from `--sport`, or ephemeral but fixed for the
//! run), so the flows spread over ECMP paths; and the streams (flows × DSCP classes) the
//! engine probes in turn. What goes in the datagrams and how replies are matched stays with
//! each prober.
#![forbid(unsafe_code)]

use super::sock::ProbeSocket;
use super::trace::{self, TraceCodec, TraceConfig, TracedFlow};
use super::{ProbeId, SendStamp};
use crate::net::socket::{self, SocketOptions};
use crate::record::Flow;
use crate::target::Target;
use crate::wire::Family;
use anyhow::{Context, Result};
use mio::Token;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Largest UDP payload over IPv4.
pub const MAX_PAYLOAD: usize = 65_507;

/// How the probes are spread.
#[derive(Debug, Clone)]
pub struct FlowSpread {
    /// Number of flows (source ports).
    pub flows: u16,
    /// First source port; ephemeral ports when `None`.
    pub sport_base: Option<u16>,
    /// DSCP classes; every flow is probed in each. Empty: the socket's TOS (`-Q`) only.
    pub dscp: Vec<u8>,
}

/// One flow's socket.
pub struct FlowSocket {
    pub probe: ProbeSocket,
    pub flow: u16,
    pub family: Family,
    /// The source port it is bound to.
    pub sport: u16,
}

/// The socket a probe leaves from, and how it is marked.
#[derive(Debug, Clone, Copy)]
pub struct Selected {
    /// Index of the socket (its token, relative to the first).
    pub index: usize,
    pub flow: u16,
    /// The TOS byte of the probe's DSCP class; `None`: the socket's own (`-Q`).
    pub tos: Option<u8>,
}

/// One socket per flow and address family the targets need; socket `i` has token `first + i`.
pub struct FlowSockets {
    sockets: Vec<FlowSocket>,
    spread: FlowSpread,
    /// The options the sockets were opened with: the route a wildcard-bound flow takes
    /// depends on the interface and mark.
    opts: SocketOptions,
}

impl FlowSockets {
    /// Binds one socket per flow and address family the targets need.
    pub fn open(
        targets: &[Target],
        spread: FlowSpread,
        opts: &SocketOptions,
    ) -> Result<FlowSockets> {
        let flows = spread.flows.max(1);
        let mut sockets = Vec::new();
        for family in [Family::V4, Family::V6] {
            if !targets.iter().any(|t| Family::of(&t.addr) == family) {
                continue;
            }
            for flow in 0..flows {
                let port = match spread.sport_base {
                    Some(base) => base.checked_add(flow).with_context(|| {
                        format!("--sport {base} with {flows} flows runs past port 65535")
                    })?,
                    None => 0,
                };
                let sock = open_flow_socket(family.is_v6(), port, opts)?;
                let sport = sock
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .map(|a| a.port())
                    .unwrap_or(port);
                sockets.push(FlowSocket {
                    probe: ProbeSocket::new(sock, true),
                    flow,
                    family,
                    sport,
                });
            }
        }
        Ok(FlowSockets {
            sockets,
            spread,
            opts: opts.clone(),
        })
    }

    /// Traces every flow to every target with the flow's own socket (Paris traceroute: only
    /// the TTL changes); one [`TracedFlow`] per (target, flow), targets first. Trace probes carry
    /// the first `--dscp` class (or `-Q`): ECMP hashes the 5-tuple, not the DSCP. `codec` gets
    /// the traced flows as (target, flow id), in order, and writes and reads the probes.
    pub fn trace<C: TraceCodec>(
        &self,
        targets: &[Target],
        cfg: &TraceConfig,
        codec: impl FnOnce(Vec<(usize, u16)>) -> C,
    ) -> Result<Vec<TracedFlow>> {
        let tos = self.dscp().first().map(|d| d << 2);
        let mut ids = Vec::new();
        let mut flows = Vec::new();
        for (t, target) in targets.iter().enumerate() {
            for flow in 0..self.flows() {
                let Some(i) = self.index_of(flow, Family::of(&target.addr)) else {
                    continue;
                };
                ids.push((t, flow, i));
                flows.push(trace::TraceFlow {
                    sock: &self.sockets[i].probe.sock,
                    dst: target.socket_addr(target.port),
                    tos,
                });
            }
        }
        let mut codec = codec(ids.iter().map(|&(t, flow, _)| (t, flow)).collect());
        let results = trace::trace(&flows, &mut codec, cfg)?;
        Ok(ids
            .into_iter()
            .zip(flows)
            .zip(results)
            .map(|(((t, flow, i), f), result)| {
                // The source of the flow's probe records (stream `flow` is the flow in the
                // first class).
                let src = self.source(&targets[t], usize::from(flow));
                TracedFlow::new(t, result, src, f.dst, "udp", self.sockets[i].sport)
            })
            .collect())
    }

    /// Number of flows (at least one).
    pub fn flows(&self) -> u16 {
        self.spread.flows.max(1)
    }

    /// The DSCP classes every flow is probed in (none: the socket's TOS only).
    pub fn dscp(&self) -> &[u8] {
        &self.spread.dscp
    }

    /// Streams per target: flows × DSCP classes.
    pub fn streams(&self) -> usize {
        usize::from(self.flows()) * self.spread.dscp.len().max(1)
    }

    /// (flow, DSCP) of stream `stream`: flows first, so consecutive probes change flow.
    pub fn stream_class(&self, stream: usize) -> (u16, Option<u8>) {
        let flows = usize::from(self.flows());
        let flow = (stream % flows) as u16;
        let dscp = self.spread.dscp.get(stream / flows).copied();
        (flow, dscp)
    }

    /// Index of the socket of `flow` in the family (IPv6 or not).
    pub fn index_of(&self, flow: u16, family: Family) -> Option<usize> {
        self.sockets
            .iter()
            .position(|s| s.flow == flow && s.family == family)
    }

    /// Socket `index` (a token relative to the first), to drain.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut FlowSocket> {
        self.sockets.get_mut(index)
    }

    /// The flow of stream `stream` to `target`, for records.
    pub fn flow(&self, target: &Target, stream: usize) -> Option<Flow> {
        let (flow, dscp) = self.stream_class(stream);
        let sport = self
            .index_of(flow, Family::of(&target.addr))
            .map(|i| self.sockets[i].sport)?;
        Some(Flow {
            sport,
            dport: target.port,
            dscp,
        })
    }

    /// The local address stream `stream`'s probes to `target` leave from: the address its
    /// socket is bound to, else the kernel's source for the route to the target.
    pub fn source(&self, target: &Target, stream: usize) -> Option<IpAddr> {
        let (flow, _) = self.stream_class(stream);
        let sock = &self.sockets[self.index_of(flow, Family::of(&target.addr))?];
        trace::bound_ip(&sock.probe.sock)
            .filter(|ip| !ip.is_unspecified())
            .or_else(|| socket::record_source(target.socket_addr(target.port), &self.opts))
    }

    /// What the kernel dropped on each flow's socket (`kind`: "UDP", "TWAMP").
    pub fn dropped_local(&self, kind: &str) -> Vec<super::SocketDrops> {
        self.sockets
            .iter()
            .map(|s| super::SocketDrops {
                socket: format!(
                    "the {kind} socket of flow {} (source port {}, {})",
                    s.flow,
                    s.sport,
                    s.family.name()
                ),
                count: s.probe.dropped(),
                family: s.family,
                sport: Some(s.sport),
            })
            .collect()
    }

    /// Registers the sockets with the poll, using tokens `first..first + n`; returns `n`.
    pub fn register(&self, registry: &mio::Registry, first: usize) -> io::Result<usize> {
        for (i, s) in self.sockets.iter().enumerate() {
            s.probe.register(registry, Token(first + i))?;
        }
        Ok(self.sockets.len())
    }

    /// The socket and class of the target's probe `seq` (its stream is (seq − 1) mod streams).
    pub fn select(&self, target: &Target, seq: u64) -> io::Result<Selected> {
        let stream = ((seq - 1) % self.streams() as u64) as usize;
        let (flow, dscp) = self.stream_class(stream);
        let index = self
            .index_of(flow, Family::of(&target.addr))
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no socket for this flow"))?;
        Ok(Selected {
            index,
            flow,
            tos: dscp.map(|d| d << 2),
        })
    }

    /// Sends probe `id` to `target` from the socket `select` chose.
    pub fn send(
        &mut self,
        selected: &Selected,
        packet: &[u8],
        target: &Target,
        id: ProbeId,
    ) -> io::Result<SendStamp> {
        self.sockets[selected.index].probe.send(
            packet,
            target.socket_addr(target.port),
            id,
            selected.tos,
        )
    }
}

impl std::ops::Index<usize> for FlowSockets {
    type Output = FlowSocket;

    fn index(&self, index: usize) -> &FlowSocket {
        &self.sockets[index]
    }
}

fn open_flow_socket(v6: bool, port: u16, opts: &SocketOptions) -> Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .context("cannot open a UDP socket")?;
    if v6 {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    socket::enable_ancillary(&sock, v6, true)?;
    let mut opts = opts.clone();
    let source = opts.source.take().filter(|s| s.is_ipv6() == v6);
    socket::apply_options(&sock, v6, &opts)?;
    let ip = source.unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let local = SocketAddr::new(ip, port);
    sock.bind(&SockAddr::from(local)).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            anyhow::anyhow!("cannot bind {local}: port {port} is in use; pick another --sport")
        } else {
            anyhow::anyhow!("cannot bind {local}: {e}")
        }
    })?;
    socket::size_receive_queue(&sock, 1 << 20);
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_change_flow_first() {
        let sockets = FlowSockets {
            sockets: Vec::new(),
            spread: FlowSpread {
                flows: 3,
                sport_base: None,
                dscp: vec![46, 8],
            },
            opts: SocketOptions::default(),
        };
        assert_eq!(sockets.streams(), 6);
        let classes: Vec<_> = (0..6).map(|s| sockets.stream_class(s)).collect();
        assert_eq!(
            classes,
            [
                (0, Some(46)),
                (1, Some(46)),
                (2, Some(46)),
                (0, Some(8)),
                (1, Some(8)),
                (2, Some(8))
            ]
        );
    }
}
