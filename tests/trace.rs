//! `--trace` (Paris traceroute per flow) of ludp, ltwamp, ltcp and lping in a leaf-spine lab
//! with ECMP at the leaves, over IPv4 and IPv6, and lcorrelate over the path records of a run
//! whose routes changed. Needs root (CI runs as root); without it every test fails with one line
//! saying so.

mod common;

use common::lab::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

const LUDP: &str = env!("CARGO_BIN_EXE_ludp");
const LTCP: &str = env!("CARGO_BIN_EXE_ltcp");
const LPING: &str = env!("CARGO_BIN_EXE_lping");
const LTWAMP: &str = env!("CARGO_BIN_EXE_ltwamp");

/// A tool's run (the lab's [`ToolRun`], which it dereferences to) and its `path` records.
struct Run {
    run: ToolRun,
    paths: Vec<Value>,
}

impl std::ops::Deref for Run {
    type Target = ToolRun;
    fn deref(&self) -> &ToolRun {
        &self.run
    }
}

/// Runs a tool in `ns`; every `path` record it writes must match the schema.
fn tool(bin: &str, ns: &Netns, args: &[&str]) -> Run {
    let run = run_tool(ns, bin, args);
    let schema = path_schema();
    let paths: Vec<Value> = run.kind("path").into_iter().cloned().collect();
    for p in &paths {
        schema
            .0
            .validate(p, schema.1)
            .unwrap_or_else(|e| panic!("{p}: {e:#}"));
    }
    Run { run, paths }
}

fn ludp(ns: &Netns, args: &[&str]) -> Run {
    tool(LUDP, ns, args)
}

fn ltcp(ns: &Netns, args: &[&str]) -> Run {
    tool(LTCP, ns, args)
}

fn lping(ns: &Netns, args: &[&str]) -> Run {
    tool(LPING, ns, args)
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

/// Runs `bin` with `args` (a `--trace-every 1s` run of about 5 s) from h1 and, 2.3 s in, makes
/// leaf1 forget spine1: every flow to h2 goes through spine2 from then on.
fn run_with_route_change(lab: &LeafSpine, bin: &str, args: &[&str]) -> Run {
    let leaf1 = &lab.leaf1;
    std::thread::scope(|s| {
        let run = s.spawn(|| tool(bin, &lab.h1, args));
        std::thread::sleep(std::time::Duration::from_millis(2300));
        leaf1.run("ip route replace 10.2.1.0/24 via 10.0.12.2");
        run.join().unwrap()
    })
}

/// The path records of a `--trace-every` run whose spine1 route went away mid-run: each of
/// `flows` flows has its first path (no probes counted yet), then, if it was on spine1, that
/// path closed with the probes sent on it and the new path through spine2 opened (none
/// counted), and its path at the end; a flow's counts add up to its totals. Returns how many
/// flows moved.
fn check_history(run: &Run, flows: usize) -> usize {
    assert_eq!(run.status, 0, "{}", run.stderr);
    let mut by_sport: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for p in &run.paths {
        by_sport
            .entry(p["sport"].as_u64().unwrap())
            .or_default()
            .push(p);
    }
    assert_eq!(by_sport.len(), flows, "{:?}", run.paths);
    // Per flow, or per target for a tool with one flow per target (lping).
    let summaries: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["type"] == "summary" && (flows == 1 || r["flow"].is_object()))
        .collect();
    let totals: BTreeMap<u64, (u64, u64)> = summaries
        .iter()
        .map(|r| {
            let sent = r["sent"].as_u64().unwrap();
            let sport = match r["flow"]["sport"].as_u64() {
                Some(sport) => sport,
                None => *by_sport.keys().next().unwrap(),
            };
            (sport, (sent, sent - r["received"].as_u64().unwrap()))
        })
        .collect();
    // Loss split by direction (against lreflect): each sample's own, adding up to the flow's.
    let split = |r: &Value| (r["lost_fwd"].as_u64(), r["lost_rev"].as_u64());
    let split_totals: BTreeMap<u64, (Option<u64>, Option<u64>)> = summaries
        .iter()
        .filter_map(|r| Some((r["flow"]["sport"].as_u64()?, split(r))))
        .collect();
    let spine = |p: &Value| p["hops"][1]["addr"].as_str().unwrap_or("*").to_string();
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
            assert_eq!(
                records.len(),
                4,
                "first, the old path closed, the new one opened, final: {records:?}"
            );
            let (closed, opened) = (records[1], records[2]);
            assert_eq!(closed["hops"], first["hops"], "the old path, closed");
            assert!(closed["sent"].as_u64().unwrap() > 0, "{closed}");
            assert_eq!(
                (opened["sent"].as_u64(), opened["lost"].as_u64()),
                (Some(0), Some(0)),
                "{opened}"
            );
            assert_eq!(opened["hops"][2]["addr"], "10.0.22.1", "{opened}");
            assert_eq!(
                opened["hops"], last["hops"],
                "the final record repeats the new path"
            );
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
            "flow {sport}: the counts add up to its total"
        );
        if let Some(&(Some(fwd), Some(rev))) = split_totals.get(sport) {
            // Placed loss is counted in the sample of the answer that placed it; the first
            // record of a flow, before any answer said the reflector counts, has none.
            let sum = records.iter().fold((0, 0), |(f, r), p| {
                let (pf, pr) = match split(p) {
                    (Some(pf), Some(pr)) => (pf, pr),
                    _ if p["sent"] == 0 => (0, 0),
                    _ => panic!("no split in {p}"),
                };
                assert!(pf + pr <= p["lost"].as_u64().unwrap(), "{p}");
                (f + pf, r + pr)
            });
            assert_eq!(sum, (fwd, rev), "flow {sport}: the split adds up");
        } else {
            assert!(
                records.iter().all(|p| split(p) == (None, None)),
                "{records:?}"
            );
        }
    }
    moved
}

