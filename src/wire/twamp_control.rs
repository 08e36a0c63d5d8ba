//! TWAMP-Control messages (RFC 5357 3, on the OWAMP-Control messages of RFC 4656 3): the
//! fixed-size messages a control client and a TWAMP server exchange over TCP (port 862)
//! before any test packet flows.
//!
//! ```text
//! server -> client  Server Greeting     64  Unused(12) Modes(4) Challenge(16) Salt(16)
//!                                           Count(4) MBZ(12)
//! client -> server  Set-Up-Response    164  Mode(4) KeyID(80) Token(64) Client-IV(16)
//! server -> client  Server-Start        48  MBZ(15) Accept(1) Server-IV(16) Start-Time(8)
//!                                           MBZ(8)
//! client -> server  Request-TW-Session 112  5 | MBZ:4 IPVN:4 | Conf-Sender | Conf-Receiver,
//!                                           Schedule Slots(4) Packets(4) Sender Port(2)
//!                                           Receiver Port(2) Sender Address(16)
//!                                           Receiver Address(16) SID(16) Padding Length(4)
//!                                           Start Time(8) Timeout(8) Type-P(4) MBZ(8) HMAC(16)
//! server -> client  Accept-Session      48  Accept(1) MBZ(1) Port(2) SID(16) MBZ(12) HMAC(16)
//! client -> server  Start-Sessions      32  2 | MBZ(15) HMAC(16)
//! server -> client  Start-Ack           32  Accept(1) MBZ(15) HMAC(16)
//! client -> server  Stop-Sessions       32  3 | Accept(1) MBZ(2) Number of Sessions(4)
//!                                           MBZ(8) HMAC(16)
//! ```
//! Every message is a whole number of 16-byte blocks, so that in the authenticated and
//! encrypted modes the stream after Server-Start's IV is AES-CBC encrypted block by block
//! ([`crate::twamp_control::crypto`] does that, and fills the HMAC fields, which this module
//! leaves zero and does not check). MBZ fields are written as zero and not checked on reading
//! (RFC 4656 3: "MUST be zero ... MUST be ignored"). All integers big-endian.
#![forbid(unsafe_code)]

use super::ntp::Timestamp;
use super::{Error, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The well-known TWAMP-Control port (RFC 5357 3.1).
pub const PORT: u16 = 862;
/// The AES block: every message is a multiple of it.
pub const BLOCK: usize = 16;
/// Length of the HMAC field that ends the messages that have one.
pub const HMAC_LEN: usize = 16;

pub const GREETING_LEN: usize = 64;
pub const SETUP_RESPONSE_LEN: usize = 164;
pub const SERVER_START_LEN: usize = 48;
pub const REQUEST_TW_SESSION_LEN: usize = 112;
pub const ACCEPT_SESSION_LEN: usize = 48;
pub const START_SESSIONS_LEN: usize = 32;
pub const START_ACK_LEN: usize = 32;
pub const STOP_SESSIONS_LEN: usize = 32;
/// Length of the KeyID field: a UTF-8 name, zero-padded.
pub const KEY_ID_LEN: usize = 80;
/// The Token: challenge (16), AES session key (16), HMAC session key (32), encrypted.
pub const TOKEN_LEN: usize = 64;

/// The modes of RFC 4656 3.1, as bits of the Modes field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Unauthenticated,
    Authenticated,
    Encrypted,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Unauthenticated, Mode::Authenticated, Mode::Encrypted];

    pub fn bit(self) -> u32 {
        match self {
            Mode::Unauthenticated => 1,
            Mode::Authenticated => 2,
            Mode::Encrypted => 4,
        }
    }

    /// The mode a Set-Up-Response chose: exactly one bit, one of ours.
    pub fn from_bits(bits: u32) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.bit() == bits)
    }

    /// Whether the control stream after Server-Start is encrypted and carries HMACs: the
    /// authenticated and encrypted modes are the same on TWAMP-Control (RFC 4656 3.4).
    pub fn ciphered(self) -> bool {
        self != Mode::Unauthenticated
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Unauthenticated => "open",
            Mode::Authenticated => "authenticated",
            Mode::Encrypted => "encrypted",
        }
    }
}

/// Set of modes, as a Server Greeting offers them.
pub fn modes_bits(modes: &[Mode]) -> u32 {
    modes.iter().fold(0, |a, m| a | m.bit())
}

/// The Accept field's values (RFC 4656 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Accept {
    Ok,
    Failure,
    InternalError,
    NotSupported,
    PermanentLimit,
    TemporaryLimit,
}

