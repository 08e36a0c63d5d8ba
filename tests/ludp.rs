//! ludp against real kernels and real echo services in the namespace lab.
//! Needs root (CI runs as root); without it every test fails with one line saying so.

mod common;

use common::lab::*;
use serde_json::Value;
use std::process::Stdio;

impl ToolRun {
    /// Total summaries: per flow (`flow` set) and per target (no `flow`).
    fn totals(&self, target: &str) -> (Vec<&Value>, &Value) {
        let all: Vec<&Value> = self
            .records
            .iter()
            .filter(|r| r["type"] == "summary" && r["window"] == "total" && r["target"] == target)
            .collect();
        (
            all.into_iter()
                .filter(|r| r.get("flow").is_some())
                .collect(),
            self.summary(target),
        )
    }
}

fn ludp(ns: &Netns, args: &[&str]) -> ToolRun {
    run_tool(ns, env!("CARGO_BIN_EXE_ludp"), args)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[test]
fn flows_have_fixed_source_ports_and_a_summary_each() {
    let lab = Pair::new("udpflows");
    let _echo = python_echo(&lab.server, 7);
    let run = ludp(
        &lab.client,
        &[
            "-c",
            "3",
            "-i",
            "0.01",
            "--flows",
            "4",
            "--sport",
            "41000",
            "10.0.0.2:7",
            "[fd00::2]:7",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    for target in ["10.0.0.2:7", "[fd00::2]:7"] {
        let replies: Vec<&Value> = run
            .kind("reply")
            .into_iter()
            .filter(|r| r["target"] == target)
            .collect();
        assert_eq!(replies.len(), 12, "4 flows × 3 probes");
        for r in &replies {
            let seq = u(&r["seq"]);
            // Round-robin: probe k goes to flow (k − 1) mod 4, source port 41000 + flow.
            assert_eq!(u(&r["flow"]["sport"]), 41000 + (seq - 1) % 4, "{r}");
            assert_eq!(u(&r["flow"]["dport"]), 7);
            assert_eq!(u(&r["size"]), 64);
            assert!(
                r.get("fwd_ms").is_none(),
                "a plain echo stamps nothing: {r}"
            );
        }
        let (flows, total) = run.totals(target);
        let mut sports: Vec<u64> = flows.iter().map(|f| u(&f["flow"]["sport"])).collect();
        sports.sort();
        assert_eq!(sports, [41000, 41001, 41002, 41003]);
        assert!(flows
            .iter()
            .all(|f| u(&f["sent"]) == 3 && u(&f["received"]) == 3));
        assert_eq!((u(&total["sent"]), u(&total["received"])), (12, 12));
    }
}

#[test]
fn per_flow_loss_matches_the_injected_rate() {
    let lab = Pair::new("udploss");
    let _echo = python_echo(&lab.server, 7);
    add_loss(&lab.server, "input", "eth0", 20);
    let run = ludp(
        &lab.client,
        &[
            "-q",
            "-c",
            "150",
            "-i",
            "0.002",
            "-W",
            "0.5",
            "--flows",
            "4",
            "10.0.0.2:7",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let (flows, total) = run.totals("10.0.0.2:7");
    assert_eq!(flows.len(), 4);
    for f in &flows {
        let lost = u(&f["sent"]) - u(&f["received"]);
        assert_eq!(u(&f["sent"]), 150);
        // Binomial(150, 0.2): mean 30, sd 4.9; ±4.5 sd.
        assert!(
            (8..=52).contains(&lost),
            "flow {}: lost {lost} of 150",
            f["flow"]
        );
    }
    let lost = u(&total["sent"]) - u(&total["received"]);
    // Binomial(600, 0.2): mean 120, sd 9.8.
    assert!((76..=164).contains(&lost), "lost {lost} of 600");
}

#[test]
fn every_flow_is_probed_in_every_dscp_class() {
    let lab = Pair::new("udpdscp");
    let _echo = python_echo(&lab.server, 7);
    lab.server.run(
        "nft add table inet probe; \
         nft add chain inet probe in '{ type filter hook input priority 0; }'; \
         nft add rule inet probe in udp dport 7 ip dscp ef counter; \
         nft add rule inet probe in udp dport 7 ip dscp cs1 counter; \
         nft add rule inet probe in udp dport 7 ip6 dscp ef counter",
    );
    let run = ludp(
        &lab.client,
        &[
            "-c",
            "5",
            "-i",
            "0.005",
            "--flows",
            "2",
            "--dscp",
            "EF,cs1",
            "10.0.0.2:7",
            "[fd00::2]:7",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let counters = lab.server.run("nft list chain inet probe in");
    let counts: Vec<&str> = counters
        .lines()
        .filter(|l| l.contains("counter packets"))
        .collect();
    // 2 flows × 5 probes in each class, per family.
    assert!(
        counts[0].contains("ip dscp ef counter packets 10 "),
        "{counters}"
    );
    assert!(
        counts[1].contains("ip dscp cs1 counter packets 10 "),
        "{counters}"
    );
    assert!(
        counts[2].contains("ip6 dscp ef counter packets 10 "),
        "{counters}"
    );
    let (flows, _) = run.totals("10.0.0.2:7");
    let mut classes: Vec<(u64, u64)> = flows
        .iter()
        .map(|f| (u(&f["flow"]["dscp"]), u(&f["received"])))
        .collect();
    classes.sort();
    assert_eq!(
        classes,
        [(8, 5), (8, 5), (46, 5), (46, 5)],
        "a summary per flow and class"
    );
    // Classes given by name show by name too (issue 17).
    for f in &flows {
        let want = if u(&f["flow"]["dscp"]) == 46 {
            "EF"
        } else {
            "CS1"
        };
        assert_eq!(f["flow"]["dscp_name"], want, "{f}");
    }
}

#[test]
fn icmp_errors_arrive_without_a_raw_socket() {
    let lab = Routed::new("udperr");
    // Nothing listens on 10.0.2.1:9: port unreachable from the host; 10.99/16 has an
    // unreachable route on the router; TTL 1 expires at the router.
    let run = ludp(
        &lab.client,
        &[
            "-c",
            "2",
            "-i",
            "0.01",
            "-W",
            "0.5",
            "10.0.2.1:9",
            "10.99.0.1",
            "[fd02::1]:9",
        ],
    );
    assert_eq!(run.status, 1);
    let reasons = |target: &str| -> Vec<(String, Option<String>)> {
        run.kind("unreachable")
            .iter()
            .filter(|r| r["target"] == target)
            .map(|r| {
                (
                    r["reason"].as_str().unwrap().to_string(),
                    r["from"].as_str().map(str::to_string),
                )
            })
            .collect()
    };
    let port = ("port unreachable".to_string(), Some("10.0.2.1".to_string()));
    assert_eq!(reasons("10.0.2.1:9"), [port.clone(), port]);
    let host = (
        "host unreachable".to_string(),
        Some("10.0.1.254".to_string()),
    );
    assert_eq!(reasons("10.99.0.1"), [host.clone(), host]);
    let port6 = ("port unreachable".to_string(), Some("fd02::1".to_string()));
    assert_eq!(reasons("[fd02::1]:9"), [port6.clone(), port6]);
    let ttl = ludp(&lab.client, &["-c", "1", "-t", "1", "10.0.2.1:9"]);
    let r = ttl.kind("unreachable");
    assert_eq!(
        r[0]["reason"], "time exceeded in transit",
        "{:?}",
        ttl.records
    );
    assert_eq!(u(&r[0]["flow"]["dport"]), 9);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let lab = Pair::new("udpbad");
    for (args, mentions) in [
        (&["-s", "31", "10.0.0.2"][..], "at least 32"),
        (&["--dscp", "gold", "10.0.0.2"][..], "not a DSCP class"),
        (&["10.0.0.2:http"][..], "bad port 'http'"),
        (
            &["--sport", "65535", "--flows", "2", "10.0.0.2"][..],
            "past port 65535",
        ),
    ] {
        let run = ludp(&lab.client, args);
        assert_eq!(run.status, 2, "{args:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with("ludp: ") && run.stderr.contains(mentions),
            "{}",
            run.stderr
        );
    }
    // A source port someone else holds.
    let _holder = python_echo(&lab.client, 41000);
    let run = ludp(&lab.client, &["--sport", "41000", "-c", "1", "10.0.0.2"]);
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("port 41000 is in use"),
        "{}",
        run.stderr
    );
}

#[test]
fn ludp_payloads_survive_a_36_byte_echo() {
    // The LLAMA reflector echoes 36-byte datagrams: ludp's base layout fits in them.
    let lab = Pair::new("udp36");
    let _echo = python_echo(&lab.server, 7);
    let run = ludp(
        &lab.client,
        &["-c", "2", "-i", "0.01", "-s", "36", "10.0.0.2:7"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.kind("reply").iter().all(|r| u(&r["size"]) == 36));
}

#[test]
fn against_the_legacy_llama_reflector() {
    // PyPI llama 0.1.1, fetched by tests/fixtures/fetch_llama.py (.ci/run runs it). Its
    // reflector answers only 36-byte datagrams (struct '<10sBddd?') and sets the reply's TOS
    // from payload byte 10.
    let llama = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/llama/llama-0.1.1");
    assert!(
        llama.join("llama/udp.py").exists(),
        "the LLAMA reflector is missing: run `python3 tests/fixtures/fetch_llama.py` (as .ci/run does)"
    );
    let lab = Pair::new("llama");
    let mut child = lab
        .server
        .command("python3")
        .args(["-c", "import sys; sys.path.insert(0, sys.argv[1]); from llama import udp; print('ready', flush=True); udp.Reflector(60000).run()"])
        .arg(&llama)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let _reflector = Background(child);
    let run = ludp(
        &lab.client,
        &[
            "-c",
            "5",
            "-i",
            "0.01",
            "-W",
            "0.5",
            "--size",
            "36",
            "--flows",
            "2",
            "10.0.0.2:60000",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let replies = run.kind("reply");
    assert_eq!(replies.len(), 10, "{:?}", run.records);
    assert!(replies
        .iter()
        .all(|r| u(&r["size"]) == 36 && r.get("fwd_ms").is_none()));
    // It counts nothing: no loss split, no refusals.
    for s in run.kind("summary") {
        for member in ["lost_fwd", "lost_rev", "refused", "hops_rev"] {
            assert!(s.get(member).is_none(), "{s}");
        }
    }
    // Any other size is discarded by that reflector: silence, not a wrong answer.
    let run = ludp(
        &lab.client,
        &["-c", "2", "-i", "0.01", "-W", "0.2", "10.0.0.2:60000"],
    );
    assert_eq!(run.status, 1);
    assert_eq!(run.kind("timeout").len(), 2);
}

/// lreflect in `ns` on port 8081, up once its socket is bound.
fn lreflect(ns: &Netns, extra: &[&str]) -> Background {
    lreflect_service(ns, extra, 8081)
}

#[test]
fn lreflect_stamps_give_one_way_figures_and_show_remarking() {
    let lab = Routed::new("udpremark");
    let _reflector = lreflect(&lab.server, &[]);
    // Unchanged path first: the reflector sees the DSCP we sent.
    let run = ludp(
        &lab.client,
        &[
            "-c",
            "4",
            "-i",
            "0.01",
            "--dscp",
            "EF",
            "10.0.2.1",
            "[fd02::1]",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let replies = run.kind("reply");
    assert_eq!(replies.len(), 8);
    for r in &replies {
        assert_eq!(u(&r["dscp_rx"]), 46, "{r}");
        let (fwd, rev, held) = (
            r["fwd_ms"].as_f64().unwrap(),
            r["rev_ms"].as_f64().unwrap(),
            r["reflector_ms"].as_f64().unwrap(),
        );
        let rtt = r["rtt_ms"].as_f64().unwrap();
        // One host, one clock: the one-way figures add up to the round trip (within the
        // difference between user-space and kernel stamps).
        assert!(held >= 0.0 && fwd > 0.0 && rev > 0.0, "{r}");
        assert!((fwd + held + rev - rtt).abs() < 0.5, "{r}");
        assert!(r["synced"].is_boolean());
    }
    // The router re-marks everything it forwards to CS0: dscp_rx says so.
    lab.router.run(
        "nft add table inet remark; \
         nft add chain inet remark forward_remark '{ type filter hook forward priority 0; }'; \
         nft add rule inet remark forward_remark ip dscp set cs0; \
         nft add rule inet remark forward_remark ip6 dscp set cs0",
    );
    let run = ludp(
        &lab.client,
        &[
            "-c",
            "2",
            "-i",
            "0.01",
            "--dscp",
            "EF",
            "10.0.2.1",
            "[fd02::1]",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let replies = run.kind("reply");
    assert_eq!(replies.len(), 4);
    assert!(
        replies
            .iter()
            .all(|r| u(&r["dscp_rx"]) == 0 && u(&r["flow"]["dscp"]) == 46),
        "{replies:?}"
    );
    // A payload too short for the stamps comes back as it went.
    let run = ludp(
        &lab.client,
        &["-c", "2", "-i", "0.01", "-s", "40", "10.0.2.1"],
    );
    assert!(run
        .kind("reply")
        .iter()
        .all(|r| r.get("fwd_ms").is_none() && u(&r["size"]) == 40));
}

/// The totals of every flow and of the target, checked against each other: each flow's loss is
/// `lost_fwd + lost_rev + refused` but for the probes lost after its last answer; a probe placed
/// on the way back was answered too late or not at all, and the target's figures are its flows'
/// sums. Returns the target's (lost_fwd, lost_rev, refused, sent).
fn split_loss(run: &ToolRun, target: &str) -> (u64, u64, u64, u64) {
    let (flows, total) = run.totals(target);
    let mut sums = [0u64; 4];
    for f in &flows {
        let sport = u(&f["flow"]["sport"]);
        let lost = u(&f["sent"]) - u(&f["received"]);
        let (fwd, rev, refused) = (u(&f["lost_fwd"]), u(&f["lost_rev"]), u(&f["refused"]));
        let trailing = run.trailing_losses(target, sport);
        assert_eq!(fwd + rev + refused + trailing, lost, "flow {sport}: {f}");
        for (s, v) in sums.iter_mut().zip([fwd, rev, refused, trailing]) {
            *s += v;
        }
    }
    let [fwd, rev, refused, _] = sums;
    assert_eq!(
        (
            u(&total["lost_fwd"]),
            u(&total["lost_rev"]),
            u(&total["refused"])
        ),
        (fwd, rev, refused),
        "{total}"
    );
    (fwd, rev, refused, u(&total["sent"]))
}

/// Whether `k` is within 5 standard deviations of Binomial(n, p)'s mean.
fn binomial_ok(k: u64, n: u64, p: f64) -> bool {
    let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
    (k as f64 - mean).abs() <= 5.0 * sd.max(1.0)
}

#[test]
fn against_lreflect_loss_is_split_by_direction() {
    let lab = Routed::new("udpdir");
    let _reflector = lreflect(&lab.server, &[]);
    // 15 % of what the router forwards towards the reflector, of the answers the client
    // receives, or both.
    let cases: [(&str, bool, bool); 3] = [
        ("forward", true, false),
        ("reverse", false, true),
        ("both", true, true),
    ];
    for (name, fwd_loss, rev_loss) in cases {
        clear_loss(&lab.router);
        clear_loss(&lab.client);
        if fwd_loss {
            add_loss(&lab.router, "forward", "eth0", 15);
        }
        if rev_loss {
            add_loss(&lab.client, "input", "eth0", 15);
        }
        let run = ludp(
            &lab.client,
            &[
                "-c",
                "250",
                "-i",
                "0.004",
                "-W",
                "1",
                "--flows",
                "2",
                "10.0.2.1",
                "[fd02::1]",
            ],
        );
        assert!(run.status <= 1, "{name}: {}", run.stderr);
        for target in ["10.0.2.1", "[fd02::1]"] {
            let (fwd, rev, refused, sent) = split_loss(&run, target);
            let (_, total) = run.totals(target);
            let late = u(&total["late"]);
            assert_eq!(sent, 500, "{name} {target}: {total}");
            assert_eq!(
                refused, 0,
                "{name} {target}: nothing over the limit: {total}"
            );
            // Losses after each flow's last answer stay unplaced: a handful at most.
            let fwd_p = if fwd_loss { 0.15 } else { 0.0 };
            // Answers are lost only of the probes that got there.
            let rev_p = if rev_loss { (1.0 - fwd_p) * 0.15 } else { 0.0 };
            assert!(binomial_ok(fwd, sent, fwd_p), "{name} {target}: {total}");
            if rev_loss {
                assert!(binomial_ok(rev, sent, rev_p), "{name} {target}: {total}");
            } else {
                // Only an answer later than -W could be charged to the way back.
                assert!(rev <= late, "{name} {target}: {total}");
            }
        }
    }
}

#[test]
fn probes_refused_by_lreflects_rate_limit_are_not_network_loss() {
    let lab = Routed::new("udprefused");
    // 50 probes a second per source, no burst; ludp sends 200 a second for 2 s. Refusals start
    // with the second probe and answers keep coming between them, each carrying the flow's
    // refusals so far, so the count does not hang on the last probes' timing (a loaded machine
    // that sends them late in a bunch leaves those after the last answer unplaced).
    let _reflector = lreflect(&lab.server, &["--rate-limit", "50", "--burst", "1"]);
    let run = ludp(
        &lab.client,
        &[
            "-c", "200", "-i", "0.005", "--flows", "2", "-W", "0.5", "10.0.2.1",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let (fwd, rev, refused, sent) = split_loss(&run, "10.0.2.1");
    assert_eq!((fwd, rev), (0, 0), "no loss on the network");
    // About 300 of the 400 refused: 50/s over 2 s answered. Every loss is a refusal
    // (split_loss checked that each flow's loss is its refused probes and those after its last
    // answer).
    let (_, total) = run.totals("10.0.2.1");
    let lost = u(&total["sent"]) - u(&total["received"]);
    assert!(
        lost >= 120 && refused > 0,
        "{refused} of {sent} refused: {total}"
    );
    assert!(
        run.stderr.contains("refused"),
        "said on stderr: {}",
        run.stderr
    );
}

#[test]
fn the_split_is_absent_where_the_reflector_does_not_count() {
    let lab = Routed::new("udpnodir");
    let _echo = python_echo(&lab.server, 7);
    let _reflector = lreflect(&lab.server, &[]);
    add_loss(&lab.router, "forward", "eth0", 30);
    // An RFC 862 echo; lreflect with payloads too short for its counts (stamped, not counted).
    for (target, size) in [("10.0.2.1:7", "64"), ("10.0.2.1", "56")] {
        let run = ludp(
            &lab.client,
            &["-c", "40", "-i", "0.002", "-W", "0.3", "-s", size, target],
        );
        let (flows, total) = run.totals(target);
        assert!(u(&total["sent"]) > u(&total["received"]), "{total}");
        for s in flows.iter().copied().chain([total]) {
            for member in ["lost_fwd", "lost_rev", "refused"] {
                assert!(s.get(member).is_none(), "{target} -s {size}: {s}");
            }
        }
    }
}

/// lreflect restarted in the middle of a run (its counts start again from 0) through 15 %
/// forward loss: the probes answered by port unreachable while it was down are left out; the
/// run of lost probes around the restart (between the last answer of the old process and the
/// first of the new) stays unplaced, its numbers do not add up; every other run is placed, on
/// the way there, exactly.
#[test]
fn a_restarted_lreflect_costs_the_split_of_one_run() {
    let lab = Routed::new("udprestart");
    add_loss(&lab.router, "forward", "eth0", 15);
    let reflector = lreflect(&lab.server, &[]);
    let run = std::thread::scope(|s| {
        let run = s.spawn(|| {
            ludp(
                &lab.client,
                &["-c", "400", "-i", "0.005", "-W", "0.5", "10.0.2.1"],
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(800));
        drop(reflector);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let again = lreflect(&lab.server, &[]);
        let run = run.join().unwrap();
        drop(again);
        run
    });
    assert!(run.status <= 1, "{}", run.stderr);
    let (_, total) = run.totals("10.0.2.1");
    let (fwd, rev) = (u(&total["lost_fwd"]), u(&total["lost_rev"]));
    let unreachable = u(&total["unreachable"]);
    let lost = u(&total["sent"]) - u(&total["received"]) - unreachable;
    assert!(unreachable > 0, "probes while it was down: {total}");
    assert!(rev <= u(&total["late"]), "{total}");
    // The restart shows in the replies: the reflector's count (reflector_seq) falls back.
    let replies: Vec<(u64, u64)> = run
        .kind("reply")
        .iter()
        .map(|r| (u(&r["seq"]), u(&r["reflector_seq"])))
        .collect();
    let restart = replies
        .windows(2)
        .find(|w| w[1].1 < w[0].1)
        .unwrap_or_else(|| panic!("no restart in {replies:?}"));
    let (before, after) = (restart[0].0, restart[1].0);
    let timeouts: Vec<u64> = run.kind("timeout").iter().map(|t| u(&t["seq"])).collect();
    let around = timeouts
        .iter()
        .filter(|&&t| before < t && t < after)
        .count() as u64;
    let last = replies.last().unwrap().0;
    let trailing = timeouts.iter().filter(|&&t| t > last).count() as u64;
    // Every other run is placed, on the way there; the one around the restart is not.
    assert_eq!(fwd + rev + around + trailing, lost, "{total}");
    assert!(
        binomial_ok(fwd, u(&total["sent"]) - unreachable - around, 0.15),
        "{total}"
    );
}

/// Datagrams the kernel drops on this host, a flow socket's receive queue full, are counted apart
/// from the network's loss: ludp (a tiny receive queue) is stopped while 2,000 datagrams arrive
/// at its flow's port; its summary's `dropped_local` is the kernel's drop count of the socket
/// (`/proc/net/udp`), stderr names the socket, and its own probes count no loss.
#[test]
fn datagrams_dropped_on_this_host_are_dropped_local_not_loss() {
    let ns = Netns::new("udpdropped");
    let _echo = python_echo(&ns, 7);
    let program = env!("CARGO_BIN_EXE_ludp");
    assert_flow_socket_drops_counted(&ns, program, "127.0.0.1:7", 41500, "UDP");
}
