//! Paris-style path tracing: every flow is traced with its own 5-tuple (its own socket, so the
//! same source address and port, the same destination and protocol as its probes); only the
//! TTL changes, set per datagram, so ECMP routers hash trace probes like the flow's probes.
//!
//! All TTLs of all flows leave at once and the answers are collected in one small mio loop, so
//! tracing many flows takes about one timeout. ICMP time-exceeded and unreachable messages come
//! back on each socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`), quoting the probe's
//! payload, which the tool's [`TraceCodec`] maps back to (TTL, probe). Nothing here knows the
//! payload format, so every datagram prober can reuse it.

use crate::net::cmsg::{SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6};
use crate::net::recv_msg;
use crate::net::socket::send_msg_ttl;
use crate::record::{self, Hop, Path};
use anyhow::{Context, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Highest TTL `--max-ttl` takes.
pub const MAX_TTL: u8 = 64;

/// How far and how hard to trace.
#[derive(Debug, Clone, Copy)]
pub struct TraceConfig {
    /// Highest TTL probed.
    pub max_ttl: u8,
    /// Probes per TTL.
    pub probes: u8,
    /// How long to wait for answers after the last probe left.
    pub timeout: Duration,
}

/// One flow to trace: the flow's own socket (bound to its source port) and destination.
pub struct TraceFlow<'a> {
    pub sock: &'a Socket,
    pub dst: SocketAddr,
    /// The TOS byte (IPv4) or traffic class (IPv6) of the flow's probes.
    pub tos: Option<u8>,
}

/// Writes trace probes in the tool's own payload format and recognises them when they come
/// back (echoed by the destination or quoted in an ICMP error).
pub trait TraceCodec {
    /// The payload of probe `n` at `ttl` of flow `flow` (an index into the traced flows).
    fn encode(&mut self, flow: usize, ttl: u8, n: u8, buf: &mut Vec<u8>);
    /// The (TTL, probe) a payload read from flow `flow`'s socket belongs to, if it is one of
    /// this run's trace probes of that flow.
    fn decode(&self, flow: usize, data: &[u8]) -> Option<(u8, u8)>;
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

struct FlowState {
    sent_at: Vec<Option<Instant>>,
    answered: Vec<bool>,
    hops: Vec<HopResult>,
    /// Lowest TTL at which the destination answered.
    dest_ttl: Option<u8>,
    /// Lowest TTL at which a router answered with an unreachable (the path ends there).
    stop_ttl: Option<u8>,
}

impl FlowState {
    fn end(&self) -> Option<u8> {
        self.dest_ttl.or(self.stop_ttl)
    }

    fn record(&mut self, cfg: &TraceConfig, ttl: u8, n: u8, from: IpAddr, at: Instant) {
        if ttl == 0 || ttl > cfg.max_ttl || n >= cfg.probes {
            return;
        }
        let i = usize::from(ttl - 1) * usize::from(cfg.probes) + usize::from(n);
        let Some(sent) = self.sent_at[i] else { return };
        self.answered[i] = true;
        let hop = &mut self.hops[usize::from(ttl - 1)];
        let from = from.to_canonical();
        if !hop.addrs.contains(&from) {
            hop.addrs.push(from);
        }
        let rtt = at.saturating_duration_since(sent);
        hop.rtt = Some(hop.rtt.map_or(rtt, |r| r.min(rtt)));
    }

    /// Every probe up to the end of the path has answered: nothing more to wait for.
    fn done(&self, probes: u8) -> bool {
        let Some(end) = self.end() else { return false };
        let upto = usize::from(end) * usize::from(probes);
        self.answered[..upto]
            .iter()
            .zip(&self.sent_at[..upto])
            .all(|(a, s)| *a || s.is_none())
    }
}

/// Traces every flow at once; returns one result per flow, in order.
pub fn trace(
    flows: &[TraceFlow],
    codec: &mut dyn TraceCodec,
    cfg: &TraceConfig,
) -> Result<Vec<TraceResult>> {
    let cfg = TraceConfig {
        max_ttl: cfg.max_ttl.clamp(1, MAX_TTL),
        probes: cfg.probes.max(1),
        timeout: cfg.timeout,
    };
    let slots = usize::from(cfg.max_ttl) * usize::from(cfg.probes);
    let mut states: Vec<FlowState> = flows
        .iter()
        .map(|_| FlowState {
            sent_at: vec![None; slots],
            answered: vec![false; slots],
            hops: vec![HopResult::default(); usize::from(cfg.max_ttl)],
            dest_ttl: None,
            stop_ttl: None,
        })
        .collect();
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
    // Low TTLs first over all flows, so near hops are probed before the far ones crowd in.
    for ttl in 1..=cfg.max_ttl {
        for n in 0..cfg.probes {
            for (i, f) in flows.iter().enumerate() {
                codec.encode(i, ttl, n, &mut payload);
                let at = Instant::now();
                if send(f, &payload, ttl).is_ok() {
                    let slot = usize::from(ttl - 1) * usize::from(cfg.probes) + usize::from(n);
                    states[i].sent_at[slot] = Some(at);
                }
            }
        }
        // Read what already came back so the receive queues never overflow.
        for (fd, members) in &sockets {
            drain(*fd, members, flows, &mut states, codec, &cfg, &mut buf);
        }
    }
    let deadline = Instant::now() + cfg.timeout;
    let mut events = Events::with_capacity(256);
    while !states.iter().all(|s| s.done(cfg.probes)) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match poll.poll(&mut events, Some(deadline - now)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("poll failed"),
        }
        for ev in events.iter() {
            if let Some((fd, members)) = sockets.get(ev.token().0) {
                drain(*fd, members, flows, &mut states, codec, &cfg, &mut buf);
            }
        }
    }
    for (fd, _) in &sockets {
        let _ = poll.registry().deregister(&mut SourceFd(fd));
    }
    for f in flows {
        // ICMP errors also set the socket's pending error, which would fail the flow's next
        // send: clear it before the socket goes back to probing.
        let _ = f.sock.take_error();
    }
    Ok(states
        .into_iter()
        .map(|mut s| {
            let end = s.end().unwrap_or(cfg.max_ttl);
            s.hops.truncate(usize::from(end));
            TraceResult {
                hops: s.hops,
                reached: s.dest_ttl.is_some(),
            }
        })
        .collect())
}

