//! The paths a round trip's untraced answer may have taken, and the observations of every
//! flow over probe and answer unknowns.
//!
//! An answer leaves the destination D through D's gateway, arrives through the source S's
//! gateway, and between the two takes one of the shortest paths the traces show from D's
//! gateway to S's gateway (the mirror of S's own route when none is seen that way), ECMP
//! siblings taken to reach what most of their group reaches ([`with_siblings_links`]). Those
//! alternatives depend only on the two gateways, so they are found once per gateway pair
//! (one breadth-first search per destination gateway) and shared as one ECMP choice by every
//! flow between the two.

use super::graph::{Dir, ObsSpec};
use super::input::{FlowKey, RouteStats};
use super::seqs::Seqs;
use super::sets::Sets;
use super::FastMap;
use std::hash::BuildHasher as _;

/// The most ECMP paths an answer is taken to choose from.
const MAX_PATHS: usize = 64;

/// Links by their ends, numbered in the order first met.
#[derive(Default)]
pub struct LinkTable {
    pub links: Vec<(u32, u32)>,
    ids: FastMap<(u32, u32), u32>,
}

impl LinkTable {
    pub fn id(&mut self, a: u32, b: u32) -> u32 {
        *self.ids.entry((a, b)).or_insert_with(|| {
            self.links.push((a, b));
            self.links.len() as u32 - 1
        })
    }

    /// The id of a link already met.
    pub fn get(&self, a: u32, b: u32) -> Option<u32> {
        self.ids.get(&(a, b)).copied()
    }
}

/// Unknown ids are dense: three per link, one per [`Dir`].
pub fn unknown(l: u32, d: Dir) -> u32 {
    3 * l
        + match d {
            Dir::Every => 0,
            Dir::AnswerOnly => 1,
            Dir::ProbeOnly => 2,
        }
}

/// Every unknown of `links` links, in id order.
pub fn unknowns(links: usize) -> Vec<(u32, Dir)> {
    (0..links as u32)
        .flat_map(|l| [(l, Dir::Every), (l, Dir::AnswerOnly), (l, Dir::ProbeOnly)])
        .collect()
}

/// ECMP choices interned by their alternatives (unknown ids each, sorted): found by their
/// hash, each stored once.
#[derive(Default)]
pub struct Choices {
    ids: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    pub alts: Vec<Vec<Vec<u32>>>,
}

impl Choices {
    fn intern(&mut self, mut alts: Vec<Vec<u32>>) -> u32 {
        alts.sort();
        let hash = self.hasher.hash_one(&alts);
        let (ids, stored, hasher) = (&mut self.ids, &mut self.alts, &self.hasher);
        if let Some(&id) = ids.find(hash, |&id| stored[id as usize] == alts) {
            return id;
        }
        let id = stored.len() as u32;
        stored.push(alts);
        ids.insert_unique(hash, id, |&id| hasher.hash_one(&stored[id as usize]));
        id
    }
}

/// An answer's way between two gateways: unknowns every alternative crosses, and the
/// choice among the rest (none when there is one way).
#[derive(Clone)]
struct Between {
    common: Vec<u32>,
    choice: Option<u32>,
}

