//! Tracing with TCP connect probes (ltcp): each probe is a connection from the flow's own
//! source port with the TTL set on the connecting socket, so its SYN carries the flow's
//! 5-tuple. A router where the TTL runs out answers with ICMP time exceeded, which comes back
//! on that socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`); the destination answers with
//! a SYN-ACK (the connection completes and is reset at once) or an RST. No raw socket.
//!
//! The kernel allows one connection per 4-tuple at a time, so the probes of one flow go one
//! after another (the flows in parallel): TTL by TTL, each probe as soon as the previous one
//! is answered or timed out. A silent TTL costs `--trace-probes` timeouts, so a flow stops
//! after [`GAP_LIMIT`] silent TTLs in a row (a destination that drops SYNs). `--syn` traces
//! all TTLs at once instead.

use super::{classify_error, origin_family, Answer, Pacer, TraceConfig, TraceResult, Tracker};
use crate::net::cmsg::{SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6};
use crate::net::recv_msg;
use crate::net::socket::{self, SocketOptions};
use anyhow::{Context, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Silent TTLs in a row after which a flow's trace stops (as scamper's gap limit).
pub const GAP_LIMIT: u8 = 5;

/// One flow to trace: its source port and destination.
#[derive(Debug, Clone, Copy)]
pub struct ConnectFlow {
    pub sport: u16,
    pub dst: SocketAddr,
}

/// A connecting socket from `sport` to `dst` with the options applied (`ttl` over `-t`),
/// `IP_RECVERR` on when `recv_errors`. `connect` is under way (or done) when it returns.
pub fn connect(
    dst: SocketAddr,
    sport: u16,
    opts: &SocketOptions,
    ttl: Option<u8>,
    recv_errors: bool,
) -> io::Result<Socket> {
    let v6 = dst.is_ipv6();
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let sock = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    sock.set_reuse_address(true)?;
    let mut opts = opts.clone();
    let source = opts.source.take().filter(|s| s.is_ipv6() == v6);
    if ttl.is_some() {
        opts.ttl = ttl;
    }
    socket::apply_options(&sock, v6, &opts).map_err(io::Error::other)?;
    if recv_errors {
        let (level, name) = if v6 {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
        } else {
            (libc::IPPROTO_IP, libc::IP_RECVERR)
        };
        socket::setsockopt_int(sock.as_raw_fd(), level, name, 1)?;
    }
    let ip = source.unwrap_or(if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    sock.bind(&SockAddr::from(SocketAddr::new(ip, sport)))?;
    match sock.connect(&SockAddr::from(dst)) {
        Ok(()) => Ok(sock),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(sock),
        Err(e) => Err(e),
    }
}

/// Closes a probe's connection with an RST (linger 0): neither end keeps any state, and the
/// flow's next probe can use the same 4-tuple at once.
fn abort(sock: Socket) {
    let _ = sock.set_linger(Some(Duration::ZERO));
}

struct InFlight {
    sock: Socket,
    ttl: u8,
    n: u8,
    deadline: Instant,
}

struct FlowCursor {
    ttl: u8,
    n: u8,
    /// Silent TTLs in a row so far.
    gap: u8,
    in_flight: Option<InFlight>,
    finished: bool,
}

/// Traces every flow (one connection at a time per flow, flows in parallel, all sends paced);
/// one result per flow, in order.
pub fn trace_connect(
    flows: &[ConnectFlow],
    opts: &SocketOptions,
    cfg: &TraceConfig,
) -> Result<Vec<TraceResult>> {
    let mut tracker = Tracker::new(flows.len(), cfg);
    let cfg = *tracker.config();
    let mut cursors: Vec<FlowCursor> = flows
        .iter()
        .map(|_| FlowCursor {
            ttl: 1,
            n: 0,
            gap: 0,
            in_flight: None,
            finished: false,
        })
        .collect();
    let mut poll = Poll::new().context("cannot create the trace loop")?;
    let mut pacer = Pacer::new(cfg.rate, Instant::now());
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 2048];
    loop {
        if super::stopped() {
            for c in cursors.iter_mut() {
                close(&poll, c);
            }
            break;
        }
        // Start the next probe of every idle flow, as the pace allows.
        for (i, c) in cursors.iter_mut().enumerate() {
            if c.finished || c.in_flight.is_some() {
                continue;
            }
            if !advance(c, i, &tracker, &cfg) {
                c.finished = true;
                continue;
            }
            let now = Instant::now();
            if !pacer.ready(now) {
                break;
            }
            let (ttl, n) = (c.ttl, c.n);
            match connect(flows[i].dst, flows[i].sport, opts, Some(ttl), true) {
                Ok(sock) => {
                    let fd = sock.as_raw_fd();
                    poll.registry()
                        .register(&mut SourceFd(&fd), Token(i), Interest::WRITABLE)
                        .context("cannot register a trace socket")?;
                    tracker.sent(i, ttl, n, now);
                    c.in_flight = Some(InFlight {
                        sock,
                        ttl,
                        n,
                        deadline: now + cfg.timeout,
                    });
                }
                // Could not even start (no local route, port busy): as if unanswered.
                Err(_) => c.n += 1,
            }
            pacer.sent(now);
        }
        if cursors.iter().all(|c| c.finished) {
            break;
        }
        let now = Instant::now();
        // Expire probes whose time is up.
        for c in cursors.iter_mut() {
            if c.in_flight.as_ref().is_some_and(|p| p.deadline <= now) {
                close(&poll, c);
                c.n += 1;
            }
        }
        let idle = cursors.iter().any(|c| !c.finished && c.in_flight.is_none());
        let wake = cursors
            .iter()
            .filter_map(|c| c.in_flight.as_ref().map(|p| p.deadline))
            .chain(idle.then(|| pacer.next()))
            .min();
        let Some(wake) = wake else { continue };
        match poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("poll failed"),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(c) = cursors.get_mut(i) else {
                continue;
            };
            let Some(p) = &c.in_flight else { continue };
            let Some((from, kind)) = outcome(&p.sock, flows[i].dst, &mut buf) else {
                continue;
            };
            tracker.answer(i, p.ttl, p.n, from, kind, Instant::now());
            close(&poll, c);
            c.n += 1;
        }
    }
    Ok(tracker.results())
}

