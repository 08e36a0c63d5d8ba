//! Paris-style path tracing: every flow is traced with its own 5-tuple (its own socket, so the
//! same source address and port, the same destination and protocol as its probes); only the
//! TTL changes, set per datagram, so ECMP routers hash trace probes like the flow's probes.
//!
//! The probes of all flows leave paced (`--trace-rate`, probes per second over all flows),
//! lowest TTLs first, and the answers are collected in one small mio loop meanwhile, so tracing
//! many flows takes about one timeout plus the paced sending; a flow whose end is known (the
//! destination answered, or a router said it is unreachable) gets no probe beyond it. ICMP
//! time-exceeded and unreachable messages come back on each socket's error queue (`IP_RECVERR`
//! / `IPV6_RECVERR`) quoting the probe, or (raw sockets) as datagrams, which the tool's
//! [`TraceCodec`] maps back to (TTL, probe). Nothing here knows a payload format, so every
//! datagram prober reuses it; TCP connect probes, one connection per probe, are traced by
//! [`connect::trace_connect`].
#![forbid(unsafe_code)]

pub mod connect;
pub mod history;
mod round;

use round::schedule;
pub use round::{Pacer, Tracker};

pub use history::{flow_totals, FlowCounts, PathHistory};

use crate::net::cmsg::{SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6};
use crate::net::recv_msg;
use crate::net::socket::send_unstamped;
use crate::record::{self, Hop, Path};
use crate::target::Target;
use crate::wire::Family;
use anyhow::{Context, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by SIGINT, SIGTERM or SIGHUP once [`stop_on_signals`] ran: a trace under way ends with what it
/// found so far.
static STOP: AtomicBool = AtomicBool::new(false);

/// Makes SIGINT, SIGTERM and SIGHUP end a trace under way (with its results so far) instead of the
/// process. The engine's own handling of the signals (stop sending, settle) is unaffected.
pub fn stop_on_signals() -> Result<()> {
    for signal in crate::signals::end_signals() {
        signal_hook::flag::register(signal, &STOP).context("cannot install signal handlers")?;
    }
    Ok(())
}

/// A signal asked the trace to end ([`stop_on_signals`]).
pub fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Highest TTL `--max-ttl` takes.
pub const MAX_TTL: u8 = 64;
/// Most probes per TTL `--trace-probes` takes (the probe number has 4 bits in every format).
pub const MAX_PROBES: u8 = 16;
/// Trace probes per second over all flows unless `--trace-rate` says otherwise.
pub const DEFAULT_RATE: u32 = 500;

/// How far and how hard to trace.
#[derive(Debug, Clone, Copy)]
pub struct TraceConfig {
    /// Highest TTL probed.
    pub max_ttl: u8,
    /// Probes per TTL.
    pub probes: u8,
    /// How long to wait for answers after the last probe left.
    pub timeout: Duration,
    /// Trace probes per second, over all flows.
    pub rate: u32,
}

impl TraceConfig {
    fn clamped(&self) -> TraceConfig {
        TraceConfig {
            max_ttl: self.max_ttl.clamp(1, MAX_TTL),
            probes: self.probes.clamp(1, MAX_PROBES),
            timeout: self.timeout,
            rate: self.rate.max(1),
        }
    }
}

/// What an answer to a trace probe says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A router on the way: the TTL ran out there.
    Hop,
    /// The destination itself (an echo, a port unreachable, a SYN-ACK or RST).
    Destination,
    /// A router that says the destination is unreachable: the path ends there.
    Unreachable,
}

/// One flow to trace: the flow's own socket (bound to its source port) and destination.
pub struct TraceFlow<'a> {
    pub sock: &'a Socket,
    /// Where the probes are sent (port 0 on raw and ICMP sockets).
    pub dst: SocketAddr,
    /// The TOS byte (IPv4) or traffic class (IPv6) of the flow's probes.
    pub tos: Option<u8>,
}