impl Accept {
    pub fn code(self) -> u8 {
        match self {
            Accept::Ok => 0,
            Accept::Failure => 1,
            Accept::InternalError => 2,
            Accept::NotSupported => 3,
            Accept::PermanentLimit => 4,
            Accept::TemporaryLimit => 5,
        }
    }

    pub fn from_code(c: u8) -> Result<Accept> {
        Ok(match c {
            0 => Accept::Ok,
            1 => Accept::Failure,
            2 => Accept::InternalError,
            3 => Accept::NotSupported,
            4 => Accept::PermanentLimit,
            5 => Accept::TemporaryLimit,
            _ => return Err(Error::BadField),
        })
    }

    /// The RFC's words for it, for the one stderr line a refusal gets.
    pub fn describe(self) -> &'static str {
        match self {
            Accept::Ok => "OK",
            Accept::Failure => "failure, reason unspecified",
            Accept::InternalError => "internal error",
            Accept::NotSupported => "some aspect of the request is not supported",
            Accept::PermanentLimit => {
                "cannot perform the request due to permanent resource limitations"
            }
            Accept::TemporaryLimit => {
                "cannot perform the request due to temporary resource limitations"
            }
        }
    }
}

/// The commands a control client sends once the connection is set up (RFC 4656 3.4,
/// RFC 5357 3.5); the first byte of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    StartSessions,
    StopSessions,
    RequestTwSession,
}

impl Command {
    pub fn from_code(c: u8) -> Result<Command> {
        match c {
            2 => Ok(Command::StartSessions),
            3 => Ok(Command::StopSessions),
            5 => Ok(Command::RequestTwSession),
            // 1 (Request-Session) and 4 (Fetch-Session) are OWAMP's; the rest is unassigned.
            _ => Err(Error::NotOurs),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Command::StartSessions => 2,
            Command::StopSessions => 3,
            Command::RequestTwSession => 5,
        }
    }

    /// The whole message's length, known from its first byte.
    pub fn message_len(self) -> usize {
        match self {
            Command::StartSessions => START_SESSIONS_LEN,
            Command::StopSessions => STOP_SESSIONS_LEN,
            Command::RequestTwSession => REQUEST_TW_SESSION_LEN,
        }
    }
}

fn exact<const N: usize>(buf: &[u8]) -> Result<&[u8; N]> {
    match buf.len() {
        n if n < N => Err(Error::Truncated),
        n if n > N => Err(Error::BadLength),
        _ => buf.try_into().map_err(|_| Error::BadLength),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

fn ts_at(b: &[u8], at: usize) -> Timestamp {
    Timestamp::from_bytes(array(b, at))
}

/// Server Greeting: the modes the server offers and, for the keyed modes, the challenge,
/// salt and PBKDF2 iteration count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Greeting {
    pub modes: u32,
    pub challenge: [u8; 16],
    pub salt: [u8; 16],
    pub count: u32,
}

impl Greeting {
    pub fn encode(&self) -> [u8; GREETING_LEN] {
        let mut b = [0u8; GREETING_LEN];
        b[12..16].copy_from_slice(&self.modes.to_be_bytes());
        b[16..32].copy_from_slice(&self.challenge);
        b[32..48].copy_from_slice(&self.salt);
        b[48..52].copy_from_slice(&self.count.to_be_bytes());
        b
    }

    pub fn parse(buf: &[u8]) -> Result<Greeting> {
        let b = exact::<GREETING_LEN>(buf)?;
        Ok(Greeting {
            modes: u32_at(b, 12),
            challenge: array(b, 16),
            salt: array(b, 32),
            count: u32_at(b, 48),
        })
    }
}

/// Set-Up-Response: the mode the client chose and, for the keyed modes, its key's name, the
/// encrypted token and its IV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetUpResponse {
    /// Raw: a client may answer with a value that is no single mode (then the server refuses).
    pub mode: u32,
    pub key_id: [u8; KEY_ID_LEN],
    pub token: [u8; TOKEN_LEN],
    pub client_iv: [u8; 16],
}

impl SetUpResponse {
    pub fn encode(&self) -> [u8; SETUP_RESPONSE_LEN] {
        let mut b = [0u8; SETUP_RESPONSE_LEN];
        b[0..4].copy_from_slice(&self.mode.to_be_bytes());
        b[4..84].copy_from_slice(&self.key_id);
        b[84..148].copy_from_slice(&self.token);
        b[148..164].copy_from_slice(&self.client_iv);
        b
    }

