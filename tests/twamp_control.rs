//! TWAMP-Control (RFC 5357 3): `ltwamp --control` against `lreflect --twamp-control` across a
//! router, IPv4 and IPv6, in every mode; the refusals and their Accept codes; tshark's
//! TWAMP-Control dissector on the wire; garbage and slow clients beside a running session.
//! Needs root (CI runs as root).

mod common;

use common::lab::*;
use common::temp::TempDir;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEYS: &str = "probe-a 7365637265742d61\nprobe-b 6f74686572\n";

/// lreflect with `args` in `ns`, its stdout kept; up once its TCP control port listens.
struct Server {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Server {
    fn start(ns: &Netns, args: &[&str]) -> Server {
        let out = std::env::temp_dir().join(format!("lopa-twctl-{}.out", ns.name));
        let child = ns
            .command(env!("CARGO_BIN_EXE_lreflect"))
            .args(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lreflect");
        let started = Instant::now();
        while !ns.run("ss -Htln").contains(":862 ") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "lreflect never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, out }
    }

    /// Its resident memory, KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Stops it (SIGTERM) and returns its total stats records (every socket's).
    fn stop(mut self) -> Vec<Value> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["type"] == "stats" && r["window"] == "total")
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
    }
}

/// The test's keys file, removed with its directory when dropped.
struct KeysFile {
    _dir: TempDir,
    path: std::path::PathBuf,
}

impl std::ops::Deref for KeysFile {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.path
    }
}

impl AsRef<std::path::Path> for KeysFile {
    fn as_ref(&self) -> &std::path::Path {
        &self.path
    }
}

fn keys_file(tag: &str) -> KeysFile {
    let dir = TempDir::new(&format!("twctl-{tag}"));
    let path = dir.file("keys.pfs", KEYS);
    KeysFile { _dir: dir, path }
}

