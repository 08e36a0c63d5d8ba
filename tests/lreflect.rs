//! lreflect in the namespace lab, against a small test-side UDP client (std and socket2
//! sockets created inside the lab's namespaces), so these tests depend on no other tool.
//! Needs root (CI runs as root); without it every test fails with one line saying so.

mod common;

use common::lab::*;
use common::process::{spawn_streamed, Streamed};
use lopa::wire::ludp_payload::{self, ProbeRepr};
use lopa::wire::ntp::{ErrorEstimate, Format as NtpFormat, Timestamp};
use lopa::wire::twamp::{self, ReflectorPacket, SenderPacket};
use serde_json::Value;
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LREFLECT: &str = env!("CARGO_BIN_EXE_lreflect");
/// Longest any lreflect process may live in a test; past it the test fails.
const DEADLINE: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Namespaces from inside the test process

/// A directory with a copy of lreflect that any user may run; removed on drop, also when the
/// test fails.
struct BinCopy {
    dir: PathBuf,
    bin: PathBuf,
}

impl BinCopy {
    fn new(what: &str) -> BinCopy {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lopa-lreflect-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("lreflect");
        std::fs::copy(LREFLECT, &bin).unwrap();
        for p in [&dir, &bin] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        BinCopy { dir, bin }
    }
}

impl Drop for BinCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lab's two namespaces, after the one-line root check.
fn pair(test: &str) -> Pair {
    require_root();
    Pair::new(test)
}

fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A small deterministic generator for payload bytes and sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `len` bytes that do not start like a ludp payload.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        if let Some(b) = v.first_mut() {
            *b = b'x';
        }
        v
    }
}

/// A ludp payload of `len` bytes (at least 32).
fn ludp_payload(seq: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    ProbeRepr {
        flow: 7,
        seq,
        sent_ns: wall_ns(),
        cookie: 0x1234_5678,
        target: 0,
    }
    .emit(&mut buf);
    buf
}

// ---------------------------------------------------------------------------------------------
// lreflect under test

/// What a stopped lreflect left behind.
struct Finished {
    status: ExitStatus,
    records: Vec<Value>,
    stderr: String,
}

impl Finished {
    /// The `total` stats record of the socket bound to `listen`.
    fn total(&self, listen: &str) -> &Value {
        self.records
            .iter()
            .find(|r| r["window"] == "total" && r["listen"] == listen)
            .unwrap_or_else(|| panic!("no total for {listen}: {:?}", self.records))
    }
}

struct Reflector {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    notify: UnixDatagram,
    dir: PathBuf,
    started: Instant,
}

fn stats_schema() -> (boon::Schemas, boon::SchemaIndex) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/stats.schema.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("schema"))
        .expect("schema is JSON");
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler.add_resource(path, doc).expect("add schema");
    let mut schemas = boon::Schemas::new();
    let idx = compiler
        .compile(path, &mut schemas)
        .expect("compile schema");
    (schemas, idx)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// Every stats record matches its schema, and its counts add up: each datagram received
/// was reflected or dropped for one reason.
fn check_stats(records: &[Value]) {
    let (schemas, idx) = stats_schema();
    for r in records {
        if let Err(e) = schemas.validate(r, idx) {
            panic!("does not match schemas/stats.schema.json: {r}\n{e:#}");
        }
        assert_eq!(r["tool"], "lreflect");
        let d = &r["dropped"];
        let dropped: u64 = [
            "acl",
            "loop",
            "rate_limit",
            "global_cap",
            "malformed",
            "send_error",
        ]
        .iter()
        .map(|k| u(&d[*k]))
        .sum();
        assert_eq!(
            u(&r["received"]),
            u(&r["reflected"]) + dropped,
            "received = reflected + dropped: {r}"
        );
        assert!(u(&r["stamped"]) <= u(&r["reflected"]), "{r}");
        let by: u64 = ["empty", "short", "too_long", "other"]
            .iter()
            .map(|k| u(&r["malformed_by"][*k]))
            .sum();
        assert_eq!(by, u(&d["malformed"]), "malformed_by adds up: {r}");
        match r["mode"].as_str() {
            Some("echo") => {
                assert!(r.get("sessions").is_none(), "{r}");
                assert_eq!(u(&r["malformed_by"]["short"]), 0, "{r}");
            }
            Some("twamp") => {
                assert_eq!(
                    r["stamped"], r["reflected"],
                    "every TWAMP reply is stamped: {r}"
                )
            }
            _ => panic!("mode: {r}"),
        }
    }
}

impl Reflector {
    /// Starts lreflect in `ns` and waits for its READY=1 (sent once its sockets are bound).
    fn start(ns: &Netns, args: &[&str]) -> Reflector {
        let mut cmd = ns.command(LREFLECT);
        cmd.args(args);
        Reflector::spawn(ns, cmd)
    }

    /// Runs `cmd` (lreflect, maybe behind a wrapper) with `NOTIFY_SOCKET` set, and waits for
    /// READY=1. The socket is writable by anyone, so lreflect may run as another user.
    fn spawn(ns: &Netns, mut cmd: Command) -> Reflector {
        require_root();
        // Several lreflects may run in one namespace: a directory each.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "lopa-lreflect-{}-{}-{n}",
            std::process::id(),
            ns.name
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let notify = UnixDatagram::bind(&path).expect("bind the notify socket");
        {
            use std::os::unix::fs::PermissionsExt;
            let perms = |mode| std::fs::Permissions::from_mode(mode);
            std::fs::set_permissions(&dir, perms(0o755)).unwrap();
            std::fs::set_permissions(&path, perms(0o777)).unwrap();
        }
        let Streamed {
            child,
            lines,
            stderr,
        } = spawn_streamed(cmd.env("NOTIFY_SOCKET", &path).stderr(Stdio::piped()));
        let mut r = Reflector {
            child,
            lines,
            stderr,
            notify,
            dir,
            started: Instant::now(),
        };
        r.expect_notification("READY=1");
        r
    }

    fn expect_notification(&mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = [0u8; 256];
        let got = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.notify
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.notify.recv(&mut buf) {
                // A timed receive returns EINTR when the test process was stopped and went on
                // (SIGSTOP/SIGCONT) meanwhile: not an answer, try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted && !left.is_zero() => continue,
                other => break other,
            }
        };
        match got {
            Ok(n) => assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), what),
            Err(e) => panic!(
                "no {what} from lreflect within 3 s ({e}); stderr: {}",
                self.stderr_now()
            ),
        }
    }

    fn stderr_now(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Counts the deadline from now: for a test that kept lreflect busy for seconds on purpose.
    fn renew_deadline(&mut self) {
        self.started = Instant::now();
    }

    /// The next stdout line, within the deadline.
    fn next_record(&self) -> Value {
        self.next_record_within(DEADLINE.saturating_sub(self.started.elapsed()))
    }

    /// The next record, waiting at most `left`.
    fn next_record_within(&self, left: Duration) -> Value {
        let line = self
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no record from lreflect: {e}"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Sends `sig` (SIGTERM, SIGINT) and collects everything until the exit.
    fn stop_with(mut self, sig: i32) -> Finished {
        // SAFETY: kill on the pid of a child not yet reaped.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
        let stopped = Instant::now();
        let mut records = Vec::new();
        loop {
            let left = DEADLINE.saturating_sub(stopped.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => records.push(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}")),
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("lreflect still running {DEADLINE:?} after the signal")
                }
            }
        }
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(stopped.elapsed() < DEADLINE, "lreflect did not exit");
            thread::sleep(Duration::from_millis(5));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        check_stats(&records);
        Finished {
            status,
            records,
            stderr,
        }
    }

    /// SIGTERM: a clean end with exit status 0 and nothing on stderr but the start line.
    fn stop(self) -> Finished {
        let f = self.stop_with(libc::SIGTERM);
        assert_eq!(f.status.code(), Some(0), "stderr: {}", f.stderr);
        assert_only_the_start_line(&f.stderr);
        f
    }
}

/// lreflect's stderr on a clean run: the one line that says what it answers (issue 17).
fn assert_only_the_start_line(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("lreflect: answering "),
        "stderr: {stderr}"
    );
}

impl Drop for Reflector {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// The test-side client

/// One UDP socket in a lab namespace, connected to the reflector (so the kernel hands it only
/// datagrams from exactly that address and port), with the TOS of its requests set and the
/// TOS of the answers reported.
struct Client {
    sock: Socket,
    server: SocketAddr,
}

/// One answer.
struct Answer {
    data: Vec<u8>,
    tos: Option<u8>,
    /// The TTL or hop limit it arrived with.
    ttl: Option<u8>,
}

impl Client {
    /// A socket bound to `local` (port 0: any) in `ns`, connected to `server`, sending with
    /// `tos`.
    fn new(ns: &Netns, local: &str, server: &str, tos: u8) -> Client {
        Client::with_ttl(ns, local, server, tos, None)
    }

    /// [`Client::new`], sending with TTL / hop limit `ttl` (the system's default, 64, if
    /// `None`) and reporting the TTL answers arrive with.
    fn with_ttl(ns: &Netns, local: &str, server: &str, tos: u8, ttl: Option<u8>) -> Client {
        let local: SocketAddr = local.parse().unwrap();
        let server: SocketAddr = server.parse().unwrap();
        let sock = in_netns(ns, move || {
            let s = Socket::new(Domain::for_address(local), Type::DGRAM, None).unwrap();
            let fd = s.as_raw_fd();
            let set = |level, name, v| lopa::net::socket::setsockopt_int(fd, level, name, v);
            if local.is_ipv6() {
                s.set_only_v6(true).unwrap();
                s.set_tclass_v6(u32::from(tos)).unwrap();
                s.set_recv_tclass_v6(true).unwrap();
                set(libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1).unwrap();
                if let Some(ttl) = ttl {
                    set(libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, i32::from(ttl)).unwrap();
                }
            } else {
                s.set_tos_v4(u32::from(tos)).unwrap();
                s.set_recv_tos_v4(true).unwrap();
                set(libc::IPPROTO_IP, libc::IP_RECVTTL, 1).unwrap();
                if let Some(ttl) = ttl {
                    s.set_ttl_v4(u32::from(ttl)).unwrap();
                }
            }
            // Room for a burst of answers that is read only afterwards.
            s.set_recv_buffer_size(1 << 20).unwrap();
            s.bind(&SockAddr::from(local)).unwrap();
            s.connect(&SockAddr::from(server)).unwrap();
            s
        });
        Client { sock, server }
    }

    fn send(&self, data: &[u8]) {
        let n = self
            .sock
            .send(data)
            .unwrap_or_else(|e| panic!("send {} bytes to {}: {e}", data.len(), self.server));
        assert_eq!(n, data.len());
    }

