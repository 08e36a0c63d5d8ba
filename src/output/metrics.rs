//! `--format openmetrics` and `--textfile`: the figures of a run as a Prometheus exposition.
//!
//! The exposition is built from the record stream the probes already write, so it is written
//! once for every tool: replies feed RTT (and, with synchronized clocks, one-way delay)
//! histograms, summaries feed counters; lpassive's samples and interface summaries
//! (`metrics/iface.rs`) and lreflect's stats (`metrics/reflector.rs`) feed their own counters
//! and gauges. It is written whole at the end of every summary window (lpassive: sample round; lreflect: stats
//! window) and of the run ([`Exposition::render`]), in the text format Prometheus,
//! node_exporter's textfile collector and `promtool` read, ending with `# EOF` as OpenMetrics
//! asks (a comment to the older parsers).
//!
//! Conventions (Prometheus's): the `lopa_` prefix, base units (`_seconds`), `_total` on
//! counters, which count since the start of the run (`rate()` copes with the reset of a new
//! run). Labels: `tool`, `target`, `addr`, `src` when the record has it, the user's tags, and
//! per flow (`sport`, `dport`, `dscp`) only for a target probed over several flows or classes,
//! since every label multiplies the series; one flow's figures are the target's.

mod iface;
mod reflector;

use crate::record::figure;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// RTT bucket bounds by default: log-spaced, 50 µs to 10 s, in seconds.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Label pairs in a fixed order: the target's own, then its tags.
type Labels = Vec<(String, String)>;

