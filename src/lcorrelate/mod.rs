//! `lcorrelate`: per-flow paths and loss, from many hosts, into per-link suspicion.
//!
//! - [`input`]: reading `path` records (files, stdin, gzip), aggregation per route, aliases;
//!   [`line`]: one line's members, scanned without serde when the line is plain.
//! - [`graph`]: links, the petgraph graph, and groups of inseparable links.
//! - [`estimate`]: the likelihood model (default), 007 voting, difference of means;
//!   [`fit`]: the model's state and steps; [`flock`]: its search for the fault set.
//! - [`topology`]: routers from interface addresses, the answers' paths; [`silent`]: silent
//!   hops filled from the same flow's other traces.
//! - [`report`]: ranking into `link` records, Graphviz output.
//! - [`seqs`]: many short id sequences in one flat list; [`sets`]: union-find.
//! - [`sim`]: the simulator behind the benchmark; [`evaluation`]: its scoring of methods.
#![forbid(unsafe_code)]

pub mod answers;
pub mod estimate;
pub mod evaluation;
pub mod fit;
pub mod flock;
pub mod graph;
pub mod input;
pub mod line;
pub mod report;
pub mod seqs;
pub mod sets;
pub mod silent;
pub mod sim;
pub mod topology;

use crate::cli::EXIT_OK;
use crate::output::{Format as RecordFormat, RecordWriter};
use crate::record::{Body, Record};
use anyhow::Result;
use clap::Parser;
use estimate::Params;
use report::Method;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

const EXAMPLES: &str = "\
Examples:
  cat */ludp.jsonl | lcorrelate
      mixed logs: only path records are read
  lcorrelate --top 5 a.jsonl b.jsonl.gz
      the five best suspects
  lcorrelate --alias routers.txt --format dot paths.jsonl |
    dot -Tsvg > links.svg
      one node per router, links colored by score
  lcorrelate --format text paths.jsonl
      the ranked table, for people
  lcorrelate --method diff paths.jsonl | jq -c 'select(.verdict == \"faulty\")'

Alias file: one router per line, its name then its interface IP addresses, # comments
(anything else is an error naming the file and line):
  spine1 10.0.1.1 10.0.2.1 fd00:1::1

Exit status: 0 no link faulty, 1 some link faulty, 2 usage or input error: no path records \
read at all, or (--strict) a malformed line.";

/// The maps of reading and of building the problem: every record, link and observation is
/// hashed several times, and foldhash is several times faster than the standard SipHash.
/// Seeded per process like std's, so no order is relied on that was not before.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Exit status: some link is faulty.
pub const EXIT_FAULTY: u8 = 1;

/// How lcorrelate writes its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One `link` record per line.
    Json,
    /// A Graphviz digraph, links colored by score.
    Dot,
    /// A ranked table for people: rank, verdict, estimated loss, the link, its figures.
    Text,
}

/// Command-line arguments of `lcorrelate`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lcorrelate",
    version,
    about = "Find the lossy link from per-flow paths and loss collected on many hosts",
    long_about = "Reads path records (a traced flow with the probes it sent and lost) from files \
or stdin, builds the link graph, and writes one link record per link, best suspect first, with \
a score, an estimated loss rate, the difference-of-means suspicion and a verdict. Other record \
types are ignored, so mixed logs work; gzip files are read as they are. Links that every flow \
crosses together are one group: no measurement can tell them apart.",
    after_help = EXAMPLES
)]
pub struct Args {
    /// Files of JSON lines, plain or gzip; stdin when none, or "-".
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,
    /// Ranking method: flock (likelihood model), vote (007, clean probes voting against),
    /// diff (difference of means). With any method a link is faulty only if its loss_est is
    /// above --min-loss.
    #[arg(long, value_enum, default_value = "flock")]
    pub method: Method,
    /// Map interface addresses to router names: lines of "ROUTER ADDR [ADDR...]", each ADDR
    /// an IP address.
    #[arg(long, value_name = "FILE")]
    pub alias: Option<PathBuf>,
    /// Write only the N best suspects.
    #[arg(long, value_name = "N", value_parser = parse_top)]
    pub top: Option<usize>,
    /// Leave out links crossed by fewer than N probes.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub min_samples: u64,
    /// Loss a healthy link may have, in percent, at least 0 and below 100; a faulty link loses
    /// more.
    #[arg(long, value_name = "PCT", default_value_t = 0.05, value_parser = parse_pct)]
    pub min_loss: f64,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: Format,
    /// A malformed line (or a gzip file cut short) is an error (exit 2) instead of being
    /// reported and skipped.
    #[arg(long)]
    pub strict: bool,
}

/// A percentage in [0, 100): 0 lets a healthy link lose nothing; at 100 no link could be
/// faulty.
/// `--top N`: at least 1 (0 would write nothing and still exit 1 when a link is faulty).
fn parse_top(s: &str) -> Result<usize, String> {
    crate::cli::parse_count(s).and_then(|n| usize::try_from(n).map_err(|e| e.to_string()))
}

