//! Nexthop objects in lwatch's state, and the routes on them (`ip route add ... nhid N`).
//!
//! A route on an object has the object's path: lwatch resolves it from the objects it follows
//! (so it is right with `net.ipv4.nexthop_compat_mode` 0 too, when the kernel sends only the
//! id). The kernel announces few of the route changes an object's change makes (measured on
//! 6.18): a replaced object's IPv4 routes are announced, a group that lost a member changes
//! its routes without a word, and the deletion of an object removes its IPv4 routes silently
//! (IPv6 ones with a notice, after the object's). So every change of an object re-resolves the
//! routes on it here, and writes their `replace`, or their `del` when the object went; the
//! kernel's own route notices that follow then change nothing.

use super::state::{protocol_name, scope_name, Place, State};
use crate::netlink::nexthop::{NexthopObject, GROUP_RESILIENT};
use crate::netlink::rt::{Nexthop, Route};
use crate::record::{Body, WatchGroupMember, WatchNexthopObject};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// A route's path: gateway, device, and the nexthops of a multipath route.
type Path = (Option<IpAddr>, Option<u32>, Vec<Nexthop>);

fn members(nh: &NexthopObject) -> Option<Vec<WatchGroupMember>> {
    nh.is_group().then(|| {
        nh.group
            .iter()
            .map(|m| WatchGroupMember {
                id: m.id,
                weight: m.weight,
            })
            .collect()
    })
}

impl State {
    /// The path of a route on object `id`, as the kernel shows it: a single nexthop's gateway
    /// and device; a group of one member that member's; a larger group a multipath route of
    /// its members. `None` where lwatch cannot tell (an object it does not know, a blackhole:
    /// the kernel's own attributes stay).
    fn path_of(&self, id: u32) -> Option<Path> {
        let nh = self.nexthops.get(&id)?;
        let single = |nh: &NexthopObject| -> Option<Path> {
            (!nh.blackhole && !nh.is_group() && (nh.gateway.is_some() || nh.index.is_some()))
                .then(|| (nh.gateway, nh.index, Vec::new()))
        };
        if !nh.is_group() {
            return single(nh);
        }
        if let [only] = &nh.group[..] {
            return single(self.nexthops.get(&only.id)?);
        }
        let mut hops = Vec::new();
        for m in &nh.group {
            let (gateway, index, _) = single(self.nexthops.get(&m.id)?)?;
            hops.push(Nexthop {
                gateway,
                index,
                weight: m.weight,
            });
        }
        Some((None, None, hops))
    }

    /// Gives a route on an object the object's path (see [`State::path_of`]).
    pub(super) fn resolve(&self, r: &mut Route) {
        if let Some((gateway, index, nexthops)) = r.nhid.and_then(|id| self.path_of(id)) {
            r.gateway = gateway;
            r.index = index;
            r.nexthops = nexthops;
        }
    }

    pub fn nexthop_body(&self, event: &str, nh: &NexthopObject) -> Body {
        Body::WatchNexthopObject(WatchNexthopObject {
            event: event.into(),
            id: nh.id,
            family: match nh.family {
                0 => None,
                f => Some(super::state::family(f).into()),
            },
            gateway: nh.gateway,
            dev: nh.index.map(|i| self.name(i)),
            ifindex: nh.index,
            blackhole: nh.blackhole.then_some(true),
            fdb: nh.fdb.then_some(true),
            group: members(nh),
            group_type: nh.is_group().then(|| {
                if nh.group_type == GROUP_RESILIENT {
                    "resilient".into()
                } else {
                    "mpath".into()
                }
            }),
            protocol: protocol_name(nh.protocol),
            scope: scope_name(nh.scope),
            old_gateway: None,
            old_dev: None,
            old_ifindex: None,
            old_blackhole: None,
            old_group: None,
            flushed: None,
            resync: None,
        })
    }

    /// The record of object `now` taking the place of `old` (`None`: it is new, or nothing
    /// changed).
    pub fn nexthop_change(&self, old: Option<&NexthopObject>, now: &NexthopObject) -> Option<Body> {
        let Some(old) = old else {
            return Some(self.nexthop_body("add", now));
        };
        if old == now {
            return None;
        }
        let mut body = self.nexthop_body("replace", now);
        if let Body::WatchNexthopObject(b) = &mut body {
            b.old_gateway = old.gateway;
            b.old_dev = old.index.map(|i| self.name(i));
            b.old_ifindex = old.index;
            b.old_blackhole = old.blackhole.then_some(true);
            b.old_group = members(old);
        }
        Some(body)
    }

