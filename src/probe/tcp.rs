//! TCP connect probes (ltcp): the time from `connect` to a completed handshake is the RTT; a
//! refusal (RST) proves the path too. Each flow keeps a fixed source port; every connection is
//! closed with an RST (linger 0), so neither end keeps TIME_WAIT or a half-open socket and the
//! next probe can reuse the same 4-tuple. One 4-tuple holds one handshake at a time: a probe
//! due while its flow's previous one is still in flight is not sent ([`Prober::flow_busy`]),
//! so every probe sent gets its whole timeout and the other flows keep their pace.

use super::trace::connect::{connect, trace_connect, ConnectFlow};
use super::trace::{self, TraceConfig, TracedFlow, Tracer};
use super::{ProbeEvent, ProbeId, ProbeLookup, Prober, SendStamp};
use crate::net::socket::{self, SocketOptions};
use crate::record::Flow;
use crate::target::Target;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::Socket;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Connections in flight at most (tokens reserved for them).
pub const MAX_IN_FLIGHT: usize = 65_536;

/// How the probes are spread over source ports.
#[derive(Debug, Clone)]
pub struct TcpSpread {
    pub flows: u16,
    /// First source port; without it a random base is drawn once, so flows stay fixed.
    pub sport_base: Option<u16>,
}

impl TcpSpread {
    /// The flow record of stream `stream` towards `target`.
    pub fn flow(base: u16, target: &Target, stream: usize, tos: Option<u8>) -> Flow {
        Flow {
            sport: base.wrapping_add(stream as u16),
            dport: target.port,
            dscp: tos.map(|t| t >> 2),
        }
    }

    /// The first flow's source port: as given, or drawn once from the ephemeral range.
    /// The flows must fit below port 65536.
    pub fn base(&self) -> anyhow::Result<u16> {
        let base = self.sport_base.unwrap_or_else(|| {
            let span = 60_999u32
                .saturating_sub(32_768 + u32::from(self.flows))
                .max(1);
            (32_768 + crate::random::random_u64() as u32 % span) as u16
        });
        if u32::from(base) + u32::from(self.flows) > 65_536 {
            // The last flow's port would wrap.
            anyhow::bail!(
                "--sport {base} with {} flows runs past port 65535",
                self.flows
            );
        }
        Ok(base)
    }
}

struct Conn {
    sock: Socket,
    id: ProbeId,
    /// (target index, flow): one connection per 4-tuple at a time.
    key: (usize, u16),
    /// Where it connects to: a handshake's answer comes from there by construction.
    to: IpAddr,
}

/// Opens a connection per probe and reports how the handshake ended.
pub struct TcpProber {
    spread: TcpSpread,
    sport_base: u16,
    opts: SocketOptions,
    registry: Option<Registry>,
    first: usize,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    by_probe: HashMap<ProbeId, usize>,
    by_key: HashMap<(usize, u16), usize>,
    /// `--trace-every`: the paths followed.
    followed: Option<trace::Followed>,
    /// For error-queue reads (the headers an ICMP error quotes).
    errbuf: Vec<u8>,
}

impl TcpProber {
    pub fn new(spread: TcpSpread, sport_base: u16, opts: SocketOptions) -> TcpProber {
        TcpProber {
            spread,
            sport_base,
            opts,
            registry: None,
            first: 0,
            conns: Vec::new(),
            free: Vec::new(),
            by_probe: HashMap::new(),
            by_key: HashMap::new(),
            followed: None,
            errbuf: vec![0; 512],
        }
    }

    fn flow_of(&self, seq: u64) -> u16 {
        ((seq - 1) % u64::from(self.spread.flows.max(1))) as u16
    }

    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.conns.get_mut(slot).and_then(Option::take) {
            if let Some(reg) = &self.registry {
                let fd = conn.sock.as_raw_fd();
                let _ = reg.deregister(&mut SourceFd(&fd));
            }
            // Linger 0: close with an RST, leaving no TIME_WAIT on either end.
            let _ = conn.sock.set_linger(Some(Duration::ZERO));
            self.by_probe.remove(&conn.id);
            self.by_key.remove(&conn.key);
            self.free.push(slot);
        }
    }

    fn connect(&self, target: &Target, sport: u16) -> io::Result<Socket> {
        connect(
            target.socket_addr(target.port),
            sport,
            &self.opts,
            None,
            true,
        )
    }
}

/// How many segments the kernel sent again on a connecting socket (`TCP_INFO`): for a probe,
/// the SYNs retransmitted before the answer, each of which adds its timeout to the RTT.
fn syn_retransmits(sock: &Socket) -> Option<u32> {
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: tcp_info is plain integers, so all zeroes is a valid value; `info` and `len`
    // outlive the call and getsockopt writes at most `len` bytes into `info`. (nix has no
    // TCP_INFO option.)
    let (rc, info) = unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let rc = libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        (rc, info)
    };
    (rc == 0).then_some(info.tcpi_total_retrans)
}

