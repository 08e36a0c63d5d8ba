//! Counters of one listening socket, and the `stats` records made of them.
#![forbid(unsafe_code)]

use crate::record::{Drops, MalformedBy, ReflectorStats, Sessions};

/// Why a datagram was not answered; each dropped datagram has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Acl,
    Loop,
    RateLimit,
    GlobalCap,
    Malformed(Malformed),
    SendError,
    /// On a `--twamp-control` test port: no granted session has this sender and port.
    NoSession,
}

/// Why a datagram is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// No payload.
    Empty,
    /// A TWAMP request under 14 bytes.
    Short,
    /// Longer than `--max-size`.
    TooLong,
    /// No usable source address.
    Other,
    /// A keyed session's test packet whose HMAC does not verify.
    Hmac,
}

/// Session events of a TWAMP socket over some period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionEvents {
    pub started: u64,
    pub expired: u64,
    pub evicted: u64,
}

/// What one socket received, answered and dropped over some period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    pub reflected: u64,
    pub stamped: u64,
    pub dropped: Drops,
    pub malformed_by: MalformedBy,
    pub sessions: SessionEvents,
}

impl Counters {
    pub fn drop(&mut self, why: Reason) {
        let d = &mut self.dropped;
        *match why {
            Reason::Acl => &mut d.acl,
            Reason::Loop => &mut d.looped,
            Reason::RateLimit => &mut d.rate_limit,
            Reason::GlobalCap => &mut d.global_cap,
            Reason::Malformed(m) => {
                let by = &mut self.malformed_by;
                *match m {
                    Malformed::Empty => &mut by.empty,
                    Malformed::Short => &mut by.short,
                    Malformed::TooLong => &mut by.too_long,
                    Malformed::Other => &mut by.other,
                    Malformed::Hmac => &mut by.hmac,
                } += 1;
                &mut d.malformed
            }
            Reason::SendError => &mut d.send_error,
            Reason::NoSession => &mut d.no_session,
        } += 1;
    }

    pub fn dropped_total(&self) -> u64 {
        let d = &self.dropped;
        d.acl + d.looped + d.rate_limit + d.global_cap + d.malformed + d.send_error + d.no_session
    }

    pub fn add(&mut self, o: &Counters) {
        self.received += o.received;
        self.reflected += o.reflected;
        self.stamped += o.stamped;
        let (d, e) = (&mut self.dropped, &o.dropped);
        d.acl += e.acl;
        d.looped += e.looped;
        d.rate_limit += e.rate_limit;
        d.global_cap += e.global_cap;
        d.malformed += e.malformed;
        d.send_error += e.send_error;
        d.no_session += e.no_session;
        let (m, f) = (&mut self.malformed_by, &o.malformed_by);
        m.empty += f.empty;
        m.short += f.short;
        m.too_long += f.too_long;
        m.other += f.other;
        m.hmac += f.hmac;
        let (s, t) = (&mut self.sessions, &o.sessions);
        s.started += t.started;
        s.expired += t.expired;
        s.evicted += t.evicted;
    }

    /// The table figures of a stats record: `active` now, the events of these counters.
    fn table(&self, active: u64) -> Sessions {
        Sessions {
            active,
            started: self.sessions.started,
            expired: self.sessions.expired,
            evicted: self.sessions.evicted,
        }
    }

    /// The `stats` record of these counters. `active`: the sessions alive now, for a
    /// stateful TWAMP socket (then the record carries `sessions`), or the flows counted now, for
    /// an echo socket (then it carries `flows`).
    pub fn record(
        &self,
        listen: &str,
        mode: &str,
        window: &str,
        active: Option<u64>,
    ) -> ReflectorStats {
        ReflectorStats {
            listen: listen.to_string(),
            mode: mode.to_string(),
            window: window.to_string(),
            received: self.received,
            reflected: self.reflected,
            stamped: self.stamped,
            dropped: self.dropped,
            malformed_by: self.malformed_by,
            sessions: active
                .filter(|_| mode == "twamp")
                .map(|active| self.table(active)),
            flows: active
                .filter(|_| mode == "echo")
                .map(|active| self.table(active)),
            control: None,
        }
    }
}

/// A socket's counters: the open window, and the total of the closed ones. Each datagram
/// is counted once, in the window; closing a window adds it to the total.
#[derive(Debug, Clone, Default)]
pub struct SocketStats {
    pub window: Counters,
    closed: Counters,
}

impl SocketStats {
    /// Ends the window: returns its counters and starts a new one.
    pub fn close_window(&mut self) -> Counters {
        let w = std::mem::take(&mut self.window);
        self.closed.add(&w);
        w
    }

    /// Everything so far, the open window included.
    pub fn total(&self) -> Counters {
        let mut t = self.closed;
        t.add(&self.window);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_add_up_to_the_total() {
        let mut s = SocketStats::default();
        s.window.received = 6;
        s.window.reflected = 3;
        s.window.stamped = 1;
        s.window.drop(Reason::Acl);
        s.window.drop(Reason::Loop);
        s.window.drop(Reason::SendError);
        let w = s.close_window();
        assert_eq!(w.received, w.reflected + w.dropped_total());
        assert_eq!(s.window, Counters::default());
        s.window.received = 2;
        s.window.drop(Reason::Malformed(Malformed::Short));
        s.window.drop(Reason::GlobalCap);
        s.window.sessions.started = 2;
        let t = s.total();
        assert_eq!((t.received, t.reflected, t.stamped), (8, 3, 1));
        assert_eq!(
            t.dropped,
            Drops {
                acl: 1,
                looped: 1,
                rate_limit: 0,
                global_cap: 1,
                malformed: 1,
                send_error: 1,
                no_session: 0,
            }
        );
        assert_eq!(
            t.malformed_by,
            MalformedBy {
                short: 1,
                ..MalformedBy::default()
            }
        );
        let r = t.record("[::]:8081", "echo", "total", None);
        assert_eq!(
            (r.listen.as_str(), r.mode.as_str(), r.window.as_str()),
            ("[::]:8081", "echo", "total")
        );
        assert_eq!(r.received, r.reflected + t.dropped_total());
        assert_eq!((r.sessions, r.flows), (None, None));
        let r = t.record("[::]:8081", "echo", "total", Some(1));
        assert_eq!((r.sessions, r.flows.map(|f| f.started)), (None, Some(2)));
        let r = t.record("[::]:862", "twamp", "total", Some(1));
        assert_eq!(r.flows, None);
        assert_eq!(
            r.sessions,
            Some(Sessions {
                active: 1,
                started: 2,
                expired: 0,
                evicted: 0
            })
        );
    }
}
