//! lreflect's figures in the exposition: per listening socket, the counters of its `stats`
//! windows added up (replaced by the `"total"` record at exit), drops and malformed datagrams
//! as one counter each with a `reason` label, and the sessions or flows alive as gauges.
//! Labels: `tool`, `listen`, `mode` and the tags.

use super::{family, help_of, in_order, label_text, sanitize, with_tags, Labels, Tally};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Objects of counts by reason: (member, family stem).
const BY_REASON: &[(&str, &str)] = &[("dropped", "dropped"), ("malformed_by", "malformed")];

/// Help of the counters lreflect writes, by family stem, in this order.
const COUNTER_HELP: &[(&str, &str)] = &[
    ("received", "Datagrams received."),
    ("reflected", "Datagrams answered."),
    (
        "stamped",
        "Answers that carry the reflector's receive and send times.",
    ),
    (
        "dropped",
        "Datagrams not answered, by reason (acl, loop, rate_limit, global_cap, malformed, send_error, no_session).",
    ),
    (
        "malformed",
        "Malformed datagrams, by reason (empty, short, too_long, other).",
    ),
    ("sessions_started", "TWAMP sessions begun."),
    ("sessions_expired", "TWAMP sessions ended idle (--session-timeout)."),
    (
        "sessions_evicted",
        "TWAMP sessions ended to make room for a new one (the table was full).",
    ),
    ("flows_started", "ludp flows begun on an echo socket."),
    (
        "flows_expired",
        "ludp flows ended idle (they never are: always 0).",
    ),
    (
        "flows_evicted",
        "ludp flows ended to make room for a new one (the table was full).",
    ),
];

/// Help of the gauges, by name.
const GAUGE_HELP: &[(&str, &str)] = &[
    (
        "sessions_active",
        "TWAMP sessions alive (a packet within --session-timeout) at the latest stats record.",
    ),
    (
        "flows_active",
        "ludp flows counted on the echo socket at the latest stats record.",
    ),
];

/// A counter: its family stem and, for counts by reason, the reason.
type Key = (String, Option<String>);

#[derive(Debug, Clone, Default)]
struct Socket {
    tally: Tally<Key>,
    gauges: BTreeMap<String, u64>,
}

/// lreflect's sockets, by their labels.
#[derive(Debug, Clone, Default)]
pub(super) struct Sockets {
    by_labels: BTreeMap<Labels, Socket>,
}

impl Sockets {
    /// Takes a `stats` record.
    pub(super) fn observe(
        &mut self,
        tool: &str,
        body: &Map<String, Value>,
        tags: Option<&BTreeMap<String, String>>,
    ) {
        let mut labels = vec![("tool".to_string(), tool.to_string())];
        for key in ["listen", "mode"] {
            let Some(v) = body.get(key).and_then(Value::as_str) else {
                return;
            };
            labels.push((key.to_string(), v.to_string()));
        }
        let socket = self.by_labels.entry(with_tags(labels, tags)).or_default();
        let mut counts: Vec<(Key, u64)> = Vec::new();
        for (member, value) in body {
            match value {
                Value::Object(inner) => {
                    let integers = inner
                        .iter()
                        .filter_map(|(k, v)| v.as_u64().map(|n| (k.as_str(), n)));
                    match BY_REASON.iter().find(|(m, _)| m == member) {
                        Some((_, stem)) => counts.extend(
                            integers.map(|(k, n)| ((stem.to_string(), Some(k.to_string())), n)),
                        ),
                        None => {
                            for (k, n) in integers {
                                let name = format!("{member}_{k}");
                                if k == "active" {
                                    socket.gauges.insert(name, n);
                                } else {
                                    counts.push(((name, None), n));
                                }
                            }
                        }
                    }
                }
                other => counts.extend(other.as_u64().map(|n| ((member.clone(), None), n))),
            }
        }
        socket.tally.add(counts, super::is_total(body));
    }

