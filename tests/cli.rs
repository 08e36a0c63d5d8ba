//! The command-line contract of `lping`, end to end: the output of real runs validated against
//! the JSON Schemas in `schemas/`, the InfluxDB line protocol, exit statuses and one-line
//! errors, a closed stdout, SIGINT and SIGTERM, and the checked-in man pages.
//!
//! Tests that open ICMP sockets or network namespaces need root (CI runs as root): they fail
//! with one clear message otherwise, they never skip. Namespaces are named
//! `lopa-cli-<pid>-<n>` and deleted by a guard, also when a test panics.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

use common::lab::{require_root, Netns};
use common::process::{spawn_streamed, Streamed};
use common::temp::TempDir;

const LPING: &str = env!("CARGO_BIN_EXE_lping");
const KINDS: [&str; 16] = [
    "reply",
    "timeout",
    "unreachable",
    "summary",
    "alert",
    "stats",
    "path",
    "link",
    "sample",
    "iface_summary",
    "addr",
    "route",
    "resync",
    "nexthop",
    "neigh",
    "rule",
];
/// No run here takes more than about a second; past this the child is killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Processes

fn lping() -> Command {
    Command::new(LPING)
}

fn describe(cmd: &Command) -> String {
    format!("{cmd:?}")
}

/// Sends `sig` (e.g. "INT") to a process this test started and has not reaped yet.
fn kill(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// Runs a command to completion with stdin closed, capturing stdout and stderr; kills it and
/// fails past [`DEADLINE`].
fn run(cmd: &mut Command) -> Output {
    let what = describe(cmd);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.unwrap_or_else(|e| panic!("cannot wait for {what}: {e}")),
        Err(_) => {
            // Not reaped yet (the waiting thread still waits), so the pid is still ours.
            kill(pid, "KILL");
            let out = rx.recv().expect("waiter thread").expect("wait");
            panic!(
                "{what} still running after {DEADLINE:?}; killed.\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn stdout_text(out: &Output) -> &str {
    std::str::from_utf8(&out.stdout).expect("stdout is UTF-8")
}

fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running lping whose stdout is read line by line.
struct Running {
    what: String,
    child: Child,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    started: Instant,
}

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        let what = describe(cmd);
        let Streamed {
            child,
            lines,
            stderr,
        } = spawn_streamed(cmd.stderr(Stdio::piped()));
        Running {
            what,
            child,
            lines,
            stderr,
            started: Instant::now(),
        }
    }

    fn left(&self) -> Duration {
        DEADLINE.saturating_sub(self.started.elapsed())
    }

    /// The next line of stdout; fails on end of output or past the deadline.
    fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(self.left()) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("{}: no output within {DEADLINE:?}", self.what)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "{}: stdout ended early (status {:?})",
                    self.what,
                    self.child.wait()
                )
            }
        }
    }

    fn signal(&self, sig: &str) {
        kill(self.child.id(), sig);
    }

    /// Reads the rest of stdout and waits for the exit: (status, remaining lines, stderr).
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(self.left()) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: still writing after {DEADLINE:?}; output so far:\n{}",
                    self.what,
                    rest.join("\n")
                ),
            }
        }
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                !self.left().is_zero(),
                "{}: stdout closed but the process did not exit within {DEADLINE:?}",
                self.what
            );
            thread::sleep(Duration::from_millis(10));
        };
        let stderr = self
            .stderr
            .take()
            .expect("stderr reader")
            .join()
            .expect("stderr thread");
        (status, rest, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Only reached with the child still running when a test failed half-way.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Network namespaces

/// lping, started inside a lab namespace.
fn lping_in(ns: &Netns) -> Command {
    ns.command(LPING)
}

/// A namespace where echo requests to 192.0.2.1 leave through `lo` and are never answered.
fn silent_netns() -> Netns {
    let ns = Netns::new("cli");
    ns.run("ip route add 192.0.2.0/24 dev lo");
    ns
}

// ---------------------------------------------------------------------------------------------
// Schemas

fn schema_path(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{kind}.schema.json"))
}

/// The five schemas, compiled (format assertions on), and their documents.
struct Contract {
    schemas: boon::Schemas,
    index: HashMap<&'static str, boon::SchemaIndex>,
    docs: HashMap<&'static str, Value>,
}

impl Contract {
    fn load() -> Contract {
        let mut compiler = boon::Compiler::new();
        compiler.enable_format_assertions();
        let mut schemas = boon::Schemas::new();
        let mut index = HashMap::new();
        let mut docs = HashMap::new();
        for kind in KINDS {
            let path = schema_path(kind);
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let doc: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            let loc = path.to_str().expect("UTF-8 path");
            compiler
                .add_resource(loc, doc.clone())
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            let idx = compiler
                .compile(loc, &mut schemas)
                .unwrap_or_else(|e| panic!("{} does not compile: {e:#}", path.display()));
            index.insert(kind, idx);
            docs.insert(kind, doc);
        }
        Contract {
            schemas,
            index,
            docs,
        }
    }

    fn kind_of(v: &Value) -> &'static str {
        let kind = v.get("type").and_then(Value::as_str);
        KINDS
            .into_iter()
            .find(|k| Some(*k) == kind)
            .unwrap_or_else(|| panic!("record without a known type: {v}"))
    }

    /// Schema validation alone, against the schema of the record's `type`.
    fn validate(&self, v: &Value) -> Result<(), String> {
        self.validate_as(Contract::kind_of(v), v)
    }

    /// Schema validation against the schema of `kind`: `Err` with the validator's explanation.
    fn validate_as(&self, kind: &str, v: &Value) -> Result<(), String> {
        self.schemas
            .validate(v, self.index[kind])
            .map_err(|e| format!("{e:#}"))
    }

    /// Everything a written line must satisfy: its schema, no member the schema does not
    /// declare, header order, `tags` last, and a timestamp that parses and is recent.
    fn check_line(&self, line: &str) -> Value {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let kind = Contract::kind_of(&v);
        if let Err(e) = self.validate(&v) {
            panic!("{kind} record does not match schemas/{kind}.schema.json:\n{line}\n{e}");
        }
        let doc = &self.docs[kind];
        let declared = declared_members(doc, doc, "");
        let undeclared: Vec<String> = emitted_members(doc, doc, &v, "")
            .into_iter()
            .filter(|m| !declared.contains(m))
            .collect();
        assert!(
            undeclared.is_empty(),
            "members {undeclared:?} are not declared in schemas/{kind}.schema.json:\n{line}"
        );
        let header = format!(
            "{{\"type\":{},\"tool\":{},\"ts\":{}",
            v["type"], v["tool"], v["ts"]
        );
        assert!(
            line.starts_with(&header),
            "the first members must be type, tool, ts:\n{line}"
        );
        if let Some(tags) = v.get("tags") {
            assert!(
                line.ends_with(&format!(",\"tags\":{tags}}}")),
                "tags must be the last member:\n{line}"
            );
        }
        assert_figures_rounded(&v, line);
        assert!(
            !has_exponent_number(line),
            "a figure in exponent notation (jq and awk users read decimals):\n{line}"
        );
        let ts = v["ts"].as_str().expect("ts is a string");
        let ts = humantime::parse_rfc3339(ts)
            .unwrap_or_else(|e| panic!("ts does not parse ({e}): {line}"));
        let age = SystemTime::now()
            .duration_since(ts)
            .unwrap_or_else(|e| e.duration());
        assert!(
            age < Duration::from_secs(60),
            "ts is not the current time: {line}"
        );
        v
    }

    /// Checks every line of a run's stdout; returns the records.
    fn check_output(&self, out: &Output) -> Vec<Value> {
        stdout_text(out)
            .lines()
            .map(|l| self.check_line(l))
            .collect()
    }
}

/// Whether a number outside the strings of a JSON line is written with an exponent (`9e-6`).
fn has_exponent_number(line: &str) -> bool {
    let (mut in_string, mut escaped, mut prev_digit) = (false, false, false);
    for c in line.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if (c == 'e' || c == 'E') && prev_digit {
            return true;
        }
        in_string = c == '"';
        prev_digit = c.is_ascii_digit();
    }
    false
}

/// Every fractional figure has at most 6 decimals (issue 17: `16.666667`, not
/// `16.666666666666668`), anywhere in the record.
fn assert_figures_rounded(v: &Value, line: &str) {
    match v {
        Value::Number(n) if n.is_f64() => {
            // By value, not by serde_json's text for it, which writes 0.000009 as 9e-6.
            let f = n.as_f64().expect("an f64");
            let six: f64 = format!("{f:.6}").parse().expect("a number");
            assert!(six == f, "{f} has more than 6 decimals:\n{line}");
        }
        Value::Array(items) => items.iter().for_each(|i| assert_figures_rounded(i, line)),
        Value::Object(members) => members
            .values()
            .for_each(|m| assert_figures_rounded(m, line)),
        _ => {}
    }
}

