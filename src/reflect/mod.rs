//! `lreflect`: the UDP echo reflector that `ludp` (or any RFC 862 client) measures against,
//! and a TWAMP-Light / STAMP Session-Reflector (`--twamp`) for `ltwamp` and other senders.
//!
//! On an echo socket every datagram goes back unchanged and at the same size to where it came
//! from, from the address it was sent to; ludp payloads with room get the reflector's receive
//! and send stamps ([`crate::wire::probe`]). On a TWAMP socket every request gets the STAMP
//! reflector reply ([`crate::wire::twamp`]), built over the request in the receive buffer:
//! T2 the kernel's receive time, T3 read right before the send call, the TTL the request
//! arrived with, and a sequence number counted per session ([`session`]) or copied
//! (`--stateless`). Each datagram is answered or dropped for exactly one reason, checked in
//! this order: the access list (`acl`), a source port that answers back (`loop`), empty,
//! truncated or (TWAMP) under 14 bytes (`malformed`), the per-source token bucket (`rate_limit`), the global cap (`global_cap`),
//! and a send that failed (`send_error`). Counters per listening socket are written as
//! `stats` records.
//!
//! - [`acl`]: `--allow`; [`loops`]: the loop guard; [`limit`]: the per-source table and the
//!   global cap;
//! - [`batch`]: `recvmmsg`/`sendmmsg` with control messages, UDP GSO for runs of answers to
//!   one client, and the stamping;
//! - [`session`]: the TWAMP sessions and their sequence numbers;
//! - [`stats`]: the counters; [`notify`]: `READY=1` to systemd.

pub mod acl;
pub mod batch;
pub mod limit;
pub mod loops;
pub mod notify;
pub mod session;
pub mod stats;

use crate::cli::{self, parse_duration};
use crate::clock::ClockState;
use crate::output::{Format, RecordWriter};
use crate::record::{Body, Record, Tags};
use crate::target::parse_tag;
use anyhow::{anyhow, bail, Context, Result};
use batch::{Batch, SendOptions};
use clap::Parser;
use ipnet::IpNet;
use limit::{Gcra, Limits, Refusal, SourceTable};
use loops::LoopGuard;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use session::{SessionKey, SessionTable};
use signal_hook_mio::v1_0::Signals;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use stats::{Malformed, Reason, SessionEvents, SocketStats};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const TOOL: &str = "lreflect";

const EXAMPLES: &str = "\
Examples:
  lreflect
      echo on [::]:8081, IPv4 and IPv6
  lreflect --echo 192.0.2.10:8081 --echo [2001:db8::10]:8081
      two addresses, one socket each
  lreflect --allow 10.0.0.0/8 --allow fd00::/8 --rate-limit 200 --burst 50
      answer only these networks, 200/s per source
  lreflect --reflect-tos --stats-every 10s --tag site=fra1 |
    jq -c 'select(.dropped.acl > 0)'
      LLAMA-style TOS reflection, stats every 10 s
  lreflect --twamp [::]:862
      TWAMP-Light / STAMP reflector only, IPv4 and IPv6
  lreflect --echo [::]:8081 --twamp [::]:862 --session-timeout 1m
      both, TWAMP sessions idle for a minute end
  lreflect --twamp 192.0.2.10:862 --stateless
      replies carry the sender's sequence numbers
  lreflect --stats-every 1m \\
    --textfile /var/lib/prometheus/node-exporter/lreflect.prom
      its counters for node_exporter (in a directory nobody can write to:
      lreflect runs on as nobody)
  systemctl start lreflect
      as a service: contrib/systemd/lreflect.service

Dropped datagrams are counted, each under the first reason that applies: acl (source not
allowed), loop (from a port that answers back, so a spoofed datagram cannot start an endless
exchange between two reflectors: 7, 13, 19, 37 and lreflect's echo ports, and on echo sockets
also 862 and its TWAMP ports, which TWAMP senders may send from; see --no-loop-guard), malformed (empty, longer than --max-size so only part of it could be read, or a
TWAMP request under 14 bytes; by reason in malformed_by), rate_limit (over the source's token
bucket), global_cap (over --max-pps), send_error.

