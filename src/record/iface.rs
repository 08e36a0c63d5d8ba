//! The records of lpassive: interface counters, samples, link changes, summaries and alerts.

use super::AlertState;
use serde::{Deserialize, Serialize};

/// Interface counters over an interval or a run (lpassive), as the kernel counts them:
/// bytes include the link-layer header (14 bytes on Ethernet and veth).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceCounters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    /// Received packets the NIC had no room for. Absent when the kernel does not send it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_missed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multicast: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collisions: Option<u64>,
}

/// `sample`: one interface's counters over one interval (lpassive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub ifname: String,
    pub ifindex: u32,
    /// The measured time between the two counter readings, in seconds.
    pub interval_s: f64,
    /// RFC 2863 operational state as `ip link` shows it: `up`, `down`, `lowerlayerdown`,
    /// `dormant`, `testing`, `notpresent`, `unknown`.
    pub oper: String,
    pub carrier: bool,
    /// Administratively up (`IFF_UP`).
    pub admin: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Link speed in Mbit/s, where the driver reports one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_mbps: Option<u32>,
    /// The deltas over the interval.
    #[serde(flatten)]
    pub counters: IfaceCounters,
    pub rx_bps: f64,
    pub tx_bps: f64,
    pub rx_pps: f64,
    pub tx_pps: f64,
    /// `true` when a counter went backwards (interface re-created, driver reset): the
    /// deltas are then the counters since the reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
}

/// `link`: an interface appeared (`new`), went (`del`), was renamed (`rename`), or its
/// judged state went `up` or `down` (lpassive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkChange {
    pub event: String,
    pub ifname: String,
    pub ifindex: u32,
    /// The name before a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_ifname: Option<String>,
    /// For `up`/`down`: `admin`, `carrier` or `rx_threshold`, the condition that failed
    /// (down) or came back (up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oper: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
}

/// `iface_summary`: one interface over the whole run (lpassive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IfaceSummary {
    pub ifname: String,
    pub ifindex: u32,
    /// `"total"`.
    pub window: String,
    pub samples: u64,
    /// Samples whose counters had been reset.
    pub resets: u64,
    /// Seconds covered by the samples.
    pub duration_s: f64,
    /// Sums of the deltas.
    #[serde(flatten)]
    pub counters: IfaceCounters,
    /// Averages over `duration_s`.
    pub rx_bps: f64,
    pub tx_bps: f64,
    pub rx_pps: f64,
    pub tx_pps: f64,
    /// The highest rate of any one sample.
    pub peak_rx_bps: f64,
    pub peak_tx_bps: f64,
    pub peak_rx_pps: f64,
    pub peak_tx_pps: f64,
}

/// `alert` about an interface: its errors or drops per second crossed a threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IfaceAlert {
    pub state: AlertState,
    /// The interface name, as `ifname` (the member every alert has).
    pub target: String,
    pub ifname: String,
    pub ifindex: u32,
    /// `errors_pps` (rx + tx errors) or `drops_pps` (rx + tx dropped + rx missed).
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    /// The sampling interval the value was measured over.
    pub window: String,
}
