//! Argument groups shared by the probing tools, their value parsers ([`parse`]), the one
//! pipeline of the four probes ([`pipeline`]) and the one way every binary turns a result into
//! an exit status ([`exit`]).
#![forbid(unsafe_code)]

use crate::alert::Thresholds;
use crate::engine::RunConfig;
use crate::net::socket::SocketOptions;
use crate::output::Format;
use crate::probe::flows::FlowSpread;
use crate::record::Tags;
use crate::target::{parse_tag, Family};
use clap::Args;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod exit;
pub mod parse;
pub mod pipeline;
pub mod trace;

/// For the tools that stop on signals.
pub use crate::signals::end_signals;
pub use exit::{exit_code, parse_args, EXIT_ERROR, EXIT_NO_REPLY, EXIT_OK};
pub use parse::*;
pub(crate) use pipeline::probe_args;
pub use pipeline::{Ports, ProbeArgs};

/// Default `--rate`: probes per second over all targets. Chosen by measurement (docs/lping.md, "Probe
/// rate"): on loopback, where lping answers itself, a sweep of a /16 at this rate lost no
/// answer, and -i 1 holds for up to this many targets.
pub const DEFAULT_RATE: f64 = 2000.0;

/// Targets, fping-style.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Targets")]
pub struct TargetArgs {
    /// Hosts, addresses or CIDR blocks (e.g. 10.0.0.0/24).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Read targets from FILE ("-" for stdin): one per line, optional key=value tags, # comments.
    #[arg(short = 'f', long = "targets", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
}

impl TargetArgs {
    pub fn family(&self) -> Family {
        match (self.ipv4, self.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        }
    }
}

/// How long and how fast.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Run")]
pub struct RunArgs {
    /// Stop after N probes per target.
    #[arg(short = 'c', long, value_name = "N", value_parser = parse_count)]
    pub count: Option<u64>,
    /// Stop sending after this long (seconds, or with a unit: 500ms, 30s, 5m).
    #[arg(short = 'w', long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,
    /// Time between two probes to the same target.
    #[arg(short = 'i', long, value_name = "DURATION", default_value = "1", value_parser = parse_interval)]
    pub interval: Duration,
    /// Most probes per second, over all targets: when -i per target would send faster, each
    /// target is probed less often (said once on stderr).
    #[arg(long, value_name = "PPS", default_value_t = DEFAULT_RATE, value_parser = parse_rate)]
    pub rate: f64,
    /// How long a probe waits for its reply.
    #[arg(short = 'W', long, value_name = "DURATION", default_value = "1", value_parser = parse_interval)]
    pub timeout: Duration,
    /// Write a summary per target every DURATION, over that window (default 60s in
    /// continuous runs or with alerts; 0 turns windows off).
    #[arg(long, value_name = "DURATION", value_parser = parse_period)]
    pub summary_every: Option<Duration>,
}

/// Threshold alerts.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Alerts")]
pub struct AlertArgs {
    /// Write an alert when a window's loss exceeds PCT percent, and again when it recovers.
    #[arg(long, value_name = "PCT", value_parser = parse_percent)]
    pub alert_loss: Option<f64>,
    /// Write an alert when a window's average RTT exceeds MS milliseconds, and when it recovers.
    #[arg(long, value_name = "MS", value_parser = parse_non_negative)]
    pub alert_rtt: Option<f64>,
}

/// What is written.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Record format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// Add key=value to every record's tags (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Summaries and alerts only: no reply, timeout or unreachable records.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Also write the Prometheus exposition (as --format openmetrics) to PATH, rewritten
    /// atomically at every summary window and at the end: for node_exporter's textfile
    /// collector.
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
    /// RTT histogram bucket bounds of the exposition, ascending (seconds or with a unit:
    /// 100us,1ms,10ms,1s; default log-spaced from 50us to 10s).
    #[arg(long, value_name = "LIST", value_parser = parse_buckets)]
    pub buckets: Option<Buckets>,
}

impl OutputArgs {
    pub fn tag_map(&self) -> Tags {
        self.tags.iter().cloned().collect()
    }

    /// An exposition is kept (`--format openmetrics` or `--textfile`): it needs every
    /// per-probe record, `-q` or not.
    pub fn wants_metrics(&self) -> bool {
        self.format == Format::Openmetrics || self.textfile.is_some()
    }

    /// The record writer on standard output these flags ask for: the format, `-q`, and the
    /// exposition of `--format openmetrics` / `--textfile` (a textfile that cannot be written
    /// is an error now, not after the run).
    pub fn writer(&self) -> anyhow::Result<crate::output::RecordWriter<std::io::Stdout>> {
        use crate::output::metrics::DEFAULT_BUCKETS;
        let textfile = textfile(self.textfile.as_ref())?;
        let bounds = self
            .buckets
            .as_ref()
            .map_or_else(|| DEFAULT_BUCKETS.to_vec(), |b| b.0.clone());
        Ok(crate::output::RecordWriter::stdout(self.format)
            .quiet(self.quiet)
            .metrics(bounds, textfile))
    }
}

