//! lwatch's reads of the kernel's state over rtnetlink (dumps), and one notification applied
//! to a [`State`].
#![forbid(unsafe_code)]

use super::args::Follow;
use super::state::{LinkInfo, State};
use super::tables;
use crate::netlink::neigh::{getneigh_dump_request, parse_neigh, RTM_DELNEIGH, RTM_NEWNEIGH};
use crate::netlink::nexthop::{
    getnexthop_dump_request, parse_nexthop, NexthopObject, RTM_DELNEXTHOP, RTM_NEWNEXTHOP,
};
use crate::netlink::parse::{getlink_dump_request, parse_link, RTM_NEWLINK};
use crate::netlink::rt::{
    getaddr_dump_request, getroute4_dump_request, getroute6_dump_request, link_address, parse_addr,
    parse_route, Route, RTM_DELADDR, RTM_DELLINK, RTM_DELROUTE, RTM_NEWADDR, RTM_NEWROUTE,
};
use crate::netlink::rule::{getrule_dump_request, parse_rule, RTM_DELRULE, RTM_NEWRULE};
use crate::netlink::RouteSocket;
use crate::record::Body;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};

/// Reads links, addresses and routes, each from one consistent dump. With
/// `LOPA_LWATCH_DEBUG` set in the environment, says on stderr how many dumps the kernel
/// flagged interrupted (`NLM_F_DUMP_INTR`) and were read again.
pub(super) fn read_state(
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

pub(super) fn read_dumps(
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
pub(super) fn read_nexthops(
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

pub(super) fn link_info(payload: &[u8]) -> Result<LinkInfo, crate::netlink::parse::Error> {
    Ok(LinkInfo {
        link: parse_link(payload)?,
        address: link_address(payload)?,
    })
}

pub(super) fn ipv4_routes(
    sock: &mut RouteSocket,
    msgs: &mut Vec<(u16, Vec<u8>)>,
) -> Result<Vec<Route>> {
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
pub(super) fn apply(
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