impl Tracer for TcpProber {
    /// Traces every flow to every target with connections from the flow's own source port,
    /// the TTL set on each ([`trace::connect`]); one `path` per (target, flow), targets first.
    fn trace_flows(
        &mut self,
        targets: &[Target],
        cfg: &TraceConfig,
    ) -> anyhow::Result<Vec<TracedFlow>> {
        let mut flows = Vec::new();
        let mut ids = Vec::new();
        for (t, target) in targets.iter().enumerate() {
            for flow in 0..self.spread.flows.max(1) {
                ids.push(t);
                flows.push(ConnectFlow {
                    sport: self.sport_base.wrapping_add(flow),
                    dst: target.socket_addr(target.port),
                });
            }
        }
        let results = trace_connect(&flows, &self.opts, cfg)?;
        Ok(ids
            .into_iter()
            .zip(flows)
            .zip(results)
            .map(|((t, f), result)| {
                // The probes' own source (interface and mark applied), so the path and the
                // probe records name the same one.
                let src = socket::record_source(f.dst, &self.opts);
                TracedFlow::new(t, result, src, f.dst, "tcp", f.sport)
            })
            .collect())
    }

    fn followed(&mut self) -> &mut Option<trace::Followed> {
        &mut self.followed
    }
}

impl Prober for TcpProber {
    fn streams(&self) -> usize {
        usize::from(self.spread.flows.max(1))
    }

    fn flow(&self, target: &Target, _index: usize, stream: usize) -> Option<Flow> {
        Some(TcpSpread::flow(
            self.sport_base,
            target,
            stream,
            self.opts.tos,
        ))
    }

    /// The source a connect to the target gets: the kernel picks it from the route (or the
    /// bound `--source`), as for this throwaway socket with the same interface and mark.
    fn source(&self, target: &Target, _index: usize, _stream: usize) -> Option<IpAddr> {
        socket::record_source(target.socket_addr(target.port), &self.opts)
    }

    fn register(&mut self, registry: &Registry, first: usize) -> io::Result<usize> {
        self.registry = Some(registry.try_clone()?);
        self.first = first;
        Ok(MAX_IN_FLIGHT)
    }

    fn flow_busy(&self, id: ProbeId) -> bool {
        self.by_key.contains_key(&(id.target, self.flow_of(id.seq)))
    }

    fn poll_flow(&mut self, id: ProbeId, lookup: &dyn ProbeLookup, events: &mut Vec<ProbeEvent>) {
        if let Some(&slot) = self.by_key.get(&(id.target, self.flow_of(id.seq))) {
            self.drain(slot, lookup, events);
        }
    }

    fn send(&mut self, target: &Target, id: ProbeId) -> io::Result<SendStamp> {
        let flow = self.flow_of(id.seq);
        let key = (id.target, flow);
        // The engine sends nothing while the flow is busy (`flow_busy`); should a probe still
        // find the 4-tuple held, the older connection gives way.
        if let Some(&slot) = self.by_key.get(&key) {
            self.close(slot);
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None if self.conns.len() < MAX_IN_FLIGHT => {
                self.conns.push(None);
                self.conns.len() - 1
            }
            None => return Err(io::Error::other("too many connections in flight")),
        };
        let stamp = SendStamp::now();
        let sock = match self.connect(target, self.sport_base.wrapping_add(flow)) {
            Ok(s) => s,
            Err(e) => {
                self.free.push(slot);
                return Err(e);
            }
        };
        let fd = sock.as_raw_fd();
        if let Some(reg) = &self.registry {
            reg.register(
                &mut SourceFd(&fd),
                Token(self.first + slot),
                Interest::WRITABLE,
            )?;
        }
        self.conns[slot] = Some(Conn {
            sock,
            id,
            key,
            to: target.addr,
        });
        self.by_probe.insert(id, slot);
        self.by_key.insert(key, slot);
        Ok(stamp)
    }

    fn expired(&mut self, id: ProbeId) {
        if let Some(&slot) = self.by_probe.get(&id) {
            self.close(slot);
        }
    }

    fn drain(&mut self, token: usize, _lookup: &dyn ProbeLookup, events: &mut Vec<ProbeEvent>) {
        let Some(Some(conn)) = self.conns.get(token) else {
            return;
        };
        let (id, from) = (conn.id, conn.to);
        let rx_mono = Instant::now();
        // An ICMP error about the SYN (a router's time exceeded or unreachable, a firewall's
        // reject), with who sent it; Linux may not abort the connect for it (it would send the
        // SYN again), and when it does, SO_ERROR alone says only "no route to host".
        while let Ok(rx) = crate::net::recv_msg(conn.sock.as_raw_fd(), &mut self.errbuf, true) {
            let Some(err) = rx.anc.error else { continue };
            if let Some(event) =
                ProbeEvent::from_queued_error(id, crate::wire::Family::of(&from), &err)
            {
                events.push(event);
                self.close(token);
                return;
            }
        }
        let Some(Some(conn)) = self.conns.get(token) else {
            return;
        };
        let outcome = match conn.sock.take_error() {
            Ok(None) => match conn.sock.peer_addr() {
                Ok(_) => Some(Ok("open")),
                // Not connected yet: a spurious wake-up.
                Err(_) => None,
            },
            Ok(Some(e)) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Some(Ok("refused")),
            Ok(Some(e)) | Err(e) => Some(Err(e)),
        };
        let Some(outcome) = outcome else { return };
        let syn_retransmits = syn_retransmits(&conn.sock).filter(|&n| n > 0);
        match outcome {
            Ok(result) => events.push(ProbeEvent::Reply {
                id,
                from,
                rx_wall: None,
                rx_mono,
                ttl: None,
                size: None,
                tos: None,
                reflector: None,
                result: Some(result),
                syn_retransmits,
            }),
            Err(e) => events.push(ProbeEvent::Error {
                id,
                from: None,
                icmp_type: None,
                icmp_code: None,
                reason: socket::error_reason(&e),
            }),
        }
        self.close(token);
    }
}