    /// The next answer, or `None` after `wait` without one.
    fn recv(&self, wait: Duration) -> Option<Answer> {
        let mut pfd = libc::pollfd {
            fd: self.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32) };
        if n <= 0 {
            return None;
        }
        let mut buf = vec![0u8; 65536];
        let r = lopa::net::recv_msg(self.sock.as_raw_fd(), &mut buf, false).expect("recvmsg");
        assert!(!r.truncated);
        assert_eq!(r.from, Some(self.server.ip().to_canonical()));
        buf.truncate(r.len);
        Some(Answer {
            data: buf,
            tos: r.anc.tos,
            ttl: r.anc.ttl,
        })
    }

    /// Sends `data` and waits up to a second for its answer.
    fn echo(&self, data: &[u8]) -> Answer {
        self.send(data);
        self.recv(Duration::from_secs(1))
            .unwrap_or_else(|| panic!("no answer from {} to {} bytes", self.server, data.len()))
    }

    /// Collects answers until none came for `quiet`.
    fn drain(&self, quiet: Duration) -> Vec<Answer> {
        std::iter::from_fn(|| self.recv(quiet)).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Echo

#[test]
fn every_datagram_comes_back_unchanged_at_its_size() {
    let lab = pair("lr-echo");
    // The default: [::]:8081, dual-stack.
    let r = Reflector::start(&lab.server, &[]);
    let v4 = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    let v6 = Client::new(&lab.client, "[fd00::1]:0", "[fd00::2]:8081", 0);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sent = 0;
    for (client, max) in [(&v4, 1472), (&v6, 1452)] {
        for len in [1, 2, 31, 32, 35, 36, 51, 52, 100, 512, 1000, 1400, max] {
            let data = rng.bytes(len);
            let a = client.echo(&data);
            assert_eq!(a.data, data, "{len} bytes via {}", client.server);
            sent += 1;
        }
        // Starts like a ludp payload but is another version: not ours, not touched.
        let mut other = ludp_payload(1, 64);
        other[4] = 2;
        assert_eq!(client.echo(&other).data, other);
        sent += 1;
    }
    let f = r.stop();
    let t = f.total("[::]:8081");
    assert_eq!((u(&t["received"]), u(&t["reflected"])), (sent, sent), "{t}");
    assert_eq!(u(&t["stamped"]), 0, "{t}");
    assert_eq!(f.records.len(), 1, "only the total: {:?}", f.records);
}

/// Checks one stamped answer against its request: only the flags and the reflector section
/// changed, the times lie between the request's send and the answer's arrival, in order, and
/// the TOS is the one the request was sent with.
fn check_stamped(request: &[u8], answer: &Answer, before_ns: u64, after_ns: u64, tos: u8) {
    let (repr, stamps) = ProbeRepr::parse(&answer.data).expect("a ludp payload");
    assert_eq!(answer.data.len(), request.len());
    let stamps = stamps.unwrap_or_else(|| panic!("{} bytes: not stamped", request.len()));
    assert_eq!(repr, ProbeRepr::parse(request).unwrap().0);
    assert!(
        before_ns <= stamps.rx_ns && stamps.rx_ns <= stamps.tx_ns && stamps.tx_ns <= after_ns,
        "send {before_ns} <= rx {} <= tx {} <= receive {after_ns}",
        stamps.rx_ns,
        stamps.tx_ns
    );
    assert_eq!(stamps.tos, tos, "the TOS the request arrived with");
    assert_eq!(stamps.synced, lopa::clock::synchronized());
    let mut expected = request.to_vec();
    assert!(ludp_payload::stamp(&mut expected, &stamps));
    assert_eq!(answer.data, expected, "nothing else changed");
}

#[test]
fn ludp_payloads_with_room_are_stamped_others_come_back_as_sent() {
    let lab = pair("lr-stamp");
    // An IPv4 socket of its own on 8081, a dual-stack one on 8082 (IPv4 clients there are
    // IPv4-mapped, with their TOS in IP_TOS).
    let r = Reflector::start(
        &lab.server,
        &["--echo", "10.0.0.2:8081", "--echo", "[::]:8082"],
    );
    let clients = [
        Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0xb8),
        Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8082", 0x28),
        Client::new(&lab.client, "[fd00::1]:0", "[fd00::2]:8082", 0x88),
    ];
    let tos = [0xb8, 0x28, 0x88];
    for (c, tos) in clients.iter().zip(tos) {
        for (seq, len) in [52usize, 64, 1000].into_iter().enumerate() {
            let request = ludp_payload(seq as u64, len);
            let before = wall_ns();
            let a = c.echo(&request);
            let after = wall_ns();
            check_stamped(&request, &a, before, after, tos);
            assert_eq!(
                a.tos,
                Some(0),
                "without --reflect-tos answers leave with TOS 0"
            );
        }
        // No room for the stamps (LLAMA's 36 bytes among them): echoed as they are.
        for len in [32, 36, 51] {
            let request = ludp_payload(9, len);
            assert_eq!(c.echo(&request).data, request, "{len} bytes");
        }
    }
    let f = r.stop();
    let v4 = f.total("10.0.0.2:8081");
    assert_eq!(
        (u(&v4["received"]), u(&v4["reflected"]), u(&v4["stamped"])),
        (6, 6, 3),
        "{v4}"
    );
    let dual = f.total("[::]:8082");
    assert_eq!(
        (
            u(&dual["received"]),
            u(&dual["reflected"]),
            u(&dual["stamped"])
        ),
        (12, 12, 6),
        "{dual}"
    );
}

/// Installs, in `ns`, counters of incoming UDP from port 8081 whose DSCP is EF.
fn count_ef(ns: &Netns) {
    ns.run(
        "nft add table inet lr && \
         nft add chain inet lr in '{ type filter hook input priority 0; }' && \
         nft add rule inet lr in udp sport 8081 ip dscp ef counter && \
         nft add rule inet lr in udp sport 8081 ip6 dscp ef counter",
    );
}

/// The two EF counters installed by [`count_ef`]: (IPv4, IPv6) packets.
fn ef_counts(ns: &Netns) -> (u64, u64) {
    let out = ns.run("nft list chain inet lr in");
    let counts: Vec<u64> = out
        .lines()
        .filter_map(|l| l.split("counter packets ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{out}");
    (counts[0], counts[1])
}

#[test]
fn reflect_tos_gives_answers_the_tos_of_their_request() {
    let lab = pair("lr-tos");
    count_ef(&lab.client);
    let r = Reflector::start(&lab.server, &["--reflect-tos"]);
    // EF is DSCP 46, TOS 0xb8; the ECN bits are reflected too.
    let v4 = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0xb8);
    let v6 = Client::new(&lab.client, "[fd00::1]:0", "[fd00::2]:8081", 0xb8);
    let af41 = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0x88);
    let plain = Client::new(&lab.client, "[fd00::1]:0", "[fd00::2]:8081", 0);
    for _ in 0..3 {
        assert_eq!(v4.echo(b"tos").tos, Some(0xb8));
        assert_eq!(v6.echo(b"tos").tos, Some(0xb8));
        assert_eq!(af41.echo(&ludp_payload(1, 64)).tos, Some(0x88));
        assert_eq!(plain.echo(b"tos").tos, Some(0));
    }
    assert_eq!(ef_counts(&lab.client), (3, 3), "nftables saw EF answers");
    r.stop();
}

// ---------------------------------------------------------------------------------------------
// Access list and limits

#[test]
fn the_access_list_drops_others_and_counts_them() {
    let lab = pair("lr-acl");
    lab.client
        .run("ip addr add 10.0.0.3/24 dev eth0 && ip addr add fd00::3/64 dev eth0 nodad");
    let r = Reflector::start(
        &lab.server,
        &["--allow", "10.0.0.1", "--allow", "fd00::/127"],
    );
    let allowed = [
        Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0),
        Client::new(&lab.client, "[fd00::1]:0", "[fd00::2]:8081", 0),
    ];
    let refused = [
        Client::new(&lab.client, "10.0.0.3:0", "10.0.0.2:8081", 0),
        Client::new(&lab.client, "[fd00::3]:0", "[fd00::2]:8081", 0),
    ];
    for c in &refused {
        for _ in 0..5 {
            c.send(b"let me in");
        }
    }
    for c in &allowed {
        for _ in 0..5 {
            assert_eq!(c.echo(b"hello").data, b"hello");
        }
    }
    for c in &refused {
        assert!(c.recv(Duration::from_millis(100)).is_none(), "{}", c.server);
    }
    let f = r.stop();
    let t = f.total("[::]:8081");
    assert_eq!((u(&t["received"]), u(&t["reflected"])), (20, 10), "{t}");
    assert_eq!(u(&t["dropped"]["acl"]), 10, "{t}");
}

#[test]
fn the_per_source_rate_limit_drops_and_counts() {
    let lab = pair("lr-rate");
    lab.client.run("ip addr add 10.0.0.3/24 dev eth0");
    let r = Reflector::start(
        &lab.server,
        &["--rate-limit", "50", "--burst", "10", "--max-pps", "0"],
    );
    let busy = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    let other = Client::new(&lab.client, "10.0.0.3:0", "10.0.0.2:8081", 0);
    let start = Instant::now();
    for _ in 0..200 {
        busy.send(b"flood");
    }
    let sending = start.elapsed();
    for _ in 0..5 {
        assert_eq!(other.echo(b"me too").data, b"me too", "a bucket of its own");
    }
    let answered = busy.drain(Duration::from_millis(100)).len() as u64;
    // The burst, plus what 50/s refills while the 200 were sent (at most a few ms).
    let most = 10 + (sending.as_secs_f64() * 50.0).ceil() as u64 + 1;
    assert!(
        (10..=most).contains(&answered),
        "{answered} answered, expected 10..={most}"
    );
    let f = r.stop();
    let t = f.total("[::]:8081");
    assert_eq!(u(&t["received"]), 205, "{t}");
    assert_eq!(u(&t["reflected"]), answered + 5, "{t}");
    assert_eq!(u(&t["dropped"]["rate_limit"]), 200 - answered, "{t}");
    assert_eq!(u(&t["dropped"]["global_cap"]), 0, "{t}");
}

#[test]
fn the_global_cap_drops_and_counts() {
    let lab = pair("lr-cap");
    lab.client.run("ip addr add 10.0.0.3/24 dev eth0");
    // 50/s in all: bursts of 5.
    let r = Reflector::start(&lab.server, &["--rate-limit", "0", "--max-pps", "50"]);
    let a = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    let b = Client::new(&lab.client, "[fd00::1]:0", "[fd00::2]:8081", 0);
    let start = Instant::now();
    for _ in 0..20 {
        a.send(b"a");
        b.send(b"b");
    }
    let sending = start.elapsed();
    let answered = (a.drain(Duration::from_millis(100)).len()
        + b.drain(Duration::from_millis(10)).len()) as u64;
    let most = 5 + (sending.as_secs_f64() * 50.0).ceil() as u64 + 1;
    assert!(
        (5..=most).contains(&answered),
        "{answered} answered, expected 5..={most}"
    );
    let f = r.stop();
    let t = f.total("[::]:8081");
    assert_eq!(
        (u(&t["received"]), u(&t["reflected"])),
        (40, answered),
        "{t}"
    );
    assert_eq!(u(&t["dropped"]["global_cap"]), 40 - answered, "{t}");
    assert_eq!(u(&t["dropped"]["rate_limit"]), 0, "{t}");
}

