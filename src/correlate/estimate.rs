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

use super::graph::{Problem, Route};

/// Rates never reach 0 or 1, so every log stays finite.
const MIN_RATE: f64 = 1e-7;
const MAX_RATE: f64 = 1.0 - 1e-9;

/// The share of a faulty group's gain the other direction of its link must reach, in its
/// place, to be named with it.
const TWIN_SHARE: f64 = 0.75;

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
    let excess: Vec<f64> = p
        .routes
        .iter()
        .map(|r| {
            let links: usize = r
                .groups
                .iter()
                .map(|&g| p.groups[g as usize].links.len())
                .sum();
            let expected = r.sent as f64 * (1.0 - healthy.powi(links as i32));
            (r.lost as f64 - expected) / r.groups.len().max(1) as f64
        })
        .collect();
    let lost: Vec<f64> = p
        .routes
        .iter()
        .map(|r| r.lost as f64 / r.groups.len().max(1) as f64)
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
        .map(|(r, route)| (cast[r] * route.groups.len() as f64).max(0.0))
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
        for &g in &route.groups {
            votes[g as usize] += cast[r];
        }
    }
    let rate = |g: usize| ratio(p.groups[g].lost, p.groups[g].sent);
    loop {
        // Ties (links crossed by the same lossy flows) go to the link with the higher loss
        // rate: the one fewer clean probes cross.
        let best = (0..n)
            .filter(|&g| !picked[g] && eligible(p, params, g))
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
        for &r in &p.groups[b].routes {
            if std::mem::replace(&mut active[r as usize], false) {
                for &g in &p.routes[r as usize].groups {
                    votes[g as usize] -= cast[r as usize];
                }
            }
        }
    }
}

/// The likelihood model's state: rates per group, the log-success of each observation's
/// certain part and of each alternative of each choice, and, per observation with a choice,
/// how likely each alternative is to be the path it took (EM responsibilities).
struct Fit<'a> {
    p: &'a Problem,
    x: Vec<f64>,
    log_c: Vec<f64>,
    /// Per choice, per alternative: log-success of its own groups.
    log_alt: Vec<Vec<f64>>,
    /// Per observation with a choice, the offset of its responsibilities in `resp`.
    resp_at: Vec<u32>,
    resp: Vec<f64>,
}

/// One observation's success as a function of one group's rate x: a + b (1 − x), with its
/// (weighted) probes and losses.
type Term = (f64, f64, f64, f64);

impl<'a> Fit<'a> {
    fn new(p: &'a Problem, x0: f64) -> Self {
        let x: Vec<f64> = p
            .groups
            .iter()
            .map(|g| if g.answer_only { MIN_RATE } else { x0 })
            .collect();
        let l = |g: &u32| (1.0 - x[*g as usize]).ln();
        let log_c = p
            .routes
            .iter()
            .map(|r| r.groups[..r.certain].iter().map(l).sum())
            .collect();
        let log_alt = p
            .choices
            .iter()
            .map(|c| c.alts.iter().map(|a| a.iter().map(l).sum()).collect())
            .collect();
        let mut resp = Vec::new();
        let resp_at = p
            .routes
            .iter()
            .map(|r| match r.choice {
                Some(c) => {
                    let at = resp.len() as u32;
                    let m = p.choices[c as usize].alts.len();
                    resp.extend(std::iter::repeat_n(1.0 / m as f64, m));
                    at
                }
                None => u32::MAX,
            })
            .collect();
        Fit {
            p,
            x,
            log_c,
            log_alt,
            resp_at,
            resp,
        }
    }

