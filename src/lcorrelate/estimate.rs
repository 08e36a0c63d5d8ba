//! The estimators: the likelihood model (default), 007-style voting, and the seed's
//! difference of means. Each scores groups of links (see [`super::graph`]).
//!
//! # The likelihood model (`flock`)
//! Group g drops each packet independently with rate x_g, so route r delivers with
//! probability s_r = Π (1 − x_g) over its groups, and its `lost` out of `sent` is binomial.
//! As in Flock (CoNEXT 2023) a link is either healthy or faulty, with a prior that makes
//! faults rare: a healthy link's rate is at most `min_loss` (background noise lives there), a
//! faulty one's is free, and declaring a link faulty costs `penalty` (−log of the prior odds)
//! in log-likelihood. The fault set is found greedily: add the link whose freedom gains the
//! most likelihood while that gain beats the penalty, refit every rate by coordinate ascent
//! (each step is an exact one-dimensional maximization, so the likelihood never falls), and
//! drop members the final fit no longer needs. A link's `score` is that gain with the others
//! at their fitted rates: how much worse the data fit if this link were healthy.

use super::fit::MIN_RATE;
pub use super::flock::flock;
use super::graph::{Problem, Route};

/// Tuning of the estimators.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Loss a healthy link may have (fraction); a faulty link loses more.
    pub min_loss: f64,
    /// Log-likelihood a link must explain to be declared faulty.
    pub penalty: f64,
    /// Groups with fewer probes across them are neither candidates nor reported.
    pub min_samples: u64,
    /// vote: share of all votes the picked link must hold to be faulty.
    pub vote_share: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            min_loss: 0.0005,
            penalty: 12.0,
            min_samples: 1,
            vote_share: 0.05,
        }
    }
}

/// Per group: a score (higher is more suspect), and whether the method calls it faulty.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub score: Vec<f64>,
    pub faulty: Vec<bool>,
    /// The likelihood model's loss rate per group.
    pub loss_est: Vec<f64>,
    /// Per faulty group, the other groups that explain the data about as well in its place
    /// (within `penalty` of its gain): the data cannot tell them apart from it.
    pub twins: Vec<Vec<u32>>,
}

