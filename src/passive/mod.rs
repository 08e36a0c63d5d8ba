//! `lpassive`: interface counters sampled at an interval, from one netlink dump per round,
//! with no probe traffic: deltas, rates, link state, alerts and per-interface totals.
//!
//! - [`select`]: which interfaces (names, globs, loopback or not);
//! - [`counters`]: deltas, resets, rates and totals;
//! - [`link`]: the up/down judgment (admin, carrier, `--rx-threshold`);
//! - [`monitor`]: interfaces tracked by ifindex across dumps, turned into records;
//! - this module: the arguments, the reading of the counters, and the loop (deadlines,
//!   signals, the writer).
#![forbid(unsafe_code)]

pub mod counters;
pub mod link;
pub mod monitor;
pub mod select;

use crate::cli::{
    parse_count, parse_interval, parse_non_negative, parse_positive_duration, OutputArgs,
};
use crate::netlink::parse::{Counters, Link};
use crate::netlink::{LinkEvents, RouteSocket};
use crate::output::RecordWriter;
use crate::record::{Body, Record, Tags};
use anyhow::{Context, Result};
use clap::Parser;
use mio::{Events, Poll, Token};
use monitor::{Config, Monitor};
use select::Selection;
use signal_hook_mio::v1_0::Signals;
use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const TOOL: &str = "lpassive";

const EXAMPLES: &str = "\
Examples:
  lpassive
      every interface but lo, a sample each second
  lpassive -c 10 -i 0.5 eth0 'veth*'
      eth0 and the veths, ten samples half a second apart
  lpassive -q -w 1h --all
      one iface_summary per interface after an hour
  lpassive --alert-drops 100 --alert-errors 1 -i 10s |
    jq -c 'select(.type != \"sample\")'
      drop and error alerts, link changes
  lpassive --rx-threshold 10000 span0
      a receive-only tap: up only while traffic comes in
  lpassive --format influx --tag host=$(hostname) |
    curl --data-binary @- 'http://influx:8086/write?db=net'
      every second's counters into InfluxDB
  lpassive -q -i 15s \\
    --textfile /var/lib/prometheus/node-exporter/lpassive.prom
      the counters and link state for node_exporter, rewritten every 15 seconds

Records: sample (per interface and interval: counter deltas, rates, oper, carrier, mtu,
speed_mbps), link (event new, del, rename, up, down with a reason), alert, and at the end one
iface_summary per interface (totals, average and peak rates).

Exit status: 0 the run ended (count, duration or a signal), 2 usage or system error (bad flag, no
interface of that name).";

/// Command-line arguments of `lpassive`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lpassive",
    version,
    about = "Interface counters sampled at an interval: deltas, rates, link state",
    long_about = "Samples interface counters at an interval, with no probe traffic: every round is \
one netlink RTM_GETLINK dump that reads the 64-bit counters (IFLA_STATS64) of every interface at \
once. Writes one 'sample' record per interface and interval (the deltas and rates), 'link' \
records when an interface appears, goes, is renamed or goes up or down, 'alert' records, and one \
'iface_summary' per interface at the end. Interfaces are tracked by index, so a rename keeps \
their history; a counter that goes backwards (interface re-created, driver reset) restarts the \
baseline and marks the sample with \"reset\":true instead of giving a wrapped-around rate.",
    after_help = EXAMPLES,
    mut_arg("quiet", |a| a.help("Summaries, link records and alerts only: no sample records.")),
    mut_arg("textfile", |a| a.help("Also write the Prometheus exposition (as --format \
openmetrics) to PATH, rewritten atomically after every sample round and at the end: for \
node_exporter's textfile collector.")),
    mut_arg("buckets", |a| a.hide(true))
)]
pub struct Args {
    /// Interfaces to watch: names or shell glob patterns ('veth*'). Default: every interface
    /// but loopback, including those that appear later.
    #[arg(value_name = "IFACE")]
    pub ifaces: Vec<String>,
    /// With no IFACE: loopback interfaces too.
    #[arg(long)]
    pub all: bool,
    /// Stop after N samples (N+1 counter readings).
    #[arg(short = 'c', long, value_name = "N", value_parser = parse_count, help_heading = "Run")]
    pub count: Option<u64>,
    /// Stop after this long (seconds, or with a unit: 500ms, 30s, 5m).
    #[arg(short = 'w', long, value_name = "DURATION", value_parser = parse_positive_duration,
          help_heading = "Run")]
    pub duration: Option<Duration>,
    /// Time between two readings of the counters.
    #[arg(short = 'i', long, value_name = "DURATION", default_value = "1",
          value_parser = parse_interval, help_heading = "Run")]
    pub interval: Duration,
    /// Count a link as up only when it also received more than BYTES in the interval (for
    /// receive-only taps and mirror ports, whose carrier says nothing about the traffic).
    #[arg(long, value_name = "BYTES", help_heading = "Link state")]
    pub rx_threshold: Option<u64>,
    /// Alert when an interface's errors (rx + tx) per second exceed PPS, and when they recover.
    #[arg(long, value_name = "PPS", value_parser = parse_non_negative, help_heading = "Alerts")]
    pub alert_errors: Option<f64>,
    /// Alert when an interface's drops (rx + tx dropped, rx missed) per second exceed PPS.
    #[arg(long, value_name = "PPS", value_parser = parse_non_negative, help_heading = "Alerts")]
    pub alert_drops: Option<f64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The link speed the driver reports in sysfs, in Mbit/s (absent for virtual or down links).
