//! The event loop every probing tool shares: one mio `Poll`, non-blocking sockets, timers in
//! user space (a deadline heap whose nearest deadline is the poll timeout), signals through
//! signal-hook-mio. Sends are scheduled on absolute deadlines (`start + k × interval`), so the
//! schedule never drifts. The loop never formats output itself: records go to the writer.
#![forbid(unsafe_code)]

use crate::alert::{Alerts, Thresholds};
use crate::output::RecordWriter;
use crate::probe::trace::Tracer;
use crate::probe::{
    ProbeEvent, ProbeId, ProbeLookup, Prober, ReflectorTimes, SendStamp, SocketDrops, StreamTotal,
};
use crate::record::{
    self, Alert, Body, Flow, OneWay, Record, Reply, Summary, Timeout, Unreachable,
};
use crate::stats::Stats;
use crate::target::Target;
use anyhow::{Context, Result};
use mio::{Events, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::Write;
use std::net::IpAddr;
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

/// Deadlines, earliest first; ties in insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Send(usize),
    /// A send the rate delayed to its slot (with the time it was due): it leaves at the slot,
    /// without taking another.
    Paced(usize, Instant),
    Expire(ProbeId),
    Window,
    Retrace,
    /// `-w`: no probe leaves after this.
    Stop,
}

/// What became of a probe. Kept for a while after settling, to recognise duplicates and
/// late replies.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Pending(SendStamp),
    Received(SendStamp),
    Lost,
    Failed,
    /// Not sent: its flow was busy ([`Prober::flow_busy`]).
    Skipped,
}

/// Longest plausible time from the send call to the kernel's transmit stamp.
const MAX_TX_DELAY: Duration = Duration::from_secs(1);

/// Settled slots kept behind the oldest pending one.
const SETTLED_HISTORY: usize = 256;

struct TargetState {
    target: Target,
    /// The next sequence number to send (sequence numbers start at 1).
    next_seq: u64,
    /// When the first probe was due; probe k is due at `first_due + k × interval`.
    first_due: Instant,
    sending: bool,
    /// Slots of sequence numbers `base_seq..`, each with the number its records show.
    slots: VecDeque<(Slot, u64)>,
    /// Probes that left (or failed to), so far: the `seq` records show counts these, from 1
    /// and without gaps, while the schedule's own numbers also count the probes not sent for
    /// a busy flow ([`Slot::Skipped`]).
    shown: u64,
    base_seq: u64,
    pending: usize,
    answered: bool,
    total: Stats,
    window: Stats,
    alerts: Alerts,
    /// Flows × classes: probe k goes to stream (k − 1) mod streams.
    streams: Vec<Stream>,
    /// The local address every stream's probes leave from, when they share one (the target's
    /// own summary and alerts show it).
    src: Option<IpAddr>,
}

/// The statistics of one stream (a flow in a class) of a target.
struct Stream {
    flow: Option<Flow>,
    /// The local address its probes leave from ([`Prober::source`]).
    src: Option<IpAddr>,
    total: Stats,
    window: Stats,
    /// Reordering is judged within a stream: different flows may take different paths.
    highest_received: u64,
    /// Probes that left on this stream (for `-c`: a probe not sent for a busy flow does not
    /// count).
    launched: u64,
}

impl Stream {
    fn new(flow: Option<Flow>, src: Option<IpAddr>) -> Stream {
        Stream {
            flow,
            src,
            total: Stats::new(),
            window: Stats::new(),
            highest_received: 0,
            launched: 0,
        }
    }
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

/// How early the rate lets a probe leave: the event loop wakes with millisecond resolution, so
/// the probes of one millisecond may leave together (at most `--rate` / 1000 + 1 of them).
const PACE_SLACK: Duration = Duration::from_millis(1);

/// Keeps the probes at most `--rate` per second however the sends fall due (a loop that woke
/// late, a schedule shifted after a trace round): each probe takes the next free slot, one
/// `gap` after the previous one's.
#[derive(Debug)]
struct Pacer {
    gap: Duration,
    next_free: Instant,
}

impl Pacer {
    fn new(rate: f64, now: Instant) -> Pacer {
        Pacer {
            gap: Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::ZERO),
            next_free: now,
        }
    }

