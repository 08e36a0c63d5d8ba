//! `--trace`, `--trace-only` and `--trace-every` for every probing tool: the flags, and the
//! pipeline's two trace steps: before the engine (trace every flow, or only that) and after it
//! (each traced flow's `path` record with its `sent`/`lost`).

use crate::cli;
use crate::engine::Outcome;
use crate::output::RecordWriter;
use crate::probe::trace::{
    self as tracing, Followed, PathHistory, TraceConfig, TracedFlow, Tracer, DEFAULT_RATE,
    MAX_PROBES, MAX_TTL,
};
use crate::record::{Body, Path, Record, Tags};
use crate::target::Target;
use anyhow::Result;
use clap::Args;
use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Path tracing (Paris traceroute with each flow's own 5-tuple).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Trace")]
pub struct TraceArgs {
    /// Trace every flow first (Paris traceroute: the flow's own addresses, ports and protocol;
    /// only the TTL changes); a path record per flow at the end, with the flow's sent and lost.
    #[arg(long)]
    pub trace: bool,
    /// Trace every flow and stop (no probes): path records, and the number of distinct paths
    /// per target on stderr (fast ECMP path discovery).
    #[arg(long, conflicts_with_all = ["count", "duration"])]
    pub trace_only: bool,
    /// With --trace: trace every flow again every DURATION (probing pauses for each round,
    /// about one -W); when a flow's path changed, its old path with the probes sent meanwhile,
    /// then its new path.
    #[arg(long, value_name = "DURATION", requires = "trace", conflicts_with = "trace_only",
          value_parser = cli::parse_positive_duration)]
    pub trace_every: Option<Duration>,
    /// Highest TTL (hop limit) a trace probes.
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u8).range(1..=MAX_TTL as i64))]
    pub max_ttl: u8,
    /// Trace probes per TTL (a hop answering from several addresses lists them all).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(1..=MAX_PROBES as i64))]
    pub trace_probes: u8,
    /// Trace probes per second over all flows and targets: routers limit the ICMP errors they
    /// send, and a hop whose answers were dropped looks silent.
    #[arg(long, value_name = "PPS", default_value_t = DEFAULT_RATE,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub trace_rate: u32,
}

impl TraceArgs {
    /// Tracing of some kind was asked for.
    pub fn any(&self) -> bool {
        self.trace || self.trace_only
    }

    /// The trace configuration, with `timeout` (`-W`) the wait for the last answers.
    pub fn config(&self, timeout: Duration) -> TraceConfig {
        TraceConfig {
            max_ttl: self.max_ttl,
            probes: self.trace_probes,
            timeout,
            rate: self.trace_rate,
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the trace before the engine leaves to the pipeline.
pub enum First {
    /// The run ends here: `--trace-only`, or a signal during the trace. Exit status 0 when
    /// every target was reached by some flow (`--trace-only`).
    Done { all_reached: bool },
    /// Probing goes on; these flows' paths are written again, with their counts, at the end.
    Probe(Traced),
}

/// The flows traced before probing, for [`Traced::last`].
pub struct Traced {
    tool: &'static str,
    flows: Vec<TracedFlow>,
    tags: Vec<Option<Arc<Tags>>>,
    /// `--trace-every`: the prober follows the paths, and their history ends the run.
    followed: bool,
}

/// Writes a `path` record of target `target`.
fn write_path<W: Write>(
    out: &mut RecordWriter<W>,
    tool: &'static str,
    tags: &[Option<Arc<Tags>>],
    target: usize,
    path: Path,
) -> std::io::Result<()> {
    out.write(&Record {
        tool,
        ts: SystemTime::now(),
        tags: tags.get(target).cloned().flatten(),
        body: Body::Path(path),
    })
}

/// The pipeline's step before the engine when some tracing is asked for. `--trace-only`
/// traces, writes the `path` records and one line per target on stderr, and ends; `--trace`
/// traces first, and with `--trace-every` hands the paths to the prober to follow (records as
/// [`PathHistory`] says). A signal during the first trace ends the run with its paths so far,
/// no probing, and (as a signal ends any run) each target's total summary, of no probes.
pub fn first<P: Tracer, W: Write>(
    tool: &'static str,
    prober: &mut P,
    targets: &[Target],
    trace: &TraceArgs,
    timeout: Duration,
    out: &mut RecordWriter<W>,
) -> Result<First> {
    let cfg = trace.config(timeout);
    tracing::stop_on_signals()?;
    let mut traced = prober.trace_flows(targets, &cfg)?;
    let tags: Vec<_> = targets.iter().map(|t| t.tags.clone()).collect();
    let interrupted = !trace.trace_only && tracing::stopped();
    if trace.trace_only || interrupted {
        for tf in &traced {
            write_path(out, tool, &tags, tf.target, tf.path.clone())?;
        }
        if interrupted {
            for (t, target) in targets.iter().enumerate() {
                let summary = crate::stats::Stats::default().summary(
                    &target.name,
                    target.addr,
                    None,
                    "total",
                );
                out.write(&Record {
                    tool,
                    ts: SystemTime::now(),
                    tags: tags.get(t).cloned().flatten(),
                    body: Body::Summary(summary),
                })?;
            }
            out.end_window()?;
        }
        let mut all_reached = true;
        for (t, target) in targets.iter().enumerate() {
            let flows: Vec<&TracedFlow> = traced.iter().filter(|f| f.target == t).collect();
            let paths: HashSet<_> = flows.iter().map(|f| f.result.key()).collect();
            let reached = flows.iter().filter(|f| f.result.reached).count();
            all_reached &= reached > 0;
            eprintln!(
                "{tool}: {}: {} over {}, {reached} reached the destination",
                target.name,
                plural(paths.len(), "distinct path", "distinct paths"),
                plural(flows.len(), "flow", "flows"),
            );
        }
        return Ok(First::Done { all_reached });
    }
    let followed = trace.trace_every.is_some();
    if let Some(every) = trace.trace_every {
        let (history, records) = PathHistory::start(std::mem::take(&mut traced));
        for (t, path) in records {
            write_path(out, tool, &tags, t, path)?;
        }
        *prober.followed() = Some(Followed {
            targets: targets.to_vec(),
            cfg,
            every,
            history,
        });
    }
    Ok(First::Probe(Traced {
        tool,
        flows: traced,
        tags,
        followed,
    }))
}

impl Traced {
    /// The pipeline's step after the engine: the followed paths' last records
    /// (`--trace-every`), then each flow traced first with its `sent`/`lost`.
    pub fn last<P: Tracer, W: Write>(
        self,
        prober: &mut P,
        outcome: &Outcome,
        out: &mut RecordWriter<W>,
    ) -> Result<()> {
        if self.followed {
            let records = prober
                .followed()
                .as_ref()
                .map(|f| f.history.finish(&outcome.streams))
                .unwrap_or_default();
            for (t, path) in records {
                write_path(out, self.tool, &self.tags, t, path)?;
            }
        }
        for tf in &self.flows {
            let now = tracing::flow_totals(&outcome.streams, tf.target, tf.path.sport);
            let path = tracing::history::with_counts(&tf.path, Default::default(), now);
            write_path(out, self.tool, &self.tags, tf.target, path)?;
        }
        Ok(())
    }
}
