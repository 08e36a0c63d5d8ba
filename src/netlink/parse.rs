//! Pure decoding of rtnetlink link messages: `nlmsghdr`, `ifinfomsg` and the `IFLA_*`
//! attributes lopa uses. No I/O; every function takes bytes and never panics.
//!
//! All integers are in host byte order (netlink is a local protocol). Attributes are 4-byte
//! aligned, so 64-bit counters are read from byte slices, never through aligned pointers.

use std::fmt;

pub const NLMSG_HDRLEN: usize = 16;
pub const IFINFOMSG_LEN: usize = 16;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWSTATS: u16 = 92;
pub const RTM_GETSTATS: u16 = 94;
/// `struct if_stats_msg`.
pub const IF_STATS_MSG_LEN: usize = 12;
pub const IFLA_STATS_LINK_64: u16 = 1;

pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ROOT | NLM_F_MATCH`.
pub const NLM_F_DUMP: u16 = 0x300;
/// The dump's contents changed while it ran: it may be inconsistent.
pub const NLM_F_DUMP_INTR: u16 = 0x10;

pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_MTU: u16 = 4;
pub const IFLA_STATS: u16 = 7;
pub const IFLA_OPERSTATE: u16 = 16;
pub const IFLA_STATS64: u16 = 23;
pub const IFLA_CARRIER: u16 = 33;

pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;
pub const IFF_LOWER_UP: u32 = 0x10000;

/// Attribute type bits that are flags, not part of the type (`NLA_F_NESTED`, byte order).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A length field points past the end of the data.
    Truncated(&'static str),
    /// The kernel answered the request with an error (a positive errno).
    Kernel(i32),
    /// The receive buffer overflowed (`NLMSG_OVERRUN`).
    Overrun,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated(what) => write!(f, "truncated netlink {what}"),
            Error::Kernel(errno) => write!(f, "{}", std::io::Error::from_raw_os_error(*errno)),
            Error::Overrun => write!(f, "netlink receive buffer overrun"),
        }
    }
}

impl std::error::Error for Error {}

/// Interface counters (`struct rtnl_link_stats64`, or the 32-bit `rtnl_link_stats` of old
/// kernels). The eight basic counters are always there; the rest only when the kernel's
/// structure is long enough to hold them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub multicast: Option<u64>,
    pub collisions: Option<u64>,
    pub rx_missed: Option<u64>,
}

/// Positions in `rtnl_link_stats64` (stable kernel ABI: fields are only appended).
const RX_PACKETS: usize = 0;
const TX_PACKETS: usize = 1;
const RX_BYTES: usize = 2;
const TX_BYTES: usize = 3;
const RX_ERRORS: usize = 4;
const TX_ERRORS: usize = 5;
const RX_DROPPED: usize = 6;
const TX_DROPPED: usize = 7;
const MULTICAST: usize = 8;
const COLLISIONS: usize = 9;
const RX_MISSED: usize = 15;

impl Counters {
    /// Decodes a counter structure of `width`-byte fields by its length: kernels append
    /// fields over time (24 u64 before 5.19, 25 since), and a short structure only lacks the
    /// late ones. `None` when even the eight basic counters are missing.
    pub fn decode(data: &[u8], width: usize) -> Option<Counters> {
        let n = data.len() / width;
        let field = |i: usize| -> Option<u64> {
            if i >= n {
                return None;
            }
            let b = data.get(i * width..(i + 1) * width)?;
            match width {
                8 => Some(u64::from_ne_bytes(b.try_into().ok()?)),
                4 => Some(u32::from_ne_bytes(b.try_into().ok()?) as u64),
                _ => None,
            }
        };
        Some(Counters {
            rx_packets: field(RX_PACKETS)?,
            tx_packets: field(TX_PACKETS)?,
            rx_bytes: field(RX_BYTES)?,
            tx_bytes: field(TX_BYTES)?,
            rx_errors: field(RX_ERRORS)?,
            tx_errors: field(TX_ERRORS)?,
            rx_dropped: field(RX_DROPPED)?,
            tx_dropped: field(TX_DROPPED)?,
            multicast: field(MULTICAST),
            collisions: field(COLLISIONS),
            rx_missed: field(RX_MISSED),
        })
    }
}

/// One interface as an `RTM_NEWLINK` message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    /// `IFF_*` flags of the `ifinfomsg`.
    pub flags: u32,
    pub name: String,
    pub mtu: Option<u32>,
    /// `IF_OPER_*` (RFC 2863 operational state).
    pub oper: Option<u8>,
    /// `IFLA_CARRIER`, else the `IFF_LOWER_UP` flag.
    pub carrier: bool,
    pub counters: Option<Counters>,
}

impl Link {
    pub fn admin_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    pub fn loopback(&self) -> bool {
        self.flags & IFF_LOOPBACK != 0
    }
}

/// The RFC 2863 name of an `IF_OPER_*` value, as `ip link` prints it (lower case).
pub fn oper_name(oper: Option<u8>) -> &'static str {
    match oper {
        Some(1) => "notpresent",
        Some(2) => "down",
        Some(3) => "lowerlayerdown",
        Some(4) => "testing",
        Some(5) => "dormant",
        Some(6) => "up",
        _ => "unknown",
    }
}

/// What one datagram of a dump held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// `NLMSG_DONE` was seen: the dump is complete.
    pub done: bool,
    /// A message carried `NLM_F_DUMP_INTR`: the dump must be retried.
    pub interrupted: bool,
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The `RTM_GETLINK` dump request for every interface, with sequence number `seq`.
pub fn getlink_dump_request(seq: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + IFINFOMSG_LEN;
    let mut req = Vec::with_capacity(len);
    req.extend_from_slice(&(len as u32).to_ne_bytes());
    req.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    req.resize(len, 0); // ifinfomsg: AF_UNSPEC, every interface
    req
}

/// Walks the messages of one dump datagram answering request `seq`, handing each data
/// message to `f` as `(type, payload)`. Messages of other requests are skipped.
pub fn walk(
    buf: &[u8],
    seq: u32,
    mut f: impl FnMut(u16, &[u8]) -> Result<(), Error>,
) -> Result<Progress, Error> {
    let mut progress = Progress::default();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at).unwrap_or(0) as usize;
        let kind = u16_at(buf, at + 4).unwrap_or(0);
        let flags = u16_at(buf, at + 6).unwrap_or(0);
        let msg_seq = u32_at(buf, at + 8).unwrap_or(0);
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(Error::Truncated("message"));
        }
        let payload = &buf[at + NLMSG_HDRLEN..at + len];
        at += align4(len);
        if msg_seq != seq {
            continue;
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            progress.interrupted = true;
        }
        match kind {
            NLMSG_NOOP => {}
            NLMSG_OVERRUN => return Err(Error::Overrun),
            NLMSG_ERROR | NLMSG_DONE => {
                // Both carry an i32 error (0 for an acknowledgment or a clean end).
                let err = u32_at(payload, 0).map(|e| e as i32).unwrap_or(0);
                if err < 0 {
                    return Err(Error::Kernel(-err));
                }
                if kind == NLMSG_DONE {
                    progress.done = true;
                    return Ok(progress);
                }
            }
            _ => f(kind, payload)?,
        }
    }
    Ok(progress)
}

/// Decodes one datagram of an `RTM_GETLINK` dump answering request `seq`: appends every
/// interface to `links`.
pub fn parse_dump(buf: &[u8], seq: u32, links: &mut Vec<Link>) -> Result<Progress, Error> {
    walk(buf, seq, |kind, payload| {
        if kind == RTM_NEWLINK {
            links.push(parse_link(payload)?);
        }
        Ok(())
    })
}

/// The `RTM_GETSTATS` dump request for the 64-bit link counters of every interface: the
/// kernel sends only `if_stats_msg` and `IFLA_STATS_LINK_64`, a tenth of a link message.
pub fn getstats_dump_request(seq: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + IF_STATS_MSG_LEN;
    let mut req = Vec::with_capacity(len);
    req.extend_from_slice(&(len as u32).to_ne_bytes());
    req.extend_from_slice(&RTM_GETSTATS.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // if_stats_msg: family, pad, pad, ifindex 0 (all), filter_mask.
    req.extend_from_slice(&[0; 8]);
    req.extend_from_slice(&(1u32 << (IFLA_STATS_LINK_64 - 1)).to_ne_bytes());
    req
}

/// Decodes one datagram of an `RTM_GETSTATS` dump: appends `(ifindex, counters)`.
pub fn parse_stats_dump(
    buf: &[u8],
    seq: u32,
    out: &mut Vec<(u32, Counters)>,
) -> Result<Progress, Error> {
    walk(buf, seq, |kind, payload| {
        if kind != RTM_NEWSTATS {
            return Ok(());
        }
        if payload.len() < IF_STATS_MSG_LEN {
            return Err(Error::Truncated("if_stats_msg"));
        }
        let index = u32_at(payload, 4).unwrap_or(0);
        for attr in Attrs::new(&payload[IF_STATS_MSG_LEN..]) {
            let (t, data) = attr?;
            if t == IFLA_STATS_LINK_64 {
                if let Some(c) = Counters::decode(data, 8) {
                    out.push((index, c));
                }
            }
        }
        Ok(())
    })
}

/// Decodes the payload of an `RTM_NEWLINK` message: `ifinfomsg` and its attributes.
pub fn parse_link(payload: &[u8]) -> Result<Link, Error> {
    if payload.len() < IFINFOMSG_LEN {
        return Err(Error::Truncated("ifinfomsg"));
    }
    let index = u32_at(payload, 4).unwrap_or(0);
    let flags = u32_at(payload, 8).unwrap_or(0);
    let mut link = Link {
        index,
        flags,
        name: String::new(),
        mtu: None,
        oper: None,
        carrier: flags & IFF_LOWER_UP != 0,
        counters: None,
    };
    let mut stats32 = None;
    for attr in Attrs::new(&payload[IFINFOMSG_LEN..]) {
        let (kind, data) = attr?;
        match kind {
            IFLA_IFNAME => {
                let name = data.split(|&b| b == 0).next().unwrap_or_default();
                link.name = String::from_utf8_lossy(name).into_owned();
            }
            IFLA_MTU => link.mtu = u32_at(data, 0),
            IFLA_OPERSTATE => link.oper = data.first().copied(),
            IFLA_CARRIER => {
                if let Some(&c) = data.first() {
                    link.carrier = c != 0;
                }
            }
            IFLA_STATS64 => link.counters = Counters::decode(data, 8),
            IFLA_STATS => stats32 = Counters::decode(data, 4),
            _ => {}
        }
    }
    // Only kernels without IFLA_STATS64 (before 2.6.35) need the 32-bit counters.
    if link.counters.is_none() {
        link.counters = stats32;
    }
    Ok(link)
}

/// An iterator over `rtattr`s: `(type, payload)`, or an error at the first bad length.
pub struct Attrs<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Attrs<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Attrs { buf, failed: false }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.len() < 4 {
            return None;
        }
        let len = u16_at(self.buf, 0).unwrap_or(0) as usize;
        let kind = u16_at(self.buf, 2).unwrap_or(0) & NLA_TYPE_MASK;
        if len < 4 || len > self.buf.len() {
            self.failed = true;
            return Some(Err(Error::Truncated("attribute")));
        }
        let data = &self.buf[4..len];
        self.buf = self.buf.get(align4(len)..).unwrap_or_default();
        Some(Ok((kind, data)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes from hex text (payloads copied from the kernel's dumps).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Feeds `parse` every truncation of `buf`, and `buf` with each byte replaced by a few
    /// values: the decoders must give a result or an error, never panic.
    pub(crate) fn every_mangling(buf: &[u8], mut parse: impl FnMut(&[u8])) {
        for cut in 0..buf.len() {
            parse(&buf[..cut]);
        }
        for i in 0..buf.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut b = buf.to_vec();
                b[i] = v;
                parse(&b);
            }
        }
    }

    fn attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(data);
        out.resize(align4(out.len()), 0);
    }

    fn message(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, payload: &[u8]) {
        out.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&4242u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out.resize(align4(out.len()), 0);
    }

    /// An `RTM_NEWLINK` payload as the kernel builds it, with `n` u64 counters valued 1..=n.
    pub(crate) fn newlink(index: u32, flags: u32, name: &str, n: usize) -> Vec<u8> {
        let mut p = vec![0u8; IFINFOMSG_LEN];
        p[4..8].copy_from_slice(&index.to_ne_bytes());
        p[8..12].copy_from_slice(&flags.to_ne_bytes());
        let mut cname = name.as_bytes().to_vec();
        cname.push(0);
        attr(&mut p, IFLA_IFNAME, &cname);
        attr(&mut p, IFLA_MTU, &1500u32.to_ne_bytes());
        attr(&mut p, IFLA_OPERSTATE, &[6]);
        attr(&mut p, IFLA_CARRIER, &[1]);
        // A nested attribute with NLA_F_NESTED set, to skip.
        attr(&mut p, 0x8000 | 26, &[0; 12]);
        let stats: Vec<u8> = (1..=n as u64).flat_map(|v| v.to_ne_bytes()).collect();
        attr(&mut p, IFLA_STATS64, &stats);
        p
    }

    #[test]
    fn request_is_a_getlink_dump() {
        let r = getlink_dump_request(7);
        assert_eq!(r.len(), 32);
        assert_eq!(u32_at(&r, 0), Some(32));
        assert_eq!(u16_at(&r, 4), Some(RTM_GETLINK));
        assert_eq!(u16_at(&r, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        assert_eq!(u32_at(&r, 8), Some(7));
        assert!(r[16..].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_dump_datagram_yields_links_and_ends_on_done() {
        let mut buf = Vec::new();
        message(&mut buf, RTM_NEWLINK, 2, 9, &newlink(1, 0x49, "lo", 25));
        message(
            &mut buf,
            RTM_NEWLINK,
            2,
            8,
            &newlink(5, 0x1003, "other", 25),
        );
        message(
            &mut buf,
            RTM_NEWLINK,
            2,
            9,
            &newlink(3, 0x11003, "eth0", 24),
        );
        message(&mut buf, NLMSG_DONE, 2, 9, &0i32.to_ne_bytes());
        let mut links = Vec::new();
        let p = parse_dump(&buf, 9, &mut links).unwrap();
        assert_eq!(
            p,
            Progress {
                done: true,
                interrupted: false
            }
        );
        assert_eq!(links.len(), 2, "the message of another request is skipped");
        let lo = &links[0];
        assert_eq!((lo.index, lo.name.as_str()), (1, "lo"));
        assert!(lo.loopback() && lo.admin_up());
        let eth = &links[1];
        assert_eq!(eth.mtu, Some(1500));
        assert_eq!(oper_name(eth.oper), "up");
        assert!(eth.carrier);
        let c = eth.counters.unwrap();
        assert_eq!(
            (c.rx_packets, c.tx_packets, c.rx_bytes, c.tx_bytes),
            (1, 2, 3, 4)
        );
        assert_eq!(
            (c.rx_errors, c.tx_errors, c.rx_dropped, c.tx_dropped),
            (5, 6, 7, 8)
        );
        assert_eq!(
            (c.multicast, c.collisions, c.rx_missed),
            (Some(9), Some(10), Some(16))
        );
    }

    #[test]
    fn a_stats_dump_yields_counters_by_index() {
        let r = getstats_dump_request(3);
        assert_eq!(
            (r.len(), u16_at(&r, 4), u32_at(&r, 24)),
            (28, Some(RTM_GETSTATS), Some(1))
        );
        let mut p = vec![0u8; IF_STATS_MSG_LEN];
        p[4..8].copy_from_slice(&7u32.to_ne_bytes());
        let stats: Vec<u8> = (1..=25u64).flat_map(|v| (v * 100).to_ne_bytes()).collect();
        attr(&mut p, IFLA_STATS_LINK_64, &stats);
        let mut buf = Vec::new();
        message(&mut buf, RTM_NEWSTATS, 2, 3, &p);
        message(&mut buf, NLMSG_DONE, 2, 3, &0i32.to_ne_bytes());
        let mut out = Vec::new();
        assert!(parse_stats_dump(&buf, 3, &mut out).unwrap().done);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].0, out[0].1.rx_bytes, out[0].1.rx_missed),
            (7, 300, Some(1600))
        );
        let mut short = Vec::new();
        message(&mut short, RTM_NEWSTATS, 2, 3, &[0; 8]);
        assert_eq!(
            parse_stats_dump(&short, 3, &mut out),
            Err(Error::Truncated("if_stats_msg"))
        );
    }

    #[test]
    fn counters_are_decoded_by_length() {
        let bytes = |n: u64, w: usize| -> Vec<u8> {
            (1..=n)
                .flat_map(|v| {
                    if w == 8 {
                        v.to_ne_bytes().to_vec()
                    } else {
                        (v as u32).to_ne_bytes().to_vec()
                    }
                })
                .collect()
        };
        let short = Counters::decode(&bytes(9, 8), 8).unwrap();
        assert_eq!(
            (short.multicast, short.collisions, short.rx_missed),
            (Some(9), None, None)
        );
        assert_eq!(Counters::decode(&bytes(7, 8), 8), None);
        // A trailing partial field is ignored, not misread.
        let mut odd = bytes(8, 8);
        odd.extend_from_slice(&[1, 2, 3]);
        assert_eq!(Counters::decode(&odd, 8).unwrap().multicast, None);
        let old = Counters::decode(&bytes(23, 4), 4).unwrap();
        assert_eq!((old.tx_dropped, old.rx_missed), (8, Some(16)));
    }

    #[test]
    fn stats32_is_used_only_without_stats64() {
        let mut p = vec![0u8; IFINFOMSG_LEN];
        let s32: Vec<u8> = (1..=23u32).flat_map(|v| (v * 10).to_ne_bytes()).collect();
        attr(&mut p, IFLA_STATS, &s32);
        assert_eq!(parse_link(&p).unwrap().counters.unwrap().rx_bytes, 30);
        let s64: Vec<u8> = (1..=25u64).flat_map(|v| v.to_ne_bytes()).collect();
        attr(&mut p, IFLA_STATS64, &s64);
        assert_eq!(parse_link(&p).unwrap().counters.unwrap().rx_bytes, 3);
    }

    #[test]
    fn kernel_errors_overruns_and_interrupted_dumps() {
        let mut buf = Vec::new();
        message(&mut buf, NLMSG_ERROR, 0, 1, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            parse_dump(&buf, 1, &mut Vec::new()),
            Err(Error::Kernel(libc::EPERM))
        );
        let mut buf = Vec::new();
        message(&mut buf, NLMSG_OVERRUN, 0, 1, &[]);
        assert_eq!(parse_dump(&buf, 1, &mut Vec::new()), Err(Error::Overrun));
        let mut buf = Vec::new();
        message(
            &mut buf,
            RTM_NEWLINK,
            NLM_F_DUMP_INTR,
            1,
            &newlink(2, 1, "x", 25),
        );
        let p = parse_dump(&buf, 1, &mut Vec::new()).unwrap();
        assert!(p.interrupted && !p.done);
    }

    #[test]
    fn no_input_makes_it_panic() {
        let mut buf = Vec::new();
        message(&mut buf, RTM_NEWLINK, 0, 1, &newlink(2, 1, "eth0", 25));
        message(&mut buf, NLMSG_DONE, 0, 1, &0i32.to_ne_bytes());
        // Every truncation and every corrupted byte: an error or a result, never a panic.
        for cut in 0..buf.len() {
            let _ = parse_dump(&buf[..cut], 1, &mut Vec::new());
        }
        for i in 0..buf.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut b = buf.clone();
                b[i] = v;
                let _ = parse_dump(&b, 1, &mut Vec::new());
                let _ = parse_stats_dump(&b, 1, &mut Vec::new());
            }
        }
        assert_eq!(parse_link(&[0; 15]), Err(Error::Truncated("ifinfomsg")));
        let mut p = vec![0u8; IFINFOMSG_LEN];
        p.extend_from_slice(&[200, 0, 3, 0, b'x']);
        assert_eq!(parse_link(&p), Err(Error::Truncated("attribute")));
    }
}