/// Follows local `$ref`s (`#/$defs/...`).
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    while let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local $ref {r}"));
        node = root
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    node
}

fn properties<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Map<String, Value>> {
    resolve(root, node)
        .get("properties")
        .and_then(Value::as_object)
}

/// Paths (`/flow/dport`) of every member the schema declares, nested objects included.
fn declared_members(root: &Value, node: &Value, at: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, sub) in properties(root, node).into_iter().flatten() {
        let path = format!("{at}/{name}");
        out.extend(declared_members(root, sub, &path));
        out.insert(path);
    }
    out
}

/// Paths of the members present in `instance`, descending where the schema declares members
/// (so not into `tags`, whose keys are the user's).
fn emitted_members(root: &Value, node: &Value, instance: &Value, at: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(props) = properties(root, node) else {
        return out;
    };
    for (name, v) in instance.as_object().into_iter().flatten() {
        let path = format!("{at}/{name}");
        if let Some(sub) = props.get(name) {
            out.extend(emitted_members(root, sub, v, &path));
        }
        out.insert(path);
    }
    out
}

/// Whether any subschema forbids members it does not list.
fn closes_objects(node: &Value) -> bool {
    match node {
        Value::Object(m) => {
            ["additionalProperties", "unevaluatedProperties"]
                .iter()
                .any(|k| m.get(*k) == Some(&Value::Bool(false)))
                || m.values().any(closes_objects)
        }
        Value::Array(a) => a.iter().any(closes_objects),
        _ => false,
    }
}

fn of_kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == kind).collect()
}

fn kinds(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect()
}