fn parse_pct(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..100.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a percentage in [0, 100): at least 0 and below 100"
        )),
    }
}

impl Args {
    pub fn params(&self) -> Params {
        Params {
            min_loss: self.min_loss / 100.0,
            min_samples: self.min_samples,
            ..Params::default()
        }
    }
}

/// Runs lcorrelate: 0 when no link is faulty, 1 when some is.
pub fn run(args: Args) -> Result<ExitCode> {
    let aliases = match &args.alias {
        Some(path) => input::read_aliases(path)?,
        None => input::Aliases::new(),
    };
    let mut agg = input::Aggregator::new(aliases);
    let mut report = input::ReadReport::default();
    let files = if args.files.is_empty() {
        vec!["-".to_string()]
    } else {
        args.files.clone()
    };
    let mut stderr = std::io::stderr();
    if args.files.is_empty() && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        // Run by hand with no file: say why nothing happens (cat's and jq's silence confuses).
        eprintln!("lcorrelate: reading path records from standard input (end with Ctrl-D)");
    }
    for name in &files {
        let mut input = input::open(name)?;
        input::read_into(
            &mut agg,
            name,
            &mut *input.reader,
            input.gzip,
            args.strict,
            &mut report,
            &mut stderr,
        )?;
    }
    if report.skipped > 0 {
        let lines = if report.skipped == 1 { "line" } else { "lines" };
        eprintln!("lcorrelate: skipped {} malformed {lines}", report.skipped);
    }
    if agg.records == 0 {
        // No links and nothing faulty would read as healthy to a cron job: it is an error.
        let other = match agg.ignored {
            0 => String::new(),
            n => format!(" ({n} records of other types)"),
        };
        anyhow::bail!(
            "no path records read{other}: they come from ludp, ltcp or lping with --trace"
        );
    }
    let problem = graph::Problem::from_aggregator(agg);
    let params = args.params();
    let scores = report::score(&problem, args.method, &params);
    // The records made one at a time as they are written (all at once, they took more memory
    // than the fit).
    let ranking = report::ranking(&problem, &scores, &params);
    let faulty = ranking.any_faulty();
    let links = ranking.records().take(args.top.unwrap_or(usize::MAX));
    match args.format {
        Format::Json | Format::Text => {
            let mut out = RecordWriter::stdout(if args.format == Format::Json {
                RecordFormat::Json
            } else {
                RecordFormat::Text
            });
            let ts = SystemTime::now();
            for link in links {
                out.write(&Record {
                    tool: "lcorrelate",
                    ts,
                    tags: None,
                    body: Body::Link(link),
                })?;
            }
        }
        Format::Dot => {
            let links: Vec<_> = links.collect();
            let text = report::dot(&problem, &links, params.penalty);
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    // The process ends with this call (the binary's only one): its memory goes back with
    // it, without a free for each of a million observations (a tenth of a second).
    std::mem::forget(problem);
    Ok(ExitCode::from(if faulty { EXIT_FAULTY } else { EXIT_OK }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Verdict;

    /// Runs the whole pipeline over lines; the records as JSON values.
    fn correlate(lines: &[String]) -> Vec<crate::record::LinkScore> {
        let mut agg = input::Aggregator::new(input::Aliases::new());
        for l in lines {
            agg.add_line(l.as_bytes()).unwrap();
        }
        let p = graph::Problem::from_aggregator(agg);
        let params = Params::default();
        let s = report::score(&p, Method::Flock, &params);
        report::rank(&p, &s, &params)
    }

    #[test]
    fn pre_aggregated_lines_give_the_same_result_as_raw_ones() {
        let sc = sim::Scenario::new(
            sim::Topology::LeafSpine {
                leaves: 4,
                spines: 2,
                hosts_per_leaf: 3,
            },
            2,
        );
        let run = sim::simulate(&sc, 11);
        // GROUP BY everything but the counts, as a database would, summing sent and lost.
        let mut sums: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for l in &run.lines {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let sent = v["sent"].as_u64().unwrap();
            let lost = v["lost"].as_u64().unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("sent");
            o.remove("lost");
            let e = sums.entry(serde_json::to_string(&v).unwrap()).or_default();
            e.0 += sent;
            e.1 += lost;
        }
        let pre: Vec<String> = sums
            .into_iter()
            .map(|(k, (s, l))| {
                let mut v: serde_json::Value = serde_json::from_str(&k).unwrap();
                v["sent"] = s.into();
                v["lost"] = l.into();
                v.to_string()
            })
            .collect();
        assert!(
            pre.len() * 3 <= run.lines.len(),
            "pre-aggregation merges lines"
        );
        let raw = correlate(&run.lines);
        assert!(raw.iter().any(|l| l.verdict == Verdict::Faulty));
        assert_eq!(correlate(&pre), raw);
    }
}
