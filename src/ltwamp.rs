//! `ltwamp`: TWAMP-Light / STAMP Session-Sender over many flows and DSCP classes, as JSON lines.
#![forbid(unsafe_code)]

use crate::cli::trace::TraceArgs;
use crate::cli::{
    self, probe_args, AlertArgs, FlowArgs, OutputArgs, RunArgs, SocketArgs, TargetArgs,
};
use crate::probe::flows::MAX_PAYLOAD;
use crate::probe::twamp::{
    check_config, parse_tlv, probe_packet, ReflectorMode, TlvChoice, TwampConfig, TwampProber,
    DEFAULT_PORT,
};
use crate::twamp_control::client::SetUp;
use crate::twamp_control::keys::Keys;
use crate::twamp_control::sender::{self, Plan};
use crate::wire::twamp_control::Mode;
use anyhow::Result;
use clap::Parser;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  ltwamp -c 10 reflector.example
      ten STAMP probes to port 862
  ltwamp --flows 8 --dscp EF,CS1 -c 100 -q 10.0.0.2
      8 ECMP flows in two classes, a summary each
  ltwamp --size 14 -c 10 10.0.0.2:4000
      TWAMP-Light packets of 14 bytes
  ltwamp --reflector stateful -w 1m -q 10.0.0.2
      loss split into lost_fwd and lost_rev
  ltwamp -f reflectors.txt --alert-loss 1 --summary-every 1m
      continuous, windowed summaries and alerts
  ltwamp --flows 16 --trace -c 100 -q 10.0.0.2
      each flow's path (its own 5-tuple), with its loss split by direction
  ltwamp --control --flows 4 --dscp EF,BE -c 100 -q twamp.example
      full TWAMP: sessions set up over TWAMP-Control (TCP 862) first
  ltwamp --control --auth-mode encrypted --key-file probe.pfs -c 10 10.0.0.2
      encrypted control connection (keys file: 'KEYID HEXSECRET' lines)
  ltwamp --tlv cos,timestamp,direct,location --dscp AF41 -c 10 10.0.0.2
      RFC 8972 TLVs: the DSCP on arrival and back, the reflector's clock,
      its counters, the addresses it saw

Each reply carries rtt_ms net of the reflector's own time ((T4 - T1) - (T3 - T2)), fwd_ms
(T2 - T1), rev_ms (T4 - T3) and reflector_ms (T3 - T2): one-way figures compare two clocks,
trust them only when \"synced\" is true (both Error Estimates say synchronized). T1 and T4 are
the kernel's transmit and receive stamps where it gives them. reflector_seq is the reflector's
sequence number, reflector_ttl the TTL (hop limit) the probe arrived with at the reflector.
seq counts from 1, as in every lopa tool; the STAMP sequence number on the wire counts from 0
(RFC 8762), so it is seq - 1, and a stateless reflector's reflector_seq is seq - 1 too.

Against a stateful reflector (its own sequence numbers per session), summaries split the loss
into lost_fwd (on the way there) and lost_rev (on the way back). STAMP probes carry RFC 8972's
Direct Measurement TLV unless --tlv says otherwise: a reflector that fills it in (lreflect,
stamp-suite) gives its counters, so the split holds against any such reflector, and the probes
it refused (lreflect's --rate-limit) are counted apart as refused, not as loss. --reflector auto takes a
reflector for stateful once an answer's number differs from the probe's: until some probe is
lost on the way there, a stateful reflector looks stateless; use --reflector stateful when
it is known.

Exit status: 0 every target answered, 1 some target never answered, 2 usage or system error
(also when some target names did not resolve: the others are probed).";

/// Command-line arguments of `ltwamp`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ltwamp",
    version,
    about = "TWAMP-Light / STAMP Session-Sender over many flows and DSCP classes, one JSON record per line",
    long_about = "TWAMP-Light (RFC 5357) and STAMP (RFC 8762) test packets to any Session-Reflector \
(lreflect --twamp, stamp-suite, router implementations). Each flow has its own fixed source port, \
so flows spread over ECMP paths; every flow is probed in every DSCP class. Replies are matched on \
the socket, the reflector's address, the echoed sequence number and the echoed send time; the \
reflector's stamps give one-way delays, its hold time is taken out of the RTT, and a stateful \
reflector's own sequence numbers tell loss on the way there from loss on the way back.",
    after_help = EXAMPLES,
    mut_arg("targets", |a| cli::port_targets_help(a, "862 unless given")),
    mut_arg("count", |a| cli::help_note(a, cli::COUNT_PER_FLOW)),
    mut_arg("flows", |a| cli::help_note(a, "Each flow is a session of its own"))
)]
pub struct Args {
    #[command(flatten)]
    pub targets: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Destination port of targets that do not name one.
    #[arg(short = 'p', long, value_name = "PORT", default_value_t = DEFAULT_PORT,
          value_parser = clap::value_parser!(u16).range(1..), help_heading = "Probe")]
    pub port: u16,
    /// UDP payload bytes per probe: 44 or more sends STAMP packets, 14 to 43 TWAMP-Light
    /// packets without an SSID or TLVs. STAMP packets are as long as their TLVs need, and an
    /// Extra Padding TLV fills them up to this size.
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = 44,
          value_parser = clap::value_parser!(u32).range(0..=MAX_PAYLOAD as i64), help_heading = "Probe")]
    pub size: u32,
    /// STAMP Session-Sender Identifier (RFC 8972), 1-65535; none (0) unless given.
    #[arg(long, value_name = "SSID", value_parser = clap::value_parser!(u16).range(1..),
          help_heading = "Probe")]
    pub ssid: Option<u16>,
    /// STAMP TLVs (RFC 8972) every probe carries, comma-separated: direct (the reflector's
    /// packet counters), cos (the DSCP the probe arrived with, the answer asked back in the
    /// probe's class), timestamp (the reflector's clock sources), location (the addresses and
    /// ports it saw), padding (an Extra Padding TLV up to --size), or none. Default: direct in
    /// STAMP packets; a reflector that knows no TLVs answers them with the U flag.
    #[arg(long, value_name = "LIST", value_parser = parse_tlv, help_heading = "Probe")]
    pub tlv: Option<TlvChoice>,
    #[command(flatten)]
    pub flows: FlowArgs,
    /// How the reflector numbers its answers: stateful (its own numbers per session: loss is
    /// split into lost_fwd and lost_rev), stateless (it copies ours), or auto (stateful once an
    /// answer's number differs from the probe's).
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value = "auto",
        help_heading = "Probe"
    )]
    pub reflector: ReflectorMode,
    /// Set the test sessions up over TWAMP-Control first (RFC 5357: a TWAMP server, not a
    /// TWAMP-Light reflector): the target's port is its control port (862 unless given), one
    /// session per flow and DSCP class, stopped at the end and on a signal. A refusal is one
    /// line naming the server's Accept code, and exit status 2.
    #[arg(long, help_heading = "TWAMP-Control")]
    pub control: bool,
    /// The control connection's mode: open (unauthenticated), authenticated or encrypted
    /// (both need --key-file).
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        default_value = "open",
        requires = "control",
        help_heading = "TWAMP-Control"
    )]
    pub auth_mode: AuthMode,
    /// Keys file: 'KEYID SECRET' lines, the secret in hex (owampd's pfs format).
    #[arg(
        long,
        value_name = "PATH",
        requires = "control",
        help_heading = "TWAMP-Control"
    )]
    pub key_file: Option<std::path::PathBuf>,
    /// Which KeyID of the keys file to use (needed when it holds more than one).
    #[arg(
        long,
        value_name = "KEYID",
        requires = "key_file",
        help_heading = "TWAMP-Control"
    )]
    pub key_id: Option<String>,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub socket: SocketArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The TWAMP-Control modes, as `--auth-mode` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    Open,
    Authenticated,
    Encrypted,
}

