//! The link graph: links from routes, and groups of links no measurement can tell apart.
//!
//! A link is a directed pair of consecutive nodes on a route. Links crossed by exactly the
//! same measured routes are one group: any loss split between them fits the data equally
//! well, so the estimators score groups, and the output names every member.

use super::input::Aggregator;
use super::seqs::Seqs;
use super::FastMap;
use petgraph::graph::{DiGraph, NodeIndex};

/// What packets an unknown loss rate of a link applies to.
///
/// Every packet crossing a link, probe or answer, meets its loss rate ([`Dir::Every`]); an
/// answer also meets the link's loss of answers only ([`Dir::AnswerOnly`]), and a traced
/// probe its loss of probes only ([`Dir::ProbeOnly`]). Both are healthy unless the data need
/// them: a policer, an ACL or a queue that only one kind of packet goes through, or records
/// whose loss was measured one way only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    Every,
    AnswerOnly,
    ProbeOnly,
}

/// One observation: a flow's probes and losses over the unknowns it crossed, or `copies`
/// flows that crossed the same unknowns with the same counts (`sent` and `lost` are their
/// sums; the likelihood of identical flows is that of one, `copies` times).
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The groups the observation crosses for certain (those of its choice's alternatives
    /// are in [`Choice::union`]).
    pub groups: Vec<u32>,
    /// The ECMP choice of its untraced part, if any.
    pub choice: Option<u32>,
    pub sent: u64,
    pub lost: u64,
    pub copies: u32,
}

impl Route {
    /// One copy's probes and losses.
    pub fn per_copy(&self) -> (f64, f64) {
        let c = f64::from(self.copies.max(1));
        (self.sent as f64 / c, self.lost as f64 / c)
    }
}

/// The paths an untraced answer may have taken, equally likely: each alternative lists the
/// groups that path crosses beyond those every alternative crosses.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub alts: Vec<Vec<u32>>,
    /// Every group of any alternative, once.
    pub union: Vec<u32>,
    /// Observations that took one of these paths.
    pub routes: Vec<u32>,
    /// Those of them that lost packets.
    pub lossy: Vec<u32>,
    /// Those that lost none, as (probes of one copy, copies): clean observations weigh the
    /// alternatives alike whatever else they cross, so only their probe counts matter.
    pub clean: Vec<(f64, f64)>,
}

/// Unknowns (a link in one direction of travel) that every observation crosses together.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Physical link ids, in the order a route crosses them, each once.
    pub links: Vec<u32>,
    /// Observations through the group for certain.
    pub certain: Vec<u32>,
    /// (choice, alternative) pairs whose path crosses the group.
    pub alts: Vec<(u32, u32)>,
    /// The observations through the group for certain that lost packets.
    pub lossy: Vec<u32>,
    /// Probes of those that lost none: they weigh on the group's rate as one sum.
    pub clean_sent: f64,
    /// Flows through the group (for certain or as one of their choices).
    pub flows: u64,
    pub sent: u64,
    pub lost: u64,
    /// Every member is a loss of one kind of packet only ([`Dir::AnswerOnly`],
    /// [`Dir::ProbeOnly`]): healthy at no loss at all.
    pub excess_only: bool,
}

impl Group {
    /// Adds (flows, probes, losses) that crossed the group.
    fn add_carried(&mut self, (flows, sent, lost): (u64, u64, u64)) {
        self.flows += flows;
        self.sent += sent;
        self.lost += lost;
    }
}

/// An unknown's observations for certain, and its (choice, alternative) pairs.
type Signature<'a> = (&'a [u32], &'a [(u32, u32)]);

/// One observation as the builder takes it: unknown ids crossed for certain, and the ECMP
/// choice of its untraced part (an index into the choices given to [`Problem::assemble`]).
#[derive(Debug, Clone, Default)]
pub struct ObsSpec {
    pub certain: Vec<u32>,
    pub choice: Option<u32>,
    pub sent: u64,
    pub lost: u64,
    /// Identical flows it stands for (with a choice; 0 is taken as 1).
    pub copies: u32,
}