    /// E step: each observation's alternatives weighed by how well they explain its loss
    /// (equally likely beforehand, as ECMP hashing makes them).
    fn expect(&mut self) {
        for (r, route) in self.p.routes.iter().enumerate() {
            let Some(c) = route.choice else { continue };
            let at = self.resp_at[r] as usize;
            let logs = &self.log_alt[c as usize];
            let (n, m) = (route.sent as f64, route.lost as f64);
            let w = &mut self.resp[at..at + logs.len()];
            if m == 0.0 {
                // Clean: the likelier the more an alternative delivers.
                for (w, l) in w.iter_mut().zip(logs) {
                    *w = n * l;
                }
            } else {
                for (w, l) in w.iter_mut().zip(logs) {
                    let s = (self.log_c[r] + l).exp().min(1.0 - 1e-15);
                    *w = (n - m) * s.ln() + m * (1.0 - s).max(1e-300).ln();
                }
            }
            let top = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for v in w.iter_mut() {
                *v = (*v - top).exp();
                sum += *v;
            }
            for v in w.iter_mut() {
                *v /= sum;
            }
        }
    }

    /// Every observation (and alternative) through g as a term of g's rate.
    fn others(&self, g: usize, c: &mut Vec<Term>) {
        c.clear();
        // Clean observations add n ln(1 − x) and a constant whatever the rest: one term.
        let mut clean = 0.0;
        let own = (1.0 - self.x[g]).ln();
        let grp = &self.p.groups[g];
        for &r in &grp.certain {
            let route = &self.p.routes[r as usize];
            let (n, m) = (route.sent as f64, route.lost as f64);
            if m == 0.0 {
                clean += n;
                continue;
            }
            let base = self.log_c[r as usize] - own;
            match route.choice {
                None => c.push((n, m, 0.0, base.exp().min(1.0))),
                Some(ch) => {
                    let at = self.resp_at[r as usize] as usize;
                    for (j, l) in self.log_alt[ch as usize].iter().enumerate() {
                        let w = self.resp[at + j];
                        if w > 1e-12 {
                            c.push((w * n, w * m, 0.0, (base + l).exp().min(1.0)));
                        }
                    }
                }
            }
        }
        for &(ch, j) in &grp.alts {
            let l = self.log_alt[ch as usize][j as usize] - own;
            for &r in &self.p.choices[ch as usize].routes {
                let route = &self.p.routes[r as usize];
                let w = self.resp[self.resp_at[r as usize] as usize + j as usize];
                if w <= 1e-12 {
                    continue;
                }
                let (n, m) = (route.sent as f64, route.lost as f64);
                if m == 0.0 {
                    clean += w * n;
                } else {
                    let b = (self.log_c[r as usize] + l).exp().min(1.0);
                    c.push((w * n, w * m, 0.0, b));
                }
            }
        }
        if clean > 0.0 {
            c.push((clean, 0.0, 0.0, 1.0));
        }
    }

    fn set(&mut self, g: usize, v: f64) {
        let delta = (1.0 - v).ln() - (1.0 - self.x[g]).ln();
        if delta == 0.0 {
            return;
        }
        let grp = &self.p.groups[g];
        for &r in &grp.certain {
            self.log_c[r as usize] += delta;
        }
        for &(ch, alt) in &grp.alts {
            self.log_alt[ch as usize][alt as usize] += delta;
        }
        self.x[g] = v;
    }

    /// EM: responsibilities, then coordinate ascent (every rate in turn set to its exact
    /// maximizer, the others fixed; healthy links capped at `cap`).
    fn refit(&mut self, in_set: &[bool], cap: f64, c: &mut Vec<Term>) {
        let rounds = if self.p.choices.is_empty() { 4 } else { 8 };
        for _ in 0..rounds {
            self.expect();
            for (g, &faulty) in in_set.iter().enumerate() {
                // A healthy loss of answers only is none: the link's own rate holds the
                // background loss of answers as of probes.
                if !faulty && self.p.groups[g].answer_only {
                    self.set(g, MIN_RATE);
                    continue;
                }
                self.others(g, c);
                let v = argmax(c, MIN_RATE, if faulty { MAX_RATE } else { cap });
                self.set(g, v);
            }
        }
        self.expect();
    }