/// Writes trace probes in the tool's own format and recognises them when they come back
/// (echoed or answered by the destination, or quoted in an ICMP error).
pub trait TraceCodec {
    /// Probe `n` at `ttl` of flow `flow` (an index into the traced flows), as handed to the
    /// socket: a payload, or an ICMP message or TCP segment on raw and ICMP sockets.
    fn encode(&mut self, flow: usize, ttl: u8, n: u8, buf: &mut Vec<u8>);

    /// The (TTL, probe) of flow `flow` that `data` is, if it is one of this round's trace
    /// probes: `data` is the probe as an ICMP error quotes it (from the error queue: the
    /// transport header or payload on, perhaps cut short) or as a UDP destination echoed it.
    fn decode(&self, flow: usize, data: &[u8]) -> Option<(u8, u8)>;

    /// A datagram read from flow `flow`'s socket, from `from`: the (TTL, probe) it answers,
    /// who answered, and how. By default the destination echoing the probe.
    fn decode_datagram(
        &self,
        flow: usize,
        data: &[u8],
        from: IpAddr,
        dst: IpAddr,
    ) -> Option<(u8, u8, IpAddr, Answer)> {
        if from.to_canonical() != dst.to_canonical() {
            return None;
        }
        let (ttl, n) = self.decode(flow, data)?;
        Some((ttl, n, from, Answer::Destination))
    }
}

/// What one TTL of one flow found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HopResult {
    /// Every address that answered, in order of arrival.
    pub addrs: Vec<IpAddr>,
    /// Fastest answer.
    pub rtt: Option<Duration>,
}

/// One traced flow.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceResult {
    /// TTL 1 up to the destination when it answered, else up to the router that said the
    /// destination is unreachable, else up to the highest TTL probed.
    pub hops: Vec<HopResult>,
    pub reached: bool,
}

/// Traces every flow at once (paced); returns one result per flow, in order.
pub fn trace(
    flows: &[TraceFlow],
    codec: &mut dyn TraceCodec,
    cfg: &TraceConfig,
) -> Result<Vec<TraceResult>> {
    let mut tracker = Tracker::new(flows.len(), cfg);
    let cfg = *tracker.config();
    // Flows to several targets share a socket (one per flow and family): register each socket
    // once, and hand each answer to the flow it decodes to.
    let mut sockets: Vec<(RawFd, Vec<usize>)> = Vec::new();
    for (i, f) in flows.iter().enumerate() {
        let fd = f.sock.as_raw_fd();
        match sockets.iter_mut().find(|(s, _)| *s == fd) {
            Some((_, members)) => members.push(i),
            None => sockets.push((fd, vec![i])),
        }
    }
    let mut poll = Poll::new().context("cannot create the trace loop")?;
    for (k, (fd, _)) in sockets.iter().enumerate() {
        poll.registry()
            .register(&mut SourceFd(fd), Token(k), Interest::READABLE)
            .context("cannot register a trace socket")?;
    }
    let mut buf = vec![0u8; 65_536];
    let mut payload = Vec::new();
    let mut order = schedule(flows.len(), &cfg).peekable();
    let mut pacer = Pacer::new(cfg.rate, Instant::now());
    let mut last_send = Instant::now();
    let mut events = Events::with_capacity(256);
    loop {
        if stopped() {
            break;
        }
        let now = Instant::now();
        while let Some(&(f, ttl, n)) = order.peek() {
            if !tracker.wanted(f, ttl) {
                order.next();
                continue;
            }
            if !pacer.ready(now) {
                break;
            }
            order.next();
            codec.encode(f, ttl, n, &mut payload);
            let at = Instant::now();
            if send(&flows[f], &payload, ttl).is_ok() {
                tracker.sent(f, ttl, n, at);
                pacer.sent(at);
                last_send = at;
            }
        }
        let sending = order.peek().is_some();
        let wake = if sending {
            pacer.next()
        } else {
            if tracker.done() {
                break;
            }
            // Every probe waits its timeout from when it left; the last one left last.
            last_send + cfg.timeout
        };
        let now = Instant::now();
        if !sending && now >= wake {
            break;
        }
        match poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("poll failed"),
        }
        for ev in events.iter() {
            if let Some((fd, members)) = sockets.get(ev.token().0) {
                drain(*fd, members, flows, &mut tracker, codec, &mut buf);
            }
        }
    }
    // Answers already queued count too (a poll wake-up may not have come for them yet).
    for (fd, members) in &sockets {
        drain(*fd, members, flows, &mut tracker, codec, &mut buf);
    }
    for (fd, _) in &sockets {
        let _ = poll.registry().deregister(&mut SourceFd(fd));
    }
    for f in flows {
        // ICMP errors also set the socket's pending error, which would fail the flow's next
        // send: clear it before the socket goes back to probing.
        let _ = f.sock.take_error();
    }
    Ok(tracker.results())
}

