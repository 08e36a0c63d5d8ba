//! End to end: loss on one spine link of a leaf-spine lab, `ludp --flows 16 --trace` from every
//! host to lreflect on the others, and `lcorrelate` over all their outputs names that link.
//! Needs root (CI runs as root); without it the test fails with one line saying so.

mod common;

use common::lab::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Every router's interface addresses, so a router is one node whichever way a probe came in
/// (the lab's routers answer from the inbound interface).
const ALIASES: &str = "\
leaf1 10.1.1.254 10.1.2.254 10.0.11.1 10.0.12.1
leaf2 10.2.1.254 10.2.2.254 10.0.21.1 10.0.22.1
spine1 10.0.11.2 10.0.21.2
spine2 10.0.12.2 10.0.22.2
";

/// lreflect on the default port 8081 with no rate limit (a host here takes 48 flows at once);
/// returns once the socket is bound (the lab's [`lreflect_service`]).
fn lreflect(ns: &Netns) -> Background {
    lreflect_service(
        ns,
        &["--rate-limit", "0", "--max-pps", "0", "--stats-every", "0"],
        8081,
    )
}

/// The `link` records' ends, as "from>to", of the record's group (or the link alone).
fn members(link: &Value) -> Vec<String> {
    match link["group"].as_array() {
        Some(group) => group
            .iter()
            .map(|e| {
                format!(
                    "{}>{}",
                    e["from"].as_str().unwrap(),
                    e["to"].as_str().unwrap()
                )
            })
            .collect(),
        None => vec![format!(
            "{}>{}",
            link["from"].as_str().unwrap(),
            link["to"].as_str().unwrap()
        )],
    }
}

#[test]
fn loss_on_one_spine_link_is_named_first_and_alone() {
    require_root();
    let started = Instant::now();
    let lab = LeafSpine::with_hosts("e2e", 2);
    // (namespace, address, leaf) of every host.
    let hosts: Vec<(&Netns, &str, u8)> = vec![
        (&lab.h1, "10.1.1.1", 1),
        (&lab.more1[0], "10.1.2.1", 1),
        (&lab.h2, "10.2.1.1", 2),
        (&lab.more2[0], "10.2.2.1", 2),
    ];
    let _reflectors: Vec<Background> = hosts.iter().map(|(ns, _, _)| lreflect(ns)).collect();

    // 20 % loss on leaf1 -> spine1, for the probes only: the echo replies (source port 8081)
    // and the trace's ICMP answers pass, so every flow's loss is its forward path's. Trace
    // probes (TTL under 32 here) pass too: a trace that lost all its probes to one TTL would
    // show a silent hop, and a route through an unnamed hop is a different route to
    // lcorrelate, which is not what this test is about.
    lab.spine1.run(
        "nft 'add table inet e2e; \
         add chain inet e2e probes { type filter hook forward priority filter; policy accept; }; \
         add rule inet e2e probes iifname \"l1\" udp dport 8081 ip ttl > 32 \
         numgen random mod 100 < 20 drop'",
    );

    // Every host probes the hosts behind the other leaf and its neighbour behind its own, all
    // at once, one ludp per host. 16 flows per target, 40 probes per flow: a flow through the
    // lossy link loses 8 on average (P(0) = 0.8^40 ≈ 1e-4), a clean one none.
    let runs: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|(ns, me, _)| {
                let targets: Vec<&str> = hosts
                    .iter()
                    .map(|(_, a, _)| *a)
                    .filter(|a| a != me)
                    .collect();
                s.spawn(move || {
                    let out = ns
                        .command(env!("CARGO_BIN_EXE_ludp"))
                        .args([
                            "--flows", "16", "--trace", "-c", "40", "-i", "0.002", "-W", "0.5",
                            "-q",
                        ])
                        .args(&targets)
                        .stdin(Stdio::null())
                        .output()
                        .expect("run ludp");
                    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                    assert_eq!(
                        out.status.code(),
                        Some(0),
                        "ludp in {} to {targets:?}: {stderr}",
                        ns.name
                    );
                    (String::from_utf8(out.stdout).unwrap(), stderr)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // The data is what the test claims: 16 traced flows per host and target (three targets per
    // host), every one reached its target, and only flows through spine1 from leaf1 lost probes.
    let mut lossy_flows = 0;
    for (stdout, stderr) in &runs {
        let paths: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["type"] == "path")
            .collect();
        assert_eq!(paths.len(), 48, "{stderr}");
        for p in &paths {
            assert_eq!(p["reached"], true, "{p}");
            assert_eq!(p["sent"], 40, "{p}");
            let first = p["hops"][0]["addr"].as_str().unwrap();
            let through = p["hops"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["addr"] == "10.0.11.2");
            let lossy = first.starts_with("10.1.") && through;
            if p["lost"] != 0 {
                assert!(lossy, "a flow off the lossy link lost probes: {p}");
                lossy_flows += 1;
            }
        }
    }
    assert!(lossy_flows >= 8, "{lossy_flows} flows lost probes");

    let dir = std::env::temp_dir().join(format!("lopa-correlate-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let alias = dir.join("routers.txt");
    std::fs::write(&alias, ALIASES).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lcorrelate"))
        .arg("--alias")
        .arg(&alias)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lcorrelate");
    {
        let mut stdin = child.stdin.take().unwrap();
        for (stdout, _) in &runs {
            stdin.write_all(stdout.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a link is faulty: {text}{stderr}"
    );
    let links: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(links.iter().all(|l| l["type"] == "link"), "{text}");

    let first = &links[0];
    assert!(
        members(first).contains(&"leaf1>spine1".to_string()),
        "the lossy link (or its group) comes first:\n{text}"
    );
    assert_eq!(first["verdict"], "faulty", "{text}");
    let loss = first["loss_est"].as_f64().unwrap();
    assert!(
        (0.1..0.3).contains(&loss),
        "20 % loss, estimated {loss}: {text}"
    );
    for l in &links[1..] {
        assert_eq!(l["verdict"], "ok", "only the lossy link is faulty:\n{text}");
    }
    // Every router-to-router link was measured: 4 host uplinks, 4 downlinks, 8 spine links.
    let all: Vec<String> = links.iter().flat_map(members).collect();
    for link in [
        "leaf1>spine2",
        "spine1>leaf2",
        "leaf2>spine1",
        "spine1>leaf1",
    ] {
        assert!(all.contains(&link.to_string()), "{link} missing:\n{text}");
    }
    eprintln!("{text}took {:?}", started.elapsed());
}