/// `--textfile PATH`, checked now: a file that cannot be written is a usage error before the
/// run, not a failure after it.
pub fn textfile(
    path: Option<&PathBuf>,
) -> anyhow::Result<Option<crate::output::metrics::Textfile>> {
    path.map(|p| {
        crate::output::metrics::Textfile::new(p.clone())
            .map_err(|e| anyhow::anyhow!("--textfile: cannot write {e}"))
    })
    .transpose()
}

/// Refuses `--format openmetrics` in a tool that writes no figures over time (lwatch's are
/// events): a usage error, not a run that writes nothing.
pub fn refuse_openmetrics(tool: &str, format: Format) -> anyhow::Result<()> {
    if format == Format::Openmetrics {
        anyhow::bail!(
            "--format openmetrics is for the tools that write figures over time (lping, ludp, \
             ltcp, ltwamp, lpassive, lreflect); {tool} writes json, influx or text"
        );
    }
    Ok(())
}

/// The flows of ludp and ltwamp: source ports and DSCP classes (`--flows`, `--sport`,
/// `--dscp`). A tool says more about one of them with [`help_note`].
#[derive(Debug, Clone, Args)]
pub struct FlowArgs {
    /// Number of flows, each with its own source port, probed round-robin.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=4096), help_heading = "Probe")]
    pub flows: u16,
    /// Source port of the first flow (the next flows take the next ports); ephemeral if unset.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..), help_heading = "Probe")]
    pub sport: Option<u16>,
    /// DSCP classes to probe every flow in (EF, AF41, CS1, … or 0-63; comma-separated or repeated).
    #[arg(long, value_name = "CLASS", value_delimiter = ',', value_parser = parse_dscp,
          conflicts_with = "tos", help_heading = "Probe")]
    pub dscp: Vec<u8>,
}

impl FlowArgs {
    pub fn spread(&self) -> FlowSpread {
        FlowSpread {
            flows: self.flows,
            sport_base: self.sport,
            dscp: self.dscp.clone(),
        }
    }
}

/// `arg` with `note` after its help, as a sentence of its own: for a tool's word on an
/// argument of a shared group (`#[command(mut_arg("dscp", |a| cli::help_note(a, "...")))]`).
pub fn help_note(arg: clap::Arg, note: &str) -> clap::Arg {
    let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    arg.help(format!("{help}. {note}"))
}

/// The TARGET help of the tools that probe a port (ludp, ltcp, ltwamp): how to write one,
/// and where the port comes from when it is not written.
pub fn port_targets_help(arg: clap::Arg, default: &str) -> clap::Arg {
    arg.help(format!(
        "Targets: host:port, [IPv6]:port (e.g. [fd00::2]:8080), or hosts, addresses and CIDR \
         blocks (10.0.0.0/24) that take their port from --port ({default})"
    ))
}

/// The --count help of the tools with flows: N counts per flow (and class).
pub const COUNT_PER_FLOW: &str = "With --flows (and --dscp) the count is per flow (and class): \
--flows 16 -c 100 sends 1,600";

/// Socket options shared by the probes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Socket")]
pub struct SocketArgs {
    /// TTL (IPv4) or hop limit (IPv6) of the probes.
    #[arg(short = 't', long, value_name = "TTL", value_parser = clap::value_parser!(u8).range(1..))]
    pub ttl: Option<u8>,
    /// TOS byte (IPv4) or traffic class (IPv6), decimal or hex (0xb8).
    #[arg(short = 'Q', long, value_name = "TOS", value_parser = parse_u8)]
    pub tos: Option<u8>,
    /// Send from this interface (name) or source address.
    #[arg(short = 'I', long, value_name = "IFACE|ADDR")]
    pub interface: Option<String>,
    /// Set SO_MARK on the probes (policy routing), decimal or hex.
    #[arg(short = 'm', long, value_name = "MARK", value_parser = parse_u32)]
    pub mark: Option<u32>,
}

impl SocketArgs {
    pub fn options(&self) -> SocketOptions {
        let (device, source) = match self.interface.as_deref() {
            Some(s) => match s.parse::<IpAddr>() {
                Ok(a) => (None, Some(a)),
                Err(_) => (Some(s.to_string()), None),
            },
            None => (None, None),
        };
        SocketOptions {
            ttl: self.ttl,
            tos: self.tos,
            mark: self.mark,
            device,
            source,
        }
    }
}

impl RunArgs {
    /// The engine's configuration from these flags and the alert and output groups.
    pub fn config(
        &self,
        tool: &'static str,
        alerts: &AlertArgs,
        output: &OutputArgs,
    ) -> anyhow::Result<RunConfig> {
        RunConfig {
            tool,
            count: self.count,
            duration: self.duration,
            interval: self.interval,
            rate: self.rate,
            timeout: self.timeout,
            summary_every: None,
            thresholds: Thresholds {
                loss_pct: alerts.alert_loss,
                rtt_ms: alerts.alert_rtt,
            },
            // The writer leaves per-probe records out itself; an exposition needs them all.
            quiet: output.quiet && !output.wants_metrics(),
        }
        .with_summary_every(self.summary_every)
    }
}