// ---------------------------------------------------------------------------------------------
// Floods

/// `Udp: RcvbufErrors` of a namespace: datagrams the kernel dropped because a socket's
/// receive buffer was full.
fn rcvbuf_errors(ns: &Netns) -> u64 {
    let snmp = ns.run("cat /proc/net/snmp");
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next().unwrap(), udp.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == "RcvbufErrors")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

#[test]
fn a_malformed_flood_leaves_a_legitimate_client_undisturbed() {
    let lab = pair("lr-flood");
    let flood_ns = Netns::new("lr-flood-src");
    link(
        &flood_ns,
        "eth0",
        &["10.0.1.1/24"],
        &lab.server,
        "eth1",
        &["10.0.1.2/24"],
    );
    let r = Reflector::start(&lab.server, &["--echo", "0.0.0.0:8081"]);
    let client = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    // Warm up every path (sizes, stamping) before the first memory reading.
    for len in [1, 64, 1472] {
        client.echo(&ludp_payload(0, len.max(32))[..len]);
    }
    let rss_before = rss_kib(r.pid());

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let so_far = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let flood = {
        let sock = in_netns(&flood_ns, || {
            std::net::UdpSocket::bind("10.0.1.1:0").unwrap()
        });
        let (stop, so_far) = (stop.clone(), so_far.clone());
        thread::spawn(move || {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d);
            let big = vec![0xffu8; 65507];
            let (mut sent, mut malformed) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let data = match sent % 100 {
                    0 => big.clone(),
                    1..=29 => Vec::new(),
                    30..=59 => vec![0x42],
                    _ => {
                        let len = 2 + (rng.next() % 1400) as usize;
                        rng.bytes(len)
                    }
                };
                if sock.send_to(&data, "10.0.1.2:8081").is_ok() {
                    sent += 1;
                    so_far.store(sent, std::sync::atomic::Ordering::Relaxed);
                    malformed += u64::from(data.is_empty() || data.len() > 9000);
                }
                // Paced at about 40,000 a second: far above the limits under test, yet below
                // what a loaded 2-CPU CI machine's socket buffers absorb, so a legitimate
                // datagram is never lost in the kernel before lreflect sees it.
                if sent % 400 == 0 {
                    thread::sleep(Duration::from_millis(10));
                }
            }
            (sent, malformed)
        })
    };
    let mut lost = 0;
    // At least 200 probes, and as many more as it takes for the flood to reach 20,000
    // datagrams (a few seconds on a machine busy elsewhere).
    let mut probes = 0;
    while probes < 200 || so_far.load(std::sync::atomic::Ordering::Relaxed) < 20_000 {
        probes += 1;
        let seq = probes;
        let request = ludp_payload(seq, 64);
        client.send(&request);
        match client.recv(Duration::from_millis(500)) {
            Some(a) => assert_eq!(ProbeRepr::parse(&a.data).unwrap().0.seq, seq),
            None => lost += 1,
        }
        thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (flooded, flooded_malformed) = flood.join().unwrap();
    let rss_after = rss_kib(r.pid());
    let kernel_drops = rcvbuf_errors(&lab.server);
    let f = r.stop();
    let t = f.total("0.0.0.0:8081");
    eprintln!(
        "flood: {flooded} sent, rss {rss_before} -> {rss_after} KiB, rcvbuf errors {kernel_drops}, {t}"
    );
    assert_eq!(lost, 0, "the legitimate client lost {lost} of {probes}");
    assert!(flooded >= 20_000, "the flood was only {flooded} datagrams");
    let d = &t["dropped"];
    // Everything sent arrived, unless the kernel said it dropped some.
    let legit = probes + 3;
    assert!(u(&t["received"]) <= flooded + legit, "{t}");
    assert!(u(&t["received"]) + kernel_drops >= flooded + legit, "{t}");
    // Empty and 65507-byte datagrams (longer than --max-size 9000) are malformed.
    assert!(u(&d["malformed"]) <= flooded_malformed, "{t}");
    assert!(
        u(&d["malformed"]) + kernel_drops >= flooded_malformed,
        "{t}"
    );
    assert!(
        u(&d["rate_limit"]) > 0,
        "the random datagrams over 1000/s: {t}"
    );
    assert!(
        rss_after <= rss_before + 256,
        "resident memory grew from {rss_before} to {rss_after} KiB"
    );
}

/// A raw IPv4 socket in `ns` for [`spoofed`] datagrams.
fn raw_sender(ns: &Netns) -> Socket {
    in_netns(ns, || {
        Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(socket2::Protocol::from(libc::IPPROTO_RAW)),
        )
        .unwrap()
    })
}

/// An IPv4/UDP datagram with a made-up source address (port 40000), for a raw socket
/// (`IPPROTO_RAW`: the kernel fills in the IP checksum and length; a zero UDP checksum means
/// none).
fn spoofed(src: [u8; 4], dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    spoofed_from(src, 40000, dst, dport, payload)
}

