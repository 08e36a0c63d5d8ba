//! The benchmark's simulator: it writes realistic `path` records (the evaluation of every
//! method against the faults it injected is [`super::evaluation`]). Reproducible:
//! everything follows the seed.
//!
//! Topologies are leaf-spine and k-ary fat-trees; each flow (5-tuple) takes one ECMP path
//! chosen by a hash, as switches do. Every link has background loss (log-uniform 0.0001 % to
//! 0.01 %); k links are faulty (log-uniform 0.1 % to 10 %), half the time all on one switch.
//! Traffic is skewed: hosts probe with weights from a heavy-tailed distribution.

pub use super::evaluation::{evaluate, Outcome, Tally};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// SplitMix64: small, fast, and good enough for simulation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.f64() * (hi.ln() - lo.ln())).exp()
    }

    /// Binomial(n, p): by geometric skips while the mean is small, else a normal draw.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if p <= 0.0 || n == 0 {
            return 0;
        }
        let mean = n as f64 * p;
        if mean < 50.0 {
            let log_q = (1.0 - p).ln();
            let mut k = 0;
            let mut pos = 0u64;
            loop {
                let u = 1.0 - self.f64();
                let skip = (u.ln() / log_q).floor();
                if skip >= (n - pos) as f64 || skip.is_nan() {
                    return k;
                }
                pos += skip as u64 + 1;
                k += 1;
                if pos >= n {
                    return k;
                }
            }
        }
        // Box-Muller.
        let (u1, u2) = (1.0 - self.f64(), self.f64());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let v = mean + z * (mean * (1.0 - p)).sqrt();
        v.round().clamp(0.0, n as f64) as u64
    }
}

/// A topology to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    LeafSpine {
        leaves: usize,
        spines: usize,
        hosts_per_leaf: usize,
    },
    /// k-ary fat-tree: k pods of k/2 edge and k/2 aggregation switches, (k/2)² cores,
    /// k/2 hosts per edge switch.
    FatTree { k: usize },
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Topology::LeafSpine {
                leaves,
                spines,
                hosts_per_leaf,
            } => write!(
                f,
                "leaf-spine {leaves}x{spines}, {} hosts",
                leaves * hosts_per_leaf
            ),
            Topology::FatTree { k } => write!(f, "fat-tree k={k}, {} hosts", k * k * k / 4),
        }
    }
}

/// The simulation's knobs.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub topology: Topology,
    /// Faulty links.
    pub faults: usize,
    /// Destinations each host probes.
    pub dsts_per_host: usize,
    /// Flows (source ports) per host pair.
    pub flows_per_pair: usize,
    /// Probes per flow and round, before the host's traffic weight.
    pub probes: u64,
    /// Path records per flow (one per round).
    pub rounds: usize,
    /// How routers answer traces.
    pub addressing: Addressing,
    /// Where loss is measured: the traced way only, or round trips.
    pub round_trip: RoundTrip,
    /// Share of trace hops that get no answer (rate limits), at random.
    pub silent_hops: f64,
    /// One spine (leaf-spine) or core (fat-tree) never answers traces.
    pub silent_router: bool,
    /// Which links may be faulty.
    pub fault_at: FaultAt,
}

/// How a router answers a trace probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// One name per router, whatever interface: the ideal (an alias file applied).
    RouterNames,
    /// The interface the probe arrived on (hardware routers, Linux with
    /// `icmp_errors_use_inbound_ifaddr=1`).
    Arrival,
    /// The interface of the router's route back to the source (Linux's default); ECMP back
    /// picks one per router and source.
    TowardSource,
}

/// Which way probes lose packets, and what the records say of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundTrip {
    /// Loss on the traced forward path only.
    Off,
    /// Round trips: the answer comes back over its own untraced ECMP path; `lost` is the sum.
    Total,
    /// Round trips whose records carry `lost_fwd` and `lost_rev`.
    Split,
}

/// Where faults are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAt {
    /// Any link a flow crossed.
    Any,
    /// Links between routers.
    Core,
    /// Links between a host and its gateway, either direction.
    Host,
}

impl Scenario {
    pub fn new(topology: Topology, faults: usize) -> Self {
        Scenario {
            topology,
            faults,
            dsts_per_host: 8,
            flows_per_pair: 4,
            probes: 100,
            rounds: 6,
            addressing: Addressing::RouterNames,
            round_trip: RoundTrip::Off,
            silent_hops: 0.0,
            silent_router: false,
            fault_at: FaultAt::Any,
        }
    }
}

