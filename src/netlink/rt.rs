//! Pure decoding of the rtnetlink objects lwatch follows: addresses (`ifaddrmsg`), routes
//! (`rtmsg`, multipath nexthops included) and the link attributes lpassive does not need (the
//! MAC address); the dump requests for them; and a walk over notification datagrams, which,
//! unlike dump replies, are not filtered by sequence number. No I/O, never panics.

use super::parse::{
    align4, u16_at, u32_at, Attrs, Error, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP,
    NLMSG_OVERRUN, NLM_F_DUMP, NLM_F_REQUEST,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const RTM_DELLINK: u16 = 17;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;
/// `nlmsg_flags` of a `RTM_NEWROUTE` notification: the route took the place of another
/// (`ip route replace`).
pub const NLM_F_REPLACE: u16 = 0x100;
/// `nlmsg_flags` of a `RTM_NEWROUTE` notification: the route was appended (`ip route append`).
pub const NLM_F_APPEND: u16 = 0x800;

pub const IFLA_ADDRESS: u16 = 1;

const IFADDRMSG_LEN: usize = 8;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_FLAGS: u16 = 8;

const RTMSG_LEN: usize = 12;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
/// The nexthop object a route uses (`ip route add ... nhid N`).
const RTA_NH_ID: u16 = 30;
const RTNEXTHOP_LEN: usize = 8;

pub const AF_INET: u8 = libc::AF_INET as u8;
pub const AF_INET6: u8 = libc::AF_INET6 as u8;

/// The `IFLA_ADDRESS` (MAC) of an `RTM_NEWLINK` payload, as `ip link` prints it.
pub fn link_address(payload: &[u8]) -> Result<Option<String>, Error> {
    for attr in Attrs::new(
        payload
            .get(super::parse::IFINFOMSG_LEN..)
            .unwrap_or_default(),
    ) {
        let (kind, data) = attr?;
        if kind == IFLA_ADDRESS && !data.is_empty() {
            let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
            return Ok(Some(hex.join(":")));
        }
    }
    Ok(None)
}

/// An address attribute of `family`, when its length is that family's.
pub(crate) fn ip(family: u8, data: &[u8]) -> Option<IpAddr> {
    match (family, data.len()) {
        (AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(data).ok()?))),
        (AF_INET6, 16) => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(data).ok()?))),
        _ => None,
    }
}

/// One address as an `RTM_NEWADDR`/`RTM_DELADDR` message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub family: u8,
    pub prefixlen: u8,
    pub scope: u8,
    pub index: u32,
    /// `IFA_LOCAL` where there is one (the peer is in `IFA_ADDRESS` on point-to-point links),
    /// else `IFA_ADDRESS`.
    pub addr: IpAddr,
    pub label: Option<String>,
    /// `IFA_F_*`: the u32 `IFA_FLAGS` where present (flags above 0x80, such as
    /// `noprefixroute`, are only there), else `ifa_flags`.
    pub flags: u32,
}

/// Decodes an address message; `Ok(None)` for families other than IPv4 and IPv6.
pub fn parse_addr(payload: &[u8]) -> Result<Option<Addr>, Error> {
    if payload.len() < IFADDRMSG_LEN {
        return Err(Error::Truncated("ifaddrmsg"));
    }
    let family = payload[0];
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let (mut local, mut address, mut label) = (None, None, None);
    let mut flags = u32::from(payload[2]);
    for attr in Attrs::new(&payload[IFADDRMSG_LEN..]) {
        let (kind, data) = attr?;
        match kind {
            IFA_LOCAL => local = ip(family, data),
            IFA_ADDRESS => address = ip(family, data),
            IFA_LABEL => {
                let name = data.split(|&b| b == 0).next().unwrap_or_default();
                label = Some(String::from_utf8_lossy(name).into_owned());
            }
            IFA_FLAGS => flags = u32_at(data, 0).unwrap_or(flags),
            _ => {}
        }
    }
    let Some(addr) = local.or(address) else {
        return Err(Error::Truncated("address attribute"));
    };
    Ok(Some(Addr {
        family,
        prefixlen: payload[1],
        scope: payload[3],
        index: u32_at(payload, 4).unwrap_or(0),
        addr,
        label,
        flags,
    }))
}

