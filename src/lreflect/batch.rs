//! Batched datagram I/O for the reflector: up to [`BATCH`] datagrams per `recvmmsg`, the
//! answers in place (same buffers; echoes at the same lengths, TWAMP replies built over their
//! requests) with `sendmmsg`, and the control messages of both directions: kernel receive
//! timestamp, TOS / traffic class, TTL / hop limit and the local address (`IP_PKTINFO` /
//! `IPV6_PKTINFO`) in, TOS and source address out.
//!
//! Batching saves system calls, but on Linux most of the cost of an answer is the kernel's
//! trip through the IP stack, once per datagram. So answers that go back to back to one client
//! at one size are coalesced into a single UDP GSO send (`UDP_SEGMENT`): the kernel cuts it
//! into the same datagrams, on the wire or at the receiving socket, after one trip.
//!
//! Memory is allocated once and written at start (so it is resident from the first packet and
//! the resident size never grows); nothing is allocated per datagram.
//!
//! Plain `libc`, not nix, for the system calls here: nix's `sendmmsg` takes one set of
//! control messages for the whole batch, where each answer needs its own source address,
//! TOS and GSO size (nix issue 1954), and its `recvmmsg` cannot reuse the headers, buffers
//! and control space set up once here (nix PR 2813, open) without rebuilding them per call.
//! So the receive control buffers are decoded by hand ([`parse_control`], which assumes the
//! 64-bit Linux `cmsghdr` layout; fuzzed by fuzz/fuzz_targets/cmsg.rs).

mod reply;
use crate::net::cmsg::parse_sockaddr_ip;
use crate::wire::ludp_payload::{self, FlowCounts, ReflectorStamps, REFLECTOR_LEN};
use crate::wire::ntp::{Format, Timestamp};
use crate::wire::twamp;
use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::{SystemTime, UNIX_EPOCH};

/// Datagrams per `recvmmsg` / `sendmmsg`.
pub const BATCH: usize = 64;

/// Most datagrams in one UDP GSO send: `UDP_MAX_SEGMENTS` of older kernels (newer ones take
/// 128); more and the kernel refuses the send.
pub const GSO_MAX_SEGMENTS: usize = 64;

/// Stamped answers sent one by one go at most this many per `sendmmsg`, each group stamped
/// right before its call, so a stamp is never more than a few sends older than its answer.
pub const STAMP_CHUNK: usize = 8;

/// Stamped answers coalesced into one UDP GSO send: at most this many. They leave after one
/// trip through the stack, cut apart within a few microseconds, sooner than
/// [`STAMP_CHUNK`] separate sends.
pub const STAMP_GSO_CHUNK: usize = 32;

/// Largest answer coalesced with others into one UDP GSO send: each datagram of the send, with
/// its headers, must fit the path MTU (1200 + 48 fits IPv6's minimum of 1280), or the kernel
/// refuses the send.
pub const GSO_MAX_LEN: usize = 1200;

/// `UDP_SEGMENT` (linux/udp.h): the GSO segment size, as a socket option or per send.
pub const UDP_SEGMENT: i32 = 103;

/// Receive control space per datagram: timestamp (32 bytes with its header), IPv6 packet info
/// (40), TOS or traffic class (24), TTL or hop limit (24), with room to spare.
const RX_CONTROL: usize = 160;
/// Send control space per message: packet info (at most 40), TOS (24), segment size (24).
const TX_CONTROL: usize = 96;

const HDR_LEN: usize = std::mem::size_of::<libc::cmsghdr>();

fn align(len: usize) -> usize {
    let a = std::mem::size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

/// The local address a datagram was sent to, to answer from it (bound to a wildcard address,
/// the kernel would otherwise pick the source by route, and a client that sent to a secondary
/// address would not recognise the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// `ipi_spec_dst` of `IP_PKTINFO` (an IPv4 socket).
    V4([u8; 4]),
    /// `ipi6_addr` of `IPV6_PKTINFO` (an IPv6 socket; IPv4-mapped for IPv4 clients).
    V6([u8; 16]),
}

