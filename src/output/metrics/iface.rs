//! lpassive's figures in the exposition: per interface, the counters its samples' deltas add
//! up to (replaced by its `iface_summary` totals at the end) and its latest link state as
//! gauges. Labels: `tool`, `ifname` and the tags (no `ifindex`: Prometheus users group by
//! name, as node_exporter's `device`).

use super::{family, help_of, in_order, label_text, sanitize, with_tags, Labels, Tally};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Integer members of a sample that are not counts.
const NOT_COUNTS: &[&str] = &["ifindex", "mtu", "speed_mbps"];

/// Help of the counters lpassive writes, in this order; a member added later gets a generic one.
const COUNTER_HELP: &[(&str, &str)] = &[
    (
        "rx_bytes",
        "Bytes received, link-layer header included (as the kernel counts them).",
    ),
    ("tx_bytes", "Bytes sent, link-layer header included."),
    ("rx_packets", "Packets received."),
    ("tx_packets", "Packets sent."),
    ("rx_errors", "Receive errors."),
    ("tx_errors", "Transmit errors."),
    (
        "rx_dropped",
        "Received packets dropped by the kernel or the driver.",
    ),
    ("tx_dropped", "Packets dropped on the way out."),
    ("rx_missed", "Received packets the NIC had no room for."),
    ("multicast", "Multicast packets received."),
    ("collisions", "Collisions on the medium."),
    (
        "samples",
        "Samples taken: intervals between two readings of the counters.",
    ),
    (
        "resets",
        "Samples whose counters had gone backwards (interface re-created, driver reset).",
    ),
];

/// One interface (one ifindex) of the run.
#[derive(Debug, Clone, Default)]
struct Iface {
    /// Its latest name.
    ifname: String,
    tally: Tally<String>,
    /// Its link state at the latest sample; `None` once it is deleted.
    state: Option<State>,
    /// When it was last sampled, in records observed (the latest of two of one name wins).
    seen: u64,
}

/// The link state a sample carries.
#[derive(Debug, Clone)]
struct State {
    oper: String,
    carrier: bool,
    admin: bool,
    mtu: Option<u64>,
    speed_mbps: Option<u64>,
}

/// The interfaces of one name: their counts added up, the state of the latest sampled and when.
type Named<'a> = (BTreeMap<&'a str, u64>, Option<&'a State>, u64);

/// lpassive's interfaces, by their labels of tool and tags and their ifindex.
#[derive(Debug, Clone, Default)]
pub(super) struct Ifaces {
    by_index: BTreeMap<(Labels, u64), Iface>,
    records: u64,
}

impl Ifaces {
    /// Takes a `sample`, an `iface_summary` or a `link` record.
    pub(super) fn observe(
        &mut self,
        kind: &str,
        tool: &str,
        body: &Map<String, Value>,
        tags: Option<&BTreeMap<String, String>>,
    ) {
        let (Some(index), Some(name)) = (
            body.get("ifindex").and_then(Value::as_u64),
            body.get("ifname").and_then(Value::as_str),
        ) else {
            return;
        };
        self.records += 1;
        let key = (with_tags(vec![("tool".into(), tool.into())], tags), index);
        let integers = || {
            body.iter()
                .filter(|(k, _)| !NOT_COUNTS.contains(&k.as_str()))
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
        };
        match kind {
            "sample" => {
                let ifc = self.by_index.entry(key).or_default();
                ifc.ifname = name.to_string();
                ifc.seen = self.records;
                let reset = body.get("reset") == Some(&Value::Bool(true));
                let marks = [
                    ("samples".to_string(), 1),
                    ("resets".to_string(), reset.into()),
                ];
                ifc.tally.add(integers().chain(marks), false);
                let flag = |k: &str| body.get(k) == Some(&Value::Bool(true));
                ifc.state = Some(State {
                    oper: body
                        .get("oper")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_string(),
                    carrier: flag("carrier"),
                    admin: flag("admin"),
                    mtu: body.get("mtu").and_then(Value::as_u64),
                    speed_mbps: body.get("speed_mbps").and_then(Value::as_u64),
                });
            }
            "iface_summary" => {
                let ifc = self.by_index.entry(key).or_default();
                ifc.ifname = name.to_string();
                ifc.tally.add(integers(), true);
            }
            // A deleted interface has no state any more; its counts stay.
            "link" if body.get("event").and_then(Value::as_str) == Some("del") => {
                if let Some(ifc) = self.by_index.get_mut(&key) {
                    ifc.state = None;
                }
            }
            _ => {}
        }
    }

