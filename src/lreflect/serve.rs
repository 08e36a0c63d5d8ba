//! The reflector's work on each datagram: the checks that answer or drop it, the TWAMP
//! sequence numbers and ludp flow counts, and the batch sends; and the session bookkeeping
//! the `stats` records report.
#![forbid(unsafe_code)]

use super::acl::Acl;
use super::args::Args;
use super::batch::{self, Batch, SendOptions};
use super::control::{Granted, TestKey};
use super::limit::{Gcra, Limits, Refusal, SourceTable};
use super::listener::{Kind, Listener};
use super::loops::LoopGuard;
use super::session::{self, SessionKey, SessionTable};
use super::stats::{Malformed, Reason, SessionEvents};
use super::TOOL;
use crate::clock::ClockState;
use crate::wire::stamp_tlv;
use crate::wire::twamp::STAMP_LEN;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

/// Datagrams handled per socket before the loop looks at signals, timers and the other
/// sockets again, so a flood on one socket starves nothing.
const BATCHES_PER_TURN: usize = 16;

/// The loop guard of each listener kind.
struct LoopGuards {
    echo: LoopGuard,
    twamp: LoopGuard,
}

impl LoopGuards {
    /// Off with `--no-loop-guard`; else echo sockets refuse the well-known reflecting ports
    /// and every port lreflect listens on, TWAMP sockets its echo ports.
    fn new(listeners: &[Listener], off: bool) -> LoopGuards {
        if off {
            return LoopGuards {
                echo: LoopGuard::off(),
                twamp: LoopGuard::off(),
            };
        }
        let ports = |kind: Kind| {
            listeners
                .iter()
                .filter(move |l| l.kind == kind)
                .map(|l| l.local.port())
        };
        LoopGuards {
            echo: LoopGuard::echo(ports(Kind::Echo).chain(ports(Kind::Twamp))),
            twamp: LoopGuard::twamp(ports(Kind::Echo)),
        }
    }

    fn of(&self, kind: Kind) -> &LoopGuard {
        match kind {
            Kind::Echo => &self.echo,
            Kind::Twamp => &self.twamp,
        }
    }
}

/// Everything the loop needs besides the sockets.
pub(super) struct Reflector {
    acl: Acl,
    /// The loop guards of echo and of TWAMP sockets.
    loop_guards: LoopGuards,
    limits: Limits,
    batch: Batch,
    reflect_tos: bool,
    synced: bool,
    /// The host clock's Error Estimate, as TWAMP replies carry it.
    error: u16,
    /// TWAMP sessions (none with `--stateless`, or without TWAMP sockets).
    sessions: Option<SessionTable>,
    /// The counts of ludp flows on echo sockets (none without echo sockets).
    flows: Option<SessionTable>,
    /// Session (TWAMP socket) or flow (echo socket) events per listening socket since its last
    /// `stats` record.
    events: Vec<SessionEvents>,
    start: Instant,
    /// TWAMP-Control's granted sessions: their test packets are noted (for REFWAIT).
    pub(super) granted: Granted,
    /// Last send error reported on stderr, so a persistent one is said once, not per packet.
    reported_send_error: Option<i32>,
}

impl Reflector {
    /// The reflector `args` ask for, serving `listeners`.
    pub(super) fn new(args: &Args, listeners: &[Listener]) -> Reflector {
        let per_source = (args.rate_limit > 0.0).then(|| {
            SourceTable::new(
                Gcra::new(args.rate_limit, args.burst),
                args.sources as usize,
            )
        });
        let global = (args.max_pps > 0.0)
            .then(|| Gcra::new(args.max_pps, ((args.max_pps / 10.0) as u64).max(1)));
        let timeout_ns = (!args.session_timeout.is_zero())
            .then(|| u64::try_from(args.session_timeout.as_nanos()).unwrap_or(u64::MAX));
        let sessions = (!args.stateless && listeners.iter().any(|l| l.is_twamp()))
            .then(|| SessionTable::new(args.sessions as usize, timeout_ns));
        // Flows are never idle: only a new flow in a full set ends one.
        let flows = listeners
            .iter()
            .any(|l| l.kind == Kind::Echo)
            .then(|| SessionTable::new(args.flows as usize, None));
        let mut reflector = Reflector {
            acl: Acl::new(args.allow.clone()),
            loop_guards: LoopGuards::new(listeners, args.no_loop_guard),
            limits: Limits::new(per_source, global),
            batch: Batch::new(args.max_size as usize),
            reflect_tos: args.reflect_tos,
            synced: false,
            error: 0,
            sessions,
            flows,
            events: vec![SessionEvents::default(); listeners.len()],
            start: Instant::now(),
            reported_send_error: None,
            granted: Granted::new(),
        };
        reflector.read_clock();
        reflector
    }

