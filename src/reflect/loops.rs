//! The loop guard: datagrams from a port that answers back are not answered.
//!
//! A reflector answers whoever the source address says sent the datagram. A single spoofed
//! datagram "from" another reflector's port (or an inetd echo or chargen service) would start
//! an exchange that never ends: each side answers the other's answer, at up to the rate
//! limit, until one of them restarts. This is the UDP echo/chargen loop of CVE-1999-0103;
//! inetd guards against it the same way (by source port). So requests from the ports lreflect
//! itself listens on, and from the well-known ports of services that answer anything, are
//! dropped and counted under `loop`.

/// Well-known UDP ports of services that answer any datagram: echo, daytime, chargen, time
/// and TWAMP-Light / STAMP reflectors.
pub const ANSWERING_PORTS: [u16; 5] = [7, 13, 19, 37, 862];

/// The source ports whose datagrams are not answered.
#[derive(Debug, Clone, Default)]
pub struct LoopGuard {
    ports: Vec<u16>,
}

impl LoopGuard {
    /// Guards against the well-known answering ports and `own`, the ports lreflect listens on.
    pub fn new(own: impl IntoIterator<Item = u16>) -> LoopGuard {
        let mut ports: Vec<u16> = ANSWERING_PORTS.into_iter().chain(own).collect();
        ports.sort_unstable();
        ports.dedup();
        LoopGuard { ports }
    }

    /// No guard (`--no-loop-guard`): every source port is answered.
    pub fn off() -> LoopGuard {
        LoopGuard::default()
    }

    /// Whether a datagram from source port `port` could be an answer, and so must not be
    /// answered.
    pub fn refuses(&self, port: u16) -> bool {
        self.ports.binary_search(&port).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_well_known_ports_are_refused_and_others_answered() {
        let g = LoopGuard::new([8081, 8620, 8081]);
        for p in [7, 13, 19, 37, 862, 8081, 8620] {
            assert!(g.refuses(p), "{p}");
        }
        for p in [0, 1, 53, 123, 861, 863, 8080, 8082, 33434, 40000, 65535] {
            assert!(!g.refuses(p), "{p}");
        }
    }

    #[test]
    fn off_refuses_nothing() {
        let g = LoopGuard::off();
        assert!([7, 19, 862, 8081].iter().all(|&p| !g.refuses(p)));
    }
}
