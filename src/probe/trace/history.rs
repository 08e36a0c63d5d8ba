//! A flow's paths over a run traced again and again (`--trace-every`), as `path` records that
//! are each a route sample: a path and the probes the flow sent while it was the flow's path.

use super::{HopResult, TraceResult, TracedFlow};
use crate::probe::StreamTotal;
use crate::record::Path;

/// Every followed flow's current path and where its counts stood at its last record.
///
/// Records: (1) after the first trace, each flow's path with `sent: 0, lost: 0`; (2) when a
/// later round finds a flow's path changed, the old path again with the probes counted since
/// its last record (they went while it was the flow's path, as far as the traces know), then
/// the new path with `sent: 0, lost: 0`; (3) at the end, each flow's path with the probes since
/// its last record. Each path's counts are its own, and a flow's records add up to its totals.
pub struct PathHistory {
    flows: Vec<FollowedFlow>,
}

struct FollowedFlow {
    target: usize,
    result: TraceResult,
    path: Path,
    /// The flow's run totals when its last record with counts was written.
    at_last: FlowCounts,
}

/// A flow's run totals: probes settled, answered, and the lost ones placed on either direction
/// when the prober places loss (`None` until it placed any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCounts {
    pub sent: u64,
    pub received: u64,
    pub lost_fwd: Option<u64>,
    pub lost_rev: Option<u64>,
}

/// A flow's run totals over every class of its 5-tuple (every class shares it, hence its
/// path).
pub fn flow_totals(totals: &[StreamTotal], target: usize, sport: u16) -> FlowCounts {
    let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (a, b) => a.or(b),
    };
    totals
        .iter()
        .filter(|s| s.target == target && s.flow.is_none_or(|f| f.sport == sport))
        .fold(FlowCounts::default(), |c, s| FlowCounts {
            sent: c.sent + s.sent,
            received: c.received + s.received,
            lost_fwd: add(c.lost_fwd, s.lost_fwd),
            lost_rev: add(c.lost_rev, s.lost_rev),
        })
}

/// Whether two traces of a flow found different paths: a different end (`reached`, or the
/// number of hops), or a hop that answered in both with no address in common. A hop silent in
/// either is no evidence of a change.
pub fn changed(old: &TraceResult, new: &TraceResult) -> bool {
    old.reached != new.reached
        || old.hops.len() != new.hops.len()
        || old.hops.iter().zip(&new.hops).any(|(a, b)| {
            !a.addrs.is_empty()
                && !b.addrs.is_empty()
                && !a.addrs.iter().any(|x| b.addrs.contains(x))
        })
}

/// `current` with the hops it has no answer for taken from `new` (the same path).
fn fill_in(current: &mut TraceResult, new: &TraceResult) -> bool {
    let mut filled = false;
    for (c, n) in current.hops.iter_mut().zip(&new.hops) {
        if c.addrs.is_empty() && !n.addrs.is_empty() {
            *c = HopResult {
                addrs: n.addrs.clone(),
                rtt: n.rtt,
            };
            filled = true;
        }
    }
    filled
}

impl PathHistory {
    /// Starts following the flows of a first trace; returns their first records (nothing
    /// sent yet).
    pub fn start(traced: Vec<TracedFlow>) -> (PathHistory, Vec<(usize, Path)>) {
        let mut history = PathHistory { flows: Vec::new() };
        let mut records = Vec::new();
        for tf in traced {
            let zero = FlowCounts::default();
            records.push((tf.target, with_counts(&tf.path, zero, zero)));
            history.flows.push(FollowedFlow {
                target: tf.target,
                result: tf.result,
                path: tf.path,
                at_last: zero,
            });
        }
        (history, records)
    }

