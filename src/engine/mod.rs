//! The event loop every probing tool shares: one mio `Poll`, non-blocking sockets, timers in
//! user space (a deadline heap whose nearest deadline is the poll timeout), signals through
//! signal-hook-mio. The loop only moves things: what is due comes from the [`schedule`], what
//! the prober finds goes into the [`ledger`], and the record bodies the ledger gives go to the
//! writer. The loop never formats output itself.
#![forbid(unsafe_code)]

mod ledger;
mod measure;
mod schedule;
mod target;

pub use ledger::{Entry, Launch, Ledger};
pub use measure::{net_of_hold, one_way, rtt};
pub use schedule::next_period;

use crate::alert::Thresholds;
use crate::output::RecordWriter;
use crate::probe::trace::Tracer;
use crate::probe::{ProbeEvent, ProbeId, ProbeLookup, Prober, SendStamp, SocketDrops, StreamTotal};
use crate::record::{Body, Record};
use crate::target::Target;
use anyhow::{Context, Result};
use mio::{Events, Poll, Token};
use schedule::{Schedule, Timer, PACE_SLACK};
use signal_hook_mio::v1_0::Signals;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

/// How a run goes: its length, pace and what it reports.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub tool: &'static str,
    /// Probes per target; `None` with no duration: until a signal.
    pub count: Option<u64>,
    /// No probe is sent after this long.
    pub duration: Option<Duration>,
    /// Between two probes to one target.
    pub interval: Duration,
    /// Probes per second over all targets and flows (`--rate`): the schedule never sends
    /// faster, so the answers never come faster than the host takes them in.
    pub rate: f64,
    /// How long a probe waits for its answer.
    pub timeout: Duration,
    /// Period of the windowed `summary` records (and of alert evaluation).
    pub summary_every: Option<Duration>,
    pub thresholds: Thresholds,
    /// Summaries and alerts only.
    pub quiet: bool,
}

/// Longest duration any flag takes: a year, far beyond any useful probe schedule, and small
/// enough that deadline arithmetic never overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Default period of windowed summaries in continuous runs.
pub const DEFAULT_SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Every target answered at least one probe.
    pub all_answered: bool,
    /// Datagrams that could not be decoded.
    pub malformed: u64,
    /// Ended by SIGINT, SIGTERM or SIGHUP.
    pub interrupted: bool,
    /// Every stream of every target.
    pub streams: Vec<StreamTotal>,
    /// Probes not sent because the previous probe of their flow was still in flight (see
    /// [`Prober::flow_busy`]); counted neither sent nor lost.
    pub skipped_busy: u64,
    /// Probes the reflectors refused (lreflect's rate limit), over every target.
    pub refused: u64,
    /// The prober's sockets on which the kernel dropped datagrams (receive queue full), with
    /// the run's counts.
    pub dropped_local: Vec<SocketDrops>,
}

impl RunConfig {
    /// Sets the period of the windowed summaries from `--summary-every` as given: 0 turns
    /// windows off, and none given means [`DEFAULT_SUMMARY_EVERY`] in continuous runs and
    /// with alerts (which judge windows, so they refuse a run without them).
    pub fn with_summary_every(mut self, asked: Option<Duration>) -> Result<RunConfig> {
        let continuous = self.count.is_none() && self.duration.is_none();
        self.summary_every = match asked {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None if continuous || self.thresholds.any() => Some(DEFAULT_SUMMARY_EVERY),
            None => None,
        };
        if self.thresholds.any() && self.summary_every.is_none() {
            anyhow::bail!(
                "--alert-loss and --alert-rtt judge summary windows: --summary-every 0 turns them off"
            );
        }
        Ok(self)
    }

    /// The time between two probes to one target for `targets` targets: `-i`, or longer when
    /// `-i` per target would send faster than `--rate` overall (each target sends one probe
    /// per interval, whatever its flows).
    pub fn paced_interval(&self, targets: usize) -> Duration {
        self.interval.max(self.once_over(targets))
    }

    /// How long one probe to each of `targets` targets takes at `--rate`.
    pub fn once_over(&self, targets: usize) -> Duration {
        Duration::try_from_secs_f64(targets as f64 / self.rate)
            .unwrap_or(MAX_DURATION)
            .min(MAX_DURATION)
    }
}

/// The run: its configuration, the ledger, the schedule and the writer.
pub struct Engine<'w, W: Write> {
    cfg: RunConfig,
    ledger: Ledger,
    schedule: Schedule,
    out: &'w mut RecordWriter<W>,
    /// Record bodies the ledger gave, to write.
    entries: Vec<Entry>,
    /// Events a prober found, for the ledger.
    found: Vec<ProbeEvent>,
    stopping: bool,
    /// `-w`: no probe is sent after this.
    stop_at: Option<Instant>,
    /// A trace round is due (since then): no probe leaves until the probes in flight settled
    /// and the round ran.
    retrace_due: Option<Instant>,
}

const SIGNAL_TOKEN: Token = Token(0);
const FIRST_SOCKET_TOKEN: usize = 1;

impl<'w, W: Write> Engine<'w, W> {
    pub fn new(cfg: RunConfig, targets: Vec<Target>, out: &'w mut RecordWriter<W>) -> Self {
        let window_name = cfg
            .summary_every
            .map(|d| humantime::format_duration(d).to_string())
            .unwrap_or_default();
        let interval = cfg.paced_interval(targets.len());
        let schedule = Schedule::new(cfg.rate, interval, targets.len(), Instant::now());
        let ledger = Ledger::new(targets, cfg.quiet, cfg.thresholds, window_name);
        Engine {
            cfg,
            ledger,
            schedule,
            out,
            entries: Vec::new(),
            found: Vec::new(),
            stopping: false,
            stop_at: None,
            retrace_due: None,
        }
    }

