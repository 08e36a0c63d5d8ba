//! UDP echo probes (ludp): one socket per flow (a fixed source port), probes spread
//! round-robin over flows and DSCP classes, replies matched on the echoed ludp payload, ICMP
//! errors read from the error queue (`IP_RECVERR`), so no raw socket is needed. Against
//! lreflect, whose answers carry its counts of each flow's probes, lost probes are placed on
//! the way there or back, and those it refused counted apart, by the same sessions as
//! ltwamp's ([`super::twamp::direction`]): a session is a target and a flow.
#![forbid(unsafe_code)]

use super::flows::{FlowSockets, FlowSpread};
use super::trace::{self, TraceConfig, TracedFlow, Tracer};
use super::twamp::direction::Tracker;
use super::{ProbeEvent, ProbeId, ProbeLookup, Prober, ReflectorTimes, SendStamp};
use crate::net::socket::SocketOptions;
use crate::net::Received;
use crate::record::Flow;
use crate::target::Target;
use crate::wire::ludp_payload::{ProbeRepr, ReflectorStamps};
use crate::wire::Family;
use anyhow::{bail, Result};
use std::io;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sends ludp probes and matches their echoes.
pub struct UdpProber {
    sockets: FlowSockets,
    cookie: u32,
    payload: Vec<u8>,
    recv_buf: Vec<u8>,
    /// `--trace-every`: what to trace again, how, how often, and the paths so far.
    followed: Option<trace::Followed>,
    /// Trace rounds so far: each round's probes carry its number.
    round: u32,
    /// Loss placed by direction, once a reflector's answers carry its counts.
    tracker: Tracker,
}

impl UdpProber {
    /// Binds one socket per flow and address family the targets need.
    pub fn open(
        targets: &[Target],
        spread: FlowSpread,
        payload_len: usize,
        opts: &SocketOptions,
    ) -> Result<UdpProber> {
        let sockets = FlowSockets::open(targets, spread, opts)?;
        let cookie = crate::random::random_u64() as u32;
        let tracker = Tracker::new(targets, sockets.flows(), sockets.streams(), true, false);
        Ok(UdpProber {
            tracker,
            sockets,
            cookie,
            payload: vec![0; payload_len],
            recv_buf: vec![0; 65_536],
            followed: None,
            round: 0,
        })
    }
}

/// Trace probes carry this bit in their sequence number (measurement probes count from 1 and
/// never reach it), and the round, TTL and probe in the low 32 bits ([`trace::pack`]).
const TRACE_SEQ: u64 = 1 << 63;

/// The ludp payload as trace probes: flow `i` of the trace is `flows[i]` (target, flow id).
struct TraceCodec {
    flows: Vec<(usize, u16)>,
    cookie: u32,
    len: usize,
    round: u32,
}

impl trace::TraceCodec for TraceCodec {
    fn encode(&mut self, flow: usize, ttl: u8, n: u8, buf: &mut Vec<u8>) {
        let (target, flow) = self.flows.get(flow).copied().unwrap_or_default();
        buf.clear();
        buf.resize(self.len, 0);
        let sent_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        // Left out of the reflector's counts: a trace probe that reaches it is no probe of the
        // flow's sessions.
        ProbeRepr {
            flow,
            seq: TRACE_SEQ | u64::from(trace::pack(self.round, ttl, n, 32)),
            sent_ns,
            cookie: self.cookie,
            target: target as u32,
        }
        .emit_uncounted(buf);
    }

    fn decode(&self, flow: usize, data: &[u8]) -> Option<(u8, u8)> {
        let (target, flow) = self.flows.get(flow).copied()?;
        let (repr, _) = ProbeRepr::parse(data).ok()?;
        if repr.cookie != self.cookie
            || repr.flow != flow
            || repr.target as usize != target
            || repr.seq & TRACE_SEQ == 0
        {
            return None;
        }
        let (round, ttl, n) = trace::unpack(repr.seq as u32, 32);
        trace::same_round(round, self.round, 32).then_some((ttl, n))
    }
}

