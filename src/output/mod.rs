//! The record writer: JSON lines, InfluxDB line protocol or text for people ([`text`]), one
//! flushed line (a few for a text summary or path) per record.
//!
//! Every record is flushed as soon as it is written, so `lping host | jq` is live. A closed
//! pipe surfaces as an `io::ErrorKind::BrokenPipe` error that the binaries turn into a quiet
//! exit with status 0 (see [`crate::cli::exit_code`]).
#![forbid(unsafe_code)]

pub mod metrics;
pub mod text;

use crate::record::{rfc3339, Record};
use serde_json::{Map, Value};
use std::io::{self, Write};
use std::time::UNIX_EPOCH;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// InfluxDB line protocol: measurement = record type, strings are tags, numbers are
    /// fields, nanosecond timestamps.
    Influx,
    /// Lines for people: replies and summaries as ping prints them, paths as traceroute,
    /// everything else as key=value pairs.
    Text,
    /// A Prometheus exposition (counters, RTT histograms, gauges) at the end of every summary
    /// window, sample round or stats window and of the run, ending with `# EOF`; not lwatch.
    Openmetrics,
}

/// Writes records to a byte sink, one line each, flushing after every line.
pub struct RecordWriter<W: Write> {
    out: W,
    format: Format,
    line: Vec<u8>,
    /// Per-probe records (reply, timeout, unreachable; lpassive's samples) are not written
    /// (`-q`), though the exposition still counts them.
    quiet: bool,
    /// The exposition, when `--format openmetrics` or `--textfile` asked for one.
    metrics: Option<metrics::Exposition>,
    textfile: Option<metrics::Textfile>,
}

