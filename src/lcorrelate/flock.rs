//! The likelihood model's search for the fault set (see [`super::estimate`] for the model).
//!
//! Greedy, as in Flock (CoNEXT 2023), made lazy: every candidate's gain is computed once, and
//! afterwards only the best candidate's is recomputed, since adding a fault lowers (or leaves)
//! the gains of the others. A candidate is added when its fresh gain still beats the next
//! best stale one and the penalty; then only the faulty groups whose terms its rate reaches
//! are refit (healthy rates stay under `min_loss` and barely move). When no candidate is
//! left, one full refit, the backward pass, and one full pass of gains (which every record's
//! score needs anyway) check that no candidate gained above the penalty meanwhile; if one
//! did, the search goes on from there.
//! Last, the exchanges: faulty groups that no traced path crosses are taken out, candidates
//! are added greedily without them, and the new set is kept if it fits clearly better; then
//! the same for each traced member on the answers' ways of a loss it may hide (a host link
//! whose flows all lost what only their answers' ways explain).
//! The cost grows with the records and with the faults, each fault costing what its own
//! observations cost.

use super::estimate::{healthy_cap, Params, Scores};
use super::fit::{Fit, Terms, MIN_RATE};
use super::graph::Problem;
use super::{FastMap, FastSet};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The share of a faulty group's gain the other direction of its link must reach, in its
/// place, to be named with it.
const TWIN_SHARE: f64 = 0.75;

/// The share of its gain a group that no traced path crosses (only untraced answers may
/// have) counts with when candidates are ranked: that explanation rests on where answers
/// were assumed to go, and lets each flow pick the path that suits it, so a traced path that
/// explains the same loss about as well goes first.
const UNTRACED_SHARE: f64 = 0.9;

/// Full checks (refit, backward pass, gains of all) before the search stops regardless.
const MAX_CHECKS: usize = 4;

fn eligible(p: &Problem, params: &Params, g: usize) -> bool {
    p.groups[g].sent >= params.min_samples.max(1)
}

/// A candidate's rank in the lazy queue: its gain, less for an untraced one.
fn rank(p: &Problem, g: usize, gain: f64) -> f64 {
    if p.groups[g].certain.is_empty() {
        gain * UNTRACED_SHARE
    } else {
        gain
    }
}

/// A candidate in the lazy queue: its rank when last computed.
#[derive(PartialEq)]
struct Candidate(f64, usize);

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        // Higher gain first; ties to the lower id, as the eager search picked.
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// The likelihood model. `score` is the log-likelihood gain of the link's own rate over the
/// best healthy one, `faulty` the fault set found.
pub fn flock(p: &Problem, params: &Params) -> Scores {
    let n = p.groups.len();
    let cap = healthy_cap(params);
    // Start where every link shares the overall loss evenly, capped at healthy.
    let (sent, lost, hops) = p.routes.iter().fold((0.0, 0.0, 0.0), |(s, l, h), r| {
        (
            s + r.sent as f64,
            l + r.lost as f64,
            h + r.sent as f64 * (r.groups.len() + usize::from(r.choice.is_some())) as f64,
        )
    });
    let x0 = if hops > 0.0 {
        (lost / sent) * (sent / hops)
    } else {
        0.0
    };
    let mut fit = Fit::new(p, x0.clamp(MIN_RATE, cap));
    let mut s = Search {
        params,
        cap,
        in_set: vec![false; n],
        score: vec![0.0; n],
        free: vec![0.0; n],
        c: Terms::default(),
        coupled: FastMap::default(),
    };
    let all: Vec<usize> = (0..n).collect();
    fit.refit(&all, &s.in_set, cap, &mut s.c);
    gains(&fit, cap, &mut s.score, &mut s.free, &mut s.c);
    s.run(&mut fit, &[]);
    s.exchange_untraced(&mut fit);
    s.exchange_hiding(&mut fit);
    let Search {
        in_set,
        score,
        free,
        ..
    } = s;
    let mut loss_est = fit.x.clone();
    for g in 0..n {
        if !in_set[g] {
            // Not faulty: report the rate the data point to, which may exceed healthy.
            loss_est[g] = free[g];
        }
    }
    let twins = twins(p, params, &mut fit, &in_set, &score);
    Scores {
        score,
        faulty: in_set,
        loss_est,
        twins,
    }
}