/// A cumulative histogram over fixed bounds.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations at or under each bound (not cumulative here; summed when rendered).
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        if let Some(i) = bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += v;
    }

    fn merge(&mut self, other: &Histogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// Counts of one series set over a run: the windows' counts added up until the run's total
/// (a record with `"window":"total"`) replaces them.
#[derive(Debug, Clone, Default)]
struct Tally<K: Ord> {
    windows: BTreeMap<K, u64>,
    total: Option<BTreeMap<K, u64>>,
}

impl<K: Ord> Tally<K> {
    fn add(&mut self, counts: impl IntoIterator<Item = (K, u64)>, total: bool) {
        if total {
            self.total = Some(counts.into_iter().collect());
        } else {
            for (k, n) in counts {
                *self.windows.entry(k).or_default() += n;
            }
        }
    }

    fn counts(&self) -> &BTreeMap<K, u64> {
        self.total.as_ref().unwrap_or(&self.windows)
    }
}

/// Whether a record is the run's total rather than one window.
fn is_total(body: &Map<String, Value>) -> bool {
    body.get("window").and_then(Value::as_str) == Some("total")
}

/// What one stream (a target, or one flow and class of it) has measured so far.
#[derive(Debug, Clone, Default)]
struct Stream {
    /// Integer members of the summaries.
    tally: Tally<String>,
    /// The latest value of the summaries' integer members that are states, not counts.
    gauges: BTreeMap<String, u64>,
    rtt: Histogram,
    fwd: Histogram,
    rev: Histogram,
}

impl Stream {
    fn counts(&self) -> &BTreeMap<String, u64> {
        self.tally.counts()
    }
}

/// The histograms written, by record member: (member, metric, help).
const HISTOGRAMS: &[(&str, &str, &str)] = &[
    (
        "rtt_ms",
        "lopa_rtt_seconds",
        "Round-trip time of the answered probes.",
    ),
    (
        "fwd_ms",
        "lopa_fwd_delay_seconds",
        "One-way delay to the reflector (both clocks synchronized).",
    ),
    (
        "rev_ms",
        "lopa_rev_delay_seconds",
        "One-way delay back from the reflector (both clocks synchronized).",
    ),
];

/// Help of the summary counters lopa knows; a member added later gets a generic one.
const COUNTER_HELP: &[(&str, &str)] = &[
    (
        "sent",
        "Probes settled: answered, timed out or answered by an ICMP error.",
    ),
    ("received", "Probes answered (duplicates not counted)."),
    (
        "lost",
        "Probes not answered (sent minus received), wherever they were lost.",
    ),
    ("dup", "Duplicate answers."),
    (
        "reordered",
        "Answers that came after the answer to a later probe.",
    ),
    (
        "late",
        "Answers that came after their probe's timeout (the probe counts as lost).",
    ),
    ("unreachable", "Probes answered by an ICMP error."),
    (
        "lost_fwd",
        "Lost probes placed on the way to the reflector.",
    ),
    ("lost_rev", "Lost probes placed on the way back."),
    (
        "refused",
        "Lost probes the reflector refused (its rate limit): the far end's doing.",
    ),
    (
        "dropped_local",
        "Datagrams this host's kernel dropped on a full receive queue of the probing socket.",
    ),
];

/// Integer summary members that are states rather than counts: gauges of their latest value.
const GAUGES: &[(&str, &str)] = &[
    (
        "hops_fwd",
        "Routers on the way to the reflector (from the TTLs).",
    ),
    ("hops_rev", "Routers on the way back (from the TTLs)."),
];

/// The figures of a run, fed record by record and rendered as an exposition.
#[derive(Debug, Clone)]
pub struct Exposition {
    bounds: Vec<f64>,
    /// Per target (its labels), per flow (its labels; `None` for the target's own summary).
    streams: BTreeMap<Labels, BTreeMap<Option<Labels>, Stream>>,
    /// lpassive's interfaces.
    ifaces: iface::Ifaces,
    /// lreflect's listening sockets.
    sockets: reflector::Sockets,
}

impl Exposition {
    /// An empty exposition with these RTT bucket bounds, in seconds, ascending.
    pub fn new(bounds: Vec<f64>) -> Exposition {
        Exposition {
            bounds,
            streams: BTreeMap::new(),
            ifaces: iface::Ifaces::default(),
            sockets: reflector::Sockets::default(),
        }
    }

    /// Takes one record (`type`, its body members, its tags): the probes' replies and
    /// summaries, lpassive's samples, interface summaries and links, lreflect's stats.
    pub fn observe(
        &mut self,
        kind: &str,
        tool: &str,
        body: &Map<String, Value>,
        tags: Option<&BTreeMap<String, String>>,
    ) {
        match kind {
            "reply" | "summary" => self.observe_probe(kind, tool, body, tags),
            "sample" | "iface_summary" | "link" => self.ifaces.observe(kind, tool, body, tags),
            "stats" => self.sockets.observe(tool, body, tags),
            _ => {}
        }
    }

    fn observe_probe(
        &mut self,
        kind: &str,
        tool: &str,
        body: &Map<String, Value>,
        tags: Option<&BTreeMap<String, String>>,
    ) {
        let target = target_labels(tool, body, tags);
        let flow = match body.get("flow") {
            Some(Value::Object(f)) => Some(flow_labels(f)),
            _ => None,
        };
        let stream = self
            .streams
            .entry(target)
            .or_default()
            .entry(flow)
            .or_default();
        match kind {
            "reply" => {
                if body.get("dup") == Some(&Value::Bool(true)) {
                    return;
                }
                let synced = body.get("synced") == Some(&Value::Bool(true));
                for (member, hist) in [
                    ("rtt_ms", &mut stream.rtt),
                    ("fwd_ms", &mut stream.fwd),
                    ("rev_ms", &mut stream.rev),
                ] {
                    let one_way = member != "rtt_ms";
                    if one_way && !synced {
                        continue;
                    }
                    if let Some(ms) = body.get(member).and_then(Value::as_f64) {
                        hist.observe(&self.bounds, ms / 1000.0);
                    }
                }
            }
            _ => {
                let (gauges, counts): (BTreeMap<String, u64>, BTreeMap<String, u64>) = body
                    .iter()
                    .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                    .partition(|(k, _)| GAUGES.iter().any(|(g, _)| g == k));
                stream.gauges.extend(gauges);
                stream.tally.add(counts, is_total(body));
            }
        }
    }

    /// The whole exposition, ending with `# EOF`.
    pub fn render(&self) -> String {
        // Per target: its series, each with its labels (flow labels only when it has flows).
        let mut series: Vec<(Labels, Stream)> = Vec::new();
        for (target, flows) in &self.streams {
            let flow_summaries: Vec<&Labels> = flows.keys().flatten().collect();
            let per_flow = flow_summaries.len() > 1
                || flow_summaries
                    .iter()
                    .any(|f| f.iter().any(|(k, _)| k == "dscp"));
            if per_flow {
                for (flow, stream) in flows {
                    if let Some(flow) = flow {
                        let mut labels = target.clone();
                        labels.extend(flow.iter().cloned());
                        series.push((labels, stream.clone()));
                    }
                }
            } else {
                // The target's own summary has its counts; every stream's answers are its.
                let mut merged = flows
                    .get(&None)
                    .cloned()
                    .unwrap_or_else(|| flows.values().next().cloned().unwrap_or_default());
                merged.rtt = Histogram::default();
                merged.fwd = Histogram::default();
                merged.rev = Histogram::default();
                for stream in flows.values() {
                    merged.rtt.merge(&stream.rtt);
                    merged.fwd.merge(&stream.fwd);
                    merged.rev.merge(&stream.rev);
                }
                series.push((target.clone(), merged));
            }
        }
        let mut out = String::with_capacity(4096);
        self.render_counters(&mut out, &series);
        for (member, help) in GAUGES {
            let rows: Vec<(String, String)> = series
                .iter()
                .filter_map(|(l, s)| {
                    Some((label_text(l, None), s.gauges.get(*member)?.to_string()))
                })
                .collect();
            family(&mut out, &format!("lopa_{member}"), "gauge", help, &rows);
        }
        for (member, name, help) in HISTOGRAMS {
            self.render_histogram(&mut out, &series, member, name, help);
        }
        self.ifaces.render(&mut out);
        self.sockets.render(&mut out);
        out.push_str("# EOF\n");
        out
    }

    fn render_counters(&self, out: &mut String, series: &[(Labels, Stream)]) {
        let mut members: BTreeSet<String> = series
            .iter()
            .flat_map(|(_, s)| s.counts().keys().cloned())
            .collect();
        if members.contains("sent") && members.contains("received") {
            members.insert("lost".to_string());
        }
        for member in in_order(COUNTER_HELP, &members) {
            let rows: Vec<(String, String)> = series
                .iter()
                .filter_map(|(labels, stream)| {
                    let counts = stream.counts();
                    let value = match member {
                        "lost" => counts.get("sent")?.saturating_sub(*counts.get("received")?),
                        m => *counts.get(m)?,
                    };
                    Some((label_text(labels, None), value.to_string()))
                })
                .collect();
            let name = format!("lopa_probes_{}_total", sanitize(member));
            let help = help_of(COUNTER_HELP, member, |m| {
                format!("The summaries' {m} member, added up.")
            });
            family(out, &name, "counter", &help, &rows);
        }
    }

    fn render_histogram(
        &self,
        out: &mut String,
        series: &[(Labels, Stream)],
        member: &str,
        name: &str,
        help: &str,
    ) {
        let pick = |s: &Stream| -> Histogram {
            match member {
                "rtt_ms" => s.rtt.clone(),
                "fwd_ms" => s.fwd.clone(),
                _ => s.rev.clone(),
            }
        };
        let with_data: Vec<(&Labels, Histogram)> = series
            .iter()
            .map(|(l, s)| (l, pick(s)))
            // One-way delays only where some were measured; RTT for every series.
            .filter(|(_, h)| member == "rtt_ms" || h.count > 0)
            .collect();
        if with_data.is_empty() {
            return;
        }
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} histogram\n# UNIT {name} seconds\n"
        ));
        for (labels, h) in with_data {
            let mut cumulative = 0;
            for (i, bound) in self.bounds.iter().enumerate() {
                cumulative += h.counts.get(i).copied().unwrap_or(0);
                let le = figure(*bound);
                out.push_str(&format!(
                    "{name}_bucket{} {cumulative}\n",
                    label_text(labels, Some(&le))
                ));
            }
            out.push_str(&format!(
                "{name}_bucket{} {}\n",
                label_text(labels, Some("+Inf")),
                h.count
            ));
            out.push_str(&format!(
                "{name}_count{} {}\n",
                label_text(labels, None),
                h.count
            ));
            out.push_str(&format!(
                "{name}_sum{} {}\n",
                label_text(labels, None),
                sum_text(h.sum)
            ));
        }
    }
}

