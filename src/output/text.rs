//! `--format text`: lines a ping, fping or traceroute user reads without jq.
//!
//! Probe replies, timeouts and errors read like ping's lines, summaries like ping's closing
//! statistics, a traced path like traceroute's listing, an lcorrelate link as a row of a
//! ranked table. Every other record (and every member a layout does not place) is written as
//! `key=value` pairs, so nothing a record carries is hidden. JSON lines stay the default: this
//! is for eyes, not for parsers.
//!
//! The layouts work on the record's JSON object, not its Rust type, so members added later
//! show up (as `key=value`) without a change here.

use super::nested_name;
use crate::record::{rfc3339, Record};
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::io;

/// Appends the text form of `record` to `out`: one line, or several for a summary or a path
/// (no trailing newline; the writer adds it).
pub fn text_lines(record: &Record, out: &mut Vec<u8>) -> io::Result<()> {
    let mut m: Map<String, Value> = serde_json::from_slice(&record.body.to_json_object()?)?;
    let kind = record.body.kind();
    let mut s = String::with_capacity(160);
    match kind {
        "reply" if m.contains_key("rtt_ms") => reply(&mut s, &mut m),
        "timeout" if m.contains_key("seq") => timeout(&mut s, &mut m),
        "unreachable" if m.contains_key("seq") => unreachable(&mut s, &mut m),
        "summary" if m.contains_key("sent") => summary(&mut s, &mut m),
        "alert" if m.contains_key("target") => alert(&mut s, &mut m),
        "path" => path(&mut s, &mut m),
        "link" if m.contains_key("rank") => link(&mut s, &mut m),
        _ => {
            let _ = write!(s, "{} {kind}", rfc3339(record.ts));
        }
    }
    rest(&mut s, &m);
    if let Some(tags) = record.tags.as_deref().filter(|t| !t.is_empty()) {
        let joined: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(s, " [{}]", joined.join(" "));
    }
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Removes and returns a member.
fn take(m: &mut Map<String, Value>, key: &str) -> Option<Value> {
    m.remove(key)
}

fn take_str(m: &mut Map<String, Value>, key: &str) -> Option<String> {
    take(m, key).map(|v| match v {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

fn take_f64(m: &mut Map<String, Value>, key: &str) -> Option<f64> {
    take(m, key).and_then(|v| v.as_f64())
}

fn take_u64(m: &mut Map<String, Value>, key: &str) -> Option<u64> {
    take(m, key).and_then(|v| v.as_u64())
}

/// Milliseconds as ping prints them: three decimals.
fn ms(v: f64) -> String {
    format!("{v:.3}")
}

/// `target (addr)`, or just the address when the target is the address.
fn who(m: &mut Map<String, Value>) -> String {
    let target = take_str(m, "target");
    let addr = take_str(m, "addr");
    // The local address stays out, as ping and fping leave it (JSON records carry it).
    take(m, "src");
    match (target, addr) {
        (Some(t), Some(a)) if t != a => format!("{t} ({a})"),
        (Some(t), _) => t,
        (None, Some(a)) => a,
        (None, None) => String::new(),
    }
}

/// ` flow 40000>8081 dscp 46`, when the record has a flow.
fn flow(s: &mut String, m: &mut Map<String, Value>) {
    let Some(Value::Object(f)) = take(m, "flow") else {
        return;
    };
    let port = |k: &str| f.get(k).map(|v| v.to_string()).unwrap_or_default();
    let _ = write!(s, " flow={}>{}", port("sport"), port("dport"));
    match (f.get("dscp"), f.get("dscp_name")) {
        (Some(n), Some(name)) => {
            let _ = write!(s, " dscp={}({n})", scalar(name));
        }
        (Some(n), None) => {
            let _ = write!(s, " dscp={n}");
        }
        _ => {}
    }
    for (k, v) in &f {
        if !["sport", "dport", "dscp", "dscp_name"].contains(&k.as_str()) {
            let _ = write!(s, " {k}={}", scalar(v));
        }
    }
}

/// `64 bytes from example.com (10.0.0.1): seq=1 ttl=64 time=0.011 ms`.
fn reply(s: &mut String, m: &mut Map<String, Value>) {
    let size = take_u64(m, "size");
    let who = who(m);
    let seq = take_u64(m, "seq").unwrap_or_default();
    match size {
        Some(n) => {
            let _ = write!(s, "{n} bytes from {who}: seq={seq}");
        }
        None => {
            let _ = write!(s, "reply from {who}: seq={seq}");
        }
    }
    flow(s, m);
    if let Some(result) = take_str(m, "result") {
        let _ = write!(s, " {result}");
    }
    if let Some(ttl) = take_u64(m, "ttl") {
        let _ = write!(s, " ttl={ttl}");
    }
    // ping shows the TOS only when asked; here only when it is not the default.
    if let Some(tos) = take_u64(m, "tos").filter(|t| *t != 0) {
        let _ = write!(s, " tos={tos}");
    }
    let rtt = take_f64(m, "rtt_ms").unwrap_or_default();
    let _ = write!(s, " time={} ms", ms(rtt));
    for key in ["fwd_ms", "rev_ms", "reflector_ms"] {
        if let Some(v) = take_f64(m, key) {
            let _ = write!(s, " {}={} ms", key.trim_end_matches("_ms"), ms(v));
        }
    }
    if take(m, "dup") == Some(Value::Bool(true)) {
        s.push_str(" (DUP!)");
    }
}

/// `no answer from example.com (10.0.0.1): seq=3`.
fn timeout(s: &mut String, m: &mut Map<String, Value>) {
    let who = who(m);
    let seq = take_u64(m, "seq").unwrap_or_default();
    let _ = write!(s, "no answer from {who}: seq={seq}");
    flow(s, m);
}

/// `From 10.0.1.1: seq=2 host unreachable (to example.com (10.0.0.1))`, as ping's.
fn unreachable(s: &mut String, m: &mut Map<String, Value>) {
    let who = who(m);
    let seq = take_u64(m, "seq").unwrap_or_default();
    let reason = take_str(m, "reason").unwrap_or_default();
    match take_str(m, "from") {
        Some(from) => {
            let _ = write!(s, "From {from}: seq={seq} {reason} (probing {who})");
        }
        None => {
            let _ = write!(s, "{who}: seq={seq} {reason}");
        }
    }
    flow(s, m);
}

/// ping's closing statistics, plus what lopa knows beyond them.
fn summary(s: &mut String, m: &mut Map<String, Value>) {
    let who = who(m);
    let _ = write!(s, "--- {who} statistics");
    flow(s, m);
    match take_str(m, "window").as_deref() {
        Some("total") | None => {}
        Some(w) => {
            let _ = write!(s, ", window {w}");
        }
    }
    s.push_str(" ---\n");
    let sent = take_u64(m, "sent").unwrap_or_default();
    let received = take_u64(m, "received").unwrap_or_default();
    let _ = write!(s, "{sent} probes sent, {received} received");
    if let Some(loss) = take_f64(m, "loss_pct") {
        let _ = write!(s, ", {}% loss", trim(loss, 3));
    }
    for key in ["dup", "reordered", "late", "unreachable"] {
        match take_u64(m, key) {
            Some(0) | None => {}
            Some(n) => {
                let _ = write!(s, ", {n} {key}");
            }
        }
    }
    if let Some(Value::Object(rtt)) = take(m, "rtt_ms") {
        let f = |k: &str| {
            rtt.get(k)
                .and_then(Value::as_f64)
                .map(ms)
                .unwrap_or_default()
        };
        let _ = write!(
            s,
            "\nrtt min/avg/max/mdev = {}/{}/{}/{} ms, p50/p90/p99 = {}/{}/{} ms",
            f("min"),
            f("avg"),
            f("max"),
            f("mdev"),
            f("p50"),
            f("p90"),
            f("p99")
        );
        if let Some(j) = take_f64(m, "jitter_ms") {
            let _ = write!(s, ", jitter {} ms", ms(j));
        }
    }
    if !m.is_empty() {
        s.push('\n');
        s.push_str(&pairs(m).join(" "));
        m.clear();
    }
}

/// `ALERT firing: example.com (10.0.0.1) loss_pct 20 > 5 (window 1m)`.
fn alert(s: &mut String, m: &mut Map<String, Value>) {
    let state = take_str(m, "state").unwrap_or_default();
    let who = who(m);
    let metric = take_str(m, "metric").unwrap_or_default();
    let value = take_f64(m, "value").unwrap_or_default();
    let threshold = take_f64(m, "threshold").unwrap_or_default();
    let window = take_str(m, "window").unwrap_or_default();
    let op = if state == "firing" { ">" } else { "<=" };
    let _ = write!(
        s,
        "ALERT {state}: {who} {metric} {} {op} {} (window {window})",
        trim(value, 3),
        trim(threshold, 3)
    );
    flow(s, m);
}

/// traceroute's listing: a header, then one line per TTL.
fn path(s: &mut String, m: &mut Map<String, Value>) {
    let src = take_str(m, "src").unwrap_or_default();
    let dst = take_str(m, "dst").unwrap_or_default();
    let proto = take_str(m, "proto").unwrap_or_default();
    let sport = take_u64(m, "sport").unwrap_or_default();
    let dport = take_u64(m, "dport").unwrap_or_default();
    let reached = take(m, "reached") == Some(Value::Bool(true));
    let _ = write!(
        s,
        "path {src} -> {dst} {proto} {sport}>{dport}: {}",
        if reached { "reached" } else { "not reached" }
    );
    for key in ["sent", "lost", "lost_fwd", "lost_rev"] {
        if let Some(n) = take_u64(m, key) {
            let _ = write!(s, ", {key} {n}");
        }
    }
    let hops = match take(m, "hops") {
        Some(Value::Array(h)) => h,
        _ => Vec::new(),
    };
    for hop in hops {
        let ttl = hop.get("ttl").and_then(Value::as_u64).unwrap_or_default();
        let _ = write!(s, "\n{ttl:>3}  ");
        match hop.get("addr").and_then(Value::as_str) {
            Some(addr) => {
                s.push_str(addr);
                if let Some(rtt) = hop.get("rtt_ms").and_then(Value::as_f64) {
                    let _ = write!(s, "  {} ms", ms(rtt));
                }
                if let Some(Value::Array(all)) = hop.get("addrs") {
                    let others: Vec<&str> = all.iter().filter_map(Value::as_str).collect();
                    let _ = write!(s, "  (answered by {})", others.join(", "));
                }
            }
            None => s.push('*'),
        }
    }
}

/// A row of lcorrelate's ranked table:
/// `  1 faulty   8.12%  10.2.1.1 -> 10.21.0.2  score 51.2  routes 12 sent 2400 lost 195`.
fn link(s: &mut String, m: &mut Map<String, Value>) {
    let rank = take_u64(m, "rank").unwrap_or_default();
    let verdict = take_str(m, "verdict").unwrap_or_default();
    let loss = take_f64(m, "loss_est").unwrap_or_default() * 100.0;
    let from = take_str(m, "from").unwrap_or_default();
    let to = take_str(m, "to").unwrap_or_default();
    let _ = write!(
        s,
        "{rank:>3} {verdict:<8} {:>6}%  {from} -> {to}",
        trim(loss, 2)
    );
    for key in ["score", "suspicion"] {
        if let Some(v) = take_f64(m, key) {
            let _ = write!(s, "  {key} {}", trim(v, 3));
        }
    }
    for key in ["routes", "sent", "lost"] {
        if let Some(n) = take_u64(m, key) {
            let _ = write!(s, " {key} {n}");
        }
    }
    for key in ["covers", "group"] {
        let Some(Value::Array(ends)) = take(m, key) else {
            continue;
        };
        let members: Vec<String> = ends
            .iter()
            .map(|e| {
                let end = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
                format!("{} -> {}", end("from"), end("to"))
            })
            .collect();
        let _ = write!(s, "  {key}: {}", members.join(", "));
    }
}

/// What a layout left, as ` key=value` pairs.
fn rest(s: &mut String, m: &Map<String, Value>) {
    for pair in pairs(m) {
        s.push(' ');
        s.push_str(&pair);
    }
}

/// `key=value` for every member, nested objects flattened as in InfluxDB lines
/// (`rtt_p50_ms=0.011`), lists joined by commas.
fn pairs(m: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in m {
        match v {
            Value::Object(inner) => {
                for (ik, iv) in inner {
                    out.push(format!("{}={}", nested_name(k, ik), scalar(iv)));
                }
            }
            other => out.push(format!("{k}={}", scalar(other))),
        }
    }
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) if s.contains(' ') || s.is_empty() => format!("{s:?}"),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// A figure with at most `decimals` places and no trailing zeros: `20`, `16.667`.
fn trim(v: f64, decimals: usize) -> String {
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Body, Flow, Hop, LinkEnds, LinkScore, Path, Reply, RttStats, Summary};
    use crate::record::{Timeout, Unreachable, Verdict};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    fn text(tool: &'static str, body: Body) -> String {
        let record = Record {
            tool,
            ts: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_341_600),
            tags: None,
            body,
        };
        let mut out = Vec::new();
        text_lines(&record, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn flow() -> Option<Flow> {
        Some(Flow {
            sport: 40000,
            dport: 8081,
            dscp: Some(46),
        })
    }

    #[test]
    fn replies_read_like_ping() {
        let reply = Reply {
            target: "example.com".into(),
            addr: "10.0.0.1".parse().unwrap(),
            src: None,
            seq: 1,
            rtt_ms: 0.010907,
            ttl: Some(64),
            size: Some(64),
            tos: Some(0),
            flow: None,
            dup: None,
            result: None,
            syn_retransmits: None,
            one_way: None,
        };
        assert_eq!(
            text("lping", Body::Reply(reply.clone())),
            "64 bytes from example.com (10.0.0.1): seq=1 ttl=64 time=0.011 ms"
        );
        let dup = Reply {
            target: "10.0.0.1".into(),
            flow: flow(),
            dup: Some(true),
            tos: Some(184),
            ..reply
        };
        assert_eq!(
            text("ludp", Body::Reply(dup)),
            "64 bytes from 10.0.0.1: seq=1 flow=40000>8081 dscp=EF(46) ttl=64 tos=184 time=0.011 ms (DUP!)"
        );
    }

    #[test]
    fn timeouts_and_errors_name_the_probe() {
        let t = Timeout {
            target: "h".into(),
            addr: "10.0.0.1".parse().unwrap(),
            src: None,
            seq: 3,
            flow: flow(),
        };
        assert_eq!(
            text("ludp", Body::Timeout(t)),
            "no answer from h (10.0.0.1): seq=3 flow=40000>8081 dscp=EF(46)"
        );
        let u = Unreachable {
            target: "10.0.0.1".into(),
            addr: "10.0.0.1".parse().unwrap(),
            src: None,
            seq: 2,
            from: Some("10.0.1.1".parse().unwrap()),
            icmp_type: Some(3),
            icmp_code: Some(1),
            reason: "host unreachable".into(),
            flow: None,
        };
        assert_eq!(
            text("lping", Body::Unreachable(u)),
            "From 10.0.1.1: seq=2 host unreachable (probing 10.0.0.1) icmp_code=1 icmp_type=3"
        );
    }

    #[test]
    fn summaries_read_like_pings_statistics_and_keep_every_member() {
        let s = Summary {
            target: "10.0.0.1".into(),
            addr: "10.0.0.1".parse().unwrap(),
            src: None,
            flow: None,
            window: "total".into(),
            sent: 3,
            received: 2,
            loss_pct: Some(100.0 / 3.0),
            dup: 0,
            reordered: 1,
            late: 0,
            unreachable: 0,
            rtt_ms: Some(RttStats {
                min: 0.01,
                avg: 0.02,
                max: 0.03,
                mdev: 0.01,
                p50: 0.01,
                p90: 0.03,
                p99: 0.03,
            }),
            jitter_ms: Some(0.005),
            lost_fwd: Some(1),
            lost_rev: Some(0),
            refused: None,
            fwd_ms: None,
            rev_ms: None,
            hops_fwd: None,
            hops_rev: None,
            dropped_local: None,
        };
        assert_eq!(
            text("ltwamp", Body::Summary(s)),
            "--- 10.0.0.1 statistics ---\n\
             3 probes sent, 2 received, 33.333% loss, 1 reordered\n\
             rtt min/avg/max/mdev = 0.010/0.020/0.030/0.010 ms, p50/p90/p99 = 0.010/0.030/0.030 ms, \
             jitter 0.005 ms\n\
             lost_fwd=1 lost_rev=0"
        );
    }

    #[test]
    fn paths_read_like_traceroute() {
        let p = Path {
            src: "10.0.0.2".parse().unwrap(),
            dst: "10.0.9.2".parse().unwrap(),
            proto: "udp".into(),
            sport: 40000,
            dport: 8081,
            hops: vec![
                Hop {
                    ttl: 1,
                    addr: Some("10.0.0.1".parse().unwrap()),
                    addrs: vec![],
                    rtt_ms: Some(0.1),
                },
                Hop {
                    ttl: 2,
                    addr: None,
                    addrs: vec![],
                    rtt_ms: None,
                },
                Hop {
                    ttl: 3,
                    addr: Some("10.0.9.2".parse().unwrap()),
                    addrs: vec![],
                    rtt_ms: Some(0.25),
                },
            ],
            reached: true,
            sent: Some(100),
            lost: Some(2),
            lost_fwd: None,
            lost_rev: None,
        };
        assert_eq!(
            text("ludp", Body::Path(p)),
            "path 10.0.0.2 -> 10.0.9.2 udp 40000>8081: reached, sent 100, lost 2\n  \
             1  10.0.0.1  0.100 ms\n  2  *\n  3  10.0.9.2  0.250 ms"
        );
    }

    #[test]
    fn lcorrelate_links_are_table_rows_with_their_group() {
        let l = LinkScore {
            from: "10.2.1.1".into(),
            to: "10.21.0.2".into(),
            rank: 1,
            score: 51.25,
            loss_est: 0.0812,
            suspicion: 0.07,
            routes: 12,
            sent: 2400,
            lost: 195,
            verdict: Verdict::Faulty,
            covers: None,
            group: Some(vec![
                LinkEnds {
                    from: "10.2.1.1".into(),
                    to: "10.21.0.2".into(),
                },
                LinkEnds {
                    from: "10.21.0.2".into(),
                    to: "10.2.1.1".into(),
                },
            ]),
        };
        assert_eq!(
            text("lcorrelate", Body::Link(l)),
            "  1 faulty     8.12%  10.2.1.1 -> 10.21.0.2  score 51.25  suspicion 0.07 routes 12 \
             sent 2400 lost 195  group: 10.2.1.1 -> 10.21.0.2, 10.21.0.2 -> 10.2.1.1"
        );
    }

    #[test]
    fn other_records_are_key_value_pairs_with_tags() {
        let record = Record {
            tool: "lwatch",
            ts: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_341_600),
            tags: Some(Arc::new([("dc".to_string(), "fra1".to_string())].into())),
            body: Body::WatchResync(crate::record::WatchResync {
                reason: "receive buffer overflow".into(),
                changes: 3,
                rcvbuf: 8388608,
            }),
        };
        let mut out = Vec::new();
        text_lines(&record, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-22T10:00:00.000000000Z resync changes=3 rcvbuf=8388608 \
             reason=\"receive buffer overflow\" [dc=fra1]"
        );
    }
}
