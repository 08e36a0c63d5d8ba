//! lping against real kernels: network namespaces, veth links, nftables loss, a router.
//! Needs root (CI runs as root); without it every test fails with one line saying so.

mod common;

use common::lab::*;
use serde_json::Value;

/// The records of type `kind` among `records`.
fn of_kind(kind: &str, records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["type"] == kind)
        .cloned()
        .collect()
}

fn lping(ns: &Netns, args: &[&str]) -> ToolRun {
    run_tool(ns, env!("CARGO_BIN_EXE_lping"), args)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// Replies over IPv4 and IPv6 with the right seq, ttl and size, on both socket kinds.
fn neighbour_replies(ns_setup: impl Fn(&Pair), socket: &str) {
    let lab = Pair::new(&format!("nb-{socket}"));
    ns_setup(&lab);
    let run = lping(
        &lab.client,
        &[
            "-c", "3", "-i", "0.05", "-s", "100", "--socket", socket, "10.0.0.2", "fd00::2",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    for target in ["10.0.0.2", "fd00::2"] {
        let replies: Vec<&Value> = run
            .kind("reply")
            .into_iter()
            .filter(|r| r["target"] == target)
            .collect();
        let seqs: Vec<u64> = replies.iter().map(|r| u(&r["seq"])).collect();
        assert_eq!(seqs, [1, 2, 3], "{target}");
        for r in &replies {
            assert_eq!(u(&r["ttl"]), 64, "{r}");
            assert_eq!(u(&r["size"]), 108, "ICMP header + 100 data bytes: {r}");
            assert_eq!(r["addr"], target);
            let rtt = r["rtt_ms"].as_f64().unwrap();
            assert!(rtt > 0.0 && rtt < 1000.0, "{r}");
        }
        let s = run.summary(target);
        assert_eq!((u(&s["sent"]), u(&s["received"])), (3, 3));
        assert_eq!(s["loss_pct"], 0.0);
    }
}

#[test]
fn neighbour_replies_on_datagram_sockets() {
    neighbour_replies(|lab| lab.client.allow_ping_sockets(), "dgram");
}

#[test]
fn neighbour_replies_on_raw_sockets() {
    // ping_group_range stays "1 0" here: datagram sockets are refused, raw is the only way.
    neighbour_replies(|_| {}, "raw");
}

#[test]
fn auto_falls_back_to_raw_and_dgram_refusal_says_what_to_do() {
    let lab = Pair::new("auto");
    let run = lping(&lab.client, &["-c", "1", "10.0.0.2"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.kind("reply").len(), 1);
    let refused = lping(&lab.client, &["-c", "1", "--socket", "dgram", "10.0.0.2"]);
    assert_eq!(refused.status, 2);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("ping_group_range"),
        "{}",
        refused.stderr
    );
}

#[test]
fn ttl_counts_the_router_hop() {
    let lab = Routed::new("hop");
    let run = lping(
        &lab.client,
        &["-c", "2", "-i", "0.05", "10.0.2.1", "fd02::1"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    for r in run.kind("reply") {
        assert_eq!(u(&r["ttl"]), 63, "one router on the way back: {r}");
    }
}

#[test]
fn twenty_percent_loss_is_measured_within_the_binomial_band() {
    let lab = Pair::new("loss");
    lab.client.allow_ping_sockets();
    add_loss(&lab.server, "input", "eth0", 20);
    let n = 400;
    let run = lping(
        &lab.client,
        &[
            "-q",
            "-c",
            &n.to_string(),
            "-i",
            "0.005",
            "-W",
            "0.5",
            "10.0.0.2",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.kind("reply").is_empty() && run.kind("timeout").is_empty(),
        "-q writes summaries only"
    );
    let s = run.summary("10.0.0.2");
    assert_eq!(u(&s["sent"]), n);
    let lost = n - u(&s["received"]);
    // Binomial(400, 0.2): mean 80, sd 8; ±4.5 sd is a false-failure rate below 1e-5.
    assert!((44..=116).contains(&lost), "lost {lost} of {n}");
    let loss_pct = s["loss_pct"].as_f64().unwrap();
    assert!((loss_pct - lost as f64 * 100.0 / n as f64).abs() < 1e-9);
}

#[test]
fn silent_target_times_out_with_exit_status_one() {
    let lab = Pair::new("silent");
    add_loss(&lab.server, "input", "eth0", 100);
    let run = lping(
        &lab.client,
        &["-c", "3", "-i", "0.05", "-W", "0.2", "10.0.0.2"],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    let seqs: Vec<u64> = run.kind("timeout").iter().map(|r| u(&r["seq"])).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let s = run.summary("10.0.0.2");
    assert_eq!(
        (u(&s["sent"]), u(&s["received"]), s["loss_pct"].as_f64()),
        (3, 0, Some(100.0))
    );
}

#[test]
fn some_answering_is_status_one_all_answering_is_zero() {
    let lab = Pair::new("mixed");
    // 10.0.0.3 is on the link but nobody has it.
    let run = lping(
        &lab.client,
        &["-c", "2", "-i", "0.05", "-W", "0.2", "10.0.0.2", "10.0.0.3"],
    );
    assert_eq!(run.status, 1);
    assert_eq!(u(&run.summary("10.0.0.2")["received"]), 2);
    assert_eq!(u(&run.summary("10.0.0.3")["received"]), 0);
}

/// A router answers for a prefix it has an `unreachable` route to.
fn route_to_nowhere(socket: &str) {
    let lab = Routed::new(&format!("nowhere-{socket}"));
    if socket == "dgram" {
        lab.client.allow_ping_sockets();
    }
    let run = lping(
        &lab.client,
        &[
            "-c",
            "2",
            "-i",
            "0.05",
            "--socket",
            socket,
            "10.99.0.1",
            "fd99::1",
        ],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    let v4: Vec<&Value> = run
        .kind("unreachable")
        .into_iter()
        .filter(|r| r["target"] == "10.99.0.1")
        .collect();
    assert_eq!(v4.len(), 2, "{:?}", run.records);
    for r in &v4 {
        assert_eq!(r["from"], "10.0.1.254");
        assert_eq!((u(&r["icmp_type"]), u(&r["icmp_code"])), (3, 1));
        assert_eq!(r["reason"], "host unreachable");
    }
    let v6: Vec<&Value> = run
        .kind("unreachable")
        .into_iter()
        .filter(|r| r["target"] == "fd99::1")
        .collect();
    assert_eq!(v6.len(), 2, "{:?}", run.records);
    for r in &v6 {
        assert_eq!(r["from"], "fd01::254");
        assert_eq!(u(&r["icmp_type"]), 1, "ICMPv6 destination unreachable: {r}");
    }
    let s = run.summary("10.99.0.1");
    assert_eq!((u(&s["unreachable"]), u(&s["received"])), (2, 0));
}

#[test]
fn route_to_nowhere_is_unreachable_on_raw_sockets() {
    route_to_nowhere("raw");
}

#[test]
fn route_to_nowhere_is_unreachable_on_datagram_sockets() {
    route_to_nowhere("dgram");
}

#[test]
fn ttl_too_small_gives_time_exceeded_from_the_router() {
    for socket in ["raw", "dgram"] {
        let lab = Routed::new(&format!("ttl-{socket}"));
        lab.client.allow_ping_sockets();
        let run = lping(
            &lab.client,
            &[
                "-c", "1", "-t", "1", "--socket", socket, "10.0.2.1", "fd02::1",
            ],
        );
        assert_eq!(run.status, 1, "{}", run.stderr);
        let errs = run.kind("unreachable");
        assert_eq!(errs.len(), 2, "{socket}: {:?}", run.records);
        let r4 = errs.iter().find(|r| r["target"] == "10.0.2.1").unwrap();
        assert_eq!(
            (u(&r4["icmp_type"]), r4["reason"].as_str()),
            (11, Some("time exceeded in transit"))
        );
        assert_eq!(r4["from"], "10.0.1.254");
        let r6 = errs.iter().find(|r| r["target"] == "fd02::1").unwrap();
        assert_eq!(
            (u(&r6["icmp_type"]), r6["reason"].as_str()),
            (3, Some("hop limit exceeded in transit"))
        );
    }
}

#[test]
fn local_route_failure_is_unreachable_without_from() {
    let lab = Pair::new("localerr");
    lab.client.run("ip route add unreachable 198.51.100.0/24");
    let run = lping(&lab.client, &["-c", "1", "198.51.100.7"]);
    assert_eq!(run.status, 1);
    let r = &run.kind("unreachable")[0];
    assert_eq!(r["reason"], "no route to host");
    assert!(
        r.get("from").is_none() && r.get("icmp_type").is_none(),
        "{r}"
    );
}

#[test]
fn two_raw_pingers_never_take_each_others_replies() {
    let lab = Pair::new("twoproc");
    require_root();
    let spawn = || {
        lab.client
            .command(env!("CARGO_BIN_EXE_lping"))
            .args(["-c", "40", "-i", "0.01", "--socket", "raw", "10.0.0.2"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let records: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let replies = of_kind("reply", &records);
        assert_eq!(
            replies.len(),
            40,
            "each process sees exactly its own replies"
        );
        assert!(replies.iter().all(|r| r.get("dup").is_none()));
        let s = records.last().unwrap();
        assert_eq!((u(&s["received"]), u(&s["dup"])), (40, 0));
    }
}

#[test]
fn tos_size_interface_and_mark_reach_the_wire() {
    let lab = Pair::new("opts");
    // Count what arrives at the server: TOS 0x10 and 300-byte ICMP messages (+20 IP).
    lab.server.run(
        "nft add table inet probe; \
         nft add chain inet probe in '{ type filter hook input priority 0; }'; \
         nft add rule inet probe in ip dscp cs0 ip length 328 meta l4proto icmp counter drop; \
         nft add rule inet probe in ip dscp 0x04 ip length 328 meta l4proto icmp counter",
    );
    lab.client.run(
        "nft add table inet probe; \
         nft add chain inet probe out '{ type filter hook output priority 0; }'; \
         nft add rule inet probe out meta mark 0x2a meta l4proto icmp counter",
    );
    let run = lping(
        &lab.client,
        &[
            "-c", "3", "-i", "0.05", "-Q", "0x10", "-s", "300", "-m", "0x2a", "-I", "eth0",
            "10.0.0.2",
        ],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let server = lab.server.run("nft list chain inet probe in");
    assert!(
        server.contains("packets 0 bytes 0 drop"),
        "no probe left without its TOS: {server}"
    );
    assert!(
        server.contains("counter packets 3 "),
        "three probes with TOS 0x10 and 300 data bytes: {server}"
    );
    let client = lab.client.run("nft list chain inet probe out");
    assert!(
        client.contains("counter packets 3 "),
        "three probes with mark 42: {client}"
    );
    // Bound to a source address, too; and a missing interface is a clear error.
    let run = lping(&lab.client, &["-c", "1", "-I", "10.0.0.1", "10.0.0.2"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let bad = lping(&lab.client, &["-c", "1", "-I", "nosuch0", "10.0.0.2"]);
    assert_eq!(bad.status, 2);
    assert!(
        bad.stderr
            .starts_with("lping: cannot bind to interface nosuch0"),
        "{}",
        bad.stderr
    );
}

#[test]
fn link_local_target_with_zone() {
    let lab = Pair::new("zone");
    lab.client.run("ip addr add fe80::1/64 dev eth0 nodad");
    lab.server.run("ip addr add fe80::2/64 dev eth0 nodad");
    // -W 3: under load the first neighbour solicitation can go before the veth carries, and
    // the kernel asks again only a second later (it failed once in a loaded full run).
    let run = lping(
        &lab.client,
        &["-c", "2", "-i", "0.05", "-W", "3", "fe80::2%eth0"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let replies = run.kind("reply");
    assert_eq!(replies.len(), 2);
    assert_eq!(
        (replies[0]["target"].as_str(), replies[0]["addr"].as_str()),
        (Some("fe80::2%eth0"), Some("fe80::2"))
    );
}

#[test]
fn malformed_packets_are_counted_and_dropped() {
    let lab = Pair::new("malformed");
    require_root();
    let mut child = lab
        .client
        .command(env!("CARGO_BIN_EXE_lping"))
        .args(["-c", "40", "-i", "0.05", "--socket", "raw", "10.0.0.2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once lping has its first reply, its socket is open (and two seconds of probing are left
    // for a slow python to start): from the server, five echo replies
    // with a wrong checksum, and a 3-byte message that the kernel's ICMP_FILTER already drops
    // (it reads an 8-byte header).
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut text).unwrap();
    lab.server.run(
        "python3 -c \"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for i in range(5):
    s.sendto(bytes([0, 0, 0xde, 0xad, 0x12, 0x34, 0, i]) + bytes(56), ('10.0.0.1', 0))
s.sendto(bytes([0, 0, 0xff]), ('10.0.0.1', 0))
\"",
    );
    std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let s = records.last().unwrap();
    assert_eq!(
        (u(&s["sent"]), u(&s["received"]), u(&s["dup"])),
        (40, 40, 0),
        "the run is undisturbed"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        "lping: dropped 5 datagrams that were not answers to its probes\n"
    );
}

#[test]
fn setcap_install_runs_unprivileged_and_drops_its_capability() {
    require_root();
    // A copy of lping with cap_net_raw, run as nobody (ping_group_range stays closed there).
    let dir = std::env::temp_dir().join(format!("lopa-setcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("lping");
    std::fs::copy(env!("CARGO_BIN_EXE_lping"), &bin).unwrap();
    let ns = Netns::new("setcap");
    let sh = |cmd: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    sh(&format!(
        "chmod 755 {0} {1} && setcap cap_net_raw+ep {1}",
        dir.display(),
        bin.display()
    ));
    let mut child = ns
        .command("su")
        .args(["nobody", "-s", "/bin/sh", "-c"])
        .arg(format!("exec {} -i 0.05 127.0.0.1", bin.display()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        first["type"], "reply",
        "nobody pings with the file capability: {first}"
    );
    let pid = sh(&format!(
        "pgrep -f -x '{} -i 0.05 127.0.0.1'",
        bin.display()
    ));
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    for set in ["CapPrm", "CapEff"] {
        let line = status.lines().find(|l| l.starts_with(set)).unwrap();
        assert!(
            line.ends_with("0000000000000000"),
            "{set} after the sockets are open: {line}"
        );
    }
}

/// 2,000 ICMP messages of `icmp_type` to 127.0.0.1 with identifier `ident` (a Python
/// expression), from a raw socket: a flood for [`run_flooded`].
fn icmp_flood(icmp_type: u8, ident: &str) -> String {
    format!(
        r#"
import socket, struct
ident = {ident}
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for i in range(2000):
    m = struct.pack("!BBHHH", {icmp_type}, 0, 0, ident, i) + bytes(16)
    c = sum(struct.unpack("!%dH" % (len(m) // 2), m))
    c = (c >> 16) + (c & 0xffff)
    c = ~(c + (c >> 16)) & 0xffff
    s.sendto(m[:2] + struct.pack("!H", c) + m[4:], ("127.0.0.1", 0))
"#
    )
}

/// Echo replies the kernel drops on this host, lping's receive queue full, are counted apart from
/// the network's loss: lping (a tiny receive queue) is stopped while 2,000 echo replies arrive
/// for its socket; its summary's `dropped_local` is the kernel's drop count of the socket
/// (`/proc/net/raw`, `/proc/net/icmp`), stderr names the socket, and its own probes count no
/// loss. A raw socket gets the replies to anyone's echo requests; a datagram socket those with
/// its identifier (its port in `/proc/net/icmp`), which the flood sends itself.
#[test]
fn answers_dropped_on_this_host_are_dropped_local_not_loss() {
    for socket in ["raw", "dgram"] {
        let ns = Netns::new("droppedlocal");
        ns.allow_ping_sockets();
        let (flood, table, port) = match socket {
            "raw" => (icmp_flood(8, "0x4242"), "raw", Some(1)),
            _ => {
                let port = r#"int(open("/proc/net/icmp").read().split()[16].split(":")[1], 16)"#;
                (icmp_flood(0, port), "icmp", None)
            }
        };
        let args = [
            "--socket",
            socket,
            "-c",
            "2",
            "-i",
            "3",
            "-W",
            "1",
            "127.0.0.1",
        ];
        let lping = env!("CARGO_BIN_EXE_lping");
        let (run, kernel) = run_flooded(&ns, lping, &args, &flood, table, port);
        let words = format!("the ICMP {socket} socket (IPv4)").replace("dgram", "datagram");
        assert_dropped_local_is_the_kernels(&run, kernel, &words);
    }
}

/// The issue's sweep: every address of a /16 on loopback, one probe each, at the default
/// --rate. All at once (the first probes of 65,534 targets spread over one second) overflowed
/// the socket's receive queue and read as 22 % loss; at the rate, every one answers, and no
/// answer is dropped on this host.
#[test]
fn a_slash_16_sweep_at_the_default_rate_loses_nothing_on_loopback() {
    let ns = Netns::new("sweep16");
    let run = lping(&ns, &["-q", "-c", "1", "127.0.0.0/16"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let summaries = run.kind("summary");
    assert_eq!(summaries.len(), 65_534);
    let answered = summaries.iter().filter(|s| s["received"] == 1).count();
    assert_eq!(answered, 65_534, "{}", run.stderr);
    assert!(summaries.iter().all(|s| s.get("dropped_local").is_none()));
    // 65,534 targets every second would be above the rate: said once.
    assert_eq!(
        run.stderr.matches("would be more than --rate").count(),
        1,
        "{}",
        run.stderr
    );
}

/// 14 targets every 10 ms would be 1,400 probes/s: at --rate 500 each target is probed every
/// 28 ms instead (said once on stderr), and the replies come no faster than the rate, give or
/// take the event loop's millisecond.
#[test]
fn the_rate_stretches_the_schedule_and_says_so() {
    let ns = Netns::new("rate");
    let run = lping(
        &ns,
        &["-c", "3", "-i", "0.01", "--rate", "500", "127.0.0.0/28"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim(),
        "lping: 14 targets every 10ms would be more than --rate 500 probes/s: each target is \
         probed every 28ms instead"
    );
    let ts = |r: &Value| -> std::time::SystemTime {
        humantime::parse_rfc3339(r["ts"].as_str().unwrap()).unwrap()
    };
    let mut at: Vec<std::time::SystemTime> = run.kind("reply").into_iter().map(ts).collect();
    assert_eq!(at.len(), 42);
    at.sort();
    for w in at.windows(6) {
        let span = w[5].duration_since(w[0]).unwrap();
        // Five gaps of 2 ms, less the millisecond either end may be early or late.
        assert!(span >= std::time::Duration::from_millis(8), "{span:?}");
    }
    for target in (1..=14).map(|i| format!("127.0.0.{i}")) {
        let mut mine: Vec<std::time::SystemTime> = run
            .kind("reply")
            .into_iter()
            .filter(|r| r["target"] == target.as_str())
            .map(ts)
            .collect();
        mine.sort();
        // 56 ms on the schedule, less the loop's late wake-ups (a busy host); a probe the rate
        // delayed does not bring the next one closer.
        let span = mine[2].duration_since(mine[0]).unwrap();
        assert!(
            span >= std::time::Duration::from_millis(45),
            "{target}: {span:?}"
        );
    }
}
