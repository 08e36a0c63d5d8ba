//! From scores to `link` records, best suspect first, and to Graphviz.

use super::estimate::{self, Params, Scores};
use super::graph::Problem;
use crate::record::{LinkEnds, LinkScore, Verdict};
use std::fmt::Write as _;

/// The ranking methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Likelihood model of every flow's loss given its links, with a prior on faults (Flock).
    Flock,
    /// Iterative voting (007), delivered probes voting against their links.
    Vote,
    /// Difference of means (the seed's score, also written as `suspicion`).
    Diff,
}

/// Scores every group with the chosen method; `loss_est` always comes from the model, and
/// whatever the method, a link is faulty only when that estimate exceeds `min_loss` (the most
/// a healthy link may lose): a verdict never contradicts the loss written next to it.
pub fn score(p: &Problem, method: Method, params: &Params) -> Scores {
    score_with(p, method, params, estimate::flock(p, params))
}

/// [`score`] with the likelihood model's result already at hand.
pub fn score_with(p: &Problem, method: Method, params: &Params, model: Scores) -> Scores {
    let mut s = match method {
        Method::Flock => model,
        Method::Vote => {
            let (score, faulty) = estimate::vote(p, params);
            Scores {
                score,
                faulty,
                loss_est: model.loss_est,
                twins: model.twins,
            }
        }
        Method::Diff => {
            let score = estimate::diff(p);
            let faulty = score.iter().map(|&s| s >= params.min_loss).collect();
            Scores {
                score,
                faulty,
                loss_est: model.loss_est,
                twins: model.twins,
            }
        }
    };
    let cap = estimate::healthy_cap(params);
    for (f, &x) in s.faulty.iter_mut().zip(&s.loss_est) {
        *f &= x > cap;
    }
    s
}

/// One `link` record per suspect, best first: faulty before ok, then by score, then by lost
/// packets. A suspect is a group with enough samples, together with every other such group
/// that shares a physical link with it (a link's probe and answer unknowns, or a host link's
/// two directions that round trips cannot tell apart): one record names it, its `group`
/// lists every physical link in it, and it is faulty when any of its groups is.
pub fn rank(p: &Problem, s: &Scores, params: &Params) -> Vec<LinkScore> {
    ranking(p, s, params).records().collect()
}

/// The suspects of [`rank`], best first, whose records are made one at a time: at data-center
/// scale the records all at once (each with its address pairs as strings) took more memory
/// than the model's fit.
pub struct Ranking<'a> {
    p: &'a Problem,
    s: &'a Scores,
    suspicion: Vec<f64>,
    /// The groups leading a suspect, best first.
    leads: Vec<usize>,
    /// Per leading group, the groups of its suspect.
    members: Vec<Vec<usize>>,
}

/// The suspects: groups with enough samples, joined as [`rank`] says.
pub fn ranking<'a>(p: &'a Problem, s: &'a Scores, params: &Params) -> Ranking<'a> {
    let suspicion = estimate::diff(p);
    let mut order: Vec<usize> = (0..p.groups.len())
        .filter(|&g| p.groups[g].sent >= params.min_samples.max(1))
        .collect();
    order.sort_by(|&a, &b| {
        s.faulty[b]
            .cmp(&s.faulty[a])
            .then(s.score[b].total_cmp(&s.score[a]))
            .then(p.groups[b].lost.cmp(&p.groups[a].lost))
            .then(a.cmp(&b))
    });
    // Suspects: groups joined through shared physical links; the best group leads.
    let mut lead: Vec<Option<usize>> = vec![None; p.groups.len()];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); p.groups.len()];
    for &g in &order {
        // Breadth-first over shared links, from the best group not yet in a suspect.
        if lead[g].is_some() {
            continue;
        }
        let mut queue = vec![g];
        lead[g] = Some(g);
        while let Some(h) = queue.pop() {
            members[g].push(h);
            // Groups the data cannot tell from this one join it too.
            for &t in &s.twins[h] {
                let t = t as usize;
                if lead[t].is_none() {
                    lead[t] = Some(g);
                    queue.push(t);
                }
            }
            for &l in &p.groups[h].links {
                for &other in &p.groups_of_link[l as usize] {
                    let o = other as usize;
                    if lead[o].is_none() && p.groups[o].sent >= params.min_samples.max(1) {
                        lead[o] = Some(g);
                        queue.push(o);
                    }
                }
            }
        }
    }
    merge_split_views(p, s, &order, &mut lead, &mut members);
    Ranking {
        p,
        s,
        suspicion,
        leads: order.into_iter().filter(|&g| lead[g] == Some(g)).collect(),
        members,
    }
}