/// Builds the observations of every flow. `routes`: router sequences (host first and last),
/// each pair in a row a traced link of `table`; `next`: the routers after each router on a
/// traced link; `host`: route ends, never crossed by an answer between gateways;
/// `flows`: (route and flow, what it carried), sorted.
pub fn observations(
    routes: &Seqs,
    next: &[Vec<u32>],
    host: &[bool],
    flows: &[(FlowKey, RouteStats)],
    table: &mut LinkTable,
    choices: &mut Choices,
) -> Vec<ObsSpec> {
    // Gateway pairs, grouped by the answer's arrival gateway (the search's target).
    let mut pairs: Vec<(u32, u32)> = routes
        .iter()
        .filter(|rs| rs.len() >= 3)
        .map(|rs| (rs[1], rs[rs.len() - 2]))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut between: FastMap<(u32, u32), Option<Between>> = FastMap::default();
    let prev = reversed(next);
    let mut toward = Toward::new(next.len());
    let mut i = 0;
    while i < pairs.len() {
        let gs = pairs[i].0;
        toward.search(&prev, host, gs);
        while i < pairs.len() && pairs[i].0 == gs {
            let gd = pairs[i].1;
            let found = toward.paths(gd, gs);
            let b = (!found.is_empty()).then(|| {
                let alts: Vec<Vec<u32>> = found
                    .iter()
                    .map(|mid| answer_unknowns(mid, table))
                    .collect();
                split(alts, choices)
            });
            between.insert((gd, gs), b);
            i += 1;
        }
    }
    let mut obs = Vec::with_capacity(flows.len());
    // The answer's unknowns and choice of each route. They depend only on its ends (source,
    // gateways, destination) where traces show the way between the gateways, and a source's
    // routes to one destination (one per spine) share them: so those are made once and kept
    // while the source is the same (routes come sorted, a source's together).
    let mut ways: Vec<(Vec<u32>, Option<u32>)> = Vec::new();
    let mut way_of: FastMap<(u32, u32, u32), usize> = FastMap::default();
    let mut ways_source = None;
    // The route in hand: its id, probe unknowns and answer's way (in `ways`).
    let mut per_route: Option<(u32, Vec<u32>, usize)> = None;
    let mut route_obs: FastMap<(u8, u64, u64), usize> = FastMap::default();
    for &(FlowKey { route: r, .. }, st) in flows {
        if per_route.as_ref().is_none_or(|c| c.0 != r) {
            let rs = routes.get(r as usize);
            let (s, d) = (rs[0], rs[rs.len() - 1]);
            // The traced links, each once, in the order crossed.
            let mut probe = Vec::with_capacity(2 * (rs.len() - 1));
            for w in rs.windows(2) {
                let l = table.id(w[0], w[1]);
                let every = unknown(l, Dir::Every);
                if !probe.contains(&every) {
                    probe.push(every);
                    probe.push(unknown(l, Dir::ProbeOnly));
                }
            }
            if ways_source != Some(s) {
                ways.clear();
                way_of.clear();
                ways_source = Some(s);
            }
            let ends = (rs.len() >= 3).then(|| (rs[1], rs[rs.len() - 2], d));
            let way = match ends.and_then(|e| way_of.get(&e)) {
                Some(&w) => w,
                None => {
                    let (back, choice, shared) = answer_way(rs, &between, table);
                    ways.push((back, choice));
                    if let (true, Some(e)) = (shared, ends) {
                        way_of.insert(e, ways.len() - 1);
                    }
                    ways.len() - 1
                }
            };
            per_route = Some((r, probe, way));
            route_obs.clear();
        }
        let (_, probe, way) = per_route.as_ref().unwrap();
        let (back, choice) = &ways[*way];
        // The route's observations so far, by kind and counts: identical flows of one route
        // are one observation with copies (summed outright when there is no choice).
        let mut add = |kind: u8, certain: &dyn Fn() -> Vec<u32>, choice: Option<u32>, n, m| {
            let key = match choice {
                Some(_) => (kind, n, m),
                None => (kind, 0, 0),
            };
            match route_obs.get(&key) {
                Some(&i) => {
                    let o: &mut ObsSpec = &mut obs[i];
                    o.sent += n;
                    o.lost += m;
                    o.copies += 1;
                }
                None => {
                    route_obs.insert(key, obs.len());
                    obs.push(ObsSpec {
                        certain: certain(),
                        choice,
                        sent: n,
                        lost: m,
                        copies: 1,
                    });
                }
            }
        };
        if st.sent > 0 || st.split_sent == 0 {
            let both = || {
                // Sized at once: a million of these at scale, and growing one by extending
                // a clone would double its allocation.
                let mut c = Vec::with_capacity(probe.len() + back.len());
                c.extend(probe);
                c.extend(back);
                c
            };
            add(0, &both, *choice, st.sent, st.lost);
        }
        if st.split_sent > 0 {
            add(1, &|| probe.clone(), None, st.split_sent, st.lost_fwd);
            let rev = st.split_sent - st.lost_fwd;
            add(2, &|| back.clone(), *choice, rev, st.lost_rev);
        }
    }
    obs
}