    /// Monotonic ns since the start.
    pub(super) fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Reads the clock's sync state and error again.
    pub(super) fn read_clock(&mut self) {
        let c = ClockState::read();
        self.synced = c.synced;
        self.error = c.error_estimate().encode();
    }

    /// The session (or flow) of received datagram `i` on listener `l`, from `src`.
    fn session_key(&self, l: &Listener, i: usize, src: IpAddr, ssid: u16) -> SessionKey {
        let local = match self.batch.meta[i].control.local {
            Some(batch::Local::V4(a)) => IpAddr::from(a),
            Some(batch::Local::V6(a)) => IpAddr::from(a),
            None => l.local.ip(),
        };
        SessionKey::new(src, self.batch.source_port(i), local, l.local.port(), ssid)
    }

    /// Counts the session events of one table update under their listeners.
    fn note(&mut self, idx: usize, up: &session::Update) {
        if up.started {
            self.events[idx].started += 1;
        }
        if let Some(k) = up.expired {
            self.events[usize::from(k)].expired += 1;
        }
        if let Some(k) = up.evicted {
            self.events[usize::from(k)].evicted += 1;
        }
    }

    /// The session of TWAMP request `i` (from `src`): its key, with the SSID of a STAMP
    /// request (a shorter, TWAMP-Light one has none).
    fn twamp_key(&self, l: &Listener, i: usize, src: IpAddr) -> SessionKey {
        let request = self.batch.payload(i);
        let ssid = if request.len() >= crate::wire::twamp::STAMP_LEN {
            u16::from_be_bytes([request[14], request[15]])
        } else {
            0
        };
        self.session_key(l, i, src, ssid)
    }

    /// The sequence number of the reply to TWAMP request `i` on listener `idx`: the sender's
    /// own (stateless), or its session's next; and the session's packets received (this one
    /// included) and answered (before this one), for a Direct Measurement TLV (none when
    /// stateless).
    fn twamp_seq(
        &mut self,
        l: &Listener,
        idx: usize,
        i: usize,
        src: IpAddr,
        now_ns: u64,
    ) -> (u32, Option<(u32, u32)>) {
        if self.sessions.is_none() {
            let request = self.batch.payload(i);
            let seq = u32::from_be_bytes([request[0], request[1], request[2], request[3]]);
            return (seq, None);
        }
        let key = self.twamp_key(l, i, src);
        let Some(table) = self.sessions.as_mut() else {
            return (0, None);
        };
        let up = table.next(&key, idx as u16, now_ns);
        self.note(idx, &up);
        // R_RxC counts this request, R_TxC the answers sent before this one's (as stamp-suite
        // counts them): this answer is not yet transmitted when they are written.
        let received = up.seq.wrapping_add(up.refused).wrapping_add(1);
        (up.seq, Some((received, up.seq)))
    }

    /// Counts TWAMP request `i` on listener `l`, refused by our limits, in its session (if it
    /// has one already).
    fn refuse_twamp(&mut self, l: &Listener, i: usize, now_ns: u64) {
        let Some(src) = self.batch.meta[i].src else {
            return;
        };
        let key = self.twamp_key(l, i, src);
        if let Some(table) = self.sessions.as_mut() {
            table.refuse(&key, now_ns);
        }
    }

    /// Processes the STAMP TLVs of the reply built in slot `i` (RFC 8972), and gives the
    /// answer the DSCP a Class of Service TLV asks for.
    fn reflect_tlvs(&mut self, l: &Listener, i: usize, src: IpAddr, counters: Option<(u32, u32)>) {
        let m = self.batch.meta[i];
        let local = match m.control.local {
            Some(batch::Local::V4(a)) => IpAddr::from(a),
            Some(batch::Local::V6(a)) => IpAddr::from(a),
            None => l.local.ip(),
        };
        let info = stamp_tlv::ReflectorInfo {
            tos: m.control.tos,
            counters,
            sync: if self.synced {
                stamp_tlv::sync::NTP
            } else {
                stamp_tlv::sync::LOCAL
            },
            // T2 from the kernel's software stamp, T3 read in user space: both software.
            method_in: stamp_tlv::method::SW_LOCAL,
            method_out: stamp_tlv::method::SW_LOCAL,
            src: SocketAddr::new(src, self.batch.source_port(i)),
            dst: SocketAddr::new(local, l.local.port()),
        };
        let tlvs = &mut self.batch.payload_mut(i)[STAMP_LEN..];
        let done = stamp_tlv::reflect(tlvs, &info);
        if let Some(dscp) = done.dscp {
            // The ECN bits stay those of an answer without the TLV (Not-ECT).
            self.batch.set_answer_tos(i, dscp << 2);
        }
    }

