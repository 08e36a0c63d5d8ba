//! lpassive in the namespace lab: exact counter deltas against known traffic and against
//! `ip -s -j link`, interfaces re-created and renamed mid-run, link state changes, the RX
//! threshold, and bad interface names. Needs root (CI runs as root); without it every test
//! fails with one line saying so.

mod common;

use common::lab::*;
use common::process::{spawn_streamed, Streamed};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const LPASSIVE: &str = env!("CARGO_BIN_EXE_lpassive");
/// Longest any lpassive process may live in a test; past it the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// Sends `n` UDP datagrams of `payload` bytes from inside `ns` to `to`.
fn send_udp(ns: &Netns, to: &str, n: usize, payload: usize) {
    let to: SocketAddr = to.parse().unwrap();
    in_netns(ns, move || {
        let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let s = UdpSocket::bind(bind).expect("bind");
        let data = vec![0x5a; payload];
        for _ in 0..n {
            assert_eq!(s.send_to(&data, to).expect("send"), payload);
        }
    });
}

/// A UDP sink on port 9999 (IPv4 and IPv6) inside `ns`, so datagrams draw no ICMP errors.
fn sink(ns: &Netns) -> Background {
    let child = ns
        .command("python3")
        .args([
            "-c",
            "import socket,time\n\
             s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,0)\n\
             s.bind(('::',9999))\nprint('ready',flush=True)\ntime.sleep(60)",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut bg = Background(child);
    let mut line = String::new();
    BufReader::new(bg.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    bg
}

/// Two namespaces joined by veth `a0` (10.7.0.1, fd07::1) — `b0` (10.7.0.2, fd07::2), with
/// permanent neighbour entries both ways so no ARP or neighbour discovery adds packets.
/// Without `v6`, IPv6 is disabled in both namespaces, so no MLD report adds packets either.
fn quiet_pair(test: &str, v6: bool) -> (Netns, Netns) {
    let a = Netns::new(&format!("{test}-a"));
    let b = Netns::new(&format!("{test}-b"));
    if !v6 {
        for ns in [&a, &b] {
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
        }
    }
    let (aa, ba): (&[&str], &[&str]) = if v6 {
        (
            &["10.7.0.1/24", "fd07::1/64"],
            &["10.7.0.2/24", "fd07::2/64"],
        )
    } else {
        (&["10.7.0.1/24"], &["10.7.0.2/24"])
    };
    link(&a, "a0", aa, &b, "b0", ba);
    let mac = |ns: &Netns, i: &str| ns.run(&format!("cat /sys/class/net/{i}/address"));
    let (ma, mb) = (mac(&a, "a0"), mac(&b, "b0"));
    let neigh = |ns: &Netns, dev: &str, v4: &str, v6addr: &str, lladdr: &str| {
        let lladdr = lladdr.trim();
        ns.run(&format!(
            "ip neigh replace {v4} lladdr {lladdr} dev {dev} nud permanent"
        ));
        if v6 {
            ns.run(&format!(
                "ip -6 neigh replace {v6addr} lladdr {lladdr} dev {dev} nud permanent"
            ));
        }
    };
    neigh(&a, "a0", "10.7.0.2", "fd07::2", &mb);
    neigh(&b, "b0", "10.7.0.1", "fd07::1", &ma);
    (a, b)
}

/// `ip -s -j link` counters of one interface: (rx bytes, rx packets, tx bytes, tx packets).
fn ip_counters(ns: &Netns, iface: &str) -> [u64; 4] {
    let out = ns.run(&format!("ip -s -j link show dev {iface}"));
    let v: Value = serde_json::from_str(&out).expect("ip -j output");
    let s = &v[0]["stats64"];
    let n = |x: &Value| x.as_u64().expect("counter");
    [
        n(&s["rx"]["bytes"]),
        n(&s["rx"]["packets"]),
        n(&s["tx"]["bytes"]),
        n(&s["tx"]["packets"]),
    ]
}

/// Waits until no counter of `iface` moved for 1.2 s (MLD reports and the like are over).
fn settle(ns: &Netns, iface: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = ip_counters(ns, iface);
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_millis(1200) {
        assert!(Instant::now() < deadline, "{iface} never went quiet");
        thread::sleep(Duration::from_millis(100));
        let now = ip_counters(ns, iface);
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// One line of lpassive's output, which must be a JSON record.
fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// A running lpassive whose stdout is read as JSON records.
struct Running {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    started: Instant,
    seen: Vec<Value>,
}

impl Running {
    fn spawn(ns: &Netns, args: &[&str]) -> Running {
        let Streamed {
            child,
            lines,
            stderr,
        } = spawn_streamed(ns.command(LPASSIVE).args(args).stderr(Stdio::piped()));
        Running {
            child,
            lines,
            stderr,
            started: Instant::now(),
            seen: Vec::new(),
        }
    }

    /// Reads records until one satisfies `pred`; returns it.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let left = DEADLINE.saturating_sub(self.started.elapsed());
            match self.lines.recv_timeout(left).map(|l| json(&l)) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within {DEADLINE:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("lpassive ended before {what}: {:?}", self.seen)
                }
            }
        }
    }

    /// The next `n` samples of `ifname` (a full sampling round, when one sample each).
    fn samples(&mut self, ifname: &str, n: usize) {
        for _ in 0..n {
            self.wait_for("a sample", |v| {
                v["type"] == "sample" && v["ifname"] == ifname
            });
        }
    }

    /// SIGINT, then every record of the run; the exit status must be 0.
    fn stop(self) -> Vec<Value> {
        self.stop_with("INT")
    }

    /// Signal `sig` (INT, TERM, HUP), then every record of the run; the exit status must be 0.
    fn stop_with(mut self, sig: &str) -> Vec<Value> {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
        loop {
            let left = DEADLINE.saturating_sub(self.started.elapsed());
            match self.lines.recv_timeout(left).map(|l| json(&l)) {
                Ok(v) => self.seen.push(v),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("lpassive did not end on SIG{sig}"),
            }
        }
        let status = self.child.wait().expect("wait");
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "lpassive failed ({status}): {stderr}");
        assert!(stderr.is_empty(), "unexpected stderr: {stderr}");
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn of<'a>(records: &'a [Value], kind: &str, ifname: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == kind && r["ifname"] == ifname)
        .collect()
}

fn summary<'a>(records: &'a [Value], ifname: &str) -> &'a Value {
    let s = of(records, "iface_summary", ifname);
    assert_eq!(s.len(), 1, "one iface_summary for {ifname}: {records:?}");
    s[0]
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count: {v}"))
}

