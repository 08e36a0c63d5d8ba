//! The TWAMP replies a [`Batch`] builds over its received requests: unauthenticated ones,
//! whose T3 the send writes, and keyed ones, sealed with their T3 at once.
#![forbid(unsafe_code)]

use super::{wall_ns, Batch};
use crate::twamp_control::test_packet::TestKeys;
use crate::wire::ntp::{Format, Timestamp};
use crate::wire::twamp::{self, Reflection};

impl Batch {
    /// Builds the TWAMP reply to the request in received slot `i` over it
    /// ([`twamp::reflect_in_place`]): sequence number `seq`, Error Estimate `error`, the
    /// kernel's receive time as T2 (the wall clock now if the kernel gave none) and the TTL or
    /// hop limit the request arrived with (255 if the kernel did not say). Returns false,
    /// leaving the slot as it was, for a request no reply can be built from (under 14 bytes,
    /// or truncated).
    pub fn reflect_twamp(&mut self, i: usize, seq: u32, error: u16) -> bool {
        self.reflect_with(i, seq, error, |slot, len, r, _| {
            twamp::reflect_in_place(slot, len, r).ok()
        })
    }

    /// Builds over the keyed TWAMP request in received slot `i` its sealed reply under
    /// `keys` ([`TestKeys::reflect_in_place`]), as [`Batch::reflect_twamp`] does an
    /// unauthenticated one, but with T3 read now: in encrypted mode it is ciphered, so it
    /// cannot wait for the send. Returns false, leaving the slot as it was, for a request
    /// that does not verify under `keys` or a slot too small.
    pub fn reflect_keyed(&mut self, i: usize, seq: u32, error: u16, keys: &TestKeys) -> bool {
        let sealed = self.reflect_with(i, seq, error, |slot, len, r, rx_ns| {
            let t3 = Timestamp::from_unix_ns(wall_ns().max(rx_ns), Format::Ntp);
            keys.reflect_in_place(slot, len, r, t3).ok()
        });
        self.sealed[i] = sealed;
        sealed
    }

    /// Builds a reply over received slot `i` with `build(slot, request length, what the
    /// reflector adds, T2 in ns)`, which returns the reply's length (or `None`: no reply).
    fn reflect_with(
        &mut self,
        i: usize,
        seq: u32,
        error: u16,
        build: impl FnOnce(&mut [u8], usize, &Reflection, u64) -> Option<usize>,
    ) -> bool {
        debug_assert!(i < self.received);
        let m = &mut self.meta[i];
        if m.truncated {
            return false;
        }
        let rx_ns = m.control.rx_ns.unwrap_or_else(wall_ns);
        let r = Reflection {
            seq,
            error,
            receive_timestamp: Timestamp::from_unix_ns(rx_ns, Format::Ntp),
            ttl: m.control.ttl.unwrap_or(255),
        };
        let slot = &mut self.bufs[i * self.slot_len..(i + 1) * self.slot_len];
        match build(slot, m.len, &r, rx_ns) {
            Some(len) => {
                m.len = len;
                true
            }
            None => false,
        }
    }
}