Exit status: 0 ended by SIGINT, SIGTERM or SIGHUP, 2 usage or system error (bad flag, address in use, no permission).";

/// Command-line arguments of `lreflect`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lreflect",
    version,
    about = "UDP echo reflector for ludp and RFC 862 clients, and TWAMP-Light/STAMP reflector, with stats records",
    long_about = "UDP echo reflector: sends every datagram back to its source unchanged and at the \
same size, never more bytes than it received. Payloads that ludp sends get the reflector's kernel \
receive time, send time, the TOS byte they arrived with and the clock's sync state stamped into \
their reserved fields (when they have room: 52 bytes or more).\n\n\
With --twamp it is also (or only) a TWAMP-Light (RFC 5357) / STAMP (RFC 8762) Session-Reflector, \
unauthenticated: every request of 14 bytes or more gets the STAMP reply, max(request, 44) bytes, \
with the kernel's receive time (T2), the send time read right before the send (T3), the \
sender's sequence number, timestamp, error estimate and SSID copied, the TTL or hop limit the \
request arrived with, bytes beyond 44 copied back, and an Error Estimate whose S bit says \
whether the host clock is synchronized. Sequence numbers count per session (client and local \
address and port, SSID) from 0, or copy the sender's with --stateless.\n\n\
An access list, a token bucket per source and a global cap bound what it answers; drops are \
counted by reason in periodic 'stats' records on stdout. Tells systemd READY=1 once its \
sockets are bound ($NOTIFY_SOCKET), and gives up its privileges right after binding: every \
capability, and started by root, root itself (it runs on as nobody, uid 65534).",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Echo on ADDR:PORT (repeatable; default [::]:8081 unless --twamp is given). An IPv6
    /// wildcard ([::]:PORT) also takes IPv4, unless an IPv4 address is given for the same
    /// port.
    #[arg(long = "echo", value_name = "ADDR:PORT", value_parser = parse_echo,
          help_heading = "Service")]
    pub echo: Vec<SocketAddr>,
    /// Answer with the TOS byte / traffic class the request arrived with (as LLAMA does);
    /// otherwise answers leave with TOS 0.
    #[arg(long, help_heading = "Service")]
    pub reflect_tos: bool,
    /// Send every answer on its own, never coalesced into UDP GSO sends (for a network
    /// interface or tunnel that mishandles UDP segmentation offload).
    #[arg(long, help_heading = "Service")]
    pub no_gso: bool,
    /// Answer TWAMP-Light / STAMP test packets on ADDR:PORT (repeatable; the standard port is
    /// 862, which needs CAP_NET_BIND_SERVICE). An IPv6 wildcard also takes IPv4, as for
    /// --echo. Without --echo, no echo socket is opened.
    #[arg(long = "twamp", value_name = "ADDR:PORT", value_parser = parse_echo,
          help_heading = "TWAMP")]
    pub twamp: Vec<SocketAddr>,
    /// Copy each request's sequence number into its reply, keeping no sessions; otherwise
    /// replies are counted per session from 0 (RFC 8762 stateful mode), so a sender can tell
    /// forward from reverse loss.
    #[arg(long, requires = "twamp", help_heading = "TWAMP")]
    pub stateless: bool,
    /// A TWAMP session idle this long ends; its next packet starts it again from 0 (0: never,
    /// sessions end only to make room).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration,
          requires = "twamp", help_heading = "TWAMP")]
    pub session_timeout: Duration,
    /// TWAMP sessions tracked at once: a fixed table allocated at start (64 bytes each); when
    /// it is full, a new session takes the place of an idle one, else of the least recently
    /// seen.
    #[arg(long, value_name = "N", default_value_t = 65536,
          value_parser = clap::value_parser!(u64).range(8..=1_048_576),
          requires = "twamp", help_heading = "TWAMP")]
    pub sessions: u64,
    /// ludp flows (source address and port, local address and port) counted at once on echo
    /// sockets, so ludp can place its loss by direction: a fixed table allocated at start
    /// (64 bytes each); when it is full, a new flow takes the place of the least recently seen.
    #[arg(long, value_name = "N", default_value_t = 65536,
          value_parser = clap::value_parser!(u64).range(8..=1_048_576), help_heading = "Limits")]
    pub flows: u64,
    /// Answer datagrams from every source port. By default those from 7, 13, 19, 37 (echo,
    /// daytime, chargen, time) and from lreflect's echo ports, and on echo sockets also from
    /// 862 and lreflect's TWAMP ports, are dropped as 'loop': they may be another reflector's
    /// answers, and answering them can start an exchange that never ends.
    #[arg(long, help_heading = "Limits")]
    pub no_loop_guard: bool,
    /// Longest datagram answered, in bytes; longer ones are dropped as malformed.
    #[arg(long, value_name = "BYTES", default_value_t = 9000,
          value_parser = clap::value_parser!(u32).range(1..=65535), help_heading = "Service")]
    pub max_size: u32,
    /// Answer only sources in CIDR (repeatable; an address alone is one host). IPv4 clients of
    /// a dual-stack socket match IPv4 blocks. Default: everyone.
    #[arg(long = "allow", value_name = "CIDR", value_parser = acl::parse_allow, help_heading = "Limits")]
    pub allow: Vec<IpNet>,
    /// Datagrams per second answered per source address, on average (0: no limit).
    #[arg(long, value_name = "PPS", default_value = "1000", value_parser = parse_pps,
          allow_negative_numbers = true, help_heading = "Limits")]
    pub rate_limit: f64,
    /// Datagrams a source may send at once, above its rate.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000), help_heading = "Limits")]
    pub burst: u64,
    /// Sources tracked by the rate limit at once: a fixed table of 32 bytes per source,
    /// allocated at start; when it is full, the source with the fullest bucket gives way.
    #[arg(long, value_name = "N", default_value_t = 65536,
          value_parser = clap::value_parser!(u64).range(8..=1_048_576), help_heading = "Limits")]
    pub sources: u64,
    /// Datagrams per second answered in all, over every socket (0: no cap); bursts up to a
    /// tenth of a second's worth.
    #[arg(long, value_name = "PPS", default_value = "100000", value_parser = parse_pps,
          allow_negative_numbers = true, help_heading = "Limits")]
    pub max_pps: f64,
    /// Write a stats record per socket every DURATION (0: only the total at exit).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = cli::parse_period,
          help_heading = "Output")]
    pub stats_every: Duration,
    /// Record format.
    #[arg(long, value_enum, default_value = "json", help_heading = "Output")]
    pub format: Format,
    /// Add key=value to every record's tags (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag, help_heading = "Output")]
    pub tags: Vec<(String, String)>,
    /// Also write the Prometheus exposition (as --format openmetrics) to PATH, rewritten
    /// atomically at every stats window and at exit: for node_exporter's textfile collector.
    /// Started by root, lreflect writes it as nobody, so nobody must be able to write there.
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub textfile: Option<std::path::PathBuf>,
}

