//! The likelihood model's state and its steps: rates per group, EM over the answers' ECMP
//! choices, exact one-dimensional maximization per group, and the gain of freeing a group.
//! Every step touches only the observations through the groups it works on, so a change to
//! one link costs what that link's observations cost (see [`super::flock`] for the search).

use super::graph::{Problem, Route};

/// Rates never reach 0 or 1, so every log stays finite.
pub const MIN_RATE: f64 = 1e-7;
pub const MAX_RATE: f64 = 1.0 - 1e-9;

/// The likelihood model's state: rates per group, the log-success of each lossy
/// observation's certain part and of each alternative of each choice, and, per lossy
/// observation with a choice, how likely each alternative is to be the path it took (EM
/// responsibilities). Clean observations are never visited one by one: a clean one's
/// likelihood is its certain part's (a sum of probes per group, fixed) times a mixture over
/// its choice that depends on its probe count only, so per choice their responsibilities
/// are summed into one clean mass per alternative.
pub struct Fit<'a> {
    pub p: &'a Problem,
    pub x: Vec<f64>,
    /// Per observation, its index among the lossy ones (`u32::MAX` when clean). A choice's
    /// lossy observations are numbered consecutively, so that the inner loop over them
    /// reads the arrays below in order instead of all over a million observations.
    lossy_at: Vec<u32>,
    /// Per choice, where its lossy observations start in the lossy numbering (and, last,
    /// where those of every choice end).
    choice_from: Vec<u32>,
    /// Per group, its lossy observations for certain in the lossy numbering.
    group_lossy: Vec<Vec<u32>>,
    /// Per lossy observation: its probes and losses.
    counts: Vec<(f64, f64)>,
    /// Per lossy observation with a choice (those numbered first): the choice.
    lossy_choice: Vec<u32>,
    /// Per lossy observation: log-success of its certain part, and that success itself
    /// (both kept, so that the inner loops multiply instead of calling exp).
    log_c: Vec<f64>,
    succ_c: Vec<f64>,
    /// Per choice, per alternative: log-success of its own groups, and that success.
    log_alt: Vec<Vec<f64>>,
    succ_alt: Vec<Vec<f64>>,
    /// Per lossy observation with a choice, the offset of its responsibilities in `resp`.
    resp_at: Vec<u32>,
    resp: Vec<f64>,
    /// Per choice, per alternative: probes of clean observations times their
    /// responsibility.
    clean_mass: Vec<Vec<f64>>,
    /// Per group, the clean mass of every alternative it is on: kept up to date by the E
    /// step, which visits choices in order, so that a group's terms need not gather it from
    /// hundreds of choices scattered in memory.
    alt_clean: Vec<f64>,
    /// Per group, whether any lossy observation may cross it (for certain, or on an
    /// alternative of a choice). A group no loss crosses fits at the lowest rate and gains
    /// nothing from freeing, whatever the other rates: its terms need not be built.
    lossless: Vec<bool>,
    /// Per group of excess rates (answers or probes only), the groups of the same links'
    /// rates for every packet: a link is healthy while all it loses is within `min_loss`.
    kin: Vec<Vec<u32>>,
    /// Buffers of the E step.
    scratch: (Vec<f64>, Vec<f64>),
}

impl<'a> Fit<'a> {
    pub fn new(p: &'a Problem, x0: f64) -> Self {
        let x: Vec<f64> = p
            .groups
            .iter()
            .map(|g| if g.excess_only { MIN_RATE } else { x0 })
            .collect();
        let l = |g: &u32| (1.0 - x[*g as usize]).ln();
        // Lossy observations with a choice first, choice by choice, then the others.
        let mut lossy_at = vec![u32::MAX; p.routes.len()];
        let mut lossy: Vec<u32> = Vec::new();
        let mut choice_from = Vec::with_capacity(p.choices.len() + 1);
        for ch in &p.choices {
            choice_from.push(lossy.len() as u32);
            for &r in &ch.lossy {
                lossy_at[r as usize] = lossy.len() as u32;
                lossy.push(r);
            }
        }
        choice_from.push(lossy.len() as u32);
        for (r, route) in p.routes.iter().enumerate() {
            if route.lost > 0 && lossy_at[r] == u32::MAX {
                lossy_at[r] = lossy.len() as u32;
                lossy.push(r as u32);
            }
        }
        let counts = lossy
            .iter()
            .map(|&r| {
                let route = &p.routes[r as usize];
                (route.sent as f64, route.lost as f64)
            })
            .collect();
        let log_c: Vec<f64> = lossy
            .iter()
            .map(|&r| p.routes[r as usize].groups.iter().map(l).sum())
            .collect();
        let succ_c = log_c.iter().map(|l| l.exp()).collect();
        let group_lossy: Vec<Vec<u32>> = p
            .groups
            .iter()
            .map(|g| g.lossy.iter().map(|&r| lossy_at[r as usize]).collect())
            .collect();
        let log_alt: Vec<Vec<f64>> = p
            .choices
            .iter()
            .map(|c| c.alts.iter().map(|a| a.iter().map(l).sum()).collect())
            .collect();
        let succ_alt = log_alt
            .iter()
            .map(|ls| ls.iter().map(|l| l.exp()).collect())
            .collect();
        let mut resp = Vec::new();
        let with_choice = choice_from[p.choices.len()] as usize;
        let lossy_choice: Vec<u32> = lossy[..with_choice]
            .iter()
            .map(|&r| p.routes[r as usize].choice.expect("a choice's observation"))
            .collect();
        let resp_at = lossy_choice
            .iter()
            .map(|&c| {
                let at = resp.len() as u32;
                let m = p.choices[c as usize].alts.len();
                resp.extend(std::iter::repeat_n(1.0 / m as f64, m));
                at
            })
            .collect();
        let clean_mass = p.choices.iter().map(|c| vec![0.0; c.alts.len()]).collect();
        let lossless = p
            .groups
            .iter()
            .zip(&group_lossy)
            .map(|(grp, certain)| {
                let choice_lossy =
                    |ch: u32| choice_from[ch as usize] < choice_from[ch as usize + 1];
                certain.is_empty() && !grp.alts.iter().any(|&(ch, _)| choice_lossy(ch))
            })
            .collect();
        let mut whole_of_link = vec![u32::MAX; p.links.len()];
        for (g, grp) in p.groups.iter().enumerate() {
            if !grp.excess_only {
                for &l in &grp.links {
                    whole_of_link[l as usize] = g as u32;
                }
            }
        }
        let kin = p
            .groups
            .iter()
            .map(|grp| {
                let mut k: Vec<u32> = Vec::new();
                if grp.excess_only {
                    k.extend(grp.links.iter().map(|&l| whole_of_link[l as usize]));
                    k.retain(|&h| h != u32::MAX);
                    k.sort_unstable();
                    k.dedup();
                }
                k
            })
            .collect();
        let mut fit = Fit {
            p,
            x,
            lossy_at,
            choice_from,
            group_lossy,
            counts,
            lossy_choice,
            log_c,
            succ_c,
            log_alt,
            succ_alt,
            resp_at,
            resp,
            clean_mass,
            alt_clean: vec![0.0; p.groups.len()],
            lossless,
            kin,
            scratch: Default::default(),
        };
        fit.expect();
        fit
    }

