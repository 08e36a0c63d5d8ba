//! Reconciling a read of the state with the notifications queued behind it (see
//! [`Reconcile`]): at the start of a watch and after lost notifications.
#![forbid(unsafe_code)]

use super::read::apply;
use super::state::{place, shift, visible, Place, State};
use crate::netlink::nexthop::{parse_nexthop, RTM_DELNEXTHOP, RTM_NEWNEXTHOP};
use crate::netlink::rt::{parse_addr, parse_route, Route, RTM_DELADDR, RTM_DELROUTE, RTM_NEWROUTE};
use crate::record::Body;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long after its read of the state lwatch still takes a notification that changes
/// nothing for one the read already showed (see [`Reconcile`]). The kernel sends a
/// notification microseconds after the change it announces; this is margin for a process
/// that is preempted in between.
pub(super) const STARTUP_GRACE: Duration = Duration::from_millis(50);

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
pub(super) struct Reconcile {
    pub(super) base: Base,
    pub(super) before: State,
    /// Links `before` saw go down or away (its IPv4 routes to re-check).
    pub(super) flush: BTreeSet<u32>,
    /// What the records show of route places that differ from the state in what they show.
    pub(super) shown: BTreeMap<Place, Vec<Route>>,
    pub(super) until: Instant,
}

/// What the consumer of a [`Reconcile`]'s records holds when it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    /// The read (the start: `--dump`'s `present` records are the second read).
    Read,
    /// `before` (after lost notifications: what the records so far gave).
    Before,
}

impl Reconcile {
    pub(super) fn apply(
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
    pub(super) fn follow(
        &mut self,
        k: Place,
        by_before: bool,
        was: &[Route],
        from: &[Route],
        to: &[Route],
    ) {
        if by_before || self.shown.contains_key(&k) {
            let shown = self
                .shown
                .entry(k)
                .or_insert_with(|| visible(was).into_iter().cloned().collect());
            shift(shown, from, to);
        }
    }

    /// Writes what the records show of a route place that differs from the state.
    pub(super) fn settle(&mut self, state: &State, out: &mut Vec<Body>) {
        for (k, shown) in std::mem::take(&mut self.shown) {
            let now = state.routes.get(&k).map(Vec::as_slice).unwrap_or_default();
            let was: Vec<&Route> = shown.iter().collect();
            state.diff_shown(&was, &visible(now), None, out);
        }
    }
}

/// The route places that hold a route on a nexthop object, with their routes.
pub(super) fn places_on_objects(s: &State) -> BTreeMap<Place, Vec<Route>> {
    s.on_object
        .values()
        .flatten()
        .filter_map(|k| Some((*k, s.routes.get(k)?.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::rt::{AF_INET, NLM_F_REPLACE, RTM_NEWADDR};

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
}
