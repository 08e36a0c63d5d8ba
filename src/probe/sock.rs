//! A probe socket: sends with a kernel transmit stamp keyed to the probe, and drains its error
//! queue (transmit stamps, ICMP errors) before its datagrams. Every datagram prober uses it.
#![forbid(unsafe_code)]

use super::{ProbeEvent, ProbeId, SendStamp};
use crate::net::cmsg::SO_EE_ORIGIN_TIMESTAMPING;
use crate::net::socket::{self, enable_tx_timestamps};
use crate::net::{recv_msg, Received};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use socket2::Socket;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

/// Sends remembered for matching their kernel transmit stamps, by key modulo this.
const TX_RING: usize = 4096;

pub struct ProbeSocket {
    pub sock: Socket,
    /// The error queue carries ICMP errors (`IP_RECVERR` is on).
    recv_errors: bool,
    /// Kernel transmit stamps are on (and the kernel takes per-send keys).
    tx_stamps: bool,
    /// The key of the next send's stamp.
    tx_key: u32,
    /// The probe each recent key belongs to.
    tx_ring: Vec<Option<(u32, ProbeId)>>,
    /// The kernel's drop count (`SO_RXQ_OVFL`) the latest datagram came with.
    drops_seen: u32,
}

impl ProbeSocket {
    /// Wraps a non-blocking socket and asks for kernel transmit stamps where the kernel has
    /// them. `recv_errors`: `IP_RECVERR` / `IPV6_RECVERR` is on.
    pub fn new(sock: Socket, recv_errors: bool) -> ProbeSocket {
        let tx_stamps = enable_tx_timestamps(&sock).is_ok();
        // Without it the drops still show in `dropped`, through SO_MEMINFO.
        let _ = socket::enable_drop_count(&sock);
        ProbeSocket {
            sock,
            recv_errors,
            tx_stamps,
            tx_key: 0,
            tx_ring: vec![None; if tx_stamps { TX_RING } else { 0 }],
            drops_seen: 0,
        }
    }

    /// Datagrams the kernel dropped on this socket since it opened, its receive queue full:
    /// the count the latest datagram came with, or the kernel's count now when that is higher
    /// (drops after the last datagram queued).
    pub fn dropped(&self) -> u64 {
        let now = socket::dropped_so_far(&self.sock).unwrap_or(0);
        u64::from(self.drops_seen.max(now))
    }

    pub fn register(&self, registry: &mio::Registry, token: Token) -> io::Result<()> {
        let fd = self.sock.as_raw_fd();
        registry.register(&mut SourceFd(&fd), token, Interest::READABLE)
    }

    /// Sends probe `id`; the stamp is read right before the send call, and the kernel's
    /// transmit stamp, when it comes, arrives as a [`ProbeEvent::Sent`] from [`ProbeSocket::drain`].
    pub fn send(
        &mut self,
        packet: &[u8],
        to: SocketAddr,
        id: ProbeId,
        tos: Option<u8>,
    ) -> io::Result<SendStamp> {
        let key = self.tx_key;
        let mut stamp = SendStamp::now();
        let mut sent = socket::send_msg(&self.sock, packet, to, self.tx_stamps.then_some(key), tos);
        if self.tx_stamps && matches!(&sent, Err(e) if e.raw_os_error() == Some(libc::EINVAL)) {
            // A kernel before 6.13 takes no per-send keys: do without kernel transmit stamps.
            self.tx_stamps = false;
            stamp = SendStamp::now();
            sent = socket::send_msg(&self.sock, packet, to, None, tos);
        }
        sent?;
        if self.tx_stamps {
            self.tx_ring[key as usize % TX_RING] = Some((key, id));
            self.tx_key = key.wrapping_add(1);
        }
        Ok(stamp)
    }

    /// Reads everything waiting: the error queue first (it holds the transmit stamps the
    /// replies are measured from), then the datagrams. Transmit stamps become `Sent` events;
    /// other error-queue entries go to `on_error`, datagrams to `on_datagram` with the
    /// monotonic time they were read. A datagram larger than `buf` is counted as malformed.
    pub fn drain(
        &mut self,
        buf: &mut [u8],
        events: &mut Vec<ProbeEvent>,
        mut on_error: impl FnMut(&[u8], &Received, &mut Vec<ProbeEvent>),
        mut on_datagram: impl FnMut(&[u8], &Received, Instant, &mut Vec<ProbeEvent>),
    ) {
        let fd = self.sock.as_raw_fd();
        for errqueue in [true, false] {
            if errqueue && !self.recv_errors && !self.tx_stamps {
                continue;
            }
            loop {
                match recv_msg(fd, buf, errqueue) {
                    Ok(rx) => {
                        let rx_mono = Instant::now();
                        let data = &buf[..rx.len.min(buf.len())];
                        if let Some(drops) = rx.anc.drops {
                            self.drops_seen = self.drops_seen.max(drops);
                        }
                        if rx.truncated && !errqueue {
                            events.push(ProbeEvent::Malformed(crate::wire::Error::Truncated));
                        } else if errqueue {
                            if !self.tx_stamp(&rx, events) {
                                on_error(data, &rx, events);
                            }
                        } else {
                            on_datagram(data, &rx, rx_mono, events);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // WouldBlock ends the pass; any other error (e.g. a pending ICMP error
                    // reported on the normal queue) is read from the error queue.
                    Err(_) => break,
                }
            }
        }
    }

    /// A transmit stamp from the error queue, matched to its probe by key.
    fn tx_stamp(&self, rx: &Received, events: &mut Vec<ProbeEvent>) -> bool {
        let Some(err) = rx.anc.error else {
            return false;
        };
        if err.origin != SO_EE_ORIGIN_TIMESTAMPING {
            return false;
        }
        let entry = self
            .tx_ring
            .get(err.data as usize % TX_RING)
            .copied()
            .flatten();
        if let (Some((key, id)), Some(tx_wall)) = (entry, rx.anc.timestamping) {
            if key == err.data {
                events.push(ProbeEvent::Sent { id, tx_wall });
            }
        }
        true
    }
}
