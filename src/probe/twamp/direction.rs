//! Direction-aware loss: which lost probes were lost on the way to the reflector and which on
//! the way back, from the gaps in a stateful reflector's own sequence numbers.
//!
//! A stateful Session-Reflector (RFC 8762 4.3.1) numbers its answers per session 0, 1, 2, …,
//! so between two answers that came back, the reflector's numbers say how many probes it
//! answered in between. A run of `g` probes lost between the answers numbered `a` and `b`
//! (the reflector's numbers) had `h = b − a − 1` of its probes answered: those `h` were lost on
//! the way back, the other `g − h` on the way there. A run is placed once every probe of it
//! settled (answered or timed out) and the answer after it came, so a reordered answer is never
//! mistaken for a lost one.
//!
//! Limits, where a run stays unplaced (so `lost_fwd + lost_rev` can be less than the loss):
//! - the probes lost after the last answer of a run (nothing closes the run);
//! - a run whose numbers do not add up (`h > g`: the reflector's numbering jumped, restarted
//!   or counts another sender's packets in the same session); after a restart (a number
//!   further behind the last one than the probes between them: more than reordering on the way
//!   there explains) the runs are placed in the new numbering;
//! - the first run of a session is placed only as if the reflector's numbering began with the
//!   session's first probe (a new session: `a = −1`); a reflector that still counts an earlier
//!   session of the same source port gives `h > g` and the run stays unplaced.
//!
//! A probe answered by an ICMP error (or that could not be sent) never reached the reflector and
//! is counted apart (`unreachable`): it is left out of the runs.

use crate::probe::{LossPlacement, ProbeId};
use std::collections::VecDeque;

/// How a probe of a session ended, as far as placing loss cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pending,
    /// Answered; the reflector's sequence number of the answer.
    Answered(u32),
    /// Timed out.
    Lost,
    /// Answered by an error or never sent: not part of any run.
    Skipped,
}

/// The lost probes of one stream within the current run.
#[derive(Debug, Clone, Copy)]
struct StreamRun {
    stream: usize,
    first: ProbeId,
    lost: u64,
}

/// One session (a target and a flow: one source port): its probes from the oldest unplaced one,
/// and the run of lost probes since its last answer.
#[derive(Debug, Clone)]
pub struct Session {
    target: usize,
    /// Flows of the target: probe `n` of the session is the target's probe
    /// `n × flows + flow + 1`.
    flows: u64,
    flow: u64,
    /// Streams of the target, to tell which stream a probe belongs to.
    streams: u64,
    /// Session index of `outcomes[0]`.
    frontier: u64,
    outcomes: VecDeque<Outcome>,
    /// The reflector's number of the latest answer in its numbering (see
    /// [`Session::advance`]) and that probe's session index; `None` before the first answer.
    anchor: Option<(u32, u64)>,
    run: Vec<StreamRun>,
}

impl Session {
    pub fn new(target: usize, flows: u16, flow: u16, streams: usize) -> Session {
        Session {
            target,
            flows: u64::from(flows.max(1)),
            flow: u64::from(flow),
            streams: (streams as u64).max(1),
            frontier: 0,
            outcomes: VecDeque::new(),
            anchor: None,
            run: Vec::new(),
        }
    }

    /// The target's probe that is probe `n` of this session.
    pub fn probe_id(&self, n: u64) -> ProbeId {
        ProbeId {
            target: self.target,
            seq: n * self.flows + self.flow + 1,
        }
    }

    /// Probe `n` (the next one: `n` counts from 0 without gaps) left.
    pub fn sent(&mut self, n: u64) {
        debug_assert_eq!(n, self.frontier + self.outcomes.len() as u64);
        self.outcomes.push_back(Outcome::Pending);
    }

    /// Probe `n` was answered with the reflector's number `reflector_seq`; duplicates and late
    /// answers (after the probe timed out) change nothing.
    pub fn answered(&mut self, n: u64, reflector_seq: u32, out: &mut Vec<LossPlacement>) {
        self.settle(n, Outcome::Answered(reflector_seq), out);
    }

    /// Probe `n` timed out.
    pub fn lost(&mut self, n: u64, out: &mut Vec<LossPlacement>) {
        self.settle(n, Outcome::Lost, out);
    }

    /// Probe `n` was answered by an ICMP error or could not be sent.
    pub fn skipped(&mut self, n: u64, out: &mut Vec<LossPlacement>) {
        self.settle(n, Outcome::Skipped, out);
    }

    fn settle(&mut self, n: u64, outcome: Outcome, out: &mut Vec<LossPlacement>) {
        let Some(i) = n.checked_sub(self.frontier) else {
            return;
        };
        match self.outcomes.get_mut(i as usize) {
            Some(o @ Outcome::Pending) => *o = outcome,
            _ => return,
        }
        self.advance(out);
    }