impl RecordWriter<io::Stdout> {
    /// A writer on standard output.
    pub fn stdout(format: Format) -> Self {
        RecordWriter::new(io::stdout(), format)
    }
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W, format: Format) -> Self {
        let metrics = (format == Format::Openmetrics)
            .then(|| metrics::Exposition::new(metrics::DEFAULT_BUCKETS.to_vec()));
        RecordWriter {
            out,
            format,
            line: Vec::with_capacity(512),
            quiet: false,
            metrics,
            textfile: None,
        }
    }

    /// Leaves out per-probe records (`-q`).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Keeps an exposition with these RTT bucket bounds (seconds), written to standard output
    /// (`--format openmetrics`) and/or to a textfile at every [`RecordWriter::end_window`].
    pub fn metrics(mut self, bounds: Vec<f64>, textfile: Option<metrics::Textfile>) -> Self {
        if self.format == Format::Openmetrics || textfile.is_some() {
            self.metrics = Some(metrics::Exposition::new(bounds));
        }
        self.textfile = textfile;
        self
    }

    /// Whether the exposition needs every per-probe record, even under `-q`.
    pub fn wants_every_record(&self) -> bool {
        self.metrics.is_some()
    }

    /// Writes one record as one line and flushes it.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        if let Some(m) = &mut self.metrics {
            let body: Map<String, Value> = serde_json::from_slice(&record.body.to_json_object()?)?;
            m.observe(
                record.body.kind(),
                record.tool,
                &body,
                record.tags.as_deref(),
            );
        }
        // lpassive's samples are its per-probe records: left out by -q, counted all the same.
        let per_probe = matches!(
            record.body.kind(),
            "reply" | "timeout" | "unreachable" | "sample"
        );
        if self.format == Format::Openmetrics || (self.quiet && per_probe) {
            return Ok(());
        }
        self.line.clear();
        match self.format {
            Format::Json => json_line(record, &mut self.line)?,
            Format::Influx => influx_line(record, &mut self.line)?,
            Format::Text => text::text_lines(record, &mut self.line)?,
            Format::Openmetrics => {}
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()
    }

    /// A summary window (or the run) ended: the exposition is written whole, to standard
    /// output with `--format openmetrics`, to the textfile with `--textfile`.
    pub fn end_window(&mut self) -> io::Result<()> {
        let Some(m) = &self.metrics else {
            return Ok(());
        };
        let text = m.render();
        if let Some(file) = &self.textfile {
            file.write(&text)?;
        }
        if self.format == Format::Openmetrics {
            self.out.write_all(text.as_bytes())?;
            self.out.flush()?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `{"type":…,"tool":…,"ts":…, <body members>, "tags":{…}}`.
pub fn json_line(record: &Record, line: &mut Vec<u8>) -> io::Result<()> {
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(record.body.kind().as_bytes());
    line.extend_from_slice(b"\",\"tool\":");
    serde_json::to_writer(&mut *line, record.tool)?;
    line.extend_from_slice(b",\"ts\":\"");
    line.extend_from_slice(rfc3339(record.ts).as_bytes());
    line.push(b'"');
    let body = record.body.to_json_object()?;
    // The body is a JSON object: splice its members in after the header.
    if body.len() > 2 {
        line.push(b',');
        line.extend_from_slice(&body[1..body.len() - 1]);
    }
    if let Some(tags) = record.tags.as_deref().filter(|t| !t.is_empty()) {
        line.extend_from_slice(b",\"tags\":");
        serde_json::to_writer(&mut *line, tags)?;
    }
    line.push(b'}');
    Ok(())
}

/// Members that are free text, written as string fields rather than tags.
const TEXT_FIELDS: &[&str] = &["reason"];

/// Numbers that say which object a record is about, written as tags so records of different
/// objects written at one instant stay apart: a path's (a flow's) `sport` and `dport`, as a
/// `flow`'s members are; lwatch's nexthop object `id`, a rule's `priority`.
const IDENTITY_NUMBERS: &[&str] = &["sport", "dport", "id", "priority"];

/// Lists of objects written one element at a time under an indexed name, with a count:
/// `nexthops` (lwatch's multipath routes) becomes `nexthop_count=2i`, `nexthop0_gateway`,
/// `nexthop0_dev`, `nexthop0_weight=1i`, `nexthop1_…` (strings tags, numbers fields, as at the
/// top). A path's `hops` are indexed by their TTL rather than their place (`hop_count=3i`,
/// `hop1_addr`, `hop1_rtt_ms`, `hop2_…`), so `hop3` is the third hop whatever went silent
/// before it. lwatch's nexthop groups by place (`group_count`, `group0_id=1i`,
/// `group0_weight`). Other lists of objects are left out.
const INDEXED: &[Indexed] = &[
    Indexed {
        member: "nexthops",
        stem: "nexthop",
        index_by: None,
    },
    Indexed {
        member: "old_nexthops",
        stem: "old_nexthop",
        index_by: None,
    },
    Indexed {
        member: "group",
        stem: "group",
        index_by: None,
    },
    Indexed {
        member: "old_group",
        stem: "old_group",
        index_by: None,
    },
    Indexed {
        member: "hops",
        stem: "hop",
        index_by: Some("ttl"),
    },
];

/// How one list of objects is flattened (see [`INDEXED`]).
struct Indexed {
    member: &'static str,
    stem: &'static str,
    /// The element's own member that gives its index (left out of the fields); else its place.
    index_by: Option<&'static str>,
}

/// One InfluxDB line: `type,tool=…,<string members and tags> <numeric members> <ns>`. Lists
/// of strings (lwatch's address `flags`, `old_flags`) become one string field, the members
/// joined by commas (`flags="tentative,nodad"`): a set of flags is not an identity.
pub fn influx_line(record: &Record, line: &mut Vec<u8>) -> io::Result<()> {
    let body: Map<String, Value> = serde_json::from_slice(&record.body.to_json_object()?)?;
    let mut tags: Vec<(String, String)> = vec![("tool".into(), record.tool.into())];
    let mut fields: Vec<(String, String)> = Vec::new();
    for (key, value) in &body {
        match value {
            Value::Object(members) if key == "flow" => {
                // A flow is identity: its ports become tags.
                for (k, v) in members {
                    tags.push((format!("flow_{k}"), scalar_text(v)));
                }
            }
            Value::Object(members) => {
                for (k, v) in members {
                    if let Some(f) = field_value(v) {
                        fields.push((nested_name(key, k), f));
                    }
                }
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
                let joined: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                fields.extend(
                    field_value(&Value::String(joined.join(","))).map(|f| (key.clone(), f)),
                );
            }
            Value::Array(items) => {
                let Some(list) = INDEXED.iter().find(|l| l.member == key) else {
                    continue;
                };
                let stem = list.stem;
                fields.push((format!("{stem}_count"), format!("{}i", items.len())));
                for (place, item) in items.iter().enumerate() {
                    let members = item.as_object().into_iter().flatten();
                    let i = match list.index_by {
                        Some(by) => item.get(by).map(scalar_text).unwrap_or_default(),
                        None => place.to_string(),
                    };
                    for (k, v) in members.filter(|(k, _)| Some(k.as_str()) != list.index_by) {
                        let name = format!("{stem}{i}_{k}");
                        match v {
                            Value::String(s) => tags.push((name, s.clone())),
                            Value::Array(all) => {
                                let joined: Vec<String> = all.iter().map(scalar_text).collect();
                                let joined = Value::String(joined.join(","));
                                fields.extend(field_value(&joined).map(|f| (name, f)));
                            }
                            other => fields.extend(field_value(other).map(|f| (name, f))),
                        }
                    }
                }
            }
            Value::Number(n) if IDENTITY_NUMBERS.contains(&key.as_str()) => {
                tags.push((key.clone(), n.to_string()))
            }
            Value::String(s) if !TEXT_FIELDS.contains(&key.as_str()) => {
                tags.push((key.clone(), s.clone()))
            }
            other => {
                if let Some(f) = field_value(other) {
                    fields.push((key.clone(), f));
                }
            }
        }
    }
    if let Some(user) = record.tags.as_deref() {
        for (k, v) in user {
            tags.push((k.clone(), v.clone()));
        }
    }
    tags.retain(|(_, v)| !v.is_empty());
    // Sorted tag keys are what InfluxDB recommends; the first occurrence of a key wins.
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    tags.dedup_by(|b, a| a.0 == b.0);

    escape_into(line, record.body.kind(), &[',', ' ']);
    for (k, v) in &tags {
        line.push(b',');
        escape_into(line, k, &[',', '=', ' ']);
        line.push(b'=');
        escape_into(line, v, &[',', '=', ' ']);
    }
    for (i, (k, v)) in fields.iter().enumerate() {
        line.push(if i == 0 { b' ' } else { b',' });
        escape_into(line, k, &[',', '=', ' ']);
        line.push(b'=');
        line.extend_from_slice(v.as_bytes());
    }
    let ns = record
        .ts
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    write!(line, " {ns}")?;
    Ok(())
}

/// `rtt_ms` + `p50` → `rtt_p50_ms`, keeping the unit suffix last; else `key_sub`.
pub(crate) fn nested_name(key: &str, sub: &str) -> String {
    match key.strip_suffix("_ms") {
        Some(stem) => format!("{stem}_{sub}_ms"),
        None => format!("{key}_{sub}"),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON scalar as a line-protocol field value: integers get `i`, strings are quoted.
fn field_value(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_f64() => n.as_f64().map(crate::record::figure),
        Value::Number(n) => Some(format!("{n}i")),
        Value::Bool(b) => Some(b.to_string()),
        Value::String(s) => {
            let mut out = String::with_capacity(s.len() + 2);
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c)
                    }
                    '\n' | '\r' => out.push(' '),
                    c => out.push(c),
                }
            }
            out.push('"');
            Some(out)
        }
        _ => None,
    }
}

