//! Argument groups shared by the probing tools, value parsers, and the one way every binary
//! turns a result into an exit status.

use crate::alert::Thresholds;
use crate::engine::RunConfig;
use crate::net::socket::SocketOptions;
use crate::output::Format;
use crate::probe::flows::FlowSpread;
use crate::record::Tags;
use crate::target::{parse_tag, Family};
use clap::Args;

pub mod trace;

/// For the tools that stop on signals.
pub use crate::signals::end_signals;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit status: every target answered.
pub const EXIT_OK: u8 = 0;
/// Exit status: some target never answered.
pub const EXIT_NO_REPLY: u8 = 1;
/// Exit status: usage or system error.
pub const EXIT_ERROR: u8 = 2;

/// Default `--rate`: probes per second over all targets. Chosen by measurement (README, "Probe
/// rate"): on loopback, where lping answers itself, a sweep of a /16 at this rate lost no
/// answer, and -i 1 holds for up to this many targets.
pub const DEFAULT_RATE: f64 = 2000.0;

/// Highest `--rate`: beyond what one socket takes in.
pub const MAX_RATE: f64 = 1_000_000.0;

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

/// `--buckets`: bounds in seconds, strictly ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets(pub Vec<f64>);

/// Parses `--buckets`: durations (`50us,1ms,0.5,2s`), strictly ascending.
pub fn parse_buckets(s: &str) -> Result<Buckets, String> {
    let mut bounds: Vec<f64> = Vec::new();
    for part in s.split(',').map(str::trim) {
        let secs = parse_positive_duration(part)
            .map_err(|e| format!("bucket '{part}': {e}"))?
            .as_secs_f64();
        if bounds.last().is_some_and(|last| *last >= secs) {
            return Err(format!(
                "buckets must be strictly ascending ('{part}' is not above the one before)"
            ));
        }
        bounds.push(secs);
    }
    Ok(Buckets(bounds))
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

pub use crate::engine::MAX_DURATION;

/// Shortest interval and timeout: the event loop schedules with millisecond resolution.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// How a probing tool's targets name ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// Addresses only (ICMP): a target is a host, an address or a CIDR, never split at `:`.
    None,
    /// `host[:port]` and `[v6]:port`; a target without a port takes this default, and is an
    /// error when there is none.
    Default(Option<u16>),
}

/// The argument groups every probing tool shares.
#[derive(Debug, Clone, Copy)]
pub struct ProbeArgs<'a> {
    pub targets: &'a TargetArgs,
    pub socket: &'a SocketArgs,
    pub run: &'a RunArgs,
    pub alerts: &'a AlertArgs,
    pub output: &'a OutputArgs,
}

