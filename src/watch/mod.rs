//! `lwatch`: link, address and route changes as the kernel announces them over rtnetlink,
//! one record per real change, with no change ever silently lost.
//!
//! - `args`: the command line; `filter`: which records pass;
//! - [`state`] (links, addresses, the state as a whole), `routes`, [`nexthop`] and
//!   [`tables`] (neighbours, rules): what lwatch last saw, and the diffing that turns
//!   messages into records (no I/O);
//! - `read`: the dumps that read the state, and one notification applied to it;
//! - `reconcile`: a read reconciled with the notifications queued behind it (the start, and
//!   after lost notifications);
//! - `tracker`: the followed state kept true (notifications, the re-reads after silent
//!   IPv4 route flushes and after lost notifications); `sink`: records out, counted;
//! - `hooks`: the lab tests' stop points; this module: the mio loop (signals, `-w`, `-c`)
//!   and the start (read, subscribe, read again).
#![forbid(unsafe_code)]

mod args;
pub mod exec;
mod filter;
mod hooks;
pub mod nexthop;
mod read;
mod reconcile;
mod routes;
mod sink;
pub mod state;
pub mod tables;
mod tracker;

pub use args::{Args, Kind};

use crate::netlink::{RouteSocket, Subscription};
use anyhow::{Context, Result};
use args::Follow;
use filter::Filter;
use hooks::{stop_self, test_stop, test_stop_count, MID_DUMP_STOPS};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use read::read_state;
use reconcile::{Base, Reconcile, STARTUP_GRACE};
use signal_hook_mio::v1_0::Signals;
use sink::Sink;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;
use tracker::Watch;

const SIGNAL_TOKEN: Token = Token(0);
const NETLINK_TOKEN: Token = Token(1);

/// Runs lwatch until the count or duration is reached, or a signal comes.
pub fn run(args: Args) -> Result<ExitCode> {
    crate::cli::refuse_openmetrics("lwatch", args.output.format)?;
    if args.output.textfile.is_some() || args.output.buckets.is_some() {
        anyhow::bail!(
            "lwatch writes events, not figures: --textfile and --buckets are for the probes, lpassive and lreflect"
        );
    }
    let filter = Filter::new(&args)?;
    let mut poll = Poll::new().context("cannot create the event loop")?;
    let mut signals =
        Signals::new(crate::cli::end_signals()).context("cannot install signal handlers")?;
    poll.registry()
        .register(&mut signals, SIGNAL_TOKEN, Interest::READABLE)?;
    let mut sock = RouteSocket::open()?;
    if let Some(n) = test_stop_count("mid-dump") {
        use std::sync::atomic::Ordering::Relaxed;
        MID_DUMP_STOPS.store(n, Relaxed);
        sock.mid_dump = Some(|| {
            if MID_DUMP_STOPS
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                stop_self();
            }
        });
    }
    let mut msgs = Vec::new();
    // The state before subscribing, then the subscription, then the state again (see
    // `Reconcile`): no change falls between the reads and the notifications, and none that the
    // second read already shows goes without its record.
    let follow = Follow {
        neigh: args.types.contains(&Kind::Neigh),
        rule: args.types.contains(&Kind::Rule),
    };
    let before = read_state(&mut sock, &mut msgs, follow)?;
    test_stop("read");
    let sub = Subscription::open(&follow.groups(), args.rcvbuf)?;
    poll.registry().register(
        &mut SourceFd(&sub.raw_fd()),
        NETLINK_TOKEN,
        Interest::READABLE,
    )?;
    if !args.output.quiet && sub.rcvbuf < args.rcvbuf {
        eprintln!(
            "lwatch: the receive buffer is {} bytes, less than the {} asked for (needs \
             CAP_NET_ADMIN, or a higher net.core.rmem_max)",
            sub.rcvbuf, args.rcvbuf
        );
    }
    test_stop("subscribed");
    let state = read_state(&mut sock, &mut msgs, follow)?;
    test_stop("dumped");
    let mut before = before;
    // Records made from `before` name interfaces it never saw (made in between) too.
    for (index, name) in &state.names {
        before.names.entry(*index).or_insert_with(|| name.clone());
    }
    let start = Instant::now();
    let deadline = args.duration.map(|d| start + d);
    let mut watch = Watch {
        state,
        reconcile: Some(Reconcile {
            base: Base::Read,
            before,
            flush: BTreeSet::new(),
            shown: BTreeMap::new(),
            until: start + STARTUP_GRACE,
        }),
        sub,
        sock,
        msgs,
        flush: BTreeSet::new(),
        recheck: None,
        follow,
    };

    let mut sink = Sink {
        out: crate::output::RecordWriter::stdout(args.output.format),
        tags: (!args.output.tags.is_empty()).then(|| Arc::new(args.output.tag_map())),
        filter,
        changes: 0,
        limit: args.count,
        exec: args
            .exec
            .clone()
            .map(|cmd| exec::Exec::start(cmd, args.output.quiet)),
        line: Vec::new(),
    };
    let mut bodies = Vec::new();
    if args.dump {
        watch.state.present(&mut bodies);
        sink.write(&mut bodies, false)?;
    }
    // What was queued while the state was read, at once.
    watch.drain(&mut bodies)?;
    sink.write(&mut bodies, true)?;

    let mut events = Events::with_capacity(8);
    while !sink.done() {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        if watch.recheck(now, &mut bodies)? {
            sink.write(&mut bodies, true)?;
            continue;
        }
        if watch.reconcile.as_ref().is_some_and(|s| now >= s.until) {
            watch.reconcile = None;
        }
        let timeout = [
            deadline,
            watch.recheck.as_ref().map(|(at, _)| *at),
            watch.reconcile.as_ref().map(|s| s.until),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|t| t.saturating_duration_since(now));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("poll failed"),
        }
        if events.iter().any(|e| e.token() == SIGNAL_TOKEN) && signals.pending().count() > 0 {
            break;
        }
        if events.iter().any(|e| e.token() == NETLINK_TOKEN) {
            watch.drain(&mut bodies)?;
            sink.write(&mut bodies, true)?;
        }
    }
    if let Some(exec) = sink.exec.take() {
        exec.finish();
    }
    sink.out.into_inner().flush()?;
    Ok(ExitCode::SUCCESS)
}
