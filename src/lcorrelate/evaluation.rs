//! The benchmark's evaluation: every method against the faults a simulated run injected
//! (see [`super::sim`]), and the tallies the benchmark's table reports.

use super::estimate::Params;
use super::graph::Problem;
use super::input::{Aggregator, Aliases};
use super::report::{self, Method};
use super::sim::Run;
use crate::record::Verdict;
use std::collections::HashMap;

/// What one method got right and wrong in one run. A record names a fault when its link,
/// or one of its group's links, is that physical link (its addresses, silent hops included,
/// stand for the fault's two nodes); one fault may be named by several records (a router
/// seen under several addresses that nothing joins).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    /// Faults injected (distinct physical links).
    pub k: usize,
    /// The first record names a fault.
    pub top1: bool,
    /// Faults named by the first k records, over k.
    pub recall_at_k: f64,
    /// Faulty records that name a fault, and that name none.
    pub tp: usize,
    pub fp: usize,
    /// Faults no faulty record names.
    pub fn_: usize,
}

impl Run {
    /// The problem lcorrelate builds from the run's records.
    pub fn problem(&self) -> Problem {
        let mut agg = Aggregator::new(Aliases::new());
        for l in &self.lines {
            // The simulator writes valid lines only.
            let _ = agg.add_line(l.as_bytes());
        }
        Problem::from_aggregator(agg)
    }
}

/// Runs every method on one simulated run.
pub fn evaluate(run: &Run, methods: &[Method], params: &Params) -> Vec<Outcome> {
    let p = run.problem();
    // Records name links by addresses; the faults are node pairs.
    let mut node_cache: HashMap<String, Option<u32>> = HashMap::new();
    let mut node = |name: &str| {
        *node_cache
            .entry(name.to_string())
            .or_insert_with(|| run.node_of(name))
    };
    let mut truth: Vec<(Option<u32>, Option<u32>)> = run
        .faults
        .iter()
        .map(|(a, b, _)| (node(a), node(b)))
        .collect();
    truth.sort_unstable();
    truth.dedup();
    let model = super::estimate::flock(&p, params);
    methods
        .iter()
        .map(|&m| {
            let scores = report::score_with(&p, m, params, model.clone());
            let ranked = report::rank(&p, &scores, params);
            // Per record, the faults it names (indices into `truth`).
            let mut named = |ls: &crate::record::LinkScore| -> Vec<usize> {
                let ends: Vec<(Option<u32>, Option<u32>)> = match &ls.group {
                    Some(g) => g.iter().map(|e| (node(&e.from), node(&e.to))).collect(),
                    None => vec![(node(&ls.from), node(&ls.to))],
                };
                (0..truth.len())
                    .filter(|&f| ends.contains(&truth[f]))
                    .collect()
            };
            let names: Vec<Vec<usize>> = ranked.iter().map(&mut named).collect();
            let k = truth.len();
            let mut o = Outcome {
                k,
                ..Default::default()
            };
            o.top1 = names.first().is_some_and(|n| !n.is_empty());
            let found = |records: &mut dyn Iterator<Item = &Vec<usize>>| {
                let mut seen = vec![false; k];
                for &f in records.flatten() {
                    seen[f] = true;
                }
                seen.iter().filter(|&&s| s).count()
            };
            o.recall_at_k = if k == 0 {
                1.0
            } else {
                found(&mut names.iter().take(k)) as f64 / k as f64
            };
            let faulty: Vec<bool> = ranked
                .iter()
                .map(|l| l.verdict == Verdict::Faulty)
                .collect();
            for (n, &f) in names.iter().zip(&faulty) {
                match (f, n.is_empty()) {
                    (true, false) => o.tp += 1,
                    (true, true) => o.fp += 1,
                    _ => {}
                }
            }
            o.fn_ = k - found(&mut names.iter().zip(&faulty).filter(|x| *x.1).map(|x| x.0));
            o
        })
        .collect()
}

/// Totals over many runs of one scenario, for one method.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub runs: usize,
    pub runs_with_faults: usize,
    pub top1: usize,
    pub recall_sum: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    /// Faults injected over all runs.
    pub faults: usize,
}

impl Tally {
    pub fn add(&mut self, o: &Outcome) {
        self.runs += 1;
        if o.k > 0 {
            self.runs_with_faults += 1;
            self.top1 += o.top1 as usize;
            self.recall_sum += o.recall_at_k;
        }
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.faults += o.k;
    }

    pub fn top1(&self) -> f64 {
        self.top1 as f64 / self.runs_with_faults.max(1) as f64
    }
    pub fn recall_at_k(&self) -> f64 {
        self.recall_sum / self.runs_with_faults.max(1) as f64
    }
    pub fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }
    /// Faults named by some faulty record, over the faults.
    pub fn recall(&self) -> f64 {
        if self.faults == 0 {
            1.0
        } else {
            (self.faults - self.fn_) as f64 / self.faults as f64
        }
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    pub fn false_alarms_per_run(&self) -> f64 {
        self.fp as f64 / self.runs.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lcorrelate::sim::{simulate, Addressing, RoundTrip, Scenario, Topology};

    #[test]
    fn a_link_losing_every_packet_is_not_split_into_two_kinds_of_loss() {
        // Arrival addressing, round trips, a 4 x 4 leaf-spine with four faults (seed 208):
        // among them spine 10.0.0.6's link down to leaf 10.0.0.2, losing every packet. Its
        // probes-only rate and an answers-only rate on another spine's link into that leaf
        // (the answers may arrive over any spine) fit about as well as its one rate for
        // every packet; taking that pair named 10.0.0.8 -> 10.0.0.2 faulty. The whole rate
        // goes first when it gains about as much.
        let mut sc = Scenario::new(
            Topology::LeafSpine {
                leaves: 4,
                spines: 4,
                hosts_per_leaf: 4,
            },
            4,
        );
        sc.addressing = Addressing::Arrival;
        sc.round_trip = RoundTrip::Total;
        let run = simulate(&sc, 208);
        let o = evaluate(&run, &[Method::Flock], &Params::default())[0];
        assert_eq!((o.fn_, o.fp), (0, 0), "{o:?} {:?}", run.faults);
    }
}