/// No sample of the run has a wrapped-around counter or rate.
fn assert_no_giant_values(records: &[Value]) {
    for r in records.iter().filter(|r| r["type"] == "sample") {
        for key in ["rx_bytes", "tx_bytes", "rx_packets", "tx_packets"] {
            assert!(u(r, key) < 1 << 32, "giant {key}: {r}");
        }
        for key in ["rx_bps", "tx_bps", "rx_pps", "tx_pps"] {
            let v = r[key].as_f64().unwrap();
            assert!((0.0..1e10).contains(&v), "giant {key}: {r}");
        }
    }
}

#[test]
fn deltas_are_exact_on_both_ends_and_match_ip() {
    require_root();
    let (a, b) = quiet_pair("pas-exact", true);
    let _sink = sink(&b);
    settle(&a, "a0");
    settle(&b, "b0");
    let ip_a0 = ip_counters(&a, "a0");
    let ip_b0 = ip_counters(&b, "b0");
    let mut pa = Running::spawn(&a, &["-i", "0.1", "a0"]);
    let mut pb = Running::spawn(&b, &["-i", "0.1"]);
    pa.samples("a0", 1);
    pb.samples("b0", 1);

    const V4: (usize, usize) = (50, 100);
    const V6: (usize, usize) = (30, 200);
    send_udp(&a, "10.7.0.2:9999", V4.0, V4.1);
    send_udp(&a, "[fd07::2]:9999", V6.0, V6.1);
    let packets = (V4.0 + V6.0) as u64;
    let bytes = (V4.0 * (V4.1 + 14 + 20 + 8) + V6.0 * (V6.1 + 14 + 40 + 8)) as u64;
    // Three more rounds: the traffic is in the samples.
    pa.samples("a0", 3);
    pb.samples("b0", 3);
    let ip_a1 = ip_counters(&a, "a0");
    let ip_b1 = ip_counters(&b, "b0");
    let ra = pa.stop();
    let rb = pb.stop();

    for (records, ifname, dir, ip0, ip1) in [
        (&ra, "a0", "tx", ip_a0, ip_a1),
        (&rb, "b0", "rx", ip_b0, ip_b1),
    ] {
        let s = summary(records, ifname);
        assert_eq!(u(s, &format!("{dir}_packets")), packets, "{s}");
        assert_eq!(u(s, &format!("{dir}_bytes")), bytes, "{s}");
        let other = if dir == "tx" { "rx" } else { "tx" };
        assert_eq!(u(s, &format!("{other}_packets")), 0, "nothing else: {s}");
        assert_eq!(u(s, "resets"), 0);
        // The same as `ip -s -j link` over the run.
        let ip = [
            ip1[0] - ip0[0],
            ip1[1] - ip0[1],
            ip1[2] - ip0[2],
            ip1[3] - ip0[3],
        ];
        assert_eq!(
            [
                u(s, "rx_bytes"),
                u(s, "rx_packets"),
                u(s, "tx_bytes"),
                u(s, "tx_packets")
            ],
            ip,
            "{ifname} against ip -s -j link"
        );
        // The samples add up to the summary, and each reports its own interval.
        let samples = of(records, "sample", ifname);
        assert_eq!(samples.len() as u64, u(s, "samples"));
        let sum: u64 = samples.iter().map(|x| u(x, &format!("{dir}_bytes"))).sum();
        assert_eq!(sum, bytes);
        for x in &samples {
            let secs = x["interval_s"].as_f64().unwrap();
            assert!((0.05..1.0).contains(&secs), "interval {secs}: {x}");
            let bps = x[format!("{dir}_bps")].as_f64().unwrap();
            let want = u(x, &format!("{dir}_bytes")) as f64 * 8.0 / secs;
            // interval_s is written to the microsecond (6 decimals), the rate from the exact one.
            assert!((bps - want).abs() <= want * (1e-6 / secs), "{x}");
            assert_eq!(x["oper"], "up");
            assert_eq!(x["carrier"], true);
            assert_eq!(x["mtu"], 1500);
            assert_eq!(x["speed_mbps"], 10000, "veth reports 10 Gbit/s");
        }
        let peak = s[format!("peak_{dir}_bps")].as_f64().unwrap();
        assert!(peak >= s[format!("{dir}_bps")].as_f64().unwrap() && peak > 0.0);
    }
    // Without IFACE: every interface but loopback.
    assert!(of(&rb, "sample", "lo").is_empty());
    assert!(!of(&rb, "sample", "b0").is_empty());
}

