//! rtnetlink over a plain `NETLINK_ROUTE` socket: one `RTM_GETLINK` dump returns every
//! interface with its flags, state and `IFLA_STATS64` counters.
//!
//! Hand-written rather than through neli or netlink-packet-route: lopa needs one request and
//! six attributes, which is less code than either crate's API and adds no dependency. The
//! decoding is in [`parse`] (pure, unit-tested); this module only does the I/O.

pub mod parse;

use anyhow::{bail, Context, Result};
use parse::{getlink_dump_request, parse_dump, Link};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long a dump may take before it is given up (a healthy one takes milliseconds).
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);

/// Dumps retried when the kernel flags them as interrupted by a concurrent change.
const DUMP_ATTEMPTS: usize = 5;

/// A non-blocking rtnetlink socket. Waits for data happen in `poll(2)` with a deadline, so a
/// dump never blocks forever and signals are handled once it returns.
pub struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl RouteSocket {
    pub fn open() -> Result<RouteSocket> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("cannot open a netlink socket");
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RouteSocket {
            fd,
            seq: 0,
            // Dump datagrams are at most 32 KiB unless one message is larger; the buffer
            // grows when the kernel reports a truncated datagram.
            buf: vec![0; 64 * 1024],
        })
    }

    /// Every interface of the namespace, from one consistent dump.
    pub fn dump_links(&mut self, links: &mut Vec<Link>) -> Result<()> {
        for _ in 0..DUMP_ATTEMPTS {
            links.clear();
            if self.try_dump(links)? {
                return Ok(());
            }
        }
        bail!("the interface dump kept changing while it was read ({DUMP_ATTEMPTS} attempts)")
    }

    /// One dump; `false` when it must be retried (interrupted or truncated).
    fn try_dump(&mut self, links: &mut Vec<Link>) -> Result<bool> {
        self.seq = self.seq.wrapping_add(1);
        let req = getlink_dump_request(self.seq);
        // SAFETY: req is a valid buffer of req.len() bytes; an unbound netlink socket sends
        // to the kernel.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error()).context("cannot send the netlink dump request");
        }
        let deadline = Instant::now() + DUMP_TIMEOUT;
        let mut interrupted = false;
        let mut truncated = false;
        loop {
            // MSG_TRUNC: the return value is the datagram's real length, so a short buffer shows.
            // SAFETY: buf is valid for buf.len() bytes.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => {
                        self.wait(deadline)?;
                        continue;
                    }
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(err).context("cannot read the netlink dump"),
                }
            }
            let n = n as usize;
            if n > self.buf.len() {
                // Read the rest of this dump away, then retry it with a buffer that fits.
                self.buf.resize(n, 0);
                truncated = true;
                continue;
            }
            let progress =
                parse_dump(&self.buf[..n], self.seq, links).context("bad netlink dump")?;
            interrupted |= progress.interrupted;
            if progress.done {
                return Ok(!interrupted && !truncated);
            }
        }
    }

    fn wait(&self, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("the kernel did not finish the interface dump within {DUMP_TIMEOUT:?}");
        }
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: pfd is one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err).context("poll on the netlink socket failed");
            }
        }
        Ok(())
    }
}
