//! Reading `path` records and aggregating them per route while streaming.
//!
//! A route is the node sequence a flow took, from its source host through the hops to its
//! destination, after aliases and anonymous-hop naming. Flows that took the same route are
//! summed (`sent`, `lost`), which is exact for the loss model: so memory grows with the
//! number of distinct routes, never with the number of records, and a pre-aggregated line
//! counts the same as the raw lines it sums.

use super::line::{self, HopIn};
use super::seqs::Seqs;
use super::FastMap;
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasher as _;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// Malformed lines reported per input before the rest are only counted.
pub const MAX_REPORTED_PER_INPUT: u64 = 20;

/// The longest line read as a record: a path record of 64 hops is a few KiB, so a longer line
/// is not one, and is skipped (counted as malformed) without being held in memory.
pub const MAX_LINE: usize = 1 << 20;

/// What one flow on one route accumulated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteStats {
    /// Probes and round-trip losses of records without a direction split.
    pub sent: u64,
    pub lost: u64,
    /// Probes of records that split their loss (`lost_fwd`, `lost_rev`), and the splits.
    pub split_sent: u64,
    pub lost_fwd: u64,
    pub lost_rev: u64,
}

impl RouteStats {
    /// Adds what another record (or flow) carried.
    pub fn add(&mut self, o: &RouteStats) {
        self.sent += o.sent;
        self.lost += o.lost;
        self.split_sent += o.split_sent;
        self.lost_fwd += o.lost_fwd;
        self.lost_rev += o.lost_rev;
    }
}

/// A flow on a route: the route's id (see [`Aggregator::route`]) and the flow's identity
/// (protocol and ports): the answers of two flows on one route may come back on different
/// ECMP paths, so they are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub route: u32,
    pub flow: u64,
}

/// Interface address (or any node name) to router name.
pub type Aliases = HashMap<String, String>;

/// Reads an alias file: `ROUTER ADDR [ADDR…]` per line, `#` comments.
pub fn read_aliases(path: &Path) -> anyhow::Result<Aliases> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read alias file {}", path.display()))?;
    // Parse errors start with the line number: FILE:LINE: what.
    parse_aliases(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
}

pub fn parse_aliases(text: &str) -> anyhow::Result<Aliases> {
    let mut map = Aliases::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let Some(router) = words.next() else { continue };
        let addrs: Vec<&str> = words.collect();
        if addrs.is_empty() {
            bail!(
                "{}: '{router}' has no address: write ROUTER ADDR [ADDR...]",
                i + 1
            );
        }
        for a in addrs {
            let Ok(ip) = a.parse::<std::net::IpAddr>() else {
                bail!(
                    "{}: '{a}' is not an IP address: write ROUTER ADDR [ADDR...]",
                    i + 1
                );
            };
            // As the probes write it (fd00:1::0001 is fd00:1::1), so that it matches.
            if let Some(prev) = map.insert(ip.to_string(), router.to_string()) {
                if prev != router {
                    bail!("{}: {a} is already an address of {prev}", i + 1);
                }
            }
        }
    }
    Ok(map)
}

/// Streams records in and keeps one entry per distinct route.
#[derive(Debug, Default)]
pub struct Aggregator {
    aliases: Aliases,
    names: Vec<Box<str>>,
    ids: FastMap<Box<str>, u32>,
    /// Distinct routes by id, each stored once: found by the hash of its node ids, the
    /// table holding only ids (a map keyed by the sequence would keep a second copy of it).
    route_seqs: Seqs,
    route_index: hashbrown::HashTable<u32>,
    route_hasher: foldhash::fast::RandomState,
    /// Per route, the first flow read on it and what it carried. Most routes have one flow
    /// (ECMP spreads a host pair's flows over its routes), so most flows are kept next to
    /// their route's turn, in order, and the map of the others stays small: a map of every
    /// flow cost a cache miss per record and most of the time spent aggregating.
    first_flows: Vec<(u64, RouteStats)>,
    /// The other flows of each route.
    more_flows: FastMap<FlowKey, RouteStats>,
    /// `path` records taken in.
    pub records: u64,
    /// Lines of other record types.
    pub ignored: u64,
    // Scratch buffers reused across lines.
    known: Vec<Option<u32>>,
    seq: Vec<u32>,
    name_buf: String,
}

