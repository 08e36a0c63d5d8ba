//! Neighbour entries and policy rules in lwatch's state (`--type neigh`, `--type rule`), and
//! the records their messages turn into. Each is its own table: nothing else depends on them.
//!
//! The kernel sends `RTM_NEWNEIGH` for every state change of an entry (and for some that
//! change nothing lwatch reports, such as a confirmation that keeps it `REACHABLE`): a record
//! is written when the state, the link-layer address or the router flag changed.

use super::state::{family, protocol_name, NeighKey, State};
use crate::netlink::neigh::{state_names, Neigh, NTF_PROXY, NTF_ROUTER};
use crate::netlink::rule::{action_name, Rule, FIB_RULE_INVERT};
use crate::record::{Body, WatchNeigh, WatchRule};

pub fn neigh_key(n: &Neigh) -> NeighKey {
    (n.index, n.dst, n.flags & NTF_PROXY != 0)
}

/// What a neighbour record compares: state, link-layer address, router flag.
fn neigh_shown(n: &Neigh) -> (u16, Option<&str>, bool) {
    (n.state, n.lladdr.as_deref(), n.flags & NTF_ROUTER != 0)
}

/// `start-end`, or the one value when both are equal (as `ip rule` prints ports).
fn range<T: PartialEq + std::fmt::Display>((start, end): (T, T)) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}-{end}")
    }
}

impl State {
    pub fn neigh_body(&self, event: &str, n: &Neigh) -> Body {
        Body::WatchNeigh(WatchNeigh {
            event: event.into(),
            family: family(n.family).into(),
            dst: n.dst,
            ifname: self.name(n.index),
            ifindex: n.index,
            lladdr: n.lladdr.clone(),
            state: state_names(n.state),
            router: (n.flags & NTF_ROUTER != 0).then_some(true),
            proxy: (n.flags & NTF_PROXY != 0).then_some(true),
            old_state: None,
            old_lladdr: None,
            resync: None,
        })
    }

    /// The record of entry `now` where `old` was (`None`: nothing lwatch reports changed).
    pub fn neigh_change(&self, old: Option<&Neigh>, now: &Neigh) -> Option<Body> {
        let Some(old) = old else {
            return Some(self.neigh_body("add", now));
        };
        if neigh_shown(old) == neigh_shown(now) {
            return None;
        }
        let mut body = self.neigh_body("change", now);
        if let Body::WatchNeigh(b) = &mut body {
            b.old_state = Some(state_names(old.state));
            b.old_lladdr = old.lladdr.clone().filter(|_| old.lladdr != now.lladdr);
        }
        Some(body)
    }

    /// An `RTM_NEWNEIGH`.
    pub fn new_neigh(&mut self, n: Neigh, out: &mut Vec<Body>) {
        let key = neigh_key(&n);
        if let Some(body) = self.neigh_change(self.neighs.get(&key), &n) {
            out.push(body);
        }
        self.neighs.insert(key, n);
    }

    /// An `RTM_DELNEIGH`: a `del` of an entry lwatch has (its last state, as `ip monitor`
    /// prints it).
    pub fn del_neigh(&mut self, n: &Neigh, out: &mut Vec<Body>) {
        if let Some(old) = self.neighs.remove(&neigh_key(n)) {
            out.push(self.neigh_body("del", &old));
        }
    }

    pub fn rule_body(&self, event: &str, r: &Rule) -> Body {
        let lookup = r.action == 1;
        Body::WatchRule(WatchRule {
            event: event.into(),
            family: family(r.family).into(),
            priority: r.priority,
            not: (r.flags & FIB_RULE_INVERT != 0).then_some(true),
            src: r.src.map(|(a, l)| format!("{a}/{l}")),
            dst: r.dst.map(|(a, l)| format!("{a}/{l}")),
            tos: (r.tos != 0).then_some(r.tos),
            fwmark: r.fwmark,
            fwmask: r.fwmask,
            iif: r.iif.clone(),
            oif: r.oif.clone(),
            l3mdev: r.l3mdev.then_some(true),
            uidrange: r.uid_range.map(|(a, b)| format!("{a}-{b}")),
            ipproto: r.ip_proto,
            sport: r.sport.map(range),
            dport: r.dport.map(range),
            action: action_name(r.action),
            table: (lookup && r.table != 0).then_some(r.table),
            goto: r.goto,
            suppress_prefixlength: r.suppress_prefixlen,
            suppress_ifgroup: r.suppress_ifgroup,
            protocol: protocol_name(r.protocol),
            resync: None,
        })
    }