fn close(poll: &Poll, c: &mut FlowCursor) {
    if let Some(p) = c.in_flight.take() {
        let fd = p.sock.as_raw_fd();
        let _ = poll.registry().deregister(&mut SourceFd(&fd));
        abort(p.sock);
    }
}

/// Moves the cursor to the next probe worth sending; false when the flow's trace is over.
fn advance(c: &mut FlowCursor, flow: usize, tracker: &Tracker, cfg: &TraceConfig) -> bool {
    loop {
        if c.ttl > cfg.max_ttl || !tracker.wanted(flow, c.ttl) {
            return false;
        }
        if c.n < cfg.probes {
            return true;
        }
        // This TTL is over.
        if tracker.answered_at(flow, c.ttl) {
            c.gap = 0;
        } else {
            c.gap += 1;
            if c.gap >= GAP_LIMIT {
                return false;
            }
        }
        c.ttl += 1;
        c.n = 0;
    }
}

/// How a connecting socket's probe was answered, if it was: an ICMP error on the error queue
/// (a router's time exceeded or unreachable, or the destination's), a completed handshake or
/// an RST (the destination).
fn outcome(sock: &Socket, dst: SocketAddr, buf: &mut [u8]) -> Option<(IpAddr, Answer)> {
    let fd = sock.as_raw_fd();
    while let Ok(rx) = recv_msg(fd, buf, true) {
        let Some(err) = rx.anc.error else { continue };
        if err.origin != SO_EE_ORIGIN_ICMP && err.origin != SO_EE_ORIGIN_ICMP6 {
            continue;
        }
        let Some(from) = err.offender else { continue };
        let _ = sock.take_error();
        let family = origin_family(err.origin);
        return Some((from, classify_error(family, err.icmp_type, from, dst.ip())));
    }
    match sock.take_error() {
        Ok(None) => sock
            .peer_addr()
            .ok()
            .map(|_| (dst.ip(), Answer::Destination)),
        Ok(Some(e)) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            Some((dst.ip(), Answer::Destination))
        }
        // A local failure (the neighbour did not answer): no answer from the path.
        _ => None,
    }
}