#[test]
fn schemas_are_well_formed_and_share_their_definitions() {
    // Compiling checks each document against the draft 2020-12 meta-schema.
    let contract = Contract::load();
    let reference = &contract.docs["reply"]["$defs"];
    for kind in KINDS {
        let doc = &contract.docs[kind];
        let name = format!("schemas/{kind}.schema.json");
        assert_eq!(
            doc["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(doc["properties"]["type"]["const"], kind, "{name}");
        let required: Vec<&str> = doc["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no required list"))
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(required[..3], ["type", "tool", "ts"], "{name}");
        let declared = declared_members(doc, doc, "");
        for r in &required {
            assert!(
                declared.contains(&format!("/{r}")),
                "{name}: {r} required, not declared"
            );
        }
        assert!(declared.contains("/tags"), "{name}: tags not declared");
        // Readers ignore unknown members, so the schemas must let them through, at any depth.
        assert!(
            !closes_objects(doc),
            "{name} forbids unknown members somewhere"
        );
        assert_eq!(
            &doc["$defs"], reference,
            "{name}: $defs differ from reply.schema.json"
        );
    }
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/README.md"))
            .expect("schemas/README.md");
    for kind in KINDS {
        assert!(
            readme.contains(&format!("{kind}.schema.json")),
            "README misses {kind}"
        );
    }
}

/// Every member the library can write, each Option set, for each kind.
fn every_member_records() -> Vec<Vec<u8>> {
    use lopa::record::*;
    use std::sync::Arc;
    let addr: std::net::IpAddr = "fd00::1".parse().unwrap();
    let src = Some("fd00::2".parse().unwrap());
    let flow = Some(Flow {
        sport: 40000,
        dport: 65535,
        // A named code point, so dscp_name is written too.
        dscp: Some(46),
    });
    let mut tags = Tags::new();
    tags.insert("dc".into(), "fra 1".into());
    let tags = Some(Arc::new(tags));
    let iface_counters = IfaceCounters {
        rx_bytes: 1,
        tx_bytes: 2,
        rx_packets: 1,
        tx_packets: 1,
        rx_errors: 0,
        tx_errors: 0,
        rx_dropped: 0,
        tx_dropped: 5,
        rx_missed: Some(0),
        multicast: Some(0),
        collisions: Some(0),
    };
    let bodies = [
        Body::Reply(Reply {
            target: "db1".into(),
            addr,
            src,
            seq: 1,
            rtt_ms: 0.25,
            ttl: Some(255),
            size: Some(0),
            tos: Some(0xb8),
            flow,
            dup: Some(true),
            result: Some("refused".into()),
            syn_retransmits: Some(1),
            one_way: Some(OneWay {
                fwd_ms: -0.5,
                rev_ms: Some(0.75),
                reflector_ms: 0.01,
                dscp_rx: Some(46),
                synced: false,
                reflector_seq: Some(7),
                reflector_ttl: Some(63),
                tlv: Some(TlvFigures {
                    dscp_rev: Some(0),
                    reflector_clock: Some(ReflectorClock {
                        sync_in: Some(ClockSource::Ntp),
                        method_in: Some(StampMethod::Sw),
                        sync_out: Some(ClockSource::Gnss),
                        method_out: Some(StampMethod::ControlPlane),
                    }),
                    counters: Some(DirectCounters {
                        sender_tx: 9,
                        reflector_rx: 8,
                        reflector_tx: 6,
                    }),
                    location: Some(SeenAt {
                        src: Some(addr),
                        sport: 40000,
                        dst: Some("fd00::2".parse().unwrap()),
                        dport: 862,
                    }),
                    tlv_unsupported: {
                        let mut k = TlvKinds::default();
                        k.insert(3);
                        k.insert(9);
                        k
                    },
                    tlv_malformed: Some(true),
                }),
            }),
        }),
        Body::Timeout(Timeout {
            target: "db1".into(),
            addr,
            src,
            seq: 2,
            flow,
        }),
        Body::Unreachable(Unreachable {
            target: "db1".into(),
            addr,
            src,
            seq: 3,
            from: Some("10.0.0.1".parse().unwrap()),
            icmp_type: Some(3),
            icmp_code: Some(1),
            reason: "host unreachable".into(),
            flow,
        }),
        Body::Summary(Summary {
            target: "db1".into(),
            addr,
            src,
            flow,
            window: "1m 30s".into(),
            sent: 10,
            received: 9,
            loss_pct: Some(10.0),
            dup: 1,
            reordered: 1,
            late: 1,
            unreachable: 0,
            rtt_ms: Some(RttStats {
                min: 0.1,
                avg: 0.2,
                max: 0.3,
                mdev: 0.05,
                p50: 0.2,
                p90: 0.3,
                p99: 0.3,
            }),
            jitter_ms: Some(0.01),
            lost_fwd: Some(1),
            lost_rev: Some(0),
            refused: Some(2),
            fwd_ms: Some(DelayStats {
                min: -0.01,
                avg: 0.1,
                max: 0.2,
                p50: 0.1,
                p90: 0.2,
                p99: 0.2,
            }),
            rev_ms: Some(DelayStats {
                min: 0.01,
                avg: 0.1,
                max: 0.2,
                p50: 0.1,
                p90: 0.2,
                p99: 0.2,
            }),
            hops_fwd: Some(2),
            hops_rev: Some(3),
            dropped_local: Some(3),
        }),
        Body::Alert(Alert {
            state: AlertState::Resolved,
            target: "db1".into(),
            addr,
            src,
            flow,
            metric: "rtt_ms".into(),
            value: 0.2,
            threshold: 1.0,
            window: "10s".into(),
        }),
        Body::Stats(ReflectorStats {
            listen: "[::]:862".into(),
            mode: "twamp".into(),
            window: "1m".into(),
            received: 11,
            reflected: 5,
            stamped: 2,
            dropped: Drops {
                acl: 1,
                looped: 1,
                rate_limit: 1,
                global_cap: 1,
                malformed: 1,
                send_error: 1,
                no_session: 1,
            },
            malformed_by: MalformedBy {
                empty: 0,
                short: 1,
                too_long: 0,
                other: 0,
                hmac: 1,
            },
            sessions: Some(Sessions {
                active: 3,
                started: 4,
                expired: 1,
                evicted: 0,
            }),
            flows: Some(Sessions {
                active: 5,
                started: 6,
                expired: 0,
                evicted: 1,
            }),
            control: None,
        }),
        Body::Stats(ReflectorStats {
            listen: "[::]:862".into(),
            mode: "twamp-control".into(),
            window: "1m".into(),
            received: 11,
            reflected: 5,
            stamped: 2,
            dropped: Drops {
                acl: 1,
                looped: 1,
                rate_limit: 1,
                global_cap: 1,
                malformed: 1,
                send_error: 1,
                no_session: 1,
            },
            malformed_by: MalformedBy {
                empty: 0,
                short: 1,
                too_long: 0,
                other: 0,
                hmac: 0,
            },
            sessions: Some(Sessions {
                active: 3,
                started: 4,
                expired: 1,
                evicted: 0,
            }),
            flows: Some(Sessions {
                active: 5,
                started: 6,
                expired: 0,
                evicted: 1,
            }),
            control: Some(ControlStats {
                connections: 3,
                active: 1,
                closed: ControlClosed {
                    acl: 1,
                    limit: 1,
                    rate_limit: 1,
                    mode: 1,
                    key: 1,
                    garbage: 1,
                    hmac: 1,
                    idle: 1,
                },
                sessions: ControlSessions {
                    accepted: 2,
                    active: 1,
                    refused: ControlRefused {
                        not_supported: 1,
                        permanent_limit: 1,
                        temporary_limit: 1,
                    },
                },
            }),
        }),
        Body::Path(lopa::record::Path {
            src: addr,
            dst: "fd00::2".parse().unwrap(),
            proto: "udp".into(),
            sport: 40000,
            dport: 8081,
            hops: vec![
                Hop {
                    ttl: 1,
                    addr: Some("fd00::9".parse().unwrap()),
                    addrs: vec!["fd00::9".parse().unwrap(), "fd00::a".parse().unwrap()],
                    rtt_ms: Some(0.1),
                },
                Hop {
                    ttl: 2,
                    addr: None,
                    addrs: Vec::new(),
                    rtt_ms: None,
                },
            ],
            reached: false,
            sent: Some(10),
            lost: Some(1),
            lost_fwd: Some(1),
            lost_rev: Some(0),
        }),
        Body::Link(LinkScore {
            from: "fd00::1".into(),
            to: "spine1".into(),
            rank: 1,
            score: 12.5,
            loss_est: 0.01,
            suspicion: -0.001,
            routes: 3,
            sent: 300,
            lost: 3,
            verdict: Verdict::Faulty,
            group: Some(vec![
                LinkEnds {
                    from: "fd00::1".into(),
                    to: "spine1".into(),
                },
                LinkEnds {
                    from: "spine1".into(),
                    to: "?spine1>fd00::2#1".into(),
                },
            ]),
            covers: Some(vec![
                LinkEnds {
                    from: "fd00::1".into(),
                    to: "10.0.21.2".into(),
                },
                LinkEnds {
                    from: "fd00::3".into(),
                    to: "10.0.21.2".into(),
                },
            ]),
        }),
        Body::Sample(Sample {
            ifname: "eth0".into(),
            ifindex: 2,
            interval_s: 1.0,
            oper: "up".into(),
            carrier: true,
            admin: true,
            mtu: Some(1500),
            speed_mbps: Some(10000),
            counters: iface_counters,
            rx_bps: 8.0,
            tx_bps: 16.0,
            rx_pps: 1.0,
            tx_pps: 2.0,
            reset: Some(true),
        }),
        Body::LinkState(LinkChange {
            event: "rename".into(),
            ifname: "wan0".into(),
            ifindex: 2,
            old_ifname: Some("eth0".into()),
            reason: Some("carrier".into()),
            oper: Some("lowerlayerdown".into()),
            carrier: Some(false),
            admin: Some(true),
        }),
        Body::IfaceSummary(IfaceSummary {
            ifname: "eth0".into(),
            ifindex: 2,
            window: "total".into(),
            samples: 3,
            resets: 1,
            duration_s: 3.0,
            counters: iface_counters,
            rx_bps: 8.0,
            tx_bps: 16.0,
            rx_pps: 1.0,
            tx_pps: 2.0,
            peak_rx_bps: 24.0,
            peak_tx_bps: 48.0,
            peak_rx_pps: 3.0,
            peak_tx_pps: 6.0,
        }),
        Body::IfaceAlert(IfaceAlert {
            state: AlertState::Firing,
            target: "eth0".into(),
            ifname: "eth0".into(),
            ifindex: 2,
            metric: "drops_pps".into(),
            value: 5.0,
            threshold: 1.0,
            window: "1s".into(),
        }),
        Body::WatchLink(WatchLink {
            event: "rename".into(),
            ifname: "wan0".into(),
            ifindex: 2,
            old_ifname: Some("eth0".into()),
            oper: "up".into(),
            carrier: true,
            admin: true,
            mtu: Some(1500),
            address: Some("02:00:00:00:00:01".into()),
            resync: Some(true),
        }),
        Body::WatchAddr(WatchAddr {
            event: "change".into(),
            ifname: "eth0".into(),
            ifindex: 2,
            family: "inet".into(),
            addr: "10.0.0.1".parse().unwrap(),
            prefixlen: 24,
            scope: "global".into(),
            label: Some("eth0:1".into()),
            flags: vec!["deprecated".into(), "dynamic".into()],
            old_flags: Some(vec!["dynamic".into()]),
            resync: Some(true),
        }),
        Body::WatchRoute(WatchRoute {
            event: "del".into(),
            family: "inet6".into(),
            dst: "fd00::/64".into(),
            table: 1000,
            kind: "unicast".into(),
            protocol: "static".into(),
            scope: "global".into(),
            dev: Some("eth0".into()),
            ifindex: Some(2),
            gateway: Some(addr),
            nexthops: Some(vec![WatchNexthop {
                gateway: Some(addr),
                dev: Some("eth0".into()),
                ifindex: Some(2),
                weight: 1,
            }]),
            metric: Some(1024),
            prefsrc: Some(addr),
            src: Some("fd01::/64".into()),
            tos: Some(4),
            old_dev: None,
            old_ifindex: None,
            old_gateway: None,
            old_nexthops: None,
            flushed: Some(true),
            resync: Some(true),
            nhid: Some(7),
            old_nhid: None,
        }),
        Body::WatchRoute(WatchRoute {
            event: "replace".into(),
            family: "inet".into(),
            dst: "10.9.0.0/24".into(),
            table: 254,
            kind: "unicast".into(),
            protocol: "boot".into(),
            scope: "global".into(),
            dev: Some("eth1".into()),
            ifindex: Some(3),
            gateway: Some("10.1.0.3".parse().unwrap()),
            nexthops: None,
            metric: None,
            prefsrc: None,
            src: None,
            tos: None,
            old_dev: Some("eth0".into()),
            old_ifindex: Some(2),
            old_gateway: Some("10.0.0.2".parse().unwrap()),
            old_nexthops: Some(vec![WatchNexthop {
                gateway: Some("10.0.0.2".parse().unwrap()),
                dev: Some("eth0".into()),
                ifindex: Some(2),
                weight: 2,
            }]),
            flushed: None,
            resync: None,
            nhid: Some(8),
            old_nhid: Some(7),
        }),
        Body::WatchResync(WatchResync {
            reason: "overflow".into(),
            changes: 3,
            rcvbuf: 4608,
        }),
        Body::WatchNexthopObject(WatchNexthopObject {
            event: "replace".into(),
            id: 1,
            family: Some("inet6".into()),
            gateway: Some(addr),
            dev: Some("eth0".into()),
            ifindex: Some(2),
            blackhole: Some(true),
            fdb: Some(true),
            group: None,
            group_type: None,
            protocol: "static".into(),
            scope: "link".into(),
            old_gateway: Some(addr),
            old_dev: Some("eth1".into()),
            old_ifindex: Some(3),
            old_blackhole: Some(true),
            old_group: None,
            flushed: None,
            resync: Some(true),
        }),
        Body::WatchNexthopObject(WatchNexthopObject {
            event: "del".into(),
            id: 10,
            family: None,
            gateway: None,
            dev: None,
            ifindex: None,
            blackhole: None,
            fdb: None,
            group: Some(vec![WatchGroupMember { id: 1, weight: 3 }]),
            group_type: Some("resilient".into()),
            protocol: "unspec".into(),
            scope: "global".into(),
            old_gateway: None,
            old_dev: None,
            old_ifindex: None,
            old_blackhole: None,
            old_group: Some(vec![WatchGroupMember { id: 2, weight: 1 }]),
            flushed: Some(true),
            resync: None,
        }),
        Body::WatchNeigh(WatchNeigh {
            event: "change".into(),
            family: "inet6".into(),
            dst: addr,
            ifname: "eth0".into(),
            ifindex: 2,
            lladdr: Some("02:00:00:00:00:01".into()),
            state: vec!["REACHABLE".into()],
            router: Some(true),
            proxy: Some(true),
            old_state: Some(vec!["STALE".into()]),
            old_lladdr: Some("02:00:00:00:00:02".into()),
            resync: Some(true),
        }),
        Body::WatchRule(WatchRule {
            event: "add".into(),
            family: "inet".into(),
            priority: 100,
            not: Some(true),
            src: Some("10.0.0.0/8".into()),
            dst: Some("10.1.0.0/16".into()),
            tos: Some(16),
            fwmark: Some(16),
            fwmask: Some(255),
            iif: Some("eth0".into()),
            oif: Some("vrf-blue".into()),
            l3mdev: Some(true),
            uidrange: Some("1000-2000".into()),
            ipproto: Some(6),
            sport: Some("1024-65535".into()),
            dport: Some("22".into()),
            action: "goto".into(),
            table: Some(1000),
            goto: Some(200),
            suppress_prefixlength: Some(0),
            suppress_ifgroup: Some(7),
            protocol: "static".into(),
            resync: Some(true),
        }),
    ];
    bodies
        .into_iter()
        .map(|body| {
            let mut line = Vec::new();
            let tool = match body {
                Body::Path(_) | Body::Link(_) => "lcorrelate",
                Body::Stats(_) => "lreflect",
                Body::Sample(_)
                | Body::LinkState(_)
                | Body::IfaceSummary(_)
                | Body::IfaceAlert(_) => "lpassive",
                Body::WatchLink(_)
                | Body::WatchAddr(_)
                | Body::WatchRoute(_)
                | Body::WatchResync(_)
                | Body::WatchNexthopObject(_)
                | Body::WatchNeigh(_)
                | Body::WatchRule(_) => "lwatch",
                _ => "lping",
            };
            let record = Record {
                tool,
                ts: SystemTime::now(),
                tags: tags.clone(),
                body,
            };
            lopa::output::json_line(&record, &mut line).expect("json_line");
            line
        })
        .collect()
}

#[test]
fn schemas_declare_exactly_what_the_writer_can_emit() {
    let contract = Contract::load();
    // Several record types may share a kind (lping's and lpassive's alerts): every member a
    // schema declares must be written by at least one of them.
    let mut emitted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for line in every_member_records() {
        let line = String::from_utf8(line).unwrap();
        let v = contract.check_line(&line);
        let kind = Contract::kind_of(&v);
        let doc = &contract.docs[kind];
        emitted
            .entry(kind)
            .or_default()
            .extend(emitted_members(doc, doc, &v, ""));
    }
    for (kind, emitted) in &emitted {
        let doc = &contract.docs[kind];
        let declared = declared_members(doc, doc, "");
        let never: Vec<&String> = declared.difference(emitted).collect();
        assert!(
            never.is_empty(),
            "schemas/{kind}.schema.json declares {never:?}, which src/record.rs never writes"
        );
    }
    assert_eq!(emitted.len(), KINDS.len());
}

#[test]
fn schemas_reject_what_the_contract_forbids() {
    let contract = Contract::load();
    let reply = json!({
        "type": "reply", "tool": "lping", "ts": "2026-11-22T10:00:00.123456789Z",
        "target": "h", "addr": "10.0.0.2", "seq": 1, "rtt_ms": 0.25, "ttl": 64, "size": 64,
        "tags": {"dc": "fra1"}
    });
    let summary = json!({
        "type": "summary", "tool": "lping", "ts": "2026-11-22T10:00:00.000000000Z",
        "target": "h", "addr": "::1", "window": "total", "sent": 2, "received": 2,
        "loss_pct": 0.0, "dup": 0, "reordered": 0, "late": 0, "unreachable": 0,
        "rtt_ms": {"min": 0.1, "avg": 0.1, "max": 0.1, "mdev": 0.0, "p50": 0.1, "p90": 0.1, "p99": 0.1}
    });
    let alert = json!({
        "type": "alert", "tool": "lping", "ts": "2026-11-22T10:00:00.000000000Z",
        "state": "firing", "target": "h", "addr": "10.0.0.2", "metric": "loss_pct",
        "value": 30.0, "threshold": 10.0, "window": "10s"
    });
    for good in [&reply, &summary, &alert] {
        contract
            .validate(good)
            .unwrap_or_else(|e| panic!("{good}: {e}"));
        let mut future = good.clone();
        future["added_later"] = json!({"any": ["thing"]});
        contract
            .validate(&future)
            .unwrap_or_else(|e| panic!("unknown members must be allowed: {e}"));
    }
    let bad: &[(&Value, &str, Value)] = &[
        (&reply, "ttl", Value::Null),
        (&reply, "ttl", json!(256)),
        (&reply, "size", json!(-1)),
        (&reply, "seq", json!(0)),
        (&reply, "seq", json!("1")),
        (&reply, "rtt_ms", json!(-0.1)),
        (&reply, "dup", json!(false)),
        (&reply, "addr", json!("10.0.0.256")),
        (&reply, "addr", json!("localhost")),
        (&reply, "ts", json!("2026-11-22T10:00:00.123456Z")),
        (&reply, "ts", json!("2026-11-22T10:00:00.123456789+00:00")),
        (&reply, "ts", json!("2026-11-22 10:00:00.123456789Z")),
        (&reply, "ts", json!("2026-13-22T10:00:00.123456789Z")),
        (&reply, "tool", json!(1)),
        (&reply, "type", json!("timeout")),
        (&reply, "tags", json!({"dc": 1})),
        (&reply, "flow", json!({"sport": 1})),
        (&reply, "flow", json!({"sport": 1, "dport": 65536})),
        (&reply, "flow", json!({"sport": 1, "dport": 2, "dscp": 64})),
        (&summary, "loss_pct", json!(100.5)),
        (&summary, "sent", json!(1.5)),
        (
            &summary,
            "rtt_ms",
            json!({"min": 0.1, "avg": 0.1, "max": 0.1}),
        ),
        (&summary, "jitter_ms", Value::Null),
        (&alert, "state", json!("pending")),
        (&alert, "metric", json!("jitter_ms")),
    ];
    for (base, member, value) in bad {
        let kind = base["type"].as_str().unwrap();
        let mut v = (*base).clone();
        v[*member] = value.clone();
        assert!(
            contract.validate_as(kind, &v).is_err(),
            "{member} = {value} should be rejected: {v}"
        );
    }
    for (base, member) in [
        (&reply, "rtt_ms"),
        (&reply, "ts"),
        (&summary, "late"),
        (&alert, "window"),
    ] {
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove(member);
        assert!(
            contract.validate(&v).is_err(),
            "missing {member} should be rejected: {v}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Real runs against the schemas

#[test]
fn loopback_replies_and_totals_match_their_schemas() {
    require_root();
    let contract = Contract::load();
    let out = run(lping().args([
        "-c",
        "3",
        "-i",
        "0.05",
        "127.0.0.1",
        "::1",
        "--tag",
        "site=lab",
    ]));
    assert_eq!(stderr_text(&out), "", "nothing on stderr");
    assert_eq!(out.status.code(), Some(0), "every target answered");
    let records = contract.check_output(&out);
    assert_eq!(of_kind(&records, "reply").len(), 6, "{:?}", kinds(&records));
    let summaries = of_kind(&records, "summary");
    assert_eq!(summaries.len(), 2);
    assert_eq!(
        kinds(&records)[6..],
        ["summary", "summary"],
        "summaries come last"
    );
    for addr in ["127.0.0.1", "::1"] {
        let seqs: Vec<u64> = of_kind(&records, "reply")
            .iter()
            .filter(|r| r["addr"] == addr)
            .map(|r| r["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3], "{addr}");
        let s = summaries.iter().find(|s| s["addr"] == addr).unwrap();
        assert_eq!(
            (&s["window"], &s["sent"], &s["received"], &s["loss_pct"]),
            (&json!("total"), &json!(3), &json!(3), &json!(0.0)),
            "{s}"
        );
        assert!(
            s.get("rtt_ms").is_some() && s.get("jitter_ms").is_some(),
            "{s}"
        );
    }
    for r in &records {
        assert_eq!(r["tool"], "lping");
        assert_eq!(r["tags"], json!({"site": "lab"}), "{r}");
        // Loopback probes leave from the loopback address of their family.
        assert_eq!(r["src"], r["addr"], "{r}");
    }
}

#[test]
fn timeouts_match_their_schema_and_exit_1() {
    let ns = silent_netns();
    let contract = Contract::load();
    let out = run(lping_in(&ns).args(["-c", "3", "-i", "0.05", "-W", "0.2", "192.0.2.1"]));
    assert_eq!(stderr_text(&out), "", "nothing on stderr");
    assert_eq!(out.status.code(), Some(1), "no target answered");
    let records = contract.check_output(&out);
    assert_eq!(
        kinds(&records),
        ["timeout", "timeout", "timeout", "summary"]
    );
    let seqs: Vec<&Value> = records[..3].iter().map(|r| &r["seq"]).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let s = &records[3];
    assert_eq!(
        (&s["sent"], &s["received"], &s["loss_pct"]),
        (&json!(3), &json!(0), &json!(100.0))
    );
    assert!(
        s.get("rtt_ms").is_none(),
        "no RTT statistics without replies: {s}"
    );
}

#[test]
fn local_send_errors_are_unreachable_records() {
    let ns = Netns::new("cli");
    ns.run("ip route add unreachable 198.51.100.0/24");
    let contract = Contract::load();
    let out = run(lping_in(&ns).args(["-c", "2", "-i", "0.05", "-W", "0.2", "198.51.100.1"]));
    assert_eq!(stderr_text(&out), "", "nothing on stderr");
    assert_eq!(out.status.code(), Some(1), "no target answered");
    let records = contract.check_output(&out);
    assert_eq!(kinds(&records), ["unreachable", "unreachable", "summary"]);
    for r in &records[..2] {
        assert!(r.get("from").is_none(), "a local error has no sender: {r}");
        assert!(!r["reason"].as_str().unwrap().is_empty(), "{r}");
    }
    let s = &records[2];
    assert_eq!(
        (&s["sent"], &s["received"], &s["unreachable"]),
        (&json!(2), &json!(0), &json!(2))
    );
}

#[test]
fn windowed_summaries_match_their_schema() {
    require_root();
    let contract = Contract::load();
    let out = run(lping().args([
        "-w",
        "1",
        "-i",
        "0.05",
        "--summary-every",
        "0.2",
        "127.0.0.1",
    ]));
    assert_eq!(stderr_text(&out), "", "nothing on stderr");
    assert_eq!(out.status.code(), Some(0));
    let records = contract.check_output(&out);
    let windows: Vec<&Value> = of_kind(&records, "summary")
        .into_iter()
        .filter(|s| s["window"] == "200ms")
        .collect();
    assert!(
        windows.len() >= 3,
        "expected windows of 200ms: {:?}",
        kinds(&records)
    );
    for w in &windows {
        assert!(w["sent"].as_u64().unwrap() >= 1, "{w}");
    }
    let last = records.last().unwrap();
    assert_eq!(
        (&last["type"], &last["window"]),
        (&json!("summary"), &json!("total"))
    );
}

#[test]
fn loss_alert_fires_once_and_matches_its_schema() {
    let ns = silent_netns();
    let contract = Contract::load();
    let out = run(lping_in(&ns).args([
        "-w",
        "1",
        "-i",
        "0.05",
        "-W",
        "0.2",
        "--summary-every",
        "0.3",
        "--alert-loss",
        "10",
        "192.0.2.1",
    ]));
    assert_eq!(stderr_text(&out), "", "nothing on stderr");
    assert_eq!(out.status.code(), Some(1));
    let records = contract.check_output(&out);
    let alerts = of_kind(&records, "alert");
    assert_eq!(
        alerts.len(),
        1,
        "one transition, no repeats: {:?}",
        kinds(&records)
    );
    let a = alerts[0];
    assert_eq!(
        (
            &a["state"],
            &a["metric"],
            &a["value"],
            &a["threshold"],
            &a["window"]
        ),
        (
            &json!("firing"),
            &json!("loss_pct"),
            &json!(100.0),
            &json!(10.0),
            &json!("300ms")
        )
    );
    let i = records.iter().position(|r| r == a).unwrap();
    assert_eq!(
        records[i - 1]["type"],
        "summary",
        "the alert follows its window's summary"
    );
    assert_eq!(records[i - 1]["ts"], a["ts"]);
}

// ---------------------------------------------------------------------------------------------
// InfluxDB line protocol

struct InfluxLine<'a> {
    measurement: &'a str,
    tags: Vec<(&'a str, &'a str)>,
    fields: BTreeMap<&'a str, &'a str>,
    ns: &'a str,
}

/// Splits a line without escapes (asserted) into its parts.
fn parse_influx(line: &str) -> InfluxLine<'_> {
    assert!(!line.contains('\\'), "unexpected escapes: {line}");
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(
        parts.len(),
        3,
        "expected `measurement,tags fields timestamp`: {line}"
    );
    let mut head = parts[0].split(',');
    let measurement = head.next().unwrap();
    InfluxLine {
        measurement,
        tags: head
            .map(|kv| {
                kv.split_once('=')
                    .unwrap_or_else(|| panic!("tag {kv}: {line}"))
            })
            .collect(),
        fields: parts[1]
            .split(',')
            .map(|kv| {
                kv.split_once('=')
                    .unwrap_or_else(|| panic!("field {kv}: {line}"))
            })
            .collect(),
        ns: parts[2],
    }
}

/// `--format text`: ping's lines for people, in a namespace where 192.0.2.1 never answers
/// (issue 17). JSON stays the default.
#[test]
fn text_format_reads_like_ping() {
    let ns = silent_netns();
    let out = run(lping_in(&ns).args([
        "--format",
        "text",
        "-c",
        "2",
        "-i",
        "0.05",
        "-W",
        "0.2",
        "127.0.0.1",
        "192.0.2.1",
    ]));
    assert_eq!(out.status.code(), Some(1), "192.0.2.1 never answered");
    let text = stdout_text(&out);
    let lines: Vec<&str> = text.lines().collect();
    let replies = lines
        .iter()
        .filter(|l| l.starts_with("64 bytes from 127.0.0.1: seq=") && l.contains(" ttl=64 time="))
        .count();
    assert_eq!(replies, 2, "{text}");
    for seq in [1, 2] {
        assert!(
            lines.contains(&format!("no answer from 192.0.2.1: seq={seq}").as_str()),
            "{text}"
        );
    }
    for (header, counts) in [
        (
            "--- 127.0.0.1 statistics ---",
            "2 probes sent, 2 received, 0% loss",
        ),
        (
            "--- 192.0.2.1 statistics ---",
            "2 probes sent, 0 received, 100% loss",
        ),
    ] {
        let at = lines
            .iter()
            .position(|l| *l == header)
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(lines[at + 1], counts, "{text}");
    }
    assert!(text.contains("\nrtt min/avg/max/mdev = "), "{text}");
    assert!(!text.contains('{'), "no JSON in text output: {text}");
}

#[test]
fn influx_format_writes_line_protocol() {
    require_root();
    let out = run(lping().args(["--format", "influx", "-c", "2", "-i", "0.05", "127.0.0.1"]));
    assert_eq!(stderr_text(&out), "", "nothing on stderr");
    assert_eq!(out.status.code(), Some(0));
    let text = stdout_text(&out);
    let lines: Vec<InfluxLine> = text.lines().map(parse_influx).collect();
    let measurements: Vec<&str> = lines.iter().map(|l| l.measurement).collect();
    assert_eq!(measurements, ["reply", "reply", "summary"], "{text}");
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for (i, l) in lines.iter().enumerate() {
        let keys: Vec<&str> = l.tags.iter().map(|t| t.0).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "tags sorted by key: {text}");
        for tag in [
            ("addr", "127.0.0.1"),
            ("src", "127.0.0.1"),
            ("target", "127.0.0.1"),
            ("tool", "lping"),
        ] {
            assert!(l.tags.contains(&tag), "{tag:?} missing: {text}");
        }
        assert_eq!(l.ns.len(), 19, "nanosecond timestamp: {text}");
        let ns: u128 =
            l.ns.parse()
                .unwrap_or_else(|_| panic!("timestamp {}", l.ns));
        assert!(
            now_ns.abs_diff(ns) < 60_000_000_000,
            "timestamp is not now: {text}"
        );
        let float = |name: &str| {
            let v = l
                .fields
                .get(name)
                .unwrap_or_else(|| panic!("no {name}: {text}"));
            assert!(!v.ends_with('i'), "{name} is a float: {text}");
            v.parse::<f64>()
                .unwrap_or_else(|_| panic!("{name}={v}: {text}"))
        };
        if l.measurement == "reply" {
            assert!(float("rtt_ms") >= 0.0);
            assert_eq!(
                l.fields.get("seq"),
                Some(&format!("{}i", i + 1).as_str()),
                "{text}"
            );
            assert_eq!(l.fields.get("ttl"), Some(&"64i"), "{text}");
        } else {
            assert!(l.tags.contains(&("window", "total")), "{text}");
            assert_eq!(l.fields.get("sent"), Some(&"2i"), "{text}");
            assert_eq!(l.fields.get("received"), Some(&"2i"), "{text}");
            assert_eq!(float("loss_pct"), 0.0);
            for stat in ["min", "avg", "max", "mdev", "p50", "p90", "p99"] {
                assert!(float(&format!("rtt_{stat}_ms")) >= 0.0);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exit statuses and errors

/// A usage or system error: status 2, nothing on stdout, one `TOOL: ` line on stderr (the
/// tool is the first word of `what`).
fn assert_one_line_error(out: &Output, what: &str) -> String {
    let tool = what.split_whitespace().next().unwrap_or("lping");
    let stderr = stderr_text(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: status; stderr: {stderr}"
    );
    assert_eq!(stdout_text(out), "", "{what}: nothing on stdout");
    assert!(
        stderr.starts_with(&format!("{tool}: "))
            && stderr.ends_with('\n')
            && stderr.lines().count() == 1,
        "{what}: expected one line starting with '{tool}: ', got:\n{stderr}"
    );
    stderr
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let dir = TempDir::new("cli");
    let empty = dir.file("empty.txt", "# edge routers\n\n   # none yet\n");
    let bad_tag = dir.file("bad-tag.txt", "127.0.0.1 dc=fra1\n127.0.0.2 nokey\n");
    let empty_arg = format!("--targets={}", empty.display());
    let bad_tag_arg = format!("--targets={}", bad_tag.display());
    let bad_tag_where = format!("{}:2:", bad_tag.display());
    let cases: &[(&[&str], &str)] = &[
        (&["--no-such-flag", "127.0.0.1"], "--no-such-flag"),
        (&["10.0.0.0/33"], "10.0.0.0/33"),
        (&[&empty_arg], "no targets"),
        (&[&bad_tag_arg], &bad_tag_where),
        (&["-Q", "0x1ff", "127.0.0.1"], "0x1ff"),
        (&["-c", "0", "127.0.0.1"], "--count"),
        (&["-i", "1e19", "127.0.0.1"], "--interval"),
        // A period under 1 ms would be all the loop does (it wrote millions of summaries).
        (
            &["--summary-every", "1ns", "127.0.0.1"],
            "must be 0 (off) or at least 1ms",
        ),
        // Alerts judge windows; with windows off they could never fire.
        (
            &[
                "--alert-loss",
                "5",
                "--summary-every",
                "0",
                "-c",
                "1",
                "127.0.0.1",
            ],
            "--summary-every 0 turns them off",
        ),
        // A trace-only run sends no probes for -c to count.
        (
            &["--trace-only", "-c", "5", "127.0.0.1"],
            "'--trace-only' cannot be used with '--count <N>'",
        ),
        (
            &["-i", "-1", "127.0.0.1"],
            "negative values are not accepted",
        ),
        (
            &["--format", "xml", "127.0.0.1"],
            "possible values: json, influx, text",
        ),
        (&[], "no target"),
        // A tag named as a record member would collide with it in InfluxDB lines (issue 17).
        (
            &["--tag", "target=edge", "127.0.0.1"],
            "tag key 'target' is reserved",
        ),
        (
            &["--tag", "rtt_p50_ms=1", "127.0.0.1"],
            "tag key 'rtt_p50_ms' is reserved",
        ),
    ];
    for (args, mentions) in cases {
        let what = format!("lping {}", args.join(" "));
        let out = run(lping().args(*args));
        let line = assert_one_line_error(&out, &what);
        assert!(
            line.contains(mentions),
            "{what}: the message should mention {mentions:?}: {line}"
        );
    }
    // --dscp sets the TOS byte's class: a -Q besides it would be silently overridden.
    let out = run(Command::new(env!("CARGO_BIN_EXE_ludp")).args([
        "--dscp",
        "EF",
        "-Q",
        "0x20",
        "127.0.0.1",
    ]));
    let line = assert_one_line_error(&out, "ludp --dscp EF -Q 0x20");
    assert!(
        line.contains("'--dscp <CLASS>' cannot be used with '--tos <TOS>'"),
        "{line}"
    );
}

#[test]
fn trace_every_without_trace_is_a_one_line_usage_error() {
    let tools = [
        (env!("CARGO_BIN_EXE_ludp"), "ludp", "127.0.0.1"),
        (env!("CARGO_BIN_EXE_ltcp"), "ltcp", "127.0.0.1:9"),
        (LPING, "lping", "127.0.0.1"),
    ];
    for (bin, tool, target) in tools {
        let cases: [(&[&str], &str); 2] = [
            (
                &["--trace-every", "10s", target],
                "required arguments were not provided: --trace",
            ),
            (
                &["--trace-only", "--trace-every", "10s", target],
                "'--trace-only' cannot be used with '--trace-every",
            ),
        ];
        for (args, mentions) in cases {
            let what = format!("{tool} {}", args.join(" "));
            let out = run(Command::new(bin).args(args));
            let stderr = stderr_text(&out);
            assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
            assert_eq!(stdout_text(&out), "", "{what}: nothing on stdout");
            assert!(
                stderr.starts_with(&format!("{tool}: ")) && stderr.lines().count() == 1,
                "{what}: one line: {stderr}"
            );
            assert!(stderr.contains(mentions), "{what}: {stderr}");
        }
    }
}

#[test]
fn unknown_host_is_a_one_line_error() {
    // In a namespace without a route anywhere, resolution fails at once and hermetically.
    let ns = Netns::new("cli");
    let out = run(lping_in(&ns).args(["-c", "1", "no-such-host.invalid"]));
    let line = assert_one_line_error(&out, "lping no-such-host.invalid");
    assert!(line.contains("'no-such-host.invalid'"), "{line}");
    // One unknown name among others (a stale line of a hosts file): said, the others are
    // probed and summarized, and the exit status is 2, as fping's.
    ns.run("ip link set lo up");
    let out = run(lping_in(&ns).args(["-q", "-c", "1", "127.0.0.1", "no-such-host.invalid"]));
    let stderr = stderr_text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("lping: cannot resolve host 'no-such-host.invalid'"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout_text(&out).trim()).expect("one summary");
    assert_eq!(
        (&summary["target"], &summary["received"]),
        (&json!("127.0.0.1"), &json!(1))
    );
}

#[test]
fn help_exits_0_and_shows_examples() {
    let out = run(lping().arg("--help"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr_text(&out), "");
    let help = stdout_text(&out);
    assert!(help.contains("\nExamples:\n"), "{help}");
    assert!(help.contains("Exit status:"), "{help}");
}

#[test]
fn tos_takes_hex() {
    require_root();
    let contract = Contract::load();
    let out = run(lping().args(["-c", "1", "-Q", "0x10", "127.0.0.1"]));
    assert_eq!(stderr_text(&out), "", "-Q 0x10 is accepted");
    assert_eq!(out.status.code(), Some(0));
    let records = contract.check_output(&out);
    assert_eq!(kinds(&records), ["reply", "summary"]);
    // Linux echoes the request's TOS in the reply.
    assert_eq!(records[0]["tos"], 16, "{}", records[0]);
}

#[test]
fn closed_stdout_ends_quietly_with_status_0() {
    require_root();
    let script = r#""$0" -i 0.05 127.0.0.1 | head -1; echo "lping exited ${PIPESTATUS[0]}""#;
    let out = run(Command::new("bash").args(["-c", script, LPING]));
    assert_eq!(stderr_text(&out), "", "nothing on stderr");
    let text = stdout_text(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    Contract::load().check_line(lines[0]);
    assert_eq!(lines[1], "lping exited 0");
}

fn signal_ends_run_with_total_summary(sig: &str) {
    require_root();
    let contract = Contract::load();
    let mut lp = Running::spawn(lping().args(["-i", "0.05", "127.0.0.1"]));
    let mut replies = 0;
    while replies < 3 {
        let v = contract.check_line(&lp.next_line());
        assert_eq!(v["type"], "reply", "{v}");
        replies += 1;
    }
    lp.signal(sig);
    let (status, rest, stderr) = lp.finish();
    assert_eq!(stderr, "", "SIG{sig}: nothing on stderr");
    assert_eq!(
        status.code(),
        Some(0),
        "SIG{sig}: every target answered: {status}"
    );
    let records: Vec<Value> = rest.iter().map(|l| contract.check_line(l)).collect();
    let last = records
        .last()
        .unwrap_or_else(|| panic!("SIG{sig}: nothing written after the signal"));
    assert_eq!(
        (&last["type"], &last["window"]),
        (&json!("summary"), &json!("total")),
        "{last}"
    );
    let sent = last["sent"].as_u64().unwrap();
    let received = last["received"].as_u64().unwrap();
    assert!(sent >= received && received >= 3, "SIG{sig}: {last}");
    assert_eq!(
        records.iter().filter(|r| r["type"] == "summary").count(),
        1,
        "SIG{sig}: {rest:?}"
    );
}

/// Started under nohup (SIGHUP ignored), lping keeps running through a SIGHUP, as nohup asked,
/// and a SIGINT then ends it with the total summary.
#[test]
fn under_nohup_sighup_does_not_end_the_run() {
    require_root();
    let contract = Contract::load();
    // `trap '' HUP` is what nohup does: the ignored disposition survives exec.
    let mut lp = Running::spawn(Command::new("sh").args([
        "-c",
        &format!("trap '' HUP; exec {LPING} -i 0.05 127.0.0.1"),
    ]));
    let mut replies = 0;
    while replies < 2 {
        assert_eq!(contract.check_line(&lp.next_line())["type"], "reply");
        replies += 1;
    }
    lp.signal("HUP");
    // Replies go on after the SIGHUP (the first may have been on its way already).
    while replies < 6 {
        assert_eq!(contract.check_line(&lp.next_line())["type"], "reply");
        replies += 1;
    }
    lp.signal("INT");
    let (status, rest, stderr) = lp.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let last: Value = serde_json::from_str(rest.last().expect("a summary")).unwrap();
    assert_eq!(
        (&last["type"], &last["window"]),
        (&json!("summary"), &json!("total"))
    );
    assert!(last["received"].as_u64().unwrap() >= 6, "{last}");
}

/// SIGINT, SIGTERM, and SIGHUP (a terminal or SSH session gone): each ends the run with the
/// total summary, as ping's SIGINT does.
#[test]
fn sigint_sigterm_and_sighup_end_the_run_with_a_total_summary() {
    for sig in ["INT", "TERM", "HUP"] {
        signal_ends_run_with_total_summary(sig);
    }
}

// ---------------------------------------------------------------------------------------------
// Man pages

/// Every tool's `--help` examples fit an 80-column terminal, so clap never wraps one in the
/// middle of a command; each command starts at two spaces (or continues a pipe at four), its
/// description below it at six (issue 17).
#[test]
fn help_examples_fit_80_columns_and_are_never_wrapped() {
    let tools = [
        ("lping", env!("CARGO_BIN_EXE_lping")),
        ("ludp", env!("CARGO_BIN_EXE_ludp")),
        ("ltcp", env!("CARGO_BIN_EXE_ltcp")),
        ("ltwamp", env!("CARGO_BIN_EXE_ltwamp")),
        ("lreflect", env!("CARGO_BIN_EXE_lreflect")),
        ("lpassive", env!("CARGO_BIN_EXE_lpassive")),
        ("lwatch", env!("CARGO_BIN_EXE_lwatch")),
        ("lcorrelate", env!("CARGO_BIN_EXE_lcorrelate")),
    ];
    for (name, program) in tools {
        // As wide as clap allows, so a line it would wrap at 80 shows here whole.
        let out = Command::new(program)
            .arg("--help")
            .env("COLUMNS", "200")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let examples: Vec<&str> = help
            .lines()
            .skip_while(|l| *l != "Examples:")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!examples.is_empty(), "{name}: no examples in --help");
        for line in &examples {
            assert!(
                line.chars().count() <= 80,
                "{name}: too wide for 80 columns: {line}"
            );
            let indent = line.len() - line.trim_start().len();
            assert!(
                [2, 4, 6].contains(&indent),
                "{name}: neither a command, its continuation nor its description: {line:?}"
            );
        }
        assert!(
            examples.iter().any(|l| l.starts_with(&format!("  {name}"))),
            "{name}: no example runs {name}"
        );
    }
}

#[test]
fn man_pages_are_current() {
    let update = std::env::var_os("LOPA_UPDATE_MAN").is_some_and(|v| v == "1");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut names = BTreeSet::new();
    let mut stale = Vec::new();
    for cmd in lopa::man::commands() {
        let name = cmd.get_name().to_string();
        let page = lopa::man::render(cmd).expect("render man page");
        let path = dir.join(format!("{name}.1"));
        if update {
            fs::create_dir_all(&dir).expect("create man/");
            fs::write(&path, &page).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else if fs::read(&path).ok().as_deref() != Some(&page[..]) {
            stale.push(format!("man/{name}.1"));
        }
        names.insert(format!("{name}.1"));
    }
    assert!(
        stale.is_empty(),
        "{stale:?} out of date: regenerate with LOPA_UPDATE_MAN=1 cargo test --test cli man_pages"
    );
    let orphans: Vec<String> = fs::read_dir(&dir)
        .expect("man/")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".1") && !names.contains(f))
        .collect();
    assert!(orphans.is_empty(), "man pages of no command: {orphans:?}");
}

/// completions/<shell>/<file> for every tool and shell, as `lopa::completions` renders them now;
/// regenerated with `LOPA_UPDATE_MAN=1`, like the man pages. No file of a tool that is gone.
#[test]
fn completions_are_current() {
    let update = std::env::var_os("LOPA_UPDATE_MAN").is_some_and(|v| v == "1");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let mut stale = Vec::new();
    for shell in lopa::completions::SHELLS {
        let dir = root.join(shell.to_string());
        let mut names = BTreeSet::new();
        for cmd in lopa::man::commands() {
            let file = lopa::completions::file_name(shell, cmd.get_name());
            let script = lopa::completions::render(cmd, shell);
            let path = dir.join(&file);
            if update {
                fs::create_dir_all(&dir).expect("create completions/");
                fs::write(&path, &script).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            } else if fs::read(&path).ok().as_deref() != Some(&script[..]) {
                stale.push(format!("completions/{shell}/{file}"));
            }
            names.insert(file);
        }
        let orphans: Vec<String> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| !names.contains(f))
            .collect();
        assert!(
            orphans.is_empty(),
            "completions/{shell}: files of no command: {orphans:?}"
        );
    }
    assert!(
        stale.is_empty(),
        "{stale:?} out of date: regenerate with LOPA_UPDATE_MAN=1 cargo test --test cli completions"
    );
}

/// A shell, or one line saying how to get it.
fn shell(name: &str) -> Command {
    let found = Command::new(name)
        .args(["-c", "exit 0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{name} is missing: install Debian's {name} (.ci/run does)"
    );
    Command::new(name)
}

/// Runs `script` in `shell` (from the repository root): its stdout, or a panic with stderr.
fn in_shell(name: &str, script: &str) -> String {
    let out = shell(name)
        .arg("-c")
        .arg(script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} -c {script:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The checked-in completions load in the real shells and complete: every tool's file loads
/// in bash, zsh (registered with compdef for its tool) and fish; in bash and fish
/// `lping --sock<TAB>` offers --socket and `lping --socket <TAB>` its three values, and zsh's
/// function offers the same values.
#[test]
fn completions_load_and_complete_in_bash_zsh_and_fish() {
    for cmd in lopa::man::commands() {
        let tool = cmd.get_name();
        in_shell(
            "bash",
            &format!("source completions/bash/{tool} && complete -p {tool}"),
        );
        let registered = in_shell(
            "zsh",
            &format!(
                "autoload -Uz compinit && compinit -u -D && source completions/zsh/_{tool} && \
                 print -r -- $_comps[{tool}]"
            ),
        );
        assert_eq!(registered.trim(), format!("_{tool}"));
        in_shell(
            "fish",
            &format!(
                "source completions/fish/{tool}.fish && complete -c {tool} | grep -q -- --help"
            ),
        );
    }

    let bash = |words: &str, cword: usize| -> Vec<String> {
        in_shell(
            "bash",
            &format!(
                "source completions/bash/lping && COMP_WORDS=({words}) && COMP_CWORD={cword} && \
                 COMP_LINE=\"${{COMP_WORDS[*]}}\" && COMP_POINT=${{#COMP_LINE}} && \
                 _lping lping \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\" && \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ),
        )
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
    };
    assert_eq!(bash("lping --sock", 1), ["--socket"]);
    let mut values = bash("lping --socket ''", 2);
    values.sort();
    assert_eq!(values, ["auto", "dgram", "raw"]);

    // fish prints each candidate with its description after a tab.
    let fish = |line: &str| -> Vec<String> {
        let mut c: Vec<String> = in_shell(
            "fish",
            &format!("source completions/fish/lping.fish && complete -C '{line}'"),
        )
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
        c.sort();
        c
    };
    assert_eq!(fish("lping --sock"), ["--socket"]);
    assert_eq!(fish("lping --socket "), ["auto", "dgram", "raw"]);

    let zsh = in_shell(
        "zsh",
        "autoload -Uz compinit && compinit -u -D && source completions/zsh/_lping && \
         functions _lping",
    );
    // '--socket=[HELP]:SOCKET_MODE:((auto\:"…" dgram\:"…" raw\:"…"))', up to the next spec.
    let at = zsh
        .find("'--socket=[")
        .unwrap_or_else(|| panic!("no --socket in zsh's _lping"));
    let socket = &zsh[at..at + zsh[at..].find("' '").unwrap_or(zsh.len() - at)];
    for value in ["(auto\\:", "dgram\\:", "raw\\:"] {
        assert!(socket.contains(value), "{value} in {socket}");
    }
}

// ---------------------------------------------------------------------------------------------
// lpassive

const LPASSIVE: &str = env!("CARGO_BIN_EXE_lpassive");

#[test]
fn lpassive_records_match_their_schemas() {
    require_root();
    let contract = Contract::load();
    let ns = Netns::new("cli-passive");
    ns.run(
        "ip link add v0 type veth peer name v1 && ip addr add 10.9.0.1/24 dev v0 && \
         ip link set v0 up && ip link set v1 up && \
         ip neigh add 10.9.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent",
    );
    let mut lp = Running::spawn(ns.command(LPASSIVE).args([
        "-i",
        "0.1",
        "--alert-drops",
        "0",
        "--tag",
        "dc=fra1",
    ]));
    let mut records = vec![contract.check_line(&lp.next_line())];
    // A new interface, a peer down, and datagrams sent towards it: counted as tx_dropped.
    ns.run("ip link set v1 down && ip link add v2 type veth peer name v3");
    ns.run(
        "python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         [s.sendto(b'x', ('10.9.0.2', 9)) for _ in range(5)]\"",
    );
    while !records
        .iter()
        .any(|r| r["type"] == "alert" && r["state"] == "resolved")
    {
        records.push(contract.check_line(&lp.next_line()));
    }
    lp.signal("INT");
    let (status, rest, stderr) = lp.finish();
    assert!(status.success(), "{stderr}");
    records.extend(rest.iter().map(|l| contract.check_line(l)));
    for kind in ["sample", "link", "alert", "iface_summary"] {
        assert!(
            records.iter().any(|r| r["type"] == kind),
            "no {kind} record: {records:?}"
        );
    }
    let firing = records
        .iter()
        .find(|r| r["type"] == "alert")
        .expect("an alert");
    assert_eq!(
        (&firing["state"], &firing["metric"], &firing["ifname"]),
        (&json!("firing"), &json!("drops_pps"), &json!("v0"))
    );
    assert!(records.iter().all(|r| r["tags"]["dc"] == "fra1"));
}

// ---------------------------------------------------------------------------------------------
// lwatch

const LWATCH: &str = env!("CARGO_BIN_EXE_lwatch");

#[test]
fn lwatch_records_match_their_schemas() {
    require_root();
    let contract = Contract::load();
    let ns = Netns::new("cli-watch");
    let mut lw = Running::spawn(ns.command(LWATCH).args([
        "--dump",
        "--tag",
        "dc=fra1",
        "--type",
        "link,addr,route,nexthop,neigh,rule",
    ]));
    // The first present record means the subscription and the dump are done.
    let mut records = vec![contract.check_line(&lw.next_line())];
    ns.run(
        "ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up && \
         ip addr add 10.9.0.1/24 dev v0 && ip addr add fd09::1/64 dev v0 && \
         ip route add 10.8.0.0/24 nexthop via 10.9.0.2 nexthop via 10.9.0.3 && \
         ip route add 10.7.0.0/24 via 10.9.0.2 table 1000 && \
         ip nexthop add id 1 via 10.9.0.2 dev v0 && ip nexthop add id 2 via 10.9.0.3 dev v0 && \
         ip nexthop add id 10 group 1/2,3 && ip route add 10.6.0.0/24 nhid 10 && \
         ip nexthop replace id 1 via 10.9.0.4 dev v0 && \
         ip neigh add 10.9.0.7 lladdr 02:00:00:00:00:07 dev v0 && \
         ip neigh change 10.9.0.7 lladdr 02:00:00:00:00:08 dev v0 nud reachable && \
         ip rule add from 10.9.0.0/24 fwmark 0x10/0xff table 1000 pref 100 && \
         ip rule add not iif v0 ipproto tcp dport 22 goto 32766 pref 200 && \
         ip link del v0",
    );
    while !records
        .iter()
        .any(|r| r["type"] == "link" && r["event"] == "del")
    {
        records.push(contract.check_line(&lw.next_line()));
    }
    lw.signal("TERM");
    let (status, rest, stderr) = lw.finish();
    assert!(status.success(), "{stderr}");
    records.extend(rest.iter().map(|l| contract.check_line(l)));
    for kind in ["link", "addr", "route", "nexthop", "neigh", "rule"] {
        assert!(
            records.iter().any(|r| r["type"] == kind),
            "no {kind} record: {records:?}"
        );
    }
    assert!(records
        .iter()
        .any(|r| r["type"] == "nexthop" && r["event"] == "replace"));
    assert!(records
        .iter()
        .any(|r| r["type"] == "route" && r["nhid"] == 10 && r["event"] == "replace"));
    assert!(records
        .iter()
        .any(|r| r["type"] == "neigh" && r["event"] == "change"));
    assert!(records
        .iter()
        .any(|r| r["type"] == "route" && r["nexthops"].as_array().is_some_and(|n| n.len() == 2)));
    assert!(records.iter().all(|r| r["tags"]["dc"] == "fra1"));
}

// ---------------------------------------------------------------------------------------------
// ltwamp

const LTWAMP: &str = env!("CARGO_BIN_EXE_ltwamp");

#[test]
fn ltwamp_records_match_their_schemas() {
    require_root();
    let contract = Contract::load();
    let lab = common::lab::Pair::new("cli-twamp");
    let _reflector =
        common::lab::stamp_suite_reflector(&lab.server, "10.0.0.2", &["--stateful-reflector"]);
    // Half the probes lost on the way there: timeouts, loss placed forward, an alert. Port 9
    // answers port unreachable.
    common::lab::add_loss(&lab.server, "input", "eth0", 50);
    let out = run(lab.client.command(LTWAMP).args([
        "-c",
        "40",
        "-i",
        "0.01",
        "-W",
        "0.3",
        "--summary-every",
        "0.1",
        "--alert-loss",
        "10",
        "--tag",
        "dc=fra1",
        "10.0.0.2",
        "10.0.0.2:9",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    let records = contract.check_output(&out);
    for kind in ["reply", "timeout", "unreachable", "summary", "alert"] {
        assert!(
            records.iter().any(|r| r["type"] == kind),
            "no {kind} record: {records:?}"
        );
    }
    assert!(records
        .iter()
        .all(|r| r["tool"] == "ltwamp" && r["tags"]["dc"] == "fra1"));
    let reply = of_kind(&records, "reply")[0];
    for member in [
        "fwd_ms",
        "rev_ms",
        "reflector_ms",
        "synced",
        "reflector_seq",
        "reflector_ttl",
    ] {
        assert!(reply.get(member).is_some(), "{member}: {reply}");
    }
    let total = records
        .iter()
        .find(|r| r["type"] == "summary" && r["window"] == "total" && r["target"] == "10.0.0.2")
        .expect("a total summary");
    assert!(total["lost_fwd"].as_u64() > Some(0), "{total}");
    // Only an answer later than -W (late) can be charged to the way back.
    assert!(
        total["lost_rev"].as_u64() <= total["late"].as_u64(),
        "{total}"
    );
}

/// `-w` shorter than `-i`: the run ends at the duration once the probes in flight settle (not
/// at the next probe's due time, 10 s later), and the first probes of several targets are
/// spread over the duration, so every target is probed.
#[test]
fn a_duration_shorter_than_the_interval_probes_every_target_and_ends_on_time() {
    require_root();
    let targets = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let started = std::time::Instant::now();
    let out = run(lping().args(["-q", "-w", "0.5", "-i", "10"]).args(targets));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert!(
        took < Duration::from_secs(8),
        "ran {took:?}: until the next probe's due time"
    );
    let text = stdout_text(&out);
    let contract = Contract::load();
    for target in targets {
        let s = text
            .lines()
            .map(|l| contract.check_line(l))
            .find(|r| r["target"] == target)
            .unwrap_or_else(|| panic!("no summary for {target}: {text}"));
        assert_eq!((&s["sent"], &s["received"]), (&json!(1), &json!(1)), "{s}");
    }
}