    pub fn parse(buf: &[u8]) -> Result<SetUpResponse> {
        let b = exact::<SETUP_RESPONSE_LEN>(buf)?;
        Ok(SetUpResponse {
            mode: u32_at(b, 0),
            key_id: array(b, 4),
            token: array(b, 84),
            client_iv: array(b, 148),
        })
    }

    /// The KeyID as text: up to the first zero byte; `None` unless UTF-8.
    pub fn key_name(&self) -> Option<&str> {
        let end = self
            .key_id
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(KEY_ID_LEN);
        std::str::from_utf8(&self.key_id[..end]).ok()
    }

    /// A KeyID field holding `name` (at most 80 bytes).
    pub fn key_id_of(name: &str) -> Option<[u8; KEY_ID_LEN]> {
        let n = name.as_bytes();
        (n.len() <= KEY_ID_LEN).then(|| {
            let mut k = [0u8; KEY_ID_LEN];
            k[..n.len()].copy_from_slice(n);
            k
        })
    }
}

/// Server-Start: whether the server goes on, its IV for the server-to-client stream, and
/// the time it started. The last 16 bytes (Start-Time, MBZ) are already ciphered in the
/// keyed modes; [`ServerStart::encode`] gives them in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStart {
    pub accept: Accept,
    pub server_iv: [u8; 16],
    pub start_time: Timestamp,
}

impl ServerStart {
    pub fn encode(&self) -> [u8; SERVER_START_LEN] {
        let mut b = [0u8; SERVER_START_LEN];
        b[15] = self.accept.code();
        b[16..32].copy_from_slice(&self.server_iv);
        b[32..40].copy_from_slice(&self.start_time.to_bytes());
        b
    }

    pub fn parse(buf: &[u8]) -> Result<ServerStart> {
        let b = exact::<SERVER_START_LEN>(buf)?;
        Ok(ServerStart {
            accept: Accept::from_code(b[15])?,
            server_iv: array(b, 16),
            start_time: ts_at(b, 32),
        })
    }
}

/// Request-TW-Session (RFC 5357 3.5): one test session the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTwSession {
    /// The Session-Sender's address; unspecified (0) means the control connection's peer.
    pub sender: IpAddr,
    pub sender_port: u16,
    /// The Session-Reflector's address; unspecified means the control connection's own.
    pub receiver: IpAddr,
    /// The port the sender proposes; the server may answer with another.
    pub receiver_port: u16,
    /// Conf-Sender, Conf-Receiver: both 0 in TWAMP; kept to refuse the request otherwise.
    pub conf_sender: u8,
    pub conf_receiver: u8,
    /// Number of Schedule Slots and Number of Packets: both 0 in TWAMP.
    pub schedule_slots: u32,
    pub packets: u32,
    pub sid: [u8; 16],
    pub padding_length: u32,
    pub start_time: Timestamp,
    /// How long the reflector waits after Stop-Sessions for the last packets (NTP format:
    /// seconds and 2^-32 s).
    pub timeout: Timestamp,
    pub type_p: u32,
}

impl RequestTwSession {
    pub fn encode(&self) -> Result<[u8; REQUEST_TW_SESSION_LEN]> {
        let mut b = [0u8; REQUEST_TW_SESSION_LEN];
        b[0] = Command::RequestTwSession.code();
        b[1] = match (self.sender, self.receiver) {
            (IpAddr::V4(s), IpAddr::V4(r)) => {
                b[16..20].copy_from_slice(&s.octets());
                b[32..36].copy_from_slice(&r.octets());
                4
            }
            (IpAddr::V6(s), IpAddr::V6(r)) => {
                b[16..32].copy_from_slice(&s.octets());
                b[32..48].copy_from_slice(&r.octets());
                6
            }
            // One IPVN covers both addresses.
            _ => return Err(Error::BadField),
        };
        b[2] = self.conf_sender;
        b[3] = self.conf_receiver;
        b[4..8].copy_from_slice(&self.schedule_slots.to_be_bytes());
        b[8..12].copy_from_slice(&self.packets.to_be_bytes());
        b[12..14].copy_from_slice(&self.sender_port.to_be_bytes());
        b[14..16].copy_from_slice(&self.receiver_port.to_be_bytes());
        b[48..64].copy_from_slice(&self.sid);
        b[64..68].copy_from_slice(&self.padding_length.to_be_bytes());
        b[68..76].copy_from_slice(&self.start_time.to_bytes());
        b[76..84].copy_from_slice(&self.timeout.to_bytes());
        b[84..88].copy_from_slice(&self.type_p.to_be_bytes());
        Ok(b)
    }