fn parse_echo(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!("'{s}' is not ADDR:PORT (e.g. 0.0.0.0:8081, [::]:8081, [fd00::1]:8081)")
    })
}

fn parse_pps(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a rate between 0 and 1000000000 per second"
        )),
    }
}

/// Datagrams handled per socket before the loop looks at signals, timers and the other
/// sockets again, so a flood on one socket starves nothing.
const BATCHES_PER_TURN: usize = 16;
/// Receive buffer asked for: room for bursts while a batch is being answered.
const RCVBUF: i32 = 4 << 20;
/// The echo port when neither --echo nor --twamp is given.
const DEFAULT_ECHO_PORT: u16 = 8081;
/// How often the clock's sync state is read again.
const SYNC_CHECK: Duration = Duration::from_secs(1);
const SIGNAL_TOKEN: Token = Token(0);
const FIRST_SOCKET_TOKEN: usize = 1;

/// One listening socket.
struct Listener {
    sock: Socket,
    /// The bound address, as `stats` records name it.
    listen: String,
    /// The bound address (a TWAMP session's local address, unless the socket is a wildcard).
    local: SocketAddr,
    /// A TWAMP Session-Reflector socket, not an echo one.
    twamp: bool,
    /// Bound to a wildcard address: answers need the local address given explicitly.
    wildcard: bool,
    stats: SocketStats,
    /// Readable, and not yet drained.
    ready: bool,
    /// Answers to one destination may be coalesced into UDP GSO sends.
    gso: bool,
}

