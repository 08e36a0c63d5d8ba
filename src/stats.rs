//! Accumulators for probe results: loss, RTT (exact min/avg/max/mdev from integer sums,
//! percentiles by nearest rank), RFC 3550 jitter, duplicates, reordering.
#![forbid(unsafe_code)]

use crate::record::{ms, DelayStats, Flow, OneWay, RttStats, Summary};
use std::net::IpAddr;
use std::time::Duration;

/// Samples kept exactly for percentiles; past this many, a uniform reservoir sample of this
/// size is kept instead (memory stays bounded in runs of any length).
pub const RESERVOIR_CAP: usize = 100_000;

/// Statistics over one window (or the whole run) of one target or flow.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Probes settled: answered, lost or answered by an error.
    sent: u64,
    received: u64,
    dup: u64,
    reordered: u64,
    late: u64,
    unreachable: u64,
    sum_ns: u128,
    sum_sq_ns: u128,
    min_ns: u64,
    max_ns: u64,
    /// RFC 3550 interarrival jitter estimate, in nanoseconds.
    jitter_ns: f64,
    last_rtt_ns: Option<u64>,
    samples: Reservoir,
    /// Lost probes placed on the forward and reverse direction; `None` when nothing was placed.
    placed: Option<(u64, u64)>,
    /// Lost probes the reflector refused; `None` unless it says.
    refused: Option<u64>,
    /// One-way delays of the answers with both clocks synchronized, ns.
    fwd: Delays,
    rev: Delays,
    /// Routers each way, by the latest answer's TTLs.
    hops_fwd: Option<u8>,
    hops_rev: Option<u8>,
}

/// One-way delays in signed nanoseconds: exact min, max and mean, percentiles over a
/// reservoir as the RTT's.
#[derive(Debug, Clone, Default)]
struct Delays {
    n: u64,
    sum_ns: i128,
    min_ns: i64,
    max_ns: i64,
    samples: Reservoir<i64>,
}

impl Delays {
    fn push(&mut self, ns: i64) {
        self.min_ns = if self.n == 0 { ns } else { self.min_ns.min(ns) };
        self.max_ns = if self.n == 0 { ns } else { self.max_ns.max(ns) };
        self.n += 1;
        self.sum_ns += i128::from(ns);
        self.samples.push(ns);
    }

    fn stats(&self) -> Option<DelayStats> {
        if self.n == 0 {
            return None;
        }
        let mut sorted = self.samples.values.clone();
        sorted.sort_unstable();
        let ms = |ns: i64| ns as f64 / 1e6;
        let pct = |p: f64| ms(nearest_rank(&sorted, p));
        Some(DelayStats {
            min: ms(self.min_ns),
            avg: self.sum_ns as f64 / self.n as f64 / 1e6,
            max: ms(self.max_ns),
            p50: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
        })
    }
}

/// Routers a packet crossed, from the TTL it arrived with: the usual initial TTLs are 64
/// (Linux, BSD, macOS), 128 (Windows) and 255 (network gear, TWAMP senders and reflectors), so
/// the smallest of them at or above it is taken for the one it left with.
pub fn hops_from_ttl(ttl: u8) -> u8 {
    [64u8, 128, 255]
        .into_iter()
        .find(|&initial| initial >= ttl)
        .map_or(0, |initial| initial - ttl)
}

impl Stats {
    pub fn new() -> Self {
        Self::default()
    }

    /// A probe was answered after `rtt`; `reordered` when a later probe was answered first.
    pub fn reply(&mut self, rtt: Duration, reordered: bool) {
        let ns = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        self.sent += 1;
        self.received += 1;
        if reordered {
            self.reordered += 1;
        }
        self.sum_ns += u128::from(ns);
        self.sum_sq_ns += u128::from(ns) * u128::from(ns);
        self.min_ns = if self.received == 1 {
            ns
        } else {
            self.min_ns.min(ns)
        };
        self.max_ns = self.max_ns.max(ns);
        // RFC 3550 6.4.1: J += (|D| - J) / 16, D the difference of consecutive transit times.
        if let Some(last) = self.last_rtt_ns {
            let d = ns.abs_diff(last) as f64;
            self.jitter_ns += (d - self.jitter_ns) / 16.0;
        }
        self.last_rtt_ns = Some(ns);
        self.samples.push(ns);
    }

