//! Pure decoding of neighbour entries (`RTM_NEWNEIGH`/`RTM_DELNEIGH`: `struct ndmsg` and the
//! `NDA_*` attributes lwatch reports) and the dump request for them. No I/O, never panics.

use super::parse::{u32_at, Attrs, Error};
use super::rt::{dump_request, ip, AF_INET, AF_INET6};
use std::net::IpAddr;

pub const RTM_NEWNEIGH: u16 = 28;
pub const RTM_DELNEIGH: u16 = 29;
pub const RTM_GETNEIGH: u16 = 30;

const NDMSG_LEN: usize = 12;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;

/// `NTF_PROXY`: a proxy entry (`ip neigh add proxy`).
pub const NTF_PROXY: u8 = 0x08;
/// `NTF_ROUTER`: the neighbour is an IPv6 router.
pub const NTF_ROUTER: u8 = 0x80;

/// One neighbour entry (ARP or NDP) as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neigh {
    pub family: u8,
    pub index: u32,
    /// `NUD_*` bits (`REACHABLE`, `STALE`, `FAILED`, …).
    pub state: u16,
    /// `NTF_*` bits.
    pub flags: u8,
    pub dst: IpAddr,
    /// The link-layer address, as `ip neigh` prints it; absent while unresolved.
    pub lladdr: Option<String>,
}

/// Decodes a neighbour message; `Ok(None)` for families other than IPv4 and IPv6 (the
/// bridge's forwarding database shares the group) and for entries without a destination.
pub fn parse_neigh(payload: &[u8]) -> Result<Option<Neigh>, Error> {
    if payload.len() < NDMSG_LEN {
        return Err(Error::Truncated("ndmsg"));
    }
    let family = payload[0];
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let (mut dst, mut lladdr) = (None, None);
    for attr in Attrs::new(&payload[NDMSG_LEN..]) {
        let (kind, data) = attr?;
        match kind {
            NDA_DST => dst = ip(family, data),
            NDA_LLADDR if !data.is_empty() => {
                let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
                lladdr = Some(hex.join(":"));
            }
            _ => {}
        }
    }
    let Some(dst) = dst else {
        return Ok(None);
    };
    Ok(Some(Neigh {
        family,
        index: u32_at(payload, 4).unwrap_or(0),
        state: u16::from_ne_bytes([payload[8], payload[9]]),
        flags: payload[10],
        dst,
        lladdr,
    }))
}

/// `NUD_*` state bits as `ip neigh` prints them, in its order; `NONE` for none.
pub fn state_names(state: u16) -> Vec<String> {
    const NAMES: [(u16, &str); 8] = [
        (0x01, "INCOMPLETE"),
        (0x02, "REACHABLE"),
        (0x04, "STALE"),
        (0x08, "DELAY"),
        (0x10, "PROBE"),
        (0x20, "FAILED"),
        (0x40, "NOARP"),
        (0x80, "PERMANENT"),
    ];
    if state == 0 {
        return vec!["NONE".into()];
    }
    let mut out: Vec<String> = NAMES
        .iter()
        .filter(|(bit, _)| state & bit != 0)
        .map(|(_, n)| n.to_string())
        .collect();
    let rest = state & !0xff;
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    out
}

/// `RTM_GETNEIGH` dump of every neighbour entry.
pub fn getneigh_dump_request(seq: u32) -> Vec<u8> {
    dump_request(RTM_GETNEIGH, seq, &[0; NDMSG_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::parse::tests::{every_mangling, hex};

    // Payloads of an RTM_GETNEIGH dump on Linux 6.18 (x86-64): 10.66.0.2 REACHABLE, 10.66.0.9
    // INCOMPLETE and, a few seconds later, FAILED, `ip neigh add fd66::7 lladdr
    // 02:00:00:00:00:07 dev vn router nud stale`, and a bridge-family entry made up from it.
    const REACHABLE: &str = "020000000400000002000001080001000a4200020a0002005a1a265d9311000008\
        000400040000001400030027000000270000002700000001000000";
    const INCOMPLETE: &str = "020000000400000001000001080001000a42000908000400040000001400030097\
        170000270000002700000001000000";
    const FAILED: &str = "020000000400000020000001080001000a42000908000400060000001400030014190000\
        a40100007000000000000000";
    const ROUTER: &str = "0a000000040000000400800114000100fd660000000000000000000000000007\
        0a000200020000000007000008000400000000001400030096170000260000002600000000000000";

    #[test]
    fn entries_from_the_kernels_bytes() {
        let r = parse_neigh(&hex(REACHABLE)).unwrap().unwrap();
        assert_eq!(
            (r.family, r.index, r.dst, r.lladdr.as_deref()),
            (
                AF_INET,
                4,
                "10.66.0.2".parse().unwrap(),
                Some("5a:1a:26:5d:93:11")
            )
        );
        assert_eq!(state_names(r.state), ["REACHABLE"]);
        let i = parse_neigh(&hex(INCOMPLETE)).unwrap().unwrap();
        assert_eq!(
            (state_names(i.state), i.lladdr),
            (vec!["INCOMPLETE".into()], None)
        );
        let f = parse_neigh(&hex(FAILED)).unwrap().unwrap();
        assert_eq!(state_names(f.state), ["FAILED"]);
        let v6 = parse_neigh(&hex(ROUTER)).unwrap().unwrap();
        assert_eq!(
            (v6.dst, v6.flags & NTF_ROUTER, state_names(v6.state)),
            ("fd66::7".parse().unwrap(), NTF_ROUTER, vec!["STALE".into()])
        );
        assert_eq!(state_names(0), ["NONE"]);
        assert_eq!(state_names(0x140), ["NOARP", "0x100"]);
        let mut bridge = hex(ROUTER);
        bridge[0] = 7;
        assert_eq!(parse_neigh(&bridge).unwrap(), None);
    }

    #[test]
    fn no_input_makes_it_panic() {
        for p in [REACHABLE, INCOMPLETE, FAILED, ROUTER] {
            every_mangling(&hex(p), |b| {
                let _ = parse_neigh(b);
            });
        }
        assert_eq!(parse_neigh(&[2; 11]), Err(Error::Truncated("ndmsg")));
    }
}
