//! A tiny network test lab built from Linux network namespaces, veth pairs
//! and nftables. Everything lives in namespaces created by the tests
//! themselves, so no traffic ever reaches a real network and tests can run
//! in parallel. Requires root (see [`require_root`]).

use std::ffi::OsStr;
use std::fs;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-process counter that keeps namespace names unique.
static NETNS_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Serialises `ip netns add`: the very first concurrent calls can race while
/// iproute2 sets up the shared `/run/netns` mount.
static NETNS_ADD_LOCK: Mutex<()> = Mutex::new(());

/// Panics with one clear line ("lab tests need root (network namespaces);
/// run as root or via .ci/run") when the effective uid is not 0.
pub fn require_root() {
    let euid = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|euid| euid.parse::<u32>().ok());
    if euid != Some(0) {
        panic!("lab tests need root (network namespaces); run as root or via .ci/run");
    }
}

/// Runs a command to completion, capturing stdout and stderr; panics only
/// if the program cannot be started at all.
fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {}", cmd, e))
}

/// Runs a command and panics with the command line and its stderr if it
/// fails; returns stdout.
fn check(cmd: &mut Command) -> String {
    let out = output(cmd);
    if !out.status.success() {
        panic!(
            "command failed ({}): {:?}\nstderr: {}\nstdout: {}",
            out.status,
            cmd,
            String::from_utf8_lossy(&out.stderr).trim_end(),
            String::from_utf8_lossy(&out.stdout).trim_end(),
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Turns a test name into something safe for a namespace name.
fn sanitize(test: &str) -> String {
    let s: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() {
        "test".to_owned()
    } else {
        s
    }
}

/// A network namespace with a unique name `lopa-<test>-<pid>-<counter>`, so
/// tests can run in parallel. Loopback is up, IPv6 DAD is disabled and no
/// link-local addresses are generated (`addr_gen_mode=1`), so no link-local
/// noise appears. Every process inside is killed and the namespace deleted
/// on drop (also when the test panics).
pub struct Netns {
    /// The name as shown by `ip netns list`.
    pub name: String,
}

impl Netns {
    /// Creates the namespace, brings up `lo` and applies the quiet IPv6
    /// defaults described on [`Netns`].
    pub fn new(test: &str) -> Netns {
        require_root();
        let n = NETNS_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("lopa-{}-{}-{}", sanitize(test), std::process::id(), n);
        {
            let _guard = NETNS_ADD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            check(Command::new("ip").args(["netns", "add", &name]));
        }
        // From here on, a panic deletes the namespace via Drop.
        let ns = Netns { name };
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.all.addr_gen_mode", "1");
        ns.sysctl("net.ipv6.conf.default.addr_gen_mode", "1");
        ns.run("ip link set lo up");
        ns
    }

    /// Runs `sh -c cmd` inside the namespace; panics with the command and
    /// its stderr on failure; returns stdout.
    pub fn run(&self, cmd: &str) -> String {
        let out = self.try_run(cmd);
        if !out.status.success() {
            panic!(
                "command failed in netns {} ({}): {}\nstderr: {}\nstdout: {}",
                self.name,
                out.status,
                cmd,
                String::from_utf8_lossy(&out.stderr).trim_end(),
                String::from_utf8_lossy(&out.stdout).trim_end(),
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `sh -c cmd` inside the namespace and returns its Output without
    /// panicking on failure.
    pub fn try_run(&self, cmd: &str) -> Output {
        output(self.command("sh").arg("-c").arg(cmd))
    }

    /// Sets a sysctl (dotted key, e.g. `net.ipv4.ip_forward`) inside the
    /// namespace by writing `/proc/sys/...` directly; panics on failure.
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        check(
            self.command("sh")
                .arg("-c")
                .arg(r#"printf '%s\n' "$1" > "$2""#)
                .arg("sh")
                .arg(value)
                .arg(&path),
        );
    }

    /// `ip netns exec <name> <program>` as a Command, for running the tool
    /// under test inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Widens `net.ipv4.ping_group_range` to "0 2147483647" so unprivileged
    /// ICMP datagram sockets work (a new namespace defaults to "1 0", i.e.
    /// disabled).
    pub fn allow_ping_sockets(&self) {
        self.sysctl("net.ipv4.ping_group_range", "0 2147483647");
    }

    /// Enables IPv4 and IPv6 forwarding (router role). Note: to forward
    /// IPv6 the namespace also needs a link-local address on each egress
    /// interface (see [`Routed`]), since [`Netns::new`] generates none.
    pub fn enable_forwarding(&self) {
        self.sysctl("net.ipv4.ip_forward", "1");
        self.sysctl("net.ipv6.conf.all.forwarding", "1");
    }
}

impl Drop for Netns {
    /// Kills every process in the namespace, then deletes it. Never panics.
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if pid.bytes().all(|b| b.is_ascii_digit()) {
                    let _ = Command::new("kill")
                        .args(["-KILL", pid])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `f` on a thread that has entered `ns`'s network namespace: sockets it creates live
/// there, and keep working from any thread afterwards.
pub fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let file = fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        // SAFETY: setns on a namespace file descriptor; affects this thread only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// Adds one CIDR address (IPv4 or IPv6; v6 gets `nodad`) to `iface` in `ns`.
fn add_addr(ns: &Netns, iface: &str, cidr: &str) {
    let mut cmd = Command::new("ip");
    cmd.args(["-n", &ns.name]);
    if cidr.contains(':') {
        cmd.args(["-6", "addr", "add", cidr, "dev", iface, "nodad"]);
    } else {
        cmd.args(["-4", "addr", "add", cidr, "dev", iface]);
    }
    check(&mut cmd);
}

/// Creates a veth pair directly inside the two namespaces (`a_if` in `a`,
/// `b_if` in `b`; nothing is created in the root namespace, so names never
/// collide across tests), assigns the given CIDR addresses (any number,
/// IPv4 or IPv6, v6 with `nodad`), brings both ends up and waits until they
/// pass traffic. Interface names must be at most 15 characters.
pub fn link(a: &Netns, a_if: &str, a_addrs: &[&str], b: &Netns, b_if: &str, b_addrs: &[&str]) {
    for ifname in [a_if, b_if] {
        assert!(
            !ifname.is_empty() && ifname.len() <= 15,
            "interface name {:?} must be 1..=15 characters",
            ifname
        );
    }
    check(Command::new("ip").args([
        "-n", &a.name, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ]));
    for addr in a_addrs {
        add_addr(a, a_if, addr);
    }
    for addr in b_addrs {
        add_addr(b, b_if, addr);
    }
    check(Command::new("ip").args(["-n", &a.name, "link", "set", a_if, "up"]));
    check(Command::new("ip").args(["-n", &b.name, "link", "set", b_if, "up"]));
    wait_link_ready(a, a_if);
    wait_link_ready(b, b_if);
}

/// Waits until `iface` in `ns` is operationally UP with a real qdisc.
/// Right after `ip link set up` the kernel's linkwatch has not yet attached
/// the qdisc (it is still `noop`, which drops everything), so the first
/// ARP/ND packets would be lost and a 1 s ping would time out.
fn wait_link_ready(ns: &Netns, iface: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out =
            check(Command::new("ip").args(["-n", &ns.name, "-o", "link", "show", "dev", iface]));
        if out.contains(" state UP ") && !out.contains(" qdisc noop ") {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{} in netns {} not ready after 5 s: {}",
                iface,
                ns.name,
                out.trim_end()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs an nftables script inside `ns` via `nft -f -`; panics on failure.
fn nft(ns: &Netns, script: &str) {
    use std::io::Write;
    let mut child = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run nft in netns {}: {}", ns.name, e));
    child
        .stdin
        .take()
        .expect("nft stdin")
        .write_all(script.as_bytes())
        .unwrap_or_else(|e| panic!("cannot feed nft in netns {}: {}", ns.name, e));
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("nft in netns {}: {}", ns.name, e));
    if !out.status.success() {
        panic!(
            "nft failed in netns {} ({}):\n{}\nstderr: {}",
            ns.name,
            out.status,
            script,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
}

/// Installs random loss with nftables in `ns`: table `inet lopa_loss`, one
/// chain on `hook` ("input", "output" or "forward") whose rule
/// `[iifname|oifname IFACE] numgen random mod 100 < PCT drop` drops `pct`%
/// of the ICMP/ICMPv6/UDP/TCP packets on `iface` (iifname for input and
/// forward, oifname for output). IPv6 neighbour discovery is exempt, like
/// ARP (which nftables' inet family never sees), so loss hits only the
/// data plane. Calling it again replaces the previous rule set.
pub fn add_loss(ns: &Netns, hook: &str, iface: &str, pct: u32) {
    assert!(pct <= 100, "loss percentage {} > 100", pct);
    let ifmatch = match hook {
        "input" | "forward" => "iifname",
        "output" => "oifname",
        other => panic!(
            "add_loss: unknown hook {:?} (input, output or forward)",
            other
        ),
    };
    // `numgen random mod 100` yields 0..=99 and nft rejects `< 100`, so 100%
    // is an unconditional drop and 0% installs no drop rule at all.
    let chance = match pct {
        100 => String::new(),
        pct => format!("numgen random mod 100 < {} ", pct),
    };
    let drop_rule = if pct == 0 {
        String::new()
    } else {
        format!(
            "{} \"{}\" meta l4proto {{ icmp, ipv6-icmp, udp, tcp }} {}drop",
            ifmatch, iface, chance
        )
    };
    // Creating then deleting the table makes the script work whether or not
    // it already exists; the whole file is applied atomically.
    let script = format!(
        r#"table inet lopa_loss
delete table inet lopa_loss
table inet lopa_loss {{
    chain loss {{
        type filter hook {hook} priority filter; policy accept;
        icmpv6 type {{ nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect }} accept
        {drop_rule}
    }}
}}
"#
    );
    nft(ns, &script);
}

/// Removes the loss installed by [`add_loss`] (no-op if there is none).
pub fn clear_loss(ns: &Netns) {
    nft(ns, "table inet lopa_loss\ndelete table inet lopa_loss\n");
}

/// Two namespaces joined by one veth: `client` eth0 10.0.0.1/24 and
/// fd00::1/64, `server` eth0 10.0.0.2/24 and fd00::2/64.
pub struct Pair {
    /// The namespace that runs the tool under test.
    pub client: Netns,
    /// The namespace that is probed.
    pub server: Netns,
}

impl Pair {
    /// Builds the topology; `test` becomes part of the namespace names.
    pub fn new(test: &str) -> Pair {
        let client = Netns::new(&format!("{}-cli", test));
        let server = Netns::new(&format!("{}-srv", test));
        link(
            &client,
            "eth0",
            &["10.0.0.1/24", "fd00::1/64"],
            &server,
            "eth0",
            &["10.0.0.2/24", "fd00::2/64"],
        );
        Pair { client, server }
    }
}

/// client -- router -- server.
///
/// * client eth0 10.0.1.1/24, fd01::1/64, default routes via 10.0.1.254 /
///   fd01::254;
/// * router eth0 10.0.1.254/24, fd01::254/64 and eth1 10.0.2.254/24,
///   fd02::254/64 (plus fe80::254/64 on both, which IPv6 forwarding
///   needs), forwarding on, ICMP rate limits off; `10.99.0.0/16` and
///   `fd99::/16` are `unreachable` routes, so targets there get ICMP
///   destination-unreachable from 10.0.1.254 / fd01::254;
/// * server eth0 10.0.2.1/24, fd02::1/64, default routes via the router.
pub struct Routed {
    /// The namespace that runs the tool under test.
    pub client: Netns,
    /// The forwarding hop in the middle.
    pub router: Netns,
    /// The namespace that is probed.
    pub server: Netns,
}

impl Routed {
    /// Builds the topology; `test` becomes part of the namespace names.
    pub fn new(test: &str) -> Routed {
        let client = Netns::new(&format!("{}-cli", test));
        let router = Netns::new(&format!("{}-rtr", test));
        let server = Netns::new(&format!("{}-srv", test));
        link(
            &client,
            "eth0",
            &["10.0.1.1/24", "fd01::1/64"],
            &router,
            "eth0",
            &["10.0.1.254/24", "fd01::254/64"],
        );
        link(
            &router,
            "eth1",
            &["10.0.2.254/24", "fd02::254/64"],
            &server,
            "eth0",
            &["10.0.2.1/24", "fd02::1/64"],
        );
        router.enable_forwarding();
        // A router needs a link-local address: the kernel solicits the
        // next hop of a *forwarded* IPv6 packet from a link-local source
        // and silently skips the solicitation when there is none.
        router.run(
            "ip addr add fe80::254/64 dev eth0 nodad && ip addr add fe80::254/64 dev eth1 nodad",
        );
        router.sysctl("net.ipv4.icmp_ratelimit", "0");
        router.sysctl("net.ipv6.icmp.ratelimit", "0");
        // The per-type limits above are not the only ones: ICMP errors also
        // draw from a global token bucket (1000/s, burst 50), which a fast
        // traceroute easily exhausts. ratemask=0 exempts every IPv4 type;
        // IPv6 still uses the shared bucket, so make it huge.
        router.sysctl("net.ipv4.icmp_ratemask", "0");
        router.sysctl("net.ipv4.icmp_msgs_per_sec", "1000000");
        router.sysctl("net.ipv4.icmp_msgs_burst", "1000000");
        router
            .run("ip route add unreachable 10.99.0.0/16 && ip -6 route add unreachable fd99::/16");
        client.run("ip route add default via 10.0.1.254 && ip -6 route add default via fd01::254");
        server.run("ip route add default via 10.0.2.254 && ip -6 route add default via fd02::254");
        Routed {
            client,
            router,
            server,
        }
    }
}

/// A process running in the background (a service under test), killed and reaped on drop.
pub struct Background(pub std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Leaf-spine: two hosts behind two leaves, two spines, ECMP at the leaves (IPv4).
///
/// * `h1` eth0 10.1.1.1/24, default via `leaf1` 10.1.1.254;
/// * `leaf1` eth0 10.1.1.254/24, s1 10.0.11.1/24 (to `spine1` 10.0.11.2), s2 10.0.12.1/24
///   (to `spine2` 10.0.12.2); 10.2.1.0/24 over both spines;
/// * `leaf2` eth0 10.2.1.254/24, s1 10.0.21.1/24 (to `spine1` 10.0.21.2), s2 10.0.22.1/24
///   (to `spine2` 10.0.22.2); 10.1.1.0/24 over both spines;
/// * `h2` eth0 10.2.1.1/24, default via `leaf2` 10.2.1.254;
/// * every router forwards, hashes the 5-tuple only (`fib_multipath_hash_policy=3`,
///   `fib_multipath_hash_fields=0x37`: a flow keeps its path, flows spread), answers from the
///   interface a probe came in on (`icmp_errors_use_inbound_ifaddr=1`, so spine1 shows as
///   10.0.11.2 and spine2 as 10.0.12.2 from h1) with no ICMP rate limit; `h2` is not rate
///   limited either (port unreachables). 10.99.0.0/16 is an `unreachable` route on `leaf1`.
///
/// [`LeafSpine::with_hosts`] adds more hosts behind each leaf (`more1`, `more2`).
pub struct LeafSpine {
    pub h1: Netns,
    pub leaf1: Netns,
    pub spine1: Netns,
    pub spine2: Netns,
    pub leaf2: Netns,
    pub h2: Netns,
    /// Hosts behind `leaf1` after `h1`: the k-th (from 0) has eth0 10.1.(k+2).1/24, default
    /// via `leaf1` eth(k+1) 10.1.(k+2).254. Empty from [`LeafSpine::new`].
    pub more1: Vec<Netns>,
    /// Hosts behind `leaf2` after `h2`, numbered like `more1`: 10.2.(k+2).1/24.
    pub more2: Vec<Netns>,
}

impl LeafSpine {
    /// Builds the topology; `test` becomes part of the namespace names.
    pub fn new(test: &str) -> LeafSpine {
        Self::with_hosts(test, 1)
    }

    /// The same topology with `per_leaf` hosts (1 to 8) behind each leaf: `h1` and `more1`
    /// behind `leaf1`, `h2` and `more2` behind `leaf2`, each host on its own /24, reachable over
    /// both spines from the other leaf.
    pub fn with_hosts(test: &str, per_leaf: usize) -> LeafSpine {
        assert!(
            (1..=8).contains(&per_leaf),
            "{per_leaf} hosts per leaf: 1 to 8"
        );
        let ns = |role: &str| Netns::new(&format!("{test}-{role}"));
        let (h1, leaf1, spine1, spine2, leaf2, h2) =
            (ns("h1"), ns("l1"), ns("s1"), ns("s2"), ns("l2"), ns("h2"));
        link(
            &h1,
            "eth0",
            &["10.1.1.1/24"],
            &leaf1,
            "eth0",
            &["10.1.1.254/24"],
        );
        link(
            &leaf1,
            "s1",
            &["10.0.11.1/24"],
            &spine1,
            "l1",
            &["10.0.11.2/24"],
        );
        link(
            &leaf1,
            "s2",
            &["10.0.12.1/24"],
            &spine2,
            "l1",
            &["10.0.12.2/24"],
        );
        link(
            &leaf2,
            "s1",
            &["10.0.21.1/24"],
            &spine1,
            "l2",
            &["10.0.21.2/24"],
        );
        link(
            &leaf2,
            "s2",
            &["10.0.22.1/24"],
            &spine2,
            "l2",
            &["10.0.22.2/24"],
        );
        link(
            &leaf2,
            "eth0",
            &["10.2.1.254/24"],
            &h2,
            "eth0",
            &["10.2.1.1/24"],
        );
        for r in [&leaf1, &spine1, &spine2, &leaf2, &h2] {
            r.sysctl("net.ipv4.icmp_ratelimit", "0");
            r.sysctl("net.ipv4.icmp_ratemask", "0");
            r.sysctl("net.ipv4.icmp_msgs_per_sec", "1000000");
            r.sysctl("net.ipv4.icmp_msgs_burst", "1000000");
        }
        for r in [&leaf1, &spine1, &spine2, &leaf2] {
            r.enable_forwarding();
            r.sysctl("net.ipv4.fib_multipath_hash_policy", "3");
            r.sysctl("net.ipv4.fib_multipath_hash_fields", "0x37");
            r.sysctl("net.ipv4.icmp_errors_use_inbound_ifaddr", "1");
        }
        h1.run("ip route add default via 10.1.1.254");
        h2.run("ip route add default via 10.2.1.254");
        leaf1.run(
            "ip route add 10.2.1.0/24 nexthop via 10.0.11.2 nexthop via 10.0.12.2 \
             && ip route add unreachable 10.99.0.0/16",
        );
        leaf2.run("ip route add 10.1.1.0/24 nexthop via 10.0.21.2 nexthop via 10.0.22.2");
        spine1.run(
            "ip route add 10.1.1.0/24 via 10.0.11.1 && ip route add 10.2.1.0/24 via 10.0.21.1",
        );
        spine2.run(
            "ip route add 10.1.1.0/24 via 10.0.12.1 && ip route add 10.2.1.0/24 via 10.0.22.1",
        );
        let mut more = [Vec::new(), Vec::new()];
        for k in 0..per_leaf - 1 {
            for (l, leaf) in [(1, &leaf1), (2, &leaf2)] {
                let host = ns(&format!("h{}", 2 * k + 2 + l));
                let net = format!("10.{l}.{}", k + 2);
                link(
                    leaf,
                    &format!("eth{}", k + 1),
                    &[&format!("{net}.254/24")],
                    &host,
                    "eth0",
                    &[&format!("{net}.1/24")],
                );
                host.sysctl("net.ipv4.icmp_ratelimit", "0");
                host.sysctl("net.ipv4.icmp_ratemask", "0");
                host.sysctl("net.ipv4.icmp_msgs_per_sec", "1000000");
                host.sysctl("net.ipv4.icmp_msgs_burst", "1000000");
                host.run(&format!("ip route add default via {net}.254"));
                // The other leaf reaches it over both spines; each spine via this leaf.
                let (far, via1, via2, back1, back2) = if l == 1 {
                    (&leaf2, "10.0.21.2", "10.0.22.2", "10.0.11.1", "10.0.12.1")
                } else {
                    (&leaf1, "10.0.11.2", "10.0.12.2", "10.0.21.1", "10.0.22.1")
                };
                far.run(&format!(
                    "ip route add {net}.0/24 nexthop via {via1} nexthop via {via2}"
                ));
                spine1.run(&format!("ip route add {net}.0/24 via {back1}"));
                spine2.run(&format!("ip route add {net}.0/24 via {back2}"));
                more[l - 1].push(host);
            }
        }
        let [more1, more2] = more;
        LeafSpine {
            h1,
            leaf1,
            spine1,
            spine2,
            leaf2,
            h2,
            more1,
            more2,
        }
    }
}

impl LeafSpine {
    /// IPv6 beside IPv4 (hosts `h1` and `h2` only): every address 10.A.B.C/24 of the lab gets
    /// fd10:A:B::C/64 (`h1` fd10:1:1::1, `spine1` fd10:0:11::2 towards `leaf1`, `h2`
    /// fd10:2:1::1, …), every router a link-local address on each interface (forwarding
    /// needs one), and the same routes: ECMP at the leaves hashing the 5-tuple only
    /// (`net.ipv6.fib_multipath_hash_policy=3`, fields 0x37), fd10:99::/32 `unreachable` on
    /// `leaf1`, no ICMPv6 rate limit. IPv6 has no `icmp_errors_use_inbound_ifaddr`: a router
    /// answers from the interface of its route back to `h1`, so a spine shows as its address
    /// towards `leaf1` (fd10:0:11::2, fd10:0:12::2) and `leaf2` as either of its spine links.
    pub fn add_ipv6(&self) {
        assert!(
            self.more1.is_empty() && self.more2.is_empty(),
            "add_ipv6 covers h1 and h2 only"
        );
        let addrs: [(&Netns, &str, &str); 12] = [
            (&self.h1, "eth0", "fd10:1:1::1"),
            (&self.leaf1, "eth0", "fd10:1:1::254"),
            (&self.leaf1, "s1", "fd10:0:11::1"),
            (&self.spine1, "l1", "fd10:0:11::2"),
            (&self.leaf1, "s2", "fd10:0:12::1"),
            (&self.spine2, "l1", "fd10:0:12::2"),
            (&self.leaf2, "s1", "fd10:0:21::1"),
            (&self.spine1, "l2", "fd10:0:21::2"),
            (&self.leaf2, "s2", "fd10:0:22::1"),
            (&self.spine2, "l2", "fd10:0:22::2"),
            (&self.leaf2, "eth0", "fd10:2:1::254"),
            (&self.h2, "eth0", "fd10:2:1::1"),
        ];
        for (ns, iface, addr) in addrs {
            add_addr(ns, iface, &format!("{addr}/64"));
        }
        let routers: [(&Netns, &str, &[&str]); 4] = [
            (&self.leaf1, "fe80::11", &["eth0", "s1", "s2"]),
            (&self.leaf2, "fe80::12", &["eth0", "s1", "s2"]),
            (&self.spine1, "fe80::21", &["l1", "l2"]),
            (&self.spine2, "fe80::22", &["l1", "l2"]),
        ];
        for (r, ll, ifaces) in routers {
            for iface in ifaces {
                r.run(&format!("ip addr add {ll}/64 dev {iface} nodad"));
            }
            r.sysctl("net.ipv6.fib_multipath_hash_policy", "3");
            r.sysctl("net.ipv6.fib_multipath_hash_fields", "0x37");
        }
        for ns in [
            &self.leaf1,
            &self.spine1,
            &self.spine2,
            &self.leaf2,
            &self.h2,
        ] {
            ns.sysctl("net.ipv6.icmp.ratelimit", "0");
        }
        self.h1.run("ip -6 route add default via fd10:1:1::254");
        self.h2.run("ip -6 route add default via fd10:2:1::254");
        self.leaf1.run(
            "ip -6 route add fd10:2:1::/64 nexthop via fd10:0:11::2 dev s1 \
             nexthop via fd10:0:12::2 dev s2 && ip -6 route add unreachable fd10:99::/32",
        );
        self.leaf2.run(
            "ip -6 route add fd10:1:1::/64 nexthop via fd10:0:21::2 dev s1 \
             nexthop via fd10:0:22::2 dev s2",
        );
        self.spine1.run(
            "ip -6 route add fd10:1:1::/64 via fd10:0:11::1 \
             && ip -6 route add fd10:2:1::/64 via fd10:0:21::1",
        );
        self.spine2.run(
            "ip -6 route add fd10:1:1::/64 via fd10:0:12::1 \
             && ip -6 route add fd10:2:1::/64 via fd10:0:22::1",
        );
    }
}

/// A plain RFC 862 UDP echo service (Python, one datagram at a time) on a dual-stack port:
/// the simplest far end, which knows nothing of lopa. Returns once it is bound.
pub fn python_echo(ns: &Netns, port: u16) -> Background {
    const PY_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
"#;
    let mut child = ns
        .command("python3")
        .args(["-c", PY_ECHO, &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the python echo service");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("the echo service's first line");
    assert_eq!(line.trim(), "ready");
    Background(child)
}

/// stamp-suite 1.0.0 (an independent STAMP implementation, installed by `.ci/run`).
pub const STAMP_SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/peers/bin/stamp-suite");

/// stamp-suite's Session-Reflector in `ns` on `addr` (one address family; IPv6 bare, `fd00::2`)
/// port 862, with `extra` arguments (`--stateful-reflector`, `-K PTP`, …). Returns once it is
/// bound.
pub fn stamp_suite_reflector(ns: &Netns, addr: &str, extra: &[&str]) -> Background {
    assert!(
        std::path::Path::new(STAMP_SUITE).exists(),
        "{STAMP_SUITE} is missing: .ci/run installs it \
         (cargo install stamp-suite --version 1.0.0 --root target/peers)"
    );
    let child = ns
        .command(STAMP_SUITE)
        .args(["-i", "-S", addr, "-o", "862"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stamp-suite");
    let service = Background(child);
    let want = if addr.contains(':') {
        format!("[{addr}]:862 ")
    } else {
        format!("{addr}:862 ")
    };
    wait_for_udp_socket(ns, &want, "stamp-suite");
    service
}

/// Waits (up to 5 s) until `ss -Hluln` in `ns` lists a UDP socket bound to `local` (as ss
/// prints it, with a trailing space: `":862 "`, `"[::1]:862 "`); `who` names the server in
/// the failure.
pub fn wait_for_udp_socket(ns: &Netns, local: &str, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ns.run("ss -Hluln").contains(local) {
        assert!(
            Instant::now() < deadline,
            "{who} did not bind {local}in netns {}",
            ns.name
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A tool run to its end: exit status, the JSON records it wrote, its stderr.
pub struct ToolRun {
    pub status: i32,
    pub records: Vec<serde_json::Value>,
    pub stderr: String,
}

impl ToolRun {
    /// The records of type `kind`.
    pub fn kind(&self, kind: &str) -> Vec<&serde_json::Value> {
        self.records.iter().filter(|r| r["type"] == kind).collect()
    }

    /// The target's own summary over the whole run (not one of its flows').
    pub fn summary(&self, target: &str) -> &serde_json::Value {
        self.records
            .iter()
            .find(|r| {
                r["type"] == "summary"
                    && r["window"] == "total"
                    && r["target"] == target
                    && r.get("flow").is_none()
            })
            .unwrap_or_else(|| panic!("no total summary for {target}: {:?}", self.records))
    }

    /// Probes of the flow with source port `sport` to `target` that timed out after the
    /// flow's last answer: no answer closes their run, so their direction stays unknown.
    pub fn trailing_losses(&self, target: &str, sport: u64) -> u64 {
        let of_flow = |kind: &str| -> Vec<u64> {
            self.kind(kind)
                .iter()
                .filter(|r| r["target"] == target && r["flow"]["sport"].as_u64() == Some(sport))
                .filter_map(|r| r["seq"].as_u64())
                .collect()
        };
        let last = of_flow("reply").into_iter().max().unwrap_or(0);
        of_flow("timeout").into_iter().filter(|&s| s > last).count() as u64
    }
}

/// Runs `program` with `args` in `ns` to its end; every line it writes must be a JSON record.
pub fn run_tool(ns: &Netns, program: &str, args: &[&str]) -> ToolRun {
    require_root();
    let out = ns
        .command(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    ToolRun::of(out)
}

impl ToolRun {
    /// A finished run; every line it wrote must be a JSON record.
    pub fn of(out: Output) -> ToolRun {
        let stdout = String::from_utf8(out.stdout).unwrap();
        ToolRun {
            status: out.status.code().unwrap_or(-1),
            records: stdout
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
                .collect(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// lreflect in `ns` with `args`, returned once it has a UDP socket bound to `port`.
pub fn lreflect_service(ns: &Netns, args: &[&str], port: u16) -> Background {
    let child = ns
        .command(env!("CARGO_BIN_EXE_lreflect"))
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("start lreflect");
    let service = Background(child);
    wait_for_udp_socket(ns, &format!(":{port} "), "lreflect");
    service
}

/// A tool run in `ns` that the test stops (SIGSTOP) while it floods the tool's receive queue
/// with `flood` (a Python program run in `ns`), and continues (SIGCONT) once it has read the
/// kernel's drop count of the tool's socket: the `drops` column of `/proc/net/<table>` (`raw`,
/// `udp`, `icmp`) on the line of `local_port` (the protocol number for raw sockets; `None`: the
/// table's only socket). Returns the run and that count. `LOPA_TEST_RCVBUF` gives the tool a tiny receive queue, so a few thousand
/// datagrams overflow it.
pub fn run_flooded(
    ns: &Netns,
    program: &str,
    args: &[&str],
    flood: &str,
    table: &str,
    local_port: Option<u16>,
) -> (ToolRun, u64) {
    require_root();
    let child = ns
        .command(program)
        .args(args)
        .env("LOPA_TEST_RCVBUF", "4096")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    // `ip netns exec` execs the tool: the child's pid is the tool's. Stopped once its socket is
    // open and its first probe answered (on loopback, at once).
    let pid = child.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ns.run(&format!("cat /proc/net/{table}")).lines().count() < 2 {
        assert!(Instant::now() < deadline, "{program} opened no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    check(Command::new("kill").args(["-STOP", &pid]));
    ns.run(&format!("python3 -c '{flood}'"));
    let proc_table = ns.run(&format!("cat /proc/net/{table}"));
    check(Command::new("kill").args(["-CONT", &pid]));
    let port = local_port.map_or(String::new(), |p| format!(":{p:04X} "));
    let drops: Vec<u64> = proc_table
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| format!("{a} ").ends_with(&port))
        })
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        drops.len(),
        1,
        "one socket on port {local_port:?}:\n{proc_table}"
    );
    let run = ToolRun::of(child.wait_with_output().expect("wait for the tool"));
    (run, drops[0])
}

/// The run [`run_flooded`] stops: two probes 8 s apart, so the tool is idle, its first probe
/// answered, while the test floods it, and has read its queue empty before the second (were the
/// second due while it is stopped, it would leave at once when continued, and its answer find
/// the queue full: rightly counted, but not by the count the test read).
pub const FLOODED_RUN: [&str; 6] = ["-c", "2", "-i", "8", "-W", "1"];

/// ludp or ltwamp (`program`, its flow sockets named `kind`) probing `target` from source port
/// `sport`, flooded with 2,000 UDP datagrams to that port while stopped: the flow's socket
/// overflows, and the run must count it as [`assert_dropped_local_is_the_kernels`] says.
pub fn assert_flow_socket_drops_counted(
    ns: &Netns,
    program: &str,
    target: &str,
    sport: u16,
    kind: &str,
) {
    let flood = format!(
        r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(2000):
    s.sendto(bytes(44), ("127.0.0.1", {sport}))
"#
    );
    let sport_arg = sport.to_string();
    let mut args = vec!["--sport", &sport_arg, target];
    args.extend(FLOODED_RUN);
    let (run, kernel) = run_flooded(ns, program, &args, &flood, "udp", Some(sport));
    let socket = format!("the {kind} socket of flow 0 (source port {sport}, IPv4)");
    assert_dropped_local_is_the_kernels(&run, kernel, &socket);
}

/// A [`run_flooded`] run's account: the queue overflowed, the summary's `dropped_local` is the
/// kernel's count, stderr names `socket`, and the tool's own probes (none sent while it was
/// stopped) count no loss: exit status 0.
pub fn assert_dropped_local_is_the_kernels(run: &ToolRun, kernel: u64, socket: &str) {
    assert!(kernel >= 1000, "the queue overflowed: {kernel}");
    let summary = run.kind("summary")[0];
    assert_eq!(summary["dropped_local"], kernel, "{summary}");
    assert!(summary["sent"].as_u64() > Some(0), "{summary}");
    assert_eq!(summary["sent"], summary["received"], "{summary}");
    assert_eq!(run.status, 0, "{}", run.stderr);
    let said = format!("the kernel dropped {kernel} datagrams on {socket}, its receive queue full");
    assert!(run.stderr.contains(&said), "{}", run.stderr);
}

/// A leaf-spine of `leaves` leaves (2 to 9) and `spines` spines (1 to 9), one host per leaf,
/// IPv4, ECMP at the leaves hashing the 5-tuple only, no ICMP rate limit anywhere:
///
/// * host `hosts[L-1]` eth0 10.L.1.1/24, default via its leaf's 10.L.1.254;
/// * leaf L's interface `sS` 10.0.LS.1/24 faces spine S's interface `lL` 10.0.LS.2/24;
/// * each leaf reaches every other leaf's host subnet over all spines, each spine every host
///   subnet via that host's leaf.
///
/// `arrival`: routers answer traces from the interface a probe arrived on
/// (`icmp_errors_use_inbound_ifaddr=1`, as hardware routers do); otherwise from the interface
/// of their route back to the source (Linux's default).
pub struct Fabric {
    pub hosts: Vec<Netns>,
    pub leaves: Vec<Netns>,
    pub spines: Vec<Netns>,
}

impl Fabric {
    pub fn new(test: &str, leaves: usize, spines: usize, arrival: bool) -> Fabric {
        assert!((2..=9).contains(&leaves) && (1..=9).contains(&spines));
        let ns = |role: String| Netns::new(&format!("{test}-{role}"));
        let hosts: Vec<Netns> = (1..=leaves).map(|l| ns(format!("h{l}"))).collect();
        let leaf_ns: Vec<Netns> = (1..=leaves).map(|l| ns(format!("l{l}"))).collect();
        let spine_ns: Vec<Netns> = (1..=spines).map(|s| ns(format!("s{s}"))).collect();
        for (i, (h, l)) in hosts.iter().zip(&leaf_ns).enumerate() {
            let n = i + 1;
            link(
                h,
                "eth0",
                &[&format!("10.{n}.1.1/24")],
                l,
                "eth0",
                &[&format!("10.{n}.1.254/24")],
            );
            for (j, s) in spine_ns.iter().enumerate() {
                let m = j + 1;
                link(
                    l,
                    &format!("s{m}"),
                    &[&format!("10.0.{n}{m}.1/24")],
                    s,
                    &format!("l{n}"),
                    &[&format!("10.0.{n}{m}.2/24")],
                );
            }
        }
        for r in hosts.iter().chain(&leaf_ns).chain(&spine_ns) {
            r.sysctl("net.ipv4.icmp_ratelimit", "0");
            r.sysctl("net.ipv4.icmp_ratemask", "0");
            r.sysctl("net.ipv4.icmp_msgs_per_sec", "1000000");
            r.sysctl("net.ipv4.icmp_msgs_burst", "1000000");
        }
        for r in leaf_ns.iter().chain(&spine_ns) {
            r.enable_forwarding();
            r.sysctl("net.ipv4.fib_multipath_hash_policy", "3");
            r.sysctl("net.ipv4.fib_multipath_hash_fields", "0x37");
            if arrival {
                r.sysctl("net.ipv4.icmp_errors_use_inbound_ifaddr", "1");
            }
        }
        for (i, h) in hosts.iter().enumerate() {
            h.run(&format!("ip route add default via 10.{}.1.254", i + 1));
        }
        for (i, l) in leaf_ns.iter().enumerate() {
            for other in (1..=leaves).filter(|&o| o != i + 1) {
                let hops: String = (1..=spines)
                    .map(|m| format!(" nexthop via 10.0.{}{m}.2", i + 1))
                    .collect();
                l.run(&format!("ip route add 10.{other}.1.0/24{hops}"));
            }
        }
        for (j, s) in spine_ns.iter().enumerate() {
            for n in 1..=leaves {
                s.run(&format!(
                    "ip route add 10.{n}.1.0/24 via 10.0.{n}{}.1",
                    j + 1
                ));
            }
        }
        Fabric {
            hosts,
            leaves: leaf_ns,
            spines: spine_ns,
        }
    }
}