    /// An `RTM_NEWRULE`: an `add`, or nothing for a rule lwatch has (the kernel refuses an
    /// exact duplicate). Kept in the kernel's order (by priority, a new one last of its
    /// priority).
    pub fn new_rule(&mut self, r: Rule, out: &mut Vec<Body>) {
        if self.rules.contains(&r) {
            return;
        }
        out.push(self.rule_body("add", &r));
        let at = self
            .rules
            .iter()
            .position(|x| x.family == r.family && x.priority > r.priority)
            .unwrap_or(self.rules.len());
        self.rules.insert(at, r);
    }

    /// An `RTM_DELRULE`.
    pub fn del_rule(&mut self, r: &Rule, out: &mut Vec<Body>) {
        if let Some(at) = self.rules.iter().position(|x| x == r) {
            let r = self.rules.remove(at);
            out.push(self.rule_body("del", &r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::rt::AF_INET;

    fn neigh(state: u16, lladdr: Option<&str>) -> Neigh {
        Neigh {
            family: AF_INET,
            index: 4,
            state,
            flags: 0,
            dst: "10.66.0.9".parse().unwrap(),
            lladdr: lladdr.map(str::to_string),
        }
    }

    fn brief(out: &[Body]) -> Vec<String> {
        out.iter()
            .map(|b| match b {
                Body::WatchNeigh(n) => format!(
                    "{} {} {}{}",
                    n.event,
                    n.lladdr.as_deref().unwrap_or("-"),
                    n.state.join(","),
                    n.old_state
                        .as_ref()
                        .map(|o| format!(" (was {})", o.join(",")))
                        .unwrap_or_default()
                ),
                Body::WatchRule(r) => format!("{} {} {}", r.event, r.priority, r.action),
                _ => "?".into(),
            })
            .collect()
    }

    /// An unanswered ARP request: INCOMPLETE, then FAILED; a confirmation that keeps an entry
    /// REACHABLE writes nothing; `ip neigh del` announces FAILED, then the deletion.
    #[test]
    fn neighbour_states_are_diffed_not_echoed() {
        let mut s = State::default();
        let mut out = Vec::new();
        s.new_neigh(neigh(0x01, None), &mut out);
        s.new_neigh(neigh(0x20, None), &mut out);
        s.new_neigh(neigh(0x02, Some("02:00:00:00:00:09")), &mut out);
        s.new_neigh(neigh(0x02, Some("02:00:00:00:00:09")), &mut out);
        s.new_neigh(neigh(0x20, None), &mut out);
        s.del_neigh(&neigh(0x20, None), &mut out);
        s.del_neigh(&neigh(0x20, None), &mut out);
        assert_eq!(
            brief(&out),
            [
                "add - INCOMPLETE",
                "change - FAILED (was INCOMPLETE)",
                "change 02:00:00:00:00:09 REACHABLE (was FAILED)",
                "change - FAILED (was REACHABLE)",
                "del - FAILED"
            ]
        );
        assert!(s.neighs.is_empty());
    }

    #[test]
    fn rules_are_kept_in_priority_order_and_a_repeat_is_no_add() {
        let rule = |priority, table| Rule {
            family: AF_INET,
            priority,
            action: 1,
            table,
            ..Rule::default()
        };
        let mut s = State::default();
        let mut out = Vec::new();
        s.new_rule(rule(32766, 254), &mut out);
        s.new_rule(rule(100, 100), &mut out);
        s.new_rule(rule(100, 100), &mut out);
        s.new_rule(rule(100, 200), &mut out);
        s.del_rule(&rule(100, 100), &mut out);
        s.del_rule(&rule(100, 100), &mut out);
        assert_eq!(
            brief(&out),
            [
                "add 32766 lookup",
                "add 100 lookup",
                "add 100 lookup",
                "del 100 lookup"
            ]
        );
        assert_eq!(s.rules, [rule(100, 200), rule(32766, 254)]);
    }
}
