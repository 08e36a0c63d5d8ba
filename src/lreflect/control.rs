//! `--twamp-control`: the TWAMP server (RFC 5357 3). A TCP listener per address; each
//! connection runs [`crate::twamp_control::server::ServerConn`] and its granted sessions'
//! test packets go to lreflect's TWAMP test sockets (`--twamp-ports`, on the control
//! address), answered by the reflector path like any other, numbered per session.
//!
//! Bounded everywhere: connections per client and in all, sessions per connection and in all,
//! bytes buffered per connection (one message); a connection that sends no whole message for
//! `--control-idle` while not testing is closed, and so is a testing one none of whose sessions
//! sent a test packet for `--refwait` (RFC 5357 4.2's REFWAIT). The access list and the
//! per-source rate limit apply to connections as to datagrams. Every refusal is counted by
//! reason; a client that sends garbage loses its connection and nothing else.
#![forbid(unsafe_code)]

use super::acl::Acl;
use super::limit::{Gcra, SourceTable};
use crate::record::ControlStats;
use crate::twamp_control::crypto;
use crate::twamp_control::server::{Event, Fault, Offer, ServerConn, SetUpRefusal};
use crate::twamp_control::test_packet::TestKeys;
use crate::wire::ntp::{Format, Timestamp};
use crate::wire::twamp_control::{Accept, AcceptSession, RequestTwSession};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

/// The most a connection may have buffered: one Set-Up-Response (the longest message) and a
/// block. More means the peer is not waiting for answers: garbage.
const MAX_INPUT: usize = 256;
/// Refused requests after which a connection is closed.
const MAX_REFUSED: u32 = 16;
/// Unsent answers a connection may hold before the peer counts as not reading.
const MAX_OUTPUT: usize = 64 * 1024;

/// The limits of the control service.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    pub(super) per_client: usize,
    pub(super) connections: usize,
    pub(super) sessions_per_connection: usize,
    pub(super) sessions: usize,
    pub(super) idle: Duration,
    pub(super) refwait: Duration,
}

/// One granted test session: where its packets come from and go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct TestKey {
    pub(super) sender: IpAddr,
    pub(super) sender_port: u16,
    pub(super) port: u16,
}

impl TestKey {
    pub(super) fn new(sender: IpAddr, sender_port: u16, port: u16) -> TestKey {
        TestKey {
            sender: sender.to_canonical(),
            sender_port,
            port,
        }
    }
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    listener: usize,
    proto: ServerConn,
    input: Vec<u8>,
    /// The last whole message received (or the connection's start).
    last_message: Instant,
    /// The connection's sessions: their 5-tuples and SIDs.
    sessions: Vec<(TestKey, [u8; 16])>,
    /// After Stop-Sessions: when the sessions end (the requests' longest timeout).
    stop_at: Option<Instant>,
    timeout: Duration,
    /// Requests refused so far: a client that keeps asking after refusals is cut off, so one
    /// connection cannot keep the loop busy.
    refused: u32,
    closing: bool,
}

/// One granted session on a test 5-tuple: its SID, the DSCP of its Type-P descriptor (its
/// answers leave with it, RFC 5357 4.2.1), and its test keys in a keyed mode.
#[derive(Debug, Clone)]
pub(super) struct TestSession {
    pub(super) sid: [u8; 16],
    pub(super) dscp: u8,
    pub(super) keys: Option<TestKeys>,
}

/// What the reflector knows of a test 5-tuple: its sessions (a sender's DSCP classes on one
/// flow are sessions of their own), and when a test packet last came (ns of the reflector's
/// clock; 0: none yet).
#[derive(Debug, Clone, Default)]
pub(super) struct Watched {
    pub(super) seen_ns: u64,
    pub(super) sessions: Vec<TestSession>,
}

impl Watched {
    /// The DSCP answers of this 5-tuple leave with: the session's whose class the request
    /// arrived in (`tos`), else the first session's.
    pub(super) fn dscp(&self, tos: Option<u8>) -> Option<u8> {
        let got = tos.map(|t| t >> 2);
        self.sessions
            .iter()
            .find(|s| Some(s.dscp) == got)
            .or(self.sessions.first())
            .map(|s| s.dscp)
    }

