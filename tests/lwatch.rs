//! lwatch in the namespace lab: the oracle sequence (a veth pair, up/down, MTU, rename, MAC,
//! IPv4 and IPv6 addresses, routes in main and in table 1000, a multipath route, link down and
//! delete) gives exactly the expected records, step by step; IPv4 routes the kernel flushes
//! silently are reported; routes sharing one destination, table and metric are each kept, and
//! a replace names the route it replaced; changes made while lwatch starts (with lwatch
//! stopped at each step of its start by a test hook, and amid a flapping script) each have
//! their record, whether or not its read of the state shows them; an overflow burst ends with
//! a `resync` after which the picture built from the stream equals `ip -j addr` and `ip -j
//! route show table all`; filters (a replace or a rename away from an interface passes its
//! filter) and bad input; address flags and their changes with DAD on (a duplicate address,
//! lifetimes set and running out), and the deletion of a tentative link-local never
//! announced, against `ip monitor`; `--format influx` with multipath routes; routes on nexthop
//! objects (replaced, deleted, members deleted, flushed with a link or its carrier) against
//! `ip monitor nexthop route`; neighbours and rules against `ip monitor neigh rule`; an
//! interrupted nexthop dump and an overflow of object, neighbour and rule changes; influx
//! lines of the new records. Needs root (CI runs as root); without it every test fails with
//! one line saying so.

mod common;

use common::lab::*;
use common::process::{spawn_streamed, Streamed};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::thread;
use std::time::{Duration, Instant};

const LWATCH: &str = env!("CARGO_BIN_EXE_lwatch");
/// Longest a test waits for the records of one step.
const STEP: Duration = Duration::from_secs(5);

/// A running lwatch and its stdout, line by line.
struct Watch {
    child: Child,
    lines: Receiver<String>,
}

impl Watch {
    /// Starts `lwatch ARGS` in `ns` and waits until it has subscribed and read the state
    /// (its socket shows in `/proc/net/netlink` with its groups; the dump that follows takes
    /// milliseconds in a fresh namespace).
    fn start(ns: &Netns, args: &[&str]) -> Watch {
        let w = Watch::spawn(ns, args, &[]);
        let t0 = Instant::now();
        while !w.subscribed(ns) {
            assert!(t0.elapsed() < STEP, "lwatch never subscribed");
            thread::sleep(Duration::from_millis(10));
        }
        thread::sleep(Duration::from_millis(300));
        w
    }

    /// Whether one of lwatch's own sockets (by inode, from `/proc/PID/fd`) has joined the
    /// groups every lwatch joins: links, addresses, routes (1, 5, 7, 9, 11) and nexthop objects
    /// (32): bits 0x80000551 of the first group word.
    fn subscribed(&self, ns: &Netns) -> bool {
        subscribed(ns, self.child.id(), 0x8000_0551)
    }

    /// Starts `lwatch ARGS` in `ns` with `env` added to its environment, without waiting.
    fn spawn(ns: &Netns, args: &[&str], env: &[(&str, &str)]) -> Watch {
        Watch::spawn_to(ns, args, env, Stdio::inherit())
    }

    /// [`Watch::spawn`], lwatch's stderr to `stderr`.
    fn spawn_to(ns: &Netns, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Watch {
        let Streamed { child, lines, .. } = spawn_streamed(
            ns.command(LWATCH)
                .args(args)
                .envs(env.iter().copied())
                .stderr(stderr),
        );
        Watch { child, lines }
    }

    /// Waits until lwatch has stopped itself (`LOPA_LWATCH_TEST_STOP`), runs `cmd` in `ns`,
    /// and lets lwatch go on.
    fn at_stop(&self, ns: &Netns, cmd: &str) {
        let pid = self.child.id();
        let t0 = Instant::now();
        while process_state(pid) != 'T' {
            assert!(t0.elapsed() < STEP, "lwatch never stopped itself");
            thread::sleep(Duration::from_millis(5));
        }
        ns.run(cmd);
        let cont = Command::new("kill")
            .args(["-CONT", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(cont.success());
    }

    /// Every record up to and including the first that `last` accepts, each within [`STEP`].
    fn until(&mut self, what: &str, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let r = self.take(1, what).remove(0);
            let done = last(&r);
            out.push(r);
            if done {
                return out;
            }
        }
    }

    /// The next `n` records, each within [`STEP`].
    fn take(&mut self, n: usize, what: &str) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.lines.recv_timeout(STEP) {
                Ok(line) => out.push(serde_json::from_str(&line).expect("a JSON line")),
                Err(e) => panic!(
                    "{what}: {e} after {} of {n} records: {:#?}",
                    out.len(),
                    out.iter().map(brief).collect::<Vec<_>>()
                ),
            }
        }
        out
    }

    /// Records that arrive within `wait`.
    fn rest(&mut self, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        let end = Instant::now() + wait;
        while let Ok(line) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            out.push(serde_json::from_str(&line).expect("a JSON line"));
        }
        out
    }

    /// Asserts that nothing more arrives within `wait` (records nobody asked for).
    fn assert_quiet_for(&mut self, wait: Duration) {
        let extra: Vec<String> = self.rest(wait).iter().map(brief).collect();
        assert!(extra.is_empty(), "records nobody asked for: {extra:#?}");
    }

    /// SIGINT; the exit status must be 0.
    fn stop(self) {
        self.stop_with("INT");
    }

    /// SIGINT or SIGTERM (`sig`); the exit status must be 0.
    fn stop_with(mut self, sig: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .expect("kill");
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "lwatch ended with {status}");
                return;
            }
            assert!(t0.elapsed() < STEP, "lwatch ignored SIG{sig}");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether a netlink socket of process `pid` in `ns` has joined every group of `mask` (the
/// first group word of `/proc/net/netlink`, groups 1 to 32).
fn subscribed(ns: &Netns, pid: u32, mask: u32) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let inodes: BTreeSet<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    ns.run("cat /proc/net/netlink").lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let groups = f.get(3).and_then(|g| u32::from_str_radix(g, 16).ok());
        f.last().is_some_and(|i| inodes.contains(*i)) && groups.is_some_and(|g| g & mask == mask)
    })
}

/// One record in a line of text, with what the tests compare.
fn brief(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
    match r["type"].as_str() {
        Some("link") => format!(
            "link {} {}{} admin={} carrier={} oper={} mtu={}",
            s("event"),
            s("ifname"),
            r["old_ifname"]
                .as_str()
                .map(|o| format!(" (was {o})"))
                .unwrap_or_default(),
            r["admin"],
            r["carrier"],
            s("oper"),
            r["mtu"]
        ),
        Some("addr") => format!(
            "addr {} {} {}/{} {}{}{}",
            s("event"),
            s("ifname"),
            s("addr"),
            r["prefixlen"],
            s("scope"),
            flags_brief(&r["flags"]),
            if r["event"] == "change" {
                format!(" (was{})", flags_brief(&r["old_flags"]))
            } else {
                String::new()
            }
        ),
        Some("route") => {
            let mut t = format!(
                "route {} {} t{} {} {}",
                s("event"),
                s("dst"),
                r["table"],
                s("route_type"),
                s("protocol")
            );
            if let Some(d) = r["dev"].as_str() {
                t += &format!(" dev {d}");
            }
            if let Some(g) = r["gateway"].as_str() {
                t += &format!(" via {g}");
            }
            for n in r["nexthops"].as_array().into_iter().flatten() {
                t += &format!(
                    " nh({} {} w{})",
                    n["gateway"].as_str().unwrap_or("-"),
                    n["dev"].as_str().unwrap_or("-"),
                    n["weight"]
                );
            }
            if let Some(n) = r["nhid"].as_u64() {
                t += &format!(" nhid {n}");
            }
            if r["event"] == "replace" {
                t += " (was";
                if let Some(d) = r["old_dev"].as_str() {
                    t += &format!(" dev {d}");
                }
                if let Some(g) = r["old_gateway"].as_str() {
                    t += &format!(" via {g}");
                }
                for n in r["old_nexthops"].as_array().into_iter().flatten() {
                    t += &format!(
                        " nh({} {} w{})",
                        n["gateway"].as_str().unwrap_or("-"),
                        n["dev"].as_str().unwrap_or("-"),
                        n["weight"]
                    );
                }
                t += ")";
            }
            if r["flushed"] == true {
                t += " flushed";
            }
            t
        }
        Some("nexthop") => {
            let mut t = format!("nexthop {} {}", s("event"), ip_nexthop(r, ""));
            if r["event"] == "replace" {
                t += &format!(" (was {})", ip_nexthop(r, "old_"));
            }
            if r["flushed"] == true {
                t += " flushed";
            }
            t
        }
        Some("neigh") => {
            let mut t = format!("neigh {} {}", s("event"), ip_neigh(r));
            if r["event"] == "change" {
                t += &format!(" (was {})", states(&r["old_state"]));
            }
            t
        }
        Some("rule") => format!("rule {} {}", s("event"), ip_rule(r)),
        _ => r.to_string(),
    }
}

/// A nexthop record (`prefix` "old_" for what a replace replaced) as `ip nexthop` prints it:
/// `id 1 via 10.1.0.2 dev w0 scope link`, `id 10 group 1/2,3`, `id 4 blackhole`; a resilient
/// group's `type resilient` without the bucket figures.
fn ip_nexthop(r: &Value, prefix: &str) -> String {
    let f = |k: &str| r[format!("{prefix}{k}")].clone();
    let mut t = format!("id {}", r["id"]);
    if let Some(g) = f("group").as_array() {
        let members: Vec<String> = g
            .iter()
            .map(|m| match m["weight"].as_u64() {
                Some(1) => m["id"].to_string(),
                _ => format!("{},{}", m["id"], m["weight"]),
            })
            .collect();
        t += &format!(" group {}", members.join("/"));
        if prefix.is_empty() && r["group_type"] == "resilient" {
            t += " type resilient";
        }
        return t;
    }
    if f("blackhole") == true {
        return t + " blackhole";
    }
    if let Some(g) = f("gateway").as_str() {
        t += &format!(" via {g}");
    }
    if let Some(d) = f("dev").as_str() {
        t += &format!(" dev {d}");
    }
    if prefix.is_empty() {
        t += &format!(" scope {}", r["scope"].as_str().unwrap_or("?"));
    }
    t
}

/// A neighbour state list as `ip neigh` prints it (`REACHABLE`, `NOARP`…).
fn states(v: &Value) -> String {
    let names: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    names.join(" ")
}

/// A neighbour record as `ip neigh` prints it: `10.66.0.2 dev v0 lladdr 02:… router STALE`.
fn ip_neigh(r: &Value) -> String {
    let mut t = format!(
        "{} dev {}",
        r["dst"].as_str().unwrap_or("?"),
        r["ifname"].as_str().unwrap_or("?")
    );
    if let Some(l) = r["lladdr"].as_str() {
        t += &format!(" lladdr {l}");
    }
    if r["router"] == true {
        t += " router";
    }
    if r["proxy"] == true {
        t += " proxy";
    }
    format!("{t} {}", states(&r["state"]))
}

/// A rule record as `ip rule` prints it: `100:\tnot from 10.0.0.0/24 to … lookup 100`.
fn ip_rule(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().map(str::to_string);
    let mut t = format!("{}:\t", r["priority"]);
    if r["not"] == true {
        t += "not ";
    }
    t += &format!("from {}", s("src").unwrap_or("all".into()));
    if let Some(d) = s("dst") {
        t += &format!(" to {d}");
    }
    if let Some(tos) = r["tos"].as_u64() {
        t += &format!(" tos {tos:#x}");
    }
    if let Some(m) = r["fwmark"].as_u64() {
        t += &format!(" fwmark {m:#x}");
        if let Some(k) = r["fwmask"].as_u64().filter(|&k| k != 0xffff_ffff) {
            t += &format!("/{k:#x}");
        }
    }
    for k in ["iif", "oif"] {
        if let Some(v) = s(k) {
            t += &format!(" {k} {v}");
        }
    }
    if r["l3mdev"] == true {
        t += " lookup [l3mdev-table]";
    }
    if let Some(u) = s("uidrange") {
        t += &format!(" uidrange {u}");
    }
    if let Some(p) = r["ipproto"].as_u64() {
        let name = match p {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            1 => "icmp".to_string(),
            n => n.to_string(),
        };
        t += &format!(" ipproto {name}");
    }
    for k in ["sport", "dport"] {
        if let Some(v) = s(k) {
            t += &format!(" {k} {v}");
        }
    }
    match r["action"].as_str() {
        Some("lookup") => {
            let table = match r["table"].as_u64() {
                Some(255) => "local".to_string(),
                Some(254) => "main".to_string(),
                Some(253) => "default".to_string(),
                Some(n) => n.to_string(),
                None => "?".into(),
            };
            t += &format!(" lookup {table}");
        }
        Some("goto") => t += &format!(" goto {}", r["goto"]),
        Some(a) => t += &format!(" {a}"),
        None => {}
    }
    if let Some(n) = r["suppress_prefixlength"].as_u64() {
        t += &format!(" suppress_prefixlength {n}");
    }
    t
}

/// An address's flags as ` [f1 f2]`, nothing for none.
fn flags_brief(flags: &Value) -> String {
    let names: Vec<&str> = flags
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| f.as_str().expect("a flag name"))
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" [{}]", names.join(" "))
    }
}

/// Runs one step of the oracle: `cmd` in `ns`, then exactly `expect` (in order; records
/// marked flushed in any order after the others, since lwatch finds them by a re-read or
/// writes them after the object they went with).
fn step(w: &mut Watch, ns: &Netns, cmd: &str, expect: &[&str]) -> Vec<Value> {
    ns.run(cmd);
    let records = w.take(expect.len(), cmd);
    let got: Vec<String> = records.iter().map(brief).collect();
    let (flushed, ordered): (Vec<&String>, Vec<&String>) =
        got.iter().partition(|g| g.ends_with(" flushed"));
    let (want_flushed, want_ordered): (Vec<&&str>, Vec<&&str>) =
        expect.iter().partition(|e| e.ends_with(" flushed"));
    assert_eq!(ordered, want_ordered, "{cmd}: got {got:#?}");
    let f: BTreeSet<&str> = flushed.iter().map(|s| s.as_str()).collect();
    let wf: BTreeSet<&str> = want_flushed.iter().map(|s| **s).collect();
    assert_eq!(f, wf, "{cmd}: flushed routes; got {got:#?}");
    let last_ordered = got.iter().rposition(|g| !g.ends_with(" flushed"));
    let first_flushed = got.iter().position(|g| g.ends_with(" flushed"));
    if let (Some(first), Some(_)) = (first_flushed, last_ordered) {
        assert!(
            got[..first]
                .iter()
                .any(|g| ["link down", "link del", "link carrier", "nexthop del"]
                    .iter()
                    .any(|w| g.starts_with(w))),
            "{cmd}: flushed routes before their link or nexthop object went: {got:#?}"
        );
    }
    records
}

/// The oracle: every step's records, exactly; and `ip monitor`, run alongside, is the
/// reference: lwatch's records are exactly what its events give by the rules lwatch follows
/// (see [`same_as_ip_monitor`]), and its IPv4 routes flushed at link down are the ones
/// `ip monitor` never shows deleted.
#[test]
fn the_oracle_sequence_gives_exactly_the_expected_records() {
    require_root();
    let ns = Netns::new("lwatch-oracle");
    let peer = Netns::new("lwatch-oracle-peer");
    // ip monitor first, so it sees every change lwatch does.
    let monitor = IpMonitor::start(&ns);
    let reference = kernel_links_and_addrs(&ns);
    let mut w = Watch::start(&ns, &["--dump"]);
    let mut all = Vec::new();
    // lo as a fresh namespace has it, as `ip -j addr` and `ip route show table all` list it.
    let present: Vec<String> = w.take(8, "dump").iter().map(brief).collect();
    assert_eq!(
        present,
        [
            "link present lo admin=true carrier=true oper=unknown mtu=65536",
            "addr present lo 127.0.0.1/8 host",
            "addr present lo ::1/128 host",
            "route present 127.0.0.0/8 t255 local kernel dev lo",
            "route present 127.0.0.1/32 t255 local kernel dev lo",
            "route present 127.255.255.255/32 t255 broadcast kernel dev lo",
            "route present ::1/128 t254 unicast kernel dev lo",
            "route present ::1/128 t255 local kernel dev lo",
        ]
    );
    let p = &peer.name;
    all.extend(step(
        &mut w,
        &ns,
        &format!("ip link add v0 type veth peer name v1 netns {p}"),
        &["link new v0 admin=false carrier=false oper=down mtu=1500"],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip link set v0 up",
        &["link up v0 admin=true carrier=false oper=down mtu=1500"],
    ));
    // IPv6 configures a link once it has carrier.
    all.extend(step(
        &mut w,
        &peer,
        "ip link set v1 up",
        &[
            "route add ff00::/8 t255 multicast kernel dev v0",
            "link carrier v0 admin=true carrier=true oper=up mtu=1500",
        ],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip link set v0 mtu 1400",
        &["link mtu v0 admin=true carrier=true oper=up mtu=1400"],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip link set v0 name w0",
        &["link rename w0 (was v0) admin=true carrier=true oper=up mtu=1400"],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip link set w0 address 02:00:00:00:00:0a",
        &["link address w0 admin=true carrier=true oper=up mtu=1400"],
    ));
    // An RTM_NEWLINK for a change lwatch does not follow: no record (the next step's comes
    // first).
    ns.run("ip link set w0 txqueuelen 2000");
    all.extend(step(
        &mut w,
        &ns,
        "ip link set w0 down",
        &[
            "link down w0 admin=false carrier=false oper=down mtu=1400",
            "link carrier w0 admin=false carrier=false oper=down mtu=1400",
            "route del ff00::/8 t255 multicast kernel dev w0",
        ],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip link set w0 up",
        &[
            "link up w0 admin=true carrier=true oper=down mtu=1400",
            "link carrier w0 admin=true carrier=true oper=down mtu=1400",
            "route add ff00::/8 t255 multicast kernel dev w0",
            "link oper w0 admin=true carrier=true oper=up mtu=1400",
        ],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip addr add 10.1.0.1/24 dev w0",
        &[
            "addr add w0 10.1.0.1/24 global",
            "route add 10.1.0.1/32 t255 local kernel dev w0",
            "route add 10.1.0.0/24 t254 unicast kernel dev w0",
            "route add 10.1.0.255/32 t255 broadcast kernel dev w0",
        ],
    ));
    // A new IPv6 address is announced tentative, then (DAD is off here) at once without.
    all.extend(step(
        &mut w,
        &ns,
        "ip addr add fd01::1/64 dev w0",
        &[
            "route add fd01::/64 t254 unicast kernel dev w0",
            "addr add w0 fd01::1/64 global [tentative]",
            "addr change w0 fd01::1/64 global (was [tentative])",
            "route add fd01::1/128 t255 local kernel dev w0",
        ],
    ));
    // A repeated RTM_NEWADDR is no add: the next step's record comes first.
    ns.run("ip addr change 10.1.0.1/24 dev w0");
    all.extend(step(
        &mut w,
        &ns,
        "ip route add 10.9.0.0/24 via 10.1.0.2",
        &["route add 10.9.0.0/24 t254 unicast boot dev w0 via 10.1.0.2"],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip route add 10.8.0.0/24 via 10.1.0.2 table 1000",
        &["route add 10.8.0.0/24 t1000 unicast boot dev w0 via 10.1.0.2"],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip route add 10.7.0.0/24 nexthop via 10.1.0.2 weight 1 nexthop via 10.1.0.3 weight 2",
        &["route add 10.7.0.0/24 t254 unicast boot nh(10.1.0.2 w0 w1) nh(10.1.0.3 w0 w2)"],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip -6 route add fd09::/64 via fd01::2",
        &["route add fd09::/64 t254 unicast boot dev w0 via fd01::2"],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip route replace 10.9.0.0/24 via 10.1.0.3",
        &["route replace 10.9.0.0/24 t254 unicast boot dev w0 via 10.1.0.3 (was dev w0 via 10.1.0.2)"],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip route del 10.8.0.0/24 table 1000",
        &["route del 10.8.0.0/24 t1000 unicast boot dev w0 via 10.1.0.2"],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip addr del fd01::1/64 dev w0",
        &[
            "addr del w0 fd01::1/64 global",
            "route del fd01::1/128 t255 local kernel dev w0",
            "route del fd01::/64 t254 unicast kernel dev w0",
        ],
    ));
    // IPv4 routes through w0 go without a notification; IPv6 routes with one.
    all.extend(step(
        &mut w,
        &ns,
        "ip link set w0 down",
        &[
            "link down w0 admin=false carrier=false oper=down mtu=1400",
            "link carrier w0 admin=false carrier=false oper=down mtu=1400",
            "route del fd09::/64 t254 unicast boot dev w0 via fd01::2",
            "route del ff00::/8 t255 multicast kernel dev w0",
            "route del 10.1.0.0/24 t254 unicast kernel dev w0 flushed",
            "route del 10.9.0.0/24 t254 unicast boot dev w0 via 10.1.0.3 flushed",
            "route del 10.7.0.0/24 t254 unicast boot nh(10.1.0.2 w0 w1) nh(10.1.0.3 w0 w2) flushed",
            "route del 10.1.0.255/32 t255 broadcast kernel dev w0 flushed",
        ],
    ));
    all.extend(step(
        &mut w,
        &ns,
        "ip link del w0",
        &[
            "addr del w0 10.1.0.1/24 global",
            "route del 10.1.0.1/32 t255 local kernel dev w0",
            "link del w0 admin=false carrier=false oper=down mtu=1400",
        ],
    ));
    w.assert_quiet_for(Duration::from_millis(500));
    // A last change: once ip monitor has printed its route, it has printed everything.
    all.extend(step(
        &mut w,
        &ns,
        "ip addr add 10.99.0.1/32 dev lo",
        &[
            "addr add lo 10.99.0.1/32 global",
            "route add 10.99.0.1/32 t255 local kernel dev lo",
        ],
    ));
    w.stop();
    let lines = monitor.stop_after(|l| l.contains("local 10.99.0.1 dev lo"));
    let folded = same_as_ip_monitor(&all, &lines, reference);
    for kind in ["RTM_NEWLINK", "RTM_NEWADDR"] {
        assert!(
            folded.iter().any(|f| f.starts_with(kind)),
            "ip monitor shows a raw {kind} lwatch folds: {folded:#?}"
        );
    }
}