/// Opens and binds one socket with every receive option the reflector reads.
fn open(addr: SocketAddr, dual: bool, twamp: bool) -> io::Result<Socket> {
    let v6 = addr.is_ipv6();
    let sock = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )?;
    let fd = sock.as_raw_fd();
    let on = |level, name| crate::net::socket::setsockopt_int(fd, level, name, 1);
    // Timestamping is enabled before the first datagram (the kernel turns it on lazily).
    on(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)?;
    let wildcard = addr.ip().is_unspecified();
    if v6 {
        sock.set_only_v6(!dual)?;
        on(libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS)?;
        if dual {
            // IPv4 clients of a dual-stack socket: the kernel reports their TOS as IP_TOS,
            // and only when asked at the IPv4 level.
            on(libc::IPPROTO_IP, libc::IP_RECVTOS)?;
        }
        if wildcard {
            on(libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)?;
        }
    } else {
        on(libc::IPPROTO_IP, libc::IP_RECVTOS)?;
        if wildcard {
            on(libc::IPPROTO_IP, libc::IP_PKTINFO)?;
        }
    }
    if twamp {
        // The TTL or hop limit each request arrived with. IPv4 clients of a dual-stack socket
        // get theirs only from IP_RECVTTL (IPV6_RECVHOPLIMIT says nothing about them). Replies
        // leave with 255, as senders' test packets do, so a sender can count the return path's
        // hops too.
        let set = |level, name, v| crate::net::socket::setsockopt_int(fd, level, name, v);
        if v6 {
            on(libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)?;
            set(libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 255)?;
        }
        if !v6 || dual {
            on(libc::IPPROTO_IP, libc::IP_RECVTTL)?;
            set(libc::IPPROTO_IP, libc::IP_TTL, 255)?;
        }
    }
    // Beyond net.core.rmem_max only with CAP_NET_ADMIN; else the kernel caps the request.
    if crate::net::socket::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF)
        .is_err()
    {
        let _ = crate::net::socket::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF);
    }
    sock.bind(&SockAddr::from(addr))?;
    Ok(sock)
}

/// Whether the kernel takes UDP GSO on this socket. Asked with a segment size of 0 (none by
/// default): a kernel that does not know the option would ignore the per-send one too, and
/// send the coalesced answers as one long datagram.
fn gso_supported(sock: &Socket) -> bool {
    crate::net::socket::setsockopt_int(sock.as_raw_fd(), libc::SOL_UDP, batch::UDP_SEGMENT, 0)
        .is_ok()
}

/// What to do about a bind error, in words.
fn bind_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "; another process has this port (ss -ulpn shows which)",
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "; ports below 1024 need CAP_NET_BIND_SERVICE (the systemd unit grants it)"
        }
        Some(libc::EADDRNOTAVAIL) => "; no interface has this address",
        _ => "",
    }
}

/// Binds every `--echo` and `--twamp` address (`(address, twamp)`). IPv6 wildcards are
/// dual-stack unless an IPv4 address on the same port is listed too (both would want the IPv4
/// side of the port).
fn bind_all(addrs: &[(SocketAddr, bool)], gso: bool) -> Result<Vec<Listener>> {
    let flag = |twamp: bool| if twamp { "--twamp" } else { "--echo" };
    let mut out = Vec::with_capacity(addrs.len());
    for (k, &(addr, twamp)) in addrs.iter().enumerate() {
        if let Some(&(_, other)) = addrs[..k].iter().find(|(a, _)| *a == addr) {
            if other == twamp {
                bail!("{} {addr} is given twice", flag(twamp));
            }
            bail!("{addr} is given both as --echo and as --twamp");
        }
        let v4_same_port = addrs
            .iter()
            .any(|(o, _)| o.is_ipv4() && o.port() == addr.port());
        let dual = match addr.ip() {
            IpAddr::V6(ip) => {
                (ip.is_unspecified() && !v4_same_port) || ip.to_ipv4_mapped().is_some()
            }
            IpAddr::V4(_) => false,
        };
        let sock = open(addr, dual, twamp)
            .map_err(|e| anyhow!("cannot listen on {addr}: {e}{}", bind_hint(&e)))?;
        let local = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(addr);
        out.push(Listener {
            gso: gso && gso_supported(&sock),
            sock,
            listen: local.to_string(),
            local,
            twamp,
            wildcard: addr.ip().is_unspecified(),
            stats: SocketStats::default(),
            ready: false,
        });
    }
    Ok(out)
}

