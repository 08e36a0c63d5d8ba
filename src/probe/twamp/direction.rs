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
//!
//! ludp against lreflect reads the same numbers from the counts lreflect stamps into each answer
//! ([`crate::wire::ludp_payload`]): the flow's probes it received, less one, is the answer's number.
//! Those counts also include the probes the reflector refused (its rate limit), with a second
//! count of the refusals: of the `h` probes of a run that reached the reflector, the growth of
//! that count were refused there (`refused`, the reflector's doing), the rest lost on the way
//! back.
//!
//! [`Tracker`] keeps the sessions of every target of a prober, shared by ltwamp and ludp.

use crate::probe::{LossPlacement, ProbeEvent, ProbeId};
use crate::target::Target;
use std::collections::VecDeque;

/// How a probe of a session ended, as far as placing loss cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pending,
    /// Answered; the reflector's sequence number of the answer and, when it says, its count of
    /// the session's refused probes.
    Answered(u32, Option<u32>),
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
    /// [`Session::advance`]), that probe's session index and the reflector's count of refusals
    /// at it; `None` before the first answer.
    anchor: Option<(u32, u64, Option<u32>)>,
    /// Since [`Session::resync`], no answer came: the anchor is unknown, not a new session's.
    resynced: bool,
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
            resynced: false,
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

    /// The reflector numbered packets that were not this session's probes (a trace round's
    /// probes, which reach it on the flow's own 5-tuple): the run open now and the run before
    /// the next answer are left unplaced, and that answer anchors the numbering afresh. Call it
    /// with no probe in flight.
    pub fn resync(&mut self) {
        self.run.clear();
        self.anchor = None;
        self.resynced = true;
    }

    /// Probe `n` (the next one: `n` counts from 0 without gaps) left.
    pub fn sent(&mut self, n: u64) {
        debug_assert_eq!(n, self.frontier + self.outcomes.len() as u64);
        self.outcomes.push_back(Outcome::Pending);
    }

    /// Probe `n` was answered with the reflector's number `reflector_seq` (and its count of
    /// refused probes, when it keeps one); duplicates and late answers (after the probe timed
    /// out) change nothing.
    pub fn answered(
        &mut self,
        n: u64,
        reflector_seq: u32,
        refused: Option<u32>,
        out: &mut Vec<LossPlacement>,
    ) {
        self.settle(n, Outcome::Answered(reflector_seq, refused), out);
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
                Outcome::Answered(b, refused) => {
                    self.close_run(n, b, refused, out);
                    self.resynced = false;
                    // A number behind the anchor's by no more than the probes between them is
                    // an answer the forward path reordered: the anchor stays. Further behind,
                    // the reflector's numbering restarted: it counts from here.
                    self.anchor = Some(match self.anchor {
                        Some((a, an, ar))
                            if b.wrapping_sub(a) >= 1 << 31
                                && u64::from(a.wrapping_sub(b)) <= n - an =>
                        {
                            (a, an, ar)
                        }
                        _ => (b, n, refused),
                    });
                }
            }
            self.outcomes.pop_front();
            self.frontier += 1;
        }
    }

    /// Places the run of lost probes before answer `n`, numbered `b` by the reflector, which
    /// had refused `refused_b` of the session's probes by then (when it says).
    fn close_run(&mut self, n: u64, b: u32, refused_b: Option<u32>, out: &mut Vec<LossPlacement>) {
        let run = std::mem::take(&mut self.run);
        let g: u64 = run.iter().map(|r| r.lost).sum();
        // The answer itself: this stream's loss is being placed.
        out.push(LossPlacement {
            id: self.probe_id(n),
            forward: 0,
            reverse: 0,
            refused: refused_b.map(|_| 0),
            one_stream: true,
        });
        if g == 0 || self.resynced {
            return;
        }
        // Probes the reflector numbered between the anchor and this one (a new session's
        // numbering starts at 0: the anchor before it is −1, with no refusals).
        let (a, refused_a) = self.anchor.map_or((u32::MAX, Some(0)), |(a, _, r)| (a, r));
        let h = u64::from(b.wrapping_sub(a).wrapping_sub(1));
        // Of those, the ones the reflector refused.
        let refused = match (refused_a, refused_b) {
            (Some(ra), Some(rb)) => Some(u64::from(rb.wrapping_sub(ra))),
            _ => None,
        };
        if h > g || refused.is_some_and(|r| r > h) {
            return;
        }
        let parts = [g - h, h - refused.unwrap_or(0), refused.unwrap_or(0)];
        let placement = |id, [forward, reverse, r]: [u64; 3], one_stream| LossPlacement {
            id,
            forward,
            reverse,
            refused: refused.map(|_| r),
            one_stream,
        };
        if run.len() == 1 {
            out.push(placement(run[0].first, parts, true));
        } else if parts.iter().filter(|&&p| p > 0).count() == 1 {
            // Every probe's fate is known: each stream gets its own.
            for r in &run {
                let share = parts.map(|p| if p == 0 { 0 } else { r.lost });
                out.push(placement(r.first, share, true));
            }
        } else {
            out.push(placement(run[0].first, parts, false));
        }
    }
}

