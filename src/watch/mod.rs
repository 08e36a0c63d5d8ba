//! `lwatch`: link, address and route changes as the kernel announces them over rtnetlink,
//! one record per real change, with no change ever silently lost.
//!
//! - [`state`]: the links, addresses and routes last seen, and the diffing that turns
//!   messages into records;
//! - this module: the arguments, the filters, the start (read, subscribe, read again, and
//!   the changes made meanwhile: see `Reconcile`), the mio loop (signals, `-w`, `-c`), the
//!   re-reads after silent IPv4 route flushes and after lost notifications (reconciled with
//!   the notifications queued behind the loss as the start is).

pub mod exec;
pub mod nexthop;
pub mod state;
pub mod tables;

use crate::cli::{parse_count, parse_positive_duration, OutputArgs};
use crate::netlink::neigh::{getneigh_dump_request, parse_neigh, RTM_DELNEIGH, RTM_NEWNEIGH};
use crate::netlink::nexthop::{
    getnexthop_dump_request, parse_nexthop, NexthopObject, RTM_DELNEXTHOP, RTM_NEWNEXTHOP,
};
use crate::netlink::parse::{getlink_dump_request, parse_link, RTM_NEWLINK};
use crate::netlink::rt::{
    getaddr_dump_request, getroute4_dump_request, getroute6_dump_request, link_address, parse_addr,
    parse_route, walk_notifications_flagged, Route, RTM_DELADDR, RTM_DELLINK, RTM_DELROUTE,
    RTM_NEWADDR, RTM_NEWROUTE,
};
use crate::netlink::rule::{getrule_dump_request, parse_rule, RTM_DELRULE, RTM_NEWRULE};
use crate::netlink::{Received, RouteSocket, Subscription};
use crate::output::RecordWriter;
use crate::record::{Body, Record, Tags, WatchNexthop, WatchResync};
use anyhow::{Context, Result};
use clap::Parser;
use ipnet::IpNet;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use state::{place, shift, visible, LinkInfo, Place, State};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const TOOL: &str = "lwatch";

/// `RTNLGRP_LINK`, `IPV4_IFADDR`, `IPV4_ROUTE`, `IPV6_IFADDR`, `IPV6_ROUTE` (not
/// `IPV6_IFINFO`, whose partial AF_INET6 link messages would look like changes), and
/// `RTNLGRP_NEXTHOP`: routes on nexthop objects need the objects.
const GROUPS: [u32; 6] = [1, 5, 7, 9, 11, 32];
/// `RTNLGRP_NEIGH`, for `--type neigh`.
const NEIGH_GROUPS: [u32; 1] = [3];
/// `RTNLGRP_IPV4_RULE`, `RTNLGRP_IPV6_RULE`, for `--type rule`.
const RULE_GROUPS: [u32; 2] = [8, 19];

/// What lwatch follows beyond links, addresses, nexthop objects and routes: neighbours and
/// rules only when asked for (a busy host's neighbour table changes every few seconds).
#[derive(Debug, Clone, Copy, Default)]
struct Follow {
    neigh: bool,
    rule: bool,
}

impl Follow {
    fn groups(self) -> Vec<u32> {
        let mut g = GROUPS.to_vec();
        if self.neigh {
            g.extend(NEIGH_GROUPS);
        }
        if self.rule {
            g.extend(RULE_GROUPS);
        }
        g
    }
}

const EXAMPLES: &str = "\
Examples:
  lwatch
      every link, address, nexthop object and route change
  lwatch --dump -c 1
      the current state as 'present' records, then the next change
  lwatch --type route --table 1000
      routes of table 1000 only
  lwatch --type addr --family 6 --interface 'eth*'
      IPv6 addresses on the eth interfaces
  lwatch --type route --dst 10.0.0.0/8
      routes inside 10.0.0.0/8 (or equal to it)
  lwatch -w 1h --tag host=$(hostname) >> /var/log/lwatch.jsonl
  lwatch --type link --exec 'curl -sd @- http://hooks.example/lwatch'
      a webhook per link change, in order
  lwatch --dump --type neigh --interface eth0
      ARP/NDP entries of eth0 (INCOMPLETE ones too), then each change:
      REACHABLE, STALE, FAILED, ...
  lwatch --dump --type rule,route
      policy rules and routes, as they are and as they change

Records: link (event new, del, rename, up, down, carrier, oper, mtu, address, present), addr
(add, del, present, and change when an address's flags change, with old_flags; flags named
as ip prints them: tentative, dadfailed, deprecated, dynamic, ...; a lifetime change that
leaves them as they are writes nothing; a del also for an address never announced, such as
an IPv6 link-local deleted while tentative), route (add, replace, del, present; one route
per destination, table, metric and path; a replace names the route it replaced in old_dev,
old_gateway, old_nexthops or old_nhid; a route on a nexthop object has its nhid and the
object's path resolved, dev and gateway or nexthops; \"flushed\":true for routes the kernel
removed without a notice: IPv4 routes when their link went down or away, and routes on a
nexthop object that went; with --format influx the nexthops are flattened by index:
nexthop_count, nexthop0_gateway, nexthop0_dev, nexthop0_weight, ..., and old_nexthop_count,
old_nexthop0_gateway, ...), nexthop (add, replace, del, present: an object of ip nexthop, a
gateway and dev, a blackhole, or a group of ids and weights; a replace also when the kernel
takes a deleted member out of a group, with old_gateway, old_dev or old_group; flushed when
it went with its link; the routes on it follow as route records), neigh (--type neigh only:
add, change of state, lladdr or router flag with old_state, del, present; states as ip neigh
prints them: REACHABLE, STALE, DELAY, PROBE, INCOMPLETE, FAILED, NOARP, PERMANENT), rule
(--type rule only: add, del, present), and resync after the receive buffer overflowed (the
records before it marked \"resync\":true are what changed meanwhile). --table and --dst
select among routes, --family among addresses, routes, nexthop objects, neighbours and
rules; --interface passes a nexthop object by its dev (groups always), a neighbour by its
interface, a rule by its iif or oif; other records pass them.

Exit status: 0 the run ended (count, duration, or SIGINT, SIGTERM or SIGHUP), 2 usage or system
error.";

/// The record kinds lwatch writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    Link,
    Addr,
    Route,
    /// Nexthop objects (`ip nexthop`).
    Nexthop,
    /// Neighbour entries (ARP, NDP): only when asked for.
    Neigh,
    /// Policy routing rules: only when asked for.
    Rule,
}

