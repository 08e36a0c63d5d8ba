//! The kernel's links, addresses and routes as lwatch last saw them, and the records each
//! message or re-read turns into. No I/O: messages go in decoded, bodies come out.
//!
//! The kernel sends `RTM_NEWLINK` for many changes lwatch does not report and repeats
//! `RTM_NEWADDR` for addresses it already has, so every message is diffed against this state
//! and only real changes become records. Routes are in `super::routes`.
#![forbid(unsafe_code)]

use crate::netlink::neigh::Neigh;
use crate::netlink::nexthop::NexthopObject;
use crate::netlink::parse::{oper_name, Link};
use crate::netlink::rt::{Addr, Route, AF_INET};
use crate::netlink::rule::Rule;
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

/// Where a route sits in the kernel's FIB: family, table, destination and its length, source
/// and its length, TOS, metric. One place may hold several routes: IPv4 keeps every route
/// `ip route append`/`prepend` put there (they differ in gateway, device, type, metrics …;
/// only the first is used), IPv6 one per device and gateway (`ff00::/8` on every link; a
/// device route and a gateway route on one link), its ECMP siblings as one multipath route.
pub type Place = (u8, u32, IpAddr, u8, Option<IpAddr>, u8, u8, Option<u32>);

pub fn place(r: &Route) -> Place {
    (
        r.family, r.table, r.dst, r.dst_len, r.src, r.src_len, r.tos, r.priority,
    )
}

/// Everything lwatch follows.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub links: BTreeMap<u32, LinkInfo>,
    pub addrs: BTreeMap<AddrKey, Addr>,
    /// The routes of each place, in the kernel's order (a replace takes the first).
    pub routes: BTreeMap<Place, Vec<Route>>,
    /// The last name of every interface seen, kept after it goes, so routes flushed with a
    /// deleted link still name it.
    pub names: BTreeMap<u32, String>,
    /// Nexthop objects by id (see [`super::nexthop`]).
    pub nexthops: BTreeMap<u32, NexthopObject>,
    /// The places that hold a route on each object, so that an object's change finds its
    /// routes without a look at every route (kept by [`State::settle`] and
    /// [`State::push_dumped`]).
    pub on_object: BTreeMap<u32, std::collections::BTreeSet<Place>>,
    /// Neighbour entries (`--type neigh` only; see [`super::tables`]).
    pub neighs: BTreeMap<NeighKey, Neigh>,
    /// Policy routing rules in the kernel's order (`--type rule` only).
    pub rules: Vec<Rule>,
}

/// A neighbour entry's identity: interface, address, and whether it is a proxy entry.
pub type NeighKey = (u32, IpAddr, bool);

pub(super) fn family(f: u8) -> &'static str {
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

/// `IFA_F_*` flags as `ip addr` prints them, in its order: `dynamic` where `permanent` is not
/// set, `temporary` for an IPv6 `secondary`; bits `ip` has no name for as one hex number.
pub fn addr_flag_names(family_: u8, flags: u32) -> Vec<String> {
    const NAMES: [(u32, &str); 12] = [
        (0x01, "secondary"),
        (0x02, "nodad"),
        (0x04, "optimistic"),
        (0x08, "dadfailed"),
        (0x10, "home"),
        (0x20, "deprecated"),
        (0x40, "tentative"),
        (0x80, "dynamic"),
        (0x100, "mngtmpaddr"),
        (0x200, "noprefixroute"),
        (0x400, "autojoin"),
        (0x800, "stable-privacy"),
    ];
    let mut out = Vec::new();
    for (bit, name) in NAMES {
        let set = flags & bit != 0;
        match bit {
            // IFA_F_PERMANENT: ip prints its absence.
            0x80 if !set => out.push(name.to_string()),
            0x80 => {}
            0x01 if set && family_ != AF_INET => out.push("temporary".into()),
            _ if set => out.push(name.to_string()),
            _ => {}
        }
    }
    let rest = flags & !0xfff;
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    out
}