/// `ip -o -ts monitor link address route` in a namespace: iproute2's own view of the same
/// notifications, the reference the oracle test holds lwatch to. (iproute2 6.1 has no JSON
/// for `ip monitor`, `-j` is ignored: its one-line text is parsed.)
struct IpMonitor {
    child: Child,
    file: String,
}

impl IpMonitor {
    /// Starts it and waits until its socket has joined the groups of links, addresses and
    /// routes (bits 0x551 of the groups in `/proc/net/netlink`).
    fn start(ns: &Netns) -> IpMonitor {
        IpMonitor::start_objects(ns, "link address route", 0x551)
    }

    /// `ip -o -ts monitor OBJECTS`, once its socket has joined the groups of `mask`.
    fn start_objects(ns: &Netns, objects: &str, mask: u32) -> IpMonitor {
        let file = format!("/tmp/{}.ipmon", ns.name);
        let child = ns
            .command("sh")
            .arg("-c")
            .arg(format!("exec ip -o -ts monitor {objects} > {file}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("ip monitor");
        let t0 = Instant::now();
        while !subscribed(ns, child.id(), mask) {
            assert!(t0.elapsed() < STEP, "ip monitor never subscribed");
            thread::sleep(Duration::from_millis(10));
        }
        IpMonitor { child, file }
    }

    /// Waits for a line `last` accepts (it prints each notification when it comes), stops
    /// it, and returns every line.
    fn stop_after(mut self, last: impl Fn(&str) -> bool) -> Vec<String> {
        let t0 = Instant::now();
        let text = loop {
            let text = std::fs::read_to_string(&self.file).unwrap_or_default();
            if text.lines().any(&last) {
                break text;
            }
            assert!(
                t0.elapsed() < STEP,
                "ip monitor never printed the last change: {text}"
            );
            thread::sleep(Duration::from_millis(10));
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
        text.lines().map(str::to_string).collect()
    }
}

impl Drop for IpMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// One line of `ip -o monitor`.
#[derive(Debug, Clone)]
enum IpEvent {
    Link {
        deleted: bool,
        index: u32,
        name: String,
        up: bool,
        lower_up: bool,
        mtu: u32,
        state: String,
        mac: String,
    },
    Addr {
        deleted: bool,
        index: u32,
        addr: String,
        scope: String,
        /// The flags `ip` prints after the scope (`tentative`, `dynamic`, …).
        flags: Vec<String>,
    },
    Route {
        deleted: bool,
        /// `dst tTABLE type proto`, as [`brief`] writes them.
        place: String,
        dev: Option<String>,
        gateway: Option<String>,
        /// `(gateway, dev, weight)`.
        nexthops: Vec<(String, String, String)>,
    },
}

/// The address flags `ip` prints, in its order (`permanent` only as the absence of `dynamic`).
const ADDR_FLAGS: [&str; 13] = [
    "secondary",
    "temporary",
    "nodad",
    "optimistic",
    "dadfailed",
    "home",
    "deprecated",
    "tentative",
    "dynamic",
    "mngtmpaddr",
    "noprefixroute",
    "autojoin",
    "stable-privacy",
];

/// Parses a line of `ip -o -ts monitor` (`[timestamp] ` first; "Deleted " before a removal;
/// the continuation lines joined by `\`).
fn parse_ip_monitor(line: &str) -> IpEvent {
    let rest = line.split_once("] ").map_or(line, |(_, r)| r);
    let (deleted, rest) = match rest.strip_prefix("Deleted ") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let flat = rest.replace('\\', " ");
    let t: Vec<&str> = flat.split_whitespace().collect();
    let after = |key: &str| -> Option<String> {
        t.iter()
            .position(|x| *x == key)
            .and_then(|i| t.get(i + 1))
            .map(|v| v.to_string())
    };
    if let Some(index) = t[0].strip_suffix(':').and_then(|i| i.parse().ok()) {
        if t[2].starts_with('<') {
            let flags: Vec<&str> = t[2].trim_matches(['<', '>']).split(',').collect();
            return IpEvent::Link {
                deleted,
                index,
                name: t[1].trim_end_matches(':').split('@').next().unwrap().into(),
                up: flags.contains(&"UP"),
                lower_up: flags.contains(&"LOWER_UP"),
                mtu: after("mtu").and_then(|m| m.parse().ok()).expect("mtu"),
                state: after("state").expect("state").to_lowercase(),
                mac: after("link/ether")
                    .or_else(|| after("link/loopback"))
                    .unwrap_or_default(),
            };
        }
        // The flags follow the scope; an IPv4 address's label follows them.
        let scope_at = t.iter().position(|x| *x == "scope").expect("scope");
        return IpEvent::Addr {
            deleted,
            index,
            addr: t[3].to_string(),
            scope: t[scope_at + 1].to_string(),
            flags: t[scope_at + 2..]
                .iter()
                .take_while(|x| ADDR_FLAGS.contains(x))
                .map(|x| x.to_string())
                .collect(),
        };
    }
    let types = [
        "local",
        "broadcast",
        "multicast",
        "anycast",
        "unreachable",
        "blackhole",
        "prohibit",
        "throw",
        "nat",
    ];
    let (kind, i) = if types.contains(&t[0]) {
        (t[0], 1)
    } else {
        ("unicast", 0)
    };
    let v6 = t[i].contains(':');
    let dst = match t[i] {
        "default" if v6 => "::/0".to_string(),
        "default" => "0.0.0.0/0".to_string(),
        d if d.contains('/') => d.to_string(),
        d => format!("{d}/{}", if v6 { 128 } else { 32 }),
    };
    let table = match after("table").as_deref() {
        None | Some("main") => "254".to_string(),
        Some("local") => "255".to_string(),
        Some("default") => "253".to_string(),
        Some(n) => n.to_string(),
    };
    // iproute2 leaves out `proto boot`, what `ip route add` installs.
    let proto = after("proto").unwrap_or_else(|| "boot".into());
    let first_hop = t.iter().position(|x| *x == "nexthop").unwrap_or(t.len());
    let single = |key: &str| {
        t[..first_hop]
            .iter()
            .position(|x| *x == key)
            .map(|k| t[k + 1].to_string())
    };
    let mut nexthops = Vec::new();
    for (k, _) in t.iter().enumerate().filter(|(_, x)| **x == "nexthop") {
        let end = t[k + 1..]
            .iter()
            .position(|x| *x == "nexthop")
            .map_or(t.len(), |e| k + 1 + e);
        let hop = &t[k + 1..end];
        let get = |key: &str| {
            hop.iter()
                .position(|x| *x == key)
                .map(|j| hop[j + 1].to_string())
                .unwrap_or("-".into())
        };
        nexthops.push((get("via"), get("dev"), get("weight")));
    }
    // A route on a nexthop object: its id is part of the place as the tests write it.
    let nhid = after("nhid")
        .map(|n| format!(" nhid {n}"))
        .unwrap_or_default();
    IpEvent::Route {
        deleted,
        place: format!("{dst} t{table} {kind} {proto}{nhid}"),
        dev: single("dev"),
        gateway: single("via"),
        nexthops,
    }
}

/// Links (ifindex → name) and addresses ((ifindex, address/length) → flags).
type LinksAndAddrs = (BTreeMap<u32, String>, BTreeMap<(u32, String), Vec<String>>);

/// The links (ifindex → name) and addresses ((ifindex, address/length) → flags) `ip -j` lists: where
/// the reference starts.
fn kernel_links_and_addrs(ns: &Netns) -> LinksAndAddrs {
    let a: Value = serde_json::from_str(&ns.run("ip -j addr")).expect("ip -j addr");
    let mut links = BTreeMap::new();
    let mut addrs = BTreeMap::new();
    for link in a.as_array().expect("links") {
        let index = link["ifindex"].as_u64().expect("ifindex") as u32;
        links.insert(index, link["ifname"].as_str().expect("ifname").to_string());
        for ai in link["addr_info"].as_array().into_iter().flatten() {
            let flags = ADDR_FLAGS
                .iter()
                .filter(|f| ai[**f] == true)
                .map(|f| f.to_string())
                .collect();
            addrs.insert(
                (
                    index,
                    format!(
                        "{}/{}",
                        ai["local"].as_str().unwrap_or("?"),
                        ai["prefixlen"]
                    ),
                ),
                flags,
            );
        }
    }
    (links, addrs)
}

/// A route record of lwatch, or a route event of `ip monitor`, in one form: `NEW` for an add
/// or a replace (the text of `ip monitor` does not tell them apart; the oracle's exact
/// records do), `DEL` for a deletion; the place, then device, gateway and nexthops (in order
/// of gateway, as lwatch lists IPv6 ones).
fn route_form(
    new: bool,
    place: &str,
    dev: Option<&str>,
    gateway: Option<&str>,
    hops: &[(String, String, String)],
) -> String {
    let mut t = format!("route {} {place}", if new { "NEW" } else { "DEL" });
    if let Some(d) = dev {
        t += &format!(" dev {d}");
    }
    if let Some(g) = gateway {
        t += &format!(" via {g}");
    }
    let mut hops = hops.to_vec();
    hops.sort();
    for (g, d, w) in hops {
        t += &format!(" nh({g} {d} w{w})");
    }
    t
}

/// A route record in [`route_form`]'s form (`new`: as an add or replace, else a deletion);
/// the nexthop object's id is part of the place.
fn record_route_form(r: &Value, new: bool) -> String {
    let s = |k: &str| r[k].as_str().map(str::to_string);
    let hops: Vec<(String, String, String)> = r["nexthops"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            (
                n["gateway"].as_str().unwrap_or("-").to_string(),
                n["dev"].as_str().unwrap_or("-").to_string(),
                n["weight"].to_string(),
            )
        })
        .collect();
    let place = format!(
        "{} t{} {} {}{}",
        s("dst").unwrap_or_default(),
        r["table"],
        s("route_type").unwrap_or_default(),
        s("protocol").unwrap_or_default(),
        r["nhid"]
            .as_u64()
            .map(|n| format!(" nhid {n}"))
            .unwrap_or_default()
    );
    route_form(
        new,
        &place,
        s("dev").as_deref(),
        s("gateway").as_deref(),
        &hops,
    )
}

/// Holds lwatch's change records (`records`, `present` left out) to `ip monitor`'s events
/// (`lines`): they must be exactly what the events give by the rules lwatch follows. Each
/// event gives the records below, or none, for a stated reason:
///
/// - a link event: `new` for an interface not seen before, `del` for a deletion; otherwise
///   one record per attribute it changed, in lwatch's order: `rename`, `up`/`down` (the UP
///   flag), `carrier` (LOWER_UP), `oper` (the state, only when neither of those two changed:
///   they explain it), `mtu`, `address`. An event that changes none of them gives nothing:
///   the kernel sends `RTM_NEWLINK` for changes lwatch does not follow, and `ip monitor`
///   prints each;
/// - an address event: `add`; `change` for an address already there whose flags differ, or
///   nothing when they do not (`ip addr change` and a rename repeat `RTM_NEWADDR`, a lifetime
///   changed); `del`, also of an address never announced (the kernel announces no IPv6
///   link-local address while it is tentative, but its deletion);
/// - a route event: `NEW` (add or replace) or `DEL`, or nothing for a route exactly as it is
///   already.
///
/// lwatch writes one more kind: IPv4 routes the kernel removes with no notification when
/// their link goes down or away (`"flushed":true`). For each, `ip monitor` showed the route
/// added and never deleted, and its link going down or away before.
///
/// `ip` names devices from a cache it fills at the first sight of an interface and never
/// updates (after a rename it still prints the old name), so a device in its route and
/// address lines is the interface that ever had that name, named as lwatch names it now.
/// Returns the events that gave nothing, each with its reason.
fn same_as_ip_monitor(
    records: &[Value],
    lines: &[String],
    (mut names, mut addrs): LinksAndAddrs,
) -> Vec<String> {
    let events: Vec<IpEvent> = lines.iter().map(|l| parse_ip_monitor(l)).collect();
    // Every name an interface ever had, for ip's cached names.
    let mut ever: BTreeMap<String, u32> = names.iter().map(|(i, n)| (n.clone(), *i)).collect();
    for e in &events {
        if let IpEvent::Link { index, name, .. } = e {
            ever.insert(name.clone(), *index);
        }
    }
    struct LinkNow {
        name: String,
        up: bool,
        carrier: bool,
        mtu: u32,
        oper: String,
        mac: String,
    }
    let mut links: BTreeMap<u32, LinkNow> = BTreeMap::new();
    let mut routes: BTreeSet<String> = BTreeSet::new();
    let mut want = Vec::new();
    let mut folded = Vec::new();
    let mut gone_links = BTreeSet::new();
    for (line, e) in lines.iter().zip(&events) {
        let now_name = |names: &BTreeMap<u32, String>, ip_name: &str| -> String {
            let index = ever
                .get(ip_name)
                .unwrap_or_else(|| panic!("{ip_name}: {line}"));
            names[index].clone()
        };
        match e.clone() {
            IpEvent::Link {
                deleted,
                index,
                name,
                up,
                lower_up,
                mtu,
                state,
                mac,
            } => {
                let now = LinkNow {
                    name: name.clone(),
                    up,
                    carrier: lower_up,
                    mtu,
                    oper: state.clone(),
                    mac,
                };
                let tail = |n: &LinkNow| {
                    format!(
                        "admin={} carrier={} oper={} mtu={}",
                        n.up, n.carrier, n.oper, n.mtu
                    )
                };
                let mut events = Vec::new();
                if deleted {
                    events.push(format!("link del {name} {}", tail(&now)));
                    links.remove(&index);
                    gone_links.insert(index);
                } else if let Some(old) = links.get(&index) {
                    if old.name != now.name {
                        events.push(format!(
                            "link rename {name} (was {}) {}",
                            old.name,
                            tail(&now)
                        ));
                    }
                    if old.up != now.up {
                        let e = if now.up { "up" } else { "down" };
                        events.push(format!("link {e} {name} {}", tail(&now)));
                        if !now.up {
                            gone_links.insert(index);
                        }
                    }
                    if old.carrier != now.carrier {
                        events.push(format!("link carrier {name} {}", tail(&now)));
                    }
                    if old.oper != now.oper && old.up == now.up && old.carrier == now.carrier {
                        events.push(format!("link oper {name} {}", tail(&now)));
                    }
                    if old.mtu != now.mtu {
                        events.push(format!("link mtu {name} {}", tail(&now)));
                    }
                    if old.mac != now.mac {
                        events.push(format!("link address {name} {}", tail(&now)));
                    }
                    if events.is_empty() {
                        folded.push(format!(
                            "RTM_NEWLINK that changes nothing lwatch follows: {line}"
                        ));
                    }
                    links.insert(index, now);
                } else {
                    events.push(format!("link new {name} {}", tail(&now)));
                    links.insert(index, now);
                }
                names.insert(index, name);
                want.extend(events);
            }
            IpEvent::Addr {
                deleted,
                index,
                addr,
                scope,
                flags,
            } => {
                let key = (index, addr.clone());
                let name = names[&index].clone();
                let shown = |f: &[String]| {
                    if f.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", f.join(" "))
                    }
                };
                if deleted {
                    // Also of an address never announced (an IPv6 link-local still tentative).
                    addrs.remove(&key);
                    want.push(format!("addr del {name} {addr} {scope}{}", shown(&flags)));
                } else {
                    match addrs.insert(key, flags.clone()) {
                        None => {
                            want.push(format!("addr add {name} {addr} {scope}{}", shown(&flags)))
                        }
                        Some(old) if old != flags => want.push(format!(
                            "addr change {name} {addr} {scope}{} (was{})",
                            shown(&flags),
                            shown(&old)
                        )),
                        Some(_) => folded.push(format!(
                            "RTM_NEWADDR for an address already there, its flags as they \
                             are (a repeat, a lifetime changed): {line}"
                        )),
                    }
                }
            }
            IpEvent::Route {
                deleted,
                place,
                dev,
                gateway,
                nexthops,
            } => {
                let dev = dev.map(|d| now_name(&names, &d));
                let hops: Vec<(String, String, String)> = nexthops
                    .into_iter()
                    .map(|(g, d, w)| (g, now_name(&names, &d), w))
                    .collect();
                let form = |new| route_form(new, &place, dev.as_deref(), gateway.as_deref(), &hops);
                let key = form(true);
                if deleted {
                    routes.remove(&key);
                    want.push(form(false));
                } else if !routes.insert(key) {
                    folded.push(format!("RTM_NEWROUTE for a route exactly as it is: {line}"));
                } else {
                    want.push(form(true));
                }
            }
        }
    }
    // lwatch's records in the same form; the flushed ones apart.
    let mut got = Vec::new();
    for r in records.iter().filter(|r| r["event"] != "present") {
        if r["type"] != "route" {
            got.push(brief(r));
            continue;
        }
        let form = record_route_form(r, r["event"] != "del");
        if r["flushed"] == true {
            // Seen added by ip monitor, never deleted, on a link that went down or away.
            assert!(
                routes.contains(&record_route_form(r, true)),
                "flushed {form}: ip monitor never showed it, or showed it deleted"
            );
            let index = r["ifindex"]
                .as_u64()
                .or_else(|| r["nexthops"][0]["ifindex"].as_u64())
                .expect("ifindex") as u32;
            assert!(
                gone_links.contains(&index),
                "flushed {form}: its link never went down"
            );
            continue;
        }
        got.push(form);
    }
    assert_eq!(
        got, want,
        "lwatch's records against what ip monitor's events give; folded by rule: {folded:#?}"
    );
    folded
}

/// The address records of `records`, in [`brief`]'s form.
fn addr_briefs(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["type"] == "addr")
        .map(brief)
        .collect()
}