/// What the kernel said about one received datagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Control {
    /// Kernel receive time (`SO_TIMESTAMPNS`), ns since the Unix epoch.
    pub rx_ns: Option<u64>,
    /// TOS (`IP_TOS`, also for IPv4 clients of a dual-stack socket) or traffic class
    /// (`IPV6_TCLASS`).
    pub tos: Option<u8>,
    /// TTL (`IP_TTL`, also for IPv4 clients of a dual-stack socket, where only `IP_RECVTTL`
    /// reports it) or hop limit (`IPV6_HOPLIMIT`); enabled on TWAMP sockets only.
    pub ttl: Option<u8>,
    pub local: Option<Local>,
}

/// Decodes a receive control buffer (`msg_controllen` bytes). Unknown messages are skipped;
/// decoding stops at the first header that does not fit.
pub fn parse_control(buf: &[u8]) -> Control {
    let mut out = Control::default();
    let mut at = 0;
    while at + HDR_LEN <= buf.len() {
        let word = |o: usize, n: usize| &buf[at + o..at + o + n];
        let len = usize::from_ne_bytes(word(0, 8).try_into().unwrap_or_default());
        let level = i32::from_ne_bytes(word(8, 4).try_into().unwrap_or_default());
        let kind = i32::from_ne_bytes(word(12, 4).try_into().unwrap_or_default());
        // A length that overflows `at + len` or runs past the buffer ends the walk.
        let end = match at.checked_add(len) {
            Some(end) if len >= HDR_LEN && end <= buf.len() => end,
            _ => break,
        };
        let data = &buf[at + HDR_LEN..end];
        match (level, kind) {
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) if data.len() >= 16 => {
                let sec = i64::from_ne_bytes(data[..8].try_into().unwrap_or_default());
                let nsec = i64::from_ne_bytes(data[8..16].try_into().unwrap_or_default());
                if sec > 0 && (0..1_000_000_000).contains(&nsec) {
                    // A time past 2554 (ns overflow a u64) is no stamp (found by fuzzing:
                    // the product overflowed).
                    out.rx_ns = (sec as u64)
                        .checked_mul(1_000_000_000)
                        .and_then(|ns| ns.checked_add(nsec as u64));
                }
            }
            // IPv4 gives the TOS as one byte.
            (libc::IPPROTO_IP, libc::IP_TOS) => out.tos = data.first().copied(),
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) if data.len() >= 4 => {
                let v = i32::from_ne_bytes(data[..4].try_into().unwrap_or_default());
                out.tos = u8::try_from(v).ok();
            }
            // Both an int.
            (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
                if data.len() >= 4 =>
            {
                let v = i32::from_ne_bytes(data[..4].try_into().unwrap_or_default());
                out.ttl = u8::try_from(v).ok();
            }
            // struct in_pktinfo: ifindex, spec_dst, addr.
            (libc::IPPROTO_IP, libc::IP_PKTINFO) if data.len() >= 12 => {
                out.local = Some(Local::V4(data[4..8].try_into().unwrap_or_default()));
            }
            // struct in6_pktinfo: addr, ifindex.
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if data.len() >= 20 => {
                out.local = Some(Local::V6(data[..16].try_into().unwrap_or_default()));
            }
            _ => {}
        }
        at += align(len);
    }
    out
}

/// Appends one control message to `buf` at `at`; returns the offset after it (aligned).
fn put_cmsg(buf: &mut [u8], at: usize, level: i32, kind: i32, data: &[u8]) -> usize {
    let len = HDR_LEN + data.len();
    buf[at..at + 8].copy_from_slice(&len.to_ne_bytes());
    buf[at + 8..at + 12].copy_from_slice(&level.to_ne_bytes());
    buf[at + 12..at + 16].copy_from_slice(&kind.to_ne_bytes());
    buf[at + HDR_LEN..at + len].copy_from_slice(data);
    let end = at + align(len);
    buf[at + len..end].fill(0);
    end
}