/// A built network: node names, hosts, and per-flow paths.
struct Net {
    names: Vec<String>,
    hosts: Vec<u32>,
    topo: Topology,
    first_router: usize,
}

impl Net {
    fn new(topo: Topology) -> Net {
        let (hosts, routers) = match topo {
            Topology::LeafSpine {
                leaves,
                spines,
                hosts_per_leaf,
            } => (leaves * hosts_per_leaf, leaves + spines),
            Topology::FatTree { k } => (k * k * k / 4, k * k + k * k / 4),
        };
        let mut names = Vec::with_capacity(hosts + routers);
        for i in 0..hosts {
            names.push(format!("10.1.{}.{}", i / 250, i % 250 + 1));
        }
        for j in 0..routers {
            names.push(format!("10.0.{}.{}", j / 250, j % 250 + 1));
        }
        Net {
            names,
            hosts: (0..hosts as u32).collect(),
            topo,
            first_router: hosts,
        }
    }

    fn router(&self, j: usize) -> u32 {
        (self.first_router + j) as u32
    }

    fn is_host(&self, n: u32) -> bool {
        (n as usize) < self.first_router
    }

    /// Node v's interface facing its neighbour u: the host's own address on a host, else an
    /// address made of both ids (unique per link end).
    fn iface(&self, v: u32, u: u32) -> String {
        if self.is_host(v) {
            self.names[v as usize].clone()
        } else {
            format!("fd00:{v:x}::{u:x}")
        }
    }

    /// Neighbours of every node.
    fn adjacency(&self) -> Vec<Vec<u32>> {
        let mut adj: Vec<Vec<u32>> = vec![Vec::new(); self.names.len()];
        let mut add = |a: u32, b: u32| {
            adj[a as usize].push(b);
            adj[b as usize].push(a);
        };
        match self.topo {
            Topology::LeafSpine {
                leaves,
                spines,
                hosts_per_leaf,
            } => {
                for h in 0..leaves * hosts_per_leaf {
                    add(h as u32, self.router(h / hosts_per_leaf));
                }
                for l in 0..leaves {
                    for sp in 0..spines {
                        add(self.router(l), self.router(leaves + sp));
                    }
                }
            }
            Topology::FatTree { k } => {
                let h = k / 2;
                for host in 0..k * k * k / 4 {
                    add(host as u32, self.router(host / h));
                }
                for pod in 0..k {
                    for e in 0..h {
                        for i in 0..h {
                            add(self.router(pod * h + e), self.router(k * h + pod * h + i));
                        }
                    }
                    for i in 0..h {
                        for j in 0..h {
                            add(
                                self.router(k * h + pod * h + i),
                                self.router(k * k + i * h + j),
                            );
                        }
                    }
                }
            }
        }
        adj
    }

    /// The router that never answers, with `silent_router`: the first spine or core.
    fn silent_router(&self) -> u32 {
        match self.topo {
            Topology::LeafSpine { leaves, .. } => self.router(leaves),
            Topology::FatTree { k } => self.router(k * k),
        }
    }

    /// Node sequence of a flow from host a to host b, the ECMP choices from `hash`.
    fn path(&self, a: usize, b: usize, hash: u64) -> Vec<u32> {
        match self.topo {
            Topology::LeafSpine {
                leaves,
                spines,
                hosts_per_leaf,
            } => {
                let (la, lb) = (a / hosts_per_leaf, b / hosts_per_leaf);
                if la == lb {
                    return vec![a as u32, self.router(la), b as u32];
                }
                let s = leaves + (hash % spines as u64) as usize;
                vec![
                    a as u32,
                    self.router(la),
                    self.router(s),
                    self.router(lb),
                    b as u32,
                ]
            }
            Topology::FatTree { k } => {
                let h = k / 2;
                // Switch numbering: edge (pod, e) = pod*h + e; agg (pod, i) = k*h + pod*h + i;
                // core (i, j) = k*k + i*h + j.
                let edge = |host: usize| host / h;
                let pod = |host: usize| host / (h * h);
                let agg = |p: usize, i: usize| k * h + p * h + i;
                let (ea, eb) = (edge(a), edge(b));
                if ea == eb {
                    return vec![a as u32, self.router(ea), b as u32];
                }
                let i = (hash % h as u64) as usize;
                let (pa, pb) = (pod(a), pod(b));
                if pa == pb {
                    return vec![
                        a as u32,
                        self.router(ea),
                        self.router(agg(pa, i)),
                        self.router(eb),
                        b as u32,
                    ];
                }
                let j = ((hash >> 20) % h as u64) as usize;
                vec![
                    a as u32,
                    self.router(ea),
                    self.router(agg(pa, i)),
                    self.router(k * k + i * h + j),
                    self.router(agg(pb, i)),
                    self.router(eb),
                    b as u32,
                ]
            }
        }
    }
}