    /// Calls `f` with every observation through g and its alternatives' log-success with
    /// g's rate at x (one value when it has no choice), each with whether g is on it.
    fn through(
        &self,
        g: usize,
        x: f64,
        logs: &mut Vec<(f64, bool)>,
        mut f: impl FnMut(&Route, &[(f64, bool)]),
    ) {
        let own = (1.0 - self.x[g]).ln();
        let new = (1.0 - x).ln();
        let grp = &self.p.groups[g];
        for &r in &grp.certain {
            let route = &self.p.routes[r as usize];
            let base = self.log_c[r as usize] - own + new;
            logs.clear();
            match route.choice {
                None => logs.push((base, true)),
                Some(ch) => logs.extend(self.log_alt[ch as usize].iter().map(|l| (base + l, true))),
            }
            f(route, logs);
        }
        let mut i = 0;
        while i < grp.alts.len() {
            let ch = grp.alts[i].0;
            let alts = &self.log_alt[ch as usize];
            let mut mine = vec![false; alts.len()];
            while i < grp.alts.len() && grp.alts[i].0 == ch {
                mine[grp.alts[i].1 as usize] = true;
                i += 1;
            }
            for &r in &self.p.choices[ch as usize].routes {
                let route = &self.p.routes[r as usize];
                let base = self.log_c[r as usize];
                logs.clear();
                logs.extend(
                    alts.iter()
                        .zip(&mine)
                        .map(|(l, &m)| (base + l + if m { new - own } else { 0.0 }, m)),
                );
                f(route, logs);
            }
        }
    }

    /// Log-likelihood of g's observations with g's rate at x, each a mixture of its
    /// alternatives.
    fn marginal(&self, g: usize, x: f64, logs: &mut Vec<(f64, bool)>) -> f64 {
        let mut total = 0.0;
        self.through(g, x, logs, |route, logs| {
            let (n, m) = (route.sent as f64, route.lost as f64);
            let ll: Vec<f64> = logs.iter().map(|&(l, _)| binomial_ll(n, m, l)).collect();
            let top = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = ll.iter().map(|v| (v - top).exp()).sum::<f64>() / ll.len() as f64;
            total += top + mean.ln();
        });
        total
    }

    /// g's terms with the responsibilities of its observations taken at g's rate x.
    fn terms_at(&self, g: usize, x: f64, logs: &mut Vec<(f64, bool)>, c: &mut Vec<Term>) {
        c.clear();
        let new = (1.0 - x).ln();
        let mut clean = 0.0;
        self.through(g, x, logs, |route, logs| {
            let (n, m) = (route.sent as f64, route.lost as f64);
            if m == 0.0 && logs.len() == 1 {
                clean += n;
                return;
            }
            if logs.len() == 1 {
                c.push((n, m, 0.0, (logs[0].0 - new).exp().min(1.0)));
                return;
            }
            let ll: Vec<f64> = logs.iter().map(|&(l, _)| binomial_ll(n, m, l)).collect();
            let top = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = ll.iter().map(|v| (v - top).exp()).sum();
            for (&(l, on), v) in logs.iter().zip(&ll) {
                let w = (v - top).exp() / sum;
                // Alternatives g is not on are constant in x: no term.
                if on && w > 1e-12 {
                    if m == 0.0 {
                        clean += w * n;
                    } else {
                        c.push((w * n, w * m, 0.0, (l - new).exp().min(1.0)));
                    }
                }
            }
        });
        if clean > 0.0 {
            c.push((clean, 0.0, 0.0, 1.0));
        }
    }

