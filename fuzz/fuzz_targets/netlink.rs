//! rtnetlink messages as lpassive and lwatch receive them: a datagram walked message by
//! message, each payload given to every decoder (links, stats, addresses, routes, nexthop
//! objects, neighbours, rules).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::netlink::{neigh, nexthop, parse, rt, rule};

fuzz_target!(|data: &[u8]| {
    let mut links = Vec::new();
    let _ = parse::parse_dump(data, 1, &mut links);
    let _ = parse::walk(data, 0, |_, payload| {
        let _ = parse::parse_link(payload);
        let _ = rt::link_address(payload);
        let _ = rt::parse_addr(payload);
        let _ = rt::parse_route(payload);
        let _ = nexthop::parse_nexthop(payload);
        let _ = neigh::parse_neigh(payload);
        let _ = rule::parse_rule(payload);
        Ok(())
    });
    for width in [24, 25] {
        let _ = parse::Counters::decode(data, width);
    }
});