/// What a prober keeps per target to place its loss.
#[derive(Debug, Clone)]
struct Peer {
    /// One session per flow; empty when the target's loss is not placed.
    sessions: Vec<Session>,
    /// The reflector is known to number its answers (or count its flows).
    counting: bool,
    /// Placements while it is not known to, summed per stream.
    held: Vec<LossPlacement>,
}

/// The sessions of every target of a prober (ltwamp, ludp): feeds them with the probes' fates
/// and hands the placements on as [`ProbeEvent::Placed`], once the reflector is known to
/// number its answers; until then they are held (summed per stream, so memory stays bounded),
/// and never handed on if it never shows it does.
#[derive(Debug, Clone)]
pub struct Tracker {
    flows: u64,
    streams: u64,
    peers: Vec<Peer>,
    /// Placements found outside a drain (after a timeout or a failed send).
    pending: Vec<ProbeEvent>,
}

impl Tracker {
    /// Sessions for every target with `flows` flows and `streams` streams, unless `enabled` is
    /// false; `counting`: the reflectors are known to number their answers from the start.
    /// A reflector listed twice (same address and port) sees the probes of both targets in one
    /// session per flow: its numbers say nothing about either, so neither is tracked.
    pub fn new(
        targets: &[Target],
        flows: u16,
        streams: usize,
        enabled: bool,
        counting: bool,
    ) -> Tracker {
        let peers = targets
            .iter()
            .enumerate()
            .map(|(t, target)| {
                let shared = targets.iter().enumerate().any(|(o, other)| {
                    o != t
                        && other.port == target.port
                        && other.addr.to_canonical() == target.addr.to_canonical()
                });
                Peer {
                    sessions: if enabled && !shared {
                        (0..flows)
                            .map(|f| Session::new(t, flows, f, streams))
                            .collect()
                    } else {
                        Vec::new()
                    },
                    counting,
                    held: Vec::new(),
                }
            })
            .collect();
        Tracker {
            flows: u64::from(flows.max(1)),
            streams: (streams as u64).max(1),
            peers,
            pending: Vec::new(),
        }
    }

    /// Whether target `t`'s loss is placed at all.
    pub fn tracks(&self, t: usize) -> bool {
        self.peers.get(t).is_some_and(|p| !p.sessions.is_empty())
    }

    /// (flow, session index) of a target's probe `seq`.
    pub fn session_of(&self, seq: u64) -> (usize, u64) {
        (((seq - 1) % self.flows) as usize, (seq - 1) / self.flows)
    }

    /// Probe `id` left (or is about to: a failed send is [`Tracker::unanswered`] next).
    pub fn sent(&mut self, id: ProbeId) {
        let (flow, n) = self.session_of(id.seq);
        if let Some(s) = self
            .peers
            .get_mut(id.target)
            .and_then(|p| p.sessions.get_mut(flow))
        {
            s.sent(n);
        }
    }

    /// Hands placements on, or holds them while the reflector is not known to count.
    fn route(&mut self, target: usize, placed: Vec<LossPlacement>, out: &mut Vec<ProbeEvent>) {
        let streams = self.streams;
        let peer = &mut self.peers[target];
        if peer.counting {
            out.extend(placed.into_iter().map(ProbeEvent::Placed));
            return;
        }
        for p in placed {
            let key = |q: &LossPlacement| q.one_stream.then(|| (q.id.seq - 1) % streams);
            match peer.held.iter_mut().find(|q| key(q) == key(&p)) {
                Some(q) => {
                    q.forward += p.forward;
                    q.reverse += p.reverse;
                    q.refused = match (q.refused, p.refused) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                }
                None => peer.held.push(p),
            }
        }
    }