    pub(super) fn keyed(&self) -> bool {
        self.sessions.iter().any(|s| s.keys.is_some())
    }
}

/// Sessions granted, over every connection, by test 5-tuple. The reflector notes the test
/// packets.
pub(super) type Granted = HashMap<TestKey, Watched>;

/// The TWAMP server: its listeners, connections and counters.
pub(super) struct ControlServer {
    listeners: Vec<(TcpListener, SocketAddr)>,
    conns: Vec<Option<Conn>>,
    offer: Offer,
    limits: Limits,
    acl: Acl,
    rate: Option<SourceTable>,
    /// The test ports sessions may be given.
    ports: Vec<u16>,
    /// How many granted sessions share each test 5-tuple: a sender's DSCP classes on one
    /// flow are sessions of their own on the control connection, and one on the wire.
    refs: HashMap<TestKey, u32>,
    stats: Vec<ControlStats>,
    totals: Vec<ControlStats>,
    token_base: usize,
    start: Instant,
}

impl ControlServer {
    /// Binds every control address.
    pub(super) fn bind(
        addrs: &[SocketAddr],
        offer: Offer,
        limits: Limits,
        acl: Acl,
        rate: Option<Gcra>,
        ports: Vec<u16>,
    ) -> anyhow::Result<ControlServer> {
        let mut listeners = Vec::new();
        for &a in addrs {
            let l = TcpListener::bind(a)
                .map_err(|e| anyhow::anyhow!("cannot listen for TWAMP-Control on {a}: {e}"))?;
            let local = l.local_addr().unwrap_or(a);
            listeners.push((l, local));
        }
        let n = listeners.len();
        Ok(ControlServer {
            listeners,
            conns: Vec::new(),
            offer,
            limits,
            acl,
            rate: rate.map(|g| SourceTable::new(g, 4096)),
            ports,
            refs: HashMap::new(),
            stats: vec![ControlStats::default(); n],
            totals: vec![ControlStats::default(); n],
            token_base: 0,
            start: Instant::now(),
        })
    }

    pub(super) fn addresses(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.listeners.iter().map(|(_, a)| *a)
    }

    /// Registers the listeners under tokens from `base` (connections take the ones after).
    pub(super) fn register(&mut self, registry: &Registry, base: usize) -> io::Result<()> {
        self.token_base = base;
        for (i, (l, _)) in self.listeners.iter_mut().enumerate() {
            registry.register(l, Token(base + i), Interest::READABLE)?;
        }
        Ok(())
    }

    /// Handles a readiness event on `token`.
    pub(super) fn ready(
        &mut self,
        g: &mut Granted,
        registry: &Registry,
        token: Token,
        now_ns: u64,
    ) {
        let k = token.0 - self.token_base;
        if k < self.listeners.len() {
            self.accept(g, registry, k, now_ns);
        } else if k - self.listeners.len() < self.conns.len() {
            self.service(g, registry, k - self.listeners.len());
        }
    }

