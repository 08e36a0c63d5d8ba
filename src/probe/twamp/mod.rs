//! TWAMP-Light and STAMP Session-Sender probes (ltwamp): one socket per flow (a fixed source
//! port), as ludp's; STAMP base packets, or TWAMP-Light ones under 44 bytes; replies of any
//! Session-Reflector matched on the socket they came to, the reflector's address, the echoed
//! sender sequence number and the echoed T1; and, against a stateful reflector, lost probes
//! placed on the way there or back ([`direction`]).
//!
//! A session is a target and a flow (one source port, every DSCP class). Its sender sequence
//! numbers count from 0 without gaps (RFC 8762 4.2.1): probe `n` of flow `f` is the target's
//! probe `n × flows + f + 1`, because the engine gives the flows their probes in turn.
#![forbid(unsafe_code)]

mod answer;
pub mod direction;

use super::flows::{FlowSockets, FlowSpread};
use super::trace::{self, TraceConfig, TracedFlow, Tracer};
use super::{ProbeEvent, ProbeId, ProbeLookup, Prober, SendStamp};
use crate::clock::ClockState;
use crate::net::socket::SocketOptions;
use crate::record::Flow;
use crate::target::Target;
use crate::twamp_control::test_packet::{self, TestKeys};
use crate::wire::ntp::{Format, Timestamp};
use crate::wire::stamp_tlv::{self, Answer};
use crate::wire::twamp::{ReflectorPacket, SenderPacket, SENDER_MIN_LEN, STAMP_LEN};
use crate::wire::Family;
use answer::{reply, Numbers};
use anyhow::{bail, Result};
use direction::Tracker;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The TWAMP test port (RFC 8545 assigns 862 to TWAMP-Light and STAMP alike).
pub const DEFAULT_PORT: u16 = 862;

/// How ltwamp reads the sequence numbers of a reflector's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReflectorMode {
    /// Stateless until an answer's number differs from the probe's, then stateful.
    Auto,
    /// The reflector numbers its answers per session: place loss from the first probe.
    Stateful,
    /// The reflector copies the probe's number: never place loss.
    Stateless,
}

/// What ltwamp sends and how it reads the answers.
#[derive(Debug, Clone)]
pub struct TwampConfig {
    /// Flows (source ports) and DSCP classes, as ludp's.
    pub spread: FlowSpread,
    /// UDP payload bytes: at least 14; 44 or more is a STAMP packet, less a TWAMP-Light one.
    pub size: usize,
    /// STAMP Session-Sender Identifier (RFC 8972); 0 when none is given.
    pub ssid: u16,
    pub reflector: ReflectorMode,
    /// The run's interval and timeout, which bound how many probes a reply may answer.
    pub interval: Duration,
    pub timeout: Duration,
    /// The STAMP TLVs (RFC 8972) each probe carries; `None`: `--tlv` not given (the Direct
    /// Measurement TLV in STAMP packets, nothing in TWAMP-Light ones).
    pub tlv: Option<TlvChoice>,
}

/// The STAMP TLVs ltwamp sends (`--tlv`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlvChoice {
    pub padding: bool,
    pub location: bool,
    pub timestamp: bool,
    pub cos: bool,
    pub direct: bool,
}

impl TlvChoice {
    /// What ltwamp sends when `--tlv` is not given: the Direct Measurement TLV, so the
    /// reflector's counters split the loss by direction and tell its refusals apart. A
    /// reflector that knows no TLVs copies it back with the U flag set (RFC 8972 §4), and the
    /// answer is read as before.
    pub const DEFAULT: TlvChoice = TlvChoice {
        padding: false,
        location: false,
        timestamp: false,
        cos: false,
        direct: true,
    };

    pub fn is_empty(&self) -> bool {
        *self == TlvChoice::default()
    }
}

/// Parses `--tlv`: a comma-separated list of padding, location, timestamp, cos, direct, or
/// none.
pub fn parse_tlv(s: &str) -> Result<TlvChoice, String> {
    let mut c = TlvChoice::default();
    for word in s.split(',').map(str::trim) {
        match word {
            "none" => {}
            "padding" => c.padding = true,
            "location" => c.location = true,
            "timestamp" => c.timestamp = true,
            "cos" => c.cos = true,
            "direct" => c.direct = true,
            _ => {
                return Err(format!(
                    "'{word}' is no TLV: give padding, location, timestamp, cos, direct or none"
                ))
            }
        }
    }
    Ok(c)
}