    /// Probe `id` was answered with the reflector's number `reflector_seq` (and its count of
    /// refusals, when it keeps one); `shows_counting`: this answer shows the reflector numbers
    /// its answers itself, so what was held is handed on now.
    pub fn answered(
        &mut self,
        id: ProbeId,
        reflector_seq: u32,
        refused: Option<u32>,
        shows_counting: bool,
        out: &mut Vec<ProbeEvent>,
    ) {
        let (flow, n) = self.session_of(id.seq);
        let Some(peer) = self.peers.get_mut(id.target) else {
            return;
        };
        if peer.sessions.is_empty() {
            return;
        }
        if shows_counting && !peer.counting {
            peer.counting = true;
            out.extend(peer.held.drain(..).map(ProbeEvent::Placed));
        }
        let mut placed = Vec::new();
        peer.sessions[flow].answered(n, reflector_seq, refused, &mut placed);
        self.route(id.target, placed, out);
    }

    /// Probe `id` timed out (`lost`), or was answered by an error, could not be sent or was
    /// answered without the reflector's numbers (not `lost`: left out of the runs).
    pub fn unanswered(&mut self, id: ProbeId, lost: bool) {
        let (flow, n) = self.session_of(id.seq);
        let Some(session) = self
            .peers
            .get_mut(id.target)
            .and_then(|p| p.sessions.get_mut(flow))
        else {
            return;
        };
        let mut placed = Vec::new();
        if lost {
            session.lost(n, &mut placed);
        } else {
            session.skipped(n, &mut placed);
        }
        let mut out = std::mem::take(&mut self.pending);
        self.route(id.target, placed, &mut out);
        self.pending = out;
    }

    /// Every session's [`Session::resync`]: after a trace round, whose probes the reflectors
    /// may have numbered.
    pub fn resync(&mut self) {
        for s in self.peers.iter_mut().flat_map(|p| p.sessions.iter_mut()) {
            s.resync();
        }
    }

    /// Moves the placements found outside a drain into `out`.
    pub fn take_pending(&mut self, out: &mut Vec<ProbeEvent>) {
        out.append(&mut self.pending);
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
                Some(r) => session.answered(n, r, None, &mut out),
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
        s.answered(0, 0, None, &mut out);
        // 2 answered before 1 settled: nothing placed yet.
        s.answered(2, 2, None, &mut out);
        assert!(out.iter().all(|p| p.forward + p.reverse == 0));
        // 1's answer came after all (reordered on the way back): no loss at all.
        s.answered(1, 1, None, &mut out);
        assert!(out.iter().all(|p| p.forward + p.reverse == 0));
        // A duplicate and a late answer change nothing.
        s.lost(3, &mut out);
        s.answered(3, 3, None, &mut out);
        s.answered(2, 2, None, &mut out);
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
        s.answered(5, 1, None, &mut out);
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
        s.answered(0, 0, None, &mut out);
        assert_eq!(
            out,
            [LossPlacement {
                id: ProbeId { target: 0, seq: 1 },
                forward: 0,
                reverse: 0,
                refused: None,
                one_stream: true
            }]
        );
    }

    /// Plays (session index, answer as (number, refusals)) after sending `count` probes;
    /// returns the placements with loss in them, as (seq, forward, reverse, refused).
    fn play_counted(
        session: &mut Session,
        count: u64,
        script: &[(u64, Option<(u32, u32)>)],
    ) -> Vec<(u64, u64, u64, Option<u64>)> {
        for n in 0..count {
            session.sent(n);
        }
        let mut out = Vec::new();
        for &(n, answer) in script {
            match answer {
                Some((r, refused)) => session.answered(n, r, Some(refused), &mut out),
                None => session.lost(n, &mut out),
            }
        }
        out.iter()
            .filter(|p| p.forward + p.reverse + p.refused.unwrap_or(0) > 0)
            .map(|p| (p.id.seq, p.forward, p.reverse, p.refused))
            .collect()
    }

