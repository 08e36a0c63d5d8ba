//! Pure decoding of nexthop objects (`RTM_NEWNEXTHOP`/`RTM_DELNEXTHOP`: `struct nhmsg` and
//! the `NHA_*` attributes), the objects FRR installs routes on (`ip route add ... nhid N`),
//! and the dump request for them. No I/O, never panics.

use super::parse::{u16_at, u32_at, Attrs, Error};
use super::rt::{dump_request, ip};
use std::net::IpAddr;

pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;

const NHMSG_LEN: usize = 8;
const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_GROUP_TYPE: u16 = 3;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NHA_FDB: u16 = 11;
/// `struct nexthop_grp`: id (u32), weight - 1 (u8), the weight's high byte (u8, since 6.12;
/// 0 before), reserved (u16).
const NEXTHOP_GRP_LEN: usize = 8;

/// `NEXTHOP_GRP_TYPE_RES`: a resilient group (hash buckets), else a plain multipath one.
pub const GROUP_RESILIENT: u16 = 1;

/// One member of a nexthop group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupMember {
    pub id: u32,
    /// As `ip nexthop` shows it (`group 1/2,3`: weight 3 for id 2).
    pub weight: u16,
}

/// One nexthop object: a single nexthop (a gateway and/or a device, or a blackhole) or a group
/// of other objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexthopObject {
    pub id: u32,
    /// `AF_INET`, `AF_INET6`, or 0 (`AF_UNSPEC`) for a group.
    pub family: u8,
    pub scope: u8,
    pub protocol: u8,
    /// `RTNH_F_*` of the `nhmsg` (`dead`, `linkdown`, `onlink`, …).
    pub flags: u32,
    pub gateway: Option<IpAddr>,
    pub index: Option<u32>,
    pub blackhole: bool,
    /// For the bridge's forwarding database (VXLAN), not for routes.
    pub fdb: bool,
    /// The members of a group, in the kernel's order; empty for a single nexthop.
    pub group: Vec<GroupMember>,
    /// `NHA_GROUP_TYPE` of a group (0 multipath, [`GROUP_RESILIENT`]).
    pub group_type: u16,
}

impl NexthopObject {
    pub fn is_group(&self) -> bool {
        !self.group.is_empty()
    }
}

/// Decodes a nexthop message. `Ok(None)` without an `NHA_ID` (nothing to key it by).
pub fn parse_nexthop(payload: &[u8]) -> Result<Option<NexthopObject>, Error> {
    if payload.len() < NHMSG_LEN {
        return Err(Error::Truncated("nhmsg"));
    }
    let family = payload[0];
    let mut nh = NexthopObject {
        id: 0,
        family,
        scope: payload[1],
        protocol: payload[2],
        flags: u32_at(payload, 4).unwrap_or(0),
        gateway: None,
        index: None,
        blackhole: false,
        fdb: false,
        group: Vec::new(),
        group_type: 0,
    };
    for attr in Attrs::new(&payload[NHMSG_LEN..]) {
        let (kind, data) = attr?;
        match kind {
            NHA_ID => nh.id = u32_at(data, 0).unwrap_or(0),
            NHA_OIF => nh.index = u32_at(data, 0).filter(|&i| i != 0),
            NHA_GATEWAY => nh.gateway = ip(family, data),
            NHA_BLACKHOLE => nh.blackhole = true,
            NHA_FDB => nh.fdb = true,
            NHA_GROUP_TYPE => nh.group_type = u16_at(data, 0).unwrap_or(0),
            NHA_GROUP => {
                if data.len() % NEXTHOP_GRP_LEN != 0 {
                    return Err(Error::Truncated("nexthop group"));
                }
                nh.group = data
                    .chunks_exact(NEXTHOP_GRP_LEN)
                    .map(|m| GroupMember {
                        id: u32_at(m, 0).unwrap_or(0),
                        weight: (u16::from(m[5]) << 8 | u16::from(m[4])) + 1,
                    })
                    .collect();
            }
            _ => {}
        }
    }
    Ok((nh.id != 0).then_some(nh))
}

/// `RTM_GETNEXTHOP` dump of every nexthop object (both families and groups).
pub fn getnexthop_dump_request(seq: u32) -> Vec<u8> {
    dump_request(RTM_GETNEXTHOP, seq, &[0; NHMSG_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::parse::tests::{every_mangling, hex};

    // Payloads of an RTM_GETNEXTHOP dump on Linux 6.18 (x86-64) after `ip nexthop add id 1 via
    // 10.77.2.2 dev vrb`, `id 4 blackhole`, `id 11 group 1/2 type resilient buckets 8`, `id 10
    // group 1/2,3`.
    const VIA: &str = "02fd00000000000008000100010000000800050003000000080006000a4d0202";
    const BLACKHOLE: &str = "0200000000000000080001000400000004000400";
    const RESILIENT: &str = "0000000000000000080001000b000000060003000100000014000200010000000000\
        0000020000000000000028000c80060001000800000008000200e02e000008000300000000000c0004000000\
        00000000000008000e0000000080";
    const WEIGHTED: &str = "0000000000000000080001000a000000060003000000000014000200150000000000\
        0000160000000200000008000e0000000080";
    /// `ip nexthop add id 23 via fd66::2 dev vn`.
    const VIA6: &str = "0afd0000000000000800010017000000080005000400000014000600fd660000000000\
        000000000000000002";

    #[test]
    fn single_nexthops_blackholes_and_groups_from_the_kernels_bytes() {
        let nh = parse_nexthop(&hex(VIA)).unwrap().unwrap();
        assert_eq!(
            (
                nh.id,
                nh.family,
                nh.scope,
                nh.index,
                nh.gateway,
                nh.is_group()
            ),
            (
                1,
                2,
                253,
                Some(3),
                Some("10.77.2.2".parse().unwrap()),
                false
            )
        );
        let b = parse_nexthop(&hex(BLACKHOLE)).unwrap().unwrap();
        assert_eq!(
            (b.id, b.blackhole, b.index, b.gateway),
            (4, true, None, None)
        );
        let r = parse_nexthop(&hex(RESILIENT)).unwrap().unwrap();
        assert_eq!((r.id, r.family, r.group_type), (11, 0, GROUP_RESILIENT));
        assert_eq!(
            r.group,
            [
                GroupMember { id: 1, weight: 1 },
                GroupMember { id: 2, weight: 1 }
            ]
        );
        // `ip nexthop add id 10 group 21/22,3`.
        let w = parse_nexthop(&hex(WEIGHTED)).unwrap().unwrap();
        assert_eq!(
            w.group,
            [
                GroupMember { id: 21, weight: 1 },
                GroupMember { id: 22, weight: 3 }
            ]
        );
        assert_eq!(w.group_type, 0);
        let v6 = parse_nexthop(&hex(VIA6)).unwrap().unwrap();
        assert_eq!(
            (v6.id, v6.family, v6.gateway),
            (23, 10, Some("fd66::2".parse().unwrap()))
        );
    }

    #[test]
    fn no_input_makes_it_panic() {
        for p in [VIA, BLACKHOLE, RESILIENT, WEIGHTED, VIA6] {
            every_mangling(&hex(p), |b| {
                let _ = parse_nexthop(b);
            });
        }
        assert_eq!(parse_nexthop(&[0; 7]), Err(Error::Truncated("nhmsg")));
        let mut odd = hex(WEIGHTED);
        odd[24] = 0x13; // the group attribute's length: 15 bytes of members
        assert_eq!(parse_nexthop(&odd), Err(Error::Truncated("nexthop group")));
    }
}
