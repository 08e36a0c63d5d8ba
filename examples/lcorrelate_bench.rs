//! lcorrelate's benchmark (see `bench/lcorrelate.sh`).
//!
//! `lcorrelate_bench eval [SEEDS] [TOPOLOGY] [METHOD]`: the methods over SEEDS simulated runs
//! per topology and number of faults (only topologies and methods whose names contain the
//! filters given); writes a Markdown table.
//! `lcorrelate_bench gen LINES [SEED]`: at least LINES simulated path records on stdout, for
//! the throughput measurement.

use lopa::lcorrelate::estimate::Params;
use lopa::lcorrelate::report::Method;
use lopa::lcorrelate::sim::{
    evaluate, node_names, simulate, simulate_into, Addressing, FaultAt, RoundTrip, Run, Scenario,
    Tally, Topology,
};
use std::io::Write;

const TOPOLOGIES: [Topology; 2] = [
    Topology::LeafSpine {
        leaves: 16,
        spines: 4,
        hosts_per_leaf: 8,
    },
    Topology::FatTree { k: 8 },
];
const FAULTS: [usize; 6] = [0, 1, 2, 4, 8, 16];
/// The faults of the conditions of real input (issue 12).
const REAL_FAULTS: [usize; 5] = [0, 1, 4, 8, 16];

/// A condition of real input: how routers answer, what the records measure, silence, and
/// where faults are.
struct Condition {
    name: &'static str,
    addressing: Addressing,
    round_trip: RoundTrip,
    silent_hops: f64,
    silent_router: bool,
    fault_at: FaultAt,
    /// One trace per flow (the probes of six rounds in one), as when every run of a prober
    /// picks new source ports; else six traces per flow.
    one_trace: bool,
}

const fn cond(
    name: &'static str,
    addressing: Addressing,
    round_trip: RoundTrip,
    silent_hops: f64,
    silent_router: bool,
    fault_at: FaultAt,
) -> Condition {
    Condition {
        name,
        addressing,
        round_trip,
        silent_hops,
        silent_router,
        fault_at,
        one_trace: false,
    }
}

/// [`cond`] with one trace per flow.
const fn one_trace(c: Condition) -> Condition {
    Condition {
        one_trace: true,
        ..c
    }
}

use Addressing::{Arrival, RouterNames, TowardSource};
use RoundTrip::{Split, Total};