fn send(f: &TraceFlow, payload: &[u8], ttl: u8) -> io::Result<usize> {
    match send_unstamped(f.sock, payload, f.dst, f.tos, Some(ttl)) {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
            // An ICMP error that came back meanwhile is reported once by the next send, which
            // it fails; the error is consumed, so one retry tells it from a real failure.
            send_unstamped(f.sock, payload, f.dst, f.tos, Some(ttl))
        }
        r => r,
    }
}

/// What an ICMP error (of `family`'s ICMP) from `from` about a probe to `dst` says.
pub fn classify_error(family: Family, icmp_type: u8, from: IpAddr, dst: IpAddr) -> Answer {
    if from.to_canonical() == dst.to_canonical() {
        Answer::Destination
    } else if family.icmp_type(icmp_type).is_time_exceeded() {
        Answer::Hop
    } else {
        Answer::Unreachable
    }
}

/// The ICMP version of an error-queue entry from ICMP (`SO_EE_ORIGIN_ICMP` or `_ICMP6`).
pub fn origin_family(origin: u8) -> Family {
    if origin == SO_EE_ORIGIN_ICMP6 {
        Family::V6
    } else {
        Family::V4
    }
}

/// Reads one socket's error queue (ICMP answers) and datagrams (the destinations' answers),
/// handing each to the flow among `members` (the flows sharing the socket) it decodes to.
fn drain(
    fd: RawFd,
    members: &[usize],
    flows: &[TraceFlow],
    tracker: &mut Tracker,
    codec: &dyn TraceCodec,
    buf: &mut [u8],
) {
    for errqueue in [true, false] {
        // A read that fails for another reason than an empty queue (a pending ICMP error
        // reported on the normal queue, which the read consumes) is retried a few times, so
        // datagrams queued behind it are not left unread.
        let mut failures = 0;
        loop {
            let rx = match recv_msg(fd, buf, errqueue) {
                Ok(rx) => rx,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    failures += 1;
                    if failures > 8 {
                        break;
                    }
                    continue;
                }
            };
            let at = Instant::now();
            let data = &buf[..rx.len.min(buf.len())];
            if errqueue {
                let Some(err) = rx.anc.error else { continue };
                if err.origin != SO_EE_ORIGIN_ICMP && err.origin != SO_EE_ORIGIN_ICMP6 {
                    continue;
                }
                let Some(from) = err.offender else { continue };
                // The error queue names the probe's destination: only its flows may claim it.
                let Some((flow, (ttl, n))) = members
                    .iter()
                    .filter(|&&i| {
                        rx.from
                            .is_none_or(|d| d.to_canonical() == flows[i].dst.ip().to_canonical())
                    })
                    .find_map(|&i| codec.decode(i, data).map(|tn| (i, tn)))
                else {
                    continue;
                };
                let family = origin_family(err.origin);
                let kind = classify_error(family, err.icmp_type, from, flows[flow].dst.ip());
                tracker.answer(flow, ttl, n, from, kind, at);
            } else if let Some(from) = rx.from {
                if let Some((flow, (ttl, n, who, kind))) = members.iter().find_map(|&i| {
                    codec
                        .decode_datagram(i, data, from, flows[i].dst.ip())
                        .map(|a| (i, a))
                }) {
                    tracker.answer(flow, ttl, n, who, kind, at);
                }
            }
        }
    }
}