impl Aggregator {
    pub fn new(aliases: Aliases) -> Self {
        Aggregator {
            aliases,
            ..Default::default()
        }
    }

    /// Node names, indexed by node id.
    pub fn names(&self) -> &[Box<str>] {
        &self.names
    }

    /// A route's node ids, source first, destination last.
    pub fn route(&self, id: u32) -> &[u32] {
        self.route_seqs.get(id as usize)
    }

    /// Distinct flows (route and flow identity) and what they carried.
    pub fn flows(&self) -> impl Iterator<Item = (FlowKey, RouteStats)> + '_ {
        let first = (0..)
            .zip(&self.first_flows)
            .map(|(route, &(flow, stats))| (FlowKey { route, flow }, stats));
        first.chain(self.more_flows.iter().map(|(k, v)| (*k, *v)))
    }

    /// Distinct routes with what all their flows carried together.
    pub fn routes(&self) -> impl Iterator<Item = (&[u32], RouteStats)> {
        let mut sums: Vec<RouteStats> = self.first_flows.iter().map(|f| f.1).collect();
        for (k, v) in &self.more_flows {
            sums[k.route as usize].add(v);
        }
        self.route_seqs.iter().zip(sums)
    }

    /// What was read, the maps to find it by left behind: node names by id, the distinct
    /// routes by id, and the flows (in no order).
    pub fn into_parts(self) -> (Vec<Box<str>>, Seqs, Vec<(FlowKey, RouteStats)>) {
        let mut flows = Vec::with_capacity(self.first_flows.len() + self.more_flows.len());
        flows.extend(self.flows());
        (self.names, self.route_seqs, flows)
    }

    pub fn route_count(&self) -> usize {
        self.route_seqs.len()
    }

    fn intern(&mut self, name: &str) -> u32 {
        let name = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// Takes one line. `Ok(false)`: not a `path` record (or blank), ignored; `Err`: malformed,
    /// with what is wrong.
    pub fn add_line(&mut self, line: &[u8]) -> Result<bool, String> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(false);
        }
        // Without its line end, so that serde places an error on this line, not the next.
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let rec = match line::decode(line) {
            Ok(r) => r,
            Err(_) if line::other_kind(line) => {
                self.ignored += 1;
                return Ok(false);
            }
            Err(e) => return Err(format!("not a JSON record: {}", json_error(&e))),
        };
        match rec.kind.as_deref() {
            Some("path") => {}
            Some(_) => {
                self.ignored += 1;
                return Ok(false);
            }
            None => return Err("no \"type\" member".into()),
        }
        let src = nonempty(rec.src.as_deref(), "src")?;
        let dst = nonempty(rec.dst.as_deref(), "dst")?;
        let hops = rec.hops.ok_or("path record without \"hops\"")?;
        let split = match (rec.lost_fwd, rec.lost_rev, rec.sent) {
            (Some(f), Some(r), Some(s)) if f + r <= s => Some((f, r)),
            (Some(f), Some(r), Some(s)) => {
                return Err(format!(
                    "lost_fwd + lost_rev ({}) is more than sent ({s})",
                    f + r
                ))
            }
            (None, None, _) => None,
            (Some(_), Some(_), None) => return Err("\"lost_fwd\" without \"sent\"".into()),
            (Some(_), None, _) => return Err("\"lost_fwd\" without \"lost_rev\"".into()),
            (None, Some(_), _) => return Err("\"lost_rev\" without \"lost_fwd\"".into()),
        };
        let (sent, lost) = match (rec.sent, rec.lost) {
            (Some(s), Some(l)) if l <= s => (s, l),
            (Some(s), Some(l)) => return Err(format!("lost ({l}) is more than sent ({s})")),
            (None, None) => (0, 0),
            (Some(_), None) => return Err("\"sent\" without \"lost\"".into()),
            (None, Some(_)) => return Err("\"lost\" without \"sent\"".into()),
        };
        if hops
            .iter()
            .any(|h| h.addr.as_deref().is_some_and(str::is_empty))
        {
            return Err("a hop with an empty \"addr\"".into());
        }
        let reached = rec.reached.unwrap_or(true);
        let proto = match rec.proto.as_deref() {
            Some("udp") => 1,
            Some("tcp") => 2,
            Some("icmp") => 3,
            _ => 0,
        };
        let flow = (proto << 32)
            | (u64::from(rec.sport.unwrap_or(0)) << 16)
            | u64::from(rec.dport.unwrap_or(0));
        let mut stats = RouteStats::default();
        match split {
            Some((f, r)) => {
                stats.split_sent = sent;
                stats.lost_fwd = f;
                stats.lost_rev = r;
            }
            None => {
                stats.sent = sent;
                stats.lost = lost;
            }
        }
        self.add_path(src, dst, &hops, reached, flow, stats);
        Ok(true)
    }

    fn add_path(
        &mut self,
        src: &str,
        dst: &str,
        hops: &[HopIn],
        reached: bool,
        flow: u64,
        stats: RouteStats,
    ) {
        let src_id = self.intern(src);
        let dst_id = self.intern(dst);
        let mut known = std::mem::take(&mut self.known);
        known.clear();
        known.push(Some(src_id));
        for h in hops {
            let id = h.addr.as_deref().map(|a| self.intern(a));
            known.push(id);
        }
        if hops.is_empty() {
            // Nothing answered at any TTL ("hops":[]): the route is unknown, not a direct
            // link from src to dst that nobody saw. It is one unknown stretch, exactly as a
            // trace whose every hop was silent: the flow's loss still shows, on a link named
            // for what it is (`?src>dst#1`), rather than vanishing from the result as a left-out
            // record would (a user who traced and lost probes expects to see that loss), and
            // it is blamed on no link that was seen.
            known.push(None);
        }
        // The destination answering the last probe is the destination, not a hop before it.
        if known.len() > 1 && known.last() == Some(&Some(dst_id)) {
            known.pop();
        }
        if !reached {
            // A trace that gave up ends in a run of silent TTLs (up to the maximum): they
            // stand for one unknown stretch before the destination, not for many routers.
            while known.len() > 2
                && known[known.len() - 1].is_none()
                && known[known.len() - 2].is_none()
            {
                known.pop();
            }
        }
        known.push(Some(dst_id));

        let mut seq = std::mem::take(&mut self.seq);
        seq.clear();
        let mut prev_known = 0;
        for i in 0..known.len() {
            let id = match known[i] {
                Some(id) => {
                    prev_known = i;
                    id
                }
                None => {
                    // Named from its known neighbours and its place between them, so silent
                    // hops on different stretches stay apart and this one is not dropped.
                    let next = (i + 1..known.len())
                        .find_map(|j| known[j])
                        .unwrap_or(dst_id);
                    let prev = known[prev_known].unwrap_or(src_id);
                    let mut name = std::mem::take(&mut self.name_buf);
                    name.clear();
                    let _ = write!(
                        name,
                        "?{}>{}#{}",
                        self.names[prev as usize],
                        self.names[next as usize],
                        i - prev_known
                    );
                    let id = self.intern(&name);
                    self.name_buf = name;
                    id
                }
            };
            // Two interfaces of one router in a row (aliases) are one node, not a link.
            if seq.last() != Some(&id) {
                seq.push(id);
            }
        }
        let hash = self.route_hasher.hash_one(&seq[..]);
        let seqs = &self.route_seqs;
        match self
            .route_index
            .find(hash, |&id| seqs.get(id as usize) == seq)
        {
            Some(&route) => match &mut self.first_flows[route as usize] {
                (first, sum) if *first == flow => sum.add(&stats),
                _ => self
                    .more_flows
                    .entry(FlowKey { route, flow })
                    .or_default()
                    .add(&stats),
            },
            None => {
                let id = self.route_seqs.len() as u32;
                self.route_seqs.push(&seq);
                let (seqs, hasher) = (&self.route_seqs, &self.route_hasher);
                self.route_index
                    .insert_unique(hash, id, |&id| hasher.hash_one(seqs.get(id as usize)));
                self.first_flows.push((flow, stats));
            }
        }
        self.records += 1;
        self.known = known;
        self.seq = seq;
    }
}

