//! From traced addresses to physical links, and from round trips to the paths their answers
//! may have taken.
//!
//! # Routers from interface addresses
//! A router answers a trace from one of its interfaces, so one router shows as many
//! addresses. Two rules put addresses of one router together, without an alias file:
//!
//! - **Gateway**: the first hop of every trace from host H, and the last hop before H of every
//!   trace to H, are H's gateway, whatever interface it answered from.
//! - **Arrival**: routers that answer from the interface a probe arrived on (hardware routers,
//!   Linux with `icmp_errors_use_inbound_ifaddr=1`) show, at each hop, the far end of the link
//!   the probe came in on. Every address seen right before such an address B is then an
//!   interface of the one router at the other end of B's link. The rule is used only where it
//!   holds: B is left out when two addresses before it are ECMP siblings (both seen right
//!   after one same address), the mark of routers that answer from the interface toward the
//!   source (Linux's default), where paths that split meet again at one address. Hosts
//!   (sources and destinations) are never merged by it (hosts share a gateway address on a LAN).
//!
//! Silent hops are first filled from the same flow's other traces ([`super::silent`]) and
//! from the one node other routes show there; one left silent never makes the routers that
//! did answer look like ECMP siblings, and joins a rule's addresses where the rule is seen to
//! hold. A router that never answers is one router where it is the one never-answering
//! member of a router's ECMP group toward every next router.
//!
//! A physical link is then a pair of routers. Each link keeps the address pairs it showed as
//! (`covers`): with arrival addressing a link into B is named by B's arrival address.
//!
//! # Round trips
//! ludp, ltcp and lping measure round trips: the answer comes back on its own path, hashed by
//! ECMP on the reversed 5-tuple and never traced. It leaves the destination D through D's
//! gateway, arrives through the source S's gateway, and between the two takes one of the
//! paths that traces from D's gateway to S's gateway show (the mirror of S's own paths when
//! none were traced that way). An answer meets each link's loss rate, as a probe does, and
//! the link's loss of answers only; a traced probe its loss of probes only (see
//! [`super::answers`]).
//! Without `lost_fwd`/`lost_rev` the whole loss is explained by probe and answer paths
//! together; with them, each part by its own path.

use super::answers::{observations, unknowns, with_siblings_links, Choices, LinkTable};
use super::graph::{fill_in_place, Problem};
use super::input::{Aggregator, FlowKey, RouteStats};
use super::seqs::Seqs;
use super::sets::Sets;
use super::silent::fill_from_same_flow;
use super::{FastMap, FastSet};
use std::collections::BTreeSet;