/// Command-line arguments of `lwatch`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lwatch",
    version,
    about = "Netlink monitor: link, address, nexthop object and route changes (neighbours, rules)",
    long_about = "Follows the kernel's link, address, nexthop object and route changes over \
rtnetlink (the groups of links, IPv4 and IPv6 addresses, IPv4 and IPv6 routes, nexthop objects; \
with --type neigh or rule also neighbours and policy rules) and writes one record per real \
change: the state of every interface, address, object and route is kept, so repeated or \
unrelated kernel messages write nothing. Routes the kernel removes or changes without a \
notification are reported from what lwatch knows: IPv4 routes when their link goes down or is \
deleted (from a re-read), routes on a nexthop object that is deleted or flushed with its link, \
routes on a group that lost a member. When the receive buffer overflows (ENOBUFS) everything is \
re-read and what changed meanwhile is written, then a 'resync' record, so a consumer's picture \
is right again.",
    after_help = EXAMPLES,
    mut_arg("quiet", |a| a.help("No warnings on stderr (a receive buffer smaller than asked, \
--exec failures).")),
    mut_arg("textfile", |a| a.hide(true)),
    mut_arg("buckets", |a| a.hide(true))
)]
pub struct Args {
    /// First write the current state as 'present' records, then follow the changes. A change
    /// made while lwatch starts has its record even when the present records already show it.
    #[arg(long)]
    pub dump: bool,
    /// Only these record kinds (comma-separated). Without it: link, addr, route and
    /// nexthop; neigh and rule are followed only when named here.
    #[arg(
        long = "type",
        value_name = "KINDS",
        value_enum,
        value_delimiter = ',',
        help_heading = "Filters"
    )]
    pub types: Vec<Kind>,
    /// Only links, addresses, routes, nexthop objects and neighbours of interfaces matching
    /// GLOB (a name or a shell pattern, 'veth*'); a route matches through its device or any
    /// nexthop's, a replace also through the route it replaced (old_dev, old_nexthops), a
    /// rename by its old name too, a rule by its iif or oif; nexthop groups always pass.
    #[arg(long, value_name = "GLOB", value_parser = crate::cli::parse_non_empty,
          help_heading = "Filters")]
    pub interface: Option<String>,
    /// Only routes of routing table N (main is 254, local 255; 0 is no table).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
          help_heading = "Filters")]
    pub table: Option<u32>,
    /// Only routes whose destination is inside CIDR, or equal to it.
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr, help_heading = "Filters")]
    pub dst: Option<IpNet>,
    /// Only addresses, routes, nexthop objects, neighbours and rules of this IP version
    /// (nexthop groups have none: they pass).
    #[arg(long, value_name = "4|6", value_parser = ["4", "6"], help_heading = "Filters")]
    pub family: Option<String>,
    /// Stop after N change records.
    #[arg(short = 'c', long, value_name = "N", value_parser = parse_count, help_heading = "Run")]
    pub count: Option<u64>,
    /// Stop after this long (seconds, or with a unit: 500ms, 30s, 5m).
    #[arg(short = 'w', long, value_name = "DURATION", value_parser = parse_positive_duration,
          help_heading = "Run")]
    pub duration: Option<Duration>,
    /// Receive buffer to ask for, in bytes, up to 1 GiB (the kernel doubles it, and keeps it
    /// under 2 GiB; past net.core.rmem_max only with CAP_NET_ADMIN). Small values are for
    /// testing the overflow path.
    #[arg(
        long,
        value_name = "BYTES",
        default_value = "4194304",
        value_parser = parse_rcvbuf,
        help_heading = "Run"
    )]
    pub rcvbuf: usize,
    /// Run 'sh -c CMD' for every record written, with the record's JSON line on its stdin
    /// (e.g. curl -d @- for a webhook). One command at a time, in record order, on a thread of
    /// its own: a slow command never holds up the watch. Its output goes to stderr.
    #[arg(long, value_name = "CMD", value_parser = crate::cli::parse_non_empty,
          help_heading = "Output")]
    pub exec: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_cidr(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    match s.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => Err(format!(
            "'{s}' is not a CIDR prefix (like 10.0.0.0/8 or 2001:db8::/32)"
        )),
    }
}

/// What the filters let through.
struct Filter {
    types: BTreeSet<Kind>,
    interface: Option<CString>,
    table: Option<u32>,
    dst: Option<IpNet>,
    family: Option<&'static str>,
}

