//! The kernel's links, addresses and routes as lwatch last saw them, and the records each
//! message or re-read turns into. No I/O: messages go in decoded, bodies come out.
//!
//! The kernel sends `RTM_NEWLINK` for many changes lwatch does not report and repeats
//! `RTM_NEWADDR` for addresses it already has, so every message is diffed against this state
//! and only real changes become records.

use crate::netlink::parse::{oper_name, Link};
use crate::netlink::rt::{Addr, Route, AF_INET, NLM_F_REPLACE};
use crate::record::{Body, WatchAddr, WatchLink, WatchNexthop, WatchRoute};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What lwatch keeps of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub link: Link,
    pub address: Option<String>,
}

/// An address's identity: interface, address, prefix length (IPv4 allows one address twice
/// with different prefixes).
pub type AddrKey = (u32, IpAddr, u8);

/// A route's identity in the kernel's FIB: family, table, destination, source, TOS, metric,
/// and for IPv6 the device (IPv6 keeps one route per device for the same prefix and metric,
/// e.g. `ff00::/8` on every link; IPv4 replaces it).
pub type RouteKey = (
    u8,
    u32,
    IpAddr,
    u8,
    Option<IpAddr>,
    u8,
    u8,
    Option<u32>,
    Option<u32>,
);

fn route_key(r: &Route) -> RouteKey {
    let dev = (r.family != AF_INET).then_some(r.index).flatten();
    (
        r.family, r.table, r.dst, r.dst_len, r.src, r.src_len, r.tos, r.priority, dev,
    )
}

/// Everything lwatch follows.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub links: BTreeMap<u32, LinkInfo>,
    pub addrs: BTreeMap<AddrKey, Addr>,
    pub routes: BTreeMap<RouteKey, Route>,
    /// The last name of every interface seen, kept after it goes, so routes flushed with a
    /// deleted link still name it.
    pub names: BTreeMap<u32, String>,
    /// When each route arrived (a counter): the kernel keeps IPv6 routes of one table,
    /// destination, source and metric in that order, and a replace takes the first.
    pub route_seq: BTreeMap<RouteKey, u64>,
    next_seq: u64,
}

/// An IPv6 route's place in the kernel's FIB: the key without the device.
fn group(k: &RouteKey) -> (u8, u32, IpAddr, u8, Option<IpAddr>, u8, u8, Option<u32>) {
    (k.0, k.1, k.2, k.3, k.4, k.5, k.6, k.7)
}

/// Whether the kernel may make the route an ECMP sibling of another (it has a gateway).
fn ecmp(r: &Route) -> bool {
    r.gateway.is_some() || !r.nexthops.is_empty()
}

fn family(f: u8) -> &'static str {
    if f == AF_INET {
        "inet"
    } else {
        "inet6"
    }
}

