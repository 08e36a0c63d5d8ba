//! The records every tool writes: the one place the output schema lives.
//!
//! # Wire format
//! Every record is one JSON object on one line. The first three members are always
//! `type` (the record kind: `reply`, `timeout`, `unreachable`, `summary`, `alert`, `stats`,
//! `sample`, `link`, `iface_summary`, `addr`, `route`, `resync`, `nexthop`, `neigh`, `rule`),
//! `tool` (e.g. `lping`) and `ts` (RFC 3339 UTC with nanoseconds). The members of the kind
//! follow, then `tags` when `--tag` or a targets file gave any. Durations are milliseconds as
//! floats whose names end in `_ms`; absent values are omitted, never `null`. Readers must
//! ignore members they do not know: members may be added, never renamed. The JSON Schemas in
//! `schemas/` describe each kind and the tests validate real output against them.
#![forbid(unsafe_code)]

mod tlv;

pub use tlv::{
    ClockSource, DirectCounters, ReflectorClock, SeenAt, StampMethod, TlvFigures, TlvKinds,
    TLV_NAMES,
};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod iface;
mod watch;

pub use iface::*;
pub use watch::*;

/// `key=value` labels attached to every record (`--tag`, targets file).
pub type Tags = BTreeMap<String, String>;

/// One output record: the common header plus the kind-specific body.
#[derive(Debug, Clone)]
pub struct Record {
    pub tool: &'static str,
    pub ts: SystemTime,
    pub tags: Option<Arc<Tags>>,
    pub body: Body,
}

/// The kind-specific part of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Reply(Reply),
    Timeout(Timeout),
    Unreachable(Unreachable),
    Summary(Summary),
    Alert(Alert),
    Stats(ReflectorStats),
    Path(Path),
    Link(LinkScore),
    Sample(Sample),
    /// `link` about an interface (lpassive): it appeared, went, was renamed, or went up or
    /// down. Same `type` as lcorrelate's [`Body::Link`], different members.
    LinkState(LinkChange),
    IfaceSummary(IfaceSummary),
    /// `alert` about an interface (lpassive): the same kind as [`Body::Alert`], keyed by
    /// interface instead of target address.
    IfaceAlert(IfaceAlert),
    /// `link` about an interface (lwatch): one change the kernel announced. Same `type` and
    /// overlapping members as lpassive's [`Body::LinkState`].
    WatchLink(WatchLink),
    /// `addr` (lwatch): an address was added or removed, or its flags changed.
    WatchAddr(WatchAddr),
    /// `route` (lwatch): a route was added, replaced or removed.
    WatchRoute(WatchRoute),
    /// `resync` (lwatch): notifications were lost and the state was re-read.
    WatchResync(WatchResync),
    /// `nexthop` (lwatch): a nexthop object (`ip nexthop`) came, changed or went.
    WatchNexthopObject(WatchNexthopObject),
    /// `neigh` (lwatch): a neighbour entry (ARP, NDP) came, changed state or went.
    WatchNeigh(WatchNeigh),
    /// `rule` (lwatch): a policy routing rule came or went.
    WatchRule(WatchRule),
}

impl Body {
    /// The value of the `type` member.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Reply(_) => "reply",
            Body::Timeout(_) => "timeout",
            Body::Unreachable(_) => "unreachable",
            Body::Summary(_) => "summary",
            Body::Alert(_) => "alert",
            Body::Stats(_) => "stats",
            Body::Sample(_) => "sample",
            Body::LinkState(_) => "link",
            Body::IfaceSummary(_) => "iface_summary",
            Body::IfaceAlert(_) => "alert",
            Body::Path(_) => "path",
            Body::Link(_) => "link",
            Body::WatchLink(_) => "link",
            Body::WatchAddr(_) => "addr",
            Body::WatchRoute(_) => "route",
            Body::WatchResync(_) => "resync",
            Body::WatchNexthopObject(_) => "nexthop",
            Body::WatchNeigh(_) => "neigh",
            Body::WatchRule(_) => "rule",
        }
    }

    /// The body as a JSON object (without `type`, `tool`, `ts`, `tags`).
    pub fn to_json_object(&self) -> serde_json::Result<Vec<u8>> {
        match self {
            Body::Reply(b) => to_rounded_json(b),
            Body::Timeout(b) => to_rounded_json(b),
            Body::Unreachable(b) => to_rounded_json(b),
            Body::Summary(b) => to_rounded_json(b),
            Body::Alert(b) => to_rounded_json(b),
            Body::Stats(b) => to_rounded_json(b),
            Body::Sample(b) => to_rounded_json(b),
            Body::LinkState(b) => to_rounded_json(b),
            Body::IfaceSummary(b) => to_rounded_json(b),
            Body::IfaceAlert(b) => to_rounded_json(b),
            Body::Path(b) => to_rounded_json(b),
            Body::Link(b) => to_rounded_json(b),
            Body::WatchLink(b) => to_rounded_json(b),
            Body::WatchAddr(b) => to_rounded_json(b),
            Body::WatchRoute(b) => to_rounded_json(b),
            Body::WatchResync(b) => to_rounded_json(b),
            Body::WatchNexthopObject(b) => to_rounded_json(b),
            Body::WatchNeigh(b) => to_rounded_json(b),
            Body::WatchRule(b) => to_rounded_json(b),
        }
    }
}