    /// Walks the settled probes at the front in order, placing each run its answer closes.
    fn advance(&mut self, out: &mut Vec<LossPlacement>) {
        while let Some(&o) = self.outcomes.front() {
            let n = self.frontier;
            match o {
                Outcome::Pending => break,
                Outcome::Skipped => {}
                Outcome::Lost => {
                    let id = self.probe_id(n);
                    let stream = ((id.seq - 1) % self.streams) as usize;
                    match self.run.iter_mut().find(|r| r.stream == stream) {
                        Some(r) => r.lost += 1,
                        None => self.run.push(StreamRun {
                            stream,
                            first: id,
                            lost: 1,
                        }),
                    }
                }
                Outcome::Answered(b) => {
                    self.close_run(n, b, out);
                    // A number behind the anchor's by no more than the probes between them is
                    // an answer the forward path reordered: the anchor stays. Further behind,
                    // the reflector's numbering restarted: it counts from here.
                    self.anchor = Some(match self.anchor {
                        Some((a, an))
                            if b.wrapping_sub(a) >= 1 << 31
                                && u64::from(a.wrapping_sub(b)) <= n - an =>
                        {
                            (a, an)
                        }
                        _ => (b, n),
                    });
                }
            }
            self.outcomes.pop_front();
            self.frontier += 1;
        }
    }

