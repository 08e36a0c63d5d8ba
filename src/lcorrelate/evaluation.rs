//! The benchmark's evaluation: every method against the faults a simulated run injected
//! (see [`super::sim`]), and the tallies the benchmark's table reports.

use super::estimate::Params;
use super::graph::Problem;
use super::input::{Aggregator, Aliases};
use super::report::{self, Method};
use super::sim::Run;
use crate::record::Verdict;
use std::collections::{HashMap, HashSet};

/// What one method got right and wrong in one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    /// Distinct link groups holding a fault.
    pub k: usize,
    pub top1: bool,
    /// Faulty groups among the first k, over k.
    pub recall_at_k: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
}

/// Runs every method on one simulated run.
pub fn evaluate(run: &Run, methods: &[Method], params: &Params) -> Vec<Outcome> {
    let mut agg = Aggregator::new(Aliases::new());
    for l in &run.lines {
        // The simulator writes valid lines only.
        let _ = agg.add_line(l.as_bytes());
    }
    let p = Problem::from_aggregator(agg);
    // Records name links by addresses; the faults are node pairs.
    let mut node_cache: HashMap<String, Option<u32>> = HashMap::new();
    let mut node = |name: &str| {
        *node_cache
            .entry(name.to_string())
            .or_insert_with(|| run.node_of(name))
    };
    let truth: HashSet<(Option<u32>, Option<u32>)> = run
        .faults
        .iter()
        .map(|(a, b, _)| (node(a), node(b)))
        .collect();
    let model = super::estimate::flock(&p, params);
    methods
        .iter()
        .map(|&m| {
            let scores = report::score_with(&p, m, params, model.clone());
            let ranked = report::rank(&p, &scores, params);
            let mut is_true = |ls: &crate::record::LinkScore| match &ls.group {
                Some(g) => g
                    .iter()
                    .any(|e| truth.contains(&(node(&e.from), node(&e.to)))),
                None => truth.contains(&(node(&ls.from), node(&ls.to))),
            };
            let hits: Vec<bool> = ranked.iter().map(&mut is_true).collect();
            let k = hits.iter().filter(|h| **h).count();
            let mut o = Outcome {
                k,
                ..Default::default()
            };
            o.top1 = hits.first().copied().unwrap_or(false);
            o.recall_at_k = if k == 0 {
                1.0
            } else {
                hits.iter().take(k).filter(|h| **h).count() as f64 / k as f64
            };
            for (ls, &hit) in ranked.iter().zip(&hits) {
                match (ls.verdict == Verdict::Faulty, hit) {
                    (true, true) => o.tp += 1,
                    (true, false) => o.fp += 1,
                    (false, true) => o.fn_ += 1,
                    _ => {}
                }
            }
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
    pub fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
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