    /// E step over every observation.
    pub fn expect(&mut self) {
        // Sums from scratch, so that no rounding carries over from step to step.
        self.alt_clean.fill(0.0);
        for m in &mut self.clean_mass {
            m.fill(0.0);
        }
        for c in 0..self.p.choices.len() {
            self.expect_choice(c);
        }
    }

    /// E step over the observations through the groups `gs`.
    pub fn expect_through(&mut self, gs: &[usize]) {
        let mut chs: Vec<u32> = gs
            .iter()
            .flat_map(|&g| self.p.groups[g].alts.iter().map(|&(c, _)| c))
            .collect();
        let mut rs: Vec<u32> = gs
            .iter()
            .flat_map(|&g| self.p.groups[g].lossy.iter().copied())
            .collect();
        chs.sort_unstable();
        chs.dedup();
        rs.sort_unstable();
        rs.dedup();
        for r in rs {
            self.expect_route(r as usize);
        }
        for c in chs {
            self.expect_choice(c as usize);
        }
    }

    /// A choice's lossy observations and its clean mass.
    fn expect_choice(&mut self, c: usize) {
        let p = self.p;
        let ch = &p.choices[c];
        for &r in &ch.lossy {
            self.expect_route(r as usize);
        }
        if ch.clean.is_empty() {
            return;
        }
        let logs = &self.log_alt[c];
        let (mut w, mut mass) = std::mem::take(&mut self.scratch);
        w.resize(logs.len(), 0.0);
        mass.clear();
        mass.resize(logs.len(), 0.0);
        for &(n, copies) in &ch.clean {
            // Clean: the likelier the more an alternative delivers.
            softmax(logs.iter().map(|l| n * l), &mut w);
            for (m, w) in mass.iter_mut().zip(&w) {
                *m += copies * n * w;
            }
        }
        for ((new, old), groups) in mass.iter().zip(&mut self.clean_mass[c]).zip(&ch.alts) {
            let delta = new - *old;
            if delta != 0.0 {
                for &h in groups {
                    self.alt_clean[h as usize] += delta;
                }
            }
            *old = *new;
        }
        self.scratch = (w, mass);
    }

    /// One lossy observation's alternatives weighed by how well they explain its loss
    /// (equally likely beforehand, as ECMP hashing makes them).
    fn expect_route(&mut self, r: usize) {
        let route = &self.p.routes[r];
        let Some(c) = route.choice else { return };
        let k = self.lossy_at[r] as usize;
        let at = self.resp_at[k] as usize;
        let logs = &self.log_alt[c as usize];
        let succ = &self.succ_alt[c as usize];
        let (n, m) = route.per_copy();
        let (lc, sc) = (self.log_c[k], self.succ_c[k]);
        softmax(
            logs.iter()
                .zip(succ)
                .map(|(l, s)| binomial_ll_at(n, m, lc + l, sc * s)),
            &mut self.resp[at..at + logs.len()],
        );
    }

