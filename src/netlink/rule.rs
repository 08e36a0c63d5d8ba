//! Pure decoding of policy routing rules (`RTM_NEWRULE`/`RTM_DELRULE`: `struct fib_rule_hdr`
//! and the `FRA_*` attributes) and the dump request for them. No I/O, never panics.

use super::parse::{u16_at, u32_at, Attrs, Error};
use super::rt::{dump_request, ip, AF_INET, AF_INET6};
use std::net::IpAddr;

pub const RTM_NEWRULE: u16 = 32;
pub const RTM_DELRULE: u16 = 33;
pub const RTM_GETRULE: u16 = 34;

const FIB_RULE_HDR_LEN: usize = 12;
const FRA_DST: u16 = 1;
const FRA_SRC: u16 = 2;
const FRA_IIFNAME: u16 = 3;
const FRA_GOTO: u16 = 4;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_SUPPRESS_IFGROUP: u16 = 13;
const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_OIFNAME: u16 = 17;
const FRA_L3MDEV: u16 = 19;
const FRA_UID_RANGE: u16 = 20;
const FRA_PROTOCOL: u16 = 21;
const FRA_IP_PROTO: u16 = 22;
const FRA_SPORT_RANGE: u16 = 23;
const FRA_DPORT_RANGE: u16 = 24;
/// Attributes that carry nothing about the rule itself (`FRA_PAD`).
const FRA_PAD: u16 = 18;

/// `FIB_RULE_INVERT`: `ip rule add not ...`.
pub const FIB_RULE_INVERT: u32 = 0x2;
/// `FIB_RULE_IIF_DETACHED`, `FIB_RULE_OIF_DETACHED`: the rule's iif or oif does not exist now.
/// The kernel sets and clears them as interfaces come and go without a notification, so they
/// are no part of the rule (a later `RTM_DELRULE` carries them where the add did not).
const FIB_RULE_DETACHED: u32 = 0x8 | 0x10;

/// One policy routing rule as the kernel describes it. Two rules are one when everything here
/// is equal (the kernel refuses an exact duplicate; several rules may share a priority).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub family: u8,
    /// `FRA_PRIORITY`; the kernel leaves it out for priority 0.
    pub priority: u32,
    pub src: Option<(IpAddr, u8)>,
    pub dst: Option<(IpAddr, u8)>,
    pub tos: u8,
    /// `FR_ACT_*`: 1 lookup (to a table), 2 goto, 3 nop, 6 blackhole, 7 unreachable, 8 prohibit.
    pub action: u8,
    /// `FIB_RULE_*` flags (`FIB_RULE_INVERT`, …).
    pub flags: u32,
    /// The u32 `FRA_TABLE` where present (tables above 255), else the header's table.
    pub table: u32,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<u32>,
    pub fwmask: Option<u32>,
    pub goto: Option<u32>,
    /// `suppress_prefixlength` (the kernel sends -1, "none", for rules without it).
    pub suppress_prefixlen: Option<u32>,
    pub suppress_ifgroup: Option<u32>,
    pub l3mdev: bool,
    pub uid_range: Option<(u32, u32)>,
    pub protocol: u8,
    pub ip_proto: Option<u8>,
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    /// Every other attribute as sent (`FRA_FLOW`, `FRA_TUN_ID`, newer ones), so rules that
    /// differ only there stay two rules.
    pub other: Vec<(u16, Vec<u8>)>,
}

fn name(data: &[u8]) -> String {
    let name = data.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(name).into_owned()
}

fn range<T>(data: &[u8], half: usize, get: fn(&[u8], usize) -> Option<T>) -> Option<(T, T)> {
    Some((get(data, 0)?, get(data, half)?))
}