/// Address flags and their changes, with DAD on (the lab turns it off): a duplicate address
/// is added `tentative` and then `dadfailed` (not a successful add), a unique one loses
/// `tentative` when DAD ends, a finite lifetime makes it `dynamic`, a preferred lifetime set
/// to 0 or running out (IPv4 and IPv6: the kernel's own timers) makes it `deprecated` and a
/// new one takes that back; a lifetime changed but still finite writes nothing. Each step's
/// address records exactly, and every record against `ip monitor` (see
/// [`same_as_ip_monitor`]: a `change` for each address line whose flags differ from the
/// line before).
#[test]
fn address_flags_and_their_changes_are_what_ip_monitor_shows() {
    require_root();
    let ns = Netns::new("lwatch-addr-flags");
    let peer = Netns::new("lwatch-addr-flags-peer");
    let monitor = IpMonitor::start(&ns);
    let reference = kernel_links_and_addrs(&ns);
    let mut w = Watch::start(&ns, &[]);
    let mut all = Vec::new();
    // The link's records come with the first step's.
    ns.run(&format!(
        "ip link add v0 type veth peer name v1 netns {}",
        peer.name
    ));
    ns.sysctl("net.ipv6.conf.v0.accept_dad", "1");
    peer.run("ip link set v1 up && ip addr add fd01::1/64 dev v1 nodad");
    ns.run("ip link set v0 up");
    let mut run = |w: &mut Watch, cmd: &str, expect: &[&str]| {
        ns.run(cmd);
        let last = expect.last().expect("a record").to_string();
        let records = w.until(cmd, |r| brief(r) == last);
        assert_eq!(addr_briefs(&records), expect, "{cmd}");
        all.extend(records);
    };
    run(
        &mut w,
        "ip addr add fd01::1/64 dev v0",
        &[
            "addr add v0 fd01::1/64 global [tentative]",
            "addr change v0 fd01::1/64 global [dadfailed tentative] (was [tentative])",
        ],
    );
    run(
        &mut w,
        "ip addr add fd01::5/64 dev v0",
        &[
            "addr add v0 fd01::5/64 global [tentative]",
            "addr change v0 fd01::5/64 global (was [tentative])",
        ],
    );
    run(
        &mut w,
        "ip addr change fd01::5/64 dev v0 valid_lft 100 preferred_lft 50",
        &["addr change v0 fd01::5/64 global [dynamic] (was)"],
    );
    // Lifetimes alone: ip monitor prints the address again, lwatch writes nothing (the next
    // step's record comes first).
    ns.run("ip addr change fd01::5/64 dev v0 valid_lft 200 preferred_lft 100");
    run(
        &mut w,
        "ip addr change fd01::5/64 dev v0 valid_lft 100 preferred_lft 0",
        &["addr change v0 fd01::5/64 global [deprecated dynamic] (was [dynamic])"],
    );
    run(
        &mut w,
        "ip addr change fd01::5/64 dev v0 valid_lft 100 preferred_lft 50",
        &["addr change v0 fd01::5/64 global [dynamic] (was [deprecated dynamic])"],
    );
    // Preferred lifetimes running out, IPv6 and IPv4.
    run(
        &mut w,
        "ip addr change fd01::5/64 dev v0 valid_lft 100 preferred_lft 1",
        &["addr change v0 fd01::5/64 global [deprecated dynamic] (was [dynamic])"],
    );
    run(
        &mut w,
        "ip addr add 10.0.0.1/24 dev v0 valid_lft 100 preferred_lft 1",
        &[
            "addr add v0 10.0.0.1/24 global [dynamic]",
            "addr change v0 10.0.0.1/24 global [deprecated dynamic] (was [dynamic])",
        ],
    );
    run(
        &mut w,
        "ip addr add 10.99.0.1/32 dev lo",
        &["addr add lo 10.99.0.1/32 global"],
    );
    all.extend(w.until("the last route", |r| r["dst"] == "10.99.0.1/32"));
    w.stop();
    let lines = monitor.stop_after(|l| l.contains("local 10.99.0.1 dev lo"));
    let folded = same_as_ip_monitor(&all, &lines, reference);
    assert!(
        folded
            .iter()
            .any(|f| f.starts_with("RTM_NEWADDR") && f.contains("valid_lft 200sec")),
        "ip monitor shows the lifetime change lwatch folds: {folded:#?}"
    );
}

/// The kernel announces no `RTM_NEWADDR` for an IPv6 link-local address while it is
/// tentative, but announces its deletion when its link goes during DAD. A watch started
/// after the address was there (it read it) and one running all along (it never heard of
/// it) both write the `del`; `ip monitor` shows the deletion too.
#[test]
fn a_tentative_address_deleted_before_it_was_announced_is_a_del_whenever_lwatch_started() {
    require_root();
    let ns = Netns::new("lwatch-tentative-del");
    let monitor = IpMonitor::start(&ns);
    let reference = kernel_links_and_addrs(&ns);
    let mut early = Watch::start(&ns, &[]);
    // A link-local address whose DAD takes about ten seconds (addr_gen_mode last: set
    // before accept_dad, the address comes without DAD).
    ns.run("ip link add v0 type veth peer name v1");
    for (key, value) in [
        ("accept_dad", "1"),
        ("dad_transmits", "10"),
        ("addr_gen_mode", "0"),
    ] {
        ns.sysctl(&format!("net.ipv6.conf.v0.{key}"), value);
    }
    ns.run("ip link set v1 up && ip link set v0 up");
    let t0 = Instant::now();
    let ll = loop {
        let a: Value =
            serde_json::from_str(&ns.run("ip -j -6 addr show dev v0")).expect("ip -j addr");
        let found = a[0]["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|ai| ai["scope"] == "link" && ai["tentative"] == true)
            .and_then(|ai| ai["local"].as_str().map(str::to_string));
        if let Some(ll) = found {
            break ll;
        }
        assert!(t0.elapsed() < STEP, "no tentative link-local address: {a}");
        thread::sleep(Duration::from_millis(20));
    };
    let mut late = Watch::start(&ns, &["--type", "addr"]);
    ns.run("ip link del v0");
    let want = format!("addr del v0 {ll}/64 link [tentative]");
    let records = late.until("the late watch", |r| r["event"] == "del");
    assert_eq!(addr_briefs(&records), [want.as_str()], "the late watch");
    late.stop();
    let mut all = early.until("the watch running all along", |r| {
        r["type"] == "addr" && r["event"] == "del"
    });
    assert_eq!(
        addr_briefs(&all),
        [want.as_str()],
        "the watch running all along"
    );
    ns.run("ip addr add 10.99.0.1/32 dev lo");
    all.extend(early.until("the last route", |r| r["dst"] == "10.99.0.1/32"));
    early.stop();
    let lines = monitor.stop_after(|l| l.contains("local 10.99.0.1 dev lo"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Deleted") && l.contains(&format!("{ll}/64"))),
        "ip monitor shows the deletion: {lines:#?}"
    );
    same_as_ip_monitor(&all, &lines, reference);
}

#[test]
fn deleting_an_up_link_reports_the_ipv4_routes_that_went_with_it() {
    require_root();
    let ns = Netns::new("lwatch-del");
    ns.run(
        "ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up && \
         ip addr add 10.1.0.1/24 dev w0 && ip route add 10.9.0.0/24 via 10.1.0.2 && \
         ip route add 10.8.0.0/24 via 10.1.0.2 table 1000 && \
         ip route add 10.6.0.0/24 via 10.1.0.2 dev w0 table 1000 metric 5",
    );
    let mut w = Watch::start(&ns, &["--type", "route,link", "--family", "4"]);
    ns.run("ip link del w0");
    // Up to the last link del and the flushed routes: the set, not the order (w1 goes too).
    let mut got = Vec::new();
    let want: BTreeSet<&str> = [
        "route del 10.1.0.0/24 t254 unicast kernel dev w0 flushed",
        "route del 10.9.0.0/24 t254 unicast boot dev w0 via 10.1.0.2 flushed",
        "route del 10.8.0.0/24 t1000 unicast boot dev w0 via 10.1.0.2 flushed",
        "route del 10.6.0.0/24 t1000 unicast boot dev w0 via 10.1.0.2 flushed",
        "route del 10.1.0.255/32 t255 broadcast kernel dev w0 flushed",
    ]
    .into();
    while !want
        .iter()
        .all(|x| got.iter().any(|g: &String| g.as_str() == *x))
    {
        got.extend(w.take(1, "link deletion").iter().map(brief));
    }
    got.extend(w.rest(Duration::from_millis(500)).iter().map(brief));
    // The local route goes with a notification of its own; on a loaded machine the re-read
    // can see it gone first and report it as flushed. Either way: reported once.
    let local = "route del 10.1.0.1/32 t255 local kernel dev w0";
    let flushed: BTreeSet<&str> = got
        .iter()
        .filter(|g| g.ends_with("flushed") && !g.starts_with(local))
        .map(String::as_str)
        .collect();
    assert_eq!(flushed, want, "{got:#?}");
    assert!(got.iter().any(|g| g.starts_with("link del w0")), "{got:#?}");
    assert_eq!(
        got.iter().filter(|g| g.starts_with(local)).count(),
        1,
        "the local route is reported deleted once: {got:#?}"
    );
    w.stop();
}

/// A route as [`Picture`] keeps it: its place (destination, table, metric), then its path:
/// the device and gateway, or every nexthop (`nh(gateway dev)`, in order of gateway as lwatch
/// lists IPv6 paths). Fields come from a record (`prefix` "" for the route, "old_" for the one
/// a replace replaced) or from `ip -j route`, whose members have the same names.
fn route_key(r: &Value, prefix: &str, dst: &str, table: &str) -> String {
    let f = |k: &str| r[format!("{prefix}{k}")].as_str().map(str::to_string);
    let mut key = format!("{dst} t{table}");
    if let Some(m) = r["metric"].as_u64() {
        key += &format!(" m{m}");
    }
    if let Some(n) = r[format!("{prefix}nhid")].as_u64() {
        key += &format!(" nhid {n}");
    }
    if let Some(d) = f("dev") {
        key += &format!(" dev {d}");
    }
    if let Some(g) = f("gateway") {
        key += &format!(" via {g}");
    }
    let mut hops: Vec<String> = r[format!("{prefix}nexthops")]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            format!(
                " nh({} {})",
                n["gateway"].as_str().unwrap_or("-"),
                n["dev"].as_str().unwrap_or("-")
            )
        })
        .collect();
    hops.sort();
    key + &hops.concat()
}

/// The kernel's addresses and routes as `ip -j` lists them, in the form [`Picture`] keeps;
/// routes of `ip -j route show TABLE`.
fn kernel_picture(ns: &Netns, table: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut addrs = BTreeSet::new();
    let a: Value = serde_json::from_str(&ns.run("ip -j addr")).expect("ip -j addr");
    for link in a.as_array().expect("links") {
        for ai in link["addr_info"].as_array().into_iter().flatten() {
            addrs.insert(format!(
                "{} {}/{}",
                link["ifname"].as_str().unwrap_or("?"),
                ai["local"].as_str().unwrap_or("?"),
                ai["prefixlen"]
            ));
        }
    }
    let mut routes = BTreeSet::new();
    for (fam, host) in [("-4", 32), ("-6", 128)] {
        let cmd = format!("ip {fam} -j route show table {table}");
        let out = ns.try_run(&cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // IPv6 has no table until a route is put in it.
        if !out.status.success() && stderr.contains("FIB table does not exist") {
            continue;
        }
        assert!(out.status.success(), "{cmd}: {stderr}");
        let r: Value = serde_json::from_slice(&out.stdout).expect("ip -j route");
        for route in r.as_array().expect("routes") {
            let dst = route["dst"].as_str().unwrap_or("?");
            let dst = match dst {
                "default" if fam == "-4" => "0.0.0.0/0".to_string(),
                "default" => "::/0".to_string(),
                d if d.contains('/') => d.to_string(),
                d => format!("{d}/{host}"),
            };
            let t = match route["table"].as_str() {
                None if table != "all" => table.to_string(),
                None | Some("main") => "254".to_string(),
                Some("local") => "255".to_string(),
                Some("default") => "253".to_string(),
                Some(t) => t.to_string(),
            };
            routes.insert(route_key(route, "", &dst, &t));
        }
    }
    (addrs, routes)
}

/// The state a consumer builds by applying lwatch's records: addresses and routes as sets
/// (a route is its place and path, see [`route_key`]; a replace takes out the route it names).
#[derive(Default)]
struct Picture {
    addrs: BTreeSet<String>,
    routes: BTreeSet<String>,
    /// Nexthop objects by id, as `ip nexthop` prints them (see [`ip_nexthop`]).
    nexthops: BTreeMap<u64, String>,
    resyncs: usize,
}

impl Picture {
    /// The picture `records` give, applied in order from nothing.
    fn of<'a>(records: impl IntoIterator<Item = &'a Value>) -> Picture {
        let mut pic = Picture::default();
        for r in records {
            pic.apply(r);
        }
        pic
    }

    /// Asserts that this is `ns`'s state (`ip -j addr`, every routing table), naming the routes
    /// missing or extra; returns the kernel's addresses and routes.
    fn assert_is_the_kernels(&self, ns: &Netns) -> (BTreeSet<String>, BTreeSet<String>) {
        let (addrs, routes) = kernel_picture(ns, "all");
        assert_eq!(self.addrs, addrs, "addresses");
        assert_eq!(self.nexthops, kernel_nexthops(ns), "nexthop objects");
        let missing: Vec<&String> = routes.difference(&self.routes).collect();
        let extra: Vec<&String> = self.routes.difference(&routes).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "routes: missing {missing:?}, extra {extra:?}"
        );
        (addrs, routes)
    }

    fn apply(&mut self, r: &Value) {
        let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
        let add = matches!(r["event"].as_str(), Some("add" | "present"));
        match r["type"].as_str() {
            Some("addr") => {
                let key = format!("{} {}/{}", s("ifname"), s("addr"), r["prefixlen"]);
                if add {
                    self.addrs.insert(key);
                } else if r["event"] == "del" {
                    self.addrs.remove(&key);
                }
            }
            Some("route") => {
                let (dst, table) = (s("dst"), r["table"].to_string());
                let key = route_key(r, "", &dst, &table);
                match r["event"].as_str() {
                    Some("del") => {
                        self.routes.remove(&key);
                    }
                    Some("replace") => {
                        self.routes.remove(&route_key(r, "old_", &dst, &table));
                        self.routes.insert(key);
                    }
                    _ => {
                        self.routes.insert(key);
                    }
                }
            }
            Some("nexthop") => {
                let id = r["id"].as_u64().expect("id");
                if r["event"] == "del" {
                    self.nexthops.remove(&id);
                } else {
                    self.nexthops.insert(id, ip_nexthop(r, ""));
                }
            }
            Some("resync") => self.resyncs += 1,
            _ => {}
        }
    }
}

/// The kernel's nexthop objects by id, as `ip nexthop` prints them (a resilient group without
/// its bucket figures).
fn kernel_nexthops(ns: &Netns) -> BTreeMap<u64, String> {
    ns.run("ip nexthop")
        .lines()
        .map(nexthop_text)
        .map(|t| {
            let id = t.split_whitespace().nth(1).and_then(|i| i.parse().ok());
            (id.expect("an id"), t)
        })
        .collect()
}

/// A line of `ip nexthop` (or of `ip monitor nexthop`, after its timestamp and `Deleted `) in
/// the form of [`ip_nexthop`].
fn nexthop_text(line: &str) -> String {
    let t = line.trim();
    t.split(" buckets ").next().unwrap_or(t).trim().to_string()
}

/// What one record tells a consumer that holds `pic`, checked against it: an `add` of a
/// route or address the consumer already has, a `replace` of a route it does not have, or a
/// `del` of one it does not have is a record of a change that did not happen (or of one
/// written twice).
fn spurious(pic: &Picture, r: &Value) -> Option<String> {
    let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
    let event = r["event"].as_str()?;
    match r["type"].as_str()? {
        "addr" => {
            let key = format!("{} {}/{}", s("ifname"), s("addr"), r["prefixlen"]);
            let has = pic.addrs.contains(&key);
            ((event == "add" && has) || (event == "del" && !has)).then(|| brief(r))
        }
        "route" => {
            let (dst, table) = (s("dst"), r["table"].to_string());
            let key = route_key(r, "", &dst, &table);
            let old = route_key(r, "old_", &dst, &table);
            let bad = match event {
                "add" => pic.routes.contains(&key),
                "del" => !pic.routes.contains(&key),
                "replace" => !pic.routes.contains(&old),
                _ => false,
            };
            bad.then(|| brief(r))
        }
        _ => None,
    }
}