    /// Takes the next slot: `None` when it is now (within [`PACE_SLACK`]), else the time of the
    /// slot, when the probe must leave instead. Slots are `gap` apart and every probe leaves
    /// within [`PACE_SLACK`] of its own.
    fn take(&mut self, now: Instant) -> Option<Instant> {
        let slot = self.next_free.max(now);
        self.next_free = slot + self.gap;
        (slot > now + PACE_SLACK).then_some(slot)
    }
}

impl TargetState {
    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot> {
        let i = usize::try_from(seq.checked_sub(self.base_seq)?).ok()?;
        self.slots.get_mut(i).map(|(slot, _)| slot)
    }

    /// The `seq` the records of probe `seq` (a schedule number) show.
    fn shown_seq(&self, seq: u64) -> u64 {
        let i = seq
            .checked_sub(self.base_seq)
            .and_then(|i| usize::try_from(i).ok());
        i.and_then(|i| self.slots.get(i))
            .map_or(seq, |(_, shown)| *shown)
    }

    /// Appends the slot of the next schedule number; a probe that left takes the next shown
    /// number.
    fn push_slot(&mut self, slot: Slot) {
        if !matches!(slot, Slot::Skipped) {
            self.shown += 1;
        }
        self.slots.push_back((slot, self.shown));
    }

    fn stream_of(&self, seq: u64) -> usize {
        (seq.saturating_sub(1) % self.streams.len().max(1) as u64) as usize
    }

    /// The local address probe `seq` left from.
    fn src_of(&self, seq: u64) -> Option<IpAddr> {
        self.streams.get(self.stream_of(seq)).and_then(|s| s.src)
    }

    fn flow(&self, seq: u64) -> Option<Flow> {
        self.streams.get(self.stream_of(seq)).and_then(|s| s.flow)
    }

    /// Applies a probe's outcome to the target's and its stream's statistics, run and window.
    fn settle(&mut self, seq: u64, outcome: impl Fn(&mut Stats)) {
        outcome(&mut self.total);
        outcome(&mut self.window);
        let i = self.stream_of(seq);
        if let Some(stream) = self.streams.get_mut(i) {
            outcome(&mut stream.total);
            outcome(&mut stream.window);
        }
    }

    fn trim(&mut self) {
        while self.slots.len() > SETTLED_HISTORY
            && !matches!(self.slots.front(), Some((Slot::Pending(_), _)))
        {
            self.slots.pop_front();
            self.base_seq += 1;
        }
    }
}

struct Lookup<'a> {
    states: &'a [TargetState],
    by_addr: &'a HashMap<IpAddr, Vec<usize>>,
}

impl ProbeLookup for Lookup<'_> {
    fn by_addr_seq16(&self, addr: IpAddr, seq16: u16) -> Option<ProbeId> {
        for &t in self.by_addr.get(&addr.to_canonical())? {
            let st = &self.states[t];
            // The newest sequence number with these low 16 bits that we still know.
            let found = (0..st.slots.len())
                .rev()
                .map(|i| st.base_seq + i as u64)
                .find(|seq| *seq as u16 == seq16);
            if let Some(seq) = found {
                return Some(ProbeId { target: t, seq });
            }
        }
        None
    }
}

/// The run: targets, their state and the deadline heap.
pub struct Engine<'w, W: Write> {
    cfg: RunConfig,
    states: Vec<TargetState>,
    by_addr: HashMap<IpAddr, Vec<usize>>,
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    timer_serial: u64,
    out: &'w mut RecordWriter<W>,
    window_name: String,
    stopping: bool,
    malformed: u64,
    /// Targets still sending, and probes awaiting an answer: the run ends when both are 0.
    sending_targets: usize,
    pending_probes: usize,
    /// A trace round is due (since then): no probe leaves until the probes in flight settled
    /// and the round ran.
    retrace_due: Option<Instant>,
    skipped_busy: u64,
    pacer: Pacer,
    /// Between two probes to one target: `-i`, stretched to keep `--rate`.
    interval: Duration,
    /// Each socket's drop count when the current window began.
    drops_at_window: Vec<u64>,
}