/// The source address the kernel picks for `dst` (what a flow bound to the wildcard uses).
pub fn source_for(dst: SocketAddr) -> Option<IpAddr> {
    let domain = if dst.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let sock = Socket::new(domain, Type::DGRAM, None).ok()?;
    let dst = SocketAddr::new(dst.ip(), dst.port().max(1));
    sock.connect(&dst.into()).ok()?;
    sock.local_addr().ok()?.as_socket().map(|a| a.ip())
}

/// The source address of a flow: `known` (the one its probe records carry, see
/// [`crate::probe::Prober::source`]), else the kernel's choice for `dst`, else the unspecified
/// address.
fn flow_source(known: Option<IpAddr>, dst: SocketAddr) -> IpAddr {
    known
        .filter(|ip| !ip.is_unspecified())
        .or_else(|| source_for(dst))
        .unwrap_or(if dst.is_ipv6() {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        })
}

impl TraceResult {
    /// The hops of this trace as a `path` record has them.
    pub fn hop_records(&self) -> Vec<Hop> {
        self.hops
            .iter()
            .enumerate()
            .map(|(i, h)| Hop {
                ttl: u8::try_from(i + 1).unwrap_or(u8::MAX),
                addr: h.addrs.first().copied(),
                addrs: if h.addrs.len() > 1 {
                    h.addrs.clone()
                } else {
                    Vec::new()
                },
                rtt_ms: h.rtt.map(record::ms),
            })
            .collect()
    }

    /// The `path` record of this trace (without `sent`/`lost`).
    pub fn to_path(&self, src: IpAddr, dst: IpAddr, proto: &str, sport: u16, dport: u16) -> Path {
        Path {
            src,
            dst,
            proto: proto.to_string(),
            sport,
            dport,
            hops: self.hop_records(),
            reached: self.reached,
            sent: None,
            lost: None,
            lost_fwd: None,
            lost_rev: None,
        }
    }

    /// The path this trace found, for counting distinct paths: every hop's addresses, and
    /// whether the destination was reached.
    pub fn key(&self) -> (Vec<Vec<IpAddr>>, bool) {
        (
            self.hops.iter().map(|h| h.addrs.clone()).collect(),
            self.reached,
        )
    }
}

/// One traced flow of one target.
#[derive(Debug, Clone)]
pub struct TracedFlow {
    /// The target's index in the run.
    pub target: usize,
    pub result: TraceResult,
    pub path: Path,
}

impl TracedFlow {
    /// A flow's trace with its `path` record: from the flow's source ([`flow_source`] of `src`,
    /// the source its probe records carry) to `dst`, from port `sport` to `dst`'s port.
    pub fn new(
        target: usize,
        result: TraceResult,
        src: Option<IpAddr>,
        dst: SocketAddr,
        proto: &str,
        sport: u16,
    ) -> TracedFlow {
        let src = flow_source(src, dst);
        let path = result.to_path(src, dst.ip(), proto, sport, dst.port());
        TracedFlow {
            target,
            result,
            path,
        }
    }
}

/// The address `sock` is bound to (unspecified unless bound to one).
pub fn bound_ip(sock: &Socket) -> Option<IpAddr> {
    sock.local_addr().ok()?.as_socket().map(|a| a.ip())
}

/// The paths followed over a run (`--trace-every`): what to trace again, how, how often, and
/// the history so far.
pub struct Followed {
    pub targets: Vec<Target>,
    pub cfg: TraceConfig,
    pub every: Duration,
    pub history: PathHistory,
}

/// A prober that traces its own flows (Paris traceroute with the flows' 5-tuples).
pub trait Tracer: crate::probe::Prober {
    /// Traces every flow to every target; one [`TracedFlow`] per (target, flow), targets
    /// first. Each call is a new round: answers to an earlier round's probes are not taken.
    fn trace_flows(&mut self, targets: &[Target], cfg: &TraceConfig) -> Result<Vec<TracedFlow>>;

    /// Where the followed paths live (`None` until the run starts following them).
    fn followed(&mut self) -> &mut Option<Followed>;