    /// Counts ludp probe `i` on echo listener `idx` in its flow, answered or `refused`; an
    /// answered one gets the flow's counts stamped in.
    fn count_flow(&mut self, l: &Listener, idx: usize, i: usize, now_ns: u64, refused: bool) {
        let Some(src) = self.batch.meta[i].src else {
            return;
        };
        if self.flows.is_none() || !crate::wire::ludp_payload::is_countable(self.batch.payload(i)) {
            return;
        }
        let key = self.session_key(l, i, src, 0);
        let Some(table) = self.flows.as_mut() else {
            return;
        };
        let (up, counts) = table.count(&key, idx as u16, now_ns, refused);
        self.note(idx, &up);
        if !refused {
            self.batch.set_counts(i, counts);
        }
    }

    /// Notes a test packet of a granted TWAMP-Control session (for REFWAIT); whether there is
    /// such a session.
    fn note_test_packet(&mut self, l: &Listener, i: usize, src: IpAddr, now_ns: u64) -> bool {
        let key = TestKey::new(src, self.batch.source_port(i), l.local.port());
        match self.granted.get_mut(&key) {
            Some(w) => {
                w.seen_ns = now_ns;
                true
            }
            None => false,
        }
    }

    /// Answers keyed TWAMP request `i` of test 5-tuple `key` on listener `idx`: opened with
    /// the keys of the 5-tuple's session it verifies under, numbered in its session (SSID
    /// 0: a keyed packet has none), sealed, in that session's DSCP. A request no session's
    /// keys verify is malformed.
    fn answer_keyed(
        &mut self,
        l: &Listener,
        idx: usize,
        i: usize,
        src: IpAddr,
        key: TestKey,
        now_ns: u64,
    ) -> Result<(), Reason> {
        let request = self.batch.payload(i);
        let found = self.granted.get(&key).and_then(|w| {
            w.sessions.iter().find_map(|s| {
                let keys = s.keys.as_ref()?;
                let (seq, _, _) = keys.open_sender(request).ok()?;
                Some((keys.clone(), s.dscp, seq))
            })
        });
        let Some((keys, dscp, sender_seq)) = found else {
            return Err(Reason::Malformed(Malformed::Hmac));
        };
        let session = self.session_key(l, i, src, 0);
        let seq = match self.sessions.as_mut() {
            None => sender_seq,
            Some(table) => {
                let up = table.next(&session, idx as u16, now_ns);
                self.note(idx, &up);
                up.seq
            }
        };
        if !self.batch.reflect_keyed(i, seq, self.error, &keys) {
            // The slot is too small for a keyed reply (--max-size under 112).
            return Err(Reason::Malformed(Malformed::TooLong));
        }
        self.batch.set_answer_tos(i, dscp << 2);
        Ok(())
    }

    /// Whether received datagram `i` on `l` is answered (its source) or why not, checked in
    /// the order the module's documentation gives.
    fn verdict(&mut self, l: &Listener, i: usize, now_ns: u64) -> Result<IpAddr, Reason> {
        let m = self.batch.meta[i];
        match m.src {
            None => Err(Reason::Malformed(Malformed::Other)),
            Some(src) if !self.acl.allows(src) => Err(Reason::Acl),
            Some(_)
                if self
                    .loop_guards
                    .of(l.kind)
                    .refuses(self.batch.source_port(i)) =>
            {
                Err(Reason::Loop)
            }
            Some(_) if m.len == 0 => Err(Reason::Malformed(Malformed::Empty)),
            Some(_) if m.truncated => Err(Reason::Malformed(Malformed::TooLong)),
            Some(_) if l.is_twamp() && m.len < crate::wire::twamp::SENDER_MIN_LEN => {
                Err(Reason::Malformed(Malformed::Short))
            }
            Some(src) if l.controlled && !self.note_test_packet(l, i, src, now_ns) => {
                Err(Reason::NoSession)
            }
            Some(src) => self
                .limits
                .admit(src, now_ns)
                .map(|()| src)
                .map_err(|r| match r {
                    Refusal::RateLimit => Reason::RateLimit,
                    Refusal::GlobalCap => Reason::GlobalCap,
                }),
        }
    }

