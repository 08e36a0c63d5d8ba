//! lcorrelate at fleet scale: the ClickHouse pipeline of `contrib/clickhouse/` (schema.sql,
//! insert.sql, routes.sql) run on ClickHouse's own engine (chDB, in-process, through
//! `contrib/clickhouse/chdb_routes.py`), and lcorrelate's answer on the rows it writes is its
//! answer on the raw lines: the same links, ranks, verdicts and figures, and the same exit
//! status. On a simulated fleet with every odd record lcorrelate reads (silent hops, traces
//! that gave up, "hops":[], split loss, trace-only records, malformed ones, other kinds, IPv6)
//! and a time window; and on real `ludp --flows 8 --trace` output from a leaf-spine lab with
//! loss on one spine link and a spine that never answers a trace.
//!
//! chDB comes from the Python package registry into target/venv (`.ci/run` installs it);
//! without it the tests fail with one line saying so.

mod common;

use common::lab::*;
use common::temp::TempDir;
use lopa::lcorrelate::sim::{simulate_into, Scenario, Topology};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const LCORRELATE: &str = env!("CARGO_BIN_EXE_lcorrelate");
const LUDP: &str = env!("CARGO_BIN_EXE_ludp");

/// The venv's Python with chdb, as `.ci/run` installs it.
fn chdb_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import chdb"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "chdb is missing from {}: run .ci/run (it installs chdb from the Python package registry)",
        python.display()
    );
    python
}

/// The pipeline over `files`, for [since, until): its output lines.
fn clickhouse_routes(files: &[&Path], window: Option<(&str, &str)>) -> String {
    let mut cmd = Command::new(chdb_python());
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/clickhouse/chdb_routes.py"
    ));
    if let Some((since, until)) = window {
        cmd.args(["--since", since, "--until", until]);
    }
    let out = cmd.args(files).output().expect("run chdb_routes.py");
    assert!(
        out.status.success(),
        "chdb_routes.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// lcorrelate over `input` with `args`: its exit status and its records without `ts` (the
/// time of the run).
fn lcorrelate(input: &Path, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let out = Command::new(LCORRELATE)
        .args(args)
        .arg(input)
        .output()
        .expect("run lcorrelate");
    let text = String::from_utf8(out.stdout).unwrap();
    let records = text
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v.as_object_mut().unwrap().remove("ts");
            v
        })
        .collect();
    (out.status.code(), records)
}

/// lcorrelate says the same on the aggregated rows as on the raw lines.
fn assert_same_answer(raw: &Path, aggregated: &Path, args: &[&str]) -> Vec<Value> {
    let (raw_status, raw_links) = lcorrelate(raw, args);
    let (agg_status, agg_links) = lcorrelate(aggregated, args);
    assert!(
        !raw_links.is_empty(),
        "lcorrelate wrote nothing on {}",
        raw.display()
    );
    assert_eq!(
        raw_links.len(),
        agg_links.len(),
        "{raw_links:#?}\n{agg_links:#?}"
    );
    for (r, a) in raw_links.iter().zip(&agg_links) {
        assert_eq!(r, a, "raw lines and ClickHouse's rows disagree");
    }
    assert_eq!(raw_status, agg_status);
    raw_links
}

/// Every line of the pipeline's output is a path record as schemas/path.schema.json says.
fn assert_path_records(text: &str) -> Vec<Value> {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/path.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    let mut schemas = boon::Schemas::new();
    let loc = schema_path.to_str().unwrap();
    compiler.add_resource(loc, schema).unwrap();
    let idx = compiler.compile(loc, &mut schemas).unwrap();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            schemas
                .validate(&v, idx)
                .unwrap_or_else(|e| panic!("{l}: {e:#}"));
            v
        })
        .collect()
}

/// Sums of a member over the path records of `lines` (absent counts 0).
fn total(records: &[Value], member: &str) -> u64 {
    records
        .iter()
        .filter(|r| r["type"] == "path")
        .filter_map(|r| r[member].as_u64())
        .sum()
}

