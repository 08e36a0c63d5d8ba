//! `lreflect`: the UDP echo reflector that `ludp` (or any RFC 862 client) measures against,
//! and a TWAMP-Light / STAMP Session-Reflector (`--twamp`) for `ltwamp` and other senders.
//!
//! On an echo socket every datagram goes back unchanged and at the same size to where it came
//! from, from the address it was sent to; ludp payloads with room get the reflector's receive
//! and send stamps ([`crate::wire::ludp_payload`]). On a TWAMP socket every request gets the STAMP
//! reflector reply ([`crate::wire::twamp`]), built over the request in the receive buffer:
//! T2 the kernel's receive time, T3 read right before the send call, the TTL the request
//! arrived with, and a sequence number counted per session ([`session`]) or copied
//! (`--stateless`); the RFC 8972 TLVs after the base packet are answered in place
//! ([`crate::wire::stamp_tlv`]), with the session's Direct Measurement counters, in which a
//! request the limits refused counts as received and not answered (in a live session: refused
//! traffic never starts one).
//!
//! Each datagram is answered or dropped for exactly one reason, checked in this order: the access list (`acl`), a source port that answers back (`loop`), empty,
//! truncated or (TWAMP) under 14 bytes (`malformed`), on a `--twamp-control` test port a
//! sender no granted session has (`no_session`), the per-source token bucket (`rate_limit`), the global cap (`global_cap`),
//! and a send that failed (`send_error`). Counters per listening socket are written as
//! `stats` records.
//!
//! - [`acl`]: `--allow`; [`loops`]: the loop guard; [`limit`]: the per-source table and the
//!   global cap;
//! - [`batch`]: `recvmmsg`/`sendmmsg` with control messages, UDP GSO for runs of answers to
//!   one client, and the stamping;
//! - [`session`]: the TWAMP sessions and their sequence numbers;
//! - [`stats`]: the counters; [`notify`]: `READY=1` to systemd;
//! - [`args`]: the command line; [`listener`]: the sockets and their kinds; [`serve`]: the
//!   checks and answers per datagram; [`event_loop`]: the poll loop; [`report`]: the start
//!   line and the `stats` records;
//! - [`control`]: `--twamp-control`, the TWAMP server (RFC 5357 3) whose sessions' test
//!   packets the TWAMP sockets at `--twamp-ports` answer.

pub mod acl;
mod args;
pub mod batch;
mod control;
mod event_loop;
pub mod limit;
mod listener;
pub mod loops;
pub mod notify;
mod report;
mod serve;
pub mod session;
pub mod stats;

pub use args::Args;

use anyhow::{Context, Result};
use event_loop::EventLoop;
use listener::{bind_all, Kind};
use report::{StatsClock, StatsWriter};
use serve::Reflector;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

const TOOL: &str = "lreflect";

/// The echo port when neither --echo nor --twamp is given.
const DEFAULT_ECHO_PORT: u16 = 8081;

/// The addresses to listen on and what each answers: echo on the default port only when
/// nothing at all is asked for; a TWAMP test socket on each control address at each of
/// `--twamp-ports` (default: the control port), unless `--twamp` has it already.
fn listen_addrs(args: &Args) -> Vec<(SocketAddr, Kind)> {
    let echo: Vec<SocketAddr> =
        if args.echo.is_empty() && args.twamp.is_empty() && args.twamp_control.is_empty() {
            vec![SocketAddr::from((
                std::net::Ipv6Addr::UNSPECIFIED,
                DEFAULT_ECHO_PORT,
            ))]
        } else {
            args.echo.clone()
        };
    let mut twamp = args.twamp.clone();
    for c in &args.twamp_control {
        for port in test_ports(args, c) {
            let a = SocketAddr::new(c.ip(), port);
            if !twamp.contains(&a) {
                twamp.push(a);
            }
        }
    }
    echo.iter()
        .map(|&a| (a, Kind::Echo))
        .chain(twamp.iter().map(|&a| (a, Kind::Twamp)))
        .collect()
}

/// Whether `l` is one of the test sockets `--twamp-control` opened.
fn is_test_port(args: &Args, l: &listener::Listener) -> bool {
    args.twamp_control
        .iter()
        .any(|c| c.ip() == l.local.ip() && test_ports(args, c).contains(&l.local.port()))
}

/// The test ports of control address `c`.
fn test_ports(args: &Args, c: &SocketAddr) -> Vec<u16> {
    match args.twamp_ports {
        Some((lo, hi)) => (lo..=hi).collect(),
        None => vec![c.port()],
    }
}