    /// How often the engine pauses probing for a trace round ([`Tracer::retrace`]); `None`:
    /// never (the paths are not followed).
    fn retrace_every(&mut self) -> Option<Duration> {
        self.followed().as_ref().map(|f| f.every)
    }

    /// A trace round of a prober that follows its paths: the `path` records the round gives
    /// (see [`PathHistory::update`]), each with its target's index. The engine calls it with no
    /// probe in flight and no probe leaving until it returns (it may block for about one
    /// timeout); `totals` are every stream's totals so far.
    fn retrace(&mut self, totals: &[crate::probe::StreamTotal]) -> Result<Vec<(usize, Path)>> {
        let Some(mut followed) = self.followed().take() else {
            return Ok(Vec::new());
        };
        let traced = self.trace_flows(&followed.targets, &followed.cfg);
        // A round a signal cut short tells no path change: the paths stay as they were.
        let records = traced.map(|traced| {
            if stopped() {
                Vec::new()
            } else {
                followed.history.update(traced, totals)
            }
        });
        *self.followed() = Some(followed);
        records
    }
}

/// The trace-probe number of a round, TTL and probe in `bits` bits: the round in the high
/// bits (so answers to an earlier round are told apart), then six bits of TTL − 1 and four of
/// the probe.
pub fn pack(round: u32, ttl: u8, n: u8, bits: u32) -> u32 {
    let round_bits = bits - 10;
    let round = round & ((1u32 << round_bits) - 1);
    round << 10 | u32::from(ttl.wrapping_sub(1) & 0x3f) << 4 | u32::from(n & 0xf)
}

/// The (round, TTL, probe) [`pack`] packed.
pub fn unpack(v: u32, bits: u32) -> (u32, u8, u8) {
    let round_bits = bits - 10;
    let round = (v >> 10) & ((1u32 << round_bits) - 1);
    (round, ((v >> 4) & 0x3f) as u8 + 1, (v & 0xf) as u8)
}

