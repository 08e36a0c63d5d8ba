//! TWAMP-Control (RFC 5357 3): what the control client (`ltwamp --control`) and the server
//! (`lreflect --twamp-control`) share above the message codec of
//! [`crate::wire::twamp_control`]: the keyed modes' cryptography ([`crypto`]), the keys file
//! ([`keys`]), the server's protocol machine without I/O ([`server`]), the client
//! ([`client`]) and ltwamp's sessions over it ([`sender`]).
#![forbid(unsafe_code)]

pub mod client;
pub mod crypto;
pub mod keys;
pub mod sender;
pub mod server;
pub mod test_packet;

#[cfg(test)]
mod tests {
    use super::client::{Client, ClientError, SetUp};
    use super::keys::Keys;
    use super::server::{Event, Fault, Offer, ServerConn, SetUpRefusal};
    use crate::wire::ntp::Timestamp;
    use crate::wire::twamp_control::{Accept, AcceptSession, Mode, RequestTwSession};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::thread;

    fn offer(modes: u32) -> Offer {
        Offer {
            modes,
            keys: Keys::parse("probe-a 7365637265742d61\n").unwrap(),
            count: 1024,
        }
    }

    /// Runs a server connection over one end of a socket pair until it ends; grants every
    /// request with port 20000 + n; returns the events and how it ended.
    fn serve(mut s: UnixStream, offer: Offer) -> (Vec<Event>, Option<Fault>) {
        let mut conn = ServerConn::new(&offer).unwrap();
        let mut input = Vec::new();
        let mut events = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let out = std::mem::take(conn.output());
            if s.write_all(&out).is_err() {
                return (events, None);
            }
            loop {
                match conn.poll(&mut input, &offer, Timestamp { secs: 1, frac: 2 }) {
                    Ok(Some(ev)) => {
                        match &ev {
                            Event::Request(r) => conn.answer_request(&AcceptSession {
                                accept: Accept::Ok,
                                port: 20000 + r.sender_port % 100,
                                sid: [events.len() as u8; 16],
                            }),
                            Event::Start => conn.answer_start(Accept::Ok),
                            Event::Stop(_) => {}
                        }
                        events.push(ev);
                    }
                    Ok(None) => break,
                    Err(f) => {
                        let _ = s.write_all(conn.output());
                        return (events, Some(f));
                    }
                }
            }
            let out = std::mem::take(conn.output());
            if s.write_all(&out).is_err() {
                return (events, None);
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return (events, None),
                Ok(n) => input.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn request(port: u16, dscp: u8) -> RequestTwSession {
        RequestTwSession {
            sender: "10.0.1.2".parse().unwrap(),
            sender_port: port,
            receiver: "0.0.0.0".parse().unwrap(),
            receiver_port: 862,
            conf_sender: 0,
            conf_receiver: 0,
            schedule_slots: 0,
            packets: 0,
            sid: [0; 16],
            padding_length: 0,
            start_time: Timestamp::default(),
            timeout: Timestamp { secs: 2, frac: 0 },
            type_p: RequestTwSession::type_p_of_dscp(dscp),
        }
    }

    fn session(mode: Mode, key: Option<(&str, &[u8])>) -> (Vec<Event>, Option<Fault>) {
        let (a, b) = UnixStream::pair().unwrap();
        let server = thread::spawn(move || serve(b, offer(7)));
        let want = SetUp {
            mode,
            key: key.map(|(k, s)| (k.to_string(), s.to_vec())),
        };
        let mut c = Client::set_up(a, &want).unwrap();
        assert_eq!(c.mode(), mode);
        assert_eq!(c.server_start, Timestamp { secs: 1, frac: 2 });
        let a1 = c.request(&request(40001, 0)).unwrap();
        let a2 = c.request(&request(40002, 46)).unwrap();
        assert_eq!((a1.port, a2.port), (20001, 20002));
        assert_eq!(a2.sid, [1; 16]);
        c.start().unwrap();
        c.stop(2).unwrap();
        drop(c);
        server.join().unwrap()
    }

    #[test]
    fn client_and_server_agree_in_every_mode() {
        for (mode, key) in [
            (Mode::Unauthenticated, None),
            (Mode::Authenticated, Some(("probe-a", &b"secret-a"[..]))),
            (Mode::Encrypted, Some(("probe-a", &b"secret-a"[..]))),
        ] {
            let (events, fault) = session(mode, key);
            assert_eq!(fault, None, "{mode:?}");
            assert_eq!(events.len(), 4, "{mode:?}: {events:?}");
            let Event::Request(r) = &events[1] else {
                panic!("{events:?}")
            };
            assert_eq!((r.sender_port, r.dscp()), (40002, Some(46)));
            assert_eq!(events[2], Event::Start);
            assert!(matches!(&events[3], Event::Stop(s) if s.sessions == 2));
        }
    }

    fn refused(offer_modes: u32, want: SetUp) -> (ClientError, Option<Fault>) {
        let (a, b) = UnixStream::pair().unwrap();
        let server = thread::spawn(move || serve(b, offer(offer_modes)));
        let e = Client::set_up(a, &want).err().expect("refused");
        (e, server.join().unwrap().1)
    }

    #[test]
    fn set_up_refusals_carry_their_accept_codes() {
        let key = |k: &str, s: &[u8]| Some((k.to_string(), s.to_vec()));
        let (e, f) = refused(
            7,
            SetUp {
                mode: Mode::Authenticated,
                key: key("nobody", b"secret-a"),
            },
        );
        assert!(
            matches!(
                e,
                ClientError::Refused {
                    accept: Accept::Failure,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(f, Some(Fault::SetUpRefused(SetUpRefusal::UnknownKey)));
        assert!(e.to_string().contains("Accept 1"), "{e}");

        let (e, f) = refused(
            7,
            SetUp {
                mode: Mode::Encrypted,
                key: key("probe-a", b"wrong"),
            },
        );
        assert!(
            matches!(
                e,
                ClientError::Refused {
                    accept: Accept::Failure,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(f, Some(Fault::SetUpRefused(SetUpRefusal::BadToken)));

        let (e, _) = refused(
            1,
            SetUp {
                mode: Mode::Encrypted,
                key: key("probe-a", b"secret-a"),
            },
        );
        assert!(
            e.to_string()
                .contains("does not offer the encrypted mode (it offers: open)"),
            "{e}"
        );
    }

    #[test]
    fn a_greeting_without_modes_is_a_refusal() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(&ServerConn::refusal()).unwrap();
        let want = SetUp {
            mode: Mode::Unauthenticated,
            key: None,
        };
        let e = Client::set_up(a, &want).err().unwrap();
        assert!(matches!(e, ClientError::NoModes), "{e}");
    }

    #[test]
    fn garbage_and_out_of_order_commands_end_the_connection() {
        let o = offer(7);
        let now = Timestamp::default();
        // A Set-Up-Response-sized run of garbage picks no mode: refused, not a panic.
        let mut c = ServerConn::new(&o).unwrap();
        let mut input = vec![0xa5; 164];
        assert_eq!(
            c.poll(&mut input, &o, now),
            Err(Fault::SetUpRefused(SetUpRefusal::Mode))
        );
        // Open mode, then a command byte that is none of TWAMP's.
        let mut c = ServerConn::new(&o).unwrap();
        let mut input = vec![0u8; 164];
        input[3] = 1;
        assert_eq!(c.poll(&mut input, &o, now), Ok(None));
        input.extend_from_slice(&[9u8; 16]);
        assert_eq!(c.poll(&mut input, &o, now), Err(Fault::Garbage));
        // Stop-Sessions before any Start-Sessions.
        let mut c = ServerConn::new(&o).unwrap();
        let mut input = vec![0u8; 164];
        input[3] = 1;
        let _ = c.poll(&mut input, &o, now);
        let mut stop = vec![0u8; 32];
        stop[0] = 3;
        input.extend_from_slice(&stop);
        assert_eq!(c.poll(&mut input, &o, now), Err(Fault::Garbage));
        // A half message waits for the rest.
        let mut c = ServerConn::new(&o).unwrap();
        let mut input = vec![0u8; 100];
        assert_eq!(c.poll(&mut input, &o, now), Ok(None));
        assert_eq!(input.len(), 100);
    }

    #[test]
    fn a_tampered_keyed_message_fails_its_hmac() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut relay_a, relay_b) = UnixStream::pair().unwrap();
        // The server reads through a relay that flips one bit of the first command.
        let server = thread::spawn(move || serve(relay_b, offer(7)));
        let relay = thread::spawn(move || {
            let mut from_client = b.try_clone().unwrap();
            let mut to_client = b;
            let mut back = relay_a.try_clone().unwrap();
            let pump = thread::spawn(move || {
                let _ = std::io::copy(&mut back, &mut to_client);
                // The server is gone: so is the client's connection (both halves).
                let _ = to_client.shutdown(std::net::Shutdown::Both);
            });
            let mut seen = 0usize;
            let mut buf = [0u8; 256];
            while let Ok(n) = from_client.read(&mut buf) {
                if n == 0 {
                    break;
                }
                for (i, byte) in buf[..n].iter_mut().enumerate() {
                    if seen + i == 164 + 40 {
                        *byte ^= 1;
                    }
                }
                seen += n;
                if relay_a.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            drop(relay_a);
            let _ = pump.join();
        });
        let want = SetUp {
            mode: Mode::Authenticated,
            key: Some(("probe-a".into(), b"secret-a".to_vec())),
        };
        let mut c = Client::set_up(a, &want).unwrap();
        assert!(c.request(&request(40001, 0)).is_err());
        drop(c);
        assert_eq!(server.join().unwrap().1, Some(Fault::BadHmac));
        relay.join().unwrap();
    }
}
