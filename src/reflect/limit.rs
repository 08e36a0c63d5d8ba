//! Rate limits: a token bucket per source in a table of fixed size, and a global cap.
//!
//! Both buckets are GCRA (the generic cell rate algorithm, the token bucket written as one
//! "theoretical arrival time" per bucket): a datagram conforms when admitting it keeps the
//! bucket's debt within the burst. One `u64` per source, no timers, no refill loop.
//!
//! The source table has a fixed number of entries, allocated and touched at start, so a flood
//! from any number of (spoofed) sources cannot grow memory. It is set-associative: a keyed hash
//! picks a set of [`WAYS`] entries; a new source takes the entry whose bucket is fullest. A
//! full bucket holds no state (a fresh entry starts full), so evicting an idle source loses
//! nothing; only when every entry of a set is in debt does a busy source lose its debt, and
//! the hash key is random per process, so senders cannot aim at one set.
#![forbid(unsafe_code)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

/// Entries per set of the source table.
pub const WAYS: usize = 8;

/// A rate and burst as GCRA parameters, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Time one datagram uses up (1 / rate).
    interval_ns: u64,
    /// Debt allowed ahead of now: burst × interval.
    limit_ns: u64,
}

impl Gcra {
    /// `pps` datagrams per second on average, at most `burst` at once.
    pub fn new(pps: f64, burst: u64) -> Gcra {
        let interval_ns = ((1e9 / pps).round() as u64).max(1);
        Gcra {
            interval_ns,
            limit_ns: interval_ns.saturating_mul(burst.max(1)),
        }
    }

    /// The bucket's next state if a datagram at `now_ns` conforms, else `None` (the state
    /// is left as it was: a refused datagram costs nothing).
    pub fn admit(&self, tat: u64, now_ns: u64) -> Option<u64> {
        let next = tat.max(now_ns).saturating_add(self.interval_ns);
        (next - now_ns <= self.limit_ns).then_some(next)
    }
}

/// Why a datagram is refused by the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    RateLimit,
    GlobalCap,
}

