//! ltwamp against an independent STAMP implementation (stamp-suite 1.0.0, installed by
//! `.ci/run` at target/peers/bin) and hand-made reflectors, in the namespace lab.
//! Needs root (CI runs as root); without it every test fails with one line saying so.

mod common;

use common::lab::*;
use serde_json::Value;
use std::process::Stdio;

impl ToolRun {
    fn replies(&self, target: &str) -> Vec<&Value> {
        self.kind("reply")
            .into_iter()
            .filter(|r| r["target"] == target)
            .collect()
    }

    /// The total summary of `target`: per target (no `flow`), or of the flow with `sport`.
    fn total(&self, target: &str, sport: Option<u64>) -> &Value {
        self.records
            .iter()
            .find(|r| {
                r["type"] == "summary"
                    && r["window"] == "total"
                    && r["target"] == target
                    && r["flow"]["sport"].as_u64() == sport
            })
            .unwrap_or_else(|| panic!("no total summary of {target} {sport:?}: {:?}", self.records))
    }
}

fn ltwamp(ns: &Netns, args: &[&str]) -> ToolRun {
    run_tool(ns, env!("CARGO_BIN_EXE_ltwamp"), args)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A Session-Reflector in Python written to the older drafts, as twampy: 38-byte replies (no
/// MBZ or TTL after the sender's error estimate), the sender's sequence number copied. `noisy`
/// first sends a 30-byte datagram and an answer whose T1 is not the probe's.
fn python_reflector(ns: &Netns, port: u16, noisy: bool) -> Background {
    const PY: &str = r#"
import socket, struct, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
noisy = sys.argv[2] == "noisy"
print("ready", flush=True)
def now():
    t = time.time()
    secs = int(t)
    return struct.pack("!II", secs + 2208988800, int((t - secs) * 2**32))
while True:
    data, peer = s.recvfrom(65535)
    t2 = now()
    if len(data) < 14:
        continue
    seq, t1, err = data[0:4], data[4:12], data[12:14]
    reply = seq + now() + b"\x00\x01" + b"\x00\x00" + t2 + seq + t1 + err
    if noisy:
        s.sendto(reply[:30], peer)
        s.sendto(reply[:28] + b"\xee" * 8 + reply[36:], peer)
    s.sendto(reply, peer)
"#;
    let mut child = ns
        .command("python3")
        .args([
            "-c",
            PY,
            &port.to_string(),
            if noisy { "noisy" } else { "plain" },
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the python reflector");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("the reflector's first line");
    assert_eq!(line.trim(), "ready");
    Background(child)
}

/// What every reply to a reflector on the same host or a namespace of it satisfies (one
/// clock): positive RTT, one-way figures that add up to it, the reflector's TTL.
fn check_replies(run: &ToolRun, target: &str, count: usize, reflector_ttl: u64) {
    let replies = run.replies(target);
    assert_eq!(replies.len(), count, "{target}: {}", run.stderr);
    for r in replies {
        let (rtt, fwd, rev) = (f(&r["rtt_ms"]), f(&r["fwd_ms"]), f(&r["rev_ms"]));
        assert!(rtt > 0.0, "{r}");
        // One clock on both ends: no one-way delay is negative, and they add up to the RTT
        // net of the reflector's hold time, (T2 − T1) + (T4 − T3) = (T4 − T1) − (T3 − T2).
        assert!(fwd >= 0.0 && rev >= 0.0, "{r}");
        assert!(f(&r["reflector_ms"]) >= 0.0, "{r}");
        assert!((fwd + rev - rtt).abs() < 1e-5, "fwd + rev = rtt: {r}");
        assert_eq!(u(&r["reflector_ttl"]), reflector_ttl, "{r}");
        // The 44-byte base packet and the Direct Measurement TLV ltwamp sends by default.
        assert_eq!(u(&r["size"]), 60, "{r}");
        assert!(r["reflector_seq"].is_u64(), "{r}");
    }
    let total = run.total(target, None);
    assert_eq!(
        (u(&total["sent"]), u(&total["received"])),
        (count as u64, count as u64),
        "{total}"
    );
}

#[test]
fn against_stamp_suite_on_loopback() {
    let ns = Netns::new("twlo");
    let _v4 = stamp_suite_reflector(&ns, "127.0.0.1", &[]);
    let _v6 = stamp_suite_reflector(&ns, "::1", &[]);
    let run = ltwamp(&ns, &["-c", "20", "-i", "0.005", "127.0.0.1", "::1"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    check_replies(&run, "127.0.0.1", 20, 64);
    check_replies(&run, "::1", 20, 64);
}

#[test]
fn against_stamp_suite_across_a_namespace_pair() {
    let lab = Pair::new("twpair");
    let _v4 = stamp_suite_reflector(&lab.server, "10.0.0.2", &[]);
    let _v6 = stamp_suite_reflector(&lab.server, "fd00::2", &[]);
    let run = ltwamp(
        &lab.client,
        &["-c", "20", "-i", "0.005", "10.0.0.2", "fd00::2"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    check_replies(&run, "10.0.0.2", 20, 64);
    check_replies(&run, "fd00::2", 20, 64);
}

#[test]
fn across_a_router_the_reflector_sees_one_hop_less() {
    let lab = Routed::new("twrouted");
    let _v4 = stamp_suite_reflector(&lab.server, "10.0.2.1", &[]);
    let _v6 = stamp_suite_reflector(&lab.server, "fd02::1", &[]);
    let run = ltwamp(
        &lab.client,
        &["-c", "10", "-i", "0.005", "10.0.2.1", "fd02::1"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    check_replies(&run, "10.0.2.1", 10, 63);
    check_replies(&run, "fd02::1", 10, 63);
    // -t sets what the probes leave with.
    let run = ltwamp(
        &lab.client,
        &["-c", "3", "-i", "0.005", "-t", "10", "10.0.2.1"],
    );
    check_replies(&run, "10.0.2.1", 3, 9);
}

#[test]
fn sequence_numbers_count_per_session_from_zero() {
    // A session is a source port: each flow's probes are numbered 0, 1, 2, … (RFC 8762 4.2.1)
    // and a stateful reflector numbers its answers per session the same way.
    let lab = Pair::new("twseq");
    let _stateful = stamp_suite_reflector(&lab.server, "10.0.0.2", &["--stateful-reflector"]);
    let _stateless = stamp_suite_reflector(&lab.server, "fd00::2", &[]);
    let run = ltwamp(
        &lab.client,
        &[
            "-c", "4", "-i", "0.005", "--flows", "3", "--tlv", "none", "10.0.0.2", "fd00::2",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    for target in ["10.0.0.2", "fd00::2"] {
        let replies = run.replies(target);
        assert_eq!(replies.len(), 12);
        for r in replies {
            // Probe k of the target is probe (k − 1) / 3 of flow (k − 1) mod 3.
            let seq = u(&r["seq"]);
            assert_eq!(u(&r["reflector_seq"]), (seq - 1) / 3, "{r}");
        }
        let total = run.total(target, None);
        assert!(total.get("lost_fwd").is_none(), "nothing to place: {total}");
    }
}

/// Runs ltwamp with 20 % loss in one direction at the router; checks that the loss of every
/// flow and of the target is placed in that direction, all but the trailing losses.
fn placed_loss(test: &str, lossy_iface: &str, args: &[&str]) -> (u64, u64, u64) {
    let lab = Routed::new(test);
    let _reflector = stamp_suite_reflector(&lab.server, "10.0.2.1", &["--stateful-reflector"]);
    add_loss(&lab.router, "forward", lossy_iface, 20);
    let mut all = vec!["-c", "150", "-i", "0.003", "-W", "2", "--flows", "2"];
    all.extend_from_slice(args);
    all.push("10.0.2.1");
    let run = ltwamp(&lab.client, &all);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let forward = lossy_iface == "eth0";
    let mut trailing_all = 0;
    let mut sports: Vec<u64> = run
        .kind("reply")
        .iter()
        .map(|r| u(&r["flow"]["sport"]))
        .collect();
    sports.sort();
    sports.dedup();
    assert_eq!(sports.len(), 2);
    for sport in sports {
        let s = run.total("10.0.2.1", Some(sport));
        let lost = u(&s["sent"]) - u(&s["received"]);
        let trailing = run.trailing_losses("10.0.2.1", sport);
        trailing_all += trailing;
        let (placed, other) = if forward {
            (u(&s["lost_fwd"]), u(&s["lost_rev"]))
        } else {
            (u(&s["lost_rev"]), u(&s["lost_fwd"]))
        };
        // A reply later than -W is counted lost and late, and its probe did reach the
        // reflector: the only way the other direction could be charged.
        assert!(other <= u(&s["late"]), "flow {sport}: {s}");
        assert_eq!(placed + other + trailing, lost, "flow {sport}: {s}");
    }
    let total = run.total("10.0.2.1", None);
    let lost = u(&total["sent"]) - u(&total["received"]);
    assert!(lost >= 10, "20 % of 300 probes are lost: {total}");
    let (fwd, rev) = (u(&total["lost_fwd"]), u(&total["lost_rev"]));
    assert_eq!(fwd + rev + trailing_all, lost, "{total}");
    (fwd, rev, u(&total["late"]))
}

#[test]
fn forward_loss_is_placed_forward() {
    // auto: the reflector shows itself stateful at the first probe lost on the way there.
    let (fwd, rev, late) = placed_loss("twfwd", "eth0", &[]);
    assert!(fwd > 0 && rev <= late, "{fwd} {rev} {late}");
}

#[test]
fn reverse_loss_is_placed_reverse() {
    // Only answers are lost: a stateful reflector's numbers equal the probes', as a stateless
    // one's do, so it has to be named stateful.
    let (fwd, rev, _) = placed_loss("twrev", "eth1", &["--reflector", "stateful"]);
    assert!(rev > 0 && fwd == 0, "{fwd} {rev}");
}

#[test]
fn auto_cannot_tell_reverse_loss_from_a_stateless_reflector() {
    let lab = Routed::new("twauto");
    let _reflector = stamp_suite_reflector(&lab.server, "10.0.2.1", &["--stateful-reflector"]);
    add_loss(&lab.router, "forward", "eth1", 30);
    let run = ltwamp(
        &lab.client,
        &[
            "-q", "-c", "60", "-i", "0.003", "-W", "1", "--tlv", "none", "10.0.2.1",
        ],
    );
    let total = run.total("10.0.2.1", None);
    assert!(u(&total["sent"]) > u(&total["received"]), "{total}");
    assert!(
        total.get("lost_fwd").is_none() && total.get("lost_rev").is_none(),
        "{total}"
    );
    // With the Direct Measurement TLV (the default), the reflector's counters tell: every
    // loss but the trailing ones is placed on the way back, none refused.
    let run = ltwamp(
        &lab.client,
        &["-c", "60", "-i", "0.003", "-W", "1", "10.0.2.1"],
    );
    let total = run.total("10.0.2.1", None);
    let lost = u(&total["sent"]) - u(&total["received"]);
    assert!(lost > 0, "{total}");
    let trailing = run.trailing_losses("10.0.2.1", u(&run.replies("10.0.2.1")[0]["flow"]["sport"]));
    assert_eq!(
        (
            u(&total["lost_fwd"]),
            u(&total["lost_rev"]) + trailing,
            u(&total["refused"])
        ),
        (0, lost, 0),
        "{total}"
    );
    // --reflector stateless never places loss, even where it could.
    add_loss(&lab.router, "forward", "eth0", 30);
    let run = ltwamp(
        &lab.client,
        &[
            "-q",
            "-c",
            "60",
            "-i",
            "0.003",
            "-W",
            "1",
            "--reflector",
            "stateless",
            "10.0.2.1",
        ],
    );
    let total = run.total("10.0.2.1", None);
    assert!(u(&total["sent"]) > u(&total["received"]), "{total}");
    assert!(total.get("lost_fwd").is_none(), "{total}");
}

#[test]
fn ptp_timestamps_and_the_sync_bit_are_read_from_the_reflector() {
    let lab = Pair::new("twptp");
    let _ptp = stamp_suite_reflector(
        &lab.server,
        "10.0.0.2",
        &["-K", "PTP", "--clock-synchronized"],
    );
    let _ntp = stamp_suite_reflector(&lab.server, "fd00::2", &[]);
    let run = ltwamp(
        &lab.client,
        &["-c", "5", "-i", "0.005", "10.0.0.2", "fd00::2"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    // PTP stamps read as NTP would be 70 years off: the one-way figures would show it.
    check_replies(&run, "10.0.0.2", 5, 64);
    let ours = lopa::clock::synchronized();
    for r in run.replies("10.0.0.2") {
        assert_eq!(r["synced"], ours, "S bit set, ours {ours}: {r}");
    }
    for r in run.replies("fd00::2") {
        assert_eq!(r["synced"], false, "S bit clear: {r}");
    }
}

#[test]
fn a_38_byte_reply_is_accepted_without_a_ttl() {
    let lab = Pair::new("tw38");
    let _reflector = python_reflector(&lab.server, 4000, false);
    let run = ltwamp(&lab.client, &["-c", "5", "-i", "0.01", "10.0.0.2:4000"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    let replies = run.replies("10.0.0.2:4000");
    assert_eq!(replies.len(), 5);
    for r in replies {
        assert_eq!(u(&r["size"]), 38, "{r}");
        assert!(r.get("reflector_ttl").is_none(), "{r}");
        assert_eq!(u(&r["reflector_seq"]), u(&r["seq"]) - 1, "{r}");
        let (rtt, fwd, rev) = (f(&r["rtt_ms"]), f(&r["fwd_ms"]), f(&r["rev_ms"]));
        assert!(rtt > 0.0 && (fwd + rev - rtt).abs() < 1e-5, "{r}");
    }
}

#[test]
fn short_and_foreign_replies_are_counted_malformed() {
    let lab = Pair::new("twnoise");
    let _reflector = python_reflector(&lab.server, 4000, true);
    // TWAMP-Light probes of 14 bytes: a reflector answers them too.
    let run = ltwamp(
        &lab.client,
        &[
            "-c",
            "4",
            "-i",
            "0.01",
            "-s",
            "14",
            "10.0.0.2:4000",
            "[fd00::2]:4000",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.kind("reply").len(), 8, "{:?}", run.records);
    // Per probe a 30-byte datagram and an answer with a T1 that is not the probe's.
    assert_eq!(
        run.stderr.trim(),
        "ltwamp: dropped 16 datagrams that were not answers to its probes"
    );
    let total = run.total("10.0.0.2:4000", None);
    assert_eq!((u(&total["received"]), u(&total["dup"])), (4, 0), "{total}");
}

#[test]
fn exit_status_follows_the_other_probes() {
    let lab = Pair::new("twexit");
    // Nothing listens: port unreachable, every probe answered by an error.
    let run = ltwamp(
        &lab.client,
        &["-c", "2", "-i", "0.01", "-W", "0.5", "10.0.0.2"],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(run.kind("unreachable").len(), 2, "{:?}", run.records);
    // Silence: timeouts.
    lab.server.run("nft add table inet t; nft add chain inet t in '{ type filter hook input priority 0; policy drop; }'");
    let run = ltwamp(
        &lab.client,
        &["-c", "2", "-i", "0.01", "-W", "0.2", "10.0.0.2"],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(run.kind("timeout").len(), 2, "{:?}", run.records);
    for (args, mentions) in [
        (&["-s", "13", "10.0.0.2"][..], "at least 14"),
        (&["--ssid", "7", "-s", "43", "10.0.0.2"][..], "--size 44"),
        (&["--ssid", "0", "10.0.0.2"][..], "--ssid"),
        (&["--reflector", "maybe", "10.0.0.2"][..], "possible values"),
        (&["10.0.0.2:0"][..], "port 0"),
    ] {
        let run = ltwamp(&lab.client, args);
        assert_eq!(run.status, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.starts_with("ltwamp: ") && run.stderr.contains(mentions),
            "{args:?}: {}",
            run.stderr
        );
    }
}

/// `lreflect --twamp [::]:862` in `ns` (both families), with `extra` arguments; up once bound.
fn lreflect_twamp(ns: &Netns, extra: &[&str]) -> Background {
    lreflect_service(ns, &[&["--twamp", "[::]:862"], extra].concat(), 862)
}

#[test]
fn against_lreflect_both_families() {
    let lab = Routed::new("twlref");
    let _reflector = lreflect_twamp(&lab.server, &[]);
    let run = ltwamp(
        &lab.client,
        &[
            "-c", "10", "-i", "0.005", "--flows", "2", "10.0.2.1", "fd02::1",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    let ours = lopa::clock::synchronized();
    for target in ["10.0.2.1", "fd02::1"] {
        check_replies(&run, target, 20, 63);
        for r in run.replies(target) {
            // Stateful per session (source port), as ours from 0; the S bit of the host
            // clock, which is ours too.
            assert_eq!(u(&r["reflector_seq"]), (u(&r["seq"]) - 1) / 2, "{r}");
            assert_eq!(r["synced"], ours, "{r}");
        }
    }
}

#[test]
fn against_lreflect_loss_is_placed_by_direction() {
    let lab = Routed::new("twlrefloss");
    let _reflector = lreflect_twamp(&lab.server, &[]);
    add_loss(&lab.router, "forward", "eth0", 20);
    let run = ltwamp(
        &lab.client,
        &["-q", "-c", "200", "-i", "0.003", "-W", "2", "10.0.2.1"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let total = run.total("10.0.2.1", None);
    let lost = u(&total["sent"]) - u(&total["received"]);
    assert!(lost >= 10, "{total}");
    // Only the losses after the last answer stay unplaced; -q hides which those are, so
    // bound them: at 20 % loss, a trailing run of 15 has odds of 3e-11.
    let (fwd, rev) = (u(&total["lost_fwd"]), u(&total["lost_rev"]));
    assert!(rev <= u(&total["late"]), "{total}");
    assert!(fwd <= lost && lost - fwd < 15, "{total}");
    // Only answers lost now (the rule set is replaced), lreflect named stateful.
    add_loss(&lab.router, "forward", "eth1", 20);
    let run = ltwamp(
        &lab.client,
        &[
            "-c",
            "200",
            "-i",
            "0.003",
            "-W",
            "2",
            "--reflector",
            "stateful",
            "10.0.2.1",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let total = run.total("10.0.2.1", None);
    let lost = u(&total["sent"]) - u(&total["received"]);
    let (fwd, rev) = (u(&total["lost_fwd"]), u(&total["lost_rev"]));
    let last = run
        .kind("reply")
        .iter()
        .map(|r| u(&r["seq"]))
        .max()
        .unwrap();
    let trailing = run
        .kind("timeout")
        .iter()
        .filter(|r| u(&r["seq"]) > last)
        .count() as u64;
    assert!(lost >= 10 && fwd == 0, "{total}");
    assert_eq!(rev + trailing, lost, "{total}");
}

#[test]
fn against_a_stateless_lreflect_nothing_is_placed() {
    let lab = Routed::new("twlrefsl");
    let _reflector = lreflect_twamp(&lab.server, &["--stateless"]);
    add_loss(&lab.router, "forward", "eth0", 20);
    let run = ltwamp(
        &lab.client,
        &[
            "-c", "100", "-i", "0.003", "-W", "1", "--flows", "2", "10.0.2.1",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    for r in run.replies("10.0.2.1") {
        assert_eq!(u(&r["reflector_seq"]), (u(&r["seq"]) - 1) / 2, "{r}");
    }
    let total = run.total("10.0.2.1", None);
    assert!(u(&total["sent"]) > u(&total["received"]), "{total}");
    assert!(total.get("lost_fwd").is_none(), "{total}");
}

/// client — r1 — r2 — server, IPv4 only: `client` eth0 10.3.1.1, `server` eth0 10.3.3.1, two
/// routers between them.
fn two_routers(test: &str) -> [Netns; 4] {
    let client = Netns::new(&format!("{test}-cli"));
    let r1 = Netns::new(&format!("{test}-r1"));
    let r2 = Netns::new(&format!("{test}-r2"));
    let server = Netns::new(&format!("{test}-srv"));
    link(
        &client,
        "eth0",
        &["10.3.1.1/24"],
        &r1,
        "eth0",
        &["10.3.1.254/24"],
    );
    link(&r1, "eth1", &["10.3.2.1/24"], &r2, "eth0", &["10.3.2.2/24"]);
    link(
        &r2,
        "eth1",
        &["10.3.3.254/24"],
        &server,
        "eth0",
        &["10.3.3.1/24"],
    );
    r1.enable_forwarding();
    r2.enable_forwarding();
    client.run("ip route add default via 10.3.1.254");
    r1.run("ip route add 10.3.3.0/24 via 10.3.2.2");
    r2.run("ip route add 10.3.1.0/24 via 10.3.2.1");
    server.run("ip route add default via 10.3.3.254");
    [client, r1, r2, server]
}

/// Summaries of ltwamp (against lreflect --twamp) and ludp (against lreflect's echo): the hops
/// each way where the TTLs tell (ludp: the way back only, lreflect's echo does not say what
/// TTL a probe arrived with), equal to the routers between, one and two; one-way delay
/// statistics exactly when both clocks are synchronized (here both are the host's clock).
#[test]
fn summaries_give_hop_counts_and_one_way_delays_when_synchronized() {
    let synced = lopa::clock::synchronized();
    let check = |client: &Netns, targets: &[&str], routers: u64| {
        let twamp = ltwamp(
            client,
            &[&["-q", "-c", "20", "-i", "0.002"], targets].concat(),
        );
        assert_eq!(twamp.status, 0, "{}", twamp.stderr);
        let echo_targets: Vec<String> = targets
            .iter()
            .map(|t| {
                if t.contains(':') {
                    format!("[{t}]:8081")
                } else {
                    format!("{t}:8081")
                }
            })
            .collect();
        let echo_targets: Vec<&str> = echo_targets.iter().map(|s| s.as_str()).collect();
        let echo = run_tool(
            client,
            env!("CARGO_BIN_EXE_ludp"),
            &[&["-q", "-c", "20", "-i", "0.002"], &echo_targets[..]].concat(),
        );
        assert_eq!(echo.status, 0, "{}", echo.stderr);
        for (t, e) in targets.iter().zip(&echo_targets) {
            let s = twamp.total(t, None);
            assert_eq!(
                (u(&s["hops_fwd"]), u(&s["hops_rev"])),
                (routers, routers),
                "{s}"
            );
            let s = echo.total(e, None);
            assert_eq!(u(&s["hops_rev"]), routers, "{s}");
            assert!(s.get("hops_fwd").is_none(), "{s}");
            for s in [twamp.total(t, None), echo.total(e, None)] {
                for member in ["fwd_ms", "rev_ms"] {
                    assert_eq!(s.get(member).is_some(), synced, "synced {synced}: {s}");
                }
                if synced {
                    let fwd = &s["fwd_ms"];
                    assert!(f(&fwd["min"]) <= f(&fwd["p50"]) && f(&fwd["p50"]) <= f(&fwd["max"]));
                }
            }
        }
    };
    let lab = Routed::new("twhops");
    let _twamp = lreflect_twamp(&lab.server, &[]);
    let _echo = lreflect_service(&lab.server, &["--echo", "[::]:8081"], 8081);
    check(&lab.client, &["10.0.2.1", "fd02::1"], 1);
    let [client, _r1, _r2, server] = two_routers("twhops2");
    let _twamp = lreflect_twamp(&server, &[]);
    let _echo = lreflect_service(&server, &["--echo", "[::]:8081"], 8081);
    check(&client, &["10.3.3.1"], 2);
}

/// Datagrams the kernel drops on this host, a flow socket's queue full, are counted apart from
/// the network's loss, as ludp's: ltwamp (a tiny receive queue) against stamp-suite is stopped
/// while 2,000 datagrams arrive at its flow's port; its summary's `dropped_local` is the
/// kernel's drop count of the socket (`/proc/net/udp`).
#[test]
fn datagrams_dropped_on_this_host_are_dropped_local_not_loss() {
    let ns = Netns::new("twampdropped");
    let _reflector = stamp_suite_reflector(&ns, "127.0.0.1", &[]);
    let program = env!("CARGO_BIN_EXE_ltwamp");
    assert_flow_socket_drops_counted(&ns, program, "127.0.0.1", 41600, "TWAMP");
}
