//! The interfaces of a run, tracked by ifindex from dump to dump: samples, renames,
//! appearances and disappearances, link state changes, alerts, and the final totals.
//!
//! No I/O: each dump goes in as a list of links, records come out as bodies. The link speed
//! is read through a function the caller passes (sysfs in the tool, a stub in tests).

use super::counters::{delta, drops_pps, errors_pps, Rates, Totals};
use super::link::{verdict, LinkState};
use super::select::Selection;
use crate::alert::step;
use crate::alert::Transition;
use crate::netlink::parse::{oper_name, Counters, Link};
use crate::record::{Body, IfaceAlert, IfaceCounters, IfaceSummary, LinkChange, Sample};
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

/// What a run watches and reports.
#[derive(Debug, Clone)]
pub struct Config {
    pub selection: Selection,
    /// `--rx-threshold`: bytes an interval must exceed for the link to count as up.
    pub rx_threshold: Option<u64>,
    pub alert_errors: Option<f64>,
    pub alert_drops: Option<f64>,
    /// No `sample` records (`-q`).
    pub quiet: bool,
    /// The sampling interval's name, for alerts' `window`.
    pub window: String,
}

struct Iface {
    name: String,
    index: u32,
    /// The last reading and when it was taken.
    last: Option<(Counters, Instant)>,
    speed: Option<u32>,
    carrier: bool,
    link: LinkState,
    totals: Totals,
    errors_firing: bool,
    drops_firing: bool,
}

/// Every interface the run has watched.
pub struct Monitor {
    cfg: Config,
    speed: fn(&str) -> Option<u32>,
    live: BTreeMap<u32, Iface>,
    gone: Vec<Iface>,
    dumps: u64,
    seen: HashSet<u32>,
}

fn counters(c: &Counters) -> IfaceCounters {
    IfaceCounters {
        rx_bytes: c.rx_bytes,
        tx_bytes: c.tx_bytes,
        rx_packets: c.rx_packets,
        tx_packets: c.tx_packets,
        rx_errors: c.rx_errors,
        tx_errors: c.tx_errors,
        rx_dropped: c.rx_dropped,
        tx_dropped: c.tx_dropped,
        rx_missed: c.rx_missed,
        multicast: c.multicast,
        collisions: c.collisions,
    }
}

fn change(event: &str, ifc: &Iface, link: Option<&Link>) -> LinkChange {
    LinkChange {
        event: event.into(),
        ifname: ifc.name.clone(),
        ifindex: ifc.index,
        old_ifname: None,
        reason: None,
        oper: link.map(|l| oper_name(l.oper).to_string()),
        carrier: link.map(|l| l.carrier),
        admin: link.map(|l| l.admin_up()),
    }
}

impl Monitor {
    pub fn new(cfg: Config, speed: fn(&str) -> Option<u32>) -> Monitor {
        Monitor {
            cfg,
            speed,
            live: BTreeMap::new(),
            gone: Vec::new(),
            dumps: 0,
            seen: HashSet::new(),
        }
    }

    /// Interfaces watched right now.
    pub fn watching(&self) -> usize {
        self.live.len()
    }

