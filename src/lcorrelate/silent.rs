//! Silent hops filled from the same flow's other traces.
//!
//! A flow (source, destination, protocol and ports) takes one path while the routes do not
//! change: ECMP hashes its 5-tuple, and lopa's traces keep it (Paris-style). So when one trace
//! of a flow got no answer at some TTL (an ICMP rate limit) and another trace of the same flow
//! saw that hop, the silent hop is that router, as long as the two traces agree at every TTL
//! both saw. Without this, each trace with a silent hop would be a route of its own through a
//! stretch no other flow crosses, and that stretch would take the flow's loss.
//! (The fill from other flows, where only one router is ever seen between two known ones, is
//! [`super::graph::fill_in_place`].)

use super::input::FlowKey;
use super::seqs::Seqs;

/// Fills, per flow, the silent hops of its routes from its other routes. `routes`: node
/// sequences (source first, destination last); `silent`: whether a node is a silent hop;
/// `flows`: the flows and the route each took. Filled routes are appended to `routes`;
/// returns each flow's route index (the filled one where something was filled).
pub fn fill_from_same_flow(
    routes: &mut Seqs,
    silent: &dyn Fn(u32) -> bool,
    flows: &[FlowKey],
) -> Vec<u32> {
    let mut route_of: Vec<u32> = flows.iter().map(|k| k.route).collect();
    let has_silent: Vec<bool> = routes
        .iter()
        .map(|r| r.iter().any(|&n| silent(n)))
        .collect();
    if !has_silent.iter().any(|&s| s) {
        return route_of;
    }
    // The flows, grouped by identity: source, destination, protocol and ports.
    let identity = |i: usize| {
        let r = routes.get(flows[i].route as usize);
        (r[0], r[r.len() - 1], flows[i].flow)
    };
    let mut order: Vec<usize> = (0..flows.len()).collect();
    order.sort_unstable_by_key(|&i| (identity(i), flows[i].route));
    let mut filled: Vec<Vec<u32>> = Vec::new();
    let mut at = 0;
    while at < order.len() {
        let id = identity(order[at]);
        let end = at
            + order[at..]
                .iter()
                .take_while(|&&i| identity(i) == id)
                .count();
        let group = &order[at..end];
        at = end;
        if group.len() < 2 || !group.iter().any(|&i| has_silent[flows[i].route as usize]) {
            continue;
        }
        for &i in group {
            let r = flows[i].route as usize;
            if !has_silent[r] {
                continue;
            }
            let others = group.iter().map(|&j| routes.get(flows[j].route as usize));
            if let Some(seq) = fill_one(routes.get(r), others, silent) {
                route_of[i] = (routes.len() + filled.len()) as u32;
                filled.push(seq);
            }
        }
    }
    for seq in &filled {
        routes.push(seq);
    }
    route_of
}

/// `route` with each silent hop replaced by the node the `others` that agree with it saw
/// there, when they all saw the same one; None when nothing could be filled.
fn fill_one<'a>(
    route: &[u32],
    others: impl Iterator<Item = &'a [u32]>,
    silent: &dyn Fn(u32) -> bool,
) -> Option<Vec<u32>> {
    // Traces of the same path: as long, and equal wherever both saw a router.
    let agrees = |o: &[u32]| {
        o.len() == route.len()
            && o.iter()
                .zip(route)
                .all(|(&a, &b)| a == b || silent(a) || silent(b))
    };
    let same: Vec<&[u32]> = others.filter(|o| agrees(o)).collect();
    let mut out = route.to_vec();
    let mut changed = false;
    for (i, n) in out.iter_mut().enumerate() {
        if !silent(*n) {
            continue;
        }
        let mut seen = same.iter().map(|o| o[i]).filter(|&x| !silent(x));
        if let Some(x) = seen.next() {
            if seen.all(|y| y == x) {
                *n = x;
                changed = true;
            }
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node 9 and up are silent hops.
    fn silent(n: u32) -> bool {
        n >= 9
    }

    fn key(route: u32, flow: u64) -> FlowKey {
        FlowKey { route, flow }
    }

    fn seqs(lists: &[&[u32]]) -> Seqs {
        let mut s = Seqs::default();
        for l in lists {
            s.push(l);
        }
        s
    }

    #[test]
    fn a_flows_silent_hop_is_the_router_its_other_traces_saw() {
        // Flow 1: 0 1 2 3 4 once, 0 1 ? 3 4 once; flow 2 (other ports) 0 1 ? 3 4 alone
        // stays, though flow 1 went over 2 there: ECMP may send flow 2 elsewhere.
        let mut routes = seqs(&[&[0, 1, 2, 3, 4], &[0, 1, 9, 3, 4]]);
        let flows = [key(0, 1), key(1, 1), key(1, 2)];
        let of = fill_from_same_flow(&mut routes, &silent, &flows);
        assert_eq!(of[0], 0);
        assert_eq!(routes.get(of[1] as usize), [0, 1, 2, 3, 4]);
        assert_eq!(of[2], 1);
    }

    #[test]
    fn traces_that_disagree_fill_nothing() {
        // The route changed between the traces (5 instead of 1 at the first hop), and two
        // other traces saw different routers at the silent TTL: nothing is filled.
        let mut routes = seqs(&[
            &[0, 5, 2, 3, 4],
            &[0, 1, 9, 3, 4],
            &[0, 1, 2, 10, 4],
            &[0, 1, 6, 10, 4],
        ]);
        let flows = [key(0, 1), key(1, 1), key(2, 3), key(3, 3)];
        let before: Vec<Vec<u32>> = routes.iter().map(<[u32]>::to_vec).collect();
        let of = fill_from_same_flow(&mut routes, &silent, &flows);
        assert_eq!(of, [0, 1, 2, 3]);
        assert_eq!(routes.iter().collect::<Vec<_>>(), before);
    }

    #[test]
    fn several_traces_fill_different_hops_of_one() {
        // Two traces, each silent at a different TTL, fill each other.
        let mut routes = seqs(&[&[0, 9, 2, 3, 4], &[0, 1, 2, 10, 4]]);
        let flows = [key(0, 7), key(1, 7)];
        let of = fill_from_same_flow(&mut routes, &silent, &flows);
        assert_eq!(routes.get(of[0] as usize), [0, 1, 2, 3, 4]);
        assert_eq!(routes.get(of[1] as usize), [0, 1, 2, 3, 4]);
    }
}