/// Every group's gain and free rate, the others as fitted.
fn gains(fit: &Fit, cap: f64, score: &mut [f64], free: &mut [f64], c: &mut Terms) {
    for g in 0..score.len() {
        (score[g], free[g]) = fit.gain(g, cap, c);
    }
}

/// The search's state: the fault set, and every group's gain and free rate as last
/// computed.
struct Search<'a> {
    params: &'a Params,
    cap: f64,
    in_set: Vec<bool>,
    score: Vec<f64>,
    free: Vec<f64>,
    c: Terms,
    /// Per group met as a member, the groups coupled to it ([`Fit::coupled`]: fixed by the
    /// problem, so found once).
    coupled: FastMap<usize, Vec<u32>>,
}

impl Search<'_> {
    /// The fault set, as group ids.
    fn members(&self) -> Vec<usize> {
        (0..self.in_set.len()).filter(|&h| self.in_set[h]).collect()
    }

    /// The lazy greedy search from the current set, then full checks (refit, backward pass,
    /// gains of all) until no candidate gains above the penalty; `banned` are never added.
    fn run(&mut self, fit: &mut Fit, banned: &[usize]) {
        let n = fit.p.groups.len();
        let (params, cap) = (self.params, self.cap);
        let all: Vec<usize> = (0..n).collect();
        for _ in 0..MAX_CHECKS {
            if !self.add_greedily(fit, banned) {
                break;
            }
            fit.refit(&all, &self.in_set, cap, &mut self.c);
            // Backward pass: a member that later ones explain away goes back to healthy.
            loop {
                let weakest = (0..n)
                    .filter(|&g| self.in_set[g])
                    .map(|g| (g, fit.gain(g, cap, &mut self.c).0))
                    .filter(|&(_, gn)| gn <= params.penalty)
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                let Some((g, _)) = weakest else { break };
                self.in_set[g] = false;
                let mut members = self.members();
                members.push(g);
                fit.refit(&members, &self.in_set, cap, &mut self.c);
            }
            gains(fit, cap, &mut self.score, &mut self.free, &mut self.c);
        }
    }

    /// The lazy greedy additions, the members refit after each; whether any candidate
    /// gained above the penalty when last computed.
    fn add_greedily(&mut self, fit: &mut Fit, banned: &[usize]) -> bool {
        let p = fit.p;
        let n = p.groups.len();
        let (params, cap) = (self.params, self.cap);
        let mut queue: BinaryHeap<Candidate> = (0..n)
            .filter(|&g| {
                !self.in_set[g]
                    && !banned.contains(&g)
                    && eligible(p, params, g)
                    && self.score[g] > params.penalty
            })
            .map(|g| Candidate(rank(p, g, self.score[g]), g))
            .collect();
        if queue.is_empty() {
            return false;
        }
        while let Some(Candidate(_, g)) = queue.pop() {
            let (gn, free) = fit.gain(g, cap, &mut self.c);
            if gn <= params.penalty {
                continue;
            }
            if queue.peek().is_some_and(|next| rank(p, g, gn) < next.0) {
                queue.push(Candidate(rank(p, g, gn), g));
                continue;
            }
            // One rate for every packet is the simpler account than a probes-only rate (and
            // then an answers-only one): where the link's whole rate gains about as much (a
            // twin's share), it joins in g's place and g waits in the queue. Gains do not
            // always fall as faults join, so the whole rate's queued gain may be stale low.
            let whole = fit
                .kin(g)
                .filter(|&h| !self.in_set[h] && !banned.contains(&h) && eligible(p, params, h))
                .map(|h| (h, fit.gain(h, cap, &mut self.c)))
                .filter(|&(_, (gh, _))| gh > params.penalty && gh >= TWIN_SHARE * gn)
                .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
            let (g, free) = match whole {
                Some((h, (_, free_h))) => {
                    queue.push(Candidate(rank(p, g, gn), g));
                    (h, free_h)
                }
                None => (g, free),
            };
            self.in_set[g] = true;
            // The rate the gain found, responsibilities taken afresh there: a maximizer
            // under the current ones may stay where they hide the group's loss.
            fit.set(g, free);
            self.refit_reached(fit, g);
        }
        true
    }

    /// Refits the members g's new rate reaches: first those coupled to g, then those
    /// coupled to a member that moved by more than a thousandth (where a refit's rounds
    /// stop), until none did. The others' terms stay as they were, or about, so refitting
    /// them would move nothing; with many faults, refitting every member at each addition
    /// made the greedy pass grow with the square of the faults.
    fn refit_reached(&mut self, fit: &mut Fit, g: usize) {
        let mut sources = vec![g];
        let mut taken: FastSet<usize> = FastSet::default();
        let mut members: Vec<usize> = Vec::new();
        loop {
            let before = members.len();
            for h in sources {
                let coupled = self.coupled.entry(h).or_insert_with(|| fit.coupled(h));
                for &k in coupled.iter() {
                    let k = k as usize;
                    if self.in_set[k] && taken.insert(k) {
                        members.push(k);
                    }
                }
            }
            if members.len() == before {
                return;
            }
            members.sort_unstable();
            let x: Vec<f64> = members.iter().map(|&h| fit.x[h]).collect();
            fit.refit(&members, &self.in_set, self.cap, &mut self.c);
            sources = members
                .iter()
                .zip(x)
                .filter(|&(&h, x)| (fit.x[h] - x).abs() > 1e-3 * fit.x[h].max(x))
                .map(|(&h, _)| h)
                .collect();
        }
    }

    /// Greedy order can let a group that no traced path crosses (a loss only untraced
    /// answers show) take a loss first, because each flow's answer may pick the way that
    /// suits it; the traced links that explain the same loss better then gain too little to
    /// join. So such members are taken out, all together and then one at a time, and the
    /// search run again without them; the set that fits better is kept.
    fn exchange_untraced(&mut self, fit: &mut Fit) {
        let p = fit.p;
        let mut untraced: Vec<usize> = (0..p.groups.len())
            .filter(|&g| self.in_set[g] && p.groups[g].certain.is_empty())
            .collect();
        untraced.sort_by(|&a, &b| self.score[a].total_cmp(&self.score[b]));
        if untraced.len() > 1 {
            self.exchange(fit, &untraced);
        }
        for g in untraced {
            if self.in_set[g] {
                self.exchange(fit, &[g]);
            }
        }
    }

    /// A traced member can hide a loss nearby: a link that lost only the probes crossing
    /// it, taken as losing everything, also takes (through the answers that may have
    /// crossed it) the loss of a host link whose flows' answers may have come that way, and
    /// that host link then gains too little to join. So where a group that is not a member
    /// shows such a hidden loss ([`Fit::left_to_answers`]), the traced members on the ways of
    /// its observations' answers are taken out in turn, weakest first, and the search run
    /// again without each; the set that fits better is kept.
    fn exchange_hiding(&mut self, fit: &mut Fit) {
        let p = fit.p;
        let mut hiding: Vec<usize> = Vec::new();
        for h in 0..p.groups.len() {
            if self.in_set[h] || !fit.left_to_answers(h) {
                continue;
            }
            for &r in &p.groups[h].lossy {
                if let Some(ch) = p.routes[r as usize].choice {
                    hiding.extend(p.choices[ch as usize].union.iter().map(|&g| g as usize));
                }
            }
        }
        hiding.sort_unstable();
        hiding.dedup();
        hiding.retain(|&g| self.in_set[g] && !p.groups[g].certain.is_empty());
        hiding.sort_by(|&a, &b| self.score[a].total_cmp(&self.score[b]));
        for g in hiding {
            if self.in_set[g] {
                self.exchange(fit, &[g]);
            }
        }
    }

    /// Takes `out` out of the set and adds candidates greedily without them; keeps the
    /// result if it fits clearly better (and then finishes the search from it), else goes
    /// back to the set before. Only what `out` touches is visited: the members' refit, the
    /// gains of the traced groups on the lossy observations `out` explained, and the
    /// likelihood of the observations through groups whose rate changed; so an exchange
    /// costs what those observations cost, not a pass over all of them.
    fn exchange(&mut self, fit: &mut Fit, out: &[usize]) {
        let n = fit.p.groups.len();
        let penalty = self.params.penalty;
        let x_before = fit.x.clone();
        let kept = (self.in_set.clone(), self.score.clone(), self.free.clone());
        for &g in out {
            self.in_set[g] = false;
        }
        let mut members = self.members();
        members.extend_from_slice(out);
        fit.refit(&members, &self.in_set, self.cap, &mut self.c);
        for h in fit.neighbours(out) {
            (self.score[h], self.free[h]) = fit.gain(h, self.cap, &mut self.c);
        }
        self.add_greedily(fit, out);
        let changed: Vec<usize> = (0..n).filter(|&h| fit.x[h] != x_before[h]).collect();
        let x_after: Vec<f64> = changed.iter().map(|&h| fit.x[h]).collect();
        let count = |set: &[bool]| set.iter().filter(|&&f| f).count() as f64;
        // With nothing added in their place the set fits worse (each member gained more
        // than the penalty): no need to weigh it.
        let added = (0..n).any(|h| self.in_set[h] && !kept.0[h]);
        let after =
            added.then(|| fit.log_likelihood_through(&changed) - penalty * count(&self.in_set));
        for &h in &changed {
            fit.set(h, x_before[h]);
        }
        // Better by what one more fault would cost, not by a tie: with the answers' ways
        // unknown, two ways that explain a loss equally well are common, and the data
        // favour neither.
        let better = after.is_some_and(|after| {
            after > fit.log_likelihood_through(&changed) - penalty * count(&kept.0) + penalty
        });
        if better {
            for (&h, &v) in changed.iter().zip(&x_after) {
                fit.set(h, v);
            }
            fit.expect_through(&changed);
            self.run(fit, out);
        } else {
            fit.expect_through(&changed);
            (self.in_set, self.score, self.free) = kept;
        }
    }
}

