//! Self-test of the network lab in `tests/common/lab.rs`, using the system
//! `ping` (iputils) as the probe. Needs root; fails (does not skip) without.

mod common;

use common::lab::*;
use std::os::unix::process::ExitStatusExt;

/// Runs `ping -c 1 -W 1 target` in `ns`; returns (success, stdout+stderr).
fn ping(ns: &Netns, target: &str) -> (bool, String) {
    let out = ns
        .command("ping")
        .args(["-n", "-c", "1", "-W", "1", target])
        .output()
        .expect("cannot run ping (install iputils-ping)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn assert_ping_ok(ns: &Netns, target: &str) {
    let (ok, text) = ping(ns, target);
    assert!(ok, "ping {} from {} failed:\n{}", target, ns.name, text);
}

fn assert_ping_fails(ns: &Netns, target: &str) -> String {
    let (ok, text) = ping(ns, target);
    assert!(
        !ok,
        "ping {} from {} unexpectedly worked:\n{}",
        target, ns.name, text
    );
    text
}

/// Names listed by `ip netns list` (first column).
fn netns_names() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("cannot run ip");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn pair_ping_and_loss() {
    require_root();
    let lab = Pair::new("pair_ping");
    assert_ping_ok(&lab.client, "10.0.0.2");
    assert_ping_ok(&lab.client, "fd00::2");

    add_loss(&lab.server, "input", "eth0", 100);
    assert_ping_fails(&lab.client, "10.0.0.2");
    assert_ping_fails(&lab.client, "fd00::2");

    // A second call replaces the rules instead of stacking them.
    add_loss(&lab.server, "output", "eth0", 100);
    assert_ping_fails(&lab.client, "10.0.0.2");
    add_loss(&lab.server, "input", "eth0", 0);
    assert_ping_ok(&lab.client, "10.0.0.2");

    add_loss(&lab.server, "input", "eth0", 100);
    clear_loss(&lab.server);
    assert_ping_ok(&lab.client, "10.0.0.2");
    assert_ping_ok(&lab.client, "fd00::2");
    // Clearing twice is harmless.
    clear_loss(&lab.server);
}

#[test]
fn partial_loss_is_roughly_pct() {
    require_root();
    let lab = Pair::new("pair_partial");
    add_loss(&lab.server, "input", "eth0", 50);
    let out = lab
        .client
        .command("ping")
        .args([
            "-n", "-q", "-c", "200", "-i", "0.002", "-W", "1", "10.0.0.2",
        ])
        .output()
        .expect("cannot run ping");
    let text = String::from_utf8_lossy(&out.stdout);
    let received: u32 = text
        .split(',')
        .find_map(|f| f.trim().strip_suffix(" received"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse ping summary:\n{}", text));
    assert!(
        (60..=140).contains(&received),
        "50% loss let {}/200 through:\n{}",
        received,
        text
    );
}

#[test]
fn pair_has_no_link_local_noise() {
    require_root();
    let lab = Pair::new("pair_quiet");
    let addrs = lab.client.run("ip -6 addr show dev eth0");
    assert!(!addrs.contains("fe80"), "unexpected link-local:\n{}", addrs);
    assert!(!addrs.contains("tentative"), "DAD still on:\n{}", addrs);
}

#[test]
fn ping_sockets_can_be_allowed() {
    require_root();
    let ns = Netns::new("pingsock");
    ns.allow_ping_sockets();
    let range = ns.run("cat /proc/sys/net/ipv4/ping_group_range");
    assert_eq!(
        range.split_whitespace().collect::<Vec<_>>(),
        ["0", "2147483647"]
    );
}

#[test]
fn routed_forwarding_and_unreachable() {
    require_root();
    let lab = Routed::new("routed");
    assert_ping_ok(&lab.client, "10.0.2.1");
    assert_ping_ok(&lab.client, "fd02::1");
    assert_ping_ok(&lab.server, "10.0.1.1");

    // Loss on the router's forward hook hits transit traffic only.
    add_loss(&lab.router, "forward", "eth0", 100);
    assert_ping_fails(&lab.client, "10.0.2.1");
    assert_ping_ok(&lab.client, "10.0.1.254");
    clear_loss(&lab.router);
    assert_ping_ok(&lab.client, "10.0.2.1");

    let text = assert_ping_fails(&lab.client, "10.99.0.1");
    assert!(
        text.contains("Unreachable"),
        "no unreachable reported:\n{}",
        text
    );
    assert!(
        text.contains("10.0.1.254"),
        "unreachable not from router:\n{}",
        text
    );

    let text = assert_ping_fails(&lab.client, "fd99::1");
    assert!(
        text.to_ascii_lowercase().contains("unreachable"),
        "no unreachable reported:\n{}",
        text
    );
    assert!(
        text.contains("fd01::254"),
        "unreachable not from router:\n{}",
        text
    );
}

#[test]
fn netns_is_deleted_on_drop() {
    require_root();
    let ns = Netns::new("dropme");
    let name = ns.name.clone();
    // A lingering process must not keep the namespace alive; Drop kills it.
    let mut child = ns.command("sleep").arg("60").spawn().expect("spawn sleep");
    // `ip netns exec` enters the namespace only after it starts; wait for it.
    let pid = child.id().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !std::process::Command::new("ip")
        .args(["netns", "pids", &ns.name])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .any(|p| p == pid)
        })
        .unwrap_or(false)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "sleep never entered {}",
            ns.name
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(netns_names().contains(&name), "{} not listed", name);
    drop(ns);
    let status = child.wait().expect("wait for sleep");
    assert_eq!(status.signal(), Some(9), "sleep not killed: {}", status);
    assert!(!netns_names().contains(&name), "{} still listed", name);
}

#[test]
fn netns_is_deleted_after_panic() {
    require_root();
    let name = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let ns = Netns::new("panicky");
        *name.lock().unwrap() = ns.name.clone();
        ns.run("exit 3");
    });
    assert!(result.is_err(), "failing run() must panic");
    let name = name.into_inner().unwrap();
    assert!(!name.is_empty());
    assert!(!netns_names().contains(&name), "{} still listed", name);
}

