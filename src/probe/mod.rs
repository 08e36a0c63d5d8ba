//! The probe kinds behind one narrow trait, so the engine (schedule, timeouts, statistics,
//! output) is written once for every probing tool.

pub mod flows;
pub mod icmp;
pub mod sock;
pub mod syn;
pub mod tcp;
pub mod trace;
pub mod twamp;
pub mod udp;

use crate::record::Flow;
use crate::target::Target;
use crate::wire::Family;
use std::io;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

/// The run's totals of one stream (a flow in a class) of a target, for records written after
/// the run (a traced flow's `path` with its `sent`/`lost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTotal {
    /// The target's index in the run.
    pub target: usize,
    pub flow: Option<Flow>,
    pub sent: u64,
    pub received: u64,
    /// Lost probes placed on the way there and back, when the prober places loss by direction.
    pub lost_fwd: Option<u64>,
    pub lost_rev: Option<u64>,
}

/// Identifies one probe: the target's index in the run and the target's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProbeId {
    pub target: usize,
    pub seq: u64,
}

/// When a probe left: both clocks, read right before the send system call. The wall clock
/// pairs with the kernel's receive stamp; the monotonic clock guards against clock steps.
#[derive(Debug, Clone, Copy)]
pub struct SendStamp {
    pub wall: SystemTime,
    pub mono: Instant,
}

impl SendStamp {
    pub fn now() -> SendStamp {
        // Monotonic last: it is the bound the wall-clock RTT is checked against.
        let wall = SystemTime::now();
        SendStamp {
            wall,
            mono: Instant::now(),
        }
    }
}

/// A reflector's stamps, from the echoed payload (lreflect's) or its reply (TWAMP's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReflectorTimes {
    /// When the probe arrived at the reflector (TWAMP's T2).
    pub rx: SystemTime,
    /// When the reflector sent the answer (T3).
    pub tx: SystemTime,
    /// The TOS byte the probe arrived with at the reflector, when it says.
    pub tos: Option<u8>,
    /// The reflector's clock is synchronized.
    pub synced: bool,
    /// The reflector's own sequence number of the answer (TWAMP), or its count of the flow's
    /// probes before this one (lreflect's echo).
    pub seq: Option<u32>,
    /// The reflector's count of the flow's probes it refused (lreflect's echo).
    pub refused: Option<u32>,
    /// The TTL or hop limit the probe arrived with at the reflector (TWAMP).
    pub ttl: Option<u8>,
    /// The RTT is reported net of the reflector's hold time (`tx − rx`), as TWAMP defines it.
    pub net_of_hold: bool,
    /// What the reflector answered in STAMP TLVs (ltwamp).
    pub tlv: Option<crate::record::TlvFigures>,
}

/// Lost probes a prober could place on one direction of the path: on the way to the reflector
/// (`forward`) or back (`reverse`). ltwamp against a stateful reflector knows, from the gaps in
/// the reflector's own sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossPlacement {
    /// A probe the placement is about: its target, and its stream when `one_stream`.
    pub id: ProbeId,
    pub forward: u64,
    pub reverse: u64,
    /// Probes that reached the reflector and that it refused (its rate limit): neither
    /// direction's loss. `None` when the reflector does not say (anything but lreflect's echo).
    pub refused: Option<u64>,
    /// Every probe counted belongs to `id`'s stream, so the stream's figures take them too;
    /// otherwise only the target's do. A placement of 0 and 0 says the target's (and stream's)
    /// loss is being placed, none lost here.
    pub one_stream: bool,
}

/// Datagrams the kernel dropped on one of a prober's sockets because its receive queue was full:
/// answers (or other datagrams) lost on this host, not on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketDrops {
    /// The socket in words, for stderr ("the ICMP socket (IPv4)").
    pub socket: String,
    /// Dropped since the socket opened.
    pub count: u64,
    /// The address family of the targets whose answers it receives.
    pub family: Family,
    /// The source port of the one flow it serves (the streams of that flow, of every target of
    /// the family); `None`: every stream.
    pub sport: Option<u16>,
}