const CONDITIONS: [Condition; 11] = [
    cond(
        "names, round trip",
        RouterNames,
        Total,
        0.0,
        false,
        FaultAt::Any,
    ),
    cond(
        "arrival, round trip",
        Arrival,
        Total,
        0.0,
        false,
        FaultAt::Any,
    ),
    cond("arrival, split", Arrival, Split, 0.0, false, FaultAt::Any),
    cond(
        "toward source, round trip",
        TowardSource,
        Total,
        0.0,
        false,
        FaultAt::Any,
    ),
    cond(
        "toward source, split",
        TowardSource,
        Split,
        0.0,
        false,
        FaultAt::Any,
    ),
    cond(
        "arrival, round trip, 10 % silent hops",
        Arrival,
        Total,
        0.1,
        false,
        FaultAt::Any,
    ),
    one_trace(cond(
        "arrival, round trip, 10 % silent hops, one trace per flow",
        Arrival,
        Total,
        0.1,
        false,
        FaultAt::Any,
    )),
    cond(
        "arrival, round trip, silent spine",
        Arrival,
        Total,
        0.0,
        true,
        FaultAt::Any,
    ),
    cond(
        "arrival, round trip, core faults",
        Arrival,
        Total,
        0.0,
        false,
        FaultAt::Core,
    ),
    cond(
        "arrival, round trip, host faults",
        Arrival,
        Total,
        0.0,
        false,
        FaultAt::Host,
    ),
    cond(
        "arrival, split, host faults",
        Arrival,
        Split,
        0.0,
        false,
        FaultAt::Host,
    ),
];
const METHODS: [(Method, &str); 3] = [
    (Method::Flock, "flock"),
    (Method::Vote, "vote"),
    (Method::Diff, "diff"),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("eval") => {
            let seeds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
            eval(
                seeds,
                args.get(2).map(String::as_str).unwrap_or(""),
                args.get(3).map(String::as_str).unwrap_or(""),
            );
        }
        Some("dump") => {
            // dump CONDITION K SEED: one run's lines on stdout, its faults and node names on stderr.
            // CONDITION "today": the original conditions (router names, forward loss only).
            let name = args.get(1).map(String::as_str);
            let k: usize = args[2].parse().unwrap();
            let seed: u64 = args[3].parse().unwrap();
            let topo = TOPOLOGIES[args.get(4).map_or(0, |t| t.parse().unwrap())];
            let sc = match CONDITIONS.iter().find(|c| Some(c.name) == name) {
                Some(c) => scenario(c, topo, k),
                None if name == Some("today") => Scenario::new(topo, k),
                None => panic!("a condition name, or today"),
            };
            let run = simulate(&sc, seed * 1000 + k as u64);
            for l in &run.lines {
                println!("{l}");
            }
            for (a, b, p) in &run.faults {
                eprintln!("fault: {a} -> {b} loss {:.3} %", p * 100.0);
            }
            // Node ids (interface addresses `fd00:V::U` are V's, in hexadecimal) and names.
            for (i, name) in run.nodes.iter().enumerate() {
                eprintln!("node: {i:x} {name}");
            }
        }
        Some("dc") => {
            // dc FAULTS SEED [ROUNDS]: the 10,000-host data center of issue 12 (256 leaves x 16
            // spines x 40 hosts, each host probing 16 destinations over 8 flows), round trips,
            // routers answering from the arrival interface.
            let faults = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(32);
            let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            let mut sc = Scenario::new(dc_topology(), faults);
            sc.dsts_per_host = 16;
            sc.flows_per_pair = 8;
            sc.rounds = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            sc.addressing = Addressing::Arrival;
            sc.round_trip = RoundTrip::Total;
            let out = std::io::stdout();
            let mut out = std::io::BufWriter::new(out.lock());
            let faults = simulate_into(&sc, seed, &mut |l: &str| {
                let _ = writeln!(out, "{l}");
            });
            let _ = out.flush();
            for (a, b, p) in &faults {
                eprintln!("fault: {a} -> {b} loss {:.3} %", p * 100.0);
            }
        }
        Some("dc-check") => {
            // dc-check FAULTS_FILE LINKS_FILE: of the faults `dc` wrote, how many the faulty
            // records name, and how many faulty records name none.
            let faults: Vec<(String, String, f64)> = std::fs::read_to_string(&args[1])
                .expect("the faults file")
                .lines()
                .filter_map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    Some((w.get(1)?.to_string(), w.get(3)?.to_string(), 0.0))
                })
                .collect();
            let run = Run {
                lines: Vec::new(),
                faults,
                nodes: node_names(dc_topology()),
                silent: Default::default(),
            };
            let fault_nodes: Vec<(Option<u32>, Option<u32>)> = run
                .faults
                .iter()
                .map(|(a, b, _)| (run.node_of(a), run.node_of(b)))
                .collect();
            let mut found = vec![false; fault_nodes.len()];
            let mut false_alarms = 0;
            let links = std::fs::read_to_string(&args[2]).expect("the links file");
            for l in links.lines() {
                let v: serde_json::Value = serde_json::from_str(l).expect("a link record");
                if v["verdict"] != "faulty" {
                    continue;
                }
                let members: Vec<&serde_json::Value> = match v["group"].as_array() {
                    Some(g) => g.iter().collect(),
                    None => vec![&v],
                };
                let mut named = false;
                for m in members {
                    let ends = (
                        run.node_of(m["from"].as_str().unwrap_or("")),
                        run.node_of(m["to"].as_str().unwrap_or("")),
                    );
                    for (f, hit) in fault_nodes.iter().zip(found.iter_mut()) {
                        if *f == ends {
                            *hit = true;
                            named = true;
                        }
                    }
                }
                false_alarms += usize::from(!named);
            }
            let n = found.iter().filter(|&&f| f).count();
            println!(
                "{n} of {} faults named by faulty records, {false_alarms} faulty records naming none",
                found.len()
            );
        }
        Some("real") => {
            let seeds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
            real(
                seeds,
                args.get(2).map(String::as_str).unwrap_or(""),
                args.get(3).map(String::as_str).unwrap_or(""),
            );
        }
        Some("gen") => {
            let lines: usize = args
                .get(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(3_000_000);
            let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
            generate(lines, seed);
        }
        _ => {
            eprintln!(
                "usage: lcorrelate_bench eval [SEEDS] [TOPOLOGY] [METHOD] | gen [LINES] [SEED]"
            );
            std::process::exit(2);
        }
    }
}