impl Ranking<'_> {
    /// Whether any suspect is faulty (the exit status).
    pub fn any_faulty(&self) -> bool {
        self.leads.iter().any(|&g| self.faulty(g))
    }

    fn faulty(&self, g: usize) -> bool {
        self.members[g].iter().any(|&h| self.s.faulty[h])
    }

    /// One `link` record per suspect, best first.
    pub fn records(&self) -> impl Iterator<Item = LinkScore> + '_ {
        self.leads
            .iter()
            .enumerate()
            .map(|(i, &g)| self.record(i, g))
    }

    /// The record of the suspect led by group `g`, ranked `i` from 0.
    fn record(&self, i: usize, g: usize) -> LinkScore {
        let (p, s, members, suspicion) = (self.p, self.s, &self.members, &self.suspicion);
        let ends = |l: u32| {
            let (from, to) = p.link_name(l);
            LinkEnds {
                from: from.into(),
                to: to.into(),
            }
        };
        let grp = &p.groups[g];
        let mut links: Vec<u32> = Vec::new();
        for &h in &members[g] {
            for &l in &p.groups[h].links {
                if !links.contains(&l) {
                    links.push(l);
                }
            }
        }
        // Links no trace showed (an answer's path) are named only when nothing else is.
        if links.iter().any(|&l| !p.covers[l as usize].is_empty()) {
            links.retain(|&l| !p.covers[l as usize].is_empty());
        }
        let faulty = self.faulty(g);
        let group: Vec<LinkEnds> = links.iter().map(|&l| ends(l)).collect();
        let covers: Vec<LinkEnds> = p.covers[links[0] as usize]
            .iter()
            .map(|&(a, b)| LinkEnds {
                from: p.addr_names[a as usize].to_string(),
                to: p.addr_names[b as usize].to_string(),
            })
            .collect();
        LinkScore {
            from: group[0].from.clone(),
            to: group[0].to.clone(),
            rank: i as u32 + 1,
            score: finite(s.score[g]),
            loss_est: finite(s.loss_est[g]),
            suspicion: finite(suspicion[g]),
            routes: grp.flows,
            sent: grp.sent,
            lost: grp.lost,
            verdict: if faulty { Verdict::Faulty } else { Verdict::Ok },
            group: (group.len() > 1).then_some(group),
            covers: (covers.len() > 1).then_some(covers),
        }
    }
}