/// Runs `program args` as the unprivileged user nobody (uid/gid 65534, no groups) with only
/// `path` on PATH; returns (exit code, stdout+stderr).
fn as_nobody(program: &str, args: &[&str], path: &str) -> (Option<i32>, String) {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg("env")
        .arg("-i")
        .arg(format!("PATH={path}"))
        .arg(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("cannot run setpriv (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// A lab test run by a user without root fails with the one line that says why, instead of
/// `ip netns add`'s "mount --make-shared /run/netns failed" (issue 17).
#[test]
fn lab_test_without_root_says_it_needs_root() {
    require_root(); // only root can become nobody
    let me = std::env::current_exe().expect("test binary path");
    let (code, text) = as_nobody(
        me.to_str().expect("utf-8 path"),
        &["--exact", "pair_ping_and_loss", "--test-threads=1"],
        "/usr/sbin:/usr/bin:/sbin:/bin",
    );
    assert_ne!(code, Some(0), "the lab test passed without root:\n{text}");
    assert!(
        text.contains("lab tests need root (network namespaces); run as root or via .ci/run"),
        "no clear line about root:\n{text}"
    );
    assert!(
        !text.contains("make-shared"),
        "ip's own failure leaked:\n{text}"
    );
}

/// The README's test command, `.ci/run`, run by a user without root and without sudo, stops at
/// once with one line that says the lab needs root (issue 17), before installing or building.
#[test]
fn ci_run_without_root_says_so_at_once() {
    require_root();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run");
    // A PATH with the shell's basic tools and no sudo: a directory of links to them.
    let dir = std::env::temp_dir().join(format!("lopa-nosudo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for tool in ["bash", "id", "dirname", "printf"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} not found"));
        let _ = std::fs::remove_file(dir.join(tool));
        std::os::unix::fs::symlink(found, dir.join(tool)).expect("symlink");
    }
    let (code, text) = as_nobody("bash", &[script], dir.to_str().expect("utf-8 path"));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, Some(1), "unexpected status:\n{text}");
    assert_eq!(text.lines().count(), 1, "more than one line:\n{text}");
    assert!(
        text.contains("need root") && text.contains("sudo .ci/run"),
        "the line does not say what to do:\n{text}"
    );
}