    /// Takes one dump, read at `now`; appends the records it gives to `out`. The first dump
    /// only sets the baselines: interfaces there from the start are not reported as new.
    pub fn observe(&mut self, links: &[Link], now: Instant, out: &mut Vec<Body>) {
        let first = self.dumps == 0;
        self.dumps += 1;
        self.seen.clear();
        for link in links {
            self.seen.insert(link.index);
            if let Some(ifc) = self.live.get_mut(&link.index) {
                if ifc.name != link.name {
                    let mut c = change("rename", ifc, Some(link));
                    c.ifname = link.name.clone();
                    c.old_ifname = Some(std::mem::replace(&mut ifc.name, link.name.clone()));
                    out.push(Body::LinkState(c));
                    ifc.speed = (self.speed)(&ifc.name);
                }
                sample(&self.cfg, self.speed, ifc, link, now, out);
            } else if self.cfg.selection.matches(link) {
                let mut ifc = Iface {
                    name: link.name.clone(),
                    index: link.index,
                    last: link.counters.map(|c| (c, now)),
                    speed: (self.speed)(&link.name),
                    carrier: link.carrier,
                    link: LinkState::default(),
                    totals: Totals::default(),
                    errors_firing: false,
                    drops_firing: false,
                };
                // With a threshold the state needs an interval's traffic: judge it then.
                if self.cfg.rx_threshold.is_none() {
                    ifc.link
                        .update(verdict(link.admin_up(), link.carrier, None));
                }
                if !first {
                    out.push(Body::LinkState(change("new", &ifc, Some(link))));
                }
                self.live.insert(link.index, ifc);
            }
        }
        let vanished: Vec<u32> = self
            .live
            .keys()
            .filter(|i| !self.seen.contains(i))
            .copied()
            .collect();
        for index in vanished {
            if let Some(ifc) = self.live.remove(&index) {
                out.push(Body::LinkState(change("del", &ifc, None)));
                self.gone.push(ifc);
            }
        }
    }

    /// One `iface_summary` per interface that gave at least one sample, by ifindex (an
    /// interface that went and one that came back under the same index both appear).
    pub fn summaries(&self) -> Vec<Body> {
        let mut all: Vec<&Iface> = self.gone.iter().chain(self.live.values()).collect();
        all.sort_by_key(|i| i.index);
        all.into_iter()
            .filter(|i| i.totals.samples > 0)
            .map(|i| {
                let t = &i.totals;
                let avg = t.average();
                Body::IfaceSummary(IfaceSummary {
                    ifname: i.name.clone(),
                    ifindex: i.index,
                    window: "total".into(),
                    samples: t.samples,
                    resets: t.resets,
                    duration_s: t.secs,
                    counters: counters(&t.sum),
                    rx_bps: avg.rx_bps,
                    tx_bps: avg.tx_bps,
                    rx_pps: avg.rx_pps,
                    tx_pps: avg.tx_pps,
                    peak_rx_bps: t.peak.rx_bps,
                    peak_tx_bps: t.peak.tx_bps,
                    peak_rx_pps: t.peak.rx_pps,
                    peak_tx_pps: t.peak.tx_pps,
                })
            })
            .collect()
    }
}

/// A tracked interface in a new dump: the sample, link state and alerts.
fn sample(
    cfg: &Config,
    speed: fn(&str) -> Option<u32>,
    ifc: &mut Iface,
    link: &Link,
    now: Instant,
    out: &mut Vec<Body>,
) {
    if link.carrier != ifc.carrier {
        // Drivers renegotiate the speed when the carrier comes back.
        ifc.carrier = link.carrier;
        ifc.speed = speed(&ifc.name);
    }
    let (Some(cur), Some((prev, then))) = (link.counters, ifc.last) else {
        ifc.last = link.counters.map(|c| (c, now));
        if cfg.rx_threshold.is_none() {
            judge(ifc, link, None, out);
        }
        return;
    };
    ifc.last = Some((cur, now));
    let secs = now.saturating_duration_since(then).as_secs_f64();
    let d = delta(&prev, &cur);
    ifc.totals.add(&d, secs);
    if !cfg.quiet {
        let r = Rates::of(&d.counters, secs);
        out.push(Body::Sample(Sample {
            ifname: ifc.name.clone(),
            ifindex: ifc.index,
            interval_s: secs,
            oper: oper_name(link.oper).into(),
            carrier: link.carrier,
            admin: link.admin_up(),
            mtu: link.mtu,
            speed_mbps: ifc.speed,
            counters: counters(&d.counters),
            rx_bps: r.rx_bps,
            tx_bps: r.tx_bps,
            rx_pps: r.rx_pps,
            tx_pps: r.tx_pps,
            reset: d.reset.then_some(true),
        }));
    }
    judge(
        ifc,
        link,
        cfg.rx_threshold.map(|t| (d.counters.rx_bytes, t)),
        out,
    );
    let mut transitions = Vec::new();
    if let Some(th) = cfg.alert_errors {
        let v = errors_pps(&d.counters, secs);
        step(
            &mut ifc.errors_firing,
            "errors_pps",
            v,
            th,
            &mut transitions,
        );
    }
    if let Some(th) = cfg.alert_drops {
        let v = drops_pps(&d.counters, secs);
        step(&mut ifc.drops_firing, "drops_pps", v, th, &mut transitions);
    }
    for Transition {
        state,
        metric,
        value,
        threshold,
    } in transitions
    {
        out.push(Body::IfaceAlert(IfaceAlert {
            state,
            target: ifc.name.clone(),
            ifname: ifc.name.clone(),
            ifindex: ifc.index,
            metric: metric.into(),
            value,
            threshold,
            window: cfg.window.clone(),
        }));
    }
}

