//! The server's side of one TWAMP-Control connection, without I/O: bytes in, bytes out, and
//! the events its owner (`lreflect`'s control service) decides on. It keeps the order of
//! RFC 4656 3 / RFC 5357 3: Server Greeting, Set-Up-Response, Server-Start, then commands:
//! Request-TW-Session (answered by Accept-Session), Start-Sessions (Start-Ack), and during a
//! test only Stop-Sessions. Anything else, a message that does not decode, or an HMAC that
//! does not verify is a [`Fault`]: the owner closes the connection.
#![forbid(unsafe_code)]

use super::crypto::{self, Opener, Sealer, Token};
use super::keys::Keys;
use super::test_packet::TestKeys;
use crate::wire::ntp::Timestamp;
use crate::wire::twamp_control::{
    self as msg, Accept, AcceptSession, Command, Greeting, Mode, RequestTwSession, ServerStart,
    SetUpResponse, StopSessions, BLOCK, SETUP_RESPONSE_LEN,
};
use std::io;

/// What a server offers: its modes (bits of [`Mode`]), keys and PBKDF2 count.
#[derive(Debug, Clone)]
pub struct Offer {
    pub modes: u32,
    pub keys: Keys,
    pub count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SetUp,
    Ready,
    Testing,
    Done,
}

/// A decoded command the owner must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Answer with [`ServerConn::answer_request`].
    Request(RequestTwSession),
    /// Answer with [`ServerConn::answer_start`]; the granted sessions start.
    Start,
    /// The sessions stop (after the requests' timeouts, for late packets).
    Stop(StopSessions),
}

/// Why a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Set-up refused: a Server-Start with this code is queued; send it, then close.
    SetUpRefused(SetUpRefusal),
    /// Bytes that are no message of the protocol at this point.
    Garbage,
    /// A keyed-mode message whose HMAC did not verify.
    BadHmac,
    /// The client ended set-up itself (Set-Up-Response with Mode 0).
    ClientDeclined,
}

/// Why set-up was refused; each is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetUpRefusal {
    /// A mode this server does not offer (Accept 3).
    Mode,
    /// A KeyID not in the keys file (Accept 1).
    UnknownKey,
    /// A token that does not decrypt to the challenge: the wrong secret (Accept 1).
    BadToken,
}

impl SetUpRefusal {
    pub fn accept(self) -> Accept {
        match self {
            SetUpRefusal::Mode => Accept::NotSupported,
            SetUpRefusal::UnknownKey | SetUpRefusal::BadToken => Accept::Failure,
        }
    }
}

/// One control connection, server side.
pub struct ServerConn {
    state: State,
    greeting: Greeting,
    mode: Option<Mode>,
    key_id: Option<String>,
    /// The session keys of a keyed mode, from which each test session's keys come.
    token: Option<Token>,
    seal: Option<Sealer>,
    open: Option<Opener>,
    out: Vec<u8>,
}

impl ServerConn {
    /// A connection that offers `offer` and has its Server Greeting queued.
    pub fn new(offer: &Offer) -> io::Result<ServerConn> {
        let keyed = offer.modes & !Mode::Unauthenticated.bit() != 0;
        let greeting = Greeting {
            modes: offer.modes,
            // Challenge and salt matter only to the keyed modes; they are random anyway.
            challenge: if keyed { crypto::random()? } else { [0; 16] },
            salt: if keyed { crypto::random()? } else { [0; 16] },
            count: offer.count,
        };
        Ok(ServerConn {
            state: State::SetUp,
            greeting,
            mode: None,
            key_id: None,
            token: None,
            seal: None,
            open: None,
            out: greeting.encode().to_vec(),
        })
    }

    /// A greeting that offers no mode (RFC 4656 3.1: the server will not talk to this
    /// client): the access list's and the connection limits' answer.
    pub fn refusal() -> Vec<u8> {
        Greeting {
            modes: 0,
            challenge: [0; 16],
            salt: [0; 16],
            count: 0,
        }
        .encode()
        .to_vec()
    }

    pub fn mode(&self) -> Option<Mode> {
        self.mode
    }

    /// The test keys of session `sid` granted on this connection: `None` in unauthenticated
    /// mode (or before Server-Start).
    pub fn test_keys(&self, sid: &[u8; 16]) -> Option<TestKeys> {
        let t = self.token.as_ref()?;
        TestKeys::derive(self.mode?, &t.aes_key, &t.hmac_key, sid)
    }

    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// Whether Start-Sessions was received and no Stop-Sessions since.
    pub fn testing(&self) -> bool {
        self.state == State::Testing
    }