/// The probe packet for `size` and `tlv`: its bytes (sequence number, T1 and SSID still to
/// write) and where the per-probe TLV fields are. TLVs make the packet longer than `size`
/// when they need the room; when `size` is longer than they are, an Extra Padding TLV fills
/// the rest (zeros there would read as TLVs).
pub fn probe_packet(size: usize, tlv: Option<TlvChoice>) -> Result<(Vec<u8>, stamp_tlv::Offsets)> {
    let choice = match tlv {
        Some(c) if !c.is_empty() && size < STAMP_LEN => {
            bail!("--tlv needs a STAMP packet: --size {STAMP_LEN} or more (it is {size})")
        }
        Some(c) => c,
        None if size < STAMP_LEN => TlvChoice::default(),
        None => TlvChoice::DEFAULT,
    };
    if choice.is_empty() {
        return Ok((vec![0; size], stamp_tlv::Offsets::default()));
    }
    let mut req = stamp_tlv::Request {
        location: choice.location,
        timestamp: choice.timestamp,
        cos: choice.cos.then_some(0),
        direct: choice.direct,
        padding: None,
    };
    let extra = size.saturating_sub(STAMP_LEN + req.len_without_padding());
    if choice.padding || extra > 0 {
        req.padding = Some(extra.saturating_sub(stamp_tlv::HEADER));
    }
    let mut packet = vec![0; STAMP_LEN];
    let at = req.write(&mut packet);
    Ok((packet, at))
}

/// Refuses sizes and SSIDs that make no TWAMP packet.
pub fn check_config(size: usize, ssid: Option<u16>) -> Result<()> {
    if size < SENDER_MIN_LEN {
        bail!(
            "--size {size} is too small: a TWAMP-Light packet has at least {SENDER_MIN_LEN} bytes"
        );
    }
    if ssid.is_some() && size < STAMP_LEN {
        bail!("--ssid needs a STAMP packet: --size {STAMP_LEN} or more (it is {size})");
    }
    Ok(())
}

/// What ltwamp keeps per target.
struct Peer {
    /// T1 of recent probes: slot `seq mod len` holds (seq, T1 as sent).
    sent: Vec<(u64, Timestamp)>,
    /// Probes sent per flow: the next sender sequence number of each session.
    next: Vec<u64>,
}

/// Sends TWAMP-Light / STAMP test packets and matches the reflectors' answers.
pub struct TwampProber {
    sockets: FlowSockets,
    cfg: TwampConfig,
    peers: Vec<Peer>,
    by_addr: HashMap<IpAddr, Vec<usize>>,
    packet: Vec<u8>,
    recv_buf: Vec<u8>,
    /// Our Error Estimate, read from the kernel at most once a second.
    clock: Option<(Instant, u16)>,
    /// Loss placed by direction (not with `--reflector stateless`, nor for a reflector listed
    /// twice); stateful given, or judged in auto mode.
    tracker: Tracker,
    /// Where the per-probe TLV fields of `packet` are.
    tlv_at: stamp_tlv::Offsets,
    /// The probes carry TLVs: answers are read for theirs.
    tlvs: bool,
    /// The TOS of sockets without a DSCP class of their own (`-Q`).
    default_tos: Option<u8>,
    /// Marks this process's trace probes (their T1's seconds).
    cookie: u32,
    /// `--trace-every`: what to trace again, how, how often, and the paths so far.
    followed: Option<trace::Followed>,
    /// Trace rounds so far: each round's probes carry its number.
    round: u32,
    /// The test keys of keyed TWAMP-Control sessions by (target, flow): each DSCP class's.
    /// Empty unless [`TwampProber::use_keys`] gave some.
    keys: HashMap<(usize, u16), Vec<(u8, TestKeys)>>,
}

/// Probes remembered per target beyond those a reply may still answer: the engine keeps this
/// many settled probes to recognise duplicates and late replies.
const HISTORY: u64 = 256 + 64;

impl TwampProber {
    /// The source port of `flow`'s socket of one address family.
    pub fn sport(&self, flow: u16, family: Family) -> Option<u16> {
        self.sockets
            .index_of(flow, family)
            .map(|i| self.sockets[i].sport)
    }

