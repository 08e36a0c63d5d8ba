//! lopa: small, fast, correct Unix tools for network quality measurement.
//!
//! The library owns everything; the binaries under `src/bin/` only parse their arguments and
//! call a `run` function here. Map of the crate:
//!
//! - [`record`]: the serde types of every record (the output contract).
//! - [`output`]: the writer (JSON lines or InfluxDB line protocol).
//! - [`cli`]: argument groups shared by the probing tools, and value parsers.
//! - [`target`]: target lists (hosts, CIDRs, files with tags) and name resolution.
//! - [`stats`], [`alert`]: accumulators and the threshold state machine.
//! - [`engine`]: the event loop every probing tool shares (schedule, timeouts, signals).
//! - [`probe`]: the probe kinds behind one trait ([`probe::Prober`]).
//! - [`wire`]: pure encode/decode of packet formats.
//! - [`net`]: socket set-up, `sendmsg`/`recvmsg` with control messages, privilege drop.
//! - [`clock`]: whether the host clock is synchronized (for one-way figures).
//! - [`lping`], [`ludp`], [`ltcp`], [`ltwamp`]: the four probing tools, each named as its binary.
//! - [`lreflect`]: the `lreflect` echo reflector (access list, rate limits, batched I/O).
//! - [`twamp_control`]: TWAMP-Control shared by client and server: keyed modes, keys file.
//! - [`netlink`]: rtnetlink dumps and subscriptions (pure decoding in `netlink::parse` and
//!   `netlink::rt`).
//! - [`lpassive`]: the `lpassive` interface counter sampler.
//! - [`lwatch`]: the `lwatch` netlink monitor (links, addresses, routes).
//! - [`lcorrelate`]: the `lcorrelate` tool (path records into per-link loss suspicion).
//! - [`man`]: man page generation from the clap definitions.
//! - [`completions`]: bash, zsh and fish completions from the same definitions.

pub mod alert;
pub mod cli;
pub mod clock;
pub mod completions;
pub mod dscp;
pub mod engine;
pub mod lcorrelate;
pub mod lpassive;
pub mod lping;
pub mod lreflect;
pub mod ltcp;
pub mod ltwamp;
pub mod ludp;
pub mod lwatch;
pub mod man;
pub mod net;
pub mod netlink;
pub mod output;
pub mod probe;
pub mod random;
pub mod record;
pub mod schema;
pub mod signals;
pub mod stats;
pub mod target;
pub mod twamp_control;
pub mod wire;