/// Writes the send control messages of one answer into `buf`; returns their length.
/// `local`: answer from this address. `tos`: set this TOS on the answer; `ipv4` says whether
/// the client is IPv4 (also on a dual-stack socket, where the kernel then takes `IP_TOS` and
/// ignores `IPV6_TCLASS`).
pub fn build_control(buf: &mut [u8], local: Option<Local>, tos: Option<u8>, ipv4: bool) -> usize {
    let mut at = 0;
    match local {
        Some(Local::V4(spec_dst)) => {
            let mut info = [0u8; 12];
            info[4..8].copy_from_slice(&spec_dst);
            at = put_cmsg(buf, at, libc::IPPROTO_IP, libc::IP_PKTINFO, &info);
        }
        // A multicast destination is no source address; let the kernel choose.
        Some(Local::V6(addr)) if addr[0] != 0xff => {
            let mut info = [0u8; 20];
            info[..16].copy_from_slice(&addr);
            at = put_cmsg(buf, at, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info);
        }
        _ => {}
    }
    if let Some(tos) = tos {
        let v = i32::from(tos).to_ne_bytes();
        at = if ipv4 {
            put_cmsg(buf, at, libc::IPPROTO_IP, libc::IP_TOS, &v)
        } else {
            put_cmsg(buf, at, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &v)
        };
    }
    at
}

/// One received datagram.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    /// Its length; once [`Batch::reflect_twamp`] built the reply in its place, the reply's.
    pub len: usize,
    /// Longer than the longest datagram answered: `len` is the length the datagram had, of
    /// which at most a prefix was read.
    pub truncated: bool,
    /// The source, canonical (IPv4 clients of a dual-stack socket as IPv4).
    pub src: Option<IpAddr>,
    namelen: libc::socklen_t,
    pub control: Control,
}

/// How answers are sent.
#[derive(Debug, Clone, Copy)]
pub struct SendOptions {
    /// Answer from the address each datagram was sent to (the socket is bound to a wildcard).
    pub pktinfo: bool,
    /// Give each answer the TOS its request arrived with.
    pub reflect_tos: bool,
    /// The clock is synchronized (the stamps' `SYNCED` flag).
    pub synced: bool,
    /// Coalesce answers to one destination into UDP GSO sends.
    pub gso: bool,
    /// Every queued answer is a TWAMP reply built by [`Batch::reflect_twamp`], to get its
    /// transmit timestamp (T3) right before its send.
    pub twamp: bool,
}

/// What became of the queued answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    pub reflected: u64,
    /// Of those, ludp payloads that carry the reflector's stamps, or TWAMP replies.
    pub stamped: u64,
    pub failed: u64,
    /// The error of the last failed send, for a diagnostic.
    pub last_error: Option<i32>,
    /// A coalesced send was refused (its datagrams then went one by one): stop coalescing.
    pub gso_refused: bool,
}

/// Answers that leave in one message: queue positions `start..start + len`.
#[derive(Debug, Clone, Copy, Default)]
struct Group {
    start: usize,
    len: usize,
    /// The group's answers are to be stamped: ludp payloads or TWAMP replies (groups never
    /// mix).
    probes: bool,
    /// Length of the group's control messages without the segment size.
    base_control: usize,
}

/// The buffers of one batch. The `mmsghdr`s point into the other vectors, which are
/// allocated once in [`Batch::new`] and never resized, so the pointers stay valid when the
/// `Batch` itself moves.
pub struct Batch {
    slot_len: usize,
    /// Longest datagram answered; longer ones are flagged truncated.
    max_len: usize,
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_in6>,
    rx_iovs: Vec<libc::iovec>,
    rx_control: Vec<u8>,
    rx_msgs: Vec<libc::mmsghdr>,
    tx_iovs: Vec<libc::iovec>,
    tx_control: Vec<u8>,
    tx_msgs: Vec<libc::mmsghdr>,
    /// Per received datagram, valid for the first `received` slots.
    pub meta: Vec<Meta>,
    /// Per received datagram, its flow's counts to stamp into it (ludp payloads of a counted
    /// flow; see [`Batch::set_counts`]).
    counts: Vec<Option<FlowCounts>>,
    /// Per received datagram, the TOS its answer must leave with whatever `reflect_tos` says
    /// (a STAMP Class of Service TLV's DSCP; see [`Batch::set_answer_tos`]).
    answer_tos: Vec<Option<u8>>,
    /// Per received datagram, its answer is a keyed TWAMP reply, sealed with its T3 already
    /// ([`Batch::reflect_keyed`]): sending must not touch it.
    sealed: Vec<bool>,
    received: usize,
    /// Slots to answer, in order.
    queue: Vec<usize>,
    is_probe: Vec<bool>,
    groups: Vec<Group>,
}