/// The answer unknowns (sorted) and choice of router route `rs`, and whether they depend on
/// its ends only (not on the mirror of its middle, taken where no trace shows a way back).
fn answer_way(
    rs: &[u32],
    between: &FastMap<(u32, u32), Option<Between>>,
    table: &mut LinkTable,
) -> (Vec<u32>, Option<u32>, bool) {
    let (s, d) = (rs[0], rs[rs.len() - 1]);
    let (mut back, choice, ends_only) = if rs.len() < 3 {
        (answer_unknowns(&[d, s], table), None, true)
    } else {
        let (gs, gd) = (rs[1], rs[rs.len() - 2]);
        let mut ends = answer_unknowns(&[d, gd], table);
        ends.extend(answer_unknowns(&[gs, s], table));
        match &between[&(gd, gs)] {
            Some(b) => {
                ends.extend(&b.common);
                (ends, b.choice, true)
            }
            None => {
                // Nothing seen that way: the mirror of this route.
                let mirror: Vec<u32> = rs[1..rs.len() - 1].iter().rev().copied().collect();
                ends.extend(answer_unknowns(&mirror, table));
                (ends, None, false)
            }
        }
    };
    back.sort_unstable();
    back.dedup();
    (back, choice, ends_only)
}

/// `next` with each ECMP group's members given the links most of the group has: two routers
/// right after one same router R on the way to one same destination are R's ECMP siblings,
/// and siblings (the spines of a leaf) reach the same routers. An answer may take a link of a
/// sibling that no trace happened to show: where routers answer toward the source, a spine
/// shows one address per source leaf, and its link into a leaf is seen only where a flow from
/// that leaf took it; without it an answer's real path would be missing from its
/// alternatives, and its loss put on one of the others. A router only one sibling (or fewer
/// than half) leads to is that sibling's own (a fat-tree's aggregation switches each reach
/// their own cores). `host`: routers left out, as members and as ends (hosts, and silent
/// stretches, which may be anyone).
pub fn with_siblings_links(next: &[Vec<u32>], routes: &Seqs, host: &[bool]) -> Vec<Vec<u32>> {
    // (router, destination, router after it) of every route.
    let mut steps: Vec<(u32, u32, u32)> = routes
        .iter()
        .flat_map(|rs: &[u32]| {
            let d = rs[rs.len() - 1];
            rs.windows(2)
                .filter(|w| !host[w[0] as usize] && !host[w[1] as usize])
                .map(move |w| (w[0], d, w[1]))
        })
        .collect();
    sort_dedup_triples(&mut steps);
    let mut out = next.to_vec();
    for steps in steps.chunk_by(|a, b| a.0 == b.0) {
        // The router's ECMP groups: the routers after it, joined where two lead to one same
        // destination.
        let mut after: Vec<u32> = steps.iter().map(|s| s.2).collect();
        after.sort_unstable();
        after.dedup();
        let at = |x: u32| after.binary_search(&x).unwrap() as u32;
        let mut sets = Sets::new(after.len());
        for run in steps.chunk_by(|a, b| a.1 == b.1) {
            for w in run.windows(2) {
                sets.union(at(w[0].2), at(w[1].2));
            }
        }
        let mut members: Vec<(u32, u32)> = (0..after.len() as u32)
            .map(|i| (sets.find(i), after[i as usize]))
            .collect();
        members.sort_unstable();
        for group in members.chunk_by(|a, b| a.0 == b.0) {
            if group.len() < 2 {
                continue;
            }
            let mut led: Vec<u32> = group
                .iter()
                .flat_map(|&(_, x)| next[x as usize].iter().copied())
                .filter(|&n| !host[n as usize])
                .collect();
            led.sort_unstable();
            for run in led.chunk_by(|a, b| a == b) {
                if run.len() >= 2 && 2 * run.len() >= group.len() {
                    for &(_, x) in group {
                        out[x as usize].push(run[0]);
                    }
                }
            }
        }
    }
    for n in &mut out {
        n.sort_unstable();
        n.dedup();
    }
    out
}