fn ltwamp(ns: &Netns, args: &[&str]) -> ToolRun {
    run_tool(ns, env!("CARGO_BIN_EXE_ltwamp"), args)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The sum of a control counter over the control listeners' total records.
fn count(stats: &[Value], path: &[&str]) -> u64 {
    stats
        .iter()
        .filter(|r| r["mode"] == "twamp-control")
        .map(|r| {
            let mut v = &r["control"];
            for p in path {
                v = &v[*p];
            }
            u(v)
        })
        .sum()
}

#[test]
fn every_mode_across_a_router_both_families() {
    let lab = Routed::new("twctl-modes");
    let keys = keys_file("modes");
    let keys = keys.to_str().unwrap();
    let server = Server::start(
        &lab.server,
        &[
            "--twamp-control",
            "[::]:862",
            "--key-file",
            keys,
            "--stats-every",
            "0",
        ],
    );
    for mode in ["open", "authenticated", "encrypted"] {
        let mut args = vec![
            "--control",
            "--auth-mode",
            mode,
            "-c",
            "5",
            "-i",
            "0.01",
            "--flows",
            "2",
            "--dscp",
            "EF,BE",
            "-q",
        ];
        if mode != "open" {
            args.extend(["--key-file", keys, "--key-id", "probe-a"]);
        }
        args.extend(["10.0.2.1", "fd02::1"]);
        let run = ltwamp(&lab.client, &args);
        assert_eq!(run.status, 0, "{mode}: {}", run.stderr);
        assert_eq!(run.stderr, "", "{mode}");
        for target in ["10.0.2.1", "fd02::1"] {
            let s = run.summary(target);
            // Two flows in two classes, five probes each, all answered by the reflector
            // path the sessions were granted on (the control port's number, on UDP).
            assert_eq!(
                (u(&s["sent"]), u(&s["received"])),
                (20, 20),
                "{mode} {target}: {s}"
            );
            assert_eq!(
                u(&s["hops_fwd"]),
                1,
                "{mode} {target}: one router on the way: {s}"
            );
        }
    }
    let stats = server.stop();
    assert_eq!(count(&stats, &["connections"]), 6, "{stats:?}");
    // One session per target, flow and class, in each mode.
    assert_eq!(
        count(&stats, &["sessions", "accepted"]),
        3 * 2 * 2 * 2,
        "{stats:?}"
    );
    assert_eq!(
        count(&stats, &["closed", "key"]) + count(&stats, &["closed", "hmac"]),
        0
    );
}

#[test]
fn refusals_give_their_accept_codes_and_exit_2() {
    let lab = Routed::new("twctl-refuse");
    let keys = keys_file("refuse");
    let keys = keys.to_str().unwrap();
    let server = Server::start(
        &lab.server,
        &[
            "--twamp-control",
            "[::]:862",
            "--key-file",
            keys,
            "--control-sessions",
            "2",
            "--stats-every",
            "0",
        ],
    );
    // Three flows, two sessions allowed per connection: the third is refused with Accept 4.
    let run = ltwamp(
        &lab.client,
        &["--control", "--flows", "3", "-c", "1", "10.0.2.1"],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("refused in Accept-Session: Accept 4 (cannot perform the request due to permanent resource limitations)"),
        "{}",
        run.stderr
    );
    assert!(run.kind("reply").is_empty());
    // A KeyID the server does not know: Server-Start with Accept 1.
    let other = keys_file("refuse-other");
    std::fs::write(&other, "probe-z 00ff\n").unwrap();
    let run = ltwamp(
        &lab.client,
        &[
            "--control",
            "--auth-mode",
            "authenticated",
            "--key-file",
            other.to_str().unwrap(),
            "-c",
            "1",
            "fd02::1",
        ],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("refused in Server-Start: Accept 1 (failure"),
        "{}",
        run.stderr
    );
    // The right KeyID with the wrong secret is the same refusal.
    std::fs::write(&other, "probe-a 00ff\n").unwrap();
    let run = ltwamp(
        &lab.client,
        &[
            "--control",
            "--auth-mode",
            "encrypted",
            "--key-file",
            other.to_str().unwrap(),
            "-c",
            "1",
            "10.0.2.1",
        ],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("Accept 1"), "{}", run.stderr);
    let stats = server.stop();
    assert_eq!(
        count(&stats, &["sessions", "refused", "permanent_limit"]),
        1,
        "{stats:?}"
    );
    assert_eq!(count(&stats, &["closed", "key"]), 2, "{stats:?}");

    // The access list: the server greets with no modes; the client says so, exit 2.
    let server = Server::start(
        &lab.server,
        &[
            "--twamp-control",
            "[::]:862",
            "--allow",
            "10.9.0.0/16",
            "--stats-every",
            "0",
        ],
    );
    let run = ltwamp(&lab.client, &["--control", "-c", "1", "10.0.2.1"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("offers no mode"), "{}", run.stderr);
    // A mode the server does not offer (no keys file: open only).
    let keyed = keys_file("refuse-keyed");
    let run = ltwamp(
        &lab.client,
        &[
            "--control",
            "--auth-mode",
            "encrypted",
            "--key-file",
            keyed.to_str().unwrap(),
            "--key-id",
            "probe-a",
            "-c",
            "1",
            "fd02::1",
        ],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("offers no mode"),
        "ACL first: {}",
        run.stderr
    );
    let stats = server.stop();
    assert_eq!(count(&stats, &["closed", "acl"]), 2, "{stats:?}");
    let server = Server::start(
        &lab.server,
        &["--twamp-control", "[::]:862", "--stats-every", "0"],
    );
    let run = ltwamp(
        &lab.client,
        &[
            "--control",
            "--auth-mode",
            "encrypted",
            "--key-file",
            keyed.to_str().unwrap(),
            "--key-id",
            "probe-a",
            "-c",
            "1",
            "fd02::1",
        ],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("does not offer the encrypted mode (it offers: open)"),
        "{}",
        run.stderr
    );
    let stats = server.stop();
    assert_eq!(
        count(&stats, &["closed", "mode"]),
        0,
        "the client gave up first: {stats:?}"
    );

    // One connection per client: a second one while the first is open is greeted without modes.
    let server = Server::start(
        &lab.server,
        &[
            "--twamp-control",
            "[::]:862",
            "--control-per-client",
            "1",
            "--stats-every",
            "0",
        ],
    );
    let mut holder = Background(
        lab.client
            .command("/usr/bin/python3")
            .args([
                "-c",
                "import socket, sys, time\n\
                 s = socket.create_connection(('10.0.2.1', 862)); s.recv(64)\n\
                 print('held', flush=True); time.sleep(30)",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    let mut out = BufReader::new(holder.0.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");
    let run = ltwamp(&lab.client, &["--control", "-c", "1", "10.0.2.1"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("offers no mode"), "{}", run.stderr);
    drop(holder);
    let stats = server.stop();
    assert_eq!(count(&stats, &["closed", "limit"]), 1, "{stats:?}");
}

/// Captures what `filter` takes on the server's eth0 while `f` runs; returns the file.
fn capture(lab: &Routed, filter: &str, f: impl FnOnce()) -> std::path::PathBuf {
    let pcap = std::env::temp_dir().join(format!("lopa-twctl-{}.pcap", lab.server.name));
    let _ = std::fs::remove_file(&pcap);
    let mut capture = lab
        .server
        .command("tshark")
        .args(["-i", "eth0", "-f", filter, "-w"])
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tshark");
    let mut stderr = BufReader::new(capture.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("Capture started") {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("tshark ended: {said}");
        }
        said.push_str(&line);
    }
    f();
    // Let the last segments reach the capture, then stop it (SIGINT writes the file).
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status();
    let _ = capture.wait();
    pcap
}

/// Captures TCP 862 on the server's eth0 while `f` runs; returns tshark's decoding of the
/// control messages: (direction, message, accept, malformed or expert info).
fn tshark_control(lab: &Routed, f: impl FnOnce()) -> Vec<(bool, String, String, String)> {
    let pcap = capture(lab, "tcp port 862", f);
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-d", "tcp.port==862,twamp.control", "-Y", "twamp.control"])
        .args([
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "tcp.srcport",
            "-e",
            "_ws.col.Info",
        ])
        .args([
            "-e",
            "twamp.control.accept",
            "-e",
            "_ws.malformed",
            "-e",
            "_ws.expert",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("run tshark");
    let _ = std::fs::remove_file(&pcap);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (
                f[0] == "862",
                f[1].to_string(),
                f[2].to_string(),
                format!("{}{}", f[3], f[4]),
            )
        })
        .collect()
}

#[test]
fn tshark_decodes_every_control_message_both_ways() {
    let lab = Routed::new("twctl-tshark");
    let keys = keys_file("tshark");
    let keys = keys.to_str().unwrap();
    let _server = Server::start(
        &lab.server,
        &[
            "--twamp-control",
            "[::]:862",
            "--key-file",
            keys,
            "--stats-every",
            "0",
        ],
    );
    let msgs = tshark_control(&lab, || {
        let run = ltwamp(
            &lab.client,
            &[
                "--control",
                "--flows",
                "2",
                "-c",
                "2",
                "-i",
                "0.05",
                "-q",
                "10.0.2.1",
            ],
        );
        assert_eq!(run.status, 0, "{}", run.stderr);
    });
    let want = [
        (true, "Server Greeting"),
        (false, "Setup Response"),
        (true, "Server Start"),
        (false, "Request Session"),
        (true, "Accept Session"),
        (false, "Request Session"),
        (true, "Accept Session"),
        (false, "Start Sessions"),
        (true, "Start Sessions ACK"),
        (false, "Stop Session"),
    ];
    assert_eq!(msgs.len(), want.len(), "{msgs:?}");
    for (m, (from_server, name)) in msgs.iter().zip(want) {
        assert_eq!(m.0, from_server, "{m:?}");
        assert!(m.1.starts_with(name), "{m:?} is not {name}");
        assert_eq!(m.3, "", "tshark: malformed or expert info: {m:?}");
        if from_server && name != "Server Greeting" {
            assert_eq!(m.2, "0", "Accept OK: {m:?}");
        }
    }
    // The keyed modes: the three messages before ciphering starts decode; tshark has no key
    // for the rest.
    let msgs = tshark_control(&lab, || {
        let run = ltwamp(
            &lab.client,
            &[
                "--control",
                "--auth-mode",
                "encrypted",
                "--key-file",
                keys,
                "--key-id",
                "probe-b",
                "-c",
                "1",
                "-q",
                "10.0.2.1",
            ],
        );
        assert_eq!(run.status, 0, "{}", run.stderr);
    });
    let names: Vec<&str> = msgs.iter().take(3).map(|m| m.1.as_str()).collect();
    assert_eq!(names.len(), 3, "{msgs:?}");
    assert!(names[0].starts_with("Server Greeting"), "{msgs:?}");
    assert!(names[1].starts_with("Setup Response"), "{msgs:?}");
    assert!(names[2].starts_with("Server Start"), "{msgs:?}");
    for m in msgs.iter().take(3) {
        assert_eq!(m.3, "", "{m:?}");
    }
}

#[test]
fn a_signal_ends_the_run_with_stop_sessions_and_the_summaries() {
    let lab = Routed::new("twctl-signal");
    let _server = Server::start(
        &lab.server,
        &["--twamp-control", "[::]:862", "--stats-every", "0"],
    );
    let mut run = None;
    let msgs = tshark_control(&lab, || {
        // Continuous (no -c): only the signal ends it.
        let child = lab
            .client
            .command(env!("CARGO_BIN_EXE_ltwamp"))
            .args(["--control", "-i", "0.05", "-q", "fd02::1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        run = Some(ToolRun::of(child.wait_with_output().unwrap()));
    });
    let run = run.unwrap();
    assert_eq!(run.status, 0, "{}", run.stderr);
    let s = run.summary("fd02::1");
    assert!(
        u(&s["sent"]) >= 10 && u(&s["received"]) == u(&s["sent"]),
        "{s}"
    );
    let last = msgs.last().expect("control messages");
    assert!(!last.0 && last.1.starts_with("Stop Session"), "{msgs:?}");
}

#[test]
fn garbage_and_slow_clients_cost_a_running_session_nothing() {
    let lab = Routed::new("twctl-abuse");
    let server = Server::start(
        &lab.server,
        &[
            "--twamp-control",
            "[::]:862",
            "--control-idle",
            "1s",
            "--stats-every",
            "0",
        ],
    );
    // The legitimate session: 300 probes over 3 s.
    let legit = lab
        .client
        .command(env!("CARGO_BIN_EXE_ltwamp"))
        .args(["--control", "-c", "300", "-i", "0.01", "-q", "fd02::1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Meanwhile: clients that send garbage (random bytes, a wrong command after set-up) and
    // a slow one that dribbles its Set-Up-Response a byte every 200 ms.
    let abuse = r#"
import os, socket, sys, time
def conn():
    s = socket.create_connection((sys.argv[1], 862), timeout=5)
    assert len(s.recv(64)) == 64
    return s
for _ in range(20):
    s = conn(); s.sendall(os.urandom(300)); s.close()
s = conn(); s.sendall(b"\0\0\0\1" + bytes(160)); s.recv(48); s.sendall(bytes([9]) + bytes(15))
print("closed" if s.recv(16) == b"" else "open"); s.close()
slow = conn()
for _ in range(15):
    try:
        slow.sendall(b"\0"); time.sleep(0.2)
    except OSError:
        print("slow closed"); break
"#;
    let out = lab
        .client
        .command("/usr/bin/python3")
        .args(["-c", abuse, "10.0.2.1"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("closed"),
        "a wrong command closes the connection: {said}"
    );
    let legit = legit.wait_with_output().unwrap();
    let run = ToolRun::of(legit);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let s = run.summary("fd02::1");
    assert_eq!((u(&s["sent"]), u(&s["received"])), (300, 300), "{s}");
    let stats = server.stop();
    // Random bytes read as a Set-Up-Response may name no mode of ours: refused as a mode.
    let garbage = count(&stats, &["closed", "garbage"]) + count(&stats, &["closed", "mode"]);
    assert!(garbage >= 21, "{stats:?}");
    assert!(
        count(&stats, &["closed", "idle"]) >= 1,
        "the slow client: {stats:?}"
    );
    assert_eq!(count(&stats, &["sessions", "accepted"]), 1, "{stats:?}");
    let _ = std::io::stdout().flush();
}

/// A program of the independent TWAMP peer, twamp-rs 0.2.0 (built by
/// tests/fixtures/twamp-rs/build.sh, which .ci/run runs).
fn twamp_rs(program: &str) -> String {
    let p = format!(
        "{}/target/peers/bin/twamp-rs-{program}",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(
        std::path::Path::new(&p).exists(),
        "{p} is missing: .ci/run builds it (tests/fixtures/twamp-rs/build.sh)"
    );
    p
}

#[test]
fn twamp_rs_controller_against_lreflect() {
    let controller = twamp_rs("controller");
    let lab = Routed::new("twctl-trsc");
    let server = Server::start(
        &lab.server,
        &["--twamp-control", "10.0.2.1:862", "--stats-every", "0"],
    );
    let out = lab
        .client
        .command(&controller)
        .args([
            "--responder-addr",
            "10.0.2.1",
            "--controller-addr",
            "10.0.1.1",
        ])
        .args([
            "--responder-reflect-port",
            "862",
            "--number-of-test-packets",
            "20",
        ])
        .args(["--timeout", "2", "--stop-session-sleep", "1"])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    let stats = server.stop();
    assert_eq!(count(&stats, &["connections"]), 1, "{stats:?}\n{said}");
    assert_eq!(
        count(&stats, &["sessions", "accepted"]),
        1,
        "{stats:?}\n{said}"
    );
    let closed = &stats.iter().find(|r| r["mode"] == "twamp-control").unwrap()["control"]["closed"];
    assert!(
        closed.as_object().unwrap().values().all(|v| v == 0),
        "nothing refused or cut: {closed}\n{said}"
    );
    let test = stats.iter().find(|r| r["mode"] == "twamp").unwrap();
    assert_eq!(u(&test["received"]), 20, "{test}\n{said}");
    assert_eq!(u(&test["reflected"]), 20, "{test}\n{said}");
}

#[test]
fn ltwamp_against_the_twamp_rs_responder() {
    let responder = twamp_rs("responder");
    let lab = Routed::new("twctl-trsr");
    let _responder = Background(
        lab.server
            .command(&responder)
            .args(["--addr", "10.0.2.1", "--port", "862"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while !lab.server.run("ss -Htln").contains(":862 ") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the responder never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = ltwamp(
        &lab.client,
        &["--control", "-c", "10", "-i", "0.05", "-q", "10.0.2.1"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    let s = run.summary("10.0.2.1");
    assert_eq!((u(&s["sent"]), u(&s["received"])), (10, 10), "{s}");
}

#[test]
fn thousands_of_abusive_connections_keep_memory_flat() {
    let lab = Routed::new("twctl-memory");
    let server = Server::start(
        &lab.server,
        &[
            "--twamp-control",
            "[::]:862",
            "--control-per-client",
            "65536",
            "--rate-limit",
            "0",
            "--stats-every",
            "0",
        ],
    );
    let warm = ltwamp(
        &lab.client,
        &["--control", "-c", "5", "-i", "0.01", "-q", "10.0.2.1"],
    );
    assert_eq!(warm.status, 0, "{}", warm.stderr);
    let before = server.rss_kib();
    // 4,000 connections that send garbage, and 200 held open at once (64 taken, the rest
    // greeted without modes), in two rounds.
    let abuse = r#"
import os, socket, sys
for _ in range(2):
    for _ in range(2000):
        s = socket.create_connection((sys.argv[1], 862), timeout=5)
        s.recv(64); s.sendall(os.urandom(300)); s.close()
    held = [socket.create_connection((sys.argv[1], 862), timeout=5) for _ in range(200)]
    for h in held:
        h.recv(64)
    for h in held:
        h.close()
"#;
    let out = lab
        .client
        .command("/usr/bin/python3")
        .args(["-c", abuse, "10.0.2.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = server.rss_kib();
    let run = ltwamp(
        &lab.client,
        &["--control", "-c", "20", "-i", "0.01", "-q", "fd02::1"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let s = run.summary("fd02::1");
    assert_eq!((u(&s["sent"]), u(&s["received"])), (20, 20), "{s}");
    assert!(
        after <= before + 512,
        "resident memory grew from {before} to {after} KiB"
    );
    let stats = server.stop();
    assert!(
        count(&stats, &["closed", "limit"]) >= 2 * (200 - 64),
        "{stats:?}"
    );
    assert!(count(&stats, &["closed", "garbage"]) + count(&stats, &["closed", "mode"]) >= 4000);
}

#[test]
fn refwait_ends_sessions_that_send_no_test_packet() {
    let lab = Routed::new("twctl-refwait");
    let server = Server::start(
        &lab.server,
        &[
            "--twamp-control",
            "[::]:862",
            "--refwait",
            "1s",
            "--stats-every",
            "0",
        ],
    );
    // A client that sets a session up, starts it and sends no test packet: the server closes
    // the connection once REFWAIT has passed (the loop looks every second).
    let quiet = r#"
import socket, struct, sys, time
s = socket.create_connection((sys.argv[1], 862), timeout=10)
assert len(s.recv(64, socket.MSG_WAITALL)) == 64
s.sendall(struct.pack(">I", 1) + bytes(160))
assert s.recv(48, socket.MSG_WAITALL)[15] == 0
req = bytes([5, 4, 0, 0]) + bytes(8) + struct.pack(">HH", 40000, 862)
req += socket.inet_aton("10.0.1.1") + bytes(12) + socket.inet_aton(sys.argv[1]) + bytes(12)
req += bytes(16) + bytes(4) + bytes(8) + struct.pack(">II", 1, 0) + bytes(4) + bytes(8) + bytes(16)
assert len(req) == 112
s.sendall(req)
assert s.recv(48, socket.MSG_WAITALL)[0] == 0
s.sendall(bytes([2]) + bytes(31))
assert s.recv(32, socket.MSG_WAITALL)[0] == 0
assert s.recv(16) == b"", "closed"
"#;
    let out = lab
        .client
        .command("/usr/bin/python3")
        .args(["-c", quiet, "10.0.2.1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = server.stop();
    assert_eq!(count(&stats, &["closed", "idle"]), 1, "{stats:?}");
    assert_eq!(count(&stats, &["sessions", "accepted"]), 1, "{stats:?}");
}

#[test]
fn test_ports_answer_granted_sessions_only() {
    let lab = Routed::new("twctl-nosess");
    let server = Server::start(
        &lab.server,
        &["--twamp-control", "[::]:862", "--stats-every", "0"],
    );
    // TWAMP-Light to the test port, no session set up: nothing answered.
    let light = ltwamp(
        &lab.client,
        &["-c", "5", "-i", "0.01", "-W", "0.3", "-q", "10.0.2.1"],
    );
    assert_eq!(light.status, 1, "{}", light.stderr);
    assert_eq!(u(&light.summary("10.0.2.1")["received"]), 0);
    // The same with a session: all answered.
    let full = ltwamp(
        &lab.client,
        &["--control", "-c", "5", "-i", "0.01", "-q", "10.0.2.1"],
    );
    assert_eq!(full.status, 0, "{}", full.stderr);
    assert_eq!(u(&full.summary("10.0.2.1")["received"]), 5);
    let stats = server.stop();
    let test = stats.iter().find(|r| r["mode"] == "twamp").unwrap();
    assert_eq!(u(&test["dropped"]["no_session"]), 5, "{test}");
    assert_eq!(u(&test["reflected"]), 5, "{test}");
}

/// Sends `count` UDP datagrams of random bytes from `ns` with a forged source port (a raw
/// socket: the port is another process's), IPv4.
fn forge(ns: &Netns, src: &str, sport: u16, dst: &str, dport: u16, len: usize, count: u32) {
    let py = r#"
import os, socket, struct, sys
src, sport, dst, dport, n, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(count):
    udp = struct.pack('!HHHH', sport, dport, 8 + n, 0) + os.urandom(n)
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(ip + udp, (dst, 0))
"#;
    let out = ns
        .command("/usr/bin/python3")
        .args(["-c", py, src, &sport.to_string(), dst, &dport.to_string()])
        .args([len.to_string(), count.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// lreflect serving TWAMP-Control on the server's IPv4 address with the test's keys file.
fn keyed_server(lab: &Routed, tag: &str) -> (Server, KeysFile) {
    let keys = keys_file(tag);
    let args = [
        "--twamp-control",
        "0.0.0.0:862",
        "--stats-every",
        "0",
        "--key-file",
    ];
    let server = Server::start(
        &lab.server,
        &[&args[..], &[keys.to_str().unwrap()]].concat(),
    );
    (server, keys)
}

/// The records of the test sockets (not the control listeners).
fn test_sockets(stats: &[Value]) -> impl Iterator<Item = &Value> {
    stats.iter().filter(|r| r["mode"] != "twamp-control")
}

#[test]
fn keyed_test_packets_that_do_not_verify_are_counted_and_never_answered() {
    let lab = Routed::new("twctl-tamper");
    let (server, keys) = keyed_server(&lab, "tamper");
    let keys = keys.to_str().unwrap();
    for mode in ["authenticated", "encrypted"] {
        let legit = lab
            .client
            .command(env!("CARGO_BIN_EXE_ltwamp"))
            .args([
                "--control",
                "--auth-mode",
                mode,
                "--key-file",
                keys,
                "--key-id",
                "probe-b",
            ])
            .args([
                "-c", "40", "-i", "0.05", "--sport", "40000", "-q", "10.0.2.1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // While the session runs: test packets of its 5-tuple that are no keyed packet of
        // its keys (to the reflector), and answers that are none (to ltwamp).
        std::thread::sleep(Duration::from_millis(700));
        forge(&lab.client, "10.0.1.1", 40000, "10.0.2.1", 862, 48, 5);
        forge(&lab.server, "10.0.2.1", 862, "10.0.1.1", 40000, 112, 3);
        let run = ToolRun::of(legit.wait_with_output().unwrap());
        assert_eq!(run.status, 0, "{mode}: {}", run.stderr);
        let s = run.summary("10.0.2.1");
        assert_eq!((u(&s["sent"]), u(&s["received"])), (40, 40), "{mode}: {s}");
        assert!(
            run.stderr
                .contains("dropped 3 datagrams that were not answers to its probes"),
            "{mode}: the forged answers are counted: {}",
            run.stderr
        );
    }
    let stats = server.stop();
    let hmac: u64 = test_sockets(&stats)
        .map(|r| r["malformed_by"]["hmac"].as_u64().unwrap_or(0))
        .sum();
    let reflected: u64 = test_sockets(&stats).map(|r| u(&r["reflected"])).sum();
    assert_eq!(hmac, 10, "the forged test packets, counted: {stats:?}");
    assert_eq!(reflected, 80, "only the real ones answered: {stats:?}");
}

#[test]
fn test_packets_go_in_each_modes_layout_and_answers_in_the_sessions_class() {
    let lab = Routed::new("twctl-layout");
    let (server, keys) = keyed_server(&lab, "layout");
    let keys = keys.to_str().unwrap();
    for mode in ["open", "authenticated", "encrypted"] {
        let pcap = capture(&lab, "udp port 862", || {
            let mut args = vec!["--control", "--auth-mode", mode, "-c", "5", "-i", "0.01"];
            args.extend(["--dscp", "AF41", "--size", "20", "-q"]);
            if mode != "open" {
                args.extend(["--key-file", keys, "--key-id", "probe-a"]);
            }
            args.push("10.0.2.1");
            let run = ltwamp(&lab.client, &args);
            assert_eq!(run.status, 0, "{mode}: {}", run.stderr);
            let s = run.summary("10.0.2.1");
            assert_eq!((u(&s["sent"]), u(&s["received"])), (5, 5), "{mode}: {s}");
        });
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .args(["-T", "fields", "-E", "separator=|"])
            .args([
                "-e",
                "udp.srcport",
                "-e",
                "ip.dsfield.dscp",
                "-e",
                "udp.length",
            ])
            .stderr(Stdio::null())
            .output()
            .expect("run tshark");
        let _ = std::fs::remove_file(&pcap);
        let text = String::from_utf8(out.stdout).unwrap();
        let (mut asks, mut answers) = (Vec::new(), Vec::new());
        for l in text.lines() {
            let f: Vec<&str> = l.split('|').collect();
            let (dscp, len): (u8, usize) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            if f[0] == "862" {
                answers.push((dscp, len - 8));
            } else {
                asks.push((dscp, len - 8));
            }
        }
        // The payloads: --size 20 in the open mode (answered in 44 bytes, STAMP's base);
        // the keyed layouts' 48 and 112 bytes in the others (RFC 5357 4.1.2, 4.2.1 as
        // amended by erratum 5045). Every answer in the session's class, AF41 (34).
        let (ask, answer) = if mode == "open" { (20, 44) } else { (48, 112) };
        assert_eq!(asks, vec![(34, ask); 5], "{mode}: {text}");
        assert_eq!(answers, vec![(34, answer); 5], "{mode}: {text}");
    }
    let stats = server.stop();
    assert_eq!(count(&stats, &["sessions", "accepted"]), 3, "{stats:?}");
}

#[test]
fn keyed_modes_refuse_tlvs_and_trace_in_one_line() {
    let keys = keys_file("refuse");
    for (extra, says) in [
        ("--tlv=cos", "--tlv needs --auth-mode open"),
        ("--trace", "--trace needs --auth-mode open"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_ltwamp"))
            .args([
                "--control",
                "--auth-mode",
                "encrypted",
                "--key-id",
                "probe-a",
            ])
            .arg("--key-file")
            .arg(&*keys)
            .args([extra, "-c", "1", "127.0.0.1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra}: {err}");
        assert!(err.contains(says), "{extra}: {err}");
    }
}