    #[test]
    fn refusals_are_told_apart_from_reverse_loss() {
        // lreflect's counts: the answer to probe 4 says 5 received (number 4), 1 refused.
        // Of 1, 2, 3 lost, three reached it; one it refused, two were lost on the way back.
        let mut s = Session::new(0, 1, 0, 1);
        assert_eq!(
            play_counted(
                &mut s,
                5,
                &[
                    (0, Some((0, 0))),
                    (1, None),
                    (2, None),
                    (3, None),
                    (4, Some((4, 1)))
                ]
            ),
            [(2, 0, 2, Some(1))]
        );
        // A new flow: refusals counted from 0 before the first answer.
        let mut s = Session::new(0, 1, 0, 1);
        assert_eq!(
            play_counted(&mut s, 3, &[(0, None), (1, None), (2, Some((2, 2)))]),
            [(1, 0, 0, Some(2))]
        );
        // More refusals than probes that reached it: the numbers do not add up.
        let mut s = Session::new(0, 1, 0, 1);
        assert_eq!(
            play_counted(
                &mut s,
                3,
                &[(0, Some((0, 0))), (1, None), (2, Some((2, 5)))]
            ),
            []
        );
        // Every answer says none refused: the placements say 0, not nothing.
        let mut s = Session::new(0, 1, 0, 1);
        assert_eq!(
            play_counted(
                &mut s,
                3,
                &[(0, Some((0, 7))), (1, None), (2, Some((1, 7)))]
            ),
            [(2, 1, 0, Some(0))]
        );
    }

    #[test]
    fn after_a_resync_the_next_answer_anchors_afresh() {
        let mut s = Session::new(0, 1, 0, 1);
        // Probe 1 lost; then a trace round whose 5 probes the reflector numbered 2..6.
        let mut out = Vec::new();
        for n in 0..2 {
            s.sent(n);
        }
        s.answered(0, 0, None, &mut out);
        s.lost(1, &mut out);
        s.resync();
        // Probe 2 lost, 3 answered as number 8: the run before it is not placed (the gap
        // counts trace probes), nor is the one that was open.
        for n in 2..6 {
            s.sent(n);
        }
        s.lost(2, &mut out);
        s.answered(3, 8, None, &mut out);
        assert!(out.iter().all(|p| p.forward + p.reverse == 0), "{out:?}");
        // From there on, as before: 4 lost on the way there, 5 numbered 9.
        s.lost(4, &mut out);
        s.answered(5, 9, None, &mut out);
        let placed: Vec<_> = out
            .iter()
            .filter(|p| p.forward + p.reverse > 0)
            .map(|p| (p.id.seq, p.forward, p.reverse))
            .collect();
        assert_eq!(placed, [(5, 1, 0)]);
        // A new session resynced before its first probe does not take the first answer's
        // number for a count from 0.
        let mut s = Session::new(0, 1, 0, 1);
        s.resync();
        assert_eq!(play(&mut s, 3, &[(0, None), (1, None), (2, Some(6))]), []);
    }

    #[test]
    fn refusal_counts_wrap() {
        let mut s = Session::new(0, 1, 0, 1);
        assert_eq!(
            play_counted(
                &mut s,
                3,
                &[(0, Some((9, u32::MAX))), (1, None), (2, Some((11, 0)))]
            ),
            [(2, 0, 0, Some(1))]
        );
    }

    fn target(addr: &str, port: u16) -> Target {
        Target {
            name: addr.into(),
            addr: addr.parse().unwrap(),
            scope_id: 0,
            port,
            tags: None,
        }
    }

    #[test]
    fn the_tracker_holds_placements_until_the_reflector_counts() {
        let targets = [target("192.0.2.1", 8081), target("192.0.2.2", 8081)];
        let mut t = Tracker::new(&targets, 1, 1, true, false);
        let id = |seq| ProbeId { target: 0, seq };
        for seq in 1..=3 {
            t.sent(id(seq));
        }
        let mut out = Vec::new();
        t.answered(id(1), 0, None, false, &mut out);
        t.unanswered(id(2), true);
        t.take_pending(&mut out);
        assert!(out.is_empty(), "{out:?}");
        t.answered(id(3), 1, None, true, &mut out);
        let placed: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                ProbeEvent::Placed(p) if p.forward > 0 => Some((p.id.seq, p.forward)),
                _ => None,
            })
            .collect();
        assert_eq!(placed, [(2, 1)]);
        // Listed twice: neither is tracked.
        let twice = [targets[0].clone(), targets[0].clone(), targets[1].clone()];
        let t = Tracker::new(&twice, 2, 2, true, true);
        assert_eq!(
            (t.tracks(0), t.tracks(1), t.tracks(2)),
            (false, false, true)
        );
        assert!(!Tracker::new(&targets, 1, 1, false, true).tracks(0));
    }
}