/// [`spoofed`] with the source port `sport`.
fn spoofed_from(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[8] = 64;
    p[9] = libc::IPPROTO_UDP as u8;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Two reflectors on the same ports, and datagrams spoofed "from" one's echo port to the
/// other's echo and TWAMP sockets (and one "from" a chargen port): by default the second drops
/// them as `loop` and neither ever hears from the other; with --no-loop-guard on both, the
/// same datagrams start the endless exchanges the guard is there to stop. A TWAMP socket still
/// answers a sender whose source port is a TWAMP port (862 to 862 setups).
#[test]
fn a_datagram_spoofed_from_another_reflector_starts_no_endless_exchange() {
    let lab = pair("lr-loop");
    let raw = raw_sender(&lab.client);
    let to = SockAddr::from("10.0.0.2:0".parse::<SocketAddr>().unwrap());
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    for guard in [true, false] {
        let start = |ns: &Netns, ip: &str| {
            let (echo, twamp) = (format!("{ip}:8081"), format!("{ip}:8620"));
            // Unguarded, A's windows show the exchange going on.
            let every = if guard { "0" } else { "100ms" };
            let mut args = vec!["--echo", &echo, "--twamp", &twamp, "--stats-every", every];
            if !guard {
                // Without limits: on loopback-like round trips the exchange outruns the
                // per-source rate limit, which then ends it; across a WAN it would not.
                args.extend(["--no-loop-guard", "--rate-limit", "0", "--max-pps", "0"]);
            }
            Reflector::start(ns, &args)
        };
        let (ra, rb) = (
            start(&lab.client, "10.0.0.1"),
            start(&lab.server, "10.0.0.2"),
        );
        let sends = [
            spoofed_from(a, 8081, b, 8081, b"from the other reflector"),
            spoofed_from(a, 8081, b, 8620, &twamp_request(0, 0, 44)),
            spoofed_from(a, 19, b, 8081, b"from a chargen port"),
        ];
        for p in &sends {
            raw.send_to(p, &to).unwrap();
        }
        if guard {
            // Time for anything that would come back to have come back.
            thread::sleep(Duration::from_millis(300));
            let (fa, fb) = (ra.stop(), rb.stop());
            let b_echo = fb.total("10.0.0.2:8081");
            let b_twamp = fb.total("10.0.0.2:8620");
            assert_eq!(u(&b_echo["received"]), 2, "{b_echo}");
            assert_eq!(u(&b_echo["dropped"]["loop"]), 2, "{b_echo}");
            assert_eq!(u(&b_twamp["received"]), 1, "{b_twamp}");
            assert_eq!(u(&b_twamp["dropped"]["loop"]), 1, "{b_twamp}");
            for listen in ["10.0.0.1:8081", "10.0.0.1:8620"] {
                let t = fa.total(listen);
                assert_eq!(u(&t["received"]), 0, "nothing came back: {t}");
            }
        } else {
            // Three datagrams sent, and A's echo socket keeps receiving: each side answers
            // the other's answers (until the deadline of next_record, were it to stop).
            let mut got = 0;
            while got < 100 {
                let r = ra.next_record();
                assert_eq!(u(&r["dropped"]["loop"]), 0, "{r}");
                if r["listen"] == "10.0.0.1:8081" {
                    got += u(&r["received"]);
                }
            }
            let fb = rb.stop();
            for listen in ["10.0.0.2:8081", "10.0.0.2:8620"] {
                let t = fb.total(listen);
                assert!(u(&t["received"]) >= 20, "an endless exchange: {t}");
            }
            ra.stop();
        }
    }
    // A TWAMP-Light sender on the TWAMP port of the reflector (862 to 862) is answered.
    let rb = Reflector::start(&lab.server, &["--twamp", "10.0.0.2:8620"]);
    let c = Client::new(&lab.client, "10.0.0.1:8620", "10.0.0.2:8620", 0);
    twamp_echo(&c, &twamp_request(0, 0, 44), 0, 64);
    let t = rb.stop();
    assert_eq!(u(&t.total("10.0.0.2:8620")["dropped"]["loop"]), 0);
}

#[test]
fn a_flood_from_many_sources_keeps_memory_flat() {
    let lab = pair("lr-spoof");
    // Answers to the made-up sources go to the client namespace, which drops them.
    lab.server.run("ip route add default via 10.0.0.1");
    // No global cap: every one of these sources is to be answered.
    let r = Reflector::start(&lab.server, &["--echo", "10.0.0.2:8081", "--max-pps", "0"]);
    let client = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    client.echo(&ludp_payload(0, 64));
    let rss_before = rss_kib(r.pid());
    let raw = raw_sender(&lab.client);
    let to = SockAddr::from("10.0.0.2:0".parse::<SocketAddr>().unwrap());
    // More sources than the table holds (65536 by default), one datagram each.
    let sources = 100_000u32;
    for i in 0..sources {
        let src = (0x0a40_0000 + i).to_be_bytes();
        raw.send_to(&spoofed(src, [10, 0, 0, 2], 8081, b"spoof"), &to)
            .unwrap();
    }
    // Once the client has an answer, everything sent before it was read. The flood can fill
    // the socket's buffer (the kernel counts that), so the client may need a few tries.
    let mut tries = 0;
    loop {
        tries += 1;
        client.send(b"after");
        if client.recv(Duration::from_millis(300)).is_some() {
            break;
        }
        assert!(tries < 10, "no answer after the flood");
    }
    let rss_after = rss_kib(r.pid());
    let f = r.stop();
    let t = f.total("10.0.0.2:8081");
    let d = &t["dropped"];
    assert_eq!(
        u(&t["received"]) + rcvbuf_errors(&lab.server),
        u64::from(sources) + 1 + tries,
        "{t}"
    );
    assert_eq!(u(&d["rate_limit"]), 0, "one datagram per source: {t}");
    assert_eq!(u(&t["reflected"]), u(&t["received"]), "{t}");
    assert!(
        rss_after <= rss_before + 256,
        "resident memory grew from {rss_before} to {rss_after} KiB"
    );
}

// ---------------------------------------------------------------------------------------------
// Answering from the right address

#[test]
fn answers_come_from_the_address_the_request_was_sent_to() {
    let lab = pair("lr-src");
    // Secondary addresses: a reply by route alone would leave from the primary ones.
    lab.server
        .run("ip addr add 10.0.0.22/24 dev eth0 && ip addr add fd00::22/64 dev eth0 nodad");
    // Link-local addresses: the answer must leave from the right one, on the right link.
    lab.server
        .run("ip addr add fe80::2/64 dev eth0 nodad && ip addr add fe80::22/64 dev eth0 nodad");
    lab.client.run("ip addr add fe80::1/64 dev eth0 nodad");
    let ifindex = lab.client.run("cat /sys/class/net/eth0/ifindex");
    let ifindex = ifindex.trim();
    let link_local = [
        format!("[fe80::2%{ifindex}]:8081"),
        format!("[fe80::22%{ifindex}]:8081"),
    ];
    let r = Reflector::start(
        &lab.server,
        &["--echo", "[::]:8081", "--echo", "0.0.0.0:8082"],
    );
    for server in [
        "10.0.0.2:8081",
        "10.0.0.22:8081",
        "[fd00::2]:8081",
        "[fd00::22]:8081",
        "10.0.0.2:8082",
        "10.0.0.22:8082",
        &link_local[0],
        &link_local[1],
    ] {
        let local = if server.starts_with("[fe80") {
            format!("[fe80::1%{ifindex}]:0")
        } else if server.starts_with('[') {
            "[fd00::1]:0".to_string()
        } else {
            "10.0.0.1:0".to_string()
        };
        let c = Client::new(&lab.client, &local, server, 0);
        // The client is connected: only an answer from exactly this address and port counts.
        assert_eq!(
            c.echo(server.as_bytes()).data,
            server.as_bytes(),
            "{server}"
        );
    }
    r.stop();
}

// ---------------------------------------------------------------------------------------------
// Service life: notification, signals, stats periods, errors

/// Started by root, lreflect binds (port 862 too) and then runs as nobody with no capability
/// at all, and keeps answering.
#[test]
fn started_by_root_it_runs_as_nobody_without_capabilities() {
    let lab = pair("lr-root");
    let r = Reflector::start(
        &lab.server,
        &["--echo", "10.0.0.2:8081", "--twamp", "10.0.0.2:862"],
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", r.pid())).expect("status");
    let field = |name: &str| -> Vec<String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {status}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(field("Uid:"), ["65534"; 4], "{status}");
    assert_eq!(field("Gid:"), ["65534"; 4], "{status}");
    assert!(field("Groups:").is_empty(), "{status}");
    for caps in ["CapPrm:", "CapEff:", "CapAmb:"] {
        assert_eq!(field(caps), ["0000000000000000"], "{caps} {status}");
    }
    let c = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    c.echo(&ludp_payload(1, 64));
    let t = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:862", 0);
    twamp_echo(&t, &twamp_request(0, 0, 44), 0, 64);
    r.stop();
}

/// SIGHUP (a terminal or SSH session gone) ends lreflect as SIGTERM does: the total stats
/// are written, status 0.
#[test]
fn sighup_ends_with_the_total_stats() {
    let lab = pair("lr-hup");
    let r = Reflector::start(&lab.server, &["--echo", "10.0.0.2:8081"]);
    let c = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    c.echo(&ludp_payload(1, 64));
    let f = r.stop_with(libc::SIGHUP);
    assert_eq!(f.status.code(), Some(0), "{}", f.stderr);
    let t = f.total("10.0.0.2:8081");
    assert_eq!((u(&t["received"]), u(&t["reflected"])), (1, 1), "{t}");
}

#[test]
fn periodic_stats_and_sigint_give_windows_and_a_total_that_add_up() {
    let lab = pair("lr-periods");
    let r = Reflector::start(
        &lab.server,
        &[
            "--stats-every",
            "200ms",
            "--tag",
            "site=lab",
            "--echo",
            "10.0.0.2:8081",
        ],
    );
    let c = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    c.send(b"");
    for i in 0..10 {
        c.echo(&ludp_payload(i, 64));
    }
    // Two windows, at 200 ms and 400 ms.
    let windows = [r.next_record(), r.next_record()];
    c.echo(b"late");
    let f = r.stop_with(libc::SIGINT);
    assert_eq!(f.status.code(), Some(0), "{}", f.stderr);
    assert_only_the_start_line(&f.stderr);
    let mut all = windows.to_vec();
    all.extend(f.records.iter().cloned());
    check_stats(&all);
    let (periodic, total): (Vec<&Value>, Vec<&Value>) =
        all.iter().partition(|r| r["window"] != "total");
    assert_eq!(total.len(), 1, "{all:?}");
    let total = total[0];
    assert_eq!(all.last(), Some(total), "the total comes last");
    for w in &periodic {
        assert_eq!(w["window"], "200ms", "{w}");
        assert_eq!(w["tags"]["site"], "lab", "{w}");
        assert_eq!(w["listen"], "10.0.0.2:8081", "{w}");
    }
    let sum = |k: &str| periodic.iter().map(|w| u(&w[k])).sum::<u64>();
    assert!(sum("received") <= u(&total["received"]));
    assert_eq!(u(&total["received"]), 12, "{total}");
    assert_eq!(u(&total["reflected"]), 11, "{total}");
    assert_eq!(u(&total["stamped"]), 10, "{total}");
    assert_eq!(
        u(&total["dropped"]["malformed"]),
        1,
        "the empty datagram: {total}"
    );
    assert_eq!(sum("received"), 11, "the first two windows: {periodic:?}");
}

#[test]
fn ready_and_stopping_go_to_an_abstract_notify_socket() {
    require_root();
    let ns = Netns::new("lr-notify");
    // Abstract socket names belong to a network namespace: bind it in lreflect's.
    let name = format!("lopa-lreflect-notify-{}", std::process::id());
    let notify = {
        let name = name.clone();
        in_netns(&ns, move || {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
            UnixDatagram::bind_addr(&addr).unwrap()
        })
    };
    notify
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let child = ns
        .command(LREFLECT)
        .args(["--echo", "127.0.0.1:8081"])
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).expect("READY=1 within 3 s");
    assert_eq!(&buf[..n], b"READY=1");
    // SAFETY: kill on our unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_only_the_start_line(&String::from_utf8_lossy(&out.stderr));
}

/// Runs lreflect to its end (it must fail at once) and checks for one line and status 2.
fn fails_with_one_line(mut cmd: Command, mentions: &[&str]) {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    thread::spawn(move || tx.send(child.wait_with_output()));
    let out = match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: the waiting thread has not reaped it.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{what}: still running, expected an error");
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(out.stdout, b"", "{what}");
    assert!(
        stderr.starts_with("lreflect: ") && stderr.lines().count() == 1 && stderr.ends_with('\n'),
        "{what}: expected one line, got {stderr:?}"
    );
    for m in mentions {
        assert!(
            stderr.contains(m),
            "{what}: {stderr:?} should mention {m:?}"
        );
    }
}

#[test]
fn bind_failures_are_one_line_and_exit_2() {
    let lab = pair("lr-bind");
    let _held = in_netns(&lab.server, || {
        std::net::UdpSocket::bind("10.0.0.2:8081").unwrap()
    });
    let lreflect = |args: &[&str]| {
        let mut c = lab.server.command(LREFLECT);
        c.args(args);
        c
    };
    fails_with_one_line(
        lreflect(&["--echo", "10.0.0.2:8081"]),
        &["10.0.0.2:8081", "in use"],
    );
    fails_with_one_line(
        lreflect(&[
            "--echo",
            "[::]:8082",
            "--echo",
            "[fd00::2]:8081",
            "--echo",
            "10.0.0.2:8081",
        ]),
        &["10.0.0.2:8081", "in use"],
    );
    fails_with_one_line(
        lreflect(&["--echo", "192.0.2.1:8081"]),
        &["192.0.2.1:8081", "no interface has this address"],
    );
    fails_with_one_line(
        lreflect(&["--echo", "10.0.0.2:9000", "--echo", "10.0.0.2:9000"]),
        &["given twice"],
    );
    fails_with_one_line(
        lreflect(&["--twamp", "[::]:862", "--twamp", "[::]:862"]),
        &["--twamp [::]:862 is given twice"],
    );
    fails_with_one_line(
        lreflect(&["--echo", "10.0.0.2:862", "--twamp", "10.0.0.2:862"]),
        &["10.0.0.2:862", "both as --echo and as --twamp"],
    );
    fails_with_one_line(
        lreflect(&["--twamp", "10.0.0.2:8081"]),
        &["10.0.0.2:8081", "in use"],
    );
    // No permission: a port below 1024 as nobody (a copy of the binary it may run).
    let copy = BinCopy::new("bind");
    let mut su = lab.server.command("su");
    su.args(["nobody", "-s", "/bin/sh", "-c"])
        .arg(format!("exec {} --echo 10.0.0.2:81", copy.bin.display()));
    fails_with_one_line(su, &["10.0.0.2:81", "CAP_NET_BIND_SERVICE"]);
}

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    for (args, mention) in [
        (&["--echo", "localhost"][..], "ADDR:PORT"),
        (&["--echo", "10.0.0.1"][..], "ADDR:PORT"),
        (&["--echo", "[::]:70000"][..], "ADDR:PORT"),
        (&["--allow", "10.0.0.0/33"][..], "CIDR"),
        (&["--allow", "everyone"][..], "CIDR"),
        (&["--rate-limit", "-1"][..], "--rate-limit"),
        (&["--max-pps", "lots"][..], "--max-pps"),
        (&["--burst", "0"][..], "--burst"),
        (&["--max-size", "65536"][..], "--max-size"),
        (&["--stats-every", "soon"][..], "not a duration"),
        // Shorter, the stats would be all the loop does, and nothing would be answered.
        (&["--stats-every", "1ns"][..], "at least 1ms"),
        (&["--format", "xml"][..], "possible values"),
        (&["--tag", "novalue"][..], "key=value"),
        (&["extra"][..], "unexpected argument"),
        (&["--twamp", "862"][..], "ADDR:PORT"),
        (&["--stateless"][..], "--twamp"),
        (&["--session-timeout", "1m"][..], "--twamp"),
        (
            &["--twamp", "[::]:862", "--sessions", "7"][..],
            "--sessions",
        ),
        (
            &["--twamp", "[::]:862", "--session-timeout", "soon"][..],
            "not a duration",
        ),
    ] {
        let mut c = Command::new(LREFLECT);
        c.args(args);
        fails_with_one_line(c, &[mention]);
    }
}