impl Batch {
    /// Buffers for [`BATCH`] datagrams of up to `max_len` bytes each; longer ones are read
    /// truncated and flagged. A slot has room for a STAMP reply (44 bytes) whatever `max_len`.
    pub fn new(max_len: usize) -> Batch {
        let max_len = max_len.max(1);
        let slot_len = max_len.max(twamp::STAMP_LEN);
        // Non-zero fill: a zeroed vector comes lazily from calloc, and its pages would become
        // resident only as traffic touches them.
        let mut bufs = vec![0x55u8; BATCH * slot_len];
        let mut rx_control = vec![0x55u8; BATCH * RX_CONTROL];
        let tx_control = vec![0x55u8; BATCH * TX_CONTROL];
        // SAFETY: sockaddr_in6, iovec and mmsghdr are plain C structs; all-zero is valid.
        let (zero_name, zero_msg): (libc::sockaddr_in6, libc::mmsghdr) =
            unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        let mut names = vec![zero_name; BATCH];
        let mut rx_iovs: Vec<libc::iovec> = (0..BATCH)
            .map(|i| libc::iovec {
                iov_base: bufs[i * slot_len..].as_mut_ptr().cast(),
                iov_len: slot_len,
            })
            .collect();
        let mut tx_iovs = rx_iovs.clone();
        let mut rx_msgs = vec![zero_msg; BATCH];
        let mut tx_msgs = vec![zero_msg; BATCH];
        for i in 0..BATCH {
            let h = &mut rx_msgs[i].msg_hdr;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_in6).cast();
            h.msg_iov = &mut rx_iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = rx_control[i * RX_CONTROL..].as_mut_ptr().cast();
            let t = &mut tx_msgs[i].msg_hdr;
            t.msg_iov = &mut tx_iovs[i];
            t.msg_iovlen = 1;
        }
        Batch {
            slot_len,
            max_len,
            bufs,
            names,
            rx_iovs,
            rx_control,
            rx_msgs,
            tx_iovs,
            tx_control,
            tx_msgs,
            meta: vec![Meta::default(); BATCH],
            counts: vec![None; BATCH],
            answer_tos: vec![None; BATCH],
            sealed: vec![false; BATCH],
            received: 0,
            queue: Vec::with_capacity(BATCH),
            is_probe: vec![false; BATCH],
            groups: vec![Group::default(); BATCH],
        }
    }

    /// Bytes of buffers this batch holds (fixed for its lifetime).
    pub fn bytes(&self) -> usize {
        self.bufs.len() + self.rx_control.len() + self.tx_control.len()
    }

    /// The payload of received slot `i`, as much as was read.
    pub fn payload(&self, i: usize) -> &[u8] {
        let len = self.meta[i].len.min(self.slot_len);
        &self.bufs[i * self.slot_len..i * self.slot_len + len]
    }

    /// The payload of received slot `i` to change in place (a TWAMP reply's TLVs).
    pub fn payload_mut(&mut self, i: usize) -> &mut [u8] {
        let len = self.meta[i].len.min(self.slot_len);
        &mut self.bufs[i * self.slot_len..i * self.slot_len + len]
    }

    /// The answer to received slot `i` leaves with TOS `tos`.
    pub fn set_answer_tos(&mut self, i: usize, tos: u8) {
        debug_assert!(i < self.received);
        self.answer_tos[i] = Some(tos);
    }

    /// The TOS the answer to slot `i` leaves with, if any is set.
    fn tos_of(&self, i: usize, reflect_tos: bool) -> Option<u8> {
        self.answer_tos[i].or(if reflect_tos {
            self.meta[i].control.tos
        } else {
            None
        })
    }

    /// The source port of received slot `i` (`sin_port` and `sin6_port` are at the same
    /// offset).
    pub fn source_port(&self, i: usize) -> u16 {
        u16::from_be(self.names[i].sin6_port)
    }

    /// Reads up to [`BATCH`] datagrams without blocking; returns how many (0 never: an empty
    /// queue is `WouldBlock`). Clears the answer queue.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.queue.clear();
        self.received = 0;
        for m in &mut self.rx_msgs {
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            m.msg_hdr.msg_controllen = RX_CONTROL as _;
            m.msg_hdr.msg_flags = 0;
            m.msg_len = 0;
        }
        // SAFETY: every mmsghdr points at live buffers of the lengths it states (see `new`).
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.rx_msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                // MSG_TRUNC: the length of a truncated datagram is its real length.
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        self.counts[..n].fill(None);
        self.answer_tos[..n].fill(None);
        self.sealed[..n].fill(false);
        for i in 0..n {
            let h = &self.rx_msgs[i].msg_hdr;
            let namelen = (h.msg_namelen as usize).min(std::mem::size_of::<libc::sockaddr_in6>());
            // SAFETY: names[i] is a plain struct of at least `namelen` bytes.
            let name = unsafe {
                std::slice::from_raw_parts(
                    (&self.names[i] as *const libc::sockaddr_in6).cast::<u8>(),
                    namelen,
                )
            };
            // msg_controllen is a usize with glibc, a u32 with musl.
            #[allow(clippy::unnecessary_cast)]
            let control_len = (h.msg_controllen as usize).min(RX_CONTROL);
            let control = &self.rx_control[i * RX_CONTROL..i * RX_CONTROL + control_len];
            let len = self.rx_msgs[i].msg_len as usize;
            self.meta[i] = Meta {
                len,
                truncated: h.msg_flags & libc::MSG_TRUNC != 0 || len > self.max_len,
                src: parse_sockaddr_ip(name),
                namelen: namelen as libc::socklen_t,
                control: parse_control(control),
            };
        }
        self.received = n;
        Ok(n)
    }

    /// Stamps `counts` into the answer to received slot `i` (a ludp payload with room for
    /// them), with the reflector's times.
    pub fn set_counts(&mut self, i: usize, counts: FlowCounts) {
        debug_assert!(i < self.received);
        self.counts[i] = Some(counts);
    }

    /// Queues received slot `i` to be answered by the next [`Batch::send`].
    pub fn answer(&mut self, i: usize) {
        debug_assert!(i < self.received);
        self.queue.push(i);
    }

    /// Sends the queued answers: each the datagram as received, to its source, stamped if it
    /// is a ludp payload with room for the stamps; with `opts.twamp`, the TWAMP replies built
    /// by [`Batch::reflect_twamp`], each with its T3. With `opts.gso`, answers that go back to
    /// back to the same address and port, at the same size and with the same options, leave
    /// in one send that the kernel cuts into datagrams (UDP GSO): one trip through the IP
    /// stack instead of one each. If such a send fails, its datagrams are sent one by one
    /// and `Sent::gso_refused` tells the caller to stop coalescing on this socket.
    pub fn send(&mut self, fd: RawFd, opts: SendOptions) -> Sent {
        let mut sent = Sent::default();
        let q = self.queue.len();
        for (j, &i) in self.queue.iter().enumerate() {
            // Truncated datagrams are not answered; if one were, only what was read goes back.
            let len = self.meta[i].len.min(self.slot_len);
            self.meta[i].len = len;
            let buf = &self.bufs[i * self.slot_len..i * self.slot_len + len];
            self.is_probe[j] = opts.twamp || (len >= REFLECTOR_LEN && ludp_payload::is_probe(buf));
            self.tx_iovs[j].iov_base = self.rx_iovs[i].iov_base;
            self.tx_iovs[j].iov_len = len;
        }
        // Groups of answers, one message each: [start, start + len) in queue order.
        let mut groups = 0;
        let mut j = 0;
        while j < q {
            let i = self.queue[j];
            let m = self.meta[i];
            let ipv4 = matches!(m.src, Some(IpAddr::V4(_)));
            let tos = self.tos_of(i, opts.reflect_tos);
            let local = if opts.pktinfo { m.control.local } else { None };
            let cap = if self.is_probe[j] {
                STAMP_GSO_CHUNK
            } else {
                GSO_MAX_SEGMENTS
            };
            let mut k = j + 1;
            if opts.gso && m.len <= GSO_MAX_LEN {
                while k < q && k - j < cap {
                    let n = self.meta[self.queue[k]];
                    let same = n.len == m.len
                        && self.is_probe[k] == self.is_probe[j]
                        && n.namelen == m.namelen
                        && same_name(&self.names[i], &self.names[self.queue[k]])
                        && self.tos_of(self.queue[k], opts.reflect_tos) == tos
                        && (!opts.pktinfo || n.control.local == m.control.local);
                    if !same {
                        break;
                    }
                    k += 1;
                }
            }
            let ctl = &mut self.tx_control[groups * TX_CONTROL..(groups + 1) * TX_CONTROL];
            let base_len = build_control(ctl, local, tos, ipv4);
            let clen = if k - j > 1 {
                // u16 segment size: every datagram of the group is m.len bytes.
                put_cmsg(
                    ctl,
                    base_len,
                    libc::SOL_UDP,
                    UDP_SEGMENT,
                    &(m.len as u16).to_ne_bytes(),
                )
            } else {
                base_len
            };
            self.groups[groups] = Group {
                start: j,
                len: k - j,
                probes: self.is_probe[j],
                base_control: base_len,
            };
            let h = &mut self.tx_msgs[groups].msg_hdr;
            h.msg_name = (&mut self.names[i] as *mut libc::sockaddr_in6).cast();
            h.msg_namelen = m.namelen;
            h.msg_iov = &mut self.tx_iovs[j];
            h.msg_iovlen = (k - j) as _;
            h.msg_controllen = clen as _;
            h.msg_control = if clen == 0 {
                std::ptr::null_mut()
            } else {
                ctl.as_mut_ptr().cast()
            };
            h.msg_flags = 0;
            groups += 1;
            j = k;
        }
        let mut g = 0;
        while g < groups {
            // Stamped answers leave in calls of one coalesced group or of at most STAMP_CHUNK
            // datagrams, each call stamped right before it is made; the others all in one call.
            let mut end = g + 1;
            if self.groups[g].probes {
                let mut n = self.groups[g].len;
                while end < groups
                    && self.groups[end].probes
                    && n + self.groups[end].len <= STAMP_CHUNK
                {
                    n += self.groups[end].len;
                    end += 1;
                }
                self.stamp(g, end, opts.synced, opts.twamp);
            } else {
                while end < groups && !self.groups[end].probes {
                    end += 1;
                }
            }
            // SAFETY: tx_msgs[g..end] point at live buffers of the stated lengths.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.tx_msgs.as_mut_ptr().add(g),
                    (end - g) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r < 0 {
                let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if errno == libc::EINTR {
                    continue;
                }
                if self.groups[g].len > 1 {
                    sent.gso_refused = true;
                    self.send_one_by_one(fd, g, &mut sent);
                } else {
                    // The answer could not be sent: drop it, go on.
                    sent.failed += 1;
                    sent.last_error = Some(errno);
                }
                g += 1;
                continue;
            }
            for group in &self.groups[g..g + r as usize] {
                sent.reflected += group.len as u64;
                if group.probes {
                    sent.stamped += group.len as u64;
                }
            }
            g += r as usize;
        }
        self.queue.clear();
        sent
    }

    /// Writes the stamps into the ludp payloads of groups `g..end`, or T3 into their TWAMP
    /// replies, with one clock reading.
    fn stamp(&mut self, g: usize, end: usize, synced: bool, twamp: bool) {
        let tx_ns = wall_ns();
        for group in &self.groups[g..end] {
            for j in group.start..group.start + group.len {
                if !self.is_probe[j] {
                    continue;
                }
                let i = self.queue[j];
                let m = self.meta[i];
                let rx_ns = m.control.rx_ns.unwrap_or(tx_ns);
                let buf = &mut self.bufs[i * self.slot_len..i * self.slot_len + m.len];
                if twamp {
                    if self.sealed[i] {
                        continue;
                    }
                    // T3 never before T2, should the wall clock step back in between.
                    let t3 = Timestamp::from_unix_ns(tx_ns.max(rx_ns), Format::Ntp);
                    twamp::set_transmit_timestamp(buf, t3);
                    continue;
                }
                let stamps = ReflectorStamps {
                    rx_ns,
                    // A wall clock stepped back between the two readings would give a
                    // negative hold time: clamp it to zero instead.
                    tx_ns: tx_ns.max(rx_ns),
                    tos: m.control.tos.unwrap_or(0),
                    synced,
                    counts: self.counts[i],
                };
                ludp_payload::stamp(buf, &stamps);
            }
        }
    }

    /// Sends the datagrams of coalesced group `g` one message each (its send was refused).
    fn send_one_by_one(&mut self, fd: RawFd, g: usize, sent: &mut Sent) {
        let group = self.groups[g];
        let mut h = self.tx_msgs[g].msg_hdr;
        // The same options without the segment size, which comes last.
        h.msg_controllen = group.base_control as _;
        if group.base_control == 0 {
            h.msg_control = std::ptr::null_mut();
        }
        h.msg_iovlen = 1;
        for j in group.start..group.start + group.len {
            h.msg_iov = &mut self.tx_iovs[j];
            // SAFETY: h points at live buffers of the stated lengths.
            let n = unsafe { libc::sendmsg(fd, &h, libc::MSG_DONTWAIT) };
            if n < 0 {
                sent.failed += 1;
                sent.last_error = io::Error::last_os_error().raw_os_error();
            } else {
                sent.reflected += 1;
                sent.stamped += u64::from(self.is_probe[j]);
            }
        }
    }
}