/// What the estimators work on, and the names to report with.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Node names (routers after alias inference, or addresses).
    pub names: Vec<Box<str>>,
    /// Link id to (from, to) node ids.
    pub links: Vec<(u32, u32)>,
    /// Per link, the (from, to) address pairs it showed as in traces, most seen first
    /// (indexes into `addr_names`); empty for a link no trace showed (an answer's path).
    pub covers: Vec<Vec<(u32, u32)>>,
    pub addr_names: Vec<Box<str>>,
    /// Unknown id to (link, direction).
    pub unknowns: Vec<(u32, Dir)>,
    pub groups: Vec<Group>,
    /// Measured observations only (sent > 0).
    pub routes: Vec<Route>,
    pub choices: Vec<Choice>,
    /// Per physical link, the groups holding one of its unknowns.
    pub groups_of_link: Vec<Vec<u32>>,
    /// Per node, whether it is a host (a route's source or destination); empty when not known.
    pub endpoints: Vec<bool>,
    /// Links of observations that carried no probes (topology only): drawn, not scored.
    pub unmeasured_links: Vec<u32>,
    /// The link graph, node weights are node ids; edge weights link ids.
    pub graph: DiGraph<u32, u32>,
}

impl Problem {
    pub fn from_aggregator(agg: Aggregator) -> Problem {
        super::topology::infer(agg)
    }

    /// One-way routes as node sequences with their sent and lost counts: each link a probe
    /// unknown, nothing coming back (the model of a loss that is all on the traced path).
    pub fn build(names: Vec<Box<str>>, raw: Vec<(&[u32], u64, u64)>) -> Problem {
        let mut link_ids: FastMap<(u32, u32), u32> = FastMap::default();
        let mut links = Vec::new();
        let mut obs = Vec::new();
        for (nodes, sent, lost) in raw {
            let mut certain = Vec::with_capacity(nodes.len());
            for w in nodes.windows(2) {
                let id = *link_ids.entry((w[0], w[1])).or_insert_with(|| {
                    links.push((w[0], w[1]));
                    links.len() as u32 - 1
                });
                certain.push(id);
            }
            obs.push(ObsSpec {
                certain,
                choice: None,
                sent,
                lost,
                copies: 1,
            });
        }
        let unknowns = (0..links.len() as u32).map(|l| (l, Dir::Every)).collect();
        let covers = vec![Vec::new(); links.len()];
        Problem::assemble(names, links, covers, Vec::new(), unknowns, Vec::new(), obs)
    }

    /// Every group observation `r` may cross: its certain ones, then its choice's.
    pub fn route_groups<'a>(&'a self, r: &'a Route) -> impl Iterator<Item = u32> + 'a {
        let maybe: &[u32] = match r.choice {
            Some(c) => &self.choices[c as usize].union,
            None => &[],
        };
        r.groups.iter().chain(maybe).copied()
    }