/// One simulated flow.
struct Flow {
    src: usize,
    dst: usize,
    sport: u16,
    path: Vec<u32>,
    /// The answers' path (round trips), from dst back to src.
    rev: Vec<u32>,
    probes: u64,
}

/// A simulated run: its path lines and the faults behind them.
pub struct Run {
    pub lines: Vec<String>,
    /// Faulty links, as (from, to) node names, with their loss rates.
    pub faults: Vec<(String, String, f64)>,
    /// Node names by id: a host's address, a router's name (router names) or `10.0.x.y`.
    pub nodes: Vec<String>,
    /// The silent hops' names as lcorrelate gives them (`?PREV>NEXT#N`), each with the node
    /// it stood for: None when it stood for several (different flows, different routers).
    pub silent: HashMap<String, Option<u32>>,
}

impl Run {
    /// The node a name in the records stands for: a node name, an interface address
    /// (`fd00:V::U`, V's interface facing U) or a silent hop's name that always stood for
    /// the same node; else None.
    pub fn node_of(&self, name: &str) -> Option<u32> {
        if name.starts_with('?') {
            return self.silent.get(name).copied().flatten();
        }
        if let Some(rest) = name.strip_prefix("fd00:") {
            let v = rest.split("::").next()?;
            return u32::from_str_radix(v, 16).ok();
        }
        self.nodes.iter().position(|n| n == name).map(|i| i as u32)
    }
}

/// Simulates one run, keeping its lines.
pub fn simulate(sc: &Scenario, seed: u64) -> Run {
    let mut lines = Vec::new();
    let mut silent = HashMap::new();
    let faults = simulate_with(
        sc,
        seed,
        &mut |l: &str| lines.push(l.to_string()),
        Some(&mut silent),
    );
    Run {
        lines,
        faults,
        nodes: Net::new(sc.topology).names,
        silent,
    }
}

/// Node names by id of a topology: hosts first, then routers (see [`Run::nodes`]).
pub fn node_names(topology: Topology) -> Vec<String> {
    Net::new(topology).names
}

/// Hops from every node to host `s`.
fn distances(adj: &[Vec<u32>], s: u32) -> Vec<u32> {
    let mut dist = vec![u32::MAX; adj.len()];
    dist[s as usize] = 0;
    let mut queue = std::collections::VecDeque::from([s]);
    while let Some(v) = queue.pop_front() {
        for &n in &adj[v as usize] {
            if dist[n as usize] == u32::MAX {
                dist[n as usize] = dist[v as usize] + 1;
                queue.push_back(n);
            }
        }
    }
    dist
}

/// A fixed hash of two ids, for choices that must not consume the run's random numbers.
fn mix(a: u64, b: u64) -> u64 {
    Rng::new(a.wrapping_mul(0x1_0000_0001) ^ b).next_u64()
}

/// Simulates one run, handing each line to `sink`; returns the faults.
pub fn simulate_into(
    sc: &Scenario,
    seed: u64,
    sink: &mut dyn FnMut(&str),
) -> Vec<(String, String, f64)> {
    simulate_with(sc, seed, sink, None)
}

