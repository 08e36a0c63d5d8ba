//! What ltwamp makes of a reflector's answer: how the loss tracker numbers it, the record
//! figures of its STAMP TLVs, and its reply event.
#![forbid(unsafe_code)]

use super::unix_ns;
use crate::net::Received;
use crate::probe::{ProbeEvent, ProbeId, ReflectorTimes};
use crate::wire::stamp_tlv::{self, Answer};
use crate::wire::twamp::ReflectorPacket;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn ns_time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// How the loss tracker numbers an answer: the reflector's sequence number, or, from a
/// Direct Measurement TLV, the session's packets it received before this one and those of
/// them it refused (as ludp reads lreflect's counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Numbers {
    pub(super) seq: u32,
    pub(super) refused: Option<u32>,
}

impl Numbers {
    pub(super) fn of(p: &ReflectorPacket, answer: Option<&Answer>) -> Numbers {
        match answer.and_then(|a| a.direct) {
            // R_RxC counts this probe, R_TxC the answers before this one: the rest of what
            // the reflector received it did not answer.
            Some(d) if d.reflector_rx > 0 => Numbers {
                seq: d.reflector_rx - 1,
                refused: Some((d.reflector_rx - 1).wrapping_sub(d.reflector_tx)),
            },
            _ => Numbers {
                seq: p.seq,
                refused: None,
            },
        }
    }
}

/// The record figures of an answer's TLVs; `reply_tos`: the TOS the answer arrived with.
pub(super) fn tlv_figures(a: &Answer, reply_tos: Option<u8>) -> crate::record::TlvFigures {
    use crate::record::{ClockSource, DirectCounters, ReflectorClock, SeenAt, StampMethod};
    let source = |v: u8| {
        stamp_tlv::sync::name(v).map(|n| match n {
            "ntp" => ClockSource::Ntp,
            "ptp" => ClockSource::Ptp,
            "ssu-bits" => ClockSource::SsuBits,
            "gnss" => ClockSource::Gnss,
            "local" => ClockSource::Local,
            _ => ClockSource::Unknown,
        })
    };
    let method = |v: u8| {
        stamp_tlv::method::name(v).map(|n| match n {
            "hw" => StampMethod::Hw,
            "sw" => StampMethod::Sw,
            "control-plane" => StampMethod::ControlPlane,
            _ => StampMethod::Unknown,
        })
    };
    let mut unsupported = crate::record::TlvKinds::default();
    for &k in &a.unsupported {
        unsupported.insert(k);
    }
    crate::record::TlvFigures {
        dscp_rev: a
            .cos
            .zip(reply_tos)
            .map(|(c, tos)| (c.answered_with(), tos >> 2))
            .and_then(|(sent, got)| (sent != got).then_some(got)),
        reflector_clock: a.timestamp.map(|t| ReflectorClock {
            sync_in: source(t.sync_in),
            method_in: method(t.method_in),
            sync_out: source(t.sync_out),
            method_out: method(t.method_out),
        }),
        counters: a.direct.map(|d| DirectCounters {
            sender_tx: d.sender_tx,
            reflector_rx: d.reflector_rx,
            reflector_tx: d.reflector_tx,
        }),
        location: a.location.map(|l| SeenAt {
            src: l.src,
            sport: l.src_port,
            dst: l.dst,
            dport: l.dst_port,
        }),
        tlv_unsupported: unsupported,
        tlv_malformed: a.malformed.then_some(true),
    }
}

/// The reply event for a reflector's answer to probe `id` (`answer`: its TLVs, when the
/// probe carried some).
pub(super) fn reply(
    id: ProbeId,
    from: IpAddr,
    p: &ReflectorPacket,
    answer: Option<&Answer>,
    rx: &Received,
    len: usize,
    rx_mono: Instant,
) -> ProbeEvent {
    // T2 and T3 in the reflector's format, in the era nearest our clock.
    let format = p.timestamp_format();
    let reference = unix_ns(rx.anc.rx_time.unwrap_or_else(SystemTime::now));
    ProbeEvent::Reply {
        id,
        from,
        rx_wall: rx.anc.rx_time,
        rx_mono,
        ttl: rx.anc.ttl,
        size: Some(len),
        tos: rx.anc.tos,
        reflector: Some(ReflectorTimes {
            rx: ns_time(p.receive_timestamp.to_unix_ns(format, reference)),
            tx: ns_time(p.timestamp.to_unix_ns(format, reference)),
            // The TOS the probe arrived with, from a Class of Service TLV.
            tos: answer.and_then(|a| a.cos).map(|c| (c.dscp2 << 2) | c.ecn),
            synced: p.error_estimate().is_some_and(|e| e.synced),
            seq: Some(p.seq),
            refused: None,
            ttl: p.sender_ttl,
            net_of_hold: true,
            tlv: answer.map(|a| tlv_figures(a, rx.anc.tos)),
        }),
        result: None,
        syn_retransmits: None,
    }
}