impl Tracer for UdpProber {
    /// Traces every flow to every target with the flow's own socket ([`FlowSockets::trace`]).
    /// After a round during the run, the loss placement starts afresh ([`Tracker::resync`]): a
    /// run of lost probes open at the round would otherwise be placed in the next path sample,
    /// perhaps another path's. (Before the first probe there is nothing to forget, and lreflect
    /// does not count trace probes, so a flow's first answer still starts a new session.)
    fn trace_flows(&mut self, targets: &[Target], cfg: &TraceConfig) -> Result<Vec<TracedFlow>> {
        self.round = self.round.wrapping_add(1);
        let (cookie, len, round) = (self.cookie, self.payload.len(), self.round);
        let traced = self.sockets.trace(targets, cfg, |flows| TraceCodec {
            flows,
            cookie,
            len,
            round,
        });
        if self.round > 1 {
            self.tracker.resync();
        }
        traced
    }

    fn followed(&mut self) -> &mut Option<trace::Followed> {
        &mut self.followed
    }
}

fn ns_time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

impl Prober for UdpProber {
    fn streams(&self) -> usize {
        self.sockets.streams()
    }

    fn flow(&self, target: &Target, _index: usize, stream: usize) -> Option<Flow> {
        self.sockets.flow(target, stream)
    }

    fn source(&self, target: &Target, _index: usize, stream: usize) -> Option<IpAddr> {
        self.sockets.source(target, stream)
    }

    fn dropped_local(&self) -> Vec<super::SocketDrops> {
        self.sockets.dropped_local("UDP")
    }

    fn register(&mut self, registry: &mio::Registry, first: usize) -> io::Result<usize> {
        self.sockets.register(registry, first)
    }

    fn send(&mut self, target: &Target, id: ProbeId) -> io::Result<SendStamp> {
        let selected = self.sockets.select(target, id.seq)?;
        let sent_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        ProbeRepr {
            flow: selected.flow,
            seq: id.seq,
            sent_ns,
            cookie: self.cookie,
            target: id.target as u32,
        }
        .emit(&mut self.payload);
        self.tracker.sent(id);
        let sent = self.sockets.send(&selected, &self.payload, target, id);
        if sent.is_err() {
            // Never left: the engine counts it unreachable, and no run includes it.
            self.tracker.unanswered(id, false);
        }
        sent
    }

    fn expired(&mut self, id: ProbeId) {
        self.tracker.unanswered(id, true);
    }

    fn pending_events(&mut self, events: &mut Vec<ProbeEvent>) {
        self.tracker.take_pending(events);
    }

    fn drain(&mut self, token: usize, _lookup: &dyn ProbeLookup, events: &mut Vec<ProbeEvent>) {
        let start = events.len();
        self.drain_socket(token, events);
        // Loss placed by what came in: after the replies, so the engine counts them first.
        let mut placed = Vec::new();
        self.tracker.take_pending(&mut placed);
        for event in &events[start..] {
            match event {
                ProbeEvent::Reply { id, reflector, .. } => {
                    match reflector.and_then(|r| Some((r.seq?, r.refused))) {
                        Some((seq, refused)) => {
                            self.tracker.answered(*id, seq, refused, true, &mut placed)
                        }
                        // A reflector that does not count: nothing to place this probe by.
                        None => self.tracker.unanswered(*id, false),
                    }
                }
                ProbeEvent::Error { id, .. } => self.tracker.unanswered(*id, false),
                _ => continue,
            }
            self.tracker.take_pending(&mut placed);
        }
        events.append(&mut placed);
    }
}