/// One row per topology, k and method; only topologies whose name contains `topo_filter` and
/// methods whose name contains `method_filter`.
fn eval(seeds: u64, topo_filter: &str, method_filter: &str) {
    let params = Params::default();
    let chosen: Vec<&(Method, &str)> = METHODS
        .iter()
        .filter(|m| m.1.contains(method_filter))
        .collect();
    let methods: Vec<Method> = chosen.iter().map(|m| m.0).collect();
    println!("| topology | k | method | top-1 | recall@k | precision | recall | F1 | false alarms / run |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for topo in TOPOLOGIES
        .into_iter()
        .filter(|t| t.to_string().contains(topo_filter))
    {
        for k in FAULTS {
            let mut tallies = vec![Tally::default(); methods.len()];
            for seed in 0..seeds {
                let run = simulate(&Scenario::new(topo, k), seed * 1000 + k as u64);
                for (t, o) in tallies.iter_mut().zip(evaluate(&run, &methods, &params)) {
                    t.add(&o);
                }
            }
            for ((_, name), t) in chosen.iter().zip(&tallies) {
                let dash = |v: f64| {
                    if k == 0 {
                        "–".to_string()
                    } else {
                        format!("{v:.3}")
                    }
                };
                println!(
                    "| {topo} | {k} | {name} | {} | {} | {:.3} | {} | {} | {:.2} |",
                    dash(t.top1()),
                    dash(t.recall_at_k()),
                    t.precision(),
                    dash(t.recall()),
                    dash(t.f1()),
                    t.false_alarms_per_run()
                );
            }
            let _ = std::io::stdout().flush();
        }
    }
}

/// One row per topology, condition, k and method; only conditions whose name contains
/// `filter` and topologies whose name contains `topo_filter`.
fn real(seeds: u64, filter: &str, topo_filter: &str) {
    let params = Params::default();
    let methods: Vec<Method> = METHODS.iter().map(|m| m.0).collect();
    println!("| topology | condition | k | method | top-1 | recall@k | precision | recall | false alarms / run |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for topo in TOPOLOGIES
        .into_iter()
        .filter(|t| t.to_string().contains(topo_filter))
    {
        for c in CONDITIONS.iter().filter(|c| c.name.contains(filter)) {
            for k in REAL_FAULTS {
                let mut tallies = vec![Tally::default(); methods.len()];
                for seed in 0..seeds {
                    let run = simulate(&scenario(c, topo, k), seed * 1000 + k as u64);
                    for (t, o) in tallies.iter_mut().zip(evaluate(&run, &methods, &params)) {
                        t.add(&o);
                    }
                }
                for ((_, name), t) in METHODS.iter().zip(&tallies) {
                    let dash = |v: f64| {
                        if k == 0 {
                            "–".to_string()
                        } else {
                            format!("{v:.3}")
                        }
                    };
                    println!(
                        "| {topo} | {} | {k} | {name} | {} | {} | {:.3} | {} | {:.2} |",
                        c.name,
                        dash(t.top1()),
                        dash(t.recall_at_k()),
                        t.precision(),
                        dash(t.recall()),
                        t.false_alarms_per_run()
                    );
                }
                let _ = std::io::stdout().flush();
            }
        }
    }
}

/// Issue 12's data center: 256 leaves x 16 spines x 40 hosts.
fn dc_topology() -> Topology {
    Topology::LeafSpine {
        leaves: 256,
        spines: 16,
        hosts_per_leaf: 40,
    }
}

fn scenario(c: &Condition, topo: Topology, k: usize) -> Scenario {
    let mut sc = Scenario::new(topo, k);
    sc.addressing = c.addressing;
    sc.round_trip = c.round_trip;
    sc.silent_hops = c.silent_hops;
    sc.silent_router = c.silent_router;
    sc.fault_at = c.fault_at;
    if c.one_trace {
        sc.probes *= sc.rounds as u64;
        sc.rounds = 1;
    }
    sc
}

fn generate(lines: usize, seed: u64) {
    let mut sc = Scenario::new(TOPOLOGIES[1], 2);
    // Enough rounds to reach the requested number of lines.
    let per_round = 128 * sc.dsts_per_host * sc.flows_per_pair;
    sc.rounds = lines.div_ceil(per_round).max(1);
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let faults = simulate_into(&sc, seed, &mut |l: &str| {
        let _ = writeln!(out, "{l}");
    });
    let _ = out.flush();
    for (a, b, p) in &faults {
        eprintln!("fault: {a} -> {b} loss {:.3} %", p * 100.0);
    }
}
