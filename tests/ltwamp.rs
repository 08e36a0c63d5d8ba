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
        (&["--tlv", "cos,hmac", "10.0.0.2"][..], "'hmac' is no TLV"),
        (
            &["-s", "30", "--tlv", "direct", "10.0.0.2"][..],
            "--size 44",
        ),
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

/// lreflect in `ns` with `args` (`--stats-every 0`: only the totals, at the end), its records
/// written to a file; `stop` ends it with SIGTERM and returns them.
struct LreflectWithStats {
    service: Background,
    out: std::path::PathBuf,
}

impl LreflectWithStats {
    fn start(ns: &Netns, args: &[&str], port: u16) -> LreflectWithStats {
        let out = std::env::temp_dir().join(format!("lopa-ltwamp-{}.stats", ns.name));
        let file = std::fs::File::create(&out).unwrap();
        let child = ns
            .command(env!("CARGO_BIN_EXE_lreflect"))
            .args(args)
            .args(["--stats-every", "0"])
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("start lreflect");
        let service = Background(child);
        wait_for_udp_socket(ns, &format!(":{port} "), "lreflect");
        LreflectWithStats { service, out }
    }

    fn stop(self) -> Vec<Value> {
        let pid = self.service.0.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let mut service = self.service;
        service.0.wait().unwrap();
        let text = std::fs::read_to_string(&self.out).unwrap();
        let _ = std::fs::remove_file(&self.out);
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Checks the RFC 8972 figures of every reply to `target`: the counters of a session of one
/// flow, the DSCP the probes left with (AF41) on arrival and back, the addresses the reflector
/// saw, its clock as `sync` and `method`, and no TLV refused or malformed.
fn check_tlv_replies(run: &ToolRun, target: &str, dport: u64, sync: &str, method: &str) {
    let replies = run.replies(target);
    assert_eq!(replies.len(), 5, "{target}: {}", run.stderr);
    for r in replies {
        let seq = u(&r["seq"]);
        let c = &r["counters"];
        assert_eq!(
            (
                u(&c["sender_tx"]),
                u(&c["reflector_rx"]),
                u(&c["reflector_tx"])
            ),
            (seq, seq, seq - 1),
            "{r}"
        );
        assert_eq!(u(&r["dscp_rx"]), 34, "{r}");
        assert_eq!(
            u(&r["tos"]),
            34 << 2,
            "answered in the class asked for: {r}"
        );
        assert!(r.get("dscp_rev").is_none(), "{r}");
        let l = &r["location"];
        assert_eq!(
            (&l["src"], &l["sport"], &l["dst"], u(&l["dport"])),
            (
                &Value::from("10.0.0.1"),
                &r["flow"]["sport"],
                &Value::from("10.0.0.2"),
                dport
            ),
            "{r}"
        );
        assert_eq!(r["reflector_clock"]["sync_out"], sync, "{r}");
        assert_eq!(r["reflector_clock"]["method_out"], method, "{r}");
        assert!(r.get("tlv_unsupported").is_none() && r.get("tlv_malformed").is_none());
        assert_eq!(u(&r["size"]), 160, "{r}");
    }
    let total = run.total(target, None);
    assert_eq!(
        (
            u(&total["received"]),
            u(&total["refused"]),
            u(&total["lost_fwd"])
        ),
        (5, 0, 0),
        "{total}"
    );
}

#[test]
fn rfc_8972_tlvs_against_lreflect_and_stamp_suite() {
    let lab = Pair::new("twtlv");
    let _lreflect = lreflect_service(&lab.server, &["--twamp", "[::]:863"], 863);
    let _stamp_suite =
        stamp_suite_reflector(&lab.server, "10.0.0.2", &["--clock-sync-source", "gps"]);
    let run = ltwamp(
        &lab.client,
        &[
            "-c",
            "5",
            "-i",
            "0.01",
            "--dscp",
            "AF41",
            "-s",
            "160",
            "--tlv",
            "cos,timestamp,direct,location,padding",
            "10.0.0.2",
            "10.0.0.2:863",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    // stamp-suite reports the clock source it was told, lreflect the host clock's state.
    // (GPS is one of the GNSS of RFC 8972's registry.)
    check_tlv_replies(&run, "10.0.0.2", 862, "gnss", "sw");
    let ours = if lopa::clock::synchronized() {
        "ntp"
    } else {
        "local"
    };
    check_tlv_replies(&run, "10.0.0.2:863", 863, ours, "sw");
    for r in run.replies("10.0.0.2:863") {
        assert_eq!(r["reflector_clock"]["sync_in"], ours, "{r}");
        assert_eq!(r["reflector_clock"]["method_in"], "sw", "{r}");
    }
    // A reflector that knows no TLVs (lreflect --stateless keeps no counters; it answers the
    // Direct Measurement TLV with U): ltwamp reads the answer as before and says so.
    let _stateless = lreflect_service(&lab.server, &["--twamp", "[::]:864", "--stateless"], 864);
    let run = ltwamp(&lab.client, &["-c", "3", "-i", "0.01", "10.0.0.2:864"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    for r in run.replies("10.0.0.2:864") {
        assert_eq!(r["tlv_unsupported"], serde_json::json!(["direct"]), "{r}");
        assert!(r.get("counters").is_none(), "{r}");
    }
    // --tlv in a TWAMP-Light packet: refused with what to do.
    let run = ltwamp(&lab.client, &["-s", "20", "--tlv", "cos", "10.0.0.2"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--size 44"), "{}", run.stderr);
}

#[test]
fn refused_is_lreflects_rate_limit_not_network_loss() {
    // ltwamp at 1,000 probes a second against lreflect's per-source limit of 100 a second:
    // the Direct Measurement counters tell the probes it refused from those the network lost.
    let lab = Routed::new("twrefused");
    let reflector = LreflectWithStats::start(
        &lab.server,
        &["--twamp", "[::]:862", "--rate-limit", "100", "--burst", "5"],
        862,
    );
    let run = ltwamp(
        &lab.client,
        &["-c", "400", "-i", "0.001", "-W", "1", "10.0.2.1"],
    );
    let records = reflector.stop();
    let stats = records
        .iter()
        .find(|r| r["window"] == "total")
        .unwrap_or_else(|| panic!("{records:?}"));
    let limited = u(&stats["dropped"]["rate_limit"]);
    assert!(limited > 200, "{stats}");
    let total = run.total("10.0.2.1", None);
    let sport = u(&run.replies("10.0.2.1")[0]["flow"]["sport"]);
    // The probes after the last answer: refused too, but no answer came to count them.
    let trailing = run.trailing_losses("10.0.2.1", sport);
    assert_eq!(u(&total["refused"]) + trailing, limited, "{total} {stats}");
    assert_eq!(
        (u(&total["lost_fwd"]), u(&total["lost_rev"])),
        (0, 0),
        "no network loss: {total}"
    );
    assert_eq!(u(&total["received"]) + limited, 400, "{total} {stats}");
    assert!(
        run.stderr.contains("refused"),
        "a line on stderr says so: {}",
        run.stderr
    );
}

/// An independent reading of STAMP TLVs (RFC 8972 section 4's layouts, with Python's struct,
/// none of lopa's code): for each `srcport|payload hex` line on stdin, the TLVs after the
/// 44-byte base packet, as JSON.
const TLV_DECODER: &str = r#"
import json, socket, struct, sys
out = []
for line in sys.stdin:
    sport, payload = line.rstrip("\n").split("|")[:2]
    b = bytes.fromhex(payload.replace(":", ""))
    tlvs, at = [], 44
    while at + 4 <= len(b):
        flags, kind, length = struct.unpack_from("!BBH", b, at)
        v = b[at + 4:at + 4 + length]
        t = {"flags": flags, "type": kind, "length": length}
        if kind == 4:  # Class of Service: DSCP1 (6) DSCP2 (6) ECN (2) RP (2), 16 reserved
            w, reserved = struct.unpack_from("!HH", v)
            t.update(dscp1=w >> 10, dscp2=(w >> 4) & 0x3F, ecn=(w >> 2) & 3, rp=w & 3,
                     reserved=reserved)
        elif kind == 5:  # Direct Measurement: S_TxC, R_RxC, R_TxC
            t.update(zip(("s_txc", "r_rxc", "r_txc"), struct.unpack_from("!III", v)))
        elif kind == 3:  # Timestamp Information
            t.update(zip(("sync_in", "method_in", "sync_out", "method_out"), v))
        elif kind == 2:  # Location: destination port, source port, sub-TLVs
            t["dport"], t["sport"] = struct.unpack_from("!HH", v)
            subs, s = [], 4
            while s + 4 <= len(v):
                f, st, sl = struct.unpack_from("!BBH", v, s)
                sv = v[s + 4:s + 4 + sl]
                sub = {"flags": f, "type": st, "length": sl}
                if st in (5, 8):
                    sub["addr"] = socket.inet_ntop(socket.AF_INET, sv[:4])
                elif st in (6, 9):
                    sub["addr"] = socket.inet_ntop(socket.AF_INET6, sv[:16])
                else:
                    sub["zero"] = not any(sv)
                subs.append(sub)
                s += 4 + sl
            t["subs"] = subs
        tlvs.append(t)
        at += 4 + length
    out.append({"sport": int(sport), "len": len(b), "rest": len(b) - at, "tlvs": tlvs})
print(json.dumps(out))
"#;

#[test]
fn tshark_and_an_independent_decoder_read_the_tlvs_on_the_wire() {
    // Wireshark 4.0 (Debian 12) has no dissector for STAMP TLVs: its TWAMP-Test dissector
    // shows them as padding. It checks the base packets; the TLVs are read from the capture
    // by an independent decoder written from RFC 8972's figures.
    let lab = Pair::new("twtlvwire");
    let _reflector = lreflect_twamp(&lab.server, &[]);
    let pcap = std::env::temp_dir().join(format!("lopa-ltwamp-{}.pcap", lab.server.name));
    let _ = std::fs::remove_file(&pcap);
    const N: usize = 3;
    let mut capture = lab
        .server
        .command("tshark")
        .args([
            "-i",
            "eth0",
            "-f",
            "udp port 862",
            "-c",
            &(2 * N).to_string(),
        ])
        .arg("-w")
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tshark");
    let mut said = String::new();
    {
        use std::io::BufRead;
        let mut stderr = std::io::BufReader::new(capture.stderr.take().unwrap());
        // "Capture started." once dumpcap captures.
        while !said.contains("Capture started") {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!("tshark ended: {said}");
            }
            said.push_str(&line);
        }
    }
    let capture = Background(capture);
    let run = ltwamp(
        &lab.client,
        &[
            "-c",
            "3",
            "-i",
            "0.01",
            "--dscp",
            "AF41",
            "-s",
            "160",
            "--tlv",
            "cos,timestamp,direct,location,padding",
            "10.0.0.2",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let mut capture = capture;
    let started = std::time::Instant::now();
    while capture.0.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "tshark did not see {} packets",
            2 * N
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(capture);
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args([
            "-d",
            "udp.port==862,twamp.test",
            "-T",
            "fields",
            "-E",
            "separator=|",
        ])
        .args([
            "-e",
            "udp.srcport",
            "-e",
            "udp.payload",
            "-e",
            "twamp.test.seq_number",
        ])
        .args([
            "-e",
            "twamp.test.sender_seq_number",
            "-e",
            "_ws.expert",
            "-e",
            "_ws.malformed",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("run tshark");
    let _ = std::fs::remove_file(&pcap);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2 * N, "{text}");
    for line in text.lines() {
        let v: Vec<&str> = line.split('|').collect();
        // tshark decodes every base packet as TWAMP-Test, without a warning.
        assert!(!v[2].is_empty(), "a sequence number: {line}");
        assert_eq!(
            (v[4], v[5]),
            ("", ""),
            "no expert info, not malformed: {line}"
        );
    }
    let mut python = std::process::Command::new("python3")
        .args(["-c", TLV_DECODER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        python
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let decoded = python.wait_with_output().unwrap();
    let packets: Vec<Value> = serde_json::from_slice(&decoded.stdout).expect("the decoder's JSON");
    let sport = u(&run.replies("10.0.0.2")[0]["flow"]["sport"]);
    let (mut requests, mut answers) = (0u64, 0u64);
    for p in &packets {
        assert_eq!(
            (u(&p["len"]), u(&p["rest"])),
            (160, 0),
            "TLVs fill the packet: {p}"
        );
        let t = p["tlvs"].as_array().unwrap();
        let kinds: Vec<u64> = t.iter().map(|t| u(&t["type"])).collect();
        assert_eq!(kinds, [2, 3, 4, 5, 1], "{p}");
        let flags: Vec<u64> = t.iter().map(|t| u(&t["flags"])).collect();
        let (loc, ts, cos, dm) = (&t[0], &t[1], &t[2], &t[3]);
        assert_eq!(
            (u(&cos["dscp1"]), u(&cos["rp"]), u(&cos["reserved"])),
            (34, 0, 0),
            "{p}"
        );
        if u(&p["sport"]) == 862 {
            answers += 1;
            // Every TLV understood: U clear; the reflector's fields filled in.
            assert_eq!(flags, [0; 5], "{p}");
            assert_eq!((u(&cos["dscp2"]), u(&cos["ecn"])), (34, 0), "{p}");
            assert_eq!(
                (u(&dm["s_txc"]), u(&dm["r_rxc"]), u(&dm["r_txc"])),
                (answers, answers, answers - 1),
                "{p}"
            );
            assert!(
                matches!(u(&ts["sync_out"]), 1 | 5),
                "NTP or free-running: {p}"
            );
            assert_eq!((u(&ts["method_in"]), u(&ts["method_out"])), (2, 2), "{p}");
            assert_eq!((u(&loc["dport"]), u(&loc["sport"])), (862, sport), "{p}");
            let subs: Vec<(u64, &Value)> = loc["subs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (u(&s["type"]), &s["addr"]))
                .collect();
            assert_eq!(
                subs,
                [(5, &Value::from("10.0.0.2")), (8, &Value::from("10.0.0.1"))],
                "Destination and Source IPv4 Address sub-TLVs: {p}"
            );
        } else {
            requests += 1;
            // A sender sets U on every TLV and leaves the reflector's fields zero.
            assert_eq!(flags, [0x80; 5], "{p}");
            assert_eq!(u(&cos["dscp2"]), 0, "{p}");
            assert_eq!(
                (u(&dm["s_txc"]), u(&dm["r_rxc"]), u(&dm["r_txc"])),
                (requests, 0, 0),
                "{p}"
            );
            assert_eq!((u(&ts["sync_out"]), u(&loc["dport"])), (0, 0), "{p}");
            let subs: Vec<(u64, bool)> = loc["subs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (u(&s["type"]), s["zero"] == true))
                .collect();
            assert_eq!(subs, [(4, true), (7, true)], "{p}");
        }
    }
    assert_eq!((requests, answers), (N as u64, N as u64));
}