    /// A new trace of the same flows, in the same order: for each flow whose path changed
    /// (see [`changed`]), its old path with its counts since its last record, then its new
    /// path with none. A flow whose path did not change keeps it, with hops that were silent
    /// so far filled in from this round.
    pub fn update(
        &mut self,
        traced: Vec<TracedFlow>,
        totals: &[StreamTotal],
    ) -> Vec<(usize, Path)> {
        let mut records = Vec::new();
        for (f, tf) in self.flows.iter_mut().zip(traced) {
            if tf.target != f.target || tf.path.sport != f.path.sport {
                continue;
            }
            if !changed(&f.result, &tf.result) {
                if fill_in(&mut f.result, &tf.result) {
                    f.path.hops = f.result.hop_records();
                }
                continue;
            }
            let now = flow_totals(totals, f.target, f.path.sport);
            records.push((f.target, with_counts(&f.path, f.at_last, now)));
            records.push((f.target, with_counts(&tf.path, now, now)));
            f.result = tf.result;
            f.path = tf.path;
            f.at_last = now;
        }
        records
    }

    /// Every flow's last path with its counts since its last record: the end of the run.
    pub fn finish(&self, totals: &[StreamTotal]) -> Vec<(usize, Path)> {
        self.flows
            .iter()
            .map(|f| {
                let now = flow_totals(totals, f.target, f.path.sport);
                (f.target, with_counts(&f.path, f.at_last, now))
            })
            .collect()
    }
}