/// Everything the loop needs besides the sockets.
struct Reflector {
    acl: acl::Acl,
    /// The loop guards of echo and of TWAMP sockets.
    loop_guards: [LoopGuard; 2],
    limits: Limits,
    batch: Batch,
    reflect_tos: bool,
    synced: bool,
    /// The host clock's Error Estimate, as TWAMP replies carry it.
    error: u16,
    /// TWAMP sessions (none with `--stateless`, or without TWAMP sockets).
    sessions: Option<SessionTable>,
    /// The counts of ludp flows on echo sockets (none without echo sockets).
    flows: Option<SessionTable>,
    /// Session (TWAMP socket) or flow (echo socket) events per listening socket since its last
    /// `stats` record.
    events: Vec<SessionEvents>,
    start: Instant,
    /// Last send error reported on stderr, so a persistent one is said once, not per packet.
    reported_send_error: Option<i32>,
}

impl Reflector {
    /// Monotonic ns since the start.
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Reads the clock's sync state and error again.
    fn read_clock(&mut self) {
        let c = ClockState::read();
        self.synced = c.synced;
        self.error = c.error_estimate().encode();
    }

    /// The session (or flow) of received datagram `i` on listener `l`, from `src`.
    fn session_key(&self, l: &Listener, i: usize, src: IpAddr, ssid: u16) -> SessionKey {
        let local = match self.batch.meta[i].control.local {
            Some(batch::Local::V4(a)) => IpAddr::from(a),
            Some(batch::Local::V6(a)) => IpAddr::from(a),
            None => l.local.ip(),
        };
        SessionKey::new(src, self.batch.source_port(i), local, l.local.port(), ssid)
    }

    /// Counts the session events of one table update under their listeners.
    fn note(&mut self, idx: usize, up: &session::Update) {
        if up.started {
            self.events[idx].started += 1;
        }
        if let Some(k) = up.expired {
            self.events[usize::from(k)].expired += 1;
        }
        if let Some(k) = up.evicted {
            self.events[usize::from(k)].evicted += 1;
        }
    }

    /// The sequence number of the reply to TWAMP request `i` on listener `idx`: the sender's
    /// own (stateless), or its session's next.
    fn twamp_seq(&mut self, l: &Listener, idx: usize, i: usize, src: IpAddr, now_ns: u64) -> u32 {
        let request = self.batch.payload(i);
        if self.sessions.is_none() {
            return u32::from_be_bytes([request[0], request[1], request[2], request[3]]);
        }
        // The SSID of a STAMP request; a shorter (TWAMP-Light) one has none.
        let ssid = if request.len() >= crate::wire::twamp::STAMP_LEN {
            u16::from_be_bytes([request[14], request[15]])
        } else {
            0
        };
        let key = self.session_key(l, i, src, ssid);
        let Some(table) = self.sessions.as_mut() else {
            return 0;
        };
        let up = table.next(&key, idx as u16, now_ns);
        self.note(idx, &up);
        up.seq
    }

    /// Counts ludp probe `i` on echo listener `idx` in its flow, answered or `refused`; an
    /// answered one gets the flow's counts stamped in.
    fn count_flow(&mut self, l: &Listener, idx: usize, i: usize, now_ns: u64, refused: bool) {
        let Some(src) = self.batch.meta[i].src else {
            return;
        };
        if self.flows.is_none() || !crate::wire::probe::is_countable(self.batch.payload(i)) {
            return;
        }
        let key = self.session_key(l, i, src, 0);
        let Some(table) = self.flows.as_mut() else {
            return;
        };
        let (up, counts) = table.count(&key, idx as u16, now_ns, refused);
        self.note(idx, &up);
        if !refused {
            self.batch.set_counts(i, counts);
        }
    }

