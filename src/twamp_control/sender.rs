//! `ltwamp --control`: one control connection per target, one test session per flow and DSCP
//! class on it (the flow's source port, the class as the session's Type-P descriptor),
//! Start-Sessions before the first test packet and Stop-Sessions after the last (and on a
//! signal: the run ends as at its end). The test port the server grants becomes the target's
//! port for the test packets.
#![forbid(unsafe_code)]

use super::client::{Client, ClientError, SetUp};
use super::test_packet::TestKeys;
use crate::target::Target;
use crate::wire::ntp::{Format, Timestamp};
use crate::wire::twamp_control::RequestTwSession;
use crate::wire::Family;
use anyhow::{anyhow, bail, Result};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, SystemTime};

/// How long connecting and each answer may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the sessions of every target look like.
#[derive(Debug, Clone)]
pub struct Plan {
    pub set_up: SetUp,
    /// DSCP classes; one session per class and flow (none given: DSCP 0).
    pub dscp: Vec<u8>,
    /// UDP payload bytes of the test packets.
    pub size: usize,
    /// How long the reflector waits for late packets after Stop-Sessions.
    pub timeout: Duration,
}

/// The started sessions of every target.
pub struct Controlled {
    clients: Vec<(String, Client<TcpStream>, u32)>,
    /// The test keys of each keyed session: (target, flow, DSCP class, keys). Empty in
    /// unauthenticated mode.
    pub keys: Vec<(usize, u16, u8, TestKeys)>,
}

/// Connects to each target's control port, asks for its sessions, starts them, and sets the
/// target's port to the test port granted. `sport(flow, family)`: the flow's source port.
pub fn start(
    targets: &mut [Target],
    flows: u16,
    sport: impl Fn(u16, Family) -> Option<u16>,
    plan: &Plan,
) -> Result<Controlled> {
    let mut clients = Vec::new();
    let mut keys = Vec::new();
    for (ti, t) in targets.iter_mut().enumerate() {
        let control = t.socket_addr(t.port);
        let what = |e: ClientError| anyhow!("{} ({control}): {e}", t.name);
        let stream = TcpStream::connect_timeout(&control, CONTROL_TIMEOUT).map_err(|e| {
            anyhow!(
                "{} ({control}): cannot connect to its TWAMP server: {e}",
                t.name
            )
        })?;
        stream.set_read_timeout(Some(CONTROL_TIMEOUT))?;
        stream.set_write_timeout(Some(CONTROL_TIMEOUT))?;
        let local = stream.local_addr()?;
        let mut client = Client::set_up(stream, &plan.set_up).map_err(what)?;
        let classes: Vec<u8> = if plan.dscp.is_empty() {
            vec![0]
        } else {
            plan.dscp.clone()
        };
        let mut port = None;
        let mut granted = 0u32;
        for flow in 0..flows.max(1) {
            let Some(sp) = sport(flow, Family::of(&t.addr)) else {
                continue;
            };
            for &dscp in &classes {
                let req = request(local, sp, control, dscp, plan);
                let a = client.request(&req).map_err(what)?;
                granted += 1;
                if let Some(k) = client.test_keys(&a.sid) {
                    keys.push((ti, flow, dscp, k));
                }
                match port {
                    None => port = Some(a.port),
                    Some(p) if p != a.port => bail!(
                        "{} ({control}): the server gave this target's sessions different test ports ({p}, {}); ltwamp --control sends all of a target's packets to one port",
                        t.name,
                        a.port
                    ),
                    Some(_) => {}
                }
            }
        }
        client.start().map_err(what)?;
        if let Some(p) = port {
            t.port = p;
        }
        clients.push((t.name.clone(), client, granted));
    }
    Ok(Controlled { clients, keys })
}

fn request(
    local: SocketAddr,
    sport: u16,
    control: SocketAddr,
    dscp: u8,
    plan: &Plan,
) -> RequestTwSession {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let sender: IpAddr = local.ip();
    RequestTwSession {
        sender,
        sender_port: sport,
        receiver: control.ip(),
        // Ask for the control port's number; the server says which port it is.
        receiver_port: control.port(),
        conf_sender: 0,
        conf_receiver: 0,
        schedule_slots: 0,
        packets: 0,
        sid: [0; 16],
        // The padding after the sender packet's fields: 14 bytes of them unauthenticated, 48
        // in the keyed layout.
        padding_length: plan.size.saturating_sub(if plan.set_up.mode.ciphered() {
            super::test_packet::SENDER_LEN
        } else {
            crate::wire::twamp::SENDER_MIN_LEN
        }) as u32,
        start_time: Timestamp::from_unix_ns(now, Format::Ntp),
        timeout: Timestamp {
            secs: plan.timeout.as_secs() as u32,
            frac: ((u64::from(plan.timeout.subsec_nanos()) << 32) / 1_000_000_000) as u32,
        },
        type_p: RequestTwSession::type_p_of_dscp(dscp),
    }
}

impl Controlled {
    /// Stops every target's sessions; a server that went away is said on stderr.
    pub fn stop(self, tool: &str) {
        for (name, mut client, n) in self.clients {
            if let Err(e) = client.stop(n) {
                eprintln!("{tool}: {name}: Stop-Sessions: {e}");
            }
        }
    }
}
