//! The one way a probing tool runs (lping, ludp, ltcp, ltwamp): arguments → targets → prober →
//! optional trace → engine → outcome → exit status. A tool brings its own flags and opens its
//! prober; everything else is here, once.

use super::trace::{self, TraceArgs};
use super::{AlertArgs, OutputArgs, RunArgs, SocketArgs, TargetArgs, EXIT_NO_REPLY, EXIT_OK};
use crate::engine::{Engine, Outcome, RunConfig};
use crate::probe::trace::Tracer;
use crate::target::Target;
use anyhow::{Context, Result};
use std::process::ExitCode;
use std::time::Duration;

/// Runs a probing tool: resolves its targets, opens its prober over them (`open` may also
/// refuse them, or set their ports: ltwamp --control learns them from the server), gives up privileges (the sockets are open), traces first when `--trace` or
/// `--trace-only` asks, runs the engine, says on stderr what the records cannot, and turns the
/// outcome into the exit status ping and fping use.
pub fn run<P: Tracer>(
    tool: &'static str,
    args: ProbeArgs<'_>,
    ports: Ports,
    open: impl FnOnce(&mut [Target]) -> Result<P>,
) -> Result<ExitCode> {
    let mut targets = resolve_targets(tool, args.targets, args.socket, args.output, ports)?;
    let mut prober = open(&mut targets)?;
    crate::net::privilege::drop_privileges().context("cannot drop privileges")?;
    let cfg = args.run.config(tool, args.alerts, args.output)?;
    let mut out = args.output.writer()?;
    let traced = if args.trace.any() {
        match trace::first(
            tool,
            &mut prober,
            &targets,
            args.trace,
            cfg.timeout,
            &mut out,
        )? {
            trace::First::Done { all_reached } => return Ok(status(all_reached)),
            trace::First::Probe(traced) => Some(traced),
        }
    } else {
        None
    };
    say_if_stretched(tool, &cfg, targets.len());
    let outcome = Engine::new(cfg, targets, &mut out).run(&mut prober)?;
    report_outcome(tool, &outcome);
    if let Some(traced) = traced {
        traced.last(&mut prober, &outcome, &mut out)?;
    }
    Ok(status(outcome.all_answered))
}

/// The exit status of a run that ended: 0 when every target answered, 1 when some never did.
fn status(all_answered: bool) -> ExitCode {
    ExitCode::from(if all_answered { EXIT_OK } else { EXIT_NO_REPLY })
}

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
    pub trace: &'a TraceArgs,
}

/// The [`ProbeArgs`] of a tool's arguments, whose fields of the shared groups have their
/// groups' names (`targets`, `socket`, `run`, `alerts`, `output`, `trace`).
macro_rules! probe_args {
    ($args:expr) => {
        $crate::cli::ProbeArgs {
            targets: &$args.targets,
            socket: &$args.socket,
            run: &$args.run,
            alerts: &$args.alerts,
            output: &$args.output,
            trace: &$args.trace,
        }
    };
}
pub(crate) use probe_args;

/// Targets whose names could not be resolved (said on stderr; the others were probed): the
/// run's exit status is then 2, as fping's.
pub(super) static UNRESOLVED: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Expands the targets (positional, CIDRs, `--targets FILE`) and resolves them once, with the
/// tags of `--tag` and of the targets file. A name that does not resolve is said on stderr
/// and left out (the exit status becomes 2); every other problem is an error.
pub fn resolve_targets(
    tool: &str,
    targets: &TargetArgs,
    socket: &SocketArgs,
    output: &OutputArgs,
    ports: Ports,
) -> Result<Vec<Target>> {
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

/// What a run's end says on stderr besides the records: datagrams dropped as not answers,
/// probes that could not keep the pace, answers this host dropped.
pub fn report_outcome(tool: &str, outcome: &Outcome) {
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
             probes per second of each source (see docs/lreflect.md)",
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