/// The flow a probe belonged to (ports and DSCP), for tools that probe many flows.
/// Written with `dscp_name` beside `dscp` when the code point has a standard name
/// (`"dscp":46,"dscp_name":"EF"`), as the user may have given it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Flow {
    pub sport: u16,
    pub dport: u16,
    #[serde(default)]
    pub dscp: Option<u8>,
}

impl Serialize for Flow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let name = self.dscp.and_then(crate::dscp::name);
        let len = 2 + usize::from(self.dscp.is_some()) + usize::from(name.is_some());
        let mut map = s.serialize_map(Some(len))?;
        map.serialize_entry("sport", &self.sport)?;
        map.serialize_entry("dport", &self.dport)?;
        if let Some(dscp) = self.dscp {
            map.serialize_entry("dscp", &dscp)?;
        }
        if let Some(name) = name {
            map.serialize_entry("dscp_name", name)?;
        }
        map.end()
    }
}

/// `reply`: a probe was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The target as the user gave it.
    pub target: String,
    /// The address probed.
    pub addr: IpAddr,
    /// The local address the probe left from (the bound address, else the route's source
    /// for the target), as fping's `--print-srcaddr` shows. Absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    /// Probe sequence number, per target, starting at 1.
    pub seq: u64,
    /// Round-trip time from the send stamp to the kernel receive stamp.
    pub rtt_ms: f64,
    /// TTL (IPv4) or hop limit (IPv6) the reply arrived with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// Bytes of the reply above the IP header (ICMP header and data for lping, as ping shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// TOS byte (IPv4) or traffic class (IPv6) the reply arrived with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// `true` on a duplicate: a second answer to an answered probe (not counted as received).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dup: Option<bool>,
    /// How a TCP probe was answered: `open` (handshake completed) or `refused` (RST: the
    /// path works, the port is closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// SYNs the kernel sent again before a TCP connect probe's handshake ended (absent when
    /// none): its `rtt_ms` then includes the retransmission timeout (1 s, then 3 s...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syn_retransmits: Option<u32>,
    /// One-way figures, when a stamping reflector answered (ludp against lreflect, ltwamp).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub one_way: Option<OneWay>,
}

/// What a stamping reflector reported: one-way figures from its stamps, which compare two
/// clocks (trust them only when `synced` is true: both the sender's and the reflector's clocks
/// report synchronized), and what it saw of the probe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OneWay {
    /// Sender's send to reflector's receive.
    pub fwd_ms: f64,
    /// Reflector's send to sender's receive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rev_ms: Option<f64>,
    /// Time the probe spent in the reflector.
    pub reflector_ms: f64,
    /// The DSCP the probe arrived with at the reflector (re-marking on the way shows here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dscp_rx: Option<u8>,
    /// Both clocks report synchronized, so `fwd_ms` and `rev_ms` are meaningful.
    pub synced: bool,
    /// The reflector's own sequence number of the answer (TWAMP: a stateful reflector counts
    /// its answers per session, a stateless one copies the sender's number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reflector_seq: Option<u32>,
    /// The TTL or hop limit the probe arrived with at the reflector (TWAMP, replies of 41
    /// bytes or more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reflector_ttl: Option<u8>,
    /// What the reflector answered in the probe's STAMP TLVs (RFC 8972; ltwamp `--tlv`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub tlv: Option<TlvFigures>,
}

/// `timeout`: no reply within the probe timeout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeout {
    pub target: String,
    pub addr: IpAddr,
    /// The local address the probe left from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    pub seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
}

/// `unreachable`: an ICMP error (or a local send error) answered the probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unreachable {
    pub target: String,
    pub addr: IpAddr,
    /// The local address the probe left from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    pub seq: u64,
    /// The router or host that sent the ICMP error; absent for local send errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    /// What happened, in words (e.g. "host unreachable", "time exceeded").
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
}