#[test]
fn as_a_service_user_it_binds_a_low_port_and_drops_the_capability() {
    let lab = pair("lr-svc");
    // As the systemd unit runs it: an unprivileged user with CAP_NET_BIND_SERVICE as an ambient
    // capability. A copy of the binary that user may run.
    let copy = BinCopy::new("svc");
    let mut cmd = lab.server.command("setpriv");
    cmd.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=+net_bind_service",
        "--ambient-caps=+net_bind_service",
    ])
    .arg(&copy.bin)
    .args(["--echo", "10.0.0.2:81", "--twamp", "10.0.0.2:862"]);
    let r = Reflector::spawn(&lab.server, cmd);
    // READY=1 comes after the privileges are gone.
    let status = std::fs::read_to_string(format!("/proc/{}/status", r.pid())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
            .trim()
            .to_string()
    };
    for set in ["CapPrm:", "CapEff:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000000", "{set} once bound");
    }
    assert_ne!(field("Uid:").split_whitespace().next(), Some("0"));
    let c = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:81", 0);
    assert_eq!(c.echo(b"low port").data, b"low port");
    // The TWAMP port, 862, and TTLs read after the privileges are gone.
    let tw = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:862", 0);
    twamp_echo(&tw, &twamp_request(9, 1, 44), 0, 64);
    let f = r.stop();
    assert_eq!(u(&f.total("10.0.0.2:81")["reflected"]), 1);
    assert_eq!(u(&f.total("10.0.0.2:862")["reflected"]), 1);
}

/// Stops lreflect while `f` sends, so everything sent arrives in its socket at once and is read
/// in one batch when it continues.
fn while_stopped(r: &Reflector, f: impl FnOnce()) {
    // SAFETY: signals to our unreaped child.
    unsafe { libc::kill(r.pid() as i32, libc::SIGSTOP) };
    f();
    unsafe { libc::kill(r.pid() as i32, libc::SIGCONT) };
}

#[test]
fn answers_read_in_one_batch_come_back_one_by_one_in_order() {
    let lab = pair("lr-batch");
    // A path MTU of 1000: 1100-byte answers cannot be coalesced (each must be fragmented), so
    // that send is refused and they go one by one.
    lab.client.run("ip link set eth0 mtu 1000");
    lab.server.run("ip link set eth0 mtu 1000");
    let r = Reflector::start(&lab.server, &["--rate-limit", "0"]);
    let c = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    let mut rng = Rng(7);
    let mut sent = Vec::new();
    // Runs of one size (coalesced), sizes changing, ludp payloads among them, and the
    // 1100-byte run last.
    let mut plan = vec![20; 30];
    plan.extend([20, 21, 21, 64, 64, 64, 5]);
    plan.extend([1100; 3]);
    while_stopped(&r, || {
        for (k, len) in plan.iter().enumerate() {
            let data = if (33..36).contains(&k) {
                ludp_payload(k as u64, *len)
            } else {
                rng.bytes(*len)
            };
            c.send(&data);
            sent.push(data);
        }
    });
    let answers = c.drain(Duration::from_millis(300));
    assert_eq!(answers.len(), sent.len());
    for (k, (a, d)) in answers.iter().zip(&sent).enumerate() {
        assert_eq!(a.data.len(), d.len(), "answer {k}");
        if ludp_payload::is_probe(d) {
            assert_eq!(
                ProbeRepr::parse(&a.data).unwrap().0,
                ProbeRepr::parse(d).unwrap().0
            );
            assert!(ProbeRepr::parse(&a.data).unwrap().1.is_some(), "stamped");
        } else {
            assert_eq!(&a.data, d, "answer {k}");
        }
    }
    let f = r.stop();
    let t = f.total("[::]:8081");
    assert_eq!(u(&t["reflected"]), sent.len() as u64, "{t}");
    assert_eq!(u(&t["dropped"]["send_error"]), 0, "{t}");
}

// ---------------------------------------------------------------------------------------------
// TWAMP-Light / STAMP Session-Reflector

/// stamp-suite 1.0.0, the independent STAMP implementation `.ci/run` installs.
const STAMP_SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/peers/bin/stamp-suite");

/// The Error Estimate in every test request: S set, multiplier 1.
const SENDER_ERROR: u16 = 0x8001;

/// A Session-Sender packet of `len` bytes (at least 14): `seq`, T1 the wall clock now, and
/// `ssid` when it is a STAMP packet (44 bytes or more). The rest is a pattern of where each
/// byte is (TWAMP-Light padding, and whatever follows a STAMP packet's 44 bytes); a STAMP
/// packet's MBZ bytes are zero.
fn twamp_request(seq: u32, ssid: u16, len: usize) -> Vec<u8> {
    let mut b: Vec<u8> = (0..len).map(|k| (k as u8).wrapping_mul(7) ^ 0xa5).collect();
    let stamp = len >= twamp::STAMP_LEN;
    if stamp {
        b[16..twamp::STAMP_LEN].fill(0);
    }
    SenderPacket {
        seq,
        timestamp: Timestamp::from_unix_ns(wall_ns(), NtpFormat::Ntp),
        error: SENDER_ERROR,
        ssid: stamp.then_some(ssid),
    }
    .write(&mut b)
    .unwrap();
    b
}

/// A time in a reply, in ns since the Unix epoch.
fn unix_ns(t: Timestamp) -> u64 {
    t.to_unix_ns(NtpFormat::Ntp, wall_ns())
}

/// Checks a reply against its request: the length (max(request, 44), so never more than 30
/// bytes above the request), sequence number `seq`, the sender's fields and SSID copied, the
/// TTL the request arrived with, MBZ zero, bytes beyond 44 handled as a malformed TLV, a valid
/// Error Estimate
/// whose S bit is the host's sync state, and T2 and T3 in order between the request's send
/// and the reply's arrival.
fn check_twamp_reply(
    request: &[u8],
    reply: &Answer,
    before_ns: u64,
    after_ns: u64,
    seq: u32,
    ttl: u8,
) {
    let len = request.len();
    let data = &reply.data;
    assert_eq!(data.len(), len.max(44), "reply to a {len}-byte request");
    assert!(data.len() <= len + twamp::MAX_AMPLIFICATION);
    let p = ReflectorPacket::parse(data).unwrap();
    let q = SenderPacket::parse(request).unwrap();
    assert_eq!(p.seq, seq, "{len} bytes: the reflector's sequence number");
    assert_eq!(
        (p.sender_seq, p.sender_timestamp, p.sender_error),
        (q.seq, q.timestamp, Some(q.error)),
        "{len} bytes: the sender's fields"
    );
    assert_eq!(
        p.ssid,
        q.ssid.unwrap_or(0),
        "{len} bytes: SSID of STAMP requests"
    );
    assert_eq!(p.sender_ttl, Some(ttl), "{len} bytes: TTL at the reflector");
    assert_eq!(&data[38..40], &[0, 0], "MBZ");
    assert_eq!(&data[41..44], &[0, 0, 0], "MBZ");
    if len > 44 {
        // Bytes beyond 44 are RFC 8972 TLVs. This pattern is none (its first header claims
        // 59,372 bytes of value): the reflector marks it malformed (the flags byte becomes
        // M, 0x40) and copies the rest as it came (RFC 8972 section 4).
        assert_eq!(data[44], 0x40, "{len} bytes: M flag on a malformed TLV");
        assert_eq!(&data[45..], &request[45..], "{len} bytes: the rest copied");
    }
    let e = ErrorEstimate::decode(p.error).expect("a valid Error Estimate (multiplier not 0)");
    assert_eq!(e.synced, lopa::clock::synchronized(), "S bit");
    assert_eq!(e.format, NtpFormat::Ntp);
    let (t2, t3) = (unix_ns(p.receive_timestamp), unix_ns(p.timestamp));
    // Read back from 2^-32 s units, a time may be 1 ns off.
    assert!(
        before_ns <= t2 + 1 && t2 <= t3 && t3 <= after_ns + 1,
        "sent {before_ns} <= T2 {t2} <= T3 {t3} <= received {after_ns}"
    );
}

/// Sends a TWAMP request and checks its reply; returns the reply.
fn twamp_echo(c: &Client, request: &[u8], seq: u32, ttl: u8) -> Answer {
    let before = wall_ns();
    let a = c.echo(request);
    let after = wall_ns();
    check_twamp_reply(request, &a, before, after, seq, ttl);
    a
}

/// The sessions member of a stats record: (active, started, expired, evicted).
fn sessions(r: &Value) -> (u64, u64, u64, u64) {
    let s = &r["sessions"];
    assert!(s.is_object(), "no sessions in {r}");
    (
        u(&s["active"]),
        u(&s["started"]),
        u(&s["expired"]),
        u(&s["evicted"]),
    )
}

#[test]
fn twamp_replies_carry_the_stamp_fields_over_both_families() {
    require_root();
    let lab = Routed::new("lr-twamp");
    // A dual-stack wildcard on 862, an IPv4 and an IPv6 socket of their own.
    let r = Reflector::start(
        &lab.server,
        &[
            "--twamp",
            "[::]:862",
            "--twamp",
            "10.0.2.1:863",
            "--twamp",
            "[fd02::1]:864",
        ],
    );
    // One router on the way: a request sent with TTL 64 arrives with 63, one sent with 200
    // with 199.
    let ttl = |local: &str, server: &str, ttl: u8| {
        (
            Client::with_ttl(&lab.client, local, server, 0, Some(ttl)),
            ttl - 1,
        )
    };
    let clients = [
        // An IPv4 client of the dual-stack socket: its TTL comes only from IP_RECVTTL.
        ttl("10.0.1.1:0", "10.0.2.1:862", 64),
        ttl("10.0.1.1:0", "10.0.2.1:862", 200),
        ttl("[fd01::1]:0", "[fd02::1]:862", 64),
        ttl("10.0.1.1:0", "10.0.2.1:863", 200),
        ttl("[fd01::1]:0", "[fd02::1]:864", 200),
    ];
    let sizes = [14, 30, 41, 43, 44, 45, 100, 1000, 14, 44];
    for (k, (c, at_reflector)) in clients.iter().enumerate() {
        let ssid = 0x1000 + k as u16;
        // Each client is two sessions: SSID 0 (requests under 44 bytes have none) and its own.
        let mut next = std::collections::HashMap::<u16, u32>::new();
        for (n, &len) in sizes.iter().enumerate() {
            let request = twamp_request(1000 + n as u32, ssid, len);
            let seq = next.entry(if len >= 44 { ssid } else { 0 }).or_default();
            let a = twamp_echo(c, &request, *seq, *at_reflector);
            *seq += 1;
            assert_eq!(a.ttl, Some(254), "replies leave with TTL / hop limit 255");
        }
    }
    let f = r.stop();
    let n = sizes.len() as u64;
    for (listen, clients) in [("[::]:862", 3), ("10.0.2.1:863", 1), ("[fd02::1]:864", 1)] {
        let t = f.total(listen);
        assert_eq!(t["mode"], "twamp", "{t}");
        assert_eq!(
            (u(&t["received"]), u(&t["reflected"]), u(&t["stamped"])),
            (clients * n, clients * n, clients * n),
            "{t}"
        );
        assert_eq!(sessions(t), (2 * clients, 2 * clients, 0, 0), "{t}");
    }
}

