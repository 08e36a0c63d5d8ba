//! `src` on the probe records of lping, ludp, ltcp (connect and --syn) and ltwamp: the local
//! address the probes really left from, checked against the server's view. The client has two
//! addresses per family; the route to the server prefers the second (`src` in the route), while
//! `-I ADDR` picks the first, and so does `-m 7` (policy routing: marked packets take a table
//! whose route prefers the first). An nftables counter per source address on the server counts
//! the probes that arrived from each.
//! Needs root (CI runs as root); without it every test fails with one line saying so.

mod common;

use common::lab::*;
use serde_json::Value;

/// The client's addresses: the interface's first, and the one the route to the server prefers.
const FIRST_V4: &str = "10.0.0.1";
const PREFERRED_V4: &str = "10.0.0.11";
const FIRST_V6: &str = "fd00::1";
const PREFERRED_V6: &str = "fd00::11";

/// A client and a server on one link; the client's routes to the server prefer its second
/// address of each family, but for packets marked 7, its first.
fn lab(test: &str) -> Pair {
    let lab = Pair::new(test);
    let c = &lab.client;
    c.run("ip addr add 10.0.0.11/24 dev eth0");
    c.run("ip -6 addr add fd00::11/64 dev eth0 nodad");
    c.run("ip route add 10.0.0.2/32 dev eth0 src 10.0.0.11");
    c.run("ip -6 route add fd00::2/128 dev eth0 src fd00::11");
    c.run("ip rule add fwmark 7 table 7");
    c.run("ip -6 rule add fwmark 7 table 7");
    c.run("ip route add 10.0.0.2/32 dev eth0 src 10.0.0.1 table 7");
    c.run("ip -6 route add fd00::2/128 dev eth0 src fd00::1 table 7");
    lab
}

/// How a run picks its source, and the address it should then leave from: the route's
/// preferred one, `-I FIRST`, or the marked route's (the first).
fn picks<'a>(first: &'a str, preferred: &'a str) -> [(Vec<&'a str>, &'a str); 3] {
    [
        (vec![], preferred),
        (vec!["-I", first], first),
        (vec!["-m", "7"], first),
    ]
}

/// Counts, on the server, the probes (packets matching `probe`, an nftables expression) that
/// arrive from `a` and from `b` (same family), from zero.
fn count_sources(server: &Netns, a: &str, b: &str, probe: &str) {
    let family = if a.contains(':') { "ip6" } else { "ip" };
    let script = format!(
        "table inet srccheck {{}}\n\
         delete table inet srccheck\n\
         table inet srccheck {{\n\
           counter from_a {{}}\n\
           counter from_b {{}}\n\
           chain seen {{\n\
             type filter hook input priority 0; policy accept;\n\
             {family} saddr {a} {probe} counter name from_a\n\
             {family} saddr {b} {probe} counter name from_b\n\
           }}\n\
         }}\n"
    );
    server.run(&format!("nft -f - <<'EOF'\n{script}EOF"));
}

/// The packets counted so far from address `a` and `b` of [`count_sources`].
fn counted(server: &Netns) -> (u64, u64) {
    let packets = |name: &str| {
        let out = server.run(&format!("nft -j list counter inet srccheck {name}"));
        let v: Value = serde_json::from_str(&out).unwrap();
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|o| o["counter"]["packets"].as_u64())
            .unwrap_or_else(|| panic!("no counter {name}: {out}"))
    };
    (packets("from_a"), packets("from_b"))
}

/// Runs `program` in the client with `args` then `target`, once for each of [`picks`]: every
/// probe record carries the address the server saw the probes come from, and the server saw
/// each probe the run counts as sent.
fn check_sources(lab: &Pair, program: &str, args: &[&str], target: &str, probe: &str) {
    let v6 = target.matches(':').count() > 1;
    let (first, preferred) = if v6 {
        (FIRST_V6, PREFERRED_V6)
    } else {
        (FIRST_V4, PREFERRED_V4)
    };
    for (pick, expected) in picks(first, preferred) {
        count_sources(&lab.server, first, preferred, probe);
        let mut all: Vec<&str> = args.to_vec();
        all.extend(pick);
        all.push(target);
        let run = run_tool(&lab.client, program, &all);
        let what = format!("{program} {all:?}");
        assert_eq!(
            run.status, 0,
            "{what}: every probe answered; {}",
            run.stderr
        );
        let mut probe_records = 0;
        for r in &run.records {
            if ["reply", "timeout", "unreachable", "summary"].contains(&r["type"].as_str().unwrap())
            {
                probe_records += 1;
                assert_eq!(r["src"], expected, "{what}: {r}");
            }
        }
        let total = run
            .kind("summary")
            .into_iter()
            .find(|s| s.get("flow").is_none())
            .unwrap_or_else(|| panic!("{what}: no total summary"))
            .clone();
        let sent = total["sent"].as_u64().unwrap();
        assert!(sent >= 3 && probe_records > 3, "{what}: {:?}", run.records);
        let (from_first, from_preferred) = counted(&lab.server);
        let seen = if expected == first {
            (sent, 0)
        } else {
            (0, sent)
        };
        assert_eq!(
            (from_first, from_preferred),
            seen,
            "{what}: probes the server saw from {first} and from {preferred}"
        );
    }
}