fn marked_resync(r: &Value) -> &'static str {
    if r["resync"] == true {
        " (resync)"
    } else {
        ""
    }
}

#[test]
fn an_overflow_ends_with_a_resync_after_which_the_picture_is_the_kernels() {
    require_root();
    let ns = Netns::new("lwatch-burst");
    ns.run(
        "ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up && \
         ip addr add 10.1.0.1/24 dev w0",
    );
    // 64 KiB (the kernel doubles it): a burst made while lwatch is stopped overflows it for
    // certain, and the notifications of changes made while it reads everything again have
    // room to queue behind the overflow (the read may already show them).
    let mut w = Watch::start(&ns, &["--dump", "--rcvbuf", "65536"]);
    let mut pic = Picture::default();
    let dump = w.rest(Duration::from_millis(500));
    assert!(
        dump.iter().all(|r| r["event"] == "present"),
        "only the dump"
    );
    for r in &dump {
        pic.apply(r);
    }
    // Phase A, while lwatch is stopped: thousands of routes and addresses added, a third of
    // the routes removed again.
    let mut batch = String::new();
    for i in 0..1500 {
        batch += &format!(
            "route add 10.50.{}.{}/32 dev w0 table 1000\n",
            i / 250,
            i % 250
        );
    }
    for i in 0..300 {
        batch += &format!("addr add 10.60.{}.{}/32 dev w1\n", i / 250, i % 250);
    }
    for i in 0..500 {
        batch += &format!(
            "route del 10.50.{}.{}/32 dev w0 table 1000\n",
            i / 250,
            i % 250
        );
    }
    // Phase B, while lwatch catches up and reads everything again: per destination a route
    // added, replaced (the first route of the place) and another prepended, which the kernel
    // keeps as [prepended, replaced]; addresses added. Only additions and replaces: no `del`
    // may come of them, and no destination more records than its three changes.
    let mut places = String::new();
    for i in 0..1200 {
        let dst = format!("10.70.{}.{}/32", i / 200, i % 200);
        places += &format!(
            "route add {dst} via 10.1.0.2 dev w0 table 1000\n\
             route replace {dst} via 10.1.0.3 dev w0 table 1000\n\
             route prepend {dst} via 10.1.0.4 dev w0 table 1000\n"
        );
        if i % 4 == 0 {
            places += &format!("addr add 10.80.{}.{}/32 dev w1\n", i / 200, i % 200);
        }
    }
    let (a, b) = (
        format!("/tmp/{}.a.batch", ns.name),
        format!("/tmp/{}.b.batch", ns.name),
    );
    std::fs::write(&a, batch).expect("batch file");
    std::fs::write(&b, places).expect("batch file");
    let pid = w.child.id().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    ns.run(&format!("ip -batch {a}"));
    let mut phase_b = ns
        .command("sh")
        .args(["-c", &format!("ip -batch {b}")])
        .spawn()
        .expect("phase B");
    signal("-CONT");
    assert!(phase_b.wait().expect("phase B").success(), "ip -batch {b}");
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    // A last change after the burst: once it shows, lwatch has caught up.
    ns.run("ip addr add 10.99.0.1/32 dev w0");
    let mut records: Vec<Value> = Vec::new();
    let t0 = Instant::now();
    while records.last().is_none_or(|r| r["addr"] != "10.99.0.1") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "lwatch never caught up"
        );
        records.extend(w.take(1, "burst"));
    }
    records.extend(w.rest(Duration::from_millis(500)));
    let mut bad = Vec::new();
    let mut per_place: BTreeMap<String, usize> = BTreeMap::new();
    let mut marked = 0;
    for r in &records {
        bad.extend(spurious(&pic, r));
        marked += usize::from(r["resync"] == true);
        let dst = r["dst"].as_str().unwrap_or("");
        if r["type"] == "route" && dst.starts_with("10.") {
            *per_place
                .entry(format!("{} {dst}", r["table"]))
                .or_default() += 1;
            let deleted = dst.starts_with("10.50.0.") || dst.starts_with("10.50.1.");
            if r["event"] == "del" && !deleted {
                let all: Vec<String> = records
                    .iter()
                    .filter(|x| x["dst"] == r["dst"])
                    .map(|x| format!("{}{}", brief(x), marked_resync(x)))
                    .collect();
                bad.push(format!(
                    "never deleted: {}{}, in {all:?}",
                    brief(r),
                    marked_resync(r)
                ));
            }
        }
        if r["type"] == "addr" && r["event"] == "del" {
            bad.push(format!("never deleted: {}{}", brief(r), marked_resync(r)));
        }
        pic.apply(r);
    }
    assert!(
        pic.resyncs > 0 && marked > 0,
        "the overflow ends with a resync, what changed marked resync:true"
    );
    assert!(
        bad.is_empty(),
        "records of changes that did not happen: {bad:#?}"
    );
    // Routes of 10.50 were each added (and some deleted) once; each 10.70 place had three
    // changes: a loss may merge some into fewer records, never make more.
    let too_many: Vec<(&String, &usize)> = per_place
        .iter()
        .filter(|(k, n)| **n > if k.contains(" 10.70.") { 3 } else { 2 })
        .collect();
    assert!(
        too_many.is_empty(),
        "more records than changes: {too_many:?}"
    );
    let (_, routes) = pic.assert_is_the_kernels(&ns);
    assert_eq!(
        routes.iter().filter(|r| r.contains(" t1000 ")).count(),
        1000 + 2 * 1200
    );
    w.stop();
}

/// `NLM_F_DUMP_INTR`: lwatch stops itself in the middle of its first read of thousands of
/// addresses (`LOPA_LWATCH_TEST_STOP=mid-dump:12`, after the third datagram of each of the
/// first 12 attempts), an address is added at each stop, so the kernel flags 12 dumps in a row
/// interrupted (a table changing faster than it can be read); lwatch keeps reading it again
/// (`LOPA_LWATCH_DEBUG` says how many dumps it retried) and what `--dump` writes is the
/// kernel's picture.
#[test]
fn an_interrupted_dump_is_read_again_and_the_dump_is_the_kernels() {
    require_root();
    let ns = Netns::new("lwatch-intr");
    ns.run("ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up");
    let mut batch = String::new();
    for i in 0..6000 {
        batch += &format!("addr add 10.60.{}.{}/32 dev w1\n", i / 250, i % 250);
    }
    let file = format!("/tmp/{}.batch", ns.name);
    std::fs::write(&file, batch).expect("batch file");
    ns.run(&format!("ip -batch {file}"));
    let _ = std::fs::remove_file(&file);
    let log = format!("/tmp/{}.stderr", ns.name);
    let mut w = Watch::spawn_to(
        &ns,
        &["--dump"],
        &[
            ("LOPA_LWATCH_TEST_STOP", "mid-dump:12"),
            ("LOPA_LWATCH_DEBUG", "1"),
        ],
        Stdio::from(std::fs::File::create(&log).expect("stderr file")),
    );
    for i in 1..=12 {
        w.at_stop(&ns, &format!("ip addr add 10.98.0.{i}/32 dev w0"));
    }
    let mut pic = Picture::default();
    let mut records = w.until("the dump", |r| r["addr"] == "10.98.0.12");
    records.extend(w.rest(Duration::from_secs(1)));
    for r in &records {
        assert_eq!(r["event"], "present", "only the dump: {}", brief(r));
        pic.apply(r);
    }
    w.stop();
    let (retried, stderr) = dump_retries(&log);
    assert_eq!(retried.len(), 2, "two reads of the state: {stderr}");
    assert!(
        retried[0] >= 12,
        "the first read was interrupted 12 times and read again each time: {stderr}"
    );
    let (addrs, _) = pic.assert_is_the_kernels(&ns);
    assert_eq!(addrs.len(), 6000 + 2 + 12, "the lab's addresses");
}

/// How many interrupted dumps each read of the state retried, from lwatch's stderr in file
/// `log` (`LOPA_LWATCH_DEBUG`), and that stderr.
fn dump_retries(log: &str) -> (Vec<u64>, String) {
    let stderr = std::fs::read_to_string(log).expect("stderr");
    let _ = std::fs::remove_file(log);
    let retried = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("lwatch: debug: state read, "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    (retried, stderr)
}

#[test]
fn filters_select_exactly_what_they_say() {
    require_root();
    let ns = Netns::new("lwatch-filter");
    ns.run("ip link add w0 type veth peer name x0 && ip link set w0 up && ip link set x0 up");
    let changes = "ip addr add 10.1.0.1/24 dev w0 && ip addr add fd01::1/64 dev w0 && \
                   ip addr add 10.2.0.1/24 dev x0 && \
                   ip route add 10.8.1.0/24 via 10.1.0.2 table 1000 && \
                   ip route add 10.8.0.0/16 via 10.1.0.2 && \
                   ip route add 10.9.0.0/24 via 10.2.0.2 table 1000 && \
                   ip -6 route add fd08::/64 via fd01::2 table 1000 && ip link set w0 mtu 1400";
    let run = |args: &[&str]| -> Vec<String> {
        let mut w = Watch::start(&ns, args);
        ns.run(changes);
        let got = w
            .rest(Duration::from_millis(800))
            .iter()
            .map(brief)
            .collect();
        w.stop();
        // Undo, for the next run.
        ns.run(
            "ip addr flush dev w0 && ip addr flush dev x0 && ip route flush table 1000 && \
             ip -6 route flush table 1000 && ip route flush table main && \
             ip link set w0 mtu 1500",
        );
        got
    };
    assert_eq!(
        run(&["--type", "route", "--table", "1000"]),
        [
            "route add 10.8.1.0/24 t1000 unicast boot dev w0 via 10.1.0.2",
            "route add 10.9.0.0/24 t1000 unicast boot dev x0 via 10.2.0.2",
            "route add fd08::/64 t1000 unicast boot dev w0 via fd01::2",
        ]
    );
    assert_eq!(
        run(&["--type", "route", "--dst", "10.8.0.0/16"]),
        [
            "route add 10.8.1.0/24 t1000 unicast boot dev w0 via 10.1.0.2",
            "route add 10.8.0.0/16 t254 unicast boot dev w0 via 10.1.0.2",
        ]
    );
    assert_eq!(
        run(&["--type", "addr,link", "--interface", "w*", "--family", "6"]),
        [
            "addr add w0 fd01::1/64 global [tentative]",
            "addr change w0 fd01::1/64 global (was [tentative])",
            "link mtu w0 admin=true carrier=true oper=up mtu=1400",
        ]
    );
    assert_eq!(
        run(&["--type", "addr", "--interface", "x0"]),
        ["addr add x0 10.2.0.1/24 global"]
    );
}

/// The filters on nexthop objects, neighbours and rules: `--family` passes objects of the
/// family and groups (they have none), `--interface` objects by their device and groups
/// always, neighbours by their interface, rules by their iif or oif; without `--type`
/// neighbours and rules are not followed at all (nor written), objects are.
#[test]
fn filters_on_objects_neighbours_and_rules_select_what_they_say() {
    require_root();
    let ns = Netns::new("lwatch-filter-nh");
    ns.run(
        "ip link add w0 type veth peer name x0 && ip link set w0 up && ip link set x0 up && \
         ip addr add 10.1.0.1/24 dev w0 && ip addr add fd01::1/64 dev w0 nodad && \
         ip addr add 10.2.0.1/24 dev x0",
    );
    let changes = "ip nexthop add id 1 via 10.1.0.2 dev w0 && \
                   ip nexthop add id 2 via 10.2.0.2 dev x0 && \
                   ip nexthop add id 6 via fd01::2 dev w0 && ip nexthop add id 10 group 1/2 && \
                   ip neigh add 10.1.0.50 lladdr 02:00:00:00:00:50 dev w0 && \
                   ip neigh add 10.2.0.50 lladdr 02:00:00:00:00:51 dev x0 && \
                   ip rule add iif w0 table 100 pref 100 && ip rule add oif x0 table 200 pref 200 && \
                   ip -6 rule add iif x0 table 300 pref 300";
    let run = |args: &[&str]| -> Vec<String> {
        let mut w = Watch::start(&ns, args);
        ns.run(changes);
        let got = w
            .rest(Duration::from_millis(800))
            .iter()
            .map(brief)
            .collect();
        w.stop();
        ns.run(
            "ip nexthop flush && ip neigh flush nud permanent dev w0 && \
             ip neigh flush nud permanent dev x0 && ip rule del pref 100 && \
             ip rule del pref 200 && ip -6 rule del pref 300",
        );
        got
    };
    assert_eq!(
        run(&["--type", "nexthop", "--family", "6"]),
        [
            "nexthop add id 6 via fd01::2 dev w0 scope link",
            "nexthop add id 10 group 1/2",
        ]
    );
    assert_eq!(
        run(&["--type", "nexthop,neigh,rule", "--interface", "x0"]),
        [
            "nexthop add id 2 via 10.2.0.2 dev x0 scope link",
            "nexthop add id 10 group 1/2",
            "neigh add 10.2.0.50 dev x0 lladdr 02:00:00:00:00:51 PERMANENT",
            "rule add 200:\tfrom all oif x0 lookup 200",
            "rule add 300:\tfrom all iif x0 lookup 300",
        ]
    );
    assert_eq!(
        run(&["--type", "neigh,rule", "--family", "4", "--interface", "w0"]),
        [
            "neigh add 10.1.0.50 dev w0 lladdr 02:00:00:00:00:50 PERMANENT",
            "rule add 100:\tfrom all iif w0 lookup 100",
        ]
    );
    // Without --type: objects, no neighbours, no rules.
    let all = run(&[]);
    assert_eq!(
        all.iter().filter(|r| r.starts_with("nexthop add")).count(),
        4,
        "{all:#?}"
    );
    assert!(
        all.iter()
            .all(|r| !r.starts_with("neigh") && !r.starts_with("rule")),
        "{all:#?}"
    );
}

/// Every interface name a record names: its interface, device, nexthops' devices, and the
/// old ones of a rename or a replace.
fn names_in(r: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in ["ifname", "old_ifname", "dev", "old_dev"] {
        out.extend(r[k].as_str().map(str::to_string));
    }
    for k in ["nexthops", "old_nexthops"] {
        for n in r[k].as_array().into_iter().flatten() {
            out.extend(n["dev"].as_str().map(str::to_string));
        }
    }
    out
}

/// `--interface GLOB` keeps a watcher of an interface told when a route moves off it (a
/// replace whose old route had a nexthop through it) and when it is renamed to a name the
/// pattern no longer matches: both pass by the old route and the old name. Held to an
/// unfiltered lwatch (the filtered records are exactly those that name a matching interface
/// anywhere) and to `ip monitor`, which shows both changes.
#[test]
fn the_interface_filter_passes_changes_that_take_a_route_or_a_name_away() {
    require_root();
    let ns = Netns::new("lwatch-filter-away");
    ns.run(
        "ip link add rvdx1 type veth peer name p1 && ip link add other0 type veth peer name p2 && \
         ip link set rvdx1 up && ip link set p1 up && ip link set other0 up && ip link set p2 up && \
         ip addr add 10.1.0.1/24 dev rvdx1 && ip addr add 10.2.0.1/24 dev other0",
    );
    let monitor = IpMonitor::start(&ns);
    let mut all = Watch::start(&ns, &[]);
    let mut w = Watch::start(&ns, &["--interface", "rvdx*"]);
    let mut got = Vec::new();
    got.extend(step(
        &mut w,
        &ns,
        "ip route add 10.50.0.0/24 nexthop via 10.1.0.2 dev rvdx1 nexthop via 10.2.0.2 dev other0",
        &["route add 10.50.0.0/24 t254 unicast boot nh(10.1.0.2 rvdx1 w1) nh(10.2.0.2 other0 w1)"],
    ));
    // The route leaves rvdx1: no longer through it, yet news to its watcher.
    got.extend(step(
        &mut w,
        &ns,
        "ip route replace 10.50.0.0/24 via 10.2.0.2 dev other0",
        &[
            "route replace 10.50.0.0/24 t254 unicast boot dev other0 via 10.2.0.2 \
           (was nh(10.1.0.2 rvdx1 w1) nh(10.2.0.2 other0 w1))",
        ],
    ));
    // Routes of other0 alone, and changes of the renamed link, are not the watcher's.
    ns.run("ip route add 10.51.0.0/24 via 10.2.0.2 dev other0");
    got.extend(step(
        &mut w,
        &ns,
        "ip link set rvdx1 name rvdz1",
        &["link rename rvdz1 (was rvdx1) admin=true carrier=true oper=up mtu=1500"],
    ));
    ns.run("ip link set rvdz1 mtu 1400");
    got.extend(step(
        &mut w,
        &ns,
        "ip link add rvdx9 type veth peer name p9",
        &["link new rvdx9 admin=false carrier=false oper=down mtu=1500"],
    ));
    w.assert_quiet_for(Duration::from_millis(300));
    w.stop();
    let everything = all.until("the unfiltered watch", |r| r["ifname"] == "rvdx9");
    all.stop();
    let want: Vec<String> = everything
        .iter()
        .filter(|r| names_in(r).iter().any(|n| n.starts_with("rvdx")))
        .map(brief)
        .collect();
    assert_eq!(got.iter().map(brief).collect::<Vec<_>>(), want);
    let lines = monitor.stop_after(|l| l.contains("rvdx9"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("10.50.0.0/24 via 10.2.0.2 dev other0")),
        "ip monitor shows the replace: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(": rvdz1@p1:")),
        "ip monitor shows the rename: {lines:#?}"
    );
}

/// One line of InfluxDB line protocol (no escaped spaces or commas in these): the measurement,
/// the tags and the fields by key.
fn influx(line: &str) -> (String, BTreeMap<String, String>, BTreeMap<String, String>) {
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 3, "{line}");
    let pairs = |s: &str| -> BTreeMap<String, String> {
        s.split(',')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{kv}: {line}"));
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let (measurement, tags) = parts[0].split_once(',').expect("tags");
    (measurement.to_string(), pairs(tags), pairs(parts[1]))
}

/// `--format influx` writes the paths of a multipath route (one tag or field per nexthop
/// member and index, and a count) and those of the route a replace replaced; they are the
/// nexthops `ip monitor` shows for the same notifications.
#[test]
fn influx_lines_carry_the_nexthops_of_multipath_routes_and_replaces() {
    require_root();
    let ns = Netns::new("lwatch-influx");
    ns.run(
        "ip link add w0 type veth peer name x0 && ip link set w0 up && ip link set x0 up && \
         ip addr add 10.1.0.1/24 dev w0",
    );
    let monitor = IpMonitor::start(&ns);
    let w = Watch::start(&ns, &["--format", "influx", "--type", "route"]);
    let next = |what: &str| {
        w.lines
            .recv_timeout(STEP)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    };
    ns.run("ip route add 10.7.0.0/24 nexthop via 10.1.0.2 weight 1 nexthop via 10.1.0.3 weight 2");
    let add = next("the multipath add");
    ns.run("ip route replace 10.7.0.0/24 via 10.1.0.4");
    let replace = next("the replace");
    ns.run("ip route add 10.7.1.0/24 nexthop via 10.1.0.3 nexthop via 10.1.0.2");
    let add2 = next("the last add");
    let lines = monitor.stop_after(|l| l.contains("10.7.1.0/24"));
    // What ip monitor shows of each: (gateway, dev, weight) per nexthop.
    let shown: Vec<Vec<(String, String, String)>> = lines
        .iter()
        .filter_map(|l| match parse_ip_monitor(l) {
            IpEvent::Route { nexthops, .. } => Some(nexthops),
            _ => None,
        })
        .collect();
    assert_eq!(shown.len(), 3, "{lines:#?}");
    let hops = |tags: &BTreeMap<String, String>,
                fields: &BTreeMap<String, String>,
                stem: &str|
     -> Vec<(String, String, String)> {
        let n: usize = fields
            .get(&format!("{stem}_count"))
            .map_or(0, |c| c.trim_end_matches('i').parse().expect("count"));
        (0..n)
            .map(|i| {
                let get = |m: &BTreeMap<String, String>, k: &str| {
                    m.get(&format!("{stem}{i}_{k}"))
                        .cloned()
                        .unwrap_or("-".into())
                };
                (
                    get(tags, "gateway"),
                    get(tags, "dev"),
                    get(fields, "weight").trim_end_matches('i').to_string(),
                )
            })
            .collect()
    };
    let (m, tags, fields) = influx(&add);
    assert_eq!(
        (m.as_str(), tags["event"].as_str()),
        ("route", "add"),
        "{add}"
    );
    assert!(
        !tags.contains_key("gateway") && !tags.contains_key("dev"),
        "{add}"
    );
    assert_eq!(hops(&tags, &fields, "nexthop"), shown[0], "{add}");
    assert_eq!(
        fields["nexthop0_ifindex"], fields["nexthop1_ifindex"],
        "{add}"
    );
    let (_, tags, fields) = influx(&replace);
    assert_eq!(tags["event"], "replace", "{replace}");
    assert_eq!(
        (tags["gateway"].as_str(), tags["dev"].as_str()),
        ("10.1.0.4", "w0")
    );
    assert_eq!(shown[1], [], "a single path: {replace}");
    assert_eq!(hops(&tags, &fields, "nexthop"), shown[1], "{replace}");
    assert_eq!(hops(&tags, &fields, "old_nexthop"), shown[0], "{replace}");
    let (_, tags, fields) = influx(&add2);
    assert_eq!(hops(&tags, &fields, "nexthop"), shown[2], "{add2}");
    w.stop();
}

/// `--format influx` for nexthop objects, routes on them, neighbours and rules: an object's
/// `id` and a rule's `priority` are tags (they say which one), a group's members are flattened
/// by index (`group_count`, `group0_id`, `group0_weight`, …) and are the ones `ip monitor`
/// shows, a route on an object carries `nhid`.
#[test]
fn influx_lines_carry_objects_groups_neighbours_and_rules() {
    require_root();
    let ns = Netns::new("lwatch-influx-nh");
    ns.run(
        "ip link add w0 type veth peer name x0 && ip link set w0 up && ip link set x0 up && \
         ip addr add 10.1.0.1/24 dev w0",
    );
    let monitor = IpMonitor::start_objects(&ns, "nexthop", 0x8000_0000);
    let w = Watch::start(
        &ns,
        &["--format", "influx", "--type", "nexthop,route,neigh,rule"],
    );
    let next = |what: &str| {
        let line = w
            .lines
            .recv_timeout(STEP)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        (influx(&line), line)
    };
    ns.run(
        "ip nexthop add id 1 via 10.1.0.2 dev w0 && ip nexthop add id 2 via 10.1.0.3 dev w0 && \
         ip nexthop add id 10 group 1/2,3",
    );
    let ((m, tags, fields), line) = next("object 1");
    assert_eq!(m, "nexthop", "{line}");
    assert_eq!(
        (
            tags["id"].as_str(),
            tags["gateway"].as_str(),
            tags["dev"].as_str()
        ),
        ("1", "10.1.0.2", "w0"),
        "{line}"
    );
    assert!(fields.contains_key("ifindex"), "{line}");
    next("object 2");
    let ((_, tags, fields), line) = next("the group");
    assert_eq!(
        (tags["id"].as_str(), tags["group_type"].as_str()),
        ("10", "mpath"),
        "{line}"
    );
    let count: usize = fields["group_count"].trim_end_matches('i').parse().unwrap();
    let members: Vec<String> = (0..count)
        .map(|i| {
            let f = |k: &str| {
                fields[&format!("group{i}_{k}")]
                    .trim_end_matches('i')
                    .to_string()
            };
            match f("weight").as_str() {
                "1" => f("id"),
                w => format!("{},{w}", f("id")),
            }
        })
        .collect();
    let group = format!("id 10 group {}", members.join("/"));
    ns.run("ip route add 10.98.0.0/16 nhid 10");
    let ((m, tags, fields), line) = next("the route");
    assert_eq!(
        (m.as_str(), fields["nhid"].as_str()),
        ("route", "10i"),
        "{line}"
    );
    assert_eq!(fields["nexthop_count"], "2i", "{line}");
    assert_eq!(tags["nexthop1_gateway"], "10.1.0.3", "{line}");
    ns.run("ip neigh add 10.1.0.50 lladdr 02:00:00:00:00:50 dev w0");
    let ((m, tags, fields), line) = next("the neighbour");
    assert_eq!(
        (m.as_str(), tags["dst"].as_str(), tags["lladdr"].as_str()),
        ("neigh", "10.1.0.50", "02:00:00:00:00:50"),
        "{line}"
    );
    assert_eq!(fields["state"], "\"PERMANENT\"", "{line}");
    ns.run("ip rule add from 10.66.0.0/24 table 100 pref 100");
    let ((m, tags, fields), line) = next("the rule");
    assert_eq!(
        (m.as_str(), tags["priority"].as_str(), tags["src"].as_str()),
        ("rule", "100", "10.66.0.0/24"),
        "{line}"
    );
    assert_eq!(fields["table"], "100i", "{line}");
    w.stop();
    let lines = monitor.stop_after(|l| l.contains("id 10 group"));
    assert!(
        lines
            .iter()
            .any(|l| nexthop_text(&monitor_text(l).1) == group),
        "{group} is what ip monitor shows: {lines:#?}"
    );
}

#[test]
fn count_and_duration_end_the_run() {
    require_root();
    let ns = Netns::new("lwatch-count");
    let w = Watch::start(&ns, &["-c", "2", "--type", "addr"]);
    ns.run("ip addr add 10.1.0.1/32 dev lo && ip addr add 10.1.0.2/32 dev lo && ip addr add 10.1.0.3/32 dev lo");
    let mut w = w;
    let got: Vec<String> = w
        .rest(Duration::from_millis(800))
        .iter()
        .map(brief)
        .collect();
    assert_eq!(
        got,
        [
            "addr add lo 10.1.0.1/32 global",
            "addr add lo 10.1.0.2/32 global"
        ]
    );
    let status = w.child.wait().expect("wait");
    assert!(status.success(), "{status}");
    let t0 = Instant::now();
    let out = ns
        .command(LWATCH)
        .args(["-w", "0.3"])
        .stdin(Stdio::null())
        .output()
        .expect("lwatch -w");
    assert!(out.status.success());
    assert!(t0.elapsed() < Duration::from_secs(3));
}

/// SIGTERM ends a watch as SIGINT does: at once, status 0, every record written out.
#[test]
fn sigterm_and_sighup_end_the_run_cleanly() {
    require_root();
    let ns = Netns::new("lwatch-term");
    for (sig, addr) in [("TERM", "10.1.0.1"), ("HUP", "10.1.0.2")] {
        let mut w = Watch::start(&ns, &["--type", "addr"]);
        ns.run(&format!("ip addr add {addr}/32 dev lo"));
        let got: Vec<String> = w.take(1, "an address").iter().map(brief).collect();
        assert_eq!(got, [format!("addr add lo {addr}/32 global")], "{sig}");
        w.stop_with(sig);
    }
}

fn one_line_error(out: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.starts_with("lwatch: ") && stderr.lines().count() == 1,
        "one line: {stderr}"
    );
    assert!(stderr.contains(mentions), "{mentions:?} in {stderr}");
}