/// Decodes a rule message; `Ok(None)` for families other than IPv4 and IPv6.
pub fn parse_rule(payload: &[u8]) -> Result<Option<Rule>, Error> {
    if payload.len() < FIB_RULE_HDR_LEN {
        return Err(Error::Truncated("fib_rule_hdr"));
    }
    let family = payload[0];
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let (dst_len, src_len) = (payload[1], payload[2]);
    let mut r = Rule {
        family,
        priority: 0,
        src: None,
        dst: None,
        tos: payload[3],
        action: payload[7],
        flags: u32_at(payload, 8).unwrap_or(0) & !FIB_RULE_DETACHED,
        table: payload[4].into(),
        iif: None,
        oif: None,
        fwmark: None,
        fwmask: None,
        goto: None,
        suppress_prefixlen: None,
        suppress_ifgroup: None,
        l3mdev: false,
        uid_range: None,
        protocol: 0,
        ip_proto: None,
        sport: None,
        dport: None,
        other: Vec::new(),
    };
    for attr in Attrs::new(&payload[FIB_RULE_HDR_LEN..]) {
        let (kind, data) = attr?;
        match kind {
            FRA_DST => r.dst = ip(family, data).map(|a| (a, dst_len)),
            FRA_SRC => r.src = ip(family, data).map(|a| (a, src_len)),
            FRA_IIFNAME => r.iif = Some(name(data)),
            FRA_OIFNAME => r.oif = Some(name(data)),
            FRA_GOTO => r.goto = u32_at(data, 0),
            FRA_PRIORITY => r.priority = u32_at(data, 0).unwrap_or(0),
            FRA_FWMARK => r.fwmark = u32_at(data, 0),
            FRA_FWMASK => r.fwmask = u32_at(data, 0),
            FRA_TABLE => r.table = u32_at(data, 0).unwrap_or(r.table),
            FRA_SUPPRESS_PREFIXLEN => {
                r.suppress_prefixlen = u32_at(data, 0).filter(|&n| n != u32::MAX)
            }
            FRA_SUPPRESS_IFGROUP => r.suppress_ifgroup = u32_at(data, 0).filter(|&n| n != u32::MAX),
            FRA_L3MDEV => r.l3mdev = data.first().is_some_and(|&b| b != 0),
            FRA_UID_RANGE => r.uid_range = range(data, 4, u32_at),
            FRA_PROTOCOL => r.protocol = data.first().copied().unwrap_or(0),
            FRA_IP_PROTO => r.ip_proto = data.first().copied(),
            FRA_SPORT_RANGE => r.sport = range(data, 2, u16_at),
            FRA_DPORT_RANGE => r.dport = range(data, 2, u16_at),
            FRA_PAD => {}
            _ => r.other.push((kind, data.to_vec())),
        }
    }
    r.other.sort();
    Ok(Some(r))
}

/// `FR_ACT_*` as `ip rule` prints it (`lookup` for a table, whose number follows).
pub fn action_name(action: u8) -> String {
    match action {
        1 => "lookup".into(),
        2 => "goto".into(),
        3 => "nop".into(),
        6 => "blackhole".into(),
        7 => "unreachable".into(),
        8 => "prohibit".into(),
        n => n.to_string(),
    }
}

/// `RTM_GETRULE` dump of every rule, both families.
pub fn getrule_dump_request(seq: u32) -> Vec<u8> {
    dump_request(RTM_GETRULE, seq, &[0; FIB_RULE_HDR_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::parse::tests::{every_mangling, hex};

    // Payloads of an RTM_GETRULE dump on Linux 6.18 (x86-64): `0: from all lookup local`,
    // `ip rule add fwmark 0x10/0xff lookup 200` (priority 99 given by the kernel), `ip rule
    // add not iif vn blackhole pref 400`, `ip -6 rule add to fd66::/64 table 300 pref 300`.
    const LOCAL: &str = "02000000ff0000010000000008000f00ff00000008000e00ffffffff0500150002000000";
    const FWMARK: &str = "02000000c80000010000000008000f00c800000008000e00ffffffff05001500000000\
        00080006006300000008000a001000000008001000ff000000";
    const NOT_IIF: &str = "02000000000000060200000008000f000000000008000e00ffffffff05001500000000\
        0007000300766e00000800060090010000";
    const TO6: &str = "0a400000fc0000010000000008000f002c01000008000e00ffffffff050015000000000008\
        0006002c01000014000100fd660000000000000000000000000000";

    #[test]
    fn rules_from_the_kernels_bytes() {
        let local = parse_rule(&hex(LOCAL)).unwrap().unwrap();
        assert_eq!(
            (local.priority, local.table, local.action, local.protocol),
            (0, 255, 1, 2)
        );
        assert_eq!((local.src, local.suppress_prefixlen), (None, None));
        let m = parse_rule(&hex(FWMARK)).unwrap().unwrap();
        assert_eq!(
            (m.priority, m.table, m.fwmark, m.fwmask),
            (99, 200, Some(0x10), Some(0xff))
        );
        let n = parse_rule(&hex(NOT_IIF)).unwrap().unwrap();
        assert_eq!(
            (n.priority, action_name(n.action), n.flags & FIB_RULE_INVERT),
            (400, "blackhole".to_string(), FIB_RULE_INVERT)
        );
        assert_eq!(n.iif.as_deref(), Some("vn"));
        let t = parse_rule(&hex(TO6)).unwrap().unwrap();
        assert_eq!(
            (t.family, t.table, t.dst),
            (AF_INET6, 300, Some(("fd66::".parse().unwrap(), 64)))
        );
        assert!(m != local && t.other.is_empty());
        let mut other = hex(LOCAL);
        other[0] = 7;
        assert_eq!(parse_rule(&other).unwrap(), None);
        // The same rule once its iif is gone: one rule still.
        let mut detached = hex(NOT_IIF);
        detached[8] |= 0x8;
        assert_eq!(parse_rule(&detached).unwrap().unwrap(), n);
    }

    #[test]
    fn no_input_makes_it_panic() {
        for p in [LOCAL, FWMARK, NOT_IIF, TO6] {
            every_mangling(&hex(p), |b| {
                let _ = parse_rule(b);
            });
        }
        assert_eq!(parse_rule(&[2; 11]), Err(Error::Truncated("fib_rule_hdr")));
    }
}
