//! `lreflect`: the UDP echo reflector that `ludp` (or any RFC 862 client) measures against.
//!
//! Every datagram goes back unchanged and at the same size to where it came from, from the
//! address it was sent to; ludp payloads with room get the reflector's receive and send
//! stamps ([`crate::wire::probe`]). Each datagram is answered or dropped for exactly one
//! reason, checked in this order: the access list (`acl`), empty or truncated (`malformed`),
//! the per-source token bucket (`rate_limit`), the global cap (`global_cap`), and a send that
//! failed (`send_error`). Counters per listening socket are written as `stats` records.
//!
//! - [`acl`]: `--allow`; [`limit`]: the per-source table and the global cap;
//! - [`batch`]: `recvmmsg`/`sendmmsg` with control messages, UDP GSO for runs of answers to
//!   one client, and the stamping;
//! - [`stats`]: the counters; [`notify`]: `READY=1` to systemd.

pub mod acl;
pub mod batch;
pub mod limit;
pub mod notify;
pub mod stats;

use crate::cli::{self, parse_duration};
use crate::output::{Format, RecordWriter};
use crate::record::{Body, Record, Tags};
use crate::target::parse_tag;
use anyhow::{anyhow, bail, Context, Result};
use batch::{Batch, SendOptions};
use clap::Parser;
use ipnet::IpNet;
use limit::{Gcra, Limits, Refusal, SourceTable};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use stats::{Reason, SocketStats};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const TOOL: &str = "lreflect";

const EXAMPLES: &str = "\
Examples:
  lreflect                                 echo on [::]:8081, IPv4 and IPv6
  lreflect --echo 192.0.2.10:8081 --echo [2001:db8::10]:8081
                                           two addresses, one socket each
  lreflect --allow 10.0.0.0/8 --allow fd00::/8 --rate-limit 200 --burst 50
                                           answer only these networks, 200/s per source
  lreflect --reflect-tos --stats-every 10s --tag site=fra1 | jq -c 'select(.dropped.acl > 0)'
                                           LLAMA-style TOS reflection, stats every 10 s
  systemctl start lreflect                 as a service: contrib/systemd/lreflect.service

Dropped datagrams are counted, each under the first reason that applies: acl (source not
allowed), malformed (empty, or longer than --max-size so only part of it could be read),
rate_limit (over the source's token bucket), global_cap (over --max-pps), send_error.

Exit status: 0 ended by SIGINT or SIGTERM, 2 usage or system error (bad flag, address in use, no permission).";

/// Command-line arguments of `lreflect`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lreflect",
    version,
    about = "UDP echo reflector for ludp and RFC 862 clients, with stats records",
    long_about = "UDP echo reflector: sends every datagram back to its source unchanged and at the \
same size, never more bytes than it received. Payloads that ludp sends get the reflector's kernel \
receive time, send time, the TOS byte they arrived with and the clock's sync state stamped into \
their reserved fields (when they have room: 52 bytes or more). An access list, a token bucket per \
source and a global cap bound what it answers; drops are counted by reason in periodic 'stats' \
records on stdout. Tells systemd READY=1 once its sockets are bound ($NOTIFY_SOCKET), and gives up \
its privileges right after binding.",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Listen on ADDR:PORT (repeatable). An IPv6 wildcard ([::]:PORT) also takes IPv4, unless
    /// an IPv4 address is given for the same port.
    #[arg(long = "echo", value_name = "ADDR:PORT", default_value = "[::]:8081",
          value_parser = parse_echo, help_heading = "Service")]
    pub echo: Vec<SocketAddr>,
    /// Answer with the TOS byte / traffic class the request arrived with (as LLAMA does);
    /// otherwise answers leave with TOS 0.
    #[arg(long, help_heading = "Service")]
    pub reflect_tos: bool,
    /// Send every answer on its own, never coalesced into UDP GSO sends (for a network
    /// interface or tunnel that mishandles UDP segmentation offload).
    #[arg(long, help_heading = "Service")]
    pub no_gso: bool,
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
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration,
          help_heading = "Output")]
    pub stats_every: Duration,
    /// Record format.
    #[arg(long, value_enum, default_value = "json", help_heading = "Output")]
    pub format: Format,
    /// Add key=value to every record's tags (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag, help_heading = "Output")]
    pub tags: Vec<(String, String)>,
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
/// How often the clock's sync state is read again.
const SYNC_CHECK: Duration = Duration::from_secs(1);
const SIGNAL_TOKEN: Token = Token(0);
const FIRST_SOCKET_TOKEN: usize = 1;

/// One listening socket.
struct Listener {
    sock: Socket,
    /// The bound address, as `stats` records name it.
    listen: String,
    /// Bound to a wildcard address: answers need the local address given explicitly.
    wildcard: bool,
    stats: SocketStats,
    /// Readable, and not yet drained.
    ready: bool,
    /// Answers to one destination may be coalesced into UDP GSO sends.
    gso: bool,
}

