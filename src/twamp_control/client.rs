//! The control client's side of a TWAMP-Control connection (RFC 5357 3): set-up in the mode
//! asked for, one Request-TW-Session per test session, Start-Sessions, Stop-Sessions. It
//! reads and writes a blocking stream (`ltwamp` gives it a TCP stream with timeouts) one
//! message at a time: the client always knows what comes next.
#![forbid(unsafe_code)]

use super::crypto::{self, Opener, Sealer, Token};
use super::test_packet::TestKeys;
use crate::wire::ntp::Timestamp;
use crate::wire::twamp_control::{
    self as msg, Accept, AcceptSession, Greeting, Mode, RequestTwSession, ServerStart,
    SetUpResponse, StopSessions, GREETING_LEN, SERVER_START_LEN,
};
use std::fmt;
use std::io::{self, Read, Write};

/// Why a control connection could not go on. Each is one line on stderr.
#[derive(Debug)]
pub enum ClientError {
    Io(io::Error),
    /// The greeting offers no mode at all: the server will not talk to us.
    NoModes,
    /// The server does not offer the mode asked for.
    ModeNotOffered {
        wanted: Mode,
        offered: u32,
    },
    /// A keyed mode was asked for without a key.
    NoKey,
    /// The greeting's iteration count is beyond what a client should spend.
    CountTooHigh(u32),
    /// An Accept code other than 0 in `stage` (Server-Start, Accept-Session, Start-Ack).
    Refused {
        stage: &'static str,
        accept: Accept,
    },
    /// Bytes from the server that are no message it should send here.
    Protocol(&'static str),
    /// A message from the server whose HMAC did not verify.
    BadHmac,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "control connection: {e}"),
            ClientError::NoModes => f.write_str(
                "the server refuses to talk to this client (its Server Greeting offers no mode: an access list or a connection limit)",
            ),
            ClientError::ModeNotOffered { wanted, offered } => {
                let names: Vec<&str> = Mode::ALL
                    .iter()
                    .filter(|m| offered & m.bit() != 0)
                    .map(|m| m.name())
                    .collect();
                write!(
                    f,
                    "the server does not offer the {} mode (it offers: {}); choose another with --auth-mode",
                    wanted.name(),
                    if names.is_empty() { "none of ours".to_string() } else { names.join(", ") }
                )
            }
            ClientError::NoKey => f.write_str("a keyed mode needs --key-file"),
            ClientError::CountTooHigh(c) => write!(
                f,
                "the server asks for {c} PBKDF2 iterations, more than the {} a client spends",
                crypto::MAX_COUNT
            ),
            ClientError::Refused { stage, accept } => write!(
                f,
                "the server refused in {stage}: Accept {} ({})",
                accept.code(),
                accept.describe()
            ),
            ClientError::Protocol(what) => write!(f, "the server sent {what}"),
            ClientError::BadHmac => f.write_str(
                "a message from the server failed its HMAC: wrong key, or altered on the way",
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> ClientError {
        ClientError::Io(e)
    }
}

/// What the client asks for at set-up.
#[derive(Debug, Clone)]
pub struct SetUp {
    pub mode: Mode,
    /// KeyID and secret, for the keyed modes.
    pub key: Option<(String, Vec<u8>)>,
}

/// A set-up control connection.
pub struct Client<S> {
    stream: S,
    mode: Mode,
    seal: Option<Sealer>,
    open: Option<Opener>,
    /// The session keys of a keyed mode, from which each test session's keys come.
    token: Option<Token>,
    /// The server's Start-Time.
    pub server_start: Timestamp,
}

impl<S: Read + Write> Client<S> {
    /// Reads the greeting, answers it in the mode asked for and reads Server-Start.
    pub fn set_up(mut stream: S, want: &SetUp) -> Result<Client<S>, ClientError> {
        let mut g = [0u8; GREETING_LEN];
        stream.read_exact(&mut g)?;
        let greeting = Greeting::parse(&g).map_err(|_| ClientError::Protocol("no greeting"))?;
        if greeting.modes == 0 {
            return Err(ClientError::NoModes);
        }
        if greeting.modes & want.mode.bit() == 0 {
            return Err(ClientError::ModeNotOffered {
                wanted: want.mode,
                offered: greeting.modes,
            });
        }
        let mut response = SetUpResponse {
            mode: want.mode.bit(),
            key_id: [0; msg::KEY_ID_LEN],
            token: [0; msg::TOKEN_LEN],
            client_iv: [0; 16],
        };
        let mut token = None;
        if want.mode.ciphered() {
            let (id, secret) = want.key.as_ref().ok_or(ClientError::NoKey)?;
            if greeting.count > crypto::MAX_COUNT {
                return Err(ClientError::CountTooHigh(greeting.count));
            }
            let t = Token::fresh(greeting.challenge)?;
            let key = crypto::secret_key(secret, &greeting.salt, greeting.count);
            response.key_id = SetUpResponse::key_id_of(id).ok_or(ClientError::NoKey)?;
            response.token = t.encrypt(&key);
            response.client_iv = crypto::random()?;
            token = Some(t);
        }
        stream.write_all(&response.encode())?;
        let mut s = [0u8; SERVER_START_LEN];
        stream.read_exact(&mut s)?;
        // Accept and Server-IV are in clear; the last block is ciphered in the keyed modes.
        let start = ServerStart::parse(&s).map_err(|_| ClientError::Protocol("no Server-Start"))?;
        if start.accept != Accept::Ok {
            return Err(ClientError::Refused {
                stage: "Server-Start",
                accept: start.accept,
            });
        }
        let mut c = Client {
            stream,
            mode: want.mode,
            seal: None,
            open: None,
            token: None,
            server_start: start.start_time,
        };
        if let Some(t) = token {
            let mut open = Opener::new(&t, &start.server_iv);
            open.open_unauthenticated(&mut s[32..]);
            c.server_start = Timestamp::from_bytes(s[32..40].try_into().unwrap_or_default());
            c.open = Some(open);
            c.seal = Some(Sealer::new(&t, &response.client_iv));
            c.token = Some(t);
        }
        Ok(c)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The test keys of granted session `sid`: `None` in unauthenticated mode.
    pub fn test_keys(&self, sid: &[u8; 16]) -> Option<TestKeys> {
        let t = self.token.as_ref()?;
        TestKeys::derive(self.mode, &t.aes_key, &t.hmac_key, sid)
    }

    fn send(&mut self, m: &[u8]) -> Result<(), ClientError> {
        let mut m = m.to_vec();
        if let Some(s) = &mut self.seal {
            s.seal(&mut m);
        }
        self.stream.write_all(&m)?;
        Ok(())
    }

    fn receive<const N: usize>(&mut self) -> Result<[u8; N], ClientError> {
        let mut b = [0u8; N];
        self.stream.read_exact(&mut b)?;
        if let Some(o) = &mut self.open {
            o.open(&mut b).map_err(|_| ClientError::BadHmac)?;
        }
        Ok(b)
    }

    /// Asks for one session; a refusal is an error naming its Accept code.
    pub fn request(&mut self, req: &RequestTwSession) -> Result<AcceptSession, ClientError> {
        let b = req
            .encode()
            .map_err(|_| ClientError::Protocol("a request mixing IPv4 and IPv6"))?;
        self.send(&b)?;
        let b = self.receive::<{ msg::ACCEPT_SESSION_LEN }>()?;
        let a = AcceptSession::parse(&b)
            .map_err(|_| ClientError::Protocol("an Accept-Session that does not decode"))?;
        if a.accept != Accept::Ok {
            return Err(ClientError::Refused {
                stage: "Accept-Session",
                accept: a.accept,
            });
        }
        Ok(a)
    }

    /// Starts every session granted.
    pub fn start(&mut self) -> Result<(), ClientError> {
        self.send(&msg::encode_start_sessions())?;
        let b = self.receive::<{ msg::START_ACK_LEN }>()?;
        match msg::parse_start_ack(&b) {
            Ok(Accept::Ok) => Ok(()),
            Ok(accept) => Err(ClientError::Refused {
                stage: "Start-Ack",
                accept,
            }),
            Err(_) => Err(ClientError::Protocol("a Start-Ack that does not decode")),
        }
    }

    /// Stops the sessions (the server answers nothing).
    pub fn stop(&mut self, sessions: u32) -> Result<(), ClientError> {
        let stop = StopSessions {
            accept: Accept::Ok,
            sessions,
        };
        self.send(&stop.encode())?;
        self.stream.flush()?;
        Ok(())
    }

    pub fn into_inner(self) -> S {
        self.stream
    }
}