/// serde's message with the column only: the caller names the file and line, and serde's own
/// "at line 1 column 9" would count lines within this one.
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(what) if e.column() > 0 => format!("{what} at column {}", e.column()),
        Some(what) => what.to_string(),
        None => text,
    }
}

fn nonempty<'a>(v: Option<&'a str>, what: &str) -> Result<&'a str, String> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(format!("empty \"{what}\"")),
        None => Err(format!("path record without \"{what}\"")),
    }
}

/// What reading the inputs found wrong.
#[derive(Debug, Default)]
pub struct ReadReport {
    pub skipped: u64,
}

/// An opened input.
pub struct Input {
    pub reader: Box<dyn BufRead>,
    /// Decompressed on the fly: a read error is where the stream was cut.
    pub gzip: bool,
}

/// Opens an input (`-` is stdin); gzip is recognized by its magic bytes.
pub fn open(name: &str) -> anyhow::Result<Input> {
    let raw: Box<dyn Read> = if name == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(name).with_context(|| format!("cannot open {name}"))?)
    };
    let mut buf = BufReader::with_capacity(1 << 16, raw);
    let magic = buf
        .fill_buf()
        .with_context(|| format!("cannot read {name}"))?;
    if magic.is_empty() {
        // Already at its end: not read again (a terminal's one Ctrl-D is consumed by one read,
        // and a second read would wait for another).
        Ok(Input {
            reader: Box::new(BufReader::new(std::io::empty())),
            gzip: false,
        })
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(Input {
            reader: Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::bufread::MultiGzDecoder::new(buf),
            )),
            gzip: true,
        })
    } else {
        Ok(Input {
            reader: Box::new(buf),
            gzip: false,
        })
    }
}