    /// Reads and answers datagrams on `l` (listener `idx`) for one turn; returns whether it
    /// may have more.
    fn serve(&mut self, l: &mut Listener, idx: usize) -> bool {
        let fd: RawFd = l.sock.as_raw_fd();
        for _ in 0..BATCHES_PER_TURN {
            let n = match self.batch.recv(fd) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("{TOOL}: receive on {} failed: {e}", l.listen);
                    return false;
                }
            };
            let now_ns = self.now_ns();
            l.stats.window.received += n as u64;
            for i in 0..n {
                let m = self.batch.meta[i];
                let verdict = match m.src {
                    None => Err(Reason::Malformed(Malformed::Other)),
                    Some(src) if !self.acl.allows(src) => Err(Reason::Acl),
                    Some(_)
                        if self.loop_guards[usize::from(l.twamp)]
                            .refuses(self.batch.source_port(i)) =>
                    {
                        Err(Reason::Loop)
                    }
                    Some(_) if m.len == 0 => Err(Reason::Malformed(Malformed::Empty)),
                    Some(_) if m.truncated => Err(Reason::Malformed(Malformed::TooLong)),
                    Some(_) if l.twamp && m.len < crate::wire::twamp::SENDER_MIN_LEN => {
                        Err(Reason::Malformed(Malformed::Short))
                    }
                    Some(src) => {
                        self.limits
                            .admit(src, now_ns)
                            .map(|()| src)
                            .map_err(|r| match r {
                                Refusal::RateLimit => Reason::RateLimit,
                                Refusal::GlobalCap => Reason::GlobalCap,
                            })
                    }
                };
                match verdict {
                    Ok(src) if l.twamp => {
                        let seq = self.twamp_seq(l, idx, i, src, now_ns);
                        if self.batch.reflect_twamp(i, seq, self.error) {
                            self.batch.answer(i);
                        } else {
                            // Cannot happen: length and truncation were checked above.
                            l.stats.window.drop(Reason::Malformed(Malformed::Other));
                        }
                    }
                    Ok(_) => {
                        self.count_flow(l, idx, i, now_ns, false);
                        self.batch.answer(i);
                    }
                    Err(why) => {
                        if !l.twamp && matches!(why, Reason::RateLimit | Reason::GlobalCap) {
                            // Refused by our own limits: the flow's counts say so.
                            self.count_flow(l, idx, i, now_ns, true);
                        }
                        l.stats.window.drop(why)
                    }
                }
            }
            let w = &mut l.stats.window;
            let sent = self.batch.send(
                fd,
                SendOptions {
                    pktinfo: l.wildcard,
                    reflect_tos: self.reflect_tos,
                    synced: self.synced,
                    gso: l.gso,
                    twamp: l.twamp,
                },
            );
            if sent.gso_refused {
                l.gso = false;
            }
            w.reflected += sent.reflected;
            w.stamped += sent.stamped;
            w.dropped.send_error += sent.failed;
            if sent.last_error.is_some() && sent.last_error != self.reported_send_error {
                let e = io::Error::from_raw_os_error(sent.last_error.unwrap_or(0));
                eprintln!("{TOOL}: cannot answer on {}: {e}", l.listen);
                self.reported_send_error = sent.last_error;
            }
            if n < batch::BATCH {
                // A short batch emptied the queue; a datagram arriving later raises a new
                // readiness event.
                return false;
            }
        }
        true
    }

    /// Ends idle sessions and moves the session and flow events into each listener's open
    /// window; returns the sessions (TWAMP sockets) or flows (echo sockets) alive per listener
    /// (`None` without either table).
    fn settle_sessions(&mut self, listeners: &mut [Listener]) -> Option<Vec<u64>> {
        let now_ns = self.now_ns();
        let mut active = vec![0u64; listeners.len()];
        if self.sessions.is_none() && self.flows.is_none() {
            return None;
        }
        let events = &mut self.events;
        for table in [self.sessions.as_mut(), self.flows.as_mut()]
            .into_iter()
            .flatten()
        {
            table.sweep(now_ns, &mut active, |k| {
                if let Some(e) = events.get_mut(usize::from(k)) {
                    e.expired += 1;
                }
            });
        }
        for (l, e) in listeners.iter_mut().zip(self.events.iter_mut()) {
            let s = &mut l.stats.window.sessions;
            s.started += e.started;
            s.expired += e.expired;
            s.evicted += e.evicted;
            *e = SessionEvents::default();
        }
        Some(active)
    }
}