    /// Binds one socket per flow and address family the targets need.
    pub fn open(targets: &[Target], cfg: TwampConfig, opts: &SocketOptions) -> Result<TwampProber> {
        check_config(cfg.size, (cfg.ssid != 0).then_some(cfg.ssid))?;
        if let Some(t) = targets.iter().find(|t| t.port == 0) {
            bail!("{}: UDP port 0 cannot be probed", t.name);
        }
        let sockets = FlowSockets::open(targets, cfg.spread.clone(), opts)?;
        let flows = sockets.flows();
        // A reply may answer any probe of the last timeout, and the engine still knows
        // HISTORY settled ones before those.
        let in_flight = cfg.timeout.as_nanos() / cfg.interval.as_nanos().max(1) + 1;
        let ring = (in_flight.min(1 << 16) as u64 + HISTORY).next_power_of_two() as usize;
        let streams = sockets.streams();
        let mut by_addr: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        for (t, target) in targets.iter().enumerate() {
            by_addr
                .entry(target.addr.to_canonical())
                .or_default()
                .push(t);
        }
        let peers = targets
            .iter()
            .map(|_| Peer {
                sent: vec![(0, Timestamp::default()); ring],
                next: vec![0; usize::from(flows)],
            })
            .collect();
        let tracker = Tracker::new(
            targets,
            flows,
            streams,
            cfg.reflector != ReflectorMode::Stateless,
            cfg.reflector == ReflectorMode::Stateful,
        );
        let (packet, tlv_at) = probe_packet(cfg.size, cfg.tlv)?;
        Ok(TwampProber {
            sockets,
            tlvs: packet.len() > STAMP_LEN,
            packet,
            tlv_at,
            default_tos: opts.tos,
            cfg,
            peers,
            by_addr,
            recv_buf: vec![0; 65_536],
            clock: None,
            tracker,
            cookie: crate::random::random_u64() as u32,
            followed: None,
            round: 0,
            keys: HashMap::new(),
        })
    }

    /// Sends the keyed layout of an authenticated or encrypted TWAMP-Control session (RFC
    /// 5357 4.1.2) under these keys, (target, flow, DSCP class, keys) each, and reads
    /// answers in the keyed reflector layout: one that verifies under none of its flow's
    /// keys is malformed. No keys: nothing changes. The packet is the keyed one padded to
    /// `--size` (at least 48 bytes), without STAMP TLVs.
    pub fn use_keys(&mut self, keys: Vec<(usize, u16, u8, TestKeys)>) {
        if keys.is_empty() {
            return;
        }
        for (target, flow, dscp, k) in keys {
            self.keys.entry((target, flow)).or_default().push((dscp, k));
        }
        self.packet = vec![0; self.cfg.size.max(test_packet::SENDER_LEN)];
        self.tlv_at = stamp_tlv::Offsets::default();
        self.tlvs = false;
    }

    fn flows(&self) -> u64 {
        u64::from(self.sockets.flows())
    }

    /// Our Error Estimate field (S bit and error bound from `adjtimex`), read again after a
    /// second.
    fn error_estimate(&mut self) -> u16 {
        let now = Instant::now();
        match self.clock {
            Some((at, raw)) if now.duration_since(at) < Duration::from_secs(1) => raw,
            _ => {
                let raw = ClockState::read().error_estimate().encode();
                self.clock = Some((now, raw));
                raw
            }
        }
    }

    /// (flow, session index) of the target's probe `seq`.
    fn session_of(&self, seq: u64) -> (usize, u64) {
        self.tracker.session_of(seq)
    }

    /// Probe `id` was answered with the reflector's number `reflector_seq` (and its count of
    /// refusals, from a Direct Measurement TLV).
    fn answered(&mut self, id: ProbeId, numbers: Numbers, out: &mut Vec<ProbeEvent>) {
        let (_, n) = self.session_of(id.seq);
        // A stateless reflector copies the sender's number: one that does not counts itself.
        // Direct Measurement counters count per session whatever the reflector's numbering.
        let shows = self.cfg.reflector == ReflectorMode::Auto
            && (numbers.refused.is_some() || numbers.seq != n as u32);
        self.tracker
            .answered(id, numbers.seq, numbers.refused, shows, out);
    }

    /// Probe `id` timed out (`lost`) or was answered by an error (not `lost`).
    fn unanswered(&mut self, id: ProbeId, lost: bool) {
        self.tracker.unanswered(id, lost);
    }
}

/// TWAMP test packets as trace probes: flow `i` of the trace is `flows[i]` (target, flow id).
/// A trace probe's T1 is no time: its seconds are the process's cookie and its fraction (and
/// its sequence number) the round, TTL and probe ([`trace::pack`]), so the reflector's answer
/// (which echoes both) and an ICMP error quoting the probe both tell which it was; measurement
/// probes carry the clock, whose seconds are never the cookie but by a 1 in 2^32 chance.
struct TraceCodec {
    flows: Vec<(usize, u16)>,
    cookie: u32,
    len: usize,
    ssid: Option<u16>,
    round: u32,
}

