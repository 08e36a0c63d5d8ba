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
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
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

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    let exporter = ns
        .command(need("prometheus-node-exporter", "prometheus-node-exporter"))
        .args([
            "--collector.disable-defaults",
            "--collector.textfile",
            &format!("--collector.textfile.directory={}", dir.0.display()),
            "--web.listen-address=127.0.0.1:9100",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    let _exporter = Background(exporter);
    // Two windows later the file holds counts, and node_exporter serves them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let scraped = loop {
        if let Some(body) = http_get(&ns, 9100, "/metrics") {
            if value(&body, "lopa_probes_sent_total", &["target=\"127.0.0.1\""]).unwrap_or(0.0)
                > 5.0
            {
                break body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node_exporter never served lping's series"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        value(&scraped, "node_textfile_scrape_error", &[]),
        Some(0.0),
        "{scraped}"
    );
    assert!(
        scraped.contains("lopa_rtt_seconds_bucket{") && scraped.contains("lopa_probes_lost_total{"),
        "{scraped}"
    );
    // SIGINT: the run ends and the last exposition is the final one.
    let pid = lping.0.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = lping.0.wait().unwrap();
    assert!(status.success(), "lping ended with {status}");
    let mut json = String::new();
    lping
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut json)
        .unwrap();
    let total: serde_json::Value = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
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
    let out = Command::new(env!("CARGO_BIN_EXE_lwatch"))
        .args(["--format", "openmetrics"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("for the probing tools"));
}