    /// Every observation through group `g`, for certain or as one of its choices (an
    /// observation may come twice).
    pub fn group_routes(&self, g: usize) -> impl Iterator<Item = u32> + '_ {
        let grp = &self.groups[g];
        let mut chosen: Vec<u32> = grp.alts.iter().map(|&(c, _)| c).collect();
        chosen.dedup();
        grp.certain.iter().copied().chain(
            chosen
                .into_iter()
                .flat_map(|c| self.choices[c as usize].routes.iter().copied()),
        )
    }

    /// Sorts every observation into lossy ones, kept one by one, and clean ones, summed per
    /// group and bundled per choice and probe count.
    fn split_clean(&mut self) {
        // Each observation's probes, NaN where it lost some: every group's observations are
        // visited (millions in all), and this list is 7 times smaller than theirs.
        let clean_sent: Vec<f64> = self
            .routes
            .iter()
            .map(|r| if r.lost > 0 { f64::NAN } else { r.sent as f64 })
            .collect();
        for grp in &mut self.groups {
            for &r in &grp.certain {
                let sent = clean_sent[r as usize];
                if sent.is_nan() {
                    grp.lossy.push(r);
                } else {
                    grp.clean_sent += sent;
                }
            }
        }
        drop(clean_sent);
        for ch in &mut self.choices {
            let mut bundles: FastMap<u64, f64> = FastMap::default();
            for &r in &ch.routes {
                let route = &self.routes[r as usize];
                if route.lost > 0 {
                    ch.lossy.push(r);
                } else {
                    let (n, _) = route.per_copy();
                    *bundles.entry(n.to_bits()).or_default() += f64::from(route.copies.max(1));
                }
            }
            ch.clean = bundles
                .into_iter()
                .map(|(n, k)| (f64::from_bits(n), k))
                .collect();
            ch.clean.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }

    /// Groups the unknowns by the observations that cross them and builds the graph.
    /// `choice_alts`: the ECMP choices observations refer to, each alternative a list of
    /// unknown ids.
    pub fn assemble(
        names: Vec<Box<str>>,
        links: Vec<(u32, u32)>,
        covers: Vec<Vec<(u32, u32)>>,
        addr_names: Vec<Box<str>>,
        unknowns: Vec<(u32, Dir)>,
        choice_alts: Vec<Vec<Vec<u32>>>,
        obs: Vec<ObsSpec>,
    ) -> Problem {
        let mut graph = DiGraph::new();
        let mut node_index: FastMap<u32, NodeIndex> = FastMap::default();
        for (l, &(a, b)) in links.iter().enumerate() {
            let a = *node_index.entry(a).or_insert_with(|| graph.add_node(a));
            let b = *node_index.entry(b).or_insert_with(|| graph.add_node(b));
            graph.add_edge(a, b, l as u32);
        }
        // Measured observations.
        // (certain, choice, sent, lost, copies)
        type Measured = (Vec<u32>, Option<u32>, u64, u64, u32);
        let mut measured: Vec<Measured> = Vec::with_capacity(obs.len());
        let mut seen_link = vec![false; links.len()];
        let mut choice_used = vec![false; choice_alts.len()];
        for o in obs {
            if o.sent == 0 {
                continue;
            }
            let mut certain = o.certain;
            certain.sort_unstable();
            certain.dedup();
            certain.shrink_to_fit();
            for &u in &certain {
                seen_link[unknowns[u as usize].0 as usize] = true;
            }
            if let Some(c) = o.choice {
                if !std::mem::replace(&mut choice_used[c as usize], true) {
                    for &u in choice_alts[c as usize].iter().flatten() {
                        seen_link[unknowns[u as usize].0 as usize] = true;
                    }
                }
            }
            measured.push((certain, o.choice, o.sent, o.lost, o.copies.max(1)));
        }
        // Each unknown's signature: the observations through it for certain, then the
        // (choice, alternative) pairs through it. Equal signatures cannot be told apart.
        // The observations through each unknown for certain, in observation order: one flat
        // list (a list per unknown grows by doubling, and there are millions of entries at
        // data-center scale).
        let certain_of = Seqs::grouped(unknowns.len(), || {
            measured
                .iter()
                .zip(0..)
                .flat_map(|(m, r)| m.0.iter().map(move |&u| (u, r)))
        });
        let mut alts_of: Vec<Vec<(u32, u32)>> = vec![Vec::new(); unknowns.len()];
        for (c, alts) in choice_alts.iter().enumerate() {
            if !choice_used[c] {
                continue;
            }
            for (j, a) in alts.iter().enumerate() {
                for &u in a {
                    alts_of[u as usize].push((c as u32, j as u32));
                }
            }
        }
        let mut group_of_sig: FastMap<Signature, u32> = FastMap::default();
        let mut group_of: Vec<Option<u32>> = vec![None; unknowns.len()];
        let mut groups: Vec<Group> = Vec::new();
        let mut first_unknown: Vec<u32> = Vec::new();
        // Unknowns in observation order, so that group members come out in path order.
        // (Walked, not collected: that list would hold every observation's unknowns again.)
        let mut choice_listed = vec![false; choice_alts.len()];
        let order = measured.iter().flat_map(|m| {
            let alts: &[Vec<u32>] = match m.1 {
                Some(c) if !std::mem::replace(&mut choice_listed[c as usize], true) => {
                    &choice_alts[c as usize]
                }
                _ => &[],
            };
            m.0.iter().chain(alts.iter().flatten()).copied()
        });
        for u in order {
            if group_of[u as usize].is_some() {
                continue;
            }
            let sig = (certain_of.get(u as usize), &alts_of[u as usize][..]);
            let g = *group_of_sig.entry(sig).or_insert_with(|| {
                first_unknown.push(u);
                groups.push(Group {
                    links: Vec::new(),
                    certain: Vec::new(),
                    alts: Vec::new(),
                    lossy: Vec::new(),
                    clean_sent: 0.0,
                    flows: 0,
                    sent: 0,
                    lost: 0,
                    excess_only: true,
                });
                groups.len() as u32 - 1
            });
            let (link, dir) = unknowns[u as usize];
            groups[g as usize].excess_only &= dir != Dir::Every;
            if !groups[g as usize].links.contains(&link) {
                groups[g as usize].links.push(link);
            }
            group_of[u as usize] = Some(g);
        }
        drop(group_of_sig);
        // Each group's signature.
        for (grp, &u) in groups.iter_mut().zip(&first_unknown) {
            grp.certain = certain_of.get(u as usize).to_vec();
            grp.alts = std::mem::take(&mut alts_of[u as usize]);
        }
        drop(certain_of);
        drop(alts_of);
        // Each alternative's unknowns become its groups in place, as observations' do below.
        let mut choices: Vec<Choice> = choice_alts
            .into_iter()
            .map(|mut alts| {
                for gs in &mut alts {
                    into_groups(gs, &group_of);
                }
                let mut union: Vec<u32> = alts.iter().flatten().copied().collect();
                union.sort_unstable();
                union.dedup();
                Choice {
                    alts,
                    union,
                    routes: Vec::new(),
                    lossy: Vec::new(),
                    clean: Vec::new(),
                }
            })
            .collect();
        let routes: Vec<Route> = measured
            .into_iter()
            .enumerate()
            .map(|(r, (certain, choice, sent, lost, copies))| {
                // The unknowns' list becomes the groups' in place: one allocation fewer per
                // observation, of which there may be millions.
                let mut gs = certain;
                into_groups(&mut gs, &group_of);
                if let Some(c) = choice {
                    choices[c as usize].routes.push(r as u32);
                }
                Route {
                    groups: gs,
                    choice,
                    sent,
                    lost,
                    copies,
                }
            })
            .collect();
        let mut p = Problem {
            groups_of_link: Vec::new(),
            endpoints: Vec::new(),
            names,
            links,
            covers,
            addr_names,
            unknowns,
            groups,
            routes,
            choices,
            unmeasured_links: Vec::new(),
            graph,
        };
        // What crossed each group: an observation's counts go to its certain groups one by
        // one, and to its choice's groups summed per choice (integers: the same totals,
        // without visiting every alternative's groups once per observation).
        let mut per_choice = vec![(0u64, 0u64, 0u64); p.choices.len()];
        for route in &p.routes {
            let carried = (u64::from(route.copies), route.sent, route.lost);
            for &g in &route.groups {
                p.groups[g as usize].add_carried(carried);
            }
            if let Some(c) = route.choice {
                let sum = &mut per_choice[c as usize];
                sum.0 += carried.0;
                sum.1 += carried.1;
                sum.2 += carried.2;
            }
        }
        for (ch, carried) in p.choices.iter().zip(per_choice) {
            for &g in &ch.union {
                p.groups[g as usize].add_carried(carried);
            }
        }
        p.unmeasured_links = (0..p.links.len() as u32)
            .filter(|&l| !seen_link[l as usize])
            .collect();
        let mut groups_of_link: Vec<Vec<u32>> = vec![Vec::new(); p.links.len()];
        for (g, grp) in p.groups.iter().enumerate() {
            for &l in &grp.links {
                groups_of_link[l as usize].push(g as u32);
            }
        }
        p.groups_of_link = groups_of_link;
        p.split_clean();
        p
    }

    pub fn link_name(&self, l: u32) -> (&str, &str) {
        match self.covers[l as usize].first() {
            Some(&(a, b)) => (&self.addr_names[a as usize], &self.addr_names[b as usize]),
            None => {
                let (a, b) = self.links[l as usize];
                (&self.names[a as usize], &self.names[b as usize])
            }
        }
    }
}