    /// Reads and answers datagrams on `l` (listener `idx`) for one turn; returns whether it
    /// may have more.
    pub(super) fn serve(&mut self, l: &mut Listener, idx: usize) -> bool {
        let fd: RawFd = l.sock.as_raw_fd();
        for _ in 0..BATCHES_PER_TURN {
            let n = match self.batch.recv(fd) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("{TOOL}: receive on {} failed: {e}", l.listen);
                    return false;
                }
            };
            let now_ns = self.now_ns();
            l.stats.window.received += n as u64;
            for i in 0..n {
                let verdict = self.verdict(l, i, now_ns);
                match verdict {
                    Ok(src) if l.is_twamp() => {
                        // A TWAMP-Control session's packet: its answer's DSCP, whether keyed.
                        let mut dscp = None;
                        if l.controlled || !self.granted.is_empty() {
                            // (A --twamp socket that is also a test port: sessions are noted,
                            // every sender answered.)
                            self.note_test_packet(l, i, src, now_ns);
                            let key = TestKey::new(src, self.batch.source_port(i), l.local.port());
                            if let Some(w) = self.granted.get(&key) {
                                if w.keyed() {
                                    match self.answer_keyed(l, idx, i, src, key, now_ns) {
                                        Ok(()) => self.batch.answer(i),
                                        Err(why) => l.stats.window.drop(why),
                                    }
                                    continue;
                                }
                                dscp = w.dscp(self.batch.meta[i].control.tos);
                            }
                        }
                        let (seq, counters) = self.twamp_seq(l, idx, i, src, now_ns);
                        if self.batch.reflect_twamp(i, seq, self.error) {
                            if let Some(d) = dscp {
                                // RFC 5357 4.2.1: the answer in the session's own class (a
                                // Class of Service TLV below may ask for another).
                                self.batch.set_answer_tos(i, d << 2);
                            }
                            if self.batch.meta[i].len > STAMP_LEN {
                                self.reflect_tlvs(l, i, src, counters);
                            }
                            self.batch.answer(i);
                        } else {
                            // Cannot happen: length and truncation were checked above.
                            l.stats.window.drop(Reason::Malformed(Malformed::Other));
                        }
                    }
                    Ok(_) => {
                        self.count_flow(l, idx, i, now_ns, false);
                        self.batch.answer(i);
                    }
                    Err(why) => {
                        if matches!(why, Reason::RateLimit | Reason::GlobalCap) {
                            // Refused by our own limits: the flow's counts (echo) or the
                            // session's Direct Measurement counters (TWAMP) say so.
                            if l.is_twamp() {
                                self.refuse_twamp(l, i, now_ns);
                            } else {
                                self.count_flow(l, idx, i, now_ns, true);
                            }
                        }
                        l.stats.window.drop(why)
                    }
                }
            }
            let w = &mut l.stats.window;
            let sent = self.batch.send(
                fd,
                SendOptions {
                    pktinfo: l.wildcard,
                    reflect_tos: self.reflect_tos,
                    synced: self.synced,
                    gso: l.gso,
                    twamp: l.kind == Kind::Twamp,
                },
            );
            if sent.gso_refused {
                l.gso = false;
            }
            w.reflected += sent.reflected;
            w.stamped += sent.stamped;
            w.dropped.send_error += sent.failed;
            if sent.last_error.is_some() && sent.last_error != self.reported_send_error {
                let e = io::Error::from_raw_os_error(sent.last_error.unwrap_or(0));
                eprintln!("{TOOL}: cannot answer on {}: {e}", l.listen);
                self.reported_send_error = sent.last_error;
            }
            if n < batch::BATCH {
                // A short batch emptied the queue; a datagram arriving later raises a new
                // readiness event.
                return false;
            }
        }
        true
    }

    /// Ends idle sessions and moves the session and flow events into each listener's open
    /// window; returns the sessions (TWAMP sockets) or flows (echo sockets) alive per listener
    /// (`None` without either table).
    pub(super) fn settle_sessions(&mut self, listeners: &mut [Listener]) -> Option<Vec<u64>> {
        let now_ns = self.now_ns();
        let mut active = vec![0u64; listeners.len()];
        if self.sessions.is_none() && self.flows.is_none() {
            return None;
        }
        let events = &mut self.events;
        for table in [self.sessions.as_mut(), self.flows.as_mut()]
            .into_iter()
            .flatten()
        {
            table.sweep(now_ns, &mut active, |k| {
                if let Some(e) = events.get_mut(usize::from(k)) {
                    e.expired += 1;
                }
            });
        }
        for (l, e) in listeners.iter_mut().zip(self.events.iter_mut()) {
            let s = &mut l.stats.window.sessions;
            s.started += e.started;
            s.expired += e.expired;
            s.evicted += e.evicted;
            *e = SessionEvents::default();
        }
        Some(active)
    }
}
