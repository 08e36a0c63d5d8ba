//! Routes in lwatch's state: where each sits (its [`Place`]), what a route notification or a
//! re-read changes there, and the records that say so (`add`, `replace`, `del`, `flushed`).
#![forbid(unsafe_code)]

use super::state::{place, Place, State};
use crate::netlink::rt::{Route, AF_INET, NLM_F_APPEND, NLM_F_REPLACE};
use crate::record::Body;
use std::collections::BTreeMap;

/// Whether `a` and `b` are one route to the kernel (one replaces the other in its place).
/// IPv4 refuses an exact duplicate, so a route is all its contents; IPv6 tells the routes of
/// a place apart by device and gateway, and holds at most one multipath route there (every
/// gateway route of a place is a sibling of the others).
fn same_route(a: &Route, b: &Route) -> bool {
    if a.family == AF_INET {
        return a == b;
    }
    // Routes on nexthop objects are never siblings: one per object.
    if a.nhid.is_some() || b.nhid.is_some() {
        return a.nhid == b.nhid;
    }
    match (a.nexthops.is_empty(), b.nexthops.is_empty()) {
        (true, true) => a.index == b.index && a.gateway == b.gateway,
        (false, false) => true,
        _ => false,
    }
}

/// Whether the kernel may make the route an ECMP sibling of another (it has a gateway).
fn ecmp(r: &Route) -> bool {
    r.gateway.is_some() || !r.nexthops.is_empty()
}

impl State {
    /// A route of a dump, after those before it.
    pub fn push_dumped(&mut self, mut r: Route) {
        self.prepare(&mut r);
        let key = place(&r);
        if let Some(id) = r.nhid {
            self.on_object.entry(id).or_default().insert(key);
        }
        self.routes.entry(key).or_default().push(r);
    }

    /// The records that turn the routes `before` of place `key` into its routes now (see
    /// [`State::diff_shown`]).
    fn diff_place(&self, key: &Place, before: &[Route], hint: Option<&Route>, out: &mut Vec<Body>) {
        let now = self.routes.get(key).map(Vec::as_slice).unwrap_or_default();
        self.diff_shown(&visible(before), &visible(now), hint, out);
    }

    /// The records that turn what records showed of a place (`was`, one route per path, see
    /// [`visible`]) into what they show now (`is`). A path that came where one went is a
    /// `replace` of it; so is a path whose route changed (its protocol, say); `hint`, the
    /// route of a replace notification, replaces the path that went even when it was already
    /// there.
    pub fn diff_shown(
        &self,
        was: &[&Route],
        is: &[&Route],
        hint: Option<&Route>,
        out: &mut Vec<Body>,
    ) {
        self.diff_paths(was, is, hint, false, out);
    }

    /// [`State::diff_shown`]; `pair`: every path that came where paths went is a `replace`
    /// of one of them, in order (a re-read after lost notifications: the place changed by
    /// what it cannot tell, and routes added or replaced there are no `del`).
    pub(super) fn diff_paths(
        &self,
        was: &[&Route],
        is: &[&Route],
        hint: Option<&Route>,
        pair: bool,
        out: &mut Vec<Body>,
    ) {
        let mut gone: Vec<&Route> = was
            .iter()
            .filter(|o| !is.iter().any(|n| same_path(o, n)))
            .copied()
            .collect();
        let mut came: Vec<&Route> = is
            .iter()
            .filter(|n| !was.iter().any(|o| same_path(o, n)))
            .copied()
            .collect();
        for n in is {
            if let Some(o) = was.iter().find(|o| same_path(o, n) && *o != n) {
                out.push(self.replace_body(n, o));
            }
        }
        if came.is_empty() && !gone.is_empty() {
            came.extend(hint.filter(|r| is.contains(r)));
        }
        if pair {
            let n = came.len().min(gone.len());
            for (r, old) in came.drain(..n).zip(gone.drain(..n)) {
                out.push(self.replace_body(r, old));
            }
        } else if let ([r], [old, ..]) = (&came[..], &gone[..]) {
            out.push(self.replace_body(r, old));
            gone.remove(0);
            came.clear();
        }
        for r in gone {
            out.push(self.route_body("del", r));
        }
        for r in came {
            out.push(self.route_body("add", r));
        }
    }