#[test]
fn bad_input_is_one_clear_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--dst", "10.0.0.0/33"], "10.0.0.0/33"),
        (&["--dst", "banana"], "not a CIDR"),
        (
            &["--type", "neighbor"],
            "possible values: link, addr, route, nexthop, neigh, rule",
        ),
        (&["--family", "5"], "possible values: 4, 6"),
        (&["--table", "main"], "'main'"),
        (&["--table", "0"], "0 is not in 1.."),
        (
            &["--rcvbuf", "99999999999999"],
            "from 1 to 1073741824 bytes",
        ),
        (&["--interface", ""], "must not be empty"),
        (&["--exec", " "], "must not be empty"),
    ];
    for (args, mentions) in cases {
        let out = Command::new(LWATCH)
            .args(*args)
            .stdin(Stdio::null())
            .output()
            .expect("lwatch");
        one_line_error(&out, mentions);
    }
}

#[test]
fn exec_gets_every_record_in_order_without_holding_up_the_stream() {
    require_root();
    let ns = Netns::new("lwatch-exec");
    let file = format!("/tmp/{}.exec", ns.name);
    let _ = std::fs::remove_file(&file);
    // Each command takes half a second: stdout must not wait for them.
    let cmd = format!("sleep 0.5; cat >> {file}");
    let mut w = Watch::start(&ns, &["--type", "addr", "--exec", &cmd]);
    ns.run("ip addr add 10.1.0.1/32 dev lo && ip addr add 10.1.0.2/32 dev lo && ip addr add 10.1.0.3/32 dev lo");
    let got = w.take(3, "exec");
    let lines = || std::fs::read_to_string(&file).unwrap_or_default();
    // Had the watch waited for each command, two of them (half a second each) would have
    // finished before the third record reached stdout.
    assert!(
        lines().lines().count() < 2,
        "stdout waited for --exec: {}",
        lines()
    );
    // SIGINT lets the queued commands finish.
    w.stop();
    let text = lines();
    let execd: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let _ = std::fs::remove_file(&file);
    assert_eq!(execd, got, "every record, in order, on the commands' stdin");
}