impl Filter {
    fn new(args: &Args) -> Result<Filter> {
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

    fn name_matches(&self, name: Option<&str>) -> bool {
        let Some(glob) = &self.interface else {
            return true;
        };
        let Some(Ok(name)) = name.map(CString::new) else {
            return false;
        };
        // SAFETY: both are valid NUL-terminated strings.
        unsafe { libc::fnmatch(glob.as_ptr(), name.as_ptr(), 0) == 0 }
    }

    fn pass(&self, body: &Body) -> bool {
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

/// Reads links, addresses and routes, each from one consistent dump. With
/// `LOPA_LWATCH_DEBUG` set in the environment, says on stderr how many dumps the kernel
/// flagged interrupted (`NLM_F_DUMP_INTR`) and were read again.
fn read_state(
    sock: &mut RouteSocket,
    msgs: &mut Vec<(u16, Vec<u8>)>,
    follow: Follow,
) -> Result<State> {
    let interrupted = sock.interrupted;
    let s = read_dumps(sock, msgs, follow)?;
    if std::env::var_os("LOPA_LWATCH_DEBUG").is_some() {
        eprintln!(
            "lwatch: debug: state read, {} interrupted dump(s) retried",
            sock.interrupted - interrupted
        );
    }
    Ok(s)
}

fn read_dumps(
    sock: &mut RouteSocket,
    msgs: &mut Vec<(u16, Vec<u8>)>,
    follow: Follow,
) -> Result<State> {
    let mut s = State::default();
    sock.dump_raw(getlink_dump_request, msgs)?;
    for (kind, payload) in msgs.iter() {
        if *kind == RTM_NEWLINK {
            let info = link_info(payload).context("bad link in the dump")?;
            s.names.insert(info.link.index, info.link.name.clone());
            s.links.insert(info.link.index, info);
        }
    }
    sock.dump_raw(getaddr_dump_request, msgs)?;
    for (_, payload) in msgs.iter() {
        if let Some(a) = parse_addr(payload).context("bad address in the dump")? {
            s.addrs.insert((a.index, a.addr, a.prefixlen), a);
        }
    }
    // The objects before the routes on them: a route takes its object's path.
    s.nexthops = read_nexthops(sock, msgs)?;
    for req in [getroute4_dump_request, getroute6_dump_request] {
        sock.dump_raw(req, msgs)?;
        for (_, payload) in msgs.iter() {
            if let Some(r) = parse_route(payload).context("bad route in the dump")? {
                s.push_dumped(r);
            }
        }
    }
    if follow.neigh {
        sock.dump_raw(getneigh_dump_request, msgs)?;
        for (_, payload) in msgs.iter() {
            if let Some(n) = parse_neigh(payload).context("bad neighbour in the dump")? {
                s.neighs.insert(tables::neigh_key(&n), n);
            }
        }
    }
    if follow.rule {
        sock.dump_raw(getrule_dump_request, msgs)?;
        for (_, payload) in msgs.iter() {
            if let Some(r) = parse_rule(payload).context("bad rule in the dump")? {
                s.rules.push(r);
            }
        }
    }
    Ok(s)
}

/// Every nexthop object, by id. A kernel without them (before 5.3) answers the dump with an
/// error: it has none.
fn read_nexthops(
    sock: &mut RouteSocket,
    msgs: &mut Vec<(u16, Vec<u8>)>,
) -> Result<BTreeMap<u32, NexthopObject>> {
    let mut out = BTreeMap::new();
    match sock.dump_raw(getnexthop_dump_request, msgs) {
        Ok(()) => {}
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<crate::netlink::parse::Error>()
                    .is_some_and(|k| {
                        matches!(
                            k,
                            crate::netlink::parse::Error::Kernel(libc::EOPNOTSUPP | libc::EINVAL)
                        )
                    })
            }) =>
        {
            return Ok(out)
        }
        Err(e) => return Err(e),
    }
    for (_, payload) in msgs.iter() {
        if let Some(nh) = parse_nexthop(payload).context("bad nexthop object in the dump")? {
            out.insert(nh.id, nh);
        }
    }
    Ok(out)
}

fn link_info(payload: &[u8]) -> Result<LinkInfo, crate::netlink::parse::Error> {
    Ok(LinkInfo {
        link: parse_link(payload)?,
        address: link_address(payload)?,
    })
}

fn ipv4_routes(sock: &mut RouteSocket, msgs: &mut Vec<(u16, Vec<u8>)>) -> Result<Vec<Route>> {
    sock.dump_raw(getroute4_dump_request, msgs)?;
    let mut out = Vec::new();
    for (_, payload) in msgs.iter() {
        if let Some(r) = parse_route(payload).context("bad route in the dump")? {
            out.push(r);
        }
    }
    Ok(out)
}

/// Applies one notification to the state; notes the links whose IPv4 routes or nexthop
/// objects the kernel may have flushed silently (admin down, carrier lost, deleted).
fn apply(
    state: &mut State,
    kind: u16,
    flags: u16,
    payload: &[u8],
    flush: &mut BTreeSet<u32>,
    out: &mut Vec<Body>,
) -> Result<(), crate::netlink::parse::Error> {
    match kind {
        RTM_NEWLINK => {
            let info = link_info(payload)?;
            let index = info.link.index;
            let was = state
                .links
                .get(&index)
                .map(|l| (l.link.admin_up(), l.link.carrier));
            let now = (info.link.admin_up(), info.link.carrier);
            state.new_link(info, out);
            // Admin down flushes the link's IPv4 routes; down or a carrier loss its nexthop
            // objects (and the routes on them), all without a notification.
            if was.is_some_and(|(up, carrier)| (up && !now.0) || (carrier && !now.1)) {
                flush.insert(index);
            }
        }
        RTM_DELLINK => {
            let link = parse_link(payload)?;
            state.del_link(link.index, out);
            flush.insert(link.index);
        }
        RTM_NEWADDR => {
            if let Some(a) = parse_addr(payload)? {
                state.new_addr(a, out);
            }
        }
        RTM_DELADDR => {
            if let Some(a) = parse_addr(payload)? {
                state.del_addr(&a, out);
            }
        }
        RTM_NEWROUTE => {
            if let Some(r) = parse_route(payload)? {
                state.new_route_flagged(r, flags, out);
            }
        }
        RTM_DELROUTE => {
            if let Some(r) = parse_route(payload)? {
                state.del_route(&r, out);
            }
        }
        RTM_NEWNEXTHOP => {
            if let Some(nh) = parse_nexthop(payload)? {
                state.new_nexthop(nh, out);
            }
        }
        RTM_DELNEXTHOP => {
            if let Some(nh) = parse_nexthop(payload)? {
                state.del_nexthop(nh.id, false, out);
            }
        }
        RTM_NEWNEIGH => {
            if let Some(n) = parse_neigh(payload)? {
                state.new_neigh(n, out);
            }
        }
        RTM_DELNEIGH => {
            if let Some(n) = parse_neigh(payload)? {
                state.del_neigh(&n, out);
            }
        }
        RTM_NEWRULE => {
            if let Some(r) = parse_rule(payload)? {
                state.new_rule(r, out);
            }
        }
        RTM_DELRULE => {
            if let Some(r) = parse_rule(payload)? {
                state.del_rule(&r, out);
            }
        }
        _ => {}
    }
    Ok(())
}

/// How long after its read of the state lwatch still takes a notification that changes
/// nothing for one the read already showed (see [`Reconcile`]). The kernel sends a
/// notification microseconds after the change it announces; this is margin for a process
/// that is preempted in between.
const STARTUP_GRACE: Duration = Duration::from_millis(50);

/// A read of the state that may be ahead of the notifications still queued, reconciled with
/// them: at the start of a watch, and after notifications were lost.
///
/// The start. lwatch reads the state (`before`), subscribes, and reads it again:
/// that second read is where it stands (what `--dump` writes). The notifications of changes
/// made after subscribing arrive after the second read, which may already show some of them
/// (and changes after those). So while the notifications queued during the read, and those
/// within [`STARTUP_GRACE`] after it, are applied to the state, `before` follows them too, and
/// the records of each are what it changed in `before`: the change as it happened, as a watch
/// running all along writes it, whether or not the read showed it. Two exceptions: a route
/// notification the read does not show yet has the records of what it changed in the state,
/// which is current there (`before` may lack a change made between its read and the
/// subscription); and one that changed nothing in `before` (a repeat, or such a change) too.
///
/// Records carry whole objects (a link's state, an address, a route and the route it
/// replaced), so applying them to the second read, as a consumer of `--dump` does, goes
/// through what happened and ends at the state. Where it might not (records from `before`
/// for a route place it had wrong), lwatch keeps what the records show of the place (`shown`)
/// and, once the queued notifications are applied, writes what still differs from the state.
/// So every change made after subscribing has its record, none has two, and the picture is
/// the kernel's. Lost are only changes made before subscribing that one after it undid before
/// the second read: neither is written (and the picture is right).
///
/// After lost notifications ([`Base::Before`]) the same, with `before` the picture the records
/// so far gave the consumer: lwatch reads the state again, and the notifications queued
/// behind the loss (those the read may already show among them) are applied to both; the
/// records of each are what it changed in `before`, always, as the consumer holds `before`.
/// Once they are applied, what still differs between `before` and the state is what the
/// lost notifications would have told: written marked `resync`, then the `resync` record. A
/// change the read shows and a notification still announces so has one record, never a
/// second from the read, nor a `del` from applying it to a read that was ahead.
struct Reconcile {
    base: Base,
    before: State,
    /// Links `before` saw go down or away (its IPv4 routes to re-check).
    flush: BTreeSet<u32>,
    /// What the records show of route places that differ from the state in what they show.
    shown: BTreeMap<Place, Vec<Route>>,
    until: Instant,
}

/// What the consumer of a [`Reconcile`]'s records holds when it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    /// The read (the start: `--dump`'s `present` records are the second read).
    Read,
    /// `before` (after lost notifications: what the records so far gave).
    Before,
}

