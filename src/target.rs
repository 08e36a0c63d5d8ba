//! Target lists, fping-style: hosts, CIDR blocks and `--targets FILE` with per-line tags;
//! names are resolved once, before the first probe.
#![forbid(unsafe_code)]

use crate::record::Tags;
use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;

/// Most addresses one CIDR may expand to.
pub const MAX_CIDR_HOSTS: usize = 65_536;

/// Address family restriction (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

impl Family {
    pub fn admits(self, addr: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

/// A target as written by the user, with the tags of its targets-file line.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    pub name: String,
    pub tags: Tags,
}

/// A resolved target: what every record names.
#[derive(Debug, Clone)]
pub struct Target {
    /// As given (a host name, an address, or one address of a CIDR).
    pub name: String,
    pub addr: IpAddr,
    /// IPv6 zone (interface index) of a link-local address, `fe80::1%eth0`; 0 for none.
    pub scope_id: u32,
    /// Destination port (`host:port`, else the tool's default); 0 for ICMP.
    pub port: u16,
    /// Global `--tag`s merged with the target's own (the target's win).
    pub tags: Option<Arc<Tags>>,
}

impl Target {
    /// The socket address to send to, with the zone of a link-local target.
    pub fn socket_addr(&self, port: u16) -> SocketAddr {
        match self.addr {
            IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, port, 0, self.scope_id)),
            IpAddr::V4(a) => SocketAddr::new(IpAddr::V4(a), port),
        }
    }
}

/// Expands positional targets (hosts or CIDRs) and the lines of a targets file.
pub fn expand(positional: &[String], file: Option<&Path>) -> Result<Vec<TargetSpec>> {
    let mut specs = Vec::new();
    for arg in positional {
        push_target(&mut specs, arg, Tags::new())?;
    }
    if let Some(path) = file {
        let before = specs.len();
        let reader: Box<dyn Read> = if path == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(path)
                    .with_context(|| format!("cannot read targets file {}", path.display()))?,
            )
        };
        parse_targets(
            BufReader::new(reader),
            &path.display().to_string(),
            &mut specs,
        )?;
        if specs.len() == before {
            bail!("no targets in {}", path.display());
        }
    }
    if specs.is_empty() {
        bail!("no target given: name a host, an address, a CIDR or --targets FILE");
    }
    Ok(specs)
}

/// Reads `host [key=value ...]` lines; `#` starts a comment, blank lines are skipped.
pub fn parse_targets(
    reader: impl BufRead,
    origin: &str,
    specs: &mut Vec<TargetSpec>,
) -> Result<()> {
    for (i, line) in reader.lines().enumerate() {
        let lineno = i + 1;
        let line = line.with_context(|| format!("{origin}:{lineno}: cannot read line"))?;
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(host) = words.next() else { continue };
        let mut tags = Tags::new();
        for word in words {
            let (k, v) = parse_tag(word).map_err(|e| anyhow!("{origin}:{lineno}: {e}"))?;
            tags.insert(k, v);
        }
        push_target(specs, host, tags).map_err(|e| anyhow!("{origin}:{lineno}: {e}"))?;
    }
    Ok(())
}

/// Parses `key=value` (a `--tag` or a targets-file tag). A key that any record already has as
/// a member (`type`, `tool`, `target`, `window`, `rtt_ms`, or a flattened InfluxDB name such as
/// `rtt_p50_ms`) is refused: in InfluxDB lines it would be dropped or be a tag and a field at once.
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, _)) if crate::schema::member_names().contains(k) => Err(format!(
            "tag key '{k}' is reserved: records have a member of that name (choose another key)"
        )),
        Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!("tag '{s}' is not key=value")),
    }
}