    /// An `RTM_NEWNEXTHOP`: an object added or replaced, then the routes on it that now take
    /// another path (`replace`).
    pub fn new_nexthop(&mut self, nh: NexthopObject, out: &mut Vec<Body>) {
        let Some(body) = self.nexthop_change(self.nexthops.get(&nh.id), &nh) else {
            return;
        };
        out.push(body);
        let id = nh.id;
        self.nexthops.insert(id, nh);
        let mut touched = self.groups_of(id);
        touched.insert(id);
        self.reresolve(&touched, &BTreeSet::new(), false, out);
    }

    /// The groups object `id` is a member of.
    fn groups_of(&self, id: u32) -> BTreeSet<u32> {
        self.nexthops
            .values()
            .filter(|g| g.group.iter().any(|m| m.id == id))
            .map(|g| g.id)
            .collect()
    }

    /// An `RTM_DELNEXTHOP` (or an object found gone, `flushed`): the object goes, and with it
    /// the groups it was the last member of (the others lose it: a `replace`), and every route
    /// on one of the objects that went (a `del`, flushed) or on a group that changed.
    pub fn del_nexthop(&mut self, id: u32, flushed: bool, out: &mut Vec<Body>) {
        let Some(gone) = self.nexthops.remove(&id) else {
            return;
        };
        let mut body = self.nexthop_body("del", &gone);
        mark_flushed(&mut body, flushed);
        out.push(body);
        let mut went = BTreeSet::from([id]);
        let groups = self.groups_of(id);
        for &g in &groups {
            let Some(old) = self.nexthops.get(&g).cloned() else {
                continue;
            };
            let mut now = old.clone();
            now.group.retain(|m| m.id != id);
            if now.group.is_empty() {
                self.nexthops.remove(&g);
                let mut body = self.nexthop_body("del", &old);
                mark_flushed(&mut body, flushed);
                out.push(body);
                went.insert(g);
            } else if let Some(body) = self.nexthop_change(Some(&old), &now) {
                out.push(body);
                self.nexthops.insert(g, now);
            }
        }
        self.reresolve(&groups, &went, true, out);
    }

    /// Routes on the objects in `went` go (`del`, `flushed`); those on the objects in
    /// `touched` take the object's path now (`replace` where it changed). Only the places that
    /// hold such a route are looked at, and copied.
    fn reresolve(
        &mut self,
        touched: &BTreeSet<u32>,
        went: &BTreeSet<u32>,
        flushed: bool,
        out: &mut Vec<Body>,
    ) {
        let keys: BTreeSet<Place> = touched
            .iter()
            .chain(went)
            .filter_map(|id| self.on_object.get(id))
            .flatten()
            .copied()
            .collect();
        for key in keys {
            let Some(list) = self.routes.get(&key) else {
                continue;
            };
            let before = list.clone();
            let mut now = Vec::new();
            for r in &before {
                if r.nhid.is_some_and(|id| went.contains(&id)) {
                    continue;
                }
                let mut r = r.clone();
                self.resolve(&mut r);
                super::state::normalize(&mut r);
                now.push(r);
            }
            if now == before {
                continue;
            }
            self.routes.insert(key, now);
            let first = out.len();
            self.settle(&key, &before, None, out);
            for body in &mut out[first..] {
                if let Body::WatchRoute(w) = body {
                    if w.event == "del" && flushed {
                        w.flushed = Some(true);
                    }
                }
            }
        }
    }

    /// Makes the objects those of a fresh read (`fresh`) after links went down or away: the
    /// kernel removes the objects on them without a notification. Single objects that went
    /// first (the groups they leave follow the kernel's), then whatever still differs.
    pub fn flush_nexthops(&mut self, fresh: &BTreeMap<u32, NexthopObject>, out: &mut Vec<Body>) {
        let gone: Vec<u32> = self
            .nexthops
            .values()
            .filter(|nh| !nh.is_group() && !fresh.contains_key(&nh.id))
            .map(|nh| nh.id)
            .collect();
        for id in gone {
            self.del_nexthop(id, true, out);
        }
        let gone: Vec<u32> = self
            .nexthops
            .keys()
            .filter(|id| !fresh.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            self.del_nexthop(id, true, out);
        }
        for nh in fresh.values() {
            if self.nexthops.get(&nh.id) != Some(nh) {
                self.new_nexthop(nh.clone(), out);
            }
        }
    }