#[test]
fn a_spine_route_removed_mid_run_gives_new_path_records_to_its_flows_only() {
    let lab = LeafSpine::new("trevery");
    let _echo = python_echo(&lab.h2, 7);
    let args = [
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
    ];
    let moved = check_history(&run_with_route_change(&lab, LUDP, &args), 16);
    assert!(
        moved > 0 && moved < 16,
        "both spines carried flows: {moved} moved"
    );
}

/// A `--trace` run through 25 % loss into spine1 (on the way there only): each path record
/// carries its flow's `sent`, `lost_fwd` and `lost_rev`, equal to its summary's; only the flows
/// whose probes take spine1 lose probes, all of them placed on the way there but at most
/// `unplaced` (the losses after the flow's last answer; for ltwamp also before its first).
fn check_split_paths(run: &Run, who: &str, unplaced: u64) {
    assert_eq!(run.status, 0, "{who}: {}", run.stderr);
    assert_eq!(run.paths.len(), 8, "{who}");
    let mut lossy = 0;
    for p in &run.paths {
        let s = run
            .records
            .iter()
            .find(|r| r["type"] == "summary" && r["flow"]["sport"] == p["sport"])
            .unwrap_or_else(|| panic!("{who}: no summary for {p}"));
        for member in ["sent", "lost_fwd", "lost_rev"] {
            assert_eq!(p[member], s[member], "{who} {member}: {p} against {s}");
        }
        let (lost, fwd, rev) = (
            p["lost"].as_u64().unwrap(),
            p["lost_fwd"].as_u64().unwrap(),
            p["lost_rev"].as_u64().unwrap(),
        );
        assert!(rev <= s["late"].as_u64().unwrap(), "{who}: {p}");
        if p["hops"][1]["addr"] == SPINES[0] {
            lossy += 1;
            assert!(
                fwd > 0 && fwd <= lost && lost - fwd <= unplaced,
                "{who}: {p}"
            );
        } else {
            assert_eq!((lost, fwd), (0, 0), "{who}: {p}");
        }
    }
    assert!(lossy > 0 && lossy < 8, "{who}: {lossy} flows over spine1");
}

/// ludp against lreflect: each flow's loss split by direction in its path records.
#[test]
fn ludp_paths_carry_their_flows_loss_split_by_direction() {
    let lab = LeafSpine::new("trsplit");
    let _reflector = lreflect_service(&lab.h2, &["--echo", "10.2.1.1:8081"], 8081);
    add_loss(&lab.spine1, "forward", "l1", 25);
    let run = ludp(
        &lab.h1,
        &[
            "--trace", "--flows", "8", "--sport", "43100", "-c", "60", "-i", "0.002", "-W", "0.5",
            "-q", "10.2.1.1",
        ],
    );
    check_split_paths(&run, "ludp", 5);
}