/// Sorts and dedups `v`; as one number each where the ids allow (about twice as fast as
/// comparing triples, on the millions of steps of a data center).
fn sort_dedup_triples(v: &mut Vec<(u32, u32, u32)>) {
    const BITS: u32 = 21;
    if v.iter().all(|&(a, b, c)| (a | b | c) < 1 << BITS) {
        let mut packed: Vec<u64> = v
            .iter()
            .map(|&(a, b, c)| (u64::from(a) << (2 * BITS)) | (u64::from(b) << BITS) | u64::from(c))
            .collect();
        packed.sort_unstable();
        packed.dedup();
        let low = (1u64 << BITS) - 1;
        v.clear();
        v.extend(packed.into_iter().map(|k| {
            (
                (k >> (2 * BITS)) as u32,
                ((k >> BITS) & low) as u32,
                (k & low) as u32,
            )
        }));
    } else {
        v.sort_unstable();
        v.dedup();
    }
}

/// The answer unknowns (every packet's and answers' own) of the links along `path`.
fn answer_unknowns(path: &[u32], table: &mut LinkTable) -> Vec<u32> {
    path.windows(2)
        .filter(|w| w[0] != w[1])
        .flat_map(|w| {
            let l = table.id(w[0], w[1]);
            [unknown(l, Dir::Every), unknown(l, Dir::AnswerOnly)]
        })
        .collect()
}

/// Alternatives into the unknowns on all of them and the choice among the rest.
fn split(alts: Vec<Vec<u32>>, choices: &mut Choices) -> Between {
    let first = &alts[0];
    let mut common: Vec<u32> = first
        .iter()
        .copied()
        .filter(|u| alts[1..].iter().all(|a| a.contains(u)))
        .collect();
    common.sort_unstable();
    common.dedup();
    if alts.len() < 2 {
        return Between {
            common,
            choice: None,
        };
    }
    let rest: Vec<Vec<u32>> = alts
        .into_iter()
        .map(|a| {
            let mut a: Vec<u32> = a
                .into_iter()
                .filter(|u| common.binary_search(u).is_err())
                .collect();
            a.sort_unstable();
            a.dedup();
            a
        })
        .collect();
    Between {
        common,
        choice: Some(choices.intern(rest)),
    }
}

fn reversed(next: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let mut prev = vec![Vec::new(); next.len()];
    for (a, ns) in next.iter().enumerate() {
        for &b in ns {
            prev[b as usize].push(a as u32);
        }
    }
    prev
}

/// Shortest paths toward one router over the links seen, hosts other than it not crossed.
struct Toward {
    /// Hops from each router to the target (`u32::MAX`: not reachable).
    dist: Vec<u32>,
    /// From each router, the links one hop closer: the shortest paths are made of these, and
    /// following only them spares looking at every link of a router with many (a spine's
    /// hundreds of leaves) at every step of every path.
    closer: Vec<Vec<u32>>,
    /// Routers the last search reached, to reset.
    reached: Vec<u32>,
}

impl Toward {
    fn new(routers: usize) -> Self {
        Toward {
            dist: vec![u32::MAX; routers],
            closer: vec![Vec::new(); routers],
            reached: Vec::new(),
        }
    }

    /// Breadth-first from `to` over the links backward (`prev`).
    fn search(&mut self, prev: &[Vec<u32>], host: &[bool], to: u32) {
        for &r in &self.reached {
            self.dist[r as usize] = u32::MAX;
            self.closer[r as usize].clear();
        }
        self.reached.clear();
        self.dist[to as usize] = 0;
        self.reached.push(to);
        let mut frontier = vec![to];
        let mut d = 0;
        while !frontier.is_empty() {
            d += 1;
            let mut new = Vec::new();
            for &v in &frontier {
                for &u in &prev[v as usize] {
                    if host[u as usize] {
                        continue;
                    }
                    if self.dist[u as usize] == u32::MAX {
                        self.dist[u as usize] = d;
                        self.reached.push(u);
                        new.push(u);
                    }
                    if self.dist[u as usize] == d {
                        self.closer[u as usize].push(v);
                    }
                }
            }
            frontier = new;
        }
    }