impl AuthMode {
    fn mode(self) -> Mode {
        match self {
            AuthMode::Open => Mode::Unauthenticated,
            AuthMode::Authenticated => Mode::Authenticated,
            AuthMode::Encrypted => Mode::Encrypted,
        }
    }
}

/// The control client's plan, from the arguments.
fn control_plan(args: &Args) -> Result<Plan> {
    let mode = args.auth_mode.mode();
    let key = match (&args.key_file, mode.ciphered()) {
        (Some(path), true) => {
            let keys = Keys::load(path)?;
            let (id, secret) = keys.pick(args.key_id.as_deref())?;
            Some((id.to_string(), secret.to_vec()))
        }
        (None, true) => anyhow::bail!("--auth-mode {} needs --key-file", mode.name()),
        (_, false) => None,
    };
    // The keyed test packets have their own layout: no STAMP TLVs, and trace probes (which
    // carry no session's HMAC) would go unanswered.
    if mode.ciphered() && args.tlv.is_some_and(|t| !t.is_empty()) {
        anyhow::bail!("--tlv needs --auth-mode open: keyed test packets carry no STAMP TLVs");
    }
    if mode.ciphered() && args.trace.any() {
        anyhow::bail!(
            "--trace needs --auth-mode open: a keyed session's reflector answers only packets with its HMAC"
        );
    }
    Ok(Plan {
        set_up: SetUp { mode, key },
        dscp: args.flows.spread().dscp,
        size: args.size as usize,
        timeout: args.run.timeout,
    })
}

/// Runs ltwamp; the exit status follows ping and fping.
pub fn run(args: Args) -> Result<ExitCode> {
    check_config(args.size as usize, args.ssid)?;
    probe_packet(args.size as usize, args.tlv)?;
    let cfg = TwampConfig {
        spread: args.flows.spread(),
        size: args.size as usize,
        ssid: args.ssid.unwrap_or(0),
        reflector: args.reflector,
        interval: args.run.interval,
        timeout: args.run.timeout,
        tlv: args.tlv,
    };
    let ports = cli::Ports::Default(Some(args.port));
    if !args.control {
        return cli::pipeline::run("ltwamp", probe_args!(args), ports, |targets| {
            TwampProber::open(targets, cfg, &args.socket.options())
        });
    }
    let plan = control_plan(&args)?;
    let mut sessions = None;
    let status = cli::pipeline::run("ltwamp", probe_args!(args), ports, |targets| {
        let mut prober = TwampProber::open(targets, cfg, &args.socket.options())?;
        let flows = args.flows.spread().flows;
        let mut started = sender::start(
            targets,
            flows,
            |flow, family| prober.sport(flow, family),
            &plan,
        )?;
        prober.use_keys(std::mem::take(&mut started.keys));
        sessions = Some(started);
        Ok(prober)
    });
    if let Some(s) = sessions {
        s.stop("ltwamp");
    }
    status
}
