//! rtnetlink over a plain `NETLINK_ROUTE` socket: an `RTM_GETLINK` dump returns every
//! interface with its flags, state and `IFLA_STATS64` counters; an `RTM_GETSTATS` dump only the
//! counters, at a fraction of the kernel's cost; [`LinkEvents`] says when a link changed.
//!
//! Hand-written rather than through neli or netlink-packet-route: lopa needs two requests and
//! a handful of attributes, which is less code than either crate's API and adds no dependency.
//! The decoding is in [`parse`] (pure, unit-tested); this module only does the I/O.
#![forbid(unsafe_code)]

pub mod neigh;
pub mod nexthop;
pub mod parse;
pub mod rt;
pub mod rule;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self as nixsock, sockopt, AddressFamily, MsgFlags, NetlinkAddr};
use nix::sys::socket::{SockFlag, SockProtocol, SockType};
use parse::{
    getlink_dump_request, getstats_dump_request, parse_dump, parse_stats_dump, Counters, Error,
    Link, Progress,
};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long a dump may take before it is given up (a healthy one takes milliseconds).
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a dump the kernel keeps flagging as interrupted by concurrent changes is retried.
/// A large table read while a script flaps it can be interrupted dozens of times in a row;
/// the churn almost always pauses within this, and a signal waits at most this long.
const DUMP_RETRY_BUDGET: Duration = Duration::from_secs(10);

/// The longest pause between two attempts at an interrupted dump (the pauses double from
/// 1 ms): long enough to let a burst of changes pass, short enough not to matter to a user.
const DUMP_RETRY_MAX_PAUSE: Duration = Duration::from_millis(100);

/// A non-blocking rtnetlink socket. Waits for data happen in `poll(2)` with a deadline, so a
/// dump never blocks forever and signals are handled once it returns.
pub struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    /// Dumps the kernel flagged `NLM_F_DUMP_INTR` (each then retried), since the socket
    /// was opened.
    pub interrupted: u64,
    /// Called after the third datagram of each dump attempt that none ended (a test hook: it
    /// may stop the process so a change can interrupt the dump, whose next datagram the kernel
    /// has already filled; a few links take two datagrams and the end).
    pub mid_dump: Option<fn()>,
}

/// A non-blocking, close-on-exec `NETLINK_ROUTE` socket.
fn open_route_socket() -> Result<OwnedFd> {
    nixsock::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        SockProtocol::NetlinkRoute,
    )
    .map_err(io::Error::from)
    .context("cannot open a netlink socket")
}

impl RouteSocket {
    pub fn open() -> Result<RouteSocket> {
        let fd = open_route_socket()?;
        Ok(RouteSocket {
            fd,
            seq: 0,
            interrupted: 0,
            mid_dump: None,
            // Dump datagrams are at most 32 KiB unless one message is larger; the buffer
            // grows when the kernel reports a truncated datagram.
            buf: vec![0; 64 * 1024],
        })
    }

    /// Every interface of the namespace, from one consistent dump.
    pub fn dump_links(&mut self, links: &mut Vec<Link>) -> Result<()> {
        self.consistent_dump("interface", getlink_dump_request, |buf, seq, restart| {
            if restart {
                links.clear();
            }
            parse_dump(buf, seq, links)
        })
    }

    /// The 64-bit counters of every interface, by ifindex (`RTM_GETSTATS`).
    pub fn dump_stats(&mut self, stats: &mut Vec<(u32, Counters)>) -> Result<()> {
        self.consistent_dump("counter", getstats_dump_request, |buf, seq, restart| {
            if restart {
                stats.clear();
            }
            parse_stats_dump(buf, seq, stats)
        })
    }

    /// Every message of one consistent dump made by `request`, as `(type, payload)`.
    pub fn dump_raw(
        &mut self,
        request: fn(u32) -> Vec<u8>,
        out: &mut Vec<(u16, Vec<u8>)>,
    ) -> Result<()> {
        self.consistent_dump("netlink", request, |buf, seq, restart| {
            if restart {
                out.clear();
            }
            parse::walk(buf, seq, |kind, payload| {
                out.push((kind, payload.to_vec()));
                Ok(())
            })
        })
    }

    /// Runs the dump made by `request` until one attempt is neither interrupted nor
    /// truncated, pausing between attempts, for up to [`DUMP_RETRY_BUDGET`]. `parse` gets
    /// each datagram, with `restart` set on the first of an attempt (drop what it kept).
    fn consistent_dump(
        &mut self,
        what: &str,
        request: fn(u32) -> Vec<u8>,
        mut parse: impl FnMut(&[u8], u32, bool) -> Result<Progress, Error>,
    ) -> Result<()> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut restart = true;
            let consistent = self.try_dump(request, |buf, seq| {
                let first = std::mem::take(&mut restart);
                parse(buf, seq, first)
            })?;
            if consistent {
                return Ok(());
            }
            if started.elapsed() + pause > DUMP_RETRY_BUDGET {
                bail!(
                    "the {what} dump kept changing while it was read ({attempts} attempts in {:.1} s)",
                    started.elapsed().as_secs_f64()
                )
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(DUMP_RETRY_MAX_PAUSE);
        }
    }

    /// One dump; `false` when it must be retried (interrupted or truncated).
    fn try_dump(
        &mut self,
        request: fn(u32) -> Vec<u8>,
        mut parse: impl FnMut(&[u8], u32) -> Result<Progress, Error>,
    ) -> Result<bool> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(self.seq);
        // An unbound netlink socket sends to the kernel.
        nixsock::send(self.fd.as_raw_fd(), &req, MsgFlags::empty())
            .map_err(io::Error::from)
            .context("cannot send a netlink dump request")?;
        let deadline = Instant::now() + DUMP_TIMEOUT;
        let mut interrupted = false;
        let mut truncated = false;
        let mut partial = 0;
        loop {
            let n = match recv_trunc(&self.fd, &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait(&self.fd, deadline)?;
                    continue;
                }
                Err(e) => return Err(e).context("cannot read a netlink dump"),
            };
            if n > self.buf.len() {
                // Read the rest of this dump away, then retry it with a buffer that fits.
                self.buf.resize(n, 0);
                truncated = true;
                continue;
            }
            let progress = parse(&self.buf[..n], self.seq).context("bad netlink dump")?;
            interrupted |= progress.interrupted;
            if progress.done {
                self.interrupted += u64::from(interrupted);
                return Ok(!interrupted && !truncated);
            }
            partial += 1;
            if partial == 3 {
                if let Some(hook) = self.mid_dump {
                    hook();
                }
            }
        }
    }
}