#[test]
fn recreated_interfaces_never_give_a_negative_or_giant_delta() {
    require_root();
    let (a, b) = quiet_pair("pas-recreate", false);
    let _sink = sink(&b);
    let mut p = Running::spawn(&a, &["-i", "0.3", "--all"]);
    p.samples("a0", 1);
    send_udp(&a, "10.7.0.2:9999", 40, 500);
    p.samples("a0", 1);
    let index: u64 = a
        .run("cat /sys/class/net/a0/ifindex")
        .trim()
        .parse()
        .unwrap();
    // Same name, same index, within one interval: the counters go back to zero.
    let recreate = |idx: &str| {
        a.run(&format!(
            "ip link del a0 && ip link add a0 {idx} type veth peer name b0 netns {} && \
             ip link set a0 up && ip -n {} link set b0 up",
            b.name, b.name
        ))
    };
    recreate(&format!("index {index}"));
    let reset = p.wait_for("the reset sample", |v| {
        v["type"] == "sample" && v["ifname"] == "a0" && v["reset"] == true
    });
    assert_eq!(u(&reset, "ifindex"), index);
    assert!(u(&reset, "tx_bytes") < 20_000, "{reset}");
    // Same name, a new index: the old one goes, a new one comes.
    recreate("");
    let new = p.wait_for("a new a0", |v| v["type"] == "link" && v["event"] == "new");
    assert_eq!(new["ifname"], "a0");
    assert_ne!(u(&new, "ifindex"), index);
    p.samples("a0", 2);
    let records = p.stop();
    assert_no_giant_values(&records);
    let del: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "link" && r["event"] == "del")
        .collect();
    assert_eq!(del.len(), 1, "{del:?}");
    assert_eq!(
        (del[0]["ifname"].as_str(), u(del[0], "ifindex")),
        (Some("a0"), index)
    );
    // One summary per index; the first one holds the traffic sent before the reset.
    let sums = of(&records, "iface_summary", "a0");
    assert_eq!(sums.len(), 2, "{sums:?}");
    assert_eq!(u(sums[0], "resets"), 1);
    let first: Vec<&Value> = of(&records, "sample", "a0")
        .into_iter()
        .filter(|r| u(r, "ifindex") == index)
        .collect();
    let before_reset: u64 = first
        .iter()
        .take_while(|r| r["reset"] != true)
        .map(|r| u(r, "tx_packets"))
        .sum();
    assert_eq!(before_reset, 40, "{first:?}");
    let all: u64 = first.iter().map(|r| u(r, "tx_packets")).sum();
    assert_eq!(u(sums[0], "tx_packets"), all);
}

/// SIGHUP (the terminal or SSH session of `lpassive -w 1h > file` went away) ends the run as
/// SIGINT does: the summaries are written and the status is 0.
#[test]
fn sighup_writes_the_summaries() {
    require_root();
    let (a, b) = quiet_pair("pas-hup", false);
    let _sink = sink(&b);
    let mut p = Running::spawn(&a, &["-i", "0.1", "a0"]);
    p.samples("a0", 1);
    send_udp(&a, "10.7.0.2:9999", 7, 100);
    p.samples("a0", 2);
    let records = p.stop_with("HUP");
    assert_eq!(u(summary(&records, "a0"), "tx_packets"), 7);
}

