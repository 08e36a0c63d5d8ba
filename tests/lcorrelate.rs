//! `lcorrelate` end to end on files and stdin: mixed logs, malformed lines, `--strict`,
//! gzip, aliases, `--top`, `--format dot`, and its records against `schemas/link.schema.json`.
//!
//! The namespace test of the issue (ludp --trace over a leaf-spine lab with nftables loss)
//! needs path tracing, which does not exist yet: it is not here.

mod common;

use common::temp::TempDir;
use lopa::lcorrelate::sim::{simulate, Scenario, Topology};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const LCORRELATE: &str = env!("CARGO_BIN_EXE_lcorrelate");

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(LCORRELATE)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lcorrelate");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn records(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A small leaf-spine run with one faulty link: its lines and the faulty link.
fn one_fault(seed: u64) -> (String, (String, String)) {
    let sc = Scenario::new(
        Topology::LeafSpine {
            leaves: 4,
            spines: 2,
            hosts_per_leaf: 4,
        },
        1,
    );
    let run = simulate(&sc, seed);
    let (a, b, _) = run.faults[0].clone();
    (run.lines.join("\n") + "\n", (a, b))
}

fn names_link(v: &Value, link: &(String, String)) -> bool {
    let is = |e: &Value| e["from"] == link.0.as_str() && e["to"] == link.1.as_str();
    is(v) || v["group"].as_array().is_some_and(|g| g.iter().any(is))
}

#[test]
fn mixed_logs_on_stdin_name_the_faulty_link_first() {
    let (lines, fault) = one_fault(5);
    let reply = r#"{"type":"reply","tool":"lping","ts":"2026-11-22T10:00:00.000000000Z","target":"h","addr":"10.0.0.2","seq":1,"rtt_ms":0.2}"#;
    let summary = r#"{"type":"summary","tool":"ludp","ts":"2026-11-22T10:00:00.000000000Z","target":"h","addr":"10.0.0.2","window":"total","sent":3,"received":3,"loss_pct":0.0}"#;
    let mixed = format!("{reply}\n{lines}{summary}\n");
    let out = run(&[], Some(mixed.as_bytes()));
    assert_eq!(stderr(&out), "", "other record types are not errors");
    assert_eq!(out.status.code(), Some(1), "a faulty link: exit 1");
    let recs = records(&out);
    assert!(names_link(&recs[0], &fault), "{} vs {fault:?}", recs[0]);
    assert_eq!(recs[0]["verdict"], "faulty");
    assert_eq!(recs[0]["rank"], 1);
    let faulty = recs.iter().filter(|r| r["verdict"] == "faulty").count();
    assert_eq!(faulty, 1, "{recs:?}");
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r["type"], "link");
        assert_eq!(r["tool"], "lcorrelate");
        assert_eq!(r["rank"], i + 1);
    }
    // "-" is stdin too, and --top cuts the list.
    let out = run(&["--top", "1", "-"], Some(mixed.as_bytes()));
    assert_eq!(records(&out).len(), 1);
}

#[test]
fn malformed_lines_are_reported_with_file_and_line_and_skipped() {
    let dir = TempDir::new("lcorrelate-bad");
    let (lines, fault) = one_fault(6);
    let mut text = String::from("{\"type\":\"path\",\"src\":\"a\"}\n");
    text.push_str(&lines);
    text.push_str("not json\n");
    let n = text.lines().count();
    let f = dir.file("paths.jsonl", text.as_bytes());
    let name = f.to_str().unwrap();
    let out = run(&[name], None);
    let err = stderr(&out);
    let err_lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        err_lines,
        [
            format!("lcorrelate: {name}:1: path record without \"dst\""),
            format!("lcorrelate: {name}:{n}: not a JSON record: expected ident at column 2"),
            "lcorrelate: skipped 2 malformed lines".to_string(),
        ],
        "{err}"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(names_link(&records(&out)[0], &fault));

    let out = run(&["--strict", name], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!("lcorrelate: {name}:1: path record without \"dst\" (--strict)\n")
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn gzip_files_and_plain_files_read_alike() {
    let dir = TempDir::new("lcorrelate-gz");
    let (lines, _) = one_fault(7);
    let (a, b) = lines.split_at(lines.len() / 2);
    let cut = a.rfind('\n').unwrap() + 1;
    let (a, b) = (&lines[..cut], format!("{}{b}", &a[cut..]));
    let plain = dir.file("a.jsonl", a.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b.as_bytes()).unwrap();
    let gz = dir.file("b.jsonl.gz", gz.finish().unwrap());
    let both = run(&[plain.to_str().unwrap(), gz.to_str().unwrap()], None);
    assert_eq!(stderr(&both), "");
    let all = run(&[], Some(lines.as_bytes()));
    let strip = |v: Vec<Value>| -> Vec<Value> {
        v.into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("ts");
                r
            })
            .collect()
    };
    assert_eq!(strip(records(&both)), strip(records(&all)));
}