fn push_target(specs: &mut Vec<TargetSpec>, word: &str, tags: Tags) -> Result<()> {
    if word.contains('/') {
        let net: IpNet = word.parse().map_err(|_| match word.rsplit_once(':') {
            // `10.0.0.0/30:8080`: a block names many hosts, so its port is given apart.
            Some((block, port))
                if block.parse::<IpNet>().is_ok() && port.parse::<u16>().is_ok() =>
            {
                anyhow!(
                    "'{word}': a CIDR block takes no :port; give the port with --port \
                     (-p {port} {block}), where the tool probes ports"
                )
            }
            _ => anyhow!("invalid CIDR '{word}': expected e.g. 10.0.0.0/24 or fd00::/120"),
        })?;
        for addr in cidr_hosts(&net)? {
            specs.push(TargetSpec {
                name: addr.to_string(),
                tags: tags.clone(),
            });
        }
    } else {
        specs.push(TargetSpec {
            name: word.to_string(),
            tags,
        });
    }
    Ok(())
}

/// The host addresses of a block, as fping -g: IPv4 blocks up to /30 leave out the network
/// and broadcast addresses.
pub fn cidr_hosts(net: &IpNet) -> Result<Vec<IpAddr>> {
    let net = net.trunc();
    let size_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    if size_bits > MAX_CIDR_HOSTS.trailing_zeros() {
        bail!("CIDR {net} has more than {MAX_CIDR_HOSTS} addresses; split it into smaller blocks");
    }
    let hosts: Vec<IpAddr> = match net {
        IpNet::V4(v4) if v4.prefix_len() <= 30 => v4.hosts().map(IpAddr::V4).collect(),
        IpNet::V4(v4) => {
            let base = u32::from(v4.network());
            (0..(1u32 << size_bits))
                .map(|i| IpAddr::V4((base + i).into()))
                .collect()
        }
        IpNet::V6(v6) => {
            let base = u128::from(v6.network());
            (0..(1u128 << size_bits))
                .map(|i| IpAddr::V6((base + i).into()))
                .collect()
        }
    };
    Ok(hosts)
}

/// Splits `host:port`, `[v6]:port` or a bare host (an IPv6 literal has several colons and
/// takes a port only in brackets).
pub fn split_host_port(name: &str) -> Result<(&str, Option<u16>)> {
    let parse_port = |p: &str| -> Result<u16> {
        p.parse::<u16>()
            .map_err(|_| anyhow!("bad port '{p}' in '{name}': expected 0-65535"))
    };
    if let Some(rest) = name.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, "")) => Ok((host, None)),
            Some((host, port)) => match port.strip_prefix(':') {
                Some(p) => Ok((host, Some(parse_port(p)?))),
                None => bail!("bad target '{name}': expected [address]:port"),
            },
            None => bail!("bad target '{name}': missing ']'"),
        };
    }
    match name.split_once(':') {
        Some((host, port)) if !port.contains(':') => Ok((host, Some(parse_port(port)?))),
        _ => Ok((name, None)),
    }
}

/// Resolves `host[:port]` targets once; an unresolvable name is an error naming the host, and
/// so is a target without a port when there is no `default_port`.
pub fn resolve_with_port(
    specs: Vec<TargetSpec>,
    family: Family,
    global_tags: &Tags,
    default_port: Option<u16>,
) -> Result<Vec<Target>> {
    let mut targets = Vec::with_capacity(specs.len());
    for spec in specs {
        let (host, port) = split_host_port(&spec.name)?;
        let host = host.to_string();
        let name = spec.name.clone();
        let mut resolved = resolve(
            vec![TargetSpec {
                name: host,
                tags: spec.tags,
            }],
            family,
            global_tags,
        )?;
        let mut t = resolved.remove(0);
        t.name = name;
        t.port = port.or(default_port).ok_or_else(|| missing_port(&t.name))?;
        targets.push(t);
    }
    Ok(targets)
}