    /// Writes the record bodies the ledger gave.
    fn write_entries(&mut self) -> std::io::Result<()> {
        for e in self.entries.drain(..) {
            self.out.write(&Record {
                tool: self.cfg.tool,
                ts: e.ts,
                tags: self.ledger.target(e.target).tags.clone(),
                body: e.body,
            })?;
        }
        Ok(())
    }

    /// Hands what a prober found to the ledger, and writes the records it gives.
    fn take_found(&mut self) -> std::io::Result<()> {
        for e in self.found.drain(..) {
            self.ledger.on_event(e, &mut self.entries);
        }
        self.write_entries()
    }

    /// Runs until every target sent its count (or the duration ran out, or a signal came)
    /// and every probe is settled; then writes the final summaries.
    pub fn run<P: Tracer>(mut self, prober: &mut P) -> Result<Outcome> {
        let mut poll = Poll::new().context("cannot create the event loop")?;
        let mut signals = Signals::new(crate::signals::end_signals())
            .context("cannot install signal handlers")?;
        poll.registry()
            .register(&mut signals, SIGNAL_TOKEN, mio::Interest::READABLE)?;
        let sockets = prober
            .register(poll.registry(), FIRST_SOCKET_TOKEN)
            .context("cannot register sockets")?;

        let streams = prober.streams().max(1);
        for t in 0..self.ledger.len() {
            let target = self.ledger.target(t);
            let of_stream = (0..streams)
                .map(|k| (prober.flow(target, t, k), prober.source(target, t, k)))
                .collect();
            self.ledger.set_streams(t, of_stream);
        }
        // Spread the first probes of many targets evenly over one interval, or over the run
        // when it is shorter, but never faster than the rate: every target is probed at least
        // once (its first probe leaves even after -w).
        let start = Instant::now();
        let interval = self.schedule.interval();
        let spread = self
            .cfg
            .duration
            .map_or(interval, |d| d.min(interval))
            .max(self.cfg.once_over(self.ledger.len()));
        self.schedule.start(start, spread);
        self.stop_at = self.cfg.duration.map(|d| start + d);
        if let Some(at) = self.stop_at {
            // The run ends at the duration (once the probes in flight settle), not at the
            // next probe's due time after it.
            self.schedule.push(at, Timer::Stop);
        }
        if let Some(every) = self.cfg.summary_every {
            self.schedule.push(start + every, Timer::Window);
        }
        if let Some(every) = prober.retrace_every() {
            self.schedule.push(start + every, Timer::Retrace);
        }

        let mut events = Events::with_capacity(256);
        let mut interrupted = false;
        let mut signals_seen = 0;
        loop {
            let now = Instant::now();
            while let Some((at, timer)) = self.schedule.pop_due(now) {
                self.fire(timer, at, prober)?;
            }
            if self.retrace_due.is_some() && self.ledger.pending_probes() == 0 && !self.stopping {
                self.retrace(prober)?;
                continue;
            }
            if self.ledger.finished() {
                break;
            }
            let timeout = (self.schedule.next_deadline())
                .map(|at| at.saturating_duration_since(Instant::now()));
            match poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("poll failed"),
            }
            for ev in events.iter() {
                let token = ev.token().0;
                if ev.token() == SIGNAL_TOKEN {
                    for _ in signals.pending() {
                        signals_seen += 1;
                        interrupted = true;
                    }
                } else if (FIRST_SOCKET_TOKEN..FIRST_SOCKET_TOKEN + sockets).contains(&token) {
                    prober.drain(token - FIRST_SOCKET_TOKEN, &self.ledger, &mut self.found);
                    self.take_found()?;
                }
            }
            if signals_seen == 1 && !self.stopping {
                // First signal: stop sending, let outstanding probes settle.
                self.stop_sending();
            } else if signals_seen > 1 {
                // Second signal: settle everything now.
                self.expire_all()?;
                break;
            }
        }