impl TraceCodec {
    /// The (TTL, probe) that a T1 and sequence number of this round say, if they are ours.
    fn unpack(&self, seq: u32, t1: Timestamp) -> Option<(u8, u8)> {
        if t1.secs != self.cookie || t1.frac != seq {
            return None;
        }
        let (round, ttl, n) = trace::unpack(seq, 32);
        trace::same_round(round, self.round, 32).then_some((ttl, n))
    }
}

impl trace::TraceCodec for TraceCodec {
    fn encode(&mut self, _flow: usize, ttl: u8, n: u8, buf: &mut Vec<u8>) {
        buf.clear();
        buf.resize(self.len, 0);
        let seq = trace::pack(self.round, ttl, n, 32);
        let packet = SenderPacket {
            seq,
            timestamp: Timestamp {
                secs: self.cookie,
                frac: seq,
            },
            error: 0,
            ssid: self.ssid,
        };
        // The length was checked when the prober opened.
        let _ = packet.write(buf);
    }

    /// A probe quoted by an ICMP error (its first 12 bytes: sequence number and T1), or the
    /// reflector's answer (which echoes both at bytes 24..36).
    fn decode(&self, flow: usize, data: &[u8]) -> Option<(u8, u8)> {
        self.flows.get(flow)?;
        if let Ok(r) = ReflectorPacket::parse(data) {
            if let Some(found) = self.unpack(r.sender_seq, r.sender_timestamp) {
                return Some(found);
            }
        }
        let seq = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?);
        let t1 = Timestamp {
            secs: u32::from_be_bytes(data.get(4..8)?.try_into().ok()?),
            frac: u32::from_be_bytes(data.get(8..12)?.try_into().ok()?),
        };
        self.unpack(seq, t1)
    }
}

impl Tracer for TwampProber {
    /// Traces every flow to every target with the flow's own socket ([`FlowSockets::trace`]),
    /// TWAMP test packets of the run's size to the reflector's port. A stateful reflector
    /// numbers the trace probes that reach it in the flow's session, so every session is
    /// resynchronized after the round ([`Tracker::resync`]).
    fn trace_flows(&mut self, targets: &[Target], cfg: &TraceConfig) -> Result<Vec<TracedFlow>> {
        self.round = self.round.wrapping_add(1);
        let (cookie, len, round) = (self.cookie, self.packet.len(), self.round);
        let ssid = (len >= STAMP_LEN).then_some(self.cfg.ssid);
        let traced = self.sockets.trace(targets, cfg, |flows| TraceCodec {
            flows,
            cookie,
            len,
            ssid,
            round,
        });
        self.tracker.resync();
        traced
    }

    fn followed(&mut self) -> &mut Option<trace::Followed> {
        &mut self.followed
    }
}

