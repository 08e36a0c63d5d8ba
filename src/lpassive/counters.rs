//! Counter deltas between two dumps, resets, and the per-interface totals of a run.

use crate::netlink::parse::Counters;

/// What an interface's counters did over one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub counters: Counters,
    /// Some counter went backwards: the interface was re-created under the same index or
    /// its driver reset its statistics. The counters then start from zero within the
    /// interval, so the delta is their current value (as Prometheus' `rate()` treats a reset),
    /// never a subtraction that would wrap around 2^64.
    pub reset: bool,
}

/// A counter went backwards.
struct WentBack;

fn sub(p: u64, c: u64) -> Result<u64, WentBack> {
    c.checked_sub(p).ok_or(WentBack)
}

/// A counter the kernel sent only on one side is absent from the delta.
fn sub_opt(p: Option<u64>, c: Option<u64>) -> Result<Option<u64>, WentBack> {
    match (p, c) {
        (Some(p), Some(c)) => sub(p, c).map(Some),
        _ => Ok(None),
    }
}

fn subtract(prev: &Counters, cur: &Counters) -> Result<Counters, WentBack> {
    Ok(Counters {
        rx_packets: sub(prev.rx_packets, cur.rx_packets)?,
        tx_packets: sub(prev.tx_packets, cur.tx_packets)?,
        rx_bytes: sub(prev.rx_bytes, cur.rx_bytes)?,
        tx_bytes: sub(prev.tx_bytes, cur.tx_bytes)?,
        rx_errors: sub(prev.rx_errors, cur.rx_errors)?,
        tx_errors: sub(prev.tx_errors, cur.tx_errors)?,
        rx_dropped: sub(prev.rx_dropped, cur.rx_dropped)?,
        tx_dropped: sub(prev.tx_dropped, cur.tx_dropped)?,
        multicast: sub_opt(prev.multicast, cur.multicast)?,
        collisions: sub_opt(prev.collisions, cur.collisions)?,
        rx_missed: sub_opt(prev.rx_missed, cur.rx_missed)?,
    })
}

/// `cur − prev`, or the reset reading of [`Delta`] when any counter decreased.
pub fn delta(prev: &Counters, cur: &Counters) -> Delta {
    match subtract(prev, cur) {
        Ok(counters) => Delta {
            counters,
            reset: false,
        },
        Err(WentBack) => Delta {
            counters: *cur,
            reset: true,
        },
    }
}

/// Rates over an interval of `secs` seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub rx_bps: f64,
    pub tx_bps: f64,
    pub rx_pps: f64,
    pub tx_pps: f64,
}

impl Rates {
    pub fn of(c: &Counters, secs: f64) -> Rates {
        if secs <= 0.0 {
            return Rates::default();
        }
        Rates {
            rx_bps: c.rx_bytes as f64 * 8.0 / secs,
            tx_bps: c.tx_bytes as f64 * 8.0 / secs,
            rx_pps: c.rx_packets as f64 / secs,
            tx_pps: c.tx_packets as f64 / secs,
        }
    }

    fn max(&self, o: &Rates) -> Rates {
        Rates {
            rx_bps: self.rx_bps.max(o.rx_bps),
            tx_bps: self.tx_bps.max(o.tx_bps),
            rx_pps: self.rx_pps.max(o.rx_pps),
            tx_pps: self.tx_pps.max(o.tx_pps),
        }
    }
}

/// Errors (rx + tx) per second: the `--alert-errors` metric.
pub fn errors_pps(c: &Counters, secs: f64) -> f64 {
    per_sec(c.rx_errors.saturating_add(c.tx_errors), secs)
}

/// Packets dropped (rx + tx + missed by the NIC) per second: the `--alert-drops` metric.
pub fn drops_pps(c: &Counters, secs: f64) -> f64 {
    let n = c
        .rx_dropped
        .saturating_add(c.tx_dropped)
        .saturating_add(c.rx_missed.unwrap_or(0));
    per_sec(n, secs)
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Sums of the deltas of a run, and the peak rates of its samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub samples: u64,
    pub resets: u64,
    pub secs: f64,
    pub sum: Counters,
    pub peak: Rates,
}