    /// Every shortest path from `from` to the target `to` of the last search (router
    /// sequences, sorted); empty when `to` is not reachable or there are more than
    /// [`MAX_PATHS`].
    fn paths(&self, from: u32, to: u32) -> Vec<Vec<u32>> {
        if from == to {
            return vec![vec![from]];
        }
        if self.dist[from as usize] == u32::MAX {
            return Vec::new();
        }
        // Depth first, one path in hand: each router on the stack with its place on it.
        let mut done = Vec::new();
        let mut path = Vec::new();
        let mut stack = vec![(from, 0)];
        while let Some((head, at)) = stack.pop() {
            path.truncate(at);
            path.push(head);
            if head == to {
                done.push(path.clone());
                if done.len() > MAX_PATHS {
                    return Vec::new();
                }
                continue;
            }
            stack.extend(self.closer[head as usize].iter().map(|&n| (n, at + 1)));
        }
        done.sort();
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_sort_alike_packed_or_not() {
        let mut rng = crate::lcorrelate::sim::Rng::new(7);
        // Packed (the top id fits in 21 bits), and not.
        for top in [8u32, (1 << 21) - 1, u32::MAX] {
            let v: Vec<(u32, u32, u32)> = (0..2000)
                .map(|_| {
                    let mut id = || (rng.next_u64() % (u64::from(top) + 1)) as u32;
                    (id(), id(), id())
                })
                .collect();
            let mut want = v.clone();
            want.sort_unstable();
            want.dedup();
            let mut got = v;
            sort_dedup_triples(&mut got);
            assert_eq!(got, want, "ids up to {top}");
        }
    }

    #[test]
    fn answers_take_every_shortest_path_up_to_a_limit() {
        // 0 -> 1 | 2 -> 3, and a longer way 0 -> 4 -> 5 -> 3; 6 is a host, not crossed.
        let mut next = vec![vec![1, 2, 4, 6], vec![3], vec![3], vec![], vec![5], vec![3]];
        next.push(vec![3]);
        let host = [false, false, false, false, false, false, true];
        let mut toward = Toward::new(next.len());
        toward.search(&reversed(&next), &host, 3);
        assert_eq!(toward.paths(0, 3), [vec![0, 1, 3], vec![0, 2, 3]]);
        assert_eq!(toward.paths(4, 3), [vec![4, 5, 3]]);
        assert_eq!(toward.paths(3, 3), [vec![3]]);
        assert!(toward.paths(6, 3).is_empty());
        // Searched again toward another router: nothing of the last search is left.
        toward.search(&reversed(&next), &host, 5);
        assert_eq!(toward.paths(0, 5), [vec![0, 4, 5]]);
        assert!(toward.paths(1, 5).is_empty());
        // More ways than MAX_PATHS: none taken.
        let n = MAX_PATHS + 1;
        let mut next: Vec<Vec<u32>> = vec![(1..=n as u32).collect()];
        next.extend((0..n).map(|_| vec![n as u32 + 1]));
        next.push(vec![]);
        let host = vec![false; next.len()];
        toward = Toward::new(next.len());
        toward.search(&reversed(&next), &host, n as u32 + 1);
        assert!(toward.paths(0, n as u32 + 1).is_empty());
    }

    #[test]
    fn ecmp_siblings_get_the_links_most_of_their_group_has() {
        // Host 10 behind router 0; 1, 2 and 3 after 0 toward host 11 (siblings); 4 after 0
        // toward host 12 only. 1 and 2 lead to 5 and 6, 3 to 5 only: 3 may lead to 6 too.
        // 1 alone leads to 8: its own. 4 is no sibling: it gets nothing.
        let lists = [
            vec![10, 0, 1, 5, 11],
            vec![10, 0, 2, 5, 11],
            vec![10, 0, 3, 5, 11],
            vec![10, 0, 1, 6, 13],
            vec![10, 0, 2, 6, 13],
            vec![10, 0, 1, 8, 14],
            vec![10, 0, 4, 7, 12],
        ];
        let mut routes = Seqs::default();
        for r in &lists {
            routes.push(r);
        }
        let mut next = vec![Vec::new(); 15];
        for r in &lists {
            for w in r.windows(2) {
                next[w[0] as usize].push(w[1]);
            }
        }
        for n in &mut next {
            n.sort_unstable();
            n.dedup();
        }
        let host: Vec<bool> = (0..15).map(|n| n >= 10).collect();
        let out = with_siblings_links(&next, &routes, &host);
        assert_eq!(out[3], [5, 6]);
        assert_eq!(out[1], [5, 6, 8]);
        assert_eq!(out[2], [5, 6]);
        assert_eq!(out[4], [7]);
        assert_eq!(out[0], next[0]);
    }
}