/// Lines of every kind lcorrelate reads apart: a route with a silent hop, one flow's loss
/// split by direction on some records and not on others, trace-only records, traces that
/// gave up (with silent TTLs up to the maximum), a trace where nothing answered, the same
/// route under another protocol, IPv6, lines it skips as malformed (ClickHouse must leave
/// them out too) and a record of another kind. (No half split, lost_fwd without lost_rev:
/// lcorrelate before direction-split loss read such a line as unsplit, lcorrelate after it
/// skips it, as routes.sql does.)
const ODD_LINES: &str = r#"{"type":"path","tool":"ludp","ts":"2026-11-22T10:30:00.000000001Z","src":"10.9.0.1","dst":"10.9.9.1","proto":"udp","sport":50000,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.1","rtt_ms":0.1},{"ttl":2},{"ttl":3,"addr":"10.9.3.1"},{"ttl":4,"addr":"10.9.9.1"}],"reached":true,"sent":100,"lost":9}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:31:00.000000001Z","src":"10.9.0.1","dst":"10.9.9.1","proto":"udp","sport":50000,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.1","rtt_ms":0.2},{"ttl":2},{"ttl":3,"addr":"10.9.3.1","addrs":["10.9.3.1","10.9.3.2"]},{"ttl":4,"addr":"10.9.9.1"}],"reached":true,"sent":100,"lost":11,"lost_fwd":10,"lost_rev":1}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:32:00.000000001Z","src":"10.9.0.1","dst":"10.9.9.1","proto":"udp","sport":50000,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.1"},{"ttl":2},{"ttl":3,"addr":"10.9.3.1"},{"ttl":4,"addr":"10.9.9.1"}],"reached":true,"sent":50,"lost":6,"lost_fwd":4,"lost_rev":2}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:33:00.000000001Z","src":"10.9.0.1","dst":"10.9.9.1","proto":"udp","sport":50000,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.1"},{"ttl":2},{"ttl":3,"addr":"10.9.3.1"},{"ttl":4,"addr":"10.9.9.1"}],"reached":true}
{"type":"path","tool":"ltcp","ts":"2026-11-22T10:34:00.000000001Z","src":"10.9.0.1","dst":"10.9.9.1","proto":"tcp","sport":50000,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.1"},{"ttl":2},{"ttl":3,"addr":"10.9.3.1"},{"ttl":4,"addr":"10.9.9.1"}],"reached":true,"sent":30,"lost":0}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:35:00.000000001Z","src":"10.9.0.2","dst":"10.9.9.1","proto":"udp","sport":50001,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.2"},{"ttl":2,"addr":"10.9.2.2"},{"ttl":3},{"ttl":4},{"ttl":5}],"reached":false,"sent":20,"lost":20}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:36:00.000000001Z","src":"10.9.0.2","dst":"10.9.9.1","proto":"udp","sport":50001,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.2"},{"ttl":2,"addr":"10.9.2.2"},{"ttl":3},{"ttl":4},{"ttl":5}],"reached":false,"sent":20,"lost":19}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:37:00.000000001Z","src":"10.9.0.2","dst":"10.9.9.1","proto":"udp","sport":50001,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.2"},{"ttl":2,"addr":"10.9.2.2"},{"ttl":3,"addr":"10.9.3.1"},{"ttl":4,"addr":"10.9.9.1"}],"reached":true,"sent":20,"lost":0}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:38:00.000000001Z","src":"10.9.0.3","dst":"10.9.9.1","proto":"udp","sport":50002,"dport":8081,"hops":[],"reached":false,"sent":10,"lost":10}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:39:00.000000001Z","src":"10.9.0.3","dst":"10.9.9.1","proto":"udp","sport":50003,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.3"}],"reached":false}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:40:00.000000001Z","src":"fd00:9::1","dst":"fd00:9::9","proto":"udp","sport":50004,"dport":8081,"hops":[{"ttl":1,"addr":"fd00:9:1::1"},{"ttl":2,"addr":"fd00:9::9"}],"reached":true,"sent":40,"lost":4}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:41:00.000000001Z","src":"fd00:9::1","dst":"fd00:9::9","proto":"udp","sport":50004,"dport":8081,"hops":[{"ttl":1,"addr":"fd00:9:1::1"},{"ttl":2,"addr":"fd00:9::9"}],"reached":true,"sent":40,"lost":2}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:42:00.000000001Z","src":"10.9.0.1","dst":"10.9.9.1","proto":"udp","sport":50000,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.1"}],"reached":true,"sent":5,"lost":6}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:44:00.000000001Z","src":"10.9.0.1","dst":"10.9.9.1","proto":"udp","sport":50000,"dport":8081,"hops":[{"ttl":1,"addr":""}],"reached":true,"sent":5,"lost":1}
{"type":"path","tool":"ludp","ts":"2026-11-22T10:45:00.000000001Z","dst":"10.9.9.1","proto":"udp","sport":50000,"dport":8081,"hops":[{"ttl":1,"addr":"10.9.1.1"}],"reached":true,"sent":5,"lost":1}
{"type":"reply","tool":"ludp","ts":"2026-11-22T10:46:00.000000001Z","src":"10.9.0.1","target":"10.9.9.1","addr":"10.9.9.1","seq":1,"rtt_ms":0.2}
"#;

