//! `ludp --trace` (Paris traceroute per flow) in a leaf-spine lab with ECMP at the leaves.
//! Needs root (CI runs as root); without it every test fails with one line saying so.

mod common;

use common::lab::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

struct Run {
    status: i32,
    paths: Vec<Value>,
    records: Vec<Value>,
    stderr: String,
}

fn ludp(ns: &Netns, args: &[&str]) -> Run {
    require_root();
    let out = ns
        .command(env!("CARGO_BIN_EXE_ludp"))
        .args(args)
        .output()
        .expect("run ludp");
    let records: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let schema = path_schema();
    let paths: Vec<Value> = records
        .iter()
        .filter(|r| r["type"] == "path")
        .cloned()
        .collect();
    for p in &paths {
        schema
            .0
            .validate(p, schema.1)
            .unwrap_or_else(|e| panic!("{p}: {e:#}"));
    }
    Run {
        status: out.status.code().unwrap_or(-1),
        paths,
        records,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn path_schema() -> (boon::Schemas, boon::SchemaIndex) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/path.schema.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    let mut schemas = boon::Schemas::new();
    let loc = file.to_str().unwrap();
    compiler.add_resource(loc, doc).unwrap();
    let idx = compiler.compile(loc, &mut schemas).unwrap();
    (schemas, idx)
}

/// Every hop's address ("*" for a silent one), by source port.
fn hops_by_sport(run: &Run) -> BTreeMap<u64, Vec<String>> {
    run.paths
        .iter()
        .map(|p| {
            let hops = p["hops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["addr"].as_str().unwrap_or("*").to_string())
                .collect();
            (p["sport"].as_u64().unwrap(), hops)
        })
        .collect()
}

/// Debian traceroute's hops for one 5-tuple (UDP to a fixed port from a fixed source port).
fn traceroute(ns: &Netns, sport: u64, dport: u16, dst: &str) -> Vec<String> {
    let out = ns.run(&format!(
        "traceroute -n -U -p {dport} --sport={sport} -q 1 -w 1 -m 8 {dst}"
    ));
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap_or("*").to_string())
        .collect()
}

const SPINES: [&str; 2] = ["10.0.11.2", "10.0.12.2"];

#[test]
fn sixteen_flows_find_both_spines_stably_and_match_traceroute() {
    let lab = LeafSpine::new("trecmp");
    // No listener on the port: the destination answers with port unreachable, which both
    // ludp and traceroute take as reaching it.
    let args = [
        "--trace-only",
        "--flows",
        "16",
        "--sport",
        "42000",
        "-W",
        "1",
        "10.2.1.1:33434",
    ];
    let start = std::time::Instant::now();
    let first = ludp(&lab.h1, &args);
    let took = start.elapsed();
    assert_eq!(first.status, 0, "{}", first.stderr);
    // All flows and hops at once: about one -W (1 s). One flow after another would take at
    // least 16 × 1 s, so the bound is loose enough for a loaded machine and still tells.
    assert!(
        took < std::time::Duration::from_secs(8),
        "all flows and hops are traced at once: {took:?}"
    );
    assert_eq!(first.paths.len(), 16);
    assert_eq!(first.records.len(), 16, "only path records");
    let paths = hops_by_sport(&first);
    let spines: BTreeSet<&str> = paths.values().map(|h| h[1].as_str()).collect();
    assert_eq!(spines, SPINES.into_iter().collect(), "{paths:?}");
    for (sport, hops) in &paths {
        let leaf2 = if hops[1] == SPINES[0] {
            "10.0.21.1"
        } else {
            "10.0.22.1"
        };
        assert_eq!(
            hops,
            &["10.1.1.254", hops[1].as_str(), leaf2, "10.2.1.1"],
            "flow {sport}"
        );
    }
    for p in &first.paths {
        assert_eq!(p["reached"], true);
        assert_eq!(p["proto"], "udp");
        assert_eq!(p["src"], "10.1.1.1");
        assert_eq!(p["dst"], "10.2.1.1");
        assert_eq!(p["dport"], 33434);
        assert!(p.get("sent").is_none(), "nothing was probed");
        assert!(p["hops"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["rtt_ms"].is_number()));
    }
    assert!(
        first
            .stderr
            .contains("10.2.1.1:33434: 2 distinct paths over 16 flows, 16 reached"),
        "{}",
        first.stderr
    );

    let second = ludp(&lab.h1, &args);
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert_eq!(hops_by_sport(&second), paths, "each flow keeps its path");

    // Debian's traceroute with the same 5-tuple takes the same spine, hop by hop.
    for (sport, hops) in &paths {
        assert_eq!(
            &traceroute(&lab.h1, *sport, 33434, "10.2.1.1"),
            hops,
            "flow {sport}"
        );
    }
}

#[test]
fn unreachable_and_too_short_paths_are_not_reached() {
    let lab = LeafSpine::new("trshort");
    let _echo = python_echo(&lab.h2, 7);
    let run = ludp(&lab.h1, &["--trace-only", "--max-ttl", "5", "10.99.0.1:7"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(run.paths.len(), 1);
    let p = &run.paths[0];
    assert_eq!(p["reached"], false);
    assert_eq!(
        p["hops"],
        serde_json::json!([{"ttl": 1, "addr": "10.1.1.254", "rtt_ms": p["hops"][0]["rtt_ms"]}]),
        "the path ends at the router that says unreachable"
    );

    let run = ludp(
        &lab.h1,
        &[
            "--trace-only",
            "--max-ttl",
            "2",
            "--flows",
            "4",
            "10.2.1.1:7",
        ],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(run.paths.len(), 4);
    for p in &run.paths {
        assert_eq!(p["reached"], false);
        let hops = p["hops"].as_array().unwrap();
        assert_eq!(hops.len(), 2, "{p}");
        assert_eq!(hops[0]["addr"], "10.1.1.254");
        assert!(SPINES.contains(&hops[1]["addr"].as_str().unwrap()), "{p}");
    }

    // With the echo service the destination answers itself, at TTL 4.
    let run = ludp(&lab.h1, &["--trace-only", "--flows", "4", "10.2.1.1:7"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    for p in &run.paths {
        assert_eq!(p["reached"], true, "{p}");
        assert_eq!(p["hops"].as_array().unwrap().len(), 4, "{p}");
        assert_eq!(p["hops"][3]["addr"], "10.2.1.1");
    }
}

#[test]
fn loss_on_one_spine_shows_only_in_its_flows_paths() {
    let lab = LeafSpine::new("trloss");
    let _echo = python_echo(&lab.h2, 7);
    // Probes from leaf1 into spine1 only; spine1's own time-exceeded answers are not
    // forwarded, so the trace still sees it.
    add_loss(&lab.spine1, "forward", "l1", 25);
    let run = ludp(
        &lab.h1,
        &[
            "--trace",
            "--flows",
            "16",
            "--sport",
            "43000",
            "-c",
            "40",
            "-i",
            "0.002",
            "-W",
            "0.5",
            "-q",
            "10.2.1.1:7",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.paths.len(), 16);
    let mut via = BTreeMap::new();
    for p in &run.paths {
        let spine = p["hops"][1]["addr"].as_str().unwrap().to_string();
        assert_eq!(p["sent"], 40, "{p}");
        let lost = p["lost"].as_u64().unwrap();
        if spine == SPINES[0] {
            assert!(lost > 0, "a flow through the lossy spine lost nothing: {p}");
        } else {
            assert_eq!(spine, SPINES[1]);
            assert_eq!(lost, 0, "a flow through the clean spine lost probes: {p}");
        }
        *via.entry(spine).or_insert(0) += 1;
    }
    assert_eq!(via.len(), 2, "16 flows use both spines: {via:?}");
    // The summaries still come, per flow and for the target.
    assert_eq!(
        run.records
            .iter()
            .filter(|r| r["type"] == "summary")
            .count(),
        17
    );
}

#[test]
fn a_silent_hop_has_no_address_and_the_path_goes_on() {
    let lab = LeafSpine::new("trsilent");
    let _echo = python_echo(&lab.h2, 7);
    // spine2 forwards but never answers: its own ICMP errors towards leaf1 are dropped.
    add_loss(&lab.spine2, "output", "l1", 100);
    let run = ludp(
        &lab.h1,
        &["--trace-only", "--flows", "16", "-W", "0.5", "10.2.1.1:7"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let mut silent = 0;
    for p in &run.paths {
        assert_eq!(p["reached"], true, "{p}");
        let hops = p["hops"].as_array().unwrap();
        assert_eq!(hops.len(), 4, "{p}");
        match hops[2]["addr"].as_str() {
            Some("10.0.22.1") => {
                assert_eq!(hops[1], serde_json::json!({"ttl": 2}), "{p}");
                silent += 1;
            }
            Some("10.0.21.1") => assert_eq!(hops[1]["addr"], SPINES[0], "{p}"),
            other => panic!("unexpected third hop {other:?}: {p}"),
        }
    }
    assert!(
        silent > 0 && silent < 16,
        "both spines carry flows: {silent} silent"
    );
}

#[test]
fn a_spine_route_removed_mid_run_gives_a_new_path_record_to_its_flows_only() {
    let lab = LeafSpine::new("trevery");
    let _echo = python_echo(&lab.h2, 7);
    let leaf1 = &lab.leaf1;
    let run = std::thread::scope(|s| {
        let run = s.spawn(|| {
            ludp(
                &lab.h1,
                &[
                    "--trace",
                    "--trace-every",
                    "1s",
                    "--flows",
                    "16",
                    "--sport",
                    "44000",
                    "-w",
                    "5",
                    "-i",
                    "0.005",
                    "-W",
                    "0.3",
                    "-q",
                    "10.2.1.1:7",
                ],
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(2300));
        // leaf1 forgets spine1: every flow to h2 now goes through spine2.
        leaf1.run("ip route replace 10.2.1.0/24 via 10.0.12.2");
        run.join().unwrap()
    });
    assert_eq!(run.status, 0, "{}", run.stderr);
    let mut by_sport: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for p in &run.paths {
        by_sport
            .entry(p["sport"].as_u64().unwrap())
            .or_default()
            .push(p);
    }
    assert_eq!(by_sport.len(), 16, "{:?}", run.paths);
    let totals: BTreeMap<u64, (u64, u64)> = run
        .records
        .iter()
        .filter(|r| r["type"] == "summary" && r["flow"].is_object())
        .map(|r| {
            let sent = r["sent"].as_u64().unwrap();
            (
                r["flow"]["sport"].as_u64().unwrap(),
                (sent, sent - r["received"].as_u64().unwrap()),
            )
        })
        .collect();
    let spine = |p: &Value| p["hops"][1]["addr"].as_str().unwrap().to_string();
    let mut moved = 0;
    for (sport, records) in &by_sport {
        let first = records[0];
        assert_eq!(
            (first["sent"].as_u64(), first["lost"].as_u64()),
            (Some(0), Some(0)),
            "{first}"
        );
        let last = records.last().unwrap();
        assert_eq!(spine(last), SPINES[1], "every flow ends on spine2: {last}");
        if spine(first) == SPINES[0] {
            moved += 1;
            assert_eq!(records.len(), 3, "first, changed, final: {records:?}");
            assert_eq!(
                records[1]["hops"], last["hops"],
                "the final record repeats the new path"
            );
            assert_eq!(records[1]["hops"][2]["addr"], "10.0.22.1", "{}", records[1]);
            assert!(records[1]["sent"].as_u64().unwrap() > 0, "{}", records[1]);
        } else {
            assert_eq!(spine(first), SPINES[1], "{first}");
            assert_eq!(records.len(), 2, "first and final only: {records:?}");
        }
        assert!(last["sent"].as_u64().unwrap() > 0, "{last}");
        let sum = records.iter().fold((0, 0), |(s, l), p| {
            (
                s + p["sent"].as_u64().unwrap(),
                l + p["lost"].as_u64().unwrap(),
            )
        });
        assert_eq!(
            Some(&sum),
            totals.get(sport),
            "flow {sport}: deltas add up to its total"
        );
    }
    assert!(
        moved > 0 && moved < 16,
        "both spines carried flows: {moved} moved"
    );
}
