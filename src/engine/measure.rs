//! A probe's figures from its stamps: the round-trip time (the kernel's stamps, bounded by the
//! monotonic clock), and a stamping reflector's one-way delays and hold time.

use crate::probe::{ReflectorTimes, SendStamp};
use crate::record::{self, OneWay};
use std::time::{Duration, Instant, SystemTime};

/// One-way delays from a stamping reflector's clock against ours: forward from our send to its
/// receive, reverse from its send to our receive (negative when the clocks disagree by more
/// than the delay), and its own hold time. Meaningful only with synchronized clocks, which
/// `synced` reports.
pub fn one_way(sent: SystemTime, rx_wall: Option<SystemTime>, r: &ReflectorTimes) -> OneWay {
    let signed_ms = |later: SystemTime, earlier: SystemTime| match later.duration_since(earlier) {
        Ok(d) => record::ms(d),
        Err(e) => -record::ms(e.duration()),
    };
    OneWay {
        fwd_ms: signed_ms(r.rx, sent),
        rev_ms: rx_wall.map(|w| signed_ms(w, r.tx)),
        reflector_ms: signed_ms(r.tx, r.rx),
        dscp_rx: r.tos.map(|tos| tos >> 2),
        synced: r.synced && crate::clock::synchronized(),
        reflector_seq: r.seq,
        reflector_ttl: r.ttl,
        tlv: r.tlv,
    }
}

/// The RTT without the reflector's hold time (T3 − T2, by its clock), as TWAMP defines it:
/// (T4 − T1) − (T3 − T2). A hold time that is negative or longer than the RTT (a reflector
/// clock stepped in between) is not trusted: the RTT stays as it is.
pub fn net_of_hold(rtt: Duration, r: &ReflectorTimes) -> Duration {
    match r.tx.duration_since(r.rx) {
        Ok(hold) if hold <= rtt => rtt - hold,
        _ => rtt,
    }
}

/// The round-trip time of a probe. The kernel's receive stamp against the wall clock read at
/// send is the precise figure; the monotonic clock bounds it, because the kernel stamps a
/// datagram before it is read. A wall-clock step (NTP, an operator) between send and receive
/// makes the precise figure negative or larger than the bound: then the bound is used.
pub fn rtt(sent: SendStamp, rx_wall: Option<SystemTime>, rx_mono: Instant) -> Duration {
    let bound = rx_mono.saturating_duration_since(sent.mono);
    match rx_wall.and_then(|w| w.duration_since(sent.wall).ok()) {
        Some(precise) if precise <= bound => precise,
        _ => bound,
    }
}
