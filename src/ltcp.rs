//! `ltcp`: TCP connect probes over many flows, as JSON lines.
#![forbid(unsafe_code)]

use crate::cli::trace::TraceArgs;
use crate::cli::{
    self, pipeline, probe_args, AlertArgs, OutputArgs, RunArgs, SocketArgs, TargetArgs,
};
use crate::probe::syn::SynProber;
use crate::probe::tcp::{TcpProber, TcpSpread};
use anyhow::{bail, Result};
use clap::Parser;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  ltcp -c 5 example.com:443
      five handshakes, then a summary
  ltcp --flows 8 --sport 42000 -c 20 -q 10.0.0.2:22
      8 fixed source ports, a summary per flow
  ltcp -c 3 10.0.0.2:9
      a closed port answers with RST: \"result\":\"refused\"
  ltcp --syn -c 5 10.0.0.2:0
      raw SYNs to port 0: the host answers RST
  ltcp -f services.txt --alert-rtt 50 --summary-every 1m
      continuous, windowed summaries and alerts
  ltcp --flows 16 --trace -c 100 -q 10.0.0.2:443
      each flow's path, then its loss on it

A reply's rtt_ms is the time from connect() to the completed handshake (or the RST), read in
user space; with --syn, from the kernel's transmit stamp of the SYN to its receive stamp of the
answer. Every connection is closed with an RST, so no TIME_WAIT or half-open socket is left.
A flow's source port holds one handshake at a time: a probe due while the flow's previous one
is in flight is not sent (every probe sent gets its whole -W, the other flows keep their pace;
-c still counts N sent per flow); stderr says how many were not sent. A
reply whose SYN the kernel sent again carries syn_retransmits: its rtt_ms includes the
retransmission timeout (1 s for the first).

Exit status: 0 every target answered, 1 some target never answered, 2 usage or system error
(also when some target names did not resolve: the others are probed).";

/// Command-line arguments of `ltcp`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ltcp",
    version,
    about = "TCP connect probes over many flows, one JSON record per line",
    long_about = "TCP connect probes to host:port. The time to a completed handshake is the RTT; \
a refusal (RST) proves the path as well and is a reply with \"result\":\"refused\"; silence is a \
timeout. Each flow keeps a fixed source port, so flows spread over ECMP paths.",
    after_help = EXAMPLES,
    mut_arg("targets", |a| cli::port_targets_help(a, "no default: a target without a port is an error")),
    mut_arg("count", |a| cli::help_note(a, "With --flows the count is per flow: --flows 16 -c 100 sends 1,600"))
)]
pub struct Args {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Destination port of targets that do not name one.
    #[arg(short = 'p', long, value_name = "PORT",
          value_parser = clap::value_parser!(u16).range(1..), help_heading = "Probe")]
    pub port: Option<u16>,
    /// Number of flows, each with its own fixed source port, probed round-robin.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=4096), help_heading = "Probe")]
    pub flows: u16,
    /// Source port of the first flow (the next flows take the next ports); random if unset.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..), help_heading = "Probe")]
    pub sport: Option<u16>,
    /// Raw mode: a hand-built SYN, RTT to the SYN-ACK or RST (kernel stamps), then an RST;
    /// port 0 works (hosts answer RST). Needs CAP_NET_RAW.
    #[arg(long, help_heading = "Probe")]
    pub syn: bool,
    #[command(flatten)]
    pub socket: SocketArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs ltcp; the exit status follows ping and fping.
pub fn run(args: Args) -> Result<ExitCode> {
    let spread = TcpSpread {
        flows: args.flows,
        sport_base: args.sport,
    };
    let sport_base = spread.base()?;
    let options = args.socket.options();
    let ports = cli::Ports::Default(args.port);
    if args.syn {
        pipeline::run("ltcp", probe_args!(args), ports, |targets| {
            SynProber::open(targets, spread, sport_base, &options)
        })
    } else {
        pipeline::run("ltcp", probe_args!(args), ports, |targets| {
            if let Some(t) = targets.iter().find(|t| t.port == 0) {
                bail!(
                    "{}: port 0 takes no connection; use --syn, to which hosts answer RST",
                    t.name
                );
            }
            Ok(TcpProber::new(spread, sport_base, options))
        })
    }
}
