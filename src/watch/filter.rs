//! Which records lwatch writes: `--type`, `--interface`, `--table`, `--dst`, `--family`.
#![forbid(unsafe_code)]

use super::args::{Args, Kind};
use crate::record::{Body, WatchNexthop};
use anyhow::Result;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::ffi::CString;

/// What the filters let through.
pub(super) struct Filter {
    types: BTreeSet<Kind>,
    interface: Option<CString>,
    table: Option<u32>,
    dst: Option<IpNet>,
    family: Option<&'static str>,
}

impl Filter {
    pub(super) fn new(args: &Args) -> Result<Filter> {
        let interface = match &args.interface {
            Some(g) => Some(
                CString::new(g.as_str())
                    .map_err(|_| anyhow::anyhow!("interface pattern {g:?} contains a NUL byte"))?,
            ),
            None => None,
        };
        Ok(Filter {
            types: args.types.iter().copied().collect(),
            interface,
            table: args.table,
            dst: args.dst,
            family: args
                .family
                .as_deref()
                .map(|f| if f == "4" { "inet" } else { "inet6" }),
        })
    }

    pub(super) fn name_matches(&self, name: Option<&str>) -> bool {
        let Some(glob) = &self.interface else {
            return true;
        };
        name.is_some_and(|name| crate::net::glob::matches(glob, name))
    }