/// [`simulate_into`], noting in `silent` what node each silent hop's name stood for.
fn simulate_with(
    sc: &Scenario,
    seed: u64,
    sink: &mut dyn FnMut(&str),
    mut silent: Option<&mut HashMap<String, Option<u32>>>,
) -> Vec<(String, String, f64)> {
    let mut rng = Rng::new(seed);
    let net = Net::new(sc.topology);
    let n_hosts = net.hosts.len();
    // Heavy-tailed host weights (Pareto, shape 1.2), so a few hosts send most probes.
    let weights: Vec<f64> = (0..n_hosts)
        .map(|_| (1.0 - rng.f64()).powf(-1.0 / 1.2).min(20.0))
        .collect();
    let mut flows = Vec::new();
    for (a, &weight) in weights.iter().enumerate() {
        let mut dsts = HashSet::new();
        while dsts.len() < sc.dsts_per_host.min(n_hosts - 1) {
            let b = rng.below(n_hosts);
            if b != a {
                dsts.insert(b);
            }
        }
        let mut dsts: Vec<usize> = dsts.into_iter().collect();
        dsts.sort_unstable();
        for b in dsts {
            for f in 0..sc.flows_per_pair {
                let sport = 33434 + (rng.below(20000) as u16) + f as u16;
                let hash = rng.next_u64();
                let rev = match sc.round_trip {
                    RoundTrip::Off => Vec::new(),
                    _ => net.path(b, a, rng.next_u64()),
                };
                flows.push(Flow {
                    src: a,
                    dst: b,
                    sport,
                    path: net.path(a, b, hash),
                    rev,
                    probes: ((sc.probes as f64 * weight).round() as u64).max(1),
                });
            }
        }
    }
    // Links that carry traffic, in a stable order.
    let mut used: Vec<(u32, u32)> = flows
        .iter()
        .flat_map(|f| {
            f.path
                .windows(2)
                .chain(f.rev.windows(2))
                .map(|w| (w[0], w[1]))
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    used.sort_unstable();
    let mut loss: HashMap<(u32, u32), f64> = used
        .iter()
        .map(|&l| (l, rng.log_uniform(1e-6, 1e-4)))
        .collect();
    let mut faulty: Vec<(u32, u32)> = Vec::new();
    let placeable: Vec<(u32, u32)> = used
        .iter()
        .copied()
        .filter(|&(u, v)| match sc.fault_at {
            FaultAt::Any => true,
            FaultAt::Core => !net.is_host(u) && !net.is_host(v),
            FaultAt::Host => net.is_host(u) || net.is_host(v),
        })
        .collect();
    if sc.faults > 0 {
        let used = &placeable;
        let mut pool: Vec<(u32, u32)> = used.clone();
        if rng.f64() < 0.5 {
            // Concentrated: the faults sit on one switch's links, as far as it has enough.
            let sw = net.router(rng.below(net.names.len() - net.first_router));
            let mut on: Vec<(u32, u32)> = used
                .iter()
                .copied()
                .filter(|&(u, v)| u == sw || v == sw)
                .collect();
            let mut off: Vec<(u32, u32)> = used
                .iter()
                .copied()
                .filter(|&(u, v)| u != sw && v != sw)
                .collect();
            shuffle(&mut rng, &mut on);
            shuffle(&mut rng, &mut off);
            on.extend(off);
            pool = on;
        } else {
            shuffle(&mut rng, &mut pool);
        }
        faulty = pool.into_iter().take(sc.faults).collect();
    }
    let mut faults = Vec::new();
    for &l in &faulty {
        let p = rng.log_uniform(0.001, 0.1);
        loss.insert(l, p);
        faults.push((
            net.names[l.0 as usize].clone(),
            net.names[l.1 as usize].clone(),
            p,
        ));
    }
    let path_loss = |path: &[u32]| {
        let ok: f64 = path.windows(2).map(|w| 1.0 - loss[&(w[0], w[1])]).product();
        1.0 - ok
    };
    let route_loss: Vec<(f64, f64)> = flows
        .iter()
        .map(|f| (path_loss(&f.path), path_loss(&f.rev)))
        .collect();
    let adj = net.adjacency();
    let dist: Vec<Vec<u32>> = match sc.addressing {
        Addressing::TowardSource => (0..n_hosts as u32).map(|h| distances(&adj, h)).collect(),
        _ => Vec::new(),
    };
    // The interface router v answers a probe from host s from: toward s, ECMP back picking
    // one next hop per router and source.
    let toward = |v: u32, s: usize| -> String {
        let d = &dist[s];
        let next: Vec<u32> = adj[v as usize]
            .iter()
            .copied()
            .filter(|&n| d[n as usize] + 1 == d[v as usize])
            .collect();
        let n = next[(mix(u64::from(v), s as u64) % next.len() as u64) as usize];
        net.iface(v, n)
    };
    let silent_node = sc.silent_router.then(|| net.silent_router());
    let mut hops: Vec<Option<String>> = Vec::new();
    for _ in 0..sc.rounds {
        for (f, &(pf, pr)) in flows.iter().zip(&route_loss) {
            let (lost, split) = match sc.round_trip {
                RoundTrip::Off => (rng.binomial(f.probes, pf), None),
                RoundTrip::Total | RoundTrip::Split => {
                    let fwd = rng.binomial(f.probes, pf);
                    let rev = rng.binomial(f.probes - fwd, pr);
                    let split = (sc.round_trip == RoundTrip::Split).then_some((fwd, rev));
                    (fwd + rev, split)
                }
            };
            hops.clear();
            for (i, &n) in f.path[1..].iter().enumerate() {
                let hop = if net.is_host(n) {
                    Some(net.names[n as usize].clone())
                } else if Some(n) == silent_node
                    || (sc.silent_hops > 0.0 && rng.f64() < sc.silent_hops)
                {
                    None
                } else {
                    Some(match sc.addressing {
                        Addressing::RouterNames => net.names[n as usize].clone(),
                        Addressing::Arrival => net.iface(n, f.path[i]),
                        Addressing::TowardSource => toward(n, f.src),
                    })
                };
                hops.push(hop);
            }
            if let Some(truth) = silent.as_deref_mut() {
                note_silent(&net, f, &hops, truth);
            }
            sink(&path_line(&net, f, &hops, f.probes, lost, split));
        }
    }
    faults
}

/// Notes the node behind each silent hop of one record, under the name lcorrelate's reader
/// gives it: `?PREV>NEXT#N`, PREV and NEXT the nearest answering hops (or the source and
/// destination), N the distance from PREV.
fn note_silent(
    net: &Net,
    f: &Flow,
    hops: &[Option<String>],
    truth: &mut HashMap<String, Option<u32>>,
) {
    let src = &net.names[f.src];
    for (i, hop) in hops.iter().enumerate() {
        if hop.is_some() {
            continue;
        }
        let (prev_at, prev) = hops[..i]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(j, h)| h.as_ref().map(|h| (j + 1, h)))
            .unwrap_or((0, src));
        let next = hops[i + 1..]
            .iter()
            .flatten()
            .next()
            .unwrap_or(&net.names[f.dst]);
        let name = format!("?{prev}>{next}#{}", i + 1 - prev_at);
        let node = f.path[i + 1];
        truth
            .entry(name)
            .and_modify(|n| {
                if *n != Some(node) {
                    *n = None;
                }
            })
            .or_insert(Some(node));
    }
}

fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i + 1);
        v.swap(i, j);
    }
}

