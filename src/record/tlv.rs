//! The reply members from a STAMP reflector's answers to ltwamp's RFC 8972 TLVs.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The figures of a STAMP reflector's TLVs (RFC 8972), each present when the reflector
/// answered that TLV.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlvFigures {
    /// The DSCP the answer arrived with, written when it differs from the one the reflector
    /// answered with (Class of Service TLV): re-marked on the way back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dscp_rev: Option<u8>,
    /// The reflector's clock sources and timestamping methods (Timestamp Information TLV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reflector_clock: Option<ReflectorClock>,
    /// The session's packet counters (Direct Measurement TLV): our probes sent and the
    /// reflector's received, this probe included, and its answers before this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<DirectCounters>,
    /// The addresses and ports the probe had when it reached the reflector (Location TLV):
    /// a NAT on the way shows here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<SeenAt>,
    /// TLVs the reflector did not process (answered with the U flag), by name.
    #[serde(
        skip_serializing_if = "TlvKinds::is_empty",
        default,
        with = "tlv_kinds_serde"
    )]
    pub tlv_unsupported: TlvKinds,
    /// The reflector marked a TLV malformed (M flag), or its answer had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tlv_malformed: Option<bool>,
}

/// A clock source of RFC 8972's Timestamp Information TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockSource {
    Ntp,
    Ptp,
    SsuBits,
    Gnss,
    /// A local free-running clock.
    Local,
    Unknown,
}

/// A timestamping method of RFC 8972's Timestamp Information TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StampMethod {
    Hw,
    Sw,
    ControlPlane,
    Unknown,
}

/// `reflector_clock`: how the reflector took T2 (`_in`) and T3 (`_out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReflectorClock {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_in: Option<ClockSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method_in: Option<StampMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_out: Option<ClockSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method_out: Option<StampMethod>,
}

/// `counters`: RFC 8972's Direct Measurement counters of the probe's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectCounters {
    pub sender_tx: u32,
    pub reflector_rx: u32,
    pub reflector_tx: u32,
}

/// `location`: the probe's addresses and ports as the reflector received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenAt {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    pub sport: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    pub dport: u16,
}

/// The names ltwamp's `--tlv` gives the STAMP TLV types it sends (the type number for others).
pub const TLV_NAMES: [(u8, &str); 5] = [
    (1, "padding"),
    (2, "location"),
    (3, "timestamp"),
    (4, "cos"),
    (5, "direct"),
];

/// A set of STAMP TLV types (0-63), kept as a bit mask so replies stay `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlvKinds(pub u64);

impl TlvKinds {
    pub fn insert(&mut self, kind: u8) {
        if kind < 64 {
            self.0 |= 1 << kind;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

mod tlv_kinds_serde {
    use super::{TlvKinds, TLV_NAMES};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(k: &TlvKinds, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((0u8..64).filter(|t| k.0 & (1 << t) != 0).map(|t| {
            TLV_NAMES
                .iter()
                .find(|(n, _)| *n == t)
                .map_or_else(|| t.to_string(), |(_, name)| name.to_string())
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TlvKinds, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        let mut k = TlvKinds::default();
        for n in names {
            match TLV_NAMES.iter().find(|(_, name)| *name == n) {
                Some((t, _)) => k.insert(*t),
                None => k.insert(n.parse().map_err(serde::de::Error::custom)?),
            }
        }
        Ok(k)
    }
}