    pub fn parse(buf: &[u8]) -> Result<RequestTwSession> {
        let b = exact::<REQUEST_TW_SESSION_LEN>(buf)?;
        if b[0] != Command::RequestTwSession.code() {
            return Err(Error::NotOurs);
        }
        let (sender, receiver) = match b[1] & 0x0f {
            4 => (
                IpAddr::V4(Ipv4Addr::from(array::<4>(b, 16))),
                IpAddr::V4(Ipv4Addr::from(array::<4>(b, 32))),
            ),
            6 => (
                IpAddr::V6(Ipv6Addr::from(array::<16>(b, 16))),
                IpAddr::V6(Ipv6Addr::from(array::<16>(b, 32))),
            ),
            _ => return Err(Error::BadField),
        };
        Ok(RequestTwSession {
            sender,
            sender_port: u16_at(b, 12),
            receiver,
            receiver_port: u16_at(b, 14),
            conf_sender: b[2],
            conf_receiver: b[3],
            schedule_slots: u32_at(b, 4),
            packets: u32_at(b, 8),
            sid: array(b, 48),
            padding_length: u32_at(b, 64),
            start_time: ts_at(b, 68),
            timeout: ts_at(b, 76),
            type_p: u32_at(b, 84),
        })
    }

    /// The DSCP the Type-P Descriptor asks for: its first two bits 00, the next six the DSCP
    /// (RFC 4656 3.5). `None` for any other form (a PHB ID, or bits the RFC leaves unused).
    pub fn dscp(&self) -> Option<u8> {
        (self.type_p & 0xc0ff_ffff == 0).then_some((self.type_p >> 24) as u8)
    }

    /// The Type-P Descriptor asking for `dscp` (0..=63).
    pub fn type_p_of_dscp(dscp: u8) -> u32 {
        u32::from(dscp & 0x3f) << 24
    }
}

/// Accept-Session: the answer to one Request-TW-Session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptSession {
    pub accept: Accept,
    /// The reflector's port for the session's test packets.
    pub port: u16,
    pub sid: [u8; 16],
}

impl AcceptSession {
    pub fn encode(&self) -> [u8; ACCEPT_SESSION_LEN] {
        let mut b = [0u8; ACCEPT_SESSION_LEN];
        b[0] = self.accept.code();
        b[2..4].copy_from_slice(&self.port.to_be_bytes());
        b[4..20].copy_from_slice(&self.sid);
        b
    }

    pub fn parse(buf: &[u8]) -> Result<AcceptSession> {
        let b = exact::<ACCEPT_SESSION_LEN>(buf)?;
        Ok(AcceptSession {
            accept: Accept::from_code(b[0])?,
            port: u16_at(b, 2),
            sid: array(b, 4),
        })
    }
}

/// Start-Sessions: the client starts every session it was granted.
pub fn encode_start_sessions() -> [u8; START_SESSIONS_LEN] {
    let mut b = [0u8; START_SESSIONS_LEN];
    b[0] = Command::StartSessions.code();
    b
}

pub fn parse_start_sessions(buf: &[u8]) -> Result<()> {
    let b = exact::<START_SESSIONS_LEN>(buf)?;
    if b[0] != Command::StartSessions.code() {
        return Err(Error::NotOurs);
    }
    Ok(())
}

/// Start-Ack: the server's answer to Start-Sessions.
pub fn encode_start_ack(accept: Accept) -> [u8; START_ACK_LEN] {
    let mut b = [0u8; START_ACK_LEN];
    b[0] = accept.code();
    b
}

pub fn parse_start_ack(buf: &[u8]) -> Result<Accept> {
    Accept::from_code(exact::<START_ACK_LEN>(buf)?[0])
}

/// Stop-Sessions (RFC 5357 3.8): the client ends the sessions, saying how many and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSessions {
    pub accept: Accept,
    pub sessions: u32,
}

impl StopSessions {
    pub fn encode(&self) -> [u8; STOP_SESSIONS_LEN] {
        let mut b = [0u8; STOP_SESSIONS_LEN];
        b[0] = Command::StopSessions.code();
        b[1] = self.accept.code();
        b[4..8].copy_from_slice(&self.sessions.to_be_bytes());
        b
    }