pub(super) fn protocol_name(p: u8) -> String {
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
    pub(super) fn name(&self, index: u32) -> String {
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
            flags: addr_flag_names(a.family, a.flags),
            old_flags: None,
            resync: None,
        })
    }

    fn nexthops(&self, r: &Route) -> Option<Vec<WatchNexthop>> {
        (!r.nexthops.is_empty()).then(|| {
            r.nexthops
                .iter()
                .map(|n| WatchNexthop {
                    gateway: n.gateway,
                    dev: n.index.map(|i| self.name(i)),
                    ifindex: n.index,
                    weight: n.weight,
                })
                .collect()
        })
    }

    pub fn route_body(&self, event: &str, r: &Route) -> Body {
        let nexthops = self.nexthops(r);
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
            old_dev: None,
            old_ifindex: None,
            old_gateway: None,
            old_nexthops: None,
            flushed: None,
            resync: None,
            nhid: r.nhid,
            old_nhid: None,
        })
    }

    /// A `replace` of `old` by `r`: `r`, with what identified `old` (its device, gateway or
    /// paths), so a consumer knows which route of the place went.
    pub fn replace_body(&self, r: &Route, old: &Route) -> Body {
        let mut body = self.route_body("replace", r);
        if let Body::WatchRoute(w) = &mut body {
            w.old_dev = old.index.map(|i| self.name(i));
            w.old_ifindex = old.index;
            w.old_gateway = old.gateway;
            w.old_nexthops = self.nexthops(old);
            w.old_nhid = old.nhid;
        }
        body
    }

    /// Everything as `present` records: links, addresses, nexthop objects, routes,
    /// neighbours, rules.
    pub fn present(&self, out: &mut Vec<Body>) {
        for info in self.links.values() {
            out.push(self.link_body("present", info));
        }
        for a in self.addrs.values() {
            out.push(self.addr_body("present", a));
        }
        for nh in self.nexthops.values() {
            out.push(self.nexthop_body("present", nh));
        }
        for r in self.routes.values().flatten() {
            out.push(self.route_body("present", r));
        }
        for n in self.neighs.values() {
            out.push(self.neigh_body("present", n));
        }
        for r in &self.rules {
            out.push(self.rule_body("present", r));
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

    /// An `RTM_NEWADDR`: an add, a `change` of the flags of an address already there (DAD
    /// ended or failed, the preferred lifetime ran out or was renewed, a lifetime became
    /// finite or forever), or nothing: a repeat (`ip addr change` of the same, a rename, a
    /// lifetime changed but still finite) only refreshes the label, scope and lifetimes.
    pub fn new_addr(&mut self, a: Addr, out: &mut Vec<Body>) {
        let key = (a.index, a.addr, a.prefixlen);
        match self.addrs.insert(key, a.clone()) {
            None => out.push(self.addr_body("add", &a)),
            Some(old) if old.flags != a.flags => {
                let mut body = self.addr_body("change", &a);
                if let Body::WatchAddr(w) = &mut body {
                    w.old_flags = Some(addr_flag_names(old.family, old.flags));
                }
                out.push(body);
            }
            Some(_) => {}
        }
    }

    /// An `RTM_DELADDR`: a `del`, also of an address lwatch never had. The kernel announces
    /// no `RTM_NEWADDR` for an IPv6 link-local address while it is tentative, but announces
    /// its deletion (a link deleted or taken down during DAD): a watch that read it from the
    /// kernel at its start reports it deleted, so a watch running all along does too.
    pub fn del_addr(&mut self, a: &Addr, out: &mut Vec<Body>) {
        let old = self.addrs.remove(&(a.index, a.addr, a.prefixlen));
        out.push(self.addr_body("del", old.as_ref().unwrap_or(a)));
    }

    /// Replaces the whole state with a fresh read, writing what differs as ordinary records:
    /// links first (so later records name them), then address and route removals, then
    /// additions and replaced routes, then links that went away. In a place where paths went
    /// and others came, each that came replaces one that went (in order): the read cannot tell
    /// a replace from a `del` and an `add`, and a `del` would say a route was deleted that was
    /// only replaced.
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
        // Objects before the routes on them; the routes are diffed whole below.
        let old_nexthops = std::mem::replace(&mut self.nexthops, fresh.nexthops);
        for nh in self.nexthops.values() {
            out.extend(self.nexthop_change(old_nexthops.get(&nh.id), nh));
        }
        for (id, nh) in &old_nexthops {
            if !self.nexthops.contains_key(id) {
                out.push(self.nexthop_body("del", nh));
            }
        }
        let places: std::collections::BTreeSet<Place> = self
            .routes
            .keys()
            .chain(fresh.routes.keys())
            .copied()
            .collect();
        let old = std::mem::replace(&mut self.routes, fresh.routes);
        self.on_object = fresh.on_object;
        let mut later = Vec::new();
        for key in places {
            let before = old.get(&key).map(Vec::as_slice).unwrap_or_default();
            let now = self.routes.get(&key).map(Vec::as_slice).unwrap_or_default();
            let mut changes = Vec::new();
            self.diff_paths(&visible(before), &visible(now), None, true, &mut changes);
            for body in changes {
                match &body {
                    Body::WatchRoute(w) if w.event == "del" => out.push(body),
                    _ => later.push(body),
                }
            }
        }
        for a in fresh.addrs.into_values() {
            self.new_addr(a, out);
        }
        out.append(&mut later);
        let old_neighs = std::mem::replace(&mut self.neighs, fresh.neighs);
        for (key, n) in &old_neighs {
            if !self.neighs.contains_key(key) {
                out.push(self.neigh_body("del", n));
            }
        }
        for (key, n) in &self.neighs {
            out.extend(self.neigh_change(old_neighs.get(key), n));
        }
        let old_rules = std::mem::replace(&mut self.rules, fresh.rules);
        for r in old_rules.iter().filter(|r| !self.rules.contains(r)) {
            out.push(self.rule_body("del", r));
        }
        for r in self.rules.iter().filter(|r| !old_rules.contains(r)) {
            out.push(self.rule_body("add", r));
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

pub use super::routes::{normalize, shift, visible};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::rt::{Nexthop, NLM_F_APPEND, NLM_F_REPLACE};

    /// `nlmsg_flags` of the kernel's notifications: a route in a place of its own
    /// (`NLM_F_EXCL | NLM_F_CREATE`), `ip route prepend` (`NLM_F_CREATE`), `ip route append`.
    const FRESH: u16 = 0x600;
    const PREPEND: u16 = 0x400;
    const APPEND: u16 = NLM_F_APPEND | 0x400;

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
                Body::WatchRoute(r) => {
                    let mut t = format!("route {} {} {}", r.event, r.dst, r.table);
                    if let Some(d) = &r.dev {
                        t += &format!(" dev {d}");
                    }
                    if let Some(g) = r.gateway {
                        t += &format!(" via {g}");
                    }
                    for n in r.nexthops.iter().flatten() {
                        t += &format!(" nh {}", n.gateway.map_or("-".into(), |g| g.to_string()));
                    }
                    if r.event == "replace" {
                        t += " (was";
                        if let Some(d) = &r.old_dev {
                            t += &format!(" dev {d}");
                        }
                        if let Some(g) = r.old_gateway {
                            t += &format!(" via {g}");
                        }
                        for n in r.old_nexthops.iter().flatten() {
                            t +=
                                &format!(" nh {}", n.gateway.map_or("-".into(), |g| g.to_string()));
                        }
                        t += ")";
                    }
                    t
                }
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
            metrics: None,
            nhid: None,
        }
    }

    fn via(mut r: Route, gateway: &str) -> Route {
        r.gateway = Some(gateway.parse().unwrap());
        r
    }

    fn add(s: &mut State, r: Route, out: &mut Vec<Body>) {
        s.new_route_flagged(r, FRESH, out);
    }

    /// What a dump of the kernel's routes gives, as a state.
    fn dumped(routes: &[Route]) -> State {
        let mut s = State::default();
        for r in routes {
            s.push_dumped(r.clone());
        }
        s
    }

    /// Re-reading `kernel` after `s` changes nothing: `s` holds what the kernel holds.
    fn same_as_kernel(s: &State, kernel: &[Route]) {
        assert_eq!(s.on_object, s.on_object_rebuilt(), "the object index");
        let mut check = s.clone();
        let mut out = Vec::new();
        check.resync(dumped(kernel), &mut out);
        assert!(
            out.is_empty(),
            "differs from the kernel: {:?}",
            events(&out)
        );
        assert_eq!(s.routes, dumped(kernel).routes, "in the kernel's order");
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
            flags: 0x80,
        };
        s.new_addr(a.clone(), &mut out);
        s.new_addr(a.clone(), &mut out);
        let r = route("10.2.0.0", 24, 1000, 5);
        add(&mut s, r.clone(), &mut out);
        add(&mut s, r.clone(), &mut out);
        let mut r2 = r.clone();
        r2.index = None;
        r2.nexthops = vec![Nexthop {
            gateway: None,
            index: Some(6),
            weight: 1,
        }];
        s.new_route_flagged(r2, NLM_F_REPLACE, &mut out);
        s.del_addr(&a, &mut out);
        // The deletion of an address never announced (an IPv6 link-local still tentative) is
        // a del all the same.
        let unseen = Addr {
            addr: "10.1.0.9".parse().unwrap(),
            ..a.clone()
        };
        s.del_addr(&unseen, &mut out);
        assert_eq!(
            events(&out),
            [
                "addr add 10.1.0.1/24",
                "route add 10.2.0.0/24 1000 dev 5",
                "route replace 10.2.0.0/24 1000 nh - (was dev 5)",
                "addr del 10.1.0.1/24",
                "addr del 10.1.0.9/24"
            ]
        );
        assert!(s.addrs.is_empty());
    }

    #[test]
    fn address_flags_are_named_as_ip_prints_them_and_a_change_of_them_is_a_record() {
        use crate::netlink::rt::AF_INET6;
        assert_eq!(addr_flag_names(AF_INET, 0x80), Vec::<String>::new());
        assert_eq!(addr_flag_names(AF_INET, 0x01), ["secondary", "dynamic"]);
        assert_eq!(addr_flag_names(AF_INET6, 0x01 | 0x80), ["temporary"]);
        assert_eq!(addr_flag_names(AF_INET6, 0xc8), ["dadfailed", "tentative"]);
        assert_eq!(addr_flag_names(AF_INET6, 0x20), ["deprecated", "dynamic"]);
        assert_eq!(
            addr_flag_names(AF_INET6, 0x1280),
            ["noprefixroute", "0x1000"]
        );
        let mut s = State::default();
        let mut out = Vec::new();
        let a = |flags| Addr {
            family: AF_INET6,
            prefixlen: 64,
            scope: 0,
            index: 5,
            addr: "fd01::5".parse().unwrap(),
            label: None,
            flags,
        };
        s.new_addr(a(0xc0), &mut out);
        s.new_addr(a(0xc0), &mut out);
        s.new_addr(a(0x80), &mut out);
        s.new_addr(a(0x20), &mut out);
        s.new_addr(a(0x20), &mut out);
        let got: Vec<(String, Vec<String>, Option<Vec<String>>)> = out
            .iter()
            .map(|b| match b {
                Body::WatchAddr(w) => (w.event.clone(), w.flags.clone(), w.old_flags.clone()),
                _ => panic!(),
            })
            .collect();
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            [
                ("add".into(), v(&["tentative"]), None),
                ("change".into(), v(&[]), Some(v(&["tentative"]))),
                ("change".into(), v(&["deprecated", "dynamic"]), Some(v(&[]))),
            ]
        );
    }

    /// `ip route add/append/prepend/replace/del` of one IPv4 destination, as this kernel
    /// notifies and orders them (checked with a raw netlink listener and `ip route show`).
    #[test]
    fn ipv4_routes_appended_to_one_place_are_each_kept_and_a_replace_takes_the_first() {
        let mut s = State::default();
        let mut out = Vec::new();
        let r = |g: &str| via(route("10.9.0.0", 24, 254, 3), g);
        s.new_route_flagged(r("10.1.0.2"), FRESH, &mut out);
        s.new_route_flagged(r("10.1.0.3"), APPEND, &mut out);
        s.new_route_flagged(r("10.1.0.4"), PREPEND, &mut out);
        s.new_route_flagged(r("10.1.0.5"), NLM_F_REPLACE, &mut out);
        // The same path with other metrics is one more route, which records do not show
        // while the first of its path is there.
        let mut mtu = r("10.1.0.2");
        mtu.metrics = Some(vec![8, 0, 2, 0, 0x78, 5, 0, 0]);
        s.new_route_flagged(mtu.clone(), APPEND, &mut out);
        assert_eq!(
            events(&out),
            [
                "route add 10.9.0.0/24 254 dev 3 via 10.1.0.2",
                "route add 10.9.0.0/24 254 dev 3 via 10.1.0.3",
                "route add 10.9.0.0/24 254 dev 3 via 10.1.0.4",
                "route replace 10.9.0.0/24 254 dev 3 via 10.1.0.5 (was dev 3 via 10.1.0.4)",
            ]
        );
        same_as_kernel(
            &s,
            &[r("10.1.0.5"), r("10.1.0.2"), r("10.1.0.3"), mtu.clone()],
        );
        // Deleting one leaves the others; when the first of a path goes, the next one of it
        // is what the path shows (a replace), and the path goes with the last.
        out.clear();
        s.del_route(&r("10.1.0.3"), &mut out);
        s.del_route(&r("10.1.0.2"), &mut out);
        assert_eq!(
            events(&out),
            [
                "route del 10.9.0.0/24 254 dev 3 via 10.1.0.3",
                "route replace 10.9.0.0/24 254 dev 3 via 10.1.0.2 (was dev 3 via 10.1.0.2)",
            ]
        );
        same_as_kernel(&s, &[r("10.1.0.5"), mtu.clone()]);
        out.clear();
        s.del_route(&mtu, &mut out);
        assert_eq!(
            events(&out),
            ["route del 10.9.0.0/24 254 dev 3 via 10.1.0.2"]
        );
        same_as_kernel(&s, &[r("10.1.0.5")]);
    }

    /// A read ahead of the notifications (taken after the changes they announce): applying
    /// them again changes nothing, or only passes through the states the kernel passed.
    #[test]
    fn ipv4_notifications_applied_to_a_read_that_already_shows_them_end_at_the_kernels() {
        let r = |g: &str| via(route("10.9.0.0", 24, 254, 3), g);
        // `ip route add ... via .2; ip route replace ... via .3`, read after both.
        let mut s = dumped(&[r("10.1.0.3")]);
        let mut out = Vec::new();
        s.new_route_flagged(r("10.1.0.2"), FRESH, &mut out);
        s.new_route_flagged(r("10.1.0.3"), NLM_F_REPLACE, &mut out);
        same_as_kernel(&s, &[r("10.1.0.3")]);
        // ... then `ip route prepend ... via .4`, read after that too.
        let mut s = dumped(&[r("10.1.0.4"), r("10.1.0.3")]);
        s.new_route_flagged(r("10.1.0.2"), FRESH, &mut out);
        s.new_route_flagged(r("10.1.0.3"), NLM_F_REPLACE, &mut out);
        s.new_route_flagged(r("10.1.0.4"), PREPEND, &mut out);
        same_as_kernel(&s, &[r("10.1.0.4"), r("10.1.0.3")]);
        // `ip route append ... via .3; ip route del ... via .2`, read after both.
        let mut s = dumped(&[r("10.1.0.3")]);
        s.new_route_flagged(r("10.1.0.3"), APPEND, &mut out);
        s.del_route(&r("10.1.0.2"), &mut out);
        same_as_kernel(&s, &[r("10.1.0.3")]);
    }

    #[test]
    fn silently_flushed_ipv4_routes_are_deleted_from_a_reread() {
        let mut s = State::default();
        let mut out = Vec::new();
        add(&mut s, route("10.2.0.0", 24, 254, 5), &mut out);
        add(&mut s, route("10.3.0.0", 24, 254, 6), &mut out);
        add(&mut s, route("10.4.0.0", 24, 1000, 5), &mut out);
        // Two routes of one place, one through the link that goes.
        add(&mut s, route("10.5.0.0", 24, 254, 6), &mut out);
        s.new_route_flagged(route("10.5.0.0", 24, 254, 5), APPEND, &mut out);
        out.clear();
        let still = [
            route("10.3.0.0", 24, 254, 6),
            route("10.4.0.0", 24, 1000, 5),
            route("10.5.0.0", 24, 254, 6),
        ];
        let gone = s.flushed(5, &still, &mut out);
        assert_eq!(
            events(&out),
            [
                "route del 10.2.0.0/24 254 dev 5",
                "route del 10.5.0.0/24 254 dev 5"
            ]
        );
        assert_eq!(gone.len(), 2);
        let Body::WatchRoute(r) = &out[0] else {
            panic!()
        };
        assert_eq!(r.flushed, Some(true));
        same_as_kernel(&s, &still);
    }

    #[test]
    fn a_resync_writes_only_the_difference() {
        let mut s = State::default();
        let mut out = Vec::new();
        s.new_link(link(5, "v0", 0x1003, 1500), &mut out);
        s.new_link(link(6, "v1", 0x1003, 1500), &mut out);
        add(&mut s, route("10.2.0.0", 24, 254, 5), &mut out);
        add(&mut s, route("10.3.0.0", 24, 254, 6), &mut out);
        add(
            &mut s,
            via(route("10.4.0.0", 24, 254, 5), "10.1.0.2"),
            &mut out,
        );
        out.clear();
        let mut fresh = State::default();
        fresh.new_link(link(5, "v0", 0x1003, 9000), &mut Vec::new());
        fresh.push_dumped(route("10.2.0.0", 24, 254, 5));
        fresh.push_dumped(via(route("10.4.0.0", 24, 254, 5), "10.1.0.3"));
        fresh.push_dumped(route("10.9.0.0", 24, 254, 5));
        s.resync(fresh, &mut out);
        assert_eq!(
            events(&out),
            [
                "link mtu v0",
                "route del 10.3.0.0/24 254 dev v1",
                "route replace 10.4.0.0/24 254 dev v0 via 10.1.0.3 (was dev v0 via 10.1.0.2)",
                "route add 10.9.0.0/24 254 dev v0",
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

    #[test]
    fn ipv6_replaces_and_appends_take_the_place_of_the_routes_they_replace() {
        let mut s = State::default();
        let mut out = Vec::new();
        // A device route moved to another device: the first of its metric is replaced.
        s.new_route_flagged(route6("2001:db8:1::", 5, None), FRESH, &mut out);
        s.new_route_flagged(route6("2001:db8:1::", 6, None), APPEND, &mut out);
        s.new_route_flagged(route6("2001:db8:1::", 7, None), NLM_F_REPLACE, &mut out);
        assert_eq!(
            events(&out),
            [
                "route add 2001:db8:1::/64 254 dev 5",
                "route add 2001:db8:1::/64 254 dev 6",
                "route replace 2001:db8:1::/64 254 dev 7 (was dev 5)"
            ]
        );
        // An appended gateway route: the multipath message (new path first) takes in the
        // single route.
        out.clear();
        s.new_route_flagged(route6("2001:db8:2::", 5, Some("fe80::2")), FRESH, &mut out);
        let mut mp = route6("2001:db8:2::", 0, None);
        mp.index = None;
        mp.nexthops = vec![nh("fe80::3", 6), nh("fe80::2", 5)];
        s.new_route_flagged(mp.clone(), APPEND, &mut out);
        assert_eq!(
            events(&out),
            [
                "route add 2001:db8:2::/64 254 dev 5 via fe80::2",
                "route replace 2001:db8:2::/64 254 nh fe80::2 nh fe80::3 (was dev 5 via fe80::2)"
            ]
        );
        mp.nexthops.reverse();
        let mut kernel = vec![
            route6("2001:db8:1::", 7, None),
            route6("2001:db8:1::", 6, None),
            mp.clone(),
        ];
        same_as_kernel(&s, &kernel);
        // One path deleted: one left, a single-path route as the dump shows it.
        out.clear();
        s.del_route(&route6("2001:db8:2::", 5, Some("fe80::2")), &mut out);
        assert_eq!(
            events(&out),
            ["route replace 2001:db8:2::/64 254 dev 6 via fe80::3 (was nh fe80::2 nh fe80::3)"]
        );
        kernel[2] = route6("2001:db8:2::", 6, Some("fe80::3"));
        same_as_kernel(&s, &kernel);
    }

    /// A device route and a gateway route through the same link are two routes of one place
    /// (`fib6_add_rt2node` keeps both: neither duplicates the other's nexthop, and only
    /// gateway routes are ECMP siblings). Deleting one leaves the other.
    #[test]
    fn ipv6_routes_of_one_place_are_told_apart_by_device_and_gateway() {
        let mut s = State::default();
        let mut out = Vec::new();
        let dev = route6("fd09::", 3, None);
        let gw = route6("fd09::", 3, Some("fd01::2"));
        let other = route6("fd09::", 4, None);
        s.new_route_flagged(dev.clone(), FRESH, &mut out);
        s.new_route_flagged(gw.clone(), APPEND, &mut out);
        s.new_route_flagged(other.clone(), APPEND, &mut out);
        // Repeated, it is no change; with another protocol, an update in place.
        s.new_route_flagged(gw.clone(), APPEND, &mut out);
        let mut gw_static = gw.clone();
        gw_static.protocol = 3;
        s.new_route_flagged(gw_static.clone(), APPEND, &mut out);
        assert_eq!(
            events(&out),
            [
                "route add fd09::/64 254 dev 3",
                "route add fd09::/64 254 dev 3 via fd01::2",
                "route add fd09::/64 254 dev 4",
                "route replace fd09::/64 254 dev 3 via fd01::2 (was dev 3 via fd01::2)",
            ]
        );
        same_as_kernel(&s, &[dev.clone(), gw_static.clone(), other.clone()]);
        out.clear();
        s.del_route(&dev, &mut out);
        assert_eq!(events(&out), ["route del fd09::/64 254 dev 3"]);
        same_as_kernel(&s, &[gw_static.clone(), other.clone()]);
        out.clear();
        s.del_route(&gw_static, &mut out);
        s.del_route(&other, &mut out);
        s.del_route(&other, &mut out);
        assert_eq!(
            events(&out),
            [
                "route del fd09::/64 254 dev 3 via fd01::2",
                "route del fd09::/64 254 dev 4"
            ]
        );
        assert!(s.routes.is_empty());
    }
}