#[test]
fn twamp_sessions_count_apart_and_the_least_recent_gives_way() {
    let lab = pair("lr-twsess");
    // A table of 8 sessions (one set): the ninth takes the least recently seen one's place.
    let r = Reflector::start(
        &lab.server,
        &[
            "--twamp",
            "10.0.0.2:862",
            "--sessions",
            "8",
            "--rate-limit",
            "0",
        ],
    );
    let client = |_| Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:862", 0);
    let (a, b) = (client(0), client(1));
    let send = |c: &Client, ssid: u16, seq: u32| {
        twamp_echo(c, &twamp_request(77, ssid, 44), seq, 64);
    };
    // Sessions (client port, SSID) count apart, each from 0.
    for (c, ssid, seq) in [
        (&a, 1, 0),
        (&a, 1, 1),
        (&b, 1, 0),
        (&a, 2, 0),
        (&a, 1, 2),
        (&b, 1, 1),
        (&a, 2, 1),
    ] {
        send(c, ssid, seq);
    }
    // Five new clients fill the table (a1, b1, a2 and these five).
    let more: Vec<Client> = (2..9).map(client).collect();
    for c in &more[..5] {
        send(c, 0, 0);
    }
    send(&a, 1, 3);
    // Two more new ones push out the two least recently seen, b1 and a2; a1 was just seen.
    for c in &more[5..] {
        send(c, 0, 0);
    }
    send(&a, 1, 4);
    send(&b, 1, 0);
    let f = r.stop();
    let t = f.total("10.0.0.2:862");
    // Started: a1, b1, a2, seven new, b1 again; evicted: b1, a2, then the first new one.
    assert_eq!(sessions(t), (8, 11, 0, 3), "{t}");
    assert_eq!(u(&t["reflected"]), 17, "{t}");
}

#[test]
fn an_idle_twamp_session_ends_and_starts_again_from_zero() {
    let lab = pair("lr-twidle");
    let r = Reflector::start(
        &lab.server,
        &[
            "--twamp",
            "[::]:862",
            "--session-timeout",
            "200ms",
            "--stats-every",
            "1s",
        ],
    );
    let c = Client::new(&lab.client, "[fd00::1]:0", "[fd00::2]:862", 0);
    twamp_echo(&c, &twamp_request(5, 9, 44), 0, 64);
    // Idle for well over the timeout (more, never less, on a loaded machine).
    thread::sleep(Duration::from_millis(600));
    twamp_echo(&c, &twamp_request(6, 9, 44), 0, 64);
    // The first window (1 s) ends the session when it has been idle too.
    thread::sleep(Duration::from_millis(300));
    let window = r.next_record();
    let f = r.stop();
    let (_, started, expired, _) = sessions(&window);
    assert_eq!((started, expired), (2, 2), "{window}");
    let (active, started, expired, evicted) = sessions(f.total("[::]:862"));
    assert_eq!((active, started, expired, evicted), (0, 2, 2, 0));
}

#[test]
fn stateless_twamp_replies_carry_the_senders_sequence_numbers() {
    let lab = pair("lr-twstateless");
    let r = Reflector::start(&lab.server, &["--twamp", "[::]:862", "--stateless"]);
    let v4 = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:862", 0);
    let v6 = Client::new(&lab.client, "[fd00::1]:0", "[fd00::2]:862", 0);
    for c in [&v4, &v6] {
        for (seq, len) in [(1000, 44), (0, 14), (u32::MAX, 60), (5, 44)] {
            twamp_echo(c, &twamp_request(seq, 3, len), seq, 64);
        }
    }
    let f = r.stop();
    let t = f.total("[::]:862");
    assert!(
        t.get("sessions").is_none(),
        "no sessions when stateless: {t}"
    );
    assert_eq!((u(&t["reflected"]), u(&t["stamped"])), (8, 8), "{t}");
}

#[test]
fn malformed_twamp_requests_are_dropped_and_counted_by_reason() {
    let lab = pair("lr-twshort");
    let r = Reflector::start(
        &lab.server,
        &[
            "--twamp",
            "[::]:862",
            "--max-size",
            "100",
            "--rate-limit",
            "0",
        ],
    );
    let c = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:862", 0);
    // Under 14 bytes: not a Session-Sender packet.
    for len in 0..14 {
        c.send(&vec![0x42; len]);
    }
    // Longer than --max-size.
    c.send(&twamp_request(1, 0, 101));
    // Every length from 14 to 100 is answered, at max(length, 44); one session (SSID 0), so
    // the sequence numbers count the answered ones only: nothing dropped took a number.
    for (seq, len) in (14..=100).enumerate() {
        twamp_echo(&c, &twamp_request(len as u32, 0, len), seq as u32, 64);
    }
    assert!(
        c.recv(Duration::from_millis(100)).is_none(),
        "an extra answer"
    );
    let f = r.stop();
    let t = f.total("[::]:862");
    assert_eq!(u(&t["received"]), 14 + 1 + 87, "{t}");
    assert_eq!(u(&t["reflected"]), 87, "{t}");
    assert_eq!(u(&t["dropped"]["malformed"]), 15, "{t}");
    let by = &t["malformed_by"];
    assert_eq!(
        (u(&by["empty"]), u(&by["short"]), u(&by["too_long"])),
        (1, 13, 1),
        "{t}"
    );
}

#[test]
fn the_access_list_and_rate_limits_apply_to_twamp() {
    let lab = pair("lr-twlimit");
    lab.client.run("ip addr add 10.0.0.3/24 dev eth0");
    let r = Reflector::start(
        &lab.server,
        &[
            "--twamp",
            "[::]:862",
            "--allow",
            "10.0.0.1",
            "--rate-limit",
            "50",
            "--burst",
            "5",
            "--max-pps",
            "0",
        ],
    );
    let ok = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:862", 0);
    let refused = Client::new(&lab.client, "10.0.0.3:0", "10.0.0.2:862", 0);
    for seq in 0..5 {
        refused.send(&twamp_request(seq, 0, 44));
    }
    let start = Instant::now();
    for seq in 0..40 {
        ok.send(&twamp_request(seq, 0, 44));
    }
    let sending = start.elapsed();
    let answers = ok.drain(Duration::from_millis(100));
    let most = 5 + (sending.as_secs_f64() * 50.0).ceil() as usize + 1;
    assert!(
        (5..=most).contains(&answers.len()),
        "{} answered, expected 5..={most}",
        answers.len()
    );
    // A refused request takes no sequence number: the answered ones count 0, 1, 2, ...
    let mut last_sender_seq = None;
    for (k, a) in answers.iter().enumerate() {
        let p = ReflectorPacket::parse(&a.data).unwrap();
        assert_eq!(p.seq, k as u32);
        assert!(last_sender_seq < Some(p.sender_seq), "in order");
        last_sender_seq = Some(p.sender_seq);
    }
    assert!(refused.recv(Duration::from_millis(50)).is_none());
    let f = r.stop();
    let t = f.total("[::]:862");
    let answered = answers.len() as u64;
    assert_eq!(u(&t["dropped"]["acl"]), 5, "{t}");
    assert_eq!(u(&t["dropped"]["rate_limit"]), 40 - answered, "{t}");
    assert_eq!(u(&t["reflected"]), answered, "{t}");
    assert_eq!(sessions(t), (1, 1, 0, 0), "{t}");
}

/// The UDP ports bound in `ns`.
fn udp_ports(ns: &Netns) -> Vec<u16> {
    let mut ports: Vec<u16> = ns
        .run("ss -Hlun")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|local| local.rsplit(':').next()?.parse().ok())
        .collect();
    ports.sort();
    ports
}

#[test]
fn twamp_alone_opens_no_echo_socket_and_both_run_side_by_side() {
    let lab = pair("lr-twboth");
    let r = Reflector::start(&lab.server, &["--twamp", "[::]:862"]);
    assert_eq!(udp_ports(&lab.server), [862]);
    let f = r.stop();
    assert_eq!(f.records.len(), 1, "{:?}", f.records);
    let r = Reflector::start(
        &lab.server,
        &["--twamp", "[::]:862", "--echo", "10.0.0.2:8081"],
    );
    assert_eq!(udp_ports(&lab.server), [862, 8081]);
    let echo = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    let tw = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:862", 0);
    // A TWAMP request sent to the echo port comes back unchanged; to the TWAMP port, as a
    // reply.
    let request = twamp_request(1, 2, 20);
    assert_eq!(echo.echo(&request).data, request);
    twamp_echo(&tw, &request, 0, 64);
    let f = r.stop();
    assert_eq!(f.total("10.0.0.2:8081")["mode"], "echo");
    assert_eq!(f.total("[::]:862")["mode"], "twamp");
}

/// Parses the lines of stamp-suite's `-R` per-packet output on stderr (`seq=0 rtt=0.286ms
/// ttl=255 ...`) into their `ttl` values, and its JSON summary on stdout.
fn stamp_suite_run(ns: &Netns, args: &[&str]) -> (Value, Vec<u64>) {
    let out = ns
        .command("timeout")
        .arg("30")
        .arg(STAMP_SUITE)
        .args(args)
        .args(["-R", "--output-format", "json"])
        .stdin(Stdio::null())
        .output()
        .expect("run stamp-suite (installed by .ci/run in target/peers)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stamp-suite {args:?}: {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stamp-suite's summary ({e}): {:?}", out.stdout));
    let ttls = stderr
        .lines()
        .filter(|l| l.starts_with("seq="))
        .map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("ttl="))
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("no ttl in {l}"))
        })
        .collect();
    (summary, ttls)
}