/// RTT statistics of a summary, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RttStats {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    /// Standard deviation (population), as ping's `mdev`.
    pub mdev: f64,
    /// Percentiles by nearest rank.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// One-way delay statistics of a summary, in milliseconds (negative when the two clocks
/// disagree by more than the delay).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DelayStats {
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    /// Percentiles by nearest rank.
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// `summary`: statistics per target (and flow) over a window or the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub target: String,
    pub addr: IpAddr,
    /// The local address the probes left from: the flow's, or the target's when all its flows
    /// share one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// `"total"` for the whole run, else the window length (e.g. `"10s"`).
    pub window: String,
    /// Probes settled in the window (answered or timed out).
    pub sent: u64,
    /// Probes answered (duplicates not counted).
    pub received: u64,
    /// Lost share of the settled probes, in percent; absent when none settled (a window
    /// without probes is not 0 % loss).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
    /// Duplicate replies.
    pub dup: u64,
    /// Replies that arrived after a reply to a later probe.
    pub reordered: u64,
    /// Replies that arrived after their probe had timed out (the probe counts as lost).
    pub late: u64,
    /// Probes answered by an ICMP error (counted as lost).
    pub unreachable: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<RttStats>,
    /// Interarrival jitter of the RTT (RFC 3550, section 6.4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
    /// Lost probes placed on the way to the reflector (ltwamp against a stateful reflector,
    /// ludp against lreflect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_fwd: Option<u64>,
    /// Lost probes placed on the way back (ltwamp against a stateful reflector, ludp against
    /// lreflect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_rev: Option<u64>,
    /// Lost probes that reached the reflector and that it refused (its rate limit): the far
    /// end's doing, in neither `lost_fwd` nor `lost_rev` (ludp against lreflect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<u64>,
    /// One-way delay on the way to the reflector, over the replies whose clocks were both
    /// synchronized (`synced`): ludp against lreflect, ltwamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fwd_ms: Option<DelayStats>,
    /// One-way delay on the way back, as `fwd_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rev_ms: Option<DelayStats>,
    /// Routers on the way to the reflector, from the TTL the probes arrived with there
    /// (ltwamp's `reflector_ttl`) against the usual initial TTLs 64, 128 and 255; the latest
    /// answer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hops_fwd: Option<u8>,
    /// Routers on the way back, from the answers' TTL likewise (ludp against lreflect, ltwamp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hops_rev: Option<u8>,
    /// Datagrams the kernel dropped in the window on this host, on a full receive queue of the
    /// socket(s) this summary's answers arrive on (`SO_RXQ_OVFL`): answers among them count as
    /// lost above, but were lost here, not on the network. A socket shared by several targets
    /// (lping's, ltcp --syn's, one per address family) shows its count in each of their
    /// summaries: the drops cannot be told apart by target. Absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped_local: Option<u64>,
}

/// Whether an alert starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// `alert`: a window crossed a threshold (`firing`) or came back under it (`resolved`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub state: AlertState,
    pub target: String,
    pub addr: IpAddr,
    /// The local address the target's probes left from, when all its flows share one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// `loss_pct` or `rtt_ms` (the window's average RTT).
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    pub window: String,
}

/// Datagrams a reflector did not answer, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    /// Source not in the `--allow` list.
    pub acl: u64,
    /// From a source port that answers back (a well-known echo or chargen port, lreflect's
    /// own echo ports; on echo sockets also TWAMP ports): answering could start an endless
    /// exchange between two reflectors.
    #[serde(rename = "loop")]
    pub looped: u64,
    /// Over the per-source rate limit.
    pub rate_limit: u64,
    /// Over the global rate cap.
    pub global_cap: u64,
    /// Empty, truncated or otherwise unusable datagrams.
    pub malformed: u64,
    /// The reply could not be sent.
    pub send_error: u64,
    /// On a `--twamp-control` test port, from a sender no granted session has (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub no_session: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The `malformed` drops of a reflector by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedBy {
    /// No payload at all.
    pub empty: u64,
    /// A TWAMP request under 14 bytes (the smallest TWAMP-Light Session-Sender packet).
    pub short: u64,
    /// Longer than `--max-size`, so only part of it could be read.
    pub too_long: u64,
    /// Anything else (a datagram without a usable source address).
    pub other: u64,
    /// A test packet of a keyed `--twamp-control` session (authenticated or encrypted mode)
    /// whose HMAC does not verify under any of its 5-tuple's sessions (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hmac: u64,
}