/// Link change notifications (`RTNLGRP_LINK`: new, deleted, renamed, carrier, admin state,
/// MTU…). Only whether something changed matters: the caller then re-reads the truth with a
/// dump, so an overflowed queue (`ENOBUFS`) is just another "changed".
pub struct LinkEvents {
    sub: Subscription,
}

impl LinkEvents {
    /// Subscribes; do it before the first dump, so no change falls between the two.
    pub fn subscribe() -> Result<LinkEvents> {
        const RTNLGRP_LINK: u32 = 1;
        Ok(LinkEvents {
            sub: Subscription::open(&[RTNLGRP_LINK], 256 * 1024)
                .context("cannot subscribe to link changes")?,
        })
    }

    /// Drains the queue: whether any link changed since the last call.
    pub fn changed(&mut self) -> Result<bool> {
        let mut changed = false;
        loop {
            match self.sub.recv()? {
                Received::Empty => return Ok(changed),
                Received::Datagram(_) | Received::Lost => changed = true,
            }
        }
    }
}

/// What one read of a [`Subscription`] gave.
pub enum Received<'a> {
    /// One datagram of notifications.
    Datagram(&'a [u8]),
    /// Nothing queued.
    Empty,
    /// Notifications were lost (`ENOBUFS`, or a datagram larger than the buffer): the
    /// caller must re-read the state it follows.
    Lost,
}

/// A non-blocking socket subscribed to rtnetlink multicast groups, for a mio loop: every
/// notification is handed over, and a lost one is reported, never hidden.
pub struct Subscription {
    fd: OwnedFd,
    buf: Vec<u8>,
    /// The receive buffer the kernel granted, in bytes.
    pub rcvbuf: usize,
}

impl Subscription {
    /// Joins `groups` (`RTNLGRP_*` numbers) with a receive buffer of `rcvbuf` bytes, forced
    /// past `rmem_max` where the process may (`SO_RCVBUFFORCE`, CAP_NET_ADMIN). Subscribe
    /// before dumping, so no change falls between the dump and the first notification.
    pub fn open(groups: &[u32], rcvbuf: usize) -> Result<Subscription> {
        let fd = open_route_socket()?;
        let size = rcvbuf.min(i32::MAX as usize / 2);
        if nixsock::setsockopt(&fd, sockopt::RcvBufForce, &size).is_err() {
            nixsock::setsockopt(&fd, sockopt::RcvBuf, &size)
                .map_err(io::Error::from)
                .context("cannot set the netlink receive buffer")?;
        }
        // Bound with no legacy groups: the groups are joined one by one below.
        nixsock::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(io::Error::from)
            .context("cannot bind a netlink socket")?;
        for &g in groups {
            // nix has no option for NETLINK_ADD_MEMBERSHIP.
            crate::net::socket::setsockopt_int(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_ADD_MEMBERSHIP,
                g as i32,
            )
            .with_context(|| format!("cannot join rtnetlink group {g}"))?;
        }
        let got = nixsock::getsockopt(&fd, sockopt::RcvBuf).unwrap_or(0);
        Ok(Subscription {
            fd,
            buf: vec![0; 64 * 1024],
            rcvbuf: got,
        })
    }

    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads one datagram without blocking.
    pub fn recv(&mut self) -> Result<Received<'_>> {
        match recv_trunc(&self.fd, &mut self.buf) {
            Ok(n) if n > self.buf.len() => {
                self.buf.resize(n, 0);
                Ok(Received::Lost)
            }
            Ok(n) => Ok(Received::Datagram(&self.buf[..n])),
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) => Ok(Received::Empty),
                Some(libc::ENOBUFS) => Ok(Received::Lost),
                _ => Err(e).context("cannot read netlink notifications"),
            },
        }
    }
}

/// One datagram into `buf`, without blocking, retrying on EINTR. With MSG_TRUNC the result
/// is the datagram's real length, so a datagram longer than `buf` shows (and was cut).
fn recv_trunc(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nixsock::recv(fd.as_raw_fd(), buf, MsgFlags::MSG_TRUNC) {
            Err(Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

fn wait(fd: &OwnedFd, deadline: Instant) -> Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        bail!("the kernel did not finish a netlink dump within {DUMP_TIMEOUT:?}");
    }
    let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    match nix::poll::poll(&mut [PollFd::new(fd.as_fd(), PollFlags::POLLIN)], timeout) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(io::Error::from(e)).context("poll on the netlink socket failed"),
    }
}
