//! The threshold state machine: `firing` when a window exceeds a threshold, `resolved` when a
//! later window is back at or under it. One transition per crossing, never a repeat.
#![forbid(unsafe_code)]

use crate::record::{ms, AlertState};
use crate::stats::Stats;

/// Thresholds from `--alert-loss` and `--alert-rtt`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    /// Loss in percent; fires when a window's loss is above it.
    pub loss_pct: Option<f64>,
    /// Average RTT in milliseconds; fires when a window's average is above it.
    pub rtt_ms: Option<f64>,
}

impl Thresholds {
    pub fn any(&self) -> bool {
        self.loss_pct.is_some() || self.rtt_ms.is_some()
    }
}

/// A change of alert state, to be written as an `alert` record.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: AlertState,
    pub metric: &'static str,
    pub value: f64,
    pub threshold: f64,
}

/// Alert state of one target (or flow).
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    loss_firing: bool,
    rtt_firing: bool,
}

impl Alerts {
    /// Evaluates a closed window and returns the transitions it caused. A window in which no
    /// probe settled says nothing and changes nothing; so does a window without replies for
    /// the RTT threshold.
    pub fn evaluate(&mut self, thresholds: &Thresholds, window: &Stats) -> Vec<Transition> {
        let mut out = Vec::new();
        if let (Some(threshold), Some(value)) = (thresholds.loss_pct, window.loss_pct()) {
            step(
                &mut self.loss_firing,
                "loss_pct",
                value,
                threshold,
                &mut out,
            );
        }
        if let (Some(threshold), Some(avg)) = (thresholds.rtt_ms, window.avg_rtt()) {
            step(&mut self.rtt_firing, "rtt_ms", ms(avg), threshold, &mut out);
        }
        out
    }
}

/// One threshold's state machine: pushes a transition when `value` crosses `threshold`
/// (above fires, at or under resolves).
pub fn step(
    firing: &mut bool,
    metric: &'static str,
    value: f64,
    threshold: f64,
    out: &mut Vec<Transition>,
) {
    let above = value > threshold;
    if above != *firing {
        *firing = above;
        out.push(Transition {
            state: if above {
                AlertState::Firing
            } else {
                AlertState::Resolved
            },
            metric,
            value,
            threshold,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn window(replies: u64, lost: u64, rtt_us: u64) -> Stats {
        let mut s = Stats::new();
        for _ in 0..replies {
            s.reply(Duration::from_micros(rtt_us), false);
        }
        for _ in 0..lost {
            s.lost();
        }
        s
    }

    #[test]
    fn loss_fires_once_and_resolves_once() {
        let th = Thresholds {
            loss_pct: Some(10.0),
            rtt_ms: None,
        };
        let mut a = Alerts::default();
        assert!(a.evaluate(&th, &window(10, 0, 100)).is_empty());
        let t = a.evaluate(&th, &window(7, 3, 100));
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].state, t[0].metric, t[0].value),
            (AlertState::Firing, "loss_pct", 30.0)
        );
        assert!(
            a.evaluate(&th, &window(5, 5, 100)).is_empty(),
            "no repeat while firing"
        );
        assert!(
            a.evaluate(&th, &Stats::new()).is_empty(),
            "empty window says nothing"
        );
        let t = a.evaluate(&th, &window(9, 1, 100));
        assert_eq!((t[0].state, t[0].value), (AlertState::Resolved, 10.0));
    }

    #[test]
    fn rtt_uses_window_average_and_ignores_windows_without_replies() {
        let th = Thresholds {
            loss_pct: None,
            rtt_ms: Some(1.0),
        };
        let mut a = Alerts::default();
        let t = a.evaluate(&th, &window(3, 0, 1500));
        assert_eq!(
            (t[0].state, t[0].metric, t[0].value),
            (AlertState::Firing, "rtt_ms", 1.5)
        );
        assert!(a.evaluate(&th, &window(0, 5, 0)).is_empty());
        assert_eq!(
            a.evaluate(&th, &window(3, 0, 900))[0].state,
            AlertState::Resolved
        );
    }
}