/// The sessions of a stateful TWAMP reflector socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sessions {
    /// Sessions alive when the record was written (a packet within `--session-timeout`).
    pub active: u64,
    /// Sessions that began in the window (a first packet, or the first after an expiry).
    pub started: u64,
    /// Sessions found idle past `--session-timeout` in the window, and ended.
    pub expired: u64,
    /// Sessions ended in the window to make room for a new one (the session table was full).
    pub evicted: u64,
}

/// `stats`: what a reflector (`lreflect`) received, answered and dropped, per listening socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReflectorStats {
    /// The listening address, e.g. `[::]:8081`.
    pub listen: String,
    /// What the socket answers: `"echo"` (UDP echo) or `"twamp"` (TWAMP-Light / STAMP).
    pub mode: String,
    /// `"total"` at exit, else the reporting period (e.g. `"10s"`).
    pub window: String,
    pub received: u64,
    pub reflected: u64,
    /// Answers that carry the reflector's receive and send times: ludp payloads with room for
    /// them on echo sockets, every reply on TWAMP sockets.
    pub stamped: u64,
    pub dropped: Drops,
    /// `dropped.malformed` by reason.
    pub malformed_by: MalformedBy,
    /// TWAMP sockets with per-session sequence numbers (not `--stateless`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Sessions>,
    /// Echo sockets: the ludp flows counted (`--flows`), as `sessions` (flows never expire:
    /// `expired` stays 0; `evicted` are flows that made room for new ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows: Option<Sessions>,
    /// TWAMP-Control listeners (`mode` `"twamp-control"`): connections and sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlStats>,
}

/// What a TWAMP-Control listener did over a window: connections set up, closed by reason,
/// sessions granted and refused by Accept code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlStats {
    /// Connections taken (their greeting sent with modes) in the window.
    pub connections: u64,
    /// Connections open at the end of the window.
    pub active: u64,
    pub closed: ControlClosed,
    pub sessions: ControlSessions,
}

/// Connections refused or closed by lreflect, by reason (a client closing its own is not
/// counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlClosed {
    /// Source not in --allow (greeting without modes).
    pub acl: u64,
    /// Over --control-connections or --control-per-client (greeting without modes).
    pub limit: u64,
    /// Over the source's token bucket (greeting without modes).
    pub rate_limit: u64,
    /// A mode not offered (Server-Start Accept 3).
    pub mode: u64,
    /// An unknown KeyID or the wrong secret (Server-Start Accept 1).
    pub key: u64,
    /// Bytes that are no message in order.
    pub garbage: u64,
    /// A keyed message whose HMAC did not verify.
    pub hmac: u64,
    /// No whole message for --control-idle, or no test packet for --refwait while testing.
    pub idle: u64,
}

/// Test sessions of a TWAMP-Control listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlSessions {
    pub accepted: u64,
    /// Granted and not yet ended, at the end of the window.
    pub active: u64,
    pub refused: ControlRefused,
}

/// Requests refused, by the Accept code answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlRefused {
    /// Accept 3: Conf-Sender/Receiver, a schedule, a Type-P other than a DSCP, or another
    /// receiver address.
    pub not_supported: u64,
    /// Accept 4: over --control-sessions on this connection.
    pub permanent_limit: u64,
    /// Accept 5: over --sessions in all, or no test port free for this sender.
    pub temporary_limit: u64,
}

/// One hop of a traced path: the TTL probed and, when a router answered, its address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    pub ttl: u8,
    /// The address that answered; absent when nothing did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<IpAddr>,
    /// Every address that answered this TTL, when there was more than one (a path change
    /// or per-packet balancing, not one ECMP flow); `addr` is the first of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// `path`: one traced flow (Paris traceroute, the flow's own 5-tuple) and, when the same flow
/// was probed, its loss. `lcorrelate` reads these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Path {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// `udp`, `tcp` or `icmp`.
    pub proto: String,
    /// The flow's source port (ICMP: the echo identifier).
    pub sport: u16,
    /// The flow's destination port (ICMP: 0).
    pub dport: u16,
    /// TTL 1 up, in order; the destination itself is the last hop when it was reached.
    pub hops: Vec<Hop>,
    /// The destination answered the trace.
    pub reached: bool,
    /// Probes sent on this flow (when it was also probed); with `--trace-every`, those sent
    /// while this was the flow's path, since the flow's previous `path` record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
    /// Of those, probes that got no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// Of those, placed on the way to the far end and on the way back, when the tool split its
    /// loss by direction (ludp against lreflect, ltwamp against a stateful reflector).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_fwd: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_rev: Option<u64>,
}