/// `--trace-every` of `bin` against lreflect in h2 (started with `reflector`, on `port`), a
/// route change mid-run and 10 % loss into leaf2 from spine2: the history [`check_history`]
/// checks, each sample with the split of its own probes, adding up to the flow's summary.
fn trace_every_split(test: &str, bin: &str, reflector: &[&str], port: u16, extra: &[&str]) {
    let lab = LeafSpine::new(test);
    let _reflector = lreflect_service(&lab.h2, reflector, port);
    add_loss(&lab.leaf2, "forward", "s2", 10);
    let args = [
        &[
            "--trace",
            "--trace-every",
            "1s",
            "--flows",
            "8",
            "-w",
            "5",
            "-i",
            "0.005",
            "-W",
            "0.3",
            "-q",
        ],
        extra,
        &["10.2.1.1"],
    ]
    .concat();
    let run = run_with_route_change(&lab, bin, &args);
    let moved = check_history(&run, 8);
    assert!(moved > 0 && moved < 8, "{moved} moved");
    let placed: u64 = run
        .paths
        .iter()
        .filter_map(|p| p["lost_fwd"].as_u64())
        .sum();
    assert!(
        placed > 0,
        "10 % loss into leaf2 from spine2: {:?}",
        run.paths
    );
}

#[test]
fn ludp_trace_every_samples_carry_their_own_split() {
    trace_every_split(
        "treverysplit",
        LUDP,
        &["--echo", "10.2.1.1:8081"],
        8081,
        &["--sport", "44100"],
    );
}

#[test]
fn ltwamp_trace_every_samples_carry_their_own_split() {
    trace_every_split(
        "trtwevery",
        LTWAMP,
        &["--twamp", "10.2.1.1:862"],
        862,
        &["--sport", "45200", "--reflector", "stateful"],
    );
}

/// ltwamp --trace-only against a STAMP reflector on h2 (lreflect --twamp, then stamp-suite's):
/// each flow's path, traced with its own 5-tuple to the reflector's port, equals Debian
/// traceroute -U's with the same source and destination ports, hop by hop.
#[test]
fn ltwamp_traces_match_traceroute_flow_by_flow() {
    let lab = LeafSpine::new("trtwamp");
    let args = [
        "--trace-only",
        "--flows",
        "8",
        "--sport",
        "45000",
        "-W",
        "1",
        "10.2.1.1",
    ];
    let compare = |run: &Run, who: &str| {
        assert_eq!(run.status, 0, "{who}: {}", run.stderr);
        assert_eq!(run.paths.len(), 8, "{who}");
        let paths = hops_by_sport(run);
        let spines: BTreeSet<&str> = paths.values().map(|h| h[1].as_str()).collect();
        assert_eq!(spines, SPINES.into_iter().collect(), "{who}: {paths:?}");
        for p in &run.paths {
            assert_eq!(
                (p["reached"].as_bool(), p["dport"].as_u64()),
                (Some(true), Some(862))
            );
        }
        for (sport, hops) in &paths {
            assert_eq!(hops.len(), 4, "{who} flow {sport}: {hops:?}");
            // traceroute takes the reflector's UDP answer for the destination, as ltwamp does.
            assert_eq!(
                &traceroute(&lab.h1, *sport, 862, "10.2.1.1"),
                hops,
                "{who} flow {sport}"
            );
        }
        paths
    };
    let ours = {
        let _reflector = lreflect_service(&lab.h2, &["--twamp", "10.2.1.1:862"], 862);
        compare(&tool(LTWAMP, &lab.h1, &args), "lreflect")
    };
    let _reflector = stamp_suite_reflector(&lab.h2, "10.2.1.1", &["--stateful-reflector"]);
    assert_eq!(compare(&tool(LTWAMP, &lab.h1, &args), "stamp-suite"), ours);
}

/// ltwamp --trace against stateful reflectors with loss into spine1: each path carries its
/// flow's loss split by direction, equal to the flow's summary; the trace probes that reached
/// the reflector (numbered in the flow's session) do not show as loss on the way back.
#[test]
fn ltwamp_paths_carry_their_flows_loss_split_by_direction() {
    let lab = LeafSpine::new("trtwsplit");
    add_loss(&lab.spine1, "forward", "l1", 25);
    let run_against = |who: &str| {
        let run = tool(
            LTWAMP,
            &lab.h1,
            &[
                "--trace",
                "--flows",
                "8",
                "--sport",
                "45100",
                "-c",
                "60",
                "-i",
                "0.002",
                "-W",
                "0.5",
                "--reflector",
                "stateful",
                "-q",
                "10.2.1.1",
            ],
        );
        check_split_paths(&run, who, 8);
    };
    {
        let _reflector = lreflect_service(&lab.h2, &["--twamp", "10.2.1.1:862"], 862);
        run_against("lreflect");
    }
    let _reflector = stamp_suite_reflector(&lab.h2, "10.2.1.1", &["--stateful-reflector"]);
    run_against("stamp-suite");
}

