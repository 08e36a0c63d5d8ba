//! The link graph: links from routes, and groups of links no measurement can tell apart.
//!
//! A link is a directed pair of consecutive nodes on a route. Links crossed by exactly the
//! same measured routes are one group: any loss split between them fits the data equally
//! well, so the estimators score groups, and the output names every member.

use super::input::Aggregator;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;

/// One route with its links (as group ids) and what it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub groups: Vec<u32>,
    pub sent: u64,
    pub lost: u64,
}

/// Links that always appear together.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Link ids, in the order a route crosses them.
    pub links: Vec<u32>,
    /// Ids of the measured routes through the group.
    pub routes: Vec<u32>,
    pub sent: u64,
    pub lost: u64,
}

/// What the estimators work on, and the names to report with.
#[derive(Debug, Clone)]
pub struct Problem {
    pub names: Vec<Box<str>>,
    /// Link id to (from, to) node ids.
    pub links: Vec<(u32, u32)>,
    pub groups: Vec<Group>,
    /// Measured routes only (sent > 0).
    pub routes: Vec<Route>,
    /// Routes that carried no probes (topology only): their links are drawn, not scored.
    pub unmeasured_links: Vec<u32>,
    /// The link graph, node weights are node ids; edge weights link ids.
    pub graph: DiGraph<u32, u32>,
}

impl Problem {
    pub fn from_aggregator(agg: &Aggregator) -> Problem {
        // Node ids by name and routes sorted, so the result depends on neither the order
        // of the input nor hash order: pre-aggregated input gives the very same answer.
        let names = agg.names();
        let mut by_name: Vec<u32> = (0..names.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        let mut new_id = vec![0u32; names.len()];
        for (new, &old) in by_name.iter().enumerate() {
            new_id[old as usize] = new as u32;
        }
        let routes: Vec<(Vec<u32>, u64, u64)> = agg
            .routes()
            .map(|(r, s)| {
                (
                    r.iter().map(|&n| new_id[n as usize]).collect(),
                    s.sent,
                    s.lost,
                )
            })
            .collect();
        let sorted_names: Vec<Box<str>> =
            by_name.iter().map(|&i| names[i as usize].clone()).collect();
        let routes = fill_silent_hops(&sorted_names, routes);
        Problem::build(
            sorted_names,
            routes.iter().map(|(r, s, l)| (&r[..], *s, *l)).collect(),
        )
    }

    /// Routes as node sequences with their sent and lost counts.
    pub fn build(names: Vec<Box<str>>, raw: Vec<(&[u32], u64, u64)>) -> Problem {
        let mut graph = DiGraph::new();
        let mut node_index: HashMap<u32, NodeIndex> = HashMap::new();
        let mut link_ids: HashMap<(u32, u32), u32> = HashMap::new();
        let mut links = Vec::new();
        // Per measured route, its distinct link ids in path order.
        let mut route_links: Vec<(Vec<u32>, u64, u64)> = Vec::new();
        let mut measured = Vec::new();
        for (nodes, sent, lost) in raw {
            let mut ls: Vec<u32> = Vec::with_capacity(nodes.len());
            for w in nodes.windows(2) {
                let key = (w[0], w[1]);
                let id = *link_ids.entry(key).or_insert_with(|| {
                    let a = *node_index
                        .entry(w[0])
                        .or_insert_with(|| graph.add_node(w[0]));
                    let b = *node_index
                        .entry(w[1])
                        .or_insert_with(|| graph.add_node(w[1]));
                    graph.add_edge(a, b, links.len() as u32);
                    links.push(key);
                    links.len() as u32 - 1
                });
                // A loop crosses a link twice; it still has one chance to drop the packet.
                if !ls.contains(&id) {
                    ls.push(id);
                }
            }
            if sent > 0 {
                for &l in &ls {
                    measured.push(l);
                }
                route_links.push((ls, sent, lost));
            }
        }
        // Routes through each link, in route order: the signature that forms groups.
        let mut through: Vec<Vec<u32>> = vec![Vec::new(); links.len()];
        for (ri, (ls, _, _)) in route_links.iter().enumerate() {
            for &l in ls {
                through[l as usize].push(ri as u32);
            }
        }
        let mut group_of_sig: HashMap<&[u32], u32> = HashMap::new();
        let mut group_of_link: Vec<Option<u32>> = vec![None; links.len()];
        let mut groups: Vec<Group> = Vec::new();
        // Visit links in route order so that group members come out in path order.
        for (ls, _, _) in &route_links {
            for &l in ls {
                if group_of_link[l as usize].is_some() {
                    continue;
                }
                let sig = &through[l as usize][..];
                let g = *group_of_sig.entry(sig).or_insert_with(|| {
                    groups.push(Group {
                        links: Vec::new(),
                        routes: sig.to_vec(),
                        sent: 0,
                        lost: 0,
                    });
                    groups.len() as u32 - 1
                });
                groups[g as usize].links.push(l);
                group_of_link[l as usize] = Some(g);
            }
        }
        let routes: Vec<Route> = route_links
            .iter()
            .map(|(ls, sent, lost)| {
                let mut gs: Vec<u32> = ls
                    .iter()
                    .filter_map(|&l| group_of_link[l as usize])
                    .collect();
                gs.dedup();
                gs.sort_unstable();
                gs.dedup();
                Route {
                    groups: gs,
                    sent: *sent,
                    lost: *lost,
                }
            })
            .collect();
        for g in &mut groups {
            for &r in &g.routes {
                g.sent += routes[r as usize].sent;
                g.lost += routes[r as usize].lost;
            }
        }
        let unmeasured_links = (0..links.len() as u32)
            .filter(|&l| group_of_link[l as usize].is_none())
            .collect();
        Problem {
            names,
            links,
            groups,
            routes,
            unmeasured_links,
            graph,
        }
    }

    pub fn link_name(&self, l: u32) -> (&str, &str) {
        let (a, b) = self.links[l as usize];
        (&self.names[a as usize], &self.names[b as usize])
    }
}

/// A silent hop (a `?` node) between two known nodes A and B is the node X when every route
/// that shows something between A and B shows that same X there: the trace only lost the
/// probes of one TTL. Left silent when no route, or routes with different nodes (ECMP), show
/// the stretch. Without this, a route through a silent hop is a different route, and it alone
/// tells apart links that otherwise always go together, so the model may split its loss
/// between the wrong one of them and the silent stretch. Routes that become the same merge.
/// Returns the routes sorted.
fn fill_silent_hops(
    names: &[Box<str>],
    mut routes: Vec<(Vec<u32>, u64, u64)>,
) -> Vec<(Vec<u32>, u64, u64)> {
    let silent = |n: u32| names[n as usize].starts_with('?');
    if routes.iter().all(|(r, _, _)| !r.iter().any(|&n| silent(n))) {
        routes.sort_unstable();
        return routes;
    }
    // (A, B) -> the one known node seen between them, or None when several were.
    let mut between: HashMap<(u32, u32), Option<u32>> = HashMap::new();
    for (r, _, _) in &routes {
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
    for (r, _, _) in &mut routes {
        for i in 1..r.len().saturating_sub(1) {
            if silent(r[i]) && !silent(r[i - 1]) && !silent(r[i + 1]) {
                if let Some(&Some(x)) = between.get(&(r[i - 1], r[i + 1])) {
                    r[i] = x;
                }
            }
        }
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