    /// Gain of freeing g, the others as fitted: the best free fit minus the best healthy
    /// one, each observation's answer path a mixture of its alternatives (a few EM steps on
    /// g alone find the free rate); and that rate.
    fn gain(&self, g: usize, cap: f64, c: &mut Vec<Term>) -> (f64, f64) {
        self.others(g, c);
        let mut free = argmax(c, MIN_RATE, MAX_RATE);
        let mut logs = Vec::new();
        if !self.p.choices.is_empty() {
            for _ in 0..6 {
                self.terms_at(g, free.max(cap), &mut logs, c);
                let next = argmax(c, MIN_RATE, MAX_RATE);
                let settled = next <= cap || (next - free).abs() <= 1e-4 * next;
                free = next;
                if settled {
                    break;
                }
            }
        }
        if free <= cap {
            return (0.0, free);
        }
        if self.p.choices.is_empty() {
            return (loglik(c, free) - loglik(c, cap), free);
        }
        let gain = self.marginal(g, free, &mut logs) - self.marginal(g, cap, &mut logs);
        (gain.max(0.0), free)
    }
}

/// Binomial log-likelihood (without its constant) of m lost of n at log-success l.
fn binomial_ll(n: f64, m: f64, l: f64) -> f64 {
    let s = l.exp().min(1.0 - 1e-15);
    (n - m) * s.ln()
        + if m > 0.0 {
            m * (1.0 - s).max(1e-300).ln()
        } else {
            0.0
        }
}

/// Log-likelihood of g's observations as a function of g's rate x, the others fixed.
fn loglik(c: &[Term], x: f64) -> f64 {
    c.iter()
        .map(|&(n, m, a, b)| {
            let s = (a + b * (1.0 - x)).clamp(1e-300, 1.0);
            (n - m) * s.ln()
                + if m > 0.0 {
                    m * (1.0 - s).max(1e-300).ln()
                } else {
                    0.0
                }
        })
        .sum()
}

/// The rate in [lo, hi] that maximizes [`loglik`] (concave in x): Newton steps kept inside
/// a shrinking bracket, bisection when a step leaves it.
fn argmax(c: &[Term], lo: f64, hi: f64) -> f64 {
    let deriv = |x: f64| -> (f64, f64) {
        let mut d1 = 0.0;
        let mut d2 = 0.0;
        for &(n, m, a, b) in c {
            if b <= 0.0 {
                continue;
            }
            let s = (a + b * (1.0 - x)).max(1e-300);
            d1 -= (n - m) * b / s;
            d2 -= (n - m) * b * b / (s * s);
            if m > 0.0 {
                let q = (1.0 - s).max(1e-300);
                d1 += m * b / q;
                d2 -= m * b * b / (q * q);
            }
        }
        (d1, d2)
    };
    if c.iter().all(|&(_, m, _, _)| m == 0.0) || deriv(lo).0 <= 0.0 {
        return lo;
    }
    if deriv(hi).0 >= 0.0 {
        return hi;
    }
    let (mut a, mut b) = (lo, hi);
    let mut x = lo;
    for _ in 0..60 {
        let (d1, d2) = deriv(x);
        if d1 > 0.0 {
            a = x;
        } else {
            b = x;
        }
        let step = if d2 < 0.0 { x - d1 / d2 } else { f64::NAN };
        x = if step > a && step < b {
            step
        } else {
            0.5 * (a + b)
        };
        if b - a < 1e-12 * b.max(1e-9) || d1.abs() < 1e-9 {
            break;
        }
    }
    x.clamp(lo, hi)
}

