//! `lreflect`'s command line: its flags, their parsers and the help text's examples.
#![forbid(unsafe_code)]

use super::acl;
use crate::cli::{self, parse_duration};
use crate::output::Format;
use crate::target::parse_tag;
use clap::Parser;
use ipnet::IpNet;
use std::net::SocketAddr;
use std::time::Duration;

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
  lreflect --twamp-control [::]:862 --twamp-ports 20000-20099
      a TWAMP server: control on TCP 862, test sessions on UDP 20000-20099
  lreflect --twamp-control [::]:862 --key-file /etc/lreflect/twamp.pfs \\
    --require-auth
      authenticated and encrypted modes only (lines 'KEYID HEXSECRET')
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
bucket), global_cap (over --max-pps), send_error, and on the test ports of --twamp-control
no_session (a sender no granted session has).

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
request arrived with, the RFC 8972 TLVs after the first 44 bytes answered (Extra Padding, \
Location, Timestamp Information, Class of Service: the answer leaves with the DSCP it asks for, \
Direct Measurement: the session's counters; others with the U flag, a malformed one with M), \
and an Error Estimate whose S bit says \
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
    /// Be a TWAMP server (RFC 5357): TWAMP-Control on TCP ADDR:PORT (repeatable; 862 is the
    /// standard port). Granted sessions' test packets go to UDP sockets on the same address
    /// at --twamp-ports, answered as --twamp answers.
    #[arg(long = "twamp-control", value_name = "ADDR:PORT", value_parser = parse_echo,
          help_heading = "TWAMP-Control")]
    pub twamp_control: Vec<SocketAddr>,
    /// The UDP ports test sessions are given, LO-HI (default: the control port itself). A
    /// sender's requested port is given when it is one of them and free for that sender.
    #[arg(long, value_name = "LO-HI", value_parser = parse_ports,
          requires = "twamp_control", help_heading = "TWAMP-Control")]
    pub twamp_ports: Option<(u16, u16)>,
    /// Keys file for the authenticated and encrypted modes: 'KEYID SECRET' lines, the secret
    /// in hex (owampd's pfs format). Without it only the unauthenticated mode is offered.
    #[arg(
        long,
        value_name = "PATH",
        requires = "twamp_control",
        help_heading = "TWAMP-Control"
    )]
    pub key_file: Option<std::path::PathBuf>,
    /// Offer only the authenticated and encrypted modes (needs --key-file).
    #[arg(long, requires = "key_file", help_heading = "TWAMP-Control")]
    pub require_auth: bool,
    /// Control connections at once, in all.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=65536), help_heading = "TWAMP-Control")]
    pub control_connections: u64,
    /// Control connections at once from one client address.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=65536), help_heading = "TWAMP-Control")]
    pub control_per_client: u64,
    /// Test sessions one control connection may hold (more are refused with Accept 4).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=65536), help_heading = "TWAMP-Control")]
    pub control_sessions: u64,
    /// A control connection that sends no whole message this long, outside a test, is closed.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration,
          help_heading = "TWAMP-Control")]
    pub control_idle: Duration,
    /// REFWAIT (RFC 5357 4.2): a testing connection none of whose sessions sent a test packet
    /// this long is closed, and its sessions end.
    #[arg(long, value_name = "DURATION", default_value = "900s", value_parser = parse_duration,
          help_heading = "TWAMP-Control")]
    pub refwait: Duration,
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

pub(super) fn parse_echo(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        format!("'{s}' is not ADDR:PORT (e.g. 0.0.0.0:8081, [::]:8081, [fd00::1]:8081)")
    })
}

fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("'{s}' is not a port range LO-HI (e.g. 20000-20099)");
    let (lo, hi) = s.trim().split_once('-').ok_or_else(bad)?;
    let (lo, hi): (u16, u16) = (
        lo.trim().parse().map_err(|_| bad())?,
        hi.trim().parse().map_err(|_| bad())?,
    );
    if lo == 0 || lo > hi || hi - lo >= 1024 {
        return Err(format!(
            "{}: from 1 up, LO <= HI, at most 1024 ports",
            bad()
        ));
    }
    Ok((lo, hi))
}

fn parse_pps(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a rate between 0 and 1000000000 per second"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse_as_addr_port() {
        assert_eq!(parse_echo(" [::]:8081 "), Ok("[::]:8081".parse().unwrap()));
        assert_eq!(
            parse_echo("127.0.0.1:862"),
            Ok("127.0.0.1:862".parse().unwrap())
        );
        let e = parse_echo("8081").unwrap_err();
        assert!(e.contains("is not ADDR:PORT"), "{e}");
        assert!(parse_echo("localhost:8081").is_err());
    }

    #[test]
    fn port_ranges_are_lo_hi() {
        assert_eq!(parse_ports("20000-20099"), Ok((20000, 20099)));
        assert_eq!(parse_ports(" 862-862 "), Ok((862, 862)));
        for bad in ["862", "0-10", "20-10", "1-2000", "a-b", ""] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_are_between_zero_and_a_billion() {
        assert_eq!(parse_pps("0"), Ok(0.0));
        assert_eq!(parse_pps(" 1000.5 "), Ok(1000.5));
        assert_eq!(parse_pps("1000000000"), Ok(1e9));
        for bad in ["-1", "1e10", "NaN", "inf", "fast", ""] {
            assert!(parse_pps(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = Args::try_parse_from(["lreflect"]).unwrap();
        assert!(a.echo.is_empty() && a.twamp.is_empty());
        assert_eq!(a.rate_limit, 1000.0);
        assert_eq!(a.burst, 100);
        assert_eq!(a.max_pps, 100_000.0);
        assert_eq!(a.session_timeout, Duration::from_secs(300));
        assert_eq!(a.stats_every, Duration::from_secs(60));
        assert_eq!(a.max_size, 9000);
    }

    #[test]
    fn twamp_only_flags_need_twamp() {
        for flag in [
            &["--stateless"][..],
            &["--session-timeout", "1m"],
            &["--sessions", "8"],
        ] {
            let argv: Vec<&str> = std::iter::once("lreflect")
                .chain(flag.iter().copied())
                .collect();
            assert!(Args::try_parse_from(&argv).is_err(), "{flag:?}");
        }
        assert!(Args::try_parse_from(["lreflect", "--twamp", "[::]:862", "--stateless"]).is_ok());
    }
}
