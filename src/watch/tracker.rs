//! The followed state and what keeps it true: notifications applied as they come, and the
//! re-reads of what they cannot tell (after lost ones; IPv4 routes and nexthop objects the
//! kernel flushes silently).
#![forbid(unsafe_code)]

use super::args::Follow;
use super::read::{apply, ipv4_routes, read_nexthops, read_state};
use super::reconcile::{places_on_objects, Base, Reconcile};
use super::state::{place, shift, State};
use crate::netlink::rt::{walk_notifications_flagged, Route};
use crate::netlink::{Received, RouteSocket, Subscription};
use crate::record::{Body, WatchResync};
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How long after a link went down or away its IPv4 routes are re-read a second time.
pub(super) const FLUSH_RECHECK: Duration = Duration::from_millis(200);

/// The followed state and what keeps it true: the subscription, a socket for re-reads, the
/// links whose IPv4 routes to re-read.
pub(super) struct Watch {
    pub(super) state: State,
    pub(super) reconcile: Option<Reconcile>,
    pub(super) sub: Subscription,
    pub(super) sock: RouteSocket,
    pub(super) msgs: Vec<(u16, Vec<u8>)>,
    pub(super) flush: BTreeSet<u32>,
    /// Links to check once more for flushed routes, and when: the kernel announces a link
    /// going down before it flushes the link's IPv4 routes, so a re-read at once can be early.
    pub(super) recheck: Option<(Instant, BTreeSet<u32>)>,
    pub(super) follow: Follow,
}

impl Watch {
    /// Applies every notification queued, then re-reads what the notifications cannot tell:
    /// everything after lost ones (see [`Reconcile`], [`Base::Before`]: the notifications
    /// queued behind the loss are applied to the read and to the picture the records gave,
    /// then what still differs is written), the IPv4 routes of links that went down or away.
    pub(super) fn drain(&mut self, bodies: &mut Vec<Body>) -> Result<()> {
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
    pub(super) fn reread_after_loss(&mut self, bodies: &mut Vec<Body>) -> Result<()> {
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
    pub(super) fn resync(&mut self, mut shown: State, bodies: &mut Vec<Body>) {
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
    pub(super) fn reread_flushed(&mut self, bodies: &mut Vec<Body>) -> Result<()> {
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
    pub(super) fn flush_nexthops(&mut self, bodies: &mut Vec<Body>) -> Result<()> {
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
    pub(super) fn ipv4_routes(&mut self) -> Result<Vec<Route>> {
        let mut routes = ipv4_routes(&mut self.sock, &mut self.msgs)?;
        for r in &mut routes {
            self.state.prepare(r);
        }
        Ok(routes)
    }

    /// The second look at links that went down or away, once it is due.
    pub(super) fn recheck(&mut self, now: Instant, bodies: &mut Vec<Body>) -> Result<bool> {
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

pub(super) fn mark_resync(body: &mut Body) {
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
