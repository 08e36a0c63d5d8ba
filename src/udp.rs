//! `ludp`: UDP echo probes over many flows and DSCP classes, as JSON lines.

use crate::cli::{self, AlertArgs, OutputArgs, RunArgs, SocketArgs, TargetArgs};
use crate::engine::Engine;
use crate::output::RecordWriter;
use crate::probe::trace::TraceConfig;
use crate::probe::udp::{check_payload_len, TracedFlow, UdpProber, UdpSpread, MAX_PAYLOAD};
use crate::record::{Body, Path, Record};
use anyhow::{bail, Context, Result};
use clap::Parser;
use std::collections::HashSet;
use std::process::ExitCode;
use std::time::SystemTime;

/// The lreflect echo port.
pub const DEFAULT_PORT: u16 = 8081;

const EXAMPLES: &str = "\
Examples:
  ludp -c 10 reflector.example                  ten probes to lreflect on port 8081
  ludp --flows 16 --sport 40000 -c 100 -q 10.0.0.2
                                                16 ECMP flows, a summary per flow
  ludp --dscp EF,AF41,CS1 -c 20 10.0.0.2:7      every flow in three classes, to an RFC 862 echo
  ludp --size 36 -c 10 llama-host:8100           the LLAMA reflector (36-byte datagrams)
  ludp -f reflectors.txt --flows 8 --alert-loss 1 --summary-every 1m
                                                continuous, windowed summaries and alerts

Against lreflect, replies also carry fwd_ms, rev_ms, reflector_ms (one-way figures: trust
them only when \"synced\" is true) and dscp_rx, the DSCP the probe arrived with.

Exit status: 0 every target answered, 1 some target never answered, 2 usage or system error.";

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
    after_help = EXAMPLES
)]
pub struct Args {
    /// Reflectors: host[:port], [v6]:port, addresses or CIDRs (port 8081 unless given).
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
    /// Number of flows, each with its own source port, probed round-robin.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=4096), help_heading = "Probe")]
    pub flows: u16,
    /// Source port of the first flow (the next flows take the next ports); ephemeral if unset.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..), help_heading = "Probe")]
    pub sport: Option<u16>,
    /// DSCP classes to probe every flow in (EF, AF41, CS1, … or 0-63; comma-separated or repeated).
    #[arg(long, value_name = "CLASS", value_delimiter = ',', value_parser = cli::parse_dscp, help_heading = "Probe")]
    pub dscp: Vec<u8>,
    /// Trace every flow first (Paris traceroute: the flow's own ports and addresses, only the
    /// TTL changes); a path record per flow at the end, with the flow's sent and lost.
    #[arg(long, help_heading = "Trace")]
    pub trace: bool,
    /// Trace every flow and stop (no probes): path records, and the number of distinct paths
    /// per target on stderr (fast ECMP path discovery).
    #[arg(long, help_heading = "Trace")]
    pub trace_only: bool,
    /// With --trace: trace every flow again every DURATION (probing pauses for each round, about
    /// one -W); a path record when a flow's path changed, with its sent and lost since its last.
    #[arg(long, value_name = "DURATION", requires = "trace", conflicts_with = "trace_only",
          value_parser = cli::parse_positive_duration, help_heading = "Trace")]
    pub trace_every: Option<std::time::Duration>,
    /// Highest TTL (hop limit) a trace probes.
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u8).range(1..=crate::probe::trace::MAX_TTL as i64), help_heading = "Trace")]
    pub max_ttl: u8,
    /// Trace probes per TTL (a hop answering from several addresses shows up as a path change).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(1..=16), help_heading = "Trace")]
    pub trace_probes: u8,
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
    let targets = cli::resolve_targets(
        &args.targets,
        &args.output,
        cli::Ports::Default(Some(args.port)),
    )?;
    if let Some(t) = targets.iter().find(|t| t.port == 0) {
        bail!("{}: UDP port 0 cannot be probed", t.name);
    }
    let spread = UdpSpread {
        flows: args.flows,
        sport_base: args.sport,
        dscp: args.dscp.clone(),
    };
    let mut prober = UdpProber::open(&targets, spread, args.size as usize, &args.socket.options())?;
    if !args.trace && !args.trace_only {
        return cli::run_probe(
            "ludp",
            &mut prober,
            targets,
            &args.run,
            &args.alerts,
            &args.output,
        );
    }
    crate::net::privilege::drop_privileges().context("cannot drop privileges")?;
    let cfg = TraceConfig {
        max_ttl: args.max_ttl,
        probes: args.trace_probes,
        timeout: args.run.timeout,
    };
    let mut traced = prober.trace(&targets, &cfg)?;
    let tags: Vec<_> = targets.iter().map(|t| t.tags.clone()).collect();
    let mut out = RecordWriter::stdout(args.output.format);
    let write_path = |out: &mut RecordWriter<_>, target: usize, path: Path| {
        out.write(&Record {
            tool: "ludp",
            ts: SystemTime::now(),
            tags: tags.get(target).cloned().flatten(),
            body: Body::Path(path),
        })
    };
    if args.trace_only {
        for tf in &traced {
            write_path(&mut out, tf.target, tf.path.clone())?;
        }
        let mut all_reached = true;
        for (t, target) in targets.iter().enumerate() {
            let flows: Vec<&TracedFlow> = traced.iter().filter(|f| f.target == t).collect();
            let paths: HashSet<_> = flows.iter().map(|f| f.result.key()).collect();
            let reached = flows.iter().filter(|f| f.result.reached).count();
            all_reached &= reached > 0;
            eprintln!(
                "ludp: {}: {} distinct paths over {} flows, {} reached the destination",
                target.name,
                paths.len(),
                flows.len(),
                reached
            );
        }
        return Ok(ExitCode::from(if all_reached {
            cli::EXIT_OK
        } else {
            cli::EXIT_NO_REPLY
        }));
    }
    let followed = args.trace_every.is_some();
    if let Some(every) = args.trace_every {
        for (t, path) in prober.follow_paths(&targets, &cfg, every, traced) {
            write_path(&mut out, t, path)?;
        }
        traced = Vec::new();
    }
    let run_cfg = cli::run_config("ludp", &args.run, &args.alerts, &args.output);
    let outcome = Engine::new(run_cfg, targets, &mut out).run(&mut prober)?;
    if outcome.malformed > 0 {
        eprintln!(
            "ludp: dropped {} datagrams that were not answers to its probes",
            outcome.malformed
        );
    }
    if followed {
        for (t, path) in prober.final_paths(&outcome.streams) {
            write_path(&mut out, t, path)?;
        }
    }
    for tf in &traced {
        let (sent, received) =
            crate::probe::trace::flow_totals(&outcome.streams, tf.target, tf.path.sport);
        let path = Path {
            sent: Some(sent),
            lost: Some(sent.saturating_sub(received)),
            ..tf.path.clone()
        };
        write_path(&mut out, tf.target, path)?;
    }
    Ok(ExitCode::from(if outcome.all_answered {
        cli::EXIT_OK
    } else {
        cli::EXIT_NO_REPLY
    }))
}