    /// A reflector's figures of an answered probe: its one-way delays when both clocks are
    /// synchronized, and the hop counts each way where the TTLs tell (`reply_ttl`: the TTL the
    /// answer arrived with).
    pub fn one_way(&mut self, ow: &OneWay, reply_ttl: Option<u8>) {
        let ns = |ms: f64| (ms * 1e6).round() as i64;
        if ow.synced {
            self.fwd.push(ns(ow.fwd_ms));
            if let Some(rev) = ow.rev_ms {
                self.rev.push(ns(rev));
            }
        }
        if let Some(ttl) = ow.reflector_ttl {
            self.hops_fwd = Some(hops_from_ttl(ttl));
        }
        if let Some(ttl) = reply_ttl {
            self.hops_rev = Some(hops_from_ttl(ttl));
        }
    }

    /// A probe got no answer within its timeout.
    pub fn lost(&mut self) {
        self.sent += 1;
    }

    /// A probe was answered by an ICMP error or could not be sent: lost, and counted apart.
    pub fn unreachable(&mut self) {
        self.sent += 1;
        self.unreachable += 1;
    }

    /// A second reply to an already answered probe.
    pub fn duplicate(&mut self) {
        self.dup += 1;
    }

    /// A reply to a probe that had already timed out (it stays counted as lost).
    pub fn late(&mut self) {
        self.late += 1;
    }