    pub(super) fn render(&self, out: &mut String) {
        let stems: BTreeSet<String> = self
            .by_labels
            .values()
            .flat_map(|s| s.tally.counts().keys().map(|(stem, _)| stem.clone()))
            .collect();
        for stem in in_order(COUNTER_HELP, &stems) {
            let mut rows: Vec<(String, String)> = Vec::new();
            for (labels, socket) in &self.by_labels {
                for ((s, reason), n) in socket.tally.counts() {
                    if s != stem {
                        continue;
                    }
                    let mut labels = labels.clone();
                    labels.extend(reason.iter().map(|r| ("reason".to_string(), r.clone())));
                    rows.push((label_text(&labels, None), n.to_string()));
                }
            }
            let name = format!("lopa_reflector_{}_total", sanitize(stem));
            let help = help_of(COUNTER_HELP, stem, |m| {
                format!("The stats records' {m} member, added up.")
            });
            family(out, &name, "counter", &help, &rows);
        }
        let gauges: BTreeSet<String> = self
            .by_labels
            .values()
            .flat_map(|s| s.gauges.keys().cloned())
            .collect();
        for gauge in in_order(GAUGE_HELP, &gauges) {
            let rows: Vec<(String, String)> = self
                .by_labels
                .iter()
                .filter_map(|(l, s)| Some((label_text(l, None), s.gauges.get(gauge)?.to_string())))
                .collect();
            let name = format!("lopa_reflector_{}", sanitize(gauge));
            let help = help_of(GAUGE_HELP, gauge, |m| {
                format!("The stats records' {m} member, added up.")
            });
            family(out, &name, "gauge", &help, &rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Exposition;
    use serde_json::{json, Map, Value};

    fn stats(window: &str, received: u64, rate_limit: u64, active: u64) -> Map<String, Value> {
        json!({
            "listen": "[::]:862", "mode": "twamp", "window": window, "received": received,
            "reflected": received - rate_limit, "stamped": received - rate_limit,
            "dropped": {"acl": 0, "loop": 1, "rate_limit": rate_limit, "global_cap": 0,
                        "malformed": 0, "send_error": 0},
            "malformed_by": {"empty": 0, "short": 0, "too_long": 0, "other": 0},
            "sessions": {"active": active, "started": 2, "expired": 1, "evicted": 0}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn windows_add_up_drops_by_reason_and_the_total_replaces_them() {
        let mut e = Exposition::new(Vec::new());
        e.observe("stats", "lreflect", &stats("10s", 10, 3, 2), None);
        e.observe("stats", "lreflect", &stats("10s", 5, 0, 1), None);
        let l = r#"tool="lreflect",listen="[::]:862",mode="twamp""#;
        let text = e.render();
        for want in [
            format!("lopa_reflector_received_total{{{l}}} 15"),
            format!("lopa_reflector_reflected_total{{{l}}} 12"),
            format!("lopa_reflector_dropped_total{{{l},reason=\"rate_limit\"}} 3"),
            format!("lopa_reflector_dropped_total{{{l},reason=\"loop\"}} 2"),
            format!("lopa_reflector_malformed_total{{{l},reason=\"too_long\"}} 0"),
            format!("lopa_reflector_sessions_started_total{{{l}}} 4"),
            format!("lopa_reflector_sessions_expired_total{{{l}}} 2"),
            format!("lopa_reflector_sessions_active{{{l}}} 1"),
            "# TYPE lopa_reflector_sessions_active gauge".to_string(),
            "# TYPE lopa_reflector_dropped_total counter".to_string(),
        ] {
            assert!(text.lines().any(|x| x == want), "{want} missing:\n{text}");
        }
        assert!(!text.contains("sessions_active_total"), "{text}");
        assert!(!text.contains("lopa_reflector_flows"), "{text}");
        e.observe("stats", "lreflect", &stats("total", 16, 3, 0), None);
        let text = e.render();
        assert!(
            text.contains(&format!("lopa_reflector_received_total{{{l}}} 16\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("lopa_reflector_sessions_started_total{{{l}}} 2\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!("lopa_reflector_sessions_active{{{l}}} 0\n")),
            "{text}"
        );
    }
}