    pub(super) fn render(&self, out: &mut String) {
        // Interfaces of one name (one deleted, another created under a new index) make one
        // series, so its counters never go backwards.
        let mut series: BTreeMap<Labels, Named> = BTreeMap::new();
        for ((base, _), ifc) in &self.by_index {
            if ifc.ifname.is_empty() {
                continue;
            }
            let mut labels = vec![base[0].clone(), ("ifname".into(), ifc.ifname.clone())];
            labels.extend(base[1..].iter().cloned());
            let (counts, state, seen) = series.entry(labels).or_default();
            for (k, n) in ifc.tally.counts() {
                *counts.entry(k.as_str()).or_default() += n;
            }
            if ifc.seen >= *seen {
                *state = ifc.state.as_ref();
                *seen = ifc.seen;
            }
        }
        let members: BTreeSet<String> = series
            .values()
            .flat_map(|(c, _, _)| c.keys().map(|k| k.to_string()))
            .collect();
        for member in in_order(COUNTER_HELP, &members) {
            let rows: Vec<(String, String)> = series
                .iter()
                .filter_map(|(l, (c, _, _))| {
                    Some((label_text(l, None), c.get(member)?.to_string()))
                })
                .collect();
            let name = format!("lopa_iface_{}_total", sanitize(member));
            let help = help_of(COUNTER_HELP, member, |m| {
                format!("The samples' {m} member, added up.")
            });
            family(out, &name, "counter", &help, &rows);
        }
        let states: Vec<(&Labels, &State)> = series
            .iter()
            .filter_map(|(l, (_, s, _))| Some((l, (*s)?)))
            .collect();
        let gauge =
            |out: &mut String, name: &str, help: &str, f: &dyn Fn(&State) -> Option<u64>| {
                let rows: Vec<(String, String)> = states
                    .iter()
                    .filter_map(|(l, s)| Some((label_text(l, None), f(s)?.to_string())))
                    .collect();
                family(out, name, "gauge", help, &rows);
            };
        gauge(
            out,
            "lopa_iface_up",
            "1 when the operational state (RFC 2863) is up, else 0, as node_exporter's node_network_up.",
            &|s| Some((s.oper == "up").into()),
        );
        gauge(
            out,
            "lopa_iface_carrier",
            "1 with a carrier (a cable, a peer), else 0.",
            &|s| Some(s.carrier.into()),
        );
        gauge(
            out,
            "lopa_iface_admin_up",
            "1 when administratively up (IFF_UP), else 0.",
            &|s| Some(s.admin.into()),
        );
        gauge(out, "lopa_iface_mtu_bytes", "The interface's MTU.", &|s| {
            s.mtu
        });
        gauge(
            out,
            "lopa_iface_speed_bytes",
            "Link speed in bytes per second, where the driver reports one (speed_mbps x 125000).",
            &|s| s.speed_mbps.map(|m| m * 125_000),
        );
        // The state's name as a label, as node_exporter's node_network_info has it.
        let rows: Vec<(String, String)> = states
            .iter()
            .map(|(l, s)| {
                let mut labels = (*l).clone();
                labels.push(("oper".into(), s.oper.clone()));
                (label_text(&labels, None), "1".to_string())
            })
            .collect();
        family(
            out,
            "lopa_iface_oper_info",
            "gauge",
            "The operational state as ip link shows it, in the oper label; always 1.",
            &rows,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::Exposition;
    use serde_json::{json, Map, Value};
    use std::collections::BTreeMap;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn sample(ifname: &str, ifindex: u64, rx_bytes: u64, extra: Value) -> Map<String, Value> {
        let mut s = obj(json!({
            "ifname": ifname, "ifindex": ifindex, "interval_s": 1.0, "oper": "up",
            "carrier": true, "admin": true, "mtu": 1500, "rx_bytes": rx_bytes, "tx_bytes": 5,
            "rx_packets": 2, "tx_packets": 1, "rx_errors": 0, "tx_errors": 0, "rx_dropped": 1,
            "tx_dropped": 0, "rx_bps": 8.0, "tx_bps": 40.0, "rx_pps": 2.0, "tx_pps": 1.0
        }));
        s.extend(obj(extra));
        s
    }

    fn line<'a>(text: &'a str, start: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(start))
    }

