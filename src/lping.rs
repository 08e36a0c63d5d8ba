//! `lping`: ICMP echo to one or many targets, as JSON lines.
#![forbid(unsafe_code)]

use crate::cli::trace::TraceArgs;
use crate::cli::{self, probe_args, AlertArgs, OutputArgs, RunArgs, SocketArgs, TargetArgs};
use crate::net::IcmpSocketMode;
use crate::probe::icmp::{IcmpProber, MAX_PAYLOAD, STABLE_PAYLOAD};
use anyhow::{bail, Result};
use clap::Parser;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  lping -c 3 example.com
      three probes, then a summary
  lping -c 10 -i 0.2 10.0.0.1 fd00::1
      two targets, five probes a second each
  lping -q -c 100 10.1.2.0/24 | jq 'select(.loss_pct > 0)'
      a whole subnet, lossy hosts only
  lping -f hosts.txt --tag dc=fra1 --alert-loss 5 --summary-every 1m
      continuous, windowed summaries and alerts
  lping --format influx -w 30s example.com |
    curl --data-binary @- 'http://influx:8086/write?db=net'
      30 seconds of figures into InfluxDB
  lping -c 20 -q -f hosts.txt \\
    --textfile /var/lib/prometheus/node-exporter/lping.prom
      the figures for node_exporter's textfile collector (cron)
  lping --trace --trace-every 5m -q 10.0.0.1
      the path there (one ICMP flow identity), again every 5m

Exit status: 0 every target answered, 1 some target never answered, 2 usage or system error
(also when some target names did not resolve: the others are probed).";

/// Command-line arguments of `lping`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lping",
    version,
    about = "ICMP echo to one or many targets, one JSON record per line",
    long_about = "ICMP echo (IPv4 and IPv6) to one or many targets, fping-style, with kernel receive \
timestamps. Writes one record per line: reply, timeout, unreachable, summary, alert. Uses an \
unprivileged ICMP datagram socket when net.ipv4.ping_group_range allows it, a raw socket otherwise.",
    after_help = EXAMPLES
)]
pub struct Args {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Echo data bytes per probe (the ICMP message is 8 bytes more).
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = 56,
          value_parser = clap::value_parser!(u32).range(0..=MAX_PAYLOAD as i64), help_heading = "Probe")]
    pub size: u32,
    #[command(flatten)]
    pub socket: SocketArgs,
    /// ICMP socket kind: auto (datagram if allowed, else raw), dgram or raw.
    #[arg(
        long = "socket",
        value_enum,
        default_value = "auto",
        help_heading = "Socket"
    )]
    pub socket_mode: IcmpSocketMode,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs lping; the exit status follows ping and fping.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.trace.any() && (args.size as usize) < STABLE_PAYLOAD {
        bail!(
            "--trace needs --size {STABLE_PAYLOAD} or more: the payload keeps the probes' \
             checksum constant (Paris traceroute)"
        );
    }
    cli::pipeline::run("lping", probe_args!(args), cli::Ports::None, |targets| {
        IcmpProber::open(
            targets,
            args.socket_mode,
            args.size as usize,
            &args.socket.options(),
        )
    })
}