impl UdpProber {
    /// Reads socket `token`: answers and queued errors into `events`.
    fn drain_socket(&mut self, token: usize, events: &mut Vec<ProbeEvent>) {
        let cookie = self.cookie;
        let Some(s) = self.sockets.get_mut(token) else {
            return;
        };
        let (flow, family) = (s.flow, s.family);
        let ours = |payload: &[u8]| -> Option<(ProbeId, Option<ReflectorStamps>)> {
            let (repr, stamps) = ProbeRepr::parse(payload).ok()?;
            (repr.cookie == cookie && repr.flow == flow).then_some((
                ProbeId {
                    target: repr.target as usize,
                    seq: repr.seq,
                },
                stamps,
            ))
        };
        s.probe.drain(
            &mut self.recv_buf,
            events,
            |data, rx, events| queued_error(data, rx, family, &ours, events),
            |data, rx, rx_mono, events| match (ours(data), rx.from) {
                (Some((id, stamps)), Some(from)) => events.push(ProbeEvent::Reply {
                    id,
                    from,
                    rx_wall: rx.anc.rx_time,
                    rx_mono,
                    ttl: rx.anc.ttl,
                    size: Some(data.len()),
                    tos: rx.anc.tos,
                    reflector: stamps.map(|st| ReflectorTimes {
                        rx: ns_time(st.rx_ns),
                        tx: ns_time(st.tx_ns),
                        tos: Some(st.tos),
                        synced: st.synced,
                        // The flow's probes the reflector received before this one: its
                        // number of this probe, as a stateful TWAMP reflector's.
                        seq: st.counts.map(|c| c.received.wrapping_sub(1)),
                        refused: st.counts.map(|c| c.refused),
                        ttl: None,
                        net_of_hold: false,
                        tlv: None,
                    }),
                    result: None,
                    syn_retransmits: None,
                }),
                _ => events.push(ProbeEvent::Malformed(crate::wire::Error::NotOurs)),
            },
        );
    }
}

type Ours<'a> = dyn Fn(&[u8]) -> Option<(ProbeId, Option<ReflectorStamps>)> + 'a;

/// An error-queue entry: the kernel hands back our datagram's payload with the ICMP error
/// (port or host unreachable, time exceeded) or local error that answered it.
fn queued_error(
    data: &[u8],
    rx: &Received,
    family: Family,
    ours: &Ours,
    events: &mut Vec<ProbeEvent>,
) {
    let Some(err) = rx.anc.error else { return };
    let Some((id, _)) = ours(data) else { return };
    events.extend(ProbeEvent::from_queued_error(id, family, &err));
}

/// Refuses a payload too short to carry the probe.
pub fn check_payload_len(len: usize) -> Result<()> {
    if len < crate::wire::ludp_payload::BASE_LEN {
        bail!(
            "--size {len} is too small: ludp needs at least {} bytes",
            crate::wire::ludp_payload::BASE_LEN
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::trace::TraceCodec as _;

    #[test]
    fn trace_probes_are_known_by_flow_and_round() {
        let mut codec = TraceCodec {
            flows: vec![(0, 3), (1, 3)],
            cookie: 7,
            len: 64,
            round: 5,
        };
        let mut buf = Vec::new();
        codec.encode(1, 12, 2, &mut buf);
        assert_eq!(buf.len(), 64);
        assert_eq!(codec.decode(1, &buf), Some((12, 2)));
        assert_eq!(codec.decode(0, &buf), None, "another target");
        // Quoted by an ICMP error up to the cookie only: still told apart.
        assert_eq!(codec.decode(1, &buf[..40]), Some((12, 2)));
        codec.round = 6;
        assert_eq!(codec.decode(1, &buf), None, "an answer to the round before");
        // A measurement probe of the flow is not a trace probe.
        let mut probe = vec![0; 64];
        ProbeRepr {
            flow: 3,
            seq: 12 << 8 | 2,
            sent_ns: 0,
            cookie: 7,
            target: 1,
        }
        .emit(&mut probe);
        codec.round = 5;
        assert_eq!(codec.decode(1, &probe), None);
    }
}