    fn accept(&mut self, g: &mut Granted, registry: &Registry, li: usize, now_ns: u64) {
        loop {
            let (mut stream, peer) = match self.listeners[li].0.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EMFILE and the like: the connection waits in the backlog.
                Err(_) => return,
            };
            let src = peer.ip().to_canonical();
            let full = self.active() >= self.limits.connections
                || self.of_client(src) >= self.limits.per_client;
            let st = &mut self.stats[li];
            let refusal = if !self.acl.allows(src) {
                Some(&mut st.closed.acl)
            } else if self
                .rate
                .as_mut()
                .is_some_and(|t| match t.check(src, now_ns) {
                    Some((slot, tat)) => {
                        t.commit(slot, tat);
                        false
                    }
                    None => true,
                })
            {
                Some(&mut st.closed.rate_limit)
            } else if full {
                Some(&mut st.closed.limit)
            } else {
                None
            };
            if let Some(count) = refusal {
                // RFC 4656 3.1: a greeting without modes says the server will not talk.
                *count += 1;
                let _ = stream.write(&ServerConn::refusal());
                continue;
            }
            let proto = match ServerConn::new(&self.offer) {
                Ok(p) => p,
                Err(_) => continue,
            };
            self.stats[li].connections += 1;
            let local = stream.local_addr().unwrap_or(self.listeners[li].1);
            let slot = match self.conns.iter().position(Option::is_none) {
                Some(s) => s,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            let token = Token(self.token_base + self.listeners.len() + slot);
            if registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                continue;
            }
            self.conns[slot] = Some(Conn {
                stream,
                peer,
                local,
                listener: li,
                proto,
                input: Vec::new(),
                last_message: Instant::now(),
                sessions: Vec::new(),
                stop_at: None,
                timeout: Duration::ZERO,
                refused: 0,
                closing: false,
            });
            self.service(g, registry, slot);
        }
    }

    fn active(&self) -> usize {
        self.conns.iter().flatten().count()
    }

    fn of_client(&self, ip: IpAddr) -> usize {
        self.conns
            .iter()
            .flatten()
            .filter(|c| c.peer.ip().to_canonical() == ip)
            .count()
    }

    /// Reads what a connection has, acts on its whole messages, writes the answers.
    fn service(&mut self, g: &mut Granted, registry: &Registry, slot: usize) {
        let Some(mut c) = self.conns[slot].take() else {
            return;
        };
        let end = self.drive(g, &mut c);
        let flushed = flush(&mut c);
        match (end, flushed) {
            (None, Ok(())) if !c.closing => self.conns[slot] = Some(c),
            (why, _) => {
                if let Some(why) = why {
                    self.count_close(c.listener, why);
                }
                close(g, &mut self.refs, registry, c);
            }
        }
    }

    /// Reads and handles messages until the socket is drained; the reason to close, if any.
    fn drive(&mut self, g: &mut Granted, c: &mut Conn) -> Option<Fault> {
        let mut buf = [0u8; 512];
        loop {
            match c.stream.read(&mut buf) {
                Ok(0) => {
                    c.closing = true;
                    return None;
                }
                Ok(n) => {
                    c.input.extend_from_slice(&buf[..n]);
                    if c.input.len() > MAX_INPUT {
                        return Some(Fault::Garbage);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.closing = true;
                    return None;
                }
            }
            if let Some(f) = self.messages(g, c) {
                return Some(f);
            }
        }
        None
    }

    fn messages(&mut self, g: &mut Granted, c: &mut Conn) -> Option<Fault> {
        loop {
            let now = ntp_now();
            let ev = match c.proto.poll(&mut c.input, &self.offer, now) {
                Ok(Some(ev)) => ev,
                Ok(None) => return None,
                Err(f) => return Some(f),
            };
            c.last_message = Instant::now();
            match ev {
                Event::Request(r) => {
                    let a = self.grant(g, c, &r);
                    c.proto.answer_request(&a);
                    if a.accept != Accept::Ok {
                        c.refused += 1;
                        if c.refused > MAX_REFUSED {
                            return Some(Fault::Garbage);
                        }
                    }
                }
                Event::Start => {
                    let accept = if c.sessions.is_empty() {
                        Accept::Failure
                    } else {
                        Accept::Ok
                    };
                    c.proto.answer_start(accept);
                    if accept != Accept::Ok {
                        c.refused += 1;
                        if c.refused > MAX_REFUSED {
                            return Some(Fault::Garbage);
                        }
                    }
                }
                Event::Stop(_) => {
                    c.stop_at = Some(Instant::now() + c.timeout);
                }
            }
        }
    }

    /// Answers one Request-TW-Session: a port and SID, or the Accept code of the refusal.
    fn grant(&mut self, g: &mut Granted, c: &mut Conn, r: &RequestTwSession) -> AcceptSession {
        let st = &mut self.stats[c.listener].sessions;
        let refuse = |accept| AcceptSession {
            accept,
            port: 0,
            sid: [0; 16],
        };
        let unspecified = r.receiver.is_unspecified();
        if r.conf_sender != 0
            || r.conf_receiver != 0
            || r.schedule_slots != 0
            || r.packets != 0
            || r.dscp().is_none()
            || (!unspecified && r.receiver.to_canonical() != c.local.ip().to_canonical())
        {
            st.refused.not_supported += 1;
            return refuse(Accept::NotSupported);
        }
        if c.sessions.len() >= self.limits.sessions_per_connection {
            st.refused.permanent_limit += 1;
            return refuse(Accept::PermanentLimit);
        }
        if self.refs.values().sum::<u32>() as usize >= self.limits.sessions {
            st.refused.temporary_limit += 1;
            return refuse(Accept::TemporaryLimit);
        }
        let sender = if r.sender.is_unspecified() {
            c.peer.ip()
        } else {
            r.sender
        };
        // The requested port when it is one of ours, else the port of this connection's
        // earlier sessions (a client sends all of a target's sessions to one port), else
        // the one of ours with the fewest sessions.
        let refs = &self.refs;
        let load = |p: u16| {
            refs.iter()
                .filter(|(k, _)| k.port == p)
                .map(|(_, n)| *n)
                .sum::<u32>()
        };
        let port = if self.ports.contains(&r.receiver_port) {
            r.receiver_port
        } else if let Some((k, _)) = c.sessions.first() {
            k.port
        } else {
            match self.ports.iter().copied().min_by_key(|&p| load(p)) {
                Some(p) => p,
                None => {
                    st.refused.temporary_limit += 1;
                    return refuse(Accept::TemporaryLimit);
                }
            }
        };
        let key = TestKey::new(sender, r.sender_port, port);
        let sid = sid(c.local.ip());
        g.entry(key).or_default().sessions.push(TestSession {
            sid,
            dscp: r.dscp().unwrap_or(0),
            keys: c.proto.test_keys(&sid),
        });
        *self.refs.entry(key).or_insert(0) += 1;
        c.sessions.push((key, sid));
        let wait = Duration::from_secs(u64::from(r.timeout.secs))
            + Duration::from_nanos((u64::from(r.timeout.frac) * 1_000_000_000) >> 32);
        c.timeout = c.timeout.max(wait.min(Duration::from_secs(60)));
        st.accepted += 1;
        AcceptSession {
            accept: Accept::Ok,
            port,
            sid,
        }
    }

    fn count_close(&mut self, li: usize, why: Fault) {
        let c = &mut self.stats[li].closed;
        *match why {
            Fault::SetUpRefused(SetUpRefusal::Mode) => &mut c.mode,
            Fault::SetUpRefused(SetUpRefusal::UnknownKey | SetUpRefusal::BadToken) => &mut c.key,
            Fault::Garbage | Fault::ClientDeclined => &mut c.garbage,
            Fault::BadHmac => &mut c.hmac,
        } += 1;
    }

    /// Ends what has timed out: idle connections, stopped sessions past their timeout,
    /// testing connections past REFWAIT without a test packet.
    pub(super) fn sweep(&mut self, g: &mut Granted, registry: &Registry, now_ns: u64) {
        let now = Instant::now();
        let refwait_ns = u64::try_from(self.limits.refwait.as_nanos()).unwrap_or(u64::MAX);
        for slot in 0..self.conns.len() {
            let Some(c) = self.conns[slot].as_mut() else {
                continue;
            };
            if let Some(at) = c.stop_at {
                if now >= at {
                    end_sessions(g, &mut self.refs, c.sessions.drain(..));
                    c.stop_at = None;
                }
            }
            let why = if c.proto.testing() {
                let start_ns = c.last_message.duration_since(self.start).as_nanos() as u64;
                let last = c
                    .sessions
                    .iter()
                    .filter_map(|(k, _)| g.get(k))
                    .fold(start_ns, |a, w| a.max(w.seen_ns));
                (now_ns.saturating_sub(last) > refwait_ns).then_some(())
            } else {
                (now.duration_since(c.last_message) > self.limits.idle).then_some(())
            };
            if why.is_some() {
                let c = self.conns[slot].take().expect("checked above");
                self.stats[c.listener].closed.idle += 1;
                close(g, &mut self.refs, registry, c);
            }
        }
    }

    /// The counters of listener `i`'s window, which starts again; `active` as now.
    pub(super) fn close_window(&mut self, i: usize) -> ControlStats {
        let s = std::mem::take(&mut self.stats[i]);
        add(&mut self.totals[i], &s);
        self.with_active(i, s)
    }

    /// The counters of listener `i` over the whole run; `active` as now.
    pub(super) fn total(&mut self, i: usize) -> ControlStats {
        let mut t = self.totals[i];
        add(&mut t, &self.stats[i]);
        self.with_active(i, t)
    }

    fn with_active(&self, i: usize, mut s: ControlStats) -> ControlStats {
        s.active = self
            .conns
            .iter()
            .flatten()
            .filter(|c| c.listener == i)
            .count() as u64;
        s.sessions.active = self
            .conns
            .iter()
            .flatten()
            .filter(|c| c.listener == i)
            .map(|c| c.sessions.len() as u64)
            .sum();
        s
    }

    pub(super) fn len(&self) -> usize {
        self.listeners.len()
    }

    pub(super) fn listen(&self, i: usize) -> String {
        self.listeners[i].1.to_string()
    }
}