#[test]
fn aliases_merge_interfaces_and_dot_draws_the_graph() {
    let dir = TempDir::new("lcorrelate-alias");
    let path = |hop: &str, lost: u64| {
        format!(
            "{{\"type\":\"path\",\"src\":\"10.1.0.1\",\"dst\":\"10.1.0.2\",\"hops\":[{{\"ttl\":1,\"addr\":\"{hop}\"}},{{\"ttl\":2}},{{\"ttl\":3,\"addr\":\"10.1.0.2\"}}],\"reached\":true,\"sent\":1000,\"lost\":{lost}}}\n"
        )
    };
    let text = path("10.0.0.1", 50) + &path("10.0.9.1", 50);
    let f = dir.file("p.jsonl", text.as_bytes());
    let alias = dir.file("aliases", b"# router interfaces\nleaf1 10.0.0.1 10.0.9.1\n");
    let out = run(
        &["--alias", alias.to_str().unwrap(), f.to_str().unwrap()],
        None,
    );
    assert_eq!(stderr(&out), "");
    let recs = records(&out);
    assert_eq!(recs.len(), 1, "one route, one group: {recs:?}");
    let group: Vec<(String, String)> = recs[0]["group"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    let anon = "?leaf1>10.1.0.2#1".to_string();
    assert_eq!(
        group,
        [
            ("10.1.0.1".into(), "leaf1".into()),
            ("leaf1".into(), anon.clone()),
            (anon, "10.1.0.2".into())
        ]
    );
    assert_eq!(
        (recs[0]["sent"].as_u64(), recs[0]["lost"].as_u64()),
        (Some(2000), Some(100))
    );

    let out = run(
        &[
            "--alias",
            alias.to_str().unwrap(),
            "--format",
            "dot",
            f.to_str().unwrap(),
        ],
        None,
    );
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph {"), "{dot}");
    assert!(dot.contains("label=\"leaf1\""), "{dot}");
    assert_eq!(
        dot.matches("color=\"#d62728\"").count(),
        3,
        "the faulty group in red: {dot}"
    );

    let bad = dir.file("bad-aliases", b"leaf1\n");
    let out = run(
        &["--alias", bad.to_str().unwrap(), f.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("lcorrelate: ") && err.contains(":1: 'leaf1' has no address"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    // An address that is no IP address would never match a hop: an error, with file and line.
    for bad in ["10.9.1.l", "999.1.1.1"] {
        let f2 = dir.file(
            "typo-aliases",
            format!("leaf1 10.0.0.1\nleaf2 {bad}\n").as_bytes(),
        );
        let out = run(
            &["--alias", f2.to_str().unwrap(), f.to_str().unwrap()],
            None,
        );
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            stderr(&out),
            format!(
                "lcorrelate: {}:2: '{bad}' is not an IP address: write ROUTER ADDR [ADDR...]\n",
                f2.display()
            )
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn link_records_match_their_schema() {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/link.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    let mut schemas = boon::Schemas::new();
    let loc = schema_path.to_str().unwrap();
    compiler.add_resource(loc, schema).unwrap();
    let idx = compiler.compile(loc, &mut schemas).unwrap();
    let (lines, _) = one_fault(8);
    // An inseparable group too: one route of two links.
    let group = "{\"type\":\"path\",\"src\":\"x\",\"dst\":\"y\",\"hops\":[{\"ttl\":1,\"addr\":\"m\"}],\"sent\":10,\"lost\":1}\n";
    let out = run(&[], Some(format!("{lines}{group}").as_bytes()));
    let recs = records(&out);
    assert!(recs.iter().any(|r| r.get("group").is_some()));
    for r in &recs {
        schemas
            .validate(r, idx)
            .unwrap_or_else(|e| panic!("{r}: {e:#}"));
    }
}

#[test]
fn usage_errors_and_missing_files_are_one_line() {
    let out = run(&["/nonexistent/paths.jsonl"], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "lcorrelate: cannot open /nonexistent/paths.jsonl: No such file or directory (os error 2)\n"
    );
    let out = run(&["--method", "magic"], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // --top 0 would write nothing, yet exit 1 for a faulty link.
    let out = run(&["--top", "0"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must be at least 1"),
        "{}",
        stderr(&out)
    );
    // The range is [0, 100), and the message says so.
    for bad in ["100", "-1", "250", "nan", "x"] {
        let out = run(&[&format!("--min-loss={bad}")], Some(b""));
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains(&format!(
                "'{bad}' is not a percentage in [0, 100): at least 0 and below 100"
            )),
            "{bad}: {}",
            stderr(&out)
        );
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
    // 0 is a healthy link that loses nothing; 99.9 is in range.
    let (lines, fault) = one_fault(9);
    for ok in ["0", "99.9"] {
        let out = run(&["--min-loss", ok], Some(lines.as_bytes()));
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{ok}: {}",
            stderr(&out)
        );
        if ok == "0" {
            assert!(names_link(&records(&out)[0], &fault));
        }
    }
    let out = run(&["--help"], None);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("\nExamples:\n") && help.contains("Exit status:"),
        "{help}"
    );
}

#[test]
fn no_path_records_at_all_is_an_error_not_a_healthy_network() {
    // Nothing printed and exit 0 would read as "no link faulty" to a cron job.
    let dir = TempDir::new("lcorrelate-none");
    let hint = "they come from ludp, ltcp or lping with --trace";
    let twamp = r#"{"type":"reply","tool":"ltwamp","ts":"2026-11-22T10:00:00.000000000Z","target":"r","addr":"10.0.0.2","seq":1,"rtt_ms":0.2,"fwd_ms":0.1,"rev_ms":0.1}"#;
    let only_twamp = dir.file("twamp.jsonl", format!("{twamp}\n{twamp}\n").as_bytes());
    let garbage = dir.file("garbage.jsonl", b"nope\n{\"type\":\n");
    let empty_gz = {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        dir.file("empty.jsonl.gz", gz.finish().unwrap())
    };
    let cases: Vec<(Vec<&str>, &[u8], String)> = vec![
        (
            vec![],
            b"",
            format!("lcorrelate: no path records read: {hint}\n"),
        ),
        (
            vec!["-"],
            b"\n  \n",
            format!("lcorrelate: no path records read: {hint}\n"),
        ),
        (
            vec!["/dev/null"],
            b"",
            format!("lcorrelate: no path records read: {hint}\n"),
        ),
        (
            vec![empty_gz.to_str().unwrap()],
            b"",
            format!("lcorrelate: no path records read: {hint}\n"),
        ),
        (
            vec![only_twamp.to_str().unwrap()],
            b"",
            format!("lcorrelate: no path records read (2 records of other types): {hint}\n"),
        ),
    ];
    for (args, stdin, want) in cases {
        let out = run(&args, Some(stdin));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(stderr(&out), want, "{args:?}");
    }
    // Only malformed lines: each reported, then the count, then the same last line.
    let out = run(&[garbage.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let last = err.lines().last().unwrap();
    assert_eq!(
        last,
        format!("lcorrelate: no path records read: {hint}"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 4, "{err}");
    // Path records without probes are still path records: no links scored, nothing faulty.
    let unprobed =
        r#"{"type":"path","src":"a","dst":"b","hops":[{"ttl":1,"addr":"r"}],"reached":true}"#;
    let out = run(&[], Some(unprobed.as_bytes()));
    assert_eq!((out.status.code(), stderr(&out)), (Some(0), String::new()));
}

/// The review's case: one client, its first hop, a 4x4x4 mesh (stages a, b, c of four
/// routers, every router linked to all four of the next stage) and one server; 5000 flows,
/// each over its own ECMP path, 100 probes each; only b2 -> c3 (here the link
/// `10.0.2.2>10.0.3.3`) loses, 10 %. Every flow crosses the client's first hop, most of them
/// cleanly. Returns the lines and the lossy link.
fn mesh(seed: u64) -> (String, (String, String)) {
    let mut rng = lopa::lcorrelate::sim::Rng::new(seed);
    let (client, gw, server) = ("10.9.0.1", "10.0.0.1", "10.9.9.1");
    let lossy = ("10.0.2.2".to_string(), "10.0.3.3".to_string());
    let mut text = String::new();
    for flow in 0..5000u32 {
        let hop = |stage: u32, i: u64| format!("10.0.{stage}.{}", i + 1);
        let h = rng.next_u64();
        let nodes = [
            client.to_string(),
            gw.to_string(),
            hop(1, h % 4),
            hop(2, (h >> 8) % 4),
            hop(3, (h >> 16) % 4),
            server.to_string(),
        ];
        let through = nodes
            .windows(2)
            .any(|w| (w[0].as_str(), w[1].as_str()) == (lossy.0.as_str(), lossy.1.as_str()));
        let lost = rng.binomial(100, if through { 0.1 } else { 0.0 });
        let hops: Vec<String> = nodes[1..]
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{{\"ttl\":{},\"addr\":\"{a}\"}}", i + 1))
            .collect();
        text.push_str(&format!(
            "{{\"type\":\"path\",\"tool\":\"ludp\",\"src\":\"{client}\",\"dst\":\"{server}\",\"sport\":{},\"dport\":8081,\"hops\":[{}],\"reached\":true,\"sent\":100,\"lost\":{lost}}}\n",
            33434 + flow,
            hops.join(",")
        ));
    }
    (text, lossy)
}

#[test]
fn every_method_finds_one_lossy_ecmp_branch_and_calls_only_it_faulty() {
    let (lines, lossy) = mesh(1);
    for method in ["flock", "vote", "diff"] {
        let out = run(&["--method", method], Some(lines.as_bytes()));
        let recs = records(&out);
        let text: Vec<String> = recs.iter().take(5).map(Value::to_string).collect();
        assert!(
            names_link(&recs[0], &lossy),
            "{method}: the lossy link first:\n{}",
            text.join("\n")
        );
        assert_eq!(recs[0]["verdict"], "faulty", "{method}: {}", recs[0]);
        let loss = recs[0]["loss_est"].as_f64().unwrap();
        assert!((0.08..0.12).contains(&loss), "{method}: {}", recs[0]);
        let faulty: Vec<&Value> = recs.iter().filter(|r| r["verdict"] == "faulty").collect();
        assert_eq!(faulty.len(), 1, "{method}: {faulty:?}");
        assert_eq!(out.status.code(), Some(1), "{method}");
    }
}

#[test]
fn a_verdict_agrees_with_the_loss_estimate_and_min_loss() {
    // The benchmark's data (background loss everywhere, a few faults): whatever a method
    // ranks, it calls faulty no link whose estimated loss is within --min-loss.
    let sc = Scenario::new(
        Topology::LeafSpine {
            leaves: 4,
            spines: 2,
            hosts_per_leaf: 4,
        },
        2,
    );
    let mut lines = simulate(&sc, 21).lines.join("\n") + "\n";
    lines.push_str(&mesh(2).0);
    for min_loss in ["0.05", "1", "20"] {
        for method in ["flock", "vote", "diff"] {
            let out = run(
                &["--method", method, "--min-loss", min_loss],
                Some(lines.as_bytes()),
            );
            let cap = min_loss.parse::<f64>().unwrap() / 100.0;
            let recs = records(&out);
            assert!(
                recs.len() > 50,
                "{method} {min_loss}: {} {}",
                recs.len(),
                String::from_utf8_lossy(&out.stderr)
            );
            for r in &recs {
                if r["verdict"] == "faulty" {
                    assert!(
                        r["loss_est"].as_f64().unwrap() > cap,
                        "{method} --min-loss {min_loss}: {r}"
                    );
                }
            }
            let any = recs.iter().any(|r| r["verdict"] == "faulty");
            assert_eq!(out.status.code(), Some(any as i32), "{method} {min_loss}");
        }
    }
}

#[test]
fn a_trace_where_nothing_answered_invents_no_direct_link() {
    // The mesh, plus flows from the client whose traces saw nothing ("hops":[]) and lost 5 %.
    let (mut lines, lossy) = mesh(3);
    let blind = r#"{"type":"path","tool":"ludp","src":"10.9.0.1","dst":"10.9.9.1","hops":[],"reached":false,"sent":100,"lost":5}"#;
    for _ in 0..20 {
        lines.push_str(blind);
        lines.push('\n');
    }
    let out = run(&[], Some(lines.as_bytes()));
    assert_eq!(stderr(&out), "");
    let recs = records(&out);
    assert!(names_link(&recs[0], &lossy), "{}", recs[0]);
    let direct = ("10.9.0.1".to_string(), "10.9.9.1".to_string());
    assert!(
        !recs.iter().any(|r| names_link(r, &direct)),
        "a link nobody saw: {recs:?}"
    );
    // The blind flows' loss is on an unknown stretch, named as such.
    let anon = ("10.9.0.1".to_string(), "?10.9.0.1>10.9.9.1#1".to_string());
    let stretch = recs.iter().find(|r| names_link(r, &anon)).unwrap();
    assert_eq!(
        (stretch["sent"].as_u64(), stretch["lost"].as_u64()),
        (Some(2000), Some(100))
    );
}

#[test]
fn a_truncated_json_line_is_placed_by_file_line_and_column_only() {
    // A log cut mid-record (disk full, a copy interrupted): serde's own "at line 2 column 0"
    // counted the line end as a line of its own and contradicted FILE:LINE.
    let dir = TempDir::new("lcorrelate-cut");
    let (lines, fault) = one_fault(10);
    let first = lines.lines().next().unwrap();
    let cut = &first[..first.len() / 2];
    for end in ["\n", ""] {
        let f = dir.file("cut.jsonl", format!("{lines}{cut}{end}").as_bytes());
        let name = f.to_str().unwrap();
        let n = lines.lines().count() + 1;
        let out = run(&[name], None);
        let err = stderr(&out);
        let first_line = err.lines().next().unwrap();
        assert!(
            first_line.starts_with(&format!(
                "lcorrelate: {name}:{n}: not a JSON record: EOF while parsing"
            )),
            "{err}"
        );
        assert!(
            first_line.ends_with(&format!(" at column {}", cut.len())),
            "{err}"
        );
        assert!(!err.contains(" at line "), "{err}");
        assert_eq!(out.status.code(), Some(1));
        assert!(names_link(&records(&out)[0], &fault));
    }
}

#[test]
fn a_truncated_gzip_file_keeps_the_records_before_the_cut() {
    let dir = TempDir::new("lcorrelate-gzcut");
    let (lines, fault) = one_fault(6);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(lines.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let cut = dir.file("cut.jsonl.gz", &gz[..gz.len() * 2 / 3]);
    let name = cut.to_str().unwrap();
    // The whole lines the cut stream still holds, as any gzip reader gives them.
    let mut held = Vec::new();
    let _ = std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(&gz[..gz.len() * 2 / 3]),
        &mut held,
    );
    let whole = held.iter().filter(|&&b| b == b'\n').count();
    assert!(whole > 10 && whole < lines.lines().count(), "{whole}");
    let before: String = lines
        .lines()
        .take(whole)
        .map(|l| format!("{l}\n"))
        .collect();

    // The records before the cut count, as if the file ended there, and the run goes on to
    // the next file: the cut is reported like a malformed line.
    let rest = dir.file(
        "rest.jsonl",
        lines
            .lines()
            .skip(whole)
            .collect::<Vec<_>>()
            .join("\n")
            .as_bytes(),
    );
    let out = run(&[name, rest.to_str().unwrap()], None);
    assert_eq!(
        stderr(&out),
        format!(
            "lcorrelate: {name}: truncated gzip stream after line {whole}\nlcorrelate: skipped 1 malformed line\n"
        )
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(names_link(&records(&out)[0], &fault));
    let strip = |v: Vec<Value>| -> Vec<Value> {
        v.into_iter()
            .map(|mut r| {
                r.as_object_mut().unwrap().remove("ts");
                r
            })
            .collect()
    };
    let alone = run(&[name], None);
    let plain = run(&[], Some(before.as_bytes()));
    assert_eq!(strip(records(&alone)), strip(records(&plain)));
    assert!(!records(&alone).is_empty());

    // --strict: the cut is fatal, as a malformed line is.
    let out = run(&["--strict", name], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!("lcorrelate: {name}: truncated gzip stream after line {whole} (--strict)\n")
    );
    assert!(out.stdout.is_empty());
}

/// Run by hand with no file and a terminal on stdin, lcorrelate says it is reading standard
/// input (a silent wait looks like a hang); piped input gets no such line (issue 17).
#[test]
fn on_a_terminal_without_files_it_says_it_reads_stdin() {
    // A pseudo-terminal on stdin, then one Ctrl-D (one is enough: a second read of the
    // terminal would wait for another): no records, so status 2 after the note.
    let script = "import os,pty,subprocess,sys\n\
        m,s=pty.openpty()\n\
        p=subprocess.Popen([sys.argv[1]],stdin=s,stdout=subprocess.PIPE,stderr=subprocess.PIPE)\n\
        os.close(s); os.write(m,b'\\x04')\n\
        out,err=p.communicate(timeout=10)\n\
        sys.stdout.write(str(p.returncode)+'\\n'+err.decode())\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_lcorrelate")])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("2"), "{text}");
    assert_eq!(
        lines.next(),
        Some("lcorrelate: reading path records from standard input (end with Ctrl-D)"),
        "{text}"
    );
    let piped = run(&[], Some(b""));
    assert!(
        !stderr(&piped).contains("reading path records"),
        "{}",
        stderr(&piped)
    );
}
