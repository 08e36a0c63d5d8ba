//! End to end on real input as meshes produce it: a leaf-spine of namespaces (3 leaves,
//! 2 spines, one host per leaf), no alias file, routers answering from the interface a probe
//! arrived on or (Linux's default) toward the source, loss on one spine->leaf link for every
//! packet or for the answers only, a spine that never answers traces, and the round-trip
//! tools' `--trace` records from every host to every other piped into `lcorrelate`. Needs
//! root (CI runs as root).

mod common;

use common::lab::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// lreflect on port 8081 with no rate limit, once bound (the lab's [`lreflect_service`]).
fn lreflect(ns: &Netns) -> Background {
    lreflect_service(
        ns,
        &["--rate-limit", "0", "--max-pps", "0", "--stats-every", "0"],
        8081,
    )
}

/// Drops `pct` % of what spine `spine` forwards to leaf `leaf`; `answers_only`: only
/// lreflect's answers (UDP from port 8081), the probes pass.
fn loss_to_leaf(fabric: &Fabric, spine: usize, leaf: usize, pct: u32, answers_only: bool) {
    let only = if answers_only { "udp sport 8081 " } else { "" };
    fabric.spines[spine - 1].run(&format!(
        "nft 'add table inet e2e; \
         add chain inet e2e loss {{ type filter hook forward priority filter; policy accept; }}; \
         add rule inet e2e loss oifname \"l{leaf}\" {only}numgen random mod 100 < {pct} drop'"
    ));
}

/// Drops `pct` % of what leaf `leaf` forwards to its host.
fn loss_to_host(fabric: &Fabric, leaf: usize, pct: u32) {
    fabric.leaves[leaf - 1].run(&format!(
        "nft 'add table inet e2e; \
         add chain inet e2e loss {{ type filter hook forward priority filter; policy accept; }}; \
         add rule inet e2e loss oifname \"eth0\" numgen random mod 100 < {pct} drop'"
    ));
}