#[test]
fn stamp_suite_sender_sees_no_loss_and_the_sequence_numbers_it_expects() {
    require_root();
    let lab = Routed::new("lr-stampsuite");
    let stateful = Reflector::start(&lab.server, &["--twamp", "[::]:862"]);
    let stateless = Reflector::start(&lab.server, &["--twamp", "[::]:863", "--stateless"]);
    const N: u64 = 20;
    for (dst, local) in [("10.0.2.1", "10.0.1.1"), ("fd02::1", "fd01::1")] {
        for (port, is_stateful) in [("862", true), ("863", false)] {
            // Two runs from one local port: one session, for a stateful reflector.
            for run in 1..=2 {
                let n = N.to_string();
                let (s, ttls) = stamp_suite_run(
                    &lab.client,
                    &[
                        "-r", dst, "-S", local, "-p", port, "-o", "40000", "-c", &n, "-d", "5",
                        "-L", "3",
                    ],
                );
                let what = format!("{dst} port {port} run {run}: {s}");
                assert_eq!(
                    (u(&s["packets_sent"]), u(&s["packets_received"])),
                    (N, N),
                    "{what}"
                );
                assert_eq!(u(&s["packets_lost"]), 0, "{what}");
                let (min, max) = (
                    s["min_rtt_ms"].as_f64().unwrap(),
                    s["max_rtt_ms"].as_f64().unwrap(),
                );
                assert!(0.0 < min && min <= max && max < 1000.0, "{what}");
                // stamp-suite sends with TTL 255; one router on the way.
                assert_eq!(ttls, vec![254; N as usize], "{what}");
                let m = &s["measurements"];
                let (last, independent) = (
                    u(&m["last_reflector_sequence"]),
                    u(&m["independent_sequence_observations"]),
                );
                if is_stateful {
                    // The session goes on counting: 0..N-1, then N..2N-1 while the sender
                    // starts again from 0.
                    assert_eq!(last, run * N - 1, "{what}");
                    assert_eq!(independent > 0, run == 2, "{what}");
                } else {
                    assert_eq!((last, independent), (N - 1, 0), "{what}");
                }
            }
        }
    }
    let f = stateful.stop();
    let t = f.total("[::]:862");
    assert_eq!(u(&t["reflected"]), 4 * N, "{t}");
    assert_eq!(sessions(t), (2, 2, 0, 0), "one session per family: {t}");
    let f = stateless.stop();
    assert_eq!(u(&f.total("[::]:863")["reflected"]), 4 * N);
}

/// stamp-suite's count of replies it rejected and of TLVs answered with U, with M, with I.
type TlvFlags = (u64, u64, u64, u64);

/// stamp-suite's own verdict on the TLVs of its run: its [`TlvFlags`], the count it observed
/// of each type, and its Direct Measurement summary.
fn stamp_suite_tlvs(s: &Value) -> (TlvFlags, Vec<(String, u64)>, Value) {
    let t = &s["measurements"]["tlv_validation"];
    let f = &t["flags"];
    let by_type = t["by_type"]
        .as_object()
        .unwrap_or_else(|| panic!("stamp-suite saw no TLVs: {s}"))
        .iter()
        .map(|(k, v)| (k.clone(), u(&v["observed"])))
        .collect();
    (
        (
            u(&t["rejected_replies"]),
            u(&f["unrecognized"]),
            u(&f["malformed"]),
            u(&f["integrity_failed"]),
        ),
        by_type,
        s["measurements"]["direct_measurement"].clone(),
    )
}

#[test]
fn stamp_suite_sender_with_rfc_8972_tlvs_gets_them_answered() {
    let lab = pair("lr-tlv");
    let r = Reflector::start(
        &lab.server,
        &[
            "--twamp",
            "[::]:862",
            "--twamp",
            "[::]:863",
            "--rate-limit",
            "40",
            "--burst",
            "3",
        ],
    );
    const N: u64 = 20;
    let n = N.to_string();
    let tlvs = [
        "--cos",
        "--dscp",
        "34",
        "--timestamp-info",
        "--direct-measurement",
        "--location",
        "--extra-padding",
        "8",
    ];
    for (dst, local) in [("10.0.0.2", "10.0.0.1"), ("fd00::2", "fd00::1")] {
        let (s, _) = stamp_suite_run(
            &lab.client,
            &[
                &["-r", dst, "-S", local, "-c", &n, "-d", "50", "-L", "2"][..],
                &tlvs,
            ]
            .concat(),
        );
        assert_eq!(u(&s["packets_received"]), N, "{s}");
        // Every TLV answered as understood (no U, M or I), each of the five types in every
        // reply, by stamp-suite's own reading.
        let (flags, by_type, dm) = stamp_suite_tlvs(&s);
        assert_eq!(flags, (0, 0, 0, 0), "{dst}: {s}");
        let want: Vec<(String, u64)> = (1..=5).map(|t| (t.to_string(), N)).collect();
        assert_eq!(by_type, want, "{dst}: {s}");
        // The counters: nothing missing either way; the last reply's R_TxC counts the answers
        // before it.
        assert_eq!(
            (
                u(&dm["forward_missing"]),
                u(&dm["reverse_missing"]),
                u(&dm["unavailable"])
            ),
            (0, 0, 0),
            "{dm}"
        );
        let last = &dm["latest_transmit"];
        assert_eq!(
            (
                u(&last["sender_tx"]),
                u(&last["reflector_rx"]),
                u(&last["reflector_tx"])
            ),
            (N, N, N - 1),
            "{dm}"
        );
    }
    // An unknown TLV (Access Report, sent once) comes back with U, a malformed one (its
    // length overruns the packet) with M, and the Direct Measurement TLV before it is still
    // answered.
    for (extra, flags) in [
        (
            &["--access-report", "1", "--access-report-retries", "0"][..],
            (0, 1, 0, 0),
        ),
        (&["--follow-up-telemetry"][..], (0, N, 0, 0)),
        (&["--malformed", "bad-length"][..], (0, 0, N, 0)),
    ] {
        let (s, _) = stamp_suite_run(
            &lab.client,
            &[
                &[
                    "-r", "10.0.0.2", "-S", "10.0.0.1", "-c", &n, "-d", "50", "-L", "2",
                ][..],
                &["--direct-measurement"],
                extra,
            ]
            .concat(),
        );
        let (got, by_type, dm) = stamp_suite_tlvs(&s);
        assert_eq!(got, flags, "{extra:?}: {s}");
        assert!(by_type.contains(&("5".to_string(), N)), "{extra:?}: {s}");
        assert_eq!(u(&dm["unavailable"]), 0, "{extra:?}: {dm}");
    }
    // Rate-limited: stamp-suite's counters say the reflector received every probe and
    // answered fewer; what it did not answer is exactly what lreflect counts as refused by its
    // rate limit (before the last answer by the counters, after it by stamp-suite's own loss).
    let (s, _) = stamp_suite_run(
        &lab.client,
        &[
            "-r",
            "10.0.0.2",
            "-S",
            "10.0.0.1",
            "-p",
            "863",
            "-c",
            "60",
            "-d",
            "2",
            "-L",
            "2",
            "--direct-measurement",
        ],
    );
    let (_, _, dm) = stamp_suite_tlvs(&s);
    let last = &dm["latest_transmit"];
    let (s_tx, r_rx, r_tx) = (
        u(&last["sender_tx"]),
        u(&last["reflector_rx"]),
        u(&last["reflector_tx"]),
    );
    assert_eq!(s_tx, r_rx, "nothing lost on the way there: {dm}");
    let refused_before_last = r_rx - 1 - r_tx;
    let after_last = u(&s["packets_sent"]) - s_tx;
    let f = r.stop();
    let limited = u(&f.total("[::]:863")["dropped"]["rate_limit"]);
    assert!(limited > 10, "the limit bit: {limited}");
    assert_eq!(refused_before_last + after_last, limited, "{dm}");
    assert_eq!(
        u(&s["packets_received"]) + limited,
        60,
        "every probe answered or refused: {s}"
    );
}

/// Unix ns of a time as tshark prints an absolute time field: `Nov 22, 2026 06:49:32.351655388
/// UTC`.
fn tshark_time_ns(s: &str) -> u64 {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let w: Vec<&str> = s.split_whitespace().collect();
    assert!(w.len() == 5 && w[4] == "UTC", "a tshark time: {s:?}");
    let month = MONTHS.iter().position(|m| *m == w[0]).expect("month") as i64 + 1;
    let day: i64 = w[1].trim_end_matches(',').parse().unwrap();
    let year: i64 = w[2].parse().unwrap();
    let (hms, frac) = w[3].split_once('.').unwrap();
    let hms: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let ns: u64 = format!("{frac:0<9}")[..9].parse().unwrap();
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    secs as u64 * 1_000_000_000 + ns
}

#[test]
fn tshark_decodes_the_replies_as_twamp_and_agrees_on_every_field() {
    let lab = pair("lr-tshark");
    let r = Reflector::start(&lab.server, &["--twamp", "[::]:862"]);
    let pcap = std::env::temp_dir().join(format!("lopa-lreflect-{}.pcap", lab.server.name));
    let _ = std::fs::remove_file(&pcap);
    let sizes = [14, 41, 44, 60, 200];
    let clients = [
        Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:862", 0),
        Client::new(&lab.client, "[fd00::1]:0", "[fd00::2]:862", 0),
    ];
    let packets = 2 * sizes.len() * clients.len();
    let mut capture = lab
        .server
        .command("tshark")
        .args([
            "-i",
            "eth0",
            "-f",
            "udp port 862",
            "-c",
            &packets.to_string(),
        ])
        .arg("-w")
        .arg(&pcap)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tshark");
    let mut stderr = BufReader::new(capture.stderr.take().unwrap());
    let mut said = String::new();
    // "Capturing on 'eth0'" comes before dumpcap captures; "Capture started." once it does.
    while !said.contains("Capture started") {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("tshark ended: {said}");
        }
        said.push_str(&line);
    }
    let capture = Background(capture);
    let mut replies = Vec::new();
    for (k, c) in clients.iter().enumerate() {
        for (n, &len) in sizes.iter().enumerate() {
            let request = twamp_request(100 * k as u32 + n as u32, 0xabc0 + n as u16, len);
            replies.push(c.echo(&request).data);
        }
    }
    let mut capture = capture;
    let started = Instant::now();
    while capture.0.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tshark did not see {packets} packets"
        );
        thread::sleep(Duration::from_millis(20));
    }
    drop(capture);
    r.stop();
    let fields = [
        "udp.length",
        "twamp.test.seq_number",
        "twamp.test.error_estimate",
        "twamp.test.sender_seq_number",
        "twamp.test.sender_error_estimate",
        "twamp.test.sender_ttl",
        "twamp.test.timestamp",
        "twamp.test.receive_timestamp",
        "twamp.test.sender_timestamp",
        "_ws.expert",
        "_ws.malformed",
    ];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(&pcap)
        .args(["-d", "udp.port==862,twamp.test", "-Y", "udp.srcport == 862"])
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.stderr(Stdio::null()).output().expect("run tshark");
    let _ = std::fs::remove_file(&pcap);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), replies.len(), "{text}");
    for (line, reply) in lines.iter().zip(&replies) {
        let v: Vec<&str> = line.split('|').collect();
        assert_eq!(v.len(), fields.len(), "{line}");
        let p = ReflectorPacket::parse(reply).unwrap();
        let num = |k: usize| -> u64 { v[k].parse().unwrap_or_else(|_| panic!("{line}")) };
        assert_eq!(num(0), reply.len() as u64 + 8, "{line}");
        assert_eq!(num(1), u64::from(p.seq), "{line}");
        assert_eq!(num(2), u64::from(p.error), "{line}");
        assert_eq!(num(3), u64::from(p.sender_seq), "{line}");
        assert_eq!(Some(num(4) as u16), p.sender_error, "{line}");
        assert_eq!(Some(num(5) as u8), p.sender_ttl, "{line}");
        let times = [p.timestamp, p.receive_timestamp, p.sender_timestamp];
        for (k, t) in (6..9).zip(times) {
            let theirs = tshark_time_ns(v[k]);
            assert!(theirs.abs_diff(unix_ns(t)) <= 1, "{}: {line}", fields[k]);
        }
        assert_eq!(
            (v[9], v[10]),
            ("", ""),
            "no expert info, not malformed: {line}"
        );
    }
}