/// A list of unknown ids made, in place, the sorted list of their groups (unknowns in no
/// group left out).
fn into_groups(list: &mut Vec<u32>, group_of: &[Option<u32>]) {
    list.retain_mut(|u| match group_of[*u as usize] {
        Some(g) => {
            *u = g;
            true
        }
        None => false,
    });
    list.sort_unstable();
    list.dedup();
    list.shrink_to_fit();
}

/// A silent hop (a `?` node) between two known nodes A and B is the node X when every route
/// that shows something between A and B shows that same X there: the trace only lost the
/// probes of one TTL. Left silent when no route, or routes with different nodes (ECMP), show
/// the stretch. Without this, a route through a silent hop is a different route, and it alone
/// tells apart links that otherwise always go together, so the model may split its loss
/// between the wrong one of them and the silent stretch. Routes that become the same merge.
/// Returns the routes sorted.
pub fn fill_silent_hops(
    names: &[Box<str>],
    mut routes: Vec<(Vec<u32>, u64, u64)>,
) -> Vec<(Vec<u32>, u64, u64)> {
    {
        let mut seqs: Vec<&mut [u32]> = routes.iter_mut().map(|r| &mut r.0[..]).collect();
        fill_in_place(names, &mut seqs);
    }
    routes.sort_unstable();
    let mut merged: Vec<(Vec<u32>, u64, u64)> = Vec::with_capacity(routes.len());
    for (r, sent, lost) in routes {
        match merged.last_mut() {
            Some(last) if last.0 == r => {
                last.1 += sent;
                last.2 += lost;
            }
            _ => merged.push((r, sent, lost)),
        }
    }
    merged
}