/// Runs `tool args… TARGETS` on every host toward every other host at once; their outputs.
fn probe_all(fabric: &Fabric, tool: &str, args: &[&str]) -> Vec<String> {
    let n = fabric.hosts.len();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let ns = &fabric.hosts[i];
                let targets: Vec<String> = (1..=n)
                    .filter(|&m| m != i + 1)
                    .map(|m| format!("10.{m}.1.1"))
                    .collect();
                s.spawn(move || {
                    let out = ns
                        .command(tool)
                        .args(args)
                        .args(&targets)
                        .stdin(Stdio::null())
                        .output()
                        .expect("run the prober");
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    assert!(
                        matches!(out.status.code(), Some(0 | 1)),
                        "{tool} in {}: {stderr}",
                        ns.name
                    );
                    let text = String::from_utf8(out.stdout).unwrap();
                    let paths = text
                        .lines()
                        .filter(|l| l.contains("\"type\":\"path\""))
                        .count();
                    assert!(
                        paths > 0,
                        "{tool} in {} wrote no path record: {stderr}",
                        ns.name
                    );
                    text
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// lcorrelate over all outputs, no alias file: its exit code and link records.
fn correlate(outputs: &[String]) -> (Option<i32>, Vec<Value>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lcorrelate"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lcorrelate");
    {
        let mut stdin = child.stdin.take().unwrap();
        for o in outputs {
            stdin.write_all(o.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let mut text = String::from_utf8(out.stdout).unwrap();
    let links = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // A few records (lping's, one flow per target) are the whole story of a failure: with
    // the output, so that a failed run can be replayed.
    let paths: Vec<&str> = outputs
        .iter()
        .flat_map(|o| o.lines())
        .filter(|l| l.contains("\"type\":\"path\""))
        .collect();
    if paths.len() <= 24 {
        text.push_str("input:\n");
        for p in paths {
            text.push_str(p);
            text.push('\n');
        }
    }
    (out.status.code(), links, text)
}

/// The physical links a record names: its group's members, or its own ends.
fn members(link: &Value) -> Vec<(String, String)> {
    let pair = |e: &Value| {
        (
            e["from"].as_str().unwrap().to_string(),
            e["to"].as_str().unwrap().to_string(),
        )
    };
    match link["group"].as_array() {
        Some(group) => group.iter().map(pair).collect(),
        None => vec![pair(link)],
    }
}

/// The router (or host) an address of the fabric belongs to: "h2", "l2", "s1".
fn owner(addr: &str) -> String {
    let o: Vec<u32> = addr.split('.').map(|x| x.parse().unwrap_or(0)).collect();
    match o.as_slice() {
        [10, 0, ls, 1] => format!("l{}", ls / 10),
        [10, 0, ls, 2] => format!("s{}", ls % 10),
        [10, l, 1, 254] => format!("l{l}"),
        [10, l, 1, 1] => format!("h{l}"),
        _ => addr.to_string(),
    }
}

/// Whether a record names the physical link `from` -> `to` (router names as [`owner`]).
fn names(link: &Value, from: &str, to: &str) -> bool {
    members(link)
        .iter()
        .any(|(a, b)| owner(a) == from && owner(b) == to)
}

/// The first record names `from` -> `to` and is faulty, and no other record is.
fn assert_found_alone(code: Option<i32>, links: &[Value], text: &str, from: &str, to: &str) {
    assert_eq!(code, Some(1), "a link is faulty:\n{text}");
    assert!(names(&links[0], from, to), "{from}>{to} first:\n{text}");
    assert_eq!(links[0]["verdict"], "faulty", "{text}");
    for l in &links[1..] {
        assert_eq!(l["verdict"], "ok", "only {from}>{to} is faulty:\n{text}");
    }
}

const LUDP: &[&str] = &[
    "--flows", "16", "--trace", "-c", "100", "-i", "0.002", "-W", "0.5", "-q",
];

#[test]
fn arrival_addresses_name_the_lossy_spine_to_leaf_link() {
    require_root();
    let fabric = Fabric::new("cf-arr", 3, 2, true);
    let _r: Vec<Background> = fabric.hosts.iter().map(lreflect).collect();
    loss_to_leaf(&fabric, 1, 2, 8, false);
    let outputs = probe_all(&fabric, env!("CARGO_BIN_EXE_ludp"), LUDP);
    let (code, links, text) = correlate(&outputs);
    assert_found_alone(code, &links, &text, "s1", "l2");
    // Named by leaf 2's arrival address from spine 1 (beside the uplink leaf 2 -> spine 1
    // when the answers retraced their probes' spine, as Linux's symmetric ECMP hash makes
    // them: then no round trip tells the two directions apart).
    assert!(
        members(&links[0]).iter().any(|(_, to)| to == "10.0.21.1"),
        "{text}"
    );
}

#[test]
fn linux_default_addressing_names_the_lossy_spine_to_leaf_link() {
    require_root();
    let fabric = Fabric::new("cf-def", 3, 2, false);
    let _r: Vec<Background> = fabric.hosts.iter().map(lreflect).collect();
    loss_to_leaf(&fabric, 1, 2, 8, false);
    let outputs = probe_all(&fabric, env!("CARGO_BIN_EXE_ludp"), LUDP);
    let (code, links, text) = correlate(&outputs);
    assert_found_alone(code, &links, &text, "s1", "l2");
}

#[test]
fn loss_of_the_answers_only_is_placed_on_their_link() {
    require_root();
    let fabric = Fabric::new("cf-ans", 3, 2, true);
    let _r: Vec<Background> = fabric.hosts.iter().map(lreflect).collect();
    // Only answers to host 2 lose, and only those hashed over spine 1: no traced probe does.
    loss_to_leaf(&fabric, 1, 2, 8, true);
    let outputs = probe_all(&fabric, env!("CARGO_BIN_EXE_ludp"), LUDP);
    let (code, links, text) = correlate(&outputs);
    assert_found_alone(code, &links, &text, "s1", "l2");
}

/// Spine `spine` never answers traces: the time-exceeded messages it would send are dropped.
fn never_answer(fabric: &Fabric, spine: usize) {
    fabric.spines[spine - 1].run(
        "nft 'add table inet quiet; \
         add chain inet quiet out { type filter hook output priority filter; policy accept; }; \
         add rule inet quiet out icmp type time-exceeded drop'",
    );
}

#[test]
fn a_spine_that_never_answers_neither_hides_a_fault_nor_takes_the_blame() {
    require_root();
    let fabric = Fabric::new("cf-sil", 3, 2, true);
    let _r: Vec<Background> = fabric.hosts.iter().map(lreflect).collect();
    never_answer(&fabric, 2);
    // The loss is on a link seen: the silent spine's stretches are clean.
    loss_to_leaf(&fabric, 1, 2, 8, false);
    let outputs = probe_all(&fabric, env!("CARGO_BIN_EXE_ludp"), LUDP);
    assert!(
        outputs.iter().any(|o| o.contains(r#"{"ttl":2}"#)),
        "spine 2 is silent in the traces"
    );
    let (code, links, text) = correlate(&outputs);
    assert_found_alone(code, &links, &text, "s1", "l2");
    // The loss is on the silent spine's link into leaf 2: named by leaf 2's arrival
    // address from it, the silent router before it.
    fabric.spines[0].run("nft delete table inet e2e");
    loss_to_leaf(&fabric, 2, 2, 8, false);
    let outputs = probe_all(&fabric, env!("CARGO_BIN_EXE_ludp"), LUDP);
    let (code, links, text) = correlate(&outputs);
    assert_eq!(code, Some(1), "a link is faulty:\n{text}");
    assert_eq!(links[0]["verdict"], "faulty", "{text}");
    assert!(
        members(&links[0])
            .iter()
            .any(|(from, to)| from.starts_with('?') && to == "10.0.22.1"),
        "the silent spine's link into leaf 2 first:\n{text}"
    );
    for l in &links[1..] {
        assert_eq!(l["verdict"], "ok", "only that link is faulty:\n{text}");
    }
}

#[test]
fn ltcp_and_lping_traces_are_round_trips_too() {
    require_root();
    let fabric = Fabric::new("cf-tcp", 3, 2, true);
    for h in &fabric.hosts {
        h.allow_ping_sockets();
    }
    // ltcp: connections to a closed port are answered by a reset, a round trip as well.
    loss_to_leaf(&fabric, 1, 2, 8, false);
    let outputs = probe_all(
        &fabric,
        env!("CARGO_BIN_EXE_ltcp"),
        &[
            "-p", "7", "--flows", "16", "--trace", "-c", "60", "-i", "0.005", "-W", "0.5", "-q",
        ],
    );
    let (code, links, text) = correlate(&outputs);
    assert_found_alone(code, &links, &text, "s1", "l2");
    // lping: one flow per target, so loss on leaf 3's link to its host: every probe to
    // host 3 and every answer to it cross it, so both directions of that host link come
    // out as one record.
    fabric.spines[0].run("nft delete table inet e2e");
    loss_to_host(&fabric, 3, 8);
    let outputs = probe_all(
        &fabric,
        env!("CARGO_BIN_EXE_lping"),
        &["--trace", "-c", "300", "-i", "0.002", "-W", "0.5", "-q"],
    );
    let (code, links, text) = correlate(&outputs);
    assert_found_alone(code, &links, &text, "l3", "h3");
    assert!(names(&links[0], "h3", "l3"), "{text}");
}