#[test]
fn ltcp_and_lping_follow_a_route_change_too() {
    let lab = LeafSpine::new("treverytcp");
    for syn in [false, true] {
        let mut args = vec![
            "--trace",
            "--trace-every",
            "1s",
            "--flows",
            "16",
            "--sport",
            "44100",
            "-w",
            "5",
            "-i",
            "0.005",
            "-W",
            "0.3",
            "-q",
        ];
        if syn {
            args.push("--syn");
        }
        args.push("10.2.1.1:80");
        let moved = check_history(&run_with_route_change(&lab, LTCP, &args), 16);
        assert!(moved > 0 && moved < 16, "syn {syn}: {moved} moved");
        lab.leaf1
            .run("ip route replace 10.2.1.0/24 nexthop via 10.0.11.2 nexthop via 10.0.12.2");
    }
    // ICMP is one flow, which leaf1 hashes onto one spine: start it on spine1.
    lab.leaf1.run("ip route replace 10.2.1.0/24 via 10.0.11.2");
    let args = [
        "--trace",
        "--trace-every",
        "1s",
        "-w",
        "5",
        "-i",
        "0.005",
        "-W",
        "0.3",
        "-q",
        "10.2.1.1",
    ];
    assert_eq!(
        check_history(&run_with_route_change(&lab, LPING, &args), 1),
        1
    );
}

#[test]
fn lcorrelate_joins_the_path_records_of_a_run_whose_route_changed() {
    // 25 % loss into spine1 until its route goes away: the loss belongs to the spine1 path of
    // the flows that moved, and none of it to their later path through spine2.
    let lab = LeafSpine::new("trjoin");
    let _echo = python_echo(&lab.h2, 7);
    add_loss(&lab.spine1, "forward", "l1", 25);
    let args = [
        "--trace",
        "--trace-every",
        "1s",
        "--flows",
        "16",
        "--sport",
        "44200",
        "-w",
        "5",
        "-i",
        "0.005",
        "-W",
        "0.3",
        "-q",
        "10.2.1.1:7",
    ];
    let run = run_with_route_change(&lab, LUDP, &args);
    assert_eq!(run.status, 0, "{}", run.stderr);
    // What went through each spine, by the path records.
    let mut by_spine: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in &run.paths {
        let e = by_spine
            .entry(p["hops"][1]["addr"].as_str().unwrap_or("*").to_string())
            .or_default();
        e.0 += p["sent"].as_u64().unwrap();
        e.1 += p["lost"].as_u64().unwrap();
    }
    let spine1 = by_spine.get(SPINES[0]).copied().unwrap_or_default();
    let spine2 = by_spine.get(SPINES[1]).copied().unwrap_or_default();
    assert!(spine1.0 > 0 && spine1.1 > 0, "{by_spine:?}");
    assert!(spine2.0 > 0, "{by_spine:?}");
    assert_eq!(
        spine2.1, 0,
        "no probe lost on spine2 is counted: {by_spine:?}"
    );

    let input: String = run.records.iter().map(|r| format!("{r}\n")).collect();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lcorrelate"))
        .arg("--min-loss")
        .arg("0.05")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        std::io::Write::write_all(&mut stdin, input.as_bytes()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let links: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each link (or group of links crossed by the same flows) as lcorrelate sums it.
    let ends = |l: &Value| -> Vec<(String, String)> {
        let one = |e: &Value| {
            (
                e["from"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap().to_string(),
            )
        };
        match l["group"].as_array() {
            Some(g) => g.iter().map(one).collect(),
            None => vec![one(l)],
        }
    };
    let link = |from: &str, to: &str| {
        links
            .iter()
            .find(|l| ends(l).contains(&(from.to_string(), to.to_string())))
            .unwrap_or_else(|| panic!("no link {from}>{to}: {links:?}"))
    };
    let into1 = link("10.1.1.254", SPINES[0]);
    let into2 = link("10.1.1.254", SPINES[1]);
    assert_eq!(
        (into1["sent"].as_u64(), into1["lost"].as_u64()),
        (Some(spine1.0), Some(spine1.1)),
        "every spine1 record, joined: {into1}"
    );
    assert_eq!(
        (into2["sent"].as_u64(), into2["lost"].as_u64()),
        (Some(spine2.0), Some(0)),
        "every spine2 record, joined: {into2}"
    );
    assert!(
        into1["suspicion"].as_f64() > into2["suspicion"].as_f64(),
        "{into1} {into2}"
    );
}

// ---------------------------------------------------------------------------------------------
// ltcp

/// Debian traceroute's hops for one TCP 5-tuple (`-T`: raw SYNs from a fixed source port).
fn traceroute_tcp(ns: &Netns, sport: u64, dport: u16, dst: &str) -> Vec<String> {
    let out = ns.run(&format!(
        "traceroute -n -T -p {dport} --sport={sport} -q 1 -w 1 -m 8 {dst}"
    ));
    out.lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).unwrap_or("*").to_string())
        .collect()
}