/// One nexthop of a route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Nexthop {
    pub gateway: Option<IpAddr>,
    pub index: Option<u32>,
    /// `rtnh_hops + 1`, as `ip route` shows it.
    pub weight: u16,
}

/// One route as an `RTM_NEWROUTE`/`RTM_DELROUTE` message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub family: u8,
    pub dst: IpAddr,
    pub dst_len: u8,
    pub src: Option<IpAddr>,
    pub src_len: u8,
    pub tos: u8,
    /// The u32 `RTA_TABLE` where present (tables above 255), else `rtm_table`.
    pub table: u32,
    pub protocol: u8,
    pub scope: u8,
    pub kind: u8,
    pub priority: Option<u32>,
    pub prefsrc: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    pub index: Option<u32>,
    /// `RTA_MULTIPATH`: empty for a single-path route.
    pub nexthops: Vec<Nexthop>,
    /// The `RTA_METRICS` nest as sent (MTU, window, …): not reported, but two IPv4 routes of
    /// one destination, TOS and metric may differ only in these (`ip route append ... mtu N`).
    pub metrics: Option<Vec<u8>>,
    /// `RTA_NH_ID`: the route uses nexthop object N (FRR's default). The kernel also sends
    /// the object's path (device and gateway, or `RTA_MULTIPATH` for a group) unless
    /// `net.ipv4.nexthop_compat_mode` is 0; lwatch resolves it from the objects it follows.
    pub nhid: Option<u32>,
}

impl Route {
    /// Whether the route goes through interface `index` (its device or any nexthop's).
    pub fn uses(&self, index: u32) -> bool {
        self.index == Some(index) || self.nexthops.iter().any(|n| n.index == Some(index))
    }
}

/// Decodes a route message; `Ok(None)` for families other than IPv4 and IPv6 and for cached
/// (cloned) routes.
pub fn parse_route(payload: &[u8]) -> Result<Option<Route>, Error> {
    if payload.len() < RTMSG_LEN {
        return Err(Error::Truncated("rtmsg"));
    }
    let family = payload[0];
    let unspecified = match family {
        AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        AF_INET6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return Ok(None),
    };
    let flags = u32_at(payload, 8).unwrap_or(0);
    // RTM_F_CLONED: a cache entry (PMTU exceptions), not part of the routing table.
    if flags & 0x200 != 0 {
        return Ok(None);
    }
    let mut r = Route {
        family,
        dst: unspecified,
        dst_len: payload[1],
        src: None,
        src_len: payload[2],
        tos: payload[3],
        table: payload[4].into(),
        protocol: payload[5],
        scope: payload[6],
        kind: payload[7],
        priority: None,
        prefsrc: None,
        gateway: None,
        index: None,
        nexthops: Vec::new(),
        metrics: None,
        nhid: None,
    };
    for attr in Attrs::new(&payload[RTMSG_LEN..]) {
        let (kind, data) = attr?;
        match kind {
            RTA_DST => r.dst = ip(family, data).unwrap_or(unspecified),
            RTA_SRC => r.src = ip(family, data),
            RTA_OIF => r.index = u32_at(data, 0),
            RTA_GATEWAY => r.gateway = ip(family, data),
            RTA_PRIORITY => r.priority = u32_at(data, 0),
            RTA_PREFSRC => r.prefsrc = ip(family, data),
            RTA_TABLE => r.table = u32_at(data, 0).unwrap_or(r.table),
            RTA_MULTIPATH => r.nexthops = parse_nexthops(family, data)?,
            RTA_METRICS if !data.is_empty() => r.metrics = Some(data.to_vec()),
            RTA_NH_ID => r.nhid = u32_at(data, 0),
            _ => {}
        }
    }
    Ok(Some(r))
}