fn sysfs_speed(ifname: &str) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{ifname}/speed")).ok()?;
    s.trim()
        .parse::<i64>()
        .ok()
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
}

/// Reads every interface once per round. A full `RTM_GETLINK` dump (names, state and
/// counters) is taken first and whenever a link notification says something changed; other
/// rounds take an `RTM_GETSTATS` dump of the counters alone, which costs the kernel a fraction
/// of the full dump, and lay it over the last full one. Any doubt (an interface in one dump
/// and not the other, lost notifications) falls back to the full dump.
struct Reader {
    sock: RouteSocket,
    events: LinkEvents,
    links: Vec<Link>,
    /// Position of each ifindex in `links`.
    at: HashMap<u32, usize>,
    stats: Vec<(u32, Counters)>,
}

impl Reader {
    fn open() -> Result<Reader> {
        Ok(Reader {
            // Subscribed before the first dump, so no change falls between the two.
            events: LinkEvents::subscribe()?,
            sock: RouteSocket::open()?,
            links: Vec::new(),
            at: HashMap::new(),
            stats: Vec::new(),
        })
    }

    fn read(&mut self) -> Result<&[Link]> {
        let changed = self.events.changed()?;
        if changed || self.links.is_empty() || !self.read_counters()? {
            self.sock.dump_links(&mut self.links)?;
            self.at = self
                .links
                .iter()
                .enumerate()
                .map(|(i, l)| (l.index, i))
                .collect();
        }
        Ok(&self.links)
    }

    /// Lays fresh counters over the last full dump; `false` when the interfaces differ.
    fn read_counters(&mut self) -> Result<bool> {
        self.sock.dump_stats(&mut self.stats)?;
        if self.stats.len() != self.links.len() {
            return Ok(false);
        }
        for (index, counters) in &self.stats {
            match self.at.get(index) {
                Some(&i) => self.links[i].counters = Some(*counters),
                None => return Ok(false),
            }
        }
        Ok(true)
    }
}

const SIGNAL_TOKEN: Token = Token(0);

/// Runs lpassive until the count or duration is reached, or a signal comes.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.output.buckets.is_some() {
        anyhow::bail!("--buckets: lpassive writes counters and gauges, no histograms");
    }
    let mut out = args.output.writer()?;
    let selection = Selection::new(&args.ifaces, args.all)?;
    let mut poll = Poll::new().context("cannot create the event loop")?;
    let mut signals =
        Signals::new(crate::cli::end_signals()).context("cannot install signal handlers")?;
    poll.registry()
        .register(&mut signals, SIGNAL_TOKEN, mio::Interest::READABLE)?;
    let mut reader = Reader::open()?;
    let links = reader.read()?;
    let start = Instant::now();
    selection.check_names(links)?;

    let tags: Option<Arc<Tags>> =
        (!args.output.tags.is_empty()).then(|| Arc::new(args.output.tag_map()));
    // Every round's records, then the exposition of the whole run so far (`--format
    // openmetrics`, `--textfile`).
    let mut emit = |ts: SystemTime, bodies: &mut Vec<Body>, round: bool| -> Result<()> {
        for body in bodies.drain(..) {
            write(&mut out, &tags, ts, body)?;
        }
        if round {
            out.end_window()?;
        }
        Ok(())
    };
    let mut monitor = Monitor::new(
        Config {
            selection,
            rx_threshold: args.rx_threshold,
            alert_errors: args.alert_errors,
            alert_drops: args.alert_drops,
            // The exposition counts the samples -q leaves out.
            quiet: args.output.quiet && !args.output.wants_metrics(),
            window: humantime::format_duration(args.interval).to_string(),
        },
        sysfs_speed,
    );
    let mut bodies = Vec::new();
    monitor.observe(links, start, &mut bodies);
    emit(SystemTime::now(), &mut bodies, false)?;

    // Reading k is due at start + k × interval, so the schedule never drifts.
    let mut k: u32 = 1;
    let mut samples: u64 = 0;
    let mut events = Events::with_capacity(8);
    loop {
        if args.count.is_some_and(|n| samples >= n) {
            break;
        }
        let due = start + args.interval.saturating_mul(k);
        if args.duration.is_some_and(|d| due > start + d) {
            break;
        }
        let now = Instant::now();
        if now < due {
            match poll.poll(&mut events, Some(due - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("poll failed"),
            }
            if events.iter().any(|e| e.token() == SIGNAL_TOKEN) && signals.pending().count() > 0 {
                break;
            }
            continue;
        }
        let links = reader.read()?;
        let wall = SystemTime::now();
        monitor.observe(links, Instant::now(), &mut bodies);
        emit(wall, &mut bodies, true)?;
        samples += 1;
        // A late round (a stalled machine) skips the readings it missed rather than bunching.
        k += 1;
        while start + args.interval.saturating_mul(k) < Instant::now() {
            k += 1;
        }
    }
    let mut summaries = monitor.summaries();
    emit(SystemTime::now(), &mut summaries, true)?;
    Ok(ExitCode::SUCCESS)
}

fn write<W: Write>(
    out: &mut RecordWriter<W>,
    tags: &Option<Arc<Tags>>,
    ts: SystemTime,
    body: Body,
) -> std::io::Result<()> {
    out.write(&Record {
        tool: TOOL,
        ts,
        tags: tags.clone(),
        body,
    })
}
