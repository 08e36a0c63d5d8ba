//! The run's bookkeeping, without sockets or clocks of its own: every target's probes (a slot
//! per sequence number), its streams and their statistics. It takes what happened (a probe
//! left, failed or was not sent; an answer, an ICMP error, a timeout; a window closed) and
//! returns the record bodies to write, so it is tested with plain values (as trippy tests its
//! `TracerState`), and the event loop only moves events in and records out.

use super::measure::{net_of_hold, one_way, rtt};
use super::target::{Slot, Stream, TargetState};
use crate::alert::{Alerts, Thresholds};
use crate::probe::{ProbeEvent, ProbeId, ProbeLookup, SendStamp, SocketDrops, StreamTotal};
use crate::record::{self, Alert, Body, Flow, Reply, Timeout};
use crate::stats::Stats;
use crate::target::Target;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// Longest plausible time from the send call to the kernel's transmit stamp.
const MAX_TX_DELAY: Duration = Duration::from_secs(1);

/// A record body to write: of target `target`, stamped `ts`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub target: usize,
    pub ts: SystemTime,
    pub body: Body,
}

/// What the loop did with a probe that fell due.
#[derive(Debug)]
pub enum Launch {
    /// It left, stamped so.
    Sent(SendStamp),
    /// The send call failed (no route, firewall, interface down): an answer of sorts, from
    /// the local host.
    Failed(std::io::Error),
    /// Not sent; `busy`: because its flow was ([`crate::probe::Prober::flow_busy`]), which is
    /// counted, rather than because its stream had sent its count.
    NotSent { busy: bool },
}

/// Every target's probes and statistics.
pub struct Ledger {
    states: Vec<TargetState>,
    by_addr: HashMap<IpAddr, Vec<usize>>,
    /// Summaries and alerts only.
    quiet: bool,
    thresholds: Thresholds,
    /// The name windowed summaries and alerts carry (`"1m"`).
    window_name: String,
    malformed: u64,
    /// Targets still sending, and probes awaiting an answer: the run ends when both are 0.
    sending_targets: usize,
    pending_probes: usize,
    skipped_busy: u64,
    /// Each socket's drop count when the current window began.
    drops_at_window: Vec<u64>,
}

