//! The sessions of a stateful TWAMP-Light / STAMP Session-Reflector (RFC 8762 4.3.1): each
//! session counts its own replies from 0, so a sender can tell forward from reverse loss.
//!
//! A session is a client address and port, a local address and port, and the SSID. It ends
//! when it has been idle for the timeout (its next packet starts it again from 0), or when the
//! table is full and a new session needs its entry.
//!
//! The table has a fixed number of entries, allocated and written at start, as lreflect's
//! source table ([`super::limit`]): a flood of new sessions cannot grow memory. It is
//! set-associative with a random hash key: a new session takes an empty or expired entry of
//! its set, else the entry of the set's least recently seen session. So a flood evicts idle
//! sessions before busy ones, and a busy session (one packet a second) is evicted only by a
//! flood of more new sessions per second than its set holds entries.
//!
//! lreflect's echo sockets keep a second table of the same kind for the flows of ludp probes
//! ([`SessionTable::count`]): per flow (the same key, SSID 0), the probes received and those its
//! rate limits refused, stamped into every answer so ludp can place its loss by direction.
#![forbid(unsafe_code)]

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

/// Entries per set.
pub const WAYS: usize = 8;

/// What identifies a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SessionKey {
    /// Client address, IPv4 as IPv4-mapped IPv6 (so a dual-stack socket's IPv4 clients and
    /// an IPv4 socket's are the same form).
    client: [u8; 16],
    /// The local address the request was sent to, in the same form.
    local: [u8; 16],
    client_port: u16,
    local_port: u16,
    ssid: u16,
}