impl Totals {
    pub fn add(&mut self, d: &Delta, secs: f64) {
        self.samples += 1;
        self.resets += d.reset as u64;
        self.secs += secs;
        let s = &mut self.sum;
        let c = &d.counters;
        s.rx_packets = s.rx_packets.saturating_add(c.rx_packets);
        s.tx_packets = s.tx_packets.saturating_add(c.tx_packets);
        s.rx_bytes = s.rx_bytes.saturating_add(c.rx_bytes);
        s.tx_bytes = s.tx_bytes.saturating_add(c.tx_bytes);
        s.rx_errors = s.rx_errors.saturating_add(c.rx_errors);
        s.tx_errors = s.tx_errors.saturating_add(c.tx_errors);
        s.rx_dropped = s.rx_dropped.saturating_add(c.rx_dropped);
        s.tx_dropped = s.tx_dropped.saturating_add(c.tx_dropped);
        let add = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        s.multicast = add(s.multicast, c.multicast);
        s.collisions = add(s.collisions, c.collisions);
        s.rx_missed = add(s.rx_missed, c.rx_missed);
        self.peak = self.peak.max(&Rates::of(c, secs));
    }

    /// Average rates over the sampled time.
    pub fn average(&self) -> Rates {
        Rates::of(&self.sum, self.secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(bytes: u64, packets: u64) -> Counters {
        Counters {
            rx_bytes: bytes,
            tx_bytes: bytes * 2,
            rx_packets: packets,
            tx_packets: packets * 2,
            multicast: Some(0),
            collisions: Some(0),
            rx_missed: Some(packets),
            ..Counters::default()
        }
    }

    #[test]
    fn deltas_subtract_and_rates_scale_by_the_interval() {
        let d = delta(&c(1000, 10), &c(3000, 30));
        assert!(!d.reset);
        assert_eq!((d.counters.rx_bytes, d.counters.tx_packets), (2000, 40));
        assert_eq!(d.counters.rx_missed, Some(20));
        let r = Rates::of(&d.counters, 0.5);
        assert_eq!(
            (r.rx_bps, r.tx_bps, r.rx_pps, r.tx_pps),
            (32000.0, 64000.0, 40.0, 80.0)
        );
        assert_eq!(drops_pps(&d.counters, 0.5), 40.0);
        assert_eq!(Rates::of(&d.counters, 0.0), Rates::default());
    }

    #[test]
    fn a_counter_going_back_is_a_reset_not_a_wrap() {
        let d = delta(&c(u64::MAX / 2, 1_000_000), &c(420, 7));
        assert!(d.reset);
        assert_eq!(d.counters, c(420, 7), "since the reset, counted from zero");
        // One counter going back is enough.
        let mut cur = c(5000, 50);
        cur.rx_errors = 0;
        let mut prev = c(4000, 40);
        prev.rx_errors = 3;
        assert!(delta(&prev, &cur).reset);
        let mut cur = c(5000, 50);
        cur.rx_missed = Some(0);
        assert!(delta(&c(4000, 40), &cur).reset);
    }

    #[test]
    fn counters_missing_on_one_side_are_absent() {
        let mut prev = c(0, 0);
        prev.collisions = None;
        let d = delta(&prev, &c(10, 1));
        assert!(!d.reset);
        assert_eq!(d.counters.collisions, None);
        assert_eq!(d.counters.multicast, Some(0));
    }

    #[test]
    fn totals_sum_average_and_keep_peaks() {
        let mut t = Totals::default();
        t.add(&delta(&c(0, 0), &c(1000, 10)), 1.0);
        t.add(&delta(&c(1000, 10), &c(4000, 40)), 1.0);
        t.add(&delta(&c(4000, 40), &c(100, 1)), 2.0);
        assert_eq!((t.samples, t.resets), (3, 1));
        assert_eq!(t.sum.rx_bytes, 1000 + 3000 + 100);
        assert_eq!(t.peak.rx_bps, 24000.0);
        assert_eq!(t.average().rx_bps, 4100.0 * 8.0 / 4.0);
    }
}