const SIGNAL_TOKEN: Token = Token(0);
const FIRST_SOCKET_TOKEN: usize = 1;

impl<'w, W: Write> Engine<'w, W> {
    pub fn new(cfg: RunConfig, targets: Vec<Target>, out: &'w mut RecordWriter<W>) -> Self {
        let mut by_addr: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        for (i, t) in targets.iter().enumerate() {
            by_addr.entry(t.addr.to_canonical()).or_default().push(i);
        }
        let window_name = cfg
            .summary_every
            .map(|d| humantime::format_duration(d).to_string())
            .unwrap_or_default();
        let now = Instant::now();
        let n_targets = targets.len();
        let pacer = Pacer::new(cfg.rate, now);
        let interval = cfg.paced_interval(n_targets);
        let states: Vec<TargetState> = targets
            .into_iter()
            .map(|target| TargetState {
                target,
                next_seq: 1,
                first_due: now,
                sending: true,
                slots: VecDeque::new(),
                shown: 0,
                base_seq: 1,
                pending: 0,
                answered: false,
                total: Stats::new(),
                window: Stats::new(),
                alerts: Alerts::default(),
                streams: vec![Stream::new(None, None)],
                src: None,
            })
            .collect();
        Engine {
            cfg,
            states,
            by_addr,
            timers: BinaryHeap::new(),
            timer_serial: 0,
            out,
            window_name,
            stopping: false,
            malformed: 0,
            sending_targets: n_targets,
            pending_probes: 0,
            retrace_due: None,
            skipped_busy: 0,
            pacer,
            interval,
            drops_at_window: Vec::new(),
        }
    }

    fn schedule(&mut self, at: Instant, timer: Timer) {
        self.timer_serial += 1;
        self.timers.push(Reverse((at, self.timer_serial, timer)));
    }