fn escape_into(line: &mut Vec<u8>, s: &str, special: &[char]) {
    for c in s.chars() {
        if c == '\n' || c == '\r' {
            line.push(b' ');
            continue;
        }
        if special.contains(&c) || c == '\\' {
            line.push(b'\\');
        }
        let mut buf = [0; 4];
        line.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    fn record(body: Body, tags: Option<Tags>) -> Record {
        Record {
            tool: "lping",
            ts: SystemTime::UNIX_EPOCH + Duration::new(1_795_341_600, 5),
            tags: tags.map(Arc::new),
            body,
        }
    }

    fn reply() -> Body {
        Body::Reply(Reply {
            target: "db 1".into(),
            addr: "10.0.0.2".parse().unwrap(),
            src: None,
            seq: 7,
            rtt_ms: 0.25,
            ttl: Some(64),
            size: Some(64),
            tos: None,
            flow: None,
            dup: None,
            result: None,
            syn_retransmits: None,
            one_way: None,
        })
    }

    #[test]
    fn json_header_comes_first_and_tags_last() {
        let mut tags = Tags::new();
        tags.insert("dc".into(), "fra1".into());
        let mut line = Vec::new();
        json_line(&record(reply(), Some(tags)), &mut line).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"type":"reply","tool":"lping","ts":"2026-11-22T10:00:00.000000005Z","target":"db 1","addr":"10.0.0.2","seq":7,"rtt_ms":0.25,"ttl":64,"size":64,"tags":{"dc":"fra1"}}"#
        );
    }

    #[test]
    fn influx_strings_are_tags_numbers_fields() {
        let mut tags = Tags::new();
        tags.insert("dc".into(), "fra,1".into());
        let mut line = Vec::new();
        influx_line(&record(reply(), Some(tags)), &mut line).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r"reply,addr=10.0.0.2,dc=fra\,1,target=db\ 1,tool=lping rtt_ms=0.25,seq=7i,size=64i,ttl=64i 1795341600000000005"
        );
    }

    /// A path keeps its hops (by TTL, silent ones counted) and its ports are tags (issue 17).
    #[test]
    fn influx_paths_carry_their_hops_and_ports_as_tags() {
        use crate::record::{Hop, Path};
        let hop = |ttl, addr: Option<&str>, rtt| Hop {
            ttl,
            addr: addr.map(|a| a.parse().unwrap()),
            addrs: vec![],
            rtt_ms: rtt,
        };
        let mut two = hop(3, Some("10.0.9.2"), Some(0.3));
        two.addrs = vec!["10.0.9.2".parse().unwrap(), "10.0.8.2".parse().unwrap()];
        let body = Body::Path(Path {
            src: "10.0.0.2".parse().unwrap(),
            dst: "10.0.9.2".parse().unwrap(),
            proto: "udp".into(),
            sport: 40000,
            dport: 8081,
            hops: vec![hop(1, Some("10.0.0.1"), Some(0.1)), hop(2, None, None), two],
            reached: true,
            sent: Some(100),
            lost: Some(2),
            lost_fwd: None,
            lost_rev: None,
        });
        let mut line = Vec::new();
        influx_line(&record(body, None), &mut line).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "path,dport=8081,dst=10.0.9.2,hop1_addr=10.0.0.1,hop3_addr=10.0.9.2,proto=udp,\
             sport=40000,src=10.0.0.2,tool=lping \
             hop_count=3i,hop1_rtt_ms=0.1,hop3_addrs=\"10.0.9.2,10.0.8.2\",hop3_rtt_ms=0.3,\
             lost=2i,reached=true,sent=100i 1795341600000000005"
        );
    }

    #[test]
    fn influx_flattens_nested_stats_and_quotes_text() {
        let body = Body::Unreachable(Unreachable {
            target: "t".into(),
            addr: "10.0.0.2".parse().unwrap(),
            src: None,
            seq: 1,
            from: None,
            icmp_type: Some(3),
            icmp_code: Some(1),
            reason: "host \"unreachable\"".into(),
            flow: Some(Flow {
                sport: 40000,
                dport: 8081,
                dscp: None,
            }),
        });
        let mut line = Vec::new();
        influx_line(&record(body, None), &mut line).unwrap();
        let s = String::from_utf8(line).unwrap();
        assert!(s.starts_with("unreachable,addr=10.0.0.2,flow_dport=8081,flow_sport=40000,target=t,tool=lping icmp_code=1i,icmp_type=3i,reason=\"host \\\"unreachable\\\"\",seq=1i "), "{s}");
        assert_eq!(nested_name("rtt_ms", "p99"), "rtt_p99_ms");
        assert_eq!(nested_name("counts", "x"), "counts_x");
    }

    #[test]
    fn influx_joins_lists_of_strings_into_one_field() {
        let body = Body::WatchAddr(crate::record::WatchAddr {
            event: "change".into(),
            ifname: "eth0".into(),
            ifindex: 2,
            family: "inet6".into(),
            addr: "fd00::1".parse().unwrap(),
            prefixlen: 64,
            scope: "global".into(),
            label: None,
            flags: vec!["dadfailed".into(), "tentative".into()],
            old_flags: Some(vec!["tentative".into()]),
            resync: None,
        });
        let mut line = Vec::new();
        influx_line(&record(body, None), &mut line).unwrap();
        let s = String::from_utf8(line).unwrap();
        assert!(
            s.contains(" flags=\"dadfailed,tentative\",")
                && s.contains(",old_flags=\"tentative\","),
            "{s}"
        );
    }

    #[test]
    fn writer_reports_broken_pipe() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = RecordWriter::new(Closed, Format::Json);
        let err = w.write(&record(reply(), None)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