/// Runs lreflect until SIGINT, SIGTERM or SIGHUP.
/// The first stats window when `--stats-every` is longer: the first record comes this soon.
const FIRST_STATS: Duration = Duration::from_secs(10);

/// What lreflect says on stderr once it answers: its sockets and its stats period.
fn start_line(listeners: &[Listener], stats_every: Duration) -> String {
    let sockets: Vec<String> = listeners
        .iter()
        .map(|l| format!("{} on {}", if l.twamp { "TWAMP" } else { "echo" }, l.listen))
        .collect();
    let stats = if stats_every.is_zero() {
        "stats at the end only".to_string()
    } else if stats_every > FIRST_STATS {
        format!(
            "stats every {} (the first after {})",
            humantime::format_duration(stats_every),
            humantime::format_duration(FIRST_STATS)
        )
    } else {
        format!("stats every {}", humantime::format_duration(stats_every))
    };
    format!("answering {}; {stats}", sockets.join(", "))
}

pub fn run(args: Args) -> Result<ExitCode> {
    // Echo on the default port only when nothing at all is asked for.
    let echo: Vec<SocketAddr> = if args.echo.is_empty() && args.twamp.is_empty() {
        vec![SocketAddr::from((
            std::net::Ipv6Addr::UNSPECIFIED,
            DEFAULT_ECHO_PORT,
        ))]
    } else {
        args.echo.clone()
    };
    let addrs: Vec<(SocketAddr, bool)> = echo
        .iter()
        .map(|&a| (a, false))
        .chain(args.twamp.iter().map(|&a| (a, true)))
        .collect();
    let mut listeners = bind_all(&addrs, !args.no_gso)?;
    crate::net::privilege::drop_privileges_for_good().context("cannot drop privileges")?;
    // Checked as the user lreflect runs on as, before it says it is ready.
    let textfile = args
        .textfile
        .as_ref()
        .map(|path| {
            crate::output::metrics::Textfile::new(path.clone()).map_err(|e| {
                let who = if e.kind() == io::ErrorKind::PermissionDenied {
                    " (lreflect writes it as the user it runs on as: nobody when started by root)"
                } else {
                    ""
                };
                anyhow::anyhow!("--textfile: cannot write {e}{who}")
            })
        })
        .transpose()?;

    let per_source = (args.rate_limit > 0.0).then(|| {
        SourceTable::new(
            Gcra::new(args.rate_limit, args.burst),
            args.sources as usize,
        )
    });
    let global = (args.max_pps > 0.0)
        .then(|| Gcra::new(args.max_pps, ((args.max_pps / 10.0) as u64).max(1)));
    let timeout_ns = (!args.session_timeout.is_zero())
        .then(|| u64::try_from(args.session_timeout.as_nanos()).unwrap_or(u64::MAX));
    let sessions = (!args.stateless && listeners.iter().any(|l| l.twamp))
        .then(|| SessionTable::new(args.sessions as usize, timeout_ns));
    // Flows are never idle: only a new flow in a full set ends one.
    let flows = listeners
        .iter()
        .any(|l| !l.twamp)
        .then(|| SessionTable::new(args.flows as usize, None));
    let mut reflector = Reflector {
        acl: acl::Acl::new(args.allow.clone()),
        loop_guards: if args.no_loop_guard {
            [LoopGuard::off(), LoopGuard::off()]
        } else {
            let ports = |twamp: bool| {
                listeners
                    .iter()
                    .filter(move |l| l.twamp == twamp)
                    .map(|l| l.local.port())
            };
            [
                LoopGuard::echo(ports(false).chain(ports(true))),
                LoopGuard::twamp(ports(false)),
            ]
        },
        limits: Limits::new(per_source, global),
        batch: Batch::new(args.max_size as usize),
        reflect_tos: args.reflect_tos,
        synced: false,
        error: 0,
        sessions,
        flows,
        events: vec![SessionEvents::default(); listeners.len()],
        start: Instant::now(),
        reported_send_error: None,
    };
    reflector.read_clock();

    let mut poll = Poll::new().context("cannot create the event loop")?;
    let mut signals = Signals::new(cli::end_signals()).context("cannot install signal handlers")?;
    poll.registry()
        .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
    for (i, l) in listeners.iter().enumerate() {
        poll.registry()
            .register(
                &mut SourceFd(&l.sock.as_raw_fd()),
                Token(FIRST_SOCKET_TOKEN + i),
                Interest::READABLE,
            )
            .context("cannot register the sockets")?;
    }

    eprintln!("{TOOL}: {}", start_line(&listeners, args.stats_every));
    match notify::notify("READY=1") {
        Ok(_) => {}
        Err(e) => eprintln!("{TOOL}: cannot tell the service manager READY=1: {e}"),
    }

    let tags: Option<Arc<Tags>> =
        (!args.tags.is_empty()).then(|| Arc::new(args.tags.iter().cloned().collect()));
    // No histograms: no bucket bounds.
    let mut out = RecordWriter::stdout(args.format).metrics(Vec::new(), textfile);
    let write = |out: &mut RecordWriter<io::Stdout>,
                 l: &Listener,
                 counters: &stats::Counters,
                 window: &str,
                 active: Option<u64>| {
        let mode = if l.twamp { "twamp" } else { "echo" };
        out.write(&Record {
            tool: TOOL,
            ts: SystemTime::now(),
            tags: tags.clone(),
            body: Body::Stats(counters.record(&l.listen, mode, window, active)),
        })
    };
    let every = (!args.stats_every.is_zero()).then_some(args.stats_every);
    // The first window is short, so a new deployment shows its counts within seconds.
    let mut window = every.map(|d| d.min(FIRST_STATS));
    let mut next_stats = window.map(|d| Instant::now() + d);
    let mut next_sync = Instant::now() + SYNC_CHECK;
    let mut events = Events::with_capacity(64);

    'run: loop {
        let now = Instant::now();
        if now >= next_sync {
            reflector.read_clock();
            next_sync = now + SYNC_CHECK;
        }
        if let (Some(at), Some(d), Some(length)) = (next_stats, every, window) {
            if now >= at {
                let active = reflector.settle_sessions(&mut listeners);
                let name = humantime::format_duration(length).to_string();
                for (k, l) in listeners.iter_mut().enumerate() {
                    let w = l.stats.close_window();
                    write(&mut out, l, &w, &name, active.as_ref().map(|a| a[k]))?;
                }
                out.end_window()?;
                window = Some(d);
                next_stats = Some(crate::engine::next_period(at, d, now));
            }
        }
        let busy = listeners.iter().any(|l| l.ready);
        let timeout = if busy {
            Some(Duration::ZERO)
        } else {
            let until = next_stats.map_or(next_sync, |s| s.min(next_sync));
            Some(until.saturating_duration_since(Instant::now()))
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("poll failed"),
        }
        for ev in events.iter() {
            if ev.token() == SIGNAL_TOKEN {
                if signals.pending().next().is_some() {
                    break 'run;
                }
            } else if let Some(l) = ev
                .token()
                .0
                .checked_sub(FIRST_SOCKET_TOKEN)
                .and_then(|i| listeners.get_mut(i))
            {
                l.ready = true;
            }
        }
        for (k, l) in listeners.iter_mut().enumerate() {
            if l.ready {
                l.ready = reflector.serve(l, k);
            }
        }
    }

    let _ = notify::notify("STOPPING=1");
    let active = reflector.settle_sessions(&mut listeners);
    for (k, l) in listeners.iter().enumerate() {
        write(
            &mut out,
            l,
            &l.stats.total(),
            "total",
            active.as_ref().map(|a| a[k]),
        )?;
    }
    out.end_window()?;
    Ok(ExitCode::from(cli::EXIT_OK))
}