impl Reconcile {
    fn apply(
        &mut self,
        state: &mut State,
        kind: u16,
        flags: u16,
        payload: &[u8],
        flush: &mut BTreeSet<u32>,
        out: &mut Vec<Body>,
    ) -> Result<(), crate::netlink::parse::Error> {
        let route = match kind {
            RTM_NEWROUTE | RTM_DELROUTE => parse_route(payload)?,
            _ => None,
        };
        let key = route.as_ref().map(place);
        let list = |s: &State| -> Vec<Route> {
            key.and_then(|k| s.routes.get(&k).cloned())
                .unwrap_or_default()
        };
        let (was, then_was) = (list(state), list(&self.before));
        // The deletion of an address neither read had (made after the first and undone
        // before the second read, or its add lost) is no record here: the consumer's picture
        // lacks it (a watch running all along writes the del of one never announced).
        let (in_before, in_state) = match kind {
            RTM_DELADDR => match parse_addr(payload)? {
                Some(a) => {
                    let k = (a.index, a.addr, a.prefixlen);
                    (
                        self.before.addrs.contains_key(&k),
                        state.addrs.contains_key(&k),
                    )
                }
                None => (true, true),
            },
            _ => (true, true),
        };
        // Whether the read already shows this route message: the route is there (or, for a
        // deletion, not there).
        let shown_by_read = route.as_ref().is_some_and(|r| {
            let mut r = r.clone();
            state.prepare(&mut r);
            was.contains(&r) == (kind == RTM_NEWROUTE)
        });
        // An object exactly as `before` has it: no record. lwatch applies the kernel's own
        // follow-ups of an object's change itself (a group losing a member), so this is their
        // notice, and the read may lack the object because it was flushed since, silently:
        // no notification will say so, and no record may bring it back.
        let repeat_in_before = kind == RTM_NEWNEXTHOP
            && parse_nexthop(payload)?
                .is_some_and(|nh| self.before.nexthops.get(&nh.id) == Some(&nh));
        // An object's change changes the routes on it, in both: their places are followed as a
        // route message's place is (below).
        let object = self.base == Base::Read && matches!(kind, RTM_NEWNEXTHOP | RTM_DELNEXTHOP);
        let object_was =
            object.then(|| (places_on_objects(state), places_on_objects(&self.before)));
        let mut now = Vec::new();
        apply(state, kind, flags, payload, flush, &mut now)?;
        let mut then = Vec::new();
        apply(
            &mut self.before,
            kind,
            flags,
            payload,
            &mut self.flush,
            &mut then,
        )?;
        // The records of a route message come from `before` only where the read already
        // shows it (the read may be ahead there by later changes too); elsewhere the state is
        // current and its records are right even after a change `before` missed.
        // After a loss the consumer holds `before`: its records, always (what `before` still
        // lacks is written with the resync).
        // A deletion `before` cannot have (see `in_before`).
        if !in_before {
            then.clear();
            if !in_state || self.base == Base::Before {
                now.clear();
            }
        }
        let by_before = self.base == Base::Before
            || repeat_in_before
            || (!then.is_empty() && (route.is_none() || shown_by_read || now.is_empty()));
        if by_before {
            out.append(&mut then);
        } else {
            out.append(&mut now);
        }
        if let (Some(k), Base::Read) = (key, self.base) {
            let (from, to) = if by_before {
                (then_was, list(&self.before))
            } else {
                (was.clone(), list(state))
            };
            self.follow(k, by_before, &was, &from, &to);
        }
        if let Some((state_was, before_was)) = object_was {
            let (state_now, before_now) =
                (places_on_objects(state), places_on_objects(&self.before));
            let keys: BTreeSet<Place> = [&state_was, &before_was, &state_now, &before_now]
                .into_iter()
                .flat_map(|m| m.keys().copied())
                .collect();
            let none = Vec::new();
            for k in keys {
                let get = |m: &BTreeMap<Place, Vec<Route>>| m.get(&k).unwrap_or(&none).clone();
                let (from, to) = if by_before {
                    (get(&before_was), get(&before_now))
                } else {
                    (get(&state_was), get(&state_now))
                };
                if from != to {
                    self.follow(k, by_before, &get(&state_was), &from, &to);
                }
            }
        }
        Ok(())
    }