/// [`fill_silent_hops`] without merging: each route's silent hops filled where they can be.
pub fn fill_in_place(names: &[Box<str>], routes: &mut [&mut [u32]]) {
    let silent = |n: u32| names[n as usize].starts_with('?');
    if routes.iter().all(|r| !r.iter().any(|&n| silent(n))) {
        return;
    }
    // (A, B) -> the one known node seen between them, or None when several were.
    let mut between: FastMap<(u32, u32), Option<u32>> = FastMap::default();
    for r in routes.iter() {
        for w in r.windows(3) {
            if silent(w[0]) || silent(w[1]) || silent(w[2]) {
                continue;
            }
            between
                .entry((w[0], w[2]))
                .and_modify(|x| {
                    if *x != Some(w[1]) {
                        *x = None;
                    }
                })
                .or_insert(Some(w[1]));
        }
    }
    for r in routes.iter_mut() {
        for i in 1..r.len().saturating_sub(1) {
            if silent(r[i]) && !silent(r[i - 1]) && !silent(r[i + 1]) {
                if let Some(&Some(x)) = between.get(&(r[i - 1], r[i + 1])) {
                    r[i] = x;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<Box<str>> {
        n.iter().map(|s| (*s).into()).collect()
    }

    #[test]
    fn links_on_the_same_routes_form_one_group() {
        // h1 -> a -> b -> h2 twice (different counts) and h1 -> a -> c -> h2.
        let n = names(&["h1", "a", "b", "c", "h2"]);
        let r1 = [0, 1, 2, 4];
        let r2 = [0, 1, 3, 4];
        let p = Problem::build(n, vec![(&r1, 10, 1), (&r2, 10, 0)]);
        assert_eq!(p.links.len(), 5);
        // h1>a and a... : h1>a on both routes; a>b,b>h2 on r1 only; a>c,c>h2 on r2 only.
        assert_eq!(p.groups.len(), 3);
        let member_names: Vec<Vec<(&str, &str)>> = p
            .groups
            .iter()
            .map(|g| g.links.iter().map(|&l| p.link_name(l)).collect())
            .collect();
        assert_eq!(member_names[0], [("h1", "a")]);
        assert_eq!(member_names[1], [("a", "b"), ("b", "h2")]);
        assert_eq!(member_names[2], [("a", "c"), ("c", "h2")]);
        assert_eq!((p.groups[0].sent, p.groups[0].lost), (20, 1));
        assert_eq!(p.graph.edge_count(), 5);
        assert_eq!(p.graph.node_count(), 5);
    }

    #[test]
    fn unmeasured_routes_are_drawn_not_scored() {
        let n = names(&["h1", "a", "h2"]);
        let r = [0, 1, 2];
        let p = Problem::build(n, vec![(&r, 0, 0)]);
        assert!(p.groups.is_empty() && p.routes.is_empty());
        assert_eq!(p.unmeasured_links, [0, 1]);
    }

    #[test]
    fn a_silent_hop_is_the_one_node_seen_there() {
        // a>?>c is filled as a>b>c when b is all other routes show between a and c, and then
        // merges with the route that named it; between a and e two nodes were seen (ECMP),
        // so that silent hop stays.
        let n = names(&["a", "b", "c", "d", "e", "?a>c#1", "?a>e#1", "x"]);
        let routes = vec![
            (vec![0, 1, 2], 100, 10),
            (vec![0, 5, 2], 40, 8),
            (vec![0, 1, 4], 10, 0),
            (vec![0, 3, 4], 10, 0),
            (vec![0, 6, 4], 10, 1),
            (vec![7, 0, 5, 2], 5, 0),
        ];
        let filled = fill_silent_hops(&n, routes);
        assert_eq!(
            filled,
            vec![
                (vec![0, 1, 2], 140, 18),
                (vec![0, 1, 4], 10, 0),
                (vec![0, 3, 4], 10, 0),
                (vec![0, 6, 4], 10, 1),
                (vec![7, 0, 1, 2], 5, 0),
            ]
        );
    }
}