    pub(super) fn pass(&self, body: &Body) -> bool {
        let kind = match body {
            Body::WatchLink(_) => Kind::Link,
            Body::WatchAddr(_) => Kind::Addr,
            Body::WatchRoute(_) => Kind::Route,
            Body::WatchNexthopObject(_) => Kind::Nexthop,
            Body::WatchNeigh(_) => Kind::Neigh,
            Body::WatchRule(_) => Kind::Rule,
            _ => return true,
        };
        // Without --type: everything but neighbours and rules, which are followed only when
        // asked for.
        let asked = if self.types.is_empty() {
            !matches!(kind, Kind::Neigh | Kind::Rule)
        } else {
            self.types.contains(&kind)
        };
        if !asked {
            return false;
        }
        match body {
            // A rename passes by either name: a watcher of the old one learns where it went.
            Body::WatchLink(l) => {
                self.name_matches(Some(&l.ifname))
                    || (l.old_ifname.is_some() && self.name_matches(l.old_ifname.as_deref()))
            }
            Body::WatchAddr(a) => {
                self.family.is_none_or(|f| f == a.family) && self.name_matches(Some(&a.ifname))
            }
            Body::WatchRoute(r) => {
                // A replace passes by the route it replaced too: a route moved off the
                // interface is news to a watcher of it.
                let hops = |h: &Option<Vec<WatchNexthop>>| {
                    h.iter()
                        .flatten()
                        .any(|n| self.name_matches(n.dev.as_deref()))
                };
                let dev = self.interface.is_none()
                    || self.name_matches(r.dev.as_deref())
                    || hops(&r.nexthops)
                    || (r.old_dev.is_some() && self.name_matches(r.old_dev.as_deref()))
                    || hops(&r.old_nexthops);
                let dst = self
                    .dst
                    .is_none_or(|net| r.dst.parse::<IpNet>().is_ok_and(|d| net.contains(&d)));
                dev && dst
                    && self.table.is_none_or(|t| t == r.table)
                    && self.family.is_none_or(|f| f == r.family)
            }
            // A group has no family and no device of its own: it passes those filters.
            Body::WatchNexthopObject(n) => {
                let family = n.family.as_deref();
                (family.is_none() || self.family.is_none_or(|f| Some(f) == family))
                    && (n.group.is_some()
                        || self.interface.is_none()
                        || self.name_matches(n.dev.as_deref()))
            }
            Body::WatchNeigh(n) => {
                self.family.is_none_or(|f| f == n.family) && self.name_matches(Some(&n.ifname))
            }
            Body::WatchRule(r) => {
                self.family.is_none_or(|f| f == r.family)
                    && (self.interface.is_none()
                        || self.name_matches(r.iif.as_deref())
                        || self.name_matches(r.oif.as_deref()))
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    fn filter(args: &[&str]) -> Filter {
        let args = Args::try_parse_from([&["lwatch"], args].concat()).unwrap();
        Filter::new(&args).unwrap()
    }

    fn addr(ifname: &str, family: &str, addr: &str) -> Body {
        Body::WatchAddr(
            serde_json::from_value(json!({"event": "add", "ifname": ifname, "ifindex": 3,
                "family": family, "addr": addr, "prefixlen": 24, "scope": "global"}))
            .unwrap(),
        )
    }

    fn route(dst: &str, table: u32, dev: &str, old_dev: Option<&str>) -> Body {
        Body::WatchRoute(
            serde_json::from_value(json!({"event": "add", "family": "inet", "dst": dst,
                "table": table, "route_type": "unicast", "protocol": "static",
                "scope": "global", "dev": dev, "old_dev": old_dev}))
            .unwrap(),
        )
    }

    fn link(ifname: &str, old_ifname: Option<&str>) -> Body {
        Body::WatchLink(
            serde_json::from_value(json!({"event": "rename", "ifname": ifname, "ifindex": 3,
                "old_ifname": old_ifname, "oper": "up", "carrier": true, "admin": true}))
            .unwrap(),
        )
    }

    fn neigh() -> Body {
        Body::WatchNeigh(
            serde_json::from_value(json!({"event": "add", "family": "inet",
                "dst": "10.0.0.2", "ifname": "eth0", "ifindex": 3, "state": ["REACHABLE"]}))
            .unwrap(),
        )
    }

    #[test]
    fn neighbours_pass_only_when_asked_for() {
        assert!(filter(&[]).pass(&addr("eth0", "inet", "10.0.0.1")));
        assert!(!filter(&[]).pass(&neigh()));
        assert!(filter(&["--type", "neigh"]).pass(&neigh()));
        assert!(!filter(&["--type", "neigh"]).pass(&addr("eth0", "inet", "10.0.0.1")));
    }

    #[test]
    fn interface_globs_match_a_rename_and_a_replace_by_either_side() {
        let f = filter(&["--interface", "veth*"]);
        assert!(f.pass(&addr("veth0", "inet", "10.0.0.1")));
        assert!(!f.pass(&addr("eth0", "inet", "10.0.0.1")));
        assert!(f.pass(&link("renamed", Some("veth1"))));
        assert!(!f.pass(&link("renamed", Some("eth1"))));
        assert!(f.pass(&route("10.1.0.0/16", 254, "eth0", Some("veth2"))));
        assert!(!f.pass(&route("10.1.0.0/16", 254, "eth0", None)));
        // Records with no interface of their own are not held back.
        assert!(f.pass(&resync_record()));
    }

    fn resync_record() -> Body {
        Body::WatchResync(crate::record::WatchResync {
            reason: "overflow".into(),
            changes: 0,
            rcvbuf: 0,
        })
    }

    #[test]
    fn family_table_and_dst_select_among_routes_and_addresses() {
        let f = filter(&["--family", "6"]);
        assert!(!f.pass(&addr("eth0", "inet", "10.0.0.1")));
        assert!(f.pass(&addr("eth0", "inet6", "2001:db8::1")));
        let f = filter(&["--table", "1000", "--dst", "10.0.0.0/8"]);
        assert!(f.pass(&route("10.1.0.0/16", 1000, "eth0", None)));
        assert!(!f.pass(&route("10.1.0.0/16", 254, "eth0", None)));
        assert!(!f.pass(&route("192.168.0.0/16", 1000, "eth0", None)));
        // A prefix wider than --dst is not inside it.
        assert!(!f.pass(&route("0.0.0.0/0", 1000, "eth0", None)));
    }
}