    /// What the records show of place `k` after they took it from `from` to `to`: followed
    /// once records came from `before` there (`by_before`), starting from what the read
    /// showed (`was`, the state's routes there before the message).
    fn follow(&mut self, k: Place, by_before: bool, was: &[Route], from: &[Route], to: &[Route]) {
        if by_before || self.shown.contains_key(&k) {
            let shown = self
                .shown
                .entry(k)
                .or_insert_with(|| visible(was).into_iter().cloned().collect());
            shift(shown, from, to);
        }
    }

    /// Writes what the records show of a route place that differs from the state.
    fn settle(&mut self, state: &State, out: &mut Vec<Body>) {
        for (k, shown) in std::mem::take(&mut self.shown) {
            let now = state.routes.get(&k).map(Vec::as_slice).unwrap_or_default();
            let was: Vec<&Route> = shown.iter().collect();
            state.diff_shown(&was, &visible(now), None, out);
        }
    }
}

/// The route places that hold a route on a nexthop object, with their routes.
fn places_on_objects(s: &State) -> BTreeMap<Place, Vec<Route>> {
    s.on_object
        .values()
        .flatten()
        .filter_map(|k| Some((*k, s.routes.get(k)?.clone())))
        .collect()
}

/// How long after a link went down or away its IPv4 routes are re-read a second time.
const FLUSH_RECHECK: Duration = Duration::from_millis(200);

const SIGNAL_TOKEN: Token = Token(0);
const NETLINK_TOKEN: Token = Token(1);

/// Writes records through the filter and counts the changes.
struct Sink {
    out: RecordWriter<std::io::Stdout>,
    tags: Option<Arc<Tags>>,
    filter: Filter,
    changes: u64,
    limit: Option<u64>,
    exec: Option<exec::Exec>,
    line: Vec<u8>,
}

impl Sink {
    fn done(&self) -> bool {
        self.limit.is_some_and(|n| self.changes >= n)
    }

    /// Writes `bodies` (stopping at the count); `change`: they count towards `-c`.
    fn write(&mut self, bodies: &mut Vec<Body>, change: bool) -> Result<()> {
        let ts = SystemTime::now();
        for body in bodies.drain(..) {
            if self.done() {
                break;
            }
            if !self.filter.pass(&body) {
                continue;
            }
            let counts = change && !matches!(body, Body::WatchResync(_));
            let record = Record {
                tool: TOOL,
                ts,
                tags: self.tags.clone(),
                body,
            };
            self.out.write(&record)?;
            if let Some(exec) = &mut self.exec {
                self.line.clear();
                crate::output::json_line(&record, &mut self.line)?;
                self.line.push(b'\n');
                exec.send(self.line.clone());
            }
            if counts {
                self.changes += 1;
            }
        }
        Ok(())
    }
}

/// The followed state and what keeps it true: the subscription, a socket for re-reads, the
/// links whose IPv4 routes to re-read.
struct Watch {
    state: State,
    reconcile: Option<Reconcile>,
    sub: Subscription,
    sock: RouteSocket,
    msgs: Vec<(u16, Vec<u8>)>,
    flush: BTreeSet<u32>,
    /// Links to check once more for flushed routes, and when: the kernel announces a link
    /// going down before it flushes the link's IPv4 routes, so a re-read at once can be early.
    recheck: Option<(Instant, BTreeSet<u32>)>,
    follow: Follow,
}