/// Joins faulty suspects that may be one physical link seen from different sources: routers
/// that answer toward the source show one router as a different address to each part of the
/// network, so a link into router B shows as several (A', B), (A'', B). A faulty suspect whose
/// every link goes into a router that a link of an earlier faulty suspect goes into, from a
/// router not known to be a different one (ECMP siblings are, hosts are never joined), is
/// the same fault: its groups join the earlier suspect.
fn merge_split_views(
    p: &Problem,
    s: &Scores,
    order: &[usize],
    lead: &mut [Option<usize>],
    members: &mut [Vec<usize>],
) {
    if p.endpoints.is_empty() {
        return;
    }
    let mut preds: Vec<Vec<u32>> = vec![Vec::new(); p.names.len()];
    for &(a, b) in &p.links {
        preds[b as usize].push(a);
    }
    for v in &mut preds {
        v.sort_unstable();
        v.dedup();
    }
    let distinct = |u: u32, v: u32| {
        let (pu, pv) = (&preds[u as usize], &preds[v as usize]);
        u != v && pu.iter().any(|x| pv.binary_search(x).is_ok())
    };
    let router = |n: u32| !p.endpoints[n as usize];
    let links_of = |g: usize, members: &[Vec<usize>]| -> Vec<(u32, u32)> {
        members[g]
            .iter()
            .flat_map(|&h| p.groups[h].links.iter().map(|&l| p.links[l as usize]))
            .collect()
    };
    let leads: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&g| lead[g] == Some(g) && members[g].iter().any(|&h| s.faulty[h]))
        .collect();
    for (i, &b) in leads.iter().enumerate() {
        let lb = links_of(b, members);
        if lb.is_empty() || !lb.iter().all(|&(u, v)| router(u) && router(v)) {
            continue;
        }
        let into = leads[..i].iter().copied().find(|&a| {
            if lead[a] != Some(a) {
                return false;
            }
            let la = links_of(a, members);
            lb.iter().all(|&(u, v)| {
                la.iter()
                    .any(|&(x, y)| y == v && router(x) && x != u && !distinct(x, u))
            })
        });
        if let Some(a) = into {
            let moved = std::mem::take(&mut members[b]);
            for &h in &moved {
                lead[h] = Some(a);
            }
            members[a].extend(moved);
        }
    }
}

/// JSON has no NaN or infinity.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// The graph for Graphviz: every node, every link; scored links colored from grey (no
/// evidence) through orange to red (faulty), labelled with their estimated loss and rank.
pub fn dot(p: &Problem, links: &[LinkScore], penalty: f64) -> String {
    use petgraph::dot::{Config, Dot};
    use std::collections::HashMap;
    let mut by_link: HashMap<(&str, &str), &LinkScore> = HashMap::new();
    for ls in links {
        match &ls.group {
            Some(members) => {
                for m in members {
                    by_link.insert((&m.from, &m.to), ls);
                }
            }
            None => {
                by_link.insert((&ls.from, &ls.to), ls);
            }
        }
    }
    let edge_attrs = |_, e: petgraph::graph::EdgeReference<'_, u32>| {
        let (a, b) = p.link_name(*e.weight());
        match by_link.get(&(a, b)) {
            Some(ls) => {
                let (color, width) = match ls.verdict {
                    Verdict::Faulty => ("#d62728".to_string(), 3.0),
                    Verdict::Ok => (heat(ls.score / penalty.max(f64::MIN_POSITIVE)), 1.0),
                };
                format!(
                    "color=\"{color}\" penwidth={width} label=\"{:.3}% #{}\"",
                    ls.loss_est * 100.0,
                    ls.rank
                )
            }
            None => "color=\"#cccccc\" style=dashed".to_string(),
        }
    };
    let node_attrs = |_, (_, id): (petgraph::graph::NodeIndex, &u32)| {
        let name = &p.names[*id as usize];
        let mut s = String::from("label=\"");
        for c in name.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
        if name.starts_with('?') {
            s.push_str(" shape=box style=dashed");
        }
        s
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "{:?}",
        Dot::with_attr_getters(
            &p.graph,
            &[Config::EdgeNoLabel, Config::NodeNoLabel],
            &edge_attrs,
            &node_attrs
        )
    );
    out
}

/// Grey for no evidence to orange at the faulty threshold.
fn heat(x: f64) -> String {
    let t = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) };
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        lerp(170.0, 255.0),
        lerp(170.0, 127.0),
        lerp(170.0, 14.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_runs_from_grey_to_orange() {
        assert_eq!(heat(0.0), "#aaaaaa");
        assert_eq!(heat(1.0), "#ff7f0e");
        assert_eq!(heat(f64::NAN), heat(0.0));
    }
}