/// Targets whose names could not be resolved (said on stderr; the others were probed): the
/// run's exit status is then 2, as fping's.
static UNRESOLVED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Expands the targets (positional, CIDRs, `--targets FILE`) and resolves them once, with the
/// tags of `--tag` and of the targets file. A name that does not resolve is said on stderr
/// and left out (the exit status becomes 2); every other problem is an error.
pub fn resolve_targets(
    tool: &str,
    targets: &TargetArgs,
    socket: &SocketArgs,
    output: &OutputArgs,
    ports: Ports,
) -> anyhow::Result<Vec<crate::target::Target>> {
    let specs = crate::target::expand(&targets.targets, targets.file.as_deref())?;
    let tags = output.tag_map();
    let mut resolved = Vec::with_capacity(specs.len());
    let mut unresolved = Vec::new();
    for spec in specs {
        let one = match ports {
            Ports::None => crate::target::resolve(vec![spec], targets.family(), &tags),
            Ports::Default(port) => {
                crate::target::resolve_with_port(vec![spec], targets.family(), &tags, port)
            }
        };
        match one {
            Ok(t) => resolved.extend(t),
            // One unknown name among many: said, and the others are probed (as fping does).
            Err(e) if e.downcast_ref::<crate::target::NotFound>().is_some() => {
                unresolved.push(e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    if resolved.is_empty() && !unresolved.is_empty() {
        anyhow::bail!("{}", unresolved.join("; "));
    }
    for e in &unresolved {
        eprintln!("{tool}: {e}");
    }
    UNRESOLVED.store(unresolved.len(), std::sync::atomic::Ordering::Relaxed);
    for name in crate::target::drop_duplicates(&mut resolved) {
        eprintln!("{tool}: {name} is given more than once: probed once");
    }
    let options = socket.options();
    crate::target::zone_link_locals(&mut resolved, options.device.as_deref())?;
    crate::target::check_source_family(&resolved, options.source)?;
    Ok(resolved)
}

/// A probing tool from arguments to exit status: resolve the targets, open the prober over
/// them (`open` may also refuse them), then [`run_probe`].
pub fn probe<P: crate::probe::Prober>(
    tool: &'static str,
    args: ProbeArgs<'_>,
    ports: Ports,
    open: impl FnOnce(&[crate::target::Target]) -> anyhow::Result<P>,
) -> anyhow::Result<ExitCode> {
    let targets = resolve_targets(tool, args.targets, args.socket, args.output, ports)?;
    let mut prober = open(&targets)?;
    run_probe(
        tool,
        &mut prober,
        targets,
        args.run,
        args.alerts,
        args.output,
    )
}

/// The common end of every probing tool: give up privileges (the sockets are open), run the
/// engine over the targets, report dropped datagrams, and turn the outcome into the exit status
/// ping and fping use.
pub fn run_probe<P: crate::probe::Prober>(
    tool: &'static str,
    prober: &mut P,
    targets: Vec<crate::target::Target>,
    run: &RunArgs,
    alerts: &AlertArgs,
    output: &OutputArgs,
) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    crate::net::privilege::drop_privileges().context("cannot drop privileges")?;
    let cfg = run.config(tool, alerts, output)?;
    say_if_stretched(tool, &cfg, targets.len());
    let mut out = output.writer()?;
    let outcome = crate::engine::Engine::new(cfg, targets, &mut out).run(prober)?;
    report_outcome(tool, &outcome);
    Ok(ExitCode::from(if outcome.all_answered {
        EXIT_OK
    } else {
        EXIT_NO_REPLY
    }))
}

/// A duration as ping takes it (`0.2` seconds) or with a unit (`200ms`, `30s`, `5m`, `1h`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{s}' is not a valid number of seconds"))?,
        Err(_) => humantime::parse_duration(s).map_err(|_| {
            format!("'{s}' is not a duration: use seconds (0.2) or a unit (200ms, 30s, 5m)")
        })?,
    };
    if d > MAX_DURATION {
        return Err(format!("'{s}' is too long: at most 365 days"));
    }
    Ok(d)
}

pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be greater than 0".into());
    }
    Ok(d)
}

pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < MIN_INTERVAL {
        return Err("must be at least 1ms".into());
    }
    Ok(d)
}

/// What a run's end says on stderr besides the records: datagrams dropped as not answers,
/// probes that could not keep the pace, answers this host dropped.
pub fn report_outcome(tool: &str, outcome: &crate::engine::Outcome) {
    for d in &outcome.dropped_local {
        eprintln!(
            "{tool}: the kernel dropped {} datagrams on {}, its receive queue full: answers \
             among them were lost on this host, not on the network (the summaries count them \
             as dropped_local); a lower --rate avoids it",
            d.count, d.socket
        );
    }
    if outcome.malformed > 0 {
        eprintln!(
            "{tool}: dropped {} datagrams that were not answers to its probes",
            outcome.malformed
        );
    }
    if outcome.refused > 0 {
        eprintln!(
            "{tool}: the reflector refused {} probes (its rate limit): counted lost, and as \
             'refused' apart from the network's loss; raise lreflect's --rate-limit above the \
             probes per second of each source (see the README)",
            outcome.refused
        );
    }
    if outcome.skipped_busy > 0 {
        eprintln!(
            "{tool}: {} probes not sent: the previous probe of their flow was still in flight \
             (a handshake outlasted -i × --flows; each probe sent had its whole -W); a longer \
             -i or more --flows sends them all",
            outcome.skipped_busy
        );
    }
}

/// A value that means nothing when empty (an interface pattern, a command).
pub fn parse_non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s.to_string())
}