/// The probe a packet of ours is (an answer's echo, or our own datagram back on the error
/// queue): a target at `from` whose probe of this flow with sender number `seq` carried `t1`.
fn match_probe(
    peers: &[Peer],
    by_addr: &HashMap<IpAddr, Vec<usize>>,
    flows: u64,
    flow: u16,
    from: IpAddr,
    seq: u32,
    t1: Timestamp,
) -> Option<ProbeId> {
    for &t in by_addr.get(&from.to_canonical())? {
        let peer = &peers[t];
        let Some(last) = peer.next[usize::from(flow)].checked_sub(1) else {
            continue;
        };
        // The newest session index with these low 32 bits.
        let back = u64::from((last as u32).wrapping_sub(seq));
        let Some(n) = last.checked_sub(back) else {
            continue;
        };
        let k = n * flows + u64::from(flow) + 1;
        if peer.sent[(k % peer.sent.len() as u64) as usize] == (k, t1) {
            return Some(ProbeId { target: t, seq: k });
        }
    }
    None
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Prober for TwampProber {
    fn streams(&self) -> usize {
        self.sockets.streams()
    }

    fn flow(&self, target: &Target, _index: usize, stream: usize) -> Option<Flow> {
        self.sockets.flow(target, stream)
    }

    fn source(&self, target: &Target, _index: usize, stream: usize) -> Option<IpAddr> {
        self.sockets.source(target, stream)
    }

    fn dropped_local(&self) -> Vec<crate::probe::SocketDrops> {
        self.sockets.dropped_local("TWAMP")
    }

    fn register(&mut self, registry: &mio::Registry, first: usize) -> io::Result<usize> {
        self.sockets.register(registry, first)
    }

    fn send(&mut self, target: &Target, id: ProbeId) -> io::Result<SendStamp> {
        let selected = self.sockets.select(target, id.seq)?;
        let flow = selected.flow;
        let error = self.error_estimate();
        let stamp = self.packet.len() >= STAMP_LEN;
        let ssid = self.cfg.ssid;
        let peer = &mut self.peers[id.target];
        let n = peer.next[usize::from(flow)];
        peer.next[usize::from(flow)] += 1;
        debug_assert_eq!(
            n * u64::from(self.sockets.flows()) + u64::from(flow) + 1,
            id.seq
        );
        // T1: the clock right before the send. (The RTT starts from the kernel's transmit
        // stamp where there is one.)
        let t1 = Timestamp::from_unix_ns(unix_ns(SystemTime::now()), Format::Ntp);
        if let Some(keys) = self.keys.get(&(id.target, flow)) {
            // The keys of the probe's class's session.
            let class = selected.tos.or(self.default_tos).unwrap_or(0) >> 2;
            let k = keys
                .iter()
                .find(|(d, _)| *d == class)
                .or(keys.first())
                .map(|(_, k)| k);
            if let Some(k) = k {
                k.seal_sender(&mut self.packet, n as u32, t1, error);
            }
        } else {
            let packet = SenderPacket {
                seq: n as u32,
                timestamp: t1,
                error,
                ssid: stamp.then_some(ssid),
            };
            packet
                .write(&mut self.packet)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            if let Some(at) = self.tlv_at.s_txc {
                // The session's probes sent, this one included (RFC 8972 §4.5).
                stamp_tlv::set_s_txc(&mut self.packet, at, (n + 1) as u32);
            }
            if let Some(at) = self.tlv_at.cos {
                // Ask for the answer in the probe's own class.
                let tos = selected.tos.or(self.default_tos).unwrap_or(0);
                stamp_tlv::set_dscp1(&mut self.packet, at, tos >> 2);
            }
        }
        let peer = &mut self.peers[id.target];
        let ring = peer.sent.len() as u64;
        peer.sent[(id.seq % ring) as usize] = (id.seq, t1);
        self.tracker.sent(id);
        let sent = self.sockets.send(&selected, &self.packet, target, id);
        if sent.is_err() {
            // Never left: the engine counts it unreachable, and no run includes it.
            self.unanswered(id, false);
        }
        sent
    }

    fn expired(&mut self, id: ProbeId) {
        self.unanswered(id, true);
    }

    fn pending_events(&mut self, events: &mut Vec<ProbeEvent>) {
        self.tracker.take_pending(events);
    }

    fn drain(&mut self, token: usize, _lookup: &dyn ProbeLookup, events: &mut Vec<ProbeEvent>) {
        let flows = self.flows();
        let start = events.len();
        // How the tracker numbers each reply, in the order of the reply events.
        let mut numbers: Vec<Numbers> = Vec::new();
        {
            let Some(s) = self.sockets.get_mut(token) else {
                return;
            };
            let (flow, family) = (s.flow, s.family);
            let (peers, by_addr, tlvs) = (&self.peers, &self.by_addr, self.tlvs);
            let numbers = &mut numbers;
            let ours = |from: Option<IpAddr>, seq: u32, t1: Timestamp| {
                match_probe(peers, by_addr, flows, flow, from?, seq, t1)
            };
            // The keys of this flow's keyed sessions with the targets at `from`.
            let keys = &self.keys;
            let keyed = !keys.is_empty();
            let keys_of = move |from: Option<IpAddr>| {
                from.and_then(|a| by_addr.get(&a.to_canonical()))
                    .into_iter()
                    .flatten()
                    .filter_map(move |&t| keys.get(&(t, flow)))
                    .flatten()
                    .map(|(_, k)| k)
            };
            s.probe.drain(
                &mut self.recv_buf,
                events,
                |data, rx, events| {
                    // Our own packet back with an ICMP (or local) error.
                    let Some(err) = rx.anc.error else { return };
                    let (seq, t1) = if keyed {
                        let Some((seq, t1, _)) =
                            keys_of(rx.from).find_map(|k| k.open_sender(data).ok())
                        else {
                            return;
                        };
                        (seq, t1)
                    } else {
                        let Ok(p) = SenderPacket::parse(data) else {
                            return;
                        };
                        (p.seq, p.timestamp)
                    };
                    if let Some(id) = ours(rx.from, seq, t1) {
                        events.extend(ProbeEvent::from_queued_error(id, family, &err));
                    }
                },
                |data, rx, rx_mono, events| {
                    let p = if keyed {
                        // Not one of our sessions' answers, or tampered with.
                        let Some(p) = keys_of(rx.from).find_map(|k| k.open_reflector(data).ok())
                        else {
                            events.push(ProbeEvent::Malformed(crate::wire::Error::BadChecksum));
                            return;
                        };
                        p
                    } else {
                        let Ok(p) = ReflectorPacket::parse(data) else {
                            events.push(ProbeEvent::Malformed(crate::wire::Error::Truncated));
                            return;
                        };
                        p
                    };
                    match (ours(rx.from, p.sender_seq, p.sender_timestamp), rx.from) {
                        (Some(id), Some(from)) => {
                            let answer = data
                                .get(STAMP_LEN..)
                                .filter(|t| tlvs && !t.is_empty())
                                .map(Answer::parse);
                            numbers.push(Numbers::of(&p, answer.as_ref()));
                            let len = data.len();
                            events.push(reply(id, from, &p, answer.as_ref(), rx, len, rx_mono))
                        }
                        _ => events.push(ProbeEvent::Malformed(crate::wire::Error::NotOurs)),
                    }
                },
            );
        }
        // Loss placed by what came in: after the replies, so the engine counts them first.
        let mut placed = Vec::new();
        self.tracker.take_pending(&mut placed);
        let mut numbered = numbers.into_iter();
        let found: Vec<(ProbeId, Option<Numbers>)> = events[start..]
            .iter()
            .filter_map(|e| match e {
                ProbeEvent::Reply { id, .. } => Some((*id, numbered.next())),
                ProbeEvent::Error { id, .. } => Some((*id, None)),
                _ => None,
            })
            .collect();
        for (id, numbers) in found {
            match numbers {
                Some(r) => self.answered(id, r, &mut placed),
                None => {
                    self.unanswered(id, false);
                    self.tracker.take_pending(&mut placed);
                }
            }
        }
        events.append(&mut placed);
    }
}

#[cfg(test)]
mod tests {
    use super::answer::tlv_figures;
    use super::*;

    #[test]
    fn tlv_lists_parse_and_say_what_they_take() {
        let c = parse_tlv("cos, timestamp,direct").unwrap();
        assert!(c.cos && c.timestamp && c.direct && !c.location && !c.padding);
        assert!(parse_tlv("none").unwrap().is_empty());
        let e = parse_tlv("cos,hmac").unwrap_err();
        assert!(e.contains("'hmac' is no TLV"), "{e}");
    }

    #[test]
    fn probe_packets_carry_the_tlvs_asked_for() {
        // Default: Direct Measurement in STAMP packets, nothing in TWAMP-Light ones.
        let (p, at) = probe_packet(44, None).unwrap();
        assert_eq!(p.len(), 60);
        assert_eq!(&p[44..48], &[0x80, 5, 0, 12]);
        assert_eq!(at.s_txc, Some(48));
        let (p, at) = probe_packet(14, None).unwrap();
        assert_eq!((p.len(), at), (14, stamp_tlv::Offsets::default()));
        // none: the base packet, zero padded to --size as before.
        let (p, _) = probe_packet(100, Some(TlvChoice::default())).unwrap();
        assert_eq!(p, vec![0; 100]);
        // A longer --size: an Extra Padding TLV fills it exactly.
        let (p, _) = probe_packet(100, None).unwrap();
        assert_eq!(p.len(), 100);
        assert_eq!(&p[60..64], &[0x80, 1, 0, 36]);
        // TLVs asked for in a TWAMP-Light packet: refused, with what to do.
        let cos = parse_tlv("cos").unwrap();
        let e = probe_packet(20, Some(cos)).unwrap_err().to_string();
        assert!(e.contains("--size 44"), "{e}");
        let (p, at) = probe_packet(44, Some(cos)).unwrap();
        assert_eq!((p.len(), at.cos), (52, Some(48)));
    }

    #[test]
    fn direct_measurement_counters_number_answers_as_ludp_counts() {
        let p = ReflectorPacket::parse(&[0u8; 44]).unwrap();
        let mut a = Answer::default();
        assert_eq!(Numbers::of(&p, Some(&a)), seq(0));
        a.direct = Some(stamp_tlv::Direct {
            sender_tx: 10,
            reflector_rx: 9,
            reflector_tx: 5,
        });
        // Nine received (this one the ninth: number 8), five answered before it: three
        // refused.
        assert_eq!(
            Numbers::of(&p, Some(&a)),
            Numbers {
                seq: 8,
                refused: Some(3)
            }
        );
        let f = tlv_figures(&a, Some(0x88));
        assert_eq!(f.counters.map(|c| c.reflector_rx), Some(9));
        assert_eq!(f.dscp_rev, None, "no Class of Service TLV, no dscp_rev");
        a.cos = Some(stamp_tlv::Cos {
            dscp1: 34,
            dscp2: 34,
            ecn: 0,
            rp: 0,
        });
        assert_eq!(tlv_figures(&a, Some(34 << 2)).dscp_rev, None);
        assert_eq!(
            tlv_figures(&a, Some(0)).dscp_rev,
            Some(0),
            "re-marked on the way back"
        );
    }

    #[test]
    fn sizes_and_ssids() {
        let err = |size, ssid| check_config(size, ssid).unwrap_err().to_string();
        assert!(err(13, None).contains("at least 14"));
        assert!(check_config(14, None).is_ok());
        assert!(err(43, Some(7)).contains("--size 44"));
        assert!(check_config(44, Some(7)).is_ok());
    }

    fn target(port: u16) -> Target {
        Target {
            name: "r".into(),
            addr: "127.0.0.1".parse().unwrap(),
            scope_id: 0,
            port,
            tags: None,
        }
    }

    fn config(mode: ReflectorMode, flows: u16) -> TwampConfig {
        TwampConfig {
            spread: FlowSpread {
                flows,
                sport_base: None,
                dscp: Vec::new(),
            },
            size: 44,
            ssid: 0,
            reflector: mode,
            interval: Duration::from_millis(10),
            timeout: Duration::from_secs(1),
            tlv: None,
        }
    }

    fn prober(mode: ReflectorMode, flows: u16) -> TwampProber {
        TwampProber::open(&[target(9)], config(mode, flows), &SocketOptions::default()).unwrap()
    }

    #[test]
    fn a_reflector_listed_twice_places_nothing() {
        let targets = [target(9), target(9), target(10)];
        let p = TwampProber::open(
            &targets,
            config(ReflectorMode::Stateful, 2),
            &SocketOptions::default(),
        )
        .unwrap();
        let tracked: Vec<bool> = (0..3).map(|t| p.tracker.tracks(t)).collect();
        assert_eq!(tracked, [false, false, true]);
    }

    /// Records `count` probes of every flow as sent, as `send` does, without a network.
    fn sent(p: &mut TwampProber, count: u64) {
        let flows = p.flows();
        for k in 1..=count * flows {
            let (flow, n) = p.session_of(k);
            let peer = &mut p.peers[0];
            assert_eq!(peer.next[flow], n);
            peer.next[flow] += 1;
            let t1 = Timestamp {
                secs: k as u32,
                frac: 7,
            };
            let ring = peer.sent.len() as u64;
            peer.sent[(k % ring) as usize] = (k, t1);
            p.tracker.sent(id(k));
        }
    }

    fn id(seq: u64) -> ProbeId {
        ProbeId { target: 0, seq }
    }

    /// An answer numbered by the reflector's sequence number alone.
    fn seq(seq: u32) -> Numbers {
        Numbers { seq, refused: None }
    }

    fn losses(events: &[ProbeEvent]) -> Vec<(u64, u64, u64)> {
        events
            .iter()
            .filter_map(|e| match e {
                ProbeEvent::Placed(p) if p.forward + p.reverse > 0 => {
                    Some((p.id.seq, p.forward, p.reverse))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn auto_holds_placements_until_the_reflector_shows_its_own_numbers() {
        let mut p = prober(ReflectorMode::Auto, 1);
        sent(&mut p, 4);
        let mut out = Vec::new();
        p.answered(id(1), seq(0), &mut out);
        // Probe 2's answer lost on the way back: the reflector numbered it, as a stateless
        // one would have. Nothing placed, nothing judged.
        p.unanswered(id(2), true);
        p.answered(id(3), seq(2), &mut out);
        p.pending_events(&mut out);
        assert!(out.is_empty(), "{out:?}");
        // Probe 4 gets number 2 again: not a copy of ours (3). What was held comes out,
        // summed per stream (named by its first probe).
        p.answered(id(4), seq(2), &mut out);
        assert_eq!(losses(&out), [(1, 0, 1)]);
        assert!(out.iter().all(|e| matches!(e, ProbeEvent::Placed(_))));
        // From here on, placements go straight out.
        let mut p2 = prober(ReflectorMode::Stateless, 1);
        sent(&mut p2, 2);
        p2.unanswered(id(1), true);
        p2.answered(id(2), seq(9), &mut out);
        p2.pending_events(&mut out);
        assert_eq!(losses(&out), [(1, 0, 1)], "stateless never places");
    }

    #[test]
    fn stateful_places_from_the_first_probe() {
        let mut p = prober(ReflectorMode::Stateful, 2);
        sent(&mut p, 3);
        let mut out = Vec::new();
        // Flow 0 holds probes 1, 3, 5; flow 1 probes 2, 4, 6. Probe 3 lost on the way there.
        p.answered(id(1), seq(0), &mut out);
        p.answered(id(2), seq(0), &mut out);
        p.unanswered(id(3), true);
        p.pending_events(&mut out);
        p.answered(id(4), seq(1), &mut out);
        p.answered(id(5), seq(1), &mut out);
        p.answered(id(6), seq(2), &mut out);
        assert_eq!(losses(&out), [(3, 1, 0)]);
        let markers = out.len() - 1;
        assert_eq!(markers, 5, "every answer marks its stream: {out:?}");
    }

    #[test]
    fn replies_match_on_address_sequence_and_t1() {
        let mut p = prober(ReflectorMode::Auto, 2);
        sent(&mut p, 3);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let t1 = |k: u32| Timestamp { secs: k, frac: 7 };
        let m = |flow, seq, t| match_probe(&p.peers, &p.by_addr, 2, flow, local, seq, t);
        // Session index 1 of flow 1 is the target's probe 4.
        assert_eq!(m(1, 1, t1(4)), Some(id(4)));
        assert_eq!(m(0, 2, t1(5)), Some(id(5)));
        // Another T1, another flow, a number not sent yet, another address: not ours.
        assert_eq!(m(1, 1, t1(3)), None);
        assert_eq!(m(0, 1, t1(4)), None);
        assert_eq!(m(1, 3, t1(8)), None);
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(
            match_probe(&p.peers, &p.by_addr, 2, 1, other, 1, t1(4)),
            None
        );
    }

    #[test]
    fn trace_probes_are_known_in_answers_and_in_icmp_quotes() {
        use crate::probe::trace::TraceCodec as _;
        use crate::wire::twamp::{reflect_in_place, Reflection};
        let mut codec = TraceCodec {
            flows: vec![(0, 0), (0, 1)],
            cookie: 0x1234_5678,
            len: 44,
            ssid: Some(0),
            round: 3,
        };
        let mut buf = Vec::new();
        codec.encode(1, 7, 2, &mut buf);
        assert_eq!(buf.len(), 44);
        let probe = SenderPacket::parse(&buf).unwrap();
        assert_eq!(probe.timestamp.secs, 0x1234_5678);
        // Quoted by an ICMP error, down to its first 12 bytes.
        assert_eq!(codec.decode(1, &buf), Some((7, 2)));
        assert_eq!(codec.decode(1, &buf[..12]), Some((7, 2)));
        assert_eq!(codec.decode(1, &buf[..11]), None);
        // The reflector's answer echoes the sequence number and T1.
        let mut reply = buf.clone();
        reply.resize(64, 0);
        let r = Reflection {
            seq: 99,
            error: 0,
            receive_timestamp: Timestamp { secs: 5, frac: 6 },
            ttl: 60,
        };
        let len = reflect_in_place(&mut reply, 44, &r).unwrap();
        assert_eq!(codec.decode(1, &reply[..len]), Some((7, 2)));
        // Another round, another process, or a measurement probe: not ours.
        codec.round = 4;
        assert_eq!(codec.decode(1, &buf), None);
        codec.round = 3;
        let mut other = buf.clone();
        other[4] ^= 1;
        assert_eq!(codec.decode(1, &other), None);
        let mut measured = vec![0; 44];
        SenderPacket {
            seq: 7,
            timestamp: Timestamp::from_unix_ns(1_795_341_600_000_000_000, Format::Ntp),
            error: 0,
            ssid: Some(0),
        }
        .write(&mut measured)
        .unwrap();
        assert_eq!(codec.decode(0, &measured), None);
    }

    #[test]
    fn sequence_numbers_past_32_bits_still_match() {
        let mut p = prober(ReflectorMode::Stateless, 1);
        // As if 2^32 + 2 probes had left: the wire carries the low 32 bits.
        let k = (1u64 << 32) + 2;
        let peer = &mut p.peers[0];
        peer.next[0] = k;
        let ring = peer.sent.len() as u64;
        let t1 = Timestamp { secs: 1, frac: 2 };
        peer.sent[(k % ring) as usize] = (k, t1);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            match_probe(&p.peers, &p.by_addr, 1, 0, local, 1, t1),
            Some(id(k))
        );
    }
}
