//! lwatch's command line: the arguments, their parsers, the record kinds and the rtnetlink
//! groups each kind needs.
#![forbid(unsafe_code)]

use crate::cli::{parse_count, parse_positive_duration, OutputArgs};
use clap::Parser;
use ipnet::IpNet;
use std::time::Duration;

/// `RTNLGRP_LINK`, `IPV4_IFADDR`, `IPV4_ROUTE`, `IPV6_IFADDR`, `IPV6_ROUTE` (not
/// `IPV6_IFINFO`, whose partial AF_INET6 link messages would look like changes), and
/// `RTNLGRP_NEXTHOP`: routes on nexthop objects need the objects.
pub(super) const GROUPS: [u32; 6] = [1, 5, 7, 9, 11, 32];
/// `RTNLGRP_NEIGH`, for `--type neigh`.
pub(super) const NEIGH_GROUPS: [u32; 1] = [3];
/// `RTNLGRP_IPV4_RULE`, `RTNLGRP_IPV6_RULE`, for `--type rule`.
pub(super) const RULE_GROUPS: [u32; 2] = [8, 19];

/// What lwatch follows beyond links, addresses, nexthop objects and routes: neighbours and
/// rules only when asked for (a busy host's neighbour table changes every few seconds).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Follow {
    pub(super) neigh: bool,
    pub(super) rule: bool,
}

impl Follow {
    pub(super) fn groups(self) -> Vec<u32> {
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

pub(super) fn parse_cidr(s: &str) -> Result<IpNet, String> {
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

/// `--rcvbuf`: 1 byte to 1 GiB, the most the kernel takes (it doubles the value in an int).
fn parse_rcvbuf(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1 << 30).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not a size from 1 to 1073741824 bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn rcvbuf_takes_1_byte_to_1_gib() {
        assert_eq!(parse_rcvbuf("1"), Ok(1));
        assert_eq!(parse_rcvbuf("1073741824"), Ok(1 << 30));
        for bad in ["0", "1073741825", "4k", "-1"] {
            assert!(
                parse_rcvbuf(bad).unwrap_err().contains("not a size"),
                "{bad}"
            );
        }
    }

    #[test]
    fn neighbours_and_rules_add_their_groups_only_when_followed() {
        let groups = |neigh, rule| Follow { neigh, rule }.groups();
        assert_eq!(groups(false, false), GROUPS);
        assert_eq!(groups(true, false), [1, 5, 7, 9, 11, 32, 3]);
        assert_eq!(groups(false, true), [1, 5, 7, 9, 11, 32, 8, 19]);
        assert_eq!(groups(true, true).len(), 9);
    }
}