/// The error for a target without a port and no --port; an IPv6 address whose last group
/// could be a port (`fd77:2::2:8080`) is shown bracketed, as it must be written.
fn missing_port(name: &str) -> anyhow::Error {
    match name.rsplit_once(':') {
        Some((addr, port)) if name.parse::<Ipv6Addr>().is_ok() && port.parse::<u16>().is_ok() => {
            anyhow!(
                "{name} is an IPv6 address without a port; write [{addr}]:{port} for port {port} \
                 of {addr}, or give --port"
            )
        }
        _ => anyhow!("{name} names no port: write host:port or [IPv6]:port, or give --port"),
    }
}

/// Resolves every target once; an unresolvable name is an error naming the host.
pub fn resolve(specs: Vec<TargetSpec>, family: Family, global_tags: &Tags) -> Result<Vec<Target>> {
    let shared_global = Arc::new(global_tags.clone());
    specs
        .into_iter()
        .map(|spec| {
            let (addr, scope_id) = resolve_one(&spec.name, family)?;
            let tags = if spec.tags.is_empty() {
                (!global_tags.is_empty()).then(|| shared_global.clone())
            } else {
                let mut merged = global_tags.clone();
                merged.extend(spec.tags);
                Some(Arc::new(merged))
            };
            Ok(Target {
                name: spec.name,
                addr,
                scope_id,
                port: 0,
                tags,
            })
        })
        .collect()
}

/// A name the resolver does not know, or that has no address of the family asked for: the
/// run goes on with the other targets (as fping does) and ends with status 2.
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

fn resolve_one(name: &str, family: Family) -> Result<(IpAddr, u32)> {
    let literal = name
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(name);
    let (host, zone) = match literal.split_once('%') {
        Some((h, z)) => (h, Some(z)),
        None => (literal, None),
    };
    if let Ok(addr) = host.parse::<IpAddr>() {
        // An IPv4-mapped address (::ffff:192.0.2.1) is the IPv4 host it names: every tool
        // probes it over IPv4, as ltcp's dual-stack connect would.
        let addr = addr.to_canonical();
        if !family.admits(&addr) {
            bail!(
                "{name} is not an {} address",
                if family == Family::V4 { "IPv4" } else { "IPv6" }
            );
        }
        let scope_id = match zone {
            Some(z) if addr.is_ipv6() => {
                zone_index(z).ok_or_else(|| anyhow!("{name}: no interface '{z}'"))?
            }
            Some(_) => bail!("{name}: only IPv6 addresses take a %zone"),
            None => 0,
        };
        return Ok((addr, scope_id));
    }
    let addrs = (literal, 0)
        .to_socket_addrs()
        .map_err(|e| NotFound(format!("cannot resolve host '{name}': {e}")))?;
    addrs
        .filter(|sa| family.admits(&sa.ip()))
        .map(|sa| match sa {
            SocketAddr::V6(v6) => (IpAddr::V6(*v6.ip()), v6.scope_id()),
            SocketAddr::V4(v4) => (IpAddr::V4(*v4.ip()), 0),
        })
        .next()
        .ok_or_else(|| {
            NotFound(format!(
                "host '{name}' has no {} address",
                match family {
                    Family::V4 => "IPv4",
                    Family::V6 => "IPv6",
                    Family::Any => "usable",
                }
            ))
            .into()
        })
}

/// Gives each IPv6 link-local target without a `%zone` the zone of `device` (`-I IFACE`), as
/// ping does; without one, such a target is an error: the kernel cannot tell which link it
/// is on (every send would fail with "invalid argument").
pub fn zone_link_locals(targets: &mut [Target], device: Option<&str>) -> Result<()> {
    for t in targets {
        let IpAddr::V6(a) = t.addr else { continue };
        let link_local = (a.segments()[0] & 0xffc0) == 0xfe80
            || (a.is_multicast() && (a.segments()[0] & 0x000f) == 0x2);
        if !link_local || t.scope_id != 0 {
            continue;
        }
        match device {
            Some(dev) => {
                t.scope_id =
                    zone_index(dev).ok_or_else(|| anyhow!("-I {dev}: no such interface"))?;
            }
            None => bail!(
                "{}: a link-local address needs its interface: {a}%IFACE, or -I IFACE",
                t.name
            ),
        }
    }
    Ok(())
}