/// Opens and binds one socket with every receive option the reflector reads.
fn open(addr: SocketAddr, dual: bool) -> io::Result<Socket> {
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

/// Binds every `--echo` address. IPv6 wildcards are dual-stack unless an IPv4 address on the
/// same port is listed too (both would want the IPv4 side of the port).
fn bind_all(echo: &[SocketAddr], gso: bool) -> Result<Vec<Listener>> {
    let mut out = Vec::with_capacity(echo.len());
    for (k, &addr) in echo.iter().enumerate() {
        if echo[..k].contains(&addr) {
            bail!("--echo {addr} is given twice");
        }
        let v4_same_port = echo.iter().any(|o| o.is_ipv4() && o.port() == addr.port());
        let dual = match addr.ip() {
            IpAddr::V6(ip) => {
                (ip.is_unspecified() && !v4_same_port) || ip.to_ipv4_mapped().is_some()
            }
            IpAddr::V4(_) => false,
        };
        let sock = open(addr, dual)
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
    limits: Limits,
    batch: Batch,
    reflect_tos: bool,
    synced: bool,
    start: Instant,
    /// Last send error reported on stderr, so a persistent one is said once, not per packet.
    reported_send_error: Option<i32>,
}

impl Reflector {
    /// Reads and answers datagrams on `l` for one turn; returns whether it may have more.
    fn serve(&mut self, l: &mut Listener) -> bool {
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
            let now_ns = self.start.elapsed().as_nanos() as u64;
            let w = &mut l.stats.window;
            w.received += n as u64;
            for i in 0..n {
                let m = self.batch.meta[i];
                let verdict = match m.src {
                    None => Err(Reason::Malformed),
                    Some(src) if !self.acl.allows(src) => Err(Reason::Acl),
                    Some(_) if m.len == 0 || m.truncated => Err(Reason::Malformed),
                    Some(src) => self.limits.admit(src, now_ns).map_err(|r| match r {
                        Refusal::RateLimit => Reason::RateLimit,
                        Refusal::GlobalCap => Reason::GlobalCap,
                    }),
                };
                match verdict {
                    Ok(()) => self.batch.answer(i),
                    Err(why) => w.drop(why),
                }
            }
            let sent = self.batch.send(
                fd,
                SendOptions {
                    pktinfo: l.wildcard,
                    reflect_tos: self.reflect_tos,
                    synced: self.synced,
                    gso: l.gso,
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
}

/// Runs lreflect until SIGINT or SIGTERM.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut listeners = bind_all(&args.echo, !args.no_gso)?;
    crate::net::privilege::drop_privileges().context("cannot drop privileges")?;

    let per_source = (args.rate_limit > 0.0).then(|| {
        SourceTable::new(
            Gcra::new(args.rate_limit, args.burst),
            args.sources as usize,
        )
    });
    let global = (args.max_pps > 0.0)
        .then(|| Gcra::new(args.max_pps, ((args.max_pps / 10.0) as u64).max(1)));
    let mut reflector = Reflector {
        acl: acl::Acl::new(args.allow.clone()),
        limits: Limits::new(per_source, global),
        batch: Batch::new(args.max_size as usize),
        reflect_tos: args.reflect_tos,
        synced: crate::clock::synchronized(),
        start: Instant::now(),
        reported_send_error: None,
    };

    let mut poll = Poll::new().context("cannot create the event loop")?;
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
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

    match notify::notify("READY=1") {
        Ok(_) => {}
        Err(e) => eprintln!("{TOOL}: cannot tell the service manager READY=1: {e}"),
    }

    let tags: Option<Arc<Tags>> =
        (!args.tags.is_empty()).then(|| Arc::new(args.tags.iter().cloned().collect()));
    let mut out = RecordWriter::stdout(args.format);
    let mut write = |listen: &str, counters: &stats::Counters, window: &str| {
        out.write(&Record {
            tool: TOOL,
            ts: SystemTime::now(),
            tags: tags.clone(),
            body: Body::Stats(counters.record(listen, window)),
        })
    };
    let window_name = humantime::format_duration(args.stats_every).to_string();
    let every = (!args.stats_every.is_zero()).then_some(args.stats_every);
    let mut next_stats = every.map(|d| Instant::now() + d);
    let mut next_sync = Instant::now() + SYNC_CHECK;
    let mut events = Events::with_capacity(64);

    'run: loop {
        let now = Instant::now();
        if now >= next_sync {
            reflector.synced = crate::clock::synchronized();
            next_sync = now + SYNC_CHECK;
        }
        if let (Some(at), Some(d)) = (next_stats, every) {
            if now >= at {
                for l in &mut listeners {
                    let w = l.stats.close_window();
                    write(&l.listen, &w, &window_name)?;
                }
                // Absolute deadlines: periods do not drift; a stalled loop skips, not bunches.
                let mut at = at + d;
                while at <= now {
                    at += d;
                }
                next_stats = Some(at);
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
        for l in &mut listeners {
            if l.ready {
                l.ready = reflector.serve(l);
            }
        }
    }

    let _ = notify::notify("STOPPING=1");
    for l in &listeners {
        write(&l.listen, &l.stats.total(), "total")?;
    }
    Ok(ExitCode::from(cli::EXIT_OK))
}