/// A reporting period: 0 (off) or at least 1 ms (a shorter one would be all the loop does).
pub fn parse_period(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if !d.is_zero() && d < MIN_INTERVAL {
        return Err("must be 0 (off) or at least 1ms".into());
    }
    Ok(d)
}

/// Probes per second: a positive number up to [`MAX_RATE`].
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= MAX_RATE => Ok(v),
        Ok(v) if v.is_finite() && v > MAX_RATE => Err(format!("{s} is too high: at most 1000000")),
        _ => Err(format!(
            "'{s}' is not a positive number of probes per second"
        )),
    }
}

/// Says once, on stderr, when `-i` per target cannot hold at `--rate` for this many targets:
/// the schedule stretches (every target is probed less often), it never bursts.
pub fn say_if_stretched(tool: &str, cfg: &RunConfig, targets: usize) {
    let paced = cfg.paced_interval(targets);
    if paced > cfg.interval {
        eprintln!(
            "{tool}: {targets} targets every {} would be more than --rate {} probes/s: each \
             target is probed every {} instead",
            humantime::format_duration(cfg.interval),
            cfg.rate,
            humantime::format_duration(round_to_ms(paced)),
        );
    }
}

/// A duration to the millisecond, for messages.
fn round_to_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_secs_f64().mul_add(1000.0, 0.5) as u64)
}

pub fn parse_count(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v = parse_non_negative(s)?;
    if v > 100.0 {
        return Err(format!("{v} is not a percentage between 0 and 100"));
    }
    Ok(v)
}

pub fn parse_non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a non-negative number")),
    }
}

fn parse_int(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("'{s}' is not a number (decimal or 0x hex)"))
}

/// A byte in decimal or hex (`-Q 0x10`, which clap's integer parser rejects).
pub fn parse_u8(s: &str) -> Result<u8, String> {
    let v = parse_int(s)?;
    u8::try_from(v).map_err(|_| format!("{s} is out of range 0-255"))
}

pub fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_int(s)?;
    u32::try_from(v).map_err(|_| format!("{s} is out of range 0-4294967295"))
}

/// A DSCP class by name (EF, AF41, CS1, LE, VA, BE/DF/DEFAULT; any case) or number 0-63.
pub fn parse_dscp(s: &str) -> Result<u8, String> {
    crate::dscp::parse(s)
}

/// Parses arguments; a usage error is one line on stderr and exit status 2 (help and
/// version go to stdout with status 0, as usual).
pub fn parse_args<A: clap::Parser>(tool: &str) -> Result<A, ExitCode> {
    match A::try_parse() {
        Ok(a) => Ok(a),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "{tool}: {}",
                one_line_usage_error(tool, &e.render().to_string())
            );
            Err(ExitCode::from(EXIT_ERROR))
        }
    }
}

/// Folds clap's multi-line error into one line, keeping the parts that help: the possible
/// values, the "similar argument" tip, and the arguments a first line ending in ':' lists
/// ("the following required arguments were not provided:").
fn one_line_usage_error(tool: &str, text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid arguments");
    let mut msg = first.strip_prefix("error: ").unwrap_or(first).to_string();
    let mut listing = msg.ends_with(':');
    for line in lines {
        if listing && !line.starts_with("Usage:") && !line.starts_with("For more") {
            msg.push_str(if msg.ends_with(':') { " " } else { ", " });
            msg.push_str(line);
            continue;
        }
        listing = false;
        if line.starts_with("[possible values:") {
            msg.push(' ');
            msg.push_str(line);
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            // clap's "to pass '-1' as a value, use '-- -1'" is wrong for an option's value
            // (`-i -- -1` is "a value is required").
            if tip.starts_with("to pass '") {
                continue;
            }
            msg.push_str("; ");
            msg.push_str(tip);
        }
    }
    let negative = msg
        .strip_prefix("unexpected argument '")
        .and_then(|rest| rest.split('\'').next())
        .is_some_and(|arg| arg.starts_with('-') && arg.parse::<f64>().is_ok());
    if negative {
        msg.push_str(": negative values are not accepted");
    }
    format!("{msg} (see '{tool} --help')")
}

