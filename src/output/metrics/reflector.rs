//! lreflect's figures in the exposition: per listening socket, the counters of its `stats`
//! windows added up (replaced by the `"total"` record at exit), drops and malformed datagrams
//! as one counter each with a `reason` label, and the sessions or flows alive as gauges.
//! Labels: `tool`, `listen`, `mode` and the tags.

use super::{family, help_of, in_order, label_text, sanitize, with_tags, Labels, Tally};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Objects of counts by reason: (member path, family stem). Other objects are walked into,
/// their counts named by their path (`control.sessions.accepted`: `control_sessions_accepted`).
const BY_REASON: &[(&str, &str)] = &[
    ("dropped", "dropped"),
    ("malformed_by", "malformed"),
    ("control_closed", "control_closed"),
    ("control_sessions_refused", "control_sessions_refused"),
];

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
        "Malformed datagrams, by reason (empty, short, too_long, other, hmac).",
    ),
    (
        "control_connections",
        "TWAMP-Control connections accepted (--twamp-control listeners).",
    ),
    (
        "control_closed",
        "TWAMP-Control connections closed or refused, by reason (acl, limit, rate_limit, mode, key, garbage, hmac, idle).",
    ),
    ("control_sessions_accepted", "TWAMP test sessions granted."),
    (
        "control_sessions_refused",
        "TWAMP test sessions refused, by reason (not_supported, permanent_limit, temporary_limit).",
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
    (
        "control_active",
        "TWAMP-Control connections open at the latest stats record.",
    ),
    (
        "control_sessions_active",
        "TWAMP test sessions granted and not ended at the latest stats record.",
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
        walk("", body, &mut counts, &mut socket.gauges);
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

/// The counts of `obj` (member path `path`): integers are counters, but an `active` one
/// inside an object is a gauge; objects of [`BY_REASON`] are one counter by reason, others
/// are walked into.
fn walk(
    path: &str,
    obj: &Map<String, Value>,
    counts: &mut Vec<(Key, u64)>,
    gauges: &mut BTreeMap<String, u64>,
) {
    for (k, v) in obj {
        let name = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}_{k}")
        };
        match v {
            Value::Object(inner) => {
                match BY_REASON.iter().find(|(m, _)| *m == name) {
                    Some((_, stem)) => counts.extend(inner.iter().filter_map(|(r, n)| {
                        Some(((stem.to_string(), Some(r.clone())), n.as_u64()?))
                    })),
                    None => walk(&name, inner, counts, gauges),
                }
            }
            other => {
                let Some(n) = other.as_u64() else { continue };
                if k == "active" && !path.is_empty() {
                    gauges.insert(name, n);
                } else {
                    counts.push(((name, None), n));
                }
            }
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

    #[test]
    fn control_counters_and_no_session_drops_are_exposed() {
        let rec = |window: &str, accepted: u64, active: u64| {
            json!({
                "listen": "0.0.0.0:862", "mode": "twamp-control", "window": window,
                "received": 0, "reflected": 0, "stamped": 0,
                "dropped": {"acl": 0, "loop": 0, "rate_limit": 0, "global_cap": 0,
                            "malformed": 0, "send_error": 0, "no_session": 4},
                "malformed_by": {"empty": 0, "short": 0, "too_long": 0, "other": 0, "hmac": 2},
                "control": {"connections": 3, "active": active,
                            "closed": {"acl": 1, "limit": 0, "rate_limit": 0, "mode": 0,
                                       "key": 2, "garbage": 0, "hmac": 0, "idle": 0},
                            "sessions": {"accepted": accepted, "active": active,
                                         "refused": {"not_supported": 1, "permanent_limit": 0,
                                                     "temporary_limit": 0}}}
            })
            .as_object()
            .unwrap()
            .clone()
        };
        let mut e = Exposition::new(Vec::new());
        e.observe("stats", "lreflect", &rec("10s", 5, 2), None);
        e.observe("stats", "lreflect", &rec("10s", 1, 1), None);
        let l = r#"tool="lreflect",listen="0.0.0.0:862",mode="twamp-control""#;
        let text = e.render();
        for want in [
            format!("lopa_reflector_dropped_total{{{l},reason=\"no_session\"}} 8"),
            format!("lopa_reflector_malformed_total{{{l},reason=\"hmac\"}} 4"),
            format!("lopa_reflector_control_connections_total{{{l}}} 6"),
            format!("lopa_reflector_control_closed_total{{{l},reason=\"key\"}} 4"),
            format!("lopa_reflector_control_closed_total{{{l},reason=\"acl\"}} 2"),
            format!("lopa_reflector_control_sessions_accepted_total{{{l}}} 6"),
            format!(
                "lopa_reflector_control_sessions_refused_total{{{l},reason=\"not_supported\"}} 2"
            ),
            format!("lopa_reflector_control_active{{{l}}} 1"),
            format!("lopa_reflector_control_sessions_active{{{l}}} 1"),
            "# TYPE lopa_reflector_control_active gauge".to_string(),
            "# TYPE lopa_reflector_control_closed_total counter".to_string(),
        ] {
            assert!(text.lines().any(|x| x == want), "{want} missing:\n{text}");
        }
    }
}
