//! lcorrelate's benchmark (see `bench/lcorrelate.sh`).
//!
//! `lcorrelate_bench eval [SEEDS]`: every method over SEEDS simulated runs per topology and
//! number of faults; writes a Markdown table.
//! `lcorrelate_bench gen LINES [SEED]`: at least LINES simulated path records on stdout, for
//! the throughput measurement.

use lopa::correlate::estimate::Params;
use lopa::correlate::report::Method;
use lopa::correlate::sim::{evaluate, simulate, simulate_into, Scenario, Tally, Topology};
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
            eval(seeds);
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
            eprintln!("usage: lcorrelate_bench eval [SEEDS] | gen [LINES] [SEED]");
            std::process::exit(2);
        }
    }
}

fn eval(seeds: u64) {
    let params = Params::default();
    let methods: Vec<Method> = METHODS.iter().map(|m| m.0).collect();
    println!("| topology | k | method | top-1 | recall@k | precision | recall | F1 | false alarms / run |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for topo in TOPOLOGIES {
        for k in FAULTS {
            let mut tallies = vec![Tally::default(); methods.len()];
            for seed in 0..seeds {
                let run = simulate(&Scenario::new(topo, k), seed * 1000 + k as u64);
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