/// Turns a run's result into the exit status: errors are one `tool: cause: cause` line and
/// status 2, except a closed stdout (`| head -1`), which ends quietly with status 0.
pub fn exit_code(tool: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        // Some targets could not be resolved: the run probed the others, and says so.
        Ok(_) if UNRESOLVED.load(std::sync::atomic::Ordering::Relaxed) > 0 => {
            ExitCode::from(EXIT_ERROR)
        }
        Ok(code) => code,
        Err(err) => {
            let broken_pipe = err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("{tool}: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_units() {
        assert_eq!(parse_duration("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1"), Ok(Duration::from_secs(1)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_duration("1e19").unwrap_err().contains("too long"));
        assert!(parse_duration("366d").is_err());
        assert_eq!(parse_period("0"), Ok(Duration::ZERO));
        assert_eq!(parse_period("1ms"), Ok(Duration::from_millis(1)));
        assert!(parse_period("1ns").unwrap_err().contains("at least 1ms"));
        assert_eq!(parse_interval("0.5ms"), Err("must be at least 1ms".into()));
        assert_eq!(parse_count("0"), Err("must be at least 1".into()));
        assert_eq!(parse_rate("2000"), Ok(2000.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert!(parse_rate("0")
            .unwrap_err()
            .contains("not a positive number"));
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("inf").is_err());
        assert!(parse_rate("2e6").unwrap_err().contains("too high"));
    }

    #[test]
    fn usage_errors_fold_into_one_line() {
        let text = "error: invalid value 'xml' for '--format <FORMAT>'\n  [possible values: json, influx]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line_usage_error("lping", text),
            "invalid value 'xml' for '--format <FORMAT>' [possible values: json, influx] (see 'lping --help')"
        );
        let text = "error: unexpected argument '--cout' found\n\n  tip: a similar argument exists: '--count'\n\nUsage: lping\n";
        assert_eq!(
            one_line_usage_error("lping", text),
            "unexpected argument '--cout' found; a similar argument exists: '--count' (see 'lping --help')"
        );
        // clap's advice for a negative value is wrong for an option's value: replaced.
        let text = "error: unexpected argument '-1' found\n\n  tip: to pass '-1' as a value, use '-- -1'\n\nUsage: lping\n";
        assert_eq!(
            one_line_usage_error("lping", text),
            "unexpected argument '-1' found: negative values are not accepted (see 'lping --help')"
        );
        let text = "error: the following required arguments were not provided:\n  --twamp <ADDR:PORT>\n  --x <X>\n\nUsage: lreflect --twamp <ADDR:PORT> --stateless\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line_usage_error("lreflect", text),
            "the following required arguments were not provided: --twamp <ADDR:PORT>, --x <X> (see 'lreflect --help')"
        );
    }

    #[test]
    fn tos_takes_hex() {
        assert_eq!(parse_u8("0x10"), Ok(16));
        assert_eq!(parse_u8("184"), Ok(184));
        assert!(parse_u8("256").is_err());
        assert!(parse_u8("0xzz").is_err());
        assert_eq!(parse_u32("0xff00"), Ok(0xff00));
    }

    #[test]
    fn dscp_names_follow_rfc_4594() {
        assert_eq!(parse_dscp("EF"), Ok(46));
        assert_eq!(parse_dscp("af41"), Ok(34));
        assert_eq!(parse_dscp("AF11"), Ok(10));
        assert_eq!(parse_dscp("CS1"), Ok(8));
        assert_eq!(parse_dscp("cs7"), Ok(56));
        assert_eq!(parse_dscp("LE"), Ok(1));
        assert_eq!(parse_dscp("0x2e"), Ok(46));
        assert_eq!(parse_dscp("63"), Ok(63));
        assert!(parse_dscp("64").is_err());
        assert!(parse_dscp("AF44").is_err());
        assert!(parse_dscp("CS8").is_err());
        assert!(parse_dscp("gold").unwrap_err().contains("not a DSCP class"));
    }

    #[test]
    fn percent_bounds() {
        assert_eq!(parse_percent("12.5"), Ok(12.5));
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("nan").is_err());
    }
}