/// What a prober found on its sockets.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeEvent {
    Reply {
        id: ProbeId,
        from: IpAddr,
        /// Kernel receive stamp (CLOCK_REALTIME), when the kernel gave one.
        rx_wall: Option<SystemTime>,
        /// Monotonic time the datagram was read.
        rx_mono: Instant,
        ttl: Option<u8>,
        size: Option<usize>,
        tos: Option<u8>,
        /// What a stamping reflector (lreflect) wrote into the echoed payload.
        reflector: Option<ReflectorTimes>,
        /// How a TCP probe was answered: `open` (handshake completed) or `refused` (RST).
        result: Option<&'static str>,
        /// SYNs the kernel sent again before the handshake ended (ltcp connect mode): the
        /// RTT then includes the retransmission timeout.
        syn_retransmits: Option<u32>,
    },
    /// The kernel's transmit timestamp of a probe: when it left, more precisely than the
    /// stamp read before the send call.
    Sent { id: ProbeId, tx_wall: SystemTime },
    /// An ICMP error answered the probe.
    Error {
        id: ProbeId,
        from: Option<IpAddr>,
        icmp_type: Option<u8>,
        icmp_code: Option<u8>,
        reason: String,
    },
    /// A datagram that could not be decoded; counted and dropped.
    Malformed(crate::wire::Error),
    /// Lost probes placed on a direction of the path.
    Placed(LossPlacement),
}

impl ProbeEvent {
    /// The event for an error-queue entry that answered probe `id`: an ICMP error (with the
    /// router that sent it) or a local one; `None` for other origins.
    pub fn from_queued_error(
        id: ProbeId,
        family: Family,
        err: &crate::net::ExtendedError,
    ) -> Option<ProbeEvent> {
        use crate::net::cmsg::{SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6, SO_EE_ORIGIN_LOCAL};
        match err.origin {
            SO_EE_ORIGIN_ICMP | SO_EE_ORIGIN_ICMP6 => Some(ProbeEvent::Error {
                id,
                from: err.offender,
                icmp_type: Some(err.icmp_type),
                icmp_code: Some(err.icmp_code),
                reason: crate::wire::icmp::describe(family, err.icmp_type, err.icmp_code),
            }),
            SO_EE_ORIGIN_LOCAL => Some(ProbeEvent::Error {
                id,
                from: None,
                icmp_type: None,
                icmp_code: None,
                reason: crate::net::socket::error_reason(&io::Error::from_raw_os_error(
                    err.errno as i32,
                )),
            }),
            _ => None,
        }
    }
}

/// Maps a reply that carries only its address and 16-bit sequence number (a payload too short
/// for the probe mark) to the probe it answers.
pub trait ProbeLookup {
    fn by_addr_seq16(&self, addr: IpAddr, seq16: u16) -> Option<ProbeId>;
}

/// One kind of probe (ICMP echo, UDP, TCP, TWAMP): sockets, sending and matching replies.
pub trait Prober {
    /// Streams per target (flows × classes); probe k of a target belongs to stream
    /// (k − 1) mod streams.
    fn streams(&self) -> usize {
        1
    }

    /// The flow of stream `stream` of target `target` (index `index`), for records.
    fn flow(&self, _target: &Target, _index: usize, _stream: usize) -> Option<Flow> {
        None
    }

    /// The local address the probes of stream `stream` of `target` (index `index`) leave from,
    /// for records (`src`); asked once per stream after the sockets are open. `None`: unknown.
    fn source(&self, _target: &Target, _index: usize, _stream: usize) -> Option<IpAddr> {
        None
    }

    /// Registers the prober's sockets with the poll, using tokens `first..first + n`;
    /// returns `n`.
    fn register(&mut self, registry: &mio::Registry, first: usize) -> io::Result<usize>;

    /// Sends probe `id` to `target`; the stamp is taken right before the send.
    fn send(&mut self, target: &Target, id: ProbeId) -> io::Result<SendStamp>;

    /// Whether probe `id` cannot leave because the previous probe of its flow still holds what
    /// they share (ltcp's connect mode: the 4-tuple). The engine then does not send it (the
    /// other flows keep their pace, and the probe in flight its whole timeout).
    fn flow_busy(&self, _id: ProbeId) -> bool {
        false
    }

    /// Reads whatever answered the probe in flight on `id`'s flow, as [`Prober::drain`] would,
    /// before the engine judges the flow busy: an answer that came in the same turn of the
    /// loop frees it.
    fn poll_flow(
        &mut self,
        _id: ProbeId,
        _lookup: &dyn ProbeLookup,
        _events: &mut Vec<ProbeEvent>,
    ) {
    }

    /// What the kernel dropped on each of the prober's sockets so far (receive queue full).
    fn dropped_local(&self) -> Vec<SocketDrops> {
        Vec::new()
    }

    /// Probe `id` timed out: release what it holds (a TCP prober closes its connection).
    fn expired(&mut self, _id: ProbeId) {}

    /// Events the prober found outside [`Prober::drain`] (loss it could place once a probe
    /// timed out); the engine collects them after every [`Prober::expired`].
    fn pending_events(&mut self, _events: &mut Vec<ProbeEvent>) {}

    /// Reads everything waiting on socket `token` (relative to `first`), including its error
    /// queue, and appends what it found to `events`.
    fn drain(&mut self, token: usize, lookup: &dyn ProbeLookup, events: &mut Vec<ProbeEvent>);
}