fn mapped(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

impl SessionKey {
    pub fn new(
        client: IpAddr,
        client_port: u16,
        local: IpAddr,
        local_port: u16,
        ssid: u16,
    ) -> SessionKey {
        SessionKey {
            client: mapped(client),
            local: mapped(local),
            client_port,
            local_port,
            ssid,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: SessionKey,
    /// Monotonic time of the session's last packet, ns.
    last_ns: u64,
    /// The sequence number of its next reply (a counted flow: its probes received so far).
    next_seq: u32,
    /// A counted flow: its probes refused so far.
    refused: u32,
    /// Index of the listening socket the session belongs to (for its counters).
    listener: u16,
    used: bool,
}

/// What a packet did to the table, besides getting its sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Update {
    /// The reply's sequence number.
    pub seq: u32,
    /// The session's packets refused so far ([`SessionTable::refuse`]; TWAMP sessions).
    pub refused: u32,
    /// The packet began a session.
    pub started: bool,
    /// A session ended: idle past the timeout (`expired`) or made room (`evicted`); the
    /// listener it belonged to.
    pub expired: Option<u16>,
    pub evicted: Option<u16>,
}

/// The sessions; see the module documentation.
pub struct SessionTable {
    entries: Vec<Entry>,
    set_mask: usize,
    hasher: RandomState,
    /// Idle time after which a session ends; `None`: never (only eviction ends it).
    timeout_ns: Option<u64>,
    /// The entry of the last packet: consecutive packets of one session skip the hash.
    last: usize,
}

impl SessionTable {
    /// A table for at least `capacity` sessions (rounded up to a power of two, at least one
    /// set of [`WAYS`]).
    pub fn new(capacity: usize, timeout_ns: Option<u64>) -> SessionTable {
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        // Written element by element, so every page is resident from the start.
        let entries = vec![
            Entry {
                key: SessionKey::default(),
                last_ns: 0,
                next_seq: 0,
                refused: 0,
                listener: 0,
                used: false,
            };
            sets * WAYS
        ];
        SessionTable {
            entries,
            set_mask: sets - 1,
            hasher: RandomState::new(),
            timeout_ns,
            last: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Bytes the table holds (fixed for its lifetime).
    pub fn bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
    }

    fn idle(&self, e: &Entry, now_ns: u64) -> bool {
        self.timeout_ns
            .is_some_and(|t| now_ns.saturating_sub(e.last_ns) > t)
    }

    /// The sequence number for a packet of session `key` (on listening socket `listener`) at
    /// monotonic time `now_ns`, starting the session if it has none.
    pub fn next(&mut self, key: &SessionKey, listener: u16, now_ns: u64) -> Update {
        let (i, mut up) = self.find(key, listener, now_ns);
        let e = &mut self.entries[i];
        up.seq = e.next_seq;
        up.refused = e.refused;
        e.next_seq = e.next_seq.wrapping_add(1);
        up
    }

    /// Counts a packet of TWAMP session `key` that lreflect's limits refused: it gets no
    /// sequence number, but the session's Direct Measurement counters (RFC 8972 §4.5) count
    /// it as received and not answered. Only a live session counts it: refused traffic never
    /// starts a session, so a flood the limits refuse cannot evict the sessions being answered.
    /// Returns whether it was counted.
    pub fn refuse(&mut self, key: &SessionKey, now_ns: u64) -> bool {
        let set = (self.hasher.hash_one(key) as usize) & self.set_mask;
        let base = set * WAYS;
        let Some(w) = self.entries[base..base + WAYS]
            .iter()
            .position(|e| e.used && e.key == *key)
        else {
            return false;
        };
        let e = &mut self.entries[base + w];
        if self
            .timeout_ns
            .is_some_and(|t| now_ns.saturating_sub(e.last_ns) > t)
        {
            return false;
        }
        e.refused = e.refused.wrapping_add(1);
        e.last_ns = now_ns;
        true
    }

    /// Counts a probe of flow `key` received at `now_ns`, `refused` or answered; returns the
    /// flow's counts with it (as [`SessionTable::next`] does, `seq` the count before it).
    pub fn count(
        &mut self,
        key: &SessionKey,
        listener: u16,
        now_ns: u64,
        refused: bool,
    ) -> (Update, crate::wire::ludp_payload::FlowCounts) {
        let (i, mut up) = self.find(key, listener, now_ns);
        let e = &mut self.entries[i];
        up.seq = e.next_seq;
        e.next_seq = e.next_seq.wrapping_add(1);
        e.refused = e.refused.wrapping_add(u32::from(refused));
        let counts = crate::wire::ludp_payload::FlowCounts {
            received: e.next_seq,
            refused: e.refused,
        };
        (up, counts)
    }

    /// The entry of session `key`, made if it has none, with its last packet at `now_ns`.
    fn find(&mut self, key: &SessionKey, listener: u16, now_ns: u64) -> (usize, Update) {
        let mut up = Update::default();
        let hit = {
            let e = &self.entries[self.last];
            e.used && e.key == *key
        };
        let i = if hit {
            self.last
        } else {
            let set = (self.hasher.hash_one(key) as usize) & self.set_mask;
            let base = set * WAYS;
            let ways = &self.entries[base..base + WAYS];
            match ways.iter().position(|e| e.used && e.key == *key) {
                Some(w) => base + w,
                None => {
                    // An empty entry, else an idle one, else the least recently seen.
                    let victim = ways
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, e)| {
                            if !e.used {
                                (0, 0)
                            } else if self.idle(e, now_ns) {
                                (1, e.last_ns)
                            } else {
                                (2, e.last_ns)
                            }
                        })
                        .map(|(w, _)| base + w)
                        .unwrap_or(base);
                    let v = self.entries[victim];
                    if v.used {
                        if self.idle(&v, now_ns) {
                            up.expired = Some(v.listener);
                        } else {
                            up.evicted = Some(v.listener);
                        }
                    }
                    self.entries[victim] = Entry {
                        key: *key,
                        last_ns: now_ns,
                        next_seq: 0,
                        refused: 0,
                        listener,
                        used: true,
                    };
                    up.started = true;
                    victim
                }
            }
        };
        self.last = i;
        if !up.started && self.idle(&self.entries[i], now_ns) {
            // The session went idle and comes back: a new one, from 0.
            up.expired = Some(self.entries[i].listener);
            up.started = true;
            self.entries[i].next_seq = 0;
            self.entries[i].refused = 0;
            self.entries[i].listener = listener;
        }
        self.entries[i].last_ns = now_ns;
        (i, up)
    }

    /// Ends every session idle past the timeout, calling `expired` with each one's listener,
    /// and counts the sessions alive per listener into `active` (indexed by listener; indexes
    /// beyond its length are not counted).
    pub fn sweep(&mut self, now_ns: u64, active: &mut [u64], mut expired: impl FnMut(u16)) {
        for k in 0..self.entries.len() {
            let e = self.entries[k];
            if !e.used {
                continue;
            }
            if self.idle(&e, now_ns) {
                self.entries[k].used = false;
                expired(e.listener);
            } else if let Some(a) = active.get_mut(usize::from(e.listener)) {
                *a += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn key(client_port: u16, ssid: u16) -> SessionKey {
        SessionKey::new(
            "192.0.2.1".parse().unwrap(),
            client_port,
            "192.0.2.2".parse().unwrap(),
            862,
            ssid,
        )
    }

    #[test]
    fn refused_packets_count_in_live_sessions_only() {
        let mut t = SessionTable::new(64, Some(10 * SEC));
        let (a, b) = (key(5000, 0), key(5001, 0));
        // No session yet: a refused packet starts none.
        assert!(!t.refuse(&a, SEC));
        let up = t.next(&a, 0, SEC);
        assert_eq!((up.seq, up.refused, up.started), (0, 0, true));
        assert!(t.refuse(&a, 2 * SEC) && t.refuse(&a, 2 * SEC));
        // The next answer: number 1, two refused before it (R_RxC 4, R_TxC 1).
        let up = t.next(&a, 0, 3 * SEC);
        assert_eq!((up.seq, up.refused, up.started), (1, 2, false));
        assert!(!t.refuse(&b, 3 * SEC));
        // An idle session is over: its refusals no longer count, and it starts again.
        assert!(!t.refuse(&a, 20 * SEC));
        let up = t.next(&a, 0, 20 * SEC);
        assert_eq!((up.seq, up.refused, up.started), (0, 0, true));
    }

    #[test]
    fn each_session_counts_from_zero() {
        let mut t = SessionTable::new(64, Some(300 * SEC));
        let a = key(5000, 0);
        let b = key(5001, 0);
        let c = key(5000, 7);
        let mut seqs = Vec::new();
        for (n, k) in [a, a, b, a, c, b, c].iter().enumerate() {
            seqs.push(t.next(k, 0, SEC + n as u64).seq);
        }
        assert_eq!(seqs, [0, 1, 0, 2, 0, 1, 1]);
        // The local address and port are part of the session too; IPv4-mapped is IPv4.
        let other_local = SessionKey::new(
            "192.0.2.1".parse().unwrap(),
            5000,
            "192.0.2.3".parse().unwrap(),
            862,
            0,
        );
        assert_eq!(t.next(&other_local, 0, 2 * SEC).seq, 0);
        let mapped = SessionKey::new(
            "::ffff:192.0.2.1".parse().unwrap(),
            5000,
            "::ffff:192.0.2.2".parse().unwrap(),
            862,
            0,
        );
        assert_eq!(mapped, a);
        assert_eq!(t.next(&mapped, 0, 2 * SEC).seq, 3);
    }

    #[test]
    fn an_idle_session_expires_and_starts_again() {
        let mut t = SessionTable::new(64, Some(10 * SEC));
        let a = key(5000, 0);
        assert!(t.next(&a, 3, SEC).started);
        let up = t.next(&a, 3, 11 * SEC);
        assert_eq!((up.seq, up.started, up.expired), (1, false, None));
        // Just over the timeout since the last packet.
        let up = t.next(&a, 3, 21 * SEC + 1);
        assert_eq!((up.seq, up.started, up.expired), (0, true, Some(3)));
        // The sweep ends idle sessions and counts the others.
        let b = key(5001, 0);
        t.next(&b, 1, 22 * SEC);
        let mut active = [0u64; 4];
        let mut expired = Vec::new();
        t.sweep(32 * SEC, &mut active, |l| expired.push(l));
        assert_eq!(expired, [3], "a is idle since 21 s");
        assert_eq!(active, [0, 1, 0, 0]);
        let up = t.next(&a, 3, 32 * SEC);
        assert_eq!((up.seq, up.started, up.expired), (0, true, None));
        // No timeout: never idle.
        let mut t = SessionTable::new(8, None);
        t.next(&a, 0, SEC);
        assert_eq!(t.next(&a, 0, 1_000_000 * SEC).seq, 1);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_seen() {
        // One set of 8.
        let mut t = SessionTable::new(8, Some(300 * SEC));
        assert_eq!(t.capacity(), 8);
        for p in 0..8 {
            t.next(&key(p, 0), 0, SEC + u64::from(p));
        }
        // Session 0 stays busy; 1 is now the least recently seen.
        t.next(&key(0, 0), 0, 2 * SEC);
        let up = t.next(&key(100, 0), 0, 3 * SEC);
        assert_eq!((up.seq, up.started, up.evicted), (0, true, Some(0)));
        assert_eq!(
            t.next(&key(0, 0), 0, 4 * SEC).seq,
            2,
            "the busy one kept its count"
        );
        assert_eq!(t.next(&key(1, 0), 0, 5 * SEC).seq, 0, "1 was evicted");
        // An idle entry is taken before a live one, and counts as expired.
        let mut t = SessionTable::new(8, Some(10 * SEC));
        for p in 0..8 {
            t.next(&key(p, 0), 0, SEC);
        }
        for p in 1..8 {
            t.next(&key(p, 0), 0, 20 * SEC);
        }
        let up = t.next(&key(100, 0), 0, 20 * SEC);
        assert_eq!((up.expired, up.evicted), (Some(0), None));
    }

    #[test]
    fn the_table_stays_fixed_under_a_flood_of_sessions() {
        let mut t = SessionTable::new(1000, Some(300 * SEC));
        let bytes = t.bytes();
        let busy = key(1, 1);
        t.next(&busy, 0, SEC);
        let mut evicted = 0;
        for i in 0..100_000u32 {
            let k = SessionKey::new(
                IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)),
                4000,
                "192.0.2.2".parse().unwrap(),
                862,
                0,
            );
            let up = t.next(&k, 0, SEC + u64::from(i) * 1000);
            assert!(up.started && up.seq == 0);
            evicted += u64::from(up.evicted.is_some());
            // The busy session sends every 50 new sessions; its set (1 of 128) sees 8 of
            // them between two of its packets with a chance of about 1e-8.
            if i % 50 == 0 {
                assert!(!t.next(&busy, 0, SEC + u64::from(i) * 1000).started, "{i}");
            }
        }
        assert!(evicted >= 100_000 - 1024);
        assert_eq!((t.capacity(), t.bytes()), (1024, bytes), "no growth");
        // As --sessions and --flows document it.
        assert_eq!(bytes, 1024 * 64);
    }

    #[test]
    fn a_counted_flow_counts_received_and_refused() {
        let mut t = SessionTable::new(8, None);
        let a = key(5000, 0);
        let got: Vec<_> = [false, true, true, false]
            .iter()
            .map(|&r| {
                let (_, c) = t.count(&a, 0, SEC, r);
                (c.received, c.refused)
            })
            .collect();
        assert_eq!(got, [(1, 0), (2, 1), (3, 2), (4, 2)]);
        // Another flow counts on its own.
        assert_eq!(t.count(&key(5001, 0), 0, SEC, false).1.received, 1);
    }
}
