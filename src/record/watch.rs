//! The records of lwatch: links, addresses, routes, nexthops, neighbours, rules, resyncs.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// `link` (lwatch): `event` is `new`, `del`, `present` (`--dump`), `rename`, `up`/`down`
/// (admin state), `carrier` (on or off: see `carrier`), `oper`, `mtu` or `address`. The
/// interface's whole state after the change follows, so each record stands alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchLink {
    pub event: String,
    pub ifname: String,
    pub ifindex: u32,
    /// The name before a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_ifname: Option<String>,
    pub oper: String,
    pub carrier: bool,
    pub admin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The link-layer (MAC) address, as `ip link` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `true` when the change was found by re-reading the state after lost notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resync: Option<bool>,
}

/// `addr` (lwatch): `event` is `add`, `del`, `present`, or `change` (the address's flags
/// changed: `tentative` gone after DAD, `dadfailed`, `deprecated`, `dynamic`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchAddr {
    pub event: String,
    pub ifname: String,
    pub ifindex: u32,
    /// `inet` or `inet6`, as `ip -j addr` names them.
    pub family: String,
    pub addr: IpAddr,
    pub prefixlen: u8,
    /// `global`, `site`, `link`, `host`, `nowhere`, or the number.
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The address's flags (`IFA_FLAGS`), named and ordered as `ip addr` prints them
    /// (`tentative`, `dadfailed`, `deprecated`, `dynamic` for an address with a finite valid
    /// lifetime, `secondary`, `nodad`, …); empty when `ip` prints none.
    #[serde(default)]
    pub flags: Vec<String>,
    /// `change` only: the flags before the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_flags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resync: Option<bool>,
}

/// One nexthop of a multipath route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchNexthop {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
    pub weight: u16,
}

/// `route` (lwatch): `event` is `add`, `replace`, `del` or `present`. A `replace` names the
/// route it took the place of in `old_dev`, `old_ifindex`, `old_gateway` or `old_nexthops`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchRoute {
    pub event: String,
    pub family: String,
    /// The destination prefix, e.g. `10.1.0.0/24` or `::/0` for a default route.
    pub dst: String,
    /// The routing table (`main` is 254, `local` 255).
    pub table: u32,
    /// `unicast`, `local`, `broadcast`, `multicast`, `blackhole`, `unreachable`, `prohibit`,
    /// `throw`, `anycast`, …
    #[serde(rename = "route_type")]
    pub kind: String,
    /// Who installed it: `kernel`, `boot`, `static`, `ra`, `dhcp`, … or the number.
    pub protocol: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Every path of a multipath route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nexthops: Option<Vec<WatchNexthop>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefsrc: Option<IpAddr>,
    /// A source prefix (IPv6 source-specific routes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos: Option<u8>,
    /// `replace` only: the replaced route's device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_dev: Option<String>,
    /// `replace` only: the replaced route's interface index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_ifindex: Option<u32>,
    /// `replace` only: the replaced route's gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_gateway: Option<IpAddr>,
    /// `replace` only: the replaced route's paths, when it was a multipath route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_nexthops: Option<Vec<WatchNexthop>>,
    /// `true` for a deletion the kernel made without a notification of the route's own:
    /// IPv4 routes go silently with their link (found by re-reading the routes), and routes
    /// on a nexthop object go with it (IPv4 silently; lwatch writes IPv6 ones then too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flushed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resync: Option<bool>,
    /// The nexthop object the route uses (`nhid`); its path (`dev` and `gateway`, or
    /// `nexthops` for a group) is the object's, resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nhid: Option<u32>,
    /// `replace` only: the nexthop object of the route replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_nhid: Option<u32>,
}

/// One member of a nexthop group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchGroupMember {
    pub id: u32,
    pub weight: u16,
}

/// `nexthop` (lwatch): `event` is `add`, `replace` (`ip nexthop replace`, or a group the
/// kernel took a deleted member out of; the `old_` members say what it was), `del` or
/// `present`. A single nexthop has a `gateway` and/or a `dev`, or is a `blackhole`; a group
/// has `group` (member ids and weights) and `group_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchNexthopObject {
    pub event: String,
    pub id: u32,
    /// `inet` or `inet6`; absent for a group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifindex: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blackhole: Option<bool>,
    /// For the bridge's forwarding database (VXLAN), not routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fdb: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Vec<WatchGroupMember>>,
    /// `mpath` or `resilient`, for a group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_type: Option<String>,
    pub protocol: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_gateway: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_ifindex: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_blackhole: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_group: Option<Vec<WatchGroupMember>>,
    /// `del` only: the kernel removed the object without a notification (its link went down
    /// or away) or a group with its last member; lwatch found it by re-reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flushed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resync: Option<bool>,
}

/// `neigh` (lwatch): `event` is `add`, `change` (its state, link-layer address or router flag
/// changed: `old_state`, `old_lladdr`), `del` or `present`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchNeigh {
    pub event: String,
    pub family: String,
    pub dst: IpAddr,
    pub ifname: String,
    pub ifindex: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lladdr: Option<String>,
    /// As `ip neigh` prints it: `REACHABLE`, `STALE`, `DELAY`, `PROBE`, `INCOMPLETE`, `FAILED`,
    /// `NOARP`, `PERMANENT`, `NONE`.
    pub state: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_state: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_lladdr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resync: Option<bool>,
}

/// `rule` (lwatch): `event` is `add`, `del` or `present`: one policy routing rule, its
/// selector and its action, as `ip rule` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchRule {
    pub event: String,
    pub family: String,
    pub priority: u32,
    /// `true` for `not`: the selector is inverted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not: Option<bool>,
    /// The source prefix; absent for `from all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwmask: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oif: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l3mdev: Option<bool>,
    /// `start-end`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uidrange: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipproto: Option<u8>,
    /// A port, or `start-end`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dport: Option<String>,
    /// `lookup`, `goto`, `nop`, `blackhole`, `unreachable`, `prohibit`.
    pub action: String,
    /// `lookup` only: the table (main 254, local 255, default 253).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// `goto` only: the priority of the rule it jumps to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goto: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppress_prefixlength: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppress_ifgroup: Option<u32>,
    /// Who installed it: `kernel`, `boot`, `static`, … or the number.
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resync: Option<bool>,
}

/// `resync` (lwatch): notifications were lost (the receive buffer overflowed); links,
/// addresses and routes were re-read and what changed was written with `"resync":true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchResync {
    /// `overflow`.
    pub reason: String,
    /// Records written with `"resync":true` before this one.
    pub changes: u64,
    /// The receive buffer the kernel granted, in bytes.
    pub rcvbuf: u64,
}