/// `path` with the probes sent and lost between two readings of a flow's totals, and of
/// those the ones placed on either direction when the prober places loss. No probe is in
/// flight at either reading, so every probe counted is settled; the probers start placing
/// afresh after each trace round, so no run of lost probes straddles two readings.
pub fn with_counts(path: &Path, before: FlowCounts, now: FlowCounts) -> Path {
    let sent = now.sent.saturating_sub(before.sent);
    let received = now.received.saturating_sub(before.received);
    let since =
        |now: Option<u64>, before: Option<u64>| now.map(|n| n.saturating_sub(before.unwrap_or(0)));
    Path {
        sent: Some(sent),
        lost: Some(sent.saturating_sub(received)),
        lost_fwd: since(now.lost_fwd, before.lost_fwd),
        lost_rev: since(now.lost_rev, before.lost_rev),
        ..path.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Flow;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn result(hops: &[&[&str]], reached: bool) -> TraceResult {
        TraceResult {
            hops: hops
                .iter()
                .map(|addrs| HopResult {
                    addrs: addrs.iter().map(|a| ip(a)).collect(),
                    rtt: None,
                })
                .collect(),
            reached,
        }
    }

    fn traced(hops: &[&[&str]], reached: bool) -> TracedFlow {
        let r = result(hops, reached);
        TracedFlow {
            target: 0,
            path: r.to_path(ip("10.1.1.1"), ip("10.2.1.1"), "udp", 4000, 7),
            result: r,
        }
    }

    fn totals(sent: u64, received: u64) -> Vec<StreamTotal> {
        vec![StreamTotal {
            target: 0,
            flow: Some(Flow {
                sport: 4000,
                dport: 7,
                dscp: None,
            }),
            sent,
            received,
            lost_fwd: None,
            lost_rev: None,
        }]
    }

    #[test]
    fn placed_loss_is_counted_per_sample() {
        let flow = Some(Flow {
            sport: 4000,
            dport: 7,
            dscp: None,
        });
        let stream = |dscp, sent, received, split: Option<(u64, u64)>| StreamTotal {
            target: 0,
            flow: flow.map(|f| Flow { dscp, ..f }),
            sent,
            received,
            lost_fwd: split.map(|s| s.0),
            lost_rev: split.map(|s| s.1),
        };
        // Two classes of the flow: one placed, one not (yet).
        let totals = [
            stream(Some(46), 10, 7, Some((2, 1))),
            stream(Some(0), 10, 10, None),
        ];
        let now = flow_totals(&totals, 0, 4000);
        assert_eq!(
            (now.sent, now.lost_fwd, now.lost_rev),
            (20, Some(2), Some(1))
        );
        let t = traced(A, true);
        let p = with_counts(&t.path, FlowCounts::default(), now);
        assert_eq!(
            (p.lost, p.lost_fwd, p.lost_rev),
            (Some(3), Some(2), Some(1))
        );
        // The next sample: only what was placed since.
        let later = FlowCounts {
            sent: 30,
            received: 26,
            lost_fwd: Some(2),
            lost_rev: Some(2),
        };
        let p = with_counts(&t.path, now, later);
        assert_eq!(
            (p.lost, p.lost_fwd, p.lost_rev),
            (Some(1), Some(0), Some(1))
        );
        // A prober that places nothing: absent.
        let p = with_counts(&t.path, FlowCounts::default(), FlowCounts::default());
        assert_eq!((p.lost_fwd, p.lost_rev), (None, None));
    }

    const A: &[&[&str]] = &[&["10.0.0.1"], &["10.0.11.2"], &["10.2.1.1"]];
    const A_SILENT: &[&[&str]] = &[&["10.0.0.1"], &[], &["10.2.1.1"]];
    const B: &[&[&str]] = &[&["10.0.0.1"], &["10.0.12.2"], &["10.2.1.1"]];

    #[test]
    fn a_hop_silent_in_one_round_is_no_change() {
        let (mut h, first) = PathHistory::start(vec![traced(A, true)]);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].1.sent, first[0].1.lost), (Some(0), Some(0)));
        assert!(h
            .update(vec![traced(A_SILENT, true)], &totals(10, 10))
            .is_empty());
        // Silent first, answering later: no change either, and the hop is filled in.
        let (mut h2, _) = PathHistory::start(vec![traced(A_SILENT, true)]);
        assert!(h2.update(vec![traced(A, true)], &totals(10, 9)).is_empty());
        let end = h2.finish(&totals(20, 18));
        assert_eq!(end[0].1.hops[1].addr, Some(ip("10.0.11.2")), "filled in");
        assert_eq!((end[0].1.sent, end[0].1.lost), (Some(20), Some(2)));
        // The silent round left the first path in place: a later change is still seen.
        let recs = h.update(vec![traced(B, true)], &totals(30, 28));
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].1.hops[1].addr, Some(ip("10.0.11.2")));
        assert_eq!(recs[1].1.hops[1].addr, Some(ip("10.0.12.2")));
    }

    #[test]
    fn another_address_or_end_is_a_change() {
        assert!(changed(&result(A, true), &result(B, true)));
        assert!(changed(&result(A, true), &result(A, false)), "reached");
        assert!(
            changed(&result(A, true), &result(&A[..2], true)),
            "another length"
        );
        assert!(!changed(&result(A, true), &result(A_SILENT, true)));
        assert!(!changed(&result(A_SILENT, true), &result(B, true)));
        let both: &[&[&str]] = &[&["10.0.0.1"], &["10.0.12.2", "10.0.11.2"], &["10.2.1.1"]];
        assert!(
            !changed(&result(A, true), &result(both, true)),
            "an address in common"
        );
    }

    #[test]
    fn a_change_closes_the_old_path_with_its_counts_and_opens_the_new_one() {
        let (mut h, _) = PathHistory::start(vec![traced(A, true)]);
        assert!(h.update(vec![traced(A, true)], &totals(100, 95)).is_empty());
        let recs = h.update(vec![traced(B, true)], &totals(150, 140));
        assert_eq!(recs.len(), 2);
        let (old, new) = (&recs[0].1, &recs[1].1);
        assert_eq!(old.hops[1].addr, Some(ip("10.0.11.2")));
        assert_eq!((old.sent, old.lost), (Some(150), Some(10)));
        assert_eq!(new.hops[1].addr, Some(ip("10.0.12.2")));
        assert_eq!((new.sent, new.lost), (Some(0), Some(0)));
        let end = h.finish(&totals(400, 389));
        assert_eq!(end[0].1.hops[1].addr, Some(ip("10.0.12.2")));
        assert_eq!((end[0].1.sent, end[0].1.lost), (Some(250), Some(1)));
    }
}
