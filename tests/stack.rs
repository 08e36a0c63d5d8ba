//! The probes' output fed to the monitoring systems a fleet runs, started by the tests on a
//! namespace's loopback: the Prometheus exposition (`--format openmetrics`) checked by
//! `promtool check metrics` (Debian's `prometheus`), and `--textfile` served by a real
//! node_exporter (Debian's `prometheus-node-exporter`, textfile collector only), and every
//! record kind's InfluxDB line accepted by a real InfluxDB 1.x (Debian's `influxdb`) and read
//! back with its types. `.ci/run` installs them; a missing one fails the test with the package to install, it never skips.
//! Needs root (namespaces).

mod common;

use common::lab::*;
use common::temp::TempDir;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const LPING: &str = env!("CARGO_BIN_EXE_lping");
const LUDP: &str = env!("CARGO_BIN_EXE_ludp");

/// A program the test needs, or a failure naming the Debian package that has it.
fn need(program: &str, package: &str) -> String {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path.to_string_lossy().into_owned();
        }
    }
    panic!("{program} not found: install Debian's {package} (.ci/run does)");
}

/// `promtool check metrics` on `text`: its verdict and what it said.
fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new(need("promtool", "prometheus"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// Samples of an exposition: `name{labels}` → value (comments left out).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {l}"));
            (
                series.to_string(),
                value.parse().unwrap_or_else(|_| panic!("bad value {l}")),
            )
        })
        .collect()
}

/// The one sample of `name` whose labels include every `key="value"` of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|(series, _)| {
            (series == name || series.starts_with(&format!("{name}{{")))
                && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, v)| v)
        .collect();
    assert!(
        found.len() <= 1,
        "{name} {labels:?} matches {found:?}:\n{text}"
    );
    found.first().copied()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stdout of a run that must have ended with status 0 (else what it said on stderr).
fn succeeded(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
}

