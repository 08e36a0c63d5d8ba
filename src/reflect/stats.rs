//! Counters of one listening socket, and the `stats` records made of them.

use crate::record::{Drops, ReflectorStats};

/// Why a datagram was not answered; each dropped datagram has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Acl,
    RateLimit,
    GlobalCap,
    Malformed,
    SendError,
}

/// What one socket received, answered and dropped over some period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    pub reflected: u64,
    pub stamped: u64,
    pub dropped: Drops,
}

impl Counters {
    pub fn drop(&mut self, why: Reason) {
        let d = &mut self.dropped;
        *match why {
            Reason::Acl => &mut d.acl,
            Reason::RateLimit => &mut d.rate_limit,
            Reason::GlobalCap => &mut d.global_cap,
            Reason::Malformed => &mut d.malformed,
            Reason::SendError => &mut d.send_error,
        } += 1;
    }

    pub fn dropped_total(&self) -> u64 {
        let d = &self.dropped;
        d.acl + d.rate_limit + d.global_cap + d.malformed + d.send_error
    }

    pub fn add(&mut self, o: &Counters) {
        self.received += o.received;
        self.reflected += o.reflected;
        self.stamped += o.stamped;
        let (d, e) = (&mut self.dropped, &o.dropped);
        d.acl += e.acl;
        d.rate_limit += e.rate_limit;
        d.global_cap += e.global_cap;
        d.malformed += e.malformed;
        d.send_error += e.send_error;
    }

    pub fn record(&self, listen: &str, window: &str) -> ReflectorStats {
        ReflectorStats {
            listen: listen.to_string(),
            window: window.to_string(),
            received: self.received,
            reflected: self.reflected,
            stamped: self.stamped,
            dropped: self.dropped,
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
        s.window.received = 5;
        s.window.reflected = 3;
        s.window.stamped = 1;
        s.window.drop(Reason::Acl);
        s.window.drop(Reason::SendError);
        let w = s.close_window();
        assert_eq!(w.received, w.reflected + w.dropped_total());
        assert_eq!(s.window, Counters::default());
        s.window.received = 2;
        s.window.drop(Reason::Malformed);
        s.window.drop(Reason::GlobalCap);
        let t = s.total();
        assert_eq!((t.received, t.reflected, t.stamped), (7, 3, 1));
        assert_eq!(
            t.dropped,
            Drops {
                acl: 1,
                rate_limit: 0,
                global_cap: 1,
                malformed: 1,
                send_error: 1
            }
        );
        let r = t.record("[::]:8081", "total");
        assert_eq!(
            (r.listen.as_str(), r.window.as_str()),
            ("[::]:8081", "total")
        );
        assert_eq!(r.received, r.reflected + t.dropped_total());
    }
}