    fn emit(&mut self, ts: SystemTime, t: usize, body: Body) -> std::io::Result<()> {
        let record = Record {
            tool: self.cfg.tool,
            ts,
            tags: self.states[t].target.tags.clone(),
            body,
        };
        self.out.write(&record)
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
        for (t, st) in self.states.iter_mut().enumerate() {
            st.streams = (0..streams)
                .map(|k| {
                    let flow = prober.flow(&st.target, t, k);
                    Stream::new(flow, prober.source(&st.target, t, k))
                })
                .collect();
            st.src = st.streams[0]
                .src
                .filter(|&src| st.streams.iter().all(|s| s.src == Some(src)));
        }
        // Spread the first probes of many targets evenly over one interval, or over the run
        // when it is shorter, but never faster than the rate: every target is probed at least
        // once (its first probe leaves even after -w).
        let start = Instant::now();
        let n = self.states.len().max(1) as u32;
        let spread = self
            .cfg
            .duration
            .map_or(self.interval, |d| d.min(self.interval))
            .max(self.cfg.once_over(self.states.len()));
        for t in 0..self.states.len() {
            let due = start + spread * t as u32 / n;
            self.states[t].first_due = due;
            self.schedule(due, Timer::Send(t));
        }
        let stop_at = self.cfg.duration.map(|d| start + d);
        if let Some(at) = stop_at {
            // The run ends at the duration (once the probes in flight settle), not at the
            // next probe's due time after it.
            self.schedule(at, Timer::Stop);
        }
        if let Some(every) = self.cfg.summary_every {
            self.schedule(start + every, Timer::Window);
        }
        if let Some(every) = prober.retrace_every() {
            self.schedule(start + every, Timer::Retrace);
        }

        let mut events = Events::with_capacity(256);
        let mut found = Vec::new();
        let mut interrupted = false;
        let mut signals_seen = 0;
        loop {
            let now = Instant::now();
            while let Some(Reverse((at, _, timer))) = self.timers.peek().copied() {
                if at > now {
                    break;
                }
                self.timers.pop();
                self.fire(timer, at, stop_at, prober)?;
            }
            if self.retrace_due.is_some() && self.pending_probes == 0 && !self.stopping {
                self.retrace(prober)?;
                continue;
            }
            if self.finished() {
                break;
            }
            let timeout = self
                .timers
                .peek()
                .map(|Reverse((at, _, _))| at.saturating_duration_since(Instant::now()));
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
                    found.clear();
                    let lookup = Lookup {
                        states: &self.states,
                        by_addr: &self.by_addr,
                    };
                    prober.drain(token - FIRST_SOCKET_TOKEN, &lookup, &mut found);
                    for e in found.drain(..) {
                        self.on_event(e)?;
                    }
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
        for t in 0..self.states.len() {
            let st = &self.states[t];
            let mut summaries = Vec::new();
            if st.streams.len() > 1 {
                for stream in &st.streams {
                    summaries.push(Summary {
                        src: stream.src,
                        ..stream.total.summary(
                            &st.target.name,
                            st.target.addr,
                            stream.flow,
                            "total",
                        )
                    });
                }
            }
            summaries.push(Summary {
                src: st.src,
                ..st.total
                    .summary(&st.target.name, st.target.addr, None, "total")
            });
            for mut summary in summaries {
                summary.dropped_local = dropped_for(&summary, &drops, &[]);
                self.emit(SystemTime::now(), t, Body::Summary(summary))?;
            }
        }
        self.out.end_window()?;
        let streams = self.stream_totals();
        let refused = self
            .states
            .iter()
            .filter_map(|st| st.total.summary("", st.target.addr, None, "total").refused)
            .sum();
        Ok(Outcome {
            all_answered: self.states.iter().all(|s| s.answered),
            malformed: self.malformed,
            skipped_busy: self.skipped_busy,
            refused,
            interrupted,
            streams,
            dropped_local: drops.into_iter().filter(|d| d.count > 0).collect(),
        })
    }

    /// Every stream's totals so far.
    fn stream_totals(&self) -> Vec<StreamTotal> {
        let mut streams = Vec::new();
        for (t, st) in self.states.iter().enumerate() {
            for stream in &st.streams {
                let s = stream.total.summary("", st.target.addr, None, "total");
                streams.push(StreamTotal {
                    target: t,
                    flow: stream.flow,
                    sent: s.sent,
                    received: s.received,
                    lost_fwd: s.lost_fwd,
                    lost_rev: s.lost_rev,
                });
            }
        }
        streams
    }

    /// Runs the prober's trace round (no probe is in flight), writes its records, and moves
    /// every target's send schedule later by the pause, so no probe is sent in a burst to
    /// catch up.
    fn retrace<P: Tracer>(&mut self, prober: &mut P) -> Result<()> {
        let Some(paused_at) = self.retrace_due.take() else {
            return Ok(());
        };
        let totals = self.stream_totals();
        for (t, path) in prober.retrace(&totals)? {
            if t < self.states.len() {
                self.emit(SystemTime::now(), t, Body::Path(path))?;
            }
        }
        let now = Instant::now();
        let pause = now.saturating_duration_since(paused_at);
        // Sends the rate delayed go too: every sending target gets one send below.
        self.timers
            .retain(|Reverse((_, _, t))| !matches!(t, Timer::Send(_) | Timer::Paced(..)));
        let interval = self.interval;
        let mut sends = Vec::new();
        for (t, st) in self.states.iter_mut().enumerate() {
            st.first_due += pause;
            if st.sending {
                let k = u32::try_from(st.next_seq - 1).unwrap_or(u32::MAX);
                let due = st.first_due + interval.saturating_mul(k);
                // A send the rate had delayed past the round's start is overdue: it leaves now,
                // and the target's later sends move with it.
                st.first_due += now.saturating_duration_since(due);
                sends.push((due.max(now), t));
            }
        }
        for (at, t) in sends {
            self.schedule(at, Timer::Send(t));
        }
        if let Some(every) = prober.retrace_every() {
            if self.sending_targets > 0 {
                self.schedule(now + every, Timer::Retrace);
            }
        }
        Ok(())
    }

    fn finished(&self) -> bool {
        self.sending_targets == 0 && self.pending_probes == 0
    }

    /// `-w` ran out: no more probes, but the first of every target (a sweep at `--rate` can
    /// take longer than `-w`).
    fn stop_after_first(&mut self) {
        for st in &mut self.states {
            if st.sending && st.next_seq > 1 {
                st.sending = false;
                self.sending_targets -= 1;
            }
        }
    }

    fn stop_sending(&mut self) {
        self.stopping = true;
        self.sending_targets = 0;
        for st in &mut self.states {
            st.sending = false;
        }
    }

    fn fire<P: Prober>(
        &mut self,
        timer: Timer,
        at: Instant,
        stop_at: Option<Instant>,
        prober: &mut P,
    ) -> Result<()> {
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
                match if on_time { None } else { self.pacer.take(now) } {
                    None => {
                        if due < at {
                            self.states[t].first_due += now.saturating_duration_since(due);
                        }
                        self.send(t, due, stop_at, prober)?
                    }
                    Some(slot) => self.schedule(slot, Timer::Paced(t, due)),
                }
            }
            Timer::Expire(id) => {
                let st = &mut self.states[id.target];
                if let Some(slot @ Slot::Pending(_)) = st.slot_mut(id.seq) {
                    *slot = Slot::Lost;
                    st.pending -= 1;
                    self.pending_probes -= 1;
                    prober.expired(id);
                    st.settle(id.seq, Stats::lost);
                    let shown = st.shown_seq(id.seq);
                    st.trim();
                    if !self.cfg.quiet {
                        let body = Body::Timeout(Timeout {
                            target: st.target.name.clone(),
                            addr: st.target.addr,
                            src: st.src_of(id.seq),
                            seq: shown,
                            flow: st.flow(id.seq),
                        });
                        self.emit(SystemTime::now(), id.target, body)?;
                    }
                    let mut found = Vec::new();
                    prober.pending_events(&mut found);
                    for e in found {
                        self.on_event(e)?;
                    }
                }
            }
            Timer::Retrace => {
                if self.sending_targets > 0 && !self.stopping {
                    self.retrace_due = Some(at);
                }
            }
            Timer::Stop => {
                if !self.stopping {
                    self.stop_after_first();
                }
            }
            Timer::Window => {
                let drops = prober.dropped_local();
                self.close_window(&drops)?;
                if let Some(every) = self.cfg.summary_every {
                    if !self.finished() {
                        self.schedule(next_period(at, every, Instant::now()), Timer::Window);
                    }
                }
            }
        }
        Ok(())
    }

    fn send<P: Prober>(
        &mut self,
        t: usize,
        due: Instant,
        stop_at: Option<Instant>,
        prober: &mut P,
    ) -> Result<()> {
        let cfg_count = self.cfg.count;
        if self.retrace_due.is_some() {
            // Paused for a trace round, which reschedules the send.
            return Ok(());
        }
        let st = &mut self.states[t];
        if !st.sending {
            return Ok(());
        }
        if stop_at.is_some_and(|s| due >= s) && st.next_seq > 1 {
            st.sending = false;
            self.sending_targets -= 1;
            return Ok(());
        }
        let seq = st.next_seq;
        let id = ProbeId { target: t, seq };
        if prober.flow_busy(id) {
            // An answer may be waiting unread: the flow is looked at before it is judged busy.
            let mut found = Vec::new();
            let lookup = Lookup {
                states: &self.states,
                by_addr: &self.by_addr,
            };
            prober.poll_flow(id, &lookup, &mut found);
            for e in found {
                self.on_event(e)?;
            }
        }
        let st = &self.states[t];
        let stream = st.stream_of(seq);
        // With -c, a stream that sent its count sends no more (its seqs pass unsent).
        let done = cfg_count.is_some_and(|c| st.streams[stream].launched >= c);
        let busy = !done && prober.flow_busy(id);
        let st = &mut self.states[t];
        st.next_seq += 1;
        if st.slots.is_empty() {
            st.base_seq = seq;
        }
        let sent = if busy || done {
            // The flow's previous probe keeps its whole timeout; this one does not leave, and
            // the other flows keep their pace.
            None
        } else {
            st.streams[stream].launched += 1;
            Some(prober.send(&st.target, id))
        };
        let st = &mut self.states[t];
        match sent {
            None => {
                st.push_slot(Slot::Skipped);
                self.skipped_busy += u64::from(busy);
            }
            Some(sent) => match sent {
                Ok(stamp) => {
                    st.push_slot(Slot::Pending(stamp));
                    st.pending += 1;
                    self.pending_probes += 1;
                    self.schedule(stamp.mono + self.cfg.timeout, Timer::Expire(id));
                }
                Err(e) => {
                    // The probe could not leave (no route, firewall, interface down): an answer
                    // of sorts, from the local host.
                    st.push_slot(Slot::Failed);
                    st.settle(seq, Stats::unreachable);
                    if !self.cfg.quiet {
                        let body = Body::Unreachable(Unreachable {
                            target: st.target.name.clone(),
                            addr: st.target.addr,
                            src: st.src_of(seq),
                            seq: st.shown_seq(seq),
                            from: None,
                            icmp_type: None,
                            icmp_code: None,
                            reason: crate::net::socket::error_reason(&e),
                            flow: st.flow(seq),
                        });
                        self.emit(SystemTime::now(), t, body)?;
                    }
                }
            },
        }
        let st = &mut self.states[t];
        st.trim();
        let streams = st.streams.len() as u64;
        let all_sent = |c: u64| st.streams.iter().all(|s| s.launched >= c);
        if cfg_count.is_some_and(|c| seq >= c.saturating_mul(streams) && all_sent(c)) {
            st.sending = false;
            self.sending_targets -= 1;
        } else {
            // Absolute deadlines: probe k is due at first_due + k × interval.
            let next = st.first_due
                + self
                    .interval
                    .saturating_mul(u32::try_from(seq).unwrap_or(u32::MAX));
            let next = if seq > u64::from(u32::MAX) {
                due + self.interval
            } else {
                next
            };
            self.schedule(next, Timer::Send(t));
        }
        Ok(())
    }

    fn on_event(&mut self, event: ProbeEvent) -> Result<()> {
        match event {
            ProbeEvent::Malformed(_) => self.malformed += 1,
            ProbeEvent::Placed(p) => {
                if let Some(st) = self.states.get_mut(p.id.target) {
                    let place = |s: &mut Stats| s.placed(p.forward, p.reverse, p.refused);
                    if p.one_stream {
                        st.settle(p.id.seq, place);
                    } else {
                        place(&mut st.total);
                        place(&mut st.window);
                    }
                }
            }
            ProbeEvent::Sent { id, tx_wall } => {
                let Some(st) = self.states.get_mut(id.target) else {
                    return Ok(());
                };
                if let Some(Slot::Pending(stamp)) = st.slot_mut(id.seq) {
                    // The kernel stamps the packet after the send call began; anything else
                    // (a clock step in between) is not trusted.
                    if tx_wall
                        .duration_since(stamp.wall)
                        .is_ok_and(|d| d < MAX_TX_DELAY)
                    {
                        stamp.wall = tx_wall;
                    }
                }
            }
            ProbeEvent::Reply {
                id,
                from,
                rx_wall,
                rx_mono,
                ttl,
                size,
                tos,
                reflector,
                result,
                syn_retransmits,
            } => {
                let quiet = self.cfg.quiet;
                let Some(st) = self.states.get_mut(id.target) else {
                    return Ok(());
                };
                if from.to_canonical() != st.target.addr.to_canonical() {
                    return Ok(()); // an answer from someone else: not a reply to this probe
                }
                let Some(slot) = st.slot_mut(id.seq) else {
                    return Ok(());
                };
                let (sent, dup) = match *slot {
                    Slot::Pending(sent) => {
                        *slot = Slot::Received(sent);
                        st.pending -= 1;
                        self.pending_probes -= 1;
                        (sent, false)
                    }
                    Slot::Received(sent) => (sent, true),
                    Slot::Lost => {
                        st.settle(id.seq, Stats::late);
                        return Ok(());
                    }
                    Slot::Failed | Slot::Skipped => return Ok(()),
                };
                let shown = st.shown_seq(id.seq);
                let rtt = match reflector {
                    Some(r) if r.net_of_hold => net_of_hold(rtt(sent, rx_wall, rx_mono), &r),
                    _ => rtt(sent, rx_wall, rx_mono),
                };
                if dup {
                    st.settle(id.seq, Stats::duplicate);
                } else {
                    let i = st.stream_of(id.seq);
                    let stream = &mut st.streams[i];
                    let reordered = id.seq < stream.highest_received;
                    stream.highest_received = stream.highest_received.max(id.seq);
                    st.answered = true;
                    let figures = reflector.map(|r| one_way(sent.wall, rx_wall, &r));
                    st.settle(id.seq, |s| {
                        s.reply(rtt, reordered);
                        if let Some(ow) = &figures {
                            s.one_way(ow, ttl);
                        }
                    });
                    st.trim();
                }
                if !quiet {
                    let one_way = reflector.map(|r| one_way(sent.wall, rx_wall, &r));
                    let body = Body::Reply(Reply {
                        target: st.target.name.clone(),
                        addr: st.target.addr,
                        src: st.src_of(id.seq),
                        seq: shown,
                        rtt_ms: record::ms(rtt),
                        ttl,
                        size,
                        tos,
                        flow: st.flow(id.seq),
                        dup: dup.then_some(true),
                        result: result.map(str::to_string),
                        syn_retransmits,
                        one_way,
                    });
                    self.emit(rx_wall.unwrap_or_else(SystemTime::now), id.target, body)?;
                }
            }
            ProbeEvent::Error {
                id,
                from,
                icmp_type,
                icmp_code,
                reason,
            } => {
                let quiet = self.cfg.quiet;
                let Some(st) = self.states.get_mut(id.target) else {
                    return Ok(());
                };
                let Some(slot) = st.slot_mut(id.seq) else {
                    return Ok(());
                };
                if let Slot::Pending(_) = slot {
                    *slot = Slot::Failed;
                    st.pending -= 1;
                    self.pending_probes -= 1;
                    st.settle(id.seq, Stats::unreachable);
                    let shown = st.shown_seq(id.seq);
                    st.trim();
                    if !quiet {
                        let body = Body::Unreachable(Unreachable {
                            target: st.target.name.clone(),
                            addr: st.target.addr,
                            src: st.src_of(id.seq),
                            seq: shown,
                            from,
                            icmp_type,
                            icmp_code,
                            reason,
                            flow: st.flow(id.seq),
                        });
                        self.emit(SystemTime::now(), id.target, body)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes each target's window summary, evaluates alerts, starts new windows.
    fn close_window(&mut self, drops: &[SocketDrops]) -> Result<()> {
        let now = SystemTime::now();
        let since = std::mem::replace(
            &mut self.drops_at_window,
            drops.iter().map(|d| d.count).collect(),
        );
        for t in 0..self.states.len() {
            let st = &mut self.states[t];
            let window = std::mem::take(&mut st.window);
            let transitions = st.alerts.evaluate(&self.cfg.thresholds, &window);
            let mut summaries = Vec::new();
            if st.streams.len() > 1 {
                for stream in &mut st.streams {
                    let w = std::mem::take(&mut stream.window);
                    summaries.push(Summary {
                        src: stream.src,
                        ..w.summary(
                            &st.target.name,
                            st.target.addr,
                            stream.flow,
                            &self.window_name,
                        )
                    });
                }
            }
            summaries.push(Summary {
                src: st.src,
                ..window.summary(&st.target.name, st.target.addr, None, &self.window_name)
            });
            let (name, addr, src) = (st.target.name.clone(), st.target.addr, st.src);
            for mut summary in summaries {
                summary.dropped_local = dropped_for(&summary, drops, &since);
                self.emit(now, t, Body::Summary(summary))?;
            }
            for tr in transitions {
                let body = Body::Alert(Alert {
                    state: tr.state,
                    target: name.clone(),
                    addr,
                    src,
                    flow: None,
                    metric: tr.metric.to_string(),
                    value: tr.value,
                    threshold: tr.threshold,
                    window: self.window_name.clone(),
                });
                self.emit(now, t, body)?;
            }
        }
        self.out.end_window()?;
        Ok(())
    }

    /// Settles every pending probe as lost, now.
    fn expire_all(&mut self) -> Result<()> {
        self.stop_sending();
        let pending: Vec<ProbeId> = self
            .timers
            .iter()
            .filter_map(|Reverse((_, _, t))| match t {
                Timer::Expire(id) => Some(*id),
                _ => None,
            })
            .collect();
        let mut pending = pending;
        pending.sort();
        for id in pending {
            self.fire(Timer::Expire(id), Instant::now(), None, &mut NoProber)?;
        }
        Ok(())
    }
}

/// The datagrams dropped on the sockets a summary's answers arrive on (those of its address
/// family, and of its flow when it is a flow's), since the counts `since` (by socket; none:
/// since the sockets opened). `None` when there were none.
fn dropped_for(summary: &record::Summary, drops: &[SocketDrops], since: &[u64]) -> Option<u64> {
    let v6 = summary.addr.is_ipv6();
    let sport = summary.flow.map(|f| f.sport);
    let total: u64 = drops
        .iter()
        .enumerate()
        .filter(|(_, d)| d.v6 == v6 && (sport.is_none() || d.sport.is_none() || d.sport == sport))
        .map(|(i, d)| d.count.saturating_sub(since.get(i).copied().unwrap_or(0)))
        .sum();
    (total > 0).then_some(total)
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

/// The first of the deadlines `at + k × every` (k ≥ 1) after `now`: periods do not drift, and
/// a loop that stalled skips the periods it missed rather than catching up on them in a burst.
pub fn next_period(at: Instant, every: Duration, now: Instant) -> Instant {
    let next = at + every;
    if next > now || every.is_zero() {
        return next;
    }
    let missed = now.duration_since(next).as_nanos() / every.as_nanos() + 1;
    next + every.saturating_mul(u32::try_from(missed).unwrap_or(u32::MAX))
}

/// One-way delays from a stamping reflector's clock against ours: forward from our send to its
/// receive, reverse from its send to our receive (negative when the clocks disagree by more
/// than the delay), and its own hold time. Meaningful only with synchronized clocks, which
/// `synced` reports.
pub fn one_way(sent: SystemTime, rx_wall: Option<SystemTime>, r: &ReflectorTimes) -> OneWay {
    let signed_ms = |later: SystemTime, earlier: SystemTime| match later.duration_since(earlier) {
        Ok(d) => record::ms(d),
        Err(e) => -record::ms(e.duration()),
    };
    OneWay {
        fwd_ms: signed_ms(r.rx, sent),
        rev_ms: rx_wall.map(|w| signed_ms(w, r.tx)),
        reflector_ms: signed_ms(r.tx, r.rx),
        dscp_rx: r.tos.map(|tos| tos >> 2),
        synced: r.synced && crate::clock::synchronized(),
        reflector_seq: r.seq,
        reflector_ttl: r.ttl,
        tlv: r.tlv,
    }
}

/// The RTT without the reflector's hold time (T3 − T2, by its clock), as TWAMP defines it:
/// (T4 − T1) − (T3 − T2). A hold time that is negative or longer than the RTT (a reflector
/// clock stepped in between) is not trusted: the RTT stays as it is.
pub fn net_of_hold(rtt: Duration, r: &ReflectorTimes) -> Duration {
    match r.tx.duration_since(r.rx) {
        Ok(hold) if hold <= rtt => rtt - hold,
        _ => rtt,
    }
}

/// The round-trip time of a probe. The kernel's receive stamp against the wall clock read at
/// send is the precise figure; the monotonic clock bounds it, because the kernel stamps a
/// datagram before it is read. A wall-clock step (NTP, an operator) between send and receive
/// makes the precise figure negative or larger than the bound: then the bound is used.
pub fn rtt(sent: SendStamp, rx_wall: Option<SystemTime>, rx_mono: Instant) -> Duration {
    let bound = rx_mono.saturating_duration_since(sent.mono);
    match rx_wall.and_then(|w| w.duration_since(sent.wall).ok()) {
        Some(precise) if precise <= bound => precise,
        _ => bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    v6: false,
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