impl Watch {
    /// Applies every notification queued, then re-reads what the notifications cannot tell:
    /// everything after lost ones (see [`Reconcile`], [`Base::Before`]: the notifications
    /// queued behind the loss are applied to the read and to the picture the records gave,
    /// then what still differs is written), the IPv4 routes of links that went down or away.
    fn drain(&mut self, bodies: &mut Vec<Body>) -> Result<()> {
        loop {
            let mut lost = false;
            loop {
                match self.sub.recv()? {
                    Received::Empty => break,
                    Received::Lost => lost = true,
                    Received::Datagram(buf) => {
                        let (state, flush) = (&mut self.state, &mut self.flush);
                        let reconcile = &mut self.reconcile;
                        walk_notifications_flagged(buf, |kind, flags, payload| match reconcile {
                            Some(r) => r.apply(state, kind, flags, payload, flush, bodies),
                            None => apply(state, kind, flags, payload, flush, bodies),
                        })
                        .context("bad netlink notification")?;
                    }
                }
            }
            if !lost {
                break;
            }
            self.reread_after_loss(bodies)?;
        }
        self.reread_flushed(bodies)?;
        match self.reconcile.take_if(|r| r.base == Base::Before) {
            Some(r) => self.resync(r.before, bodies),
            None => {
                if let Some(r) = &mut self.reconcile {
                    r.settle(&self.state, bodies);
                }
            }
        }
        Ok(())
    }

    /// After lost notifications: the state is read again, and the picture the records so far
    /// gave becomes `before` of a [`Reconcile`] on [`Base::Before`] (the one of a loss before,
    /// whose records are not all written yet, goes on).
    fn reread_after_loss(&mut self, bodies: &mut Vec<Body>) -> Result<()> {
        let mut before = match self.reconcile.take() {
            Some(r) if r.base == Base::Before => r.before,
            Some(mut r) => {
                r.settle(&self.state, bodies);
                std::mem::take(&mut self.state)
            }
            None => std::mem::take(&mut self.state),
        };
        self.flush.clear();
        self.state = read_state(&mut self.sock, &mut self.msgs, self.follow)?;
        for (index, name) in &self.state.names {
            before.names.entry(*index).or_insert_with(|| name.clone());
        }
        self.reconcile = Some(Reconcile {
            base: Base::Before,
            before,
            flush: BTreeSet::new(),
            shown: BTreeMap::new(),
            until: Instant::now(),
        });
        Ok(())
    }

    /// The end of a loss: what still differs between the picture the records gave (`shown`)
    /// and the state, marked `resync`, then the `resync` record.
    fn resync(&mut self, mut shown: State, bodies: &mut Vec<Body>) {
        let first = bodies.len();
        shown.resync(self.state.clone(), bodies);
        let marked = &mut bodies[first..];
        for b in marked.iter_mut() {
            mark_resync(b);
        }
        let count = marked.len() as u64;
        bodies.push(Body::WatchResync(WatchResync {
            reason: "overflow".into(),
            changes: count,
            rcvbuf: self.sub.rcvbuf as u64,
        }));
    }

    /// Re-reads the IPv4 routes of links that went down or away: the kernel flushes them
    /// without a notification.
    fn reread_flushed(&mut self, bodies: &mut Vec<Body>) -> Result<()> {
        let before_flush = self
            .reconcile
            .as_mut()
            .map(|s| std::mem::take(&mut s.flush));
        let indexes: BTreeSet<u32> = std::mem::take(&mut self.flush)
            .into_iter()
            .chain(before_flush.into_iter().flatten())
            .collect();
        if indexes.is_empty() {
            return Ok(());
        }
        self.flush_nexthops(bodies)?;
        let routes = self.ipv4_routes()?;
        let again = &mut self
            .recheck
            .get_or_insert_with(|| (Instant::now() + FLUSH_RECHECK, BTreeSet::new()))
            .1;
        for index in indexes {
            let mut now = Vec::new();
            let gone = self.state.flushed(index, &routes, &mut now);
            match &mut self.reconcile {
                None => bodies.append(&mut now),
                // The consumer holds `before`: what went from there.
                Some(s) if s.base == Base::Before => {
                    s.before.flushed(index, &routes, bodies);
                }
                Some(s) => {
                    bodies.append(&mut now);
                    // Routes the read after subscribing no longer had: flushed in between.
                    let mut then = Vec::new();
                    let went = s.before.flushed(index, &routes, &mut then);
                    for (r, body) in went.iter().zip(then) {
                        if !gone.contains(r) {
                            bodies.push(body);
                        }
                    }
                    for r in &gone {
                        if let Some(shown) = s.shown.get_mut(&place(r)) {
                            shift(shown, std::slice::from_ref(r), &[]);
                        }
                    }
                }
            }
            again.insert(index);
        }
        Ok(())
    }