/// What `lcorrelate` concludes about a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Faulty,
    Ok,
}

/// One end-to-end pair of nodes: a directed link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEnds {
    pub from: String,
    pub to: String,
}

/// `link` (written by `lcorrelate`): one link, or one group of links that every flow crosses
/// together, scored for loss. Loss figures are fractions (0.01 is 1 %).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkScore {
    /// The node the link leaves: an address, an alias, or an anonymous hop (`?a>b#n`).
    pub from: String,
    pub to: String,
    /// 1 for the best suspect.
    pub rank: u32,
    /// The ranking method's score (for `flock`, the log-likelihood gain of letting this
    /// link lose packets rather than keeping it at the background rate).
    pub score: f64,
    /// Estimated loss rate of the link.
    pub loss_est: f64,
    /// Difference of means: loss of the routes through the link minus that of the others.
    pub suspicion: f64,
    /// Distinct routes (hop sequences) through the link.
    pub routes: u64,
    /// Probes sent, and lost, on the flows through the link.
    pub sent: u64,
    pub lost: u64,
    pub verdict: Verdict,
    /// All links of an inseparable group (crossed by exactly the same flows), this one first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Vec<LinkEnds>>,
    /// Every address pair this physical link showed as in traces (one per interface the
    /// probes reached its upstream router through, with arrival addressing), when more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<Vec<LinkEnds>>,
}

/// Decimal places of every fractional figure written: a millisecond figure to the nanosecond,
/// a percentage to a millionth of a percent; not `16.666666666666668`.
pub const DECIMALS: i32 = 6;

/// Serializes `value` to compact JSON with every `f64` rounded to [`DECIMALS`] places.
pub fn to_rounded_json<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Rounded);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// serde_json's compact formatter with floats written by [`write_figure`].
struct Rounded;

impl serde_json::ser::Formatter for Rounded {
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        if value.is_finite() {
            w.write_all(figure(value).as_bytes())
        } else {
            serde_json::ser::CompactFormatter.write_f64(w, value)
        }
    }
}

/// A finite figure in plain decimal notation, rounded to [`DECIMALS`] places, with trailing
/// zeros dropped but one decimal kept so it stays a float: `16.666667`, `0.000001` (never
/// `1e-6`), `2000.0`. Used for JSON and InfluxDB lines alike.
pub fn figure(value: f64) -> String {
    let mut text = format!("{:.*}", DECIMALS as usize, value);
    let trimmed = text.trim_end_matches('0').len();
    text.truncate(trimmed.max(text.find('.').map_or(text.len(), |dot| dot + 2)));
    if text == "-0.0" {
        text.remove(0);
    }
    text
}

/// A duration as fractional milliseconds, with nanosecond precision.
pub fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// RFC 3339 UTC with nanoseconds, e.g. `2026-11-22T10:00:00.123456789Z`.
pub fn rfc3339(ts: SystemTime) -> String {
    humantime::format_rfc3339_nanos(ts).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_keeps_nanoseconds() {
        assert_eq!(ms(Duration::from_nanos(23_456)), 0.023456);
        assert_eq!(ms(Duration::from_secs(2)), 2000.0);
    }

    #[test]
    fn figures_are_rounded_to_six_decimals() {
        let s = RttStats {
            min: 0.010907,
            avg: 50.0 / 3.0,
            max: 2000.0,
            mdev: 1e-9,
            p50: 0.0142415,
            p90: 123456.123456789,
            p99: 3.0000004999,
        };
        let json = String::from_utf8(to_rounded_json(&s).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"min":0.010907,"avg":16.666667,"max":2000.0,"mdev":0.0,"p50":0.014242,"p90":123456.123457,"p99":3.0}"#
        );
        assert_eq!(figure(1e-6), "0.000001");
        assert_eq!(figure(-1e-9), "0.0");
        assert_eq!(figure(1.5e10), "15000000000.0");
        assert_eq!(figure(-2.25), "-2.25");
    }

    #[test]
    fn timestamps_have_nanoseconds_and_z() {
        let ts = SystemTime::UNIX_EPOCH + Duration::new(1_795_341_600, 123_456_789);
        assert_eq!(rfc3339(ts), "2026-11-22T10:00:00.123456789Z");
    }

    #[test]
    fn absent_values_are_omitted() {
        let t = Timeout {
            target: "h".into(),
            addr: "10.0.0.1".parse().unwrap(),
            src: None,
            seq: 3,
            flow: None,
        };
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, r#"{"target":"h","addr":"10.0.0.1","seq":3}"#);
    }
}
