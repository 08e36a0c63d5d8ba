//! One trace round's bookkeeping: every flow's probes and answers by TTL ([`Tracker`]), the
//! order probes leave in, and the pace ([`Pacer`]).

use super::{Answer, HopResult, TraceConfig, TraceResult};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One flow's probes and answers during a trace.
struct FlowState {
    sent_at: Vec<Option<Instant>>,
    answered: Vec<bool>,
    hops: Vec<HopResult>,
    /// Lowest TTL at which the destination answered.
    dest_ttl: Option<u8>,
    /// Lowest TTL at which a router answered with an unreachable (the path ends there).
    stop_ttl: Option<u8>,
    /// Highest TTL a probe left with.
    top_ttl: u8,
}

impl FlowState {
    fn new(cfg: &TraceConfig) -> FlowState {
        let slots = usize::from(cfg.max_ttl) * usize::from(cfg.probes);
        FlowState {
            sent_at: vec![None; slots],
            answered: vec![false; slots],
            hops: vec![HopResult::default(); usize::from(cfg.max_ttl)],
            dest_ttl: None,
            stop_ttl: None,
            top_ttl: 0,
        }
    }

    fn end(&self) -> Option<u8> {
        match (self.dest_ttl, self.stop_ttl) {
            (Some(d), Some(s)) => Some(d.min(s)),
            (d, s) => d.or(s),
        }
    }

    fn slot(cfg: &TraceConfig, ttl: u8, n: u8) -> Option<usize> {
        (ttl >= 1 && ttl <= cfg.max_ttl && n < cfg.probes)
            .then(|| usize::from(ttl - 1) * usize::from(cfg.probes) + usize::from(n))
    }

    fn record(&mut self, cfg: &TraceConfig, ttl: u8, n: u8, from: IpAddr, at: Instant) {
        let Some(i) = Self::slot(cfg, ttl, n) else {
            return;
        };
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

    /// Every probe sent up to the end of the path has answered: nothing more to wait for.
    fn done(&self, probes: u8) -> bool {
        let Some(end) = self.end() else { return false };
        let upto = usize::from(end) * usize::from(probes);
        self.answered[..upto]
            .iter()
            .zip(&self.sent_at[..upto])
            .all(|(a, s)| *a || s.is_none())
    }
}

/// The answers of a trace of many flows, kept per flow and TTL. Every trace loop (datagram or
/// TCP connect) feeds one.
pub struct Tracker {
    cfg: TraceConfig,
    flows: Vec<FlowState>,
}

impl Tracker {
    pub fn new(flows: usize, cfg: &TraceConfig) -> Tracker {
        let cfg = cfg.clamped();
        Tracker {
            flows: (0..flows).map(|_| FlowState::new(&cfg)).collect(),
            cfg,
        }
    }

    pub fn config(&self) -> &TraceConfig {
        &self.cfg
    }

    /// Probe `n` at `ttl` of `flow` left at `at`.
    pub fn sent(&mut self, flow: usize, ttl: u8, n: u8, at: Instant) {
        let Some(i) = FlowState::slot(&self.cfg, ttl, n) else {
            return;
        };
        if let Some(st) = self.flows.get_mut(flow) {
            st.sent_at[i] = Some(at);
            st.top_ttl = st.top_ttl.max(ttl);
        }
    }

    /// `from` answered probe `n` at `ttl` of `flow` at `at`. Answers to probes that never left
    /// (or out of range) are ignored.
    pub fn answer(&mut self, flow: usize, ttl: u8, n: u8, from: IpAddr, kind: Answer, at: Instant) {
        let cfg = self.cfg;
        let Some(i) = FlowState::slot(&cfg, ttl, n) else {
            return;
        };
        let Some(st) = self.flows.get_mut(flow) else {
            return;
        };
        if st.sent_at[i].is_none() {
            return;
        }
        match kind {
            Answer::Hop => {}
            Answer::Destination => st.dest_ttl = Some(st.dest_ttl.map_or(ttl, |d| d.min(ttl))),
            Answer::Unreachable => st.stop_ttl = Some(st.stop_ttl.map_or(ttl, |d| d.min(ttl))),
        }
        st.record(&cfg, ttl, n, from, at);
    }

    /// A probe at `ttl` of `flow` can still tell something: the flow's path is not known to
    /// end before it.
    pub fn wanted(&self, flow: usize, ttl: u8) -> bool {
        self.flows
            .get(flow)
            .is_some_and(|st| st.end().is_none_or(|end| ttl <= end))
    }

    /// Whether any probe at `ttl` of `flow` was answered.
    pub fn answered_at(&self, flow: usize, ttl: u8) -> bool {
        self.flows
            .get(flow)
            .and_then(|st| st.hops.get(usize::from(ttl).wrapping_sub(1)))
            .is_some_and(|h| !h.addrs.is_empty())
    }

    /// Every flow's end is known and every probe sent up to it has answered.
    pub fn done(&self) -> bool {
        self.flows.iter().all(|s| s.done(self.cfg.probes))
    }

    /// One result per flow: TTL 1 up to the end of its path (the destination or the router
    /// that said unreachable), else up to the highest TTL a probe left with.
    pub fn results(self) -> Vec<TraceResult> {
        self.flows
            .into_iter()
            .map(|mut s| {
                let end = s.end().unwrap_or(s.top_ttl);
                s.hops.truncate(usize::from(end));
                TraceResult {
                    hops: s.hops,
                    reached: s
                        .dest_ttl
                        .is_some_and(|d| s.stop_ttl.is_none_or(|u| d <= u)),
                }
            })
            .collect()
    }
}

/// Spaces sends at a rate: no more than one probe every `1 / rate`, and after a stall no
/// catch-up burst of more than a millisecond's worth (at least one probe).
pub struct Pacer {
    gap: Duration,
    burst: u32,
    next: Instant,
}

impl Pacer {
    pub fn new(rate: u32, now: Instant) -> Pacer {
        let rate = rate.max(1);
        Pacer {
            gap: Duration::from_secs(1) / rate,
            burst: (rate / 1000).max(1),
            next: now,
        }
    }

    /// When the next probe may leave.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// A probe may leave now.
    pub fn ready(&self, now: Instant) -> bool {
        self.next <= now
    }

    /// A probe left at `now`.
    pub fn sent(&mut self, now: Instant) {
        let floor = now.checked_sub(self.gap * (self.burst - 1)).unwrap_or(now);
        self.next = self.next.max(floor) + self.gap;
    }
}

/// The order probes leave in: round by round (probe 0 of every TTL, then probe 1, …), within a
/// round TTL by TTL, within a TTL flow by flow. So near hops are probed before far ones, the
/// end of a path is usually known before the probes beyond it are due, and the probes of one
/// hop are spread over the whole trace rather than sent back to back (routers limit the ICMP
/// errors they send per source).
pub(super) fn schedule(flows: usize, cfg: &TraceConfig) -> impl Iterator<Item = (usize, u8, u8)> {
    let (max_ttl, probes) = (cfg.max_ttl, cfg.probes);
    (0..probes)
        .flat_map(move |n| (1..=max_ttl).flat_map(move |ttl| (0..flows).map(move |f| (f, ttl, n))))
}