/// Each flow's path over the leaf-spine lab is h1's leaf, a spine, the leaf2 side of that
/// spine, then h2.
fn assert_leaf_spine_paths(paths: &BTreeMap<u64, Vec<String>>) {
    let spines: BTreeSet<&str> = paths.values().map(|h| h[1].as_str()).collect();
    assert_eq!(spines, SPINES.into_iter().collect(), "{paths:?}");
    for (sport, hops) in paths {
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
}

#[test]
fn ltcp_connect_and_syn_traces_find_both_spines_on_the_same_paths() {
    let lab = LeafSpine::new("trtcp");
    // No listener: h2 answers every SYN with an RST, which reaches it as well as a SYN-ACK.
    let args = [
        "--trace-only",
        "--flows",
        "16",
        "--sport",
        "45000",
        "-W",
        "1",
        "10.2.1.1:33434",
    ];
    let connect = ltcp(&lab.h1, &args);
    assert_eq!(connect.status, 0, "{}", connect.stderr);
    assert_eq!(connect.paths.len(), 16, "{}", connect.stderr);
    for p in &connect.paths {
        assert_eq!(p["reached"], true, "{p}");
        assert_eq!(p["proto"], "tcp");
        assert_eq!(
            (p["src"].as_str(), p["dport"].as_u64()),
            (Some("10.1.1.1"), Some(33434))
        );
        assert!(p.get("sent").is_none(), "nothing was probed");
    }
    let paths = hops_by_sport(&connect);
    assert_eq!(
        paths.keys().copied().collect::<Vec<_>>(),
        (45000..45016).collect::<Vec<_>>()
    );
    assert_leaf_spine_paths(&paths);
    assert!(
        connect
            .stderr
            .contains("10.2.1.1:33434: 2 distinct paths over 16 flows, 16 reached"),
        "{}",
        connect.stderr
    );

    // Raw SYNs from the same ports are the same 5-tuples: the same paths.
    let mut syn_args = vec!["--syn"];
    syn_args.extend_from_slice(&args);
    let syn = ltcp(&lab.h1, &syn_args);
    assert_eq!(syn.status, 0, "{}", syn.stderr);
    assert_eq!(hops_by_sport(&syn), paths, "connect and --syn agree");

    // And so does Debian's traceroute with TCP SYNs from those ports.
    for (sport, hops) in paths.iter().take(6) {
        assert_eq!(
            &traceroute_tcp(&lab.h1, *sport, 33434, "10.2.1.1"),
            hops,
            "flow {sport}"
        );
    }
}

#[test]
fn ltcp_trace_counts_each_flows_probes_and_loss() {
    let lab = LeafSpine::new("trtcploss");
    add_loss(&lab.spine1, "forward", "l1", 25);
    for syn in [false, true] {
        let mut args = vec![
            "--trace", "--flows", "16", "--sport", "46000", "-c", "40", "-i", "0.002", "-W", "0.5",
            "-q",
        ];
        if syn {
            args.push("--syn");
        }
        args.push("10.2.1.1:33434");
        let run = ltcp(&lab.h1, &args);
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert_eq!(run.paths.len(), 16, "syn {syn}: {}", run.stderr);
        let mut via = BTreeMap::new();
        for p in &run.paths {
            let spine = p["hops"][1]["addr"].as_str().unwrap_or("*").to_string();
            assert_eq!(p["sent"], 40, "{p}");
            let lost = p["lost"].as_u64().unwrap();
            if spine == SPINES[0] {
                assert!(lost > 0, "a flow through the lossy spine lost nothing: {p}");
            } else {
                assert_eq!(spine, SPINES[1], "{p}");
                assert_eq!(lost, 0, "a flow through the clean spine lost probes: {p}");
            }
            *via.entry(spine).or_insert(0) += 1;
        }
        assert_eq!(via.len(), 2, "syn {syn}: 16 flows use both spines: {via:?}");
    }
}

#[test]
fn ltcp_unreachable_silent_and_short_paths() {
    let lab = LeafSpine::new("trtcpshort");
    for syn in [false, true] {
        let mode: &[&str] = if syn { &["--syn"] } else { &[] };
        let with = |args: &[&str]| -> Vec<String> {
            mode.iter().chain(args).map(|a| a.to_string()).collect()
        };
        let args = with(&["--trace-only", "--max-ttl", "5", "10.99.0.1:80"]);
        let run = ltcp(
            &lab.h1,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(run.status, 1, "{}", run.stderr);
        assert_eq!(run.paths.len(), 1);
        let p = &run.paths[0];
        assert_eq!(p["reached"], false, "{p}");
        assert_eq!(
            p["hops"].as_array().unwrap().len(),
            1,
            "ends at the unreachable: {p}"
        );
        assert_eq!(p["hops"][0]["addr"], "10.1.1.254", "{p}");

        let args = with(&[
            "--trace-only",
            "--max-ttl",
            "2",
            "--flows",
            "4",
            "10.2.1.1:80",
        ]);
        let run = ltcp(
            &lab.h1,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(run.status, 1, "{}", run.stderr);
        assert_eq!(run.paths.len(), 4);
        for p in &run.paths {
            assert_eq!(p["reached"], false, "{p}");
            let hops = p["hops"].as_array().unwrap();
            assert_eq!(hops.len(), 2, "{p}");
            assert_eq!(hops[0]["addr"], "10.1.1.254");
            assert!(SPINES.contains(&hops[1]["addr"].as_str().unwrap()), "{p}");
        }
    }
    // spine2 forwards but never answers.
    add_loss(&lab.spine2, "output", "l1", 100);
    for syn in [false, true] {
        let mut args = vec!["--trace-only", "--flows", "16", "-W", "0.3"];
        if syn {
            args.push("--syn");
        }
        args.push("10.2.1.1:80");
        let run = ltcp(&lab.h1, &args);
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
        assert!(silent > 0 && silent < 16, "syn {syn}: {silent} silent");
    }
    // Neither spine answers now: every flow has a silent second hop, which costs a connect
    // trace three timeouts. The flows go in parallel: one after another, 16 flows would take
    // at least 16 × 3 × 0.3 s.
    add_loss(&lab.spine1, "output", "l1", 100);
    let start = std::time::Instant::now();
    let run = ltcp(
        &lab.h1,
        &["--trace-only", "--flows", "16", "-W", "0.3", "10.2.1.1:80"],
    );
    let took = start.elapsed();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.paths.len(), 16);
    for p in &run.paths {
        assert_eq!(
            (p["reached"].as_bool(), p["hops"][1].get("addr")),
            (Some(true), None),
            "{p}"
        );
    }
    assert!(
        took < std::time::Duration::from_secs(7),
        "the flows are traced in parallel: {took:?}"
    );
    clear_loss(&lab.spine1);
    clear_loss(&lab.spine2);

    // h2 drops everything: a connect trace stops after 5 silent TTLs, a SYN trace goes on to
    // --max-ttl (it sends every TTL at once).
    add_loss(&lab.h2, "input", "eth0", 100);
    for (syn, hops) in [(false, 8), (true, 12)] {
        let mut args = vec![
            "--trace-only",
            "--trace-probes",
            "1",
            "--max-ttl",
            "12",
            "-W",
            "0.2",
        ];
        if syn {
            args.push("--syn");
        }
        args.push("10.2.1.1:80");
        let run = ltcp(&lab.h1, &args);
        assert_eq!(run.status, 1, "{}", run.stderr);
        let p = &run.paths[0];
        assert_eq!(p["reached"], false, "{p}");
        let got = p["hops"].as_array().unwrap();
        assert_eq!(got.len(), hops, "syn {syn}: {p}");
        assert!(got[..3].iter().all(|h| h["addr"].is_string()), "{p}");
        assert!(got[3..].iter().all(|h| h.get("addr").is_none()), "{p}");
    }
}

// ---------------------------------------------------------------------------------------------
// lping

/// Captures the echo requests arriving at `ns` from `src` (a raw socket, as tcpdump would):
/// one (identifier, checksum, sequence) per request, once stopped.
struct EchoCapture(Background);

impl EchoCapture {
    fn start(ns: &Netns, src: &str) -> EchoCapture {
        const PY: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
print("ready", flush=True)
while True:
    d, a = s.recvfrom(65535)
    ihl = (d[0] & 0xf) * 4
    t, c, ck, ident, seq = struct.unpack("!BBHHH", d[ihl:ihl + 8])
    if t == 8 and a[0] == sys.argv[1]:
        print(ident, ck, seq, flush=True)
"#;
        let mut child = ns
            .command("python3")
            .args(["-c", PY, src])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the capture");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        EchoCapture(Background(child))
    }

    fn stop(mut self) -> Vec<(u16, u16, u16)> {
        let _ = self.0 .0.kill();
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(self.0 .0.stdout.as_mut().unwrap(), &mut out);
        out.lines()
            .map(|l| {
                let v: Vec<u16> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
                (v[0], v[1], v[2])
            })
            .collect()
    }
}

#[test]
fn lping_trace_reaches_the_destination_and_keeps_one_flow_identity() {
    let lab = LeafSpine::new("trping");
    lab.h1.allow_ping_sockets();
    for socket in ["dgram", "raw"] {
        let capture = EchoCapture::start(&lab.h2, "10.1.1.1");
        let run = lping(
            &lab.h1,
            &[
                "--socket", socket, "--trace", "-c", "20", "-i", "0.01", "-q", "10.2.1.1",
            ],
        );
        let requests = capture.stop();
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert_eq!(run.paths.len(), 1, "{}", run.stderr);
        let p = &run.paths[0];
        assert_eq!(
            (p["reached"].as_bool(), p["proto"].as_str()),
            (Some(true), Some("icmp"))
        );
        assert_eq!(
            (p["sent"].as_u64(), p["lost"].as_u64()),
            (Some(20), Some(0)),
            "{p}"
        );
        let hops: Vec<&str> = p["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["addr"].as_str().unwrap_or("*"))
            .collect();
        let leaf2 = if hops.get(1) == Some(&SPINES[0]) {
            "10.0.21.1"
        } else {
            "10.0.22.1"
        };
        assert_eq!(
            hops,
            ["10.1.1.254", hops[1], leaf2, "10.2.1.1"],
            "{socket}: {p}"
        );
        assert!(SPINES.contains(&hops[1]), "{p}");
        // The trace probes that reached h2 and the 20 probes: one identifier, one checksum
        // (the first four bytes ECMP routers may hash), many sequence numbers.
        assert!(requests.len() > 20, "{socket}: {requests:?}");
        let identity: BTreeSet<(u16, u16)> = requests.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(identity.len(), 1, "{socket}: {requests:?}");
        assert_eq!(
            u64::from(requests[0].0),
            p["sport"].as_u64().unwrap(),
            "{p}"
        );
        let seqs: BTreeSet<u16> = requests.iter().map(|r| r.2).collect();
        assert_eq!(seqs.len(), requests.len(), "{socket}: {requests:?}");
    }
}

#[test]
fn lping_unreachable_silent_and_short_paths() {
    let lab = LeafSpine::new("trpingshort");
    let run = lping(&lab.h1, &["--trace-only", "--max-ttl", "5", "10.99.0.1"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let p = &run.paths[0];
    assert_eq!(p["reached"], false, "{p}");
    assert_eq!(p["hops"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["hops"][0]["addr"], "10.1.1.254", "{p}");

    let run = lping(&lab.h1, &["--trace-only", "--max-ttl", "3", "10.2.1.1"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let p = &run.paths[0];
    assert_eq!(p["reached"], false, "{p}");
    assert_eq!(p["hops"].as_array().unwrap().len(), 3, "{p}");
    assert!(p["hops"][2]["addr"].is_string(), "{p}");

    // Neither spine answers: the second hop is silent, the path goes on.
    add_loss(&lab.spine1, "output", "l1", 100);
    add_loss(&lab.spine2, "output", "l1", 100);
    let run = lping(&lab.h1, &["--trace-only", "-W", "0.3", "10.2.1.1"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let p = &run.paths[0];
    assert_eq!(p["reached"], true, "{p}");
    let hops = p["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 4, "{p}");
    assert_eq!(hops[1], serde_json::json!({"ttl": 2}), "{p}");
    assert_eq!(hops[3]["addr"], "10.2.1.1", "{p}");

    let out = lab
        .h1
        .command(LPING)
        .args(["--trace", "-s", "16", "-c", "1", "10.2.1.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--trace needs --size 22 or more"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// IPv6

const SPINES6: [&str; 2] = ["fd10:0:11::2", "fd10:0:12::2"];
const LEAF2_6: [&str; 2] = ["fd10:0:21::1", "fd10:0:22::1"];

#[test]
fn ipv6_traces_find_both_spines_and_reach_the_destination() {
    let lab = LeafSpine::new("trv6");
    lab.add_ipv6();
    let _echo = python_echo(&lab.h2, 7);
    let check = |tool: &str, run: &Run, flows: usize| {
        assert_eq!(run.status, 0, "{tool}: {}", run.stderr);
        assert_eq!(run.paths.len(), flows, "{tool}: {}", run.stderr);
        let mut spines = BTreeSet::new();
        for p in &run.paths {
            assert_eq!(p["reached"], true, "{tool}: {p}");
            assert_eq!(
                (p["src"].as_str(), p["dst"].as_str()),
                (Some("fd10:1:1::1"), Some("fd10:2:1::1"))
            );
            let hops: Vec<&str> = p["hops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["addr"].as_str().unwrap_or("*"))
                .collect();
            assert_eq!(hops.len(), 4, "{tool}: {p}");
            assert_eq!(hops[0], "fd10:1:1::254", "{tool}: {p}");
            assert!(SPINES6.contains(&hops[1]), "{tool}: {p}");
            assert!(LEAF2_6.contains(&hops[2]), "{tool}: {p}");
            assert_eq!(hops[3], "fd10:2:1::1", "{tool}: {p}");
            spines.insert(hops[1].to_string());
        }
        spines
    };
    let udp = ludp(
        &lab.h1,
        &[
            "--trace-only",
            "--flows",
            "16",
            "--sport",
            "47000",
            "-W",
            "1",
            "[fd10:2:1::1]:7",
        ],
    );
    assert_eq!(check("ludp", &udp, 16).len(), 2, "16 flows use both spines");
    // The same flows again: each keeps its path.
    let again = ludp(
        &lab.h1,
        &[
            "--trace-only",
            "--flows",
            "16",
            "--sport",
            "47000",
            "-W",
            "1",
            "[fd10:2:1::1]:7",
        ],
    );
    assert_eq!(hops_by_sport(&again), hops_by_sport(&udp));
    let tcp = ltcp(
        &lab.h1,
        &[
            "--trace-only",
            "--flows",
            "16",
            "--sport",
            "47100",
            "-W",
            "1",
            "[fd10:2:1::1]:80",
        ],
    );
    assert_eq!(check("ltcp", &tcp, 16).len(), 2, "16 flows use both spines");
    let syn = ltcp(
        &lab.h1,
        &[
            "--syn",
            "--trace-only",
            "--flows",
            "16",
            "--sport",
            "47100",
            "-W",
            "1",
            "[fd10:2:1::1]:80",
        ],
    );
    check("ltcp --syn", &syn, 16);
    assert_eq!(
        BTreeMap::from_iter(
            hops_by_sport(&syn)
                .into_iter()
                .map(|(k, v)| (k, v[1].clone()))
        ),
        BTreeMap::from_iter(
            hops_by_sport(&tcp)
                .into_iter()
                .map(|(k, v)| (k, v[1].clone()))
        ),
        "connect and --syn take the same spine per flow"
    );
    lab.h1.allow_ping_sockets();
    for socket in ["dgram", "raw"] {
        let ping = lping(
            &lab.h1,
            &[
                "--socket",
                socket,
                "--trace",
                "-c",
                "3",
                "-i",
                "0.01",
                "-q",
                "fd10:2:1::1",
            ],
        );
        check("lping", &ping, 1);
        assert_eq!(ping.paths[0]["sent"], 3);
    }
    // A destination behind an unreachable route: the path ends at the router that says so.
    let run = ludp(&lab.h1, &["--trace-only", "[fd10:99::1]:7"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let p = &run.paths[0];
    assert_eq!(p["reached"], false, "{p}");
    assert_eq!(
        p["hops"].as_array().unwrap().len(),
        1,
        "ends at the unreachable: {p}"
    );
    assert_eq!(p["hops"][0]["addr"], "fd10:1:1::254", "{p}");
}

/// SIGINT during a trace ends it with what it found so far: the `path` records and the exit
/// status of a trace (1: the destination was not reached), never death by the signal with
/// nothing written; with `--trace`, no probing follows, and the run ends as any run a signal
/// ends: with the target's total summary (of no probes, so no loss figure).
#[test]
fn sigint_during_a_trace_ends_it_with_the_paths_so_far() {
    require_root();
    let ns = Netns::new("trsigint");
    // Probes to 10.9.0.0/16 vanish: every hop is silent, and at 2 probes a second the trace
    // would last 45 s.
    ns.run("ip route add 10.9.0.0/16 dev lo");
    for args in [&["--trace-only"][..], &["--trace", "-c", "3"][..]] {
        let child = ns
            .command(LPING)
            .args(args)
            .args(["--trace-rate", "2", "10.9.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run lping");
        std::thread::sleep(std::time::Duration::from_secs(1));
        let kill = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        let start = std::time::Instant::now();
        let out = child.wait_with_output().expect("wait for lping");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{args:?}: ended {:?} after SIGINT",
            start.elapsed()
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        let records: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = records
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        if args[0] == "--trace-only" {
            assert_eq!(kinds, ["path"], "{args:?}: {stdout}");
        } else {
            assert_eq!(kinds, ["path", "summary"], "{args:?}: {stdout}");
            let s = &records[1];
            assert_eq!(
                (&s["target"], &s["window"]),
                (&json!("10.9.0.1"), &json!("total"))
            );
            assert_eq!(
                (s["sent"].as_u64(), s.get("loss_pct")),
                (Some(0), None),
                "{s}"
            );
        }
        assert_eq!(records[0]["reached"], false);
    }
}