/// A histogram's sum in seconds: nanosecond resolution, plain notation.
fn sum_text(v: f64) -> String {
    let text = format!("{v:.9}");
    let trimmed = text.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_string()
    }
}

fn target_labels(
    tool: &str,
    body: &Map<String, Value>,
    tags: Option<&BTreeMap<String, String>>,
) -> Labels {
    let mut labels = vec![("tool".to_string(), tool.to_string())];
    for key in ["target", "addr", "src"] {
        if let Some(v) = body.get(key) {
            labels.push((key.to_string(), scalar(v)));
        }
    }
    with_tags(labels, tags)
}

/// `labels` and then the user's tags.
fn with_tags(mut labels: Labels, tags: Option<&BTreeMap<String, String>>) -> Labels {
    for (k, v) in tags.into_iter().flatten() {
        // A tag may not shadow a label of the exposition's own (`le` would break histograms).
        let key = sanitize(k);
        let key = if OWN_LABELS.contains(&key.as_str()) {
            format!("tag_{key}")
        } else {
            key
        };
        labels.push((key, v.clone()));
    }
    labels
}

/// Labels the exposition sets itself.
const OWN_LABELS: &[&str] = &[
    "tool", "target", "addr", "src", "sport", "dport", "dscp", "le", "ifname", "oper", "listen",
    "mode", "reason",
];