/// Whether `round` (as [`unpack`] gives it, `bits` wide) is round `current`.
pub fn same_round(round: u32, current: u32, bits: u32) -> bool {
    round == current & ((1u32 << (bits - 10)) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_ttl: u8, probes: u8) -> TraceConfig {
        TraceConfig {
            max_ttl,
            probes,
            timeout: Duration::from_secs(1),
            rate: 1000,
        }
    }

    #[test]
    fn a_hop_with_several_addresses_lists_them_all() {
        let a: IpAddr = "10.0.1.1".parse().unwrap();
        let b: IpAddr = "10.0.2.1".parse().unwrap();
        let t = TraceResult {
            hops: vec![
                HopResult {
                    addrs: vec![a, b],
                    rtt: Some(Duration::from_micros(50)),
                },
                HopResult {
                    addrs: vec![b],
                    rtt: None,
                },
                HopResult::default(),
            ],
            reached: false,
        };
        let p = t.to_path(a, "10.0.9.9".parse().unwrap(), "udp", 40000, 8081);
        assert_eq!(
            (p.hops[0].addr, p.hops[0].addrs.clone()),
            (Some(a), vec![a, b])
        );
        assert_eq!(
            (p.hops[1].addr, p.hops[1].addrs.len()),
            (Some(b), 0),
            "one address: addr only"
        );
        assert_eq!((p.hops[2].ttl, p.hops[2].addr), (3, None));
        let json = serde_json::to_value(&p.hops).unwrap();
        assert_eq!(
            json[0]["addrs"],
            serde_json::json!(["10.0.1.1", "10.0.2.1"])
        );
        assert!(json[1].get("addrs").is_none() && json[2].get("addr").is_none());
    }

    #[test]
    fn answers_out_of_range_or_to_unsent_probes_are_ignored() {
        let c = cfg(3, 2);
        let mut t = Tracker::new(1, &c);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let now = Instant::now();
        t.answer(0, 1, 0, a, Answer::Hop, now);
        assert!(!t.answered_at(0, 1), "probe 0 at TTL 1 never left");
        for ttl in 1..=3 {
            for n in 0..2 {
                t.sent(0, ttl, n, now);
            }
        }
        t.answer(0, 0, 0, a, Answer::Hop, now);
        t.answer(0, 4, 0, a, Answer::Hop, now);
        t.answer(0, 1, 2, a, Answer::Hop, now);
        t.answer(1, 1, 0, a, Answer::Hop, now);
        assert!((1..=3).all(|ttl| !t.answered_at(0, ttl)));
        t.answer(0, 2, 0, b, Answer::Hop, now);
        t.answer(0, 2, 1, a, Answer::Hop, now);
        t.answer(0, 2, 1, b, Answer::Hop, now);
        assert!(!t.done(), "no end of path known yet");
        t.answer(0, 2, 0, b, Answer::Destination, now);
        assert!(!t.done(), "TTL 1 has not answered");
        assert!(t.wanted(0, 2) && !t.wanted(0, 3), "nothing beyond the end");
        t.answer(0, 1, 0, a, Answer::Hop, now);
        t.answer(0, 1, 1, a, Answer::Hop, now);
        assert!(t.done());
        let r = t.results();
        assert_eq!(r[0].hops.len(), 2);
        assert_eq!(r[0].hops[1].addrs, vec![b, a], "in order of arrival");
        assert!(r[0].reached);
    }

    #[test]
    fn a_path_ends_at_an_unreachable_or_the_highest_ttl_sent() {
        let c = cfg(5, 1);
        let mut t = Tracker::new(3, &c);
        let r1: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        for f in 0..3 {
            for ttl in 1..=5 {
                if f != 2 || ttl <= 3 {
                    t.sent(f, ttl, 0, now);
                }
            }
        }
        t.answer(0, 2, 0, r1, Answer::Unreachable, now);
        t.answer(1, 1, 0, r1, Answer::Hop, now);
        let r = t.results();
        assert_eq!(
            (r[0].hops.len(), r[0].reached),
            (2, false),
            "ends at the unreachable"
        );
        assert_eq!(
            (r[1].hops.len(), r[1].reached),
            (5, false),
            "up to --max-ttl"
        );
        assert_eq!(
            (r[2].hops.len(), r[2].reached),
            (3, false),
            "up to the last TTL sent"
        );
    }

    #[test]
    fn the_schedule_goes_round_by_round_then_ttl_by_ttl() {
        let c = cfg(2, 2);
        let order: Vec<_> = schedule(2, &c).collect();
        assert_eq!(
            order,
            vec![
                (0, 1, 0),
                (1, 1, 0),
                (0, 2, 0),
                (1, 2, 0),
                (0, 1, 1),
                (1, 1, 1),
                (0, 2, 1),
                (1, 2, 1)
            ]
        );
    }

    #[test]
    fn the_pacer_spaces_probes_and_allows_no_catch_up_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100, t0);
        assert!(p.ready(t0));
        p.sent(t0);
        assert!(!p.ready(t0 + Duration::from_millis(9)));
        assert!(p.ready(t0 + Duration::from_millis(10)));
        // A stall of a second: one probe may leave, then the spacing again.
        let late = t0 + Duration::from_secs(1);
        p.sent(late);
        assert_eq!(p.next(), late + Duration::from_millis(10));
        // At 10,000/s up to ten leave at once after a stall (a millisecond's worth).
        let mut fast = Pacer::new(10_000, t0);
        let late = t0 + Duration::from_secs(1);
        let mut n = 0;
        while fast.ready(late) {
            fast.sent(late);
            n += 1;
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn probe_numbers_carry_the_round() {
        for bits in [16, 32] {
            for (round, ttl, n) in [(0, 1, 0), (5, 64, 15), (63, 30, 2)] {
                let v = pack(round, ttl, n, bits);
                assert!(bits == 32 || v <= 0xffff);
                let (r, t, m) = unpack(v, bits);
                assert_eq!((t, m), (ttl, n));
                assert!(same_round(r, round, bits));
                assert!(!same_round(r, round + 1, bits));
            }
        }
    }
}