/// IPv6 keeps one route per device for a destination and metric, so a route that moves to
/// another device (`ip -6 route replace`) or becomes multipath (`ip -6 route append`) is
/// found through the message's NLM_F_REPLACE flag and its nexthops: a `replace`, and no
/// stale route left behind (putting the old routes back is an `add` again, which a stale
/// copy would have swallowed as a repeat).
#[test]
fn ipv6_replace_and_append_are_replaces_and_leave_nothing_stale() {
    require_root();
    let ns = Netns::new("lwatch-v6rep");
    ns.run(
        "ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up && \
         ip link add w2 type veth peer name w3 && ip link set w2 up && ip link set w3 up",
    );
    let mut w = Watch::start(
        &ns,
        &["--type", "route", "--family", "6", "--dst", "2001:db8::/32"],
    );
    let a = "2001:db8:1::/64 t254 unicast boot";
    let b = "2001:db8:2::/64 t254 unicast boot";
    step(
        &mut w,
        &ns,
        "ip -6 route add 2001:db8:1::/64 dev w0 metric 100",
        &[&format!("route add {a} dev w0")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route replace 2001:db8:1::/64 dev w1 metric 100",
        &[&format!("route replace {a} dev w1 (was dev w0)")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route add 2001:db8:2::/64 via fe80::2 dev w0",
        &[&format!("route add {b} dev w0 via fe80::2")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route append 2001:db8:2::/64 via fe80::3 dev w1",
        &[&format!(
            "route replace {b} nh(fe80::2 w0 w1) nh(fe80::3 w1 w1) (was dev w0 via fe80::2)"
        )],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route append 2001:db8:2::/64 via fe80::5 dev w1",
        &[&format!(
            "route replace {b} nh(fe80::2 w0 w1) nh(fe80::3 w1 w1) nh(fe80::5 w1 w1) \
             (was nh(fe80::2 w0 w1) nh(fe80::3 w1 w1))"
        )],
    );
    // Deleting one path of a multipath route leaves the others.
    step(
        &mut w,
        &ns,
        "ip -6 route del 2001:db8:2::/64 via fe80::3 dev w1",
        &[&format!(
            "route replace {b} nh(fe80::2 w0 w1) nh(fe80::5 w1 w1) \
             (was nh(fe80::2 w0 w1) nh(fe80::3 w1 w1) nh(fe80::5 w1 w1))"
        )],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route del 2001:db8:2::/64 via fe80::2 dev w0",
        &[&format!(
            "route replace {b} dev w1 via fe80::5 (was nh(fe80::2 w0 w1) nh(fe80::5 w1 w1))"
        )],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route replace 2001:db8:2::/64 via fe80::4 dev w0",
        &[&format!(
            "route replace {b} dev w0 via fe80::4 (was dev w1 via fe80::5)"
        )],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route del 2001:db8:2::/64 via fe80::4 dev w0",
        &[&format!("route del {b} dev w0 via fe80::4")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route add 2001:db8:2::/64 via fe80::2 dev w0",
        &[&format!("route add {b} dev w0 via fe80::2")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route del 2001:db8:1::/64 dev w1 metric 100",
        &[&format!("route del {a} dev w1")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route add 2001:db8:1::/64 dev w0 metric 100",
        &[&format!("route add {a} dev w0")],
    );
    // Two device routes of one metric are two routes; a replace takes the first.
    step(
        &mut w,
        &ns,
        "ip -6 route append 2001:db8:1::/64 dev w1 metric 100",
        &[&format!("route add {a} dev w1")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route replace 2001:db8:1::/64 dev w2 metric 100",
        &[&format!("route replace {a} dev w2 (was dev w0)")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route del 2001:db8:1::/64 dev w1 metric 100",
        &[&format!("route del {a} dev w1")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route append 2001:db8:1::/64 dev w0 metric 100",
        &[&format!("route add {a} dev w0")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route del 2001:db8:1::/64 dev w0 metric 100",
        &[&format!("route del {a} dev w0")],
    );
    step(
        &mut w,
        &ns,
        "ip -6 route del 2001:db8:1::/64 dev w2 metric 100",
        &[&format!("route del {a} dev w2")],
    );
    let extra = w.rest(Duration::from_millis(300));
    assert!(
        extra.is_empty(),
        "{:#?}",
        extra.iter().map(brief).collect::<Vec<_>>()
    );
    assert!(
        !ns.run("ip -6 route show 2001:db8:1::/64").contains("2001"),
        "the kernel has no 2001:db8:1::/64 left either"
    );
    w.stop();
}

/// Several routes share one place (destination, table, TOS, metric): IPv4 keeps every route
/// `ip route append`/`prepend` put there (even one that differs only in its metrics), IPv6
/// one per device and gateway, and after a replace even two identical ones. Each is a route
/// of its own in lwatch's picture: deleting one leaves the others, a replace names the route
/// it replaced (`old_dev`, `old_gateway`, `old_nexthops`), and after every step the picture
/// built from the records equals `ip -j route show table 1000`. Records show one route per
/// path of a place (the first): a second route of the same path (other metrics, the same
/// IPv6 route twice) is no record until the first goes.
#[test]
fn routes_sharing_a_place_are_each_kept_and_a_replace_names_the_route_it_replaced() {
    require_root();
    let ns = Netns::new("lwatch-place");
    ns.run(
        "ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up && \
         ip addr add 10.1.0.1/24 dev w0 && ip addr add 10.2.0.1/24 dev w1",
    );
    let mut w = Watch::start(&ns, &["--dump", "--type", "route", "--table", "1000"]);
    let mut pic = Picture::default();
    let mut step = |cmd: &str, expect: &[&str]| {
        ns.run(cmd);
        let got = w.take(expect.len(), cmd);
        for r in &got {
            pic.apply(r);
        }
        let briefs: Vec<String> = got.iter().map(brief).collect();
        assert_eq!(briefs, expect, "{cmd}");
        let (_, kernel) = kernel_picture(&ns, "1000");
        assert_eq!(pic.routes, kernel, "after {cmd}");
    };
    let v4 = "10.9.0.0/24 t1000 unicast boot dev";
    step(
        "ip route add 10.9.0.0/24 via 10.1.0.2 table 1000",
        &[&format!("route add {v4} w0 via 10.1.0.2")],
    );
    step(
        "ip route append 10.9.0.0/24 via 10.2.0.3 table 1000",
        &[&format!("route add {v4} w1 via 10.2.0.3")],
    );
    step(
        "ip route prepend 10.9.0.0/24 via 10.1.0.4 table 1000",
        &[&format!("route add {v4} w0 via 10.1.0.4")],
    );
    // A replace takes the first route of the place: the prepended one.
    step(
        "ip route replace 10.9.0.0/24 via 10.2.0.5 table 1000",
        &[&format!(
            "route replace {v4} w1 via 10.2.0.5 (was dev w0 via 10.1.0.4)"
        )],
    );
    step(
        "ip route append 10.9.0.0/24 via 10.1.0.2 mtu 1400 table 1000",
        &[],
    );
    assert_eq!(
        ns.run("ip route show table 1000 10.9.0.0/24 via 10.1.0.2")
            .lines()
            .count(),
        2,
        "the kernel holds two routes of that path"
    );
    step(
        "ip route del 10.9.0.0/24 via 10.2.0.3 table 1000",
        &[&format!("route del {v4} w1 via 10.2.0.3")],
    );
    // Without a gateway, the kernel deletes the first route of the place.
    step(
        "ip route del 10.9.0.0/24 table 1000",
        &[&format!("route del {v4} w1 via 10.2.0.5")],
    );
    // The first of the path goes (the kernel does not match metrics): the other one is what
    // the path shows now, then it goes too.
    step(
        "ip route del 10.9.0.0/24 via 10.1.0.2 table 1000",
        &[&format!(
            "route replace {v4} w0 via 10.1.0.2 (was dev w0 via 10.1.0.2)"
        )],
    );
    step(
        "ip route del 10.9.0.0/24 via 10.1.0.2 table 1000",
        &[&format!("route del {v4} w0 via 10.1.0.2")],
    );
    let v6 = "fd09::/64 t1000 unicast boot";
    step(
        "ip -6 route add fd09::/64 dev w0 table 1000",
        &[&format!("route add {v6} dev w0")],
    );
    // A gateway route through the same link is a second route, no sibling of a device route.
    step(
        "ip -6 route append fd09::/64 via fe80::2 dev w0 table 1000",
        &[&format!("route add {v6} dev w0 via fe80::2")],
    );
    step(
        "ip -6 route append fd09::/64 via fe80::3 dev w1 table 1000",
        &[&format!(
            "route replace {v6} nh(fe80::2 w0 w1) nh(fe80::3 w1 w1) (was dev w0 via fe80::2)"
        )],
    );
    step(
        "ip -6 route replace fd09::/64 via fe80::4 dev w0 table 1000",
        &[&format!(
            "route replace {v6} dev w0 via fe80::4 (was nh(fe80::2 w0 w1) nh(fe80::3 w1 w1))"
        )],
    );
    step(
        "ip -6 route del fd09::/64 dev w0 table 1000",
        &[&format!("route del {v6} dev w0")],
    );
    // Two device routes; a replace takes the first, and the two left are the same route
    // (records show it once).
    step(
        "ip -6 route append fd09::/64 dev w0 table 1000 && \
         ip -6 route append fd09::/64 dev w1 table 1000 && \
         ip -6 route replace fd09::/64 dev w1 table 1000",
        &[
            &format!("route add {v6} dev w0"),
            &format!("route add {v6} dev w1"),
            &format!("route replace {v6} dev w1 (was dev w0)"),
        ],
    );
    assert_eq!(
        ns.run("ip -6 route show table 1000 fd09::/64 dev w1")
            .lines()
            .count(),
        2,
        "the kernel holds the same route twice"
    );
    step("ip -6 route del fd09::/64 dev w1 table 1000", &[]);
    step(
        "ip -6 route del fd09::/64 dev w1 table 1000 && \
         ip -6 route del fd09::/64 via fe80::4 table 1000",
        &[
            &format!("route del {v6} dev w1"),
            &format!("route del {v6} dev w0 via fe80::4"),
        ],
    );
    assert!(pic.routes.is_empty(), "{:?}", pic.routes);
    let extra = w.rest(Duration::from_millis(300));
    assert!(
        extra.is_empty(),
        "{:#?}",
        extra.iter().map(brief).collect::<Vec<_>>()
    );
    w.stop();
}

/// The state letter of process `pid` (`T` when stopped), from `/proc/PID/stat`.
fn process_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let after = stat.rsplit_once(") ").expect("stat format").1;
    after.chars().next().expect("state")
}

/// Every record of the changes made so far, and of two last ones: `10.99.0.1/32` and then
/// `10.99.0.2/32` added to lo. The records of the first may come in one batch with others
/// (lwatch writes what one read of its socket gave together, re-reads after); the second is
/// made once the first's are out, so all before it are.
fn records_so_far(w: &mut Watch, ns: &Netns, what: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for addr in ["10.99.0.1", "10.99.0.2"] {
        ns.run(&format!("ip addr add {addr}/32 dev lo"));
        let dst = format!("{addr}/32");
        out.extend(w.until(what, |r| {
            r["type"] == "route" && r["event"] == "add" && r["dst"] == dst.as_str()
        }));
    }
    out
}

/// Whether `r` is the record of a last change [`records_so_far`] makes.
fn last_change(r: &Value) -> bool {
    r["addr"]
        .as_str()
        .is_some_and(|a| a.starts_with("10.99.0."))
        || r["dst"].as_str().is_some_and(|d| d.starts_with("10.99.0."))
}

/// The change records of `records` (the `present` ones left out) in the form the tests
/// compare: those not marked flushed in order, the flushed ones as a set (lwatch finds them by
/// a re-read, after the notifications it has when it looks).
fn changes(records: &[Value]) -> (Vec<String>, BTreeSet<String>) {
    let briefs = records
        .iter()
        .filter(|r| r["event"] != "present")
        .map(brief);
    let (flushed, ordered): (Vec<String>, Vec<String>) =
        briefs.partition(|b| b.ends_with(" flushed"));
    (ordered, flushed.into_iter().collect())
}

/// A change made after lwatch subscribed has its record whether or not lwatch's read of the
/// state already shows it. lwatch is stopped right after subscribing (a test hook), the
/// changes are made, and it goes on: its read now shows them all, and still the records are
/// exactly those of a watch that was running when they were made. The two runs are on twin
/// namespaces set up alike.
#[test]
fn changes_the_read_of_the_state_already_shows_still_get_their_records() {
    require_root();
    let setup = "ip link add w0 type veth peer name w1 && ip link set w0 up && \
                 ip link set w1 up && ip addr add 10.1.0.1/24 dev w0 && \
                 ip addr add 10.2.0.1/24 dev w1 && \
                 ip route add 10.9.0.0/24 via 10.1.0.2 table 1000 && \
                 ip nexthop add id 1 via 10.1.0.2 dev w0 && \
                 ip nexthop add id 2 via 10.1.0.3 dev w0 && ip nexthop add id 10 group 1/2 && \
                 ip route add 10.7.0.0/24 nhid 10 table 1000";
    // Links, addresses and routes changed, some twice, some undone (10.4.0.1), IPv4 routes
    // flushed silently (w1 down), a place changed thrice (10.8.0.0/24); nexthop objects
    // replaced, deleted (a group's member: its route changes silently; an object with a
    // route on it: the route goes silently), and flushed with the routes on them when w0
    // loses its carrier. What the kernel
    // announces a moment later from a work queue (w0 losing its carrier when w1 goes down,
    // the local route of an IPv6 address) is waited for, so it comes before the next change
    // in both runs.
    let changes_made = "ip addr add 10.3.0.1/24 dev w0 && ip link set w0 mtu 1400 && \
                        ip nexthop replace id 1 via 10.1.0.4 dev w0 && ip nexthop del id 2 && \
                        ip nexthop add id 3 via 10.1.0.5 dev w0 && \
                        ip route add 10.6.0.0/24 nhid 3 table 1000 && ip nexthop del id 3 && \
                        ip nexthop add id 4 via 10.1.0.6 dev w0 && \
                        ip route add 10.5.0.0/24 nhid 4 table 1000 && \
                        ip link set w1 down && \
                        until grep -qx lowerlayerdown /sys/class/net/w0/operstate; do \
                            sleep 0.01; done && \
                        ip route add 10.8.0.0/24 via 10.1.0.2 table 1000 && \
                        ip route replace 10.8.0.0/24 via 10.1.0.3 table 1000 && \
                        ip route prepend 10.8.0.0/24 via 10.1.0.4 table 1000 && \
                        ip addr add 10.4.0.1/32 dev w0 && ip addr del 10.4.0.1/32 dev w0 && \
                        ip link set w0 mtu 1300 && ip link add w2 type veth peer name w3 && \
                        ip -6 addr add fd01::1/64 dev w0 && \
                        until ip -6 route show table local | grep -q fd01::1; do \
                            sleep 0.01; done && \
                        ip route del 10.9.0.0/24 table 1000";
    let run = |stopped: bool| -> (Vec<Value>, Netns) {
        let ns = Netns::new(if stopped {
            "lwatch-start-stopped"
        } else {
            "lwatch-start-running"
        });
        ns.run(setup);
        let mut w = if stopped {
            let w = Watch::spawn(&ns, &["--dump"], &[("LOPA_LWATCH_TEST_STOP", "subscribed")]);
            w.at_stop(&ns, changes_made);
            w
        } else {
            let w = Watch::start(&ns, &["--dump"]);
            ns.run(changes_made);
            w
        };
        let records = records_so_far(&mut w, &ns, "the changes");
        w.stop();
        (records, ns)
    };
    let (running, _ns) = run(false);
    let (stopped, ns) = run(true);
    // The stopped watch read the state after the changes: its present records show them.
    let present: Vec<String> = stopped
        .iter()
        .filter(|r| r["event"] == "present")
        .map(brief)
        .collect();
    for shown in [
        "link present w0 admin=true carrier=false oper=lowerlayerdown mtu=1300",
        "link present w2 admin=false carrier=false oper=down mtu=1500",
        "addr present w0 10.3.0.1/24 global",
        "route present 10.8.0.0/24 t1000 unicast boot dev w0 via 10.1.0.4",
    ] {
        assert!(
            present.iter().any(|p| p == shown),
            "{shown} in {present:#?}"
        );
    }
    let (want, want_flushed) = changes(&running);
    let (got, got_flushed) = changes(&stopped);
    assert_eq!(got, want, "the records of a watch that was running");
    assert_eq!(got_flushed, want_flushed, "flushed routes");
    assert!(
        want.iter().any(|c| c.starts_with("link mtu w0"))
            && want_flushed.iter().any(|c| c.contains("10.2.0.0/24")),
        "{want:#?} {want_flushed:#?}"
    );
    // Applied to the present records, they give the kernel's state.
    Picture::of(&stopped).assert_is_the_kernels(&ns);
}

/// lwatch started while a script flaps addresses, routes and the MTU: every change the script
/// made after it saw lwatch's subscription has exactly one record, in order, and the state
/// built from the present records and the changes equals the kernel's.
#[test]
fn a_watch_started_amid_changes_misses_none_and_ends_with_the_kernels_state() {
    require_root();
    let ns = Netns::new("lwatch-flap");
    ns.run(
        "ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up && \
         ip addr add 10.1.0.1/24 dev w0",
    );
    // 5,000 addresses on lo (and their local routes) make each read of the state take a
    // while, so changes often fall between the subscription and the read, and into a dump
    // (flagged NLM_F_DUMP_INTR, which lwatch retries). The hook-driven tests above make the
    // first certain.
    let filler: String = (0..5_000)
        .map(|i| {
            format!(
                "addr add 10.{}.{}.{}/32 dev lo\n",
                100 + i / 65536,
                (i / 256) % 256,
                i % 256
            )
        })
        .collect();
    let batch = format!("/tmp/{}.batch", ns.name);
    std::fs::write(&batch, filler).expect("batch file");
    ns.run(&format!("ip -batch {batch}"));
    let _ = std::fs::remove_file(&batch);
    // Cycle i: address 10.77.x.y/32 and route 10.88.x.y/32 (table 1000) added, MTU 1280+i,
    // then both deleted. Once lwatch's socket shows (groups 80000551), 20 more cycles.
    let script = r#"
        i=0; sub=-1; end=5000
        while [ $i -lt $end ]; do
            if [ $sub -lt 0 ] && grep -q ' 80000551 ' /proc/net/netlink; then
                sub=$i; end=$((i + 20)); echo "sub $i"
            fi
            a=$((i / 250)).$((i % 250))
            ip addr add 10.77.$a/32 dev w0
            ip route add 10.88.$a/32 dev w0 table 1000
            ip link set w0 mtu $((1280 + i))
            ip addr del 10.77.$a/32 dev w0
            ip route del 10.88.$a/32 dev w0 table 1000
            i=$((i + 1))
        done
        echo "end $i"
    "#;
    let flapper = ns
        .command("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .expect("flapper");
    let mut w = Watch::spawn(&ns, &["--dump"], &[("LOPA_LWATCH_DEBUG", "1")]);
    let out = flapper.wait_with_output().expect("flapper");
    let log = String::from_utf8_lossy(&out.stdout);
    let num = |tag: &str| -> usize {
        log.lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| panic!("{tag} in {log}"))
            .trim()
            .parse()
            .expect("a number")
    };
    let (sub, end) = (num("sub "), num("end "));
    assert_eq!(end, sub + 20, "{log}");
    let records = records_so_far(&mut w, &ns, "the flapping");
    w.stop();
    let (ordered, _) = changes(&records);
    for i in sub..end {
        let a = format!("{}.{}", i / 250, i % 250);
        let want = [
            format!("addr add w0 10.77.{a}/32 global"),
            format!("route add 10.88.{a}/32 t1000 unicast boot dev w0"),
            format!(
                "link mtu w0 admin=true carrier=true oper=up mtu={}",
                1280 + i
            ),
            format!("addr del w0 10.77.{a}/32 global"),
            format!("route del 10.88.{a}/32 t1000 unicast boot dev w0"),
        ];
        let at: Vec<Vec<usize>> = want
            .iter()
            .map(|w| {
                ordered
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| *o == w)
                    .map(|(k, _)| k)
                    .collect()
            })
            .collect();
        assert!(
            at.iter().all(|k| k.len() == 1),
            "cycle {i}: each change once: {want:#?} at {at:?} in {ordered:#?}"
        );
        assert!(
            at.windows(2).all(|p| p[0][0] < p[1][0]),
            "cycle {i} in order: {at:?} in {ordered:#?}"
        );
    }
    Picture::of(&records).assert_is_the_kernels(&ns);
    let mtu = records
        .iter()
        .rfind(|r| r["type"] == "link" && r["ifname"] == "w0")
        .map(|r| r["mtu"].clone());
    assert_eq!(mtu, Some(Value::from(1280 + end - 1)), "w0's MTU");
}

/// Changes made between lwatch's first read of the state and its subscription are in neither
/// its first read nor its notifications; only the second read shows them. With changes made
/// there (lwatch stopped after its first read), then after subscribing (stopped again), then
/// after the second read (stopped a third time): every change after subscribing has its
/// record, and the present records and changes give the kernel's state.
#[test]
fn changes_around_the_subscription_end_with_the_kernels_picture() {
    require_root();
    let ns = Netns::new("lwatch-around");
    ns.run(
        "ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up && \
         ip addr add 10.1.0.1/24 dev w0 && \
         ip route add 10.8.0.0/24 via 10.1.0.2 table 1000 && \
         ip route add 10.5.0.0/24 via 10.1.0.2 table 1000",
    );
    let mut w = Watch::spawn(
        &ns,
        &["--dump"],
        &[("LOPA_LWATCH_TEST_STOP", "read,subscribed,dumped")],
    );
    // Before subscribing.
    w.at_stop(
        &ns,
        "ip link set w0 mtu 1400 && ip addr add 10.5.0.1/32 dev w0 && \
         ip route replace 10.8.0.0/24 via 10.1.0.5 table 1000 && \
         ip route add 10.7.0.0/24 via 10.1.0.2 table 1000 && \
         ip route prepend 10.5.0.0/24 via 10.1.0.3 table 1000",
    );
    // Subscribed, not read yet: the read will show these.
    w.at_stop(
        &ns,
        "ip link set w0 mtu 1300 && ip addr del 10.5.0.1/32 dev w0 && \
         ip route append 10.7.0.0/24 via 10.1.0.3 table 1000 && \
         ip route replace 10.5.0.0/24 via 10.1.0.4 table 1000",
    );
    // Read: these come after it.
    w.at_stop(
        &ns,
        "ip route replace 10.8.0.0/24 via 10.1.0.6 table 1000 && \
         ip route add 10.6.0.0/24 via 10.1.0.2 table 1000 && ip link set w0 mtu 1290",
    );
    let records = records_so_far(&mut w, &ns, "the changes");
    w.stop();
    let changed: Vec<Value> = records
        .iter()
        .filter(|r| !last_change(r))
        .cloned()
        .collect();
    let (ordered, flushed) = changes(&changed);
    assert!(flushed.is_empty(), "{flushed:?}");
    let t = "t1000 unicast boot dev w0";
    assert_eq!(
        ordered,
        [
            // Subscribed: the change as it happened (from 1500: the one to 1400 went
            // unnoticed), and the route appended. The address added before subscribing and
            // deleted after it is in neither read: no record.
            "link mtu w0 admin=true carrier=true oper=up mtu=1300".to_string(),
            format!("route add 10.7.0.0/24 {t} via 10.1.0.3"),
            // The replace took the route prepended before subscribing (via .3), which the
            // first read missed: from it the record says via .2 went...
            format!("route replace 10.5.0.0/24 {t} via 10.1.0.4 (was dev w0 via 10.1.0.2)"),
            // After the read: the replace replaced what the read showed.
            format!("route replace 10.8.0.0/24 {t} via 10.1.0.6 (was dev w0 via 10.1.0.5)"),
            format!("route add 10.6.0.0/24 {t} via 10.1.0.2"),
            "link mtu w0 admin=true carrier=true oper=up mtu=1290".to_string(),
            // ... and once the notifications queued are applied, what the records show of
            // the place is put right.
            format!("route add 10.5.0.0/24 {t} via 10.1.0.2"),
        ]
    );
    Picture::of(&records).assert_is_the_kernels(&ns);
}

// ---------------------------------------------------------------------------------------------
// Nexthop objects, neighbours, rules

/// One line of `ip -o -ts monitor`: whether it says `Deleted`, and the rest after the
/// timestamp.
fn monitor_text(line: &str) -> (bool, String) {
    let rest = line.split_once("] ").map_or(line, |(_, r)| r);
    match rest.strip_prefix("Deleted ") {
        Some(r) => (true, r.trim_end().to_string()),
        None => (false, rest.trim_end().to_string()),
    }
}

/// Holds lwatch's nexthop and route records to `ip monitor nexthop route`'s lines, by these
/// rules:
///
/// - a nexthop line: `add` for an id not there, `replace` for one whose line differs, nothing
///   for one exactly as it is; `Deleted`: `del`. lwatch writes a group's change (a member
///   deleted) and deletion (its last member deleted) where the kernel does, right after the
///   member's deletion. A `del` marked flushed has no line: the kernel removes the objects on
///   a link that goes down or loses its carrier without a notification; ip monitor showed it
///   added and never deleted;
/// - a route line: `NEW` or `DEL` as in [`same_as_ip_monitor`] (the nexthop id is part of the
///   place), nothing for a route exactly as it is. lwatch writes more: the `replace` of a
///   route on a group whose members changed (no route line: the kernel says nothing), each
///   for a group ip monitor showed changed; and the `del`, flushed, of a route on an object
///   that went (IPv4: no line; IPv6: the kernel's `Deleted` line follows, and gives nothing).
fn nexthops_and_routes_as_ip_monitor_shows(records: &[Value], lines: &[String]) {
    let mut objects: BTreeMap<String, String> = BTreeMap::new();
    let mut changed_groups = BTreeSet::new();
    let mut want_nh = Vec::new();
    let mut routes: BTreeSet<String> = BTreeSet::new();
    let mut ever_routes = BTreeSet::new();
    let mut want_routes = Vec::new();
    let mut deleted_objects = BTreeSet::new();
    let mut ever_added = BTreeSet::new();
    let mut flushed_objects = BTreeSet::new();
    for line in lines {
        let (deleted, text) = monitor_text(line);
        if text.starts_with("id ") {
            let text = nexthop_text(&text);
            let id = text.split_whitespace().nth(1).expect("id").to_string();
            if deleted {
                objects.remove(&id);
                deleted_objects.insert(id);
                want_nh.push(format!("nexthop del {text}"));
            } else {
                ever_added.insert(id.clone());
                match objects.insert(id.clone(), text.clone()) {
                    None => want_nh.push(format!("nexthop add {text}")),
                    Some(old) if old != text => {
                        if text.contains(" group ") {
                            changed_groups.insert(id);
                        }
                        want_nh.push(format!("nexthop replace {text}"))
                    }
                    Some(_) => {}
                }
            }
            continue;
        }
        let IpEvent::Route {
            deleted,
            place,
            dev,
            gateway,
            nexthops,
        } = parse_ip_monitor(line)
        else {
            continue;
        };
        let form = |new| route_form(new, &place, dev.as_deref(), gateway.as_deref(), &nexthops);
        let nhid = place.split(" nhid ").nth(1).map(str::to_string);
        if deleted {
            // An IPv6 route on an object that went: lwatch wrote its del with the object.
            if !routes.remove(&form(true)) || nhid.is_some_and(|n| deleted_objects.contains(&n)) {
                continue;
            }
            want_routes.push(form(false));
        } else if routes.insert(form(true)) {
            ever_routes.insert(form(true));
            want_routes.push(form(true));
        }
    }
    let mut got_nh = Vec::new();
    let mut got_routes = Vec::new();
    for r in records {
        match r["type"].as_str() {
            _ if r["event"] == "present" && r["type"] != "route" => {}
            Some("nexthop") if r["flushed"] == true => {
                let id = r["id"].to_string();
                assert!(
                    ever_added.contains(&id) && !deleted_objects.contains(&id),
                    "flushed {}: ip monitor never showed it added, or showed it deleted",
                    ip_nexthop(r, "")
                );
                flushed_objects.insert(id);
            }
            // A group that lost a member flushed with its link: no line either.
            Some("nexthop")
                if r["event"] == "replace"
                    && r["old_group"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|m| flushed_objects.contains(&m["id"].to_string())) =>
            {
                changed_groups.insert(r["id"].to_string());
            }
            Some("nexthop") => {
                let event = r["event"].as_str().unwrap();
                got_nh.push(format!("nexthop {event} {}", ip_nexthop(r, "")));
            }
            Some("route") => {
                let nhid = r["nhid"].as_u64().map(|n| n.to_string());
                let form = record_route_form(r, r["event"] != "del");
                // What was there at the start (the final picture holds those to `ip -j`).
                if r["event"] == "present" {
                    ever_routes.insert(form);
                    continue;
                }
                if r["flushed"] == true {
                    assert!(
                        ever_routes.contains(&record_route_form(r, true)),
                        "flushed {form}: neither ip monitor nor a group's change showed it"
                    );
                    continue;
                }
                if r["event"] == "replace" && !ever_routes.contains(&form) {
                    let group = nhid.expect("a replace ip monitor does not show is on an object");
                    assert!(
                        changed_groups.contains(&group),
                        "{form}: ip monitor shows neither it nor a change of its group"
                    );
                    // The route as its group's change left it, which a later del may name.
                    ever_routes.insert(form);
                    continue;
                }
                got_routes.push(form);
            }
            _ => {}
        }
    }
    // Groups changed or deleted at once by a member's deletion come in lwatch's order of ids,
    // routes replaced at once by an object's change in its order of places, the kernel's
    // notices in its own: compared as sets where they are all of a kind in a row.
    let runs = |v: &[String], kind: fn(&str) -> Option<&str>| -> Vec<BTreeSet<String>> {
        let mut out: Vec<BTreeSet<String>> = Vec::new();
        let mut last = None;
        for f in v {
            let k = kind(f);
            if k.is_some() && k == last {
                out.last_mut().unwrap().insert(f.clone());
            } else {
                out.push([f.clone()].into());
            }
            last = k;
        }
        out
    };
    fn group_event(f: &str) -> Option<&str> {
        f.contains(" group ")
            .then(|| f.split(" id ").next())
            .flatten()
    }
    fn new_route(f: &str) -> Option<&str> {
        f.starts_with("route NEW").then_some("NEW")
    }
    assert_eq!(
        runs(&got_nh, group_event),
        runs(&want_nh, group_event),
        "nexthop records against ip monitor's lines"
    );
    assert_eq!(
        runs(&got_routes, new_route),
        runs(&want_routes, new_route),
        "route records against ip monitor's lines"
    );
}

/// Routes on nexthop objects (FRR's default), against `ip monitor nexthop route` run
/// alongside: objects (single, IPv6, blackhole, groups, a resilient group) each have their
/// record; a route shows its object's id and path; an object replaced replaces its routes'
/// paths, a group that lost a member too (the kernel announces no route change then); deleting
/// an object deletes its routes (IPv4: the kernel sends no RTM_DELROUTE); a link going down
/// or losing its carrier removes its objects and their routes without a notification, and
/// lwatch writes them flushed. Step by step, then against ip monitor, then the picture the
/// records give is the kernel's (routes, addresses and objects).
#[test]
fn routes_on_nexthop_objects_follow_their_objects() {
    require_root();
    let ns = Netns::new("lwatch-nh");
    let peer = Netns::new("lwatch-nh-peer");
    ns.run(&format!(
        "ip link set lo up && \
         ip link add w0 type veth peer name w0p netns {p} && \
         ip link add w1 type veth peer name w1p netns {p} && \
         sysctl -qw net.ipv6.conf.w1.disable_ipv6=1 && \
         ip addr add 10.1.0.1/24 dev w0 && ip addr add fd01::1/64 dev w0 nodad && \
         ip addr add 10.2.0.1/24 dev w1 && ip link set w0 up && ip link set w1 up",
        p = peer.name
    ));
    peer.run("ip link set w0p up && ip link set w1p up");
    thread::sleep(Duration::from_millis(300));
    let monitor = IpMonitor::start_objects(&ns, "link address route nexthop", 0x8000_0551);
    let mut w = Watch::start(&ns, &["--dump"]);
    let mut all = w.rest(Duration::from_millis(500));
    assert!(
        all.iter().all(|r| r["event"] == "present") && !all.is_empty(),
        "{all:#?}"
    );
    let mut run = |w: &mut Watch, ns: &Netns, cmd: &str, expect: &[&str]| {
        all.extend(step(w, ns, cmd, expect));
    };
    run(
        &mut w,
        &ns,
        "ip nexthop add id 1 via 10.1.0.2 dev w0",
        &["nexthop add id 1 via 10.1.0.2 dev w0 scope link"],
    );
    run(
        &mut w,
        &ns,
        "ip nexthop add id 2 via 10.1.0.3 dev w0",
        &["nexthop add id 2 via 10.1.0.3 dev w0 scope link"],
    );
    run(
        &mut w,
        &ns,
        "ip nexthop add id 10 group 1/2,3",
        &["nexthop add id 10 group 1/2,3"],
    );
    run(
        &mut w,
        &ns,
        "ip nexthop add id 11 group 1/2 type resilient buckets 8",
        &["nexthop add id 11 group 1/2 type resilient"],
    );
    run(
        &mut w,
        &ns,
        "ip nexthop add id 4 blackhole",
        &["nexthop add id 4 blackhole"],
    );
    run(
        &mut w,
        &ns,
        "ip route add 10.98.0.0/16 nhid 1",
        &["route add 10.98.0.0/16 t254 unicast boot dev w0 via 10.1.0.2 nhid 1"],
    );
    run(
        &mut w,
        &ns,
        "ip route add 10.97.0.0/16 nhid 10",
        &["route add 10.97.0.0/16 t254 unicast boot nh(10.1.0.2 w0 w1) nh(10.1.0.3 w0 w3) nhid 10"],
    );
    run(
        &mut w,
        &ns,
        "ip route add 10.95.0.0/16 nhid 11 table 1000",
        &["route add 10.95.0.0/16 t1000 unicast boot nh(10.1.0.2 w0 w1) nh(10.1.0.3 w0 w1) nhid 11"],
    );
    run(
        &mut w,
        &ns,
        "ip route add 10.96.0.0/16 nhid 4",
        &["route add 10.96.0.0/16 t254 blackhole boot dev lo nhid 4"],
    );
    run(
        &mut w,
        &ns,
        "ip nexthop add id 6 via fd01::2 dev w0",
        &["nexthop add id 6 via fd01::2 dev w0 scope link"],
    );
    run(
        &mut w,
        &ns,
        "ip -6 route add fd98::/64 nhid 6",
        &["route add fd98::/64 t254 unicast boot dev w0 via fd01::2 nhid 6"],
    );
    // A route moved from one object to another.
    run(
        &mut w,
        &ns,
        "ip route replace 10.98.0.0/16 nhid 2",
        &["route replace 10.98.0.0/16 t254 unicast boot dev w0 via 10.1.0.3 nhid 2 (was dev w0 via 10.1.0.2)"],
    );
    run(
        &mut w,
        &ns,
        "ip route replace 10.98.0.0/16 nhid 1",
        &["route replace 10.98.0.0/16 t254 unicast boot dev w0 via 10.1.0.2 nhid 1 (was dev w0 via 10.1.0.3)"],
    );
    // An object replaced: every route on it, directly or through a group, takes its path.
    run(
        &mut w,
        &ns,
        "ip nexthop replace id 1 via 10.1.0.4 dev w0",
        &[
            "nexthop replace id 1 via 10.1.0.4 dev w0 scope link (was id 1 via 10.1.0.2 dev w0)",
            "route replace 10.97.0.0/16 t254 unicast boot nh(10.1.0.4 w0 w1) nh(10.1.0.3 w0 w3) nhid 10 (was nh(10.1.0.2 w0 w1) nh(10.1.0.3 w0 w3))",
            "route replace 10.98.0.0/16 t254 unicast boot dev w0 via 10.1.0.4 nhid 1 (was dev w0 via 10.1.0.2)",
            "route replace 10.95.0.0/16 t1000 unicast boot nh(10.1.0.4 w0 w1) nh(10.1.0.3 w0 w1) nhid 11 (was nh(10.1.0.2 w0 w1) nh(10.1.0.3 w0 w1))",
        ],
    );
    run(
        &mut w,
        &ns,
        "ip nexthop replace id 6 via fd01::3 dev w0",
        &[
            "nexthop replace id 6 via fd01::3 dev w0 scope link (was id 6 via fd01::2 dev w0)",
            "route replace fd98::/64 t254 unicast boot dev w0 via fd01::3 nhid 6 (was dev w0 via fd01::2)",
        ],
    );
    // A member deleted: its groups lose it, and the routes on them their path through it,
    // with no route notification from the kernel.
    run(
        &mut w,
        &ns,
        "ip nexthop del id 2",
        &[
            "nexthop del id 2 via 10.1.0.3 dev w0 scope link",
            "nexthop replace id 10 group 1 (was id 10 group 1/2,3)",
            "nexthop replace id 11 group 1 type resilient (was id 11 group 1/2)",
            "route replace 10.97.0.0/16 t254 unicast boot dev w0 via 10.1.0.4 nhid 10 (was nh(10.1.0.4 w0 w1) nh(10.1.0.3 w0 w3))",
            "route replace 10.95.0.0/16 t1000 unicast boot dev w0 via 10.1.0.4 nhid 11 (was nh(10.1.0.4 w0 w1) nh(10.1.0.3 w0 w1))",
        ],
    );
    // The last member deleted: the groups go too, and every route on the three.
    run(
        &mut w,
        &ns,
        "ip nexthop del id 1",
        &[
            "nexthop del id 1 via 10.1.0.4 dev w0 scope link",
            "nexthop del id 10 group 1",
            "nexthop del id 11 group 1 type resilient",
            "route del 10.97.0.0/16 t254 unicast boot dev w0 via 10.1.0.4 nhid 10 flushed",
            "route del 10.98.0.0/16 t254 unicast boot dev w0 via 10.1.0.4 nhid 1 flushed",
            "route del 10.95.0.0/16 t1000 unicast boot dev w0 via 10.1.0.4 nhid 11 flushed",
        ],
    );
    run(
        &mut w,
        &ns,
        "ip nexthop del id 6",
        &[
            "nexthop del id 6 via fd01::3 dev w0 scope link",
            "route del fd98::/64 t254 unicast boot dev w0 via fd01::3 nhid 6 flushed",
        ],
    );
    run(
        &mut w,
        &ns,
        "ip nexthop del id 4",
        &[
            "nexthop del id 4 blackhole",
            "route del 10.96.0.0/16 t254 blackhole boot dev lo nhid 4 flushed",
        ],
    );
    // Objects on a link that goes down, and on one that loses its carrier, go silently with
    // their routes (the group on both loses the member on the first).
    run(
        &mut w,
        &ns,
        "ip nexthop add id 21 via 10.2.0.2 dev w1 && ip nexthop add id 22 via 10.1.0.2 dev w0 && \
         ip nexthop add id 20 group 21/22 && ip route add 10.94.0.0/16 nhid 21 && \
         ip route add 10.93.0.0/16 nhid 20 && ip route add 10.92.0.0/16 nhid 22",
        &[
            "nexthop add id 21 via 10.2.0.2 dev w1 scope link",
            "nexthop add id 22 via 10.1.0.2 dev w0 scope link",
            "nexthop add id 20 group 21/22",
            "route add 10.94.0.0/16 t254 unicast boot dev w1 via 10.2.0.2 nhid 21",
            "route add 10.93.0.0/16 t254 unicast boot nh(10.2.0.2 w1 w1) nh(10.1.0.2 w0 w1) nhid 20",
            "route add 10.92.0.0/16 t254 unicast boot dev w0 via 10.1.0.2 nhid 22",
        ],
    );
    run(
        &mut w,
        &ns,
        "ip link set w1 down",
        &[
            "link down w1 admin=false carrier=false oper=down mtu=1500",
            "link carrier w1 admin=false carrier=false oper=down mtu=1500",
            "nexthop replace id 20 group 22 (was id 20 group 21/22)",
            "route replace 10.93.0.0/16 t254 unicast boot dev w0 via 10.1.0.2 nhid 20 (was nh(10.2.0.2 w1 w1) nh(10.1.0.2 w0 w1))",
            "nexthop del id 21 via 10.2.0.2 dev w1 scope link flushed",
            "route del 10.94.0.0/16 t254 unicast boot dev w1 via 10.2.0.2 nhid 21 flushed",
            "route del 10.2.0.0/24 t254 unicast kernel dev w1 flushed",
            "route del 10.2.0.255/32 t255 broadcast kernel dev w1 flushed",
        ],
    );
    let carrier_lost = step(
        &mut w,
        &peer,
        "ip link set w0p down",
        &[
            "link carrier w0 admin=true carrier=false oper=down mtu=1500",
            "nexthop del id 22 via 10.1.0.2 dev w0 scope link flushed",
            "nexthop del id 20 group 22 flushed",
            "route del 10.93.0.0/16 t254 unicast boot dev w0 via 10.1.0.2 nhid 20 flushed",
            "route del 10.92.0.0/16 t254 unicast boot dev w0 via 10.1.0.2 nhid 22 flushed",
        ],
    );
    all.extend(carrier_lost);
    w.assert_quiet_for(Duration::from_millis(500));
    Picture::of(&all).assert_is_the_kernels(&ns);
    ns.run("ip addr add 10.99.0.1/32 dev lo");
    all.extend(w.until("the last route", |r| r["dst"] == "10.99.0.1/32"));
    w.stop();
    let lines = monitor.stop_after(|l| l.contains("local 10.99.0.1 dev lo"));
    nexthops_and_routes_as_ip_monitor_shows(&all, &lines);
}

/// Holds lwatch's `neigh` and `rule` records (`present` left out) to `ip monitor neigh rule`'s
/// lines, each record written in ip's own syntax ([`ip_neigh`], [`ip_rule`]): a neighbour
/// line for an entry not there is an `add`, one whose line differs a `change`, one exactly
/// as it is nothing (the kernel repeats an entry whose probes or timers changed); `Deleted`
/// is a `del`. A rule line is an `add`, `Deleted` a `del`.
fn neighbours_and_rules_as_ip_monitor_shows(records: &[Value], lines: &[String]) {
    let mut entries: BTreeMap<String, String> = records
        .iter()
        .filter(|r| r["type"] == "neigh" && r["event"] == "present")
        .map(|r| {
            let text = ip_neigh(r);
            (text.split(" lladdr ").next().unwrap().to_string(), text)
        })
        .collect();
    let mut want = Vec::new();
    for line in lines {
        let (deleted, text) = monitor_text(line);
        let is_rule = text
            .split_once(':')
            .is_some_and(|(p, _)| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty());
        if is_rule {
            want.push(format!(
                "rule {} {text}",
                if deleted { "del" } else { "add" }
            ));
            continue;
        }
        // `DST dev IF`, then lladdr, flags and state.
        let words: Vec<&str> = text.split_whitespace().collect();
        let key = words[..3.min(words.len())].join(" ");
        if deleted {
            entries.remove(&key);
            want.push(format!("neigh del {text}"));
        } else {
            match entries.insert(key, text.clone()) {
                None => want.push(format!("neigh add {text}")),
                Some(old) if old != text => want.push(format!("neigh change {text}")),
                Some(_) => {}
            }
        }
    }
    let got: Vec<String> = records
        .iter()
        .filter(|r| r["event"] != "present")
        .filter_map(|r| match r["type"].as_str() {
            Some("neigh") => Some(format!("neigh {} {}", r["event"].as_str()?, ip_neigh(r))),
            Some("rule") => Some(format!("rule {} {}", r["event"].as_str()?, ip_rule(r))),
            _ => None,
        })
        .collect();
    assert_eq!(
        got, want,
        "neigh and rule records against ip monitor's lines"
    );
}

/// The picture `records` give of neighbours and rules, as `ip neigh show nud all` and `ip
/// rule show` (both families) print them. NOARP entries are left out: the kernel creates them
/// (`0.0.0.0 dev lo` at the first local packet, multicast ones) without a notification, so
/// neither lwatch nor ip monitor learns of them before a dump.
fn neighbours_and_rules_of(records: &[Value]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut neighs: BTreeMap<String, String> = BTreeMap::new();
    let mut rules = BTreeSet::new();
    for r in records {
        let del = r["event"] == "del";
        match r["type"].as_str() {
            Some("neigh") => {
                let text = ip_neigh(r);
                let key = format!("{} {}", r["dst"], r["ifindex"]);
                if del {
                    neighs.remove(&key);
                } else {
                    neighs.insert(key, text);
                }
            }
            Some("rule") => {
                let text = ip_rule(r);
                if del {
                    rules.remove(&text);
                } else {
                    rules.insert(text);
                }
            }
            _ => {}
        }
    }
    let neighs = neighs.into_values().filter(|n| !n.ends_with(" NOARP"));
    (neighs.collect(), rules)
}

fn kernel_neighbours_and_rules(ns: &Netns) -> (BTreeSet<String>, BTreeSet<String>) {
    // `[detached]`: the rule's interface is gone, a state the kernel announces no change of.
    let lines = |cmd: &str| -> BTreeSet<String> {
        ns.run(cmd)
            .lines()
            .map(|l| l.trim_end().replace(" [detached]", ""))
            .filter(|l| !l.is_empty())
            .collect()
    };
    let mut rules = lines("ip -4 rule show");
    rules.extend(lines("ip -6 rule show"));
    let mut neighs = lines("ip neigh show nud all");
    neighs.retain(|n| !n.ends_with(" NOARP"));
    (neighs, rules)
}

/// `--type neigh,rule` against `ip monitor neigh rule` run alongside: an ARP entry resolved
/// (REACHABLE) and one never answered (FAILED: the kernel announces no INCOMPLETE), entries
/// added, their link-layer address and state changed, deleted (FAILED, then the deletion), an
/// IPv6 router entry; rules of both families with every selector `ip rule` has (source,
/// destination, TOS, fwmark/mask, iif, oif, uid range, IP protocol, ports, not) and every
/// action (lookup, goto, prohibit, suppress_prefixlength), one deleted; then the link deleted
/// with its entries. Step by step, then against ip monitor's lines, and the picture the
/// records give is `ip neigh show nud all` and `ip rule show`.
#[test]
fn neighbours_and_rules_are_what_ip_monitor_shows() {
    require_root();
    let ns = Netns::new("lwatch-neigh");
    let peer = Netns::new("lwatch-neigh-peer");
    ns.run(&format!(
        "ip link set lo up && ip link add v0 type veth peer name v1 netns {} && \
         ip link set v0 up && ip addr add 10.66.0.1/24 dev v0 && \
         ip addr add fd66::1/64 dev v0 nodad",
        peer.name
    ));
    peer.run("ip link set v1 up && ip addr add 10.66.0.2/24 dev v1");
    let v1: Value = serde_json::from_str(&peer.run("ip -j link show v1")).expect("ip -j link");
    let mac = v1[0]["address"].as_str().expect("a MAC").to_string();
    // The IPv6 multicast entries come with the link; let them.
    thread::sleep(Duration::from_millis(500));
    // RTNLGRP_NEIGH (3), IPV4_RULE (8), IPV6_RULE (19).
    let monitor = IpMonitor::start_objects(&ns, "neigh rule", 0x4_0084);
    let mut w = Watch::start(&ns, &["--dump", "--type", "neigh,rule"]);
    let mut all = w.rest(Duration::from_millis(500));
    let present: Vec<String> = all.iter().map(brief).collect();
    for want in [
        "rule present 0:\tfrom all lookup local",
        "rule present 32766:\tfrom all lookup main",
        "rule present 32767:\tfrom all lookup default",
    ] {
        assert!(present.iter().any(|p| p == want), "{want}: {present:#?}");
    }
    let mut run = |w: &mut Watch, cmd: &str, expect: &[&str]| {
        all.extend(step(w, &ns, cmd, expect));
    };
    let reachable = format!("neigh add 10.66.0.2 dev v0 lladdr {mac} REACHABLE");
    run(
        &mut w,
        "bash -c 'echo x > /dev/udp/10.66.0.2/9'",
        &[&reachable],
    );
    // Three unanswered ARP requests a second apart.
    run(
        &mut w,
        "bash -c 'echo x > /dev/udp/10.66.0.9/9'",
        &["neigh add 10.66.0.9 dev v0 FAILED"],
    );
    run(
        &mut w,
        "ip neigh add 10.66.0.50 lladdr 02:00:00:00:00:50 dev v0",
        &["neigh add 10.66.0.50 dev v0 lladdr 02:00:00:00:00:50 PERMANENT"],
    );
    run(
        &mut w,
        "ip neigh change 10.66.0.50 lladdr 02:00:00:00:00:51 dev v0",
        &["neigh change 10.66.0.50 dev v0 lladdr 02:00:00:00:00:51 PERMANENT (was PERMANENT)"],
    );
    run(
        &mut w,
        "ip neigh replace 10.66.0.50 lladdr 02:00:00:00:00:51 dev v0 nud reachable",
        &["neigh change 10.66.0.50 dev v0 lladdr 02:00:00:00:00:51 REACHABLE (was PERMANENT)"],
    );
    run(
        &mut w,
        "ip neigh del 10.66.0.50 dev v0",
        &[
            "neigh change 10.66.0.50 dev v0 FAILED (was REACHABLE)",
            "neigh del 10.66.0.50 dev v0 FAILED",
        ],
    );
    run(
        &mut w,
        "ip -6 neigh add fd66::7 lladdr 02:00:00:00:00:07 dev v0 router nud stale",
        &["neigh add fd66::7 dev v0 lladdr 02:00:00:00:00:07 router STALE"],
    );
    run(
        &mut w,
        "ip rule add from 10.66.0.0/24 table 100 pref 100",
        &["rule add 100:\tfrom 10.66.0.0/24 lookup 100"],
    );
    run(
        &mut w,
        "ip rule add fwmark 0x10/0xff lookup 200",
        &["rule add 99:\tfrom all fwmark 0x10/0xff lookup 200"],
    );
    run(
        &mut w,
        "ip -6 rule add to fd66::/64 table 300 pref 300",
        &["rule add 300:\tfrom all to fd66::/64 lookup 300"],
    );
    run(
        &mut w,
        "ip rule add not iif v0 ipproto tcp dport 22 goto 32766 pref 400",
        &["rule add 400:\tnot from all iif v0 ipproto tcp dport 22 goto 32766"],
    );
    run(
        &mut w,
        "ip rule add from 10.66.0.0/24 uidrange 1000-2000 sport 1000-2000 tos 0x10 oif v0 \
         prohibit pref 500",
        &["rule add 500:\tfrom 10.66.0.0/24 tos 0x10 oif v0 uidrange 1000-2000 sport 1000-2000 prohibit"],
    );
    run(
        &mut w,
        "ip rule add to 10.67.0.0/16 lookup main suppress_prefixlength 0 pref 600",
        &["rule add 600:\tfrom all to 10.67.0.0/16 lookup main suppress_prefixlength 0"],
    );
    run(
        &mut w,
        "ip rule del pref 100",
        &["rule del 100:\tfrom 10.66.0.0/24 lookup 100"],
    );
    assert_eq!(
        neighbours_and_rules_of(&all),
        kernel_neighbours_and_rules(&ns),
        "the picture of neighbours and rules"
    );
    // The link goes, and its entries with it (the rules name it: they stay).
    ns.run("ip link del v0");
    all.extend(w.until("the entries of v0", |r| {
        r["type"] == "neigh" && r["event"] == "del" && r["dst"] == "fd66::7"
    }));
    all.extend(w.rest(Duration::from_millis(500)));
    assert_eq!(
        neighbours_and_rules_of(&all),
        kernel_neighbours_and_rules(&ns),
        "the picture once the link went"
    );
    ns.run("ip rule add from 10.99.0.0/24 table 99 pref 99");
    all.extend(w.until("the last rule", |r| r["priority"] == 99 && r["table"] == 99));
    w.stop();
    let lines = monitor.stop_after(|l| l.contains("from 10.99.0.0/24 lookup 99"));
    neighbours_and_rules_as_ip_monitor_shows(&all, &lines);
}

/// The nexthop objects' dump flagged `NLM_F_DUMP_INTR` (an object added while lwatch is
/// stopped in the middle of it, four times) is read again each time, and the `present`
/// records are the kernel's objects.
#[test]
fn an_interrupted_nexthop_dump_is_read_again_and_the_dump_is_the_kernels() {
    require_root();
    let ns = Netns::new("lwatch-nh-intr");
    ns.run(
        "ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up && \
         ip addr add 10.1.0.1/16 dev w0",
    );
    let mut batch = String::new();
    for i in 0..3000 {
        batch += &format!(
            "nexthop add id {} via 10.1.{}.{} dev w0\n",
            1000 + i,
            1 + i / 250,
            1 + i % 250
        );
    }
    let file = format!("/tmp/{}.batch", ns.name);
    std::fs::write(&file, batch).expect("batch file");
    ns.run(&format!("ip -batch {file}"));
    let _ = std::fs::remove_file(&file);
    let log = format!("/tmp/{}.stderr", ns.name);
    let mut w = Watch::spawn_to(
        &ns,
        &["--dump", "--type", "nexthop"],
        &[
            ("LOPA_LWATCH_TEST_STOP", "mid-dump:4"),
            ("LOPA_LWATCH_DEBUG", "1"),
        ],
        Stdio::from(std::fs::File::create(&log).expect("stderr file")),
    );
    for i in 1..=4 {
        w.at_stop(
            &ns,
            &format!("ip nexthop add id {} via 10.1.200.{i} dev w0", 90000 + i),
        );
    }
    let mut records = w.until("the dump", |r| r["id"] == 90004);
    records.extend(w.rest(Duration::from_secs(1)));
    let mut pic = Picture::default();
    for r in &records {
        assert_eq!(r["event"], "present", "only the dump: {}", brief(r));
        pic.apply(r);
    }
    w.stop();
    let (retried, stderr) = dump_retries(&log);
    assert_eq!(retried.len(), 2, "two reads of the state: {stderr}");
    assert!(
        retried[0] >= 4,
        "the first read was interrupted 4 times and read again each time: {stderr}"
    );
    assert_eq!(pic.nexthops, kernel_nexthops(&ns), "the objects");
    assert_eq!(pic.nexthops.len(), 3004);
}

/// A burst of object, route-on-object, neighbour and rule changes made while lwatch is
/// stopped overflows its receive buffer: it re-reads everything and writes what changed
/// (marked `resync`) and a `resync` record, after which the picture the records give is the
/// kernel's: routes, addresses and objects, and `ip neigh`/`ip rule`. The burst replaces a
/// group (its route is announced), deletes an object (its route goes silently) and a member
/// of another group (that group's route changes silently).
#[test]
fn an_overflow_of_object_neighbour_and_rule_changes_ends_with_the_kernels_picture() {
    require_root();
    let ns = Netns::new("lwatch-nh-burst");
    let peer = Netns::new("lwatch-nh-burst-peer");
    ns.run(&format!(
        "ip link add w0 type veth peer name w0p netns {} && ip link set w0 up && \
         ip addr add 10.1.0.1/16 dev w0",
        peer.name
    ));
    peer.run("ip link set w0p up");
    ns.run(
        "ip nexthop add id 1 via 10.1.0.2 dev w0 && ip nexthop add id 2 via 10.1.0.3 dev w0 && \
         ip nexthop add id 3 via 10.1.0.4 dev w0 && \
         ip nexthop add id 10 group 1/2 && ip nexthop add id 11 group 2/3 && \
         ip route add 10.98.0.0/16 nhid 10 && ip route add 10.97.0.0/16 nhid 1 && \
         ip route add 10.96.0.0/16 nhid 11 && \
         ip rule add from 10.66.0.0/24 table 100 pref 100 && \
         ip neigh add 10.1.0.50 lladdr 02:00:00:00:00:50 dev w0",
    );
    let mut w = Watch::start(
        &ns,
        &[
            "--dump",
            "--rcvbuf",
            "65536",
            "--type",
            "link,addr,route,nexthop,neigh,rule",
        ],
    );
    let mut all = w.rest(Duration::from_millis(500));
    assert!(all.iter().all(|r| r["event"] == "present"), "only the dump");
    // The dump alone is the kernel's picture: objects, routes on them with their paths.
    Picture::of(&all).assert_is_the_kernels(&ns);
    assert_eq!(
        neighbours_and_rules_of(&all),
        kernel_neighbours_and_rules(&ns),
        "the dump's neighbours and rules"
    );
    let mut batch = String::new();
    for i in 0..1500 {
        batch += &format!(
            "route add 10.50.{}.{}/32 dev w0 table 1000\n",
            i / 250,
            i % 250
        );
    }
    batch += "nexthop replace id 10 group 2/3\nnexthop del id 1\nnexthop del id 3\n";
    for i in 0..50 {
        batch += &format!(
            "nexthop add id {} via 10.1.1.{} dev w0\nroute add 10.60.{i}.0/24 nhid {}\n",
            100 + i,
            1 + i,
            100 + i
        );
    }
    for i in 0..30 {
        batch += &format!(
            "rule add fwmark {} table {} pref {}\n",
            i + 1,
            200 + i,
            200 + i
        );
        batch += &format!(
            "neigh add 10.1.2.{} lladdr 02:00:00:00:01:{i:02x} dev w0\n",
            i + 1
        );
    }
    batch += "rule del pref 100\nneigh del 10.1.0.50 dev w0\n";
    let file = format!("/tmp/{}.batch", ns.name);
    std::fs::write(&file, batch).expect("batch file");
    let pid = w.child.id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
    };
    signal("-STOP");
    ns.run(&format!("ip -batch {file}"));
    let _ = std::fs::remove_file(&file);
    signal("-CONT");
    all.extend(w.until("the resync", |r| r["type"] == "resync"));
    all.extend(w.rest(Duration::from_millis(500)));
    w.stop();
    let pic = Picture::of(&all);
    assert!(pic.resyncs >= 1, "a resync");
    pic.assert_is_the_kernels(&ns);
    assert_eq!(
        neighbours_and_rules_of(&all),
        kernel_neighbours_and_rules(&ns),
        "neighbours and rules"
    );
    assert!(
        all.iter()
            .any(|r| r["type"] == "nexthop" && r["resync"] == true),
        "object changes found by the re-read"
    );
}

/// With `net.ipv4.nexthop_compat_mode=0` the kernel sends a route on an object with its id
/// alone, announces no route change when the object is replaced, and no IPv6 route deletion
/// when it goes (measured on 6.18, `ip monitor` alongside): lwatch's records are the same as
/// in compat mode, each route with its object's path resolved.
#[test]
fn without_compat_mode_routes_on_objects_still_have_their_paths_and_changes() {
    require_root();
    let ns = Netns::new("lwatch-nh-nocompat");
    ns.run(
        "sysctl -qw net.ipv4.nexthop_compat_mode=0 && ip link set lo up && \
         ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up && \
         ip addr add 10.1.0.1/24 dev w0 && ip addr add fd01::1/64 dev w0 nodad",
    );
    thread::sleep(Duration::from_millis(300));
    let monitor = IpMonitor::start_objects(&ns, "nexthop route", 0x8000_0440);
    let mut w = Watch::start(&ns, &["--type", "nexthop,route"]);
    let mut run = |cmd: &str, expect: &[&str]| {
        step(&mut w, &ns, cmd, expect);
    };
    run(
        "ip nexthop add id 1 via 10.1.0.2 dev w0 && ip route add 10.98.0.0/16 nhid 1",
        &[
            "nexthop add id 1 via 10.1.0.2 dev w0 scope link",
            "route add 10.98.0.0/16 t254 unicast boot dev w0 via 10.1.0.2 nhid 1",
        ],
    );
    run(
        "ip nexthop add id 6 via fd01::2 dev w0 && ip -6 route add fd98::/64 nhid 6",
        &[
            "nexthop add id 6 via fd01::2 dev w0 scope link",
            "route add fd98::/64 t254 unicast boot dev w0 via fd01::2 nhid 6",
        ],
    );
    run(
        "ip nexthop replace id 1 via 10.1.0.3 dev w0",
        &[
            "nexthop replace id 1 via 10.1.0.3 dev w0 scope link (was id 1 via 10.1.0.2 dev w0)",
            "route replace 10.98.0.0/16 t254 unicast boot dev w0 via 10.1.0.3 nhid 1 (was dev w0 via 10.1.0.2)",
        ],
    );
    run(
        "ip nexthop del id 6",
        &[
            "nexthop del id 6 via fd01::2 dev w0 scope link",
            "route del fd98::/64 t254 unicast boot dev w0 via fd01::2 nhid 6 flushed",
        ],
    );
    run(
        "ip nexthop del id 1",
        &[
            "nexthop del id 1 via 10.1.0.3 dev w0 scope link",
            "route del 10.98.0.0/16 t254 unicast boot dev w0 via 10.1.0.3 nhid 1 flushed",
        ],
    );
    w.assert_quiet_for(Duration::from_millis(300));
    w.stop();
    ns.run("ip nexthop add id 99 via 10.1.0.9 dev w0");
    let lines = monitor.stop_after(|l| l.contains("id 99 via"));
    let routes: Vec<String> = lines
        .iter()
        .map(|l| monitor_text(l))
        .filter(|(_, t)| !t.starts_with("id ") && !t.contains("fe80::"))
        .map(|(deleted, t)| format!("{}{t}", if deleted { "Deleted " } else { "" }))
        .collect();
    // The kernel's whole say about those routes: their adds, with no path.
    assert_eq!(
        routes,
        [
            "10.98.0.0/16 nhid 1",
            "fd98::/64 nhid 6 metric 1024 pref medium"
        ],
        "{lines:#?}"
    );
}

/// Object changes around lwatch's start (stopped by the test hook after its first read,
/// after subscribing, after the second read), with routes on the objects: objects added,
/// replaced and deleted (a group's member, an object with a route on it), a group replaced;
/// the picture the `present` records and the changes give is the kernel's (routes with their
/// objects' paths, and the objects).
#[test]
fn object_changes_around_the_subscription_end_with_the_kernels_picture() {
    require_root();
    let ns = Netns::new("lwatch-nh-around");
    ns.run(
        "ip link add w0 type veth peer name w1 && ip link set w0 up && ip link set w1 up && \
         ip addr add 10.1.0.1/24 dev w0 && \
         ip nexthop add id 1 via 10.1.0.2 dev w0 && ip nexthop add id 2 via 10.1.0.3 dev w0 && \
         ip nexthop add id 10 group 1/2 && ip route add 10.10.0.0/24 nhid 10 && \
         ip route add 10.11.0.0/24 nhid 2",
    );
    let mut w = Watch::spawn(
        &ns,
        &["--dump"],
        &[("LOPA_LWATCH_TEST_STOP", "read,subscribed,dumped")],
    );
    w.at_stop(
        &ns,
        "ip nexthop add id 5 via 10.1.0.5 dev w0 && ip route add 10.50.0.0/24 nhid 5 && \
         ip nexthop replace id 1 via 10.1.0.6 dev w0",
    );
    w.at_stop(
        &ns,
        "ip nexthop del id 2 && ip nexthop add id 7 via 10.1.0.7 dev w0 && \
         ip route add 10.70.0.0/24 nhid 7",
    );
    w.at_stop(
        &ns,
        "ip nexthop replace id 7 via 10.1.0.8 dev w0 && ip nexthop del id 5 && \
         ip nexthop add id 2 via 10.1.0.9 dev w0 && ip nexthop replace id 10 group 1/2 && \
         ip route add 10.11.0.0/24 nhid 2",
    );
    let records = records_so_far(&mut w, &ns, "the changes");
    w.stop();
    let pic = Picture::of(&records);
    pic.assert_is_the_kernels(&ns);
    assert_eq!(pic.nexthops.len(), 4, "{:#?}", pic.nexthops);
}