fn judge(ifc: &mut Iface, link: &Link, rx: Option<(u64, u64)>, out: &mut Vec<Body>) {
    if let Some(ch) = ifc.link.update(verdict(link.admin_up(), link.carrier, rx)) {
        let mut c = change(if ch.up { "up" } else { "down" }, ifc, Some(link));
        c.reason = Some(ch.reason.name().into());
        out.push(Body::LinkState(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::AlertState;
    use std::time::Duration;

    fn cfg(rx_threshold: Option<u64>) -> Config {
        Config {
            selection: Selection::new(&[], false).unwrap(),
            rx_threshold,
            alert_errors: Some(1.0),
            alert_drops: None,
            quiet: false,
            window: "1s".into(),
        }
    }

    fn link(index: u32, name: &str, carrier: bool, rx_bytes: u64, rx_errors: u64) -> Link {
        Link {
            index,
            flags: 0x1003,
            name: name.into(),
            mtu: Some(1500),
            oper: Some(if carrier { 6 } else { 3 }),
            carrier,
            counters: Some(Counters {
                rx_bytes,
                rx_packets: rx_bytes / 100,
                rx_errors,
                ..Counters::default()
            }),
        }
    }

    fn lo() -> Link {
        Link {
            flags: 0x49,
            ..link(1, "lo", true, 0, 0)
        }
    }

    struct Run {
        m: Monitor,
        t0: Instant,
        k: u32,
    }

    impl Run {
        fn new(cfg: Config) -> Run {
            Run {
                m: Monitor::new(cfg, |_| Some(10000)),
                t0: Instant::now(),
                k: 0,
            }
        }
        fn dump(&mut self, links: &[Link]) -> Vec<Body> {
            let mut out = Vec::new();
            self.m.observe(
                links,
                self.t0 + Duration::from_secs(self.k.into()),
                &mut out,
            );
            self.k += 1;
            out
        }
    }

    fn events(out: &[Body]) -> Vec<String> {
        out.iter()
            .filter_map(|b| match b {
                Body::LinkState(c) => Some(format!(
                    "{} {} {}",
                    c.event,
                    c.ifname,
                    c.reason.as_deref().unwrap_or("-")
                )),
                _ => None,
            })
            .collect()
    }

    fn samples(out: &[Body]) -> Vec<&Sample> {
        out.iter()
            .filter_map(|b| match b {
                Body::Sample(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn samples_are_deltas_per_interval_and_loopback_is_left_out() {
        let mut r = Run::new(cfg(None));
        assert!(r.dump(&[lo(), link(2, "eth0", true, 1000, 0)]).is_empty());
        let out = r.dump(&[lo(), link(2, "eth0", true, 1800, 0)]);
        let s = samples(&out);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].ifname.as_str(), s[0].counters.rx_bytes),
            ("eth0", 800)
        );
        assert_eq!((s[0].rx_bps, s[0].interval_s), (6400.0, 1.0));
        assert_eq!(
            (s[0].oper.as_str(), s[0].speed_mbps, s[0].reset),
            ("up", Some(10000), None)
        );
    }

    #[test]
    fn a_reset_is_marked_and_never_wraps() {
        let mut r = Run::new(cfg(None));
        r.dump(&[link(2, "eth0", true, 1_000_000, 0)]);
        let out = r.dump(&[link(2, "eth0", true, 300, 0)]);
        let s = samples(&out);
        assert_eq!((s[0].counters.rx_bytes, s[0].reset), (300, Some(true)));
        let out = r.dump(&[link(2, "eth0", true, 500, 0)]);
        assert_eq!(samples(&out)[0].counters.rx_bytes, 200);
        let sum = r.m.summaries();
        let Body::IfaceSummary(s) = &sum[0] else {
            panic!()
        };
        assert_eq!((s.samples, s.resets, s.counters.rx_bytes), (2, 1, 500));
    }

    #[test]
    fn renames_keep_history_and_appear_disappear_once() {
        let mut r = Run::new(cfg(None));
        r.dump(&[link(2, "eth0", true, 0, 0)]);
        let out = r.dump(&[link(2, "wan0", true, 100, 0), link(3, "eth0", true, 5, 0)]);
        assert_eq!(events(&out), ["rename wan0 -", "new eth0 -"]);
        assert_eq!(
            samples(&out)[0].counters.rx_bytes,
            100,
            "no new baseline on rename"
        );
        let out = r.dump(&[link(3, "eth0", true, 9, 0)]);
        assert_eq!(events(&out), ["del wan0 -"]);
        assert!(events(&r.dump(&[link(3, "eth0", true, 9, 0)])).is_empty());
        let names: Vec<(String, u32)> =
            r.m.summaries()
                .iter()
                .map(|b| match b {
                    Body::IfaceSummary(s) => (s.ifname.clone(), s.ifindex),
                    _ => panic!(),
                })
                .collect();
        assert_eq!(names, [("wan0".into(), 2), ("eth0".into(), 3)]);
    }

    #[test]
    fn carrier_and_admin_changes_are_link_records() {
        let mut r = Run::new(cfg(None));
        r.dump(&[link(2, "eth0", true, 0, 0)]);
        assert_eq!(
            events(&r.dump(&[link(2, "eth0", false, 0, 0)])),
            ["down eth0 carrier"]
        );
        assert!(events(&r.dump(&[link(2, "eth0", false, 0, 0)])).is_empty());
        assert_eq!(
            events(&r.dump(&[link(2, "eth0", true, 0, 0)])),
            ["up eth0 carrier"]
        );
        let mut down = link(2, "eth0", false, 0, 0);
        down.flags &= !1;
        assert_eq!(events(&r.dump(&[down])), ["down eth0 admin"]);
    }

    #[test]
    fn rx_threshold_judges_receive_only_links_by_traffic() {
        let mut r = Run::new(cfg(Some(1000)));
        r.dump(&[link(2, "tap0", true, 0, 0)]);
        assert!(
            events(&r.dump(&[link(2, "tap0", true, 500, 0)])).is_empty(),
            "quiet from the start"
        );
        assert_eq!(
            events(&r.dump(&[link(2, "tap0", true, 5000, 0)])),
            ["up tap0 rx_threshold"]
        );
        assert_eq!(
            events(&r.dump(&[link(2, "tap0", true, 5100, 0)])),
            ["down tap0 rx_threshold"]
        );
    }

    #[test]
    fn error_alerts_fire_and_resolve() {
        let mut r = Run::new(cfg(None));
        r.dump(&[link(2, "eth0", true, 0, 0)]);
        let out = r.dump(&[link(2, "eth0", true, 0, 5)]);
        let alerts: Vec<&IfaceAlert> = out
            .iter()
            .filter_map(|b| match b {
                Body::IfaceAlert(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (alerts[0].state, alerts[0].metric.as_str(), alerts[0].value),
            (AlertState::Firing, "errors_pps", 5.0)
        );
        let still = r.dump(&[link(2, "eth0", true, 0, 8)]);
        assert!(
            !still.iter().any(|b| matches!(b, Body::IfaceAlert(_))),
            "no repeat"
        );
        let out = r.dump(&[link(2, "eth0", true, 0, 8)]);
        assert!(out
            .iter()
            .any(|b| matches!(b, Body::IfaceAlert(a) if a.state == AlertState::Resolved)));
    }
}