    /// Every observation (and alternative) through g as a term of g's rate.
    pub fn others(&self, g: usize, c: &mut Terms) {
        c.clear();
        // Clean observations add n ln(1 − x) and a constant whatever the rest: one sum.
        let own = 1.0 - self.x[g];
        let grp = &self.p.groups[g];
        c.delivered = grp.clean_sent;
        for &k in &self.group_lossy[g] {
            let k = k as usize;
            let (n, m) = self.counts[k];
            let base = self.succ_c[k] / own;
            match self.lossy_choice.get(k) {
                None => c.push(n, m, base.min(1.0)),
                Some(&ch) => {
                    // The delivered probes weigh as clean ones whatever the alternative;
                    // the lost ones per alternative. (Merging alternatives that deliver
                    // alike took a search per share and saved fewer passes than it cost.)
                    c.delivered += n - m;
                    let at = self.resp_at[k] as usize;
                    for (j, s) in self.succ_alt[ch as usize].iter().enumerate() {
                        let w = self.resp[at + j];
                        if w > 1e-12 {
                            c.push_lost(w * m, (base * s).min(1.0));
                        }
                    }
                }
            }
        }
        c.delivered += self.alt_clean[g];
        for &(ch, j) in &grp.alts {
            let ch = ch as usize;
            let lossy = self.choice_from[ch] as usize..self.choice_from[ch + 1] as usize;
            // A choice without lossy observations adds its clean mass only (above).
            if lossy.is_empty() {
                continue;
            }
            let alt = self.succ_alt[ch][j as usize] / own;
            for k in lossy {
                let w = self.resp[self.resp_at[k] as usize + j as usize];
                if w <= 1e-12 {
                    continue;
                }
                let (n, m) = self.counts[k];
                c.push(w * n, w * m, (self.succ_c[k] * alt).min(1.0));
            }
        }
    }

    pub fn set(&mut self, g: usize, v: f64) {
        let delta = (1.0 - v).ln() - (1.0 - self.x[g]).ln();
        if delta == 0.0 {
            return;
        }
        let factor = (1.0 - v) / (1.0 - self.x[g]);
        let grp = &self.p.groups[g];
        for &k in &self.group_lossy[g] {
            self.log_c[k as usize] += delta;
            self.succ_c[k as usize] *= factor;
        }
        for &(ch, alt) in &grp.alts {
            self.log_alt[ch as usize][alt as usize] += delta;
            self.succ_alt[ch as usize][alt as usize] *= factor;
        }
        self.x[g] = v;
    }

    /// EM over the groups `gs`: responsibilities of their observations, then coordinate
    /// ascent (each rate in turn set to its exact maximizer, the others fixed; healthy ones
    /// capped at `cap`), until no rate moves by more than a thousandth of itself or for a
    /// few rounds at most.
    pub fn refit(&mut self, gs: &[usize], in_set: &[bool], cap: f64, c: &mut Terms) {
        let all = gs.len() == self.p.groups.len();
        // Over every group, two rounds where answers have choices: over the benchmark's
        // seeds they name no fewer faults and fewer false ones than four did
        // (bench/lcorrelate.md, session 8), at half the cost (a third of a second a round
        // in a data center).
        let rounds = if self.p.choices.is_empty() {
            4
        } else if all {
            2
        } else {
            8
        };
        for round in 0..rounds {
            // A full refit starts from a state its last E step left current.
            if round > 0 || !all {
                if all {
                    self.expect();
                } else {
                    self.expect_through(gs);
                }
            }
            let mut moved = false;
            for &g in gs {
                let faulty = in_set[g];
                // A healthy excess (answers or probes only) is none: the link's own rate
                // holds the background loss of every packet.
                if !faulty && self.p.groups[g].excess_only {
                    self.set(g, MIN_RATE);
                    continue;
                }
                let v = if self.lossless[g] {
                    MIN_RATE
                } else {
                    self.others(g, c);
                    argmax(c, MIN_RATE, if faulty { MAX_RATE } else { cap }, self.x[g])
                };
                moved |= (v - self.x[g]).abs() > 1e-3 * v.max(self.x[g]);
                self.set(g, v);
            }
            if !moved {
                break;
            }
        }
        if all {
            self.expect();
        } else {
            self.expect_through(gs);
        }
    }

    /// The log-likelihood of every observation at the current rates (up to a constant),
    /// each answer's path a mixture of its alternatives: what the search compares fault sets
    /// by, through [`Fit::log_likelihood_through`] (the whole is the reference of its tests).
    #[cfg(test)]
    pub fn log_likelihood(&self) -> f64 {
        let p = self.p;
        let lossy = (0..p.routes.len()).filter(|&r| self.lossy_at[r] != u32::MAX);
        self.log_likelihood_of(0..p.groups.len(), 0..p.choices.len(), lossy)
    }

    /// The part of [`Fit::log_likelihood`] that depends on the rates of `gs`: two states
    /// that differ only there differ by as much in this as in the whole, at the cost of the
    /// observations through `gs` alone.
    pub fn log_likelihood_through(&self, gs: &[usize]) -> f64 {
        let p = self.p;
        let mut chs: Vec<usize> = gs
            .iter()
            .flat_map(|&g| p.groups[g].alts.iter().map(|&(c, _)| c as usize))
            .collect();
        chs.sort_unstable();
        chs.dedup();
        let mut lossy: Vec<usize> = gs
            .iter()
            .flat_map(|&g| p.groups[g].lossy.iter())
            .chain(chs.iter().flat_map(|&c| p.choices[c].lossy.iter()))
            .map(|&r| r as usize)
            .collect();
        lossy.sort_unstable();
        lossy.dedup();
        self.log_likelihood_of(gs.iter().copied(), chs.into_iter(), lossy.into_iter())
    }