/// The control server `args` ask for, if any.
fn control_server(args: &Args) -> Result<Option<control::ControlServer>> {
    let Some(first) = args.twamp_control.first() else {
        return Ok(None);
    };
    use crate::wire::twamp_control::Mode;
    let keys = match &args.key_file {
        Some(p) => crate::twamp_control::keys::Keys::load(p)?,
        None => Default::default(),
    };
    let mut modes = if args.require_auth {
        0
    } else {
        Mode::Unauthenticated.bit()
    };
    if !keys.is_empty() {
        modes |= Mode::Authenticated.bit() | Mode::Encrypted.bit();
    } else if args.key_file.is_some() {
        anyhow::bail!("the keys file holds no key");
    }
    let offer = crate::twamp_control::server::Offer {
        modes,
        keys,
        count: crate::twamp_control::crypto::DEFAULT_COUNT,
    };
    let limits = control::Limits {
        per_client: args.control_per_client as usize,
        connections: args.control_connections as usize,
        sessions_per_connection: args.control_sessions as usize,
        sessions: args.sessions as usize,
        idle: args.control_idle,
        refwait: args.refwait,
    };
    let rate = (args.rate_limit > 0.0).then(|| limit::Gcra::new(args.rate_limit, args.burst));
    control::ControlServer::bind(
        &args.twamp_control,
        offer,
        limits,
        acl::Acl::new(args.allow.clone()),
        rate,
        test_ports(args, first),
    )
    .map(Some)
}

/// Runs lreflect until SIGINT, SIGTERM or SIGHUP.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut listeners = bind_all(&listen_addrs(&args), !args.no_gso)?;
    for l in listeners.iter_mut() {
        l.controlled = l.is_twamp() && !args.twamp.contains(&l.local) && is_test_port(&args, l);
    }
    let mut control = control_server(&args)?;
    crate::net::privilege::drop_privileges_for_good().context("cannot drop privileges")?;
    // Checked as the user lreflect runs on as, before it says it is ready.
    let textfile = args
        .textfile
        .as_ref()
        .map(|path| {
            crate::output::metrics::Textfile::new(path.clone()).map_err(|e| {
                let who = if e.kind() == io::ErrorKind::PermissionDenied {
                    " (lreflect writes it as the user it runs on as: nobody when started by root)"
                } else {
                    ""
                };
                anyhow::anyhow!("--textfile: cannot write {e}{who}")
            })
        })
        .transpose()?;
    let mut reflector = Reflector::new(&args, &listeners);
    let mut event_loop = EventLoop::new(&listeners, control.as_mut())?;

    eprintln!(
        "{TOOL}: {}",
        report::start_line(&listeners, control.as_ref(), args.stats_every)
    );
    match notify::notify("READY=1") {
        Ok(_) => {}
        Err(e) => eprintln!("{TOOL}: cannot tell the service manager READY=1: {e}"),
    }

    // No histograms: no bucket bounds.
    let out = crate::output::RecordWriter::stdout(args.format).metrics(Vec::new(), textfile);
    let mut stats = StatsWriter::new(out, &args.tags);
    let clock = StatsClock::new(args.stats_every, Instant::now());
    event_loop.run(
        &mut reflector,
        &mut listeners,
        control.as_mut(),
        clock,
        &mut stats,
    )?;

    let _ = notify::notify("STOPPING=1");
    let active = reflector.settle_sessions(&mut listeners);
    for (k, l) in listeners.iter().enumerate() {
        stats.write(l, &l.stats.total(), "total", active.as_ref().map(|a| a[k]))?;
    }
    if let Some(c) = control.as_mut() {
        stats.write_control(c, "total")?;
    }
    stats.out.end_window()?;
    Ok(ExitCode::from(crate::cli::EXIT_OK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn addrs(argv: &[&str]) -> Vec<(SocketAddr, Kind)> {
        let argv: Vec<&str> = std::iter::once("lreflect")
            .chain(argv.iter().copied())
            .collect();
        listen_addrs(&Args::try_parse_from(argv).unwrap())
    }

    #[test]
    fn echo_on_the_default_port_only_when_nothing_is_asked_for() {
        assert_eq!(addrs(&[]), vec![("[::]:8081".parse().unwrap(), Kind::Echo)]);
        assert_eq!(
            addrs(&["--twamp", "[::]:862"]),
            vec![("[::]:862".parse().unwrap(), Kind::Twamp)]
        );
        assert_eq!(
            addrs(&["--twamp", "[::]:862", "--echo", "127.0.0.1:7"]),
            vec![
                ("127.0.0.1:7".parse().unwrap(), Kind::Echo),
                ("[::]:862".parse().unwrap(), Kind::Twamp)
            ]
        );
    }
}