    /// Whether the route's place holds no route on an object the message names (the route
    /// already went with its object: the kernel's IPv6 `RTM_DELROUTE` that follows).
    pub(super) fn gone_with_its_object(&self, r: &Route) -> bool {
        r.nhid.is_some()
            && !self
                .routes
                .get(&super::state::place(r))
                .is_some_and(|l| l.iter().any(|x| x.nhid == r.nhid))
    }
}

fn mark_flushed(body: &mut Body, flushed: bool) {
    if let Body::WatchNexthopObject(b) = body {
        b.flushed = flushed.then_some(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::nexthop::GroupMember;
    use crate::netlink::rt::{AF_INET, AF_INET6, NLM_F_REPLACE};

    fn single(id: u32, family: u8, gateway: &str, dev: u32) -> NexthopObject {
        NexthopObject {
            id,
            family,
            scope: 253,
            protocol: 0,
            flags: 0,
            gateway: Some(gateway.parse().unwrap()),
            index: Some(dev),
            blackhole: false,
            fdb: false,
            group: Vec::new(),
            group_type: 0,
        }
    }

    fn group(id: u32, members: &[(u32, u16)]) -> NexthopObject {
        NexthopObject {
            family: 0,
            scope: 0,
            gateway: None,
            index: None,
            group: members
                .iter()
                .map(|&(id, weight)| GroupMember { id, weight })
                .collect(),
            ..single(id, 0, "0.0.0.0", 1)
        }
    }

    /// A route message as the kernel sends it for `ip route add DST nhid ID` with
    /// nexthop_compat_mode 0: the id only, no path.
    fn on(dst: &str, family: u8, nhid: u32) -> Route {
        Route {
            family,
            dst: dst.parse().unwrap(),
            dst_len: 16,
            src: None,
            src_len: 0,
            tos: 0,
            table: 254,
            protocol: 3,
            scope: 0,
            kind: 1,
            priority: None,
            prefsrc: None,
            gateway: None,
            index: None,
            nexthops: Vec::new(),
            metrics: None,
            nhid: Some(nhid),
        }
    }

    fn events(out: &[Body]) -> Vec<String> {
        out.iter()
            .map(|b| match b {
                Body::WatchNexthopObject(n) => {
                    let path = match (&n.group, n.gateway) {
                        (Some(g), _) => {
                            let m: Vec<String> =
                                g.iter().map(|m| format!("{}x{}", m.id, m.weight)).collect();
                            format!("group {}", m.join("/"))
                        }
                        (None, Some(g)) => format!("via {g}"),
                        _ => "-".into(),
                    };
                    let flushed = if n.flushed == Some(true) {
                        " flushed"
                    } else {
                        ""
                    };
                    format!("nexthop {} {} {path}{flushed}", n.event, n.id)
                }
                Body::WatchRoute(r) => {
                    let path = match (&r.nexthops, r.gateway) {
                        (Some(h), _) => {
                            let g: Vec<String> = h
                                .iter()
                                .map(|n| format!("{}", n.gateway.unwrap()))
                                .collect();
                            format!("nh {}", g.join(","))
                        }
                        (None, Some(g)) => format!("via {g}"),
                        _ => "-".into(),
                    };
                    let flushed = if r.flushed == Some(true) {
                        " flushed"
                    } else {
                        ""
                    };
                    format!(
                        "route {} {} nhid {} {path}{flushed}",
                        r.event,
                        r.dst,
                        r.nhid.unwrap()
                    )
                }
                _ => "?".into(),
            })
            .collect()
    }

    /// The sequence measured on 6.18 (`ip monitor nexthop route` alongside), fed as the
    /// kernel notifies it: an object replaced is followed by its IPv4 routes (a repeat here);
    /// a member deleted by the group without it and no route notice; the last member deleted
    /// by the group's deletion and no route notice; an IPv6 object by the route's deletion.
    #[test]
    fn object_changes_replace_and_delete_the_routes_on_them() {
        let mut s = State::default();
        let mut out = Vec::new();
        s.new_nexthop(single(1, AF_INET, "10.77.2.2", 3), &mut out);
        s.new_nexthop(single(2, AF_INET, "10.77.2.3", 3), &mut out);
        s.new_nexthop(group(10, &[(1, 1), (2, 3)]), &mut out);
        s.new_route_flagged(on("10.98.0.0", AF_INET, 1), 0x600, &mut out);
        s.new_route_flagged(on("10.97.0.0", AF_INET, 10), 0x600, &mut out);
        s.new_nexthop(single(6, AF_INET6, "fd77::2", 3), &mut out);
        s.new_route_flagged(on("fd98::", AF_INET6, 6), 0x600, &mut out);
        assert_eq!(s.on_object, s.on_object_rebuilt(), "the object index");
        assert_eq!(
            events(&out),
            [
                "nexthop add 1 via 10.77.2.2",
                "nexthop add 2 via 10.77.2.3",
                "nexthop add 10 group 1x1/2x3",
                "route add 10.98.0.0/16 nhid 1 via 10.77.2.2",
                "route add 10.97.0.0/16 nhid 10 nh 10.77.2.2,10.77.2.3",
                "nexthop add 6 via fd77::2",
                "route add fd98::/16 nhid 6 via fd77::2",
            ]
        );
        out.clear();
        s.new_nexthop(single(1, AF_INET, "10.77.2.4", 3), &mut out);
        s.new_route_flagged(on("10.98.0.0", AF_INET, 1), NLM_F_REPLACE, &mut out);
        s.new_route_flagged(on("10.97.0.0", AF_INET, 10), NLM_F_REPLACE, &mut out);
        assert_eq!(s.on_object, s.on_object_rebuilt(), "the object index");
        assert_eq!(
            events(&out),
            [
                "nexthop replace 1 via 10.77.2.4",
                "route replace 10.97.0.0/16 nhid 10 nh 10.77.2.4,10.77.2.3",
                "route replace 10.98.0.0/16 nhid 1 via 10.77.2.4",
            ]
        );
        out.clear();
        s.del_nexthop(2, false, &mut out);
        s.new_nexthop(group(10, &[(1, 1)]), &mut out);
        assert_eq!(s.on_object, s.on_object_rebuilt(), "the object index");
        assert_eq!(
            events(&out),
            [
                "nexthop del 2 via 10.77.2.3",
                "nexthop replace 10 group 1x1",
                "route replace 10.97.0.0/16 nhid 10 via 10.77.2.4",
            ]
        );
        out.clear();
        s.del_nexthop(1, false, &mut out);
        s.del_nexthop(10, false, &mut out);
        s.del_nexthop(6, false, &mut out);
        s.del_route(&on("fd98::", AF_INET6, 6), &mut out);
        assert_eq!(s.on_object, s.on_object_rebuilt(), "the object index");
        assert_eq!(
            events(&out),
            [
                "nexthop del 1 via 10.77.2.4",
                "nexthop del 10 group 1x1",
                "route del 10.97.0.0/16 nhid 10 via 10.77.2.4 flushed",
                "route del 10.98.0.0/16 nhid 1 via 10.77.2.4 flushed",
                "nexthop del 6 via fd77::2",
                "route del fd98::/16 nhid 6 via fd77::2 flushed",
            ]
        );
        assert!(s.routes.is_empty() && s.nexthops.is_empty());
    }

    /// A link down or a carrier loss removes the objects on it without a notification; a
    /// re-read finds them gone, and the groups they leave.
    #[test]
    fn objects_gone_from_a_reread_are_flushed_with_their_routes() {
        let mut s = State::default();
        let mut out = Vec::new();
        s.new_nexthop(single(1, AF_INET, "10.77.2.2", 3), &mut out);
        s.new_nexthop(single(3, AF_INET, "10.78.0.2", 5), &mut out);
        s.new_nexthop(group(10, &[(1, 1), (3, 1)]), &mut out);
        s.new_route_flagged(on("10.98.0.0", AF_INET, 1), 0x600, &mut out);
        s.new_route_flagged(on("10.97.0.0", AF_INET, 10), 0x600, &mut out);
        out.clear();
        let fresh: BTreeMap<u32, NexthopObject> = [
            (3, single(3, AF_INET, "10.78.0.2", 5)),
            (10, group(10, &[(3, 1)])),
        ]
        .into();
        s.flush_nexthops(&fresh, &mut out);
        assert_eq!(s.on_object, s.on_object_rebuilt(), "the object index");
        assert_eq!(
            events(&out),
            [
                "nexthop del 1 via 10.77.2.2 flushed",
                "nexthop replace 10 group 3x1",
                "route replace 10.97.0.0/16 nhid 10 via 10.78.0.2",
                "route del 10.98.0.0/16 nhid 1 via 10.77.2.2 flushed",
            ]
        );
        assert_eq!(s.nexthops, fresh);
    }
}