impl Ledger {
    /// A ledger of `targets`, each with one stream until [`Ledger::set_streams`] says more.
    pub fn new(
        targets: Vec<Target>,
        quiet: bool,
        thresholds: Thresholds,
        window_name: String,
    ) -> Ledger {
        let mut by_addr: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        for (i, t) in targets.iter().enumerate() {
            by_addr.entry(t.addr.to_canonical()).or_default().push(i);
        }
        let sending_targets = targets.len();
        let states = targets
            .into_iter()
            .map(|target| TargetState {
                target,
                next_seq: 1,
                sending: true,
                slots: VecDeque::new(),
                shown: 0,
                base_seq: 1,
                answered: false,
                total: Stats::new(),
                window: Stats::new(),
                alerts: Alerts::default(),
                streams: vec![Stream::new(None, None)],
                src: None,
            })
            .collect();
        Ledger {
            states,
            by_addr,
            quiet,
            thresholds,
            window_name,
            malformed: 0,
            sending_targets,
            pending_probes: 0,
            skipped_busy: 0,
            drops_at_window: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub fn target(&self, t: usize) -> &Target {
        &self.states[t].target
    }

    /// Target `t`'s streams, each a flow (or none) and the local address it leaves from.
    pub fn set_streams(&mut self, t: usize, streams: Vec<(Option<Flow>, Option<IpAddr>)>) {
        let st = &mut self.states[t];
        st.streams = streams
            .into_iter()
            .map(|(flow, src)| Stream::new(flow, src))
            .collect();
        if st.streams.is_empty() {
            st.streams.push(Stream::new(None, None));
        }
        st.src = st.streams[0]
            .src
            .filter(|&src| st.streams.iter().all(|s| s.src == Some(src)));
    }

    /// Every target sent what it had to and every probe is settled.
    pub fn finished(&self) -> bool {
        self.sending_targets == 0 && self.pending_probes == 0
    }

    pub fn sending_targets(&self) -> usize {
        self.sending_targets
    }

    pub fn pending_probes(&self) -> usize {
        self.pending_probes
    }

    /// The probe target `t` sends next, while it sends.
    pub fn next_probe(&self, t: usize) -> Option<ProbeId> {
        let st = &self.states[t];
        st.sending.then_some(ProbeId {
            target: t,
            seq: st.next_seq,
        })
    }

    /// Target `t` sends no more.
    pub fn stop(&mut self, t: usize) {
        let st = &mut self.states[t];
        if st.sending {
            st.sending = false;
            self.sending_targets -= 1;
        }
    }

    /// No target sends any more.
    pub fn stop_all(&mut self) {
        self.sending_targets = 0;
        for st in &mut self.states {
            st.sending = false;
        }
    }

    /// `-w` ran out: no more probes, but the first of every target (a sweep at `--rate` can
    /// take longer than `-w`).
    pub fn stop_after_first(&mut self) {
        for t in 0..self.states.len() {
            if self.states[t].next_seq > 1 {
                self.stop(t);
            }
        }
    }

    /// Whether probe `id`'s stream already sent `count` probes (with `-c`, its later numbers
    /// pass unsent).
    pub fn stream_done(&self, id: ProbeId, count: Option<u64>) -> bool {
        let st = &self.states[id.target];
        count.is_some_and(|c| st.streams[st.stream_of(id.seq)].launched >= c)
    }

    /// What became of probe `id`, the next of its target ([`Ledger::next_probe`]); an
    /// `unreachable` record into `out` when it failed to leave. Returns whether the target
    /// sends on (`false` once every stream sent `count`).
    pub fn launched(
        &mut self,
        id: ProbeId,
        launch: Launch,
        count: Option<u64>,
        out: &mut Vec<Entry>,
    ) -> bool {
        let quiet = self.quiet;
        let st = &mut self.states[id.target];
        let seq = id.seq;
        st.next_seq += 1;
        if st.slots.is_empty() {
            st.base_seq = seq;
        }
        match launch {
            Launch::NotSent { busy } => {
                st.push_slot(Slot::Skipped);
                self.skipped_busy += u64::from(busy);
            }
            Launch::Sent(stamp) => {
                let stream = st.stream_of(seq);
                st.streams[stream].launched += 1;
                st.push_slot(Slot::Pending(stamp));
                self.pending_probes += 1;
            }
            Launch::Failed(e) => {
                let stream = st.stream_of(seq);
                st.streams[stream].launched += 1;
                st.push_slot(Slot::Failed);
                st.settle(seq, Stats::unreachable);
                if !quiet {
                    let reason = crate::net::socket::error_reason(&e);
                    out.push(Entry {
                        target: id.target,
                        ts: SystemTime::now(),
                        body: st.unreachable(seq, None, None, None, reason),
                    });
                }
            }
        }
        let st = &mut self.states[id.target];
        st.trim();
        let streams = st.streams.len() as u64;
        let all_sent = |c: u64| st.streams.iter().all(|s| s.launched >= c);
        if count.is_some_and(|c| seq >= c.saturating_mul(streams) && all_sent(c)) {
            self.stop(id.target);
            return false;
        }
        true
    }

    /// Probe `id` timed out: when it was still pending, it is lost, and its `timeout` record
    /// goes into `out`. Returns whether it was pending.
    pub fn expire(&mut self, id: ProbeId, out: &mut Vec<Entry>) -> bool {
        let st = &mut self.states[id.target];
        let Some(slot @ Slot::Pending(_)) = st.slot_mut(id.seq) else {
            return false;
        };
        *slot = Slot::Lost;
        self.pending_probes -= 1;
        st.settle(id.seq, Stats::lost);
        let shown = st.shown_seq(id.seq);
        st.trim();
        if !self.quiet {
            out.push(Entry {
                target: id.target,
                ts: SystemTime::now(),
                body: Body::Timeout(Timeout {
                    target: st.target.name.clone(),
                    addr: st.target.addr,
                    src: st.src_of(id.seq),
                    seq: shown,
                    flow: st.flow(id.seq),
                }),
            });
        }
        true
    }

    /// Takes what a prober found: counts it, settles the probe it answers, and puts the
    /// records it gives into `out`.
    pub fn on_event(&mut self, event: ProbeEvent, out: &mut Vec<Entry>) {
        match event {
            ProbeEvent::Malformed(_) => self.malformed += 1,
            ProbeEvent::Placed(p) => {
                if let Some(st) = self.states.get_mut(p.id.target) {
                    let place = |s: &mut Stats| s.placed(p.forward, p.reverse, p.refused);
                    if p.one_stream {
                        st.settle(p.id.seq, place);
                    } else {
                        place(&mut st.total);
                        place(&mut st.window);
                    }
                }
            }
            ProbeEvent::Sent { id, tx_wall } => {
                let Some(st) = self.states.get_mut(id.target) else {
                    return;
                };
                if let Some(Slot::Pending(stamp)) = st.slot_mut(id.seq) {
                    // The kernel stamps the packet after the send call began; anything else
                    // (a clock step in between) is not trusted.
                    if tx_wall
                        .duration_since(stamp.wall)
                        .is_ok_and(|d| d < MAX_TX_DELAY)
                    {
                        stamp.wall = tx_wall;
                    }
                }
            }
            ProbeEvent::Reply {
                id,
                from,
                rx_wall,
                rx_mono,
                ttl,
                size,
                tos,
                reflector,
                result,
                syn_retransmits,
            } => {
                let Some(st) = self.states.get_mut(id.target) else {
                    return;
                };
                if from.to_canonical() != st.target.addr.to_canonical() {
                    return; // an answer from someone else: not a reply to this probe
                }
                let Some(slot) = st.slot_mut(id.seq) else {
                    return;
                };
                let (sent, dup) = match *slot {
                    Slot::Pending(sent) => {
                        *slot = Slot::Received(sent);
                        self.pending_probes -= 1;
                        (sent, false)
                    }
                    Slot::Received(sent) => (sent, true),
                    Slot::Lost => {
                        st.settle(id.seq, Stats::late);
                        return;
                    }
                    Slot::Failed | Slot::Skipped => return,
                };
                let shown = st.shown_seq(id.seq);
                let rtt = match reflector {
                    Some(r) if r.net_of_hold => net_of_hold(rtt(sent, rx_wall, rx_mono), &r),
                    _ => rtt(sent, rx_wall, rx_mono),
                };
                if dup {
                    st.settle(id.seq, Stats::duplicate);
                } else {
                    let i = st.stream_of(id.seq);
                    let stream = &mut st.streams[i];
                    let reordered = id.seq < stream.highest_received;
                    stream.highest_received = stream.highest_received.max(id.seq);
                    st.answered = true;
                    let figures = reflector.map(|r| one_way(sent.wall, rx_wall, &r));
                    st.settle(id.seq, |s| {
                        s.reply(rtt, reordered);
                        if let Some(ow) = &figures {
                            s.one_way(ow, ttl);
                        }
                    });
                    st.trim();
                }
                if !self.quiet {
                    let one_way = reflector.map(|r| one_way(sent.wall, rx_wall, &r));
                    out.push(Entry {
                        target: id.target,
                        ts: rx_wall.unwrap_or_else(SystemTime::now),
                        body: Body::Reply(Reply {
                            target: st.target.name.clone(),
                            addr: st.target.addr,
                            src: st.src_of(id.seq),
                            seq: shown,
                            rtt_ms: record::ms(rtt),
                            ttl,
                            size,
                            tos,
                            flow: st.flow(id.seq),
                            dup: dup.then_some(true),
                            result: result.map(str::to_string),
                            syn_retransmits,
                            one_way,
                        }),
                    });
                }
            }
            ProbeEvent::Error {
                id,
                from,
                icmp_type,
                icmp_code,
                reason,
            } => {
                let Some(st) = self.states.get_mut(id.target) else {
                    return;
                };
                let Some(slot) = st.slot_mut(id.seq) else {
                    return;
                };
                if let Slot::Pending(_) = slot {
                    *slot = Slot::Failed;
                    self.pending_probes -= 1;
                    st.settle(id.seq, Stats::unreachable);
                    // The record shows the number the slot had before trimming let it go.
                    let body = (!self.quiet)
                        .then(|| st.unreachable(id.seq, from, icmp_type, icmp_code, reason));
                    st.trim();
                    if let Some(body) = body {
                        out.push(Entry {
                            target: id.target,
                            ts: SystemTime::now(),
                            body,
                        });
                    }
                }
            }
        }
    }

    /// Closes the current window: each target's window summaries (per stream, then its own)
    /// and its alert transitions, stamped `now`; `drops` are the sockets' counts now.
    pub fn close_window(&mut self, drops: &[SocketDrops], now: SystemTime) -> Vec<Entry> {
        let since = std::mem::replace(
            &mut self.drops_at_window,
            drops.iter().map(|d| d.count).collect(),
        );
        let name = &self.window_name;
        let mut out = Vec::new();
        for (t, st) in self.states.iter_mut().enumerate() {
            let window = std::mem::take(&mut st.window);
            let transitions = st.alerts.evaluate(&self.thresholds, &window);
            let windows: Vec<Stats> = st
                .streams
                .iter_mut()
                .map(|s| std::mem::take(&mut s.window))
                .collect();
            let (target, addr) = (&st.target.name, st.target.addr);
            let per_stream = if st.streams.len() > 1 {
                (st.streams.iter().zip(&windows))
                    .map(|(s, w)| w.summary(target, addr, s.flow, name))
                    .collect()
            } else {
                Vec::new()
            };
            let own = window.summary(target, addr, None, name);
            let summaries = st.summaries(per_stream, own, drops, &since);
            for summary in summaries {
                out.push(Entry {
                    target: t,
                    ts: now,
                    body: Body::Summary(summary),
                });
            }
            for tr in transitions {
                out.push(Entry {
                    target: t,
                    ts: now,
                    body: Body::Alert(Alert {
                        state: tr.state,
                        target: st.target.name.clone(),
                        addr,
                        src: st.src,
                        flow: None,
                        metric: tr.metric.to_string(),
                        value: tr.value,
                        threshold: tr.threshold,
                        window: name.clone(),
                    }),
                });
            }
        }
        out
    }

    /// Each target's run summaries (per stream, then its own); `drops` are the sockets'
    /// counts at the end.
    pub fn final_summaries(&self, drops: &[SocketDrops]) -> Vec<Entry> {
        let mut out = Vec::new();
        for (t, st) in self.states.iter().enumerate() {
            let (target, addr) = (&st.target.name, st.target.addr);
            let per_stream = if st.streams.len() > 1 {
                (st.streams.iter())
                    .map(|s| s.total.summary(target, addr, s.flow, "total"))
                    .collect()
            } else {
                Vec::new()
            };
            let own = st.total.summary(target, addr, None, "total");
            let summaries = st.summaries(per_stream, own, drops, &[]);
            for summary in summaries {
                out.push(Entry {
                    target: t,
                    ts: SystemTime::now(),
                    body: Body::Summary(summary),
                });
            }
        }
        out
    }

    /// Every stream's totals so far.
    pub fn stream_totals(&self) -> Vec<StreamTotal> {
        let mut streams = Vec::new();
        for (t, st) in self.states.iter().enumerate() {
            for stream in &st.streams {
                let s = stream.total.summary("", st.target.addr, None, "total");
                streams.push(StreamTotal {
                    target: t,
                    flow: stream.flow,
                    sent: s.sent,
                    received: s.received,
                    lost_fwd: s.lost_fwd,
                    lost_rev: s.lost_rev,
                });
            }
        }
        streams
    }

    /// Every target answered at least one probe.
    pub fn all_answered(&self) -> bool {
        self.states.iter().all(|s| s.answered)
    }

    /// Datagrams that could not be decoded.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Probes not sent because their flow was busy.
    pub fn skipped_busy(&self) -> u64 {
        self.skipped_busy
    }

    /// Probes the reflectors refused (lreflect's rate limit), over every target.
    pub fn refused(&self) -> u64 {
        self.states
            .iter()
            .filter_map(|st| st.total.summary("", st.target.addr, None, "total").refused)
            .sum()
    }
}

impl ProbeLookup for Ledger {
    fn by_addr_seq16(&self, addr: IpAddr, seq16: u16) -> Option<ProbeId> {
        for &t in self.by_addr.get(&addr.to_canonical())? {
            let st = &self.states[t];
            // The newest sequence number with these low 16 bits that we still know.
            let found = (0..st.slots.len())
                .rev()
                .map(|i| st.base_seq + i as u64)
                .find(|seq| *seq as u16 == seq16);
            if let Some(seq) = found {
                return Some(ProbeId { target: t, seq });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{AlertState, Summary};
    use std::time::Instant;

    fn target(addr: &str) -> Target {
        Target {
            name: addr.to_string(),
            addr: addr.parse().unwrap(),
            scope_id: 0,
            port: 0,
            tags: None,
        }
    }

    fn ledger(targets: &[&str], quiet: bool, thresholds: Thresholds) -> Ledger {
        let targets = targets.iter().map(|a| target(a)).collect();
        Ledger::new(targets, quiet, thresholds, "10s".into())
    }

    /// A send stamp `ms` milliseconds after `t0` on both clocks.
    fn stamp(t0: (SystemTime, Instant), ms: u64) -> SendStamp {
        let d = Duration::from_millis(ms);
        SendStamp {
            wall: t0.0 + d,
            mono: t0.1 + d,
        }
    }

    fn reply(id: ProbeId, from: &str, t0: (SystemTime, Instant), ms: u64) -> ProbeEvent {
        let d = Duration::from_millis(ms);
        ProbeEvent::Reply {
            id,
            from: from.parse().unwrap(),
            rx_wall: Some(t0.0 + d),
            rx_mono: t0.1 + d,
            ttl: Some(64),
            size: Some(64),
            tos: None,
            reflector: None,
            result: None,
            syn_retransmits: None,
        }
    }

    /// Sends the next probe of target `t` (stamped `ms` after `t0`); its id.
    fn send(l: &mut Ledger, t: usize, t0: (SystemTime, Instant), ms: u64) -> ProbeId {
        let id = l.next_probe(t).expect("still sending");
        assert!(l.launched(id, Launch::Sent(stamp(t0, ms)), None, &mut Vec::new()));
        id
    }

    fn summary(entries: &[Entry], flow: Option<u16>) -> &Summary {
        entries
            .iter()
            .find_map(|e| match &e.body {
                Body::Summary(s) if s.flow.map(|f| f.sport) == flow => Some(s),
                _ => None,
            })
            .expect("a summary")
    }

    #[test]
    fn every_answer_settles_its_probe_once() {
        let t0 = (SystemTime::now(), Instant::now());
        let mut l = ledger(&["10.0.0.2"], false, Thresholds::default());
        let mut out = Vec::new();
        let ids: Vec<ProbeId> = (0..5).map(|k| send(&mut l, 0, t0, k * 10)).collect();
        assert_eq!(l.pending_probes(), 5);
        // 1: answered, and again (a duplicate); 2: answered by someone else (ignored), then
        // by an ICMP error; 3: timed out, then answered (late); 4: answered after 5.
        l.on_event(reply(ids[0], "10.0.0.2", t0, 2), &mut out);
        l.on_event(reply(ids[0], "10.0.0.2", t0, 3), &mut out);
        l.on_event(reply(ids[1], "10.0.0.9", t0, 12), &mut out);
        l.on_event(
            ProbeEvent::Error {
                id: ids[1],
                from: Some("10.0.0.1".parse().unwrap()),
                icmp_type: Some(3),
                icmp_code: Some(1),
                reason: "host unreachable".into(),
            },
            &mut out,
        );
        assert!(l.expire(ids[2], &mut out));
        assert!(!l.expire(ids[2], &mut out), "a settled probe expires once");
        l.on_event(reply(ids[2], "10.0.0.2", t0, 1500), &mut out);
        l.on_event(reply(ids[4], "10.0.0.2", t0, 41), &mut out);
        l.on_event(reply(ids[3], "10.0.0.2", t0, 35), &mut out);
        assert!(l.finished() || l.sending_targets() == 1);
        assert_eq!(l.pending_probes(), 0);

        let kinds: Vec<(&str, u64)> = (out.iter())
            .map(|e| match &e.body {
                Body::Reply(r) if r.dup == Some(true) => ("dup", r.seq),
                Body::Reply(r) => ("reply", r.seq),
                Body::Unreachable(u) => ("unreachable", u.seq),
                Body::Timeout(t) => ("timeout", t.seq),
                _ => ("other", 0),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("reply", 1),
                ("dup", 1),
                ("unreachable", 2),
                ("timeout", 3),
                ("reply", 5),
                ("reply", 4)
            ]
        );
        let Body::Reply(r) = &out[0].body else {
            panic!()
        };
        assert_eq!(r.rtt_ms, 2.0);
        let Body::Unreachable(u) = &out[2].body else {
            panic!()
        };
        assert_eq!((u.icmp_type, u.icmp_code), (Some(3), Some(1)));

        let totals = l.final_summaries(&[]);
        let s = summary(&totals, None);
        assert_eq!((s.sent, s.received, s.dup, s.late), (5, 3, 1, 1));
        assert_eq!((s.unreachable, s.reordered), (1, 1));
        assert!(l.all_answered());
    }

    #[test]
    fn quiet_keeps_the_counts_and_writes_no_probe_record() {
        let t0 = (SystemTime::now(), Instant::now());
        let mut l = ledger(&["10.0.0.2"], true, Thresholds::default());
        let mut out = Vec::new();
        let a = send(&mut l, 0, t0, 0);
        let b = send(&mut l, 0, t0, 10);
        l.on_event(reply(a, "10.0.0.2", t0, 1), &mut out);
        l.expire(b, &mut out);
        let id = l.next_probe(0).unwrap();
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        l.launched(id, Launch::Failed(refused), None, &mut out);
        assert!(out.is_empty());
        let s = summary(&l.final_summaries(&[]), None).clone();
        assert_eq!((s.sent, s.received, s.unreachable), (3, 1, 1));
    }

    #[test]
    fn a_count_ends_the_target_once_every_stream_sent_it() {
        let t0 = (SystemTime::now(), Instant::now());
        let mut l = ledger(&["10.0.0.2"], false, Thresholds::default());
        let flow = |sport| {
            Some(Flow {
                sport,
                dport: 7,
                dscp: None,
            })
        };
        l.set_streams(0, vec![(flow(4000), None), (flow(4001), None)]);
        let mut out = Vec::new();
        // Probe 1 (stream 0) left; probe 2 (stream 1) was not, its flow busy: counted, and
        // the records' numbers skip it.
        let one = l.next_probe(0).unwrap();
        assert!(l.launched(one, Launch::Sent(stamp(t0, 0)), Some(1), &mut out));
        let two = l.next_probe(0).unwrap();
        assert!(!l.stream_done(two, Some(1)));
        assert!(l.launched(two, Launch::NotSent { busy: true }, Some(1), &mut out));
        assert!(l.stream_done(ProbeId { seq: 3, ..two }, Some(1)));
        let three = l.next_probe(0).unwrap();
        assert!(l.launched(three, Launch::NotSent { busy: false }, Some(1), &mut out));
        let four = l.next_probe(0).unwrap();
        assert!(!l.launched(four, Launch::Sent(stamp(t0, 30)), Some(1), &mut out));
        assert_eq!(l.next_probe(0), None);
        assert_eq!(l.skipped_busy(), 1);
        l.on_event(reply(four, "10.0.0.2", t0, 31), &mut out);
        let Body::Reply(r) = &out[0].body else {
            panic!()
        };
        assert_eq!((r.seq, r.flow.map(|f| f.sport)), (2, Some(4001)));
        // Figures count settled probes only.
        assert_eq!(summary(&l.final_summaries(&[]), None).sent, 1);
        l.expire(one, &mut out);
        let totals = l.final_summaries(&[]);
        assert_eq!(totals.len(), 3, "a summary per stream, then the target's");
        assert_eq!(summary(&totals, Some(4000)).received, 0);
        assert_eq!(summary(&totals, Some(4001)).received, 1);
        assert_eq!(summary(&totals, None).sent, 2);
        let streams = l.stream_totals();
        assert_eq!(streams.iter().map(|s| s.sent).collect::<Vec<_>>(), [1, 1]);
    }

    #[test]
    fn windows_start_afresh_and_alerts_fire_then_resolve() {
        let t0 = (SystemTime::now(), Instant::now());
        let thresholds = Thresholds {
            loss_pct: Some(10.0),
            rtt_ms: None,
        };
        let mut l = ledger(&["10.0.0.2"], false, thresholds);
        let mut out = Vec::new();
        let lost = send(&mut l, 0, t0, 0);
        l.expire(lost, &mut out);
        let first = l.close_window(&[], SystemTime::now());
        let s = summary(&first, None);
        assert_eq!((s.window.as_str(), s.sent, s.received), ("10s", 1, 0));
        let alert = |entries: &[Entry]| {
            entries.iter().find_map(|e| match &e.body {
                Body::Alert(a) => Some(a.state),
                _ => None,
            })
        };
        assert_eq!(alert(&first), Some(AlertState::Firing));
        let ok = send(&mut l, 0, t0, 10);
        l.on_event(reply(ok, "10.0.0.2", t0, 11), &mut out);
        let second = l.close_window(&[], SystemTime::now());
        let s = summary(&second, None);
        assert_eq!((s.sent, s.received), (1, 1), "the window starts afresh");
        assert_eq!(alert(&second), Some(AlertState::Resolved));
        assert_eq!(summary(&l.final_summaries(&[]), None).sent, 2);
    }

    #[test]
    fn drops_on_this_host_count_per_window_on_the_family_socket() {
        let mut l = ledger(&["10.0.0.2", "fd00::2"], false, Thresholds::default());
        let drops = |v4: u64, v6: u64| {
            vec![
                SocketDrops {
                    socket: "v4".into(),
                    count: v4,
                    family: crate::wire::Family::V4,
                    sport: None,
                },
                SocketDrops {
                    socket: "v6".into(),
                    count: v6,
                    family: crate::wire::Family::V6,
                    sport: None,
                },
            ]
        };
        let first = l.close_window(&drops(3, 0), SystemTime::now());
        let dropped = |entries: &[Entry], t: usize| match &entries[t].body {
            Body::Summary(s) => s.dropped_local,
            _ => panic!("a summary"),
        };
        assert_eq!((dropped(&first, 0), dropped(&first, 1)), (Some(3), None));
        let second = l.close_window(&drops(5, 1), SystemTime::now());
        assert_eq!(
            (dropped(&second, 0), dropped(&second, 1)),
            (Some(2), Some(1))
        );
        let totals = l.final_summaries(&drops(5, 1));
        assert_eq!(
            (dropped(&totals, 0), dropped(&totals, 1)),
            (Some(5), Some(1))
        );
    }

    #[test]
    fn short_sequence_numbers_find_the_newest_probe_of_the_address() {
        let t0 = (SystemTime::now(), Instant::now());
        let mut l = ledger(&["10.0.0.2", "10.0.0.3"], false, Thresholds::default());
        for k in 0..3 {
            send(&mut l, 0, t0, k);
        }
        send(&mut l, 1, t0, 0);
        let found = |addr: &str, seq16| l.by_addr_seq16(addr.parse().unwrap(), seq16);
        assert_eq!(found("10.0.0.2", 2), Some(ProbeId { target: 0, seq: 2 }));
        assert_eq!(
            found("::ffff:10.0.0.3", 1),
            Some(ProbeId { target: 1, seq: 1 })
        );
        assert_eq!(found("10.0.0.3", 2), None);
        assert_eq!(found("10.0.0.4", 1), None);
    }
}