/// `rtm_scope` / `ifa_scope` names, as iproute2 prints them.
pub fn scope_name(s: u8) -> String {
    match s {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

fn protocol_name(p: u8) -> String {
    match p {
        0 => "unspec".into(),
        1 => "redirect".into(),
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        9 => "ra".into(),
        16 => "dhcp".into(),
        n => n.to_string(),
    }
}

fn type_name(t: u8) -> String {
    match t {
        1 => "unicast".into(),
        2 => "local".into(),
        3 => "broadcast".into(),
        4 => "anycast".into(),
        5 => "multicast".into(),
        6 => "blackhole".into(),
        7 => "unreachable".into(),
        8 => "prohibit".into(),
        9 => "throw".into(),
        10 => "nat".into(),
        n => n.to_string(),
    }
}

impl State {
    /// The name of interface `index`, or its number when lwatch never saw it.
    fn name(&self, index: u32) -> String {
        self.links
            .get(&index)
            .map(|l| &l.link.name)
            .or_else(|| self.names.get(&index))
            .cloned()
            .unwrap_or_else(|| index.to_string())
    }

    pub fn link_body(&self, event: &str, info: &LinkInfo) -> Body {
        let l = &info.link;
        Body::WatchLink(WatchLink {
            event: event.into(),
            ifname: l.name.clone(),
            ifindex: l.index,
            old_ifname: None,
            oper: oper_name(l.oper).into(),
            carrier: l.carrier,
            admin: l.admin_up(),
            mtu: l.mtu,
            address: info.address.clone(),
            resync: None,
        })
    }

    pub fn addr_body(&self, event: &str, a: &Addr) -> Body {
        Body::WatchAddr(WatchAddr {
            event: event.into(),
            ifname: self.name(a.index),
            ifindex: a.index,
            family: family(a.family).into(),
            addr: a.addr,
            prefixlen: a.prefixlen,
            scope: scope_name(a.scope),
            label: a.label.clone(),
            resync: None,
        })
    }

    pub fn route_body(&self, event: &str, r: &Route) -> Body {
        let nexthops = (!r.nexthops.is_empty()).then(|| {
            r.nexthops
                .iter()
                .map(|n| WatchNexthop {
                    gateway: n.gateway,
                    dev: n.index.map(|i| self.name(i)),
                    ifindex: n.index,
                    weight: n.weight,
                })
                .collect()
        });
        Body::WatchRoute(WatchRoute {
            event: event.into(),
            family: family(r.family).into(),
            dst: format!("{}/{}", r.dst, r.dst_len),
            table: r.table,
            kind: type_name(r.kind),
            protocol: protocol_name(r.protocol),
            scope: scope_name(r.scope),
            dev: r.index.map(|i| self.name(i)),
            ifindex: r.index,
            gateway: r.gateway,
            nexthops,
            metric: r.priority,
            prefsrc: r.prefsrc,
            src: r.src.map(|s| format!("{s}/{}", r.src_len)),
            tos: (r.tos != 0).then_some(r.tos),
            flushed: None,
            resync: None,
        })
    }

    /// Everything as `present` records: links, then addresses, then routes.
    pub fn present(&self, out: &mut Vec<Body>) {
        for info in self.links.values() {
            out.push(self.link_body("present", info));
        }
        for a in self.addrs.values() {
            out.push(self.addr_body("present", a));
        }
        for r in self.routes.values() {
            out.push(self.route_body("present", r));
        }
    }

    /// An `RTM_NEWLINK`: a new interface, or the changes to a known one, in a fixed order.
    pub fn new_link(&mut self, info: LinkInfo, out: &mut Vec<Body>) {
        let index = info.link.index;
        self.names.insert(index, info.link.name.clone());
        let Some(old) = self.links.get(&index).cloned() else {
            out.push(self.link_body("new", &info));
            self.links.insert(index, info);
            return;
        };
        let (o, n) = (&old.link, &info.link);
        let mut events: Vec<&str> = Vec::new();
        if o.name != n.name {
            events.push("rename");
        }
        if o.admin_up() != n.admin_up() {
            events.push(if n.admin_up() { "up" } else { "down" });
        }
        if o.carrier != n.carrier {
            events.push("carrier");
        }
        // The operational state follows the admin state and the carrier: report it on its
        // own only when neither explains it.
        if o.oper != n.oper && events.iter().all(|e| *e == "rename") {
            events.push("oper");
        }
        if o.mtu != n.mtu {
            events.push("mtu");
        }
        if old.address != info.address && info.address.is_some() {
            events.push("address");
        }
        self.links.insert(index, info.clone());
        for e in events {
            let mut body = self.link_body(e, &info);
            if let (Body::WatchLink(l), "rename") = (&mut body, e) {
                l.old_ifname = Some(o.name.clone());
            }
            out.push(body);
        }
    }

    /// An `RTM_DELLINK`.
    pub fn del_link(&mut self, index: u32, out: &mut Vec<Body>) {
        if let Some(info) = self.links.get(&index).cloned() {
            out.push(self.link_body("del", &info));
            self.links.remove(&index);
        }
    }

    /// An `RTM_NEWADDR`: an add, unless the address is already there.
    pub fn new_addr(&mut self, a: Addr, out: &mut Vec<Body>) {
        let key = (a.index, a.addr, a.prefixlen);
        // A repeat (`ip addr change`, a rename) only refreshes the label and scope.
        let repeat = self.addrs.insert(key, a.clone()).is_some();
        if !repeat {
            out.push(self.addr_body("add", &a));
        }
    }

    /// An `RTM_DELADDR`.
    pub fn del_addr(&mut self, a: &Addr, out: &mut Vec<Body>) {
        if let Some(old) = self.addrs.remove(&(a.index, a.addr, a.prefixlen)) {
            out.push(self.addr_body("del", &old));
        }
    }

    /// An `RTM_NEWROUTE`: `add`, `replace` when the same destination changed, nothing for a
    /// repeat.
    pub fn new_route(&mut self, r: Route, out: &mut Vec<Body>) {
        self.new_route_flagged(r, 0, out);
    }

    /// An `RTM_NEWROUTE` with the `nlmsg_flags` of its notification. IPv6 routes are kept per
    /// device, so a route that takes the place of others on another device is found here:
    /// with `NLM_F_REPLACE` the kernel replaced the first route of the same table,
    /// destination, source and metric (and its ECMP siblings, which lwatch holds as one
    /// multipath route); a multipath route (`ip -6 route append` of a route with a gateway)
    /// takes in the single routes that are now its nexthops. Either is a `replace`.
    ///
    /// The nexthops of an IPv6 multipath route are kept in order of gateway: the kernel
    /// announces an appended route's nexthop first but dumps them in the order they came.
    pub fn new_route_flagged(&mut self, mut r: Route, flags: u16, out: &mut Vec<Body>) {
        if r.family != AF_INET {
            r.nexthops.sort_by_key(|n| (n.gateway, n.index));
        }
        let key = route_key(&r);
        let mut taken: Vec<RouteKey> = Vec::new();
        if r.family != AF_INET {
            let mut same: Vec<(u64, RouteKey)> = self
                .routes
                .keys()
                .filter(|k| group(k) == group(&key))
                .map(|k| (self.route_seq.get(k).copied().unwrap_or(0), *k))
                .collect();
            same.sort();
            if flags & NLM_F_REPLACE != 0 {
                // The first of the same kind (both with or both without a gateway), else the
                // first, as fib6_add_rt2node picks it.
                let first = same
                    .iter()
                    .find(|(_, k)| ecmp(&self.routes[k]) == ecmp(&r))
                    .or(same.first());
                taken.extend(first.map(|(_, k)| *k).filter(|k| *k != key));
            } else if !r.nexthops.is_empty() {
                taken.extend(same.iter().map(|(_, k)| *k).filter(|k| {
                    let old = &self.routes[k];
                    old.nexthops.is_empty()
                        && r.nexthops
                            .iter()
                            .any(|n| n.gateway == old.gateway && n.index == old.index)
                }));
            }
        }
        let mut seq = None;
        let mut replaced = false;
        for k in &taken {
            self.routes.remove(k);
            let s = self.route_seq.remove(k);
            seq = seq.or(s);
            replaced = true;
        }
        match self.routes.get(&key) {
            Some(old) if *old == r && !replaced => {}
            Some(_) => out.push(self.route_body("replace", &r)),
            None if replaced => out.push(self.route_body("replace", &r)),
            None => out.push(self.route_body("add", &r)),
        }
        if !self.route_seq.contains_key(&key) {
            let s = seq.unwrap_or_else(|| {
                self.next_seq += 1;
                self.next_seq
            });
            self.route_seq.insert(key, s);
        }
        self.routes.insert(key, r);
    }

    /// An `RTM_DELROUTE`. For IPv6 it may name one nexthop of a multipath route (`ip -6
    /// route del ... via G dev D` of an ECMP sibling): the route loses that path, a
    /// `replace`, and with one path left it is a single-path route again, as the kernel
    /// dumps it.
    pub fn del_route(&mut self, r: &Route, out: &mut Vec<Body>) {
        let key = route_key(r);
        if let Some(old) = self.routes.remove(&key) {
            self.route_seq.remove(&key);
            out.push(self.route_body("del", &old));
            return;
        }
        if r.family == AF_INET || !r.nexthops.is_empty() {
            return;
        }
        let Some(mkey) = self
            .routes
            .iter()
            .find(|(k, m)| {
                group(k) == group(&key)
                    && m.nexthops
                        .iter()
                        .any(|n| n.gateway == r.gateway && n.index == r.index)
            })
            .map(|(k, _)| *k)
        else {
            return;
        };
        let Some(mut m) = self.routes.remove(&mkey) else {
            return;
        };
        let seq = self.route_seq.remove(&mkey);
        m.nexthops
            .retain(|n| !(n.gateway == r.gateway && n.index == r.index));
        if m.nexthops.len() == 1 {
            let n = m.nexthops.remove(0);
            m.gateway = n.gateway;
            m.index = n.index;
        }
        if m.nexthops.is_empty() && m.index.is_none() {
            out.push(self.route_body("del", &m));
            return;
        }
        out.push(self.route_body("replace", &m));
        let k = route_key(&m);
        if let Some(seq) = seq {
            self.route_seq.insert(k, seq);
        }
        self.routes.insert(k, m);
    }

    /// The IPv4 routes through `index` that a fresh dump (`now`, IPv4 routes) no longer has:
    /// the kernel flushed them silently when the link went down or away. Reported deleted.
    pub fn flushed(&mut self, index: u32, now: &[Route], out: &mut Vec<Body>) {
        let present: std::collections::HashSet<RouteKey> = now.iter().map(route_key).collect();
        let gone: Vec<RouteKey> = self
            .routes
            .iter()
            .filter(|(k, r)| r.family == AF_INET && r.uses(index) && !present.contains(k))
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            self.route_seq.remove(&k);
            if let Some(r) = self.routes.remove(&k) {
                let mut body = self.route_body("del", &r);
                if let Body::WatchRoute(w) = &mut body {
                    w.flushed = Some(true);
                }
                out.push(body);
            }
        }
    }

    /// Replaces the whole state with a fresh read, writing what differs as ordinary records:
    /// links first (so later records name them), then address and route removals, then
    /// additions, then links that went away.
    pub fn resync(&mut self, fresh: State, out: &mut Vec<Body>) {
        for info in fresh.links.values() {
            self.new_link(info.clone(), out);
        }
        let gone: Vec<AddrKey> = self
            .addrs
            .keys()
            .filter(|k| !fresh.addrs.contains_key(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(a) = self.addrs.get(&k).cloned() {
                self.del_addr(&a, out);
            }
        }
        let gone: Vec<RouteKey> = self
            .routes
            .keys()
            .filter(|k| !fresh.routes.contains_key(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(r) = self.routes.get(&k).cloned() {
                self.del_route(&r, out);
            }
        }
        for a in fresh.addrs.into_values() {
            self.new_addr(a, out);
        }
        let mut routes: Vec<(u64, Route)> = fresh
            .routes
            .iter()
            .map(|(k, r)| (fresh.route_seq.get(k).copied().unwrap_or(0), r.clone()))
            .collect();
        routes.sort_by_key(|(s, _)| *s);
        for (_, r) in routes {
            self.new_route(r, out);
        }
        let gone: Vec<u32> = self
            .links
            .keys()
            .filter(|i| !fresh.links.contains_key(i))
            .copied()
            .collect();
        for i in gone {
            self.del_link(i, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::rt::Nexthop;

    fn link(index: u32, name: &str, flags: u32, mtu: u32) -> LinkInfo {
        LinkInfo {
            link: Link {
                index,
                flags,
                name: name.into(),
                mtu: Some(mtu),
                oper: Some(if flags & 0x10000 != 0 { 6 } else { 2 }),
                carrier: flags & 0x10000 != 0,
                counters: None,
            },
            address: Some("02:00:00:00:00:01".into()),
        }
    }

    fn events(out: &[Body]) -> Vec<String> {
        out.iter()
            .map(|b| match b {
                Body::WatchLink(l) => format!("link {} {}", l.event, l.ifname),
                Body::WatchAddr(a) => format!("addr {} {}/{}", a.event, a.addr, a.prefixlen),
                Body::WatchRoute(r) => format!("route {} {} {}", r.event, r.dst, r.table),
                _ => "?".into(),
            })
            .collect()
    }

    fn route(dst: &str, len: u8, table: u32, dev: u32) -> Route {
        Route {
            family: AF_INET,
            dst: dst.parse().unwrap(),
            dst_len: len,
            src: None,
            src_len: 0,
            tos: 0,
            table,
            protocol: 4,
            scope: 0,
            kind: 1,
            priority: None,
            prefsrc: None,
            gateway: None,
            index: Some(dev),
            nexthops: Vec::new(),
        }
    }

    #[test]
    fn link_messages_are_diffed_not_echoed() {
        let mut s = State::default();
        let mut out = Vec::new();
        s.new_link(link(5, "v0", 0x1002, 1500), &mut out);
        s.new_link(link(5, "v0", 0x1002, 1500), &mut out);
        assert_eq!(events(&out), ["link new v0"], "a repeat is no change");
        out.clear();
        s.new_link(link(5, "v0", 0x1003, 1500), &mut out);
        s.new_link(link(5, "v0", 0x11003, 1500), &mut out);
        s.new_link(link(5, "wan", 0x11003, 1400), &mut out);
        assert_eq!(
            events(&out),
            [
                "link up v0",
                "link carrier v0",
                "link rename wan",
                "link mtu wan"
            ]
        );
        let Body::WatchLink(r) = &out[2] else {
            panic!()
        };
        assert_eq!(r.old_ifname.as_deref(), Some("v0"));
        out.clear();
        s.del_link(5, &mut out);
        s.del_link(5, &mut out);
        assert_eq!(events(&out), ["link del wan"]);
    }

    #[test]
    fn repeated_addresses_and_routes_are_not_adds() {
        let mut s = State::default();
        let mut out = Vec::new();
        let a = Addr {
            family: AF_INET,
            prefixlen: 24,
            scope: 0,
            index: 5,
            addr: "10.1.0.1".parse().unwrap(),
            label: Some("v0".into()),
        };
        s.new_addr(a.clone(), &mut out);
        s.new_addr(a.clone(), &mut out);
        let r = route("10.2.0.0", 24, 1000, 5);
        s.new_route(r.clone(), &mut out);
        s.new_route(r.clone(), &mut out);
        let mut r2 = r.clone();
        r2.nexthops = vec![Nexthop {
            gateway: None,
            index: Some(6),
            weight: 1,
        }];
        s.new_route(r2, &mut out);
        s.del_addr(&a, &mut out);
        s.del_addr(&a, &mut out);
        assert_eq!(
            events(&out),
            [
                "addr add 10.1.0.1/24",
                "route add 10.2.0.0/24 1000",
                "route replace 10.2.0.0/24 1000",
                "addr del 10.1.0.1/24"
            ]
        );
    }

    #[test]
    fn silently_flushed_ipv4_routes_are_deleted_from_a_reread() {
        let mut s = State::default();
        let mut out = Vec::new();
        s.new_route(route("10.2.0.0", 24, 254, 5), &mut out);
        s.new_route(route("10.3.0.0", 24, 254, 6), &mut out);
        s.new_route(route("10.4.0.0", 24, 1000, 5), &mut out);
        out.clear();
        let still = [
            route("10.3.0.0", 24, 254, 6),
            route("10.4.0.0", 24, 1000, 5),
        ];
        s.flushed(5, &still, &mut out);
        assert_eq!(events(&out), ["route del 10.2.0.0/24 254"]);
        let Body::WatchRoute(r) = &out[0] else {
            panic!()
        };
        assert_eq!(r.flushed, Some(true));
    }

    #[test]
    fn a_resync_writes_only_the_difference() {
        let mut s = State::default();
        let mut out = Vec::new();
        s.new_link(link(5, "v0", 0x1003, 1500), &mut out);
        s.new_link(link(6, "v1", 0x1003, 1500), &mut out);
        s.new_route(route("10.2.0.0", 24, 254, 5), &mut out);
        s.new_route(route("10.3.0.0", 24, 254, 6), &mut out);
        out.clear();
        let mut fresh = State::default();
        fresh.new_link(link(5, "v0", 0x1003, 9000), &mut Vec::new());
        fresh.new_route(route("10.2.0.0", 24, 254, 5), &mut Vec::new());
        fresh.new_route(route("10.9.0.0", 24, 254, 5), &mut Vec::new());
        s.resync(fresh, &mut out);
        assert_eq!(
            events(&out),
            [
                "link mtu v0",
                "route del 10.3.0.0/24 254",
                "route add 10.9.0.0/24 254",
                "link del v1"
            ]
        );
    }

    fn route6(dst: &str, dev: u32, gateway: Option<&str>) -> Route {
        Route {
            family: crate::netlink::rt::AF_INET6,
            priority: Some(1024),
            gateway: gateway.map(|g| g.parse().unwrap()),
            ..route(dst, 64, 254, dev)
        }
    }

    fn nh(gateway: &str, dev: u32) -> Nexthop {
        Nexthop {
            gateway: Some(gateway.parse().unwrap()),
            index: Some(dev),
            weight: 1,
        }
    }

    /// What a dump of the kernel's routes gives, as a state.
    fn dumped(routes: &[Route]) -> State {
        let mut s = State::default();
        for r in routes {
            s.new_route(r.clone(), &mut Vec::new());
        }
        s
    }

    #[test]
    fn ipv6_replaces_and_appends_take_the_place_of_the_routes_they_replace() {
        use crate::netlink::rt::NLM_F_APPEND;
        let mut s = State::default();
        let mut out = Vec::new();
        // A device route moved to another device: the first of its metric is replaced.
        s.new_route_flagged(route6("2001:db8:1::", 5, None), 0x600, &mut out);
        s.new_route_flagged(
            route6("2001:db8:1::", 6, None),
            NLM_F_APPEND | 0x400,
            &mut out,
        );
        s.new_route_flagged(route6("2001:db8:1::", 7, None), NLM_F_REPLACE, &mut out);
        assert_eq!(
            events(&out),
            [
                "route add 2001:db8:1::/64 254",
                "route add 2001:db8:1::/64 254",
                "route replace 2001:db8:1::/64 254"
            ]
        );
        let devs: Vec<Option<u32>> = s.routes.values().map(|r| r.index).collect();
        assert_eq!(devs, [Some(6), Some(7)], "dev 5 was the one replaced");
        // An appended gateway route: the multipath message (new path first) takes in the
        // single route.
        out.clear();
        s.new_route(route6("2001:db8:2::", 5, Some("fe80::2")), &mut out);
        let mut mp = route6("2001:db8:2::", 0, None);
        mp.index = None;
        mp.nexthops = vec![nh("fe80::3", 6), nh("fe80::2", 5)];
        s.new_route_flagged(mp.clone(), NLM_F_APPEND | 0x400, &mut out);
        assert_eq!(
            events(&out),
            [
                "route add 2001:db8:2::/64 254",
                "route replace 2001:db8:2::/64 254"
            ]
        );
        mp.nexthops.reverse();
        let mut kernel = vec![
            route6("2001:db8:1::", 7, None),
            route6("2001:db8:1::", 6, None),
            mp.clone(),
        ];
        let mut check = s.clone();
        check.resync(dumped(&kernel), &mut out);
        assert_eq!(
            out.len(),
            2,
            "nothing differs from the kernel's dump: {out:?}"
        );
        // One path deleted: one left, a single-path route as the dump shows it.
        s.del_route(&route6("2001:db8:2::", 5, Some("fe80::2")), &mut out);
        assert_eq!(events(&out[2..]), ["route replace 2001:db8:2::/64 254"]);
        kernel[2] = route6("2001:db8:2::", 6, Some("fe80::3"));
        s.resync(dumped(&kernel), &mut out);
        assert_eq!(
            out.len(),
            3,
            "nothing differs from the kernel's dump: {out:?}"
        );
    }
}