/// Builds the estimators' problem from what the aggregator read.
pub fn infer(agg: Aggregator) -> Problem {
    // Node ids by name, so that nothing depends on the input's order.
    let (names, mut raw, mut flows) = agg.into_parts();
    let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
    by_name.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
    let mut new_id = vec![0u32; names.len()];
    for (new, &old) in by_name.iter().enumerate() {
        new_id[old as usize] = new as u32;
    }
    let mut names: Vec<Option<Box<str>>> = names.into_iter().map(Some).collect();
    let addr_names: Vec<Box<str>> = by_name
        .iter()
        .map(|&i| names[i as usize].take().unwrap())
        .collect();
    drop(names);
    let silent = |n: u32| addr_names[n as usize].starts_with('?');

    // Routes in the new ids, silent hops filled where the other routes show who is there;
    // routes the fill makes equal become one.
    for n in raw.ids_mut() {
        *n = new_id[*n as usize];
    }
    // First from the same flow's other traces, then from the other flows'.
    let keys: Vec<FlowKey> = flows.iter().map(|f| f.0).collect();
    let flow_route = fill_from_same_flow(&mut raw, &silent, &keys);
    drop(keys);
    if raw.ids().iter().any(|&n| silent(n)) {
        let mut seqs: Vec<&mut [u32]> = raw.iter_mut().collect();
        fill_in_place(&addr_names, &mut seqs);
    }
    // Sorted, each once: the index of each in sorted order, sorting indexes rather than
    // the routes (a million of them in a data center).
    let order = sorted_order(&raw);
    let mut routes = Seqs::with_capacity(raw.len(), raw.ids().len());
    let mut route_of = vec![0u32; raw.len()];
    for (k, &r) in order.iter().enumerate() {
        let seq = raw.get(r as usize);
        if k == 0 || raw.get(order[k - 1] as usize) != seq {
            routes.push(seq);
        }
        route_of[r as usize] = routes.len() as u32 - 1;
    }
    drop((order, raw));
    // The flows on the routes as numbered here; one flow's traces that the fill made one
    // route are one flow again.
    for (f, r) in flows.iter_mut().zip(flow_route) {
        f.0.route = route_of[r as usize];
    }
    drop(route_of);
    let mut flows = sorted_by_route(flows, routes.len());
    flows.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1.add(&later.1);
        }
        same
    });

    let mut sets = Sets::new(addr_names.len());
    let mut endpoint = vec![false; addr_names.len()];
    for r in routes.iter() {
        endpoint[r[0] as usize] = true;
        endpoint[*r.last().unwrap() as usize] = true;
    }
    // Predecessors of every address, for both rules; and how many times each such address
    // pair was crossed, in the order of `preds` (a link's pairs are ranked by it, and counted
    // here they cost no map lookup per crossing, of which there are millions).
    let mut preds: Vec<Vec<u32>> = vec![Vec::new(); addr_names.len()];
    for r in routes.iter() {
        for w in r.windows(2) {
            preds[w[1] as usize].push(w[0]);
        }
    }
    let mut crossings: Vec<u32> = Vec::new();
    for p in &mut preds {
        p.sort_unstable();
        for run in p.chunk_by(|a, b| a == b) {
            crossings.push(run.len() as u32);
        }
        p.dedup();
    }
    // Addresses seen right after one same address: ECMP siblings, different routers. One
    // pass over their predecessors: two of them share one when it is met twice. Answered
    // once per set: every host behind one leaf asks about the same set (in a data center
    // that is tens of millions of predecessors visited again).
    let mut answered_sets: FastMap<Vec<u32>, bool> = FastMap::default();
    // Per predecessor, the pass that met it last and which member of the set it came before.
    let mut met: Vec<(u32, u32)> = vec![(0, 0); addr_names.len()];
    let mut pass = 0u32;
    let mut siblings = |set: &[u32]| {
        if let Some(&found) = answered_sets.get(set) {
            return found;
        }
        pass += 1;
        let found = set.iter().enumerate().any(|(i, a)| {
            preds[*a as usize].iter().any(|&p| {
                let m = &mut met[p as usize];
                let shared = m.0 == pass && m.1 != i as u32;
                if m.0 != pass {
                    *m = (pass, i as u32);
                }
                shared
            })
        });
        answered_sets.insert(set.to_vec(), found);
        found
    };
    // Gateway rule: a host's first hops, and the last hops before it unless one source saw
    // several that are ECMP siblings (a server reached over several routers). A router
    // answering toward the source shows one address per source (and those may be siblings);
    // one answering from the arrival interface shows several to one source, not siblings.
    let mut first: FastMap<u32, BTreeSet<u32>> = FastMap::default();
    let mut last: FastMap<u32, BTreeSet<u32>> = FastMap::default();
    let mut last_by_source: FastMap<(u32, u32), u32> = FastMap::default();
    let mut ecmp_before: FastSet<u32> = FastSet::default();
    for r in routes.iter() {
        // [s, ?, d]: a trace that saw nothing, one unknown stretch, not a gateway.
        if r.len() < 3 || (r.len() == 3 && silent(r[1])) {
            continue;
        }
        let (s, d) = (r[0], r[r.len() - 1]);
        let (gs, gd) = (r[1], r[r.len() - 2]);
        if !endpoint[gs as usize] {
            first.entry(s).or_default().insert(gs);
        }
        if !endpoint[gd as usize] {
            last.entry(d).or_default().insert(gd);
            if !silent(gd) && *last_by_source.entry((s, d)).or_insert(gd) != gd {
                ecmp_before.insert(d);
            }
        }
    }
    // Silent hops do not tell siblings: one stands for whichever router did not answer, and
    // shares the address before it with the routers that did.
    let known = |set: &[u32]| -> Vec<u32> { set.iter().copied().filter(|&a| !silent(a)).collect() };
    for (h, gws) in &last {
        let gws: Vec<u32> = gws.iter().copied().collect();
        if ecmp_before.contains(h) && siblings(&known(&gws)) {
            continue;
        }
        for w in gws.windows(2) {
            sets.union(w[0], w[1]);
        }
        if let Some(f) = first.get(h) {
            sets.union(gws[0], *f.iter().next().unwrap());
        }
    }
    for gws in first.values() {
        let gws: Vec<u32> = gws.iter().copied().collect();
        for w in gws.windows(2) {
            sets.union(w[0], w[1]);
        }
    }
    // Arrival rule. A silent hop right before B joins B's other predecessors only where the
    // rule is seen to hold (two or more that are not siblings), or where none answered (a
    // router that never does): one answering address alone may be the interface toward the
    // source, and then the silent hop any router before B.
    for before in &preds {
        if before.len() < 2 || before.iter().any(|&a| endpoint[a as usize]) {
            continue;
        }
        let answered = known(before);
        if answered.len() == 1 || siblings(&answered) {
            continue;
        }
        for w in before.windows(2) {
            sets.union(w[0], w[1]);
        }
    }
    let mut flows_on = vec![0u32; routes.len()];
    for (k, _) in &flows {
        flows_on[k.route as usize] += 1;
    }
    merge_never_answering(&routes, &flows_on, &preds, &silent, &mut sets);
    // Routers: named by their smallest answering address (a silent one only if all are).
    let n = addr_names.len();
    let mut root_of: Vec<u32> = (0..n as u32).map(|a| sets.find(a)).collect();
    let mut rep: FastMap<u32, u32> = FastMap::default();
    for a in 0..n as u32 {
        let e = rep.entry(root_of[a as usize]).or_insert(a);
        if silent(*e) && !silent(a) {
            *e = a;
        }
    }
    let mut router_names: Vec<Box<str>> = Vec::new();
    let mut router_id: FastMap<u32, u32> = FastMap::default();
    let mut roots: Vec<u32> = rep.keys().copied().collect();
    roots.sort_unstable_by(|a, b| addr_names[rep[a] as usize].cmp(&addr_names[rep[b] as usize]));
    for root in roots {
        router_id.insert(root, router_names.len() as u32);
        router_names.push(addr_names[rep[&root] as usize].clone());
    }
    for r in root_of.iter_mut() {
        *r = router_id[r];
    }

    // Routes over routers, their links numbered in the order first crossed.
    let mut table = LinkTable::default();
    // Per route, its routers (its links are their pairs, looked up again when needed).
    let mut router_routes = Seqs::with_capacity(routes.len(), routes.ids().len());
    let mut rs = Vec::new();
    for r in routes.iter() {
        rs.clear();
        rs.push(root_of[r[0] as usize]);
        for &a in &r[1..] {
            let ra = root_of[a as usize];
            if rs.last() == Some(&ra) {
                continue;
            }
            table.id(*rs.last().unwrap(), ra);
            rs.push(ra);
        }
        router_routes.push(&rs);
    }
    drop(routes);
    // Router ids that are route ends (hosts): an answer's path does not cross them.
    let mut host = vec![false; router_names.len()];
    for rs in router_routes.iter() {
        host[rs[0] as usize] = true;
        host[*rs.last().unwrap() as usize] = true;
    }
    // The links seen, from each router, for the answers' ECMP paths.
    let mut next: Vec<Vec<u32>> = vec![Vec::new(); router_names.len()];
    for &(a, b) in &table.links {
        next[a as usize].push(b);
    }
    for n in &mut next {
        n.sort_unstable();
        n.dedup();
    }
    // The address pairs each traced link showed as (those of addresses of two routers),
    // most crossed first.
    let mut shown: Vec<Vec<((u32, u32), u32)>> = vec![Vec::new(); table.links.len()];
    let mut pair_crossings = crossings.iter();
    for (a, before) in preds.iter().enumerate() {
        let ra = root_of[a];
        for (&p, &n) in before.iter().zip(&mut pair_crossings) {
            let rp = root_of[p as usize];
            if rp != ra {
                let l = table.get(rp, ra).expect("a crossed link");
                shown[l as usize].push(((p, a as u32), n));
            }
        }
    }
    drop((preds, crossings));
    let mut covers: Vec<Vec<(u32, u32)>> = shown
        .into_iter()
        .map(|mut v| {
            v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.into_iter().map(|(p, _)| p).collect()
        })
        .collect();
    let left_out: Vec<bool> = (0..router_names.len())
        .map(|r| host[r] || router_names[r].starts_with('?'))
        .collect();
    let next = with_siblings_links(&next, &router_routes, &left_out);
    let mut choices = Choices::default();
    let obs = observations(
        &router_routes,
        &next,
        &host,
        &flows,
        &mut table,
        &mut choices,
    );
    // Routes and flows live on in the observations: their memory goes back before the
    // groups are built, the peak of building.
    drop((router_routes, flows, next));
    // Links only answers cross (added by the observations) showed as no address pair.
    covers.resize(table.links.len(), Vec::new());
    let unknowns = unknowns(table.links.len());
    let mut p = Problem::assemble(
        router_names,
        table.links,
        covers,
        addr_names,
        unknowns,
        choices.alts,
        obs,
    );
    p.endpoints = host;
    p
}