/// Reads every line of `input` into `agg`. Malformed lines are reported on stderr as
/// `lcorrelate: NAME:LINE: what` and counted; with `strict` the first one is an error. A
/// `gzip` stream that breaks off (a log copied while it was written, a full disk) keeps the
/// lines before the cut and counts as one malformed line: `NAME: truncated gzip stream after
/// line N`.
pub fn read_into(
    agg: &mut Aggregator,
    name: &str,
    input: &mut dyn BufRead,
    gzip: bool,
    strict: bool,
    report: &mut ReadReport,
    stderr: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let mut line = Vec::with_capacity(1024);
    let mut lineno = 0u64;
    let mut reported = 0u64;
    loop {
        line.clear();
        let n = match Read::take(&mut *input, MAX_LINE as u64 + 1).read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(e) if gzip => {
                // The bytes of the cut line are in `line`. A line that parses was whole (a
                // JSON object ends in its closing brace), only its line end was lost.
                if !line.is_empty() && agg.add_line(&line).is_ok() {
                    lineno += 1;
                }
                let what = if e.kind() == std::io::ErrorKind::UnexpectedEof
                    || e.to_string().contains("incomplete")
                {
                    format!("truncated gzip stream after line {lineno}")
                } else {
                    format!("corrupt gzip stream after line {lineno}: {e}")
                };
                if strict {
                    bail!("{name}: {what} (--strict)");
                }
                report.skipped += 1;
                let _ = writeln!(stderr, "lcorrelate: {name}: {what}");
                break;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {name}")),
        };
        if n == 0 {
            break;
        }
        lineno += 1;
        // Cut by the limit: more than MAX_LINE bytes before the line end.
        let added = if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
            skip_line(input).with_context(|| format!("cannot read {name}"))?;
            Err(format!("a line longer than {MAX_LINE} bytes: not a record"))
        } else {
            agg.add_line(&line)
        };
        if let Err(what) = added {
            if strict {
                bail!("{name}:{lineno}: {what} (--strict)");
            }
            report.skipped += 1;
            reported += 1;
            if reported <= MAX_REPORTED_PER_INPUT {
                let _ = writeln!(stderr, "lcorrelate: {name}:{lineno}: {what}");
            } else if reported == MAX_REPORTED_PER_INPUT + 1 {
                let _ = writeln!(
                    stderr,
                    "lcorrelate: {name}: more malformed lines; only counted from here"
                );
            }
        }
    }
    Ok(())
}