fn add(t: &mut ControlStats, s: &ControlStats) {
    t.connections += s.connections;
    let (a, b) = (&mut t.closed, &s.closed);
    a.acl += b.acl;
    a.limit += b.limit;
    a.rate_limit += b.rate_limit;
    a.mode += b.mode;
    a.key += b.key;
    a.garbage += b.garbage;
    a.hmac += b.hmac;
    a.idle += b.idle;
    t.sessions.accepted += s.sessions.accepted;
    let (a, b) = (&mut t.sessions.refused, &s.sessions.refused);
    a.not_supported += b.not_supported;
    a.permanent_limit += b.permanent_limit;
    a.temporary_limit += b.temporary_limit;
}

/// Ends a connection and its sessions.
fn close(g: &mut Granted, refs: &mut HashMap<TestKey, u32>, registry: &Registry, mut c: Conn) {
    let _ = registry.deregister(&mut c.stream);
    end_sessions(g, refs, c.sessions.drain(..));
}

/// Ends sessions: a test 5-tuple no session holds any more is no longer watched.
fn end_sessions(
    g: &mut Granted,
    refs: &mut HashMap<TestKey, u32>,
    keys: impl Iterator<Item = (TestKey, [u8; 16])>,
) {
    for (k, sid) in keys {
        if let Some(w) = g.get_mut(&k) {
            w.sessions.retain(|s| s.sid != sid);
        }
        if let Some(n) = refs.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                refs.remove(&k);
                g.remove(&k);
            }
        }
    }
}

/// Writes what the connection has queued; an error if the peer does not take it.
fn flush(c: &mut Conn) -> io::Result<()> {
    let out = c.proto.output();
    while !out.is_empty() {
        match c.stream.write(out) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    if out.len() > MAX_OUTPUT {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(())
}

fn ntp_now() -> Timestamp {
    let ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Timestamp::from_unix_ns(ns, Format::Ntp)
}

/// A session identifier as RFC 4656 3.5 builds it: the receiver's IPv4 address (the last four
/// bytes of an IPv6 one), a timestamp, four random bytes.
fn sid(local: IpAddr) -> [u8; 16] {
    let mut s = [0u8; 16];
    let addr = match local.to_canonical() {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    s[..4].copy_from_slice(&addr);
    s[4..12].copy_from_slice(&ntp_now().to_bytes());
    s[12..].copy_from_slice(&crypto::random::<4>().unwrap_or_default());
    s
}