    /// The clean probes of `groups` for certain, the clean observations of `choices`, and
    /// the lossy observations `lossy`.
    fn log_likelihood_of(
        &self,
        groups: impl Iterator<Item = usize>,
        choices: impl Iterator<Item = usize>,
        lossy: impl Iterator<Item = usize>,
    ) -> f64 {
        let p = self.p;
        let mut total: f64 = groups
            .map(|g| p.groups[g].clean_sent * (1.0 - self.x[g]).ln())
            .sum();
        let mut ll = Vec::new();
        for c in choices {
            for &(n, copies) in &p.choices[c].clean {
                ll.clear();
                ll.extend(self.log_alt[c].iter().map(|l| n * l));
                total += copies * log_mean_exp(&ll);
            }
        }
        for r in lossy {
            let k = self.lossy_at[r] as usize;
            let (lc, sc) = (self.log_c[k], self.succ_c[k]);
            total += match p.routes[r].choice {
                None => {
                    let (n, m) = self.counts[k];
                    binomial_ll_at(n, m, lc, sc)
                }
                Some(c) => {
                    let (n, m) = p.routes[r].per_copy();
                    ll.clear();
                    ll.extend(
                        self.log_alt[c as usize]
                            .iter()
                            .zip(&self.succ_alt[c as usize])
                            .map(|(l, s)| binomial_ll_at(n, m, lc + l, sc * s)),
                    );
                    f64::from(p.routes[r].copies.max(1)) * log_mean_exp(&ll)
                }
            };
        }
        total
    }