        let drops = prober.dropped_local();
        self.entries = self.ledger.final_summaries(&drops);
        self.write_entries()?;
        self.out.end_window()?;
        Ok(Outcome {
            all_answered: self.ledger.all_answered(),
            malformed: self.ledger.malformed(),
            skipped_busy: self.ledger.skipped_busy(),
            refused: self.ledger.refused(),
            interrupted,
            streams: self.ledger.stream_totals(),
            dropped_local: drops.into_iter().filter(|d| d.count > 0).collect(),
        })
    }

    /// Runs the prober's trace round (no probe is in flight), writes its records, and moves
    /// every target's send schedule later by the pause, so no probe is sent in a burst to
    /// catch up.
    fn retrace<P: Tracer>(&mut self, prober: &mut P) -> Result<()> {
        let Some(paused_at) = self.retrace_due.take() else {
            return Ok(());
        };
        let totals = self.ledger.stream_totals();
        for (t, path) in prober.retrace(&totals)? {
            if t < self.ledger.len() {
                self.entries.push(Entry {
                    target: t,
                    ts: SystemTime::now(),
                    body: Body::Path(path),
                });
            }
        }
        self.write_entries()?;
        let now = Instant::now();
        let pause = now.saturating_duration_since(paused_at);
        let ledger = &self.ledger;
        self.schedule
            .shift(pause, now, |t| ledger.next_probe(t).map(|id| id.seq));
        if let Some(every) = prober.retrace_every() {
            if self.ledger.sending_targets() > 0 {
                self.schedule.push(now + every, Timer::Retrace);
            }
        }
        Ok(())
    }

    fn stop_sending(&mut self) {
        self.stopping = true;
        self.ledger.stop_all();
    }

    fn fire<P: Prober>(&mut self, timer: Timer, at: Instant, prober: &mut P) -> Result<()> {
        match timer {
            // A send takes the next slot the rate allows; a delayed one that the loop reached
            // late takes a new slot rather than leave with the others that came due meanwhile.
            // A send the rate delayed moves its target's later sends by as much, so the target
            // is never probed sooner than -i after it.
            Timer::Send(t) | Timer::Paced(t, _) => {
                let now = Instant::now();
                let (due, on_time) = match timer {
                    Timer::Paced(_, due) => (due, now <= at + PACE_SLACK),
                    _ => (at, false),
                };
                match self.schedule.take_slot(now, on_time) {
                    None => {
                        if due < at {
                            self.schedule.delay(t, now.saturating_duration_since(due));
                        }
                        self.send(t, due, prober)?
                    }
                    Some(slot) => self.schedule.push(slot, Timer::Paced(t, due)),
                }
            }
            Timer::Expire(id) => {
                if self.ledger.expire(id, &mut self.entries) {
                    prober.expired(id);
                    self.write_entries()?;
                    prober.pending_events(&mut self.found);
                    self.take_found()?;
                }
            }
            Timer::Retrace => {
                if self.ledger.sending_targets() > 0 && !self.stopping {
                    self.retrace_due = Some(at);
                }
            }
            Timer::Stop => {
                if !self.stopping {
                    self.ledger.stop_after_first();
                }
            }
            Timer::Window => {
                let drops = prober.dropped_local();
                self.entries = self.ledger.close_window(&drops, SystemTime::now());
                self.write_entries()?;
                self.out.end_window()?;
                if let Some(every) = self.cfg.summary_every {
                    if !self.ledger.finished() {
                        let next = next_period(at, every, Instant::now());
                        self.schedule.push(next, Timer::Window);
                    }
                }
            }
        }
        Ok(())
    }

    /// Target `t`'s probe due at `due`: sent, or not (its flow busy, its stream done, the
    /// run paused for a trace round or past `-w`), and the target's next send scheduled.
    fn send<P: Prober>(&mut self, t: usize, due: Instant, prober: &mut P) -> Result<()> {
        if self.retrace_due.is_some() {
            // Paused for a trace round, which reschedules the send.
            return Ok(());
        }
        let Some(id) = self.ledger.next_probe(t) else {
            return Ok(());
        };
        if self.stop_at.is_some_and(|s| due >= s) && id.seq > 1 {
            self.ledger.stop(t);
            return Ok(());
        }
        if prober.flow_busy(id) {
            // An answer may be waiting unread: the flow is looked at before it is judged busy.
            prober.poll_flow(id, &self.ledger, &mut self.found);
            self.take_found()?;
        }
        let count = self.cfg.count;
        // With -c, a stream that sent its count sends no more (its seqs pass unsent).
        let done = self.ledger.stream_done(id, count);
        let busy = !done && prober.flow_busy(id);
        let launch = if busy || done {
            // The flow's previous probe keeps its whole timeout; this one does not leave, and
            // the other flows keep their pace.
            Launch::NotSent { busy }
        } else {
            match prober.send(self.ledger.target(t), id) {
                Ok(stamp) => {
                    self.schedule
                        .push(stamp.mono + self.cfg.timeout, Timer::Expire(id));
                    Launch::Sent(stamp)
                }
                Err(e) => Launch::Failed(e),
            }
        };
        let sending = self.ledger.launched(id, launch, count, &mut self.entries);
        self.write_entries()?;
        if sending {
            // Absolute deadlines: probe k is due at first_due + k × interval.
            self.schedule.next_send(t, id.seq, due);
        }
        Ok(())
    }

    /// Settles every pending probe as lost, now.
    fn expire_all(&mut self) -> Result<()> {
        self.stop_sending();
        for id in self.schedule.pending_expiries() {
            self.fire(Timer::Expire(id), Instant::now(), &mut NoProber)?;
        }
        Ok(())
    }
}

/// Stands in for the prober where a timer cannot send.
struct NoProber;

