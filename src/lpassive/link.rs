//! Link state as ifplugd judges it: an interface is up when it is administratively up and
//! has carrier, and, with `--rx-threshold`, also received more than the threshold in the
//! last interval (for receive-only taps whose carrier says nothing about the traffic).

/// Why a link is down, or which condition came back when it went up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Administratively down (`ip link set … down`).
    Admin,
    /// No carrier (cable out, or the veth peer is down).
    Carrier,
    /// Received no more than `--rx-threshold` bytes in the interval.
    RxThreshold,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Admin => "admin",
            Reason::Carrier => "carrier",
            Reason::RxThreshold => "rx_threshold",
        }
    }
}

/// What one dump says: `Ok(())` up, `Err(reason)` down with the first failing condition.
/// `rx` is `(bytes received in the interval, threshold)`, when there is a threshold.
pub fn verdict(admin: bool, carrier: bool, rx: Option<(u64, u64)>) -> Result<(), Reason> {
    if !admin {
        return Err(Reason::Admin);
    }
    if !carrier {
        return Err(Reason::Carrier);
    }
    match rx {
        Some((bytes, threshold)) if bytes <= threshold => Err(Reason::RxThreshold),
        _ => Ok(()),
    }
}

/// A change to report as a `link` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub up: bool,
    /// Down: the failing condition; up: the condition that came back.
    pub reason: Reason,
}

/// The judged state of one interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    /// `None` until a first verdict; that one is taken silently (the `new` record or the
    /// samples already show it), so the first reported change is a real one.
    state: Option<Result<(), Reason>>,
}

impl LinkState {
    pub fn up(&self) -> Option<bool> {
        self.state.map(|s| s.is_ok())
    }

    /// Applies a verdict; a change of up/down (not of the reason while down) is returned.
    pub fn update(&mut self, v: Result<(), Reason>) -> Option<Change> {
        let before = self.state.replace(v)?;
        match (before, v) {
            (Ok(()), Err(reason)) => Some(Change { up: false, reason }),
            (Err(reason), Ok(())) => Some(Change { up: true, reason }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_goes_before_carrier_before_traffic() {
        assert_eq!(verdict(false, false, Some((0, 10))), Err(Reason::Admin));
        assert_eq!(verdict(true, false, Some((99, 10))), Err(Reason::Carrier));
        assert_eq!(
            verdict(true, true, Some((10, 10))),
            Err(Reason::RxThreshold)
        );
        assert_eq!(verdict(true, true, Some((11, 10))), Ok(()));
        assert_eq!(verdict(true, true, None), Ok(()));
    }

    #[test]
    fn the_first_verdict_is_silent_then_only_flips_are_changes() {
        let mut s = LinkState::default();
        assert_eq!(s.up(), None);
        assert_eq!(s.update(Err(Reason::RxThreshold)), None);
        assert_eq!(s.up(), Some(false));
        assert_eq!(s.update(Err(Reason::Carrier)), None, "still down");
        assert_eq!(
            s.update(Ok(())),
            Some(Change {
                up: true,
                reason: Reason::Carrier
            }),
            "up names what came back"
        );
        assert_eq!(s.update(Ok(())), None);
        assert_eq!(
            s.update(Err(Reason::Admin)),
            Some(Change {
                up: false,
                reason: Reason::Admin
            })
        );
    }
}
