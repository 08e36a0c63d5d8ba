//! ltcp against a real TCP listener in the namespace lab.
//! Needs root (CI runs as root); without it every test fails with one line saying so.

mod common;

use common::lab::*;
use serde_json::Value;
use std::process::Stdio;

/// A TCP listener (Python's http.server) on a dual-stack port.
fn listener(ns: &Netns, port: u16) -> Background {
    let child = ns
        .command("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "::"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a TCP listener");
    let l = Background(child);
    for _ in 0..200 {
        if ns.run("ss -Htln").contains(&format!(":{port} ")) {
            return l;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the listener on port {port} did not come up");
}

/// Drops TCP to `port` on `ns`, as a firewall would: the port is filtered.
fn filter_port(ns: &Netns, port: u16) {
    ns.run(&format!(
        "nft add table inet fw; \
         nft add chain inet fw in '{{ type filter hook input priority 0; }}'; \
         nft add rule inet fw in tcp dport {port} drop"
    ));
}

fn ltcp(ns: &Netns, args: &[&str]) -> (i32, Vec<Value>, String) {
    require_root();
    let out = ns
        .command(env!("CARGO_BIN_EXE_ltcp"))
        .args(args)
        .output()
        .expect("run ltcp");
    let records = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (
        out.status.code().unwrap_or(-1),
        records,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn of<'a>(records: &'a [Value], kind: &str, target: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == kind && r["target"] == target)
        .collect()
}

#[test]
fn open_refused_and_filtered_ports() {
    let lab = Pair::new("tcpports");
    let _l = listener(&lab.server, 8080);
    filter_port(&lab.server, 8443);
    let (status, records, stderr) = ltcp(
        &lab.client,
        &[
            "-c",
            "3",
            "-i",
            "0.05",
            "-W",
            "0.3",
            "10.0.0.2:8080",
            "[fd00::2]:8080",
            "10.0.0.2:9",
            "10.0.0.2:8443",
        ],
    );
    assert_eq!(status, 1, "the filtered port never answers: {stderr}");
    for target in ["10.0.0.2:8080", "[fd00::2]:8080"] {
        let replies = of(&records, "reply", target);
        assert_eq!(replies.len(), 3, "{target}: {records:?}");
        assert!(replies.iter().all(|r| r["result"] == "open"
            && r["rtt_ms"].as_f64().unwrap() > 0.0
            && r.get("syn_retransmits").is_none()));
    }
    let refused = of(&records, "reply", "10.0.0.2:9");
    assert_eq!(refused.len(), 3);
    assert!(
        refused.iter().all(|r| r["result"] == "refused"),
        "an RST proves the path"
    );
    assert_eq!(of(&records, "timeout", "10.0.0.2:8443").len(), 3);
    let s = of(&records, "summary", "10.0.0.2:8443")[0];
    assert_eq!(
        (s["sent"].as_u64(), s["received"].as_u64()),
        (Some(3), Some(0))
    );
    // Every connection ended with an RST: nothing established, half-open or in TIME_WAIT.
    let sockets = lab
        .server
        .run("ss -Htan state established state syn-recv state time-wait");
    assert_eq!(sockets.trim(), "", "left on the target: {sockets}");
    let mine = lab
        .client
        .run("ss -Htan state established state time-wait state syn-sent");
    assert_eq!(mine.trim(), "", "left on the prober: {mine}");
}

#[test]
fn flows_keep_their_source_ports() {
    let lab = Pair::new("tcpflows");
    let _l = listener(&lab.server, 8080);
    lab.server.run(
        "nft add table inet probe; \
         nft add chain inet probe in '{ type filter hook input priority 0; }'; \
         nft add rule inet probe in tcp sport 42001 tcp flags syn counter",
    );
    let (status, records, stderr) = ltcp(
        &lab.client,
        &[
            "-c",
            "4",
            "-i",
            "0.02",
            "--flows",
            "3",
            "--sport",
            "42000",
            "10.0.0.2:8080",
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    let sports: Vec<u64> = of(&records, "reply", "10.0.0.2:8080")
        .iter()
        .map(|r| r["flow"]["sport"].as_u64().unwrap())
        .collect();
    assert_eq!(sports.len(), 12);
    let summaries = of(&records, "summary", "10.0.0.2:8080");
    assert_eq!(summaries.len(), 4, "three flows and the target");
    let counter = lab.server.run("nft list chain inet probe in");
    assert!(
        counter.contains("counter packets 4 "),
        "four SYNs from port 42001: {counter}"
    );
}

#[test]
fn a_target_without_a_port_is_a_usage_error() {
    let lab = Pair::new("tcpnoport");
    let (status, records, stderr) = ltcp(&lab.client, &["-c", "1", "10.0.0.2"]);
    assert_eq!((status, records.len()), (2, 0));
    assert_eq!(
        stderr,
        "ltcp: 10.0.0.2 names no port: write host:port or [IPv6]:port, or give --port\n"
    );
    // The two ways users get it wrong are answered with how to write it (issue 17).
    let (status, _, stderr) = ltcp(&lab.client, &["-c", "1", "fd77:2::2:8080"]);
    assert_eq!(status, 2);
    assert!(stderr.contains("write [fd77:2::2]:8080"), "{stderr}");
    let (status, _, stderr) = ltcp(&lab.client, &["-c", "1", "10.0.0.0/30:8080"]);
    assert_eq!(status, 2);
    assert!(stderr.contains("(-p 8080 10.0.0.0/30)"), "{stderr}");
}

#[test]
fn syn_mode_answers_open_refused_and_port_zero_and_leaves_nothing_half_open() {
    let lab = Pair::new("tcpsyn");
    let _l = listener(&lab.server, 8080);
    filter_port(&lab.server, 8443);
    let (status, records, stderr) = ltcp(
        &lab.client,
        &[
            "--syn",
            "-c",
            "3",
            "-i",
            "0.05",
            "-W",
            "0.3",
            "--sport",
            "43000",
            "10.0.0.2:8080",
            "[fd00::2]:8080",
            "10.0.0.2:0",
            "10.0.0.2:8443",
        ],
    );
    assert_eq!(status, 1, "the filtered port never answers: {stderr}");
    for target in ["10.0.0.2:8080", "[fd00::2]:8080"] {
        let replies = of(&records, "reply", target);
        assert_eq!(replies.len(), 3, "{target}: {records:?}");
        for r in &replies {
            assert_eq!(r["result"], "open");
            assert_eq!(r["ttl"], 64, "read from the SYN-ACK: {r}");
            assert_eq!(r["flow"]["sport"], 43000);
        }
    }
    let port0 = of(&records, "reply", "10.0.0.2:0");
    assert_eq!(port0.len(), 3);
    assert!(
        port0.iter().all(|r| r["result"] == "refused"),
        "port 0 is answered by RST"
    );
    assert_eq!(of(&records, "timeout", "10.0.0.2:8443").len(), 3);
    // Our RST closed every half-open connection on the target.
    let left = lab
        .server
        .run("ss -Htan state syn-recv state established state time-wait");
    assert_eq!(left.trim(), "", "left on the target: {left}");
}

#[test]
fn syn_mode_without_cap_net_raw_says_what_to_do() {
    let lab = Pair::new("tcpsynperm");
    require_root();
    let out = lab
        .client
        .command("su")
        .args(["nobody", "-s", "/bin/sh", "-c"])
        .arg(format!(
            "{} --syn -c 1 10.0.0.2:80",
            env!("CARGO_BIN_EXE_ltcp")
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("CAP_NET_RAW") && stderr.contains("setcap"),
        "{stderr}"
    );
}

/// A handshake that takes longer than its flow's probe spacing (flow 42000's every first SYN
/// dropped, so each of its connections completes with the kernel's retransmission a second
/// later): the flow's next probes are not sent while it is in flight, instead of cutting it
/// short, so every probe sent gets its whole timeout and none is counted lost; the other flow
/// keeps its pace; stderr says how many were not sent, and the records' seq skip none.
#[test]
fn a_handshake_slower_than_the_interval_gets_its_whole_timeout() {
    let lab = Pair::new("tcpslow");
    let _l = listener(&lab.server, 8080);
    lab.server.run(
        "nft add table inet slow; \
         nft add chain inet slow in '{ type filter hook input priority 0; }'; \
         nft add rule inet slow in tcp sport 42000 tcp flags syn numgen inc mod 2 == 0 drop",
    );
    let (status, records, stderr) = ltcp(
        &lab.client,
        &[
            "--flows",
            "2",
            "--sport",
            "42000",
            "-i",
            "0.1",
            "-W",
            "3",
            "-w",
            "2.5",
            "10.0.0.2:8080",
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    let flow = |sport: u64| -> (&Value, Vec<&Value>) {
        let summary = of(&records, "summary", "10.0.0.2:8080")
            .into_iter()
            .find(|s| s["flow"]["sport"] == sport)
            .unwrap_or_else(|| panic!("no summary of flow {sport}: {records:?}"));
        let replies = of(&records, "reply", "10.0.0.2:8080")
            .into_iter()
            .filter(|r| r["flow"]["sport"] == sport)
            .collect();
        (summary, replies)
    };
    let (slow, slow_replies) = flow(42000);
    let (fast, fast_replies) = flow(42001);
    for s in [slow, fast] {
        assert_eq!(s["sent"], s["received"], "no probe counted lost: {s}");
    }
    // Sent at 0 s and about 1.2 s, each answered a second later, with the retransmission.
    let sent = slow["sent"].as_u64().unwrap();
    assert!((2..=3).contains(&sent), "{slow}");
    for r in &slow_replies {
        assert_eq!(r["result"], "open");
        // The retransmitted SYN leaves a second after the first (TCP_TIMEOUT_INIT), and the
        // reply says why its RTT is a second long.
        assert!(r["rtt_ms"].as_f64().unwrap() > 900.0, "{r}");
        assert_eq!(r["syn_retransmits"], 1, "{r}");
    }
    // The other flow's slots come every 0.2 s for 2.5 s: it kept them.
    assert!(fast["sent"].as_u64().unwrap() >= 10, "{fast}");
    assert!(fast_replies
        .iter()
        .all(|r| r.get("syn_retransmits").is_none()));
    assert!(
        stderr.contains("probes not sent: the previous probe of their flow was still in flight"),
        "{stderr}"
    );
    // seq counts the probes sent, from 1 and without gaps, as in every other tool: the probes
    // not sent take no number.
    let mut seqs: Vec<u64> = records
        .iter()
        .filter(|r| ["reply", "timeout", "unreachable"].contains(&r["type"].as_str().unwrap()))
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    seqs.sort();
    let total = of(&records, "summary", "10.0.0.2:8080")
        .into_iter()
        .find(|s| s.get("flow").is_none())
        .unwrap();
    let sent = total["sent"].as_u64().unwrap();
    assert_eq!(seqs, (1..=sent).collect::<Vec<_>>(), "{records:?}");
}

/// ICMP errors about the SYN are answers with the router that sent them, type and code, as
/// lping and ludp give them, in connect and --syn mode: time exceeded (IPv4 and IPv6), a
/// route's unreachable, and a firewall's administrative reject.
#[test]
fn icmp_errors_name_the_router_type_and_code() {
    let lab = Routed::new("tcpicmp");
    let _l = listener(&lab.server, 8080);
    lab.router.run(
        "nft add table inet fw; \
         nft add chain inet fw forward_filter '{ type filter hook forward priority 0; }'; \
         nft add rule inet fw forward_filter tcp dport 8081 reject with icmpx admin-prohibited",
    );
    for mode in [None, Some("--syn")] {
        let with_mode = |args: &[&'static str]| -> Vec<&'static str> {
            mode.into_iter().chain(args.iter().copied()).collect()
        };
        let (status, records, stderr) = ltcp(
            &lab.client,
            &with_mode(&[
                "-c",
                "1",
                "-t",
                "1",
                "-W",
                "2",
                "10.0.2.1:8080",
                "[fd02::1]:8080",
            ]),
        );
        assert_eq!(status, 1, "{mode:?}: {stderr}");
        let (status, more, stderr) = ltcp(
            &lab.client,
            // Two probes each: the second leaves after the first one's ICMP error.
            &with_mode(&[
                "-c",
                "2",
                "-i",
                "0.1",
                "-W",
                "2",
                "10.99.0.1:80",
                "[fd99::1]:80",
                "10.0.2.1:8081",
                "[fd02::1]:8081",
            ]),
        );
        assert_eq!(status, 1, "{mode:?}: {stderr}");
        let all: Vec<Value> = records.into_iter().chain(more).collect();
        let prohibited = "communication administratively prohibited";
        let expect = [
            (
                "10.0.2.1:8080",
                "10.0.1.254",
                11,
                0,
                "time exceeded in transit",
            ),
            (
                "[fd02::1]:8080",
                "fd01::254",
                3,
                0,
                "hop limit exceeded in transit",
            ),
            ("10.99.0.1:80", "10.0.1.254", 3, 1, "host unreachable"),
            ("[fd99::1]:80", "fd01::254", 1, 0, "no route to destination"),
            ("10.0.2.1:8081", "10.0.1.254", 3, 13, prohibited),
            ("[fd02::1]:8081", "fd01::254", 1, 1, prohibited),
        ];
        for (target, from, icmp_type, icmp_code, reason) in expect {
            let errs = of(&all, "unreachable", target);
            let count = if target.ends_with(":8080") { 1 } else { 2 };
            assert_eq!(errs.len(), count, "{mode:?} {target}: {all:?}");
            for r in errs {
                assert_eq!(
                    (
                        r["from"].as_str(),
                        r["icmp_type"].as_u64(),
                        r["icmp_code"].as_u64(),
                        r["reason"].as_str()
                    ),
                    (Some(from), Some(icmp_type), Some(icmp_code), Some(reason)),
                    "{mode:?}: {r}"
                );
            }
        }
    }
}

/// Packets the kernel drops on this host, `--syn`'s raw socket's queue full, are counted apart
/// from the network's loss: ltcp (a tiny receive queue) is stopped while 2,000 connections to a
/// closed port (a SYN and an RST each, every one seen by a raw TCP socket) come and go; its
/// summary's `dropped_local` is the kernel's drop count of the socket (`/proc/net/raw`).
#[test]
fn syn_mode_counts_answers_dropped_on_this_host_apart() {
    const FLOOD: &str = r#"
import socket
for i in range(2000):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", 9))
    except OSError:
        pass
    s.close()
"#;
    let ns = Netns::new("syndropped");
    let mut args = vec!["--syn", "127.0.0.1:9"];
    args.extend(FLOODED_RUN);
    let ltcp = env!("CARGO_BIN_EXE_ltcp");
    let (run, kernel) = run_flooded(&ns, ltcp, &args, FLOOD, "raw", Some(6));
    assert_dropped_local_is_the_kernels(&run, kernel, "the raw TCP socket (IPv4)");
}
