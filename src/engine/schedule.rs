//! When things happen: the deadline heap (sends, timeouts, windows, trace rounds, the end of
//! `-w`), each target's send grid on absolute deadlines (probe k is due at `first_due + k ×
//! interval`, so the schedule never drifts), and the pacer that keeps `--rate`.

use crate::probe::ProbeId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Deadlines, earliest first; ties in insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
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

/// How early the rate lets a probe leave: the event loop wakes with millisecond resolution, so
/// the probes of one millisecond may leave together (at most `--rate` / 1000 + 1 of them).
pub const PACE_SLACK: Duration = Duration::from_millis(1);

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

/// The deadlines of a run and every target's send grid.
#[derive(Debug)]
pub struct Schedule {
    timers: BinaryHeap<Reverse<(Instant, u64, Timer)>>,
    serial: u64,
    pacer: Pacer,
    /// Between two probes to one target: `-i`, stretched to keep `--rate`.
    interval: Duration,
    /// When each target's first probe was due; probe k is due at `first_due + k × interval`.
    first_due: Vec<Instant>,
}

impl Schedule {
    /// The schedule of `targets` targets probed every `interval` at most `rate` probes a second.
    pub fn new(rate: f64, interval: Duration, targets: usize, now: Instant) -> Schedule {
        Schedule {
            timers: BinaryHeap::new(),
            serial: 0,
            pacer: Pacer::new(rate, now),
            interval,
            first_due: vec![now; targets],
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn push(&mut self, at: Instant, timer: Timer) {
        self.serial += 1;
        self.timers.push(Reverse((at, self.serial, timer)));
    }

    /// The earliest deadline not after `now`, taken off the heap.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        let Reverse((at, _, timer)) = *self.timers.peek()?;
        if at > now {
            return None;
        }
        self.timers.pop();
        Some((at, timer))
    }

    /// The earliest deadline: the poll waits until then.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Spreads the targets' first probes evenly over `spread` from `start`.
    pub fn start(&mut self, start: Instant, spread: Duration) {
        let n = self.first_due.len().max(1) as u32;
        for t in 0..self.first_due.len() {
            let due = start + spread * t as u32 / n;
            self.first_due[t] = due;
            self.push(due, Timer::Send(t));
        }
    }

    /// A send of target `t` due at `due` leaves at the next slot the rate allows: `None` now
    /// (or, `on_time`, a paced send the loop reached in its slot), else the slot's time.
    pub fn take_slot(&mut self, now: Instant, on_time: bool) -> Option<Instant> {
        if on_time {
            None
        } else {
            self.pacer.take(now)
        }
    }

    /// Moves target `t`'s later sends by `by` (a send the rate delayed), so it is never probed
    /// sooner than the interval after it.
    pub fn delay(&mut self, t: usize, by: Duration) {
        self.first_due[t] += by;
    }

    /// Schedules target `t`'s send after probe `seq` (due at `due`): on its grid, at
    /// `first_due + seq × interval`.
    pub fn next_send(&mut self, t: usize, seq: u64, due: Instant) {
        let next = if seq > u64::from(u32::MAX) {
            due + self.interval
        } else {
            self.first_due[t] + self.interval.saturating_mul(seq as u32)
        };
        self.push(next, Timer::Send(t));
    }

    /// The probes awaiting their timeout, in order.
    pub fn pending_expiries(&self) -> Vec<ProbeId> {
        let mut pending: Vec<ProbeId> = (self.timers.iter())
            .filter_map(|Reverse((_, _, t))| match t {
                Timer::Expire(id) => Some(*id),
                _ => None,
            })
            .collect();
        pending.sort();
        pending
    }

    /// After a pause of `pause` (a trace round) ending `now`: every target's grid moves later
    /// by the pause, so no probe is sent in a burst to catch up, and each target that still
    /// sends (`next_seq(t)`: its next probe) gets one send. Sends the rate delayed go too.
    pub fn shift(
        &mut self,
        pause: Duration,
        now: Instant,
        next_seq: impl Fn(usize) -> Option<u64>,
    ) {
        self.timers
            .retain(|Reverse((_, _, t))| !matches!(t, Timer::Send(_) | Timer::Paced(..)));
        let mut sends = Vec::new();
        for (t, first_due) in self.first_due.iter_mut().enumerate() {
            *first_due += pause;
            if let Some(seq) = next_seq(t) {
                let k = u32::try_from(seq - 1).unwrap_or(u32::MAX);
                let due = *first_due + self.interval.saturating_mul(k);
                // A send the rate had delayed past the round's start is overdue: it leaves now,
                // and the target's later sends move with it.
                *first_due += now.saturating_duration_since(due);
                sends.push((due.max(now), t));
            }
        }
        for (at, t) in sends {
            self.push(at, Timer::Send(t));
        }
    }
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