/// An IP address as a table key: IPv4 and IPv4-mapped IPv6 share the mapped form. `0` (the
/// unspecified address, never a source) marks an empty entry.
fn key(src: IpAddr) -> u128 {
    match src {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: u128,
    tat: u64,
}

/// The per-source buckets: a fixed table, see the module documentation.
pub struct SourceTable {
    gcra: Gcra,
    entries: Vec<Entry>,
    set_mask: usize,
    hasher: RandomState,
}

impl SourceTable {
    /// A table for at least `capacity` sources (rounded up to a power of two, at least one set).
    pub fn new(gcra: Gcra, capacity: usize) -> SourceTable {
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        // Written element by element (not calloc'd), so every page is resident from the
        // start and the resident size does not grow when sources arrive.
        let entries = vec![Entry { key: 0, tat: 0 }; sets * WAYS];
        SourceTable {
            gcra,
            entries,
            set_mask: sets - 1,
            hasher: RandomState::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Bytes the table holds (fixed for its lifetime).
    pub fn bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// The entry index of `src`, taking one over if it has none: the source's own entry, else
    /// an empty one, else the fullest bucket of the set (an idle one is as good as empty).
    fn slot(&mut self, k: u128, now_ns: u64) -> usize {
        let set = (self.hasher.hash_one(k) as usize) & self.set_mask;
        let base = set * WAYS;
        let ways = &mut self.entries[base..base + WAYS];
        if let Some(i) = ways.iter().position(|e| e.key == k) {
            return base + i;
        }
        let victim = ways
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| if e.key == 0 { 0 } else { e.tat.max(now_ns) })
            .map(|(i, _)| i)
            .unwrap_or(0);
        ways[victim] = Entry { key: k, tat: 0 };
        base + victim
    }

    /// Checks `src`'s bucket; on success returns the entry and its next state, to be stored
    /// with [`SourceTable::commit`] once every other limit agreed too.
    pub fn check(&mut self, src: IpAddr, now_ns: u64) -> Option<(usize, u64)> {
        let i = self.slot(key(src), now_ns);
        self.gcra
            .admit(self.entries[i].tat, now_ns)
            .map(|next| (i, next))
    }

    pub fn commit(&mut self, slot: usize, tat: u64) {
        self.entries[slot].tat = tat;
    }
}

/// The per-source limit and the global cap, checked together: a datagram is charged to
/// either bucket only if both admit it.
pub struct Limits {
    per_source: Option<SourceTable>,
    global: Option<(Gcra, u64)>,
}

impl Limits {
    pub fn new(per_source: Option<SourceTable>, global: Option<Gcra>) -> Limits {
        Limits {
            per_source,
            global: global.map(|g| (g, 0)),
        }
    }

    /// Admits a datagram from `src` at `now_ns` (monotonic), or says which limit refused it.
    pub fn admit(&mut self, src: IpAddr, now_ns: u64) -> Result<(), Refusal> {
        let source = match self.per_source.as_mut() {
            Some(t) => Some(t.check(src, now_ns).ok_or(Refusal::RateLimit)?),
            None => None,
        };
        if let Some((gcra, tat)) = self.global.as_mut() {
            *tat = gcra.admit(*tat, now_ns).ok_or(Refusal::GlobalCap)?;
        }
        if let (Some(t), Some((slot, tat))) = (self.per_source.as_mut(), source) {
            t.commit(slot, tat);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const SEC: u64 = 1_000_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn gcra_allows_the_burst_then_the_rate() {
        let g = Gcra::new(100.0, 10);
        let mut tat = 0;
        let now = 5 * SEC;
        let mut passed = 0;
        for _ in 0..50 {
            if let Some(t) = g.admit(tat, now) {
                tat = t;
                passed += 1;
            }
        }
        assert_eq!(passed, 10, "the burst, at one instant");
        // 100 pps: one more every 10 ms.
        assert!(g.admit(tat, now + 9_000_000).is_none());
        assert!(g.admit(tat, now + 10_000_000).is_some());
        // A second later the bucket is full again.
        let mut passed = 0;
        for _ in 0..50 {
            if let Some(t) = g.admit(tat, now + SEC) {
                tat = t;
                passed += 1;
            }
        }
        assert_eq!(passed, 10);
    }

    #[test]
    fn gcra_keeps_the_average_rate() {
        let g = Gcra::new(1000.0, 5);
        let mut tat = 0;
        let mut passed = 0;
        // Offered: 10,000 pps for one second, in 100 µs steps.
        for step in 0..10_000u64 {
            if let Some(t) = g.admit(tat, SEC + step * 100_000) {
                tat = t;
                passed += 1;
            }
        }
        assert!((1000..=1006).contains(&passed), "{passed}");
    }

    #[test]
    fn sources_have_their_own_buckets_and_mapped_is_ipv4() {
        let mut t = SourceTable::new(Gcra::new(1.0, 2), 64);
        let now = SEC;
        for src in ["10.0.0.1", "10.0.0.1"] {
            let (slot, tat) = t.check(ip(src), now).unwrap();
            t.commit(slot, tat);
        }
        assert!(t.check(ip("10.0.0.1"), now).is_none(), "burst used up");
        assert!(
            t.check(ip("::ffff:10.0.0.1"), now).is_none(),
            "the mapped form is the same source"
        );
        assert!(t.check(ip("10.0.0.2"), now).is_some(), "another source");
    }

    #[test]
    fn table_stays_fixed_under_a_million_sources() {
        let mut t = SourceTable::new(Gcra::new(10.0, 1), 1000);
        assert_eq!(t.capacity(), 1024);
        let bytes = t.bytes();
        let mut admitted = 0;
        for i in 0..1_000_000u32 {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            if let Some((slot, tat)) = t.check(src, SEC + u64::from(i) * 1000) {
                t.commit(slot, tat);
                admitted += 1;
            }
        }
        assert_eq!(
            admitted, 1_000_000,
            "every new source starts with a full bucket"
        );
        assert_eq!((t.capacity(), t.bytes()), (1024, bytes), "no growth");
    }

    #[test]
    fn a_source_in_debt_outlives_idle_ones() {
        let mut t = SourceTable::new(Gcra::new(10.0, 1), 16);
        let busy = ip("192.0.2.1");
        let (slot, tat) = t.check(busy, SEC).unwrap();
        t.commit(slot, tat);
        // Ten thousand sources pass by; none is charged, so their buckets stay full and they
        // are the preferred victims.
        for i in 0..10_000u32 {
            let src = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
            assert!(t.check(src, SEC + 1 + u64::from(i)).is_some());
        }
        assert!(
            t.check(busy, SEC + 20_000).is_none(),
            "the busy source kept its entry (a fresh one would admit)"
        );
    }

    #[test]
    fn limits_charge_neither_bucket_when_one_refuses() {
        let table = SourceTable::new(Gcra::new(1.0, 1), 16);
        let mut l = Limits::new(Some(table), Some(Gcra::new(1.0, 2)));
        let now = SEC;
        assert_eq!(l.admit(ip("10.0.0.1"), now), Ok(()));
        assert_eq!(l.admit(ip("10.0.0.1"), now), Err(Refusal::RateLimit));
        assert_eq!(l.admit(ip("10.0.0.2"), now), Ok(()));
        // The global bucket is empty now: 10.0.0.3 is refused by it and not charged.
        assert_eq!(l.admit(ip("10.0.0.3"), now), Err(Refusal::GlobalCap));
        assert_eq!(l.admit(ip("10.0.0.3"), now + SEC), Ok(()));
        let mut none = Limits::new(None, None);
        for _ in 0..1000 {
            assert_eq!(none.admit(ip("10.0.0.1"), now), Ok(()));
        }
    }
}