    pub fn parse(buf: &[u8]) -> Result<StopSessions> {
        let b = exact::<STOP_SESSIONS_LEN>(buf)?;
        if b[0] != Command::StopSessions.code() {
            return Err(Error::NotOurs);
        }
        Ok(StopSessions {
            accept: Accept::from_code(b[1])?,
            sessions: u32_at(b, 4),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-exact message laid out by hand from the RFC's diagram, field by field.
    fn layout(fields: &[(usize, &[u8])], len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        for (at, v) in fields {
            b[*at..*at + v.len()].copy_from_slice(v);
        }
        b
    }

    #[test]
    fn greeting_matches_rfc4656_layout() {
        let g = Greeting {
            modes: 7,
            challenge: [0xc1; 16],
            salt: [0x5a; 16],
            count: 1024,
        };
        let want = layout(
            &[
                (12, &[0, 0, 0, 7]),
                (16, &[0xc1; 16]),
                (32, &[0x5a; 16]),
                (48, &[0, 0, 4, 0]),
            ],
            64,
        );
        assert_eq!(g.encode().to_vec(), want);
        assert_eq!(Greeting::parse(&want), Ok(g));
        assert_eq!(Greeting::parse(&want[..63]), Err(Error::Truncated));
        assert_eq!(Greeting::parse(&[0; 65]), Err(Error::BadLength));
    }

    #[test]
    fn setup_response_matches_rfc4656_layout_and_key_names() {
        let r = SetUpResponse {
            mode: 2,
            key_id: SetUpResponse::key_id_of("probe-a").unwrap(),
            token: [0x70; 64],
            client_iv: [0x1f; 16],
        };
        let want = layout(
            &[
                (0, &[0, 0, 0, 2]),
                (4, b"probe-a"),
                (84, &[0x70; 64]),
                (148, &[0x1f; 16]),
            ],
            164,
        );
        assert_eq!(r.encode().to_vec(), want);
        let back = SetUpResponse::parse(&want).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.key_name(), Some("probe-a"));
        assert_eq!(Mode::from_bits(back.mode), Some(Mode::Authenticated));
        assert_eq!(Mode::from_bits(3), None, "two modes at once is no choice");
        assert!(SetUpResponse::key_id_of(&"k".repeat(81)).is_none());
        let full = SetUpResponse::key_id_of(&"k".repeat(80)).unwrap();
        assert_eq!(full, [b'k'; 80]);
        let bad = SetUpResponse {
            key_id: [0xff; 80],
            ..r
        };
        assert_eq!(bad.key_name(), None);
    }

    #[test]
    fn server_start_matches_rfc4656_layout() {
        let s = ServerStart {
            accept: Accept::Ok,
            server_iv: [0x33; 16],
            start_time: Timestamp {
                secs: 0xe000_0001,
                frac: 0x8000_0000,
            },
        };
        let want = layout(
            &[
                (15, &[0]),
                (16, &[0x33; 16]),
                (32, &[0xe0, 0, 0, 1, 0x80, 0, 0, 0]),
            ],
            48,
        );
        assert_eq!(s.encode().to_vec(), want);
        assert_eq!(ServerStart::parse(&want), Ok(s));
        let mut refused = want.clone();
        refused[15] = 3;
        assert_eq!(
            ServerStart::parse(&refused).unwrap().accept,
            Accept::NotSupported
        );
        refused[15] = 6;
        assert_eq!(ServerStart::parse(&refused), Err(Error::BadField));
    }

    #[test]
    fn request_tw_session_matches_rfc5357_layout_v4_and_v6() {
        let r = RequestTwSession {
            sender: "10.0.1.2".parse().unwrap(),
            sender_port: 40000,
            receiver: "10.0.2.2".parse().unwrap(),
            receiver_port: 862,
            conf_sender: 0,
            conf_receiver: 0,
            schedule_slots: 0,
            packets: 0,
            sid: [0; 16],
            padding_length: 27,
            start_time: Timestamp { secs: 5, frac: 6 },
            timeout: Timestamp { secs: 2, frac: 0 },
            type_p: RequestTwSession::type_p_of_dscp(46),
        };
        let want = layout(
            &[
                (0, &[5, 4, 0, 0]),
                (12, &[0x9c, 0x40, 0x03, 0x5e]),
                (16, &[10, 0, 1, 2]),
                (32, &[10, 0, 2, 2]),
                (64, &[0, 0, 0, 27]),
                (68, &[0, 0, 0, 5, 0, 0, 0, 6]),
                (76, &[0, 0, 0, 2, 0, 0, 0, 0]),
                // DSCP 46 (EF) after two zero bits: 0b00_101110.
                (84, &[46, 0, 0, 0]),
            ],
            112,
        );
        assert_eq!(r.encode().unwrap().to_vec(), want);
        let back = RequestTwSession::parse(&want).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.dscp(), Some(46));

        let v6 = RequestTwSession {
            sender: "fd00::1".parse().unwrap(),
            receiver: "fd00:2::2".parse().unwrap(),
            type_p: 0x4000_1234,
            ..r
        };
        let b = v6.encode().unwrap();
        assert_eq!(b[1], 6);
        assert_eq!(&b[16..32], &"fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(RequestTwSession::parse(&b), Ok(v6));
        assert_eq!(v6.dscp(), None, "a PHB ID is not a DSCP");

        let mixed = RequestTwSession {
            receiver: "fd00::2".parse().unwrap(),
            ..r
        };
        assert_eq!(mixed.encode(), Err(Error::BadField));
        let mut bad = want.clone();
        bad[1] = 5;
        assert_eq!(RequestTwSession::parse(&bad), Err(Error::BadField));
        bad[1] = 0x44; // MBZ nibble set: ignored, IPVN still 4.
        assert!(RequestTwSession::parse(&bad).is_ok());
        bad[0] = 1;
        assert_eq!(RequestTwSession::parse(&bad), Err(Error::NotOurs));
    }

    #[test]
    fn accept_session_and_the_short_messages_match_their_layouts() {
        let a = AcceptSession {
            accept: Accept::Ok,
            port: 20001,
            sid: [9; 16],
        };
        let want = layout(&[(0, &[0, 0, 0x4e, 0x21]), (4, &[9; 16])], 48);
        assert_eq!(a.encode().to_vec(), want);
        assert_eq!(AcceptSession::parse(&want), Ok(a));

        let start = encode_start_sessions();
        assert_eq!(start.to_vec(), layout(&[(0, &[2])], 32));
        assert_eq!(parse_start_sessions(&start), Ok(()));
        assert_eq!(parse_start_sessions(&[3; 32]), Err(Error::NotOurs));

        let ack = encode_start_ack(Accept::TemporaryLimit);
        assert_eq!(ack.to_vec(), layout(&[(0, &[5])], 32));
        assert_eq!(parse_start_ack(&ack), Ok(Accept::TemporaryLimit));

        let stop = StopSessions {
            accept: Accept::Ok,
            sessions: 3,
        };
        let want = layout(&[(0, &[3, 0]), (4, &[0, 0, 0, 3])], 32);
        assert_eq!(stop.encode().to_vec(), want);
        assert_eq!(StopSessions::parse(&want), Ok(stop));

        for c in [2u8, 3, 5] {
            let cmd = Command::from_code(c).unwrap();
            assert_eq!(cmd.code(), c);
            assert_eq!(cmd.message_len() % BLOCK, 0);
        }
        assert_eq!(Command::from_code(1), Err(Error::NotOurs));
        assert_eq!(Command::from_code(4), Err(Error::NotOurs));
    }

    #[test]
    fn every_message_is_whole_blocks() {
        for len in [
            GREETING_LEN,
            SERVER_START_LEN,
            REQUEST_TW_SESSION_LEN,
            ACCEPT_SESSION_LEN,
            START_SESSIONS_LEN,
            START_ACK_LEN,
            STOP_SESSIONS_LEN,
        ] {
            assert_eq!(len % BLOCK, 0, "{len}");
        }
        // Set-Up-Response is the one that is not: it is sent before ciphering starts.
        assert_eq!(SETUP_RESPONSE_LEN % BLOCK, 4);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes() {
        // A cheap stand-in for the fuzz target: every length up to the largest message, with
        // bytes from a fixed-seed generator.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..=SETUP_RESPONSE_LEN + 1 {
            for _ in 0..50 {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                let _ = Greeting::parse(&buf);
                let _ = SetUpResponse::parse(&buf).map(|r| r.key_name().map(str::len));
                let _ = ServerStart::parse(&buf);
                let _ = RequestTwSession::parse(&buf).map(|r| r.dscp());
                let _ = AcceptSession::parse(&buf);
                let _ = parse_start_sessions(&buf);
                let _ = parse_start_ack(&buf);
                let _ = StopSessions::parse(&buf);
            }
        }
    }
}