    /// Groups whose terms depend on the rate of g: those on a lossy observation through it
    /// (for certain or on one of its ways), and those on a choice it is on (whose clean mass
    /// moves with it). Sorted.
    pub fn coupled(&self, g: usize) -> Vec<u32> {
        let p = self.p;
        let mut out: Vec<u32> = vec![g as u32];
        let mut choices: Vec<u32> = p.groups[g].alts.iter().map(|&(c, _)| c).collect();
        for &r in &p.groups[g].lossy {
            let route = &p.routes[r as usize];
            out.extend(&route.groups);
            choices.extend(route.choice);
        }
        choices.sort_unstable();
        choices.dedup();
        for c in choices {
            let choice = &p.choices[c as usize];
            out.extend(&choice.union);
            for &r in &choice.lossy {
                out.extend(&p.routes[r as usize].groups);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether most observations through g for certain lost packets that the rest of
    /// their certain part does not explain (less than half), so that only the ways their
    /// answers may have taken do: how a loss on g looks when it is hidden by a member on
    /// those ways. A loss on an answer's way reaches one flow in as many as there are ways;
    /// one on g reaches every flow through it.
    pub fn left_to_answers(&self, g: usize) -> bool {
        let grp = &self.p.groups[g];
        let left = self.group_lossy[g]
            .iter()
            .filter(|&&k| {
                let k = k as usize;
                let (n, m) = self.counts[k];
                self.lossy_choice.get(k).is_some() && n * (1.0 - self.succ_c[k]) < 0.5 * m
            })
            .count();
        left >= 3 && 2 * left >= grp.certain.len()
    }

    /// Groups that a lossy observation through one of `gs` (for certain or on one of its
    /// ways) crosses for certain: the traced explanations of the loss `gs` explain.
    pub fn neighbours(&self, gs: &[usize]) -> Vec<usize> {
        let p = self.p;
        let mut out: Vec<usize> = Vec::new();
        for &g in gs {
            let through = p.groups[g].alts.iter().map(|&(c, _)| c as usize);
            let lossy = p.groups[g]
                .lossy
                .iter()
                .chain(through.flat_map(|c| p.choices[c].lossy.iter()));
            for &r in lossy {
                out.extend(p.routes[r as usize].groups.iter().map(|&h| h as usize));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// g's observations as functions of g's rate alone, the others as fitted: what the
    /// gain evaluates at many rates, built once.
    fn alone(&self, g: usize) -> Alone {
        let mut a = self.alone_certain(g);
        self.add_choices(g, &mut a);
        a
    }

    /// EM's fixed point can hide a fault: when the current responsibilities send each
    /// lossy observation through g along an alternative that already loses, g's own rate
    /// has nothing left to explain, and EM from here does not reach the likelihood's other
    /// mode. So where g carries lossy observations that have a choice, look once at the
    /// rate g's observations lose overall, responsibilities taken afresh there: that rate,
    /// and g's observations as functions of its rate, when it fits better than healthy.
    /// The observations through g for certain decide first (they are what such a mode
    /// rests on, and cost little: a bound, then their likelihoods); the choices g is on
    /// are weighed only after.
    fn second_look(&self, g: usize, cap: f64) -> Option<(Alone, f64)> {
        let p = self.p;
        let grp = &p.groups[g];
        let raw = grp.lost as f64 / grp.sent.max(1) as f64;
        if raw <= cap
            || !grp
                .lossy
                .iter()
                .any(|&r| p.routes[r as usize].choice.is_some())
            || self.certain_gain_bound(g, raw, cap) <= 0.0
        {
            return None;
        }
        let mut alone = self.alone_certain(g);
        if alone.marginal(raw) <= alone.marginal(cap) {
            return None;
        }
        self.add_choices(g, &mut alone);
        (alone.marginal(raw) > alone.marginal(cap)).then_some((alone, raw))
    }

    /// An upper bound on what g's observations for certain gain from g's rate going from
    /// `cap` to `raw`, cheap: a mixture's ratio is at most its best alternative's, and a
    /// binomial's gain from a higher rate is largest on the alternative whose rest delivers
    /// best. Where it is not positive, [`Fit::second_look`] need not build anything.
    fn certain_gain_bound(&self, g: usize, raw: f64, cap: f64) -> f64 {
        let p = self.p;
        let grp = &p.groups[g];
        let own = 1.0 - self.x[g];
        let delivered = ((1.0 - raw) / (1.0 - cap)).ln();
        let mut bound = grp.clean_sent * delivered;
        for &r in &grp.lossy {
            let route = &p.routes[r as usize];
            let k = self.lossy_at[r as usize] as usize;
            let best = route.choice.map_or(1.0, |ch| {
                self.succ_alt[ch as usize]
                    .iter()
                    .fold(0.0, |a: f64, &b| a.max(b))
            });
            let s = (self.succ_c[k] / own * best).min(1.0);
            let (n, m) = route.per_copy();
            let copies = f64::from(route.copies.max(1));
            let lost = ((1.0 - s * (1.0 - raw)) / (1.0 - s * (1.0 - cap))).ln();
            bound += copies * (m * lost + (n - m) * delivered);
        }
        bound
    }

    /// [`Alone`] of the observations through g for certain: every alternative crosses g.
    fn alone_certain(&self, g: usize) -> Alone {
        let p = self.p;
        let grp = &p.groups[g];
        let own = (1.0 - self.x[g]).ln();
        let mut a = Alone {
            clean_sent: grp.clean_sent,
            ..Alone::default()
        };
        for &r in &grp.lossy {
            let route = &p.routes[r as usize];
            let rest = self.log_c[self.lossy_at[r as usize] as usize] - own;
            // Without a choice, one way that adds nothing to the rest.
            let logs: &[f64] = route.choice.map_or(&[0.0], |ch| &self.log_alt[ch as usize]);
            a.push_lossy(
                route,
                f64::NEG_INFINITY,
                logs.len(),
                logs.iter().map(|l| rest + l),
            );
        }
        a
    }

    /// Adds to `a` the observations of the choices g is on some alternatives of: the
    /// other alternatives are constant in g's rate.
    fn add_choices(&self, g: usize, a: &mut Alone) {
        let p = self.p;
        let grp = &p.groups[g];
        let own = (1.0 - self.x[g]).ln();
        let mut off = Vec::new();
        let mut i = 0;
        let mut mine = Vec::new();
        while i < grp.alts.len() {
            let ch = grp.alts[i].0 as usize;
            let logs = &self.log_alt[ch];
            mine.clear();
            mine.resize(logs.len(), false);
            while i < grp.alts.len() && grp.alts[i].0 as usize == ch {
                mine[grp.alts[i].1 as usize] = true;
                i += 1;
            }
            let on = |j: &usize| mine[*j];
            let choice = &p.choices[ch];
            for &r in &choice.lossy {
                let route = &p.routes[r as usize];
                let lc = self.log_c[self.lossy_at[r as usize] as usize];
                let (n, m) = route.per_copy();
                off.clear();
                off.extend(
                    (0..logs.len())
                        .filter(|j| !on(j))
                        .map(|j| binomial_ll(n, m, lc + logs[j])),
                );
                let rests = (0..logs.len()).filter(on).map(|j| lc + logs[j] - own);
                a.push_lossy(route, log_sum_exp(&off), logs.len(), rests);
            }
            for &(n, copies) in &choice.clean {
                off.clear();
                off.extend((0..logs.len()).filter(|j| !on(j)).map(|j| n * logs[j]));
                let off_sum = log_sum_exp(&off);
                off.clear();
                off.extend((0..logs.len()).filter(on).map(|j| n * (logs[j] - own)));
                a.bundles.push(Bundle {
                    n,
                    copies,
                    off: off_sum,
                    on: log_sum_exp(&off),
                    ln_ways: (logs.len() as f64).ln(),
                });
            }
        }
    }

    /// For a group of excess rates (answers or probes only), the groups of the same links'
    /// rates for every packet.
    pub fn kin(&self, g: usize) -> impl Iterator<Item = usize> + '_ {
        self.kin[g].iter().map(|&h| h as usize)
    }

    /// The most g may lose while its links stay healthy: `cap` for a link's rate for every
    /// packet; for an excess rate, what that rate leaves of `cap`. Measured from `cap`
    /// instead, a host link that lost its probes only (its all-packets rate at `cap`
    /// already) had to make its case twice; from nothing, a fault on every packet split
    /// into a probes-only rate and an answers-only one elsewhere.
    fn healthy_up_to(&self, g: usize, cap: f64) -> f64 {
        if !self.p.groups[g].excess_only {
            return cap;
        }
        let whole = self.kin[g]
            .iter()
            .map(|&h| self.x[h as usize])
            .fold(0.0, f64::max);
        (cap - whole).max(MIN_RATE)
    }

    /// Gain of freeing g, the others as fitted: the best free fit minus the best healthy
    /// one, each observation's answer path a mixture of its alternatives (a few EM steps on
    /// g alone find the free rate); and that rate.
    pub fn gain(&self, g: usize, cap: f64, c: &mut Terms) -> (f64, f64) {
        if self.lossless[g] {
            return (0.0, MIN_RATE);
        }
        let cap = self.healthy_up_to(g, cap);
        self.others(g, c);
        let mut free = argmax(c, MIN_RATE, MAX_RATE, self.x[g]);
        if self.p.choices.is_empty() {
            if free <= cap {
                return (0.0, free);
            }
            return (loglik(c, free) - loglik(c, cap), free);
        }
        let mut alone = if free <= cap {
            match self.second_look(g, cap) {
                Some((alone, raw)) => {
                    free = raw;
                    alone
                }
                None => return (0.0, free),
            }
        } else {
            self.alone(g)
        };
        for _ in 0..6 {
            alone.terms_at(free.max(cap), c);
            let next = argmax(c, MIN_RATE, MAX_RATE, free);
            let settled = next <= cap || (next - free).abs() <= 1e-4 * next;
            free = next;
            if settled {
                break;
            }
        }
        if free <= cap {
            return (0.0, free);
        }
        let gain = alone.marginal(free) - alone.marginal(cap);
        (gain.max(0.0), free)
    }
}

/// A lossy observation through a group, as a function of the group's rate x: the
/// alternatives that cross the group deliver with `e^rest · (1 − x)`, those that do not
/// weigh `off` (their binomial log-likelihoods' log-sum-exp) whatever x.
struct Lossy {
    /// All probes and losses, and those of one copy.
    total: (f64, f64),
    one: (f64, f64),
    copies: f64,
    off: f64,
    ln_ways: f64,
    /// Where its alternatives through the group are in [`Alone::rests`].
    from: u32,
    to: u32,
}

/// Clean observations of a choice that share a probe count, as a function of the group's
/// rate x: the alternatives through the group weigh `on + n ln(1 − x)` in log, the others
/// `off` (both log-sum-exps over alternatives).
struct Bundle {
    n: f64,
    copies: f64,
    off: f64,
    on: f64,
    ln_ways: f64,
}

/// One group's observations as functions of its own rate, every other rate and the
/// alternatives that do not cross it folded into constants once: the EM steps and the two
/// likelihoods of a gain then cost a logarithm per alternative through the group, instead
/// of every alternative's exponential per step.
#[derive(Default)]
struct Alone {
    clean_sent: f64,
    lossy: Vec<Lossy>,
    /// Per alternative through the group: the log-success of the rest of its path, and
    /// that success.
    rests: Vec<(f64, f64)>,
    bundles: Vec<Bundle>,
    /// Buffer of the E step.
    w: Vec<f64>,
}

impl Alone {
    fn push_lossy(
        &mut self,
        route: &Route,
        off: f64,
        ways: usize,
        rests: impl Iterator<Item = f64>,
    ) {
        let from = self.rests.len() as u32;
        self.rests.extend(rests.map(|r| (r, r.exp())));
        self.lossy.push(Lossy {
            total: (route.sent as f64, route.lost as f64),
            one: route.per_copy(),
            copies: f64::from(route.copies.max(1)),
            off,
            ln_ways: (ways as f64).ln(),
            from,
            to: self.rests.len() as u32,
        });
    }

    /// The binomial log-likelihoods of an observation's alternatives through the group at
    /// x, into `w`.
    fn on_at(&self, o: &Lossy, new: f64, keep: f64, w: &mut Vec<f64>) {
        let (n, m) = o.one;
        w.clear();
        w.extend(
            self.rests[o.from as usize..o.to as usize]
                .iter()
                .map(|&(r, b)| binomial_ll_at(n, m, r + new, b * keep)),
        );
    }

    /// The terms with every observation's responsibilities taken at x.
    fn terms_at(&mut self, x: f64, c: &mut Terms) {
        c.clear();
        let (keep, new) = (1.0 - x, (1.0 - x).ln());
        let mut w = std::mem::take(&mut self.w);
        for o in &self.lossy {
            let (n, m) = o.total;
            let rests = &self.rests[o.from as usize..o.to as usize];
            if rests.len() == 1 && o.off == f64::NEG_INFINITY {
                c.push(n, m, rests[0].1.min(1.0));
                continue;
            }
            self.on_at(o, new, keep, &mut w);
            let top = w.iter().copied().fold(o.off, f64::max);
            let mut sum = (o.off - top).exp();
            for v in w.iter_mut() {
                *v = (*v - top).exp();
                sum += *v;
            }
            for (&v, &(_, b)) in w.iter().zip(rests) {
                let share = v / sum;
                if share > 1e-12 {
                    c.push(share * n, share * m, b.min(1.0));
                }
            }
        }
        for b in &self.bundles {
            let on = b.on + b.n * new;
            c.delivered += b.copies * b.n * (on - log_sum_exp(&[b.off, on])).exp();
        }
        c.delivered += self.clean_sent;
        self.w = w;
    }

    /// The log-likelihood at x (up to a constant in x), each answer's path a mixture of
    /// its alternatives.
    fn marginal(&mut self, x: f64) -> f64 {
        let (keep, new) = (1.0 - x, (1.0 - x).ln());
        let mut w = std::mem::take(&mut self.w);
        let mut total = self.clean_sent * new;
        for o in &self.lossy {
            self.on_at(o, new, keep, &mut w);
            w.push(o.off);
            total += o.copies * (log_sum_exp(&w) - o.ln_ways);
        }
        for b in &self.bundles {
            total += b.copies * (log_sum_exp(&[b.off, b.on + b.n * new]) - b.ln_ways);
        }
        self.w = w;
        total
    }
}

/// One group's observations as a function of its rate x, the others fixed: probes that
/// crossed it and were delivered weigh `delivered · ln(1 − x)` whatever else they crossed, and
/// each share of lost probes `(m, b)` weighs `m · ln(1 − b (1 − x))`, b being the chance that
/// the rest of its path delivers. Kept in this form, a clean observation costs one addition
/// and the solver's passes visit lost probes only.
#[derive(Debug, Clone, Default)]
pub struct Terms {
    pub delivered: f64,
    pub lost: Vec<(f64, f64)>,
}

impl Terms {
    pub fn clear(&mut self) {
        self.delivered = 0.0;
        self.lost.clear();
    }

    /// n probes, m of them lost, over a rest of path that delivers with chance b.
    pub fn push(&mut self, n: f64, m: f64, b: f64) {
        // A rest that delivers nothing says nothing about x.
        if b <= 0.0 {
            return;
        }
        self.delivered += n - m;
        self.push_lost(m, b);
    }

    /// m lost probes over a rest of path that delivers with chance b.
    pub fn push_lost(&mut self, m: f64, b: f64) {
        if b > 0.0 && m > 0.0 {
            self.lost.push((m, b));
        }
    }

    /// The log-likelihood's first and second derivative at x.
    fn deriv(&self, x: f64) -> (f64, f64) {
        let keep = 1.0 - x;
        // Four sums side by side, so that the divisions of neighbouring terms overlap (and
        // the compiler may pair them): the solver's passes are most of a fit's time.
        let (mut d1, mut d2) = ([0.0; 4], [0.0; 4]);
        let chunks = self.lost.chunks_exact(4);
        let rest = chunks.remainder();
        for chunk in chunks {
            for i in 0..4 {
                let (m, b) = chunk[i];
                let r = b / (1.0 - b * keep).max(1e-300);
                d1[i] += m * r;
                d2[i] -= m * r * r;
            }
        }
        for (i, &(m, b)) in rest.iter().enumerate() {
            let r = b / (1.0 - b * keep).max(1e-300);
            d1[i] += m * r;
            d2[i] -= m * r * r;
        }
        (
            (d1[0] + d1[1]) + (d1[2] + d1[3]) - self.delivered / keep,
            (d2[0] + d2[1]) + (d2[2] + d2[3]) - self.delivered / (keep * keep),
        )
    }
}

/// `out` = the softmax of `v`.
fn softmax(v: impl Iterator<Item = f64>, out: &mut [f64]) {
    let mut top = f64::NEG_INFINITY;
    for (o, x) in out.iter_mut().zip(v) {
        *o = x;
        top = top.max(x);
    }
    let mut sum = 0.0;
    for o in out.iter_mut() {
        *o = (*o - top).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// ln of the sum of the exponentials of `v` (−∞ for none).
fn log_sum_exp(v: &[f64]) -> f64 {
    let top = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + v.iter().map(|x| (x - top).exp()).sum::<f64>().ln()
}

/// ln of the mean of the exponentials of `v` (not empty).
fn log_mean_exp(v: &[f64]) -> f64 {
    log_sum_exp(v) - (v.len() as f64).ln()
}

/// Binomial log-likelihood (without its constant) of m lost of n at log-success l.
fn binomial_ll(n: f64, m: f64, l: f64) -> f64 {
    binomial_ll_at(n, m, l, l.exp())
}

/// [`binomial_ll`] with the success chance s = e^l at hand (both kept below 1, so that a
/// loss always has a finite log).
fn binomial_ll_at(n: f64, m: f64, l: f64, s: f64) -> f64 {
    let s = s.min(1.0 - 1e-15);
    (n - m) * l.min(-1e-15)
        + if m > 0.0 {
            m * (1.0 - s).max(1e-300).ln()
        } else {
            0.0
        }
}

/// Log-likelihood of g's observations as a function of g's rate x (up to a constant).
fn loglik(t: &Terms, x: f64) -> f64 {
    let keep = 1.0 - x;
    t.delivered * keep.ln()
        + t.lost
            .iter()
            .map(|&(m, b)| m * (1.0 - b * keep).max(1e-300).ln())
            .sum::<f64>()
}

/// The rate in [lo, hi] that maximizes [`loglik`] (concave in x): Newton steps from `start`
/// kept inside a shrinking bracket, bisection when a step leaves it. An end of the range is
/// looked at only when a step heads past it, so a start near the answer (the rate before)
/// settles in two or three passes over the terms. It stops where the derivative vanishes,
/// before stepping again: a bisection step taken there once returned the midpoint between
/// the maximum and the range's end.
pub fn argmax(t: &Terms, lo: f64, hi: f64, start: f64) -> f64 {
    if t.lost.is_empty() {
        return lo;
    }
    let (mut a, mut b) = (lo, hi);
    // Whether a and b are known to bracket the maximum (the derivative points inward).
    let (mut a_known, mut b_known) = (false, false);
    let mut x = start.clamp(lo, hi);
    for _ in 0..60 {
        let (d1, d2) = t.deriv(x);
        if d1 > 0.0 {
            if x >= hi {
                return hi;
            }
            (a, a_known) = (x, true);
        } else {
            if x <= lo {
                return lo;
            }
            (b, b_known) = (x, true);
        }
        if d1.abs() < 1e-9 || (a_known && b_known && b - a < 1e-12 * b.max(1e-9)) {
            break;
        }
        let step = if d2 < 0.0 {
            x - d1 / d2
        } else if d1 > 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        if step == x {
            // The step is below the resolution of x: x is the maximum.
            break;
        }
        if step >= a && step <= b && (step - x).abs() <= 1e-10 * x {
            // Within a ten-billionth of x: the step lands on the maximum (Newton's error
            // squares each step), no pass more needed to see it.
            return step;
        }
        x = if step >= a && step <= b {
            step
        } else if step > b && !b_known {
            hi
        } else if step < a && !a_known {
            lo
        } else {
            0.5 * (a + b)
        };
    }
    x.clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lcorrelate::sim::{simulate, RoundTrip, Scenario, Topology};

    /// `f` with the rates of `gs` at `v`; the rates are put back after.
    fn with_rates<'a>(fit: &mut Fit<'a>, gs: &[usize], v: f64, f: impl Fn(&Fit<'a>) -> f64) -> f64 {
        let kept: Vec<f64> = gs.iter().map(|&g| fit.x[g]).collect();
        for &g in gs {
            fit.set(g, v);
        }
        let out = f(fit);
        for (&g, &x) in gs.iter().zip(&kept) {
            fit.set(g, x);
        }
        out
    }

    /// A small leaf-spine's round trips, two faults: answers with ECMP choices.
    fn round_trip_problem() -> Problem {
        let mut sc = Scenario::new(
            Topology::LeafSpine {
                leaves: 4,
                spines: 2,
                hosts_per_leaf: 3,
            },
            2,
        );
        sc.round_trip = RoundTrip::Total;
        simulate(&sc, 5).problem()
    }

    #[test]
    fn a_rate_moves_the_terms_of_the_groups_coupled_to_it_only() {
        // What the greedy step relies on to refit only some members: after g's rate and the
        // E step through g change, every group outside `coupled(g)` has the same terms.
        let p = round_trip_problem();
        let mut fit = Fit::new(&p, 1e-4);
        fn terms(fit: &Fit, h: usize) -> (f64, Vec<(f64, f64)>) {
            let mut c = Terms::default();
            fit.others(h, &mut c);
            (c.delivered, c.lost)
        }
        let (mut outside, mut moved) = (0, 0);
        let lossy: Vec<usize> = (0..p.groups.len()).filter(|&g| !fit.lossless[g]).collect();
        for g in lossy {
            let before: Vec<_> = (0..p.groups.len()).map(|h| terms(&fit, h)).collect();
            let kept = fit.x[g];
            fit.set(g, 0.05);
            fit.expect_through(&[g]);
            let coupled = fit.coupled(g);
            for (h, before) in before.iter().enumerate() {
                if coupled.binary_search(&(h as u32)).is_err() {
                    outside += 1;
                    assert_eq!(&terms(&fit, h), before, "group {h}, outside group {g}'s");
                } else {
                    moved += usize::from(&terms(&fit, h) != before);
                }
            }
            fit.set(g, kept);
            fit.expect_through(&[g]);
        }
        assert!(
            outside > 100 && moved > 100,
            "{outside} outside, {moved} moved"
        );
    }

    #[test]
    fn the_likelihood_through_some_rates_moves_as_the_whole_and_as_a_groups_marginal() {
        // Three ways to the same number: the sum over every observation, the part through
        // the groups whose rates change (what the search compares fault sets by), and one
        // group's observations alone (what its gain is).
        let p = round_trip_problem();
        assert!(!p.choices.is_empty(), "answers with ECMP choices");
        let mut fit = Fit::new(&p, 1e-4);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        let mut pairs = 0;
        let lossy: Vec<usize> = (0..p.groups.len()).filter(|&g| !fit.lossless[g]).collect();
        assert!(lossy.len() > 10, "{} groups to check", lossy.len());
        for g in lossy {
            // g alone, and g with a group that shares observations with it (counted once).
            let other = fit.neighbours(&[g]).into_iter().find(|&h| h != g);
            pairs += usize::from(other.is_some());
            let sets = [vec![g], other.map(|h| vec![g, h]).unwrap_or_default()];
            for gs in sets.iter().filter(|gs| !gs.is_empty()) {
                for (a, b) in [(1e-4, 0.02), (0.3, 1e-6)] {
                    let whole = with_rates(&mut fit, gs, a, Fit::log_likelihood)
                        - with_rates(&mut fit, gs, b, Fit::log_likelihood);
                    let through = with_rates(&mut fit, gs, a, |f| f.log_likelihood_through(gs))
                        - with_rates(&mut fit, gs, b, |f| f.log_likelihood_through(gs));
                    assert!(close(through, whole), "{gs:?}: {through} against {whole}");
                    if gs.len() == 1 {
                        let mut alone = fit.alone(g);
                        let marginal = alone.marginal(a) - alone.marginal(b);
                        assert!(close(whole, marginal), "{g}: {whole} against {marginal}");
                    }
                }
            }
        }
        assert!(pairs > 10, "{pairs} pairs checked");
    }

    #[test]
    fn the_certain_gain_bound_is_never_below_the_gain() {
        // What lets `second_look` skip building anything: the bound holds for every group
        // with lossy observations for certain, at rates the fit may be at.
        let p = round_trip_problem();
        let cap = 5e-4;
        let (mut checked, mut positive) = (0, 0);
        for x0 in [1e-5, 2e-4, 3e-3] {
            let mut fit = Fit::new(&p, x0);
            // Alternatives that deliver unlike each other: some groups lose a lot.
            for g in (0..p.groups.len()).step_by(7) {
                fit.set(g, 0.05);
            }
            fit.expect();
            for g in 0..p.groups.len() {
                if p.groups[g].lossy.is_empty() {
                    continue;
                }
                for raw in [1e-3, 1e-2, 0.1] {
                    let mut alone = fit.alone_certain(g);
                    let gain = alone.marginal(raw) - alone.marginal(cap);
                    let bound = fit.certain_gain_bound(g, raw, cap);
                    assert!(
                        bound >= gain - 1e-9 * gain.abs().max(1.0),
                        "g{g} {bound} {gain}"
                    );
                    checked += 1;
                    positive += usize::from(gain > 0.0);
                }
            }
        }
        assert!(
            checked > 50 && positive > 5,
            "{checked} checked, {positive} gained"
        );
    }
}