#[test]
fn renamed_interfaces_keep_their_history() {
    require_root();
    let (a, b) = quiet_pair("pas-rename", false);
    let _sink = sink(&b);
    let mut p = Running::spawn(&a, &["-i", "0.1", "a0"]);
    p.samples("a0", 1);
    send_udp(&a, "10.7.0.2:9999", 10, 100);
    p.samples("a0", 2);
    a.run("ip link set dev a0 name wan0");
    let rename = p.wait_for("the rename", |v| v["type"] == "link");
    assert_eq!(rename["event"], "rename");
    assert_eq!(rename["old_ifname"], "a0");
    assert_eq!(rename["ifname"], "wan0");
    send_udp(&a, "10.7.0.2:9999", 5, 100);
    p.samples("wan0", 3);
    let records = p.stop();
    assert_no_giant_values(&records);
    assert!(of(&records, "iface_summary", "a0").is_empty());
    let s = summary(&records, "wan0");
    assert_eq!(
        u(s, "tx_packets"),
        15,
        "history from before the rename: {s}"
    );
    assert_eq!(u(s, "ifindex"), u(&rename, "ifindex"));
    assert!(records
        .iter()
        .all(|r| r["type"] != "link" || r["event"] == "rename"));
}

#[test]
fn link_records_follow_the_peer_and_the_admin_state() {
    require_root();
    let (a, b) = quiet_pair("pas-link", false);
    let mut p = Running::spawn(&a, &["-i", "0.1", "a0"]);
    p.samples("a0", 1);
    b.run("ip link set b0 down");
    let down = p.wait_for("link down", |v| v["type"] == "link");
    assert_eq!(
        (
            &down["event"],
            &down["reason"],
            &down["carrier"],
            &down["admin"]
        ),
        (
            &"down".into(),
            &"carrier".into(),
            &false.into(),
            &true.into()
        ),
        "{down}"
    );
    // The operational state follows the carrier through the kernel's linkwatch, which may
    // lag by up to a second: only the carrier is checked here.
    let s = p.wait_for("a sample", |v| v["type"] == "sample");
    assert_eq!(s["carrier"], false);
    b.run("ip link set b0 up");
    let up = p.wait_for("link up", |v| v["type"] == "link");
    assert_eq!(
        (&up["event"], &up["reason"]),
        (&"up".into(), &"carrier".into())
    );
    a.run("ip link set a0 down");
    let down = p.wait_for("admin down", |v| v["type"] == "link");
    assert_eq!(
        (&down["event"], &down["reason"]),
        (&"down".into(), &"admin".into())
    );
    let records = p.stop();
    let events: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "link")
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["down", "up", "down"], "each change once");
}

#[test]
fn rx_threshold_tracks_a_receive_only_interface() {
    require_root();
    let (a, b) = quiet_pair("pas-rxth", false);
    let _sink = sink(&b);
    let mut p = Running::spawn(&b, &["-i", "0.2", "--rx-threshold", "2000", "b0"]);
    p.samples("b0", 2);
    // 20 × 142 bytes in one interval: above the threshold.
    send_udp(&a, "10.7.0.2:9999", 20, 100);
    let up = p.wait_for("link up", |v| v["type"] == "link");
    assert_eq!(
        (&up["event"], &up["reason"]),
        (&"up".into(), &"rx_threshold".into())
    );
    // Quiet again: down, although the carrier never went.
    let down = p.wait_for("link down", |v| v["type"] == "link");
    assert_eq!(
        (&down["event"], &down["reason"], &down["carrier"]),
        (&"down".into(), &"rx_threshold".into(), &true.into())
    );
    let records = p.stop();
    assert_eq!(
        of(&records, "link", "b0").len(),
        2,
        "quiet from the start is not a change"
    );
}

#[test]
fn unknown_interface_is_a_one_line_error() {
    require_root();
    let ns = Netns::new("pas-badname");
    for args in [&["nosuch0"][..], &["lo", "nosuch0"], &["-c", "0", "lo"]] {
        let out = ns.command(LPASSIVE).args(args).output().expect("lpassive");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            stderr.starts_with("lpassive: ") && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
    let out = ns.command(LPASSIVE).arg("nosuch0").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no interface named 'nosuch0'"));
    // A pattern may match nothing yet: it is not an error.
    let out = ns
        .command(LPASSIVE)
        .args(["-c", "1", "-i", "0.05", "nosuch*"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}