/// Every system call lreflect makes, run as the shipped systemd unit runs it (an unprivileged
/// user with CAP_NET_BIND_SERVICE, echo, TWAMP and TWAMP-Control sockets, stats, SIGTERM), is allowed by the
/// unit's SystemCallFilter as systemd-analyze expands it: a call the filter refuses fails with
/// EPERM under the unit, and (as with the clock's sync state, read with clock_adjtime) can
/// silently change what lreflect reports.
#[test]
fn the_systemd_units_syscall_filter_allows_every_call_lreflect_makes() {
    let lab = pair("lr-seccomp");
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/systemd/lreflect.service"
    ))
    .expect("the unit file");
    let allowed = unit_syscall_filter(&unit);
    assert!(allowed.contains("recvmmsg") && !allowed.contains("mbind"));
    let trace = format!("/tmp/lopa-seccomp-{}.strace", std::process::id());
    let mut strace = lab
        .server
        .command("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+net_bind_service",
            "--ambient-caps=+net_bind_service",
            "strace",
            "-f",
            "-qq",
            "-c",
            "-o",
            &trace,
            LREFLECT,
            "--echo",
            "[::]:8081",
            "--twamp",
            "[::]:862",
            "--twamp-control",
            "[::]:862",
            "--stats-every",
            "100ms",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("strace");
    wait_for_udp_socket(&lab.server, ":862 ", "lreflect under strace");
    let echo = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    echo.echo(&ludp_payload(1, 64));
    let twamp = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:862", 0);
    twamp.echo(&twamp_request(0, 0, 44));
    // A TWAMP-Control session too (TCP 862: accept, the control messages, a closed connection).
    let control = lab
        .client
        .command(env!("CARGO_BIN_EXE_ltwamp"))
        .args(["--control", "-c", "1", "-q", "10.0.0.2"])
        .output()
        .expect("ltwamp --control");
    assert!(
        control.status.success(),
        "{}",
        String::from_utf8_lossy(&control.stderr)
    );
    // Windows pass, the clock's state is read again (every second).
    thread::sleep(Duration::from_millis(1200));
    let pid = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", strace.id()))
        .expect("strace's children")
        .trim()
        .to_string();
    assert!(!pid.is_empty(), "lreflect under strace");
    lab.server.run(&format!("kill -TERM {pid}"));
    assert!(strace.wait().expect("strace").success());
    let summary = std::fs::read_to_string(&trace).expect("strace summary");
    let _ = std::fs::remove_file(&trace);
    // Rows: % time, seconds, usecs/call, calls, [errors,] syscall.
    let used: Vec<&str> = summary
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.split_whitespace().last())
        .filter(|&name| name != "total")
        .collect();
    assert!(
        used.contains(&"sendmmsg") || used.contains(&"sendmsg"),
        "{summary}"
    );
    let refused: Vec<&&str> = used.iter().filter(|s| !allowed.contains(**s)).collect();
    assert!(
        refused.is_empty(),
        "the unit's SystemCallFilter refuses {refused:?}\n{summary}"
    );
}

/// The system calls a unit's `SystemCallFilter=` lines allow (an allow list, then additions
/// and `~` removals), with systemd-analyze expanding the @groups.
fn unit_syscall_filter(unit: &str) -> std::collections::BTreeSet<String> {
    fn expand(item: &str, out: &mut std::collections::BTreeSet<String>) {
        if let Some(group) = item.strip_prefix('@') {
            let listing = Command::new("systemd-analyze")
                .args(["syscall-filter", &format!("@{group}")])
                .output()
                .expect("systemd-analyze (package systemd)");
            assert!(listing.status.success(), "no syscall group @{group}");
            for line in String::from_utf8_lossy(&listing.stdout).lines().skip(1) {
                let name = line.trim();
                if !name.is_empty() && !name.starts_with('#') {
                    expand(name, out);
                }
            }
        } else {
            out.insert(item.to_string());
        }
    }
    let mut allowed = std::collections::BTreeSet::new();
    for line in unit.lines() {
        let Some(value) = line.strip_prefix("SystemCallFilter=") else {
            continue;
        };
        let (deny, list) = match value.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let mut set = std::collections::BTreeSet::new();
        for item in list.split_whitespace() {
            expand(item, &mut set);
        }
        if deny {
            allowed.retain(|s| !set.contains(s));
        } else {
            allowed.extend(set);
        }
    }
    allowed
}

/// ludp probes from 100,000 made-up flows (two sources, 50,000 source ports each), more than
/// the flow table holds, while a real ludp measures through 15 % forward loss: its split stays
/// exact (no flow of it is evicted: the flood's flows are each seen once, so they go first),
/// the evictions are counted and resident memory does not move.
#[test]
fn a_flood_of_spoofed_flows_leaves_a_ludp_split_exact() {
    let lab = pair("lr-flows");
    lab.server.run("ip route add default via 10.0.0.1");
    // No limits: every flood datagram is counted in its flow.
    let mut r = Reflector::start(
        &lab.server,
        &[
            "--echo",
            "10.0.0.2:8081",
            "--max-pps",
            "0",
            "--rate-limit",
            "0",
        ],
    );
    let rss_before = rss_kib(r.pid());
    add_loss(&lab.server, "input", "eth0", 15);
    let flood = {
        let raw = raw_sender(&lab.client);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            let to = SockAddr::from("10.0.0.2:0".parse::<SocketAddr>().unwrap());
            let payload = ludp_payload(1, 64);
            // At most 50,000 a second, which a debug build of lreflect about keeps up with.
            for src in [[10, 64, 0, 1], [10, 64, 0, 2]] {
                for sport in 10_000..60_000u16 {
                    let p = spoofed_from(src, sport, [10, 0, 0, 2], 8081, &payload);
                    raw.send_to(&p, &to).unwrap();
                    if sport % 100 == 0 {
                        thread::sleep(Duration::from_millis(2));
                    }
                }
            }
        })
    };
    let run = run_tool(
        &lab.client,
        env!("CARGO_BIN_EXE_ludp"),
        &[
            "-c", "300", "-i", "0.004", "-W", "0.5", "--flows", "2", "10.0.0.2",
        ],
    );
    flood.join().unwrap();
    let rss_after = rss_kib(r.pid());
    r.renew_deadline();
    let f = r.stop();
    assert!(run.status <= 1, "{}", run.stderr);
    let total = |flow: Option<u64>| {
        run.kind("summary")
            .into_iter()
            .find(|s| s["window"] == "total" && s["flow"]["sport"].as_u64() == flow)
            .unwrap_or_else(|| panic!("no total: {:?}", run.records))
    };
    let mut placed = 0;
    for sport in run
        .kind("summary")
        .iter()
        .filter_map(|s| s["flow"]["sport"].as_u64())
    {
        let s = total(Some(sport));
        let lost = u(&s["sent"]) - u(&s["received"]);
        let trailing = run.trailing_losses("10.0.0.2", sport);
        assert_eq!(u(&s["refused"]), 0, "{s}");
        assert!(u(&s["lost_rev"]) <= u(&s["late"]), "{s}");
        assert_eq!(
            u(&s["lost_fwd"]) + u(&s["lost_rev"]) + trailing,
            lost,
            "{s}"
        );
        placed += u(&s["lost_fwd"]);
    }
    let t = total(None);
    assert_eq!(u(&t["lost_fwd"]), placed, "{t}");
    // Binomial(600, 0.15): mean 90, sd 8.7; and probes the flood pushed out of the
    // reflector's receive buffer never reached it either.
    let kernel_drops = rcvbuf_errors(&lab.server);
    assert!(
        (47..=133 + kernel_drops).contains(&placed),
        "{t}, {kernel_drops} dropped by the kernel"
    );
    let echo = f.total("10.0.0.2:8081");
    let flows = &echo["flows"];
    eprintln!("flows {flows}, rss {rss_before} -> {rss_after} KiB, split {t}");
    // The flood's flows and ludp's two (the kernel may have dropped some of the flood).
    let started = u(&flows["started"]);
    assert!(started > 65_536 && started <= 100_002, "{echo}");
    assert!(u(&flows["evicted"]) >= started - 65_536, "{echo}");
    assert!(u(&flows["active"]) <= 65_536, "{echo}");
    // The table is allocated at start: memory does not grow with the flows.
    assert!(
        rss_after <= rss_before + 256,
        "resident memory grew from {rss_before} to {rss_after} KiB"
    );
    assert!(
        rss_after <= 32 * 1024,
        "{rss_after} KiB resident, docs/lreflect.md says under 32 MiB"
    );
}

/// At start lreflect says on stderr what it answers on, and with a long --stats-every its
/// first stats record comes after 10 s, not a whole period later (issue 17).
#[test]
fn says_what_it_answers_and_writes_its_first_stats_early() {
    let lab = pair("lr-first");
    let r = Reflector::start(
        &lab.server,
        &[
            "--stats-every",
            "1m",
            "--echo",
            "10.0.0.2:8081",
            "--twamp",
            "10.0.0.2:8862",
        ],
    );
    let started = Instant::now();
    let c = Client::new(&lab.client, "10.0.0.1:0", "10.0.0.2:8081", 0);
    c.echo(&ludp_payload(1, 64));
    let first = r.next_record_within(Duration::from_secs(15));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(14), "first stats after {took:?}");
    assert_eq!(first["window"], "10s", "{first}");
    let f = r.stop();
    assert_eq!(
        f.stderr,
        "lreflect: answering echo on 10.0.0.2:8081, TWAMP on 10.0.0.2:8862; \
         stats every 1m (the first after 10s)\n"
    );
}