/// A simulated fleet (leaf-spine, two faulty links, every flow traced in six rounds), the odd
/// lines above, and its rounds spread over two hours: the aggregation of the whole and of the
/// first hour each give lcorrelate's answer on the raw lines they cover.
#[test]
fn clickhouse_routes_of_a_simulated_fleet_give_lcorrelates_answer() {
    let mut sc = Scenario::new(
        Topology::LeafSpine {
            leaves: 8,
            spines: 4,
            hosts_per_leaf: 4,
        },
        2,
    );
    sc.rounds = 6;
    let mut sim = Vec::new();
    simulate_into(&sc, 7, &mut |l: &str| sim.push(l.to_string()));
    assert!(sim.len() > 1000, "{} simulated lines", sim.len());
    // The first half of the lines at 10:xx, the rest at 11:xx, so a window cuts the rounds.
    let half = sim.len() / 2;
    let mut lines = Vec::new();
    for (i, l) in sim.iter().enumerate() {
        let mut v: Value = serde_json::from_str(l).unwrap();
        let hour = if i < half { 10 } else { 11 };
        v["ts"] = format!("2026-11-22T{hour}:{:02}:00.000000000Z", i % 60).into();
        lines.push(v.to_string());
    }
    lines.extend(ODD_LINES.lines().map(String::from));
    let first_hour: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"ts\":\"2026-11-22T10:"))
        .collect();
    assert!(first_hour.len() > half && first_hour.len() < lines.len());

    let dir = TempDir::new("clickhouse-sim");
    let raw = dir.file("raw.jsonl", &(lines.join("\n") + "\n"));
    let raw_first_hour = dir.file(
        "raw-10h.jsonl",
        first_hour
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    );

    let whole = clickhouse_routes(&[&raw], None);
    let rows = assert_path_records(&whole);
    // Summed per flow and route: fewer rows, the same probes (the three malformed odd lines
    // and the reply left out).
    assert!(
        rows.len() * 3 < lines.len(),
        "{} rows of {} lines",
        rows.len(),
        lines.len()
    );
    let valid: Vec<Value> = lines[..lines.len() - 4]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for member in ["sent", "lost", "lost_fwd", "lost_rev"] {
        assert_eq!(total(&rows, member), total(&valid, member), "{member}");
    }
    // The split records of one flow became one row, its unsplit ones another.
    let flow: Vec<&Value> = rows
        .iter()
        .filter(|r| r["sport"] == 50000 && r["proto"] == "udp")
        .collect();
    assert_eq!(flow.len(), 2, "{flow:#?}");
    assert!(flow.iter().any(|r| r["lost_fwd"] == 14
        && r["lost_rev"] == 3
        && r["sent"] == 150
        && r["ts"] == "2026-11-22T10:32:00.000000001Z"));
    assert!(flow
        .iter()
        .any(|r| r["sent"] == 100 && r["lost"] == 9 && r.get("lost_fwd").is_none()));
    assert!(
        rows.iter()
            .any(|r| r["sport"] == 50003 && r.get("sent").is_none()),
        "a trace-only route stays without sent: {whole}"
    );
    eprintln!("{} lines into {} rows", lines.len(), rows.len());
    let aggregated = dir.file("routes.jsonl", &whole);
    let links = assert_same_answer(&raw, &aggregated, &[]);
    assert!(links.iter().any(|l| l["verdict"] == "faulty"), "{links:#?}");

    let first = clickhouse_routes(
        &[&raw],
        Some(("2026-11-22 10:00:00", "2026-11-22 11:00:00")),
    );
    let first_rows = assert_path_records(&first);
    let first_valid: Vec<Value> = valid
        .iter()
        .filter(|r| r["ts"].as_str().unwrap().starts_with("2026-11-22T10:"))
        .cloned()
        .collect();
    assert!(first_valid.len() < valid.len());
    for member in ["sent", "lost", "lost_fwd", "lost_rev"] {
        assert_eq!(
            total(&first_rows, member),
            total(&first_valid, member),
            "{member}"
        );
    }
    let aggregated_first = dir.file("routes-10h.jsonl", &first);
    let links_first = assert_same_answer(&raw_first_hour, &aggregated_first, &[]);
    assert_ne!(links, links_first, "the window made no difference");
}

/// Every router's interface addresses (the lab's routers answer from the inbound interface).
const ALIASES: &str = "\
leaf1 10.1.1.254 10.0.11.1 10.0.12.1
leaf2 10.2.1.254 10.0.21.1 10.0.22.1
spine1 10.0.11.2 10.0.21.2
spine2 10.0.12.2 10.0.22.2
";