#[test]
fn lping_records_the_address_its_echo_requests_left_from() {
    let lab = lab("src-lping");
    let lping = env!("CARGO_BIN_EXE_lping");
    let args = ["-c", "3", "-i", "0.05"];
    check_sources(&lab, lping, &args, "10.0.0.2", "icmp type echo-request");
    check_sources(&lab, lping, &args, "fd00::2", "icmpv6 type echo-request");
}

#[test]
fn ludp_records_the_address_of_every_flow() {
    let lab = lab("src-ludp");
    let _echo = lreflect_service(&lab.server, &["--echo", "[::]:8081"], 8081);
    let ludp = env!("CARGO_BIN_EXE_ludp");
    let args = ["-c", "3", "-i", "0.05", "--flows", "2"];
    check_sources(&lab, ludp, &args, "10.0.0.2:8081", "udp dport 8081");
    check_sources(&lab, ludp, &args, "[fd00::2]:8081", "udp dport 8081");
}

#[test]
fn ltcp_records_the_address_its_syns_left_from() {
    let lab = lab("src-ltcp");
    let ltcp = env!("CARGO_BIN_EXE_ltcp");
    // A closed port answers with a reset: a reply (`refused`), one SYN per probe.
    let syn = "tcp dport 9 tcp flags & (syn | ack) == syn";
    for mode in [&[][..], &["--syn"][..]] {
        let args = [&["-c", "3", "-i", "0.05"][..], mode].concat();
        check_sources(&lab, ltcp, &args, "10.0.0.2:9", syn);
        check_sources(&lab, ltcp, &args, "[fd00::2]:9", syn);
    }
}

#[test]
fn ltwamp_records_the_address_its_test_packets_left_from() {
    let lab = lab("src-ltwamp");
    let _reflector = lreflect_service(&lab.server, &["--twamp", "[::]:862"], 862);
    let ltwamp = env!("CARGO_BIN_EXE_ltwamp");
    let args = ["-c", "3", "-i", "0.05"];
    check_sources(&lab, ltwamp, &args, "10.0.0.2", "udp dport 862");
    check_sources(&lab, ltwamp, &args, "fd00::2", "udp dport 862");
}

/// The `path` records of a trace name the source the probe records do (the route's preferred
/// source, `-I ADDR`, the marked route's), for every kind of probe.
#[test]
fn paths_name_the_source_the_probes_carry() {
    let lab = lab("src-path");
    let _echo = lreflect_service(&lab.server, &["--echo", "[::]:8081"], 8081);
    let runs = [
        (env!("CARGO_BIN_EXE_lping"), "10.0.0.2", "fd00::2"),
        (
            env!("CARGO_BIN_EXE_ludp"),
            "10.0.0.2:8081",
            "[fd00::2]:8081",
        ),
        (env!("CARGO_BIN_EXE_ltcp"), "10.0.0.2:9", "[fd00::2]:9"),
    ];
    for (program, v4, v6) in runs {
        for (target, first, preferred) in
            [(v4, FIRST_V4, PREFERRED_V4), (v6, FIRST_V6, PREFERRED_V6)]
        {
            for (pick, expected) in picks(first, preferred) {
                let mut args = vec!["--trace-only", "-W", "0.3"];
                args.extend(pick);
                args.push(target);
                let run = run_tool(&lab.client, program, &args);
                let paths = run.kind("path");
                assert!(!paths.is_empty(), "{program} {args:?}: {}", run.stderr);
                for p in paths {
                    assert_eq!(p["src"], expected, "{program} {args:?}: {p}");
                }
            }
        }
    }
}