/// The likelihood model (see the module docs). `score` is the log-likelihood gain of the
/// link's own rate over the best healthy one, `faulty` the fault set found.
pub fn flock(p: &Problem, params: &Params) -> Scores {
    let n = p.groups.len();
    let cap = healthy_cap(params);
    // Start where every link shares the overall loss evenly, capped at healthy.
    let (sent, lost, hops) = p.routes.iter().fold((0.0, 0.0, 0.0), |(s, l, h), r| {
        (
            s + r.sent as f64,
            l + r.lost as f64,
            h + r.sent as f64 * (r.certain + usize::from(r.choice.is_some())) as f64,
        )
    });
    let x0 = if hops > 0.0 {
        (lost / sent) * (sent / hops)
    } else {
        0.0
    };
    let mut fit = Fit::new(p, x0.clamp(MIN_RATE, cap));
    let mut in_set = vec![false; n];
    let mut c = Vec::new();

    fit.refit(&in_set, cap, &mut c);
    // Greedy forward search; each added link must pay for itself.
    for _ in 0..n {
        let mut best: Option<(usize, f64)> = None;
        for (g, _) in in_set.iter().enumerate().filter(|(_, &f)| !f) {
            if !eligible(p, params, g) {
                continue;
            }
            let (gn, _) = fit.gain(g, cap, &mut c);
            if gn > best.map_or(params.penalty, |b| b.1) {
                best = Some((g, gn));
            }
        }
        let Some((g, _)) = best else { break };
        in_set[g] = true;
        fit.others(g, &mut c);
        let v = argmax(&c, MIN_RATE, MAX_RATE);
        fit.set(g, v);
        fit.refit(&in_set, cap, &mut c);
    }
    // Backward pass: a member that later ones explain away goes back to healthy.
    loop {
        let weakest = (0..n)
            .filter(|&g| in_set[g])
            .map(|g| (g, fit.gain(g, cap, &mut c).0))
            .filter(|&(_, gn)| gn <= params.penalty)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let Some((g, _)) = weakest else { break };
        in_set[g] = false;
        fit.refit(&in_set, cap, &mut c);
    }
    let mut score = vec![0.0; n];
    let mut loss_est = fit.x.clone();
    for g in 0..n {
        let (gn, free) = fit.gain(g, cap, &mut c);
        score[g] = gn;
        if !in_set[g] {
            // Not faulty: report the rate the data point to, which may exceed healthy.
            loss_est[g] = free;
        }
    }
    // Twins: the other direction of a faulty group's link, when with the group healthy
    // again it would explain most of what the group does. Round trips cross a link one way
    // and back the other; when answers retrace their probes' path (Linux hashes both
    // directions of a flow alike), or on a host link, no measurement separates the two.
    let mut twins = vec![Vec::new(); n];
    for g in (0..n).filter(|&g| in_set[g]) {
        let reverse: Vec<u32> = p.groups[g]
            .links
            .iter()
            .filter_map(|&l| {
                let (a, b) = p.links[l as usize];
                p.links.iter().position(|&x| x == (b, a)).map(|r| r as u32)
            })
            .collect();
        let kept = fit.x[g];
        fit.set(g, cap);
        for &l in &reverse {
            for &h in &p.groups_of_link[l as usize] {
                let h = h as usize;
                if in_set[h] || h == g || !eligible(p, params, h) {
                    continue;
                }
                let (gn, _) = fit.gain(h, cap, &mut c);
                if gn > params.penalty && gn >= TWIN_SHARE * score[g] {
                    twins[g].push(h as u32);
                }
            }
        }
        fit.set(g, kept);
    }
    Scores {
        score,
        faulty: in_set,
        loss_est,
        twins,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::graph::Problem;

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
        let first_hop = p.groups.iter().position(|g| g.routes.len() == 4).unwrap();
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
        let mut found: Vec<(String, String)> = (0..s.faulty.len())
            .filter(|&g| s.faulty[g])
            .flat_map(|g| p.groups[g].links.clone())
            .map(|l| {
                let (a, b) = p.link_name(l);
                (a.to_string(), b.to_string())
            })
            .collect();
        found.sort();
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

    #[test]
    fn argmax_solves_the_single_route_case_exactly() {
        // One route, nothing else on it: the rate is lost / sent.
        let c = [(1000.0, 37.0, 0.0, 1.0)];
        assert!((argmax(&c, MIN_RATE, MAX_RATE) - 0.037).abs() < 1e-9);
        assert_eq!(argmax(&c, MIN_RATE, 0.01), 0.01);
        assert_eq!(
            argmax(&[(10.0, 0.0, 0.0, 1.0)], MIN_RATE, MAX_RATE),
            MIN_RATE
        );
        assert_eq!(
            argmax(&[(10.0, 10.0, 0.0, 1.0)], MIN_RATE, MAX_RATE),
            MAX_RATE
        );
    }
}