fn send(f: &TraceFlow, payload: &[u8], ttl: u8) -> io::Result<usize> {
    match send_msg_ttl(f.sock, payload, f.dst, None, f.tos, Some(ttl)) {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => {
            // An ICMP error that came back meanwhile is reported once by the next send, which
            // it fails; the error is consumed, so one retry tells it from a real failure.
            send_msg_ttl(f.sock, payload, f.dst, None, f.tos, Some(ttl))
        }
        r => r,
    }
}

/// Reads one socket's error queue (ICMP answers) and datagrams (the destinations' echoes),
/// handing each to the flow among `members` (the flows sharing the socket) it decodes to.
fn drain(
    fd: RawFd,
    members: &[usize],
    flows: &[TraceFlow],
    states: &mut [FlowState],
    codec: &dyn TraceCodec,
    cfg: &TraceConfig,
    buf: &mut [u8],
) {
    for errqueue in [true, false] {
        loop {
            let rx = match recv_msg(fd, buf, errqueue) {
                Ok(rx) => rx,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let at = Instant::now();
            let data = &buf[..rx.len.min(buf.len())];
            let Some((flow, (ttl, n))) = members
                .iter()
                .find_map(|&i| codec.decode(i, data).map(|tn| (i, tn)))
            else {
                continue;
            };
            let dst = flows[flow].dst.ip().to_canonical();
            let st = &mut states[flow];
            if errqueue {
                let Some(err) = rx.anc.error else { continue };
                if err.origin != SO_EE_ORIGIN_ICMP && err.origin != SO_EE_ORIGIN_ICMP6 {
                    continue;
                }
                let Some(from) = err.offender else { continue };
                let v6 = err.origin == SO_EE_ORIGIN_ICMP6;
                let time_exceeded = if v6 {
                    err.icmp_type == 3
                } else {
                    err.icmp_type == 11
                };
                if from.to_canonical() == dst {
                    st.dest_ttl = Some(st.dest_ttl.map_or(ttl, |d| d.min(ttl)));
                } else if !time_exceeded {
                    st.stop_ttl = Some(st.stop_ttl.map_or(ttl, |d| d.min(ttl)));
                }
                st.record(cfg, ttl, n, from, at);
            } else if let Some(from) = rx.from {
                if from.to_canonical() == dst {
                    st.dest_ttl = Some(st.dest_ttl.map_or(ttl, |d| d.min(ttl)));
                    st.record(cfg, ttl, n, from, at);
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
    sock.connect(&dst.into()).ok()?;
    sock.local_addr().ok()?.as_socket().map(|a| a.ip())
}

impl TraceResult {
    /// The `path` record of this trace (without `sent`/`lost`).
    pub fn to_path(&self, src: IpAddr, dst: SocketAddr, proto: &str, sport: u16) -> Path {
        Path {
            src,
            dst: dst.ip(),
            proto: proto.to_string(),
            sport,
            dport: dst.port(),
            hops: self
                .hops
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
                .collect(),
            reached: self.reached,
            sent: None,
            lost: None,
        }
    }
}

impl TraceResult {
    /// The path this trace found, for counting distinct paths: every hop's addresses, and
    /// whether the destination was reached.
    pub fn key(&self) -> (Vec<Vec<IpAddr>>, bool) {
        (
            self.hops.iter().map(|h| h.addrs.clone()).collect(),
            self.reached,
        )
    }
}

/// One flow's path over a run traced again and again (`--trace-every`): a `path` record the
/// first time, again only when the path changed, and once at the end, each with the flow's
/// `sent`/`lost` since its previous record.
pub struct PathHistory {
    flows: Vec<FollowedFlow>,
}

struct FollowedFlow {
    target: usize,
    key: (Vec<Vec<IpAddr>>, bool),
    path: Path,
    /// The flow's run totals (sent, received) when its last record was written.
    at_last: (u64, u64),
}

/// A flow's run totals (sent, received) over every class of its 5-tuple (every class shares
/// it, hence its path).
pub fn flow_totals(totals: &[crate::engine::StreamTotal], target: usize, sport: u16) -> (u64, u64) {
    totals
        .iter()
        .filter(|s| s.target == target && s.flow.map(|f| f.sport) == Some(sport))
        .fold((0, 0), |(a, b), s| (a + s.sent, b + s.received))
}

impl PathHistory {
    /// Starts following the flows of a first trace, `(target, result, path)` each; returns
    /// their first records (nothing sent yet).
    pub fn start(traced: Vec<(usize, TraceResult, Path)>) -> (PathHistory, Vec<(usize, Path)>) {
        let mut history = PathHistory { flows: Vec::new() };
        let mut records = Vec::new();
        for (target, result, path) in traced {
            records.push((target, with_counts(&path, (0, 0), (0, 0))));
            history.flows.push(FollowedFlow {
                target,
                key: result.key(),
                path,
                at_last: (0, 0),
            });
        }
        (history, records)
    }

    /// A new trace of the same flows, in the same order: the records of the flows whose path
    /// changed, with their counts since their last record.
    pub fn update(
        &mut self,
        traced: Vec<(usize, TraceResult, Path)>,
        totals: &[crate::engine::StreamTotal],
    ) -> Vec<(usize, Path)> {
        let mut records = Vec::new();
        for (f, (target, result, path)) in self.flows.iter_mut().zip(traced) {
            let key = result.key();
            if target != f.target || key == f.key {
                continue;
            }
            let now = flow_totals(totals, f.target, f.path.sport);
            records.push((f.target, with_counts(&path, f.at_last, now)));
            f.key = key;
            f.path = path;
            f.at_last = now;
        }
        records
    }

    /// Every flow's last path with its counts since its last record: the end of the run.
    pub fn finish(&self, totals: &[crate::engine::StreamTotal]) -> Vec<(usize, Path)> {
        self.flows
            .iter()
            .map(|f| {
                let now = flow_totals(totals, f.target, f.path.sport);
                (f.target, with_counts(&f.path, f.at_last, now))
            })
            .collect()
    }
}

/// `path` with the probes sent and lost between two readings of a flow's (sent, received)
/// totals. No probe is in flight at either reading, so every probe counted is settled.
fn with_counts(path: &Path, before: (u64, u64), now: (u64, u64)) -> Path {
    let sent = now.0.saturating_sub(before.0);
    let received = now.1.saturating_sub(before.1);
    Path {
        sent: Some(sent),
        lost: Some(sent.saturating_sub(received)),
        ..path.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let p = t.to_path(a, "10.0.9.9:8081".parse().unwrap(), "udp", 40000);
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

    fn state(max_ttl: u8, probes: u8) -> FlowState {
        let slots = usize::from(max_ttl) * usize::from(probes);
        FlowState {
            sent_at: vec![Some(Instant::now()); slots],
            answered: vec![false; slots],
            hops: vec![HopResult::default(); usize::from(max_ttl)],
            dest_ttl: None,
            stop_ttl: None,
        }
    }

    #[test]
    fn answers_out_of_range_are_ignored_and_addresses_kept_in_order() {
        let cfg = TraceConfig {
            max_ttl: 3,
            probes: 2,
            timeout: Duration::from_secs(1),
        };
        let mut st = state(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        st.record(&cfg, 0, 0, a, Instant::now());
        st.record(&cfg, 4, 0, a, Instant::now());
        st.record(&cfg, 1, 2, a, Instant::now());
        assert!(st.hops.iter().all(|h| h.addrs.is_empty()));
        st.record(&cfg, 2, 0, b, Instant::now());
        st.record(&cfg, 2, 1, a, Instant::now());
        st.record(&cfg, 2, 1, b, Instant::now());
        assert_eq!(st.hops[1].addrs, vec![b, a]);
        assert!(!st.done(2), "no end of path known yet");
        st.dest_ttl = Some(2);
        assert!(!st.done(2), "TTL 1 has not answered");
        st.record(&cfg, 1, 0, a, Instant::now());
        st.record(&cfg, 1, 1, a, Instant::now());
        assert!(st.done(2));
    }

    #[test]
    fn path_records_name_the_first_address_and_omit_silent_ones() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let r = TraceResult {
            hops: vec![
                HopResult {
                    addrs: vec![a, b],
                    rtt: Some(Duration::from_micros(100)),
                },
                HopResult::default(),
            ],
            reached: false,
        };
        let p = r.to_path(a, "10.0.9.9:7".parse().unwrap(), "udp", 4000);
        assert_eq!(p.hops[0].addr, Some(a), "the first address that answered");
        assert_eq!(p.hops[1].addr, None);
        assert_eq!(p.hops[1].ttl, 2);
        let json = serde_json::to_string(&p.hops[1]).unwrap();
        assert_eq!(json, r#"{"ttl":2}"#);
        assert_eq!(r.key().0, vec![vec![a, b], vec![]]);
    }
}
