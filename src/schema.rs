//! The JSON Schemas of `schemas/`, compiled in: the names every record may carry, so a user's
//! `--tag` can never collide with one of them.
//!
//! The schemas are the documented contract (tests validate real output against them), so the
//! member list follows them with no second copy to keep current.
#![forbid(unsafe_code)]

use crate::output::nested_name;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// Every schema file, by record kind; a unit test checks this covers `schemas/`.
const SCHEMAS: &[(&str, &str)] = &[
    ("addr", include_str!("../schemas/addr.schema.json")),
    ("alert", include_str!("../schemas/alert.schema.json")),
    (
        "iface_summary",
        include_str!("../schemas/iface_summary.schema.json"),
    ),
    ("link", include_str!("../schemas/link.schema.json")),
    ("neigh", include_str!("../schemas/neigh.schema.json")),
    ("nexthop", include_str!("../schemas/nexthop.schema.json")),
    ("path", include_str!("../schemas/path.schema.json")),
    ("reply", include_str!("../schemas/reply.schema.json")),
    ("resync", include_str!("../schemas/resync.schema.json")),
    ("route", include_str!("../schemas/route.schema.json")),
    ("rule", include_str!("../schemas/rule.schema.json")),
    ("sample", include_str!("../schemas/sample.schema.json")),
    ("stats", include_str!("../schemas/stats.schema.json")),
    ("summary", include_str!("../schemas/summary.schema.json")),
    ("timeout", include_str!("../schemas/timeout.schema.json")),
    (
        "unreachable",
        include_str!("../schemas/unreachable.schema.json"),
    ),
];

/// The names a record member can have in any output format: every top-level member of every
/// record kind (`target`, `window`, `rtt_ms`, …) and the flattened names of nested members as
/// InfluxDB lines write them (`rtt_p50_ms`, `flow_sport`, `dropped_acl`).
pub fn member_names() -> &'static BTreeSet<String> {
    static NAMES: OnceLock<BTreeSet<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = BTreeSet::new();
        for (kind, text) in SCHEMAS {
            let root: Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("schemas/{kind}.schema.json is not JSON: {e}"));
            for (key, node) in properties(&root, &root) {
                names.insert(key.clone());
                for sub in properties(&root, node).map(|(k, _)| k) {
                    names.insert(nested_name(key, sub));
                    // Flows are identity: InfluxDB lines write their members as `flow_<name>`.
                    names.insert(format!("{key}_{sub}"));
                }
            }
        }
        names
    })
}

/// The `properties` of an object schema, following a local `$ref` (`#/$defs/flow`).
fn properties<'a>(
    root: &'a Value,
    node: &'a Value,
) -> impl Iterator<Item = (&'a String, &'a Value)> {
    let node = match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/")
            .map(|path| path.split('/').fold(root, |n, seg| &n[seg]))
            .unwrap_or(node),
        None => node,
    };
    node.get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_file_is_compiled_in() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("schemas/")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".schema.json").map(str::to_owned))
            .collect();
        on_disk.sort();
        let compiled: Vec<String> = SCHEMAS.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(
            compiled, on_disk,
            "SCHEMAS must list every file in schemas/"
        );
    }

    #[test]
    fn names_cover_top_level_and_flattened_members() {
        let names = member_names();
        for name in [
            "type",
            "tool",
            "ts",
            "tags",
            "target",
            "window",
            "rtt_ms",
            "rtt_p50_ms",
            "flow",
            "flow_sport",
            "loss_pct",
            "dropped_acl",
            "hops",
            "verdict",
            "ifname",
        ] {
            assert!(names.contains(name), "{name} missing");
        }
        for free in ["dc", "site", "host", "region", "rack"] {
            assert!(!names.contains(free), "{free} should be free for tags");
        }
    }
}