/// The indexes of `seqs` in their sorted order. Sorted first by their first three ids at
/// once (a route's source, gateway and next router mostly set it apart), then each run of
/// equal ones by the whole sequence: most comparisons are then of one number, not of two
/// sequences fetched from all over the list.
fn sorted_order(seqs: &Seqs) -> Vec<u32> {
    // Shorter sequences are padded with the smallest id: the key never orders two
    // sequences against their order, only ties some.
    let key = |s: &[u32]| {
        let at = |i: usize| u128::from(s.get(i).copied().unwrap_or(0));
        (at(0) << 64) | (at(1) << 32) | at(2)
    };
    let mut keyed: Vec<(u128, u32)> = (0..seqs.len() as u32)
        .map(|i| (key(seqs.get(i as usize)), i))
        .collect();
    keyed.sort_unstable();
    let mut order: Vec<u32> = keyed.iter().map(|&(_, i)| i).collect();
    let mut from = 0;
    for run in keyed.chunk_by(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            order[from..from + run.len()]
                .sort_unstable_by(|&a, &b| seqs.get(a as usize).cmp(seqs.get(b as usize)));
        }
        from += run.len();
    }
    order
}

/// `flows` sorted by key: placed by route (one move each of the flows, 56 bytes, which a
/// sort of them all moved many times), then each route's few sorted among themselves.
fn sorted_by_route(flows: Vec<(FlowKey, RouteStats)>, routes: usize) -> Vec<(FlowKey, RouteStats)> {
    let by_route = Seqs::grouped(routes, || flows.iter().map(|f| f.0.route).zip(0..));
    let mut sorted: Vec<(FlowKey, RouteStats)> =
        by_route.ids().iter().map(|&i| flows[i as usize]).collect();
    drop(flows);
    let mut at = 0;
    for of_route in by_route.iter().map(<[u32]>::len) {
        if of_route > 1 {
            sorted[at..at + of_route].sort_unstable_by_key(|f| f.0);
        }
        at += of_route;
    }
    sorted
}