impl Prober for NoProber {
    fn register(&mut self, _: &mio::Registry, _: usize) -> std::io::Result<usize> {
        Ok(0)
    }
    fn send(&mut self, _: &Target, _: ProbeId) -> std::io::Result<SendStamp> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    fn drain(&mut self, _: usize, _: &dyn ProbeLookup, _: &mut Vec<ProbeEvent>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ReflectorTimes;
    use crate::record::{self, Flow};
    use std::net::IpAddr;

    #[test]
    fn next_period_is_the_first_deadline_after_now() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_period(t0, ms(10), t0), t0 + ms(10));
        assert_eq!(next_period(t0, ms(10), t0 + ms(9)), t0 + ms(10));
        // Exactly on a deadline: the one after it.
        assert_eq!(next_period(t0, ms(10), t0 + ms(10)), t0 + ms(20));
        assert_eq!(next_period(t0, ms(10), t0 + ms(35)), t0 + ms(40));
        // A stall of a million periods is one step, not a million.
        let far = t0 + Duration::from_secs(1000);
        assert_eq!(next_period(t0, ms(1), far), far + ms(1));
    }

    use crate::output::{Format, RecordWriter};
    use crate::probe::ProbeEvent;
    use serde_json::Value;
    use std::io::Read;

    /// What the fake network does with each probe, by sequence number.
    #[derive(Clone, Copy, PartialEq)]
    enum Fate {
        Reply,
        /// Answered twice.
        Dup,
        Drop,
        /// Answered by an ICMP error.
        Error,
        /// Answered only after the next probe's answer.
        Hold,
        /// Answered, and the kernel stamped the send 30 µs after the call.
        TxStamped,
        /// Lost; once timed out, the prober places it on the way there (its stream too).
        DropForward,
        /// Lost; once timed out, the prober places it on the way back, for the target only.
        DropReverseTargetOnly,
    }

    /// A prober whose "network" is a script; a pipe makes its answers pollable.
    struct FakeProber {
        fates: Vec<Fate>,
        wake_tx: mio::unix::pipe::Sender,
        wake_rx: mio::unix::pipe::Receiver,
        ready: Vec<ProbeEvent>,
        held: Vec<ProbeEvent>,
        sends: Vec<Instant>,
        /// The target of each send.
        sent_to: Vec<usize>,
        streams: usize,
        retrace_every: Option<Duration>,
        /// Each trace round: when it began and ended, and the probes sent before it.
        retraces: Vec<(Instant, Instant, u64)>,
        /// Events found after a timeout.
        pending: Vec<ProbeEvent>,
        /// Schedule numbers whose flow is busy: they are not sent.
        busy: Vec<u64>,
        /// Per socket (sport): its drop count grows by one with every probe sent from then on.
        drop_sockets: Vec<Option<u16>>,
        /// Probes sent so far, and when the drops began (in probes sent).
        drops_from: u64,
        /// The local address of each stream ([`Prober::source`]).
        sources: Vec<IpAddr>,
        /// Never set: the rounds are scripted ([`Tracer::retrace`] is the fake's own).
        followed: Option<crate::probe::trace::Followed>,
    }

    impl FakeProber {
        fn new(fates: &[Fate]) -> Self {
            let (wake_tx, wake_rx) = mio::unix::pipe::new().unwrap();
            FakeProber {
                fates: fates.to_vec(),
                wake_tx,
                wake_rx,
                ready: Vec::new(),
                held: Vec::new(),
                sends: Vec::new(),
                sent_to: Vec::new(),
                streams: 1,
                retrace_every: None,
                retraces: Vec::new(),
                pending: Vec::new(),
                busy: Vec::new(),
                drop_sockets: Vec::new(),
                drops_from: 0,
                sources: Vec::new(),
                followed: None,
            }
        }
    }

    impl Prober for FakeProber {
        fn streams(&self) -> usize {
            self.streams
        }

        fn flow(&self, _: &Target, _: usize, stream: usize) -> Option<Flow> {
            (self.streams > 1).then(|| Flow {
                sport: 40_000 + stream as u16,
                dport: 8081,
                dscp: None,
            })
        }

        fn flow_busy(&self, id: ProbeId) -> bool {
            self.busy.contains(&id.seq)
        }

        fn source(&self, _: &Target, _: usize, stream: usize) -> Option<IpAddr> {
            self.sources.get(stream).copied()
        }

        fn dropped_local(&self) -> Vec<SocketDrops> {
            let sent = self.sends.len() as u64;
            self.drop_sockets
                .iter()
                .map(|&sport| SocketDrops {
                    socket: format!("socket {sport:?}"),
                    count: sent.saturating_sub(self.drops_from),
                    family: crate::wire::Family::V4,
                    sport,
                })
                .collect()
        }

        fn register(&mut self, registry: &mio::Registry, first: usize) -> std::io::Result<usize> {
            registry.register(&mut self.wake_rx, Token(first), mio::Interest::READABLE)?;
            Ok(1)
        }

        fn send(&mut self, target: &Target, id: ProbeId) -> std::io::Result<SendStamp> {
            let stamp = SendStamp::now();
            self.sends.push(stamp.mono);
            self.sent_to.push(id.target);
            // The kernel stamp says 100 µs; user space read it 300 µs after the send.
            let reply = ProbeEvent::Reply {
                id,
                from: target.addr,
                rx_wall: Some(stamp.wall + Duration::from_micros(100 * id.seq)),
                rx_mono: stamp.mono + Duration::from_micros(300 * id.seq),
                ttl: Some(64),
                size: Some(64),
                tos: None,
                reflector: None,
                result: None,
                syn_retransmits: None,
            };
            match self.fates[(id.seq - 1) as usize] {
                Fate::Reply => {
                    self.ready.push(reply);
                    self.ready.append(&mut self.held);
                }
                Fate::Dup => {
                    self.ready.push(reply.clone());
                    self.ready.push(reply);
                }
                Fate::Hold => self.held.push(reply),
                Fate::TxStamped => {
                    self.ready.push(ProbeEvent::Sent {
                        id,
                        tx_wall: stamp.wall + Duration::from_micros(30),
                    });
                    self.ready.push(reply);
                }
                Fate::Drop | Fate::DropForward | Fate::DropReverseTargetOnly => {}
                Fate::Error => self.ready.push(ProbeEvent::Error {
                    id,
                    from: Some("10.0.1.254".parse().unwrap()),
                    icmp_type: Some(3),
                    icmp_code: Some(1),
                    reason: "host unreachable".into(),
                }),
            }
            if !self.ready.is_empty() {
                self.wake_tx.write_all(&[1])?;
            }
            Ok(stamp)
        }

        fn expired(&mut self, id: ProbeId) {
            let (forward, reverse, one_stream) = match self.fates[(id.seq - 1) as usize] {
                Fate::DropForward => (1, 0, true),
                Fate::DropReverseTargetOnly => (0, 1, false),
                _ => return,
            };
            self.pending
                .push(ProbeEvent::Placed(crate::probe::LossPlacement {
                    id,
                    forward,
                    reverse,
                    refused: None,
                    one_stream,
                }));
        }

        fn pending_events(&mut self, events: &mut Vec<ProbeEvent>) {
            events.append(&mut self.pending);
        }

        fn drain(&mut self, _: usize, _: &dyn ProbeLookup, events: &mut Vec<ProbeEvent>) {
            let mut buf = [0u8; 64];
            while matches!(self.wake_rx.read(&mut buf), Ok(n) if n > 0) {}
            events.append(&mut self.ready);
        }
    }

    impl Tracer for FakeProber {
        fn trace_flows(
            &mut self,
            _: &[Target],
            _: &crate::probe::trace::TraceConfig,
        ) -> Result<Vec<crate::probe::trace::TracedFlow>> {
            Ok(Vec::new())
        }

        fn followed(&mut self) -> &mut Option<crate::probe::trace::Followed> {
            &mut self.followed
        }

        fn retrace_every(&mut self) -> Option<Duration> {
            self.retrace_every
        }

        fn retrace(&mut self, totals: &[StreamTotal]) -> Result<Vec<(usize, record::Path)>> {
            let begin = Instant::now();
            // A trace round takes a while, during which nothing may be sent.
            std::thread::sleep(Duration::from_millis(30));
            let sent = totals.iter().map(|s| s.sent).sum();
            self.retraces.push((begin, Instant::now(), sent));
            let path = record::Path {
                src: "10.0.0.1".parse().unwrap(),
                dst: "10.0.0.2".parse().unwrap(),
                proto: "udp".into(),
                sport: 40_000,
                dport: 8081,
                hops: Vec::new(),
                reached: true,
                sent: Some(sent),
                lost: Some(0),
                lost_fwd: None,
                lost_rev: None,
            };
            Ok(vec![(0, path)])
        }
    }

    fn config(count: u64, interval_ms: u64, timeout_ms: u64) -> RunConfig {
        RunConfig {
            tool: "test",
            count: Some(count),
            duration: None,
            interval: Duration::from_millis(interval_ms),
            rate: 2000.0,
            timeout: Duration::from_millis(timeout_ms),
            summary_every: None,
            thresholds: Thresholds::default(),
            quiet: false,
        }
    }

    fn run(cfg: RunConfig, fates: &[Fate]) -> (Outcome, Vec<Value>) {
        run_with(cfg, &mut FakeProber::new(fates))
    }

    /// One fake target probed through `prober`; the outcome and the records written.
    fn run_with(cfg: RunConfig, prober: &mut FakeProber) -> (Outcome, Vec<Value>) {
        run_targets(cfg, prober, 1)
    }

    /// `n` fake targets (10.0.0.2 upwards) probed through `prober`.
    fn run_targets(cfg: RunConfig, prober: &mut FakeProber, n: u8) -> (Outcome, Vec<Value>) {
        let targets = (0..n)
            .map(|i| Target {
                name: "fake".into(),
                addr: IpAddr::from([10, 0, 0, 2 + i]),
                scope_id: 0,
                port: 0,
                tags: None,
            })
            .collect();
        let mut out = RecordWriter::new(Vec::new(), Format::Json);
        let outcome = Engine::new(cfg, targets, &mut out).run(prober).unwrap();
        let text = String::from_utf8(out.into_inner()).unwrap();
        let records = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (outcome, records)
    }

    fn kinds(records: &[Value]) -> Vec<String> {
        records
            .iter()
            .map(|r| {
                format!(
                    "{}{}",
                    r["type"].as_str().unwrap(),
                    r["seq"].as_u64().map(|s| s.to_string()).unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn every_fate_is_settled_and_counted() {
        use Fate::*;
        let (outcome, records) = run(config(6, 10, 100), &[Reply, Hold, Reply, Dup, Drop, Error]);
        assert_eq!(
            kinds(&records),
            [
                "reply1",
                "reply3",
                "reply2",
                "reply4",
                "reply4",
                "unreachable6",
                "timeout5",
                "summary"
            ]
        );
        assert_eq!(records[4]["dup"], true);
        assert_eq!(
            records[0]["rtt_ms"], 0.1,
            "kernel stamp wins over the later read"
        );
        assert_eq!(records[5]["from"], "10.0.1.254");
        let total = &records[7];
        assert_eq!(
            (total["sent"].as_u64(), total["received"].as_u64()),
            (Some(6), Some(4))
        );
        assert_eq!(
            (total["dup"].as_u64(), total["reordered"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(total["unreachable"].as_u64(), Some(1));
        assert_eq!(total["window"], "total");
        assert!(outcome.all_answered);
    }

    /// Every probe record carries its stream's source address; the target's summary carries
    /// one only when all its streams share it.
    #[test]
    fn records_carry_the_source_of_their_stream() {
        use Fate::*;
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.11".parse().unwrap();
        for (sources, total_src) in [(vec![a, a, a], Some(a)), (vec![a, a, b], None)] {
            let mut prober = FakeProber::new(&[Reply, Drop, Error, Reply, Reply, Drop]);
            prober.streams = 3;
            prober.sources = sources.clone();
            let (_, records) = run_with(config(2, 5, 20), &mut prober);
            let kinds: Vec<&str> = records.iter().filter_map(|r| r["type"].as_str()).collect();
            for kind in ["reply", "timeout", "unreachable", "summary"] {
                assert!(kinds.contains(&kind), "{kinds:?}");
            }
            for r in &records {
                let src = r["src"].as_str().map(|s| s.parse::<IpAddr>().unwrap());
                let expected = match r["flow"]["sport"].as_u64() {
                    Some(sport) => Some(sources[sport as usize - 40_000]),
                    None => total_src,
                };
                assert_eq!(src, expected, "{r}");
            }
        }
    }

    #[test]
    fn flows_are_probed_round_robin_with_a_summary_each() {
        use Fate::*;
        // Three flows, two probes each; the second flow loses everything.
        let mut prober = FakeProber::new(&[Reply, Drop, Reply, Reply, Drop, Reply]);
        prober.streams = 3;
        let (_, records) = run_with(config(2, 5, 20), &mut prober);
        let mut sports: Vec<(u64, u64)> = records
            .iter()
            .filter(|r| r["type"] == "reply" || r["type"] == "timeout")
            .map(|r| {
                (
                    r["seq"].as_u64().unwrap(),
                    r["flow"]["sport"].as_u64().unwrap(),
                )
            })
            .collect();
        sports.sort();
        let expected = [
            (1, 40_000),
            (2, 40_001),
            (3, 40_002),
            (4, 40_000),
            (5, 40_001),
            (6, 40_002),
        ];
        assert_eq!(sports, expected, "{records:?}");
        let summaries: Vec<(Option<u64>, u64, u64)> = records
            .iter()
            .filter(|r| r["type"] == "summary")
            .map(|r| {
                (
                    r["flow"]["sport"].as_u64(),
                    r["sent"].as_u64().unwrap(),
                    r["received"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summaries,
            [
                (Some(40_000), 2, 2),
                (Some(40_001), 2, 0),
                (Some(40_002), 2, 2),
                (None, 6, 4)
            ]
        );
    }

    /// Probes not sent for a busy flow take no sequence number: records count the probes that
    /// left, from 1 and without gaps, and each flow still sends its count.
    #[test]
    fn sequence_numbers_skip_no_probe_not_sent() {
        let mut prober = FakeProber::new(&[Fate::Reply; 12]);
        prober.streams = 2;
        // The second flow is busy at its first two turns (schedule numbers 2 and 4): the first
        // flow's three probes are 1-3, the second's 4-6.
        prober.busy = vec![2, 4];
        let (outcome, records) = run_with(config(3, 5, 50), &mut prober);
        let mut seqs: Vec<(u64, u64)> = records
            .iter()
            .filter(|r| r["type"] == "reply")
            .map(|r| {
                (
                    r["seq"].as_u64().unwrap(),
                    r["flow"]["sport"].as_u64().unwrap(),
                )
            })
            .collect();
        seqs.sort();
        assert_eq!(
            seqs,
            [
                (1, 40_000),
                (2, 40_000),
                (3, 40_000),
                (4, 40_001),
                (5, 40_001),
                (6, 40_001)
            ],
            "{records:?}"
        );
        assert_eq!(outcome.skipped_busy, 2);
        let total = records.last().unwrap();
        assert_eq!(
            (total["sent"].as_u64(), total["received"].as_u64()),
            (Some(6), Some(6))
        );
    }

    /// A socket's drops land in the summaries of the answers it receives: its flow's and its
    /// targets', per window (what the window added) and in total.
    #[test]
    fn drops_on_this_host_reach_the_summaries_of_their_socket() {
        let mut prober = FakeProber::new(&[Fate::Reply; 40]);
        prober.streams = 2;
        // Each flow's socket drops one datagram per probe sent after the 14th (due at 65 ms:
        // after the first window closed).
        prober.drop_sockets = vec![Some(40_000), Some(40_001)];
        prober.drops_from = 14;
        let mut cfg = config(20, 5, 50);
        cfg.summary_every = Some(Duration::from_millis(60));
        cfg.quiet = true;
        let (outcome, records) = run_with(cfg, &mut prober);
        let drops = |r: &Value| r["dropped_local"].as_u64().unwrap_or(0);
        let of = |window: &str, sport: Option<u64>| -> Vec<u64> {
            records
                .iter()
                .filter(|r| r["window"] == window && r["flow"]["sport"].as_u64() == sport)
                .map(drops)
                .collect()
        };
        // 26 probes after the 14th, so 26 drops on each socket: each flow's summary has its
        // socket's, the target's has both.
        assert_eq!(of("total", None), [52], "{records:?}");
        assert_eq!(of("total", Some(40_000)), [26]);
        assert_eq!(of("total", Some(40_001)), [26]);
        let windows = of("60ms", None);
        assert!(windows.len() >= 3, "{records:?}");
        assert_eq!(
            windows[0], 0,
            "no drop yet in the first window: {records:?}"
        );
        assert!(windows[1] > 0, "{records:?}");
        // Windows say what each added: together, no more than the run's.
        assert!(windows.iter().sum::<u64>() <= 52);
        let flows: u64 = of("60ms", Some(40_000)).iter().sum::<u64>()
            + of("60ms", Some(40_001)).iter().sum::<u64>();
        assert_eq!(flows, windows.iter().sum::<u64>());
        assert_eq!(
            outcome
                .dropped_local
                .iter()
                .map(|d| d.count)
                .collect::<Vec<_>>(),
            [26, 26]
        );
    }

    #[test]
    fn placed_loss_reaches_the_target_and_its_streams() {
        use Fate::*;
        // Two streams: probes 1 and 3 in the first, 2 and 4 in the second.
        let mut prober = FakeProber::new(&[Reply, DropForward, Reply, DropReverseTargetOnly]);
        prober.streams = 2;
        let (_, records) = run_with(config(2, 5, 20), &mut prober);
        let placed: Vec<(Option<u64>, Option<u64>, Option<u64>)> = records
            .iter()
            .filter(|r| r["type"] == "summary")
            .map(|r| {
                (
                    r["flow"]["sport"].as_u64(),
                    r["lost_fwd"].as_u64(),
                    r["lost_rev"].as_u64(),
                )
            })
            .collect();
        assert_eq!(
            placed,
            [
                (Some(40_000), None, None),
                (Some(40_001), Some(1), Some(0)),
                (None, Some(1), Some(1))
            ],
            "{records:?}"
        );
    }

    #[test]
    fn twamp_rtt_is_net_of_the_reflector_hold_time() {
        let rx = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let times = |hold_us: i64| ReflectorTimes {
            rx,
            tx: if hold_us >= 0 {
                rx + Duration::from_micros(hold_us as u64)
            } else {
                rx - Duration::from_micros(hold_us.unsigned_abs())
            },
            tos: None,
            synced: false,
            refused: None,
            seq: Some(0),
            ttl: None,
            net_of_hold: true,
            tlv: None,
        };
        let rtt = Duration::from_micros(500);
        assert_eq!(net_of_hold(rtt, &times(120)), Duration::from_micros(380));
        assert_eq!(net_of_hold(rtt, &times(500)), Duration::ZERO);
        // A hold time the RTT cannot contain, or a negative one: a reflector clock step.
        assert_eq!(net_of_hold(rtt, &times(501)), rtt);
        assert_eq!(net_of_hold(rtt, &times(-3)), rtt);
    }

    #[test]
    fn kernel_transmit_stamp_starts_the_clock() {
        let (_, records) = run(config(2, 5, 100), &[Fate::TxStamped, Fate::TxStamped]);
        // Receive stamped at send + 100 µs × seq; transmit stamped at send + 30 µs.
        assert_eq!(records[0]["rtt_ms"], 0.07);
        assert_eq!(records[1]["rtt_ms"], 0.17);
    }

    #[test]
    fn a_reply_after_its_timeout_is_late_not_received() {
        use Fate::*;
        let (outcome, records) = run(config(2, 60, 20), &[Hold, Reply]);
        assert_eq!(kinds(&records), ["timeout1", "reply2", "summary"]);
        let total = &records[2];
        assert_eq!(
            (total["received"].as_u64(), total["late"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(total["loss_pct"], 50.0);
        assert!(outcome.all_answered);
    }

    #[test]
    fn silence_is_exit_status_one_material() {
        let (outcome, records) = run(config(2, 5, 10), &[Fate::Drop, Fate::Drop]);
        assert_eq!(kinds(&records), ["timeout1", "timeout2", "summary"]);
        assert!(!outcome.all_answered);
        assert!(records[2].get("rtt_ms").is_none(), "no RTT without replies");
    }

    #[test]
    fn windows_write_summaries_and_alerts_fire_and_resolve() {
        use Fate::*;
        let mut cfg = config(40, 10, 5);
        cfg.summary_every = Some(Duration::from_millis(100));
        cfg.thresholds.loss_pct = Some(20.0);
        cfg.quiet = true;
        let mut fates = vec![Reply; 10];
        fates.extend([Drop; 10]);
        fates.extend([Reply; 20]);
        let mut prober = FakeProber::new(&fates);
        prober.sources = vec!["fd00::1".parse().unwrap()];
        let (_, records) = run_with(cfg, &mut prober);
        // Windows and alerts say whose measurement they are, like every probe record.
        assert!(records.iter().all(|r| r["src"] == "fd00::1"), "{records:?}");
        let windows: Vec<&Value> = records.iter().filter(|r| r["window"] == "100ms").collect();
        assert!(windows.len() >= 2, "{records:?}");
        assert!(
            records
                .iter()
                .all(|r| r["type"] != "reply" && r["type"] != "timeout"),
            "quiet"
        );
        let alerts: Vec<(&str, &str)> = records
            .iter()
            .filter(|r| r["type"] == "alert")
            .map(|r| (r["state"].as_str().unwrap(), r["metric"].as_str().unwrap()))
            .collect();
        assert_eq!(
            alerts,
            [("firing", "loss_pct"), ("resolved", "loss_pct")],
            "{records:?}"
        );
        let total = records.last().unwrap();
        assert_eq!(
            (total["sent"].as_u64(), total["received"].as_u64()),
            (Some(40), Some(30))
        );
    }

    /// A window in which no probe settled says nothing about loss: `loss_pct` is absent, not 0
    /// (a dead target probed every 350 ms with 100 ms windows would plot 100 %, 0 %, 0 %...).
    #[test]
    fn a_window_without_probes_has_no_loss_figure() {
        let mut cfg = config(3, 350, 50);
        cfg.summary_every = Some(Duration::from_millis(100));
        cfg.quiet = true;
        let (_, records) = run(cfg, &[Fate::Drop; 3]);
        let windows: Vec<&Value> = records.iter().filter(|r| r["window"] == "100ms").collect();
        let (empty, full): (Vec<&Value>, Vec<&Value>) =
            windows.iter().partition(|w| w["sent"] == 0);
        assert!(!empty.is_empty() && !full.is_empty(), "{windows:?}");
        assert!(
            empty.iter().all(|w| w.get("loss_pct").is_none()),
            "{empty:?}"
        );
        assert!(full.iter().all(|w| w["loss_pct"] == 100.0), "{full:?}");
    }

    #[test]
    fn sends_follow_absolute_deadlines() {
        let mut prober = FakeProber::new(&[Fate::Reply; 20]);
        run_with(config(20, 5, 100), &mut prober);
        let first = prober.sends[0];
        for (k, at) in prober.sends.iter().enumerate() {
            // Never early: probe k leaves at or after first + k × interval.
            assert!(
                at.duration_since(first) >= Duration::from_millis(5 * k as u64),
                "probe {k}"
            );
        }
    }

    /// 20 targets every 5 ms would be 4,000 probes/s: at --rate 500 each target is probed
    /// every 40 ms instead, and no two probes leave closer than the rate allows (give or take
    /// the loop's millisecond), however late the loop wakes.
    #[test]
    fn the_rate_stretches_the_schedule_and_never_bursts() {
        let mut cfg = config(3, 5, 100);
        cfg.rate = 500.0;
        assert_eq!(cfg.paced_interval(20), Duration::from_millis(40));
        assert_eq!(cfg.paced_interval(2), Duration::from_millis(5), "-i holds");
        let mut prober = FakeProber::new(&[Fate::Reply; 3]);
        let (outcome, records) = run_targets(cfg, &mut prober, 20);
        assert!(outcome.all_answered);
        assert_eq!(prober.sends.len(), 60, "{records:?}");
        let gap = Duration::from_millis(2);
        for m in [1, 5, 20] {
            for w in prober.sends.windows(m + 1) {
                assert!(
                    w[m].duration_since(w[0]) + 2 * PACE_SLACK >= gap * m as u32,
                    "{m} gaps in {:?}",
                    w[m].duration_since(w[0])
                );
            }
        }
        // Each target's probes keep the stretched interval (absolute deadlines).
        for t in 0..20 {
            let mine: Vec<Instant> = prober
                .sent_to
                .iter()
                .zip(&prober.sends)
                .filter(|(to, _)| **to == t)
                .map(|(_, at)| *at)
                .collect();
            assert_eq!(mine.len(), 3);
            // Two stretched intervals are 80 ms; a first send the loaded machine woke late for
            // shortens them (deadlines are absolute), but never to the unstretched 10 ms: at
            // least one stretched interval holds whatever the load (a CI run saw 50 ms).
            assert!(mine[2].duration_since(mine[0]) + 2 * PACE_SLACK >= Duration::from_millis(40));
        }
    }

    /// A trace round reschedules every target's next send, those the rate had delayed too: no
    /// target ends up with two sends in turn (its probes twice as often).
    #[test]
    fn trace_rounds_keep_one_send_per_target_at_the_rate() {
        let mut prober = FakeProber::new(&[Fate::Reply; 8]);
        prober.retrace_every = Some(Duration::from_millis(25));
        let mut cfg = config(8, 5, 50);
        // 10 targets every 5 ms would be 2,000/s: every 20 ms instead, slots 2 ms apart.
        cfg.rate = 500.0;
        let (_, records) = run_targets(cfg, &mut prober, 10);
        assert!(prober.retraces.len() >= 2, "{:?}", prober.retraces);
        for t in 0..10 {
            let mine: Vec<Instant> = prober
                .sent_to
                .iter()
                .zip(&prober.sends)
                .filter(|(to, _)| **to == t)
                .map(|(_, at)| *at)
                .collect();
            assert_eq!(mine.len(), 8, "{records:?}");
            // About the interval after the previous one (less a late wake-up of the loop),
            // also when the rate delayed that one: two sends in turn would be a slot (2 ms)
            // apart.
            for w in mine.windows(2) {
                let gap = w[1].duration_since(w[0]);
                assert!(gap >= Duration::from_millis(10), "{t}: {gap:?}");
            }
        }
    }

    #[test]
    fn trace_rounds_pause_probing_and_shift_the_schedule() {
        // Every fifth probe is lost, so a round must wait for it to time out.
        let fates: Vec<Fate> = (0..30)
            .map(|k| if k % 5 == 4 { Fate::Drop } else { Fate::Reply })
            .collect();
        let mut prober = FakeProber::new(&fates);
        prober.retrace_every = Some(Duration::from_millis(50));
        // Rounds wait up to a timeout (50 ms) for lost probes, ten intervals (5 ms): without
        // the shift of the schedule, about ten overdue probes would leave at once after each.
        let (_, records) = run_with(config(30, 5, 50), &mut prober);
        assert_eq!(prober.sends.len(), 30);
        assert!(prober.retraces.len() >= 2, "{:?}", prober.retraces);
        let paths: Vec<&Value> = records.iter().filter(|r| r["type"] == "path").collect();
        assert_eq!(
            paths.len(),
            prober.retraces.len(),
            "the rounds' records are written"
        );
        for (begin, end, sent) in &prober.retraces {
            let before = prober.sends.iter().filter(|s| *s < begin).count() as u64;
            assert_eq!(
                *sent, before,
                "the totals count every probe sent before the round"
            );
            assert!(
                !prober.sends.iter().any(|s| s >= begin && s <= end),
                "no probe leaves during a round"
            );
        }
        // No burst to catch up: never six sends within one interval. (A late wake-up on a
        // loaded machine bunches two or three, and the next probe may follow on time: a CI run
        // saw four within 4.4 ms; a catch-up after a 50 ms pause bunches ten.)
        for w in prober.sends.windows(6) {
            assert!(
                w[5].duration_since(w[0]) >= Duration::from_millis(5),
                "no burst to catch up after a pause: {:?}",
                prober
                    .sends
                    .windows(2)
                    .map(|p| p[1].duration_since(p[0]))
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn rtt_prefers_kernel_stamp_and_survives_clock_steps() {
        let mono = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let sent = SendStamp { wall, mono };
        let read = mono + Duration::from_micros(120);
        // Kernel stamped 40 µs after the send; user space read it 120 µs after.
        assert_eq!(
            rtt(sent, Some(wall + Duration::from_micros(40)), read),
            Duration::from_micros(40)
        );
        // Clock stepped back an hour: not negative, the monotonic bound instead.
        assert_eq!(
            rtt(sent, Some(wall - Duration::from_secs(3600)), read),
            Duration::from_micros(120)
        );
        // Clock stepped forward: not absurd.
        assert_eq!(
            rtt(sent, Some(wall + Duration::from_secs(3600)), read),
            Duration::from_micros(120)
        );
        assert_eq!(rtt(sent, None, read), Duration::from_micros(120));
    }
}