/// Writes one metric family: HELP and TYPE, then its samples (label text, value); nothing at
/// all when it has no sample.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    if samples.is_empty() {
        return;
    }
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    for (labels, value) in samples {
        out.push_str(&format!("{name}{labels} {value}\n"));
    }
}

/// The help of a known member, else a generic one.
fn help_of(known: &[(&str, &str)], member: &str, generic: impl Fn(&str) -> String) -> String {
    known
        .iter()
        .find(|(m, _)| *m == member)
        .map_or_else(|| generic(member), |(_, h)| h.to_string())
}

/// Members in the documented order of `known`, then any others.
fn in_order<'a>(known: &[(&'a str, &str)], members: &'a BTreeSet<String>) -> Vec<&'a str> {
    let mut order: Vec<&str> = known
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| members.contains(*m))
        .collect();
    order.extend(
        members
            .iter()
            .map(String::as_str)
            .filter(|m| !known.iter().any(|(k, _)| k == m)),
    );
    order
}

fn flow_labels(flow: &Map<String, Value>) -> Labels {
    ["sport", "dport", "dscp"]
        .iter()
        .filter_map(|k| flow.get(*k).map(|v| (k.to_string(), scalar(v))))
        .collect()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A label or metric name: letters, digits and `_`, not starting with a digit.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// `{a="x",b="y"}` (with `le` last when given); values escaped as the format asks.
fn label_text(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Where the exposition goes besides standard output: `--textfile PATH`, rewritten whole at
/// every window and at the end through a temporary file in the same directory and a rename,
/// so node_exporter never reads half a file.
#[derive(Debug, Clone)]
pub struct Textfile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
}

impl Textfile {
    /// Checks at once that PATH's directory can take the file (a typo is a usage error before
    /// the run, not a failure after it).
    pub fn new(path: std::path::PathBuf) -> std::io::Result<Textfile> {
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other(format!("{}: not a file name", path.display())))?
            .to_string_lossy()
            .into_owned();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, b"")
            .and_then(|()| std::fs::remove_file(&tmp))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(Textfile { path, tmp })
    }

    /// Replaces the file's content with `text`, atomically.
    pub fn write(&self, text: &str) -> std::io::Result<()> {
        std::fs::write(&self.tmp, text)?;
        std::fs::rename(&self.tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn histograms_are_cumulative_with_count_and_sum() {
        let mut e = Exposition::new(vec![0.001, 0.01]);
        for rtt in [0.5, 1.0, 5.0, 50.0] {
            let reply = json!({"target": "h", "addr": "10.0.0.1", "seq": 1, "rtt_ms": rtt});
            e.observe("reply", "lping", &obj(reply), None);
        }
        let dup = json!({"target": "h", "addr": "10.0.0.1", "seq": 1, "rtt_ms": 0.1, "dup": true});
        e.observe("reply", "lping", &obj(dup), None);
        let text = e.render();
        let l = r#"tool="lping",target="h",addr="10.0.0.1""#;
        for line in [
            format!("lopa_rtt_seconds_bucket{{{l},le=\"0.001\"}} 2"),
            format!("lopa_rtt_seconds_bucket{{{l},le=\"0.01\"}} 3"),
            format!("lopa_rtt_seconds_bucket{{{l},le=\"+Inf\"}} 4"),
            format!("lopa_rtt_seconds_count{{{l}}} 4"),
            format!("lopa_rtt_seconds_sum{{{l}}} 0.0565"),
        ] {
            assert!(text.lines().any(|x| x == line), "{line} missing:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn counters_add_windows_until_the_total_replaces_them() {
        let mut e = Exposition::new(DEFAULT_BUCKETS.to_vec());
        let tags: BTreeMap<String, String> = [("site".to_string(), "a \"b\"".to_string())].into();
        let window = |sent, received, w: &str| {
            obj(
                json!({"target": "h", "addr": "10.0.0.1", "window": w, "sent": sent,
                       "received": received, "loss_pct": 0.0, "lost_fwd": 1}),
            )
        };
        e.observe("summary", "ludp", &window(10, 9, "1m"), Some(&tags));
        e.observe("summary", "ludp", &window(10, 10, "1m"), Some(&tags));
        let l = r#"tool="ludp",target="h",addr="10.0.0.1",site="a \"b\"""#;
        let text = e.render();
        assert!(
            text.contains(&format!("lopa_probes_sent_total{{{l}}} 20\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("lopa_probes_lost_total{{{l}}} 1\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("lopa_probes_lost_fwd_total{{{l}}} 2\n")),
            "{text}"
        );
        assert!(
            !text.contains("loss_pct"),
            "a ratio is not a counter: {text}"
        );
        let hops = obj(
            json!({"target": "h", "addr": "10.0.0.1", "window": "1m", "sent": 0,
                              "received": 0, "hops_fwd": 2, "hops_rev": 3}),
        );
        e.observe("summary", "ludp", &hops, Some(&tags));
        let text = e.render();
        assert!(
            text.contains(&format!("lopa_hops_fwd{{{l}}} 2\n")),
            "{text}"
        );
        assert!(text.contains("# TYPE lopa_hops_rev gauge\n"), "{text}");
        assert!(!text.contains("hops_fwd_total"), "{text}");
        e.observe("summary", "ludp", &window(21, 19, "total"), Some(&tags));
        let text = e.render();
        assert!(
            text.contains(&format!("lopa_probes_sent_total{{{l}}} 21\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("lopa_probes_lost_total{{{l}}} 2\n")),
            "{text}"
        );
    }

    #[test]
    fn one_way_delays_only_from_synchronized_clocks() {
        let mut e = Exposition::new(DEFAULT_BUCKETS.to_vec());
        let reply = |synced| {
            obj(
                json!({"target": "h", "addr": "10.0.0.1", "seq": 1, "rtt_ms": 1.0,
                       "fwd_ms": 0.4, "rev_ms": 0.5, "reflector_ms": 0.1, "synced": synced}),
            )
        };
        e.observe("reply", "ltwamp", &reply(false), None);
        assert!(!e.render().contains("lopa_fwd_delay_seconds"));
        e.observe("reply", "ltwamp", &reply(true), None);
        let text = e.render();
        assert!(
            text.contains(
                "lopa_fwd_delay_seconds_count{tool=\"ltwamp\",target=\"h\",addr=\"10.0.0.1\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "lopa_rev_delay_seconds_sum{tool=\"ltwamp\",target=\"h\",addr=\"10.0.0.1\"} 0.0005"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "lopa_rtt_seconds_count{tool=\"ltwamp\",target=\"h\",addr=\"10.0.0.1\"} 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn label_names_are_sanitized_and_never_shadow_the_exposition_s_own() {
        assert_eq!(sanitize("dc-name.x"), "dc_name_x");
        assert_eq!(sanitize("1x"), "_1x");
        let tags: BTreeMap<String, String> = [("le".to_string(), "x".to_string())].into();
        let labels = target_labels("lping", &obj(json!({"target": "h"})), Some(&tags));
        assert_eq!(labels.last().unwrap().0, "tag_le");
    }
}