/// Real path records: `ludp --flows 8 --sport … --trace` run three times each way, as a cron
/// job would, over a leaf-spine lab with 20 % loss on the probes from leaf1 into spine1 and a
/// spine2 that answers no trace (a silent hop on every route through it). The runs' records
/// of one flow sum into one row; lcorrelate (with the alias file, and without) says the same
/// on the rows as on the raw output of every run.
#[test]
fn clickhouse_routes_of_ludp_traces_in_a_lab_give_lcorrelates_answer() {
    require_root();
    chdb_python();
    let lab = LeafSpine::new("chq");
    let _reflectors: Vec<Background> = [&lab.h1, &lab.h2]
        .iter()
        .map(|ns| lreflect_service(ns, &["--rate-limit", "0", "--max-pps", "0"], 8081))
        .collect();
    // Probes only (TTL above the traces'), as in tests/correlate_e2e.rs, so a trace does not
    // lose a TTL's probes to the loss and show a silent hop by chance.
    lab.spine1.run(
        "nft 'add table inet chq; \
         add chain inet chq probes { type filter hook forward priority filter; policy accept; }; \
         add rule inet chq probes iifname \"l1\" udp dport 8081 ip ttl > 32 \
         numgen random mod 100 < 20 drop'",
    );
    lab.spine2.run(
        "nft 'add table inet chq; \
         add chain inet chq quiet { type filter hook output priority filter; policy accept; }; \
         add rule inet chq quiet icmp type time-exceeded drop'",
    );

    let dir = TempDir::new("clickhouse-lab");
    let mut files = Vec::new();
    for round in 0..3 {
        for (ns, target) in [(&lab.h1, "10.2.1.1"), (&lab.h2, "10.1.1.1")] {
            let out = ns
                .command(LUDP)
                .args([
                    "--flows",
                    "8",
                    "--sport",
                    "41000",
                    "--trace",
                    "-c",
                    "30",
                    "-i",
                    "0.002",
                    "-W",
                    "0.5",
                    "--max-ttl",
                    "6",
                    "--tag",
                    "host=lab",
                    target,
                ])
                .stdin(Stdio::null())
                .output()
                .expect("run ludp");
            assert_eq!(
                out.status.code(),
                Some(0),
                "ludp in {}: {}",
                ns.name,
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            files.push(dir.file(&format!("{}-{round}.jsonl", ns.name), &text));
        }
    }
    let raw_text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let raw_records: Vec<Value> = raw_text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<&Value> = raw_records.iter().filter(|r| r["type"] == "path").collect();
    assert_eq!(paths.len(), 48, "8 flows, 2 directions, 3 runs");
    assert!(
        paths.iter().any(|p| p["hops"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.get("addr").is_none())),
        "spine2's silent hop"
    );
    assert!(paths.iter().any(|p| p["lost"].as_u64() > Some(0)));
    let raw = dir.file("raw.jsonl", &raw_text);

    let file_refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let text = clickhouse_routes(&file_refs, None);
    let rows = assert_path_records(&text);
    // One row per flow, unless a flow's path changed between runs (ECMP keeps it).
    assert!(rows.len() <= 24 && rows.len() >= 16, "{text}");
    assert_eq!(total(&rows, "sent"), total(&raw_records, "sent"));
    assert_eq!(total(&rows, "lost"), total(&raw_records, "lost"));
    assert_eq!(total(&rows, "sent"), 48 * 30);
    eprintln!("{} path records into {} rows", paths.len(), rows.len());
    let aggregated = dir.file("routes.jsonl", &text);

    let alias = dir.file("routers.txt", ALIASES);
    let alias = alias.to_str().unwrap();
    let links = assert_same_answer(&raw, &aggregated, &["--alias", alias]);
    let first = &links[0];
    let names = |l: &Value| -> String {
        match l["group"].as_array() {
            Some(g) => g
                .iter()
                .map(|e| format!("{}>{} ", e["from"], e["to"]))
                .collect(),
            None => format!("{}>{}", l["from"], l["to"]),
        }
    };
    assert!(
        names(first).contains("\"leaf1\">\"spine1\""),
        "the lossy link first: {links:#?}"
    );
    assert_eq!(first["verdict"], "faulty");
    assert_same_answer(&raw, &aggregated, &[]);
}

/// The cluster's table has exactly the columns of the single server's (schema-cluster.sql is
/// not run by a test: it needs a cluster and its keeper), so routes.sql reads both alike.
#[test]
fn the_cluster_schema_has_the_single_servers_columns() {
    let read = |name: &str| {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("contrib/clickhouse")
                .join(name),
        )
        .unwrap()
    };
    let columns = |sql: &str| -> String {
        let start = sql.find("\n(\n").expect("a column list") + 3;
        let end = start + sql[start..].find("\n)\n").expect("its end");
        sql[start..end].to_string()
    };
    let single = read("schema.sql");
    let cluster = read("schema-cluster.sql");
    assert!(columns(&single).contains("hops Array(Tuple(ttl UInt8, addr Nullable(String)"));
    assert_eq!(columns(&single), columns(&cluster));
    let tail = |sql: &str| sql[sql.find("PARTITION BY").unwrap()..].to_string();
    assert!(tail(&cluster).starts_with(&tail(&single).trim_end().trim_end_matches(';').to_string()));
}
