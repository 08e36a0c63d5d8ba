//! One target's bookkeeping: a slot per probe (pending, answered, lost, failed, not sent), the
//! numbers its records show, and its streams' statistics.

use crate::alert::Alerts;
use crate::probe::{SendStamp, SocketDrops};
use crate::record::{self, Body, Flow, Summary, Unreachable};
use crate::stats::Stats;
use crate::target::Target;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Settled slots kept behind the oldest pending one.
const SETTLED_HISTORY: usize = 256;

/// What became of a probe. Kept for a while after settling, to recognise duplicates and
/// late replies.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    Pending(SendStamp),
    Received(SendStamp),
    Lost,
    Failed,
    /// Not sent: its flow was busy ([`crate::probe::Prober::flow_busy`]), or its stream had
    /// sent its count.
    Skipped,
}

/// The statistics of one stream (a flow in a class) of a target.
pub(super) struct Stream {
    pub(super) flow: Option<Flow>,
    /// The local address its probes leave from ([`crate::probe::Prober::source`]).
    pub(super) src: Option<IpAddr>,
    pub(super) total: Stats,
    pub(super) window: Stats,
    /// Reordering is judged within a stream: different flows may take different paths.
    pub(super) highest_received: u64,
    /// Probes that left on this stream (for `-c`: a probe not sent for a busy flow does not
    /// count).
    pub(super) launched: u64,
}

impl Stream {
    pub(super) fn new(flow: Option<Flow>, src: Option<IpAddr>) -> Stream {
        Stream {
            flow,
            src,
            total: Stats::new(),
            window: Stats::new(),
            highest_received: 0,
            launched: 0,
        }
    }
}

pub(super) struct TargetState {
    pub(super) target: Target,
    /// The next sequence number to send (sequence numbers start at 1).
    pub(super) next_seq: u64,
    pub(super) sending: bool,
    /// Slots of sequence numbers `base_seq..`, each with the number its records show.
    pub(super) slots: VecDeque<(Slot, u64)>,
    /// Probes that left (or failed to), so far: the `seq` records show counts these, from 1
    /// and without gaps, while the schedule's own numbers also count the probes not sent for
    /// a busy flow ([`Slot::Skipped`]).
    pub(super) shown: u64,
    pub(super) base_seq: u64,
    pub(super) answered: bool,
    pub(super) total: Stats,
    pub(super) window: Stats,
    pub(super) alerts: Alerts,
    /// Flows × classes: probe k goes to stream (k − 1) mod streams.
    pub(super) streams: Vec<Stream>,
    /// The local address every stream's probes leave from, when they share one (the target's
    /// own summary and alerts show it).
    pub(super) src: Option<IpAddr>,
}

impl TargetState {
    pub(super) fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        let i = usize::try_from(seq.checked_sub(self.base_seq)?).ok()?;
        self.slots.get_mut(i).map(|(slot, _)| slot)
    }

    /// The `seq` the records of probe `seq` (a schedule number) show.
    pub(super) fn shown_seq(&self, seq: u64) -> u64 {
        let i = seq
            .checked_sub(self.base_seq)
            .and_then(|i| usize::try_from(i).ok());
        i.and_then(|i| self.slots.get(i))
            .map_or(seq, |(_, shown)| *shown)
    }

    /// Appends the slot of the next schedule number; a probe that left takes the next shown
    /// number.
    pub(super) fn push_slot(&mut self, slot: Slot) {
        if !matches!(slot, Slot::Skipped) {
            self.shown += 1;
        }
        self.slots.push_back((slot, self.shown));
    }

    pub(super) fn stream_of(&self, seq: u64) -> usize {
        (seq.saturating_sub(1) % self.streams.len().max(1) as u64) as usize
    }

    /// The local address probe `seq` left from.
    pub(super) fn src_of(&self, seq: u64) -> Option<IpAddr> {
        self.streams.get(self.stream_of(seq)).and_then(|s| s.src)
    }

    pub(super) fn flow(&self, seq: u64) -> Option<Flow> {
        self.streams.get(self.stream_of(seq)).and_then(|s| s.flow)
    }

    /// Applies a probe's outcome to the target's and its stream's statistics, run and window.
    pub(super) fn settle(&mut self, seq: u64, outcome: impl Fn(&mut Stats)) {
        outcome(&mut self.total);
        outcome(&mut self.window);
        let i = self.stream_of(seq);
        if let Some(stream) = self.streams.get_mut(i) {
            outcome(&mut stream.total);
            outcome(&mut stream.window);
        }
    }

    pub(super) fn trim(&mut self) {
        while self.slots.len() > SETTLED_HISTORY
            && !matches!(self.slots.front(), Some((Slot::Pending(_), _)))
        {
            self.slots.pop_front();
            self.base_seq += 1;
        }
    }

    /// The `unreachable` record of probe `seq`: an ICMP error (`from` the router that sent it,
    /// its type and code) or a local send error (no `from`).
    pub(super) fn unreachable(
        &self,
        seq: u64,
        from: Option<IpAddr>,
        icmp_type: Option<u8>,
        icmp_code: Option<u8>,
        reason: String,
    ) -> Body {
        Body::Unreachable(Unreachable {
            target: self.target.name.clone(),
            addr: self.target.addr,
            src: self.src_of(seq),
            seq: self.shown_seq(seq),
            from,
            icmp_type,
            icmp_code,
            reason,
            flow: self.flow(seq),
        })
    }

    /// The target's summaries: one per stream when it has several (`per_stream`, in the
    /// streams' order), then its own; each with its local address and the datagrams dropped on
    /// the sockets its answers arrive on since the counts `since`.
    pub(super) fn summaries(
        &self,
        per_stream: Vec<Summary>,
        own: Summary,
        drops: &[SocketDrops],
        since: &[u64],
    ) -> Vec<Summary> {
        let srcs = self.streams.iter().map(|s| s.src);
        let mut summaries: Vec<Summary> = per_stream
            .into_iter()
            .zip(srcs)
            .map(|(summary, src)| Summary { src, ..summary })
            .collect();
        summaries.push(Summary {
            src: self.src,
            ..own
        });
        for summary in &mut summaries {
            summary.dropped_local = dropped_for(summary, drops, since);
        }
        summaries
    }
}

/// The datagrams dropped on the sockets a summary's answers arrive on (those of its address
/// family, and of its flow when it is a flow's), since the counts `since` (by socket; none:
/// since the sockets opened). `None` when there were none.
fn dropped_for(summary: &record::Summary, drops: &[SocketDrops], since: &[u64]) -> Option<u64> {
    let family = crate::wire::Family::of(&summary.addr);
    let sport = summary.flow.map(|f| f.sport);
    let total: u64 = drops
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            d.family == family && (sport.is_none() || d.sport.is_none() || d.sport == sport)
        })
        .map(|(i, d)| d.count.saturating_sub(since.get(i).copied().unwrap_or(0)))
        .sum();
    (total > 0).then_some(total)
}