    #[test]
    fn samples_add_up_until_the_summary_replaces_them_and_state_is_the_latest() {
        let mut e = Exposition::new(Vec::new());
        let tags: BTreeMap<String, String> = [("host".to_string(), "a".to_string())].into();
        let l = r#"{tool="lpassive",ifname="eth0",host="a"}"#;
        e.observe(
            "sample",
            "lpassive",
            &sample("eth0", 2, 100, json!({})),
            Some(&tags),
        );
        let late =
            json!({"reset": true, "speed_mbps": 1000, "carrier": false, "oper": "lowerlayerdown"});
        e.observe(
            "sample",
            "lpassive",
            &sample("eth0", 2, 50, late),
            Some(&tags),
        );
        let text = e.render();
        for want in [
            format!("lopa_iface_rx_bytes_total{l} 150"),
            format!("lopa_iface_tx_bytes_total{l} 10"),
            format!("lopa_iface_rx_dropped_total{l} 2"),
            format!("lopa_iface_samples_total{l} 2"),
            format!("lopa_iface_resets_total{l} 1"),
            format!("lopa_iface_up{l} 0"),
            format!("lopa_iface_carrier{l} 0"),
            format!("lopa_iface_admin_up{l} 1"),
            format!("lopa_iface_mtu_bytes{l} 1500"),
            format!("lopa_iface_speed_bytes{l} 125000000"),
            r#"lopa_iface_oper_info{tool="lpassive",ifname="eth0",host="a",oper="lowerlayerdown"} 1"#
                .to_string(),
        ] {
            assert!(text.lines().any(|x| x == want), "{want} missing:\n{text}");
        }
        assert!(!text.contains("rx_bps"), "rates are rate()'s: {text}");
        assert!(!text.contains("ifindex"), "{text}");
        assert!(!text.contains("lopa_iface_mtu_bytes_total"), "{text}");
        // The summary's totals replace the sums (here, a sample the exposition never saw).
        let summary = obj(json!({
            "ifname": "eth0", "ifindex": 2, "window": "total", "samples": 3, "resets": 1,
            "duration_s": 3.0, "rx_bytes": 180, "tx_bytes": 15, "rx_packets": 6, "tx_packets": 3,
            "rx_errors": 0, "tx_errors": 0, "rx_dropped": 3, "tx_dropped": 0, "rx_bps": 480.0
        }));
        e.observe("iface_summary", "lpassive", &summary, Some(&tags));
        let text = e.render();
        assert_eq!(
            line(&text, "lopa_iface_rx_bytes_total{"),
            Some(&format!("lopa_iface_rx_bytes_total{l} 180")[..])
        );
        assert_eq!(
            line(&text, "lopa_iface_samples_total{"),
            Some(&format!("lopa_iface_samples_total{l} 3")[..])
        );
        assert!(text.contains(&format!("lopa_iface_up{l} 0\n")), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_deleted_interface_keeps_its_counts_and_loses_its_state() {
        let mut e = Exposition::new(Vec::new());
        e.observe(
            "sample",
            "lpassive",
            &sample("veth1", 7, 10, json!({})),
            None,
        );
        let del = obj(json!({"event": "del", "ifname": "veth1", "ifindex": 7}));
        e.observe("link", "lpassive", &del, None);
        let text = e.render();
        let l = r#"{tool="lpassive",ifname="veth1"}"#;
        assert!(
            text.contains(&format!("lopa_iface_rx_bytes_total{l} 10\n")),
            "{text}"
        );
        assert!(!text.contains("lopa_iface_up"), "{text}");
        // Created again under a new index: one series of that name, its counts added on.
        e.observe(
            "sample",
            "lpassive",
            &sample("veth1", 9, 5, json!({})),
            None,
        );
        let text = e.render();
        assert!(
            text.contains(&format!("lopa_iface_rx_bytes_total{l} 15\n")),
            "{text}"
        );
        assert!(text.contains(&format!("lopa_iface_up{l} 1\n")), "{text}");
        // A rename: the interface's series goes under its new name.
        e.observe("sample", "lpassive", &sample("wan0", 9, 1, json!({})), None);
        let text = e.render();
        assert!(
            text.contains(&format!("lopa_iface_rx_bytes_total{l} 10\n")),
            "{text}"
        );
        assert!(
            text.contains("lopa_iface_rx_bytes_total{tool=\"lpassive\",ifname=\"wan0\"} 6\n"),
            "{text}"
        );
    }
}
