//! The probes' output fed to the monitoring systems a fleet runs, started by the tests on a
//! namespace's loopback: the Prometheus exposition (`--format openmetrics`) checked by
//! `promtool check metrics` (Debian's `prometheus`), and `--textfile` served by a real
//! node_exporter (Debian's `prometheus-node-exporter`, textfile collector only). `.ci/run`
//! installs both; a missing one fails the test with the package to install, it never skips.
//! Needs root (namespaces).

mod common;

use common::lab::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
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
    let up = ["target=\"127.0.0.1\"", "dc=\"fra-1\"", "tool=\"lping\""];
    let silent = ["target=\"192.0.2.1\""];
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

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    let dir = TempDir(std::env::temp_dir().join(format!("lopa-textfile-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let prom = dir.0.join("lping.prom");
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
    let _exporter = node_exporter(&ns, &dir.0);
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
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
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
    let locked = TempDir(std::env::temp_dir().join(format!("lopa-locked-{}", std::process::id())));
    std::fs::create_dir_all(&locked.0).unwrap();
    let lreflect = ns
        .command(LREFLECT)
        .args(["--echo", "127.0.0.1:8081", "--textfile"])
        .arg(locked.0.join("r.prom"))
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
    let dir = TempDir(std::env::temp_dir().join(format!("lopa-{name}-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
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
    let prom = dir.0.join("lpassive.prom");
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
    let _exporter = node_exporter(&lab.client, &dir.0);
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
    let prom = dir.0.join("lreflect.prom");
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