    /// Lost probes placed on a direction of the path (both may be 0: loss is being placed),
    /// and those the reflector refused, when it says.
    pub fn placed(&mut self, forward: u64, reverse: u64, refused: Option<u64>) {
        let p = self.placed.get_or_insert((0, 0));
        p.0 += forward;
        p.1 += reverse;
        if let Some(r) = refused {
            *self.refused.get_or_insert(0) += r;
        }
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// Lost share of the settled probes, in percent; `None` before any probe settled.
    pub fn loss_pct(&self) -> Option<f64> {
        (self.sent > 0).then(|| (self.sent - self.received) as f64 * 100.0 / self.sent as f64)
    }

    /// Mean RTT of the answered probes.
    pub fn avg_rtt(&self) -> Option<Duration> {
        (self.received > 0)
            .then(|| Duration::from_nanos((self.sum_ns / u128::from(self.received)) as u64))
    }

    /// RTT statistics in milliseconds; `None` without replies.
    pub fn rtt(&self) -> Option<RttStats> {
        if self.received == 0 {
            return None;
        }
        let n = u128::from(self.received);
        // Population variance times n², exact in integers: n·Σx² − (Σx)².
        let var_n2 = n
            .checked_mul(self.sum_sq_ns)
            .and_then(|a| a.checked_sub(self.sum_ns * self.sum_ns))
            .map(|v| v as f64)
            .unwrap_or_else(|| {
                let mean = self.sum_ns as f64 / n as f64;
                (self.sum_sq_ns as f64 / n as f64 - mean * mean).max(0.0) * (n as f64).powi(2)
            });
        let mut sorted = self.samples.values.clone();
        sorted.sort_unstable();
        let pct = |p: f64| ns_ms(nearest_rank(&sorted, p));
        Some(RttStats {
            min: ns_ms(self.min_ns),
            max: ns_ms(self.max_ns),
            avg: self.sum_ns as f64 / n as f64 / 1e6,
            mdev: var_n2.sqrt() / n as f64 / 1e6,
            p50: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
        })
    }

    /// Jitter in milliseconds; `None` before two replies.
    pub fn jitter(&self) -> Option<f64> {
        (self.received > 1).then(|| self.jitter_ns / 1e6)
    }

    /// The `summary` record body for these statistics.
    pub fn summary(&self, target: &str, addr: IpAddr, flow: Option<Flow>, window: &str) -> Summary {
        Summary {
            target: target.to_string(),
            addr,
            src: None,
            flow,
            window: window.to_string(),
            sent: self.sent,
            received: self.received,
            loss_pct: self.loss_pct(),
            dup: self.dup,
            reordered: self.reordered,
            late: self.late,
            unreachable: self.unreachable,
            rtt_ms: self.rtt(),
            jitter_ms: self.jitter(),
            lost_fwd: self.placed.map(|p| p.0),
            lost_rev: self.placed.map(|p| p.1),
            refused: self.refused,
            fwd_ms: self.fwd.stats(),
            rev_ms: self.rev.stats(),
            hops_fwd: self.hops_fwd,
            hops_rev: self.hops_rev,
            dropped_local: None,
        }
    }
}

fn ns_ms(ns: u64) -> f64 {
    ms(Duration::from_nanos(ns))
}

/// The nearest-rank percentile of sorted values: the smallest value with at least p % of the
/// values at or below it.
fn nearest_rank<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Up to [`RESERVOIR_CAP`] values: all of them, or a uniform sample (Vitter's algorithm R)
/// once more arrived. Deterministic: the generator is seeded the same way every time.
#[derive(Debug, Clone)]
struct Reservoir<T = u64> {
    values: Vec<T>,
    seen: u64,
    rng: u64,
}

impl<T> Default for Reservoir<T> {
    fn default() -> Self {
        Reservoir {
            values: Vec::new(),
            seen: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl<T> Reservoir<T> {
    fn push(&mut self, v: T) {
        self.seen += 1;
        if self.values.len() < RESERVOIR_CAP {
            self.values.push(v);
            return;
        }
        // xorshift64*: plenty for sampling, no dependency.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % self.seen;
        if (r as usize) < RESERVOIR_CAP {
            self.values[r as usize] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn min_avg_max_mdev_match_ping_formula() {
        let mut s = Stats::new();
        for v in [100, 200, 300, 400] {
            s.reply(us(v), false);
        }
        let r = s.rtt().unwrap();
        assert_eq!((r.min, r.avg, r.max), (0.1, 0.25, 0.4));
        // sqrt(mean(x²) − mean(x)²) = sqrt(75000 − 62500) µs = 111.803… µs
        assert!(
            (r.mdev - 0.111_803_398_874_989_5).abs() < 1e-12,
            "{}",
            r.mdev
        );
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut s = Stats::new();
        for v in 1..=100 {
            s.reply(us(v), false);
        }
        let r = s.rtt().unwrap();
        assert_eq!((r.p50, r.p90, r.p99), (0.05, 0.09, 0.099));
        let mut one = Stats::new();
        one.reply(us(7), false);
        let r = one.rtt().unwrap();
        assert_eq!((r.p50, r.p99), (0.007, 0.007));
    }

    #[test]
    fn loss_counts_timeouts_and_errors_but_not_duplicates() {
        let mut s = Stats::new();
        assert_eq!(s.loss_pct(), None);
        s.reply(us(10), false);
        s.duplicate();
        s.lost();
        s.unreachable();
        s.late();
        let sum = s.summary("t", "10.0.0.1".parse().unwrap(), None, "total");
        assert_eq!((sum.sent, sum.received, sum.dup), (3, 1, 1));
        assert_eq!((sum.unreachable, sum.late), (1, 1));
        assert!((sum.loss_pct.unwrap() - 200.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn placed_loss_shows_only_once_placed() {
        let mut s = Stats::new();
        s.lost();
        let sum = s.summary("t", "10.0.0.1".parse().unwrap(), None, "total");
        assert_eq!((sum.lost_fwd, sum.lost_rev), (None, None));
        s.placed(0, 0, None);
        s.placed(2, 1, None);
        s.placed(1, 0, None);
        let sum = s.summary("t", "10.0.0.1".parse().unwrap(), None, "total");
        assert_eq!((sum.lost_fwd, sum.lost_rev), (Some(3), Some(1)));
        assert_eq!(sum.refused, None, "a reflector that does not say");
        s.placed(0, 0, Some(0));
        s.placed(0, 1, Some(4));
        let sum = s.summary("t", "10.0.0.1".parse().unwrap(), None, "total");
        assert_eq!((sum.lost_rev, sum.refused), (Some(2), Some(4)));
    }

    fn one_way(fwd_ms: f64, rev_ms: f64, synced: bool, reflector_ttl: Option<u8>) -> OneWay {
        OneWay {
            fwd_ms,
            rev_ms: Some(rev_ms),
            reflector_ms: 0.01,
            dscp_rx: None,
            synced,
            reflector_seq: None,
            reflector_ttl,
            tlv: None,
        }
    }

    #[test]
    fn one_way_delays_only_from_synchronized_clocks() {
        let mut s = Stats::new();
        s.one_way(&one_way(5.0, 1.0, false, None), Some(64));
        let sum = s.summary("t", "10.0.0.1".parse().unwrap(), None, "total");
        assert_eq!((sum.fwd_ms, sum.rev_ms, sum.hops_fwd), (None, None, None));
        assert_eq!(sum.hops_rev, Some(0), "the reply's TTL tells even so");
        for (f, r) in [(0.3, 0.2), (0.1, -0.05), (0.2, 0.1), (0.4, 0.3)] {
            s.one_way(&one_way(f, r, true, Some(253)), Some(62));
        }
        let sum = s.summary("t", "10.0.0.1".parse().unwrap(), None, "total");
        let fwd = sum.fwd_ms.unwrap();
        assert_eq!((fwd.min, fwd.max, fwd.p50, fwd.p99), (0.1, 0.4, 0.2, 0.4));
        assert!((fwd.avg - 0.25).abs() < 1e-9);
        let rev = sum.rev_ms.unwrap();
        assert_eq!((rev.min, rev.max), (-0.05, 0.3), "clocks a little apart");
        assert_eq!((sum.hops_fwd, sum.hops_rev), (Some(2), Some(2)));
    }

    #[test]
    fn hops_from_the_usual_initial_ttls() {
        assert_eq!(hops_from_ttl(64), 0);
        assert_eq!(hops_from_ttl(63), 1);
        assert_eq!(hops_from_ttl(65), 63, "above 64: started at 128");
        assert_eq!(hops_from_ttl(126), 2);
        assert_eq!(hops_from_ttl(254), 1);
        assert_eq!(hops_from_ttl(255), 0);
        assert_eq!(hops_from_ttl(1), 63);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut s = Stats::new();
        assert_eq!(s.jitter(), None);
        s.reply(us(100), false);
        s.reply(us(260), false); // D = 160 µs: J = 10 µs
        s.reply(us(100), false); // D = 160 µs: J = 10 + 150/16 = 19.375 µs
        assert!((s.jitter().unwrap() - 0.019375).abs() < 1e-12);
    }

    #[test]
    fn reordered_is_counted() {
        let mut s = Stats::new();
        s.reply(us(1), false);
        s.reply(us(1), true);
        assert_eq!(
            s.summary("t", "::1".parse().unwrap(), None, "total")
                .reordered,
            1
        );
    }

    #[test]
    fn reservoir_bounds_memory_and_stays_representative() {
        let mut s = Stats::new();
        let n = RESERVOIR_CAP as u64 * 3;
        for i in 0..n {
            s.reply(Duration::from_nanos(i % 1000 + 1), false);
        }
        assert_eq!(s.samples.values.len(), RESERVOIR_CAP);
        let r = s.rtt().unwrap();
        // Uniform 1..=1000 ns: the median of a 100k sample is within 2 % of 500 ns.
        assert!((r.p50 * 1e6 - 500.0).abs() < 10.0, "p50 {}", r.p50);
        // min/max/avg stay exact over all values.
        assert_eq!((r.min, r.max), (1e-6, 1e-3));
        assert!((r.avg - 500.5e-6).abs() < 1e-12);
    }
}