fn parse_nexthops(family: u8, mut data: &[u8]) -> Result<Vec<Nexthop>, Error> {
    let mut out = Vec::new();
    while data.len() >= RTNEXTHOP_LEN {
        let len = u16_at(data, 0).unwrap_or(0) as usize;
        if len < RTNEXTHOP_LEN || len > data.len() {
            return Err(Error::Truncated("rtnexthop"));
        }
        let index = u32_at(data, 4).filter(|&i| i != 0);
        let mut hop = Nexthop {
            gateway: None,
            index,
            weight: u16::from(data[3]) + 1,
        };
        for attr in Attrs::new(&data[RTNEXTHOP_LEN..len]) {
            let (kind, value) = attr?;
            if kind == RTA_GATEWAY {
                hop.gateway = ip(family, value);
            }
        }
        out.push(hop);
        data = data.get(align4(len)..).unwrap_or_default();
    }
    Ok(out)
}

/// A dump request of message type `kind` with header `body`.
pub(crate) fn dump_request(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body.len();
    let mut req = Vec::with_capacity(len);
    req.extend_from_slice(&(len as u32).to_ne_bytes());
    req.extend_from_slice(&kind.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(body);
    req
}

/// `RTM_GETADDR` dump of every IPv4 and IPv6 address.
pub fn getaddr_dump_request(seq: u32) -> Vec<u8> {
    dump_request(RTM_GETADDR, seq, &[0; IFADDRMSG_LEN])
}

/// `RTM_GETROUTE` dump of every IPv4 route, all tables.
pub fn getroute4_dump_request(seq: u32) -> Vec<u8> {
    let mut body = [0; RTMSG_LEN];
    body[0] = AF_INET;
    dump_request(RTM_GETROUTE, seq, &body)
}

/// `RTM_GETROUTE` dump of every IPv6 route, all tables.
pub fn getroute6_dump_request(seq: u32) -> Vec<u8> {
    let mut body = [0; RTMSG_LEN];
    body[0] = AF_INET6;
    dump_request(RTM_GETROUTE, seq, &body)
}

/// Walks every data message of a notification datagram, whatever its sequence number (a
/// notification caused by another process's request carries that request's number), handing
/// `(type, payload)` to `f`.
pub fn walk_notifications(
    buf: &[u8],
    mut f: impl FnMut(u16, &[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    walk_notifications_flagged(buf, |kind, _, payload| f(kind, payload))
}

/// [`walk_notifications`], handing `(type, nlmsg_flags, payload)` to `f`.
pub fn walk_notifications_flagged(
    buf: &[u8],
    mut f: impl FnMut(u16, u16, &[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at).unwrap_or(0) as usize;
        let kind = u16_at(buf, at + 4).unwrap_or(0);
        let flags = u16_at(buf, at + 6).unwrap_or(0);
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(Error::Truncated("message"));
        }
        let payload = &buf[at + NLMSG_HDRLEN..at + len];
        at += align4(len);
        match kind {
            NLMSG_NOOP | NLMSG_ERROR | NLMSG_DONE => {}
            NLMSG_OVERRUN => return Err(Error::Overrun),
            _ => f(kind, flags, payload)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(data);
        out.resize(align4(out.len()), 0);
    }

    fn route_payload() -> Vec<u8> {
        // 10.9.0.0/24, table 1000 (rtm_table 252), static, unicast, multipath.
        let mut p = vec![AF_INET, 24, 0, 0, 252, 4, 0, 1, 0, 0, 0, 0];
        attr(&mut p, RTA_TABLE, &1000u32.to_ne_bytes());
        attr(&mut p, RTA_DST, &[10, 9, 0, 0]);
        let mut mp = Vec::new();
        for (gw, idx, hops) in [([10, 0, 0, 2], 3u32, 0u8), ([10, 0, 1, 2], 4, 2)] {
            let mut gwattr = Vec::new();
            attr(&mut gwattr, RTA_GATEWAY, &gw);
            mp.extend_from_slice(&((8 + gwattr.len()) as u16).to_ne_bytes());
            mp.extend_from_slice(&[0, hops]);
            mp.extend_from_slice(&idx.to_ne_bytes());
            mp.extend_from_slice(&gwattr);
        }
        attr(&mut p, 0x8000 | RTA_MULTIPATH, &mp);
        p
    }

    #[test]
    fn a_multipath_route_in_a_high_table() {
        let r = parse_route(&route_payload()).unwrap().unwrap();
        assert_eq!((r.table, r.dst_len, r.protocol), (1000, 24, 4));
        assert_eq!(r.dst, "10.9.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(r.nexthops.len(), 2);
        assert_eq!(
            (
                r.nexthops[1].gateway,
                r.nexthops[1].index,
                r.nexthops[1].weight
            ),
            (Some("10.0.1.2".parse().unwrap()), Some(4), 3)
        );
        assert!(r.uses(4) && !r.uses(5));
    }

    /// `ip route add 10.93.0.0/16 nhid 11`, a group of two nexthops, as Linux 6.18 dumps it
    /// (nexthop_compat_mode 1: the group's paths follow the id).
    #[test]
    fn a_route_on_a_nexthop_object_carries_its_id() {
        let hex =
            "02100000fe0300010000000008000f00fe000000080001000a5d000008001e000b00000024000900\
            1000000003000000080005000a4d02021000000003000000080005000a4d0203";
        let p = crate::netlink::parse::tests::hex(hex);
        let r = parse_route(&p).unwrap().unwrap();
        assert_eq!((r.nhid, r.nexthops.len(), r.index), (Some(11), 2, None));
        assert_eq!(r.nexthops[1].gateway, Some("10.77.2.3".parse().unwrap()));
    }

    #[test]
    fn an_address_prefers_the_local_attribute() {
        let mut p = vec![AF_INET, 32, 0, 0];
        p.extend_from_slice(&7u32.to_ne_bytes());
        attr(&mut p, IFA_ADDRESS, &[10, 0, 0, 9]);
        attr(&mut p, IFA_LOCAL, &[10, 0, 0, 1]);
        attr(&mut p, IFA_LABEL, b"eth0\0");
        let a = parse_addr(&p).unwrap().unwrap();
        assert_eq!(
            (a.addr, a.index, a.label.as_deref(), a.flags),
            ("10.0.0.1".parse().unwrap(), 7, Some("eth0"), 0)
        );
        // ifa_flags, unless IFA_FLAGS (which has the flags above 0x80) is there.
        p[2] = 0x80;
        assert_eq!(parse_addr(&p).unwrap().unwrap().flags, 0x80);
        attr(&mut p, IFA_FLAGS, &0x280u32.to_ne_bytes());
        assert_eq!(parse_addr(&p).unwrap().unwrap().flags, 0x280);
        let mut other = p.clone();
        other[0] = 17;
        assert_eq!(parse_addr(&other).unwrap(), None);
    }

    #[test]
    fn no_input_makes_it_panic() {
        let r = route_payload();
        let mut a = vec![AF_INET6, 64, 0, 0, 1, 0, 0, 0];
        attr(&mut a, IFA_ADDRESS, &[0xfd; 16]);
        for buf in [&r, &a] {
            for cut in 0..buf.len() {
                let _ = parse_route(&buf[..cut]);
                let _ = parse_addr(&buf[..cut]);
                let _ = walk_notifications(&buf[..cut], |_, _| Ok(()));
            }
            for i in 0..buf.len() {
                for v in [0u8, 1, 3, 0x7f, 0xff] {
                    let mut b = buf.clone();
                    b[i] = v;
                    let _ = parse_route(&b);
                    let _ = parse_addr(&b);
                    let _ = link_address(&b);
                    let _ = walk_notifications(&b, |_, _| Ok(()));
                }
            }
        }
    }
}