    /// An `RTM_NEWROUTE` with the `nlmsg_flags` of its notification. The records are what
    /// changed in the place (see [`State::diff_place`]): `add`, `replace`, or nothing for a
    /// route lwatch already has.
    ///
    /// IPv4 (`fib_table_insert`): with `NLM_F_REPLACE` the route takes the place of the first
    /// route of its place; otherwise it is one more route there, last with `NLM_F_APPEND`
    /// (`ip route append`), else first (`ip route prepend`, or a place of its own). The kernel
    /// refuses an exact duplicate, so a route lwatch already has is no change; should a
    /// replace bring a route lwatch has after others, those came after it (a read that was
    /// ahead of the notifications): they go, and their own notifications bring them back.
    ///
    /// IPv6 (`fib6_add_rt2node`): with `NLM_F_REPLACE` the route takes the place of the first
    /// route of its place that is as ECMP-able as it (both with or both without a gateway),
    /// else of the first (a multipath route counts as one, as its siblings go with it); a
    /// multipath route (`ip -6 route append` of a gateway route, `add` of several nexthops)
    /// arrives whole and takes in the single routes that are now its paths and the multipath
    /// route it grew from; a route of a device and gateway already there is an update of it;
    /// any other is one more route of the place, last.
    pub fn new_route_flagged(&mut self, mut r: Route, flags: u16, out: &mut Vec<Body>) {
        // A route on an object lwatch no longer has went with it (the kernel refuses a route
        // on an object it does not have): a notification that comes after a read that was
        // ahead by the object's silent flush.
        if r.nhid.is_some_and(|id| !self.nexthops.contains_key(&id)) {
            return;
        }
        self.prepare(&mut r);
        let key = place(&r);
        let replace = flags & NLM_F_REPLACE != 0;
        // IPv4: a route lwatch has, first of its place for a replace, is no change (the
        // kernel's notice of a route an object's change already replaced here).
        if r.family == AF_INET {
            let at = self
                .routes
                .get(&key)
                .and_then(|l| l.iter().position(|x| *x == r));
            if at.is_some_and(|at| at == 0 || !replace) {
                return;
            }
        }
        let list = self.routes.entry(key).or_default();
        let before = list.clone();
        if r.family == AF_INET {
            match list.iter().position(|x| *x == r) {
                Some(at) if replace => {
                    list.drain(..at);
                }
                Some(_) => {}
                None if replace && !list.is_empty() => list[0] = r.clone(),
                None if flags & NLM_F_APPEND != 0 => list.push(r.clone()),
                None => list.insert(0, r.clone()),
            }
        } else {
            let taken: Vec<usize> = if replace {
                list.iter()
                    .position(|x| ecmp(x) == ecmp(&r))
                    .or((!list.is_empty()).then_some(0))
                    .into_iter()
                    .collect()
            } else if !r.nexthops.is_empty() && r.nhid.is_none() {
                // Routes on nexthop objects are never ECMP siblings of others.
                (0..list.len())
                    .filter(|&i| {
                        let x = &list[i];
                        x.nhid.is_none()
                            && (!x.nexthops.is_empty()
                                || (ecmp(x)
                                    && r.nexthops
                                        .iter()
                                        .any(|n| n.gateway == x.gateway && n.index == x.index)))
                    })
                    .collect()
            } else {
                list.iter()
                    .position(|x| same_route(x, &r))
                    .into_iter()
                    .collect()
            };
            match taken.first() {
                Some(&at) => {
                    for &i in taken.iter().rev() {
                        list.remove(i);
                    }
                    list.insert(at, r.clone());
                }
                None => list.push(r.clone()),
            }
        }
        self.settle(&key, &before, replace.then_some(&r), out);
    }