/// Flows that must have reached an address through silent hops only before the router
/// before it is taken for one that never answers: with hops silent at random (rate limits)
/// 10 % of the time, three flows all meet silence there once in a thousand.
const NEVER_ANSWERED_FLOWS: u32 = 3;

/// A router that never answers traces shows as one silent stretch per address after it (the
/// arrival rule joins the stretches before one address, nothing joins those before two). Such
/// stretches (silent routers every address after which was reached through silent hops only,
/// by [`NEVER_ANSWERED_FLOWS`] flows or more) that follow one router R are taken for one
/// router when toward each router after them there is exactly one of them: the one member of
/// R's ECMP group that never answers, as a spine that never answers is to every leaf. With
/// two such members the stretches stay apart, since nothing tells which is which.
fn merge_never_answering(
    routes: &Seqs,
    flows_on: &[u32],
    preds: &[Vec<u32>],
    silent: &dyn Fn(u32) -> bool,
    sets: &mut Sets,
) {
    let n = preds.len();
    // Routers with an answering address.
    let mut answers = vec![false; n];
    for a in 0..n as u32 {
        if !silent(a) {
            let root = sets.find(a);
            answers[root as usize] = true;
        }
    }
    // Flows that reached each address right after a silent hop.
    let mut after_silent = vec![0u32; n];
    for (r, &f) in routes.iter().zip(flows_on) {
        for w in r.windows(2) {
            if silent(w[0]) {
                after_silent[w[1] as usize] += f;
            }
        }
    }
    // Silent routers that share an address after them with an answering one, or before an
    // address too few flows reached: they may be a router that answered other probes (a
    // rate-limited one).
    let mut beside_answering = vec![false; n];
    for (b, before) in preds.iter().enumerate() {
        if before.iter().any(|&a| !silent(a)) || after_silent[b] < NEVER_ANSWERED_FLOWS {
            for &a in before.iter().filter(|&&a| silent(a)) {
                let root = sets.find(a);
                beside_answering[root as usize] = true;
            }
        }
    }
    // (router before, router after) -> the never-answering stretches between them.
    let mut between: FastMap<(u32, u32), Vec<u32>> = FastMap::default();
    for r in routes.iter() {
        for w in r.windows(3) {
            let (p, z, q) = (sets.find(w[0]), sets.find(w[1]), sets.find(w[2]));
            if answers[z as usize] || beside_answering[z as usize] {
                continue;
            }
            if !answers[p as usize] || !answers[q as usize] {
                continue;
            }
            let e = between.entry((p, q)).or_default();
            if !e.contains(&z) {
                e.push(z);
            }
        }
    }
    let mut by_before: FastMap<u32, (bool, Vec<u32>)> = FastMap::default();
    for ((p, _), zs) in between {
        let e = by_before.entry(p).or_insert((true, Vec::new()));
        e.0 &= zs.len() == 1;
        e.1.extend(zs);
    }
    for (one_each, zs) in by_before.into_values() {
        if one_each {
            for w in zs.windows(2) {
                sets.union(w[0], w[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lcorrelate::estimate::Params;
    use crate::lcorrelate::input::Aliases;
    use crate::lcorrelate::report::{rank, score, Method};
    use crate::record::{LinkScore, Verdict};

    /// The issue's lab: leaves 1-3 with one host each (10.L.1.1 behind 10.L.1.254), spines
    /// 1-2; leaf L's interface toward spine S is 10.0.LS.1, the spine's toward it 10.0.LS.2.
    /// `arrival`: routers answer from the interface the probe came in on; else from the one
    /// toward the source (the spine toward the source's leaf, a leaf toward spine 1).
    fn hop_addrs(a: u8, b: u8, spine: u8, arrival: bool) -> Vec<String> {
        let far_leaf = if arrival {
            format!("10.0.{b}{spine}.1")
        } else {
            format!("10.0.{b}1.1")
        };
        vec![
            format!("10.{a}.1.254"),
            format!("10.0.{a}{spine}.2"),
            far_leaf,
            format!("10.{b}.1.1"),
        ]
    }

    /// `lossy(a, b, spine_out, spine_back)`: probes (fwd) and answers (rev) lost per flow.
    /// Every host probes every other over 16 flows, half over each spine, the answers coming
    /// back over spine 1 for flows 0-3 and 8-11, spine 2 for the others.
    fn lines(
        arrival: bool,
        split: bool,
        lossy: &dyn Fn(u8, u8, u8, u8) -> (u64, u64),
    ) -> Vec<String> {
        lines_with(arrival, split, false, 0, lossy)
    }

    /// `symmetric`: the answers come back over the spine their probes took (Linux hashes
    /// both directions of a flow alike); `silent_spine`: that spine never answers (0: all
    /// answer).
    fn lines_with(
        arrival: bool,
        split: bool,
        symmetric: bool,
        silent_spine: u8,
        lossy: &dyn Fn(u8, u8, u8, u8) -> (u64, u64),
    ) -> Vec<String> {
        let mut out = Vec::new();
        for a in 1..=3u8 {
            for b in (1..=3u8).filter(|&b| b != a) {
                for f in 0..16u16 {
                    let spine = 1 + (f % 2) as u8;
                    let back = if symmetric {
                        spine
                    } else if (f / 4) % 2 == 0 {
                        1
                    } else {
                        2
                    };
                    let (fwd, rev) = lossy(a, b, spine, back);
                    let hops: Vec<String> = hop_addrs(a, b, spine, arrival)
                        .iter()
                        .enumerate()
                        .map(|(i, h)| match i == 1 && spine == silent_spine {
                            true => format!(r#"{{"ttl":{}}}"#, i + 1),
                            false => format!(r#"{{"ttl":{},"addr":"{h}"}}"#, i + 1),
                        })
                        .collect();
                    let counts = if split {
                        format!(
                            r#""sent":200,"lost":{},"lost_fwd":{fwd},"lost_rev":{rev}"#,
                            fwd + rev
                        )
                    } else {
                        format!(r#""sent":200,"lost":{}"#, fwd + rev)
                    };
                    out.push(format!(
                        r#"{{"type":"path","tool":"ludp","src":"10.{a}.1.1","dst":"10.{b}.1.1","proto":"udp","sport":{},"dport":8081,"hops":[{}],"reached":true,{counts}}}"#,
                        40000 + f,
                        hops.join(",")
                    ));
                }
            }
        }
        out
    }

    fn correlate(lines: &[String]) -> (Problem, Vec<LinkScore>) {
        let mut agg = Aggregator::new(Aliases::new());
        for l in lines {
            agg.add_line(l.as_bytes()).unwrap();
        }
        let p = infer(agg);
        let params = Params::default();
        let s = score(&p, Method::Flock, &params);
        let r = rank(&p, &s, &params);
        (p, r)
    }

    fn members(l: &LinkScore) -> Vec<(String, String)> {
        match &l.group {
            Some(g) => g.iter().map(|e| (e.from.clone(), e.to.clone())).collect(),
            None => vec![(l.from.clone(), l.to.clone())],
        }
    }

    fn faulty(r: &[LinkScore]) -> Vec<&LinkScore> {
        r.iter().filter(|l| l.verdict == Verdict::Faulty).collect()
    }

    #[test]
    fn arrival_addresses_make_one_router_and_one_link_each() {
        let (p, _) = correlate(&lines(true, false, &|_, _, _, _| (0, 0)));
        // 3 hosts, 3 leaves, 2 spines.
        assert_eq!(p.names.len(), 8, "{:?}", p.names);
        // Traced: 3 uplinks, 6 leaf>spine, 6 spine>leaf, 3 downlinks.
        assert_eq!(p.links.len(), 18, "{:?}", p.links);
        // Spine 1 into leaf 2 is one link, named by leaf 2's arrival address, covering the
        // spine's addresses toward leaves 1 and 3.
        let l = (0..p.links.len() as u32)
            .find(|&l| p.link_name(l).1 == "10.0.21.1")
            .unwrap();
        let mut covers: Vec<&str> = p.covers[l as usize]
            .iter()
            .map(|&(a, _)| &*p.addr_names[a as usize])
            .collect();
        covers.sort_unstable();
        assert_eq!(covers, ["10.0.11.2", "10.0.31.2"]);
    }

    #[test]
    fn addresses_toward_the_source_are_not_taken_for_arrival_ones() {
        // Leaf 2 answers 10.0.21.1 after either spine: the spines are not one router.
        let (p, _) = correlate(&lines(false, false, &|_, _, _, _| (0, 0)));
        let spines: Vec<&str> = p
            .names
            .iter()
            .map(|n| &**n)
            .filter(|n| n.ends_with(".2") && n.starts_with("10.0."))
            .collect();
        assert!(spines.len() >= 2, "{:?}", p.names);
        assert!(p.names.iter().any(|n| &**n == "10.0.12.2"), "{:?}", p.names);
    }

    #[test]
    fn loss_on_a_spine_to_leaf_link_is_named_there_alone() {
        // 8 % on spine 1 -> leaf 2, probes and answers alike.
        let hit = |fwd: bool, rev: bool| (u64::from(fwd) * 16, u64::from(rev) * 16);
        for arrival in [true, false] {
            for split in [false, true] {
                let (_, r) = correlate(&lines(arrival, split, &|a, b, out, back| {
                    hit(b == 2 && out == 1, a == 2 && back == 1)
                }));
                let f = faulty(&r);
                assert_eq!(f.len(), 1, "arrival {arrival} split {split}: {r:#?}");
                assert!(
                    members(f[0])
                        .iter()
                        .any(|(_, to)| to.starts_with("10.0.2") && to.ends_with(".1")),
                    "arrival {arrival} split {split}: {:?}",
                    f[0]
                );
                assert_eq!(r[0].verdict, Verdict::Faulty);
            }
        }
    }

    #[test]
    fn loss_on_the_answers_only_is_placed_on_their_link() {
        // The issue's second lab: only answers crossing spine 1 -> leaf 2 are lost (the
        // flows of host 2 whose answers came back over spine 1); no traced probe was.
        for split in [true, false] {
            let (_, r) = correlate(&lines(true, split, &|a, _, _, back| {
                (0, if a == 2 && back == 1 { 16 } else { 0 })
            }));
            let f = faulty(&r);
            assert_eq!(f.len(), 1, "split {split}: {r:#?}");
            assert!(
                members(f[0]).contains(&("10.0.11.2".into(), "10.0.21.1".into()))
                    || members(f[0]).iter().any(|(_, to)| to == "10.0.21.1"),
                "split {split}: {:?}",
                f[0]
            );
        }
    }

    #[test]
    fn answers_retracing_their_probes_make_a_links_directions_twins() {
        // 8 % on spine 1 -> leaf 2, the answers over the probes' spine: every lossy flow
        // crossed leaf 2 -> spine 1 one way or spine 1 -> leaf 2 the other, so both
        // directions are named, in one record.
        let (_, r) = correlate(&lines_with(true, false, true, 0, &|a, b, out, _| {
            let hit = out == 1 && (a == 2 || b == 2);
            (if hit { 16 } else { 0 }, 0)
        }));
        let f = faulty(&r);
        assert_eq!(f.len(), 1, "{r:#?}");
        let m = members(f[0]);
        assert!(m.iter().any(|(_, to)| to == "10.0.21.1"), "{m:?}");
        assert!(m.iter().any(|(from, _)| from == "10.2.1.254"), "{m:?}");
    }

    #[test]
    fn a_spine_that_never_answers_is_one_router() {
        // Spine 2 never answers; 8 % on leaf 1 -> spine 2, probes and answers alike. Its
        // stretch before leaf 2 and its stretch before leaf 3 are one router: one record.
        let (p, r) = correlate(&lines_with(true, false, false, 2, &|a, b, out, back| {
            (
                if a == 1 && out == 2 { 16 } else { 0 },
                if b == 1 && back == 2 { 16 } else { 0 },
            )
        }));
        let silent_routers = p.names.iter().filter(|n| n.starts_with('?')).count();
        assert_eq!(silent_routers, 1, "{:?}", p.names);
        let f = faulty(&r);
        assert_eq!(f.len(), 1, "{r:#?}");
        assert!(
            members(f[0])
                .iter()
                .any(|(from, to)| from == "10.1.1.254" && to.starts_with('?')),
            "{:?}",
            f[0]
        );
        assert_eq!(r[0].verdict, Verdict::Faulty);
    }

    #[test]
    fn round_trips_cannot_tell_a_host_links_directions_apart() {
        // 5 % on host 3's uplink: every flow from and to host 3 loses, probes or answers.
        let (_, r) = correlate(&lines(true, false, &|a, b, _, _| {
            (if a == 3 { 10 } else { 0 }, if b == 3 { 10 } else { 0 })
        }));
        let f = faulty(&r);
        assert_eq!(f.len(), 1, "{r:#?}");
        let m = members(f[0]);
        assert!(
            m.contains(&("10.3.1.1".into(), "10.3.1.254".into())),
            "{m:?}"
        );
        // With the split counts the uplink stands alone.
        let (_, r) = correlate(&lines(true, true, &|a, b, _, _| {
            (if a == 3 { 10 } else { 0 }, if b == 3 { 10 } else { 0 })
        }));
        let f = faulty(&r);
        assert_eq!(f.len(), 1, "{r:#?}");
        assert_eq!(
            members(f[0]),
            [("10.3.1.1".to_string(), "10.3.1.254".to_string())]
        );
    }
}
