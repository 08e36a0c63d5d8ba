//! The loop guard: datagrams from a port that answers back are not answered.
//!
//! A reflector answers whoever the source address says sent the datagram. A single spoofed
//! datagram "from" another reflector's port (or an inetd echo or chargen service) would start
//! an exchange that never ends: each side answers the other's answer, at up to the rate
//! limit, until one of them restarts. This is the UDP echo/chargen loop of CVE-1999-0103;
//! inetd guards against it the same way (by source port). So an echo socket drops requests
//! from the well-known ports of services that answer anything and from every port lreflect
//! listens on; a TWAMP socket the same, except the TWAMP port 862 and lreflect's own TWAMP
//! ports, which TWAMP-Light senders use as their source port too (862 to 862): there the
//! rate limit and `--allow` are the bound. Dropped datagrams are counted under `loop`.
#![forbid(unsafe_code)]

/// Well-known UDP ports of services that answer any datagram: echo, daytime, chargen, time.
pub const ANSWERING_PORTS: [u16; 4] = [7, 13, 19, 37];

/// The TWAMP-Light / STAMP port: a reflector answers from it, and senders may send from it.
pub const TWAMP_PORT: u16 = 862;

/// The source ports whose datagrams are not answered.
#[derive(Debug, Clone, Default)]
pub struct LoopGuard {
    ports: Vec<u16>,
}

impl LoopGuard {
    /// The guard of an echo socket: the well-known answering ports, 862, and `own`, every port
    /// lreflect listens on.
    pub fn echo(own: impl IntoIterator<Item = u16>) -> LoopGuard {
        LoopGuard::of(ANSWERING_PORTS.into_iter().chain([TWAMP_PORT]).chain(own))
    }

    /// The guard of a TWAMP socket: the well-known answering ports and `echo`, the ports of
    /// lreflect's echo sockets (not 862 or its TWAMP ports: senders use them).
    pub fn twamp(echo: impl IntoIterator<Item = u16>) -> LoopGuard {
        LoopGuard::of(ANSWERING_PORTS.into_iter().chain(echo))
    }

    fn of(ports: impl IntoIterator<Item = u16>) -> LoopGuard {
        let mut ports: Vec<u16> = ports.into_iter().collect();
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
        let echo = LoopGuard::echo([8081, 8620, 8081]);
        for p in [7, 13, 19, 37, 862, 8081, 8620] {
            assert!(echo.refuses(p), "{p}");
        }
        for p in [0, 1, 53, 123, 861, 863, 8080, 8082, 33434, 40000, 65535] {
            assert!(!echo.refuses(p), "{p}");
        }
        // TWAMP-Light senders send from 862 (or the reflector's port) too.
        let twamp = LoopGuard::twamp([8081]);
        for p in [7, 13, 19, 37, 8081] {
            assert!(twamp.refuses(p), "{p}");
        }
        for p in [862, 8620, 40000] {
            assert!(!twamp.refuses(p), "{p}");
        }
    }

    #[test]
    fn off_refuses_nothing() {
        let g = LoopGuard::off();
        assert!([7, 19, 862, 8081].iter().all(|&p| !g.refuses(p)));
    }
}
