//! What lreflect reports: the line on stderr once it answers, when each `stats` window
//! closes, and the `stats` records themselves.
#![forbid(unsafe_code)]

use super::control::ControlServer;
use super::listener::Listener;
use super::stats::Counters;
use super::TOOL;
use crate::output::RecordWriter;
use crate::record::{Body, Record, Tags};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The first stats window when `--stats-every` is longer: the first record comes this soon.
pub(super) const FIRST_STATS: Duration = Duration::from_secs(10);

/// What lreflect says on stderr once it answers: its sockets and its stats period.
pub(super) fn start_line(
    listeners: &[Listener],
    control: Option<&ControlServer>,
    stats_every: Duration,
) -> String {
    let sockets: Vec<String> = listeners
        .iter()
        .map(|l| format!("{} on {}", l.kind.label(), l.listen))
        .chain(
            control
                .into_iter()
                .flat_map(|c| c.addresses())
                .map(|a| format!("TWAMP-Control on {a}")),
        )
        .collect();
    format!(
        "answering {}; {}",
        sockets.join(", "),
        stats_words(stats_every)
    )
}

/// The stats period, in words.
fn stats_words(stats_every: Duration) -> String {
    if stats_every.is_zero() {
        "stats at the end only".to_string()
    } else if stats_every > FIRST_STATS {
        format!(
            "stats every {} (the first after {})",
            humantime::format_duration(stats_every),
            humantime::format_duration(FIRST_STATS)
        )
    } else {
        format!("stats every {}", humantime::format_duration(stats_every))
    }
}

/// When the open `stats` window closes. The first window is short, so a new deployment shows
/// its counts within seconds; the later ones are `--stats-every` long, on a fixed grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StatsClock {
    /// `--stats-every` (none: only the total at exit).
    every: Option<Duration>,
    /// The open window's length.
    window: Option<Duration>,
    /// When it closes.
    next: Option<Instant>,
}

impl StatsClock {
    pub(super) fn new(stats_every: Duration, now: Instant) -> StatsClock {
        let every = (!stats_every.is_zero()).then_some(stats_every);
        let window = every.map(|d| d.min(FIRST_STATS));
        StatsClock {
            every,
            window,
            next: window.map(|d| now + d),
        }
    }

    /// When the open window closes (none without periodic stats).
    pub(super) fn next(&self) -> Option<Instant> {
        self.next
    }

    /// At `now`, whether the open window has closed: its name (`window` in the records), and
    /// the next one opened.
    pub(super) fn close_due(&mut self, now: Instant) -> Option<String> {
        let (Some(at), Some(d), Some(length)) = (self.next, self.every, self.window) else {
            return None;
        };
        if now < at {
            return None;
        }
        self.window = Some(d);
        self.next = Some(crate::engine::next_period(at, d, now));
        Some(humantime::format_duration(length).to_string())
    }
}

/// Writes `stats` records, each with the run's tags.
pub(super) struct StatsWriter {
    pub(super) out: RecordWriter<io::Stdout>,
    tags: Option<Arc<Tags>>,
}

impl StatsWriter {
    pub(super) fn new(out: RecordWriter<io::Stdout>, tags: &[(String, String)]) -> StatsWriter {
        StatsWriter {
            out,
            tags: (!tags.is_empty()).then(|| Arc::new(tags.iter().cloned().collect())),
        }
    }

    /// One listener's counters over `window` (`active`: its sessions or flows alive).
    pub(super) fn write(
        &mut self,
        l: &Listener,
        counters: &Counters,
        window: &str,
        active: Option<u64>,
    ) -> io::Result<()> {
        self.out.write(&Record {
            tool: TOOL,
            ts: SystemTime::now(),
            tags: self.tags.clone(),
            body: Body::Stats(counters.record(&l.listen, l.kind.mode(), window, active)),
        })
    }
}

impl StatsWriter {
    /// One record per TWAMP-Control listener: the window `window` (closing it), or the
    /// run's total when `window` is "total".
    pub(super) fn write_control(&mut self, c: &mut ControlServer, window: &str) -> io::Result<()> {
        for i in 0..c.len() {
            let counts = if window == "total" {
                c.total(i)
            } else {
                c.close_window(i)
            };
            self.out.write(&Record {
                tool: TOOL,
                ts: SystemTime::now(),
                tags: self.tags.clone(),
                body: Body::Stats(crate::record::ReflectorStats {
                    control: Some(counts),
                    ..Counters::default().record(&c.listen(i), "twamp-control", window, None)
                }),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_period_is_said_with_its_short_first_window() {
        assert_eq!(stats_words(Duration::ZERO), "stats at the end only");
        assert_eq!(
            stats_words(Duration::from_secs(60)),
            "stats every 1m (the first after 10s)"
        );
        assert_eq!(stats_words(Duration::from_secs(10)), "stats every 10s");
        assert_eq!(stats_words(Duration::from_secs(2)), "stats every 2s");
    }

    #[test]
    fn the_first_window_is_short_then_windows_keep_their_grid() {
        let t0 = Instant::now();
        let mut c = StatsClock::new(Duration::from_secs(60), t0);
        assert_eq!(c.next(), Some(t0 + FIRST_STATS));
        assert_eq!(c.close_due(t0 + Duration::from_secs(9)), None);
        assert_eq!(c.close_due(t0 + FIRST_STATS).as_deref(), Some("10s"));
        assert_eq!(c.next(), Some(t0 + Duration::from_secs(70)));
        // A late wake-up closes the window once and stays on the grid.
        assert_eq!(
            c.close_due(t0 + Duration::from_secs(75)).as_deref(),
            Some("1m")
        );
        assert_eq!(c.next(), Some(t0 + Duration::from_secs(130)));
        assert_eq!(c.close_due(t0 + Duration::from_secs(76)), None);
    }

    #[test]
    fn short_periods_start_at_once_and_zero_means_none() {
        let t0 = Instant::now();
        let mut c = StatsClock::new(Duration::from_secs(2), t0);
        assert_eq!(c.next(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(
            c.close_due(t0 + Duration::from_secs(2)).as_deref(),
            Some("2s")
        );
        let mut none = StatsClock::new(Duration::ZERO, t0);
        assert_eq!(none.next(), None);
        assert_eq!(none.close_due(t0 + Duration::from_secs(3600)), None);
    }
}