/// Twins: the other direction of a faulty group's link, when with the group healthy again
/// it would explain most of what the group does. Round trips cross a link one way and back
/// the other; when answers retrace their probes' path (Linux hashes both directions of a
/// flow alike), or on a host link, no measurement separates the two. Likewise, for a loss
/// only untraced answers show, the other ECMP ways those answers may have taken.
fn twins(
    p: &Problem,
    params: &Params,
    fit: &mut Fit,
    in_set: &[bool],
    score: &[f64],
) -> Vec<Vec<u32>> {
    let n = p.groups.len();
    let cap = healthy_cap(params);
    let mut c = Terms::default();
    let mut twins = vec![Vec::new(); n];
    let faulty: Vec<usize> = (0..n).filter(|&g| in_set[g]).collect();
    if faulty.is_empty() {
        return twins;
    }
    let link_id: std::collections::HashMap<(u32, u32), u32> = p
        .links
        .iter()
        .enumerate()
        .map(|(l, &ends)| (ends, l as u32))
        .collect();
    for g in faulty {
        let reverse: Vec<u32> = p.groups[g]
            .links
            .iter()
            .filter_map(|&l| {
                let (a, b) = p.links[l as usize];
                link_id.get(&(b, a)).copied()
            })
            .collect();
        let mut others: Vec<u32> = reverse
            .iter()
            .flat_map(|&l| p.groups_of_link[l as usize].iter().copied())
            .collect();
        // A group only untraced answers cross: the other ways of the same answers.
        if p.groups[g].certain.is_empty() {
            for &(ch, _) in &p.groups[g].alts {
                others.extend(p.choices[ch as usize].alts.iter().flatten());
            }
        }
        others.sort_unstable();
        others.dedup();
        let kept = fit.x[g];
        fit.set(g, cap);
        for h in others {
            let h = h as usize;
            if in_set[h] || h == g || !eligible(p, params, h) {
                continue;
            }
            let (gn, _) = fit.gain(h, cap, &mut c);
            if gn > params.penalty && gn >= TWIN_SHARE * score[g] {
                twins[g].push(h as u32);
            }
        }
        fit.set(g, kept);
    }
    twins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lcorrelate::graph::Problem;
    use crate::lcorrelate::input::{Aggregator, Aliases};
    use crate::lcorrelate::sim::{simulate, Rng, Scenario, Topology};

    /// Round trips on a leaf-spine with router names: leaves l0..l2 with four hosts each
    /// (10.0.L.H), spines s0..s3, eight flows per host pair across leaves. Each flow's probes
    /// and its answer take a spine of their own (a hash, as ECMP). `probe_loss` and
    /// `answer_loss` give a link's rate for the probes and for the answers crossing it; the
    /// records carry the expected losses, rounded.
    fn round_trips(
        probe_loss: &dyn Fn(&str, &str) -> f64,
        answer_loss: &dyn Fn(&str, &str) -> f64,
    ) -> Problem {
        let host = |l: usize, h: usize| format!("10.0.{l}.{h}");
        let mut agg = Aggregator::new(Aliases::new());
        let mut rng = Rng::new(1);
        let mut spine = || format!("s{}", rng.below(4));
        let ok = |path: &[&str], loss: &dyn Fn(&str, &str) -> f64| -> f64 {
            path.windows(2).map(|w| 1.0 - loss(w[0], w[1])).product()
        };
        for (la, lb) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)] {
            for (ha, hb) in (1..=4).flat_map(|a| (1..=4).map(move |b| (a, b))) {
                let (a, b) = (host(la, ha), host(lb, hb));
                let (leaf_a, leaf_b) = (format!("l{la}"), format!("l{lb}"));
                for port in 0..8 {
                    let (there, back) = (spine(), spine());
                    let probes = [&*a, &leaf_a, &there, &leaf_b, &b];
                    let answers = [&*b, &leaf_b, &back, &leaf_a, &a];
                    let sent = 2000u64;
                    let delivered = ok(&probes, probe_loss) * ok(&answers, answer_loss);
                    let lost = (sent as f64 * (1.0 - delivered)).round() as u64;
                    let hops: Vec<String> = probes[1..]
                        .iter()
                        .enumerate()
                        .map(|(i, n)| format!(r#"{{"ttl":{},"addr":"{n}"}}"#, i + 1))
                        .collect();
                    let line = format!(
                        r#"{{"type":"path","src":"{a}","dst":"{b}","proto":"udp","sport":{},"dport":9,"hops":[{}],"reached":true,"sent":{sent},"lost":{lost}}}"#,
                        40000 + port,
                        hops.join(",")
                    );
                    agg.add_line(line.as_bytes()).unwrap();
                }
            }
        }
        Problem::from_aggregator(agg)
    }

    #[test]
    fn a_loss_answers_could_have_taken_elsewhere_is_still_found() {
        // l0's uplink to s3 loses 5 % of everything; l0's link down to 10.0.0.2 loses 3 % of
        // the probes only. The flows to 10.0.0.2 might each have lost their answers on
        // l0>s3 instead (their answers leave l0 by some spine): EM started there keeps
        // every one of them on that way and sees nothing left for the host link to explain,
        // but three ways in four are healthy, so the host link explains the data far better.
        let uplink = |a: &str, b: &str| if (a, b) == ("l0", "s3") { 0.05 } else { 0.0 };
        let probes = |a: &str, b: &str| {
            if (a, b) == ("l0", "10.0.0.2") {
                0.03
            } else {
                uplink(a, b)
            }
        };
        let p = round_trips(&probes, &uplink);
        let s = flock(&p, &Params::default());
        let found = s.faulty_links(&p);
        let named = |a: &str, b: &str| found.contains(&(a.to_string(), b.to_string()));
        assert!(named("l0", "s3"), "{found:?}");
        assert!(named("l0", "10.0.0.2"), "{found:?}");
        // Nothing else: each faulty group is one of the two (a host link's two directions,
        // or its probes-only rate, come as one group).
        assert!(
            found
                .iter()
                .all(|(a, b)| (a == "l0" && b == "s3")
                    || [a.as_str(), b.as_str()].contains(&"10.0.0.2")),
            "{found:?}"
        );
    }

    #[test]
    fn host_links_a_probes_only_loss_hides_are_still_found() {
        // Today's conditions (loss on the traced way only) on a k = 4 fat-tree: a run whose
        // faults are an aggregation switch's link down to edge switch 10.0.0.4 and three
        // links of that edge switch's hosts. Taken as losing everything, the downlink also
        // explains the hosts' flows (each answer may have come back over it), and their
        // links gain too little to join until it is taken out and the search run again.
        let sc = Scenario::new(Topology::FatTree { k: 4 }, 4);
        let run = simulate(&sc, 41);
        let edge = "10.0.0.4";
        assert!(
            run.faults.iter().all(|f| f.0 == edge || f.1 == edge),
            "{:?}",
            run.faults
        );
        assert!(run
            .faults
            .iter()
            .any(|f| f.1 == edge && f.0.starts_with("10.0.0.")));
        let p = run.problem();
        let s = flock(&p, &Params::default());
        let found = s.faulty_links(&p);
        for (a, b, _) in &run.faults {
            assert!(
                found.contains(&(a.clone(), b.clone())),
                "{a}>{b}: {found:?}"
            );
        }
        // Nothing else but a host link's other direction (one group with it).
        let host = |n: &str| n.starts_with("10.1.");
        assert!(
            found.iter().all(|(a, b)| run
                .faults
                .iter()
                .any(|f| (&f.0, &f.1) == (a, b) || (host(a) || host(b)) && (&f.1, &f.0) == (a, b))),
            "{found:?}"
        );
    }

    #[test]
    fn a_host_link_losing_a_little_of_its_probes_only_is_found() {
        // Today's conditions (loss on the traced way only) on a k = 4 fat-tree, one fault: a
        // host's downlink losing 0.11 % (seed 7) or 0.15 % (seed 32) of the probes crossing
        // it; a healthy link may lose 0.05 %. The link's rate for every packet sits at that
        // most (the flows to the host lose, those whose answers cross the link do not), so
        // its probes-only rate is weighed from what that leaves, not from 0.05 % again.
        for seed in [7, 32] {
            let sc = Scenario::new(Topology::FatTree { k: 4 }, 1);
            let run = simulate(&sc, seed);
            let (a, b, _) = &run.faults[0];
            assert!(
                b.starts_with("10.1."),
                "a host's downlink: {:?}",
                run.faults
            );
            let p = run.problem();
            let found = flock(&p, &Params::default()).faulty_links(&p);
            assert!(
                found.contains(&(a.clone(), b.clone())),
                "seed {seed}: {found:?}"
            );
            assert!(
                found.iter().all(|(x, y)| x == b || y == b),
                "seed {seed}: {found:?}"
            );
        }
    }

    #[test]
    fn a_link_losing_every_packet_is_one_rate_not_two() {
        // l0's uplink to s1 loses 0.4 % of every packet: the probes that cross it and the
        // answers that leave l0 over it. A probes-only rate on it and an answers-only one on
        // any of l0's uplinks (the answers' way is unknown) fit the data as well, at twice
        // the cost; the search must not take that pair, whose second half names a healthy
        // link.
        let uplink = |a: &str, b: &str| if (a, b) == ("l0", "s1") { 0.004 } else { 0.0 };
        let p = round_trips(&uplink, &uplink);
        let s = flock(&p, &Params::default());
        let found = s.faulty_links(&p);
        assert_eq!(found, [("l0".to_string(), "s1".to_string())]);
        let g = (0..p.groups.len()).find(|&g| s.faulty[g]).unwrap();
        assert!(!p.groups[g].excess_only, "one rate for every packet");
    }
}