/// Drops the targets given again (same name, address, port and tags: their records could not
/// be told apart), keeping the first; returns the names dropped, once each.
pub fn drop_duplicates(targets: &mut Vec<Target>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut dropped: Vec<String> = Vec::new();
    targets.retain(|t| {
        let tags = t.tags.as_deref().cloned().unwrap_or_default();
        let first = seen.insert((t.name.clone(), t.addr, t.scope_id, t.port, tags));
        if !first && !dropped.contains(&t.name) {
            dropped.push(t.name.clone());
        }
        first
    });
    dropped
}

/// With `-I ADDR`, every target must be of that address's family: the source address cannot
/// apply to the others, and ping refuses them too.
pub fn check_source_family(targets: &[Target], source: Option<IpAddr>) -> Result<()> {
    let Some(src) = source else { return Ok(()) };
    if let Some(t) = targets.iter().find(|t| t.addr.is_ipv6() != src.is_ipv6()) {
        let family = |a: IpAddr| if a.is_ipv6() { "IPv6" } else { "IPv4" };
        bail!(
            "-I {src} is an {} address, and {} is {}",
            family(src),
            t.name,
            family(t.addr)
        );
    }
    Ok(())
}

/// An IPv6 zone: an interface name or index.
fn zone_index(zone: &str) -> Option<u32> {
    if let Ok(i) = zone.parse::<u32>() {
        return Some(i);
    }
    nix::net::if_::if_nametoindex(zone).ok().filter(|&i| i != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_targets_take_the_zone_of_dash_i_or_are_refused() {
        let target = |addr: &str, scope_id| Target {
            name: addr.to_string(),
            addr: addr.parse().unwrap(),
            scope_id,
            port: 0,
            tags: None,
        };
        let mut ts = vec![
            target("fe80::1", 0),
            target("fe80::2", 7),
            target("ff02::1", 0),
            target("2001:db8::1", 0),
            target("10.0.0.1", 0),
        ];
        let err = zone_link_locals(&mut ts.clone(), None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "fe80::1: a link-local address needs its interface: fe80::1%IFACE, or -I IFACE"
        );
        zone_link_locals(&mut ts, Some("lo")).unwrap();
        let zones: Vec<u32> = ts.iter().map(|t| t.scope_id).collect();
        assert_eq!(
            zones,
            [1, 7, 1, 0, 0],
            "lo is interface 1; a given zone stays"
        );
        assert!(zone_link_locals(&mut [target("fe80::1", 0)], Some("nosuch0")).is_err());
        // Nothing link-local: nothing to do, with or without -I.
        zone_link_locals(&mut [target("2001:db8::1", 0)], None).unwrap();
    }

    #[test]
    fn a_source_address_must_be_of_every_targets_family() {
        let target = |addr: &str| Target {
            name: addr.to_string(),
            addr: addr.parse().unwrap(),
            scope_id: 0,
            port: 0,
            tags: None,
        };
        let v4 = Some("127.0.0.1".parse().unwrap());
        check_source_family(&[target("10.0.0.1")], v4).unwrap();
        check_source_family(&[target("::1")], None).unwrap();
        let err = check_source_family(&[target("10.0.0.1"), target("::1")], v4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "-I 127.0.0.1 is an IPv4 address, and ::1 is IPv6"
        );
    }

    #[test]
    fn tags_are_key_value_and_not_a_records_own_members() {
        assert_eq!(parse_tag("dc=fra1"), Ok(("dc".into(), "fra1".into())));
        assert_eq!(parse_tag("empty="), Ok(("empty".into(), String::new())));
        assert!(parse_tag("novalue").is_err());
        assert!(parse_tag("=x").is_err());
        // The header, members of several kinds, and InfluxDB's flattened names (issue 17).
        for key in [
            "type",
            "tool",
            "ts",
            "tags",
            "target",
            "window",
            "rtt_ms",
            "rtt_p50_ms",
            "flow_sport",
        ] {
            let err = parse_tag(&format!("{key}=x")).unwrap_err();
            assert!(err.contains("reserved"), "{err}");
        }
    }

    #[test]
    fn a_target_given_twice_is_probed_once() {
        let target = |name: &str, addr: &str, port| Target {
            name: name.to_string(),
            addr: addr.parse().unwrap(),
            scope_id: 0,
            port,
            tags: None,
        };
        let mut ts = vec![
            target("a", "10.0.0.1", 0),
            target("localhost", "127.0.0.1", 0),
            target("a", "10.0.0.1", 0),
            target("127.0.0.1", "127.0.0.1", 0),
            target("a", "10.0.0.1", 80),
            target("a", "10.0.0.1", 0),
        ];
        // Other tags tell the records apart too (site=a and site=b in a targets file).
        let mut tagged = target("a", "10.0.0.1", 0);
        tagged.tags = Some(Arc::new(Tags::from([("site".into(), "b".into())])));
        ts.push(tagged);
        assert_eq!(drop_duplicates(&mut ts), ["a"]);
        let kept: Vec<(&str, u16)> = ts.iter().map(|t| (t.name.as_str(), t.port)).collect();
        // Another name, port or tags tell the records apart: kept.
        assert_eq!(
            kept,
            [
                ("a", 0),
                ("localhost", 0),
                ("127.0.0.1", 0),
                ("a", 80),
                ("a", 0)
            ]
        );
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_host() {
        let (addr, _) = resolve_one("::ffff:192.0.2.1", Family::Any).unwrap();
        assert_eq!(addr, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert!(resolve_one("::ffff:192.0.2.1", Family::V6).is_err());
    }

    fn names(specs: &[TargetSpec]) -> Vec<&str> {
        specs.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn cidr_expands_like_fping() {
        let s = expand(&["10.1.2.0/30".into()], None).unwrap();
        assert_eq!(names(&s), ["10.1.2.1", "10.1.2.2"]);
        let s = expand(&["10.1.2.4/31".into(), "10.1.2.9/32".into()], None).unwrap();
        assert_eq!(names(&s), ["10.1.2.4", "10.1.2.5", "10.1.2.9"]);
        let s = expand(&["fd00::/126".into()], None).unwrap();
        assert_eq!(names(&s), ["fd00::", "fd00::1", "fd00::2", "fd00::3"]);
        assert_eq!(expand(&["127.0.0.0/22".into()], None).unwrap().len(), 1022);
    }

    #[test]
    fn bad_and_huge_cidrs_are_errors() {
        let e = expand(&["10.0.0.0/33".into()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid CIDR '10.0.0.0/33'"), "{e}");
        let e = expand(&["10.77.2.0/30:8080".into()], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("give the port with --port (-p 8080 10.77.2.0/30)"),
            "{e}"
        );
        let e = expand(&["10.0.0.0/8".into()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 65536"), "{e}");
    }

    #[test]
    fn targets_file_has_tags_comments_and_line_numbers() {
        let text = "# edge routers\n\nr1.example dc=fra role=edge\n10.0.0.1   # inline\n";
        let mut specs = Vec::new();
        parse_targets(text.as_bytes(), "t.txt", &mut specs).unwrap();
        assert_eq!(names(&specs), ["r1.example", "10.0.0.1"]);
        assert_eq!(specs[0].tags.get("dc").map(String::as_str), Some("fra"));
        let e = parse_targets("ok\nhost nokey\n".as_bytes(), "t.txt", &mut Vec::new()).unwrap_err();
        assert_eq!(e.to_string(), "t.txt:2: tag 'nokey' is not key=value");
    }

    #[test]
    fn resolution_respects_family_and_merges_tags() {
        let mut global = Tags::new();
        global.insert("site".into(), "a".into());
        global.insert("dc".into(), "x".into());
        let mut own = Tags::new();
        own.insert("dc".into(), "y".into());
        let specs = vec![
            TargetSpec {
                name: "[::1]".into(),
                tags: Tags::new(),
            },
            TargetSpec {
                name: "127.0.0.1".into(),
                tags: own,
            },
        ];
        let t = resolve(specs, Family::Any, &global).unwrap();
        assert_eq!(t[0].addr, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(t[1].tags.as_ref().unwrap().get("dc").unwrap(), "y");
        assert_eq!(t[1].tags.as_ref().unwrap().get("site").unwrap(), "a");
        let e = resolve(
            vec![TargetSpec {
                name: "::1".into(),
                tags: Tags::new(),
            }],
            Family::V4,
            &Tags::new(),
        );
        assert!(e.unwrap_err().to_string().contains("not an IPv4 address"));
    }

    #[test]
    fn ports_split_like_a_user_means_them() {
        assert_eq!(split_host_port("host:9000").unwrap(), ("host", Some(9000)));
        assert_eq!(
            split_host_port("[fd00::2]:9000").unwrap(),
            ("fd00::2", Some(9000))
        );
        assert_eq!(split_host_port("[fd00::2]").unwrap(), ("fd00::2", None));
        assert_eq!(split_host_port("fd00::2").unwrap(), ("fd00::2", None));
        assert_eq!(split_host_port("10.0.0.1").unwrap(), ("10.0.0.1", None));
        assert_eq!(split_host_port("host:0").unwrap(), ("host", Some(0)));
        assert!(split_host_port("host:65536").is_err());
        assert!(split_host_port("host:http")
            .unwrap_err()
            .to_string()
            .contains("bad port 'http'"));
        assert!(split_host_port("[fd00::2:80").is_err());
        let t = resolve_with_port(
            vec![
                TargetSpec {
                    name: "127.0.0.1:9000".into(),
                    tags: Tags::new(),
                },
                TargetSpec {
                    name: "[::1]".into(),
                    tags: Tags::new(),
                },
            ],
            Family::Any,
            &Tags::new(),
            Some(8081),
        )
        .unwrap();
        assert_eq!((t[0].name.as_str(), t[0].port), ("127.0.0.1:9000", 9000));
        assert_eq!(
            (t[1].addr, t[1].port),
            ("::1".parse::<IpAddr>().unwrap(), 8081)
        );
    }

    #[test]
    fn link_local_targets_keep_their_zone() {
        let one = |n: &str| TargetSpec {
            name: n.into(),
            tags: Tags::new(),
        };
        let t = resolve(
            vec![one("fe80::1%lo"), one("fe80::2%7")],
            Family::Any,
            &Tags::new(),
        )
        .unwrap();
        assert_eq!(t[0].scope_id, 1, "lo is interface 1");
        assert_eq!(t[1].scope_id, 7);
        assert_eq!(t[0].name, "fe80::1%lo");
        match t[0].socket_addr(0) {
            SocketAddr::V6(sa) => assert_eq!(sa.scope_id(), 1),
            other => panic!("{other}"),
        }
        let e = resolve(vec![one("fe80::1%nosuch0")], Family::Any, &Tags::new()).unwrap_err();
        assert!(e.to_string().contains("no interface 'nosuch0'"), "{e}");
        assert!(resolve(vec![one("10.0.0.1%lo")], Family::Any, &Tags::new()).is_err());
    }

    #[test]
    fn unknown_host_names_the_host() {
        let e = resolve(
            vec![TargetSpec {
                name: "no-such-host.invalid".into(),
                tags: Tags::new(),
            }],
            Family::Any,
            &Tags::new(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot resolve host 'no-such-host.invalid'"),
            "{e}"
        );
    }
}
