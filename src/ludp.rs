//! `ludp`: UDP echo probes over many flows and DSCP classes, as JSON lines.
#![forbid(unsafe_code)]

use crate::cli::trace::TraceArgs;
use crate::cli::{
    self, probe_args, AlertArgs, FlowArgs, OutputArgs, RunArgs, SocketArgs, TargetArgs,
};
use crate::probe::flows::MAX_PAYLOAD;
use crate::probe::udp::{check_payload_len, UdpProber};
use anyhow::{bail, Result};
use clap::Parser;
use std::process::ExitCode;

/// The lreflect echo port.
pub const DEFAULT_PORT: u16 = 8081;

const EXAMPLES: &str = "\
Examples:
  ludp -c 10 reflector.example
      ten probes to lreflect on port 8081
  ludp --flows 16 --sport 40000 -c 100 -q 10.0.0.2
      16 ECMP flows, a summary per flow
  ludp --dscp EF,AF41,CS1 -c 20 10.0.0.2:7
      every flow in three classes, to an RFC 862 echo
  ludp --size 36 -c 10 llama-host:8100
      the LLAMA reflector (36-byte datagrams)
  ludp -f reflectors.txt --flows 8 --alert-loss 1 --summary-every 1m
      continuous, windowed summaries and alerts
  ludp --flows 16 --trace-only 10.0.0.2:7
      the ECMP paths of 16 flows (Paris traceroute)
  ludp --flows 16 --trace --trace-every 5m -q 10.0.0.2
      each flow's paths over time, with its loss on each

A reply's rtt_ms is send to answer as ping's is, the reflector's own time included. Against
lreflect, replies also carry fwd_ms, rev_ms, reflector_ms (one-way figures: trust them only
when \"synced\" is true; rtt_ms - reflector_ms is the network's share, which ltwamp reports
as its rtt_ms) and dscp_rx, the DSCP the probe arrived with.

Exit status: 0 every target answered, 1 some target never answered, 2 usage or system error
(also when some target names did not resolve: the others are probed).";

/// Command-line arguments of `ludp`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ludp",
    version,
    about = "UDP echo probes over many flows and DSCP classes, one JSON record per line",
    long_about = "UDP probes to an echo reflector (lreflect, any RFC 862 echo service, LLAMA's \
reflector). Each flow has its own fixed source port, so flows spread over ECMP paths; every flow \
is probed in every DSCP class. Replies are matched on the echoed payload (magic, version, cookie, \
flow, sequence); ICMP errors come back through IP_RECVERR, with no raw socket.",
    after_help = EXAMPLES,
    mut_arg("targets", |a| cli::port_targets_help(a, "8081 unless given")),
    mut_arg("count", |a| cli::help_note(a, cli::COUNT_PER_FLOW)),
    mut_arg("dscp", |a| cli::help_note(a, "Trace probes carry the first class only: ECMP \
hashes the 5-tuple, not the DSCP, and a flow's path record counts its probes in every class"))
)]
pub struct Args {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Destination port of targets that do not name one.
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = DEFAULT_PORT,
          value_parser = clap::value_parser!(u16).range(1..), help_heading = "Probe")]
    pub port: u16,
    /// UDP payload bytes per probe (at least 32; 52 or more lets lreflect stamp its times).
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(0..=MAX_PAYLOAD as i64), help_heading = "Probe")]
    pub size: u32,
    #[command(flatten)]
    pub flows: FlowArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub socket: SocketArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs ludp; the exit status follows ping and fping.
pub fn run(args: Args) -> Result<ExitCode> {
    check_payload_len(args.size as usize)?;
    let spread = args.flows.spread();
    let ports = cli::Ports::Default(Some(args.port));
    cli::pipeline::run("ludp", probe_args!(args), ports, |targets| {
        if let Some(t) = targets.iter().find(|t| t.port == 0) {
            bail!("{}: UDP port 0 cannot be probed", t.name);
        }
        UdpProber::open(targets, spread, args.size as usize, &args.socket.options())
    })
}