/// Whether two source addresses (as `recvmmsg` wrote them) are the same address and port.
fn same_name(a: &libc::sockaddr_in6, b: &libc::sockaddr_in6) -> bool {
    a.sin6_family == b.sin6_family
        && a.sin6_port == b.sin6_port
        && a.sin6_addr.s6_addr == b.sin6_addr.s6_addr
        && a.sin6_scope_id == b.sin6_scope_id
}

/// The wall clock, ns since the Unix epoch.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ludp_payload::ProbeRepr;
    use std::net::{Ipv6Addr, UdpSocket};
    use std::os::fd::AsRawFd;

    #[test]
    fn control_round_trips_through_the_encoder() {
        let mut buf = [0u8; TX_CONTROL];
        let n = build_control(&mut buf, Some(Local::V4([10, 0, 0, 2])), Some(0xb8), true);
        assert_eq!(n, 32 + 24, "in_pktinfo and an int, each with its header");
        let c = parse_control(&buf[..n]);
        assert_eq!(c.local, Some(Local::V4([10, 0, 0, 2])));
        // IP_TOS goes out as an int and comes in as one byte, which the decoder reads: on a
        // little-endian host the int's first byte is the value.
        if cfg!(target_endian = "little") {
            assert_eq!(c.tos, Some(0xb8));
        }
        let addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).octets();
        let n = build_control(&mut buf, Some(Local::V6(addr)), Some(0x28), false);
        assert_eq!(n, 40 + 24);
        let c = parse_control(&buf[..n]);
        assert_eq!((c.local, c.tos), (Some(Local::V6(addr)), Some(0x28)));
        let multicast = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets();
        assert_eq!(
            build_control(&mut buf, Some(Local::V6(multicast)), None, false),
            0
        );
    }

    #[test]
    fn ttl_and_hop_limit_are_read() {
        let mut buf = [0u8; TX_CONTROL];
        let n = put_cmsg(
            &mut buf,
            0,
            libc::IPPROTO_IP,
            libc::IP_TTL,
            &63i32.to_ne_bytes(),
        );
        assert_eq!(parse_control(&buf[..n]).ttl, Some(63));
        let n = put_cmsg(
            &mut buf,
            0,
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        );
        let n = put_cmsg(
            &mut buf,
            n,
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            &[0x28, 0, 0, 0],
        );
        let c = parse_control(&buf[..n]);
        assert_eq!((c.ttl, c.tos), (Some(255), Some(0x28)));
        // Out of range: not a TTL.
        let n = put_cmsg(
            &mut buf,
            0,
            libc::IPPROTO_IP,
            libc::IP_TTL,
            &300i32.to_ne_bytes(),
        );
        assert_eq!(parse_control(&buf[..n]).ttl, None);
    }

    #[test]
    fn fuzzer_finds_end_the_walk_or_read_as_no_stamp() {
        // A receive timestamp whose seconds overflow the nanoseconds (the cmsg target's find,
        // a panic in debug builds and a wrapped time in release ones): no stamp.
        let mut ts = Vec::new();
        ts.extend_from_slice(&(u64::MAX / 2).to_ne_bytes());
        ts.extend_from_slice(&5i64.to_ne_bytes());
        let mut buf = vec![0u8; 64];
        let n = put_cmsg(&mut buf, 0, libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &ts);
        assert_eq!(parse_control(&buf[..n]).rx_ns, None);
        // A length that makes `at + len` wrap: the walk ends.
        let mut buf = vec![0u8; 40];
        let n = put_cmsg(
            &mut buf,
            0,
            libc::IPPROTO_IP,
            libc::IP_TTL,
            &64i32.to_ne_bytes(),
        );
        buf[n..n + 8].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert_eq!(parse_control(&buf).ttl, Some(64));
    }

    #[test]
    fn lying_control_lengths_stop_the_decoder() {
        let mut buf = [0u8; 64];
        let n = build_control(&mut buf, None, Some(1), false);
        let mut bad = buf;
        bad[..8].copy_from_slice(&1000usize.to_ne_bytes());
        assert_eq!(parse_control(&bad[..n]), Control::default());
        bad[..8].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(parse_control(&bad[..n]), Control::default());
        assert_eq!(parse_control(&buf[..10]), Control::default());
        assert_eq!(parse_control(&[]), Control::default());
    }

    /// A real round trip on loopback: a batch in, answers out, stamped where they should be.
    #[test]
    fn echoes_a_batch_on_loopback() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        crate::net::socket::setsockopt_int(
            server.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            1,
        )
        .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let to = server.local_addr().unwrap();
        let mut probe = [0u8; 64];
        ProbeRepr {
            flow: 1,
            seq: 7,
            sent_ns: 1,
            cookie: 2,
            target: 0,
        }
        .emit(&mut probe);
        let datagrams: Vec<Vec<u8>> = vec![b"x".to_vec(), probe.to_vec(), vec![7u8; 200]];
        for d in &datagrams {
            client.send_to(d, to).unwrap();
        }
        let mut batch = Batch::new(100);
        let mut got = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut metas = Vec::new();
        while got < 3 && std::time::Instant::now() < deadline {
            match batch.recv(server.as_raw_fd()) {
                Ok(n) => {
                    for i in 0..n {
                        metas.push(batch.meta[i]);
                        if !batch.meta[i].truncated {
                            batch.answer(i);
                        }
                    }
                    got += n;
                    let sent = batch.send(
                        server.as_raw_fd(),
                        SendOptions {
                            pktinfo: false,
                            reflect_tos: false,
                            synced: true,
                            gso: true,
                            twamp: false,
                        },
                    );
                    assert_eq!(sent.failed, 0);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, 3);
        assert_eq!(
            metas
                .iter()
                .map(|m| (m.len, m.truncated))
                .collect::<Vec<_>>(),
            [(1, false), (64, false), (200, true)]
        );
        assert!(metas.iter().all(|m| m.control.rx_ns.is_some()));
        let mut buf = [0u8; 300];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"x");
        let (n, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(n, 64);
        let (repr, stamps) = ProbeRepr::parse(&buf[..n]).unwrap();
        assert_eq!(repr.seq, 7);
        let stamps = stamps.expect("stamped");
        assert!(stamps.rx_ns <= stamps.tx_ns && stamps.synced);
        assert_eq!(&buf[52..64], &probe[52..64], "padding untouched");
    }
}