    /// Places the run of lost probes before answer `n`, numbered `b` by the reflector.
    fn close_run(&mut self, n: u64, b: u32, out: &mut Vec<LossPlacement>) {
        let run = std::mem::take(&mut self.run);
        let g: u64 = run.iter().map(|r| r.lost).sum();
        // The answer itself: this stream's loss is being placed.
        out.push(LossPlacement {
            id: self.probe_id(n),
            forward: 0,
            reverse: 0,
            one_stream: true,
        });
        if g == 0 {
            return;
        }
        // Answers the reflector sent between the anchor and this one (a new session's
        // numbering starts at 0: the anchor before it is −1).
        let a = self.anchor.map_or(u32::MAX, |(a, _)| a);
        let h = u64::from(b.wrapping_sub(a).wrapping_sub(1));
        if h > g {
            return;
        }
        let (forward, reverse) = (g - h, h);
        if forward == 0 || reverse == 0 || run.len() == 1 {
            // Every probe's direction is known, or they all belong to one stream.
            for r in &run {
                let share = |part: u64| if part == 0 { 0 } else { r.lost };
                out.push(LossPlacement {
                    id: r.first,
                    forward: if run.len() == 1 {
                        forward
                    } else {
                        share(forward)
                    },
                    reverse: if run.len() == 1 {
                        reverse
                    } else {
                        share(reverse)
                    },
                    one_stream: true,
                });
            }
        } else {
            out.push(LossPlacement {
                id: run[0].first,
                forward,
                reverse,
                one_stream: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays a script of (session index, outcome) in order after sending `count` probes;
    /// returns the placements with loss in them, as (seq, forward, reverse, one_stream).
    fn play(
        session: &mut Session,
        count: u64,
        script: &[(u64, Option<u32>)],
    ) -> Vec<(u64, u64, u64, bool)> {
        for n in 0..count {
            session.sent(n);
        }
        let mut out = Vec::new();
        for &(n, answer) in script {
            match answer {
                Some(r) => session.answered(n, r, &mut out),
                None => session.lost(n, &mut out),
            }
        }
        out.iter()
            .filter(|p| p.forward + p.reverse > 0)
            .map(|p| (p.id.seq, p.forward, p.reverse, p.one_stream))
            .collect()
    }

    #[test]
    fn forward_loss_leaves_no_gap_in_the_reflector_numbers() {
        let mut s = Session::new(0, 1, 0, 1);
        // Probes 1 and 2 never reached the reflector: it numbered 0, 3, 4 as 0, 1, 2.
        let placed = play(
            &mut s,
            5,
            &[
                (0, Some(0)),
                (1, None),
                (2, None),
                (3, Some(1)),
                (4, Some(2)),
            ],
        );
        assert_eq!(placed, [(2, 2, 0, true)]);
    }

    #[test]
    fn reverse_loss_leaves_a_gap() {
        let mut s = Session::new(0, 1, 0, 1);
        // The reflector answered all five; the answers to 1 and 2 were lost.
        let placed = play(
            &mut s,
            5,
            &[
                (0, Some(0)),
                (3, Some(3)),
                (1, None),
                (2, None),
                (4, Some(4)),
            ],
        );
        assert_eq!(placed, [(2, 0, 2, true)]);
        // Mixed: of 1, 2, 3 lost, one reached the reflector.
        let mut s = Session::new(0, 1, 0, 1);
        let placed = play(
            &mut s,
            5,
            &[(0, Some(0)), (1, None), (2, None), (3, None), (4, Some(2))],
        );
        assert_eq!(placed, [(2, 2, 1, true)]);
    }

    #[test]
    fn a_run_waits_for_its_probes_to_settle() {
        let mut s = Session::new(0, 1, 0, 1);
        for n in 0..4 {
            s.sent(n);
        }
        let mut out = Vec::new();
        s.answered(0, 0, &mut out);
        // 2 answered before 1 settled: nothing placed yet.
        s.answered(2, 2, &mut out);
        assert!(out.iter().all(|p| p.forward + p.reverse == 0));
        // 1's answer came after all (reordered on the way back): no loss at all.
        s.answered(1, 1, &mut out);
        assert!(out.iter().all(|p| p.forward + p.reverse == 0));
        // A duplicate and a late answer change nothing.
        s.lost(3, &mut out);
        s.answered(3, 3, &mut out);
        s.answered(2, 2, &mut out);
        assert!(out.iter().all(|p| p.forward + p.reverse == 0));
        // 3 stays unplaced: no answer after it.
        assert_eq!(s.run.iter().map(|r| r.lost).sum::<u64>(), 1);
    }

    #[test]
    fn the_first_run_assumes_a_new_session() {
        let mut s = Session::new(0, 1, 0, 1);
        // The first two probes lost on the way there: the first answer is number 0.
        assert_eq!(
            play(&mut s, 3, &[(0, None), (1, None), (2, Some(0))]),
            [(1, 2, 0, true)]
        );
        // A reflector that still counts an old session of this port: unplaced.
        let mut s = Session::new(0, 1, 0, 1);
        assert_eq!(play(&mut s, 3, &[(0, None), (1, None), (2, Some(500))]), []);
    }

    #[test]
    fn numbers_that_do_not_add_up_place_nothing() {
        let mut s = Session::new(0, 1, 0, 1);
        // The reflector restarted (numbers back at 0) during a run.
        assert_eq!(
            play(
                &mut s,
                4,
                &[(0, Some(7)), (1, Some(8)), (2, None), (3, Some(0))]
            ),
            []
        );
        // After that, runs are placed from the new numbering.
        let mut out = Vec::new();
        s.sent(4);
        s.sent(5);
        s.lost(4, &mut out);
        s.answered(5, 1, &mut out);
        let lossy: Vec<_> = out.iter().filter(|p| p.forward > 0).collect();
        assert_eq!(lossy.len(), 1);
    }

    #[test]
    fn numbers_wrap() {
        let mut s = Session::new(0, 1, 0, 1);
        let top = u32::MAX - 1;
        assert_eq!(
            play(
                &mut s,
                5,
                &[
                    (0, Some(top)),
                    (1, None),
                    (2, Some(top + 1)),
                    (3, None),
                    (4, Some(1))
                ]
            ),
            [(2, 1, 0, true), (4, 0, 1, true)]
        );
    }

    #[test]
    fn forward_reordering_does_not_pull_the_anchor_back() {
        let mut s = Session::new(0, 1, 0, 1);
        // 2 overtook 1 on the way there (numbered 1, and 1 numbered 2); 3 lost on the way
        // there, 4 numbered 3.
        assert_eq!(
            play(
                &mut s,
                5,
                &[
                    (0, Some(0)),
                    (2, Some(1)),
                    (1, Some(2)),
                    (3, None),
                    (4, Some(3))
                ]
            ),
            [(4, 1, 0, true)]
        );
    }

    #[test]
    fn runs_over_several_streams() {
        // Two flows, two classes: streams 0..4, the session of flow 1 holds streams 1 and 3;
        // its probe n is the target's probe 2n + 2.
        let mut s = Session::new(3, 2, 1, 4);
        assert_eq!(s.probe_id(0).seq, 2);
        assert_eq!(s.probe_id(1).seq, 4);
        // Lost 1 (stream 3), 2 (stream 1) on the way there: each stream gets its own.
        let placed = play(
            &mut s,
            4,
            &[(0, Some(0)), (1, None), (2, None), (3, Some(1))],
        );
        assert_eq!(placed, [(4, 1, 0, true), (6, 1, 0, true)]);
        // Mixed directions over two streams: the target only.
        let mut s = Session::new(3, 2, 1, 4);
        let placed = play(
            &mut s,
            4,
            &[(0, Some(0)), (1, None), (2, None), (3, Some(2))],
        );
        assert_eq!(placed, [(4, 1, 1, false)]);
    }

    #[test]
    fn answered_probes_mark_their_stream() {
        let mut s = Session::new(0, 1, 0, 1);
        s.sent(0);
        let mut out = Vec::new();
        s.answered(0, 0, &mut out);
        assert_eq!(
            out,
            [LossPlacement {
                id: ProbeId { target: 0, seq: 1 },
                forward: 0,
                reverse: 0,
                one_stream: true
            }]
        );
    }
}