    /// Re-reads the nexthop objects after links went down or away: the kernel removes the
    /// objects on them (and their routes) without a notification. Before the IPv4 routes are
    /// re-read, so routes that went with an object are deleted as such.
    fn flush_nexthops(&mut self, bodies: &mut Vec<Body>) -> Result<()> {
        let fresh = read_nexthops(&mut self.sock, &mut self.msgs)?;
        match &mut self.reconcile {
            None => self.state.flush_nexthops(&fresh, bodies),
            // The consumer holds `before`: its records.
            Some(s) if s.base == Base::Before => {
                s.before.flush_nexthops(&fresh, bodies);
                self.state.flush_nexthops(&fresh, &mut Vec::new());
            }
            // The consumer holds the read: its records, and those of what `before` still had
            // (objects the read no longer had: flushed in between).
            Some(s) => {
                let first = bodies.len();
                let state_was = places_on_objects(&self.state);
                self.state.flush_nexthops(&fresh, bodies);
                let before_was = places_on_objects(&s.before);
                let mut then = Vec::new();
                s.before.flush_nexthops(&fresh, &mut then);
                for body in then {
                    if !bodies[first..].contains(&body) {
                        bodies.push(body);
                    }
                }
                // What the records show of the places those changed (see `Reconcile`).
                let (state_now, before_now) =
                    (places_on_objects(&self.state), places_on_objects(&s.before));
                let none = Vec::new();
                for (k, shown) in s.shown.iter_mut() {
                    for (was, now) in [(&state_was, &state_now), (&before_was, &before_now)] {
                        let (from, to) = (was.get(k).unwrap_or(&none), now.get(k).unwrap_or(&none));
                        if from != to {
                            shift(shown, from, to);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The IPv4 routes, read again, as lwatch keeps them (a route on an object with the
    /// object's path: the kernel sends none with `nexthop_compat_mode` 0).
    fn ipv4_routes(&mut self) -> Result<Vec<Route>> {
        let mut routes = ipv4_routes(&mut self.sock, &mut self.msgs)?;
        for r in &mut routes {
            self.state.prepare(r);
        }
        Ok(routes)
    }

    /// The second look at links that went down or away, once it is due.
    fn recheck(&mut self, now: Instant, bodies: &mut Vec<Body>) -> Result<bool> {
        let Some((_, indexes)) = self.recheck.take_if(|(at, _)| *at <= now) else {
            return Ok(false);
        };
        self.flush_nexthops(bodies)?;
        let routes = self.ipv4_routes()?;
        for index in indexes {
            self.state.flushed(index, &routes, bodies);
        }
        Ok(true)
    }
}

/// For the lab tests only: `LOPA_LWATCH_TEST_STOP` in lwatch's environment lists (comma
/// separated) where it stops itself (SIGSTOP) at the start: `read` after its first read of the
/// state, `subscribed` after subscribing, `dumped` after the second read, `mid-dump` after the
/// third datagram of a dump attempt that takes more than three (a change there interrupts
/// it: thousands of addresses make one); `mid-dump:N` stops in each of the first N such
/// attempts. A test makes changes there, then lets it go on (SIGCONT).
fn test_stop(at: &str) {
    if test_stop_count(at).is_some() {
        stop_self();
    }
}

fn stop_self() {
    // SAFETY: raise(3) has no preconditions.
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// How many times `LOPA_LWATCH_TEST_STOP` asks to stop at `at` (`at` or `at:N`), if at all.
fn test_stop_count(at: &str) -> Option<u32> {
    let points = std::env::var_os("LOPA_LWATCH_TEST_STOP")?;
    points.to_string_lossy().split(',').find_map(|p| {
        let (name, count) = p.split_once(':').unwrap_or((p, "1"));
        (name == at).then(|| count.parse().unwrap_or(1))
    })
}

/// The `mid-dump` stops still to make.
static MID_DUMP_STOPS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `--rcvbuf`: 1 byte to 1 GiB, the most the kernel takes (it doubles the value in an int).
fn parse_rcvbuf(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1 << 30).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a size from 1 to 1073741824 bytes")),
    }
}

/// Runs lwatch until the count or duration is reached, or a signal comes.
pub fn run(args: Args) -> Result<ExitCode> {
    crate::cli::refuse_openmetrics("lwatch", args.output.format)?;
    if args.output.textfile.is_some() || args.output.buckets.is_some() {
        anyhow::bail!(
            "lwatch writes events, not figures: --textfile and --buckets are for the probes, lpassive and lreflect"
        );
    }
    let filter = Filter::new(&args)?;
    let mut poll = Poll::new().context("cannot create the event loop")?;
    let mut signals =
        Signals::new(crate::cli::end_signals()).context("cannot install signal handlers")?;
    poll.registry()
        .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
    let mut sock = RouteSocket::open()?;
    if let Some(n) = test_stop_count("mid-dump") {
        use std::sync::atomic::Ordering::Relaxed;
        MID_DUMP_STOPS.store(n, Relaxed);
        sock.mid_dump = Some(|| {
            if MID_DUMP_STOPS
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                stop_self();
            }
        });
    }
    let mut msgs = Vec::new();
    // The state before subscribing, then the subscription, then the state again (see
    // `Reconcile`): no change falls between the reads and the notifications, and none that the
    // second read already shows goes without its record.
    let follow = Follow {
        neigh: args.types.contains(&Kind::Neigh),
        rule: args.types.contains(&Kind::Rule),
    };
    let before = read_state(&mut sock, &mut msgs, follow)?;
    test_stop("read");
    let sub = Subscription::open(&follow.groups(), args.rcvbuf)?;
    poll.registry().register(
        &mut SourceFd(&sub.raw_fd()),
        NETLINK_TOKEN,
        Interest::READABLE,
    )?;
    if !args.output.quiet && sub.rcvbuf < args.rcvbuf {
        eprintln!(
            "lwatch: the receive buffer is {} bytes, less than the {} asked for (needs \
             CAP_NET_ADMIN, or a higher net.core.rmem_max)",
            sub.rcvbuf, args.rcvbuf
        );
    }
    test_stop("subscribed");
    let state = read_state(&mut sock, &mut msgs, follow)?;
    test_stop("dumped");
    let mut before = before;
    // Records made from `before` name interfaces it never saw (made in between) too.
    for (index, name) in &state.names {
        before.names.entry(*index).or_insert_with(|| name.clone());
    }
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + d);
    let mut watch = Watch {
        state,
        reconcile: Some(Reconcile {
            base: Base::Read,
            before,
            flush: BTreeSet::new(),
            shown: BTreeMap::new(),
            until: start + STARTUP_GRACE,
        }),
        sub,
        sock,
        msgs,
        flush: BTreeSet::new(),
        recheck: None,
        follow,
    };

    let mut sink = Sink {
        out: RecordWriter::stdout(args.output.format),
        tags: (!args.output.tags.is_empty()).then(|| Arc::new(args.output.tag_map())),
        filter,
        changes: 0,
        limit: args.count,
        exec: args
            .exec
            .clone()
            .map(|cmd| exec::Exec::start(cmd, args.output.quiet)),
        line: Vec::new(),
    };
    let mut bodies = Vec::new();
    if args.dump {
        watch.state.present(&mut bodies);
        sink.write(&mut bodies, false)?;
    }
    // What was queued while the state was read, at once.
    watch.drain(&mut bodies)?;
    sink.write(&mut bodies, true)?;

    let mut events = Events::with_capacity(8);
    while !sink.done() {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if watch.recheck(now, &mut bodies)? {
            sink.write(&mut bodies, true)?;
            continue;
        }
        if watch.reconcile.as_ref().is_some_and(|s| now >= s.until) {
            watch.reconcile = None;
        }
        let timeout = [
            deadline,
            watch.recheck.as_ref().map(|(at, _)| *at),
            watch.reconcile.as_ref().map(|s| s.until),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|t| t.saturating_duration_since(now));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("poll failed"),
        }
        if events.iter().any(|e| e.token() == SIGNAL_TOKEN) && signals.pending().count() > 0 {
            break;
        }
        if events.iter().any(|e| e.token() == NETLINK_TOKEN) {
            watch.drain(&mut bodies)?;
            sink.write(&mut bodies, true)?;
        }
    }
    if let Some(exec) = sink.exec.take() {
        exec.finish();
    }
    sink.out.into_inner().flush()?;
    Ok(ExitCode::SUCCESS)
}

fn mark_resync(body: &mut Body) {
    match body {
        Body::WatchLink(b) => b.resync = Some(true),
        Body::WatchAddr(b) => b.resync = Some(true),
        Body::WatchRoute(b) => b.resync = Some(true),
        Body::WatchNexthopObject(b) => b.resync = Some(true),
        Body::WatchNeigh(b) => b.resync = Some(true),
        Body::WatchRule(b) => b.resync = Some(true),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::rt::{AF_INET, NLM_F_REPLACE};

    fn attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }

    /// An `rtmsg`: 10.70.0.1/32 via 10.1.0.`gw` dev 3, table 1000, static, unicast.
    fn route(gw: u8) -> Vec<u8> {
        let mut p = vec![AF_INET, 32, 0, 0, 252, 4, 0, 1, 0, 0, 0, 0];
        attr(&mut p, 15, &1000u32.to_ne_bytes()); // RTA_TABLE
        attr(&mut p, 1, &[10, 70, 0, 1]); // RTA_DST
        attr(&mut p, 4, &3u32.to_ne_bytes()); // RTA_OIF
        attr(&mut p, 5, &[10, 1, 0, gw]); // RTA_GATEWAY
        p
    }

    /// An `ifaddrmsg`: 10.80.0.`n`/32 on interface 3.
    fn addr(n: u8) -> Vec<u8> {
        let mut p = vec![AF_INET, 32, 0, 0];
        p.extend_from_slice(&3u32.to_ne_bytes());
        attr(&mut p, 2, &[10, 80, 0, n]); // IFA_LOCAL
        p
    }

    fn dumped(routes: &[Vec<u8>], addrs: &[Vec<u8>]) -> State {
        let mut s = State::default();
        for r in routes {
            s.push_dumped(parse_route(r).unwrap().unwrap());
        }
        for a in addrs {
            let a = parse_addr(a).unwrap().unwrap();
            s.addrs.insert((a.index, a.addr, a.prefixlen), a);
        }
        s
    }

    fn brief(out: &[Body]) -> Vec<String> {
        out.iter()
            .map(|b| match b {
                Body::WatchRoute(r) => format!(
                    "route {} {}{}",
                    r.event,
                    r.gateway.map_or("-".into(), |g| g.to_string()),
                    r.old_gateway.map_or("".into(), |g| format!(" (was {g})"))
                ),
                Body::WatchAddr(a) => format!("addr {} {}", a.event, a.addr),
                _ => "?".into(),
            })
            .collect()
    }

    /// After a loss the consumer holds the route via 10.1.0.2; lost: an address added
    /// (10.80.0.1); then, notified but queued behind the loss and already in the re-read: `ip route replace ... via .3`, `ip route prepend ... via
    /// .4` (the kernel's [.4, .3]) and an address added (10.80.0.2). Each queued change has
    /// one record, as it changed the consumer's picture (no `del` of .4 from a replace applied
    /// to a read that already had it, no second add of 10.80.0.2), and the resync writes the
    /// lost address only.
    #[test]
    fn after_a_loss_queued_changes_the_reread_shows_are_written_once() {
        let mut before = dumped(&[route(2)], &[]);
        before.names.insert(3, "w0".into());
        let mut state = dumped(&[route(4), route(3)], &[addr(1), addr(2)]);
        let mut r = Reconcile {
            base: Base::Before,
            before,
            flush: BTreeSet::new(),
            shown: BTreeMap::new(),
            until: Instant::now(),
        };
        let (mut flush, mut out) = (BTreeSet::new(), Vec::new());
        let queued = [
            (RTM_NEWROUTE, NLM_F_REPLACE, route(3)),
            (RTM_NEWROUTE, 0x400, route(4)),
            (RTM_NEWADDR, 0, addr(2)),
        ];
        for (kind, flags, payload) in &queued {
            r.apply(&mut state, *kind, *flags, payload, &mut flush, &mut out)
                .unwrap();
        }
        assert_eq!(
            brief(&out),
            [
                "route replace 10.1.0.3 (was 10.1.0.2)",
                "route add 10.1.0.4",
                "addr add 10.80.0.2"
            ]
        );
        out.clear();
        r.before.resync(state.clone(), &mut out);
        assert_eq!(brief(&out), ["addr add 10.80.0.1"], "what was lost");
        assert_eq!(r.before.routes, state.routes);
    }

    #[test]
    fn cidrs_and_plain_addresses_parse_and_garbage_is_explained() {
        assert_eq!(
            parse_cidr("10.0.0.0/8").unwrap(),
            "10.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert_eq!(parse_cidr("fd00::1").unwrap().prefix_len(), 128);
        assert!(parse_cidr("10.0.0.0/33")
            .unwrap_err()
            .contains("not a CIDR"));
    }
}