    /// Bytes to send.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Consumes the next whole message from `input`, if it is all there.
    pub fn poll(
        &mut self,
        input: &mut Vec<u8>,
        offer: &Offer,
        now: Timestamp,
    ) -> Result<Option<Event>, Fault> {
        match self.state {
            State::SetUp => {
                if input.len() < SETUP_RESPONSE_LEN {
                    return Ok(None);
                }
                let r = SetUpResponse::parse(&input[..SETUP_RESPONSE_LEN])
                    .map_err(|_| Fault::Garbage)?;
                input.drain(..SETUP_RESPONSE_LEN);
                self.set_up(&r, offer, now)?;
                Ok(None)
            }
            State::Ready | State::Testing => self.command(input),
            State::Done => Err(Fault::Garbage),
        }
    }

    fn set_up(&mut self, r: &SetUpResponse, offer: &Offer, now: Timestamp) -> Result<(), Fault> {
        if r.mode == 0 {
            self.state = State::Done;
            return Err(Fault::ClientDeclined);
        }
        let mode = match Mode::from_bits(r.mode) {
            Some(m) if offer.modes & m.bit() != 0 => m,
            _ => return Err(self.refuse(SetUpRefusal::Mode)),
        };
        let server_iv = if mode.ciphered() {
            crypto::random().map_err(|_| Fault::Garbage)?
        } else {
            [0; 16]
        };
        let start = ServerStart {
            accept: Accept::Ok,
            server_iv,
            start_time: now,
        };
        let mut bytes = start.encode();
        if mode.ciphered() {
            let name = r.key_name().unwrap_or("");
            let Some(secret) = offer.keys.get(name) else {
                return Err(self.refuse(SetUpRefusal::UnknownKey));
            };
            let key = crypto::secret_key(secret, &self.greeting.salt, self.greeting.count);
            let token = Token::decrypt(&key, &r.token);
            if token.challenge != self.greeting.challenge {
                return Err(self.refuse(SetUpRefusal::BadToken));
            }
            let mut seal = Sealer::new(&token, &server_iv);
            seal.seal_unauthenticated(&mut bytes[32..]);
            self.seal = Some(seal);
            self.open = Some(Opener::new(&token, &r.client_iv));
            self.key_id = Some(name.to_string());
            self.token = Some(token);
        }
        self.out.extend_from_slice(&bytes);
        self.mode = Some(mode);
        self.state = State::Ready;
        Ok(())
    }

    fn refuse(&mut self, why: SetUpRefusal) -> Fault {
        let start = ServerStart {
            accept: why.accept(),
            server_iv: [0; 16],
            start_time: Timestamp::default(),
        };
        self.out.extend_from_slice(&start.encode());
        self.state = State::Done;
        Fault::SetUpRefused(why)
    }

    fn command(&mut self, input: &mut Vec<u8>) -> Result<Option<Event>, Fault> {
        let Some(first) = input.get(..BLOCK) else {
            return Ok(None);
        };
        let first: [u8; BLOCK] = first.try_into().map_err(|_| Fault::Garbage)?;
        let clear = match &self.open {
            Some(o) => o.peek(&first),
            None => first,
        };
        let cmd = Command::from_code(clear[0]).map_err(|_| self.fail(Fault::Garbage))?;
        let len = cmd.message_len();
        if input.len() < len {
            return Ok(None);
        }
        let mut m: Vec<u8> = input.drain(..len).collect();
        if let Some(o) = &mut self.open {
            o.open(&mut m).map_err(|_| Fault::BadHmac)?;
        }
        let testing = self.state == State::Testing;
        let ev = match (cmd, testing) {
            (Command::RequestTwSession, false) => {
                Event::Request(RequestTwSession::parse(&m).map_err(|_| Fault::Garbage)?)
            }
            (Command::StartSessions, false) => {
                msg::parse_start_sessions(&m).map_err(|_| Fault::Garbage)?;
                self.state = State::Testing;
                Event::Start
            }
            (Command::StopSessions, true) => {
                let stop = StopSessions::parse(&m).map_err(|_| Fault::Garbage)?;
                self.state = State::Ready;
                Event::Stop(stop)
            }
            // RFC 5357 3.8: during a test only Stop-Sessions; outside one, no Stop-Sessions.
            _ => return Err(self.fail(Fault::Garbage)),
        };
        Ok(Some(ev))
    }

    fn fail(&mut self, f: Fault) -> Fault {
        self.state = State::Done;
        f
    }

    /// Queues the Accept-Session for the last request.
    pub fn answer_request(&mut self, a: &AcceptSession) {
        let b = a.encode();
        self.send(&b);
    }

    /// Queues the Start-Ack.
    pub fn answer_start(&mut self, accept: Accept) {
        if accept != Accept::Ok {
            self.state = State::Ready;
        }
        let b = msg::encode_start_ack(accept);
        self.send(&b);
    }

    fn send(&mut self, m: &[u8]) {
        let mut m = m.to_vec();
        if let Some(s) = &mut self.seal {
            s.seal(&mut m);
        }
        self.out.extend_from_slice(&m);
    }
}