/// lping's exposition is accepted by promtool and counts what happened: an answering target
/// and a silent one, the RTT histogram consistent with the counters, custom buckets, and the
/// whole exposition ending with `# EOF` (issue 15).
#[test]
fn lping_exposition_passes_promtool_and_counts_right() {
    let ns = Netns::new("stack-lping");
    ns.run("ip route add 192.0.2.0/24 dev lo");
    let out = ns
        .command(LPING)
        .args([
            "--format",
            "openmetrics",
            "-c",
            "4",
            "-i",
            "0.05",
            "-W",
            "0.2",
            "--tag",
            "dc=fra-1",
            "127.0.0.1",
            "192.0.2.1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "192.0.2.1 never answers");
    let text = stdout(&out);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        text.matches("# EOF").count(),
        1,
        "one exposition for a run without windows"
    );
    let (ok, said) = promtool(&text);
    assert!(ok, "promtool refused it: {said}\n{text}");
    // `src`: the local address the probes left from; none for a prefix routed to `lo`, whose
    // route has no source address.
    let up = [
        "target=\"127.0.0.1\"",
        "dc=\"fra-1\"",
        "tool=\"lping\"",
        "src=\"127.0.0.1\"",
    ];
    let silent = ["target=\"192.0.2.1\""];
    for series in samples(&text).keys() {
        if series.contains(silent[0]) {
            assert!(!series.contains("src="), "{series}");
        }
    }
    assert_eq!(value(&text, "lopa_probes_sent_total", &up), Some(4.0));
    assert_eq!(value(&text, "lopa_probes_received_total", &up), Some(4.0));
    assert_eq!(value(&text, "lopa_probes_lost_total", &up), Some(0.0));
    assert_eq!(value(&text, "lopa_probes_sent_total", &silent), Some(4.0));
    assert_eq!(value(&text, "lopa_probes_lost_total", &silent), Some(4.0));
    assert_eq!(value(&text, "lopa_rtt_seconds_count", &up), Some(4.0));
    assert_eq!(value(&text, "lopa_rtt_seconds_count", &silent), Some(0.0));
    let inf = [up[0], "le=\"+Inf\""];
    assert_eq!(value(&text, "lopa_rtt_seconds_bucket", &inf), Some(4.0));
    let sum = value(&text, "lopa_rtt_seconds_sum", &up).unwrap();
    assert!(sum > 0.0 && sum < 0.1, "loopback RTTs sum to {sum} s");

    // --buckets: the bounds given, in seconds; the answers on loopback all fall under 10 ms.
    let out = ns
        .command(LPING)
        .args(["--format", "openmetrics", "-c", "3", "-i", "0.05"])
        .args(["--buckets", "1us,10ms,2s", "127.0.0.1"])
        .output()
        .unwrap();
    let text = stdout(&out);
    let (ok, said) = promtool(&text);
    assert!(ok, "{said}\n{text}");
    let bucket = |le: &str| value(&text, "lopa_rtt_seconds_bucket", &[&format!("le=\"{le}\"")]);
    assert_eq!(bucket("0.000001"), Some(0.0), "{text}");
    assert_eq!(bucket("0.01"), Some(3.0), "{text}");
    assert_eq!(bucket("2.0"), Some(3.0), "{text}");
    assert_eq!(bucket("+Inf"), Some(3.0), "{text}");
}

/// ludp over several flows and classes labels its series per flow (sport, dport, dscp); one
/// flow's figures are the target's, with no flow labels (every label multiplies series).
#[test]
fn ludp_series_are_per_flow_only_with_flows() {
    let lab = Pair::new("stackudp");
    let _reflector = lreflect_service(&lab.server, &["--echo", "0.0.0.0:8081"], 8081);
    let out = lab
        .client
        .command(LUDP)
        .args(["--format", "openmetrics", "-c", "3", "-i", "0.02"])
        .args([
            "--flows", "2", "--sport", "41000", "--dscp", "EF,CS1", "10.0.0.2",
        ])
        .output()
        .unwrap();
    let text = succeeded(&out);
    let (ok, said) = promtool(&text);
    assert!(ok, "{said}\n{text}");
    for sport in ["41000", "41001"] {
        for dscp in ["46", "8"] {
            let flow = [
                &format!("sport=\"{sport}\"")[..],
                "dport=\"8081\"",
                "src=\"10.0.0.1\"",
                &format!("dscp=\"{dscp}\""),
            ];
            assert_eq!(
                value(&text, "lopa_probes_sent_total", &flow),
                Some(3.0),
                "{text}"
            );
            assert_eq!(
                value(&text, "lopa_rtt_seconds_count", &flow),
                Some(3.0),
                "{text}"
            );
        }
    }
    // No target-wide series beside the flows' (sum() over the flows is the target).
    assert_eq!(
        samples(&text)
            .keys()
            .filter(|k| k.starts_with("lopa_probes_sent_total{") && !k.contains("sport="))
            .count(),
        0,
        "{text}"
    );

    let out = lab
        .client
        .command(LUDP)
        .args([
            "--format",
            "openmetrics",
            "-c",
            "3",
            "-i",
            "0.02",
            "10.0.0.2",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(!text.contains("sport="), "one flow: no flow labels\n{text}");
    assert_eq!(
        value(&text, "lopa_probes_sent_total", &["target=\"10.0.0.2\""]),
        Some(3.0)
    );
    assert_eq!(
        value(&text, "lopa_rtt_seconds_count", &["target=\"10.0.0.2\""]),
        Some(3.0)
    );
}

/// An HTTP GET on the namespace's loopback (run from inside it): the response body.
fn http_get(ns: &Netns, port: u16, path: &str) -> Option<String> {
    let out = ns
        .command(need("python3", "python3"))
        .args([
            "-c",
            "import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=2).read().decode())",
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .ok()?;
    out.status.success().then(|| stdout(&out))
}

/// A real node_exporter in `ns` on 127.0.0.1:9100, its textfile collector (only) on `dir`.
fn node_exporter(ns: &Netns, dir: &Path) -> Background {
    let exporter = ns
        .command(need("prometheus-node-exporter", "prometheus-node-exporter"))
        .args([
            "--collector.disable-defaults",
            "--collector.textfile",
            &format!("--collector.textfile.directory={}", dir.display()),
            "--web.listen-address=127.0.0.1:9100",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    Background(exporter)
}

/// Scrapes node_exporter until `ready` holds of what it serves (10 s at most), and checks it
/// read the textfiles with no error.
fn scrape_until(ns: &Netns, tool: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    let scraped = loop {
        if let Some(body) = http_get(ns, 9100, "/metrics") {
            if ready(&body) {
                break body;
            }
            last = Some(body);
        }
        assert!(
            Instant::now() < deadline,
            "node_exporter never served {tool}'s series; it served {last:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        value(&scraped, "node_textfile_scrape_error", &[]),
        Some(0.0),
        "{scraped}"
    );
    scraped
}

/// Sends SIGINT to a background tool, checks it ended well, and returns its JSON records.
fn stop_and_read(tool: &mut Background) -> Vec<serde_json::Value> {
    let pid = tool.0.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = tool.0.wait().unwrap();
    assert!(status.success(), "ended with {status}");
    let mut json = String::new();
    tool.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut json)
        .unwrap();
    json.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A long-running lping writes --textfile at every window; a real node_exporter (textfile
/// collector only) serves every series with no scrape error, the file is replaced whole (no
/// temporary file left), and the last exposition after SIGINT holds the final counts.
#[test]
fn textfile_is_served_by_node_exporter() {
    let ns = Netns::new("stack-node");
    let dir = TempDir::new("textfile");
    let prom = dir.path().join("lping.prom");
    let lping = ns
        .command(LPING)
        .args(["-q", "-i", "0.05", "--summary-every", "0.5"])
        .arg("--textfile")
        .arg(&prom)
        .arg("127.0.0.1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start lping");
    let mut lping = Background(lping);
    let _exporter = node_exporter(&ns, dir.path());
    // Two windows later the file holds counts, and node_exporter serves them.
    let scraped = scrape_until(&ns, "lping", |body| {
        value(body, "lopa_probes_sent_total", &["target=\"127.0.0.1\""]).unwrap_or(0.0) > 5.0
    });
    assert!(
        scraped.contains("lopa_rtt_seconds_bucket{") && scraped.contains("lopa_probes_lost_total{"),
        "{scraped}"
    );
    // SIGINT: the run ends and the last exposition is the final one.
    let total = stop_and_read(&mut lping)
        .into_iter()
        .find(|r| r["type"] == "summary" && r["window"] == "total")
        .expect("a total summary on stdout");
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert_eq!(
        value(&text, "lopa_probes_sent_total", &[]),
        total["sent"].as_f64(),
        "the textfile's final count is the total summary's\n{text}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n != "lping.prom")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Bad metrics flags are one-line usage errors before anything runs.
#[test]
fn bad_metrics_flags_are_one_line_errors() {
    require_root();
    for (args, says) in [
        (
            &["--textfile", "/nonexistent-dir/x.prom", "127.0.0.1"][..],
            "--textfile: cannot write",
        ),
        (
            &["--buckets", "1ms,1ms", "127.0.0.1"][..],
            "strictly ascending",
        ),
        (&["--buckets", "fast", "127.0.0.1"][..], "bucket 'fast'"),
    ] {
        let out = Command::new(LPING)
            .args(["-c", "1"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // lpassive has no histograms; lreflect checks its textfile as the user it runs on as.
    let lpassive = Command::new(LPASSIVE)
        .args(["-c", "1", "--buckets", "1ms,2ms"])
        .output()
        .unwrap();
    let ns = Netns::new("stack-badrefl");
    let locked = TempDir::new("locked");
    let lreflect = ns
        .command(LREFLECT)
        .args(["--echo", "127.0.0.1:8081", "--textfile"])
        .arg(locked.path().join("r.prom"))
        .output()
        .unwrap();
    for (out, says) in [
        (
            lpassive,
            "--buckets: lpassive writes counters and gauges, no histograms",
        ),
        (lreflect, "nobody when started by root"),
    ] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
        assert!(out.stdout.is_empty(), "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_lwatch"))
        .args(["--format", "openmetrics"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("for the tools that write figures over time")
    );
}

const LPASSIVE: &str = env!("CARGO_BIN_EXE_lpassive");
const LREFLECT: &str = env!("CARGO_BIN_EXE_lreflect");

/// A directory for a textfile that lreflect, running as nobody after binding, can write to.
fn textfile_dir(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// Waits until `path` holds an exposition in which `ready` holds; returns it.
fn wait_for_textfile(path: &Path, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if ready(&text) {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "{} never ready", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A long-running lpassive writes --textfile after every sample round while real traffic
/// crosses a veth; a real node_exporter serves its series with no scrape error; after SIGINT
/// the textfile's counters are the iface_summary totals of the same run's JSON records and its
/// gauges the last sample's, and promtool accepts it (issue 15).
#[test]
fn lpassive_textfile_is_served_and_equals_its_records() {
    let lab = Pair::new("stackpas");
    let dir = textfile_dir("lpassive");
    let prom = dir.path().join("lpassive.prom");
    let lpassive = lab
        .client
        .command(LPASSIVE)
        .args(["-i", "0.2", "--tag", "site=lab", "--textfile"])
        .arg(&prom)
        .arg("eth0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start lpassive");
    let mut lpassive = Background(lpassive);
    let _exporter = node_exporter(&lab.client, dir.path());
    // Traffic over eth0 while lpassive samples it: 30 echo requests and their replies.
    let lping = lab
        .client
        .command(LPING)
        .args(["-c", "30", "-i", "0.02", "-q", "10.0.0.2"])
        .output()
        .unwrap();
    assert_eq!(lping.status.code(), Some(0));
    let eth0 = ["ifname=\"eth0\"", "site=\"lab\"", "tool=\"lpassive\""];
    // The 30 requests and their replies, counted by a round after them.
    let scraped = scrape_until(&lab.client, "lpassive", |body| {
        let count = |name| value(body, name, &eth0).unwrap_or(0.0);
        count("lopa_iface_tx_packets_total") >= 30.0 && count("lopa_iface_rx_packets_total") >= 30.0
    });
    assert!(
        value(&scraped, "lopa_iface_rx_bytes_total", &eth0).unwrap()
            > value(&scraped, "lopa_iface_rx_packets_total", &eth0).unwrap() * 42.0,
        "every frame has at least an Ethernet header and an IPv4 or ARP body\n{scraped}"
    );
    assert_eq!(
        value(&scraped, "lopa_iface_up", &eth0),
        Some(1.0),
        "{scraped}"
    );

    let records = stop_and_read(&mut lpassive);
    let text = std::fs::read_to_string(&prom).unwrap();
    let (ok, said) = promtool(&text);
    assert!(ok, "promtool refused it: {said}\n{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let summary = records
        .iter()
        .find(|r| r["type"] == "iface_summary" && r["ifname"] == "eth0")
        .expect("an iface_summary of eth0");
    let members: Vec<&String> = summary
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| v.is_u64() && *k != "ifindex")
        .map(|(k, _)| k)
        .collect();
    assert!(members.len() >= 10, "{summary}");
    for member in members {
        assert_eq!(
            value(&text, &format!("lopa_iface_{member}_total"), &eth0),
            summary[member].as_f64(),
            "{member}: the textfile's final count is iface_summary's\n{text}"
        );
    }
    assert!(summary["tx_packets"].as_u64().unwrap() >= 30, "{summary}");
    let last = records
        .iter()
        .rev()
        .find(|r| r["type"] == "sample" && r["ifname"] == "eth0")
        .expect("samples of eth0");
    let flag = |k: &str| Some(if last[k] == true { 1.0 } else { 0.0 });
    assert_eq!(value(&text, "lopa_iface_carrier", &eth0), flag("carrier"));
    assert_eq!(value(&text, "lopa_iface_admin_up", &eth0), flag("admin"));
    assert_eq!(
        value(&text, "lopa_iface_up", &eth0),
        Some(if last["oper"] == "up" { 1.0 } else { 0.0 })
    );
    assert_eq!(
        value(&text, "lopa_iface_mtu_bytes", &eth0),
        last["mtu"].as_f64()
    );
    assert_eq!(
        value(&text, "lopa_iface_speed_bytes", &eth0),
        last["speed_mbps"].as_f64().map(|m| m * 125_000.0)
    );
    let oper = format!("oper=\"{}\"", last["oper"].as_str().unwrap());
    assert_eq!(
        value(&text, "lopa_iface_oper_info", &[eth0[0], &oper]),
        Some(1.0)
    );
}

/// `lpassive --format openmetrics` writes the whole exposition after every round and at the
/// end: each one accepted by promtool, its counters never going backwards, `-q` or not.
#[test]
fn lpassive_writes_an_exposition_every_round() {
    let ns = Netns::new("stack-pasom");
    let out = ns
        .command(LPASSIVE)
        .args([
            "--format",
            "openmetrics",
            "-q",
            "-c",
            "3",
            "-i",
            "0.1",
            "lo",
        ])
        .output()
        .unwrap();
    let text = succeeded(&out);
    let expositions: Vec<String> = text
        .split_inclusive("# EOF\n")
        .map(str::to_string)
        .collect();
    assert_eq!(expositions.len(), 4, "3 rounds and the end:\n{text}");
    let mut before = 0.0;
    for (k, e) in expositions.iter().enumerate() {
        let (ok, said) = promtool(e);
        assert!(ok, "{said}\n{e}");
        let samples = value(e, "lopa_iface_samples_total", &["ifname=\"lo\""]).unwrap();
        assert_eq!(samples, (k + 1).min(3) as f64, "{e}");
        let rx = value(e, "lopa_iface_rx_bytes_total", &["ifname=\"lo\""]).unwrap();
        assert!(rx >= before, "{e}");
        before = rx;
    }
}

/// lreflect's --textfile, written at every stats window as nobody, ends with the totals of the
/// same run's `stats` records: received, answered, stamped, drops by reason (here the rate
/// limit's), sessions and flows; promtool accepts it, and `--format openmetrics` writes one
/// exposition at exit (issue 15).
#[test]
fn lreflect_exposition_equals_its_stats() {
    let lab = Pair::new("stackrefl");
    let dir = textfile_dir("lreflect");
    let prom = dir.path().join("lreflect.prom");
    let reflector = lab
        .server
        .command(LREFLECT)
        .args(["--echo", "0.0.0.0:8081", "--twamp", "0.0.0.0:8862"])
        .args(["--stats-every", "0.3", "--rate-limit", "20", "--burst", "2"])
        .args(["--tag", "site=lab", "--textfile"])
        .arg(&prom)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start lreflect");
    let mut reflector = Background(reflector);
    wait_for_udp_socket(&lab.server, ":8862 ", "lreflect");
    let ludp = lab
        .client
        .command(LUDP)
        .args(["-c", "30", "-i", "0.01", "-q", "10.0.0.2"])
        .output()
        .unwrap();
    assert!(ludp.status.code().is_some());
    let ltwamp = lab
        .client
        .command(env!("CARGO_BIN_EXE_ltwamp"))
        .args(["-c", "5", "-i", "0.05", "-q", "10.0.0.2:8862"])
        .output()
        .unwrap();
    succeeded(&ltwamp);
    let echo = ["listen=\"0.0.0.0:8081\"", "mode=\"echo\"", "site=\"lab\""];
    let twamp = ["listen=\"0.0.0.0:8862\"", "mode=\"twamp\"", "site=\"lab\""];
    // A window's exposition already counts the traffic.
    let windowed = wait_for_textfile(&prom, |t| {
        value(t, "lopa_reflector_received_total", &twamp) == Some(5.0)
            && value(t, "lopa_reflector_received_total", &echo) == Some(30.0)
    });
    assert!(windowed.ends_with("# EOF\n"), "{windowed}");

    let records = stop_and_read(&mut reflector);
    let text = std::fs::read_to_string(&prom).unwrap();
    let (ok, said) = promtool(&text);
    assert!(ok, "promtool refused it: {said}\n{text}");
    for labels in [&echo, &twamp] {
        let listen = labels[0]
            .trim_start_matches("listen=\"")
            .trim_end_matches('"');
        let total = records
            .iter()
            .find(|r| r["type"] == "stats" && r["window"] == "total" && r["listen"] == listen)
            .unwrap_or_else(|| panic!("a total stats record of {listen}"));
        for member in ["received", "reflected", "stamped"] {
            assert_eq!(
                value(&text, &format!("lopa_reflector_{member}_total"), labels),
                total[member].as_f64(),
                "{member} of {listen}\n{text}"
            );
        }
        for (object, family) in [("dropped", "dropped"), ("malformed_by", "malformed")] {
            for (reason, n) in total[object].as_object().unwrap() {
                let reason = format!("reason=\"{reason}\"");
                let with = [labels[0], labels[1], &reason];
                assert_eq!(
                    value(&text, &format!("lopa_reflector_{family}_total"), &with),
                    n.as_f64(),
                    "{family} {reason} of {listen}\n{text}"
                );
            }
        }
        let table = if labels[1] == "mode=\"twamp\"" {
            "sessions"
        } else {
            "flows"
        };
        for (member, n) in total[table].as_object().unwrap() {
            let name = if member == "active" {
                format!("lopa_reflector_{table}_active")
            } else {
                format!("lopa_reflector_{table}_{member}_total")
            };
            assert_eq!(value(&text, &name, labels), n.as_f64(), "{name}\n{text}");
        }
    }
    let echo_total = records
        .iter()
        .find(|r| r["window"] == "total" && r["mode"] == "echo")
        .unwrap();
    assert!(
        echo_total["dropped"]["rate_limit"].as_u64().unwrap() > 0,
        "the rate limit dropped some: {echo_total}"
    );

    // --format openmetrics: one exposition at exit when no window closed.
    let reflector = lab
        .server
        .command(LREFLECT)
        .args(["--echo", "0.0.0.0:9081", "--stats-every", "0"])
        .args(["--format", "openmetrics"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start lreflect");
    let mut reflector = Background(reflector);
    wait_for_udp_socket(&lab.server, ":9081 ", "lreflect");
    lab.client
        .command(LUDP)
        .args(["-c", "3", "-i", "0.01", "-q", "10.0.0.2:9081"])
        .output()
        .unwrap();
    let pid = reflector.0.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(reflector.0.wait().unwrap().success());
    let mut text = String::new();
    reflector
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    let (ok, said) = promtool(&text);
    assert!(ok, "{said}\n{text}");
    assert_eq!(
        value(&text, "lopa_reflector_received_total", &[]),
        Some(3.0),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// InfluxDB

/// A real InfluxDB 1.x server (Debian's `influxdb`) in `ns`, its data under a temporary
/// directory, HTTP on the namespace's 127.0.0.1:8086; stopped and removed on drop.
struct Influx {
    _server: Background,
    _dir: TempDir,
}

impl Influx {
    fn start(ns: &Netns) -> Influx {
        let dir = TempDir::new("influx");
        let d = dir.path().display();
        let config = dir.path().join("influxdb.conf");
        std::fs::write(
            &config,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:8088\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:8086\"\n  log-enabled = false\n\
                 [monitor]\n  store-enabled = false\n"
            ),
        )
        .unwrap();
        let server = ns
            .command(need("influxd", "influxdb"))
            .arg("-config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start influxd");
        let influx = Influx {
            _server: Background(server),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(ns, 8086, "/ping").is_none() {
            assert!(Instant::now() < deadline, "influxd did not answer /ping");
            std::thread::sleep(Duration::from_millis(100));
        }
        influx
    }
}

/// Runs a small HTTP client in `ns`: POSTs `body` to `path` on 127.0.0.1:8086 and returns
/// (status, response body).
fn influx_post(ns: &Netns, path: &str, body: &str) -> (u16, String) {
    let script = "import sys,urllib.request,urllib.error\n\
        req=urllib.request.Request(sys.argv[1],data=sys.stdin.buffer.read(),method='POST')\n\
        try:\n  r=urllib.request.urlopen(req,timeout=10); print(r.status); sys.stdout.write(r.read().decode())\n\
        except urllib.error.HTTPError as e:\n  print(e.code); sys.stdout.write(e.read().decode())\n";
    let mut child = ns
        .command(need("python3", "python3"))
        .args(["-c", script, &format!("http://127.0.0.1:8086{path}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    let (status, rest) = text.split_once('\n').unwrap_or((&text, ""));
    (status.trim().parse().unwrap_or(0), rest.to_string())
}

/// One line protocol line split into measurement, tag keys and fields with the type the
/// value's syntax gives (`i` integer, quoted string, true/false boolean, else float).
fn line_fields(line: &str) -> (String, Vec<(String, &'static str)>) {
    // Split on unescaped spaces outside quotes: measurement+tags, fields, timestamp.
    let mut parts = Vec::new();
    let (mut cur, mut quoted, mut escaped) = (String::new(), false, false);
    for c in line.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
                continue;
            }
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    assert_eq!(parts.len(), 3, "measurement, fields, timestamp: {line}");
    let measurement = parts[0].split(',').next().unwrap().to_string();
    let mut fields = Vec::new();
    let mut rest = parts[1].as_str();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').unwrap();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let mut end = 0;
            let bytes = q.as_bytes();
            while end < bytes.len()
                && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\'))
            {
                end += 1;
            }
            (
                &after[..end + 2],
                after[end + 2..].strip_prefix(',').unwrap_or(""),
            )
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        let kind = if value.starts_with('"') {
            "string"
        } else if value == "true" || value == "false" {
            "boolean"
        } else if value.ends_with('i') {
            "integer"
        } else {
            "float"
        };
        fields.push((key.replace("\\", ""), kind));
        rest = next;
    }
    (measurement, fields)
}

/// Every record kind of every tool that writes InfluxDB lines, from real runs in a routed
/// lab, is accepted by a real InfluxDB over HTTP /write, and each field reads back with the
/// type the line gave it (issue 15).
#[test]
fn influxdb_accepts_every_record_kind_of_every_tool() {
    let lab = Routed::new("stackinflux");
    let (c, s) = (&lab.client, &lab.server);
    let _echo = lreflect_service(
        s,
        &["--echo", "0.0.0.0:8081", "--twamp", "0.0.0.0:862"],
        862,
    );
    s.run("nft add table inet t; nft add chain inet t c '{ type filter hook input priority 0; }'");
    let tcp = s.command("python3").args(["-c",
        "import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('0.0.0.0',8443));s.listen(64)\nwhile True:\n  c,_=s.accept();c.close()"])
        .spawn().unwrap();
    let _tcp = Background(tcp);
    let mut lines = String::new();
    let run = |ns: &Netns, program: &str, args: &[&str]| -> String {
        let out = ns
            .command(program)
            .args(["--format", "influx"])
            .args(args)
            .output()
            .unwrap();
        let text = stdout(&out);
        assert!(
            !text.is_empty(),
            "{program} {args:?} wrote nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    // lping: reply, timeout, unreachable (10.99/16 is unreachable at the router), summary,
    // alert (a window of loss), path.
    lines += &run(
        c,
        LPING,
        &[
            "-c",
            "3",
            "-i",
            "0.1",
            "-W",
            "0.3",
            "--summary-every",
            "0.2",
            "--alert-loss",
            "10",
            "--trace",
            "10.0.2.1",
            "10.0.2.99",
            "10.99.0.1",
        ],
    );
    // ludp and ltwamp against lreflect: flows, one-way figures, the loss split, paths.
    lines += &run(
        c,
        LUDP,
        &[
            "-c", "3", "-i", "0.05", "--flows", "2", "--dscp", "EF", "--trace", "10.0.2.1",
        ],
    );
    lines += &run(
        c,
        env!("CARGO_BIN_EXE_ltwamp"),
        &["-c", "3", "-i", "0.05", "--trace", "10.0.2.1"],
    );
    // ltcp: an open port and a closed one.
    lines += &run(
        c,
        env!("CARGO_BIN_EXE_ltcp"),
        &["-c", "2", "-i", "0.05", "10.0.2.1:8443", "10.0.2.1:9"],
    );
    // lpassive: samples, a link change, the summary.
    let lp = c
        .command(env!("CARGO_BIN_EXE_lpassive"))
        .args(["--format", "influx", "-c", "4", "-i", "0.2", "--all"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.run("ip link add dummy-x type veth peer name dummy-y; ip link del dummy-x");
    let out = lp.wait_with_output().unwrap();
    lines.push_str(&stdout(&out));
    // lwatch: the present state of every kind, a nexthop object, a neighbour, a rule.
    c.run(
        "ip nexthop add id 7 via 10.0.1.254 dev eth0; ip route add 10.77.0.0/16 nhid 7; \
           ip neigh replace 10.0.1.9 lladdr 02:00:00:00:00:09 dev eth0; \
           ip rule add from 10.0.1.1 table 100 priority 100",
    );
    lines += &run(
        c,
        env!("CARGO_BIN_EXE_lwatch"),
        &[
            "--dump",
            "--type",
            "link,addr,route,nexthop,neigh,rule",
            "-w",
            "0.5",
        ],
    );
    // lreflect's stats, at its end.
    let lr = s
        .command(env!("CARGO_BIN_EXE_lreflect"))
        .args(["--format", "influx", "--echo", "127.0.0.1:9081"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-TERM", &lr.id().to_string()])
        .status()
        .unwrap();
    lines.push_str(&stdout(&lr.wait_with_output().unwrap()));

    // The kinds the runs wrote, by measurement and tool.
    let mut kinds: BTreeMap<String, BTreeMap<String, &'static str>> = BTreeMap::new();
    for line in lines.lines() {
        let (m, fields) = line_fields(line);
        let entry = kinds.entry(m).or_default();
        for (k, t) in fields {
            if let Some(old) = entry.insert(k.clone(), t) {
                assert_eq!(old, t, "{k} written as {old} and as {t}");
            }
        }
    }
    for kind in [
        "reply",
        "timeout",
        "unreachable",
        "summary",
        "alert",
        "path",
        "stats",
        "sample",
        "iface_summary",
        "link",
        "addr",
        "route",
        "nexthop",
        "neigh",
        "rule",
    ] {
        assert!(
            kinds.contains_key(kind),
            "no {kind} line in the runs:\n{lines}"
        );
    }

    let _influx = Influx::start(c);
    let (status, body) = influx_post(c, "/query", "q=CREATE DATABASE lopa");
    assert_eq!(status, 200, "{body}");
    let (status, body) = influx_post(c, "/write?db=lopa&precision=ns", &lines);
    assert_eq!(status, 204, "InfluxDB refused the lines: {body}\n{lines}");
    // Every field of every measurement reads back with its type.
    let (status, body) = influx_post(c, "/query?db=lopa", "q=SHOW FIELD KEYS");
    assert_eq!(status, 200, "{body}");
    let result: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut stored: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for series in result["results"][0]["series"].as_array().unwrap() {
        let m = series["name"].as_str().unwrap().to_string();
        for v in series["values"].as_array().unwrap() {
            stored.entry(m.clone()).or_default().insert(
                v[0].as_str().unwrap().to_string(),
                v[1].as_str().unwrap().to_string(),
            );
        }
    }
    for (m, fields) in &kinds {
        for (k, t) in fields {
            assert_eq!(
                stored.get(m).and_then(|f| f.get(k)).map(String::as_str),
                Some(*t),
                "{m}.{k}: written as {t}, stored as {:?}",
                stored.get(m).and_then(|f| f.get(k))
            );
        }
    }
    // And a value reads back as written: the lping summary's count of probes sent.
    let (_, body) = influx_post(
        c,
        "/query?db=lopa",
        "q=SELECT sent FROM summary WHERE tool='lping' AND target='10.0.2.1' AND \"window\"='total'",
    );
    assert!(body.contains(",3]"), "{body}");
}

/// ltcp's and ltwamp's expositions pass promtool too (with lping's, ludp's, lpassive's and
/// lreflect's above: every tool that writes one), and count their probes (issue 15).
#[test]
fn ltcp_and_ltwamp_expositions_pass_promtool() {
    let lab = Pair::new("stackrest");
    let _reflector = lreflect_service(&lab.server, &["--twamp", "0.0.0.0:862"], 862);
    for (program, target) in [
        (env!("CARGO_BIN_EXE_ltcp"), "10.0.0.2:9"),
        (env!("CARGO_BIN_EXE_ltwamp"), "10.0.0.2"),
    ] {
        let out = lab
            .client
            .command(program)
            .args(["--format", "openmetrics", "-c", "3", "-i", "0.05", target])
            .output()
            .unwrap();
        let text = stdout(&out);
        let (ok, said) = promtool(&text);
        assert!(ok, "{program}: {said}\n{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(
            value(&text, "lopa_probes_sent_total", &["addr=\"10.0.0.2\""]),
            Some(3.0),
            "{program}\n{text}"
        );
        assert_eq!(
            value(&text, "lopa_rtt_seconds_count", &["addr=\"10.0.0.2\""]),
            Some(3.0),
            "{program}: a refused port (RST) and a reflector answer\n{text}"
        );
    }
}

/// lreflect's TWAMP-Control counters in its --textfile equal its `stats` records: the control
/// listener's `control` member (connections, closes and refused sessions by reason, accepted
/// sessions, the open ones as gauges) and the test socket's `dropped.no_session`; promtool
/// accepts it.
#[test]
fn lreflect_exposition_has_the_control_counters() {
    let lab = Pair::new("stackctl");
    let dir = textfile_dir("lreflect-control");
    let prom = dir.path().join("lreflect.prom");
    let reflector = lab
        .server
        .command(LREFLECT)
        .args(["--twamp-control", "0.0.0.0:862", "--control-sessions", "1"])
        .args(["--stats-every", "0", "--textfile"])
        .arg(&prom)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start lreflect");
    let mut reflector = Background(reflector);
    wait_for_udp_socket(&lab.server, ":862 ", "lreflect");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !lab.server.run("ss -Htln").contains(":862 ") {
        assert!(Instant::now() < deadline, "lreflect never listened on TCP");
        std::thread::sleep(Duration::from_millis(10));
    }
    let ltwamp = |args: &[&str]| {
        lab.client
            .command(env!("CARGO_BIN_EXE_ltwamp"))
            .args(args)
            .output()
            .unwrap()
    };
    // A session (granted, its test packets answered), a second session over the limit of
    // one per connection (Accept 4), and test packets of no session (dropped.no_session).
    succeeded(&ltwamp(&[
        "--control",
        "-c",
        "3",
        "-i",
        "0.05",
        "-q",
        "10.0.0.2",
    ]));
    let refused = ltwamp(&["--control", "--flows", "2", "-c", "1", "10.0.0.2"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    let _ = ltwamp(&["-c", "2", "-i", "0.05", "-W", "0.2", "-q", "10.0.0.2:862"]);

    let records = stop_and_read(&mut reflector);
    let text = std::fs::read_to_string(&prom).unwrap();
    let (ok, said) = promtool(&text);
    assert!(ok, "promtool refused it: {said}\n{text}");
    let total = |mode: &str| {
        records
            .iter()
            .find(|r| r["type"] == "stats" && r["window"] == "total" && r["mode"] == mode)
            .unwrap_or_else(|| panic!("a total stats record of mode {mode}: {records:?}"))
    };
    let control = total("twamp-control");
    let labels = ["listen=\"0.0.0.0:862\"", "mode=\"twamp-control\""];
    let c = &control["control"];
    let mut checked = 0;
    let mut check = |name: &str, extra: Option<String>, want: &serde_json::Value| {
        let mut with: Vec<&str> = labels.to_vec();
        if let Some(e) = &extra {
            with.push(e);
        }
        assert_eq!(
            value(&text, name, &with),
            want.as_f64(),
            "{name} {extra:?}\n{text}"
        );
        checked += 1;
    };
    check(
        "lopa_reflector_control_connections_total",
        None,
        &c["connections"],
    );
    check("lopa_reflector_control_active", None, &c["active"]);
    check(
        "lopa_reflector_control_sessions_accepted_total",
        None,
        &c["sessions"]["accepted"],
    );
    check(
        "lopa_reflector_control_sessions_active",
        None,
        &c["sessions"]["active"],
    );
    for (family, object) in [
        ("control_closed", &c["closed"]),
        ("control_sessions_refused", &c["sessions"]["refused"]),
    ] {
        for (reason, n) in object.as_object().unwrap() {
            check(
                &format!("lopa_reflector_{family}_total"),
                Some(format!("reason=\"{reason}\"")),
                n,
            );
        }
    }
    assert!(checked >= 4 + 8 + 3, "every control counter checked");
    assert_eq!(c["connections"], 2, "{control}");
    assert_eq!(c["sessions"]["refused"]["permanent_limit"], 1, "{control}");
    assert_eq!(c["sessions"]["accepted"], 2, "{control}");
    let test = total("twamp");
    let no_session = &test["dropped"]["no_session"];
    assert_eq!(no_session, 2, "{test}");
    assert_eq!(
        value(
            &text,
            "lopa_reflector_dropped_total",
            &[
                "listen=\"0.0.0.0:862\"",
                "mode=\"twamp\"",
                "reason=\"no_session\""
            ]
        ),
        no_session.as_f64(),
        "{text}"
    );
}