    /// Writes what changed in place `key` and forgets it when it is empty.
    pub(super) fn settle(
        &mut self,
        key: &Place,
        before: &[Route],
        hint: Option<&Route>,
        out: &mut Vec<Body>,
    ) {
        self.diff_place(key, before, hint, out);
        if self.routes.get(key).is_some_and(Vec::is_empty) {
            self.routes.remove(key);
        }
        // The index, where the objects the place's routes are on changed (most changes of a
        // route on an object leave it on that object).
        let was: Vec<u32> = before.iter().filter_map(|r| r.nhid).collect();
        let now: Vec<u32> = self
            .routes
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|r| r.nhid)
            .collect();
        if was == now {
            return;
        }
        for id in was {
            if let Some(places) = self.on_object.get_mut(&id) {
                places.remove(key);
                if places.is_empty() {
                    self.on_object.remove(&id);
                }
            }
        }
        for id in now {
            self.on_object.entry(id).or_default().insert(*key);
        }
    }

    /// An `RTM_DELROUTE`: the route it names goes. For IPv6 it may name one path of a
    /// multipath route (`ip -6 route del ... via G dev D` of an ECMP sibling, or a link going
    /// down under one path): the route loses that path, a `replace`, and with one path left
    /// it is a single-path route again, as the kernel dumps it.
    pub fn del_route(&mut self, r: &Route, out: &mut Vec<Body>) {
        let mut r = r.clone();
        self.prepare(&mut r);
        if self.gone_with_its_object(&r) {
            return;
        }
        let key = place(&r);
        let Some(list) = self.routes.get_mut(&key) else {
            return;
        };
        let before = list.clone();
        // IPv4: the route exactly as it is, else (should its metrics read differently) the
        // first of its path and type.
        let at = list.iter().position(|x| *x == r).or_else(|| {
            list.iter().position(|x| {
                same_route(x, &r) || (r.family == AF_INET && x.kind == r.kind && same_path(x, &r))
            })
        });
        if let Some(at) = at {
            list.remove(at);
        } else if r.family != AF_INET && r.nexthops.is_empty() {
            if let Some(m) = list.iter_mut().find(|m| {
                m.nexthops
                    .iter()
                    .any(|n| n.gateway == r.gateway && n.index == r.index)
            }) {
                m.nexthops
                    .retain(|n| !(n.gateway == r.gateway && n.index == r.index));
                if m.nexthops.len() == 1 {
                    let n = m.nexthops.remove(0);
                    m.gateway = n.gateway;
                    m.index = n.index;
                }
            }
        }
        self.settle(&key, &before, None, out);
    }

    /// The IPv4 routes through `index` that a fresh read of the IPv4 routes (`now`) no longer
    /// has: the kernel flushed them silently when the link went down or away. Reported
    /// deleted, with `flushed`; returned too.
    pub fn flushed(&mut self, index: u32, now: &[Route], out: &mut Vec<Body>) -> Vec<Route> {
        let mut fresh: BTreeMap<Place, Vec<&Route>> = BTreeMap::new();
        for r in now {
            fresh.entry(place(r)).or_default().push(r);
        }
        let mut gone = Vec::new();
        let keys: Vec<Place> = self
            .routes
            .iter()
            .filter(|(k, list)| k.0 == AF_INET && list.iter().any(|r| r.uses(index)))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let Some(list) = self.routes.get_mut(&key) else {
                continue;
            };
            let before = list.clone();
            let mut left = fresh.remove(&key).unwrap_or_default();
            list.retain(|r| {
                if let Some(i) = left.iter().position(|x| *x == r) {
                    left.swap_remove(i);
                    return true;
                }
                if !r.uses(index) {
                    return true;
                }
                gone.push(r.clone());
                false
            });
            let first = out.len();
            self.settle(&key, &before, None, out);
            for body in &mut out[first..] {
                if let Body::WatchRoute(w) = body {
                    w.flushed = (w.event == "del").then_some(true);
                }
            }
        }
        gone
    }
}

/// `shown`, what records showed of a place, after the routes of the place went from `before`
/// to `after` and the records of that change were written.
pub fn shift(shown: &mut Vec<Route>, before: &[Route], after: &[Route]) {
    let (was, is) = (visible(before), visible(after));
    shown.retain(|x| {
        !was.iter()
            .any(|o| same_path(o, x) && !is.iter().any(|n| n == o))
    });
    for n in is.iter().filter(|n| !was.contains(n)) {
        shown.retain(|x| !same_path(x, n));
        shown.push((*n).clone());
    }
}

/// What records show of the routes of a place: for each path (device and gateway, or the
/// paths of a multipath route), the first route of it in the kernel's order. Several routes
/// of one place can share a path: IPv4 routes appended there that differ only in type,
/// protocol, scope, preferred source or metrics (only the first is ever used), and IPv6 the
/// same route twice after a replace. lwatch keeps and counts them all, but a record is
/// written when what is shown changes: the last of a path going is its `del`.
pub fn visible(list: &[Route]) -> Vec<&Route> {
    let mut out: Vec<&Route> = Vec::new();
    for r in list {
        if !out.iter().any(|x| same_path(x, r)) {
            out.push(r);
        }
    }
    out
}

/// Whether `a` and `b` take the same path: device and gateway, or the same nexthops.
fn same_path(a: &Route, b: &Route) -> bool {
    (a.nhid, a.index, a.gateway, &a.nexthops) == (b.nhid, b.index, b.gateway, &b.nexthops)
}

impl State {
    /// [`State::on_object`] as the routes give it (for the tests: the kept one must be this).
    #[cfg(test)]
    pub fn on_object_rebuilt(&self) -> BTreeMap<u32, std::collections::BTreeSet<Place>> {
        let mut out: BTreeMap<u32, std::collections::BTreeSet<Place>> = BTreeMap::new();
        for (k, list) in &self.routes {
            for id in list.iter().filter_map(|r| r.nhid) {
                out.entry(id).or_default().insert(*k);
            }
        }
        out
    }

    /// A route as lwatch keeps it: on a nexthop object, with the object's path; IPv6
    /// nexthops in order (see [`normalize`]).
    pub fn prepare(&self, r: &mut Route) {
        self.resolve(r);
        normalize(r);
    }
}

/// IPv6 nexthops in order of gateway: the kernel announces an appended path first but dumps
/// the paths in the order they came.
pub fn normalize(r: &mut Route) {
    if r.family != AF_INET {
        r.nexthops.sort_by_key(|n| (n.gateway, n.index));
    }
}