fn path_line(
    net: &Net,
    f: &Flow,
    hops: &[Option<String>],
    sent: u64,
    lost: u64,
    split: Option<(u64, u64)>,
) -> String {
    let mut s = String::with_capacity(400);
    let _ = write!(
        s,
        "{{\"type\":\"path\",\"tool\":\"ludp\",\"ts\":\"2026-11-22T10:00:00.000000000Z\",\"src\":\"{}\",\"dst\":\"{}\",\"proto\":\"udp\",\"sport\":{},\"dport\":8081,\"hops\":[",
        net.names[f.src], net.names[f.dst], f.sport
    );
    for (i, hop) in hops.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        match hop {
            Some(addr) => {
                let _ = write!(
                    s,
                    "{{\"ttl\":{},\"addr\":\"{addr}\",\"rtt_ms\":{:.3}}}",
                    i + 1,
                    0.05 * (i + 1) as f64
                );
            }
            None => {
                let _ = write!(s, "{{\"ttl\":{}}}", i + 1);
            }
        }
    }
    let _ = write!(s, "],\"reached\":true,\"sent\":{sent},\"lost\":{lost}");
    if let Some((fwd, rev)) = split {
        let _ = write!(s, ",\"lost_fwd\":{fwd},\"lost_rev\":{rev}");
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lcorrelate::estimate::Params;
    use crate::lcorrelate::report::Method;

    #[test]
    fn binomial_has_the_right_mean() {
        let mut rng = Rng::new(7);
        for (n, p) in [(1000u64, 0.001), (1000, 0.2), (50, 0.5)] {
            let draws = 4000;
            let sum: u64 = (0..draws).map(|_| rng.binomial(n, p)).sum();
            let mean = sum as f64 / draws as f64;
            let expect = n as f64 * p;
            let sd = (n as f64 * p * (1.0 - p) / draws as f64).sqrt();
            assert!(
                (mean - expect).abs() < 5.0 * sd + 1e-9,
                "n={n} p={p}: {mean} vs {expect}"
            );
        }
    }

    #[test]
    fn fat_tree_paths_cross_pods_through_a_core() {
        let net = Net::new(Topology::FatTree { k: 4 });
        // 16 hosts, 2 per edge, 4 per pod; host 0 to host 15 crosses pods.
        let p = net.path(0, 15, 0);
        assert_eq!(p.len(), 7);
        assert_eq!(net.path(0, 1, 0).len(), 3);
        assert_eq!(net.path(0, 2, 0).len(), 5);
    }

    #[test]
    fn every_silent_hop_the_reader_names_is_known_to_the_simulator() {
        let mut sc = Scenario::new(
            Topology::LeafSpine {
                leaves: 4,
                spines: 2,
                hosts_per_leaf: 4,
            },
            1,
        );
        sc.addressing = Addressing::Arrival;
        sc.silent_hops = 0.3;
        let run = simulate(&sc, 5);
        let mut agg = crate::lcorrelate::input::Aggregator::new(Default::default());
        for l in &run.lines {
            agg.add_line(l.as_bytes()).unwrap();
        }
        let silent: Vec<&str> = agg
            .names()
            .iter()
            .map(|n| &**n)
            .filter(|n| n.starts_with('?'))
            .collect();
        assert!(silent.len() > 10, "{silent:?}");
        for name in silent {
            assert!(run.silent.contains_key(name), "{name}");
        }
        // With arrival addressing, a lone silent hop before a router's interface (no `#2`
        // on that stretch) is the router at the other end of that interface's link.
        let mut lone: Vec<(&String, &Option<u32>)> = run
            .silent
            .iter()
            .filter(|(n, _)| n.ends_with("#1") && n.contains(">fd00:"))
            .filter(|(n, _)| !run.silent.contains_key(&n.replace("#1", "#2")))
            .collect();
        lone.sort();
        assert!(lone.len() > 5, "{lone:?}");
        for (name, node) in lone {
            let next = name.split('>').nth(1).unwrap().trim_end_matches("#1");
            let facing = next.rsplit("::").next().unwrap();
            assert_eq!(
                *node,
                Some(u32::from_str_radix(facing, 16).unwrap()),
                "{name}"
            );
        }
    }

    #[test]
    fn loss_the_answers_do_not_meet_is_not_put_on_the_answers_ways() {
        // Today's conditions: loss on the traced probes' way only (measured one way), so the
        // answers that leave through a lossy host link lose nothing. A link that only
        // untraced answers cross, each flow's answer picking the way that suits it, explains
        // much of such loss; the greedy search once took those links first and kept them,
        // a false alarm in place of the host's link (2 in these 8 runs).
        let sc = Scenario::new(Topology::FatTree { k: 8 }, 8);
        let mut fp = 0;
        for seed in 0..8 {
            let run = simulate(&sc, seed * 1000 + 8);
            fp += evaluate(&run, &[Method::Flock], &Params::default())[0].fp;
        }
        assert_eq!(fp, 0, "false alarms over 8 runs");
    }

    #[test]
    fn simulation_is_reproducible_and_the_model_finds_a_fault() {
        let sc = Scenario::new(
            Topology::LeafSpine {
                leaves: 4,
                spines: 2,
                hosts_per_leaf: 4,
            },
            1,
        );
        let a = simulate(&sc, 3);
        let b = simulate(&sc, 3);
        assert_eq!(a.lines, b.lines);
        assert_eq!(a.faults.len(), 1);
        let o = evaluate(&a, &[Method::Flock], &Params::default());
        assert_eq!(o[0].k, 1);
        assert!(o[0].top1 && o[0].recall_at_k == 1.0, "{o:?}");
        assert_eq!((o[0].tp > 0, o[0].fp, o[0].fn_), (true, 0, 0), "{o:?}");
    }
}