impl Scores {
    /// The links of the faulty groups, by name, sorted, each once.
    #[cfg(test)]
    pub fn faulty_links(&self, p: &Problem) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = (0..self.faulty.len())
            .filter(|&g| self.faulty[g])
            .flat_map(|g| p.groups[g].links.clone())
            .map(|l| {
                let (a, b) = p.link_name(l);
                (a.to_string(), b.to_string())
            })
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

/// The seed's score: sample-weighted loss of routes through the group minus that of the
/// routes not through it (0 when there are none).
pub fn diff(p: &Problem) -> Vec<f64> {
    let (total_sent, total_lost) = p
        .routes
        .iter()
        .fold((0u64, 0u64), |(s, l), r| (s + r.sent, l + r.lost));
    p.groups
        .iter()
        .map(|g| {
            let through = ratio(g.lost, g.sent);
            let not = ratio(total_lost - g.lost, total_sent - g.sent);
            through - not
        })
        .collect()
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// The highest rate a healthy link may have in the model: `min_loss`, but never below the
/// model's smallest rate.
pub fn healthy_cap(params: &Params) -> f64 {
    params.min_loss.max(MIN_RATE)
}

fn eligible(p: &Problem, params: &Params, g: usize) -> bool {
    p.groups[g].sent >= params.min_samples.max(1)
}

/// 007 (NSDI 2018), with delivered probes voting too: every route casts its excess loss (its
/// lost probes minus those its links would lose at `min_loss`, the most a healthy link may) as
/// votes split evenly over its h links; the link with the most votes is blamed, the routes it
/// explains stop voting, and so on while some link holds votes. 007 proper lets only lost
/// packets vote, so a link that every flow crosses (a client's first hop) collects the votes
/// of every lossy flow plus the noise of all clean ones and outranks the lossy link itself;
/// here the many clean flows through it vote against it. A picked link scores 1 plus its votes
/// as a share of all positive votes, and is faulty when that share is at least `vote_share`
/// and its routes lose at least `min_loss`. Then the routes left (none of them loses more than
/// healthy links explain) vote as in 007 proper, lost probes only, to rank the rest below 1.
pub fn vote(p: &Problem, params: &Params) -> (Vec<f64>, Vec<bool>) {
    let n = p.groups.len();
    let healthy = 1.0 - params.min_loss.clamp(0.0, 1.0);
    // The links a route may cross; a loss of one kind of packet only has no votes.
    let voters = |r: &Route| {
        p.route_groups(r)
            .filter(|&g| !p.groups[g as usize].excess_only)
            .map(|g| p.groups[g as usize].links.len())
            .fold((0, 0), |(gs, ls), l| (gs + 1, ls + l))
    };
    let excess: Vec<f64> = p
        .routes
        .iter()
        .map(|r| {
            let (groups, links) = voters(r);
            let expected = r.sent as f64 * (1.0 - healthy.powi(links as i32));
            (r.lost as f64 - expected) / groups.max(1) as f64
        })
        .collect();
    let lost: Vec<f64> = p
        .routes
        .iter()
        .map(|r| r.lost as f64 / voters(r).0.max(1) as f64)
        .collect();
    let mut active = vec![true; p.routes.len()];
    let mut picked = vec![false; n];
    let mut score = vec![0.0; n];
    let mut faulty = vec![false; n];
    let rate = |g: usize| ratio(p.groups[g].lost, p.groups[g].sent);
    let total = total_votes(p, &excess, &active);
    iterate_votes(p, params, &excess, &mut active, &mut picked, |b, v| {
        score[b] = 1.0 + v / total;
        faulty[b] = v / total >= params.vote_share && rate(b) >= params.min_loss;
    });
    let rest = total_votes(p, &lost, &active);
    iterate_votes(p, params, &lost, &mut active, &mut picked, |b, v| {
        score[b] = v / rest;
    });
    (score, faulty)
}

/// Positive votes the active routes cast, `cast` per link of each.
fn total_votes(p: &Problem, cast: &[f64], active: &[bool]) -> f64 {
    p.routes
        .iter()
        .enumerate()
        .filter(|&(r, _)| active[r])
        .map(|(r, route)| {
            let groups = p
                .route_groups(route)
                .filter(|&g| !p.groups[g as usize].excess_only)
                .count();
            (cast[r] * groups as f64).max(0.0)
        })
        .sum()
}

/// 007's loop: the unpicked link with the most votes from active routes is picked (`pick`
/// with its votes) and its routes stop voting, while the best holds a positive vote.
fn iterate_votes(
    p: &Problem,
    params: &Params,
    cast: &[f64],
    active: &mut [bool],
    picked: &mut [bool],
    mut pick: impl FnMut(usize, f64),
) {
    let n = p.groups.len();
    let mut votes = vec![0.0; n];
    for (r, route) in p.routes.iter().enumerate().filter(|&(r, _)| active[r]) {
        for g in p.route_groups(route) {
            if !p.groups[g as usize].excess_only {
                votes[g as usize] += cast[r];
            }
        }
    }
    let rate = |g: usize| ratio(p.groups[g].lost, p.groups[g].sent);
    loop {
        // Ties (links crossed by the same lossy flows) go to the link with the higher loss
        // rate: the one fewer clean probes cross.
        let best = (0..n)
            .filter(|&g| !picked[g] && !p.groups[g].excess_only && eligible(p, params, g))
            .max_by(|&a, &b| {
                votes[a]
                    .total_cmp(&votes[b])
                    .then(rate(a).total_cmp(&rate(b)))
                    .then(b.cmp(&a))
            });
        let Some(b) = best else { break };
        if votes[b] <= 0.0 {
            break;
        }
        picked[b] = true;
        pick(b, votes[b]);
        for r in p.group_routes(b) {
            if std::mem::replace(&mut active[r as usize], false) {
                for g in p.route_groups(&p.routes[r as usize]) {
                    if !p.groups[g as usize].excess_only {
                        votes[g as usize] -= cast[r as usize];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lcorrelate::fit::{argmax, Terms, MAX_RATE};
    use crate::lcorrelate::graph::Problem;

    /// A small leaf-spine: hosts h0..h5 on leaves l0..l2 (two each), spines s0,s1; every
    /// host pair across leaves over both spines. `loss(from, to)` gives each link's rate.
    fn leaf_spine(loss: &dyn Fn(&str, &str) -> f64, sent: u64) -> Problem {
        let hosts = ["h0", "h1", "h2", "h3", "h4", "h5"];
        let names: Vec<Box<str>> = hosts
            .iter()
            .chain(&["l0", "l1", "l2", "s0", "s1"])
            .map(|s| (*s).into())
            .collect();
        let id = |s: &str| names.iter().position(|n| &**n == s).unwrap() as u32;
        let leaf = |h: &str| ["l0", "l0", "l1", "l1", "l2", "l2"][id(h) as usize];
        let mut routes: Vec<(Vec<u32>, u64, u64)> = Vec::new();
        for a in hosts {
            for b in hosts {
                if leaf(a) == leaf(b) {
                    continue;
                }
                for s in ["s0", "s1"] {
                    let path = [a, leaf(a), s, leaf(b), b];
                    let ok: f64 = path.windows(2).map(|w| 1.0 - loss(w[0], w[1])).product();
                    // Expected counts: the estimators must get these exactly right.
                    let lost = (sent as f64 * (1.0 - ok)).round() as u64;
                    routes.push((path.iter().map(|n| id(n)).collect(), sent, lost));
                }
            }
        }
        let raw = routes.iter().map(|(r, s, l)| (&r[..], *s, *l)).collect();
        Problem::build(names, raw)
    }

    fn top(p: &Problem, score: &[f64]) -> Vec<(String, String)> {
        let mut order: Vec<usize> = (0..score.len()).collect();
        order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
        let g = &p.groups[order[0]];
        g.links
            .iter()
            .map(|&l| {
                let (a, b) = p.link_name(l);
                (a.to_string(), b.to_string())
            })
            .collect()
    }

    #[test]
    fn one_lossy_link_among_healthy_ones_is_found() {
        let p = leaf_spine(
            &|a, b| {
                if (a, b) == ("s1", "l1") {
                    0.02
                } else {
                    0.00005
                }
            },
            100_000,
        );
        let params = Params::default();
        let s = flock(&p, &params);
        assert_eq!(top(&p, &s.score), [("s1".into(), "l1".into())]);
        let faulty: Vec<usize> = (0..s.faulty.len()).filter(|&g| s.faulty[g]).collect();
        assert_eq!(faulty.len(), 1, "{s:?}");
        let g = faulty[0];
        assert!((s.loss_est[g] - 0.02).abs() < 0.001, "{}", s.loss_est[g]);
        assert_eq!(top(&p, &diff(&p)), [("s1".into(), "l1".into())]);
        let (v, vf) = vote(&p, &params);
        assert_eq!(top(&p, &v), [("s1".into(), "l1".into())]);
        assert_eq!(vf.iter().filter(|f| **f).count(), 1);
    }

    #[test]
    fn vote_blames_the_lossy_branch_not_the_first_hop_every_flow_crosses() {
        // One client c behind its first hop g, four ECMP branches g>a_i>d; only a2>d loses,
        // 10 %. Every lossy flow also crosses c>g and g>a2, as do the clean ones.
        let names: Vec<Box<str>> = ["c", "g", "a0", "a1", "a2", "a3", "d"]
            .iter()
            .map(|s| (*s).into())
            .collect();
        let routes: Vec<Vec<u32>> = (2..6).map(|a| vec![0, 1, a, 6]).collect();
        let raw = routes
            .iter()
            .map(|r| (&r[..], 10_000u64, if r[2] == 4 { 1_000 } else { 0 }))
            .collect();
        let p = Problem::build(names, raw);
        let params = Params::default();
        let (score, faulty) = vote(&p, &params);
        assert_eq!(
            top(&p, &score),
            [("g".into(), "a2".into()), ("a2".into(), "d".into())]
        );
        assert_eq!(faulty.iter().filter(|f| **f).count(), 1);
        let first_hop = p.groups.iter().position(|g| g.flows == 4).unwrap();
        assert!(!faulty[first_hop] && score[first_hop] < 1.0, "{score:?}");
    }

    #[test]
    fn healthy_network_has_no_faulty_link() {
        let p = leaf_spine(&|_, _| 0.0001, 100_000);
        let s = flock(&p, &Params::default());
        assert!(s.faulty.iter().all(|f| !f), "{s:?}");
    }

    #[test]
    fn a_link_on_every_route_is_found_by_the_model() {
        // Only h0 sends, and its uplink loses 3 %: every route crosses h0>l0.
        let names: Vec<Box<str>> = ["h0", "l0", "s0", "s1", "l1", "h2", "h3"]
            .iter()
            .map(|s| (*s).into())
            .collect();
        let mut raw_routes = Vec::new();
        for (s, d) in [(2, 5), (2, 6), (3, 5), (3, 6)] {
            raw_routes.push(vec![0u32, 1, s, 4, d]);
        }
        let raw = raw_routes
            .iter()
            .map(|r| (&r[..], 100_000u64, 3_000u64 + 20))
            .collect();
        let p = Problem::build(names, raw);
        let s = flock(&p, &Params::default());
        assert_eq!(top(&p, &s.score), [("h0".into(), "l0".into())]);
        assert_eq!(s.faulty.iter().filter(|f| **f).count(), 1, "{s:?}");
    }

    #[test]
    fn two_faults_at_once_are_both_found() {
        let p = leaf_spine(
            &|a, b| match (a, b) {
                ("s0", "l1") => 0.01,
                ("l0", "s1") => 0.005,
                _ => 0.00002,
            },
            200_000,
        );
        let s = flock(&p, &Params::default());
        let found = s.faulty_links(&p);
        assert_eq!(
            found,
            [("l0".into(), "s1".into()), ("s0".into(), "l1".into())]
        );
    }

    #[test]
    fn inseparable_links_are_one_group() {
        // a>b and b>c are on the same single route: one group, scored once.
        let names: Vec<Box<str>> = ["a", "b", "c"].iter().map(|s| (*s).into()).collect();
        let r = [0u32, 1, 2];
        let p = Problem::build(names, vec![(&r, 10_000, 500)]);
        assert_eq!(p.groups.len(), 1);
        assert_eq!(p.groups[0].links.len(), 2);
        let s = flock(&p, &Params::default());
        assert_eq!(s.faulty, [true]);
        assert!((s.loss_est[0] - 0.05).abs() < 1e-6, "{s:?}");
    }

    /// Terms of (n, m, b) observations.
    fn terms(obs: &[(f64, f64, f64)]) -> Terms {
        let mut t = Terms::default();
        for &(n, m, b) in obs {
            t.push(n, m, b);
        }
        t
    }

    #[test]
    fn argmax_solves_the_single_route_case_exactly() {
        // One route, nothing else on it: the rate is lost / sent, from any start.
        let c = terms(&[(1000.0, 37.0, 1.0)]);
        for start in [MIN_RATE, 0.037, 0.5, MAX_RATE] {
            assert!((argmax(&c, MIN_RATE, MAX_RATE, start) - 0.037).abs() < 1e-9);
            assert_eq!(argmax(&c, MIN_RATE, 0.01, start), 0.01);
        }
        let clean = terms(&[(10.0, 0.0, 1.0)]);
        assert_eq!(argmax(&clean, MIN_RATE, MAX_RATE, 0.3), MIN_RATE);
        let all_lost = terms(&[(10.0, 10.0, 1.0)]);
        assert_eq!(argmax(&all_lost, MIN_RATE, MAX_RATE, 0.3), MAX_RATE);
    }

    #[test]
    fn argmax_finds_the_maximum_from_any_start() {
        // Against bisection on the derivative's sign, over random observations. The solver
        // once took a bisection step after finding the maximum and returned the midpoint
        // between it and the range's end (0.54 for 0.077) in about one call in a thousand.
        let mut rng = crate::lcorrelate::sim::Rng::new(7);
        let deriv = |t: &Terms, x: f64| {
            let keep = 1.0 - x;
            -t.delivered / keep
                + t.lost
                    .iter()
                    .map(|&(m, b)| m * b / (1.0 - b * keep))
                    .sum::<f64>()
        };
        for case in 0..3000 {
            let obs: Vec<(f64, f64, f64)> = (0..1 + rng.below(60))
                .map(|_| {
                    let n = 1.0 + rng.f64() * 5000.0;
                    let m = (n * rng.f64() * 0.1).floor();
                    (n, m, 0.5 + 0.5 * rng.f64())
                })
                .collect();
            let t = terms(&obs);
            if t.lost.is_empty() {
                continue;
            }
            let (mut a, mut b) = (MIN_RATE, MAX_RATE);
            for _ in 0..200 {
                let mid = 0.5 * (a + b);
                if deriv(&t, mid) > 0.0 {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            let best = 0.5 * (a + b);
            for start in [MIN_RATE, best, rng.f64(), MAX_RATE] {
                let x = argmax(&t, MIN_RATE, MAX_RATE, start);
                assert!(
                    (x - best).abs() <= 1e-7 * best.max(1e-6),
                    "case {case} from {start}: {x} against {best}"
                );
            }
        }
    }
}