/// Reads the rest of the current line away, without keeping it.
fn skip_line(input: &mut dyn BufRead) -> std::io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_longer_than_a_record_can_be_is_skipped_and_the_next_read() {
        let good = r#"{"type":"path","src":"h1","dst":"h2","hops":[{"ttl":1,"addr":"h2"}],"reached":true,"sent":10,"lost":1}"#;
        // The longest line taken is MAX_LINE bytes before its line end: the limit cuts
        // neither it nor the line after it.
        let longest = format!("{}\n", " ".repeat(MAX_LINE));
        let text = format!("{good}\n{}\n{longest}{good}\n", "x".repeat(MAX_LINE * 3));
        let mut agg = Aggregator::new(Aliases::new());
        let mut report = ReadReport::default();
        let mut stderr = Vec::new();
        let mut input = BufReader::new(text.as_bytes());
        read_into(
            &mut agg,
            "big",
            &mut input,
            false,
            false,
            &mut report,
            &mut stderr,
        )
        .unwrap();
        assert_eq!(report.skipped, 1);
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            format!("lcorrelate: big:2: a line longer than {MAX_LINE} bytes: not a record\n")
        );
        let sent: u64 = agg.routes().map(|(_, s)| s.sent).sum();
        assert_eq!(sent, 20, "the lines around it both count");
    }

    fn routes(agg: &Aggregator) -> Vec<(Vec<String>, RouteStats)> {
        let mut v: Vec<_> = agg
            .routes()
            .map(|(r, s)| {
                (
                    r.iter()
                        .map(|&i| agg.names()[i as usize].to_string())
                        .collect::<Vec<String>>(),
                    s,
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn anonymous_hops_are_named_by_neighbours_and_position() {
        let mut agg = Aggregator::new(Aliases::new());
        let l = r#"{"type":"path","src":"h1","dst":"h2","hops":[{"ttl":1,"addr":"r1"},{"ttl":2},{"ttl":3},{"ttl":4,"addr":"r4"},{"ttl":5,"addr":"h2"}],"reached":true,"sent":10,"lost":1}"#;
        assert_eq!(agg.add_line(l.as_bytes()), Ok(true));
        let r = routes(&agg);
        assert_eq!(
            r[0].0,
            ["h1", "r1", "?r1>r4#1", "?r1>r4#2", "r4", "h2"],
            "the destination answering the last TTL is not a hop of its own"
        );
        assert_eq!(
            r[0].1,
            RouteStats {
                sent: 10,
                lost: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn a_followed_flows_records_are_route_samples() {
        // ludp --trace-every: the first path, that path closed with its probes when the route
        // changed, the new path opened, and the new path at the end with its probes.
        let mut agg = Aggregator::new(Aliases::new());
        let a = r#""hops":[{"ttl":1,"addr":"l1"},{"ttl":2,"addr":"s1"},{"ttl":3,"addr":"h2"}]"#;
        let b = r#""hops":[{"ttl":1,"addr":"l1"},{"ttl":2,"addr":"s2"},{"ttl":3,"addr":"h2"}]"#;
        for (hops, sent, lost) in [(a, 0, 0), (a, 100, 7), (b, 0, 0), (b, 250, 1)] {
            let line = format!(
                r#"{{"type":"path","tool":"ludp","src":"h1","dst":"h2",{hops},"reached":true,"sent":{sent},"lost":{lost}}}"#
            );
            assert_eq!(agg.add_line(line.as_bytes()), Ok(true));
        }
        let r = routes(&agg);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, ["h1", "l1", "s1", "h2"]);
        assert_eq!(
            r[0].1,
            RouteStats {
                sent: 100,
                lost: 7,
                ..Default::default()
            }
        );
        assert_eq!(r[1].0, ["h1", "l1", "s2", "h2"]);
        assert_eq!(
            r[1].1,
            RouteStats {
                sent: 250,
                lost: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn unreached_traces_end_in_one_unknown_stretch() {
        let mut agg = Aggregator::new(Aliases::new());
        let l = r#"{"type":"path","src":"h1","dst":"h2","hops":[{"ttl":1,"addr":"r1"},{"ttl":2},{"ttl":3},{"ttl":4}],"reached":false}"#;
        agg.add_line(l.as_bytes()).unwrap();
        assert_eq!(routes(&agg)[0].0, ["h1", "r1", "?r1>h2#1", "h2"]);
    }

    #[test]
    fn a_trace_where_nothing_answered_is_an_unknown_stretch_not_a_direct_link() {
        let mut agg = Aggregator::new(Aliases::new());
        // As a trace whose every hop was silent: one unknown stretch (a trace that gave up
        // ends in one, whatever its length).
        for (hops, reached) in [
            ("[]", true),
            ("[]", false),
            (r#"[{"ttl":1},{"ttl":2},{"ttl":3}]"#, false),
            (r#"[{"ttl":1}]"#, true),
        ] {
            let l = format!(
                r#"{{"type":"path","src":"h1","dst":"h2","hops":{hops},"reached":{reached},"sent":10,"lost":3}}"#
            );
            agg.add_line(l.as_bytes()).unwrap();
        }
        let r = routes(&agg);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].0, ["h1", "?h1>h2#1", "h2"]);
        assert_eq!(
            r[0].1,
            RouteStats {
                sent: 40,
                lost: 12,
                ..Default::default()
            }
        );
        // The destination answering the first TTL is a direct link: it was seen.
        let mut agg = Aggregator::new(Aliases::new());
        let l = r#"{"type":"path","src":"h1","dst":"h2","hops":[{"ttl":1,"addr":"h2"}],"reached":true,"sent":10,"lost":0}"#;
        agg.add_line(l.as_bytes()).unwrap();
        assert_eq!(routes(&agg)[0].0, ["h1", "h2"]);
    }

    #[test]
    fn aliases_merge_interfaces_into_routers() {
        let aliases = parse_aliases("# router addrs\nspine1 10.0.0.1 10.0.1.1\n").unwrap();
        let mut agg = Aggregator::new(aliases);
        let a = r#"{"type":"path","src":"h1","dst":"h2","hops":[{"ttl":1,"addr":"10.0.0.1"}],"sent":5,"lost":0}"#;
        let b = r#"{"type":"path","src":"h1","dst":"h2","hops":[{"ttl":1,"addr":"10.0.1.1"}],"sent":5,"lost":2}"#;
        agg.add_line(a.as_bytes()).unwrap();
        agg.add_line(b.as_bytes()).unwrap();
        let r = routes(&agg);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, ["h1", "spine1", "h2"]);
        assert_eq!(
            r[0].1,
            RouteStats {
                sent: 10,
                lost: 2,
                ..Default::default()
            }
        );
        assert!(parse_aliases("r1\n")
            .unwrap_err()
            .to_string()
            .contains("no address"));
        assert!(parse_aliases("r1 10.0.0.1\nr2 10.0.0.1\n").is_err());
        for bad in ["10.9.1.l", "999.1.1.1", "10.0.0", "fd00::1::2", "a"] {
            let e = parse_aliases(&format!("# routers\nr1 10.0.0.1\nr2 10.0.0.2 {bad}\n"))
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("3: '{bad}' is not an IP address: write ROUTER ADDR [ADDR...]")
            );
        }
        // Written as the probes write addresses, so that they match.
        let a = parse_aliases("r1 fd00:1::0001\n").unwrap();
        assert_eq!(a.get("fd00:1::1").map(String::as_str), Some("r1"));
    }

    #[test]
    fn other_records_are_ignored_and_bad_ones_explained() {
        let mut agg = Aggregator::new(Aliases::new());
        let reply = r#"{"type":"reply","tool":"lping","addr":"10.0.0.1","seq":1,"rtt_ms":0.1}"#;
        assert_eq!(agg.add_line(reply.as_bytes()), Ok(false));
        // Another kind with a member of the same name but another type is still ignored.
        let odd = r#"{"type":"route","src":{"a":1},"hops":3}"#;
        assert_eq!(agg.add_line(odd.as_bytes()), Ok(false));
        assert_eq!(agg.add_line(b"  \n"), Ok(false));
        assert_eq!(agg.ignored, 2);
        for (line, what) in [
            ("{", "not a JSON record"),
            ("[1]", "not a JSON record"),
            (r#"{"src":"a"}"#, "no \"type\""),
            (r#"{"type":"path","src":"a","dst":"b"}"#, "without \"hops\""),
            (r#"{"type":"path","dst":"b","hops":[]}"#, "without \"src\""),
            (
                r#"{"type":"path","src":"a","dst":"b","hops":[],"sent":1,"lost":2}"#,
                "more than sent",
            ),
            (
                r#"{"type":"path","src":"a","dst":"b","hops":[],"sent":-1,"lost":0}"#,
                "not a JSON record",
            ),
            (
                r#"{"type":"path","src":"a","dst":"b","hops":[],"sent":1}"#,
                "without \"lost\"",
            ),
            (
                r#"{"type":"path","src":"a","dst":"b","hops":[{"addr":""}]}"#,
                "empty \"addr\"",
            ),
        ] {
            let err = agg.add_line(line.as_bytes()).unwrap_err();
            assert!(err.contains(what), "{line}: {err}");
        }
        assert_eq!(agg.records, 0);
    }

    #[test]
    fn a_truncated_line_is_placed_by_column_only() {
        let mut agg = Aggregator::new(Aliases::new());
        for end in ["\n", "\r\n", ""] {
            let line = format!("{{\"type\":\"path\",\"src\":\"a\",\"dst\":{end}");
            let err = agg.add_line(line.as_bytes()).unwrap_err();
            assert_eq!(
                err, "not a JSON record: EOF while parsing a value at column 31",
                "{end:?}"
            );
        }
        let err = agg.add_line(b"{\"type\": tru}\n").unwrap_err();
        assert_eq!(err, "not a JSON record: expected ident at column 13");
    }

    #[test]
    fn a_broken_gzip_stream_keeps_what_came_before() {
        /// What a decoder gives after the last bytes it could decode.
        struct Broken(std::io::ErrorKind, &'static str);
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::new(self.0, self.1))
            }
        }
        let rec = r#"{"type":"path","src":"a","dst":"b","hops":[{"addr":"r"}],"sent":9,"lost":1}"#;
        for (tail, kind, msg, what) in [
            // Cut after a whole record whose line end was lost: the record counts.
            (
                rec,
                std::io::ErrorKind::UnexpectedEof,
                "unexpected end of file",
                "truncated gzip stream after line 2",
            ),
            // Cut inside a record: that line is lost.
            (
                &rec[..20],
                std::io::ErrorKind::Other,
                "incomplete deflate stream",
                "truncated gzip stream after line 1",
            ),
            (
                "",
                std::io::ErrorKind::InvalidInput,
                "corrupt deflate stream",
                "corrupt gzip stream after line 1: corrupt deflate stream",
            ),
        ] {
            let text = format!("{rec}\n{tail}");
            let mut input = BufReader::new(text.as_bytes().chain(Broken(kind, msg)));
            let mut agg = Aggregator::new(Aliases::new());
            let mut report = ReadReport::default();
            let mut err = Vec::new();
            read_into(
                &mut agg,
                "f.gz",
                &mut input,
                true,
                false,
                &mut report,
                &mut err,
            )
            .unwrap();
            assert_eq!(
                String::from_utf8(err).unwrap(),
                format!("lcorrelate: f.gz: {what}\n")
            );
            assert_eq!(report.skipped, 1);
            let n = what.split("line ").nth(1).unwrap()[..1]
                .parse::<u64>()
                .unwrap();
            assert_eq!(agg.records, n);
        }
    }

    #[test]
    fn malformed_lines_are_counted_and_located() {
        let text = "{\"type\":\"path\",\"src\":\"a\",\"dst\":\"b\",\"hops\":[],\"sent\":1,\"lost\":0}\nnope\n";
        let mut agg = Aggregator::new(Aliases::new());
        let mut report = ReadReport::default();
        let mut err = Vec::new();
        read_into(
            &mut agg,
            "f.jsonl",
            &mut text.as_bytes(),
            false,
            false,
            &mut report,
            &mut err,
        )
        .unwrap();
        assert_eq!(report.skipped, 1);
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.starts_with("lcorrelate: f.jsonl:2: not a JSON record"),
            "{err}"
        );
        let mut agg = Aggregator::new(Aliases::new());
        let e = read_into(
            &mut agg,
            "f.jsonl",
            &mut text.as_bytes(),
            false,
            true,
            &mut report,
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("f.jsonl:2: "), "{e}");
    }
}
